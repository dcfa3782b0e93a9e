//! JSON calls to one node's admin API, with its login and error rules.
//!
//! Tokens are minted by the node they are used on (see
//! `runtime/src/identity/token.rs`), so an `Api` fetches its own, once per
//! run, and only for routes that need a scope.

use serde_json::Value as Json;

use super::error::Failure;
use super::http::{Http, Request};
use super::response::{Response, truncate};
use super::url::encode_form;

/// What the CLI can log in with.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) enum Credentials {
    /// Nothing: routes that need a scope answer 401 with their message.
    #[default]
    None,
    /// A bearer token used as is (`WIPPY_TOKEN`, e.g. the static `admin.token`).
    Bearer(String),
    /// The cluster credential, traded for a token at `/v1/oauth/token`.
    Client {
        /// Client id.
        id: String,
        /// Client secret.
        secret: String,
    },
}

impl Credentials {
    /// `WIPPY_TOKEN` wins; `WIPPY_CLIENT_ID`/`WIPPY_CLIENT_SECRET` override
    /// the context's fields one by one; empty values count as unset.
    pub(crate) fn resolve(
        env_token: Option<String>,
        env_id: Option<String>,
        env_secret: Option<String>,
        context: (&str, &str),
    ) -> Credentials {
        let set = |v: Option<String>| v.filter(|v| !v.is_empty());
        if let Some(token) = set(env_token) {
            return Credentials::Bearer(token);
        }
        let id = set(env_id).unwrap_or_else(|| context.0.to_string());
        let secret = set(env_secret).unwrap_or_else(|| context.1.to_string());
        if id.is_empty() || secret.is_empty() { Credentials::None } else { Credentials::Client { id, secret } }
    }
}

/// How a route is authenticated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Auth {
    /// Open route: no header.
    Open,
    /// Needs a scope: log in first (when there is anything to log in with).
    Scoped,
    /// Open until something changes (`/v1/bootstrap` before the first
    /// bootstrap, `/readyz` without a static token): try without, and log
    /// in and retry once on 401.
    Lazy,
}

/// One node's admin API.
pub(crate) struct Api {
    /// The transport.
    pub(crate) http: Http,
    credentials: Credentials,
    token: Option<String>,
}

impl Api {
    /// An API client for `http` logging in with `credentials`.
    pub(crate) fn new(http: Http, credentials: Credentials) -> Api {
        Api { http, credentials, token: None }
    }

    /// Calls a route and returns its JSON body; any status but 2xx is a
    /// [`Failure::Api`] with the node's message.
    pub(crate) fn call(&mut self, method: &str, path: &str, body: Option<&Json>, auth: Auth) -> Result<Json, Failure> {
        let response = self.call_raw(method, path, body, auth)?;
        if !response.is_success() {
            return Err(api_failure(&response));
        }
        self.json(&response)
    }

    /// Calls a route and returns status and body whatever the status (the
    /// health checks read 503 bodies).
    pub(crate) fn call_raw(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&Json>,
        auth: Auth,
    ) -> Result<Response, Failure> {
        let mut headers = Vec::new();
        if auth == Auth::Scoped
            && let Some(token) = self.token()?
        {
            headers.push(("Authorization".to_string(), format!("Bearer {token}")));
        }
        let body = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        if !body.is_empty() {
            headers.push(("Content-Type".to_string(), "application/json".to_string()));
        }
        let mut req = Request { method, path, headers, body };
        let response = self.http.send(&req)?;
        if auth == Auth::Lazy && response.status == 401 && self.credentials != Credentials::None {
            let token = self.token()?.expect("credentials give a token");
            req.headers.push(("Authorization".to_string(), format!("Bearer {token}")));
            return self.http.send(&req);
        }
        Ok(response)
    }

