//! The bytes of a state-machine snapshot, and the record that keeps the
//! current one across restarts.

use std::fmt;

use openraft::type_config::alias::{LogIdOf, SnapshotMetaOf, StoredMembershipOf};
use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::types::TypeConfig;

/// The whole replicated state at one log id: what a snapshot's data
/// decodes to. The meta is carried too, so a snapshot file explains itself
/// even though openraft also sends the meta beside the data.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct SnapshotBody {
    /// The last log id the state includes.
    pub(crate) last_applied: Option<LogIdOf<TypeConfig>>,
    /// The membership in force at that point.
    pub(crate) last_membership: StoredMembershipOf<TypeConfig>,
    /// Every key and its value, in key order.
    pub(crate) kv: Vec<(String, Bytes)>,
}

/// A built or installed snapshot: the meta openraft expects back from
/// `get_current_snapshot` and the encoded [`SnapshotBody`]. `state.redb`
/// keeps the two under separate keys.
#[derive(Debug)]
pub(crate) struct StoredSnapshot {
    /// The snapshot's meta.
    pub(crate) meta: SnapshotMetaOf<TypeConfig>,
    /// The encoded [`SnapshotBody`].
    pub(crate) data: Bytes,
}

/// A byte string encoded as a MessagePack `bin`. serde writes a plain
/// `Vec<u8>` as an array of integers, which costs up to twice the size; a
/// snapshot is the whole state, so that matters here.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Bytes(pub(crate) Vec<u8>);

impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_byte_buf(BytesVisitor)
    }
}

/// Accepts a `bin` and, for tolerance, an array of small integers.
struct BytesVisitor;

impl<'de> Visitor<'de> for BytesVisitor {
    type Value = Bytes;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a byte string")
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Bytes, E> {
        Ok(Bytes(v.to_vec()))
    }

    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Bytes, E> {
        Ok(Bytes(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Bytes, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 16));
        while let Some(b) = seq.next_element::<u8>()? {
            out.push(b);
        }
        Ok(Bytes(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_travel_as_bin() {
        let b = Bytes(vec![0xff; 10]);
        let enc = rmp_serde::to_vec_named(&b).unwrap();
        // bin8 header (2 bytes) + payload, not an array of 2-byte integers.
        assert_eq!(enc.len(), 12);
        assert_eq!(rmp_serde::from_slice::<Bytes>(&enc).unwrap(), b);
        let as_array = rmp_serde::to_vec(&vec![1u8, 2, 3]).unwrap();
        assert_eq!(rmp_serde::from_slice::<Bytes>(&as_array).unwrap(), Bytes(vec![1, 2, 3]));
    }
}
