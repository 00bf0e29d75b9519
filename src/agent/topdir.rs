//! The parents of per-task directories (`sandboxes/`, `meta/tasks/`) are
//! marked as tops of directory hierarchies (`chattr +T`, `FS_TOPDIR_FL`), so
//! that ext4 spreads the tasks' directories over its block groups.
//!
//! ```text
//!  agent start ─▶ mkdir -p sandboxes meta/tasks ─▶ FS_IOC_SETFLAGS |= TOPDIR
//!  launch ─▶ mkdir sandboxes/<task> ─▶ ext4's Orlov allocator: a child of a
//!            top dir goes to a group with few directories and free inodes,
//!            not its parent's ─▶ stdout, stderr follow their directory
//! ```
//!
//! Why: without the flag every task's directory and files land in the one
//! block group of their parent. On ext4 without a journal (this project's CI
//! machines) each new inode is first checked against the inodes of its group
//! deleted in the last minutes (`recently_deleted`, an inode-table block
//! lookup per candidate, from the group's first free bit), so after 1,000
//! tasks' sandboxes were removed each new task's inodes skipped thousands of
//! candidates: creating 1,000 tasks' four inodes took 700–830 ms of CPU here,
//! and 115–150 ms with the flag (a Python loop of mkdir and open, three rounds
//! of create-then-remove each way, 2026-12-06). Other filesystems ignore the
//! flag or refuse it; either way nothing else changes, so a refusal is only
//! logged.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;

/// `FS_TOPDIR_FL` of `<linux/fs.h>` (libc does not name it).
const FS_TOPDIR_FL: libc::c_int = 0x0002_0000;

/// Creates `dir` (and its parents) and marks it as a top directory where the
/// filesystem supports that.
pub fn create_top_dir(dir: &Path) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    if let Err(why) = mark(dir) {
        tracing::debug!(dir = %dir.display(), %why, "the filesystem keeps no top-directory flag");
    }
    Ok(())
}

fn mark(dir: &Path) -> io::Result<()> {
    let file = File::open(dir)?;
    let flags = flags_of(&file)?;
    if flags & FS_TOPDIR_FL != 0 {
        return Ok(());
    }
    let flags = flags | FS_TOPDIR_FL;
    // SAFETY: FS_IOC_SETFLAGS reads one int through a pointer to a live
    // local, on an fd this function owns.
    if unsafe { libc::ioctl(file.as_raw_fd(), libc::FS_IOC_SETFLAGS, &flags) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The inode flags of an open file (what `lsattr` shows).
fn flags_of(file: &File) -> io::Result<libc::c_int> {
    let mut flags: libc::c_int = 0;
    // SAFETY: FS_IOC_GETFLAGS writes one int through a pointer to a live
    // local, on an fd the caller keeps open.
    if unsafe { libc::ioctl(file.as_raw_fd(), libc::FS_IOC_GETFLAGS, &mut flags) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(flags)
}

/// Whether `dir` carries the flag; None where the filesystem keeps no such
/// flag (anything but ext4 here), for tests to skip on.
#[cfg(test)]
pub fn is_top_dir(dir: &Path) -> Option<bool> {
    const EXT4_SUPER_MAGIC: i64 = 0xEF53;
    let fs = nix::sys::statfs::statfs(dir).ok()?;
    if fs.filesystem_type().0 as i64 != EXT4_SUPER_MAGIC {
        return None;
    }
    let flags = flags_of(&File::open(dir).ok()?).ok()?;
    Some(flags & FS_TOPDIR_FL != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn makes_the_dir_and_marks_it_where_the_filesystem_can() {
        let work = tempfile::tempdir().unwrap();
        let dir = work.path().join("a/b");
        create_top_dir(&dir).unwrap();
        assert!(dir.is_dir());
        assert_ne!(is_top_dir(&dir), Some(false), "ext4 keeps the flag");
        assert_ne!(
            is_top_dir(work.path()),
            Some(true),
            "only the dir asked for is marked"
        );
        // A second time (an agent's restart) is quiet.
        create_top_dir(&dir).unwrap();
        assert_ne!(is_top_dir(&dir), Some(false));
    }
}
