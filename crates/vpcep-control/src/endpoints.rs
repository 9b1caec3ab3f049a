//! Endpoint and connection operations: the consumer's endpoints (`create_endpoint`,
//! `delete_endpoint`, `delete_endpoint_policy`, `list_endpoint_info_details`, `list_endpoints`,
//! `update_endpoint_policy`, `update_endpoint_routetable`, `update_endpoint_white`,
//! `upgrade_endpoint`) and the owner's connections to a service (`accept_or_reject_endpoint`,
//! `list_service_connections`, `update_endpoint_connections_desc`).

use crate::services::path_id;
use crate::{Caller, Ctx};
use std::collections::HashMap;
use std::sync::Arc;
use uuid::Uuid;
use vpcep_domain::endpoint::wire::{
    ConnectionActionRequest, ConnectionsDescRequest, CreateEndpointRequest,
    UpdateEndpointPolicyRequest, UpdateEndpointWhiteRequest, UpdateRoutetablesRequest,
    UpgradeEndpointRequest,
};
use vpcep_domain::endpoint::{
    check_service_for_endpoint, parse_create_endpoint, parse_policy_document,
    parse_policy_statement, parse_whitelist, ConnectionAction, Endpoint, EndpointStatus,
};
use vpcep_domain::ids::new_id;
use vpcep_domain::list::{parse_page, QueryParams, MAX_LIMIT};
use vpcep_domain::permission::permits;
use vpcep_domain::service::{parse_description, EndpointService, ServiceType};
use vpcep_domain::time::now_millis;
use vpcep_domain::{ApiError, ApiResult, ErrorCode};
use vpcep_store::{ConnectionFilter, EndpointFilter, ServiceLookup};

const KIND: &str = "endpoint";

fn endpoint_id(id: &str) -> ApiResult<Uuid> {
    path_id(KIND, id).map_err(|_| {
        ApiError::new(
            ErrorCode::EndpointNotFound,
            format!("The requested endpoint does not exist: {id}"),
        )
    })
}

/// The private DNS name an interface endpoint gets with `enable_dns`.
pub fn dns_name(region: &str, id: Uuid) -> String {
    format!("{id}.vpcep.{region}.internal")
}

/// `create_endpoint`: validates, then creates the endpoint as `creating` (the reconciler settles
/// it).
pub async fn create_endpoint(
    ctx: &Ctx,
    caller: &Caller,
    req: &CreateEndpointRequest,
) -> ApiResult<Endpoint> {
    let new = parse_create_endpoint(req)?;
    let id = new_id();
    let now = now_millis();
    let mut tags = new.tags.clone();
    tags.sort();
    let endpoint = Endpoint {
        id,
        project_id: caller.project_id.clone(),
        domain_id: caller.account.domain_id.clone(),
        service_id: new.service_id,
        service_name: String::new(),
        service_type: ServiceType::Interface,
        vpc_id: new.vpc_id,
        subnet_id: new.subnet_id,
        ip: None,
        ever_accepted: false,
        approved: false,
        status: EndpointStatus::Creating,
        marker_id: 0,
        enable_dns: new.enable_dns,
        dns_names: vec![dns_name(&ctx.region, id)],
        whitelist: new.whitelist.clone(),
        enable_whitelist: new.enable_whitelist,
        routetables: new.routetables.clone().unwrap_or_default(),
        description: new.description.clone(),
        connection_description: String::new(),
        policy_statement: new.policy_statement.clone(),
        policy_document: new.policy_document.clone(),
        tags,
        specification_name: "default".into(),
        ip_version: new.ip_version.clone(),
        ipv6_address: new.ipv6_address.clone(),
        error: None,
        created_at: now,
        updated_at: now,
    };
    let operators = ctx.accounts.operator_domains().to_vec();
    let caller_domain = caller.account.domain_id.clone();
    let port_ip = new.port_ip;
    let check = std::sync::Arc::new(move |svc: &EndpointService, entries: &[String]| {
        let allowed = permits(
            entries,
            &svc.domain_id,
            operators.contains(&svc.domain_id),
            &caller_domain,
        );
        check_service_for_endpoint(&new, svc, allowed)
    });
    let created = ctx
        .store
        .create_endpoint(&endpoint, port_ip, caller.account.quotas.endpoint, check)
        .await?;
    ctx.wake_reconciler();
    Ok(created)
}

