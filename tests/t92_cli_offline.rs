//! The operator CLI without a live node: offline license issuing, the CLI
//! config file and its contexts, and how the CLI reports an unreachable
//! node, a refused confirmation and the API's own errors (against a canned
//! HTTP responder in this process). End-to-end tests against real nodes
//! live with the admin API's tests.
//!
//! Every invocation passes `--config` into a temp dir, so the operator's
//! own `~/.config/wippy/cli.json` is never read or written.

#[path = "common/harness.rs"]
mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Output, p, run_cmd, temp_dir, wippy_cmd};
use serde_json::Value as Json;
use wippy_runtime::identity::license::License;

const T: Duration = Duration::from_secs(30);

/// `wippy --config <config> args…`.
fn cli(config: &Path, args: &[&str]) -> Command {
    let mut cmd = wippy_cmd(args);
    cmd.arg("--config").arg(config);
    cmd
}

fn run(config: &Path, args: &[&str]) -> Output {
    run_cmd(cli(config, args), T)
}

/// A TCP port nothing listens on (bound, then released).
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn license_issue_creates_the_key_once_and_signs_valid_licenses() {
    let dir = temp_dir("t92-license");
    let cfg = dir.join("cli.json");
    let key = dir.join("keys").join("issuer.key");
    let out = run(&cfg, &["license", "issue", "--issuer-key", p(&key), "--max-nodes", "3", "--cluster-id", "c-test"]);
    out.expect_code(0);
    assert!(out.stderr.contains("created issuer key"), "{}", out.describe());
    assert_eq!(mode(&key), 0o600);
    let first = License::parse(&out.stdout).unwrap_or_else(|e| panic!("{e}\n{}", out.describe()));
    assert_eq!((first.cluster_id.as_str(), first.max_nodes), ("c-test", 3));
    assert!(first.license_id.starts_with("lic_"), "{first:?}");
    assert_eq!(first.expires_at - first.issued_at, 365 * 86_400);

    let file = dir.join("license.json");
    let out = run(&cfg, &["license", "issue", "--issuer-key", p(&key), "--max-nodes", "5", "--valid-for", "0"]);
    out.expect_code(0);
    let args =
        ["license", "issue", "--issuer-key", p(&key), "--max-nodes", "2", "--valid-for", "12h", "--out", p(&file)];
    let to_file = run(&cfg, &args);
    to_file.expect_code(0);
    assert!(!to_file.stderr.contains("created issuer key"), "{}", to_file.describe());
    assert!(to_file.stdout.contains("wrote license"), "{}", to_file.describe());
    let forever = License::parse(&out.stdout).unwrap();
    let second = License::load(&file).unwrap();
    assert_eq!(forever.issuer_public_key, first.issuer_public_key);
    assert_eq!(second.issuer_public_key, first.issuer_public_key);
    assert_eq!(forever.expires_at, 0);
    assert_eq!(second.expires_at - second.issued_at, 12 * 3600);
    assert!(forever.cluster_id.starts_with('c') && forever.cluster_id != second.cluster_id);
    assert_ne!(forever.license_id, second.license_id);

    let bad = run(&cfg, &["license", "issue", "--issuer-key", p(&key), "--max-nodes", "1", "--valid-for", "365"]);
    bad.expect_code(2);
    assert!(bad.stderr.contains("bad duration"), "{}", bad.describe());
    run(&cfg, &["license", "issue", "--issuer-key", p(&key), "--max-nodes", "0"]).expect_code(2);
    assert!(!cfg.exists(), "license issue never touches the CLI config");
}

