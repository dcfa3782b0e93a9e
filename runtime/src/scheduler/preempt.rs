//! Time-slice preemption without a per-instruction hook.
//!
//! A count hook that is always on makes Lua 5.4 trap on every instruction
//! (about 2× slower on a tight loop, whatever the count). Instead the hook is
//! installed only on a process that has run past its slice: a watchdog thread
//! looks at each worker once per slice and, when the same resume is still
//! running, sets a one-shot count hook on that coroutine. The hook removes
//! itself and yields; the worker puts the process at the back of its queue.
//! Lua's `lua_sethook` is written to be called asynchronously (lua.c uses it
//! from a signal handler); see docs/decisions/0002-preemption.md.
//!
//! The handshake on `running` makes sure the watchdog never touches a
//! coroutine the worker has stopped running: the worker clears the pointer
//! with a compare-exchange, and spins while the watchdog holds it (`BUSY`).

use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use mlua::ffi;

const BUSY: usize = 1;

thread_local! {
    static PREEMPTED: Cell<bool> = const { Cell::new(false) };
}

/// What the watchdog sees of one worker.
#[derive(Default)]
pub(crate) struct PreemptSlot {
    running: AtomicUsize,
    epoch: AtomicU64,
}

impl PreemptSlot {
    /// Marks `state` as running (a new slice starts).
    pub(crate) fn enter(&self, state: *mut ffi::lua_State) {
        self.epoch.fetch_add(1, Ordering::Relaxed);
        self.running.store(state as usize, Ordering::Release);
    }

    /// The slice ended: no coroutine runs on this worker any more.
    pub(crate) fn leave(&self) {
        self.swap_to(0);
    }

    /// A nested coroutine takes over (or gives back) the running slot.
    pub(crate) fn switch(&self, state: *mut ffi::lua_State) {
        self.swap_to(state as usize);
    }

    fn swap_to(&self, new: usize) {
        loop {
            let cur = self.running.load(Ordering::Acquire);
            if cur != BUSY && self.running.compare_exchange(cur, new, Ordering::AcqRel, Ordering::Acquire).is_ok() {
                return;
            }
            std::hint::spin_loop();
        }
    }
}

/// Whether the last yield on this thread came from the preemption hook.
pub(crate) fn take_preempted() -> bool {
    PREEMPTED.with(|p| p.replace(false))
}

/// Whether the function running in `ar` belongs to the kernel. Kernel code
/// assumes it runs without interruption (a send updates a mailbox and wakes
/// the receiver as one step), so it is never preempted.
unsafe fn in_kernel(l: *mut ffi::lua_State, ar: *mut ffi::lua_Debug) -> bool {
    // SAFETY: `ar` is the hook's activation record; "S" fills `source`.
    unsafe {
        if ffi::lua_getinfo(l, c"S".as_ptr(), ar) == 0 || (*ar).source.is_null() {
            return false;
        }
        std::ffi::CStr::from_ptr((*ar).source).to_bytes() == b"=kernel"
    }
}

unsafe extern "C-unwind" fn preempt_hook(l: *mut ffi::lua_State, ar: *mut ffi::lua_Debug) {
    // SAFETY: called by Lua on the thread that runs `l`, inside a count hook.
    unsafe {
        if ffi::lua_isyieldable(l) != 0 && !in_kernel(l, ar) {
            ffi::lua_sethook(l, None, 0, 0);
            PREEMPTED.with(|p| p.set(true));
            ffi::lua_yield(l, 0);
        } else {
            // Inside kernel code, or a C call that cannot yield (a sort
            // comparator, a metamethod called from Rust): try again shortly.
            ffi::lua_sethook(l, Some(preempt_hook), ffi::LUA_MASKCOUNT, 1000);
        }
    }
}

/// The watchdog thread: one for the node.
pub(crate) struct Watchdog {
    stop: Arc<AtomicBool>,
    join: Option<std::thread::JoinHandle<()>>,
}

impl Watchdog {
    /// Starts watching `slots`, preempting runs longer than `slice`.
    pub(crate) fn start(slots: Vec<Arc<PreemptSlot>>, slice: Duration) -> std::io::Result<Watchdog> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let join = std::thread::Builder::new().name("wippy-watchdog".into()).spawn(move || {
            let mut seen = vec![0u64; slots.len()];
            while !flag.load(Ordering::Relaxed) {
                std::thread::sleep(slice);
                for (i, slot) in slots.iter().enumerate() {
                    let epoch = slot.epoch.load(Ordering::Relaxed);
                    if epoch == seen[i] {
                        preempt(slot);
                    }
                    seen[i] = epoch;
                }
            }
        })?;
        Ok(Watchdog { stop, join: Some(join) })
    }

    /// Stops the thread and waits for it.
    pub(crate) fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(j) = self.join.take() {
            let _ = j.join();
        }
    }
}

fn preempt(slot: &PreemptSlot) {
    let cur = slot.running.load(Ordering::Acquire);
    if cur <= BUSY {
        return;
    }
    if slot.running.compare_exchange(cur, BUSY, Ordering::AcqRel, Ordering::Acquire).is_ok() {
        // SAFETY: the worker cannot clear or free `cur` while we hold BUSY;
        // lua_sethook only stores the hook and sets trap flags (see module docs).
        unsafe { ffi::lua_sethook(cur as *mut ffi::lua_State, Some(preempt_hook), ffi::LUA_MASKCOUNT, 1) };
        slot.running.store(cur, Ordering::Release);
    }
}
