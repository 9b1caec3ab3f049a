//! Request and response bodies of the endpoint and connection operations
//! (`accept_or_reject_endpoint`, `create_endpoint`, `delete_endpoint`, `delete_endpoint_policy`,
//! `list_endpoint_info_details`, `list_endpoints`, `list_service_connections`,
//! `update_endpoint_connections_desc`, `update_endpoint_policy`, `update_endpoint_routetable`,
//! `update_endpoint_white`, `upgrade_endpoint`), as the official SDK sends and reads them.

use crate::endpoint::{ConnectionAction, Endpoint, EndpointStatus};
use crate::service::wire::PUBLIC_BORDER_GROUP;
use crate::service::{ResourceError, ServiceType};
use crate::tag::wire::{tag_views, TagDto, TagView};
use crate::time::format_millis;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// Body of create endpoint (`create_endpoint`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct CreateEndpointRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = true, nullable = false, format = "uuid")]
    pub endpoint_service_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = true, nullable = false)]
    pub vpc_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subnet_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enable_dns: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<TagDto>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub routetables: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port_ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub whitelist: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enable_whitelist: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// A list of policy statements (gateway endpoints).
    #[schema(value_type = Option<Vec<Object>>)]
    pub policy_statement: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// A policy document object (interface endpoints).
    #[schema(value_type = Option<Object>)]
    pub policy_document: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv6_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub specification_name: Option<String>,
}

/// Tells an absent field (`None`) from an explicit `null` (`Some(None)`).
fn present_or_null<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// Body of update endpoint whitelist (`update_endpoint_white`). An absent `whitelist` leaves it;
/// `null` or `[]` clears it (Terraform sends `null` to clear).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct UpdateEndpointWhiteRequest {
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present_or_null"
    )]
    pub whitelist: Option<Option<Vec<String>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enable_whitelist: Option<bool>,
}

/// Body of update endpoint policy (`update_endpoint_policy`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct UpdateEndpointPolicyRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    /// A list of policy statements (gateway endpoints).
    #[schema(value_type = Option<Vec<Object>>)]
    pub policy_statement: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// A policy document object (interface endpoints).
    #[schema(value_type = Option<Object>)]
    pub policy_document: Option<Value>,
}

/// Body of update route tables (`update_endpoint_routetable`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct UpdateRoutetablesRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = true, nullable = false)]
    pub routetables: Option<Vec<String>>,
}

/// Response of update route tables (`update_endpoint_routetable`); `error` only when a binding
/// failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UpdateRoutetablesResponse {
    pub routetables: Vec<String>,
}

/// Body of the v2 endpoint upgrade (`upgrade_endpoint`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct UpgradeEndpointRequest {
    /// `start` (the only action).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^start$")]
    #[schema(required = true, nullable = false)]
    pub action: Option<String>,
}

/// `QueryError` on endpoints and connections.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct QueryErrorView {
    pub error_code: String,
    pub error_message: String,
}

impl From<&ResourceError> for QueryErrorView {
    fn from(e: &ResourceError) -> Self {
        QueryErrorView {
            error_code: e.code.clone(),
            error_message: e.message.clone(),
        }
    }
}

/// The endpoint object (`create_endpoint`, `delete_endpoint_policy`, `list_endpoint_info_details`,
/// `list_endpoints`, `update_endpoint_policy`, `update_endpoint_white`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EndpointView {
    pub id: String,
    #[schema(value_type = ServiceType)]
    pub service_type: String,
    #[schema(value_type = EndpointStatus)]
    pub status: String,
    pub active_status: Vec<String>,
    pub enable_status: String,
    pub specification_name: String,
    pub endpoint_service_name: String,
    pub marker_id: u32,
    pub endpoint_service_id: String,
    pub enable_dns: bool,
    pub dns_names: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub ip: Option<String>,
    pub vpc_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub subnet_id: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub project_id: String,
    pub tags: Vec<TagView>,
    pub error: Vec<QueryErrorView>,
    pub whitelist: Vec<String>,
    pub enable_whitelist: bool,
    pub routetables: Vec<String>,
    pub description: String,
    /// The policy statements (`null` when none is set).
    #[schema(required = true, value_type = Option<Vec<Object>>)]
    pub policy_statement: Option<Value>,
    /// The policy document (`null` when none is set).
    #[schema(required = true, value_type = Option<Object>)]
    pub policy_document: Option<Value>,
    pub public_border_group: String,
    pub ip_version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub ipv6_address: Option<String>,
}

