//! The network inventory the endpoint APIs validate against: VPCs, subnets, ports and the
//! addresses allocated in subnets (the VPC API v1 subset of `vpc-api-subset-surface.md`).
//!
//! Address rules: a subnet's CIDR lies inside its VPC's and does not overlap the VPC's other
//! subnets; its gateway is a host address inside it; fixed IPs are host addresses inside their
//! subnet other than the gateway, unique in it. Allocation hands out the lowest free host
//! address, skipping the network, gateway and broadcast addresses.
//!
//! Deviation from the public cloud, on purpose: VPC CIDRs may be any IPv4 network from /8 to
//! /28 (not only RFC 1918 ranges), because a self-hosted data plane listens on real local
//! addresses such as 127.0.0.0/8.

use crate::ids::parse_uuid;
use crate::model::ServerType;
use crate::time::Millis;
use crate::wire_vpc::{
    CreatePortOption, CreateSubnetOption, CreateVpcOption, UpdatePortOption, UpdateSubnetOption,
    UpdateVpcOption,
};
use crate::{ApiError, ApiResult, ErrorCode};
use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;
use uuid::Uuid;

/// The range VPC Endpoint uses internally; backend VPCs and their subnets must not overlap it
/// (the seed page's note).
pub const RESERVED_CIDR: &str = "198.19.128.0/17";

/// A static route of a VPC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Route {
    /// Destination CIDR.
    pub destination: String,
    /// Next-hop IPv4 address.
    pub nexthop: String,
}

/// An extra DHCP option of a subnet or port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DhcpOpt {
    /// Option name.
    pub opt_name: String,
    /// Option value (`null` when unset).
    #[serde(default)]
    #[schema(required = true)]
    pub opt_value: Option<String>,
}

/// An allowed address pair of a port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AddressPair {
    /// IP address or CIDR.
    pub ip_address: String,
    /// MAC address (`null` when unset).
    #[serde(default)]
    #[schema(required = true)]
    pub mac_address: Option<String>,
}

/// A VPC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vpc {
    pub id: Uuid,
    pub project_id: String,
    pub name: String,
    pub description: String,
    pub cidr: Ipv4Net,
    pub routes: Vec<Route>,
    pub enterprise_project_id: String,
    pub enable_network_address_usage_metrics: bool,
    /// 24-bit virtual network id (sent to backends with `tcp_proxy` `proxy_vni`).
    pub vni: u32,
    /// Network namespace the data plane uses for this VPC's addresses (operator inventory only).
    pub netns: Option<String>,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// A subnet of a VPC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subnet {
    /// Also the subnet's network id (`network_id` of its ports, `neutron_network_id`).
    pub id: Uuid,
    /// The OpenStack subnet id (`fixed_ips[].subnet_id` of ports).
    pub neutron_subnet_id: Uuid,
    pub project_id: String,
    pub vpc_id: Uuid,
    pub name: String,
    pub description: String,
    pub cidr: Ipv4Net,
    pub gateway_ip: Ipv4Addr,
    pub dhcp_enable: bool,
    pub primary_dns: Option<String>,
    pub secondary_dns: Option<String>,
    pub dns_list: Vec<String>,
    pub availability_zone: String,
    pub extra_dhcp_opts: Vec<DhcpOpt>,
    pub created_at: Millis,
    pub updated_at: Millis,
    /// Host addresses not yet allocated (computed on read).
    pub available_ip_address_count: i64,
}

/// What a port is, from its `device_owner`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortKind {
    /// A VM's NIC (`compute:*`) or an unbound port.
    VmNic,
    /// A load balancer's VIP port (`neutron:LOADBALANCER*`).
    LoadBalancerVip,
    /// A virtual IP port (`neutron:VIP_PORT`).
    VirtualIp,
    /// Anything else (router interfaces, DHCP, endpoint ports, ...).
    Other,
}

impl PortKind {
    /// Classifies a `device_owner`.
    pub fn of(device_owner: &str) -> PortKind {
        if device_owner.is_empty() || device_owner.starts_with("compute:") {
            PortKind::VmNic
        } else if device_owner.starts_with("neutron:LOADBALANCER") {
            PortKind::LoadBalancerVip
        } else if device_owner == "neutron:VIP_PORT" {
            PortKind::VirtualIp
        } else {
            PortKind::Other
        }
    }

    /// The `server_type` a service backed by this port must declare.
    pub fn server_type(self) -> Option<ServerType> {
        match self {
            PortKind::VmNic => Some(ServerType::Vm),
            PortKind::LoadBalancerVip => Some(ServerType::Lb),
            PortKind::VirtualIp => Some(ServerType::Vip),
            PortKind::Other => None,
        }
    }
}

/// A port (a NIC or VIP) with one fixed IP in one subnet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Port {
    pub id: Uuid,
    pub project_id: String,
    /// The subnet (network) the port is in.
    pub subnet_id: Uuid,
    /// The subnet's OpenStack subnet id, shown in `fixed_ips`.
    pub neutron_subnet_id: Uuid,
    pub vpc_id: Uuid,
    pub name: String,
    pub ip_address: Ipv4Addr,
    pub mac_address: String,
    pub device_owner: String,
    pub device_id: String,
    pub admin_state_up: bool,
    pub security_groups: Vec<String>,
    pub allowed_address_pairs: Vec<AddressPair>,
    pub extra_dhcp_opts: Vec<DhcpOpt>,
    pub created_at: Millis,
    pub updated_at: Millis,
}

impl Port {
    /// `ACTIVE` when bound to a device, else `DOWN`.
    pub fn status(&self) -> &'static str {
        if self.device_owner.is_empty() {
            "DOWN"
        } else {
            "ACTIVE"
        }
    }
}

/// An allocated address of a subnet (`privateips`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrivateIp {
    pub id: Uuid,
    pub subnet_id: Uuid,
    pub project_id: String,
    pub ip_address: Ipv4Addr,
    pub device_owner: String,
}

fn err(code: ErrorCode, msg: impl Into<String>) -> ApiError {
    ApiError::new(code, msg)
}

