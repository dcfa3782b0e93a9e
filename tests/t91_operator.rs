//! The operator's side through real `wippy run` processes and HTTP: node
//! identity, license bootstrap, tokens and scopes, peer management across
//! three nodes, credential rotation with its grace window, remove-self,
//! and every handshake error produced by a real mismatched node.

#[path = "common/harness.rs"]
mod common;
#[path = "common/operator.rs"]
mod operator;

use std::time::Duration;

use operator::*;
use serde_json::{Value, json};

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("")
}

fn message(body: &Value) -> &str {
    body["error"]["message"].as_str().unwrap_or("")
}

#[test]
fn identity_bootstrap_tokens_and_scopes_on_one_node() {
    let spec = Spec::new("solo", 1);
    let node = spec.start();

    // Health probes answer JSON with each check.
    let (status, live) = node.req("GET", "/livez", None, None);
    assert_eq!((status, live["status"].as_str()), (200, Some("ok")), "{live}");
    assert_eq!(live["checks"]["gossip"], "ok");
    let ready = eventually("ready", || {
        let (s, b) = node.req("GET", "/readyz", None, None);
        (s == 200).then_some(b)
    });
    assert_eq!(ready["checks"]["started"], "ok");

    // Identity before bootstrap: a peer id and key, no license.
    let (status, id) = node.req("GET", "/v1/cluster/identity", None, None);
    assert_eq!(status, 200, "{id}");
    let peer_id = id["peer_id"].as_str().unwrap().to_owned();
    assert!(peer_id.starts_with('p'), "{id}");
    assert!(id["license_id"].is_null());
    let (status, body) = node.req("GET", "/v1/license", None, None);
    assert_eq!((status, code(&body)), (404, "no_license"), "{body}");

    // The API needs a token; errors are JSON with a code.
    let (status, body) = node.req("GET", "/v1/peers", None, None);
    assert_eq!((status, code(&body)), (401, "unauthorized"), "{body}");
    let (status, body) = node.req("GET", "/v1/peers", None, Some("garbage"));
    assert_eq!((status, code(&body)), (401, "unauthorized"), "{body}");
    let (status, body) = node.req("GET", "/v1/nowhere", None, None);
    assert_eq!((status, code(&body)), (404, "not_found"), "{body}");

    // A bad license changes nothing.
    let mut forged = license(1, "lic_a", "cluster-a", 3);
    forged["max_nodes"] = json!(99);
    let (status, body) = node.req("POST", "/v1/bootstrap", Some(&forged), None);
    assert_eq!((status, code(&body)), (400, "invalid_license"), "{body}");
    let (status, body) = node.req("POST", "/v1/bootstrap", Some(&json!({"nonsense": 1})), None);
    assert_eq!((status, code(&body)), (400, "invalid_license"), "{body}");

    // Bootstrap: the license is installed and the credential made.
    let lic = license(1, "lic_a", "cluster-a", 3);
    let (status, body) =
        node.req("POST", "/v1/bootstrap", Some(&json!({"license": lic.clone(), "name": "first"})), None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["license_id"], "lic_a");
    let cred = (
        body["credential"]["client_id"].as_str().unwrap().to_owned(),
        body["credential"]["client_secret"].as_str().unwrap().to_owned(),
    );
    // Once installed, bootstrap needs cluster.admin.
    let (status, body) = node.req("POST", "/v1/bootstrap", Some(&lic), None);
    assert_eq!((status, code(&body)), (401, "unauthorized"), "{body}");

    // Tokens: a wrong secret, an unknown scope, then scoped tokens.
    let (status, body) = node.token(&cred.0, "wrong", "");
    assert_eq!((status, code(&body)), (401, "invalid_client"), "{body}");
    let (status, body) = node.token(&cred.0, &cred.1, "urn:wippy:everything");
    assert_eq!((status, code(&body)), (400, "invalid_scope"), "{body}");
    let (status, read) = node.token(&cred.0, &cred.1, "urn:wippy:peers.read");
    assert_eq!(status, 200, "{read}");
    assert_eq!(read["token_type"], "Bearer");
    assert!(read["expires_in"].as_u64().unwrap() > 0);
    let read = read["access_token"].as_str().unwrap();
    let list = peers(&node, read);
    let me = peer(&list, "solo").unwrap();
    assert_eq!(
        (me["local"].as_bool(), me["id"].as_str(), me["name"].as_str()),
        (Some(true), Some(&*peer_id), Some("first"))
    );
    let (status, body) = node.req("POST", "/v1/peers", Some(&json!({"address": "127.0.0.1:1"})), Some(read));
    assert_eq!((status, code(&body)), (403, "insufficient_scope"), "{body}");
    assert!(message(&body).contains("urn:wippy:peers.write"), "{body}");
    let (status, body) = node.req("POST", "/v1/cluster/sync", None, Some(read));
    assert_eq!((status, code(&body)), (403, "insufficient_scope"), "{body}");
    let admin = admin_token(&node, &cred);
    let (status, body) = node.req("POST", "/v1/bootstrap", Some(&license(1, "lic_b", "cluster-a", 3)), Some(&admin));
    assert_eq!((status, code(&body)), (409, "already_bootstrapped"), "{body}");
    let (status, body) = node.req("POST", "/v1/cluster/sync", None, Some(&admin));
    assert_eq!((status, body["peers"].as_u64()), (200, Some(0)), "{body}");

    // Peer routes on the local peer.
    let (status, body) = node.req("PUT", "/v1/peers/self", Some(&json!({"name": "renamed"})), Some(&admin));
    assert_eq!((status, body["name"].as_str()), (200, Some("renamed")), "{body}");
    let (status, body) = node.req("GET", &format!("/v1/peers/{peer_id}"), None, Some(&admin));
    assert_eq!((status, body["name"].as_str()), (200, Some("renamed")), "{body}");
    let (status, body) = node.req("DELETE", &format!("/v1/peers/{peer_id}"), None, Some(&admin));
    assert_eq!((status, code(&body)), (400, "cannot_delete_local_peer"), "{body}");
    assert_eq!(message(&body), "cannot delete local peer, use 'peers remove-self' instead");
    let (status, body) = node.req("GET", "/v1/peers/p000000000000000000000000", None, Some(&admin));
    assert_eq!((status, code(&body)), (404, "peer_not_found"), "{body}");
    let (status, body) = node.req("PUT", "/v1/peers/self", Some(&json!({"bogus": 1})), Some(&admin));
    assert_eq!((status, code(&body)), (400, "bad_request"), "{body}");

    // License and status.
    let (status, body) = node.req("GET", "/v1/license", None, None);
    assert_eq!(status, 200, "{body}");
    assert_eq!((body["max_nodes"].as_u64(), body["nodes_in_use"].as_u64()), (Some(3), Some(1)));
    assert_eq!(body["status"], "valid");
    let (status, body) = node.req("GET", "/v1/cluster/status", None, Some(read));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["members"]["alive"], 1);
    assert_eq!(body["credential"]["generation"], 0);

    // A restart keeps the identity, the license, the credential and the label.
    drop(node);
    let node = spec.start();
    let (_, id) = node.req("GET", "/v1/cluster/identity", None, None);
    assert_eq!((id["peer_id"].as_str(), id["license_id"].as_str()), (Some(&*peer_id), Some("lic_a")));
    let admin = admin_token(&node, &cred);
    assert_eq!(peer(&peers(&node, &admin), "solo").unwrap()["name"], "renamed");
}

