//! The behaviour every [`Store`] backend must show, as plain async checks. The store's own tests
//! run them on SQLite and PostgreSQL; so can any other crate that wants a fresh store.
//!
//! [`TestDb`] makes a fresh, migrated store: a temporary SQLite file, or a new schema in the
//! PostgreSQL database named by `VPCEP_TEST_POSTGRES_URL` (default
//! `postgres://root@127.0.0.1:5432/test`).

use crate::{open, ServiceFilter, ServiceLookup, ServiceScope, SqlStore, StoreError, StoreOptions};
use crate::{PermissionChange, USAGE_ENDPOINT, USAGE_ENDPOINT_SERVICE};
use crate::{USAGE_PORT, USAGE_SUBNET, USAGE_VPC};
use std::sync::Arc;
use uuid::Uuid;
use vpcep_domain::endpoint::{Endpoint, EndpointStatus};
use vpcep_domain::list::{Page, SortDir, SortKey};
use vpcep_domain::model::ResourceKind;
use vpcep_domain::model::ServerResource;
use vpcep_domain::model::{
    EndpointService, IpVersion, PortMapping, Protocol, ServerType, ServiceStatus, ServiceType, Tag,
    TcpProxy,
};
use vpcep_domain::network::{random_mac, NewPort, NewSubnet, NewVpc, Subnet, Vpc};
use vpcep_domain::permission::{Permission, PermissionType};
use vpcep_domain::ErrorCode;

/// Default PostgreSQL URL for tests (local server, trust auth, database `test`).
pub const DEFAULT_TEST_POSTGRES_URL: &str = "postgres://root@127.0.0.1:5432/test";

/// Which backend a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A temporary SQLite file.
    Sqlite,
    /// A fresh schema in the test PostgreSQL database.
    Postgres,
}

/// A fresh database for one test; dropping it removes the SQLite file (the PostgreSQL schema is
/// dropped by [`TestDb::cleanup`]).
pub struct TestDb {
    /// The URL a server or store can open.
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    schema: Option<String>,
}

/// The PostgreSQL URL tests use.
pub fn postgres_base_url() -> String {
    std::env::var("VPCEP_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_TEST_POSTGRES_URL.into())
}

/// Whether the test run must fail rather than skip when PostgreSQL is unreachable.
pub fn postgres_required() -> bool {
    std::env::var("VPCEP_REQUIRE_PG").is_ok_and(|v| v == "1" || v == "true")
}

impl TestDb {
    /// A fresh database on `backend`, or `None` (with a printed notice) when PostgreSQL is not
    /// reachable and not required. Panics when it is required and unreachable.
    pub async fn new(backend: Backend) -> Option<TestDb> {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}", dir.path().join("vpcep.db").display());
                Some(TestDb {
                    url,
                    _dir: Some(dir),
                    schema: None,
                })
            }
            Backend::Postgres => {
                use sqlx::{Connection, Executor};
                sqlx::any::install_default_drivers();
                let base = postgres_base_url();
                let mut conn = match sqlx::AnyConnection::connect(&base).await {
                    Ok(c) => c,
                    Err(e) if !postgres_required() => {
                        eprintln!("SKIPPED: PostgreSQL not reachable at {base} ({e}); set VPCEP_REQUIRE_PG=1 to make this fail");
                        return None;
                    }
                    Err(e) => panic!("PostgreSQL is required (VPCEP_REQUIRE_PG=1) but not reachable at {base}: {e}"),
                };
                let schema = format!("vpcep_t_{}", Uuid::new_v4().simple());
                conn.execute(format!("CREATE SCHEMA {schema}").as_str())
                    .await
                    .expect("create schema");
                let sep = if base.contains('?') { '&' } else { '?' };
                let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
                Some(TestDb {
                    url,
                    _dir: None,
                    schema: Some(schema),
                })
            }
        }
    }

    /// Opens the store on this database.
    pub async fn store(&self) -> Arc<SqlStore> {
        self.store_with(StoreOptions::default()).await
    }

    /// Opens the store on this database with `opts`.
    pub async fn store_with(&self, opts: StoreOptions) -> Arc<SqlStore> {
        open(&self.url, opts).await.expect("open store")
    }

    /// Drops the PostgreSQL schema (no-op for SQLite).
    pub async fn cleanup(self) {
        if let Some(schema) = &self.schema {
            use sqlx::{Connection, Executor};
            if let Ok(mut conn) = sqlx::AnyConnection::connect(&postgres_base_url()).await {
                let _ = conn
                    .execute(format!("DROP SCHEMA {schema} CASCADE").as_str())
                    .await;
            }
        }
    }
}
/// No quota for the inventory's creates (the quota tests set their own).
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

/// A backend in the inventory: a port in a subnet of a VPC.
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

/// Create, then read back by project, by id across projects and by full name: every field
/// round-trips, ports keep their order, tags come back sorted; another project sees nothing.
pub async fn service_round_trip(store: &SqlStore) {
    let b = make_backend(store, P1).await;
    let mut s = sample_service(P1, &b, &[(8081, 80), (8080, 90)], 1_700_000_000_123);
    s.tags = vec![
        Tag {
            key: "b".into(),
            value: "2".into(),
        },
        Tag {
            key: "a".into(),
            value: "".into(),
        },
    ];
    s.description = "desc ü".into();
    s.ip = Some("10.0.0.5".into());
    s.tcp_proxy = TcpProxy::ProxyVni;
    store.create_service(&s, 100).await.unwrap();
    let got = store.get_service(P1, s.id).await.unwrap().expect("stored");
    let mut want = s.clone();
    want.tags.sort();
    assert_eq!(got, want);
    assert!(
        store.get_service(P2, s.id).await.unwrap().is_none(),
        "other project must not see it"
    );
    assert_eq!(
        store
            .find_service(&ServiceLookup::Id(s.id))
            .await
            .unwrap()
            .unwrap()
            .id,
        s.id
    );
    assert_eq!(
        store
            .find_service(&ServiceLookup::FullName(s.full_name.clone()))
            .await
            .unwrap()
            .unwrap()
            .id,
        s.id
    );
    assert!(store
        .find_service(&ServiceLookup::Id(Uuid::new_v4()))
        .await
        .unwrap()
        .is_none());
}

/// Services on one `port_id` may not repeat a client or a server port; other port_ids may.
pub async fn port_claims_conflict_on_shared_port_id(store: &SqlStore) {
    let port = make_backend(store, P1).await;
    let other = make_backend_with(store, P1, "10.1.0.0/16", "compute:az").await;
    store
        .create_service(&sample_service(P1, &port, &[(80, 8080)], 1), 100)
        .await
        .unwrap();
    let same_client = sample_service(P1, &port, &[(80, 9090)], 2);
    assert_eq!(
        code_of(store.create_service(&same_client, 100).await.unwrap_err()),
        ErrorCode::PortConflict
    );
    let same_server = sample_service(P1, &port, &[(81, 8080)], 3);
    assert_eq!(
        code_of(store.create_service(&same_server, 100).await.unwrap_err()),
        ErrorCode::PortConflict
    );
    store
        .create_service(&sample_service(P1, &port, &[(81, 8081)], 4), 100)
        .await
        .unwrap();
    store
        .create_service(&sample_service(P1, &other, &[(80, 8080)], 5), 100)
        .await
        .unwrap();
    // A refused create leaves nothing behind, not even its usage count.
    assert_eq!(total(store, P1).await, 3);
    assert!(store
        .get_service(P1, same_client.id)
        .await
        .unwrap()
        .is_none());
}

/// Many concurrent creates with the same mapping on one port_id: exactly one is admitted.
pub async fn concurrent_conflicting_creates_admit_one(store: Arc<SqlStore>) {
    let port = make_backend(&store, P1).await;
    let mut tasks = Vec::new();
    for i in 0..24 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .create_service(&sample_service(P1, &port, &[(443, 8443)], i), 1000)
                .await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(()) => ok += 1,
            Err(e) => assert_eq!(code_of(e), ErrorCode::PortConflict),
        }
    }
    assert_eq!(ok, 1);
}

/// The service quota holds exactly, also under concurrent creates, and deletions give it back.
pub async fn quota_holds_under_concurrency(store: Arc<SqlStore>) {
    let port = make_backend(&store, P2).await;
    let mut tasks = Vec::new();
    for i in 0..20u16 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .create_service(
                    &sample_service(P2, &port, &[(80 + i, 80 + i)], i64::from(i)),
                    5,
                )
                .await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(()) => ok += 1,
            Err(e) => assert_eq!(code_of(e), ErrorCode::QuotaExceeded),
        }
    }
    assert_eq!(ok, 5);
    let scope = ServiceScope::Project(P2.into());
    let (all, n) = store
        .list_services(
            &scope,
            &ServiceFilter::default(),
            &Page {
                limit: 100,
                ..Page::default()
            },
        )
        .await
        .unwrap();
    assert_eq!((all.len(), n), (5, 5));
    store
        .modify_service(
            P2,
            all[0].id,
            10,
            Box::new(|s| {
                s.status = ServiceStatus::Deleting;
                Ok(())
            }),
        )
        .await
        .unwrap();
    assert_eq!(store.complete_deletions(10, 100).await.unwrap(), 1);
    store
        .create_service(&sample_service(P2, &port, &[(999, 999)], 99), 5)
        .await
        .unwrap();
}

