//! Endpoint-service rules: turning create, update and rename requests into domain values, and
//! what each status allows. Field rules follow the seed page and `vpcep-api.md` ("Field rules").
//!
//! The stored `EndpointService` and its values (statuses, port mappings, backends) live here;
//! [`wire`] holds the request and response bodies.

pub mod wire;

use crate::ids::parse_uuid;
use crate::service::wire::{
    AddServerResourcesRequest, CreateServiceRequest, PortDto, UpdateServiceRequest,
    UpgradeServiceRequest,
};
use crate::tag::{parse_tags, Tag};
use crate::time::Millis;
use crate::{str_enum, ApiError, ApiResult, ErrorCode};
use serde::Serialize;
use std::collections::HashMap;
use std::net::Ipv4Addr;
use uuid::Uuid;

/// Most port mappings one service may carry.
pub const MAX_PORTS: usize = 200;

/// Longest short service name.
pub const MAX_SERVICE_NAME: usize = 16;

/// Longest description, in characters.
pub const MAX_DESCRIPTION: usize = 128;

str_enum! {
    /// `server_type`: what kind of backend `port_id` is.
    pub enum ServerType { Vm = "VM", Vip = "VIP", Lb = "LB" }
}

str_enum! {
    /// `service_type`: interface services are reached at an address, gateway ones through routes.
    pub enum ServiceType { Interface = "interface", Gateway = "gateway" }
}

str_enum! {
    /// `tcp_proxy`: how the backend learns the client's address (TOA and/or PROXY protocol).
    pub enum TcpProxy {
        Close = "close",
        ToaOpen = "toa_open",
        ProxyOpen = "proxy_open",
        Open = "open",
        ProxyVni = "proxy_vni",
    }
}

str_enum! {
    /// Endpoint service `status`: `creating` → `available` | `failed`; delete → `deleting` → gone.
    pub enum ServiceStatus {
        Creating = "creating",
        Available = "available",
        Failed = "failed",
        Deleting = "deleting",
    }
}

str_enum! {
    /// Port-mapping `protocol`; the API knows only TCP.
    pub enum Protocol { Tcp = "TCP" }
}

str_enum! {
    /// `ip_version` of a service.
    pub enum IpVersion { Ipv4 = "ipv4", Ipv6 = "ipv6" }
}

/// One `ports` entry: consumers connect to `client_port`, the backend listens on `server_port`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct PortMapping {
    /// Port on the endpoint side, 1–65535.
    pub client_port: u16,
    /// Port on the backend, 1–65535.
    pub server_port: u16,
    /// Always TCP.
    pub protocol: Protocol,
}

impl Serialize for Protocol {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// A failure recorded on a resource (`error[]` on the wire).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceError {
    /// Error code, e.g. `EndPoint.3001`.
    pub code: String,
    /// Why it failed.
    pub message: String,
}

/// A backend resource attached with the v2 add-server-resources call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ServerResource {
    /// The backend's id (e.g. a load balancer's).
    pub resource_id: String,
    /// Its availability zone, if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub availability_zone_id: Option<String>,
}

/// A VPC endpoint service as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointService {
    /// Service id (UUID).
    pub id: Uuid,
    /// Owning project.
    pub project_id: String,
    /// Owning account.
    pub domain_id: String,
    /// The short name given by the owner (`service_name` in requests), if any.
    pub short_name: Option<String>,
    /// `region.short_name.id` or `region.id`: the `service_name` clients see.
    pub full_name: String,
    /// Backend port.
    pub port_id: Uuid,
    /// Backend VPC.
    pub vpc_id: Uuid,
    /// Backend kind.
    pub server_type: ServerType,
    /// Interface or gateway.
    pub service_type: ServiceType,
    /// Whether connections wait for the owner's acceptance.
    pub approval_enabled: bool,
    /// Lifecycle status.
    pub status: ServiceStatus,
    /// Client-address passing mode.
    pub tcp_proxy: TcpProxy,
    /// Port mappings, in the order they were sent.
    pub ports: Vec<PortMapping>,
    /// Tags, sorted by key.
    pub tags: Vec<Tag>,
    /// Free text, ≤ 128 characters.
    pub description: String,
    /// Backend address override for the interface-VLAN scenario.
    pub ip: Option<String>,
    /// `ipv4` or `ipv6`.
    pub ip_version: IpVersion,
    /// SNAT network for IPv6 services.
    pub snat_network_id: Option<String>,
    /// Whether endpoints may carry custom policies.
    pub enable_policy: bool,
    /// `basic`, plus `profession` after the v2 upgrade.
    pub supported_editions: Vec<String>,
    /// Failure detail when `status` is `failed`.
    pub error: Option<ResourceError>,
    /// Creation time.
    pub created_at: Millis,
    /// Last change.
    pub updated_at: Millis,
    /// Backends added with add-server-resources (v2).
    pub server_resources: Vec<ServerResource>,
    /// Connections in `creating`, `pendingAcceptance` or `accepted` (computed on read).
    pub connection_count: i64,
    /// Endpoints of any status that target this service (computed on read).
    pub endpoint_count: i64,
}

