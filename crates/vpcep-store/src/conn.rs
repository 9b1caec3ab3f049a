//! The one connection interface all store SQL goes through, over two drivers: rusqlite for
//! SQLite (statements run synchronously on the calling thread, prepared once per connection and
//! cached) and sqlx's PostgreSQL driver (not `sqlx::Any`, whose copy of every row into its own
//! value type was a third of the server's CPU in a list on PostgreSQL).
//!
//! Queries are built like sqlx's ([`query`], [`query_scalar`], `.bind(..)`, `.fetch_all(conn)`)
//! and use `$n` placeholders on both backends: on SQLite `$n` is a named parameter, bound by
//! its number. Rows come back as [`Row`], read by column name.

use rusqlite::types::{FromSql, ToSql, ToSqlOutput, ValueRef};
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgArguments, PgConnection, PgRow};
use sqlx::{Postgres, Row as _, Transaction};
use std::marker::PhantomData;
use std::sync::Arc;
use uuid::Uuid;

/// A value to bind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Value {
    Text(String),
    OptText(Option<String>),
    Int(i64),
    /// A BLOB (SQLite) or BYTEA (PostgreSQL).
    Bytes(Vec<u8>),
}

/// A UUID stored as its 16 bytes rather than its 36-character text (see migration 0015).
pub(crate) fn id_bytes(id: Uuid) -> Value {
    Value::Bytes(id.as_bytes().to_vec())
}

/// The text form of a UUID stored as 16 bytes (`?` when the bytes are not one).
pub(crate) fn id_text(bytes: &[u8]) -> String {
    Uuid::from_slice(bytes).map_or_else(|_| "?".into(), |u| u.to_string())
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Text(s)
    }
}
impl From<&String> for Value {
    fn from(s: &String) -> Self {
        Value::Text(s.clone())
    }
}
impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Text(s.to_string())
    }
}
impl From<&&str> for Value {
    fn from(s: &&str) -> Self {
        Value::Text(s.to_string())
    }
}
impl From<Option<String>> for Value {
    fn from(s: Option<String>) -> Self {
        Value::OptText(s)
    }
}
impl From<&Option<String>> for Value {
    fn from(s: &Option<String>) -> Self {
        Value::OptText(s.clone())
    }
}
impl From<Option<&str>> for Value {
    fn from(s: Option<&str>) -> Self {
        Value::OptText(s.map(str::to_string))
    }
}
impl From<Option<i64>> for Value {
    fn from(n: Option<i64>) -> Self {
        match n {
            Some(n) => Value::Int(n),
            None => Value::OptText(None),
        }
    }
}
impl From<i64> for Value {
    fn from(n: i64) -> Self {
        Value::Int(n)
    }
}
impl From<&i64> for Value {
    fn from(n: &i64) -> Self {
        Value::Int(*n)
    }
}
impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Int(i64::from(b))
    }
}
impl From<Uuid> for Value {
    fn from(u: Uuid) -> Self {
        Value::Text(u.to_string())
    }
}

impl ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Value::Text(s) | Value::OptText(Some(s)) => {
                ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes()))
            }
            Value::OptText(None) => ToSqlOutput::Borrowed(ValueRef::Null),
            Value::Int(n) => ToSqlOutput::Borrowed(ValueRef::Integer(*n)),
            Value::Bytes(b) => ToSqlOutput::Borrowed(ValueRef::Blob(b)),
        })
    }
}

/// Binds values in order to a sqlx query.
fn bind_pg<'q>(
    mut q: sqlx::query::Query<'q, Postgres, PgArguments>,
    values: &'q [Value],
) -> sqlx::query::Query<'q, Postgres, PgArguments> {
    for v in values {
        q = match v {
            Value::Text(s) => q.bind(s.as_str()),
            Value::OptText(s) => q.bind(s.as_deref()),
            Value::Int(n) => q.bind(*n),
            Value::Bytes(b) => q.bind(b.as_slice()),
        };
    }
    q
}

/// Why a statement failed, from either driver.
#[derive(Debug)]
pub(crate) enum DbError {
    Sqlx(sqlx::Error),
    Sqlite(rusqlite::Error),
    /// A statement or row did not fit what the code expected (a placeholder, a column).
    Usage(String),
}

impl std::fmt::Display for DbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DbError::Sqlx(e) => e.fmt(f),
            DbError::Sqlite(e) => e.fmt(f),
            DbError::Usage(e) => f.write_str(e),
        }
    }
}

