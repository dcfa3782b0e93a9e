//! `node:`: who this node is and where it keeps its files.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The `node:` section.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, expecting = "a mapping of node settings")]
pub struct NodeConfig {
    /// The node's one identity: it appears in every PID, in gossip and as the Raft
    /// server id. Unset means: `cluster.name` if that is set, else the host name, else
    /// `"wippy"`. See [`crate::Config::node_name`].
    pub name: Option<String>,
    /// Directory for the node's own files (Raft log, durable stores). Kept as written;
    /// a leading `~` is expanded by [`NodeConfig::data_dir_path`].
    pub data_dir: String,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig { name: None, data_dir: "~/.wippy".to_owned() }
    }
}

impl NodeConfig {
    /// Name used when neither the config nor the OS provides one.
    pub const FALLBACK_NAME: &str = "wippy";

    /// `data_dir` with a leading `~` replaced by `home`. `None` when the path needs a
    /// home directory and there is none, which the node treats as "run diskless".
    pub fn data_dir_path(&self, home: Option<&Path>) -> Option<PathBuf> {
        expand_home(&self.data_dir, home)
    }
}

/// Replaces a leading `~` (alone or followed by `/`) with `home`. Other paths are
/// returned unchanged; `~user` forms are not supported and stay literal.
pub fn expand_home(path: &str, home: Option<&Path>) -> Option<PathBuf> {
    match path.strip_prefix('~') {
        Some("") => home.map(Path::to_path_buf),
        Some(rest) if rest.starts_with('/') => home.map(|h| h.join(rest.trim_start_matches('/'))),
        _ => Some(PathBuf::from(path)),
    }
}

/// The host name from the OS, if one can be read cheaply: `/proc/sys/kernel/hostname`
/// on Linux, else the `HOSTNAME` variable.
pub(crate) fn os_hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tilde_expands_against_home() {
        let home = Path::new("/home/ada");
        assert_eq!(expand_home("~/.wippy", Some(home)), Some(PathBuf::from("/home/ada/.wippy")));
        assert_eq!(expand_home("~", Some(home)), Some(home.to_path_buf()));
        assert_eq!(expand_home("~/.wippy", None), None);
        assert_eq!(expand_home("/var/lib/wippy", None), Some(PathBuf::from("/var/lib/wippy")));
        assert_eq!(expand_home("~bob/x", None), Some(PathBuf::from("~bob/x")));
    }

    #[test]
    fn default_data_dir_is_under_home() {
        let node = NodeConfig::default();
        assert_eq!(node.data_dir_path(Some(Path::new("/h"))), Some(PathBuf::from("/h/.wippy")));
    }
}
