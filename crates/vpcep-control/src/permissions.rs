//! Permission (whitelist) operations of an endpoint service (`add_or_remove_service_permissions`,
//! `batch_add_endpoint_service_permissions`, `batch_remove_endpoint_service_permissions`,
//! `list_service_permissions_details`, `update_endpoint_service_permission_desc`). Each validates
//! with the domain, then makes one store call on a service of the caller's project (404
//! EndPoint.0005 otherwise); every change is one transaction.

use crate::services::path_id;
use crate::{Caller, Ctx};
use vpcep_domain::ids::new_id;
use vpcep_domain::list::{parse_page, QueryParams, MAX_PERMISSION_LIMIT};
use vpcep_domain::permission::wire::{
    BatchAddPermissionsRequest, BatchRemovePermissionsRequest, PermissionActionRequest,
    UpdatePermissionDescRequest,
};
use vpcep_domain::permission::{
    parse_batch_create, parse_batch_delete, parse_permission_action, parse_permission_description,
    Permission, PermissionAction, PermissionEdit, PermissionType,
};
use vpcep_domain::time::now_millis;
use vpcep_domain::ApiResult;
use vpcep_store::PermissionChange;

const KIND: &str = "endpoint service";

fn record(
    service_id: uuid::Uuid,
    entry: &str,
    kind: PermissionType,
    description: &str,
    now: i64,
) -> Permission {
    Permission {
        id: new_id(),
        service_id,
        permission: entry.to_string(),
        permission_type: kind,
        description: description.to_string(),
        created_at: now,
        updated_at: now,
    }
}

/// `list_service_permissions_details`: a page of the service's records (`permission`:
/// case-insensitive substring filter; `limit` 1–500, default 10) and the total matching.
pub async fn list_permissions(
    ctx: &Ctx,
    caller: &Caller,
    id: &str,
    q: &QueryParams,
) -> ApiResult<(Vec<Permission>, u64)> {
    let service = path_id(KIND, id)?;
    let page = parse_page(q, MAX_PERMISSION_LIMIT)?;
    Ok(ctx
        .store
        .list_permissions(&caller.project_id, service, q.get("permission"), &page)
        .await?)
}

/// `add_or_remove_service_permissions`: adds (idempotently, with an empty description) or removes
/// (absent ones ignored) the entries; answers the validated request, which the response echoes.
pub async fn permission_action(
    ctx: &Ctx,
    caller: &Caller,
    id: &str,
    req: &PermissionActionRequest,
) -> ApiResult<PermissionEdit> {
    let edit = parse_permission_action(req)?;
    let service = path_id(KIND, id)?;
    let now = now_millis();
    let change = match edit.action {
        PermissionAction::Add => PermissionChange::Add(
            edit.entries
                .iter()
                .map(|e| record(service, e, edit.permission_type, "", now))
                .collect(),
        ),
        PermissionAction::Remove => PermissionChange::RemoveEntries(edit.entries.clone()),
    };
    ctx.store
        .change_permissions(&caller.project_id, service, now, change)
        .await?;
    Ok(edit)
}

/// `batch_add_endpoint_service_permissions`: creates the records of new entries; entries already
/// present take the given description. Answers the record of each distinct entry, in request order.
pub async fn batch_add_permissions(
    ctx: &Ctx,
    caller: &Caller,
    id: &str,
    req: &BatchAddPermissionsRequest,
) -> ApiResult<Vec<Permission>> {
    let (kind, entries) = parse_batch_create(req)?;
    let service = path_id(KIND, id)?;
    let now = now_millis();
    let records = entries
        .iter()
        .map(|e| record(service, &e.permission, kind, &e.description, now))
        .collect();
    Ok(ctx
        .store
        .change_permissions(
            &caller.project_id,
            service,
            now,
            PermissionChange::Upsert(records),
        )
        .await?)
}

/// `batch_remove_endpoint_service_permissions`: deletes the records with the given ids, all or none
/// (an unknown id is 404); answers the deleted records.
pub async fn batch_remove_permissions(
    ctx: &Ctx,
    caller: &Caller,
    id: &str,
    req: &BatchRemovePermissionsRequest,
) -> ApiResult<Vec<Permission>> {
    let ids = parse_batch_delete(req)?;
    let service = path_id(KIND, id)?;
    Ok(ctx
        .store
        .change_permissions(
            &caller.project_id,
            service,
            now_millis(),
            PermissionChange::RemoveIds(ids),
        )
        .await?)
}

/// `update_endpoint_service_permission_desc`: sets the description of one record of the service
/// (404 for an unknown one).
pub async fn update_permission_description(
    ctx: &Ctx,
    caller: &Caller,
    id: &str,
    permission_id: &str,
    req: &UpdatePermissionDescRequest,
) -> ApiResult<Vec<Permission>> {
    let description = parse_permission_description(req)?;
    let service = path_id(KIND, id)?;
    let record = path_id("permission", permission_id)?;
    Ok(ctx
        .store
        .change_permissions(
            &caller.project_id,
            service,
            now_millis(),
            PermissionChange::Describe {
                id: record,
                description,
            },
        )
        .await?)
}
