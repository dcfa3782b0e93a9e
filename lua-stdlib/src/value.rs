//! [`Value`]: the one shape a message takes when it leaves a worker.
//!
//! Inside one worker a message is copied Lua-to-Lua by the kernel (no
//! allocation for strings and numbers). Between workers, and later between
//! nodes, it travels as a `Value`: plain data that owns its bytes, so the
//! receiver can never observe the sender's tables (Erlang's copy semantics).

use mlua::{IntoLua, Lua, Table};
use serde::{Deserialize, Serialize};

/// How deep a table may nest before it is refused (cycles hit this too).
pub const MAX_DEPTH: usize = 64;

/// Plain data that can be copied between processes, workers and nodes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Value {
    /// Lua `nil`.
    Nil,
    /// A boolean.
    Bool(bool),
    /// A Lua integer.
    Int(i64),
    /// A Lua float.
    Float(f64),
    /// A Lua string: bytes, not necessarily UTF-8.
    Str(Vec<u8>),
    /// A table whose keys are exactly 1..=n.
    Array(Vec<Value>),
    /// Any other table, as key/value pairs.
    Map(Vec<(Value, Value)>),
    /// An error object (`kind`, `message`), kept distinct so it stays an error.
    Error {
        /// One of the `errors` kinds.
        kind: String,
        /// Human-readable message.
        message: String,
    },
}

/// Why a Lua value cannot become a [`Value`].
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ValueError {
    /// Functions, threads and userdata have no copyable form.
    #[error("cannot send a value of type {0}")]
    Unsupported(&'static str),
    /// Nesting past [`MAX_DEPTH`], usually a cycle.
    #[error("cannot send: table nesting deeper than {MAX_DEPTH} (cycle?)")]
    TooDeep,
}

impl Value {
    /// Builds a string value.
    pub fn str(s: impl Into<Vec<u8>>) -> Value {
        Value::Str(s.into())
    }

    /// The string, if this is a UTF-8 string value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(b) => std::str::from_utf8(b).ok(),
            _ => None,
        }
    }

    /// Converts a Lua value, copying everything it reaches.
    pub fn from_lua(v: &mlua::Value, err_mt: Option<&Table>) -> Result<Value, ValueError> {
        from_lua_at(v, err_mt, 0)
    }

    /// Builds the Lua value; error objects get the kernel's error metatable.
    pub fn to_lua(&self, lua: &Lua, err_mt: &Table) -> mlua::Result<mlua::Value> {
        Ok(match self {
            Value::Nil => mlua::Value::Nil,
            Value::Bool(b) => mlua::Value::Boolean(*b),
            Value::Int(i) => mlua::Value::Integer(*i),
            Value::Float(f) => mlua::Value::Number(*f),
            Value::Str(s) => lua.create_string(s)?.into_lua(lua)?,
            Value::Array(items) => {
                let t = lua.create_table_with_capacity(items.len(), 0)?;
                for (i, item) in items.iter().enumerate() {
                    t.raw_set(i + 1, item.to_lua(lua, err_mt)?)?;
                }
                mlua::Value::Table(t)
            }
            Value::Map(pairs) => {
                let t = lua.create_table_with_capacity(0, pairs.len())?;
                for (k, v) in pairs {
                    t.raw_set(k.to_lua(lua, err_mt)?, v.to_lua(lua, err_mt)?)?;
                }
                mlua::Value::Table(t)
            }
            Value::Error { kind, message } => {
                let t = lua.create_table()?;
                t.raw_set("kind", kind.as_str())?;
                t.raw_set("message", message.as_str())?;
                t.set_metatable(Some(err_mt.clone()))?;
                mlua::Value::Table(t)
            }
        })
    }
}

fn from_lua_at(v: &mlua::Value, err_mt: Option<&Table>, depth: usize) -> Result<Value, ValueError> {
    Ok(match v {
        mlua::Value::Nil => Value::Nil,
        mlua::Value::Boolean(b) => Value::Bool(*b),
        mlua::Value::Integer(i) => Value::Int(*i),
        mlua::Value::Number(n) => Value::Float(*n),
        mlua::Value::String(s) => Value::Str(s.as_bytes().to_vec()),
        mlua::Value::Table(t) => {
            if depth >= MAX_DEPTH {
                return Err(ValueError::TooDeep);
            }
            if let (Some(mt), Some(emt)) = (t.metatable(), err_mt)
                && mt == *emt
            {
                let kind: String = t.raw_get("kind").unwrap_or_default();
                let message: String = t.raw_get("message").unwrap_or_default();
                return Ok(Value::Error { kind, message });
            }
            table_value(t, err_mt, depth)?
        }
        mlua::Value::LightUserData(_) | mlua::Value::UserData(_) => {
            return Err(ValueError::Unsupported("userdata"));
        }
        mlua::Value::Function(_) => return Err(ValueError::Unsupported("function")),
        mlua::Value::Thread(_) => return Err(ValueError::Unsupported("thread")),
        _ => return Err(ValueError::Unsupported("unknown")),
    })
}

fn table_value(t: &Table, err_mt: Option<&Table>, depth: usize) -> Result<Value, ValueError> {
    let len = t.raw_len();
    let mut pairs = Vec::new();
    let mut count = 0usize;
    for pair in t.pairs::<mlua::Value, mlua::Value>() {
        let Ok((k, v)) = pair else { continue };
        count += 1;
        pairs.push((from_lua_at(&k, err_mt, depth + 1)?, from_lua_at(&v, err_mt, depth + 1)?));
    }
    if len > 0 && count == len {
        // every key is 1..=len: keep it an array, in order
        let mut items = vec![Value::Nil; len];
        for (k, v) in pairs {
            if let Value::Int(i) = k {
                items[(i - 1) as usize] = v;
            }
        }
        return Ok(Value::Array(items));
    }
    Ok(Value::Map(pairs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(src: &str) -> Value {
        let lua = Lua::new();
        let mt = lua.create_table().unwrap();
        let v: mlua::Value = lua.load(src).eval().unwrap();
        let val = Value::from_lua(&v, Some(&mt)).unwrap();
        let back = val.to_lua(&lua, &mt).unwrap();
        let again = Value::from_lua(&back, Some(&mt)).unwrap();
        assert_eq!(val, again);
        val
    }

    #[test]
    fn scalars_and_arrays_keep_their_shape() {
        assert_eq!(roundtrip("return 3"), Value::Int(3));
        assert_eq!(roundtrip("return 1.5"), Value::Float(1.5));
        assert_eq!(roundtrip("return 'x'"), Value::str("x"));
        assert_eq!(
            roundtrip("return {1, 'a', true}"),
            Value::Array(vec![Value::Int(1), Value::str("a"), Value::Bool(true)])
        );
    }

    #[test]
    fn maps_and_nesting_survive() {
        let v = roundtrip("return {a = {b = {1, 2}}, [10] = 'ten'}");
        let Value::Map(pairs) = v else { panic!("expected a map") };
        assert_eq!(pairs.len(), 2);
    }

    #[test]
    fn functions_and_cycles_are_refused() {
        let lua = Lua::new();
        let f: mlua::Value = lua.load("return {f = function() end}").eval().unwrap();
        assert_eq!(Value::from_lua(&f, None), Err(ValueError::Unsupported("function")));
        let c: mlua::Value = lua.load("local t = {} t.t = t return t").eval().unwrap();
        assert_eq!(Value::from_lua(&c, None), Err(ValueError::TooDeep));
    }
}
