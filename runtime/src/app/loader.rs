//! Reads an app folder (`src/**/_index.yaml` plus the Lua files they name)
//! or a single script, and checks it completely before anything starts: a
//! node never boots half-configured.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::index::{Entry, Index};
use super::{App, Definition, PgScopeDef, RestartPolicy, Service, StoreBackend, StoreDef};

/// Why an app could not be loaded. Each message names the file (and line
/// when there is one).
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// A file could not be read.
    #[error("{path}: {error}")]
    Io {
        /// The file.
        path: String,
        /// The OS error (part of the message, not a separate cause).
        error: std::io::Error,
    },
    /// An `_index.yaml` is malformed.
    #[error("{path}:{line}:{column}: {message}")]
    Yaml {
        /// The file.
        path: String,
        /// 1-based line.
        line: u64,
        /// 1-based column.
        column: u64,
        /// What is wrong.
        message: String,
    },
    /// An entry is inconsistent (duplicate id, dangling reference, bad value).
    #[error("{path}: {message}")]
    Entry {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// A Lua file does not compile.
    #[error("{0}")]
    Lua(String),
}

/// Host id used by `wippy run FILE.lua`.
pub(crate) const SCRIPT_HOST: &str = "app:processes";
/// Definition id used by `wippy run FILE.lua`.
pub(crate) const SCRIPT_DEF: &str = "app:main";

/// Loads `FILE.lua` as an app of one process.
pub fn load_script(path: &Path) -> Result<App, AppError> {
    let source = read(path)?;
    let def = definition(SCRIPT_DEF, &source, path, "?main")?;
    Ok(App {
        definitions: vec![def],
        hosts: vec![SCRIPT_HOST.to_string()],
        services: Vec::new(),
        stores: Vec::new(),
        pg_scopes: Vec::new(),
        main: Some((SCRIPT_DEF.to_string(), SCRIPT_HOST.to_string())),
    })
}

/// Loads every `_index.yaml` under `dir/src`.
pub fn load_dir(dir: &Path) -> Result<App, AppError> {
    let src = dir.join("src");
    let mut files = Vec::new();
    find_indexes(&src, &mut files)?;
    if files.is_empty() {
        return Err(AppError::Entry {
            path: src.display().to_string(),
            message: "no _index.yaml found (an app keeps its entries in src/_index.yaml)".into(),
        });
    }
    files.sort();
    let mut app = App::default();
    let mut origins: Vec<(String, String)> = Vec::new();
    for file in &files {
        load_index(file, &mut app, &mut origins)?;
    }
    for s in &app.services {
        let origin = origins.iter().find(|(id, _)| *id == s.id).map(|(_, p)| p.clone()).unwrap_or_default();
        if !app.definitions.iter().any(|d| d.id == s.process) {
            return Err(AppError::Entry {
                path: origin,
                message: format!("service {}: process {} is not defined", s.id, s.process),
            });
        }
        if !app.hosts.contains(&s.host) {
            return Err(AppError::Entry {
                path: origin,
                message: format!("service {}: host {} is not defined", s.id, s.host),
            });
        }
    }
    Ok(app)
}

fn find_indexes(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), AppError> {
    let rd = std::fs::read_dir(dir).map_err(|e| AppError::Io { path: dir.display().to_string(), error: e })?;
    for entry in rd.flatten() {
        let p = entry.path();
        if p.is_dir() {
            find_indexes(&p, out)?;
        } else if p.file_name().is_some_and(|n| n == "_index.yaml") {
            out.push(p);
        }
    }
    Ok(())
}

fn read(path: &Path) -> Result<String, AppError> {
    std::fs::read_to_string(path).map_err(|e| AppError::Io { path: path.display().to_string(), error: e })
}

