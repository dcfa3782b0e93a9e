//! Linearizability of `store.kv.raft`, `system.lock` and CONSISTENT names
//! on a 3-node durable Raft cluster while nodes are killed and restarted,
//! paused, or cut off.
//!
//! Every node runs the `history` fixture: clients that loop over random
//! calls and print each call before and after it (tests/apps/history).
//! The test collects the lines of every incarnation of every node, the
//! killed ones included, and checks them with `common/linear.rs`: every
//! key, lock and name must be linearizable, fencing tokens must only grow,
//! and enough calls must have completed that the check means something.
//!
//! Each scenario runs its fault schedule for 25 s by default;
//! `WIPPY_SOAK_SECS=<n>` makes it `n` seconds (see docs/testing.md). The
//! scenarios take turns, so that three nodes at a time share the machine.

#[path = "common/harness.rs"]
mod common;
#[path = "common/history.rs"]
mod history;
#[path = "common/linear.rs"]
mod linear;
#[path = "common/netns.rs"]
mod netns;
#[path = "common/raft.rs"]
mod raft;

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::*;
use history::{Fault, FaultKind, Incarnation, Record, wall_ns};

const T: Duration = Duration::from_secs(30);

/// One scenario at a time: three nodes already fill two cores.
static SERIAL: Mutex<()> = Mutex::new(());

