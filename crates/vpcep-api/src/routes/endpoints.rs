//! Endpoints (`create_endpoint`, `delete_endpoint`, `delete_endpoint_policy`,
//! `list_endpoint_info_details`, `list_endpoints`, `update_endpoint_policy`,
//! `update_endpoint_routetable`, `update_endpoint_white`, `upgrade_endpoint`), connections
//! (`accept_or_reject_endpoint`, `list_service_connections`, `update_endpoint_connections_desc`)
//! and tags (`batch_add_or_remove_resource_instance`, `list_query_project_resource_tags`,
//! `list_resource_instances`).

use crate::error::HttpResult;
use crate::extract::{JsonBody, Params};
use crate::openapi::{PageQuery, ProjectPath};
use crate::routes::services::ServicePath;
use crate::routes::RouteTable;
use crate::AppState;
use axum::extract::{Path, State};
use axum::Json;
use http::StatusCode;
use serde::Deserialize;
use utoipa::IntoParams;
use vpcep_control::endpoints::{self, ConnectionOutcome};
use vpcep_control::{tags, Caller};
use vpcep_domain::endpoint::wire::{
    ConnectionActionRequest, ConnectionEntry, ConnectionView, ConnectionsDescRequest,
    ConnectionsResponse, CreateEndpointRequest, EndpointView, ListConnectionsResponse,
    ListEndpointsResponse, QueryErrorView, UpdateEndpointPolicyRequest, UpdateEndpointWhiteRequest,
    UpdateRoutetablesRequest, UpdateRoutetablesResponse, UpgradeEndpointRequest,
};
use vpcep_domain::endpoint::EndpointStatus;
use vpcep_domain::error::ErrorBody;
use vpcep_domain::tag::wire::{
    tag_views, ProjectTagsResponse, ResourceQueryRequest, ResourceQueryResponse, ResourceView,
    TagActionRequest, TagValuesView,
};
use vpcep_domain::tag::ResourceKind;

/// `{vpc_endpoint_id}`: a UUID; anything else names no endpoint (404).
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct EndpointPath {
    /// The endpoint's id.
    #[param(format = "uuid")]
    vpc_endpoint_id: String,
}

/// `{resource_type}` of the project-wide tag operations.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct KindPath {
    /// `endpoint_service` or `endpoint` (else 400 EndPoint.3070).
    #[param(value_type = ResourceKind, inline)]
    resource_type: String,
}

/// `{resource_type}/{resource_id}` of the tag action.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct TagPath {
    /// `endpoint_service` or `endpoint` (else 400 EndPoint.3070).
    #[param(value_type = ResourceKind, inline)]
    resource_type: String,
    /// The service's or endpoint's id.
    #[param(format = "uuid")]
    resource_id: String,
}

/// Filters of the endpoint list (`list_endpoints`).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(crate) struct EndpointFilterQuery {
    /// Part of the endpoint service's name to match.
    #[param(nullable = false)]
    endpoint_service_name: Option<String>,
    /// The endpoint's VPC.
    #[param(nullable = false)]
    vpc_id: Option<String>,
    /// The endpoint id.
    #[param(nullable = false)]
    id: Option<String>,
}

/// Filters of the connection list (`list_service_connections`).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(crate) struct ConnectionFilterQuery {
    /// The endpoint id.
    #[param(nullable = false)]
    id: Option<String>,
    /// The endpoint's marker id (else 400 EndPoint.0021).
    #[param(nullable = false)]
    marker_id: Option<u32>,
    /// Only connections in this status (else 400 EndPoint.0019).
    #[param(inline, nullable = false)]
    status: Option<EndpointStatus>,
}

