//! Replicated stores as processes use them: `store.get(id)` handles on the
//! `store.kv.raft` entries of the app, served through the Raft core.
//!
//! Each store keeps its keys under `kv/<namespace>/` in the replicated
//! state, so stores never see each other's keys and the names and locks
//! that share the log live beside them. Values are the message form
//! ([`Value`]) encoded as MessagePack.

use std::sync::Arc;

use wippy_lua_stdlib::{HostError, PutCond, StoreInfo, StoreOp, Value};

use crate::app::{StoreBackend, StoreDef};
use crate::raft::client::{self, ClientError};
use crate::raft::kv::Record;
use crate::raft::request::{Query, Reply, Request};
use crate::raft::state_machine::wall_ms;
use crate::raft::types::{Command, Cond};
use crate::shared::Shared;

/// What `s:info()` says about a store.
pub(crate) fn info(def: &StoreDef) -> StoreInfo {
    match def.backend {
        StoreBackend::KvRaft => {
            StoreInfo { backend: "kv.raft", consistency: "linearizable", durable: true, conditional_put: true }
        }
        StoreBackend::KvCrdt => {
            StoreInfo { backend: "kv.crdt", consistency: "eventual", durable: def.durable, conditional_put: false }
        }
    }
}

/// Serves one call on a `kv.raft` store.
pub(crate) async fn execute(shared: &Arc<Shared>, def: &StoreDef, op: StoreOp) -> Result<Value, HostError> {
    let ns = Namespace(format!("kv/{}/", def.namespace));
    let now_ms = wall_ms();
    match op {
        StoreOp::Get { key } => match get(shared, &ns, &key).await? {
            Some(r) => decode(&r),
            None => Err(HostError::not_found(format!("key not found: {key}"))),
        },
        StoreOp::Entry { key } => match get(shared, &ns, &key).await? {
            Some(r) => entry(&key, &r),
            None => Err(HostError::not_found(format!("key not found: {key}"))),
        },
        StoreOp::Has { key } => Ok(Value::Bool(get(shared, &ns, &key).await?.is_some())),
        StoreOp::Set { key, value, ttl_ms } => {
            let cmd = Command::Put {
                key: ns.key(&key),
                value: encode(&value)?,
                cond: Cond::Always,
                ttl_ms,
                now_ms,
                owner: None,
            };
            write(shared, cmd).await.map(|_| Value::Bool(true))
        }
        StoreOp::Put { key, value, ttl_ms, cond } => {
            let bytes = encode(&value)?;
            let cond = match cond {
                PutCond::Always => Cond::Always,
                PutCond::Absent => Cond::Absent,
                PutCond::Version(v) => Cond::Version(v),
            };
            let cmd = Command::Put { key: ns.key(&key), value: bytes, cond, ttl_ms, now_ms, owner: None };
            let r = write(shared, cmd).await?;
            if r.applied {
                return Ok(entry_value(&key, value, r.version));
            }
            Err(match cond {
                Cond::Version(_) if r.version == 0 => HostError::not_found(format!("key not found: {key}")),
                Cond::Version(v) => {
                    HostError::already_exists(format!("key {key} is at version {}, not {v}", r.version))
                }
                _ => HostError::already_exists(format!("key already exists: {key}")),
            })
        }
        StoreOp::Delete { key } => {
            let r = write(shared, Command::Delete { key: ns.key(&key), cond: Cond::Always, now_ms }).await?;
            Ok(Value::Bool(r.applied))
        }
        StoreOp::List { prefix, after, limit } => {
            let query = Query::List { prefix: ns.key(&prefix), after: after.map(|a| ns.key(&a)), limit };
            let Reply::Page { rows, more } = read(shared, query).await? else {
                return Err(unexpected());
            };
            let mut items = Vec::with_capacity(rows.len());
            for (k, r) in &rows {
                items.push(entry(ns.strip(k), r)?);
            }
            let cursor = match rows.last() {
                Some((k, _)) if more => Value::str(ns.strip(k)),
                _ => Value::Nil,
            };
            Ok(Value::Map(vec![
                (Value::str("items"), Value::Array(items)),
                (Value::str("cursor"), cursor),
                (Value::str("has_more"), Value::Bool(more)),
            ]))
        }
    }
}

/// The key prefix of one store.
struct Namespace(String);

impl Namespace {
    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.0)
    }

    fn strip<'a>(&self, key: &'a str) -> &'a str {
        key.strip_prefix(self.0.as_str()).unwrap_or(key)
    }
}

async fn get(shared: &Arc<Shared>, ns: &Namespace, key: &str) -> Result<Option<Record>, HostError> {
    match read(shared, Query::Get { key: ns.key(key) }).await? {
        Reply::Entry(r) => Ok(r),
        _ => Err(unexpected()),
    }
}

async fn read(shared: &Arc<Shared>, query: Query) -> Result<Reply, HostError> {
    client::request(shared, Request::Read(query)).await.map_err(unavailable)
}

async fn write(shared: &Arc<Shared>, cmd: Command) -> Result<crate::raft::types::Response, HostError> {
    match client::request(shared, Request::Write(cmd)).await.map_err(unavailable)? {
        Reply::Written(r) => Ok(r),
        _ => Err(unexpected()),
    }
}

fn unavailable(e: ClientError) -> HostError {
    HostError::unavailable(e.to_string())
}

fn unexpected() -> HostError {
    HostError { kind: "INTERNAL", message: "raft answered a different request".into() }
}

fn encode(value: &Value) -> Result<Vec<u8>, HostError> {
    rmp_serde::to_vec(value).map_err(|e| HostError::invalid(format!("value cannot be stored: {e}")))
}

fn decode(r: &Record) -> Result<Value, HostError> {
    rmp_serde::from_slice(&r.value.0)
        .map_err(|e| HostError { kind: "INTERNAL", message: format!("stored value does not decode: {e}") })
}

fn entry(key: &str, r: &Record) -> Result<Value, HostError> {
    Ok(entry_value(key, decode(r)?, r.version))
}

/// `{key, value, version}`.
fn entry_value(key: &str, value: Value, version: u64) -> Value {
    Value::Map(vec![
        (Value::str("key"), Value::str(key)),
        (Value::str("value"), value),
        (Value::str("version"), Value::Int(i64::try_from(version).unwrap_or(i64::MAX))),
    ])
}
