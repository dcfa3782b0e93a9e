//! Helpers shared by the integration tests.
//!
//! Two ways to drive real processes:
//! - through the `wippy` binary ([`run`], [`script`], [`Running`]): every
//!   child gets a deadline and is killed (and the test failed) when it hangs;
//! - through the runtime API ([`start`], [`Harness::run`]): a node in this
//!   test process, with the result of each watched process as a [`Value`].
#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use wippy_runtime::{App, Definition, Node, NodeOptions, Value};

// ---------------------------------------------------------------------------
// paths
// ---------------------------------------------------------------------------

/// The `wippy` binary under test.
pub fn wippy_bin() -> &'static str {
    env!("CARGO_BIN_EXE_wippy")
}

/// The repository root (the root package's manifest dir).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `tests/lua/<name>`.
pub fn lua_fixture(name: &str) -> PathBuf {
    root().join("tests").join("lua").join(name)
}

/// `tests/apps/<name>`.
pub fn app_fixture(name: &str) -> PathBuf {
    root().join("tests").join("apps").join(name)
}

/// `examples/<name>`.
pub fn example(name: &str) -> PathBuf {
    root().join("examples").join(name)
}

/// A fresh, empty directory under Cargo's per-target temp dir.
pub fn temp_dir(tag: &str) -> PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{tag}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

/// Writes `files` (relative path, contents) under a fresh temp dir and returns it.
pub fn write_tree(tag: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = temp_dir(tag);
    for (rel, text) in files {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
    }
    dir
}

// ---------------------------------------------------------------------------
// the binary
// ---------------------------------------------------------------------------

/// What a finished `wippy` invocation produced.
#[derive(Debug)]
pub struct Output {
    /// Exit code (`None` when killed by a signal).
    pub code: Option<i32>,
    /// stdout, as text.
    pub stdout: String,
    /// stderr, as text.
    pub stderr: String,
}

impl Output {
    /// stdout split into lines.
    pub fn lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }

    /// Panics with everything printed unless the exit code is `code`.
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(self.code, Some(code), "unexpected exit code\n{}", self.describe());
        self
    }

    /// Panics unless stdout has a line equal to `line`.
    pub fn expect_line(&self, line: &str) -> &Self {
        assert!(self.stdout.lines().any(|l| l == line), "no stdout line {line:?}\n{}", self.describe());
        self
    }

    /// Everything, for failure messages.
    pub fn describe(&self) -> String {
        format!("exit code: {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}", self.code, self.stdout, self.stderr)
    }
}

/// A `wippy` command with the test environment: no admin listener (several
/// nodes run at once) and no inherited `WIPPY_*`/`RUST_LOG` settings.
pub fn wippy_cmd(args: &[&str]) -> Command {
    let mut cmd = Command::new(wippy_bin());
    cmd.args(args);
    for (k, _) in std::env::vars_os() {
        if let Some(k) = k.to_str()
            && (k.starts_with("WIPPY_") || k == "RUST_LOG")
        {
            cmd.env_remove(k);
        }
    }
    cmd.env("WIPPY_ADMIN__ENABLED", "false");
    // Every node gets its own data directory (Raft's log lives there), so
    // nodes started side by side never share or inherit state.
    cmd.env("WIPPY_NODE__DATA_DIR", temp_dir("node-data"));
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd
}

/// Runs `wippy args...` to completion; kills it and fails the test after `timeout`.
pub fn run(args: &[&str], timeout: Duration) -> Output {
    run_cmd(wippy_cmd(args), timeout)
}

/// Runs a prepared command to completion under a deadline.
pub fn run_cmd(mut cmd: Command, timeout: Duration) -> Output {
    let mut child = cmd.spawn().expect("spawn wippy");
    let out = collect(child.stdout.take().unwrap());
    let err = collect(child.stderr.take().unwrap());
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break Some(st);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let output =
        Output { code: status.and_then(|s| s.code()), stdout: out.join().unwrap(), stderr: err.join().unwrap() };
    if status.is_none() {
        panic!(
            "wippy {:?} did not finish within {timeout:?}; killed\n{}",
            cmd.get_args().collect::<Vec<_>>(),
            output.describe()
        );
    }
    output
}

fn collect(mut r: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    })
}

/// `wippy run tests/lua/<name> [extra...]` with a 20 s deadline.
pub fn script(name: &str, extra: &[&str]) -> Output {
    let path = lua_fixture(name);
    let mut args = vec!["run", path.to_str().unwrap()];
    args.extend_from_slice(extra);
    run(&args, Duration::from_secs(20))
}

