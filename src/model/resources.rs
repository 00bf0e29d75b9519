//! Resources and attributes in Mesos's text syntax (`--resources
//! "cpus:4;mem:2048;disk:10000;ports:[31000-32000]"`, `--attributes
//! "rack:r1;zone:a"`) and in the JSON shape of `/master/state`.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortRange {
    pub begin: u64,
    pub end: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Resources {
    pub cpus: f64,
    pub mem: f64,
    pub disk: f64,
    #[serde(default)]
    pub ports: Vec<PortRange>,
}

/// The agent's default port range, as Mesos's.
pub const DEFAULT_PORTS: PortRange = PortRange {
    begin: 31000,
    end: 32000,
};

impl Resources {
    /// Applies a Mesos resource string over `self`: named resources replace
    /// the detected ones, the rest stay.
    pub fn override_with(mut self, text: &str) -> Result<Self, String> {
        for item in text.split(';').map(str::trim).filter(|i| !i.is_empty()) {
            let (name, value) = item
                .split_once(':')
                .ok_or_else(|| format!("resources: '{item}' is not NAME:VALUE"))?;
            let name = name.trim();
            // `cpus(*)` names the role; roles are not modelled yet.
            let name = name.split_once('(').map_or(name, |(n, _)| n);
            let value = value.trim();
            let scalar = || -> Result<f64, String> {
                value
                    .parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite() && *v >= 0.0)
                    .ok_or_else(|| {
                        format!("resources: {name}: '{value}' is not a non-negative number")
                    })
            };
            match name {
                "cpus" => self.cpus = scalar()?,
                "mem" => self.mem = scalar()?,
                "disk" => self.disk = scalar()?,
                "ports" => self.ports = parse_ranges(value)?,
                other => {
                    return Err(format!(
                        "resources: unknown resource '{other}' (known: cpus, mem, disk, ports)"
                    ));
                }
            }
        }
        Ok(self)
    }

    /// `/master/state`'s shape: scalars as numbers, ranges as `"[a-b, c-d]"`.
    pub fn to_mesos_json(&self) -> Value {
        json!({
            "cpus": self.cpus,
            "gpus": 0.0,
            "mem": self.mem,
            "disk": self.disk,
            "ports": format_ranges(&self.ports),
        })
    }
}

impl fmt::Display for Resources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cpus:{};mem:{};disk:{};ports:{}",
            self.cpus,
            self.mem,
            self.disk,
            format_ranges(&self.ports)
        )
    }
}

fn parse_ranges(text: &str) -> Result<Vec<PortRange>, String> {
    let inner = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .ok_or_else(|| format!("resources: ports: '{text}' is not [BEGIN-END, ...]"))?;
    let mut ranges = Vec::new();
    for part in inner.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (b, e) = part.split_once('-').unwrap_or((part, part));
        let parse = |s: &str| {
            s.trim()
                .parse::<u64>()
                .ok()
                .filter(|p| *p <= 65535)
                .ok_or_else(|| format!("resources: ports: '{part}' is not a port range"))
        };
        let (begin, end) = (parse(b)?, parse(e)?);
        if begin > end {
            return Err(format!("resources: ports: '{part}' ends before it begins"));
        }
        ranges.push(PortRange { begin, end });
    }
    Ok(ranges)
}

pub fn format_ranges(ranges: &[PortRange]) -> String {
    let parts: Vec<String> = ranges
        .iter()
        .map(|r| format!("{}-{}", r.begin, r.end))
        .collect();
    format!("[{}]", parts.join(", "))
}

