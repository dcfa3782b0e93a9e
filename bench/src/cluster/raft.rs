//! The Raft core through a `store.kv.raft` store: three durable nodes on
//! loopback (each with its own data directory, so every commit is fsynced
//! by redb on a quorum of them).
//!
//! - Writes: `kv.lua` on the leader times sequential writes (one process,
//!   one write in flight) and then concurrent ones from many processes.
//! - Failover: `kv.lua` on a follower commits writes back to back; the
//!   bench SIGKILLs the leader and takes the time from the signal to the
//!   first committed write printed after it (lines are stamped on arrival,
//!   so the figure is on the bench's clock).
//! - Idle leader CPU: nine nodes fill the five voter and four standby
//!   seats; the leader's CPU time is read from /proc over a quiet window,
//!   then again after clients (nodes outside the Raft configuration) join.
//!   A bounded configuration should keep the Raft part flat.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::messaging::fields;
use super::proc::{AppDir, Wippy, free_port, metric, service, wait_for, write_app};
use crate::harness::{Figure, Mode, median, trials};

/// How long forming or a benchmark phase may take before it counts as broken.
const TIMEOUT: Duration = Duration::from_secs(120);
/// Election settings of the "configured" failover runs: a follower stands
/// after 150–300 ms without a leader.
const FAST: &str = "cluster.raft.heartbeat_timeout=150ms";

pub(crate) fn run(mode: Mode) -> Result<Vec<Figure>> {
    let mut figs = writes(mode)?;
    figs.extend(failover(mode, true)?);
    if mode == Mode::Full {
        figs.extend(failover(mode, false)?);
    }
    Ok(figs)
}

/// Running nodes and the app directories they were started from (kept
/// until the nodes are gone).
pub(super) struct Cluster {
    pub(super) nodes: Vec<Wippy>,
    _apps: Vec<AppDir>,
}

/// Starts `n` nodes `{prefix}1..n`: the first alone (it bootstraps), the
/// others joining it; `services(i)` is what node `i` (1-based) runs.
pub(super) fn cluster(prefix: &str, n: usize, extra: &[String], services: impl Fn(usize) -> String) -> Result<Cluster> {
    let mut c = Cluster { nodes: Vec::with_capacity(n), _apps: Vec::with_capacity(n) };
    for i in 1..=n {
        let app = write_app(&format!("{prefix}{i}"), &services(i))?;
        let join: Vec<u16> = c.nodes.first().map(|n| vec![n.port]).unwrap_or_default();
        c.nodes.push(Wippy::start(app.path(), &format!("{prefix}{i}"), free_port()?, &join, true, extra)?);
        c._apps.push(app);
        if i == 1 {
            // Let the seed bootstrap before the others join it.
            std::thread::sleep(Duration::from_millis(300));
        }
    }
    Ok(c)
}

/// Waits until the first node's script printed "done" while every node
/// stays up; returns what that script printed.
pub(super) fn wait_done(nodes: &mut [Wippy], what: &str, timeout: Duration) -> Result<Vec<String>> {
    wait_for(what, timeout, || {
        for n in nodes.iter_mut() {
            n.check_alive()?;
        }
        Ok(nodes[0].lines().iter().any(|(_, l)| l == "done"))
    })
    .with_context(|| {
        format!("the script printed: {:?}", nodes[0].lines().iter().map(|(_, l)| l).collect::<Vec<_>>())
    })?;
    Ok(nodes[0].lines().into_iter().map(|(_, l)| l).collect())
}

