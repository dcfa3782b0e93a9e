//! [`Duration`]: a time span written as milliseconds or as text with units.
//!
//! Accepted forms:
//! - a YAML integer (or a digits-only string): milliseconds, so `500` is half a second;
//! - one or more `<number><unit>` parts run together, largest first or not, e.g. `5ms`,
//!   `2s`, `250us`, `1m30s`, `1.5h`. Units: `ns`, `us` (or `µs`), `ms`, `s`, `m`, `h`.
//!
//! Display goes the other way and always re-parses to the same value (`1m30s`, `5ms`).

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Deserializer, Unexpected, Visitor};
use serde::{Deserialize, Serialize, Serializer};

const NANOS_PER_MICRO: u128 = 1_000;
const NANOS_PER_MILLI: u128 = 1_000_000;
const NANOS_PER_SEC: u128 = 1_000_000_000;

/// Units known to the parser and the display, largest first.
const UNITS: [(&str, u128); 6] = [
    ("h", 3_600 * NANOS_PER_SEC),
    ("m", 60 * NANOS_PER_SEC),
    ("s", NANOS_PER_SEC),
    ("ms", NANOS_PER_MILLI),
    ("us", NANOS_PER_MICRO),
    ("ns", 1),
];

/// A configuration time span; see the module docs for the accepted spellings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(pub std::time::Duration);

impl Duration {
    /// A span of `ms` milliseconds.
    pub const fn from_millis(ms: u64) -> Self {
        Duration(std::time::Duration::from_millis(ms))
    }

    /// A span of `s` seconds.
    pub const fn from_secs(s: u64) -> Self {
        Duration(std::time::Duration::from_secs(s))
    }

    /// A span of `us` microseconds.
    pub const fn from_micros(us: u64) -> Self {
        Duration(std::time::Duration::from_micros(us))
    }

    /// The standard-library value.
    pub const fn as_std(self) -> std::time::Duration {
        self.0
    }

    /// Whether the span is zero.
    pub const fn is_zero(self) -> bool {
        self.0.is_zero()
    }
}

impl From<Duration> for std::time::Duration {
    fn from(d: Duration) -> Self {
        d.0
    }
}

impl From<std::time::Duration> for Duration {
    fn from(d: std::time::Duration) -> Self {
        Duration(d)
    }
}

/// Why a duration string was rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {input:?}: {reason}")]
pub struct ParseDurationError {
    input: String,
    reason: &'static str,
}

impl FromStr for Duration {
    type Err = ParseDurationError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let fail = |reason| ParseDurationError { input: input.to_owned(), reason };
        let text = input.trim();
        if text.is_empty() {
            return Err(fail("empty (write e.g. 500ms, 2s or 1m30s)"));
        }
        if text.bytes().all(|b| b.is_ascii_digit()) {
            let ms: u64 = text.parse().map_err(|_| fail("too large"))?;
            return Ok(Duration::from_millis(ms));
        }
        let mut total: u128 = 0;
        let mut rest = text;
        while !rest.is_empty() {
            let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
            let (number, tail) = rest.split_at(num_len);
            if number.is_empty() {
                return Err(fail("expected a number before each unit"));
            }
            let unit_len = tail.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(tail.len());
            let (unit, tail) = tail.split_at(unit_len);
            let scale = unit_scale(unit).ok_or_else(|| {
                fail(if unit.is_empty() {
                    "missing unit after a number (use ns, us, ms, s, m or h)"
                } else {
                    "unknown unit (use ns, us, ms, s, m or h)"
                })
            })?;
            let part = scaled(number, scale).ok_or_else(|| fail("malformed number"))?;
            total = total.checked_add(part).ok_or_else(|| fail("too large"))?;
            rest = tail;
        }
        let nanos = u64::try_from(total).map_err(|_| fail("too large"))?;
        Ok(Duration(std::time::Duration::from_nanos(nanos)))
    }
}