#[test]
fn contexts_round_trip_through_the_config_file() {
    let dir = temp_dir("t92-config");
    let cfg = dir.join("nested").join("cli.json");
    let url1 = format!("http://127.0.0.1:{}", closed_port());
    let add =
        run(&cfg, &["config", "add-context", "n1", "--url", &url1, "--client-id", "cid", "--client-secret", "s3"]);
    add.expect_code(0);
    assert!(add.stderr.contains("cannot reach") && add.stderr.contains("without a peer id"), "{}", add.describe());
    assert_eq!(mode(&cfg), 0o600);
    let url2 = format!("127.0.0.1:{}", closed_port());
    run(&cfg, &["config", "add-context", "n2", "--url", &url2]).expect_code(0);
    run(&cfg, &["config", "add-context", "n3"]).expect_code(2);

    let list = run(&cfg, &["config", "list"]);
    list.expect_code(0);
    let lines = list.lines();
    assert!(lines[0].starts_with("CURRENT") && lines[0].contains("PEER ID"), "{}", list.describe());
    assert!(lines.iter().any(|l| l.starts_with("*") && l.contains("n1") && l.contains(&url1)), "{}", list.describe());
    assert!(lines.iter().any(|l| l.contains("n2") && l.contains(&format!("http://{url2}"))), "{}", list.describe());
    assert!(!list.stdout.contains("s3"), "secrets are never listed\n{}", list.describe());

    run(&cfg, &["config", "use-context", "n2"]).expect_code(0);
    run(&cfg, &["config", "use-context", "nope"]).expect_code(2);
    // The environment names the config file as well as --config does.
    let mut by_env = wippy_cmd(&["config", "list", "--output", "json"]);
    by_env.env("WIPPY_CLI_CONFIG", &cfg);
    let json_list = run_cmd(by_env, T);
    json_list.expect_code(0);
    let doc: Json = serde_json::from_str(&json_list.stdout).unwrap_or_else(|e| panic!("{e}\n{}", json_list.describe()));
    assert_eq!(doc["current"], "n2");
    assert_eq!(doc["contexts"]["n1"]["has_secret"], true);
    assert_eq!(doc["contexts"]["n1"]["peer_id"], "");
    assert!(!json_list.stdout.contains("s3"));

    // Peer ids come from the node; write them in as a reachable node would have.
    let mut file: Json = serde_json::from_str(&std::fs::read_to_string(&cfg).unwrap()).unwrap();
    file["contexts"]["n1"]["peer_id"] = "p-abc".into();
    file["contexts"]["n1-copy"] = file["contexts"]["n1"].clone();
    std::fs::write(&cfg, file.to_string()).unwrap();
    let gone = run(&cfg, &["config", "delete-peer", "p-abc"]);
    gone.expect_code(0);
    assert!(gone.stdout.contains("n1, n1-copy"), "{}", gone.describe());
    run(&cfg, &["config", "delete-peer", "n2"]).expect_code(0);
    let none = run(&cfg, &["config", "delete-peer", "n2"]);
    none.expect_code(2);
    assert!(none.stderr.contains("no context with peer id or name"), "{}", none.describe());
    let file: Json = serde_json::from_str(&std::fs::read_to_string(&cfg).unwrap()).unwrap();
    assert_eq!(file["contexts"], serde_json::json!({}));
    assert!(file.get("current").is_none(), "the deleted current context is unset: {file}");
}

#[test]
fn an_unreachable_node_is_reported_and_exits_1() {
    let dir = temp_dir("t92-unreachable");
    let cfg = dir.join("cli.json");
    let url = format!("http://127.0.0.1:{}", closed_port());
    let out = run(&cfg, &["peers", "list", "--url", &url]);
    out.expect_code(1);
    assert!(out.stderr.contains(&format!("Error: cannot reach {url}: connection refused")), "{}", out.describe());
    assert!(out.stdout.is_empty(), "{}", out.describe());

    let health = run(&cfg, &["health", "--url", &url]);
    health.expect_code(1);
    assert!(health.stdout.contains("unreachable"), "{}", health.describe());

    let https = run(&cfg, &["cluster", "status", "--url", "https://127.0.0.1:8443"]);
    https.expect_code(2);
    assert!(https.stderr.contains("https is not supported"), "{}", https.describe());
    let nowhere = run(&cfg, &["license", "show"]);
    nowhere.expect_code(2);
    assert!(nowhere.stderr.contains("no node URL"), "{}", nowhere.describe());
}

#[test]
fn destructive_commands_refuse_without_yes_or_a_terminal() {
    let cfg = temp_dir("t92-refuse").join("cli.json");
    let url = format!("http://127.0.0.1:{}", closed_port());
    for (args, action) in [
        (vec!["peers", "delete", "X"], "delete"),
        (vec!["peers", "remove-self"], "delete"),
        (vec!["credential", "rotate"], "rotate"),
    ] {
        let mut args = args;
        args.extend(["--url", &url]);
        let out = run(&cfg, &args);
        out.expect_code(2);
        let expected = format!("refusing to {action} without --yes (stdin is not a terminal)");
        assert!(out.stderr.contains(&expected), "{}", out.describe());
    }
    // With --yes the request is made (and here finds nobody).
    run(&cfg, &["peers", "delete", "X", "--yes", "--url", &url]).expect_code(1);
}

