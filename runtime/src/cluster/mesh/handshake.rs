//! The Noise handshake that opens every internode connection.
//!
//! Pattern: `Noise_XXpsk3_25519_ChaChaPoly_BLAKE2s`. Each node has its own
//! static X25519 key, and the pre-shared key is derived from the cluster
//! secret, so a connection proves both "this is node X" and "X belongs to this
//! cluster". Four flights go over the wire:
//!
//! ```text
//! 1. I -> R  [key id] e                  clear key id, then Noise message 1
//! 2. R -> I  e, ee, s, es                Noise message 2, empty payload
//! 3. I -> R  s, se, psk  + I's name      Noise message 3
//! 4. R -> I  transport(R's name)         first transport message
//! ```
//!
//! The key id travels in the clear because the responder has to pick the
//! pre-shared key before it can read anything; it is also fed into the Noise
//! prologue, so a flipped id makes the handshake fail instead of silently
//! switching keys. In XXpsk3 the pre-shared key is only mixed in at message 3,
//! so message 2 cannot prove anything about the cluster secret. The responder
//! therefore keeps its name out of message 2 (a stranger without the secret
//! learns nothing but a static key) and sends it in flight 4 instead, which
//! also confirms to the initiator that the responder holds the same secret.
//!
//! Nothing here touches a socket or a clock. Each side is an enum state
//! machine: a step consumes the peer's bytes and returns the bytes to send and
//! the next state ([`Step`]). Randomness comes from snow's resolver (the OS
//! generator via `getrandom`), which Noise needs for its ephemeral keys.
//! Any error ends the handshake; the caller closes the connection.

use hkdf::Hkdf;
use sha2::Sha256;
use snow::params::NoiseParams;
use snow::{Builder, HandshakeState, TransportState};
use thiserror::Error;

/// The Noise protocol name both sides must agree on.
pub(crate) const PATTERN: &str = "Noise_XXpsk3_25519_ChaChaPoly_BLAKE2s";

/// HKDF info label for the pre-shared key. Versioned so a future scheme can
/// derive a different key from the same secret.
const PSK_INFO: &[u8] = b"mesh-noise-psk v1";

/// Prefix of the Noise prologue; the key id byte follows it.
const PROLOGUE: &[u8] = b"wippy mesh v1";

/// Noise caps every message, handshake or transport, at 65535 bytes.
pub(crate) const MAX_MESSAGE: usize = 65535;

/// Authentication tag that Noise adds to every encrypted payload.
const TAG_LEN: usize = 16;

/// The largest plaintext one [`Transport::encrypt`] call accepts; bigger
/// payloads must be cut into chunks by the caller.
pub(crate) const MAX_CHUNK: usize = MAX_MESSAGE - TAG_LEN;

/// Node names longer than this are refused in the handshake.
pub(crate) const MAX_NAME_LEN: usize = 255;

/// Why a handshake (or a transport message) was refused. Every variant ends
/// the connection; none of them leaves reusable state behind.
#[derive(Debug, Error)]
pub(crate) enum HandshakeError {
    /// The initiator named a key id this node does not hold. Usually a
    /// rotation step that has not reached this node yet.
    #[error("peer uses cluster key {0}, which this node does not have")]
    UnknownKey(u8),
    /// The peer's handshake did not authenticate under our key. The ids
    /// matched, so the secrets behind them differ.
    #[error("peer's cluster secret differs from ours (authentication failed)")]
    WrongSecret,
    /// The bytes cannot be read as this step's message: wrong length, bad
    /// key material, or a transport message that fails authentication.
    #[error("malformed handshake message")]
    Malformed,
    /// The message was read, but its content is not what this step expects
    /// (a payload where none belongs, or a missing or invalid node name).
    #[error("unexpected handshake message")]
    UnexpectedMessage,
    /// A plaintext passed to [`Transport::encrypt`] exceeds [`MAX_CHUNK`].
    #[error("chunk of {0} bytes exceeds the {MAX_CHUNK}-byte limit")]
    ChunkTooLarge(usize),
    /// snow could not set up or run the protocol (for example, no
    /// randomness). Not caused by the peer.
    #[error("noise failure: {0}")]
    Noise(snow::Error),
}

/// Result of a handshake step.
pub(crate) type Result<T> = std::result::Result<T, HandshakeError>;