impl EndpointService {
    /// Delete is refused while endpoints are connected: pending (`creating`,
    /// `pendingAcceptance`), `accepted`, or `failed` (wanted, waiting for the data plane)
    /// (EndPoint.3006). Rejected endpoints do not hold the service (AWS's rule: reject the
    /// available and pending connections first); they stay their owners', who delete them.
    pub fn ensure_deletable(&self) -> crate::ApiResult<()> {
        if self.connection_count > 0 {
            return Err(crate::ApiError::new(
                crate::ErrorCode::ServiceInUse,
                format!(
                    "The endpoint service is being used: {} endpoint(s) are pending or accepted; reject them first",
                    self.connection_count
                ),
            ));
        }
        Ok(())
    }

    /// The full service name: `region.name.id`, or `region.id` without a name.
    pub fn full_name(region: &str, short_name: Option<&str>, id: Uuid) -> String {
        match short_name {
            Some(name) if !name.is_empty() => format!("{region}.{name}.{id}"),
            _ => format!("{region}.{id}"),
        }
    }

    /// The id a full name ends with (see [`EndpointService::full_name`]); `None` when it ends
    /// with no id, so that no service has that name. A service found by this id has the name
    /// only if its stored full name is equal.
    pub fn id_in_full_name(full_name: &str) -> Option<Uuid> {
        let (_, id) = full_name.rsplit_once('.')?;
        Uuid::try_parse(id).ok()
    }
}

/// A validated create request (`create_endpoint_service`). Who creates it (project, domain) comes
/// from the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewService {
    pub port_id: Uuid,
    pub vpc_id: Uuid,
    pub short_name: Option<String>,
    pub server_type: ServerType,
    pub service_type: ServiceType,
    pub approval_enabled: bool,
    pub tcp_proxy: TcpProxy,
    pub ports: Vec<PortMapping>,
    pub tags: Vec<Tag>,
    pub description: String,
    pub ip: Option<String>,
    pub ip_version: IpVersion,
    pub snat_network_id: Option<String>,
    pub enable_policy: bool,
}

/// A validated update (`update_endpoint_service`): `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServicePatch {
    pub approval_enabled: Option<bool>,
    /// `Some(None)` removes the short name.
    pub short_name: Option<Option<String>>,
    /// Replaces the whole list.
    pub ports: Option<Vec<PortMapping>>,
    pub port_id: Option<Uuid>,
    pub tcp_proxy: Option<TcpProxy>,
    pub description: Option<String>,
    pub ip: Option<String>,
}

impl ServicePatch {
    /// True when the patch changes nothing.
    pub fn is_empty(&self) -> bool {
        *self == ServicePatch::default()
    }

    /// Applies the patch to a stored service (names are rebuilt by the caller, who knows the region).
    pub fn apply_to(&self, s: &mut EndpointService) {
        if let Some(v) = self.approval_enabled {
            s.approval_enabled = v;
        }
        if let Some(v) = &self.short_name {
            s.short_name = v.clone();
        }
        if let Some(v) = &self.ports {
            s.ports = v.clone();
        }
        if let Some(v) = self.port_id {
            s.port_id = v;
        }
        if let Some(v) = self.tcp_proxy {
            s.tcp_proxy = v;
        }
        if let Some(v) = &self.description {
            s.description = v.clone();
        }
        if let Some(v) = &self.ip {
            s.ip = Some(v.clone());
        }
    }
}

