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
//!
//! **Streamed.** The registry is serialized straight into the file
//! ([`write_with`]), not first into a buffer of its size: that buffer, 71 MB
//! at 100,000 tasks, was fresh memory page-faulted in and zeroed, a third of
//! the snapshot thread's CPU in a 10,000-agent deployment (BENCHMARKS.md,
//! Scale). Protobuf wants a field's length before its bytes, so the data's
//! length is written last, over a placeholder, as a varint of fixed width:
//! protobuf readers accept a varint padded with continuation bytes, so the
//! file is an ordinary `Snapshot` message and reads as one ([`read`]).
//!
//! ```text
//!  0x12 varint(len) metadata   0x0A [5-byte varint(len)] data ...
//!  field 2                     field 1, length filled in when data is written
//! ```

use std::fs;
use std::io::{self, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use protobuf::wire_format::WireType;
use protobuf::{CodedOutputStream, Message as _};
use raft::prelude::{Snapshot, SnapshotMetadata};

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
    let data = snapshot.get_data();
    write_with(dir, snapshot.get_metadata(), |out| out.write_all(data)).map(|(path, _)| path)
}

/// `Snapshot.data` is field 1, `Snapshot.metadata` field 2.
const DATA_FIELD: u32 = 1;
const METADATA_FIELD: u32 = 2;

/// Bytes of the data's length as written: up to 2^35 bytes (32 GiB).
const LENGTH_WIDTH: usize = 5;

/// Writes durably the snapshot of `meta` whose data `data` writes into the
/// file as it goes; returns the path and the data's size in bytes.
pub fn write_with(
    dir: &Path,
    meta: &SnapshotMetadata,
    data: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> anyhow::Result<(PathBuf, u64)> {
    let path = path_for(dir, meta.index);
    let partial = path.with_extension(&PARTIAL[1..]);
    let file = fs::File::create(&partial)
        .with_context(|| format!("cannot create {}", partial.display()))?;
    let bytes =
        stream(file, meta, data).with_context(|| format!("cannot write {}", partial.display()))?;
    fs::rename(&partial, &path)
        .with_context(|| format!("cannot rename {} into place", partial.display()))?;
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("cannot sync data dir {}", dir.display()))?;
    Ok((path, bytes))
}

/// The message into `file`, its data's length filled in last; then fsync.
fn stream(
    file: fs::File,
    meta: &SnapshotMetadata,
    data: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> anyhow::Result<u64> {
    // The metadata field and the data field's tag, as protobuf writes them.
    let mut head = Vec::new();
    let mut coded = CodedOutputStream::vec(&mut head);
    coded.write_message(METADATA_FIELD, meta)?;
    coded.write_tag(DATA_FIELD, WireType::WireTypeLengthDelimited)?;
    coded.flush()?;
    drop(coded);
    let length_at = head.len() as u64;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    out.write_all(&head)?;
    out.write_all(&[0; LENGTH_WIDTH])?;
    data(&mut out)?;
    let mut file = out.into_inner().map_err(io::IntoInnerError::into_error)?;
    let bytes = file.stream_position()? - length_at - LENGTH_WIDTH as u64;
    file.seek(SeekFrom::Start(length_at))?;
    file.write_all(&padded_varint(bytes)?)?;
    file.sync_all()?;
    Ok(bytes)
}

/// `n` as a protobuf varint of [`LENGTH_WIDTH`] bytes: each but the last
/// says another follows, as a longer number's would.
fn padded_varint(n: u64) -> anyhow::Result<[u8; LENGTH_WIDTH]> {
    anyhow::ensure!(
        n < 1 << (7 * LENGTH_WIDTH),
        "a snapshot of {n} bytes is too large"
    );
    let mut out = [0; LENGTH_WIDTH];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = (n >> (7 * i)) as u8 & 0x7f;
        if i + 1 < LENGTH_WIDTH {
            *byte |= 0x80;
        }
    }
    Ok(out)
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
    fn a_streamed_file_is_a_snapshot_message() {
        let dir = tempfile::tempdir().unwrap();
        let mut meta = SnapshotMetadata {
            index: 7,
            term: 3,
            ..Default::default()
        };
        meta.mut_conf_state().voters = vec![1, 2, 3];
        // Data of every length class: empty, a one-byte varint, and past 2^14.
        for len in [0usize, 100, 300_000] {
            let data: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let (path, bytes) = write_with(dir.path(), &meta, |out| {
                data.chunks(7_000).try_for_each(|c| out.write_all(c))
            })
            .unwrap();
            assert_eq!(bytes, len as u64);
            let back = read(&path).unwrap();
            assert_eq!(back.get_metadata(), &meta);
            assert_eq!(back.get_data(), &data[..], "{len} bytes");
        }
    }

    #[test]
    fn padded_lengths_read_as_protobuf_varints() {
        for n in [0u64, 1, 127, 128, 300, 16_383, 16_384, 71_500_000] {
            let padded = padded_varint(n).unwrap();
            let read = protobuf::CodedInputStream::from_bytes(&padded)
                .read_raw_varint64()
                .unwrap();
            assert_eq!(read, n);
        }
        assert!(padded_varint(1 << 35).is_err());
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
