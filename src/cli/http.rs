//! A minimal HTTP/1.1 client over `std::net::TcpStream`.
//!
//! The CLI makes a handful of small requests per run, so one connection per
//! request (`Connection: close`, read to EOF) is all it needs, and it keeps
//! an HTTP stack out of the binary. Every wait is bounded: 5 s to connect,
//! 30 s without a byte from the node, and a size cap on the response.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use super::error::Failure;
use super::progress::Progress;
use super::response::Response;
use super::trace::Log;
use super::url::BaseUrl;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Far above any admin response (a peer list of thousands of nodes).
const MAX_RESPONSE: u64 = 16 << 20;

/// One request: a path below the base URL, extra headers and a body.
pub(crate) struct Request<'a> {
    /// `GET`, `POST`, …
    pub(crate) method: &'a str,
    /// An API path such as `/v1/peers`.
    pub(crate) path: &'a str,
    /// Headers besides `Host`, `Connection` and `Content-Length`.
    pub(crate) headers: Vec<(String, String)>,
    /// The body (empty: none).
    pub(crate) body: Vec<u8>,
}

/// Talks to one node.
#[derive(Clone, Debug)]
pub(crate) struct Http {
    /// The node.
    pub(crate) base: BaseUrl,
    /// What to log.
    pub(crate) log: Log,
    /// Whether slow requests show a spinner.
    pub(crate) progress: bool,
}

impl Http {
    /// Sends `req` and reads the whole response, whatever its status.
    pub(crate) fn send(&self, req: &Request<'_>) -> Result<Response, Failure> {
        let url = format!("{}{}", self.base, req.path);
        let headers = self.headers(req);
        self.log.request(req.method, &url, &headers, &req.body);
        let started = Instant::now();
        let result = {
            let _spinner = Progress::start(&self.base.to_string(), self.progress);
            self.exchange(req, &headers)
        };
        let took = started.elapsed();
        match &result {
            Ok(r) => self.log.response(req.method, &url, Ok(r), took),
            Err(e) => self.log.response(req.method, &url, Err(&e.to_string()), took),
        }
        result
    }

    /// The headers as sent, for the request and for the trace.
    fn headers(&self, req: &Request<'_>) -> Vec<(String, String)> {
        let mut headers = vec![
            ("Host".to_string(), self.base.host_header()),
            ("User-Agent".to_string(), concat!("wippy-cli/", env!("CARGO_PKG_VERSION")).to_string()),
            ("Accept".to_string(), "application/json".to_string()),
            ("Connection".to_string(), "close".to_string()),
        ];
        headers.extend(req.headers.iter().cloned());
        if !req.body.is_empty() || matches!(req.method, "POST" | "PUT" | "PATCH") {
            headers.push(("Content-Length".to_string(), req.body.len().to_string()));
        }
        headers
    }

    fn exchange(&self, req: &Request<'_>, headers: &[(String, String)]) -> Result<Response, Failure> {
        let mut stream = self.connect()?;
        let broken = |e: std::io::Error| self.io_failure(e);
        stream.set_read_timeout(Some(READ_TIMEOUT)).map_err(broken)?;
        stream.set_write_timeout(Some(READ_TIMEOUT)).map_err(broken)?;
        stream.write_all(&encode(req.method, &self.base.target(req.path), headers, &req.body)).map_err(broken)?;
        let mut raw = Vec::new();
        stream.take(MAX_RESPONSE + 1).read_to_end(&mut raw).map_err(broken)?;
        if raw.len() as u64 > MAX_RESPONSE {
            return Err(self.protocol(format!("the response is larger than {} MiB", MAX_RESPONSE >> 20)));
        }
        if raw.is_empty() {
            return Err(self.protocol("the node closed the connection without answering".into()));
        }
        Response::parse(&raw).map_err(|e| self.protocol(e))
    }

    /// Tries each address the host resolves to, as a browser would.
    fn connect(&self) -> Result<TcpStream, Failure> {
        let addrs = (self.base.host.as_str(), self.base.port).to_socket_addrs().map_err(|e| Failure::Unreachable {
            url: self.base.to_string(),
            reason: format!("cannot resolve {}: {e}", self.base.host),
        })?;
        let mut last = None;
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
                Ok(s) => return Ok(s),
                Err(e) => last = Some(e),
            }
        }
        let reason = match last {
            Some(e) => describe(&e),
            None => format!("{} resolves to no address", self.base.host),
        };
        Err(Failure::Unreachable { url: self.base.to_string(), reason })
    }

    fn io_failure(&self, e: std::io::Error) -> Failure {
        match e.kind() {
            ErrorKind::ConnectionRefused => Failure::Unreachable { url: self.base.to_string(), reason: describe(&e) },
            _ => self.protocol(describe(&e)),
        }
    }

    fn protocol(&self, message: String) -> Failure {
        Failure::Protocol { url: self.base.to_string(), message }
    }
}

/// The OS error in the words an operator expects.
fn describe(e: &std::io::Error) -> String {
    match e.kind() {
        ErrorKind::ConnectionRefused => "connection refused".into(),
        ErrorKind::TimedOut | ErrorKind::WouldBlock => "timed out".into(),
        ErrorKind::ConnectionReset => "connection reset by the node".into(),
        ErrorKind::HostUnreachable => "host unreachable".into(),
        ErrorKind::NetworkUnreachable => "network unreachable".into(),
        _ => e.to_string(),
    }
}

/// The request bytes: request line, headers, blank line, body.
pub(crate) fn encode(method: &str, target: &str, headers: &[(String, String)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("{method} {target} HTTP/1.1\r\n").into_bytes();
    for (name, value) in headers {
        out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::trace::Verbosity;

    #[test]
    fn requests_are_framed_with_host_and_length() {
        let http =
            Http { base: BaseUrl::parse("http://h:81/admin").unwrap(), log: Log(Verbosity::Quiet), progress: false };
        let req = Request { method: "POST", path: "/v1/peers", headers: vec![], body: b"{}".to_vec() };
        let headers = http.headers(&req);
        let text = String::from_utf8(encode(req.method, &http.base.target(req.path), &headers, &req.body)).unwrap();
        assert!(text.starts_with("POST /admin/v1/peers HTTP/1.1\r\nHost: h:81\r\n"), "{text}");
        assert!(text.contains("\r\nConnection: close\r\n") && text.ends_with("Content-Length: 2\r\n\r\n{}"), "{text}");
        let get = Request { method: "GET", path: "/livez", headers: vec![], body: vec![] };
        assert!(!http.headers(&get).iter().any(|(n, _)| n == "Content-Length"));
    }

    #[test]
    fn a_closed_port_is_reported_as_refused() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let http = Http {
            base: BaseUrl::parse(&format!("http://127.0.0.1:{port}")).unwrap(),
            log: Log(Verbosity::Quiet),
            progress: false,
        };
        let err = http.send(&Request { method: "GET", path: "/livez", headers: vec![], body: vec![] }).unwrap_err();
        assert_eq!(err.to_string(), format!("cannot reach http://127.0.0.1:{port}: connection refused"));
    }
}
