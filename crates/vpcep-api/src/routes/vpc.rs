//! The VPC API v1 subset (VPCs, subnets, ports, private IPs): the network inventory.

use crate::error::HttpResult;
use crate::extract::{JsonBody, Params};
use crate::AppState;
use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use http::StatusCode;
use serde::Deserialize;
use vpcep_control::{network, Caller};
use vpcep_domain::wire_vpc::{
    CreatePortRequest, CreateSubnetRequest, CreateVpcRequest, PortResponse, PortView,
    PortsResponse, PrivateIpView, PrivateIpsResponse, SubnetResponse, SubnetResult, SubnetView,
    SubnetsResponse, UpdatePortRequest, UpdateSubnetRequest, UpdateSubnetResponse,
    UpdateVpcRequest, VpcResponse, VpcView, VpcsResponse,
};

#[derive(Deserialize)]
struct VpcPath {
    vpc_id: String,
}

#[derive(Deserialize)]
struct SubnetPath {
    subnet_id: String,
}

#[derive(Deserialize)]
struct VpcSubnetPath {
    vpc_id: String,
    subnet_id: String,
}

#[derive(Deserialize)]
struct PortPath {
    port_id: String,
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/{project_id}/vpcs", get(list_vpcs).post(create_vpc))
        .route(
            "/v1/{project_id}/vpcs/{vpc_id}",
            get(show_vpc).put(update_vpc).delete(delete_vpc),
        )
        .route(
            "/v1/{project_id}/subnets",
            get(list_subnets).post(create_subnet),
        )
        .route("/v1/{project_id}/subnets/{subnet_id}", get(show_subnet))
        .route(
            "/v1/{project_id}/subnets/{subnet_id}/privateips",
            get(list_private_ips),
        )
        .route(
            "/v1/{project_id}/vpcs/{vpc_id}/subnets/{subnet_id}",
            axum::routing::put(update_subnet).delete(delete_subnet),
        )
        .route("/v1/{project_id}/ports", get(list_ports).post(create_port))
        .route(
            "/v1/{project_id}/ports/{port_id}",
            get(show_port).put(update_port).delete(delete_port),
        )
}

/// Handles `POST /v1/{project_id}/vpcs` (VPC #12).
async fn create_vpc(
    State(app): State<AppState>,
    caller: Caller,
    JsonBody(req): JsonBody<CreateVpcRequest>,
) -> HttpResult<Json<VpcResponse>> {
    let v = network::create_vpc(&app.ctx, &caller, &req).await?;
    Ok(Json(VpcResponse {
        vpc: VpcView::from(&v),
    }))
}

/// Handles `GET /v1/{project_id}/vpcs` (VPC #14).
async fn list_vpcs(
    State(app): State<AppState>,
    caller: Caller,
    Params(q): Params,
) -> HttpResult<Json<VpcsResponse>> {
    let vs = network::list_vpcs(&app.ctx, &caller, &q).await?;
    Ok(Json(VpcsResponse {
        vpcs: vs.iter().map(VpcView::from).collect(),
    }))
}

/// Handles `GET /v1/{project_id}/vpcs/{vpc_id}` (VPC #15).
async fn show_vpc(
    State(app): State<AppState>,
    caller: Caller,
    Path(p): Path<VpcPath>,
) -> HttpResult<Json<VpcResponse>> {
    let v = network::show_vpc(&app.ctx, &caller, &p.vpc_id).await?;
    Ok(Json(VpcResponse {
        vpc: VpcView::from(&v),
    }))
}

/// Handles `PUT /v1/{project_id}/vpcs/{vpc_id}` (VPC #16).
async fn update_vpc(
    State(app): State<AppState>,
    caller: Caller,
    Path(p): Path<VpcPath>,
    JsonBody(req): JsonBody<UpdateVpcRequest>,
) -> HttpResult<Json<VpcResponse>> {
    let v = network::update_vpc(&app.ctx, &caller, &p.vpc_id, &req).await?;
    Ok(Json(VpcResponse {
        vpc: VpcView::from(&v),
    }))
}

