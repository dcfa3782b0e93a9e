//! The operator commands: they speak to a node's admin HTTP API (see
//! docs/admin-api.md), except `license issue`, which works offline.
//!
//! Layout: the transport (`url`, `http`, `response`, `trace`, `progress`),
//! the login and error rules (`api`, `error`), the CLI's own config
//! (`config`, `session`, `global`), printing (`table`, `render`, `time`),
//! and one module per command group.

mod api;
mod bootstrap;
mod cluster;
mod config;
mod contexts;
mod credential;
mod error;
mod global;
mod health;
mod http;
mod license;
mod peers;
mod progress;
mod prompt;
mod render;
mod response;
mod session;
mod table;
mod time;
mod trace;
mod url;

use anyhow::Result;
use clap::Subcommand;

use self::error::{Failure, exit_code};
use self::global::GlobalOpts;

/// The admin commands, flattened into the top-level `wippy` command.
#[derive(Subcommand, Debug)]
pub(crate) enum Admin {
    /// Issue a license (offline) or show a node's.
    License {
        #[command(subcommand)]
        cmd: license::LicenseCmd,
        #[command(flatten)]
        global: GlobalOpts,
    },
    /// Install a license on a fresh node, making it the first member of its cluster.
    Bootstrap {
        #[command(flatten)]
        args: bootstrap::BootstrapArgs,
        #[command(flatten)]
        global: GlobalOpts,
    },
    /// List, add, rename and remove the cluster's peers.
    Peers {
        #[command(subcommand)]
        cmd: peers::PeersCmd,
        #[command(flatten)]
        global: GlobalOpts,
    },
    /// Show the cluster's status or push this node's state to its peers.
    Cluster {
        #[command(subcommand)]
        cmd: cluster::ClusterCmd,
        #[command(flatten)]
        global: GlobalOpts,
    },
    /// Rotate the cluster credential the CLI logs in with.
    Credential {
        #[command(subcommand)]
        cmd: credential::CredentialCmd,
        #[command(flatten)]
        global: GlobalOpts,
    },
    /// Check that a node (or every saved context) is live and ready.
    Health {
        #[command(flatten)]
        args: health::HealthArgs,
        #[command(flatten)]
        global: GlobalOpts,
    },
    /// Manage the CLI's contexts: saved node URLs and credentials.
    Config {
        #[command(subcommand)]
        cmd: contexts::ConfigCmd,
        #[command(flatten)]
        global: GlobalOpts,
    },
}

/// Runs one admin command; returns the exit code. Errors are reported
/// here (`Error: …` on stderr) rather than by `main`, because they map to
/// two exit codes: 1 when the node said no or could not be reached, 2 for
/// usage and config mistakes.
pub(crate) fn run(cmd: Admin) -> Result<i32> {
    let result = match cmd {
        Admin::License { cmd, global } => license::run(cmd, global),
        Admin::Bootstrap { args, global } => bootstrap::run(args, global),
        Admin::Peers { cmd, global } => peers::run(cmd, global),
        Admin::Cluster { cmd, global } => cluster::run(cmd, global),
        Admin::Credential { cmd, global } => credential::run(cmd, global),
        Admin::Health { args, global } => health::run(args, global),
        Admin::Config { cmd, global } => contexts::run(cmd, global),
    };
    Ok(result.unwrap_or_else(|e| report(&e)))
}

/// Prints the error, with a hint where the next step is not obvious.
fn report(e: &anyhow::Error) -> i32 {
    eprintln!("Error: {e:#}");
    if let Some(Failure::Api { status, code, .. }) = e.downcast_ref::<Failure>()
        && let Some(hint) = hint(*status, code)
    {
        eprintln!("hint: {hint}");
    }
    exit_code(e)
}

fn hint(status: u16, code: &str) -> Option<&'static str> {
    Some(match code {
        "invalid_client" => "the saved client secret may have been rotated; update it with wippy config add-context",
        "cannot_delete_local_peer" => "to remove the node you are talking to, use `wippy peers remove-self`",
        _ if status == 401 => {
            "log in with a context holding the cluster credential \
             (wippy config add-context NAME --url URL --client-id ID --client-secret S), \
             WIPPY_CLIENT_ID/WIPPY_CLIENT_SECRET, or WIPPY_TOKEN"
        }
        _ => return None,
    })
}
