//! `throughput`: one-way messages from one Lua sender to one counting Lua
//! sink, on one worker and across two.
//!
//! The sink counts until it has every message and checks that each carries
//! the next sequence number, so a lost or reordered message fails the run.
//! The rate is messages ÷ (sink's last receive − sender's first send); both
//! read the node-wide `time.monotonic()`, so the two ends are comparable
//! across workers. Placement is as in `pingpong` (least-loaded worker,
//! checked).
//!
//! Flow control: the sink acks every [`WINDOW`] messages and the sender stays
//! at most two windows ahead. Without it, a sender that is never preempted
//! (see `--slice-ms`) would queue all N messages before the sink runs once,
//! which measures a memory burst, not a stream. One ack per window costs
//! 0.1 % of the messages.

use anyhow::{Result, bail};
use wippy_runtime::Value;

use crate::harness::{self, Figure, Mode};

/// Messages per ack.
const WINDOW: i64 = 1000;

const SINK: &str = r#"
local n, window = ...
local inbox = process.inbox()
local send = process.send
local now = require("time").monotonic
local sender
for k = 1, n do
  local m = inbox:receive()
  local d = m:payload():data()
  if d ~= k then error("message " .. tostring(d) .. " arrived as number " .. k) end
  if k % window == 0 then
    sender = sender or m:from()
    send(sender, "ack", k)
  end
end
return { count = n, t_end = now() }
"#;

const SENDER: &str = r#"
local sink, n, window = ...
local send, min = process.send, math.min
local inbox = process.inbox()
local now = require("time").monotonic
local t0 = now()
local sent, w = 0, 0
while sent < n do
  w = w + 1
  if w > 2 then
    local want = (w - 2) * window
    local got = inbox:receive():payload():data()
    if got ~= want then error("ack " .. tostring(got) .. ", expected " .. want) end
  end
  local last = min(sent + window, n)
  for i = sent + 1, last do send(sink, "m", i) end
  sent = last
end
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
            format!(
                "workers={workers}, {n} messages, ack every {WINDOW}, median of {trials} (M/s): {}",
                harness::trials(&rates)
            ),
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
    let sink = harness::spawn_watched(node, "bench:sink", vec![Value::Int(n), Value::Int(WINDOW)])?;
    harness::settle(node, 1)?;
    let sender = harness::spawn_watched(
        node,
        "bench:sender",
        vec![Value::str(sink.pid.clone()), Value::Int(n), Value::Int(WINDOW)],
    )?;
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
