//! Registry snapshots as files beside the redb store, one per snapshot:
//! `snapshot-<index>.bin` in the data dir, holding the raft `Snapshot`
//! (metadata and the serialized registry) as protobuf.
//!
//! They live outside redb because redb has one writer at a time: a snapshot
//! of a large registry (hundreds of MB at 100,000 tasks) written inside a
//! redb transaction held up every log append behind it, on every master at
//! once, longer than an election timeout. A file can be written by a thread
//! of its own while the Raft thread goes on appending.
//!
//! A file is written whole or not at all (a temporary name, fsync, rename,
//! fsync of the directory), and is named by its index, so a newer snapshot
//! is never replaced by an older one that finished later. The newest file is
//! the snapshot; older ones are deleted once a newer one is recorded.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use protobuf::Message as _;
use raft::prelude::Snapshot;

const PREFIX: &str = "snapshot-";
const SUFFIX: &str = ".bin";
const PARTIAL: &str = ".partial";

/// The file of the snapshot at `index` in `dir`.
pub fn path_for(dir: &Path, index: u64) -> PathBuf {
    dir.join(format!("{PREFIX}{index:020}{SUFFIX}"))
}

/// The index a finished snapshot file's name gives, or None for any other file.
fn index_of(name: &str) -> Option<u64> {
    indexed(name, SUFFIX)
}

fn indexed(name: &str, suffix: &str) -> Option<u64> {
    name.strip_prefix(PREFIX)?
        .strip_suffix(suffix)?
        .parse()
        .ok()
}

/// True for the files this module writes (finished or not), so the data
/// dir's check for foreign files lets them be.
pub fn is_snapshot_file(name: &str) -> bool {
    index_of(name).is_some() || indexed(name, PARTIAL).is_some()
}

/// Writes `snapshot` durably as the file of its index; returns the path.
pub fn write(dir: &Path, snapshot: &Snapshot) -> anyhow::Result<PathBuf> {
    let path = path_for(dir, snapshot.get_metadata().index);
    let partial = path.with_extension(&PARTIAL[1..]);
    let mut file = fs::File::create(&partial)
        .with_context(|| format!("cannot create {}", partial.display()))?;
    // Encoded straight into the file: the registry's bytes (hundreds of MB at
    // 100,000 tasks) are written from where they are, not first copied
    // into a second buffer as large, page by fresh page.
    snapshot
        .write_to_writer(&mut file)
        .map_err(anyhow::Error::from)
        .and_then(|()| Ok(file.sync_all()?))
        .with_context(|| format!("cannot write {}", partial.display()))?;
    fs::rename(&partial, &path)
        .with_context(|| format!("cannot rename {} into place", partial.display()))?;
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("cannot sync data dir {}", dir.display()))?;
    Ok(path)
}

/// Reads a snapshot file back.
pub fn read(path: &Path) -> anyhow::Result<Snapshot> {
    let bytes = fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Snapshot::parse_from_bytes(&bytes)
        .with_context(|| format!("snapshot {} is corrupt", path.display()))
}

/// The newest snapshot file in `dir` and its index, if any. Partial files
/// (a writer that died) are removed.
pub fn newest(dir: &Path) -> anyhow::Result<Option<(u64, PathBuf)>> {
    let mut newest: Option<(u64, PathBuf)> = None;
    for entry in fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let entry = entry.with_context(|| format!("cannot read {}", dir.display()))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(index) = index_of(name) {
            if newest.as_ref().is_none_or(|(i, _)| index > *i) {
                newest = Some((index, entry.path()));
            }
        } else if is_snapshot_file(name) {
            let _ = fs::remove_file(entry.path());
        }
    }
    Ok(newest)
}

/// Removes every snapshot file older than `index`. Failures only cost disk.
pub fn remove_older(dir: &Path, index: u64) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if name.to_str().and_then(index_of).is_some_and(|i| i < index)
            && let Err(e) = fs::remove_file(entry.path())
        {
            tracing::warn!(path = %entry.path().display(), error = %e, "cannot remove an old snapshot");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(index: u64, data: &[u8]) -> Snapshot {
        let mut s = Snapshot::default();
        s.mut_metadata().index = index;
        s.mut_metadata().term = 2;
        s.set_data(data.to_vec().into());
        s
    }

    #[test]
    fn the_newest_file_wins_and_older_ones_go() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), &snapshot(90, b"older")).unwrap();
        let path = write(dir.path(), &snapshot(100, b"newer")).unwrap();
        // A writer killed mid-file leaves a partial file: never read, removed.
        fs::write(path_for(dir.path(), 200).with_extension("partial"), b"half").unwrap();
        let (index, found) = newest(dir.path()).unwrap().unwrap();
        assert_eq!((index, &found), (100, &path));
        assert_eq!(read(&found).unwrap().get_data(), b"newer");
        assert!(!path_for(dir.path(), 200).with_extension("partial").exists());

        remove_older(dir.path(), 100);
        assert!(!path_for(dir.path(), 90).exists());
        assert!(path.exists());
    }

    #[test]
    fn names_sort_by_index_and_others_are_not_ours() {
        assert!(is_snapshot_file("snapshot-00000000000000000007.bin"));
        assert!(is_snapshot_file("snapshot-00000000000000000007.partial"));
        assert!(!is_snapshot_file("registry.redb"));
        assert!(!is_snapshot_file("snapshot-x.bin"));
    }

    #[test]
    fn a_corrupt_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = path_for(dir.path(), 5);
        fs::write(&path, b"\xff\xff\xff not protobuf").unwrap();
        let err = format!("{:#}", read(&path).unwrap_err());
        assert!(err.contains("snapshot-00000000000000000005.bin"), "{err}");
    }
}
