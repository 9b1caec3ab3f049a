//! Endpoint-service persistence: rows, port claims and backends, the default account, and the
//! service steps of the reconciler's passes (run by `transitions`).

use crate::claims;
use crate::conn::{id_bytes, id_text, query, query_scalar, Conn, Row};
use crate::network::backend_of;
use crate::query::{limit_offset, order_by, placeholders, Where};
use crate::sql::SqlStore;
use crate::{tags, usage};
use crate::{
    DataplaneGate, ServiceFilter, ServiceLookup, ServiceMutation, ServiceScope, StoreError,
    StoreResult, USAGE_ENDPOINT_SERVICE,
};
use std::collections::{BTreeMap, BTreeSet};
use uuid::Uuid;
use vpcep_domain::endpoint::EndpointStatus;
use vpcep_domain::list::Page;
use vpcep_domain::network::port::{check_service_backend, BackendAddress};
use vpcep_domain::service::{
    EndpointService, IpVersion, PortMapping, Protocol, ResourceError, ServerType, ServiceStatus,
    ServiceType, TcpProxy,
};
use vpcep_domain::{ApiError, ErrorCode};

/// `resource_type` of services in `resource_tags`.
pub(crate) const TAG_TYPE_SERVICE: &str = "endpoint_service";

/// The condition of the reconciler's partial index on services (migration 0014): a query on
/// that index repeats it, as SQLite uses a partial index only for a WHERE clause that contains
/// its condition as written.
pub(crate) const IN_TRANSITION: &str = "status IN ('creating', 'deleting')";

/// `cols` of the services in `status` (`creating` or `deleting`) since the SQL parameter
/// `cutoff` or earlier, `and` any further condition, oldest first, at most `limit`, locked with
/// `lock`: a query the reconciler's partial index serves.
pub(crate) fn due_services(
    cols: &str,
    status: &str,
    cutoff: &str,
    and: &str,
    limit: u32,
    lock: &str,
) -> String {
    format!(
        "SELECT {cols} FROM endpoint_services WHERE status = '{status}' AND {IN_TRANSITION} \
         AND status_at <= {cutoff}{and} ORDER BY status_at LIMIT {limit}{lock}"
    )
}

const SERVICE_COLS: &str = "id, project_id, domain_id, short_name, full_name, port_id, vpc_id, \
    server_type, service_type, approval_enabled, status, tcp_proxy, ports, description, ip, \
    ip_version, snat_network_id, enable_policy, supported_editions, error_code, error_message, \
    created_at, updated_at, server_resources";

/// A new service's row (the statement text is built once: creates are the hot write).
static INSERT_SERVICE: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "INSERT INTO endpoint_services ({SERVICE_COLS}, status_at, backend_space, backend_ip, \
         backend_held) VALUES ({})",
        placeholders(1, 28)
    )
});

/// A read service's endpoint counts, as columns of the same statement (one index probe per row
/// and count, instead of a second statement binding every id of a page).
static ENDPOINT_COUNT_COLS: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let connected = EndpointStatus::ALL
        .iter()
        .filter(|s| s.is_connected())
        .map(|s| format!("'{}'", s.as_str()))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "(SELECT COUNT(*) FROM endpoints e WHERE e.service_id = endpoint_services.id) \
         AS endpoint_count, \
         (SELECT COUNT(*) FROM endpoints e WHERE e.service_id = endpoint_services.id \
         AND e.status IN ({connected})) AS connection_count"
    )
});

fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::internal(format!("stored {what} {value:?} is not valid"))
}

fn parse_enum<T>(
    what: &str,
    v: &str,
    parse: impl Fn(&str, &str, ErrorCode) -> Result<T, ApiError>,
) -> StoreResult<T> {
    parse(what, v, ErrorCode::System).map_err(|_| corrupt(what, v))
}

fn parse_stored_uuid(what: &str, v: &str) -> StoreResult<Uuid> {
    Uuid::parse_str(v).map_err(|_| corrupt(what, v))
}

fn ports_to_json(ports: &[PortMapping]) -> String {
    serde_json::to_string(
        &ports
            .iter()
            .map(|p| (p.client_port, p.server_port, p.protocol.as_str()))
            .collect::<Vec<_>>(),
    )
    .expect("port tuples serialize")
}

