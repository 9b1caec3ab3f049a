//! Network operations (the VPC API v1 subset) and the operator's inventory preload.

use crate::{Caller, Ctx};
use rand::Rng;
use serde::Deserialize;
use uuid::Uuid;
use vpcep_domain::list::{parse_limit, QueryParams};
use vpcep_domain::network::port::{
    parse_create_port, parse_update_port, random_mac, NewPort, Port,
};
use vpcep_domain::network::subnet::{parse_create_subnet, parse_update_subnet, PrivateIp, Subnet};
use vpcep_domain::network::vpc::{
    check_vpc_cidr_holds_subnets, parse_create_vpc, parse_update_vpc, Vpc,
};
use vpcep_domain::network::wire::{
    CreatePortRequest, CreateSubnetOption, CreateSubnetRequest, CreateVpcOption, CreateVpcRequest,
    UpdatePortRequest, UpdateSubnetRequest, UpdateVpcRequest,
};
use vpcep_domain::time::now_millis;
use vpcep_domain::{ApiError, ApiResult, ErrorCode};
use vpcep_store::PortFilter;

/// Largest (and default) page of the VPC API lists.
pub const MAX_VPC_LIMIT: u32 = 2000;

fn id_or(code: ErrorCode, kind: &str, id: &str) -> ApiResult<Uuid> {
    Uuid::try_parse(id)
        .ok()
        .filter(|_| id.len() == 36)
        .ok_or_else(|| ApiError::new(code, format!("{kind} {id} does not exist")))
}

fn missing<T>(v: Option<T>, code: ErrorCode, kind: &str, id: &str) -> ApiResult<T> {
    v.ok_or_else(|| ApiError::new(code, format!("{kind} {id} does not exist")))
}

fn body<T: Clone>(v: &Option<T>, name: &str, code: ErrorCode) -> ApiResult<T> {
    v.clone()
        .ok_or_else(|| ApiError::new(code, format!("{name} is mandatory")))
}

fn limit_marker(q: &QueryParams, code: ErrorCode) -> ApiResult<(u32, Option<String>)> {
    let limit = match q.get("limit") {
        None => MAX_VPC_LIMIT,
        Some(v) => parse_limit(Some(v), MAX_VPC_LIMIT).map_err(|e| ApiError::new(code, e.msg))?,
    };
    Ok((limit, q.get("marker").map(str::to_string)))
}

fn new_vni() -> u32 {
    rand::thread_rng().gen_range(1..=0x00FF_FFFF)
}

/// `create_vpc`.
pub async fn create_vpc(ctx: &Ctx, caller: &Caller, req: &CreateVpcRequest) -> ApiResult<Vpc> {
    let new = parse_create_vpc(&body(&req.vpc, "vpc", ErrorCode::VpcParam)?)?;
    let vpc = Vpc::new(
        &caller.project_id,
        new,
        vpcep_domain::ids::new_id(),
        new_vni(),
        now_millis(),
    );
    ctx.store
        .create_vpc(&vpc, caller.account.quotas.vpc)
        .await?;
    Ok(vpc)
}

/// `show_vpc`.
pub async fn show_vpc(ctx: &Ctx, caller: &Caller, id: &str) -> ApiResult<Vpc> {
    let uuid = id_or(ErrorCode::VpcMissing, "VPC", id)?;
    missing(
        ctx.store.get_vpc(&caller.project_id, uuid).await?,
        ErrorCode::VpcMissing,
        "VPC",
        id,
    )
}

/// `list_vpcs` (`limit`, `marker`, `id`).
pub async fn list_vpcs(ctx: &Ctx, caller: &Caller, q: &QueryParams) -> ApiResult<Vec<Vpc>> {
    let (limit, marker) = limit_marker(q, ErrorCode::VpcParam)?;
    let mut vpcs = ctx
        .store
        .list_vpcs(&caller.project_id, q.get("id"), limit, marker.as_deref())
        .await?;
    if let Some(ep) = q
        .get("enterprise_project_id")
        .filter(|e| *e != "all_granted_eps")
    {
        vpcs.retain(|v| v.enterprise_project_id == ep);
    }
    Ok(vpcs)
}

