//! Noise messages on a TCP stream.
//!
//! Every handshake flight and every encrypted chunk travels as
//! `[len: u16 big-endian][len bytes]`, the framing the Noise specification
//! suggests. After the handshake the frame stream of `frame.rs` is cut into
//! chunks of at most [`MAX_CHUNK`] bytes and each chunk is encrypted on its
//! own, so frames and Noise messages need not line up: a large frame spans
//! several messages, and many small frames share one.

use super::handshake::{HandshakeError, MAX_CHUNK, MAX_MESSAGE, Transport};

/// Bytes of the length prefix.
pub(crate) const PREFIX: usize = 2;

/// Appends `message` with its length prefix.
pub(crate) fn put_message(message: &[u8], out: &mut Vec<u8>) {
    debug_assert!(message.len() <= MAX_MESSAGE);
    out.extend_from_slice(&(message.len() as u16).to_be_bytes());
    out.extend_from_slice(message);
}

/// The message at the start of `buf` and the bytes it takes, or `None`
/// while it is incomplete.
pub(crate) fn take_message(buf: &[u8]) -> Option<(&[u8], usize)> {
    let len = u16::from_be_bytes([*buf.first()?, *buf.get(1)?]) as usize;
    let body = buf.get(PREFIX..PREFIX + len)?;
    Some((body, PREFIX + len))
}

/// Encrypts `plaintext` chunk by chunk and appends the messages to `out`.
pub(crate) fn seal(transport: &mut Transport, plaintext: &[u8], out: &mut Vec<u8>) -> Result<(), HandshakeError> {
    for chunk in plaintext.chunks(MAX_CHUNK) {
        let message = transport.encrypt(chunk)?;
        put_message(&message, out);
    }
    Ok(())
}

/// Decrypts every complete message at the start of `cipher` into `plain`
/// and returns how many bytes of `cipher` were used. A message that fails
/// to authenticate is an error: the stream is corrupt or forged.
pub(crate) fn open(transport: &mut Transport, cipher: &[u8], plain: &mut Vec<u8>) -> Result<usize, HandshakeError> {
    let mut used = 0;
    while let Some((message, n)) = take_message(&cipher[used..]) {
        plain.extend_from_slice(&transport.decrypt(message)?);
        used += n;
    }
    Ok(used)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::mesh::handshake::{Identity, Initiator, Responder, Step, generate_static_key, mesh_psk};

    /// Two transports that completed a real handshake with each other.
    fn pair() -> (Transport, Transport) {
        let psk = mesh_psk("c", b"0123456789abcdef0123456789abcdef");
        let a = Identity::new("a", generate_static_key().unwrap()).unwrap();
        let b = Identity::new("b", generate_static_key().unwrap()).unwrap();
        let (init, m1) = Initiator::start(&a, 1, &psk).unwrap();
        let (resp, m2) = Responder::accept(&b, &m1, |_| Some(psk)).unwrap();
        let Step::Reply(m3, init) = init.next(&m2).unwrap() else { panic!("reply expected") };
        let Step::Established(Some(m4), rb) = resp.next(&m3).unwrap() else { panic!("established expected") };
        let Step::Established(None, ra) = init.next(&m4).unwrap() else { panic!("established expected") };
        (ra.transport, rb.transport)
    }

    #[test]
    fn prefix_framing_waits_for_whole_messages() {
        let mut out = Vec::new();
        put_message(b"hello", &mut out);
        put_message(b"", &mut out);
        assert_eq!(take_message(&out[..3]), None);
        assert_eq!(take_message(&out), Some((&b"hello"[..], 7)));
        assert_eq!(take_message(&out[7..]), Some((&b""[..], 2)));
        assert_eq!(take_message(&[0]), None);
    }

    #[test]
    fn large_payloads_cross_in_chunks_split_anywhere() {
        let (mut tx, mut rx) = pair();
        let data: Vec<u8> = (0..(3 * MAX_CHUNK + 17)).map(|i| i as u8).collect();
        let mut cipher = Vec::new();
        seal(&mut tx, &data, &mut cipher).unwrap();
        seal(&mut tx, b"tail", &mut cipher).unwrap();
        // Feed it in uneven pieces, as TCP would.
        let mut inbox = Vec::new();
        let mut plain = Vec::new();
        for piece in cipher.chunks(10_007) {
            inbox.extend_from_slice(piece);
            let used = open(&mut rx, &inbox, &mut plain).unwrap();
            inbox.drain(..used);
        }
        assert!(inbox.is_empty());
        assert_eq!(&plain[..data.len()], &data[..]);
        assert_eq!(&plain[data.len()..], b"tail");
    }

    #[test]
    fn a_tampered_message_is_refused() {
        let (mut tx, mut rx) = pair();
        let mut cipher = Vec::new();
        seal(&mut tx, b"pay me", &mut cipher).unwrap();
        let last = cipher.len() - 1;
        cipher[last] ^= 1;
        assert!(open(&mut rx, &cipher, &mut Vec::new()).is_err());
    }
}
