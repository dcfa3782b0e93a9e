//! The `json` module: `json.encode(v)` and `json.decode(s)`, both returning
//! `value, err` instead of raising.

use mlua::{Lua, Table};
use serde_json::{Map, Number};

use crate::Value;

/// Builds the `json` table.
pub(crate) fn module(lua: &Lua, err_mt: &Table) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    let emt = err_mt.clone();
    t.set(
        "encode",
        lua.create_function(move |lua, v: mlua::Value| {
            let encoded = Value::from_lua(&v, Some(&emt))
                .map_err(|e| e.to_string())
                .and_then(|v| to_json(&v))
                .and_then(|j| serde_json::to_string(&j).map_err(|e| e.to_string()));
            match encoded {
                Ok(s) => Ok((mlua::Value::String(lua.create_string(s)?), mlua::Value::Nil)),
                Err(e) => {
                    Ok((mlua::Value::Nil, crate::error_value(lua, &emt, "INVALID", &format!("json.encode: {e}"))?))
                }
            }
        })?,
    )?;
    let emt = err_mt.clone();
    t.set(
        "decode",
        lua.create_function(move |lua, s: mlua::Value| {
            let mlua::Value::String(s) = s else {
                let msg = format!("json.decode: expected a string, got {}", s.type_name());
                return Ok((mlua::Value::Nil, crate::error_value(lua, &emt, "INVALID", &msg)?));
            };
            match serde_json::from_slice::<serde_json::Value>(&s.as_bytes()) {
                Ok(j) => Ok((from_json(&j).to_lua(lua, &emt)?, mlua::Value::Nil)),
                Err(e) => {
                    Ok((mlua::Value::Nil, crate::error_value(lua, &emt, "INVALID", &format!("json.decode: {e}"))?))
                }
            }
        })?,
    )?;
    Ok(t)
}

fn to_json(v: &Value) -> Result<serde_json::Value, String> {
    Ok(match v {
        Value::Nil => serde_json::Value::Null,
        Value::Bool(b) => serde_json::Value::Bool(*b),
        Value::Int(i) => serde_json::Value::Number((*i).into()),
        Value::Float(f) => Number::from_f64(*f)
            .map(serde_json::Value::Number)
            .ok_or_else(|| format!("cannot encode {f} (NaN or infinity)"))?,
        Value::Str(b) => serde_json::Value::String(String::from_utf8_lossy(b).into_owned()),
        Value::Array(items) => serde_json::Value::Array(items.iter().map(to_json).collect::<Result<_, _>>()?),
        Value::Map(pairs) => {
            // An object needs string keys only: a table mixing array items
            // and names, or a sparse array, has no faithful JSON form.
            let mut m = Map::new();
            for (k, v) in pairs {
                let Value::Str(b) = k else {
                    return Err("cannot encode a table that mixes array items and keys, or a sparse array".into());
                };
                m.insert(String::from_utf8_lossy(b).into_owned(), to_json(v)?);
            }
            serde_json::Value::Object(m)
        }
        Value::Error { kind, message } => {
            let mut m = Map::new();
            m.insert("kind".into(), serde_json::Value::String(kind.clone()));
            m.insert("message".into(), serde_json::Value::String(message.clone()));
            serde_json::Value::Object(m)
        }
    })
}

fn from_json(j: &serde_json::Value) -> Value {
    match j {
        serde_json::Value::Null => Value::Nil,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        serde_json::Value::String(s) => Value::str(s.as_bytes()),
        serde_json::Value::Array(items) => Value::Array(items.iter().map(from_json).collect()),
        serde_json::Value::Object(m) => {
            Value::Map(m.iter().map(|(k, v)| (Value::str(k.as_bytes()), from_json(v))).collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_decode_roundtrip_and_errors() {
        let lua = Lua::new();
        let mt = lua.create_table().unwrap();
        lua.globals().set("json", module(&lua, &mt).unwrap()).unwrap();
        let (s, ok): (String, bool) = lua
            .load(
                r#"local s = json.encode({a = {1, 2, 3}, b = "x"})
                   local v = json.decode(s)
                   return s, v.a[3] == 3 and v.b == "x""#,
            )
            .eval()
            .unwrap();
        assert!(s.contains("\"a\":[1,2,3]"));
        assert!(ok);
        let msg: String = lua.load("local v, e = json.decode('{bad') return e.message").eval().unwrap();
        assert!(msg.starts_with("json.decode:"), "{msg}");
        let msg: String = lua.load("local v, e = json.encode({f = print}) return e.message").eval().unwrap();
        assert!(msg.contains("function"), "{msg}");
        let msg: String = lua.load("local v, e = json.encode({1, 2, x = 3}) return e.message").eval().unwrap();
        assert!(msg.contains("mixes"), "{msg}");
        let msg: String = lua.load("local v, e = json.decode({}) return e.message").eval().unwrap();
        assert!(msg.contains("expected a string"), "{msg}");
    }
}
