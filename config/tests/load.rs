//! Loading through the public API: layering, and the one-line error for each kind of
//! mistake (file position or override source, key path, reason).

use std::path::PathBuf;

use wippy_config::{AddrList, Config, ConfigError, Duration, LogEncoding, Origin, RaftRole};

/// No environment.
fn no_env() -> Vec<(String, String)> {
    Vec::new()
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

fn sets(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| (*s).to_owned()).collect()
}

/// The error `text` produces when loaded as `wippy.yaml`, as displayed.
fn yaml_error(text: &str) -> String {
    match Config::from_yaml_str(text, "wippy.yaml") {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(e) => e.to_string(),
    }
}

/// A `wippy.yaml` in a fresh temp directory, removed again on drop.
struct TempFile {
    dir: PathBuf,
    path: PathBuf,
}

impl TempFile {
    fn new(test: &str, text: &str) -> TempFile {
        let dir = std::env::temp_dir().join(format!("wippy-config-{}-{test}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        let path = dir.join("wippy.yaml");
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
        TempFile { dir, path }
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn no_file_no_overrides_gives_defaults() {
    let config = Config::load(None, &[], no_env()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config, Config::default());
}

#[test]
fn empty_document_and_empty_sections_give_defaults() {
    for text in ["", "# nothing\n", "cluster:\nadmin:\n", "cluster:\n  raft:\n"] {
        let config = Config::from_yaml_str(text, "wippy.yaml").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config, Config::default(), "{text:?}");
    }
}

#[test]
fn file_values_are_typed() {
    let text = "\
scheduler:
  workers: 4
  memory_limit: 64MiB
  time_slice: 250us
logger:
  encoding: json
cluster:
  enabled: true
  membership:
    join_addrs: \"node-1:7946, node-2:7946\"
  raft:
    role: client
    snapshot_interval: 1m30s
";
    let c = Config::from_yaml_str(text, "wippy.yaml").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.scheduler.workers, 4);
    assert_eq!(c.scheduler.memory_limit.bytes(), 64 << 20);
    assert_eq!(c.scheduler.time_slice, Duration::from_micros(250));
    assert_eq!(c.logger.encoding, LogEncoding::Json);
    assert_eq!(c.cluster.membership.join_addrs, AddrList(vec!["node-1:7946".into(), "node-2:7946".into()]));
    assert_eq!(c.cluster.raft.role, RaftRole::Client);
    assert_eq!(c.cluster.raft.snapshot_interval, Duration::from_secs(90));
}

#[test]
fn join_addrs_also_accepts_a_list() {
    let text = "cluster:\n  membership:\n    join_addrs: [\"a:1\", \"b:2\"]\n";
    let c = Config::from_yaml_str(text, "wippy.yaml").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.cluster.membership.join_addrs.to_string(), "a:1,b:2");
}

#[test]
fn precedence_is_defaults_file_env_set() {
    let file = TempFile::new(
        "precedence",
        "cluster:\n  name: from-file\n  failure_domain: zone-file\nscheduler:\n  workers: 2\n",
    );
    let vars = env(&[
        ("WIPPY_CLUSTER__NAME", "from-env"),
        ("WIPPY_SCHEDULER__WORKERS", "3"),
        ("WIPPY_NODE_ID", "not-a-config-key"),
        ("PATH", "/usr/bin"),
    ]);
    let args = sets(&["scheduler.workers=5", "cluster.raft.eligible=false", "admin.enabled=true"]);
    let c = Config::load(Some(&file.path), &args, vars).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.cluster.failure_domain, "zone-file", "file beats default");
    assert_eq!(c.cluster.name.as_deref(), Some("from-env"), "env beats file");
    assert_eq!(c.scheduler.workers, 5, "--set beats env");
    assert!(!c.cluster.raft.eligible);
    assert_eq!(c.cluster.membership.bind_port, 7946, "untouched keys keep defaults");
}

#[test]
fn overrides_parse_values_as_yaml() {
    let args = sets(&[
        "cluster.enabled=true",
        "cluster.raft.max_voters=3",
        "cluster.raft.heartbeat_timeout=\"5s\"",
        "cluster.raft.election_timeout=5s",
        "cluster.membership.join_addrs=a:1,b:2",
        "scheduler.memory_limit=512MB",
        "admin.token=",
    ]);
    let c = Config::load(None, &args, no_env()).unwrap_or_else(|e| panic!("{e}"));
    assert!(c.cluster.enabled);
    assert_eq!(c.cluster.raft.max_voters, 3);
    assert_eq!(c.cluster.raft.heartbeat_timeout, Duration::from_secs(5));
    assert_eq!(c.cluster.membership.join_addrs.to_string(), "a:1,b:2");
    assert_eq!(c.scheduler.memory_limit.bytes(), 512_000_000);
    assert_eq!(c.admin.token, None, "an empty value is null");
}

#[test]
fn later_set_wins() {
    let args = sets(&["scheduler.workers=2", "scheduler.workers=7"]);
    let c = Config::load(None, &args, no_env()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.scheduler.workers, 7);
}

#[test]
fn missing_explicit_file_names_the_path() {
    let path = std::env::temp_dir().join("wippy-config-no-such-dir/wippy.yaml");
    let err = Config::load(Some(&path), &[], no_env()).err();
    assert!(matches!(err, Some(ConfigError::Read { .. })));
    let text = err.map(|e| e.to_string()).unwrap_or_default();
    assert!(text.starts_with(&format!("{}: cannot read config file", path.display())), "{text}");
}

