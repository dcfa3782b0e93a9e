//! The cluster license: a JSON document signed by an issuer key.
//!
//! A license names one cluster. Nodes bootstrapped with the same license
//! belong to it; the internode handshake refuses a peer whose license has
//! another id or cluster id ("license mismatch") or whose copy does not
//! verify under this node's issuer key ("invalid signature").
//!
//! The signature covers a fixed, line-based rendering of the fields rather
//! than the JSON text, so reformatting the file (an editor, `jq`) does not
//! break it and no canonical-JSON rules are needed.

use std::path::Path;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::{b64, unb64};

/// Domain separation: a signature made for anything else never verifies
/// as a license.
const CONTEXT: &str = "wippy-license v1";

/// Why a license or an issuer key could not be used.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum LicenseError {
    /// Not a license document (bad JSON, missing or mistyped field).
    #[error("not a license: {0}")]
    Malformed(String),
    /// The signature does not verify under the issuer key the license names.
    #[error("license signature does not verify under its issuer key")]
    BadSignature,
    /// Past `expires_at`.
    #[error("license {id} expired at {at} (unix seconds)")]
    Expired {
        /// The license id.
        id: String,
        /// Its expiry.
        at: u64,
    },
    /// A field is out of range (empty id, zero node limit).
    #[error("license field {0} is invalid")]
    Invalid(&'static str),
    /// Reading or writing a file failed.
    #[error("{path}: {error}")]
    Io {
        /// The file.
        path: String,
        /// What the OS said.
        error: String,
    },
}

/// A signed license, as stored in `license.json` and sent between nodes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct License {
    /// Unique id of this license, `lic_…`.
    pub license_id: String,
    /// The cluster the license defines.
    pub cluster_id: String,
    /// Most nodes that may be members at once.
    pub max_nodes: u32,
    /// When it was issued (unix seconds).
    pub issued_at: u64,
    /// When it stops admitting nodes (unix seconds); 0: never.
    pub expires_at: u64,
    /// The issuer's Ed25519 public key (base64).
    pub issuer_public_key: String,
    /// Ed25519 signature over the fields above (base64).
    pub signature: String,
}

impl License {
    /// Parses a license document and checks its signature (not its expiry:
    /// see [`License::check_current`]).
    pub fn parse(text: &str) -> Result<License, LicenseError> {
        let license: License = serde_json::from_str(text).map_err(|e| LicenseError::Malformed(e.to_string()))?;
        license.verify()?;
        Ok(license)
    }

    /// Reads and parses a license file.
    pub fn load(path: &Path) -> Result<License, LicenseError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| LicenseError::Io { path: path.display().to_string(), error: e.to_string() })?;
        License::parse(&text)
    }

    /// The document as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a license always serializes")
    }

    /// Checks the fields and that the signature verifies under the license's
    /// own issuer key.
    pub fn verify(&self) -> Result<(), LicenseError> {
        self.verify_with(&self.issuer_public_key)
    }

    /// Checks that the signature verifies under `issuer` (base64): a peer's
    /// copy must verify under *this* node's issuer key, not one it brings.
    pub fn verify_with(&self, issuer: &str) -> Result<(), LicenseError> {
        if self.license_id.is_empty() || self.license_id.len() > 128 {
            return Err(LicenseError::Invalid("license_id"));
        }
        if self.cluster_id.is_empty() || self.cluster_id.len() > 128 {
            return Err(LicenseError::Invalid("cluster_id"));
        }
        if self.max_nodes == 0 {
            return Err(LicenseError::Invalid("max_nodes"));
        }
        let key =
            unb64::<32>(issuer).and_then(|k| VerifyingKey::from_bytes(&k).ok()).ok_or(LicenseError::BadSignature)?;
        let sig = unb64::<64>(&self.signature).map(|s| Signature::from_bytes(&s)).ok_or(LicenseError::BadSignature)?;
        key.verify_strict(self.signed_bytes().as_bytes(), &sig).map_err(|_| LicenseError::BadSignature)
    }

    /// Fails once the license has expired at `now` (unix seconds).
    pub fn check_current(&self, now: u64) -> Result<(), LicenseError> {
        if self.expires_at != 0 && now >= self.expires_at {
            return Err(LicenseError::Expired { id: self.license_id.clone(), at: self.expires_at });
        }
        Ok(())
    }

    /// Whether `other` is a copy of the same license (same id and cluster).
    pub fn same_cluster(&self, other: &License) -> bool {
        self.license_id == other.license_id && self.cluster_id == other.cluster_id
    }

    fn signed_bytes(&self) -> String {
        format!(
            "{CONTEXT}\nlicense_id={}\ncluster_id={}\nmax_nodes={}\nissued_at={}\nexpires_at={}\nissuer={}\n",
            self.license_id, self.cluster_id, self.max_nodes, self.issued_at, self.expires_at, self.issuer_public_key
        )
    }
}

/// The key that signs licenses. Operators keep it offline; `wippy license
/// issue` creates one on first use.
pub struct IssuerKey(SigningKey);

/// The issuer key file: both halves, so `license show` of the key needs no
/// derivation and the file says which public key it stands for.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct IssuerFile {
    issuer_secret_key: String,
    issuer_public_key: String,
}

impl IssuerKey {
    /// A new key from 32 random bytes.
    pub fn from_seed(seed: [u8; 32]) -> IssuerKey {
        IssuerKey(SigningKey::from_bytes(&seed))
    }

