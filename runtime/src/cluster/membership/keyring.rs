//! The set of gossip keys a node accepts, and the one it sends with.
//!
//! Rotating a cluster secret cannot happen on every node at once, so it is
//! split into steps that are each rolled out to the whole cluster before the
//! next begins:
//!
//! 1. [`Keyring::install`] the new key everywhere. Nodes now accept it but
//!    still send with the old one, so nobody receives a key they lack.
//! 2. [`Keyring::make_primary`] the new key. Nodes send with it; everyone can
//!    already read it.
//! 3. [`Keyring::retire`] the old key. It is still accepted for the grace
//!    period, which covers packets in flight and nodes that were slow to
//!    finish step 2; [`Keyring::expire`] drops it afterwards.
//!    [`Keyring::remove`] drops a key at once, for a secret known to leak.
//!
//! Time is passed in as an [`Instant`]; nothing here reads a clock.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use thiserror::Error;

use super::seal::{self, NONCE_LEN, SealError, Sealer};

/// Secrets shorter than this are refused: HKDF stretches a short secret into
/// a full-length key, but it cannot add the entropy the secret lacks.
pub(crate) const MIN_SECRET_LEN: usize = 16;

/// What went wrong with a keyring call. Unless a variant says otherwise, the
/// keyring is unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub(crate) enum KeyringError {
    /// No key with this id is installed (or it has expired and been dropped).
    #[error("no key with id {0} is installed")]
    UnknownKey(u8),
    /// `install` was given an id that is still in use. Ids are not reused
    /// until the old key has expired, so a packet can never be opened with a
    /// key other than the one its sender meant.
    #[error("key id {0} is already installed")]
    DuplicateKey(u8),
    /// The secret is shorter than [`MIN_SECRET_LEN`] bytes.
    #[error("secret for key {id} is {len} bytes; at least {MIN_SECRET_LEN} are required")]
    SecretTooShort {
        /// The key id the secret was offered for.
        id: u8,
        /// Length of the secret offered.
        len: usize,
    },
    /// Sealing needs a primary key and none has been chosen yet.
    #[error("no primary key has been chosen")]
    NoPrimary,
    /// The primary key cannot be retired or removed; make another key
    /// primary first, or this node would have nothing to send with.
    #[error("key {0} is the primary key")]
    IsPrimary(u8),
    /// A retired key cannot become primary again: it is counting down to
    /// expiry on every node. Install a fresh key under a new id instead.
    #[error("key {0} is retired")]
    Retired(u8),
    /// The packet names a key whose grace period has passed. The key stays
    /// in the ring until [`Keyring::expire`] runs.
    #[error("key {0} expired")]
    Expired(u8),
    /// The packet was malformed or failed authentication.
    #[error(transparent)]
    Packet(#[from] SealError),
}

/// Result of a keyring call.
pub(crate) type Result<T> = std::result::Result<T, KeyringError>;

/// A packet that opened, and the key that opened it. The id lets the caller
/// see when the last peer has stopped sending with a key about to retire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Opened {
    /// Id of the key that authenticated the packet.
    pub(crate) key_id: u8,
    /// The decrypted payload.
    pub(crate) plaintext: Vec<u8>,
}

#[derive(Debug)]
struct Entry {
    sealer: Sealer,
    /// Set by `retire`: the key is accepted strictly before this instant.
    accept_until: Option<Instant>,
}

impl Entry {
    fn expired(&self, now: Instant) -> bool {
        self.accept_until.is_some_and(|until| now >= until)
    }
}

/// Gossip keys by id, with at most one primary.
#[derive(Debug)]
pub(crate) struct Keyring {
    cluster: String,
    grace: Duration,
    keys: BTreeMap<u8, Entry>,
    primary: Option<u8>,
}

impl Keyring {
    /// An empty keyring for `cluster`. Retired keys stay readable for
    /// `grace`, which should exceed the time a rotation step takes to reach
    /// every node.
    pub(crate) fn new(cluster: impl Into<String>, grace: Duration) -> Self {
        Self { cluster: cluster.into(), grace, keys: BTreeMap::new(), primary: None }
    }

    /// Starts accepting packets sealed with `secret` under `id`. Does not
    /// change the primary. An id whose key was retired and whose grace has
    /// passed by `now` may be reused; the old key is replaced.
    pub(crate) fn install(&mut self, id: u8, secret: &[u8], now: Instant) -> Result<()> {
        if secret.len() < MIN_SECRET_LEN {
            return Err(KeyringError::SecretTooShort { id, len: secret.len() });
        }
        if self.keys.get(&id).is_some_and(|entry| !entry.expired(now)) {
            return Err(KeyringError::DuplicateKey(id));
        }
        let entry = Entry { sealer: Sealer::new(secret, &self.cluster), accept_until: None };
        self.keys.insert(id, entry);
        Ok(())
    }

    /// Sends with key `id` from now on. Making the current primary primary
    /// again is a no-op.
    pub(crate) fn make_primary(&mut self, id: u8) -> Result<()> {
        let entry = self.keys.get(&id).ok_or(KeyringError::UnknownKey(id))?;
        if entry.accept_until.is_some() {
            return Err(KeyringError::Retired(id));
        }
        self.primary = Some(id);
        Ok(())
    }