#[test]
fn error_yaml_syntax() {
    assert_eq!(yaml_error("cluster:\n  enabled: [true\n"), "wippy.yaml:2:12: unclosed bracket '['");
}

#[test]
fn error_unknown_nested_key() {
    let text = yaml_error("cluster:\n  membershp:\n    bind_port: 1\n");
    assert!(
        text.starts_with("wippy.yaml:2:3: unknown key `cluster.membershp` (expected one of `enabled`, `name`,"),
        "{text}"
    );
    assert!(text.contains("`membership`"), "{text}");
    let deep = yaml_error("cluster:\n  raft:\n    max_voter: 3\n");
    assert!(deep.starts_with("wippy.yaml:3:5: unknown key `cluster.raft.max_voter`"), "{deep}");
}

#[test]
fn error_wrong_type() {
    assert_eq!(
        yaml_error("scheduler:\n  workers: many\n"),
        "wippy.yaml:2:12: scheduler.workers: invalid type: string \"many\", expected usize"
    );
    let section = yaml_error("cluster: yes please\n");
    assert!(section.starts_with("wippy.yaml:1:10: cluster: invalid type: string"), "{section}");
    let role = yaml_error("cluster:\n  raft:\n    role: leader\n");
    assert!(role.starts_with("wippy.yaml:3:11: cluster.raft.role: unknown variant `leader`"), "{role}");
}

#[test]
fn error_even_max_voters() {
    assert_eq!(
        yaml_error("cluster:\n  raft:\n    max_voters: 4\n"),
        "wippy.yaml:3:17: cluster.raft.max_voters: must be odd so a majority is well defined (got 4)"
    );
}

#[test]
fn error_port_out_of_range() {
    let text = yaml_error("cluster:\n  membership:\n    bind_port: 70000\n");
    assert_eq!(
        text,
        "wippy.yaml:3:16: cluster.membership.bind_port: invalid value: integer `70000`, \
         expected a port number between 0 and 65535"
    );
    let zero = yaml_error("cluster:\n  membership:\n    bind_port: 0\n");
    assert!(zero.starts_with("wippy.yaml:3:16: cluster.membership.bind_port: must be between 1 and 65535"));
    assert!(Config::from_yaml_str("cluster:\n  internode:\n    bind_port: 0\n", "w").is_ok());
}

#[test]
fn error_bad_duration() {
    assert_eq!(
        yaml_error("scheduler:\n  time_slice: 5 parsecs\n"),
        "wippy.yaml:2:15: scheduler.time_slice: invalid duration \"5 parsecs\": \
         unknown unit (use ns, us, ms, s, m or h)"
    );
}

#[test]
fn error_set_without_equals() {
    let err = Config::load(None, &sets(&["cluster.raft.max_voters"]), no_env()).err();
    assert!(matches!(err, Some(ConfigError::Override { origin: Origin::Set { .. }, .. })));
    assert_eq!(
        err.map(|e| e.to_string()).unwrap_or_default(),
        "--set: \"cluster.raft.max_voters\": missing `=` (expected key.path=value)"
    );
}

#[test]
fn error_set_value_breaks_a_rule() {
    let err = Config::load(None, &sets(&["cluster.raft.max_voters=2"]), no_env()).err();
    let text = err.map(|e| e.to_string()).unwrap_or_default();
    assert_eq!(text, "--set: cluster.raft.max_voters: must be odd so a majority is well defined (got 2)");
}

#[test]
fn error_bad_env_value() {
    let vars = env(&[("WIPPY_SCHEDULER__WORKERS", "lots")]);
    let err = Config::load(None, &[], vars).err();
    assert_eq!(err.as_ref().and_then(ConfigError::key_path), Some("scheduler.workers"));
    assert_eq!(
        err.map(|e| e.to_string()).unwrap_or_default(),
        "env WIPPY_SCHEDULER__WORKERS: scheduler.workers: invalid type: string \"lots\", expected usize"
    );
    let vars = env(&[("WIPPY_CLUSTER__NAME", "\"unclosed")]);
    let text = Config::load(None, &[], vars).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(text.starts_with("env WIPPY_CLUSTER__NAME: value \"\\\"unclosed\" is not valid YAML"), "{text}");
}

#[test]
fn error_unknown_key_from_env() {
    let vars = env(&[("WIPPY_CLUSTER__NAMEE", "n1")]);
    let text = Config::load(None, &[], vars).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(text.starts_with("env WIPPY_CLUSTER__NAMEE: unknown key `cluster.namee`"), "{text}");
}

#[test]
fn rule_errors_point_into_the_file() {
    let file = TempFile::new("rule", "cluster:\n  membership:\n    join_addrs: \"a:1,b\"\n");
    let err = Config::load(Some(&file.path), &[], no_env()).err();
    let text = err.map(|e| e.to_string()).unwrap_or_default();
    let want = format!("{}:3:17: cluster.membership.join_addrs: \"b\" is not host:port", file.path.display());
    assert!(text.starts_with(&want), "{text}");
}

#[test]
fn error_duplicate_key_and_multiple_documents() {
    assert_eq!(
        yaml_error("admin:\n  enabled: true\n  enabled: false\n"),
        "wippy.yaml:3:3: duplicate mapping key `enabled` is not allowed here"
    );
    let docs = yaml_error("admin: {}\n---\nlogger: {}\n");
    assert!(docs.starts_with("wippy.yaml:3:1: only single YAML document expected"), "{docs}");
}
