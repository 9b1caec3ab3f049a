//! Request and response bodies of the VPCEP API, field for field as the official SDK
//! (`huaweicloudsdkvpcep` 3.1.219) sends and reads them (`shared/reference/vpcep-api-surface.md`).
//!
//! Request fields are all `Option` so that a missing mandatory field gets the API's own error
//! (naming the field) from validation rather than a serde message; wrong JSON types are caught
//! by the deserializer and reported with the field's path.

use crate::service::{
    EndpointService, IpVersion, PortMapping, Protocol, ServerResource, ServerType, ServiceStatus,
    ServiceType, TcpProxy, UpgradeAction,
};
use crate::tag::wire::{tag_views, TagDto, TagView};
use crate::time::format_millis;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `PortList` in requests. Ports are wide integers so out-of-range values reach validation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PortDto {
    /// Endpoint-side port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 65535)]
    pub client_port: Option<i64>,
    /// Backend port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 65535)]
    pub server_port: Option<i64>,
    /// `TCP` (default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Protocol>)]
    pub protocol: Option<String>,
}

/// Body of create endpoint service (`create_endpoint_service`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct CreateServiceRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = true, nullable = false, format = "uuid")]
    pub port_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vip_port_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = true, nullable = false, format = "uuid")]
    pub vpc_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval_enabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<ServiceType>)]
    pub service_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = ServerType, required = true)]
    pub server_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = true, nullable = false)]
    pub ports: Option<Vec<PortDto>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<TcpProxy>)]
    pub tcp_proxy: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<TagDto>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<IpVersion>)]
    pub ip_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snat_network_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enable_policy: Option<bool>,
}

/// Body of update endpoint service (`update_endpoint_service`); every field optional, `ports`
/// replaces the list.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct UpdateServiceRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval_enabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ports: Option<Vec<PortDto>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vip_port_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<TcpProxy>)]
    pub tcp_proxy: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
}

/// Body of rename endpoint service (`update_endpoint_service_name`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct RenameServiceRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = true, nullable = false)]
    pub endpoint_service_name: Option<String>,
}

/// Response of rename (`update_endpoint_service_name`): the new full name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RenameServiceResponse {
    pub endpoint_service_name: String,
}

/// `Error` entry on services; both key pairs are written because the SDK reads `code`/`message`
/// and the public docs show `error_code`/`error_message`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ServiceErrorView {
    pub code: String,
    pub message: String,
    pub error_code: String,
    pub error_message: String,
}

/// The endpoint service object every service operation answers with (`create_endpoint_service`,
/// `list_endpoint_service`, `list_service_details`, `update_endpoint_service`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ServiceView {
    pub id: String,
    pub port_id: String,
    pub service_name: String,
    #[schema(value_type = ServerType)]
    pub server_type: String,
    pub vpc_id: String,
    pub approval_enabled: bool,
    #[schema(value_type = ServiceStatus)]
    pub status: String,
    #[schema(value_type = ServiceType)]
    pub service_type: String,
    pub created_at: String,
    pub updated_at: String,
    pub project_id: String,
    pub domain_id: String,
    pub cidr_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub ip: Option<String>,
    pub ports: Vec<PortView>,
    #[schema(value_type = TcpProxy)]
    pub tcp_proxy: String,
    pub tags: Vec<TagView>,
    pub error: Vec<ServiceErrorView>,
    pub connection_count: i64,
    pub description: String,
    pub enable_policy: bool,
    #[schema(value_type = IpVersion)]
    pub ip_version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub snat_network_id: Option<String>,
    pub supported_editions: Vec<String>,
    pub public_border_group: String,
    /// Backends added with the v2 add-server-resources call
    /// (`add_endpoint_service_server_resource`); not in the SDK's model, which ignores it. `[]`
    /// when none.
    #[serde(default)]
    #[schema(required = true)]
    pub server_resources: Vec<ServerResource>,
}

/// `PortList` in responses (documented as `PortMappingView`: the VPC API has its own `PortView`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(as = PortMappingView)]
pub struct PortView {
    pub client_port: u16,
    pub server_port: u16,
    #[schema(value_type = Protocol)]
    pub protocol: String,
}

/// Where a resource sits (answered as `public_border_group`).
pub const PUBLIC_BORDER_GROUP: &str = "center";

impl From<&PortMapping> for PortView {
    fn from(p: &PortMapping) -> Self {
        PortView {
            client_port: p.client_port,
            server_port: p.server_port,
            protocol: p.protocol.as_str().to_string(),
        }
    }
}