    /// Keeps accepting key `id` until `now + grace`, then lets it expire.
    /// Retiring an already retired key keeps its earlier deadline, so
    /// repeating the step cannot extend a key's life.
    pub(crate) fn retire(&mut self, id: u8, now: Instant) -> Result<()> {
        if self.primary == Some(id) {
            return Err(KeyringError::IsPrimary(id));
        }
        let entry = self.keys.get_mut(&id).ok_or(KeyringError::UnknownKey(id))?;
        entry.accept_until.get_or_insert(now + self.grace);
        Ok(())
    }

    /// Stops accepting key `id` at once, without a grace period.
    #[allow(dead_code, reason = "runtime key changes arrive with the operator API")]
    pub(crate) fn remove(&mut self, id: u8) -> Result<()> {
        if self.primary == Some(id) {
            return Err(KeyringError::IsPrimary(id));
        }
        self.keys.remove(&id).map(drop).ok_or(KeyringError::UnknownKey(id))
    }

    /// Drops every retired key whose grace has passed by `now` and returns
    /// their ids, ascending, so the caller can log them.
    pub(crate) fn expire(&mut self, now: Instant) -> Vec<u8> {
        let expired: Vec<u8> = self.keys.iter().filter(|(_, entry)| entry.expired(now)).map(|(&id, _)| id).collect();
        for id in &expired {
            self.keys.remove(id);
        }
        expired
    }

    /// Id of the key used for sending, if one has been chosen.
    #[allow(dead_code, reason = "runtime key changes arrive with the operator API")]
    pub(crate) fn primary(&self) -> Option<u8> {
        self.primary
    }

    /// Ids of all keys still held, ascending, including retired ones not yet
    /// dropped by [`Keyring::expire`].
    #[allow(dead_code, reason = "runtime key changes arrive with the operator API")]
    pub(crate) fn key_ids(&self) -> impl Iterator<Item = u8> + '_ {
        self.keys.keys().copied()
    }

    /// Seals `plaintext` with the primary key. `nonce` must be fresh random
    /// bytes for every packet.
    pub(crate) fn seal(&self, nonce: [u8; NONCE_LEN], plaintext: &[u8]) -> Result<Vec<u8>> {
        let id = self.primary.ok_or(KeyringError::NoPrimary)?;
        let entry = self.keys.get(&id).expect("the primary is never removed from the ring");
        Ok(entry.sealer.seal(id, nonce, plaintext))
    }

    /// Opens a packet with the key its header names, provided that key is
    /// installed and has not expired at `now`.
    pub(crate) fn open(&self, packet: &[u8], now: Instant) -> Result<Opened> {
        let id = seal::peek(packet)?.key_id;
        let entry = self.keys.get(&id).ok_or(KeyringError::UnknownKey(id))?;
        if entry.expired(now) {
            return Err(KeyringError::Expired(id));
        }
        let (key_id, plaintext) = entry.sealer.open(packet)?;
        Ok(Opened { key_id, plaintext })
    }
}

#[cfg(test)]
mod tests {
    use super::super::seal::tests::Bytes;
    use super::*;

    const OLD: &[u8] = b"old secret, 32 bytes of entropy!";
    const NEW: &[u8] = b"new secret, 32 bytes of entropy!";
    const GRACE: Duration = Duration::from_secs(24 * 60 * 60);

    fn ring_with_primary(now: Instant) -> Keyring {
        let mut ring = Keyring::new("prod", GRACE);
        ring.install(1, OLD, now).unwrap();
        ring.make_primary(1).unwrap();
        ring
    }

    fn opened(key_id: u8, plaintext: &[u8]) -> Result<Opened> {
        Ok(Opened { key_id, plaintext: plaintext.to_vec() })
    }

    #[test]
    fn rotation_accepts_both_keys_until_grace_ends() {
        let t0 = Instant::now();
        let mut rng = Bytes::new(7);

        // A node still on the old key only, as peers are mid-rollout.
        let laggard = ring_with_primary(t0);
        let mut ring = ring_with_primary(t0);

        // Step 1: install. Still sending with the old key.
        ring.install(2, NEW, t0).unwrap();
        let from_old = ring.seal(rng.nonce(), b"old").unwrap();
        assert_eq!(laggard.open(&from_old, t0), opened(1, b"old"));
        let mut peer_on_new = Keyring::new("prod", GRACE);
        peer_on_new.install(2, NEW, t0).unwrap();
        peer_on_new.make_primary(2).unwrap();
        let from_new = peer_on_new.seal(rng.nonce(), b"new").unwrap();
        assert_eq!(ring.open(&from_old, t0), opened(1, b"old"));
        assert_eq!(ring.open(&from_new, t0), opened(2, b"new"));

        // Step 2: make the new key primary.
        ring.make_primary(2).unwrap();
        assert_eq!(ring.primary(), Some(2));
        let sent = ring.seal(rng.nonce(), b"hello").unwrap();
        assert_eq!(ring.open(&sent, t0), opened(2, b"hello"));

        // Step 3: retire the old key; it is read until the grace ends.
        let t1 = t0 + Duration::from_secs(60);
        ring.retire(1, t1).unwrap();
        let just_before = t1 + GRACE - Duration::from_nanos(1);
        assert_eq!(ring.open(&from_old, just_before), opened(1, b"old"));
        assert_eq!(ring.expire(just_before), Vec::<u8>::new());

        let after = t1 + GRACE;
        assert_eq!(ring.open(&from_old, after), Err(KeyringError::Expired(1)));
        assert_eq!(ring.open(&from_new, after), opened(2, b"new"));
        assert_eq!(ring.expire(after), vec![1]);
        assert_eq!(ring.open(&from_old, after), Err(KeyringError::UnknownKey(1)));
        assert_eq!(ring.key_ids().collect::<Vec<_>>(), vec![2]);
    }

