//! Operator-side helpers: clustered `wippy run` nodes with the admin API on,
//! JSON requests to it, licenses, and the CLI against it.
#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{SECRET, app_fixture, cluster_args, free_port, temp_dir, wippy_cmd};

/// How long a node gets to come up, and a state to converge.
pub const T: Duration = Duration::from_secs(20);

/// A clustered node with its admin API, its stderr kept for inspection.
pub struct OpNode {
    pub name: String,
    pub ip: String,
    pub gossip_port: u16,
    pub data_dir: PathBuf,
    pub api: String,
    child: Option<Child>,
    stderr: Arc<Mutex<Vec<String>>>,
}

/// How to start an [`OpNode`].
#[derive(Clone)]
pub struct Spec {
    pub name: String,
    pub ip: String,
    pub gossip_port: u16,
    pub data_dir: PathBuf,
    pub secret: String,
    pub join: Option<String>,
    pub extra: Vec<String>,
}

impl Spec {
    /// Node `name` on `127.0.0.<host>` with a fresh data dir.
    pub fn new(name: &str, host: u8) -> Spec {
        Spec {
            name: name.to_owned(),
            ip: format!("127.0.0.{host}"),
            gossip_port: free_port(),
            data_dir: temp_dir(&format!("op-{name}")),
            secret: SECRET.to_owned(),
            join: None,
            extra: Vec::new(),
        }
    }

    pub fn set(mut self, kv: &str) -> Spec {
        self.extra.push(kv.to_owned());
        self
    }

    pub fn join(mut self, node: &OpNode) -> Spec {
        self.join = Some(format!("{}:{}", node.ip, node.gossip_port));
        self
    }

    /// The node's command, not yet started.
    pub fn command(&self) -> Command {
        let mut extra = vec![
            "admin.enabled=true".to_owned(),
            format!("admin.address={}:0", self.ip),
            format!("node.data_dir={}", self.data_dir.display()),
            "logger.level=info".to_owned(),
        ];
        extra.extend(self.extra.iter().cloned());
        let args = cluster_args(
            &app_fixture("graceful"),
            &self.name,
            &self.ip,
            self.gossip_port,
            self.join.clone(),
            &self.secret,
            &extra,
        );
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        wippy_cmd(&refs)
    }

    /// Starts the node and waits for its admin API.
    pub fn start(&self) -> OpNode {
        let mut child = self.command().spawn().expect("spawn wippy");
        let stderr: Arc<Mutex<Vec<String>>> = Arc::default();
        let lines = stderr.clone();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                lines.lock().unwrap().push(line);
            }
        });
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut BufReader::new(out), &mut std::io::sink());
        });
        let mut node = OpNode {
            name: self.name.clone(),
            ip: self.ip.clone(),
            gossip_port: self.gossip_port,
            data_dir: self.data_dir.clone(),
            api: String::new(),
            child: Some(child),
            stderr,
        };
        let deadline = Instant::now() + T;
        while Instant::now() < deadline {
            let found = node.stderr_lines().iter().find_map(|l| {
                if !l.contains("admin listening") {
                    return None;
                }
                l.split("addr=").nth(1).map(|a| a.split_whitespace().next().unwrap_or("").to_owned())
            });
            if let Some(addr) = found {
                node.api = addr;
                return node;
            }
            if let Some(status) = node.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("{} exited with {status} before its API came up:\n{}", self.name, node.stderr_text());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("{}: no `admin listening` line:\n{}", self.name, node.stderr_text());
    }
}

impl OpNode {
    pub fn stderr_lines(&self) -> Vec<String> {
        self.stderr.lock().unwrap().clone()
    }

    pub fn stderr_text(&self) -> String {
        self.stderr_lines().join("\n")
    }

    /// `http://ip:port`.
    pub fn url(&self) -> String {
        format!("http://{}", self.api)
    }