/// A canned admin API: answers each request from `route` (method and
/// path → status, body), chunked, and records what it was sent.
fn responder(route: fn(&str, &str) -> (u16, String)) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut head = String::new();
            while reader.read_line(&mut head).unwrap_or(0) > 2 && !head.ends_with("\r\n\r\n") {}
            let len = head
                .lines()
                .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_string()))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let mut body = vec![0; len];
            reader.read_exact(&mut body).unwrap();
            let mut words = head.split(' ');
            let (method, path) = (words.next().unwrap_or_default(), words.next().unwrap_or_default());
            let (status, reply) = route(method, path);
            log.lock().unwrap().push(format!("{head}{}", String::from_utf8_lossy(&body)));
            let (half, rest) = reply.split_at(reply.len() / 2);
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n\
                 {:x}\r\n{half}\r\n{:x}\r\n{rest}\r\n0\r\n\r\n",
                half.len(),
                rest.len()
            );
        }
    });
    (url, seen)
}

fn canned(method: &str, path: &str) -> (u16, String) {
    let peers = r#"{"peers":[{"id":"p1","node":"n1","name":null,"state":"alive","status":"active","local":true,"api_address":"127.0.0.1:8080"}]}"#;
    let mismatch = r#"{"error":{"code":"license_mismatch","message":"handshake failed: license mismatch"}}"#;
    match (method, path) {
        ("POST", "/v1/oauth/token") => {
            (200, r#"{"access_token":"tok-1","token_type":"Bearer","expires_in":900}"#.into())
        }
        ("GET", "/v1/peers") => (200, peers.into()),
        ("POST", "/v1/peers") => (403, mismatch.into()),
        _ => (404, r#"{"error":{"code":"not_found","message":"no such route"}}"#.into()),
    }
}

#[test]
fn the_client_logs_in_reads_chunked_answers_and_passes_api_errors_through() {
    let (url, seen) = responder(canned);
    let cfg = temp_dir("t92-api").join("cli.json");
    let with_credential = |args: &[&str]| {
        let mut cmd = cli(&cfg, args);
        cmd.env("WIPPY_CLIENT_ID", "cid").env("WIPPY_CLIENT_SECRET", "s3cr3t-value");
        run_cmd(cmd, T)
    };
    let list = with_credential(&["peers", "list", "--url", &url, "--trace"]);
    list.expect_code(0);
    assert_eq!(list.lines()[0], "ID  NODE  NAME  STATE  STATUS  LOCAL  API ADDRESS", "{}", list.describe());
    assert_eq!(list.lines()[1], "p1  n1    -     alive  active  yes    127.0.0.1:8080", "{}", list.describe());
    assert!(list.stderr.contains("Bearer <redacted>"), "{}", list.describe());
    assert!(!list.stderr.contains("s3cr3t-value") && !list.stderr.contains("tok-1"), "{}", list.describe());
    {
        let seen = seen.lock().unwrap();
        assert!(seen[0].starts_with("POST /v1/oauth/token ") && seen[0].contains("client_secret=s3cr3t-value"));
        assert!(seen[1].starts_with("GET /v1/peers ") && seen[1].contains("Authorization: Bearer tok-1\r\n"));
    }

    let json = with_credential(&["peers", "list", "--url", &url, "--output", "json"]);
    json.expect_code(0);
    let doc: Json = serde_json::from_str(&json.stdout).unwrap_or_else(|e| panic!("{e}\n{}", json.describe()));
    assert_eq!(doc["peers"][0]["id"], "p1");

    let add = with_credential(&["peers", "add", "127.0.0.9:8080", "--url", &url]);
    add.expect_code(1);
    assert!(add.stderr.contains("Error: handshake failed: license mismatch\n"), "{}", add.describe());
    assert!(seen.lock().unwrap().last().unwrap().ends_with(r#"{"address":"127.0.0.9:8080"}"#));
}
