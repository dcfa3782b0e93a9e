//! `wippy config …`: the saved contexts (node URL, credential, peer id).
//!
//! These commands only touch the CLI config file, except `add-context`,
//! which asks the node for its peer id when it can.

use anyhow::Result;
use clap::Subcommand;
use serde_json::{Map, Value as Json, json};

use super::api::Auth;
use super::config::Context;
use super::error::usage;
use super::global::GlobalOpts;
use super::session::Session;
use super::table::Table;
use super::url::BaseUrl;

/// `wippy config …`.
#[derive(Subcommand, Debug)]
pub(crate) enum ConfigCmd {
    /// Save the node at --url as context NAME (its peer id is recorded when it answers).
    AddContext {
        /// The context's name.
        name: String,
        /// The cluster credential's client id.
        #[arg(long, value_name = "ID", requires = "client_secret")]
        client_id: Option<String>,
        /// The cluster credential's secret.
        #[arg(long, value_name = "SECRET", requires = "client_id")]
        client_secret: Option<String>,
    },
    /// Make NAME the current context.
    UseContext {
        /// The context's name.
        name: String,
    },
    /// List the contexts (secrets are never printed).
    List,
    /// Remove every context whose peer id or name is PEER_ID_OR_NAME.
    DeletePeer {
        /// A peer id or a context name.
        peer_id_or_name: String,
    },
}

/// Runs a config command.
pub(crate) fn run(cmd: ConfigCmd, global: GlobalOpts) -> Result<i32> {
    let mut session = Session::open(global)?;
    let out = session.out();
    let path = session.path.display().to_string();
    match cmd {
        ConfigCmd::AddContext { name, client_id, client_secret } => {
            let Some(url_text) = session.opts.url.clone() else {
                return Err(usage("config add-context needs --url http://host:port"));
            };
            let url = BaseUrl::parse(&url_text).map_err(usage)?;
            let peer_id =
                match session.api_at(url.clone(), None, true).call("GET", "/v1/cluster/identity", None, Auth::Open) {
                    Ok(identity) => identity["peer_id"].as_str().unwrap_or_default().to_string(),
                    Err(e) => {
                        eprintln!("note: {e}; the context is saved without a peer id");
                        String::new()
                    }
                };
            let existed = session.config.contexts.contains_key(&name);
            let ctx = session.config.contexts.entry(name.clone()).or_insert_with(Context::default);
            ctx.url = url.to_string();
            ctx.peer_id = peer_id;
            if let (Some(id), Some(secret)) = (client_id, client_secret) {
                ctx.client_id = id;
                ctx.client_secret = secret;
            }
            let shown = public_view(ctx);
            if session.config.current.is_none() {
                session.config.current = Some(name.clone());
            }
            session.save()?;
            if out.json {
                out.print_json(&shown);
            } else {
                let verb = if existed { "updated" } else { "added" };
                let peer = shown["peer_id"].as_str().filter(|p| !p.is_empty()).unwrap_or("unknown");
                out.note(&format!("{verb} context {name:?}: {url} (peer {peer}) in {path}"));
            }
            if session.config.current.as_deref() != Some(name.as_str()) {
                out.note(&format!("switch to it with `wippy config use-context {name}`"));
            }
        }
        ConfigCmd::UseContext { name } => {
            let Some(ctx) = session.config.contexts.get(&name) else {
                return Err(usage(format!("no context {name:?} in {path}")));
            };
            let url = ctx.url.clone();
            session.config.current = Some(name.clone());
            session.save()?;
            out.note(&format!("now using context {name:?} ({url})"));
        }
        ConfigCmd::List => {
            if out.json {
                let contexts: Map<String, Json> =
                    session.config.contexts.iter().map(|(n, c)| (n.clone(), public_view(c))).collect();
                out.print_json(&json!({ "current": session.config.current, "contexts": contexts }));
            } else if session.config.contexts.is_empty() {
                out.note(&format!("no contexts in {path}; add one with `wippy config add-context NAME --url URL`"));
            } else {
                let mut t = Table::new(&["CURRENT", "NAME", "URL", "PEER ID", "CLIENT ID"]);
                for (name, ctx) in &session.config.contexts {
                    let current = if session.config.current.as_deref() == Some(name.as_str()) { "*" } else { "" };
                    let dash = |s: &str| if s.is_empty() { "-".to_string() } else { s.to_string() };
                    t.row([
                        current.to_string(),
                        name.clone(),
                        dash(&ctx.url),
                        dash(&ctx.peer_id),
                        dash(&ctx.client_id),
                    ]);
                }
                out.print_table(&t);
            }
        }
        ConfigCmd::DeletePeer { peer_id_or_name } => {
            let gone = session.config.delete_peer(&peer_id_or_name);
            if gone.is_empty() {
                return Err(usage(format!("no context with peer id or name {peer_id_or_name:?} in {path}")));
            }
            session.save()?;
            out.note(&format!("removed context(s) {} from {path}", gone.join(", ")));
            if session.config.current.is_none() && !session.config.contexts.is_empty() {
                out.note("no current context now: pick one with `wippy config use-context NAME`");
            }
        }
    }
    Ok(0)
}

/// A context without its secret, for printing.
fn public_view(ctx: &Context) -> Json {
    json!({
        "url": ctx.url,
        "client_id": ctx.client_id,
        "peer_id": ctx.peer_id,
        "has_secret": !ctx.client_secret.is_empty(),
    })
}
