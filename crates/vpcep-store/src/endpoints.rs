//! Endpoint persistence: endpoints, their addresses, connections (the owner's view) and the
//! reconciler's endpoint transitions.
//!
//! Concurrency: creating an endpoint share-locks its service row, so a concurrent service delete
//! (which row-locks the service and then counts its endpoints) either sees the endpoint or makes
//! the create find the service `deleting`. Addresses come from the same allocation table as
//! ports, under the subnet's row lock.

use crate::claims;
use crate::conn::{increment, query, Conn, Row};
use crate::network::{allocate_ip, owned, release_ips};
use crate::query::Where;
use crate::record::{self, fetch, int, json, opt_text, parsed, text, to_json, Record, Value};
use crate::sql::SqlStore;
use crate::{tags, usage};
use crate::{
    ConnectionFilter, ConnectionMutation, ConnectionOutcome, DataplaneGate, EndpointCheck,
    EndpointFilter, EndpointMutation, StoreError, StoreResult, USAGE_ENDPOINT,
};
use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;
use uuid::Uuid;
use vpcep_domain::dataplane::AddressSpace;
use vpcep_domain::endpoint::{Endpoint, EndpointStatus};
use vpcep_domain::list::Page;
use vpcep_domain::network::subnet::Subnet;
use vpcep_domain::network::vpc::Vpc;
use vpcep_domain::service::{EndpointService, ResourceError, ServiceStatus, ServiceType};
use vpcep_domain::tag::ResourceKind;
use vpcep_domain::{ApiError, ErrorCode};

impl Record for Endpoint {
    const TABLE: &'static str = "endpoints";
    const COLUMNS: &'static [&'static str] = &[
        "id",
        "project_id",
        "domain_id",
        "service_id",
        "service_type",
        "vpc_id",
        "subnet_id",
        "ip",
        "ever_accepted",
        "approved",
        "status",
        "marker_id",
        "enable_dns",
        "dns_names",
        "whitelist",
        "enable_whitelist",
        "routetables",
        "description",
        "connection_description",
        "policy_statement",
        "policy_document",
        "specification_name",
        "ip_version",
        "ipv6_address",
        "error_code",
        "error_message",
        "created_at",
        "updated_at",
    ];

    fn from_row(row: &Row) -> StoreResult<Self> {
        let opt_json = |col: &str| -> StoreResult<Option<serde_json::Value>> {
            match opt_text(row, col)? {
                None => Ok(None),
                Some(s) => serde_json::from_str(&s)
                    .map(Some)
                    .map_err(|_| StoreError::internal(format!("stored {col} is not JSON"))),
            }
        };
        let error = match (
            opt_text(row, "error_code")?,
            opt_text(row, "error_message")?,
        ) {
            (Some(code), Some(message)) => Some(ResourceError { code, message }),
            _ => None,
        };
        Ok(Endpoint {
            id: parsed(row, "id")?,
            project_id: text(row, "project_id")?,
            domain_id: text(row, "domain_id")?,
            service_id: parsed(row, "service_id")?,
            service_name: String::new(),
            service_type: ServiceType::parse(
                "service_type",
                &text(row, "service_type")?,
                ErrorCode::System,
            )
            .map_err(|e| StoreError::internal(e.msg))?,
            vpc_id: parsed(row, "vpc_id")?,
            subnet_id: opt_text(row, "subnet_id")?
                .map(|s| s.parse())
                .transpose()
                .map_err(|_| StoreError::internal("stored subnet_id"))?,
            ip: opt_text(row, "ip")?
                .map(|s| s.parse())
                .transpose()
                .map_err(|_| StoreError::internal("stored ip"))?,
            ever_accepted: int(row, "ever_accepted")? != 0,
            approved: int(row, "approved")? != 0,
            status: EndpointStatus::parse("status", &text(row, "status")?, ErrorCode::System)
                .map_err(|e| StoreError::internal(e.msg))?,
            marker_id: u32::try_from(int(row, "marker_id")?).unwrap_or(0),
            enable_dns: int(row, "enable_dns")? != 0,
            dns_names: json(row, "dns_names")?,
            whitelist: json(row, "whitelist")?,
            enable_whitelist: int(row, "enable_whitelist")? != 0,
            routetables: json(row, "routetables")?,
            description: text(row, "description")?,
            connection_description: text(row, "connection_description")?,
            policy_statement: opt_json("policy_statement")?,
            policy_document: opt_json("policy_document")?,
            tags: Vec::new(),
            specification_name: text(row, "specification_name")?,
            ip_version: text(row, "ip_version")?,
            ipv6_address: opt_text(row, "ipv6_address")?,
            error,
            created_at: int(row, "created_at")?,
            updated_at: int(row, "updated_at")?,
        })
    }

    fn values(&self) -> Vec<Value> {
        vec![
            self.id.into(),
            self.project_id.as_str().into(),
            self.domain_id.as_str().into(),
            self.service_id.into(),
            self.service_type.as_str().into(),
            self.vpc_id.into(),
            self.subnet_id.map(|s| s.to_string()).into(),
            self.ip.map(|ip| ip.to_string()).into(),
            self.ever_accepted.into(),
            self.approved.into(),
            self.status.as_str().into(),
            i64::from(self.marker_id).into(),
            self.enable_dns.into(),
            to_json(&self.dns_names).into(),
            to_json(&self.whitelist).into(),
            self.enable_whitelist.into(),
            to_json(&self.routetables).into(),
            self.description.as_str().into(),
            self.connection_description.as_str().into(),
            self.policy_statement.as_ref().map(to_json).into(),
            self.policy_document.as_ref().map(to_json).into(),
            self.specification_name.as_str().into(),
            self.ip_version.as_str().into(),
            self.ipv6_address.clone().into(),
            self.error.as_ref().map(|e| e.code.clone()).into(),
            self.error.as_ref().map(|e| e.message.clone()).into(),
            self.created_at.into(),
            self.updated_at.into(),
        ]
    }

    fn touch(&mut self, now: i64) {
        self.updated_at = now;
    }
}

