//! Service permissions (the whitelist of accounts that may connect to a service), stored one row
//! per entry in `service_permissions`, unique per `(service_id, permission)`.
//!
//! Concurrency: every change locks the service row first (`FOR UPDATE` on PostgreSQL; SQLite has
//! one writer), so changes to one service's permissions run one after another: the
//! 500-records limit is checked against what is really there, and two concurrent adds of one
//! entry leave one record (the unique key backs this up). The reconciler deletes the service
//! row and its permissions in one transaction, and holding the row lock makes it skip the
//! service until the change is committed, so no record outlives its service.

use crate::conn::{query, query_scalar, Conn, Row};
use crate::query::{limit_offset, order_by, Where};
use crate::record::{self, int, parsed, text, Record, Value};
use crate::sql::SqlStore;
use crate::{PermissionChange, StoreError, StoreResult};
use std::collections::HashMap;
use uuid::Uuid;
use vpcep_domain::list::Page;
use vpcep_domain::permission::{Permission, PermissionType, MAX_PERMISSIONS};
use vpcep_domain::{ApiError, ErrorCode};

impl Record for Permission {
    const TABLE: &'static str = "service_permissions";
    const COLUMNS: &'static [&'static str] = &[
        "id",
        "service_id",
        "permission",
        "permission_type",
        "description",
        "created_at",
        "updated_at",
    ];

    fn from_row(row: &Row) -> StoreResult<Self> {
        let kind = text(row, "permission_type")?;
        Ok(Permission {
            id: parsed(row, "id")?,
            service_id: parsed(row, "service_id")?,
            permission: text(row, "permission")?,
            permission_type: PermissionType::parse("permission_type", &kind, ErrorCode::System)
                .map_err(|_| {
                    StoreError::internal(format!("stored permission_type {kind:?} is not valid"))
                })?,
            description: text(row, "description")?,
            created_at: int(row, "created_at")?,
            updated_at: int(row, "updated_at")?,
        })
    }

    fn values(&self) -> Vec<Value> {
        vec![
            self.id.into(),
            self.service_id.into(),
            self.permission.as_str().into(),
            self.permission_type.as_str().into(),
            self.description.as_str().into(),
            self.created_at.into(),
            self.updated_at.into(),
        ]
    }

    fn touch(&mut self, now: i64) {
        self.updated_at = now;
    }
}

/// The permission entries of a service, exactly as stored, in the order they were added. For
/// code deciding inside its own transaction whether an account may connect
/// ([`vpcep_domain::permission::permits`]).
pub(crate) async fn permission_entries(
    conn: &mut Conn,
    service_id: &str,
) -> StoreResult<Vec<String>> {
    Ok(query_scalar(
        "SELECT permission FROM service_permissions WHERE service_id = $1 ORDER BY seq",
    )
    .bind(service_id)
    .fetch_all(&mut *conn)
    .await?)
}

