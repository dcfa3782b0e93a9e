//! `wippy bootstrap`: install a license on a fresh node.
//!
//! The first bootstrap of a cluster returns its credential, and the node
//! shows the secret exactly once, so the CLI saves it into a context right
//! away instead of trusting the operator to copy it.

use std::path::PathBuf;

use anyhow::{Context as _, Result};
use clap::Args;
use serde_json::{Value as Json, json};

use super::api::Auth;
use super::config::Context;
use super::error::usage;
use super::global::GlobalOpts;
use super::render::cell;
use super::session::Session;
use super::table::Table;

/// `wippy bootstrap`.
#[derive(Args, Debug)]
pub(crate) struct BootstrapArgs {
    /// The license file (from `wippy license issue`).
    #[arg(long, value_name = "FILE")]
    license_file: PathBuf,
    /// A name for the node in the peer list; also names the context saved for it.
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
}

/// Runs `wippy bootstrap`.
pub(crate) fn run(args: BootstrapArgs, global: GlobalOpts) -> Result<i32> {
    let mut session = Session::open(global)?;
    let text = std::fs::read_to_string(&args.license_file)
        .with_context(|| format!("reading {}", args.license_file.display()))?;
    let license: Json = serde_json::from_str(&text)
        .map_err(|e| usage(format!("{}: not a license (not JSON: {e})", args.license_file.display())))?;
    let mut body = json!({ "license": license });
    if let Some(name) = &args.name {
        body["name"] = Json::String(name.clone());
    }
    let url = session.url()?;
    // `--context NEW` may name the context this run creates.
    let ctx = session.context_name().and_then(|n| session.config.contexts.get(n));
    let mut api = session.api_at(url.clone(), ctx, true);
    // Open before the first bootstrap; a node that already has a license
    // wants cluster.admin, which a retry with the credential provides.
    let answer = api.call("POST", "/v1/bootstrap", Some(&body), Auth::Lazy)?;
    let out = session.out();
    if out.json {
        out.print_json(&answer);
    } else {
        let mut t = Table::plain();
        t.row(["peer id", &cell(&answer["peer_id"])]);
        t.row(["license id", &cell(&answer["license_id"])]);
        t.row(["cluster id", &cell(&answer["cluster_id"])]);
        let credential = &answer["credential"];
        if credential.is_object() {
            t.row(["client id", &cell(&credential["client_id"])]);
            t.row(["client secret", &cell(&credential["client_secret"])]);
        }
        out.print_table(&t);
    }
    let credential = &answer["credential"];
    let (Some(id), Some(secret)) = (credential["client_id"].as_str(), credential["client_secret"].as_str()) else {
        out.note("no new credential: the cluster's existing one still applies");
        return Ok(0);
    };
    out.note("the node shows the client secret only once");
    let peer_id = answer["peer_id"].as_str().unwrap_or_default();
    let explicit = session.opts.context.clone();
    let target = explicit.clone().or_else(|| {
        // The current context, unless --url points at another node.
        let (name, ctx) = session.context().ok().flatten()?;
        ctx.is_at(&url).then(|| name.to_string())
    });
    let name = target.unwrap_or_else(|| args.name.clone().unwrap_or_else(|| "default".to_string()));
    if explicit.is_none()
        && let Some(existing) = session.config.contexts.get(&name)
        && !existing.is_at(&url)
        && !existing.client_id.is_empty()
    {
        out.note(&format!(
            "not saved: context {name:?} already holds another node's credential ({}); save this one with\n  \
             wippy config add-context NAME --url {url} --client-id {id} --client-secret <the secret above>",
            existing.url
        ));
        return Ok(0);
    }
    let ctx = session.config.contexts.entry(name.clone()).or_insert_with(Context::default);
    *ctx =
        Context { url: url.to_string(), client_id: id.into(), client_secret: secret.into(), peer_id: peer_id.into() };
    let made_current = session.config.current.is_none();
    if made_current {
        session.config.current = Some(name.clone());
    }
    session.save()?;
    let mut note = format!("saved the credential to context {name:?} in {}", session.path.display());
    if made_current {
        note.push_str(" (now the current context)");
    } else if session.config.current.as_deref() != Some(name.as_str()) {
        note.push_str(&format!("; switch to it with `wippy config use-context {name}`"));
    }
    out.note(&note);
    Ok(0)
}
