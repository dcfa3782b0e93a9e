//! The admin HTTP listener, through the `wippy` binary: health routes,
//! metrics, the bearer token and a taken port.

#[path = "common/harness.rs"]
mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command};
use std::sync::mpsc;
use std::time::Duration;

use common::{app_fixture, run_cmd, wippy_cmd};

/// A `wippy run tests/apps/graceful` child with the admin listener on.
struct Node {
    child: Child,
    port: u16,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `wippy run` of the graceful app (a service that waits for CANCEL) with
/// the admin listener enabled, plus `extra` settings.
fn admin_cmd(extra: &[&str]) -> Command {
    let app = app_fixture("graceful");
    let mut args = vec!["run", app.to_str().unwrap(), "--set", "admin.enabled=true"];
    args.extend_from_slice(extra);
    let mut cmd = wippy_cmd(&args);
    cmd.env_remove("WIPPY_ADMIN__ENABLED");
    cmd
}

/// Starts a node and reads the bound port from its `admin listening` log line.
fn start(extra: &[&str]) -> Node {
    let mut args = vec!["--set", "admin.address=127.0.0.1:0"];
    args.extend_from_slice(extra);
    let mut child = admin_cmd(&args).spawn().expect("spawn wippy");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if line.contains("admin listening")
                && let Some(addr) = line.split("addr=").nth(1)
            {
                let port = addr.trim().rsplit(':').next().and_then(|p| p.parse::<u16>().ok());
                let _ = tx.send(port);
            }
        }
    });
    let port = match rx.recv_timeout(Duration::from_secs(20)) {
        Ok(Some(p)) => p,
        other => {
            let _ = child.kill();
            panic!("no `admin listening addr=...` line on stderr: {other:?}");
        }
    };
    Node { child, port }
}

/// One HTTP/1.1 GET; returns the status code and the raw response.
fn get(port: u16, path: &str, token: Option<&str>) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to admin");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Connection: close\r\n\r\n").unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).expect("read response");
    let status = resp.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or_else(|| panic!("bad response: {resp}"));
    (status, resp)
}

#[test]
fn health_and_metrics_answer() {
    let node = start(&[]);
    let (code, body) = get(node.port, "/livez", None);
    assert_eq!(code, 200, "{body}");
    assert!(body.ends_with("ok"), "{body}");
    // Ready once the node has started; the log line precedes that by a hair.
    let mut ready = 0;
    for _ in 0..100 {
        ready = get(node.port, "/readyz", None).0;
        if ready == 200 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(ready, 200);
    let (code, body) = get(node.port, "/metrics", None);
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("application/openmetrics-text"), "{body}");
    assert!(body.contains("wippy_processes"), "{body}");
    assert!(body.contains("gossip_packets_dropped_total"), "{body}");
}

#[test]
fn token_guards_everything_but_livez() {
    let node = start(&["--set", "admin.token=s3cret"]);
    assert_eq!(get(node.port, "/livez", None).0, 200);
    assert_eq!(get(node.port, "/metrics", None).0, 401);
    assert_eq!(get(node.port, "/metrics", Some("wrong")).0, 401);
    assert_eq!(get(node.port, "/readyz", None).0, 401);
    let (code, body) = get(node.port, "/metrics", Some("s3cret"));
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("wippy_processes"), "{body}");
}

#[test]
fn a_taken_port_stops_start_up() {
    let node = start(&[]);
    let addr = format!("admin.address=127.0.0.1:{}", node.port);
    let out = run_cmd(admin_cmd(&["--set", &addr]), Duration::from_secs(20));
    assert_ne!(out.code, Some(0), "{}", out.describe());
    assert!(out.stderr.contains("admin.address"), "{}", out.describe());
    assert!(out.stderr.contains(&format!("127.0.0.1:{}", node.port)), "{}", out.describe());
    assert!(out.stdout.is_empty(), "{}", out.describe());
}
