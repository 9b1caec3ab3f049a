//! Endpoints (#6, #8, #9, #11, #13, #23, #24, #28, #30), connections (#1, #15, #22) and tags
//! (#31, #32, #33).

use crate::error::HttpResult;
use crate::extract::{JsonBody, Params};
use crate::routes::services::ServicePath;
use crate::AppState;
use axum::extract::{Path, State};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use http::StatusCode;
use serde::Deserialize;
use vpcep_control::endpoints::{self, ConnectionOutcome};
use vpcep_control::{tags, Caller};
use vpcep_domain::wire::tag_views;
use vpcep_domain::wire_endpoint::{
    ConnectionActionRequest, ConnectionEntry, ConnectionView, ConnectionsDescRequest,
    ConnectionsResponse, CreateEndpointRequest, EndpointView, ListConnectionsResponse,
    ListEndpointsResponse, ProjectTagsResponse, QueryErrorView, ResourceQueryRequest,
    ResourceQueryResponse, ResourceView, TagActionRequest, TagValuesView,
    UpdateEndpointPolicyRequest, UpdateEndpointWhiteRequest, UpdateRoutetablesRequest,
    UpdateRoutetablesResponse, UpgradeEndpointRequest,
};

#[derive(Deserialize)]
struct EndpointPath {
    vpc_endpoint_id: String,
}

#[derive(Deserialize)]
struct KindPath {
    resource_type: String,
}

#[derive(Deserialize)]
struct TagPath {
    resource_type: String,
    resource_id: String,
}

pub fn routes() -> Router<AppState> {
    let eps = "/v1/{project_id}/vpc-endpoints";
    let svc = "/v1/{project_id}/vpc-endpoint-services/{vpc_endpoint_service_id}";
    Router::new()
        .route(eps, get(list).post(create))
        .route(
            &format!("{eps}/{{vpc_endpoint_id}}"),
            get(show).put(update_whitelist).delete(delete),
        )
        .route(
            &format!("{eps}/{{vpc_endpoint_id}}/policy"),
            put(update_policy).delete(delete_policy),
        )
        .route(
            &format!("{eps}/{{vpc_endpoint_id}}/routetables"),
            put(update_routetables),
        )
        .route(
            "/v2/{project_id}/vpc-endpoints/{vpc_endpoint_id}/upgrade",
            post(upgrade),
        )
        .route(&format!("{svc}/connections"), get(list_connections))
        .route(
            &format!("{svc}/connections/action"),
            post(connection_action),
        )
        .route(
            &format!("{svc}/connections/description"),
            put(connection_descriptions),
        )
        .route(
            "/v1/{project_id}/{resource_type}/{resource_id}/tags/action",
            post(tag_action),
        )
        .route("/v1/{project_id}/{resource_type}/tags", get(project_tags))
        .route(
            "/v1/{project_id}/{resource_type}/resource_instances/action",
            post(query_resources),
        )
}

/// Handles `POST /v1/{project_id}/vpc-endpoints` (#6): 200 with status `creating`.
async fn create(
    State(app): State<AppState>,
    caller: Caller,
    JsonBody(req): JsonBody<CreateEndpointRequest>,
) -> HttpResult<Json<EndpointView>> {
    let e = endpoints::create_endpoint(&app.ctx, &caller, &req).await?;
    Ok(Json(EndpointView::from(&e)))
}

/// Handles `GET /v1/{project_id}/vpc-endpoints` (#13).
async fn list(
    State(app): State<AppState>,
    caller: Caller,
    Params(q): Params,
) -> HttpResult<Json<ListEndpointsResponse>> {
    let (items, total_count) = endpoints::list_endpoints(&app.ctx, &caller, &q).await?;
    Ok(Json(ListEndpointsResponse {
        endpoints: items.iter().map(EndpointView::from).collect(),
        total_count,
    }))
}

/// Handles `GET /v1/{project_id}/vpc-endpoints/{id}` (#11).
async fn show(
    State(app): State<AppState>,
    caller: Caller,
    Path(p): Path<EndpointPath>,
) -> HttpResult<Json<EndpointView>> {
    let e = endpoints::show_endpoint(&app.ctx, &caller, &p.vpc_endpoint_id).await?;
    Ok(Json(EndpointView::from(&e)))
}

