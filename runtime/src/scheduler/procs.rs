//! The process table of one worker: slots, PID counters, links and monitors.
//!
//! The Lua side of a process (its coroutine, mailbox, channels) lives in the
//! kernel; this table keeps what the scheduler and the exit protocol need.
//! Relations are boxed and absent for most processes, which keeps an idle
//! process small.

use crate::fxhash::{FxHashMap, FxHashSet};

use mlua::ffi;

/// Links and monitors of one process, by PID string. Sets, because a
/// supervisor may watch many thousands of children and every exit removes one.
#[derive(Default, Debug)]
pub(super) struct Relations {
    /// Bidirectional links.
    pub links: FxHashSet<String>,
    /// Processes monitoring this one (they get `pid.exit`).
    pub watchers: FxHashSet<String>,
    /// Processes this one monitors (released when it exits).
    pub watching: FxHashSet<String>,
}

/// One process as the scheduler sees it.
pub(super) struct Proc {
    /// The coroutine; valid while the kernel's `PROCS[slot]` holds it.
    pub state: *mut ffi::lua_State,
    /// PID counter.
    pub counter: u64,
    /// PID string.
    pub pid: String,
    /// In the run queue.
    pub queued: bool,
    /// Resumed at least once (the first resume passes the slot).
    pub started: bool,
    /// `trap_links` option.
    pub trap_links: bool,
    /// The node wants its result (see `Shared::watches`).
    pub system_watch: bool,
    /// A name was registered for it (release names on exit).
    pub has_names: bool,
    /// It took a lock or a CONSISTENT name (give them back on exit).
    pub has_claims: bool,
    /// Joined a process group, watches one, or holds an EVENTUAL name.
    pub in_pg: bool,
    /// Links and monitors, when it has any.
    pub rel: Option<Box<Relations>>,
}

impl Proc {
    /// A process about to run for the first time.
    pub(super) fn new(state: *mut ffi::lua_State, counter: u64, pid: String) -> Proc {
        Proc {
            state,
            counter,
            pid,
            queued: false,
            started: false,
            trap_links: false,
            system_watch: false,
            has_names: false,
            has_claims: false,
            in_pg: false,
            rel: None,
        }
    }

    /// Relations, created on first use.
    pub(super) fn rel_mut(&mut self) -> &mut Relations {
        self.rel.get_or_insert_with(Box::default)
    }
}

/// Slots with reuse, plus counter → slot.
#[derive(Default)]
pub(super) struct Procs {
    slots: Vec<Option<Proc>>,
    free: Vec<u32>,
    by_counter: FxHashMap<u64, u32>,
}

impl Procs {
    /// The slot the next `insert` will use.
    pub(super) fn next_slot(&self) -> u32 {
        self.free.last().copied().unwrap_or(self.slots.len() as u32)
    }

    /// Inserts at `next_slot()`.
    pub(super) fn insert(&mut self, p: Proc) -> u32 {
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                self.slots.push(None);
                (self.slots.len() - 1) as u32
            }
        };
        self.by_counter.insert(p.counter, slot);
        self.slots[slot as usize] = Some(p);
        slot
    }

    /// Removes the process in `slot`.
    pub(super) fn remove(&mut self, slot: u32) -> Option<Proc> {
        let p = self.slots.get_mut(slot as usize)?.take()?;
        self.by_counter.remove(&p.counter);
        self.free.push(slot);
        Some(p)
    }

    /// The process in `slot`.
    pub(super) fn get(&self, slot: u32) -> Option<&Proc> {
        self.slots.get(slot as usize)?.as_ref()
    }

    /// The process in `slot`, mutably.
    pub(super) fn get_mut(&mut self, slot: u32) -> Option<&mut Proc> {
        self.slots.get_mut(slot as usize)?.as_mut()
    }

    /// The slot of PID counter `counter`.
    pub(super) fn slot_of(&self, counter: u64) -> Option<u32> {
        self.by_counter.get(&counter).copied()
    }

    /// Slots of every live process.
    pub(super) fn slots(&self) -> Vec<u32> {
        self.by_counter.values().copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_reused_and_counters_map_back() {
        let mut t = Procs::default();
        let s0 = t.next_slot();
        assert_eq!(t.insert(Proc::new(std::ptr::null_mut(), 10, "a".into())), s0);
        let s1 = t.insert(Proc::new(std::ptr::null_mut(), 11, "b".into()));
        assert_eq!(t.slot_of(11), Some(s1));
        assert!(t.remove(s0).is_some());
        assert_eq!(t.slot_of(10), None);
        assert_eq!(t.next_slot(), s0);
        assert_eq!(t.insert(Proc::new(std::ptr::null_mut(), 12, "c".into())), s0);
        assert_eq!(t.slots().len(), 2);
    }
}
