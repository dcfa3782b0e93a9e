//! One worker: an OS thread that owns a Lua state and runs its processes.
//!
//! The loop takes cross-worker mail, fires due timers, then resumes runnable
//! coroutines straight from a run queue (`lua_resume`, ~80 ns) — no future,
//! no channel hop per message. Sends between processes of this worker stay
//! inside Lua (the kernel); only what leaves the worker becomes an
//! [`Envelope`], collected per target and handed over once per slice.

use std::cell::{Cell, OnceCell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use mlua::{Lua, LuaOptions, StdLib, ffi};

use super::core::{Core, NONE};
use super::host::WorkerHost;
use crate::shared::Shared;

/// How long an idle worker spins for mail before parking.
const SPIN: Duration = Duration::from_micros(50);
/// Resumes between two looks at the cross-worker inbox.
const BUDGET: usize = 512;

impl Core {
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

    pub(super) fn stop_all(&self) {
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

/// Pins a kernel table or function in the registry and returns its raw
/// reference, so the hot path can push it without mlua.
fn registry_ref(lua: &Lua, t: impl mlua::IntoLua) -> mlua::Result<std::ffi::c_int> {
    let mut r = ffi::LUA_NOREF;
    // SAFETY: exec_raw leaves the value on the stack; luaL_ref pops it.
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
        remote: RefCell::new(Vec::new()),
        timers: RefCell::default(),
        current: Cell::new(NONE),
        spawn_tick: Cell::new(0),
        known: RefCell::default(),
        procs_ref: Cell::new(ffi::LUA_NOREF),
        cos_ref: Cell::new(ffi::LUA_NOREF),
        err_mt_ref: Cell::new(ffi::LUA_NOREF),
        deliver_ref: Cell::new(ffi::LUA_NOREF),
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
    core.err_mt_ref.set(registry_ref(&lua, kernel.err_mt.clone())?);
    core.deliver_ref.set(registry_ref(&lua, kernel.deliver.clone())?);
    core.fail_ref.set(registry_ref(&lua, kernel.fail.clone())?);
    core.done_ref.set(registry_ref(&lua, kernel.done.clone())?);
    let _ = core.kernel.set(kernel);
    core.run_loop();
    Ok(())
}
