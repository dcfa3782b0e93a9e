//! The SWIM membership core, with every side effect turned into data.
//!
//! [`Membership`] owns the foca instance and nothing else: no socket, no
//! clock, no task. Callers feed it datagrams, expired timers and the current
//! time, then [`Membership::drain`] what it wants done: datagrams to send,
//! timers to arm (as absolute deadlines) and membership events to publish.
//! The gossip task that owns it is the only writer, so it is never behind a
//! lock, and tests drive it with a virtual clock (see `driver_test.rs`).
//!
//! Randomness is an input too: the RNG that picks probe targets is seeded by
//! the caller, so a seeded simulation replays the same run.

use std::net::SocketAddr;
use std::num::{NonZeroU32, NonZeroUsize};
use std::time::{Duration, Instant};

use foca::{AccumulatingRuntime, Config, Foca, NoCustomBroadcast, OwnedNotification, PeriodicParams, PostcardCodec};
use rand::SeedableRng;
use rand::rngs::StdRng;
use thiserror::Error;

use super::identity::NodeIdentity;
use super::seal;

/// A timer foca asked for; hand it back through [`Membership::handle_timer`].
pub(crate) type Timer = foca::Timer<NodeIdentity>;

/// The datagram budget before sealing: a conservative Ethernet payload
/// (1400 bytes, the figure foca and RFC 8085 suggest) minus the seal
/// envelope, so a sealed gossip packet never fragments.
pub(crate) const MAX_PLAINTEXT: usize = 1400 - seal::OVERHEAD;

/// How many members each periodic gossip round goes to.
const GOSSIP_FANOUT: NonZeroUsize = NonZeroUsize::new(3).unwrap();

/// SWIM parameters from `cluster.membership.*`.
///
/// foca's `new_lan` copies memberlist and takes 5–9 s to declare a dead
/// node down; the config defaults (probe 300 ms, probe timeout 100 ms,
/// suspicion ×8, gossip every 100 ms) are tuned so a failed node's names and
/// locks are released within about three seconds, while a node that stalls
/// for 2 s (a long pause, an overloaded host) is only suspected and refutes
/// once it runs again, instead of being declared dead (`tests/t85_pause.rs`;
/// ×3 to ×7 did let such a stall be declared dead in some runs). Detection
/// is roughly: time until some survivor probes the dead node (under one
/// probe period once every node is probing) + one probe period (direct
/// probe, then indirect probes through other members for what is left after
/// the RTT) + the suspicion window. With the defaults that is 300 ms +
/// 300 ms + 2.4 s ≈ 3 s. (With ×3 it was 1.5 s, which is what the
/// measurements in `shared/research/crates.md` §1 show for 5 and 20 nodes.)
///
/// - `probe_period` = `probe_interval`.
/// - `probe_rtt` = `probe_timeout`: the default 100 ms is far above a LAN
///   round trip yet leaves 200 ms of the period for indirect probes, so one
///   lost datagram does not make a node suspect.
/// - `suspect_to_down_after` = `suspicion_mult × probe_interval`: a falsely
///   suspected node is probed (and refutes) at least `suspicion_mult - 1`
///   times before it is declared down. It is not scaled with the cluster
///   size as in memberlist; at 20 nodes the measured detection with ×3
///   was still ≈ 1.5 s.
/// - Periodic gossip to 3 members every `gossip_interval` spreads a Down or
///   Up to the whole cluster in a few rounds instead of waiting for it to
///   ride on probes.
///
/// `cluster_size` still sizes `max_transmissions` (how often an update is
/// repeated) as `new_lan` does. Probe period and RTT cannot be changed on a
/// running instance, so this is decided once at startup. The values are
/// validated by the config crate (`probe_timeout < probe_interval`, all
/// positive, `suspicion_mult ≥ 1`); a zero multiplier is still treated as 1.
pub(crate) fn config_from(
    probe_interval: Duration,
    probe_timeout: Duration,
    suspicion_mult: u32,
    gossip_interval: Duration,
    cluster_size: NonZeroU32,
) -> Config {
    let mut config = Config::new_lan(cluster_size);
    config.probe_period = probe_interval;
    config.probe_rtt = probe_timeout;
    config.suspect_to_down_after = probe_interval.checked_mul(suspicion_mult.max(1)).unwrap_or(Duration::MAX);
    config.periodic_gossip = Some(PeriodicParams { frequency: gossip_interval, num_members: GOSSIP_FANOUT });
    config.max_packet_size = NonZeroUsize::new(MAX_PLAINTEXT).expect("seal overhead is smaller than a datagram");
    config
}

