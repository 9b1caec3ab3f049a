//! Per-project usage counters (`project_usage`): what quotas are checked against. A resource's
//! create takes a unit inside its transaction; its removal gives it back.

use crate::conn::{add_or_insert, query, query_scalar, Conn};
use crate::sql::SqlStore;
use crate::{StoreError, StoreResult, USAGE_PORT, USAGE_SUBNET, USAGE_VPC};
use vpcep_domain::{ApiError, ErrorCode};

/// The refusal of a unit beyond `quota`: Endpoint.1018 for the VPCEP resources, 409 VPC.0114
/// for the network resources' (`vpc`, `subnet`, `port`).
fn exceeded(resource: &str, quota: u64) -> StoreError {
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
}

/// Takes one unit of `resource` usage for a project if that stays within `quota`, else refuses
/// ([`exceeded`]). Concurrent takers on any node serialize on the counter row, so the quota
/// holds exactly. A unit on the project's counter, else a new counter ([`add_or_insert`]).
pub(crate) async fn take(
    conn: &mut Conn,
    project_id: &str,
    resource: &str,
    quota: u64,
) -> StoreResult<()> {
    if quota == 0 {
        return Err(exceeded(resource, quota));
    }
    let add_unit = || {
        query(
            "UPDATE project_usage SET used = used + 1 \
             WHERE project_id = $1 AND resource = $2 AND used < $3",
        )
        .bind(project_id)
        .bind(resource)
        .bind(i64::try_from(quota).unwrap_or(i64::MAX))
    };
    let insert = query(
        "INSERT INTO project_usage (project_id, resource, used) VALUES ($1, $2, 1) \
         ON CONFLICT DO NOTHING",
    )
    .bind(project_id)
    .bind(resource);
    if add_or_insert(conn, add_unit, insert).await? {
        return Ok(());
    }
    Err(exceeded(resource, quota))
}

/// Refuses ([`exceeded`]) when the project already holds `quota` units, without taking one: a
/// create checks it before it writes anything, so that a refusal has nothing to undo. (The
/// [`take`] at the end of the create stays the check that holds under concurrency.)
pub(crate) async fn check(
    conn: &mut Conn,
    project_id: &str,
    resource: &str,
    quota: u64,
) -> StoreResult<()> {
    if read(conn, project_id, resource).await? >= quota {
        return Err(exceeded(resource, quota));
    }
    Ok(())
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
