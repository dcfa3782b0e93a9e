//! The `wippy` command line. Parsing and wiring only; the engine lives in
//! `wippy-runtime`.

mod cli;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use wippy_config::{Config, LogEncoding};
use wippy_runtime::{AccessOptions, AdminOptions, App, ClusterOptions, Node, NodeOptions, RaftOptions};

/// Lua allocates and frees small blocks at a high rate (messages, records,
/// coroutine stacks); mimalloc serves that pattern markedly faster than the
/// system allocator (see docs/decisions/0004-dependencies.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "wippy", version, about = "Run a node of Lua processes")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run an app folder (default: the current folder) or a single Lua file.
    Run {
        /// App folder (with src/_index.yaml) or FILE.lua.
        target: Option<PathBuf>,
        /// Config file (default: wippy.yaml in the app folder, when present).
        #[arg(long, short = 'c')]
        config: Option<PathBuf>,
        /// Override a config key: --set scheduler.workers=4 (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
    },
    /// Check an app folder or Lua file without running it.
    Check {
        /// App folder or FILE.lua.
        target: Option<PathBuf>,
        /// Config file (default: wippy.yaml in the app folder, when present).
        #[arg(long, short = 'c')]
        config: Option<PathBuf>,
        /// Override a config key (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
    },
    #[command(flatten)]
    Admin(cli::Admin),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run { target, config, sets } => run(target, config, sets),
        Command::Check { target, config, sets } => check(target, config, sets),
        Command::Admin(cmd) => cli::run(cmd),
    };
    match result {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(e) => {
            eprintln!("wippy: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn load_app(target: &Path) -> Result<App> {
    let app = if target.extension().is_some_and(|e| e == "lua") {
        wippy_runtime::app::load_script(target)?
    } else {
        wippy_runtime::app::load_dir(target)?
    };
    Ok(app)
}

fn check(target: Option<PathBuf>, config: Option<PathBuf>, sets: Vec<String>) -> Result<i32> {
    let target = target.unwrap_or_else(|| PathBuf::from("."));
    load_config(&target, config, &sets)?;
    let app = load_app(&target)?;
    println!("ok: {} definitions, {} hosts, {} services", app.definitions.len(), app.hosts.len(), app.services.len());
    Ok(0)
}

/// Loads the config: `--config`, else `wippy.yaml` beside the app, else defaults.
fn load_config(target: &Path, config: Option<PathBuf>, sets: &[String]) -> Result<Config> {
    let is_script = target.extension().is_some_and(|e| e == "lua");
    let config_path = config.or_else(|| {
        let dir =
            if is_script { target.parent().map(Path::to_path_buf).unwrap_or_default() } else { target.to_path_buf() };
        let p = dir.join("wippy.yaml");
        p.exists().then_some(p)
    });
    let env = std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)));
    Ok(Config::load(config_path.as_deref(), sets, env)?)
}

fn run(target: Option<PathBuf>, config: Option<PathBuf>, sets: Vec<String>) -> Result<i32> {
    let target = target.unwrap_or_else(|| PathBuf::from("."));
    let cfg = load_config(&target, config, &sets)?;
    init_logging(&cfg);
    // Signals are caught from here on, before any process starts, so an
    // early SIGTERM still shuts down gracefully.
    let signals = Signals::install()?;
    let app = load_app(&target)?;
    let main = app.main.clone();
    let opts = NodeOptions {
        node_id: cfg.node_name(),
        workers: cfg.scheduler.effective_workers(),
        memory_limit: cfg.scheduler.memory_limit.bytes() as usize,
        time_slice: cfg.scheduler.time_slice.as_std(),
        shutdown_timeout: cfg.scheduler.shutdown_timeout.as_std(),
        cluster: cluster_options(&cfg)?,
        raft: raft_options(&cfg),
        store_dir: cfg.raft_data_dir(std::env::var_os("HOME").map(std::path::PathBuf::from).as_deref()),
        client_lock_lease: client_lock_lease(&cfg),
        access: AccessOptions {
            data_dir: cfg.node.data_dir_path(std::env::var_os("HOME").map(std::path::PathBuf::from).as_deref()),
            license_file: cfg.cluster.license_file.as_ref().map(PathBuf::from),
            credential_grace: cfg.admin.credential_grace.as_std(),
            token_ttl: cfg.admin.token_ttl.as_std(),
        },
        admin: cfg
            .admin
            .enabled
            .then(|| AdminOptions { address: cfg.admin.address.clone(), token: cfg.admin.token.clone() }),
    };
    let node = Node::start(opts, app).context("starting the node")?;
    signals.forward_to(node.exit_handle())?;
    if let Some((def, host)) = main {
        let (pid, rx) = node.spawn_watched(&def, &host, Vec::new()).map_err(|e| anyhow::anyhow!("{e}"))?;
        tracing::debug!(%pid, "main process started");
        let exit = node.exit_handle();
        std::thread::Builder::new().name("wippy-main-watch".into()).spawn(move || {
            let code = match rx.recv() {
                Ok(Ok(_)) => 0,
                Ok(Err(e)) => {
                    eprintln!("{e}");
                    1
                }
                Err(_) => 1,
            };
            exit.request_exit(code);
        })?;
    }
    let code = node.wait_exit(None).unwrap_or(0);
    tracing::info!(code, "stopping");
    let final_code = node.shutdown();
    Ok(if final_code != 0 { final_code } else { code })
}

