//! The endpoint zone in memory: built whole from the store's records, swapped in atomically,
//! and looked up without IO. Pure: no sockets here.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hickory_proto::rr::rdata::{A, AAAA, NS, SOA};
use hickory_proto::rr::{LowerName, Name, RData, Record, RecordType};
use vpcep_store::DnsRecords;

/// TTL of endpoint records (seconds): short, since an endpoint's name disappears when the
/// endpoint is deleted or rejected.
pub const RECORD_TTL: u32 = 5;
/// TTL of the SOA and NS records, and the negative-caching TTL (SOA minimum).
pub const ZONE_TTL: u32 = 60;
/// Negative answers are cached this long (SOA `minimum`).
pub const NEGATIVE_TTL: u32 = 5;

/// The zone the names of region `region` live in: `vpcep.<region>.internal.`.
pub fn zone_name(region: &str) -> String {
    format!("vpcep.{region}.internal.")
}

/// One name's address records.
#[derive(Debug, Default, Clone)]
pub struct Addresses {
    /// A records.
    pub a: Vec<Record>,
    /// AAAA records.
    pub aaaa: Vec<Record>,
}

/// The names one resolver sees.
#[derive(Debug, Default, Clone)]
pub struct View {
    names: HashMap<LowerName, Addresses>,
}

impl View {
    /// How many names this view holds.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether this view holds no name.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    fn add(&mut self, name: &Name, v4: Option<Ipv4Addr>, v6: Option<Ipv6Addr>) {
        let entry = self.names.entry(LowerName::new(name)).or_default();
        if let Some(ip) = v4 {
            entry.a.push(Record::from_rdata(
                name.clone(),
                RECORD_TTL,
                RData::A(A(ip)),
            ));
        }
        if let Some(ip) = v6 {
            entry.aaaa.push(Record::from_rdata(
                name.clone(),
                RECORD_TTL,
                RData::AAAA(AAAA(ip)),
            ));
        }
    }
}

/// Which resolver is asking: the operator's (every name) or the one inside a VPC's network
/// namespace (split horizon: only the endpoints of VPCs in that namespace).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scope {
    /// `--dns-listen`: every endpoint's names.
    All,
    /// The resolver in this network namespace.
    Netns(String),
}

/// The zone: its apex records and the names each scope sees.
#[derive(Debug, Clone)]
pub struct Zone {
    origin: LowerName,
    ns_name: Name,
    ns_lower: LowerName,
    soa: Record,
    ns: Record,
    all: View,
    by_netns: HashMap<String, View>,
    empty: View,
}

/// What the zone says about a question.
#[derive(Debug)]
pub enum Lookup<'a> {
    /// The name is not in this zone.
    OutOfZone,
    /// NOERROR with these answers (authoritative).
    Answer(Vec<&'a Record>),
    /// The name exists without records of the asked type (NOERROR, SOA in authority).
    NoData,
    /// The name does not exist (NXDOMAIN, SOA in authority).
    NxDomain,
    /// The name server's own name (`ns.<zone>`): answered with the server's address.
    NameServer,
}

