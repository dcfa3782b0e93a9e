//! `preempt`: what running inside a process costs pure Lua code, against
//! the same function in a plain Lua 5.4 state (mlua, no runtime).
//!
//! The runtime preempts with a one-shot count hook that the watchdog sets
//! only once a process has run past its time slice, so compute-bound code
//! should run at plain-Lua speed. Three workloads cover the interpreter's
//! main paths: an arithmetic loop, recursive calls, and table allocation
//! (which goes through the allocator and its memory-limit check). The very
//! same function text is compiled in both states and times itself with a
//! monotonic clock; the plain state gets the same memory limit as a worker.
//! Trials rotate between the places so that drift hits all equally.
//!
//! Each figure compares the fastest trial of each place. On this VM a trial
//! of the very same code lands in one of two speeds about 30 % apart,
//! wherever it runs (vCPU placement and host activity), and interference only
//! ever slows a run down; the minimum is the stable estimate of the code's
//! own cost. Medians are in the note.
//!
//! The plain state runs the function twice: on its main thread, and inside a
//! coroutine. A process is a coroutine, and Lua 5.4 itself runs call-heavy
//! code measurably slower in a coroutine than on the main thread (the same
//! holds in the `lua5.4` CLI), so the coroutine figure is the one that
//! isolates what the runtime adds.
//!
//! Preemptions are made visible with two spinning processes on one worker:
//! each notes every gap of over 1 ms between two of its 100k-iteration
//! chunks, which is the other one running. The watchdog preempts a resume
//! it finds unchanged at two consecutive checks one slice apart, so a
//! spinner runs one to two slices: 100-200 switches per second at 5 ms.

use std::time::Instant;

use anyhow::{Result, bail};
use mlua::{Function, Lua};
use wippy_runtime::{NodeOptions, Value};

use crate::harness::{self, Figure, Mode};

/// A workload: a Lua function `(n, now) -> elapsed_ms, checksum`.
struct Workload {
    name: &'static str,
    body: &'static str,
    full: i64,
    quick: i64,
}

const WORKLOADS: &[Workload] = &[
    Workload {
        name: "loop",
        body: "function(n, now)
  local t0 = now()
  local x = 0
  for i = 1, n do x = x + i end
  return now() - t0, x
end",
        full: 50_000_000,
        quick: 1_000_000,
    },
    Workload {
        name: "fib",
        body: "function(n, now)
  local function fib(k) if k < 2 then return k end return fib(k - 1) + fib(k - 2) end
  local t0 = now()
  local x = fib(n)
  return now() - t0, x
end",
        full: 30,
        quick: 18,
    },
    Workload {
        name: "alloc",
        body: "function(n, now)
  local t0 = now()
  local x = 0
  for i = 1, n do local t = { i, i + 1 } x = x + #t end
  return now() - t0, x
end",
        full: 5_000_000,
        quick: 100_000,
    },
];

const SPINNER: &str = r#"
local chunks, size = ...
local now = require("time").monotonic
local gaps, x = 0, 0
local t0 = now()
local last = t0
for _ = 1, chunks do
  for i = 1, size do x = x + i end
  local t = now()
  if t - last > 1 then gaps = gaps + 1 end
  last = t
end
return { gaps = gaps, ms = now() - t0, x = x }
"#;

/// The process form of a workload: the chunk calls the function once.
fn process_source(w: &Workload) -> String {
    format!(
        "local n = ...\nlocal f = {}\nlocal ms, x = f(n, require(\"time\").monotonic)\nreturn {{ ms = ms, x = x }}\n",
        w.body
    )
}

