//! A `wippy run` child process seen from the bench: started with the
//! cluster settings on 127.0.0.1, its stdout read line by line and stamped
//! with the time each line arrived, so the membership figures come from the
//! bench's own clock and never depend on two nodes' clocks agreeing.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// The gossip key every benchmark node shares (any 32 bytes will do).
const SECRET: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// Stdout lines with their arrival times.
type Lines = Arc<Mutex<Vec<(Instant, String)>>>;

/// One running node.
pub(crate) struct Wippy {
    /// Its `node.name`.
    pub(crate) name: String,
    /// Its gossip (UDP) port, which other nodes join through.
    pub(crate) port: u16,
    /// Its admin port, when the admin listener is on.
    pub(crate) admin: Option<u16>,
    /// When the bench spawned it.
    pub(crate) started: Instant,
    child: Child,
    lines: Lines,
    stderr: Option<JoinHandle<String>>,
    /// Its `node.data_dir` (Raft's log lives there), removed on drop.
    data_dir: std::path::PathBuf,
}

impl Wippy {
    /// Starts `wippy run app` as node `name` with gossip on `port`, joining
    /// the gossip ports `join` (none: a new cluster); `admin` turns the
    /// admin listener on (metrics). `extra` are more `--set` overrides.
    pub(crate) fn start(
        app: &Path,
        name: &str,
        port: u16,
        join: &[u16],
        admin: bool,
        extra: &[String],
    ) -> Result<Wippy> {
        let admin = if admin { Some(free_tcp_port()?) } else { None };
        let mut sets = vec![
            "cluster.enabled=true".to_owned(),
            format!("node.name={name}"),
            "cluster.membership.bind_addr=127.0.0.1".to_owned(),
            format!("cluster.membership.bind_port={port}"),
            format!("cluster.membership.secret_key={SECRET}"),
            "cluster.internode.bind_addr=127.0.0.1".to_owned(),
        ];
        if !join.is_empty() {
            let addrs: Vec<String> = join.iter().map(|j| format!("127.0.0.1:{j}")).collect();
            sets.push(format!("cluster.membership.join_addrs={}", addrs.join(",")));
        }
        if let Some(a) = admin {
            sets.push("admin.enabled=true".to_owned());
            sets.push(format!("admin.address=127.0.0.1:{a}"));
        }
        sets.extend(extra.iter().cloned());
        let mut cmd = Command::new(super::wippy_bin()?);
        cmd.arg("run").arg(app);
        for s in sets {
            cmd.arg("--set").arg(s);
        }
        // Several nodes run at once: no admin listener unless asked for, and
        // nothing inherited that could change what is measured.
        for (k, _) in std::env::vars_os() {
            if k.to_str().is_some_and(|k| k.starts_with("WIPPY_") || k == "RUST_LOG") {
                cmd.env_remove(k);
            }
        }
        cmd.env("WIPPY_ADMIN__ENABLED", "false");
        let data_dir = std::env::temp_dir().join(format!("wippy-bench-{}-{name}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&data_dir);
        cmd.env("WIPPY_NODE__DATA_DIR", &data_dir);
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let started = Instant::now();
        let mut child = cmd.spawn().with_context(|| format!("starting node {name}"))?;
        let lines: Lines = Arc::default();
        let sink = lines.clone();
        let stdout = child.stdout.take().context("stdout")?;
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                sink.lock().unwrap_or_else(|e| e.into_inner()).push((Instant::now(), line));
            }
        });
        let mut err = child.stderr.take().context("stderr")?;
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        });
        Ok(Wippy { name: name.to_owned(), port, admin, started, child, lines, stderr: Some(stderr), data_dir })
    }

    /// The stdout lines so far, with arrival times.
    pub(crate) fn lines(&self) -> Vec<(Instant, String)> {
        self.lines.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Fails if the process has exited: a node that died on its own makes
    /// every later figure meaningless.
    pub(crate) fn check_alive(&mut self) -> Result<()> {
        if let Some(st) = self.child.try_wait()? {
            let err = self.stderr.take().and_then(|j| j.join().ok()).unwrap_or_default();
            let tail: Vec<_> = err.lines().rev().take(20).collect::<Vec<_>>().into_iter().rev().collect();
            bail!("node {} exited ({st}); stderr tail:\n{}", self.name, tail.join("\n"));
        }
        Ok(())
    }

    /// SIGKILLs the node and returns the instant just before the signal.
    pub(crate) fn kill(&mut self) -> Instant {
        let t = Instant::now();
        let _ = self.child.kill();
        let _ = self.child.wait();
        t
    }

    /// Stops the process (SIGSTOP) without ending it: it holds its sockets
    /// and says nothing, like a hung process or a host that went away.
    pub(crate) fn stop(&mut self) -> Instant {
        let t = Instant::now();
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGSTOP);
        }
        t
    }

    /// The OS process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The admin `/metrics` body.
    pub(crate) fn metrics(&self) -> Result<String> {
        let port = self.admin.context("admin listener is off")?;
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).context("connecting to admin")?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        write!(s, "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")?;
        let mut resp = String::new();
        s.read_to_string(&mut resp)?;
        Ok(resp)
    }
}