/// Records when an endpoint entered its current status (the reconciler's clock).
async fn set_status_at(conn: &mut Conn, id: Uuid, at: i64) -> StoreResult<()> {
    query("UPDATE endpoints SET status_at = $2 WHERE id = $1")
        .bind(id.to_string())
        .bind(at)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Rewrites an endpoint, moving `status_at` only when its status changed.
async fn update_endpoint(conn: &mut Conn, e: &Endpoint, status_changed: bool) -> StoreResult<()> {
    record::update(conn, e).await?;
    if status_changed {
        set_status_at(conn, e.id, e.updated_at).await?;
    }
    Ok(())
}

/// Fills `service_name` (the target's current full name) and `tags`.
async fn attach(conn: &mut Conn, eps: &mut [Endpoint]) -> StoreResult<()> {
    if eps.is_empty() {
        return Ok(());
    }
    let ids: Vec<String> = eps.iter().map(|e| e.id.to_string()).collect();
    let mut tags = tags::load_tags(conn, ResourceKind::Endpoint.as_str(), &ids).await?;
    let mut service_ids: Vec<String> = eps.iter().map(|e| e.service_id.to_string()).collect();
    service_ids.sort();
    service_ids.dedup();
    let mut w = Where::default();
    w.is_in("id", &service_ids);
    let sql = format!(
        "SELECT id, full_name FROM endpoint_services WHERE {}",
        w.sql()
    );
    let names: HashMap<String, String> = w
        .bind(query(&sql))
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|r| {
            Ok((
                r.try_get::<String, _>("id")?,
                r.try_get::<String, _>("full_name")?,
            ))
        })
        .collect::<StoreResult<_>>()?;
    for e in eps {
        e.tags = tags.remove(&e.id.to_string()).unwrap_or_default();
        e.service_name = names
            .get(&e.service_id.to_string())
            .cloned()
            .unwrap_or_default();
    }
    Ok(())
}

