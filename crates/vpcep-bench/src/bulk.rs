//! Growing the listed project to 10^5 or 10^6 services in seconds, for list-services at scale.
//!
//! Creating a million services through the API would take minutes; the figure measured is the
//! list, not the seeding. So the project is grown in SQL, straight in the SQLite file the
//! spawned server uses (stopped meanwhile: a running server holds its file exclusively, and
//! starts again on the grown file): each new row is a
//! copy of a service the API created (the template), with its own id, name, creation time and
//! port mapping, plus the port claims and the project's usage counter that a create through the
//! API would write, so the rows are what the server itself would have stored. The copies are
//! the newest services (1 ms apart, the last one now), so the first page a list answers is
//! made of them: a row the server could not read would show as an error.

use anyhow::Context as _;
use sqlx::{Connection, Executor, Row, SqliteConnection};

/// Services that share one backend port: each takes a client and server port of its own.
pub const PER_BACKEND: u64 = 65_000;
/// Rows per transaction.
const CHUNK: u64 = 50_000;

/// Adds services `from..to` (numbering this tool's bulk services; the first is 0) to
/// `project` in the SQLite database at `url`, copying the service `template_id`. Bulk service
/// `k` uses backend port `backends[k / 65000]`, ports `k % 65000 + 1`.
pub async fn grow_sqlite(
    url: &str,
    project: &str,
    template_id: &str,
    backends: &[String],
    from: u64,
    to: u64,
) -> anyhow::Result<()> {
    if to <= from {
        return Ok(());
    }
    anyhow::ensure!(
        to.div_ceil(PER_BACKEND) as usize <= backends.len(),
        "{to} bulk services need {} backend ports",
        to.div_ceil(PER_BACKEND)
    );
    let mut conn = SqliteConnection::connect(url)
        .await
        .with_context(|| format!("opening {url}"))?;
    conn.execute("PRAGMA busy_timeout = 30000").await?;
    let cols: Vec<String> = sqlx::query("SELECT name FROM pragma_table_info('endpoint_services')")
        .fetch_all(&mut conn)
        .await?
        .iter()
        .map(|r| r.get::<String, _>(0))
        .filter(|c| c != "seq")
        .collect();
    let backend_case = backends
        .iter()
        .enumerate()
        .map(|(i, b)| format!("WHEN {i} THEN '{b}'"))
        .collect::<Vec<_>>()
        .join(" ");
    // Ids are UUIDs from the bulk number and a tag of this run, so runs never collide.
    let tag = uuid::Uuid::new_v4().as_u128() as u32;
    let generated = format!(
        "WITH RECURSIVE s(k) AS (SELECT $1 UNION ALL SELECT k + 1 FROM s WHERE k + 1 < $2), \
         g AS (SELECT k, printf('%08x-0000-4000-8000-%012x', {tag}, k) AS nid, \
               k % {PER_BACKEND} + 1 AS p, CASE k / {PER_BACKEND} {backend_case} END AS pid FROM s)"
    );
    let exprs: Vec<String> = cols
        .iter()
        .map(|c| match c.as_str() {
            "id" => "g.nid".to_string(),
            "full_name" => "replace(t.full_name, t.id, g.nid)".to_string(),
            "port_id" => "g.pid".to_string(),
            "ports" => "'[[' || g.p || ',' || g.p || ',\"TCP\"]]'".to_string(),
            "status" => "'available'".to_string(),
            "created_at" | "updated_at" | "status_at" => "$4 - ($5 - g.k)".to_string(),
            other => format!("t.{other}"),
        })
        .collect();
    let insert_services = format!(
        "INSERT INTO endpoint_services ({}) {generated} SELECT {} FROM g, \
         (SELECT * FROM endpoint_services WHERE id = $3) t",
        cols.join(", "),
        exprs.join(", ")
    );
    let insert_claims = format!(
        "INSERT INTO service_port_claims (port_id, protocol, side, port, service_id) {generated} \
         SELECT unhex(replace(g.pid, '-', '')), 'TCP', side.v, g.p, unhex(replace(g.nid, '-', '')) \
         FROM g, \
         (SELECT 'client' AS v UNION ALL SELECT 'server') side"
    );
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as i64;
    let mut k = from;
    while k < to {
        let end = (k + CHUNK).min(to);
        let mut tx = conn.begin().await?;
        let added = sqlx::query(&insert_services)
            .bind(k as i64)
            .bind(end as i64)
            .bind(template_id)
            .bind(now_ms)
            .bind(to as i64)
            .execute(&mut *tx)
            .await
            .context("copying services")?
            .rows_affected();
        anyhow::ensure!(added == end - k, "template {template_id} not found");
        sqlx::query(&insert_claims)
            .bind(k as i64)
            .bind(end as i64)
            .execute(&mut *tx)
            .await
            .context("claiming their ports")?;
        sqlx::query(
            "UPDATE usage_slots SET used = used + $1 \
             WHERE project_id = $2 AND resource = 'endpoint_service' AND slot = 0",
        )
        .bind(added as i64)
        .bind(project)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        k = end;
    }
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").await?;
    conn.close().await?;
    Ok(())
}
