//! Authenticated encryption of one gossip datagram under one key.
//!
//! Packet layout:
//!
//! ```text
//! [version = 1][key_id][nonce: 24 bytes][ciphertext || tag: 16 bytes]
//! ```
//!
//! The cipher is XChaCha20-Poly1305. Its 192-bit nonce is large enough to
//! draw at random for every datagram without tracking a counter, which suits
//! UDP, where nothing orders the packets. The nonce is an input here: the
//! caller owns the random source, so this code stays deterministic under test.
//!
//! The associated data is `[version, key_id] ++ cluster name`. Binding the
//! header means a flipped version or key id fails authentication rather than
//! being trusted; binding the cluster name means two clusters that happen to
//! share a secret still cannot read or inject each other's traffic.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use sha2::Sha256;
use thiserror::Error;

/// The only packet version this node writes and reads.
pub(crate) const VERSION: u8 = 1;

/// Length of the XChaCha20 nonce carried in every packet.
pub(crate) const NONCE_LEN: usize = 24;

/// Length of the Poly1305 tag appended to the ciphertext.
const TAG_LEN: usize = 16;

/// Version byte, key id and nonce.
const HEADER_LEN: usize = 2 + NONCE_LEN;

/// Bytes a sealed packet adds to its plaintext. The gossip layer subtracts
/// this from the datagram budget so sealed packets still fit one MTU.
pub(crate) const OVERHEAD: usize = HEADER_LEN + TAG_LEN;

/// HKDF `info` for the gossip key. Versioned so a future format derives a
/// different key from the same secret instead of reusing this one.
const HKDF_INFO: &[u8] = b"gossip-aead v1";

/// Why a packet could not be opened. Opening never changes any state, so
/// every variant means only "drop this datagram".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub(crate) enum SealError {
    /// The packet is shorter than [`OVERHEAD`], so it cannot hold a header
    /// and a tag.
    #[error("packet of {len} bytes is shorter than the {OVERHEAD}-byte envelope")]
    TooShort {
        /// Length of the packet received.
        len: usize,
    },
    /// The first byte names a format this node does not speak.
    #[error("unknown packet version {0}")]
    UnknownVersion(u8),
    /// Authentication failed: wrong secret, wrong cluster, or the packet was
    /// altered in transit. Deliberately says no more than that.
    #[error("packet failed authentication")]
    Rejected,
}

/// The header fields of a packet that passed the length and version checks.
/// Nothing here is authenticated yet; it only says which key to try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    /// Id of the key the sender claims to have used.
    pub(crate) key_id: u8,
}

/// Reads the header without decrypting, so a keyring can pick the key.
pub(crate) fn peek(packet: &[u8]) -> Result<Header, SealError> {
    if packet.len() < OVERHEAD {
        return Err(SealError::TooShort { len: packet.len() });
    }
    if packet[0] != VERSION {
        return Err(SealError::UnknownVersion(packet[0]));
    }
    Ok(Header { key_id: packet[1] })
}

/// Seals and opens packets with one key derived from a cluster secret.
pub(crate) struct Sealer {
    cipher: XChaCha20Poly1305,
    cluster: Vec<u8>,
}

impl std::fmt::Debug for Sealer {
    /// Leaves the key out so a sealer can sit in logged structs safely.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer").field("cluster", &String::from_utf8_lossy(&self.cluster)).finish_non_exhaustive()
    }
}

impl Sealer {
    /// Derives the AEAD key with HKDF-SHA256, salted with the cluster name.
    /// Operators paste secrets of any shape into config; HKDF turns each into
    /// a uniform 32-byte key, and the salt gives every cluster its own key
    /// even when secrets are copied between them.
    pub(crate) fn new(secret: &[u8], cluster: &str) -> Self {
        let mut key = [0u8; 32];
        Hkdf::<Sha256>::new(Some(cluster.as_bytes()), secret)
            .expand(HKDF_INFO, &mut key)
            .expect("32 bytes is far below HKDF-SHA256's 8160-byte output limit");
        let cipher = XChaCha20Poly1305::new(&Key::from(key));
        Self { cipher, cluster: cluster.as_bytes().to_vec() }
    }

