//! Process traffic between `wippy run` processes over the internode mesh:
//! messages in order, tables intact, monitor, link, cancel and terminate on
//! remote pids, node-down signals when the peer's node is killed, mesh
//! metrics, and a mesh peer with another secret refused.

#[path = "common/harness.rs"]
mod common;

use std::net::TcpListener;
use std::time::Duration;

use common::*;

const T: Duration = Duration::from_secs(20);
const PEER_LUA: &str = include_str!("apps/mesh/src/peer.lua");
const DRIVER_LUA: &str = include_str!("apps/mesh/src/driver.lua");

/// The driver's app: the fixture's entries, with the driver as the service.
fn driver_app(peer: &str, count: u32) -> std::path::PathBuf {
    let index = std::fs::read_to_string(app_fixture("mesh").join("src/_index.yaml")).unwrap();
    let index = index.replace(
        "    process: app:peer\n    host: app:processes\n",
        &format!("    process: app:driver\n    host: app:processes\n    input: [\"{peer}\", {count}]\n"),
    );
    assert!(index.contains("app:driver\n"), "fixture layout changed");
    write_tree(
        "mesh-driver",
        &[("src/_index.yaml", &index), ("src/peer.lua", PEER_LUA), ("src/driver.lua", DRIVER_LUA)],
    )
}

fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn failed(lines: &[(std::time::Instant, String)]) -> bool {
    lines.iter().any(|(_, l)| l.starts_with("FAIL"))
}

/// Starts the peer node `mb` and the driver node `ma` (secrets as given,
/// `extra_a`/`extra_b` appended to their settings), and waits until the
/// driver passed every check up to the node-down one.
fn drive(count: u32, b_secret: &str, extra_b: &[String], a_secret: &str, extra_a: &[String]) -> (Running, Running) {
    let (pa, pb) = (free_port(), free_port());
    let mut b = cluster_node(&app_fixture("mesh"), "mb", pb, None, b_secret, extra_b);
    let line = b.wait_line(T, |l| l.starts_with("peer "));
    let peer = line.trim_start_matches("peer ").to_owned();
    assert!(peer.starts_with("{mb@app:processes|"), "{peer}");
    let mut a = cluster_node(&driver_app(&peer, count), "ma", pa, Some(pb), a_secret, extra_a);
    a.wait_until("the driver to reach the node-down check", T, |ls| {
        failed(ls) || ls.iter().any(|(_, l)| l == "ready for node down")
    });
    let lines = a.lines();
    assert!(!failed(&a.timed_lines()), "{lines:#?}");
    let fifo = format!("ok fifo {count}");
    for check in [fifo.as_str(), "ok table", "ok ghost", "ok cancel", "ok terminate", "ok link"] {
        assert!(lines.iter().any(|l| l == check), "missing {check:?} in {lines:#?}");
    }
    (a, b)
}

#[test]
fn remote_pids_behave_like_local_ones() {
    let admin = free_tcp_port();
    let extra = ["admin.enabled=true".to_owned(), format!("admin.address=127.0.0.1:{admin}")];
    let (mut a, mut b) = drive(2000, SECRET, &[], SECRET, &extra);
    // The peer saw the cancel with its reason, and was restarted after failing.
    b.wait_until("the peer's restart", T, |ls| ls.iter().filter(|(_, l)| l.starts_with("peer ")).count() == 2);
    assert!(b.lines().iter().any(|l| l == "child cancelled: stop please"), "{:#?}", b.lines());

    let (code, body) = http_get(admin, "/metrics", None);
    assert_eq!(code, 200, "{body}");
    let sent = metric(&body, "mesh_frames_sent_total{class=\"relay\"}").unwrap_or(0.0);
    let received = metric(&body, "mesh_frames_received_total{class=\"relay\"}").unwrap_or(0.0);
    assert!(sent >= 1.0 && received >= 1.0, "relay frames sent {sent}, received {received}\n{body}");
    assert_eq!(metric(&body, "gossip_members{state=\"alive\"}"), Some(2.0), "{body}");

    b.signal(libc::SIGKILL);
    let _ = b.wait(T);
    a.wait_until("node-down signals", T, |ls| failed(ls) || ls.iter().any(|(_, l)| l == "ok node down"));
    assert!(!failed(&a.timed_lines()), "{:#?}", a.lines());
    let (_, body) = http_get(admin, "/metrics", None);
    assert_eq!(metric(&body, "gossip_members{state=\"dead\"}"), Some(1.0), "{body}");

    a.signal(libc::SIGTERM);
    let out = a.wait(T);
    assert!(!out.stderr.contains("panicked at"), "{}", out.describe());
}

/// Halfway through a key rotation the two nodes send under different keys,
/// each accepting the other's: gossip and the mesh both keep working.
#[test]
fn nodes_mid_rotation_still_talk() {
    let accept = |key: &str| vec![format!("cluster.membership.accept_secret_keys={key}")];
    let (mut a, mut b) = drive(200, OTHER_SECRET, &accept(SECRET), SECRET, &accept(OTHER_SECRET));
    for n in [&mut a, &mut b] {
        n.signal(libc::SIGTERM);
        let out = n.wait(T);
        assert!(!out.stderr.contains("panicked at"), "{}", out.describe());
    }
}
