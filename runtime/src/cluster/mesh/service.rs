//! The mesh service: a thread running a single-threaded tokio runtime with
//! the listener, one writer task per peer we send to and one reader task
//! per accepted connection.
//!
//! One thread keeps every socket, every queue hand-off and every
//! encryption on one core's cache; workers reach it through the peer
//! queues (`outbound.rs`) and it reaches workers through their mailrooms.

use std::net::{IpAddr, SocketAddr, TcpListener};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use thiserror::Error;
use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::ctx::Ctx;
use super::handshake::{Identity, generate_static_keypair};
use super::outbound::PeerQueue;
use super::session::{self, SessionError};
use crate::cluster::keys::KeySet;
use crate::shared::Shared;

/// Ports tried in order when `internode.bind_port` is 0.
const PREFERRED_PORTS: std::ops::RangeInclusive<u16> = 7950..=7959;
/// First and last delay between reconnect attempts to one peer.
const RECONNECT_MIN: Duration = Duration::from_millis(100);
const RECONNECT_MAX: Duration = Duration::from_secs(5);
/// Longest the stop waits for the mesh's tasks to end.
const STOP_WAIT: Duration = Duration::from_secs(5);
/// Longest an accepted connection may take to finish the handshake.
const ACCEPT_TIMEOUT: Duration = Duration::from_secs(10);

/// How the mesh listens.
#[derive(Clone)]
pub(crate) struct MeshOptions {
    /// Interface to bind.
    pub(crate) bind: IpAddr,
    /// Port; 0 tries 7950–7959, then any free port.
    pub(crate) port: u16,
    /// The cluster secrets (the same ones gossip uses).
    pub(crate) keys: KeySet,
}

impl std::fmt::Debug for MeshOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeshOptions").field("bind", &self.bind).field("port", &self.port).finish_non_exhaustive()
    }
}

/// Why the mesh could not start.
#[derive(Debug, Error)]
pub enum MeshError {
    /// No port could be bound.
    #[error("internode listener on {addr}: {error}")]
    Bind {
        /// The address tried last.
        addr: SocketAddr,
        /// What the OS said (part of the message, not a separate cause, so
        /// a printed chain does not repeat it).
        error: std::io::Error,
    },
    /// The key or the runtime could not be set up.
    #[error("could not start the internode mesh: {0}")]
    Start(String),
}

/// Hands new peer queues to the mesh runtime.
pub(crate) struct Spawner {
    handle: Handle,
    ctx: Arc<Ctx>,
}

impl Spawner {
    /// Starts the writer task of a freshly created peer queue.
    pub(crate) fn start_peer(&self, queue: Arc<PeerQueue>) {
        let ctx = self.ctx.clone();
        self.ctx.tracker.spawn_on(peer_task(ctx, queue), &self.handle);
    }

    /// Runs `task` on the mesh thread, tracked like the mesh's own tasks
    /// (a node's Raft client requests run here, beside the frames they
    /// send and receive). The mesh's stop cancels it: by then the workers
    /// that wait for such answers are gone.
    pub(crate) fn spawn(&self, task: impl std::future::Future<Output = ()> + Send + 'static) {
        self.ctx.tracker.spawn_on(self.ctx.until_stopped(task), &self.handle);
    }
}

/// A running mesh; [`Mesh::stop`] ends every connection and joins the thread.
pub(crate) struct Mesh {
    port: u16,
    cancel: CancellationToken,
    tracker: TaskTracker,
    thread: Option<JoinHandle<()>>,
    shared: Arc<Shared>,
}

impl Mesh {
    /// Binds the listener now, so a taken port fails the node's start, and
    /// returns it with the chosen port.
    pub(crate) fn bind(opts: &MeshOptions) -> Result<TcpListener, MeshError> {
        let try_bind = |port| {
            let addr = SocketAddr::new(opts.bind, port);
            TcpListener::bind(addr).map_err(|error| MeshError::Bind { addr, error })
        };
        if opts.port != 0 {
            return try_bind(opts.port);
        }
        PREFERRED_PORTS.map(try_bind).find_map(Result::ok).map_or_else(|| try_bind(0), Ok)
    }