fn writes(mode: Mode) -> Result<Vec<Figure>> {
    let (warmup, n, batch, writers, trials_n) = mode.pick((500, 5_000, 40_000, 64, 3), (20, 200, 1_000, 16, 1));
    let input = format!("[3, \"write\", {warmup}, {n}, {batch}, {writers}, {trials_n}]");
    let mut c = cluster("rw", 3, &[], |i| if i == 1 { service("main", "kvbench", &input) } else { String::new() })?;
    let nodes = &mut c.nodes;
    let lines = wait_done(nodes, "the write benchmark", TIMEOUT)?;
    let leader = metric(&nodes[0].metrics()?, "raft_state");
    if leader != 2.0 {
        bail!("the writer's node was not the leader (raft_state {leader})");
    }
    drop(c);

    let seq = fields(&lines, "kvseq ", 5);
    let batched = fields(&lines, "kvbatch ", 4);
    if seq.is_empty() || batched.is_empty() {
        bail!("kv.lua printed no kvseq/kvbatch line: {lines:?}");
    }
    let mut figs = Vec::new();
    for (name, i) in [("p50", 2), ("p99", 3), ("mean", 4)] {
        let xs: Vec<f64> = seq.iter().map(|r| r[i]).collect();
        figs.push(Figure::new(
            format!("raft_write_seq_{name}_us"),
            median(xs.clone()),
            "us",
            format!("{n} sequential kv.raft writes on the leader, 3 durable voters; trials {}", trials(&xs)),
        ));
    }
    let means: Vec<f64> = seq.iter().map(|r| 1e6 / r[4]).collect();
    figs.push(Figure::new(
        "raft_write_seq_per_s",
        median(means.clone()),
        "writes/s",
        format!("one writer, one write in flight; trials {}", trials(&means)),
    ));
    let cycles = fields(&lines, "lockcycle ", 4);
    if cycles.is_empty() {
        bail!("kv.lua printed no lockcycle line: {lines:?}");
    }
    for (name, i) in [("p50", 2), ("p99", 3)] {
        let xs: Vec<f64> = cycles.iter().map(|r| r[i]).collect();
        figs.push(Figure::new(
            format!("raft_lock_cycle_{name}_us"),
            median(xs.clone()),
            "us",
            format!("{} system.lock acquire + release on the leader; trials {}", n / 5, trials(&xs)),
        ));
    }
    let rates: Vec<f64> = batched.iter().map(|r| r[1] / r[3]).collect();
    figs.push(Figure::new(
        "raft_write_batched_per_s",
        median(rates.clone()),
        "writes/s",
        format!("{batch} writes from {writers} concurrent processes on the leader; trials {}", trials(&rates)),
    ));
    Ok(figs)
}

/// One leader kill per trial, in a fresh cluster each time.
fn failover(mode: Mode, fast: bool) -> Result<Vec<Figure>> {
    let runs = mode.pick(if fast { 5 } else { 2 }, 1);
    let extra: Vec<String> = if fast { vec![FAST.to_owned()] } else { Vec::new() };
    let mut gaps = Vec::new();
    for trial in 0..runs {
        let tag = format!("rf{}{trial}", if fast { "c" } else { "d" });
        let input = "[3, \"loop\"]";
        let mut c =
            cluster(&tag, 3, &extra, |i| if i == 2 { service("main", "kvbench", input) } else { String::new() })?;
        let nodes = &mut c.nodes;
        // Writes flow from the follower n2 through the leader n1.
        wait_for("writes from the follower", TIMEOUT, || {
            for n in nodes.iter_mut() {
                n.check_alive()?;
            }
            Ok(nodes[1].lines().iter().filter(|(_, l)| l.starts_with("w ")).count() > 200)
        })?;
        if metric(&nodes[0].metrics()?, "raft_state") != 2.0 {
            bail!("{tag}1 is not the leader");
        }
        let killed = nodes[0].kill();
        // A write the old leader committed just before dying may still be
        // printed right after the signal; no election is that fast.
        let after = killed + Duration::from_millis(20);
        wait_for("a write after the leader was killed", TIMEOUT, || {
            nodes[1].check_alive()?;
            Ok(nodes[1].lines().iter().any(|(t, l)| *t > after && l.starts_with("w ")))
        })?;
        let first = nodes[1].lines().iter().find(|(t, l)| *t > after && l.starts_with("w ")).map(|(t, _)| *t);
        gaps.push(first.context("first write")?.duration_since(killed).as_secs_f64() * 1000.0);
    }
    let (name, how) = if fast {
        ("raft_failover_to_write_ms", "heartbeat_timeout 150 ms (elections after 150-300 ms)")
    } else {
        ("raft_failover_to_write_default_ms", "default heartbeat_timeout 3 s")
    };
    Ok(vec![Figure::new(
        name,
        median(gaps.clone()),
        "ms",
        format!("leader SIGKILL to the next write committed by a follower's writer, {how}; runs {}", trials(&gaps)),
    )])
}

