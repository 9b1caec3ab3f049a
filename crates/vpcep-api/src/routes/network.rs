//! The VPC API v1 subset (VPCs, subnets, ports, private IPs): the network resources.

use crate::error::HttpResult;
use crate::extract::{JsonBody, Params};
use crate::openapi::ProjectPath;
use crate::routes::RouteTable;
use crate::AppState;
use axum::extract::{Path, State};
use axum::Json;
use http::StatusCode;
use serde::Deserialize;
use utoipa::IntoParams;
use vpcep_control::{network, Caller};
use vpcep_domain::error::ErrorBody;
use vpcep_domain::network::wire::{
    CreatePortRequest, CreateSubnetRequest, CreateVpcRequest, PortResponse, PortView,
    PortsResponse, PrivateIpView, PrivateIpsResponse, SubnetResponse, SubnetResult, SubnetView,
    SubnetsResponse, UpdatePortRequest, UpdateSubnetRequest, UpdateSubnetResponse,
    UpdateVpcRequest, VpcResponse, VpcView, VpcsResponse,
};

/// `{vpc_id}`: a UUID; anything else names no VPC (404 VPC.0003).
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct VpcPath {
    /// The VPC's id.
    #[param(format = "uuid")]
    vpc_id: String,
}

/// `{subnet_id}`: a UUID; anything else names no subnet (404 VPC.0202).
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct SubnetPath {
    /// The subnet's id.
    #[param(format = "uuid")]
    subnet_id: String,
}

/// `{vpc_id}/subnets/{subnet_id}`: the subnet must be in the VPC.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct VpcSubnetPath {
    /// The VPC's id.
    #[param(format = "uuid")]
    vpc_id: String,
    /// The subnet's id.
    #[param(format = "uuid")]
    subnet_id: String,
}

/// `{port_id}`: a UUID; anything else names no port (404 VPC.0702).
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct PortPath {
    /// The port's id.
    #[param(format = "uuid")]
    port_id: String,
}

/// Paging of the VPC API lists: `limit` 1 to 2000 (default 2000; else 400), from after the
/// id `marker`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(crate) struct MarkerQuery {
    /// Page size, 1 to 2000 (else 400 VPC.0101/VPC.0201/VPC.0701).
    #[param(minimum = 1, maximum = 2000, nullable = false)]
    limit: Option<u32>,
    /// Start after the resource with this id.
    #[param(nullable = false)]
    marker: Option<String>,
}

/// Filters of the VPC list.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(crate) struct VpcFilterQuery {
    /// The VPC id.
    #[param(nullable = false)]
    id: Option<String>,
    /// The enterprise project (`all_granted_eps`: any).
    #[param(nullable = false)]
    enterprise_project_id: Option<String>,
}

/// Filter of the subnet list.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(crate) struct SubnetFilterQuery {
    /// Only subnets of this VPC.
    #[param(nullable = false)]
    vpc_id: Option<String>,
}

/// Filters of the port list.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(crate) struct PortFilterQuery {
    /// The port id.
    #[param(nullable = false)]
    id: Option<String>,
    /// The port name.
    #[param(nullable = false)]
    name: Option<String>,
    /// The subnet (network) id.
    #[param(nullable = false)]
    network_id: Option<String>,
    /// The MAC address.
    #[param(nullable = false)]
    mac_address: Option<String>,
    /// The device id.
    #[param(nullable = false)]
    device_id: Option<String>,
    /// The device owner.
    #[param(nullable = false)]
    device_owner: Option<String>,
    /// `ACTIVE`, `BUILD` or `DOWN` (else 400 VPC.0701).
    #[param(nullable = false, pattern = "^(ACTIVE|BUILD|DOWN)$")]
    status: Option<String>,
    /// `true` or `false` (else 400 VPC.0701).
    #[param(nullable = false)]
    admin_state_up: Option<bool>,
    /// `ip_address=<address>` or the address.
    #[param(nullable = false)]
    fixed_ips: Option<String>,
}

