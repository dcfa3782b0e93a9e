//! Who a node is and who may join its cluster.
//!
//! - [`node_key`]: each node's Ed25519 key pair, made on first start and
//!   kept in the data dir; the peer id is derived from its public key, so it
//!   is stable across restarts and cannot be claimed without the key.
//! - [`license`]: the signed document that defines a cluster (id, node
//!   limit, expiry, issuer key). Nodes holding the same license form one
//!   cluster; the internode handshake compares licenses ([`admission`]).
//! - [`peers`]: what this node knows about the others, kept on disk.
//! - [`credential`] and [`token`]: the cluster credential the CLI logs in
//!   with, replicated to every node and rotatable with a grace period, and
//!   the short-lived bearer tokens minted from it.
//!
//! Everything here is pure: time comes in as unix seconds and randomness
//! from the caller, so the rules are tested without clocks or sockets.

pub mod admission;
pub mod credential;
pub mod license;
pub mod node_key;
pub mod peers;
pub mod token;

use base64::Engine as _;

/// Standard base64 with padding: keys and signatures in JSON documents.
pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Decodes [`b64`] text into exactly `N` bytes.
pub fn unb64<const N: usize>(text: &str) -> Option<[u8; N]> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(text.trim()).ok()?;
    bytes.try_into().ok()
}

/// URL-safe base64 without padding: tokens and client secrets.
pub(crate) fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes [`b64url`] text.
pub(crate) fn unb64url(text: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text).ok()
}

/// A random identifier: `prefix` then 24 hex digits (96 bits).
pub fn random_id(prefix: &str) -> String {
    let bytes: [u8; 12] = rand::random();
    format!("{prefix}{}", hex(&bytes))
}

/// Lower-case hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Seconds since the unix epoch, by the system clock.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Writes `text` to `path` through a temporary file and a rename, so a
/// crash leaves either the old file or the new one. `private` files are
/// created readable by the owner only (keys, secrets).
pub(crate) fn write_atomic(path: &std::path::Path, text: &str, private: bool) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut file = opts.open(&tmp)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, path)
}
