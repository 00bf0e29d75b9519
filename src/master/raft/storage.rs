//! Durable Raft state, in the node's data dir: the log and the hard state in
//! append-only segment files (`log_file`: one write and one fdatasync per
//! Ready, before its messages go out); the node's identity, the conf state
//! and the snapshot's metadata in redb (`registry.redb`), written only when
//! they change; the snapshot itself (the serialized registry) in a file of
//! its own (`snapshot_file`), written off the Raft thread.
//!
//! The whole log after the snapshot is also kept in memory (compaction bounds
//! it: `compaction::snapshot_due`), so raft-rs reads never touch disk.
//! The snapshot's data is not kept in memory: it is read from its file when a
//! follower needs it.
//!
//! A store written before the log left redb (format `meso-registry/1`) has
//! its log and hard state moved to a segment file when it is opened: the
//! file first, then one redb transaction drops them there and records the
//! new format, so a stop in between only repeats the move.
//!
//! Compaction, in order: the driver takes the snapshot's metadata here
//! ([`RaftStore::snapshot_at`]), a thread of its own writes the file, then
//! [`RaftStore::compacted`] records it and drops the log up to it. A crash
//! between the two leaves a file newer than what redb records and the whole
//! log: the store opens from the newer file and the log after it.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow, bail};
use protobuf::Message as _;
use raft::prelude::*;
use raft::{GetEntriesContext, RaftState, Storage, StorageError};
use redb::{Database, ReadableDatabase, TableDefinition};

use super::log_file::{self, LogFile, Replayed};
use super::snapshot_file;

pub const STORE_FILE: &str = "registry.redb";
/// redb's page cache. Its default (1 GiB) filled with every log page ever
/// written, a leader's largest cost per task; the log is read back only at
/// start (it is kept in memory), so the cache need hold little more than
/// the B-tree's interior pages.
const CACHE_BYTES: usize = 32 * 1024 * 1024;
const FORMAT: &[u8] = b"meso-registry/2";
/// The format that kept the log and the hard state in redb; opening such a
/// store moves them out.
const FORMAT_V1: &[u8] = b"meso-registry/1";

/// Format 1's log.
const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("raft_log");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

const KEY_FORMAT: &str = "format";
const KEY_NODE_ID: &str = "node_id";
/// Format 1's hard state.
const KEY_HARD_STATE: &str = "hard_state";
const KEY_CONF_STATE: &str = "conf_state";
/// The snapshot's metadata (its data too, in stores written before snapshot
/// files, and for the bootstrap snapshot, which has none).
const KEY_SNAPSHOT: &str = "snapshot";
/// The file name of the snapshot's data, when it is in a file.
const KEY_SNAPSHOT_FILE: &str = "snapshot_file";

pub struct RaftStore {
    db: Database,
    path: PathBuf,
    dir: PathBuf,
    node_id: u64,
    hard_state: HardState,
    conf_state: ConfState,
    /// The latest snapshot: its metadata, and its data only when that is not
    /// in a file (the bootstrap snapshot, older stores).
    snapshot: Snapshot,
    /// Where the latest snapshot's data is.
    snapshot_file: Option<PathBuf>,
    /// Entries after `snapshot.metadata.index`, in order, without gaps.
    entries: Vec<Entry>,
    /// The same entries and the hard state, on disk.
    log: LogFile,
}

impl RaftStore {
    /// Opens (or creates) the store of node `node_id` in `data_dir`. Refuses a data
    /// dir that holds something else, a store of another node, and a corrupt file,
    /// each with a one-line error naming the path; it never deletes anything.
    /// With `node_id` None the store must exist already (a restart that reads its
    /// own id back).
    pub fn open(data_dir: &Path, node_id: Option<u64>) -> anyhow::Result<Self> {
        prepare_data_dir(data_dir)?;
        // Refuse another master's store before a writable open touches the file.
        if let (Some(info), Some(id)) = (inspect(data_dir)?, node_id) {
            check_owner(data_dir, info.node_id, id)?;
        }
        let path = data_dir.join(STORE_FILE);
        let db = redb::Builder::new()
            .set_cache_size(CACHE_BYTES)
            .create(&path)
            .map_err(|e| open_error(&path, e))?;
        // Opened once redb holds its lock: no other meso process is here.
        let (log, replayed) = LogFile::open(data_dir)?;
        let mut store = Self {
            db,
            path,
            dir: data_dir.to_path_buf(),
            node_id: 0,
            hard_state: HardState::default(),
            conf_state: ConfState::default(),
            snapshot: Snapshot::default(),
            snapshot_file: None,
            entries: Vec::new(),
            log,
        };
        store.load(node_id, replayed)?;
        Ok(store)
    }