    /// Starts the mesh thread on a bound listener.
    pub(crate) fn start(listener: TcpListener, opts: &MeshOptions, shared: Arc<Shared>) -> Result<Mesh, MeshError> {
        let start_err = |e: &dyn std::fmt::Display| MeshError::Start(e.to_string());
        let port = listener.local_addr().map_err(|e| start_err(&e))?.port();
        listener.set_nonblocking(true).map_err(|e| start_err(&e))?;
        let (key, static_public) = generate_static_keypair().map_err(|e| start_err(&e))?;
        let identity = Identity::new(shared.node_id.clone(), key).map_err(|e| start_err(&e))?;
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| start_err(&e))?;
        let cancel = CancellationToken::new();
        let ctx = Arc::new(Ctx {
            identity,
            static_public,
            keys: opts.keys.clone(),
            shared: shared.clone(),
            cancel: cancel.clone(),
            tracker: TaskTracker::new(),
        });
        let listener = {
            let _guard = rt.enter();
            tokio::net::TcpListener::from_std(listener).map_err(|e| start_err(&e))?
        };
        *shared.mesh.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(Spawner { handle: rt.handle().clone(), ctx: ctx.clone() });
        let tracker = ctx.tracker.clone();
        let thread = std::thread::Builder::new()
            .name("wippy-mesh".into())
            .spawn(move || {
                rt.block_on(async move {
                    ctx.tracker.spawn(listen(ctx.clone(), listener));
                    ctx.cancel.cancelled().await;
                    ctx.tracker.close();
                    ctx.tracker.wait().await;
                });
            })
            .map_err(|e| start_err(&e))?;
        tracing::info!(port, "mesh listening");
        Ok(Mesh { port, cancel, tracker, thread: Some(thread), shared })
    }

    /// The port the listener is bound to.
    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// Stops accepting, gives writers a moment to flush, closes everything.
    pub(crate) fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.shared.mesh.lock().unwrap_or_else(|e| e.into_inner()).take();
        self.cancel.cancel();
        if let Some(t) = self.thread.take() {
            // Every task ends on the cancel; one that does not must not
            // hold the node's shutdown hostage: the log counts what is left
            // behind with the thread.
            let deadline = std::time::Instant::now() + STOP_WAIT;
            while !t.is_finished() && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            if t.is_finished() {
                let _ = t.join();
            } else {
                tracing::warn!(
                    tasks = self.tracker.len(),
                    "mesh: tasks still running {STOP_WAIT:?} after the stop; not waiting"
                );
            }
        }
        self.shared.peers.clear();
    }
}

impl Drop for Mesh {
    fn drop(&mut self) {
        self.halt();
    }
}

