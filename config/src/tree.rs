//! A YAML document as a tree whose every key and value remembers its [`Origin`].
//!
//! The file is parsed into this tree first; environment and `--set` overrides are
//! merged into it; only then is the tree turned into typed structs (see `de.rs`).
//! Keeping the origins on the nodes is what lets every later error name the file and
//! line, or the variable or argument, that supplied the bad value.

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{Location, MessageFormatter, Spanned, UserMessageFormatter};

use crate::{ConfigError, Origin};

/// One YAML value with its origin.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Node {
    pub(crate) value: Value,
    pub(crate) origin: Origin,
}

/// The shapes a YAML value can take.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Uint(u64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<Entry>),
}

/// One `key: value` pair of a mapping, in document order.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Entry {
    pub(crate) key: String,
    pub(crate) key_origin: Origin,
    pub(crate) node: Node,
}

impl Node {
    /// An empty mapping, the tree of an absent file.
    pub(crate) fn empty_map() -> Node {
        Node { value: Value::Map(Vec::new()), origin: Origin::Unknown }
    }

    /// Parses one YAML document. `place` turns a parser location into an origin, so
    /// the same code serves files (line and column) and override values (the variable
    /// or argument as a whole).
    pub(crate) fn parse(text: &str, place: &dyn Fn(Location) -> Origin) -> Result<Node, ConfigError> {
        match serde_saphyr::from_str::<Spanned<Raw>>(text) {
            Ok(raw) => Ok(to_node(raw, place)),
            Err(err) => {
                let err = err.without_snippet();
                let message = UserMessageFormatter.format_message(err);
                Err(ConfigError::Syntax {
                    origin: place(err.location().unwrap_or(Location::UNKNOWN)),
                    message: one_line(&message),
                })
            }
        }
    }

    /// Puts `value` at `path` (segments from the root), creating mappings on the way.
    /// A non-mapping in the way is replaced: the override has the higher precedence.
    /// Mappings merge key by key; anything else replaces the old value.
    pub(crate) fn set(&mut self, path: &[String], value: Node) {
        let Some((first, rest)) = path.split_first() else {
            self.merge(value);
            return;
        };
        if !matches!(self.value, Value::Map(_)) {
            self.value = Value::Map(Vec::new());
        }
        let Value::Map(entries) = &mut self.value else {
            return;
        };
        let index = match entries.iter().position(|e| e.key == *first) {
            Some(i) => i,
            None => {
                entries.push(Entry {
                    key: first.clone(),
                    key_origin: value.origin.clone(),
                    node: Node { value: Value::Null, origin: value.origin.clone() },
                });
                entries.len() - 1
            }
        };
        entries[index].node.set(rest, value);
    }

    fn merge(&mut self, incoming: Node) {
        let Node { value, origin } = incoming;
        match (&mut self.value, value) {
            (Value::Map(mine), Value::Map(theirs)) => {
                for entry in theirs {
                    match mine.iter_mut().find(|e| e.key == entry.key) {
                        Some(existing) => existing.node.merge(entry.node),
                        None => mine.push(entry),
                    }
                }
            }
            (slot, value) => {
                *slot = value;
                self.origin = origin;
            }
        }
    }

    /// The origin of the value at a dotted `path`, if the tree has one there.
    pub(crate) fn origin_at(&self, path: &str) -> Option<&Origin> {
        let mut node = self;
        for segment in path.split('.').filter(|s| !s.is_empty()) {
            let Value::Map(entries) = &node.value else {
                return None;
            };
            node = &entries.iter().find(|e| e.key == segment)?.node;
        }
        Some(&node.origin)
    }
}

/// Collapses a parser message onto one line.
fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// What the YAML parser hands back before origins are attached.
enum Raw {
    Null,
    Bool(bool),
    Int(i64),
    Uint(u64),
    Float(f64),
    Str(String),
    Seq(Vec<Spanned<Raw>>),
    Map(Vec<(Spanned<String>, Spanned<Raw>)>),
}

