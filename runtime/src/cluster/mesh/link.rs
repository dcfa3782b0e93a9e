//! The write side of one established connection, shared by the peer's
//! writer task and the workers.
//!
//! Whoever holds the link's lock writes: a worker that just queued traffic
//! for the peer tries first, and only when the socket would block, or the
//! lock is busy, or no connection is up, does it poke the mesh thread. On
//! an idle connection a message therefore leaves in the sending worker's
//! own `write` call instead of after a wake-up of another thread (about
//! 20 µs here). Order holds because every write drains the queue under the
//! lock: items leave in the order they were queued, whoever writes them.
//!
//! Each round writes every queued control, raft and pg frame, then relay
//! batches up to [`WRITE_BUDGET`] bytes, and looks at the queue again, so a
//! deep relay backlog delays a raft frame by at most one budget's worth of
//! writing.

use std::collections::VecDeque;
use std::io::ErrorKind;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::net::TcpStream;

use super::frame::{self, Class, Frame};
use super::handshake::Transport;
use super::outbound::PeerQueue;
use super::relay::{RelayBatch, RelayItem, encode_batch};
use super::wire;
use crate::stats::NodeStats;

/// Relay items per frame: large enough to amortise the frame and the
/// encryption, small enough that a frame stays far below `MAX_FRAME`.
pub(crate) const RELAY_BATCH: usize = 2048;
/// Bytes of relay frames encoded per round before the queue is looked at
/// again for frames of the other classes.
pub(crate) const WRITE_BUDGET: usize = 256 * 1024;

/// What a flush achieved.
#[derive(Debug)]
pub(crate) enum Flush {
    /// Everything queued is in the kernel's hands.
    Done,
    /// The socket is full; the rest waits for it to drain.
    Blocked,
    /// The connection failed; the link must be dropped.
    Broken(std::io::Error),
}

/// An established connection's sending half.
pub(crate) struct Link {
    stream: Arc<TcpStream>,
    transport: Transport,
    /// Relay items taken from the queue but not yet encoded.
    backlog: VecDeque<RelayItem>,
    plain: Vec<u8>,
    /// Ciphertext not yet accepted by the kernel, from `written` on.
    unsent: Vec<u8>,
    written: usize,
    /// Relay items inside `unsent`, counted as dropped if the link breaks.
    unsent_items: usize,
}

impl Link {
    pub(crate) fn new(stream: Arc<TcpStream>, transport: Transport) -> Link {
        Link {
            stream,
            transport,
            backlog: VecDeque::new(),
            plain: Vec::new(),
            unsent: Vec::new(),
            written: 0,
            unsent_items: 0,
        }
    }

    /// Encodes what `queue` holds and writes without blocking, until the
    /// queue is empty or the socket is full.
    pub(crate) fn flush(&mut self, queue: &PeerQueue, stats: &NodeStats) -> Flush {
        loop {
            while self.written < self.unsent.len() {
                match self.stream.try_write(&self.unsent[self.written..]) {
                    Ok(n) => self.written += n,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => return Flush::Blocked,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => return Flush::Broken(e),
                }
            }
            self.unsent.clear();
            self.written = 0;
            self.unsent_items = 0;
            let pending = queue.take();
            self.backlog.extend(pending.relay);
            if pending.frames.is_empty() && self.backlog.is_empty() {
                return Flush::Done;
            }
            self.unsent_items = encode_round(stats, pending.frames, &mut self.backlog, WRITE_BUDGET, &mut self.plain);
            let sealed = wire::seal(&mut self.transport, &self.plain, &mut self.unsent);
            self.plain.clear();
            if let Err(e) = sealed {
                return Flush::Broken(std::io::Error::other(e));
            }
        }
    }

    /// The connection is gone: counts what was in flight as dropped and
    /// returns the items not yet encoded, to go back to the queue's front.
    pub(crate) fn abandon(self, stats: &NodeStats) -> Vec<RelayItem> {
        stats.drop_items(Class::Relay, self.unsent_items);
        self.backlog.into()
    }
}

