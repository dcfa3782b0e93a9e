//! The gossip service: the thread that gives the SWIM core a socket, a
//! clock and a key.
//!
//! [`Membership`] is pure; this module is its only owner. One thread does
//! everything (receive, open, feed, fire timers, seal, send), so the core is
//! never shared and needs no lock. The socket read timeout is the thread's
//! only sleep: it wakes for the next datagram, the next timer deadline, the
//! next announce retry or, at the latest, every [`POLL`] to look at the stop
//! flag.
//!
//! What the rest of the node sees is a snapshot of the member list in
//! [`Shared::cluster`], rewritten whenever the core reports a change.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs, UdpSocket};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use thiserror::Error;

use super::membership::driver::{Effects, Membership, MembershipEvent, Timer, config_from};
use super::membership::identity::NodeIdentity;
use super::membership::keyring::{Keyring, KeyringError};
use super::membership::seal::NONCE_LEN;
use crate::shared::{MemberInfo, Shared};

/// Longest the thread sleeps before looking at the stop flag again; bounds
/// how long `Node::stop` waits for it.
const POLL: Duration = Duration::from_millis(100);
/// First delay between announces to the seeds while we know no one.
const RETRY_MIN: Duration = Duration::from_millis(500);
/// Cap of the announce backoff: a seed that comes up late is found within
/// this long, without flooding seeds that are down.
const RETRY_MAX: Duration = Duration::from_secs(8);
/// Label every key is derived under, so a gossip key reused by another
/// protocol cannot open our packets. Fixed, not `cluster.name`: that is the
/// name of one node, and all nodes must derive the same key.
const KEY_LABEL: &str = "wippy-gossip";
/// The id the configured secret is installed under (rotation is not wired).
const KEY_ID: u8 = 1;
/// The largest datagram we accept; bigger ones are truncated and fail to open.
const RECV_BUF: usize = 64 * 1024;

/// How this node takes part in the cluster. Built from `cluster.*` by the
/// binary; the runtime does not read config files itself.
#[derive(Clone)]
pub struct ClusterOptions {
    /// Where the gossip socket listens.
    pub bind: SocketAddr,
    /// Address announced to peers. `None`: the bound one, or when that is
    /// the unspecified address, the local address of the default route.
    pub advertise: Option<IpAddr>,
    /// Seeds (`host:port`), resolved again on every announce so a seed whose
    /// name resolves late is still found.
    pub join: Vec<String>,
    /// The shared gossip secret. Every node needs the same one.
    pub secret: Vec<u8>,
    /// How long a retired key is still accepted.
    pub key_grace: Duration,
    /// Failure domain advertised in the identity.
    pub failure_domain: String,
    /// Period between failure-detection probes (`cluster.membership.probe_interval`).
    pub probe_interval: Duration,
    /// How long to wait for a direct probe ack before probing indirectly
    /// (`cluster.membership.probe_timeout`).
    pub probe_timeout: Duration,
    /// A suspected member is declared down after `suspicion_mult × probe_interval`
    /// (`cluster.membership.suspicion_mult`).
    pub suspicion_mult: u32,
    /// Period between gossip rounds (`cluster.membership.gossip_interval`).
    pub gossip_interval: Duration,
}

impl std::fmt::Debug for ClusterOptions {
    /// Never prints the secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterOptions")
            .field("bind", &self.bind)
            .field("advertise", &self.advertise)
            .field("join", &self.join)
            .field("secret", &"<redacted>")
            .field("failure_domain", &self.failure_domain)
            .field("probe_interval", &self.probe_interval)
            .field("probe_timeout", &self.probe_timeout)
            .field("suspicion_mult", &self.suspicion_mult)
            .field("gossip_interval", &self.gossip_interval)
            .finish()
    }
}