/// Deletes every permission record of a service (the reconciler, when it removes the service).
pub(crate) async fn delete_service_permissions(
    conn: &mut Conn,
    service_id: &str,
) -> StoreResult<()> {
    query("DELETE FROM service_permissions WHERE service_id = $1")
        .bind(service_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

fn service_missing(id: Uuid) -> StoreError {
    ApiError::not_found("endpoint service", &id.to_string()).into()
}

/// Checks that the service belongs to the project, locking its row when `lock` says so.
async fn find_service(
    conn: &mut Conn,
    project_id: &str,
    service_id: Uuid,
    lock: &str,
) -> StoreResult<()> {
    let sql = format!("SELECT id FROM endpoint_services WHERE id = $1 AND project_id = $2{lock}");
    let found: Option<String> = query_scalar(&sql)
        .bind(service_id.to_string())
        .bind(project_id)
        .fetch_optional(&mut *conn)
        .await?;
    found.map(|_| ()).ok_or_else(|| service_missing(service_id))
}

/// The records of a service whose `col` is one of `values`.
async fn records_where_in(
    conn: &mut Conn,
    service_id: &str,
    col: &str,
    values: &[String],
) -> StoreResult<Vec<Permission>> {
    let mut w = Where::default();
    w.eq("service_id", service_id);
    w.is_in(col, values);
    record::fetch_all(conn, &w).await
}

async fn count(conn: &mut Conn, service_id: &str) -> StoreResult<u64> {
    let n: i64 = query_scalar("SELECT COUNT(*) FROM service_permissions WHERE service_id = $1")
        .bind(service_id)
        .fetch_one(&mut *conn)
        .await?;
    Ok(n.max(0) as u64)
}

/// Adds the candidates whose entry is not yet present; present entries keep their record.
/// Answers the stored record of each distinct entry, in the candidates' order. More than
/// [`MAX_PERMISSIONS`] records in all is EndPoint.3049.
async fn add(
    conn: &mut Conn,
    service_id: Uuid,
    candidates: Vec<Permission>,
) -> StoreResult<Vec<Permission>> {
    let sid = service_id.to_string();
    let wanted: Vec<String> = candidates.iter().map(|c| c.permission.clone()).collect();
    let mut existing: HashMap<String, Permission> =
        records_where_in(conn, &sid, "permission", &wanted)
            .await?
            .into_iter()
            .map(|p| (p.permission.clone(), p))
            .collect();
    let mut out: Vec<Permission> = Vec::with_capacity(candidates.len());
    let mut fresh: Vec<usize> = Vec::new();
    for mut c in candidates {
        if out.iter().any(|p| p.permission == c.permission) {
            continue;
        }
        match existing.remove(&c.permission) {
            Some(stored) => out.push(stored),
            None => {
                c.service_id = service_id;
                fresh.push(out.len());
                out.push(c);
            }
        }
    }
    if fresh.is_empty() {
        return Ok(out);
    }
    let held = count(conn, &sid).await?;
    if held + fresh.len() as u64 > MAX_PERMISSIONS as u64 {
        return Err(ApiError::new(
            ErrorCode::PermissionsTooMany,
            format!(
                "The maximum number of whitelist records has been reached: the endpoint service \
                 has {held} and this request adds {}; at most {MAX_PERMISSIONS} are allowed",
                fresh.len()
            ),
        )
        .into());
    }
    for i in fresh {
        record::insert(conn, &out[i]).await?;
    }
    Ok(out)
}

/// Sets the description of stored records to the candidates' (batch-create on present entries).
async fn set_descriptions(
    conn: &mut Conn,
    now: i64,
    records: &mut [Permission],
    descriptions: &HashMap<String, String>,
) -> StoreResult<()> {
    for p in records {
        if let Some(d) = descriptions.get(&p.permission) {
            if *d != p.description {
                p.description = d.clone();
                p.touch(now);
                record::update(conn, p).await?;
            }
        }
    }
    Ok(())
}

/// Deletes the given records.
async fn delete_all(conn: &mut Conn, records: &[Permission]) -> StoreResult<()> {
    for p in records {
        record::delete::<Permission>(conn, &p.id.to_string()).await?;
    }
    Ok(())
}

async fn apply(
    conn: &mut Conn,
    service_id: Uuid,
    now: i64,
    change: PermissionChange,
) -> StoreResult<Vec<Permission>> {
    let sid = service_id.to_string();
    match change {
        PermissionChange::Add(candidates) => add(conn, service_id, candidates).await,
        PermissionChange::Upsert(candidates) => {
            let descriptions: HashMap<String, String> = candidates
                .iter()
                .map(|c| (c.permission.clone(), c.description.clone()))
                .collect();
            let mut out = add(conn, service_id, candidates).await?;
            set_descriptions(conn, now, &mut out, &descriptions).await?;
            Ok(out)
        }
        PermissionChange::RemoveEntries(entries) => {
            let found = records_where_in(conn, &sid, "permission", &entries).await?;
            delete_all(conn, &found).await?;
            Ok(found)
        }
        PermissionChange::RemoveIds(ids) => {
            let wanted: Vec<String> = ids.iter().map(Uuid::to_string).collect();
            let found = records_where_in(conn, &sid, "id", &wanted).await?;
            let mut out = Vec::with_capacity(ids.len());
            for id in &ids {
                match found.iter().find(|p| p.id == *id) {
                    Some(p) if !out.iter().any(|o: &Permission| o.id == *id) => out.push(p.clone()),
                    Some(_) => {}
                    None => return Err(ApiError::not_found("permission", &id.to_string()).into()),
                }
            }
            delete_all(conn, &out).await?;
            Ok(out)
        }
        PermissionChange::Describe { id, description } => {
            let wanted = [id.to_string()];
            let mut found = records_where_in(conn, &sid, "id", &wanted).await?;
            if found.is_empty() {
                return Err(ApiError::not_found("permission", &wanted[0]).into());
            }
            let descriptions = HashMap::from([(found[0].permission.clone(), description)]);
            set_descriptions(conn, now, &mut found, &descriptions).await?;
            Ok(found)
        }
    }
}

impl SqlStore {
    /// A page of the permission records of a service of the project, optionally only those
    /// whose entry contains `contains` (case-insensitive), and the total matching. 404
    /// EndPoint.0005 when the project has no such service.
    pub async fn list_permissions(
        &self,
        project_id: &str,
        service_id: Uuid,
        contains: Option<&str>,
        page: &Page,
    ) -> StoreResult<(Vec<Permission>, u64)> {
        let mut c = self.reader().await?;
        find_service(&mut c, project_id, service_id, "").await?;
        let mut w = Where::default();
        w.eq("service_id", service_id.to_string());
        if let Some(needle) = contains {
            w.contains_ci("permission", needle);
        }
        let where_sql = w.sql();
        let sql = format!("SELECT COUNT(*) FROM service_permissions WHERE {where_sql}");
        let total = w
            .bind_scalar(query_scalar::<i64>(&sql))
            .fetch_one(&mut c)
            .await?
            .max(0) as u64;
        if page.offset >= total {
            return Ok((Vec::new(), total));
        }
        let sql = format!(
            "SELECT {} FROM service_permissions WHERE {where_sql} {} {}",
            Permission::COLUMNS.join(", "),
            order_by(page),
            limit_offset(page)
        );
        let rows = w.bind(query(&sql)).fetch_all(&mut c).await?;
        let records = rows
            .iter()
            .map(Permission::from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok((records, total))
    }

    /// Applies `change` to the permission records of a service of the project in one
    /// transaction (404 EndPoint.0005 when the project has no such service) and answers the
    /// records it names (see [`PermissionChange`]). A refused change writes nothing.
    pub async fn change_permissions(
        &self,
        project_id: &str,
        service_id: Uuid,
        now: i64,
        change: PermissionChange,
    ) -> StoreResult<Vec<Permission>> {
        let lock = self.dialect.for_update();
        let project_id = project_id.to_string();
        self.write_retryable(move |c| {
            // Cloned for each run: the call may run again (see `write_retryable`).
            let (change, project_id) = (change.clone(), project_id.clone());
            Box::pin(async move {
                find_service(c, &project_id, service_id, lock).await?;
                apply(c, service_id, now, change).await
            })
        })
        .await
    }
}

#[cfg(all(test, feature = "conformance"))]
mod tests {
    use super::*;
    use crate::conformance::{make_backend, sample_service};
    use vpcep_testkit::db::{Backend, TestDb};

    const P: &str = "0f8a1c2e3d4b5a69788796a5b4c3d2e1";

    async fn entries_in_order(backend: Backend) {
        let Some(db) = TestDb::new(backend).await else {
            return;
        };
        let store = crate::open(&db.url, crate::StoreOptions::default())
            .await
            .unwrap();
        let b = make_backend(&store, P).await;
        let s = sample_service(P, &b, &[(80, 80)], 1);
        store.create_service(&s, 10).await.unwrap();
        let p = |e: &str| Permission {
            id: Uuid::new_v4(),
            service_id: s.id,
            permission: e.into(),
            permission_type: PermissionType::DomainId,
            description: String::new(),
            created_at: 5,
            updated_at: 5,
        };
        let d = "iam:domain::6e9dfd51d1124e8d8498dce894923a0d";
        store
            .change_permissions(P, s.id, 5, PermissionChange::Add(vec![p(d), p("*")]))
            .await
            .unwrap();
        let mut c = store.reader().await.unwrap();
        assert_eq!(
            permission_entries(&mut c, &s.id.to_string()).await.unwrap(),
            vec![d.to_string(), "*".to_string()]
        );
        assert!(permission_entries(&mut c, &Uuid::new_v4().to_string())
            .await
            .unwrap()
            .is_empty());
        drop(c);
        db.cleanup().await;
    }

    #[tokio::test]
    async fn permission_entries_are_read_in_insertion_order_sqlite() {
        entries_in_order(Backend::Sqlite).await;
    }

    #[tokio::test]
    async fn permission_entries_are_read_in_insertion_order_postgres() {
        entries_in_order(Backend::Postgres).await;
    }
}