    /// The bearer token to send, fetching one with the client credential
    /// on first use.
    fn token(&mut self) -> Result<Option<String>, Failure> {
        if let Some(t) = &self.token {
            return Ok(Some(t.clone()));
        }
        let token = match &self.credentials {
            Credentials::None => return Ok(None),
            Credentials::Bearer(t) => t.clone(),
            Credentials::Client { id, secret } => {
                let form = format!(
                    "grant_type=client_credentials&client_id={}&client_secret={}",
                    encode_form(id),
                    encode_form(secret)
                );
                let headers = vec![("Content-Type".to_string(), "application/x-www-form-urlencoded".to_string())];
                let req = Request { method: "POST", path: "/v1/oauth/token", headers, body: form.into_bytes() };
                let response = self.http.send(&req)?;
                if !response.is_success() {
                    return Err(api_failure(&response));
                }
                let json = self.json(&response)?;
                json["access_token"]
                    .as_str()
                    .ok_or_else(|| self.protocol("the token response has no access_token".into()))?
                    .to_string()
            }
        };
        self.token = Some(token.clone());
        Ok(Some(token))
    }

    fn json(&self, response: &Response) -> Result<Json, Failure> {
        if response.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Json::Null);
        }
        serde_json::from_slice(&response.body).map_err(|e| {
            let text = String::from_utf8_lossy(&response.body);
            self.protocol(format!("expected JSON, got {:?} ({e})", truncate(text.trim(), 80)))
        })
    }

    fn protocol(&self, message: String) -> Failure {
        Failure::Protocol { url: self.http.base.to_string(), message }
    }
}

/// The node's error document as a failure; a body of another shape (a
/// proxy's error page) still gives the status and a glimpse of the text.
pub(crate) fn api_failure(response: &Response) -> Failure {
    let status = response.status;
    if let Ok(json) = serde_json::from_slice::<Json>(&response.body)
        && let Some(message) = json["error"]["message"].as_str()
    {
        let code = json["error"]["code"].as_str().unwrap_or_default().to_string();
        return Failure::Api { status, code, message: message.to_string() };
    }
    let text = String::from_utf8_lossy(&response.body);
    let text = truncate(text.trim(), 200);
    let message = if text.is_empty() {
        format!("HTTP {status} {}", response.reason)
    } else {
        format!("HTTP {status} {}: {text}", response.reason)
    };
    Failure::Api { status, code: format!("http_{status}"), message }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, body: &str) -> Response {
        Response { status, reason: "Reason".into(), headers: vec![], body: body.as_bytes().to_vec() }
    }

    #[test]
    fn error_documents_give_their_message() {
        let r =
            response(403, r#"{"error":{"code":"license_mismatch","message":"handshake failed: license mismatch"}}"#);
        match api_failure(&r) {
            Failure::Api { status, code, message } => {
                assert_eq!(
                    (status, code.as_str(), message.as_str()),
                    (403, "license_mismatch", "handshake failed: license mismatch")
                )
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            api_failure(&response(502, "<html>bad gateway</html>")).to_string(),
            "HTTP 502 Reason: <html>bad gateway</html>"
        );
        assert_eq!(api_failure(&response(500, "")).to_string(), "HTTP 500 Reason");
    }

    #[test]
    fn credentials_resolve_env_over_context() {
        let ctx = ("cid", "csecret");
        let client = |id: &str, secret: &str| Credentials::Client { id: id.into(), secret: secret.into() };
        assert_eq!(Credentials::resolve(Some("tok".into()), None, None, ctx), Credentials::Bearer("tok".into()));
        assert_eq!(Credentials::resolve(Some("".into()), None, None, ctx), client("cid", "csecret"));
        assert_eq!(Credentials::resolve(None, Some("eid".into()), None, ctx), client("eid", "csecret"));
        assert_eq!(Credentials::resolve(None, Some("e".into()), Some("s".into()), ("", "")), client("e", "s"));
        assert_eq!(Credentials::resolve(None, Some("e".into()), None, ("", "")), Credentials::None);
        assert_eq!(Credentials::resolve(None, None, None, ("", "")), Credentials::None);
    }
}