/// Stdout lines with their arrival times, and a condvar signalled per line.
type Lines = (Mutex<Vec<(Instant, String)>>, Condvar);

/// A `wippy` child that keeps running: stdout is read line by line, with the
/// time each line arrived, so a test can wait for a line and then signal it.
pub struct Running {
    child: Option<Child>,
    lines: Arc<Lines>,
    stdout_done: Option<std::thread::JoinHandle<()>>,
    stderr: Option<std::thread::JoinHandle<String>>,
    /// When the child was started.
    pub started: Instant,
}

impl Running {
    /// Starts `wippy args...`.
    pub fn start(args: &[&str]) -> Running {
        Running::start_cmd(wippy_cmd(args))
    }

    /// Starts a prepared command.
    pub fn start_cmd(mut cmd: Command) -> Running {
        let started = Instant::now();
        let mut child = cmd.spawn().expect("spawn wippy");
        let lines: Arc<Lines> = Arc::default();
        let l2 = lines.clone();
        let stdout = child.stdout.take().unwrap();
        let stdout_done = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let (m, cv) = &*l2;
                m.lock().unwrap().push((Instant::now(), line));
                cv.notify_all();
            }
        });
        let stderr = collect(child.stderr.take().unwrap());
        Running { child: Some(child), lines, stdout_done: Some(stdout_done), stderr: Some(stderr), started }
    }

    /// The OS pid of the child.
    pub fn os_pid(&self) -> i32 {
        self.child.as_ref().unwrap().id() as i32
    }

    /// The stdout lines so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.0.lock().unwrap().iter().map(|(_, l)| l.clone()).collect()
    }

    /// The stdout lines so far with their arrival times.
    pub fn timed_lines(&self) -> Vec<(Instant, String)> {
        self.lines.0.lock().unwrap().clone()
    }

    /// Waits until `pred` holds for the lines so far; panics (after killing
    /// the child) when it does not within `timeout`.
    pub fn wait_until(&mut self, what: &str, timeout: Duration, pred: impl Fn(&[(Instant, String)]) -> bool) {
        let deadline = Instant::now() + timeout;
        let (m, cv) = &*self.lines;
        let mut g = m.lock().unwrap();
        loop {
            if pred(&g) {
                return;
            }
            let now = Instant::now();
            if now >= deadline {
                let seen: Vec<String> = g.iter().map(|(_, l)| l.clone()).collect();
                drop(g);
                let out = self.kill();
                panic!("timed out after {timeout:?} waiting for {what}\nlines seen: {seen:#?}\n{}", out.describe());
            }
            g = cv.wait_timeout(g, (deadline - now).min(Duration::from_millis(50))).unwrap().0;
        }
    }

    /// Waits for a stdout line for which `pred` holds and returns it.
    pub fn wait_line(&mut self, timeout: Duration, pred: impl Fn(&str) -> bool) -> String {
        self.wait_until("a matching line", timeout, |ls| ls.iter().any(|(_, l)| pred(l)));
        self.lines().into_iter().find(|l| pred(l)).unwrap()
    }

    /// Sends a signal to the child.
    pub fn signal(&self, sig: i32) {
        // SAFETY: plain kill(2) on our own child's pid.
        let rc = unsafe { libc::kill(self.os_pid(), sig) };
        assert_eq!(rc, 0, "kill({}, {sig}) failed", self.os_pid());
    }

    /// Waits for the child to exit; kills it and panics after `timeout`.
    pub fn wait(&mut self, timeout: Duration) -> Output {
        let deadline = Instant::now() + timeout;
        loop {
            let st = self.child.as_mut().unwrap().try_wait().expect("wait");
            if let Some(st) = st {
                return self.finish(st.code());
            }
            if Instant::now() >= deadline {
                let out = self.kill();
                panic!("wippy did not exit within {timeout:?}; killed\n{}", out.describe());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Kills the child (if still running) and returns what it printed.
    pub fn kill(&mut self) -> Output {
        let code = match self.child.as_mut() {
            Some(c) => {
                let _ = c.kill();
                c.wait().ok().and_then(|s| s.code())
            }
            None => None,
        };
        self.finish(code)
    }

    fn finish(&mut self, code: Option<i32>) -> Output {
        self.child = None;
        if let Some(j) = self.stdout_done.take() {
            let _ = j.join();
        }
        let stderr = self.stderr.take().map(|j| j.join().unwrap()).unwrap_or_default();
        Output { code, stdout: self.lines().join("\n"), stderr }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

// ---------------------------------------------------------------------------
// the runtime API
// ---------------------------------------------------------------------------

/// The host every harness node has.
pub const HOST: &str = "test:host";

/// How long a watched process may take before the test fails.
pub const RESULT_TIMEOUT: Duration = Duration::from_secs(20);

/// A node running in the test process; stopped with `Node::shutdown` when
/// the harness is dropped.
pub struct Harness {
    node: Option<Node>,
}

impl Drop for Harness {
    fn drop(&mut self) {
        let Some(node) = self.node.take() else { return };
        // Shut down on another thread so that a hanging shutdown (a runtime
        // bug, see `t50_robustness::node_shutdown_never_hangs`) cannot hang
        // the test binary; such a node is leaked with a warning.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(node.shutdown());
        });
        if rx.recv_timeout(Duration::from_secs(10)).is_err() {
            eprintln!("warning: Node::shutdown did not return within 10 s; leaking the node");
        }
    }
}

/// Node options for tests: `workers` threads, a short shutdown.
pub fn options(workers: usize) -> NodeOptions {
    NodeOptions { node_id: "t".into(), workers, shutdown_timeout: Duration::from_secs(2), ..NodeOptions::default() }
}

/// Starts a node with `defs` (id, Lua source returning `{ main = fn }`; the
/// [`PRELUDE`] is prepended to each).
pub fn start(workers: usize, defs: &[(&str, &str)]) -> Harness {
    start_with(options(workers), defs)
}

/// Starts a node with explicit options.
pub fn start_with(opts: NodeOptions, defs: &[(&str, &str)]) -> Harness {
    let defs = defs.iter().map(|(id, src)| Definition::new(id, &lua(src), "main")).collect();
    let node = Node::start(opts, App::with_host(HOST, defs)).expect("node starts");
    Harness { node: Some(node) }
}

impl Harness {
    /// The node.
    pub fn node(&self) -> &Node {
        self.node.as_ref().expect("node")
    }

    /// Stops the node and returns its exit code; panics when that takes
    /// longer than `timeout`.
    pub fn shutdown(mut self, timeout: Duration) -> i32 {
        let node = self.node.take().expect("node");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(node.shutdown());
        });
        rx.recv_timeout(timeout).unwrap_or_else(|_| panic!("Node::shutdown did not return within {timeout:?}"))
    }

    /// Spawns `id` with `args` and waits for its result.
    pub fn run(&self, id: &str, args: Vec<Value>) -> Result<Value, String> {
        let (pid, rx) = self.node().spawn_watched(id, HOST, args).expect("spawn_watched");
        match rx.recv_timeout(RESULT_TIMEOUT) {
            Ok(r) => r,
            Err(e) => panic!("process {id} ({pid}) gave no result within {RESULT_TIMEOUT:?}: {e}"),
        }
    }

    /// Runs `id`, which must return the string `"ok"` (the Lua side asserts).
    pub fn run_ok(&self, id: &str, args: Vec<Value>) {
        match self.run(id, args) {
            Ok(v) if v.as_str() == Some("ok") => {}
            other => panic!("{id}: expected Ok(\"ok\"), got {}", show(&other)),
        }
    }

    /// Runs `id` and converts its successful result to JSON for assertions.
    pub fn run_json(&self, id: &str, args: Vec<Value>) -> serde_json::Value {
        match self.run(id, args) {
            Ok(v) => to_json(&v),
            Err(e) => panic!("{id} failed:\n{e}"),
        }
    }
}

