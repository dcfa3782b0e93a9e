//! Raw C entry points for the calls the kernel makes on every message and
//! every spawn. mlua's general callback path (protected call, argument
//! conversion, owned strings) costs several times a plain `lua_CFunction`,
//! and these run millions of times a second.
//!
//! Rules for everything here: no panic may escape (Lua frames sit below),
//! and nothing owned may live in a Rust frame when a Lua API call that can
//! raise (`lua_pushlstring`) runs, because a Lua error unwinds by longjmp.

use std::cell::{Cell, RefCell};
use std::ffi::c_int;
use std::rc::Rc;

use mlua::{Function, Lua, ffi};
use wippy_lua_stdlib::{HostError, SendOutcome, Value};

use super::core::Core;
use super::transfer::read_value;

thread_local! {
    /// The Core of the worker running on this thread.
    static CORE: Cell<*const Core> = const { Cell::new(std::ptr::null()) };
    /// Text handed to Lua by the functions below (see module docs).
    static SCRATCH: RefCell<(String, &'static str)> = const { RefCell::new((String::new(), "")) };
}

/// Makes `core` the target of this thread's C entry points.
pub(crate) fn bind(core: &Rc<Core>) {
    CORE.with(|c| c.set(Rc::as_ptr(core)));
}

/// The entries that replace the kernel's default host bindings.
pub(crate) fn functions(lua: &Lua) -> mlua::Result<Vec<(&'static str, Function)>> {
    // SAFETY: each function follows the rules in the module docs.
    unsafe {
        Ok(vec![
            ("wake", lua.create_c_function(wake_c)?),
            ("spawn", lua.create_c_function(spawn_c)?),
            ("exit", lua.create_c_function(exit_c)?),
            ("send", lua.create_c_function(send_c)?),
        ])
    }
}

fn with_core<R>(f: impl FnOnce(&Core) -> R) -> Option<R> {
    CORE.with(|c| {
        let p = c.get();
        // SAFETY: set by `bind` before the kernel runs; the Core outlives the worker's Lua state use.
        (!p.is_null()).then(|| f(unsafe { &*p }))
    })
}

unsafe fn bytes<'a>(l: *mut ffi::lua_State, idx: c_int) -> Option<&'a [u8]> {
    let mut len = 0usize;
    // SAFETY: `idx` is a valid stack index; the string stays on the stack during the call.
    unsafe {
        if ffi::lua_type(l, idx) != ffi::LUA_TSTRING {
            return None;
        }
        let p = ffi::lua_tolstring(l, idx, &mut len);
        Some(std::slice::from_raw_parts(p.cast::<u8>(), len))
    }
}

/// `wake(slot)`.
unsafe extern "C-unwind" fn wake_c(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: called by Lua with the slot as first argument.
    let slot = unsafe { ffi::lua_tointegerx(l, 1, std::ptr::null_mut()) };
    if let Ok(slot) = u32::try_from(slot) {
        with_core(|core| core.try_wake(slot));
    }
    0
}

/// `spawn(id, host, flags, co)` → `slot, pid` | `nil, kind, message`.
unsafe extern "C-unwind" fn spawn_c(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: arguments are read from the stack of the calling coroutine.
    let outcome = unsafe {
        let (Some(id), Some(host)) = (bytes(l, 1), bytes(l, 2)) else {
            return push_error(l, "INVALID", "spawn requires a process id and a host");
        };
        let flags = ffi::lua_tointegerx(l, 3, std::ptr::null_mut()) as u32;
        let co = ffi::lua_tothread(l, 4);
        if co.is_null() {
            return push_error(l, "INVALID", "spawn: missing coroutine");
        }
        with_core(|core| core.spawn_here(id, host, flags, co))
    };
    match outcome {
        Some(Ok((slot, pid))) => {
            SCRATCH.with(|s| {
                if let Ok(mut s) = s.try_borrow_mut() {
                    s.0 = pid;
                }
            });
            // SAFETY: pushes from thread-local storage; nothing owned in this frame.
            unsafe {
                ffi::lua_pushinteger(l, slot);
                push_scratch(l);
            }
            2
        }
        Some(Err(e)) => {
            SCRATCH.with(|s| {
                if let Ok(mut s) = s.try_borrow_mut() {
                    *s = (e.message, e.kind);
                }
            });
            // SAFETY: as above.
            unsafe { push_scratch_error(l) }
        }
        None => unsafe { push_error(l, "UNAVAILABLE", "not on a worker thread") },
    }
}

/// `send(slot, dest, topic, data)` for a message the kernel could not
/// deliver on this worker → `true` | `pid` (a name that resolved to this
/// worker) | `nil, kind, message`.
unsafe extern "C-unwind" fn send_c(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: arguments are read from the calling coroutine's stack; nothing
    // owned stays in this frame when a push runs (see module docs).
    let outcome = unsafe {
        let slot = u32::try_from(ffi::lua_tointegerx(l, 1, std::ptr::null_mut())).unwrap_or(u32::MAX);
        let (Some(dest), Some(topic)) = (bytes(l, 2), bytes(l, 3)) else {
            return push_error(l, "INVALID", "send requires a destination and a topic");
        };
        let (Ok(dest), Ok(topic)) = (std::str::from_utf8(dest), std::str::from_utf8(topic)) else {
            return push_error(l, "INVALID", "destination and topic must be UTF-8");
        };
        with_core(|core| match read_value(l, 4, core.err_mt_ref.get(), 0) {
            Ok(payload) => core.send_to(slot, dest, topic, payload),
            Err(e) => Err(HostError::invalid(e.to_string())),
        })
    };
    match outcome {
        Some(Ok(SendOutcome::Routed)) => {
            // SAFETY: pushing a boolean cannot fail (the stack has room for results).
            unsafe { ffi::lua_pushboolean(l, 1) };
            1
        }
        Some(Ok(SendOutcome::Local(pid))) => {
            SCRATCH.with(|s| {
                if let Ok(mut s) = s.try_borrow_mut() {
                    s.0 = pid;
                }
            });
            // SAFETY: pushes from thread-local storage.
            unsafe { push_scratch(l) };
            1
        }
        Some(Err(e)) => {
            SCRATCH.with(|s| {
                if let Ok(mut s) = s.try_borrow_mut() {
                    *s = (e.message, e.kind);
                }
            });
            // SAFETY: as above.
            unsafe { push_scratch_error(l) }
        }
        None => unsafe { push_error(l, "UNAVAILABLE", "not on a worker thread") },
    }
}

/// `exit(slot, ok, result)` for a non-table result.
unsafe extern "C-unwind" fn exit_c(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: arguments are read from the stack; nothing is pushed.
    unsafe {
        let Ok(slot) = u32::try_from(ffi::lua_tointegerx(l, 1, std::ptr::null_mut())) else { return 0 };
        let ok = ffi::lua_toboolean(l, 2) != 0;
        let result = match ffi::lua_type(l, 3) {
            ffi::LUA_TBOOLEAN => Value::Bool(ffi::lua_toboolean(l, 3) != 0),
            ffi::LUA_TNUMBER => {
                let mut isint = 0;
                let i = ffi::lua_tointegerx(l, 3, &mut isint);
                if isint != 0 { Value::Int(i) } else { Value::Float(ffi::lua_tonumberx(l, 3, std::ptr::null_mut())) }
            }
            ffi::LUA_TSTRING => Value::Str(bytes(l, 3).unwrap_or_default().to_vec()),
            _ => Value::Nil,
        };
        let result = if ok {
            Ok(result)
        } else {
            Err(match result {
                Value::Str(b) => String::from_utf8_lossy(&b).into_owned(),
                other => format!("{other:?}"),
            })
        };
        with_core(|core| {
            if let Ok(mut r) = core.exit_result.try_borrow_mut() {
                *r = Some((slot, result));
            }
        });
    }
    0
}

unsafe fn push_error(l: *mut ffi::lua_State, kind: &'static str, msg: &'static str) -> c_int {
    // SAFETY: static strings; nothing owned in this frame.
    unsafe {
        ffi::lua_pushnil(l);
        ffi::lua_pushlstring(l, kind.as_ptr().cast(), kind.len());
        ffi::lua_pushlstring(l, msg.as_ptr().cast(), msg.len());
    }
    3
}

unsafe fn push_scratch(l: *mut ffi::lua_State) {
    let (ptr, len) =
        SCRATCH.with(|s| s.try_borrow().map(|s| (s.0.as_ptr(), s.0.len())).unwrap_or((std::ptr::null(), 0)));
    // SAFETY: the thread-local string is not touched until the push returns.
    unsafe { ffi::lua_pushlstring(l, ptr.cast(), len) };
}

unsafe fn push_scratch_error(l: *mut ffi::lua_State) -> c_int {
    let kind = SCRATCH.with(|s| s.try_borrow().map(|s| s.1).unwrap_or("INTERNAL"));
    // SAFETY: as in `push_scratch`.
    unsafe {
        ffi::lua_pushnil(l);
        ffi::lua_pushlstring(l, kind.as_ptr().cast(), kind.len());
        push_scratch(l);
    }
    3
}