impl From<&EndpointService> for ServiceView {
    fn from(s: &EndpointService) -> Self {
        ServiceView::from(s.clone())
    }
}

/// By value: a page of services moves its strings into the views instead of copying them.
impl From<EndpointService> for ServiceView {
    fn from(s: EndpointService) -> Self {
        ServiceView {
            id: s.id.to_string(),
            port_id: s.port_id.to_string(),
            service_name: s.full_name,
            server_type: s.server_type.as_str().into(),
            vpc_id: s.vpc_id.to_string(),
            approval_enabled: s.approval_enabled,
            status: s.status.as_str().into(),
            service_type: s.service_type.as_str().into(),
            created_at: format_millis(s.created_at),
            updated_at: format_millis(s.updated_at),
            project_id: s.project_id,
            domain_id: s.domain_id,
            cidr_type: "internal".into(),
            ip: s.ip,
            ports: s.ports.iter().map(PortView::from).collect(),
            tcp_proxy: s.tcp_proxy.as_str().into(),
            tags: tag_views(&s.tags),
            error: s
                .error
                .into_iter()
                .map(|e| ServiceErrorView {
                    error_code: e.code.clone(),
                    error_message: e.message.clone(),
                    code: e.code,
                    message: e.message,
                })
                .collect(),
            connection_count: s.connection_count,
            description: s.description,
            enable_policy: s.enable_policy,
            ip_version: s.ip_version.as_str().into(),
            snat_network_id: s.snat_network_id,
            supported_editions: s.supported_editions,
            public_border_group: PUBLIC_BORDER_GROUP.into(),
            server_resources: s.server_resources,
        }
    }
}

/// Response of list endpoint services (`list_endpoint_service`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ListServicesResponse {
    pub endpoint_services: Vec<ServiceView>,
    pub total_count: u64,
}

/// Response of describe (`list_service_describe_details`): the basic, backend-free summary any
/// account may see.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DescribeServiceView {
    pub id: String,
    pub service_name: String,
    #[schema(value_type = ServiceType)]
    pub service_type: String,
    pub created_at: String,
    pub is_charge: bool,
    pub public_border_group: String,
    pub enable_policy: bool,
}

impl From<&EndpointService> for DescribeServiceView {
    fn from(s: &EndpointService) -> Self {
        DescribeServiceView {
            id: s.id.to_string(),
            service_name: s.full_name.clone(),
            service_type: s.service_type.as_str().into(),
            created_at: format_millis(s.created_at),
            is_charge: false,
            public_border_group: PUBLIC_BORDER_GROUP.into(),
            enable_policy: s.enable_policy,
        }
    }
}

/// One entry of the public service list (`list_service_public_details`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PublicServiceView {
    pub id: String,
    pub owner: String,
    pub service_name: String,
    #[schema(value_type = ServiceType)]
    pub service_type: String,
    pub created_at: String,
    pub is_charge: bool,
    pub enable_policy: bool,
}

impl From<&EndpointService> for PublicServiceView {
    fn from(s: &EndpointService) -> Self {
        PublicServiceView {
            id: s.id.to_string(),
            owner: s.domain_id.clone(),
            service_name: s.full_name.clone(),
            service_type: s.service_type.as_str().into(),
            created_at: format_millis(s.created_at),
            is_charge: false,
            enable_policy: s.enable_policy,
        }
    }
}

/// Response of the public service list (`list_service_public_details`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ListPublicServicesResponse {
    pub endpoint_services: Vec<PublicServiceView>,
    pub total_count: u64,
}

/// `ServerResource` in the v2 add-server-resources body (`add_endpoint_service_server_resource`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct ServerResourceDto {
    /// The backend's id (mandatory).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = true, nullable = false)]
    pub resource_id: Option<String>,
    /// Its availability zone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub availability_zone_id: Option<String>,
}

/// Body of v2 add-server-resources (`add_endpoint_service_server_resource`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct AddServerResourcesRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = true, nullable = false)]
    pub server_resources: Option<Vec<ServerResourceDto>>,
}

/// Body of v2 service upgrade (`upgrade_endpoint_service`), which the SDK sends empty; the current
/// docs describe `{"action": "upgrade"|"rollback", "enable_multi_server": bool}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct UpgradeServiceRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<UpgradeAction>)]
    pub action: Option<String>,
    /// Accepted and ignored: every service here may take several backends.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enable_multi_server: Option<bool>,
}