/// Small definitions every [`lua_ok`] node also has:
/// - `t:echo`: answers each message with topic "pong" and the same payload
///   (a table payload gets `sender = <from>` added); returns on topic "stop";
/// - `t:quick(v)`: returns `v`;
/// - `t:fail(text)`: raises `text` (default "boom");
/// - `t:wait`: waits for one inbox message, returns its payload;
/// - `t:sleeper(to, ms)`: sleeps `ms`, then sends `ms` to `to` (topic "woke");
/// - `t:forever`: waits forever (only dies when killed);
/// - `t:fail_on_msg`: waits for one message, then raises its payload.
pub const STD_DEFS: &[(&str, &str)] = &[
    (
        "t:echo",
        r#"
return { main = function()
    local inbox = process.inbox()
    while true do
        local m = inbox:receive()
        if m:topic() == "stop" then return "stopped" end
        local d = m:payload():data()
        if type(d) == "table" then d.sender = m:from() end
        process.send(m:from(), "pong", d)
    end
end }
"#,
    ),
    ("t:quick", "return { main = function(v) return v end }"),
    ("t:fail", "return { main = function(text) error(text or 'boom') end }"),
    ("t:wait", "return { main = function() return process.inbox():receive():payload():data() end }"),
    ("t:sleeper", "return { main = function(to, ms) time.sleep(ms); process.send(to, 'woke', ms) end }"),
    ("t:forever", "return { main = function() channel.new():receive() end }"),
    (
        "t:fail_on_msg",
        "return { main = function() local m = process.inbox():receive(); error(m:payload():data() or 'failed on request') end }",
    ),
];