async fn fetch_endpoint(conn: &mut Conn, w: &Where, lock: &str) -> StoreResult<Option<Endpoint>> {
    let Some(e) = fetch::<Endpoint>(conn, w, lock).await? else {
        return Ok(None);
    };
    let mut one = [e];
    attach(conn, &mut one).await?;
    let [e] = one;
    Ok(Some(e))
}

/// `error_code` of an endpoint the data plane could not realize.
pub const DATAPLANE_FAILURE: &str = "EndPoint.2022";
/// `error_code` of a note about what the data plane does not do for an endpoint (e.g. TOA).
pub const DATAPLANE_WARNING: &str = "EndPoint.2099";

fn endpoint_missing(id: impl std::fmt::Display) -> StoreError {
    ApiError::new(
        ErrorCode::EndpointNotFound,
        format!("The requested endpoint does not exist: {id}"),
    )
    .into()
}

/// Maps the network's address errors onto the endpoint API's codes.
fn port_ip_error(e: StoreError) -> StoreError {
    match e {
        StoreError::Api(a) if a.code == ErrorCode::PortParam => {
            ApiError::new(ErrorCode::PortIpNotInSubnet, a.msg).into()
        }
        StoreError::Api(a) if a.code == ErrorCode::IpInUse => {
            ApiError::new(ErrorCode::PortIpInUse, a.msg).into()
        }
        other => other,
    }
}

/// A route table serves one gateway endpoint of a service in a VPC (EndPoint.2039).
async fn check_routetables(c: &mut Conn, ep: &Endpoint) -> StoreResult<()> {
    let mut others = Where::default();
    others
        .eq("service_id", ep.service_id.to_string())
        .eq("vpc_id", ep.vpc_id.to_string())
        .and("status <> ?", "deleting")
        .and("id <> ?", ep.id.to_string());
    for other in record::fetch_all::<Endpoint>(c, &others).await? {
        if let Some(rt) = other
            .routetables
            .iter()
            .find(|rt| ep.routetables.contains(rt))
        {
            return Err(ApiError::new(
                ErrorCode::RouteTableInUse,
                format!(
                    "The route table {rt} is used by VPC endpoint {} of this service",
                    other.id
                ),
            )
            .into());
        }
    }
    Ok(())
}

async fn next_marker(conn: &mut Conn) -> StoreResult<u32> {
    let v = increment(conn, "marker_id").await?;
    u32::try_from(v).map_err(|_| StoreError::internal("marker_id space exhausted"))
}

