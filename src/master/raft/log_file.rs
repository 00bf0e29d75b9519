//! The Raft log on disk: append-only segment files in the data dir,
//! `raft-<seq>.log`, read in sequence order. Each Raft round is one `write`
//! of its records and one `fdatasync`.
//!
//! A segment is allocated ahead of its records, [`GROWTH`] at a time
//! (`fallocate`), and its records are written inside that size: an
//! `fdatasync` that need not make a new file size durable flushes the data
//! alone. Measured here: ~150 µs a sync instead of ~210, and ~50 µs of CPU
//! instead of ~85. So a segment ends in zeros, which read as its end; a
//! finished segment is cut back to its records when the next one begins.
//!
//! Why not redb: a redb write transaction per round (begin, B-tree insert,
//! commit with its page writes and checksums) was nine tenths of the cost of
//! persisting a round: 12% of a follower's CPU in a 10,000-agent deployment,
//! a quarter of the master's in 1,000 POSTs back to back (BENCHMARKS.md).
//! redb keeps what changes rarely: the node's identity, the conf state and
//! the snapshot's metadata (`storage`).
//!
//! ```text
//!  record:  len u32 LE | crc32 u32 LE | kind u8 | payload     (len and crc
//!           cover kind and payload)
//!  kinds:   1 an Entry (protobuf): it replaces every entry from its index
//!             on, as a new leader's overwrite does in memory
//!           2 a HardState (protobuf): the last one read wins
//!           3 a reset at an index (u64 LE): a snapshot was installed, every
//!             entry before this record is void
//! ```
//!
//! A new segment is begun at each compaction and each snapshot install, and
//! opens with the hard state (and the reset), so deleting older segments
//! never loses it. A segment is deleted once every entry in it is in a
//! snapshot. A torn record at the end of the last segment (the master
//! stopped mid-write, before the fsync, so no peer was told of it: a record
//! that runs past the end, or the last record damaged, with nothing but
//! zeros after it) is cut off at open; a bad record anywhere else is
//! corruption, reported with its file and offset, and nothing is cut.

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, ErrorKind, Read as _, Seek as _, SeekFrom, Write as _};
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, anyhow};
use protobuf::Message as _;
use raft::prelude::{Entry, HardState};

const PREFIX: &str = "raft-";
const SUFFIX: &str = ".log";
const HEADER: usize = 9;

const KIND_ENTRY: u8 = 1;
const KIND_HARD_STATE: u8 = 2;
const KIND_RESET: u8 = 3;

/// No record is larger: a bad length read from a damaged file is refused
/// before it is allocated. Entries are batched to about a megabyte.
const MAX_RECORD: usize = 256 * 1024 * 1024;

/// A segment's size grows by this much when its records need room.
const GROWTH: u64 = 16 << 20;

/// True for the files this module writes, so the data dir's check for
/// foreign files lets them be.
pub fn is_log_file(name: &str) -> bool {
    seq_of(name).is_some()
}

fn seq_of(name: &str) -> Option<u64> {
    name.strip_prefix(PREFIX)?
        .strip_suffix(SUFFIX)?
        .parse()
        .ok()
}

fn path_for(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{PREFIX}{seq:020}{SUFFIX}"))
}

/// What the segments held, replayed in order.
#[derive(Debug, Default)]
pub struct Replayed {
    /// Consecutive entries; they may start anywhere: the caller drops those
    /// its snapshot covers and checks that the rest follows it.
    pub entries: Vec<Entry>,
    pub hard_state: Option<HardState>,
}

impl Replayed {
    fn entry(&mut self, e: Entry) {
        let first = self.entries.first().map_or(0, |f| f.index);
        let next = self.entries.last().map_or(0, |l| l.index + 1);
        if !self.entries.is_empty() && e.index >= first && e.index <= next {
            self.entries.truncate((e.index - first) as usize);
        } else {
            // Before the first or after a gap: what came before is void
            // (the caller refuses a gap its snapshot does not cover).
            self.entries.clear();
        }
        self.entries.push(e);
    }
}

