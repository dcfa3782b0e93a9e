//! Moving [`Value`]s across the Lua C API without mlua's per-value
//! registry references: reading a payload off a coroutine's stack (the
//! sender), and pushing a batch of messages into the kernel in one protected
//! call (the receiver). Cross-worker traffic goes through here.
//!
//! The push side runs inside `lua_pcall`: any allocation failure unwinds to
//! that call. Its frames hold only references and integers, so a longjmp
//! across them skips no destructor.

use std::cell::RefCell;
use std::ffi::c_int;

use mlua::ffi;
use wippy_lua_stdlib::{MAX_DEPTH, Value, ValueError};

use super::envelope::Envelope;

thread_local! {
    /// Messages being delivered by `deliver_batch_c` (see `deliver`).
    static BATCH: RefCell<Vec<Envelope>> = const { RefCell::new(Vec::new()) };
}

/// Reads the value at `idx` of `l` (an absolute index) into a [`Value`].
///
/// # Safety
/// `l` must be a live state owned by the calling thread, `idx` a valid
/// absolute index. Nothing here raises a Lua error.
pub(crate) unsafe fn read_value(
    l: *mut ffi::lua_State,
    idx: c_int,
    err_mt: c_int,
    depth: usize,
) -> Result<Value, ValueError> {
    // SAFETY: see the function contract.
    unsafe {
        Ok(match ffi::lua_type(l, idx) {
            ffi::LUA_TNIL | ffi::LUA_TNONE => Value::Nil,
            ffi::LUA_TBOOLEAN => Value::Bool(ffi::lua_toboolean(l, idx) != 0),
            ffi::LUA_TNUMBER => {
                let mut isint = 0;
                let i = ffi::lua_tointegerx(l, idx, &mut isint);
                if isint != 0 { Value::Int(i) } else { Value::Float(ffi::lua_tonumberx(l, idx, std::ptr::null_mut())) }
            }
            ffi::LUA_TSTRING => {
                let mut len = 0usize;
                let p = ffi::lua_tolstring(l, idx, &mut len);
                Value::Str(std::slice::from_raw_parts(p.cast::<u8>(), len).to_vec())
            }
            ffi::LUA_TTABLE => read_table(l, idx, err_mt, depth)?,
            ffi::LUA_TFUNCTION => return Err(ValueError::Unsupported("function")),
            ffi::LUA_TTHREAD => return Err(ValueError::Unsupported("thread")),
            _ => return Err(ValueError::Unsupported("userdata")),
        })
    }
}

unsafe fn read_table(l: *mut ffi::lua_State, idx: c_int, err_mt: c_int, depth: usize) -> Result<Value, ValueError> {
    if depth >= MAX_DEPTH {
        return Err(ValueError::TooDeep);
    }
    // SAFETY: `idx` is an absolute index of a table; pushes are checked.
    unsafe {
        if ffi::lua_checkstack(l, 4) == 0 {
            return Err(ValueError::TooDeep);
        }
        if ffi::lua_getmetatable(l, idx) != 0 {
            ffi::lua_rawgeti(l, ffi::LUA_REGISTRYINDEX, ffi::lua_Integer::from(err_mt));
            let is_err = ffi::lua_rawequal(l, -1, -2) != 0;
            ffi::lua_settop(l, -3);
            if is_err {
                let field = |name: &std::ffi::CStr| {
                    ffi::lua_pushstring(l, name.as_ptr());
                    ffi::lua_rawget(l, idx);
                    let mut len = 0usize;
                    let p = ffi::lua_tolstring(l, -1, &mut len);
                    let s = if p.is_null() {
                        String::new()
                    } else {
                        String::from_utf8_lossy(std::slice::from_raw_parts(p.cast::<u8>(), len)).into_owned()
                    };
                    ffi::lua_settop(l, -2);
                    s
                };
                return Ok(Value::Error { kind: field(c"kind"), message: field(c"message") });
            }
        }
        let len = ffi::lua_rawlen(l, idx);
        let mut pairs = Vec::new();
        ffi::lua_pushnil(l);
        while ffi::lua_next(l, idx) != 0 {
            let top = ffi::lua_gettop(l);
            let k = read_value(l, top - 1, err_mt, depth + 1);
            let v = read_value(l, top, err_mt, depth + 1);
            ffi::lua_settop(l, -2);
            match (k, v) {
                (Ok(k), Ok(v)) => pairs.push((k, v)),
                (Err(e), _) | (_, Err(e)) => {
                    ffi::lua_settop(l, -2);
                    return Err(e);
                }
            }
        }
        if len > 0 && pairs.len() == len {
            let mut items = vec![Value::Nil; len];
            for (k, v) in pairs {
                if let Value::Int(i) = k
                    && i >= 1
                    && (i as usize) <= len
                {
                    items[i as usize - 1] = v;
                }
            }
            return Ok(Value::Array(items));
        }
        Ok(Value::Map(pairs))
    }
}

