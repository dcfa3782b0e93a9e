//! [`Core`]: a worker's state, shared by its loop, its `WorkerHost` and the
//! raw C entry points. Everything here runs on the worker's own thread.
//!
//! The rest of `Core` lives in `lifecycle.rs` (resume, exit, kill),
//! `dispatch.rs` (envelopes from other workers) and `worker.rs` (the loop).

use std::cell::{Cell, OnceCell, RefCell};
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use mlua::{Lua, ffi};
use wippy_lua_stdlib::{HostError, HostResult, Kernel, SendOutcome, SpawnFlags, Value};

use super::envelope::{Envelope, EventKind, ExitResult};
use super::procs::{Proc, Procs};
use super::timers::Timers;
use crate::cluster::mesh::frame::Class;
use crate::cluster::mesh::relay::{RelayItem, RelayMsg};
use crate::cluster::route::NODE_DOWN;
use crate::pid::Pid;
use crate::shared::Shared;

/// Slot value meaning "no process is running".
pub(crate) const NONE: u32 = u32::MAX;
/// The worker's state, shared by its loop and its `WorkerHost`.
pub(crate) struct Core {
    pub(crate) idx: usize,
    pub(crate) shared: Arc<Shared>,
    pub(crate) lua: Lua,
    pub(crate) main_state: *mut ffi::lua_State,
    pub(crate) procs: RefCell<Procs>,
    pub(crate) runq: RefCell<VecDeque<u32>>,
    pub(crate) local: RefCell<VecDeque<Envelope>>,
    pub(crate) outbox: RefCell<Vec<Vec<Envelope>>>,
    pub(crate) outbox_dirty: Cell<bool>,
    /// Items for other nodes, in order, shipped at the next flush.
    pub(crate) remote: RefCell<Vec<(String, RelayItem)>>,
    pub(crate) timers: RefCell<Timers>,
    pub(crate) current: Cell<u32>,
    pub(crate) spawn_tick: Cell<u32>,
    /// Definition and host ids known to exist (checked once, then cached:
    /// definitions do not change while the node runs).
    pub(crate) known: RefCell<crate::fxhash::FxHashSet<Vec<u8>>>,
    /// Registry reference of the kernel's `PROCS` table.
    pub(crate) procs_ref: Cell<std::ffi::c_int>,
    /// Registry reference of the kernel's error metatable.
    pub(crate) err_mt_ref: Cell<std::ffi::c_int>,
    /// Registry reference of the kernel's `deliver` function.
    pub(crate) deliver_ref: Cell<std::ffi::c_int>,
    /// Registry reference of the kernel's `COS` table.
    pub(crate) cos_ref: Cell<std::ffi::c_int>,
    /// Registry reference of the kernel's `fail` function.
    pub(crate) fail_ref: Cell<std::ffi::c_int>,
    /// Registry reference of the kernel's `done` function.
    pub(crate) done_ref: Cell<std::ffi::c_int>,
    /// Result recorded by the kernel's exit call for the process finishing now.
    pub(crate) exit_result: RefCell<Option<(u32, ExitResult)>>,
    pub(crate) kernel: OnceCell<Kernel>,
    /// Registry reference of the kernel's `CUR` table (`CUR[1]` = running slot).
    pub(crate) cur_ref: Cell<std::ffi::c_int>,
}

impl Core {
    pub(super) fn kernel(&self) -> &Kernel {
        self.kernel.get().expect("kernel installed before the loop starts")
    }

    /// Queues `slot` unless it is already queued.
    pub(crate) fn wake(&self, slot: u32) {
        let mut procs = self.procs.borrow_mut();
        if let Some(p) = procs.get_mut(slot)
            && !p.queued
        {
            p.queued = true;
            self.runq.borrow_mut().push_back(slot);
        }
    }

    /// Like `wake`, but never panics on a busy table (called from C).
    pub(crate) fn try_wake(&self, slot: u32) {
        let Ok(mut procs) = self.procs.try_borrow_mut() else { return };
        let Ok(mut runq) = self.runq.try_borrow_mut() else { return };
        if let Some(p) = procs.get_mut(slot)
            && !p.queued
        {
            p.queued = true;
            runq.push_back(slot);
        }
    }

