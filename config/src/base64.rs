//! A small standard-alphabet base64 decoder for the gossip secret key.
//!
//! Only decoding is needed, and only for a few dozen bytes, so this avoids a
//! dependency. It accepts the RFC 4648 alphabet (`A-Z a-z 0-9 + /`) with or without
//! `=` padding, ignores surrounding whitespace and rejects everything else.

/// Length in bytes of a gossip secret key.
pub const SECRET_KEY_LEN: usize = 32;

/// Why a base64 string was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Base64Error {
    /// A character outside the standard alphabet, or padding in the middle.
    #[error("not base64: unexpected character at position {0}")]
    BadChar(usize),
    /// A length no base64 encoding can have.
    #[error("not base64: truncated input")]
    BadLength,
    /// Valid base64 that decodes to the wrong number of bytes.
    #[error("must decode to {expected} bytes (got {got})")]
    WrongSize {
        /// Bytes required.
        expected: usize,
        /// Bytes found.
        got: usize,
    },
}

/// Decodes standard base64 (padding optional) into bytes.
pub(crate) fn decode(text: &str) -> Result<Vec<u8>, Base64Error> {
    let text = text.trim();
    let body = text.trim_end_matches('=');
    let padding = text.len() - body.len();
    if padding > 2 || (padding > 0 && !text.len().is_multiple_of(4)) || body.len() % 4 == 1 {
        return Err(Base64Error::BadLength);
    }
    let mut out = Vec::with_capacity(body.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for (pos, byte) in body.bytes().enumerate() {
        let value = sextet(byte).ok_or(Base64Error::BadChar(pos))?;
        acc = (acc << 6) | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            // Masked to one byte, so the cast cannot truncate meaningful bits.
            out.push(((acc >> bits) & 0xff) as u8);
        }
    }
    Ok(out)
}

/// Decodes a gossip secret key: base64 of exactly [`SECRET_KEY_LEN`] bytes.
pub fn decode_secret_key(text: &str) -> Result<[u8; SECRET_KEY_LEN], Base64Error> {
    let bytes = decode(text)?;
    <[u8; SECRET_KEY_LEN]>::try_from(bytes.as_slice())
        .map_err(|_| Base64Error::WrongSize { expected: SECRET_KEY_LEN, got: bytes.len() })
}

/// The 6-bit value of one alphabet character.
fn sextet(byte: u8) -> Option<u8> {
    match byte {
        b'A'..=b'Z' => Some(byte - b'A'),
        b'a'..=b'z' => Some(byte - b'a' + 26),
        b'0'..=b'9' => Some(byte - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_rfc4648_vectors() {
        let cases = [
            ("", ""),
            ("Zg==", "f"),
            ("Zm8=", "fo"),
            ("Zm9v", "foo"),
            ("Zm9vYg==", "foob"),
            ("Zm9vYmE=", "fooba"),
            ("Zm9vYmFy", "foobar"),
            ("Zm9vYg", "foob"),
        ];
        for (encoded, plain) in cases {
            assert_eq!(decode(encoded), Ok(plain.as_bytes().to_vec()), "{encoded}");
        }
    }

    #[test]
    fn rejects_garbage() {
        assert_eq!(decode("Zm9v!A=="), Err(Base64Error::BadChar(4)));
        assert_eq!(decode("Z"), Err(Base64Error::BadLength));
        assert_eq!(decode("Zg==="), Err(Base64Error::BadLength));
        assert_eq!(decode("Zg=a"), Err(Base64Error::BadChar(2)));
    }

    #[test]
    fn secret_key_must_be_32_bytes() {
        let key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
        let bytes = decode_secret_key(key).unwrap_or_default();
        assert_eq!(bytes[31], 31);
        assert_eq!(decode_secret_key("Zm9vYmFy"), Err(Base64Error::WrongSize { expected: 32, got: 6 }));
    }
}
