//! Envelopes from other workers (and same-worker signals): messages,
//! spawns, lifecycle events, watch requests, kills.

use std::sync::atomic::Ordering;
use std::time::Instant;

use mlua::Lua;

use super::core::Core;
use super::envelope::{Envelope, EventKind, ExitResult, SpawnOrder};
use super::procs::Proc;
use crate::cluster::route::NODE_DOWN;
use crate::pid::Pid;

impl Core {
    /// Handles one envelope addressed to this worker.
    pub(super) fn dispatch(&self, env: Envelope) {
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
            Envelope::NodeDown { node } => self.node_down(&node),
            Envelope::MarkClaims { to_pid, .. } => {
                if let Ok(pid) = crate::pid::Pid::parse(&to_pid) {
                    self.mark_claims(&pid);
                }
                Ok(())
            }
            Envelope::Reply { call, result } => match result {
                Ok(v) => v.to_lua(&self.lua, &k.err_mt).and_then(|v| k.reply.call::<()>((call, v))),
                Err(e) => k.reply.call::<()>((call, mlua::Value::Nil, e.kind, e.message)),
            },
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

    pub(super) fn start_order(&self, o: SpawnOrder) -> mlua::Result<()> {
        let k = self.kernel();
        let slot = self.procs.borrow().next_slot();
        let args = self.lua.create_table_with_capacity(o.args.len(), 1)?;
        for (i, a) in o.args.iter().enumerate() {
            args.raw_set(i + 1, a.to_lua(&self.lua, &k.err_mt)?)?;
        }
        args.raw_set("n", o.args.len())?;
        let started: mlua::Result<(Option<mlua::Thread>, Option<String>)> =
            k.spawn_order.call((slot, o.pid.as_str(), o.def.as_str(), args));
        let co = match started {
            Ok((Some(co), _)) => co,
            Ok((None, err)) => {
                self.spawn_failed(&o, err.unwrap_or_else(|| "could not start process".into()));
                return Ok(());
            }
            Err(e) => {
                self.spawn_failed(&o, e.to_string());
                return Ok(());
            }
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
        // `live` was counted when the order was placed (see Shared::spawn_external).
        let slot = self.procs.borrow_mut().insert(p);
        self.wake(slot);
        Ok(())
    }

    /// A placed process could not start here: whoever asked to hear about
    /// it (its parent's monitor or link, the node) learns it failed.
    fn spawn_failed(&self, o: &SpawnOrder, msg: String) {
        tracing::error!(pid = %o.pid, def = %o.def, error = %msg, "spawn failed");
        self.shared.workers[self.idx].live.fetch_sub(1, Ordering::Relaxed);
        if !o.parent.is_empty() {
            if o.flags & 0b101 != 0 {
                self.signal(&o.parent, EventKind::Exit, &o.pid, Err(msg.clone()));
            }
            if o.flags & 0b010 != 0 {
                self.signal(&o.parent, EventKind::LinkExit, &o.pid, Err(msg.clone()));
            }
        }
        if o.system_watch
            && let Some((_, cb)) = self.shared.watches.remove(&o.counter)
        {
            cb(Err(msg));
        }
    }

    pub(super) fn event(
        &self,
        to: u64,
        kind: EventKind,
        from: String,
        result: ExitResult,
        reason: String,
    ) -> mlua::Result<()> {
        let Some(slot) = self.procs.borrow().slot_of(to) else { return Ok(()) };
        let k = self.kernel();
        let at = now_ms();
        match kind {
            EventKind::Exit => {
                if let Some(rel) = self.procs.borrow_mut().get_mut(slot).and_then(|p| p.rel.as_mut()) {
                    rel.watching.remove(&from);
                }
                let (value, err) = split(&self.lua, &k.err_mt, result)?;
                k.event.call::<()>((slot, "pid.exit", from, value, err, mlua::Value::Nil, at))
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
                    Err(e) if trap => {
                        k.event.call::<()>((slot, "pid.link.down", from, mlua::Value::Nil, e, mlua::Value::Nil, at))
                    }
                    Err(_) => {
                        self.kill(slot, "linked process failed".to_string());
                        Ok(())
                    }
                }
            }
            EventKind::Cancel => {
                k.event.call::<()>((slot, "pid.cancel", from, mlua::Value::Nil, mlua::Value::Nil, reason, at))
            }
        }
    }

    /// Node `node` is gone: every monitor and link pointing at one of its
    /// processes fires with the node-down error, and watchers on it are
    /// forgotten (nobody is left to tell).
    fn node_down(&self, node: &str) -> mlua::Result<()> {
        let on_node = |pid: &String| Pid::parse(pid).is_ok_and(|p| p.node == node);
        let mut fire: Vec<(u64, EventKind, String)> = Vec::new();
        let slots = self.procs.borrow().slots();
        for slot in slots {
            let mut procs = self.procs.borrow_mut();
            let Some(p) = procs.get_mut(slot) else { continue };
            let counter = p.counter;
            let Some(rel) = p.rel.as_mut() else { continue };
            rel.watchers.retain(|w| !on_node(w));
            fire.extend(rel.watching.iter().filter(|w| on_node(w)).map(|w| (counter, EventKind::Exit, w.clone())));
            fire.extend(rel.links.iter().filter(|l| on_node(l)).map(|l| (counter, EventKind::LinkExit, l.clone())));
        }
        for (to, kind, from) in fire {
            self.event(to, kind, from, Err(NODE_DOWN.into()), String::new())?;
        }
        Ok(())
    }

    pub(super) fn watch(&self, to: u64, to_pid: String, from: String, link: bool, on: bool) {
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
    /// Handles the cross-worker inbox. Runs of messages go to the kernel in
    /// one protected call each; anything else is dispatched in between, so
    /// the order between a sender's messages and its signals holds.
    pub(super) fn take_mail(&self, scratch: &mut Vec<Envelope>) {
        self.shared.workers[self.idx].mailroom.take(scratch);
        let mut run: Vec<Envelope> = Vec::new();
        for env in scratch.drain(..) {
            if matches!(env, Envelope::Message { .. }) {
                run.push(env);
            } else {
                self.deliver_run(&mut run);
                self.dispatch(env);
            }
        }
        self.deliver_run(&mut run);
        self.drain_local();
    }

    fn deliver_run(&self, run: &mut Vec<Envelope>) {
        if run.is_empty() {
            return;
        }
        // SAFETY: the main state between resumes; see transfer.rs.
        let r =
            unsafe { super::transfer::deliver(self.main_state, self.deliver_ref.get(), self.err_mt_ref.get(), run) };
        if let Err(e) = r {
            tracing::warn!(worker = self.idx, error = %e, "could not deliver messages");
        }
        run.clear();
    }

    pub(super) fn drain_local(&self) {
        loop {
            let next = self.local.borrow_mut().pop_front();
            match next {
                Some(env) => self.dispatch(env),
                None => break,
            }
        }
    }

    pub(super) fn fire_timers(&self, now: Instant, scratch: &mut Vec<u64>) {
        self.timers.borrow_mut().due(now, scratch);
        for id in scratch.drain(..) {
            if let Err(e) = self.kernel().timer.call::<()>(id) {
                tracing::warn!(error = %e, "timer delivery failed");
            }
        }
    }
}

fn split(lua: &Lua, err_mt: &mlua::Table, r: ExitResult) -> mlua::Result<(mlua::Value, mlua::Value)> {
    Ok(match r {
        Ok(v) => (v.to_lua(lua, err_mt)?, mlua::Value::Nil),
        Err(e) => (mlua::Value::Nil, mlua::Value::String(lua.create_string(e)?)),
    })
}

/// Wall-clock milliseconds since the Unix epoch (the `at` of events).
fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}
