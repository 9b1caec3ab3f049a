//! The contract between the control plane and data-plane agents: the desired state an agent
//! realizes (a versioned snapshot of endpoints to serve) and the report it sends back.
//!
//! Transport (served by the control plane, signed like every API call, operator accounts only):
//! - `GET /agent/v1/snapshot?since=<version>&timeout=<seconds>`: answers the current
//!   [`Snapshot`] at once when its version differs from `since` (or `since` is absent), else
//!   waits up to `timeout` seconds (default and most: 25, so that the answer comes before the
//!   API's 30-second request timeout) for a change and then answers the current snapshot
//!   (possibly still the same version).
//! - `POST /agent/v1/report` with an [`AgentReport`]: what the agent realized; answers 204.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Everything an agent must serve. Versions only grow; an agent applies a snapshot as a whole.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Snapshot {
    /// Monotonic version of the desired state.
    pub version: u64,
    /// Endpoints to serve: every accepted interface endpoint whose service can carry traffic.
    pub endpoints: Vec<EndpointSpec>,
    /// How often the control plane wants the agent's report, at the least (milliseconds): it
    /// counts an agent alive only while it reports; `None`: the agent's own heartbeat.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report_every_ms: Option<u64>,
}

/// One endpoint to realize: listen on `ip` and each `client_port`, forward to `backend_ip` and
/// the matching `server_port`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EndpointSpec {
    /// Endpoint id (UUID).
    pub endpoint_id: String,
    /// The endpoint's marker id (packet id), carried in PROXY protocol TLVs.
    pub marker_id: u32,
    /// The endpoint service's id.
    pub service_id: String,
    /// Address to listen on (the endpoint's IP in the consumer's subnet).
    pub ip: String,
    /// Network namespace to listen in (`ip netns` name); `None`: the agent's own.
    #[serde(default)]
    #[schema(required = true)]
    pub listen_netns: Option<String>,
    /// Backend address (the fixed IP of the service's `port_id`, or the service's `ip`).
    pub backend_ip: String,
    /// Network namespace to connect from; `None`: the agent's own.
    #[serde(default)]
    #[schema(required = true)]
    pub backend_netns: Option<String>,
    /// Port mappings of the service.
    pub ports: Vec<PortPair>,
    /// The service's `tcp_proxy`: `close`, `toa_open`, `proxy_open`, `open` or `proxy_vni`.
    pub tcp_proxy: String,
    /// 24-bit virtual network id of the consumer's VPC (sent with `proxy_vni`).
    pub vni: u32,
    /// Whether only `whitelist` sources may connect.
    pub whitelist_enabled: bool,
    /// Allowed client addresses or CIDRs (IPv4) when `whitelist_enabled`.
    pub whitelist: Vec<String>,
    /// Why the control plane does not let this endpoint be served (its address or its backend
    /// is outside what the operator granted, or held by another VPC): agents open no listener
    /// for it and report it failed with this reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
}

/// `client_port` → `server_port`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PortPair {
    /// Port the agent listens on.
    pub client_port: u16,
    /// Port on the backend.
    pub server_port: u16,
}

/// What an agent realized from one snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AgentReport {
    /// A stable name of the agent (host name by default).
    pub agent_id: String,
    /// The snapshot version these results are for.
    pub version: u64,
    /// One entry per endpoint of that snapshot.
    pub endpoints: Vec<EndpointResult>,
}

/// How one endpoint fared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EndpointResult {
    /// Endpoint id.
    pub endpoint_id: String,
    /// True when every listener of the endpoint is up.
    pub ok: bool,
    /// Why not (e.g. "cannot listen on 10.0.0.5:80: address not available"), or a warning about
    /// what the data plane cannot do for this endpoint (e.g. TOA), shown in the resource's
    /// `error` field.
    #[serde(default)]
    pub error: Option<String>,
}