/// Runs one Lua test body on a fresh node: `body` is the source of a file
/// returning `{ main = fn }` (id `t:main`, with [`STD_DEFS`] next to it);
/// the process must return `"ok"`.
pub fn lua_ok(workers: usize, body: &str) {
    lua_ok_with(workers, body, &[]);
}

/// [`lua_ok`] with more definitions.
pub fn lua_ok_with(workers: usize, body: &str, defs: &[(&str, &str)]) {
    let mut all: Vec<(&str, &str)> = vec![("t:main", body)];
    all.extend_from_slice(STD_DEFS);
    all.extend_from_slice(defs);
    let h = start(workers, &all);
    h.run_ok("t:main", Vec::new());
}

/// A string value.
pub fn s(text: &str) -> Value {
    Value::str(text)
}

/// Renders a result for failure messages.
pub fn show(r: &Result<Value, String>) -> String {
    match r {
        Ok(v) => format!("Ok({})", to_json(v)),
        Err(e) => format!("Err:\n{e}"),
    }
}

/// A [`Value`] as JSON (map keys become strings; errors become `{kind, message}`).
pub fn to_json(v: &Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        Value::Nil => J::Null,
        Value::Bool(b) => J::Bool(*b),
        Value::Int(i) => J::from(*i),
        Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
        Value::Str(b) => J::String(String::from_utf8_lossy(b).into_owned()),
        Value::Array(items) => J::Array(items.iter().map(to_json).collect()),
        Value::Map(pairs) => {
            let mut m = serde_json::Map::new();
            for (k, x) in pairs {
                let key = match k {
                    Value::Str(b) => String::from_utf8_lossy(b).into_owned(),
                    other => to_json(other).to_string(),
                };
                m.insert(key, to_json(x));
            }
            J::Object(m)
        }
        Value::Error { kind, message } => serde_json::json!({ "kind": kind, "message": message }),
    }
}

/// The counter of a PID string `{node@host|0x0002a}`.
pub fn pid_counter(pid: &str) -> u64 {
    let hex =
        pid.rsplit_once("|0x").map(|(_, h)| h.trim_end_matches('}')).unwrap_or_else(|| panic!("not a pid: {pid}"));
    u64::from_str_radix(hex, 16).unwrap_or_else(|_| panic!("not a pid: {pid}"))
}