    fn corrupt(&self, what: impl std::fmt::Display) -> anyhow::Error {
        anyhow!("store {} is corrupt: {what}", self.path.display())
    }

    fn load(&mut self, node_id: Option<u64>, replayed: Replayed) -> anyhow::Result<()> {
        let read = self.db.begin_read().map_err(|e| self.corrupt(e))?;
        let meta = match read.open_table(META) {
            Ok(t) => Some(t),
            Err(redb::TableError::TableDoesNotExist(_)) => None,
            Err(e) => return Err(self.corrupt(e)),
        };
        let Some(meta) = meta else {
            drop(read);
            let id = node_id.ok_or_else(|| {
                anyhow!(
                    "store {} is empty and no master id was given",
                    self.path.display()
                )
            })?;
            return self.initialise(id);
        };
        let get = |key: &str| meta_value(&meta, key, &self.path);
        let stored_id = stored_identity(&meta, &self.path)?;
        let v1 = get(KEY_FORMAT)?.as_deref() == Some(FORMAT_V1);
        if let Some(id) = node_id {
            check_owner(self.path.parent().unwrap_or(&self.path), stored_id, id)?;
        }
        let conf_state = get(KEY_CONF_STATE)?;
        let snapshot = get(KEY_SNAPSHOT)?;
        let snapshot_file = get(KEY_SNAPSHOT_FILE)?;
        self.node_id = stored_id;
        if let Some(b) = conf_state {
            self.conf_state = ConfState::parse_from_bytes(&b).map_err(|e| self.corrupt(e))?;
        }
        if let Some(b) = snapshot {
            self.snapshot = Snapshot::parse_from_bytes(&b).map_err(|e| self.corrupt(e))?;
        }
        let newest = snapshot_file::newest(&self.dir)?;
        match newest {
            Some((index, path)) if index > self.snapshot.get_metadata().index => {
                // Written, but the master stopped before redb recorded it.
                let mut newer = snapshot_file::read(&path)?;
                newer.take_data();
                self.conf_state = newer.get_metadata().get_conf_state().clone();
                self.snapshot = newer;
                self.snapshot_file = Some(path);
            }
            _ => {
                if let Some(name) = snapshot_file {
                    let path = self.dir.join(String::from_utf8_lossy(&name).as_ref());
                    if !path.is_file() {
                        return Err(
                            self.corrupt(format!("its snapshot {} is missing", path.display()))
                        );
                    }
                    self.snapshot_file = Some(path);
                }
            }
        }
        snapshot_file::remove_older(&self.dir, self.snapshot.get_metadata().index);
        let after = self.snapshot.get_metadata().index + 1;
        if v1 {
            if let Some(b) = get(KEY_HARD_STATE)? {
                self.hard_state = HardState::parse_from_bytes(&b).map_err(|e| self.corrupt(e))?;
            }
            let log = read.open_table(LOG).map_err(|e| self.corrupt(e))?;
            let rows = log.range(after..).map_err(|e| self.corrupt(e))?;
            for (expected, row) in (after..).zip(rows) {
                let (k, v) = row.map_err(|e| self.corrupt(e))?;
                if k.value() != expected {
                    return Err(self.corrupt(format!("log gap at index {expected}")));
                }
                self.entries
                    .push(Entry::parse_from_bytes(v.value()).map_err(|e| self.corrupt(e))?);
            }
            drop((meta, log, read));
            return self.move_log_out_of_redb();
        }
        if let Some(hs) = replayed.hard_state {
            self.hard_state = hs;
        }
        self.entries = replayed.entries;
        self.entries.retain(|e| e.index >= after);
        if self.entries.first().is_some_and(|e| e.index != after) {
            return Err(self.corrupt(format!("log gap at index {after}")));
        }
        Ok(())
    }

