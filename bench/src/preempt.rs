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
//! Trials alternate between the two so that drift hits both equally.
//!
//! Preemptions are made visible with two spinning processes on one worker:
//! each notes every gap of over 1 ms between two of its 100k-iteration
//! chunks, which is the other one running. About one per time slice (5 ms)
//! is expected.

use std::time::Instant;

use anyhow::{Result, bail};
use mlua::{Function, Lua};
use wippy_runtime::Value;

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
        full: 200_000_000,
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
        full: 32,
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
        full: 20_000_000,
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
    let trials = mode.pick(5, 1);
    let sources: Vec<(String, String)> =
        WORKLOADS.iter().map(|w| (format!("bench:{}", w.name), process_source(w))).collect();
    let mut defs: Vec<(&str, &str)> = sources.iter().map(|(id, s)| (id.as_str(), s.as_str())).collect();
    defs.push(("bench:spinner", SPINNER));
    let node = harness::start(1, &defs)?;
    let plain = Lua::new();
    plain.set_memory_limit(harness::options(1).memory_limit)?;
    let epoch = Instant::now();
    let now = plain.create_function(move |_, ()| Ok(epoch.elapsed().as_secs_f64() * 1000.0))?;

    let mut out = Vec::new();
    for w in WORKLOADS {
        let n = mode.pick(w.full, w.quick);
        let f: Function = plain.load(format!("return {}", w.body)).set_name(w.name).eval()?;
        let (mut in_proc, mut in_plain) = (Vec::new(), Vec::new());
        for t in 0..trials {
            // Alternate which side goes first.
            for side in if t % 2 == 0 { [0, 1] } else { [1, 0] } {
                if side == 0 {
                    let r = harness::run(&node, &format!("bench:{}", w.name), vec![Value::Int(n)])?;
                    in_proc.push((harness::num(&r, "ms")?, harness::num(&r, "x")?));
                } else {
                    let (ms, x): (f64, f64) = f.call((n, now.clone()))?;
                    in_plain.push((ms, x));
                }
            }
        }
        if in_proc.iter().chain(&in_plain).any(|(_, x)| *x != in_plain[0].1) {
            bail!("{}: checksums differ between the process and plain Lua", w.name);
        }
        let p = harness::median(in_proc.iter().map(|t| t.0).collect());
        let q = harness::median(in_plain.iter().map(|t| t.0).collect());
        let list = |v: &[(f64, f64)]| harness::trials(&v.iter().map(|t| t.0).collect::<Vec<_>>());
        out.push(Figure::new(
            format!("preempt_{}_overhead_pct", w.name),
            (p / q - 1.0) * 100.0,
            "%",
            format!(
                "n={n}; in a process {p:.1} ms, plain mlua Lua 5.4 {q:.1} ms (medians of {trials}; process: {}; plain: {})",
                list(&in_proc),
                list(&in_plain)
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
    let slice = harness::options(1).time_slice;
    out.push(Figure::new(
        "preempt_switches_per_s",
        gaps / (ms / 1000.0),
        "1/s",
        format!(
            "two spinners sharing one worker for {ms:.0} ms: {gaps} switches seen (time slice {slice:?}: ~{:.0}/s expected)",
            1.0 / slice.as_secs_f64()
        ),
    ));
    node.shutdown();
    Ok(out)
}