impl SqlStore {
    /// Creates an endpoint in one transaction: `check` decides on the target service (and its
    /// permission entries), then the quota, the caller's VPC and subnet, an address (`port_ip`
    /// or the lowest free one), a marker id and the row. Answers the stored endpoint.
    pub async fn create_endpoint(
        &self,
        endpoint: &Endpoint,
        port_ip: Option<Ipv4Addr>,
        quota: u64,
        check: EndpointCheck,
    ) -> StoreResult<Endpoint> {
        let dataplane = self.enforce_claims;
        let share = self.dialect.for_share();
        let update = self.dialect.for_update();
        let ep = endpoint.clone();
        self.write_retryable(move |c| {
            // Cloned for each run: the call may run again (see `write_retryable`).
            let (check, mut ep) = (check.clone(), ep.clone());
            Box::pin(async move {
                let sid = ep.service_id.to_string();
                let mut w = Where::default();
                w.eq("id", sid.clone());
                let Some(svc) = crate::services::fetch_service(c, &w, share).await? else {
                    return Err(ApiError::new(ErrorCode::ServiceRefNotFound, format!("The endpoint service {sid} does not exist")).into());
                };
                let entries = crate::permissions::permission_entries(c, &sid).await?;
                check(&svc, &entries)?;
                let vpc: Vpc = fetch(c, &owned(&ep.project_id, ep.vpc_id), "")
                    .await?
                    .ok_or_else(|| StoreError::from(ApiError::new(ErrorCode::VpcNotFound, format!("The VPC {} does not exist", ep.vpc_id))))?;
                ep.service_type = svc.service_type;
                ep.service_name = svc.full_name.clone();
                let mut claim = None;
                match svc.service_type {
                    ServiceType::Interface => {
                        let subnet_id = ep.subnet_id.ok_or_else(|| StoreError::from(ApiError::new(ErrorCode::SubnetIdEmpty, "subnet_id is empty")))?;
                        let subnet: Subnet = fetch(c, &owned(&ep.project_id, subnet_id), update).await?.ok_or_else(|| {
                            StoreError::from(ApiError::new(ErrorCode::InvalidSubnetId, format!("Invalid subnet_id: subnet {subnet_id} does not exist")))
                        })?;
                        if vpcep_domain::network::overlaps_reserved(&subnet.cidr) {
                            return Err(ApiError::new(
                                ErrorCode::InvalidCidr,
                                format!(
                                    "The subnet {subnet_id} ({}) overlaps {}, which VPC Endpoint reserves",
                                    subnet.cidr,
                                    vpcep_domain::network::RESERVED_CIDR
                                ),
                            )
                            .into());
                        }
                        if subnet.vpc_id != vpc.id {
                            return Err(ApiError::new(ErrorCode::SubnetNotInVpc, format!("The subnet {subnet_id} does not belong to VPC {}", vpc.id)).into());
                        }
                        // With a data plane, an allocated address is one no other VPC holds in
                        // this address space (see `claims`).
                        let space = AddressSpace::of(vpc.netns.as_deref());
                        let vpc_key = vpc.id.to_string();
                        let avoid = if dataplane && port_ip.is_none() {
                            claims::held_by_others(c, &space.key(), subnet.cidr, &vpc_key).await?
                        } else {
                            Vec::new()
                        };
                        let ip = allocate_ip(c, &subnet, port_ip, &avoid, &ep.id.to_string(), "network:vpcep_endpoint").await.map_err(port_ip_error)?;
                        ep.ip = Some(ip);
                        ep.routetables = Vec::new();
                        claim = Some((space, ip, vpc_key));
                    }
                    ServiceType::Gateway => {
                        ep.subnet_id = None;
                        ep.ip = None;
                        ep.enable_dns = false;
                        ep.whitelist = Vec::new();
                        ep.enable_whitelist = false;
                        if ep.routetables.is_empty() {
                            // The VPC's default route table: here it carries the VPC's id.
                            ep.routetables = vec![vpc.id.to_string()];
                        }
                        check_routetables(c, &ep).await?;
                    }
                }
                ep.marker_id = next_marker(c).await?;
                record::insert(c, &ep).await?;
                set_status_at(c, ep.id, ep.created_at).await?;
                if let Some((space, ip, vpc_key)) = claim {
                    let held = claims::claim_endpoint_address(c, &ep.id.to_string(), &space, ip, &vpc_key).await?;
                    if !held && dataplane {
                        return Err(ApiError::new(
                            ErrorCode::PortIpInUse,
                            format!(
                                "The Port IP {ip} is in use: another VPC's endpoint or backend holds it in the data plane's address space ({}); choose another address",
                                space.key()
                            ),
                        )
                        .into());
                    }
                }
                tags::insert_tags(c, ResourceKind::Endpoint.as_str(), &ep.id.to_string(), &ep.project_id, &ep.tags).await?;
                // Late, so that on PostgreSQL the project's counter row stays locked briefly;
                // then the version counter, in the order the reconciler takes them (a deletion
                // pass releases usage, then bumps the version): the other order could deadlock.
                usage::take(c, &ep.project_id, USAGE_ENDPOINT, quota).await?;
                crate::dataplane::publish_endpoint(c, ep.id).await?;
                Ok(ep)
            })
        })
        .await
    }

    /// One endpoint of a project.
    pub async fn get_endpoint(&self, project_id: &str, id: Uuid) -> StoreResult<Option<Endpoint>> {
        let mut c = self.reader().await?;
        fetch_endpoint(&mut c, &owned(project_id, id), "").await
    }