fn mandatory<'a, T>(field: &str, v: &'a Option<T>) -> ApiResult<&'a T> {
    v.as_ref()
        .ok_or_else(|| ApiError::param(format!("{field} is mandatory")))
}

/// Validates a short service name: ≤ 16 of letters, digits, `_`, `-`; empty means "no name".
pub fn parse_service_name(field: &str, name: &str) -> ApiResult<Option<String>> {
    if name.is_empty() {
        return Ok(None);
    }
    let ok = name.len() <= MAX_SERVICE_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !ok {
        return Err(ApiError::new(
            ErrorCode::InvalidServiceName,
            format!(
                "Invalid {field}: {name:?}; use at most {MAX_SERVICE_NAME} letters, digits, '_' or '-'"
            ),
        ));
    }
    Ok(Some(name.to_string()))
}

/// Validates a description: ≤ 128 characters, none of `<` `>`.
pub fn parse_description(field: &str, d: &str) -> ApiResult<String> {
    if d.chars().count() > MAX_DESCRIPTION || d.contains(['<', '>']) {
        return Err(ApiError::param(format!(
            "Invalid {field}: at most {MAX_DESCRIPTION} characters, without '<' or '>'"
        )));
    }
    Ok(d.to_string())
}

fn parse_port_number(field: &str, v: Option<i64>) -> ApiResult<u16> {
    match v {
        None => Err(ApiError::new(
            ErrorCode::InvalidServicePort,
            format!("{field} is mandatory"),
        )),
        Some(n) if (1..=65535).contains(&n) => Ok(n as u16),
        Some(n) => Err(ApiError::new(
            ErrorCode::InvalidServicePort,
            format!("Invalid {field}: {n}; it must be from 1 to 65535"),
        )),
    }
}

/// Validates `ports`: 1–200 mappings, ports 1–65535, protocol TCP (default), no mapping twice
/// and no `client_port` mapped twice (a listener can forward to one backend port only).
pub fn parse_ports(dtos: &[PortDto]) -> ApiResult<Vec<PortMapping>> {
    if dtos.is_empty() {
        return Err(ApiError::new(
            ErrorCode::InvalidServicePort,
            "ports must contain at least one port mapping",
        ));
    }
    if dtos.len() > MAX_PORTS {
        return Err(ApiError::new(
            ErrorCode::TooManyPorts,
            format!(
                "ports has {} mappings; at most {MAX_PORTS} are allowed",
                dtos.len()
            ),
        ));
    }
    let mut out = Vec::with_capacity(dtos.len());
    let mut by_client: HashMap<(Protocol, u16), usize> = HashMap::new();
    for (i, p) in dtos.iter().enumerate() {
        let client_port = parse_port_number(&format!("ports[{i}].client_port"), p.client_port)?;
        let server_port = parse_port_number(&format!("ports[{i}].server_port"), p.server_port)?;
        let protocol = match p.protocol.as_deref() {
            None => Protocol::Tcp,
            Some(s) => Protocol::parse(
                &format!("ports[{i}].protocol"),
                &s.to_ascii_uppercase(),
                ErrorCode::InvalidProtocol,
            )?,
        };
        if let Some(j) = by_client.insert((protocol, client_port), i) {
            let what = if out
                .get(j)
                .is_some_and(|m: &PortMapping| m.server_port == server_port)
            {
                "repeats the mapping of"
            } else {
                "maps the same client_port as"
            };
            return Err(ApiError::new(
                ErrorCode::InvalidServicePort,
                format!("ports[{i}] ({protocol} {client_port}->{server_port}) {what} ports[{j}]"),
            ));
        }
        out.push(PortMapping {
            client_port,
            server_port,
            protocol,
        });
    }
    Ok(out)
}

