//! Process messages between two nodes over the internode mesh on loopback:
//! Lua ping-pong round trips and one-way throughput to a counting sink.
//!
//! Node `pb` runs the peer (echo + counter) and prints its pid; node `pa`
//! runs the driver with that pid as a service input, and the driver prints
//! one line per trial (format in `bench/apps/cluster/src/driver.lua`). All
//! timing happens inside the driver with `time.monotonic()`.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::proc::{Wippy, free_port, metric, service, wait_for, write_app};
use crate::harness::{Figure, Mode, median, trials};

/// How long the whole exchange may take before the nodes are declared hung
/// (full run, quick run): a cluster that never forms fails CI in a minute.
const TIMEOUT: (Duration, Duration) = (Duration::from_secs(300), Duration::from_secs(60));

/// Sizes: warm-up trips, timed trips, messages per one-way run, ack window, trials.
struct Sizes {
    warmup: u32,
    trips: u32,
    msgs: u32,
    window: u32,
    trials: u32,
}

pub(crate) fn run(mode: Mode) -> Result<Vec<Figure>> {
    let timeout = mode.pick(TIMEOUT.0, TIMEOUT.1);
    let s = mode.pick(
        Sizes { warmup: 2_000, trips: 20_000, msgs: 1_000_000, window: 10_000, trials: 3 },
        Sizes { warmup: 50, trips: 300, msgs: 10_000, window: 1_000, trials: 1 },
    );
    let peer_app = write_app("peer", &service("main", "peer", "[]"))?;
    let mut pb = Wippy::start(peer_app.path(), "pb", free_port()?, &[], true, &[])?;
    wait_for("the peer's pid", timeout, || {
        pb.check_alive()?;
        Ok(pb.lines().iter().any(|(_, l)| l.starts_with("peer ")))
    })?;
    let pid = pb.lines().iter().find_map(|(_, l)| l.strip_prefix("peer ").map(str::to_owned)).context("pid")?;
    let input = format!("[\"{pid}\", {}, {}, {}, {}, {}]", s.warmup, s.trips, s.msgs, s.window, s.trials);
    let driver_app = write_app("driver", &service("main", "driver", &input))?;
    let mut pa = Wippy::start(driver_app.path(), "pa", free_port()?, &[pb.port], true, &[])?;
    let t = Instant::now();
    wait_for("the driver to finish", timeout, || {
        pa.check_alive()?;
        pb.check_alive()?;
        Ok(pa.lines().iter().any(|(_, l)| l == "done"))
    })
    .with_context(|| format!("driver printed: {:?}", pa.lines().iter().map(|(_, l)| l).collect::<Vec<_>>()))?;
    let took = t.elapsed();
    let lines: Vec<String> = pa.lines().into_iter().map(|(_, l)| l).collect();
    let (ma, mb) = (pa.metrics()?, pb.metrics()?);
    let dropped = ["pa", "pb"]
        .iter()
        .zip([&ma, &mb])
        .map(|(n, body)| format!("{n} {}", metric(body, "mesh_dropped_total{class=\"relay\"}")))
        .collect::<Vec<_>>()
        .join(", ");
    drop((pa, pb));

    let mut figs = rtt_figures(&lines)?;
    figs.extend(oneway_figures(&lines, mode, &dropped)?);
    println!("# cluster messaging: driver ran {:.1} s", took.as_secs_f64());
    Ok(figs)
}

/// `rtt` lines: the median over trials of each trial's p50, p99 and mean.
fn rtt_figures(lines: &[String]) -> Result<Vec<Figure>> {
    let rows = fields(lines, "rtt ", 7);
    if rows.is_empty() {
        bail!("the driver printed no rtt line: {lines:?}");
    }
    // Fields: trial, n, p50, p99, mean, min, max.
    let col = |i: usize| rows.iter().map(|r| r[i]).collect::<Vec<f64>>();
    let n = rows[0][1];
    let mut figs = Vec::new();
    for (name, i) in [("p50", 2), ("p99", 3), ("mean", 4)] {
        let xs = col(i);
        let note = format!("{n} Lua round trips pa->pb->pa per trial, median of trials {}", trials(&xs));
        figs.push(Figure::new(format!("cluster_pingpong_rtt_{name}_us"), median(xs), "us", note));
    }
    Ok(figs)
}

/// `oneway` lines: rate (median over trials) and losses, per window.
fn oneway_figures(lines: &[String], mode: Mode, dropped: &str) -> Result<Vec<Figure>> {
    let rows = fields(lines, "oneway ", 6);
    if rows.is_empty() {
        bail!("the driver printed no oneway line: {lines:?}");
    }
    let mut figs = Vec::new();
    // Fields: trial, window, n, counted, seconds, send seconds.
    for (windowed, label) in [(false, "blast"), (true, "windowed")] {
        let mine: Vec<&Vec<f64>> = rows.iter().filter(|r| (r[1] > 0.0) == windowed).collect();
        let Some(first) = mine.first() else { continue };
        let (w, n) = (first[1], first[2]);
        // Delivered messages per second: a blast that overflowed the mesh
        // queue must not count what it lost.
        let rates: Vec<f64> = mine.iter().map(|r| r[3] / r[4]).collect();
        let losses: Vec<f64> = mine.iter().map(|r| r[2] - r[3]).collect();
        let lost: f64 = losses.iter().sum();
        let send: Vec<f64> = mine.iter().map(|r| r[2] / r[5]).collect();
        // A loss in quick mode (10 k messages, far below the mesh queue)
        // means delivery is broken, which CI must notice.
        if mode == Mode::Quick && lost > 0.0 {
            bail!("{lost} of {n} messages were lost in the {label} run (mesh drops: {dropped})");
        }
        let how =
            if w == 0.0 { "all sent at once".to_owned() } else { format!("ack every {w}, <= 2 windows in flight") };
        figs.push(Figure::new(
            format!("cluster_oneway_{label}_msgs_per_s"),
            median(rates.clone()),
            "msgs/s",
            format!("{n} msgs pa->pb, {how}, delivered / (first send to count back); trials {}", trials(&rates)),
        ));
        figs.push(Figure::new(
            format!("cluster_oneway_{label}_lost"),
            lost,
            "msgs",
            format!(
                "over all trials ({}); mesh_dropped_total relay: {dropped}; sender loop alone, msgs/s: {}",
                trials(&losses),
                trials(&send)
            ),
        ));
    }
    Ok(figs)
}

/// The numeric fields after `prefix` of every line that starts with it
/// (the driver prints only numbers there); a line without `len` of them is
/// skipped, so the row is then missing rather than misread.
pub(super) fn fields(lines: &[String], prefix: &str, len: usize) -> Vec<Vec<f64>> {
    lines
        .iter()
        .filter_map(|l| l.strip_prefix(prefix))
        .map(|r| r.split_whitespace().filter_map(|x| x.parse().ok()).collect::<Vec<f64>>())
        .filter(|v| v.len() == len)
        .collect()
}