    /// A new random key.
    pub fn generate() -> IssuerKey {
        IssuerKey::from_seed(rand::random())
    }

    /// The public half (base64), as licenses carry it.
    pub fn public_key(&self) -> String {
        b64(&self.0.verifying_key().to_bytes())
    }

    /// Reads an issuer key file.
    pub fn load(path: &Path) -> Result<IssuerKey, LicenseError> {
        let io = |e: std::io::Error| LicenseError::Io { path: path.display().to_string(), error: e.to_string() };
        let text = std::fs::read_to_string(path).map_err(io)?;
        let file: IssuerFile = serde_json::from_str(&text)
            .map_err(|e| LicenseError::Malformed(format!("issuer key {}: {e}", path.display())))?;
        let seed = unb64::<32>(&file.issuer_secret_key).ok_or(LicenseError::Invalid("issuer_secret_key"))?;
        let key = IssuerKey::from_seed(seed);
        if key.public_key() != file.issuer_public_key {
            return Err(LicenseError::Invalid("issuer_public_key"));
        }
        Ok(key)
    }

    /// Writes the key file, readable by its owner only.
    pub fn save(&self, path: &Path) -> Result<(), LicenseError> {
        let file = IssuerFile { issuer_secret_key: b64(&self.0.to_bytes()), issuer_public_key: self.public_key() };
        let text = serde_json::to_string_pretty(&file).expect("an issuer key always serializes");
        super::write_atomic(path, &text, true)
            .map_err(|e| LicenseError::Io { path: path.display().to_string(), error: e.to_string() })
    }

    /// Signs a license for `cluster_id`.
    pub fn issue(
        &self,
        license_id: String,
        cluster_id: String,
        max_nodes: u32,
        issued_at: u64,
        expires_at: u64,
    ) -> License {
        let mut license = License {
            license_id,
            cluster_id,
            max_nodes,
            issued_at,
            expires_at,
            issuer_public_key: self.public_key(),
            signature: String::new(),
        };
        license.signature = b64(&self.0.sign(license.signed_bytes().as_bytes()).to_bytes());
        license
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issuer(seed: u8) -> IssuerKey {
        IssuerKey::from_seed([seed; 32])
    }

    fn license(key: &IssuerKey) -> License {
        key.issue("lic_1".into(), "cluster-a".into(), 3, 1_000, 2_000)
    }

    #[test]
    fn an_issued_license_round_trips_through_json() {
        let l = license(&issuer(1));
        let parsed = License::parse(&l.to_json()).unwrap();
        assert_eq!(parsed, l);
        // Reformatting the document keeps it valid.
        let compact = serde_json::to_string(&l).unwrap();
        assert_eq!(License::parse(&compact).unwrap(), l);
    }

    #[test]
    fn any_changed_field_breaks_the_signature() {
        let l = license(&issuer(1));
        let mut more = l.clone();
        more.max_nodes = 100;
        assert_eq!(more.verify(), Err(LicenseError::BadSignature));
        let mut later = l.clone();
        later.expires_at = 0;
        assert_eq!(later.verify(), Err(LicenseError::BadSignature));
        // Swapping in another issuer's key does not help: the signature is
        // over the key too.
        let mut swapped = l.clone();
        swapped.issuer_public_key = issuer(2).public_key();
        assert_eq!(swapped.verify(), Err(LicenseError::BadSignature));
    }

    #[test]
    fn a_forged_copy_verifies_under_its_own_key_only() {
        let (real, forger) = (issuer(1), issuer(2));
        let forged = forger.issue("lic_1".into(), "cluster-a".into(), 3, 1_000, 2_000);
        assert!(forged.verify().is_ok(), "self-consistent");
        assert!(forged.same_cluster(&license(&real)));
        assert_eq!(forged.verify_with(&real.public_key()), Err(LicenseError::BadSignature));
    }

    #[test]
    fn expiry_is_checked_against_the_given_time() {
        let l = license(&issuer(1));
        assert!(l.check_current(1_999).is_ok());
        assert!(matches!(l.check_current(2_000), Err(LicenseError::Expired { at: 2_000, .. })));
        let forever = issuer(1).issue("lic_2".into(), "c".into(), 1, 0, 0);
        assert!(forever.check_current(u64::MAX).is_ok());
    }

    #[test]
    fn malformed_documents_name_the_problem() {
        assert!(matches!(License::parse("{"), Err(LicenseError::Malformed(_))));
        let mut v: serde_json::Value = serde_json::from_str(&license(&issuer(1)).to_json()).unwrap();
        v["extra"] = 1.into();
        let err = License::parse(&v.to_string()).unwrap_err();
        assert!(err.to_string().contains("extra"), "{err}");
        let zero = issuer(1).issue("lic".into(), "c".into(), 0, 0, 0);
        assert_eq!(zero.verify(), Err(LicenseError::Invalid("max_nodes")));
    }

    #[test]
    fn issuer_key_files_round_trip() {
        let dir = std::env::temp_dir().join(format!("wippy-issuer-{}", std::process::id()));
        let path = dir.join("issuer.key");
        let key = issuer(7);
        key.save(&path).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let back = IssuerKey::load(&path).unwrap();
        assert_eq!(back.public_key(), key.public_key());
        let _ = std::fs::remove_dir_all(dir);
    }
}