/// Validates `ip`: the backend's IPv4 address or domain name (interface-VLAN scenario).
fn parse_ip(field: &str, ip: &str) -> ApiResult<String> {
    if let Ok(a) = ip.parse::<Ipv4Addr>() {
        return Ok(a.to_string());
    }
    let is_label = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    let name = ip.strip_suffix('.').unwrap_or(ip);
    let looks_numeric = name
        .split('.')
        .all(|l| l.bytes().all(|b| b.is_ascii_digit()));
    if name.len() <= 253 && name.contains('.') && !looks_numeric && name.split('.').all(is_label) {
        return Ok(name.to_ascii_lowercase());
    }
    Err(ApiError::new(
        ErrorCode::InvalidIp,
        format!("Invalid {field}: {ip:?} is neither an IPv4 address nor a domain name"),
    ))
}

fn parse_tcp_proxy(v: Option<&str>) -> ApiResult<Option<TcpProxy>> {
    v.map(|s| TcpProxy::parse("tcp_proxy", s, ErrorCode::Parameter))
        .transpose()
}

/// Validates a create request (`create_endpoint_service`) into a [`NewService`].
pub fn parse_create(req: &CreateServiceRequest) -> ApiResult<NewService> {
    let port_id = parse_uuid(
        "port_id",
        mandatory("port_id", &req.port_id)?,
        ErrorCode::InvalidPortId,
    )?;
    let vpc_id = parse_uuid(
        "vpc_id",
        mandatory("vpc_id", &req.vpc_id)?,
        ErrorCode::InvalidVpcId,
    )?;
    let server_type = ServerType::parse(
        "server_type",
        mandatory("server_type", &req.server_type)?,
        ErrorCode::InvalidServerType,
    )?;
    let ports = parse_ports(mandatory("ports", &req.ports)?)?;
    let short_name = match &req.service_name {
        Some(n) => parse_service_name("service_name", n)?,
        None => None,
    };
    let service_type = match &req.service_type {
        Some(s) => ServiceType::parse("service_type", s, ErrorCode::Parameter)?,
        None => ServiceType::Interface,
    };
    let ip_version = match &req.ip_version {
        Some(s) => IpVersion::parse("ip_version", s, ErrorCode::Parameter)?,
        None => IpVersion::Ipv4,
    };
    let snat_network_id = match &req.snat_network_id {
        Some(s) => Some(parse_uuid("snat_network_id", s, ErrorCode::Parameter)?.to_string()),
        None => None,
    };
    if ip_version == IpVersion::Ipv6 && snat_network_id.is_none() {
        return Err(ApiError::param(
            "snat_network_id is mandatory when ip_version is ipv6",
        ));
    }
    Ok(NewService {
        port_id,
        vpc_id,
        short_name,
        server_type,
        service_type,
        approval_enabled: req.approval_enabled.unwrap_or(true),
        tcp_proxy: parse_tcp_proxy(req.tcp_proxy.as_deref())?.unwrap_or(TcpProxy::Close),
        ports,
        tags: parse_tags(req.tags.as_deref())?,
        description: parse_description("description", req.description.as_deref().unwrap_or(""))?,
        ip: req.ip.as_deref().map(|ip| parse_ip("ip", ip)).transpose()?,
        ip_version,
        snat_network_id,
        enable_policy: req.enable_policy.unwrap_or(false),
    })
}

/// Validates an update request (`update_endpoint_service`) into a [`ServicePatch`].
pub fn parse_update(req: &UpdateServiceRequest) -> ApiResult<ServicePatch> {
    Ok(ServicePatch {
        approval_enabled: req.approval_enabled,
        short_name: req
            .service_name
            .as_deref()
            .map(|n| parse_service_name("service_name", n))
            .transpose()?,
        ports: req.ports.as_deref().map(parse_ports).transpose()?,
        port_id: req
            .port_id
            .as_deref()
            .map(|p| parse_uuid("port_id", p, ErrorCode::InvalidPortId))
            .transpose()?,
        tcp_proxy: parse_tcp_proxy(req.tcp_proxy.as_deref())?,
        description: req
            .description
            .as_deref()
            .map(|d| parse_description("description", d))
            .transpose()?,
        ip: req.ip.as_deref().map(|ip| parse_ip("ip", ip)).transpose()?,
    })
}

