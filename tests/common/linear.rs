//! A linearizability checker for histories recorded from real nodes.
//!
//! The search is Wing & Gong's: walk the history in time order and, at each
//! step, try every operation that may take effect next (it was invoked before
//! the earliest pending completion), backtracking when the model rejects an
//! output. Lowe's memoization keeps it tractable: a node of the search is the
//! set of operations already placed plus the model state, and a node seen
//! once is never explored again (porcupine and knossos work the same way).
//!
//! Refinements for histories from a faulty cluster:
//! - **Unknown outcomes.** An operation whose node died, whose call timed out
//!   or that reported "outcome unknown" has no completion (+infinity) and no
//!   known output: it may take effect at any point after its invocation, with
//!   any output the model allows ([`Model::unknown_outputs`]), or not at all.
//!   Such an operation is never placed where it would change nothing (it is
//!   worth more kept for later), one that a read observed must have taken
//!   effect before that read completed ([`Model::observed_by`]), and the
//!   ones nobody could have observed are first left out altogether
//!   ([`Model::leave_out_first`]), which settles most keys at once.
//! - **Subsumption.** Besides Lowe's exact cache, a node whose placed
//!   must-happen operations and state match a failed node that had used
//!   fewer unknown outcomes fails too: it has fewer options left. Without
//!   this, subsets of unknown outcomes multiply the search.
//! - **Reads that fit are placed at once.** An operation that never changes
//!   the state ([`Model::read_only`]) and fits the current state is placed
//!   without trying alternatives: placing it later can only add constraints.
//!   This is what lets reads that may be stale (invoked at the start of the
//!   history) come by the hundred.
//! - **P-compositionality.** A history is linearizable iff each key's
//!   sub-history is ([`Model::partition`]), so keys are checked one by one
//!   and a failure names its key.
//!
//! A failure reports the shortest prefix of its key's history that the
//! search cannot show linearizable (the history as it stood at some instant;
//! operations still running then become unknown, which keeps the cut sound:
//! a linearizable history has only linearizable prefixes) and where the
//! search got stuck, so the dump ends at the operation that cannot be
//! explained. Showing a history linearizable is usually quick; refuting one
//! with many unknown outcomes may exceed the search budget, and the report
//! then says it could not decide, still pointing at the culprit.
#![allow(dead_code, unreachable_pub)]

use std::collections::{BTreeMap, HashMap};
use std::fmt::{self, Debug, Write as _};
use std::hash::Hash;

/// One operation of a history. Times are wall-clock nanoseconds (any
/// common clock works); an operation takes effect at one instant between
/// `invoke` and `complete`.
#[derive(Clone, Debug)]
pub struct Op<I, O> {
    /// Who called (for the dump; the model may also use it through `input`).
    pub client: String,
    pub invoke: u64,
    /// `None`: never completed, or completed with an unknown outcome: the
    /// operation may take effect at any later time, or never.
    pub complete: Option<u64>,
    pub input: I,
    /// `None`: unknown; any of [`Model::unknown_outputs`]. An operation of
    /// unknown outcome has no `complete` either, unless something proves
    /// it took effect by then (see [`Model::observed_by`]).
    pub output: Option<O>,
}

impl<I, O> Op<I, O> {
    /// An operation that completed with `output`.
    pub fn done(client: &str, invoke: u64, complete: u64, input: I, output: O) -> Self {
        Op { client: client.to_owned(), invoke, complete: Some(complete), input, output: Some(output) }
    }

    /// An operation whose outcome is unknown.
    pub fn unknown(client: &str, invoke: u64, input: I) -> Self {
        Op { client: client.to_owned(), invoke, complete: None, input, output: None }
    }

    /// Whether it must have taken effect, before `complete`.
    fn finite(&self) -> bool {
        self.complete.is_some()
    }
}

/// A sequential specification.
pub trait Model {
    type State: Clone + Eq + Hash + Debug;
    type Input: Clone + Debug;
    type Output: Clone + Debug + PartialEq;

    fn init(&self) -> Self::State;

    /// The state after `input` returned `output` in `state`, or `None` when
    /// that output is impossible there.
    fn step(&self, state: &Self::State, input: &Self::Input, output: &Self::Output) -> Option<Self::State>;

    /// The outputs an operation of unknown outcome may have had, should it
    /// have taken effect. Empty for reads (an unknown read says nothing).
    fn unknown_outputs(&self, input: &Self::Input) -> Vec<Self::Output>;

    /// The key whose sub-history this operation belongs to. Operations of
    /// different keys must never affect each other. Default: one history.
    fn partition(&self, _input: &Self::Input) -> String {
        String::new()
    }

    /// Whether the operation leaves every state unchanged.
    fn read_only(&self, _input: &Self::Input) -> bool {
        false
    }

    /// Whether the output of `by` proves that `op` took effect (a read
    /// returned the unique value `op` wrote): `op` then took effect before
    /// `by` completed, which bounds an unknown outcome in time.
    fn observed_by(&self, _op: &Op<Self::Input, Self::Output>, _by: &Op<Self::Input, Self::Output>) -> bool {
        false
    }

    /// Whether an operation of unknown outcome that may never have taken
    /// effect is left out of a first, faster search (e.g. a write of a
    /// value no read returned). Leaving it out is one of its allowed
    /// outcomes, so a first search that succeeds settles the key; only if
    /// it fails is the history searched again with these operations in,
    /// which costs up to a factor of two per operation.
    fn leave_out_first(&self, _op: &Op<Self::Input, Self::Output>, _all: &[Op<Self::Input, Self::Output>]) -> bool {
        false
    }

    /// One operation for the dump: the call and, when known, its result.
    fn show(&self, input: &Self::Input, output: Option<&Self::Output>) -> String {
        match output {
            Some(o) => format!("{input:?} -> {o:?}"),
            None => format!("{input:?} -> ?"),
        }
    }
}

/// The operations of a history for model `M`.
pub type History<M> = Vec<Op<<M as Model>::Input, <M as Model>::Output>>;

/// What a successful check covered.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    /// Keys checked.
    pub keys: usize,
    /// Operations checked, unknown outcomes included.
    pub ops: usize,
    /// Operations of unknown outcome.
    pub unknown: usize,
    /// Search steps over all keys.
    pub steps: u64,
}

/// A key whose history is not linearizable (or that the search could not
/// decide within its budget).
#[derive(Clone, Debug)]
pub struct Violation {
    pub key: String,
    /// `true`: the budget ran out; the history may still be linearizable.
    pub gave_up: bool,
    /// The readable account: the failing prefix and where the search got
    /// stuck.
    pub dump: String,
    /// Every operation of the key, for a file next to the test output.
    pub full: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.dump)
    }
}

/// Search steps allowed per key before the checker gives up.
pub const DEFAULT_BUDGET: u64 = 5_000_000;

/// Checks `ops` against `model`, key by key.
pub fn check<M: Model>(model: &M, ops: &[Op<M::Input, M::Output>]) -> Result<Summary, Violation> {
    check_with(model, ops, DEFAULT_BUDGET)
}

/// [`check`] with an explicit search budget per key.
pub fn check_with<M: Model>(model: &M, ops: &[Op<M::Input, M::Output>], budget: u64) -> Result<Summary, Violation> {
    let mut keys: BTreeMap<String, History<M>> = BTreeMap::new();
    for op in ops {
        keys.entry(model.partition(&op.input)).or_default().push(op.clone());
    }
    let mut summary = Summary::default();
    for (key, mut part) in keys {
        part.sort_by_key(|o| o.invoke);
        summary.keys += 1;
        summary.ops += part.len();
        summary.unknown += part.iter().filter(|o| o.output.is_none()).count();
        bound_observed(model, &mut part);
        let (outcome, _) = decide(model, &part, budget);
        summary.steps += outcome.steps;
        if outcome.verdict != Verdict::Linearizable {
            return Err(explain(model, &key, &part, budget));
        }
    }
    Ok(summary)
}

/// One key's verdict, with the search that gave it and the operations that
/// search saw. First without the unknown-outcome operations the model lets
/// go (one of their allowed outcomes); if that fails, with everything.
fn decide<M: Model>(model: &M, ops: &[Op<M::Input, M::Output>], budget: u64) -> (Outcome<M::State>, History<M>) {
    let pruned: Vec<_> = ops.iter().filter(|o| o.finite() || !model.leave_out_first(o, ops)).cloned().collect();
    let first = search(model, &pruned, budget);
    if first.verdict == Verdict::Linearizable || pruned.len() == ops.len() {
        return (first, pruned);
    }
    let mut full = search(model, ops, budget);
    full.steps += first.steps;
    (full, ops.to_vec())
}

