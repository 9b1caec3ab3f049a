//! Endpoint services: rows, port claims, lists, transitions, the default account.

use super::*;
use crate::{ServiceFilter, ServiceLookup, ServiceScope, SqlStore};
use std::sync::Arc;
use uuid::Uuid;
use vpcep_domain::list::{Page, SortDir, SortKey};
use vpcep_domain::service::{EndpointService, ServerResource, ServerType, ServiceStatus, TcpProxy};
use vpcep_domain::tag::Tag;
use vpcep_domain::ErrorCode;

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
    // A name is matched whole: its id with another name, another id, or no id find nothing.
    let other_region = s.full_name.replacen("local-1", "local-2", 1);
    let other_id = s
        .full_name
        .replace(&s.id.to_string(), &Uuid::new_v4().to_string());
    for name in [other_region, other_id, "local-1.svc".to_string()] {
        assert!(
            store
                .find_service(&ServiceLookup::FullName(name.clone()))
                .await
                .unwrap()
                .is_none(),
            "{name}"
        );
    }
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
    mark_deleting(&store, P2, all[0].id, 10).await;
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
        s.tags = tags_of(i);
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
    // Each listed service has its own tags, sorted, and one without has none.
    let (p, _) = list(none.clone(), page(10, 0, SortDir::Asc)).await;
    assert_eq!(idlist(&p), ids);
    for (i, s) in (0..7u16).zip(&p) {
        let mut want = tags_of(i);
        want.sort();
        assert_eq!(s.tags, want, "service {i}");
    }
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

/// The tags `list_pages_sorts_and_filters` gives its `i`-th service: none for most.
fn tags_of(i: u16) -> Vec<Tag> {
    let tag = |key: &str, value: &str| Tag {
        key: key.into(),
        value: value.into(),
    };
    match i {
        1 => vec![tag("b", "2"), tag("a", "1")],
        4 => vec![tag("x", "")],
        _ => Vec::new(),
    }
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
            std::sync::Arc::new(|s| {
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
            std::sync::Arc::new(|s| {
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
            std::sync::Arc::new(|s| {
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
                .modify_service(P2, a.id, 8, std::sync::Arc::new(|_| Ok(())))
                .await
                .unwrap_err()
        ),
        ErrorCode::NotFound
    );
    let unchanged = store
        .modify_service(P1, b.id, 9, std::sync::Arc::new(|_| Ok(())))
        .await
        .unwrap();
    assert_eq!(unchanged.updated_at, 2, "a no-op does not touch updated_at");
}

/// A service change moves the data plane's version (agents then fetch a new snapshot) exactly
/// when it changes what agents serve: ports, `tcp_proxy`, approval; not a description or a
/// name, and not a no-op.
pub async fn service_changes_move_the_dataplane_version_when_served(store: &SqlStore) {
    let port = make_backend(store, P1).await;
    let a = sample_service(P1, &port, &[(80, 8080)], 1);
    store.create_service(&a, 100).await.unwrap();
    let cases: [(&str, crate::ServiceMutation, bool); 6] = [
        (
            "description",
            Arc::new(|s| {
                s.description = "x".into();
                Ok(())
            }),
            false,
        ),
        (
            "name",
            Arc::new(|s| {
                s.short_name = Some("renamed".into());
                Ok(())
            }),
            false,
        ),
        ("no-op", Arc::new(|_| Ok(())), false),
        (
            "ports",
            Arc::new(|s| {
                s.ports = ports(&[(81, 8081)]);
                Ok(())
            }),
            true,
        ),
        (
            "approval",
            Arc::new(|s| {
                s.approval_enabled = !s.approval_enabled;
                Ok(())
            }),
            true,
        ),
        (
            "tcp_proxy",
            Arc::new(|s| {
                s.tcp_proxy = TcpProxy::ProxyOpen;
                Ok(())
            }),
            true,
        ),
    ];
    for (what, change, moves) in cases {
        let before = store.dataplane_version().await.unwrap();
        store.modify_service(P1, a.id, 5, change).await.unwrap();
        let after = store.dataplane_version().await.unwrap();
        assert_eq!(after > before, moves, "{what}: version {before} -> {after}");
    }
    let s = store.get_service(P1, a.id).await.unwrap().unwrap();
    assert_eq!(
        (s.description.as_str(), s.short_name.as_deref()),
        ("x", Some("renamed"))
    );
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
    // A neighbour on the same port_id, whose claims the deletion below must leave alone.
    let neighbour = sample_service(P1, &port, &[(81, 8081)], 100);
    store.create_service(&neighbour, 100).await.unwrap();
    assert_eq!(store.complete_creations(99, 150, 100).await.unwrap(), 0);
    assert_eq!(store.complete_creations(100, 150, 100).await.unwrap(), 2);
    let got = store.get_service(P1, s.id).await.unwrap().unwrap();
    assert_eq!(
        (got.status, got.updated_at),
        (ServiceStatus::Available, 150)
    );
    mark_deleting(store, P1, s.id, 200).await;
    assert_eq!(store.complete_deletions(199, 100).await.unwrap(), 0);
    assert!(store.get_service(P1, s.id).await.unwrap().is_some());
    assert_eq!(store.complete_deletions(200, 100).await.unwrap(), 1);
    assert!(store.get_service(P1, s.id).await.unwrap().is_none());
    assert_eq!(total(store, P1).await, 1);
    // The deleted service's ports are free; the neighbour's are still held.
    store
        .create_service(&sample_service(P1, &port, &[(80, 8080)], 300), 100)
        .await
        .unwrap();
    assert_eq!(
        code_of(
            store
                .create_service(&sample_service(P1, &port, &[(81, 9999)], 301), 100)
                .await
                .unwrap_err()
        ),
        ErrorCode::PortConflict
    );
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
            std::sync::Arc::new(move |s| {
                s.port_id = vm.port_id;
                Ok(())
            }),
        )
        .await
        .unwrap_err();
    assert_eq!(code_of(moved), ErrorCode::PortNotInVpc);
    assert_eq!(total(store, P1).await, 1);
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
            std::sync::Arc::new(move |s| {
                s.server_resources = r.clone();
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
