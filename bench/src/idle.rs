//! `idle`: spawn a million processes that stay parked in
//! `process.inbox():receive()`, and measure time per spawn and memory per
//! process.
//!
//! Memory is the growth of this OS process's RSS, so it counts everything a
//! process costs: its coroutine and kernel records in Lua, the scheduler's
//! slot and PID string in Rust, and allocator overhead. Each configuration
//! runs in a fresh child process (this binary re-executed with
//! [`CHILD_FLAG`]): memory freed by an earlier benchmark would otherwise be
//! reused and make the growth look smaller than it is.
//!
//! Each child reports "up" to the driver right before it blocks, so the
//! driver knows the whole batch is parked before it spawns the next one, and
//! the timed figure is spawn until parked (one same-worker message
//! included). No PID list is kept anywhere, so the figure includes none.

use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use wippy_runtime::Value;

use crate::harness::{self, Figure, Mode};

/// The hidden argument that makes this binary run one idle measurement.
pub(crate) const CHILD_FLAG: &str = "__idle-child";

const IDLE: &str = r#"
local parent = ...
local inbox = process.inbox()
process.send(parent, "up", true)
inbox:receive()
"#;

const DRIVER: &str = r#"
local total, batch = ...
local spawn, min = process.spawn, math.min
local inbox = process.inbox()
local me = process.pid()
local now = require("time").monotonic
local done = 0
local t0 = now()
while done < total do
  local b = min(batch, total - done)
  for _ = 1, b do
    local pid, err = spawn("bench:idle", "bench:host", me)
    if not pid then error("spawn failed after " .. done .. ": " .. tostring(err)) end
  end
  for _ = 1, b do inbox:receive() end
  done = done + b
end
return { spawns = done, ms = now() - t0 }
"#;

/// Processes spawned between two waits for their "up" messages.
const BATCH: i64 = 10_000;

/// Runs the measurement in child processes, one per worker count.
pub(crate) fn run(mode: Mode) -> Result<Vec<Figure>> {
    let total: i64 = mode.pick(1_000_000, 20_000);
    let mut out = Vec::new();
    for workers in [1usize, 2] {
        let exe = std::env::current_exe().context("locating the bench binary")?;
        let res = Command::new(exe)
            .args([CHILD_FLAG, &workers.to_string(), &total.to_string(), &harness::slice().as_millis().to_string()])
            .output()
            .context("running the idle child")?;
        let stdout = String::from_utf8_lossy(&res.stdout);
        if !res.status.success() {
            bail!("idle child (workers={workers}) failed: {}\n{stdout}", String::from_utf8_lossy(&res.stderr));
        }
        for line in stdout.lines() {
            out.push(parse_line(line).with_context(|| format!("idle child printed {line:?}"))?);
        }
    }
    Ok(out)
}

/// The child side: one node, `total` idle processes, figures on stdout.
pub(crate) fn child(workers: usize, total: i64) -> Result<()> {
    let node = harness::start(workers, &[("bench:idle", IDLE), ("bench:driver", DRIVER)])?;
    // A small warm-up compiles the definitions; its processes stay, and are
    // part of neither the baseline nor the count below.
    harness::run(&node, "bench:driver", vec![Value::Int(100), Value::Int(100)])?;
    std::thread::sleep(Duration::from_millis(50));
    let before = harness::rss_bytes()?;
    let base = node.live();
    let r = harness::run(&node, "bench:driver", vec![Value::Int(total), Value::Int(BATCH)])?;
    let spawned = harness::num(&r, "spawns")? as i64;
    let ms = harness::num(&r, "ms")?;
    std::thread::sleep(Duration::from_millis(100));
    let live = (node.live() - base) as i64;
    if spawned != total || live != total {
        bail!("asked for {total} idle processes: driver spawned {spawned}, {live} alive");
    }
    let after = harness::rss_bytes()?;
    node.shutdown();

    let per_proc = (after.saturating_sub(before)) as f64 / total as f64;
    let w = workers;
    let figs = [
        Figure::new(
            format!("idle_spawn_w{w}_us"),
            ms * 1000.0 / total as f64,
            "us",
            format!("{total} spawns in batches of {BATCH}, each until parked in receive (includes one 'up' message)"),
        ),
        Figure::new(
            format!("idle_process_bytes_w{w}"),
            per_proc,
            "bytes",
            format!("RSS growth over {total} idle processes ({} -> {} MiB)", before >> 20, after >> 20),
        ),
        Figure::new(
            format!("idle_total_rss_w{w}_mib"),
            after as f64 / f64::from(1 << 20),
            "MiB",
            format!("whole-process RSS with {total} idle processes"),
        ),
    ];
    for f in figs {
        println!("{}", f.line());
    }
    Ok(())
}

/// Reads back a `BENCH name value unit  # note` line.
fn parse_line(line: &str) -> Result<Figure> {
    let (head, note) = line.split_once("  # ").unwrap_or((line, ""));
    let mut it = head.split_whitespace();
    let (Some("BENCH"), Some(name), Some(value), Some(unit)) = (it.next(), it.next(), it.next(), it.next()) else {
        bail!("not a BENCH line");
    };
    let unit = match unit {
        "us" => "us",
        "bytes" => "bytes",
        "MiB" => "MiB",
        other => bail!("unexpected unit {other}"),
    };
    Ok(Figure::new(name, value.parse()?, unit, note))
}