/// Lists page, sort, filter and count; an offset past the end gives an empty page and the total.
pub async fn list_pages_sorts_and_filters(store: &SqlStore) {
    let scope = ServiceScope::Project(P1.into());
    let port = make_backend(store, P1).await;
    let mut ids = Vec::new();
    for i in 0..7u16 {
        let mut s = sample_service(P1, &port, &[(80 + i, 80 + i)], 1000 + i64::from(i));
        if i == 3 {
            s.short_name = Some("Special_one".into());
            s.full_name = EndpointService::full_name("local-1", Some("Special_one"), s.id);
        }
        if i == 5 {
            s.status = ServiceStatus::Available;
        }
        store.create_service(&s, 100).await.unwrap();
        ids.push(s.id);
    }
    let page = |limit, offset, dir| Page {
        limit,
        offset,
        sort_key: SortKey::CreatedAt,
        sort_dir: dir,
    };
    let none = ServiceFilter::default();
    let list = |f: ServiceFilter, p: Page| {
        let scope = scope.clone();
        async move { store.list_services(&scope, &f, &p).await.unwrap() }
    };
    let idlist = |v: &[EndpointService]| v.iter().map(|s| s.id).collect::<Vec<_>>();
    let (p, n) = list(none.clone(), page(3, 0, SortDir::Desc)).await;
    assert_eq!((idlist(&p), n), (vec![ids[6], ids[5], ids[4]], 7));
    let (p, _) = list(none.clone(), page(3, 6, SortDir::Desc)).await;
    assert_eq!(idlist(&p), vec![ids[0]]);
    let (p, n) = list(none.clone(), page(3, 7, SortDir::Desc)).await;
    assert!(p.is_empty());
    assert_eq!(n, 7);
    let (p, _) = list(none.clone(), page(2, 0, SortDir::Asc)).await;
    assert_eq!(idlist(&p), vec![ids[0], ids[1]]);
    let (p, n) = list(
        ServiceFilter {
            name_contains: Some("special_ONE".into()),
            ..Default::default()
        },
        Page::default(),
    )
    .await;
    assert_eq!((idlist(&p), n), (vec![ids[3]], 1));
    let (_, n) = list(
        ServiceFilter {
            name_contains: Some("%".into()),
            ..Default::default()
        },
        Page::default(),
    )
    .await;
    assert_eq!(n, 0, "LIKE wildcards are literal");
    let (p, n) = list(
        ServiceFilter {
            status: Some(ServiceStatus::Available),
            ..Default::default()
        },
        Page::default(),
    )
    .await;
    assert_eq!((idlist(&p), n), (vec![ids[5]], 1));
    let (p, _) = list(
        ServiceFilter {
            id: Some(ids[2].to_string()),
            ..Default::default()
        },
        Page::default(),
    )
    .await;
    assert_eq!(idlist(&p), vec![ids[2]]);
    assert_eq!(total(store, P2).await, 0);
    let by_domain = |d: Vec<String>| async move {
        store
            .list_services(
                &ServiceScope::Domains(d),
                &ServiceFilter::default(),
                &Page::default(),
            )
            .await
            .unwrap()
            .1
    };
    assert_eq!(by_domain(vec![D1.into()]).await, 7);
    assert_eq!(by_domain(vec![]).await, 0);
}

/// `modify_service` writes what the mutation decided, in one transaction: a refused mutation
/// or a port conflict leaves the row and its claims as they were.
pub async fn modify_is_transactional(store: &SqlStore) {
    let port = make_backend(store, P1).await;
    let a = sample_service(P1, &port, &[(80, 8080)], 1);
    let b = sample_service(P1, &port, &[(81, 8081)], 2);
    store.create_service(&a, 100).await.unwrap();
    store.create_service(&b, 100).await.unwrap();
    let refused = store
        .modify_service(
            P1,
            a.id,
            5,
            Box::new(|s| {
                s.description = "x".into();
                Err(vpcep_domain::ApiError::param("no"))
            }),
        )
        .await
        .unwrap_err();
    assert_eq!(code_of(refused), ErrorCode::Parameter);
    let conflict = store
        .modify_service(
            P1,
            a.id,
            5,
            Box::new(|s| {
                s.ports = ports(&[(81, 9999)]);
                s.description = "y".into();
                Ok(())
            }),
        )
        .await
        .unwrap_err();
    assert_eq!(code_of(conflict), ErrorCode::PortConflict);
    let still = store.get_service(P1, a.id).await.unwrap().unwrap();
    assert_eq!(
        (
            still.description.as_str(),
            still.ports.clone(),
            still.updated_at
        ),
        ("", ports(&[(80, 8080)]), 1)
    );
    let c = sample_service(P1, &port, &[(80, 7000)], 3);
    assert_eq!(
        code_of(store.create_service(&c, 100).await.unwrap_err()),
        ErrorCode::PortConflict,
        "a's old ports stay claimed"
    );
    let changed = store
        .modify_service(
            P1,
            a.id,
            7,
            Box::new(|s| {
                s.ports = ports(&[(90, 9090), (91, 9090)]);
                Ok(())
            }),
        )
        .await
        .unwrap();
    assert_eq!(changed.updated_at, 7);
    store.create_service(&c, 100).await.unwrap();
    assert_eq!(
        code_of(
            store
                .modify_service(P2, a.id, 8, Box::new(|_| Ok(())))
                .await
                .unwrap_err()
        ),
        ErrorCode::NotFound
    );
    let unchanged = store
        .modify_service(P1, b.id, 9, Box::new(|_| Ok(())))
        .await
        .unwrap();
    assert_eq!(unchanged.updated_at, 2, "a no-op does not touch updated_at");
}

/// The reconciler's transitions: due `creating` services become `available`, due `deleting`
/// ones disappear with their claims, tags and usage; nothing moves before its time.
pub async fn transitions_complete_when_due(store: &SqlStore) {
    let port = make_backend(store, P1).await;
    let mut s = sample_service(P1, &port, &[(80, 8080)], 100);
    s.tags = vec![Tag {
        key: "k".into(),
        value: "v".into(),
    }];
    store.create_service(&s, 100).await.unwrap();
    assert_eq!(store.complete_creations(99, 150, 100).await.unwrap(), 0);
    assert_eq!(store.complete_creations(100, 150, 100).await.unwrap(), 1);
    let got = store.get_service(P1, s.id).await.unwrap().unwrap();
    assert_eq!(
        (got.status, got.updated_at),
        (ServiceStatus::Available, 150)
    );
    store
        .modify_service(
            P1,
            s.id,
            200,
            Box::new(|s| {
                s.status = ServiceStatus::Deleting;
                Ok(())
            }),
        )
        .await
        .unwrap();
    assert_eq!(store.complete_deletions(199, 100).await.unwrap(), 0);
    assert!(store.get_service(P1, s.id).await.unwrap().is_some());
    assert_eq!(store.complete_deletions(200, 100).await.unwrap(), 1);
    assert!(store.get_service(P1, s.id).await.unwrap().is_none());
    assert_eq!(total(store, P1).await, 0);
    store
        .create_service(&sample_service(P1, &port, &[(80, 8080)], 300), 100)
        .await
        .unwrap();
}

/// The first default account stored wins; later calls get it back.
pub async fn default_account_first_wins(store: &SqlStore) {
    assert_eq!(store.stored_default_account().await.unwrap(), None);
    assert_eq!(
        store.default_account("first".into()).await.unwrap(),
        "first"
    );
    assert_eq!(
        store.default_account("second".into()).await.unwrap(),
        "first"
    );
    assert_eq!(
        store.stored_default_account().await.unwrap().as_deref(),
        Some("first")
    );
}

