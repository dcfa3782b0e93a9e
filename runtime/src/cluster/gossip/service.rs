//! The gossip thread's state and loop: receive, open, feed the core, fire
//! timers, seal, send, and publish what changed.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::io::ErrorKind;
use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::{POLL, RECV_BUF, RETRY_MAX, RETRY_MIN};
use crate::cluster::events::ClusterEvent;
use crate::cluster::membership::driver::{Effects, Membership, MembershipError, MembershipEvent, Timer};
use crate::cluster::membership::identity::NodeIdentity;
use crate::cluster::membership::keyring::Keyring;
use crate::cluster::membership::seal::NONCE_LEN;
use crate::shared::{MemberInfo, MemberState, Shared};

/// How long after joining a node introduces itself to every member it
/// learns of.
pub(super) const INTRODUCE_FOR: Duration = Duration::from_secs(10);
/// First plaintext byte of a datagram carrying a foca packet.
const KIND_SWIM: u8 = 0;
/// First plaintext byte of a goodbye: the sender is stopping on purpose and
/// its name follows. Lets peers tell "left" from "dead".
const KIND_BYE: u8 = 1;
/// A generation that moved by more than this (in nanoseconds) belongs to a
/// new process, not to a rejoin (which adds one).
const FRESH_START: u64 = 1_000_000;

/// The state of the service thread.
pub(super) struct Service {
    pub(super) socket: UdpSocket,
    pub(super) keyring: Keyring,
    pub(super) membership: Membership,
    /// Pending foca timers, soonest first; `seq` keeps equal deadlines in
    /// the order they were armed (and spares `Timer` an `Ord`).
    pub(super) timers: BinaryHeap<Reverse<(Instant, u64)>>,
    pub(super) timer_data: Vec<(u64, Timer)>,
    pub(super) seq: u64,
    pub(super) join: Vec<String>,
    /// When to announce to the seeds next; `None` while we know a member.
    pub(super) retry_at: Option<Instant>,
    pub(super) retry_delay: Duration,
    pub(super) shared: Arc<Shared>,
    pub(super) stop: Arc<AtomicBool>,
    pub(super) rejected: Arc<AtomicU64>,
    /// Names that said goodbye; their next Down is a departure.
    pub(super) leaving: HashSet<String>,
    /// Members that departed on purpose, by gossip address.
    pub(super) left: HashSet<SocketAddr>,
    /// Per name: the generation of its latest incarnation, and whether that
    /// incarnation is up. Tells a new process from a rejoin, and a stale
    /// incarnation's death from the current one's.
    pub(super) seen: HashMap<String, (u64, bool)>,
    /// The verdict behind `/livez`.
    pub(super) health: super::health::Health,
    /// The cluster size the seeds suggest; dissemination never goes below.
    pub(super) min_size: u32,
    /// Member states as last published, to notice suspicion coming and going.
    pub(super) last_states: Vec<(SocketAddr, foca::State)>,
    /// Until when members that come up are announced to directly (the
    /// first moments after joining or rejoining).
    pub(super) introducing_until: Instant,
    /// When each member last came up (joined or returned).
    pub(super) up_at: HashMap<String, Instant>,
    /// What to do once the view is published (see `apply`).
    pub(super) deferred: Vec<Deferred>,
}

/// A reaction to a membership change, carried out after the new view is
/// published.
pub(super) enum Deferred {
    /// Fire node-down for this name.
    Down(String),
    /// Tell subscribers.
    Event(ClusterEvent),
}

