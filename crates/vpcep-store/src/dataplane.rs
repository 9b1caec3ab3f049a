//! The data plane's desired state and the agents' reports.
//!
//! Every write that changes what agents must serve (services, endpoints, their transitions)
//! bumps the `dataplane_version` counter in the same transaction, so a snapshot's version only
//! grows and a changed version means a changed desired state.

use crate::claims::space_of_key;
use crate::conn::{counter, increment, query, query_scalar, Conn};
use crate::query::Where;
use crate::sql::SqlStore;
use crate::StoreResult;
use std::collections::HashMap;
use vpcep_domain::dataplane::{
    AddressPolicy, AddressSpace, AgentReport, EndpointSpec, PortPair, Snapshot,
};
use vpcep_domain::endpoint::Endpoint;
use vpcep_domain::service::EndpointService;

/// Bumps the desired-state version inside the caller's transaction; answers the new version.
pub(crate) async fn bump_version(conn: &mut Conn) -> StoreResult<u64> {
    let v = increment(conn, "dataplane_version").await?;
    Ok(v.max(0) as u64)
}

/// Bumps the version for a change of one endpoint and records it on the endpoint: only reports
/// for that version or later say whether this change is realized.
pub(crate) async fn publish_endpoint(conn: &mut Conn, endpoint_id: uuid::Uuid) -> StoreResult<()> {
    publish_endpoints(conn, &[endpoint_id]).await
}