/// Runs every workload in both places, then the preemption count.
pub(crate) fn run(mode: Mode) -> Result<Vec<Figure>> {
    // Single trials of the same code move by ±20 % on this VM whatever runs
    // them, so many short trials and their median, not a few long ones.
    let trials = mode.pick(15, 1);
    let sources: Vec<(String, String)> =
        WORKLOADS.iter().map(|w| (format!("bench:{}", w.name), process_source(w))).collect();
    let mut defs: Vec<(&str, &str)> = sources.iter().map(|(id, s)| (id.as_str(), s.as_str())).collect();
    defs.push(("bench:spinner", SPINNER));
    // Always the runtime's own slice: preemption is what is measured here.
    let opts = NodeOptions { time_slice: NodeOptions::default().time_slice, ..harness::options(1) };
    let slice = opts.time_slice;
    let node = harness::start_with(opts, &defs)?;
    let plain = Lua::new();
    plain.set_memory_limit(harness::options(1).memory_limit)?;
    let epoch = Instant::now();
    let now = plain.create_function(move |_, ()| Ok(epoch.elapsed().as_secs_f64() * 1000.0))?;

    let mut out = Vec::new();
    for w in WORKLOADS {
        let n = mode.pick(w.full, w.quick);
        let f: Function = plain.load(format!("return {}", w.body)).set_name(w.name).eval()?;
        let (mut in_proc, mut in_plain, mut in_co) = (Vec::new(), Vec::new(), Vec::new());
        for t in 0..trials {
            // Rotate which place goes first.
            for k in 0..3 {
                match (t + k) % 3 {
                    0 => {
                        let r = harness::run(&node, &format!("bench:{}", w.name), vec![Value::Int(n)])?;
                        in_proc.push((harness::num(&r, "ms")?, harness::num(&r, "x")?));
                    }
                    1 => in_plain.push(f.call::<(f64, f64)>((n, now.clone()))?),
                    _ => in_co.push(plain.create_thread(f.clone())?.resume::<(f64, f64)>((n, now.clone()))?),
                }
            }
        }
        let reference = in_plain[0].1;
        if in_proc.iter().chain(&in_plain).chain(&in_co).any(|(_, x)| *x != reference) {
            bail!("{}: checksums differ between the process and plain Lua", w.name);
        }
        let med = |v: &[(f64, f64)]| harness::median(v.iter().map(|t| t.0).collect());
        let min = |v: &[(f64, f64)]| v.iter().map(|t| t.0).fold(f64::INFINITY, f64::min);
        let list = |v: &[(f64, f64)]| harness::trials(&v.iter().map(|t| t.0).collect::<Vec<_>>());
        let (p, q, c) = (min(&in_proc), min(&in_plain), min(&in_co));
        out.push(Figure::new(
            format!("preempt_{}_overhead_pct", w.name),
            (p / q - 1.0) * 100.0,
            "%",
            format!(
                "fastest of {trials} vs plain main thread; n={n}; process {p:.1} ms, plain {q:.1} ms; \
                 medians {:.1} / {:.1} ms (process: {}; plain: {})",
                med(&in_proc),
                med(&in_plain),
                list(&in_proc),
                list(&in_plain)
            ),
        ));
        out.push(Figure::new(
            format!("preempt_{}_vs_coroutine_pct", w.name),
            (p / c - 1.0) * 100.0,
            "%",
            format!(
                "fastest vs a coroutine of the plain state: {c:.1} ms; median {:.1} ms (trials: {})",
                med(&in_co),
                list(&in_co)
            ),
        ));
    }

    let (chunks, size) = (mode.pick(5_000, 100), 100_000);
    harness::settle(&node, 0)?;
    let a = harness::spawn_watched(&node, "bench:spinner", vec![Value::Int(chunks), Value::Int(size)])?;
    let b = harness::spawn_watched(&node, "bench:spinner", vec![Value::Int(chunks), Value::Int(size)])?;
    let (ra, rb) = (a.wait()?, b.wait()?);
    let gaps = harness::num(&ra, "gaps")? + harness::num(&rb, "gaps")?;
    let ms = harness::num(&ra, "ms")?.max(harness::num(&rb, "ms")?);
    out.push(Figure::new(
        "preempt_switches_per_s",
        gaps / (ms / 1000.0),
        "1/s",
        format!(
            "two spinners sharing one worker for {ms:.0} ms: {gaps} switches seen \
             (time slice {slice:?}: {:.0}-{:.0}/s expected)",
            0.5 / slice.as_secs_f64(),
            1.0 / slice.as_secs_f64()
        ),
    ));
    node.shutdown();
    Ok(out)
}