#[test]
fn three_nodes_add_peers_rotate_the_credential_and_one_removes_itself() {
    let lic = license(2, "lic_3", "cluster-3", 5);
    let grace = ["admin.credential_grace=4s"];
    let specs: Vec<Spec> =
        (1..=3u8).map(|i| grace.iter().fold(Spec::new(&format!("n{i}"), i), |s, kv| s.set(kv))).collect();
    let nodes: Vec<OpNode> = specs.iter().map(Spec::start).collect();
    let cred = bootstrap(&nodes[0], &lic).expect("the first node makes the credential");
    for n in &nodes[1..] {
        bootstrap(n, &lic);
    }
    let admin = admin_token(&nodes[0], &cred);

    // n1 adds n2 and n3 by their admin API addresses.
    for n in &nodes[1..] {
        let (status, body) = nodes[0].req("POST", "/v1/peers", Some(&json!({"address": n.api})), Some(&admin));
        assert_eq!(status, 201, "{body}");
        assert_eq!((body["node"].as_str(), body["local"].as_bool()), (Some(n.name.as_str()), Some(false)));
        assert_eq!(body["api_address"].as_str(), Some(n.api.as_str()));
    }
    // Adding one again: it is already there.
    let (status, body) = nodes[0].req("POST", "/v1/peers", Some(&json!({"address": nodes[1].api})), Some(&admin));
    assert_eq!((status, message(&body)), (409, "peer already exists in cluster"), "{body}");

    // Everyone sees everyone alive and admitted (n2 and n3 met through
    // gossip, not through an operator).
    for n in &nodes {
        eventually(&format!("{} sees all three alive and active", n.name), || {
            let (_, body) = n.req("GET", "/v1/peers", None, Some(&admin_for(n, &cred)));
            let list = body["peers"].as_array()?.clone();
            let ok = ["n1", "n2", "n3"]
                .iter()
                .all(|name| peer(&list, name).is_some_and(|p| p["state"] == "alive" && p["status"] == "active"));
            ok.then_some(())
        });
    }

    // Started apart with the default bootstrap_expect of 1, each node
    // formed a Raft core of its own: n1 reports the other two, by name.
    let foreign = eventually("n1 reports n2 and n3 in other Raft clusters", || {
        let (_, body) = nodes[0].req("GET", "/v1/cluster/status", None, Some(&admin));
        let list = body["raft"]["foreign_members"].as_array()?.clone();
        (list.len() == 2).then_some(list)
    });
    let named: Vec<&str> = foreign.iter().filter_map(|m| m["node"].as_str()).collect();
    assert_eq!(named, ["n2", "n3"], "{foreign:?}");
    nodes[0]
        .wait_stderr("the split Raft warning", |l| l.contains("belongs to another Raft cluster") && l.contains("n2"));

    // The credential reached every node: n3 issues tokens for it.
    let t3 = admin_for(&nodes[2], &cred);
    let (status, body) = nodes[2].req("GET", "/v1/cluster/status", None, Some(&t3));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["members"]["alive"], 3, "{body}");

    // Rotation on n2: the new secret works everywhere, the old one until
    // the grace window ends, then nowhere.
    let t2 = admin_for(&nodes[1], &cred);
    let (status, rotated) = nodes[1].req("POST", "/v1/cluster/credential/rotate", None, Some(&t2));
    assert_eq!(status, 200, "{rotated}");
    assert_eq!(rotated["generation"], 1);
    let new = (cred.0.clone(), rotated["client_secret"].as_str().unwrap().to_owned());
    for n in &nodes {
        eventually(&format!("{} takes the new secret", n.name), || {
            (n.token(&new.0, &new.1, "").0 == 200).then_some(())
        });
        assert_eq!(n.token(&cred.0, &cred.1, "").0, 200, "{}: the old secret works during the grace", n.name);
    }
    for n in &nodes {
        eventually(&format!("{} refuses the old secret after the grace", n.name), || {
            (n.token(&cred.0, &cred.1, "").0 == 401).then_some(())
        });
        assert_eq!(n.token(&new.0, &new.1, "").0, 200);
    }

    // A forced sync answers with the peers it reached.
    let t1 = admin_for(&nodes[0], &new);
    let (status, body) = nodes[0].req("POST", "/v1/cluster/sync", None, Some(&t1));
    assert_eq!((status, body["peers"].as_u64()), (200, Some(2)), "{body}");

    // n3 removes itself: the others mark it deactivated and see it leave;
    // it exits, and its identity does not start again.
    let mut nodes = nodes;
    let t3 = admin_for(&nodes[2], &new);
    let n3_id = peer(&peers(&nodes[2], &t3), "n3").unwrap()["id"].as_str().unwrap().to_owned();
    let (status, body) = nodes[2].req("DELETE", "/v1/peers/self", None, Some(&t3));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["peer_id"].as_str(), Some(n3_id.as_str()));
    assert_eq!(nodes[2].wait_exit(operator::T), Some(0), "{}", nodes[2].stderr_text());
    for n in &nodes[..2] {
        let token = admin_for(n, &new);
        eventually(&format!("{} marks n3 deactivated", n.name), || {
            let list = peers(n, &token);
            let p = peer(&list, "n3")?;
            (p["status"] == "deactivated" && p["state"] != "alive").then_some(())
        });
        let (status, body) = n.req("GET", &format!("/v1/peers/{n3_id}"), None, Some(&token));
        assert_eq!((status, body["status"].as_str()), (200, Some("deactivated")), "{body}");
    }
    let out = common::run_cmd(specs[2].command(), Duration::from_secs(20));
    assert_ne!(out.code, Some(0), "{}", out.describe());
    assert!(out.stderr.contains("removed itself"), "{}", out.describe());

    // Deleting a remote peer on n1: it is marked removed there, the
    // connection it holds into n1 closes at once, and its next ones are
    // refused.
    let (status, body) = nodes[0].req("DELETE", &format!("/v1/peers/{}", peer_id(&nodes[1], &t1)), None, Some(&t1));
    assert_eq!((status, body["status"].as_str()), (200, Some("removed")), "{body}");
    eventually("n1 closes n2's connection and refuses its next one", || {
        let log = nodes[0].stderr_text();
        (log.contains("mesh: connection closed: peer removed (node n2)")
            && log.contains("handshake failed: peer removed (node n2)"))
        .then_some(())
    });
    for n in &mut nodes {
        n.stop();
    }
}

