//! One internode connection: the handshake on either side, then the writer
//! loop (dialled connections) or the reader loop (accepted ones).
//!
//! Each node sends only on connections it dialled and reads only on
//! connections it accepted, so a pair of nodes holds two connections, one
//! per direction. The cost is a second handshake; the gain is that order
//! per direction is simply the order of one TCP stream, and no tie-break is
//! needed when both sides dial at once.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

use super::ctx::Ctx;
use super::frame::{self, Class, Frame, FrameError};
use super::handshake::{HandshakeError, Initiator, Responder, Step, Transport};
use super::outbound::PeerQueue;
use super::relay::{RelayBatch, RelayItem, decode_batch, encode_batch};
use super::wire;

/// Longest a TCP connect may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest each handshake flight may take to arrive.
const FLIGHT_TIMEOUT: Duration = Duration::from_secs(5);
/// Relay items per frame: large enough to amortise the frame and the
/// encryption, small enough that a frame stays far below `MAX_FRAME`.
const RELAY_BATCH: usize = 2048;
/// Bytes of relay frames written per round before the queue is looked at
/// again for frames of the other classes.
const WRITE_BUDGET: usize = 256 * 1024;
/// How long a stopping node keeps trying to write what is queued.
const FINAL_FLUSH: Duration = Duration::from_millis(500);

