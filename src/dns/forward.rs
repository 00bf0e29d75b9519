//! Names outside the domain go to upstream resolvers, the client's message
//! as it came, over the protocol the client used (RFC 5625's transparent
//! relay, as Mesos-DNS does). Resolvers are tried in order until one
//! answers; none configured is REFUSED, none answering is SERVFAIL (the
//! handler's side).

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// The upstreams and how long each may take.
#[derive(Debug, Clone)]
pub struct Forwarder {
    pub resolvers: Vec<SocketAddr>,
    pub timeout: Duration,
}

/// The transport a query came over, and so goes upstream over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

impl Forwarder {
    /// The upstreams of `/etc/resolv.conf`, port 53, leaving out loopback
    /// addresses on our own DNS port (forwarding to ourselves would loop).
    pub fn from_resolv_conf(text: &str, own: Option<SocketAddr>) -> Vec<SocketAddr> {
        text.lines()
            .filter_map(|line| {
                let mut words = line.split_whitespace();
                (words.next()? == "nameserver").then_some(())?;
                let ip = words.next()?.split('%').next()?.parse().ok()?;
                Some(SocketAddr::new(ip, 53))
            })
            .filter(|addr| Some(*addr) != own)
            .collect()
    }

    /// `host[:port]` resolver addresses (IP literals; port 53 by default).
    pub fn parse_resolvers(text: &str) -> Result<Vec<SocketAddr>, String> {
        text.split(',')
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .map(|r| {
                r.parse::<SocketAddr>()
                    .or_else(|_| r.parse().map(|ip| SocketAddr::new(ip, 53)))
                    .map_err(|_| format!("'{r}' is not an IP address or IP:PORT"))
            })
            .collect()
    }

    /// The first answer of any upstream, or None when none answered.
    pub async fn exchange(&self, query: &[u8], transport: Transport) -> Option<Vec<u8>> {
        for resolver in &self.resolvers {
            let attempt = async {
                match transport {
                    Transport::Udp => udp(*resolver, query).await,
                    Transport::Tcp => tcp(*resolver, query).await,
                }
            };
            match tokio::time::timeout(self.timeout, attempt).await {
                Ok(Ok(answer)) => return Some(answer),
                Ok(Err(e)) => tracing::debug!(%resolver, error = %e, "upstream failed"),
                Err(_) => tracing::debug!(%resolver, "upstream timed out"),
            }
        }
        None
    }
}

async fn udp(resolver: SocketAddr, query: &[u8]) -> std::io::Result<Vec<u8>> {
    {
        let bind: SocketAddr = if resolver.is_ipv4() {
            "0.0.0.0:0".parse().expect("literal")
        } else {
            "[::]:0".parse().expect("literal")
        };
        let socket = UdpSocket::bind(bind).await?;
        socket.connect(resolver).await?;
        socket.send(query).await?;
        let mut buf = vec![0u8; 65_535];
        loop {
            let n = socket.recv(&mut buf).await?;
            // Only the answer to this query (same id): a stray datagram is
            // not taken for it.
            if n >= 2 && query.len() >= 2 && buf[..2] == query[..2] {
                buf.truncate(n);
                return Ok(buf);
            }
        }
    }
}

async fn tcp(resolver: SocketAddr, query: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect(resolver).await?;
    let len = u16::try_from(query.len())
        .map_err(|_| std::io::Error::other("query longer than 65,535 bytes"))?;
    let mut framed = Vec::with_capacity(query.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(query);
    stream.write_all(&framed).await?;
    let n = stream.read_u16().await? as usize;
    let mut answer = vec![0u8; n];
    stream.read_exact(&mut answer).await?;
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_nameservers_without_ourselves() {
        let text = "# comment\nnameserver 10.0.0.2\nsearch example\nnameserver 127.0.0.1\nnameserver fe80::1%eth0\n";
        let own: SocketAddr = "127.0.0.1:53".parse().expect("addr");
        let got = Forwarder::from_resolv_conf(text, Some(own));
        let want: Vec<SocketAddr> = vec![
            "10.0.0.2:53".parse().expect("a"),
            "[fe80::1]:53".parse().expect("b"),
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn resolver_lists_parse_or_name_the_bad_one() {
        let got = Forwarder::parse_resolvers("8.8.8.8, 127.0.0.1:5353").expect("valid");
        assert_eq!(got[0], "8.8.8.8:53".parse::<SocketAddr>().expect("a"));
        assert_eq!(got[1], "127.0.0.1:5353".parse::<SocketAddr>().expect("b"));
        let err = Forwarder::parse_resolvers("8.8.8.8,dns.google").expect_err("a name");
        assert!(err.contains("dns.google"), "{err}");
    }
}
