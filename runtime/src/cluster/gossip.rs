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

use std::collections::BinaryHeap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use thiserror::Error;

use super::keys::KeySet;
use super::membership::driver::{Membership, config_from, set_push_pull};
use super::membership::identity::NodeIdentity;
use super::membership::keyring::{Keyring, KeyringError};
use crate::shared::Shared;

mod health;
mod service;

use service::Service;

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
    /// The shared cluster secret. Every node needs the same one; gossip
    /// seals with it and the mesh authenticates with it.
    pub secret: Vec<u8>,
    /// Further secrets still accepted (for `key_grace` from start) while
    /// the cluster rotates to a new one (`accept_secret_keys`).
    pub accept_secrets: Vec<Vec<u8>>,
    /// Interface the internode mesh listens on (`cluster.internode.bind_addr`).
    pub internode_bind: IpAddr,
    /// Its port (`cluster.internode.bind_port`); 0 tries 7950–7959, then
    /// any free port. The bound port is what gossip advertises.
    pub internode_port: u16,
    /// How long a node with seeds may see no other member before `/livez`
    /// fails; nothing fails during this long after start either.
    pub isolation_grace: Duration,
    /// How long a retired key is still accepted.
    pub key_grace: Duration,
    /// Failure domain advertised in the identity.
    pub failure_domain: String,
    /// Whether this node may be picked as a Raft voter (advertised).
    pub raft_eligible: bool,
    /// Its rank among eligible nodes, lower first (advertised).
    pub raft_priority: u32,
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
    /// Period between full view exchanges with a random member, and with a
    /// member believed down (`cluster.membership.push_pull_interval`).
    pub push_pull_interval: Duration,
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
            .field("internode_bind", &self.internode_bind)
            .field("internode_port", &self.internode_port)
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
    #[error("gossip socket {addr}: {error}")]
    Socket {
        /// The address we tried to bind.
        addr: SocketAddr,
        /// What the OS said (part of the message, not a separate cause, so
        /// a printed chain does not repeat it).
        error: std::io::Error,
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
        let socket_err = |error| GossipError::Socket { addr: opts.bind, error };
        let socket = UdpSocket::bind(opts.bind).map_err(socket_err)?;
        let bound = socket.local_addr().map_err(socket_err)?;
        let now = Instant::now();
        let keys = KeySet::new(&opts.secret, &opts.accept_secrets, opts.key_grace, now)
            .map_err(|e| GossipError::Key(e.to_string()))?;
        let mut keyring = Keyring::new(KEY_LABEL, opts.key_grace);
        let key_err = |e: KeyringError| GossipError::Key(e.to_string());
        keyring.install(keys.primary.id, &keys.primary.secret, now).map_err(key_err)?;
        keyring.make_primary(keys.primary.id).map_err(key_err)?;
        for (key, _) in &keys.accepted {
            keyring.install(key.id, &key.secret, now).map_err(key_err)?;
            keyring.retire(key.id, now).map_err(key_err)?;
        }
        let ip = opts.advertise.unwrap_or_else(|| advertise_ip(bound.ip()));
        let identity = NodeIdentity {
            addr: SocketAddr::new(ip, bound.port()),
            // The start time makes a restarted node's generation higher than
            // its previous life's, so it replaces its ghost at once.
            r#gen: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
            name: shared.node_id.clone(),
            internode_port: opts.internode_port,
            raft_eligible: opts.raft_eligible,
            raft_priority: opts.raft_priority,
            failure_domain: opts.failure_domain.clone(),
        };
        let cluster_size =
            NonZeroU32::new(u32::try_from(opts.join.len() + 1).unwrap_or(u32::MAX).max(3)).unwrap_or(NonZeroU32::MIN);
        let mut config = config_from(
            opts.probe_interval,
            opts.probe_timeout,
            opts.suspicion_mult,
            opts.gossip_interval,
            cluster_size,
        );
        set_push_pull(&mut config, opts.push_pull_interval);
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
            health: health::Health::new(now, opts.isolation_grace, !opts.join.is_empty()),
            leaving: Default::default(),
            left: Default::default(),
            seen: Default::default(),
            deferred: Vec::new(),
            up_at: Default::default(),
            last_states: Vec::new(),
            introducing_until: now + service::INTRODUCE_FOR,
            min_size: cluster_size.get(),
        };
        service.publish();
        service.shared.access.set_addresses(None, Some(identity.addr.to_string()));
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::cluster::events::ClusterEvent;
    use crate::shared::MemberState;

    fn options(port: u16, join: Option<u16>) -> ClusterOptions {
        ClusterOptions {
            bind: SocketAddr::from(([127, 0, 0, 1], port)),
            advertise: None,
            join: join.map(|j| format!("127.0.0.1:{j}")).into_iter().collect(),
            secret: b"0123456789abcdef0123456789abcdef".to_vec(),
            accept_secrets: Vec::new(),
            internode_bind: IpAddr::from([127, 0, 0, 1]),
            internode_port: 7777,
            key_grace: Duration::from_secs(60),
            isolation_grace: Duration::from_secs(30),
            failure_domain: "rack-1".into(),
            raft_eligible: true,
            raft_priority: 2,
            probe_interval: Duration::from_millis(300),
            probe_timeout: Duration::from_millis(100),
            suspicion_mult: 3,
            gossip_interval: Duration::from_millis(100),
            push_pull_interval: Duration::from_secs(5),
        }
    }

    fn next(rx: &crossbeam_channel::Receiver<ClusterEvent>) -> ClusterEvent {
        rx.recv_timeout(Duration::from_secs(10)).expect("a membership event within 10 s")
    }

    /// Two gossip services on real sockets: the joiner is announced to
    /// subscribers with its metadata, and a graceful stop reads as `left`.
    #[test]
    fn join_and_graceful_leave_reach_subscribers() {
        let (sa, sb) = (Arc::new(Shared::new("a".into(), 1, 1 << 20)), Arc::new(Shared::new("b".into(), 1, 1 << 20)));
        let events = sa.membership_events.subscribe();
        let a = Gossip::start(&options(0, None), sa.clone()).unwrap();
        let a_port = sa.cluster.read().unwrap().as_ref().unwrap()[0].addr.rsplit(':').next().unwrap().parse().unwrap();
        let b = Gossip::start(&options(0, Some(a_port)), sb.clone()).unwrap();
        match next(&events) {
            ClusterEvent::NodeJoined(m) => {
                assert_eq!((m.name.as_str(), m.failure_domain.as_str()), ("b", "rack-1"));
                assert_eq!(m.internode, SocketAddr::from(([127, 0, 0, 1], 7777)));
            }
            other => panic!("expected b to join, got {other:?}"),
        }
        assert_eq!(sa.member_internode("b"), Some(SocketAddr::from(([127, 0, 0, 1], 7777))));
        b.stop();
        assert_eq!(next(&events), ClusterEvent::NodeLeft { name: "b".into(), state: MemberState::Left });
        let view = sa.cluster.read().unwrap().clone().unwrap();
        assert!(view.iter().any(|m| m.name == "b" && m.state == MemberState::Left), "{view:?}");
        assert_eq!(sa.member_internode("b"), None);

        a.stop();
    }
}
