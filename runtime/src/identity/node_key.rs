//! The node's Ed25519 key pair and the peer id derived from it.
//!
//! The key is made on first start and kept in `<data_dir>/identity.json`
//! (owner-only). The peer id is a hash of the public key, so it survives
//! restarts, and anyone can check that a signed statement about a peer id
//! (a deactivation, a handshake proof) came from the holder of the key.

use std::path::{Path, PathBuf};

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

use super::{b64, hex, unb64, write_atomic};

/// The file name under the data dir.
pub const FILE: &str = "identity.json";

/// Why the identity could not be loaded or created.
#[derive(Debug, Error)]
pub enum KeyError {
    /// Reading or writing the file failed.
    #[error("node identity {path}: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        error: std::io::Error,
    },
    /// The file exists but is not an identity this node can use.
    #[error("node identity {path} is corrupt ({why}); move it away to make a new identity")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: &'static str,
    },
}

/// A node's signing key.
#[derive(Clone)]
pub struct NodeKey {
    key: SigningKey,
    peer_id: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    peer_id: String,
    public_key: String,
    secret_key: String,
}

impl std::fmt::Debug for NodeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeKey").field("peer_id", &self.peer_id).finish_non_exhaustive()
    }
}

/// The peer id of a public key: `p` and the first 12 bytes of its SHA-256.
pub fn peer_id_of(public_key: &[u8; 32]) -> String {
    format!("p{}", hex(&Sha256::digest(public_key)[..12]))
}

/// Checks an Ed25519 signature by `public_key` over `message`.
pub fn verify(public_key: &[u8; 32], message: &[u8], signature: &[u8; 64]) -> bool {
    VerifyingKey::from_bytes(public_key)
        .is_ok_and(|k| k.verify_strict(message, &Signature::from_bytes(signature)).is_ok())
}

impl NodeKey {
    /// A key from a 32-byte seed.
    pub fn from_seed(seed: [u8; 32]) -> NodeKey {
        let key = SigningKey::from_bytes(&seed);
        let peer_id = peer_id_of(&key.verifying_key().to_bytes());
        NodeKey { key, peer_id }
    }

    /// Loads `<dir>/identity.json`, or creates it with a new random key.
    pub fn load_or_create(dir: &Path) -> Result<NodeKey, KeyError> {
        let path = dir.join(FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let corrupt = |why| KeyError::Corrupt { path: path.clone(), why };
                let file: KeyFile = serde_json::from_str(&text).map_err(|_| corrupt("not an identity file"))?;
                let seed = unb64::<32>(&file.secret_key).ok_or_else(|| corrupt("bad secret_key"))?;
                let key = NodeKey::from_seed(seed);
                if key.public_key_b64() != file.public_key || key.peer_id != file.peer_id {
                    return Err(corrupt("the public key or peer id does not match the secret key"));
                }
                Ok(key)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = NodeKey::from_seed(rand::random());
                let file = KeyFile {
                    peer_id: key.peer_id.clone(),
                    public_key: key.public_key_b64(),
                    secret_key: b64(&key.key.to_bytes()),
                };
                let text = serde_json::to_string_pretty(&file).expect("an identity always serializes");
                write_atomic(&path, &text, true).map_err(|error| KeyError::Io { path: path.clone(), error })?;
                tracing::info!(peer_id = %key.peer_id, path = %path.display(), "created a node identity");
                Ok(key)
            }
            Err(error) => Err(KeyError::Io { path, error }),
        }
    }

    /// The stable peer id.
    pub fn peer_id(&self) -> &str {
        &self.peer_id
    }

    /// The public key bytes.
    pub fn public_key(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }

    /// The public key as base64.
    pub fn public_key_b64(&self) -> String {
        b64(&self.public_key())
    }

    /// Signs `message`.
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.key.sign(message).to_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_identity_is_created_once_and_kept() {
        let dir = std::env::temp_dir().join(format!("wippy-nodekey-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let first = NodeKey::load_or_create(&dir).unwrap();
        let again = NodeKey::load_or_create(&dir).unwrap();
        assert_eq!(first.peer_id(), again.peer_id());
        assert_eq!(first.public_key(), again.public_key());
        assert!(first.peer_id().starts_with('p') && first.peer_id().len() == 25);

        std::fs::write(dir.join(FILE), "{}").unwrap();
        let err = NodeKey::load_or_create(&dir).unwrap_err();
        assert!(err.to_string().contains("corrupt"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn signatures_verify_only_for_their_key_and_message() {
        let (a, b) = (NodeKey::from_seed([1; 32]), NodeKey::from_seed([2; 32]));
        let sig = a.sign(b"hello");
        assert!(verify(&a.public_key(), b"hello", &sig));
        assert!(!verify(&a.public_key(), b"hellO", &sig));
        assert!(!verify(&b.public_key(), b"hello", &sig));
        assert_ne!(a.peer_id(), b.peer_id());
        assert_eq!(peer_id_of(&a.public_key()), a.peer_id());
    }
}
