//! Histories recorded by the `history` fixture (tests/apps/history): the
//! `HIST {json}` lines that every incarnation of every node printed,
//! together with the faults the test injected, turned into the checker's
//! histories (`linear.rs`).
//!
//! The pipeline has three steps, so that other checks can hook in:
//! 1. [`Record`]: what the test collected (each incarnation's stdout and
//!    stderr, and the faults with their wall-clock windows);
//! 2. [`parse`] → [`Parsed`]: calls paired by (client, op), the clients and
//!    their PIDs, lock-loss notices, and every event this parser does not
//!    know, kept in [`Parsed::other`];
//! 3. one builder per feature ([`kv_ops`], [`lock_ops`], [`name_ops`]) that
//!    decides what each outcome means for the model, plus [`fencing`].
//!
//! Eventually consistent features (EVENTUAL names, kv.crdt) are not
//! linearizable and need a different check: after the last heal, every
//! node's view converges. Their fixture lines would land in
//! [`Parsed::other`]; [`convergence`] is where that check goes.
#![allow(dead_code, unreachable_pub)]

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value as J;

use crate::linear::{Holder, KvIn, KvOp, KvOut, LockIn, LockOp, LockOut, NameIn, NameOp, NameOut, Op, Stamp, Who};

/// Wall-clock nanoseconds, the clock `time.now():unix_nano()` reads in the
/// nodes: the test stamps its faults with it.
pub fn wall_ns() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// SIGKILL, later restarted on the same data directory.
    Kill,
    /// SIGSTOP, then SIGCONT.
    Pause,
    /// Cut off the network, then healed.
    Cut,
}

/// A fault injected into one incarnation of a node, from `start` to `end`
/// (the restart, SIGCONT or heal), in wall-clock nanoseconds.
#[derive(Clone, Debug)]
pub struct Fault {
    pub node: String,
    /// Index into [`Record::incarnations`].
    pub incarnation: usize,
    pub kind: FaultKind,
    pub start: u64,
    pub end: u64,
}

/// What one run of one node printed.
#[derive(Clone, Debug)]
pub struct Incarnation {
    pub node: String,
    pub stdout: Vec<String>,
    pub stderr: String,
}

/// Everything one scenario collected.
#[derive(Clone, Debug, Default)]
pub struct Record {
    pub incarnations: Vec<Incarnation>,
    pub faults: Vec<Fault>,
}

impl Record {
    /// Every line (stdout, the faults, then stderr), prefixed with its
    /// incarnation, for a file a failing run leaves behind.
    pub fn raw(&self) -> String {
        let mut s = String::new();
        for (i, inc) in self.incarnations.iter().enumerate() {
            for l in &inc.stdout {
                s.push_str(&format!("{i} {} {l}\n", inc.node));
            }
        }
        for f in &self.faults {
            s.push_str(&format!("fault {f:?}\n"));
        }
        for (i, inc) in self.incarnations.iter().enumerate() {
            for l in inc.stderr.lines() {
                s.push_str(&format!("{i} {} stderr {l}\n", inc.node));
            }
        }
        s
    }
}

/// One call: its invoke line and, if it came, its complete line.
#[derive(Clone, Debug)]
pub struct Call {
    pub client: String,
    pub group: String,
    pub op: u64,
    pub kind: String,
    pub f: String,
    pub invoke: u64,
    pub args: J,
    /// (time, the complete line).
    pub done: Option<(u64, J)>,
}

impl Call {
    /// A string argument (`key`, `name`, `value`).
    pub fn arg(&self, k: &str) -> &str {
        self.args.get(k).and_then(J::as_str).unwrap_or("")
    }

    fn res(&self) -> Option<&J> {
        self.done.as_ref().map(|(_, j)| j)
    }
}

/// A client told it lost a lock, or a CONSISTENT name.
#[derive(Clone, Debug)]
pub struct Lost {
    pub client: String,
    /// The lock or name.
    pub lock: String,
    /// A name (`kind: "name"` in the notice) rather than a lock.
    pub name: bool,
    /// The loss happened after this (ns).
    pub since: u64,
    /// When the client printed the notice (ns).
    pub t: u64,
}

