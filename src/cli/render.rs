//! Printing results: the node's JSON as is, or tables for people.
//!
//! In JSON mode stdout carries the JSON document and nothing else, so
//! `| jq` always works; notes then go to stderr.

use serde_json::Value as Json;

use super::table::Table;
use super::time;

/// Where and how results are printed.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Out {
    /// `--output json`.
    pub(crate) json: bool,
}

impl Out {
    /// Prints a JSON document, pretty.
    pub(crate) fn print_json(&self, value: &Json) {
        emit(&(serde_json::to_string_pretty(value).expect("JSON values always serialize") + "\n"));
    }

    /// Prints a table.
    pub(crate) fn print_table(&self, table: &Table) {
        emit(&table.render());
    }

    /// A line for people: stdout in table mode, stderr in JSON mode.
    pub(crate) fn note(&self, text: &str) {
        if self.json {
            eprintln!("{text}");
        } else {
            emit(&format!("{text}\n"));
        }
    }

    /// `value` as JSON, or as a field/value listing with the fields named
    /// in `order` first.
    pub(crate) fn fields(&self, value: &Json, order: &[&str]) {
        if self.json {
            self.print_json(value);
        } else {
            self.print_table(&field_table(value, order));
        }
    }
}

/// Writes to stdout. A closed pipe (`| head`) is not an error worth a
/// panic, which is what `println!` makes of it.
pub(crate) fn emit(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

/// One cell: `-` for null, `yes`/`no`, strings without quotes.
pub(crate) fn cell(value: &Json) -> String {
    match value {
        Json::Null => "-".into(),
        Json::Bool(b) => if *b { "yes" } else { "no" }.into(),
        Json::String(s) if s.is_empty() => "-".into(),
        Json::String(s) => s.clone(),
        Json::Array(items) if items.is_empty() => "-".into(),
        Json::Array(items) => items.iter().map(cell).collect::<Vec<_>>().join(", "),
        // An object inside a list: its fields in one cell.
        Json::Object(fields) => fields.iter().map(|(k, v)| format!("{k}={}", cell(v))).collect::<Vec<_>>().join(" "),
        other => other.to_string(),
    }
}

/// A field's value; timestamps (`*_at`, `*_until`) also as UTC dates, and
/// an `expires_at` of 0 as never.
pub(crate) fn field_cell(key: &str, value: &Json) -> String {
    let is_time = key.ends_with("_at") || key.ends_with("_until");
    match value.as_u64() {
        Some(0) if key.ends_with("expires_at") => "0 (never)".into(),
        Some(secs) if is_time && secs > 0 => time::both(secs),
        _ => cell(value),
    }
}

/// An object as `field  value` rows, nested objects flattened to dotted
/// names (`members.alive`), so any shape the node sends still prints. The
/// top-level fields named in `order` come first, the rest by name.
pub(crate) fn field_table(value: &Json, order: &[&str]) -> Table {
    let mut table = Table::plain();
    let mut rows = Vec::new();
    match value.as_object() {
        Some(map) if !map.is_empty() => {
            let known = order.iter().filter(|k| map.contains_key(**k)).copied();
            let rest = map.keys().map(String::as_str).filter(|k| !order.contains(k));
            for key in known.chain(rest) {
                flatten(key, &map[key], &mut rows);
            }
        }
        _ => flatten("", value, &mut rows),
    }
    for (k, v) in rows {
        table.row([k, v]);
    }
    table
}

fn flatten(prefix: &str, value: &Json, rows: &mut Vec<(String, String)>) {
    match value {
        Json::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                flatten(&key, v, rows);
            }
        }
        _ if prefix.is_empty() => rows.push(("value".into(), cell(value))),
        _ => {
            let leaf = prefix.rsplit('.').next().unwrap_or(prefix);
            rows.push((prefix.to_string(), field_cell(leaf, value)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cells_read_well() {
        assert_eq!(cell(&json!(null)), "-");
        assert_eq!(cell(&json!(true)), "yes");
        assert_eq!(cell(&json!("")), "-");
        assert_eq!(cell(&json!("p1")), "p1");
        assert_eq!(cell(&json!(3)), "3");
        assert_eq!(cell(&json!([])), "-");
        assert_eq!(cell(&json!(["a", "b"])), "a, b");
        assert_eq!(cell(&json!([{"node": "n2", "raft_cluster": "c1"}])), "node=n2 raft_cluster=c1");
        assert_eq!(field_cell("expires_at", &json!(0)), "0 (never)");
        assert_eq!(field_cell("added_at", &json!(86_400)), "86400 (1970-01-02 00:00:00 UTC)");
        assert_eq!(field_cell("previous_valid_until", &json!(null)), "-");
        assert_eq!(field_cell("max_nodes", &json!(5)), "5");
    }

    #[test]
    fn nested_objects_flatten_to_dotted_fields() {
        let status = json!({
            "identity": {"peer_id": "p1", "node": "n1"},
            "members": {"alive": 2, "down": 0},
            "raft": null,
            "credential": {"created_at": 86400, "generation": 1},
        });
        let text = field_table(&status, &["identity", "raft"]).render();
        let expected = "\
identity.node          n1
identity.peer_id       p1
raft                   -
credential.created_at  86400 (1970-01-02 00:00:00 UTC)
credential.generation  1
members.alive          2
members.down           0
";
        assert_eq!(text, expected);
    }
}
