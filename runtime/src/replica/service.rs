//! Connects the group/name [`Table`] and the `store.kv.crdt` namespaces to
//! processes and peers.
//!
//! Every change to the table is carried out while the table is still
//! locked: its change batch is queued to every peer, its events to the
//! watching processes and its revocations to the losers, so two changes
//! can never reach a peer or a watcher in the other order. A new mesh
//! connection starts with this node's snapshot and store digests (the sync
//! handshake), and a periodic round of digests repairs whatever a full
//! queue or a partition lost (anti-entropy).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use wippy_lua_stdlib::Value;

use super::table::{Effects, GroupEvent, Table};
use super::wire::Wire;
use crate::cluster::mesh::frame::Class;
use crate::crdt::stores::CrdtStores;
use crate::pid::Pid;
use crate::scheduler::envelope::{Envelope, EventKind};
use crate::shared::Shared;

/// The topic a watcher's events arrive on: internal (`@`), so no user
/// `process.listen` can take it.
pub(crate) fn watch_topic(sub: u64) -> String {
    format!("@pg.{sub}")
}

/// The node's groups, EVENTUAL names and CRDT stores.
pub(crate) struct Replica {
    table: Mutex<Table>,
    next_sub: AtomicU64,
    /// The `store.kv.crdt` namespaces.
    pub(crate) kv: CrdtStores,
    /// How often digests go to peers.
    interval: Mutex<Duration>,
    /// EVENTUAL registrations of this node revoked by an earlier one elsewhere.
    pub(crate) revoked: AtomicU64,
}

impl Replica {
    /// An empty view for node `node`; its incarnation is the start time.
    pub(crate) fn new(node: &str) -> Replica {
        let generation = SystemTime::now().duration_since(UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64);
        Replica {
            table: Mutex::new(Table::new(node, generation)),
            next_sub: AtomicU64::new(1),
            kv: CrdtStores::new(node),
            interval: Mutex::new(Duration::from_secs(30)),
            revoked: AtomicU64::new(0),
        }
    }

