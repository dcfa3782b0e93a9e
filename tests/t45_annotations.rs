//! The LuaLS annotation files (`lua-stdlib/types/*.lua`) cover the whole
//! Lua surface: every function a process can reach in a module table, and
//! every method of the handles `pg.open` and `store.get` return, has an
//! annotated signature, and nothing is annotated that does not exist.

#[path = "common/harness.rs"]
mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::*;

/// `function X.y(` and `function X:y(` names declared in the annotation files.
fn annotated() -> BTreeSet<String> {
    let dir = root().join("lua-stdlib/types");
    let mut names = BTreeSet::new();
    for entry in std::fs::read_dir(&dir).expect("types dir") {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "lua") {
            names.extend(declared(&path, "function "));
        }
    }
    names
}

/// Names after `prefix` up to the opening parenthesis, one per line.
fn declared(path: &Path, prefix: &str) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .filter_map(|l| l.strip_prefix(prefix))
        .filter_map(|rest| rest.split_once('(').map(|(name, _)| name.trim().to_owned()))
        .collect()
}

/// Every function in the module tables a process sees, as `module.fn`.
const LIST: &str = r#"
return { main = function()
    local out = {}
    local function walk(prefix, t, depth)
        for k, v in pairs(t) do
            local name = prefix .. "." .. k
            if type(v) == "function" then
                out[#out + 1] = name
            elseif type(v) == "table" and depth < 2 then
                walk(name, v, depth + 1)
            end
        end
    end
    walk("process", process, 0)
    walk("channel", channel, 0)
    for _, m in ipairs({ "time", "json", "system", "pg", "store" }) do
        walk(m, require(m), 0)
    end
    table.sort(out)
    return out
end }
"#;

#[test]
fn every_module_function_is_annotated_and_every_annotation_exists() {
    let h = start(1, &[("t:list", LIST)]);
    let listed = h.run_json("t:list", Vec::new());
    let runtime: BTreeSet<String> =
        listed.as_array().expect("an array").iter().map(|v| v.as_str().unwrap().to_owned()).collect();
    for f in ["pg.open", "store.get", "process.registry.register", "system.lock.acquire", "channel.select"] {
        assert!(runtime.contains(f), "the listing misses {f}: {runtime:?}");
    }
    let annotated = annotated();
    let missing: Vec<&String> = runtime.iter().filter(|f| !annotated.contains(*f)).collect();
    assert!(missing.is_empty(), "functions without annotations: {missing:?}");
    let modules = ["process.", "channel.", "time.", "json.", "system.", "pg.", "store."];
    let stale: Vec<&String> =
        annotated.iter().filter(|a| modules.iter().any(|m| a.starts_with(m)) && !runtime.contains(*a)).collect();
    assert!(stale.is_empty(), "annotated functions that do not exist: {stale:?}");
}

#[test]
fn every_pg_and_store_handle_method_is_annotated() {
    let annotated = annotated();
    let src = root().join("lua-stdlib/src");
    for (file, class, annotation) in
        [("pg.lua", "PG", "PgInstance"), ("pg.lua", "SUB", "PgSubscription"), ("store.lua", "STORE", "Store")]
    {
        let methods = declared(&src.join(file), &format!("function {class}:"));
        assert!(!methods.is_empty(), "{file} declares no {class} methods");
        for m in methods {
            let want = format!("{annotation}:{m}");
            assert!(annotated.contains(&want), "{file}: {class}:{m} has no annotation {want}");
        }
    }
}