pub(crate) fn routes() -> RouteTable {
    RouteTable::new()
        .get("/v1/{project_id}/vpcs", list_vpcs)
        .post("/v1/{project_id}/vpcs", create_vpc)
        .get("/v1/{project_id}/vpcs/{vpc_id}", show_vpc)
        .put("/v1/{project_id}/vpcs/{vpc_id}", update_vpc)
        .delete("/v1/{project_id}/vpcs/{vpc_id}", delete_vpc)
        .get("/v1/{project_id}/subnets", list_subnets)
        .post("/v1/{project_id}/subnets", create_subnet)
        .get("/v1/{project_id}/subnets/{subnet_id}", show_subnet)
        .get(
            "/v1/{project_id}/subnets/{subnet_id}/privateips",
            list_private_ips,
        )
        .put(
            "/v1/{project_id}/vpcs/{vpc_id}/subnets/{subnet_id}",
            update_subnet,
        )
        .delete(
            "/v1/{project_id}/vpcs/{vpc_id}/subnets/{subnet_id}",
            delete_subnet,
        )
        .get("/v1/{project_id}/ports", list_ports)
        .post("/v1/{project_id}/ports", create_port)
        .get("/v1/{project_id}/ports/{port_id}", show_port)
        .put("/v1/{project_id}/ports/{port_id}", update_port)
        .delete("/v1/{project_id}/ports/{port_id}", delete_port)
}

/// Handles `POST /v1/{project_id}/vpcs` (`create_vpc`).
#[utoipa::path(post, path = "/v1/{project_id}/vpcs", operation_id = "create_vpc", tag = "VPC",
    params(ProjectPath), request_body = CreateVpcRequest,
    responses((status = 200, description = "The VPC", body = VpcResponse)))]
pub(crate) async fn create_vpc(
    State(app): State<AppState>,
    caller: Caller,
    JsonBody(req): JsonBody<CreateVpcRequest>,
) -> HttpResult<Json<VpcResponse>> {
    let v = network::create_vpc(&app.ctx, &caller, &req).await?;
    Ok(Json(VpcResponse {
        vpc: VpcView::from(&v),
    }))
}

/// Handles `GET /v1/{project_id}/vpcs` (`list_vpcs`).
#[utoipa::path(get, path = "/v1/{project_id}/vpcs", operation_id = "list_vpcs", tag = "VPC",
    params(ProjectPath, MarkerQuery, VpcFilterQuery),
    responses((status = 200, description = "The project's VPCs", body = VpcsResponse)))]
pub(crate) async fn list_vpcs(
    State(app): State<AppState>,
    caller: Caller,
    Params(q): Params,
) -> HttpResult<Json<VpcsResponse>> {
    let vs = network::list_vpcs(&app.ctx, &caller, &q).await?;
    Ok(Json(VpcsResponse {
        vpcs: vs.iter().map(VpcView::from).collect(),
    }))
}

/// Handles `GET /v1/{project_id}/vpcs/{vpc_id}` (`show_vpc`).
#[utoipa::path(get, path = "/v1/{project_id}/vpcs/{vpc_id}", operation_id = "show_vpc", tag = "VPC",
    params(ProjectPath, VpcPath),
    responses((status = 200, description = "The VPC", body = VpcResponse)))]
pub(crate) async fn show_vpc(
    State(app): State<AppState>,
    caller: Caller,
    Path(p): Path<VpcPath>,
) -> HttpResult<Json<VpcResponse>> {
    let v = network::show_vpc(&app.ctx, &caller, &p.vpc_id).await?;
    Ok(Json(VpcResponse {
        vpc: VpcView::from(&v),
    }))
}

/// Handles `PUT /v1/{project_id}/vpcs/{vpc_id}` (`update_vpc`).
#[utoipa::path(put, path = "/v1/{project_id}/vpcs/{vpc_id}", operation_id = "update_vpc", tag = "VPC",
    params(ProjectPath, VpcPath), request_body = UpdateVpcRequest,
    responses((status = 200, description = "The updated VPC", body = VpcResponse)))]