/// Nanoseconds per one `unit`.
fn unit_scale(unit: &str) -> Option<u128> {
    match unit {
        "µs" | "μs" => Some(NANOS_PER_MICRO),
        _ => UNITS.iter().find(|(u, _)| *u == unit).map(|(_, s)| *s),
    }
}

/// `number` (digits with at most one `.`) times `scale`, in whole nanoseconds.
fn scaled(number: &str, scale: u128) -> Option<u128> {
    let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && frac.is_empty() || frac.contains('.') {
        return None;
    }
    let whole: u128 = if whole.is_empty() { 0 } else { whole.parse().ok()? };
    let mut nanos = whole.checked_mul(scale)?;
    // Fractional digits beyond nanosecond precision are dropped, not rounded.
    let mut place = scale;
    for digit in frac.bytes().take(18) {
        place /= 10;
        nanos = nanos.checked_add(u128::from(digit - b'0') * place)?;
    }
    Some(nanos)
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut left = self.0.as_nanos();
        if left == 0 {
            return f.write_str("0s");
        }
        for (unit, scale) in UNITS {
            let count = left / scale;
            if count > 0 {
                write!(f, "{count}{unit}")?;
                left -= count * scale;
            }
        }
        Ok(())
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(DurationVisitor)
    }
}

struct DurationVisitor;

impl Visitor<'_> for DurationVisitor {
    type Value = Duration;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a duration (milliseconds, or text such as \"250ms\", \"5s\", \"1m30s\")")
    }

    fn visit_u64<E: de::Error>(self, ms: u64) -> Result<Duration, E> {
        Ok(Duration::from_millis(ms))
    }

    fn visit_i64<E: de::Error>(self, ms: i64) -> Result<Duration, E> {
        u64::try_from(ms).map(Duration::from_millis).map_err(|_| E::invalid_value(Unexpected::Signed(ms), &self))
    }

    fn visit_f64<E: de::Error>(self, ms: f64) -> Result<Duration, E> {
        std::time::Duration::try_from_secs_f64(ms / 1_000.0)
            .map(Duration)
            .map_err(|_| E::invalid_value(Unexpected::Float(ms), &self))
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Duration, E> {
        text.parse().map_err(E::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Duration {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn parses_single_units() {
        assert_eq!(parse("5ms"), Duration::from_millis(5));
        assert_eq!(parse("2s"), Duration::from_secs(2));
        assert_eq!(parse("250us"), Duration::from_micros(250));
        assert_eq!(parse("250µs"), Duration::from_micros(250));
        assert_eq!(parse("7ns").as_std().as_nanos(), 7);
        assert_eq!(parse("2m"), Duration::from_secs(120));
        assert_eq!(parse("24h"), Duration::from_secs(86_400));
    }

    #[test]
    fn parses_combined_fractional_and_bare_numbers() {
        assert_eq!(parse("1m30s"), Duration::from_secs(90));
        assert_eq!(parse("1h2m3s4ms"), Duration::from_millis(3_723_004));
        assert_eq!(parse("1.5s"), Duration::from_millis(1_500));
        assert_eq!(parse(".5m"), Duration::from_secs(30));
        assert_eq!(parse("500"), Duration::from_millis(500));
        assert_eq!(parse(" 3s "), Duration::from_secs(3));
    }

    #[test]
    fn rejects_malformed_text() {
        for bad in ["", "s", "5x", "5 s", "-5s", "1..5s", ".s", "5sec", "ms5"] {
            assert!(bad.parse::<Duration>().is_err(), "{bad:?} should fail");
        }
        let err = "5x".parse::<Duration>().unwrap_err().to_string();
        assert!(err.contains("unknown unit"), "{err}");
        assert!("99999999999h".parse::<Duration>().is_err());
    }

    #[test]
    fn display_round_trips() {
        for text in ["0s", "5ms", "2s", "250us", "1m30s", "24h", "1h1ns", "3s500ms"] {
            let d = parse(text);
            assert_eq!(d.to_string(), text);
            assert_eq!(parse(&d.to_string()), d);
        }
        assert_eq!(Duration::from_millis(1_500).to_string(), "1s500ms");
    }
}