#[derive(Clone, Debug, Default)]
pub struct Parsed {
    /// Node incarnation groups (`<node>.<boot>`), by incarnation index.
    pub groups: BTreeMap<usize, Vec<String>>,
    /// Client → PID.
    pub pids: BTreeMap<String, String>,
    pub calls: Vec<Call>,
    pub lost: Vec<Lost>,
    /// Clients that ended (they should not), as printed.
    pub exits: Vec<String>,
    /// `HIST` events of kinds this parser does not know, with their
    /// incarnation: where observations of eventually consistent features
    /// would go.
    pub other: Vec<(usize, J)>,
    /// Lines that start with `HIST ` but do not parse.
    pub malformed: Vec<String>,
}

/// Pairs invokes with completes and sorts out the rest.
pub fn parse(rec: &Record) -> Parsed {
    let mut p = Parsed::default();
    let mut open: BTreeMap<(String, u64), usize> = BTreeMap::new();
    for (i, inc) in rec.incarnations.iter().enumerate() {
        for line in &inc.stdout {
            let Some(text) = line.strip_prefix("HIST ") else { continue };
            let Ok(j) = serde_json::from_str::<J>(text) else {
                p.malformed.push(line.clone());
                continue;
            };
            let s = |k: &str| j.get(k).and_then(J::as_str).unwrap_or("").to_owned();
            let n = |k: &str| j.get(k).and_then(J::as_u64).unwrap_or(0);
            match s("ev").as_str() {
                "boot" => p.groups.entry(i).or_default().push(s("group")),
                "client" => {
                    p.pids.insert(s("client"), s("pid"));
                }
                "invoke" => {
                    let client = s("client");
                    let group = client.rsplit_once('.').map_or(client.as_str(), |(g, _)| g).to_owned();
                    open.insert((client.clone(), n("op")), p.calls.len());
                    p.calls.push(Call {
                        client,
                        group,
                        op: n("op"),
                        kind: s("kind"),
                        f: s("f"),
                        invoke: n("t"),
                        args: j.clone(),
                        done: None,
                    });
                }
                "complete" => match open.remove(&(s("client"), n("op"))) {
                    Some(k) => p.calls[k].done = Some((n("t"), j.clone())),
                    None => p.malformed.push(line.clone()),
                },
                "lost" => {
                    // `at` is when the node sent the notice (ms): the loss
                    // may precede the client's look at its events.
                    let at = n("at").saturating_mul(1_000_000);
                    let since = if at > 0 { n("since").min(at) } else { n("since") };
                    let name = s("kind") == "name";
                    p.lost.push(Lost { client: s("client"), lock: s("name"), name, since, t: n("t") });
                }
                "exit" => p.exits.push(line.clone()),
                _ => p.other.push((i, j)),
            }
        }
        let groups = p.groups.get(&i).cloned().unwrap_or_default();
        revocations_logged(inc, &p.pids, &groups, &mut p.lost);
    }
    p
}

/// The node logs every claim it revokes (`claims: lock L1 lost: ...
/// pid=... name=L1`) when it sends the CANCEL. A client busy in a call
/// prints its notice only later, perhaps never, so the log is the
/// authoritative time of the loss.
fn revocations_logged(inc: &Incarnation, pids: &BTreeMap<String, String>, groups: &[String], lost: &mut Vec<Lost>) {
    // Pids repeat across a node's restarts: only this incarnation's clients.
    let by_pid: BTreeMap<&str, &str> = pids
        .iter()
        .filter(|(c, _)| c.rsplit_once('.').is_some_and(|(g, _)| groups.iter().any(|x| x == g)))
        .map(|(c, p)| (p.as_str(), c.as_str()))
        .collect();
    for line in inc.stderr.lines() {
        let Some((stamp, rest)) = line.split_once("Z ") else { continue };
        let Some(msg) = rest.split_once("wippy_runtime::claims: ").map(|(_, m)| m) else { continue };
        let (name, kind) = match msg.split_once(' ') {
            Some(("lock", r)) => (r, false),
            Some(("name", r)) => (r, true),
            _ => continue,
        };
        let Some((claim, _)) = name.split_once(" lost: ") else { continue };
        let Some(pid) = msg.split(" pid=").nth(1).and_then(|r| r.split_whitespace().next()) else { continue };
        let (Some(client), Some(t)) = (by_pid.get(pid), stamp_ns(stamp)) else { continue };
        lost.push(Lost { client: (*client).to_owned(), lock: claim.to_owned(), name: kind, since: t, t });
    }
}

