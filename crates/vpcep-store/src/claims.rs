//! Data-plane address ownership: which VPC holds an address in an address space.
//!
//! Every address the data plane listens on (an interface endpoint's `ip`) or connects to (a
//! service's backend) is held by exactly one VPC per address space (`host`, or `netns:<name>`;
//! see [`vpcep_domain::dataplane::AddressSpace`]). The first resource to claim an address makes
//! its VPC the owner (a primary key, so concurrent claims through any number of nodes cannot both
//! win); later resources of the same VPC share the claim (`refs`), resources of other VPCs do not
//! get it and are never served. The owner keeps the address until its last resource is gone;
//! then [`SqlStore::settle_claims`] gives it to the oldest resource waiting for it.

use crate::conn::{add_or_insert, counter, increment, query, query_scalar, Conn, Row};
use crate::sql::SqlStore;
use crate::{StoreError, StoreResult};
use ipnet::Ipv4Net;
use std::net::Ipv4Addr;
use vpcep_domain::dataplane::AddressSpace;

/// Takes a reference on `(space, ip)` for `vpc_id`: true when that VPC now holds it (it was free,
/// or the VPC already held it); false when another VPC holds it (nothing changes then). A
/// reference on a claim the VPC holds, else a new claim ([`add_or_insert`]).
pub(crate) async fn claim(
    c: &mut Conn,
    space: &str,
    ip: Ipv4Addr,
    vpc_id: &str,
) -> StoreResult<bool> {
    let ip_text = ip.to_string();
    let add_ref = || {
        query(
            "UPDATE address_claims SET refs = refs + 1 WHERE space = $1 AND ip = $2 AND vpc_id = $3",
        )
        .bind(space)
        .bind(&ip_text)
        .bind(vpc_id)
    };
    let insert = query(
        "INSERT INTO address_claims (space, ip, ipn, vpc_id, refs) VALUES ($1, $2, $3, $4, 1) \
         ON CONFLICT DO NOTHING",
    )
    .bind(space)
    .bind(&ip_text)
    .bind(i64::from(u32::from(ip)))
    .bind(vpc_id);
    Ok(add_or_insert(c, add_ref, insert).await?)
}

/// Gives back one reference of `vpc_id` on `(space, ip)`; the claim goes with its last reference,
/// and then the `claims_freed` counter moves (see [`SqlStore::claims_freed`]).
pub(crate) async fn release(c: &mut Conn, space: &str, ip: &str, vpc_id: &str) -> StoreResult<()> {
    query("UPDATE address_claims SET refs = refs - 1 WHERE space = $1 AND ip = $2 AND vpc_id = $3")
        .bind(space)
        .bind(ip)
        .bind(vpc_id)
        .execute(&mut *c)
        .await?;
    let freed = query("DELETE FROM address_claims WHERE space = $1 AND ip = $2 AND refs <= 0")
        .bind(space)
        .bind(ip)
        .execute(&mut *c)
        .await?;
    if freed.rows_affected() > 0 {
        increment(c, "claims_freed").await?;
    }
    Ok(())
}

/// The addresses of `net` in `space` that VPCs other than `vpc_id` hold (what an allocation for
/// the data plane must skip).
pub(crate) async fn held_by_others(
    c: &mut Conn,
    space: &str,
    net: Ipv4Net,
    vpc_id: &str,
) -> StoreResult<Vec<Ipv4Addr>> {
    let rows: Vec<i64> = query_scalar(
        "SELECT ipn FROM address_claims WHERE space = $1 AND ipn >= $2 AND ipn <= $3 AND vpc_id <> $4",
    )
    .bind(space)
    .bind(i64::from(u32::from(net.network())))
    .bind(i64::from(u32::from(net.broadcast())))
    .bind(vpc_id)
    .fetch_all(&mut *c)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|n| u32::try_from(n).ok().map(Ipv4Addr::from))
        .collect())
}

/// Claims an interface endpoint's address: records its space and whether it holds the claim.
/// Answers whether it does.
pub(crate) async fn claim_endpoint_address(
    c: &mut Conn,
    endpoint_id: &str,
    space: &AddressSpace,
    ip: Ipv4Addr,
    vpc_id: &str,
) -> StoreResult<bool> {
    let key = space.key();
    let held = claim(c, &key, ip, vpc_id).await?;
    query("UPDATE endpoints SET addr_space = $2, addr_held = $3 WHERE id = $1")
        .bind(endpoint_id)
        .bind(key)
        .bind(i64::from(held))
        .execute(&mut *c)
        .await?;
    Ok(held)
}

