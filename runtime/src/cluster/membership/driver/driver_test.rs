//! The membership core driven by a deterministic in-process simulator: a
//! virtual clock, one event heap for timers and datagrams, no sockets.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use super::*;

/// The foca config a node gets from the default `cluster.membership.*`
/// settings, exactly as the gossip service builds it.
fn lan_config(cluster_size: NonZeroU32) -> Config {
    let m = wippy_config::MembershipConfig::default();
    config_from(
        m.probe_interval.as_std(),
        m.probe_timeout.as_std(),
        m.suspicion_mult,
        m.gossip_interval.as_std(),
        cluster_size,
    )
}

/// One-way delay of every simulated datagram.
const LATENCY: Duration = Duration::from_millis(1);

enum Scheduled {
    Timer { node: usize, timer: Timer },
    Datagram { to: usize, data: Vec<u8> },
}

/// Three (or more) cores wired together through a virtual network.
struct Sim {
    origin: Instant,
    now: Duration,
    nodes: Vec<Membership>,
    dead: Vec<bool>,
    /// `(due, seq)`; `seq` keeps same-instant items in submission order.
    queue: BinaryHeap<Reverse<(Duration, u64)>>,
    items: HashMap<u64, Scheduled>,
    seq: u64,
    /// Every event each node reported, with the virtual time it happened.
    log: Vec<Vec<(Duration, MembershipEvent)>>,
}

fn identity(i: usize) -> NodeIdentity {
    NodeIdentity {
        addr: SocketAddr::from(([10, 0, 0, i as u8 + 1], 7946)),
        r#gen: 1,
        name: format!("node{}", i + 1),
        internode_port: 7947,
        raft_eligible: true,
        raft_priority: 0,
        failure_domain: format!("rack{}", i + 1),
    }
}

impl Sim {
    fn new(n: usize, seed: u64) -> Self {
        let size = NonZeroU32::new(n as u32).unwrap();
        let nodes = (0..n).map(|i| Membership::new(identity(i), lan_config(size), seed + i as u64)).collect();
        Self {
            // Only an anchor for the virtual clock; nothing waits on it.
            origin: Instant::now(),
            now: Duration::ZERO,
            nodes,
            dead: vec![false; n],
            queue: BinaryHeap::new(),
            items: HashMap::new(),
            seq: 0,
            log: vec![Vec::new(); n],
        }
    }

    fn instant(&self) -> Instant {
        self.origin + self.now
    }

    fn schedule(&mut self, due: Duration, item: Scheduled) {
        self.seq += 1;
        self.queue.push(Reverse((due, self.seq)));
        self.items.insert(self.seq, item);
    }

    /// Route what node `i` asked for into the virtual network and clock.
    fn collect(&mut self, i: usize) {
        let effects = self.nodes[i].drain();
        for (addr, data) in effects.send {
            let to = self.nodes.iter().position(|n| n.identity().addr == addr).expect("datagram to a known node");
            self.schedule(self.now + LATENCY, Scheduled::Datagram { to, data });
        }
        for (timer, deadline) in effects.timers {
            let due = deadline - self.origin;
            assert!(due >= self.now, "timer scheduled in the past");
            self.schedule(due, Scheduled::Timer { node: i, timer });
        }
        for event in effects.events {
            self.log[i].push((self.now, event));
        }
    }

    fn announce(&mut self, from: usize, to: usize) {
        let now = self.instant();
        self.nodes[from].announce(identity(to), now).unwrap();
        self.collect(from);
    }

    /// Stop running node `i` and drop every datagram to or from it.
    fn kill(&mut self, i: usize) {
        self.dead[i] = true;
    }

    /// Process everything due up to `until` (virtual), in order.
    fn run_until(&mut self, until: Duration) {
        while let Some(&Reverse((due, seq))) = self.queue.peek() {
            if due > until {
                break;
            }
            self.queue.pop();
            self.now = due;
            let item = self.items.remove(&seq).unwrap();
            let now = self.instant();
            match item {
                Scheduled::Timer { node, timer } => {
                    if self.dead[node] {
                        continue;
                    }
                    self.nodes[node].handle_timer(timer, now).unwrap();
                    self.collect(node);
                }
                Scheduled::Datagram { to, data } => {
                    // A dead node's last sends were queued before it died;
                    // those are dropped too, as a crashed kernel would.
                    if self.dead[to] || self.dead_sender(&data) {
                        continue;
                    }
                    self.nodes[to].handle_data(&data, now).unwrap();
                    self.collect(to);
                }
            }
        }
        self.now = until;
    }