/// Why the gossip service could not start.
#[derive(Debug, Error)]
pub enum GossipError {
    /// The gossip socket could not be bound or configured.
    #[error("gossip socket {addr}: {source}")]
    Socket {
        /// The address we tried to bind.
        addr: SocketAddr,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The secret was refused (too short).
    #[error("gossip secret: {0}")]
    Key(String),
    /// The service thread could not be created.
    #[error("could not start the gossip thread: {0}")]
    Thread(std::io::Error),
}

/// A running gossip service; [`Gossip::stop`] leaves the cluster and joins
/// the thread.
pub(crate) struct Gossip {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    /// Datagrams dropped because they did not open (wrong key, garbage).
    rejected: Arc<AtomicU64>,
}

impl Gossip {
    /// Binds the socket, installs the key and starts the service thread.
    /// Publishes a view holding only this node before returning, so
    /// `system.cluster.*` never sees an empty cluster.
    pub(crate) fn start(opts: &ClusterOptions, shared: Arc<Shared>) -> Result<Gossip, GossipError> {
        let socket_err = |source| GossipError::Socket { addr: opts.bind, source };
        let socket = UdpSocket::bind(opts.bind).map_err(socket_err)?;
        let bound = socket.local_addr().map_err(socket_err)?;
        let now = Instant::now();
        let mut keyring = Keyring::new(KEY_LABEL, opts.key_grace);
        let key_err = |e: KeyringError| GossipError::Key(e.to_string());
        keyring.install(KEY_ID, &opts.secret, now).map_err(key_err)?;
        keyring.make_primary(KEY_ID).map_err(key_err)?;
        let ip = opts.advertise.unwrap_or_else(|| advertise_ip(bound.ip()));
        let identity = NodeIdentity {
            addr: SocketAddr::new(ip, bound.port()),
            // The start time makes a restarted node's generation higher than
            // its previous life's, so it replaces its ghost at once.
            r#gen: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
            name: shared.node_id.clone(),
            internode_port: 0,
            raft_eligible: false,
            raft_priority: 0,
            failure_domain: opts.failure_domain.clone(),
        };
        let cluster_size =
            NonZeroU32::new(u32::try_from(opts.join.len() + 1).unwrap_or(u32::MAX).max(3)).unwrap_or(NonZeroU32::MIN);
        let config = config_from(
            opts.probe_interval,
            opts.probe_timeout,
            opts.suspicion_mult,
            opts.gossip_interval,
            cluster_size,
        );
        let membership = Membership::new(identity.clone(), config, rand::random());
        let stop = Arc::new(AtomicBool::new(false));
        let rejected = shared.gossip_rejected.clone();
        let running = shared.gossip_running.clone();
        let service = Service {
            socket,
            keyring,
            membership,
            timers: BinaryHeap::new(),
            timer_data: Vec::new(),
            seq: 0,
            join: opts.join.clone(),
            retry_at: Some(now),
            retry_delay: RETRY_MIN,
            shared,
            stop: stop.clone(),
            rejected: rejected.clone(),
        };
        service.publish();
        tracing::info!(addr = %identity.addr, name = %identity.name, seeds = opts.join.len(), "gossip started");
        let thread = std::thread::Builder::new()
            .name("wippy-gossip".into())
            .spawn(move || {
                // Cleared on any exit, panics included, so `/livez` notices.
                let _running = RunningFlag::set(running);
                service.run();
            })
            .map_err(GossipError::Thread)?;
        Ok(Gossip { stop, thread: Some(thread), rejected })
    }

    /// Leaves the cluster (peers drop us at once instead of suspecting us)
    /// and waits for the thread.
    pub(crate) fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        tracing::debug!(rejected = self.rejected.load(Ordering::Relaxed), "gossip stopped");
    }
}

impl Drop for Gossip {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Holds `Shared::gossip_running` true for as long as it lives.
struct RunningFlag(Arc<AtomicBool>);

impl RunningFlag {
    fn set(flag: Arc<AtomicBool>) -> RunningFlag {
        flag.store(true, Ordering::SeqCst);
        RunningFlag(flag)
    }
}

impl Drop for RunningFlag {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

/// The address peers should use when we bound the unspecified address: the
/// local end of a route to a public address (connecting a UDP socket sends
/// nothing). Falls back to loopback, which only works on one host.
fn advertise_ip(bound: IpAddr) -> IpAddr {
    if !bound.is_unspecified() {
        return bound;
    }
    let probe = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))
        .and_then(|s| s.connect((Ipv4Addr::new(192, 0, 2, 1), 9)).map(|()| s))
        .and_then(|s| s.local_addr());
    match probe {
        Ok(a) if !a.ip().is_unspecified() => a.ip(),
        _ => {
            tracing::warn!("no route to derive a gossip address from; advertising 127.0.0.1 (set advertise_addr)");
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        }
    }
}

/// The state of the service thread.
struct Service {
    socket: UdpSocket,
    keyring: Keyring,
    membership: Membership,
    /// Pending foca timers, soonest first; `seq` keeps equal deadlines in
    /// the order they were armed (and spares `Timer` an `Ord`).
    timers: BinaryHeap<Reverse<(Instant, u64)>>,
    timer_data: Vec<(u64, Timer)>,
    seq: u64,
    join: Vec<String>,
    /// When to announce to the seeds next; `None` while we know a member.
    retry_at: Option<Instant>,
    retry_delay: Duration,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    rejected: Arc<AtomicU64>,
}