/// Handles `DELETE /v1/{project_id}/vpcs/{vpc_id}` (VPC #13): 204.
async fn delete_vpc(
    State(app): State<AppState>,
    caller: Caller,
    Path(p): Path<VpcPath>,
) -> HttpResult<StatusCode> {
    network::delete_vpc(&app.ctx, &caller, &p.vpc_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Handles `POST /v1/{project_id}/subnets` (VPC #2).
async fn create_subnet(
    State(app): State<AppState>,
    caller: Caller,
    JsonBody(req): JsonBody<CreateSubnetRequest>,
) -> HttpResult<Json<SubnetResponse>> {
    let s = network::create_subnet(&app.ctx, &caller, &req).await?;
    Ok(Json(SubnetResponse {
        subnet: SubnetView::from(&s),
    }))
}

/// Handles `GET /v1/{project_id}/subnets` (VPC #6).
async fn list_subnets(
    State(app): State<AppState>,
    caller: Caller,
    Params(q): Params,
) -> HttpResult<Json<SubnetsResponse>> {
    let ss = network::list_subnets(&app.ctx, &caller, &q).await?;
    Ok(Json(SubnetsResponse {
        subnets: ss.iter().map(SubnetView::from).collect(),
    }))
}

/// Handles `GET /v1/{project_id}/subnets/{subnet_id}` (VPC #8).
async fn show_subnet(
    State(app): State<AppState>,
    caller: Caller,
    Path(p): Path<SubnetPath>,
) -> HttpResult<Json<SubnetResponse>> {
    let s = network::show_subnet(&app.ctx, &caller, &p.subnet_id).await?;
    Ok(Json(SubnetResponse {
        subnet: SubnetView::from(&s),
    }))
}

/// Handles `PUT /v1/{project_id}/vpcs/{vpc_id}/subnets/{subnet_id}` (VPC #10).
async fn update_subnet(
    State(app): State<AppState>,
    caller: Caller,
    Path(p): Path<VpcSubnetPath>,
    JsonBody(req): JsonBody<UpdateSubnetRequest>,
) -> HttpResult<Json<UpdateSubnetResponse>> {
    let s = network::update_subnet(&app.ctx, &caller, &p.vpc_id, &p.subnet_id, &req).await?;
    Ok(Json(UpdateSubnetResponse {
        subnet: SubnetResult {
            id: s.id.to_string(),
            status: "ACTIVE".into(),
        },
    }))
}

/// Handles `DELETE /v1/{project_id}/vpcs/{vpc_id}/subnets/{subnet_id}` (VPC #4): 204.
async fn delete_subnet(
    State(app): State<AppState>,
    caller: Caller,
    Path(p): Path<VpcSubnetPath>,
) -> HttpResult<StatusCode> {
    network::delete_subnet(&app.ctx, &caller, &p.vpc_id, &p.subnet_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Handles `GET /v1/{project_id}/subnets/{subnet_id}/privateips` (VPC #11).
async fn list_private_ips(
    State(app): State<AppState>,
    caller: Caller,
    Path(p): Path<SubnetPath>,
    Params(q): Params,
) -> HttpResult<Json<PrivateIpsResponse>> {
    let ips = network::list_private_ips(&app.ctx, &caller, &p.subnet_id, &q).await?;
    Ok(Json(PrivateIpsResponse {
        privateips: ips.iter().map(PrivateIpView::from).collect(),
    }))
}

/// Handles `POST /v1/{project_id}/ports` (VPC #1).
async fn create_port(
    State(app): State<AppState>,
    caller: Caller,
    JsonBody(req): JsonBody<CreatePortRequest>,
) -> HttpResult<Json<PortResponse>> {
    let p = network::create_port(&app.ctx, &caller, &req).await?;
    Ok(Json(PortResponse {
        port: PortView::from(&p),
    }))
}

/// Handles `GET /v1/{project_id}/ports` (VPC #5).
async fn list_ports(
    State(app): State<AppState>,
    caller: Caller,
    Params(q): Params,
) -> HttpResult<Json<PortsResponse>> {
    let ps = network::list_ports(&app.ctx, &caller, &q).await?;
    Ok(Json(PortsResponse {
        ports: ps.iter().map(PortView::from).collect(),
    }))
}

/// Handles `GET /v1/{project_id}/ports/{port_id}` (VPC #7).
async fn show_port(
    State(app): State<AppState>,
    caller: Caller,
    Path(p): Path<PortPath>,
) -> HttpResult<Json<PortResponse>> {
    let p = network::show_port(&app.ctx, &caller, &p.port_id).await?;
    Ok(Json(PortResponse {
        port: PortView::from(&p),
    }))
}

/// Handles `PUT /v1/{project_id}/ports/{port_id}` (VPC #9).
async fn update_port(
    State(app): State<AppState>,
    caller: Caller,
    Path(p): Path<PortPath>,
    JsonBody(req): JsonBody<UpdatePortRequest>,
) -> HttpResult<Json<PortResponse>> {
    let p = network::update_port(&app.ctx, &caller, &p.port_id, &req).await?;
    Ok(Json(PortResponse {
        port: PortView::from(&p),
    }))
}

/// Handles `DELETE /v1/{project_id}/ports/{port_id}` (VPC #3): 204.
async fn delete_port(
    State(app): State<AppState>,
    caller: Caller,
    Path(p): Path<PortPath>,
) -> HttpResult<StatusCode> {
    network::delete_port(&app.ctx, &caller, &p.port_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
