//! [`WorkerHost`]: the engine side of the Lua surface, one per worker.

use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use wippy_lua_stdlib::{Host, HostError, HostResult, Level, SendOutcome, SpawnFlags, Value};

use super::core::Core;
use super::envelope::{Envelope, EventKind, SpawnOrder};
use super::preempt;
use crate::cluster::mesh::relay::RelayItem;
use crate::pid::Pid;

/// The [`Host`] of one worker.
pub(crate) struct WorkerHost(pub(crate) Rc<Core>);

impl WorkerHost {
    fn pid_of_slot(&self, slot: u32) -> HostResult<String> {
        self.0.procs.borrow().get(slot).map(|p| p.pid.clone()).ok_or_else(|| HostError::invalid("no such process"))
    }

    fn relate(&self, slot: u32, dest: &str, link: bool, on: bool) -> HostResult<()> {
        let (pid, s) = self.0.resolve(dest)?;
        let me = self.pid_of_slot(slot)?;
        if s == me {
            return Err(HostError::invalid(if link { "cannot link to self" } else { "cannot monitor self" }));
        }
        {
            let mut procs = self.0.procs.borrow_mut();
            let Some(p) = procs.get_mut(slot) else { return Ok(()) };
            let rel = p.rel_mut();
            let list = if link { &mut rel.links } else { &mut rel.watching };
            if on {
                list.insert(s.clone());
            } else {
                list.remove(&s);
            }
        }
        if self.0.is_here(&pid) {
            self.0.route(Envelope::Watch { to: pid.counter, to_pid: s, from: me, link, on });
        } else {
            self.0.relay(pid.node, RelayItem::Watch { to: s, from: me, link, on });
        }
        Ok(())
    }
}

impl Host for WorkerHost {
    fn wake(&self, slot: u32) {
        self.0.wake(slot);
    }

    fn send(&self, from_slot: u32, dest: &str, topic: &str, payload: Value) -> HostResult<SendOutcome> {
        self.0.send_to(from_slot, dest, topic, payload)
    }

    fn spawn(&self, id: &str, host: &str, flags: SpawnFlags, thread: &mlua::Thread) -> HostResult<(i64, String)> {
        self.0.spawn_here(id.as_bytes(), host.as_bytes(), flags, thread.state())
    }

    fn source(&self, id: &str) -> HostResult<(String, String, String)> {
        let defs = self.0.shared.defs.read().unwrap_or_else(|e| e.into_inner());
        let d = defs.get(id).ok_or_else(|| HostError::not_found(format!("process definition not found: {id}")))?;
        Ok((d.source.to_string(), d.chunkname.clone(), d.method.clone()))
    }

    fn spawn_remote(
        &self,
        worker: usize,
        pid: &str,
        id: &str,
        flags: SpawnFlags,
        args: Vec<Value>,
    ) -> HostResult<String> {
        let parsed = Pid::parse(pid).map_err(|e| HostError::invalid(e.to_string()))?;
        let parent_slot = self.0.current.get();
        let parent = self.0.procs.borrow().get(parent_slot).map(|p| p.pid.clone()).unwrap_or_default();
        if flags != 0
            && let Some(pp) = self.0.procs.borrow_mut().get_mut(parent_slot)
        {
            if flags & 0b101 != 0 {
                pp.rel_mut().watching.insert(pid.to_string());
            }
            if flags & 0b010 != 0 {
                pp.rel_mut().links.insert(pid.to_string());
            }
        }
        debug_assert_eq!(self.0.shared.worker_of(parsed.counter), worker);
        self.0.shared.workers[worker].live.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.0.route(Envelope::Spawn(Box::new(SpawnOrder {
            counter: parsed.counter,
            pid: pid.to_string(),
            def: id.to_string(),
            parent,
            flags,
            args,
            system_watch: false,
        })));
        Ok(pid.to_string())
    }

    fn exit(&self, slot: u32, result: Result<Value, String>) {
        *self.0.exit_result.borrow_mut() = Some((slot, result));
    }

    fn monitor(&self, slot: u32, dest: &str) -> HostResult<()> {
        self.relate(slot, dest, false, true)
    }

    fn unmonitor(&self, slot: u32, dest: &str) -> HostResult<()> {
        self.relate(slot, dest, false, false)
    }

    fn link(&self, slot: u32, dest: &str) -> HostResult<()> {
        self.relate(slot, dest, true, true)
    }