    fn dead_sender(&self, data: &[u8]) -> bool {
        use foca::Codec;
        let header: foca::Header<NodeIdentity> =
            foca::PostcardCodec.decode_header(data).expect("simulated datagrams are well formed");
        let sender = header.src.addr;
        self.nodes.iter().zip(&self.dead).any(|(n, &dead)| dead && n.identity().addr == sender)
    }

    fn members_of(&self, i: usize) -> Vec<String> {
        let mut names: Vec<String> = self.nodes[i].members().map(|m| m.name.clone()).collect();
        names.sort();
        names
    }

    /// Virtual time at which node `i` first reported `event`.
    fn first(&self, i: usize, event: &MembershipEvent) -> Option<Duration> {
        self.log[i].iter().find(|(_, e)| e == event).map(|(at, _)| *at)
    }

    /// Run in small steps until `done` holds or `limit` passes.
    fn run_until_or(&mut self, limit: Duration, done: impl Fn(&Self) -> bool) -> Option<Duration> {
        while self.now < limit {
            self.run_until(self.now + Duration::from_millis(10));
            if done(self) {
                return Some(self.now);
            }
        }
        None
    }

    /// Nodes 2 and 3 announce to node 1 and everyone sees everyone.
    fn converge(&mut self) -> Duration {
        self.announce(1, 0);
        self.announce(2, 0);
        let n = self.nodes.len();
        self.run_until_or(Duration::from_secs(2), |s| (0..n).all(|i| s.nodes[i].num_members() == n - 1))
            .expect("cluster converges within 2 s of virtual time")
    }
}

#[test]
fn three_nodes_converge_after_announcing_to_one() {
    let mut sim = Sim::new(3, 7);
    let at = sim.converge();

    assert_eq!(sim.members_of(0), ["node2", "node3"]);
    assert_eq!(sim.members_of(1), ["node1", "node3"]);
    assert_eq!(sim.members_of(2), ["node1", "node2"]);
    // Node 2 and node 3 only ever talked to node 1; they must have learnt
    // about each other through gossip.
    assert!(sim.first(1, &MembershipEvent::Up(identity(2))).is_some());
    assert!(sim.first(2, &MembershipEvent::Up(identity(1))).is_some());
    assert!(sim.first(1, &MembershipEvent::Active).is_some());
    assert!(at < Duration::from_secs(1), "converged only at {at:?}");
}

#[test]
fn dead_node_is_declared_down_by_both_survivors() {
    let mut sim = Sim::new(3, 11);
    sim.converge();
    let killed_at = sim.now;
    sim.kill(2);

    let down = MembershipEvent::Down(identity(2));
    let detected = sim
        .run_until_or(killed_at + Duration::from_secs(5), |s| {
            s.first(0, &down).is_some() && s.first(1, &down).is_some()
        })
        .expect("both survivors declare node 3 down within 5 s");
    let took = detected - killed_at;
    // At most one probe period until a probe, one of probing, then the
    // 2.4 s suspicion window; well under the bound, but not instantaneous.
    assert!(took < Duration::from_secs(4), "detection took {took:?}");
    assert!(took >= lan_config(NonZeroU32::MIN).suspect_to_down_after, "down before suspicion ran: {took:?}");

    // Keep running: survivors must stay stable with each other.
    sim.run_until(killed_at + Duration::from_secs(10));
    assert_eq!(sim.members_of(0), ["node2"]);
    assert_eq!(sim.members_of(1), ["node1"]);
    assert_eq!(sim.first(0, &MembershipEvent::Down(identity(1))), None);
    assert_eq!(sim.first(1, &MembershipEvent::Down(identity(0))), None);
}

#[test]
fn same_seed_replays_the_same_run() {
    let run = |seed| {
        let mut sim = Sim::new(3, seed);
        sim.converge();
        sim.kill(2);
        sim.run_until(sim.now + Duration::from_secs(3));
        sim.log
    };
    assert_eq!(run(3), run(3));
}

