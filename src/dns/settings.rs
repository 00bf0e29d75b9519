//! The DNS role's settings: its flags, its keys in a node's YAML file (read
//! by `config.rs`, which documents them with every other key) and their
//! defaults.

use anyhow::{anyhow, bail};
use clap::Args;

use std::net::SocketAddr;

use super::forward::Forwarder;
use super::records::IpSource;

/// Flags of the DNS role (`meso up`, `meso master`, `meso node`).
#[derive(Debug, Clone, Default, Args)]
pub struct DnsFlags {
    /// DNS listen address, UDP and TCP (port 0 picks a free port), or `off`
    #[arg(long, env = "MESO_DNS", value_name = "ADDR|off")]
    pub dns: Option<String>,
    /// The domain DNS answers for
    #[arg(long, env = "MESO_DNS_DOMAIN", value_name = "DOMAIN")]
    pub dns_domain: Option<String>,
    /// Upstream resolvers for other names (IP[:PORT],...), or `none`
    #[arg(long, env = "MESO_DNS_RESOLVERS", value_name = "ADDRS")]
    pub dns_resolvers: Option<String>,
}

/// The role's keys as a node's YAML file gives them.
#[derive(Debug, Default)]
pub struct DnsFileKeys {
    pub dns: Option<String>,
    pub dns_domain: Option<String>,
    pub dns_resolvers: Option<String>,
    pub dns_ttl: Option<u32>,
    pub dns_ip_sources: Option<String>,
    pub dns_healthy_only: Option<bool>,
}

/// How the DNS role is set up (see `config.rs` for the keys).
#[derive(Debug, Clone)]
pub struct DnsSettings {
    /// UDP and TCP listen address; None: no DNS on this node.
    pub listen: Option<String>,
    pub domain: String,
    /// Upstreams for other names; None: those of `/etc/resolv.conf`.
    pub resolvers: Option<Vec<SocketAddr>>,
    pub ttl: u32,
    pub ip_sources: Vec<IpSource>,
    pub healthy_only: bool,
}

impl Default for DnsSettings {
    fn default() -> Self {
        Self {
            listen: None,
            domain: "mesos".into(),
            resolvers: None,
            ttl: 60,
            ip_sources: vec![IpSource::NetInfo, IpSource::Host],
            healthy_only: false,
        }
    }
}

impl DnsSettings {
    /// The role's settings from its flags over its file keys; the default
    /// listen address derives from the node's HTTP address.
    pub fn resolve(flags: &DnsFlags, file: DnsFileKeys, http: &str) -> anyhow::Result<Self> {
        let listen =
            flags
                .dns
                .clone()
                .or(file.dns)
                .unwrap_or_else(|| match http.rsplit_once(':') {
                    Some((host, "0")) => format!("{host}:0"),
                    Some((host, _)) => format!("{host}:8053"),
                    None => "127.0.0.1:8053".into(),
                });
        let listen = (listen != "off").then_some(listen);
        if let Some(addr) = &listen
            && addr
                .rsplit_once(':')
                .and_then(|(_, p)| p.parse::<u16>().ok())
                .is_none()
        {
            bail!("dns: '{addr}' is not HOST:PORT or off");
        }
        let domain = flags
            .dns_domain
            .clone()
            .or(file.dns_domain)
            .unwrap_or_else(|| "mesos".into())
            .trim_end_matches('.')
            .to_ascii_lowercase();
        let valid_label = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        };
        if !domain.split('.').all(valid_label) {
            bail!(
                "dns_domain: '{domain}' is not a domain name (labels of letters, digits and '-')"
            );
        }
        let resolvers = match flags.dns_resolvers.clone().or(file.dns_resolvers) {
            None => None,
            Some(text) if text.trim() == "none" => Some(Vec::new()),
            Some(text) => {
                Some(Forwarder::parse_resolvers(&text).map_err(|e| anyhow!("dns_resolvers: {e}"))?)
            }
        };
        let ip_sources = match &file.dns_ip_sources {
            None => vec![IpSource::NetInfo, IpSource::Host],
            Some(text) => text
                .split(',')
                .filter(|s| !s.trim().is_empty())
                .map(IpSource::parse)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| anyhow!("dns_ip_sources: {e}"))?,
        };
        if ip_sources.is_empty() {
            bail!("dns_ip_sources: name at least one of netinfo, host");
        }
        Ok(DnsSettings {
            listen,
            domain,
            resolvers,
            ttl: file.dns_ttl.unwrap_or(60),
            ip_sources,
            healthy_only: file.dns_healthy_only.unwrap_or(false),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(flags: DnsFlags, file: DnsFileKeys, http: &str) -> Result<DnsSettings, String> {
        DnsSettings::resolve(&flags, file, http).map_err(|e| e.to_string())
    }

    #[test]
    fn the_listen_address_follows_the_http_one_unless_given() {
        let on = |http| resolve(DnsFlags::default(), DnsFileKeys::default(), http).expect("valid");
        assert_eq!(on("10.0.0.1:5050").listen.as_deref(), Some("10.0.0.1:8053"));
        assert_eq!(on("127.0.0.1:0").listen.as_deref(), Some("127.0.0.1:0"));
        let off = DnsFlags {
            dns: Some("off".into()),
            ..Default::default()
        };
        assert_eq!(
            resolve(off, DnsFileKeys::default(), "127.0.0.1:5050")
                .expect("valid")
                .listen,
            None
        );
        let file = DnsFileKeys {
            dns: Some("0.0.0.0:53".into()),
            dns_resolvers: Some("none".into()),
            dns_ip_sources: Some("host,netinfo".into()),
            ..Default::default()
        };
        let s = resolve(DnsFlags::default(), file, "127.0.0.1:5050").expect("valid");
        assert_eq!(s.listen.as_deref(), Some("0.0.0.0:53"));
        assert_eq!(s.resolvers, Some(Vec::new()));
        assert_eq!(s.ip_sources, [IpSource::Host, IpSource::NetInfo]);
    }

    #[test]
    fn bad_values_are_refused_naming_the_key() {
        let bad = |flags: DnsFlags, file: DnsFileKeys| {
            resolve(flags, file, "127.0.0.1:5050").expect_err("refused")
        };
        let err = bad(
            DnsFlags {
                dns: Some("nope".into()),
                ..Default::default()
            },
            DnsFileKeys::default(),
        );
        assert!(err.starts_with("dns: 'nope'"), "{err}");
        let err = bad(
            DnsFlags {
                dns_domain: Some("a_b".into()),
                ..Default::default()
            },
            DnsFileKeys::default(),
        );
        assert!(err.starts_with("dns_domain: 'a_b'"), "{err}");
        let err = bad(
            DnsFlags {
                dns_resolvers: Some("dns.google".into()),
                ..Default::default()
            },
            DnsFileKeys::default(),
        );
        assert!(
            err.starts_with("dns_resolvers:") && err.contains("dns.google"),
            "{err}"
        );
        let file = DnsFileKeys {
            dns_ip_sources: Some("mesos".into()),
            ..Default::default()
        };
        let err = bad(DnsFlags::default(), file);
        assert!(
            err.starts_with("dns_ip_sources:") && err.contains("mesos"),
            "{err}"
        );
    }
}
