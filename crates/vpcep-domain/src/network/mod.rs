//! The network resources the endpoint APIs validate against: VPCs, subnets, ports and the
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
//!
//! # Layout
//! - [`vpc`], [`subnet`], [`port`]: each resource's model and rules.
//! - [`wire`]: the VPC API request and response bodies.
//! - here: the rules they share (CIDRs, addresses, names, list caps, the reserved range).

pub mod port;
pub mod subnet;
pub mod vpc;
pub mod wire;

use crate::{ApiError, ApiResult, ErrorCode};
use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;

/// The range VPC Endpoint uses internally; backend VPCs and their subnets must not overlap it
/// (the seed page's note).
pub const RESERVED_CIDR: &str = "198.19.128.0/17";

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

fn err(code: ErrorCode, msg: impl Into<String>) -> ApiError {
    ApiError::new(code, msg)
}

/// Most extra DHCP options of a subnet or port (vpcep's cap; the API documents a handful of
/// option names, each set once).
pub const MAX_DHCP_OPTS: usize = 20;

/// Most `tags` strings in create VPC and create subnet (the VPC API's tag limit of 10).
pub const MAX_NETWORK_TAGS: usize = crate::tag::MAX_TAGS;

/// Refuses a request list of more than `max` items with `code` naming `field`. Every list of an
/// network request passes here before any of its items is parsed, so that an oversized body
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

fn parse_dhcp_opts(
    field: &str,
    opts: Option<&[wire::DhcpOptDto]>,
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

/// Whether `net` overlaps 198.19.128.0/17, the range VPC Endpoint reserves.
pub fn overlaps_reserved(net: &Ipv4Net) -> bool {
    let reserved: Ipv4Net = RESERVED_CIDR.parse().expect("valid constant");
    net.contains(&reserved) || reserved.contains(net)
}

#[cfg(test)]
mod tests {
    use super::port::*;
    use super::subnet::*;
    use super::vpc::*;
    use super::wire::*;
    use super::*;
    use crate::service::ServerType;
    use uuid::Uuid;

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

    /// Every list of a network request has a cap, checked on its length before any item is
    /// parsed: one entry over the cap, made of items that are each invalid, answers the cap.
    #[test]
    fn network_lists_are_capped_before_their_items_are_parsed() {
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
