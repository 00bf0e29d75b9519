//! What this machine offers, as Mesos's agent detects it: cpus, memory in MB
//! (total less 1 GB, or half when that leaves too little), disk in MB of the
//! work dir's filesystem (same rule), and ports [31000-32000].

use std::path::Path;

use crate::model::{DEFAULT_PORTS, Resources};

pub fn detect(work_dir: &Path) -> Resources {
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get() as f64)
        .unwrap_or(1.0);
    Resources {
        cpus,
        mem: leave_for_the_system(total_memory_mb()),
        disk: leave_for_the_system(disk_mb(work_dir)),
        ports: vec![DEFAULT_PORTS],
    }
}

/// Mesos keeps 1 GB for the system, or half of a total under 2 GB.
fn leave_for_the_system(total_mb: f64) -> f64 {
    if total_mb >= 2048.0 {
        (total_mb - 1024.0).floor()
    } else {
        (total_mb / 2.0).floor()
    }
}

fn total_memory_mb() -> f64 {
    let Ok(text) = std::fs::read_to_string("/proc/meminfo") else {
        return 0.0;
    };
    text.lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

fn disk_mb(dir: &Path) -> f64 {
    match nix::sys::statvfs::statvfs(dir) {
        Ok(s) => (s.blocks() as f64 * s.fragment_size() as f64) / (1024.0 * 1024.0),
        Err(_) => 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_something_real() {
        let dir = tempfile::tempdir().unwrap();
        let r = detect(dir.path());
        assert!(r.cpus >= 1.0);
        assert!(r.mem > 0.0 && r.disk > 0.0, "{r}");
        assert_eq!(r.ports, vec![DEFAULT_PORTS]);
        assert_eq!(leave_for_the_system(4096.0), 3072.0);
        assert_eq!(leave_for_the_system(1000.0), 500.0);
    }
}
