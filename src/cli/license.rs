//! `wippy license issue|show`.
//!
//! Issuing is offline on purpose: the issuer key decides who can form a
//! cluster, so it never has to be on a node or cross the network.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use clap::{Args, Subcommand};
use wippy_runtime::identity::license::{IssuerKey, License};
use wippy_runtime::identity::{random_id, unix_now};

use super::api::Auth;
use super::error::usage;
use super::global::{GlobalOpts, OutputFormat};
use super::render::emit;
use super::session::Session;
use super::time;

/// `wippy license …`.
#[derive(Subcommand, Debug)]
pub(crate) enum LicenseCmd {
    /// Sign a license with an issuer key (offline; creates the key on first use).
    Issue(IssueArgs),
    /// Show the license installed on the node.
    Show,
}

/// `wippy license issue`.
#[derive(Args, Debug)]
pub(crate) struct IssueArgs {
    /// The issuer key file; created (mode 0600) when missing. Keep it offline.
    #[arg(long, value_name = "FILE")]
    issuer_key: PathBuf,
    /// The cluster the license defines [default: a new random id].
    #[arg(long, value_name = "ID")]
    cluster_id: Option<String>,
    /// The license id [default: a new random lic_… id].
    #[arg(long, value_name = "ID")]
    license_id: Option<String>,
    /// Most nodes that may be members at once.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    max_nodes: u32,
    /// How long the license admits nodes: 365d, 12h, 30m, 1d12h; 0: never expires.
    #[arg(long, value_name = "DURATION", default_value = "365d", value_parser = time::parse_duration)]
    valid_for: u64,
    /// Write the license to FILE instead of stdout.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

/// Runs a license command.
pub(crate) fn run(cmd: LicenseCmd, global: GlobalOpts) -> Result<i32> {
    match cmd {
        LicenseCmd::Issue(args) => issue(args, global.output),
        LicenseCmd::Show => show(global),
    }
}

fn issue(args: IssueArgs, output: OutputFormat) -> Result<i32> {
    let key = load_or_create(&args.issuer_key)?;
    let now = unix_now();
    let expires_at = if args.valid_for == 0 { 0 } else { now.saturating_add(args.valid_for) };
    let license = key.issue(
        args.license_id.unwrap_or_else(|| random_id("lic_")),
        args.cluster_id.unwrap_or_else(|| random_id("c")),
        args.max_nodes,
        now,
        expires_at,
    );
    license.verify().map_err(|e| usage(e.to_string()))?;
    let json = license.to_json();
    let Some(out) = args.out else {
        emit(&format!("{json}\n"));
        return Ok(0);
    };
    write_file(&out, &(json.clone() + "\n"))?;
    let summary = format!(
        "wrote license {} for cluster {} ({} nodes, expires {}) to {}",
        license.license_id,
        license.cluster_id,
        license.max_nodes,
        expiry(&license),
        out.display()
    );
    if output == OutputFormat::Json {
        emit(&format!("{json}\n"));
        eprintln!("{summary}");
    } else {
        emit(&format!("{summary}\n"));
    }
    Ok(0)
}

/// Loads the issuer key, or makes one; a new key is announced on stderr,
/// since losing it means no more licenses for its clusters.
fn load_or_create(path: &Path) -> Result<IssuerKey> {
    if path.exists() {
        return IssuerKey::load(path).map_err(|e| usage(format!("issuer key: {e}")));
    }
    let key = IssuerKey::generate();
    key.save(path).map_err(|e| usage(format!("creating the issuer key: {e}")))?;
    eprintln!(
        "created issuer key {} (mode 0600, public key {}); keep it offline and backed up",
        path.display(),
        key.public_key()
    );
    Ok(key)
}

fn expiry(license: &License) -> String {
    if license.expires_at == 0 { "never".into() } else { time::format_utc(license.expires_at) }
}

/// Writes through a temporary file, so a failed write never leaves half a
/// license where a node might read it.
fn write_file(path: &Path, text: &str) -> Result<()> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("license.json");
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, path))
        .inspect_err(|_| drop(std::fs::remove_file(&tmp)))
        .with_context(|| format!("writing {}", path.display()))
}

fn show(global: GlobalOpts) -> Result<i32> {
    let session = Session::open(global)?;
    let mut api = session.api()?;
    let license = api.call("GET", "/v1/license", None, Auth::Open)?;
    let order = [
        "license_id",
        "cluster_id",
        "status",
        "max_nodes",
        "nodes_in_use",
        "issued_at",
        "expires_at",
        "issuer_public_key",
    ];
    session.out().fields(&license, &order);
    Ok(0)
}
