//! `throughput`: one-way messages from one Lua sender to one counting Lua
//! sink, on one worker and across two.
//!
//! The sender loops `process.send` without waiting for anything; the sink
//! counts until it has every message and checks that each carries the next
//! sequence number, so a lost or reordered message fails the run. The rate
//! is messages ÷ (sink's last receive − sender's first send); both read the
//! node-wide `time.monotonic()`, so the two ends are comparable across
//! workers. Placement is as in `pingpong` (least-loaded worker, checked).

use anyhow::{Result, bail};
use wippy_runtime::Value;

use crate::harness::{self, Figure, Mode};

const SINK: &str = r#"
local n = ...
local inbox = process.inbox()
local now = require("time").monotonic
for k = 1, n do
  local m = inbox:receive()
  if m:payload():data() ~= k then error("message " .. tostring(m:payload():data()) .. " arrived as number " .. k) end
end
return { count = n, t_end = now() }
"#;

const SENDER: &str = r#"
local sink, n = ...
local send = process.send
local now = require("time").monotonic
local t0 = now()
for i = 1, n do send(sink, "m", i) end
return { t0 = t0, t_sent = now() }
"#;

/// Runs the same-worker and the cross-worker case.
pub(crate) fn run(mode: Mode) -> Result<Vec<Figure>> {
    let trials = mode.pick(5, 1);
    let mut out = Vec::new();
    for (case, workers, n) in
        [("same_worker", 1usize, mode.pick(5_000_000, 20_000)), ("cross_worker", 2, mode.pick(2_000_000, 20_000))]
    {
        let node = harness::start(workers, &[("bench:sink", SINK), ("bench:sender", SENDER)])?;
        // Warm-up: compiles both definitions on every worker involved.
        one(&node, workers, case, 10_000)?;
        let mut rates = Vec::new();
        let mut send_rates = Vec::new();
        for _ in 0..trials {
            let (rate, send_rate) = one(&node, workers, case, n)?;
            rates.push(rate / 1e6);
            send_rates.push(send_rate / 1e6);
        }
        node.shutdown();
        out.push(Figure::new(
            format!("oneway_{case}_msgs_per_s"),
            harness::median(rates.clone()) * 1e6,
            "msgs/s",
            format!("workers={workers}, {n} messages, median of {trials} (M/s): {}", harness::trials(&rates)),
        ));
        out.push(Figure::new(
            format!("oneway_{case}_send_loop_msgs_per_s"),
            harness::median(send_rates.clone()) * 1e6,
            "msgs/s",
            format!("the sender's loop alone, until its last send returned (M/s): {}", harness::trials(&send_rates)),
        ));
    }
    Ok(out)
}

/// One trial: (end-to-end rate, rate of the sender's loop alone).
fn one(node: &wippy_runtime::Node, workers: usize, case: &str, n: i64) -> Result<(f64, f64)> {
    harness::settle(node, 0)?;
    let sink = harness::spawn_watched(node, "bench:sink", vec![Value::Int(n)])?;
    harness::settle(node, 1)?;
    let sender = harness::spawn_watched(node, "bench:sender", vec![Value::str(sink.pid.clone()), Value::Int(n)])?;
    let same = harness::worker_of(&sink.pid, workers)? == harness::worker_of(&sender.pid, workers)?;
    if same != (case == "same_worker") {
        bail!("{case}: sink {} and sender {} placed wrongly", sink.pid, sender.pid);
    }
    let s = sender.wait()?;
    let k = sink.wait()?;
    let t0 = harness::num(&s, "t0")?;
    let rate = n as f64 / ((harness::num(&k, "t_end")? - t0) / 1000.0);
    let send_rate = n as f64 / ((harness::num(&s, "t_sent")? - t0) / 1000.0);
    Ok((rate, send_rate))
}