/// VPCs: round trip, unique non-empty names per project, marker paging, CIDR changes that must
/// keep the subnets inside, and no deletion while subnets exist.
pub async fn vpcs_round_trip_and_guard_deletion(store: &SqlStore) {
    let mut a = sample_vpc(P1, "10.0.0.0/16");
    a.name = "prod".into();
    store.create_vpc(&a, NO_QUOTA).await.unwrap();
    assert_eq!(store.get_vpc(P1, a.id).await.unwrap().unwrap(), a);
    assert!(store.get_vpc(P2, a.id).await.unwrap().is_none());
    let mut dup = sample_vpc(P1, "10.1.0.0/16");
    dup.name = "prod".into();
    assert_eq!(
        code_of(store.create_vpc(&dup, NO_QUOTA).await.unwrap_err()),
        ErrorCode::VpcNameExists
    );
    dup.project_id = P2.into();
    store.create_vpc(&dup, NO_QUOTA).await.unwrap();
    // Renaming onto a taken name is the same 400, not a database error.
    let other = sample_vpc(P1, "10.4.0.0/16");
    store.create_vpc(&other, NO_QUOTA).await.unwrap();
    let rename = store
        .modify_vpc(
            P1,
            other.id,
            9,
            Box::new(|v, _| {
                v.name = "prod".into();
                Ok(())
            }),
        )
        .await
        .unwrap_err();
    assert_eq!(code_of(rename), ErrorCode::VpcNameExists);
    store.delete_vpc(P1, other.id).await.unwrap();
    let b = sample_vpc(P1, "10.2.0.0/16");
    let c = sample_vpc(P1, "10.3.0.0/16");
    store.create_vpc(&b, NO_QUOTA).await.unwrap();
    store.create_vpc(&c, NO_QUOTA).await.unwrap();
    let ids = |v: Vec<Vpc>| v.into_iter().map(|v| v.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.list_vpcs(P1, None, 2, None).await.unwrap()),
        vec![a.id, b.id]
    );
    assert_eq!(
        ids(store
            .list_vpcs(P1, None, 2, Some(&b.id.to_string()))
            .await
            .unwrap()),
        vec![c.id]
    );
    assert_eq!(
        ids(store
            .list_vpcs(P1, Some(&c.id.to_string()), 10, None)
            .await
            .unwrap()),
        vec![c.id]
    );
    assert_eq!(
        code_of(
            store
                .list_vpcs(P1, None, 2, Some("nope"))
                .await
                .unwrap_err()
        ),
        ErrorCode::VpcParam
    );
    store
        .create_subnet(&sample_subnet(&a, "10.0.5.0/24"), NO_QUOTA)
        .await
        .unwrap();
    let shrink = store
        .modify_vpc(
            P1,
            a.id,
            9,
            Box::new(|v, subnets| {
                v.cidr = "10.0.0.0/22".parse().unwrap();
                vpcep_domain::network::check_vpc_cidr_holds_subnets(v.cidr, subnets)
            }),
        )
        .await
        .unwrap_err();
    assert_eq!(code_of(shrink), ErrorCode::VpcParam);
    let grown = store
        .modify_vpc(
            P1,
            a.id,
            9,
            Box::new(|v, subnets| {
                v.cidr = "10.0.0.0/8".parse().unwrap();
                vpcep_domain::network::check_vpc_cidr_holds_subnets(v.cidr, subnets)
            }),
        )
        .await
        .unwrap();
    assert_eq!(
        (grown.cidr.to_string().as_str(), grown.updated_at),
        ("10.0.0.0/8", 9)
    );
    assert_eq!(
        code_of(store.delete_vpc(P1, a.id).await.unwrap_err()),
        ErrorCode::VpcInUse
    );
    store.delete_vpc(P1, b.id).await.unwrap();
    assert!(store.get_vpc(P1, b.id).await.unwrap().is_none());
    assert_eq!(
        code_of(store.delete_vpc(P1, b.id).await.unwrap_err()),
        ErrorCode::VpcMissing
    );
}