/// Gives back what a service's backend holds (after it is deleted, or before it changes).
pub(crate) async fn release_service_backend(c: &mut Conn, service_id: &str) -> StoreResult<()> {
    let row = query(
        "SELECT backend_space, backend_ip, vpc_id FROM endpoint_services \
         WHERE id = $1 AND backend_held = 1",
    )
    .bind(service_id)
    .fetch_optional(&mut *c)
    .await?;
    if let Some(r) = row {
        let space: String = r.try_get("backend_space")?;
        let ip: String = r.try_get("backend_ip")?;
        let vpc: String = r.try_get("vpc_id")?;
        release(c, &space, &ip, &vpc).await?;
    }
    Ok(())
}

/// A service's claim on its backend address, as its row records it (`backend_space`,
/// `backend_ip`, `backend_held`).
pub(crate) struct BackendClaim {
    pub space: String,
    pub ip: Option<String>,
    pub held: bool,
}

/// Claims a service's backend address (`None`: a domain name, which is never served); the
/// caller records the answer on the service's row (a new row with it, an existing one with
/// [`record_service_backend`]).
pub(crate) async fn claim_backend_address(
    c: &mut Conn,
    vpc_id: &str,
    space: &AddressSpace,
    ip: Option<Ipv4Addr>,
) -> StoreResult<BackendClaim> {
    let key = space.key();
    let held = match ip {
        Some(ip) => claim(c, &key, ip, vpc_id).await?,
        None => false,
    };
    Ok(BackendClaim {
        space: key,
        ip: ip.map(|a| a.to_string()),
        held,
    })
}

/// Records a claim on an existing service's row.
pub(crate) async fn record_service_backend(
    c: &mut Conn,
    service_id: &str,
    claim: &BackendClaim,
) -> StoreResult<()> {
    query(
        "UPDATE endpoint_services SET backend_space = $2, backend_ip = $3, backend_held = $4 WHERE id = $1",
    )
    .bind(service_id)
    .bind(&claim.space)
    .bind(&claim.ip)
    .bind(i64::from(claim.held))
    .execute(&mut *c)
    .await?;
    Ok(())
}

/// Endpoints that do not hold their address and could: never evaluated, or no other VPC holds it.
const ENDPOINTS_WAITING: &str =
    "SELECT e.id, e.vpc_id, e.ip, e.addr_space, v.netns FROM endpoints e \
     LEFT JOIN vpcs v ON v.id = e.vpc_id \
     WHERE e.addr_held = 0 AND e.ip IS NOT NULL AND e.status <> 'deleting' \
     AND (e.addr_space IS NULL OR NOT EXISTS (SELECT 1 FROM address_claims a \
          WHERE a.space = e.addr_space AND a.ip = e.ip AND a.vpc_id <> e.vpc_id))";

/// Interface services whose backend address is not held and could be: never evaluated, or an
/// address (not a domain name) no other VPC holds.
const SERVICES_WAITING: &str = "SELECT s.id, s.vpc_id, s.ip, s.backend_space, s.backend_ip, p.ip_address, v.netns \
     FROM endpoint_services s LEFT JOIN ports p ON p.id = s.port_id LEFT JOIN vpcs v ON v.id = s.vpc_id \
     WHERE s.backend_held = 0 AND s.status <> 'deleting' AND s.service_type = 'interface' \
     AND (s.backend_space IS NULL OR (s.backend_ip IS NOT NULL AND NOT EXISTS \
          (SELECT 1 FROM address_claims a WHERE a.space = s.backend_space AND a.ip = s.backend_ip \
           AND a.vpc_id <> s.vpc_id)))";

fn stored_ip(s: &str) -> StoreResult<Ipv4Addr> {
    s.parse()
        .map_err(|_| StoreError::internal(format!("stored ip {s:?} is not an IPv4 address")))
}