fn ports_from_json(s: &str) -> StoreResult<Vec<PortMapping>> {
    let raw: Vec<(u16, u16, String)> = serde_json::from_str(s).map_err(|_| corrupt("ports", s))?;
    raw.into_iter()
        .map(|(c, sp, proto)| {
            Ok(PortMapping {
                client_port: c,
                server_port: sp,
                protocol: parse_enum("protocol", &proto, Protocol::parse)?,
            })
        })
        .collect()
}

fn service_from_row(row: &Row) -> StoreResult<EndpointService> {
    let s = |c: &str| row.try_get::<String, _>(c);
    // Borrowed: columns parsed at once need no String of their own.
    let b = |c: &str| row.try_get_str(c);
    let opt = |c: &str| row.try_get::<Option<String>, _>(c);
    let error = match (opt("error_code")?, opt("error_message")?) {
        (Some(code), Some(message)) => Some(ResourceError { code, message }),
        _ => None,
    };
    let editions = b("supported_editions")?;
    Ok(EndpointService {
        id: parse_stored_uuid("id", b("id")?)?,
        project_id: s("project_id")?,
        domain_id: s("domain_id")?,
        short_name: opt("short_name")?,
        full_name: s("full_name")?,
        port_id: parse_stored_uuid("port_id", b("port_id")?)?,
        vpc_id: parse_stored_uuid("vpc_id", b("vpc_id")?)?,
        server_type: parse_enum("server_type", b("server_type")?, ServerType::parse)?,
        service_type: parse_enum("service_type", b("service_type")?, ServiceType::parse)?,
        approval_enabled: row.try_get::<i64, _>("approval_enabled")? != 0,
        status: parse_enum("status", b("status")?, ServiceStatus::parse)?,
        tcp_proxy: parse_enum("tcp_proxy", b("tcp_proxy")?, TcpProxy::parse)?,
        ports: ports_from_json(b("ports")?)?,
        tags: Vec::new(),
        description: s("description")?,
        ip: opt("ip")?,
        ip_version: parse_enum("ip_version", b("ip_version")?, IpVersion::parse)?,
        snat_network_id: opt("snat_network_id")?,
        enable_policy: row.try_get::<i64, _>("enable_policy")? != 0,
        supported_editions: serde_json::from_str(editions)
            .map_err(|_| corrupt("supported_editions", editions))?,
        error,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        server_resources: {
            let raw = b("server_resources")?;
            serde_json::from_str(raw).map_err(|_| corrupt("server_resources", raw))?
        },
        connection_count: row.try_get("connection_count")?,
        endpoint_count: row.try_get("endpoint_count")?,
    })
}

/// Fills `tags` of the given services from `resource_tags`.
async fn attach_tags<'a>(
    conn: &mut Conn,
    services: impl IntoIterator<Item = &'a mut EndpointService>,
) -> StoreResult<()> {
    let services: Vec<&mut EndpointService> = services.into_iter().collect();
    let ids: Vec<String> = services.iter().map(|s| s.id.to_string()).collect();
    let mut tags = tags::load_tags(conn, TAG_TYPE_SERVICE, &ids).await?;
    for (s, id) in services.into_iter().zip(&ids) {
        s.tags = tags.remove(id).unwrap_or_default();
    }
    Ok(())
}

/// The distinct claims a service's ports make: `(protocol, side, port)`, sorted so that
/// concurrent transactions take the keys in one order.
fn claims_of(ports: &[PortMapping]) -> BTreeSet<(&'static str, &'static str, u16)> {
    ports
        .iter()
        .flat_map(|p| {
            [
                (p.protocol.as_str(), "client", p.client_port),
                (p.protocol.as_str(), "server", p.server_port),
            ]
        })
        .collect()
}

fn port_conflict(side: &str, port: i64, protocol: &str, other: &str, port_id: Uuid) -> StoreError {
    ApiError::new(
        ErrorCode::PortConflict,
        format!(
            "The ports conflict with an existing endpoint service: {side}_port {port} ({protocol}) \
             is already used by endpoint service {other} on port_id {port_id}"
        ),
    )
    .into()
}