    /// Places a process the kernel is spawning: on this worker (returns its
    /// slot, the process is queued) or on another one (returns
    /// `-(worker + 1)`; the kernel ships the arguments).
    pub(crate) fn spawn_here(
        &self,
        id: &[u8],
        host: &[u8],
        flags: SpawnFlags,
        state: *mut ffi::lua_State,
    ) -> Result<(i64, String), HostError> {
        if self.shared.stopping.load(Ordering::Relaxed) {
            return Err(HostError::unavailable("node is shutting down"));
        }
        self.check_known(id, host)?;
        let host = std::str::from_utf8(host).map_err(|_| HostError::invalid("host id must be UTF-8"))?;
        let w = self.place_worker();
        let (counter, pid) = self.shared.alloc_pid(w, host);
        if w != self.idx {
            return Ok((-(w as i64) - 1, pid));
        }
        let mut p = Proc::new(state, counter, pid.clone());
        let parent_slot = self.current.get();
        if flags != 0 {
            let mut procs = self.procs.borrow_mut();
            if let Some(pp) = procs.get_mut(parent_slot) {
                let parent = pp.pid.clone();
                if flags & 0b101 != 0 {
                    pp.rel_mut().watching.insert(pid.clone());
                    p.rel_mut().watchers.insert(parent.clone());
                }
                if flags & 0b010 != 0 {
                    pp.rel_mut().links.insert(pid.clone());
                    p.rel_mut().links.insert(parent);
                }
            }
        }
        self.shared.workers[self.idx].live.fetch_add(1, Ordering::Relaxed);
        // Not queued here: the kernel wakes it once its record exists.
        let slot = self.procs.borrow_mut().insert(p);
        Ok((i64::from(slot), pid))
    }

    pub(super) fn check_known(&self, id: &[u8], host: &[u8]) -> Result<(), HostError> {
        let known = self.known.borrow();
        if known.contains(id) && known.contains(host) {
            return Ok(());
        }
        drop(known);
        let (id_s, host_s) = (String::from_utf8_lossy(id), String::from_utf8_lossy(host));
        self.shared.check_spawn(&id_s, &host_s)?;
        let mut known = self.known.borrow_mut();
        known.insert(id.to_vec());
        known.insert(host.to_vec());
        Ok(())
    }

    /// Spawning locally is far cheaper than across threads, so a worker keeps
    /// its children unless it carries clearly more than the least loaded one
    /// (checked every 64 spawns).
    pub(super) fn place_worker(&self) -> usize {
        let tick = self.spawn_tick.get().wrapping_add(1);
        self.spawn_tick.set(tick);
        if !tick.is_multiple_of(64) || self.shared.n_workers() == 1 {
            return self.idx;
        }
        let mine = self.shared.workers[self.idx].live.load(Ordering::Relaxed);
        let best = self.shared.least_loaded();
        let theirs = self.shared.workers[best].live.load(Ordering::Relaxed);
        if mine > theirs + theirs / 4 + 64 { best } else { self.idx }
    }

    /// Routes a message the kernel could not deliver itself: `dest` is a PID
    /// of another worker or node, or a registered name.
    pub(crate) fn send_to(&self, from_slot: u32, dest: &str, topic: &str, payload: Value) -> HostResult<SendOutcome> {
        let (pid, s) = self.resolve(dest)?;
        if !self.is_here(&pid) {
            let from = self.procs.borrow().get(from_slot).map(|p| p.pid.clone()).unwrap_or_default();
            let msg = RelayMsg { to: s, from, topic: topic.to_string(), payload };
            self.relay(pid.node, RelayItem::Message(msg));
            return Ok(SendOutcome::Routed);
        }
        let w = self.shared.worker_of(pid.counter);
        if w == self.idx {
            return Ok(SendOutcome::Local(s));
        }
        let from = self.procs.borrow().get(from_slot).map(|p| p.pid.clone()).unwrap_or_default();
        self.route(Envelope::Message { to: pid.counter, to_pid: s, from, topic: topic.to_string(), payload });
        Ok(SendOutcome::Routed)
    }

    /// Resolves a PID string or a registered name.
    pub(crate) fn resolve(&self, dest: &str) -> HostResult<(Pid, String)> {
        if Pid::looks_like(dest) {
            let pid = Pid::parse(dest).map_err(|e| HostError::invalid(e.to_string()))?;
            return Ok((pid, dest.to_string()));
        }
        let s =
            self.shared.resolve_name(dest).ok_or_else(|| HostError::not_found(format!("could not resolve: {dest}")))?;
        let pid = Pid::parse(&s).map_err(|e| HostError::invalid(e.to_string()))?;
        Ok((pid, s))
    }