#[test]
fn garbage_datagram_is_rejected_without_effects() {
    let mut node = Membership::new(identity(0), lan_config(NonZeroU32::MIN), 1);
    let err = node.handle_data(&[0xff; 16], Instant::now()).unwrap_err();
    assert!(matches!(err, MembershipError::Rejected(_)));
    assert!(node.drain().is_empty());
    assert_eq!(node.num_members(), 0);
}

#[test]
fn timers_come_back_as_deadlines_from_the_given_now() {
    let mut node = Membership::new(identity(0), lan_config(NonZeroU32::MIN), 1);
    let now = Instant::now() + Duration::from_secs(100);
    node.announce(identity(1), now).unwrap();
    let effects = node.drain();
    assert_eq!(effects.send.len(), 1);
    assert_eq!(effects.send[0].0, identity(1).addr);
    assert!(effects.send[0].1.len() <= MAX_PLAINTEXT);
    assert!(effects.timers.iter().all(|(_, at)| *at >= now));
}

#[test]
fn default_config_is_the_tuned_lan_one() {
    let config = lan_config(NonZeroU32::new(5).unwrap());
    assert_eq!(config.probe_period, Duration::from_millis(300));
    assert_eq!(config.probe_rtt, Duration::from_millis(100));
    assert_eq!(config.suspect_to_down_after, Duration::from_millis(2400));
    let gossip = config.periodic_gossip.unwrap();
    assert_eq!(gossip.frequency, Duration::from_millis(100));
    assert_eq!(gossip.num_members.get(), 3);
    assert_eq!(config.max_packet_size.get() + seal::OVERHEAD, 1400);
}

#[test]
fn config_from_maps_the_membership_settings() {
    let size = NonZeroU32::new(7).unwrap();
    let config = config_from(Duration::from_secs(2), Duration::from_millis(500), 4, Duration::from_millis(250), size);
    assert_eq!(config.probe_period, Duration::from_secs(2));
    assert_eq!(config.probe_rtt, Duration::from_millis(500));
    // suspect -> down = suspicion_mult x probe_interval.
    assert_eq!(config.suspect_to_down_after, Duration::from_secs(8));
    let gossip = config.periodic_gossip.unwrap();
    assert_eq!(gossip.frequency, Duration::from_millis(250));
    assert_eq!(gossip.num_members.get(), 3);
    assert_eq!(config.max_transmissions, Config::new_lan(size).max_transmissions);
    assert_eq!(config.max_packet_size.get() + seal::OVERHEAD, 1400);

    // A zero multiplier (refused by config validation) still leaves a window.
    let zero = config_from(Duration::from_millis(300), Duration::from_millis(100), 0, Duration::from_millis(100), size);
    assert_eq!(zero.suspect_to_down_after, Duration::from_millis(300));
    // An absurd multiplier saturates instead of panicking.
    let huge =
        config_from(Duration::from_secs(u64::MAX / 2), Duration::from_secs(1), u32::MAX, Duration::from_secs(1), size);
    assert_eq!(huge.suspect_to_down_after, Duration::MAX);
}

#[test]
fn push_pull_sets_both_periodic_announces() {
    let mut config = lan_config(NonZeroU32::new(3).unwrap());
    set_push_pull(&mut config, Duration::from_secs(5));
    for p in [config.periodic_announce, config.periodic_announce_to_down_members] {
        let p = p.expect("enabled");
        assert_eq!((p.frequency, p.num_members.get()), (Duration::from_secs(5), 1));
    }
}

#[test]
fn dissemination_grows_and_shrinks_with_the_cluster() {
    let mut node = Membership::new(identity(0), lan_config(NonZeroU32::new(3).unwrap()), 1);
    assert_eq!(node.max_transmissions(), 2);
    node.resize(NonZeroU32::new(10).unwrap()).unwrap();
    assert_eq!(node.max_transmissions(), 4);
    node.resize(NonZeroU32::new(100).unwrap()).unwrap();
    assert_eq!(node.max_transmissions(), 8);
    node.resize(NonZeroU32::new(3).unwrap()).unwrap();
    assert_eq!(node.max_transmissions(), 2);
}