    /// A format 1 store, loaded: its log and hard state go to a segment
    /// file, then redb drops them and records format 2.
    fn move_log_out_of_redb(&mut self) -> anyhow::Result<()> {
        self.log = LogFile::create_with(&self.dir, &self.entries, &self.hard_state)?;
        let txn = self.db.begin_write().map_err(|e| self.corrupt(e))?;
        {
            let mut meta = txn.open_table(META).map_err(|e| self.corrupt(e))?;
            meta.remove(KEY_HARD_STATE).map_err(|e| self.corrupt(e))?;
            meta.insert(KEY_FORMAT, FORMAT)
                .map_err(|e| self.corrupt(e))?;
        }
        txn.delete_table(LOG).map_err(|e| self.corrupt(e))?;
        txn.commit().map_err(|e| self.corrupt(e))?;
        tracing::info!(store = %self.path.display(), entries = self.entries.len(), "the Raft log moved from redb to its own file");
        Ok(())
    }

    fn initialise(&mut self, node_id: u64) -> anyhow::Result<()> {
        self.node_id = node_id;
        let txn = self.db.begin_write().map_err(|e| self.corrupt(e))?;
        {
            let mut meta = txn.open_table(META).map_err(|e| self.corrupt(e))?;
            meta.insert(KEY_FORMAT, FORMAT)
                .map_err(|e| self.corrupt(e))?;
            meta.insert(KEY_NODE_ID, &node_id.to_be_bytes()[..])
                .map_err(|e| self.corrupt(e))?;
        }
        txn.commit().map_err(|e| self.corrupt(e))?;
        Ok(())
    }

    pub fn node_id(&self) -> u64 {
        self.node_id
    }

    /// True once this node holds a membership: bootstrapped, or caught up by a leader.
    pub fn is_initialised(&self) -> bool {
        !self.conf_state.voters.is_empty() || !self.conf_state.learners.is_empty()
    }

    pub fn conf_state(&self) -> &ConfState {
        &self.conf_state
    }

    /// The latest snapshot's metadata (and its data only if it is not in a file).
    pub fn snapshot_ref(&self) -> &Snapshot {
        &self.snapshot
    }