    /// Marks process `pid` of this node as holding claims (locks, names),
    /// on whichever worker it lives; one that has exited already gives
    /// them back at once.
    pub(crate) fn mark_claims(&self, pid: &Pid) {
        if self.shared.worker_of(pid.counter) != self.idx {
            let to_pid = pid.to_string();
            self.route(Envelope::MarkClaims { to: pid.counter, to_pid });
            return;
        }
        let slot = self.procs.borrow().slot_of(pid.counter);
        match slot.and_then(|s| self.procs.borrow_mut().get_mut(s).map(|p| p.has_claims = true)) {
            Some(()) => {}
            None => {
                let s = pid.to_string();
                crate::lock::on_exit(&self.shared, &s);
                crate::naming::consistent::on_exit(&self.shared, &s);
                self.shared.with_table(None, |t| ((), t.exit(&s)));
            }
        }
    }

    /// Marks process `pid` of this node as holding an EVENTUAL name, so
    /// its exit drops the name; one that has exited already drops it now.
    pub(crate) fn mark_pg(&self, pid: &Pid) {
        if self.shared.worker_of(pid.counter) == self.idx {
            let slot = self.procs.borrow().slot_of(pid.counter);
            if slot.and_then(|s| self.procs.borrow_mut().get_mut(s).map(|p| p.in_pg = true)).is_some() {
                return;
            }
            let s = pid.to_string();
            self.shared.with_table(None, |t| ((), t.exit(&s)));
            return;
        }
        self.mark_claims(pid);
    }

    /// Whether `pid` lives on this node.
    pub(crate) fn is_here(&self, pid: &Pid) -> bool {
        pid.node.is_empty() || pid.node == self.shared.node_id
    }

    /// Sends an envelope to the worker owning its target (this one included).
    pub(crate) fn route(&self, env: Envelope) {
        let w = self.shared.worker_of(env.target());
        if w == self.idx {
            self.local.borrow_mut().push_back(env);
        } else {
            self.outbox.borrow_mut()[w].push(env);
            self.outbox_dirty.set(true);
        }
    }

    /// Queues an item for a process on node `node`; it leaves at the next
    /// flush, together with everything else this round produced for it.
    pub(crate) fn relay(&self, node: String, item: RelayItem) {
        self.remote.borrow_mut().push((node, item));
        self.outbox_dirty.set(true);
    }

    pub(super) fn flush(&self) {
        if !self.outbox_dirty.replace(false) {
            return;
        }
        {
            let mut out = self.outbox.borrow_mut();
            for (w, batch) in out.iter_mut().enumerate() {
                if !batch.is_empty() {
                    self.shared.workers[w].mailroom.post(batch);
                }
            }
        }
        let remote = std::mem::take(&mut *self.remote.borrow_mut());
        if remote.is_empty() {
            return;
        }
        // Consecutive items for one node go as one batch; order per node is
        // the order they were produced in.
        let mut batch = Vec::new();
        let mut node = String::new();
        for (n, item) in remote {
            if n != node && !batch.is_empty() {
                self.ship(&node, &mut batch);
            }
            node = n;
            batch.push(item);
        }
        self.ship(&node, &mut batch);
    }

    /// Hands a batch to the mesh. For a node that is not a live member,
    /// monitor and link requests fire at once with the node-down error and
    /// messages are dropped (counted), as they would be had the node died.
    fn ship(&self, node: &str, batch: &mut Vec<RelayItem>) {
        if self.shared.relay(node, batch).is_ok() {
            return;
        }
        for item in batch.drain(..) {
            match item {
                RelayItem::Watch { to, from, link, on: true } => {
                    if let Ok(watcher) = Pid::parse(&from) {
                        let kind = if link { EventKind::LinkExit } else { EventKind::Exit };
                        self.route(Envelope::Event {
                            to: watcher.counter,
                            kind,
                            from: to,
                            result: Err(NODE_DOWN.into()),
                            reason: String::new(),
                        });
                    }
                }
                RelayItem::Message(_) => self.shared.stats.drop_items(Class::Relay, 1),
                RelayItem::Watch { .. } | RelayItem::Event { .. } | RelayItem::Kill { .. } => {}
            }
        }
    }
}
