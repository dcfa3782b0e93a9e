//! The admin HTTP listener, through the `wippy` binary: health routes,
//! metrics, the bearer token and a taken port.

#[path = "common/harness.rs"]
mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command};
use std::sync::mpsc;
use std::time::Duration;

use common::{app_fixture, http_get, run_cmd, wippy_cmd};

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

#[test]
fn health_and_metrics_answer() {
    let node = start(&[]);
    let (code, body) = http_get(node.port, "/livez", None);
    assert_eq!(code, 200, "{body}");
    assert!(body.contains(r#""status":"ok""#), "{body}");
    assert!(body.contains(r#""gossip":"ok""#), "{body}");
    // Ready once the node has started; the log line precedes that by a hair.
    let mut ready = 0;
    for _ in 0..100 {
        ready = http_get(node.port, "/readyz", None).0;
        if ready == 200 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(ready, 200);
    let (code, body) = http_get(node.port, "/metrics", None);
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("application/openmetrics-text"), "{body}");
    assert!(body.contains("wippy_processes"), "{body}");
    assert!(body.contains("gossip_packets_dropped_total"), "{body}");
}

#[test]
fn token_guards_everything_but_livez() {
    let node = start(&["--set", "admin.token=s3cret"]);
    assert_eq!(http_get(node.port, "/livez", None).0, 200);
    assert_eq!(http_get(node.port, "/metrics", None).0, 401);
    assert_eq!(http_get(node.port, "/metrics", Some("wrong")).0, 401);
    assert_eq!(http_get(node.port, "/readyz", None).0, 401);
    let (code, body) = http_get(node.port, "/metrics", Some("s3cret"));
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

/// A clustered node whose only seed never answers: alive during the
/// isolation grace, then `/livez` fails and says why; the score shows it.
#[test]
fn an_isolated_node_fails_liveness_after_the_grace() {
    let gossip = format!("cluster.membership.bind_port={}", common::free_port());
    let seed = format!("cluster.membership.join_addrs=127.0.0.1:{}", common::free_port());
    let secret = format!("cluster.membership.secret_key={}", common::SECRET);
    let node = start(&[
        "--set",
        "cluster.enabled=true",
        "--set",
        "cluster.membership.bind_addr=127.0.0.1",
        "--set",
        "cluster.internode.bind_addr=127.0.0.1",
        "--set",
        &gossip,
        "--set",
        &seed,
        "--set",
        &secret,
        "--set",
        "cluster.membership.isolation_grace=1500ms",
    ]);
    assert_eq!(http_get(node.port, "/livez", None).0, 200, "inside the grace");
    let mut last = (0, String::new());
    for _ in 0..100 {
        last = http_get(node.port, "/livez", None);
        if last.0 == 503 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(last.0, 503, "{}", last.1);
    assert!(last.1.contains("no other member reachable"), "{}", last.1);
    let (_, body) = http_get(node.port, "/metrics", None);
    assert_eq!(common::metric(&body, "gossip_health_score"), Some(1.0), "{body}");
}