/// Applies `cluster.membership.push_pull_interval`: that often a node
/// announces itself to one random member, which answers with its whole
/// view, and to one member it believes down. The first repairs whatever
/// gossip missed; the second is how two sides of a healed partition, each
/// having declared the other dead, find each other again. foca's LAN
/// defaults do these every 30 s and 65 s, which leaves a healed partition
/// apart for up to a minute.
pub(crate) fn set_push_pull(config: &mut Config, every: Duration) {
    let every = every.max(Duration::from_millis(100));
    config.periodic_announce = Some(PeriodicParams { frequency: every, num_members: NonZeroUsize::MIN });
    config.periodic_announce_to_down_members =
        Some(PeriodicParams { frequency: every, num_members: NonZeroUsize::MIN });
}

/// What the core reported about the cluster, in our own terms so the rest of
/// the node does not depend on foca's types.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum MembershipEvent {
    /// A member became reachable (or came back with a new generation).
    Up(NodeIdentity),
    /// A member was declared down; its names, locks and groups go with it.
    Down(NodeIdentity),
    /// A member replaced its identity with a newer one at the same address.
    Renamed {
        /// The identity that is gone.
        old: NodeIdentity,
        /// The identity that replaced it.
        new: NodeIdentity,
    },
    /// We were declared down and rejoined under this renewed identity.
    Rejoined(NodeIdentity),
    /// We can see at least one other member again.
    Active,
    /// We cannot see any other member; announce to seeds again.
    Idle,
    /// We were declared down and cannot rejoin by ourselves.
    Defunct,
}

impl From<OwnedNotification<NodeIdentity>> for MembershipEvent {
    fn from(notification: OwnedNotification<NodeIdentity>) -> Self {
        match notification {
            OwnedNotification::MemberUp(id) => Self::Up(id),
            OwnedNotification::MemberDown(id) => Self::Down(id),
            OwnedNotification::Rename(old, new) => Self::Renamed { old, new },
            OwnedNotification::Rejoin(id) => Self::Rejoined(id),
            OwnedNotification::Active => Self::Active,
            OwnedNotification::Idle => Self::Idle,
            OwnedNotification::Defunct => Self::Defunct,
        }
    }
}

/// Everything the core asked for since the last [`Membership::drain`].
#[derive(Debug, Default)]
pub(crate) struct Effects {
    /// Datagrams to seal and send, by gossip address.
    pub(crate) send: Vec<(SocketAddr, Vec<u8>)>,
    /// Timers to arm, with the instant at which each must be handed back.
    pub(crate) timers: Vec<(Timer, Instant)>,
    /// Membership changes to publish, in the order they happened.
    pub(crate) events: Vec<MembershipEvent>,
}

impl Effects {
    /// True when there is nothing to do.
    #[allow(dead_code, reason = "used by the driver tests")]
    pub(crate) fn is_empty(&self) -> bool {
        self.send.is_empty() && self.timers.is_empty() && self.events.is_empty()
    }
}

/// Why the core refused an input.
///
/// Any effects the call produced before failing are still queued, so the
/// caller drains as usual; the input itself is simply dropped.
#[derive(Debug, Error)]
pub(crate) enum MembershipError {
    /// foca rejected the input: a malformed or oversized datagram, a packet
    /// claiming to come from ourselves, or a codec failure. For datagrams
    /// this leaves the membership view unchanged.
    #[error("gossip core rejected input: {0}")]
    Rejected(#[from] foca::Error),
}

type Result<T> = std::result::Result<T, MembershipError>;

/// One node's view of the cluster, driven entirely by its caller.
pub(crate) struct Membership {
    foca: Foca<NodeIdentity, PostcardCodec, StdRng, NoCustomBroadcast>,
    /// The configuration foca runs with (foca has no getter).
    config: Config,
    runtime: AccumulatingRuntime<NodeIdentity>,
    effects: Effects,
}

impl Membership {
    /// A node that knows no one yet; [`Self::announce`] to a seed to join.
    pub(crate) fn new(identity: NodeIdentity, config: Config, seed: u64) -> Self {
        Self {
            foca: Foca::new(identity, config.clone(), StdRng::seed_from_u64(seed), PostcardCodec),
            config,
            runtime: AccumulatingRuntime::new(),
            effects: Effects::default(),
        }
    }

