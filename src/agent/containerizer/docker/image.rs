//! The task's image: which one exactly, and making sure the engine has it
//! before a container is created from it.

use bollard::Docker;
use bollard::query_parameters::CreateImageOptionsBuilder;
use futures::StreamExt;

use super::{PREPARATION_FAILED, status, why};
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

/// Pulls `image` unless it is here already (or always, with `force`).
pub(super) async fn ensure_image(
    docker: &Docker,
    image: &str,
    force: bool,
) -> Result<(), LaunchError> {
    if !force {
        match docker.inspect_image(image).await {
            Ok(_) => return Ok(()),
            Err(e) if status(&e) == Some(404) => {}
            Err(e) => {
                return Err(LaunchError::new(
                    PREPARATION_FAILED,
                    format!("cannot look up docker image '{image}': {}", why(&e)),
                ));
            }
        }
    }
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