/// `update_vpc`; a new CIDR must still contain every subnet.
pub async fn update_vpc(
    ctx: &Ctx,
    caller: &Caller,
    id: &str,
    req: &UpdateVpcRequest,
) -> ApiResult<Vpc> {
    let patch = parse_update_vpc(&body(&req.vpc, "vpc", ErrorCode::VpcParam)?)?;
    let uuid = id_or(ErrorCode::VpcMissing, "VPC", id)?;
    Ok(ctx
        .store
        .modify_vpc(
            &caller.project_id,
            uuid,
            now_millis(),
            std::sync::Arc::new(move |v, subnets| {
                patch.apply_to(v);
                check_vpc_cidr_holds_subnets(v.cidr, subnets)
            }),
        )
        .await?)
}

/// `delete_vpc` (refused while it has subnets).
pub async fn delete_vpc(ctx: &Ctx, caller: &Caller, id: &str) -> ApiResult<()> {
    let uuid = id_or(ErrorCode::VpcMissing, "VPC", id)?;
    Ok(ctx.store.delete_vpc(&caller.project_id, uuid).await?)
}

/// `create_subnet`.
pub async fn create_subnet(
    ctx: &Ctx,
    caller: &Caller,
    req: &CreateSubnetRequest,
) -> ApiResult<Subnet> {
    let new = parse_create_subnet(&body(&req.subnet, "subnet", ErrorCode::SubnetParam)?)?;
    let subnet = Subnet::new(
        &caller.project_id,
        new,
        vpcep_domain::ids::new_id(),
        vpcep_domain::ids::new_id(),
        now_millis(),
    );
    ctx.store
        .create_subnet(&subnet, caller.account.quotas.subnet)
        .await?;
    Ok(subnet)
}

/// `show_subnet`.
pub async fn show_subnet(ctx: &Ctx, caller: &Caller, id: &str) -> ApiResult<Subnet> {
    let uuid = id_or(ErrorCode::SubnetMissing, "Subnet", id)?;
    missing(
        ctx.store.get_subnet(&caller.project_id, uuid).await?,
        ErrorCode::SubnetMissing,
        "Subnet",
        id,
    )
}

/// `list_subnets` (`limit`, `marker`, `vpc_id`).
pub async fn list_subnets(ctx: &Ctx, caller: &Caller, q: &QueryParams) -> ApiResult<Vec<Subnet>> {
    let (limit, marker) = limit_marker(q, ErrorCode::SubnetParam)?;
    Ok(ctx
        .store
        .list_subnets(
            &caller.project_id,
            q.get("vpc_id"),
            limit,
            marker.as_deref(),
        )
        .await?)
}

/// `update_subnet` (the path's VPC must be the subnet's).
pub async fn update_subnet(
    ctx: &Ctx,
    caller: &Caller,
    vpc_id: &str,
    id: &str,
    req: &UpdateSubnetRequest,
) -> ApiResult<Subnet> {
    let patch = parse_update_subnet(&body(&req.subnet, "subnet", ErrorCode::SubnetParam)?)?;
    let uuid = id_or(ErrorCode::SubnetMissing, "Subnet", id)?;
    let vpc = id_or(ErrorCode::VpcMissing, "VPC", vpc_id)?;
    let shown = id.to_string();
    Ok(ctx
        .store
        .modify_subnet(
            &caller.project_id,
            uuid,
            now_millis(),
            std::sync::Arc::new(move |s| {
                if s.vpc_id != vpc {
                    return Err(ApiError::new(
                        ErrorCode::SubnetMissing,
                        format!("Subnet {shown} does not exist in VPC {vpc}"),
                    ));
                }
                patch.apply_to(s);
                Ok(())
            }),
        )
        .await?)
}

/// `delete_subnet` (refused while addresses are in use).
pub async fn delete_subnet(ctx: &Ctx, caller: &Caller, vpc_id: &str, id: &str) -> ApiResult<()> {
    let uuid = id_or(ErrorCode::SubnetMissing, "Subnet", id)?;
    let vpc = id_or(ErrorCode::VpcMissing, "VPC", vpc_id)?;
    Ok(ctx
        .store
        .delete_subnet(&caller.project_id, vpc, uuid)
        .await?)
}

/// `create_port` (allocating its address).
pub async fn create_port(ctx: &Ctx, caller: &Caller, req: &CreatePortRequest) -> ApiResult<Port> {
    let new = parse_create_port(&body(&req.port, "port", ErrorCode::PortParam)?)?;
    let mac = random_mac(rand::thread_rng().gen());
    Ok(ctx
        .store
        .create_port(
            &caller.project_id,
            new,
            vpcep_domain::ids::new_id(),
            mac,
            now_millis(),
            caller.account.quotas.port,
        )
        .await?)
}