    /// A page of a project's endpoints and the total.
    pub async fn list_endpoints(
        &self,
        project_id: &str,
        filter: &EndpointFilter,
        page: &Page,
    ) -> StoreResult<(Vec<Endpoint>, u64)> {
        self.list_where(endpoint_where(project_id, filter), page)
            .await
    }

    async fn list_where(&self, w: Where, page: &Page) -> StoreResult<(Vec<Endpoint>, u64)> {
        let mut c = self.reader().await?;
        let (mut eps, total) = record::page_sorted::<Endpoint>(&mut c, &w, page).await?;
        attach(&mut c, &mut eps).await?;
        Ok((eps, total))
    }

    /// Changes an endpoint of a project in one transaction (404 EndPoint.2006 when absent).
    pub async fn modify_endpoint(
        &self,
        project_id: &str,
        id: Uuid,
        now: i64,
        mutate: EndpointMutation,
    ) -> StoreResult<Endpoint> {
        let lock = self.dialect.for_update();
        let project_id = project_id.to_string();
        self.write_retryable(move |c| {
            // Cloned for each run: the call may run again (see `write_retryable`).
            let (mutate, project_id) = (mutate.clone(), project_id.clone());
            Box::pin(async move {
                let old = fetch_endpoint(c, &owned(&project_id, id), lock)
                    .await?
                    .ok_or_else(|| endpoint_missing(id))?;
                let mut new = old.clone();
                mutate(&mut new)?;
                if new.routetables != old.routetables {
                    check_routetables(c, &new).await?;
                }
                if new != old {
                    new.updated_at = now;
                    update_endpoint(c, &new, new.status != old.status).await?;
                    if crate::dataplane::endpoint_change_moves_dataplane(&old, &new) {
                        crate::dataplane::publish_endpoint(c, new.id).await?;
                    }
                }
                Ok(new)
            })
        })
        .await
    }

    /// The owner's service of `project_id`, or 404.
    async fn owned_service(
        c: &mut Conn,
        project_id: &str,
        service_id: Uuid,
        lock: &str,
    ) -> StoreResult<EndpointService> {
        crate::services::fetch_service(c, &owned(project_id, service_id), lock)
            .await?
            .ok_or_else(|| ApiError::not_found("endpoint service", &service_id.to_string()).into())
    }

    /// A page of the connections (endpoints) of a service the project owns (404 otherwise).
    pub async fn list_connections(
        &self,
        project_id: &str,
        service_id: Uuid,
        f: &ConnectionFilter,
        page: &Page,
    ) -> StoreResult<(Vec<Endpoint>, u64)> {
        {
            let mut c = self.reader().await?;
            Self::owned_service(&mut c, project_id, service_id, "").await?;
        }
        let mut w = Where::default();
        w.eq("service_id", service_id.to_string());
        if let Some(id) = &f.id {
            w.eq("id", id.clone());
        }
        if let Some(m) = f.marker_id {
            w.and("marker_id = CAST(? AS BIGINT)", m.to_string());
        }
        if let Some(s) = f.status {
            w.eq("status", s.as_str());
        }
        self.list_where(w, page).await
    }