/// `2026-11-27T06:45:29.336969` (UTC) as nanoseconds since the epoch.
fn stamp_ns(stamp: &str) -> Option<u64> {
    let (date, time) = stamp.split_once('T')?;
    let mut d = date.split('-').map(|x| x.parse::<i64>());
    let (y, m, day) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let mut t = hms.split(':').map(|x| x.parse::<i64>());
    let (hh, mm, ss) = (t.next()?.ok()?, t.next()?.ok()?, t.next()?.ok()?);
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hh * 3600 + mm * 60 + ss;
    let mut nanos = frac.chars().take(9).collect::<String>();
    while nanos.len() < 9 {
        nanos.push('0');
    }
    u64::try_from(secs).ok()?.checked_mul(1_000_000_000)?.checked_add(nanos.parse().ok()?)
}

/// The error of a lock or name claim that landed just as its node rejoined
/// the cluster under a new incarnation: the record was written, and is
/// then given back (or removed by the leader) at some later time.
const REJOINED: &str = "this node rejoined the cluster while the claim was being written";

/// Claims that failed with [`REJOINED`]: `(client, lock or name, invoked,
/// completed)`, each followed by a removal of unknown timing.
fn rejoined_claims<'a>(p: &'a Parsed, kind: &'a str) -> impl Iterator<Item = (&'a Call, u64)> + 'a {
    p.calls.iter().filter(move |c| c.kind == kind).filter_map(|c| {
        let (j, done) = (c.res()?, c.done.as_ref()?.0);
        err_of(j).1.contains(REJOINED).then_some((c, done))
    })
}

/// The error of a release or unregister that had to settle an earlier
/// claim of unknown outcome first and could not read it.
const UNSETTLED: &str = "the outcome of this process's earlier claim is still unknown";

/// What a failed call means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Failure {
    /// It changed nothing (`no raft leader reachable`, bad input).
    NoEffect,
    /// It may or may not have taken effect (`raft request outcome unknown`,
    /// or an error this test does not expect).
    Unknown,
}

/// The outcome of a failed call, by the error kinds and messages the node
/// documents (docs/lua/store.md, docs/cluster.md).
fn failure(kind: &str, msg: &str) -> Failure {
    match kind {
        "UNAVAILABLE" if msg.starts_with("no raft leader reachable") => Failure::NoEffect,
        // A release or unregister that could not read whether the process's
        // earlier claim (of unknown outcome) landed: it wrote nothing.
        "UNAVAILABLE" if msg.contains(UNSETTLED) => Failure::NoEffect,
        "INVALID" => Failure::NoEffect,
        _ => Failure::Unknown,
    }
}

/// How the calls of one feature turned out.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub calls: usize,
    /// Completed with a result the model checks.
    pub completed: usize,
    /// Failed without effect, or reads that failed: left out.
    pub no_effect: usize,
    /// No completion, or a completion of unknown outcome.
    pub unknown: usize,
    /// Errors by `kind: message` (numbers stripped), for the summary.
    pub errors: BTreeMap<String, usize>,
    /// Errors the node does not document for the call.
    pub unexpected: Vec<String>,
}

impl Stats {
    fn error(&mut self, res: &J) {
        let kind = res.get("err_kind").and_then(J::as_str).unwrap_or("?");
        let msg = res.get("err").and_then(J::as_str).unwrap_or("");
        let short: String = msg.chars().take(48).filter(|c| !c.is_ascii_digit()).collect();
        *self.errors.entry(format!("{kind}: {short}")).or_default() += 1;
    }
}

/// An operation for the checker from `call`, given what its result means:
/// `Ok(Some(out))` a result, `Ok(None)` an outcome to leave out, `Err(())`
/// unknown.
fn to_op<I, O>(
    call: &Call,
    input: I,
    stats: &mut Stats,
    meaning: impl FnOnce(&J, bool) -> Result<Option<O>, ()>,
) -> Option<Op<I, O>> {
    stats.calls += 1;
    let Some((t, res)) = &call.done else {
        stats.unknown += 1;
        return Some(Op::unknown(&call.client, call.invoke, input));
    };
    let ok = res.get("ok").and_then(J::as_bool).unwrap_or(false);
    if !ok {
        stats.error(res);
    }
    match meaning(res, ok) {
        Ok(Some(out)) => {
            stats.completed += 1;
            Some(Op::done(&call.client, call.invoke, *t, input, out))
        }
        Ok(None) => {
            stats.no_effect += 1;
            None
        }
        Err(()) => {
            stats.unknown += 1;
            Some(Op::unknown(&call.client, call.invoke, input))
        }
    }
}

