//! One worker: an OS thread that owns a Lua state and runs its processes.
//!
//! The loop takes cross-worker mail, fires due timers, then resumes runnable
//! coroutines straight from a run queue (`lua_resume`, ~80 ns) — no future,
//! no channel hop per message. Sends between processes of this worker stay
//! inside Lua (the kernel); only what leaves the worker becomes an
//! [`Envelope`], collected per target and handed over once per slice.

use std::cell::{Cell, OnceCell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use mlua::{Lua, LuaOptions, StdLib, ffi};
use wippy_lua_stdlib::{HostError, KILL, Kernel, SpawnFlags, Value};

use super::envelope::{Envelope, EventKind, ExitResult, SpawnOrder};
use super::host::WorkerHost;
use super::preempt;
use super::procs::{Proc, Procs};
use super::timers::Timers;
use crate::pid::Pid;
use crate::shared::Shared;

/// Slot value meaning "no process is running".
pub(crate) const NONE: u32 = u32::MAX;
/// How long an idle worker spins for mail before parking.
const SPIN: Duration = Duration::from_micros(50);
/// Resumes between two looks at the cross-worker inbox.
const BUDGET: usize = 512;

/// The worker's state, shared by its loop and its [`WorkerHost`].
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
    pub(crate) timers: RefCell<Timers>,
    pub(crate) current: Cell<u32>,
    pub(crate) spawn_tick: Cell<u32>,
    /// Definition and host ids known to exist (checked once, then cached:
    /// definitions do not change while the node runs).
    pub(crate) known: RefCell<std::collections::HashSet<Vec<u8>>>,
    /// Registry reference of the kernel's `PROCS` table.
    pub(crate) procs_ref: Cell<std::ffi::c_int>,
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
    fn kernel(&self) -> &Kernel {
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

    fn check_known(&self, id: &[u8], host: &[u8]) -> Result<(), HostError> {
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
    fn place_worker(&self) -> usize {
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

    fn flush(&self) {
        if !self.outbox_dirty.replace(false) {
            return;
        }
        let mut out = self.outbox.borrow_mut();
        for (w, batch) in out.iter_mut().enumerate() {
            if !batch.is_empty() {
                self.shared.workers[w].mailroom.post(batch);
            }
        }
    }

    /// Resumes one process for one slice; true when it was preempted.
    fn run(&self, slot: u32) -> bool {
        let (state, first) = {
            let mut procs = self.procs.borrow_mut();
            let Some(p) = procs.get_mut(slot) else { return false };
            p.queued = false;
            let first = !p.started;
            p.started = true;
            (p.state, first)
        };
        let slot_preempt = &self.shared.workers[self.idx].preempt;
        self.current.set(slot);
        slot_preempt.enter(state);
        let mut nres: std::ffi::c_int = 0;
        // SAFETY: `state` is a live coroutine of this worker's Lua state,
        // anchored by the kernel's PROCS table until `finalize`.
        let status = unsafe {
            let l = self.main_state;
            ffi::lua_checkstack(l, 3);
            ffi::lua_rawgeti(l, ffi::LUA_REGISTRYINDEX, ffi::lua_Integer::from(self.cur_ref.get()));
            ffi::lua_pushinteger(l, ffi::lua_Integer::from(slot));
            ffi::lua_rawseti(l, -2, 1);
            ffi::lua_settop(l, -2);
            let nargs = if first {
                ffi::lua_pushinteger(state, ffi::lua_Integer::from(slot));
                1
            } else {
                0
            };
            ffi::lua_resume(state, self.main_state, nargs, &mut nres)
        };
        slot_preempt.leave();
        self.current.set(NONE);
        match status {
            ffi::LUA_YIELD => {
                // SAFETY: the yielded values are the top `nres` slots of `state`.
                let kill = nres >= 1 && unsafe { ffi::lua_touserdata(state, -1) } == KILL;
                unsafe { ffi::lua_settop(state, -nres - 1) };
                if kill {
                    self.kill(slot, "terminated".to_string());
                } else if nres == 0 {
                    preempt::take_preempted();
                    self.wake(slot);
                    return true;
                }
            }
            ffi::LUA_OK => {
                // SAFETY: the return values are the top `nres` slots of `state`.
                unsafe { self.hand_result(slot, state, nres) };
                self.finalize(slot, None);
            }
            code => {
                let msg = if code == ffi::LUA_ERRMEM {
                    // free the dead process's garbage before touching the kernel again
                    let _ = self.lua.gc_collect();
                    "not enough memory".to_string()
                } else {
                    // SAFETY: the error object sits on top of the dead coroutine.
                    unsafe { self.failure_text(slot, state) }
                };
                if let Err(e) = self.kernel().reap.call::<()>(slot) {
                    tracing::warn!(error = %e, "kernel reap failed");
                }
                self.finalize(slot, Some(Err(msg)));
            }
        }
        false
    }

    /// Message and traceback of a process whose coroutine died with an
    /// error: the error object moves to the main stack and the kernel's
    /// `fail` formats it inside a protected call.
    unsafe fn failure_text(&self, slot: u32, co: *mut ffi::lua_State) -> String {
        let l = self.main_state;
        // SAFETY: balanced stack use on the worker's main state between resumes;
        // every call that can raise runs under lua_pcall.
        unsafe {
            let base = ffi::lua_gettop(l);
            if ffi::lua_checkstack(l, 4) == 0 {
                return "process failed (no stack space to describe the error)".to_string();
            }
            ffi::lua_rawgeti(l, ffi::LUA_REGISTRYINDEX, ffi::lua_Integer::from(self.fail_ref.get()));
            ffi::lua_pushinteger(l, ffi::lua_Integer::from(slot));
            ffi::lua_xmove(co, l, 1);
            let status = ffi::lua_pcall(l, 2, 1, 0);
            let mut len = 0usize;
            let p = ffi::lua_tolstring(l, -1, &mut len);
            let text = if status == ffi::LUA_OK && !p.is_null() {
                String::from_utf8_lossy(std::slice::from_raw_parts(p.cast::<u8>(), len)).into_owned()
            } else {
                "process failed (its error could not be described)".to_string()
            };
            ffi::lua_settop(l, base);
            text
        }
    }

    /// A process returned: its first return value moves to the main stack
    /// and the kernel's `done` records it, inside a protected call.
    unsafe fn hand_result(&self, slot: u32, co: *mut ffi::lua_State, nres: std::ffi::c_int) {
        let l = self.main_state;
        // SAFETY: balanced stack use on the main state between resumes; the
        // only call that can raise runs under lua_pcall.
        unsafe {
            let base = ffi::lua_gettop(l);
            if ffi::lua_checkstack(l, 4) == 0 {
                ffi::lua_settop(co, 0);
                return;
            }
            ffi::lua_rawgeti(l, ffi::LUA_REGISTRYINDEX, ffi::lua_Integer::from(self.done_ref.get()));
            ffi::lua_pushinteger(l, ffi::lua_Integer::from(slot));
            if nres > 0 {
                ffi::lua_settop(co, -nres); // keep the first result only
                ffi::lua_xmove(co, l, 1);
            } else {
                ffi::lua_pushnil(l);
            }
            ffi::lua_settop(co, 0);
            if ffi::lua_pcall(l, 2, 0, 0) != ffi::LUA_OK {
                tracing::warn!(slot, "could not record a process result");
            }
            ffi::lua_settop(l, base);
        }
    }

    /// Kills a process that is not running (terminate, link, shutdown).
    pub(crate) fn kill(&self, slot: u32, reason: String) {
        let Some(state) = self.procs.borrow().get(slot).map(|p| p.state) else { return };
        if let Err(e) = self.kernel().reap.call::<()>(slot) {
            tracing::warn!(error = %e, "kernel reap failed");
        }
        // SAFETY: the coroutine is suspended (or never started) and anchored.
        unsafe {
            ffi::lua_closethread(state, self.main_state);
        }
        self.finalize(slot, Some(Err(reason)));
    }

    /// Releases everything a finished process held and tells its watchers.
    fn finalize(&self, slot: u32, forced: Option<ExitResult>) {
        let Some(mut p) = self.procs.borrow_mut().remove(slot) else { return };
        // SAFETY: balanced push/pop on the worker's own main stack between resumes.
        unsafe {
            let l = self.main_state;
            ffi::lua_checkstack(l, 3);
            for r in [self.procs_ref.get(), self.cos_ref.get()] {
                ffi::lua_rawgeti(l, ffi::LUA_REGISTRYINDEX, ffi::lua_Integer::from(r));
                ffi::lua_pushnil(l);
                ffi::lua_rawseti(l, -2, ffi::lua_Integer::from(slot));
                ffi::lua_settop(l, -2);
            }
        }
        let recorded = self.exit_result.borrow_mut().take().filter(|(s, _)| *s == slot).map(|(_, r)| r);
        let mut result = forced.or(recorded).unwrap_or(Ok(Value::Nil));
        if let Err(msg) = &mut result
            && msg.starts_with("not enough memory")
        {
            *msg = format!(
                "memory limit exceeded: this worker's Lua heap reached scheduler.memory_limit ({} bytes)",
                self.shared.memory_limit
            );
            let _ = self.lua.gc_collect();
        }
        self.shared.workers[self.idx].live.fetch_sub(1, Ordering::Relaxed);
        if p.has_names {
            self.shared.registry.release(&p.pid);
        }
        if let Some(rel) = p.rel.take() {
            for w in rel.watchers {
                self.signal(&w, EventKind::Exit, &p.pid, result.clone());
            }
            for l in rel.links {
                self.signal(&l, EventKind::LinkExit, &p.pid, result.clone());
            }
            for t in rel.watching {
                if let Ok(pid) = Pid::parse(&t) {
                    self.route(Envelope::Watch {
                        to: pid.counter,
                        to_pid: t,
                        from: p.pid.clone(),
                        link: false,
                        on: false,
                    });
                }
            }
        }
        if let Err(e) = &result {
            tracing::debug!(pid = %p.pid, error = %e, "process failed");
        }
        if p.system_watch
            && let Some((_, cb)) = self.shared.watches.remove(&p.counter)
        {
            cb(result);
        }
    }

    fn signal(&self, to: &str, kind: EventKind, from: &str, result: ExitResult) {
        if let Ok(pid) = Pid::parse(to) {
            self.route(Envelope::Event {
                to: pid.counter,
                kind,
                from: from.to_string(),
                result,
                reason: String::new(),
            });
        }
    }

    /// Handles one envelope addressed to this worker.
    fn dispatch(&self, env: Envelope) {
        let k = self.kernel();
        let res = match env {
            Envelope::Message { to_pid, from, topic, payload, .. } => {
                payload.to_lua(&self.lua, &k.err_mt).and_then(|v| k.deliver.call::<()>((to_pid, topic, from, v)))
            }
            Envelope::Spawn(order) => self.start_order(*order),
            Envelope::Event { to, kind, from, result, reason } => self.event(to, kind, from, result, reason),
            Envelope::Watch { to, to_pid, from, link, on } => {
                self.watch(to, to_pid, from, link, on);
                Ok(())
            }
            Envelope::Kill { to, reason } => {
                let slot = self.procs.borrow().slot_of(to);
                if let Some(slot) = slot {
                    self.kill(slot, reason);
                }
                Ok(())
            }
            Envelope::CheckName { to, to_pid, name } => {
                let slot = self.procs.borrow().slot_of(to);
                match slot.and_then(|s| self.procs.borrow_mut().get_mut(s).map(|p| p.has_names = true)) {
                    Some(()) => {}
                    None => self.shared.registry.unregister_if(&name, &to_pid),
                }
                Ok(())
            }
        };
        if let Err(e) = res {
            tracing::warn!(worker = self.idx, error = %e, "could not deliver to a process");
        }
    }

    fn start_order(&self, o: SpawnOrder) -> mlua::Result<()> {
        let k = self.kernel();
        let slot = self.procs.borrow().next_slot();
        let args = self.lua.create_table_with_capacity(o.args.len(), 1)?;
        for (i, a) in o.args.iter().enumerate() {
            args.raw_set(i + 1, a.to_lua(&self.lua, &k.err_mt)?)?;
        }
        args.raw_set("n", o.args.len())?;
        let (co, err): (Option<mlua::Thread>, Option<String>) =
            k.spawn_order.call((slot, o.pid.as_str(), o.def.as_str(), args))?;
        let Some(co) = co else {
            let msg = err.unwrap_or_else(|| "could not start process".into());
            tracing::error!(pid = %o.pid, def = %o.def, error = %msg, "spawn failed");
            if o.system_watch
                && let Some((_, cb)) = self.shared.watches.remove(&o.counter)
            {
                cb(Err(msg));
            }
            return Ok(());
        };
        let mut p = Proc::new(co.state(), o.counter, o.pid);
        p.system_watch = o.system_watch;
        if !o.parent.is_empty() {
            if o.flags & 0b101 != 0 {
                p.rel_mut().watchers.insert(o.parent.clone());
            }
            if o.flags & 0b010 != 0 {
                p.rel_mut().links.insert(o.parent);
            }
        }
        self.shared.workers[self.idx].live.fetch_add(1, Ordering::Relaxed);
        let slot = self.procs.borrow_mut().insert(p);
        self.wake(slot);
        Ok(())
    }

    fn event(&self, to: u64, kind: EventKind, from: String, result: ExitResult, reason: String) -> mlua::Result<()> {
        let Some(slot) = self.procs.borrow().slot_of(to) else { return Ok(()) };
        let k = self.kernel();
        match kind {
            EventKind::Exit => {
                if let Some(rel) = self.procs.borrow_mut().get_mut(slot).and_then(|p| p.rel.as_mut()) {
                    rel.watching.remove(&from);
                }
                let (value, err) = split(&self.lua, &k.err_mt, result)?;
                k.event.call::<()>((slot, "pid.exit", from, value, err))
            }
            EventKind::LinkExit => {
                let trap = {
                    let mut procs = self.procs.borrow_mut();
                    let Some(p) = procs.get_mut(slot) else { return Ok(()) };
                    let linked = p.rel.as_mut().is_some_and(|r| r.links.remove(&from));
                    if !linked {
                        return Ok(());
                    }
                    p.trap_links
                };
                match result {
                    Ok(_) => Ok(()),
                    Err(e) if trap => k.event.call::<()>((slot, "pid.link.down", from, mlua::Value::Nil, e)),
                    Err(_) => {
                        self.kill(slot, "linked process failed".to_string());
                        Ok(())
                    }
                }
            }
            EventKind::Cancel => {
                k.event.call::<()>((slot, "pid.cancel", from, mlua::Value::Nil, mlua::Value::Nil, reason))
            }
        }
    }

    fn watch(&self, to: u64, to_pid: String, from: String, link: bool, on: bool) {
        let slot = self.procs.borrow().slot_of(to);
        match slot {
            Some(slot) => {
                let mut procs = self.procs.borrow_mut();
                let Some(p) = procs.get_mut(slot) else { return };
                let rel = p.rel_mut();
                let list = if link { &mut rel.links } else { &mut rel.watchers };
                if on {
                    list.insert(from);
                } else {
                    list.remove(&from);
                }
            }
            None if on => {
                let kind = if link { EventKind::LinkExit } else { EventKind::Exit };
                self.signal(&from, kind, &to_pid, Err("no such process".to_string()));
            }
            None => {}
        }
    }

    /// Drains same-worker signals and the cross-worker inbox.
    fn take_mail(&self, scratch: &mut Vec<Envelope>) {
        self.shared.workers[self.idx].mailroom.take(scratch);
        for env in scratch.drain(..) {
            self.dispatch(env);
        }
        self.drain_local();
    }

    fn drain_local(&self) {
        loop {
            let next = self.local.borrow_mut().pop_front();
            match next {
                Some(env) => self.dispatch(env),
                None => break,
            }
        }
    }

    fn fire_timers(&self, now: Instant, scratch: &mut Vec<u64>) {
        self.timers.borrow_mut().due(now, scratch);
        for id in scratch.drain(..) {
            if let Err(e) = self.kernel().timer.call::<()>(id) {
                tracing::warn!(error = %e, "timer delivery failed");
            }
        }
    }

    /// The worker loop; returns when the node stops.
    pub(crate) fn run_loop(&self) {
        let mut mail = Vec::new();
        let mut due = Vec::new();
        let mailroom = &self.shared.workers[self.idx].mailroom;
        // Spinning only pays when another worker may answer soon.
        let spin = if self.shared.n_workers() > 1 { SPIN } else { Duration::ZERO };
        loop {
            self.take_mail(&mut mail);
            if !self.timers.borrow().is_empty() {
                self.fire_timers(Instant::now(), &mut due);
            }
            for _ in 0..BUDGET {
                let Some(slot) = self.runq.borrow_mut().pop_front() else { break };
                let preempted = self.run(slot);
                self.drain_local();
                self.flush();
                if preempted {
                    // a whole time slice went by: look at timers and mail now
                    break;
                }
            }
            self.flush();
            if self.shared.stopping.load(Ordering::SeqCst) {
                self.stop_all();
                return;
            }
            if self.runq.borrow().is_empty() && self.local.borrow().is_empty() {
                let wait = self.timers.borrow().next_in(Instant::now());
                if wait != Some(Duration::ZERO) {
                    mailroom.sleep(wait, spin);
                }
            }
        }
    }

    fn stop_all(&self) {
        let slots = self.procs.borrow().slots();
        if tracing::enabled!(tracing::Level::DEBUG) {
            let _ = self.lua.gc_collect();
            tracing::debug!(
                worker = self.idx,
                live = slots.len(),
                lua_heap_bytes = self.lua.used_memory(),
                "worker stopping"
            );
        }
        for slot in slots {
            self.kill(slot, "node shutting down".to_string());
        }
        self.drain_local();
        self.flush();
    }
}

fn split(lua: &Lua, err_mt: &mlua::Table, r: ExitResult) -> mlua::Result<(mlua::Value, mlua::Value)> {
    Ok(match r {
        Ok(v) => (v.to_lua(lua, err_mt)?, mlua::Value::Nil),
        Err(e) => (mlua::Value::Nil, mlua::Value::String(lua.create_string(e)?)),
    })
}

/// Pins a function in the registry and returns its raw reference.
fn registry_ref_fn(lua: &Lua, f: mlua::Function) -> mlua::Result<std::ffi::c_int> {
    let mut r = ffi::LUA_NOREF;
    // SAFETY: exec_raw leaves the function on the stack; luaL_ref pops it.
    unsafe {
        lua.exec_raw::<()>(f, |state| {
            r = ffi::luaL_ref(state, ffi::LUA_REGISTRYINDEX);
        })?;
    }
    Ok(r)
}

/// Pins a table in the registry and returns its raw reference.
fn registry_ref(lua: &Lua, t: mlua::Table) -> mlua::Result<std::ffi::c_int> {
    let mut r = ffi::LUA_NOREF;
    // SAFETY: exec_raw leaves the table on the stack; luaL_ref pops it.
    unsafe {
        lua.exec_raw::<()>(t, |state| {
            r = ffi::luaL_ref(state, ffi::LUA_REGISTRYINDEX);
        })?;
    }
    Ok(r)
}

/// Builds a worker's Lua state and runs its loop on the current thread.
pub(crate) fn run_worker(idx: usize, shared: Arc<Shared>) -> Result<(), mlua::Error> {
    let libs = StdLib::COROUTINE | StdLib::TABLE | StdLib::STRING | StdLib::MATH | StdLib::UTF8 | StdLib::OS;
    // The debug library is loaded for the kernel's tracebacks only; no
    // process environment exposes it.
    // SAFETY: mlua refuses `debug` in safe mode; no C modules are loadable
    // (no `package` library) and process environments never see `debug`.
    let lua = unsafe { Lua::unsafe_new_with(libs | StdLib::DEBUG, LuaOptions::default()) };
    lua.set_memory_limit(shared.memory_limit)?;
    // Messages and per-spawn records die young; the generational collector
    // reclaims them without re-marking every long-lived process each cycle.
    lua.gc_set_mode(mlua::state::GcMode::Generational(mlua::state::GcGenParams::default()));
    let main_state = lua.state();
    shared.workers[idx].mailroom.bind();
    let core = Rc::new(Core {
        idx,
        shared: shared.clone(),
        lua: lua.clone(),
        main_state,
        procs: RefCell::default(),
        runq: RefCell::default(),
        local: RefCell::default(),
        outbox: RefCell::new((0..shared.n_workers()).map(|_| Vec::new()).collect()),
        outbox_dirty: Cell::new(false),
        timers: RefCell::default(),
        current: Cell::new(NONE),
        spawn_tick: Cell::new(0),
        known: RefCell::default(),
        procs_ref: Cell::new(ffi::LUA_NOREF),
        cos_ref: Cell::new(ffi::LUA_NOREF),
        fail_ref: Cell::new(ffi::LUA_NOREF),
        done_ref: Cell::new(ffi::LUA_NOREF),
        exit_result: RefCell::new(None),
        kernel: OnceCell::new(),
        cur_ref: Cell::new(ffi::LUA_NOREF),
    });
    super::fast::bind(&core);
    let fast = super::fast::functions(&lua)?;
    let kernel = wippy_lua_stdlib::install(&lua, Rc::new(WorkerHost(core.clone())), fast)?;
    core.cur_ref.set(registry_ref(&lua, kernel.cur.clone())?);
    core.procs_ref.set(registry_ref(&lua, kernel.procs.clone())?);
    core.cos_ref.set(registry_ref(&lua, kernel.cos.clone())?);
    core.fail_ref.set(registry_ref_fn(&lua, kernel.fail.clone())?);
    core.done_ref.set(registry_ref_fn(&lua, kernel.done.clone())?);
    let _ = core.kernel.set(kernel);
    core.run_loop();
    Ok(())
}
