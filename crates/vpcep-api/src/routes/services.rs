//! Endpoint services (`create_endpoint_service`, `delete_endpoint_service`,
//! `list_endpoint_service`, `list_service_describe_details`, `list_service_details`,
//! `list_service_public_details`, `update_endpoint_service`, `update_endpoint_service_name`; v2:
//! `add_endpoint_service_server_resource`, `upgrade_endpoint_service`).

use crate::error::HttpResult;
use crate::extract::{parse_json, JsonBody, Params};
use crate::openapi::{PageQuery, ProjectPath};
use crate::routes::RouteTable;
use crate::AppState;
use axum::extract::{Path, State};
use axum::Json;
use bytes::Bytes;
use http::StatusCode;
use serde::Deserialize;
use utoipa::IntoParams;
use vpcep_control::{services, Caller};
use vpcep_domain::error::ErrorBody;
use vpcep_domain::service::wire::{
    AddServerResourcesRequest, CreateServiceRequest, DescribeServiceView,
    ListPublicServicesResponse, ListServicesResponse, PublicServiceView, RenameServiceRequest,
    RenameServiceResponse, ServiceView, UpdateServiceRequest, UpgradeServiceRequest,
};
use vpcep_domain::service::ServiceStatus;

/// `{vpc_endpoint_service_id}`: a UUID; anything else names no service (404).
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct ServicePath {
    /// The endpoint service's id.
    #[param(format = "uuid")]
    pub(crate) vpc_endpoint_service_id: String,
}

pub(crate) fn routes() -> RouteTable {
    let base = "/v1/{project_id}/vpc-endpoint-services";
    let one = format!("{base}/{{vpc_endpoint_service_id}}");
    RouteTable::new()
        .get(base, list)
        .post(base, create)
        .get(&format!("{base}/describe"), describe)
        .get(&format!("{base}/public"), public)
        .get(&one, show)
        .put(&one, update)
        .delete(&one, delete)
        .put(&format!("{one}/name"), rename)
        .post(
            "/v2/{project_id}/vpc-endpoint-services/{vpc_endpoint_service_id}/add-server-resources",
            add_server_resources,
        )
        .post(
            "/v2/{project_id}/vpc-endpoint-services/{vpc_endpoint_service_id}/upgrade",
            upgrade,
        )
}

/// Filters of the service lists (`list_endpoint_service`, `list_service_public_details`).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(crate) struct ServiceFilterQuery {
    /// Part of the service name to match.
    #[param(nullable = false)]
    endpoint_service_name: Option<String>,
    /// The service id.
    #[param(nullable = false)]
    id: Option<String>,
}

/// `status` filter of the caller's service list (`list_endpoint_service`).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(crate) struct ServiceStatusQuery {
    /// Only services in this status (another value is 400 EndPoint.0019).
    #[param(inline, nullable = false)]
    status: Option<ServiceStatus>,
    /// Only services of this border group (every service here is in `center`).
    #[param(nullable = false)]
    public_border_group: Option<String>,
}

/// The lookup of describe (`list_service_describe_details`): `id` or the full
/// `endpoint_service_name`; neither is 400.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(crate) struct DescribeQuery {
    /// The service id (wins over the name).
    #[param(nullable = false)]
    id: Option<String>,
    /// The full service name `region.name.id`.
    #[param(nullable = false)]
    endpoint_service_name: Option<String>,
}

/// Handles `POST /v1/{project_id}/vpc-endpoint-services` (`create_endpoint_service`): 200 with
/// status `creating`.
#[utoipa::path(post, path = "/v1/{project_id}/vpc-endpoint-services",
    operation_id = "create_endpoint_service", tag = "Endpoint services",
    params(ProjectPath), request_body = CreateServiceRequest,
    responses(
        (status = 200, description = "The service, `creating` until the reconciler makes it `available`", body = ServiceView),
        (status = 400, description = "Invalid body, a VPC or port that does not exist, conflicting ports, or the quota is used up", body = ErrorBody),
    ))]
