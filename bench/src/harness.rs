//! What every benchmark shares: starting a node, running a Lua driver
//! process to completion, reading its result table, and reporting figures.
//!
//! The timing is done inside Lua with `time.monotonic()` so that a figure
//! covers only what the processes do, never the Rust thread waiting on the
//! result channel.

use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use crossbeam_channel::Receiver;
use wippy_runtime::{App, Definition, ExitResult, Node, NodeOptions, Pid, Value};

/// The `process.host` every benchmark definition runs on. The Lua sources
/// that spawn children write it literally (`"bench:host"`).
pub(crate) const HOST: &str = "bench:host";

/// How long a driver may run before the benchmark is declared hung.
/// Generous on purpose: a 2-vCPU VM can be slow, but never this slow.
const DRIVER_TIMEOUT: Duration = Duration::from_secs(120);

/// Size of the run: `--quick` is a smoke test that proves a benchmark still
/// works, not a measurement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Full sizes, for RESULTS.md.
    Full,
    /// Tiny sizes, for CI.
    Quick,
}

impl Mode {
    /// Picks the full or the quick size.
    pub(crate) fn pick<T>(self, full: T, quick: T) -> T {
        match self {
            Mode::Full => full,
            Mode::Quick => quick,
        }
    }
}

/// One reported number.
#[derive(Debug, Clone)]
pub(crate) struct Figure {
    /// Stable name, `bench_case`, e.g. `pingpong_same_worker_rtt_us`.
    pub(crate) name: String,
    /// The value.
    pub(crate) value: f64,
    /// Unit: `us`, `ns`, `bytes`, `msgs/s`, `%`, ...
    pub(crate) unit: &'static str,
    /// How it was obtained, in a few words.
    pub(crate) note: String,
}

impl Figure {
    /// Builds a figure.
    pub(crate) fn new(name: impl Into<String>, value: f64, unit: &'static str, note: impl Into<String>) -> Figure {
        Figure { name: name.into(), value, unit, note: note.into() }
    }

    /// The line format shared with the anchor scripts (`ANCHOR name value unit`),
    /// so both can be grepped side by side.
    pub(crate) fn line(&self) -> String {
        let v = if self.value.abs() >= 1000.0 { format!("{:.0}", self.value) } else { format!("{:.3}", self.value) };
        if self.note.is_empty() {
            format!("BENCH {} {} {}", self.name, v, self.unit)
        } else {
            format!("BENCH {} {} {}  # {}", self.name, v, self.unit, self.note)
        }
    }
}

/// The time slice of every node but the `preempt` benchmark's (see
/// [`set_slice`]); unset means the runtime's default.
static SLICE: Mutex<Option<Duration>> = Mutex::new(None);

/// Sets the time slice of every node but the `preempt` benchmark's
/// (`--slice-ms`). A long slice takes preemption out of the spawn and
/// messaging figures, e.g. to tell whether a failure comes from it: before
/// 3ce4ecd a preemption inside kernel code lost messages and misfiled
/// spawned children (`bench/repro/`).
pub(crate) fn set_slice(d: Duration) {
    *SLICE.lock().unwrap_or_else(|e| e.into_inner()) = Some(d);
}

/// The slice [`options`] uses.
pub(crate) fn slice() -> Duration {
    SLICE.lock().unwrap_or_else(|e| e.into_inner()).unwrap_or_else(|| NodeOptions::default().time_slice)
}

/// Node options for a benchmark: `workers` threads and a heap limit high
/// enough that the limit is never what a benchmark measures.
pub(crate) fn options(workers: usize) -> NodeOptions {
    NodeOptions {
        node_id: "bench".into(),
        workers,
        memory_limit: 8 << 30,
        time_slice: slice(),
        ..NodeOptions::default()
    }
}

/// Starts a node running `defs` (each `(id, lua source)`; the chunk is the
/// process body and receives the spawn arguments as `...`).
pub(crate) fn start(workers: usize, defs: &[(&str, &str)]) -> Result<Node> {
    start_with(options(workers), defs)
}

/// [`start`] with explicit options.
pub(crate) fn start_with(opts: NodeOptions, defs: &[(&str, &str)]) -> Result<Node> {
    let defs = defs.iter().map(|(id, src)| Definition::new(id, src, "")).collect();
    Node::start(opts, App::with_host(HOST, defs)).context("starting the node")
}

/// Spawns `id` from outside and returns its PID.
pub(crate) fn spawn(node: &Node, id: &str, args: Vec<Value>) -> Result<String> {
    node.spawn(id, HOST, args).map_err(|e| anyhow!("spawning {id}: {e}"))
}