pub(crate) fn routes() -> RouteTable {
    let eps = "/v1/{project_id}/vpc-endpoints";
    let one = format!("{eps}/{{vpc_endpoint_id}}");
    let svc = "/v1/{project_id}/vpc-endpoint-services/{vpc_endpoint_service_id}";
    RouteTable::new()
        .get(eps, list)
        .post(eps, create)
        .get(&one, show)
        .put(&one, update_whitelist)
        .delete(&one, delete)
        .put(&format!("{one}/policy"), update_policy)
        .delete(&format!("{one}/policy"), delete_policy)
        .put(&format!("{one}/routetables"), update_routetables)
        .post(
            "/v2/{project_id}/vpc-endpoints/{vpc_endpoint_id}/upgrade",
            upgrade,
        )
        .get(&format!("{svc}/connections"), list_connections)
        .post(&format!("{svc}/connections/action"), connection_action)
        .put(
            &format!("{svc}/connections/description"),
            connection_descriptions,
        )
        .post(
            "/v1/{project_id}/{resource_type}/{resource_id}/tags/action",
            tag_action,
        )
        .get("/v1/{project_id}/{resource_type}/tags", project_tags)
        .post(
            "/v1/{project_id}/{resource_type}/resource_instances/action",
            query_resources,
        )
}

/// Handles `POST /v1/{project_id}/vpc-endpoints` (`create_endpoint`): 200 with status `creating`.
#[utoipa::path(post, path = "/v1/{project_id}/vpc-endpoints",
    operation_id = "create_endpoint", tag = "Endpoints",
    params(ProjectPath), request_body = CreateEndpointRequest,
    responses(
        (status = 200, description = "The endpoint, `creating` (or `pendingAcceptance` when the service needs approval)", body = EndpointView),
        (status = 400, description = "Invalid body, an unknown or unavailable service, VPC or subnet, no permission to connect, an address in use, or the quota is used up", body = ErrorBody),
    ))]
pub(crate) async fn create(
    State(app): State<AppState>,
    caller: Caller,
    JsonBody(req): JsonBody<CreateEndpointRequest>,
) -> HttpResult<Json<EndpointView>> {
    let e = endpoints::create_endpoint(&app.ctx, &caller, &req).await?;
    Ok(Json(EndpointView::from(&e)))
}

/// Handles `GET /v1/{project_id}/vpc-endpoints` (`list_endpoints`).
#[utoipa::path(get, path = "/v1/{project_id}/vpc-endpoints",
    operation_id = "list_endpoints", tag = "Endpoints",
    params(ProjectPath, PageQuery, EndpointFilterQuery),
    responses((status = 200, description = "A page of the caller's endpoints", body = ListEndpointsResponse)))]
pub(crate) async fn list(
    State(app): State<AppState>,
    caller: Caller,
    Params(q): Params,
) -> HttpResult<super::PageJson<ListEndpointsResponse>> {
    let (items, total_count) = endpoints::list_endpoints(&app.ctx, &caller, &q).await?;
    Ok(super::PageJson(ListEndpointsResponse {
        endpoints: items.iter().map(EndpointView::from).collect(),
        total_count,
    }))
}

/// Handles `GET /v1/{project_id}/vpc-endpoints/{id}` (`list_endpoint_info_details`).
#[utoipa::path(get, path = "/v1/{project_id}/vpc-endpoints/{vpc_endpoint_id}",
    operation_id = "list_endpoint_info_details", tag = "Endpoints",
    params(ProjectPath, EndpointPath),
    responses((status = 200, description = "The endpoint", body = EndpointView)))]
pub(crate) async fn show(
    State(app): State<AppState>,
    caller: Caller,
    Path(p): Path<EndpointPath>,
) -> HttpResult<Json<EndpointView>> {
    let e = endpoints::show_endpoint(&app.ctx, &caller, &p.vpc_endpoint_id).await?;
    Ok(Json(EndpointView::from(&e)))
}

/// Handles `PUT /v1/{project_id}/vpc-endpoints/{id}` (`update_endpoint_white`): the client
/// whitelist.
#[utoipa::path(put, path = "/v1/{project_id}/vpc-endpoints/{vpc_endpoint_id}",
    operation_id = "update_endpoint_white", tag = "Endpoints",
    params(ProjectPath, EndpointPath), request_body = UpdateEndpointWhiteRequest,
    responses((status = 200, description = "The updated endpoint", body = EndpointView)))]