    /// The latest snapshot, data included, read from its file.
    pub fn read_snapshot(&self) -> anyhow::Result<Snapshot> {
        match &self.snapshot_file {
            None => Ok(self.snapshot.clone()),
            Some(path) => {
                let snapshot = snapshot_file::read(path)?;
                if snapshot.get_metadata() != self.snapshot.get_metadata() {
                    return Err(
                        self.corrupt(format!("{} is not the snapshot it records", path.display()))
                    );
                }
                Ok(snapshot)
            }
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A new cluster's first state: these voters, at index 1 and term 1, as raft-rs's
    /// own `initialize_with_conf_state` does, so joining nodes catch up by snapshot.
    pub fn bootstrap(&mut self, voters: Vec<u64>) -> anyhow::Result<()> {
        let mut snapshot = Snapshot::default();
        let meta = snapshot.mut_metadata();
        meta.index = 1;
        meta.term = 1;
        meta.mut_conf_state().voters = voters;
        self.apply_snapshot(snapshot)
    }

    /// Persists one Ready: its snapshot, its entries and its hard state. The
    /// entries and the hard state are one append to the log; a snapshot
    /// (rare) also begins a new log segment and is recorded in redb.
    pub fn persist(
        &mut self,
        snapshot: Option<&Snapshot>,
        entries: &[Entry],
        hard_state: Option<&HardState>,
    ) -> anyhow::Result<()> {
        // A snapshot's data goes to its file first: should the master stop
        // before the transaction, the store opens from the file.
        let file = match snapshot {
            Some(snap) if !snap.get_data().is_empty() => {
                Some(snapshot_file::write(&self.dir, snap)?)
            }
            _ => None,
        };
        let recorded = snapshot.map(|snap| {
            let mut recorded = snap.clone();
            if file.is_some() {
                recorded.take_data();
            }
            recorded
        });
        if let Some(snap) = &recorded {
            self.install_snapshot_in_memory(snap.clone());
            self.snapshot_file = file.clone();
        }
        if let Some(first) = entries.first() {
            let base = self.snapshot.get_metadata().index + 1;
            let keep = first.index.saturating_sub(base) as usize;
            self.entries.truncate(keep);
            self.entries.extend_from_slice(entries);
        }
        if let Some(hs) = hard_state {
            self.hard_state = hs.clone();
        }
        if let Some(snap) = &recorded {
            // Everything the log held is void: a reset opens the new segment.
            let index = snap.get_metadata().index;
            self.log.rotate(&self.hard_state, Some(index), index)?;
        }
        // The hard state is written when it changed, a commit index learnt
        // since the last write included.
        self.log.append(entries, Some(&self.hard_state))?;
        if let Some(snap) = &recorded {
            let txn = self.db.begin_write()?;
            {
                let mut meta = txn.open_table(META)?;
                record_snapshot(&mut meta, snap, file.as_deref())?;
                meta.insert(KEY_CONF_STATE, self.conf_state.write_to_bytes()?.as_slice())?;
            }
            txn.commit()?;
            snapshot_file::remove_older(&self.dir, snap.get_metadata().index);
        }
        Ok(())
    }

    fn apply_snapshot(&mut self, snapshot: Snapshot) -> anyhow::Result<()> {
        self.persist(Some(&snapshot), &[], None)
    }

    fn install_snapshot_in_memory(&mut self, snapshot: Snapshot) {
        let meta = snapshot.get_metadata();
        self.hard_state.commit = self.hard_state.commit.max(meta.index);
        self.hard_state.term = self.hard_state.term.max(meta.term);
        self.conf_state = meta.get_conf_state().clone();
        self.entries.clear();
        self.snapshot = snapshot;
    }

    /// Records a commit index learnt after a Ready; it reaches disk with the next
    /// write (a restarted node relearns it from the leader).
    pub fn set_commit(&mut self, commit: u64) {
        self.hard_state.commit = self.hard_state.commit.max(commit);
    }

    /// A membership change was applied: remember the new voters durably.
    pub fn set_conf_state(&mut self, cs: ConfState) -> anyhow::Result<()> {
        self.conf_state = cs;
        let txn = self.db.begin_write()?;
        {
            let mut meta = txn.open_table(META)?;
            meta.insert(KEY_CONF_STATE, self.conf_state.write_to_bytes()?.as_slice())?;
        }
        txn.commit()?;
        Ok(())
    }

    /// The metadata of a snapshot of the registry as applied up to `applied`:
    /// its term and the current conf state. The caller adds the data and has
    /// it written (`snapshot_file::write`), then calls [`Self::compacted`].
    pub fn snapshot_at(&self, applied: u64) -> anyhow::Result<SnapshotMetadata> {
        let mut meta = SnapshotMetadata {
            index: applied,
            term: self.term(applied).context("term of the snapshot index")?,
            ..Default::default()
        };
        meta.set_conf_state(self.conf_state.clone());
        Ok(meta)
    }

    /// The snapshot `meta` is written at `file`: record it and drop the log up
    /// to it. One that a newer snapshot (from the leader) overtook meanwhile
    /// is deleted instead.
    pub fn compacted(&mut self, meta: SnapshotMetadata, file: &Path) -> anyhow::Result<()> {
        let applied = meta.index;
        if applied <= self.snapshot.get_metadata().index {
            if self.snapshot_file.as_deref() != Some(file) {
                let _ = fs::remove_file(file);
            }
            return Ok(());
        }
        let mut snapshot = Snapshot::default();
        snapshot.set_metadata(meta);
        let drop_count = (applied - self.snapshot.get_metadata().index) as usize;
        let txn = self.db.begin_write()?;
        {
            let mut meta = txn.open_table(META)?;
            record_snapshot(&mut meta, &snapshot, Some(file))?;
        }
        txn.commit()?;
        self.log.rotate(&self.hard_state, None, applied)?;
        self.entries.drain(..drop_count.min(self.entries.len()));
        self.snapshot = snapshot;
        self.snapshot_file = Some(file.to_path_buf());
        snapshot_file::remove_older(&self.dir, applied);
        Ok(())
    }

    fn first(&self) -> u64 {
        self.snapshot.get_metadata().index + 1
    }

    fn last(&self) -> u64 {
        self.snapshot.get_metadata().index + self.entries.len() as u64
    }
}

impl Storage for RaftStore {
    fn initial_state(&self) -> raft::Result<RaftState> {
        let mut hard_state = self.hard_state.clone();
        hard_state.commit = hard_state.commit.max(self.snapshot.get_metadata().index);
        Ok(RaftState {
            hard_state,
            conf_state: self.conf_state.clone(),
        })
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        _context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        if low < self.first() {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        if high > self.last() + 1 {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        let offset = self.first();
        let mut ents = self.entries[(low - offset) as usize..(high - offset) as usize].to_vec();
        raft::util::limit_size(&mut ents, max_size.into());
        Ok(ents)
    }

    fn term(&self, idx: u64) -> raft::Result<u64> {
        let meta = self.snapshot.get_metadata();
        if idx == meta.index {
            return Ok(meta.term);
        }
        if idx < self.first() {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        if idx > self.last() {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        Ok(self.entries[(idx - self.first()) as usize].term)
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(self.first())
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(self.last())
    }

    fn snapshot(&self, request_index: u64, to: u64) -> raft::Result<Snapshot> {
        // A snapshot from before `to` was added would be refused by it; the
        // driver takes a newer one once the addition is applied.
        let cs = self.snapshot.get_metadata().get_conf_state();
        let has_to = cs.voters.contains(&to) || cs.learners.contains(&to);
        if self.snapshot.get_metadata().index < request_index || !has_to {
            return Err(raft::Error::Store(
                StorageError::SnapshotTemporarilyUnavailable,
            ));
        }
        // raft-rs treats any other error as fatal: a file that cannot be
        // read now is "not yet", and the error is logged.
        self.read_snapshot().map_err(|e| {
            tracing::error!(node = self.node_id, error = %format!("{e:#}"), "cannot read the snapshot for a follower");
            raft::Error::Store(StorageError::SnapshotTemporarilyUnavailable)
        })
    }
}

/// What a store says of itself, read without writing a byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreInfo {
    pub node_id: u64,
    pub voters: Vec<u64>,
}

/// Reads a store's identity and membership read-only, so that a store can be
/// refused (wrong id, peers that disagree) without being changed. None: no
/// store yet, or one that must be repaired first (not closed cleanly), which
/// only a writable open may do.
pub fn inspect(data_dir: &Path) -> anyhow::Result<Option<StoreInfo>> {
    let path = data_dir.join(STORE_FILE);
    if !path.is_file() {
        return Ok(None);
    }
    let db = match redb::ReadOnlyDatabase::open(&path) {
        Ok(db) => db,
        Err(redb::DatabaseError::RepairAborted) => return Ok(None),
        Err(e) => return Err(open_error(&path, e)),
    };
    let corrupt = |e: &dyn std::fmt::Display| anyhow!("store {} is corrupt: {e}", path.display());
    let read = db.begin_read().map_err(|e| corrupt(&e))?;
    let meta = match read.open_table(META) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
        Err(e) => return Err(corrupt(&e)),
    };
    let node_id = stored_identity(&meta, &path)?;
    let mut voters = match meta_value(&meta, KEY_CONF_STATE, &path)? {
        Some(b) => {
            ConfState::parse_from_bytes(&b)
                .map_err(|e| corrupt(&e))?
                .voters
        }
        None => Vec::new(),
    };
    voters.sort_unstable();
    Ok(Some(StoreInfo { node_id, voters }))
}

type MetaTable = redb::ReadOnlyTable<&'static str, &'static [u8]>;

/// Records `snapshot` (metadata, and data unless `file` holds it) in META.
fn record_snapshot(
    meta: &mut redb::Table<&str, &[u8]>,
    snapshot: &Snapshot,
    file: Option<&Path>,
) -> anyhow::Result<()> {
    meta.insert(KEY_SNAPSHOT, snapshot.write_to_bytes()?.as_slice())?;
    match file.and_then(|f| f.file_name()).and_then(|n| n.to_str()) {
        Some(name) => {
            meta.insert(KEY_SNAPSHOT_FILE, name.as_bytes())?;
        }
        None => {
            meta.remove(KEY_SNAPSHOT_FILE)?;
        }
    }
    Ok(())
}

fn meta_value(meta: &MetaTable, key: &str, path: &Path) -> anyhow::Result<Option<Vec<u8>>> {
    Ok(meta
        .get(key)
        .map_err(|e| anyhow!("store {} is corrupt: {e}", path.display()))?
        .map(|v| v.value().to_vec()))
}

/// Checks that the store is ours, in a format we read, and returns its master id.
fn stored_identity(meta: &MetaTable, path: &Path) -> anyhow::Result<u64> {
    match meta_value(meta, KEY_FORMAT, path)? {
        Some(f) if f == FORMAT || f == FORMAT_V1 => {}
        Some(f) => bail!(
            "store {} has format {:?}, this meso reads {:?}",
            path.display(),
            String::from_utf8_lossy(&f),
            String::from_utf8_lossy(FORMAT)
        ),
        None => bail!("{} is not a meso store", path.display()),
    }
    meta_value(meta, KEY_NODE_ID, path)?
        .and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
        .map(u64::from_be_bytes)
        .ok_or_else(|| anyhow!("store {} is corrupt: no node id", path.display()))
}

fn check_owner(data_dir: &Path, stored: u64, wanted: u64) -> anyhow::Result<()> {
    if stored != wanted {
        bail!(
            "data dir {} belongs to master {stored}, not {wanted}; pass --id {stored} or use another --data-dir",
            data_dir.display()
        );
    }
    Ok(())
}

fn open_error(path: &Path, e: redb::DatabaseError) -> anyhow::Error {
    match e {
        redb::DatabaseError::DatabaseAlreadyOpen => {
            anyhow!("store {} is in use by another meso process", path.display())
        }
        redb::DatabaseError::Storage(redb::StorageError::Io(io))
            if io.kind() != std::io::ErrorKind::InvalidData =>
        {
            anyhow!("cannot open store {}: {io}", path.display())
        }
        other => anyhow!("store {} is corrupt or unreadable: {other}", path.display()),
    }
}

/// Creates the data dir if missing; refuses a path that is not a directory, or a
/// directory that holds files but no meso store (someone else's data).
pub(crate) fn prepare_data_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.exists() && !dir.is_dir() {
        bail!("data dir {} is not a directory", dir.display());
    }
    fs::create_dir_all(dir).with_context(|| format!("cannot create data dir {}", dir.display()))?;
    let entries =
        fs::read_dir(dir).with_context(|| format!("cannot read data dir {}", dir.display()))?;
    let mut foreign = None;
    let mut log = None;
    let mut ours = false;
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot read data dir {}", dir.display()))?;
        let name = entry.file_name();
        let text = name.to_str().unwrap_or_default();
        if name == STORE_FILE {
            ours = true;
        } else if log_file::is_log_file(text) {
            log = Some(text.to_string());
        } else if foreign.is_none() && !snapshot_file::is_snapshot_file(text) {
            foreign = Some(name.to_string_lossy().into_owned());
        }
    }
    if let (false, Some(name)) = (ours, foreign) {
        bail!(
            "data dir {} is not a meso data dir (it holds {name:?}); choose an empty or new directory",
            dir.display()
        );
    }
    // A log without its store would be read as a new master's: refuse it
    // rather than mix it in or delete it.
    if let (false, Some(name)) = (ours, log) {
        bail!(
            "data dir {} holds a Raft log ({name}) but no {STORE_FILE}; restore the store or remove the raft-*.log files",
            dir.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::log_file::tests::entry;
    use super::*;

    #[test]
    fn a_restart_reads_back_what_was_written() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut s = RaftStore::open(dir.path(), Some(1)).unwrap();
            s.bootstrap(vec![1, 2, 3]).unwrap();
            let hs = HardState {
                term: 2,
                vote: 1,
                commit: 3,
                ..Default::default()
            };
            s.persist(None, &[entry(2, 1), entry(3, 2), entry(4, 2)], Some(&hs))
                .unwrap();
            // A new leader overwrites index 4.
            s.persist(None, &[entry(4, 3)], None).unwrap();
        }
        let s = RaftStore::open(dir.path(), Some(1)).unwrap();
        assert_eq!(s.conf_state().voters, vec![1, 2, 3]);
        assert_eq!(s.first_index().unwrap(), 2);
        assert_eq!(s.last_index().unwrap(), 4);
        assert_eq!(s.term(4).unwrap(), 3);
        assert_eq!(s.initial_state().unwrap().hard_state.vote, 1);
    }

    /// Compaction as the driver does it: metadata here, the file written
    /// (by the snapshot thread), then recorded.
    fn compact(s: &mut RaftStore, applied: u64, data: &[u8]) -> PathBuf {
        let meta = s.snapshot_at(applied).unwrap();
        let mut snap = Snapshot::default();
        snap.set_metadata(meta.clone());
        snap.set_data(data.to_vec().into());
        let file = snapshot_file::write(s.dir(), &snap).unwrap();
        s.compacted(meta, &file).unwrap();
        file
    }

    #[test]
    fn compaction_keeps_the_tail_and_the_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut s = RaftStore::open(dir.path(), Some(1)).unwrap();
            s.bootstrap(vec![1]).unwrap();
            let ents: Vec<_> = (2..=10).map(|i| entry(i, 1)).collect();
            s.persist(None, &ents, None).unwrap();
            compact(&mut s, 5, b"registry at 5");
            compact(&mut s, 7, b"registry at 7");
            assert_eq!(s.first_index().unwrap(), 8);
            assert!(matches!(
                s.entries(5, 8, None, GetEntriesContext::empty(false)),
                Err(raft::Error::Store(StorageError::Compacted))
            ));
            // The data is on disk, not in memory; a follower is sent it whole.
            assert!(s.snapshot_ref().get_data().is_empty());
            assert_eq!(s.snapshot(0, 1).unwrap().get_data(), b"registry at 7");
            assert!(!snapshot_file::path_for(dir.path(), 5).exists());
        }
        let s = RaftStore::open(dir.path(), Some(1)).unwrap();
        assert_eq!(s.first_index().unwrap(), 8);
        assert_eq!(s.last_index().unwrap(), 10);
        assert_eq!(s.snapshot(0, 1).unwrap().get_data(), b"registry at 7");
        assert_eq!(s.read_snapshot().unwrap().get_data(), b"registry at 7");
        assert_eq!(s.initial_state().unwrap().hard_state.commit, 7);
    }

