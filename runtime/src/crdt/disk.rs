//! Snapshots of durable `store.kv.crdt` namespaces on disk, one file per
//! namespace under `<data_dir>/_sys/kvcrdt`.
//!
//! A snapshot is written to a temporary file, synced, renamed over the old
//! one and the directory synced. A crash therefore leaves the old snapshot
//! or the new one, never a torn file. A file that does not decode is
//! reported and set aside, not loaded half-way.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::map::Entry;

/// The format of the files; a different number is refused, not misread.
const FORMAT: u32 = 1;

/// Why a snapshot could not be read or written.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DiskError {
    /// The file system failed.
    #[error("{path}: {error}")]
    Io {
        /// The file or directory.
        path: String,
        /// What failed.
        error: std::io::Error,
    },
    /// The file is not a snapshot this build reads.
    #[error("{path}: not a kv.crdt snapshot: {reason}")]
    Corrupt {
        /// The file.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
}

#[derive(Serialize, Deserialize)]
struct File {
    format: u32,
    entries: Vec<(String, Entry)>,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> DiskError + '_ {
    move |error| DiskError::Io { path: path.display().to_string(), error }
}

fn file_of(dir: &Path, ns: &str) -> PathBuf {
    dir.join(format!("{ns}.snap"))
}

/// Writes `entries` as the snapshot of namespace `ns`.
pub(crate) fn save(dir: &Path, ns: &str, entries: Vec<(String, Entry)>) -> Result<(), DiskError> {
    fs::create_dir_all(dir).map_err(io(dir))?;
    let path = file_of(dir, ns);
    let tmp = dir.join(format!("{ns}.snap.tmp"));
    let bytes = rmp_serde::to_vec_named(&File { format: FORMAT, entries })
        .map_err(|e| DiskError::Corrupt { path: path.display().to_string(), reason: e.to_string() })?;
    let mut f = fs::File::create(&tmp).map_err(io(&tmp))?;
    f.write_all(&bytes).map_err(io(&tmp))?;
    f.sync_all().map_err(io(&tmp))?;
    fs::rename(&tmp, &path).map_err(io(&path))?;
    fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))?;
    Ok(())
}

/// Reads the snapshot of namespace `ns`; `None` when there is none.
pub(crate) fn load(dir: &Path, ns: &str) -> Result<Option<Vec<(String, Entry)>>, DiskError> {
    let path = file_of(dir, ns);
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(&path)(e)),
    };
    let corrupt = |reason: String| DiskError::Corrupt { path: path.display().to_string(), reason };
    let file: File = rmp_serde::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
    if file.format != FORMAT {
        return Err(corrupt(format!("format {} (this build reads {FORMAT})", file.format)));
    }
    Ok(Some(file.entries))
}

/// Moves an unreadable snapshot aside so the next save does not overwrite
/// the evidence.
pub(crate) fn set_aside(dir: &Path, ns: &str) -> Option<PathBuf> {
    let aside = dir.join(format!("{ns}.snap.corrupt"));
    fs::rename(file_of(dir, ns), &aside).ok().map(|()| aside)
}

#[cfg(test)]
mod tests {
    use wippy_lua_stdlib::Value;

    use super::*;

    fn dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("wippy-kvcrdt-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn saves_and_loads_a_namespace() {
        let d = dir("roundtrip");
        assert!(load(&d, "sess").unwrap().is_none());
        let e = Entry { value: Some(Value::str("v")), stamp: 7, node: "n1".into(), expires_ms: Some(9) };
        save(&d, "sess", vec![("k".into(), e.clone())]).unwrap();
        save(&d, "sess", vec![("k".into(), e.clone()), ("j".into(), e.clone())]).unwrap();
        assert_eq!(load(&d, "sess").unwrap(), Some(vec![("k".into(), e.clone()), ("j".into(), e)]));
        assert!(!d.join("sess.snap.tmp").exists());
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_damaged_file_is_an_error_and_can_be_set_aside() {
        let d = dir("corrupt");
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join("sess.snap"), b"\x93garbage").unwrap();
        let err = load(&d, "sess").unwrap_err().to_string();
        assert!(err.contains("not a kv.crdt snapshot"), "{err}");
        assert!(set_aside(&d, "sess").is_some());
        assert!(load(&d, "sess").unwrap().is_none());
        fs::remove_dir_all(&d).unwrap();
    }
}
