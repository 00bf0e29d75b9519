//! The records of the domain, kept per owner so that a change rewrites only
//! what it touches: each task owns its names, and the masters, agents and
//! leader together own the rest ([`Owner::Cluster`]). Replacing an owner's
//! records drops the ones it had and adds the new ones; nothing else moves.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use hickory_proto::rr::rdata::{NS, SOA};
use hickory_proto::rr::{Name, RData, Record, RecordType};

/// The SOA's refresh, retry and expire, Mesos-DNS's defaults (`/v1/config`
/// shows them too).
pub const SOA_REFRESH: i32 = 60;
pub const SOA_RETRY: i32 = 600;
pub const SOA_EXPIRE: i32 = 86_400;

/// Who put a record in the zone.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Owner {
    Task(Arc<str>),
    Cluster,
}

/// A record to be, before it has a DNS name: `name` is lower-case and
/// fully qualified (`web.marathon.mesos.`).
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub name: String,
    pub data: RData,
}

#[derive(Debug)]
struct Stored {
    owner: Owner,
    record: Record,
}

/// The domain's records, its SOA and NS, and what each owner holds.
#[derive(Debug)]
pub struct Zone {
    /// `mesos.`: lower case, with the trailing dot.
    domain: String,
    ttl: u32,
    names: HashMap<String, Vec<Stored>>,
    /// Each name's distinct records, as queries read them: kept ready on
    /// every change so that a query only filters by type and clones.
    ready: HashMap<String, Vec<Record>>,
    owned: HashMap<Owner, Vec<String>>,
    serial: u32,
    soa: Record,
    ns: Record,
}

impl Zone {
    pub fn new(domain: &str, ttl: u32) -> Self {
        let domain = format!("{}.", domain.trim_end_matches('.').to_ascii_lowercase());
        let mut zone = Self {
            soa: Record::from_rdata(Name::root(), ttl, RData::NS(NS(Name::root()))),
            ns: Record::from_rdata(Name::root(), ttl, RData::NS(NS(Name::root()))),
            domain,
            ttl,
            names: HashMap::new(),
            ready: HashMap::new(),
            owned: HashMap::new(),
            serial: 0,
        };
        zone.bump_serial();
        zone
    }

    pub fn domain(&self) -> &str {
        &self.domain
    }

    pub fn ttl(&self) -> u32 {
        self.ttl
    }

    pub fn serial(&self) -> u32 {
        self.serial
    }

    /// The name server of the zone, as Mesos-DNS names it (`ns1.mesos.`).
    pub fn mname(&self) -> String {
        format!("ns1.{}", self.domain)
    }

    /// The zone's admin mailbox, as Mesos-DNS names it (`root.ns1.mesos.`).
    pub fn rname(&self) -> String {
        format!("root.{}", self.mname())
    }

    /// Whether `name` (lower case, fully qualified) is in the domain.
    pub fn contains(&self, name: &str) -> bool {
        name == self.domain
            || name
                .strip_suffix(self.domain.as_str())
                .is_some_and(|head| head.ends_with('.'))
    }

    /// Puts `entries` in place of what `owner` held. Entries outside the
    /// domain or with unusable names are left out.
    pub fn replace(&mut self, owner: &Owner, entries: Vec<Entry>) {
        self.remove(owner);
        if entries.is_empty() {
            self.bump_serial();
            return;
        }
        let mut names = Vec::with_capacity(entries.len());
        for Entry { name, data } in entries {
            if !self.contains(&name) {
                continue;
            }
            let Ok(dns_name) = Name::from_ascii(&name) else {
                continue;
            };
            let record = Record::from_rdata(dns_name, self.ttl, data);
            let stored = Stored {
                owner: owner.clone(),
                record,
            };
            let list = self.names.entry(name.clone()).or_default();
            if !list
                .iter()
                .any(|s| s.owner == *owner && s.record == stored.record)
            {
                list.push(stored);
            }
            names.push(name);
        }
        names.sort_unstable();
        names.dedup();
        for name in &names {
            self.refresh(name);
        }
        self.owned.insert(owner.clone(), names);
        self.bump_serial();
    }

    /// Drops every record of `owner`.
    pub fn remove(&mut self, owner: &Owner) {
        let Some(names) = self.owned.remove(owner) else {
            return;
        };
        for name in names {
            if let Some(list) = self.names.get_mut(&name) {
                list.retain(|s| &s.owner != owner);
                if list.is_empty() {
                    self.names.remove(&name);
                }
            }
            self.refresh(&name);
        }
        self.bump_serial();
    }

    /// The owners that hold records now.
    pub fn owners(&self) -> impl Iterator<Item = &Owner> {
        self.owned.keys()
    }

