//! Length-prefixed frames on an internode TCP stream.
//!
//! Frame layout:
//!
//! ```text
//! [version = 1][class][len: u32 big-endian][payload: len bytes]
//! ```
//!
//! Decoding is split the way mini-redis splits it: [`check`] looks at the
//! header only and says how long the next frame is, or that more bytes are
//! needed ([`FrameError::Incomplete`]); [`parse`] then copies the payload
//! out. The socket task keeps one read buffer, appends what the kernel gives
//! it, and calls these until they ask for more. Nothing is allocated until the
//! whole frame is already in the buffer, so a peer cannot make this node
//! reserve memory by announcing a large length, and the length itself is
//! capped at [`MAX_FRAME`].
//!
//! The first byte is checked as soon as it arrives, and the class byte right
//! after it, so a stream that is not speaking this protocol is refused after
//! one or two bytes instead of after a header's worth.

use thiserror::Error;

/// The only frame version this node writes and reads.
pub(crate) const VERSION: u8 = 1;

/// Version, class and the four length bytes.
pub(crate) const HEADER_LEN: usize = 6;

/// The largest payload a frame may carry (16 MiB). Larger messages must be
/// split by the layer above; the cap bounds what one peer can make us buffer.
pub(crate) const MAX_FRAME: u32 = 16 * 1024 * 1024;

/// Which kind of traffic a frame carries. Classes are kept apart so a burst
/// of relayed messages never delays a Raft heartbeat behind it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub(crate) enum Class {
    /// Handshake and liveness between the two ends of a connection.
    Control = 0,
    /// Raft RPCs (votes, appends, snapshots).
    Raft = 1,
    /// Process messages relayed between nodes (see `relay`).
    Relay = 2,
    /// Process-group membership updates.
    Pg = 3,
}

impl Class {
    /// Every class, in wire order.
    pub(crate) const ALL: [Class; 4] = [Class::Control, Class::Raft, Class::Relay, Class::Pg];

    /// The class's name in metrics labels.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Class::Control => "control",
            Class::Raft => "raft",
            Class::Relay => "relay",
            Class::Pg => "pg",
        }
    }

    /// Reads a class byte. Unknown values are an error rather than a
    /// fallback, because guessing would route bytes to the wrong consumer.
    pub(crate) fn from_u8(byte: u8) -> Result<Class, FrameError> {
        match byte {
            0 => Ok(Class::Control),
            1 => Ok(Class::Raft),
            2 => Ok(Class::Relay),
            3 => Ok(Class::Pg),
            other => Err(FrameError::UnknownClass(other)),
        }
    }
}

/// One unit of traffic on the mesh: a class and its opaque payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Frame {
    pub(crate) class: Class,
    pub(crate) payload: Vec<u8>,
}

/// Why bytes did not become a frame, or a frame did not become bytes.
///
/// Decoding never consumes input, so after any variant the caller's buffer
/// is exactly as it was. Only `Incomplete` means "wait"; every other decode
/// variant means the peer is broken or hostile and the connection should go.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub(crate) enum FrameError {
    /// The buffer holds a valid prefix of a frame but not all of it yet.
    #[error("incomplete frame: more bytes needed")]
    Incomplete,
    /// The first byte is not a version this node speaks.
    #[error("unsupported frame version {0}")]
    BadVersion(u8),
    /// The class byte names no known traffic class.
    #[error("unknown traffic class {0}")]
    UnknownClass(u8),
    /// The length exceeds [`MAX_FRAME`]. On encode, the payload length is
    /// reported saturated to `u32::MAX` and nothing is written.
    #[error("frame of {0} bytes exceeds the {MAX_FRAME}-byte limit")]
    TooLarge(u32),
    /// A relay batch could not be serialized. Derived serializers do not
    /// fail on a `Vec` writer, so this is a "must not happen" sentinel.
    #[error("cannot encode relay batch: {0}")]
    Encode(String),
    /// A payload's bytes are not a valid relay batch.
    #[error("cannot decode relay batch: {0}")]
    Decode(String),
}