/// Subnets lie inside their VPC and never overlap, also when created concurrently.
pub async fn subnets_never_overlap(store: Arc<SqlStore>) {
    let vpc = sample_vpc(P1, "10.0.0.0/16");
    store.create_vpc(&vpc, NO_QUOTA).await.unwrap();
    assert_eq!(
        code_of(
            store
                .create_subnet(&sample_subnet(&vpc, "10.9.0.0/24"), NO_QUOTA)
                .await
                .unwrap_err()
        ),
        ErrorCode::SubnetCidrConflict
    );
    let mut ghost = sample_subnet(&vpc, "10.0.0.0/24");
    ghost.vpc_id = Uuid::new_v4();
    assert_eq!(
        code_of(store.create_subnet(&ghost, NO_QUOTA).await.unwrap_err()),
        ErrorCode::VpcMissing
    );
    let mut tasks = Vec::new();
    for i in 0..12 {
        let store = store.clone();
        // Every candidate overlaps every other: /24s inside one /23, plus the /23 itself.
        let cidr = if i == 0 {
            "10.0.2.0/23".to_string()
        } else {
            format!("10.0.{}.0/24", 2 + i % 2)
        };
        let s = sample_subnet(&vpc, &cidr);
        tasks.push(tokio::spawn(async move {
            store.create_subnet(&s, NO_QUOTA).await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(()) => ok += 1,
            Err(e) => assert_eq!(code_of(e), ErrorCode::SubnetCidrConflict),
        }
    }
    assert!(
        (1..=2).contains(&ok),
        "only non-overlapping subnets may be admitted, got {ok}"
    );
    let listed = store
        .list_subnets(P1, Some(&vpc.id.to_string()), 100, None)
        .await
        .unwrap();
    for (i, a) in listed.iter().enumerate() {
        for b in &listed[i + 1..] {
            assert!(
                !a.cidr.contains(&b.cidr) && !b.cidr.contains(&a.cidr),
                "{} overlaps {}",
                a.cidr,
                b.cidr
            );
        }
    }
}

/// Port addresses: the lowest free host address, never network/gateway/broadcast, a requested
/// one must be free and inside; concurrent allocations never hand out an address twice; a
/// subnet with addresses in use cannot be deleted; deleting a port frees its address.
pub async fn ports_allocate_unique_addresses(store: Arc<SqlStore>) {
    let vpc = sample_vpc(P1, "10.0.0.0/16");
    store.create_vpc(&vpc, NO_QUOTA).await.unwrap();
    let subnet = sample_subnet(&vpc, "10.0.7.0/27");
    store.create_subnet(&subnet, NO_QUOTA).await.unwrap();
    let new_port =
        |ip: Option<&str>| NewPort::simple(subnet.id, ip.map(|s| s.parse().unwrap()), "compute:az");
    let first = store
        .create_port(
            P1,
            new_port(None),
            Uuid::new_v4(),
            random_mac(1),
            1,
            NO_QUOTA,
        )
        .await
        .unwrap();
    assert_eq!(
        first.ip_address.to_string(),
        "10.0.7.2",
        "skips the network .0 and gateway .1"
    );
    assert_eq!((first.subnet_id, first.vpc_id), (subnet.id, vpc.id));
    for (ip, code) in [
        ("10.0.7.2", ErrorCode::IpInUse),
        ("10.0.7.1", ErrorCode::PortParam),
        ("10.0.7.31", ErrorCode::PortParam),
        ("10.0.8.5", ErrorCode::PortParam),
    ] {
        let e = store
            .create_port(
                P1,
                new_port(Some(ip)),
                Uuid::new_v4(),
                random_mac(2),
                1,
                NO_QUOTA,
            )
            .await
            .unwrap_err();
        assert_eq!(code_of(e), code, "{ip}");
    }
    let fixed = store
        .create_port(
            P1,
            new_port(Some("10.0.7.30")),
            Uuid::new_v4(),
            random_mac(3),
            1,
            NO_QUOTA,
        )
        .await
        .unwrap();
    assert_eq!(fixed.ip_address.to_string(), "10.0.7.30");
    // 29 host addresses (.2-.30) exist; two are taken: 27 concurrent requests all succeed with
    // distinct addresses, and the next one finds the subnet full.
    let mut tasks = Vec::new();
    for i in 0..27 {
        let store = store.clone();
        let p = new_port(None);
        tasks.push(tokio::spawn(async move {
            store
                .create_port(P1, p, Uuid::new_v4(), random_mac(i), 1, NO_QUOTA)
                .await
        }));
    }
    let mut seen = std::collections::HashSet::new();
    for t in tasks {
        let p = t.await.unwrap().unwrap();
        assert!(
            seen.insert(p.ip_address),
            "{} handed out twice",
            p.ip_address
        );
        assert!(p.ip_address != "10.0.7.31".parse::<std::net::Ipv4Addr>().unwrap());
    }
    let full = store
        .create_port(
            P1,
            new_port(None),
            Uuid::new_v4(),
            random_mac(4),
            1,
            NO_QUOTA,
        )
        .await
        .unwrap_err();
    assert_eq!(code_of(full), ErrorCode::IpInUse);
    let got = store.get_subnet(P1, subnet.id).await.unwrap().unwrap();
    assert_eq!(got.available_ip_address_count, 0);
    assert_eq!(
        store
            .list_private_ips(P1, subnet.id, 1000, None)
            .await
            .unwrap()
            .len(),
        29
    );
    assert_eq!(
        code_of(
            store
                .delete_subnet(P1, vpc.id, subnet.id)
                .await
                .unwrap_err()
        ),
        ErrorCode::SubnetInUse
    );
    store.delete_port(P1, first.id).await.unwrap();
    assert_eq!(
        store
            .get_subnet(P1, subnet.id)
            .await
            .unwrap()
            .unwrap()
            .available_ip_address_count,
        1
    );
    let again = store
        .create_port(
            P1,
            new_port(None),
            Uuid::new_v4(),
            random_mac(5),
            1,
            NO_QUOTA,
        )
        .await
        .unwrap();
    assert_eq!(again.ip_address.to_string(), "10.0.7.2");
    let filter = crate::PortFilter {
        ip_addresses: vec!["10.0.7.30".into()],
        ..Default::default()
    };
    assert_eq!(
        store.list_ports(P1, &filter, 10, None).await.unwrap()[0].id,
        fixed.id
    );
    let either = crate::PortFilter {
        ids: vec![fixed.id.to_string(), again.id.to_string()],
        fixed_subnet_ids: vec![subnet.neutron_subnet_id.to_string()],
        ..Default::default()
    };
    assert_eq!(
        store.list_ports(P1, &either, 10, None).await.unwrap().len(),
        2
    );
    let none = crate::PortFilter {
        security_groups: vec![Uuid::new_v4().to_string()],
        ..Default::default()
    };
    assert!(store
        .list_ports(P1, &none, 10, None)
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .list_ports(P2, &crate::PortFilter::default(), 10, None)
        .await
        .unwrap()
        .is_empty());
}

/// Endpoint services need a real backend: a port of the project in `vpc_id`, of the kind
/// `server_type` names, in a VPC clear of 198.19.128.0/17; a port in use cannot be deleted.
pub async fn services_check_their_backend(store: &SqlStore) {
    let vm = make_backend(store, P1).await;
    let lb = make_backend_with(store, P1, "10.1.0.0/16", "neutron:LOADBALANCERV2").await;
    let mut s = sample_service(P1, &vm, &[(80, 80)], 1);
    s.vpc_id = lb.vpc_id;
    assert_eq!(
        code_of(store.create_service(&s, 100).await.unwrap_err()),
        ErrorCode::PortNotInVpc
    );
    let mut s = sample_service(P1, &lb, &[(80, 80)], 1);
    assert_eq!(
        code_of(store.create_service(&s, 100).await.unwrap_err()),
        ErrorCode::InvalidServerType
    );
    s.server_type = ServerType::Lb;
    store.create_service(&s, 100).await.unwrap();
    let foreign = sample_service(P2, &vm, &[(80, 80)], 1);
    assert_eq!(
        code_of(store.create_service(&foreign, 100).await.unwrap_err()),
        ErrorCode::PortNotFound
    );
    let reserved = make_backend_with(store, P1, "198.19.0.0/16", "compute:az").await;
    assert_eq!(
        code_of(
            store
                .create_service(&sample_service(P1, &reserved, &[(80, 80)], 1), 100)
                .await
                .unwrap_err()
        ),
        ErrorCode::InvalidCidr
    );
    assert_eq!(
        code_of(store.delete_port(P1, lb.port_id).await.unwrap_err()),
        ErrorCode::PortInUse
    );
    // Moving the service to a port of another VPC is refused; to a free VM port of its VPC is not.
    let moved = store
        .modify_service(
            P1,
            s.id,
            5,
            Box::new(move |s| {
                s.port_id = vm.port_id;
                Ok(())
            }),
        )
        .await
        .unwrap_err();
    assert_eq!(code_of(moved), ErrorCode::PortNotInVpc);
    assert_eq!(total(store, P1).await, 1);
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
    Box::new(|_, _| Ok(()))
}

/// An endpoint's life: created `creating` with an address and a fresh marker id, settled by the
/// reconciler per the service's approval setting, accepted by the owner, counted as a
/// connection; deleting frees its address, its quota and its tags.
pub async fn endpoint_lifecycle(store: &SqlStore) {
    let svc = available_service(store, P1, true).await;
    let consumer = make_backend_with(store, P2, "10.5.0.0/16", "compute:az").await;
    let mut e = sample_endpoint(P2, &svc, consumer.vpc_id, consumer.subnet_id, 10);
    e.tags = vec![Tag {
        key: "k".into(),
        value: "v".into(),
    }];
    let created = store.create_endpoint(&e, None, 10, allow()).await.unwrap();
    assert_eq!(created.status, EndpointStatus::Creating);
    assert_eq!(
        created.ip.map(|i| i.to_string()).as_deref(),
        Some("10.5.0.3"),
        ".2 is the backend port"
    );
    assert_eq!(created.service_name, svc.full_name);
    let second = store
        .create_endpoint(
            &sample_endpoint(P2, &svc, consumer.vpc_id, consumer.subnet_id, 11),
            None,
            10,
            allow(),
        )
        .await
        .unwrap();
    assert!(second.marker_id > created.marker_id && created.marker_id >= 16_777_216);
    assert_eq!(
        store.get_endpoint(P2, e.id).await.unwrap().unwrap(),
        created
    );
    assert!(
        store.get_endpoint(P1, e.id).await.unwrap().is_none(),
        "the owner does not see the consumer's endpoint"
    );
    store.complete_creations(i64::MAX, 20, 100).await.unwrap();
    let settled = store.get_endpoint(P2, e.id).await.unwrap().unwrap();
    assert_eq!(
        (settled.status, settled.ever_accepted),
        (EndpointStatus::PendingAcceptance, false)
    );
    let s = store.get_service(P1, svc.id).await.unwrap().unwrap();
    assert_eq!((s.connection_count, s.endpoint_count), (2, 2));
    let accept: crate::ConnectionMutation = Arc::new(|e| {
        let next = e
            .status
            .apply(vpcep_domain::endpoint::ConnectionAction::Receive)?;
        e.set_status(next);
        Ok(())
    });
    let foreign = Uuid::new_v4();
    let results = store
        .modify_connections(P1, svc.id, vec![e.id, foreign], 30, accept.clone())
        .await
        .unwrap();
    assert_eq!(
        results[0].endpoint.as_ref().unwrap().status,
        EndpointStatus::Accepted
    );
    assert!(results[0].error.is_none());
    assert_eq!(
        results[1].error.as_ref().unwrap().code,
        ErrorCode::EndpointNotFound
    );
    assert!(results[1].endpoint.is_none());
    let again = store
        .modify_connections(P1, svc.id, vec![e.id], 31, accept)
        .await
        .unwrap();
    assert_eq!(
        again[0].error.as_ref().unwrap().code,
        ErrorCode::EndpointConnected
    );
    let unchanged = again[0].endpoint.as_ref().unwrap();
    assert_eq!(
        (unchanged.status, unchanged.updated_at),
        (EndpointStatus::Accepted, 30),
        "a refusal shows the connection as it is"
    );
    assert_eq!(
        code_of(
            store
                .modify_connections(P2, svc.id, vec![e.id], 31, Arc::new(|_| Ok(())))
                .await
                .unwrap_err()
        ),
        ErrorCode::NotFound
    );
    let filter = crate::ConnectionFilter {
        status: Some(EndpointStatus::Accepted),
        ..Default::default()
    };
    let (conns, n) = store
        .list_connections(P1, svc.id, &filter, &Page::default())
        .await
        .unwrap();
    assert_eq!((n, conns[0].id, conns[0].ever_accepted), (1, e.id, true));
    let (mine, n) = store
        .list_endpoints(
            P2,
            &crate::EndpointFilter {
                service_name_contains: Some("SVC".into()),
                ..Default::default()
            },
            &Page::default(),
        )
        .await
        .unwrap();
    assert_eq!((n, mine.len()), (2, 2));
    store
        .modify_endpoint(P2, e.id, 40, Box::new(Endpoint::begin_delete))
        .await
        .unwrap();
    assert_eq!(
        code_of(
            store
                .modify_endpoint(P2, e.id, 41, Box::new(Endpoint::begin_delete))
                .await
                .unwrap_err()
        ),
        ErrorCode::EndpointDeleting
    );
    store.complete_deletions(i64::MAX, 100).await.unwrap();
    assert!(store.get_endpoint(P2, e.id).await.unwrap().is_none());
    let ips = store
        .list_private_ips(P2, consumer.subnet_id, 100, None)
        .await
        .unwrap();
    assert_eq!(ips.len(), 2, "backend port and the second endpoint remain");
    assert!(store
        .project_tags(P2, ResourceKind::Endpoint)
        .await
        .unwrap()
        .is_empty());
    let s = store.get_service(P1, svc.id).await.unwrap().unwrap();
    assert_eq!((s.connection_count, s.endpoint_count), (1, 1));
}

/// A refused endpoint create leaves nothing: no row, no address, no quota; `port_ip` must be
/// inside the subnet and free; the endpoint quota holds under concurrency.
pub async fn endpoint_creates_are_all_or_nothing(store: Arc<SqlStore>) {
    let svc = available_service(&store, P1, false).await;
    let c = make_backend_with(&store, P2, "10.6.0.0/16", "compute:az").await;
    let refused = store
        .create_endpoint(
            &sample_endpoint(P2, &svc, c.vpc_id, c.subnet_id, 1),
            None,
            10,
            Box::new(|_, _| {
                Err(vpcep_domain::ApiError::new(
                    ErrorCode::NoConnectPermission,
                    "no",
                ))
            }),
        )
        .await
        .unwrap_err();
    assert_eq!(code_of(refused), ErrorCode::NoConnectPermission);
    assert_eq!(
        store
            .list_private_ips(P2, c.subnet_id, 100, None)
            .await
            .unwrap()
            .len(),
        1
    );
    let ip = |s: &str| Some(s.parse::<std::net::Ipv4Addr>().unwrap());
    let outside = store
        .create_endpoint(
            &sample_endpoint(P2, &svc, c.vpc_id, c.subnet_id, 1),
            ip("10.7.0.9"),
            10,
            allow(),
        )
        .await
        .unwrap_err();
    assert_eq!(code_of(outside), ErrorCode::PortIpNotInSubnet);
    let taken = store
        .create_endpoint(
            &sample_endpoint(P2, &svc, c.vpc_id, c.subnet_id, 1),
            ip("10.6.0.2"),
            10,
            allow(),
        )
        .await
        .unwrap_err();
    assert_eq!(code_of(taken), ErrorCode::PortIpInUse);
    let chosen = store
        .create_endpoint(
            &sample_endpoint(P2, &svc, c.vpc_id, c.subnet_id, 1),
            ip("10.6.0.77"),
            10,
            allow(),
        )
        .await
        .unwrap();
    assert_eq!(chosen.ip, ip("10.6.0.77"));
    let mut wrong_vpc = sample_endpoint(P2, &svc, c.vpc_id, c.subnet_id, 1);
    wrong_vpc.vpc_id = make_backend_with(&store, P2, "10.8.0.0/16", "compute:az")
        .await
        .vpc_id;
    assert_eq!(
        code_of(
            store
                .create_endpoint(&wrong_vpc, None, 10, allow())
                .await
                .unwrap_err()
        ),
        ErrorCode::SubnetNotInVpc
    );
    let mut tasks = Vec::new();
    for i in 0..12 {
        let store = store.clone();
        let e = sample_endpoint(P2, &svc, c.vpc_id, c.subnet_id, i);
        tasks.push(tokio::spawn(async move {
            store.create_endpoint(&e, None, 4, allow()).await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(e) => assert_eq!(code_of(e), ErrorCode::QuotaExceeded),
        }
    }
    assert_eq!(ok, 3, "one endpoint already counts against the quota of 4");
    let (_, n) = store
        .list_endpoints(P2, &crate::EndpointFilter::default(), &Page::default())
        .await
        .unwrap();
    assert_eq!(n, 4);
}

/// Tags of services and endpoints change in one transaction, are listed per project and feed
/// the tag queries with the resource names.
pub async fn tags_change_and_query(store: &SqlStore) {
    let svc = available_service(store, P1, false).await;
    let add = |k: &'static str| -> crate::TagMutation {
        Box::new(move |t: &mut Vec<Tag>| {
            t.push(Tag {
                key: k.into(),
                value: "1".into(),
            });
            t.sort();
            Ok(())
        })
    };
    store
        .modify_tags(P1, ResourceKind::EndpointService, svc.id, add("b"))
        .await
        .unwrap();
    store
        .modify_tags(P1, ResourceKind::EndpointService, svc.id, add("a"))
        .await
        .unwrap();
    let refused = store
        .modify_tags(
            P1,
            ResourceKind::EndpointService,
            svc.id,
            Box::new(|t: &mut Vec<Tag>| {
                t.clear();
                Err(vpcep_domain::ApiError::new(ErrorCode::TagTooMany, "no"))
            }),
        )
        .await
        .unwrap_err();
    assert_eq!(code_of(refused), ErrorCode::TagTooMany);
    assert_eq!(
        store
            .get_service(P1, svc.id)
            .await
            .unwrap()
            .unwrap()
            .tags
            .len(),
        2,
        "a refused change writes nothing"
    );
    assert_eq!(
        code_of(
            store
                .modify_tags(P2, ResourceKind::EndpointService, svc.id, add("c"))
                .await
                .unwrap_err()
        ),
        ErrorCode::NotFound
    );
    assert_eq!(
        code_of(
            store
                .modify_tags(P1, ResourceKind::Endpoint, svc.id, add("c"))
                .await
                .unwrap_err()
        ),
        ErrorCode::NotFound
    );
    let all = store
        .project_tags(P1, ResourceKind::EndpointService)
        .await
        .unwrap();
    assert_eq!(
        all.iter().map(|t| t.key.as_str()).collect::<Vec<_>>(),
        vec!["a", "b"]
    );
    let res = store
        .tagged_resources(P1, ResourceKind::EndpointService)
        .await
        .unwrap();
    let mine = res.iter().find(|r| r.id == svc.id.to_string()).unwrap();
    assert_eq!(
        (mine.name.as_str(), mine.tags.len()),
        (svc.full_name.as_str(), 2)
    );
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

fn domain_entry(i: usize) -> String {
    format!("iam:domain::{i:032x}")
}

async fn perms_of(store: &SqlStore, project: &str, service: Uuid) -> (Vec<Permission>, u64) {
    store
        .list_permissions(
            project,
            service,
            None,
            &Page {
                limit: 500,
                sort_dir: SortDir::Asc,
                ..Page::default()
            },
        )
        .await
        .unwrap()
}

async fn new_service(store: &SqlStore, project: &str) -> EndpointService {
    let b = make_backend(store, project).await;
    let s = sample_service(project, &b, &[(80, 80)], 1);
    store.create_service(&s, 100).await.unwrap();
    s
}

/// Adding is idempotent (an entry present keeps its record), removing an absent entry is a
/// no-op, entries round-trip byte for byte, and another project's or an unknown service is 404.
pub async fn permissions_add_idempotent_remove_tolerant(store: &SqlStore) {
    let s = new_service(store, P1).await;
    let d = domain_entry(7);
    let org = "organizations:orgPath::o-1/r-2/ou-3/*";
    let dom = |e: &str, t| sample_permission(s.id, e, PermissionType::DomainId, "", t);
    let first = store
        .change_permissions(
            P1,
            s.id,
            10,
            PermissionChange::Add(vec![dom(&d, 10), dom("*", 10), dom(&d, 10)]),
        )
        .await
        .unwrap();
    assert_eq!(
        first
            .iter()
            .map(|p| p.permission.as_str())
            .collect::<Vec<_>>(),
        vec![d.as_str(), "*"]
    );
    let again = store
        .change_permissions(P1, s.id, 20, PermissionChange::Add(vec![dom(&d, 20)]))
        .await
        .unwrap();
    assert_eq!(again, vec![first[0].clone()], "the present record is kept");
    store
        .change_permissions(
            P1,
            s.id,
            30,
            PermissionChange::Add(vec![sample_permission(
                s.id,
                org,
                PermissionType::OrgPath,
                "",
                30,
            )]),
        )
        .await
        .unwrap();
    let (all, n) = perms_of(store, P1, s.id).await;
    assert_eq!(n, 3);
    assert_eq!(all[2].permission, org);
    assert_eq!(all[2].permission_type, PermissionType::OrgPath);
    assert_eq!(all[0], first[0], "every field round-trips");
    let removed = store
        .change_permissions(
            P1,
            s.id,
            40,
            PermissionChange::RemoveEntries(vec![d.clone(), domain_entry(8)]),
        )
        .await
        .unwrap();
    assert_eq!(removed, vec![first[0].clone()]);
    let none = store
        .change_permissions(
            P1,
            s.id,
            50,
            PermissionChange::RemoveEntries(vec![d.clone()]),
        )
        .await
        .unwrap();
    assert!(none.is_empty());
    assert_eq!(perms_of(store, P1, s.id).await.1, 2);
    for (project, id) in [(P2, s.id), (P1, Uuid::new_v4())] {
        assert_eq!(
            code_of(
                store
                    .list_permissions(project, id, None, &Page::default())
                    .await
                    .unwrap_err()
            ),
            ErrorCode::NotFound
        );
        assert_eq!(
            code_of(
                store
                    .change_permissions(project, id, 60, PermissionChange::Add(vec![dom("*", 60)]))
                    .await
                    .unwrap_err()
            ),
            ErrorCode::NotFound
        );
    }
    let got = store.get_service(P1, s.id).await.unwrap().unwrap();
    assert_eq!(
        got.updated_at, s.updated_at,
        "permissions do not touch the service"
    );
}

/// Batch create updates present records' descriptions; batch delete by id is all or nothing;
/// a description update names one record of the service.
pub async fn permission_batches_are_atomic(store: &SqlStore) {
    let s = new_service(store, P1).await;
    let other = {
        let b = make_backend_with(store, P1, "10.1.0.0/16", "compute:az").await;
        let o = sample_service(P1, &b, &[(80, 80)], 1);
        store.create_service(&o, 100).await.unwrap();
        o
    };
    let rec = |e: &str, d: &str, t| sample_permission(s.id, e, PermissionType::DomainId, d, t);
    let (a, b, c) = (domain_entry(1), domain_entry(2), domain_entry(3));
    let created = store
        .change_permissions(
            P1,
            s.id,
            10,
            PermissionChange::Upsert(vec![rec(&a, "x", 10), rec(&b, "y", 10)]),
        )
        .await
        .unwrap();
    assert_eq!(created.len(), 2);
    let second = store
        .change_permissions(
            P1,
            s.id,
            20,
            PermissionChange::Upsert(vec![rec(&a, "z", 20), rec(&c, "", 20), rec(&b, "y", 20)]),
        )
        .await
        .unwrap();
    assert_eq!(
        (
            second[0].id,
            second[0].description.as_str(),
            second[0].created_at,
            second[0].updated_at
        ),
        (created[0].id, "z", 10, 20),
        "a present record takes the new description"
    );
    assert_eq!(second[1].permission, c);
    assert_eq!(
        second[2], created[1],
        "an unchanged description leaves the record as it was"
    );
    assert_eq!(perms_of(store, P1, s.id).await.1, 3);
    let foreign = store
        .change_permissions(
            P1,
            other.id,
            25,
            PermissionChange::Add(vec![sample_permission(
                other.id,
                &a,
                PermissionType::DomainId,
                "",
                25,
            )]),
        )
        .await
        .unwrap();
    for ids in [
        vec![created[0].id, Uuid::new_v4()],
        vec![created[0].id, foreign[0].id],
    ] {
        assert_eq!(
            code_of(
                store
                    .change_permissions(P1, s.id, 30, PermissionChange::RemoveIds(ids))
                    .await
                    .unwrap_err()
            ),
            ErrorCode::NotFound
        );
        assert_eq!(perms_of(store, P1, s.id).await.1, 3, "nothing was deleted");
    }
    let removed = store
        .change_permissions(
            P1,
            s.id,
            40,
            PermissionChange::RemoveIds(vec![created[1].id, created[0].id, created[1].id]),
        )
        .await
        .unwrap();
    assert_eq!(
        removed.iter().map(|p| p.id).collect::<Vec<_>>(),
        vec![created[1].id, created[0].id]
    );
    let (left, n) = perms_of(store, P1, s.id).await;
    assert_eq!((n, left[0].permission.as_str()), (1, c.as_str()));
    assert_eq!(
        perms_of(store, P1, other.id).await.1,
        1,
        "other services keep theirs"
    );
    let described = store
        .change_permissions(
            P1,
            s.id,
            50,
            PermissionChange::Describe {
                id: left[0].id,
                description: "new".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (
            described.len(),
            described[0].description.as_str(),
            described[0].updated_at
        ),
        (1, "new", 50)
    );
    assert_eq!(perms_of(store, P1, s.id).await.0[0].description, "new");
    for id in [Uuid::new_v4(), foreign[0].id] {
        assert_eq!(
            code_of(
                store
                    .change_permissions(
                        P1,
                        s.id,
                        60,
                        PermissionChange::Describe {
                            id,
                            description: "x".into(),
                        },
                    )
                    .await
                    .unwrap_err()
            ),
            ErrorCode::NotFound
        );
    }
}

/// A service holds at most 500 records: an add that would pass the limit is EndPoint.3049 and
/// adds nothing; entries already present do not count again.
pub async fn permission_limit_holds(store: &SqlStore) {
    let s = new_service(store, P1).await;
    let recs = |range: std::ops::Range<usize>| {
        range
            .map(|i| sample_permission(s.id, &domain_entry(i), PermissionType::DomainId, "", 1))
            .collect::<Vec<_>>()
    };
    store
        .change_permissions(P1, s.id, 1, PermissionChange::Add(recs(0..499)))
        .await
        .unwrap();
    for change in [
        PermissionChange::Add(recs(499..501)),
        PermissionChange::Upsert(recs(498..501)),
    ] {
        assert_eq!(
            code_of(
                store
                    .change_permissions(P1, s.id, 2, change)
                    .await
                    .unwrap_err()
            ),
            ErrorCode::PermissionsTooMany
        );
        assert_eq!(perms_of(store, P1, s.id).await.1, 499);
    }
    store
        .change_permissions(P1, s.id, 3, PermissionChange::Add(recs(490..500)))
        .await
        .unwrap();
    assert_eq!(perms_of(store, P1, s.id).await.1, 500);
    store
        .change_permissions(P1, s.id, 4, PermissionChange::Upsert(recs(0..3)))
        .await
        .unwrap();
    assert_eq!(
        code_of(
            store
                .change_permissions(P1, s.id, 5, PermissionChange::Add(recs(500..501)))
                .await
                .unwrap_err()
        ),
        ErrorCode::PermissionsTooMany
    );
}

/// The permission list pages, sorts (ties in insertion order), filters case-insensitively with
/// literal wildcards, and answers an empty page with the true total past the end.
pub async fn permission_list_pages_sorts_and_filters(store: &SqlStore) {
    let s = new_service(store, P1).await;
    let mut ids = Vec::new();
    for i in 0..7usize {
        let e = if i == 3 {
            "iam:domain::abcdef0123456789abcdef0123456789".to_string()
        } else {
            domain_entry(i)
        };
        let r = store
            .change_permissions(
                P1,
                s.id,
                100 + i as i64,
                PermissionChange::Add(vec![sample_permission(
                    s.id,
                    &e,
                    PermissionType::DomainId,
                    "",
                    100 + i as i64,
                )]),
            )
            .await
            .unwrap();
        ids.push(r[0].id);
    }
    let list = |contains: Option<&'static str>, limit, offset, key, dir| async move {
        let (v, n) = store
            .list_permissions(
                P1,
                s.id,
                contains,
                &Page {
                    limit,
                    offset,
                    sort_key: key,
                    sort_dir: dir,
                },
            )
            .await
            .unwrap();
        (v.into_iter().map(|p| p.id).collect::<Vec<_>>(), n)
    };
    use SortKey::{CreatedAt, UpdatedAt};
    assert_eq!(
        list(None, 3, 0, CreatedAt, SortDir::Desc).await,
        (vec![ids[6], ids[5], ids[4]], 7)
    );
    assert_eq!(
        list(None, 3, 6, CreatedAt, SortDir::Desc).await,
        (vec![ids[0]], 7)
    );
    assert_eq!(
        list(None, 3, 7, CreatedAt, SortDir::Desc).await,
        (vec![], 7)
    );
    assert_eq!(
        list(None, 2, 0, CreatedAt, SortDir::Asc).await,
        (vec![ids[0], ids[1]], 7)
    );
    assert_eq!(
        list(Some("ABCDEF0123"), 10, 0, CreatedAt, SortDir::Desc).await,
        (vec![ids[3]], 1)
    );
    assert_eq!(list(Some("%"), 10, 0, CreatedAt, SortDir::Desc).await.1, 0);
    assert_eq!(
        list(Some("IAM:"), 10, 0, CreatedAt, SortDir::Desc).await.1,
        7
    );
    store
        .change_permissions(
            P1,
            s.id,
            999,
            PermissionChange::Describe {
                id: ids[2],
                description: "touched".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        list(None, 1, 0, UpdatedAt, SortDir::Desc).await.0,
        vec![ids[2]]
    );
    assert_eq!(
        list(None, 1, 0, CreatedAt, SortDir::Desc).await.0,
        vec![ids[6]]
    );
    // Records added in one call share created_at; insertion order breaks the tie.
    let batch: Vec<Permission> = (10..13)
        .map(|i| sample_permission(s.id, &domain_entry(i), PermissionType::DomainId, "", 5000))
        .collect();
    let added = store
        .change_permissions(P1, s.id, 5000, PermissionChange::Add(batch))
        .await
        .unwrap();
    assert_eq!(
        list(None, 3, 0, CreatedAt, SortDir::Desc).await.0,
        vec![added[2].id, added[1].id, added[0].id]
    );
}

/// Concurrent adds of one entry leave one record, and every caller gets that record back.
pub async fn concurrent_permission_adds_leave_one_record(store: Arc<SqlStore>) {
    let s = new_service(&store, P1).await;
    let entry = domain_entry(42);
    let mut tasks = Vec::new();
    for i in 0..16usize {
        let store = store.clone();
        let entry = entry.clone();
        tasks.push(tokio::spawn(async move {
            let change = if i % 2 == 0 {
                PermissionChange::Add
            } else {
                PermissionChange::Upsert
            };
            store
                .change_permissions(
                    P1,
                    s.id,
                    i as i64,
                    change(vec![
                        sample_permission(s.id, &entry, PermissionType::DomainId, "", i as i64),
                        sample_permission(
                            s.id,
                            &domain_entry(100 + i),
                            PermissionType::DomainId,
                            "",
                            i as i64,
                        ),
                    ]),
                )
                .await
        }));
    }
    let mut ids = std::collections::HashSet::new();
    for t in tasks {
        ids.insert(t.await.unwrap().unwrap()[0].id);
    }
    assert_eq!(ids.len(), 1, "one record for the shared entry");
    let (_, n) = store
        .list_permissions(P1, s.id, Some(&entry), &Page::default())
        .await
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(perms_of(&store, P1, s.id).await.1, 17);
}

/// The reconciler removes a service's permission records with the service.
pub async fn deleted_services_lose_their_permissions(store: &SqlStore) {
    let s = new_service(store, P1).await;
    store
        .change_permissions(
            P1,
            s.id,
            5,
            PermissionChange::Add(vec![sample_permission(
                s.id,
                "*",
                PermissionType::DomainId,
                "",
                5,
            )]),
        )
        .await
        .unwrap();
    store
        .modify_service(
            P1,
            s.id,
            10,
            Box::new(|s| {
                s.status = ServiceStatus::Deleting;
                Ok(())
            }),
        )
        .await
        .unwrap();
    assert_eq!(perms_of(store, P1, s.id).await.1, 1, "kept while deleting");
    assert_eq!(store.complete_deletions(10, 100).await.unwrap(), 1);
    assert_eq!(
        code_of(
            store
                .list_permissions(P1, s.id, None, &Page::default())
                .await
                .unwrap_err()
        ),
        ErrorCode::NotFound
    );
    // A service stored again under the same id starts with no records.
    let b = make_backend_with(store, P1, "10.2.0.0/16", "compute:az").await;
    let mut again = sample_service(P1, &b, &[(80, 80)], 20);
    again.id = s.id;
    store.create_service(&again, 100).await.unwrap();
    assert_eq!(perms_of(store, P1, s.id).await.1, 0);
}

/// Usage counters per project and kind: services count from creation until the reconciler
/// removes them; endpoints start at 0.
pub async fn quota_usage_counts_per_project(store: &SqlStore) {
    let usage =
        |p: &'static str, r: &'static str| async move { store.project_usage(p, r).await.unwrap() };
    assert_eq!(usage(P1, USAGE_ENDPOINT_SERVICE).await, 0);
    let a = new_service(store, P1).await;
    let b = make_backend_with(store, P1, "10.1.0.0/16", "compute:az").await;
    store
        .create_service(&sample_service(P1, &b, &[(81, 81)], 2), 100)
        .await
        .unwrap();
    assert_eq!(usage(P1, USAGE_ENDPOINT_SERVICE).await, 2);
    assert_eq!(usage(P1, USAGE_ENDPOINT).await, 0);
    assert_eq!(usage(P2, USAGE_ENDPOINT_SERVICE).await, 0);
    store
        .modify_service(
            P1,
            a.id,
            10,
            Box::new(|s| {
                s.status = ServiceStatus::Deleting;
                Ok(())
            }),
        )
        .await
        .unwrap();
    assert_eq!(
        usage(P1, USAGE_ENDPOINT_SERVICE).await,
        2,
        "deleting still counts"
    );
    store.complete_deletions(10, 100).await.unwrap();
    assert_eq!(usage(P1, USAGE_ENDPOINT_SERVICE).await, 1);
}

/// Server resources and supported editions round-trip through `modify_service` and show in
/// reads and lists.
pub async fn server_resources_round_trip(store: &SqlStore) {
    let s = new_service(store, P1).await;
    let resources = vec![
        ServerResource {
            resource_id: "lb-1".into(),
            availability_zone_id: Some("az1".into()),
        },
        ServerResource {
            resource_id: "lb-2 ü".into(),
            availability_zone_id: None,
        },
    ];
    let r = resources.clone();
    let changed = store
        .modify_service(
            P1,
            s.id,
            50,
            Box::new(move |s| {
                s.server_resources = r;
                s.supported_editions = vec!["basic".into(), "profession".into()];
                Ok(())
            }),
        )
        .await
        .unwrap();
    assert_eq!(changed.updated_at, 50);
    let got = store.get_service(P1, s.id).await.unwrap().unwrap();
    assert_eq!(got.server_resources, resources);
    assert_eq!(got.supported_editions, vec!["basic", "profession"]);
    let (listed, _) = store
        .list_services(
            &ServiceScope::Project(P1.into()),
            &ServiceFilter::default(),
            &Page::default(),
        )
        .await
        .unwrap();
    assert_eq!(listed[0].server_resources, resources);
}

/// Counts the outcomes of concurrent creates: how many succeeded; every refusal must be the
/// network quota's 409 VPC.0114.
async fn count_created<T>(tasks: Vec<tokio::task::JoinHandle<crate::StoreResult<T>>>) -> usize {
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(e) => assert_eq!(code_of(e), ErrorCode::NetworkQuotaExceeded),
        }
    }
    ok
}

/// The VPC, subnet and port quotas hold exactly under concurrent creates (one counter row per
/// project and kind, taken in each create's transaction); a refused create leaves no row and no
/// address; deletions give quota back; other projects are not affected.
pub async fn network_quotas_hold_under_concurrency(store: Arc<SqlStore>) {
    let mut tasks = Vec::new();
    for i in 0..12u8 {
        let store = store.clone();
        let vpc = sample_vpc(P1, &format!("10.{i}.0.0/16"));
        tasks.push(tokio::spawn(async move { store.create_vpc(&vpc, 4).await }));
    }
    assert_eq!(count_created(tasks).await, 4);
    assert_eq!(store.project_usage(P1, USAGE_VPC).await.unwrap(), 4);
    let vpcs = store.list_vpcs(P1, None, 100, None).await.unwrap();
    assert_eq!(vpcs.len(), 4, "refused VPCs leave no row");
    store
        .create_vpc(&sample_vpc(P2, "10.0.0.0/16"), 1)
        .await
        .unwrap();

    let vpc = vpcs[0].clone();
    let mut tasks = Vec::new();
    for i in 0..10u8 {
        let store = store.clone();
        let subnet = sample_subnet(&vpc, &format!("{}.{i}.0/24", octets(&vpc, 2)));
        tasks.push(tokio::spawn(async move {
            store.create_subnet(&subnet, 3).await
        }));
    }
    assert_eq!(count_created(tasks).await, 3);
    assert_eq!(store.project_usage(P1, USAGE_SUBNET).await.unwrap(), 3);
    let subnets = store.list_subnets(P1, None, 100, None).await.unwrap();
    assert_eq!(subnets.len(), 3);

    let subnet = subnets[0].clone();
    let mut tasks = Vec::new();
    for i in 0..10 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .create_port(
                    P1,
                    NewPort::simple(subnet.id, None, "compute:az1"),
                    Uuid::new_v4(),
                    random_mac(i),
                    1,
                    5,
                )
                .await
        }));
    }
    assert_eq!(count_created(tasks).await, 5);
    assert_eq!(store.project_usage(P1, USAGE_PORT).await.unwrap(), 5);
    let ips = store
        .list_private_ips(P1, subnet.id, 100, None)
        .await
        .unwrap();
    assert_eq!(ips.len(), 5, "refused ports hold no address");

    // Deleting gives quota back, one unit each.
    let ports = store
        .list_ports(P1, &crate::PortFilter::default(), 100, None)
        .await
        .unwrap();
    store.delete_port(P1, ports[0].id).await.unwrap();
    assert_eq!(store.project_usage(P1, USAGE_PORT).await.unwrap(), 4);
    let spare = subnets[2].clone();
    store
        .delete_subnet(P1, spare.vpc_id, spare.id)
        .await
        .unwrap();
    assert_eq!(store.project_usage(P1, USAGE_SUBNET).await.unwrap(), 2);
    store.delete_vpc(P1, vpcs[3].id).await.unwrap();
    assert_eq!(store.project_usage(P1, USAGE_VPC).await.unwrap(), 3);
    store
        .create_vpc(&sample_vpc(P1, "10.200.0.0/16"), 4)
        .await
        .unwrap();
    assert_eq!(
        code_of(
            store
                .create_vpc(&sample_vpc(P1, "10.201.0.0/16"), 4)
                .await
                .unwrap_err()
        ),
        ErrorCode::NetworkQuotaExceeded
    );
    assert_eq!(store.project_usage(P2, USAGE_VPC).await.unwrap(), 1);
}

