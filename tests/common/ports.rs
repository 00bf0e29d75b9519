//! Addresses and ports for the tests' processes: a fresh loopback address
//! with a free port base for a cluster's static `--peers`, and ports from
//! the kernel's ephemeral range, never handed out twice in one test binary,
//! for what tasks listen on.

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::sync::Mutex;

use super::random_u64;

/// A fresh loopback address `127.X.Y.Z` (never 127.0.0.x) and a port base such
/// that `base .. base + ports` are free on it.
pub fn loopback(ports: u16) -> (String, u16) {
    loop {
        let r = random_u64();
        let ip = format!(
            "127.{}.{}.{}",
            1 + (r % 254),
            1 + ((r >> 8) % 254),
            1 + ((r >> 16) % 254)
        );
        // Below the ephemeral range (32768-60999), so no outgoing connection
        // can be holding one of them.
        let base = 20_000 + ((r >> 24) % 10_000) as u16;
        let free = (0..ports).all(|i| TcpListener::bind((ip.as_str(), base + i)).is_ok());
        if free {
            return (ip, base);
        }
    }
}

/// Just a fresh loopback IP, for processes that bind port 0.
pub fn loopback_ip() -> String {
    loopback(1).0
}

/// A port free on every address now (docker publishes on 0.0.0.0; health
/// checks probe 127.0.0.1), taken from the kernel's ephemeral range so that
/// it never meets the fixed port bases other tests probe for.
pub fn free_port() -> u16 {
    free_ports(1)[0]
}

/// Every port [`free_ports`] has handed out in this test binary.
static HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());

/// `n` ports free on every address now, as [`free_port`], none of them ever
/// handed out before in this test binary. The kernel gives a probed port
/// back to the next `bind(0)` once the probe closes, so two tests running at
/// once could both be handed it: the task that binds it first then answers
/// the other test's health checks (which count that test's task healthy
/// while it is still starting), and the other task's server dies on
/// EADDRINUSE, exit status 1.
pub fn free_ports(n: usize) -> Vec<u16> {
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    // Every probe stays bound until the end: the kernel never returns one
    // port twice here, even one that is refused for being handed out.
    let mut probes = Vec::new();
    let mut ports = Vec::new();
    while ports.len() < n {
        let probe = TcpListener::bind("0.0.0.0:0").expect("bind a free port");
        let port = probe.local_addr().expect("a bound address").port();
        probes.push(probe);
        if handed_out.insert(port) {
            ports.push(port);
        }
    }
    ports
}
