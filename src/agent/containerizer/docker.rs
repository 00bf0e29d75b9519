//! The docker containerizer (skeleton: being written on its own branch).

use std::time::Duration;

use futures::future::BoxFuture;

use super::{ContainerHandle, Containerizer, Exit, LaunchError, LaunchRequest, Launched};

pub struct DockerContainerizer {
    pub agent_key: String,
}

impl DockerContainerizer {
    /// Connects to the local Docker engine; an error says why it is unusable.
    pub async fn connect(agent_key: String) -> Result<Self, String> {
        let _ = agent_key;
        Err("the docker containerizer is not built yet".into())
    }
}

impl Containerizer for DockerContainerizer {
    fn launch<'a>(
        &'a self,
        _req: LaunchRequest<'a>,
    ) -> BoxFuture<'a, Result<Launched, LaunchError>> {
        Box::pin(async {
            Err(LaunchError::new(
                "REASON_CONTAINER_LAUNCH_FAILED",
                "not yet",
            ))
        })
    }
    fn wait<'a>(&'a self, _handle: &'a ContainerHandle) -> BoxFuture<'a, Exit> {
        Box::pin(async { Exit::default() })
    }
    fn kill<'a>(&'a self, _handle: &'a ContainerHandle, _grace: Duration) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }
    fn ours(&self) -> BoxFuture<'_, Vec<ContainerHandle>> {
        Box::pin(async { Vec::new() })
    }
    fn cleanup<'a>(&'a self, _handle: &'a ContainerHandle) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }
}