/// Most static routes a VPC holds (update VPC `routes`): "by default, a maximum of 100 routes
/// can be added for a VPC" (OTC VPC user guide).
pub const MAX_ROUTES: usize = 100;
/// Most DNS servers of a subnet (`dnsList`): "a maximum of five DNS server addresses can be
/// configured" (OTC VPC API, create subnet).
pub const MAX_DNS_SERVERS: usize = 5;
/// Most security groups of a port: "an ECS or an ECS extension NIC can be added to a maximum of
/// five security groups" (OTC ECS user guide).
pub const MAX_PORT_SECURITY_GROUPS: usize = 5;
/// Most allowed address pairs of a port (Neutron's default `max_allowed_address_pair`).
pub const MAX_ADDRESS_PAIRS: usize = 10;
/// Most extra DHCP options of a subnet or port (vpcep's cap; the API documents a handful of
/// option names, each set once).
pub const MAX_DHCP_OPTS: usize = 20;
/// Most `tags` strings in create VPC and create subnet (the VPC API's tag limit of 10).
pub const MAX_NETWORK_TAGS: usize = crate::tags::MAX_TAGS;

/// Refuses a request list of more than `max` items with `code` naming `field`. Every list of an
/// inventory request passes here before any of its items is parsed, so that an oversized body
/// costs no more than its count.
pub fn ensure_at_most(field: &str, len: usize, max: usize, code: ErrorCode) -> ApiResult<()> {
    if len > max {
        return Err(err(
            code,
            format!("Invalid {field}: {len} entries; at most {max} are allowed"),
        ));
    }
    Ok(())
}

/// The length of an optional request list.
fn count<T>(list: Option<&[T]>) -> usize {
    list.map_or(0, <[T]>::len)
}

/// Parses a canonical IPv4 CIDR (`10.0.0.0/16`; host bits must be zero) with a prefix in range.
pub fn parse_cidr(
    field: &str,
    s: &str,
    prefixes: std::ops::RangeInclusive<u8>,
    code: ErrorCode,
) -> ApiResult<Ipv4Net> {
    let net: Ipv4Net = s.parse().map_err(|_| {
        err(
            code,
            format!("Invalid {field}: {s:?} is not an IPv4 CIDR such as 10.0.0.0/16"),
        )
    })?;
    if net.trunc() != net {
        return Err(err(
            code,
            format!(
                "Invalid {field}: {s:?} has host bits set; did you mean {}?",
                net.trunc()
            ),
        ));
    }
    if !prefixes.contains(&net.prefix_len()) {
        return Err(err(
            code,
            format!(
                "Invalid {field}: the prefix of {s} must be from /{} to /{}",
                prefixes.start(),
                prefixes.end()
            ),
        ));
    }
    let first = net.network().octets()[0];
    if first == 0 || first >= 224 {
        return Err(err(
            code,
            format!("Invalid {field}: {s} is not a unicast range"),
        ));
    }
    Ok(net)
}

/// Parses an IPv4 address.
pub fn parse_ipv4(field: &str, s: &str, code: ErrorCode) -> ApiResult<Ipv4Addr> {
    s.parse().map_err(|_| {
        err(
            code,
            format!("Invalid {field}: {s:?} is not an IPv4 address"),
        )
    })
}

/// Checks a display name: at most `max` characters of letters (any script), digits, `_ - .`.
pub fn parse_name(
    field: &str,
    s: &str,
    max: usize,
    required: bool,
    code: ErrorCode,
) -> ApiResult<String> {
    if required && s.is_empty() {
        return Err(err(code, format!("{field} is mandatory")));
    }
    if s.chars().count() > max
        || !s
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        return Err(err(
            code,
            format!("Invalid {field}: {s:?}; use at most {max} letters, digits, '_', '-' or '.'"),
        ));
    }
    Ok(s.to_string())
}

/// Checks a description: at most 255 characters, none of `<` `>`.
pub fn parse_description(field: &str, s: &str, code: ErrorCode) -> ApiResult<String> {
    if s.chars().count() > 255 || s.contains(['<', '>']) {
        return Err(err(
            code,
            format!("Invalid {field}: at most 255 characters, without '<' or '>'"),
        ));
    }
    Ok(s.to_string())
}

/// Whether `ip` may be given to a device in `cidr` with gateway `gateway`: inside, and not the
/// network, broadcast or gateway address.
pub fn is_assignable(cidr: Ipv4Net, gateway: Ipv4Addr, ip: Ipv4Addr) -> bool {
    cidr.contains(&ip) && ip != cidr.network() && ip != cidr.broadcast() && ip != gateway
}

/// The number of host addresses a subnet can hand out (without network, broadcast, gateway).
pub fn assignable_count(cidr: Ipv4Net) -> i64 {
    let size = 1i64 << (32 - u32::from(cidr.prefix_len()));
    (size - 3).max(0)
}

/// The lowest assignable address of `cidr` not in `taken` (sorted ascending).
pub fn first_free(cidr: Ipv4Net, gateway: Ipv4Addr, taken: &[Ipv4Addr]) -> Option<Ipv4Addr> {
    let mut taken = taken.iter().map(|a| u32::from(*a)).peekable();
    let start = u32::from(cidr.network()).checked_add(1)?;
    let end = u32::from(cidr.broadcast());
    for candidate in start..end {
        while taken.next_if(|t| *t < candidate).is_some() {}
        if taken.peek() == Some(&candidate) {
            continue;
        }
        let ip = Ipv4Addr::from(candidate);
        if ip != gateway {
            return Some(ip);
        }
    }
    None
}

/// A validated VPC create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewVpc {
    pub name: String,
    pub description: String,
    pub cidr: Ipv4Net,
    pub enterprise_project_id: String,
    pub enable_network_address_usage_metrics: bool,
}

/// The CIDR a VPC gets when none is given (the console's default).
pub const DEFAULT_VPC_CIDR: &str = "192.168.0.0/16";