/// How long a scenario injects faults.
fn schedule_length() -> Duration {
    let secs = std::env::var("WIPPY_SOAK_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(25);
    Duration::from_secs(secs)
}

/// A small deterministic generator for the fault schedule; the seed is
/// printed, so a schedule can be told apart in a failure report.
struct Rng(u64);

impl Rng {
    fn new() -> Rng {
        Rng(wall_ns() | 1)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
    fn millis(&mut self, from: u64, to: u64) -> Duration {
        Duration::from_millis(from + self.below(to - from))
    }
}

/// A running node and the index its lines will have in the record.
struct Live {
    run: Running,
    incarnation: usize,
}

/// Three `history` nodes with their data directories, started on
/// 127.0.0.x or in the namespaces of a [`netns::Lab`]; every incarnation
/// and fault goes into the record.
struct Cluster<'a> {
    lab: Option<&'a netns::Lab>,
    names: Vec<String>,
    dirs: Vec<PathBuf>,
    ports: Vec<u16>,
    nodes: Vec<Option<Live>>,
    record: Record,
}

impl<'a> Cluster<'a> {
    fn new(prefix: &str, lab: Option<&'a netns::Lab>) -> Cluster<'a> {
        let names: Vec<String> = (1..=3).map(|i| format!("{prefix}{i}")).collect();
        Cluster {
            lab,
            dirs: names.iter().map(|_| temp_dir("history-data")).collect(),
            ports: names.iter().map(|_| if lab.is_some() { 7946 } else { free_port() }).collect(),
            nodes: names.iter().map(|_| None).collect(),
            names,
            record: Record::default(),
        }
    }

    /// Starts node `i` (again, on the same data directory).
    fn start(&mut self, i: usize) {
        let mut extra = raft::fast();
        extra.push(format!("node.data_dir={}", self.dirs[i].display()));
        let app = app_fixture("history");
        let run = match self.lab {
            Some(lab) => {
                let join = (i != 0).then(|| format!("{}:{}", lab.addr(1), self.ports[0]));
                let args = cluster_args(&app, &self.names[i], &lab.addr(i + 1), self.ports[i], join, SECRET, &extra);
                let refs: Vec<&str> = args.iter().map(String::as_str).collect();
                Running::start_cmd(lab.command_in(i + 1, &wippy_cmd(&refs)))
            }
            None => {
                let addr = format!("127.0.0.{}", i + 1);
                let join = (i != 0).then(|| format!("127.0.0.1:{}", self.ports[0]));
                let args = cluster_args(&app, &self.names[i], &addr, self.ports[i], join, SECRET, &extra);
                let refs: Vec<&str> = args.iter().map(String::as_str).collect();
                Running::start(&refs)
            }
        };
        let incarnation = self.record.incarnations.len();
        self.record.incarnations.push(Incarnation {
            node: self.names[i].clone(),
            stdout: vec![],
            stderr: String::new(),
        });
        self.nodes[i] = Some(Live { run, incarnation });
    }

    fn live(&mut self, i: usize) -> &mut Live {
        self.nodes[i].as_mut().expect("node is running")
    }

    /// Starts all three and waits until they vote under one leader and
    /// every node's clients run.
    fn form(&mut self) {
        self.start(0);
        let first = format!("raft leader {}", self.names[0]);
        self.live(0).run.wait_line(T, |l| l.starts_with(&first));
        self.start(1);
        self.start(2);
        let deadline = Instant::now() + T;
        loop {
            let now = Instant::now();
            std::thread::sleep(Duration::from_millis(300));
            let roles = self.roles(now);
            let leaders = roles.iter().filter(|r| *r == "leader").count();
            let voters = roles.iter().filter(|r| *r == "voter").count();
            if (leaders, voters) == (1, 2) {
                break;
            }
            assert!(Instant::now() < deadline, "the cluster never formed: {roles:?}");
        }
        for i in 0..3 {
            self.wait_clients(i);
        }
    }

    /// Waits until node `i`'s driver has started its clients.
    fn wait_clients(&mut self, i: usize) {
        self.live(i).run.wait_line(T, |l| l.starts_with(r#"HIST {"ev":"boot""#));
    }

    /// Each node's role in its last status line since `since` ("?" if none).
    fn roles(&self, since: Instant) -> Vec<String> {
        self.nodes
            .iter()
            .map(|n| match n {
                Some(l) => raft::status(&l.run.timed_lines(), since).map_or_else(|| "?".to_owned(), |s| s.role),
                None => "down".to_owned(),
            })
            .collect()
    }

    /// The node that says it leads now.
    fn leader(&self) -> Option<usize> {
        self.roles(Instant::now() - Duration::from_millis(400)).iter().position(|r| r == "leader")
    }

    /// The leader on even rounds (when there is one), another node on odd.
    fn target(&self, round: usize, rng: &mut Rng) -> usize {
        match self.leader() {
            Some(l) if round.is_multiple_of(2) => l,
            Some(l) => (l + 1 + rng.below(2) as usize) % 3,
            None => rng.below(3) as usize,
        }
    }

    /// Keeps what incarnation `i` printed.
    fn bury(&mut self, i: usize) {
        let mut live = self.nodes[i].take().expect("node is running");
        let out = live.run.kill();
        let inc = &mut self.record.incarnations[live.incarnation];
        inc.stdout = live.run.lines();
        inc.stderr = out.stderr;
    }

    fn fault(&mut self, i: usize, kind: FaultKind, start: u64) -> usize {
        let incarnation = self.nodes[i].as_ref().expect("node is running").incarnation;
        self.record.faults.push(Fault { node: self.names[i].clone(), incarnation, kind, start, end: u64::MAX });
        self.record.faults.len() - 1
    }

    /// SIGKILL, down for `down`, restarted on the same directory.
    fn kill(&mut self, i: usize, down: Duration) {
        let f = self.fault(i, FaultKind::Kill, wall_ns());
        self.live(i).run.signal(libc::SIGKILL);
        self.bury(i);
        std::thread::sleep(down);
        self.record.faults[f].end = wall_ns();
        self.start(i);
        self.wait_clients(i);
    }

    /// SIGSTOP for `pause`, then SIGCONT.
    fn pause(&mut self, i: usize, pause: Duration) {
        let f = self.fault(i, FaultKind::Pause, wall_ns());
        self.live(i).run.signal(libc::SIGSTOP);
        std::thread::sleep(pause);
        self.live(i).run.signal(libc::SIGCONT);
        self.record.faults[f].end = wall_ns();
    }

    /// Cut off from the other two for `cut`, then healed.
    fn cut(&mut self, i: usize, cut: Duration) {
        let lab = self.lab.expect("a namespace lab");
        let f = self.fault(i, FaultKind::Cut, wall_ns());
        lab.cut(i + 1);
        std::thread::sleep(cut);
        lab.heal(i + 1);
        self.record.faults[f].end = wall_ns();
    }

    /// Kills every node and returns the record.
    fn finish(mut self) -> Record {
        for i in 0..3 {
            if self.nodes[i].is_some() {
                self.bury(i);
            }
        }
        std::mem::take(&mut self.record)
    }
}

/// Runs the fault schedule `kinds` (in turn, on the leader every other
/// round) for [`schedule_length`], then checks the record.
fn scenario(name: &str, prefix: &str, lab: Option<&netns::Lab>, kinds: &[FaultKind]) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut rng = Rng::new();
    eprintln!("{name}: schedule seed {:#x}, {:?} of faults", rng.0, schedule_length());
    let mut c = Cluster::new(prefix, lab);
    c.form();
    let end = Instant::now() + schedule_length();
    let mut round = 0;
    while Instant::now() < end {
        std::thread::sleep(rng.millis(1500, 3000));
        let i = c.target(round, &mut rng);
        match kinds[round % kinds.len()] {
            FaultKind::Kill => c.kill(i, rng.millis(500, 2500)),
            FaultKind::Pause => c.pause(i, rng.millis(1500, 4000)),
            FaultKind::Cut => c.cut(i, rng.millis(2000, 5000)),
        }
        round += 1;
    }
    // Time for the last fault's effects to show in the calls.
    std::thread::sleep(Duration::from_secs(3));
    check(name, &c.finish());
}

/// Asserts that the record is linearizable and not vacuous.
fn check(name: &str, rec: &Record) {
    let dir = temp_dir(&format!("history-{name}"));
    let raw = dir.join("lines.txt");
    std::fs::write(&raw, rec.raw()).unwrap();
    let kept = format!("all lines and faults: {}", raw.display());
    for inc in &rec.incarnations {
        assert!(!inc.stderr.contains("panicked at"), "{} panicked:\n{}\n{kept}", inc.node, inc.stderr);
    }
    let p = history::parse(rec);
    assert!(p.malformed.is_empty(), "malformed lines: {:#?}\n{kept}", p.malformed);
    assert!(p.exits.is_empty(), "clients ended: {:#?}\n{kept}", p.exits);

    let faults: Vec<String> = rec.faults.iter().map(|f| format!("{:?} {}", f.kind, f.node)).collect();
    let (kv, kv_stats) = history::kv_ops(&p);
    let (locks, lock_stats) = history::lock_ops(&p, &rec.faults);
    let (names, name_stats) = history::name_ops(&p, &rec.faults, true);
    eprintln!(
        "{name}: {} incarnations, faults {faults:?}, {} lock-loss notices\n  kv {kv_stats:?}\n  lock {lock_stats:?}\n  name {name_stats:?}",
        rec.incarnations.len(),
        p.lost.len()
    );

    // Enough happened that passing means something.
    assert!(rec.faults.len() >= 3, "only {} faults ran", rec.faults.len());
    assert!(kv_stats.completed >= 300, "only {} kv calls completed\n{kept}", kv_stats.completed);
    assert!(lock_stats.completed >= 60, "only {} lock calls completed\n{kept}", lock_stats.completed);
    assert!(name_stats.completed >= 60, "only {} name calls completed\n{kept}", name_stats.completed);
    let reads = kv.iter().filter(|o| matches!(o.output, Some(linear::KvOut::Found(..)))).count();
    assert!(reads >= 50, "only {reads} reads found a value\n{kept}");
    for (what, s) in [("kv", &kv_stats), ("lock", &lock_stats), ("name", &name_stats)] {
        assert!(s.unexpected.is_empty(), "{what} calls failed in undocumented ways: {:#?}\n{kept}", s.unexpected);
    }

    let fenced = history::fencing(&p);
    if let Ok(acquired) = fenced {
        assert!(acquired >= 10, "only {acquired} locks were acquired\n{kept}");
    }
    // Every check runs, so one failure does not hide another.
    let mut failures: Vec<String> = fenced.err().into_iter().collect();
    let checked = Instant::now();
    failures.extend(report(name, &dir, "kv", linear::check(&linear::Kv, &kv)));
    failures.extend(report(name, &dir, "lock", linear::check(&linear::Lock, &locks)));
    failures.extend(report(name, &dir, "name", linear::check(&linear::Name, &names)));
    eprintln!("{name}: checked in {:?}", checked.elapsed());

    // Eventually consistent features: none in the fixture yet.
    let quiet = rec.faults.iter().map(|f| f.end).max().unwrap_or(0);
    failures.extend(history::convergence(&p, quiet));
    assert!(failures.is_empty(), "{name}: {} failed checks\n\n{}\n{kept}", failures.len(), failures.join("\n\n"));
}

/// The account of a failed check, with every operation of its key left in
/// a file next to the raw lines.
fn report(
    name: &str,
    dir: &std::path::Path,
    what: &str,
    r: Result<linear::Summary, linear::Violation>,
) -> Option<String> {
    match r {
        Ok(s) => {
            eprintln!("{name}: {what} linearizable: {s:?}");
            None
        }
        Err(v) => {
            let file = dir.join(format!("{what}-{}.txt", v.key));
            std::fs::write(&file, &v.full).unwrap();
            Some(format!("{what} {v}every operation of {}: {}", v.key, file.display()))
        }
    }
}

#[test]
fn kills_and_restarts_keep_kv_locks_and_names_linearizable() {
    scenario("kill", "k", None, &[FaultKind::Kill]);
}

#[test]
fn pauses_keep_kv_locks_and_names_linearizable() {
    scenario("pause", "p", None, &[FaultKind::Pause]);
}

#[test]
fn a_cut_off_minority_keeps_kv_locks_and_names_linearizable() {
    let Some(lab) = netns::Lab::or_skip(3, "a_cut_off_minority_keeps_kv_locks_and_names_linearizable") else {
        return;
    };
    scenario("cut", "x", Some(&lab), &[FaultKind::Cut]);
}