/// Derives the mesh pre-shared key from a cluster secret, salted with the
/// cluster name, so the gossip key and the mesh key never coincide and two
/// clusters sharing a secret still cannot talk to each other.
pub(crate) fn mesh_psk(cluster: &str, secret: &[u8]) -> [u8; 32] {
    let mut psk = [0u8; 32];
    Hkdf::<Sha256>::new(Some(cluster.as_bytes()), secret)
        .expand(PSK_INFO, &mut psk)
        .expect("32 bytes is far below HKDF-SHA256's 8160-byte output limit");
    psk
}

/// Generates a fresh static X25519 private key for a node.
#[cfg(test)]
pub(crate) fn generate_static_key() -> Result<[u8; 32]> {
    let keypair = Builder::new(params()).generate_keypair().map_err(HandshakeError::Noise)?;
    keypair.private.try_into().map_err(|_| HandshakeError::Noise(snow::Error::Input))
}

/// Generates a fresh static X25519 key pair: (private, public).
pub(crate) fn generate_static_keypair() -> Result<([u8; 32], [u8; 32])> {
    let keypair = Builder::new(params()).generate_keypair().map_err(HandshakeError::Noise)?;
    let bad = |_| HandshakeError::Noise(snow::Error::Input);
    Ok((keypair.private.try_into().map_err(bad)?, keypair.public.try_into().map_err(bad)?))
}

/// Who this node is: its name and its static private key.
#[derive(Clone)]
pub(crate) struct Identity {
    name: String,
    static_key: [u8; 32],
}

impl Identity {
    /// Fails with [`HandshakeError::UnexpectedMessage`] if `name` could not
    /// be sent in a handshake (empty or longer than [`MAX_NAME_LEN`]).
    pub(crate) fn new(name: impl Into<String>, static_key: [u8; 32]) -> Result<Self> {
        let name = name.into();
        check_name(name.as_bytes())?;
        Ok(Self { name, static_key })
    }
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The private key stays out of logs.
        f.debug_struct("Identity").field("name", &self.name).finish_non_exhaustive()
    }
}

/// What a step produced.
#[derive(Debug)]
pub(crate) enum Step<S> {
    /// Send these bytes, then feed the peer's reply to the returned state.
    Reply(Vec<u8>, S),
    /// The handshake is over. Send the bytes first, if any.
    Established(Option<Vec<u8>>, Established),
}

/// A finished handshake: who the peer is and the keys to talk to it.
#[derive(Debug)]
pub(crate) struct Established {
    /// The name the peer sent, authenticated by the handshake.
    pub(crate) peer_name: String,
    /// The peer's static X25519 public key; its admission hello must be
    /// signed over it.
    pub(crate) peer_static: [u8; 32],
    /// Encrypts and decrypts the rest of the connection.
    pub(crate) transport: Transport,
}

/// Noise transport keys for one connection. Messages must be decrypted in the
/// order they were encrypted, which TCP already guarantees.
#[derive(Debug)]
pub(crate) struct Transport(Box<TransportState>);

impl Transport {
    /// Encrypts one chunk of at most [`MAX_CHUNK`] bytes.
    pub(crate) fn encrypt(&mut self, chunk: &[u8]) -> Result<Vec<u8>> {
        if chunk.len() > MAX_CHUNK {
            return Err(HandshakeError::ChunkTooLarge(chunk.len()));
        }
        let mut out = vec![0u8; chunk.len() + TAG_LEN];
        let len = self.0.write_message(chunk, &mut out).map_err(HandshakeError::Noise)?;
        out.truncate(len);
        Ok(out)
    }

    /// Decrypts one message produced by the peer's [`Transport::encrypt`].
    /// A failure means the stream was corrupted or tampered with.
    pub(crate) fn decrypt(&mut self, message: &[u8]) -> Result<Vec<u8>> {
        if message.len() < TAG_LEN || message.len() > MAX_MESSAGE {
            return Err(HandshakeError::Malformed);
        }
        let mut out = vec![0u8; message.len()];
        let len = self.0.read_message(message, &mut out).map_err(|_| HandshakeError::Malformed)?;
        out.truncate(len);
        Ok(out)
    }
}