/// A segment other than the one appended to.
struct Older {
    path: PathBuf,
    /// The highest entry index it holds (0: none).
    last_index: u64,
}

pub struct LogFile {
    dir: PathBuf,
    seq: u64,
    file: File,
    /// The highest entry index in the segment appended to (0: none).
    last_index: u64,
    /// The length of its records: the next append writes here, and a failed
    /// one is cut back to it.
    len: u64,
    /// The size it was allocated to (or that was asked for, where the file
    /// system cannot allocate ahead: then writes grow the file).
    allocated: u64,
    older: Vec<Older>,
    /// The hard state last written, so an unchanged one is not written again.
    written_hard_state: Option<HardState>,
    buf: Vec<u8>,
}

impl LogFile {
    /// Opens the log in `dir`, replaying every segment; creates the first
    /// segment when there is none.
    pub fn open(dir: &Path) -> anyhow::Result<(Self, Replayed)> {
        let mut segments = segments(dir)?;
        let mut replayed = Replayed::default();
        let mut older = Vec::new();
        let last = segments.pop();
        for (_, path) in segments {
            let last_index = replay(&path, &mut replayed, false)?.last_index;
            older.push(Older { path, last_index });
        }
        let (seq, file, scanned) = match last {
            Some((seq, path)) => {
                let scanned = replay(&path, &mut replayed, true)?;
                let file = OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .with_context(|| format!("cannot open {}", path.display()))?;
                (seq, file, scanned)
            }
            None => (1, create(dir, 1, &[])?, Scanned::default()),
        };
        let allocated = file
            .metadata()
            .with_context(|| format!("cannot read {}", dir.display()))?
            .len();
        let log = Self {
            dir: dir.to_path_buf(),
            seq,
            file,
            last_index: scanned.last_index,
            len: scanned.end,
            allocated,
            older,
            written_hard_state: replayed.hard_state.clone(),
            buf: Vec::new(),
        };
        Ok((log, replayed))
    }

    /// A log of exactly these entries and this hard state, whatever was
    /// there before (a store written by an earlier version moves its log
    /// here).
    pub fn create_with(
        dir: &Path,
        entries: &[Entry],
        hard_state: &HardState,
    ) -> anyhow::Result<Self> {
        for (_, path) in segments(dir)? {
            fs::remove_file(&path).with_context(|| format!("cannot remove {}", path.display()))?;
        }
        let (mut log, _) = Self::open(dir)?;
        log.append(entries, Some(hard_state))?;
        Ok(log)
    }

    /// Appends `entries` and, when it changed, `hard_state`, durably: one
    /// write and one fdatasync.
    pub fn append(
        &mut self,
        entries: &[Entry],
        hard_state: Option<&HardState>,
    ) -> anyhow::Result<()> {
        self.buf.clear();
        for e in entries {
            push_record(&mut self.buf, KIND_ENTRY, |b| e.write_to_vec(b))?;
        }
        let hard_state = hard_state.filter(|hs| self.written_hard_state.as_ref() != Some(*hs));
        if let Some(hs) = hard_state {
            push_record(&mut self.buf, KIND_HARD_STATE, |b| hs.write_to_vec(b))?;
        }
        if self.buf.is_empty() {
            return Ok(());
        }
        self.make_room(self.len + self.buf.len() as u64);
        let written = self
            .file
            .write_all_at(&self.buf, self.len)
            .and_then(|()| self.file.sync_data());
        if let Err(e) = written {
            // A part written (a full disk) would sit before the next append
            // and read as damage: cut it off, if the disk lets us.
            if self.file.set_len(self.len).is_ok() {
                self.allocated = self.len;
            }
            return Err(e)
                .with_context(|| format!("cannot append to {}", self.current().display()));
        }
        self.len += self.buf.len() as u64;
        if let Some(last) = entries.iter().map(|e| e.index).max() {
            self.last_index = self.last_index.max(last);
        }
        if let Some(hs) = hard_state {
            self.written_hard_state = Some(hs.clone());
        }
        Ok(())
    }