pub(crate) async fn update_whitelist(
    State(app): State<AppState>,
    caller: Caller,
    Path(p): Path<EndpointPath>,
    JsonBody(req): JsonBody<UpdateEndpointWhiteRequest>,
) -> HttpResult<Json<EndpointView>> {
    let e = endpoints::update_whitelist(&app.ctx, &caller, &p.vpc_endpoint_id, &req).await?;
    Ok(Json(EndpointView::from(&e)))
}

/// Handles `DELETE /v1/{project_id}/vpc-endpoints/{id}` (`delete_endpoint`): 204; the reconciler
/// removes it.
#[utoipa::path(delete, path = "/v1/{project_id}/vpc-endpoints/{vpc_endpoint_id}",
    operation_id = "delete_endpoint", tag = "Endpoints",
    params(ProjectPath, EndpointPath),
    responses((status = 204, description = "Deletion started; the reconciler removes the endpoint")))]
pub(crate) async fn delete(
    State(app): State<AppState>,
    caller: Caller,
    Path(p): Path<EndpointPath>,
) -> HttpResult<StatusCode> {
    endpoints::delete_endpoint(&app.ctx, &caller, &p.vpc_endpoint_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Handles `PUT /v1/{project_id}/vpc-endpoints/{id}/policy` (`update_endpoint_policy`).
#[utoipa::path(put, path = "/v1/{project_id}/vpc-endpoints/{vpc_endpoint_id}/policy",
    operation_id = "update_endpoint_policy", tag = "Endpoints",
    params(ProjectPath, EndpointPath), request_body = UpdateEndpointPolicyRequest,
    responses((status = 200, description = "The updated endpoint", body = EndpointView)))]
pub(crate) async fn update_policy(
    State(app): State<AppState>,
    caller: Caller,
    Path(p): Path<EndpointPath>,
    JsonBody(req): JsonBody<UpdateEndpointPolicyRequest>,
) -> HttpResult<Json<EndpointView>> {
    let e = endpoints::update_policy(&app.ctx, &caller, &p.vpc_endpoint_id, &req).await?;
    Ok(Json(EndpointView::from(&e)))
}

/// Handles `DELETE /v1/{project_id}/vpc-endpoints/{id}/policy` (`delete_endpoint_policy`): 200 with
/// the endpoint.
#[utoipa::path(delete, path = "/v1/{project_id}/vpc-endpoints/{vpc_endpoint_id}/policy",
    operation_id = "delete_endpoint_policy", tag = "Endpoints",
    params(ProjectPath, EndpointPath),
    responses((status = 200, description = "The endpoint without its policy", body = EndpointView)))]
pub(crate) async fn delete_policy(
    State(app): State<AppState>,
    caller: Caller,
    Path(p): Path<EndpointPath>,
) -> HttpResult<Json<EndpointView>> {
    let e = endpoints::delete_policy(&app.ctx, &caller, &p.vpc_endpoint_id).await?;
    Ok(Json(EndpointView::from(&e)))
}

/// Handles `PUT /v1/{project_id}/vpc-endpoints/{id}/routetables` (`update_endpoint_routetable`).
#[utoipa::path(put, path = "/v1/{project_id}/vpc-endpoints/{vpc_endpoint_id}/routetables",
    operation_id = "update_endpoint_routetable", tag = "Endpoints",
    params(ProjectPath, EndpointPath), request_body = UpdateRoutetablesRequest,
    responses((status = 200, description = "The route tables now bound", body = UpdateRoutetablesResponse)))]
pub(crate) async fn update_routetables(
    State(app): State<AppState>,
    caller: Caller,
    Path(p): Path<EndpointPath>,
    JsonBody(req): JsonBody<UpdateRoutetablesRequest>,
) -> HttpResult<Json<UpdateRoutetablesResponse>> {
    let e = endpoints::update_routetables(&app.ctx, &caller, &p.vpc_endpoint_id, &req).await?;
    Ok(Json(UpdateRoutetablesResponse {
        routetables: e.routetables,
    }))
}

