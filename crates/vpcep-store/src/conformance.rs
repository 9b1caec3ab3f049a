//! The behaviour every [`Store`] backend must show, as plain async checks. The store's own tests
//! run them on SQLite and PostgreSQL; so can any other crate that wants a fresh store.
//!
//! [`TestDb`] makes a fresh, migrated store: a temporary SQLite file, or a new schema in the
//! PostgreSQL database named by `VPCEP_TEST_POSTGRES_URL` (default
//! `postgres://root@127.0.0.1:5432/test`).

use crate::{open, ServiceFilter, ServiceLookup, ServiceScope, Store, StoreError, StoreOptions};
use std::sync::Arc;
use uuid::Uuid;
use vpcep_domain::list::{Page, SortDir, SortKey};
use vpcep_domain::model::{
    EndpointService, IpVersion, PortMapping, Protocol, ServerType, ServiceStatus, ServiceType, Tag,
    TcpProxy,
};
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
    pub async fn store(&self) -> Arc<dyn Store> {
        open(&self.url, StoreOptions::default())
            .await
            .expect("open store")
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

/// A service of project `project` on `port_id` with the given mappings, created at `t`.
pub fn sample_service(
    project: &str,
    port_id: Uuid,
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
        port_id,
        vpc_id: Uuid::new_v4(),
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
        connection_count: 0,
    }
}

fn code_of(e: StoreError) -> ErrorCode {
    match e {
        StoreError::Api(a) => a.code,
        other => panic!("expected an API error, got {other:?}"),
    }
}

