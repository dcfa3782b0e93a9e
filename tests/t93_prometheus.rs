//! The node's `/metrics` as an operator sees it: a real Prometheus scrapes a
//! two-node cluster of `wippy run` processes, and its query API returns the
//! gossip, Raft, mesh, process and kv.crdt series with the values the
//! cluster should have. A second test keeps the Grafana dashboard in
//! `examples/deploy/` honest: every query in it names a series a node
//! exposes, and every family a node exposes has a panel.
//!
//! Prometheus comes from Debian's `prometheus` package (`.ci/run` installs
//! it). Without the binary the scrape test prints why and passes; that is
//! its only skip.

#[path = "common/harness.rs"]
mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{SECRET, cluster_args, free_port, http_get, root, temp_dir, wippy_cmd, write_tree};
use serde_json::Value as Json;

/// Every wait in this file: start-up, scrapes, convergence.
const T: Duration = Duration::from_secs(60);

/// The series the scrape test asks Prometheus for, exactly as `/metrics`
/// names them (OpenMetrics gives counters a `_total` suffix).
const SCRAPED: [&str; 8] = [
    "gossip_members",
    "raft_state",
    "raft_term",
    "raft_voters",
    "mesh_frames_sent_total",
    "mesh_frames_received_total",
    "wippy_processes",
    "kv_crdt_entries",
];

/// An app whose service writes one key of its own into a kv.crdt store,
/// so `kv_crdt_entries` is there and counts every node's key, then waits
/// for CANCEL like the `graceful` fixture.
fn app() -> PathBuf {
    const INDEX: &str = r#"version: "1.0"
namespace: app
entries:
  - name: processes
    kind: process.host
  - name: cache
    kind: store.kv.crdt
    namespace: cache
  - name: svc
    kind: process.lua
    source: file://svc.lua
    method: main
  - name: main
    kind: process.service
    process: app:svc
    host: app:processes
"#;
    const SVC: &str = r#"local store = require("store")
local system = require("system")
local function main()
    local cache = assert(store.get("app:cache"))
    assert(cache:set("node:" .. system.node.id(), true))
    print("svc started")
    local events = process.events()
    while true do
        if events:receive().kind == process.event.CANCEL then return "stopped" end
    end
end
return { main = main }
"#;
    write_tree(
        "prom-app",
        &[
            ("src/_index.yaml", INDEX),
            ("src/svc.lua", SVC),
            ("wippy.yaml", "scheduler:\n  workers: 2\n  shutdown_timeout: 5s\n"),
        ],
    )
}

// ---------------------------------------------------------------------------
// children
// ---------------------------------------------------------------------------

/// A clustered `wippy run` child with its admin listener on a port the OS
/// chose; killed on drop.
struct Node {
    child: Child,
    name: String,
    gossip: u16,
    admin: u16,
    token: Option<String>,
    stderr: Arc<Mutex<String>>,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Node {
    /// Starts cluster member `name`, joining the gossip port `join` if
    /// given, with `token` guarding the admin routes, and waits for its
    /// `admin listening addr=...` line.
    fn start(app: &Path, name: &str, join: Option<u16>, token: Option<&str>) -> Node {
        let gossip = free_port();
        let mut extra = vec![
            "admin.enabled=true".to_owned(),
            "admin.address=127.0.0.1:0".to_owned(),
            // Fast Raft timers, as in tests/common/raft.rs: the seats settle in
            // a second or two instead of the production defaults.
            "cluster.raft.heartbeat_timeout=500ms".to_owned(),
            "cluster.raft.reconcile_debounce=300ms".to_owned(),
        ];
        extra.extend(token.map(|t| format!("admin.token={t}")));
        let join = join.map(|j| format!("127.0.0.1:{j}"));
        let args = cluster_args(app, name, "127.0.0.1", gossip, join, SECRET, &extra);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut cmd = wippy_cmd(&refs);
        cmd.env_remove("WIPPY_ADMIN__ENABLED");
        let mut child = cmd.spawn().expect("spawn wippy");
        // Nobody reads stdout; drain it so the child never blocks on a full pipe.
        let mut stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let (pipe, log) = (child.stderr.take().unwrap(), stderr.clone());
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                if line.contains("admin listening")
                    && let Some(addr) = line.split("addr=").nth(1)
                {
                    let _ = tx.send(addr.trim().rsplit(':').next().and_then(|p| p.parse::<u16>().ok()));
                }
                let mut log = log.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let admin = match rx.recv_timeout(T) {
            Ok(Some(port)) => port,
            other => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{name}: no `admin listening addr=...` line: {other:?}\n{}", stderr.lock().unwrap());
            }
        };
        Node { child, name: name.to_owned(), gossip, admin, token: token.map(str::to_owned), stderr }
    }