/// Waits until the node runs exactly `live` processes.
///
/// `node.spawn` places a process on the worker with the fewest live
/// processes, but a worker counts a process only once it has taken the spawn
/// order from its inbox; two spawns in a row would both see the same counts
/// and land on the same worker. Waiting in between makes placement
/// deterministic, and waiting at the end of a trial keeps a process that is
/// still exiting from skewing the next trial's placement.
pub(crate) fn settle(node: &Node, live: usize) -> Result<()> {
    let t = std::time::Instant::now();
    while node.live() != live {
        if t.elapsed() > Duration::from_secs(30) {
            bail!("node still runs {} processes after 30 s, {live} expected", node.live());
        }
        std::thread::sleep(Duration::from_micros(50));
    }
    Ok(())
}

/// Spawns `id` from outside and waits for its result (a process that fails
/// or does not finish in time is an error: the benchmark cannot be trusted).
pub(crate) fn run(node: &Node, id: &str, args: Vec<Value>) -> Result<Value> {
    let (pid, rx) = node.spawn_watched(id, HOST, args).map_err(|e| anyhow!("spawning {id}: {e}"))?;
    wait(&pid, &rx)
}

/// A process spawned from outside whose result is awaited later.
pub(crate) struct Watched {
    /// Its PID.
    pub(crate) pid: String,
    rx: Receiver<ExitResult>,
}

impl Watched {
    /// Waits for the result.
    pub(crate) fn wait(self) -> Result<Value> {
        wait(&self.pid, &self.rx)
    }
}

/// Spawns `id` from outside; the caller collects its result later.
pub(crate) fn spawn_watched(node: &Node, id: &str, args: Vec<Value>) -> Result<Watched> {
    let (pid, rx) = node.spawn_watched(id, HOST, args).map_err(|e| anyhow!("spawning {id}: {e}"))?;
    Ok(Watched { pid, rx })
}

fn wait(pid: &str, rx: &Receiver<ExitResult>) -> Result<Value> {
    match rx.recv_timeout(DRIVER_TIMEOUT) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => bail!("process {pid} failed: {e}"),
        Err(e) => bail!("process {pid} gave no result within {DRIVER_TIMEOUT:?} ({e}): hung?"),
    }
}

/// The worker a PID lives on: the runtime routes by `counter % workers`.
pub(crate) fn worker_of(pid: &str, workers: usize) -> Result<usize> {
    let p = Pid::parse(pid).map_err(|e| anyhow!("bad pid {pid}: {e}"))?;
    Ok((p.counter % workers as u64) as usize)
}

/// A numeric field of a result table (Lua integers and floats both count).
pub(crate) fn num(v: &Value, key: &str) -> Result<f64> {
    let Value::Map(pairs) = v else { bail!("expected a result table, got {v:?}") };
    for (k, x) in pairs {
        if k.as_str() == Some(key) {
            return match x {
                Value::Int(i) => Ok(*i as f64),
                Value::Float(f) => Ok(*f),
                other => bail!("field {key} is not a number: {other:?}"),
            };
        }
    }
    bail!("result table has no field {key}: {v:?}")
}

/// An array field of numbers (samples).
pub(crate) fn nums(v: &Value, key: &str) -> Result<Vec<f64>> {
    let Value::Map(pairs) = v else { bail!("expected a result table, got {v:?}") };
    let Some((_, Value::Array(items))) = pairs.iter().find(|(k, _)| k.as_str() == Some(key)) else {
        bail!("result table has no array field {key}")
    };
    items
        .iter()
        .map(|x| match x {
            Value::Int(i) => Ok(*i as f64),
            Value::Float(f) => Ok(*f),
            other => Err(anyhow!("sample is not a number: {other:?}")),
        })
        .collect()
}

/// The `q`-quantile (0..=1) of `xs` by nearest rank; sorts in place.
pub(crate) fn quantile(xs: &mut [f64], q: f64) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    xs.sort_by(f64::total_cmp);
    let i = ((xs.len() as f64 * q).ceil() as usize).clamp(1, xs.len()) - 1;
    xs[i]
}

/// The median of a few trials: robust to one trial hit by noise.
pub(crate) fn median(mut xs: Vec<f64>) -> f64 {
    quantile(&mut xs, 0.5)
}

/// Resident set size of this process in bytes, from `/proc/self/status`.
pub(crate) fn rss_bytes() -> Result<u64> {
    let s = std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:")).ok_or_else(|| anyhow!("no VmRSS line"))?;
    let kb: u64 = line.split_whitespace().nth(1).ok_or_else(|| anyhow!("bad VmRSS line"))?.parse()?;
    Ok(kb * 1024)
}

/// Formats trial values for a detail note.
pub(crate) fn trials(xs: &[f64]) -> String {
    xs.iter().map(|x| format!("{x:.3}")).collect::<Vec<_>>().join(" ")
}
