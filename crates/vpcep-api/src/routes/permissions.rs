//! Permissions (whitelist) of an endpoint service (`add_or_remove_service_permissions`,
//! `batch_add_endpoint_service_permissions`, `batch_remove_endpoint_service_permissions`,
//! `list_service_permissions_details`, `update_endpoint_service_permission_desc`) and quotas
//! (`list_quota_details`).

use crate::error::HttpResult;
use crate::extract::{JsonBody, Params};
use crate::openapi::ProjectPath;
use crate::routes::services::ServicePath;
use crate::routes::RouteTable;
use crate::AppState;
use axum::extract::{Path, State};
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;
use vpcep_control::{permissions, quotas, Caller};
use vpcep_domain::list::{SortDir, SortKey};
use vpcep_domain::permission::wire::{
    permission_views, BatchAddPermissionsRequest, BatchRemovePermissionsRequest,
    ListPermissionsResponse, PermissionActionRequest, PermissionActionResponse,
    PermissionsResponse, UpdatePermissionDescRequest,
};
use vpcep_domain::quota::{QuotaType, QuotasResponse};

/// `{vpc_endpoint_service_id}/permissions/{permission_id}`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct PermissionPath {
    /// The endpoint service's id.
    #[param(format = "uuid")]
    vpc_endpoint_service_id: String,
    /// The permission record's id.
    #[param(format = "uuid")]
    permission_id: String,
}

/// Query of the permission list (`list_service_permissions_details`); its pages hold at most 500
/// records.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(crate) struct PermissionListQuery {
    /// Part of the permission entry to match.
    #[param(nullable = false)]
    permission: Option<String>,
    /// Page size, 1 to 500 (default 10; else 400 EndPoint.0006).
    #[param(minimum = 1, maximum = 500, nullable = false)]
    limit: Option<u32>,
    /// Rows to skip (default 0; else 400 EndPoint.0010).
    #[param(minimum = 0, maximum = 9223372036854775807_i64, nullable = false)]
    offset: Option<u64>,
    /// Sort column (default `created_at`; else 400 EndPoint.0017).
    #[param(inline, nullable = false)]
    sort_key: Option<SortKey>,
    /// Sort direction (default `desc`; else 400 EndPoint.0018).
    #[param(inline, nullable = false)]
    sort_dir: Option<SortDir>,
}

/// Query of the quota list (`list_quota_details`).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(crate) struct QuotaQuery {
    /// Only this kind (default: `endpoint` and `endpoint_service`; `vpc`, `subnet` and `port`
    /// are the network resources'; else 400 EndPoint.0002).
    #[param(rename = "type", inline, nullable = false)]
    kind: Option<QuotaType>,
}

pub(crate) fn routes() -> RouteTable {
    let base = "/v1/{project_id}/vpc-endpoint-services/{vpc_endpoint_service_id}/permissions";
    RouteTable::new()
        .get(base, list)
        .post(&format!("{base}/action"), action)
        .post(&format!("{base}/batch-create"), batch_create)
        .post(&format!("{base}/batch-delete"), batch_delete)
        .put(&format!("{base}/{{permission_id}}"), describe)
        .get("/v1/{project_id}/quotas", list_quotas)
}

/// Handles `GET .../vpc-endpoint-services/{id}/permissions` (`list_service_permissions_details`).
#[utoipa::path(get, path = "/v1/{project_id}/vpc-endpoint-services/{vpc_endpoint_service_id}/permissions",
    operation_id = "list_service_permissions_details", tag = "Permissions",
    params(ProjectPath, ServicePath, PermissionListQuery),
    responses((status = 200, description = "A page of the service's permission records", body = ListPermissionsResponse)))]
pub(crate) async fn list(
    State(app): State<AppState>,
    caller: Caller,
    Path(p): Path<ServicePath>,
    Params(q): Params,
) -> HttpResult<Json<ListPermissionsResponse>> {
    let (items, total_count) =
        permissions::list_permissions(&app.ctx, &caller, &p.vpc_endpoint_service_id, &q).await?;
    Ok(Json(ListPermissionsResponse {
        permissions: permission_views(&items),
        total_count,
    }))
}

/// Handles `POST .../vpc-endpoint-services/{id}/permissions/action`
/// (`add_or_remove_service_permissions`): 200 echoing the entries and their type.
#[utoipa::path(post, path = "/v1/{project_id}/vpc-endpoint-services/{vpc_endpoint_service_id}/permissions/action",
    operation_id = "add_or_remove_service_permissions", tag = "Permissions",
    params(ProjectPath, ServicePath), request_body = PermissionActionRequest,
    responses((status = 200, description = "The entries as given and their type", body = PermissionActionResponse)))]
