//! The CLI's own config file: named contexts, one per node, with the
//! cluster credential to log in with.
//!
//! It holds client secrets, so it is written readable by its owner only,
//! through a temporary file and a rename: an interrupted write leaves the
//! old file, never half a file.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use serde::{Deserialize, Serialize};

use super::url::BaseUrl;

/// `{"current": "name", "contexts": {"name": {...}}}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CliConfig {
    /// The context commands use without `--context`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) current: Option<String>,
    /// Contexts by name.
    #[serde(default)]
    pub(crate) contexts: BTreeMap<String, Context>,
}

/// One node and how to log in to it. Empty strings mean "not known".
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Context {
    /// The node's admin API, `http://host:port`.
    pub(crate) url: String,
    /// The cluster credential's client id.
    #[serde(default)]
    pub(crate) client_id: String,
    /// The cluster credential's secret.
    #[serde(default)]
    pub(crate) client_secret: String,
    /// The node's peer id, so `config delete-peer` can find the contexts
    /// of a node that has left the cluster.
    #[serde(default)]
    pub(crate) peer_id: String,
}

impl Context {
    /// Whether this context names the node at `url` (a saved URL may be
    /// typed differently, e.g. without `http://`).
    pub(crate) fn is_at(&self, url: &BaseUrl) -> bool {
        BaseUrl::parse(&self.url).is_ok_and(|u| &u == url)
    }
}

impl CliConfig {
    /// `--config`, else `$WIPPY_CLI_CONFIG`, else `~/.config/wippy/cli.json`.
    pub(crate) fn default_path(
        flag: Option<&Path>,
        env: Option<std::ffi::OsString>,
        home: Option<std::ffi::OsString>,
    ) -> Option<PathBuf> {
        if let Some(p) = flag {
            return Some(p.to_path_buf());
        }
        if let Some(p) = env.filter(|p| !p.is_empty()) {
            return Some(PathBuf::from(p));
        }
        home.filter(|h| !h.is_empty()).map(|h| PathBuf::from(h).join(".config").join("wippy").join("cli.json"))
    }

    /// Reads the file; a missing file is an empty config.
    pub(crate) fn load(path: &Path) -> Result<CliConfig> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(CliConfig::default()),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        serde_json::from_str(&text).with_context(|| format!("{}: not a wippy CLI config", path.display()))
    }

    /// Writes the file (mode 0600) atomically, creating its folder.
    pub(crate) fn save(&self, path: &Path) -> Result<()> {
        use std::os::unix::fs::OpenOptionsExt;
        let text = serde_json::to_string_pretty(self).expect("a CLI config always serializes") + "\n";
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("cli.json");
        let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
        let write = || -> std::io::Result<()> {
            // A stale temp file could have other permissions; start afresh.
            let _ = std::fs::remove_file(&tmp);
            let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
            std::fs::rename(&tmp, path)
        };
        write().inspect_err(|_| drop(std::fs::remove_file(&tmp))).with_context(|| format!("writing {}", path.display()))
    }

    /// Removes every context whose peer id or name is `key`; returns their
    /// names. The current context is unset when it goes.
    pub(crate) fn delete_peer(&mut self, key: &str) -> Vec<String> {
        let gone: Vec<String> = self
            .contexts
            .iter()
            .filter(|(name, ctx)| name.as_str() == key || (!ctx.peer_id.is_empty() && ctx.peer_id == key))
            .map(|(name, _)| name.clone())
            .collect();
        for name in &gone {
            self.contexts.remove(name);
        }
        if self.current.as_ref().is_some_and(|c| gone.contains(c)) {
            self.current = None;
        }
        gone
    }

    /// The names of the contexts saved for `peer_id`.
    pub(crate) fn contexts_of_peer(&self, peer_id: &str) -> Vec<&str> {
        self.contexts.iter().filter(|(_, c)| c.peer_id == peer_id).map(|(n, _)| n.as_str()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(url: &str, peer: &str) -> Context {
        Context { url: url.into(), peer_id: peer.into(), ..Context::default() }
    }

    #[test]
    fn the_file_round_trips_privately() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("wippy-cli-config-{}", std::process::id()));
        let path = dir.join("nested").join("cli.json");
        assert_eq!(CliConfig::load(&path).unwrap(), CliConfig::default());
        let mut cfg = CliConfig { current: Some("a".into()), ..CliConfig::default() };
        let a = Context { client_id: "c1".into(), client_secret: "s1".into(), ..ctx("http://h:1", "p1") };
        cfg.contexts.insert("a".into(), a);
        cfg.save(&path).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(CliConfig::load(&path).unwrap(), cfg);
        // A hand-written file may leave fields out.
        std::fs::write(&path, r#"{"contexts":{"b":{"url":"http://h:2"}}}"#).unwrap();
        let back = CliConfig::load(&path).unwrap();
        assert_eq!((back.current, back.contexts["b"].clone()), (None, ctx("http://h:2", "")));
        std::fs::write(&path, "not json").unwrap();
        assert!(format!("{:#}", CliConfig::load(&path).unwrap_err()).contains("not a wippy CLI config"));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn delete_peer_matches_peer_ids_and_names() {
        let mut cfg = CliConfig { current: Some("n2".into()), ..CliConfig::default() };
        cfg.contexts.insert("n1".into(), ctx("http://a:1", "p1"));
        cfg.contexts.insert("n2".into(), ctx("http://b:1", "p2"));
        cfg.contexts.insert("n2-again".into(), ctx("http://b:2", "p2"));
        cfg.contexts.insert("p1".into(), ctx("http://c:1", ""));
        assert_eq!(cfg.contexts_of_peer("p2"), ["n2", "n2-again"]);
        assert!(cfg.contexts["n1"].is_at(&BaseUrl::parse("http://a:1/").unwrap()));
        assert!(!cfg.contexts["n1"].is_at(&BaseUrl::parse("a:2").unwrap()));
        assert_eq!(cfg.delete_peer("p2"), ["n2", "n2-again"]);
        assert_eq!(cfg.current, None);
        assert_eq!(cfg.delete_peer("p1"), ["n1", "p1"]);
        assert!(cfg.delete_peer("").is_empty(), "an empty key matches no unknown peer id");
        assert!(cfg.delete_peer("nope").is_empty());
        assert!(cfg.contexts.is_empty());
    }

    #[test]
    fn the_path_comes_from_flag_env_or_home() {
        let flag = Path::new("/x/cli.json");
        assert_eq!(CliConfig::default_path(Some(flag), Some("/e".into()), None).unwrap(), flag);
        assert_eq!(CliConfig::default_path(None, Some("/e".into()), Some("/h".into())).unwrap(), Path::new("/e"));
        let home = CliConfig::default_path(None, Some("".into()), Some("/h".into())).unwrap();
        assert_eq!(home, Path::new("/h/.config/wippy/cli.json"));
        assert_eq!(CliConfig::default_path(None, None, None), None);
    }
}
