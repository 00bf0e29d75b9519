//! `meso agent`: run an agent in the foreground.

use clap::Args;

use crate::config::{AgentFlags, Extra, NodeFlags, Settings};

#[derive(Args)]
pub struct AgentArgs {
    #[command(flatten)]
    node: NodeFlags,
    #[command(flatten)]
    agent: AgentFlags,
}

pub async fn run(mut args: AgentArgs) -> anyhow::Result<()> {
    // An agent listens where Mesos agents do, unless told otherwise.
    if args.node.http.is_none() {
        args.node.http = Some("127.0.0.1:5051".into());
    }
    let settings = Settings::resolve(
        &args.node,
        Extra {
            agent: args.agent,
            roles: Some("agent".into()),
            default_log: "info",
            ..Default::default()
        },
    )?;
    super::master::serve(settings).await
}
