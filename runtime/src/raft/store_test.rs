//! The Raft storage against openraft's suite and against restarts: every
//! test opens real redb files in its own temporary directory.

use std::collections::BTreeSet;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use openraft::storage::{IOFlushed, RaftLogStorage, RaftStateMachine};
use openraft::testing::log::{StoreBuilder, Suite};
use openraft::testing::{blank_ent, log_id, membership_ent};
use openraft::type_config::TypeConfigExt;
use openraft::type_config::alias::{EntryOf, VoteOf};
use openraft::{EntryPayload, RaftLogReader, RaftSnapshotBuilder, StorageError};

use super::log_store::LogStore;
use super::state_machine::StateMachine;
use super::store::{LOG_FILE, StoreError, open};
use super::types::{Command, Cond, TypeConfig};

/// A directory under the system temp dir, unique per process and call,
/// removed on drop.
pub(super) struct TempDir(PathBuf);

impl TempDir {
    pub(super) fn new() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("wippy-raft-store-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create temp dir");
        Self(path)
    }

    pub(super) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Opens both stores in a fresh directory for each suite case, counting
/// the cases so the test shows the suite really ran them.
struct Builder(AtomicU64);

impl StoreBuilder<TypeConfig, LogStore, StateMachine, TempDir> for Builder {
    async fn build(&self) -> Result<(TempDir, LogStore, StateMachine), StorageError<TypeConfig>> {
        self.0.fetch_add(1, Ordering::Relaxed);
        let dir = TempDir::new();
        let (log, sm) = open(dir.path()).map_err(|e| StorageError::read(TypeConfig::err_from_error(&e)))?;
        Ok((dir, log, sm))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passes_openraft_suite() {
    let builder = Builder(AtomicU64::new(0));
    Suite::test_store(&builder).await.expect("openraft storage suite");
    // 44 single-store cases plus the snapshot transfer, which builds two.
    assert_eq!(builder.0.load(Ordering::Relaxed), 46);
}

fn put(term: u64, index: u64, key: &str, value: &[u8]) -> EntryOf<TypeConfig> {
    EntryOf::<TypeConfig> {
        log_id: log_id::<TypeConfig>(term, 1, index),
        payload: EntryPayload::Normal(Command::Put {
            key: key.into(),
            value: value.to_vec(),
            cond: Cond::Always,
            ttl_ms: None,
            now_ms: 0,
            owner: None,
        }),
    }
}

fn delete(term: u64, index: u64, key: &str) -> EntryOf<TypeConfig> {
    EntryOf::<TypeConfig> {
        log_id: log_id::<TypeConfig>(term, 1, index),
        payload: EntryPayload::Normal(Command::Delete { key: key.into(), cond: Cond::Always, now_ms: 0 }),
    }
}

/// Appends and waits for the flush callback, as openraft would.
async fn append(log: &mut LogStore, entries: Vec<EntryOf<TypeConfig>>) {
    let (tx, rx) = TypeConfig::oneshot();
    log.append(entries, IOFlushed::signal(tx)).await.expect("append");
    rx.await.expect("callback fired").expect("flush ok");
}

async fn apply(sm: &mut StateMachine, entries: Vec<EntryOf<TypeConfig>>) {
    let items: Vec<Result<_, std::io::Error>> = entries.into_iter().map(|e| Ok((e, None))).collect();
    sm.apply(Box::pin(StreamOf(items.into_iter()))).await.expect("apply");
}

/// A stream over an iterator, so the tests need no stream helper crate.
struct StreamOf<I>(I);

impl<I: Iterator + Unpin> futures_core::Stream for StreamOf<I> {
    type Item = I::Item;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<I::Item>> {
        std::task::Poll::Ready(self.0.next())
    }
}

#[tokio::test]
async fn everything_survives_a_reopen() {
    let dir = TempDir::new();
    let vote = VoteOf::<TypeConfig>::new_committed(3, 1);
    let members = vec![BTreeSet::from([1, 2, 3])];
    let entries = vec![
        blank_ent::<TypeConfig>(1, 1, 1),
        membership_ent::<TypeConfig>(1, 1, 2, members.clone()),
        put(1, 3, "a", b"1"),
        put(1, 4, "b", b"2"),
        delete(1, 5, "a"),
    ];
    let snap_meta = {
        let (mut log, mut sm) = open(dir.path()).unwrap();
        log.save_vote(&vote).await.unwrap();
        append(&mut log, entries.clone()).await;
        log.save_committed(Some(log_id::<TypeConfig>(1, 1, 5))).await.unwrap();
        apply(&mut sm, entries.clone()).await;
        let snap = sm.get_snapshot_builder().await.build_snapshot().await.unwrap();
        // Applied after the snapshot: must survive too, beyond it.
        apply(&mut sm, vec![put(1, 6, "c", b"3")]).await;
        snap.meta
    };

    let (mut log, mut sm) = open(dir.path()).unwrap();
    assert_eq!(log.get_log_reader().await.read_vote().await.unwrap(), Some(vote));
    assert_eq!(log.read_committed().await.unwrap(), Some(log_id::<TypeConfig>(1, 1, 5)));
    assert_eq!(log.get_log_reader().await.try_get_log_entries(0..100).await.unwrap(), entries);
    let state = log.get_log_state().await.unwrap();
    assert_eq!(state.last_log_id, Some(log_id::<TypeConfig>(1, 1, 5)));
    assert_eq!(state.last_purged_log_id, None);

    let (applied, membership) = sm.applied_state().await.unwrap();
    assert_eq!(applied, Some(log_id::<TypeConfig>(1, 1, 6)));
    assert_eq!(membership.log_id(), &Some(log_id::<TypeConfig>(1, 1, 2)));
    assert_eq!(sm.get("a").unwrap(), None);
    assert_eq!(sm.get("b").unwrap(), Some(b"2".to_vec()));
    assert_eq!(sm.get("c").unwrap(), Some(b"3".to_vec()));

    let current = sm.get_current_snapshot().await.unwrap().expect("snapshot kept");
    assert_eq!(current.meta, snap_meta);
    assert_eq!(current.meta.last_log_id, Some(log_id::<TypeConfig>(1, 1, 5)));
}

#[tokio::test]
async fn purge_survives_a_reopen() {
    let dir = TempDir::new();
    {
        let (mut log, _) = open(dir.path()).unwrap();
        append(&mut log, (1..=10).map(|i| blank_ent::<TypeConfig>(1, 1, i)).collect()).await;
        log.purge(log_id::<TypeConfig>(1, 1, 5)).await.unwrap();
    }
    {
        let (mut log, _) = open(dir.path()).unwrap();
        let state = log.get_log_state().await.unwrap();
        assert_eq!(state.last_purged_log_id, Some(log_id::<TypeConfig>(1, 1, 5)));
        assert_eq!(state.last_log_id, Some(log_id::<TypeConfig>(1, 1, 10)));
        let left = log.get_log_reader().await.try_get_log_entries(..).await.unwrap();
        assert_eq!(left.iter().map(|e| e.log_id.index).collect::<Vec<_>>(), (6..=10).collect::<Vec<_>>());
        // Purging everything leaves the purge mark as the last log id.
        log.purge(log_id::<TypeConfig>(1, 1, 10)).await.unwrap();
    }
    let (mut log, _) = open(dir.path()).unwrap();
    let state = log.get_log_state().await.unwrap();
    assert_eq!(state.last_purged_log_id, Some(log_id::<TypeConfig>(1, 1, 10)));
    assert_eq!(state.last_log_id, Some(log_id::<TypeConfig>(1, 1, 10)));
    assert!(log.get_log_reader().await.try_get_log_entries(..).await.unwrap().is_empty());
}

#[tokio::test]
async fn truncate_survives_a_reopen() {
    let dir = TempDir::new();
    {
        let (mut log, _) = open(dir.path()).unwrap();
        append(&mut log, (1..=10).map(|i| blank_ent::<TypeConfig>(1, 1, i)).collect()).await;
        log.truncate_after(Some(log_id::<TypeConfig>(1, 1, 7))).await.unwrap();
    }
    let (mut log, _) = open(dir.path()).unwrap();
    assert_eq!(log.get_log_state().await.unwrap().last_log_id, Some(log_id::<TypeConfig>(1, 1, 7)));
}

#[tokio::test]
async fn installed_snapshot_replaces_state_and_survives_a_reopen() {
    let leader_dir = TempDir::new();
    let follower_dir = TempDir::new();
    let (_, mut leader) = open(leader_dir.path()).unwrap();
    apply(
        &mut leader,
        vec![
            membership_ent::<TypeConfig>(1, 1, 1, vec![BTreeSet::from([1, 2])]),
            put(1, 2, "x", &[0xff, 0, 7]),
            put(1, 3, "y", b"why"),
        ],
    )
    .await;
    let snap = leader.get_snapshot_builder().await.build_snapshot().await.unwrap();
    {
        let (_, mut follower) = open(follower_dir.path()).unwrap();
        apply(&mut follower, vec![put(1, 1, "stale", b"gone")]).await;
        follower.install_snapshot(&snap.meta, Cursor::new(snap.snapshot.into_inner())).await.unwrap();
    }
    let (_, mut follower) = open(follower_dir.path()).unwrap();
    assert_eq!(follower.get("stale").unwrap(), None);
    assert_eq!(follower.get("x").unwrap(), Some(vec![0xff, 0, 7]));
    assert_eq!(follower.get("y").unwrap(), Some(b"why".to_vec()));
    let (applied, membership) = follower.applied_state().await.unwrap();
    assert_eq!(applied, Some(log_id::<TypeConfig>(1, 1, 3)));
    assert_eq!(membership.log_id(), &Some(log_id::<TypeConfig>(1, 1, 1)));
    let current = follower.get_current_snapshot().await.unwrap().expect("installed snapshot kept");
    assert_eq!(current.meta, snap.meta);
}

#[tokio::test]
async fn garbage_snapshot_is_an_error() {
    let dir = TempDir::new();
    let (_, mut sm) = open(dir.path()).unwrap();
    let meta = sm.get_snapshot_builder().await.build_snapshot().await.unwrap().meta;
    let err = sm.install_snapshot(&meta, Cursor::new(b"not msgpack at all".to_vec())).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
}

#[test]
fn a_foreign_file_is_a_clear_error() {
    let dir = TempDir::new();
    std::fs::write(dir.path().join(LOG_FILE), vec![0x5a; 8192]).unwrap();
    let err = open(dir.path()).err().expect("must not open");
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains(LOG_FILE) && msg.contains("not a readable redb database"), "{msg}");
}

#[test]
fn a_second_open_is_refused() {
    let dir = TempDir::new();
    let _first = open(dir.path()).unwrap();
    let err = open(dir.path()).err().expect("must not open twice");
    assert!(matches!(err, StoreError::Locked { .. }), "{err:?}");
    assert!(err.to_string().contains(LOG_FILE), "{err}");
}

#[test]
fn an_unusable_directory_is_a_clear_error() {
    let dir = TempDir::new();
    let file = dir.path().join("plain-file");
    std::fs::write(&file, b"x").unwrap();
    let err = open(&file.join("sub")).err().expect("must not open");
    assert!(matches!(err, StoreError::CreateDir { .. }), "{err:?}");
}
