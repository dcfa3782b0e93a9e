//! STRONG names: `process.registry` scope 3. A CONSISTENT name that every
//! live node has agreed to before it becomes active.
//!
//! Registering takes three steps:
//! 1. A reservation `strong/<name>` is written through Raft, only if no
//!    other one is pending. It carries a TTL, so one abandoned by a crashed
//!    registrar lapses on its own.
//! 2. Every live node, this one included, is asked to acknowledge it. A
//!    node refuses when it holds a LOCAL or EVENTUAL binding of the name
//!    to another process, or has acknowledged another pending
//!    registration of it. While the reservation is acknowledged, the node
//!    refuses new LOCAL and EVENTUAL bindings of the name.
//! 3. When every node has acknowledged, the name is written as a
//!    CONSISTENT record (`consistent.rs`), first write wins, and the
//!    reservation is removed. A refusal or the deadline removes the
//!    reservation and fails the call, naming the nodes that refused or
//!    did not answer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wippy_lua_stdlib::{HostError, Value};

use crate::claims::{me, write};
use crate::raft::rpc::{Answer, Call};
use crate::raft::state_machine::wall_ms;
use crate::raft::types::{Command, Cond};
use crate::shared::Shared;

/// How long every live node has to acknowledge a registration.
pub(crate) const DEADLINE: Duration = Duration::from_secs(10);

fn key(name: &str) -> String {
    format!("strong/{name}")
}

/// Registrations this node has acknowledged and not yet seen finish.
#[derive(Default)]
pub(crate) struct Reservations(Mutex<HashMap<String, (String, Instant)>>);

impl Reservations {
    /// Whether a live reservation of `name` is for a process other than `pid`.
    pub(crate) fn blocks(&self, name: &str, pid: &str) -> bool {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.get(name).is_some_and(|(p, until)| p != pid && *until > Instant::now())
    }

    /// Acknowledges `pid`'s registration of `name` until `until`; false
    /// when another one is pending.
    fn hold(&self, name: &str, pid: &str, until: Instant) -> bool {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        map.retain(|_, (_, u)| *u > now);
        match map.get(name) {
            Some((p, _)) if p != pid => false,
            _ => {
                map.insert(name.to_owned(), (pid.to_owned(), until));
                true
            }
        }
    }

    /// The registration finished (either way).
    fn drop_for(&self, name: &str, pid: &str) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if map.get(name).is_some_and(|(p, _)| p == pid) {
            map.remove(name);
        }
    }
}

/// The callee's answer to a reservation: `None` to acknowledge, or why not.
pub(crate) fn on_reserve(shared: &Shared, name: &str, pid: &str, ttl_ms: u64, release: bool) -> Option<String> {
    if release {
        shared.strong.drop_for(name, pid);
        return None;
    }
    let node = &shared.node_id;
    if let Some(local) = shared.registry.lookup(name)
        && local != pid
    {
        return Some(format!("{node} holds a LOCAL binding of {name} to {local}"));
    }
    if shared.replica.table().conflicts(name, pid) {
        return Some(format!("{node} holds an EVENTUAL binding of {name} to another process"));
    }
    if !shared.strong.hold(name, pid, Instant::now() + Duration::from_millis(ttl_ms)) {
        return Some(format!("{node} acknowledged another pending STRONG registration of {name}"));
    }
    None
}

/// Registers `name` for `pid`, a process of this node, as a STRONG name.
/// The caller has already counted the claim in (`shared.names.begin`).
pub(crate) async fn register(shared: &Arc<Shared>, name: &str, pid: &str) -> Result<Value, HostError> {
    if let Some(holder) = super::consistent::lookup(shared, name) {
        return if holder == pid {
            super::consistent::register(shared, name, pid).await
        } else {
            shared.names.land(pid, name, None);
            Err(HostError::already_exists(format!("name {name} is already registered to {holder}")))
        };
    }
    let ttl_ms = DEADLINE.as_millis() as u64 + 5_000;
    let reserve = Command::Put {
        key: key(name),
        value: pid.as_bytes().to_vec(),
        cond: Cond::Absent,
        ttl_ms: Some(ttl_ms),
        now_ms: wall_ms(),
        owner: Some(me(shared)),
    };
    let r = match write(shared, reserve).await {
        Ok(r) => r,
        Err(e) => {
            shared.names.land(pid, name, None);
            return Err(e);
        }
    };
    if !r.applied && r.previous.as_deref() != Some(pid.as_bytes()) {
        shared.names.land(pid, name, None);
        return Err(HostError::already_exists(format!(
            "strong name reservation pending for a different process: {name}"
        )));
    }
    let version = r.version;
    let (refused, missing) = ask_every_node(shared, name, pid, ttl_ms).await;
    let outcome = if let Some((node, why)) = refused.first() {
        shared.names.land(pid, name, None);
        Err(HostError::already_exists(format!("strong registration of {name} rejected by {node}: {why}")))
    } else if !missing.is_empty() {
        shared.names.land(pid, name, None);
        Err(HostError {
            kind: "TIMEOUT",
            message: format!(
                "strong registration of {name} timed out before all live nodes acked; missing: {}",
                missing.join(", ")
            ),
        })
    } else {
        super::consistent::register(shared, name, pid).await
    };
    let cancel = Command::Delete { key: key(name), cond: Cond::Version(version), now_ms: wall_ms() };
    let _ = write(shared, cancel).await;
    release_everywhere(shared, name, pid);
    outcome
}

/// Asks every live node to acknowledge; returns the refusals and the
/// nodes that did not answer in time.
async fn ask_every_node(
    shared: &Arc<Shared>,
    name: &str,
    pid: &str,
    ttl_ms: u64,
) -> (Vec<(String, String)>, Vec<String>) {
    let mut refused = Vec::new();
    let mut missing = Vec::new();
    if let Some(why) = on_reserve(shared, name, pid, ttl_ms, false) {
        refused.push((shared.node_id.clone(), why));
    }
    let mut calls = tokio::task::JoinSet::new();
    for peer in shared.live_peers() {
        let shared = shared.clone();
        let call = Call::Reserve { name: name.to_owned(), pid: pid.to_owned(), ttl_ms, release: false };
        calls.spawn(async move {
            let me = shared.node_id.clone();
            let answer = shared.raft_transport.call(&shared, &peer, &me, call, DEADLINE).await;
            (peer, answer)
        });
    }
    while let Some(done) = calls.join_next().await {
        let Ok((peer, answer)) = done else { continue };
        match answer {
            Ok(Answer::Reserved(None)) => {}
            Ok(Answer::Reserved(Some(why))) => refused.push((peer, why)),
            Ok(_) | Err(_) => missing.push(peer),
        }
    }
    refused.sort();
    missing.sort();
    (refused, missing)
}

/// Tells every node the registration finished, so its reservation stops
/// blocking LOCAL and EVENTUAL bindings before it lapses.
fn release_everywhere(shared: &Arc<Shared>, name: &str, pid: &str) {
    shared.strong.drop_for(name, pid);
    let peers = shared.live_peers();
    let mesh = shared.mesh.lock().unwrap_or_else(|e| e.into_inner());
    let Some(spawner) = mesh.as_ref() else { return };
    for peer in peers {
        let shared = shared.clone();
        let call = Call::Reserve { name: name.to_owned(), pid: pid.to_owned(), ttl_ms: 0, release: true };
        spawner.spawn(async move {
            let me = shared.node_id.clone();
            let _ = shared.raft_transport.call(&shared, &peer, &me, call, Duration::from_secs(2)).await;
        });
    }
}
