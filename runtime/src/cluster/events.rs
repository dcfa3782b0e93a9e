//! Membership changes as the rest of the node consumes them.
//!
//! The gossip thread publishes; anything inside the node that must react
//! (the mesh, and the Raft reconciler and process groups that build on it)
//! subscribes and gets every event from then on, in order, on its own
//! channel. A subscriber that went away is forgotten at the next publish.

use std::sync::Mutex;

use crossbeam_channel::{Receiver, Sender};

use crate::shared::{MemberInfo, MemberState};

/// One change in the cluster, seen from this node. The variant names are
/// the ones the cluster guide and operators use, prefix included.
#[allow(clippy::enum_variant_names)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ClusterEvent {
    /// A node became a member (first sight, or back after being down).
    NodeJoined(MemberInfo),
    /// A member was declared down: `Dead` after its suspicion expired,
    /// `Left` when it said goodbye first.
    NodeLeft {
        /// The member's name.
        name: String,
        /// `Dead` or `Left`.
        state: MemberState,
    },
    /// A member came back under a renewed identity (a restart at the same
    /// address, or a rejoin after a false suspicion) without being down.
    NodeUpdated(MemberInfo),
}

/// The subscribers of [`ClusterEvent`]s.
#[derive(Default)]
pub(crate) struct Subscribers(Mutex<Vec<Sender<ClusterEvent>>>);

impl Subscribers {
    /// A channel that receives every event published from now on.
    #[allow(dead_code, reason = "the Raft reconciler and process groups subscribe; tests do now")]
    pub(crate) fn subscribe(&self) -> Receiver<ClusterEvent> {
        let (tx, rx) = crossbeam_channel::unbounded();
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(tx);
        rx
    }

    /// Sends `event` to every live subscriber.
    pub(crate) fn publish(&self, event: &ClusterEvent) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).retain(|tx| tx.send(event.clone()).is_ok());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_subscriber_gets_every_later_event_in_order() {
        let subs = Subscribers::default();
        subs.publish(&ClusterEvent::NodeLeft { name: "early".into(), state: MemberState::Dead });
        let a = subs.subscribe();
        let b = subs.subscribe();
        let left = |n: &str| ClusterEvent::NodeLeft { name: n.into(), state: MemberState::Left };
        subs.publish(&left("x"));
        drop(b);
        subs.publish(&left("y"));
        assert_eq!(a.try_iter().collect::<Vec<_>>(), vec![left("x"), left("y")]);
        assert_eq!(subs.0.lock().unwrap().len(), 1, "the dropped subscriber is forgotten");
    }
}
