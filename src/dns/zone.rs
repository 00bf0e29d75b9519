//! The records of the domain, kept per owner so that a change rewrites only
//! what it touches: each task owns its names, and the masters, agents and
//! leader together own the rest ([`Owner::Cluster`]). Replacing an owner's
//! records drops the ones it had and adds the new ones; nothing else moves.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
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

/// One name's distinct records, each with how many owners hold it: two
/// tasks of an app on one agent make the same A record, which stays while
/// either runs. Adding or dropping a record costs the same whether the name
/// has one record or ten thousand (an app's name has one per instance).
#[derive(Debug, Default)]
struct NameRecords {
    /// As queries read them, in no particular order (answers are shuffled).
    records: Vec<Record>,
    /// Each record's place in `records` and its number of owners.
    held: HashMap<RData, (usize, usize)>,
}

impl NameRecords {
    fn add(&mut self, record: &Record) {
        if let Some((_, owners)) = self.held.get_mut(&record.data) {
            *owners += 1;
            return;
        }
        self.held
            .insert(record.data.clone(), (self.records.len(), 1));
        self.records.push(record.clone());
    }

    fn drop_one(&mut self, data: &RData) {
        let Some((at, owners)) = self.held.get_mut(data) else {
            return;
        };
        *owners -= 1;
        if *owners > 0 {
            return;
        }
        let at = *at;
        self.held.remove(data);
        self.records.swap_remove(at);
        if let Some(moved) = self.records.get(at)
            && let Some((place, _)) = self.held.get_mut(&moved.data)
        {
            *place = at;
        }
    }
}

/// The domain's records, its SOA and NS, and what each owner holds.
#[derive(Debug)]
pub struct Zone {
    /// `mesos.`: lower case, with the trailing dot.
    domain: String,
    ttl: u32,
    names: HashMap<String, NameRecords>,
    /// Each owner's records (each once) under their lower-case names.
    owned: HashMap<Owner, Vec<(String, Record)>>,
    serial: u32,
    /// One more on every change, readable without the zone's lock: UDP
    /// threads drop the answers they keep when it moves (udp.rs).
    generation: Arc<AtomicU64>,
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
            owned: HashMap::new(),
            serial: 0,
            generation: Arc::new(AtomicU64::new(0)),
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

    /// The change counter (see the field).
    pub fn generation(&self) -> Arc<AtomicU64> {
        self.generation.clone()
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
        let mut held: Vec<(String, Record)> = Vec::with_capacity(entries.len());
        for Entry { name, data } in entries {
            if !self.contains(&name) || held.iter().any(|(n, r)| *n == name && r.data == data) {
                continue;
            }
            let Ok(dns_name) = Name::from_ascii(&name) else {
                continue;
            };
            let record = Record::from_rdata(dns_name, self.ttl, data);
            self.names.entry(name.clone()).or_default().add(&record);
            held.push((name, record));
        }
        if !held.is_empty() {
            self.owned.insert(owner.clone(), held);
        }
        self.bump_serial();
    }

    /// Drops every record of `owner`.
    pub fn remove(&mut self, owner: &Owner) {
        let Some(held) = self.owned.remove(owner) else {
            return;
        };
        for (name, record) in held {
            if let Some(set) = self.names.get_mut(&name) {
                set.drop_one(&record.data);
                if set.records.is_empty() {
                    self.names.remove(&name);
                }
            }
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
        self.names
            .get(name)
            .into_iter()
            .flat_map(|set| &set.records)
            .filter(|r| r.record_type() == rtype)
            .cloned()
            .collect()
    }

    /// Whether `name` has any record.
    pub fn exists(&self, name: &str) -> bool {
        self.names.contains_key(name) || name == self.domain
    }

    /// Every name with its records, for the `/v1` enumeration.
    pub fn all(&self) -> impl Iterator<Item = (&str, impl Iterator<Item = &Record>)> {
        self.names
            .iter()
            .map(|(name, set)| (name.as_str(), set.records.iter()))
    }

    /// The records each task owns, by task id.
    pub fn by_task(&self) -> impl Iterator<Item = (&str, Vec<&Record>)> {
        self.owned.iter().filter_map(|(owner, held)| {
            let Owner::Task(id) = owner else { return None };
            Some((&**id, held.iter().map(|(_, record)| record).collect()))
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
        self.generation.fetch_add(1, Ordering::Release);
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

    proptest::proptest! {
        /// Whatever the order of replacements and removals, a name answers
        /// with the distinct records its current owners hold: what a fresh
        /// zone built from the owners' last entries would answer.
        #[test]
        fn lookups_match_the_owners_current_records(
            ops in proptest::collection::vec((0u8..6, proptest::option::of(proptest::collection::vec(0u8..4, 0..4))), 0..60)
        ) {
            let mut zone = Zone::new("mesos", 60);
            let mut current: HashMap<u8, Vec<u8>> = HashMap::new();
            for (task, hosts) in ops {
                let owner = Owner::Task(task.to_string().into());
                match hosts {
                    Some(hosts) => {
                        let entries = hosts.iter().map(|h| a("web.marathon.mesos.", [10, 0, 0, *h])).collect();
                        zone.replace(&owner, entries);
                        current.insert(task, hosts);
                    }
                    None => {
                        zone.remove(&owner);
                        current.remove(&task);
                    }
                }
                let mut want: Vec<u8> = current.values().flatten().copied().collect();
                want.sort_unstable();
                want.dedup();
                let mut got: Vec<u8> = zone
                    .lookup("web.marathon.mesos.", RecordType::A)
                    .iter()
                    .filter_map(|r| match &r.data {
                        RData::A(ip) => Some(ip.0.octets()[3]),
                        _ => None,
                    })
                    .collect();
                got.sort_unstable();
                proptest::prop_assert_eq!(&got, &want);
                proptest::prop_assert_eq!(zone.exists("web.marathon.mesos."), !want.is_empty());
            }
        }
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