/// The side that opened the connection.
#[derive(Debug)]
pub(crate) enum Initiator {
    /// Flight 1 is sent; waiting for the responder's Noise message 2.
    AwaitingResponse {
        /// Handshake in progress.
        noise: Box<HandshakeState>,
        /// Our name, sent in message 3.
        name: String,
    },
    /// Flight 3 is sent; waiting for the responder's name, which also proves
    /// it holds the same secret.
    AwaitingConfirm {
        /// Keys already derived; the confirmation is their first use.
        transport: Box<TransportState>,
        /// The responder's static key, learned from message 2.
        peer_static: [u8; 32],
    },
}

impl Initiator {
    /// Starts a handshake with the key `key_id` (normally the primary) and
    /// its pre-shared key. Returns the state and flight 1.
    pub(crate) fn start(identity: &Identity, key_id: u8, psk: &[u8; 32]) -> Result<(Self, Vec<u8>)> {
        let mut noise = build(identity, key_id, psk, true)?;
        let mut out = vec![0u8; MAX_MESSAGE];
        out[0] = key_id;
        let len = noise.write_message(&[], &mut out[1..]).map_err(HandshakeError::Noise)?;
        out.truncate(1 + len);
        let state = Self::AwaitingResponse { noise: Box::new(noise), name: identity.name.clone() };
        Ok((state, out))
    }

    /// Consumes the responder's next message.
    pub(crate) fn next(self, message: &[u8]) -> Result<Step<Self>> {
        match self {
            Self::AwaitingResponse { mut noise, name } => {
                // The PSK is not in play yet, so a failure here is bad bytes,
                // not a secret mismatch.
                let payload = read(&mut noise, message, HandshakeError::Malformed)?;
                if !payload.is_empty() {
                    return Err(HandshakeError::UnexpectedMessage);
                }
                let peer_static = remote_static(&noise)?;
                let mut out = vec![0u8; MAX_MESSAGE];
                let len = noise.write_message(name.as_bytes(), &mut out).map_err(HandshakeError::Noise)?;
                out.truncate(len);
                let transport = noise.into_transport_mode().map_err(HandshakeError::Noise)?;
                Ok(Step::Reply(out, Self::AwaitingConfirm { transport: Box::new(transport), peer_static }))
            }
            Self::AwaitingConfirm { transport, peer_static } => {
                let mut transport = Transport(transport);
                // This is the first message under keys that include the PSK;
                // if it does not open, the responder derived other keys.
                let name = transport.decrypt(message).map_err(|_| HandshakeError::WrongSecret)?;
                let peer_name = parse_name(name)?;
                Ok(Step::Established(None, Established { peer_name, peer_static, transport }))
            }
        }
    }
}

/// The side that accepted the connection, after flight 1.
#[derive(Debug)]
pub(crate) struct Responder {
    noise: Box<HandshakeState>,
    name: String,
}

impl Responder {
    /// Reads flight 1, picks the pre-shared key named by its first byte via
    /// `psk_for`, and returns the state and flight 2.
    pub(crate) fn accept(
        identity: &Identity,
        message: &[u8],
        psk_for: impl Fn(u8) -> Option<[u8; 32]>,
    ) -> Result<(Self, Vec<u8>)> {
        let (&key_id, rest) = message.split_first().ok_or(HandshakeError::Malformed)?;
        let psk = psk_for(key_id).ok_or(HandshakeError::UnknownKey(key_id))?;
        let mut noise = build(identity, key_id, &psk, false)?;
        let payload = read(&mut noise, rest, HandshakeError::Malformed)?;
        if !payload.is_empty() {
            return Err(HandshakeError::UnexpectedMessage);
        }
        let mut out = vec![0u8; MAX_MESSAGE];
        let len = noise.write_message(&[], &mut out).map_err(HandshakeError::Noise)?;
        out.truncate(len);
        Ok((Self { noise: Box::new(noise), name: identity.name.clone() }, out))
    }

    /// Reads flight 3. On success the handshake is complete; the returned
    /// bytes (flight 4, our name) must be sent before any other traffic.
    pub(crate) fn next(self, message: &[u8]) -> Result<Step<Self>> {
        let Self { mut noise, name } = self;
        // Message 3 is the first one sealed under the PSK.
        let payload = read(&mut noise, message, HandshakeError::WrongSecret)?;
        let peer_name = parse_name(payload)?;
        let peer_static = remote_static(&noise)?;
        let mut transport = Transport(Box::new(noise.into_transport_mode().map_err(HandshakeError::Noise)?));
        let confirm = transport.encrypt(name.as_bytes())?;
        Ok(Step::Established(Some(confirm), Established { peer_name, peer_static, transport }))
    }
}