    /// Who we are now; changes when we rejoin after being declared down.
    pub(crate) fn identity(&self) -> &NodeIdentity {
        self.foca.identity()
    }

    /// Ask `to` to let us in. Used for seeds at startup and again on
    /// [`MembershipEvent::Idle`].
    pub(crate) fn announce(&mut self, to: NodeIdentity, now: Instant) -> Result<()> {
        let outcome = self.foca.announce(to, &mut self.runtime);
        self.collect(now);
        Ok(outcome?)
    }

    /// Feed one opened (already authenticated) gossip datagram.
    pub(crate) fn handle_data(&mut self, data: &[u8], now: Instant) -> Result<()> {
        let outcome = self.foca.handle_data(data, &mut self.runtime);
        self.collect(now);
        Ok(outcome?)
    }

    /// Hand back a timer from [`Effects::timers`] once its deadline passed.
    /// Stale timers are fine: foca ignores those it no longer expects.
    pub(crate) fn handle_timer(&mut self, timer: Timer, now: Instant) -> Result<()> {
        let outcome = self.foca.handle_timer(timer, &mut self.runtime);
        self.collect(now);
        Ok(outcome?)
    }

    /// Tell a few members we are leaving so they do not wait for suspicion
    /// to expire. The core is defunct afterwards.
    pub(crate) fn leave(&mut self, now: Instant) -> Result<()> {
        let outcome = self.foca.leave_cluster(&mut self.runtime);
        self.collect(now);
        Ok(outcome?)
    }

    /// Sizes dissemination for a cluster of `cluster_size` members: foca
    /// repeats each update `max_transmissions` times, which memberlist
    /// derives from the cluster size. A node that joined through one seed
    /// starts small; without growing this as it learns the cluster, news
    /// from it dies out before reaching everyone in a large cluster.
    pub(crate) fn resize(&mut self, cluster_size: NonZeroU32) -> Result<()> {
        let tx = Config::new_lan(cluster_size).max_transmissions;
        if tx == self.config.max_transmissions {
            return Ok(());
        }
        let mut config = self.config.clone();
        config.max_transmissions = tx;
        self.foca.set_config(config.clone())?;
        self.config = config;
        Ok(())
    }

    /// Repeats per update currently configured.
    #[cfg(test)]
    pub(crate) fn max_transmissions(&self) -> u8 {
        self.config.max_transmissions.get()
    }

    /// Declares `id` down on other evidence than probes (its process closed
    /// its connections) and spreads the verdict like any other.
    pub(crate) fn declare_down(&mut self, id: &NodeIdentity, now: Instant) -> Result<()> {
        let outcome = self.foca.apply_many(std::iter::once(foca::Member::down(id.clone())), true, &mut self.runtime);
        self.collect(now);
        Ok(outcome?)
    }

    /// Take everything the core asked for since the last drain.
    pub(crate) fn drain(&mut self) -> Effects {
        std::mem::take(&mut self.effects)
    }

    /// The other members we currently consider active (alive or suspected),
    /// not including ourselves.
    pub(crate) fn members(&self) -> impl Iterator<Item = &NodeIdentity> {
        self.foca.iter_members().map(|member| member.id())
    }

    /// Every member foca remembers, down ones included (until
    /// `remove_down_after`), with whether it is suspected or down.
    pub(crate) fn member_states(&self) -> impl Iterator<Item = (&NodeIdentity, foca::State)> {
        self.foca.iter_membership_state().map(|member| (member.id(), member.state()))
    }

    /// Number of members [`Self::members`] yields.
    pub(crate) fn num_members(&self) -> usize {
        self.foca.num_members()
    }

    /// Updates still waiting to be disseminated. A value that stays above
    /// the cluster size means identity churn; worth a metric.
    #[allow(dead_code, reason = "for a gossip backlog metric")]
    pub(crate) fn updates_backlog(&self) -> usize {
        self.foca.updates_backlog()
    }

    /// Move foca's buffered effects into ours, turning relative timer delays
    /// into deadlines while `now` is still the time of the call that asked.
    fn collect(&mut self, now: Instant) {
        while let Some((to, data)) = self.runtime.to_send() {
            self.effects.send.push((to.addr, data.to_vec()));
        }
        while let Some((after, timer)) = self.runtime.to_schedule() {
            self.effects.timers.push((timer, now + after));
        }
        while let Some(notification) = self.runtime.to_notify() {
            self.effects.events.push(notification.into());
        }
    }
}

#[cfg(test)]
mod driver_test;