/// The address space a data-plane address lives in: the host's own network stack, or a VPC's
/// network namespace (the VPC's `netns`). Two VPCs' addresses can only collide inside the
/// same space, so ownership of an address is decided per space ([`AddressSpace::key`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AddressSpace {
    /// The data-plane host's own addresses (VPCs without `netns`).
    Host,
    /// A named network namespace (`ip netns` name).
    Netns(String),
}

impl AddressSpace {
    /// The space of a VPC with this `netns`.
    pub fn of(netns: Option<&str>) -> Self {
        match netns {
            Some(ns) => AddressSpace::Netns(ns.to_string()),
            None => AddressSpace::Host,
        }
    }

    /// The stored key of the space: `host` or `netns:<name>`.
    pub fn key(&self) -> String {
        match self {
            AddressSpace::Host => "host".into(),
            AddressSpace::Netns(ns) => format!("netns:{ns}"),
        }
    }
}

/// The default of `--dataplane-cidrs`: a loopback range clear of `127.0.0.0/16` (where the host's
/// own services listen), so that a laptop can carry traffic with no configuration.
pub const DEFAULT_DATAPLANE_CIDRS: &str = "127.16.0.0/12";

/// What the data plane may listen on and connect to; the rule every agent and the control plane
/// apply to each endpoint address and backend address.
///
/// - Never: unspecified, multicast, broadcast and link-local addresses (`169.254.0.0/16`, the
///   metadata service's range; `fe80::/10`), in any space.
/// - In a network namespace: any other address but loopback (the namespace is the VPC's own).
/// - In the host's space: only addresses inside the operator's grant (`--dataplane-cidrs`), and
///   never the host's loopback `127.0.0.1`/`::1` or one of its own addresses (interfaces, the
///   API's listen address), even where the grant covers them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressPolicy {
    granted: Vec<ipnet::IpNet>,
    host: Vec<std::net::IpAddr>,
}

impl AddressPolicy {
    /// A policy granting `granted` in the host's space, `host` being the host's own addresses.
    pub fn new(granted: Vec<ipnet::IpNet>, host: Vec<std::net::IpAddr>) -> Self {
        let mut host: Vec<std::net::IpAddr> = host.into_iter().map(|a| a.to_canonical()).collect();
        host.sort();
        host.dedup();
        AddressPolicy {
            granted: granted.into_iter().map(|n| n.trunc()).collect(),
            host,
        }
    }

    /// Parses a `--dataplane-cidrs` value: CIDRs (or single addresses) separated by commas; an
    /// empty value grants nothing in the host's space.
    pub fn parse_cidrs(text: &str) -> Result<Vec<ipnet::IpNet>, String> {
        text.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<ipnet::IpNet>()
                    .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| format!("invalid CIDR {s:?} (expected e.g. 127.16.0.0/12)"))
            })
            .collect()
    }

    /// The ranges granted in the host's space.
    pub fn granted(&self) -> &[ipnet::IpNet] {
        &self.granted
    }

    /// The host's own addresses this policy refuses.
    pub fn host_addresses(&self) -> &[std::net::IpAddr] {
        &self.host
    }

    /// Whether the data plane may listen on or connect to `ip` in `space`; `Err` says why not.
    pub fn check(&self, space: &AddressSpace, ip: std::net::IpAddr) -> Result<(), String> {
        use std::net::IpAddr;
        let ip = ip.to_canonical();
        let link_local = match ip {
            IpAddr::V4(a) => a.is_link_local(),
            IpAddr::V6(a) => (a.segments()[0] & 0xffc0) == 0xfe80,
        };
        let broadcast = matches!(ip, IpAddr::V4(a) if a.is_broadcast());
        if ip.is_unspecified() || ip.is_multicast() || broadcast {
            return Err(format!("{ip} is not a unicast address"));
        }
        if link_local {
            return Err(format!(
                "{ip} is a link-local address (169.254.0.0/16, fe80::/10), which the data plane never uses"
            ));
        }
        match space {
            AddressSpace::Netns(_) if ip.is_loopback() => Err(format!(
                "{ip} is a loopback address, which the data plane never uses inside a VPC's namespace"
            )),
            AddressSpace::Netns(_) => Ok(()),
            AddressSpace::Host => {
                if ip == IpAddr::from([127, 0, 0, 1]) || ip == IpAddr::from(std::net::Ipv6Addr::LOCALHOST) {
                    return Err(format!("{ip} is the host's loopback address"));
                }
                if self.host.contains(&ip) {
                    return Err(format!("{ip} is an address of the data plane's host"));
                }
                if !self.granted.iter().any(|n| n.contains(&ip)) {
                    let granted: Vec<String> = self.granted.iter().map(|n| n.to_string()).collect();
                    return Err(format!(
                        "{ip} is outside the host address ranges the operator granted to the data plane (--dataplane-cidrs {})",
                        if granted.is_empty() { "is empty".to_string() } else { granted.join(",") }
                    ));
                }
                Ok(())
            }
        }
    }
}