/// Handles `PUT /v1/{project_id}/vpc-endpoints/{id}` (#28): the client whitelist.
async fn update_whitelist(
    State(app): State<AppState>,
    caller: Caller,
    Path(p): Path<EndpointPath>,
    JsonBody(req): JsonBody<UpdateEndpointWhiteRequest>,
) -> HttpResult<Json<EndpointView>> {
    let e = endpoints::update_whitelist(&app.ctx, &caller, &p.vpc_endpoint_id, &req).await?;
    Ok(Json(EndpointView::from(&e)))
}

/// Handles `DELETE /v1/{project_id}/vpc-endpoints/{id}` (#8): 204; the reconciler removes it.
async fn delete(
    State(app): State<AppState>,
    caller: Caller,
    Path(p): Path<EndpointPath>,
) -> HttpResult<StatusCode> {
    endpoints::delete_endpoint(&app.ctx, &caller, &p.vpc_endpoint_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Handles `PUT /v1/{project_id}/vpc-endpoints/{id}/policy` (#23).
async fn update_policy(
    State(app): State<AppState>,
    caller: Caller,
    Path(p): Path<EndpointPath>,
    JsonBody(req): JsonBody<UpdateEndpointPolicyRequest>,
) -> HttpResult<Json<EndpointView>> {
    let e = endpoints::update_policy(&app.ctx, &caller, &p.vpc_endpoint_id, &req).await?;
    Ok(Json(EndpointView::from(&e)))
}

/// Handles `DELETE /v1/{project_id}/vpc-endpoints/{id}/policy` (#9): 200 with the endpoint.
async fn delete_policy(
    State(app): State<AppState>,
    caller: Caller,
    Path(p): Path<EndpointPath>,
) -> HttpResult<Json<EndpointView>> {
    let e = endpoints::delete_policy(&app.ctx, &caller, &p.vpc_endpoint_id).await?;
    Ok(Json(EndpointView::from(&e)))
}

/// Handles `PUT /v1/{project_id}/vpc-endpoints/{id}/routetables` (#24).
async fn update_routetables(
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

/// Handles `POST /v2/{project_id}/vpc-endpoints/{id}/upgrade` (#30): 202.
async fn upgrade(
    State(app): State<AppState>,
    caller: Caller,
    Path(p): Path<EndpointPath>,
    JsonBody(req): JsonBody<UpgradeEndpointRequest>,
) -> HttpResult<StatusCode> {
    endpoints::upgrade_endpoint(&app.ctx, &caller, &p.vpc_endpoint_id, &req).await?;
    Ok(StatusCode::ACCEPTED)
}

/// Handles `GET .../vpc-endpoint-services/{id}/connections` (#15).
async fn list_connections(
    State(app): State<AppState>,
    caller: Caller,
    Path(p): Path<ServicePath>,
    Params(q): Params,
) -> HttpResult<Json<ListConnectionsResponse>> {
    let (items, total_count) =
        endpoints::list_connections(&app.ctx, &caller, &p.vpc_endpoint_service_id, &q).await?;
    Ok(Json(ListConnectionsResponse {
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
                Some(e) => {
                    let mut view = ConnectionView::from(e);
                    view.error.extend(errors);
                    ConnectionEntry::Known(view)
                }
                None => ConnectionEntry::Unknown {
                    id: r.id,
                    error: errors,
                },
            }
        })
        .collect();
    ConnectionsResponse { connections }
}

/// Handles `POST .../vpc-endpoint-services/{id}/connections/action` (#1).
async fn connection_action(
    State(app): State<AppState>,
    caller: Caller,
    Path(p): Path<ServicePath>,
    JsonBody(req): JsonBody<ConnectionActionRequest>,
) -> HttpResult<Json<ConnectionsResponse>> {
    let results =
        endpoints::act_on_connection(&app.ctx, &caller, &p.vpc_endpoint_service_id, &req).await?;
    Ok(Json(connection_entries(results)))
}

/// Handles `PUT .../vpc-endpoint-services/{id}/connections/description` (#22).
async fn connection_descriptions(
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

/// Handles `POST /v1/{project_id}/{resource_type}/{resource_id}/tags/action` (#31): 204.
async fn tag_action(
    State(app): State<AppState>,
    caller: Caller,
    Path(p): Path<TagPath>,
    JsonBody(req): JsonBody<TagActionRequest>,
) -> HttpResult<StatusCode> {
    tags::tag_action(&app.ctx, &caller, &p.resource_type, &p.resource_id, &req).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Handles `GET /v1/{project_id}/{resource_type}/tags` (#32).
async fn project_tags(
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

/// Handles `POST /v1/{project_id}/{resource_type}/resource_instances/action` (#33).
async fn query_resources(
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
