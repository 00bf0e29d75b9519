//! Where the fleet's connections come from: against masters on IPv4
//! loopback, from one source address per [`AGENTS_PER_SOURCE`] agents
//! (127.1.0.1, 127.1.0.2, …), each with a client and pool of its own;
//! elsewhere from the one address the kernel picks.
//!
//! ```text
//!  agent n ─▶ clients[n % len] ─bound to 127.1.0.(n % len + 1)─▶ leader
//! ```
//!
//! Why: every connection to one master is a distinct source port of the
//! same (source IP, destination) pair, and Linux hands `connect()` the even
//! ports of its ~28,000 ephemeral ones first, checking each candidate
//! against the sockets already holding it (`__inet_check_established`).
//! 10,000 agents hold 10,000 event streams from 127.0.0.1, so every new
//! connection of a heartbeat or an update scanned a range nearly full: a
//! quarter of the simulator's CPU in a 10,000-agent deployment on two cores,
//! taken from the masters it loads. When the leader fell behind, timed-out
//! calls closed their connections (each a TIME_WAIT holding its port for a
//! minute), the scans grew longer, the simulator took more of the CPU, its
//! connections ran into the open-file limit, and 6 of 21 runs on 2026-12-06
//! ended in a storm of failed calls (one down to 323 tasks/s); with a source
//! per thousand agents, 0 of the next 8 (BENCHMARKS.md, Scale). Agents of a
//! real cluster connect from machines of their own, so a source address per
//! thousand agents is the closer simulation too.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use anyhow::Context;

use crate::api::base_url;

/// Agents that share a source address and a connection pool.
pub const AGENTS_PER_SOURCE: usize = 1_000;

/// The first source address on loopback; the n-th client takes the n-th one.
const FIRST_SOURCE: Ipv4Addr = Ipv4Addr::new(127, 1, 0, 1);

/// The clients for a fleet of `agents` reaching `masters`; agent n uses
/// `clients[n % clients.len()]`.
pub fn clients(masters: &[String], agents: usize) -> anyhow::Result<Vec<reqwest::Client>> {
    let sources: Vec<Option<IpAddr>> = if masters.iter().all(|m| on_ipv4_loopback(m)) {
        (0..agents.div_ceil(AGENTS_PER_SOURCE).clamp(1, 254))
            .map(|k| {
                Some(IpAddr::V4(Ipv4Addr::from(
                    u32::from(FIRST_SOURCE) + k as u32,
                )))
            })
            .collect()
    } else {
        vec![None]
    };
    sources
        .into_iter()
        .map(|source| {
            reqwest::Client::builder()
                .no_proxy()
                .tcp_nodelay(true)
                .local_address(source)
                .connect_timeout(Duration::from_secs(5))
                .pool_idle_timeout(Duration::from_secs(60))
                .build()
                .context("building the HTTP client")
        })
        .collect()
}

/// Whether a master address (`host:port` or a URL) names 127.0.0.0/8 or
/// `localhost`.
fn on_ipv4_loopback(master: &str) -> bool {
    let Ok(url) = reqwest::Url::parse(&base_url(master)) else {
        return false;
    };
    let host = url.host_str().unwrap_or_default();
    match host.parse::<Ipv4Addr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => host.eq_ignore_ascii_case("localhost"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_masters_are_told_apart_from_others() {
        assert!(on_ipv4_loopback("127.0.0.1:5050"));
        assert!(on_ipv4_loopback("http://127.0.0.2:5050/"));
        assert!(on_ipv4_loopback("localhost:5050"));
        assert!(!on_ipv4_loopback("10.0.0.5:5050"));
        assert!(!on_ipv4_loopback("[::1]:5050"));
        assert!(!on_ipv4_loopback("master.example:5050"));
    }

    #[test]
    fn a_client_per_thousand_agents_on_loopback_and_one_elsewhere() {
        let local = vec!["127.0.0.1:1".to_string()];
        assert_eq!(clients(&local, 1).unwrap().len(), 1);
        assert_eq!(clients(&local, 10_000).unwrap().len(), 10);
        assert_eq!(clients(&local, 10_001).unwrap().len(), 11);
        let mixed = vec!["127.0.0.1:1".to_string(), "10.0.0.5:1".to_string()];
        assert_eq!(clients(&mixed, 10_000).unwrap().len(), 1);
    }

    /// The point of it: a connection from the n-th client comes from the
    /// n-th source address.
    #[tokio::test]
    async fn each_client_connects_from_its_own_address() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let peers = tokio::spawn(async move {
            let mut seen = Vec::new();
            for _ in 0..2 {
                let (socket, peer) = listener.accept().await.unwrap();
                seen.push(peer.ip());
                drop(socket);
            }
            seen
        });
        let clients = clients(&[addr.to_string()], 2_000).unwrap();
        for client in &clients {
            // The listener hangs up without answering: only the source matters.
            let _ = client.get(format!("http://{addr}/")).send().await;
        }
        let mut seen = peers.await.unwrap();
        seen.sort();
        let want: Vec<IpAddr> = ["127.1.0.1", "127.1.0.2"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        assert_eq!(seen, want);
    }
}