/// The first `n` octets of a VPC's network address, dotted.
fn octets(vpc: &Vpc, n: usize) -> String {
    vpc.cidr.network().octets()[..n]
        .iter()
        .map(u8::to_string)
        .collect::<Vec<_>>()
        .join(".")
}

/// Runs every check, each on a fresh database of `backend`.
/// A VPC of `project` with `cidr` (in network namespace `netns`, if any) and a subnet on its
/// first /24; answers (vpc, subnet).
async fn network_in(
    store: &SqlStore,
    project: &str,
    cidr: &str,
    netns: Option<&str>,
) -> (Uuid, Uuid) {
    let mut vpc = sample_vpc(project, cidr);
    vpc.netns = netns.map(str::to_string);
    store.create_vpc(&vpc, NO_QUOTA).await.expect("create vpc");
    let sub =
        ipnet::Ipv4Net::new(vpc.cidr.network(), 24.max(vpc.cidr.prefix_len())).expect("subnet");
    let subnet = sample_subnet(&vpc, &sub.to_string());
    store
        .create_subnet(&subnet, NO_QUOTA)
        .await
        .expect("create subnet");
    (vpc.id, subnet.id)
}

fn ipv4(s: &str) -> Option<std::net::Ipv4Addr> {
    Some(s.parse().expect("ipv4"))
}