    #[test]
    fn a_snapshot_written_but_not_recorded_is_opened_from_its_file() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut s = RaftStore::open(dir.path(), Some(1)).unwrap();
            s.bootstrap(vec![1]).unwrap();
            let ents: Vec<_> = (2..=10).map(|i| entry(i, 1)).collect();
            s.persist(None, &ents, None).unwrap();
            compact(&mut s, 4, b"registry at 4");
            // The master stops after the snapshot thread wrote its file and
            // before `compacted`: redb still records the one at 4.
            let mut snap = Snapshot::default();
            snap.set_metadata(s.snapshot_at(6).unwrap());
            snap.set_data(b"registry at 6".to_vec().into());
            snapshot_file::write(dir.path(), &snap).unwrap();
        }
        let s = RaftStore::open(dir.path(), Some(1)).unwrap();
        assert_eq!(s.snapshot_ref().get_metadata().index, 6);
        assert_eq!(s.first_index().unwrap(), 7);
        assert_eq!(s.last_index().unwrap(), 10);
        assert_eq!(s.term(8).unwrap(), 1);
        assert_eq!(s.read_snapshot().unwrap().get_data(), b"registry at 6");
        assert!(!snapshot_file::path_for(dir.path(), 4).exists());
        drop(s);
        // And again, now that the one at 4 is gone.
        let s = RaftStore::open(dir.path(), Some(1)).unwrap();
        assert_eq!(s.read_snapshot().unwrap().get_data(), b"registry at 6");
    }

    #[test]
    fn a_leaders_snapshot_lands_in_a_file_and_a_missing_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut s = RaftStore::open(dir.path(), Some(2)).unwrap();
            let mut snap = Snapshot::default();
            snap.mut_metadata().index = 40;
            snap.mut_metadata().term = 3;
            snap.mut_metadata().mut_conf_state().voters = vec![1, 2, 3];
            snap.set_data(b"the leader's registry".to_vec().into());
            s.persist(Some(&snap), &[entry(41, 3)], None).unwrap();
            assert_eq!(
                s.snapshot(0, 1).unwrap().get_data(),
                b"the leader's registry"
            );
        }
        let s = RaftStore::open(dir.path(), Some(2)).unwrap();
        assert_eq!(s.conf_state().voters, vec![1, 2, 3]);
        assert_eq!(s.last_index().unwrap(), 41);
        assert_eq!(
            s.read_snapshot().unwrap().get_data(),
            b"the leader's registry"
        );
        drop(s);
        // The data dir holds a snapshot file beside the store: still ours.
        fs::remove_file(snapshot_file::path_for(dir.path(), 40)).unwrap();
        let err = RaftStore::open(dir.path(), Some(2))
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("is corrupt") && err.contains("snapshot-"),
            "{err}"
        );
    }

    /// A store as format 1 wrote it: the log and the hard state in redb.
    fn write_v1_store(dir: &Path, entries: &[Entry], hs: &HardState) {
        let db = Database::create(dir.join(STORE_FILE)).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut meta = txn.open_table(META).unwrap();
            meta.insert(KEY_FORMAT, FORMAT_V1).unwrap();
            meta.insert(KEY_NODE_ID, &3u64.to_be_bytes()[..]).unwrap();
            meta.insert(KEY_HARD_STATE, hs.write_to_bytes().unwrap().as_slice())
                .unwrap();
            let mut snap = Snapshot::default();
            snap.mut_metadata().index = 1;
            snap.mut_metadata().term = 1;
            snap.mut_metadata().mut_conf_state().voters = vec![1, 2, 3];
            meta.insert(KEY_SNAPSHOT, snap.write_to_bytes().unwrap().as_slice())
                .unwrap();
            let cs = snap
                .get_metadata()
                .get_conf_state()
                .write_to_bytes()
                .unwrap();
            meta.insert(KEY_CONF_STATE, cs.as_slice()).unwrap();
            let mut log = txn.open_table(LOG).unwrap();
            for e in entries {
                log.insert(e.index, e.write_to_bytes().unwrap().as_slice())
                    .unwrap();
            }
        }
        txn.commit().unwrap();
    }

    #[test]
    fn a_format_1_store_has_its_log_moved_out_of_redb() {
        let dir = tempfile::tempdir().unwrap();
        let hs = HardState {
            term: 4,
            vote: 2,
            commit: 3,
            ..Default::default()
        };
        write_v1_store(dir.path(), &[entry(2, 1), entry(3, 4), entry(4, 4)], &hs);
        assert_eq!(inspect(dir.path()).unwrap().unwrap().node_id, 3);
        for round in 0..2 {
            let mut s = RaftStore::open(dir.path(), Some(3)).unwrap();
            assert_eq!(s.conf_state().voters, vec![1, 2, 3], "round {round}");
            assert_eq!(s.first_index().unwrap(), 2);
            assert_eq!(s.last_index().unwrap(), 4 + round);
            assert_eq!(s.term(3).unwrap(), 4);
            assert_eq!(s.initial_state().unwrap().hard_state, hs);
            s.persist(None, &[entry(5, 4)], None).unwrap();
        }
        // redb holds neither the log nor the hard state any more.
        let db = Database::open(dir.path().join(STORE_FILE)).unwrap();
        let read = db.begin_read().unwrap();
        let meta = read.open_table(META).unwrap();
        assert_eq!(
            meta_value(&meta, KEY_FORMAT, dir.path()).unwrap().unwrap(),
            FORMAT
        );
        assert!(
            meta_value(&meta, KEY_HARD_STATE, dir.path())
                .unwrap()
                .is_none()
        );
        assert!(matches!(
            read.open_table(LOG),
            Err(redb::TableError::TableDoesNotExist(_))
        ));
    }

    #[test]
    fn a_followers_snapshot_voids_its_log_across_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut s = RaftStore::open(dir.path(), Some(2)).unwrap();
            s.bootstrap(vec![1, 2, 3]).unwrap();
            // Entries of an old term, past the leader's snapshot.
            let old: Vec<_> = (2..=5).map(|i| entry(i, 1)).collect();
            s.persist(None, &old, None).unwrap();
            let mut snap = Snapshot::default();
            snap.mut_metadata().index = 3;
            snap.mut_metadata().term = 2;
            snap.mut_metadata().mut_conf_state().voters = vec![1, 2, 3];
            snap.set_data(b"at 3".to_vec().into());
            s.persist(Some(&snap), &[], None).unwrap();
            assert_eq!(s.last_index().unwrap(), 3);
        }
        let s = RaftStore::open(dir.path(), Some(2)).unwrap();
        assert_eq!(s.first_index().unwrap(), 4);
        assert_eq!(s.last_index().unwrap(), 3);
        assert_eq!(s.read_snapshot().unwrap().get_data(), b"at 3");
    }

    #[test]
    fn refuses_another_nodes_store_and_foreign_dirs() {
        let dir = tempfile::tempdir().unwrap();
        drop(RaftStore::open(dir.path(), Some(1)).unwrap());
        let err = RaftStore::open(dir.path(), Some(2))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("belongs to master 1"), "{err}");

        // A log whose store is gone is not read as a new master's.
        fs::remove_file(dir.path().join(STORE_FILE)).unwrap();
        let err = RaftStore::open(dir.path(), Some(1))
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("holds a Raft log") && err.contains("raft-"),
            "{err}"
        );
        assert!(!dir.path().join(STORE_FILE).exists());

        let foreign = tempfile::tempdir().unwrap();
        fs::write(foreign.path().join("notes.txt"), "mine").unwrap();
        let err = RaftStore::open(foreign.path(), Some(1))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("not a meso data dir"), "{err}");
        assert!(foreign.path().join("notes.txt").exists());
    }

    #[test]
    fn a_corrupt_file_is_reported_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(STORE_FILE);
        fs::write(&path, vec![0xAB; 8192]).unwrap();
        let err = RaftStore::open(dir.path(), Some(1))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("corrupt"), "{err}");
        assert_eq!(fs::read(&path).unwrap(), vec![0xAB; 8192]);
    }
}