    /// Applies `mutate` to each named connection of a service the project owns, in one
    /// transaction; each endpoint gets its own result (unknown, of another service, refused).
    pub async fn modify_connections(
        &self,
        project_id: &str,
        service_id: Uuid,
        ids: Vec<Uuid>,
        now: i64,
        mutate: ConnectionMutation,
    ) -> StoreResult<Vec<crate::ConnectionOutcome>> {
        let lock = self.dialect.for_update();
        let share = self.dialect.for_share();
        let project_id = project_id.to_string();
        self.write_retryable(move |c| {
            // Cloned for each run: the call may run again (see `write_retryable`).
            let (ids, mutate, project_id) = (ids.clone(), mutate.clone(), project_id.clone());
            Box::pin(async move {
                // Share-locked: a concurrent delete of the service (which row-locks it and counts
                // its connections) either sees an acceptance or makes it find the service deleting.
                let svc = Self::owned_service(c, &project_id, service_id, share).await?;
                let mut out = Vec::with_capacity(ids.len());
                // The named endpoints' rows are locked up front in id order, so two calls naming
                // the same endpoints in other orders wait for each other instead of deadlocking;
                // and they are published together after the loop: holding the version counter
                // while waiting for the next endpoint's row deadlocked with the reconciler.
                if !lock.is_empty() {
                    let mut sorted: Vec<String> = ids.iter().map(Uuid::to_string).collect();
                    sorted.sort();
                    let mut w = Where::default();
                    w.is_in("id", &sorted);
                    let sql = format!(
                        "SELECT id FROM endpoints WHERE {} ORDER BY id{lock}",
                        w.sql()
                    );
                    w.bind(query(&sql)).fetch_all(&mut *c).await?;
                }
                let mut changed = Vec::new();
                for id in ids {
                    let mut w = Where::default();
                    w.eq("id", id.to_string());
                    let Some(old) = fetch_endpoint(c, &w, lock).await? else {
                        let e = ApiError::new(
                            ErrorCode::EndpointNotFound,
                            format!("The requested endpoint does not exist: {id}"),
                        );
                        out.push(ConnectionOutcome::refused(id.to_string(), e));
                        continue;
                    };
                    if old.service_id != service_id {
                        let e = ApiError::new(
                            ErrorCode::EndpointNotOfService,
                            "The endpoint does not belong to the endpoint service.",
                        );
                        out.push(ConnectionOutcome::refused(id.to_string(), e));
                        continue;
                    }
                    let mut new = old.clone();
                    let accepts = |e: &Endpoint| {
                        matches!(
                            e.status,
                            EndpointStatus::Accepted | EndpointStatus::Creating
                        ) && e.approved
                    };
                    let error = match mutate(&mut new) {
                        Err(e) => {
                            new = old;
                            Some(e)
                        }
                        // A service on its way out accepts no connection (rejected endpoints
                        // do not hold it, so one could be accepted during its delete).
                        Ok(())
                            if svc.status == ServiceStatus::Deleting
                                && accepts(&new)
                                && !accepts(&old) =>
                        {
                            new = old;
                            Some(ApiError::new(
                                ErrorCode::ServiceStateConflict,
                                "The endpoint service is being deleted; it accepts no connection",
                            ))
                        }
                        Ok(()) => {
                            if new != old {
                                new.updated_at = now;
                                update_endpoint(c, &new, new.status != old.status).await?;
                                changed.push(new.id);
                            }
                            None
                        }
                    };
                    out.push(ConnectionOutcome {
                        id: id.to_string(),
                        endpoint: Some(new),
                        error,
                    });
                }
                crate::dataplane::publish_endpoints(c, &changed).await?;
                Ok(out)
            })
        })
        .await
    }