    /// The table, for reads.
    pub(crate) fn table(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new subscription id.
    pub(crate) fn next_sub(&self) -> u64 {
        self.next_sub.fetch_add(1, Ordering::Relaxed)
    }

    /// Sets the anti-entropy interval (the shortest one asked for wins).
    pub(crate) fn shorten_interval(&self, d: Duration) {
        let mut i = self.interval.lock().unwrap_or_else(|e| e.into_inner());
        if !d.is_zero() && d < *i {
            *i = d;
        }
    }

    /// The anti-entropy interval.
    pub(crate) fn interval(&self) -> Duration {
        *self.interval.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Shared {
    /// Runs `op` on the table and carries out its effects before the table
    /// is unlocked. `from` is the peer whose message caused it (a pull for
    /// a missed change goes back there).
    pub(crate) fn with_table<R>(&self, from: Option<&str>, op: impl FnOnce(&mut Table) -> (R, Effects)) -> R {
        let mut table = self.replica.table();
        let (r, fx) = op(&mut table);
        self.carry_out(&table, fx, from);
        r
    }

    fn carry_out(&self, table: &Table, fx: Effects, from: Option<&str>) {
        if let Some((seq, changes)) = fx.delta {
            let generation = table.position().generation;
            self.broadcast_pg(&Wire::Delta { generation, seq, changes }.encode());
        }
        for ev in fx.events {
            self.deliver_group_event(ev);
        }
        for (pid, name) in fx.revoked {
            self.replica.revoked.fetch_add(1, Ordering::Relaxed);
            tracing::info!(%pid, %name, "eventual name revoked: an earlier registration elsewhere won");
            if let Ok(p) = Pid::parse(&pid) {
                self.route(Envelope::Event {
                    to: p.counter,
                    kind: EventKind::Cancel,
                    from: String::new(),
                    result: Ok(Value::Nil),
                    reason: format!("name revoked: {name}"),
                });
            }
        }
        if fx.pull
            && let Some(peer) = from
        {
            self.send_pg(peer, Wire::Pull.encode());
        }
    }

    fn deliver_group_event(&self, ev: GroupEvent) {
        let Ok(p) = Pid::parse(&ev.to) else { return };
        let kind = if ev.joined { "member.joined" } else { "member.left" };
        let pids = Value::Array(ev.pids.into_iter().map(Value::str).collect());
        let payload = Value::Map(vec![
            (Value::str("system"), Value::str("pg")),
            (Value::str("kind"), Value::str(kind)),
            (Value::str("path"), Value::str(ev.group.clone())),
            (
                Value::str("data"),
                Value::Map(vec![(Value::str("Group"), Value::str(ev.group)), (Value::str("PIDs"), pids)]),
            ),
        ]);
        self.route(Envelope::Message {
            to: p.counter,
            to_pid: ev.to,
            from: String::new(),
            topic: watch_topic(ev.sub),
            payload,
        });
    }

    /// The live members other than this node.
    pub(crate) fn live_peers(&self) -> Vec<String> {
        let view = self.cluster.read().unwrap_or_else(|e| e.into_inner());
        view.as_ref()
            .map(|v| v.iter().filter(|m| !m.is_local && m.state.is_up()).map(|m| m.name.clone()).collect())
            .unwrap_or_default()
    }

    /// Queues a `pg` frame for every live peer.
    pub(crate) fn broadcast_pg(&self, payload: &[u8]) {
        for peer in self.live_peers() {
            self.send_pg(&peer, payload.to_vec());
        }
    }

    /// Queues a `pg` frame for `peer`. A full queue drops it (counted);
    /// anti-entropy repairs what it carried.
    pub(crate) fn send_pg(&self, peer: &str, payload: Vec<u8>) {
        let Ok(queue) = self.peer_queue(peer) else { return };
        if !queue.push_frame(Class::Pg, payload) {
            self.stats.drop_items(Class::Pg, 1);
        }
    }

    /// The frames a new connection to a peer starts with: this node's
    /// snapshot and the digests of its stores.
    pub(crate) fn pg_greeting(&self) -> Vec<Vec<u8>> {
        let (pos, state) = self.replica.table().snapshot();
        let mut frames = vec![
            Wire::Snapshot { generation: pos.generation, seq: pos.seq, state }.encode(),
            Wire::Kv(self.replica.kv.digest()).encode(),
            Wire::Access(self.access.sync_state()).encode(),
        ];
        if self.raft_client.load(Ordering::Relaxed) {
            frames.push(Wire::NamesWatch.encode());
        }
        frames
    }

    /// A member applied name changes: every following client node gets them.
    pub(crate) fn forward_names(&self, changes: &[crate::raft::name_index::NameChange]) {
        let followers = self.name_followers.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if followers.is_empty() {
            return;
        }
        let applied = changes.iter().map(|c| c.index).max().unwrap_or(0);
        let frame = Wire::Names { applied, full: false, changes: changes.to_vec() }.encode();
        for f in followers {
            self.send_pg(&f, frame.clone());
        }
    }

    /// Handles one `pg` frame from `peer`.
    pub(crate) fn on_pg_frame(&self, peer: &str, payload: &[u8]) {
        let wire = match Wire::decode(payload) {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(%peer, error = %e, "pg: undecodable frame dropped");
                self.stats.drop_items(Class::Pg, 1);
                return;
            }
        };
        match wire {
            Wire::Delta { generation, seq, changes } => {
                self.with_table(Some(peer), |t| ((), t.on_delta(peer, generation, seq, &changes)));
            }
            Wire::Snapshot { generation, seq, state } => {
                self.with_table(Some(peer), |t| ((), t.on_snapshot(peer, generation, seq, state)));
            }
            Wire::Digest { generation, seq } => {
                if self.replica.table().on_digest(peer, generation, seq) {
                    self.send_pg(peer, Wire::Pull.encode());
                }
            }
            Wire::Pull => {
                let (pos, state) = self.replica.table().snapshot();
                self.send_pg(peer, Wire::Snapshot { generation: pos.generation, seq: pos.seq, state }.encode());
            }
            Wire::NamesWatch => {
                let local = self.raft_local.read().unwrap_or_else(|e| e.into_inner()).clone();
                if let Some(local) = local {
                    // Under the index's lock: no change slips between the
                    // copy and the changes that follow it.
                    local.sm.names.with_copy(|applied, all| {
                        self.name_followers.lock().unwrap_or_else(|e| e.into_inner()).insert(peer.to_owned());
                        self.send_pg(peer, Wire::Names { applied, full: true, changes: all }.encode());
                    });
                }
            }
            Wire::Names { applied, full, changes } => {
                if full {
                    self.followed_names.copy(applied, changes);
                } else {
                    self.followed_names.changes(changes);
                }
            }
            Wire::Kv(kv) => {
                for answer in self.replica.kv.on_wire(kv) {
                    self.send_pg(peer, Wire::Kv(answer).encode());
                }
            }
            Wire::Access(sync) => {
                self.access.merge(sync, crate::identity::unix_now());
            }
        }
    }

    /// Serves one call on `store.kv.crdt` namespace `ns` from this node's
    /// copy; a write goes to every live peer.
    pub(crate) fn kv_crdt(
        &self,
        ns: &str,
        op: wippy_lua_stdlib::StoreOp,
    ) -> Result<Value, wippy_lua_stdlib::HostError> {
        let (value, out) = self.replica.kv.execute(ns, op, crate::raft::state_machine::wall_ms())?;
        if let Some(w) = out {
            self.broadcast_pg(&Wire::Kv(w).encode());
        }
        Ok(value)
    }

    /// Sends the access state (credential, deactivations) to every live
    /// peer; returns how many.
    pub(crate) fn broadcast_access(&self) -> usize {
        let peers = self.live_peers();
        let frame = Wire::Access(self.access.sync_state()).encode();
        for peer in &peers {
            self.send_pg(peer, frame.clone());
        }
        peers.len()
    }

    /// Node `name` is gone: its members leave and its names go.
    pub(crate) fn replica_node_down(&self, name: &str) {
        self.name_followers.lock().unwrap_or_else(|e| e.into_inner()).remove(name);
        self.with_table(None, |t| ((), t.node_down(name)));
    }

    /// One anti-entropy round: digests to every live peer, old CRDT
    /// deletes collected, durable namespaces saved.
    pub(crate) fn anti_entropy(&self) {
        let pos = self.replica.table().position();
        self.broadcast_pg(&Wire::Digest { generation: pos.generation, seq: pos.seq }.encode());
        self.broadcast_pg(&Wire::Kv(self.replica.kv.digest()).encode());
        self.broadcast_access();
        if self.raft_client.load(Ordering::Relaxed) {
            // A fresh full copy from every member repairs what was missed.
            self.broadcast_pg(&Wire::NamesWatch.encode());
        }
        self.replica.kv.collect(crate::raft::state_machine::wall_ms());
        self.replica.kv.persist();
    }
}

/// Runs anti-entropy rounds until the mesh stops (spawned on its thread).
pub(crate) async fn anti_entropy_loop(shared: std::sync::Arc<Shared>) {
    loop {
        tokio::time::sleep(shared.replica.interval()).await;
        let s = shared.clone();
        // Saving snapshots touches the disk: keep it off the mesh thread.
        let _ = tokio::task::spawn_blocking(move || s.anti_entropy()).await;
    }
}