/// Gossip settings from `cluster.*`, `None` unless `cluster.enabled`.
///
/// A clustered node without a secret is refused rather than run with a
/// derived or empty key: gossip decides who may join and, later, who owns
/// names and locks, so it must never be open to anyone who can reach the port.
fn cluster_options(cfg: &Config) -> Result<Option<ClusterOptions>> {
    let c = &cfg.cluster;
    if !c.enabled {
        return Ok(None);
    }
    let m = &c.membership;
    let secret = match (&m.secret_file, &m.secret_key) {
        (Some(file), _) => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("reading cluster.membership.secret_file {file}"))?;
            wippy_config::decode_secret_key(text.trim())
                .with_context(|| format!("cluster.membership.secret_file {file}: not base64 of 32 bytes"))?
        }
        (None, Some(key)) => wippy_config::decode_secret_key(key).context("cluster.membership.secret_key")?,
        (None, None) => anyhow::bail!(
            "cluster.enabled needs a gossip secret: set cluster.membership.secret_key (base64 of 32 bytes) \
             or cluster.membership.secret_file"
        ),
    };
    let ip: std::net::IpAddr = m.bind_addr.parse().context("cluster.membership.bind_addr")?;
    let advertise = m
        .advertise_addr
        .as_deref()
        .map(|a| a.parse::<std::net::IpAddr>())
        .transpose()
        .context("cluster.membership.advertise_addr must be an IP address")?;
    Ok(Some(ClusterOptions {
        bind: std::net::SocketAddr::new(ip, m.bind_port),
        advertise,
        join: m.join_addrs.iter().map(str::to_owned).collect(),
        secret: secret.to_vec(),
        accept_secrets: m
            .accept_secret_keys
            .iter()
            .map(|k| wippy_config::decode_secret_key(k).map(|k| k.to_vec()))
            .collect::<Result<_, _>>()
            .context("cluster.membership.accept_secret_keys")?,
        key_grace: m.key_grace_period.as_std(),
        isolation_grace: m.isolation_grace.as_std(),
        failure_domain: c.failure_domain.clone(),
        raft_eligible: c.raft.enabled && c.raft.eligible && c.raft.role != wippy_config::RaftRole::Client,
        raft_priority: c.raft.priority,
        internode_bind: c.internode.bind_addr.parse().context("cluster.internode.bind_addr")?,
        internode_port: c.internode.bind_port,
        probe_interval: m.probe_interval.as_std(),
        probe_timeout: m.probe_timeout.as_std(),
        suspicion_mult: m.suspicion_mult,
        gossip_interval: m.gossip_interval.as_std(),
        push_pull_interval: m.push_pull_interval.as_std(),
    }))
}

/// The Raft core's settings: only on a clustered server node with
/// `cluster.raft.enabled`. A data directory that does not resolve (no home
/// for `~`) runs Raft diskless.
fn raft_options(cfg: &Config) -> Option<RaftOptions> {
    let (c, r) = (&cfg.cluster, &cfg.cluster.raft);
    if !c.enabled || !r.enabled || r.role == wippy_config::RaftRole::Client {
        return None;
    }
    let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
    Some(RaftOptions {
        data_dir: cfg.raft_data_dir(home.as_deref()),
        bootstrap_expect: r.bootstrap_expect,
        has_seeds: !c.membership.join_addrs.is_empty(),
        max_voters: r.max_voters,
        max_standbys: r.max_standbys,
        heartbeat_timeout: r.heartbeat_timeout.as_std(),
        reconcile_debounce: r.reconcile_debounce.as_std(),
        reconcile_timeout: r.reconcile_timeout.as_std(),
        snapshot_threshold: r.snapshot_threshold,
        trailing_logs: r.trailing_logs,
        lock_lease: lock_lease(cfg),
    })
}

/// Half the shortest time in which gossip can declare a silent node dead:
/// a holder cut off from the majority gives its locks up well before the
/// majority may hand them to someone else.
fn lock_lease(cfg: &Config) -> std::time::Duration {
    cfg.cluster.membership.probe_interval.as_std() * cfg.cluster.membership.suspicion_mult / 2
}

/// The lock lease a client node checks itself (members check theirs in the
/// Raft loop): only on a clustered node that runs no Raft instance.
fn client_lock_lease(cfg: &Config) -> Option<std::time::Duration> {
    (cfg.cluster.enabled && raft_options(cfg).is_none()).then(|| lock_lease(cfg))
}

/// SIGINT and SIGTERM, registered before the node starts and forwarded to
/// it as an exit request once it runs.
struct Signals {
    rt: tokio::runtime::Runtime,
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let (int, term) = rt.block_on(async {
            Ok::<_, std::io::Error>((signal(SignalKind::interrupt())?, signal(SignalKind::terminate())?))
        })?;
        Ok(Signals { rt, int, term })
    }

    fn forward_to(self, exit: wippy_runtime::ExitHandle) -> Result<()> {
        let Signals { rt, mut int, mut term } = self;
        std::thread::Builder::new().name("wippy-signals".into()).spawn(move || {
            rt.block_on(async move {
                tokio::select! {
                    _ = int.recv() => tracing::info!("SIGINT: shutting down"),
                    _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
                }
                exit.request_exit(0);
            });
        })?;
        Ok(())
    }
}

fn init_logging(cfg: &Config) {
    use tracing_subscriber::EnvFilter;
    // openraft reports every failed heartbeat to an unreachable peer at
    // warn, twice a second, which gossip already says better; its errors
    // still show. RUST_LOG overrides all of this.
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{},openraft=error", cfg.logger.level)));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match cfg.logger.encoding {
        LogEncoding::Json => builder.json().init(),
        LogEncoding::Console => builder.init(),
    }
}
