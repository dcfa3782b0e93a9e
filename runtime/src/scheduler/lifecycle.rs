//! Running a process for one slice, and everything that ends one.

use std::sync::atomic::Ordering;

use mlua::ffi;
use wippy_lua_stdlib::{KILL, Value};

use super::core::{Core, NONE};
use super::envelope::{Envelope, EventKind, ExitResult};
use super::preempt;
use crate::cluster::mesh::relay::RelayItem;
use crate::pid::Pid;

impl Core {
    /// Resumes one process for one slice; true when it was preempted.
    pub(super) fn run(&self, slot: u32) -> bool {
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
    pub(super) unsafe fn failure_text(&self, slot: u32, co: *mut ffi::lua_State) -> String {
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
    pub(super) unsafe fn hand_result(&self, slot: u32, co: *mut ffi::lua_State, nres: std::ffi::c_int) {
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
    pub(super) fn finalize(&self, slot: u32, forced: Option<ExitResult>) {
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
        if p.in_pg || p.has_claims {
            self.shared.with_table(None, |t| ((), t.exit(&p.pid)));
        }
        if p.has_claims {
            crate::lock::on_exit(&self.shared, &p.pid);
            crate::naming::consistent::on_exit(&self.shared, &p.pid);
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
                    let from = p.pid.clone();
                    if self.is_here(&pid) {
                        self.route(Envelope::Watch { to: pid.counter, to_pid: t, from, link: false, on: false });
                    } else {
                        self.relay(pid.node, RelayItem::Watch { to: t, from, link: false, on: false });
                    }
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

    /// Sends a lifecycle event to `to`, on this node or another.
    pub(super) fn signal(&self, to: &str, kind: EventKind, from: &str, result: ExitResult) {
        let Ok(pid) = Pid::parse(to) else { return };
        if self.is_here(&pid) {
            self.route(Envelope::Event {
                to: pid.counter,
                kind,
                from: from.to_string(),
                result,
                reason: String::new(),
            });
        } else {
            let item =
                RelayItem::Event { to: to.to_string(), from: from.to_string(), kind, result, reason: String::new() };
            self.relay(pid.node, item);
        }
    }
}
