//! Commands run next to a running task (COMMAND health checks), on the host:
//! `/bin/sh -c <command>` with the task's environment, in its sandbox, in a
//! process group of its own so that a command that outlives its timeout is
//! killed whole. The process containerizer runs checks this way; the docker
//! one runs them inside the container instead (`docker/exec.rs`).
//!
//! Not in the task's cgroups: a check's cost is the agent's, as its own
//! probes are.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;

/// A command to run next to a task.
pub struct ExecRequest<'a> {
    /// Run by `/bin/sh -c`.
    pub command: &'a str,
    /// The task's environment (host runs only; a container has its own).
    pub env: &'a BTreeMap<String, String>,
    /// The task's sandbox on the host (the working directory of host runs).
    pub sandbox: &'a Path,
    /// Killed (its whole process group) when it runs longer.
    pub timeout: Duration,
}

/// How a command ended.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecOutput {
    /// The exit status; a signal N shows as 128 + N, as a shell reports it.
    pub code: i64,
    /// The last bytes of its stdout and stderr, for a failure's cause.
    pub tail: String,
}

/// How much of a command's output is kept (its end).
const TAIL: usize = 512;

/// Runs `req` on the host. Err when it cannot start or times out.
pub async fn host_exec(req: ExecRequest<'_>) -> Result<ExecOutput, String> {
    let mut child = Command::new("/bin/sh")
        .arg("-c")
        .arg(req.command)
        .env_clear()
        .envs(req.env)
        .current_dir(req.sandbox)
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run /bin/sh: {e}"))?;
    // Declared after the child, so dropped first: the group is killed while
    // the shell is not yet reaped (its pid, the group's id, still ours).
    let mut group = KillGroupOnDrop(child.id().and_then(|p| i32::try_from(p).ok()));
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let run = async {
        let (status, out, err) = tokio::join!(child.wait(), tail_of(stdout), tail_of(stderr));
        (status, out + &err)
    };
    let (status, output) = match tokio::time::timeout(req.timeout, run).await {
        Ok(done) => done,
        Err(_) => return Err(format!("timed out after {:?}", req.timeout)),
    };
    let status = status.map_err(|e| format!("cannot wait for /bin/sh: {e}"))?;
    // Reaped: its pid may be reused from here on, so never signal it again.
    group.0 = None;
    use std::os::unix::process::ExitStatusExt;
    let code = match (status.code(), status.signal()) {
        (Some(code), _) => i64::from(code),
        (None, Some(signal)) => 128 + i64::from(signal),
        (None, None) => -1,
    };
    Ok(ExecOutput {
        code,
        tail: last_chars(&output),
    })
}

struct KillGroupOnDrop(Option<i32>);

impl Drop for KillGroupOnDrop {
    fn drop(&mut self) {
        if let Some(pgid) = self.0.filter(|p| *p > 0) {
            // SAFETY: kill(2) with a negative pid signals that process group.
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
        }
    }
}

/// Reads a pipe to its end, keeping only its last [`TAIL`] bytes.
async fn tail_of(pipe: Option<impl AsyncRead + Unpin>) -> String {
    let Some(mut pipe) = pipe else {
        return String::new();
    };
    let mut kept: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match pipe.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                kept.extend_from_slice(&chunk[..n]);
                if kept.len() > TAIL {
                    kept.drain(..kept.len() - TAIL);
                }
            }
        }
    }
    String::from_utf8_lossy(&kept).into_owned()
}

/// The text's end, trimmed and at most [`TAIL`] bytes, on a char boundary.
pub fn last_chars(text: &str) -> String {
    let text = text.trim();
    let mut start = text.len().saturating_sub(TAIL);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    text[start..].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> BTreeMap<String, String> {
        BTreeMap::from([
            ("PATH".to_string(), "/usr/bin:/bin".to_string()),
            ("GREETING".to_string(), "hi".to_string()),
        ])
    }

    #[tokio::test]
    async fn runs_in_the_sandbox_with_the_env_and_reports_the_status() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("marker"), "").unwrap();
        let env = env();
        let run = |command| ExecRequest {
            command,
            env: &env,
            sandbox: dir.path(),
            timeout: Duration::from_secs(10),
        };
        let ok = host_exec(run("test -f marker && echo $GREETING")).await;
        assert_eq!(
            ok,
            Ok(ExecOutput {
                code: 0,
                tail: "hi".into()
            })
        );
        let failed = host_exec(run("echo nope >&2; exit 3")).await.unwrap();
        assert_eq!((failed.code, failed.tail.as_str()), (3, "nope"));
    }

    #[tokio::test]
    async fn a_command_past_its_timeout_is_killed_with_its_children() {
        let dir = tempfile::tempdir().unwrap();
        let env = env();
        let pid_file = dir.path().join("pid");
        let req = ExecRequest {
            command: "sleep 100 & echo $! > pid; wait",
            env: &env,
            sandbox: dir.path(),
            timeout: Duration::from_millis(500),
        };
        let err = host_exec(req).await.unwrap_err();
        assert!(err.contains("timed out"), "{err}");
        let pid: i32 = std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        // Gone, or a zombie waiting for init to reap it.
        while std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|s| !s.rsplit(')').next().unwrap_or("").trim().starts_with('Z'))
        {
            assert!(
                std::time::Instant::now() < deadline,
                "sleep {pid} still runs"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn tails_cut_on_char_boundaries() {
        let long = "é".repeat(400);
        let tail = last_chars(&long);
        assert!(tail.len() <= TAIL && tail.chars().all(|c| c == 'é'));
    }
}