/// Why a connection ended or never started.
#[derive(Debug, Error)]
pub(crate) enum SessionError {
    /// The socket failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// Connect or a handshake flight took too long.
    #[error("timed out")]
    Timeout,
    /// The handshake was refused.
    #[error("handshake failed: {0}")]
    Handshake(#[from] HandshakeError),
    /// The peer authenticated under another name than the one we dialled.
    #[error("expected node {expected}, but {got} answered")]
    WrongPeer {
        /// The name gossip gave for the address.
        expected: String,
        /// The name the peer proved.
        got: String,
    },
    /// The peer sent bytes that are not frames.
    #[error("bad frame: {0}")]
    Frame(#[from] FrameError),
    /// The peer closed the connection.
    #[error("closed by peer")]
    Closed,
}

impl SessionError {
    /// Whether this is the handshake refusing the peer (counted apart
    /// from ordinary network failures).
    pub(crate) fn is_handshake(&self) -> bool {
        matches!(self, SessionError::Handshake(_) | SessionError::WrongPeer { .. })
    }
}

async fn send_flight(stream: &mut TcpStream, message: &[u8]) -> Result<(), SessionError> {
    let mut out = Vec::with_capacity(message.len() + wire::PREFIX);
    wire::put_message(message, &mut out);
    stream.write_all(&out).await?;
    Ok(())
}

async fn read_flight(stream: &mut TcpStream) -> Result<Vec<u8>, SessionError> {
    let read = async {
        let len = stream.read_u16().await? as usize;
        let mut body = vec![0u8; len];
        stream.read_exact(&mut body).await?;
        Ok::<_, std::io::Error>(body)
    };
    match timeout(FLIGHT_TIMEOUT, read).await {
        Ok(Ok(body)) => Ok(body),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(SessionError::Closed),
        Ok(Err(e)) => Err(e.into()),
        Err(_) => Err(SessionError::Timeout),
    }
}

/// Dials `addr`, runs the initiator's side and checks the peer is `expect`.
pub(crate) async fn dial(ctx: &Ctx, addr: SocketAddr, expect: &str) -> Result<(TcpStream, Transport), SessionError> {
    let mut stream = timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await.map_err(|_| SessionError::Timeout)??;
    stream.set_nodelay(true)?;
    let (key_id, psk) = ctx.dial_key();
    let (state, m1) = Initiator::start(&ctx.identity, key_id, &psk)?;
    send_flight(&mut stream, &m1).await?;
    let m2 = read_flight(&mut stream).await?;
    let Step::Reply(m3, state) = state.next(&m2)? else { return Err(HandshakeError::UnexpectedMessage.into()) };
    send_flight(&mut stream, &m3).await?;
    let m4 = read_flight(&mut stream).await?;
    let Step::Established(_, done) = state.next(&m4)? else { return Err(HandshakeError::UnexpectedMessage.into()) };
    if done.peer_name != expect {
        return Err(SessionError::WrongPeer { expected: expect.to_string(), got: done.peer_name });
    }
    Ok((stream, done.transport))
}

/// Runs the responder's side on an accepted stream; returns the peer's name.
pub(crate) async fn accept(ctx: &Ctx, stream: &mut TcpStream) -> Result<(String, Transport), SessionError> {
    stream.set_nodelay(true)?;
    let m1 = read_flight(stream).await?;
    let (state, m2) = Responder::accept(&ctx.identity, &m1, |id| ctx.accept_key(id))?;
    send_flight(stream, &m2).await?;
    let m3 = read_flight(stream).await?;
    let Step::Established(Some(m4), done) = state.next(&m3)? else {
        return Err(HandshakeError::UnexpectedMessage.into());
    };
    send_flight(stream, &m4).await?;
    Ok((done.peer_name, done.transport))
}

/// Writes what `queue` collects until the queue closes, the node stops or
/// the connection fails.
///
/// Each round writes every queued control, raft and pg frame, then relay
/// batches up to [`WRITE_BUDGET`] bytes, and looks at the queue again, so a
/// deep relay backlog delays a raft frame by at most one budget's worth of
/// writing. Relay items not written yet go back to the front of the queue
/// when the connection fails; items inside a write that fails are counted
/// as dropped, since whether the peer got them is unknown.
pub(crate) async fn write_loop(
    ctx: &Ctx,
    queue: &PeerQueue,
    stream: TcpStream,
    mut transport: Transport,
) -> Result<(), SessionError> {
    let (mut rd, mut wr) = stream.into_split();
    let mut plain = Vec::new();
    let mut cipher = Vec::new();
    let mut probe = [0u8; 64];
    let mut backlog: VecDeque<RelayItem> = VecDeque::new();
    loop {
        let pending = queue.take();
        backlog.extend(pending.relay);
        if pending.frames.is_empty() && backlog.is_empty() {
            if queue.is_closed() {
                return Ok(());
            }
            tokio::select! {
                () = queue.notify.notified() => continue,
                () = ctx.cancel.cancelled() => {
                    let last = queue.take();
                    backlog.extend(last.relay);
                    let n = backlog.len();
                    encode_round(ctx, last.frames, &mut backlog, usize::MAX, &mut plain);
                    if !plain.is_empty() {
                        wire::seal(&mut transport, &plain, &mut cipher)?;
                        if timeout(FINAL_FLUSH, wr.write_all(&cipher)).await.is_err() {
                            ctx.shared.stats.drop_items(Class::Relay, n);
                        }
                    }
                    return Ok(());
                }
                // The accepting side never writes after the handshake, so
                // a readable socket means it closed (or misbehaves).
                _ = rd.read(&mut probe) => {
                    queue.requeue_front(backlog.into());
                    return Err(SessionError::Closed);
                }
            }
        }
        let written = encode_round(ctx, pending.frames, &mut backlog, WRITE_BUDGET, &mut plain);
        wire::seal(&mut transport, &plain, &mut cipher)?;
        plain.clear();
        if let Err(e) = wr.write_all(&cipher).await {
            ctx.shared.stats.drop_items(Class::Relay, written);
            queue.requeue_front(backlog.into());
            return Err(e.into());
        }
        cipher.clear();
    }
}

/// Encodes one round: every frame of the other classes, then relay items
/// from the front of `backlog` in batches until `budget` bytes are
/// reached (at least one batch). Returns how many relay items it took.
fn encode_round(
    ctx: &Ctx,
    frames: VecDeque<(Class, Vec<u8>)>,
    backlog: &mut VecDeque<RelayItem>,
    budget: usize,
    out: &mut Vec<u8>,
) -> usize {
    for (class, payload) in frames {
        put_frame(ctx, Frame { class, payload }, out);
    }
    let mut taken = 0;
    // At least one batch per round, so relay traffic always progresses.
    while !backlog.is_empty() && (taken == 0 || out.len() < budget) {
        let n = backlog.len().min(RELAY_BATCH);
        put_batch(ctx, backlog.drain(..n).collect(), out);
        taken += n;
    }
    taken
}

/// Encodes one relay batch; halves it when the frame would be too large,
/// and drops (counting) a single item that is too large on its own.
fn put_batch(ctx: &Ctx, items: Vec<RelayItem>, out: &mut Vec<u8>) {
    let n = items.len();
    let batch = RelayBatch(items);
    let payload = match encode_batch(&batch) {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(error = %e, "mesh: cannot encode relay batch; dropped");
            ctx.shared.stats.drop_items(Class::Relay, n);
            return;
        }
    };
    if payload.len() > frame::MAX_FRAME as usize {
        let mut items = batch.0;
        if n == 1 {
            tracing::warn!(bytes = payload.len(), "mesh: message larger than a frame; dropped");
            ctx.shared.stats.drop_items(Class::Relay, 1);
            return;
        }
        let tail = items.split_off(n / 2);
        put_batch(ctx, items, out);
        put_batch(ctx, tail, out);
        return;
    }
    put_frame(ctx, Frame { class: Class::Relay, payload }, out);
}

fn put_frame(ctx: &Ctx, frame: Frame, out: &mut Vec<u8>) {
    let counters = ctx.shared.stats.class(frame.class);
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

/// Reads frames from an accepted connection and hands them on until the
/// peer closes, the node stops or the peer sends something that does not
/// authenticate or parse (then the connection is dropped).
pub(crate) async fn read_loop(
    ctx: &Ctx,
    peer: &str,
    mut stream: TcpStream,
    mut transport: Transport,
) -> Result<(), SessionError> {
    let mut cipher: Vec<u8> = Vec::with_capacity(128 * 1024);
    let mut plain: Vec<u8> = Vec::with_capacity(128 * 1024);
    loop {
        let n = tokio::select! {
            r = stream.read_buf(&mut cipher) => r?,
            () = ctx.cancel.cancelled() => return Ok(()),
        };
        if n == 0 {
            return Err(SessionError::Closed);
        }
        let used = wire::open(&mut transport, &cipher, &mut plain)?;
        cipher.drain(..used);
        let mut at = 0;
        loop {
            match frame::parse(&plain[at..]) {
                Ok((frame, len)) => {
                    at += len;
                    handle(ctx, peer, frame);
                }
                Err(FrameError::Incomplete) => break,
                Err(e) => return Err(e.into()),
            }
        }
        plain.drain(..at);
        if cipher.capacity() > 1 << 24 && cipher.is_empty() {
            cipher.shrink_to(128 * 1024);
        }
    }
}

fn handle(ctx: &Ctx, peer: &str, frame: Frame) {
    let counters = ctx.shared.stats.class(frame.class);
    counters.frames_received.fetch_add(1, Ordering::Relaxed);
    counters.bytes_received.fetch_add(frame.payload.len() as u64, Ordering::Relaxed);
    match frame.class {
        Class::Relay => match decode_batch(&frame.payload) {
            Ok(batch) => ctx.shared.deliver_remote(peer, batch.0),
            Err(e) => {
                tracing::warn!(%peer, error = %e, "mesh: undecodable relay frame dropped");
                counters.dropped.fetch_add(1, Ordering::Relaxed);
            }
        },
        // Nothing consumes these classes on this node yet; counted above.
        Class::Control | Class::Raft | Class::Pg => {
            tracing::debug!(%peer, class = frame.class.label(), "mesh: frame without a consumer");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokio_util::sync::CancellationToken;
    use tokio_util::task::TaskTracker;

    use super::*;
    use crate::cluster::keys::KeySet;
    use crate::cluster::mesh::handshake::{Identity, generate_static_key};
    use crate::cluster::mesh::relay::RelayMsg;
    use crate::shared::Shared;

    fn ctx() -> Ctx {
        let secret = [5u8; 32];
        Ctx {
            identity: Identity::new("a", generate_static_key().unwrap()).unwrap(),
            keys: KeySet::new(&secret, &[], Duration::from_secs(1), std::time::Instant::now()).unwrap(),
            shared: Arc::new(Shared::new("a".into(), 1, 1 << 20)),
            cancel: CancellationToken::new(),
            tracker: TaskTracker::new(),
        }
    }

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
        let ctx = ctx();
        let mut backlog: VecDeque<RelayItem> = (0..5000).map(item).collect();
        let frames = VecDeque::from([(Class::Raft, vec![1, 2, 3])]);
        let mut out = Vec::new();
        assert_eq!(encode_round(&ctx, frames, &mut backlog, 1, &mut out), RELAY_BATCH);
        assert_eq!(backlog.len(), 5000 - RELAY_BATCH);
        let (first, used) = frame::parse(&out).unwrap();
        assert_eq!(first, Frame { class: Class::Raft, payload: vec![1, 2, 3] });
        let (second, rest) = frame::parse(&out[used..]).unwrap();
        assert_eq!(second.class, Class::Relay);
        assert_eq!(used + rest, out.len(), "one relay batch this round");
        let batch = decode_batch(&second.payload).unwrap();
        assert_eq!(batch.0.first(), Some(&item(0)));
        assert_eq!(batch.0.last(), Some(&item(RELAY_BATCH as i64 - 1)));
        // Without a budget the rest goes in one round, still in order.
        out.clear();
        assert_eq!(encode_round(&ctx, VecDeque::new(), &mut backlog, usize::MAX, &mut out), 5000 - RELAY_BATCH);
        assert!(backlog.is_empty());
    }
}
