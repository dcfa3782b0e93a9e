//! The node's access state: its key, license, peer book and the replicated
//! credential, behind one type that the mesh, the admin API and the replica
//! share.
//!
//! Files under the data dir (each written atomically):
//! `identity.json` (the key pair), `license.json` (installed by bootstrap),
//! `peers.json` (the peer book), `access.json` (credential and
//! deactivations), and `deactivated`, a marker that keeps a node that
//! removed itself from starting again under the same identity.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, RwLock};
use std::time::Duration;

use thiserror::Error;

use super::sync::{AccessSync, Deactivation, Merged};
use crate::identity::admission::{self, Binding, Hello, Local, Refusal};
use crate::identity::credential::{Accepted, Credential};
use crate::identity::license::{License, LicenseError};
use crate::identity::node_key::{KeyError, NodeKey};
use crate::identity::peers::{PeerBook, PeerRecord, PeerState, Seen};
use crate::identity::{random_id, write_atomic};

/// The installed license's file name under the data dir.
pub(crate) const LICENSE_FILE: &str = "license.json";
const ACCESS_FILE: &str = "access.json";
const DEACTIVATED_FILE: &str = "deactivated";

/// Access settings (`node.data_dir`, `cluster.license_file`, `admin.*`).
#[derive(Clone, Debug)]
pub struct AccessOptions {
    /// Where the identity and peer book live; `None`: in memory only (a new
    /// identity every start).
    pub data_dir: Option<PathBuf>,
    /// A license to use instead of one installed by bootstrap.
    pub license_file: Option<PathBuf>,
    /// How long the previous secret works after a credential rotation.
    pub credential_grace: Duration,
    /// How long a bearer token lasts.
    pub token_ttl: Duration,
}

impl Default for AccessOptions {
    fn default() -> Self {
        AccessOptions {
            data_dir: None,
            license_file: None,
            credential_grace: Duration::from_secs(24 * 3600),
            token_ttl: Duration::from_secs(15 * 60),
        }
    }
}

/// Why access could not be set up or changed.
#[derive(Debug, Error)]
pub enum AccessError {
    /// The identity file.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// A license that cannot be used.
    #[error("{0}")]
    License(#[from] LicenseError),
    /// This identity removed itself from its cluster.
    #[error(
        "this node removed itself from its cluster at {at} (unix seconds); delete {dir}/identity.json and {dir}/deactivated to join again as a new peer"
    )]
    Deactivated {
        /// The data dir.
        dir: String,
        /// When.
        at: String,
    },
    /// A license file (configured or installed) that cannot be used.
    #[error("license file {path}: {error}")]
    LicenseFile {
        /// The file.
        path: String,
        /// Why.
        error: LicenseError,
    },
    /// Bootstrap with another license than the installed one.
    #[error("already bootstrapped with license {0}")]
    AlreadyBootstrapped(String),
    /// Rotation before any credential exists.
    #[error("no cluster credential yet: bootstrap a node first")]
    NoCredential,
    /// A file could not be written.
    #[error("{path}: {error}")]
    Io {
        /// The file.
        path: String,
        /// What the OS said.
        error: String,
    },
}

/// What `peers add` adds to an admission.
#[derive(Debug, Default)]
pub(crate) struct Joining {
    /// The admin API address the operator gave for the peer.
    pub(crate) api_address: Option<String>,
    /// The adding node's credential, for a node that has no peers yet.
    pub(crate) credential: Option<Credential>,
}

/// Mutable facts about this node: itself as it presents itself, and the
/// options in force.
struct Inner {
    me: Local,
    opts: AccessOptions,
}

/// See the module doc.
pub(crate) struct Access {
    node: String,
    inner: RwLock<Inner>,
    book: Mutex<PeerBook>,
    sync: Mutex<AccessSync>,
    /// Gossip addresses `peers add` asked to join; the gossip thread takes them.
    joins: Mutex<Vec<std::net::SocketAddr>>,
    /// Counts peers removed or deactivated, so that connections they
    /// already hold into this node close at once (see [`Access::refusal_of`]).
    refusals: tokio::sync::watch::Sender<u64>,
}

fn io_err(path: &Path, e: impl std::fmt::Display) -> AccessError {
    AccessError::Io { path: path.display().to_string(), error: e.to_string() }
}