/// CPU seconds (user + system) of a process and of its `wippy-raft` thread.
fn cpu(pid: u32) -> Result<(f64, f64)> {
    let ticks = |path: String| -> Result<f64> {
        let stat = std::fs::read_to_string(&path).with_context(|| path.clone())?;
        // Fields after the `(comm)`: state is field 3, utime 14, stime 15.
        let rest = stat.rsplit_once(')').context("stat")?.1;
        let f: Vec<&str> = rest.split_whitespace().collect();
        Ok((f[11].parse::<f64>()? + f[12].parse::<f64>()?) / 100.0)
    };
    let total = ticks(format!("/proc/{pid}/stat"))?;
    let mut raft = 0.0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        let dir = task?.path();
        if std::fs::read_to_string(dir.join("comm")).unwrap_or_default().trim() == "wippy-raft" {
            raft += ticks(dir.join("stat").display().to_string())?;
        }
    }
    Ok((total, raft))
}

/// The leader's CPU use over `window`, as percent of one core.
fn leader_cpu(leader: &Wippy, window: Duration) -> Result<(f64, f64)> {
    let (t0, r0) = cpu(leader.pid())?;
    std::thread::sleep(window);
    let (t1, r1) = cpu(leader.pid())?;
    let s = window.as_secs_f64();
    Ok(((t1 - t0) / s * 100.0, (r1 - r0) / s * 100.0))
}

pub(crate) fn idle(mode: Mode) -> Result<Vec<Figure>> {
    let (clients, window) = mode.pick((40, Duration::from_secs(20)), (6, Duration::from_secs(3)));
    let mut c = cluster("ri", 9, &[], |_| String::new())?;
    let nodes = &mut c.nodes;
    let seated = |nodes: &[Wippy]| -> Result<Option<usize>> {
        for (i, n) in nodes.iter().enumerate() {
            let m = n.metrics()?;
            if metric(&m, "raft_state") == 2.0 {
                let full = metric(&m, "raft_voters") == 5.0 && metric(&m, "raft_non_voters") == 4.0;
                return Ok(full.then_some(i));
            }
        }
        Ok(None)
    };
    // Each node's (raft_state, voters, standbys), for a failure report.
    let seats = |nodes: &[Wippy]| -> Vec<(f64, f64, f64)> {
        nodes
            .iter()
            .map(|n| {
                let m = n.metrics().unwrap_or_default();
                (metric(&m, "raft_state"), metric(&m, "raft_voters"), metric(&m, "raft_non_voters"))
            })
            .collect()
    };
    let formed = wait_for("5 voters and 4 standbys", TIMEOUT, || {
        for n in nodes.iter_mut() {
            n.check_alive()?;
        }
        Ok(seated(nodes)?.is_some())
    });
    formed.with_context(|| format!("(state, voters, standbys) per node: {:?}", seats(nodes)))?;
    // Let joins, promotions and snapshots of the forming phase pass.
    std::thread::sleep(Duration::from_secs(3));
    let li = seated(nodes)?.context("no leader")?;
    let (bare, bare_raft) = leader_cpu(&nodes[li], window)?;

    let seed = nodes[0].port;
    let start = Instant::now();
    for i in 0..clients {
        let app = write_app(&format!("rc{i}"), "")?;
        nodes.push(Wippy::start(app.path(), &format!("rc{i}"), free_port()?, &[seed], false, &[])?);
        c._apps.push(app);
        std::thread::sleep(Duration::from_millis(100));
    }
    let total = 9 + clients;
    let alive = "gossip_members{state=\"alive\"}";
    wait_for(
        "every client seen by the leader",
        TIMEOUT,
        || Ok(metric(&nodes[li].metrics()?, alive) as usize >= total),
    )?;
    std::thread::sleep(Duration::from_secs(3));
    if seated(nodes)? != Some(li) {
        let now = seats(&nodes[..9]);
        bail!("leadership or seats changed while the clients joined: (state, voters, standbys) {now:?}");
    }
    let (with, with_raft) = leader_cpu(&nodes[li], window)?;
    println!("# raft idle: {clients} clients joined in {:.1} s", start.elapsed().as_secs_f64());
    let note = |what: &str| format!("{what}, leader of 5 voters + 4 standbys, over {} s", window.as_secs());
    Ok(vec![
        Figure::new("raft_idle_leader_cpu_pct", bare, "%", note("whole process, 0 clients")),
        Figure::new("raft_idle_leader_raft_thread_cpu_pct", bare_raft, "%", note("wippy-raft thread, 0 clients")),
        Figure::new(
            "raft_idle_leader_cpu_with_clients_pct",
            with,
            "%",
            note(&format!("whole process, {clients} clients")),
        ),
        Figure::new(
            "raft_idle_leader_raft_thread_cpu_with_clients_pct",
            with_raft,
            "%",
            note(&format!("wippy-raft thread, {clients} clients")),
        ),
    ])
}
