//! Endpoint-service operations (v1, and the v2 add-server-resources and upgrade). Each
//! validates with the domain, then makes one store call.

use crate::{Caller, Ctx};
use uuid::Uuid;
use vpcep_domain::ids::{new_id, parse_uuid};
use vpcep_domain::list::{parse_page, QueryParams, MAX_LIMIT};
use vpcep_domain::service::wire::{
    AddServerResourcesRequest, CreateServiceRequest, UpdateServiceRequest, UpgradeServiceRequest,
    PUBLIC_BORDER_GROUP,
};
use vpcep_domain::service::{
    merge_server_resources, parse_create, parse_rename, parse_server_resources, parse_update,
    parse_upgrade, EndpointService, ServiceStatus, ServiceType,
};
use vpcep_domain::time::now_millis;
use vpcep_domain::{ApiError, ApiResult, ErrorCode};
use vpcep_store::{ServiceFilter, ServiceLookup, ServiceScope};

/// A path id that is not a UUID names nothing: 404, like an unknown one.
pub fn path_id(kind: &str, id: &str) -> ApiResult<Uuid> {
    Uuid::try_parse(id)
        .ok()
        .filter(|_| id.len() == 36)
        .ok_or_else(|| ApiError::not_found(kind, id))
}

const KIND: &str = "endpoint service";

/// `create_endpoint_service`: validates, stores the service as `creating` and wakes the reconciler.
pub async fn create_service(
    ctx: &Ctx,
    caller: &Caller,
    req: &CreateServiceRequest,
) -> ApiResult<EndpointService> {
    let new = parse_create(req)?;
    if new.service_type == ServiceType::Gateway && !caller.account.operator {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "Only operator accounts may create gateway endpoint services; use service_type interface",
        ));
    }
    let id = new_id();
    let now = now_millis();
    let mut service = EndpointService {
        id,
        project_id: caller.project_id.clone(),
        domain_id: caller.account.domain_id.clone(),
        full_name: EndpointService::full_name(&ctx.region, new.short_name.as_deref(), id),
        short_name: new.short_name,
        port_id: new.port_id,
        vpc_id: new.vpc_id,
        server_type: new.server_type,
        service_type: new.service_type,
        approval_enabled: new.approval_enabled,
        status: ServiceStatus::Creating,
        tcp_proxy: new.tcp_proxy,
        ports: new.ports,
        tags: {
            let mut t = new.tags;
            t.sort();
            t
        },
        description: new.description,
        ip: new.ip,
        ip_version: new.ip_version,
        snat_network_id: new.snat_network_id,
        enable_policy: new.enable_policy,
        supported_editions: vec!["basic".into()],
        error: None,
        created_at: now,
        updated_at: now,
        server_resources: Vec::new(),
        connection_count: 0,
        endpoint_count: 0,
    };
    // With nothing to wait for, the reconciler would make the service available moments later
    // in a second write of its row: it is stored available at once instead. The answer says
    // `creating`, as the API's create does; the next read shows `available`.
    let at_once = ctx.creation_completes_at_once();
    if at_once {
        service.status = ServiceStatus::Available;
    }
    ctx.store
        .create_service(&service, caller.account.quotas.endpoint_service)
        .await?;
    if at_once {
        service.status = ServiceStatus::Creating;
    } else {
        ctx.wake_reconciler();
    }
    Ok(service)
}

/// `list_service_details`: one of the caller's services.
pub async fn show_service(ctx: &Ctx, caller: &Caller, id: &str) -> ApiResult<EndpointService> {
    let uuid = path_id(KIND, id)?;
    ctx.store
        .get_service(&caller.project_id, uuid)
        .await?
        .ok_or_else(|| ApiError::not_found(KIND, id))
}

fn service_filter(q: &QueryParams) -> ApiResult<ServiceFilter> {
    Ok(ServiceFilter {
        name_contains: q.get("endpoint_service_name").map(str::to_string),
        id: q.get("id").map(str::to_string),
        status: q
            .get("status")
            .map(|s| ServiceStatus::parse("status", s, ErrorCode::InvalidStatus))
            .transpose()?,
    })
}

/// Every resource here sits in the one border group; a filter on another matches nothing.
fn other_border_group(q: &QueryParams) -> bool {
    q.get("public_border_group")
        .is_some_and(|g| g != PUBLIC_BORDER_GROUP)
}

/// `list_endpoint_service`: a page of the caller's services and the total.
pub async fn list_services(
    ctx: &Ctx,
    caller: &Caller,
    q: &QueryParams,
) -> ApiResult<(Vec<EndpointService>, u64)> {
    let page = parse_page(q, MAX_LIMIT)?;
    let filter = service_filter(q)?;
    if other_border_group(q) {
        return Ok((Vec::new(), 0));
    }
    Ok(ctx
        .store
        .list_services(
            &ServiceScope::Project(caller.project_id.clone()),
            &filter,
            &page,
        )
        .await?)
}

/// `list_service_public_details`: a page of the public services (those of operator accounts).
pub async fn list_public_services(
    ctx: &Ctx,
    q: &QueryParams,
) -> ApiResult<(Vec<EndpointService>, u64)> {
    let page = parse_page(q, MAX_LIMIT)?;
    let filter = ServiceFilter {
        status: None,
        ..service_filter(q)?
    };
    let scope = ServiceScope::Domains(ctx.accounts.operator_domains().to_vec());
    Ok(ctx.store.list_services(&scope, &filter, &page).await?)
}

