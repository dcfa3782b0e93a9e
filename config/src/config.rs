//! [`Config`]: the whole `wippy.yaml`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::node::{expand_home, os_hostname};
use crate::{AdminConfig, ClusterConfig, LoggerConfig, NodeConfig, PrometheusConfig, SchedulerConfig};

/// A node's whole configuration. Every section and key has a default, so an empty or
/// missing file is a valid single-node setup. Build one with [`Config::load`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, expecting = "a mapping of wippy settings")]
pub struct Config {
    /// Identity and data directory.
    pub node: NodeConfig,
    /// The Lua worker pool.
    pub scheduler: SchedulerConfig,
    /// Log output.
    pub logger: LoggerConfig,
    /// The admin HTTP server.
    pub admin: AdminConfig,
    /// The optional metrics-only listener.
    pub prometheus: PrometheusConfig,
    /// Clustering.
    pub cluster: ClusterConfig,
}

impl Config {
    /// The node's single identity, used for PIDs, gossip and Raft alike: `node.name`,
    /// else `cluster.name`, else the OS host name, else `"wippy"`. Validation makes
    /// sure the two name keys do not disagree.
    pub fn node_name(&self) -> String {
        self.node
            .name
            .clone()
            .or_else(|| self.cluster.name.clone())
            .or_else(os_hostname)
            .unwrap_or_else(|| NodeConfig::FALLBACK_NAME.to_owned())
    }

    /// Directory for Raft and durable stores: `cluster.raft.data_dir`, else
    /// `<node.data_dir>/store`, with `~` expanded against `home`. `None` means no
    /// directory resolves (a `~` path without a home): the node runs diskless.
    pub fn raft_data_dir(&self, home: Option<&Path>) -> Option<PathBuf> {
        match &self.cluster.raft.data_dir {
            Some(dir) => expand_home(dir, home),
            None => self.node.data_dir_path(home).map(|d| d.join("store")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::{Node, Value};

    const EXAMPLE: &str = include_str!("../../wippy.yaml.example");

    #[test]
    fn example_file_equals_the_defaults() {
        let parsed = Config::from_yaml_str(EXAMPLE, "wippy.yaml.example").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(parsed, Config::default());
    }

    /// Every dotted key path in a YAML document, in document order.
    fn key_paths(text: &str) -> Vec<String> {
        fn walk(node: &Node, prefix: &str, out: &mut Vec<String>) {
            if let Value::Map(entries) = &node.value {
                for entry in entries {
                    let path = if prefix.is_empty() { entry.key.clone() } else { format!("{prefix}.{}", entry.key) };
                    out.push(path.clone());
                    walk(&entry.node, &path, out);
                }
            }
        }
        let tree = Node::parse(text, &|_| crate::Origin::Unknown).unwrap_or_else(|e| panic!("{e}"));
        let mut out = Vec::new();
        walk(&tree, "", &mut out);
        out.sort();
        out
    }

    #[test]
    fn example_file_lists_every_key() {
        // Serializing the defaults yields every key exactly once.
        let dumped = serde_saphyr::to_string(&Config::default()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(key_paths(EXAMPLE), key_paths(&dumped));
    }

    #[test]
    fn serialized_defaults_load_back_unchanged() {
        let dumped = serde_saphyr::to_string(&Config::default()).unwrap_or_else(|e| panic!("{e}"));
        let back = Config::from_yaml_str(&dumped, "dump").unwrap_or_else(|e| panic!("{e}\n{dumped}"));
        assert_eq!(back, Config::default());
    }

    #[test]
    fn node_name_prefers_node_then_cluster() {
        let mut c = Config::default();
        assert!(!c.node_name().is_empty());
        c.cluster.name = Some("gossip-name".into());
        assert_eq!(c.node_name(), "gossip-name");
        c.node.name = Some("n1".into());
        assert_eq!(c.node_name(), "n1");
    }

    #[test]
    fn raft_dir_defaults_under_node_data_dir() {
        let mut c = Config::default();
        let home = Some(Path::new("/h"));
        assert_eq!(c.raft_data_dir(home), Some(PathBuf::from("/h/.wippy/store")));
        assert_eq!(c.raft_data_dir(None), None);
        c.cluster.raft.data_dir = Some("/srv/raft".into());
        assert_eq!(c.raft_data_dir(None), Some(PathBuf::from("/srv/raft")));
    }
}
