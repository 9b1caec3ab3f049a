//! The control plane's side of the data plane: the desired-state feed agents long-poll, and
//! their reports, which the reconciler turns into `available`/`accepted`/`failed`.

use crate::Ctx;
use std::time::Duration;
use vpcep_domain::dataplane::{AgentReport, Snapshot};
use vpcep_domain::time::now_millis;
use vpcep_domain::{ApiError, ApiResult};

/// Longest long-poll an agent may ask for.
pub const MAX_WAIT: Duration = Duration::from_secs(60);
/// Long-poll length when the agent does not say.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(30);
/// Default grace (`--agent-grace`): an agent that has not reported for this long no longer
/// counts as alive, and an endpoint no live agent serves for this long is `failed`.
pub const DEFAULT_AGENT_GRACE: Duration = Duration::from_secs(30);
/// Reports asked of agents per grace period (so that one lost report does not kill an agent).
const REPORTS_PER_GRACE: u32 = 3;
/// How often a waiting long-poll looks for a new version.
const POLL_EVERY: Duration = Duration::from_millis(50);

/// The desired state, as soon as its version differs from `since` (at once without `since`),
/// else after `wait` with whatever is current.
pub async fn snapshot(ctx: &Ctx, since: Option<u64>, wait: Duration) -> ApiResult<Snapshot> {
    let deadline = tokio::time::Instant::now() + wait.min(MAX_WAIT);
    if let Some(since) = since {
        while tokio::time::Instant::now() < deadline {
            if ctx.store.dataplane_version().await? != since {
                break;
            }
            tokio::time::sleep(
                POLL_EVERY.min(deadline.saturating_duration_since(tokio::time::Instant::now())),
            )
            .await;
        }
    }
    let mut snapshot = ctx.store.dataplane_snapshot(&ctx.policy).await?;
    snapshot.report_every_ms =
        u64::try_from((ctx.agent_grace / REPORTS_PER_GRACE).as_millis()).ok();
    Ok(snapshot)
}

/// Records an agent's report and lets the reconciler act on it.
pub async fn report(ctx: &Ctx, report: &AgentReport) -> ApiResult<()> {
    if report.agent_id.is_empty() || report.agent_id.len() > 128 {
        return Err(ApiError::param("agent_id must have 1 to 128 characters"));
    }
    ctx.store.record_agent_report(report, now_millis()).await?;
    ctx.wake_reconciler();
    Ok(())
}