/// `list_service_describe_details`: the summary of any service, by `id` or full
/// `endpoint_service_name`.
pub async fn describe_service(ctx: &Ctx, q: &QueryParams) -> ApiResult<EndpointService> {
    let (lookup, shown) = match (q.get("id"), q.get("endpoint_service_name")) {
        (Some(id), _) => (ServiceLookup::Id(path_id(KIND, id)?), id),
        (None, Some(name)) => (ServiceLookup::FullName(name.to_string()), name),
        (None, None) => {
            return Err(ApiError::param(
                "Either id or endpoint_service_name must be given",
            ))
        }
    };
    ctx.store
        .find_service(&lookup)
        .await?
        .ok_or_else(|| ApiError::not_found(KIND, shown))
}

async fn modify(
    ctx: &Ctx,
    caller: &Caller,
    id: &str,
    mutate: impl Fn(&mut EndpointService) -> ApiResult<()> + Send + Sync + 'static,
) -> ApiResult<EndpointService> {
    let uuid = path_id(KIND, id)?;
    Ok(ctx
        .store
        .modify_service(
            &caller.project_id,
            uuid,
            now_millis(),
            std::sync::Arc::new(mutate),
        )
        .await?)
}

/// `update_endpoint_service`: applies the given fields; `ports` replaces the list (claims
/// re-checked in the store).
pub async fn update_service(
    ctx: &Ctx,
    caller: &Caller,
    id: &str,
    req: &UpdateServiceRequest,
) -> ApiResult<EndpointService> {
    let patch = parse_update(req)?;
    let region = ctx.region.clone();
    modify(ctx, caller, id, move |s| {
        s.status.ensure_modifiable()?;
        patch.apply_to(s);
        s.full_name = EndpointService::full_name(&region, s.short_name.as_deref(), s.id);
        Ok(())
    })
    .await
}

/// `update_endpoint_service_name`: sets the short name and answers the new full name.
pub async fn rename_service(
    ctx: &Ctx,
    caller: &Caller,
    id: &str,
    name: Option<&str>,
) -> ApiResult<String> {
    let short = parse_rename(name)?;
    let region = ctx.region.clone();
    let s = modify(ctx, caller, id, move |s| {
        s.status.ensure_modifiable()?;
        s.full_name = EndpointService::full_name(&region, short.as_deref(), s.id);
        s.short_name = short.clone();
        Ok(())
    })
    .await?;
    Ok(s.full_name)
}

/// `delete_endpoint_service`: marks the service `deleting`; the reconciler removes it. Deleting
/// again while it is being deleted is accepted and changes nothing.
pub async fn delete_service(ctx: &Ctx, caller: &Caller, id: &str) -> ApiResult<()> {
    modify(ctx, caller, id, |s| {
        if s.status != ServiceStatus::Deleting {
            s.ensure_deletable()?;
            s.status = ServiceStatus::Deleting;
        }
        Ok(())
    })
    .await?;
    ctx.wake_reconciler();
    Ok(())
}

/// v2 `add_endpoint_service_server_resource`: adds backend resources (`resource_id` deduplicated,
/// at most 20 in all). Each `resource_id` names a port of the caller's project in the service's
/// VPC, as `port_id` does at create: not a port id is EndPoint.3003, no such port in the project
/// EndPoint.3008, a port of another VPC EndPoint.3042. A service being deleted is EndPoint.3045.
pub async fn add_server_resources(
    ctx: &Ctx,
    caller: &Caller,
    id: &str,
    req: &AddServerResourcesRequest,
) -> ApiResult<()> {
    let new = parse_server_resources(req)?;
    let service = show_service(ctx, caller, id).await?;
    service.status.ensure_modifiable()?;
    for (i, r) in new.iter().enumerate() {
        let field = format!("server_resources[{i}].resource_id");
        let port_id = parse_uuid(&field, &r.resource_id, ErrorCode::InvalidPortId)?;
        let port = ctx
            .store
            .get_port(&caller.project_id, port_id)
            .await?
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::PortNotFound,
                    format!("Invalid {field}: the port {port_id} does not exist in this project"),
                )
            })?;
        if port.vpc_id != service.vpc_id {
            return Err(ApiError::new(
                ErrorCode::PortNotInVpc,
                format!(
                    "Invalid {field}: the port {port_id} belongs to VPC {}, not to the service's VPC {}",
                    port.vpc_id, service.vpc_id
                ),
            ));
        }
    }
    modify(ctx, caller, id, move |s| {
        s.status.ensure_modifiable()?;
        merge_server_resources(&mut s.server_resources, new.clone())
    })
    .await?;
    Ok(())
}

/// v2 `upgrade_endpoint_service`: `upgrade` (also no body, as the SDK sends) makes
/// `supported_editions` `["basic","profession"]`, `rollback` makes it `["basic"]`; repeating one
/// changes nothing. A service being deleted is EndPoint.3045.
pub async fn upgrade_service(
    ctx: &Ctx,
    caller: &Caller,
    id: &str,
    req: Option<&UpgradeServiceRequest>,
) -> ApiResult<()> {
    let action = parse_upgrade(req)?;
    modify(ctx, caller, id, move |s| {
        s.status.ensure_modifiable()?;
        s.supported_editions = action.editions();
        Ok(())
    })
    .await?;
    Ok(())
}