    /// The `/metrics` body (headers cut off).
    fn metrics(&self) -> String {
        let (code, resp) = http_get(self.admin, "/metrics", self.token.as_deref());
        assert_eq!(code, 200, "{}: /metrics answered {resp}", self.name);
        resp.split_once("\r\n\r\n").map(|(_, body)| body.to_owned()).unwrap_or_default()
    }

    fn describe(&self) -> String {
        format!("--- {} stderr ---\n{}", self.name, self.stderr.lock().unwrap())
    }
}

/// One sample of an instant query: its labels and value.
type Sample = (BTreeMap<String, String>, f64);

/// A `prometheus` child with its own config and TSDB under a temp dir;
/// killed on drop.
struct Prometheus {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    /// Starts `bin` scraping `targets` (admin ports on 127.0.0.1) every
    /// second with the bearer `token`, as examples/deploy/prometheus.yml
    /// does, and waits until it reports ready.
    fn start(bin: &Path, targets: &[u16], token: &str) -> Prometheus {
        let dir = temp_dir("prometheus");
        let token_file = dir.join("wippy-admin-token");
        std::fs::write(&token_file, token).unwrap();
        let list: Vec<String> = targets.iter().map(|p| format!("'127.0.0.1:{p}'")).collect();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: wippy\n    authorization:\n      type: Bearer\n      \
             credentials_file: {}\n    static_configs:\n      - targets: [{}]\n",
            token_file.display(),
            list.join(", ")
        );
        let config_file = dir.join("prometheus.yml");
        std::fs::write(&config_file, config).unwrap();
        let log = dir.join("prometheus.log");
        let out = std::fs::File::create(&log).unwrap();
        let port = free_tcp_port();
        let child = Command::new(bin)
            .arg(format!("--config.file={}", config_file.display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
        let mut prom = Prometheus { child, port, log };
        let deadline = Instant::now() + T;
        loop {
            if let Ok((200, _)) = get(prom.port, "/-/ready") {
                return prom;
            }
            if let Ok(Some(status)) = prom.child.try_wait() {
                panic!("prometheus exited at start-up ({status})\n{}", prom.describe());
            }
            assert!(Instant::now() < deadline, "prometheus not ready within {T:?}\n{}", prom.describe());
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// `GET path` as JSON with `"status": "success"`, or why not.
    fn api(&self, path: &str) -> Result<Json, String> {
        let (code, body) = get(self.port, path)?;
        let json: Json = serde_json::from_str(&body).map_err(|e| format!("GET {path}: {e}: {body}"))?;
        if code != 200 || json["status"] != "success" {
            return Err(format!("GET {path}: {code} {body}"));
        }
        Ok(json)
    }

    /// An instant query: each sample's labels and value.
    fn query(&self, promql: &str) -> Result<Vec<Sample>, String> {
        let json = self.api(&format!("/api/v1/query?query={}", encode(promql)))?;
        let result = json["data"]["result"].as_array().ok_or_else(|| format!("{promql}: no result: {json}"))?;
        result
            .iter()
            .map(|s| {
                let labels = s["metric"]
                    .as_object()
                    .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_owned())).collect())
                    .unwrap_or_default();
                let value = s["value"][1].as_str().and_then(|v| v.parse().ok());
                value.map(|v| (labels, v)).ok_or_else(|| format!("{promql}: bad sample {s}"))
            })
            .collect()
    }

    /// `query`, one value per `instance` (the query must give one each).
    fn per_instance(&self, promql: &str) -> Result<BTreeMap<String, f64>, String> {
        Ok(self.query(promql)?.into_iter().map(|(l, v)| (l.get("instance").cloned().unwrap_or_default(), v)).collect())
    }

    fn describe(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(40).collect::<Vec<_>>().into_iter().rev().collect();
        format!("--- prometheus log (last 40 lines of {}) ---\n{}", self.log.display(), tail.join("\n"))
    }
}