pub(crate) async fn action(
    State(app): State<AppState>,
    caller: Caller,
    Path(p): Path<ServicePath>,
    JsonBody(req): JsonBody<PermissionActionRequest>,
) -> HttpResult<Json<PermissionActionResponse>> {
    let edit =
        permissions::permission_action(&app.ctx, &caller, &p.vpc_endpoint_service_id, &req).await?;
    Ok(Json(PermissionActionResponse {
        permissions: edit.entries,
        permission_type: edit.permission_type.as_str().into(),
    }))
}

/// Handles `POST .../vpc-endpoint-services/{id}/permissions/batch-create`
/// (`batch_add_endpoint_service_permissions`).
#[utoipa::path(post, path = "/v1/{project_id}/vpc-endpoint-services/{vpc_endpoint_service_id}/permissions/batch-create",
    operation_id = "batch_add_endpoint_service_permissions", tag = "Permissions",
    params(ProjectPath, ServicePath), request_body = BatchAddPermissionsRequest,
    responses((status = 200, description = "The records created", body = PermissionsResponse)))]
pub(crate) async fn batch_create(
    State(app): State<AppState>,
    caller: Caller,
    Path(p): Path<ServicePath>,
    JsonBody(req): JsonBody<BatchAddPermissionsRequest>,
) -> HttpResult<Json<PermissionsResponse>> {
    let items =
        permissions::batch_add_permissions(&app.ctx, &caller, &p.vpc_endpoint_service_id, &req)
            .await?;
    Ok(Json(PermissionsResponse {
        permissions: permission_views(&items),
    }))
}

/// Handles `POST .../vpc-endpoint-services/{id}/permissions/batch-delete`
/// (`batch_remove_endpoint_service_permissions`).
#[utoipa::path(post, path = "/v1/{project_id}/vpc-endpoint-services/{vpc_endpoint_service_id}/permissions/batch-delete",
    operation_id = "batch_remove_endpoint_service_permissions", tag = "Permissions",
    params(ProjectPath, ServicePath), request_body = BatchRemovePermissionsRequest,
    responses((status = 200, description = "The records deleted", body = PermissionsResponse)))]
pub(crate) async fn batch_delete(
    State(app): State<AppState>,
    caller: Caller,
    Path(p): Path<ServicePath>,
    JsonBody(req): JsonBody<BatchRemovePermissionsRequest>,
) -> HttpResult<Json<PermissionsResponse>> {
    let items =
        permissions::batch_remove_permissions(&app.ctx, &caller, &p.vpc_endpoint_service_id, &req)
            .await?;
    Ok(Json(PermissionsResponse {
        permissions: permission_views(&items),
    }))
}

/// Handles `PUT .../vpc-endpoint-services/{id}/permissions/{permission_id}`
/// (`update_endpoint_service_permission_desc`).
#[utoipa::path(put, path = "/v1/{project_id}/vpc-endpoint-services/{vpc_endpoint_service_id}/permissions/{permission_id}",
    operation_id = "update_endpoint_service_permission_desc", tag = "Permissions",
    params(ProjectPath, PermissionPath), request_body = UpdatePermissionDescRequest,
    responses((status = 200, description = "The changed record", body = PermissionsResponse)))]
pub(crate) async fn describe(
    State(app): State<AppState>,
    caller: Caller,
    Path(p): Path<PermissionPath>,
    JsonBody(req): JsonBody<UpdatePermissionDescRequest>,
) -> HttpResult<Json<PermissionsResponse>> {
    let items = permissions::update_permission_description(
        &app.ctx,
        &caller,
        &p.vpc_endpoint_service_id,
        &p.permission_id,
        &req,
    )
    .await?;
    Ok(Json(PermissionsResponse {
        permissions: permission_views(&items),
    }))
}

/// Handles `GET /v1/{project_id}/quotas` (`list_quota_details`).
#[utoipa::path(get, path = "/v1/{project_id}/quotas",
    operation_id = "list_quota_details", tag = "Quotas",
    params(ProjectPath, QuotaQuery),
    responses((status = 200, description = "Used and allowed resources of the project", body = QuotasResponse)))]
pub(crate) async fn list_quotas(
    State(app): State<AppState>,
    caller: Caller,
    Params(q): Params,
) -> HttpResult<Json<QuotasResponse>> {
    let rows = quotas::list_quotas(&app.ctx, &caller, &q).await?;
    Ok(Json(QuotasResponse::new(&rows)))
}