impl Access {
    /// An in-memory identity; [`Access::configure`] loads the real one.
    pub(crate) fn new(node: &str) -> Access {
        Access {
            node: node.to_owned(),
            inner: RwLock::new(Inner {
                me: Local {
                    node: node.to_owned(),
                    key: NodeKey::from_seed(rand::random()),
                    license: None,
                    api_address: None,
                    gossip_address: None,
                },
                opts: AccessOptions::default(),
            }),
            book: Mutex::new(PeerBook::default()),
            sync: Mutex::new(AccessSync::default()),
            joins: Mutex::new(Vec::new()),
            refusals: tokio::sync::watch::Sender::new(0),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Loads the identity, license, peer book and replicated state.
    pub(crate) fn configure(&self, opts: &AccessOptions, now: u64) -> Result<(), AccessError> {
        let dir = opts.data_dir.as_deref();
        if let Some(d) = dir
            && let Ok(at) = std::fs::read_to_string(d.join(DEACTIVATED_FILE))
        {
            return Err(AccessError::Deactivated { dir: d.display().to_string(), at: at.trim().to_owned() });
        }
        let key = match dir {
            Some(d) => NodeKey::load_or_create(d)?,
            None => self.read().me.key.clone(),
        };
        let file = match (&opts.license_file, dir) {
            (Some(file), _) => Some(file.clone()),
            (None, Some(d)) if d.join(LICENSE_FILE).exists() => Some(d.join(LICENSE_FILE)),
            _ => None,
        };
        let license = file
            .map(|f| {
                License::load(&f).map_err(|error| AccessError::LicenseFile { path: f.display().to_string(), error })
            })
            .transpose()?;
        if let Some(l) = &license
            && let Err(e) = l.check_current(now)
        {
            tracing::warn!(error = %e, "the license has expired: no new peers are admitted");
        }
        let sync = dir
            .and_then(|d| std::fs::read_to_string(d.join(ACCESS_FILE)).ok())
            .and_then(|t| serde_json::from_str::<AccessSync>(&t).ok())
            .unwrap_or_default();
        let mut book = PeerBook::load(dir);
        // This node has a record too: the operator's label for it lives there.
        let me = Seen {
            peer_id: key.peer_id().to_owned(),
            node: self.node.clone(),
            public_key: key.public_key_b64(),
            ..Seen::default()
        };
        book.admit(me, now);
        *self.book() = book;
        *self.sync.lock().unwrap_or_else(|e| e.into_inner()) = sync;
        let mut inner = self.write();
        inner.me.key = key;
        inner.me.license = license;
        inner.opts = opts.clone();
        Ok(())
    }

    /// The peer book.
    pub(crate) fn book(&self) -> MutexGuard<'_, PeerBook> {
        self.book.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// This node's key.
    pub(crate) fn key(&self) -> NodeKey {
        self.read().me.key.clone()
    }

    /// The installed license.
    pub(crate) fn license(&self) -> Option<License> {
        self.read().me.license.clone()
    }

    /// The options in force.
    pub(crate) fn options(&self) -> AccessOptions {
        self.read().opts.clone()
    }

    /// The node as it presents itself.
    pub(crate) fn local(&self) -> Local {
        self.read().me.clone()
    }

    /// Records where the admin API and gossip listen, once they do.
    pub(crate) fn set_addresses(&self, api: Option<String>, gossip: Option<String>) {
        let mut inner = self.write();
        if api.is_some() {
            inner.me.api_address = api;
        }
        if gossip.is_some() {
            inner.me.gossip_address = gossip;
        }
    }

    /// This node's hello for one connection.
    pub(crate) fn hello(&self, binding: Binding<'_>) -> Hello {
        self.local().hello(binding)
    }

    /// Checks a peer's hello; on success records the peer in the book.
    pub(crate) fn admit(&self, peer: &Hello, binding: Binding<'_>, now: u64) -> Result<bool, Refusal> {
        self.admit_with(peer, binding, now, Joining::default())
    }

    /// [`Access::admit`] for the two sides of `peers add`: what the
    /// operator said about the peer, and the credential the adding node
    /// hands over (see [`Access::adopt_credential`]).
    pub(crate) fn admit_with(
        &self,
        peer: &Hello,
        binding: Binding<'_>,
        now: u64,
        joining: Joining,
    ) -> Result<bool, Refusal> {
        let local = self.local();
        let mut book = self.book();
        admission::check(&local, &book, peer, binding, now)?;
        // Taken while the book still shows whether this node is alone.
        if let Some(c) = joining.credential
            && book.active_others(&self.node) == 0
        {
            self.adopt_credential(c);
        }
        let mut seen = peer.seen();
        if joining.api_address.is_some() {
            seen.api_address = joining.api_address;
        }
        Ok(book.admit(seen, now))
    }

    /// Installs a license (bootstrap). Returns the new credential's client
    /// id and secret when this node made the credential.
    pub(crate) fn install_license(&self, license: License, now: u64) -> Result<Option<(String, String)>, AccessError> {
        license.verify()?;
        license.check_current(now)?;
        let mut inner = self.write();
        match &inner.me.license {
            Some(current)
                if current.same_cluster(&license) && current.issuer_public_key == license.issuer_public_key => {}
            Some(current) => return Err(AccessError::AlreadyBootstrapped(current.license_id.clone())),
            None => {
                if let Some(dir) = &inner.opts.data_dir {
                    let path = dir.join(LICENSE_FILE);
                    write_atomic(&path, &license.to_json(), false).map_err(|e| io_err(&path, e))?;
                }
                tracing::info!(license = %license.license_id, cluster = %license.cluster_id, "license installed");
                inner.me.license = Some(license);
            }
        }
        let origin = inner.me.key.peer_id().to_owned();
        drop(inner);
        let mut sync = self.sync.lock().unwrap_or_else(|e| e.into_inner());
        if sync.credential.is_some() {
            return Ok(None);
        }
        let (cred, secret) = Credential::create(random_id("client_"), origin, now, rand::random());
        let client_id = cred.client_id.clone();
        sync.credential = Some(cred);
        self.save_sync(&sync);
        Ok(Some((client_id, secret)))
    }

    /// Rotates the credential; returns the new version and its secret.
    pub(crate) fn rotate(&self, now: u64) -> Result<(Credential, String), AccessError> {
        let (grace, origin) = {
            let inner = self.read();
            (inner.opts.credential_grace.as_secs(), inner.me.key.peer_id().to_owned())
        };
        let mut sync = self.sync.lock().unwrap_or_else(|e| e.into_inner());
        let current = sync.credential.as_ref().ok_or(AccessError::NoCredential)?;
        let (next, secret) = current.rotate(origin, now, grace, rand::random());
        sync.credential = Some(next.clone());
        self.save_sync(&sync);
        tracing::info!(generation = next.generation, "cluster credential rotated");
        Ok((next, secret))
    }

    /// Whether a client login succeeds at `now`.
    pub(crate) fn login(&self, client_id: &str, secret: &str, now: u64) -> Option<Accepted> {
        self.sync.lock().unwrap_or_else(|e| e.into_inner()).credential.as_ref()?.accepts(client_id, secret, now)
    }

    /// Takes the credential of the cluster this node is being added to (the
    /// caller checked it has no peers yet; see `dial::HandshakeRequest`).
    /// Returns whether it changed.
    fn adopt_credential(&self, theirs: Credential) -> bool {
        let mut sync = self.sync.lock().unwrap_or_else(|e| e.into_inner());
        if sync.credential.as_ref() == Some(&theirs) {
            return false;
        }
        sync.credential = Some(theirs);
        self.save_sync(&sync);
        tracing::info!("took the cluster credential of the node that added this one");
        true
    }

    /// The current credential record.
    pub(crate) fn credential(&self) -> Option<Credential> {
        self.sync.lock().unwrap_or_else(|e| e.into_inner()).credential.clone()
    }

    /// A copy of the replicated state, to send.
    pub(crate) fn sync_state(&self) -> AccessSync {
        self.sync.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Merges a peer's copy; deactivated peers are marked in the book.
    pub(crate) fn merge(&self, theirs: AccessSync, now: u64) -> Merged {
        let mut sync = self.sync.lock().unwrap_or_else(|e| e.into_inner());
        let merged = sync.merge(theirs);
        if merged.any() {
            self.save_sync(&sync);
        }
        drop(sync);
        for (peer_id, d) in &merged.deactivated {
            tracing::info!(node = %d.node, %peer_id, "peer removed itself from the cluster");
            if *peer_id != self.key().peer_id() {
                self.book().deactivate(d.seen(peer_id.clone()), now);
            }
        }
        if !merged.deactivated.is_empty() {
            self.refusals.send_modify(|n| *n += 1);
        }
        if merged.credential {
            tracing::info!("cluster credential updated from a peer");
        }
        merged
    }

    /// Signs this node's deactivation, keeps it for replication and marks
    /// the data dir so the identity is not used again.
    pub(crate) fn deactivate_self(&self, now: u64) -> Result<Deactivation, AccessError> {
        let d = Deactivation::sign(&self.key(), &self.node, now);
        if let Some(dir) = &self.read().opts.data_dir {
            let path = dir.join(DEACTIVATED_FILE);
            write_atomic(&path, &format!("{now}\n"), false).map_err(|e| io_err(&path, e))?;
        }
        let mut sync = self.sync.lock().unwrap_or_else(|e| e.into_inner());
        if !sync.deactivations.contains(&d) {
            sync.deactivations.push(d.clone());
            self.save_sync(&sync);
        }
        Ok(d)
    }

    /// An operator deleted peer `peer_id` on this node: it is refused from
    /// now on, and the connections it holds into this node close.
    pub(crate) fn remove_peer(&self, peer_id: &str, now: u64) -> Option<PeerRecord> {
        let removed = self.book().set_state(peer_id, PeerState::Removed, now);
        self.refusals.send_modify(|n| *n += 1);
        removed
    }

    /// Changes whenever a peer is removed or deactivated.
    pub(crate) fn watch_refusals(&self) -> tokio::sync::watch::Receiver<u64> {
        self.refusals.subscribe()
    }

    /// Why an admitted connection from `node` must close now: it was
    /// removed by an operator or removed itself. `None` while it is active
    /// (or unknown to the book, as in a cluster without licenses).
    pub(crate) fn refusal_of(&self, node: &str) -> Option<Refusal> {
        match self.book().by_node(node)?.state {
            PeerState::Active => None,
            PeerState::Removed => Some(Refusal::Removed),
            PeerState::Deactivated => Some(Refusal::Deactivated),
        }
    }

    /// Queues a gossip address to announce to.
    pub(crate) fn request_join(&self, addr: std::net::SocketAddr) {
        self.joins.lock().unwrap_or_else(|e| e.into_inner()).push(addr);
    }

    /// Takes the queued join requests.
    pub(crate) fn take_joins(&self) -> Vec<std::net::SocketAddr> {
        std::mem::take(&mut *self.joins.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Gossip addresses of the active peers in the book: extra seeds for a
    /// node that restarts without `join_addrs` naming them.
    pub(crate) fn known_seeds(&self) -> Vec<String> {
        self.book()
            .all()
            .filter(|r| r.state == PeerState::Active && r.node != self.node)
            .filter_map(|r| r.gossip_address.clone())
            .collect()
    }

    fn save_sync(&self, sync: &AccessSync) {
        let Some(dir) = self.read().opts.data_dir.clone() else { return };
        let path = dir.join(ACCESS_FILE);
        let text = serde_json::to_string_pretty(sync).expect("access state always serializes");
        if let Err(e) = write_atomic(&path, &text, true) {
            tracing::warn!(path = %path.display(), error = %e, "could not save the access state");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::license::IssuerKey;

    fn dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("wippy-access-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn opts(d: &Path) -> AccessOptions {
        AccessOptions { data_dir: Some(d.to_path_buf()), ..AccessOptions::default() }
    }

    #[test]
    fn bootstrap_installs_once_and_makes_one_credential() {
        let d = dir("boot");
        let access = Access::new("n1");
        access.configure(&opts(&d), 100).unwrap();
        let issuer = IssuerKey::from_seed([1; 32]);
        let license = issuer.issue("lic".into(), "c".into(), 3, 0, 0);
        let (client, secret) = access.install_license(license.clone(), 100).unwrap().unwrap();
        assert_eq!(access.login(&client, &secret, 100), Some(Accepted::Current));
        // Again with the same license: nothing new.
        assert!(access.install_license(license, 101).unwrap().is_none());
        let other = issuer.issue("lic2".into(), "c".into(), 3, 0, 0);
        assert!(matches!(access.install_license(other, 102), Err(AccessError::AlreadyBootstrapped(_))));

        // All of it survives a restart.
        let again = Access::new("n1");
        again.configure(&opts(&d), 200).unwrap();
        assert_eq!(again.key().peer_id(), access.key().peer_id());
        assert_eq!(again.license().unwrap().license_id, "lic");
        assert_eq!(again.login(&client, &secret, 200), Some(Accepted::Current));
        let _ = std::fs::remove_dir_all(d);
    }

    #[test]
    fn a_deactivated_identity_does_not_start_again() {
        let d = dir("deact");
        let access = Access::new("n1");
        access.configure(&opts(&d), 1).unwrap();
        let dd = access.deactivate_self(5).unwrap();
        assert_eq!(dd.verified_peer().as_deref(), Some(access.key().peer_id()));
        let err = Access::new("n1").configure(&opts(&d), 6).unwrap_err();
        assert!(err.to_string().contains("removed itself"), "{err}");
        let _ = std::fs::remove_dir_all(d);
    }

    #[test]
    fn an_expired_or_forged_license_is_not_installed() {
        let access = Access::new("n1");
        let issuer = IssuerKey::from_seed([1; 32]);
        let expired = issuer.issue("lic".into(), "c".into(), 3, 0, 10);
        assert!(matches!(access.install_license(expired, 10), Err(AccessError::License(LicenseError::Expired { .. }))));
        let mut forged = issuer.issue("lic".into(), "c".into(), 3, 0, 0);
        forged.max_nodes = 99;
        assert!(matches!(access.install_license(forged, 10), Err(AccessError::License(LicenseError::BadSignature))));
        assert!(access.license().is_none());
    }
}