    /// Allocates the segment past `end`, a [`GROWTH`] at a time. Where that
    /// fails (a file system without `fallocate`, a full disk) the write
    /// grows the file, or fails and says why.
    fn make_room(&mut self, end: u64) {
        if end <= self.allocated {
            return;
        }
        let size = end.div_ceil(GROWTH) * GROWTH;
        let (Ok(offset), Ok(len)) = (
            i64::try_from(self.allocated),
            i64::try_from(size - self.allocated),
        ) else {
            return;
        };
        let flags = nix::fcntl::FallocateFlags::empty();
        if let Err(e) = nix::fcntl::fallocate(&self.file, flags, offset, len) {
            tracing::debug!(path = %self.current().display(), error = %e, "cannot allocate the Raft log ahead");
        }
        self.allocated = size;
    }

    /// Begins a new segment opening with `hard_state` (and, after a snapshot
    /// install, a reset at `reset`), and deletes the older segments whose
    /// entries are all at or below `covered` (all of them after a reset).
    pub fn rotate(
        &mut self,
        hard_state: &HardState,
        reset: Option<u64>,
        covered: u64,
    ) -> anyhow::Result<()> {
        let mut head = Vec::new();
        if let Some(index) = reset {
            push_record(&mut head, KIND_RESET, |b| {
                b.extend_from_slice(&index.to_le_bytes());
                Ok(())
            })?;
        }
        push_record(&mut head, KIND_HARD_STATE, |b| hard_state.write_to_vec(b))?;
        let seq = self.seq + 1;
        let file = create(&self.dir, seq, &head)?;
        // The room allocated ahead is given back. Not made durable: a
        // segment that still ends in zeros after a crash reads the same.
        if let Err(e) = self.file.set_len(self.len) {
            tracing::warn!(path = %self.current().display(), error = %e, "cannot cut a finished Raft log segment back to its records");
        }
        let previous = Older {
            path: self.current(),
            last_index: self.last_index,
        };
        self.older.push(previous);
        self.seq = seq;
        self.file = file;
        self.last_index = 0;
        self.len = head.len() as u64;
        self.allocated = self.len;
        self.written_hard_state = Some(hard_state.clone());
        let covered = reset.map_or(covered, |_| u64::MAX);
        self.older.retain(|o| {
            if o.last_index > covered {
                return true;
            }
            // Left behind, it is replayed and overridden by the newer
            // segments: only disk space is lost.
            if let Err(e) = fs::remove_file(&o.path) {
                tracing::warn!(path = %o.path.display(), error = %e, "cannot remove an old Raft log segment");
            }
            false
        });
        Ok(())
    }

    fn current(&self) -> PathBuf {
        path_for(&self.dir, self.seq)
    }
}

/// The segments in `dir`, in sequence order.
fn segments(dir: &Path) -> anyhow::Result<Vec<(u64, PathBuf)>> {
    let mut found = Vec::new();
    let entries = fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot read {}", dir.display()))?;
        if let Some(seq) = entry.file_name().to_str().and_then(seq_of) {
            found.push((seq, entry.path()));
        }
    }
    found.sort_unstable();
    Ok(found)
}