pub(crate) async fn update_vpc(
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

/// Handles `DELETE /v1/{project_id}/vpcs/{vpc_id}` (`delete_vpc`): 204.
#[utoipa::path(delete, path = "/v1/{project_id}/vpcs/{vpc_id}", operation_id = "delete_vpc", tag = "VPC",
    params(ProjectPath, VpcPath),
    responses(
        (status = 204, description = "The VPC was deleted"),
        (status = 409, description = "The VPC still has subnets (VPC.0109)", body = ErrorBody),
    ))]
pub(crate) async fn delete_vpc(
    State(app): State<AppState>,
    caller: Caller,
    Path(p): Path<VpcPath>,
) -> HttpResult<StatusCode> {
    network::delete_vpc(&app.ctx, &caller, &p.vpc_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Handles `POST /v1/{project_id}/subnets` (`create_subnet`).
#[utoipa::path(post, path = "/v1/{project_id}/subnets", operation_id = "create_subnet", tag = "VPC",
    params(ProjectPath), request_body = CreateSubnetRequest,
    responses((status = 200, description = "The subnet", body = SubnetResponse)))]
pub(crate) async fn create_subnet(
    State(app): State<AppState>,
    caller: Caller,
    JsonBody(req): JsonBody<CreateSubnetRequest>,
) -> HttpResult<Json<SubnetResponse>> {
    let s = network::create_subnet(&app.ctx, &caller, &req).await?;
    Ok(Json(SubnetResponse {
        subnet: SubnetView::from(&s),
    }))
}

/// Handles `GET /v1/{project_id}/subnets` (`list_subnets`).
#[utoipa::path(get, path = "/v1/{project_id}/subnets", operation_id = "list_subnets", tag = "VPC",
    params(ProjectPath, MarkerQuery, SubnetFilterQuery),
    responses((status = 200, description = "The project's subnets", body = SubnetsResponse)))]
pub(crate) async fn list_subnets(
    State(app): State<AppState>,
    caller: Caller,
    Params(q): Params,
) -> HttpResult<Json<SubnetsResponse>> {
    let ss = network::list_subnets(&app.ctx, &caller, &q).await?;
    Ok(Json(SubnetsResponse {
        subnets: ss.iter().map(SubnetView::from).collect(),
    }))
}

/// Handles `GET /v1/{project_id}/subnets/{subnet_id}` (`show_subnet`).
#[utoipa::path(get, path = "/v1/{project_id}/subnets/{subnet_id}", operation_id = "show_subnet", tag = "VPC",
    params(ProjectPath, SubnetPath),
    responses((status = 200, description = "The subnet", body = SubnetResponse)))]
pub(crate) async fn show_subnet(
    State(app): State<AppState>,
    caller: Caller,
    Path(p): Path<SubnetPath>,
) -> HttpResult<Json<SubnetResponse>> {
    let s = network::show_subnet(&app.ctx, &caller, &p.subnet_id).await?;
    Ok(Json(SubnetResponse {
        subnet: SubnetView::from(&s),
    }))
}

/// Handles `PUT /v1/{project_id}/vpcs/{vpc_id}/subnets/{subnet_id}` (`update_subnet`).
#[utoipa::path(put, path = "/v1/{project_id}/vpcs/{vpc_id}/subnets/{subnet_id}", operation_id = "update_subnet", tag = "VPC",
    params(ProjectPath, VpcSubnetPath), request_body = UpdateSubnetRequest,
    responses((status = 200, description = "The subnet's id and status", body = UpdateSubnetResponse)))]
pub(crate) async fn update_subnet(
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

/// Handles `DELETE /v1/{project_id}/vpcs/{vpc_id}/subnets/{subnet_id}` (`delete_subnet`): 204.
#[utoipa::path(delete, path = "/v1/{project_id}/vpcs/{vpc_id}/subnets/{subnet_id}", operation_id = "delete_subnet", tag = "VPC",
    params(ProjectPath, VpcSubnetPath),
    responses(
        (status = 204, description = "The subnet was deleted"),
        (status = 409, description = "The subnet still has ports or endpoint addresses (VPC.0211)", body = ErrorBody),
    ))]
