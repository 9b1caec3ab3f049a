//! Domain values: what the store keeps and the control layer reasons about.

use crate::{str_enum, time::Millis};
use serde::Serialize;
use uuid::Uuid;

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
    /// `resource_type` of the tag operations (#31–#33).
    pub enum ResourceKind { EndpointService = "endpoint_service", Endpoint = "endpoint" }
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

/// A resource tag.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
pub struct Tag {
    /// 1–36 characters.
    pub key: String,
    /// 0–43 characters.
    pub value: String,
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
}
