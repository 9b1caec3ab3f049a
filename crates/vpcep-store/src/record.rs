//! Generic row access for the simple resource tables (VPCs, subnets, ports, ...): one
//! [`Record`] impl per table says how a value maps to columns; insert, fetch, page, update and
//! delete are written once here.

use crate::conn::{query, query_scalar, Conn, DbError, Row};
use crate::query::Where;
use crate::{StoreError, StoreResult};
use vpcep_domain::ApiError;

pub(crate) use crate::conn::Value;

/// A value stored as one row of `TABLE` (with a `seq` insertion-order column and a unique `id`).
pub(crate) trait Record: Sized + Send + Sync + 'static {
    /// The table.
    const TABLE: &'static str;
    /// Columns in [`Record::values`] order; `id` first.
    const COLUMNS: &'static [&'static str];
    /// Rebuilds a value from a row selected with [`Record::COLUMNS`].
    fn from_row(row: &Row) -> StoreResult<Self>;
    /// Column values in [`Record::COLUMNS`] order.
    fn values(&self) -> Vec<Value>;
    /// Records the time of a change (`updated_at`), if the record keeps one.
    fn touch(&mut self, now: i64);
    /// The API's error when an update breaks a uniqueness rule of the table other than the id
    /// (e.g. a VPC renamed to a name the project already uses); `None`: an internal error.
    fn unique_violation(&self) -> Option<ApiError> {
        None
    }
}

fn columns<R: Record>() -> String {
    R::COLUMNS.join(", ")
}

/// Inserts a record.
pub(crate) async fn insert<R: Record>(conn: &mut Conn, r: &R) -> Result<(), DbError> {
    let sql = format!(
        "INSERT INTO {} ({}) VALUES ({})",
        R::TABLE,
        columns::<R>(),
        crate::query::placeholders(1, R::COLUMNS.len())
    );
    let values = r.values();
    query(&sql).bind_all(&values).execute(&mut *conn).await?;
    Ok(())
}

/// Rewrites every column of the record with the same id.
pub(crate) async fn update<R: Record>(conn: &mut Conn, r: &R) -> StoreResult<()> {
    let sets = R::COLUMNS
        .iter()
        .enumerate()
        .skip(1)
        .map(|(i, c)| format!("{c} = ${}", i + 1))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!("UPDATE {} SET {sets} WHERE id = $1", R::TABLE);
    let values = r.values();
    match query(&sql).bind_all(&values).execute(&mut *conn).await {
        Err(db) if db.is_unique_violation() => Err(match r.unique_violation() {
            Some(e) => e.into(),
            None => StoreError::internal(db),
        }),
        other => other.map(|_| ()).map_err(Into::into),
    }
}

/// The first record matching `w`, with an optional lock clause.
pub(crate) async fn fetch<R: Record>(
    conn: &mut Conn,
    w: &Where,
    lock: &str,
) -> StoreResult<Option<R>> {
    let sql = format!(
        "SELECT {} FROM {} WHERE {}{lock}",
        columns::<R>(),
        R::TABLE,
        w.sql()
    );
    match w.bind(query(&sql)).fetch_optional(&mut *conn).await? {
        Some(row) => R::from_row(&row).map(Some),
        None => Ok(None),
    }
}

/// All records matching `w` in insertion order.
pub(crate) async fn fetch_all<R: Record>(conn: &mut Conn, w: &Where) -> StoreResult<Vec<R>> {
    let sql = format!(
        "SELECT {} FROM {} WHERE {} ORDER BY seq",
        columns::<R>(),
        R::TABLE,
        w.sql()
    );
    let rows = w.bind(query(&sql)).fetch_all(&mut *conn).await?;
    rows.iter().map(R::from_row).collect()
}

/// Marker paging (the VPC API's style): up to `limit` records matching `w` that come after the
/// record `marker` in insertion order. An unknown marker is `bad_marker`.
pub(crate) async fn page_after<R: Record>(
    conn: &mut Conn,
    mut w: Where,
    limit: u32,
    marker: Option<&str>,
    bad_marker: impl FnOnce(&str) -> StoreError,
) -> StoreResult<Vec<R>> {
    if let Some(m) = marker {
        // The marker must be a record the same filter can see (e.g. of the same project).
        let mut scoped = w.clone();
        scoped.eq("id", m);
        let sql = format!("SELECT seq FROM {} WHERE {}", R::TABLE, scoped.sql());
        let seq: Option<i64> = scoped
            .bind_scalar(query_scalar(&sql))
            .fetch_optional(&mut *conn)
            .await?;
        let seq = seq.ok_or_else(|| bad_marker(m))?;
        w.and("seq > CAST(? AS BIGINT)", seq.to_string());
    }
    let sql = format!(
        "SELECT {} FROM {} WHERE {} ORDER BY seq LIMIT {limit}",
        columns::<R>(),
        R::TABLE,
        w.sql()
    );
    let rows = w.bind(query(&sql)).fetch_all(&mut *conn).await?;
    rows.iter().map(R::from_row).collect()
}

/// One page of the records matching `w` in the page's order, and how many match in all.
pub(crate) async fn page_sorted<R: Record>(
    conn: &mut Conn,
    w: &Where,
    page: &vpcep_domain::list::Page,
) -> StoreResult<(Vec<R>, u64)> {
    let count = format!("SELECT COUNT(*) FROM {} WHERE {}", R::TABLE, w.sql());
    let total = w
        .bind_scalar(query_scalar::<i64>(&count))
        .fetch_one(&mut *conn)
        .await?
        .max(0) as u64;
    if page.offset >= total {
        return Ok((Vec::new(), total));
    }
    let sql = format!(
        "SELECT {} FROM {} WHERE {} {} {}",
        columns::<R>(),
        R::TABLE,
        w.sql(),
        crate::query::order_by(page),
        crate::query::limit_offset(page)
    );
    let rows = w.bind(query(&sql)).fetch_all(&mut *conn).await?;
    Ok((
        rows.iter()
            .map(R::from_row)
            .collect::<StoreResult<Vec<_>>>()?,
        total,
    ))
}

/// Deletes the record with `id`.
pub(crate) async fn delete<R: Record>(conn: &mut Conn, id: &str) -> StoreResult<()> {
    let sql = format!("DELETE FROM {} WHERE id = $1", R::TABLE);
    query(&sql).bind(id).execute(&mut *conn).await?;
    Ok(())
}

/// Reads a text column.
pub(crate) fn text(row: &Row, col: &str) -> StoreResult<String> {
    Ok(row.try_get::<String, _>(col)?)
}

/// Reads a nullable text column.
pub(crate) fn opt_text(row: &Row, col: &str) -> StoreResult<Option<String>> {
    Ok(row.try_get::<Option<String>, _>(col)?)
}

/// Reads an integer column.
pub(crate) fn int(row: &Row, col: &str) -> StoreResult<i64> {
    Ok(row.try_get::<i64, _>(col)?)
}

/// Reads a text column and parses it.
pub(crate) fn parsed<T: std::str::FromStr>(row: &Row, col: &str) -> StoreResult<T> {
    let s = text(row, col)?;
    s.parse()
        .map_err(|_| StoreError::internal(format!("stored {col} {s:?} is not valid")))
}

/// Reads a JSON text column.
pub(crate) fn json<T: serde::de::DeserializeOwned>(row: &Row, col: &str) -> StoreResult<T> {
    let s = text(row, col)?;
    serde_json::from_str(&s)
        .map_err(|_| StoreError::internal(format!("stored {col} {s:?} is not valid")))
}

/// JSON text of a value.
pub(crate) fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("stored values serialize")
}