impl From<&Endpoint> for EndpointView {
    fn from(e: &Endpoint) -> Self {
        EndpointView {
            id: e.id.to_string(),
            service_type: e.service_type.as_str().into(),
            status: e.status.as_str().into(),
            active_status: vec!["active".into()],
            enable_status: "enable".into(),
            specification_name: e.specification_name.clone(),
            endpoint_service_name: e.service_name.clone(),
            marker_id: e.marker_id,
            endpoint_service_id: e.service_id.to_string(),
            enable_dns: e.enable_dns,
            dns_names: if e.enable_dns {
                e.dns_names.clone()
            } else {
                Vec::new()
            },
            ip: e.ip.filter(|_| e.shows_ip()).map(|ip| ip.to_string()),
            vpc_id: e.vpc_id.to_string(),
            subnet_id: e.subnet_id.map(|s| s.to_string()),
            created_at: format_millis(e.created_at),
            updated_at: format_millis(e.updated_at),
            project_id: e.project_id.clone(),
            tags: tag_views(&e.tags),
            error: e.error.iter().map(QueryErrorView::from).collect(),
            whitelist: if e.enable_whitelist {
                e.whitelist.clone()
            } else {
                Vec::new()
            },
            enable_whitelist: e.enable_whitelist,
            routetables: e.routetables.clone(),
            description: e.description.clone(),
            policy_statement: e.policy_statement.clone(),
            policy_document: e.policy_document.clone(),
            public_border_group: PUBLIC_BORDER_GROUP.into(),
            ip_version: e.ip_version.clone(),
            ipv6_address: e.ipv6_address.clone(),
        }
    }
}

/// Response of list endpoints (`list_endpoints`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ListEndpointsResponse {
    pub endpoints: Vec<EndpointView>,
    pub total_count: u64,
}

/// A connection: the owner's view of an endpoint (`accept_or_reject_endpoint`,
/// `list_service_connections`, `update_endpoint_connections_desc`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ConnectionView {
    pub id: String,
    pub marker_id: u32,
    pub created_at: String,
    pub updated_at: String,
    pub domain_id: String,
    pub error: Vec<QueryErrorView>,
    pub status: String,
    pub description: String,
}

impl From<&Endpoint> for ConnectionView {
    fn from(e: &Endpoint) -> Self {
        ConnectionView {
            id: e.id.to_string(),
            marker_id: e.marker_id,
            created_at: format_millis(e.created_at),
            updated_at: format_millis(e.updated_at),
            domain_id: e.domain_id.clone(),
            error: e.error.iter().map(QueryErrorView::from).collect(),
            status: e.status.as_str().into(),
            description: e.connection_description.clone(),
        }
    }
}

/// Response of list connections (`list_service_connections`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ListConnectionsResponse {
    pub connections: Vec<ConnectionView>,
    pub total_count: u64,
}

/// An entry of the connections action (`accept_or_reject_endpoint`) and connection descriptions
/// (`update_endpoint_connections_desc`) responses: the connection's fields (with a per-endpoint
/// refusal in `error`); for an id the service has no endpoint of, only the id and the error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ConnectionEntry {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub marker_id: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain_id: Option<String>,
    pub error: Vec<QueryErrorView>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

impl ConnectionEntry {
    /// The entry of a connection, with extra per-endpoint errors.
    pub fn known(view: ConnectionView, errors: Vec<QueryErrorView>) -> Self {
        let mut error = view.error;
        error.extend(errors);
        ConnectionEntry {
            id: view.id,
            marker_id: Some(view.marker_id),
            created_at: Some(view.created_at),
            updated_at: Some(view.updated_at),
            domain_id: Some(view.domain_id),
            error,
            status: Some(view.status),
            description: Some(view.description),
        }
    }

    /// The entry of an id that names no endpoint of the service.
    pub fn unknown(id: String, error: Vec<QueryErrorView>) -> Self {
        ConnectionEntry {
            id,
            marker_id: None,
            created_at: None,
            updated_at: None,
            domain_id: None,
            error,
            status: None,
            description: None,
        }
    }
}

/// Response of the connections action (`accept_or_reject_endpoint`) and connection descriptions
/// (`update_endpoint_connections_desc`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ConnectionsResponse {
    pub connections: Vec<ConnectionEntry>,
}

/// Body of the connections action (`accept_or_reject_endpoint`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct ConnectionActionRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = ConnectionAction, required = true)]
    pub action: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = true, nullable = false)]
    pub endpoints: Option<Vec<String>>,
}

/// One entry of the connection descriptions body (`update_endpoint_connections_desc`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct ConnectionDescDto {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = true, nullable = false)]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = true, nullable = false)]
    pub description: Option<String>,
}

/// Body of connection descriptions (`update_endpoint_connections_desc`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct ConnectionsDescRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = true, nullable = false)]
    pub connections: Option<Vec<ConnectionDescDto>>,
}
