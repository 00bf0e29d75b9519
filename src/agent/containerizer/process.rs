//! The process containerizer (skeleton: being written on its own branch).

use std::path::PathBuf;
use std::time::Duration;

use futures::future::BoxFuture;

use super::cgroups::Cgroups;
use super::{ContainerHandle, Containerizer, Exit, LaunchError, LaunchRequest, Launched};

pub struct ProcessContainerizer {
    pub shim: PathBuf,
    pub agent_key: String,
    pub cgroups: Option<Cgroups>,
}

impl ProcessContainerizer {
    pub fn new(shim: PathBuf, agent_key: String, cgroups: Option<Cgroups>) -> Self {
        Self {
            shim,
            agent_key,
            cgroups,
        }
    }
}

impl Containerizer for ProcessContainerizer {
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
