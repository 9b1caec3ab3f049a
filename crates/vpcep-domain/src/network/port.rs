//! Ports: the model, create and update rules (create_port, update_port), and the check that an
//! endpoint service's backend is a port of the right kind in its VPC.

use super::vpc::Route;
use super::vpc::Vpc;
use super::wire::{CreatePortOption, UpdatePortOption};
use super::{
    count, ensure_at_most, err, overlaps_reserved, parse_dhcp_opts, parse_ipv4, parse_name,
    DhcpOpt, RESERVED_CIDR,
};
use crate::ids::parse_uuid;
use crate::service::ServerType;
use crate::time::Millis;
use crate::{ApiResult, ErrorCode};
use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;
use uuid::Uuid;

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

/// Most security groups of a port: "an ECS or an ECS extension NIC can be added to a maximum of
/// five security groups" (OTC ECS user guide).
pub const MAX_PORT_SECURITY_GROUPS: usize = 5;

/// Most allowed address pairs of a port (Neutron's default `max_allowed_address_pair`).
pub const MAX_ADDRESS_PAIRS: usize = 10;

/// A validated port create (`create_port`).
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
    pairs: Option<&[super::wire::AddressPairDto]>,
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

/// Validates create port (`create_port`). Whether the IP fits the subnet is checked with the
/// subnet.
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

/// A validated port update (`update_port`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortPatch {
    pub name: Option<String>,
    pub security_groups: Option<Vec<String>>,
    pub allowed_address_pairs: Option<Vec<AddressPair>>,
    pub extra_dhcp_opts: Option<Vec<DhcpOpt>>,
}

/// Validates update port (`update_port`).
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
    /// The network namespace of the service's VPC (the VPC's `netns`), if any.
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
