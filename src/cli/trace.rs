//! `--debug` and `--trace`: what went over the wire, on stderr.
//!
//! Trace output ends up in bug reports and chat logs, so bearer tokens and
//! every secret-looking field are replaced before anything is printed.

use std::time::Duration;

use serde_json::Value as Json;

use super::response::Response;

/// JSON or form fields whose values are never printed.
const SECRET_FIELDS: [&str; 6] = ["client_secret", "access_token", "issuer_secret_key", "secret", "password", "token"];

const REDACTED: &str = "<redacted>";

/// How much to say about each request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Verbosity {
    /// Nothing.
    Quiet,
    /// Method, URL, status, time.
    Debug,
    /// Also headers and bodies.
    Trace,
}

/// Writes the request log to stderr.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Log(pub(crate) Verbosity);

impl Log {
    /// Before sending: headers and body at trace level.
    pub(crate) fn request(&self, method: &str, url: &str, headers: &[(String, String)], body: &[u8]) {
        if self.0 < Verbosity::Trace {
            return;
        }
        let mut text = format!("> {method} {url}\n");
        for (name, value) in headers {
            text.push_str(&format!("> {name}: {}\n", redact_header(name, value)));
        }
        if !body.is_empty() {
            text.push_str(&format!("> {}\n", redact_body(body)));
        }
        eprint!("{text}");
    }

    /// After the response (or the failure): one line at debug level, the
    /// headers and body too at trace level.
    pub(crate) fn response(&self, method: &str, url: &str, outcome: Result<&Response, &str>, took: Duration) {
        if self.0 < Verbosity::Debug {
            return;
        }
        let ms = took.as_secs_f64() * 1000.0;
        let mut text = match &outcome {
            Ok(r) => format!("[debug] {method} {url} -> {} ({ms:.0} ms)\n", r.status),
            Err(e) => format!("[debug] {method} {url} -> failed: {e} ({ms:.0} ms)\n"),
        };
        if let (Verbosity::Trace, Ok(r)) = (self.0, outcome) {
            for (name, value) in &r.headers {
                text.push_str(&format!("< {name}: {}\n", redact_header(name, value)));
            }
            if !r.body.is_empty() {
                text.push_str(&format!("< {}\n", redact_body(&r.body)));
            }
        }
        eprint!("{text}");
    }
}

/// `Authorization` keeps its scheme and loses its credential.
pub(crate) fn redact_header(name: &str, value: &str) -> String {
    if name.eq_ignore_ascii_case("authorization") || name.eq_ignore_ascii_case("cookie") {
        let scheme = value.split_whitespace().next().filter(|s| value.len() > s.len()).unwrap_or("");
        return if scheme.is_empty() { REDACTED.into() } else { format!("{scheme} {REDACTED}") };
    }
    value.to_string()
}

/// A body for the log: JSON and form bodies with their secrets replaced,
/// anything else as text, at most a few KiB.
pub(crate) fn redact_body(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    if let Ok(mut json) = serde_json::from_slice::<Json>(body) {
        redact_json(&mut json);
        return super::response::truncate(&json.to_string(), 4096);
    }
    let looks_like_form = !text.contains(char::is_whitespace) && text.contains('=');
    if looks_like_form {
        let pairs: Vec<String> = text
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _)) if is_secret(k) => format!("{k}={REDACTED}"),
                _ => pair.to_string(),
            })
            .collect();
        return pairs.join("&");
    }
    super::response::truncate(&text, 4096)
}

fn redact_json(value: &mut Json) {
    match value {
        Json::Object(map) => {
            for (k, v) in map.iter_mut() {
                if is_secret(k) && !v.is_null() {
                    *v = Json::String(REDACTED.into());
                } else {
                    redact_json(v);
                }
            }
        }
        Json::Array(items) => items.iter_mut().for_each(redact_json),
        _ => {}
    }
}

fn is_secret(field: &str) -> bool {
    SECRET_FIELDS.iter().any(|s| field.eq_ignore_ascii_case(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens_lose_their_value() {
        assert_eq!(redact_header("Authorization", "Bearer abc.def"), "Bearer <redacted>");
        assert_eq!(redact_header("authorization", "abc"), "<redacted>");
        assert_eq!(redact_header("Content-Type", "application/json"), "application/json");
    }

    #[test]
    fn json_secrets_are_replaced_at_any_depth() {
        let body = br#"{"peer_id":"p1","credential":{"client_id":"c1","client_secret":"s3cr3t"},"access_token":"t0k"}"#;
        let out = redact_body(body);
        assert!(!out.contains("s3cr3t") && !out.contains("t0k"), "{out}");
        assert!(out.contains(r#""client_id":"c1""#) && out.contains(r#""peer_id":"p1""#), "{out}");
        assert!(redact_body(br#"{"credential":null}"#).contains("null"));
        let list = redact_body(br#"[{"secret":"x"}]"#);
        assert_eq!(list, r#"[{"secret":"<redacted>"}]"#);
    }

    #[test]
    fn form_secrets_are_replaced() {
        let out = redact_body(b"grant_type=client_credentials&client_id=c1&client_secret=s3cr3t");
        assert_eq!(out, "grant_type=client_credentials&client_id=c1&client_secret=<redacted>");
    }

    #[test]
    fn other_text_passes_through_truncated() {
        assert_eq!(redact_body(b"plain text = fine"), "plain text = fine");
        assert_eq!(redact_body(&[b'a'; 5000]).chars().count(), 4097);
    }
}
