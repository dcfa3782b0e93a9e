//! `pingpong`: round trips between two Lua processes, on one worker and
//! across two workers.
//!
//! Both processes are spawned from outside with `node.spawn`, which places
//! each on the least-loaded worker: on two workers the pong lands on worker
//! 0 and the ping on worker 1. Placement is checked from the PIDs (the
//! runtime routes by `counter % workers`), so a cross-worker figure can never
//! silently be a same-worker one.
//!
//! The mean comes from one pair of timestamps around the whole loop. The
//! p50/p99 come from a second loop that times each round trip on its own;
//! those include two `time.monotonic()` calls (a Rust call each), so they sit
//! slightly above the mean.

use anyhow::{Result, bail};
use wippy_runtime::Value;

use crate::harness::{self, Figure, Mode};

const PONG: &str = r#"
local inbox = process.inbox()
local send = process.send
while true do
  local m = inbox:receive()
  if m:topic() == "stop" then return true end
  send(m:from(), "pong", m:payload():data())
end
"#;

const PING: &str = r#"
local pong, n, samples = ...
local inbox = process.inbox()
local send = process.send
local now = require("time").monotonic
local function trip(i)
  send(pong, "ping", i)
  local m = inbox:receive()
  if m:payload():data() ~= i then error("reply out of order: " .. tostring(m:payload():data()) .. " for " .. i) end
end
for i = 1, 1000 do trip(i) end
local t0 = now()
for i = 1, n do trip(i) end
local ms = now() - t0
local s = {}
for i = 1, samples do
  local a = now()
  trip(i)
  s[i] = (now() - a) * 1000
end
send(pong, "stop", true)
return { trips = n, ms = ms, samples = s }
"#;

/// Runs the same-worker and the cross-worker case.
pub(crate) fn run(mode: Mode) -> Result<Vec<Figure>> {
    let trials = mode.pick(5, 1);
    let mut out = Vec::new();
    // Cross-worker trips wait for a thread wake-up (tens of µs), so they get
    // fewer iterations for a similar run time.
    for (case, workers, n, samples) in [
        ("same_worker", 1usize, mode.pick(1_000_000, 2_000), mode.pick(200_000, 1_000)),
        ("cross_worker", 2, mode.pick(50_000, 500), mode.pick(20_000, 200)),
    ] {
        let node = harness::start(workers, &[("bench:pong", PONG), ("bench:ping", PING)])?;
        let mut means = Vec::new();
        let mut all = Vec::new();
        for _ in 0..trials {
            harness::settle(&node, 0)?;
            let pong = harness::spawn(&node, "bench:pong", Vec::new())?;
            harness::settle(&node, 1)?;
            let ping = harness::spawn_watched(
                &node,
                "bench:ping",
                vec![Value::str(pong.clone()), Value::Int(n), Value::Int(samples)],
            )?;
            let (wp, wq) = (harness::worker_of(&pong, workers)?, harness::worker_of(&ping.pid, workers)?);
            let want_same = case == "same_worker";
            if (wp == wq) != want_same {
                bail!("{case}: ping {} on worker {wq}, pong {pong} on worker {wp}", ping.pid);
            }
            let r = ping.wait()?;
            means.push(harness::num(&r, "ms")? * 1000.0 / harness::num(&r, "trips")?);
            all.extend(harness::nums(&r, "samples")?);
        }
        node.shutdown();
        let p50 = harness::quantile(&mut all, 0.50);
        let p99 = harness::quantile(&mut all, 0.99);
        out.push(Figure::new(
            format!("pingpong_{case}_rtt_us"),
            harness::median(means.clone()),
            "us",
            format!("workers={workers}, {n} round trips, median of {trials}: {}", harness::trials(&means)),
        ));
        let note = format!("{} individually timed round trips", all.len());
        out.push(Figure::new(format!("pingpong_{case}_rtt_p50_us"), p50, "us", note.clone()));
        out.push(Figure::new(format!("pingpong_{case}_rtt_p99_us"), p99, "us", note));
    }
    Ok(out)
}
