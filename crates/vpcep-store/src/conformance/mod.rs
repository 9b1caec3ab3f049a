//! The behaviour every backend of [`SqlStore`] must show, as plain async checks, one module per
//! resource. The store's own tests (`tests/conformance.rs`) run each check as its own test on
//! SQLite and on PostgreSQL (`cargo test -p vpcep-store services::service_round_trip::sqlite`);
//! so can any other crate that wants a fresh store.
//!
//! The fresh database each check runs on comes from the test kit (`vpcep_testkit::db::TestDb`:
//! a temporary SQLite file, or a new schema in the PostgreSQL database named by
//! `VPCEP_TEST_POSTGRES_URL`); [`open_store`] opens the store on it.

pub mod claims;
pub mod endpoints;
pub mod network;
pub mod permissions;
pub mod services;
pub mod tags;
pub mod usage;

pub use claims::*;
pub use endpoints::*;
pub use network::*;
pub use permissions::*;
pub use services::*;
pub use tags::*;
pub use usage::*;

use crate::{open, ServiceFilter, ServiceScope, SqlStore, StoreError, StoreOptions};
use std::sync::Arc;
use uuid::Uuid;
use vpcep_domain::endpoint::{Endpoint, EndpointStatus};
use vpcep_domain::list::Page;
use vpcep_domain::network::port::{random_mac, NewPort};
use vpcep_domain::network::subnet::{NewSubnet, Subnet};
use vpcep_domain::network::vpc::{NewVpc, Vpc};
use vpcep_domain::permission::{Permission, PermissionType};
use vpcep_domain::service::{
    EndpointService, IpVersion, PortMapping, Protocol, ServerType, ServiceStatus, ServiceType,
    TcpProxy,
};
use vpcep_domain::ErrorCode;

/// Opens the store on the fresh database at `url` (a `vpcep_testkit::db::TestDb`'s).
pub async fn open_store(url: &str) -> Arc<SqlStore> {
    open_store_with(url, StoreOptions::default()).await
}

/// Opens the store on the fresh database at `url` with `opts`.
pub async fn open_store_with(url: &str, opts: StoreOptions) -> Arc<SqlStore> {
    open(url, opts).await.expect("open store")
}

/// No quota for the network's creates (the quota tests set their own).
const NO_QUOTA: u64 = u64::MAX;
const P1: &str = "0f8a1c2e3d4b5a69788796a5b4c3d2e1";
const P2: &str = "6e9dfd51d1124e8d8498dce894923a0d";
const D1: &str = "1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d";
const D2: &str = "2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d";

fn ports(pairs: &[(u16, u16)]) -> Vec<PortMapping> {
    pairs
        .iter()
        .map(|&(c, s)| PortMapping {
            client_port: c,
            server_port: s,
            protocol: Protocol::Tcp,
        })
        .collect()
}

/// A backend in the network: a port in a subnet of a VPC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackendRef {
    /// The VPC.
    pub vpc_id: Uuid,
    /// Its subnet.
    pub subnet_id: Uuid,
    /// The port in that subnet.
    pub port_id: Uuid,
}

/// A new VPC of `project` with `cidr`.
pub fn sample_vpc(project: &str, cidr: &str) -> Vpc {
    let new = NewVpc {
        name: String::new(),
        description: String::new(),
        cidr: cidr.parse().expect("cidr"),
        enterprise_project_id: "0".into(),
        enable_network_address_usage_metrics: false,
    };
    Vpc::new(project, new, Uuid::new_v4(), 7, 1)
}

/// A new subnet of `vpc` with `cidr`, its gateway the first host.
pub fn sample_subnet(vpc: &Vpc, cidr: &str) -> Subnet {
    let cidr: ipnet::Ipv4Net = cidr.parse().expect("cidr");
    let new = NewSubnet {
        name: "s".into(),
        description: String::new(),
        cidr,
        vpc_id: vpc.id,
        gateway_ip: cidr.hosts().next().expect("host"),
        dhcp_enable: true,
        primary_dns: None,
        secondary_dns: None,
        dns_list: vec![],
        availability_zone: String::new(),
        extra_dhcp_opts: vec![],
    };
    Subnet::new(&vpc.project_id, new, Uuid::new_v4(), Uuid::new_v4(), 1)
}

/// Creates a VPC with `cidr`, a subnet on its first /24 (or the whole VPC when smaller), and a
/// port of `device_owner` in it.
pub async fn make_backend_with(
    store: &SqlStore,
    project: &str,
    cidr: &str,
    device_owner: &str,
) -> BackendRef {
    let vpc = sample_vpc(project, cidr);
    store.create_vpc(&vpc, NO_QUOTA).await.expect("create vpc");
    let sub =
        ipnet::Ipv4Net::new(vpc.cidr.network(), 24.max(vpc.cidr.prefix_len())).expect("subnet");
    let subnet = sample_subnet(&vpc, &sub.to_string());
    store
        .create_subnet(&subnet, NO_QUOTA)
        .await
        .expect("create subnet");
    let port = store
        .create_port(
            project,
            NewPort::simple(subnet.id, None, device_owner),
            Uuid::new_v4(),
            random_mac(7),
            1,
            NO_QUOTA,
        )
        .await
        .expect("create port");
    BackendRef {
        vpc_id: vpc.id,
        subnet_id: subnet.id,
        port_id: port.id,
    }
}