/// An unknown-outcome operation that some completed operation observed did
/// take effect, before the earliest such completion.
fn bound_observed<M: Model>(model: &M, ops: &mut [Op<M::Input, M::Output>]) {
    for i in 0..ops.len() {
        if ops[i].output.is_some() {
            continue;
        }
        let by = ops
            .iter()
            .filter(|b| b.output.is_some() && b.complete.is_some() && model.observed_by(&ops[i], b))
            .filter_map(|b| b.complete)
            .min();
        if let Some(t) = by
            && ops[i].complete.is_none_or(|c| c > t)
        {
            ops[i].complete = Some(t);
        }
    }
}

// ---------------------------------------------------------------------------
// the search
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    Linearizable,
    NotLinearizable,
    GaveUp,
}

/// Where the search got furthest: how many completed operations it could
/// order, the order, the state there, and the operation that had to come
/// next but could not.
struct Deepest<S> {
    placed: usize,
    order: Vec<usize>,
    state: S,
    stuck: Option<usize>,
}

struct Outcome<S> {
    verdict: Verdict,
    steps: u64,
    deepest: Option<Deepest<S>>,
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct BitSet(Vec<u64>);

impl BitSet {
    fn new(n: usize) -> Self {
        BitSet(vec![0; n.div_ceil(64)])
    }
    fn set(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }
    fn clear(&mut self, i: usize) {
        self.0[i / 64] &= !(1 << (i % 64));
    }
    fn get(&self, i: usize) -> bool {
        self.0[i / 64] & (1 << (i % 64)) != 0
    }
    fn is_subset(&self, of: &BitSet) -> bool {
        self.0.iter().zip(&of.0).all(|(a, b)| a & !b == 0)
    }
}

const END: usize = usize::MAX;
const HEAD: usize = 0;

/// The operations' invocations and completions in time order (an operation
/// that may never take effect completes at the end), as a doubly linked
/// list from which placed operations are lifted (and put back, in reverse
/// order, when the search backtracks).
struct Events {
    /// (operation, is its invocation); index 0 is the head sentinel.
    ent: Vec<(usize, bool)>,
    next: Vec<usize>,
    prev: Vec<usize>,
    call: Vec<usize>,
    ret: Vec<usize>,
}

impl Events {
    fn new<I, O>(ops: &[Op<I, O>]) -> Events {
        let mut evs: Vec<(u64, u8, usize)> = Vec::new();
        for (i, op) in ops.iter().enumerate() {
            evs.push((op.invoke, 0, i));
            // Completions sort after invocations at the same instant: two
            // operations that touch are treated as concurrent.
            evs.push((op.complete.unwrap_or(u64::MAX), 1, i));
        }
        evs.sort_unstable();
        let n = evs.len() + 1;
        let mut e = Events {
            ent: vec![(END, false); n],
            next: vec![END; n],
            prev: vec![END; n],
            call: vec![END; ops.len()],
            ret: vec![END; ops.len()],
        };
        for (k, (_, kind, op)) in evs.iter().enumerate() {
            let idx = k + 1;
            e.ent[idx] = (*op, *kind == 0);
            if *kind == 0 {
                e.call[*op] = idx;
            } else {
                e.ret[*op] = idx;
            }
            e.prev[idx] = idx - 1;
            e.next[idx - 1] = idx;
        }
        e
    }

    fn unlink(&mut self, x: usize) {
        let (p, n) = (self.prev[x], self.next[x]);
        self.next[p] = n;
        if n != END {
            self.prev[n] = p;
        }
    }

    fn relink(&mut self, x: usize) {
        let (p, n) = (self.prev[x], self.next[x]);
        self.next[p] = x;
        if n != END {
            self.prev[n] = x;
        }
    }

    fn lift(&mut self, op: usize) {
        self.unlink(self.call[op]);
        self.unlink(self.ret[op]);
    }

    fn unlift(&mut self, op: usize) {
        self.relink(self.ret[op]);
        self.relink(self.call[op]);
    }