/// Polls `pred` every 5 ms until it holds; panics after `timeout`.
pub fn wait_for(what: &str, timeout: Duration, mut pred: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !pred() {
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A path as `&str` (test paths are UTF-8).
pub fn p(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// Lua helpers prepended (on the first line, so line numbers stay) to every
/// source given to [`lua`]:
/// - `eq(got, want, what)`, `has(text, part, what)`: assertions;
/// - `recv(ch [, ms])`: receive with a deadline (error on timeout);
/// - `quiet(ch, ms)`: asserts nothing arrives within `ms`;
/// - `event(kind [, ms])`: the next lifecycle event of that kind (events of
///   other kinds received meanwhile are kept for later `event` calls);
/// - `no_event(ms)`: asserts no lifecycle event is pending or arrives in `ms`;
/// - `msg([ms])`: the next inbox message;
/// - `HOST`: the harness host id.
pub const PRELUDE: &str = concat!(
    "local time = require('time'); local json = require('json'); local HOST = 'test:host'; ",
    "local function eq(a, b, what) if a ~= b then error((what or 'value') .. ': expected ' .. tostring(b) .. ', got ' .. tostring(a), 2) end end; ",
    "local function has(s, part, what) if type(s) ~= 'string' or not string.find(s, part, 1, true) then error((what or 'text') .. ': expected to contain ' .. tostring(part) .. ', got ' .. tostring(s), 2) end end; ",
    "local function recv(ch, ms) local t = time.after(ms or 5000); local r = channel.select{ ch:case_receive(), t:case_receive() }; if r.channel == t then error('timed out after ' .. tostring(ms or 5000) .. ' ms waiting on a channel', 2) end; return r.value, r.ok end; ",
    "local function quiet(ch, ms) local t = time.after(ms); local r = channel.select{ ch:case_receive(), t:case_receive() }; if r.channel ~= t then local v = r.value; if type(v) == 'table' and v.kind then v = v.kind .. ' from ' .. tostring(v.from) end; error('expected nothing, got ' .. tostring(v), 2) end end; ",
    "local PENDING = {}; ",
    "local function event(kind, ms) for i, ev in ipairs(PENDING) do if ev.kind == kind then table.remove(PENDING, i); return ev end end; local evs = process.events(); local deadline = time.monotonic() + (ms or 5000); while true do local left = deadline - time.monotonic(); if left <= 0 then error('timed out waiting for event ' .. kind, 2) end; local ev = recv(evs, left); if ev.kind == kind then return ev end; PENDING[#PENDING + 1] = ev end end; ",
    "local function no_event(ms) if PENDING[1] then error('unexpected event ' .. PENDING[1].kind .. ' from ' .. tostring(PENDING[1].from), 2) end; quiet(process.events(), ms) end; ",
    "local function msg(ms) return recv(process.inbox(), ms) end; ",
);

/// `PRELUDE` + `body`.
pub fn lua(body: &str) -> String {
    format!("{PRELUDE}{body}")
}

// ---------------------------------------------------------------------------
// clusters of `wippy run` processes
// ---------------------------------------------------------------------------

/// Base64 of 32 bytes 0..31, and of 32 bytes 0xff: two different secrets.
pub const SECRET: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
pub const OTHER_SECRET: &str = "//////////////////////////////////////////8=";

/// A UDP port nothing listens on right now. Released before the node binds
/// it; a race with another process is possible but unlikely on a test host.
pub fn free_port() -> u16 {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind a probe socket");
    s.local_addr().expect("probe address").port()
}

/// Starts `wippy run app` as cluster member `name` with gossip on
/// 127.0.0.1:`port`, joining 127.0.0.1:`join` when given, plus `extra`
/// `--set` assignments.
pub fn cluster_node(app: &Path, name: &str, port: u16, join: Option<u16>, secret: &str, extra: &[String]) -> Running {
    let join = join.map(|j| format!("127.0.0.1:{j}"));
    let args = cluster_args(app, name, "127.0.0.1", port, join, secret, extra);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    Running::start(&refs)
}

/// The `wippy run` arguments of cluster node `name`: gossip on
/// `addr:port` and the mesh on `addr`, joining `join` (`ip:port`) if given,
/// then `extra` (`--set` values).
pub fn cluster_args(
    app: &Path,
    name: &str,
    addr: &str,
    port: u16,
    join: Option<String>,
    secret: &str,
    extra: &[String],
) -> Vec<String> {
    let mut sets = vec![
        "cluster.enabled=true".to_owned(),
        format!("node.name={name}"),
        format!("cluster.membership.bind_addr={addr}"),
        format!("cluster.membership.bind_port={port}"),
        format!("cluster.membership.secret_key={secret}"),
        format!("cluster.internode.bind_addr={addr}"),
    ];
    if let Some(j) = join {
        sets.push(format!("cluster.membership.join_addrs={j}"));
    }
    sets.extend(extra.iter().cloned());
    let mut args: Vec<String> = vec!["run".into(), p(app).into()];
    for s in sets {
        args.push("--set".into());
        args.push(s);
    }
    args
}

/// One HTTP/1.1 GET to 127.0.0.1:`port`; returns the status code and the
/// raw response.
pub fn http_get(port: u16, path: &str, token: Option<&str>) -> (u16, String) {
    use std::io::Write;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect to admin");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Connection: close\r\n\r\n").unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).expect("read response");
    let status = resp.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or_else(|| panic!("bad response: {resp}"));
    (status, resp)
}

/// The value of the Prometheus sample `name` (with its labels, exactly as
/// rendered) in a `/metrics` body.
pub fn metric(body: &str, name: &str) -> Option<f64> {
    body.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}