    /// Endpoint half of the reconciler: due `creating` endpoints settle, and with a data plane
    /// (`gate`) endpoints follow what live agents report. Those that wait for their owner
    /// (approval on, not yet accepted) become `pendingAcceptance`. Without a data plane the others
    /// become `accepted` at once. With one, an endpoint the owner wants is
    /// - `accepted` while at least one live agent realized its current desired state (a note of
    ///   that agent, e.g. about TOA, in `error`; other agents' failures are theirs, not shown),
    /// - `failed` when live agents report they cannot realize it (their reason in `error`), or
    ///   when no live agent serves it at all (past the gate's grace),
    ///
    /// and moves between the two as reports change. The `ip` stays shown once it was approved.
    pub(crate) async fn complete_endpoint_creations(
        c: &mut Conn,
        lock: &str,
        cutoff: i64,
        now: i64,
        limit: u32,
        gate: Option<&DataplaneGate>,
    ) -> StoreResult<u64> {
        let needs_owner = "((SELECT approval_enabled FROM endpoint_services s WHERE s.id = endpoints.service_id) = 1 AND approved = 0)";
        let due = due_creations(limit, lock, "$2");
        let Some(gate) = gate else {
            let sql = format!(
                "UPDATE endpoints SET status = CASE WHEN {needs_owner} THEN 'pendingAcceptance' ELSE 'accepted' END, \
                 ever_accepted = CASE WHEN {needs_owner} THEN ever_accepted ELSE 1 END, updated_at = $1, status_at = $1 WHERE {due}"
            );
            return Ok(query(&sql)
                .bind(now)
                .bind(cutoff)
                .execute(&mut *c)
                .await?
                .rows_affected());
        };
        let pending = format!(
            "UPDATE endpoints SET status = 'pendingAcceptance', updated_at = $1, status_at = $1 WHERE {due} AND {needs_owner}"
        );
        let mut moved = query(&pending)
            .bind(now)
            .bind(cutoff)
            .execute(&mut *c)
            .await?
            .rows_affected();
        // What live agents (reported at or after $3) say of an endpoint's current desired state
        // (reports for an older version do not count).
        let results = |ok: i64| {
            format!(
                "FROM endpoint_realizations r JOIN agents a ON a.agent_id = r.agent_id \
                 WHERE r.endpoint_id = endpoints.id AND r.ok = {ok} AND a.reported_at >= $3 \
                 AND r.version >= endpoints.desired_version"
            )
        };
        let realized = format!("EXISTS (SELECT 1 {})", results(1));
        let warning = format!("(SELECT MAX(r.error) {})", results(1));
        let failure = format!("(SELECT MAX(r.error) {})", results(0));
        // Endpoints the owner wants: due `creating` ones that need no owner, and the settled ones.
        let wanted =
            |statuses: &str| format!("(({due} AND NOT {needs_owner}) OR status IN ({statuses}))");
        let accepted = format!(
            "UPDATE endpoints SET status = 'accepted', ever_accepted = 1, updated_at = $1, status_at = $1, \
             error_code = CASE WHEN {warning} IS NULL THEN NULL ELSE '{DATAPLANE_WARNING}' END, error_message = {warning} \
             WHERE {} AND {realized}",
            wanted("'failed'")
        );
        moved += query(&accepted)
            .bind(now)
            .bind(cutoff)
            .bind(gate.alive_since)
            .execute(&mut *c)
            .await?
            .rows_affected();
        let failed = format!(
            "UPDATE endpoints SET status = 'failed', updated_at = $1, status_at = $1, error_code = '{DATAPLANE_FAILURE}', \
             error_message = {failure} WHERE {} AND NOT {realized} AND {failure} IS NOT NULL",
            wanted("'accepted'")
        );
        moved += query(&failed)
            .bind(now)
            .bind(cutoff)
            .bind(gate.alive_since)
            .execute(&mut *c)
            .await?
            .rows_affected();
        if let Some(before) = gate.unserved_before {
            let due = due_creations(limit, lock, "$1");
            moved += Self::fail_unserved_endpoints(
                c,
                now,
                cutoff,
                before,
                gate.alive_since,
                &due,
                needs_owner,
            )
            .await?;
        }
        // Settled endpoints show what live agents report now (a note, a new reason); this changes
        // no status, bumps no version and counts no move.
        let refresh = format!(
            "UPDATE endpoints SET error_code = CASE WHEN {warning} IS NULL THEN NULL ELSE '{DATAPLANE_WARNING}' END, \
             error_message = {warning} WHERE status = 'accepted' AND COALESCE(error_message, '') <> COALESCE({warning}, '')"
        );
        query(&refresh.replace("$3", "$1"))
            .bind(gate.alive_since)
            .execute(&mut *c)
            .await?;
        let refresh = format!(
            "UPDATE endpoints SET error_code = '{DATAPLANE_FAILURE}', error_message = {failure} \
             WHERE status = 'failed' AND {failure} IS NOT NULL AND COALESCE(error_message, '') <> {failure}"
        );
        query(&refresh.replace("$3", "$1"))
            .bind(gate.alive_since)
            .execute(&mut *c)
            .await?;
        Ok(moved)
    }

