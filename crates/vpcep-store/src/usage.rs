//! Per-project usage counters (`project_usage`): what quotas are checked against. A resource's
//! create takes a unit inside its transaction; its removal gives it back.

use crate::conn::{query, query_scalar, Conn};
use crate::sql::SqlStore;
use crate::{StoreError, StoreResult, USAGE_PORT, USAGE_SUBNET, USAGE_VPC};
use vpcep_domain::{ApiError, ErrorCode};

/// Takes one unit of `resource` usage for a project if that stays within `quota`: one
/// conditional upsert, so concurrent takers on any node serialize on the counter row and the
/// quota holds exactly. Refused: Endpoint.1018 for the VPCEP resources, 409 VPC.0114 for the
/// network resources' (`vpc`, `subnet`, `port`).
pub(crate) async fn take(
    conn: &mut Conn,
    project_id: &str,
    resource: &str,
    quota: u64,
) -> StoreResult<()> {
    let exceeded = || -> StoreError {
        if matches!(resource, USAGE_VPC | USAGE_SUBNET | USAGE_PORT) {
            return ApiError::new(
                ErrorCode::NetworkQuotaExceeded,
                format!(
                    "Quota exceeded for resources: ['{resource}']: the project already has its quota of {quota}"
                ),
            )
            .into();
        }
        ApiError::new(
            ErrorCode::QuotaExceeded,
            format!(
                "Quota exceeded: the project already has its quota of {quota} {resource} resources"
            ),
        )
        .into()
    };
    if quota == 0 {
        return Err(exceeded());
    }
    let taken: Option<i64> = query_scalar(
        "INSERT INTO project_usage (project_id, resource, used) VALUES ($1, $2, 1) \
         ON CONFLICT (project_id, resource) DO UPDATE SET used = project_usage.used + 1 \
         WHERE project_usage.used < $3 RETURNING used",
    )
    .bind(project_id)
    .bind(resource)
    .bind(i64::try_from(quota).unwrap_or(i64::MAX))
    .fetch_optional(&mut *conn)
    .await?;
    taken.map(|_| ()).ok_or_else(exceeded)
}

/// Gives back `n` units of `resource` usage.
pub(crate) async fn release(
    conn: &mut Conn,
    project_id: &str,
    resource: &str,
    n: i64,
) -> StoreResult<()> {
    query("UPDATE project_usage SET used = used - $3 WHERE project_id = $1 AND resource = $2")
        .bind(project_id)
        .bind(resource)
        .bind(n)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Reads the usage counter of a project.
pub(crate) async fn read(conn: &mut Conn, project_id: &str, resource: &str) -> StoreResult<u64> {
    let used: Option<i64> =
        query_scalar("SELECT used FROM project_usage WHERE project_id = $1 AND resource = $2")
            .bind(project_id)
            .bind(resource)
            .fetch_optional(&mut *conn)
            .await?;
    Ok(used.unwrap_or(0).max(0) as u64)
}

impl SqlStore {
    /// The usage counter of `resource` ([`crate::USAGE_ENDPOINT_SERVICE`],
    /// [`crate::USAGE_ENDPOINT`], [`USAGE_VPC`], [`USAGE_SUBNET`], [`USAGE_PORT`]) of a project:
    /// resources it holds, those being deleted included.
    pub async fn project_usage(&self, project_id: &str, resource: &str) -> StoreResult<u64> {
        let mut c = self.reader().await?;
        read(&mut c, project_id, resource).await
    }
}
