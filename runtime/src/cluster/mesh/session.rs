//! One internode connection: the handshake on either side, then the writer
//! loop (dialled connections) or the reader loop (accepted ones).
//!
//! Each node sends only on connections it dialled and reads only on
//! connections it accepted, so a pair of nodes holds two connections, one
//! per direction. The cost is a second handshake; the gain is that order
//! per direction is simply the order of one TCP stream, and no tie-break is
//! needed when both sides dial at once.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

use super::control::Control;
use super::ctx::Ctx;
use super::frame::{self, Class, Frame, FrameError};
use super::handshake::{HandshakeError, Initiator, Responder, Step, Transport};
use super::link::{Flush, Link};
use super::outbound::PeerQueue;
use super::relay::decode_batch;
use super::wire;
use crate::identity::admission::{Binding, Hello, Refusal};
use crate::shared::PeerRaft;
use crate::stats::NodeStats;

/// Longest a TCP connect may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest each handshake flight may take to arrive.
const FLIGHT_TIMEOUT: Duration = Duration::from_secs(5);
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
    /// This node's admission rules refused the peer (license, signature,
    /// node limit, a removed peer).
    #[error("handshake failed: {reason} (node {peer})")]
    Refused {
        /// Why.
        reason: Refusal,
        /// The node refused.
        peer: String,
    },
    /// The peer's admission rules refused this node.
    #[error("handshake failed: {reason} (reported by node {peer})")]
    RefusedBy {
        /// Why.
        reason: Refusal,
        /// The node that refused.
        peer: String,
    },
    /// An admitted peer was removed or deactivated: its connection closes.
    #[error("connection closed: {reason} (node {peer})")]
    Ended {
        /// Why.
        reason: Refusal,
        /// The node whose connection closed.
        peer: String,
    },
    /// The peer sent bytes that are not frames.
    #[error("bad frame: {0}")]
    Frame(#[from] FrameError),
    /// The peer closed the connection.
    #[error("closed by peer")]
    Closed,
}

impl SessionError {
    /// Whether the peer's end closed or reset an established connection:
    /// what the kernel does when the peer's process exits.
    pub(crate) fn peer_went_away(&self) -> bool {
        match self {
            SessionError::Closed => true,
            SessionError::Io(e) => {
                matches!(e.kind(), std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe)
            }
            _ => false,
        }
    }

