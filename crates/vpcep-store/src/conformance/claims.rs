//! Address claims: one owner per address of an address space.

use super::*;
use crate::USAGE_ENDPOINT;
use crate::{SqlStore, StoreOptions};
use uuid::Uuid;
use vpcep_domain::endpoint::EndpointStatus;
use vpcep_domain::network::port::{random_mac, NewPort};
use vpcep_domain::ErrorCode;

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

/// The store on `url` with claims enforced, as with a data plane.
async fn enforced_store(url: &str) -> Arc<SqlStore> {
    open_store_with(
        url,
        StoreOptions {
            enforce_claims: true,
            ..StoreOptions::default()
        },
    )
    .await
}

/// Every data-plane address has one owner per address space, decided by the store: two tenants'
/// VPCs of the same CIDR in the host's space cannot both hold an address (the first does; with
/// claims enforced a second is EndPoint.2042 / 3046 and writes nothing, and allocation steers
/// clear; without, the second is stored but never served); the same address in two network
/// namespaces is two addresses; resources of one VPC share its address; and when the owner's
/// last resource goes, the oldest waiter takes the address over.
pub async fn address_claims_have_one_owner(url: &str) {
    let plain = open_store(url).await;
    let enforced = enforced_store(url).await;
    let store = &*enforced;
    let svc = available_service(store, P1, false).await;
    let (v1, s1) = network_in(store, P1, "127.61.0.0/16", None).await;
    let (v2, s2) = network_in(store, P2, "127.61.0.0/16", None).await;
    let x = "127.61.0.10";
    let freed = store.claims_freed().await.unwrap();

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

    // Claims taken, shared and refused free nothing: the reconciler need not look for waiters.
    assert_eq!(store.claims_freed().await.unwrap(), freed);
    // The owner's last resource goes: the claim is freed (the counter the reconciler watches
    // moves), and the oldest waiter (the squatter) takes the address over.
    store
        .modify_endpoint(
            P1,
            first.id,
            40,
            std::sync::Arc::new(|e| {
                e.status = EndpointStatus::Deleting;
                Ok(())
            }),
        )
        .await
        .unwrap();
    store.complete_deletions(i64::MAX, 100).await.unwrap();
    assert_eq!(store.claims_freed().await.unwrap(), freed + 1);
    assert!(store.settle_claims(100).await.unwrap() >= 1);
    assert_eq!(refusal(store, squatter.id).await, None);
}

/// Concurrent claims of one address from many VPCs of one space (e.g. through several nodes):
/// exactly one create succeeds.
pub async fn concurrent_claims_admit_one(url: &str) {
    let store = enforced_store(url).await;
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

/// Concurrent creates of one VPC's services on one backend address (e.g. through several
/// nodes) all share its claim: on PostgreSQL the first claim's insert makes the others' wait,
/// and they then take a reference on it instead of being refused as another VPC would be.
pub async fn concurrent_claims_of_one_vpc_share_the_address(url: &str) {
    let store = enforced_store(url).await;
    let port = make_backend(&store, P1).await;
    let tasks: Vec<_> = (0..8u16)
        .map(|i| {
            let store = store.clone();
            let s = sample_service(P1, &port, &[(100 + i, 100 + i)], i64::from(i));
            tokio::spawn(async move { store.create_service(&s, 1000).await })
        })
        .collect();
    for t in tasks {
        t.await
            .unwrap()
            .expect("a service of the VPC that holds the address");
    }
}
