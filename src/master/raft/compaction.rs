//! Log compaction, off the Raft thread: when a snapshot is due, the driver
//! takes the registry as last published (an `Arc`: nothing is copied, see
//! `registry::published`), a thread of its own serializes the copy and writes
//! `snapshot-<index>.bin` (`snapshot_file`), and the driver, told through
//! [`Compaction::finished`], records it in the store and drops the log up
//! to it.
//!
//! ```text
//!  maybe_compact: the published Arc ─▶ snapshot thread: serialize into
//!                 snapshot-<index>.bin as it goes, fsync ─▶ finished()
//!  ─▶ snapshot_written: store.compacted: record it in redb, drop the log
//! ```
//!
//! Serializing and writing a large registry took longer than an election
//! timeout; done on the Raft thread, it stalled every master at about the
//! same index and the leader lost its quorum (BENCHMARKS.md, Scale).
//!
//! When one is due ([`snapshot_due`]): after `snapshot_every` entries *and*
//! once the entries applied since the last one hold as many bytes as it did.
//! A snapshot costs its registry's size; with a count alone, a
//! 100,000-task registry (150 MB of JSON) was written again every 10,000
//! small status updates, and the three masters' snapshot threads were a
//! fifth of the leader's CPU and two fifths of each follower's in a
//! 10,000-agent deployment. Tied to the log's bytes, snapshot work is at most
//! a byte written per byte of log. Two bounds keep the log (held in memory,
//! replayed at start) from outgrowing that: a log of [`LOG_BYTES_CAP`] or of
//! the last snapshot's size, whichever is larger, is due whatever its count
//! (a batch of statuses or launches is up to a megabyte an entry), and
//! [`ENTRIES_CAP`] × `snapshot_every` entries are due whatever their bytes (a
//! large registry and small writes).

use std::path::PathBuf;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use raft::prelude::SnapshotMetadata;
use tokio::sync::mpsc;

use super::{Driver, snapshot_file};

/// The driver's compaction state.
pub(super) struct Compaction {
    /// A master was added: take a snapshot now, so the one a joiner is sent
    /// has it in its conf state (raft-rs refuses a snapshot that does not).
    pub due: bool,
    /// The thread writing one; no second starts meanwhile, and a stopping
    /// driver waits for it, so no file appears after it stopped.
    thread: Option<JoinHandle<()>>,
    /// After a failed snapshot, the next is not tried before this index.
    retry_at: u64,
    /// Bytes of the entries applied since the last snapshot was taken.
    pub log_bytes: u64,
    /// The size of the last snapshot written or received (0: none yet here).
    pub last_snapshot_bytes: u64,
    done_tx: mpsc::UnboundedSender<Written>,
    done_rx: mpsc::UnboundedReceiver<Written>,
}

impl Default for Compaction {
    fn default() -> Self {
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        Self {
            due: false,
            thread: None,
            retry_at: 0,
            log_bytes: 0,
            last_snapshot_bytes: 0,
            done_tx,
            done_rx,
        }
    }
}

/// A log this large is compacted whatever its count of entries (unless the
/// last snapshot was larger still).
pub const LOG_BYTES_CAP: u64 = 64 * 1024 * 1024;

/// A log of this many times `snapshot_every` entries is compacted whatever
/// its bytes.
pub const ENTRIES_CAP: u64 = 10;

/// Whether a log of `entries` entries and `log_bytes` bytes since the last
/// snapshot (of `snapshot_bytes`) should be compacted now.
pub fn snapshot_due(entries: u64, log_bytes: u64, snapshot_bytes: u64, every: u64) -> bool {
    (entries >= every && log_bytes >= snapshot_bytes)
        || log_bytes >= snapshot_bytes.max(LOG_BYTES_CAP)
        || entries >= every.saturating_mul(ENTRIES_CAP)
}

/// What a snapshot thread reports back.
pub(super) struct Written {
    meta: SnapshotMetadata,
    /// The file and its data's size in bytes.
    file: anyhow::Result<(PathBuf, u64)>,
    took: Duration,
}

impl Compaction {
    /// The next snapshot thread's report.
    pub async fn finished(&mut self) -> Option<Written> {
        self.done_rx.recv().await
    }
}