/// Shows as the driver's error (see `Display`), so its source is the driver error's source.
impl std::error::Error for DbError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DbError::Sqlx(e) => e.source(),
            DbError::Sqlite(e) => e.source(),
            DbError::Usage(_) => None,
        }
    }
}

impl From<sqlx::Error> for DbError {
    fn from(e: sqlx::Error) -> Self {
        DbError::Sqlx(e)
    }
}

impl From<rusqlite::Error> for DbError {
    fn from(e: rusqlite::Error) -> Self {
        DbError::Sqlite(e)
    }
}

impl DbError {
    /// A UNIQUE or PRIMARY KEY constraint refused the statement.
    pub(crate) fn is_unique_violation(&self) -> bool {
        match self {
            DbError::Sqlx(sqlx::Error::Database(db)) => db.is_unique_violation(),
            DbError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => matches!(
                e.extended_code,
                rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                    | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
            ),
            _ => false,
        }
    }
}

impl From<DbError> for crate::StoreError {
    /// SQLite's result codes by what the client may do: busy or locked is
    /// [`Unavailable`](crate::StoreError::Unavailable) (retry), a full disk
    /// [`Full`](crate::StoreError::Full), a file that cannot be read, written or opened (I/O
    /// error, read-only, permission, corrupt or not a database)
    /// [`Fault`](crate::StoreError::Fault); anything else is internal.
    fn from(e: DbError) -> Self {
        use rusqlite::ErrorCode as C;
        match e {
            DbError::Sqlx(e) => e.into(),
            DbError::Sqlite(rusqlite::Error::SqliteFailure(f, _)) => match f.code {
                C::DatabaseBusy | C::DatabaseLocked => {
                    crate::StoreError::Unavailable(e.to_string())
                }
                C::DiskFull => crate::StoreError::Full(e.to_string()),
                C::SystemIoFailure
                | C::ReadOnly
                | C::CannotOpen
                | C::PermissionDenied
                | C::DatabaseCorrupt
                | C::NotADatabase => crate::StoreError::Fault(e.to_string()),
                _ => crate::StoreError::internal(e),
            },
            other => crate::StoreError::internal(other),
        }
    }
}

impl From<rusqlite::Error> for crate::StoreError {
    fn from(e: rusqlite::Error) -> Self {
        DbError::from(e).into()
    }
}

/// A column type rows can be read as, on either driver: integers (read from any integer
/// column, as SQLite does) and text.
pub(crate) trait FromCol: FromSql + Sized {
    /// The value of column `col` of a PostgreSQL row.
    fn from_pg<I: sqlx::ColumnIndex<PgRow> + Copy>(
        row: &PgRow,
        col: I,
    ) -> Result<Self, sqlx::Error>;
}

/// An integer column of a PostgreSQL row, whatever its width: the tables' columns are
/// `bigint`, but a literal such as `0 AS endpoint_count` is an `int4` (which `sqlx::Any` used
/// to widen).
fn pg_int<I: sqlx::ColumnIndex<PgRow> + Copy>(
    row: &PgRow,
    col: I,
) -> Result<Option<i64>, sqlx::Error> {
    row.try_get::<Option<i64>, _>(col)
        .or_else(|e| match row.try_get::<Option<i32>, _>(col) {
            Ok(n) => Ok(n.map(i64::from)),
            Err(_) => Err(e),
        })
}

impl FromCol for i64 {
    fn from_pg<I: sqlx::ColumnIndex<PgRow> + Copy>(
        row: &PgRow,
        col: I,
    ) -> Result<Self, sqlx::Error> {
        pg_int(row, col)?.ok_or_else(|| sqlx::Error::Decode("an integer column is NULL".into()))
    }
}
impl FromCol for Option<i64> {
    fn from_pg<I: sqlx::ColumnIndex<PgRow> + Copy>(
        row: &PgRow,
        col: I,
    ) -> Result<Self, sqlx::Error> {
        pg_int(row, col)
    }
}
/// Text and byte columns decode as themselves.
macro_rules! text_from_pg {
    ($($t:ty),*) => {$(
        impl FromCol for $t {
            fn from_pg<I: sqlx::ColumnIndex<PgRow> + Copy>(
                row: &PgRow,
                col: I,
            ) -> Result<Self, sqlx::Error> {
                row.try_get(col)
            }
        }
    )*};
}
text_from_pg!(String, Option<String>, Vec<u8>);

/// A column value of a SQLite row: its text or bytes are a range of the row's buffer.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Cell {
    Null,
    Int(i64),
    Real(f64),
    Text(usize, usize),
    Blob(usize, usize),
}

