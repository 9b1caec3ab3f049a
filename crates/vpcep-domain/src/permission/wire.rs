//! Request and response bodies of the permission (whitelist) operations
//! `add_or_remove_service_permissions`, `batch_add_endpoint_service_permissions`,
//! `batch_remove_endpoint_service_permissions`, `list_service_permissions_details`,
//! `update_endpoint_service_permission_desc`, field for field as `huaweicloudsdkvpcep` 3.1.219
//! sends and reads them. Request fields are `Option` so that a missing one gets the API's own error
//! naming it.

use crate::permission::{Permission, PermissionAction, PermissionType};
use crate::time::format_millis;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Body of add or remove permissions (`add_or_remove_service_permissions`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct PermissionActionRequest {
    /// The entries, e.g. `iam:domain::<domain id>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = true, nullable = false)]
    pub permissions: Option<Vec<String>>,
    /// `domainId` (default) or `orgPath`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<PermissionType>)]
    pub permission_type: Option<String>,
    /// `add` or `remove`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = PermissionAction, required = true)]
    pub action: Option<String>,
}

/// Response of `add_or_remove_service_permissions`: the entries as given and their type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PermissionActionResponse {
    pub permissions: Vec<String>,
    #[schema(value_type = PermissionType)]
    pub permission_type: String,
}

/// `EpsAddPermissionRequest`: one entry of batch-create (`batch_add_endpoint_service_permissions`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct AddPermissionDto {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = true, nullable = false)]
    pub permission: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// Body of batch-create (`batch_add_endpoint_service_permissions`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct BatchAddPermissionsRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = true, nullable = false)]
    pub permissions: Option<Vec<AddPermissionDto>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<PermissionType>)]
    pub permission_type: Option<String>,
}

/// `EpsRemovePermissionRequest`: one entry of batch-delete
/// (`batch_remove_endpoint_service_permissions`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct RemovePermissionDto {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = true, nullable = false)]
    pub id: Option<String>,
}

/// Body of batch-delete (`batch_remove_endpoint_service_permissions`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct BatchRemovePermissionsRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = true, nullable = false)]
    pub permissions: Option<Vec<RemovePermissionDto>>,
}

/// `EpsUpdatePermissionDesc`: the nested object of `update_endpoint_service_permission_desc`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct PermissionDescDto {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = true, nullable = false)]
    pub description: Option<String>,
}

/// Body of update permission description (`update_endpoint_service_permission_desc`):
/// `{"permission": {"description"}}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct UpdatePermissionDescRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = true, nullable = false)]
    pub permission: Option<PermissionDescDto>,
}

/// A permission record on the wire: `PermissionObject` (`list_service_permissions_details`) and
/// `EpsPermission` (`batch_add_endpoint_service_permissions`,
/// `batch_remove_endpoint_service_permissions`, `update_endpoint_service_permission_desc`) share
/// this shape; `description` is always written (the reference recommends it for both).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PermissionView {
    pub id: String,
    /// The entry exactly as stored.
    pub permission: String,
    /// `domainId` or `orgPath`.
    #[schema(value_type = PermissionType)]
    pub permission_type: String,
    pub description: String,
    pub created_at: String,
}

impl From<&Permission> for PermissionView {
    fn from(p: &Permission) -> Self {
        PermissionView {
            id: p.id.to_string(),
            permission: p.permission.clone(),
            permission_type: p.permission_type.as_str().into(),
            description: p.description.clone(),
            created_at: format_millis(p.created_at),
        }
    }
}

/// Renders permission records for a response.
pub fn permission_views(ps: &[Permission]) -> Vec<PermissionView> {
    ps.iter().map(PermissionView::from).collect()
}

/// Response of the permission list (`list_service_permissions_details`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ListPermissionsResponse {
    pub permissions: Vec<PermissionView>,
    pub total_count: u64,
}

/// Response of `batch_add_endpoint_service_permissions`,
/// `batch_remove_endpoint_service_permissions` and `update_endpoint_service_permission_desc`: the
/// records created, deleted or changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PermissionsResponse {
    pub permissions: Vec<PermissionView>,
}