/// `list_endpoint_info_details`: one of the caller's endpoints.
pub async fn show_endpoint(ctx: &Ctx, caller: &Caller, id: &str) -> ApiResult<Endpoint> {
    let uuid = endpoint_id(id)?;
    ctx.store
        .get_endpoint(&caller.project_id, uuid)
        .await?
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::EndpointNotFound,
                format!("The requested endpoint does not exist: {id}"),
            )
        })
}

/// `list_endpoints`: a page of the caller's endpoints and the total.
pub async fn list_endpoints(
    ctx: &Ctx,
    caller: &Caller,
    q: &QueryParams,
) -> ApiResult<(Vec<Endpoint>, u64)> {
    let page = parse_page(q, MAX_LIMIT)?;
    let filter = EndpointFilter {
        service_name_contains: q.get("endpoint_service_name").map(str::to_string),
        vpc_id: q.get("vpc_id").map(str::to_string),
        id: q.get("id").map(str::to_string),
    };
    Ok(ctx
        .store
        .list_endpoints(&caller.project_id, &filter, &page)
        .await?)
}

async fn modify(
    ctx: &Ctx,
    caller: &Caller,
    id: &str,
    mutate: impl Fn(&mut Endpoint) -> ApiResult<()> + Send + Sync + 'static,
) -> ApiResult<Endpoint> {
    let uuid = endpoint_id(id)?;
    Ok(ctx
        .store
        .modify_endpoint(
            &caller.project_id,
            uuid,
            now_millis(),
            std::sync::Arc::new(mutate),
        )
        .await?)
}

/// `update_endpoint_white`: replaces the client whitelist and/or turns it on or off (interface
/// endpoints).
pub async fn update_whitelist(
    ctx: &Ctx,
    caller: &Caller,
    id: &str,
    req: &UpdateEndpointWhiteRequest,
) -> ApiResult<Endpoint> {
    let whitelist = match &req.whitelist {
        None => None,
        Some(None) => Some(Vec::new()),
        Some(Some(list)) => Some(parse_whitelist(list)?),
    };
    let enable = req.enable_whitelist;
    modify(ctx, caller, id, move |e| {
        e.status.ensure_modifiable()?;
        if e.service_type != ServiceType::Interface {
            return Err(ApiError::param(
                "whitelist applies to interface endpoints only",
            ));
        }
        if let Some(w) = &whitelist {
            e.whitelist = w.clone();
        }
        if let Some(on) = enable {
            e.enable_whitelist = on;
        }
        Ok(())
    })
    .await
}

/// The service an endpoint of the caller targets.
async fn target_service(
    ctx: &Ctx,
    caller: &Caller,
    id: &str,
) -> ApiResult<(Endpoint, EndpointService)> {
    let ep = show_endpoint(ctx, caller, id).await?;
    let svc = ctx
        .store
        .find_service(&ServiceLookup::Id(ep.service_id))
        .await?
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::ServiceRefNotFound,
                "The endpoint service does not exist",
            )
        })?;
    Ok((ep, svc))
}

/// `update_endpoint_policy`: sets the endpoint policy: `policy_statement` for gateway endpoints,
/// `policy_document` for interface ones, only when the service allows custom policies.
pub async fn update_policy(
    ctx: &Ctx,
    caller: &Caller,
    id: &str,
    req: &UpdateEndpointPolicyRequest,
) -> ApiResult<Endpoint> {
    let (_, svc) = target_service(ctx, caller, id).await?;
    if !svc.enable_policy {
        return Err(ApiError::new(
            ErrorCode::InvalidPolicy,
            format!(
                "The endpoint service {} does not allow custom policies (enable_policy is false)",
                svc.id
            ),
        ));
    }
    let (statement, document) = match svc.service_type {
        ServiceType::Gateway => {
            let st = req.policy_statement.as_ref().ok_or_else(|| {
                ApiError::new(
                    ErrorCode::InvalidPolicy,
                    "policy_statement is mandatory for gateway endpoints",
                )
            })?;
            (Some(parse_policy_statement(st)?), None)
        }
        ServiceType::Interface => {
            let doc = req.policy_document.as_ref().ok_or_else(|| {
                ApiError::new(
                    ErrorCode::InvalidPolicy,
                    "policy_document is mandatory for interface endpoints",
                )
            })?;
            (None, Some(parse_policy_document(doc)?))
        }
    };
    modify(ctx, caller, id, move |e| {
        e.status.ensure_modifiable()?;
        e.policy_statement = statement.clone();
        e.policy_document = document.clone();
        Ok(())
    })
    .await
}

