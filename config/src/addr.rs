//! Network address helpers: port fields, `host:port` seeds and lists of them.

use std::fmt;

use serde::de::{self, Deserializer, SeqAccess, Unexpected, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// Deserializes a `u16` port with a message that says what a port is, instead of
/// serde's bare "expected u16". Range rules beyond 0..=65535 live in validation.
pub(crate) fn deserialize_port<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u16, D::Error> {
    struct PortVisitor;

    impl Visitor<'_> for PortVisitor {
        type Value = u16;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a port number between 0 and 65535")
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<u16, E> {
            u16::try_from(v).map_err(|_| E::invalid_value(Unexpected::Unsigned(v), &self))
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<u16, E> {
            u16::try_from(v).map_err(|_| E::invalid_value(Unexpected::Signed(v), &self))
        }
    }

    deserializer.deserialize_u16(PortVisitor)
}

/// Splits `host:port` (IPv6 hosts in brackets: `[::1]:7946`) and checks the port is
/// 1..=65535. Returns the host without brackets.
pub(crate) fn parse_host_port(text: &str) -> Result<(&str, u16), String> {
    let (host, port) =
        text.rsplit_once(':').ok_or_else(|| format!("{text:?} is not host:port (the port is missing)"))?;
    let host = match host.strip_prefix('[') {
        Some(inner) => inner.strip_suffix(']').ok_or_else(|| format!("{text:?} has an unclosed `[`"))?,
        None if host.contains(':') => {
            return Err(format!("{text:?}: write IPv6 hosts in brackets, e.g. [::1]:7946"));
        }
        None => host,
    };
    if host.is_empty() || host.chars().any(char::is_whitespace) {
        return Err(format!("{text:?} has an empty or malformed host"));
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok((host, p)),
        _ => Err(format!("{text:?} has a bad port {port:?} (want 1..=65535)")),
    }
}

/// A list of short strings (seed addresses, extra keys). In YAML either a
/// comma-separated string (`"node-1:7946,node-2:7946"`, handy in environment
/// variables) or a list; displays as the comma-separated form. Blank entries are
/// dropped. What each entry must look like is checked where the list is used.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AddrList(pub Vec<String>);

impl AddrList {
    /// The entries, each expected to be `host:port`.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn from_csv(text: &str) -> Self {
        AddrList(text.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect())
    }
}

impl fmt::Display for AddrList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join(","))
    }
}

impl Serialize for AddrList {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for AddrList {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(AddrListVisitor)
    }
}

struct AddrListVisitor;

impl<'de> Visitor<'de> for AddrListVisitor {
    type Value = AddrList;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("comma-separated host:port addresses, or a list of them")
    }

    fn visit_unit<E: de::Error>(self) -> Result<AddrList, E> {
        Ok(AddrList::default())
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<AddrList, E> {
        Ok(AddrList::from_csv(text))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<AddrList, A::Error> {
        let mut out = Vec::new();
        while let Some(item) = seq.next_element::<String>()? {
            out.extend(AddrList::from_csv(&item).0);
        }
        Ok(AddrList(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_accepts_names_ipv4_and_bracketed_ipv6() {
        assert_eq!(parse_host_port("node-1:7946"), Ok(("node-1", 7946)));
        assert_eq!(parse_host_port("10.0.0.1:1"), Ok(("10.0.0.1", 1)));
        assert_eq!(parse_host_port("[::1]:7946"), Ok(("::1", 7946)));
    }

    #[test]
    fn host_port_rejects_missing_or_bad_parts() {
        for bad in ["node-1", ":7946", "node:0", "node:70000", "::1:7946", "[::1:7946", "a b:1"] {
            assert!(parse_host_port(bad).is_err(), "{bad:?} should fail");
        }
    }

    #[test]
    fn addr_list_splits_commas_and_displays_back() {
        let list = AddrList::from_csv(" a:1, b:2 ,,");
        assert_eq!(list.0, vec!["a:1".to_owned(), "b:2".to_owned()]);
        assert_eq!(list.to_string(), "a:1,b:2");
        assert!(AddrList::from_csv("").is_empty());
    }
}
