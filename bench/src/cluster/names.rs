//! Cluster names, stores and process groups as processes use them, on a
//! three-node durable cluster on loopback (`names.lua`): CONSISTENT,
//! STRONG and EVENTUAL registration, the cost of a lookup per scope, a
//! linearizable kv.raft read, and how long a group join takes to reach a
//! watcher on another node.
//!
//! The join figure is one-way: the joiner prints the wall clock just before
//! `join`, the watcher when the event arrives, and both run on this machine
//! (one clock). Each join waits for the watcher's answer, so one is in
//! flight at a time.

use std::time::Duration;

use anyhow::{Context, Result, bail};

use super::messaging::fields;
use super::proc::service;
use super::raft::{cluster, wait_done};
use crate::harness::{Figure, Mode, median, quantile, trials};

const TIMEOUT: Duration = Duration::from_secs(180);

pub(crate) fn run(mode: Mode) -> Result<Vec<Figure>> {
    let (n, trials_n) = mode.pick((400, 3), (20, 1));
    let input = format!("[3, {n}, {trials_n}]");
    let mut c = cluster("nm", 3, &[], |i| match i {
        1 => service("main", "names", &input),
        2 => service("watch", "pgwatch", "[]"),
        _ => String::new(),
    })?;
    let nodes = &mut c.nodes;
    let lines = wait_done(nodes, "the names benchmark", TIMEOUT)?;
    let seen: Vec<String> = nodes[1].lines().into_iter().map(|(_, l)| l).collect();
    drop(c);

    let mut figs = Vec::new();
    for (tag, name, what) in [
        ("nreg ", "names_consistent_register", "CONSISTENT register on the leader, 3 durable voters"),
        ("nunreg ", "names_consistent_unregister", "CONSISTENT unregister on the leader"),
        ("nstrong ", "names_strong_register", "STRONG register on the leader, 3 live nodes acknowledge"),
        ("nevent ", "names_eventual_register", "EVENTUAL register (local, then sent to 2 peers)"),
        ("kvget ", "raft_kv_get", "linearizable kv.raft get on the leader (ReadIndex)"),
    ] {
        let rows = fields(&lines, tag, 4);
        if rows.is_empty() {
            bail!("names.lua printed no {tag:?} line: {lines:?}");
        }
        for (q, i) in [("p50", 2), ("p99", 3)] {
            let xs: Vec<f64> = rows.iter().map(|r| r[i]).collect();
            let note = format!("{what}, {} per trial; trials {}", rows[0][1], trials(&xs));
            figs.push(Figure::new(format!("{name}_{q}_us"), median(xs), "us", note));
        }
    }
    for scope in ["consistent", "eventual", "local"] {
        let prefix = format!("nlookup {scope} ");
        let ns = lines
            .iter()
            .find_map(|l| l.strip_prefix(&prefix)?.parse::<f64>().ok())
            .with_context(|| format!("no {prefix:?} line"))?;
        figs.push(Figure::new(
            format!("names_lookup_{scope}_ns"),
            ns,
            "ns",
            format!("process.registry.lookup of a {scope} name from Lua, per call"),
        ));
    }
    let stamp = |rows: &[String], tag: &str| -> Vec<(u64, f64)> {
        fields(rows, tag, 2).into_iter().map(|r| (r[0] as u64, r[1])).collect()
    };
    let (joins, arrivals) = (stamp(&lines, "pgj "), stamp(&seen, "pgs "));
    let mut gaps: Vec<f64> = joins
        .iter()
        .filter_map(|(i, t0)| arrivals.iter().find(|(j, _)| j == i).map(|(_, t1)| (t1 - t0) / 1000.0))
        .collect();
    if gaps.is_empty() {
        bail!("no pg join reached the watcher: {seen:?}");
    }
    let count = gaps.len();
    let p99 = quantile(&mut gaps, 0.99);
    figs.push(Figure::new(
        "pg_join_visible_p50_us",
        median(gaps),
        "us",
        format!("pg join on one node until a monitor on another node has the event, {count} joins"),
    ));
    figs.push(Figure::new("pg_join_visible_p99_us", p99, "us", format!("as above, {count} joins")));
    Ok(figs)
}
