//! The reconciler: finishes transitional states that requests only start. A service created as
//! `creating` becomes `available`, and one marked `deleting` is removed, once it has been in
//! that state for the provisioning delay. Each step is one idempotent store transaction that
//! takes disjoint rows on each node (`FOR UPDATE SKIP LOCKED` on PostgreSQL), so any number of
//! nodes may run it, and a crash between steps leaves a state the next pass finishes.

use crate::Ctx;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use vpcep_domain::time::now_millis;
use vpcep_store::DataplaneGate;

/// Rows one step handles at most; a full batch makes the loop go again at once.
const BATCH: u32 = 256;
/// Longest sleep between passes when nothing wakes the loop (other nodes' work, delays).
const MAX_IDLE: Duration = Duration::from_millis(200);
/// After a look for address claims to settle found none, the loop's passes skip that look until
/// a claim is freed somewhere (the store's `claims_freed` counter moves), and for at least this
/// long. The look reads every resource still waiting for an address another VPC holds, and
/// every create wakes the loop: without this a tenant's blocked resources (within its quotas)
/// would be read again for each create of any tenant, and with the pause alone still four times
/// a second.
const SETTLE_PAUSE: Duration = Duration::from_millis(250);
/// The look runs at least this often even when no claim was freed: a node of an older version
/// (during a rolling upgrade) frees claims without moving the counter.
const SETTLE_ANYWAY: Duration = Duration::from_secs(60);

/// One pass over every kind of transition; answers how many resources moved.
pub async fn reconcile_once(ctx: &Ctx) -> Result<u64, vpcep_store::StoreError> {
    Ok(pass(ctx, true).await?.moved)
}

/// What one pass did.
struct Pass {
    /// Resources that finished a transition.
    moved: u64,
    /// Resources that got their address (`None`: claims were not looked at).
    settled: Option<u64>,
}

/// One pass; `settle`: whether it also settles address claims.
async fn pass(ctx: &Ctx, settle: bool) -> Result<Pass, vpcep_store::StoreError> {
    let now = now_millis();
    let cutoff = now - i64::try_from(ctx.provisioning_delay.as_millis()).unwrap_or(i64::MAX);
    // Addresses first: a service or endpoint is judged on what its VPC holds.
    let settled = if settle {
        Some(ctx.store.settle_claims(BATCH).await?)
    } else {
        None
    };
    let created = if ctx.dataplane {
        let ttl = i64::try_from(ctx.agent_grace.as_millis()).unwrap_or(i64::MAX);
        let gate = DataplaneGate {
            alive_since: now - ttl,
            unserved_before: (now - ctx.started_at >= ttl).then_some(now - ttl),
            policy: (*ctx.policy).clone(),
        };
        ctx.store
            .complete_creations_gated(cutoff, now, BATCH, gate)
            .await?
    } else {
        ctx.store.complete_creations(cutoff, now, BATCH).await?
    };
    let deleted = ctx.store.complete_deletions(cutoff, BATCH).await?;
    if created + deleted > 0 {
        tracing::debug!(created, deleted, "reconciled");
        metrics::counter!("vpcep_reconciler_transitions_total").increment(created + deleted);
    }
    // Lag: how long past its due time the oldest unfinished transition is (0 when none is due).
    let lag_ms = ctx
        .store
        .oldest_transition()
        .await?
        .map_or(0, |t| (cutoff - t).max(0));
    metrics::gauge!("vpcep_reconciler_lag_seconds").set(lag_ms as f64 / 1000.0);
    Ok(Pass {
        moved: created + deleted,
        settled,
    })
}

/// How often the agents' metrics are refreshed.
const AGENT_METRICS_EVERY: Duration = Duration::from_secs(5);

/// Exports what the control plane knows of its agents (no tenant identifiers):
/// `vpcep_agents_alive`, `vpcep_agents_last_report_age_seconds{agent_id}` and
/// `vpcep_endpoints_by_serving_agents{agents}` (endpoints the owner wants, by how many live
/// agents serve them: `0`, `1`, `2`, `3+`).
pub async fn export_agent_metrics(ctx: &Ctx) -> Result<(), vpcep_store::StoreError> {
    let now = now_millis();
    let grace = i64::try_from(ctx.agent_grace.as_millis()).unwrap_or(i64::MAX);
    let o = ctx.store.agents_overview(now - grace).await?;
    let alive = o.agents.iter().filter(|(_, t)| *t >= now - grace).count();
    metrics::gauge!("vpcep_agents_alive").set(alive as f64);
    for (id, t) in &o.agents {
        metrics::gauge!("vpcep_agents_last_report_age_seconds", "agent_id" => id.clone())
            .set((now - t).max(0) as f64 / 1000.0);
    }
    let mut buckets = [0u64; 4];
    for (n, count) in &o.endpoints_by_serving_agents {
        buckets[usize::try_from(*n).unwrap_or(3).min(3)] += count;
    }
    for (label, v) in ["0", "1", "2", "3+"].iter().zip(buckets) {
        metrics::gauge!("vpcep_endpoints_by_serving_agents", "agents" => *label).set(v as f64);
    }
    Ok(())
}