/// Attaches origins to a parsed value, recursively.
fn to_node(raw: Spanned<Raw>, place: &dyn Fn(Location) -> Origin) -> Node {
    let value = match raw.value {
        Raw::Null => Value::Null,
        Raw::Bool(b) => Value::Bool(b),
        Raw::Int(i) => Value::Int(i),
        Raw::Uint(u) => Value::Uint(u),
        Raw::Float(f) => Value::Float(f),
        Raw::Str(s) => Value::Str(s),
        Raw::Seq(items) => Value::Seq(items.into_iter().map(|i| to_node(i, place)).collect()),
        Raw::Map(pairs) => Value::Map(
            pairs
                .into_iter()
                .map(|(key, node)| Entry {
                    key: key.value,
                    key_origin: place(key.referenced),
                    node: to_node(node, place),
                })
                .collect(),
        ),
    };
    Node { value, origin: place(raw.referenced) }
}

impl<'de> Deserialize<'de> for Raw {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(RawVisitor)
    }
}

struct RawVisitor;

impl<'de> Visitor<'de> for RawVisitor {
    type Value = Raw;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_unit<E>(self) -> Result<Raw, E> {
        Ok(Raw::Null)
    }

    fn visit_none<E>(self) -> Result<Raw, E> {
        Ok(Raw::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Raw, D::Error> {
        Raw::deserialize(d)
    }

    fn visit_bool<E>(self, v: bool) -> Result<Raw, E> {
        Ok(Raw::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Raw, E> {
        Ok(Raw::Int(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Raw, E> {
        Ok(Raw::Uint(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Raw, E> {
        Ok(Raw::Float(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Raw, E> {
        Ok(Raw::Str(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Raw, E> {
        Ok(Raw::Str(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Raw, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Raw::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Raw, A::Error> {
        let mut pairs = Vec::new();
        while let Some(key) = map.next_key::<Spanned<String>>()? {
            pairs.push((key, map.next_value()?));
        }
        Ok(Raw::Map(pairs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(l: Location) -> Origin {
        Origin::File { name: "t.yaml".into(), line: l.line(), column: l.column() }
    }

    fn at(line: u64, column: u64) -> Origin {
        Origin::File { name: "t.yaml".into(), line, column }
    }

    fn parse(text: &str) -> Node {
        Node::parse(text, &file).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn values_and_keys_carry_their_position() {
        let tree = parse("a:\n  b: 3\n  c: \"x\"\n");
        assert_eq!(tree.origin_at("a.b"), Some(&at(2, 6)));
        assert_eq!(tree.origin_at("a.c"), Some(&at(3, 6)));
        assert_eq!(tree.origin_at("a.zz"), None);
        let Value::Map(top) = &tree.value else {
            panic!("not a map");
        };
        assert_eq!(top[0].key_origin, at(1, 1));
    }

    #[test]
    fn syntax_errors_point_at_the_problem() {
        let err = Node::parse("a:\n  b: [1, 2\n", &file).err();
        let text = err.map(|e| e.to_string()).unwrap_or_default();
        assert!(text.starts_with("t.yaml:2:6: "), "{text}");
        assert!(text.contains("bracket"), "{text}");
    }

    #[test]
    fn set_creates_replaces_and_merges() {
        let mut tree = parse("a:\n  b: 1\n  c: 2\nd: 5\n");
        let set = Origin::Set { arg: "x".into() };
        let scalar = |v| Node { value: Value::Int(v), origin: set.clone() };
        tree.set(&["a".into(), "b".into()], scalar(10));
        tree.set(&["d".into(), "e".into()], scalar(11));
        tree.set(&["f".into(), "g".into()], scalar(12));
        let mut sub = Node::empty_map();
        sub.set(&["c".into()], scalar(13));
        tree.set(&["a".into()], sub);
        assert_eq!(tree.origin_at("a.b"), Some(&set));
        assert_eq!(tree.origin_at("a.c"), Some(&set));
        assert_eq!(tree.origin_at("d.e"), Some(&set));
        assert_eq!(tree.origin_at("f.g"), Some(&set));
        let Value::Map(top) = &tree.value else {
            panic!("not a map");
        };
        let Value::Map(a) = &top[0].node.value else {
            panic!("a is not a map");
        };
        assert_eq!(a.len(), 2, "merge keeps both keys of `a`");
        assert_eq!(a[0].node.value, Value::Int(10));
        assert_eq!(a[1].node.value, Value::Int(13));
    }
}
