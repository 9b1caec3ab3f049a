//! Network persistence: VPCs, subnets, ports and address allocations.
//!
//! Concurrency: creating a subnet locks its VPC row, and allocating an address locks its subnet
//! row (`FOR UPDATE` on PostgreSQL; SQLite has one writer), so overlap checks and allocation
//! never race; the `(subnet_id, ip)` key backs allocation up. Deleting a port locks the port
//! before looking for services that use it, and creating a service takes a share lock on its
//! port, so a port cannot disappear under a service.

use crate::conn::{query, query_scalar, Conn, Row};
use crate::query::Where;
use crate::record::{
    self, fetch, fetch_all, int, json, opt_text, parsed, text, to_json, Record, Value,
};
use crate::sql::SqlStore;
use crate::usage;
use crate::{PortFilter, PortMutation, StoreError, StoreResult, SubnetMutation, VpcMutation};
use crate::{USAGE_PORT, USAGE_SUBNET, USAGE_VPC};
use std::net::Ipv4Addr;
use std::sync::Arc;
use uuid::Uuid;
use vpcep_domain::network::port::{NewPort, Port};
use vpcep_domain::network::subnet::{
    assignable_count, check_subnet_fits, first_free, is_assignable, PrivateIp, Subnet,
};
use vpcep_domain::network::vpc::Vpc;
use vpcep_domain::{ApiError, ErrorCode};

impl Record for Vpc {
    const TABLE: &'static str = "vpcs";
    const COLUMNS: &'static [&'static str] = &[
        "id",
        "project_id",
        "name",
        "description",
        "cidr",
        "routes",
        "enterprise_project_id",
        "usage_metrics",
        "vni",
        "netns",
        "created_at",
        "updated_at",
    ];

    fn from_row(row: &Row) -> StoreResult<Self> {
        Ok(Vpc {
            id: parsed(row, "id")?,
            project_id: text(row, "project_id")?,
            name: text(row, "name")?,
            description: text(row, "description")?,
            cidr: parsed(row, "cidr")?,
            routes: json(row, "routes")?,
            enterprise_project_id: text(row, "enterprise_project_id")?,
            enable_network_address_usage_metrics: int(row, "usage_metrics")? != 0,
            vni: u32::try_from(int(row, "vni")?).unwrap_or(0),
            netns: opt_text(row, "netns")?,
            created_at: int(row, "created_at")?,
            updated_at: int(row, "updated_at")?,
        })
    }

    fn touch(&mut self, now: i64) {
        self.updated_at = now;
    }

    fn unique_violation(&self) -> Option<ApiError> {
        Some(ApiError::new(
            ErrorCode::VpcNameExists,
            format!("A VPC named {:?} already exists in this project", self.name),
        ))
    }

    fn values(&self) -> Vec<Value> {
        vec![
            self.id.into(),
            self.project_id.as_str().into(),
            self.name.as_str().into(),
            self.description.as_str().into(),
            self.cidr.to_string().into(),
            to_json(&self.routes).into(),
            self.enterprise_project_id.as_str().into(),
            self.enable_network_address_usage_metrics.into(),
            i64::from(self.vni).into(),
            self.netns.clone().into(),
            self.created_at.into(),
            self.updated_at.into(),
        ]
    }
}