    fn unlink(&self, slot: u32, dest: &str) -> HostResult<()> {
        self.relate(slot, dest, true, false)
    }

    fn cancel(&self, slot: u32, dest: &str, reason: &str) -> HostResult<()> {
        let (pid, s) = self.0.resolve(dest)?;
        let from = self.pid_of_slot(slot)?;
        if self.0.is_here(&pid) {
            self.0.route(Envelope::Event {
                to: pid.counter,
                kind: EventKind::Cancel,
                from,
                result: Ok(Value::Nil),
                reason: reason.to_string(),
            });
        } else {
            let item = RelayItem::Event {
                to: s,
                from,
                kind: EventKind::Cancel,
                result: Ok(Value::Nil),
                reason: reason.into(),
            };
            self.0.relay(pid.node, item);
        }
        Ok(())
    }

    fn terminate(&self, _slot: u32, dest: &str) -> HostResult<()> {
        let (pid, s) = self.0.resolve(dest)?;
        if self.0.is_here(&pid) {
            self.0.route(Envelope::Kill { to: pid.counter, reason: "terminated".into() });
        } else {
            self.0.relay(pid.node, RelayItem::Kill { to: s, reason: "terminated".into() });
        }
        Ok(())
    }

    fn trap_links(&self, slot: u32, on: bool) {
        if let Some(p) = self.0.procs.borrow_mut().get_mut(slot) {
            p.trap_links = on;
        }
    }

    fn register(&self, slot: u32, name: &str, pid: Option<&str>, scope: i64) -> HostResult<()> {
        match scope {
            0 => {}
            1..=3 => return Err(HostError::invalid("cluster scopes are registered through name_call")),
            _ => return Err(HostError::invalid(format!("unknown registry scope {scope}"))),
        }
        let (target, s) = match pid {
            Some(p) => {
                let parsed = Pid::parse(p).map_err(|e| HostError::invalid(format!("invalid pid: {e}")))?;
                (parsed, p.to_string())
            }
            None => {
                let me = self.pid_of_slot(slot)?;
                (Pid::parse(&me).map_err(|e| HostError::invalid(e.to_string()))?, me)
            }
        };
        // A cluster-wide name hides a local one of the same spelling, so a
        // local name may not shadow one held by another process.
        if let Some(owner) = crate::naming::consistent::lookup(&self.0.shared, name)
            && owner != s
        {
            return Err(HostError::already_exists(format!("name {name} is registered cluster-wide to {owner}")));
        }
        if self.0.shared.replica.table().conflicts(name, &s) {
            return Err(HostError::already_exists(format!("name {name} is registered as an EVENTUAL name")));
        }
        if self.0.shared.strong.blocks(name, &s) {
            return Err(HostError::already_exists(format!("strong name reservation pending for {name}")));
        }
        self.0.shared.registry.register(name, &s).map_err(|e| HostError::already_exists(e.to_string()))?;
        if pid.is_none() {
            if let Some(p) = self.0.procs.borrow_mut().get_mut(slot) {
                p.has_names = true;
            }
        } else if self.0.is_here(&target) {
            // The owner's worker marks the process as named, or drops the
            // name if the process has exited already.
            self.0.route(Envelope::CheckName { to: target.counter, to_pid: s, name: name.to_string() });
        }
        Ok(())
    }

    fn lookup(&self, name: &str) -> HostResult<String> {
        self.0.shared.resolve_name(name).ok_or_else(|| HostError::not_found("name not registered"))
    }

    fn unregister(&self, _slot: u32, name: &str, scope: i64) -> HostResult<bool> {
        match scope {
            0 => Ok(self.0.shared.registry.unregister(name)),
            1..=3 => Err(HostError::invalid("cluster scopes are unregistered through name_call")),
            _ => Err(HostError::invalid(format!("unknown registry scope {scope}"))),
        }
    }

    fn timer(&self, id: u64, ms: f64) {
        let at = Instant::now() + Duration::from_secs_f64(ms.max(0.0) / 1000.0);
        self.0.timers.borrow_mut().add(at, id);
    }

    fn now_ms(&self) -> f64 {
        self.0.shared.epoch.elapsed().as_secs_f64() * 1000.0
    }

