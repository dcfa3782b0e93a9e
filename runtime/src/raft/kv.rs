//! The rules of the replicated key-value state, with no storage under them.
//!
//! Every replica applies the same command to the same record and must come
//! to the same answer, so the rules depend only on the record, the command
//! and the log index the command sits at. Time enters only as the
//! proposer's clock carried inside the command (`now_ms`): a replica never
//! reads its own clock while applying.

use serde::{Deserialize, Serialize};

use super::snapshot::Bytes;
use super::types::{Command, Cond, Response};

/// What the state machine keeps per key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Record {
    /// The value, opaque to Raft.
    pub(crate) value: Bytes,
    /// The log index of the write that set it: unique per write and
    /// growing, which is what `if_version` compares against.
    pub(crate) version: u64,
    /// Wall-clock milliseconds after which the key no longer exists.
    pub(crate) expires_ms: Option<u64>,
    /// The node whose departure removes the record.
    #[serde(default)]
    pub(crate) owner: Option<String>,
}

impl Record {
    /// Whether the record still exists at `now_ms`.
    pub(crate) fn live_at(&self, now_ms: u64) -> bool {
        self.expires_ms.is_none_or(|t| now_ms < t)
    }
}

/// What applying a command does to its key.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Effect {
    /// Nothing changes.
    Keep,
    /// The key now holds this record.
    Write(Record),
    /// The key is removed.
    Remove,
}

/// Decides what `cmd`, at log index `index`, does to the key's current
/// record and what the caller is told. `Expire` is not per key and is
/// handled by the state machine with [`Record::live_at`].
pub(crate) fn decide(current: Option<&Record>, index: u64, cmd: &Command) -> (Effect, Response) {
    match cmd {
        Command::Put { value, cond, ttl_ms, now_ms, owner, .. } => {
            let live = current.filter(|r| r.live_at(*now_ms));
            let holds = match cond {
                Cond::Always => true,
                Cond::Absent => live.is_none(),
                Cond::Version(v) => live.map_or(0, |r| r.version) == *v,
            };
            if !holds {
                return (Effect::Keep, answer(false, live));
            }
            let record = Record {
                value: Bytes(value.clone()),
                version: index,
                expires_ms: ttl_ms.map(|t| now_ms.saturating_add(t)),
                owner: owner.clone(),
            };
            let previous = live.map(|r| r.value.0.clone());
            (Effect::Write(record), Response { applied: true, previous, version: index })
        }
        Command::Delete { now_ms, cond, .. } => {
            let live = current.filter(|r| r.live_at(*now_ms));
            let holds = match cond {
                Cond::Always => true,
                Cond::Absent => live.is_none(),
                Cond::Version(v) => live.is_some_and(|r| r.version == *v),
            };
            if !holds {
                return (Effect::Keep, answer(false, live));
            }
            let effect = if current.is_some() { Effect::Remove } else { Effect::Keep };
            (effect, answer(live.is_some(), live))
        }
        Command::Expire { .. } => (Effect::Keep, Response::default()),
    }
}

/// A response that reports the key as it stands.
fn answer(applied: bool, live: Option<&Record>) -> Response {
    Response { applied, previous: live.map(|r| r.value.0.clone()), version: live.map_or(0, |r| r.version) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(value: &[u8], cond: Cond, ttl_ms: Option<u64>, now_ms: u64) -> Command {
        Command::Put { key: "k".into(), value: value.to_vec(), cond, ttl_ms, now_ms, owner: None }
    }

    fn rec(value: &[u8], version: u64, expires_ms: Option<u64>) -> Record {
        Record { value: Bytes(value.to_vec()), version, expires_ms, owner: None }
    }

    #[test]
    fn a_put_records_its_index_as_the_version() {
        let (effect, resp) = decide(None, 7, &put(b"a", Cond::Always, None, 0));
        assert_eq!(effect, Effect::Write(rec(b"a", 7, None)));
        assert_eq!(resp, Response { applied: true, previous: None, version: 7 });
        let old = rec(b"a", 7, None);
        let (_, resp) = decide(Some(&old), 9, &put(b"b", Cond::Always, None, 0));
        assert_eq!(resp.previous.as_deref(), Some(&b"a"[..]));
    }

    #[test]
    fn only_if_absent_fails_on_a_live_key_and_passes_on_an_expired_one() {
        let old = rec(b"a", 3, Some(100));
        let (effect, resp) = decide(Some(&old), 4, &put(b"b", Cond::Absent, None, 99));
        assert_eq!(effect, Effect::Keep);
        assert_eq!(resp, Response { applied: false, previous: Some(b"a".to_vec()), version: 3 });
        let (effect, resp) = decide(Some(&old), 4, &put(b"b", Cond::Absent, None, 100));
        assert_eq!(effect, Effect::Write(rec(b"b", 4, None)));
        assert!(resp.applied && resp.previous.is_none());
    }

    #[test]
    fn if_version_compares_the_current_version_zero_meaning_absent() {
        let old = rec(b"a", 5, None);
        assert!(!decide(Some(&old), 6, &put(b"b", Cond::Version(4), None, 0)).1.applied);
        assert!(decide(Some(&old), 6, &put(b"b", Cond::Version(5), None, 0)).1.applied);
        assert!(decide(None, 6, &put(b"b", Cond::Version(0), None, 0)).1.applied);
        assert!(!decide(Some(&old), 6, &put(b"b", Cond::Version(0), None, 0)).1.applied);
    }

    #[test]
    fn a_ttl_counts_from_the_proposers_clock() {
        let (effect, _) = decide(None, 2, &put(b"a", Cond::Always, Some(500), 1_000));
        assert_eq!(effect, Effect::Write(rec(b"a", 2, Some(1_500))));
        assert!(rec(b"a", 2, Some(1_500)).live_at(1_499));
        assert!(!rec(b"a", 2, Some(1_500)).live_at(1_500));
    }

    #[test]
    fn a_versioned_delete_removes_only_that_write() {
        let del = |v| Command::Delete { key: "k".into(), cond: Cond::Version(v), now_ms: 0 };
        let (effect, resp) = decide(Some(&rec(b"a", 7, None)), 9, &del(6));
        assert_eq!((effect, resp.applied), (Effect::Keep, false), "a later holder's write stays");
        let (effect, resp) = decide(Some(&rec(b"a", 7, None)), 9, &del(7));
        assert_eq!((effect, resp.applied), (Effect::Remove, true));
        assert!(!decide(None, 9, &del(7)).1.applied);
    }

    #[test]
    fn delete_reports_whether_a_live_key_was_there() {
        let del = |now_ms| Command::Delete { key: "k".into(), cond: Cond::Always, now_ms };
        let (effect, resp) = decide(Some(&rec(b"a", 1, None)), 2, &del(0));
        assert_eq!(effect, Effect::Remove);
        assert!(resp.applied);
        let (effect, resp) = decide(None, 2, &del(0));
        assert_eq!(effect, Effect::Keep);
        assert!(!resp.applied);
        // An expired record is removed but was not there for the caller.
        let (effect, resp) = decide(Some(&rec(b"a", 1, Some(10))), 2, &del(10));
        assert_eq!(effect, Effect::Remove);
        assert!(!resp.applied);
    }
}