fn err_of(res: &J) -> (&str, &str) {
    (res.get("err_kind").and_then(J::as_str).unwrap_or(""), res.get("err").and_then(J::as_str).unwrap_or(""))
}

fn num(res: &J, k: &str) -> Option<u64> {
    res.get(k).and_then(J::as_u64)
}

/// A failed call's meaning when no result is expected from it: no effect,
/// or unknown (and an unexpected error is noted).
fn failed<O>(call: &Call, res: &J, stats_unexpected: &mut Vec<String>) -> Result<Option<O>, ()> {
    let (kind, msg) = err_of(res);
    match failure(kind, msg) {
        Failure::NoEffect => Ok(None),
        Failure::Unknown => {
            if !msg.starts_with("raft request outcome unknown") && !msg.contains(REJOINED) {
                stats_unexpected.push(format!("{} {} {}: {kind} {msg}", call.client, call.kind, call.f));
            }
            Err(())
        }
    }
}

/// The kv.raft history.
pub fn kv_ops(p: &Parsed) -> (Vec<Op<KvOp, KvOut>>, Stats) {
    let mut stats = Stats::default();
    let mut ops = Vec::new();
    for call in p.calls.iter().filter(|c| c.kind == "kv") {
        let value = call.arg("value").to_owned();
        let f = match call.f.as_str() {
            "read" => KvIn::Read,
            "set" => KvIn::Set(value),
            "put" => KvIn::Put(value),
            "put_absent" => KvIn::PutAbsent(value),
            "put_version" => KvIn::PutVersion(value, num(&call.args, "version").unwrap_or(0)),
            "delete" => KvIn::Delete,
            other => panic!("unknown kv call {other}"),
        };
        let input = KvOp { key: call.arg("key").to_owned(), f };
        let mut unexpected = Vec::new();
        let op = to_op(call, input.clone(), &mut stats, |res, ok| {
            let (kind, msg) = err_of(res);
            Ok(Some(match (&input.f, ok, kind) {
                (KvIn::Read, true, _) => KvOut::Found(
                    res.get("got").and_then(J::as_str).unwrap_or("").to_owned(),
                    num(res, "got_version").unwrap_or(0),
                ),
                (KvIn::Read, false, "NOT_FOUND") => KvOut::Absent,
                // A read that failed says nothing.
                (KvIn::Read, false, _) => return Ok(None),
                (KvIn::Set(_), true, _) => KvOut::Written(None),
                (KvIn::Delete, true, _) => KvOut::Deleted(res.get("existed").and_then(J::as_bool).unwrap_or(false)),
                (_, true, _) => KvOut::Written(num(res, "new_version")),
                (KvIn::PutAbsent(_), false, "ALREADY_EXISTS") => KvOut::Exists(None),
                // "key k is at version 12, not 7"
                (KvIn::PutVersion(..), false, "ALREADY_EXISTS") => KvOut::Exists(
                    msg.split(" is at version ").nth(1).and_then(|r| r.split(',').next()).and_then(|v| v.parse().ok()),
                ),
                (KvIn::PutVersion(..), false, "NOT_FOUND") => KvOut::Absent,
                _ => return failed(call, res, &mut unexpected),
            }))
        });
        stats.unexpected.extend(unexpected);
        ops.extend(op);
    }
    (ops, stats)
}

/// The holder a call's client stands for.
fn holder(p: &Parsed, call: &Call) -> Holder {
    Holder {
        client: call.client.clone(),
        group: call.group.clone(),
        pid: p.pids.get(&call.client).cloned().unwrap_or_default(),
    }
}

/// The PID an `ALREADY_EXISTS` message names after `marker`, up to `end`.
fn named_pid(msg: &str, marker: &str) -> Option<String> {
    let rest = msg.split(marker).nth(1)?;
    let pid = rest.split_once('}').map(|(p, _)| format!("{p}}}"))?;
    pid.starts_with('{').then_some(pid)
}