/// Validates create VPC (#12).
pub fn parse_create_vpc(o: &CreateVpcOption) -> ApiResult<NewVpc> {
    let c = ErrorCode::VpcParam;
    ensure_at_most("vpc.tags", count(o.tags.as_deref()), MAX_NETWORK_TAGS, c)?;
    Ok(NewVpc {
        name: parse_name("vpc.name", o.name.as_deref().unwrap_or(""), 64, false, c)?,
        description: parse_description(
            "vpc.description",
            o.description.as_deref().unwrap_or(""),
            c,
        )?,
        cidr: parse_cidr(
            "vpc.cidr",
            o.cidr.as_deref().unwrap_or(DEFAULT_VPC_CIDR),
            8..=28,
            c,
        )?,
        enterprise_project_id: o
            .enterprise_project_id
            .clone()
            .unwrap_or_else(|| "0".into()),
        enable_network_address_usage_metrics: o
            .enable_network_address_usage_metrics
            .unwrap_or(false),
    })
}

/// A validated VPC update (#16): `None` leaves a field.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VpcPatch {
    pub name: Option<String>,
    pub description: Option<String>,
    pub cidr: Option<Ipv4Net>,
    pub routes: Option<Vec<Route>>,
    pub enable_network_address_usage_metrics: Option<bool>,
}

/// Validates update VPC (#16). Whether a new CIDR still holds the subnets is checked against
/// them by [`check_vpc_cidr_holds_subnets`].
pub fn parse_update_vpc(o: &UpdateVpcOption) -> ApiResult<VpcPatch> {
    let c = ErrorCode::VpcParam;
    ensure_at_most("vpc.routes", count(o.routes.as_deref()), MAX_ROUTES, c)?;
    let routes = match &o.routes {
        None => None,
        Some(rs) => Some(
            rs.iter()
                .enumerate()
                .map(|(i, r)| {
                    let dest = r.destination.as_deref().unwrap_or("");
                    let hop = r.nexthop.as_deref().unwrap_or("");
                    parse_cidr(&format!("vpc.routes[{i}].destination"), dest, 0..=32, c).or_else(
                        |e| {
                            if dest == "0.0.0.0/0" {
                                Ok("0.0.0.0/0".parse().expect("valid"))
                            } else {
                                Err(e)
                            }
                        },
                    )?;
                    parse_ipv4(&format!("vpc.routes[{i}].nexthop"), hop, c)?;
                    Ok(Route {
                        destination: dest.into(),
                        nexthop: hop.into(),
                    })
                })
                .collect::<ApiResult<Vec<_>>>()?,
        ),
    };
    Ok(VpcPatch {
        name: o
            .name
            .as_deref()
            .map(|n| parse_name("vpc.name", n, 64, false, c))
            .transpose()?,
        description: o
            .description
            .as_deref()
            .map(|d| parse_description("vpc.description", d, c))
            .transpose()?,
        cidr: o
            .cidr
            .as_deref()
            .map(|s| parse_cidr("vpc.cidr", s, 8..=28, c))
            .transpose()?,
        routes,
        enable_network_address_usage_metrics: o.enable_network_address_usage_metrics,
    })
}

impl VpcPatch {
    /// Applies the patch.
    pub fn apply_to(&self, v: &mut Vpc) {
        if let Some(x) = &self.name {
            v.name = x.clone();
        }
        if let Some(x) = &self.description {
            v.description = x.clone();
        }
        if let Some(x) = self.cidr {
            v.cidr = x;
        }
        if let Some(x) = &self.routes {
            v.routes = x.clone();
        }
        if let Some(x) = self.enable_network_address_usage_metrics {
            v.enable_network_address_usage_metrics = x;
        }
    }
}

/// A changed VPC CIDR must still contain every subnet of the VPC.
pub fn check_vpc_cidr_holds_subnets(cidr: Ipv4Net, subnets: &[Subnet]) -> ApiResult<()> {
    match subnets.iter().find(|s| !cidr.contains(&s.cidr)) {
        Some(s) => Err(err(
            ErrorCode::VpcParam,
            format!(
                "Invalid vpc.cidr: {cidr} does not contain subnet {} ({})",
                s.id, s.cidr
            ),
        )),
        None => Ok(()),
    }
}

/// A validated subnet create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSubnet {
    pub name: String,
    pub description: String,
    pub cidr: Ipv4Net,
    pub vpc_id: Uuid,
    pub gateway_ip: Ipv4Addr,
    pub dhcp_enable: bool,
    pub primary_dns: Option<String>,
    pub secondary_dns: Option<String>,
    pub dns_list: Vec<String>,
    pub availability_zone: String,
    pub extra_dhcp_opts: Vec<DhcpOpt>,
}

fn parse_dns(field: &str, v: Option<&str>) -> ApiResult<Option<String>> {
    v.map(|s| parse_ipv4(field, s, ErrorCode::SubnetParam).map(|a| a.to_string()))
        .transpose()
}

/// Validates `dnsList`: at most [`MAX_DNS_SERVERS`] IPv4 addresses.
fn parse_dns_list(list: Option<&[String]>) -> ApiResult<Vec<String>> {
    let c = ErrorCode::SubnetParam;
    ensure_at_most("subnet.dnsList", count(list), MAX_DNS_SERVERS, c)?;
    list.unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(i, d)| parse_ipv4(&format!("subnet.dnsList[{i}]"), d, c).map(|a| a.to_string()))
        .collect()
}

fn parse_dhcp_opts(
    field: &str,
    opts: Option<&[crate::wire_vpc::DhcpOptDto]>,
    code: ErrorCode,
) -> ApiResult<Vec<DhcpOpt>> {
    ensure_at_most(field, count(opts), MAX_DHCP_OPTS, code)?;
    opts.unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(i, o)| match o.opt_name.as_deref() {
            Some(n) if !n.is_empty() => Ok(DhcpOpt {
                opt_name: n.into(),
                opt_value: o.opt_value.clone(),
            }),
            _ => Err(err(code, format!("{field}[{i}].opt_name is mandatory"))),
        })
        .collect()
}