/// The refusal the snapshot carries for `endpoint` (loopback and 10/8 granted), or `None` when the
/// data plane may serve it. Panics when the endpoint is not in the snapshot at all.
async fn refusal(store: &SqlStore, endpoint: Uuid) -> Option<String> {
    let policy = vpcep_domain::dataplane::AddressPolicy::new(
        vpcep_domain::dataplane::AddressPolicy::parse_cidrs("127.0.0.0/8,10.0.0.0/8").unwrap(),
        vec![],
    );
    let snap = store.dataplane_snapshot(&policy).await.unwrap();
    snap.endpoints
        .into_iter()
        .find(|e| e.endpoint_id == endpoint.to_string())
        .unwrap_or_else(|| panic!("endpoint {endpoint} is not in the snapshot"))
        .refused
}

/// Every data-plane address has one owner per address space, decided by the store: two tenants'
/// VPCs of the same CIDR in the host's space cannot both hold an address (the first does; with
/// claims enforced a second is EndPoint.2042 / 3046 and writes nothing, and allocation steers
/// clear; without, the second is stored but never served); the same address in two network
/// namespaces is two addresses; resources of one VPC share its address; and when the owner's
/// last resource goes, the oldest waiter takes the address over.
pub async fn address_claims_have_one_owner(db: &TestDb) {
    let plain = db.store().await;
    let enforced = db
        .store_with(StoreOptions {
            enforce_claims: true,
            ..StoreOptions::default()
        })
        .await;
    let store = &*enforced;
    let svc = available_service(store, P1, false).await;
    let (v1, s1) = network_in(store, P1, "127.61.0.0/16", None).await;
    let (v2, s2) = network_in(store, P2, "127.61.0.0/16", None).await;
    let x = "127.61.0.10";

    // The first claimant holds the address.
    let first = store
        .create_endpoint(&sample_endpoint(P1, &svc, v1, s1, 1), ipv4(x), 100, allow())
        .await
        .unwrap();
    store.complete_creations(i64::MAX, 2, 100).await.unwrap();
    assert_eq!(refusal(store, first.id).await, None);

    // Another VPC of the same space: refused, and nothing is written.
    let used = plain.project_usage(P2, USAGE_ENDPOINT).await.unwrap();
    let e = store
        .create_endpoint(&sample_endpoint(P2, &svc, v2, s2, 2), ipv4(x), 100, allow())
        .await
        .unwrap_err();
    assert_eq!(code_of(e), ErrorCode::PortIpInUse);
    assert_eq!(plain.project_usage(P2, USAGE_ENDPOINT).await.unwrap(), used);
    // An allocated address steers clear of what another VPC holds.
    let mut held = vec![];
    for t in 0..12 {
        let e = store
            .create_endpoint(
                &sample_endpoint(P1, &svc, v1, s1, 3 + t),
                None,
                100,
                allow(),
            )
            .await
            .unwrap();
        held.push(e.ip.unwrap());
    }
    let auto = store
        .create_endpoint(&sample_endpoint(P2, &svc, v2, s2, 20), None, 100, allow())
        .await
        .unwrap();
    assert!(
        !held.contains(&auto.ip.unwrap()) && auto.ip != ipv4(x),
        "{:?} is held by the other VPC",
        auto.ip
    );

    // Without enforcement (no data plane) the second is stored, but never served.
    let (v3, s3) = network_in(store, P2, "127.61.0.0/16", None).await;
    let squatter = plain
        .create_endpoint(
            &sample_endpoint(P2, &svc, v3, s3, 21),
            ipv4(x),
            100,
            allow(),
        )
        .await
        .unwrap();
    store.complete_creations(i64::MAX, 22, 100).await.unwrap();
    let why = refusal(store, squatter.id).await.expect("refused");
    assert!(why.contains("held by another VPC"), "{why}");
    assert_eq!(
        refusal(store, first.id).await,
        None,
        "the owner keeps serving"
    );

    // Another namespace is another address space: the same address there is another one.
    let (h, hs) = network_in(store, P1, "10.61.0.0/16", None).await;
    let (n, ns) = network_in(store, P2, "10.61.0.0/16", Some("tenant-b")).await;
    let in_host = store
        .create_endpoint(
            &sample_endpoint(P1, &svc, h, hs, 23),
            ipv4("10.61.0.10"),
            100,
            allow(),
        )
        .await
        .unwrap();
    let in_netns = store
        .create_endpoint(
            &sample_endpoint(P2, &svc, n, ns, 23),
            ipv4("10.61.0.10"),
            100,
            allow(),
        )
        .await
        .unwrap();
    store.complete_creations(i64::MAX, 24, 100).await.unwrap();
    assert_eq!(refusal(store, in_host.id).await, None);
    assert_eq!(refusal(store, in_netns.id).await, None);

    // A backend is an address too: a service of another VPC on the owner's address is 3046.
    let port = store
        .create_port(
            P2,
            NewPort::simple(s2, ipv4("127.61.0.200"), "compute:az"),
            Uuid::new_v4(),
            random_mac(9),
            1,
            NO_QUOTA,
        )
        .await
        .unwrap();
    let mut backend = sample_service(
        P2,
        &BackendRef {
            vpc_id: v2,
            subnet_id: s2,
            port_id: port.id,
        },
        &[(81, 8081)],
        30,
    );
    backend.ip = Some(x.into());
    assert_eq!(
        code_of(store.create_service(&backend, 100).await.unwrap_err()),
        ErrorCode::IpConflictsWithService
    );
    backend.ip = None;
    store.create_service(&backend, 100).await.unwrap();

    // The owner's last resource goes: the oldest waiter (the squatter) takes the address over.
    store
        .modify_endpoint(
            P1,
            first.id,
            40,
            Box::new(|e| {
                e.status = EndpointStatus::Deleting;
                Ok(())
            }),
        )
        .await
        .unwrap();
    store.complete_deletions(i64::MAX, 100).await.unwrap();
    assert!(store.settle_claims(100).await.unwrap() >= 1);
    assert_eq!(refusal(store, squatter.id).await, None);
}