/// Revocations the faults justify: every holding of a client of the
/// faulted incarnation that began (its call was invoked) before the fault
/// ended may be lost at any time after the fault began.
fn fault_revocations(p: &Parsed, faults: &[Fault]) -> Vec<(String, u64, Who, u64)> {
    let mut out = Vec::new();
    for f in faults {
        let until = if f.kind == FaultKind::Kill { u64::MAX } else { f.end };
        for g in p.groups.get(&f.incarnation).into_iter().flatten() {
            out.push((format!("[{:?} {}]", f.kind, f.node), f.start, Who::Group(g.clone()), until));
        }
    }
    out
}

/// The system.lock history, with the revocations the faults and the loss
/// notices allow.
pub fn lock_ops(p: &Parsed, faults: &[Fault]) -> (Vec<Op<LockOp, LockOut>>, Stats) {
    let mut stats = Stats::default();
    let mut ops = Vec::new();
    let mut locks = BTreeSet::new();
    for call in p.calls.iter().filter(|c| c.kind == "lock") {
        let lock = call.arg("name").to_owned();
        locks.insert(lock.clone());
        let me = holder(p, call);
        let f = match call.f.as_str() {
            "acquire" | "acquire_wait" => LockIn::Acquire(me.clone(), call.invoke),
            "release" => LockIn::Release(call.client.clone()),
            other => panic!("unknown lock call {other}"),
        };
        let input = LockOp { lock, f };
        let mut unexpected = Vec::new();
        let op = to_op(call, input.clone(), &mut stats, |res, ok| {
            let (kind, msg) = err_of(res);
            Ok(Some(match (&input.f, ok, kind) {
                (LockIn::Acquire(..), true, _) => LockOut::Acquired(num(res, "token")),
                // "lock held: L1 (by {n1@app:processes|0x00003})" or "(by this process)"
                (LockIn::Acquire(..), false, "ALREADY_EXISTS") if msg.ends_with("(by this process)") => {
                    LockOut::Held(Some(me.pid.clone()))
                }
                (LockIn::Acquire(..), false, "ALREADY_EXISTS") => LockOut::Held(named_pid(msg, "(by ")),
                (LockIn::Release(_), true, _) => {
                    LockOut::Released(res.get("released").and_then(J::as_bool).unwrap_or(false))
                }
                _ => return failed(call, res, &mut unexpected),
            }))
        });
        stats.unexpected.extend(unexpected);
        ops.extend(op);
    }
    for lock in &locks {
        for (who, start, w, until) in fault_revocations(p, faults) {
            ops.push(Op::unknown(&who, start, LockOp { lock: lock.clone(), f: LockIn::Revoke(w, until) }));
        }
    }
    for (c, done) in rejoined_claims(p, "lock") {
        let f = LockIn::Revoke(Who::Client(c.client.clone()), done);
        ops.push(Op::unknown(
            &format!("[rejoined {}]", c.client),
            c.invoke,
            LockOp { lock: c.arg("name").to_owned(), f },
        ));
    }
    // A loss notice: the holder lost the lock after `since`, and its node
    // gives the record back later.
    for l in p.lost.iter().filter(|l| !l.name) {
        let who = format!("[lost {}]", l.client);
        let lock = || l.lock.clone();
        ops.push(Op::unknown(&who, l.since, LockOp { lock: lock(), f: LockIn::Lose(l.client.clone(), l.t) }));
        let revoke = LockIn::Revoke(Who::Client(l.client.clone()), l.t);
        ops.push(Op::unknown(&who, l.since, LockOp { lock: lock(), f: revoke }));
    }
    (ops, stats)
}