impl Driver {
    /// Starts a snapshot thread when one is due.
    pub(super) fn maybe_compact(&mut self) -> anyhow::Result<()> {
        let applied = self.raw.raft.raft_log.applied;
        let snap_index = self.raw.store().snapshot_ref().get_metadata().index;
        let c = &self.compaction;
        let due = c.due
            || snapshot_due(
                applied - snap_index.min(applied),
                c.log_bytes,
                c.last_snapshot_bytes,
                self.options.snapshot_every,
            );
        if c.thread.is_some() || applied <= snap_index || applied < c.retry_at || !due {
            return Ok(());
        }
        self.compaction.due = false;
        self.compaction.log_bytes = 0;
        let meta = self.raw.store().snapshot_at(applied)?;
        let copy = self.registry.current();
        let dir = self.raw.store().dir().to_path_buf();
        let done = self.compaction.done_tx.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("meso-snapshot-{}", self.id))
            .spawn(move || {
                let started = Instant::now();
                let file =
                    snapshot_file::write_with(&dir, &meta, |out| Ok(copy.write_snapshot(out)?));
                drop(copy);
                let _ = done.send(Written {
                    meta,
                    file,
                    took: started.elapsed(),
                });
            });
        match spawned {
            Ok(thread) => self.compaction.thread = Some(thread),
            Err(e) => self.snapshot_failed(applied, &anyhow::anyhow!(e)),
        }
        Ok(())
    }

    /// A snapshot thread finished: record its snapshot and compact the log.
    pub(super) fn snapshot_written(&mut self, written: Written) -> anyhow::Result<()> {
        if let Some(thread) = self.compaction.thread.take() {
            let _ = thread.join();
        }
        let index = written.meta.index;
        match written.file {
            Ok((file, bytes)) => {
                self.compaction.last_snapshot_bytes = bytes;
                self.raw.mut_store().compacted(written.meta, &file)?;
                metrics::histogram!("meso_raft_snapshot_duration_seconds", "node" => self.metric_node.clone())
                    .record(written.took.as_secs_f64());
                tracing::debug!(
                    node = self.id,
                    index,
                    bytes,
                    took_ms = written.took.as_millis() as u64,
                    "snapshot written, log compacted"
                );
            }
            Err(e) => self.snapshot_failed(index, &e),
        }
        Ok(())
    }

    /// A stopping driver waits for its snapshot thread and records what it
    /// wrote, so the store opens next time as it closed.
    pub(super) fn finish_snapshot(&mut self) {
        let Some(thread) = self.compaction.thread.take() else {
            return;
        };
        let _ = thread.join();
        if let Ok(written) = self.compaction.done_rx.try_recv()
            && let Err(e) = self.snapshot_written(written)
        {
            tracing::warn!(node = self.id, error = %format!("{e:#}"), "cannot record the last snapshot");
        }
    }

    /// A snapshot could not be written (a full disk, say): the log keeps
    /// growing, and the next try waits for another `snapshot_every` entries.
    fn snapshot_failed(&mut self, index: u64, e: &anyhow::Error) {
        self.compaction.retry_at = index + self.options.snapshot_every;
        tracing::warn!(node = self.id, index, error = %format!("{e:#}"), "cannot write a snapshot; the log is not compacted");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB: u64 = 1024 * 1024;

    #[test]
    fn a_snapshot_waits_for_entries_and_as_many_bytes_as_the_last() {
        // Small writes over a large registry: the count alone is not enough.
        assert!(!snapshot_due(10_000, MB, 100 * MB, 10_000));
        assert!(snapshot_due(10_000, 100 * MB, 100 * MB, 10_000));
        // Few entries, even if they outweigh a small registry.
        assert!(!snapshot_due(9_999, 10 * MB, MB, 10_000));
        assert!(snapshot_due(10_000, 10 * MB, MB, 10_000));
    }

    #[test]
    fn the_log_is_bounded_in_bytes_and_in_entries() {
        // Megabyte entries over a small registry: due at the cap, not at
        // `snapshot_every` entries (gigabytes).
        assert!(!snapshot_due(60, 60 * MB, MB, 10_000));
        assert!(snapshot_due(64, LOG_BYTES_CAP, MB, 10_000));
        // A registry larger than the cap still waits for its own size.
        assert!(!snapshot_due(64, LOG_BYTES_CAP, 150 * MB, 10_000));
        // Tiny writes over a huge registry: replay stays bounded.
        assert!(!snapshot_due(99_999, 10 * MB, 150 * MB, 10_000));
        assert!(snapshot_due(100_000, 10 * MB, 150 * MB, 10_000));
    }
}
