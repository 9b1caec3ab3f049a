//! VPCs: the model, create and update rules (create_vpc, update_vpc), and whether a new CIDR
//! still holds the VPC's subnets.

use super::subnet::Subnet;
use super::wire::{CreateVpcOption, UpdateVpcOption};
use super::{
    count, ensure_at_most, err, parse_cidr, parse_description, parse_ipv4, parse_name,
    MAX_NETWORK_TAGS,
};
use crate::time::Millis;
use crate::{ApiResult, ErrorCode};
use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A static route of a VPC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Route {
    /// Destination CIDR.
    pub destination: String,
    /// Next-hop IPv4 address.
    pub nexthop: String,
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
    /// Network namespace the data plane uses for this VPC's addresses (set only by the operator's `--inventory` file).
    pub netns: Option<String>,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// Most static routes a VPC holds (update VPC `routes`): "by default, a maximum of 100 routes
/// can be added for a VPC" (OTC VPC user guide).
pub const MAX_ROUTES: usize = 100;

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

/// Validates create VPC (`create_vpc`).
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

/// A validated VPC update (`update_vpc`): `None` leaves a field.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VpcPatch {
    pub name: Option<String>,
    pub description: Option<String>,
    pub cidr: Option<Ipv4Net>,
    pub routes: Option<Vec<Route>>,
    pub enable_network_address_usage_metrics: Option<bool>,
}

/// Validates update VPC (`update_vpc`). Whether a new CIDR still holds the subnets is checked
/// against them by [`check_vpc_cidr_holds_subnets`].
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
