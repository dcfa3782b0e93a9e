//! The operator's story end to end: the real `wippy` CLI, run as a child
//! process, against three real clustered nodes. A license is issued
//! offline, each node is bootstrapped (the CLI saves the credential into
//! its config), n1 adds the others, the peers are listed, renamed and
//! checked, the cluster's status, license and health are read, the
//! credential is rotated (the CLI config follows, the old secret works on
//! another node until the grace ends), a peer is deleted, another removes
//! itself and its context goes, and the CLI reports a wrong secret and a
//! token without the scope the way the node words them.
//!
//! Every invocation passes `--config` (or `WIPPY_CLI_CONFIG`) into a temp
//! dir, so the operator's own `~/.config/wippy/cli.json` is never touched.

#[path = "common/harness.rs"]
mod common;
#[path = "common/operator.rs"]
mod operator;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{Output, p, run_cmd, temp_dir, wippy_cmd};
use operator::*;
use serde_json::Value;
use wippy_runtime::identity::license::License;

/// Deadline of one CLI invocation.
const CLI_T: Duration = Duration::from_secs(30);

/// The CLI with its config file at `config`.
struct Cli {
    config: PathBuf,
}

impl Cli {
    /// `wippy args… --config <config>`.
    fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = wippy_cmd(args);
        cmd.arg("--config").arg(&self.config);
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        run_cmd(self.cmd(args), CLI_T)
    }

    /// Runs and expects exit code 0.
    fn ok(&self, args: &[&str]) -> Output {
        let out = self.run(args);
        out.expect_code(0);
        out
    }

    /// Runs with `-o json`, expects exit code 0 and parses stdout.
    fn json(&self, args: &[&str]) -> Value {
        let mut args = args.to_vec();
        args.extend(["-o", "json"]);
        let out = self.ok(&args);
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}\n{}", out.describe()))
    }

    /// Runs with extra environment variables.
    fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = self.cmd(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        run_cmd(cmd, CLI_T)
    }

    /// The config file's contents.
    fn file(&self) -> Value {
        read_json(&self.config)
    }
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}\n{text}", path.display()))
}

/// The value of `key` in a field/value listing (`key  value`).
fn field<'a>(out: &'a Output, key: &str) -> Option<&'a str> {
    out.stdout.lines().find_map(|l| l.strip_prefix(key).filter(|rest| rest.starts_with("  ")).map(str::trim))
}

fn expect_field(out: &Output, key: &str, want: &str) {
    assert_eq!(field(out, key), Some(want), "field {key:?}\n{}", out.describe());
}

/// The rows of a table with a header line, as cells.
fn rows(out: &Output) -> Vec<Vec<&str>> {
    out.stdout.lines().skip(1).map(|l| l.split_whitespace().collect()).collect()
}

/// The peer named `node` in a `peers list -o json` document.
fn peer_of<'a>(doc: &'a Value, node: &str) -> Option<&'a Value> {
    doc["peers"].as_array()?.iter().find(|p| p["node"] == node)
}

