//! The joining side of `meso master --join ADDR`: ask any member to add us, and
//! learn our id and our peers' addresses from the answer.

use std::path::Path;
use std::time::Duration;

use anyhow::{anyhow, bail};
use serde::{Deserialize, Serialize};

use super::raft::storage::prepare_data_dir;
use crate::model::Member;

#[derive(Debug, Serialize, Deserialize)]
pub struct JoinAnswer {
    pub id: u64,
    pub members: Vec<Member>,
}

pub fn check_data_dir(dir: &Path) -> anyhow::Result<()> {
    prepare_data_dir(dir)
}

/// Asks the cluster at `seed` (any member; it forwards to the leader) to add
/// `me`. Retries while the cluster has no leader, for up to ten seconds.
pub async fn request(seed: &str, me: &Member) -> anyhow::Result<JoinAnswer> {
    let url = format!("{}/master/members", crate::api::base_url(seed));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let response = client.post(&url).json(me).send().await;
        let retry_reason = match response {
            Ok(r) if r.status().is_success() => {
                return r.json::<JoinAnswer>().await.map_err(|e| {
                    anyhow!("cannot join the cluster at {seed}: unreadable answer: {e}")
                });
            }
            Ok(r) if r.status() == reqwest::StatusCode::SERVICE_UNAVAILABLE => {
                r.text().await.unwrap_or_default().to_string()
            }
            Ok(r) => {
                let status = r.status();
                let body = r.text().await.unwrap_or_default();
                bail!(
                    "cannot join the cluster at {seed}: {status}: {}",
                    body.trim()
                );
            }
            Err(e) => format!("{e}"),
        };
        if tokio::time::Instant::now() > deadline {
            bail!("cannot join the cluster at {seed}: {}", retry_reason.trim());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The members the cluster at `seed` knows, with their addresses.
pub async fn members(seed: &str) -> anyhow::Result<Vec<Member>> {
    let url = format!("{}/master/members", crate::api::base_url(seed));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?;
    let answer = client.get(&url).send().await?.error_for_status()?;
    Ok(answer.json().await?)
}
