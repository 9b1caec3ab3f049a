//! Subnets: the model, create and update rules (create_subnet, update_subnet), where a subnet
//! may sit in its VPC, and address allocation inside it.

use super::vpc::Vpc;
use super::wire::{CreateSubnetOption, UpdateSubnetOption};
use super::{
    count, ensure_at_most, err, parse_cidr, parse_description, parse_dhcp_opts, parse_ipv4,
    parse_name, DhcpOpt, MAX_NETWORK_TAGS,
};
use crate::ids::parse_uuid;
use crate::time::Millis;
use crate::{ApiResult, ErrorCode};
use ipnet::Ipv4Net;
use std::net::Ipv4Addr;
use uuid::Uuid;

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

/// An allocated address of a subnet (`privateips`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrivateIp {
    pub id: Uuid,
    pub subnet_id: Uuid,
    pub project_id: String,
    pub ip_address: Ipv4Addr,
    pub device_owner: String,
}

/// Most DNS servers of a subnet (`dnsList`): "a maximum of five DNS server addresses can be
/// configured" (OTC VPC API, create subnet).
pub const MAX_DNS_SERVERS: usize = 5;

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

/// Validates create subnet (`create_subnet`); where it sits in its VPC is checked by
/// [`check_subnet_fits`].
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

/// A validated subnet update (`update_subnet`).
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

/// Validates update subnet (`update_subnet`): `name` is mandatory there.
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
