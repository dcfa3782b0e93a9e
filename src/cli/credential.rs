//! `wippy credential rotate`.
//!
//! The credential is the cluster's (every node accepts it), so every saved
//! context holding it gets the new secret, not just the current one.

use anyhow::Result;
use clap::Subcommand;

use super::api::Auth;
use super::global::GlobalOpts;
use super::prompt;
use super::render::cell;
use super::session::Session;
use super::table::Table;
use super::time;

/// `wippy credential …`.
#[derive(Subcommand, Debug)]
pub(crate) enum CredentialCmd {
    /// Issue a new client secret; the old one keeps working for a grace period.
    Rotate {
        /// Do not ask for confirmation.
        #[arg(long, short = 'y')]
        yes: bool,
    },
}

/// Runs a credential command.
pub(crate) fn run(cmd: CredentialCmd, global: GlobalOpts) -> Result<i32> {
    let CredentialCmd::Rotate { yes } = cmd;
    prompt::require_interactive("rotate", yes)?;
    let mut session = Session::open(global)?;
    let out = session.out();
    let mut api = session.api()?;
    prompt::confirm("Rotate the cluster credential?", "rotate", yes)?;
    let answer = api.call("POST", "/v1/cluster/credential/rotate", None, Auth::Scoped)?;
    if out.json {
        out.print_json(&answer);
    } else {
        let mut t = Table::plain();
        t.row(["client id", &cell(&answer["client_id"])]);
        t.row(["client secret", &cell(&answer["client_secret"])]);
        t.row(["generation", &cell(&answer["generation"])]);
        out.print_table(&t);
    }
    match answer["previous_valid_until"].as_u64().filter(|t| *t > 0) {
        Some(until) => out.note(&format!("the previous secret keeps working until {}", time::both(until))),
        None => out.note("the previous secret no longer works"),
    }
    let (Some(id), Some(secret)) = (answer["client_id"].as_str(), answer["client_secret"].as_str()) else {
        return Ok(0);
    };
    let current = session.context().ok().flatten().map(|(n, _)| n.to_string());
    let mut updated = Vec::new();
    for (name, ctx) in session.config.contexts.iter_mut() {
        if ctx.client_id == id || current.as_deref() == Some(name.as_str()) {
            ctx.client_id = id.to_string();
            ctx.client_secret = secret.to_string();
            updated.push(name.clone());
        }
    }
    if updated.is_empty() {
        out.note("no saved context to update: save the secret with `wippy config add-context`");
    } else {
        session.save()?;
        out.note(&format!("saved the new secret to context(s) {} in {}", updated.join(", "), session.path.display()));
    }
    if std::env::var_os("WIPPY_CLIENT_SECRET").is_some_and(|v| !v.is_empty()) {
        out.note("note: WIPPY_CLIENT_SECRET in this environment still holds the previous secret");
    }
    Ok(0)
}
