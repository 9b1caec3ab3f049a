//! Tag operations on services and endpoints (`batch_add_or_remove_resource_instance`,
//! `list_query_project_resource_tags`, `list_resource_instances`).

use crate::services::path_id;
use crate::{Caller, Ctx};
use std::collections::BTreeMap;
use vpcep_domain::tag::wire::{ResourceQueryRequest, TagActionRequest};
use vpcep_domain::tag::{parse_resource_query, parse_tag_change, ResourceKind, Tag};
use vpcep_domain::{ApiResult, ErrorCode};
use vpcep_store::TaggedResource;

/// Parses `{resource_type}` (`endpoint_service` or `endpoint`; else EndPoint.3070).
pub fn resource_kind(v: &str) -> ApiResult<ResourceKind> {
    ResourceKind::parse("resource_type", v, ErrorCode::InvalidResourceType)
}

/// `batch_add_or_remove_resource_instance`: adds or removes tags of one resource (at most 10
/// remain).
pub async fn tag_action(
    ctx: &Ctx,
    caller: &Caller,
    kind: &str,
    id: &str,
    req: &TagActionRequest,
) -> ApiResult<()> {
    let kind = resource_kind(kind)?;
    let id = path_id(kind.as_str(), id)?;
    let change = parse_tag_change(req)?;
    Ok(ctx
        .store
        .modify_tags(
            &caller.project_id,
            kind,
            id,
            std::sync::Arc::new(move |tags| change.apply(tags)),
        )
        .await?)
}

/// `list_query_project_resource_tags`: every key used on the project's resources of a kind, with
/// its distinct values.
pub async fn project_tags(
    ctx: &Ctx,
    caller: &Caller,
    kind: &str,
) -> ApiResult<Vec<(String, Vec<String>)>> {
    let kind = resource_kind(kind)?;
    let tags: Vec<Tag> = ctx.store.project_tags(&caller.project_id, kind).await?;
    let mut by_key: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for t in tags {
        let values = by_key.entry(t.key).or_default();
        if !values.contains(&t.value) {
            values.push(t.value);
        }
    }
    Ok(by_key.into_iter().collect())
}

/// `list_resource_instances`: the resources of a kind that match a tag query: a page of them, or
/// only the count.
pub async fn query_resources(
    ctx: &Ctx,
    caller: &Caller,
    kind: &str,
    req: &ResourceQueryRequest,
) -> ApiResult<(Option<Vec<TaggedResource>>, u64)> {
    let kind = resource_kind(kind)?;
    let q = parse_resource_query(req)?;
    let all = ctx.store.tagged_resources(&caller.project_id, kind).await?;
    let matching: Vec<TaggedResource> = all
        .into_iter()
        .filter(|r| q.matches(&r.name, &r.tags))
        .collect();
    let total = matching.len() as u64;
    if q.count_only {
        return Ok((None, total));
    }
    let page = matching
        .into_iter()
        .skip(usize::try_from(q.offset).unwrap_or(usize::MAX))
        .take(q.limit as usize)
        .collect();
    Ok((Some(page), total))
}
