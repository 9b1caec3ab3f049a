//! Resource quotas (`list_quota_details`): per-project usage from the store's counters, limits from
//! the caller's account (`[account.quotas]` in the accounts file).

use crate::{Caller, Ctx};
use vpcep_domain::list::QueryParams;
use vpcep_domain::quota::{parse_quota_type, QuotaType, QuotaUsage};
use vpcep_domain::ApiResult;
use vpcep_store::{USAGE_ENDPOINT, USAGE_ENDPOINT_SERVICE, USAGE_PORT, USAGE_SUBNET, USAGE_VPC};

/// `list_quota_details`: one row per kind. Without `type`: `endpoint` and `endpoint_service`;
/// `type` names one of those or the network resources' `vpc`, `subnet`, `port` (else
/// EndPoint.0002).
pub async fn list_quotas(
    ctx: &Ctx,
    caller: &Caller,
    q: &QueryParams,
) -> ApiResult<Vec<QuotaUsage>> {
    let mut rows = Vec::new();
    for kind in parse_quota_type(q.get("type"))? {
        let q = &caller.account.quotas;
        let (resource, quota) = match kind {
            QuotaType::Endpoint => (USAGE_ENDPOINT, q.endpoint),
            QuotaType::EndpointService => (USAGE_ENDPOINT_SERVICE, q.endpoint_service),
            QuotaType::Vpc => (USAGE_VPC, q.vpc),
            QuotaType::Subnet => (USAGE_SUBNET, q.subnet),
            QuotaType::Port => (USAGE_PORT, q.port),
        };
        let used = ctx
            .store
            .project_usage(&caller.project_id, resource)
            .await?;
        rows.push(QuotaUsage { kind, used, quota });
    }
    Ok(rows)
}
