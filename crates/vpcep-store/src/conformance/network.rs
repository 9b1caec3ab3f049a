//! The network resources: VPCs, subnets, ports and their addresses.

use super::*;
use crate::SqlStore;
use std::sync::Arc;
use uuid::Uuid;
use vpcep_domain::network::port::{random_mac, NewPort};
use vpcep_domain::network::vpc::Vpc;
use vpcep_domain::ErrorCode;

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
            std::sync::Arc::new(|v, _| {
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
            std::sync::Arc::new(|v, subnets| {
                v.cidr = "10.0.0.0/22".parse().unwrap();
                vpcep_domain::network::vpc::check_vpc_cidr_holds_subnets(v.cidr, subnets)
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
            std::sync::Arc::new(|v, subnets| {
                v.cidr = "10.0.0.0/8".parse().unwrap();
                vpcep_domain::network::vpc::check_vpc_cidr_holds_subnets(v.cidr, subnets)
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
