//! `meso members list|remove`: the Raft membership, seen and changed over HTTP.

use anyhow::bail;
use clap::Subcommand;
use serde_json::Value;

use super::target::ClusterArgs;
use crate::api::base_url;

#[derive(Subcommand)]
pub enum MembersCommand {
    /// List the masters: id, addresses, voter, leader
    List {
        #[command(flatten)]
        target: ClusterArgs,
        /// Print as JSON
        #[arg(long)]
        json: bool,
    },
    /// Remove a (dead) master from the Raft group
    Remove {
        /// The master's id
        id: u64,
        #[command(flatten)]
        target: ClusterArgs,
    },
}

pub async fn run(cmd: MembersCommand) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    match cmd {
        MembersCommand::List { target, json } => {
            let master = target.addr()?;
            let url = format!("{}/master/members", base_url(&master));
            let resp = client
                .get(&url)
                .send()
                .await
                .map_err(|_| unreachable(&master))?;
            let members: Value = check(resp).await?.json().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&members)?);
                return Ok(());
            }
            println!("{:<4} {:<22} {:<22} ROLE", "ID", "RAFT", "HTTP");
            for m in members.as_array().into_iter().flatten() {
                let role = match (m["leader"].as_bool(), m["voter"].as_bool()) {
                    (Some(true), _) => "leader",
                    (_, Some(true)) => "follower",
                    _ => "non-voter",
                };
                println!(
                    "{:<4} {:<22} {:<22} {role}",
                    m["id"],
                    m["raft_addr"].as_str().unwrap_or("-"),
                    m["http_addr"].as_str().unwrap_or("-"),
                );
            }
        }
        MembersCommand::Remove { id, target } => {
            let master = target.addr()?;
            let url = format!("{}/master/members/{id}", base_url(&master));
            let resp = client
                .delete(&url)
                .send()
                .await
                .map_err(|_| unreachable(&master))?;
            check(resp).await?;
            println!("removed master {id}");
        }
    }
    Ok(())
}

/// The same one line and exit code as every client command's.
fn unreachable(addr: &str) -> anyhow::Error {
    super::target::Api::new(addr)
        .map(|api| anyhow::Error::from(api.unreachable()))
        .unwrap_or_else(|e| e)
}

async fn check(resp: reqwest::Response) -> anyhow::Result<reqwest::Response> {
    if resp.status().is_success() {
        return Ok(resp);
    }
    let status = resp.status();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    let message = body["message"].as_str().unwrap_or("no details");
    bail!("{status}: {message}")
}
