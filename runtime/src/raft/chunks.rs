//! Snapshots cross the mesh in chunks. A mesh frame is capped at 16 MiB,
//! and a snapshot is the whole replicated state, so the leader sends it in
//! [`CHUNK`]-sized pieces, one call each (the next goes once the previous
//! was taken, which also paces the transfer), and the follower reassembles
//! them here before installing. Pure: no sockets, no clock.

use std::collections::HashMap;
use std::ops::Range;

use openraft::type_config::alias::LogIdOf;

use super::types::TypeConfig;

/// Bytes per chunk: well under the frame cap, large enough that a chunk's
/// round trip is small next to its transfer.
pub(crate) const CHUNK: usize = 4 << 20;

type LogId = LogIdOf<TypeConfig>;

/// The byte ranges of a snapshot of `total` bytes, in order; an empty
/// snapshot is one empty chunk (so the install still happens).
pub(crate) fn split(total: usize, chunk: usize) -> Vec<Range<usize>> {
    if total == 0 {
        return std::iter::once(0..0).collect();
    }
    (0..total).step_by(chunk).map(|start| start..(start + chunk).min(total)).collect()
}

/// Snapshots being received, one per sending node.
#[derive(Default)]
pub(crate) struct Assembly {
    parts: HashMap<String, Part>,
}

/// A snapshot received in part.
struct Part {
    /// The last log id it covers: which snapshot this is.
    covers: Option<LogId>,
    total: u64,
    buf: Vec<u8>,
}

impl Assembly {
    /// Takes one chunk from `from`. Returns the whole snapshot once its last
    /// chunk arrived. A chunk that does not continue the transfer in
    /// progress is an error and drops it; the leader then starts over.
    pub(crate) fn accept(
        &mut self,
        from: &str,
        covers: Option<LogId>,
        offset: u64,
        total: u64,
        data: Vec<u8>,
    ) -> Result<Option<Vec<u8>>, String> {
        if offset == 0 {
            let buf = Vec::with_capacity(usize::try_from(total).unwrap_or(0).min(1 << 30));
            self.parts.insert(from.to_owned(), Part { covers, total, buf });
        }
        let Some(part) = self.parts.get_mut(from) else {
            return Err(format!("snapshot chunk at {offset} from {from} without its start"));
        };
        let continues = part.covers == covers && part.total == total && part.buf.len() as u64 == offset;
        let fits = offset + data.len() as u64 <= total;
        if !continues || !fits {
            let had = part.buf.len();
            self.parts.remove(from);
            return Err(format!(
                "snapshot chunk from {from} does not continue the transfer (have {had} bytes, chunk at {offset} of {total})"
            ));
        }
        part.buf.extend_from_slice(&data);
        if part.buf.len() as u64 == total {
            return Ok(self.parts.remove(from).map(|p| p.buf));
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use openraft::testing::log_id;

    use super::*;

    fn id(i: u64) -> Option<LogId> {
        Some(log_id::<TypeConfig>(1, 1, i))
    }

    #[test]
    fn split_covers_every_byte_once() {
        assert_eq!(split(10, 4), vec![0..4, 4..8, 8..10]);
        assert_eq!(split(8, 4), vec![0..4, 4..8]);
        assert_eq!(split(0, 4), vec![0..0]);
    }

    #[test]
    fn chunks_in_order_reassemble() {
        let data: Vec<u8> = (0..=255).collect();
        let mut a = Assembly::default();
        let mut out = None;
        for r in split(data.len(), 100) {
            out = a.accept("n1", id(7), r.start as u64, data.len() as u64, data[r].to_vec()).unwrap();
        }
        assert_eq!(out, Some(data));
        assert!(a.parts.is_empty());
        assert_eq!(a.accept("n1", id(1), 0, 0, Vec::new()).unwrap(), Some(Vec::new()));
    }

    #[test]
    fn a_gap_another_snapshot_or_an_overrun_drops_the_transfer() {
        let mut a = Assembly::default();
        a.accept("n1", id(7), 0, 10, vec![0; 4]).unwrap();
        assert!(a.accept("n1", id(7), 8, 10, vec![0; 2]).is_err(), "gap");
        assert!(a.accept("n1", id(7), 4, 10, vec![0; 4]).is_err(), "the transfer was dropped");
        a.accept("n1", id(7), 0, 10, vec![0; 4]).unwrap();
        assert!(a.accept("n1", id(8), 4, 10, vec![0; 4]).is_err(), "another snapshot");
        a.accept("n1", id(7), 0, 10, vec![0; 4]).unwrap();
        assert!(a.accept("n1", id(7), 4, 10, vec![0; 7]).is_err(), "past the end");
        // Two senders do not mix.
        a.accept("n1", id(7), 0, 4, vec![1; 2]).unwrap();
        a.accept("n2", id(9), 0, 4, vec![2; 2]).unwrap();
        assert_eq!(a.accept("n1", id(7), 2, 4, vec![1; 2]).unwrap(), Some(vec![1; 4]));
        assert_eq!(a.accept("n2", id(9), 2, 4, vec![2; 2]).unwrap(), Some(vec![2; 4]));
    }
}