/// [`make_backend_with`] a VM NIC in 10.0.0.0/16.
pub async fn make_backend(store: &SqlStore, project: &str) -> BackendRef {
    make_backend_with(store, project, "10.0.0.0/16", "compute:local-1a").await
}

/// A service of `project` on backend `b` with the given mappings, created at `t`.
pub fn sample_service(
    project: &str,
    b: &BackendRef,
    mappings: &[(u16, u16)],
    t: i64,
) -> EndpointService {
    let id = Uuid::new_v4();
    EndpointService {
        id,
        project_id: project.into(),
        domain_id: if project == P2 { D2.into() } else { D1.into() },
        short_name: Some("svc".into()),
        full_name: EndpointService::full_name("local-1", Some("svc"), id),
        port_id: b.port_id,
        vpc_id: b.vpc_id,
        server_type: ServerType::Vm,
        service_type: ServiceType::Interface,
        approval_enabled: true,
        status: ServiceStatus::Creating,
        tcp_proxy: TcpProxy::Close,
        ports: ports(mappings),
        tags: vec![],
        description: String::new(),
        ip: None,
        ip_version: IpVersion::Ipv4,
        snat_network_id: None,
        enable_policy: false,
        supported_editions: vec!["basic".into()],
        error: None,
        created_at: t,
        updated_at: t,
        server_resources: Vec::new(),
        connection_count: 0,
        endpoint_count: 0,
    }
}

fn code_of(e: StoreError) -> ErrorCode {
    match e {
        StoreError::Api(a) => a.code,
        other => panic!("expected an API error, got {other:?}"),
    }
}

async fn total(store: &SqlStore, project: &str) -> u64 {
    store
        .list_services(
            &ServiceScope::Project(project.into()),
            &ServiceFilter::default(),
            &Page::default(),
        )
        .await
        .unwrap()
        .1
}

/// An available service on a fresh backend of `project`, with approval as given.
pub async fn available_service(store: &SqlStore, project: &str, approval: bool) -> EndpointService {
    let b = make_backend(store, project).await;
    let mut s = sample_service(project, &b, &[(80, 8080)], 1);
    s.approval_enabled = approval;
    store.create_service(&s, 100).await.unwrap();
    store.complete_creations(i64::MAX, 2, 100).await.unwrap();
    store.get_service(project, s.id).await.unwrap().unwrap()
}

/// An endpoint of `project` in `subnet` (of `vpc`) to `service`, as the control layer builds it.
pub fn sample_endpoint(
    project: &str,
    service: &EndpointService,
    vpc: Uuid,
    subnet: Uuid,
    t: i64,
) -> Endpoint {
    Endpoint {
        id: Uuid::new_v4(),
        project_id: project.into(),
        domain_id: if project == P2 { D2.into() } else { D1.into() },
        service_id: service.id,
        service_name: String::new(),
        service_type: ServiceType::Interface,
        vpc_id: vpc,
        subnet_id: Some(subnet),
        ip: None,
        ever_accepted: false,
        approved: false,
        status: EndpointStatus::Creating,
        marker_id: 0,
        enable_dns: false,
        dns_names: vec![],
        whitelist: vec![],
        enable_whitelist: false,
        routetables: vec![],
        description: String::new(),
        connection_description: String::new(),
        policy_statement: None,
        policy_document: None,
        tags: vec![],
        specification_name: "default".into(),
        ip_version: "ipv4".into(),
        ipv6_address: None,
        error: None,
        created_at: t,
        updated_at: t,
    }
}

fn allow() -> crate::EndpointCheck {
    std::sync::Arc::new(|_, _| Ok(()))
}

/// A permission record for `service`, added at `now`.
pub fn sample_permission(
    service: Uuid,
    entry: &str,
    kind: PermissionType,
    description: &str,
    now: i64,
) -> Permission {
    Permission {
        id: Uuid::new_v4(),
        service_id: service,
        permission: entry.into(),
        permission_type: kind,
        description: description.into(),
        created_at: now,
        updated_at: now,
    }
}

async fn new_service(store: &SqlStore, project: &str) -> EndpointService {
    let b = make_backend(store, project).await;
    let s = sample_service(project, &b, &[(80, 80)], 1);
    store.create_service(&s, 100).await.unwrap();
    s
}

/// The first `n` octets of a VPC's network address, dotted.
fn octets(vpc: &Vpc, n: usize) -> String {
    vpc.cidr.network().octets()[..n]
        .iter()
        .map(u8::to_string)
        .collect::<Vec<_>>()
        .join(".")
}

/// Marks a service of `project` as `deleting` at `at` (what a delete request does), for the
/// reconciler to remove.
pub async fn mark_deleting(store: &SqlStore, project: &str, id: Uuid, at: i64) {
    store
        .modify_service(
            project,
            id,
            at,
            std::sync::Arc::new(|s| {
                s.status = ServiceStatus::Deleting;
                Ok(())
            }),
        )
        .await
        .unwrap();
}