impl Cell {
    /// Copies `v` into the row being read: its text or bytes go to the end of `buf`.
    fn copy(v: ValueRef<'_>, buf: &mut Vec<u8>) -> Cell {
        let mut push = |b: &[u8]| {
            buf.extend_from_slice(b);
            (buf.len() - b.len(), buf.len())
        };
        match v {
            ValueRef::Null => Cell::Null,
            ValueRef::Integer(n) => Cell::Int(n),
            ValueRef::Real(f) => Cell::Real(f),
            ValueRef::Text(t) => {
                let (a, b) = push(t);
                Cell::Text(a, b)
            }
            ValueRef::Blob(t) => {
                let (a, b) = push(t);
                Cell::Blob(a, b)
            }
        }
    }

    fn get(self, buf: &[u8]) -> ValueRef<'_> {
        match self {
            Cell::Null => ValueRef::Null,
            Cell::Int(n) => ValueRef::Integer(n),
            Cell::Real(f) => ValueRef::Real(f),
            Cell::Text(a, b) => ValueRef::Text(&buf[a..b]),
            Cell::Blob(a, b) => ValueRef::Blob(&buf[a..b]),
        }
    }
}

/// A result row.
pub(crate) enum Row {
    /// A SQLite row, read off its statement: every column's text and bytes in one buffer, so
    /// that a row costs two allocations whatever its columns (a page of 100 services is 2,600
    /// values).
    Sqlite {
        names: Arc<[String]>,
        cells: Vec<Cell>,
        bytes: Vec<u8>,
        /// Where the next lookup by name starts: columns are mostly read in the order they
        /// were selected, so that lookup usually matches at once.
        next: std::sync::atomic::AtomicUsize,
    },
    Pg(PgRow),
}

impl Row {
    /// The value of column `col` (by name).
    pub(crate) fn try_get<T: FromCol, C: AsRef<str>>(&self, col: C) -> Result<T, DbError> {
        let col = col.as_ref();
        match self {
            Row::Pg(row) => Ok(T::from_pg(row, col)?),
            Row::Sqlite { .. } => T::column_result(self.sqlite_value(col)?)
                .map_err(|e| DbError::Usage(format!("column {col:?}: {e}"))),
        }
    }

    /// The text of column `col` (by name), borrowed from the row: for values parsed at once
    /// (ids, enums, JSON), which need no `String` of their own.
    pub(crate) fn try_get_str<C: AsRef<str>>(&self, col: C) -> Result<&str, DbError> {
        let col = col.as_ref();
        match self {
            Row::Pg(row) => Ok(row.try_get::<&str, _>(col)?),
            Row::Sqlite { .. } => match self.sqlite_value(col)? {
                ValueRef::Text(s) => std::str::from_utf8(s)
                    .map_err(|e| DbError::Usage(format!("column {col:?}: {e}"))),
                other => Err(DbError::Usage(format!(
                    "column {col:?}: {:?} is not text",
                    other.data_type()
                ))),
            },
        }
    }

    /// The value of column `col` of a SQLite row.
    fn sqlite_value(&self, col: &str) -> Result<ValueRef<'_>, DbError> {
        match self {
            Row::Sqlite {
                names,
                cells,
                bytes,
                next,
            } => Ok(cells[column_index(names, col, next)?].get(bytes)),
            Row::Pg(_) => Err(DbError::Usage("not a SQLite row".into())),
        }
    }

    /// The value of the first column.
    fn first<T: FromCol>(&self) -> Result<T, DbError> {
        match self {
            Row::Pg(row) => Ok(T::from_pg(row, 0)?),
            Row::Sqlite { cells, bytes, .. } => {
                let v = cells
                    .first()
                    .ok_or_else(|| DbError::Usage("a row without columns".into()))?;
                T::column_result(v.get(bytes)).map_err(|e| DbError::Usage(e.to_string()))
            }
        }
    }
}

/// The position of column `col` in a SQLite row.
/// The index of column `col`, searched from `next` on (wrapping), which then moves past it.
fn column_index(
    names: &[String],
    col: &str,
    next: &std::sync::atomic::AtomicUsize,
) -> Result<usize, DbError> {
    use std::sync::atomic::Ordering::Relaxed;
    let start = next.load(Relaxed).min(names.len());
    let i = (start..names.len())
        .chain(0..start)
        .find(|&i| names[i] == col)
        .ok_or_else(|| DbError::Usage(format!("no column {col:?} in the row")))?;
    next.store(i + 1, Relaxed);
    Ok(i)
}