impl SqlStore {
    /// How many address claims have been freed so far (a counter in the store, so every node
    /// sees every node's). Resources waiting for an address another VPC holds can only get it
    /// after this moves: a [`SqlStore::settle_claims`] that settled nothing need not run again
    /// until then, however many such resources there are.
    pub async fn claims_freed(&self) -> StoreResult<i64> {
        let mut r = self.reader().await?;
        Ok(counter(&mut r, "claims_freed").await?)
    }

    /// Settles address claims (see the `claims` module): resources stored before claims
    /// existed are evaluated, and addresses whose owner is gone go to the oldest resource
    /// waiting for them. Answers how many resources now hold their address.
    pub async fn settle_claims(&self, limit: u32) -> StoreResult<u64> {
        // Most passes find nothing to do: look with a reader before taking the writer.
        let pending: i64 = {
            let mut r = self.reader().await?;
            query_scalar(&format!(
                "SELECT (SELECT COUNT(*) FROM ({ENDPOINTS_WAITING} LIMIT 1) x) + (SELECT COUNT(*) FROM ({SERVICES_WAITING} LIMIT 1) y)"
            ))
            .fetch_one(&mut r)
            .await?
        };
        if pending == 0 {
            return Ok(0);
        }
        self.write_retryable(move |c| {
            Box::pin(async move {
                let mut settled = 0;
                let endpoints = query(&format!("{ENDPOINTS_WAITING} ORDER BY e.seq LIMIT {limit}"))
                    .fetch_all(&mut *c)
                    .await?;
                for r in &endpoints {
                    let space = match r.try_get::<Option<String>, _>("addr_space")? {
                        Some(key) => key,
                        None => {
                            AddressSpace::of(r.try_get::<Option<String>, _>("netns")?.as_deref())
                                .key()
                        }
                    };
                    let space = space_of_key(&space);
                    let ip = stored_ip(&r.try_get::<String, _>("ip")?)?;
                    let id: String = r.try_get("id")?;
                    let vpc: String = r.try_get("vpc_id")?;
                    if claim_endpoint_address(c, &id, &space, ip, &vpc).await? {
                        settled += 1;
                    }
                }
                let services = query(&format!("{SERVICES_WAITING} ORDER BY s.seq LIMIT {limit}"))
                    .fetch_all(&mut *c)
                    .await?;
                for r in &services {
                    let (space, ip) = match r.try_get::<Option<String>, _>("backend_space")? {
                        Some(key) => (
                            space_of_key(&key),
                            r.try_get::<Option<String>, _>("backend_ip")?
                                .map(|s| stored_ip(&s))
                                .transpose()?,
                        ),
                        None => {
                            let netns: Option<String> = r.try_get("netns")?;
                            let given: Option<String> = r.try_get("ip")?;
                            let port_ip: Option<String> = r.try_get("ip_address")?;
                            let ip = match given {
                                Some(g) => g.parse().ok(),
                                None => port_ip.map(|p| stored_ip(&p)).transpose()?,
                            };
                            (AddressSpace::of(netns.as_deref()), ip)
                        }
                    };
                    let id: String = r.try_get("id")?;
                    let vpc: String = r.try_get("vpc_id")?;
                    let claim = claim_backend_address(c, &vpc, &space, ip).await?;
                    record_service_backend(c, &id, &claim).await?;
                    if claim.held {
                        settled += 1;
                    }
                }
                Ok(settled)
            })
        })
        .await
    }
}

/// The space of a stored key (`host` or `netns:<name>`).
pub(crate) fn space_of_key(key: &str) -> AddressSpace {
    match key.strip_prefix("netns:") {
        Some(ns) => AddressSpace::Netns(ns.to_string()),
        None => AddressSpace::Host,
    }
}

/// Gives back the address a removed row held: when its `held` column is 1, the claim on
/// (`space`, `ip`) of its `vpc_id` (columns named by the caller).
pub(crate) async fn release_held(
    c: &mut Conn,
    row: &Row,
    held: &str,
    space: &str,
    ip: &str,
) -> StoreResult<()> {
    if row.try_get::<i64, _>(held)? == 1 {
        release(
            c,
            &row.try_get::<String, _>(space)?,
            &row.try_get::<String, _>(ip)?,
            &row.try_get::<String, _>("vpc_id")?,
        )
        .await?;
    }
    Ok(())
}
