//! The operator commands: they speak to a node's admin HTTP API (see
//! docs/admin-api.md), except `license issue`, which works offline.

use anyhow::Result;
use clap::Subcommand;

/// The admin commands, flattened into the top-level `wippy` command.
#[derive(Subcommand)]
pub(crate) enum Admin {}

/// Runs one admin command; returns the exit code.
pub(crate) fn run(cmd: Admin) -> Result<i32> {
    match cmd {}
}