impl Zone {
    /// Builds the zone `origin` from the store's records. Names outside the zone, or that do
    /// not parse as domain names, are left out (they are never served); `serial` is the SOA's.
    pub fn build(origin: &str, records: &DnsRecords, serial: u32) -> Result<Zone, String> {
        let origin_name = Name::from_ascii(origin)
            .map_err(|e| format!("zone {origin:?}: {e}"))?
            .to_lowercase();
        let mut origin_name = origin_name;
        origin_name.set_fqdn(true);
        let ns_name = Name::from_ascii("ns")
            .and_then(|n| n.append_domain(&origin_name))
            .map_err(|e| format!("zone {origin:?}: {e}"))?;
        let hostmaster = Name::from_ascii("hostmaster")
            .and_then(|n| n.append_domain(&origin_name))
            .map_err(|e| format!("zone {origin:?}: {e}"))?;
        let soa = Record::from_rdata(
            origin_name.clone(),
            ZONE_TTL,
            RData::SOA(SOA::new(
                ns_name.clone(),
                hostmaster,
                serial,
                3600,
                600,
                86400,
                NEGATIVE_TTL,
            )),
        );
        let ns = Record::from_rdata(
            origin_name.clone(),
            ZONE_TTL,
            RData::NS(NS(ns_name.clone())),
        );
        let origin = LowerName::new(&origin_name);
        let mut all = View::default();
        let mut by_netns: HashMap<String, View> = records
            .namespaces
            .iter()
            .map(|n| (n.clone(), View::default()))
            .collect();
        for e in &records.entries {
            let v4 = e.ip.parse::<Ipv4Addr>().ok();
            let v6 = e.ipv6.as_deref().and_then(|s| s.parse::<Ipv6Addr>().ok());
            if v4.is_none() && v6.is_none() {
                continue;
            }
            for raw in &e.names {
                let Ok(mut name) = Name::from_ascii(raw) else {
                    continue;
                };
                name.set_fqdn(true);
                let name = name.to_lowercase();
                // Only names strictly below the apex, one label deep: nothing a stored name
                // holds can shadow the apex, the name server or make a name deeper in the
                // zone exist.
                if name.num_labels() != origin_name.num_labels() + 1
                    || !origin_name.zone_of(&name)
                    || name == ns_name
                {
                    continue;
                }
                all.add(&name, v4, v6);
                if let Some(ns) = &e.netns {
                    by_netns.entry(ns.clone()).or_default().add(&name, v4, v6);
                }
            }
        }
        Ok(Zone {
            origin,
            ns_lower: LowerName::new(&ns_name),
            ns_name,
            soa,
            ns,
            all,
            by_netns,
            empty: View::default(),
        })
    }

    /// The zone's apex.
    pub fn origin(&self) -> &LowerName {
        &self.origin
    }

    /// The SOA record (for the authority section of negative answers).
    pub fn soa(&self) -> &Record {
        &self.soa
    }

    /// The name server's name (`ns.<zone>`).
    pub fn ns_name(&self) -> &Name {
        &self.ns_name
    }

    /// The names `scope` sees (an unknown namespace sees none).
    pub fn view(&self, scope: &Scope) -> &View {
        match scope {
            Scope::All => &self.all,
            Scope::Netns(ns) => self.by_netns.get(ns).unwrap_or(&self.empty),
        }
    }

    /// The namespaces with a view.
    pub fn namespaces(&self) -> impl Iterator<Item = &String> {
        self.by_netns.keys()
    }

    /// Answers `name`/`qtype` as `scope` sees the zone.
    pub fn lookup(&self, scope: &Scope, name: &LowerName, qtype: RecordType) -> Lookup<'_> {
        if !self.origin.zone_of(name) {
            return Lookup::OutOfZone;
        }
        if *name == self.origin {
            return match qtype {
                RecordType::SOA => Lookup::Answer(vec![&self.soa]),
                RecordType::NS => Lookup::Answer(vec![&self.ns]),
                RecordType::ANY => Lookup::Answer(vec![&self.soa, &self.ns]),
                _ => Lookup::NoData,
            };
        }
        if *name == self.ns_lower {
            return Lookup::NameServer;
        }
        match self.view(scope).names.get(name) {
            None => Lookup::NxDomain,
            Some(addrs) => {
                let records: Vec<&Record> = match qtype {
                    RecordType::A => addrs.a.iter().collect(),
                    RecordType::AAAA => addrs.aaaa.iter().collect(),
                    RecordType::ANY => addrs.a.iter().chain(addrs.aaaa.iter()).collect(),
                    _ => Vec::new(),
                };
                if records.is_empty() {
                    Lookup::NoData
                } else {
                    Lookup::Answer(records)
                }
            }
        }
    }
}