impl Frame {
    /// Appends the wire form of this frame to `out`. An oversized payload
    /// is refused here, so this node never sends what its peer must reject;
    /// `out` is left untouched in that case.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) -> Result<(), FrameError> {
        let len = match u32::try_from(self.payload.len()) {
            Ok(len) if len <= MAX_FRAME => len,
            Ok(len) => return Err(FrameError::TooLarge(len)),
            Err(_) => return Err(FrameError::TooLarge(u32::MAX)),
        };
        out.reserve(HEADER_LEN + self.payload.len());
        out.push(VERSION);
        out.push(self.class as u8);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&self.payload);
        Ok(())
    }
}

/// Returns the total length (header and payload) of the frame at the start
/// of `buf`, once all of it is present. Allocates nothing.
pub(crate) fn check(buf: &[u8]) -> Result<usize, FrameError> {
    let Some(&version) = buf.first() else {
        return Err(FrameError::Incomplete);
    };
    if version != VERSION {
        return Err(FrameError::BadVersion(version));
    }
    let Some(&class) = buf.get(1) else {
        return Err(FrameError::Incomplete);
    };
    Class::from_u8(class)?;
    let Some(len_bytes) = buf.get(2..HEADER_LEN) else {
        return Err(FrameError::Incomplete);
    };
    let len = u32::from_be_bytes([len_bytes[0], len_bytes[1], len_bytes[2], len_bytes[3]]);
    if len > MAX_FRAME {
        return Err(FrameError::TooLarge(len));
    }
    let total = HEADER_LEN + len as usize;
    if buf.len() < total {
        return Err(FrameError::Incomplete);
    }
    Ok(total)
}