/// The `prometheus` binary: on `PATH`, else Debian's `/usr/bin/prometheus`.
fn find_prometheus() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join("prometheus"))
        .chain([PathBuf::from("/usr/bin/prometheus")])
        .find(|p| p.is_file())
}

/// A TCP port nothing listens on right now (released before Prometheus binds it).
fn free_tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Percent-encodes a query-string value.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// One HTTP/1.0 GET to 127.0.0.1:`port` (1.0, so the body is never
/// chunked); the status and the body, or why there is none.
fn get(port: u16, path: &str) -> Result<(u16, String), String> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect :{port}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").map_err(|e| e.to_string())?;
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).map_err(|e| format!("GET {path}: {e}"))?;
    let resp = String::from_utf8_lossy(&resp);
    let (head, body) = resp.split_once("\r\n\r\n").ok_or_else(|| format!("GET {path}: no header end: {resp}"))?;
    let code = head.split(' ').nth(1).and_then(|c| c.parse().ok()).ok_or_else(|| format!("GET {path}: {head}"))?;
    Ok((code, body.to_owned()))
}

// ---------------------------------------------------------------------------
// the scrape
// ---------------------------------------------------------------------------

/// What Prometheus must show about the two nodes; `Err` says what is not
/// there yet.
fn check(prom: &Prometheus, nodes: &[&Node]) -> Result<String, String> {
    let want: BTreeSet<String> = nodes.iter().map(|n| format!("127.0.0.1:{}", n.admin)).collect();
    let targets = prom.api("/api/v1/targets?state=active")?;
    let active = targets["data"]["activeTargets"].as_array().cloned().unwrap_or_default();
    let mut up = BTreeSet::new();
    for t in &active {
        let instance = t["labels"]["instance"].as_str().unwrap_or("").to_owned();
        if t["health"] != "up" {
            return Err(format!("target {instance} is {} ({})", t["health"], t["lastError"]));
        }
        up.insert(instance);
    }
    if up != want {
        return Err(format!("targets up: {up:?}, want {want:?}"));
    }
    let every = |what: &str, values: &BTreeMap<String, f64>, ok: &dyn Fn(f64) -> bool| -> Result<(), String> {
        let keys: BTreeSet<String> = values.keys().cloned().collect();
        if keys != want || !values.values().all(|v| ok(*v)) {
            return Err(format!("{what}: {values:?}"));
        }
        Ok(())
    };
    let alive = prom.per_instance(r#"gossip_members{state="alive"}"#)?;
    every("gossip_members{state=\"alive\"} == 2", &alive, &|v| v == 2.0)?;
    let states = prom.query("gossip_members")?;
    let labels: BTreeSet<&str> = states.iter().filter_map(|(l, _)| l.get("state").map(String::as_str)).collect();
    if !labels.contains("alive") || states.len() < 2 * labels.len() {
        return Err(format!("gossip_members by state: {states:?}"));
    }
    let processes = prom.per_instance("wippy_processes")?;
    every("wippy_processes >= 1", &processes, &|v| v >= 1.0)?;
    let term = prom.per_instance("raft_term")?;
    every("raft_term >= 1", &term, &|v| v >= 1.0)?;
    let state = prom.per_instance("raft_state")?;
    every("raft_state in 0..=2", &state, &|v| [0.0, 1.0, 2.0].contains(&v))?;
    let leaders: Vec<&String> = state.iter().filter(|(_, v)| **v == 2.0).map(|(i, _)| i).collect();
    let [leader] = leaders[..] else { return Err(format!("one raft_state == 2 (leader): {state:?}")) };
    let voters = prom.per_instance("raft_voters")?;
    let standbys = prom.per_instance("raft_non_voters")?;
    let seats = voters.get(leader).copied().unwrap_or(0.0) + standbys.get(leader).copied().unwrap_or(0.0);
    if voters.get(leader).copied().unwrap_or(0.0) < 1.0 || seats != 2.0 {
        return Err(format!("the leader {leader} seats both nodes: voters {voters:?}, standbys {standbys:?}"));
    }
    let classes = prom.query("mesh_frames_sent_total")?;
    if !classes.iter().any(|(l, _)| l.get("class").is_some_and(|c| c == "raft")) {
        return Err(format!("mesh_frames_sent_total has a class=\"raft\" series: {classes:?}"));
    }
    let sent = prom.per_instance("sum by (instance) (mesh_frames_sent_total)")?;
    every("mesh_frames_sent_total > 0", &sent, &|v| v > 0.0)?;
    let received = prom.per_instance("sum by (instance) (mesh_frames_received_total)")?;
    every("mesh_frames_received_total > 0", &received, &|v| v > 0.0)?;
    let entries = prom.per_instance(r#"kv_crdt_entries{namespace="cache"}"#)?;
    every("kv_crdt_entries{namespace=\"cache\"} == 2 (each node's key)", &entries, &|v| v == 2.0)?;
    Ok(format!(
        "leader {leader}, term {term:?}, voters {voters:?}, standbys {standbys:?}, processes {processes:?}, \
         frames sent {sent:?}, received {received:?}"
    ))
}

#[test]
fn prometheus_scrapes_a_two_node_cluster() {
    let Some(bin) = find_prometheus() else {
        eprintln!("skipped: prometheus not installed (no `prometheus` on PATH, no /usr/bin/prometheus)");
        return;
    };
    let started = Instant::now();
    let app = app();
    let token = "t93-scrape-token";
    let n1 = Node::start(&app, "n1", None, Some(token));
    let n2 = Node::start(&app, "n2", Some(n1.gossip), Some(token));
    // The names asked of Prometheus below are the ones the node renders.
    for node in [&n1, &n2] {
        let body = node.metrics();
        for name in SCRAPED {
            assert!(
                body.lines().any(|l| l.strip_prefix(name).is_some_and(|r| r.starts_with([' ', '{']))),
                "{}: no {name} sample in /metrics:\n{body}",
                node.name
            );
        }
    }
    let prom = Prometheus::start(&bin, &[n1.admin, n2.admin], token);
    let deadline = Instant::now() + T;
    let seen = loop {
        match check(&prom, &[&n1, &n2]) {
            Ok(seen) => break seen,
            Err(why) if Instant::now() >= deadline => {
                panic!(
                    "Prometheus never showed the cluster within {T:?}: {why}\n{}\n{}\n{}",
                    prom.describe(),
                    n1.describe(),
                    n2.describe()
                );
            }
            Err(_) => std::thread::sleep(Duration::from_millis(500)),
        }
    };
    // Every query of the dashboard parses and evaluates in a real Prometheus.
    let mut queries = Vec::new();
    exprs(dashboard()["panels"].as_array().expect("panels"), &mut queries);
    for (title, expr) in queries {
        let promql = expr.replace("$instance", ".*").replace("$__rate_interval", "1m");
        if let Err(e) = prom.query(&promql) {
            panic!("dashboard panel {title:?}: {expr:?} does not evaluate: {e}");
        }
    }
    eprintln!("prometheus saw: {seen} ({:.1?} after start)", started.elapsed());
}

// ---------------------------------------------------------------------------
// the dashboard
// ---------------------------------------------------------------------------

/// PromQL words that are not metrics: operators, and the aggregations
/// (which may be followed by `by (...)` instead of their parenthesis).
const KEYWORDS: [&str; 19] = [
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "limitk",
    "limit_ratio",
];
/// PromQL words followed by a parenthesised list of label names.
const GROUPING: [&str; 6] = ["by", "without", "on", "ignoring", "group_left", "group_right"];

/// The metric names a PromQL expression selects: identifiers outside label
/// matchers, ranges, strings and grouping lists that are neither functions
/// (followed by `(`), keywords nor Grafana variables.
fn metric_names(expr: &str) -> Vec<String> {
    let c: Vec<char> = expr.chars().collect();
    let skip_to = |mut i: usize, close: char| {
        let mut quote = None;
        while i < c.len() {
            match (quote, c[i]) {
                (Some(q), ch) if ch == q => quote = None,
                (Some(_), '\\') => i += 1,
                (None, ch) if ch == close => return i + 1,
                (None, '"' | '\'' | '`') => quote = Some(c[i]),
                _ => {}
            }
            i += 1;
        }
        i
    };
    let word_end = |mut i: usize| {
        while i < c.len() && (c[i].is_ascii_alphanumeric() || c[i] == '_' || c[i] == ':') {
            i += 1;
        }
        i
    };
    let (mut out, mut i, mut grouping) = (Vec::new(), 0, false);
    while i < c.len() {
        match c[i] {
            '{' => i = skip_to(i + 1, '}'),
            '[' => i = skip_to(i + 1, ']'),
            '(' if grouping => {
                grouping = false;
                i = skip_to(i + 1, ')');
            }
            q @ ('"' | '\'' | '`') => i = skip_to(i + 1, q),
            '$' if c.get(i + 1) == Some(&'{') => i = skip_to(i + 2, '}'),
            '$' => i = word_end(i + 1),
            ch if ch.is_ascii_digit() || ch == '.' => i = word_end(i + 1),
            ch if ch.is_ascii_alphabetic() || ch == '_' || ch == ':' => {
                let end = word_end(i);
                let word: String = c[i..end].iter().collect();
                let next = c[end..].iter().find(|ch| !ch.is_whitespace());
                if GROUPING.contains(&word.as_str()) {
                    grouping = true;
                } else if !KEYWORDS.contains(&word.as_str()) && next != Some(&'(') {
                    out.push(word);
                }
                i = end;
            }
            _ => i += 1,
        }
    }
    out
}

/// Every `targets[].expr` of every panel, rows' nested panels included,
/// with the panel's title.
fn exprs(panels: &[Json], out: &mut Vec<(String, String)>) {
    for panel in panels {
        let title = panel["title"].as_str().unwrap_or("?").to_owned();
        for t in panel["targets"].as_array().into_iter().flatten() {
            if let Some(e) = t["expr"].as_str() {
                out.push((title.clone(), e.to_owned()));
            }
        }
        exprs(panel["panels"].as_array().map_or(&[][..], Vec::as_slice), out);
    }
}

#[test]
fn the_promql_scanner_finds_metric_names() {
    let names = |e: &str| metric_names(e);
    assert_eq!(
        names(
            r#"histogram_quantile(0.99, sum by (le) (rate(gossip_convergence_seconds_bucket{instance=~"$instance"}[$__rate_interval])))"#
        ),
        ["gossip_convergence_seconds_bucket"]
    );
    assert_eq!(
        names("sum(rate(mesh_bytes_sent_total[5m])) by (class) / on (class) up"),
        ["mesh_bytes_sent_total", "up"]
    );
    assert_eq!(names("raft_voters + raft_non_voters offset 1m"), ["raft_voters", "raft_non_voters"]);
    assert_eq!(names(r#"gossip_members{state="a}b"} > bool 0"#), ["gossip_members"]);
}

fn dashboard_file() -> PathBuf {
    root().join("examples/deploy/grafana-dashboard.json")
}

/// `examples/deploy/grafana-dashboard.json`, parsed.
fn dashboard() -> Json {
    let file = dashboard_file();
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: not JSON: {e}", file.display()))
}

#[test]
fn the_grafana_dashboard_queries_what_a_node_exposes() {
    let file = dashboard_file();
    let dash = dashboard();
    assert_eq!(dash["schemaVersion"], 39);
    assert!(
        dash["__inputs"].as_array().into_iter().flatten().any(|i| i["name"] == "DS_PROMETHEUS"),
        "a DS_PROMETHEUS datasource input"
    );
    let mut found = Vec::new();
    exprs(dash["panels"].as_array().expect("panels"), &mut found);
    assert!(found.len() >= 15, "{} queries", found.len());

    // A clustered node with a kv.crdt store declared, so every family has samples.
    let node = Node::start(&app(), "dash", None, None);
    let body = node.metrics();
    let exposed: BTreeSet<&str> = body
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .collect();
    let families: BTreeMap<&str, &str> =
        body.lines().filter_map(|l| l.strip_prefix("# TYPE ")).filter_map(|l| l.split_once(' ')).collect();
    assert!(families.contains_key("kv_crdt_entries"), "kv_crdt_entries rendered:\n{body}");

    let mut used = BTreeSet::new();
    for (title, expr) in &found {
        let names = metric_names(expr);
        assert!(!names.is_empty(), "panel {title:?}: no metric in {expr:?}");
        for name in names {
            assert!(
                exposed.contains(name.as_str()),
                "panel {title:?}: {name} (in {expr:?}) is not in a node's /metrics; it has {exposed:?}"
            );
            used.insert(name);
        }
    }
    for (family, kind) in &families {
        let series: &[&str] = match *kind {
            "counter" => &["_total"],
            "histogram" => &["_bucket", "_sum", "_count"],
            _ => &[""],
        };
        assert!(
            series.iter().any(|s| used.contains(&format!("{family}{s}"))),
            "no panel of {} shows the {kind} family {family}; add one",
            file.display()
        );
    }
}