/// A TCP port nothing listens on (bound, then released).
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn the_operator_story_through_the_cli() {
    let dir = temp_dir("t94-flow");
    let cli = Cli { config: dir.join("cli.json") };
    let key = dir.join("issuer.key");
    let license_file = dir.join("license.json");

    // 1. A license, issued offline; --cluster-id is honoured.
    let issued = cli.ok(&["license", "issue", "--issuer-key", p(&key), "--max-nodes", "3", "--out", p(&license_file)]);
    assert!(issued.stderr.contains("created issuer key"), "{}", issued.describe());
    let lic = License::load(&license_file).unwrap_or_else(|e| panic!("{e}\n{}", issued.describe()));
    assert_eq!(lic.max_nodes, 3);
    assert!(lic.license_id.starts_with("lic_") && lic.cluster_id.starts_with('c'), "{lic:?}");
    assert!(
        issued.stdout.contains(&format!("wrote license {} for cluster {} (3 nodes", lic.license_id, lic.cluster_id)),
        "{}",
        issued.describe()
    );
    let named_file = dir.join("named.json");
    let args = [
        "license",
        "issue",
        "--issuer-key",
        p(&key),
        "--max-nodes",
        "5",
        "--cluster-id",
        "c-flow",
        "--out",
        p(&named_file),
    ];
    cli.ok(&args);
    let named = License::load(&named_file).unwrap();
    assert_eq!((named.cluster_id.as_str(), named.max_nodes), ("c-flow", 5));
    assert_eq!(named.issuer_public_key, lic.issuer_public_key, "the key is made once, then reused");
    assert!(!cli.config.exists(), "license issue never touches the CLI config");

    // 2. Three fresh nodes, each bootstrapped by the CLI; as in the README,
    // their Raft core forms once all three see each other.
    let grace = "admin.credential_grace=3s";
    let expect = "cluster.raft.bootstrap_expect=3";
    let mut nodes: Vec<OpNode> =
        (1..=3u8).map(|i| Spec::new(&format!("n{i}"), i).set(grace).set(expect).start()).collect();
    let urls: Vec<String> = nodes.iter().map(OpNode::url).collect();

    let first = cli.ok(&["bootstrap", "--url", &urls[0], "--license-file", p(&license_file), "--name", "n1"]);
    expect_field(&first, "license id", &lic.license_id);
    expect_field(&first, "cluster id", &lic.cluster_id);
    let client_id = field(&first, "client id").expect("a credential").to_owned();
    let old_secret = field(&first, "client secret").expect("a secret").to_owned();
    assert!(first.stdout.contains("saved the credential to context \"n1\""), "{}", first.describe());
    assert!(first.stdout.contains("(now the current context)"), "{}", first.describe());
    let file = cli.file();
    assert_eq!(file["current"], "n1");
    let n1_ctx = &file["contexts"]["n1"];
    assert_eq!((n1_ctx["url"].as_str(), n1_ctx["client_id"].as_str()), (Some(&*urls[0]), Some(&*client_id)));
    assert_eq!(n1_ctx["client_secret"].as_str(), Some(&*old_secret));
    let n1_id = field(&first, "peer id").unwrap().to_owned();
    assert_eq!(n1_ctx["peer_id"].as_str(), Some(&*n1_id));

    for (i, name) in [(1, "n2"), (2, "n3")] {
        let args =
            ["bootstrap", "--url", &urls[i], "--license-file", p(&license_file), "--name", name, "--context", name];
        let out = cli.ok(&args);
        assert!(out.stdout.contains(&format!("saved the credential to context \"{name}\"")), "{}", out.describe());
        assert!(out.stdout.contains(&format!("wippy config use-context {name}")), "{}", out.describe());
    }
    let file = cli.file();
    assert_eq!(file["current"], "n1", "n1 stays current");
    assert_eq!(file["contexts"]["n1"], *n1_ctx, "n1's saved credential is untouched");
    for (i, name) in [(1, "n2"), (2, "n3")] {
        let ctx = &file["contexts"][name];
        assert_eq!(ctx["url"].as_str(), Some(&*urls[i]), "{file}");
        // Each fresh node made its own credential before it joined.
        assert_ne!(ctx["client_id"].as_str(), Some(&*client_id), "{file}");
    }
    let n2_id = file["contexts"]["n2"]["peer_id"].as_str().unwrap().to_owned();
    let n3_id = file["contexts"]["n3"]["peer_id"].as_str().unwrap().to_owned();

    // 3. n1 adds n2 and n3 by their admin API addresses; n2 only once.
    for n in &nodes[1..] {
        let out = cli.ok(&["peers", "add", &n.api]);
        expect_field(&out, "node", &n.name);
        expect_field(&out, "local", "no");
        expect_field(&out, "api_address", &n.api);
        assert!(out.stdout.contains(&format!("saved context \"{}\"", n.name)), "{}", out.describe());
    }
    let again = cli.run(&["peers", "add", &nodes[1].api]);
    again.expect_code(1);
    assert!(again.stderr.contains("Error: peer already exists in cluster"), "{}", again.describe());

    // 4. The peer list, as a table and as JSON; one peer, renamed.
    let list = cli.ok(&["peers", "list"]);
    let header: Vec<&str> = list.lines()[0].split_whitespace().collect();
    assert_eq!(header, ["ID", "NODE", "NAME", "STATE", "STATUS", "LOCAL", "API", "ADDRESS"], "{}", list.describe());
    let table = rows(&list);
    assert_eq!(table.len(), 3, "{}", list.describe());
    let local: Vec<_> = table.iter().filter(|r| r[5] == "yes").collect();
    assert_eq!(local.len(), 1, "{}", list.describe());
    assert_eq!((local[0][0], local[0][1], local[0][2]), (&*n1_id, "n1", "n1"), "{}", list.describe());
    for (id, name, api) in [(&n2_id, "n2", &nodes[1].api), (&n3_id, "n3", &nodes[2].api)] {
        let row = table.iter().find(|r| r[1] == name).unwrap_or_else(|| panic!("no {name}\n{}", list.describe()));
        assert_eq!(
            (row[0], row[4], row[5], row[6]),
            (id.as_str(), "active", "no", api.as_str()),
            "{}",
            list.describe()
        );
    }
    eventually("n1 lists all three alive and active", || {
        let doc = cli.json(&["peers", "list"]);
        let ok = ["n1", "n2", "n3"]
            .iter()
            .all(|n| peer_of(&doc, n).is_some_and(|p| p["state"] == "alive" && p["status"] == "active"));
        ok.then_some(())
    });
    let got = cli.ok(&["peers", "get", &n2_id]);
    expect_field(&got, "id", &n2_id);
    expect_field(&got, "node", "n2");
    // Names are each node's own labels: n2 named itself at bootstrap, n1
    // has no label for it yet.
    expect_field(&got, "name", "-");
    let renamed = cli.ok(&["peers", "update", &n2_id, "--name", "prod-2"]);
    expect_field(&renamed, "name", "prod-2");
    expect_field(&cli.ok(&["peers", "get", &n2_id]), "name", "prod-2");
    let doc = cli.json(&["peers", "get", &n2_id]);
    assert_eq!((doc["name"].as_str(), doc["local"].as_bool()), (Some("prod-2"), Some(false)), "{doc}");

    // 5. Status, sync, license and health.
    let status = eventually("cluster status counts three members alive", || {
        let out = cli.ok(&["cluster", "status"]);
        (field(&out, "members.alive") == Some("3")).then_some(out)
    });
    expect_field(&status, "identity.node", "n1");
    let status = eventually("one Raft core of three voters", || {
        let out = cli.ok(&["cluster", "status"]);
        (field(&out, "raft.voters") == Some("3")).then_some(out)
    });
    expect_field(&status, "raft.foreign_members", "-");
    expect_field(&status, "identity.peer_id", &n1_id);
    expect_field(&status, "credential.client_id", &client_id);
    expect_field(&status, "credential.generation", "0");
    let sync = cli.ok(&["cluster", "sync"]);
    assert!(sync.stdout.starts_with("sent this node's state to "), "{}", sync.describe());
    assert_eq!(cli.json(&["cluster", "sync"])["peers"], 2);
    let shown = cli.ok(&["license", "show"]);
    expect_field(&shown, "license_id", &lic.license_id);
    expect_field(&shown, "cluster_id", &lic.cluster_id);
    expect_field(&shown, "status", "valid");
    expect_field(&shown, "max_nodes", "3");
    expect_field(&shown, "nodes_in_use", "3");

    let health = eventually("n1 is live and ready", || {
        let out = cli.run(&["health"]);
        (out.code == Some(0)).then_some(out)
    });
    assert_eq!(rows(&health), [vec!["n1", &*urls[0], "ok", "ok"]], "{}", health.describe());
    // `peers add` saved contexts for n2 and n3 with the cluster's (n1's)
    // credential, which they took when they were added.
    let file = cli.file();
    for (name, id) in [("n2", &n2_id), ("n3", &n3_id)] {
        let ctx = &file["contexts"][name];
        assert_eq!((ctx["client_id"].as_str(), ctx["peer_id"].as_str()), (Some(&*client_id), Some(id.as_str())));
    }
    let all = eventually("every context is live and ready", || {
        let out = cli.run(&["health", "--all-contexts"]);
        (out.code == Some(0)).then_some(out)
    });
    let expected: Vec<Vec<&str>> =
        ["n1", "n2", "n3"].iter().zip(&urls).map(|(n, u)| vec![*n, &**u, "ok", "ok"]).collect();
    assert_eq!(rows(&all), expected, "{}", all.describe());
    let listed = cli.json(&["health", "--all-contexts"]);
    assert_eq!(listed.as_array().map(Vec::len), Some(3), "{listed}");
    assert!(listed.as_array().unwrap().iter().all(|r| r["ok"] == true), "{listed}");
    // Every context logs in with the cluster credential on its own node.
    for name in ["n2", "n3"] {
        let doc = cli.json(&["peers", "get", "self", "--context", name]);
        assert_eq!((doc["node"].as_str(), doc["name"].as_str()), (Some(name), Some(name)), "{doc}");
    }
    let closed = format!("http://127.0.0.1:{}", closed_port());
    let down = cli.run(&["health", "--url", &closed]);
    down.expect_code(1);
    assert!(down.stdout.contains("unreachable"), "{}", down.describe());

    // 6. Rotation through n1: the CLI prints the new secret and saves it to
    // every context holding the credential; the old secret keeps working on
    // n2 until the grace ends.
    let rotated = cli.ok(&["credential", "rotate", "--yes"]);
    expect_field(&rotated, "client id", &client_id);
    expect_field(&rotated, "generation", "1");
    let new_secret = field(&rotated, "client secret").expect("the new secret").to_owned();
    assert_ne!(new_secret, old_secret);
    assert!(rotated.stdout.contains("the previous secret keeps working until"), "{}", rotated.describe());
    assert!(rotated.stdout.contains("saved the new secret to context(s) n1, n2, n3"), "{}", rotated.describe());
    eventually("n2 takes the new secret", || (nodes[1].token(&client_id, &new_secret, "").0 == 200).then_some(()));
    let (status, body) = nodes[1].token(&client_id, &old_secret, "");
    assert_eq!(status, 200, "n2: the old secret works during the grace: {body}");
    let file = cli.file();
    for name in ["n1", "n2", "n3"] {
        assert_eq!(file["contexts"][name]["client_secret"].as_str(), Some(&*new_secret), "{name}: {file}");
    }
    assert_eq!(cli.json(&["peers", "list"])["peers"].as_array().map(Vec::len), Some(3));
    eventually("n2 refuses the old secret after the grace", || {
        (nodes[1].token(&client_id, &old_secret, "").0 == 401).then_some(())
    });
    // The saved (new) secret still logs in, here on n2 through its context.
    let list2 = cli.ok(&["peers", "list", "--context", "n2"]);
    assert_eq!(rows(&list2).len(), 3, "{}", list2.describe());
    expect_field(&cli.ok(&["cluster", "status"]), "credential.generation", "1");

    // 9. (before anything leaves) The CLI passes the node's refusals on.
    let wrong = cli.run_env(&["peers", "list"], &[("WIPPY_CLIENT_SECRET", "wrong")]);
    wrong.expect_code(1);
    assert!(wrong.stderr.contains("Error: wrong client id or secret\n"), "{}", wrong.describe());
    assert!(wrong.stderr.contains("hint: the saved client secret may have been rotated"), "{}", wrong.describe());
    assert!(wrong.stdout.is_empty(), "{}", wrong.describe());
    let (status, read) = nodes[0].token(&client_id, &new_secret, "urn:wippy:peers.read");
    assert_eq!(status, 200, "{read}");
    let read = read["access_token"].as_str().unwrap();
    let by_token = cli.run_env(&["peers", "list", "-o", "json"], &[("WIPPY_TOKEN", read)]);
    by_token.expect_code(0);
    let denied = cli.run_env(&["peers", "add", &nodes[1].api], &[("WIPPY_TOKEN", read)]);
    denied.expect_code(1);
    assert!(denied.stderr.contains("Error: the token lacks scope urn:wippy:peers.write"), "{}", denied.describe());

    // 7. Deleting n2 needs --yes when nobody can be asked.
    let refused = cli.run(&["peers", "delete", &n2_id]);
    refused.expect_code(2);
    assert!(
        refused.stderr.contains("refusing to delete without --yes (stdin is not a terminal)"),
        "{}",
        refused.describe()
    );
    let listed = cli.json(&["peers", "list"]);
    assert_eq!(peer_of(&listed, "n2").unwrap()["status"], "active", "nothing was sent: {listed}");
    let deleted = cli.ok(&["peers", "delete", &n2_id, "--yes"]);
    assert!(deleted.stdout.contains(&format!("deleted peer {n2_id} (status removed)")), "{}", deleted.describe());
    assert!(
        deleted.stdout.contains(&format!("its saved contexts (n2) can go with `wippy config delete-peer {n2_id}`")),
        "{}",
        deleted.describe()
    );
    let listed = cli.json(&["peers", "list"]);
    assert_eq!(peer_of(&listed, "n2").unwrap()["status"], "removed", "{listed}");

    // 8. n3 removes itself: it exits, n1 marks it deactivated, and its
    // context goes from the CLI config.
    eventually("n3 takes the new secret", || (nodes[2].token(&client_id, &new_secret, "").0 == 200).then_some(()));
    let gone = cli.ok(&["peers", "remove-self", "--yes", "--url", &urls[2]]);
    assert!(gone.stdout.contains(&format!("peer {n3_id} deactivated at ")), "{}", gone.describe());
    assert!(gone.stdout.contains("the node now leaves the cluster and shuts down"), "{}", gone.describe());
    assert!(gone.stdout.contains(&format!("wippy config delete-peer {n3_id}")), "{}", gone.describe());
    assert_eq!(nodes[2].wait_exit(operator::T), Some(0), "{}", nodes[2].stderr_text());
    eventually("n1 lists n3 deactivated", || {
        let doc = cli.json(&["peers", "list"]);
        (peer_of(&doc, "n3")?["status"] == "deactivated").then_some(())
    });
    let mut by_env = wippy_cmd(&["config", "delete-peer", &n3_id]);
    by_env.env("WIPPY_CLI_CONFIG", &cli.config);
    let forgotten = run_cmd(by_env, CLI_T);
    forgotten.expect_code(0);
    assert!(forgotten.stdout.contains("removed context(s) n3 from"), "{}", forgotten.describe());
    let file = cli.file();
    let names: Vec<&str> = file["contexts"].as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(names, ["n1", "n2"], "{file}");
    assert_eq!(file["current"], "n1");

    for n in &mut nodes {
        n.stop();
    }
}
