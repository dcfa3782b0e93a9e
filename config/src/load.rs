//! Building a [`Config`] from its layers: defaults, file, environment, `--set`.

use std::path::Path;

use crate::tree::Node;
use crate::{Config, ConfigError, Origin, Result, de};

/// Prefix of environment variables that override config keys.
pub const ENV_PREFIX: &str = "WIPPY_";

/// Separator between path segments in an environment variable name.
const ENV_SEPARATOR: &str = "__";

impl Config {
    /// Loads the configuration in layers, each overriding the one before:
    ///
    /// 1. built-in defaults;
    /// 2. the YAML file at `path`, if one is given (a given path that cannot be read is
    ///    an error; the caller decides which path to pass, e.g. `wippy.yaml` in the
    ///    app folder when it exists);
    /// 3. `env`: every `WIPPY_A__B__C=value` pair, read as key `a.b.c` (segments
    ///    split on `__` and lowercased). Variables without `__` are not config keys and
    ///    are ignored, so names such as `WIPPY_NODE_ID` can coexist. Applied in name
    ///    order;
    /// 4. `sets`: `key.path=value` arguments, applied in order (a later one wins).
    ///
    /// Override values are read as YAML, so `true`, `3`, `5s` and `"a,b"` mean what
    /// they would in the file. The result is then checked with [`Config::validate`].
    /// Every error names the layer and key it comes from.
    pub fn load(
        path: Option<&Path>,
        sets: &[String],
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config> {
        let mut tree = match path {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
                parse_document(&text, &path.display().to_string())?
            }
            None => Node::empty_map(),
        };
        let mut vars: Vec<(String, String)> = env.into_iter().collect();
        vars.sort();
        for (var, value) in vars {
            if let Some(segments) = env_path(&var)? {
                let origin = Origin::Env { var };
                tree.set(&segments, parse_value(&value, origin)?);
            }
        }
        for arg in sets {
            let (segments, value) = split_set(arg)?;
            let origin = Origin::Set { arg: arg.clone() };
            tree.set(&segments, parse_value(value, origin)?);
        }
        finish(&tree)
    }

    /// Parses one YAML document (no environment, no `--set`) and validates it.
    /// `source_name` is used in error messages in place of a file name.
    pub fn from_yaml_str(text: &str, source_name: &str) -> Result<Config> {
        finish(&parse_document(text, source_name)?)
    }
}

fn parse_document(text: &str, name: &str) -> Result<Node> {
    Node::parse(text, &|at| Origin::File { name: name.to_owned(), line: at.line(), column: at.column() })
}

/// Typed structs from the merged tree, then the rules; both report origins.
fn finish(tree: &Node) -> Result<Config> {
    let config: Config = de::from_tree(tree)?;
    config.check().map_err(|issue| {
        let origin = tree.origin_at(issue.path).cloned().unwrap_or(Origin::Unknown);
        issue.into_error(origin)
    })?;
    Ok(config)
}

/// An override value read as a one-line YAML document.
fn parse_value(text: &str, origin: Origin) -> Result<Node> {
    let place = |_| origin.clone();
    Node::parse(text, &place).map_err(|err| match err {
        ConfigError::Syntax { message, .. } => ConfigError::Syntax {
            origin: origin.clone(),
            message: format!("value {text:?} is not valid YAML: {message}"),
        },
        other => other,
    })
}

/// The key path named by an environment variable, or `None` if it is not an override.
fn env_path(var: &str) -> Result<Option<Vec<String>>> {
    let Some(rest) = var.strip_prefix(ENV_PREFIX) else {
        return Ok(None);
    };
    if !rest.contains(ENV_SEPARATOR) {
        return Ok(None);
    }
    let segments: Vec<String> = rest.split(ENV_SEPARATOR).map(str::to_ascii_lowercase).collect();
    if segments.iter().any(String::is_empty) {
        return Err(ConfigError::Override {
            origin: Origin::Env { var: var.to_owned() },
            message: format!("empty key segment in the name (write {ENV_PREFIX}SECTION__KEY)"),
        });
    }
    Ok(Some(segments))
}

/// Splits `key.path=value` into path segments and the raw value.
fn split_set(arg: &str) -> Result<(Vec<String>, &str)> {
    let fail = |why: &str| ConfigError::Override {
        origin: Origin::Set { arg: arg.to_owned() },
        message: format!("{arg:?}: {why} (expected key.path=value)"),
    };
    let (key, value) = arg.split_once('=').ok_or_else(|| fail("missing `=`"))?;
    let segments: Vec<String> = key.trim().split('.').map(str::to_owned).collect();
    if segments.iter().any(|s| s.is_empty() || s.contains(char::is_whitespace)) {
        return Err(fail("empty or malformed key path"));
    }
    Ok((segments, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_names_map_to_lowercase_paths() {
        let path = env_path("WIPPY_CLUSTER__RAFT__MAX_VOTERS").ok().flatten();
        assert_eq!(path, Some(vec!["cluster".into(), "raft".into(), "max_voters".into()]));
        assert!(matches!(env_path("WIPPY_NODE_ID"), Ok(None)));
        assert!(matches!(env_path("HOME"), Ok(None)));
        assert!(env_path("WIPPY_CLUSTER____NAME").is_err());
    }

    #[test]
    fn set_args_split_on_the_first_equals() {
        let (path, value) = split_set("cluster.membership.secret_key=abc==").unwrap_or_default();
        assert_eq!(path, vec!["cluster".to_owned(), "membership".into(), "secret_key".into()]);
        assert_eq!(value, "abc==");
        assert!(split_set("cluster..name=x").is_err());
        assert!(split_set("=x").is_err());
    }
}