/// Validates create subnet (#2); where it sits in its VPC is checked by [`check_subnet_fits`].
pub fn parse_create_subnet(o: &CreateSubnetOption) -> ApiResult<NewSubnet> {
    let c = ErrorCode::SubnetParam;
    ensure_at_most("subnet.tags", count(o.tags.as_deref()), MAX_NETWORK_TAGS, c)?;
    let dns_list = parse_dns_list(o.dns_list.as_deref())?;
    let cidr = parse_cidr(
        "subnet.cidr",
        o.cidr
            .as_deref()
            .ok_or_else(|| err(c, "subnet.cidr is mandatory"))?,
        8..=29,
        c,
    )?;
    let gateway_ip = parse_ipv4(
        "subnet.gateway_ip",
        o.gateway_ip
            .as_deref()
            .ok_or_else(|| err(c, "subnet.gateway_ip is mandatory"))?,
        c,
    )?;
    if !cidr.contains(&gateway_ip) || gateway_ip == cidr.network() || gateway_ip == cidr.broadcast()
    {
        return Err(err(
            c,
            format!("Invalid subnet.gateway_ip: {gateway_ip} is not a host address of {cidr}"),
        ));
    }
    let vpc_id = parse_uuid(
        "subnet.vpc_id",
        o.vpc_id
            .as_deref()
            .ok_or_else(|| err(c, "subnet.vpc_id is mandatory"))?,
        c,
    )?;
    Ok(NewSubnet {
        name: parse_name("subnet.name", o.name.as_deref().unwrap_or(""), 64, true, c)?,
        description: parse_description(
            "subnet.description",
            o.description.as_deref().unwrap_or(""),
            c,
        )?,
        cidr,
        vpc_id,
        gateway_ip,
        dhcp_enable: o.dhcp_enable.unwrap_or(true),
        primary_dns: parse_dns("subnet.primary_dns", o.primary_dns.as_deref())?,
        secondary_dns: parse_dns("subnet.secondary_dns", o.secondary_dns.as_deref())?,
        dns_list,
        availability_zone: o.availability_zone.clone().unwrap_or_default(),
        extra_dhcp_opts: parse_dhcp_opts(
            "subnet.extra_dhcp_opts",
            o.extra_dhcp_opts.as_deref(),
            c,
        )?,
    })
}

/// A new subnet must lie in its VPC and not overlap the VPC's other subnets.
pub fn check_subnet_fits(vpc: &Vpc, cidr: Ipv4Net, siblings: &[Subnet]) -> ApiResult<()> {
    if !vpc.cidr.contains(&cidr) {
        return Err(err(
            ErrorCode::SubnetCidrConflict,
            format!(
                "The subnet CIDR {cidr} is not inside the CIDR {} of VPC {}",
                vpc.cidr, vpc.id
            ),
        ));
    }
    if let Some(s) = siblings
        .iter()
        .find(|s| s.cidr.contains(&cidr) || cidr.contains(&s.cidr))
    {
        return Err(err(
            ErrorCode::SubnetCidrConflict,
            format!(
                "The subnet CIDR {cidr} overlaps subnet {} ({}) of the same VPC",
                s.id, s.cidr
            ),
        ));
    }
    Ok(())
}

/// A validated subnet update (#10).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubnetPatch {
    pub name: Option<String>,
    pub description: Option<String>,
    pub dhcp_enable: Option<bool>,
    pub primary_dns: Option<Option<String>>,
    pub secondary_dns: Option<Option<String>>,
    pub dns_list: Option<Vec<String>>,
    pub extra_dhcp_opts: Option<Vec<DhcpOpt>>,
}

/// Validates update subnet (#10): `name` is mandatory there.
pub fn parse_update_subnet(o: &UpdateSubnetOption) -> ApiResult<SubnetPatch> {
    let c = ErrorCode::SubnetParam;
    let name = o
        .name
        .as_deref()
        .ok_or_else(|| err(c, "subnet.name is mandatory"))?;
    Ok(SubnetPatch {
        name: Some(parse_name("subnet.name", name, 64, true, c)?),
        description: o
            .description
            .as_deref()
            .map(|d| parse_description("subnet.description", d, c))
            .transpose()?,
        dhcp_enable: o.dhcp_enable,
        primary_dns: o
            .primary_dns
            .as_deref()
            .map(|d| parse_dns("subnet.primary_dns", Some(d)))
            .transpose()?,
        secondary_dns: o
            .secondary_dns
            .as_deref()
            .map(|d| parse_dns("subnet.secondary_dns", Some(d)))
            .transpose()?,
        dns_list: o
            .dns_list
            .as_deref()
            .map(|l| parse_dns_list(Some(l)))
            .transpose()?,
        extra_dhcp_opts: o
            .extra_dhcp_opts
            .as_deref()
            .map(|x| parse_dhcp_opts("subnet.extra_dhcp_opts", Some(x), c))
            .transpose()?,
    })
}

impl SubnetPatch {
    /// Applies the patch.
    pub fn apply_to(&self, s: &mut Subnet) {
        if let Some(x) = &self.name {
            s.name = x.clone();
        }
        if let Some(x) = &self.description {
            s.description = x.clone();
        }
        if let Some(x) = self.dhcp_enable {
            s.dhcp_enable = x;
        }
        if let Some(x) = &self.primary_dns {
            s.primary_dns = x.clone();
        }
        if let Some(x) = &self.secondary_dns {
            s.secondary_dns = x.clone();
        }
        if let Some(x) = &self.dns_list {
            s.dns_list = x.clone();
        }
        if let Some(x) = &self.extra_dhcp_opts {
            s.extra_dhcp_opts = x.clone();
        }
    }
}

/// A validated port create (#1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPort {
    pub name: String,
    /// The subnet (network) id.
    pub network_id: Uuid,
    /// A requested fixed IP.
    pub ip_address: Option<Ipv4Addr>,
    /// The subnet named in `fixed_ips` (either id form), if any.
    pub fixed_subnet_id: Option<Uuid>,
    pub device_owner: String,
    pub admin_state_up: bool,
    pub security_groups: Vec<String>,
    pub allowed_address_pairs: Vec<AddressPair>,
    pub extra_dhcp_opts: Vec<DhcpOpt>,
}