/// Two nodes started apart with the default `bootstrap_expect` of 1 form
/// two Raft cores; `peers add` joins them in gossip but not in Raft. The
/// node reports the other core's member, and the documented way out works:
/// the second node, its Raft state deleted, joins the first core on restart
/// (its admitted peers count as seeds, so it does not bootstrap alone).
#[test]
fn a_second_raft_core_is_reported_and_its_node_rejoins_the_first() {
    let lic = license(5, "lic_r", "cluster-r", 3);
    let specs = [Spec::new("r1", 4), Spec::new("r2", 5)];
    let mut nodes: Vec<OpNode> = specs.iter().map(Spec::start).collect();
    let cred = bootstrap(&nodes[0], &lic).unwrap();
    let own = bootstrap(&nodes[1], &lic).unwrap();
    let admin = admin_token(&nodes[0], &cred);
    let status_with = |n: &OpNode, c| n.req("GET", "/v1/cluster/status", None, Some(&admin_for(n, c))).1;
    let status = |n: &OpNode| status_with(n, &cred);
    let core = |n: &OpNode, c| {
        eventually(&format!("{} leads a Raft core of its own", n.name), || {
            let body = status_with(n, c);
            (body["raft"]["role"] == "leader").then(|| body["raft"]["cluster_id"].as_str().map(str::to_owned))?
        })
    };
    let (first, second) = (core(&nodes[0], &cred), core(&nodes[1], &own));
    assert_ne!(first, second);

    let (code, body) = nodes[0].req("POST", "/v1/peers", Some(&json!({"address": nodes[1].api})), Some(&admin));
    assert_eq!(code, 201, "{body}");
    let foreign = eventually("r1 reports r2's core", || {
        let body = status(&nodes[0]);
        let list = body["raft"]["foreign_members"].as_array()?.clone();
        (!list.is_empty()).then_some(list)
    });
    assert_eq!(foreign, [json!({"node": "r2", "raft_cluster": second})]);
    nodes[0].wait_stderr("the split Raft warning", |l| l.contains("belongs to another Raft cluster"));

    // r2 stops, loses its Raft state (nothing else), and starts again.
    nodes[1].stop();
    let raft_dir = specs[1].data_dir.join("store").join("_sys").join("raft");
    assert!(raft_dir.is_dir(), "no Raft state at {}", raft_dir.display());
    std::fs::remove_dir_all(&raft_dir).unwrap();
    nodes[1] = specs[1].start();
    // Two nodes keep one voter (an odd count): r2 joins as the standby.
    eventually("r2 joins r1's core", || {
        let (one, two) = (status(&nodes[0]), status(&nodes[1]));
        let joined = one["raft"]["voters"] == 1
            && one["raft"]["standbys"] == 1
            && one["raft"]["foreign_members"] == json!([])
            && two["raft"]["role"] == "standby"
            && two["raft"]["cluster_id"].as_str() == Some(first.as_str());
        joined.then_some(())
    });
    for n in &mut nodes {
        n.stop();
    }
}