    #[test]
    fn retiring_twice_keeps_the_first_deadline() {
        let t0 = Instant::now();
        let mut ring = ring_with_primary(t0);
        ring.install(2, NEW, t0).unwrap();
        ring.retire(2, t0).unwrap();
        ring.retire(2, t0 + GRACE).unwrap();
        assert_eq!(ring.expire(t0 + GRACE), vec![2]);
    }

    #[test]
    fn primary_cannot_be_removed_or_retired() {
        let t0 = Instant::now();
        let mut ring = ring_with_primary(t0);
        assert_eq!(ring.remove(1), Err(KeyringError::IsPrimary(1)));
        assert_eq!(ring.retire(1, t0), Err(KeyringError::IsPrimary(1)));
        assert_eq!(ring.primary(), Some(1));
        assert!(ring.seal([0; NONCE_LEN], b"still works").is_ok());
    }

    #[test]
    fn remove_drops_a_key_at_once() {
        let t0 = Instant::now();
        let mut ring = ring_with_primary(t0);
        ring.install(2, NEW, t0).unwrap();
        ring.make_primary(2).unwrap();
        let from_old = {
            let old = ring_with_primary(t0);
            old.seal([1; NONCE_LEN], b"x").unwrap()
        };
        ring.remove(1).unwrap();
        assert_eq!(ring.open(&from_old, t0), Err(KeyringError::UnknownKey(1)));
        assert_eq!(ring.remove(1), Err(KeyringError::UnknownKey(1)));
    }

    #[test]
    fn seal_without_primary_is_refused() {
        let t0 = Instant::now();
        let mut ring = Keyring::new("prod", GRACE);
        assert_eq!(ring.seal([0; NONCE_LEN], b""), Err(KeyringError::NoPrimary));
        ring.install(1, OLD, t0).unwrap();
        assert_eq!(ring.seal([0; NONCE_LEN], b""), Err(KeyringError::NoPrimary));
    }

    #[test]
    fn install_refuses_live_duplicates_and_short_secrets() {
        let t0 = Instant::now();
        let mut ring = ring_with_primary(t0);
        assert_eq!(ring.install(1, NEW, t0), Err(KeyringError::DuplicateKey(1)));
        assert_eq!(ring.install(3, b"short", t0), Err(KeyringError::SecretTooShort { id: 3, len: 5 }));
        assert_eq!(ring.key_ids().collect::<Vec<_>>(), vec![1]);
    }

    #[test]
    fn expired_id_can_be_reused_by_install() {
        let t0 = Instant::now();
        let mut ring = ring_with_primary(t0);
        ring.install(2, OLD, t0).unwrap();
        ring.retire(2, t0).unwrap();
        assert_eq!(ring.install(2, NEW, t0), Err(KeyringError::DuplicateKey(2)));
        ring.install(2, NEW, t0 + GRACE).unwrap();
        ring.make_primary(2).unwrap();
    }

    #[test]
    fn retired_key_cannot_become_primary() {
        let t0 = Instant::now();
        let mut ring = ring_with_primary(t0);
        ring.install(2, NEW, t0).unwrap();
        ring.retire(2, t0).unwrap();
        assert_eq!(ring.make_primary(2), Err(KeyringError::Retired(2)));
        assert_eq!(ring.make_primary(9), Err(KeyringError::UnknownKey(9)));
        assert_eq!(ring.primary(), Some(1));
    }

    #[test]
    fn other_cluster_and_garbage_are_rejected() {
        let t0 = Instant::now();
        let ring = ring_with_primary(t0);
        let mut staging = Keyring::new("staging", GRACE);
        staging.install(1, OLD, t0).unwrap();
        staging.make_primary(1).unwrap();
        let foreign = staging.seal([2; NONCE_LEN], b"join me").unwrap();
        assert_eq!(ring.open(&foreign, t0), Err(KeyringError::Packet(SealError::Rejected)));

        let mut rng = Bytes::new(99);
        for len in 0..200 {
            let mut garbage = rng.bytes(len);
            if len >= 2 {
                garbage[0] = seal::VERSION;
                garbage[1] = 1;
            }
            assert!(ring.open(&garbage, t0).is_err(), "len {len}");
        }
    }
}