/// Decodes the frame at the start of `buf` and returns it with the number of
/// bytes it used; the caller drops that many from its buffer.
pub(crate) fn parse(buf: &[u8]) -> Result<(Frame, usize), FrameError> {
    let total = check(buf)?;
    let frame = Frame { class: Class::from_u8(buf[1])?, payload: buf[HEADER_LEN..total].to_vec() };
    Ok((frame, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::cluster::testing::SplitMix64;

    fn wire(frames: &[Frame]) -> Vec<u8> {
        let mut out = Vec::new();
        for frame in frames {
            frame.encode(&mut out).unwrap();
        }
        out
    }

    /// Drains every whole frame from `buf`, the way the socket task will.
    fn drain(buf: &mut Vec<u8>, into: &mut Vec<Frame>) {
        loop {
            match parse(buf) {
                Ok((frame, used)) => {
                    buf.drain(..used);
                    into.push(frame);
                }
                Err(FrameError::Incomplete) => return,
                Err(other) => panic!("valid stream rejected: {other}"),
            }
        }
    }

    fn sample_frames() -> Vec<Frame> {
        vec![
            Frame { class: Class::Control, payload: b"hello".to_vec() },
            Frame { class: Class::Raft, payload: Vec::new() },
            Frame { class: Class::Relay, payload: (0..=255).collect() },
            Frame { class: Class::Pg, payload: vec![0xFF; 3] },
        ]
    }

    #[test]
    fn every_class_round_trips() {
        for class in Class::ALL {
            let frame = Frame { class, payload: vec![class as u8, 7, 7] };
            let bytes = wire(std::slice::from_ref(&frame));
            assert_eq!(bytes[..HEADER_LEN], [VERSION, class as u8, 0, 0, 0, 3]);
            assert_eq!(check(&bytes), Ok(bytes.len()));
            assert_eq!(parse(&bytes), Ok((frame, bytes.len())));
            assert_eq!(Class::from_u8(class as u8), Ok(class));
        }
    }

    #[test]
    fn parse_leaves_following_frames_alone() {
        let frames = sample_frames();
        let bytes = wire(&frames);
        let (first, used) = parse(&bytes).unwrap();
        assert_eq!(first, frames[0]);
        assert_eq!(used, HEADER_LEN + 5);
    }

    #[test]
    fn stream_split_at_every_boundary_decodes_the_same() {
        let frames = sample_frames();
        let bytes = wire(&frames);
        for cut in 0..=bytes.len() {
            let mut buf = Vec::new();
            let mut got = Vec::new();
            buf.extend_from_slice(&bytes[..cut]);
            drain(&mut buf, &mut got);
            buf.extend_from_slice(&bytes[cut..]);
            drain(&mut buf, &mut got);
            assert_eq!(got, frames, "split at {cut}");
            assert!(buf.is_empty(), "split at {cut} left {} bytes", buf.len());
        }
    }

    #[test]
    fn stream_fed_one_byte_at_a_time_decodes_the_same() {
        let frames = sample_frames();
        let mut buf = Vec::new();
        let mut got = Vec::new();
        for byte in wire(&frames) {
            buf.push(byte);
            drain(&mut buf, &mut got);
        }
        assert_eq!(got, frames);
        assert!(buf.is_empty());
    }

    #[test]
    fn every_truncation_is_incomplete() {
        let bytes = wire(&sample_frames()[..1]);
        for cut in 0..bytes.len() {
            assert_eq!(check(&bytes[..cut]), Err(FrameError::Incomplete), "cut {cut}");
            assert_eq!(parse(&bytes[..cut]), Err(FrameError::Incomplete), "cut {cut}");
        }
    }

    #[test]
    fn bad_version_is_refused_from_the_first_byte() {
        assert_eq!(check(&[0]), Err(FrameError::BadVersion(0)));
        assert_eq!(check(&[2, 0, 0, 0, 0, 0]), Err(FrameError::BadVersion(2)));
        assert_eq!(parse(b"GET / HTTP/1.1\r\n"), Err(FrameError::BadVersion(b'G')));
    }

    #[test]
    fn unknown_class_is_refused() {
        assert_eq!(check(&[VERSION, 4]), Err(FrameError::UnknownClass(4)));
        assert_eq!(parse(&[VERSION, 0xFF, 0, 0, 0, 0]), Err(FrameError::UnknownClass(0xFF)));
        assert_eq!(Class::from_u8(4), Err(FrameError::UnknownClass(4)));
    }

    #[test]
    fn oversized_length_is_refused_before_the_payload_arrives() {
        let over = MAX_FRAME + 1;
        let mut header = vec![VERSION, Class::Relay as u8];
        header.extend_from_slice(&over.to_be_bytes());
        assert_eq!(check(&header), Err(FrameError::TooLarge(over)));
        header[2..].copy_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(parse(&header), Err(FrameError::TooLarge(u32::MAX)));
        // Exactly the limit is a legal length that is simply not here yet.
        header[2..].copy_from_slice(&MAX_FRAME.to_be_bytes());
        assert_eq!(check(&header), Err(FrameError::Incomplete));
    }

    #[test]
    fn oversized_payload_is_not_encoded() {
        let frame = Frame { class: Class::Relay, payload: vec![0; MAX_FRAME as usize + 1] };
        let mut out = vec![9];
        assert_eq!(frame.encode(&mut out), Err(FrameError::TooLarge(MAX_FRAME + 1)));
        assert_eq!(out, [9]);
    }

    #[test]
    fn random_garbage_never_panics() {
        let mut rng = SplitMix64::new(0x5EED);
        for round in 0..20_000 {
            let len = (rng.next() % 40) as usize;
            let mut buf: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            // Bias half the inputs towards a valid header so the length and
            // payload paths are reached, not only the version check.
            if round % 2 == 0 && len >= 2 {
                buf[0] = VERSION;
                buf[1] %= 5;
            }
            // And a quarter towards short lengths, so whole frames parse too.
            if round % 4 == 0 && len >= HEADER_LEN {
                buf[2..5].fill(0);
                buf[5] %= 40;
            }
            match parse(&buf) {
                Ok((frame, used)) => {
                    assert!(used <= buf.len());
                    assert_eq!(frame.payload.len(), used - HEADER_LEN);
                }
                Err(FrameError::Incomplete) => {}
                Err(FrameError::BadVersion(_) | FrameError::UnknownClass(_)) => {}
                Err(FrameError::TooLarge(len)) => assert!(len > MAX_FRAME),
                Err(other) => panic!("unexpected error {other}"),
            }
        }
    }
}
