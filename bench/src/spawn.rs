//! `spawn`: the cost of a Lua process that is spawned and exits at once.
//!
//! A driver process spawns children in batches and, for each batch, waits
//! until every child is gone before it spawns the next, so a figure covers
//! spawn, first resume, exit and clean-up, never a backlog left behind.
//! Two ways to know the children are gone:
//! - `bare`: plain `process.spawn`; the last child of a batch sends one
//!   message to the driver. On one worker the run queue is FIFO, so when that
//!   message arrives every earlier child has run to its end. This is the
//!   counterpart of BEAM's spawn-and-exit anchor.
//! - `monitored`: `process.spawn_monitored`, and the driver counts one
//!   `pid.exit` event per child. Exact on any number of workers; the
//!   counterpart of BEAM's `spawn_monitor` + `'DOWN'` detail line.
//!
//! With two workers the runtime may place a child on the other worker (it
//! rebalances one spawn in 64); `bare` then also waits, from Rust, until the
//! node has no process left, and reports that extra drain time.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use wippy_runtime::Value;

use crate::harness::{self, Figure, Mode};

const NOP: &str = "return nil";

const NOTIFY: &str = r#"
local parent = ...
process.send(parent, "batch", true)
"#;

const BARE: &str = r#"
local total, batch = ...
local spawn, min = process.spawn, math.min
local inbox = process.inbox()
local me = process.pid()
local now = require("time").monotonic
local done = 0
local t0 = now()
while done < total do
  local b = min(batch, total - done)
  for _ = 1, b - 1 do
    local pid, err = spawn("bench:nop", "bench:host")
    if not pid then error("spawn failed: " .. tostring(err)) end
  end
  local pid, err = spawn("bench:notify", "bench:host", me)
  if not pid then error("spawn failed: " .. tostring(err)) end
  inbox:receive()
  done = done + b
end
return { spawns = done, ms = now() - t0 }
"#;

const MONITORED: &str = r#"
local total, batch = ...
local spawn, min = process.spawn_monitored, math.min
local events = process.events()
local now = require("time").monotonic
local done = 0
local t0 = now()
while done < total do
  local b = min(batch, total - done)
  for _ = 1, b do
    local pid, err = spawn("bench:nop", "bench:host")
    if not pid then error("spawn failed: " .. tostring(err)) end
  end
  for _ = 1, b do
    local ev = events:receive()
    if ev.kind ~= "pid.exit" or ev.result.error ~= nil then
      error("unexpected event " .. tostring(ev.kind) .. " " .. tostring(ev.result and ev.result.error))
    end
  end
  done = done + b
end
return { spawns = done, ms = now() - t0 }
"#;

/// Children per batch: large enough that the driver's own wake-up is
/// amortised, small enough that a batch's coroutines stay in cache.
const BATCH: i64 = 1000;

/// Runs the benchmark with one and with two workers.
pub(crate) fn run(mode: Mode) -> Result<Vec<Figure>> {
    let total: i64 = mode.pick(500_000, 2_000);
    let trials = mode.pick(5, 1);
    let mut out = Vec::new();
    for workers in [1, 2] {
        let node = harness::start(
            workers,
            &[("bench:nop", NOP), ("bench:notify", NOTIFY), ("bench:bare", BARE), ("bench:monitored", MONITORED)],
        )?;
        for (case, driver) in [("bare", "bench:bare"), ("monitored", "bench:monitored")] {
            // Warm-up: compiles the definitions on the worker and grows its tables.
            measure(&node, driver, BATCH * 10)?;
            let mut us = Vec::new();
            let mut drain = Duration::ZERO;
            for _ in 0..trials {
                let (per, d) = measure(&node, driver, total)?;
                us.push(per);
                drain = drain.max(d);
            }
            let mut note =
                format!("{total} spawns in batches of {BATCH}, median of {trials}: {}", harness::trials(&us));
            if workers > 1 && case == "bare" {
                note.push_str(&format!("; longest drain after the driver ended {:.1} ms", drain.as_secs_f64() * 1e3));
            }
            out.push(Figure::new(format!("spawn_{case}_w{workers}_us"), harness::median(us), "us", note));
        }
        node.shutdown();
    }
    Ok(out)
}

/// One trial: µs per spawn+exit, and how long the node took after the
/// driver's end to have no process left (children on another worker).
fn measure(node: &wippy_runtime::Node, driver: &str, total: i64) -> Result<(f64, Duration)> {
    let r = harness::run(node, driver, vec![Value::Int(total), Value::Int(BATCH)])?;
    let spawns = harness::num(&r, "spawns")?;
    if spawns as i64 != total {
        bail!("{driver}: {spawns} spawns reported, {total} asked");
    }
    let t = Instant::now();
    while node.live() > 0 {
        if t.elapsed() > Duration::from_secs(30) {
            bail!("{driver}: {} processes still alive 30 s after the driver ended", node.live());
        }
        std::thread::sleep(Duration::from_micros(100));
    }
    Ok((harness::num(&r, "ms")? * 1000.0 / spawns, t.elapsed()))
}
