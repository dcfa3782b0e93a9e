//! [`ByteSize`]: an amount of memory written as bytes or as text with a unit.
//!
//! Accepted forms: a YAML integer (bytes), or `<integer>[ ]<unit>` where the unit is
//! `B`, a decimal one (`KB`, `MB`, `GB`, `TB`: powers of 1000) or a binary one (`KiB`,
//! `MiB`, `GiB`, `TiB`: powers of 1024). A bare `K`, `M`, `G` or `T` means the binary
//! unit, as in Go's memory limits. Units ignore case.
//!
//! Display picks the unit that divides the value exactly and gives the smallest
//! number (binary on a tie), so `1GiB`, `64MiB` and `512MB` come back as written.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Deserializer, Unexpected, Visitor};
use serde::{Deserialize, Serialize, Serializer};

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;
const TIB: u64 = 1 << 40;

/// Units tried by [`ByteSize`]'s display; binary first so it wins ties.
const DISPLAY_UNITS: [(&str, u64); 8] = [
    ("TiB", TIB),
    ("GiB", GIB),
    ("MiB", MIB),
    ("KiB", KIB),
    ("TB", 1_000_000_000_000),
    ("GB", 1_000_000_000),
    ("MB", 1_000_000),
    ("KB", 1_000),
];

/// A number of bytes; see the module docs for the accepted spellings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteSize(pub u64);

impl ByteSize {
    /// `n` mebibytes (n × 2^20 bytes).
    pub const fn mib(n: u64) -> Self {
        ByteSize(n * MIB)
    }

    /// `n` gibibytes (n × 2^30 bytes).
    pub const fn gib(n: u64) -> Self {
        ByteSize(n * GIB)
    }

    /// The size in bytes.
    pub const fn bytes(self) -> u64 {
        self.0
    }
}

/// Why a byte-size string was rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid byte size {input:?}: {reason}")]
pub struct ParseByteSizeError {
    input: String,
    reason: &'static str,
}

impl FromStr for ByteSize {
    type Err = ParseByteSizeError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let fail = |reason| ParseByteSizeError { input: input.to_owned(), reason };
        let text = input.trim();
        let digits = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
        let (number, unit) = text.split_at(digits);
        if number.is_empty() {
            return Err(fail("expected a whole number of bytes, e.g. 64MiB or 1GiB"));
        }
        let count: u64 = number.parse().map_err(|_| fail("too large"))?;
        let scale = unit_scale(unit.trim_start())
            .ok_or_else(|| fail("unknown unit (use B, KB, MB, GB, TB, KiB, MiB, GiB or TiB)"))?;
        count.checked_mul(scale).map(ByteSize).ok_or_else(|| fail("too large"))
    }
}

/// Bytes per one `unit` (case-insensitive); the empty unit means bytes.
fn unit_scale(unit: &str) -> Option<u64> {
    let scale = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        "k" | "kib" => KIB,
        "m" | "mib" => MIB,
        "g" | "gib" => GIB,
        "t" | "tib" => TIB,
        _ => return None,
    };
    Some(scale)
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The exact unit that gives the smallest number; binary wins ties.
        let best = DISPLAY_UNITS
            .iter()
            .filter(|(_, scale)| self.0 != 0 && self.0.is_multiple_of(*scale))
            .min_by_key(|(_, scale)| self.0 / scale);
        match best {
            Some((unit, scale)) => write!(f, "{}{unit}", self.0 / scale),
            None => write!(f, "{}B", self.0),
        }
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ByteSizeVisitor)
    }
}

struct ByteSizeVisitor;

impl Visitor<'_> for ByteSizeVisitor {
    type Value = ByteSize;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a byte size (an integer, or text such as \"64MiB\" or \"1GiB\")")
    }

    fn visit_u64<E: de::Error>(self, bytes: u64) -> Result<ByteSize, E> {
        Ok(ByteSize(bytes))
    }

    fn visit_i64<E: de::Error>(self, bytes: i64) -> Result<ByteSize, E> {
        u64::try_from(bytes).map(ByteSize).map_err(|_| E::invalid_value(Unexpected::Signed(bytes), &self))
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<ByteSize, E> {
        text.parse().map_err(E::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> u64 {
        s.parse::<ByteSize>().unwrap_or_else(|e| panic!("{s}: {e}")).bytes()
    }

    #[test]
    fn parses_binary_decimal_and_plain_units() {
        assert_eq!(parse("64MiB"), 64 * MIB);
        assert_eq!(parse("1GiB"), GIB);
        assert_eq!(parse("512MB"), 512_000_000);
        assert_eq!(parse("1G"), GIB);
        assert_eq!(parse("4 kib"), 4 * KIB);
        assert_eq!(parse("100"), 100);
        assert_eq!(parse("100B"), 100);
        assert_eq!(parse("2TB"), 2_000_000_000_000);
    }

    #[test]
    fn rejects_malformed_text() {
        for bad in ["", "MiB", "1.5GiB", "-1MiB", "12 parsecs", "99999999999TiB"] {
            assert!(bad.parse::<ByteSize>().is_err(), "{bad:?} should fail");
        }
    }

    #[test]
    fn display_round_trips() {
        for text in ["1GiB", "64MiB", "512MB", "3B", "0B", "1000001B"] {
            let size: ByteSize = text.parse().unwrap_or_default();
            assert_eq!(size.to_string(), text);
        }
        assert_eq!(ByteSize(1_000).to_string(), "1KB");
        assert_eq!(ByteSize(2048).to_string(), "2KiB");
    }
}
