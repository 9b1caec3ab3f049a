//! Endpoints: their life, and creates that are all or nothing.

use super::*;
use crate::SqlStore;
use std::sync::Arc;
use uuid::Uuid;
use vpcep_domain::endpoint::{Endpoint, EndpointStatus};
use vpcep_domain::list::Page;
use vpcep_domain::tag::{ResourceKind, Tag};
use vpcep_domain::ErrorCode;

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
        .modify_endpoint(P2, e.id, 40, std::sync::Arc::new(Endpoint::begin_delete))
        .await
        .unwrap();
    assert_eq!(
        code_of(
            store
                .modify_endpoint(P2, e.id, 41, std::sync::Arc::new(Endpoint::begin_delete))
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
            std::sync::Arc::new(|_, _| {
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

/// An endpoint change moves the data plane's version exactly when it changes what agents
/// serve: its whitelist or its status; not its description or its policy.
pub async fn endpoint_changes_move_the_dataplane_version_when_served(store: &SqlStore) {
    let svc = available_service(store, P1, false).await;
    let consumer = make_backend_with(store, P2, "10.5.0.0/16", "compute:az").await;
    let e = sample_endpoint(P2, &svc, consumer.vpc_id, consumer.subnet_id, 10);
    store.create_endpoint(&e, None, 10, allow()).await.unwrap();
    let cases: [(&str, crate::EndpointMutation, bool); 5] = [
        (
            "description",
            Arc::new(|e| {
                e.description = "x".into();
                Ok(())
            }),
            false,
        ),
        (
            "policy",
            Arc::new(|e| {
                e.policy_statement = Some(serde_json::json!([{"Effect": "Allow"}]));
                Ok(())
            }),
            false,
        ),
        ("no-op", Arc::new(|_| Ok(())), false),
        (
            "whitelist",
            Arc::new(|e| {
                e.whitelist = vec!["10.9.0.0/24".into()];
                e.enable_whitelist = true;
                Ok(())
            }),
            true,
        ),
        ("delete", Arc::new(Endpoint::begin_delete), true),
    ];
    for (what, change, moves) in cases {
        let before = store.dataplane_version().await.unwrap();
        store.modify_endpoint(P2, e.id, 5, change).await.unwrap();
        let after = store.dataplane_version().await.unwrap();
        assert_eq!(after > before, moves, "{what}: version {before} -> {after}");
    }
    let got = store.get_endpoint(P2, e.id).await.unwrap().unwrap();
    assert_eq!(
        (got.description.as_str(), got.policy_statement.is_some()),
        ("x", true)
    );
}