/// The address record of the name server itself, when it listens on a specific address.
pub fn ns_address(name: &Name, addr: IpAddr, qtype: RecordType) -> Option<Record> {
    match (addr, qtype) {
        (IpAddr::V4(ip), RecordType::A | RecordType::ANY) if !ip.is_unspecified() => {
            Some(Record::from_rdata(name.clone(), ZONE_TTL, RData::A(A(ip))))
        }
        (IpAddr::V6(ip), RecordType::AAAA | RecordType::ANY) if !ip.is_unspecified() => Some(
            Record::from_rdata(name.clone(), ZONE_TTL, RData::AAAA(AAAA(ip))),
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vpcep_store::DnsEntry;

    fn entry(id: &str, netns: Option<&str>, ip: &str, names: &[&str]) -> DnsEntry {
        DnsEntry {
            endpoint_id: id.into(),
            vpc_id: format!("vpc-{id}"),
            netns: netns.map(String::from),
            ip: ip.into(),
            ipv6: None,
            names: names.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn lower(s: &str) -> LowerName {
        LowerName::new(&Name::from_ascii(s).unwrap())
    }

    fn zone() -> Zone {
        let records = DnsRecords {
            entries: vec![
                entry("a", Some("ns-a"), "10.0.0.5", &["a1.vpcep.r.internal"]),
                entry("b", Some("ns-b"), "10.0.0.6", &["B1.VPCEP.R.INTERNAL."]),
                entry("c", None, "127.16.0.7", &["c1.vpcep.r.internal"]),
                // Outside the zone, deeper than one label, the apex and the name server:
                // never served.
                entry(
                    "d",
                    None,
                    "127.16.0.8",
                    &[
                        "evil.example.com",
                        "x.y.vpcep.r.internal",
                        "vpcep.r.internal",
                        "ns.vpcep.r.internal",
                    ],
                ),
            ],
            namespaces: vec!["ns-a".into(), "ns-b".into(), "ns-empty".into()],
        };
        Zone::build(&zone_name("r"), &records, 7).unwrap()
    }

    #[test]
    fn answers_each_endpoint_name_case_insensitively() {
        let z = zone();
        let Lookup::Answer(r) =
            z.lookup(&Scope::All, &lower("A1.vpcep.r.internal."), RecordType::A)
        else {
            panic!("no answer")
        };
        assert_eq!(r[0].data(), &RData::A(A("10.0.0.5".parse().unwrap())));
        assert!(matches!(
            z.lookup(&Scope::All, &lower("b1.vpcep.r.internal."), RecordType::A),
            Lookup::Answer(_)
        ));
        assert!(matches!(
            z.lookup(
                &Scope::All,
                &lower("a1.vpcep.r.internal."),
                RecordType::AAAA
            ),
            Lookup::NoData
        ));
        assert!(matches!(
            z.lookup(&Scope::All, &lower("zz.vpcep.r.internal."), RecordType::A),
            Lookup::NxDomain
        ));
    }

    #[test]
    fn split_horizon_views_hold_only_their_namespace() {
        let z = zone();
        let a = Scope::Netns("ns-a".into());
        assert!(matches!(
            z.lookup(&a, &lower("a1.vpcep.r.internal."), RecordType::A),
            Lookup::Answer(_)
        ));
        for other in ["b1", "c1"] {
            assert!(matches!(
                z.lookup(
                    &a,
                    &lower(&format!("{other}.vpcep.r.internal.")),
                    RecordType::A
                ),
                Lookup::NxDomain
            ));
        }
        let empty = Scope::Netns("ns-empty".into());
        assert!(z.view(&empty).is_empty());
        assert!(z.view(&Scope::Netns("unknown".into())).is_empty());
        assert_eq!(z.view(&Scope::All).len(), 3);
    }

    #[test]
    fn stored_names_cannot_leave_the_zone_or_shadow_its_apex() {
        let z = zone();
        assert!(matches!(
            z.lookup(&Scope::All, &lower("evil.example.com."), RecordType::A),
            Lookup::OutOfZone
        ));
        assert!(matches!(
            z.lookup(&Scope::All, &lower("x.y.vpcep.r.internal."), RecordType::A),
            Lookup::NxDomain
        ));
        assert!(matches!(
            z.lookup(&Scope::All, &lower("vpcep.r.internal."), RecordType::A),
            Lookup::NoData
        ));
        assert!(matches!(
            z.lookup(&Scope::All, &lower("ns.vpcep.r.internal."), RecordType::A),
            Lookup::NameServer
        ));
        let Lookup::Answer(soa) =
            z.lookup(&Scope::All, &lower("vpcep.r.internal."), RecordType::SOA)
        else {
            panic!("no SOA")
        };
        assert_eq!(soa[0].record_type(), RecordType::SOA);
    }
}