/// Creates segment `seq` holding `head`, durably (the file and its name).
fn create(dir: &Path, seq: u64, head: &[u8]) -> anyhow::Result<File> {
    let path = path_for(dir, seq);
    let mut file = OpenOptions::new()
        .create_new(true)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(head)
        .and_then(|()| file.sync_all())
        .and_then(|()| File::open(dir)?.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(file)
}

/// Appends one record: the header, then what `payload` writes.
fn push_record(
    buf: &mut Vec<u8>,
    kind: u8,
    payload: impl FnOnce(&mut Vec<u8>) -> protobuf::ProtobufResult<()>,
) -> anyhow::Result<()> {
    let start = buf.len();
    buf.extend_from_slice(&[0; HEADER - 1]);
    buf.push(kind);
    payload(buf).context("encoding a Raft log record")?;
    let body = &buf[start + HEADER - 1..];
    let len = u32::try_from(body.len())
        .ok()
        .filter(|&l| l as usize <= MAX_RECORD)
        .ok_or_else(|| anyhow!("a Raft log record of {} bytes is too large", body.len()))?;
    let crc = crc32fast::hash(body);
    buf[start..start + 4].copy_from_slice(&len.to_le_bytes());
    buf[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    Ok(())
}

/// What replaying a segment found.
#[derive(Debug, Default)]
struct Scanned {
    /// The highest entry index it holds (0: none).
    last_index: u64,
    /// Where its records end.
    end: u64,
}

/// Replays the segment at `path` into `out`. Zeros after the records are
/// its end (room allocated ahead). In the last segment (`last`), a torn
/// record ends it and is cut off; elsewhere it is an error.
fn replay(path: &Path, out: &mut Replayed, last: bool) -> anyhow::Result<Scanned> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let corrupt = |offset: u64, what: &str| {
        anyhow!(
            "Raft log {} is corrupt at byte {offset}: {what}",
            path.display()
        )
    };
    let mut offset = 0u64;
    let mut last_index = 0;
    let mut body = Vec::new();
    loop {
        let read = read_record(&mut reader, &mut body)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let torn = match read {
            Ok(true) => None,
            Ok(false) => break,
            Err(what) => Some(what),
        };
        if let Some(what) = torn {
            if zeros_from(path, offset)
                .with_context(|| format!("cannot read {}", path.display()))?
            {
                break;
            }
            let torn_tail = last
                && is_torn_tail(path, offset)
                    .with_context(|| format!("cannot read {}", path.display()))?;
            if !torn_tail {
                return Err(corrupt(offset, &what));
            }
            tracing::warn!(path = %path.display(), offset, reason = %what, "cutting off a torn record at the end of the Raft log");
            let file = OpenOptions::new()
                .write(true)
                .open(path)
                .with_context(|| format!("cannot open {}", path.display()))?;
            file.set_len(offset)
                .and_then(|()| file.sync_all())
                .with_context(|| format!("cannot cut {} at byte {offset}", path.display()))?;
            break;
        }
        let (kind, payload) = (body[0], &body[1..]);
        match kind {
            KIND_ENTRY => {
                let e = Entry::parse_from_bytes(payload)
                    .map_err(|e| corrupt(offset, &e.to_string()))?;
                last_index = last_index.max(e.index);
                out.entry(e);
            }
            KIND_HARD_STATE => {
                let hs = HardState::parse_from_bytes(payload)
                    .map_err(|e| corrupt(offset, &e.to_string()))?;
                out.hard_state = Some(hs);
            }
            KIND_RESET => {
                if payload.len() != 8 {
                    return Err(corrupt(offset, "a reset record of the wrong size"));
                }
                out.entries.clear();
            }
            other => return Err(corrupt(offset, &format!("unknown record kind {other}"))),
        }
        offset += (HEADER - 1 + body.len()) as u64;
    }
    Ok(Scanned {
        last_index,
        end: offset,
    })
}

/// Whether nothing but zeros follows `offset`: the room allocated ahead.
/// Read a block at a time: at every start the last segment's room (up to
/// [`GROWTH`]) is read here, and need not be held whole.
fn zeros_from(path: &Path, offset: u64) -> std::io::Result<bool> {
    let mut file = File::open(path)?;
    file.seek(SeekFrom::Start(offset))?;
    let mut block = vec![0u8; 1 << 16];
    loop {
        match file.read(&mut block)? {
            0 => return Ok(true),
            n if block[..n].iter().any(|b| *b != 0) => return Ok(false),
            _ => {}
        }
    }
}

/// Whether what follows `offset` (a bad record) is what a write cut short
/// leaves: a record that runs past the end, or the last record damaged,
/// with nothing but zeros after it. Anything else is damage among records
/// already acknowledged.
fn is_torn_tail(path: &Path, offset: u64) -> std::io::Result<bool> {
    let mut file = File::open(path)?;
    file.seek(SeekFrom::Start(offset))?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail)?;
    if tail.len() < HEADER - 1 {
        return Ok(true);
    }
    let len = u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]) as usize;
    let after = tail.get((HEADER - 1).saturating_add(len)..);
    Ok(after.is_none_or(|rest| rest.iter().all(|b| *b == 0)))
}

