//! Permissions (whitelist) of an endpoint service (#3, #4, #5, #18, #27) and quotas (#14).

use crate::error::HttpResult;
use crate::extract::{JsonBody, Params};
use crate::routes::services::ServicePath;
use crate::AppState;
use axum::extract::{Path, State};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use vpcep_control::{permissions, quotas, Caller};
use vpcep_domain::quota::QuotasResponse;
use vpcep_domain::wire_permission::{
    permission_views, BatchAddPermissionsRequest, BatchRemovePermissionsRequest,
    ListPermissionsResponse, PermissionActionRequest, PermissionActionResponse,
    PermissionsResponse, UpdatePermissionDescRequest,
};

#[derive(Deserialize)]
struct PermissionPath {
    vpc_endpoint_service_id: String,
    permission_id: String,
}

pub fn routes() -> Router<AppState> {
    let base = "/v1/{project_id}/vpc-endpoint-services/{vpc_endpoint_service_id}/permissions";
    Router::new()
        .route(base, get(list))
        .route(&format!("{base}/action"), post(action))
        .route(&format!("{base}/batch-create"), post(batch_create))
        .route(&format!("{base}/batch-delete"), post(batch_delete))
        .route(&format!("{base}/{{permission_id}}"), put(describe))
        .route("/v1/{project_id}/quotas", get(list_quotas))
}

/// Handles `GET .../vpc-endpoint-services/{id}/permissions` (#18).
async fn list(
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

/// Handles `POST .../vpc-endpoint-services/{id}/permissions/action` (#3): 200 echoing the
/// entries and their type.
async fn action(
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

/// Handles `POST .../vpc-endpoint-services/{id}/permissions/batch-create` (#4).
async fn batch_create(
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

/// Handles `POST .../vpc-endpoint-services/{id}/permissions/batch-delete` (#5).
async fn batch_delete(
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

/// Handles `PUT .../vpc-endpoint-services/{id}/permissions/{permission_id}` (#27).
async fn describe(
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

/// Handles `GET /v1/{project_id}/quotas` (#14).
async fn list_quotas(
    State(app): State<AppState>,
    caller: Caller,
    Params(q): Params,
) -> HttpResult<Json<QuotasResponse>> {
    let rows = quotas::list_quotas(&app.ctx, &caller, &q).await?;
    Ok(Json(QuotasResponse::new(&rows)))
}