/// Handles `POST /v2/{project_id}/vpc-endpoints/{id}/upgrade` (`upgrade_endpoint`): 202.
#[utoipa::path(post, path = "/v2/{project_id}/vpc-endpoints/{vpc_endpoint_id}/upgrade",
    operation_id = "upgrade_endpoint", tag = "Endpoints",
    params(ProjectPath, EndpointPath), request_body = UpgradeEndpointRequest,
    responses(
        (status = 202, description = "The endpoint is now a professional one"),
        (status = 400, description = "Invalid `action` (EndPoint.0007), or the service does not support professional endpoints", body = ErrorBody),
    ))]
pub(crate) async fn upgrade(
    State(app): State<AppState>,
    caller: Caller,
    Path(p): Path<EndpointPath>,
    JsonBody(req): JsonBody<UpgradeEndpointRequest>,
) -> HttpResult<StatusCode> {
    endpoints::upgrade_endpoint(&app.ctx, &caller, &p.vpc_endpoint_id, &req).await?;
    Ok(StatusCode::ACCEPTED)
}

/// Handles `GET .../vpc-endpoint-services/{id}/connections` (`list_service_connections`).
#[utoipa::path(get, path = "/v1/{project_id}/vpc-endpoint-services/{vpc_endpoint_service_id}/connections",
    operation_id = "list_service_connections", tag = "Connections",
    params(ProjectPath, crate::routes::services::ServicePath, PageQuery, ConnectionFilterQuery),
    responses((status = 200, description = "A page of the service's connections", body = ListConnectionsResponse)))]
pub(crate) async fn list_connections(
    State(app): State<AppState>,
    caller: Caller,
    Path(p): Path<ServicePath>,
    Params(q): Params,
) -> HttpResult<super::PageJson<ListConnectionsResponse>> {
    let (items, total_count) =
        endpoints::list_connections(&app.ctx, &caller, &p.vpc_endpoint_service_id, &q).await?;
    Ok(super::PageJson(ListConnectionsResponse {
        connections: items.iter().map(ConnectionView::from).collect(),
        total_count,
    }))
}

/// Each endpoint's entry: its connection (with the refusal in `error`, if any), or only the
/// id and the error when the service has no such endpoint.
fn connection_entries(results: Vec<ConnectionOutcome>) -> ConnectionsResponse {
    let connections = results
        .into_iter()
        .map(|r| {
            let errors: Vec<QueryErrorView> = r
                .error
                .iter()
                .map(|e| QueryErrorView {
                    error_code: e.code.code().into(),
                    error_message: e.msg.clone(),
                })
                .collect();
            match &r.endpoint {
                Some(e) => ConnectionEntry::known(ConnectionView::from(e), errors),
                None => ConnectionEntry::unknown(r.id, errors),
            }
        })
        .collect();
    ConnectionsResponse { connections }
}

/// Handles `POST .../vpc-endpoint-services/{id}/connections/action` (`accept_or_reject_endpoint`).
#[utoipa::path(post, path = "/v1/{project_id}/vpc-endpoint-services/{vpc_endpoint_service_id}/connections/action",
    operation_id = "accept_or_reject_endpoint", tag = "Connections",
    params(ProjectPath, crate::routes::services::ServicePath), request_body = ConnectionActionRequest,
    responses((status = 200, description = "One entry per endpoint; an entry whose endpoint could not be changed carries the reason in `error`", body = ConnectionsResponse)))]
pub(crate) async fn connection_action(
    State(app): State<AppState>,
    caller: Caller,
    Path(p): Path<ServicePath>,
    JsonBody(req): JsonBody<ConnectionActionRequest>,
) -> HttpResult<Json<ConnectionsResponse>> {
    let results =
        endpoints::act_on_connection(&app.ctx, &caller, &p.vpc_endpoint_service_id, &req).await?;
    Ok(Json(connection_entries(results)))
}

