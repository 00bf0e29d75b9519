//! The README's quickstart, run as written: the fenced block marked
//! `sh quickstart` is taken from README.md and run by bash, so the
//! quickstart cannot drift from what the binary does.
//!
//! Two things differ from a new user's run, and only these: the `cargo
//! build` line becomes a PATH to the binary this test was built with (the
//! test already runs under cargo), and the cluster listens on a free
//! loopback address (`MESO_HTTP`, `MESO_DNS`) instead of 127.0.0.1:5050 and
//! :8053, so the dig line asks that address. Everything else, the example
//! app included, runs unchanged in a fresh directory.

use crate::common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::{BIN, loopback_ip, pids_where};

/// The lines of the block that opens with "```sh quickstart".
fn quickstart() -> String {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README.md");
    let mut lines = readme
        .lines()
        .skip_while(|l| l.trim() != "```sh quickstart");
    assert!(
        lines.next().is_some(),
        "README.md has no ```sh quickstart block"
    );
    let block: Vec<&str> = lines.take_while(|l| l.trim() != "```").collect();
    assert!(!block.is_empty(), "the quickstart block is empty");
    block.join("\n")
}

/// Stops whatever the script left running if it failed half way.
struct Cleanup(std::path::PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = Command::new(BIN)
            .args(["down", "--purge", "--data-dir"])
            .arg(&self.0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

#[test]
fn the_readme_quickstart_runs_as_written() {
    let script = quickstart();
    let bin_dir = Path::new(BIN).parent().unwrap().display().to_string();
    let mut rewritten = Vec::new();
    let (mut built, mut dug) = (false, false);
    for line in script.lines() {
        if line.starts_with("cargo build") {
            built = true;
            rewritten.push(format!("export PATH=\"{bin_dir}:$PATH\""));
        } else if line.contains("@127.0.0.1 -p 8053") {
            dug = true;
            rewritten.push(line.replace(
                "@127.0.0.1 -p 8053",
                "@\"${MESO_DNS%:*}\" -p \"${MESO_DNS##*:}\"",
            ));
        } else {
            rewritten.push(line.to_string());
        }
    }
    assert!(built && dug, "the quickstart builds and digs: {script}");

    let dir = tempfile::tempdir().unwrap();
    let _cleanup = Cleanup(dir.path().join(".meso"));
    let ip = loopback_ip();
    let out = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &rewritten.join("\n")])
        .current_dir(dir.path())
        .env("MESO_HTTP", format!("{ip}:0"))
        .env("MESO_DNS", format!("{ip}:0"))
        .env("NO_COLOR", "1")
        .env_remove("MESOS_MASTER")
        .env_remove("MESO_DATA_DIR")
        .env_remove("MESO_PRESET")
        .stdin(Stdio::null())
        .output()
        .expect("bash");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let shown = format!("stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(out.status.success(), "the quickstart failed: {shown}");

    assert!(
        stdout.contains("deployed /hello: 2/2 in service"),
        "{shown}"
    );
    // meso status: the app, both instances healthy (no checks: running).
    let app = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("/hello "))
        .unwrap_or_else(|| panic!("status shows no /hello: {shown}"));
    assert!(app.contains("2/2"), "{app}");
    // dig +short: the agent's address (both instances run on the one agent).
    assert!(
        stdout.lines().any(|l| l.trim() == ip),
        "dig answers the app's name with its agent's IP: {shown}"
    );
    // meso logs: each instance's first line, after its task's id.
    let hellos: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains("] hello from "))
        .collect();
    assert!(
        !hellos.is_empty() && hellos.iter().all(|l| l.starts_with("[hello.instance-")),
        "{shown}"
    );
    // meso down --purge: nothing left.
    assert!(!dir.path().join(".meso").exists(), "{shown}");
    let sandboxes = format!("MESOS_SANDBOX={}", dir.path().display());
    assert!(pids_where(|_, env| env.contains(&sandboxes)).is_empty());
}