/// Validates the body of rename (`update_endpoint_service_name`): `endpoint_service_name`, 0–16
/// characters.
pub fn parse_rename(name: Option<&str>) -> ApiResult<Option<String>> {
    let name = name.ok_or_else(|| ApiError::param("endpoint_service_name is mandatory"))?;
    parse_service_name("endpoint_service_name", name)
}

impl ServiceStatus {
    /// Update and rename are refused while the service is being deleted (EndPoint.3045).
    pub fn ensure_modifiable(self) -> ApiResult<()> {
        match self {
            ServiceStatus::Deleting => Err(ApiError::new(
                ErrorCode::ServiceStateConflict,
                "The endpoint service is being deleted and cannot be modified",
            )),
            _ => Ok(()),
        }
    }
}

/// Most backend resources one service may hold, and one add-server-resources call may carry.
pub const MAX_SERVER_RESOURCES: usize = 20;

/// Longest `resource_id` and `availability_zone_id`.
pub const MAX_RESOURCE_ID: usize = 64;

/// Validates the body of v2 add-server-resources (`add_endpoint_service_server_resource`): 1–20
/// entries, each with a non-empty `resource_id` of at most 64 characters; `availability_zone_id` at
/// most 64 (empty means none). A `resource_id` given twice is kept once, at its first position,
/// with the last availability zone given.
pub fn parse_server_resources(req: &AddServerResourcesRequest) -> ApiResult<Vec<ServerResource>> {
    let dtos = mandatory("server_resources", &req.server_resources)?;
    if dtos.is_empty() {
        return Err(ApiError::param(
            "server_resources must contain at least one resource",
        ));
    }
    if dtos.len() > MAX_SERVER_RESOURCES {
        return Err(ApiError::new(
            ErrorCode::BatchTooLarge,
            format!(
                "server_resources has {} entries; at most {MAX_SERVER_RESOURCES} are allowed",
                dtos.len()
            ),
        ));
    }
    let mut out: Vec<ServerResource> = Vec::with_capacity(dtos.len());
    for (i, d) in dtos.iter().enumerate() {
        let id = d.resource_id.as_deref().unwrap_or("");
        if id.is_empty() || id.chars().count() > MAX_RESOURCE_ID {
            return Err(ApiError::param(format!(
                "Invalid server_resources[{i}].resource_id: {id:?}; it is mandatory, 1 to {MAX_RESOURCE_ID} characters"
            )));
        }
        let az = d.availability_zone_id.clone().filter(|a| !a.is_empty());
        if az
            .as_ref()
            .is_some_and(|a| a.chars().count() > MAX_RESOURCE_ID)
        {
            return Err(ApiError::param(format!(
                "Invalid server_resources[{i}].availability_zone_id: at most {MAX_RESOURCE_ID} characters"
            )));
        }
        match out.iter_mut().find(|r| r.resource_id == id) {
            Some(seen) => seen.availability_zone_id = az,
            None => out.push(ServerResource {
                resource_id: id.to_string(),
                availability_zone_id: az,
            }),
        }
    }
    Ok(out)
}

/// Adds backend resources to a service's list (`add_endpoint_service_server_resource`): a
/// `resource_id` already there takes the new entry in place; the list may hold at most
/// [`MAX_SERVER_RESOURCES`] (else EndPoint.0002).
pub fn merge_server_resources(
    list: &mut Vec<ServerResource>,
    new: Vec<ServerResource>,
) -> ApiResult<()> {
    let mut merged = list.clone();
    for r in new {
        match merged.iter_mut().find(|m| m.resource_id == r.resource_id) {
            Some(m) => *m = r,
            None => merged.push(r),
        }
    }
    if merged.len() > MAX_SERVER_RESOURCES {
        return Err(ApiError::param(format!(
            "The endpoint service would have {} server resources; at most {MAX_SERVER_RESOURCES} are allowed",
            merged.len()
        )));
    }
    *list = merged;
    Ok(())
}

str_enum! {
    /// `action` of the v2 service upgrade (`upgrade_endpoint_service`).
    pub enum UpgradeAction { Upgrade = "upgrade", Rollback = "rollback" }
}

