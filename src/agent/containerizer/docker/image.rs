//! The task's image: which one exactly, and making sure the engine has it
//! before a container is created from it.

use bollard::Docker;
use bollard::query_parameters::CreateImageOptionsBuilder;
use futures::StreamExt;

use super::{PREPARATION_FAILED, why};
use crate::agent::containerizer::LaunchError;

/// `busybox` → `busybox:latest`. Without a tag docker would pull every tag of
/// the repository.
pub(super) fn normalize_image(image: &str) -> String {
    let image = image.trim();
    let last = image.rsplit('/').next().unwrap_or(image);
    if image.contains('@') || last.contains(':') {
        image.to_string()
    } else {
        format!("{image}:latest")
    }
}

/// Pulls `image`: because it is missing (`force` false) or because the task
/// asks for a fresh copy (`force_pull_image`).
pub(super) async fn pull_image(
    docker: &Docker,
    image: &str,
    force: bool,
) -> Result<(), LaunchError> {
    let options = CreateImageOptionsBuilder::new().from_image(image).build();
    let mut progress = docker.create_image(Some(options), None, None);
    while let Some(step) = progress.next().await {
        if let Err(e) = step {
            let here = if force {
                ""
            } else {
                "is not on this agent and "
            };
            return Err(LaunchError::new(
                PREPARATION_FAILED,
                format!(
                    "docker image '{image}' {here}could not be pulled: {}",
                    why(&e)
                ),
            ));
        }
    }
    Ok(())
}