impl Drop for Wippy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

/// The value of the Prometheus sample `name` (labels included, exactly as
/// rendered) in a `/metrics` body; a counter never touched is absent: 0.
pub(crate) fn metric(body: &str, name: &str) -> f64 {
    body.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok()).unwrap_or(0.0)
}

/// Polls `cond` every 2 ms until it holds; an error after `timeout` names
/// `what`. The figures come from line timestamps, so the poll rate only
/// decides how soon the bench moves on.
pub(crate) fn wait_for(what: &str, timeout: Duration, mut cond: impl FnMut() -> Result<bool>) -> Result<()> {
    let t = Instant::now();
    while !cond()? {
        if t.elapsed() > timeout {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    Ok(())
}

/// An app directory written for the nodes; removed when dropped, also when
/// a benchmark fails half-way.
pub(crate) struct AppDir(PathBuf);

impl AppDir {
    /// Its path, for `wippy run`.
    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for AppDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Writes the benchmark app for one node into a fresh directory: the Lua
/// files of `bench/apps/cluster` plus `services` appended to its index.
pub(crate) fn write_app(tag: &str, services: &str) -> Result<AppDir> {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("wippy-bench-{}-{tag}-{n}", std::process::id()));
    let app = AppDir(dir);
    let src = app.0.join("src");
    std::fs::create_dir_all(&src).with_context(|| format!("creating {}", src.display()))?;
    let index = format!("{}{services}", include_str!("../../apps/cluster/src/_index.yaml"));
    for (file, text) in [
        ("_index.yaml", index.as_str()),
        ("peer.lua", include_str!("../../apps/cluster/src/peer.lua")),
        ("driver.lua", include_str!("../../apps/cluster/src/driver.lua")),
        ("view.lua", include_str!("../../apps/cluster/src/view.lua")),
        ("kv.lua", include_str!("../../apps/cluster/src/kv.lua")),
        ("names.lua", include_str!("../../apps/cluster/src/names.lua")),
    ] {
        std::fs::write(src.join(file), text)?;
    }
    Ok(app)
}

/// A service entry running `process` with `input` (a YAML flow list).
pub(crate) fn service(name: &str, process: &str, input: &str) -> String {
    format!(
        "\n  - name: {name}\n    kind: process.service\n    process: app:{process}\n    host: app:processes\n    input: {input}\n"
    )
}

/// A UDP port nothing listens on right now (released before the node binds
/// it; a race with another process is possible but unlikely).
pub(crate) fn free_port() -> Result<u16> {
    Ok(std::net::UdpSocket::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A TCP port nothing listens on right now.
fn free_tcp_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}