/// Claims the service's ports on its `port_id`. A port another service holds is EndPoint.3044;
/// the primary key makes this hold under concurrent transactions (on PostgreSQL a conflicting
/// insert waits for the other transaction, then does nothing). Ids are stored as their 16
/// bytes (migration 0015).
///
/// One single-row statement per claim: SQLite writes a multi-row insert (or one with
/// `RETURNING`) through a statement journal, a copy of every page it changes, which cost more
/// than the statements saved (most services have one or two mappings).
async fn claim_ports(
    conn: &mut Conn,
    service_id: Uuid,
    port_id: Uuid,
    ports: &[PortMapping],
) -> StoreResult<()> {
    for (protocol, side, port) in claims_of(ports) {
        let inserted = query(
            "INSERT INTO service_port_claims (port_id, protocol, side, port, service_id) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        )
        .bind(id_bytes(port_id))
        .bind(protocol)
        .bind(side)
        .bind(i64::from(port))
        .bind(id_bytes(service_id))
        .execute(&mut *conn)
        .await?
        .rows_affected();
        if inserted == 1 {
            continue;
        }
        // Name the service that holds it, for a readable error.
        let holder: Option<Vec<u8>> = query_scalar(
            "SELECT service_id FROM service_port_claims WHERE port_id = $1 AND protocol = $2 AND side = $3 AND port = $4",
        )
        .bind(id_bytes(port_id))
        .bind(protocol)
        .bind(side)
        .bind(i64::from(port))
        .fetch_optional(&mut *conn)
        .await?;
        return Err(port_conflict(
            side,
            i64::from(port),
            protocol,
            &holder.map_or_else(|| "created concurrently".into(), |h| id_text(&h)),
            port_id,
        ));
    }
    Ok(())
}

/// Releases the claims a service holds on its `port_id`: a range of the claims' primary key
/// (which starts with `port_id`), so no index on `service_id` is kept up for it.
async fn release_ports(conn: &mut Conn, port_id: Uuid, service_id: Uuid) -> StoreResult<()> {
    query("DELETE FROM service_port_claims WHERE port_id = $1 AND service_id = $2")
        .bind(id_bytes(port_id))
        .bind(id_bytes(service_id))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Checks the service's backend port against the network (share-locking the port); answers
/// where the data plane would connect.
async fn check_backend(
    conn: &mut Conn,
    share_lock: bool,
    s: &EndpointService,
) -> StoreResult<BackendAddress> {
    let facts = backend_of(conn, share_lock, &s.project_id, s.port_id, s.vpc_id).await?;
    Ok(check_service_backend(
        s.server_type,
        s.vpc_id,
        s.port_id,
        s.ip.as_deref(),
        facts.as_ref(),
    )?)
}

/// Claims the service's backend address for its VPC (see `claims`). With a data plane
/// (`enforce`), an address another VPC holds is EndPoint.3046 and the transaction rolls back.
/// The caller records the claim on the service's row.
async fn claim_backend(
    conn: &mut Conn,
    s: &EndpointService,
    backend: &BackendAddress,
    enforce: bool,
) -> StoreResult<claims::BackendClaim> {
    let vpc = s.vpc_id.to_string();
    let claim = claims::claim_backend_address(conn, &vpc, &backend.space, backend.ip).await?;
    match backend.ip {
        Some(ip) if !claim.held && enforce => Err(ApiError::new(
            ErrorCode::IpConflictsWithService,
            format!(
                "The backend address {ip} is held by another VPC's endpoint or backend in the data plane's address space ({}); use another port or ip",
                backend.space.key()
            ),
        )
        .into()),
        _ => Ok(claim),
    }
}

async fn insert_service(
    conn: &mut Conn,
    share_lock: bool,
    enforce_claims: bool,
    s: &EndpointService,
    quota: u64,
) -> StoreResult<()> {
    if !share_lock {
        // SQLite: a create refused for its quota then writes nothing, so the writer has nothing
        // to roll back (see `Writer::commit_batch`). PostgreSQL skips the extra round trip.
        usage::check(conn, &s.project_id, USAGE_ENDPOINT_SERVICE, quota).await?;
    }
    let backend = check_backend(conn, share_lock, s).await?;
    claim_ports(conn, s.id, s.port_id, &s.ports).await?;
    // The backend claim is taken first so that the row is written once, with it.
    let claim = match s.service_type {
        ServiceType::Interface => Some(claim_backend(conn, s, &backend, enforce_claims).await?),
        _ => None,
    };
    query(&INSERT_SERVICE)
        .bind(s.id.to_string())
        .bind(&s.project_id)
        .bind(&s.domain_id)
        .bind(&s.short_name)
        .bind(&s.full_name)
        .bind(s.port_id.to_string())
        .bind(s.vpc_id.to_string())
        .bind(s.server_type.as_str())
        .bind(s.service_type.as_str())
        .bind(i64::from(s.approval_enabled))
        .bind(s.status.as_str())
        .bind(s.tcp_proxy.as_str())
        .bind(ports_to_json(&s.ports))
        .bind(&s.description)
        .bind(&s.ip)
        .bind(s.ip_version.as_str())
        .bind(&s.snat_network_id)
        .bind(i64::from(s.enable_policy))
        .bind(serde_json::to_string(&s.supported_editions).expect("strings serialize"))
        .bind(s.error.as_ref().map(|e| e.code.clone()))
        .bind(s.error.as_ref().map(|e| e.message.clone()))
        .bind(s.created_at)
        .bind(s.updated_at)
        .bind(serde_json::to_string(&s.server_resources).expect("resources serialize"))
        .bind(s.updated_at)
        .bind(claim.as_ref().map(|c| c.space.as_str()))
        .bind(claim.as_ref().and_then(|c| c.ip.as_deref()))
        .bind(i64::from(claim.as_ref().is_some_and(|c| c.held)))
        .execute(&mut *conn)
        .await?;
    tags::insert_tags(
        conn,
        TAG_TYPE_SERVICE,
        &s.id.to_string(),
        &s.project_id,
        &s.tags,
    )
    .await?;
    // Last, so that on PostgreSQL the project's counter row stays locked as briefly as possible.
    usage::take(conn, &s.project_id, USAGE_ENDPOINT_SERVICE, quota).await
}

/// Due `creating` interface services whose backend the data plane may not connect to become
/// `failed` with the reason (EndPoint.3010); answers how many.
async fn fail_refused_backends(
    c: &mut Conn,
    lock: &str,
    cutoff: i64,
    now: i64,
    limit: u32,
    gate: &DataplaneGate,
) -> StoreResult<u64> {
    let rows = query(&due_services(
        "id, ip, backend_space, backend_ip, backend_held",
        "creating",
        "$1",
        " AND service_type = 'interface'",
        limit,
        lock,
    ))
    .bind(cutoff)
    .fetch_all(&mut *c)
    .await?;
    let mut failed = 0;
    for r in &rows {
        let ip: Option<String> = r.try_get("ip")?;
        let space: Option<String> = r.try_get("backend_space")?;
        let backend: Option<String> = r.try_get("backend_ip")?;
        let held = r.try_get::<i64, _>("backend_held")? == 1;
        if space.is_none() {
            continue; // not claimed yet: the claims pass evaluates it first
        }
        let Some(why) = crate::dataplane::backend_refusal(
            &gate.policy,
            space.as_deref(),
            backend.as_deref(),
            held,
            ip.as_deref(),
        ) else {
            continue;
        };
        query(
            "UPDATE endpoint_services SET status = 'failed', error_code = $2, error_message = $3, \
             updated_at = $4, status_at = $4 WHERE id = $1",
        )
        .bind(r.try_get::<String, _>("id")?)
        .bind(ErrorCode::InvalidIp.code())
        .bind(why)
        .bind(now)
        .execute(&mut *c)
        .await?;
        failed += 1;
    }
    Ok(failed)
}

/// Writes back the mutable columns of a service.
async fn update_service_row(
    conn: &mut Conn,
    s: &EndpointService,
    status_changed: bool,
) -> StoreResult<()> {
    query(
        "UPDATE endpoint_services SET short_name = $2, full_name = $3, port_id = $4, approval_enabled = $5, \
         status = $6, tcp_proxy = $7, ports = $8, description = $9, ip = $10, enable_policy = $11, \
         supported_editions = $12, error_code = $13, error_message = $14, updated_at = $15, \
         status_at = CASE WHEN $16 = 1 THEN $15 ELSE status_at END, server_resources = $17 WHERE id = $1",
    )
    .bind(s.id.to_string())
    .bind(&s.short_name)
    .bind(&s.full_name)
    .bind(s.port_id.to_string())
    .bind(i64::from(s.approval_enabled))
    .bind(s.status.as_str())
    .bind(s.tcp_proxy.as_str())
    .bind(ports_to_json(&s.ports))
    .bind(&s.description)
    .bind(&s.ip)
    .bind(i64::from(s.enable_policy))
    .bind(serde_json::to_string(&s.supported_editions).expect("strings serialize"))
    .bind(s.error.as_ref().map(|e| e.code.clone()))
    .bind(s.error.as_ref().map(|e| e.message.clone()))
    .bind(s.updated_at)
    .bind(i64::from(status_changed))
    .bind(serde_json::to_string(&s.server_resources).expect("resources serialize"))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Fills what the rows of services did not hold: the tags of those that have some
/// (`has_tags`, by position; see [`tags::has_tags_col`]).
async fn attach_all(
    conn: &mut Conn,
    services: &mut [EndpointService],
    has_tags: &[bool],
) -> StoreResult<()> {
    let tagged = services
        .iter_mut()
        .zip(has_tags)
        .filter_map(|(s, &tagged)| tagged.then_some(s));
    attach_tags(conn, tagged).await
}

/// The first service matching `w` (with an optional lock clause), complete.
pub(crate) async fn fetch_service(
    conn: &mut Conn,
    w: &Where,
    lock: &str,
) -> StoreResult<Option<EndpointService>> {
    // A locking read counts in a statement of its own, after the lock: on PostgreSQL a statement
    // that waited for the row lock evaluates subqueries as of before the wait, and would miss
    // endpoints committed meanwhile (a racing delete would not see them).
    let counts = if lock.is_empty() {
        ENDPOINT_COUNT_COLS.as_str()
    } else {
        "0 AS endpoint_count, 0 AS connection_count"
    };
    let sql = format!(
        "SELECT {SERVICE_COLS}, {counts} FROM endpoint_services WHERE {}{lock}",
        w.sql()
    );
    let Some(row) = w.bind(query(&sql)).fetch_optional(&mut *conn).await? else {
        return Ok(None);
    };
    let mut s = [service_from_row(&row)?];
    if !lock.is_empty() {
        recount_endpoints(conn, &mut s[0]).await?;
    }
    attach_all(conn, &mut s, &[true]).await?;
    let [s] = s;
    Ok(Some(s))
}

/// Whether a listed service has tags (see [`tags::has_tags_col`]).
static HAS_TAGS_COL: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| tags::has_tags_col(TAG_TYPE_SERVICE, "endpoint_services"));

/// Re-reads the counts of [`ENDPOINT_COUNT_COLS`] for one service in a statement of its own
/// (for a locking read, after its lock).
async fn recount_endpoints(conn: &mut Conn, service: &mut EndpointService) -> StoreResult<()> {
    let sql = format!(
        "SELECT {} FROM endpoint_services WHERE id = $1",
        *ENDPOINT_COUNT_COLS
    );
    let row = query(&sql)
        .bind(service.id.to_string())
        .fetch_one(&mut *conn)
        .await?;
    service.endpoint_count = row.try_get("endpoint_count")?;
    service.connection_count = row.try_get("connection_count")?;
    Ok(())
}

impl SqlStore {
    /// Stores `toml` as the default account unless one is stored already; answers the stored one.
    pub async fn default_account(&self, toml: String) -> StoreResult<String> {
        self.write_retryable(move |c| {
            // Cloned for each run: the call may run again (see `write_retryable`).
            let toml = toml.clone();
            Box::pin(async move {
                query("INSERT INTO default_account (singleton, toml) VALUES (1, $1) ON CONFLICT DO NOTHING")
                    .bind(&toml)
                    .execute(&mut *c)
                    .await?;
                Ok(query_scalar("SELECT toml FROM default_account WHERE singleton = 1")
                    .fetch_one(&mut *c)
                    .await?)
            })
        })
        .await
    }

    /// The stored default account, if one was stored (never stores one).
    pub async fn stored_default_account(&self) -> StoreResult<Option<String>> {
        let mut c = self.reader().await?;
        Ok(
            query_scalar("SELECT toml FROM default_account WHERE singleton = 1")
                .fetch_optional(&mut c)
                .await?,
        )
    }

    /// Inserts a new service with its port claims, tags and usage count in one transaction.
    /// Refuses with EndPoint.3044 when a port is claimed by another service on the same
    /// `port_id`, and with Endpoint.1018 when the project already has `quota` services.
    pub async fn create_service(&self, service: &EndpointService, quota: u64) -> StoreResult<()> {
        let s = std::sync::Arc::new(service.clone());
        let share = self.dialect == crate::sql::Dialect::Postgres;
        let enforce = self.enforce_claims;
        self.write_retryable(move |c| {
            let s = s.clone();
            Box::pin(async move { insert_service(c, share, enforce, &s, quota).await })
        })
        .await
    }

    /// One service of a project.
    pub async fn get_service(
        &self,
        project_id: &str,
        id: Uuid,
    ) -> StoreResult<Option<EndpointService>> {
        let mut c = self.reader().await?;
        fetch_service(&mut c, &crate::network::owned(project_id, id), "").await
    }

    /// One service of any project, by id or full name.
    pub async fn find_service(
        &self,
        lookup: &ServiceLookup,
    ) -> StoreResult<Option<EndpointService>> {
        // Both by the id (the table's unique key): a full name ends with its service's id, and
        // is then matched whole (no index on the names is kept up for this one lookup).
        let (id, name) = match lookup {
            ServiceLookup::Id(id) => (*id, None),
            ServiceLookup::FullName(name) => match EndpointService::id_in_full_name(name) {
                Some(id) => (id, Some(name)),
                None => return Ok(None),
            },
        };
        let mut w = Where::default();
        w.eq("id", id.to_string());
        if let Some(name) = name {
            w.eq("full_name", name.clone());
        }
        let mut c = self.reader().await?;
        fetch_service(&mut c, &w, "").await
    }

    /// A page of services and the total matching the filter.
    pub async fn list_services(
        &self,
        scope: &ServiceScope,
        filter: &ServiceFilter,
        page: &Page,
    ) -> StoreResult<(Vec<EndpointService>, u64)> {
        let mut w = Where::default();
        match scope {
            ServiceScope::Project(p) => w.eq("project_id", p.clone()),
            ServiceScope::Domains(ds) => w.is_in("domain_id", ds),
        };
        if let Some(id) = &filter.id {
            w.eq("id", id.clone());
        }
        if let Some(status) = filter.status {
            w.eq("status", status.as_str());
        }
        if let Some(name) = &filter.name_contains {
            w.contains_ci("full_name", name);
        }
        let where_sql = w.sql();
        let mut c = self.reader().await?;
        let total = match scope {
            ServiceScope::Project(p) if filter.is_empty() => {
                usage::read(&mut c, p, USAGE_ENDPOINT_SERVICE).await?
            }
            _ => {
                let sql = format!("SELECT COUNT(*) FROM endpoint_services WHERE {where_sql}");
                w.bind_scalar(query_scalar::<i64>(&sql))
                    .fetch_one(&mut c)
                    .await?
                    .max(0) as u64
            }
        };
        if page.offset >= total {
            return Ok((Vec::new(), total));
        }
        let sql = format!(
            "SELECT {SERVICE_COLS}, {}, {} FROM endpoint_services WHERE {where_sql} {} {}",
            *ENDPOINT_COUNT_COLS,
            *HAS_TAGS_COL,
            order_by(page),
            limit_offset(page)
        );
        let rows = w.bind(query(&sql)).fetch_all(&mut c).await?;
        let mut services = Vec::with_capacity(rows.len());
        let mut has_tags = Vec::with_capacity(rows.len());
        for row in &rows {
            services.push(service_from_row(row)?);
            has_tags.push(row.try_get::<i64, _>("has_tags")? != 0);
        }
        attach_all(&mut c, &mut services, &has_tags).await?;
        Ok((services, total))
    }

    /// Loads a service of a project, lets `mutate` change it, and writes the result (row, port
    /// claims when ports or `port_id` changed) in the same transaction. 404 when absent.
    pub async fn modify_service(
        &self,
        project_id: &str,
        id: Uuid,
        now: i64,
        mutate: ServiceMutation,
    ) -> StoreResult<EndpointService> {
        let dialect = self.dialect;
        let share = self.dialect == crate::sql::Dialect::Postgres;
        let enforce = self.enforce_claims;
        let project_id = project_id.to_string();
        self.write_retryable(move |c| {
            // Cloned for each run: the call may run again (see `write_retryable`).
            let (mutate, project_id) = (mutate.clone(), project_id.clone());
            Box::pin(async move {
                let sid = id.to_string();
                let Some(old) = fetch_service(
                    c,
                    &crate::network::owned(&project_id, id),
                    dialect.for_update(),
                )
                .await?
                else {
                    return Err(ApiError::not_found("endpoint service", &sid).into());
                };
                let mut new = old.clone();
                mutate(&mut new)?;
                if new == old {
                    return Ok(new);
                }
                new.updated_at = now;
                if new.port_id != old.port_id || new.ip != old.ip {
                    let backend = check_backend(c, share, &new).await?;
                    if new.service_type == ServiceType::Interface {
                        claims::release_service_backend(c, &sid).await?;
                        let claim = claim_backend(c, &new, &backend, enforce).await?;
                        claims::record_service_backend(c, &sid, &claim).await?;
                    }
                }
                if new.ports != old.ports || new.port_id != old.port_id {
                    release_ports(c, old.port_id, old.id).await?;
                    claim_ports(c, new.id, new.port_id, &new.ports).await?;
                }
                update_service_row(c, &new, new.status != old.status).await?;
                if crate::dataplane::service_change_moves_dataplane(&old, &new) {
                    crate::dataplane::bump_version(c).await?;
                }
                Ok(new)
            })
        })
        .await
    }
}

/// Due `creating` services become `available`; with a data plane (`gate`), only while an
/// agent is alive, and `failed` when the data plane may not connect to their backend (a
/// domain name, an address another VPC holds, or one the operator's policy refuses). Answers
/// how many changed.
pub(crate) async fn complete_service_creations(
    c: &mut Conn,
    lock: &str,
    cutoff: i64,
    now: i64,
    limit: u32,
    gate: Option<&DataplaneGate>,
) -> StoreResult<u64> {
    let mut services = 0;
    if let Some(g) = gate {
        services += fail_refused_backends(c, lock, cutoff, now, limit, g).await?;
    }
    let alive = gate.map(|g| g.alive_since);
    let live = if alive.is_some() {
        " AND EXISTS (SELECT 1 FROM agents WHERE reported_at >= $3)"
    } else {
        ""
    };
    let sql = format!(
        "UPDATE endpoint_services SET status = 'available', updated_at = $1, status_at = $1 \
         WHERE id IN ({}){live}",
        due_services("id", "creating", "$2", "", limit, lock)
    );
    let mut q = query(&sql).bind(now).bind(cutoff);
    if let Some(t) = alive {
        q = q.bind(t);
    }
    services += q.execute(&mut *c).await?.rows_affected();
    Ok(services)
}

/// Removes services that have been `deleting` since `cutoff` or earlier, with their port and
/// address claims, tags, permissions and usage; answers how many went.
pub(crate) async fn remove_deleted_services(
    c: &mut Conn,
    lock: &str,
    cutoff: i64,
    limit: u32,
) -> StoreResult<u64> {
    let sql = format!(
        "DELETE FROM endpoint_services WHERE id IN ({}) \
         RETURNING id, project_id, port_id, vpc_id, backend_space, backend_ip, backend_held",
        due_services("id", "deleting", "$1", "", limit, lock)
    );
    let gone = query(&sql).bind(cutoff).fetch_all(&mut *c).await?;
    // Released in project order, as by every deletion pass: two passes on two nodes never
    // wait for each other's counters.
    let mut per_project: BTreeMap<String, i64> = BTreeMap::new();
    for row in &gone {
        let id: String = row.try_get("id")?;
        release_ports(
            c,
            parse_stored_uuid("port_id", row.try_get_str("port_id")?)?,
            parse_stored_uuid("id", &id)?,
        )
        .await?;
        claims::release_held(c, row, "backend_held", "backend_space", "backend_ip").await?;
        tags::delete_tags(c, TAG_TYPE_SERVICE, &id).await?;
        crate::permissions::delete_service_permissions(c, &id).await?;
        *per_project.entry(row.try_get("project_id")?).or_default() += 1;
    }
    for (project, n) in per_project {
        usage::release(c, &project, USAGE_ENDPOINT_SERVICE, n).await?;
    }
    Ok(gone.len() as u64)
}