async fn listen(ctx: Arc<Ctx>, listener: tokio::net::TcpListener) {
    loop {
        let (stream, from) = tokio::select! {
            r = listener.accept() => match r {
                Ok(s) => s,
                Err(e) => {
                    // Out of descriptors and the like: wait instead of spinning.
                    tracing::warn!(error = %e, "mesh: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = ctx.cancel.cancelled() => return,
        };
        ctx.tracker.spawn(inbound(ctx.clone(), stream, from));
    }
}

/// Handshake as responder, then read until the connection ends.
async fn inbound(ctx: Arc<Ctx>, mut stream: tokio::net::TcpStream, from: SocketAddr) {
    let accepted = tokio::select! {
        r = tokio::time::timeout(ACCEPT_TIMEOUT, session::accept(&ctx, &mut stream)) => {
            r.unwrap_or(Err(SessionError::Timeout))
        }
        () = ctx.cancel.cancelled() => return,
    };
    let (peer, transport) = match accepted {
        Ok(a) => a,
        Err(e) => {
            if e.is_handshake() {
                ctx.shared.stats.handshake_failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::warn!(%from, error = %e, "mesh: refused a connection");
            } else {
                tracing::debug!(%from, error = %e, "mesh: connection ended during the handshake");
            }
            return;
        }
    };
    tracing::debug!(%from, %peer, "mesh: accepted");
    let generation = ctx.shared.member_link(&peer).map(|(_, g)| g);
    let since = std::time::Instant::now();
    match session::read_loop(&ctx, &peer, stream, transport).await {
        Ok(()) => {}
        Err(e) if e.peer_went_away() => {
            tracing::debug!(%peer, "mesh: inbound connection closed by the peer");
            if let Some(g) = generation {
                ctx.shared.peer_closed(&peer, g, since);
            }
        }
        Err(e @ SessionError::Ended { .. }) => tracing::info!(%peer, "mesh: {e}"),
        Err(e) => tracing::warn!(%peer, error = %e, "mesh: inbound connection dropped"),
    }
}

/// Keeps one peer connected while its queue is open and writes what the
/// queue collects. Reconnects with backoff; reports the first failure of a
/// streak at warn level and the rest at debug, so a peer that is down does
/// not flood the log.
async fn peer_task(ctx: Arc<Ctx>, queue: Arc<PeerQueue>) {
    let mut delay = RECONNECT_MIN;
    let mut failures = 0u32;
    while !queue.is_closed() && !ctx.cancel.is_cancelled() {
        if let Some((addr, generation)) = ctx.shared.member_link(&queue.name) {
            let dialled = tokio::select! {
                r = session::dial(&ctx, addr, &queue.name) => r,
                () = ctx.cancel.cancelled() => return,
            };
            match dialled {
                Ok((stream, transport)) => {
                    let since = std::time::Instant::now();
                    tracing::debug!(peer = %queue.name, %addr, "mesh: connected");
                    delay = RECONNECT_MIN;
                    failures = 0;
                    match session::write_loop(&ctx, &queue, stream, transport).await {
                        Ok(()) => return,
                        Err(e) => {
                            if e.peer_went_away() {
                                ctx.shared.peer_closed(&queue.name, generation, since);
                            }
                            tracing::info!(peer = %queue.name, error = %e, "mesh: connection lost; reconnecting");
                        }
                    }
                }
                Err(e) => {
                    if e.is_handshake() {
                        ctx.shared.stats.handshake_failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    failures += 1;
                    if failures == 1 {
                        tracing::warn!(peer = %queue.name, %addr, error = %e, "mesh: cannot connect; retrying");
                    } else {
                        tracing::debug!(peer = %queue.name, %addr, error = %e, failures, "mesh: cannot connect");
                    }
                }
            }
        }
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = ctx.cancel.cancelled() => return,
        }
        delay = (delay * 2).min(RECONNECT_MAX);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::cluster::mesh::frame::{Class, Frame};
    use crate::cluster::mesh::relay::{RelayBatch, RelayItem, RelayMsg, encode_batch};
    use crate::cluster::mesh::wire;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn keys(secret: &[u8]) -> KeySet {
        KeySet::new(secret, &[], Duration::from_secs(60), std::time::Instant::now()).unwrap()
    }

    /// A mesh for node `b` on a real loopback socket.
    fn listening(shared: &Arc<Shared>) -> (Mesh, SocketAddr) {
        let opts = MeshOptions { bind: IpAddr::from([127, 0, 0, 1]), port: 0, keys: keys(SECRET) };
        let listener = TcpListener::bind((opts.bind, 0)).unwrap();
        let mesh = Mesh::start(listener, &opts, shared.clone()).unwrap();
        let addr = SocketAddr::new(opts.bind, mesh.port());
        (mesh, addr)
    }

    /// The dialling side's context, as node `a` with `secret`.
    fn dialler(secret: &[u8]) -> Ctx {
        let (key, static_public) = generate_static_keypair().unwrap();
        Ctx {
            identity: Identity::new("a", key).unwrap(),
            static_public,
            keys: keys(secret),
            shared: Arc::new(Shared::new("a".into(), 1, 1 << 20)),
            cancel: CancellationToken::new(),
            tracker: TaskTracker::new(),
        }
    }

    fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !cond() {
            assert!(std::time::Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn wrong_secret_is_refused_and_counted_garbage_is_dropped_and_the_right_secret_gets_through() {
        let shared = Arc::new(Shared::new("b".into(), 1, 1 << 20));
        let (mesh, addr) = listening(&shared);
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            // Another cluster's secret: both ends refuse.
            let stranger = dialler(b"ffffffffffffffffffffffffffffffff");
            let err = session::dial(&stranger, addr, "b").await.unwrap_err();
            assert!(matches!(err, SessionError::Handshake(_) | SessionError::Closed), "{err}");

            // Bytes that are not a handshake: the connection is dropped.
            let mut junk = tokio::net::TcpStream::connect(addr).await.unwrap();
            junk.write_all(&[0, 40, 1, 2, 3]).await.unwrap();
            junk.write_all(&[7u8; 40]).await.unwrap();
            let mut buf = [0u8; 16];
            let n = tokio::time::timeout(Duration::from_secs(10), junk.read(&mut buf)).await.unwrap();
            assert!(matches!(n, Ok(0) | Err(_)), "the node should hang up on garbage");

            // The right secret, but the wrong name expected: refused by us.
            let friend = dialler(SECRET);
            let err = session::dial(&friend, addr, "c").await.unwrap_err();
            assert!(matches!(err, SessionError::WrongPeer { .. }), "{err}");

            // The right secret: frames get through and are counted.
            let (mut stream, mut transport) = session::dial(&friend, addr, "b").await.unwrap();
            let item = RelayItem::Message(RelayMsg {
                to: "{b@h|0x00099}".into(),
                from: "{a@h|0x00001}".into(),
                topic: "t".into(),
                payload: wippy_lua_stdlib::Value::Int(1),
            });
            let mut plain = Vec::new();
            Frame { class: Class::Relay, payload: encode_batch(&RelayBatch(vec![item])).unwrap() }
                .encode(&mut plain)
                .unwrap();
            Frame { class: Class::Raft, payload: vec![1, 2, 3] }.encode(&mut plain).unwrap();
            let mut cipher = Vec::new();
            wire::seal(&mut transport, &plain, &mut cipher).unwrap();
            stream.write_all(&cipher).await.unwrap();
        });
        let stats = &shared.stats;
        wait_for("both frames", || stats.class(Class::Raft).frames_received.load(Ordering::Relaxed) == 1);
        assert_eq!(stats.class(Class::Relay).frames_received.load(Ordering::Relaxed), 1);
        // Nobody lives at 0x99 on node b; the message reached the worker's
        // inbox (and is dropped there), nothing was dropped on the way.
        assert_eq!(stats.class(Class::Relay).dropped.load(Ordering::Relaxed), 0);
        assert!(stats.handshake_failures.load(Ordering::Relaxed) >= 1, "the stranger is counted");
        mesh.stop();
    }

    /// Sends `frames` over a fresh authenticated connection to `addr`, then
    /// closes it.
    async fn send_and_close(friend: &Ctx, addr: SocketAddr, frames: &[Frame]) {
        let (mut stream, mut transport) = session::dial(friend, addr, "b").await.unwrap();
        let mut plain = Vec::new();
        for f in frames {
            f.encode(&mut plain).unwrap();
        }
        let mut cipher = Vec::new();
        wire::seal(&mut transport, &plain, &mut cipher).unwrap();
        stream.write_all(&cipher).await.unwrap();
        stream.shutdown().await.unwrap();
    }

    /// A peer whose connection just closes is reported (its process is
    /// likely gone); one that says goodbye first is not.
    #[test]
    fn a_close_without_goodbye_is_reported_as_the_peer_going_away() {
        use crate::shared::{MemberInfo, MemberState};
        let shared = Arc::new(Shared::new("b".into(), 1, 1 << 20));
        let member = |name: &str, local: bool| MemberInfo {
            name: name.into(),
            addr: String::new(),
            internode: SocketAddr::from(([127, 0, 0, 1], 1)),
            failure_domain: String::new(),
            state: MemberState::Alive,
            is_local: local,
            generation: 7,
            raft_eligible: false,
            raft_priority: 0,
        };
        *shared.cluster.write().unwrap() = Some(vec![member("b", true), member("a", false)]);
        let (mesh, addr) = listening(&shared);
        let friend = dialler(SECRET);
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let bye = Frame { class: Class::Control, payload: crate::cluster::mesh::control::Control::Bye.encode() };
        rt.block_on(send_and_close(&friend, addr, &[bye]));
        wait_for("the goodbye", || shared.stats.class(Class::Control).frames_received.load(Ordering::Relaxed) == 1);
        std::thread::sleep(Duration::from_millis(100));
        assert!(shared.closed_peers.lock().unwrap().is_empty(), "a goodbye is not a death");
        rt.block_on(send_and_close(&friend, addr, &[]));
        wait_for("the report", || !shared.closed_peers.lock().unwrap().is_empty());
        let closed = shared.closed_peers.lock().unwrap().clone();
        assert_eq!(closed.iter().map(|c| (c.name.as_str(), c.generation)).collect::<Vec<_>>(), [("a", 7)]);
        mesh.stop();
    }

    #[test]
    fn port_zero_prefers_the_documented_range() {
        let opts = MeshOptions { bind: IpAddr::from([127, 0, 0, 1]), port: 0, keys: keys(SECRET) };
        let listener = Mesh::bind(&opts).unwrap();
        let port = listener.local_addr().unwrap().port();
        // Another test or process may hold all ten; then any port is fine.
        let held = PREFERRED_PORTS.filter(|p| TcpListener::bind((opts.bind, *p)).is_err()).count();
        assert!(PREFERRED_PORTS.contains(&port) || held == 10, "port {port}");
    }
}