fn parse_device_owner(s: &str) -> ApiResult<String> {
    if s.len() > 64
        || !s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '_' | '-' | '.'))
    {
        return Err(err(
            ErrorCode::PortParam,
            format!("Invalid port.device_owner: {s:?}"),
        ));
    }
    Ok(s.to_string())
}

fn parse_address_pairs(
    pairs: Option<&[crate::wire_vpc::AddressPairDto]>,
) -> ApiResult<Vec<AddressPair>> {
    ensure_at_most(
        "port.allowed_address_pairs",
        count(pairs),
        MAX_ADDRESS_PAIRS,
        ErrorCode::PortParam,
    )?;
    pairs
        .unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let ip = p.ip_address.as_deref().unwrap_or("");
            if ip.parse::<Ipv4Addr>().is_err() && ip.parse::<Ipv4Net>().is_err() {
                return Err(err(
                    ErrorCode::PortParam,
                    format!("Invalid port.allowed_address_pairs[{i}].ip_address: {ip:?}"),
                ));
            }
            Ok(AddressPair {
                ip_address: ip.into(),
                mac_address: p.mac_address.clone(),
            })
        })
        .collect()
}

fn parse_security_groups(groups: Option<&[String]>) -> ApiResult<Vec<String>> {
    ensure_at_most(
        "port.security_groups",
        count(groups),
        MAX_PORT_SECURITY_GROUPS,
        ErrorCode::PortParam,
    )?;
    groups
        .unwrap_or_default()
        .iter()
        .map(|g| parse_uuid("port.security_groups", g, ErrorCode::PortParam).map(|u| u.to_string()))
        .collect()
}

/// Validates create port (#1). Whether the IP fits the subnet is checked with the subnet.
pub fn parse_create_port(o: &CreatePortOption) -> ApiResult<NewPort> {
    let c = ErrorCode::PortParam;
    let network_id = parse_uuid(
        "port.network_id",
        o.network_id
            .as_deref()
            .ok_or_else(|| err(c, "port.network_id is mandatory"))?,
        c,
    )?;
    let fixed = o.fixed_ips.as_deref().unwrap_or_default();
    if fixed.len() > 1 {
        return Err(err(c, "port.fixed_ips: a port has at most one fixed IP"));
    }
    let (ip_address, fixed_subnet_id) = match fixed.first() {
        None => (None, None),
        Some(f) => (
            f.ip_address
                .as_deref()
                .map(|ip| parse_ipv4("port.fixed_ips[0].ip_address", ip, c))
                .transpose()?,
            f.subnet_id
                .as_deref()
                .map(|s| parse_uuid("port.fixed_ips[0].subnet_id", s, c))
                .transpose()?,
        ),
    };
    Ok(NewPort {
        name: parse_name("port.name", o.name.as_deref().unwrap_or(""), 255, false, c)?,
        network_id,
        ip_address,
        fixed_subnet_id,
        device_owner: parse_device_owner(o.device_owner.as_deref().unwrap_or(""))?,
        admin_state_up: o.admin_state_up.unwrap_or(true),
        security_groups: parse_security_groups(o.security_groups.as_deref())?,
        allowed_address_pairs: parse_address_pairs(o.allowed_address_pairs.as_deref())?,
        extra_dhcp_opts: parse_dhcp_opts("port.extra_dhcp_opts", o.extra_dhcp_opts.as_deref(), c)?,
    })
}

/// A validated port update (#9).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortPatch {
    pub name: Option<String>,
    pub security_groups: Option<Vec<String>>,
    pub allowed_address_pairs: Option<Vec<AddressPair>>,
    pub extra_dhcp_opts: Option<Vec<DhcpOpt>>,
}

/// Validates update port (#9).
pub fn parse_update_port(o: &UpdatePortOption) -> ApiResult<PortPatch> {
    let c = ErrorCode::PortParam;
    Ok(PortPatch {
        name: o
            .name
            .as_deref()
            .map(|n| parse_name("port.name", n, 255, false, c))
            .transpose()?,
        security_groups: o
            .security_groups
            .as_deref()
            .map(|g| parse_security_groups(Some(g)))
            .transpose()?,
        allowed_address_pairs: o
            .allowed_address_pairs
            .as_deref()
            .map(|p| parse_address_pairs(Some(p)))
            .transpose()?,
        extra_dhcp_opts: o
            .extra_dhcp_opts
            .as_deref()
            .map(|x| parse_dhcp_opts("port.extra_dhcp_opts", Some(x), c))
            .transpose()?,
    })
}

impl PortPatch {
    /// Applies the patch.
    pub fn apply_to(&self, p: &mut Port) {
        if let Some(x) = &self.name {
            p.name = x.clone();
        }
        if let Some(x) = &self.security_groups {
            p.security_groups = x.clone();
        }
        if let Some(x) = &self.allowed_address_pairs {
            p.allowed_address_pairs = x.clone();
        }
        if let Some(x) = &self.extra_dhcp_opts {
            p.extra_dhcp_opts = x.clone();
        }
    }
}

/// Whether `net` overlaps 198.19.128.0/17, the range VPC Endpoint reserves.
pub fn overlaps_reserved(net: &Ipv4Net) -> bool {
    let reserved: Ipv4Net = RESERVED_CIDR.parse().expect("valid constant");
    net.contains(&reserved) || reserved.contains(net)
}

/// What the endpoint-service backend check needs to know of a port and the VPC it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendFacts {
    /// The VPC the port is in.
    pub port_vpc_id: Uuid,
    /// The port's `device_owner` (what it is).
    pub device_owner: String,
    /// The CIDR and routes of the service's `vpc_id`, when that VPC exists in the project.
    pub vpc: Option<(Ipv4Net, Vec<Route>)>,
    /// The port's fixed IP (the data plane's backend address unless the service has an `ip`).
    pub port_ip: Ipv4Addr,
    /// The network namespace of the service's VPC (the inventory's `netns`), if any.
    pub netns: Option<String>,
}