fn params() -> NoiseParams {
    PATTERN.parse().expect("the pattern constant is a valid Noise protocol name")
}

/// Sets up one side of the handshake. The prologue binds the clear key id
/// into the transcript.
fn build(identity: &Identity, key_id: u8, psk: &[u8; 32], initiator: bool) -> Result<HandshakeState> {
    let mut prologue = PROLOGUE.to_vec();
    prologue.push(key_id);
    let builder = Builder::new(params())
        .local_private_key(&identity.static_key)
        .and_then(|b| b.psk(3, psk))
        .and_then(|b| b.prologue(&prologue))
        .map_err(HandshakeError::Noise)?;
    let state = if initiator { builder.build_initiator() } else { builder.build_responder() };
    state.map_err(HandshakeError::Noise)
}

/// Reads a handshake message. A decryption failure becomes `on_decrypt`,
/// since only the caller knows whether the PSK was involved; anything else
/// snow rejects is malformed input.
fn read(noise: &mut HandshakeState, message: &[u8], on_decrypt: HandshakeError) -> Result<Vec<u8>> {
    if message.is_empty() || message.len() > MAX_MESSAGE {
        return Err(HandshakeError::Malformed);
    }
    let mut payload = vec![0u8; message.len()];
    match noise.read_message(message, &mut payload) {
        Ok(len) => {
            payload.truncate(len);
            Ok(payload)
        }
        Err(snow::Error::Decrypt) => Err(on_decrypt),
        Err(_) => Err(HandshakeError::Malformed),
    }
}

fn remote_static(noise: &HandshakeState) -> Result<[u8; 32]> {
    noise.get_remote_static().and_then(|key| key.try_into().ok()).ok_or(HandshakeError::UnexpectedMessage)
}

fn check_name(name: &[u8]) -> Result<()> {
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(HandshakeError::UnexpectedMessage);
    }
    Ok(())
}