/// `show_port`.
pub async fn show_port(ctx: &Ctx, caller: &Caller, id: &str) -> ApiResult<Port> {
    let uuid = id_or(ErrorCode::PortMissing, "Port", id)?;
    missing(
        ctx.store.get_port(&caller.project_id, uuid).await?,
        ErrorCode::PortMissing,
        "Port",
        id,
    )
}

/// `list_ports` with the documented filters.
pub async fn list_ports(ctx: &Ctx, caller: &Caller, q: &QueryParams) -> ApiResult<Vec<Port>> {
    let (limit, marker) = limit_marker(q, ErrorCode::PortParam)?;
    let admin_state_up = match q.get("admin_state_up") {
        None => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(v) => {
            return Err(ApiError::new(
                ErrorCode::PortParam,
                format!("Invalid admin_state_up: {v:?}"),
            ))
        }
    };
    let status = match q.get("status") {
        None => None,
        Some(s @ ("ACTIVE" | "DOWN" | "BUILD")) => Some(s.to_string()),
        Some(v) => {
            return Err(ApiError::new(
                ErrorCode::PortParam,
                format!("Invalid status: {v:?}; use ACTIVE, BUILD or DOWN"),
            ))
        }
    };
    let all = |k: &str| {
        q.get_all(k)
            .into_iter()
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    // `fixed_ips` values are `ip_address=...` or `subnet_id=...` (a bare value is an address).
    let mut ip_addresses = Vec::new();
    let mut fixed_subnet_ids = Vec::new();
    for v in q.get_all("fixed_ips") {
        for part in v.split('&') {
            match part.split_once('=') {
                Some(("subnet_id", s)) => fixed_subnet_ids.push(s.to_string()),
                Some(("ip_address", ip)) => ip_addresses.push(ip.to_string()),
                Some((k, _)) => {
                    return Err(ApiError::new(
                        ErrorCode::PortParam,
                        format!("Invalid fixed_ips filter {k:?}; use ip_address= or subnet_id="),
                    ))
                }
                None => ip_addresses.push(part.to_string()),
            }
        }
    }
    let filter = PortFilter {
        ids: all("id"),
        names: all("name"),
        network_ids: all("network_id"),
        mac_addresses: all("mac_address"),
        device_ids: all("device_id"),
        device_owners: all("device_owner"),
        status,
        admin_state_up,
        ip_addresses,
        fixed_subnet_ids,
        security_groups: all("security_groups"),
    };
    Ok(ctx
        .store
        .list_ports(&caller.project_id, &filter, limit, marker.as_deref())
        .await?)
}

/// `update_port`.
pub async fn update_port(
    ctx: &Ctx,
    caller: &Caller,
    id: &str,
    req: &UpdatePortRequest,
) -> ApiResult<Port> {
    let patch = parse_update_port(&body(&req.port, "port", ErrorCode::PortParam)?)?;
    let uuid = id_or(ErrorCode::PortMissing, "Port", id)?;
    Ok(ctx
        .store
        .modify_port(
            &caller.project_id,
            uuid,
            now_millis(),
            std::sync::Arc::new(move |p| {
                patch.apply_to(p);
                Ok(())
            }),
        )
        .await?)
}

/// `delete_port` (refused while an endpoint service uses it).
pub async fn delete_port(ctx: &Ctx, caller: &Caller, id: &str) -> ApiResult<()> {
    let uuid = id_or(ErrorCode::PortMissing, "Port", id)?;
    Ok(ctx.store.delete_port(&caller.project_id, uuid).await?)
}

/// `list_privateips`: a subnet's allocated addresses.
pub async fn list_private_ips(
    ctx: &Ctx,
    caller: &Caller,
    subnet_id: &str,
    q: &QueryParams,
) -> ApiResult<Vec<PrivateIp>> {
    let uuid = id_or(ErrorCode::SubnetMissing, "Subnet", subnet_id)?;
    let (limit, marker) = limit_marker(q, ErrorCode::SubnetParam)?;
    Ok(ctx
        .store
        .list_private_ips(&caller.project_id, uuid, limit, marker.as_deref())
        .await?)
}

/// The operator's inventory file (`--inventory`): VPCs with their subnets and ports, created at
/// start when absent (by id), so that a fresh server can be scripted without API calls.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InventoryFile {
    /// `[[vpc]]`.
    #[serde(default)]
    pub vpc: Vec<VpcEntry>,
}