    fn wall_ns(&self) -> i64 {
        SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as i64)
    }

    fn set_running(&self, thread: &mlua::Thread) {
        self.0.shared.workers[self.0.idx].preempt.switch(thread.state());
    }

    fn take_preempted(&self) -> bool {
        preempt::take_preempted()
    }

    fn node_exit(&self, code: i32) {
        self.0.shared.request_exit(code);
    }

    fn node_id(&self) -> String {
        self.0.shared.node_id.clone()
    }

    fn cluster_members(&self) -> Option<Vec<wippy_lua_stdlib::ClusterMember>> {
        let view = self.0.shared.cluster.read().unwrap_or_else(|e| e.into_inner());
        view.as_ref().map(|members| {
            members
                .iter()
                .filter(|m| m.state.is_up())
                .map(|m| wippy_lua_stdlib::ClusterMember {
                    name: m.name.clone(),
                    addr: m.addr.clone(),
                    state: m.state.as_str().to_owned(),
                    failure_domain: m.failure_domain.clone(),
                    internode: m.internode.to_string(),
                    is_local: m.is_local,
                })
                .collect()
        })
    }

    fn raft_status(&self) -> Option<wippy_lua_stdlib::RaftStatus> {
        self.0.shared.raft_status.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn lock_call(&self, call: u64, slot: u32, op: wippy_lua_stdlib::LockOp) -> HostResult<()> {
        let shared = &self.0.shared;
        let pid = {
            let mut procs = self.0.procs.borrow_mut();
            let p = procs.get_mut(slot).ok_or_else(|| HostError::invalid("system.lock must be called by a process"))?;
            p.pid.clone()
        };
        let mesh = shared.mesh.lock().unwrap_or_else(|e| e.into_inner());
        let Some(spawner) = mesh.as_ref() else {
            return Err(HostError::unavailable("system.lock needs cluster.enabled: true"));
        };
        if matches!(op, wippy_lua_stdlib::LockOp::Acquire { .. }) {
            // Counted in now, on the worker, so an exit that comes first
            // still sees the acquire in flight.
            shared.locks.begin(&pid);
            if let Some(p) = self.0.procs.borrow_mut().get_mut(slot) {
                p.has_claims = true;
            }
        }
        let worker = self.0.idx;
        let shared = shared.clone();
        spawner.spawn(async move {
            let result = match op {
                wippy_lua_stdlib::LockOp::Acquire { name, wait_ms } => {
                    crate::lock::acquire(&shared, &pid, &name, Duration::from_millis(wait_ms)).await
                }
                wippy_lua_stdlib::LockOp::Release { name } => crate::lock::release(&shared, &pid, &name).await,
            };
            shared.post(worker, Envelope::Reply { call, result });
        });
        Ok(())
    }

    fn name_call(&self, call: u64, slot: u32, op: wippy_lua_stdlib::NameOp) -> HostResult<()> {
        use wippy_lua_stdlib::NameOp;
        let shared = &self.0.shared;
        let caller = self.0.procs.borrow().get(slot).map(|p| p.pid.clone());
        let caller = caller.ok_or_else(|| HostError::invalid("process.registry must be called by a process"))?;
        let scope = match &op {
            NameOp::Register { scope, .. } | NameOp::Unregister { scope, .. } => *scope,
        };
        if !(1..=3).contains(&scope) {
            return Err(HostError::invalid(format!("unknown registry scope {scope}")));
        }
        let target = match &op {
            NameOp::Register { pid, .. } => {
                let target = pid.clone().unwrap_or_else(|| caller.clone());
                crate::replica::calls::own_pid(shared, &target, scope_label(scope))?;
                Some(target)
            }
            NameOp::Unregister { .. } => None,
        };
        let worker = self.0.idx;
        if scope == 1 {
            // EVENTUAL names are this node's to publish: answered at once.
            let result = match (op, target) {
                (NameOp::Register { name, .. }, Some(t)) => {
                    if shared.strong.blocks(&name, &t) {
                        Err(HostError::already_exists(format!("strong name reservation pending for {name}")))
                    } else {
                        let at = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
                        let r = crate::replica::calls::register_eventual(shared, &name, &t, at);
                        if r.is_ok()
                            && let Ok(pid) = Pid::parse(&t)
                        {
                            self.0.mark_pg(&pid);
                        }
                        r
                    }
                }
                (NameOp::Unregister { name, .. }, _) => Ok(crate::replica::calls::unregister_eventual(shared, &name)),
                (NameOp::Register { .. }, None) => Err(HostError::invalid("no process to register")),
            };
            shared.post(worker, Envelope::Reply { call, result });
            return Ok(());
        }
        let mesh = shared.mesh.lock().unwrap_or_else(|e| e.into_inner());
        let Some(spawner) = mesh.as_ref() else {
            return Err(HostError::unavailable("global registry not available (cluster.enabled is false)"));
        };
        // The claim is counted in first and given back when the named
        // process exits, so that process carries the flag (the caller, or
        // another process of this node, on whichever worker).
        if let Some(t) = &target
            && let Ok(pid) = Pid::parse(t)
        {
            shared.names.begin(t);
            self.0.mark_claims(&pid);
        }
        let shared = shared.clone();
        spawner.spawn(async move {
            let result = match (op, target) {
                (NameOp::Register { name, .. }, Some(t)) if scope == 3 => {
                    crate::naming::strong::register(&shared, &name, &t).await
                }
                (NameOp::Register { name, .. }, Some(t)) => {
                    crate::naming::consistent::register(&shared, &name, &t).await
                }
                (NameOp::Unregister { name, .. }, _) => {
                    crate::naming::consistent::unregister(&shared, &caller, &name).await
                }
                (NameOp::Register { .. }, None) => Err(HostError::invalid("no process to register")),
            };
            shared.post(worker, Envelope::Reply { call, result });
        });
        Ok(())
    }

    fn pg_call(&self, slot: u32, scope: &str, op: wippy_lua_stdlib::PgOp) -> HostResult<Value> {
        let pid = self.pid_of_slot(slot)?;
        let marks = matches!(op, wippy_lua_stdlib::PgOp::Join(_) | wippy_lua_stdlib::PgOp::Watch(_));
        let r = crate::replica::calls::pg_call(&self.0.shared, &pid, scope, op);
        if marks
            && r.is_ok()
            && let Some(p) = self.0.procs.borrow_mut().get_mut(slot)
        {
            p.in_pg = true;
        }
        r
    }

    fn store_info(&self, id: &str) -> HostResult<wippy_lua_stdlib::StoreInfo> {
        let stores = self.0.shared.stores.read().unwrap_or_else(|e| e.into_inner());
        let def = stores.get(id).ok_or_else(|| HostError::not_found(format!("no store entry {id}")))?;
        if self.0.shared.mesh.lock().unwrap_or_else(|e| e.into_inner()).is_none() {
            return Err(HostError::unavailable(format!("store {id}: replicated stores need cluster.enabled: true")));
        }
        Ok(crate::store::info(def))
    }

    fn store_call(&self, call: u64, store: &str, op: wippy_lua_stdlib::StoreOp) -> HostResult<()> {
        let shared = &self.0.shared;
        let def = shared.stores.read().unwrap_or_else(|e| e.into_inner()).get(store).cloned();
        let def = def.ok_or_else(|| HostError::not_found(format!("no store entry {store}")))?;
        if def.backend == crate::app::StoreBackend::KvCrdt {
            // Served from this node's copy: answered at once.
            let result = shared.kv_crdt(&def.namespace, op);
            shared.post(self.0.idx, Envelope::Reply { call, result });
            return Ok(());
        }
        let mesh = shared.mesh.lock().unwrap_or_else(|e| e.into_inner());
        let Some(spawner) = mesh.as_ref() else {
            return Err(HostError::unavailable(format!("store {store}: replicated stores need cluster.enabled: true")));
        };
        let worker = self.0.idx;
        let shared = shared.clone();
        spawner.spawn(async move {
            let result = crate::store::execute(&shared, &def, op).await;
            shared.post(worker, Envelope::Reply { call, result });
        });
        Ok(())
    }

    fn print(&self, line: &[u8]) {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(line);
        let _ = out.write_all(b"\n");
        let _ = out.flush();
    }

    fn log(&self, level: Level, msg: &str, fields: &[(String, String)]) {
        let pid = self.0.procs.borrow().get(self.0.current.get()).map(|p| p.pid.clone()).unwrap_or_default();
        let fields = fields.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ");
        match level {
            Level::Debug => tracing::debug!(target: "lua", pid = %pid, fields = %fields, "{msg}"),
            Level::Info => tracing::info!(target: "lua", pid = %pid, fields = %fields, "{msg}"),
            Level::Warn => tracing::warn!(target: "lua", pid = %pid, fields = %fields, "{msg}"),
            Level::Error => tracing::error!(target: "lua", pid = %pid, fields = %fields, "{msg}"),
        }
    }
}

/// How an error message names a registry scope.
fn scope_label(scope: i64) -> &'static str {
    match scope {
        1 => "an EVENTUAL",
        3 => "a STRONG",
        _ => "a CONSISTENT",
    }
}