pub(crate) async fn create(
    State(app): State<AppState>,
    caller: Caller,
    JsonBody(req): JsonBody<CreateServiceRequest>,
) -> HttpResult<Json<ServiceView>> {
    let s = services::create_service(&app.ctx, &caller, &req).await?;
    Ok(Json(ServiceView::from(&s)))
}

/// Handles `GET /v1/{project_id}/vpc-endpoint-services` (`list_endpoint_service`).
#[utoipa::path(get, path = "/v1/{project_id}/vpc-endpoint-services",
    operation_id = "list_endpoint_service", tag = "Endpoint services",
    params(ProjectPath, PageQuery, ServiceFilterQuery, ServiceStatusQuery),
    responses((status = 200, description = "A page of the caller's services", body = ListServicesResponse)))]
pub(crate) async fn list(
    State(app): State<AppState>,
    caller: Caller,
    Params(q): Params,
) -> HttpResult<super::PageJson<ListServicesResponse>> {
    let (items, total_count) = services::list_services(&app.ctx, &caller, &q).await?;
    Ok(super::PageJson(ListServicesResponse {
        endpoint_services: items.into_iter().map(ServiceView::from).collect(),
        total_count,
    }))
}

/// Handles `GET /v1/{project_id}/vpc-endpoint-services/{id}` (`list_service_details`).
#[utoipa::path(get, path = "/v1/{project_id}/vpc-endpoint-services/{vpc_endpoint_service_id}",
    operation_id = "list_service_details", tag = "Endpoint services",
    params(ProjectPath, ServicePath),
    responses((status = 200, description = "The service", body = ServiceView)))]
pub(crate) async fn show(
    State(app): State<AppState>,
    caller: Caller,
    Path(p): Path<ServicePath>,
) -> HttpResult<Json<ServiceView>> {
    let s = services::show_service(&app.ctx, &caller, &p.vpc_endpoint_service_id).await?;
    Ok(Json(ServiceView::from(&s)))
}

/// Handles `PUT /v1/{project_id}/vpc-endpoint-services/{id}` (`update_endpoint_service`).
#[utoipa::path(put, path = "/v1/{project_id}/vpc-endpoint-services/{vpc_endpoint_service_id}",
    operation_id = "update_endpoint_service", tag = "Endpoint services",
    params(ProjectPath, ServicePath), request_body = UpdateServiceRequest,
    responses((status = 200, description = "The updated service", body = ServiceView)))]
pub(crate) async fn update(
    State(app): State<AppState>,
    caller: Caller,
    Path(p): Path<ServicePath>,
    JsonBody(req): JsonBody<UpdateServiceRequest>,
) -> HttpResult<Json<ServiceView>> {
    let s = services::update_service(&app.ctx, &caller, &p.vpc_endpoint_service_id, &req).await?;
    Ok(Json(ServiceView::from(&s)))
}

/// Handles `PUT /v1/{project_id}/vpc-endpoint-services/{id}/name` (`update_endpoint_service_name`).
#[utoipa::path(put, path = "/v1/{project_id}/vpc-endpoint-services/{vpc_endpoint_service_id}/name",
    operation_id = "update_endpoint_service_name", tag = "Endpoint services",
    params(ProjectPath, ServicePath), request_body = RenameServiceRequest,
    responses((status = 200, description = "The new full name", body = RenameServiceResponse)))]
pub(crate) async fn rename(
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

/// Handles `DELETE /v1/{project_id}/vpc-endpoint-services/{id}` (`delete_endpoint_service`): 204;
/// the reconciler removes the service.
#[utoipa::path(delete, path = "/v1/{project_id}/vpc-endpoint-services/{vpc_endpoint_service_id}",
    operation_id = "delete_endpoint_service", tag = "Endpoint services",
    params(ProjectPath, ServicePath),
    responses(
        (status = 204, description = "Deletion started; the reconciler removes the service"),
        (status = 400, description = "The service still has endpoints (EndPoint.3006)", body = ErrorBody),
    ))]
