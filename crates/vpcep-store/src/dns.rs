//! What private DNS answers: the names of accepted interface endpoints with `enable_dns`.

use crate::conn::query;
use crate::sql::SqlStore;
use crate::{DnsEntry, DnsRecords, StoreResult};

/// Endpoints whose names resolve: accepted interface endpoints with `enable_dns` and an address
/// their VPC holds in its address space (an endpoint whose address another VPC holds never
/// resolves, so a tenant cannot point a name at another tenant's listener).
const RESOLVED: &str = "SELECT e.id, e.vpc_id, e.ip, e.ipv6_address, e.dns_names, v.netns \
     FROM endpoints e LEFT JOIN vpcs v ON v.id = e.vpc_id \
     WHERE e.service_type = 'interface' AND e.enable_dns = 1 AND e.status = 'accepted' \
     AND e.ip IS NOT NULL AND e.addr_held = 1 ORDER BY e.seq";

impl SqlStore {
    /// A value that changes whenever any endpoint is created, changed or removed (cheap: private
    /// DNS polls it and reads [`SqlStore::dns_records`] only when it moves).
    pub async fn dns_fingerprint(&self) -> StoreResult<(i64, i64, i64)> {
        let mut c = self.reader().await?;
        let r = query(
            "SELECT CAST(COUNT(*) AS BIGINT) AS n, CAST(COALESCE(MAX(updated_at), 0) AS BIGINT) AS latest, \
             CAST(COALESCE(SUM((updated_at % 1000003) * 2 + addr_held), 0) AS BIGINT) AS spread FROM endpoints",
        )
        .fetch_one(&mut c)
        .await?;
        Ok((r.try_get("n")?, r.try_get("latest")?, r.try_get("spread")?))
    }

    /// What private DNS answers: accepted interface endpoints with `enable_dns`, an address
    /// their VPC holds, and their names; plus the namespaces VPCs live in.
    pub async fn dns_records(&self) -> StoreResult<DnsRecords> {
        let mut tx = self.read_tx().await?;
        let rows = query(RESOLVED).fetch_all(&mut tx).await?;
        let spaces =
            query("SELECT DISTINCT netns FROM vpcs WHERE netns IS NOT NULL ORDER BY netns")
                .fetch_all(&mut tx)
                .await?;
        tx.commit().await?;
        let mut entries = Vec::with_capacity(rows.len());
        for r in &rows {
            let names: Vec<String> =
                serde_json::from_str(&r.try_get::<String, _>("dns_names")?).unwrap_or_default();
            entries.push(DnsEntry {
                endpoint_id: r.try_get("id")?,
                vpc_id: r.try_get("vpc_id")?,
                netns: r.try_get("netns")?,
                ip: r.try_get("ip")?,
                ipv6: r
                    .try_get::<Option<String>, _>("ipv6_address")?
                    .filter(|s| !s.is_empty()),
                names,
            });
        }
        let namespaces = spaces
            .iter()
            .map(|r| r.try_get::<String, _>("netns"))
            .collect::<Result<_, _>>()?;
        Ok(DnsRecords {
            entries,
            namespaces,
        })
    }
}