/// `delete_endpoint_policy`: removes the endpoint's policy (EndPoint.2049 when it has none).
pub async fn delete_policy(ctx: &Ctx, caller: &Caller, id: &str) -> ApiResult<Endpoint> {
    modify(ctx, caller, id, |e| {
        e.status.ensure_modifiable()?;
        if e.policy_statement.is_none() && e.policy_document.is_none() {
            return Err(ApiError::new(
                ErrorCode::NoPolicy,
                "The VPC endpoint has no policy associated",
            ));
        }
        e.policy_statement = None;
        e.policy_document = None;
        Ok(())
    })
    .await
}

/// `update_endpoint_routetable`: replaces the route tables of a gateway endpoint.
pub async fn update_routetables(
    ctx: &Ctx,
    caller: &Caller,
    id: &str,
    req: &UpdateRoutetablesRequest,
) -> ApiResult<Endpoint> {
    let tables = req
        .routetables
        .as_deref()
        .ok_or_else(|| ApiError::param("routetables is mandatory"))?;
    let parsed = vpcep_domain::endpoint::parse_routetables(tables)?;
    modify(ctx, caller, id, move |e| {
        e.status.ensure_modifiable()?;
        if e.service_type != ServiceType::Gateway {
            return Err(ApiError::new(
                ErrorCode::NoRouteTable,
                "Interface endpoints have no route tables; routetables apply to gateway endpoints",
            ));
        }
        e.routetables = parsed.clone();
        Ok(())
    })
    .await
}

/// `upgrade_endpoint`: upgrades the endpoint to the professional edition (the service must support
/// it).
pub async fn upgrade_endpoint(
    ctx: &Ctx,
    caller: &Caller,
    id: &str,
    req: &UpgradeEndpointRequest,
) -> ApiResult<()> {
    match req.action.as_deref() {
        Some("start") => {}
        other => {
            return Err(ApiError::new(
                ErrorCode::InvalidAction,
                format!("Invalid action {other:?}; the only action is start"),
            ))
        }
    }
    let (_, svc) = target_service(ctx, caller, id).await?;
    if !svc.supported_editions.iter().any(|e| e == "profession") {
        return Err(ApiError::param(format!(
            "The endpoint service {} does not support professional endpoints; upgrade the service first",
            svc.id
        )));
    }
    modify(ctx, caller, id, |e| {
        e.status.ensure_modifiable()?;
        e.specification_name = "profession".into();
        Ok(())
    })
    .await
    .map(|_| ())
}

/// `delete_endpoint`: marks the endpoint `deleting`; the reconciler frees its address and removes
/// it.
pub async fn delete_endpoint(ctx: &Ctx, caller: &Caller, id: &str) -> ApiResult<()> {
    modify(ctx, caller, id, Endpoint::begin_delete).await?;
    ctx.wake_reconciler();
    Ok(())
}

/// `list_service_connections`: a page of the connections of one of the caller's services.
pub async fn list_connections(
    ctx: &Ctx,
    caller: &Caller,
    service_id: &str,
    q: &QueryParams,
) -> ApiResult<(Vec<Endpoint>, u64)> {
    let sid = path_id("endpoint service", service_id)?;
    let page = parse_page(q, MAX_LIMIT)?;
    let filter = ConnectionFilter {
        id: q.get("id").map(str::to_string),
        marker_id: q
            .get("marker_id")
            .map(|m| {
                m.parse::<u32>().map_err(|_| {
                    ApiError::new(
                        ErrorCode::InvalidMarkerId,
                        format!("Invalid marker_id {m:?}"),
                    )
                })
            })
            .transpose()?,
        status: q
            .get("status")
            .map(|s| EndpointStatus::parse("status", s, ErrorCode::InvalidStatus))
            .transpose()?,
    };
    Ok(ctx
        .store
        .list_connections(&caller.project_id, sid, &filter, &page)
        .await?)
}

