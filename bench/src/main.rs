//! `wippy-bench`: benchmarks that drive real Lua processes through the
//! runtime's public API.
//!
//! Usage: `wippy-bench [--quick] [--slice-ms N] [--wippy PATH] [NAME...]`; no
//! name runs them all. Each figure prints as `BENCH <name> <value> <unit>  # how`, the same
//! shape as the anchor scripts' `ANCHOR` lines, so the two can be set side by
//! side.
//! `--quick` runs tiny sizes: CI uses it to prove the benchmarks still work,
//! its numbers mean nothing.

mod cluster;
mod harness;
mod idle;
mod machine;
mod pingpong;
mod preempt;
mod spawn;
mod throughput;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use harness::{Figure, Mode};

/// The allocator of the `wippy` binary: Lua's allocation pattern makes the
/// allocator part of every figure here, so the bench must use the same one.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A benchmark: its name on the command line and its entry point.
type Bench = (&'static str, fn(Mode) -> Result<Vec<Figure>>);

/// Every benchmark, in the order a full run takes them.
const BENCHES: &[Bench] = &[
    ("spawn", spawn::run),
    ("idle", idle::run),
    ("pingpong", pingpong::run),
    ("throughput", throughput::run),
    ("preempt", preempt::run),
    ("cluster", cluster::run),
    ("raft", cluster::run_raft),
    ("raft-idle", cluster::run_raft_idle),
    ("names", cluster::run_names),
    ("admin", cluster::run_admin),
];

fn main() -> ExitCode {
    match real_main() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wippy-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn real_main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some(idle::CHILD_FLAG) {
        let workers = args.get(1).context("workers")?.parse()?;
        let total = args.get(2).context("count")?.parse()?;
        harness::set_slice(Duration::from_millis(args.get(3).context("slice")?.parse()?));
        return idle::child(workers, total);
    }
    let mut mode = Mode::Full;
    let mut names = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => mode = Mode::Quick,
            "--slice-ms" => {
                let ms: u64 = it.next().context("--slice-ms needs a number")?.parse().context("--slice-ms")?;
                harness::set_slice(Duration::from_millis(ms));
            }
            "--wippy" => cluster::set_wippy(it.next().context("--wippy needs a path")?.into()),
            "-h" | "--help" => {
                let all: Vec<_> = BENCHES.iter().map(|b| b.0).collect();
                println!(
                    "usage: wippy-bench [--quick] [--slice-ms N] [--wippy PATH] [NAME...]\nbenchmarks: {}",
                    all.join(" ")
                );
                return Ok(());
            }
            name if BENCHES.iter().any(|b| b.0 == name) => names.push(name),
            other => bail!("unknown benchmark or option {other:?} (try --help)"),
        }
    }
    println!("{}", machine::describe());
    println!("# mode: {mode:?}; time slice {:?} (preempt: the runtime default)", harness::slice());
    for (name, bench) in BENCHES {
        if !names.is_empty() && !names.contains(name) {
            continue;
        }
        let t = Instant::now();
        let cpu = machine::CpuMark::now();
        let figures = bench(mode).with_context(|| format!("benchmark {name}"))?;
        for f in figures {
            println!("{}", f.line());
        }
        println!("{}", cpu.report());
        println!("# {name}: took {:.1} s", t.elapsed().as_secs_f64());
    }
    Ok(())
}
