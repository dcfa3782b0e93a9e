//! Typed `wippy.yaml` for a wippy node: defaults, layered overrides and validation.
//!
//! A node's settings are plain structs ([`Config`] and one struct per section) in
//! which every key has a default, so no file at all still yields a working
//! single-node setup. [`Config::load`] builds one from four layers, later layers
//! winning key by key:
//!
//! ```text
//! defaults  <  wippy.yaml  <  WIPPY_SECTION__KEY=value  <  --set section.key=value
//! ```
//!
//! How it works: the file is parsed into a small YAML tree whose nodes remember where
//! they were written ([`Origin`]); each environment variable and `--set` argument is
//! parsed as a YAML value and merged into that tree at its key path; the merged tree is
//! deserialized into the structs (unknown keys are errors everywhere); finally
//! [`Config::validate`] checks ranges and relations between keys. Because origins
//! travel with the tree, any failure comes back as a one-line [`ConfigError`] such as
//! `wippy.yaml:3:5: cluster.raft.max_voters: must be odd ... (got 4)`, or with
//! `env WIPPY_...` / `--set` in place of the file position.
//!
//! ```
//! use wippy_config::Config;
//!
//! // What a binary passes: the app's wippy.yaml (None here), its --set flags and the
//! // process environment. Variables without `__` after `WIPPY_` are not keys.
//! let sets = ["cluster.raft.max_voters=3".to_owned()];
//! let env = [
//!     ("WIPPY_CLUSTER__ENABLED".to_owned(), "true".to_owned()),
//!     ("WIPPY_NODE_ID".to_owned(), "ignored".to_owned()),
//! ];
//! let config = Config::load(None, &sets, env)?;
//! assert!(config.cluster.enabled);
//! assert_eq!(config.cluster.raft.max_voters, 3);
//!
//! let err = Config::load(None, &["cluster.raft.max_voters=4".to_owned()], [])
//!     .err()
//!     .map(|e| e.to_string());
//! assert_eq!(
//!     err.as_deref(),
//!     Some("--set: cluster.raft.max_voters: must be odd so a majority is well defined (got 4)")
//! );
//! # Ok::<(), wippy_config::ConfigError>(())
//! ```
//!
//! Value types shared by many keys: [`Duration`] (milliseconds or `"250ms"`, `"1m30s"`),
//! [`ByteSize`] (bytes or `"64MiB"`), [`AddrList`] (comma-separated `host:port`).
//!
//! `wippy.yaml.example` at the repository root lists every key with its default;
//! a test keeps it equal to [`Config::default`].
//!
//! This crate does no I/O beyond reading the one file it is given (and, for the
//! default node name, the OS host name); it starts nothing.

#![deny(missing_docs)]

mod addr;
mod base64;
mod bytesize;
mod cluster;
mod config;
mod de;
mod duration;
mod error;
mod load;
mod node;
mod observe;
mod scheduler;
mod tree;
mod validate;

pub use crate::addr::AddrList;
pub use crate::base64::{Base64Error, SECRET_KEY_LEN, decode_secret_key};
pub use crate::bytesize::{ByteSize, ParseByteSizeError};
pub use crate::cluster::{ClusterConfig, InternodeConfig, MembershipConfig, RaftConfig, RaftRole, RegistryBackend};
pub use crate::config::Config;
pub use crate::duration::{Duration, ParseDurationError};
pub use crate::error::{ConfigError, Origin, Result};
pub use crate::load::ENV_PREFIX;
pub use crate::node::{NodeConfig, expand_home};
pub use crate::observe::{AdminConfig, LogEncoding, LoggerConfig, PrometheusConfig};
pub use crate::scheduler::SchedulerConfig;