/// When the reconciler looks for resources waiting on an address (see [`SETTLE_PAUSE`]).
#[derive(Debug, Default)]
struct SettleGate {
    /// The last look that settled nothing: when it ran, and `claims_freed` as read before it.
    quiet: Option<(Instant, i64)>,
}

impl SettleGate {
    /// Within the pause after a fruitless look (no need to read the counter).
    fn paused(&self, now: Instant) -> bool {
        self.quiet
            .is_some_and(|(at, _)| now.saturating_duration_since(at) < SETTLE_PAUSE)
    }

    /// Whether to look now, `freed` being the counter read just before.
    fn due(&self, now: Instant, freed: i64) -> bool {
        match self.quiet {
            None => true,
            Some((at, n)) => {
                let since = now.saturating_duration_since(at);
                since >= SETTLE_PAUSE && (freed != n || since >= SETTLE_ANYWAY)
            }
        }
    }

    /// A look ran after reading `freed`, and `settled` resources got their address.
    fn looked(&mut self, now: Instant, freed: i64, settled: u64) {
        self.quiet = (settled == 0).then_some((now, freed));
    }
}

/// Runs passes until `shutdown` fires: again at once after a full batch, else when woken or
/// after a short idle wait. Store errors are logged and retried on the next pass.
pub async fn run(ctx: Arc<Ctx>, shutdown: CancellationToken) {
    let mut agent_metrics_at = Instant::now();
    let mut settle = SettleGate::default();
    loop {
        if ctx.dataplane && Instant::now() >= agent_metrics_at {
            agent_metrics_at = Instant::now() + AGENT_METRICS_EVERY;
            if let Err(e) = export_agent_metrics(&ctx).await {
                tracing::warn!(error = %e, "cannot read the agents' state for metrics");
            }
        }
        // Read before the look, so that a claim freed while it runs moves the counter past it.
        let freed = if settle.paused(Instant::now()) {
            None
        } else {
            match ctx.store.claims_freed().await {
                Ok(n) => Some(n),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the freed-claims counter");
                    None
                }
            }
        };
        let look = freed.is_some_and(|n| settle.due(Instant::now(), n));
        let moved = match pass(&ctx, look).await {
            Ok(p) => {
                if let (Some(n), Some(settled)) = (freed, p.settled) {
                    settle.looked(Instant::now(), n, settled);
                }
                p.moved
            }
            Err(e) => {
                tracing::warn!(error = %e, "reconciler pass failed; retrying");
                0
            }
        };
        if moved >= u64::from(BATCH) {
            continue;
        }
        let idle = if ctx.provisioning_delay.is_zero() {
            MAX_IDLE
        } else {
            MAX_IDLE
                .min(ctx.provisioning_delay / 4)
                .max(Duration::from_millis(10))
        };
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ctx.reconciler_wake.notified() => {}
            _ = tokio::time::sleep(idle) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_look_for_waiting_resources_runs_again_only_once_a_claim_is_freed() {
        let t0 = Instant::now();
        let mut g = SettleGate::default();
        assert!(!g.paused(t0) && g.due(t0, 7), "the first pass looks");
        g.looked(t0, 7, 0);
        let later = t0 + SETTLE_PAUSE;
        assert!(
            g.paused(t0 + SETTLE_PAUSE / 2),
            "paused after a fruitless look"
        );
        assert!(
            !g.due(t0 + SETTLE_PAUSE / 2, 8),
            "even if a claim was freed meanwhile"
        );
        assert!(!g.paused(later));
        assert!(!g.due(later, 7), "nothing freed: no look");
        assert!(!g.due(t0 + SETTLE_ANYWAY / 2, 7));
        assert!(g.due(later, 8), "a claim was freed: look");
        assert!(
            g.due(t0 + SETTLE_ANYWAY, 7),
            "and at least every SETTLE_ANYWAY"
        );
        // A look that settled something looks again on the next pass.
        g.looked(later, 8, 3);
        assert!(!g.paused(later) && g.due(later, 8));
    }
}
