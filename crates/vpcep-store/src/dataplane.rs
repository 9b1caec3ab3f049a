//! The data plane's desired state and the agents' reports.
//!
//! Every write that changes what agents must serve (services, endpoints, their transitions)
//! bumps the `dataplane_version` counter in the same transaction, so a snapshot's version only
//! grows and a changed version means a changed desired state.

use crate::conn::{query, query_scalar, Conn};
use crate::query::Where;
use crate::sql::SqlStore;
use crate::StoreResult;
use std::collections::HashMap;
use vpcep_domain::dataplane::{AgentReport, EndpointSpec, PortPair, Snapshot};

/// Bumps the desired-state version inside the caller's transaction; answers the new version.
pub(crate) async fn bump_version(conn: &mut Conn) -> StoreResult<u64> {
    let v: i64 = query_scalar(
        "UPDATE counters SET value = value + 1 WHERE name = 'dataplane_version' RETURNING value",
    )
    .fetch_one(&mut *conn)
    .await?;
    Ok(v.max(0) as u64)
}

/// Bumps the version for a change of one endpoint and records it on the endpoint: only reports
/// for that version or later say whether this change is realized.
pub(crate) async fn publish_endpoint(conn: &mut Conn, endpoint_id: uuid::Uuid) -> StoreResult<()> {
    let v = bump_version(conn).await?;
    query("UPDATE endpoints SET desired_version = $2 WHERE id = $1")
        .bind(endpoint_id.to_string())
        .bind(i64::try_from(v).unwrap_or(i64::MAX))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

async fn version(conn: &mut Conn) -> StoreResult<u64> {
    let v: i64 = query_scalar("SELECT value FROM counters WHERE name = 'dataplane_version'")
        .fetch_one(&mut *conn)
        .await?;
    Ok(v.max(0) as u64)
}

/// The endpoints agents must serve: interface endpoints of available services that are
/// `accepted`, or `creating` on their way to it (no approval needed, or the owner accepted).
const SERVED: &str = "SELECT e.id, e.marker_id, e.service_id, e.ip, e.whitelist, e.enable_whitelist, \
     e.vpc_id AS consumer_vpc, s.ports, s.tcp_proxy, s.ip AS service_ip, s.port_id, s.vpc_id AS provider_vpc \
     FROM endpoints e JOIN endpoint_services s ON s.id = e.service_id \
     WHERE e.service_type = 'interface' AND s.status = 'available' AND e.ip IS NOT NULL \
     AND (e.status = 'accepted' OR (e.status = 'creating' AND (s.approval_enabled = 0 OR e.approved = 1))) \
     ORDER BY e.seq";

impl SqlStore {
    pub(crate) async fn dp_oldest_transition(&self) -> StoreResult<Option<i64>> {
        let mut c = self.reader().await?;
        let mut oldest: Option<i64> = None;
        for table in ["endpoint_services", "endpoints"] {
            let sql = format!(
                "SELECT MIN(status_at) FROM {table} WHERE status IN ('creating', 'deleting')"
            );
            let t: Option<i64> = query_scalar(&sql).fetch_one(&mut c).await?;
            oldest = match (oldest, t) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        Ok(oldest)
    }

    pub(crate) async fn dp_version(&self) -> StoreResult<u64> {
        let mut c = self.reader().await?;
        version(&mut c).await
    }

    pub(crate) async fn dp_snapshot(&self) -> StoreResult<Snapshot> {
        // One read transaction, so the version matches the content.
        let mut tx = self.read_tx().await?;
        let v = version(&mut tx).await?;
        let rows = query(SERVED).fetch_all(&mut tx).await?;
        let mut port_ids: Vec<String> = Vec::new();
        let mut vpc_ids: Vec<String> = Vec::new();
        for r in &rows {
            port_ids.push(r.try_get("port_id")?);
            vpc_ids.push(r.try_get("consumer_vpc")?);
            vpc_ids.push(r.try_get("provider_vpc")?);
        }
        port_ids.sort();
        port_ids.dedup();
        vpc_ids.sort();
        vpc_ids.dedup();
        let mut w = Where::default();
        w.is_in("id", &port_ids);
        let sql = format!("SELECT id, ip_address FROM ports WHERE {}", w.sql());
        let port_ips: HashMap<String, String> = w
            .bind(query(&sql))
            .fetch_all(&mut tx)
            .await?
            .iter()
            .map(|r| Ok((r.try_get("id")?, r.try_get("ip_address")?)))
            .collect::<StoreResult<_>>()?;
        let mut w = Where::default();
        w.is_in("id", &vpc_ids);
        let sql = format!("SELECT id, vni, netns FROM vpcs WHERE {}", w.sql());
        let vpcs: HashMap<String, (i64, Option<String>)> = w
            .bind(query(&sql))
            .fetch_all(&mut tx)
            .await?
            .iter()
            .map(|r| Ok((r.try_get("id")?, (r.try_get("vni")?, r.try_get("netns")?))))
            .collect::<StoreResult<_>>()?;
        tx.commit().await?;
        let mut endpoints = Vec::with_capacity(rows.len());
        for r in &rows {
            let port_id: String = r.try_get("port_id")?;
            let service_ip: Option<String> = r.try_get("service_ip")?;
            let Some(backend_ip) = service_ip.or_else(|| port_ips.get(&port_id).cloned()) else {
                continue;
            };
            let consumer = vpcs
                .get(&r.try_get::<String, _>("consumer_vpc")?)
                .cloned()
                .unwrap_or((0, None));
            let provider = vpcs
                .get(&r.try_get::<String, _>("provider_vpc")?)
                .cloned()
                .unwrap_or((0, None));
            let ports: Vec<(u16, u16, String)> =
                serde_json::from_str(&r.try_get::<String, _>("ports")?)
                    .map_err(|e| crate::StoreError::Internal(format!("stored ports: {e}")))?;
            endpoints.push(EndpointSpec {
                endpoint_id: r.try_get("id")?,
                marker_id: u32::try_from(r.try_get::<i64, _>("marker_id")?).unwrap_or(0),
                service_id: r.try_get("service_id")?,
                ip: r.try_get::<Option<String>, _>("ip")?.unwrap_or_default(),
                listen_netns: consumer.1,
                backend_ip,
                backend_netns: provider.1,
                ports: ports
                    .into_iter()
                    .map(|(c, s, _)| PortPair {
                        client_port: c,
                        server_port: s,
                    })
                    .collect(),
                tcp_proxy: r.try_get("tcp_proxy")?,
                vni: u32::try_from(consumer.0).unwrap_or(0),
                whitelist_enabled: r.try_get::<i64, _>("enable_whitelist")? != 0,
                whitelist: serde_json::from_str(&r.try_get::<String, _>("whitelist")?)
                    .map_err(|e| crate::StoreError::Internal(format!("stored whitelist: {e}")))?,
            });
        }
        Ok(Snapshot {
            version: v,
            endpoints,
        })
    }

    pub(crate) async fn dp_report(&self, report: &AgentReport, now: i64) -> StoreResult<()> {
        let report = report.clone();
        self.write(move |c| {
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