/// `[[vpc]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VpcEntry {
    /// Owning project.
    pub project_id: String,
    /// Fixed id (UUID).
    pub id: Uuid,
    /// Name.
    #[serde(default)]
    pub name: String,
    /// CIDR.
    pub cidr: String,
    /// Network namespace the data plane uses for this VPC's addresses.
    #[serde(default)]
    pub netns: Option<String>,
    /// `[[vpc.subnet]]`.
    #[serde(default)]
    pub subnet: Vec<SubnetEntry>,
}

/// `[[vpc.subnet]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubnetEntry {
    /// Fixed id (UUID).
    pub id: Uuid,
    /// Name.
    pub name: String,
    /// CIDR inside the VPC's.
    pub cidr: String,
    /// Gateway address inside the subnet.
    pub gateway_ip: String,
    /// `[[vpc.subnet.port]]`.
    #[serde(default)]
    pub port: Vec<PortEntry>,
}

/// `[[vpc.subnet.port]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortEntry {
    /// Fixed id (UUID).
    pub id: Uuid,
    /// Name.
    #[serde(default)]
    pub name: String,
    /// Fixed IP (allocated when absent).
    #[serde(default)]
    pub ip_address: Option<String>,
    /// `compute:<az>` for a VM NIC, `neutron:LOADBALANCERV2` for a load balancer VIP.
    #[serde(default)]
    pub device_owner: String,
}

impl InventoryFile {
    /// Reads an inventory file.
    pub fn load(path: &std::path::Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| format!("invalid inventory file {}: {e}", path.display()))
    }
}

/// The quota the operator's inventory preload creates under: none. What it creates counts
/// toward the project's usage, so tenants then create only what their quotas leave.
const PRELOAD_QUOTA: u64 = u64::MAX;

/// Creates what the inventory file lists and is not stored yet; answers how many resources it
/// created. Safe to run on several nodes at once.
pub async fn preload(ctx: &Ctx, file: &InventoryFile) -> ApiResult<usize> {
    let mut created = 0;
    let now = now_millis();
    for v in &file.vpc {
        let project = v.project_id.as_str();
        if ctx.store.get_vpc(project, v.id).await?.is_none() {
            let opt = CreateVpcOption {
                name: Some(v.name.clone()),
                cidr: Some(v.cidr.clone()),
                ..Default::default()
            };
            let mut vpc = Vpc::new(project, parse_create_vpc(&opt)?, v.id, new_vni(), now);
            vpc.netns = v.netns.clone();
            match ctx.store.create_vpc(&vpc, PRELOAD_QUOTA).await {
                Ok(()) => created += 1,
                Err(e) if ctx.store.get_vpc(project, v.id).await?.is_none() => return Err(e.into()),
                Err(_) => {}
            }
        }
        for s in &v.subnet {
            if ctx.store.get_subnet(project, s.id).await?.is_none() {
                let opt = CreateSubnetOption {
                    name: Some(s.name.clone()),
                    cidr: Some(s.cidr.clone()),
                    gateway_ip: Some(s.gateway_ip.clone()),
                    vpc_id: Some(v.id.to_string()),
                    ..Default::default()
                };
                let subnet = Subnet::new(
                    project,
                    parse_create_subnet(&opt)?,
                    s.id,
                    vpcep_domain::ids::new_id(),
                    now,
                );
                match ctx.store.create_subnet(&subnet, PRELOAD_QUOTA).await {
                    Ok(()) => created += 1,
                    Err(e) if ctx.store.get_subnet(project, s.id).await?.is_none() => {
                        return Err(e.into())
                    }
                    Err(_) => {}
                }
            }
            for p in &s.port {
                if ctx.store.get_port(project, p.id).await?.is_none() {
                    let ip = p
                        .ip_address
                        .as_deref()
                        .map(|ip| {
                            vpcep_domain::network::parse_ipv4(
                                "port.ip_address",
                                ip,
                                ErrorCode::PortParam,
                            )
                        })
                        .transpose()?;
                    let mut new = NewPort::simple(s.id, ip, &p.device_owner);
                    new.name = p.name.clone();
                    let mac = random_mac(rand::thread_rng().gen());
                    match ctx
                        .store
                        .create_port(project, new, p.id, mac, now, PRELOAD_QUOTA)
                        .await
                    {
                        Ok(_) => created += 1,
                        Err(e) if ctx.store.get_port(project, p.id).await?.is_none() => {
                            return Err(e.into())
                        }
                        Err(_) => {}
                    }
                }
            }
        }
    }
    Ok(created)
}