/// Concurrent claims of one address from many VPCs of one space (e.g. through several nodes):
/// exactly one create succeeds.
pub async fn concurrent_claims_admit_one(db: &TestDb) {
    let store = db
        .store_with(StoreOptions {
            enforce_claims: true,
            ..StoreOptions::default()
        })
        .await;
    let svc = available_service(&store, P1, false).await;
    let mut nets = Vec::new();
    for _ in 0..6 {
        nets.push(network_in(&store, P2, "127.62.0.0/16", None).await);
    }
    let tasks: Vec<_> = nets
        .into_iter()
        .enumerate()
        .map(|(i, (v, s))| {
            let store = store.clone();
            let e = sample_endpoint(P2, &svc, v, s, i as i64);
            tokio::spawn(async move {
                store
                    .create_endpoint(&e, ipv4("127.62.0.10"), 100, allow())
                    .await
            })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(e) => assert_eq!(code_of(e), ErrorCode::PortIpInUse),
        }
    }
    assert_eq!(ok, 1, "exactly one VPC holds the address");
}

pub async fn run_all(backend: Backend) {
    macro_rules! check {
        ($f:ident, $arg:ident => $call:expr) => {{
            let Some(db) = TestDb::new(backend).await else {
                return;
            };
            let $arg = db.store().await;
            eprintln!("conformance ({backend:?}): {}", stringify!($f));
            $call;
            db.cleanup().await;
        }};
    }
    check!(service_round_trip, s => service_round_trip(&s).await);
    check!(port_claims_conflict_on_shared_port_id, s => port_claims_conflict_on_shared_port_id(&s).await);
    check!(concurrent_conflicting_creates_admit_one, s => concurrent_conflicting_creates_admit_one(s).await);
    check!(quota_holds_under_concurrency, s => quota_holds_under_concurrency(s).await);
    check!(network_quotas_hold_under_concurrency, s => network_quotas_hold_under_concurrency(s).await);
    check!(list_pages_sorts_and_filters, s => list_pages_sorts_and_filters(&s).await);
    check!(modify_is_transactional, s => modify_is_transactional(&s).await);
    check!(transitions_complete_when_due, s => transitions_complete_when_due(&s).await);
    check!(default_account_first_wins, s => default_account_first_wins(&s).await);
    check!(vpcs_round_trip_and_guard_deletion, s => vpcs_round_trip_and_guard_deletion(&s).await);
    check!(subnets_never_overlap, s => subnets_never_overlap(s).await);
    check!(ports_allocate_unique_addresses, s => ports_allocate_unique_addresses(s).await);
    check!(services_check_their_backend, s => services_check_their_backend(&s).await);
    check!(endpoint_lifecycle, s => endpoint_lifecycle(&s).await);
    check!(endpoint_creates_are_all_or_nothing, s => endpoint_creates_are_all_or_nothing(s).await);
    check!(tags_change_and_query, s => tags_change_and_query(&s).await);
    check!(permissions_add_idempotent_remove_tolerant, s => permissions_add_idempotent_remove_tolerant(&s).await);
    check!(permission_batches_are_atomic, s => permission_batches_are_atomic(&s).await);
    check!(permission_limit_holds, s => permission_limit_holds(&s).await);
    check!(permission_list_pages_sorts_and_filters, s => permission_list_pages_sorts_and_filters(&s).await);
    check!(concurrent_permission_adds_leave_one_record, s => concurrent_permission_adds_leave_one_record(s).await);
    check!(deleted_services_lose_their_permissions, s => deleted_services_lose_their_permissions(&s).await);
    check!(quota_usage_counts_per_project, s => quota_usage_counts_per_project(&s).await);
    check!(server_resources_round_trip, s => server_resources_round_trip(&s).await);
    macro_rules! check_db {
        ($f:ident) => {{
            let Some(db) = TestDb::new(backend).await else {
                return;
            };
            eprintln!("conformance ({backend:?}): {}", stringify!($f));
            $f(&db).await;
            db.cleanup().await;
        }};
    }
    check_db!(address_claims_have_one_owner);
    check_db!(concurrent_claims_admit_one);
}
