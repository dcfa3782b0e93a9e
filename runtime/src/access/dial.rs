//! The node-to-node identity exchange behind `peers add`: this node posts
//! its hello to the other node's admin API and gets the other's back.
//!
//! A minimal HTTP/1.1 client (one request per connection, `Connection:
//! close`, body read to the end): the only server it talks to is another
//! node's admin API, and a general client would be a large dependency for
//! one call. Connection failures are told apart because operators act on
//! them differently: refused means nothing listens there; a timeout means
//! something on the path drops or stalls the traffic.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

use crate::identity::admission::Hello;

/// How long the whole exchange may take.
pub(crate) const DIAL_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest answer read (a hello with its license is about 1 KiB).
const MAX_RESPONSE: usize = 64 * 1024;

/// The request body of `POST /v1/cluster/handshake`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct HandshakeRequest {
    /// Fresh random bytes (base64) both hellos are bound to.
    pub(crate) challenge: String,
    /// The calling node's hello, bound to `challenge`.
    pub(crate) hello: Hello,
    /// The caller's cluster credential: a node that has no peers yet
    /// adopts it, so the credential of the cluster it joins replaces the
    /// one its own bootstrap made.
    #[serde(default)]
    pub(crate) credential: Option<crate::identity::credential::Credential>,
}

/// The answer: the called node's hello, bound to the challenge too.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct HandshakeResponse {
    /// The called node's hello.
    pub(crate) hello: Hello,
}

/// Why the exchange failed.
#[derive(Debug, Error)]
pub(crate) enum DialError {
    /// Nothing accepts connections at the address.
    #[error("handshake failed: connection refused")]
    Refused,
    /// Connecting or the answer took longer than [`DIAL_TIMEOUT`].
    #[error("handshake failed: connection timeout")]
    Timeout,
    /// The other node answered with an API error.
    #[error("{message}")]
    Remote {
        /// Its HTTP status.
        status: u16,
        /// Its error code.
        code: String,
        /// Its message.
        message: String,
    },
    /// Anything else: an unresolvable name, a reset, an answer that is not
    /// the other node's API.
    #[error("handshake failed: {0}")]
    Other(String),
}

/// Posts `request` to `address` (`host:port`, optionally `http://`).
pub(crate) async fn exchange(address: &str, request: &HandshakeRequest) -> Result<HandshakeResponse, DialError> {
    exchange_within(address, request, DIAL_TIMEOUT).await
}

async fn exchange_within(
    address: &str,
    request: &HandshakeRequest,
    limit: Duration,
) -> Result<HandshakeResponse, DialError> {
    let host = address.trim().trim_start_matches("http://").trim_end_matches('/');
    if host.starts_with("https://") {
        return Err(DialError::Other("https is not supported between nodes' admin APIs".into()));
    }
    let body = serde_json::to_vec(request).expect("a handshake request always serializes");
    let work = async {
        let mut stream = TcpStream::connect(host).await.map_err(|e| match e.kind() {
            std::io::ErrorKind::ConnectionRefused => DialError::Refused,
            _ => DialError::Other(format!("cannot connect to {host}: {e}")),
        })?;
        let head = format!(
            "POST /v1/cluster/handshake HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        let io = |e: std::io::Error| DialError::Other(format!("{host}: {e}"));
        stream.write_all(head.as_bytes()).await.map_err(io)?;
        stream.write_all(&body).await.map_err(io)?;
        let mut raw = Vec::new();
        (&mut stream).take(MAX_RESPONSE as u64).read_to_end(&mut raw).await.map_err(io)?;
        Ok::<_, DialError>(raw)
    };
    let raw = timeout(limit, work).await.map_err(|_| DialError::Timeout)??;
    parse(&raw)
}

/// Reads an HTTP answer: a 2xx with a [`HandshakeResponse`], or an API error.
fn parse(raw: &[u8]) -> Result<HandshakeResponse, DialError> {
    let not_api = || DialError::Other("the address did not answer like a wippy admin API".into());
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or_else(not_api)?;
    let head = std::str::from_utf8(&raw[..split]).map_err(|_| not_api())?;
    let body = &raw[split + 4..];
    let status: u16 = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).ok_or_else(not_api)?;
    if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        return Err(DialError::Other("unexpected chunked answer".into()));
    }
    if (200..300).contains(&status) {
        return serde_json::from_slice(body).map_err(|_| not_api());
    }
    #[derive(Deserialize)]
    struct ErrorBody {
        error: ErrorInner,
    }
    #[derive(Deserialize)]
    struct ErrorInner {
        code: String,
        message: String,
    }
    let e: ErrorBody = serde_json::from_slice(body).map_err(|_| not_api())?;
    Err(DialError::Remote { status, code: e.error.code, message: e.error.message })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_errors_and_garbage_are_told_apart() {
        let err = b"HTTP/1.1 403 Forbidden\r\ncontent-length: 9\r\n\r\n{\"error\":{\"code\":\"license_mismatch\",\"message\":\"handshake failed: license mismatch\"}}";
        match parse(err) {
            Err(DialError::Remote { status: 403, code, message }) => {
                assert_eq!(code, "license_mismatch");
                assert_eq!(message, "handshake failed: license mismatch");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(parse(b"SSH-2.0-OpenSSH\r\n"), Err(DialError::Other(_))));
        assert!(matches!(parse(b"HTTP/1.1 200 OK\r\n\r\nnot json"), Err(DialError::Other(_))));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_closed_port_is_refused_and_a_silent_one_times_out() {
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let closed = free.local_addr().unwrap().to_string();
        drop(free);
        let key = crate::identity::node_key::NodeKey::from_seed([1; 32]);
        let local = crate::identity::admission::Local {
            node: "a".into(),
            key,
            license: None,
            api_address: None,
            gossip_address: None,
        };
        let req = HandshakeRequest {
            challenge: "c".into(),
            hello: local.hello(crate::identity::admission::Binding::Challenge(b"c")),
            credential: None,
        };
        assert!(matches!(exchange(&closed, &req).await, Err(DialError::Refused)));

        // Accepts, never answers.
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = silent.local_addr().unwrap().to_string();
        let err = exchange_within(&addr, &req, Duration::from_millis(300)).await.unwrap_err();
        assert!(matches!(err, DialError::Timeout), "{err:?}");
        assert_eq!(err.to_string(), "handshake failed: connection timeout");
        drop(silent);
    }
}