pub(crate) async fn delete_subnet(
    State(app): State<AppState>,
    caller: Caller,
    Path(p): Path<VpcSubnetPath>,
) -> HttpResult<StatusCode> {
    network::delete_subnet(&app.ctx, &caller, &p.vpc_id, &p.subnet_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Handles `GET /v1/{project_id}/subnets/{subnet_id}/privateips` (`list_privateips`).
#[utoipa::path(get, path = "/v1/{project_id}/subnets/{subnet_id}/privateips", operation_id = "list_privateips", tag = "VPC",
    params(ProjectPath, SubnetPath, MarkerQuery),
    responses((status = 200, description = "The subnet's allocated addresses", body = PrivateIpsResponse)))]
pub(crate) async fn list_private_ips(
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

/// Handles `POST /v1/{project_id}/ports` (`create_port`).
#[utoipa::path(post, path = "/v1/{project_id}/ports", operation_id = "create_port", tag = "VPC",
    params(ProjectPath), request_body = CreatePortRequest,
    responses(
        (status = 200, description = "The port", body = PortResponse),
        (status = 409, description = "The address is in use, or the subnet has none left (VPC.0703)", body = ErrorBody),
    ))]
pub(crate) async fn create_port(
    State(app): State<AppState>,
    caller: Caller,
    JsonBody(req): JsonBody<CreatePortRequest>,
) -> HttpResult<Json<PortResponse>> {
    let p = network::create_port(&app.ctx, &caller, &req).await?;
    Ok(Json(PortResponse {
        port: PortView::from(&p),
    }))
}

/// Handles `GET /v1/{project_id}/ports` (`list_ports`).
#[utoipa::path(get, path = "/v1/{project_id}/ports", operation_id = "list_ports", tag = "VPC",
    params(ProjectPath, MarkerQuery, PortFilterQuery),
    responses((status = 200, description = "The project's ports", body = PortsResponse)))]
pub(crate) async fn list_ports(
    State(app): State<AppState>,
    caller: Caller,
    Params(q): Params,
) -> HttpResult<Json<PortsResponse>> {
    let ps = network::list_ports(&app.ctx, &caller, &q).await?;
    Ok(Json(PortsResponse {
        ports: ps.iter().map(PortView::from).collect(),
    }))
}

/// Handles `GET /v1/{project_id}/ports/{port_id}` (`show_port`).
#[utoipa::path(get, path = "/v1/{project_id}/ports/{port_id}", operation_id = "show_port", tag = "VPC",
    params(ProjectPath, PortPath),
    responses((status = 200, description = "The port", body = PortResponse)))]
pub(crate) async fn show_port(
    State(app): State<AppState>,
    caller: Caller,
    Path(p): Path<PortPath>,
) -> HttpResult<Json<PortResponse>> {
    let p = network::show_port(&app.ctx, &caller, &p.port_id).await?;
    Ok(Json(PortResponse {
        port: PortView::from(&p),
    }))
}

/// Handles `PUT /v1/{project_id}/ports/{port_id}` (`update_port`).
#[utoipa::path(put, path = "/v1/{project_id}/ports/{port_id}", operation_id = "update_port", tag = "VPC",
    params(ProjectPath, PortPath), request_body = UpdatePortRequest,
    responses((status = 200, description = "The updated port", body = PortResponse)))]
pub(crate) async fn update_port(
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

/// Handles `DELETE /v1/{project_id}/ports/{port_id}` (`delete_port`): 204.
#[utoipa::path(delete, path = "/v1/{project_id}/ports/{port_id}", operation_id = "delete_port", tag = "VPC",
    params(ProjectPath, PortPath),
    responses(
        (status = 204, description = "The port was deleted"),
        (status = 409, description = "The port backs an endpoint service (VPC.0710)", body = ErrorBody),
    ))]
pub(crate) async fn delete_port(
    State(app): State<AppState>,
    caller: Caller,
    Path(p): Path<PortPath>,
) -> HttpResult<StatusCode> {
    network::delete_port(&app.ctx, &caller, &p.port_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