pub use vpcep_store::ConnectionOutcome;

/// Splits raw endpoint ids into UUIDs and refusals for those that cannot name an endpoint.
fn ids_of(raw: &[String]) -> (Vec<Uuid>, Vec<ConnectionOutcome>) {
    let mut ids = Vec::new();
    let mut bad = Vec::new();
    for r in raw {
        match Uuid::try_parse(r) {
            Ok(u) if r.len() == 36 => ids.push(u),
            _ => bad.push(ConnectionOutcome::refused(
                r.clone(),
                ApiError::new(
                    ErrorCode::EndpointNotFound,
                    format!("The requested endpoint does not exist: {r}"),
                ),
            )),
        }
    }
    (ids, bad)
}

async fn modify_connections(
    ctx: &Ctx,
    caller: &Caller,
    service_id: &str,
    raw_ids: &[String],
    mutate: vpcep_store::ConnectionMutation,
) -> ApiResult<Vec<ConnectionOutcome>> {
    let sid = path_id("endpoint service", service_id)?;
    let (ids, bad) = ids_of(raw_ids);
    let mut out = ctx
        .store
        .modify_connections(&caller.project_id, sid, ids, now_millis(), mutate)
        .await?;
    out.extend(bad);
    Ok(out)
}

/// `accept_or_reject_endpoint`: the owner accepts (`receive`) or rejects one endpoint's connection;
/// a refusal for that endpoint is reported in its entry, not as an HTTP error.
pub async fn act_on_connection(
    ctx: &Ctx,
    caller: &Caller,
    service_id: &str,
    req: &ConnectionActionRequest,
) -> ApiResult<Vec<ConnectionOutcome>> {
    let action = ConnectionAction::parse(
        "action",
        req.action.as_deref().unwrap_or(""),
        ErrorCode::InvalidAction,
    )?;
    let endpoints = req.endpoints.as_deref().unwrap_or_default();
    match endpoints.len() {
        0 => {
            return Err(ApiError::param(
                "endpoints is mandatory: give the one endpoint id to accept or reject",
            ))
        }
        1 => {}
        n => {
            return Err(ApiError::new(
                ErrorCode::OnlyOneEndpoint,
                format!("Only one endpoint is allowed per call; got {n}"),
            ))
        }
    }
    let via_dataplane = ctx.dataplane;
    let results = modify_connections(
        ctx,
        caller,
        service_id,
        endpoints,
        Arc::new(move |e| e.decide(action, via_dataplane)),
    )
    .await?;
    ctx.wake_reconciler();
    Ok(results)
}

/// `update_endpoint_connections_desc`: the owner's descriptions of connections.
pub async fn describe_connections(
    ctx: &Ctx,
    caller: &Caller,
    service_id: &str,
    req: &ConnectionsDescRequest,
) -> ApiResult<Vec<ConnectionOutcome>> {
    let items = req.connections.as_deref().unwrap_or_default();
    if items.is_empty() {
        return Err(ApiError::param("connections is mandatory"));
    }
    vpcep_domain::endpoint::check_connection_batch(items.len())?;
    let mut descriptions: HashMap<Uuid, String> = HashMap::new();
    let mut raw_ids = Vec::with_capacity(items.len());
    for (i, c) in items.iter().enumerate() {
        let id =
            c.id.clone()
                .ok_or_else(|| ApiError::param(format!("connections[{i}].id is mandatory")))?;
        let d = c
            .description
            .as_deref()
            .ok_or_else(|| ApiError::param(format!("connections[{i}].description is mandatory")))?;
        let d = parse_description(&format!("connections[{i}].description"), d)?;
        if let Ok(u) = Uuid::try_parse(&id) {
            descriptions.insert(u, d);
        }
        raw_ids.push(id);
    }
    let descriptions = Arc::new(descriptions);
    modify_connections(
        ctx,
        caller,
        service_id,
        &raw_ids,
        Arc::new(move |e| {
            if let Some(d) = descriptions.get(&e.id) {
                e.connection_description = d.clone();
            }
            Ok(())
        }),
    )
    .await
}