impl Record for Subnet {
    const TABLE: &'static str = "subnets";
    const COLUMNS: &'static [&'static str] = &[
        "id",
        "neutron_subnet_id",
        "project_id",
        "vpc_id",
        "name",
        "description",
        "cidr",
        "gateway_ip",
        "dhcp_enable",
        "primary_dns",
        "secondary_dns",
        "dns_list",
        "availability_zone",
        "extra_dhcp_opts",
        "created_at",
        "updated_at",
    ];

    fn from_row(row: &Row) -> StoreResult<Self> {
        Ok(Subnet {
            id: parsed(row, "id")?,
            neutron_subnet_id: parsed(row, "neutron_subnet_id")?,
            project_id: text(row, "project_id")?,
            vpc_id: parsed(row, "vpc_id")?,
            name: text(row, "name")?,
            description: text(row, "description")?,
            cidr: parsed(row, "cidr")?,
            gateway_ip: parsed(row, "gateway_ip")?,
            dhcp_enable: int(row, "dhcp_enable")? != 0,
            primary_dns: opt_text(row, "primary_dns")?,
            secondary_dns: opt_text(row, "secondary_dns")?,
            dns_list: json(row, "dns_list")?,
            availability_zone: text(row, "availability_zone")?,
            extra_dhcp_opts: json(row, "extra_dhcp_opts")?,
            created_at: int(row, "created_at")?,
            updated_at: int(row, "updated_at")?,
            available_ip_address_count: 0,
        })
    }

    fn touch(&mut self, now: i64) {
        self.updated_at = now;
    }

    fn values(&self) -> Vec<Value> {
        vec![
            self.id.into(),
            self.neutron_subnet_id.into(),
            self.project_id.as_str().into(),
            self.vpc_id.into(),
            self.name.as_str().into(),
            self.description.as_str().into(),
            self.cidr.to_string().into(),
            self.gateway_ip.to_string().into(),
            self.dhcp_enable.into(),
            self.primary_dns.clone().into(),
            self.secondary_dns.clone().into(),
            to_json(&self.dns_list).into(),
            self.availability_zone.as_str().into(),
            to_json(&self.extra_dhcp_opts).into(),
            self.created_at.into(),
            self.updated_at.into(),
        ]
    }
}

impl Record for Port {
    const TABLE: &'static str = "ports";
    const COLUMNS: &'static [&'static str] = &[
        "id",
        "project_id",
        "subnet_id",
        "neutron_subnet_id",
        "vpc_id",
        "name",
        "ip_address",
        "mac_address",
        "device_owner",
        "device_id",
        "admin_state_up",
        "security_groups",
        "allowed_address_pairs",
        "extra_dhcp_opts",
        "created_at",
        "updated_at",
    ];

    fn from_row(row: &Row) -> StoreResult<Self> {
        Ok(Port {
            id: parsed(row, "id")?,
            project_id: text(row, "project_id")?,
            subnet_id: parsed(row, "subnet_id")?,
            neutron_subnet_id: parsed(row, "neutron_subnet_id")?,
            vpc_id: parsed(row, "vpc_id")?,
            name: text(row, "name")?,
            ip_address: parsed(row, "ip_address")?,
            mac_address: text(row, "mac_address")?,
            device_owner: text(row, "device_owner")?,
            device_id: text(row, "device_id")?,
            admin_state_up: int(row, "admin_state_up")? != 0,
            security_groups: json(row, "security_groups")?,
            allowed_address_pairs: json(row, "allowed_address_pairs")?,
            extra_dhcp_opts: json(row, "extra_dhcp_opts")?,
            created_at: int(row, "created_at")?,
            updated_at: int(row, "updated_at")?,
        })
    }

    fn touch(&mut self, now: i64) {
        self.updated_at = now;
    }

    fn values(&self) -> Vec<Value> {
        vec![
            self.id.into(),
            self.project_id.as_str().into(),
            self.subnet_id.into(),
            self.neutron_subnet_id.into(),
            self.vpc_id.into(),
            self.name.as_str().into(),
            self.ip_address.to_string().into(),
            self.mac_address.as_str().into(),
            self.device_owner.as_str().into(),
            self.device_id.as_str().into(),
            self.admin_state_up.into(),
            to_json(&self.security_groups).into(),
            to_json(&self.allowed_address_pairs).into(),
            to_json(&self.extra_dhcp_opts).into(),
            self.created_at.into(),
            self.updated_at.into(),
        ]
    }
}

/// A change to a network record, given the subnets of a VPC when the record names one.
pub(crate) type NetworkMutation<R> =
    Arc<dyn Fn(&mut R, &[Subnet]) -> vpcep_domain::ApiResult<()> + Send + Sync>;

/// One address allocated in a subnet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Allocation {
    pub(crate) id: Uuid,
    pub(crate) subnet_id: Uuid,
    pub(crate) ip: Ipv4Addr,
    pub(crate) project_id: String,
    pub(crate) owner_id: String,
    pub(crate) device_owner: String,
}