/// Create, then read back by project, by id across projects and by full name: every field
/// round-trips, ports keep their order, tags come back sorted; another project sees nothing.
pub async fn service_round_trip(store: &dyn Store) {
    let mut s = sample_service(
        P1,
        Uuid::new_v4(),
        &[(8081, 80), (8080, 90)],
        1_700_000_000_123,
    );
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
pub async fn port_claims_conflict_on_shared_port_id(store: &dyn Store) {
    let port = Uuid::new_v4();
    store
        .create_service(&sample_service(P1, port, &[(80, 8080)], 1), 100)
        .await
        .unwrap();
    let same_client = sample_service(P1, port, &[(80, 9090)], 2);
    assert_eq!(
        code_of(store.create_service(&same_client, 100).await.unwrap_err()),
        ErrorCode::PortConflict
    );
    let same_server = sample_service(P2, port, &[(81, 8080)], 3);
    assert_eq!(
        code_of(store.create_service(&same_server, 100).await.unwrap_err()),
        ErrorCode::PortConflict
    );
    store
        .create_service(&sample_service(P1, port, &[(81, 8081)], 4), 100)
        .await
        .unwrap();
    store
        .create_service(&sample_service(P1, Uuid::new_v4(), &[(80, 8080)], 5), 100)
        .await
        .unwrap();
    // A refused create leaves nothing behind, not even its usage count.
    let (_, total) = store
        .list_services(
            &ServiceScope::Project(P1.into()),
            &ServiceFilter::default(),
            &Page::default(),
        )
        .await
        .unwrap();
    assert_eq!(total, 3);
    assert!(store
        .get_service(P1, same_client.id)
        .await
        .unwrap()
        .is_none());
}

/// Many concurrent creates with the same mapping on one port_id: exactly one is admitted.
pub async fn concurrent_conflicting_creates_admit_one(store: Arc<dyn Store>) {
    let port = Uuid::new_v4();
    let mut tasks = Vec::new();
    for i in 0..24 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .create_service(&sample_service(P1, port, &[(443, 8443)], i), 1000)
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
pub async fn quota_holds_under_concurrency(store: Arc<dyn Store>) {
    let mut tasks = Vec::new();
    for i in 0..20 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .create_service(&sample_service(P2, Uuid::new_v4(), &[(80, 80)], i), 5)
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
    let (all, total) = store
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
    assert_eq!((all.len(), total), (5, 5));
    let victim = all[0].id;
    store
        .modify_service(
            P2,
            victim,
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
        .create_service(&sample_service(P2, Uuid::new_v4(), &[(80, 80)], 99), 5)
        .await
        .unwrap();
}

/// Lists page, sort, filter and count; an offset past the end gives an empty page and the total.
pub async fn list_pages_sorts_and_filters(store: &dyn Store) {
    let scope = ServiceScope::Project(P1.into());
    let mut ids = Vec::new();
    for i in 0..7i64 {
        let mut s = sample_service(P1, Uuid::new_v4(), &[(80, 80)], 1000 + i);
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
    let (p, total) = store
        .list_services(&scope, &none, &page(3, 0, SortDir::Desc))
        .await
        .unwrap();
    assert_eq!(total, 7);
    assert_eq!(
        p.iter().map(|s| s.id).collect::<Vec<_>>(),
        vec![ids[6], ids[5], ids[4]]
    );
    let (p, _) = store
        .list_services(&scope, &none, &page(3, 6, SortDir::Desc))
        .await
        .unwrap();
    assert_eq!(p.iter().map(|s| s.id).collect::<Vec<_>>(), vec![ids[0]]);
    let (p, total) = store
        .list_services(&scope, &none, &page(3, 7, SortDir::Desc))
        .await
        .unwrap();
    assert!(p.is_empty());
    assert_eq!(total, 7);
    let (p, _) = store
        .list_services(&scope, &none, &page(2, 0, SortDir::Asc))
        .await
        .unwrap();
    assert_eq!(
        p.iter().map(|s| s.id).collect::<Vec<_>>(),
        vec![ids[0], ids[1]]
    );
    let by_name = ServiceFilter {
        name_contains: Some("special_ONE".into()),
        ..Default::default()
    };
    let (p, total) = store
        .list_services(&scope, &by_name, &page(10, 0, SortDir::Desc))
        .await
        .unwrap();
    assert_eq!((p.len(), total, p[0].id), (1, 1, ids[3]));
    let wildcard = ServiceFilter {
        name_contains: Some("%".into()),
        ..Default::default()
    };
    assert_eq!(
        store
            .list_services(&scope, &wildcard, &Page::default())
            .await
            .unwrap()
            .1,
        0,
        "LIKE wildcards are literal"
    );
    let by_status = ServiceFilter {
        status: Some(ServiceStatus::Available),
        ..Default::default()
    };
    let (p, total) = store
        .list_services(&scope, &by_status, &Page::default())
        .await
        .unwrap();
    assert_eq!((p.len(), total, p[0].id), (1, 1, ids[5]));
    let by_id = ServiceFilter {
        id: Some(ids[2].to_string()),
        ..Default::default()
    };
    assert_eq!(
        store
            .list_services(&scope, &by_id, &Page::default())
            .await
            .unwrap()
            .0[0]
            .id,
        ids[2]
    );
    let other = ServiceScope::Project(P2.into());
    assert_eq!(
        store
            .list_services(&other, &none, &Page::default())
            .await
            .unwrap()
            .1,
        0
    );
    let domains = ServiceScope::Domains(vec![D1.into()]);
    assert_eq!(
        store
            .list_services(&domains, &none, &Page::default())
            .await
            .unwrap()
            .1,
        7
    );
    assert_eq!(
        store
            .list_services(&ServiceScope::Domains(vec![]), &none, &Page::default())
            .await
            .unwrap()
            .1,
        0
    );
}

/// `modify_service` writes what the mutation decided, in one transaction: a refused mutation
/// or a port conflict leaves the row and its claims as they were.
pub async fn modify_is_transactional(store: &dyn Store) {
    let port = Uuid::new_v4();
    let a = sample_service(P1, port, &[(80, 8080)], 1);
    let b = sample_service(P1, port, &[(81, 8081)], 2);
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
    // a's old ports are still claimed: a third service cannot take them.
    let c = sample_service(P1, port, &[(80, 7000)], 3);
    assert_eq!(
        code_of(store.create_service(&c, 100).await.unwrap_err()),
        ErrorCode::PortConflict
    );
    // Changing a's ports frees the old ones.
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
pub async fn transitions_complete_when_due(store: &dyn Store) {
    let port = Uuid::new_v4();
    let mut s = sample_service(P1, port, &[(80, 8080)], 100);
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
    let (_, total) = store
        .list_services(
            &ServiceScope::Project(P1.into()),
            &ServiceFilter::default(),
            &Page::default(),
        )
        .await
        .unwrap();
    assert_eq!(total, 0);
    store
        .create_service(&sample_service(P1, port, &[(80, 8080)], 300), 100)
        .await
        .unwrap();
}

/// The first default account stored wins; later calls get it back.
pub async fn default_account_first_wins(store: &dyn Store) {
    assert_eq!(
        store.default_account("first".into()).await.unwrap(),
        "first"
    );
    assert_eq!(
        store.default_account("second".into()).await.unwrap(),
        "first"
    );
}

/// Runs every check, each on a fresh database of `backend`.
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
    check!(service_round_trip, s => service_round_trip(&*s).await);
    check!(port_claims_conflict_on_shared_port_id, s => port_claims_conflict_on_shared_port_id(&*s).await);
    check!(concurrent_conflicting_creates_admit_one, s => concurrent_conflicting_creates_admit_one(s).await);
    check!(quota_holds_under_concurrency, s => quota_holds_under_concurrency(s).await);
    check!(list_pages_sorts_and_filters, s => list_pages_sorts_and_filters(&*s).await);
    check!(modify_is_transactional, s => modify_is_transactional(&*s).await);
    check!(transitions_complete_when_due, s => transitions_complete_when_due(&*s).await);
    check!(default_account_first_wins, s => default_account_first_wins(&*s).await);
}
