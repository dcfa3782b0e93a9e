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
use wippy_lua_stdlib::{KILL, Kernel, Value};

use super::envelope::{Envelope, EventKind, ExitResult, SpawnOrder};
use super::host::WorkerHost;
use super::preempt;
use super::procs::{Proc, Procs};
use super::timers::Timers;
use crate::pid::Pid;
use crate::shared::Shared;

/// Slot value meaning "no process is running".
pub(crate) const NONE: u32 = u32::MAX;
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
    pub(crate) pending: RefCell<Option<(u64, String)>>,
    pub(crate) spawn_tick: Cell<u32>,
    pub(crate) kernel: OnceCell<Kernel>,
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

    /// Resumes one process for one slice.
    fn run(&self, slot: u32) {
        let (state, first) = {
            let mut procs = self.procs.borrow_mut();
            let Some(p) = procs.get_mut(slot) else { return };
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
                }
            }
            ffi::LUA_OK => {
                unsafe { ffi::lua_settop(state, 0) };
                self.finalize(slot, None);
            }
            code => {
                let msg = unsafe { error_text(state, code) };
                if let Err(e) = self.kernel().reap.call::<()>(slot) {
                    tracing::warn!(error = %e, "kernel reap failed");
                }
                self.finalize(slot, Some(Err(msg)));
            }
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
        let _ = self.kernel().procs.raw_set(slot, mlua::Value::Nil);
        let mut result = forced.or_else(|| p.result.take()).unwrap_or(Ok(Value::Nil));
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
        self.shared.registry.release(&p.pid);
        if let Some(rel) = p.rel.take() {
            for w in rel.watchers {
                self.signal(&w, EventKind::Exit, &p.pid, result.clone());
            }
            for l in rel.links {
                self.signal(&l, EventKind::LinkExit, &p.pid, result.clone());
            }
            for t in rel.watching {
                if let Ok(pid) = Pid::parse(&t) {
                    self.route(Envelope::Watch { to: pid.counter, to_pid: t, from: p.pid.clone(), link: false, on: false });
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
            self.route(Envelope::Event { to: pid.counter, kind, from: from.to_string(), result, reason: String::new() });
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
                if let Some(slot) = self.procs.borrow().slot_of(to) {
                    self.kill_later(slot, reason);
                }
                Ok(())
            }
            Envelope::CheckName { to, to_pid, name } => {
                if self.procs.borrow().slot_of(to).is_none() {
                    self.shared.registry.unregister_if(&name, &to_pid);
                }
                Ok(())
            }
        };
        if let Err(e) = res {
            tracing::warn!(worker = self.idx, error = %e, "could not deliver to a process");
        }
    }

    fn kill_later(&self, slot: u32, reason: String) {
        // The target may be the process whose slice is running right now
        // (it cannot be: dispatch runs between slices), so kill directly.
        self.kill(slot, reason);
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
            k.spawn_order.call((slot, o.pid.as_str(), o.def.as_str(), o.method.as_str(), o.parent.as_str(), args))?;
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
                p.rel_mut().watchers.push(o.parent.clone());
            }
            if o.flags & 0b010 != 0 {
                p.rel_mut().links.push(o.parent);
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
                    rel.watching.retain(|w| *w != from);
                }
                let (value, err) = split(&self.lua, &k.err_mt, result)?;
                k.event.call::<()>((slot, "pid.exit", from, value, err))
            }
            EventKind::LinkExit => {
                let trap = {
                    let mut procs = self.procs.borrow_mut();
                    let Some(p) = procs.get_mut(slot) else { return Ok(()) };
                    let linked = p.rel.as_mut().is_some_and(|r| {
                        let before = r.links.len();
                        r.links.retain(|l| *l != from);
                        before != r.links.len()
                    });
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
            EventKind::Cancel => k.event.call::<()>((slot, "pid.cancel", from, mlua::Value::Nil, mlua::Value::Nil, reason)),
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
                    if !list.contains(&from) {
                        list.push(from);
                    }
                } else {
                    list.retain(|x| *x != from);
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
        loop {
            self.take_mail(&mut mail);
            if !self.timers.borrow().is_empty() {
                self.fire_timers(Instant::now(), &mut due);
            }
            for _ in 0..BUDGET {
                let Some(slot) = self.runq.borrow_mut().pop_front() else { break };
                self.run(slot);
                self.drain_local();
                self.flush();
            }
            self.flush();
            if self.shared.stopping.load(Ordering::SeqCst) {
                self.stop_all();
                return;
            }
            if self.runq.borrow().is_empty() && self.local.borrow().is_empty() {
                let wait = self.timers.borrow().next_in(Instant::now());
                if wait != Some(Duration::ZERO) {
                    mailroom.sleep(wait);
                }
            }
        }
    }

    fn stop_all(&self) {
        let slots = self.procs.borrow().slots();
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

/// Reads the error object a failed resume left on `state`.
unsafe fn error_text(state: *mut ffi::lua_State, code: std::ffi::c_int) -> String {
    if code == ffi::LUA_ERRMEM {
        return "not enough memory".to_string();
    }
    // SAFETY: the error object is at the top of the dead coroutine's stack.
    unsafe {
        let mut len = 0usize;
        let p = ffi::lua_tolstring(state, -1, &mut len);
        if p.is_null() {
            return format!("process failed (error status {code})");
        }
        let bytes = std::slice::from_raw_parts(p.cast::<u8>(), len);
        String::from_utf8_lossy(bytes).into_owned()
    }
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
        pending: RefCell::new(None),
        spawn_tick: Cell::new(0),
        kernel: OnceCell::new(),
    });
    let kernel = wippy_lua_stdlib::install(&lua, Rc::new(WorkerHost(core.clone())))?;
    let _ = core.kernel.set(kernel);
    core.run_loop();
    Ok(())
}