/// What `execute` did.
pub(crate) struct Done(u64);

impl Done {
    pub(crate) fn rows_affected(&self) -> u64 {
        self.0
    }
}

/// A connection: SQLite (owned rusqlite connection) or PostgreSQL (from the pool, or in a
/// transaction).
pub(crate) enum Conn {
    Sqlite(rusqlite::Connection),
    Pg(PoolConnection<Postgres>),
    PgTx(Transaction<'static, Postgres>),
}

impl Conn {
    /// Whether this is a PostgreSQL connection.
    pub(crate) fn is_postgres(&self) -> bool {
        !matches!(self, Conn::Sqlite(_))
    }

    fn pg(&mut self) -> &mut PgConnection {
        match self {
            Conn::Pg(c) => c,
            Conn::PgTx(t) => t,
            Conn::Sqlite(_) => unreachable!("not a sqlx connection"),
        }
    }
}

/// Prepares (or takes from the cache) `sql` and binds `$n` parameters to `args[n - 1]`.
///
/// SQLite numbers a `?NNN` parameter NNN, so `$n` is prepared as `?n` and bound by position.
/// (Bound as named `$n` parameters, each bind looked its name up in a list, and a list page's
/// `IN (...)` of 100 ids spent more time there than in the query.)
fn sqlite_prepare<'c>(
    c: &'c rusqlite::Connection,
    sql: &str,
    args: &[Value],
) -> Result<rusqlite::CachedStatement<'c>, DbError> {
    let mut st = c.prepare_cached(&positional(sql))?;
    let count = st.parameter_count();
    if count > args.len() {
        return Err(DbError::Usage(format!(
            "no value for ${count} of {sql:?} ({} given)",
            args.len()
        )));
    }
    for (i, v) in args.iter().enumerate().take(count) {
        st.raw_bind_parameter(i + 1, v)?;
    }
    Ok(st)
}

/// `sql` with each `$n` placeholder written `?n` (SQLite's numbered parameter). Runs for every
/// statement a SQLite connection runs: it jumps from `$` to `$` and copies the text between.
fn positional(sql: &str) -> std::borrow::Cow<'_, str> {
    let b = sql.as_bytes();
    let mut out: Option<String> = None;
    let mut copied = 0;
    for (i, _) in sql.match_indices('$') {
        if b.get(i + 1).is_some_and(u8::is_ascii_digit) {
            let o = out.get_or_insert_with(|| String::with_capacity(sql.len()));
            o.push_str(&sql[copied..i]);
            o.push('?');
            copied = i + 1;
        }
    }
    match out {
        None => sql.into(),
        Some(mut o) => {
            o.push_str(&sql[copied..]);
            o.into()
        }
    }
}

/// Runs `sql` and collects up to `limit` rows (all rows are stepped through only without a limit;
/// a DML statement's effects happen on its first step).
fn sqlite_rows(
    c: &rusqlite::Connection,
    sql: &str,
    args: &[Value],
    limit: Option<usize>,
) -> Result<Vec<Row>, DbError> {
    let mut st = sqlite_prepare(c, sql, args)?;
    let n = st.column_count();
    let names: Arc<[String]> = st.column_names().into_iter().map(String::from).collect();
    let mut rows = st.raw_query();
    let mut out = Vec::new();
    // Rows of one statement are alike: each buffer starts at the size of the one before.
    let mut size = 0;
    while limit.is_none_or(|l| out.len() < l) {
        let Some(r) = rows.next()? else { break };
        let mut bytes = Vec::with_capacity(size);
        let cells = (0..n)
            .map(|i| r.get_ref(i).map(|v| Cell::copy(v, &mut bytes)))
            .collect::<Result<Vec<_>, _>>()?;
        size = bytes.len();
        out.push(Row::Sqlite {
            names: names.clone(),
            cells,
            bytes,
            next: Default::default(),
        });
    }
    Ok(out)
}

fn sqlite_execute(c: &rusqlite::Connection, sql: &str, args: &[Value]) -> Result<u64, DbError> {
    let mut st = sqlite_prepare(c, sql, args)?;
    let mut rows = st.raw_query();
    while rows.next()?.is_some() {}
    Ok(c.changes())
}

/// A statement with its values, run with one of the `fetch_*`/`execute` methods.
pub(crate) struct Query<'q> {
    sql: &'q str,
    args: Vec<Value>,
}