impl UpgradeAction {
    /// The `supported_editions` a service has after the action.
    pub fn editions(self) -> Vec<String> {
        match self {
            UpgradeAction::Upgrade => vec!["basic".into(), "profession".into()],
            UpgradeAction::Rollback => vec!["basic".into()],
        }
    }
}

/// Validates the v2 upgrade body (`upgrade_endpoint_service`): none (what the SDK sends) or no
/// `action` means `upgrade`; another action than `upgrade` | `rollback` is EndPoint.0007.
pub fn parse_upgrade(req: Option<&UpgradeServiceRequest>) -> ApiResult<UpgradeAction> {
    match req.and_then(|r| r.action.as_deref()) {
        None => Ok(UpgradeAction::Upgrade),
        Some(a) => UpgradeAction::parse("action", a, ErrorCode::InvalidAction),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tag::wire::TagDto;

    fn port(c: i64, s: i64) -> PortDto {
        PortDto {
            client_port: Some(c),
            server_port: Some(s),
            protocol: Some("TCP".into()),
        }
    }

    fn valid() -> CreateServiceRequest {
        CreateServiceRequest {
            port_id: Some("4189d3c2-8882-4871-a3c2-d380272eed88".into()),
            vpc_id: Some("4189d3c2-8882-4871-a3c2-d380272eed80".into()),
            server_type: Some("VM".into()),
            ports: Some(vec![port(8080, 90), port(8081, 80)]),
            ..Default::default()
        }
    }

    fn err(req: CreateServiceRequest) -> ApiError {
        parse_create(&req).unwrap_err()
    }

    #[test]
    fn seed_example_gets_documented_defaults() {
        let s = parse_create(&valid()).unwrap();
        assert!(s.approval_enabled);
        assert_eq!(s.service_type, ServiceType::Interface);
        assert_eq!(s.tcp_proxy, TcpProxy::Close);
        assert_eq!(s.ports.len(), 2);
        assert_eq!(s.ports[0].client_port, 8080);
        assert_eq!(s.short_name, None);
    }

    #[test]
    fn mandatory_fields_are_named() {
        for (field, req) in [
            (
                "port_id",
                CreateServiceRequest {
                    port_id: None,
                    ..valid()
                },
            ),
            (
                "vpc_id",
                CreateServiceRequest {
                    vpc_id: None,
                    ..valid()
                },
            ),
            (
                "server_type",
                CreateServiceRequest {
                    server_type: None,
                    ..valid()
                },
            ),
            (
                "ports",
                CreateServiceRequest {
                    ports: None,
                    ..valid()
                },
            ),
        ] {
            let e = err(req);
            assert_eq!(e.code, ErrorCode::Parameter);
            assert!(e.msg.contains(field), "{field}: {}", e.msg);
        }
    }

    #[test]
    fn rejects_bad_enums_ids_and_names_with_their_codes() {
        assert_eq!(
            err(CreateServiceRequest {
                server_type: Some("BMS".into()),
                ..valid()
            })
            .code,
            ErrorCode::InvalidServerType
        );
        assert_eq!(
            err(CreateServiceRequest {
                port_id: Some("nope".into()),
                ..valid()
            })
            .code,
            ErrorCode::InvalidPortId
        );
        assert_eq!(
            err(CreateServiceRequest {
                vpc_id: Some("nope".into()),
                ..valid()
            })
            .code,
            ErrorCode::InvalidVpcId
        );
        assert_eq!(
            err(CreateServiceRequest {
                tcp_proxy: Some("on".into()),
                ..valid()
            })
            .code,
            ErrorCode::Parameter
        );
        assert_eq!(
            err(CreateServiceRequest {
                service_type: Some("lan".into()),
                ..valid()
            })
            .code,
            ErrorCode::Parameter
        );
        assert_eq!(
            err(CreateServiceRequest {
                service_name: Some("a.b".into()),
                ..valid()
            })
            .code,
            ErrorCode::InvalidServiceName
        );
        assert_eq!(
            err(CreateServiceRequest {
                service_name: Some("x".repeat(17)),
                ..valid()
            })
            .code,
            ErrorCode::InvalidServiceName
        );
        assert_eq!(
            err(CreateServiceRequest {
                description: Some("<b>".into()),
                ..valid()
            })
            .code,
            ErrorCode::Parameter
        );
        assert_eq!(
            err(CreateServiceRequest {
                description: Some("d".repeat(129)),
                ..valid()
            })
            .code,
            ErrorCode::Parameter
        );
        assert_eq!(
            err(CreateServiceRequest {
                ip: Some("300.1.1.1".into()),
                ..valid()
            })
            .code,
            ErrorCode::InvalidIp
        );
        assert_eq!(
            err(CreateServiceRequest {
                tags: Some(vec![TagDto {
                    key: Some("a=b".into()),
                    value: None
                }]),
                ..valid()
            })
            .code,
            ErrorCode::TagInvalid
        );
        let ok = parse_create(&CreateServiceRequest {
            service_name: Some("My_svc-1".into()),
            description: Some("d".repeat(128)),
            ..valid()
        })
        .unwrap();
        assert_eq!(ok.short_name.as_deref(), Some("My_svc-1"));
    }

    #[test]
    fn port_rules() {
        let code = |ports: Vec<PortDto>| {
            err(CreateServiceRequest {
                ports: Some(ports),
                ..valid()
            })
            .code
        };
        assert_eq!(code(vec![]), ErrorCode::InvalidServicePort);
        assert_eq!(code(vec![port(0, 80)]), ErrorCode::InvalidServicePort);
        assert_eq!(code(vec![port(80, 65536)]), ErrorCode::InvalidServicePort);
        assert_eq!(
            code(vec![PortDto {
                client_port: None,
                server_port: Some(1),
                protocol: None
            }]),
            ErrorCode::InvalidServicePort
        );
        assert_eq!(
            code(vec![PortDto {
                protocol: Some("UDP".into()),
                ..port(1, 1)
            }]),
            ErrorCode::InvalidProtocol
        );
        assert_eq!(
            code(vec![port(80, 8080), port(80, 8080)]),
            ErrorCode::InvalidServicePort
        );
        assert_eq!(
            code(vec![port(80, 8080), port(80, 8081)]),
            ErrorCode::InvalidServicePort
        );
        assert_eq!(
            code((1..=201).map(|p| port(p, p)).collect()),
            ErrorCode::TooManyPorts
        );
        // Two client ports may share a backend port, and protocol defaults to TCP.
        let ok = parse_ports(&[
            port(80, 8080),
            PortDto {
                protocol: None,
                ..port(81, 8080)
            },
        ])
        .unwrap();
        assert_eq!(ok[1].protocol, Protocol::Tcp);
        assert_eq!(
            parse_ports(&(1..=200).map(|p| port(p, p)).collect::<Vec<_>>())
                .unwrap()
                .len(),
            200
        );
    }

    #[test]
    fn the_id_is_read_back_from_a_full_name() {
        let id = Uuid::new_v4();
        for short in [Some("web"), Some("a.b"), None] {
            let name = EndpointService::full_name("local-1", short, id);
            assert_eq!(EndpointService::id_in_full_name(&name), Some(id));
        }
        for no_id in [
            "",
            "local-1",
            "local-1.web",
            "local-1.web.not-a-uuid",
            &format!("{id}"),
        ] {
            assert_eq!(EndpointService::id_in_full_name(no_id), None, "{no_id}");
        }
    }

    #[test]
    fn full_name_has_region_and_id() {
        let id = Uuid::nil();
        assert_eq!(
            EndpointService::full_name("local-1", Some("web"), id),
            format!("local-1.web.{id}")
        );
        assert_eq!(
            EndpointService::full_name("local-1", None, id),
            format!("local-1.{id}")
        );
    }

    #[test]
    fn update_parses_only_given_fields() {
        let p = parse_update(&UpdateServiceRequest {
            approval_enabled: Some(false),
            service_name: Some(String::new()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(p.approval_enabled, Some(false));
        assert_eq!(p.short_name, Some(None));
        assert!(p.ports.is_none());
        assert!(parse_update(&UpdateServiceRequest::default())
            .unwrap()
            .is_empty());
        assert_eq!(
            parse_update(&UpdateServiceRequest {
                ports: Some(vec![]),
                ..Default::default()
            })
            .unwrap_err()
            .code,
            ErrorCode::InvalidServicePort
        );
    }

    #[test]
    fn deleting_services_are_not_modifiable() {
        assert_eq!(
            ServiceStatus::Deleting
                .ensure_modifiable()
                .unwrap_err()
                .code,
            ErrorCode::ServiceStateConflict
        );
        assert!(ServiceStatus::Available.ensure_modifiable().is_ok());
    }

    #[test]
    fn server_resources_rules() {
        use crate::service::wire::ServerResourceDto;
        let dto = |id: Option<&str>, az: Option<&str>| ServerResourceDto {
            resource_id: id.map(String::from),
            availability_zone_id: az.map(String::from),
        };
        let req = |v: Vec<ServerResourceDto>| AddServerResourcesRequest {
            server_resources: Some(v),
        };
        let got = parse_server_resources(&req(vec![
            dto(Some("lb-1"), Some("az1")),
            dto(Some("lb-2"), Some("")),
            dto(Some("lb-1"), Some("az2")),
        ]))
        .unwrap();
        assert_eq!(
            got,
            vec![
                ServerResource {
                    resource_id: "lb-1".into(),
                    availability_zone_id: Some("az2".into())
                },
                ServerResource {
                    resource_id: "lb-2".into(),
                    availability_zone_id: None
                },
            ]
        );
        let code = |r: AddServerResourcesRequest| parse_server_resources(&r).unwrap_err().code;
        assert_eq!(
            code(AddServerResourcesRequest::default()),
            ErrorCode::Parameter
        );
        assert_eq!(code(req(vec![])), ErrorCode::Parameter);
        assert_eq!(code(req(vec![dto(None, None)])), ErrorCode::Parameter);
        assert_eq!(code(req(vec![dto(Some(""), None)])), ErrorCode::Parameter);
        assert_eq!(
            code(req(vec![dto(Some(&"x".repeat(65)), None)])),
            ErrorCode::Parameter
        );
        assert_eq!(
            code(req(vec![dto(Some("a"), Some(&"z".repeat(65)))])),
            ErrorCode::Parameter
        );
        let many = (0..21)
            .map(|i| dto(Some(&format!("lb-{i}")), None))
            .collect();
        assert_eq!(code(req(many)), ErrorCode::BatchTooLarge);
        assert!(parse_server_resources(&req(vec![dto(Some(&"x".repeat(64)), None)])).is_ok());

        let r = |id: &str| ServerResource {
            resource_id: id.into(),
            availability_zone_id: None,
        };
        let mut list: Vec<ServerResource> = (0..19).map(|i| r(&format!("lb-{i}"))).collect();
        merge_server_resources(&mut list, vec![r("lb-0"), r("new")]).unwrap();
        assert_eq!(list.len(), 20);
        let before = list.clone();
        assert_eq!(
            merge_server_resources(&mut list, vec![r("one-too-many")])
                .unwrap_err()
                .code,
            ErrorCode::Parameter
        );
        assert_eq!(list, before, "a refused merge changes nothing");
    }

    #[test]
    fn upgrade_defaults_to_upgrade_and_knows_rollback() {
        let req = |a: Option<&str>| UpgradeServiceRequest {
            action: a.map(String::from),
            enable_multi_server: None,
        };
        assert_eq!(parse_upgrade(None).unwrap(), UpgradeAction::Upgrade);
        assert_eq!(
            parse_upgrade(Some(&req(None))).unwrap(),
            UpgradeAction::Upgrade
        );
        assert_eq!(
            parse_upgrade(Some(&req(Some("rollback")))).unwrap(),
            UpgradeAction::Rollback
        );
        assert_eq!(
            parse_upgrade(Some(&req(Some("start")))).unwrap_err().code,
            ErrorCode::InvalidAction
        );
        assert_eq!(
            UpgradeAction::Upgrade.editions(),
            vec!["basic", "profession"]
        );
        assert_eq!(UpgradeAction::Rollback.editions(), vec!["basic"]);
    }
}