    /// The operation whose completion comes first among those not placed
    /// (only one that must take effect, while any is left).
    fn first_return(&self) -> Option<usize> {
        let mut e = self.next[HEAD];
        while e != END {
            let (op, is_call) = self.ent[e];
            if !is_call {
                return Some(op);
            }
            e = self.next[e];
        }
        None
    }
}

struct Frame<S> {
    op: usize,
    branch: usize,
    prev: S,
    /// Placed because it was a fitting read: if what follows fails, so
    /// does the node it was placed at.
    forced: bool,
    /// The node this placement led to: (hash, index in that bucket).
    node: (u64, usize),
}

/// A node of the search: the placed operations that must take effect, the
/// model state, the placed operations that may not have happened, and
/// whether everything below it was explored without success.
struct Node<S> {
    done: BitSet,
    state: S,
    used: BitSet,
    failed: bool,
}

fn node_hash<S: Hash>(done: &BitSet, state: &S) -> u64 {
    use std::hash::Hasher;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    done.hash(&mut h);
    state.hash(&mut h);
    h.finish()
}

/// Searches for a linearization: Wing & Gong's walk, candidates in
/// invocation order. (Trying unknown outcomes only after the completed
/// candidates looks cheaper but is not: when one is needed, everything
/// before it is tried first, and the subsets multiply.)
fn search<M: Model>(model: &M, ops: &[Op<M::Input, M::Output>], budget: u64) -> Outcome<M::State> {
    // Reads that may not have happened constrain nothing.
    let owned: Vec<Op<M::Input, M::Output>> =
        ops.iter().filter(|o| o.finite() || !model.read_only(&o.input)).cloned().collect();
    let ops = &owned[..];
    let n = ops.len();
    let finite: Vec<bool> = ops.iter().map(Op::finite).collect();
    let total_finite = finite.iter().filter(|f| **f).count();
    let reads: Vec<bool> = ops.iter().map(|o| model.read_only(&o.input)).collect();
    let outs: Vec<Vec<M::Output>> = ops
        .iter()
        .map(|o| match &o.output {
            Some(out) => vec![out.clone()],
            None => model.unknown_outputs(&o.input),
        })
        .collect();
    let mut ev = Events::new(ops);
    let mut state = model.init();
    let mut done = BitSet::new(n);
    let mut used = BitSet::new(n);
    // Lowe's cache, extended: a node whose placed must-happen operations
    // and state match a failed one that had used fewer of the others has
    // fewer options left, so it fails too. This keeps subsets of unknown
    // outcomes from multiplying the search.
    let mut nodes: HashMap<u64, Vec<Node<M::State>>> = HashMap::new();
    let mut frames: Vec<Frame<M::State>> = Vec::new();
    let mut placed = 0usize;
    let mut steps = 0u64;
    let mut deepest: Option<Deepest<M::State>> = None;
    let mut fresh = true;
    // Where the search resumes at the current node: an invocation in the
    // event list and the first output to try.
    let mut cursor = (ev.next[HEAD], 0usize);

    // Pops frames until one whose operation has more to try; returns
    // `NotLinearizable` when the root has nothing left.
    macro_rules! backtrack {
        () => {{
            let mut resume = None;
            while let Some(f) = frames.pop() {
                nodes.get_mut(&f.node.0).expect("a placed node")[f.node.1].failed = true;
                state = f.prev;
                if finite[f.op] {
                    done.clear(f.op);
                    placed -= 1;
                } else {
                    used.clear(f.op);
                }
                ev.unlift(f.op);
                if f.forced {
                    continue;
                }
                resume = Some((ev.call[f.op], f.branch + 1));
                break;
            }
            match resume {
                Some(c) => cursor = c,
                None => return Outcome { verdict: Verdict::NotLinearizable, steps, deepest },
            }
        }};
    }

    // Places `op` with its output `b` if the model allows it and the node
    // it leads to is worth exploring.
    macro_rules! place {
        ($op:expr, $b:expr, $forced:expr) => {{
            let (op, b) = ($op, $b);
            let mut next = model.step(&state, &ops[op].input, &outs[op][b]);
            if !finite[op] {
                // An operation that may never take effect and changes
                // nothing here is better kept for later.
                next = next.filter(|s| *s != state);
                // Right after another such operation, if it would lead to
                // the same state without it, that other is not needed: the
                // sibling that places only this one covers the case.
                if let Some(top) = frames.last()
                    && !finite[top.op]
                    && !top.forced
                    && next.is_some()
                    && model.step(&top.prev, &ops[op].input, &outs[op][b]) == next
                {
                    next = None;
                }
            }
            let mut ok = false;
            if let Some(next) = next {
                if finite[op] {
                    done.set(op);
                } else {
                    used.set(op);
                }
                let h = node_hash(&done, &next);
                let bucket = nodes.entry(h).or_default();
                let seen = bucket.iter().any(|nd| {
                    nd.done == done && nd.state == next && (nd.used == used || (nd.failed && nd.used.is_subset(&used)))
                });
                if seen {
                    if finite[op] {
                        done.clear(op);
                    } else {
                        used.clear(op);
                    }
                } else {
                    bucket.push(Node { done: done.clone(), state: next.clone(), used: used.clone(), failed: false });
                    let node = (h, bucket.len() - 1);
                    let prev = std::mem::replace(&mut state, next);
                    frames.push(Frame { op, branch: b, prev, forced: $forced, node });
                    ev.lift(op);
                    if finite[op] {
                        placed += 1;
                    }
                    ok = true;
                }
            }
            ok
        }};
    }

    loop {
        if placed == total_finite {
            return Outcome { verdict: Verdict::Linearizable, steps, deepest };
        }
        steps += 1;
        if steps > budget {
            return Outcome { verdict: Verdict::GaveUp, steps, deepest };
        }
        if fresh {
            fresh = false;
            if deepest.as_ref().is_none_or(|d| placed > d.placed) {
                deepest = Some(Deepest {
                    placed,
                    order: frames.iter().map(|f| f.op).collect(),
                    state: state.clone(),
                    stuck: ev.first_return(),
                });
            }
            // A read that fits now goes now.
            let mut e = ev.next[HEAD];
            let mut fit = None;
            while e != END && ev.ent[e].1 {
                let op = ev.ent[e].0;
                if reads[op] && model.step(&state, &ops[op].input, &outs[op][0]).is_some() {
                    fit = Some(op);
                    break;
                }
                e = ev.next[e];
            }
            if let Some(op) = fit {
                if place!(op, 0, true) {
                    fresh = true;
                } else {
                    // The node after it was explored already, and failed.
                    backtrack!();
                }
                continue;
            }
            cursor = (ev.next[HEAD], 0);
        }
        // Candidates are the invocations before the first pending
        // completion; reaching it (or the end) means none is left here.
        let (e, b) = cursor;
        if e == END || !ev.ent[e].1 {
            backtrack!();
            continue;
        }
        let op = ev.ent[e].0;
        let mut placed_one = false;
        if !reads[op] {
            for branch in b..outs[op].len() {
                if place!(op, branch, false) {
                    placed_one = true;
                    break;
                }
            }
        }
        if placed_one {
            fresh = true;
        } else {
            cursor = (ev.next[e], 0);
        }
    }
}

// ---------------------------------------------------------------------------
// the report
// ---------------------------------------------------------------------------

/// The history up to (and including) the invocation at `cut`: operations
/// still running then may or may not take effect.
fn prefix<I: Clone, O: Clone>(ops: &[Op<I, O>], cut: u64) -> Vec<Op<I, O>> {
    ops.iter()
        .filter(|o| o.invoke <= cut)
        .map(|o| {
            let mut o = o.clone();
            if o.complete.is_none_or(|c| c > cut) {
                o.complete = None;
            }
            o
        })
        .collect()
}

fn explain<M: Model>(model: &M, key: &str, ops: &[Op<M::Input, M::Output>], budget: u64) -> Violation {
    let base = ops.iter().map(|o| o.invoke).min().unwrap_or(0);
    let full = listing(model, ops, base, None, &[]);
    // The earliest cut that is not shown linearizable. Cutting later never
    // helps (a linearizable history has only linearizable prefixes), and
    // showing a history linearizable is usually fast where refuting it can
    // take the whole budget: so everything before this cut is known good,
    // and this cut is where the trouble starts.
    let mut cuts: Vec<u64> = ops.iter().flat_map(|o| [Some(o.invoke), o.complete]).flatten().collect();
    cuts.sort_unstable();
    cuts.dedup();
    let last = cuts.len().saturating_sub(1);
    let mut lo = 0usize;
    let (hi, outcome, failing) = loop {
        // Probes get a quarter of the budget; a cut whose probe ran out but
        // which the full budget shows linearizable moves the search on.
        let mut hi = last;
        while lo < hi {
            let mid = (lo + hi) / 2;
            if decide(model, &prefix(ops, cuts[mid]), budget / 4).0.verdict == Verdict::Linearizable {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        let (outcome, failing) = decide(model, &prefix(ops, cuts.get(hi).copied().unwrap_or(0)), budget);
        if outcome.verdict != Verdict::Linearizable || hi >= last {
            break (hi, outcome, failing);
        }
        lo = hi + 1;
    };
    let cut = cuts.get(hi).copied().unwrap_or(0);
    let gave_up = outcome.verdict != Verdict::NotLinearizable;
    let mut d = String::new();
    let shown_key = if key.is_empty() { "the history" } else { key };
    if gave_up {
        let _ = writeln!(
            d,
            "{shown_key}: could not decide within {budget} search steps; it may still be linearizable. \
             {} operations; the history up to +{:.3} ms is linearizable, the {} operations up to the next \
             event at +{:.3} ms are where the search runs out.",
            ops.len(),
            ms(cuts[hi.saturating_sub(1)], base),
            failing.len(),
            ms(cut, base)
        );
    } else {
        let _ = writeln!(
            d,
            "{shown_key}: NOT linearizable. {} operations; the shortest failing prefix has {} \
             (the history as it stood at +{:.3} ms; operations still running then count as unknown).",
            ops.len(),
            failing.len(),
            ms(cut, base)
        );
    }
    let pruned_reads: Vec<&Op<M::Input, M::Output>> =
        failing.iter().filter(|o| o.finite() || !model.read_only(&o.input)).collect();
    let mut marks: Vec<(usize, &str)> = Vec::new();
    if let Some(deep) = &outcome.deepest {
        let _ = writeln!(
            d,
            "The search orders at most {} of the {} completed operations of that prefix.",
            deep.placed,
            failing.iter().filter(|o| o.finite()).count()
        );
        if let Some(stuck) = deep.stuck {
            let o = pruned_reads[stuck];
            let why = if outcome.verdict == Verdict::NotLinearizable {
                "no order of the operations running before it explains its result"
            } else {
                "the furthest the search got before it stopped"
            };
            let _ = writeln!(
                d,
                "Stuck on: {} {} (completed at +{:.3} ms): {why}.",
                o.client,
                model.show(&o.input, o.output.as_ref()),
                ms(o.complete.unwrap_or(0), base)
            );
            if let Some(i) = failing.iter().position(|x| std::ptr::eq(x, o)) {
                marks.push((i, ">>"));
            }
        }
        let _ = writeln!(d, "State there: {:?}", deep.state);
        let tail: Vec<String> = deep
            .order
            .iter()
            .rev()
            .take(6)
            .rev()
            .map(|i| {
                let o = pruned_reads[*i];
                format!("{} {}", o.client, model.show(&o.input, o.output.as_ref()))
            })
            .collect();
        if !tail.is_empty() {
            let _ = writeln!(d, "Last operations of that order:\n    {}", tail.join("\n    "));
        }
    }
    let last = failing
        .iter()
        .enumerate()
        .filter(|(_, o)| o.invoke == cut || o.complete == Some(cut))
        .map(|(i, _)| i)
        .collect::<Vec<_>>();
    for i in &last {
        marks.push((*i, "=>"));
    }
    let _ = writeln!(
        d,
        "Operations of the failing prefix (times in ms from the first invocation; ? = outcome unknown \
         or still running at the cut; => invoked or completed at the cut; >> where the search got stuck):"
    );
    const SHOW: usize = 40;
    let from = failing.len().saturating_sub(SHOW);
    if from > 0 {
        let _ = writeln!(d, "    ... {from} earlier operations (in the full listing)");
    }
    d.push_str(&listing(model, &failing, base, Some(from), &marks));
    Violation { key: key.to_owned(), gave_up, dump: d, full }
}

fn ms(t: u64, base: u64) -> f64 {
    t.saturating_sub(base) as f64 / 1e6
}

fn listing<M: Model>(
    model: &M,
    ops: &[Op<M::Input, M::Output>],
    base: u64,
    from: Option<usize>,
    marks: &[(usize, &str)],
) -> String {
    let mut s = String::new();
    for (i, o) in ops.iter().enumerate().skip(from.unwrap_or(0)) {
        let mark = marks.iter().find(|(j, _)| *j == i).map_or("  ", |(_, m)| m);
        let end = match (o.complete, &o.output) {
            (Some(c), Some(_)) => format!("{:>11.3}", ms(c, base)),
            _ => format!("{:>11}", "?"),
        };
        let out = o.output.as_ref();
        let _ = writeln!(
            s,
            "  {mark} #{i:<4} {:>11.3} ..{end}  {:<22} {}",
            ms(o.invoke, base),
            o.client,
            model.show(&o.input, out)
        );
    }
    s
}

// ---------------------------------------------------------------------------
// increasing stamps (fencing tokens, log indices)
// ---------------------------------------------------------------------------

/// A number an operation returned that must grow in real-time order.
#[derive(Clone, Debug)]
pub struct Stamp {
    pub label: String,
    pub invoke: u64,
    pub complete: u64,
    pub value: u64,
}

/// Checks that no two operations returned the same value and that an
/// operation that completed before another began returned a smaller one:
/// what fencing tokens promise, independently of any model.
pub fn check_increasing(what: &str, stamps: &[Stamp]) -> Result<(), String> {
    let mut by_value: Vec<&Stamp> = stamps.iter().collect();
    by_value.sort_by_key(|s| s.value);
    for w in by_value.windows(2) {
        if w[0].value == w[1].value {
            return Err(format!("{what}: {} returned twice: by {} and by {}", w[0].value, w[0].label, w[1].label));
        }
    }
    let mut by_complete: Vec<&Stamp> = stamps.iter().collect();
    by_complete.sort_by_key(|s| s.complete);
    let mut by_invoke: Vec<&Stamp> = stamps.iter().collect();
    by_invoke.sort_by_key(|s| s.invoke);
    let mut k = 0;
    let mut max: Option<&Stamp> = None;
    for s in by_invoke {
        while k < by_complete.len() && by_complete[k].complete < s.invoke {
            if max.is_none_or(|m| by_complete[k].value > m.value) {
                max = Some(by_complete[k]);
            }
            k += 1;
        }
        if let Some(m) = max
            && m.value >= s.value
        {
            return Err(format!(
                "{what}: went backwards: {} returned {} and completed before {} began, which returned {}",
                m.label, m.value, s.label, s.value
            ));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// models
// ---------------------------------------------------------------------------

/// A process that may hold locks and names: the client that called, the
/// node incarnation it ran in (`<node>.<boot>`), and its PID (what the
/// node reports as the holder; PIDs may repeat across incarnations).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Holder {
    pub client: String,
    pub group: String,
    pub pid: String,
}

/// Whose holdings a revocation may end.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Who {
    Client(String),
    /// Every client of one node incarnation.
    Group(String),
}

impl Who {
    fn covers(&self, h: &Holder) -> bool {
        match self {
            Who::Client(c) => *c == h.client,
            Who::Group(g) => *g == h.group,
        }
    }
}

// --- kv.raft register --------------------------------------------------------

/// A `store.kv.raft` key holding unique values; versions are the Raft log
/// index of the write, so they grow with every write of the key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KvIn {
    /// `s:entry(key)`.
    Read,
    /// `s:set(key, v)` (answers `true`, no version).
    Set(String),
    /// `s:put(key, v)`.
    Put(String),
    /// `s:put(key, v, {only_if_absent = true})`.
    PutAbsent(String),
    /// `s:put(key, v, {if_version = n})`.
    PutVersion(String, u64),
    /// `s:delete(key)`.
    Delete,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KvOut {
    /// A read found (value, version).
    Found(String, u64),
    /// `NOT_FOUND`.
    Absent,
    /// A write applied, with its version when the call returns one.
    Written(Option<u64>),
    /// `ALREADY_EXISTS`; for `if_version`, the key's version when the
    /// message gives it.
    Exists(Option<u64>),
    /// `delete`'s answer: whether the key existed.
    Deleted(bool),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KvOp {
    pub key: String,
    pub f: KvIn,
}

/// The key's value and version (`None` while no call has told it), and
/// `floor`: every later write's version is above it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct KvState {
    pub cur: Option<(String, Option<u64>)>,
    pub floor: u64,
}

pub struct Kv;

/// The value a write stores.
fn written_value(f: &KvIn) -> Option<&str> {
    match f {
        KvIn::Set(v) | KvIn::Put(v) | KvIn::PutAbsent(v) | KvIn::PutVersion(v, _) => Some(v),
        KvIn::Read | KvIn::Delete => None,
    }
}

fn written(s: &KvState, v: &str, ver: Option<u64>) -> Option<KvState> {
    let mut s = s.clone();
    if let Some(n) = ver {
        if n <= s.floor {
            return None;
        }
        s.floor = n;
    }
    s.cur = Some((v.to_owned(), ver));
    Some(s)
}

/// The current version learnt as `n`.
fn learn(s: &KvState, n: u64) -> Option<KvState> {
    let (v, ver) = s.cur.as_ref()?;
    match ver {
        Some(m) => (*m == n).then(|| s.clone()),
        None if n > s.floor => Some(KvState { cur: Some((v.clone(), Some(n))), floor: n }),
        None => None,
    }
}

impl Model for Kv {
    type State = KvState;
    type Input = KvOp;
    type Output = KvOut;

    fn init(&self) -> KvState {
        KvState::default()
    }

    fn step(&self, s: &KvState, op: &KvOp, out: &KvOut) -> Option<KvState> {
        use KvIn::*;
        use KvOut::*;
        match (&op.f, out) {
            (Read, Found(v, n)) => {
                if s.cur.as_ref()?.0 != *v {
                    return None;
                }
                learn(s, *n)
            }
            (Read, Absent) | (PutVersion(..), Absent) => s.cur.is_none().then(|| s.clone()),
            (Set(v), Written(None)) => written(s, v, None),
            (Put(v), Written(ver)) => written(s, v, *ver),
            (PutAbsent(v), Written(ver)) => s.cur.is_none().then(|| written(s, v, *ver)).flatten(),
            (PutAbsent(_), Exists(None)) => s.cur.is_some().then(|| s.clone()),
            (PutVersion(v, want), Written(ver)) => {
                let at = learn(s, *want)?;
                written(&at, v, *ver)
            }
            (PutVersion(_, want), Exists(now)) => {
                let ver = s.cur.as_ref()?.1;
                match (ver, now) {
                    (Some(m), _) if m == *want => None,
                    (_, Some(c)) if c == want => None,
                    (Some(_), Some(c)) => learn(s, *c),
                    (None, Some(c)) => learn(s, *c),
                    (_, None) => Some(s.clone()),
                }
            }
            (Delete, Deleted(existed)) => {
                (s.cur.is_some() == *existed).then_some(KvState { cur: None, floor: s.floor })
            }
            _ => None,
        }
    }

    fn unknown_outputs(&self, op: &KvOp) -> Vec<KvOut> {
        use KvOut::*;
        match op.f {
            KvIn::Read => vec![],
            KvIn::Set(_) | KvIn::Put(_) => vec![Written(None)],
            KvIn::PutAbsent(_) => vec![Written(None), Exists(None)],
            KvIn::PutVersion(..) => vec![Written(None), Exists(None), Absent],
            KvIn::Delete => vec![Deleted(true), Deleted(false)],
        }
    }

    fn partition(&self, op: &KvOp) -> String {
        op.key.clone()
    }

    fn observed_by(&self, op: &Op<KvOp, KvOut>, by: &Op<KvOp, KvOut>) -> bool {
        match (written_value(&op.input.f), &by.output) {
            (Some(v), Some(KvOut::Found(x, _))) => v == x,
            _ => false,
        }
    }

    /// Writes nobody read (their value is unique) and deletes.
    fn leave_out_first(&self, op: &Op<KvOp, KvOut>, all: &[Op<KvOp, KvOut>]) -> bool {
        op.complete.is_none() && (op.input.f == KvIn::Delete || !all.iter().any(|b| self.observed_by(op, b)))
    }

    fn show(&self, op: &KvOp, out: Option<&KvOut>) -> String {
        let call = match &op.f {
            KvIn::Read => format!("read({})", op.key),
            KvIn::Set(v) => format!("set({}, {v})", op.key),
            KvIn::Put(v) => format!("put({}, {v})", op.key),
            KvIn::PutAbsent(v) => format!("put_if_absent({}, {v})", op.key),
            KvIn::PutVersion(v, n) => format!("put_if_version({}, {v}, v{n})", op.key),
            KvIn::Delete => format!("delete({})", op.key),
        };
        let res = match out {
            None => "?".to_owned(),
            Some(KvOut::Found(v, n)) => format!("{v} v{n}"),
            Some(KvOut::Absent) => "NOT_FOUND".to_owned(),
            Some(KvOut::Written(Some(n))) => format!("ok v{n}"),
            Some(KvOut::Written(None)) => "ok".to_owned(),
            Some(KvOut::Exists(Some(n))) => format!("ALREADY_EXISTS (at v{n})"),
            Some(KvOut::Exists(None)) => "ALREADY_EXISTS".to_owned(),
            Some(KvOut::Deleted(b)) => b.to_string(),
        };
        format!("{call} -> {res}")
    }
}

// --- system.lock ---------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LockIn {
    /// `acquire`, invoked at the given time (a revocation only ends
    /// holdings that began before its window closed).
    Acquire(Holder, u64),
    /// `release` by this client.
    Release(String),
    /// Not a call: the cluster may remove `Who`'s holding (its node died,
    /// stopped or was cut off; or its node gave back a lost lock), if it
    /// was acquired by an invocation before the given time.
    Revoke(Who, u64),
    /// Not a call: this client was told its lock is lost (its node lost
    /// contact with a Raft majority), for a holding acquired by an
    /// invocation before the given time. It no longer holds the lock, but
    /// the record stays, refusing everyone, until a `Revoke` removes it
    /// (docs/lua/system.md: "the node gives the record back once it can").
    Lose(String, u64),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LockOut {
    /// Acquired, with the fencing token when known.
    Acquired(Option<u64>),
    /// `ALREADY_EXISTS`, with the holder's PID when the message names it.
    Held(Option<String>),
    /// `release`'s answer.
    Released(bool),
    /// A `Revoke` or `Lose` happened.
    Revoked,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockOp {
    pub lock: String,
    pub f: LockIn,
}

/// A holding: who, when its acquire was invoked, its token, and whether
/// the holder was told it lost it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Holding {
    pub holder: Holder,
    pub at: u64,
    pub token: Option<u64>,
    pub lost: bool,
}

/// The lock's record, and `floor`: the next token is above it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct LockState {
    pub holding: Option<Holding>,
    pub floor: u64,
}

pub struct Lock;

impl Model for Lock {
    type State = LockState;
    type Input = LockOp;
    type Output = LockOut;

    fn init(&self) -> LockState {
        LockState::default()
    }

    fn step(&self, s: &LockState, op: &LockOp, out: &LockOut) -> Option<LockState> {
        let free = || LockState { holding: None, floor: s.floor };
        match (&op.f, out) {
            (LockIn::Acquire(h, at), LockOut::Acquired(token)) => {
                if s.holding.is_some() {
                    return None;
                }
                let mut floor = s.floor;
                if let Some(t) = token {
                    if *t <= floor {
                        return None;
                    }
                    floor = *t;
                }
                Some(LockState {
                    holding: Some(Holding { holder: h.clone(), at: *at, token: *token, lost: false }),
                    floor,
                })
            }
            (LockIn::Acquire(..), LockOut::Held(by)) => {
                let held = s.holding.as_ref()?;
                by.as_ref().is_none_or(|p| *p == held.holder.pid).then(|| s.clone())
            }
            (LockIn::Release(c), LockOut::Released(true)) => match &s.holding {
                Some(h) if h.holder.client == *c && !h.lost => Some(free()),
                _ => None,
            },
            (LockIn::Release(c), LockOut::Released(false)) => {
                s.holding.as_ref().is_none_or(|h| h.holder.client != *c || h.lost).then(|| s.clone())
            }
            (LockIn::Revoke(who, before), LockOut::Revoked) => match &s.holding {
                Some(h) if who.covers(&h.holder) && h.at < *before => Some(free()),
                _ => Some(s.clone()),
            },
            (LockIn::Lose(c, before), LockOut::Revoked) => match &s.holding {
                Some(h) if h.holder.client == *c && h.at < *before => {
                    Some(LockState { holding: Some(Holding { lost: true, ..h.clone() }), floor: s.floor })
                }
                _ => Some(s.clone()),
            },
            _ => None,
        }
    }

    fn unknown_outputs(&self, op: &LockOp) -> Vec<LockOut> {
        match op.f {
            LockIn::Acquire(..) => vec![LockOut::Acquired(None), LockOut::Held(None)],
            LockIn::Release(_) => vec![LockOut::Released(true), LockOut::Released(false)],
            LockIn::Revoke(..) | LockIn::Lose(..) => vec![LockOut::Revoked],
        }
    }

    fn partition(&self, op: &LockOp) -> String {
        op.lock.clone()
    }

    fn show(&self, op: &LockOp, out: Option<&LockOut>) -> String {
        let call = match &op.f {
            LockIn::Acquire(..) => format!("acquire({})", op.lock),
            LockIn::Release(_) => format!("release({})", op.lock),
            LockIn::Revoke(Who::Client(c), _) => format!("[may lose {} held by {c}]", op.lock),
            LockIn::Revoke(Who::Group(g), _) => format!("[may lose {} held in {g}]", op.lock),
            LockIn::Lose(c, _) => format!("[{c} told it lost {}]", op.lock),
        };
        let res = match out {
            None => "?".to_owned(),
            Some(LockOut::Acquired(Some(t))) => format!("ok token {t}"),
            Some(LockOut::Acquired(None)) => "ok".to_owned(),
            Some(LockOut::Held(Some(p))) => format!("held by {p}"),
            Some(LockOut::Held(None)) => "held".to_owned(),
            Some(LockOut::Released(b)) => b.to_string(),
            Some(LockOut::Revoked) => "-".to_owned(),
        };
        format!("{call} -> {res}")
    }
}

// --- CONSISTENT names ------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NameIn {
    /// `register(name, nil, CONSISTENT)`, invoked at the given time.
    Register(Holder, u64),
    /// `unregister(name, CONSISTENT)` by this process.
    Unregister(Holder),
    /// `lookup(name)`.
    Lookup,
    /// As for locks: the name may be removed with its node's incarnation.
    Revoke(Who, u64),
    /// This client was told it lost the name (its node rejoined the
    /// cluster): from then on it no longer holds it, while the record stays
    /// until the leader removes it (a [`NameIn::Revoke`]).
    Lose(String, u64),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NameOut {
    Registered,
    /// `ALREADY_EXISTS`, with the holder's PID when the message names it.
    Exists(Option<String>),
    Unregistered(bool),
    /// `lookup`: the PID, or `None` for `NOT_FOUND`.
    Found(Option<String>),
    Revoked,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NameOp {
    pub name: String,
    pub f: NameIn,
}

pub struct Name;

impl Model for Name {
    /// The holder, when its registration was invoked, and whether its node
    /// told it the name is lost (the record lingers until removed).
    type State = Option<(Holder, u64, bool)>;
    type Input = NameOp;
    type Output = NameOut;

    fn init(&self) -> Self::State {
        None
    }

    fn step(&self, s: &Self::State, op: &NameOp, out: &NameOut) -> Option<Self::State> {
        match (&op.f, out) {
            // Registering again for the same PID succeeds and changes
            // nothing; a lost registration of the same PID is taken over.
            (NameIn::Register(h, at), NameOut::Registered) => match s {
                None => Some(Some((h.clone(), *at, false))),
                Some((cur, _, false)) if cur.pid == h.pid => Some(s.clone()),
                Some((cur, _, true)) if cur.pid == h.pid => Some(Some((h.clone(), *at, false))),
                Some(_) => None,
            },
            (NameIn::Register(h, _), NameOut::Exists(by)) => {
                let (cur, _, _) = s.as_ref()?;
                (cur.pid != h.pid && by.as_ref().is_none_or(|p| *p == cur.pid)).then(|| s.clone())
            }
            (NameIn::Unregister(h), NameOut::Unregistered(true)) => match s {
                Some((cur, _, false)) if cur.pid == h.pid => Some(None),
                _ => None,
            },
            // PIDs repeat across a node's restarts: a process of a new
            // incarnation does not hold what the same PID of the old one
            // registered, and its node does not count it (the record stays
            // until the leader removes it, or the new process takes it over).
            (NameIn::Unregister(h), NameOut::Unregistered(false)) => s
                .as_ref()
                .is_none_or(|(cur, _, lost)| cur.pid != h.pid || cur.group != h.group || *lost)
                .then(|| s.clone()),
            (NameIn::Lookup, NameOut::Found(pid)) => {
                (s.as_ref().map(|(h, _, _)| &h.pid) == pid.as_ref()).then(|| s.clone())
            }
            (NameIn::Revoke(who, before), NameOut::Revoked) => match s {
                Some((h, at, _)) if who.covers(h) && *at < *before => Some(None),
                _ => Some(s.clone()),
            },
            (NameIn::Lose(c, before), NameOut::Revoked) => match s {
                Some((h, at, _)) if h.client == *c && *at < *before => Some(Some((h.clone(), *at, true))),
                _ => Some(s.clone()),
            },
            _ => None,
        }
    }

    fn unknown_outputs(&self, op: &NameOp) -> Vec<NameOut> {
        match op.f {
            NameIn::Register(..) => vec![NameOut::Registered, NameOut::Exists(None)],
            NameIn::Unregister(_) => vec![NameOut::Unregistered(true), NameOut::Unregistered(false)],
            NameIn::Lookup => vec![],
            NameIn::Revoke(..) | NameIn::Lose(..) => vec![NameOut::Revoked],
        }
    }

    fn partition(&self, op: &NameOp) -> String {
        op.name.clone()
    }

    fn read_only(&self, op: &NameOp) -> bool {
        op.f == NameIn::Lookup
    }

    fn show(&self, op: &NameOp, out: Option<&NameOut>) -> String {
        let call = match &op.f {
            NameIn::Register(h, _) => format!("register({}) as {}", op.name, h.pid),
            NameIn::Unregister(h) => format!("unregister({}) as {}", op.name, h.pid),
            NameIn::Lookup => format!("lookup({})", op.name),
            NameIn::Revoke(Who::Client(c), _) => format!("[may lose {} held by {c}]", op.name),
            NameIn::Revoke(Who::Group(g), _) => format!("[may lose {} held in {g}]", op.name),
            NameIn::Lose(c, _) => format!("[{c} told it lost {}]", op.name),
        };
        let res = match out {
            None => "?".to_owned(),
            Some(NameOut::Registered) => "ok".to_owned(),
            Some(NameOut::Exists(Some(p))) => format!("ALREADY_EXISTS ({p})"),
            Some(NameOut::Exists(None)) => "ALREADY_EXISTS".to_owned(),
            Some(NameOut::Unregistered(b)) => b.to_string(),
            Some(NameOut::Found(Some(p))) => p.clone(),
            Some(NameOut::Found(None)) => "NOT_FOUND".to_owned(),
            Some(NameOut::Revoked) => "-".to_owned(),
        };
        format!("{call} -> {res}")
    }
}

// ---------------------------------------------------------------------------
// tests
// ---------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(key: &str, f: KvIn) -> KvOp {
        KvOp { key: key.to_owned(), f }
    }

    fn w(v: &str) -> KvIn {
        KvIn::Put(v.to_owned())
    }

    fn found(v: &str, n: u64) -> KvOut {
        KvOut::Found(v.to_owned(), n)
    }

    fn holder(client: &str) -> Holder {
        let group = client.rsplit_once('.').map_or(client, |(g, _)| g).to_owned();
        Holder { client: client.to_owned(), group, pid: format!("{{{client}|0x00001}}") }
    }

    fn lk(f: LockIn) -> LockOp {
        LockOp { lock: "L".to_owned(), f }
    }

    fn nm(f: NameIn) -> NameOp {
        NameOp { name: "N".to_owned(), f }
    }

    #[test]
    fn a_concurrent_write_may_be_seen_or_not() {
        let h = vec![
            Op::done("a", 0, 10, kv("k", w("a1")), KvOut::Written(Some(5))),
            Op::done("b", 20, 60, kv("k", w("b1")), KvOut::Written(Some(9))),
            // Overlaps b's write: either value is fine.
            Op::done("c", 30, 40, kv("k", KvIn::Read), found("a1", 5)),
            Op::done("d", 35, 50, kv("k", KvIn::Read), found("b1", 9)),
            Op::done("c", 70, 80, kv("k", KvIn::Read), found("b1", 9)),
        ];
        let s = check(&Kv, &h).unwrap();
        assert_eq!((s.keys, s.ops), (1, 5));
    }

    #[test]
    fn a_stale_read_after_a_completed_write_fails_and_names_its_key() {
        let h = vec![
            Op::done("a", 0, 10, kv("k1", w("a1")), KvOut::Written(Some(5))),
            Op::done("x", 0, 10, kv("other", w("x1")), KvOut::Written(Some(6))),
            Op::done("b", 20, 30, kv("k1", w("b1")), KvOut::Written(Some(9))),
            Op::done("c", 40, 50, kv("k1", KvIn::Read), found("a1", 5)),
        ];
        let v = check(&Kv, &h).unwrap_err();
        assert_eq!(v.key, "k1");
        assert!(!v.gave_up);
        assert!(v.dump.contains("NOT linearizable"), "{v}");
        assert!(v.dump.contains("read(k1) -> a1 v5"), "{v}");
        assert!(!v.dump.contains("x1"), "the other key stays out of the dump:\n{v}");
    }

    #[test]
    fn versions_must_match_the_write_and_grow() {
        let ok = vec![
            Op::done("a", 0, 10, kv("k", KvIn::Set("a1".into())), KvOut::Written(None)),
            Op::done("b", 20, 30, kv("k", KvIn::Read), found("a1", 4)),
            Op::done("b", 40, 50, kv("k", KvIn::PutVersion("b1".into(), 4)), KvOut::Written(Some(7))),
            Op::done("c", 60, 70, kv("k", KvIn::PutVersion("c1".into(), 4)), KvOut::Exists(Some(7))),
            Op::done("c", 80, 90, kv("k", KvIn::PutAbsent("c2".into())), KvOut::Exists(None)),
            Op::done("c", 100, 110, kv("k", KvIn::Delete), KvOut::Deleted(true)),
            Op::done("c", 120, 130, kv("k", KvIn::PutVersion("c3".into(), 7)), KvOut::Absent),
            Op::done("c", 140, 150, kv("k", KvIn::PutAbsent("c4".into())), KvOut::Written(Some(12))),
        ];
        check(&Kv, &ok).unwrap();
        // The same read version for two different writes.
        let mut bad = ok[..3].to_vec();
        bad.push(Op::done("d", 40, 50, kv("k", KvIn::Read), found("b1", 4)));
        assert!(check(&Kv, &bad).is_err());
        // A version that goes backwards.
        let bad = vec![
            Op::done("a", 0, 10, kv("k", w("a1")), KvOut::Written(Some(9))),
            Op::done("b", 20, 30, kv("k", w("b1")), KvOut::Written(Some(8))),
        ];
        assert!(check(&Kv, &bad).is_err());
    }

    #[test]
    fn an_unknown_write_may_have_happened_later() {
        // b's write never completed, and a read after everything sees it.
        let h = vec![
            Op::done("a", 0, 10, kv("k", w("a1")), KvOut::Written(Some(3))),
            Op::unknown("b", 5, kv("k", w("b1"))),
            Op::done("c", 20, 30, kv("k", KvIn::Read), found("a1", 3)),
            Op::done("c", 40, 50, kv("k", KvIn::Read), found("b1", 8)),
            Op::done("c", 60, 70, kv("k", KvIn::Read), found("b1", 8)),
        ];
        check(&Kv, &h).unwrap();
    }

    #[test]
    fn an_unknown_write_may_never_have_happened() {
        let h = vec![
            Op::done("a", 0, 10, kv("k", w("a1")), KvOut::Written(Some(3))),
            Op::unknown("b", 5, kv("k", w("b1"))),
            Op::unknown("b", 6, kv("k", KvIn::Delete)),
            Op::done("c", 20, 30, kv("k", KvIn::Read), found("a1", 3)),
            Op::done("c", 1000, 1010, kv("k", KvIn::Read), found("a1", 3)),
        ];
        check(&Kv, &h).unwrap();
    }

    #[test]
    fn an_unknown_write_takes_effect_once_and_stays() {
        // Seen before it was invoked.
        let early =
            vec![Op::done("c", 0, 10, kv("k", KvIn::Read), found("b1", 8)), Op::unknown("b", 20, kv("k", w("b1")))];
        assert!(check(&Kv, &early).is_err());
        // Seen, then the value it replaced again: it cannot un-happen.
        let back = vec![
            Op::done("a", 0, 10, kv("k", w("a1")), KvOut::Written(Some(3))),
            Op::unknown("b", 5, kv("k", w("b1"))),
            Op::done("c", 20, 30, kv("k", KvIn::Read), found("b1", 8)),
            Op::done("c", 40, 50, kv("k", KvIn::Read), found("a1", 3)),
        ];
        let v = check(&Kv, &back).unwrap_err();
        assert!(v.dump.contains("read(k) -> a1 v3"), "{v}");
    }

    #[test]
    fn an_unknown_conditional_write_needed_to_explain_a_refusal_is_found() {
        // Nobody reads b1, but c's put_if_absent is refused, so b's write
        // (or a's) must have landed: the pruned first pass fails, the full
        // search explains it.
        let h = vec![
            Op::unknown("b", 0, kv("k", KvIn::PutAbsent("b1".into()))),
            Op::done("c", 20, 30, kv("k", KvIn::PutAbsent("c1".into())), KvOut::Exists(None)),
        ];
        check(&Kv, &h).unwrap();
    }

    #[test]
    fn two_overlapping_successful_acquires_fail() {
        let h = vec![
            Op::done("n1.a.c1", 0, 10, lk(LockIn::Acquire(holder("n1.a.c1"), 0)), LockOut::Acquired(Some(5))),
            Op::done("n2.a.c1", 20, 30, lk(LockIn::Acquire(holder("n2.a.c1"), 20)), LockOut::Acquired(Some(9))),
        ];
        let v = check(&Lock, &h).unwrap_err();
        assert_eq!(v.key, "L");
        assert!(v.dump.contains("acquire(L) -> ok token 9"), "{v}");
    }

    #[test]
    fn a_lock_passes_from_holder_to_holder() {
        let (a, b) = (holder("n1.a.c1"), holder("n2.a.c1"));
        let h = vec![
            Op::done("a", 0, 10, lk(LockIn::Acquire(a.clone(), 0)), LockOut::Acquired(Some(5))),
            Op::done("b", 5, 15, lk(LockIn::Acquire(b.clone(), 5)), LockOut::Held(Some(a.pid.clone()))),
            Op::done("b", 20, 30, lk(LockIn::Release("n2.a.c1".into())), LockOut::Released(false)),
            Op::done("a", 20, 40, lk(LockIn::Release("n1.a.c1".into())), LockOut::Released(true)),
            Op::done("b", 35, 50, lk(LockIn::Acquire(b.clone(), 35)), LockOut::Acquired(Some(11))),
            Op::done("a", 60, 70, lk(LockIn::Acquire(a.clone(), 60)), LockOut::Held(Some(b.pid.clone()))),
        ];
        check(&Lock, &h).unwrap();
        // The refusal names someone who did not hold it.
        let mut bad = h.clone();
        bad[5].output = Some(LockOut::Held(Some(a.pid)));
        assert!(check(&Lock, &bad).is_err());
    }

    #[test]
    fn a_token_that_goes_backwards_fails() {
        let (a, b) = (holder("n1.a.c1"), holder("n2.a.c1"));
        let h = vec![
            Op::done("a", 0, 10, lk(LockIn::Acquire(a.clone(), 0)), LockOut::Acquired(Some(9))),
            Op::done("a", 20, 30, lk(LockIn::Release(a.client.clone())), LockOut::Released(true)),
            Op::done("b", 40, 50, lk(LockIn::Acquire(b.clone(), 40)), LockOut::Acquired(Some(7))),
        ];
        assert!(check(&Lock, &h).is_err());
        let stamps = [
            Stamp { label: "a".into(), invoke: 0, complete: 10, value: 9 },
            Stamp { label: "b".into(), invoke: 40, complete: 50, value: 7 },
        ];
        let e = check_increasing("tokens of L", &stamps).unwrap_err();
        assert!(e.contains("went backwards"), "{e}");
        // Overlapping calls may come back in either order; a repeat may not.
        let overlapping = [
            Stamp { label: "a".into(), invoke: 0, complete: 50, value: 9 },
            Stamp { label: "b".into(), invoke: 10, complete: 20, value: 7 },
        ];
        check_increasing("tokens", &overlapping).unwrap();
        let twice = [
            Stamp { label: "a".into(), invoke: 0, complete: 5, value: 9 },
            Stamp { label: "b".into(), invoke: 10, complete: 20, value: 9 },
        ];
        assert!(check_increasing("tokens", &twice).unwrap_err().contains("twice"));
    }

    #[test]
    fn a_lock_is_lost_only_within_a_revocation_window() {
        let (a, b) = (holder("n1.a.c1"), holder("n2.a.c1"));
        let base = vec![
            Op::done("a", 0, 10, lk(LockIn::Acquire(a.clone(), 0)), LockOut::Acquired(Some(5))),
            Op::done("b", 100, 110, lk(LockIn::Acquire(b.clone(), 100)), LockOut::Acquired(Some(9))),
            Op::done("a", 120, 130, lk(LockIn::Release(a.client.clone())), LockOut::Released(false)),
        ];
        assert!(check(&Lock, &base).is_err(), "nothing took the lock from a");
        // a's node was stopped from 50 to 80.
        let mut stopped = base.clone();
        stopped.push(Op::unknown("fault", 50, lk(LockIn::Revoke(Who::Group("n1.a".into()), 80))));
        check(&Lock, &stopped).unwrap();
        // A fault on another node explains nothing.
        let mut elsewhere = base.clone();
        elsewhere.push(Op::unknown("fault", 50, lk(LockIn::Revoke(Who::Group("n3.a".into()), 80))));
        assert!(check(&Lock, &elsewhere).is_err());
        // A fault that ended before the holding began does not end it.
        let mut early = vec![Op::unknown("fault", 0, lk(LockIn::Revoke(Who::Client("n1.a.c1".into()), 0)))];
        early.extend(base);
        assert!(check(&Lock, &early).is_err());
    }

    #[test]
    fn a_lost_lock_refuses_everyone_until_given_back() {
        let (a, b) = (holder("n1.a.c1"), holder("n2.a.c1"));
        let lost = |t| Op::unknown("[lost]", t, lk(LockIn::Lose(a.client.clone(), 100)));
        let given_back = |t| Op::unknown("[lost]", t, lk(LockIn::Revoke(Who::Client(a.client.clone()), 100)));
        let h = vec![
            Op::done("a", 0, 10, lk(LockIn::Acquire(a.clone(), 0)), LockOut::Acquired(Some(5))),
            lost(50),
            given_back(50),
            // Told at 100; no longer the holder, but the record still names it.
            Op::done("a", 110, 120, lk(LockIn::Release(a.client.clone())), LockOut::Released(false)),
            Op::done("a", 130, 140, lk(LockIn::Acquire(a.clone(), 130)), LockOut::Held(Some(a.pid.clone()))),
            Op::done("b", 150, 160, lk(LockIn::Acquire(b.clone(), 150)), LockOut::Acquired(Some(9))),
        ];
        check(&Lock, &h).unwrap();
        // Without the notice, a release that says "not yours" while the
        // record is still its own is a violation.
        let unsaid: Vec<_> = h.iter().filter(|o| o.client != "[lost]").cloned().collect();
        assert!(check(&Lock, &unsaid).is_err());
    }

    #[test]
    fn an_acquire_of_unknown_outcome_may_hold_the_lock() {
        let (a, b) = (holder("n1.a.c1"), holder("n2.a.c1"));
        let h = vec![
            Op::unknown("a", 0, lk(LockIn::Acquire(a.clone(), 0))),
            Op::done("b", 20, 30, lk(LockIn::Acquire(b.clone(), 20)), LockOut::Held(Some(a.pid.clone()))),
            Op::done("b", 40, 50, lk(LockIn::Acquire(b.clone(), 40)), LockOut::Held(None)),
        ];
        check(&Lock, &h).unwrap();
        let free = vec![
            Op::unknown("a", 0, lk(LockIn::Acquire(a, 0))),
            Op::done("b", 20, 30, lk(LockIn::Acquire(b, 20)), LockOut::Acquired(Some(4))),
        ];
        check(&Lock, &free).unwrap();
    }

    #[test]
    fn a_lookup_of_a_name_never_registered_fails() {
        let (a, b) = (holder("n1.a.c1"), holder("n2.a.c1"));
        let h = vec![
            Op::done("a", 0, 10, nm(NameIn::Register(a.clone(), 0)), NameOut::Registered),
            Op::done("b", 20, 30, nm(NameIn::Register(b.clone(), 20)), NameOut::Exists(Some(a.pid.clone()))),
            Op::done("c", 40, 50, nm(NameIn::Lookup), NameOut::Found(Some(a.pid.clone()))),
            Op::done("a", 60, 70, nm(NameIn::Unregister(a.clone())), NameOut::Unregistered(true)),
            Op::done("b", 60, 70, nm(NameIn::Unregister(b.clone())), NameOut::Unregistered(false)),
            Op::done("c", 80, 90, nm(NameIn::Lookup), NameOut::Found(None)),
        ];
        check(&Name, &h).unwrap();
        let mut ghost = h.clone();
        ghost.push(Op::done("c", 100, 110, nm(NameIn::Lookup), NameOut::Found(Some("{n9@x|0x00009}".into()))));
        let v = check(&Name, &ghost).unwrap_err();
        assert!(v.dump.contains("lookup(N) -> {n9@x|0x00009}"), "{v}");
        // Strict lookups may not be stale; invoked at 0 (a replica read),
        // this one may.
        let mut stale = h.clone();
        stale.push(Op::done("c", 100, 110, nm(NameIn::Lookup), NameOut::Found(Some(a.pid.clone()))));
        assert!(check(&Name, &stale).is_err());
        stale.last_mut().unwrap().invoke = 0;
        check(&Name, &stale).unwrap();
    }

    #[test]
    fn a_restarted_nodes_process_with_a_reused_pid_does_not_hold_the_old_name() {
        let old = holder("n1.a.c1");
        // The same PID string in the node's next incarnation.
        let new = Holder { client: "n1.b.c1".into(), group: "n1.b".into(), pid: old.pid.clone() };
        let other = holder("n2.a.c1");
        let h = vec![
            Op::done("a", 0, 10, nm(NameIn::Register(old.clone(), 0)), NameOut::Registered),
            Op::done("b", 20, 30, nm(NameIn::Unregister(new.clone())), NameOut::Unregistered(false)),
            Op::done("c", 40, 50, nm(NameIn::Register(other.clone(), 40)), NameOut::Exists(Some(old.pid.clone()))),
        ];
        check(&Name, &h).unwrap();
        // The old incarnation's own process may not say so.
        let mut wrong = h.clone();
        wrong[1] = Op::done("a", 20, 30, nm(NameIn::Unregister(old.clone())), NameOut::Unregistered(false));
        assert!(check(&Name, &wrong).is_err());
    }

    /// A tiny deterministic generator, so the test needs no crate.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }
    }

    /// A history of `clients` concurrent clients on `keys` keys, produced
    /// by applying each operation at a random instant inside its interval,
    /// so it is linearizable by construction; about one write in `lost`
    /// (none if 0) has an unknown outcome (and took effect or not).
    fn random_kv(seed: u64, keys: usize, clients: usize, per_client: usize, lost: u64) -> Vec<Op<KvOp, KvOut>> {
        let mut rng = Rng(seed);
        let mut planned = Vec::new();
        for c in 0..clients {
            let mut t = rng.below(50);
            for i in 0..per_client {
                let invoke = t;
                let at = invoke + 1 + rng.below(40);
                let complete = at + 1 + rng.below(40);
                let key = format!("k{}", rng.below(keys as u64));
                let v = format!("c{c}#{i}");
                let f = match rng.below(6) {
                    0 | 1 => KvIn::Read,
                    2 => KvIn::Set(v),
                    3 => KvIn::Put(v),
                    4 => KvIn::PutAbsent(v),
                    _ => KvIn::Delete,
                };
                let lost = lost > 0 && !matches!(f, KvIn::Read) && rng.below(lost) == 0;
                let applied = !lost || rng.below(2) == 0;
                planned.push((at, c, invoke, complete, KvOp { key, f }, lost, applied));
                t = complete + 1 + rng.below(20);
            }
        }
        planned.sort_by_key(|p| (p.0, p.1));
        let mut state: BTreeMap<String, (String, u64)> = BTreeMap::new();
        let mut index = 0u64;
        let mut out = Vec::new();
        for (_, c, invoke, complete, op, lost, applied) in planned {
            let client = format!("c{c}");
            if !applied {
                out.push(Op::unknown(&client, invoke, op));
                continue;
            }
            let cur = state.get(&op.key).cloned();
            let result = match &op.f {
                KvIn::Read => cur.map_or(KvOut::Absent, |(v, n)| KvOut::Found(v, n)),
                KvIn::Set(v) | KvIn::Put(v) => {
                    index += 1;
                    state.insert(op.key.clone(), (v.clone(), index));
                    if matches!(op.f, KvIn::Set(_)) { KvOut::Written(None) } else { KvOut::Written(Some(index)) }
                }
                KvIn::PutAbsent(v) => {
                    if cur.is_some() {
                        KvOut::Exists(None)
                    } else {
                        index += 1;
                        state.insert(op.key.clone(), (v.clone(), index));
                        KvOut::Written(Some(index))
                    }
                }
                KvIn::PutVersion(..) => unreachable!(),
                KvIn::Delete => KvOut::Deleted(state.remove(&op.key).is_some()),
            };
            if lost {
                out.push(Op::unknown(&client, invoke, op));
            } else {
                out.push(Op::done(&client, invoke, complete, op, result));
            }
        }
        out
    }

    #[test]
    fn a_large_concurrent_history_with_unknown_outcomes_is_checked() {
        // 3 keys, 8 clients, 150 operations each: 400 per key, about one
        // write in twenty of unknown outcome.
        let h = random_kv(0x9e37_79b9_7f4a_7c15, 3, 8, 150, 20);
        let s = check(&Kv, &h).unwrap_or_else(|v| panic!("{v}"));
        assert_eq!(s.ops, 1200);
        assert!(s.unknown > 20, "{s:?}");
    }

    #[test]
    fn a_single_wrong_read_in_a_large_history_is_found() {
        let mut h = random_kv(0x2545_f491_4f6c_dd1d, 2, 6, 150, 0);
        check(&Kv, &h).unwrap_or_else(|v| panic!("{v}"));
        // Turn a late read into a read of a value overwritten long before.
        let last = h.iter().rposition(|o| matches!(o.output, Some(KvOut::Found(..)))).unwrap();
        let key = h[last].input.key.clone();
        let old = h
            .iter()
            .find_map(|o| match &o.output {
                Some(f @ KvOut::Found(..)) if o.input.key == key && h[last].output.as_ref() != Some(f) => {
                    Some(f.clone())
                }
                _ => None,
            })
            .unwrap();
        h[last].output = Some(old);
        let v = check(&Kv, &h).unwrap_err();
        assert_eq!(v.key, key);
        assert!(!v.gave_up, "{v}");
    }

    #[test]
    fn a_search_out_of_budget_fails_and_says_so() {
        let mut h = random_kv(0x9e37_79b9_7f4a_7c15, 1, 8, 60, 5);
        let last = h.iter().rposition(|o| matches!(o.output, Some(KvOut::Found(..)))).unwrap();
        h[last].output = Some(found("never-written", 1));
        let v = check_with(&Kv, &h, 50).unwrap_err();
        assert!(v.gave_up, "{v}");
        assert!(v.dump.contains("could not decide within 50 search steps"), "{v}");
    }

    #[test]
    fn a_wrong_read_among_unknown_outcomes_is_found() {
        // One key, 4 clients, a few writes of unknown outcome.
        let mut h = random_kv(0x5851_f42d_4c95_7f2d, 1, 4, 50, 30);
        check(&Kv, &h).unwrap_or_else(|v| panic!("{v}"));
        let last = h.iter().rposition(|o| matches!(o.output, Some(KvOut::Found(..)))).unwrap();
        h[last].output = Some(found("never-written", 1));
        let v = check(&Kv, &h).unwrap_err();
        assert!(!v.gave_up, "{v}");
        assert!(v.dump.lines().any(|l| l.starts_with("  >> ") && l.ends_with("-> never-written v1")), "{v}");
    }

    #[test]
    fn when_refuting_is_too_costly_the_culprit_is_still_located() {
        // 8 clients and about 50 unknown outcomes on one key: showing the
        // history before the bad read linearizable is cheap, refuting the
        // whole is not.
        let mut h = random_kv(0x9e37_79b9_7f4a_7c15, 1, 8, 100, 10);
        check(&Kv, &h).unwrap_or_else(|v| panic!("{v}"));
        let last = h.iter().rposition(|o| matches!(o.output, Some(KvOut::Found(..)))).unwrap();
        h[last].output = Some(found("never-written", 1));
        let v = check_with(&Kv, &h, 400_000).unwrap_err();
        assert!(v.gave_up, "{v}");
        assert!(v.dump.lines().any(|l| l.starts_with("  >> ") && l.ends_with("-> never-written v1")), "{v}");
    }

    #[test]
    fn hundreds_of_stale_lookups_are_checked() {
        let mut rng = Rng(7);
        let mut h = Vec::new();
        let mut t = 0;
        for i in 0..200u64 {
            let who = holder(&format!("n{}.a.c{}", i % 3, i % 5));
            h.push(Op::done(&who.client, t, t + 5, nm(NameIn::Register(who.clone(), t)), NameOut::Registered));
            // Replica reads: invoked "at 0", so any earlier state fits.
            for _ in 0..3 {
                let seen = if rng.below(2) == 0 { Some(who.pid.clone()) } else { None };
                h.push(Op::done("r", 0, t + 10 + rng.below(30), nm(NameIn::Lookup), NameOut::Found(seen)));
            }
            h.push(Op::done(
                &who.client,
                t + 10,
                t + 15,
                nm(NameIn::Unregister(who.clone())),
                NameOut::Unregistered(true),
            ));
            t += 20;
        }
        let s = check(&Name, &h).unwrap_or_else(|v| panic!("{v}"));
        assert_eq!(s.ops, 1000);
    }
}