impl Default for AddressPolicy {
    /// The default grant ([`DEFAULT_DATAPLANE_CIDRS`]) and no host address but loopback.
    fn default() -> Self {
        AddressPolicy::new(
            AddressPolicy::parse_cidrs(DEFAULT_DATAPLANE_CIDRS).expect("valid default"),
            Vec::new(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn host_space_allows_only_the_grant_minus_host_addresses() {
        let p = AddressPolicy::new(
            AddressPolicy::parse_cidrs("127.0.0.0/8, 192.0.2.0/24").unwrap(),
            vec![ip("192.0.2.7")],
        );
        let host = AddressSpace::Host;
        assert!(p.check(&host, ip("127.20.0.5")).is_ok());
        assert!(p.check(&host, ip("192.0.2.8")).is_ok());
        let loopback = p.check(&host, ip("127.0.0.1")).unwrap_err();
        assert!(loopback.contains("loopback"), "{loopback}");
        let own = p.check(&host, ip("192.0.2.7")).unwrap_err();
        assert!(own.contains("address of the data plane's host"), "{own}");
        let outside = p.check(&host, ip("10.0.0.5")).unwrap_err();
        assert!(
            outside.contains("--dataplane-cidrs 127.0.0.0/8,192.0.2.0/24"),
            "{outside}"
        );
        assert!(
            p.check(&host, ip("::ffff:192.0.2.7")).is_err(),
            "v4-mapped is the same host address"
        );
    }

    #[test]
    fn link_local_and_non_unicast_are_refused_everywhere() {
        let p = AddressPolicy::new(AddressPolicy::parse_cidrs("0.0.0.0/0").unwrap(), vec![]);
        for space in [AddressSpace::Host, AddressSpace::Netns("vpc-a".into())] {
            for bad in [
                "169.254.169.254",
                "0.0.0.0",
                "255.255.255.255",
                "224.0.0.1",
                "fe80::1",
            ] {
                assert!(p.check(&space, ip(bad)).is_err(), "{bad} in {space:?}");
            }
        }
    }

    #[test]
    fn a_namespace_allows_its_addresses_but_not_loopback() {
        let p = AddressPolicy::new(vec![], vec![ip("10.0.0.5")]);
        let ns = AddressSpace::Netns("vpc-a".into());
        assert!(
            p.check(&ns, ip("10.0.0.5")).is_ok(),
            "the host's addresses are not the namespace's"
        );
        assert!(p.check(&ns, ip("127.0.0.1")).is_err());
        assert!(p
            .check(&AddressSpace::Host, ip("10.0.0.6"))
            .unwrap_err()
            .contains("is empty"));
    }

    #[test]
    fn the_default_grant_is_clear_of_the_hosts_loopback_services() {
        let p = AddressPolicy::default();
        assert!(p.check(&AddressSpace::Host, ip("127.20.0.5")).is_ok());
        assert!(p.check(&AddressSpace::Host, ip("127.0.0.53")).is_err());
        assert!(p.check(&AddressSpace::Host, ip("127.0.1.1")).is_err());
        assert_eq!(AddressSpace::of(None).key(), "host");
        assert_eq!(AddressSpace::of(Some("a")).key(), "netns:a");
    }
}
