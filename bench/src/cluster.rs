//! The `cluster` group: real `wippy` release binaries on 127.0.0.1, formed
//! into a cluster with gossip and talking over the internode mesh. Unlike
//! the other benchmarks, which run a node inside the bench process, these
//! need separate processes: gossip, the mesh and a SIGKILLed node only mean
//! something across OS processes and sockets.
//!
//! The binary is `--wippy PATH`, else `$WIPPY_BIN`, else `wippy` next to the
//! bench executable (`cargo build --release` puts both in target/release).

mod admin;
mod membership;
mod messaging;
mod names;
mod proc;
mod raft;

use std::path::PathBuf;
use std::sync::Mutex;

use anyhow::{Result, bail};

use crate::harness::{Figure, Mode};

/// The binary given with `--wippy`, if any.
static WIPPY: Mutex<Option<PathBuf>> = Mutex::new(None);

/// Sets the `wippy` binary to run (`--wippy PATH`).
pub(crate) fn set_wippy(path: PathBuf) {
    *WIPPY.lock().unwrap_or_else(|e| e.into_inner()) = Some(path);
}

/// The `wippy` binary the nodes run. A missing one is an error, never a
/// skip: CI must notice when the cluster group did not run.
fn wippy_bin() -> Result<PathBuf> {
    let given = WIPPY.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let path = match given.or_else(|| std::env::var_os("WIPPY_BIN").map(PathBuf::from)) {
        Some(p) => p,
        None => std::env::current_exe()?.with_file_name("wippy"),
    };
    if !path.is_file() {
        bail!(
            "no wippy binary at {} (build it with `cargo build --release`, or pass --wippy PATH / set WIPPY_BIN)",
            path.display()
        );
    }
    Ok(path)
}

/// Runs the messaging benchmark on two nodes, then failure detection and
/// join convergence.
pub(crate) fn run(mode: Mode) -> Result<Vec<Figure>> {
    let mut figs = messaging::run(mode)?;
    figs.extend(membership::run(mode)?);
    Ok(figs)
}

/// Runs the Raft write and failover benchmarks.
pub(crate) fn run_raft(mode: Mode) -> Result<Vec<Figure>> {
    raft::run(mode)
}

/// Runs the idle-leader CPU benchmark (many nodes).
pub(crate) fn run_raft_idle(mode: Mode) -> Result<Vec<Figure>> {
    raft::idle(mode)
}

/// Runs the names, kv.raft read and process-group benchmarks.
pub(crate) fn run_names(mode: Mode) -> Result<Vec<Figure>> {
    names::run(mode)
}

/// Admission cost and admin API latency.
pub(crate) fn run_admin(mode: Mode) -> Result<Vec<Figure>> {
    admin::run(mode)
}
