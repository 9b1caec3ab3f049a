//! The reconciler's transitions: due services, then their endpoints, settle in one transaction
//! (services first, so that endpoints see their service's new status).

use crate::sql::SqlStore;
use crate::{services, DataplaneGate, StoreResult};

impl SqlStore {
    /// Moves services that have been `creating` since `cutoff` or earlier to `available`;
    /// answers how many moved. Safe to run on several nodes at once.
    pub async fn complete_creations(&self, cutoff: i64, now: i64, limit: u32) -> StoreResult<u64> {
        self.complete_due(cutoff, now, limit, None).await
    }

    /// Like [`SqlStore::complete_creations`], but with a data plane: services become `available`
    /// only while an agent is alive (`failed` when the data plane may not connect to their
    /// backend), and endpoints follow live agents' reports (`accepted` ⇄ `failed`; see
    /// [`DataplaneGate`]).
    pub async fn complete_creations_gated(
        &self,
        cutoff: i64,
        now: i64,
        limit: u32,
        gate: DataplaneGate,
    ) -> StoreResult<u64> {
        self.complete_due(cutoff, now, limit, Some(gate)).await
    }

    /// Due `creating` services become `available` (see
    /// [`complete_service_creations`](services::complete_service_creations)), then endpoints
    /// settle; one transaction.
    async fn complete_due(
        &self,
        cutoff: i64,
        now: i64,
        limit: u32,
        gate: Option<DataplaneGate>,
    ) -> StoreResult<u64> {
        let lock = self.dialect.skip_locked();
        let gate = std::sync::Arc::new(gate);
        self.write_retryable(move |c| {
            let gate = gate.clone();
            Box::pin(async move {
                let services = services::complete_service_creations(
                    c,
                    lock,
                    cutoff,
                    now,
                    limit,
                    Option::as_ref(&gate),
                )
                .await?;
                let endpoints = SqlStore::complete_endpoint_creations(
                    c,
                    lock,
                    cutoff,
                    now,
                    limit,
                    Option::as_ref(&gate),
                )
                .await?;
                if services + endpoints > 0 {
                    crate::dataplane::bump_version(c).await?;
                }
                Ok(services + endpoints)
            })
        })
        .await
    }

    /// Removes services that have been `deleting` since `cutoff` or earlier, with their claims,
    /// tags and usage; answers how many went. Safe to run on several nodes at once.
    pub async fn complete_deletions(&self, cutoff: i64, limit: u32) -> StoreResult<u64> {
        let lock = self.dialect.skip_locked();
        self.write_retryable(move |c| {
            Box::pin(async move {
                let services = services::remove_deleted_services(c, lock, cutoff, limit).await?;
                let endpoints = SqlStore::remove_deleted_endpoints(c, lock, cutoff, limit).await?;
                if services + endpoints > 0 {
                    crate::dataplane::bump_version(c).await?;
                }
                Ok(services + endpoints)
            })
        })
        .await
    }
}