fn parse_name(payload: Vec<u8>) -> Result<String> {
    check_name(&payload)?;
    String::from_utf8(payload).map_err(|_| HandshakeError::UnexpectedMessage)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLUSTER: &str = "test-cluster";

    fn identity(name: &str) -> Identity {
        Identity::new(name, generate_static_key().unwrap()).unwrap()
    }

    fn psk(secret: &str) -> [u8; 32] {
        mesh_psk(CLUSTER, secret.as_bytes())
    }

    fn keys<'a>(known: &'a [(u8, &'static str)]) -> impl Fn(u8) -> Option<[u8; 32]> + 'a {
        move |id| known.iter().find(|(k, _)| *k == id).map(|(_, s)| psk(s))
    }

    fn reply<S: std::fmt::Debug>(step: Step<S>) -> (Vec<u8>, S) {
        match step {
            Step::Reply(bytes, state) => (bytes, state),
            other => panic!("expected a reply, got {other:?}"),
        }
    }

    fn established<S: std::fmt::Debug>(step: Step<S>) -> (Option<Vec<u8>>, Established) {
        match step {
            Step::Established(bytes, est) => (bytes, est),
            other => panic!("expected completion, got {other:?}"),
        }
    }

    /// Runs a whole handshake; returns (initiator's view, responder's view).
    fn handshake(
        key_id: u8,
        secret: &'static str,
        responder_keys: &[(u8, &'static str)],
    ) -> Result<(Established, Established)> {
        let (alice, bob) = (identity("alice"), identity("bob"));
        let (init, m1) = Initiator::start(&alice, key_id, &psk(secret))?;
        let (resp, m2) = Responder::accept(&bob, &m1, keys(responder_keys))?;
        let (m3, init) = reply(init.next(&m2)?);
        let (m4, bob_view) = established(resp.next(&m3)?);
        let (none, alice_view) = established(init.next(&m4.unwrap())?);
        assert!(none.is_none());
        Ok((alice_view, bob_view))
    }

    #[test]
    fn both_sides_complete_and_exchange_messages() {
        let (mut a, mut b) = handshake(1, "secret one", &[(1, "secret one")]).unwrap();
        assert_eq!(a.peer_name, "bob");
        assert_eq!(b.peer_name, "alice");

        let sealed = a.transport.encrypt(b"ping").unwrap();
        assert_ne!(&sealed[..], b"ping");
        assert_eq!(b.transport.decrypt(&sealed).unwrap(), b"ping");
        let sealed = b.transport.encrypt(b"pong").unwrap();
        assert_eq!(a.transport.decrypt(&sealed).unwrap(), b"pong");

        let big = vec![7u8; MAX_CHUNK];
        let sealed = a.transport.encrypt(&big).unwrap();
        assert_eq!(sealed.len(), MAX_MESSAGE);
        assert_eq!(b.transport.decrypt(&sealed).unwrap(), big);
        assert!(matches!(
            a.transport.encrypt(&vec![0u8; MAX_CHUNK + 1]),
            Err(HandshakeError::ChunkTooLarge(n)) if n == MAX_CHUNK + 1
        ));
    }

    #[test]
    fn static_keys_are_learned() {
        let pair = |name: &str| {
            let kp = Builder::new(params()).generate_keypair().unwrap();
            (Identity::new(name, kp.private.try_into().unwrap()).unwrap(), kp.public)
        };
        let ((alice, alice_pub), (bob, bob_pub)) = (pair("alice"), pair("bob"));
        let (init, m1) = Initiator::start(&alice, 1, &psk("s")).unwrap();
        let (resp, m2) = Responder::accept(&bob, &m1, keys(&[(1, "s")])).unwrap();
        let (m3, init) = reply(init.next(&m2).unwrap());
        let (m4, bob_view) = established(resp.next(&m3).unwrap());
        let (_, alice_view) = established(init.next(&m4.unwrap()).unwrap());
        assert_eq!(alice_view.peer_static.as_slice(), bob_pub.as_slice());
        assert_eq!(bob_view.peer_static.as_slice(), alice_pub.as_slice());
    }

    #[test]
    fn different_secret_is_refused() {
        let err = handshake(1, "ours", &[(1, "theirs")]).unwrap_err();
        assert!(matches!(err, HandshakeError::WrongSecret), "{err:?}");
        assert!(err.to_string().contains("cluster secret differs"));
    }

    #[test]
    fn same_secret_other_cluster_is_refused() {
        let (alice, bob) = (identity("alice"), identity("bob"));
        let (init, m1) = Initiator::start(&alice, 1, &mesh_psk("a", b"shared")).unwrap();
        let (resp, m2) = Responder::accept(&bob, &m1, |_| Some(mesh_psk("b", b"shared"))).unwrap();
        let (m3, _) = reply(init.next(&m2).unwrap());
        assert!(matches!(resp.next(&m3), Err(HandshakeError::WrongSecret)));
    }

    #[test]
    fn initiator_refuses_confirmation_under_other_keys() {
        // A responder that got this far with another secret (or an attacker
        // replaying bytes) cannot produce a confirmation the initiator opens.
        let (alice, bob) = (identity("alice"), identity("bob"));
        let (init, m1) = Initiator::start(&alice, 1, &psk("ours")).unwrap();
        let (_, m2) = Responder::accept(&bob, &m1, keys(&[(1, "theirs")])).unwrap();
        let (_, init) = reply(init.next(&m2).unwrap());
        let (mut x, _) = handshake(1, "theirs", &[(1, "theirs")]).unwrap();
        let forged = x.transport.encrypt(b"bob").unwrap();
        assert!(matches!(init.next(&forged), Err(HandshakeError::WrongSecret)));
    }

    #[test]
    fn unknown_key_id_is_refused() {
        let (_, m1) = Initiator::start(&identity("alice"), 9, &psk("s")).unwrap();
        let err = Responder::accept(&identity("bob"), &m1, keys(&[(1, "s"), (2, "s")])).unwrap_err();
        assert!(matches!(err, HandshakeError::UnknownKey(9)), "{err:?}");
    }

    #[test]
    fn rotation_accepts_any_installed_key() {
        let ring = [(1, "old secret"), (2, "new secret")];
        let (a, b) = handshake(2, "new secret", &ring).unwrap();
        assert_eq!((a.peer_name.as_str(), b.peer_name.as_str()), ("bob", "alice"));
        handshake(1, "old secret", &ring).unwrap();
        // Id 2 with the old secret: the id picks the key, so this must fail.
        assert!(matches!(handshake(2, "old secret", &ring), Err(HandshakeError::WrongSecret)));
    }

    #[test]
    fn flipped_key_id_fails_authentication() {
        // Both ids map to the same secret; only the prologue differs. In a
        // psk pattern message 1 already carries a tag over the prologue, so
        // the flip is caught on the first flight.
        let (_, mut m1) = Initiator::start(&identity("alice"), 1, &psk("s")).unwrap();
        m1[0] = 2;
        let err = Responder::accept(&identity("bob"), &m1, keys(&[(1, "s"), (2, "s")])).unwrap_err();
        assert!(matches!(err, HandshakeError::Malformed), "{err:?}");
    }

    #[test]
    fn bad_identity_names_are_refused() {
        let key = [1u8; 32];
        assert!(Identity::new("", key).is_err());
        assert!(Identity::new("x".repeat(MAX_NAME_LEN + 1), key).is_err());
        assert!(Identity::new("x".repeat(MAX_NAME_LEN), key).is_ok());
        assert!(!format!("{:?}", Identity::new("n", key).unwrap()).contains("static_key"));
    }

    use crate::cluster::testing::SplitMix64;

    /// Variants of a real message: every truncation, random bit flips, and
    /// random garbage of assorted lengths.
    fn corruptions(real: &[u8], rng: &mut SplitMix64) -> Vec<Vec<u8>> {
        let mut out: Vec<Vec<u8>> = (0..real.len()).map(|n| real[..n].to_vec()).collect();
        for _ in 0..32 {
            let mut flipped = real.to_vec();
            let at = (rng.next() as usize) % flipped.len();
            flipped[at] ^= 1 << (rng.next() % 8);
            out.push(flipped);
        }
        for len in [1, 2, 31, 32, 33, 48, 64, 96, 97, 200, 1000, MAX_MESSAGE, MAX_MESSAGE + 1] {
            out.push(rng.bytes(len));
        }
        out
    }

    #[test]
    fn garbage_at_every_step_is_an_error() {
        let mut rng = SplitMix64::new(0x5EED);
        let (alice, bob) = (identity("alice"), identity("bob"));
        let ring = [(1u8, "s")];
        let start = || Initiator::start(&alice, 1, &psk("s")).unwrap();

        // Flight 1, into the responder. Keep the key id valid for the
        // variants that are long enough, so Noise itself sees the garbage.
        let (_, m1) = start();
        for mut bad in corruptions(&m1, &mut rng) {
            if bad.len() > 1 && bad != m1 {
                bad[0] = 1;
            }
            if bad == m1 {
                continue;
            }
            assert!(Responder::accept(&bob, &bad, keys(&ring)).is_err(), "flight 1 len {}", bad.len());
        }

        // Flight 2, into the initiator.
        let (_, m1) = start();
        let (_, m2) = Responder::accept(&bob, &m1, keys(&ring)).unwrap();
        for bad in corruptions(&m2, &mut rng) {
            let (init, _) = start();
            assert!(init.next(&bad).is_err(), "flight 2 len {}", bad.len());
        }

        // Flight 3, into the responder.
        let (init, m1) = start();
        let (_, m2) = Responder::accept(&bob, &m1, keys(&ring)).unwrap();
        let (m3, _) = reply(init.next(&m2).unwrap());
        for bad in corruptions(&m3, &mut rng) {
            let (init, m1) = start();
            let (resp, m2) = Responder::accept(&bob, &m1, keys(&ring)).unwrap();
            let _ = init.next(&m2).unwrap();
            assert!(resp.next(&bad).is_err(), "flight 3 len {}", bad.len());
        }

        // Flight 4, into the initiator.
        let (init, m1) = start();
        let (resp, m2) = Responder::accept(&bob, &m1, keys(&ring)).unwrap();
        let (m3, _) = reply(init.next(&m2).unwrap());
        let (m4, _) = established(resp.next(&m3).unwrap());
        let m4 = m4.unwrap();
        for bad in corruptions(&m4, &mut rng) {
            let (init, m1) = start();
            let (resp, m2) = Responder::accept(&bob, &m1, keys(&ring)).unwrap();
            let (m3, init) = reply(init.next(&m2).unwrap());
            let _ = established(resp.next(&m3).unwrap());
            assert!(init.next(&bad).is_err(), "flight 4 len {}", bad.len());
        }

        // Transport messages.
        let (mut a, _) = handshake(1, "s", &ring).unwrap();
        for bad in corruptions(&rng.bytes(40), &mut rng) {
            assert!(a.transport.decrypt(&bad).is_err());
        }
    }
}