impl Record for Allocation {
    const TABLE: &'static str = "ip_allocations";
    const COLUMNS: &'static [&'static str] = &[
        "id",
        "subnet_id",
        "ip",
        "project_id",
        "owner_id",
        "device_owner",
    ];

    fn from_row(row: &Row) -> StoreResult<Self> {
        Ok(Allocation {
            id: parsed(row, "id")?,
            subnet_id: parsed(row, "subnet_id")?,
            ip: Ipv4Addr::from(u32::try_from(int(row, "ip")?).unwrap_or(0)),
            project_id: text(row, "project_id")?,
            owner_id: text(row, "owner_id")?,
            device_owner: text(row, "device_owner")?,
        })
    }

    fn touch(&mut self, _now: i64) {}

    fn values(&self) -> Vec<Value> {
        vec![
            self.id.into(),
            self.subnet_id.into(),
            i64::from(u32::from(self.ip)).into(),
            self.project_id.as_str().into(),
            self.owner_id.as_str().into(),
            self.device_owner.as_str().into(),
        ]
    }
}

impl From<Allocation> for PrivateIp {
    fn from(a: Allocation) -> Self {
        PrivateIp {
            id: a.id,
            subnet_id: a.subnet_id,
            project_id: a.project_id,
            ip_address: a.ip,
            device_owner: a.device_owner,
        }
    }
}

/// `project_id = p AND id = id`.
pub(crate) fn owned(project_id: &str, id: Uuid) -> Where {
    let mut w = Where::default();
    w.eq("project_id", project_id).eq("id", id.to_string());
    w
}

fn by(col: &str, v: impl Into<String>) -> Where {
    let mut w = Where::default();
    w.eq(col, v);
    w
}

pub(crate) fn vpc_missing(id: Uuid) -> StoreError {
    ApiError::new(ErrorCode::VpcMissing, format!("VPC {id} does not exist")).into()
}

pub(crate) fn subnet_missing(id: impl std::fmt::Display) -> StoreError {
    ApiError::new(
        ErrorCode::SubnetMissing,
        format!("Subnet {id} does not exist"),
    )
    .into()
}

pub(crate) fn port_missing(id: Uuid) -> StoreError {
    ApiError::new(ErrorCode::PortMissing, format!("Port {id} does not exist")).into()
}

/// How many addresses are allocated in each of the given subnets.
async fn allocated_counts(conn: &mut Conn, subnets: &mut [Subnet]) -> StoreResult<()> {
    for s in subnets.iter_mut() {
        let used: i64 = query_scalar("SELECT COUNT(*) FROM ip_allocations WHERE subnet_id = $1")
            .bind(s.id.to_string())
            .fetch_one(&mut *conn)
            .await?;
        s.available_ip_address_count = (assignable_count(s.cidr) - used).max(0);
    }
    Ok(())
}

/// Takes `want` (or the lowest free address not in `avoid`) in `subnet` for `owner_id`. The
/// caller holds the subnet's row lock.
pub(crate) async fn allocate_ip(
    conn: &mut Conn,
    subnet: &Subnet,
    want: Option<Ipv4Addr>,
    avoid: &[Ipv4Addr],
    owner_id: &str,
    device_owner: &str,
) -> StoreResult<Ipv4Addr> {
    let mut taken: Vec<Ipv4Addr> =
        query_scalar::<i64>("SELECT ip FROM ip_allocations WHERE subnet_id = $1 ORDER BY ip")
            .bind(subnet.id.to_string())
            .fetch_all(&mut *conn)
            .await?
            .into_iter()
            .map(|n| Ipv4Addr::from(u32::try_from(n).unwrap_or(0)))
            .collect();
    if want.is_none() && !avoid.is_empty() {
        taken.extend_from_slice(avoid);
        taken.sort();
    }
    let ip = match want {
        Some(ip) if !is_assignable(subnet.cidr, subnet.gateway_ip, ip) => {
            return Err(ApiError::new(
                ErrorCode::PortParam,
                format!(
                    "The IP address {ip} is not assignable in subnet {} ({}, gateway {}): it must be inside it and not its network, gateway or broadcast address",
                    subnet.id, subnet.cidr, subnet.gateway_ip
                ),
            )
            .into())
        }
        Some(ip) if taken.contains(&ip) => {
            return Err(ApiError::new(ErrorCode::IpInUse, format!("The IP address {ip} is already in use in subnet {}", subnet.id)).into())
        }
        Some(ip) => ip,
        None => first_free(subnet.cidr, subnet.gateway_ip, &taken).ok_or_else(|| {
            StoreError::from(ApiError::new(ErrorCode::IpInUse, format!("Subnet {} ({}) has no free address left", subnet.id, subnet.cidr)))
        })?,
    };
    let alloc = Allocation {
        id: vpcep_domain::ids::new_id(),
        subnet_id: subnet.id,
        ip,
        project_id: subnet.project_id.clone(),
        owner_id: owner_id.into(),
        device_owner: device_owner.into(),
    };
    match record::insert(conn, &alloc).await {
        Ok(()) => Ok(ip),
        Err(db) if db.is_unique_violation() => Err(ApiError::new(
            ErrorCode::IpInUse,
            format!(
                "The IP address {ip} is already in use in subnet {}",
                subnet.id
            ),
        )
        .into()),
        Err(e) => Err(e.into()),
    }
}