/// A statement whose rows are read as their first column.
pub(crate) struct QueryScalar<'q, O> {
    inner: Query<'q>,
    _out: PhantomData<fn() -> O>,
}

/// A statement with `$n` placeholders.
pub(crate) fn query(sql: &str) -> Query<'_> {
    Query {
        sql,
        args: Vec::new(),
    }
}

/// Adds to a row, else creates it, without an upsert: `add` (an UPDATE of one row, which changes
/// it only when it may), else `insert` (`INSERT ... ON CONFLICT DO NOTHING`), else `add` again.
/// Answers whether a row was added to or created.
///
/// Single-row statements without `RETURNING`: SQLite runs an upsert or a `RETURNING` statement
/// through a statement journal, a copy of every page it changes. The second `add` is for
/// PostgreSQL's read committed: when another transaction created the row first, the insert
/// waited for it and did nothing, and the row is visible to the next statement.
pub(crate) async fn add_or_insert<'q>(
    c: &mut Conn,
    add: impl Fn() -> Query<'q>,
    insert: Query<'q>,
) -> Result<bool, DbError> {
    if add().execute(c).await?.rows_affected() == 1 || insert.execute(c).await?.rows_affected() == 1
    {
        return Ok(true);
    }
    Ok(add().execute(c).await?.rows_affected() == 1)
}

/// The value of the named counter (a row of `counters`: `dataplane_version`, `marker_id`,
/// `claims_freed`).
pub(crate) async fn counter(c: &mut Conn, name: &str) -> Result<i64, DbError> {
    query_scalar("SELECT value FROM counters WHERE name = $1")
        .bind(name)
        .fetch_one(c)
        .await
}

/// Adds one to the named counter inside the caller's transaction; answers the new value.
pub(crate) async fn increment(c: &mut Conn, name: &str) -> Result<i64, DbError> {
    query_scalar("UPDATE counters SET value = value + 1 WHERE name = $1 RETURNING value")
        .bind(name)
        .fetch_one(c)
        .await
}

/// A statement whose rows are read as their first column.
pub(crate) fn query_scalar<O: FromCol>(sql: &str) -> QueryScalar<'_, O> {
    QueryScalar {
        inner: query(sql),
        _out: PhantomData,
    }
}

impl<'q> Query<'q> {
    /// Binds the next `$n`.
    pub(crate) fn bind(mut self, v: impl Into<Value>) -> Self {
        self.args.push(v.into());
        self
    }

    /// Binds several values in order.
    pub(crate) fn bind_all(mut self, values: &[Value]) -> Self {
        self.args.extend_from_slice(values);
        self
    }

    pub(crate) async fn execute(self, c: &mut Conn) -> Result<Done, DbError> {
        match c {
            Conn::Sqlite(c) => Ok(Done(sqlite_execute(c, self.sql, &self.args)?)),
            other => {
                let r = bind_pg(sqlx::query(self.sql), &self.args)
                    .execute(other.pg())
                    .await?;
                Ok(Done(r.rows_affected()))
            }
        }
    }

    pub(crate) async fn fetch_all(self, c: &mut Conn) -> Result<Vec<Row>, DbError> {
        match c {
            Conn::Sqlite(c) => sqlite_rows(c, self.sql, &self.args, None),
            other => Ok(bind_pg(sqlx::query(self.sql), &self.args)
                .fetch_all(other.pg())
                .await?
                .into_iter()
                .map(Row::Pg)
                .collect()),
        }
    }

    pub(crate) async fn fetch_optional(self, c: &mut Conn) -> Result<Option<Row>, DbError> {
        match c {
            Conn::Sqlite(c) => Ok(sqlite_rows(c, self.sql, &self.args, Some(1))?.pop()),
            other => Ok(bind_pg(sqlx::query(self.sql), &self.args)
                .fetch_optional(other.pg())
                .await?
                .map(Row::Pg)),
        }
    }

    pub(crate) async fn fetch_one(self, c: &mut Conn) -> Result<Row, DbError> {
        self.fetch_optional(c)
            .await?
            .ok_or(DbError::Sqlx(sqlx::Error::RowNotFound))
    }
}

impl<'q, O: FromCol> QueryScalar<'q, O> {
    /// Binds the next `$n`.
    pub(crate) fn bind(mut self, v: impl Into<Value>) -> Self {
        self.inner = self.inner.bind(v);
        self
    }

    pub(crate) async fn fetch_all(self, c: &mut Conn) -> Result<Vec<O>, DbError> {
        self.inner
            .fetch_all(c)
            .await?
            .iter()
            .map(Row::first)
            .collect()
    }