impl Service {
    pub(super) fn run(mut self) {
        let mut buf = vec![0u8; RECV_BUF];
        while !self.stop.load(Ordering::SeqCst) {
            let now = Instant::now();
            for id in self.keyring.expire(now) {
                tracing::info!(key_id = id, "gossip: an accepted cluster key reached the end of its grace period");
            }
            self.fire_timers(now);
            self.join_requested(now);
            self.maybe_announce(now);
            self.take_closed_peers(now);
            self.health.members(now, self.membership.num_members());
            let (verdict, score) = self.health.check(now);
            self.shared.gossip_health_score.store(score, Ordering::Relaxed);
            let mut health = self.shared.gossip_health.lock().unwrap_or_else(|e| e.into_inner());
            // Logged on the transitions only; the reason's figures change
            // every second while it lasts.
            match (&*health, &verdict) {
                (None, Some(why)) => tracing::warn!(reason = %why, "gossip: unhealthy"),
                (Some(_), None) => tracing::info!("gossip: healthy again"),
                _ => {}
            }
            *health = verdict;
            drop(health);
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
        self.say_goodbye();
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
        match opened.plaintext.split_first() {
            Some((&KIND_SWIM, data)) => {
                if let Err(e) = self.membership.handle_data(data, now) {
                    tracing::debug!(%from, error = %e, "gossip: datagram refused");
                }
            }
            Some((&KIND_BYE, name)) => {
                let name = String::from_utf8_lossy(name).into_owned();
                tracing::debug!(%from, member = %name, "gossip: goodbye");
                self.leaving.insert(name);
            }
            _ => tracing::debug!(%from, "gossip: datagram of an unknown kind"),
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

    /// Announces to the addresses `peers add` asked for, once each, and
    /// keeps them as seeds for when this node finds itself alone again.
    fn join_requested(&mut self, now: Instant) {
        let requested = self.shared.access.take_joins();
        if requested.is_empty() {
            return;
        }
        let me = self.membership.identity().addr;
        for addr in requested.into_iter().filter(|a| *a != me) {
            tracing::info!(%addr, "gossip: joining a peer added by an operator");
            if let Err(e) = self.announce_to(addr, now) {
                tracing::warn!(%addr, error = %e, "gossip: announce refused");
            }
            if !self.join.contains(&addr.to_string()) {
                self.join.push(addr.to_string());
            }
        }
        self.apply(now);
    }

    /// Announces this node to whoever listens at `addr`. foca accepts an
    /// announce whose destination has the right address whatever the rest
    /// of the identity says.
    fn announce_to(&mut self, addr: SocketAddr, now: Instant) -> Result<(), MembershipError> {
        let me = self.membership.identity().clone();
        let to = NodeIdentity { addr, r#gen: 0, name: String::new(), failure_domain: String::new(), ..me };
        self.membership.announce(to, now)
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
        let me = self.membership.identity().addr;
        let mut targets = Vec::new();
        for seed in &self.join {
            match seed.to_socket_addrs() {
                Ok(addrs) => targets.extend(addrs.filter(|a| *a != me)),
                Err(e) => tracing::debug!(%seed, error = %e, "gossip: cannot resolve seed"),
            }
        }
        for addr in targets {
            if let Err(e) = self.announce_to(addr, now) {
                tracing::debug!(%addr, error = %e, "gossip: announce refused");
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
        let Effects { timers, events, .. } = effects;
        self.arm(timers);
        // foca reports no event when a member turns suspect (or back), so
        // the view is also republished whenever a member's state changed.
        let states: Vec<(SocketAddr, foca::State)> =
            self.membership.member_states().map(|(id, state)| (id.addr, state)).collect();
        let changed = states != self.last_states;
        self.last_states = states;
        if events.is_empty() {
            if changed {
                self.publish();
            }
            return;
        }
        let mut introduce = Vec::new();
        for ev in &events {
            match ev {
                MembershipEvent::Up(id) => {
                    tracing::info!(member = %id.name, addr = %id.addr, "gossip: member up");
                    if now < self.introducing_until {
                        introduce.push(id.clone());
                    }
                    self.member_up(id);
                    let info = member_info(id, MemberState::Alive, false);
                    self.deferred.push(Deferred::Event(ClusterEvent::NodeJoined(info)));
                }
                MembershipEvent::Down(id) => {
                    let left = self.leaving.remove(&id.name);
                    if left {
                        self.left.insert(id.addr);
                    }
                    let state = if left { MemberState::Left } else { MemberState::Dead };
                    tracing::info!(member = %id.name, addr = %id.addr, how = state.as_str(), "gossip: member down");
                    // Only the current incarnation's death takes the name's
                    // processes down; a stale one's was handled when its
                    // successor appeared.
                    match self.seen.get_mut(&id.name) {
                        Some((g, up)) if g.abs_diff(id.r#gen) <= FRESH_START => {
                            *up = false;
                            self.deferred.push(Deferred::Down(id.name.clone()));
                        }
                        Some(_) => {}
                        None => self.deferred.push(Deferred::Down(id.name.clone())),
                    }
                    let name = id.name.clone();
                    self.deferred.push(Deferred::Event(ClusterEvent::NodeLeft { name, state }));
                }
                MembershipEvent::Renamed { old, new } => {
                    tracing::info!(member = %new.name, was = %old.name, addr = %new.addr, "gossip: member renewed");
                    // A new process behind the same address: member_up
                    // takes the old one's processes down.
                    self.member_up(new);
                    let info = member_info(new, MemberState::Alive, false);
                    self.deferred.push(Deferred::Event(ClusterEvent::NodeUpdated(info)));
                }
                MembershipEvent::Idle => {
                    tracing::info!("gossip: no members left; announcing to seeds again");
                    self.retry_at = Some(now);
                    self.retry_delay = RETRY_MIN;
                    self.introducing_until = now + INTRODUCE_FOR;
                }
                MembershipEvent::Defunct => {
                    tracing::warn!("gossip: this node was declared down");
                    self.health.declared_down(now);
                }
                MembershipEvent::Rejoined(id) => {
                    self.introducing_until = now + INTRODUCE_FOR;
                    tracing::warn!(generation = id.r#gen, "gossip: this node was declared down; rejoined");
                    self.health.declared_down(now);
                    // The leader removes what the old incarnation owned
                    // (locks, names): its holders must not go on as if
                    // they still held them. The view shows the new
                    // incarnation first, so a claim landing from now on is
                    // caught by its own check (`claims::confirm`).
                    self.publish();
                    crate::claims::revoke_node_claims(
                        &self.shared,
                        "this node was declared down and rejoined the cluster",
                    );
                }
                other => tracing::debug!(event = ?other, "gossip"),
            }
        }
        // Grow (or shrink) dissemination with the cluster this node sees,
        // never below what the configured seeds suggest.
        let seen = u32::try_from(self.membership.num_members() + 1).unwrap_or(u32::MAX);
        let size = NonZeroU32::new(seen.max(self.min_size)).unwrap_or(NonZeroU32::MIN);
        if let Err(e) = self.membership.resize(size) {
            tracing::debug!(error = %e, "gossip: cannot resize dissemination");
        }
        self.publish();
        // A node that just joined learns the members from its seed at once,
        // but they learn of it only as gossip spreads, which in a larger
        // cluster can take a few probe rounds for the last one. Announcing
        // to each member directly makes the join known everywhere in one
        // round trip, for one datagram per member.
        for id in introduce {
            if let Err(e) = self.membership.announce(id, now) {
                tracing::debug!(error = %e, "gossip: introduction refused");
            }
        }
        let effects = self.membership.drain();
        self.send_all(&effects);
        self.arm(effects.timers);
        // After the view is rewritten, so whoever reacts reads the new one.
        for d in std::mem::take(&mut self.deferred) {
            match d {
                Deferred::Down(name) => self.shared.node_down(&name),
                Deferred::Event(ev) => {
                    if let ClusterEvent::NodeJoined(m) | ClusterEvent::NodeUpdated(m) = &ev {
                        self.shared.connect(&m.name);
                    }
                    self.shared.membership_events.publish(&ev);
                }
            }
        }
    }

    /// Queues the timers the core asked for.
    fn arm(&mut self, timers: Vec<(Timer, Instant)>) {
        for (timer, at) in timers {
            self.seq += 1;
            self.timers.push(Reverse((at, self.seq)));
            self.timer_data.push((self.seq, timer));
        }
    }

    fn send_all(&self, effects: &Effects) {
        let mut plain = Vec::new();
        for (to, data) in &effects.send {
            plain.clear();
            plain.push(KIND_SWIM);
            plain.extend_from_slice(data);
            self.send_one(*to, &plain);
        }
    }

    fn send_one(&self, to: SocketAddr, plaintext: &[u8]) {
        let nonce: [u8; NONCE_LEN] = rand::random();
        match self.keyring.seal(nonce, plaintext) {
            Ok(packet) => {
                if let Err(e) = self.socket.send_to(&packet, to) {
                    tracing::debug!(%to, error = %e, "gossip: send failed");
                }
            }
            Err(e) => tracing::warn!(error = %e, "gossip: cannot seal"),
        }
    }

    /// A peer's process closed its mesh connection: the kernel does that for
    /// a process that died, so it is declared down now instead of after a
    /// suspicion window. A stalled process or a cut network closes nothing
    /// and still goes through suspicion. The generation the connection was
    /// made with must still be the member's, so a process that restarted
    /// is not taken down for its predecessor's connection; and the
    /// connection must be younger than the member's latest return, so a
    /// connection from before a partition, reset when the network heals,
    /// does not take down a member that came back.
    fn take_closed_peers(&mut self, now: Instant) {
        let closed = std::mem::take(&mut *self.shared.closed_peers.lock().unwrap_or_else(|e| e.into_inner()));
        if closed.is_empty() {
            return;
        }
        for c in closed {
            if self.up_at.get(&c.name).is_some_and(|t| *t > c.since) {
                continue;
            }
            let Some(id) = self.membership.members().find(|id| id.name == c.name && id.r#gen == c.generation).cloned()
            else {
                continue;
            };
            let name = c.name;
            tracing::info!(member = %name, "gossip: its process closed the mesh connection; declaring it down");
            if let Err(e) = self.membership.declare_down(&id, now) {
                tracing::debug!(error = %e, "gossip: cannot declare down");
            }
        }
        self.apply(now);
    }

    /// Tells every member we are stopping on purpose, just before foca's
    /// own leave, so they count us as `left` rather than `dead`.
    fn say_goodbye(&self) {
        let me = self.membership.identity();
        let mut bye = vec![KIND_BYE];
        bye.extend_from_slice(me.name.as_bytes());
        for member in self.membership.members() {
            self.send_one(member.addr, &bye);
        }
    }

    /// Records a member coming up: a fresh process (not a rejoin) feeds
    /// `gossip_convergence_seconds` with how long after its start we heard
    /// of it. Generations are start times in wall-clock nanoseconds, so on
    /// one host this is exact and across hosts as good as their clocks.
    fn member_up(&mut self, id: &NodeIdentity) {
        self.up_at.insert(id.name.clone(), Instant::now());
        self.leaving.remove(&id.name);
        self.left.remove(&id.addr);
        let prev = self.seen.insert(id.name.clone(), (id.r#gen, true));
        if prev.is_some_and(|(g, _)| id.r#gen.abs_diff(g) <= FRESH_START) {
            return;
        }
        // A new process under a name whose previous process was never seen
        // to go down (it restarted faster than it could be declared dead):
        // the previous one's processes are gone all the same.
        if prev.is_some_and(|(_, up)| up) {
            self.deferred.push(Deferred::Down(id.name.clone()));
        }
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
        let secs = now.saturating_sub(id.r#gen) as f64 / 1e9;
        self.shared.stats.convergence.observe(secs);
    }

    /// Rewrites the shared view: this node first, then the others by name
    /// (dead and departed ones too, until foca forgets them).
    pub(super) fn publish(&self) {
        let me = self.membership.identity();
        let mut others: Vec<MemberInfo> = self
            .membership
            .member_states()
            .map(|(id, state)| {
                let state = match state {
                    foca::State::Alive => MemberState::Alive,
                    foca::State::Suspect => MemberState::Suspect,
                    foca::State::Down if self.left.contains(&id.addr) => MemberState::Left,
                    foca::State::Down => MemberState::Dead,
                };
                member_info(id, state, false)
            })
            .collect();
        others.sort_by(|a, b| a.name.cmp(&b.name).then(a.state.is_up().cmp(&b.state.is_up()).reverse()));
        let mut view = Vec::with_capacity(others.len() + 1);
        view.push(member_info(me, MemberState::Alive, true));
        view.extend(others);
        *self.shared.cluster.write().unwrap_or_else(|e| e.into_inner()) = Some(view);
    }
}

fn member_info(id: &NodeIdentity, state: MemberState, is_local: bool) -> MemberInfo {
    MemberInfo {
        name: id.name.clone(),
        addr: id.addr.to_string(),
        internode: id.internode_addr(),
        failure_domain: id.failure_domain.clone(),
        state,
        is_local,
        generation: id.r#gen,
        raft_eligible: id.raft_eligible,
        raft_priority: id.raft_priority,
    }
}
