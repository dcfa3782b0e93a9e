//! `wippy peers …`: the cluster's peer book.

use anyhow::Result;
use clap::Subcommand;
use serde_json::{Value as Json, json};

use super::api::Auth;
use super::config::Context;
use super::global::GlobalOpts;
use super::prompt;
use super::render::{Out, cell};
use super::session::Session;
use super::table::Table;
use super::time;
use super::url::{BaseUrl, encode_segment};

/// The order a single peer's fields are listed in.
const PEER_FIELDS: [&str; 11] = [
    "id",
    "node",
    "name",
    "state",
    "status",
    "local",
    "api_address",
    "gossip_address",
    "license_id",
    "public_key",
    "added_at",
];

/// `wippy peers …`.
#[derive(Subcommand, Debug)]
pub(crate) enum PeersCmd {
    /// List the cluster's peers.
    List,
    /// Add the node whose admin API is at ADDRESS (host:port) to the cluster.
    Add {
        /// The other node's admin API address, host:port.
        address: String,
    },
    /// Show one peer.
    Get {
        /// Peer id.
        id: String,
    },
    /// Rename a peer.
    Update {
        /// Peer id.
        id: String,
        /// The new name.
        #[arg(long)]
        name: String,
    },
    /// Remove a peer from the cluster; it can no longer join.
    Delete {
        /// Peer id (the node you talk to cannot delete itself: see remove-self).
        id: String,
        /// Do not ask for confirmation.
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Remove the node you talk to from the cluster; it tells its peers, then shuts down.
    RemoveSelf {
        /// Do not ask for confirmation.
        #[arg(long, short = 'y')]
        yes: bool,
    },
}

/// Runs a peers command.
pub(crate) fn run(cmd: PeersCmd, global: GlobalOpts) -> Result<i32> {
    // Refuse before touching the network or the config, so a script
    // without --yes fails the same way everywhere.
    match &cmd {
        PeersCmd::Delete { yes, .. } | PeersCmd::RemoveSelf { yes } => prompt::require_interactive("delete", *yes)?,
        _ => {}
    }
    let mut session = Session::open(global)?;
    let out = session.out();
    let mut api = session.api()?;
    match cmd {
        PeersCmd::List => {
            let answer = api.call("GET", "/v1/peers", None, Auth::Scoped)?;
            if out.json {
                out.print_json(&answer);
            } else {
                out.print_table(&peer_table(&answer));
            }
        }
        PeersCmd::Add { address } => {
            let body = json!({ "address": admin_address(&address) });
            let peer = api.call("POST", "/v1/peers", Some(&body), Auth::Scoped)?;
            out.fields(&peer, &PEER_FIELDS);
            save_peer_context(&mut session, out, &peer)?;
        }
        PeersCmd::Get { id } => {
            let peer = api.call("GET", &peer_path(&id), None, Auth::Scoped)?;
            out.fields(&peer, &PEER_FIELDS);
        }
        PeersCmd::Update { id, name } => {
            let peer = api.call("PUT", &peer_path(&id), Some(&json!({ "name": name })), Auth::Scoped)?;
            out.fields(&peer, &PEER_FIELDS);
        }
        PeersCmd::Delete { id, yes } => {
            prompt::confirm(&format!("Delete peer {id}?"), "delete", yes)?;
            let peer = api.call("DELETE", &peer_path(&id), None, Auth::Scoped)?;
            if out.json {
                out.print_json(&peer);
            } else {
                out.note(&format!("deleted peer {id} (status {})", cell(&peer["status"])));
            }
            hint_saved_contexts(&session, out, &id);
        }
        PeersCmd::RemoveSelf { yes } => {
            if !yes {
                let identity = api.call("GET", "/v1/cluster/identity", None, Auth::Open)?;
                let id = cell(&identity["peer_id"]);
                eprintln!("{} is this node: it leaves the cluster and shuts down.", api.http.base);
                prompt::confirm(&format!("Delete peer {id}?"), "delete", false)?;
            }
            let answer = api.call("DELETE", "/v1/peers/self", None, Auth::Scoped)?;
            let id = answer["peer_id"].as_str().unwrap_or_default().to_string();
            if out.json {
                out.print_json(&answer);
            } else {
                let at = answer["deactivated_at"].as_u64().map_or_else(|| "-".into(), time::format_utc);
                out.note(&format!(
                    "peer {id} deactivated at {at}; {} peer(s) notified; the node now leaves the cluster and shuts down",
                    cell(&answer["notified"])
                ));
            }
            hint_saved_contexts(&session, out, &id);
        }
    }
    Ok(0)
}

/// `peers list` as a table.
fn peer_table(answer: &Json) -> Table {
    let mut t = Table::new(&["ID", "NODE", "NAME", "STATE", "STATUS", "LOCAL", "API ADDRESS"]);
    for p in answer["peers"].as_array().into_iter().flatten() {
        let fields = ["id", "node", "name", "state", "status", "local", "api_address"];
        t.row(fields.map(|f| cell(&p[f])));
    }
    t
}

fn peer_path(id: &str) -> String {
    format!("/v1/peers/{}", encode_segment(id))
}

/// The API wants `host:port`; an operator may paste the node's URL.
fn admin_address(text: &str) -> String {
    match BaseUrl::parse(text) {
        Ok(url) if text.contains("://") && url.prefix.is_empty() => url.host_header(),
        _ => text.to_string(),
    }
}

/// An added node takes the cluster credential of the node that added it,
/// so a context for it with the credential in use now works at once. An
/// existing context of that name is updated only when it points at the
/// same node (its old secret, from the node's own bootstrap, is dead).
fn save_peer_context(session: &mut Session, out: Out, peer: &Json) -> Result<()> {
    let (Some(node), Some(api)) = (peer["node"].as_str(), peer["api_address"].as_str()) else { return Ok(()) };
    let Some((_, current)) = session.context()? else { return Ok(()) };
    if current.client_id.is_empty() || current.client_secret.is_empty() {
        return Ok(());
    }
    let url = format!("http://{api}");
    let Ok(base) = BaseUrl::parse(&url) else { return Ok(()) };
    let saved = Context {
        url,
        client_id: current.client_id.clone(),
        client_secret: current.client_secret.clone(),
        peer_id: peer["id"].as_str().unwrap_or_default().to_owned(),
    };
    match session.config.contexts.get(node) {
        Some(existing) if !existing.is_at(&base) => {
            out.note(&format!("context {node:?} points at another node; left as it is"));
            return Ok(());
        }
        _ => {}
    }
    session.config.contexts.insert(node.to_owned(), saved);
    session.save()?;
    out.note(&format!("saved context {node:?} for it in {}", session.path.display()));
    Ok(())
}

/// A deleted node's saved contexts no longer lead anywhere useful.
fn hint_saved_contexts(session: &Session, out: Out, peer_id: &str) {
    let names = session.config.contexts_of_peer(peer_id);
    if !peer_id.is_empty() && !names.is_empty() {
        let names = names.join(", ");
        out.note(&format!("its saved contexts ({names}) can go with `wippy config delete-peer {peer_id}`"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_peer_list_renders_its_columns() {
        let answer = json!({"peers": [
            {"id": "p1", "node": "n1", "name": null, "state": "alive", "status": "active", "local": true,
             "api_address": "10.0.0.1:8080"},
            {"id": "p22", "node": "n2", "name": "prod-2", "state": "unknown", "status": "removed", "local": false,
             "api_address": "10.0.0.2:8080"},
        ]});
        let expected = "\
ID   NODE  NAME    STATE    STATUS   LOCAL  API ADDRESS
p1   n1    -       alive    active   yes    10.0.0.1:8080
p22  n2    prod-2  unknown  removed  no     10.0.0.2:8080
";
        assert_eq!(peer_table(&answer).render(), expected);
    }

    #[test]
    fn addresses_and_paths_are_normalized() {
        assert_eq!(admin_address("http://10.0.0.2:8080/"), "10.0.0.2:8080");
        assert_eq!(admin_address("10.0.0.2:8080"), "10.0.0.2:8080");
        assert_eq!(peer_path("p1/../self"), "/v1/peers/p1%2F..%2Fself");
    }
}
