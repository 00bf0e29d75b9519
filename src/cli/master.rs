//! `meso master` and `meso node`: run a long-lived node in the foreground.

use clap::Args;

use crate::config::{AgentFlags, DnsFlags, Extra, MasterFlags, NodeFlags, Settings};
use crate::node;

#[derive(Args)]
pub struct MasterArgs {
    #[command(flatten)]
    node: NodeFlags,
    #[command(flatten)]
    master: MasterFlags,
    #[command(flatten)]
    dns: DnsFlags,
}

#[derive(Args)]
pub struct NodeArgs {
    /// Roles to run, comma-separated: master, agent, scheduler, dns
    #[arg(long, env = "MESO_ROLES", value_name = "ROLES")]
    roles: Option<String>,
    #[command(flatten)]
    node: NodeFlags,
    #[command(flatten)]
    master: MasterFlags,
    #[command(flatten)]
    agent: AgentFlags,
    #[command(flatten)]
    dns: DnsFlags,
}

pub async fn run_master(args: MasterArgs) -> anyhow::Result<()> {
    let settings = Settings::resolve(
        &args.node,
        Extra {
            master: args.master,
            dns: args.dns,
            roles: Some("master".into()),
            default_log: "info",
            ..Default::default()
        },
    )?;
    serve(settings).await
}

pub async fn run_node(args: NodeArgs) -> anyhow::Result<()> {
    let settings = Settings::resolve(
        &args.node,
        Extra {
            master: args.master,
            agent: args.agent,
            dns: args.dns,
            roles: args.roles,
            default_log: "info",
            ..Default::default()
        },
    )?;
    serve(settings).await
}

/// Runs a node until Ctrl-C or SIGTERM; prints its addresses once started.
pub async fn serve(settings: Settings) -> anyhow::Result<()> {
    super::init_logging(&settings.log);
    let interrupted = super::interrupted();
    let bound = node::bind(settings).await?;
    let node = bound.start(None).await?;
    // The addresses as bound (port 0 resolved), for scripts and tests.
    println!("export MESOS_MASTER={}", node.advertised_http());
    if let Some(m) = &node.master {
        println!("export MESO_RAFT={}", m.advertise_raft);
        if let Some(dns) = &node.dns {
            println!("export MESO_DNS={}", dns.addr);
        }
        // Last: scripts and tests wait for it as the sign the others are out.
        println!("export MESO_ID={}", m.id);
        tracing::info!(id = m.id, http = %m.advertise_http, raft = %m.advertise_raft, "master started");
    }
    if let Some(a) = &node.agent {
        println!("export MESO_AGENT_HTTP={}", node.advertised_http());
        tracing::info!(resources = %a.resources, "agent started");
    }
    interrupted.await;
    tracing::info!("shutting down");
    node.shutdown().await;
    Ok(())
}
