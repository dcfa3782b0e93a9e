//! `wippy cluster status|sync`.

use anyhow::Result;
use clap::Subcommand;

use super::api::Auth;
use super::global::GlobalOpts;
use super::render::cell;
use super::session::Session;

/// `wippy cluster …`.
#[derive(Subcommand, Debug)]
pub(crate) enum ClusterCmd {
    /// The node's identity, membership counts, Raft, license and credential.
    Status,
    /// Send this node's groups, names, stores, credential and deactivations to every live peer now.
    Sync,
}

/// The sections of `cluster status`, in reading order.
const STATUS_SECTIONS: [&str; 5] = ["identity", "members", "raft", "license", "credential"];

/// Runs a cluster command.
pub(crate) fn run(cmd: ClusterCmd, global: GlobalOpts) -> Result<i32> {
    let session = Session::open(global)?;
    let out = session.out();
    let mut api = session.api()?;
    match cmd {
        ClusterCmd::Status => {
            let status = api.call("GET", "/v1/cluster/status", None, Auth::Scoped)?;
            out.fields(&status, &STATUS_SECTIONS);
        }
        ClusterCmd::Sync => {
            let answer = api.call("POST", "/v1/cluster/sync", None, Auth::Scoped)?;
            if out.json {
                out.print_json(&answer);
            } else {
                out.note(&format!("sent this node's state to {} peer(s)", cell(&answer["peers"])));
            }
        }
    }
    Ok(0)
}