/// The CONSISTENT name history. Lookups read the local replica, which may
/// lag (docs/lua/registry.md): with `stale_lookups` they are checked as
/// reads that may see any state before they completed (invoked at the
/// start of the history), so they catch a name never registered or a
/// holder that never held it, not staleness.
pub fn name_ops(p: &Parsed, faults: &[Fault], stale_lookups: bool) -> (Vec<Op<NameOp, NameOut>>, Stats) {
    let mut stats = Stats::default();
    let mut ops = Vec::new();
    let mut names = BTreeSet::new();
    let start = p.calls.iter().map(|c| c.invoke).min().unwrap_or(0);
    for call in p.calls.iter().filter(|c| c.kind == "name") {
        let name = call.arg("name").to_owned();
        names.insert(name.clone());
        let me = holder(p, call);
        let f = match call.f.as_str() {
            "register" => NameIn::Register(me.clone(), call.invoke),
            "unregister" => NameIn::Unregister(me.clone()),
            "lookup" => NameIn::Lookup,
            other => panic!("unknown name call {other}"),
        };
        let input = NameOp { name, f };
        let mut unexpected = Vec::new();
        let op = to_op(call, input.clone(), &mut stats, |res, ok| {
            let (kind, msg) = err_of(res);
            Ok(Some(match (&input.f, ok, kind) {
                (NameIn::Register(..), true, _) => NameOut::Registered,
                // "name N1 is already registered to {n2@app:processes|0x00004}"
                (NameIn::Register(..), false, "ALREADY_EXISTS") => NameOut::Exists(named_pid(msg, "registered to ")),
                (NameIn::Unregister(_), true, _) => {
                    NameOut::Unregistered(res.get("removed").and_then(J::as_bool).unwrap_or(false))
                }
                (NameIn::Lookup, true, _) => NameOut::Found(res.get("pid").and_then(J::as_str).map(str::to_owned)),
                (NameIn::Lookup, false, "NOT_FOUND") => NameOut::Found(None),
                (NameIn::Lookup, false, _) => return Ok(None),
                _ => return failed(call, res, &mut unexpected),
            }))
        });
        stats.unexpected.extend(unexpected);
        if let Some(mut op) = op {
            if stale_lookups && op.input.f == NameIn::Lookup {
                op.invoke = start;
            }
            ops.push(op);
        }
    }
    for name in &names {
        for (who, start, w, until) in fault_revocations(p, faults) {
            ops.push(Op::unknown(&who, start, NameOp { name: name.clone(), f: NameIn::Revoke(w, until) }));
        }
    }
    for (c, done) in rejoined_claims(p, "name") {
        let f = NameIn::Revoke(Who::Client(c.client.clone()), done);
        ops.push(Op::unknown(
            &format!("[rejoined {}]", c.client),
            c.invoke,
            NameOp { name: c.arg("name").to_owned(), f },
        ));
    }
    // A loss notice (the holder's node rejoined under a new incarnation):
    // the leader removes the name some time after `since`.
    for l in p.lost.iter().filter(|l| l.name) {
        let who = format!("[lost {}]", l.client);
        let name = || l.lock.clone();
        ops.push(Op::unknown(&who, l.since, NameOp { name: name(), f: NameIn::Lose(l.client.clone(), l.t) }));
        let f = NameIn::Revoke(Who::Client(l.client.clone()), l.t);
        ops.push(Op::unknown(&who, l.since, NameOp { name: name(), f }));
    }
    (ops, stats)
}

/// Fencing tokens only grow: per lock, and across all locks and kv writes
/// (tokens and versions are both Raft log indices, so any write that
/// completed before another began has the smaller one).
pub fn fencing(p: &Parsed) -> Result<usize, String> {
    let mut per_lock: BTreeMap<String, Vec<Stamp>> = BTreeMap::new();
    let mut all = Vec::new();
    for c in &p.calls {
        let Some((t, res)) = &c.done else { continue };
        if !res.get("ok").and_then(J::as_bool).unwrap_or(false) {
            continue;
        }
        let value = match (c.kind.as_str(), c.f.as_str()) {
            ("lock", "acquire" | "acquire_wait") => num(res, "token"),
            ("kv", "put" | "put_absent" | "put_version") => num(res, "new_version"),
            _ => None,
        };
        let Some(value) = value else { continue };
        let label = format!("{} #{} {} {} {}", c.client, c.op, c.f, c.arg("key"), c.arg("name"));
        let stamp = Stamp { label, invoke: c.invoke, complete: *t, value };
        if c.kind == "lock" {
            per_lock.entry(c.arg("name").to_owned()).or_default().push(stamp.clone());
        }
        all.push(stamp);
    }
    for (lock, stamps) in &per_lock {
        crate::linear::check_increasing(&format!("fencing tokens of {lock}"), stamps)?;
    }
    crate::linear::check_increasing("Raft log indices (tokens and kv versions)", &all)?;
    Ok(per_lock.values().map(Vec::len).sum())
}

/// Convergence of eventually consistent features after the last heal:
/// every node ends up with the same view. Nothing in the fixture observes
/// such a feature yet, so there is nothing to check; when EVENTUAL names
/// or a kv.crdt store are added to the fixture, their observations arrive
/// in `p.other` (with the incarnation that printed them) and `quiet_since`
/// is when the last fault ended. Returns the divergences found.
pub fn convergence(p: &Parsed, quiet_since: u64) -> Vec<String> {
    let _ = (p, quiet_since);
    Vec::new()
}