impl BackendFacts {
    /// The facts of a port and a VPC read as records.
    pub fn of(port: &Port, vpc: Option<&Vpc>) -> Self {
        BackendFacts {
            port_vpc_id: port.vpc_id,
            device_owner: port.device_owner.clone(),
            vpc: vpc.map(|v| (v.cidr, v.routes.clone())),
            port_ip: port.ip_address,
            netns: vpc.and_then(|v| v.netns.clone()),
        }
    }
}

/// Where the data plane connects for a service: its address space and address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendAddress {
    /// The provider VPC's address space.
    pub space: crate::dataplane::AddressSpace,
    /// The service's `ip`, else its port's fixed IP; `None` when `ip` is a domain name, which
    /// the data plane does not resolve.
    pub ip: Option<Ipv4Addr>,
}

/// An endpoint service's backend must be a port of the caller's project in `vpc_id`, of the kind
/// `server_type` says, and neither the VPC nor its custom routes may overlap 198.19.128.0/17.
/// (Its subnets need no check of their own: they always lie inside the VPC's CIDR.) An `ip`
/// address must lie inside the VPC's CIDR (a domain name is kept as given). `facts` is `None`
/// when no such port exists in the project. Answers where the data plane would connect.
pub fn check_service_backend(
    server_type: ServerType,
    vpc_id: Uuid,
    port_id: Uuid,
    ip: Option<&str>,
    facts: Option<&BackendFacts>,
) -> ApiResult<BackendAddress> {
    let port = facts.ok_or_else(|| {
        err(
            ErrorCode::PortNotFound,
            format!("The port {port_id} does not exist in this project"),
        )
    })?;
    if port.port_vpc_id != vpc_id {
        return Err(err(
            ErrorCode::PortNotInVpc,
            format!(
                "The port {port_id} belongs to VPC {}, not to vpc_id {vpc_id}",
                port.port_vpc_id
            ),
        ));
    }
    let (cidr, routes) = port.vpc.as_ref().ok_or_else(|| {
        err(
            ErrorCode::VpcNotFound,
            format!("The VPC {vpc_id} does not exist"),
        )
    })?;
    let kind = PortKind::of(&port.device_owner);
    if kind.server_type() != Some(server_type) {
        let want = match kind.server_type() {
            Some(t) => format!("server_type {t}"),
            None => "no endpoint service".to_string(),
        };
        return Err(err(
            ErrorCode::InvalidServerType,
            format!(
                "server_type {server_type} does not match port {port_id}: its device_owner {:?} calls for {want}",
                port.device_owner
            ),
        ));
    }
    if overlaps_reserved(cidr) {
        return Err(err(
            ErrorCode::InvalidCidr,
            format!("The CIDR {cidr} of VPC {vpc_id} overlaps {RESERVED_CIDR}, which VPC Endpoint reserves"),
        ));
    }
    // Custom routes of the VPC must stay clear of the range too (the seed page's note).
    if let Some(r) = routes.iter().find(|r| {
        r.destination
            .parse::<Ipv4Net>()
            .is_ok_and(|d| overlaps_reserved(&d))
    }) {
        return Err(err(
            ErrorCode::InvalidCidr,
            format!("The route to {} of VPC {vpc_id} overlaps {RESERVED_CIDR}, which VPC Endpoint reserves", r.destination),
        ));
    }
    // The backend stays in the provider's network: an `ip` address lies inside its VPC.
    let ip = match ip.map(str::parse::<Ipv4Addr>) {
        None => Some(port.port_ip),
        Some(Ok(a)) if cidr.contains(&a) => Some(a),
        Some(Ok(a)) => {
            return Err(err(
                ErrorCode::InvalidIp,
                format!("Invalid ip: {a} is outside the CIDR {cidr} of VPC {vpc_id}; a backend address lies inside the service's VPC"),
            ))
        }
        Some(Err(_)) => None,
    };
    Ok(BackendAddress {
        space: crate::dataplane::AddressSpace::of(port.netns.as_deref()),
        ip,
    })
}

impl Vpc {
    /// A new VPC of `project_id` from a validated create.
    pub fn new(project_id: &str, new: NewVpc, id: Uuid, vni: u32, now: Millis) -> Vpc {
        Vpc {
            id,
            project_id: project_id.into(),
            name: new.name,
            description: new.description,
            cidr: new.cidr,
            routes: Vec::new(),
            enterprise_project_id: new.enterprise_project_id,
            enable_network_address_usage_metrics: new.enable_network_address_usage_metrics,
            vni,
            netns: None,
            created_at: now,
            updated_at: now,
        }
    }
}

impl Subnet {
    /// A new subnet of `project_id` from a validated create.
    pub fn new(
        project_id: &str,
        new: NewSubnet,
        id: Uuid,
        neutron_subnet_id: Uuid,
        now: Millis,
    ) -> Subnet {
        Subnet {
            id,
            neutron_subnet_id,
            project_id: project_id.into(),
            vpc_id: new.vpc_id,
            name: new.name,
            description: new.description,
            cidr: new.cidr,
            gateway_ip: new.gateway_ip,
            dhcp_enable: new.dhcp_enable,
            primary_dns: new.primary_dns,
            secondary_dns: new.secondary_dns,
            dns_list: new.dns_list,
            availability_zone: new.availability_zone,
            extra_dhcp_opts: new.extra_dhcp_opts,
            created_at: now,
            updated_at: now,
            available_ip_address_count: assignable_count(new.cidr),
        }
    }
}

impl NewPort {
    /// A port request for `network_id` with an optional fixed IP and a device owner.
    pub fn simple(network_id: Uuid, ip_address: Option<Ipv4Addr>, device_owner: &str) -> NewPort {
        NewPort {
            name: String::new(),
            network_id,
            ip_address,
            fixed_subnet_id: None,
            device_owner: device_owner.into(),
            admin_state_up: true,
            security_groups: Vec::new(),
            allowed_address_pairs: Vec::new(),
            extra_dhcp_opts: Vec::new(),
        }
    }
}