/// Part `part` (0-based) of `parts` about equal, disjoint shares of `ranges`'
/// ports, in order: what each of several agents on one host may hand out, so
/// that no two tasks of the host are given the same port.
pub fn share_of_ranges(ranges: &[PortRange], parts: usize, part: usize) -> Vec<PortRange> {
    let total: u64 = ranges.iter().map(|r| r.end + 1 - r.begin).sum();
    let parts = parts.max(1) as u64;
    let (from, to) = (
        total * part as u64 / parts,
        total * (part as u64 + 1) / parts,
    );
    // Walk the ranges, keeping ports whose index falls in [from, to).
    let mut out = Vec::new();
    let mut seen = 0;
    for r in ranges {
        let len = r.end + 1 - r.begin;
        let (lo, hi) = (from.max(seen), to.min(seen + len));
        if lo < hi {
            out.push(PortRange {
                begin: r.begin + (lo - seen),
                end: r.begin + (hi - seen) - 1,
            });
        }
        seen += len;
    }
    out
}

/// `rack:r1;zone:a` into a map; a later duplicate wins, as in Mesos.
pub fn parse_attributes(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut attrs = BTreeMap::new();
    for item in text.split(';').map(str::trim).filter(|i| !i.is_empty()) {
        let (k, v) = item
            .split_once(':')
            .ok_or_else(|| format!("attributes: '{item}' is not NAME:VALUE"))?;
        let (k, v) = (k.trim(), v.trim());
        if k.is_empty() || v.is_empty() {
            return Err(format!("attributes: '{item}' has an empty name or value"));
        }
        attrs.insert(k.to_string(), v.to_string());
    }
    Ok(attrs)
}

#[cfg(test)]
mod tests {
    #[test]
    fn shares_of_ranges_are_disjoint_and_cover_every_port() {
        let r = |begin, end| super::PortRange { begin, end };
        let ranges = [r(31000, 32000), r(40000, 40009)];
        let shares: Vec<_> = (0..3)
            .map(|i| super::share_of_ranges(&ranges, 3, i))
            .collect();
        assert_eq!(shares[0], [r(31000, 31336)]);
        assert_eq!(shares[2].last(), Some(&r(40000, 40009)));
        let mut ports: Vec<u64> = shares
            .iter()
            .flatten()
            .flat_map(|r| r.begin..=r.end)
            .collect();
        let n = ports.len();
        ports.dedup();
        assert_eq!((n, ports.len()), (1011, 1011));
        assert_eq!(super::share_of_ranges(&ranges, 1, 0), ranges);
    }

    use super::*;

    #[test]
    fn mesos_syntax_overrides_what_was_detected() {
        let detected = Resources {
            cpus: 2.0,
            mem: 1000.0,
            disk: 5000.0,
            ports: vec![DEFAULT_PORTS],
        };
        let r = detected
            .override_with("cpus:4; mem:2048;ports:[31000-31005, 32000-32000]")
            .unwrap();
        assert_eq!(r.cpus, 4.0);
        assert_eq!(r.mem, 2048.0);
        assert_eq!(r.disk, 5000.0);
        assert_eq!(r.to_mesos_json()["ports"], "[31000-31005, 32000-32000]");
        assert_eq!(
            r.to_string(),
            "cpus:4;mem:2048;disk:5000;ports:[31000-31005, 32000-32000]"
        );
    }

    #[test]
    fn bad_resources_name_the_item() {
        let r = Resources::default();
        assert!(
            r.clone()
                .override_with("cpus=4")
                .unwrap_err()
                .contains("'cpus=4'")
        );
        assert!(
            r.clone()
                .override_with("mem:lots")
                .unwrap_err()
                .contains("mem")
        );
        assert!(
            r.clone()
                .override_with("gpus:1")
                .unwrap_err()
                .contains("unknown resource 'gpus'")
        );
        assert!(r.clone().override_with("ports:31000-32000").is_err());
        assert!(
            r.override_with("ports:[32000-31000]")
                .unwrap_err()
                .contains("ends before")
        );
    }

    #[test]
    fn attributes_parse() {
        let a = parse_attributes("rack:r1; zone:a").unwrap();
        assert_eq!(a.get("zone").map(String::as_str), Some("a"));
        assert!(parse_attributes("rack").is_err());
    }
}
