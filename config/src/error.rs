//! The one error type of this crate and the [`Origin`] it points at.
//!
//! Every variant renders as a single line that starts with where the bad input came
//! from (`wippy.yaml:3:5`, `env WIPPY_CLUSTER__NAME`, `--set`), followed by the dotted
//! key path and a short reason. Loading never changes any state, so no variant has
//! side effects to undo: the caller simply refuses to start.

use std::fmt;
use std::path::PathBuf;

/// Shorthand for results whose error is a [`ConfigError`].
pub type Result<T, E = ConfigError> = std::result::Result<T, E>;

/// Where a configuration value (or key) was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// Not known: the value is a built-in default, or the [`crate::Config`] was built
    /// in code and checked with [`crate::Config::validate`]. Renders as nothing.
    Unknown,
    /// A YAML document: a file, or a string handed to [`crate::Config::from_yaml_str`].
    File {
        /// The name the document was loaded under (usually the path as given).
        name: String,
        /// 1-based line; 0 when the parser could not tell.
        line: u64,
        /// 1-based column; 0 when the parser could not tell.
        column: u64,
    },
    /// A `WIPPY_`-prefixed environment variable.
    Env {
        /// The variable's full name, e.g. `WIPPY_CLUSTER__NAME`.
        var: String,
    },
    /// A `--set key.path=value` argument.
    Set {
        /// The argument exactly as given.
        arg: String,
    },
}

impl Origin {
    /// Writes `"<origin>: "`, or nothing for [`Origin::Unknown`].
    fn write_prefix(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Unknown => Ok(()),
            other => write!(f, "{other}: "),
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Unknown => f.write_str("<default>"),
            Origin::File { name, line: 0, .. } => f.write_str(name),
            Origin::File { name, line, column: 0 } => write!(f, "{name}:{line}"),
            Origin::File { name, line, column } => write!(f, "{name}:{line}:{column}"),
            Origin::Env { var } => write!(f, "env {var}"),
            Origin::Set { .. } => f.write_str("--set"),
        }
    }
}

/// `origin: key.path: ` as one prefix, skipping the parts that are empty.
struct At<'a>(&'a Origin, &'a str);

impl fmt::Display for At<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.write_prefix(f)?;
        if !self.1.is_empty() {
            write!(f, "{}: ", self.1)?;
        }
        Ok(())
    }
}

/// Why a configuration could not be loaded. Displays as one line.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A file that was asked for by path could not be read (missing, unreadable, not
    /// UTF-8).
    #[error("{}: cannot read config file: {source}", path.display())]
    Read {
        /// The path as given.
        path: PathBuf,
        /// The I/O failure.
        #[source]
        source: std::io::Error,
    },
    /// The text is not well-formed YAML (also used for an override value that does not
    /// parse).
    #[error("{}{message}", At(origin, ""))]
    Syntax {
        /// Where the parser stopped.
        origin: Origin,
        /// The parser's complaint.
        message: String,
    },
    /// A `--set` argument or `WIPPY_` variable name that cannot name a key path.
    #[error("{}{message}", At(origin, ""))]
    Override {
        /// The argument or variable.
        origin: Origin,
        /// What is wrong with it.
        message: String,
    },
    /// A key that the schema does not have (typos are caught here).
    #[error("{}unknown key `{path}` (expected one of {})", At(origin, ""), list(expected))]
    UnknownKey {
        /// Where the key was written.
        origin: Origin,
        /// Full dotted path of the unknown key.
        path: String,
        /// The keys that are allowed at that level.
        expected: Vec<String>,
    },
    /// A value of the wrong type or shape (a string where a number goes, a bad
    /// duration, a port above 65535, an unknown enum word).
    #[error("{}{message}", At(origin, path))]
    Invalid {
        /// Where the value was written.
        origin: Origin,
        /// Dotted key path of the value.
        path: String,
        /// What is wrong with it.
        message: String,
    },
    /// A well-typed value that breaks a rule checked after parsing
    /// ([`crate::Config::validate`]), such as an even `max_voters`.
    #[error("{}{message}", At(origin, path))]
    Rule {
        /// Where the offending value was written ([`Origin::Unknown`] for a default).
        origin: Origin,
        /// Dotted key path of the offending value.
        path: String,
        /// The rule and the value that broke it.
        message: String,
    },
}

impl ConfigError {
    /// Where the bad input came from, when the error points at one.
    pub fn origin(&self) -> Option<&Origin> {
        match self {
            ConfigError::Read { .. } => None,
            ConfigError::Syntax { origin, .. }
            | ConfigError::Override { origin, .. }
            | ConfigError::UnknownKey { origin, .. }
            | ConfigError::Invalid { origin, .. }
            | ConfigError::Rule { origin, .. } => Some(origin),
        }
    }

    /// The dotted key path the error is about, when there is one.
    pub fn key_path(&self) -> Option<&str> {
        match self {
            ConfigError::UnknownKey { path, .. }
            | ConfigError::Invalid { path, .. }
            | ConfigError::Rule { path, .. } => Some(path),
            _ => None,
        }
    }
}

/// "`a`, `b`, `c`" for the list of allowed keys.
fn list(items: &[String]) -> String {
    if items.is_empty() {
        return "nothing (this key takes no children)".to_owned();
    }
    let quoted: Vec<String> = items.iter().map(|k| format!("`{k}`")).collect();
    quoted.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(line: u64, column: u64) -> Origin {
        Origin::File { name: "wippy.yaml".into(), line, column }
    }

    #[test]
    fn rule_error_is_one_line_with_location_and_path() {
        let err = ConfigError::Rule {
            origin: file(3, 5),
            path: "cluster.raft.max_voters".into(),
            message: "must be odd (got 4)".into(),
        };
        assert_eq!(err.to_string(), "wippy.yaml:3:5: cluster.raft.max_voters: must be odd (got 4)");
    }

    #[test]
    fn unknown_origin_and_empty_path_are_omitted() {
        let err = ConfigError::Invalid { origin: Origin::Unknown, path: String::new(), message: "bad".into() };
        assert_eq!(err.to_string(), "bad");
    }

    #[test]
    fn origins_render_their_source() {
        assert_eq!(file(0, 0).to_string(), "wippy.yaml");
        assert_eq!(file(7, 0).to_string(), "wippy.yaml:7");
        let env = Origin::Env { var: "WIPPY_CLUSTER__NAME".into() };
        assert_eq!(env.to_string(), "env WIPPY_CLUSTER__NAME");
        let set = Origin::Set { arg: "a.b=1".into() };
        assert_eq!(set.to_string(), "--set");
    }

    #[test]
    fn unknown_key_lists_the_alternatives() {
        let err = ConfigError::UnknownKey {
            origin: file(2, 3),
            path: "cluster.membershp".into(),
            expected: vec!["enabled".into(), "membership".into()],
        };
        assert_eq!(
            err.to_string(),
            "wippy.yaml:2:3: unknown key `cluster.membershp` (expected one of `enabled`, `membership`)"
        );
    }
}
