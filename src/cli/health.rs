//! `wippy health`: `/livez` and `/readyz` of one node or of every context.
//!
//! Nodes are asked in parallel, so a fleet with a dead node answers in one
//! connect timeout, not one per dead node.

use anyhow::Result;
use clap::Args;
use serde_json::{Value as Json, json};

use super::api::{Api, Auth, api_failure};
use super::error::usage;
use super::global::GlobalOpts;
use super::progress::Progress;
use super::session::Session;
use super::table::Table;
use super::url::BaseUrl;

/// `wippy health`.
#[derive(Args, Debug)]
pub(crate) struct HealthArgs {
    /// Check every saved context, not only the current one.
    #[arg(long)]
    all_contexts: bool,
}

/// One node's health.
struct Row {
    context: String,
    url: String,
    live: String,
    ready: String,
    detail: String,
    json: Json,
}

impl Row {
    fn ok(&self) -> bool {
        self.live == "ok" && self.ready == "ok"
    }
}

/// Runs `wippy health`; exit code 1 unless every node is live and ready.
pub(crate) fn run(args: HealthArgs, global: GlobalOpts) -> Result<i32> {
    let session = Session::open(global)?;
    let targets: Vec<(String, Result<BaseUrl, String>, Option<&super::config::Context>)> = if args.all_contexts {
        if session.config.contexts.is_empty() {
            return Err(usage(format!("no contexts in {}", session.path.display())));
        }
        session.config.contexts.iter().map(|(name, ctx)| (name.clone(), BaseUrl::parse(&ctx.url), Some(ctx))).collect()
    } else {
        // Like every command, --url keeps the context's credential; the
        // CONTEXT column names the context only when it is the same node.
        let (url, ctx) = (session.url()?, session.context()?);
        let name = match ctx {
            Some((n, c)) if c.is_at(&url) => n.to_string(),
            _ => "-".to_string(),
        };
        vec![(name, Ok(url), ctx.map(|(_, c)| c))]
    };
    let label = match &targets[..] {
        [(_, Ok(url), _)] => url.to_string(),
        _ => format!("{} nodes", targets.len()),
    };
    let rows: Vec<Row> = {
        let _spinner = Progress::start(&label, true);
        std::thread::scope(|s| {
            let handles: Vec<_> = targets
                .iter()
                .map(|(name, url, ctx)| {
                    let api = url.clone().map(|u| session.api_at(u, *ctx, false));
                    s.spawn(move || check(name, url, api))
                })
                .collect();
            handles.into_iter().map(|h| h.join().expect("a health check does not panic")).collect()
        })
    };
    let out = session.out();
    if out.json {
        out.print_json(&Json::Array(rows.iter().map(|r| r.json.clone()).collect()));
    } else {
        let mut t = Table::new(&["CONTEXT", "URL", "LIVE", "READY", "DETAIL"]);
        for r in &rows {
            t.row([&r.context, &r.url, &r.live, &r.ready, &r.detail]);
        }
        out.print_table(&t);
    }
    Ok(if rows.iter().all(Row::ok) { 0 } else { 1 })
}

fn check(name: &str, url: &Result<BaseUrl, String>, api: Result<Api, String>) -> Row {
    let url_text = url.as_ref().map_or_else(|_| "-".to_string(), BaseUrl::to_string);
    let mut row = Row {
        context: name.to_string(),
        url: url_text.clone(),
        live: "-".into(),
        ready: "-".into(),
        detail: String::new(),
        json: Json::Null,
    };
    let mut api = match api {
        Ok(api) => api,
        Err(e) => {
            row.live = "error".into();
            row.detail = e.clone();
            row.json = json!({ "context": name, "url": null, "ok": false, "error": e });
            return row;
        }
    };
    let (live, live_json, live_detail) = probe(&mut api, "/livez", Auth::Open);
    let (ready, ready_json, ready_detail) = if live == "unreachable" {
        ("-".to_string(), Json::Null, String::new())
    } else {
        probe(&mut api, "/readyz", Auth::Lazy)
    };
    row.detail = [live_detail, ready_detail].into_iter().filter(|d| !d.is_empty()).collect::<Vec<_>>().join("; ");
    row.json = json!({
        "context": name, "url": url_text, "ok": live == "ok" && ready == "ok",
        "livez": live_json, "readyz": ready_json,
    });
    (row.live, row.ready) = (live, ready);
    row
}

/// One probe: its verdict, the body as JSON, and what failed.
fn probe(api: &mut Api, path: &str, auth: Auth) -> (String, Json, String) {
    let response = match api.call_raw("GET", path, None, auth) {
        Ok(r) => r,
        Err(e @ super::error::Failure::Unreachable { .. }) => {
            return ("unreachable".into(), json!({ "error": e.to_string() }), e.to_string());
        }
        Err(e) => return ("error".into(), json!({ "error": e.to_string() }), e.to_string()),
    };
    let body: Json = serde_json::from_slice(&response.body).unwrap_or(Json::Null);
    if matches!(response.status, 401 | 403) {
        let message = api_failure(&response).to_string();
        return ("unauthorized".into(), body, format!("{path}: {message}"));
    }
    let status = body["status"].as_str().unwrap_or_default();
    if response.is_success() && status == "ok" {
        return ("ok".into(), body, String::new());
    }
    let verdict = if status.is_empty() { format!("http {}", response.status) } else { status.to_string() };
    (verdict, body.clone(), failing_checks(path, &body))
}

/// `gossip: no members reachable` for each check that is not ok.
fn failing_checks(path: &str, body: &Json) -> String {
    let failing: Vec<String> = body["checks"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, v)| v.as_str() != Some("ok"))
        .map(|(k, v)| format!("{k}: {}", v.as_str().map_or_else(|| v.to_string(), str::to_string)))
        .collect();
    if failing.is_empty() { format!("{path} failing") } else { failing.join(", ") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failing_checks_are_named() {
        let body = json!({"status": "failing", "checks": {"gossip": "ok", "raft": "no leader for 12s"}});
        assert_eq!(failing_checks("/livez", &body), "raft: no leader for 12s");
        assert_eq!(failing_checks("/readyz", &json!({"status": "failing"})), "/readyz failing");
    }
}