/// Handles `PUT .../vpc-endpoint-services/{id}/connections/description`
/// (`update_endpoint_connections_desc`).
#[utoipa::path(put, path = "/v1/{project_id}/vpc-endpoint-services/{vpc_endpoint_service_id}/connections/description",
    operation_id = "update_endpoint_connections_desc", tag = "Connections",
    params(ProjectPath, crate::routes::services::ServicePath), request_body = ConnectionsDescRequest,
    responses((status = 200, description = "One entry per connection; an entry that could not be changed carries the reason in `error`", body = ConnectionsResponse)))]
pub(crate) async fn connection_descriptions(
    State(app): State<AppState>,
    caller: Caller,
    Path(p): Path<ServicePath>,
    JsonBody(req): JsonBody<ConnectionsDescRequest>,
) -> HttpResult<Json<ConnectionsResponse>> {
    let results =
        endpoints::describe_connections(&app.ctx, &caller, &p.vpc_endpoint_service_id, &req)
            .await?;
    Ok(Json(connection_entries(results)))
}

/// Handles `POST /v1/{project_id}/{resource_type}/{resource_id}/tags/action`
/// (`batch_add_or_remove_resource_instance`): 204.
#[utoipa::path(post, path = "/v1/{project_id}/{resource_type}/{resource_id}/tags/action",
    operation_id = "batch_add_or_remove_resource_instance", tag = "Tags",
    params(ProjectPath, TagPath), request_body = TagActionRequest,
    responses((status = 204, description = "The tags were added or removed")))]
pub(crate) async fn tag_action(
    State(app): State<AppState>,
    caller: Caller,
    Path(p): Path<TagPath>,
    JsonBody(req): JsonBody<TagActionRequest>,
) -> HttpResult<StatusCode> {
    tags::tag_action(&app.ctx, &caller, &p.resource_type, &p.resource_id, &req).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Handles `GET /v1/{project_id}/{resource_type}/tags` (`list_query_project_resource_tags`).
#[utoipa::path(get, path = "/v1/{project_id}/{resource_type}/tags",
    operation_id = "list_query_project_resource_tags", tag = "Tags",
    params(ProjectPath, KindPath),
    responses((status = 200, description = "Every tag key of the project's resources of this type, with its values", body = ProjectTagsResponse)))]
pub(crate) async fn project_tags(
    State(app): State<AppState>,
    caller: Caller,
    Path(p): Path<KindPath>,
) -> HttpResult<Json<ProjectTagsResponse>> {
    let tags = tags::project_tags(&app.ctx, &caller, &p.resource_type).await?;
    Ok(Json(ProjectTagsResponse {
        tags: tags
            .into_iter()
            .map(|(key, values)| TagValuesView { key, values })
            .collect(),
    }))
}

/// Handles `POST /v1/{project_id}/{resource_type}/resource_instances/action`
/// (`list_resource_instances`).
#[utoipa::path(post, path = "/v1/{project_id}/{resource_type}/resource_instances/action",
    operation_id = "list_resource_instances", tag = "Tags",
    params(ProjectPath, KindPath), request_body = ResourceQueryRequest,
    responses((status = 200, description = "The matching resources (`filter`) or only their number (`count`)", body = ResourceQueryResponse)))]
pub(crate) async fn query_resources(
    State(app): State<AppState>,
    caller: Caller,
    Path(p): Path<KindPath>,
    JsonBody(req): JsonBody<ResourceQueryRequest>,
) -> HttpResult<Json<ResourceQueryResponse>> {
    let (resources, total_count) =
        tags::query_resources(&app.ctx, &caller, &p.resource_type, &req).await?;
    Ok(Json(ResourceQueryResponse {
        resources: resources.map(|rs| {
            rs.into_iter()
                .map(|r| ResourceView {
                    resource_id: r.id,
                    resource_name: r.name,
                    tags: tag_views(&r.tags),
                })
                .collect()
        }),
        total_count,
    }))
}
