//! Per-project usage counters (`usage_slots`): what quotas are checked against. A resource's
//! create takes a unit inside its transaction; its removal gives it back.
//!
//! On SQLite (one writer) a project has one row per kind. On PostgreSQL, where several nodes
//! create at once, a taken unit stays locked until its transaction's commit is flushed, so
//! one row per project made a project's creates wait for each other's flush (in a profile of
//! creates at 32 clients, most backends waited on that row lock). There a project's usage of a
//! kind is split over [`PG_SLOTS`] rows (`slot`), each with its count (`used`) and its
//! allowance (`cap`) for the quota it was set for (`quota`). The allowances sum to the quota and
//! no count passes its allowance, so the counts' sum stays within the quota, exactly, on any
//! number of nodes:
//! - a take adds a unit to a slot with room (`used < cap`, `quota` the caller's), each taker
//!   starting its search at another slot, waiting only for the slot it picked;
//! - when no slot has room, or the quota changed, the take locks every slot (in slot order)
//!   and, if the sum is below the quota, shares out the remaining room again (allowance = count
//!   plus a share) and takes its unit; else it refuses;
//! - a release takes the units off slot 0: a count below its allowance keeps the sums right.

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

/// The slots a project's usage of a kind is split over on PostgreSQL: as many of its creates
/// can wait for their commit at once.
pub(crate) const PG_SLOTS: i64 = 16;

/// Takes one unit of `resource` usage for a project if that stays within `quota`, else refuses
/// ([`exceeded`]). The quota holds exactly under concurrent takers on any node: on SQLite they
/// serialize on the project's counter (a unit on it, else a new counter: [`add_or_insert`]); on
/// PostgreSQL see the module docs.
pub(crate) async fn take(
    conn: &mut Conn,
    project_id: &str,
    resource: &str,
    quota: u64,
) -> StoreResult<()> {
    if quota == 0 {
        return Err(exceeded(resource, quota));
    }
    if conn.is_postgres() {
        return take_pg(conn, project_id, resource, quota).await;
    }
    let add_unit = || {
        query(
            "UPDATE usage_slots SET used = used + 1 \
             WHERE project_id = $1 AND resource = $2 AND used < $3",
        )
        .bind(project_id)
        .bind(resource)
        .bind(i64::try_from(quota).unwrap_or(i64::MAX))
    };
    let insert = query(
        "INSERT INTO usage_slots (project_id, resource, used) VALUES ($1, $2, 1) \
         ON CONFLICT DO NOTHING",
    )
    .bind(project_id)
    .bind(resource);
    if add_or_insert(conn, add_unit, insert).await? {
        return Ok(());
    }
    Err(exceeded(resource, quota))
}

/// Runs a statement without values (a savepoint's).
async fn control(conn: &mut Conn, sql: &str) -> StoreResult<()> {
    query(sql).execute(conn).await?;
    Ok(())
}

/// [`take`] on PostgreSQL: a unit on a slot with room, else the slots' room shared out again.
async fn take_pg(conn: &mut Conn, project_id: &str, resource: &str, quota: u64) -> StoreResult<()> {
    let quota = i64::try_from(quota).unwrap_or(i64::MAX);
    // Where each taker starts looking (in turn), so that concurrent takers pick different slots.
    static NEXT: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);
    let start = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % PG_SLOTS;
    // A slot with room, as this statement's snapshot sees them; the update waits for a taker
    // holding that slot and checks it again, and takes nothing when the room is gone. That
    // check keeps the row locked (PostgreSQL locks the newest version before it rechecks), so
    // the try runs in a savepoint, rolled back before the ordered locking below: a lock held
    // out of slot order there could deadlock with another taker. One try: a second one could
    // wait for a slot while holding such a lock.
    control(conn, "SAVEPOINT usage_take").await?;
    let taken = query(&format!(
        "UPDATE usage_slots SET used = used + 1 \
         WHERE project_id = $1 AND resource = $2 AND used < cap AND quota = $3 \
         AND slot = (SELECT slot FROM usage_slots \
         WHERE project_id = $1 AND resource = $2 AND used < cap AND quota = $3 \
         ORDER BY (slot + $4) % {PG_SLOTS} LIMIT 1)"
    ))
    .bind(project_id)
    .bind(resource)
    .bind(quota)
    .bind(start)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if taken == 1 {
        return control(conn, "RELEASE SAVEPOINT usage_take").await;
    }
    control(conn, "ROLLBACK TO SAVEPOINT usage_take").await?;
    // No slot has room for this quota: every slot, locked in slot order (as every taker that
    // gets here locks them, holding none before), then the room left shared out again.
    query(&format!(
        "INSERT INTO usage_slots (project_id, resource, slot, used, cap, quota) \
         SELECT $1, $2, s, 0, 0, -1 FROM generate_series(0, {}) AS s ON CONFLICT DO NOTHING",
        PG_SLOTS - 1
    ))
    .bind(project_id)
    .bind(resource)
    .execute(&mut *conn)
    .await?;
    let used: Vec<i64> = query_scalar(
        "SELECT used FROM usage_slots WHERE project_id = $1 AND resource = $2 \
         ORDER BY slot FOR UPDATE",
    )
    .bind(project_id)
    .bind(resource)
    .fetch_all(&mut *conn)
    .await?;
    let room = quota.saturating_sub(used.iter().sum());
    if room <= 0 {
        return Err(exceeded(resource, quota as u64));
    }
    // Slot s gets room / PG_SLOTS, and one more while s < room % PG_SLOTS: slot 0 gets at
    // least one, which this take uses in the same statement (`cap` is computed from the count
    // before it).
    query(&format!(
        "UPDATE usage_slots SET quota = $3, cap = used + $4 / {PG_SLOTS} \
         + CASE WHEN slot < $4 % {PG_SLOTS} THEN 1 ELSE 0 END, \
         used = used + CASE WHEN slot = 0 THEN 1 ELSE 0 END \
         WHERE project_id = $1 AND resource = $2"
    ))
    .bind(project_id)
    .bind(resource)
    .bind(quota)
    .bind(room)
    .execute(&mut *conn)
    .await?;
    Ok(())
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

/// Gives back `n` units of `resource` usage (on PostgreSQL off slot 0, whatever slot they were
/// taken on: its count may go below its allowance, or below zero, and the sum stays right).
pub(crate) async fn release(
    conn: &mut Conn,
    project_id: &str,
    resource: &str,
    n: i64,
) -> StoreResult<()> {
    query(
        "UPDATE usage_slots SET used = used - $3 \
         WHERE project_id = $1 AND resource = $2 AND slot = 0",
    )
    .bind(project_id)
    .bind(resource)
    .bind(n)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Reads the usage counter of a project (the sum of its slots).
pub(crate) async fn read(conn: &mut Conn, project_id: &str, resource: &str) -> StoreResult<u64> {
    let used: i64 = query_scalar(
        "SELECT CAST(COALESCE(SUM(used), 0) AS BIGINT) FROM usage_slots \
         WHERE project_id = $1 AND resource = $2",
    )
    .bind(project_id)
    .bind(resource)
    .fetch_one(&mut *conn)
    .await?;
    Ok(used.max(0) as u64)
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