/// Reads one record's kind and payload into `body`: Ok(true), or Ok(false)
/// at a clean end, or what is wrong with a record cut short or damaged. An
/// I/O error is an error.
fn read_record(
    reader: &mut impl BufRead,
    body: &mut Vec<u8>,
) -> std::io::Result<Result<bool, String>> {
    if reader.fill_buf()?.is_empty() {
        return Ok(Ok(false));
    }
    let mut header = [0u8; HEADER - 1];
    if let Err(e) = reader.read_exact(&mut header) {
        return cut_short(e, "a record header cut short");
    }
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    if len == 0 || len > MAX_RECORD {
        return Ok(Err(format!("a record length of {len}")));
    }
    body.clear();
    body.resize(len, 0);
    if let Err(e) = reader.read_exact(body) {
        return cut_short(e, "a record cut short");
    }
    if crc32fast::hash(body) != crc {
        return Ok(Err("a record whose checksum does not match".into()));
    }
    Ok(Ok(true))
}

/// The end of the file inside a record is a bad record; other errors are errors.
fn cut_short(e: std::io::Error, what: &str) -> std::io::Result<Result<bool, String>> {
    if e.kind() == ErrorKind::UnexpectedEof {
        Ok(Err(what.into()))
    } else {
        Err(e)
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// An entry whose data names its index and term.
    pub(in crate::master::raft) fn entry(index: u64, term: u64) -> Entry {
        Entry {
            index,
            term,
            data: format!("e{index}t{term}").into_bytes().into(),
            ..Default::default()
        }
    }

    fn hs(term: u64, vote: u64, commit: u64) -> HardState {
        HardState {
            term,
            vote,
            commit,
            ..Default::default()
        }
    }

    fn indices(r: &Replayed) -> Vec<(u64, u64)> {
        r.entries.iter().map(|e| (e.index, e.term)).collect()
    }

    #[test]
    fn appends_read_back_with_overwrites_and_the_last_hard_state() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut log, replayed) = LogFile::open(dir.path()).unwrap();
            assert!(replayed.entries.is_empty() && replayed.hard_state.is_none());
            log.append(&[entry(2, 1), entry(3, 1), entry(4, 1)], Some(&hs(1, 1, 2)))
                .unwrap();
            // A new leader overwrites from index 3.
            log.append(&[entry(3, 2)], Some(&hs(2, 3, 3))).unwrap();
        }
        let (_, r) = LogFile::open(dir.path()).unwrap();
        assert_eq!(indices(&r), vec![(2, 1), (3, 2)]);
        assert_eq!(r.hard_state, Some(hs(2, 3, 3)));
        assert_eq!(r.entries[1].data.as_ref(), b"e3t2");
    }

    #[test]
    fn an_unchanged_hard_state_is_not_written_again() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = LogFile::open(dir.path()).unwrap();
        log.append(&[], Some(&hs(1, 1, 0))).unwrap();
        let records = log.len;
        log.append(&[], Some(&hs(1, 1, 0))).unwrap();
        assert_eq!(log.len, records);
    }

    #[test]
    fn a_failed_append_is_not_taken_for_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = path_for(dir.path(), 1);
        {
            let (mut log, _) = LogFile::open(dir.path()).unwrap();
            log.append(&[entry(1, 1)], Some(&hs(1, 1, 0))).unwrap();
            // A handle that cannot write stands in for a failing disk.
            log.file = File::open(&path).unwrap();
            assert!(log.append(&[entry(2, 1)], Some(&hs(2, 2, 1))).is_err());
            log.file = OpenOptions::new().write(true).open(&path).unwrap();
            // The same hard state again: it was never written, so it is now.
            log.append(&[], Some(&hs(2, 2, 1))).unwrap();
        }
        let (_, r) = LogFile::open(dir.path()).unwrap();
        assert_eq!(indices(&r), vec![(1, 1)]);
        assert_eq!(r.hard_state, Some(hs(2, 2, 1)));
    }

    #[test]
    fn rotation_keeps_the_hard_state_and_drops_covered_segments() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut log, _) = LogFile::open(dir.path()).unwrap();
            log.append(&[entry(1, 1), entry(2, 1)], Some(&hs(1, 1, 2)))
                .unwrap();
            // Compacted at 1: segment 1 still holds 2, so it stays.
            log.rotate(&hs(1, 1, 2), None, 1).unwrap();
            log.append(&[entry(3, 1)], None).unwrap();
            assert!(path_for(dir.path(), 1).exists());
            // Compacted at 2: segment 1 goes; segment 2 holds 3 and stays.
            log.rotate(&hs(1, 1, 3), None, 2).unwrap();
            assert!(!path_for(dir.path(), 1).exists());
            assert!(path_for(dir.path(), 2).exists());
            log.append(&[entry(4, 1)], None).unwrap();
        }
        let (_, r) = LogFile::open(dir.path()).unwrap();
        assert_eq!(indices(&r), vec![(3, 1), (4, 1)]);
        assert_eq!(r.hard_state, Some(hs(1, 1, 3)));
    }

    #[test]
    fn a_reset_voids_what_came_before_even_if_old_segments_stay() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut log, _) = LogFile::open(dir.path()).unwrap();
            log.append(&[entry(5, 1), entry(6, 1), entry(7, 1)], None)
                .unwrap();
            log.rotate(&hs(3, 2, 40), Some(40), 0).unwrap();
            log.append(&[entry(41, 3)], None).unwrap();
        }
        assert!(!path_for(dir.path(), 1).exists());
        // As if the master had stopped before an old segment was deleted: it
        // is replayed first, and the reset voids it.
        let mut old = Vec::new();
        push_record(&mut old, KIND_ENTRY, |b| entry(41, 1).write_to_vec(b)).unwrap();
        fs::write(path_for(dir.path(), 0), &old).unwrap();
        let (_, r) = LogFile::open(dir.path()).unwrap();
        assert_eq!(indices(&r), vec![(41, 3)]);
        assert_eq!(r.hard_state, Some(hs(3, 2, 40)));
    }

    /// Appends two entries and returns where their records end.
    fn two_entries(dir: &Path) -> u64 {
        let (mut log, _) = LogFile::open(dir).unwrap();
        log.append(&[entry(1, 1), entry(2, 1)], None).unwrap();
        log.len
    }

    #[test]
    fn a_torn_tail_is_cut_off_and_appends_go_on_after_it() {
        // Half of a third record, as a crash mid-write leaves it: inside the
        // room allocated ahead (zeros follow), and at the very end of a
        // segment that was not allocated ahead (written by an earlier version).
        for allocated_ahead in [true, false] {
            let dir = tempfile::tempdir().unwrap();
            let whole = two_entries(dir.path());
            let path = path_for(dir.path(), 1);
            let f = OpenOptions::new().write(true).open(&path).unwrap();
            if !allocated_ahead {
                f.set_len(whole).unwrap();
            }
            let mut buf = Vec::new();
            push_record(&mut buf, KIND_ENTRY, |b| entry(3, 1).write_to_vec(b)).unwrap();
            f.write_all_at(&buf[..buf.len() / 2], whole).unwrap();
            drop(f);
            {
                let (mut log, r) = LogFile::open(dir.path()).unwrap();
                assert_eq!(indices(&r), vec![(1, 1), (2, 1)]);
                assert_eq!(fs::metadata(&path).unwrap().len(), whole);
                log.append(&[entry(3, 2)], None).unwrap();
            }
            let (_, r) = LogFile::open(dir.path()).unwrap();
            assert_eq!(indices(&r), vec![(1, 1), (2, 1), (3, 2)]);
        }
    }

    #[test]
    fn a_segment_is_allocated_ahead_and_written_inside_its_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = path_for(dir.path(), 1);
        let records = two_entries(dir.path());
        let size = fs::metadata(&path).unwrap().len();
        assert!(
            size >= GROWTH && size > records,
            "{size} bytes for {records}"
        );
        {
            // Zeros after the records are the end: nothing is cut, and the
            // next records follow the last without a gap.
            let (mut log, r) = LogFile::open(dir.path()).unwrap();
            assert_eq!(indices(&r), vec![(1, 1), (2, 1)]);
            assert_eq!(log.len, records);
            log.append(&[entry(3, 1)], None).unwrap();
            assert_eq!(fs::metadata(&path).unwrap().len(), size);
            // A new segment: the finished one is cut back to its records.
            let finished = log.len;
            log.rotate(&hs(1, 1, 3), None, 0).unwrap();
            assert_eq!(fs::metadata(&path).unwrap().len(), finished);
            log.append(&[entry(4, 1)], None).unwrap();
        }
        // As if the master had stopped before the cut was on disk: an older
        // segment that still ends in zeros reads the same.
        OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(size)
            .unwrap();
        let (_, r) = LogFile::open(dir.path()).unwrap();
        assert_eq!(indices(&r), vec![(1, 1), (2, 1), (3, 1), (4, 1)]);
    }

    #[test]
    fn records_beyond_the_room_grow_the_segment() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = LogFile::open(dir.path()).unwrap();
        let big = Entry {
            index: 1,
            term: 1,
            data: vec![7; GROWTH as usize + 1].into(),
            ..Default::default()
        };
        log.append(&[big, entry(2, 1)], None).unwrap();
        assert!(fs::metadata(path_for(dir.path(), 1)).unwrap().len() >= 2 * GROWTH);
        drop(log);
        let (_, r) = LogFile::open(dir.path()).unwrap();
        assert_eq!(indices(&r), vec![(1, 1), (2, 1)]);
        assert_eq!(r.entries[0].data.len(), GROWTH as usize + 1);
    }

    #[test]
    fn damage_before_the_last_record_is_an_error_and_nothing_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut log, _) = LogFile::open(dir.path()).unwrap();
            log.append(&[entry(1, 1), entry(2, 1), entry(3, 1)], None)
                .unwrap();
        }
        let path = path_for(dir.path(), 1);
        let mut bytes = fs::read(&path).unwrap();
        bytes[HEADER + 1] ^= 0xFF;
        fs::write(&path, &bytes).unwrap();
        let err = format!("{:#}", LogFile::open(dir.path()).err().unwrap());
        assert!(err.contains("corrupt at byte 0"), "{err}");
        assert_eq!(fs::read(&path).unwrap(), bytes);
    }

    #[test]
    fn damage_in_an_older_segment_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut log, _) = LogFile::open(dir.path()).unwrap();
            log.append(&[entry(1, 1), entry(2, 1)], None).unwrap();
            log.rotate(&hs(1, 1, 0), None, 0).unwrap();
            log.append(&[entry(3, 1)], None).unwrap();
        }
        let path = path_for(dir.path(), 1);
        let mut bytes = fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xFF;
        fs::write(&path, &bytes).unwrap();
        let err = format!("{:#}", LogFile::open(dir.path()).err().unwrap());
        assert!(
            err.contains("raft-00000000000000000001.log") && err.contains("checksum"),
            "{err}"
        );
        // Nothing was cut: the damaged file is left as it was.
        assert_eq!(fs::read(&path).unwrap(), bytes);
    }
}