    /// Endpoints the owner wants that no live agent serves at all (none reported them since
    /// `alive_since`), changed before `before`, become `failed` with the time an agent last
    /// served them. `due` selects the due creations with the cutoff as `$1`.
    async fn fail_unserved_endpoints(
        c: &mut Conn,
        now: i64,
        cutoff: i64,
        before: i64,
        alive_since: i64,
        due: &str,
        needs_owner: &str,
    ) -> StoreResult<u64> {
        let sql = format!(
            "SELECT id, (SELECT MAX(r.reported_at) FROM endpoint_realizations r WHERE r.endpoint_id = endpoints.id AND r.ok = 1) AS last \
             FROM endpoints WHERE (({due} AND NOT {needs_owner}) OR status = 'accepted') AND status_at <= $2 \
             AND NOT EXISTS (SELECT 1 FROM endpoint_realizations r JOIN agents a ON a.agent_id = r.agent_id \
                             WHERE r.endpoint_id = endpoints.id AND a.reported_at >= $3)"
        );
        let rows = query(&sql)
            .bind(cutoff)
            .bind(before)
            .bind(alive_since)
            .fetch_all(&mut *c)
            .await?;
        for r in &rows {
            let since = match r.try_get::<Option<i64>, _>("last")? {
                Some(t) => format!("since {}", vpcep_domain::time::format_millis(t)),
                None => "yet".to_string(),
            };
            query(
                "UPDATE endpoints SET status = 'failed', updated_at = $2, status_at = $2, error_code = $3, error_message = $4 WHERE id = $1",
            )
            .bind(r.try_get::<String, _>("id")?)
            .bind(now)
            .bind(DATAPLANE_FAILURE)
            .bind(format!("no live data-plane agent serves this endpoint {since}"))
            .execute(&mut *c)
            .await?;
        }
        Ok(rows.len() as u64)
    }

    /// Endpoint half of the reconciler: due `deleting` endpoints go, with their address, tags
    /// and usage.
    pub(crate) async fn remove_deleted_endpoints(
        c: &mut Conn,
        lock: &str,
        cutoff: i64,
        limit: u32,
    ) -> StoreResult<u64> {
        let sql = format!(
            "DELETE FROM endpoints WHERE id IN (SELECT id FROM endpoints WHERE status = 'deleting' AND status_at <= $1 \
             ORDER BY status_at LIMIT {limit}{lock}) RETURNING id, project_id, vpc_id, ip, addr_space, addr_held"
        );
        let gone = query(&sql).bind(cutoff).fetch_all(&mut *c).await?;
        // Released in project order, as by every deletion pass: two passes on two nodes never
        // wait for each other's counters.
        let mut per_project: BTreeMap<String, i64> = BTreeMap::new();
        for row in &gone {
            let id: String = row.try_get("id")?;
            release_ips(c, &id).await?;
            claims::release_held(c, row, "addr_held", "addr_space", "ip").await?;
            tags::delete_tags(c, ResourceKind::Endpoint.as_str(), &id).await?;
            *per_project.entry(row.try_get("project_id")?).or_default() += 1;
        }
        for (project, n) in per_project {
            usage::release(c, &project, USAGE_ENDPOINT, n).await?;
        }
        Ok(gone.len() as u64)
    }
}

/// The condition "a `creating` endpoint due by the cutoff bound as `param`", `limit` at a time.
fn due_creations(limit: u32, lock: &str, param: &str) -> String {
    format!(
        "id IN (SELECT id FROM endpoints WHERE status = 'creating' AND status_at <= {param} ORDER BY status_at LIMIT {limit}{lock})"
    )
}

/// The `WHERE` of the consumer's endpoint list.
pub(crate) fn endpoint_where(project_id: &str, f: &EndpointFilter) -> Where {
    let mut w = Where::default();
    w.eq("project_id", project_id);
    if let Some(id) = &f.id {
        w.eq("id", id.clone());
    }
    if let Some(v) = &f.vpc_id {
        w.eq("vpc_id", v.clone());
    }
    if let Some(name) = &f.service_name_contains {
        w.and(
            "service_id IN (SELECT id FROM endpoint_services WHERE lower(full_name) LIKE ? ESCAPE '\\')",
            format!("%{}%", crate::query::like_escape(&name.to_lowercase())),
        );
    }
    w
}