/// Pushes `v` onto `l`. Must run inside a protected call.
unsafe fn push_value(l: *mut ffi::lua_State, v: &Value, err_mt: c_int) {
    // SAFETY: called from `deliver_batch_c`, under lua_pcall.
    unsafe {
        ffi::luaL_checkstack(l, 3, c"message nests too deep".as_ptr());
        match v {
            Value::Nil => ffi::lua_pushnil(l),
            Value::Bool(b) => ffi::lua_pushboolean(l, c_int::from(*b)),
            Value::Int(i) => ffi::lua_pushinteger(l, *i),
            Value::Float(f) => ffi::lua_pushnumber(l, *f),
            Value::Str(s) => {
                ffi::lua_pushlstring(l, s.as_ptr().cast(), s.len());
            }
            Value::Array(items) => {
                ffi::lua_createtable(l, items.len() as c_int, 0);
                for (i, item) in items.iter().enumerate() {
                    push_value(l, item, err_mt);
                    ffi::lua_rawseti(l, -2, (i + 1) as ffi::lua_Integer);
                }
            }
            Value::Map(pairs) => {
                ffi::lua_createtable(l, 0, pairs.len() as c_int);
                for (k, v) in pairs {
                    push_value(l, k, err_mt);
                    push_value(l, v, err_mt);
                    if ffi::lua_type(l, -2) == ffi::LUA_TNIL {
                        ffi::lua_settop(l, -3); // a nil key cannot be stored
                    } else {
                        ffi::lua_rawset(l, -3);
                    }
                }
            }
            Value::Error { kind, message } => {
                ffi::lua_createtable(l, 0, 2);
                ffi::lua_pushlstring(l, kind.as_ptr().cast(), kind.len());
                ffi::lua_setfield(l, -2, c"kind".as_ptr());
                ffi::lua_pushlstring(l, message.as_ptr().cast(), message.len());
                ffi::lua_setfield(l, -2, c"message".as_ptr());
                ffi::lua_rawgeti(l, ffi::LUA_REGISTRYINDEX, ffi::lua_Integer::from(err_mt));
                ffi::lua_setmetatable(l, -2);
            }
        }
    }
}

unsafe fn push_str(l: *mut ffi::lua_State, s: &str) {
    // SAFETY: under lua_pcall.
    unsafe {
        ffi::lua_pushlstring(l, s.as_ptr().cast(), s.len());
    }
}

/// Calls the kernel's `deliver(pid, topic, from, data)` for every message in
/// `BATCH`. Upvalue 1: `deliver`; upvalue 2: the error metatable's registry
/// reference.
unsafe extern "C-unwind" fn deliver_batch_c(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: the batch is not touched by anyone else until `deliver`
    // returns; this frame holds only a raw pointer, a length and integers.
    unsafe {
        let (ptr, len) = BATCH.with(|b| {
            let b = b.borrow();
            (b.as_ptr(), b.len())
        });
        let err_mt = ffi::lua_tointegerx(l, ffi::lua_upvalueindex(2), std::ptr::null_mut()) as c_int;
        for i in 0..len {
            let Envelope::Message { to_pid, from, topic, payload, .. } = &*ptr.add(i) else { continue };
            ffi::luaL_checkstack(l, 6, c"no stack space to deliver".as_ptr());
            ffi::lua_pushvalue(l, ffi::lua_upvalueindex(1));
            push_str(l, to_pid);
            push_str(l, topic);
            push_str(l, from);
            push_value(l, payload, err_mt);
            ffi::lua_call(l, 4, 0);
        }
    }
    0
}

/// Delivers `batch` (messages only) through the kernel's `deliver`, in
/// order, with one protected call. Returns an error text if the call failed
/// (the messages from the failing one on are lost, as with any delivery
/// error, and logged by the caller).
///
/// # Safety
/// `l` is the worker's main state, between resumes.
pub(crate) unsafe fn deliver(
    l: *mut ffi::lua_State,
    deliver_ref: c_int,
    err_mt_ref: c_int,
    batch: &mut Vec<Envelope>,
) -> Result<(), String> {
    if batch.is_empty() {
        return Ok(());
    }
    BATCH.with(|b| std::mem::swap(&mut *b.borrow_mut(), batch));
    // SAFETY: balanced stack use; everything that can raise runs in lua_pcall.
    let result = unsafe {
        let base = ffi::lua_gettop(l);
        if ffi::lua_checkstack(l, 4) == 0 {
            Err("no stack space to deliver messages".to_string())
        } else {
            ffi::lua_rawgeti(l, ffi::LUA_REGISTRYINDEX, ffi::lua_Integer::from(deliver_ref));
            ffi::lua_pushinteger(l, ffi::lua_Integer::from(err_mt_ref));
            ffi::lua_pushcclosure(l, deliver_batch_c, 2);
            let r = if ffi::lua_pcall(l, 0, 0, 0) == ffi::LUA_OK {
                Ok(())
            } else {
                let mut n = 0usize;
                let p = ffi::lua_tolstring(l, -1, &mut n);
                Err(if p.is_null() {
                    "message delivery failed".to_string()
                } else {
                    String::from_utf8_lossy(std::slice::from_raw_parts(p.cast::<u8>(), n)).into_owned()
                })
            };
            ffi::lua_settop(l, base);
            r
        }
    };
    BATCH.with(|b| {
        let mut b = b.borrow_mut();
        b.clear();
        std::mem::swap(&mut *b, batch);
    });
    result
}