/// [`publish_endpoint`] for several endpoints with one bump. Call it once their rows are
/// locked: the version counter is a row every data-plane change locks (the reconciler too,
/// after the endpoints it took), so a transaction must not hold it while it waits for another
/// endpoint's row.
pub(crate) async fn publish_endpoints(
    conn: &mut Conn,
    endpoint_ids: &[uuid::Uuid],
) -> StoreResult<()> {
    if endpoint_ids.is_empty() {
        return Ok(());
    }
    let v = bump_version(conn).await?;
    for id in endpoint_ids {
        query("UPDATE endpoints SET desired_version = $2 WHERE id = $1")
            .bind(id.to_string())
            .bind(i64::try_from(v).unwrap_or(i64::MAX))
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Whether a change of a service changes what agents serve: the service fields [`SERVED`] and
/// the backend claims read (status, approval, `tcp_proxy`, ports, backend `port_id` and `ip`,
/// type). A change of anything else (description, name, policy, editions, server resources)
/// leaves the data plane's version alone: agents have nothing to fetch, and on PostgreSQL a
/// bump holds the one version row until its commit is flushed, so such changes of all tenants
/// would wait for each other.
pub(crate) fn service_change_moves_dataplane(old: &EndpointService, new: &EndpointService) -> bool {
    old.status != new.status
        || old.approval_enabled != new.approval_enabled
        || old.tcp_proxy != new.tcp_proxy
        || old.ports != new.ports
        || old.port_id != new.port_id
        || old.ip != new.ip
        || old.service_type != new.service_type
}

/// Whether a change of an endpoint changes what agents serve: the endpoint fields [`SERVED`]
/// reads (status, approval, address, whitelist, service, VPC, marker). A description, policy,
/// route table, specification or DNS change leaves the version (and the endpoint's
/// `desired_version`, so whether it counts as realized) alone.
pub(crate) fn endpoint_change_moves_dataplane(old: &Endpoint, new: &Endpoint) -> bool {
    old.status != new.status
        || old.approved != new.approved
        || old.ip != new.ip
        || old.whitelist != new.whitelist
        || old.enable_whitelist != new.enable_whitelist
        || old.service_id != new.service_id
        || old.service_type != new.service_type
        || old.vpc_id != new.vpc_id
        || old.marker_id != new.marker_id
}

async fn version(conn: &mut Conn) -> StoreResult<u64> {
    let v = counter(conn, "dataplane_version").await?;
    Ok(v.max(0) as u64)
}

/// The endpoints agents must serve: interface endpoints of available services that are
/// `accepted` or `failed` (the owner wants them; the data plane did not yet realize them), or
/// `creating` on their way to it (no approval needed, or the owner accepted). With the facts the
/// control plane's verdict needs: who holds the endpoint's and the backend's address.
const SERVED: &str = "SELECT e.id, e.marker_id, e.service_id, e.ip, e.whitelist, e.enable_whitelist, \
     e.vpc_id AS consumer_vpc, e.addr_space, e.addr_held, s.ports, s.tcp_proxy, s.ip AS service_ip, \
     s.backend_space, s.backend_ip, s.backend_held \
     FROM endpoints e JOIN endpoint_services s ON s.id = e.service_id \
     WHERE e.service_type = 'interface' AND s.status = 'available' AND e.ip IS NOT NULL \
     AND (e.status IN ('accepted', 'failed') OR (e.status = 'creating' AND (s.approval_enabled = 0 OR e.approved = 1))) \
     ORDER BY e.seq";

/// Why the data plane may not listen on an endpoint's address: not held by its VPC, or refused
/// by the operator's policy. `None`: it may.
pub(crate) fn listen_refusal(
    policy: &AddressPolicy,
    space: Option<&str>,
    ip: &str,
    held: bool,
) -> Option<String> {
    let Some(space) = space else {
        return Some(format!("the endpoint's address {ip} is not claimed yet"));
    };
    if !held {
        return Some(format!(
            "the endpoint's address {ip} is held by another VPC's endpoint or backend in the data plane's address space ({space})"
        ));
    }
    let ip: std::net::IpAddr = match ip.parse() {
        Ok(a) => a,
        Err(_) => {
            return Some(format!(
                "the endpoint's address {ip:?} is not an IP address"
            ))
        }
    };
    policy
        .check(&space_of_key(space), ip)
        .err()
        .map(|why| format!("the data plane may not listen on the endpoint's address: {why}"))
}

/// Why the data plane may not connect to a service's backend: a domain name, an address not
/// held by the service's VPC, or one the operator's policy refuses. `None`: it may.
pub(crate) fn backend_refusal(
    policy: &AddressPolicy,
    space: Option<&str>,
    backend_ip: Option<&str>,
    held: bool,
    service_ip: Option<&str>,
) -> Option<String> {
    let Some(space) = space else {
        return Some("the service's backend address is not claimed yet".into());
    };
    let Some(ip) = backend_ip else {
        return Some(format!(
            "the service's ip {:?} is a domain name; the data plane connects only to IP addresses inside the provider's VPC",
            service_ip.unwrap_or_default()
        ));
    };
    if !held {
        return Some(format!(
            "the service's backend address {ip} is held by another VPC's endpoint or backend in the data plane's address space ({space})"
        ));
    }
    let addr: std::net::IpAddr = match ip.parse() {
        Ok(a) => a,
        Err(_) => {
            return Some(format!(
                "the service's backend address {ip:?} is not an IP address"
            ))
        }
    };
    policy
        .check(&space_of_key(space), addr)
        .err()
        .map(|why| format!("the data plane may not connect to the service's backend: {why}"))
}

impl SqlStore {
    /// When the oldest resource still in `creating` or `deleting` entered that state.
    pub async fn oldest_transition(&self) -> StoreResult<Option<i64>> {
        let mut c = self.reader().await?;
        let mut oldest: Option<i64> = None;
        for table in ["endpoint_services", "endpoints"] {
            let sql = format!(
                "SELECT MIN(status_at) FROM {table} WHERE {}",
                crate::services::IN_TRANSITION
            );
            let t: Option<i64> = query_scalar(&sql).fetch_one(&mut c).await?;
            oldest = match (oldest, t) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        Ok(oldest)
    }

    /// The current version of the data plane's desired state.
    pub async fn dataplane_version(&self) -> StoreResult<u64> {
        let mut c = self.reader().await?;
        version(&mut c).await
    }

    /// The data plane's desired state: every endpoint agents must serve, with its version.
    /// Endpoints whose address or backend the data plane may not use (not held by their VPC, or
    /// refused by `policy`) carry the reason in `refused`.
    pub async fn dataplane_snapshot(&self, policy: &AddressPolicy) -> StoreResult<Snapshot> {
        // One read transaction, so the version matches the content.
        let mut tx = self.read_tx().await?;
        let v = version(&mut tx).await?;
        let rows = query(SERVED).fetch_all(&mut tx).await?;
        let mut vpc_ids: Vec<String> = rows
            .iter()
            .map(|r| r.try_get("consumer_vpc"))
            .collect::<Result<_, _>>()?;
        vpc_ids.sort();
        vpc_ids.dedup();
        let mut w = Where::default();
        w.is_in("id", &vpc_ids);
        let sql = format!("SELECT id, vni FROM vpcs WHERE {}", w.sql());
        let vnis: HashMap<String, i64> = w
            .bind(query(&sql))
            .fetch_all(&mut tx)
            .await?
            .iter()
            .map(|r| Ok((r.try_get("id")?, r.try_get("vni")?)))
            .collect::<StoreResult<_>>()?;
        tx.commit().await?;
        let mut endpoints = Vec::with_capacity(rows.len());
        for r in &rows {
            let ip: String = r.try_get("ip")?;
            let addr_space: Option<String> = r.try_get("addr_space")?;
            let backend_space: Option<String> = r.try_get("backend_space")?;
            let backend_ip: Option<String> = r.try_get("backend_ip")?;
            let service_ip: Option<String> = r.try_get("service_ip")?;
            let refused = listen_refusal(
                policy,
                addr_space.as_deref(),
                &ip,
                r.try_get::<i64, _>("addr_held")? == 1,
            )
            .or_else(|| {
                backend_refusal(
                    policy,
                    backend_space.as_deref(),
                    backend_ip.as_deref(),
                    r.try_get::<i64, _>("backend_held").ok() == Some(1),
                    service_ip.as_deref(),
                )
            });
            let netns = |space: &Option<String>| match space.as_deref().map(space_of_key) {
                Some(AddressSpace::Netns(ns)) => Some(ns),
                _ => None,
            };
            let ports: Vec<(u16, u16, String)> =
                serde_json::from_str(&r.try_get::<String, _>("ports")?)
                    .map_err(|e| crate::StoreError::internal(format!("stored ports: {e}")))?;
            endpoints.push(EndpointSpec {
                endpoint_id: r.try_get("id")?,
                marker_id: u32::try_from(r.try_get::<i64, _>("marker_id")?).unwrap_or(0),
                service_id: r.try_get("service_id")?,
                ip,
                listen_netns: netns(&addr_space),
                backend_ip: backend_ip.unwrap_or_default(),
                backend_netns: netns(&backend_space),
                ports: ports
                    .into_iter()
                    .map(|(c, s, _)| PortPair {
                        client_port: c,
                        server_port: s,
                    })
                    .collect(),
                tcp_proxy: r.try_get("tcp_proxy")?,
                vni: vnis
                    .get(&r.try_get::<String, _>("consumer_vpc")?)
                    .and_then(|v| u32::try_from(*v).ok())
                    .unwrap_or(0),
                whitelist_enabled: r.try_get::<i64, _>("enable_whitelist")? != 0,
                whitelist: serde_json::from_str(&r.try_get::<String, _>("whitelist")?)
                    .map_err(|e| crate::StoreError::internal(format!("stored whitelist: {e}")))?,
                refused,
            });
        }
        Ok(Snapshot {
            version: v,
            endpoints,
            report_every_ms: None,
        })
    }

    /// The agents and when each last reported, and how many endpoints the owner wants
    /// (`accepted` or `failed`) are served by how many agents alive since `alive_since`.
    pub async fn agents_overview(&self, alive_since: i64) -> StoreResult<crate::AgentsOverview> {
        let mut c = self.reader().await?;
        let agents = query("SELECT agent_id, reported_at FROM agents ORDER BY agent_id")
            .fetch_all(&mut c)
            .await?
            .iter()
            .map(|r| Ok((r.try_get("agent_id")?, r.try_get("reported_at")?)))
            .collect::<StoreResult<Vec<(String, i64)>>>()?;
        let by = query(
            "SELECT n, COUNT(*) AS endpoints FROM (SELECT (SELECT COUNT(*) FROM endpoint_realizations r \
             JOIN agents a ON a.agent_id = r.agent_id WHERE r.endpoint_id = e.id AND r.ok = 1 \
             AND a.reported_at >= $1) AS n FROM endpoints e WHERE e.status IN ('accepted', 'failed')) x \
             GROUP BY n ORDER BY n",
        )
        .bind(alive_since)
        .fetch_all(&mut c)
        .await?
        .iter()
        .map(|r| {
            Ok((
                u64::try_from(r.try_get::<i64, _>("n")?).unwrap_or(0),
                u64::try_from(r.try_get::<i64, _>("endpoints")?).unwrap_or(0),
            ))
        })
        .collect::<StoreResult<Vec<(u64, u64)>>>()?;
        Ok(crate::AgentsOverview {
            agents,
            endpoints_by_serving_agents: by,
        })
    }

    /// Records what an agent realized (replacing its previous report).
    pub async fn record_agent_report(&self, report: &AgentReport, now: i64) -> StoreResult<()> {
        let report = report.clone();
        self.write_retryable(move |c| {
            // Cloned for each run: the call may run again (see `write_retryable`).
            let report = report.clone();
            Box::pin(async move {
                query(
                    "INSERT INTO agents (agent_id, version, reported_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (agent_id) DO UPDATE SET version = excluded.version, reported_at = excluded.reported_at",
                )
                .bind(&report.agent_id)
                .bind(i64::try_from(report.version).unwrap_or(i64::MAX))
                .bind(now)
                .execute(&mut *c)
                .await?;
                query("DELETE FROM endpoint_realizations WHERE agent_id = $1")
                    .bind(&report.agent_id)
                    .execute(&mut *c)
                    .await?;
                for e in &report.endpoints {
                    query(
                        "INSERT INTO endpoint_realizations (endpoint_id, agent_id, version, ok, error, reported_at) \
                         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (endpoint_id, agent_id) DO NOTHING",
                    )
                    .bind(&e.endpoint_id)
                    .bind(&report.agent_id)
                    .bind(i64::try_from(report.version).unwrap_or(i64::MAX))
                    .bind(i64::from(e.ok))
                    .bind(e.error.as_deref())
                    .bind(now)
                    .execute(&mut *c)
                    .await?;
                }
                Ok(())
            })
        })
        .await
    }
}