/// Gives back the addresses held by `owner_id`.
pub(crate) async fn release_ips(conn: &mut Conn, owner_id: &str) -> StoreResult<()> {
    query("DELETE FROM ip_allocations WHERE owner_id = $1")
        .bind(owner_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// What the endpoint-service backend check needs, in one query: the port of a project
/// (share-locked on PostgreSQL) and the CIDR and routes of the named VPC of that project. The
/// VPC's subnets are not read: they always lie inside its CIDR (checked when a subnet is created
/// and when the VPC's CIDR changes), so the VPC's CIDR speaks for them.
pub(crate) async fn backend_of(
    conn: &mut Conn,
    share_lock: bool,
    project_id: &str,
    port_id: Uuid,
    vpc_id: Uuid,
) -> StoreResult<Option<vpcep_domain::network::port::BackendFacts>> {
    let lock = if share_lock { " FOR SHARE OF p" } else { "" };
    let sql = format!(
        "SELECT p.vpc_id, p.device_owner, p.ip_address, v.cidr, v.routes, v.netns FROM ports p \
         LEFT JOIN vpcs v ON v.id = $3 AND v.project_id = $2 WHERE p.id = $1 AND p.project_id = $2{lock}"
    );
    let Some(row) = query(&sql)
        .bind(port_id.to_string())
        .bind(project_id)
        .bind(vpc_id.to_string())
        .fetch_optional(&mut *conn)
        .await?
    else {
        return Ok(None);
    };
    let vpc = match (opt_text(&row, "cidr")?, opt_text(&row, "routes")?) {
        (Some(cidr), Some(routes)) => Some((
            cidr.parse()
                .map_err(|_| StoreError::internal(format!("stored cidr {cidr:?}")))?,
            serde_json::from_str(&routes).map_err(|_| StoreError::internal("stored routes"))?,
        )),
        _ => None,
    };
    Ok(Some(vpcep_domain::network::port::BackendFacts {
        port_vpc_id: parsed(&row, "vpc_id")?,
        device_owner: text(&row, "device_owner")?,
        vpc,
        port_ip: parsed(&row, "ip_address")?,
        netns: opt_text(&row, "netns")?,
    }))
}

impl SqlStore {
    /// Inserts a VPC; a name already used in the project is VPC.0115, a project that already
    /// holds `quota` VPCs 409 VPC.0114 (counted in [`USAGE_VPC`]).
    pub async fn create_vpc(&self, vpc: &Vpc, quota: u64) -> StoreResult<()> {
        let vpc = vpc.clone();
        self.write_retryable(move |c| {
            // Cloned for each run: the call may run again (see `write_retryable`).
            let vpc = vpc.clone();
            Box::pin(async move {
                match record::insert(c, &vpc).await {
                    Ok(()) => {}
                    Err(db) if db.is_unique_violation() => {
                        return Err(ApiError::new(
                            ErrorCode::VpcNameExists,
                            format!("A VPC named {:?} already exists in this project", vpc.name),
                        )
                        .into())
                    }
                    Err(e) => return Err(e.into()),
                }
                usage::take(c, &vpc.project_id, USAGE_VPC, quota).await
            })
        })
        .await
    }

    /// One VPC of a project.
    pub async fn get_vpc(&self, project_id: &str, id: Uuid) -> StoreResult<Option<Vpc>> {
        self.get_owned(project_id, id).await
    }

    /// VPCs of a project after `marker` (insertion order).
    pub async fn list_vpcs(
        &self,
        project_id: &str,
        id: Option<&str>,
        limit: u32,
        marker: Option<&str>,
    ) -> StoreResult<Vec<Vpc>> {
        self.page(
            vpc_where(project_id, id),
            limit,
            marker,
            ErrorCode::VpcParam,
        )
        .await
    }

    /// Changes a VPC in one transaction (404 VPC.0003 when absent).
    pub async fn modify_vpc(
        &self,
        project_id: &str,
        id: Uuid,
        now: i64,
        mutate: VpcMutation,
    ) -> StoreResult<Vpc> {
        self.modify_owned(
            project_id,
            id,
            now,
            vpc_missing,
            |v: &Vpc| Some(v.id),
            mutate,
        )
        .await
    }

    /// Changes a subnet in one transaction (404 VPC.0202 when absent).
    pub async fn modify_subnet(
        &self,
        project_id: &str,
        id: Uuid,
        now: i64,
        mutate: SubnetMutation,
    ) -> StoreResult<Subnet> {
        let missing = |id: Uuid| subnet_missing(id);
        self.modify_owned(
            project_id,
            id,
            now,
            missing,
            |_: &Subnet| None,
            Arc::new(move |s, _| mutate(s)),
        )
        .await
    }

    /// One port of a project.
    pub async fn get_port(&self, project_id: &str, id: Uuid) -> StoreResult<Option<Port>> {
        self.get_owned(project_id, id).await
    }

    /// Ports of a project after `marker`.
    pub async fn list_ports(
        &self,
        project_id: &str,
        filter: &PortFilter,
        limit: u32,
        marker: Option<&str>,
    ) -> StoreResult<Vec<Port>> {
        self.page(
            port_where(project_id, filter),
            limit,
            marker,
            ErrorCode::PortParam,
        )
        .await
    }

    /// Changes a port in one transaction (404 VPC.0702 when absent).
    pub async fn modify_port(
        &self,
        project_id: &str,
        id: Uuid,
        now: i64,
        mutate: PortMutation,
    ) -> StoreResult<Port> {
        self.modify_owned(
            project_id,
            id,
            now,
            port_missing,
            |_: &Port| None,
            Arc::new(move |p, _| mutate(p)),
        )
        .await
    }

    async fn get_owned<R: Record>(&self, project_id: &str, id: Uuid) -> StoreResult<Option<R>> {
        let mut c = self.reader().await?;
        fetch(&mut c, &owned(project_id, id), "").await
    }

    /// One subnet of a project, with its free-address count.
    pub async fn get_subnet(&self, project_id: &str, id: Uuid) -> StoreResult<Option<Subnet>> {
        let mut c = self.reader().await?;
        let Some(s) = fetch::<Subnet>(&mut c, &owned(project_id, id), "").await? else {
            return Ok(None);
        };
        let mut one = [s];
        allocated_counts(&mut c, &mut one).await?;
        let [s] = one;
        Ok(Some(s))
    }

    async fn page<R: Record>(
        &self,
        w: Where,
        limit: u32,
        marker: Option<&str>,
        bad_marker: ErrorCode,
    ) -> StoreResult<Vec<R>> {
        let mut c = self.reader().await?;
        record::page_after(&mut c, w, limit, marker, |m| {
            ApiError::new(bad_marker, format!("Invalid marker: {m} is not a known id")).into()
        })
        .await
    }

    /// Subnets of a project (optionally of one VPC) after `marker`.
    pub async fn list_subnets(
        &self,
        project_id: &str,
        vpc_id: Option<&str>,
        limit: u32,
        marker: Option<&str>,
    ) -> StoreResult<Vec<Subnet>> {
        let w = subnet_where(project_id, vpc_id);
        let mut subnets: Vec<Subnet> = self.page(w, limit, marker, ErrorCode::SubnetParam).await?;
        let mut c = self.reader().await?;
        allocated_counts(&mut c, &mut subnets).await?;
        Ok(subnets)
    }

    /// Loads a record of a project (row-locked), lets `mutate` change it (with the subnets of the
    /// VPC `context_vpc` names, for checks that need them) and writes it back if it changed.
    async fn modify_owned<R: Record + Clone + PartialEq>(
        &self,
        project_id: &str,
        id: Uuid,
        now: i64,
        missing: fn(Uuid) -> StoreError,
        context_vpc: fn(&R) -> Option<Uuid>,
        mutate: NetworkMutation<R>,
    ) -> StoreResult<R> {
        let lock = self.dialect.for_update();
        let project_id = project_id.to_string();
        self.write_retryable(move |c| {
            // Cloned for each run: the call may run again (see `write_retryable`).
            let (mutate, project_id) = (mutate.clone(), project_id.clone());
            Box::pin(async move {
                let old: R = fetch(c, &owned(&project_id, id), lock)
                    .await?
                    .ok_or_else(|| missing(id))?;
                let subnets: Vec<Subnet> = match context_vpc(&old) {
                    Some(vpc) => fetch_all(c, &by("vpc_id", vpc.to_string())).await?,
                    None => Vec::new(),
                };
                let mut new = old.clone();
                mutate(&mut new, &subnets)?;
                if new != old {
                    new.touch(now);
                    record::update(c, &new).await?;
                }
                Ok(new)
            })
        })
        .await
    }

    /// Deletes a VPC without subnets (409 VPC.0109 otherwise), giving back its quota.
    pub async fn delete_vpc(&self, project_id: &str, id: Uuid) -> StoreResult<()> {
        let lock = self.dialect.for_update();
        let project_id = project_id.to_string();
        self.write_retryable(move |c| {
            // Cloned for each run: the call may run again (see `write_retryable`).
            let project_id = project_id.clone();
            Box::pin(async move {
                let _: Vpc = fetch(c, &owned(&project_id, id), lock)
                    .await?
                    .ok_or_else(|| vpc_missing(id))?;
                let subnets: i64 = query_scalar("SELECT COUNT(*) FROM subnets WHERE vpc_id = $1")
                    .bind(id.to_string())
                    .fetch_one(&mut *c)
                    .await?;
                if subnets > 0 {
                    return Err(ApiError::new(
                        ErrorCode::VpcInUse,
                        format!("VPC {id} still has {subnets} subnet(s); delete them first"),
                    )
                    .into());
                }
                let endpoints: i64 =
                    query_scalar("SELECT COUNT(*) FROM endpoints WHERE vpc_id = $1")
                        .bind(id.to_string())
                        .fetch_one(&mut *c)
                        .await?;
                if endpoints > 0 {
                    return Err(ApiError::new(
                        ErrorCode::VpcInUse,
                        format!(
                            "VPC {id} still has {endpoints} VPC endpoint(s); delete them first"
                        ),
                    )
                    .into());
                }
                record::delete::<Vpc>(c, &id.to_string()).await?;
                usage::release(c, &project_id, USAGE_VPC, 1).await
            })
        })
        .await
    }

    /// Inserts a subnet inside its VPC's CIDR, not overlapping its siblings (VPC.0204); a
    /// project that already holds `quota` subnets is 409 VPC.0114 ([`USAGE_SUBNET`]).
    pub async fn create_subnet(&self, subnet: &Subnet, quota: u64) -> StoreResult<()> {
        let lock = self.dialect.for_update();
        let subnet = subnet.clone();
        self.write_retryable(move |c| {
            // Cloned for each run: the call may run again (see `write_retryable`).
            let subnet = subnet.clone();
            Box::pin(async move {
                let vpc: Vpc = fetch(c, &owned(&subnet.project_id, subnet.vpc_id), lock)
                    .await?
                    .ok_or_else(|| vpc_missing(subnet.vpc_id))?;
                let siblings: Vec<Subnet> =
                    fetch_all(c, &by("vpc_id", subnet.vpc_id.to_string())).await?;
                check_subnet_fits(&vpc, subnet.cidr, &siblings)?;
                record::insert(c, &subnet).await?;
                usage::take(c, &subnet.project_id, USAGE_SUBNET, quota).await
            })
        })
        .await
    }

    /// Deletes a subnet of `vpc_id` with no address in use (409 VPC.0211 otherwise), giving
    /// back its quota.
    pub async fn delete_subnet(&self, project_id: &str, vpc_id: Uuid, id: Uuid) -> StoreResult<()> {
        let lock = self.dialect.for_update();
        let project_id = project_id.to_string();
        self.write_retryable(move |c| {
            // Cloned for each run: the call may run again (see `write_retryable`).
            let project_id = project_id.clone();
            Box::pin(async move {
                let s: Subnet = fetch(c, &owned(&project_id, id), lock).await?.ok_or_else(|| subnet_missing(id))?;
                if s.vpc_id != vpc_id {
                    return Err(subnet_missing(format!("{id} in VPC {vpc_id}")));
                }
                let used: i64 = query_scalar("SELECT COUNT(*) FROM ip_allocations WHERE subnet_id = $1")
                    .bind(id.to_string())
                    .fetch_one(&mut *c)
                    .await?;
                if used > 0 {
                    return Err(ApiError::new(
                        ErrorCode::SubnetInUse,
                        format!("Subnet {id} still has {used} address(es) in use by ports or endpoints; delete them first"),
                    )
                    .into());
                }
                record::delete::<Subnet>(c, &id.to_string()).await?;
                usage::release(c, &project_id, USAGE_SUBNET, 1).await
            })
        })
        .await
    }

    /// Creates a port in its subnet with the requested or the lowest free address; a project
    /// that already holds `quota` ports is 409 VPC.0114 ([`USAGE_PORT`]).
    pub async fn create_port(
        &self,
        project_id: &str,
        new: NewPort,
        id: Uuid,
        mac: String,
        now: i64,
        quota: u64,
    ) -> StoreResult<Port> {
        let lock = self.dialect.for_update();
        let project_id = project_id.to_string();
        self.write_retryable(move |c| {
            // Cloned for each run: the call may run again (see `write_retryable`).
            let (mac, new, project_id) = (mac.clone(), new.clone(), project_id.clone());
            Box::pin(async move {
                let subnet: Subnet = fetch(c, &owned(&project_id, new.network_id), lock)
                    .await?
                    .ok_or_else(|| subnet_missing(new.network_id))?;
                if let Some(fs) = new.fixed_subnet_id {
                    if fs != subnet.id && fs != subnet.neutron_subnet_id {
                        return Err(ApiError::new(
                            ErrorCode::PortParam,
                            format!("port.fixed_ips[0].subnet_id {fs} is not the subnet of network_id {}", subnet.id),
                        )
                        .into());
                    }
                }
                let ip = allocate_ip(c, &subnet, new.ip_address, &[], &id.to_string(), &new.device_owner).await?;
                let port = Port {
                    id,
                    project_id: project_id.clone(),
                    subnet_id: subnet.id,
                    neutron_subnet_id: subnet.neutron_subnet_id,
                    vpc_id: subnet.vpc_id,
                    name: new.name,
                    ip_address: ip,
                    mac_address: mac,
                    device_owner: new.device_owner,
                    device_id: String::new(),
                    admin_state_up: new.admin_state_up,
                    security_groups: new.security_groups,
                    allowed_address_pairs: new.allowed_address_pairs,
                    extra_dhcp_opts: new.extra_dhcp_opts,
                    created_at: now,
                    updated_at: now,
                };
                record::insert(c, &port).await?;
                usage::take(c, &project_id, USAGE_PORT, quota).await?;
                Ok(port)
            })
        })
        .await
    }

    /// Deletes a port no endpoint service uses (409 VPC.0710 otherwise), freeing its address
    /// and its quota.
    pub async fn delete_port(&self, project_id: &str, id: Uuid) -> StoreResult<()> {
        let lock = self.dialect.for_update();
        let project_id = project_id.to_string();
        self.write_retryable(move |c| {
            // Cloned for each run: the call may run again (see `write_retryable`).
            let project_id = project_id.clone();
            Box::pin(async move {
                let _: Port = fetch(c, &owned(&project_id, id), lock)
                    .await?
                    .ok_or_else(|| port_missing(id))?;
                // Every service holds claims on its port (see migration 0009).
                let users: Vec<String> = query_scalar::<Vec<u8>>(
                    "SELECT DISTINCT service_id FROM service_port_claims WHERE port_id = $1 LIMIT 5",
                )
                .bind(crate::conn::id_bytes(id))
                .fetch_all(&mut *c)
                .await?
                .iter()
                .map(|b| crate::conn::id_text(b))
                .collect();
                if !users.is_empty() {
                    return Err(ApiError::new(
                        ErrorCode::PortInUse,
                        format!(
                            "Port {id} is the backend of endpoint service(s) {}; delete them first",
                            users.join(", ")
                        ),
                    )
                    .into());
                }
                release_ips(c, &id.to_string()).await?;
                record::delete::<Port>(c, &id.to_string()).await?;
                usage::release(c, &project_id, USAGE_PORT, 1).await
            })
        })
        .await
    }

    /// The allocated addresses of a subnet (404 VPC.0202 when the subnet is absent).
    pub async fn list_private_ips(
        &self,
        project_id: &str,
        subnet_id: Uuid,
        limit: u32,
        marker: Option<&str>,
    ) -> StoreResult<Vec<PrivateIp>> {
        {
            let mut c = self.reader().await?;
            fetch::<Subnet>(&mut c, &owned(project_id, subnet_id), "")
                .await?
                .ok_or_else(|| subnet_missing(subnet_id))?;
        }
        let rows: Vec<Allocation> = self
            .page(
                by("subnet_id", subnet_id.to_string()),
                limit,
                marker,
                ErrorCode::SubnetParam,
            )
            .await?;
        Ok(rows.into_iter().map(PrivateIp::from).collect())
    }
}

/// The `WHERE` of a port list.
pub(crate) fn port_where(project_id: &str, f: &PortFilter) -> Where {
    let mut w = by("project_id", project_id);
    let lists = [
        ("id", &f.ids),
        ("name", &f.names),
        ("subnet_id", &f.network_ids),
        ("mac_address", &f.mac_addresses),
        ("device_id", &f.device_ids),
        ("device_owner", &f.device_owners),
        ("ip_address", &f.ip_addresses),
    ];
    for (col, values) in lists {
        if !values.is_empty() {
            w.is_in(col, values);
        }
    }
    if !f.fixed_subnet_ids.is_empty() {
        w.any_in(&["subnet_id", "neutron_subnet_id"], &f.fixed_subnet_ids);
    }
    if !f.security_groups.is_empty() {
        // Stored as a JSON list of UUIDs: match the quoted id.
        let patterns: Vec<String> = f
            .security_groups
            .iter()
            .map(|g| format!("%\"{}\"%", crate::query::like_escape(g)))
            .collect();
        w.any_like("security_groups", &patterns);
    }
    if let Some(up) = f.admin_state_up {
        w.and(
            "admin_state_up = CAST(? AS BIGINT)",
            i64::from(up).to_string(),
        );
    }
    match f.status.as_deref() {
        Some("ACTIVE") => {
            w.and("device_owner <> ?", "");
        }
        Some(_) => {
            w.eq("device_owner", "");
        }
        None => {}
    }
    w
}

/// Binds helper re-exported for the VPC list.
pub(crate) fn vpc_where(project_id: &str, id: Option<&str>) -> Where {
    let mut w = by("project_id", project_id);
    if let Some(id) = id {
        w.eq("id", id);
    }
    w
}

/// The `WHERE` of a subnet list.
pub(crate) fn subnet_where(project_id: &str, vpc_id: Option<&str>) -> Where {
    let mut w = by("project_id", project_id);
    if let Some(v) = vpc_id {
        w.eq("vpc_id", v);
    }
    w
}