    /// Whether this is the handshake refusing the peer (counted apart
    /// from ordinary network failures).
    pub(crate) fn is_handshake(&self) -> bool {
        matches!(
            self,
            SessionError::Handshake(_)
                | SessionError::WrongPeer { .. }
                | SessionError::Refused { .. }
                | SessionError::RefusedBy { .. }
        )
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
    let mut transport = done.transport;
    let hello = ctx.shared.access.hello(Binding::MeshStatic(&ctx.static_public));
    send_sealed(&mut stream, &mut transport, &Admit::Hello(hello)).await?;
    match read_sealed(&mut stream, &mut transport).await? {
        Admit::Welcome(theirs) => {
            check_peer(ctx, &done.peer_name, &theirs, &done.peer_static)?;
        }
        Admit::Refused(reason) => return Err(SessionError::RefusedBy { reason, peer: done.peer_name }),
        Admit::Hello(_) => return Err(HandshakeError::UnexpectedMessage.into()),
    }
    Ok((stream, transport))
}

/// The admission exchange that follows the Noise handshake, sealed under
/// its keys: the dialler sends its hello; the acceptor answers with its own
/// or with why it refuses. Both sides check the other's.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
enum Admit {
    /// The dialler's hello.
    Hello(Hello),
    /// The acceptor admits the dialler; here is its hello.
    Welcome(Hello),
    /// The acceptor refuses the dialler.
    Refused(Refusal),
}

async fn send_sealed(stream: &mut TcpStream, transport: &mut Transport, msg: &Admit) -> Result<(), SessionError> {
    let bytes = rmp_serde::to_vec_named(msg).expect("admission messages always serialize");
    send_flight(stream, &transport.encrypt(&bytes)?).await
}

async fn read_sealed(stream: &mut TcpStream, transport: &mut Transport) -> Result<Admit, SessionError> {
    let bytes = transport.decrypt(&read_flight(stream).await?)?;
    rmp_serde::from_slice(&bytes).map_err(|_| HandshakeError::UnexpectedMessage.into())
}

/// Checks a peer's hello against the name it proved in the handshake and
/// this node's admission rules; records it in the peer book on success.
fn check_peer(ctx: &Ctx, name: &str, hello: &Hello, peer_static: &[u8; 32]) -> Result<(), SessionError> {
    if hello.node != name {
        return Err(SessionError::WrongPeer { expected: name.to_owned(), got: hello.node.clone() });
    }
    let fresh = ctx
        .shared
        .access
        .admit(hello, Binding::MeshStatic(peer_static), crate::identity::unix_now())
        .map_err(|reason| SessionError::Refused { reason, peer: name.to_owned() })?;
    if fresh {
        tracing::info!(peer = %name, peer_id = %hello.peer_id().unwrap_or_default(), "admitted a new peer");
    }
    Ok(())
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
    let mut transport = done.transport;
    let Admit::Hello(theirs) = read_sealed(stream, &mut transport).await? else {
        return Err(HandshakeError::UnexpectedMessage.into());
    };
    if let Err(e) = check_peer(ctx, &done.peer_name, &theirs, &done.peer_static) {
        if let SessionError::Refused { reason, .. } = &e {
            // Tell the dialler why, so its operator sees the cause too.
            let _ = send_sealed(stream, &mut transport, &Admit::Refused(*reason)).await;
        }
        return Err(e);
    }
    let ours = ctx.shared.access.hello(Binding::MeshStatic(&ctx.static_public));
    send_sealed(stream, &mut transport, &Admit::Welcome(ours)).await?;
    Ok((done.peer_name, transport))
}

/// Serves the peer's queue over a dialled connection until the queue
/// closes, the node stops or the connection fails.
///
/// The connection is attached to the queue as a [`Link`], so workers write
/// through it directly; this task writes when they could not (the socket
/// was full, the link busy) and watches the socket for the peer closing it.
/// On failure, relay items not yet encoded go back to the queue's front for
/// the next connection; those already handed to the socket are counted as
/// dropped, since whether the peer got them is unknown.
pub(crate) async fn write_loop(
    ctx: &Ctx,
    queue: &PeerQueue,
    stream: TcpStream,
    transport: Transport,
) -> Result<(), SessionError> {
    let stream = Arc::new(stream);
    let stats = &ctx.shared.stats;
    queue.attach(Link::new(stream.clone(), transport));
    // The peer learns where this node stands before anything else, then
    // gets this node's groups, names and store digests (the sync handshake
    // that every new connection, first or after a partition, starts with).
    for frame in ctx.shared.pg_greeting().into_iter().rev() {
        queue.push_front_frame(Class::Pg, frame);
    }
    queue.push_front_frame(Class::Control, ctx.shared.status_frame());
    let result = serve(ctx, queue, &stream).await;
    if let Some(link) = queue.detach() {
        queue.requeue_front(link.abandon(stats));
    }
    result
}

async fn serve(ctx: &Ctx, queue: &PeerQueue, stream: &TcpStream) -> Result<(), SessionError> {
    let stats = &ctx.shared.stats;
    let mut probe = [0u8; 64];
    loop {
        let blocked = match queue.flush(stats, true) {
            Some(Flush::Done) | None => false,
            Some(Flush::Blocked) => true,
            Some(Flush::Broken(e)) => return Err(e.into()),
        };
        if queue.is_closed() {
            say_bye(queue, stream, stats).await;
            return Ok(());
        }
        tokio::select! {
            () = queue.notify.notified() => {}
            r = stream.writable(), if blocked => r?,
            () = ctx.cancel.cancelled() => {
                say_bye(queue, stream, stats).await;
                return Ok(());
            }
            // The accepting side never writes after the handshake, so a
            // readable socket means it closed (or misbehaves).
            r = stream.readable() => {
                r?;
                match stream.try_read(&mut probe) {
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    _ => return Err(SessionError::Closed),
                }
            }
        }
    }
}

/// Closing on purpose (the node stops, or the peer was declared down):
/// what is queued gets [`FINAL_FLUSH`] to leave, followed by a goodbye, so
/// the peer does not read the close as this process dying.
async fn say_bye(queue: &PeerQueue, stream: &TcpStream, stats: &NodeStats) {
    queue.push_frame(Class::Control, Control::Bye.encode());
    let deadline = tokio::time::Instant::now() + FINAL_FLUSH;
    while let Some(Flush::Blocked) = queue.flush(stats, true) {
        if tokio::time::timeout_at(deadline, stream.writable()).await.is_err() {
            return;
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
    // Set by the peer's goodbye: its close is then no sign of death.
    let mut bye = false;
    let mut refusals = ctx.shared.access.watch_refusals();
    loop {
        let n = tokio::select! {
            r = stream.read_buf(&mut cipher) => r?,
            Ok(()) = refusals.changed() => {
                match ctx.shared.access.refusal_of(peer) {
                    Some(reason) => return Err(SessionError::Ended { reason, peer: peer.to_owned() }),
                    None => continue,
                }
            }
            () = ctx.cancel.cancelled() => return Ok(()),
        };
        if n == 0 {
            return if bye { Ok(()) } else { Err(SessionError::Closed) };
        }
        let used = wire::open(&mut transport, &cipher, &mut plain)?;
        cipher.drain(..used);
        let mut at = 0;
        loop {
            match frame::parse(&plain[at..]) {
                Ok((frame, len)) => {
                    at += len;
                    bye |= frame.class == Class::Control && Control::decode(&frame.payload) == Ok(Control::Bye);
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
        Class::Control => match Control::decode(&frame.payload) {
            Ok(Control::Bye) => tracing::debug!(%peer, "mesh: peer closes on purpose"),
            Ok(Control::Status { raft_member, raft_cluster }) => {
                ctx.shared.set_peer_status(peer, PeerRaft { member: raft_member, cluster: raft_cluster });
            }
            Err(e) => {
                tracing::warn!(%peer, error = %e, "mesh: undecodable control frame dropped");
                counters.dropped.fetch_add(1, Ordering::Relaxed);
            }
        },
        // A call answered by the local Raft ends with the mesh, like every
        // task on it: Raft may have stopped first and never answer.
        Class::Raft => ctx.shared.raft_transport.inbound(&ctx.shared, peer, &frame.payload, |task| {
            ctx.tracker.spawn(ctx.until_stopped(task));
        }),
        Class::Pg => ctx.shared.on_pg_frame(peer, &frame.payload),
    }
}
