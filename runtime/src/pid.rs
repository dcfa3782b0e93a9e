//! Process identifiers.
//!
//! A PID prints as `{node@host|0x0002a}`: the node id, the `process.host`
//! entry the process runs on, and a per-node counter in hex (at least five
//! digits). The counter also routes: `counter % workers` is the worker that
//! owns the process, so a send needs no shared lookup table.

use std::fmt;

/// A parsed PID.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Pid {
    /// Node id (empty for PIDs printed without a node part).
    pub node: String,
    /// The `process.host` entry id.
    pub host: String,
    /// The per-node counter.
    pub counter: u64,
}

/// Why a string is not a PID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PidError {
    /// Not wrapped in `{` `}`.
    #[error("invalid pid format: missing braces")]
    MissingBraces,
    /// No `|` between host and counter.
    #[error("invalid pid format: missing pipe")]
    MissingPipe,
    /// The counter is not `0x` followed by hex digits.
    #[error("invalid pid format: bad counter")]
    BadCounter,
}

impl Pid {
    /// Builds a PID.
    pub fn new(node: impl Into<String>, host: impl Into<String>, counter: u64) -> Pid {
        Pid { node: node.into(), host: host.into(), counter }
    }

    /// Parses the string form. The legacy three-part form
    /// `{node@host|ns:name|0x1}` is accepted and the middle part dropped.
    pub fn parse(s: &str) -> Result<Pid, PidError> {
        let inner = s.strip_prefix('{').and_then(|r| r.strip_suffix('}')).ok_or(PidError::MissingBraces)?;
        let (head, rest) = inner.split_once('|').ok_or(PidError::MissingPipe)?;
        let uniq = rest.rsplit('|').next().unwrap_or(rest);
        let hex = uniq.strip_prefix("0x").ok_or(PidError::BadCounter)?;
        let counter = u64::from_str_radix(hex, 16).map_err(|_| PidError::BadCounter)?;
        let (node, host) = match head.split_once('@') {
            Some((n, h)) => (n, h),
            None => ("", head),
        };
        Ok(Pid::new(node, host, counter))
    }

    /// Cheap check used before parsing: PIDs start with `{`, names never do
    /// in practice.
    pub fn looks_like(s: &str) -> bool {
        s.starts_with('{')
    }
}

/// The node and counter of a PID string without allocating (the mesh's
/// receive path); `None` when it is not a PID. The node is `""` for PIDs
/// printed without one.
pub fn node_and_counter(s: &str) -> Option<(&str, u64)> {
    let inner = s.strip_prefix('{')?.strip_suffix('}')?;
    let (head, rest) = inner.split_once('|')?;
    let hex = rest.rsplit('|').next()?.strip_prefix("0x")?;
    let counter = u64::from_str_radix(hex, 16).ok()?;
    Some((head.split_once('@').map_or("", |(n, _)| n), counter))
}

/// Formats a PID string without building a [`Pid`] (the spawn path).
pub fn format_pid(node: &str, host: &str, counter: u64) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(node.len() + host.len() + 12);
    s.push('{');
    if !node.is_empty() {
        s.push_str(node);
        s.push('@');
    }
    s.push_str(host);
    let _ = write!(s, "|0x{counter:05x}}}");
    s
}

impl fmt::Display for Pid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        if !self.node.is_empty() {
            write!(f, "{}@", self.node)?;
        }
        write!(f, "{}|0x{:05x}}}", self.host, self.counter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_and_parses_back() {
        let p = Pid::new("n1", "app:processes", 1);
        assert_eq!(p.to_string(), "{n1@app:processes|0x00001}");
        assert_eq!(Pid::parse(&p.to_string()), Ok(p));
        let big = Pid::new("n1", "app:p", 0x123456);
        assert_eq!(big.to_string(), "{n1@app:p|0x123456}");
        assert_eq!(Pid::parse("{app:p|0x00002}"), Ok(Pid::new("", "app:p", 2)));
        assert_eq!(format_pid("n1", "app:p", 0x2a), Pid::new("n1", "app:p", 0x2a).to_string());
        assert_eq!(format_pid("", "app:p", 3), "{app:p|0x00003}");
    }

    #[test]
    fn node_and_counter_agree_with_parse() {
        for s in ["{n1@app:p|0x0002a}", "{app:p|0x00002}", "{n@h|ns:x|0x0000a}", "{n@h}", "n@h|0x1", "{n@h|0xzz}"] {
            let parsed = Pid::parse(s).ok();
            assert_eq!(node_and_counter(s), parsed.as_ref().map(|p| (p.node.as_str(), p.counter)), "{s}");
        }
    }

    #[test]
    fn legacy_form_and_errors() {
        assert_eq!(Pid::parse("{n@h|ns:x|0x0000a}"), Ok(Pid::new("n", "h", 10)));
        assert_eq!(Pid::parse("n@h|0x1"), Err(PidError::MissingBraces));
        assert_eq!(Pid::parse("{n@h}"), Err(PidError::MissingPipe));
        assert_eq!(Pid::parse("{n@h|12}"), Err(PidError::BadCounter));
    }
}