    /// Seals `plaintext` into a packet labelled with `key_id`. The `nonce`
    /// must never repeat under one key; 24 random bytes per call suffice.
    pub(crate) fn seal(&self, key_id: u8, nonce: [u8; NONCE_LEN], plaintext: &[u8]) -> Vec<u8> {
        let aad = self.aad(VERSION, key_id);
        let ciphertext = self
            .cipher
            .encrypt(&XNonce::from(nonce), Payload { msg: plaintext, aad: &aad })
            .expect("XChaCha20-Poly1305 only refuses messages over 256 GiB");
        let mut packet = Vec::with_capacity(HEADER_LEN + ciphertext.len());
        packet.push(VERSION);
        packet.push(key_id);
        packet.extend_from_slice(&nonce);
        packet.extend_from_slice(&ciphertext);
        packet
    }

    /// Opens a packet and returns the key id from its header with the
    /// plaintext. Any byte string is a valid input: garbage yields an error.
    pub(crate) fn open(&self, packet: &[u8]) -> Result<(u8, Vec<u8>), SealError> {
        let Header { key_id } = peek(packet)?;
        let (nonce, ciphertext) = packet[2..].split_at(NONCE_LEN);
        let nonce = XNonce::try_from(nonce).map_err(|_| SealError::Rejected)?;
        let aad = self.aad(VERSION, key_id);
        let plaintext =
            self.cipher.decrypt(&nonce, Payload { msg: ciphertext, aad: &aad }).map_err(|_| SealError::Rejected)?;
        Ok((key_id, plaintext))
    }

    fn aad(&self, version: u8, key_id: u8) -> Vec<u8> {
        let mut aad = Vec::with_capacity(2 + self.cluster.len());
        aad.push(version);
        aad.push(key_id);
        aad.extend_from_slice(&self.cluster);
        aad
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub(crate) use crate::cluster::testing::SplitMix64 as Bytes;

    fn sealer() -> Sealer {
        Sealer::new(b"correct horse battery staple", "prod")
    }

    #[test]
    fn round_trip_returns_plaintext_and_key_id() {
        let sealer = sealer();
        let mut rng = Bytes::new(1);
        for len in [0, 1, 100, 1359] {
            let plaintext = rng.bytes(len);
            let packet = sealer.seal(7, rng.nonce(), &plaintext);
            assert_eq!(packet.len(), len + OVERHEAD);
            assert_eq!(sealer.open(&packet), Ok((7, plaintext)));
        }
    }

    #[test]
    fn overhead_is_header_plus_tag() {
        assert_eq!(OVERHEAD, 42);
    }

    #[test]
    fn other_secret_or_cluster_is_rejected() {
        let packet = sealer().seal(1, [3; NONCE_LEN], b"ping");
        let other_secret = Sealer::new(b"wrong secret", "prod");
        let other_cluster = Sealer::new(b"correct horse battery staple", "staging");
        assert_eq!(other_secret.open(&packet), Err(SealError::Rejected));
        assert_eq!(other_cluster.open(&packet), Err(SealError::Rejected));
    }

    #[test]
    fn every_truncation_is_an_error() {
        let sealer = sealer();
        let packet = sealer.seal(1, [9; NONCE_LEN], b"a gossip message");
        for len in 0..packet.len() {
            let err = sealer.open(&packet[..len]).unwrap_err();
            if len < OVERHEAD {
                assert_eq!(err, SealError::TooShort { len });
            } else {
                assert_eq!(err, SealError::Rejected);
            }
        }
    }

    #[test]
    fn random_garbage_is_an_error() {
        let sealer = sealer();
        let mut rng = Bytes::new(42);
        for len in 0..200 {
            for round in 0..8 {
                let mut garbage = rng.bytes(len);
                // Half the rounds carry a valid header so decryption is
                // actually attempted, not just the length check.
                if round % 2 == 0 && len >= 2 {
                    garbage[0] = VERSION;
                }
                assert!(sealer.open(&garbage).is_err(), "len {len} round {round}");
            }
        }
    }

    #[test]
    fn any_flipped_bit_is_rejected() {
        let sealer = sealer();
        let packet = sealer.seal(5, Bytes::new(3).nonce(), b"suspect node-b");
        for bit in 0..packet.len() * 8 {
            let mut bad = packet.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            let err = sealer.open(&bad).unwrap_err();
            if bit < 8 {
                assert_eq!(err, SealError::UnknownVersion(bad[0]));
            } else {
                assert_eq!(err, SealError::Rejected, "bit {bit}");
            }
        }
    }

    #[test]
    fn debug_does_not_print_the_key() {
        let shown = format!("{:?}", sealer());
        assert!(shown.contains("prod"));
        assert!(!shown.contains("cipher"));
    }
}
