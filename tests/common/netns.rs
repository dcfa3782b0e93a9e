//! Network namespaces for fault tests: a private bridge with one namespace
//! per node on it, so a test can cut one node off the network (and heal it)
//! without touching the host's interfaces or other tests.
//!
//! Everything lives in namespaces named `wippy-t-<pid>-...`: the bridge in
//! its own namespace, each node's `eth0` a veth whose other end is a port of
//! that bridge. Nothing is created in the root namespace, so parallel runs
//! cannot collide and the host's network is never changed. [`Lab`]'s `Drop`
//! deletes the namespaces (which deletes the bridge and the veths with them),
//! also when the test panics; namespaces left by a run that was killed are
//! removed by the next run.
#![allow(dead_code, unreachable_pub)]

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Stdio};

/// Prefix of every namespace a lab creates; followed by the test process' pid.
const PREFIX: &str = "wippy-t-";

/// Runs `ip args...`. Panics when `ip` itself is missing (the fix is to
/// install it, not to skip the test); otherwise returns its stderr on failure.
fn ip<S: AsRef<OsStr>>(args: &[S]) -> Result<String, String> {
    let out = Command::new("ip").args(args).stdin(Stdio::null()).output().unwrap_or_else(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            panic!("the `ip` command is missing: install iproute2 (apt-get install iproute2)");
        }
        panic!("cannot run `ip`: {e}");
    });
    let shown = || args.iter().map(|a| a.as_ref().to_string_lossy().into_owned()).collect::<Vec<_>>().join(" ");
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!("`ip {}` failed ({}): {}", shown(), out.status, String::from_utf8_lossy(&out.stderr).trim()))
    }
}

/// `ip args...` that must succeed.
fn ip_ok(args: &[&str]) {
    if let Err(e) = ip(args) {
        panic!("{e}");
    }
}

/// Deletes namespaces left by earlier runs whose process is gone (a run
/// killed before its `Drop` could clean up).
fn remove_stale() {
    let Ok(list) = ip(&["netns", "list"]) else { return };
    for name in list.lines().filter_map(|l| l.split_whitespace().next()) {
        let Some(pid) = name.strip_prefix(PREFIX).and_then(|r| r.split('-').next()).and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = ip(&["netns", "delete", name]);
        }
    }
}

/// Nodes `1..=n` at `10.77.0.<i>/24` in namespaces of their own, all on one
/// bridge.
pub struct Lab {
    prefix: String,
    /// Namespaces created so far (the bridge's first), deleted on drop.
    created: Vec<String>,
    nodes: usize,
}

impl Lab {
    /// [`Lab::new`], or `None` after printing why `test` is skipped.
    pub fn or_skip(nodes: usize, test: &str) -> Option<Lab> {
        match Lab::new(nodes) {
            Ok(lab) => Some(lab),
            Err(reason) => {
                eprintln!("SKIPPED {test}: {reason}");
                None
            }
        }
    }

    /// Builds the lab. `Err(reason)` when this host cannot create network
    /// namespaces at all (no privilege, no kernel support): the only case in
    /// which a caller may skip. Any later failure panics (after cleaning up).
    pub fn new(nodes: usize) -> Result<Lab, String> {
        assert!((1..=250).contains(&nodes));
        remove_stale();
        let mut lab = Lab { prefix: format!("{PREFIX}{}-", std::process::id()), created: Vec::new(), nodes };
        let bridge_ns = lab.bridge_ns();
        ip(&["netns", "add", &bridge_ns]).map_err(|e| format!("cannot create a network namespace: {e}"))?;
        lab.created.push(bridge_ns.clone());
        ip_ok(&["-n", &bridge_ns, "link", "add", "br0", "type", "bridge"]);
        ip_ok(&["-n", &bridge_ns, "link", "set", "br0", "up"]);
        for i in 1..=nodes {
            let ns = lab.ns(i);
            ip_ok(&["netns", "add", &ns]);
            lab.created.push(ns.clone());
            let port = Lab::port(i);
            // The pair is created in the bridge's namespace with its peer
            // directly in the node's, so no name is ever used in the root one.
            ip_ok(&["-n", &bridge_ns, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns", &ns]);
            ip_ok(&["-n", &bridge_ns, "link", "set", &port, "master", "br0", "up"]);
            ip_ok(&["-n", &ns, "addr", "add", &format!("{}/24", lab.addr(i)), "dev", "eth0"]);
            ip_ok(&["-n", &ns, "link", "set", "eth0", "up"]);
            ip_ok(&["-n", &ns, "link", "set", "lo", "up"]);
        }
        Ok(lab)
    }

    fn bridge_ns(&self) -> String {
        format!("{}br", self.prefix)
    }

    /// The bridge port of node `i`.
    fn port(i: usize) -> String {
        format!("p{i}")
    }

    /// The namespace of node `i` (1-based).
    pub fn ns(&self, i: usize) -> String {
        assert!((1..=self.nodes).contains(&i), "no node {i}");
        format!("{}n{i}", self.prefix)
    }

    /// The address of node `i`.
    pub fn addr(&self, i: usize) -> String {
        format!("10.77.0.{i}")
    }

    /// Cuts node `i` off: its bridge port goes down, so every packet to or
    /// from it is lost, silently as far as the other nodes can tell.
    pub fn cut(&self, i: usize) {
        ip_ok(&["-n", &self.bridge_ns(), "link", "set", &Lab::port(i), "down"]);
    }

    /// Reconnects node `i`.
    pub fn heal(&self, i: usize) {
        ip_ok(&["-n", &self.bridge_ns(), "link", "set", &Lab::port(i), "up"]);
    }

    /// `cmd`, run inside node `i`'s namespace (`ip netns exec`, which execs
    /// the program, so the child's pid is the program's): same arguments,
    /// environment changes and stdio as `cmd`.
    pub fn command_in(&self, i: usize, cmd: &Command) -> Command {
        let mut wrapped = Command::new("ip");
        wrapped.args(["netns", "exec"]).arg(self.ns(i)).arg(cmd.get_program()).args(cmd.get_args());
        for (k, v) in cmd.get_envs() {
            match v {
                Some(v) => wrapped.env(k, v),
                None => wrapped.env_remove(k),
            };
        }
        wrapped.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        wrapped
    }
}

impl Lab {
    /// Starts `wippy run app` as cluster node `name` inside namespace `i`,
    /// gossip on port 7946 of its address, joining node `seed` (unless it
    /// is node `seed`), with `extra` settings.
    pub fn wippy(&self, i: usize, app: &Path, name: &str, seed: usize, extra: &[String]) -> crate::common::Running {
        use crate::common::{Running, SECRET, cluster_args, wippy_cmd};
        const PORT: u16 = 7946;
        let join = (i != seed).then(|| format!("{}:{PORT}", self.addr(seed)));
        let args = cluster_args(app, name, &self.addr(i), PORT, join, SECRET, extra);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        Running::start_cmd(self.command_in(i, &wippy_cmd(&refs)))
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // Node namespaces first, the bridge's last: deleting a namespace
        // destroys its end of each veth, and with it the other end.
        for ns in self.created.iter().rev() {
            if let Err(e) = ip(&["netns", "delete", ns]) {
                eprintln!("warning: {e}");
            }
        }
    }
}
