//! Endpoint services (#7, #10, #12, #16, #17, #19, #25, #26; v2: #2, #29).

use crate::error::HttpResult;
use crate::extract::{parse_json, JsonBody, Params};
use crate::AppState;
use axum::extract::{Path, State};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use bytes::Bytes;
use http::StatusCode;
use serde::Deserialize;
use vpcep_control::{services, Caller};
use vpcep_domain::wire::{
    AddServerResourcesRequest, CreateServiceRequest, DescribeServiceView,
    ListPublicServicesResponse, ListServicesResponse, PublicServiceView, RenameServiceRequest,
    RenameServiceResponse, ServiceView, UpdateServiceRequest, UpgradeServiceRequest,
};

#[derive(Deserialize)]
pub(crate) struct ServicePath {
    pub(crate) vpc_endpoint_service_id: String,
}

pub fn routes() -> Router<AppState> {
    let base = "/v1/{project_id}/vpc-endpoint-services";
    Router::new()
        .route(base, get(list).post(create))
        .route(&format!("{base}/describe"), get(describe))
        .route(&format!("{base}/public"), get(public))
        .route(
            &format!("{base}/{{vpc_endpoint_service_id}}"),
            get(show).put(update).delete(delete),
        )
        .route(
            &format!("{base}/{{vpc_endpoint_service_id}}/name"),
            put(rename),
        )
        .route(
            "/v2/{project_id}/vpc-endpoint-services/{vpc_endpoint_service_id}/add-server-resources",
            post(add_server_resources),
        )
        .route(
            "/v2/{project_id}/vpc-endpoint-services/{vpc_endpoint_service_id}/upgrade",
            post(upgrade),
        )
}

/// Handles `POST /v1/{project_id}/vpc-endpoint-services` (#7): 200 with status `creating`.
async fn create(
    State(app): State<AppState>,
    caller: Caller,
    JsonBody(req): JsonBody<CreateServiceRequest>,
) -> HttpResult<Json<ServiceView>> {
    let s = services::create_service(&app.ctx, &caller, &req).await?;
    Ok(Json(ServiceView::from(&s)))
}

/// Handles `GET /v1/{project_id}/vpc-endpoint-services` (#12).
async fn list(
    State(app): State<AppState>,
    caller: Caller,
    Params(q): Params,
) -> HttpResult<Json<ListServicesResponse>> {
    let (items, total_count) = services::list_services(&app.ctx, &caller, &q).await?;
    Ok(Json(ListServicesResponse {
        endpoint_services: items.iter().map(ServiceView::from).collect(),
        total_count,
    }))
}

/// Handles `GET /v1/{project_id}/vpc-endpoint-services/{id}` (#17).
async fn show(
    State(app): State<AppState>,
    caller: Caller,
    Path(p): Path<ServicePath>,
) -> HttpResult<Json<ServiceView>> {
    let s = services::show_service(&app.ctx, &caller, &p.vpc_endpoint_service_id).await?;
    Ok(Json(ServiceView::from(&s)))
}

/// Handles `PUT /v1/{project_id}/vpc-endpoint-services/{id}` (#25).
async fn update(
    State(app): State<AppState>,
    caller: Caller,
    Path(p): Path<ServicePath>,
    JsonBody(req): JsonBody<UpdateServiceRequest>,
) -> HttpResult<Json<ServiceView>> {
    let s = services::update_service(&app.ctx, &caller, &p.vpc_endpoint_service_id, &req).await?;
    Ok(Json(ServiceView::from(&s)))
}

/// Handles `PUT /v1/{project_id}/vpc-endpoint-services/{id}/name` (#26).
async fn rename(
    State(app): State<AppState>,
    caller: Caller,
    Path(p): Path<ServicePath>,
    JsonBody(req): JsonBody<RenameServiceRequest>,
) -> HttpResult<Json<RenameServiceResponse>> {
    let name = services::rename_service(
        &app.ctx,
        &caller,
        &p.vpc_endpoint_service_id,
        req.endpoint_service_name.as_deref(),
    )
    .await?;
    Ok(Json(RenameServiceResponse {
        endpoint_service_name: name,
    }))
}

/// Handles `DELETE /v1/{project_id}/vpc-endpoint-services/{id}` (#10): 204; the reconciler
/// removes the service.
async fn delete(
    State(app): State<AppState>,
    caller: Caller,
    Path(p): Path<ServicePath>,
) -> HttpResult<StatusCode> {
    services::delete_service(&app.ctx, &caller, &p.vpc_endpoint_service_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Handles `GET /v1/{project_id}/vpc-endpoint-services/describe` (#16).
async fn describe(
    State(app): State<AppState>,
    _caller: Caller,
    Params(q): Params,
) -> HttpResult<Json<DescribeServiceView>> {
    let s = services::describe_service(&app.ctx, &q).await?;
    Ok(Json(DescribeServiceView::from(&s)))
}

/// Handles `GET /v1/{project_id}/vpc-endpoint-services/public` (#19).
async fn public(
    State(app): State<AppState>,
    _caller: Caller,
    Params(q): Params,
) -> HttpResult<Json<ListPublicServicesResponse>> {
    let (items, total_count) = services::list_public_services(&app.ctx, &q).await?;
    Ok(Json(ListPublicServicesResponse {
        endpoint_services: items.iter().map(PublicServiceView::from).collect(),
        total_count,
    }))
}

/// Handles `POST /v2/{project_id}/vpc-endpoint-services/{id}/add-server-resources` (#2): 204.
async fn add_server_resources(
    State(app): State<AppState>,
    caller: Caller,
    Path(p): Path<ServicePath>,
    JsonBody(req): JsonBody<AddServerResourcesRequest>,
) -> HttpResult<StatusCode> {
    services::add_server_resources(&app.ctx, &caller, &p.vpc_endpoint_service_id, &req).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Handles `POST /v2/{project_id}/vpc-endpoint-services/{id}/upgrade` (#29): 204. The SDK sends
/// no body; the documented optional body `{"action"}` is accepted too.
async fn upgrade(
    State(app): State<AppState>,
    caller: Caller,
    Path(p): Path<ServicePath>,
    body: Bytes,
) -> HttpResult<StatusCode> {
    let req: Option<UpgradeServiceRequest> = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        Some(parse_json(&body)?)
    };
    services::upgrade_service(&app.ctx, &caller, &p.vpc_endpoint_service_id, req.as_ref()).await?;
    Ok(StatusCode::NO_CONTENT)
}