/// A token with every scope from `node`, for credential `cred`.
fn admin_for(node: &OpNode, cred: &(String, String)) -> String {
    eventually(&format!("a token from {}", node.name), || {
        let (status, body) = node.token(&cred.0, &cred.1, "");
        (status == 200).then(|| body["access_token"].as_str().unwrap().to_owned())
    })
}

fn peer_id(node: &OpNode, token: &str) -> String {
    let (_, id) = node.req("GET", "/v1/cluster/identity", None, Some(token));
    id["peer_id"].as_str().unwrap().to_owned()
}

#[test]
fn every_handshake_error_comes_from_a_real_node() {
    let lic = license(3, "lic_h", "cluster-h", 2);
    let a = Spec::new("ha", 1).start();
    let cred = bootstrap(&a, &lic).unwrap();
    let admin = admin_token(&a, &cred);
    let add = |address: &str| a.req("POST", "/v1/peers", Some(&json!({"address": address})), Some(&admin));

    // Nothing listens there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_addr = closed.local_addr().unwrap().to_string();
    drop(closed);
    let (status, body) = add(&closed_addr);
    assert_eq!(
        (status, code(&body), message(&body)),
        (502, "connection_refused", "handshake failed: connection refused")
    );

    // Something accepts the connection and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let (status, body) = add(&silent.local_addr().unwrap().to_string());
    assert_eq!(
        (status, code(&body), message(&body)),
        (504, "connection_timeout", "handshake failed: connection timeout")
    );
    drop(silent);

    // Another license.
    let other = Spec::new("hb", 2).start();
    bootstrap(&other, &license(3, "lic_other", "cluster-h", 2));
    let (status, body) = add(&other.api);
    assert_eq!((status, message(&body)), (403, "handshake failed: license mismatch"), "{body}");
    // No license at all is a mismatch too.
    let bare = Spec::new("hc", 3).start();
    let (status, body) = add(&bare.api);
    assert_eq!((status, message(&body)), (403, "handshake failed: license mismatch"), "{body}");

    // Same license id and cluster, signed by another issuer.
    let forged = Spec::new("hd", 4).start();
    bootstrap(&forged, &license(9, "lic_h", "cluster-h", 2));
    let (status, body) = add(&forged.api);
    assert_eq!((status, message(&body)), (403, "handshake failed: invalid signature"), "{body}");

    // The license admits two nodes: the second joins, a third does not.
    let b = Spec::new("he", 5).start();
    bootstrap(&b, &lic);
    let (status, body) = add(&b.api);
    assert_eq!(status, 201, "{body}");
    let c = Spec::new("hf", 6).start();
    bootstrap(&c, &lic);
    let (status, body) = add(&c.api);
    assert_eq!((status, message(&body)), (403, "handshake failed: node limit exceeded"), "{body}");

    // The mesh refuses the same way: a node with another license that
    // joins through gossip is turned away, and both sides say why.
    let lic_x = license(3, "lic_x", "cluster-h", 5);
    let x = Spec::new("hx", 7).join(&a).start();
    bootstrap(&x, &lic_x);
    a.wait_stderr("the mesh refusing hx", |l| l.contains("handshake failed: license mismatch"));
    x.wait_stderr("hx told why", |l| l.contains("handshake failed: license mismatch"));
    let (_, metrics) = http(&a.api, "GET", "/metrics", None, None, None);
    let failures = common::metric(&metrics, "mesh_handshake_failures_total").unwrap_or(0.0);
    assert!(failures >= 1.0, "{metrics}");

    // In the mesh too: a forged copy of the license, and a third holder
    // of the real one while two seats are taken, each started with the
    // license in its config and joining through gossip.
    let dir = common::temp_dir("mesh-licenses");
    let (forged_file, real_file) = (dir.join("forged.json"), dir.join("real.json"));
    write_json(&forged_file, &license(9, "lic_h", "cluster-h", 2));
    write_json(&real_file, &lic);
    let y = Spec::new("hy", 8).join(&a).set(&format!("cluster.license_file={}", forged_file.display())).start();
    a.wait_stderr("the mesh refusing a forged license", |l| {
        l.contains("hy") && l.contains("handshake failed: invalid signature")
    });
    y.wait_stderr("hy told why", |l| l.contains("handshake failed: invalid signature"));
    let z = Spec::new("hz", 9).join(&a).set(&format!("cluster.license_file={}", real_file.display())).start();
    z.wait_stderr("hz refused for the node limit", |l| l.contains("handshake failed: node limit exceeded"));
    // The refused node shows up in gossip but not as an admitted peer.
    let listed = eventually("hz listed as unadmitted", || {
        let list = peers(&a, &admin);
        peer(&list, "hz").filter(|p| p["status"] == "unadmitted").cloned()
    });
    assert!(listed["id"].is_null(), "{listed}");
}