    pub(crate) async fn fetch_optional(self, c: &mut Conn) -> Result<Option<O>, DbError> {
        self.inner
            .fetch_optional(c)
            .await?
            .map(|r| r.first())
            .transpose()
    }

    pub(crate) async fn fetch_one(self, c: &mut Conn) -> Result<O, DbError> {
        self.inner.fetch_one(c).await?.first()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_become_sqlite_numbered_parameters() {
        assert_eq!(
            positional("SELECT a FROM t WHERE b = $1 AND c IN ($2, $10) AND d = $2"),
            "SELECT a FROM t WHERE b = ?1 AND c IN (?2, ?10) AND d = ?2"
        );
        assert_eq!(positional("SELECT 1"), "SELECT 1");
        assert_eq!(positional("SELECT '$a', $1"), "SELECT '$a', ?1");
    }

    /// Numbered parameters bind by position, repeated and out of order alike.
    #[test]
    fn numbered_parameters_bind_by_position() {
        let c = rusqlite::Connection::open_in_memory().unwrap();
        let args = [Value::Int(7), Value::Text("x".into()), Value::Int(9)];
        let rows = sqlite_rows(
            &c,
            "SELECT $3 AS a, $1 AS b, $2 AS c, $1 + $3 AS d",
            &args,
            None,
        )
        .unwrap();
        assert_eq!(rows[0].try_get::<i64, _>("a").unwrap(), 9);
        assert_eq!(rows[0].try_get::<i64, _>("b").unwrap(), 7);
        assert_eq!(rows[0].try_get::<String, _>("c").unwrap(), "x");
        assert_eq!(rows[0].try_get::<i64, _>("d").unwrap(), 16);
        assert!(sqlite_rows(&c, "SELECT $4", &args, None).is_err());
    }

    /// Columns are found by name in any order, the same one twice, and a missing one is an
    /// error (the search from where the last one was found wraps around).
    #[test]
    fn columns_are_found_by_name_in_any_order() {
        let c = rusqlite::Connection::open_in_memory().unwrap();
        let rows = sqlite_rows(&c, "SELECT 1 AS a, 2 AS b, 3 AS c", &[], None).unwrap();
        let r = &rows[0];
        for (col, want) in [
            ("a", 1),
            ("b", 2),
            ("c", 3),
            ("a", 1),
            ("c", 3),
            ("b", 2),
            ("b", 2),
        ] {
            assert_eq!(r.try_get::<i64, _>(col).unwrap(), want, "{col}");
        }
        assert!(r.try_get::<i64, _>("d").is_err());
        assert_eq!(r.try_get::<i64, _>("a").unwrap(), 1);
    }

    /// Every kind of value reads back from a row whose text and bytes share one buffer, row
    /// after row of one statement; text that is not UTF-8 is an error, not a panic.
    #[test]
    fn values_of_every_kind_read_back_from_the_row_buffer() {
        let c = rusqlite::Connection::open_in_memory().unwrap();
        let rows = sqlite_rows(
            &c,
            "SELECT 'row' || n AS t, x'00ff' AS b0, CAST('b' || n AS BLOB) AS b, n AS i, n + 0.5 AS r, \
             NULL AS z, '' AS e, CAST(x'c328' AS TEXT) AS bad \
             FROM (SELECT 1 AS n UNION ALL SELECT 22 UNION ALL SELECT 333)",
            &[],
            None,
        )
        .unwrap();
        for (r, n) in rows.iter().zip([1i64, 22, 333]) {
            assert_eq!(r.try_get_str("t").unwrap(), format!("row{n}"));
            assert_eq!(r.try_get::<Vec<u8>, _>("b0").unwrap(), [0, 0xff]);
            assert_eq!(
                r.try_get::<Vec<u8>, _>("b").unwrap(),
                format!("b{n}").into_bytes()
            );
            assert_eq!(r.try_get::<i64, _>("i").unwrap(), n);
            assert_eq!(r.try_get::<Option<String>, _>("z").unwrap(), None);
            assert_eq!(r.try_get::<String, _>("e").unwrap(), "");
            assert!(
                matches!(r.sqlite_value("r").unwrap(), ValueRef::Real(f) if f == n as f64 + 0.5)
            );
            assert!(r.try_get_str("bad").is_err());
            assert!(r.try_get::<String, _>("bad").is_err());
            assert!(r.try_get_str("i").is_err());
        }
        assert_eq!(rows[0].first::<String>().unwrap(), "row1");
    }
}
