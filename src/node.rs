//! A node: the roles one process runs for one configuration, behind one HTTP
//! listener, with one shutdown path for all of them.
//!
//! Starting is two steps so that `meso up --masters 3` can learn every member's
//! Raft address before any member starts: [`bind`] claims the ports (a clash is
//! reported here, before any state is touched), [`Bound::start`] opens storage
//! and starts the roles.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::serve::{Listener, ListenerExt as _};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::agent::Agent;
use crate::config::{Role, Settings};
use crate::master::{Master, MasterOptions};

pub struct Bound {
    settings: Settings,
    http: TcpListener,
    raft: Option<TcpListener>,
    dns: Option<crate::dns::Sockets>,
    pub http_addr: SocketAddr,
    pub raft_addr: Option<SocketAddr>,
}

pub struct Node {
    pub http_addr: SocketAddr,
    pub master: Option<Arc<Master>>,
    pub agent: Option<Agent>,
    pub dns: Option<crate::dns::Dns>,
    shutdown: CancellationToken,
    server: JoinHandle<()>,
}

async fn listen(addr: &str, what: &str) -> anyhow::Result<TcpListener> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} for {what}"))?;
    Ok(listener)
}

/// Claims the node's ports.
pub async fn bind(settings: Settings) -> anyhow::Result<Bound> {
    let http = listen(&settings.http, "HTTP").await?;
    let master = settings.roles.contains(&Role::Master);
    let raft = if master {
        Some(listen(&settings.raft_addr, "Raft").await?)
    } else {
        None
    };
    let dns = if master {
        crate::dns::bind(&settings.dns)?
    } else {
        None
    };
    Ok(Bound {
        dns,
        http_addr: http.local_addr()?,
        raft_addr: raft.as_ref().map(|l| l.local_addr()).transpose()?,
        settings,
        http,
        raft,
    })
}

/// The HTTP listener's connections, without Nagle's algorithm: the agents'
/// launch streams and `/v2/events` write one small message at a time, and
/// each waited for the ACK of the one before (with 1,000 apps POSTed from
/// 8 clients a POST's p99 fell by about a third without it, BENCHMARKS.md).
fn without_nagle(
    http: TcpListener,
) -> impl Listener<Io = tokio::net::TcpStream, Addr = SocketAddr> {
    http.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "HTTP connection keeps Nagle's algorithm");
        }
    })
}

/// The address others should use for a bound socket: a wildcard bind is
/// advertised under the node's hostname.
fn advertise(addr: SocketAddr, hostname: &str) -> String {
    if addr.ip().is_unspecified() {
        format!("{hostname}:{}", addr.port())
    } else {
        addr.to_string()
    }
}

impl Bound {
    /// Starts the roles. `peers` overrides the configured Raft peers (used by
    /// `meso up`, which knows its members' ports only after binding them).
    pub async fn start(self, peers: Option<BTreeMap<u64, String>>) -> anyhow::Result<Node> {
        crate::api::metrics::handle();
        let shutdown = CancellationToken::new();
        let s = self.settings;
        let master = match self.raft {
            Some(raft_listener) => {
                let raft_addr = self.raft_addr.expect("bound with the listener");
                let opts = MasterOptions {
                    id: s.id,
                    data_dir: s.data_dir.clone(),
                    peers: peers.unwrap_or(s.peers.clone()),
                    join: s.join.clone(),
                    raft: s.raft.clone(),
                    cluster_name: s.cluster.clone(),
                    hostname: s.hostname.clone(),
                    advertise_raft: advertise(raft_addr, &s.hostname),
                    advertise_http: advertise(self.http_addr, &s.hostname),
                    campaign_now: s.campaign_now,
                    agent_timers: s.agent_timers,
                };
                match Master::start(opts, raft_listener, shutdown.clone()).await {
                    Ok(m) => Some(m),
                    Err(e) => {
                        shutdown.cancel();
                        return Err(e);
                    }
                }
            }
            None => None,
        };
        let agent = if s.roles.contains(&Role::Agent) {
            let addr = advertise(self.http_addr, &s.hostname);
            match Agent::start(&s.agent, &s.hostname, &addr, shutdown.clone()).await {
                Ok(a) => Some(a),
                Err(e) => {
                    shutdown.cancel();
                    return Err(e);
                }
            }
        } else {
            None
        };
        let dns = match (self.dns, &master) {
            (Some(sockets), Some(m)) => {
                match crate::dns::start(m.clone(), sockets, &s.dns, &s.hostname, shutdown.clone()) {
                    Ok(dns) => Some(dns),
                    Err(e) => {
                        shutdown.cancel();
                        return Err(e);
                    }
                }
            }
            _ => None,
        };
        let sandboxes = agent.is_some().then(|| s.agent.work_dir.join("sandboxes"));
        let scheduler = master
            .clone()
            .map(|m| crate::scheduler::start(m, shutdown.clone()));
        let dns_api = match (&dns, &master) {
            (Some(dns), Some(m)) => Some(crate::dns::http::Api {
                dns: dns.clone(),
                master: m.clone(),
                http: self.http_addr,
            }),
            _ => None,
        };
        let router = crate::api::router(master.clone(), scheduler, sandboxes, dns_api);
        let stop = shutdown.clone();
        let http = self.http;
        let server = tokio::spawn(async move {
            let serve =
                axum::serve(without_nagle(http), router).with_graceful_shutdown(async move {
                    stop.cancelled().await;
                });
            if let Err(e) = serve.await {
                tracing::error!(error = %e, "HTTP server stopped");
            }
        });
        Ok(Node {
            http_addr: self.http_addr,
            master,
            agent,
            dns,
            shutdown,
            server,
        })
    }
}

impl Node {
    /// Stops every role and waits for the HTTP server to drain.
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        let drain = async {
            let _ = self.server.await;
            if let Some(m) = &self.master {
                m.stopped().await;
            }
        };
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), drain).await;
    }

    pub fn advertised_http(&self) -> String {
        match &self.master {
            Some(m) => m.advertise_http.clone(),
            None => self.http_addr.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn http_connections_are_accepted_without_nagle() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let addr = listener.local_addr().expect("its address");
        let mut http = without_nagle(listener);
        let _client = tokio::net::TcpStream::connect(addr)
            .await
            .expect("connects");
        let (accepted, _) = http.accept().await;
        assert!(accepted.nodelay().expect("readable option"));
    }
}