#[test]
fn a_license_file_in_the_config_admits_and_a_bad_one_stops_start_up() {
    let dir = common::temp_dir("license-file");
    let good = dir.join("license.json");
    write_json(&good, &license(4, "lic_cfg", "cluster-cfg", 3));
    let node = Spec::new("lf", 1).set(&format!("cluster.license_file={}", good.display())).start();
    let (_, id) = node.req("GET", "/v1/cluster/identity", None, None);
    assert_eq!((id["license_id"].as_str(), id["cluster_id"].as_str()), (Some("lic_cfg"), Some("cluster-cfg")));
    drop(node);

    let bad = dir.join("tampered.json");
    let mut tampered = license(4, "lic_cfg", "cluster-cfg", 3);
    tampered["max_nodes"] = json!(1000);
    write_json(&bad, &tampered);
    for (path, why) in [(bad, "signature"), (dir.join("missing.json"), "No such file")] {
        let spec = Spec::new("lf", 1).set(&format!("cluster.license_file={}", path.display()));
        let out = common::run_cmd(spec.command(), Duration::from_secs(20));
        assert_eq!(out.code, Some(2), "{}", out.describe());
        assert!(out.stderr.contains(&format!("license file {}", path.display())), "{}", out.describe());
        assert!(out.stderr.contains(why), "{}", out.describe());
    }
}

#[test]
fn an_unwritable_data_dir_costs_a_single_node_its_identity_not_its_start() {
    let hello = common::lua_fixture("hello.lua");
    let out = common::run(
        &["run", hello.to_str().unwrap(), "--set", "node.data_dir=/dev/null/wippy"],
        Duration::from_secs(20),
    );
    assert_eq!(out.code, Some(0), "{}", out.describe());
    assert!(out.stderr.contains("using a temporary one"), "{}", out.describe());

    // A clustered node needs its identity: it refuses to start and says where.
    let spec = Spec { data_dir: "/dev/null/wippy".into(), ..Spec::new("nodir", 1) };
    let out = common::run_cmd(spec.command(), Duration::from_secs(20));
    assert_eq!(out.code, Some(2), "{}", out.describe());
    assert!(out.stderr.contains("node identity /dev/null/wippy/identity.json"), "{}", out.describe());
}