    /// The records of `name` (lower case, fully qualified) of type `rtype`,
    /// each once (two tasks on one agent make the same A record).
    pub fn lookup(&self, name: &str, rtype: RecordType) -> Vec<Record> {
        self.ready
            .get(name)
            .into_iter()
            .flatten()
            .filter(|r| r.record_type() == rtype)
            .cloned()
            .collect()
    }

    /// Recomputes `name`'s distinct records (all records of a name share
    /// the name: their data tells them apart).
    fn refresh(&mut self, name: &str) {
        let Some(list) = self.names.get(name) else {
            self.ready.remove(name);
            return;
        };
        let mut seen = HashSet::new();
        let distinct = list
            .iter()
            .filter(|s| seen.insert(&s.record.data))
            .map(|s| s.record.clone())
            .collect();
        self.ready.insert(name.to_string(), distinct);
    }

    /// Whether `name` has any record.
    pub fn exists(&self, name: &str) -> bool {
        self.names.contains_key(name) || name == self.domain
    }

    /// Every name with its records, for the `/v1` enumeration.
    pub fn all(&self) -> impl Iterator<Item = (&str, impl Iterator<Item = &Record>)> {
        self.names
            .iter()
            .map(|(name, list)| (name.as_str(), list.iter().map(|s| &s.record)))
    }

    /// The records each task owns, by task id.
    pub fn by_task(&self) -> impl Iterator<Item = (&str, Vec<&Record>)> {
        self.owned.iter().filter_map(|(owner, names)| {
            let Owner::Task(id) = owner else { return None };
            let records = names
                .iter()
                .filter_map(|n| self.names.get(n))
                .flatten()
                .filter(|s| &s.owner == owner)
                .map(|s| &s.record)
                .collect();
            Some((&**id, records))
        })
    }

    pub fn soa(&self) -> &Record {
        &self.soa
    }

    pub fn ns(&self) -> &Record {
        &self.ns
    }

    /// A new serial on every change (the unix time, or one more than the
    /// last when changes come faster than seconds), as secondaries expect.
    fn bump_serial(&mut self) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as u32)
            .unwrap_or(0);
        self.serial = now.max(self.serial.wrapping_add(1));
        let origin = Name::from_ascii(&self.domain).unwrap_or_else(|_| Name::root());
        let mname = Name::from_ascii(self.mname()).unwrap_or_else(|_| Name::root());
        let rname = Name::from_ascii(self.rname()).unwrap_or_else(|_| Name::root());
        // The minimum is the records' TTL (Mesos-DNS ignores its own
        // SOAMinttl too).
        let soa = SOA::new(
            mname.clone(),
            rname,
            self.serial,
            SOA_REFRESH,
            SOA_RETRY,
            SOA_EXPIRE,
            self.ttl,
        );
        self.soa = Record::from_rdata(origin.clone(), self.ttl, RData::SOA(soa));
        self.ns = Record::from_rdata(origin, self.ttl, RData::NS(NS(mname)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::rdata::A;

    fn a(name: &str, ip: [u8; 4]) -> Entry {
        Entry {
            name: name.into(),
            data: RData::A(A(ip.into())),
        }
    }

    #[test]
    fn replacing_an_owner_touches_only_its_records() {
        let mut zone = Zone::new("mesos", 60);
        let t1 = Owner::Task("t1".into());
        let t2 = Owner::Task("t2".into());
        zone.replace(&t1, vec![a("web.marathon.mesos.", [10, 0, 0, 1])]);
        zone.replace(&t2, vec![a("web.marathon.mesos.", [10, 0, 0, 2])]);
        assert_eq!(zone.lookup("web.marathon.mesos.", RecordType::A).len(), 2);
        // Two tasks on one host make one record, which stays while either does.
        let t3 = Owner::Task("t3".into());
        zone.replace(&t3, vec![a("web.marathon.mesos.", [10, 0, 0, 2])]);
        assert_eq!(zone.lookup("web.marathon.mesos.", RecordType::A).len(), 2);
        zone.remove(&t3);
        let serial = zone.serial();
        zone.remove(&t1);
        assert!(zone.serial() > serial);
        let left = zone.lookup("web.marathon.mesos.", RecordType::A);
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].data, RData::A(A([10, 0, 0, 2].into())));
        zone.remove(&t2);
        assert!(!zone.exists("web.marathon.mesos."));
        assert!(zone.exists("mesos."));
    }

    #[test]
    fn names_outside_the_domain_are_left_out() {
        let mut zone = Zone::new("Mesos.", 60);
        assert_eq!(zone.domain(), "mesos.");
        zone.replace(
            &Owner::Cluster,
            vec![
                a("x.example.com.", [1, 2, 3, 4]),
                a("xmesos.", [1, 2, 3, 4]),
            ],
        );
        assert!(!zone.exists("x.example.com.") && !zone.exists("xmesos."));
        assert!(zone.contains("a.b.mesos.") && !zone.contains("amesos."));
    }
}