#[cfg(test)]
mod tests {
    #[test]
    fn log_stamps_become_wall_clock_nanoseconds() {
        assert_eq!(super::stamp_ns("1970-01-01T00:00:01.5"), Some(1_500_000_000));
        assert_eq!(super::stamp_ns("2026-11-27T06:45:29.336969"), Some(1_795_761_929_336_969_000));
        assert_eq!(super::stamp_ns("garbage"), None);
    }

    use super::*;

    fn inc(node: &str, lines: &[&str]) -> Incarnation {
        Incarnation { node: node.into(), stdout: lines.iter().map(|l| l.to_string()).collect(), stderr: String::new() }
    }

    #[test]
    fn lines_become_operations_with_their_meaning() {
        let rec = Record {
            incarnations: vec![inc(
                "n1",
                &[
                    r#"HIST {"ev":"boot","group":"n1.a","node":"n1","t":1}"#,
                    r#"HIST {"ev":"client","client":"n1.a.c1","group":"n1.a","pid":"{n1@app:processes|0x00003}","t":2}"#,
                    r#"HIST {"ev":"invoke","client":"n1.a.c1","op":1,"kind":"kv","f":"put_version","key":"k1","value":"n1.a.c1#1","version":7,"t":10}"#,
                    r#"HIST {"ev":"complete","client":"n1.a.c1","op":1,"kind":"kv","f":"put_version","key":"k1","value":"n1.a.c1#1","version":7,"ok":false,"err_kind":"ALREADY_EXISTS","err":"key k1 is at version 12, not 7","t":20}"#,
                    r#"HIST {"ev":"invoke","client":"n1.a.c1","op":2,"kind":"lock","f":"acquire","name":"L1","t":30}"#,
                    r#"HIST {"ev":"complete","client":"n1.a.c1","op":2,"kind":"lock","f":"acquire","name":"L1","ok":false,"err_kind":"ALREADY_EXISTS","err":"lock held: L1 (by {n2@app:processes|0x00004})","t":40}"#,
                    r#"HIST {"ev":"invoke","client":"n1.a.c1","op":3,"kind":"kv","f":"set","key":"k2","value":"n1.a.c1#3","t":50}"#,
                    r#"HIST {"ev":"complete","client":"n1.a.c1","op":3,"kind":"kv","f":"set","key":"k2","value":"n1.a.c1#3","ok":false,"err_kind":"UNAVAILABLE","err":"raft request outcome unknown: no answer from n2","t":60}"#,
                    r#"HIST {"ev":"invoke","client":"n1.a.c1","op":4,"kind":"kv","f":"set","key":"k2","value":"n1.a.c1#4","t":70}"#,
                    r#"HIST {"ev":"complete","client":"n1.a.c1","op":4,"kind":"kv","f":"set","key":"k2","value":"n1.a.c1#4","ok":false,"err_kind":"UNAVAILABLE","err":"no raft leader reachable within 5s","t":80}"#,
                    r#"HIST {"ev":"invoke","client":"n1.a.c1","op":5,"kind":"name","f":"lookup","name":"N1","t":90}"#,
                    r#"HIST {"ev":"observe","what":"something new","t":95}"#,
                ],
            )],
            faults: vec![Fault { node: "n1".into(), incarnation: 0, kind: FaultKind::Pause, start: 100, end: 200 }],
        };
        let p = parse(&rec);
        assert_eq!(p.calls.len(), 5);
        assert_eq!(p.other.len(), 1, "unknown events are kept for other checks");
        let (kv, stats) = kv_ops(&p);
        assert_eq!(kv.len(), 2, "the call that failed without effect is left out");
        assert_eq!(kv[0].output, Some(KvOut::Exists(Some(12))));
        assert_eq!((kv[1].complete, &kv[1].output), (None, &None), "an unknown outcome");
        assert!(stats.unexpected.is_empty(), "{stats:?}");
        let (locks, _) = lock_ops(&p, &rec.faults);
        assert_eq!(locks[0].output, Some(LockOut::Held(Some("{n2@app:processes|0x00004}".into()))));
        assert_eq!(locks[1].input.f, LockIn::Revoke(Who::Group("n1.a".into()), 200));
        let (names, _) = name_ops(&p, &rec.faults, true);
        assert_eq!(names[0].complete, None, "a lookup that never completed");
    }
}
