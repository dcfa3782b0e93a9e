//! A serde `Deserializer` over the [`Node`] tree.
//!
//! It walks the tree the way the derived `Deserialize` impls ask, keeping the dotted
//! path of the current value. When a visitor rejects a value (wrong type, bad
//! duration, unknown key), the error is stamped once, at the innermost point, with
//! that path and the node's origin, and later becomes a [`ConfigError`].

use std::fmt;

use serde::de::value::StrDeserializer;
use serde::de::{
    self, DeserializeOwned, DeserializeSeed, Deserializer, IntoDeserializer, MapAccess, SeqAccess, Visitor,
};

use crate::tree::{Entry, Node, Value};
use crate::{ConfigError, Origin};

/// Builds a `T` from `root`.
pub(crate) fn from_tree<T: DeserializeOwned>(root: &Node) -> Result<T, ConfigError> {
    let de = NodeDe { node: root, path: String::new() };
    T::deserialize(de).map_err(|e| e.locate(&root.origin, "").into_config_error())
}

/// `parent.key`, or just `key` at the root.
fn child(parent: &str, key: &str) -> String {
    if parent.is_empty() { key.to_owned() } else { format!("{parent}.{key}") }
}

/// The error type the visitors see while walking the tree.
#[derive(Debug)]
pub(crate) struct DeError {
    kind: Kind,
    /// Set once, by the innermost node that saw the failure.
    at: Option<(Origin, String)>,
}

#[derive(Debug)]
enum Kind {
    Custom(String),
    UnknownKey { expected: &'static [&'static str] },
}

impl DeError {
    fn locate(mut self, origin: &Origin, path: &str) -> Self {
        if self.at.is_none() {
            self.at = Some((origin.clone(), path.to_owned()));
        }
        self
    }

    fn into_config_error(self) -> ConfigError {
        let (origin, path) = self.at.unwrap_or((Origin::Unknown, String::new()));
        match self.kind {
            Kind::Custom(message) => ConfigError::Invalid { origin, path, message },
            Kind::UnknownKey { expected } => {
                ConfigError::UnknownKey { origin, path, expected: expected.iter().map(|k| (*k).to_owned()).collect() }
            }
        }
    }
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Custom(message) => f.write_str(message),
            Kind::UnknownKey { .. } => f.write_str("unknown key"),
        }
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError { kind: Kind::Custom(msg.to_string()), at: None }
    }

    fn unknown_field(_field: &str, expected: &'static [&'static str]) -> Self {
        DeError { kind: Kind::UnknownKey { expected }, at: None }
    }
}

/// Deserializer for one node; `path` is its dotted key path.
struct NodeDe<'a> {
    node: &'a Node,
    path: String,
}

impl NodeDe<'_> {
    fn map_access<'b>(&'b self, entries: &'b [Entry]) -> MapDe<'b> {
        MapDe { entries: entries.iter(), path: &self.path, pending: None }
    }
}

impl<'de> Deserializer<'de> for NodeDe<'_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.node.value {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Int(i) => visitor.visit_i64(*i),
            Value::Uint(u) => visitor.visit_u64(*u),
            Value::Float(f) => visitor.visit_f64(*f),
            Value::Str(s) => visitor.visit_str(s),
            Value::Seq(items) => visitor.visit_seq(SeqDe { items: items.iter().enumerate(), path: &self.path }),
            Value::Map(entries) => visitor.visit_map(self.map_access(entries)),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.node.value {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match &self.node.value {
            // `cluster:` with nothing under it means "all defaults".
            Value::Null => visitor.visit_map(self.map_access(&[])),
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match &self.node.value {
            Value::Str(s) => {
                let word: StrDeserializer<'_, DeError> = s.as_str().into_deserializer();
                visitor.visit_enum(word)
            }
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _name: &'static str, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map identifier
    }
}

/// Walks a mapping's entries in document order.
struct MapDe<'a> {
    entries: std::slice::Iter<'a, Entry>,
    path: &'a str,
    pending: Option<&'a Entry>,
}

impl<'de> MapAccess<'de> for MapDe<'_> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, DeError> {
        let Some(entry) = self.entries.next() else {
            return Ok(None);
        };
        self.pending = Some(entry);
        let key: StrDeserializer<'_, DeError> = entry.key.as_str().into_deserializer();
        seed.deserialize(key).map(Some).map_err(|e| e.locate(&entry.key_origin, &child(self.path, &entry.key)))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let entry =
            self.pending.take().ok_or_else(|| de::Error::custom("internal: a value was requested before its key"))?;
        let path = child(self.path, &entry.key);
        let de = NodeDe { node: &entry.node, path: path.clone() };
        seed.deserialize(de).map_err(|e| e.locate(&entry.node.origin, &path))
    }
}

/// Walks a sequence; elements are addressed as `path[index]`.
struct SeqDe<'a> {
    items: std::iter::Enumerate<std::slice::Iter<'a, Node>>,
    path: &'a str,
}

impl<'de> SeqAccess<'de> for SeqDe<'_> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, DeError> {
        let Some((index, node)) = self.items.next() else {
            return Ok(None);
        };
        let path = format!("{}[{index}]", self.path);
        let de = NodeDe { node, path: path.clone() };
        seed.deserialize(de).map(Some).map_err(|e| e.locate(&node.origin, &path))
    }
}