pub(crate) async fn delete(
    State(app): State<AppState>,
    caller: Caller,
    Path(p): Path<ServicePath>,
) -> HttpResult<StatusCode> {
    services::delete_service(&app.ctx, &caller, &p.vpc_endpoint_service_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Handles `GET /v1/{project_id}/vpc-endpoint-services/describe` (`list_service_describe_details`).
#[utoipa::path(get, path = "/v1/{project_id}/vpc-endpoint-services/describe",
    operation_id = "list_service_describe_details", tag = "Endpoint services",
    params(ProjectPath, DescribeQuery),
    responses(
        (status = 200, description = "The summary of any account's service", body = DescribeServiceView),
        (status = 400, description = "Neither `id` nor `endpoint_service_name` given", body = ErrorBody),
    ))]
pub(crate) async fn describe(
    State(app): State<AppState>,
    _caller: Caller,
    Params(q): Params,
) -> HttpResult<Json<DescribeServiceView>> {
    let s = services::describe_service(&app.ctx, &q).await?;
    Ok(Json(DescribeServiceView::from(&s)))
}

/// Handles `GET /v1/{project_id}/vpc-endpoint-services/public` (`list_service_public_details`).
#[utoipa::path(get, path = "/v1/{project_id}/vpc-endpoint-services/public",
    operation_id = "list_service_public_details", tag = "Endpoint services",
    params(ProjectPath, PageQuery, ServiceFilterQuery),
    responses((status = 200, description = "A page of the public (operator) services", body = ListPublicServicesResponse)))]
pub(crate) async fn public(
    State(app): State<AppState>,
    _caller: Caller,
    Params(q): Params,
) -> HttpResult<super::PageJson<ListPublicServicesResponse>> {
    let (items, total_count) = services::list_public_services(&app.ctx, &q).await?;
    Ok(super::PageJson(ListPublicServicesResponse {
        endpoint_services: items.iter().map(PublicServiceView::from).collect(),
        total_count,
    }))
}

/// Handles `POST /v2/{project_id}/vpc-endpoint-services/{id}/add-server-resources`
/// (`add_endpoint_service_server_resource`): 204.
#[utoipa::path(post, path = "/v2/{project_id}/vpc-endpoint-services/{vpc_endpoint_service_id}/add-server-resources",
    operation_id = "add_endpoint_service_server_resource", tag = "Endpoint services",
    params(ProjectPath, ServicePath), request_body = AddServerResourcesRequest,
    responses((status = 204, description = "The backends were added")))]
pub(crate) async fn add_server_resources(
    State(app): State<AppState>,
    caller: Caller,
    Path(p): Path<ServicePath>,
    JsonBody(req): JsonBody<AddServerResourcesRequest>,
) -> HttpResult<StatusCode> {
    services::add_server_resources(&app.ctx, &caller, &p.vpc_endpoint_service_id, &req).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Handles `POST /v2/{project_id}/vpc-endpoint-services/{id}/upgrade` (`upgrade_endpoint_service`):
/// 204. The SDK sends no body; the documented optional body `{"action"}` (or `null`) is accepted
/// too.
#[utoipa::path(post, path = "/v2/{project_id}/vpc-endpoint-services/{vpc_endpoint_service_id}/upgrade",
    operation_id = "upgrade_endpoint_service", tag = "Endpoint services",
    params(ProjectPath, ServicePath),
    request_body(content = Option<UpgradeServiceRequest>, description = "Optional; the SDK sends none (`upgrade`)"),
    responses(
        (status = 204, description = "The service's supported editions changed"),
        (status = 400, description = "Invalid `action` (EndPoint.0007) or body", body = ErrorBody),
    ))]
pub(crate) async fn upgrade(
    State(app): State<AppState>,
    caller: Caller,
    Path(p): Path<ServicePath>,
    body: Bytes,
) -> HttpResult<StatusCode> {
    let req: Option<UpgradeServiceRequest> = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        // `null` counts as no body, as the document's optional body allows.
        parse_json(&body)?
    };
    services::upgrade_service(&app.ctx, &caller, &p.vpc_endpoint_service_id, req.as_ref()).await?;
    Ok(StatusCode::NO_CONTENT)
}