/// Encodes one round: every frame of the other classes, then relay items
/// from the front of `backlog` in batches until `budget` bytes are
/// reached (at least one batch). Returns how many relay items it took.
pub(crate) fn encode_round(
    stats: &NodeStats,
    frames: VecDeque<(Class, Vec<u8>)>,
    backlog: &mut VecDeque<RelayItem>,
    budget: usize,
    out: &mut Vec<u8>,
) -> usize {
    for (class, payload) in frames {
        put_frame(stats, Frame { class, payload }, out);
    }
    let mut taken = 0;
    // At least one batch per round, so relay traffic always progresses.
    while !backlog.is_empty() && (taken == 0 || out.len() < budget) {
        let n = backlog.len().min(RELAY_BATCH);
        put_batch(stats, backlog.drain(..n).collect(), out);
        taken += n;
    }
    taken
}

/// Encodes one relay batch; halves it when the frame would be too large,
/// and drops (counting) a single item that is too large on its own.
fn put_batch(stats: &NodeStats, items: Vec<RelayItem>, out: &mut Vec<u8>) {
    let n = items.len();
    let batch = RelayBatch(items);
    let payload = match encode_batch(&batch) {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(error = %e, "mesh: cannot encode relay batch; dropped");
            stats.drop_items(Class::Relay, n);
            return;
        }
    };
    if payload.len() > frame::MAX_FRAME as usize {
        let mut items = batch.0;
        if n == 1 {
            tracing::warn!(bytes = payload.len(), "mesh: message larger than a frame; dropped");
            stats.drop_items(Class::Relay, 1);
            return;
        }
        let tail = items.split_off(n / 2);
        put_batch(stats, items, out);
        put_batch(stats, tail, out);
        return;
    }
    put_frame(stats, Frame { class: Class::Relay, payload }, out);
}

fn put_frame(stats: &NodeStats, frame: Frame, out: &mut Vec<u8>) {
    let counters = stats.class(frame.class);
    match frame.encode(out) {
        Ok(()) => {
            counters.frames_sent.fetch_add(1, Ordering::Relaxed);
            counters.bytes_sent.fetch_add(frame.payload.len() as u64, Ordering::Relaxed);
        }
        Err(e) => {
            tracing::warn!(class = frame.class.label(), error = %e, "mesh: frame not sent");
            counters.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::mesh::relay::{RelayMsg, decode_batch};

    fn item(i: i64) -> RelayItem {
        RelayItem::Message(RelayMsg {
            to: "{b@h|0x00001}".into(),
            from: String::new(),
            topic: "t".into(),
            payload: wippy_lua_stdlib::Value::Int(i),
        })
    }

    /// Frames of other classes go out before a relay backlog, and one round
    /// takes only about a budget's worth of relay traffic.
    #[test]
    fn a_round_puts_raft_first_and_stops_at_the_budget() {
        let stats = NodeStats::default();
        let mut backlog: VecDeque<RelayItem> = (0..5000).map(item).collect();
        let frames = VecDeque::from([(Class::Raft, vec![1, 2, 3])]);
        let mut out = Vec::new();
        assert_eq!(encode_round(&stats, frames, &mut backlog, 1, &mut out), RELAY_BATCH);
        assert_eq!(backlog.len(), 5000 - RELAY_BATCH);
        let (first, used) = frame::parse(&out).unwrap();
        assert_eq!(first, Frame { class: Class::Raft, payload: vec![1, 2, 3] });
        let (second, rest) = frame::parse(&out[used..]).unwrap();
        assert_eq!(second.class, Class::Relay);
        assert_eq!(used + rest, out.len(), "one relay batch this round");
        let batch = decode_batch(&second.payload).unwrap();
        assert_eq!(batch.0.first(), Some(&item(0)));
        assert_eq!(batch.0.last(), Some(&item(RELAY_BATCH as i64 - 1)));
        assert_eq!(stats.class(Class::Relay).frames_sent.load(Ordering::Relaxed), 1);
        // Without a budget the rest goes in one round, still in order.
        out.clear();
        assert_eq!(encode_round(&stats, VecDeque::new(), &mut backlog, usize::MAX, &mut out), 5000 - RELAY_BATCH);
        assert!(backlog.is_empty());
    }
}