    /// One request; returns the status and the JSON body (Null when empty
    /// or not JSON).
    pub fn req(&self, method: &str, path: &str, body: Option<&Value>, token: Option<&str>) -> (u16, Value) {
        let (status, text) = http(&self.api, method, path, body.map(|b| b.to_string()).as_deref(), token, None);
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// A token from `/v1/oauth/token` with `scope` (all when empty).
    pub fn token(&self, client_id: &str, secret: &str, scope: &str) -> (u16, Value) {
        let form = format!("grant_type=client_credentials&client_id={client_id}&client_secret={secret}&scope={scope}");
        let (status, text) =
            http(&self.api, "POST", "/v1/oauth/token", Some(&form), None, Some("application/x-www-form-urlencoded"));
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Waits up to [`T`] for `pred` on this node's stderr.
    pub fn wait_stderr(&self, what: &str, pred: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + T;
        while Instant::now() < deadline {
            if self.stderr_lines().iter().any(|l| pred(l)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("{}: no stderr line with {what}:\n{}", self.name, self.stderr_text());
    }

    /// Waits for the process to exit on its own; returns its code.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        let child = self.child.as_mut()?;
        while Instant::now() < deadline {
            if let Some(status) = child.try_wait().unwrap() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("{} did not exit within {timeout:?}:\n{}", self.name, self.stderr_text());
    }

    /// Stops the node with SIGTERM and waits.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let deadline = Instant::now() + T;
            while Instant::now() < deadline {
                if c.try_wait().unwrap().is_some() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for OpNode {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// One HTTP/1.1 request to `addr` (`ip:port`); returns status and body.
pub fn http(
    addr: &str,
    method: &str,
    path: &str,
    body: Option<&str>,
    token: Option<&str>,
    content_type: Option<&str>,
) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    let body = body.unwrap_or("");
    let ctype = content_type.unwrap_or("application/json");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).expect("read response");
    let status = resp.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or_else(|| panic!("bad response: {resp}"));
    let body = resp.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

/// A license signed by the issuer key `seed`.
pub fn license(seed: u8, id: &str, cluster: &str, max_nodes: u32) -> Value {
    let issuer = wippy_runtime::identity::license::IssuerKey::from_seed([seed; 32]);
    let l = issuer.issue(id.into(), cluster.into(), max_nodes, 0, 0);
    serde_json::from_str(&l.to_json()).unwrap()
}

/// Bootstraps `node` with `license`; returns (client_id, client_secret)
/// when the node made the credential.
pub fn bootstrap(node: &OpNode, license: &Value) -> Option<(String, String)> {
    let (status, body) = node.req("POST", "/v1/bootstrap", Some(license), None);
    assert_eq!(status, 200, "{}: bootstrap: {body}", node.name);
    let c = &body["credential"];
    c.is_object()
        .then(|| (c["client_id"].as_str().unwrap().to_owned(), c["client_secret"].as_str().unwrap().to_owned()))
}

/// A bearer token with every scope.
pub fn admin_token(node: &OpNode, cred: &(String, String)) -> String {
    let (status, body) = node.token(&cred.0, &cred.1, "");
    assert_eq!(status, 200, "{}: token: {body}", node.name);
    body["access_token"].as_str().unwrap().to_owned()
}

/// Polls `f` until it returns `Some` or [`T`] passes.
pub fn eventually<R>(what: &str, mut f: impl FnMut() -> Option<R>) -> R {
    let deadline = Instant::now() + T;
    loop {
        if let Some(r) = f() {
            return r;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The peers list of `node` as (node name → peer object).
pub fn peers(node: &OpNode, token: &str) -> Vec<Value> {
    let (status, body) = node.req("GET", "/v1/peers", None, Some(token));
    assert_eq!(status, 200, "{body}");
    body["peers"].as_array().unwrap().clone()
}

/// The peer object for node `name` in `list`.
pub fn peer<'a>(list: &'a [Value], name: &str) -> Option<&'a Value> {
    list.iter().find(|p| p["node"] == name)
}

/// A path under a fresh temp dir.
pub fn temp_file(tag: &str, name: &str) -> PathBuf {
    temp_dir(tag).join(name)
}

/// Writes `v` as JSON to `path`.
pub fn write_json(path: &Path, v: &Value) {
    std::fs::write(path, serde_json::to_string_pretty(v).unwrap()).unwrap();
}