fn load_index(file: &Path, app: &mut App, origins: &mut Vec<(String, String)>) -> Result<(), AppError> {
    let text = read(file)?;
    let shown = file.display().to_string();
    let index: Index = serde_saphyr::from_str(&text).map_err(|e| {
        let (line, column) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
        AppError::Yaml { path: shown.clone(), line, column, message: first_line(&e.to_string()) }
    })?;
    let base = file.parent().unwrap_or(Path::new("."));
    let ns = index.namespace;
    let entry_err = |message: String| AppError::Entry { path: shown.clone(), message };
    for entry in index.entries {
        let (name, id) = match &entry {
            Entry::Host { name, .. }
            | Entry::Lua { name, .. }
            | Entry::Service { name, .. }
            | Entry::PgScope { name, .. }
            | Entry::KvRaft { name, .. }
            | Entry::KvCrdt { name, .. } => (name.clone(), format!("{ns}:{name}")),
        };
        if name.is_empty() || name.contains(':') {
            return Err(entry_err(format!("entry name {name:?} must be non-empty and contain no ':'")));
        }
        if origins.iter().any(|(i, _)| *i == id) {
            return Err(entry_err(format!("entry {id} is defined twice")));
        }
        origins.push((id.clone(), shown.clone()));
        match entry {
            Entry::Host { .. } => app.hosts.push(id),
            Entry::Lua { source, method, .. } => {
                let rel = source.strip_prefix("file://").ok_or_else(|| {
                    entry_err(format!("{id}: source must be file://<path relative to the _index.yaml>, got {source:?}"))
                })?;
                let path = base.join(rel);
                let text = read(&path)?;
                app.definitions.push(definition(&id, &text, &path, method.as_deref().unwrap_or(""))?);
            }
            Entry::Service { process, host, input, lifecycle, .. } => {
                let lifecycle = lifecycle.unwrap_or_default();
                let mut restart = RestartPolicy::default();
                if let Some(r) = lifecycle.restart {
                    if let Some(d) = r.initial_delay {
                        restart.initial_delay =
                            d.to_duration().map_err(|e| entry_err(format!("{id}: initial_delay: {e}")))?;
                    }
                    if let Some(d) = r.max_delay {
                        restart.max_delay = d.to_duration().map_err(|e| entry_err(format!("{id}: max_delay: {e}")))?;
                    }
                    if let Some(f) = r.backoff_factor {
                        if !(1.0..=100.0).contains(&f) {
                            return Err(entry_err(format!("{id}: backoff_factor must be between 1 and 100, got {f}")));
                        }
                        restart.backoff_factor = f;
                    }
                    if let Some(m) = r.max_attempts {
                        restart.max_attempts = m;
                    }
                }
                app.services.push(Service {
                    id,
                    process: qualify(&ns, &process),
                    host: qualify(&ns, &host),
                    args: input.iter().map(json_value).collect(),
                    restart,
                    auto_start: lifecycle.auto_start.unwrap_or(true),
                });
            }
            Entry::KvRaft { namespace, .. } => {
                let namespace = store_namespace(&id, namespace, &app.stores).map_err(entry_err)?;
                app.stores.push(StoreDef { id, backend: StoreBackend::KvRaft, namespace, durable: true });
            }
            Entry::KvCrdt { namespace, durable, .. } => {
                let namespace = store_namespace(&id, namespace, &app.stores).map_err(entry_err)?;
                let durable = durable.unwrap_or(false);
                app.stores.push(StoreDef { id, backend: StoreBackend::KvCrdt, namespace, durable });
            }
            Entry::PgScope { anti_entropy_interval, max_groups, max_members_per_group, rest, .. } => {
                let anti_entropy = match anti_entropy_interval {
                    Some(d) => d.to_duration().map_err(|e| entry_err(format!("{id}: anti_entropy_interval: {e}")))?,
                    None => std::time::Duration::from_secs(30),
                };
                for key in rest.keys().filter(|k| !matches!(k.as_str(), "meta" | "lifecycle")) {
                    tracing::debug!(entry = %id, %key, "pg.scope key not used by this node");
                }
                app.pg_scopes.push(PgScopeDef {
                    id,
                    anti_entropy,
                    max_groups: max_groups.unwrap_or(0),
                    max_members: max_members_per_group.unwrap_or(0),
                });
            }
        }
    }
    Ok(())
}

/// Checks a store's namespace: the naming rule, and no second store of
/// the same backend on it (two entries would silently share keys).
fn store_namespace(id: &str, namespace: String, stores: &[StoreDef]) -> Result<String, String> {
    let mut chars = namespace.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'));
    if !valid {
        return Err(format!("{id}: namespace {namespace:?} must match ^[a-z][a-z0-9._-]*$"));
    }
    if let Some(other) = stores.iter().find(|s| s.namespace == namespace) {
        return Err(format!("{id}: namespace {namespace:?} is already used by store {}", other.id));
    }
    Ok(namespace)
}

/// `worker` → `ns:worker`; `other:worker` stays.
fn qualify(ns: &str, r: &str) -> String {
    if r.contains(':') { r.to_string() } else { format!("{ns}:{r}") }
}

fn first_line(msg: &str) -> String {
    let line = msg.lines().next().unwrap_or(msg);
    // serde-saphyr prefixes "error: line N column M: "; the location is printed separately.
    match line.find(": ").filter(|_| line.starts_with("error: line ")) {
        Some(_) => line
            .split_once("column ")
            .map(|x| x.1)
            .and_then(|r| r.split_once(": "))
            .map_or(line, |(_, m)| m)
            .to_string(),
        None => line.to_string(),
    }
}

fn json_value(j: &serde_json::Value) -> wippy_lua_stdlib::Value {
    use wippy_lua_stdlib::Value;
    match j {
        serde_json::Value::Null => Value::Nil,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => n.as_i64().map_or_else(|| Value::Float(n.as_f64().unwrap_or(0.0)), Value::Int),
        serde_json::Value::String(s) => Value::str(s.as_bytes()),
        serde_json::Value::Array(a) => Value::Array(a.iter().map(json_value).collect()),
        serde_json::Value::Object(m) => {
            Value::Map(m.iter().map(|(k, v)| (Value::str(k.as_bytes()), json_value(v))).collect())
        }
    }
}

/// Builds a definition and checks that its source compiles, with the same
/// wrapping the kernel uses so that line numbers agree.
fn definition(id: &str, source: &str, path: &Path, method: &str) -> Result<Definition, AppError> {
    let source = strip_shebang(source);
    let chunkname = format!("@{}", path.display());
    let lua = mlua::Lua::new();
    let wrapped = format!("return function(_ENV, ...) {source}\nend");
    lua.load(&wrapped).set_name(&chunkname).into_function().map_err(|e| AppError::Lua(lua_error_text(&e)))?;
    Ok(Definition { id: id.to_string(), source: Arc::from(source), chunkname, method: method.to_string() })
}

fn strip_shebang(s: &str) -> String {
    match s.strip_prefix("#!") {
        // keep the line count: replace the shebang with a comment
        Some(rest) => format!("--{rest}"),
        None => s.to_string(),
    }
}

fn lua_error_text(e: &mlua::Error) -> String {
    match e {
        mlua::Error::SyntaxError { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_line_drops_the_location_prefix() {
        assert_eq!(first_line("error: line 4 column 5: unknown variant `x`\n --> a"), "unknown variant `x`");
        assert_eq!(first_line("plain"), "plain");
    }

    #[test]
    fn qualify_adds_the_namespace_only_when_missing() {
        assert_eq!(qualify("app", "w"), "app:w");
        assert_eq!(qualify("app", "lib:w"), "lib:w");
    }
}
