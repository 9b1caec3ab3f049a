//! Usage counters and the quotas they hold, also under concurrency.

use super::*;
use crate::SqlStore;
use crate::{USAGE_ENDPOINT, USAGE_ENDPOINT_SERVICE};
use crate::{USAGE_PORT, USAGE_SUBNET, USAGE_VPC};
use std::sync::Arc;
use uuid::Uuid;
use vpcep_domain::network::port::{random_mac, NewPort};
use vpcep_domain::ErrorCode;

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
    mark_deleting(store, P1, a.id, 10).await;
    assert_eq!(
        usage(P1, USAGE_ENDPOINT_SERVICE).await,
        2,
        "deleting still counts"
    );
    store.complete_deletions(10, 100).await.unwrap();
    assert_eq!(usage(P1, USAGE_ENDPOINT_SERVICE).await, 1);
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

/// Creates `n` VPCs of project `p` at once with quota `quota` (CIDRs `10.<base + i>.0.0/16`);
/// answers how many were created.
async fn create_vpcs_at_once(
    store: &Arc<SqlStore>,
    p: &'static str,
    base: u8,
    n: u8,
    quota: u64,
) -> usize {
    let mut tasks = Vec::new();
    for i in 0..n {
        let store = store.clone();
        let vpc = sample_vpc(p, &format!("10.{}.0.0/16", base + i));
        tasks.push(tokio::spawn(
            async move { store.create_vpc(&vpc, quota).await },
        ));
    }
    count_created(tasks).await
}

/// A quota holds exactly when it is raised or lowered between concurrent creates, and units
/// given back are taken again, never more than the quota (on PostgreSQL a project's usage is
/// spread over slots, each with its share of the quota, shared out again when the quota
/// changes or a slot runs out: see `usage.rs`).
pub async fn quotas_hold_when_changed_under_concurrency(store: Arc<SqlStore>) {
    let usage =
        |store: Arc<SqlStore>| async move { store.project_usage(P1, USAGE_VPC).await.unwrap() };
    assert_eq!(create_vpcs_at_once(&store, P1, 0, 30, 20).await, 20);
    assert_eq!(usage(store.clone()).await, 20);
    // Raised: exactly the difference more.
    assert_eq!(create_vpcs_at_once(&store, P1, 30, 30, 27).await, 7);
    assert_eq!(usage(store.clone()).await, 27);
    // Lowered below the usage: nothing more, and nothing lost.
    assert_eq!(create_vpcs_at_once(&store, P1, 60, 10, 25).await, 0);
    assert_eq!(usage(store.clone()).await, 27);
    // Units given back (6) are taken again up to the lowered quota (25), no further.
    let vpcs = store.list_vpcs(P1, None, 100, None).await.unwrap();
    assert_eq!(vpcs.len(), 27);
    for v in &vpcs[..6] {
        store.delete_vpc(P1, v.id).await.unwrap();
    }
    assert_eq!(usage(store.clone()).await, 21);
    assert_eq!(create_vpcs_at_once(&store, P1, 70, 20, 25).await, 4);
    assert_eq!(usage(store.clone()).await, 25);
    assert_eq!(
        store.list_vpcs(P1, None, 100, None).await.unwrap().len(),
        25
    );
    // Another project is counted on its own.
    assert_eq!(create_vpcs_at_once(&store, P2, 0, 5, 3).await, 3);
    assert_eq!(store.project_usage(P2, USAGE_VPC).await.unwrap(), 3);
}
