//! COMMAND health checks of docker tasks run inside the task's container, as
//! Mesos runs them in the task's namespaces: `docker exec` (create, start
//! attached, read to the end, inspect for the exit code), in the sandbox
//! mount, with the container's own environment.
//!
//! The engine has no call to stop an exec; one past its timeout is killed
//! through its host pid (from inspect; the engine is local), while it still
//! runs by the engine's word.

use bollard::Docker;
use bollard::exec::{CreateExecOptions, StartExecResults};
use futures::StreamExt;

use super::SANDBOX_IN_CONTAINER;
use crate::agent::containerizer::exec::last_chars;
use crate::agent::containerizer::{ExecOutput, ExecRequest};

/// Output kept from an exec (its end), as for host runs.
const KEEP: usize = 4096;

pub(super) async fn exec_in(
    docker: &Docker,
    container: &str,
    req: ExecRequest<'_>,
) -> Result<ExecOutput, String> {
    let options = CreateExecOptions {
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        cmd: Some(vec!["/bin/sh", "-c", req.command]),
        working_dir: Some(SANDBOX_IN_CONTAINER),
        ..Default::default()
    };
    let exec = docker
        .create_exec(container, options)
        .await
        .map_err(|e| format!("docker exec in {container}: {}", super::why(&e)))?
        .id;
    let run = async {
        let mut kept = String::new();
        match docker.start_exec(&exec, None).await {
            Ok(StartExecResults::Attached { mut output, .. }) => {
                while let Some(Ok(chunk)) = output.next().await {
                    kept.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
                    if kept.len() > 2 * KEEP {
                        kept = last_chars(&kept);
                    }
                }
                Ok(kept)
            }
            Ok(StartExecResults::Detached) => Ok(kept),
            Err(e) => Err(format!("docker exec in {container}: {}", super::why(&e))),
        }
    };
    let output = match tokio::time::timeout(req.timeout, run).await {
        Ok(output) => output?,
        Err(_) => {
            kill_exec(docker, &exec).await;
            return Err(format!("timed out after {:?}", req.timeout));
        }
    };
    let inspect = docker
        .inspect_exec(&exec)
        .await
        .map_err(|e| format!("docker exec in {container}: {}", super::why(&e)))?;
    Ok(ExecOutput {
        code: inspect.exit_code.unwrap_or(-1),
        tail: last_chars(&output),
    })
}

async fn kill_exec(docker: &Docker, exec: &str) {
    let Ok(inspect) = docker.inspect_exec(exec).await else {
        return;
    };
    let pid = inspect.pid.and_then(|p| i32::try_from(p).ok());
    if let (Some(true), Some(pid)) = (inspect.running, pid.filter(|p| *p > 1)) {
        // SAFETY: kill(2) of one pid; the engine says it is the running exec's.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
}