impl Service {
    fn run(mut self) {
        let mut buf = vec![0u8; RECV_BUF];
        while !self.stop.load(Ordering::SeqCst) {
            let now = Instant::now();
            self.fire_timers(now);
            self.maybe_announce(now);
            let mut wake = now + POLL;
            if let Some(Reverse((at, _))) = self.timers.peek() {
                wake = wake.min(*at);
            }
            if let Some(at) = self.retry_at {
                wake = wake.min(at);
            }
            let wait = wake.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
            if let Err(e) = self.socket.set_read_timeout(Some(wait)) {
                tracing::warn!(error = %e, "gossip: cannot set socket timeout");
            }
            match self.socket.recv_from(&mut buf) {
                Ok((len, from)) => self.receive(&buf[..len], from),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted) => {}
                // ICMP port unreachable from a dead peer surfaces here on
                // some systems; it is not a reason to stop gossiping.
                Err(e) => tracing::debug!(error = %e, "gossip: receive failed"),
            }
        }
        if let Err(e) = self.membership.leave(Instant::now()) {
            tracing::debug!(error = %e, "gossip: leave refused");
        }
        let effects = self.membership.drain();
        self.send_all(&effects);
    }

    /// Opens and feeds one datagram; unauthenticated ones are counted and
    /// dropped before foca sees them.
    fn receive(&mut self, packet: &[u8], from: SocketAddr) {
        let now = Instant::now();
        let opened = match self.keyring.open(packet, now) {
            Ok(o) => o,
            Err(e) => {
                let n = self.rejected.fetch_add(1, Ordering::Relaxed) + 1;
                tracing::debug!(%from, error = %e, rejected = n, "gossip: dropped a datagram that did not open");
                return;
            }
        };
        if let Err(e) = self.membership.handle_data(&opened.plaintext, now) {
            tracing::debug!(%from, error = %e, "gossip: datagram refused");
        }
        self.apply(now);
    }

    fn fire_timers(&mut self, now: Instant) {
        while let Some(Reverse((at, seq))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            let Some(pos) = self.timer_data.iter().position(|(s, _)| *s == seq) else { continue };
            let (_, timer) = self.timer_data.swap_remove(pos);
            if let Err(e) = self.membership.handle_timer(timer, now) {
                tracing::debug!(error = %e, "gossip: timer refused");
            }
            self.apply(now);
        }
    }

    /// Announces to every seed while we know no member, backing off from
    /// [`RETRY_MIN`] to [`RETRY_MAX`].
    fn maybe_announce(&mut self, now: Instant) {
        let Some(at) = self.retry_at else { return };
        if at > now {
            return;
        }
        if self.membership.num_members() > 0 || self.join.is_empty() {
            self.retry_at = None;
            return;
        }
        let me = self.membership.identity().clone();
        for seed in &self.join {
            let addrs = match seed.to_socket_addrs() {
                Ok(a) => a,
                Err(e) => {
                    tracing::debug!(%seed, error = %e, "gossip: cannot resolve seed");
                    continue;
                }
            };
            for addr in addrs.filter(|a| *a != me.addr) {
                // foca accepts an announce whose destination has the right
                // address whatever the rest of the identity says.
                let to =
                    NodeIdentity { addr, r#gen: 0, name: String::new(), failure_domain: String::new(), ..me.clone() };
                if let Err(e) = self.membership.announce(to, now) {
                    tracing::debug!(%addr, error = %e, "gossip: announce refused");
                }
            }
        }
        self.apply(now);
        self.retry_at = Some(now + self.retry_delay);
        self.retry_delay = (self.retry_delay * 2).min(RETRY_MAX);
    }

    /// Carries out what the core asked for and republishes the view when
    /// membership changed.
    fn apply(&mut self, now: Instant) {
        let effects = self.membership.drain();
        self.send_all(&effects);
        for (timer, at) in effects.timers {
            self.seq += 1;
            self.timers.push(Reverse((at, self.seq)));
            self.timer_data.push((self.seq, timer));
        }
        if effects.events.is_empty() {
            return;
        }
        for ev in &effects.events {
            match ev {
                MembershipEvent::Up(id) => tracing::info!(member = %id.name, addr = %id.addr, "gossip: member up"),
                MembershipEvent::Down(id) => tracing::info!(member = %id.name, addr = %id.addr, "gossip: member down"),
                MembershipEvent::Idle => {
                    tracing::info!("gossip: no members left; announcing to seeds again");
                    self.retry_at = Some(now);
                    self.retry_delay = RETRY_MIN;
                }
                MembershipEvent::Defunct => tracing::warn!("gossip: this node was declared down"),
                other => tracing::debug!(event = ?other, "gossip"),
            }
        }
        self.publish();
    }

    fn send_all(&self, effects: &Effects) {
        for (to, data) in &effects.send {
            let nonce: [u8; NONCE_LEN] = rand::random();
            match self.keyring.seal(nonce, data) {
                Ok(packet) => {
                    if let Err(e) = self.socket.send_to(&packet, to) {
                        tracing::debug!(%to, error = %e, "gossip: send failed");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "gossip: cannot seal"),
            }
        }
    }

    /// Rewrites the shared view: this node first, then the others by name.
    fn publish(&self) {
        let me = self.membership.identity();
        let mut others: Vec<MemberInfo> = self
            .membership
            .members()
            .map(|id| MemberInfo { name: id.name.clone(), addr: id.addr.to_string(), is_local: false })
            .collect();
        others.sort_by(|a, b| a.name.cmp(&b.name));
        let mut view = Vec::with_capacity(others.len() + 1);
        view.push(MemberInfo { name: me.name.clone(), addr: me.addr.to_string(), is_local: true });
        view.extend(others);
        *self.shared.cluster.write().unwrap_or_else(|e| e.into_inner()) = Some(view);
    }
}