/// A random locally administered MAC address in the `fa:16:3e` range ports use.
pub fn random_mac(seed: u128) -> String {
    let b = seed.to_be_bytes();
    format!("fa:16:3e:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn cidrs_must_be_canonical_and_in_range() {
        let c = ErrorCode::VpcParam;
        assert!(parse_cidr("cidr", "10.0.0.0/16", 8..=28, c).is_ok());
        assert!(parse_cidr("cidr", "127.10.0.0/16", 8..=28, c).is_ok());
        assert!(parse_cidr("cidr", "10.0.0.1/16", 8..=28, c)
            .unwrap_err()
            .msg
            .contains("host bits"));
        assert!(parse_cidr("cidr", "10.0.0.0/30", 8..=28, c).is_err());
        assert!(parse_cidr("cidr", "224.0.0.0/8", 8..=28, c).is_err());
        assert!(parse_cidr("cidr", "banana", 8..=28, c).is_err());
    }

    /// Every list of an inventory request has a cap, checked on its length before any item is
    /// parsed: one entry over the cap, made of items that are each invalid, answers the cap.
    #[test]
    fn inventory_lists_are_capped_before_their_items_are_parsed() {
        use crate::wire_vpc::{AddressPairDto, DhcpOptDto, RouteDto};
        let over = |n: usize| n + 1;
        let cap_msg = |e: ApiError| {
            assert!(e.msg.contains("at most"), "{}", e.msg);
            e.code
        };
        let routes = vec![RouteDto::default(); over(MAX_ROUTES)];
        let e = parse_update_vpc(&UpdateVpcOption {
            routes: Some(routes),
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(cap_msg(e), ErrorCode::VpcParam);
        let e = parse_create_vpc(&CreateVpcOption {
            tags: Some(vec!["x".into(); over(MAX_NETWORK_TAGS)]),
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(cap_msg(e), ErrorCode::VpcParam);
        let subnet = CreateSubnetOption {
            name: Some("s".into()),
            cidr: Some("10.0.1.0/24".into()),
            gateway_ip: Some("10.0.1.1".into()),
            vpc_id: Some(Uuid::new_v4().to_string()),
            ..Default::default()
        };
        let ok_dns: Vec<String> = (1..=MAX_DNS_SERVERS)
            .map(|i| format!("10.0.0.{i}"))
            .collect();
        assert!(parse_create_subnet(&CreateSubnetOption {
            dns_list: Some(ok_dns),
            ..subnet.clone()
        })
        .is_ok());
        for bad in [
            CreateSubnetOption {
                dns_list: Some(vec!["not-an-ip".into(); over(MAX_DNS_SERVERS)]),
                ..subnet.clone()
            },
            CreateSubnetOption {
                extra_dhcp_opts: Some(vec![DhcpOptDto::default(); over(MAX_DHCP_OPTS)]),
                ..subnet.clone()
            },
            CreateSubnetOption {
                tags: Some(vec![String::new(); over(MAX_NETWORK_TAGS)]),
                ..subnet.clone()
            },
        ] {
            assert_eq!(
                cap_msg(parse_create_subnet(&bad).unwrap_err()),
                ErrorCode::SubnetParam
            );
        }
        let e = parse_update_subnet(&UpdateSubnetOption {
            name: Some("s".into()),
            dns_list: Some(vec!["x".into(); 50_000]),
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(cap_msg(e), ErrorCode::SubnetParam);
        let port = CreatePortOption {
            network_id: Some(Uuid::new_v4().to_string()),
            ..Default::default()
        };
        for bad in [
            CreatePortOption {
                security_groups: Some(vec!["sg".into(); over(MAX_PORT_SECURITY_GROUPS)]),
                ..port.clone()
            },
            CreatePortOption {
                allowed_address_pairs: Some(vec![
                    AddressPairDto::default();
                    over(MAX_ADDRESS_PAIRS)
                ]),
                ..port.clone()
            },
            CreatePortOption {
                extra_dhcp_opts: Some(vec![DhcpOptDto::default(); over(MAX_DHCP_OPTS)]),
                ..port.clone()
            },
        ] {
            assert_eq!(
                cap_msg(parse_create_port(&bad).unwrap_err()),
                ErrorCode::PortParam
            );
        }
        let e = parse_update_port(&UpdatePortOption {
            allowed_address_pairs: Some(vec![AddressPairDto::default(); over(MAX_ADDRESS_PAIRS)]),
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(cap_msg(e), ErrorCode::PortParam);
    }

    #[test]
    fn allocation_skips_network_gateway_and_broadcast() {
        let n = net("10.0.0.0/29");
        let gw = ip("10.0.0.1");
        assert_eq!(first_free(n, gw, &[]), Some(ip("10.0.0.2")));
        assert_eq!(
            first_free(n, gw, &[ip("10.0.0.2"), ip("10.0.0.3")]),
            Some(ip("10.0.0.4"))
        );
        let all: Vec<_> = (2..=6).map(|i| Ipv4Addr::new(10, 0, 0, i)).collect();
        assert_eq!(
            first_free(n, gw, &all),
            None,
            "broadcast .7 is never handed out"
        );
        assert_eq!(
            first_free(n, ip("10.0.0.6"), &[ip("10.0.0.1")]),
            Some(ip("10.0.0.2"))
        );
        assert!(!is_assignable(n, gw, ip("10.0.0.0")));
        assert!(!is_assignable(n, gw, ip("10.0.0.7")));
        assert!(!is_assignable(n, gw, gw));
        assert!(!is_assignable(n, gw, ip("10.0.1.2")));
        assert!(is_assignable(n, gw, ip("10.0.0.5")));
        assert_eq!(assignable_count(n), 5);
    }

    fn vpc(cidr: &str) -> Vpc {
        Vpc {
            id: Uuid::new_v4(),
            project_id: "p".into(),
            name: String::new(),
            description: String::new(),
            cidr: net(cidr),
            routes: vec![],
            enterprise_project_id: "0".into(),
            enable_network_address_usage_metrics: false,
            vni: 1,
            netns: None,
            created_at: 0,
            updated_at: 0,
        }
    }

    fn subnet(v: &Vpc, cidr: &str) -> Subnet {
        let c = net(cidr);
        Subnet {
            id: Uuid::new_v4(),
            neutron_subnet_id: Uuid::new_v4(),
            project_id: "p".into(),
            vpc_id: v.id,
            name: "s".into(),
            description: String::new(),
            cidr: c,
            gateway_ip: c.hosts().next().unwrap(),
            dhcp_enable: true,
            primary_dns: None,
            secondary_dns: None,
            dns_list: vec![],
            availability_zone: String::new(),
            extra_dhcp_opts: vec![],
            created_at: 0,
            updated_at: 0,
            available_ip_address_count: 0,
        }
    }

    #[test]
    fn subnets_lie_inside_their_vpc_without_overlap() {
        let v = vpc("10.0.0.0/16");
        let a = subnet(&v, "10.0.1.0/24");
        assert!(check_subnet_fits(&v, net("10.0.2.0/24"), std::slice::from_ref(&a)).is_ok());
        assert_eq!(
            check_subnet_fits(&v, net("10.1.0.0/24"), &[])
                .unwrap_err()
                .code,
            ErrorCode::SubnetCidrConflict
        );
        assert_eq!(
            check_subnet_fits(&v, net("10.0.1.128/25"), std::slice::from_ref(&a))
                .unwrap_err()
                .code,
            ErrorCode::SubnetCidrConflict
        );
        assert_eq!(
            check_subnet_fits(&v, net("10.0.0.0/23"), std::slice::from_ref(&a))
                .unwrap_err()
                .code,
            ErrorCode::SubnetCidrConflict
        );
        assert!(check_vpc_cidr_holds_subnets(net("10.0.0.0/20"), std::slice::from_ref(&a)).is_ok());
        assert!(check_vpc_cidr_holds_subnets(net("10.0.2.0/24"), &[a]).is_err());
    }

    fn port(v: &Vpc, owner: &str) -> Port {
        Port {
            id: Uuid::new_v4(),
            project_id: "p".into(),
            subnet_id: Uuid::new_v4(),
            neutron_subnet_id: Uuid::new_v4(),
            vpc_id: v.id,
            name: String::new(),
            ip_address: ip("10.0.1.10"),
            mac_address: "fa:16:3e:00:00:01".into(),
            device_owner: owner.into(),
            device_id: String::new(),
            admin_state_up: true,
            security_groups: vec![],
            allowed_address_pairs: vec![],
            extra_dhcp_opts: vec![],
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn a_service_ip_lies_inside_its_vpc_and_names_the_backend() {
        let mut v = vpc("127.20.0.0/16");
        v.netns = Some("prov".into());
        let vm = port(&v, "compute:az1");
        let facts = BackendFacts::of(&vm, Some(&v));
        let check = |ip| check_service_backend(ServerType::Vm, v.id, vm.id, ip, Some(&facts));
        let space = crate::dataplane::AddressSpace::Netns("prov".into());
        assert_eq!(
            check(None).unwrap(),
            BackendAddress {
                space: space.clone(),
                ip: Some(vm.ip_address)
            }
        );
        assert_eq!(
            check(Some("127.20.3.4")).unwrap().ip,
            Some(ip("127.20.3.4"))
        );
        for outside in ["127.0.0.1", "169.254.169.254", "8.8.8.8"] {
            let e = check(Some(outside)).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidIp, "{outside}");
            assert!(
                e.msg.contains("outside the CIDR 127.20.0.0/16"),
                "{}",
                e.msg
            );
        }
        assert_eq!(
            check(Some("backend.example.com")).unwrap(),
            BackendAddress { space, ip: None }
        );
    }

    #[test]
    fn service_backend_rules() {
        let v = vpc("10.0.0.0/16");
        let vm = port(&v, "compute:local-1a");
        let lb = port(&v, "neutron:LOADBALANCERV2");
        let ok = |t, p: &Port| {
            check_service_backend(t, v.id, p.id, None, Some(&BackendFacts::of(p, Some(&v))))
        };
        assert!(ok(ServerType::Vm, &vm).is_ok());
        assert!(ok(ServerType::Lb, &lb).is_ok());
        assert_eq!(
            ok(ServerType::Lb, &vm).unwrap_err().code,
            ErrorCode::InvalidServerType
        );
        assert_eq!(
            ok(ServerType::Vm, &lb).unwrap_err().code,
            ErrorCode::InvalidServerType
        );
        assert_eq!(
            ok(ServerType::Vm, &port(&v, "network:dhcp"))
                .unwrap_err()
                .code,
            ErrorCode::InvalidServerType
        );
        assert_eq!(
            check_service_backend(ServerType::Vm, v.id, vm.id, None, None)
                .unwrap_err()
                .code,
            ErrorCode::PortNotFound
        );
        assert_eq!(
            check_service_backend(
                ServerType::Vm,
                Uuid::new_v4(),
                vm.id,
                None,
                Some(&BackendFacts::of(&vm, None))
            )
            .unwrap_err()
            .code,
            ErrorCode::PortNotInVpc
        );
        assert_eq!(
            check_service_backend(
                ServerType::Vm,
                v.id,
                vm.id,
                None,
                Some(&BackendFacts::of(&vm, None))
            )
            .unwrap_err()
            .code,
            ErrorCode::VpcNotFound
        );
        let wide = vpc("198.0.0.0/8");
        let p = port(&wide, "");
        assert_eq!(
            check_service_backend(
                ServerType::Vm,
                wide.id,
                p.id,
                None,
                Some(&BackendFacts::of(&p, Some(&wide)))
            )
            .unwrap_err()
            .code,
            ErrorCode::InvalidCidr
        );
        let mut routed = vpc("10.0.0.0/16");
        routed.routes = vec![Route {
            destination: "198.19.130.0/24".into(),
            nexthop: "10.0.0.1".into(),
        }];
        let p2 = port(&routed, "");
        assert_eq!(
            check_service_backend(
                ServerType::Vm,
                routed.id,
                p2.id,
                None,
                Some(&BackendFacts::of(&p2, Some(&routed)))
            )
            .unwrap_err()
            .code,
            ErrorCode::InvalidCidr
        );
    }
}
