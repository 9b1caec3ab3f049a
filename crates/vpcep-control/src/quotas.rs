//! Resource quotas (#14): per-project usage from the store's counters, limits from the caller's
//! account (`[account.quotas]` in the accounts file).

use crate::{store_error, Caller, Ctx};
use vpcep_domain::list::QueryParams;
use vpcep_domain::quota::{parse_quota_type, QuotaType, QuotaUsage};
use vpcep_domain::ApiResult;
use vpcep_store::{USAGE_ENDPOINT, USAGE_ENDPOINT_SERVICE};

/// #14: one row per kind (`type` filter: `endpoint_service` | `endpoint`, else EndPoint.0002).
pub async fn list_quotas(
    ctx: &Ctx,
    caller: &Caller,
    q: &QueryParams,
) -> ApiResult<Vec<QuotaUsage>> {
    let mut rows = Vec::new();
    for kind in parse_quota_type(q.get("type"))? {
        let (resource, quota) = match kind {
            QuotaType::Endpoint => (USAGE_ENDPOINT, caller.account.quotas.endpoint),
            QuotaType::EndpointService => (
                USAGE_ENDPOINT_SERVICE,
                caller.account.quotas.endpoint_service,
            ),
        };
        let used = ctx
            .store
            .project_usage(&caller.project_id, resource)
            .await
            .map_err(store_error)?;
        rows.push(QuotaUsage { kind, used, quota });
    }
    Ok(rows)
}
