//! How an admin command fails, and the exit code each failure gets.
//!
//! The binary has no `thiserror` (it is a dependency of the libraries
//! only), so `Display` is written out; everything else travels as
//! `anyhow::Error` and is told apart by downcasting.

use std::fmt;

/// A failure the operator should see in these exact words.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The API answered with its error document; `message` is printed
    /// verbatim (`handshake failed: license mismatch`).
    Api {
        /// HTTP status.
        status: u16,
        /// The stable error code (`peer_not_found`), or `http_<status>`
        /// when the body was not an error document.
        code: String,
        /// What the node said.
        message: String,
    },
    /// The node itself could not be reached; nothing was sent.
    Unreachable {
        /// The node URL.
        url: String,
        /// `connection refused`, `timed out`, …
        reason: String,
    },
    /// The exchange broke after connecting (timeout, not HTTP, not JSON):
    /// the request may or may not have been acted on.
    Protocol {
        /// The node URL.
        url: String,
        /// What was wrong.
        message: String,
    },
    /// The command line or the CLI config cannot work (exit 2); nothing
    /// was sent.
    Usage(String),
    /// The operator answered no to a confirmation; nothing was sent.
    Aborted,
}

impl Failure {
    /// 2 for usage and config problems (as clap uses), 1 for the rest.
    pub(crate) fn exit_code(&self) -> i32 {
        match self {
            Failure::Usage(_) => 2,
            _ => 1,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Api { message, .. } => f.write_str(message),
            Failure::Unreachable { url, reason } => write!(f, "cannot reach {url}: {reason}"),
            Failure::Protocol { url, message } => write!(f, "{url}: {message}"),
            Failure::Usage(message) => f.write_str(message),
            Failure::Aborted => f.write_str("aborted"),
        }
    }
}

impl std::error::Error for Failure {}

/// The exit code for any error a command returned: typed failures say
/// theirs; anything else is a local problem (a file that cannot be read,
/// a bad config file) and counts as a usage error.
pub(crate) fn exit_code(e: &anyhow::Error) -> i32 {
    e.downcast_ref::<Failure>().map_or(2, Failure::exit_code)
}

/// A usage error as an `anyhow::Error`.
pub(crate) fn usage(message: impl Into<String>) -> anyhow::Error {
    Failure::Usage(message.into()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_messages_are_printed_verbatim() {
        let e = Failure::Api {
            status: 403,
            code: "license_mismatch".into(),
            message: "handshake failed: license mismatch".into(),
        };
        assert_eq!(e.to_string(), "handshake failed: license mismatch");
        assert_eq!(exit_code(&e.into()), 1);
    }

    #[test]
    fn exit_codes_split_local_from_remote() {
        assert_eq!(exit_code(&usage("no URL")), 2);
        assert_eq!(exit_code(&anyhow::anyhow!("reading x: not found")), 2);
        let unreachable = Failure::Unreachable { url: "http://h:1".into(), reason: "connection refused".into() };
        assert_eq!(unreachable.to_string(), "cannot reach http://h:1: connection refused");
        assert_eq!(exit_code(&anyhow::Error::from(unreachable).context("peers list")), 1);
        assert_eq!(exit_code(&Failure::Aborted.into()), 1);
    }
}
