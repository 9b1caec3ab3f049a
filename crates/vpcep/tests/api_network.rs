//! The network inventory (the VPC API v1 subset, 16 operations): VPC, subnet and port CRUD and
//! marker paging, CIDR and address rules (also under concurrent requests), deletion guards,
//! tenancy, the checks endpoint services make against it, and the `--inventory` preload.

use serde_json::{json, Value};
use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::time::Duration;
use vpcep::server::ControlPlane;
use vpcep_testkit::app::*;

api_tests!(
    vpc_is_created_shown_updated_listed_and_deleted,
    vpc_cidr_must_be_a_canonical_unicast_network,
    vpc_names_are_unique_in_a_project,
    vpc_cidr_change_must_keep_every_subnet_inside,
    vpc_list_pages_with_a_marker,
    subnet_is_created_shown_updated_listed_and_deleted,
    subnet_must_lie_inside_its_vpc_without_overlapping_siblings,
    subnet_gateway_must_be_a_host_address_inside_it,
    concurrent_overlapping_subnets_admit_exactly_one,
    port_is_created_shown_updated_listed_and_deleted,
    port_list_filters_and_pages_with_a_marker,
    port_list_takes_every_value_of_a_repeated_filter,
    port_list_filters_by_fixed_ip_subnet_and_security_group,
    fixed_ip_must_be_an_assignable_free_address_of_the_subnet,
    allocation_skips_network_gateway_and_broadcast_until_the_subnet_is_full,
    thirty_concurrent_port_creates_never_share_an_address,
    private_ips_list_every_allocated_address,
    vpc_with_subnets_cannot_be_deleted,
    subnet_with_ports_or_endpoint_addresses_cannot_be_deleted,
    port_backing_a_service_cannot_be_deleted,
    vpc_with_a_gateway_endpoint_cannot_be_deleted,
    other_projects_get_404_for_every_inventory_resource,
    marker_of_another_project_is_refused_like_an_unknown_one,
    service_needs_an_existing_port_of_the_project,
    service_port_must_be_in_the_given_vpc,
    service_server_type_must_match_the_port,
    service_vpc_must_not_overlap_the_reserved_range,
    service_vpc_routes_must_not_overlap_the_reserved_range,
    service_update_rechecks_a_new_port,
    inventory_file_is_preloaded_once = |b| b.inventory(&inventory_toml()),
    inventory_preloaded_by_two_nodes_at_once_is_created_once,
    invalid_inventory_file_stops_the_start_naming_the_file,
);

/// Keys of a VPC (`create_vpc`, `list_vpcs`, `show_vpc`, `update_vpc`).
const VPC_KEYS: &[&str] = &[
    "id",
    "name",
    "cidr",
    "description",
    "routes",
    "status",
    "enterprise_project_id",
    "tenant_id",
    "created_at",
    "updated_at",
];

/// Keys of a subnet (`create_subnet`, `list_subnets`, `show_subnet`).
const SUBNET_KEYS: &[&str] = &[
    "id",
    "name",
    "description",
    "cidr",
    "gateway_ip",
    "ipv6_enable",
    "dhcp_enable",
    "primary_dns",
    "secondary_dns",
    "dnsList",
    "availability_zone",
    "vpc_id",
    "status",
    "neutron_network_id",
    "neutron_subnet_id",
    "extra_dhcp_opts",
    "tenant_id",
    "created_at",
    "updated_at",
    "available_ip_address_count",
];

/// Keys of a port (`create_port`, `list_ports`, `show_port`, `update_port`).
const PORT_KEYS: &[&str] = &[
    "id",
    "name",
    "network_id",
    "admin_state_up",
    "mac_address",
    "fixed_ips",
    "device_id",
    "device_owner",
    "tenant_id",
    "status",
    "security_groups",
    "allowed_address_pairs",
    "extra_dhcp_opts",
    "binding:vnic_type",
    "dns_assignment",
    "dns_name",
    "binding:vif_details",
    "binding:profile",
    "instance_id",
    "instance_type",
    "port_security_enabled",
    "zone_id",
    "enable_efi",
    "ipv6_bandwidth_id",
];

fn assert_keys(v: &Value, keys: &[&str]) {
    for key in keys {
        assert!(v.get(key).is_some(), "lacks {key}: {v}");
    }
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse()
        .unwrap_or_else(|_| panic!("not an IPv4 address: {s}"))
}

fn port_ip(port: &Value) -> String {
    port["fixed_ips"][0]["ip_address"]
        .as_str()
        .unwrap_or_else(|| panic!("no fixed ip: {port}"))
        .to_string()
}

fn ids_of(v: &Value, key: &str) -> Vec<String> {
    ids_in(&v[key])
}

async fn vpc_is_created_shown_updated_listed_and_deleted(app: &mut TestApp) {
    let owner = app.owner();
    let created = owner
        .create_vpc(&json!({"name": "vpc-1", "description": "first", "cidr": "10.1.0.0/16"}))
        .await
        .ok(200)["vpc"]
        .clone();
    assert_keys(&created, VPC_KEYS);
    let id = id_of(&created);
    assert!(uuid::Uuid::try_parse(&id).is_ok() && id.len() == 36, "{id}");
    assert_eq!(created["name"], "vpc-1");
    assert_eq!(created["description"], "first");
    assert_eq!(created["cidr"], "10.1.0.0/16");
    assert_eq!(created["routes"], json!([]));
    assert_eq!(created["status"], "OK");
    assert_eq!(created["tenant_id"], OWNER.projects[0]);
    assert_eq!(owner.show_vpc(&id).await.ok(200)["vpc"], created);

    // Without a CIDR a VPC gets the console's default.
    let default = owner.create_vpc(&json!({})).await.ok(200)["vpc"].clone();
    assert_eq!(default["cidr"], "192.168.0.0/16");
    assert_eq!(default["name"], "");

    let updated = owner
        .update_vpc(
            &id,
            &json!({
                "name": "vpc-renamed",
                "description": "second",
                "routes": [{"destination": "0.0.0.0/0", "nexthop": "10.1.0.10"}],
            }),
        )
        .await
        .ok(200)["vpc"]
        .clone();
    assert_eq!(updated["name"], "vpc-renamed");
    assert_eq!(updated["description"], "second");
    assert_eq!(updated["cidr"], "10.1.0.0/16");
    assert_eq!(
        updated["routes"],
        json!([{"destination": "0.0.0.0/0", "nexthop": "10.1.0.10"}])
    );
    assert_eq!(updated["created_at"], created["created_at"]);
    assert_eq!(owner.show_vpc(&id).await.ok(200)["vpc"], updated);
    for (bad, field) in [
        (json!({"name": "a b"}), "vpc.name"),
        (json!({"description": "<b>"}), "vpc.description"),
        (
            json!({"routes": [{"destination": "x", "nexthop": "10.1.0.10"}]}),
            "destination",
        ),
        (
            json!({"routes": [{"destination": "10.9.0.0/16", "nexthop": "ten"}]}),
            "nexthop",
        ),
    ] {
        owner
            .update_vpc(&id, &bad)
            .await
            .err_naming(400, "VPC.0101", field);
    }

    let listed = owner.list_vpcs("").await.ok(200);
    assert_eq!(ids_of(&listed, "vpcs"), vec![id.clone(), id_of(&default)]);
    assert_keys(&listed["vpcs"][0], VPC_KEYS);
    let one = owner.list_vpcs(&format!("id={id}")).await.ok(200);
    assert_eq!(ids_of(&one, "vpcs"), vec![id.clone()]);

    let r = owner.delete_vpc(&id).await;
    r.ok(204);
    assert!(r.body.is_empty(), "204 with a body: {}", r.text());
    owner.show_vpc(&id).await.err(404, "VPC.0003");
    owner.delete_vpc(&id).await.err(404, "VPC.0003");
    owner
        .update_vpc(&id, &json!({"name": "x"}))
        .await
        .err(404, "VPC.0003");
    owner.show_vpc("not-a-uuid").await.err(404, "VPC.0003");
    let listed = owner.list_vpcs("").await.ok(200);
    assert_eq!(ids_of(&listed, "vpcs"), vec![id_of(&default)]);
}

async fn vpc_cidr_must_be_a_canonical_unicast_network(app: &mut TestApp) {
    let owner = app.owner();
    for bad in [
        "10.0.0.1/16",
        "10.0.0.0/7",
        "10.0.0.0/29",
        "224.0.0.0/8",
        "0.0.0.0/8",
        "10.0.0.0",
        "10.0.0.0/33",
        "banana",
    ] {
        owner
            .create_vpc(&json!({ "cidr": bad }))
            .await
            .err_naming(400, "VPC.0101", "vpc.cidr");
    }
    for good in [
        "10.0.0.0/8",
        "172.16.0.0/12",
        "127.10.0.0/16",
        "10.0.0.0/28",
    ] {
        let v = owner.create_vpc(&json!({ "cidr": good })).await.ok(200);
        assert_eq!(v["vpc"]["cidr"], good);
    }
    owner
        .create_vpc(&json!(null))
        .await
        .err_naming(400, "VPC.0101", "vpc");
    for raw in [&b"{}"[..], b"[]"] {
        let r = owner
            .send(
                reqwest::Method::POST,
                "/v1/{project_id}/vpcs",
                Some(raw.to_vec()),
            )
            .await;
        assert_eq!(r.status, 400, "{}", r.text());
    }
    let listed = owner.list_vpcs("").await.ok(200);
    assert_eq!(listed["vpcs"].as_array().map(Vec::len), Some(4));
}

async fn vpc_names_are_unique_in_a_project(app: &mut TestApp) {
    let owner = app.owner();
    owner
        .create_vpc(&json!({"name": "shared", "cidr": "10.0.0.0/16"}))
        .await
        .ok(200);
    owner
        .create_vpc(&json!({"name": "shared", "cidr": "10.1.0.0/16"}))
        .await
        .err(400, "VPC.0115");
    // Another project may use the name; unnamed VPCs never clash.
    app.owner_other_project()
        .create_vpc(&json!({"name": "shared"}))
        .await
        .ok(200);
    owner.create_vpc(&json!({})).await.ok(200);
    owner.create_vpc(&json!({})).await.ok(200);
    let listed = owner.list_vpcs("").await.ok(200);
    assert_eq!(listed["vpcs"].as_array().map(Vec::len), Some(3));
}

async fn vpc_cidr_change_must_keep_every_subnet_inside(app: &mut TestApp) {
    let owner = app.owner();
    let vpc = owner.vpc_ok("10.0.0.0/16").await;
    owner.subnet_ok(&vpc, "10.0.5.0/24").await;
    owner
        .update_vpc(&vpc, &json!({"cidr": "10.0.0.0/22"}))
        .await
        .err_naming(400, "VPC.0101", "10.0.5.0/24");
    assert_eq!(
        owner.show_vpc(&vpc).await.ok(200)["vpc"]["cidr"],
        "10.0.0.0/16"
    );
    let wider = owner
        .update_vpc(&vpc, &json!({"cidr": "10.0.0.0/12"}))
        .await
        .ok(200);
    assert_eq!(wider["vpc"]["cidr"], "10.0.0.0/12");
    let narrower = owner
        .update_vpc(&vpc, &json!({"cidr": "10.0.4.0/22"}))
        .await
        .ok(200);
    assert_eq!(narrower["vpc"]["cidr"], "10.0.4.0/22");
    owner
        .update_vpc(&vpc, &json!({"cidr": "10.0.4.1/22"}))
        .await
        .err_naming(400, "VPC.0101", "vpc.cidr");
}

async fn vpc_list_pages_with_a_marker(app: &mut TestApp) {
    let owner = app.owner();
    let mut created = Vec::new();
    for i in 0..5 {
        created.push(owner.vpc_ok(&format!("10.{i}.0.0/16")).await);
    }
    // Pages in creation order; each marker is the last id of the page before.
    let mut paged = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let query = match &marker {
            None => "limit=2".to_string(),
            Some(m) => format!("limit=2&marker={m}"),
        };
        let page = ids_of(&owner.list_vpcs(&query).await.ok(200), "vpcs");
        assert!(page.len() <= 2, "{page:?}");
        if page.is_empty() {
            break;
        }
        marker = page.last().cloned();
        paged.extend(page);
    }
    assert_eq!(paged, created);
    let all = ids_of(&owner.list_vpcs("").await.ok(200), "vpcs");
    assert_eq!(all, created);
    let after_last = owner
        .list_vpcs(&format!("marker={}", created[4]))
        .await
        .ok(200);
    assert_eq!(after_last["vpcs"], json!([]));
    for bad in ["limit=0", "limit=-1", "limit=x", "limit=2001"] {
        owner
            .list_vpcs(bad)
            .await
            .err_naming(400, "VPC.0101", "limit");
    }
    owner
        .list_vpcs(&format!("marker={}", uuid()))
        .await
        .err_naming(400, "VPC.0101", "marker");
    let most = owner.list_vpcs("limit=2000").await.ok(200);
    assert_eq!(ids_of(&most, "vpcs"), created);
}

async fn subnet_is_created_shown_updated_listed_and_deleted(app: &mut TestApp) {
    let owner = app.owner();
    let vpc = owner.vpc_ok("10.0.0.0/16").await;
    let created = owner
        .create_subnet(&json!({
            "name": "web",
            "description": "front",
            "cidr": "10.0.1.0/24",
            "gateway_ip": "10.0.1.1",
            "vpc_id": vpc,
            "primary_dns": "100.125.1.250",
            "dnsList": ["100.125.1.250", "100.125.64.250"],
            "availability_zone": "test-1a",
        }))
        .await
        .ok(200)["subnet"]
        .clone();
    assert_keys(&created, SUBNET_KEYS);
    let id = id_of(&created);
    assert_eq!(created["name"], "web");
    assert_eq!(created["cidr"], "10.0.1.0/24");
    assert_eq!(created["gateway_ip"], "10.0.1.1");
    assert_eq!(created["vpc_id"], vpc);
    assert_eq!(created["status"], "ACTIVE");
    assert_eq!(created["dhcp_enable"], true);
    assert_eq!(created["primary_dns"], "100.125.1.250");
    assert_eq!(
        created["dnsList"],
        json!(["100.125.1.250", "100.125.64.250"])
    );
    assert_eq!(created["neutron_network_id"], id);
    assert_ne!(created["neutron_subnet_id"], created["id"]);
    assert_eq!(created["tenant_id"], OWNER.projects[0]);
    assert_eq!(created["available_ip_address_count"], 253);
    assert_eq!(owner.show_subnet(&id).await.ok(200)["subnet"], created);

    // A port takes one address.
    owner.port_ok(&id, VM_OWNER).await;
    let shown = owner.show_subnet(&id).await.ok(200)["subnet"].clone();
    assert_eq!(shown["available_ip_address_count"], 252);

    // Update answers {id, status}; `name` is mandatory there.
    let r = owner
        .update_subnet(
            &vpc,
            &id,
            &json!({"name": "web2", "description": "renamed"}),
        )
        .await
        .ok(200);
    assert_eq!(r, json!({"subnet": {"id": id, "status": "ACTIVE"}}));
    let shown = owner.show_subnet(&id).await.ok(200)["subnet"].clone();
    assert_eq!(shown["name"], "web2");
    assert_eq!(shown["description"], "renamed");
    assert_eq!(shown["cidr"], "10.0.1.0/24");
    owner
        .update_subnet(&vpc, &id, &json!({"description": "no name"}))
        .await
        .err_naming(400, "VPC.0201", "subnet.name");
    let other_vpc = owner.vpc_ok("10.1.0.0/16").await;
    owner
        .update_subnet(&other_vpc, &id, &json!({"name": "x"}))
        .await
        .err(404, "VPC.0202");

    // Lists: all, or one VPC's.
    let second = owner.subnet_ok(&other_vpc, "10.1.0.0/24").await;
    let all = owner.list_subnets("").await.ok(200);
    assert_eq!(ids_of(&all, "subnets"), vec![id.clone(), second.clone()]);
    assert_keys(&all["subnets"][0], SUBNET_KEYS);
    let in_vpc = owner.list_subnets(&format!("vpc_id={vpc}")).await.ok(200);
    assert_eq!(ids_of(&in_vpc, "subnets"), vec![id.clone()]);
    let page = owner.list_subnets("limit=1").await.ok(200);
    assert_eq!(ids_of(&page, "subnets"), vec![id.clone()]);
    let next = owner
        .list_subnets(&format!("limit=1&marker={id}"))
        .await
        .ok(200);
    assert_eq!(ids_of(&next, "subnets"), vec![second.clone()]);

    // Delete through the subnet's own VPC only.
    owner
        .delete_subnet(&other_vpc, &id)
        .await
        .err(404, "VPC.0202");
    let r = owner.delete_subnet(&other_vpc, &second).await;
    r.ok(204);
    assert!(r.body.is_empty());
    owner.show_subnet(&second).await.err(404, "VPC.0202");
    owner
        .delete_subnet(&other_vpc, &second)
        .await
        .err(404, "VPC.0202");
    owner.show_subnet("nope").await.err(404, "VPC.0202");
}

async fn subnet_must_lie_inside_its_vpc_without_overlapping_siblings(app: &mut TestApp) {
    let owner = app.owner();
    let vpc = owner.vpc_ok("10.0.0.0/16").await;
    let subnet = |cidr: &str| json!({"name": "s", "cidr": cidr, "gateway_ip": first_host(cidr), "vpc_id": vpc});
    owner.create_subnet(&subnet("10.0.1.0/24")).await.ok(200);
    for (cidr, why) in [
        ("10.1.0.0/24", "outside the VPC"),
        ("10.0.0.0/15", "wider than the VPC"),
        ("10.0.1.0/24", "the same as a sibling"),
        ("10.0.1.128/25", "inside a sibling"),
        ("10.0.0.0/23", "containing a sibling"),
    ] {
        let msg = owner
            .create_subnet(&subnet(cidr))
            .await
            .err(400, "VPC.0204");
        assert!(msg.contains(cidr), "{why}: {msg}");
    }
    // Host bits set, a prefix longer than /29 or shorter than /8, no prefix.
    for cidr in ["10.0.2.1/24", "10.0.2.0/30", "10.0.2.0/7", "10.0.2.0"] {
        let body = json!({"name": "s", "cidr": cidr, "gateway_ip": "10.0.2.1", "vpc_id": vpc});
        owner
            .create_subnet(&body)
            .await
            .err_naming(400, "VPC.0201", "subnet.cidr");
    }
    // Adjacent networks, and the whole VPC in another one, are fine.
    owner.create_subnet(&subnet("10.0.0.0/24")).await.ok(200);
    owner.create_subnet(&subnet("10.0.2.0/23")).await.ok(200);
    let vpc2 = owner.vpc_ok("10.0.0.0/24").await;
    owner
        .create_subnet(&json!({"name": "all", "cidr": "10.0.0.0/24", "gateway_ip": "10.0.0.1", "vpc_id": vpc2}))
        .await
        .ok(200);
    // Mandatory fields and the VPC's existence.
    for field in ["name", "cidr", "gateway_ip", "vpc_id"] {
        let mut body = subnet("10.0.9.0/24");
        body.as_object_mut().expect("object").remove(field);
        owner
            .create_subnet(&body)
            .await
            .err_naming(400, "VPC.0201", field);
    }
    let mut body = subnet("10.0.9.0/24");
    body["vpc_id"] = json!(uuid());
    owner.create_subnet(&body).await.err(404, "VPC.0003");
    let listed = owner.list_subnets(&format!("vpc_id={vpc}")).await.ok(200);
    assert_eq!(listed["subnets"].as_array().map(Vec::len), Some(3));
}

async fn subnet_gateway_must_be_a_host_address_inside_it(app: &mut TestApp) {
    let owner = app.owner();
    let vpc = owner.vpc_ok("10.0.0.0/16").await;
    for gateway in ["10.0.1.0", "10.0.1.255", "10.0.2.1", "10.0.1", "gw"] {
        let body =
            json!({"name": "s", "cidr": "10.0.1.0/24", "gateway_ip": gateway, "vpc_id": vpc});
        owner
            .create_subnet(&body)
            .await
            .err_naming(400, "VPC.0201", "subnet.gateway_ip");
    }
    let body =
        json!({"name": "s", "cidr": "10.0.1.0/24", "gateway_ip": "10.0.1.254", "vpc_id": vpc});
    let s = owner.create_subnet(&body).await.ok(200);
    assert_eq!(s["subnet"]["gateway_ip"], "10.0.1.254");
}

async fn concurrent_overlapping_subnets_admit_exactly_one(app: &mut TestApp) {
    let owner = app.owner();
    let vpc = owner.vpc_ok("10.0.0.0/16").await;
    // 10.0.0.0/20 ... 10.0.0.0/29 all contain 10.0.0.0: every pair overlaps.
    let mut tasks = tokio::task::JoinSet::new();
    for prefix in 20..=29 {
        let owner = owner.clone();
        let body = json!({
            "name": format!("s{prefix}"),
            "cidr": format!("10.0.0.0/{prefix}"),
            "gateway_ip": "10.0.0.1",
            "vpc_id": vpc,
        });
        tasks.spawn(async move { owner.create_subnet(&body).await });
    }
    let mut created = Vec::new();
    while let Some(r) = tasks.join_next().await {
        let r = r.expect("task");
        if r.status == 200 {
            created.push(id_of(&r.json()["subnet"]));
        } else {
            r.err(400, "VPC.0204");
        }
    }
    assert_eq!(created.len(), 1, "{created:?}");
    let listed = owner.list_subnets(&format!("vpc_id={vpc}")).await.ok(200);
    assert_eq!(ids_of(&listed, "subnets"), created);
}

async fn port_is_created_shown_updated_listed_and_deleted(app: &mut TestApp) {
    let owner = app.owner();
    let net = owner.network_with("10.0.0.0/16", "10.0.1.0/24").await;
    let subnet = owner.show_subnet(&net.subnet_id).await.ok(200)["subnet"].clone();
    let created = owner
        .create_port(&json!({
            "name": "nic-1",
            "network_id": net.subnet_id,
            "device_owner": VM_OWNER,
            "security_groups": [uuid()],
        }))
        .await
        .ok(200)["port"]
        .clone();
    assert_keys(&created, PORT_KEYS);
    let id = id_of(&created);
    assert_eq!(created["name"], "nic-1");
    assert_eq!(created["network_id"], net.subnet_id);
    assert_eq!(created["device_owner"], VM_OWNER);
    assert_eq!(created["status"], "ACTIVE");
    assert_eq!(created["admin_state_up"], true);
    assert_eq!(created["tenant_id"], OWNER.projects[0]);
    assert_eq!(
        created["fixed_ips"],
        json!([{"ip_address": "10.0.1.2", "subnet_id": subnet["neutron_subnet_id"]}])
    );
    let mac = created["mac_address"].as_str().expect("mac");
    assert!(mac.len() == 17 && mac.starts_with("fa:16:3e:"), "mac {mac}");
    assert_eq!(owner.show_port(&id).await.ok(200)["port"], created);

    // An unbound port is DOWN; fixed_ips may name the subnet by either id.
    let unbound = owner
        .create_port(&json!({
            "network_id": net.subnet_id,
            "fixed_ips": [{"subnet_id": subnet["neutron_subnet_id"], "ip_address": "10.0.1.77"}],
        }))
        .await
        .ok(200)["port"]
        .clone();
    assert_eq!(unbound["status"], "DOWN");
    assert_eq!(port_ip(&unbound), "10.0.1.77");
    let by_network_id = owner
        .create_port(&json!({
            "network_id": net.subnet_id,
            "fixed_ips": [{"subnet_id": net.subnet_id}],
        }))
        .await
        .ok(200)["port"]
        .clone();
    assert_eq!(port_ip(&by_network_id), "10.0.1.3");

    let sg = uuid();
    let updated = owner
        .update_port(
            &id,
            &json!({
                "name": "nic-renamed",
                "security_groups": [sg],
                "allowed_address_pairs": [{"ip_address": "10.0.1.0/28"}],
            }),
        )
        .await
        .ok(200)["port"]
        .clone();
    assert_eq!(updated["name"], "nic-renamed");
    assert_eq!(updated["security_groups"], json!([sg]));
    assert_eq!(
        updated["allowed_address_pairs"][0]["ip_address"],
        "10.0.1.0/28"
    );
    assert_eq!(updated["fixed_ips"], created["fixed_ips"]);
    assert_eq!(updated["mac_address"], created["mac_address"]);
    assert_eq!(owner.show_port(&id).await.ok(200)["port"], updated);
    for (bad, field) in [
        (json!({"security_groups": ["sg-1"]}), "security_groups"),
        (
            json!({"allowed_address_pairs": [{"ip_address": "x"}]}),
            "allowed_address_pairs",
        ),
        (json!({"name": "a/b"}), "port.name"),
    ] {
        owner
            .update_port(&id, &bad)
            .await
            .err_naming(400, "VPC.0701", field);
    }

    let r = owner.delete_port(&id).await;
    r.ok(204);
    assert!(r.body.is_empty());
    owner.show_port(&id).await.err(404, "VPC.0702");
    owner.delete_port(&id).await.err(404, "VPC.0702");
    owner
        .update_port(&id, &json!({"name": "x"}))
        .await
        .err(404, "VPC.0702");
    // Its address is free again: the next allocation takes it.
    let next = owner.port_ok(&net.subnet_id, VM_OWNER).await;
    assert_eq!(port_ip(&next), "10.0.1.2");
}

async fn port_list_filters_and_pages_with_a_marker(app: &mut TestApp) {
    let owner = app.owner();
    let a = owner.network_with("10.0.0.0/16", "10.0.1.0/24").await;
    let b = owner.network_with("10.1.0.0/16", "10.1.1.0/24").await;
    let vm = owner.port_ok(&a.subnet_id, VM_OWNER).await;
    let lb = owner.port_ok(&a.subnet_id, LB_OWNER).await;
    let down = owner
        .create_port(&json!({"name": "spare", "network_id": b.subnet_id}))
        .await
        .ok(200)["port"]
        .clone();
    let all = vec![id_of(&vm), id_of(&lb), id_of(&down)];
    let r = owner.list_ports("").await.ok(200);
    assert_eq!(ids_of(&r, "ports"), all);
    assert_keys(&r["ports"][0], PORT_KEYS);
    let q = |query: String| {
        let owner = owner.clone();
        async move { ids_of(&owner.list_ports(&query).await.ok(200), "ports") }
    };
    assert_eq!(
        q(format!("network_id={}", a.subnet_id)).await,
        all[..2].to_vec()
    );
    assert_eq!(
        q(format!("device_owner={}", LB_OWNER)).await,
        vec![id_of(&lb)]
    );
    assert_eq!(q(format!("id={}", id_of(&vm))).await, vec![id_of(&vm)]);
    assert_eq!(q("name=spare".into()).await, vec![id_of(&down)]);
    assert_eq!(
        q(format!(
            "mac_address={}",
            vm["mac_address"].as_str().expect("mac")
        ))
        .await,
        vec![id_of(&vm)]
    );
    assert_eq!(q("status=DOWN".into()).await, vec![id_of(&down)]);
    assert_eq!(q("status=ACTIVE".into()).await, all[..2].to_vec());
    assert_eq!(q("admin_state_up=true".into()).await, all);
    assert_eq!(q("admin_state_up=false".into()).await, Vec::<String>::new());
    // `fixed_ips=ip_address=<ip>`, the form neutron clients send, or the bare address.
    assert_eq!(
        q(format!("fixed_ips=ip_address%3D{}", port_ip(&lb))).await,
        vec![id_of(&lb)]
    );
    assert_eq!(
        q(format!("fixed_ips={}", port_ip(&lb))).await,
        vec![id_of(&lb)]
    );
    // Marker paging in creation order.
    assert_eq!(q("limit=2".into()).await, all[..2].to_vec());
    assert_eq!(
        q(format!("limit=2&marker={}", all[1])).await,
        all[2..].to_vec()
    );
    for (bad, field) in [
        ("status=UP", "status"),
        ("admin_state_up=yes", "admin_state_up"),
        ("limit=0", "limit"),
    ] {
        owner
            .list_ports(bad)
            .await
            .err_naming(400, "VPC.0701", field);
    }
}

async fn port_list_takes_every_value_of_a_repeated_filter(app: &mut TestApp) {
    let owner = app.owner();
    let net = owner.network().await;
    let a = owner.port_ok(&net.subnet_id, VM_OWNER).await;
    let b = owner.port_ok(&net.subnet_id, VM_OWNER).await;
    owner.port_ok(&net.subnet_id, VM_OWNER).await;
    let both: HashSet<String> = HashSet::from([id_of(&a), id_of(&b)]);
    for query in [
        format!("id={}&id={}", id_of(&a), id_of(&b)),
        format!(
            "fixed_ips=ip_address%3D{}&fixed_ips=ip_address%3D{}",
            port_ip(&a),
            port_ip(&b)
        ),
    ] {
        let v = owner.list_ports(&query).await.ok(200);
        let got: HashSet<String> = ids_of(&v, "ports").into_iter().collect();
        assert_eq!(got, both, "{query}");
    }
}

async fn port_list_filters_by_fixed_ip_subnet_and_security_group(app: &mut TestApp) {
    let owner = app.owner();
    let one = owner.network_with("10.0.0.0/16", "10.0.1.0/24").await;
    let two = owner.network_with("10.1.0.0/16", "10.1.1.0/24").await;
    let sg = uuid();
    let in_one = owner
        .create_port(&json!({"network_id": one.subnet_id, "security_groups": [sg]}))
        .await
        .ok(200)["port"]
        .clone();
    owner.port_ok(&two.subnet_id, VM_OWNER).await;
    let neutron_subnet = owner.show_subnet(&one.subnet_id).await.ok(200)["subnet"]
        ["neutron_subnet_id"]
        .as_str()
        .expect("neutron_subnet_id")
        .to_string();
    for query in [
        format!("fixed_ips=subnet_id%3D{neutron_subnet}"),
        format!("security_groups={sg}"),
    ] {
        let v = owner.list_ports(&query).await.ok(200);
        assert_eq!(ids_of(&v, "ports"), vec![id_of(&in_one)], "{query}");
    }
}

async fn fixed_ip_must_be_an_assignable_free_address_of_the_subnet(app: &mut TestApp) {
    let owner = app.owner();
    let net = owner.network_with("10.0.0.0/16", "10.0.1.0/24").await;
    let with_ip = |ip: &str| json!({"network_id": net.subnet_id, "fixed_ips": [{"ip_address": ip}], "device_owner": VM_OWNER});
    for (bad, why) in [
        ("10.0.2.5", "outside the subnet"),
        ("10.0.1.0", "the network address"),
        ("10.0.1.1", "the gateway"),
        ("10.0.1.255", "the broadcast address"),
    ] {
        let msg = owner.create_port(&with_ip(bad)).await.err(400, "VPC.0701");
        assert!(msg.contains(bad), "{why}: {msg}");
    }
    owner
        .create_port(&with_ip("10.0.1"))
        .await
        .err_naming(400, "VPC.0701", "ip_address");
    let taken = owner.create_port(&with_ip("10.0.1.9")).await.ok(200);
    assert_eq!(port_ip(&taken["port"]), "10.0.1.9");
    owner
        .create_port(&with_ip("10.0.1.9"))
        .await
        .err(409, "VPC.0703");
    // One fixed IP per port, in the port's own subnet.
    owner
        .create_port(&json!({
            "network_id": net.subnet_id,
            "fixed_ips": [{"ip_address": "10.0.1.20"}, {"ip_address": "10.0.1.21"}],
        }))
        .await
        .err_naming(400, "VPC.0701", "fixed_ips");
    let other = owner.network_with("10.1.0.0/16", "10.1.0.0/24").await;
    owner
        .create_port(&json!({
            "network_id": net.subnet_id,
            "fixed_ips": [{"subnet_id": other.subnet_id, "ip_address": "10.0.1.20"}],
        }))
        .await
        .err_naming(400, "VPC.0701", "subnet_id");
    owner
        .create_port(&json!({"network_id": uuid()}))
        .await
        .err(404, "VPC.0202");
    owner
        .create_port(&json!({"device_owner": VM_OWNER}))
        .await
        .err_naming(400, "VPC.0701", "network_id");
    owner
        .create_port(&json!({"network_id": net.subnet_id, "device_owner": "bad owner!"}))
        .await
        .err_naming(400, "VPC.0701", "device_owner");
    // The same address in another subnet is another address.
    let elsewhere = owner
        .create_port(
            &json!({"network_id": other.subnet_id, "fixed_ips": [{"ip_address": "10.1.0.9"}]}),
        )
        .await
        .ok(200);
    assert_eq!(port_ip(&elsewhere["port"]), "10.1.0.9");
    // Only the one good port was made in the subnet.
    assert_eq!(owner.allocated(&net.subnet_id).await, vec!["10.0.1.9"]);
}

async fn allocation_skips_network_gateway_and_broadcast_until_the_subnet_is_full(
    app: &mut TestApp,
) {
    let owner = app.owner();
    let vpc = owner.vpc_ok("10.0.0.0/16").await;
    // A /29 with the gateway in the middle: hosts .1-.6, gateway .4.
    let subnet = id_of(
        &owner
            .create_subnet(&json!({"name": "tiny", "cidr": "10.0.0.0/29", "gateway_ip": "10.0.0.4", "vpc_id": vpc}))
            .await
            .ok(200)["subnet"],
    );
    let mut got = Vec::new();
    for _ in 0..5 {
        got.push(port_ip(&owner.port_ok(&subnet, VM_OWNER).await));
    }
    assert_eq!(
        got,
        vec!["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.5", "10.0.0.6"]
    );
    assert_eq!(
        owner.show_subnet(&subnet).await.ok(200)["subnet"]["available_ip_address_count"],
        0
    );
    let msg = owner
        .create_port(&json!({"network_id": subnet}))
        .await
        .err(409, "VPC.0703");
    assert!(msg.contains("no free address"), "{msg}");
    // Freeing one makes exactly that one available again.
    let ports = owner
        .list_ports(&format!(
            "fixed_ips=ip_address%3D10.0.0.3&network_id={subnet}"
        ))
        .await
        .ok(200);
    owner.delete_port(&id_of(&ports["ports"][0])).await.ok(204);
    assert_eq!(port_ip(&owner.port_ok(&subnet, VM_OWNER).await), "10.0.0.3");
}

async fn thirty_concurrent_port_creates_never_share_an_address(app: &mut TestApp) {
    let owner = app.owner();
    // A /27 has 29 assignable addresses (without .0, the gateway .1 and .31): one of 30
    // concurrent creates must find the subnet full.
    let net = owner.network_with("10.0.0.0/16", "10.0.0.0/27").await;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..30 {
        let owner = owner.clone();
        let body = json!({"network_id": net.subnet_id, "device_owner": VM_OWNER});
        tasks.spawn(async move { owner.create_port(&body).await });
    }
    let mut ips = Vec::new();
    let mut full = 0;
    while let Some(r) = tasks.join_next().await {
        let r = r.expect("task");
        if r.status == 200 {
            ips.push(port_ip(&r.json()["port"]));
        } else {
            r.err(409, "VPC.0703");
            full += 1;
        }
    }
    assert_eq!((ips.len(), full), (29, 1), "{ips:?}");
    let distinct: HashSet<&String> = ips.iter().collect();
    assert_eq!(
        distinct.len(),
        29,
        "an address was handed out twice: {ips:?}"
    );
    let expected: Vec<String> = (2..=30).map(|i| format!("10.0.0.{i}")).collect();
    ips.sort_by_key(|s| ip(s));
    assert_eq!(ips, expected);
    assert_eq!(owner.allocated(&net.subnet_id).await, expected);
}

async fn private_ips_list_every_allocated_address(app: &mut TestApp) {
    let owner = app.owner();
    let net = owner.network_with("10.0.0.0/16", "10.0.1.0/24").await;
    assert_eq!(
        owner.private_ips(&net.subnet_id, "").await.ok(200),
        json!({"privateips": []})
    );
    let vm = owner.port_ok(&net.subnet_id, VM_OWNER).await;
    let unbound = owner
        .create_port(&json!({"network_id": net.subnet_id}))
        .await
        .ok(200)["port"]
        .clone();
    let v = owner.private_ips(&net.subnet_id, "").await.ok(200);
    let list = v["privateips"].as_array().expect("privateips");
    assert_eq!(list.len(), 2, "{v}");
    for (entry, port, owner_kind, status) in [
        (&list[0], &vm, VM_OWNER, "ACTIVE"),
        (&list[1], &unbound, "", "DOWN"),
    ] {
        for key in [
            "id",
            "status",
            "subnet_id",
            "tenant_id",
            "device_owner",
            "ip_address",
        ] {
            assert!(entry.get(key).is_some(), "lacks {key}: {entry}");
        }
        assert_eq!(entry["ip_address"], port_ip(port));
        assert_eq!(entry["subnet_id"], net.subnet_id);
        assert_eq!(entry["tenant_id"], OWNER.projects[0]);
        assert_eq!(entry["device_owner"], owner_kind);
        assert_eq!(entry["status"], status);
    }
    let first = owner.private_ips(&net.subnet_id, "limit=1").await.ok(200);
    assert_eq!(first["privateips"].as_array().map(Vec::len), Some(1));
    let rest = owner
        .private_ips(
            &net.subnet_id,
            &format!("limit=5&marker={}", id_of(&first["privateips"][0])),
        )
        .await
        .ok(200);
    assert_eq!(rest["privateips"][0]["ip_address"], port_ip(&unbound));
    owner.private_ips(&uuid(), "").await.err(404, "VPC.0202");
}

async fn vpc_with_subnets_cannot_be_deleted(app: &mut TestApp) {
    let owner = app.owner();
    let net = owner.network().await;
    let msg = owner.delete_vpc(&net.vpc_id).await.err(409, "VPC.0109");
    assert!(msg.contains("subnet"), "{msg}");
    owner.show_vpc(&net.vpc_id).await.ok(200);
    owner.show_subnet(&net.subnet_id).await.ok(200);
    owner
        .delete_subnet(&net.vpc_id, &net.subnet_id)
        .await
        .ok(204);
    owner.delete_vpc(&net.vpc_id).await.ok(204);
    owner.show_vpc(&net.vpc_id).await.err(404, "VPC.0003");
}

async fn subnet_with_ports_or_endpoint_addresses_cannot_be_deleted(app: &mut TestApp) {
    let owner = app.owner();
    // A port holds an address.
    let with_port = owner.network_with("10.0.0.0/16", "10.0.1.0/24").await;
    let port = owner.port_ok(&with_port.subnet_id, VM_OWNER).await;
    owner
        .delete_subnet(&with_port.vpc_id, &with_port.subnet_id)
        .await
        .err(409, "VPC.0211");
    owner.show_port(&id_of(&port)).await.ok(200);
    assert_eq!(
        owner.allocated(&with_port.subnet_id).await,
        vec![port_ip(&port)]
    );
    owner.delete_port(&id_of(&port)).await.ok(204);
    owner
        .delete_subnet(&with_port.vpc_id, &with_port.subnet_id)
        .await
        .ok(204);

    // An endpoint holds an address.
    let svc = owner
        .available_service(&with(
            owner.service().await,
            "approval_enabled",
            json!(false),
        ))
        .await;
    let consumer_net = owner.network_with("10.5.0.0/16", "10.5.0.0/24").await;
    let ep = owner
        .endpoint_ok(&endpoint_to(&id_of(&svc), &consumer_net))
        .await;
    let accepted = owner.wait_endpoint_status(&id_of(&ep), "accepted").await;
    owner
        .delete_subnet(&consumer_net.vpc_id, &consumer_net.subnet_id)
        .await
        .err(409, "VPC.0211");
    owner.show_subnet(&consumer_net.subnet_id).await.ok(200);
    assert_eq!(
        owner.allocated(&consumer_net.subnet_id).await,
        vec![accepted["ip"].as_str().expect("ip").to_string()]
    );
    owner.delete_endpoint(&id_of(&ep)).await.ok(204);
    owner.wait_endpoint_gone(&id_of(&ep)).await;
    owner
        .delete_subnet(&consumer_net.vpc_id, &consumer_net.subnet_id)
        .await
        .ok(204);
}

async fn port_backing_a_service_cannot_be_deleted(app: &mut TestApp) {
    let owner = app.owner();
    let backing = owner.backend().await;
    let id = id_of(&owner.create_ok(&service_on(&backing, DEFAULT_PORTS)).await);
    let msg = owner
        .delete_port(&backing.port_id)
        .await
        .err(409, "VPC.0710");
    assert!(msg.contains(&id), "{msg}");
    owner.show_port(&backing.port_id).await.ok(200);
    assert_eq!(
        owner.allocated(&backing.subnet_id).await,
        vec![backing.ip.clone()]
    );
    owner
        .delete_subnet(&backing.vpc_id, &backing.subnet_id)
        .await
        .err(409, "VPC.0211");
    owner.delete_vpc(&backing.vpc_id).await.err(409, "VPC.0109");
    assert_eq!(owner.show(&id).await.ok(200)["port_id"], backing.port_id);
    // Once the service is gone, everything can go, innermost first.
    owner.delete(&id).await.ok(204);
    owner.wait_gone(&id).await;
    owner.delete_port(&backing.port_id).await.ok(204);
    owner
        .delete_subnet(&backing.vpc_id, &backing.subnet_id)
        .await
        .ok(204);
    owner.delete_vpc(&backing.vpc_id).await.ok(204);
}

/// A gateway endpoint holds no address, only its VPC (and route tables): deleting the VPC under
/// it would leave the endpoint pointing at nothing.
async fn vpc_with_a_gateway_endpoint_cannot_be_deleted(app: &mut TestApp) {
    let operator = app.operator();
    let body = with(
        with(operator.service().await, "service_type", json!("gateway")),
        "approval_enabled",
        json!(false),
    );
    let sid = id_of(&operator.available_service(&body).await);
    let consumer = app.consumer();
    let vpc = consumer.vpc_ok("10.0.0.0/16").await;
    let e = consumer
        .endpoint_ok(&json!({"endpoint_service_id": sid, "vpc_id": vpc}))
        .await;
    consumer.wait_endpoint_status(&id_of(&e), "accepted").await;
    let r = consumer.delete_vpc(&vpc).await;
    assert_eq!(r.status, 409, "{}", r.text());
    r.err(409, "VPC.0109");
    consumer.show_vpc(&vpc).await.ok(200);
    // Once the endpoint is gone, so may the VPC be.
    consumer.delete_endpoint(&id_of(&e)).await.ok(204);
    consumer.wait_endpoint_gone(&id_of(&e)).await;
    consumer.delete_vpc(&vpc).await.ok(204);
}

async fn other_projects_get_404_for_every_inventory_resource(app: &mut TestApp) {
    let owner = app.owner();
    let backing = owner.backend().await;
    for other in [app.owner_other_project(), app.consumer()] {
        other.show_vpc(&backing.vpc_id).await.err(404, "VPC.0003");
        other
            .update_vpc(&backing.vpc_id, &json!({"name": "mine"}))
            .await
            .err(404, "VPC.0003");
        other.delete_vpc(&backing.vpc_id).await.err(404, "VPC.0003");
        other
            .show_subnet(&backing.subnet_id)
            .await
            .err(404, "VPC.0202");
        other
            .update_subnet(
                &backing.vpc_id,
                &backing.subnet_id,
                &json!({"name": "mine"}),
            )
            .await
            .err(404, "VPC.0202");
        other
            .delete_subnet(&backing.vpc_id, &backing.subnet_id)
            .await
            .err(404, "VPC.0202");
        other
            .private_ips(&backing.subnet_id, "")
            .await
            .err(404, "VPC.0202");
        other.show_port(&backing.port_id).await.err(404, "VPC.0702");
        other
            .update_port(&backing.port_id, &json!({"name": "mine"}))
            .await
            .err(404, "VPC.0702");
        other
            .delete_port(&backing.port_id)
            .await
            .err(404, "VPC.0702");
        // Nothing can be made inside another project's VPC or subnet.
        other
            .create_subnet(&json!({"name": "s", "cidr": "10.0.200.0/24", "gateway_ip": "10.0.200.1", "vpc_id": backing.vpc_id}))
            .await
            .err(404, "VPC.0003");
        other
            .create_port(&json!({"network_id": backing.subnet_id}))
            .await
            .err(404, "VPC.0202");
        for r in [
            other.list_vpcs("").await,
            other.list_subnets("").await,
            other.list_ports("").await,
        ] {
            let v = r.ok(200);
            let text = v.to_string();
            assert!(!text.contains(&backing.vpc_id), "leaked: {text}");
        }
        assert_eq!(other.list_vpcs("").await.ok(200)["vpcs"], json!([]));
        assert_eq!(
            other
                .list_subnets(&format!("vpc_id={}", backing.vpc_id))
                .await
                .ok(200)["subnets"],
            json!([])
        );
        assert_eq!(
            other
                .list_ports(&format!("id={}", backing.port_id))
                .await
                .ok(200)["ports"],
            json!([])
        );
    }
    // The owner's resources are untouched.
    let vpc = owner.show_vpc(&backing.vpc_id).await.ok(200);
    assert_eq!(vpc["vpc"]["name"], "");
    let port = owner.show_port(&backing.port_id).await.ok(200);
    assert_eq!(port["port"]["name"], "");
    assert_eq!(owner.allocated(&backing.subnet_id).await, vec![backing.ip]);
}

async fn marker_of_another_project_is_refused_like_an_unknown_one(app: &mut TestApp) {
    let owner = app.owner();
    let net = owner.network().await;
    let port = owner.port_ok(&net.subnet_id, VM_OWNER).await;
    let other = app.consumer();
    other.network().await;
    for (r, field) in [
        (
            other.list_vpcs(&format!("marker={}", net.vpc_id)).await,
            "marker",
        ),
        (
            other
                .list_subnets(&format!("marker={}", net.subnet_id))
                .await,
            "marker",
        ),
        (
            other.list_ports(&format!("marker={}", id_of(&port))).await,
            "marker",
        ),
    ] {
        assert_eq!(
            r.status,
            400,
            "another project's id worked as a marker: {}",
            r.text()
        );
        assert!(r.text().contains(field), "{}", r.text());
    }
}

async fn service_needs_an_existing_port_of_the_project(app: &mut TestApp) {
    let owner = app.owner();
    let backing = owner.backend().await;
    let missing = Backing {
        port_id: uuid(),
        ..backing.clone()
    };
    let msg = owner
        .create(&service_on(&missing, DEFAULT_PORTS))
        .await
        .err(400, "EndPoint.3008");
    assert!(msg.contains(&missing.port_id), "{msg}");
    // Another project's port (same account) is not this project's.
    let theirs = app.owner_other_project().backend().await;
    owner
        .create(&service_on(&theirs, DEFAULT_PORTS))
        .await
        .err(400, "EndPoint.3008");
    // A deleted port is gone.
    owner.delete_port(&backing.port_id).await.ok(204);
    owner
        .create(&service_on(&backing, DEFAULT_PORTS))
        .await
        .err(400, "EndPoint.3008");
    assert_eq!(owner.list_ids("").await, (vec![], 0));
}

async fn service_port_must_be_in_the_given_vpc(app: &mut TestApp) {
    let owner = app.owner();
    let backing = owner.backend().await;
    let elsewhere = owner.network_with("10.9.0.0/16", "10.9.0.0/24").await;
    for vpc_id in [elsewhere.vpc_id.clone(), uuid()] {
        let wrong = Backing {
            vpc_id,
            ..backing.clone()
        };
        let msg = owner
            .create(&service_on(&wrong, DEFAULT_PORTS))
            .await
            .err(400, "EndPoint.3042");
        assert!(msg.contains(&backing.port_id), "{msg}");
    }
    assert_eq!(owner.list_ids("").await, (vec![], 0));
    owner.create_ok(&service_on(&backing, DEFAULT_PORTS)).await;
}

async fn service_server_type_must_match_the_port(app: &mut TestApp) {
    let owner = app.owner();
    let net = owner.network().await;
    let typed = |b: &Backing, t: &str| with(service_on(b, DEFAULT_PORTS), "server_type", json!(t));
    let vm = owner.backing_in(&net, VM_OWNER).await;
    let lb = owner.backing_in(&net, LB_OWNER).await;
    let vip = owner.backing_in(&net, VIP_OWNER).await;
    let unbound = owner.backing_in(&net, "").await;
    let dhcp = owner.backing_in(&net, "network:dhcp").await;
    for (b, t) in [
        (&vm, "LB"),
        (&vm, "VIP"),
        (&lb, "VM"),
        (&vip, "LB"),
        (&dhcp, "VM"),
        (&dhcp, "LB"),
    ] {
        owner
            .create(&typed(b, t))
            .await
            .err_naming(400, "EndPoint.3021", "server_type");
    }
    assert_eq!(owner.list_ids("").await, (vec![], 0));
    // Each kind backs its own type; an unbound port counts as a VM NIC.
    for (b, t) in [(&vm, "VM"), (&lb, "LB"), (&vip, "VIP"), (&unbound, "VM")] {
        assert_eq!(owner.create_ok(&typed(b, t)).await["server_type"], t);
    }
}

async fn service_vpc_must_not_overlap_the_reserved_range(app: &mut TestApp) {
    let owner = app.owner();
    for (vpc, subnet) in [
        ("198.19.128.0/17", "198.19.128.0/24"),
        ("198.19.200.0/24", "198.19.200.0/24"),
        ("198.0.0.0/8", "198.0.0.0/24"),
        ("198.19.0.0/16", "198.19.0.0/24"),
    ] {
        let net = owner.network_with(vpc, subnet).await;
        let b = owner.backing_in(&net, VM_OWNER).await;
        let msg = owner
            .create(&service_on(&b, DEFAULT_PORTS))
            .await
            .err(400, "EndPoint.3009");
        assert!(msg.contains("198.19.128.0/17"), "{vpc}: {msg}");
    }
    assert_eq!(owner.list_ids("").await, (vec![], 0));
    // Neighbours of the range are fine.
    for (vpc, subnet) in [
        ("198.19.0.0/17", "198.19.0.0/24"),
        ("198.20.0.0/16", "198.20.0.0/24"),
    ] {
        let net = owner.network_with(vpc, subnet).await;
        let b = owner.backing_in(&net, VM_OWNER).await;
        owner.create_ok(&service_on(&b, DEFAULT_PORTS)).await;
    }
}

/// The seed: "The destination address of the custom route in the VPC route table cannot overlap
/// with 198.19.128.0/17."
async fn service_vpc_routes_must_not_overlap_the_reserved_range(app: &mut TestApp) {
    let owner = app.owner();
    let backing = owner.backend().await;
    for destination in ["198.19.128.0/20", "198.19.0.0/16"] {
        owner
            .update_vpc(
                &backing.vpc_id,
                &json!({"routes": [{"destination": destination, "nexthop": "10.0.0.10"}]}),
            )
            .await
            .ok(200);
        let r = owner.create(&service_on(&backing, DEFAULT_PORTS)).await;
        assert_eq!(r.status, 400, "route to {destination}: {}", r.text());
        let msg = r.err(400, "EndPoint.3009");
        assert!(msg.contains("198.19.128.0/17"), "{msg}");
    }
    assert_eq!(owner.list_ids("").await, (vec![], 0));
    owner
        .update_vpc(
            &backing.vpc_id,
            &json!({"routes": [{"destination": "198.20.0.0/16", "nexthop": "10.0.0.10"}]}),
        )
        .await
        .ok(200);
    owner.create_ok(&service_on(&backing, DEFAULT_PORTS)).await;
}

async fn service_update_rechecks_a_new_port(app: &mut TestApp) {
    let owner = app.owner();
    let net = owner.network().await;
    let backing = owner.backing_in(&net, VM_OWNER).await;
    let id = id_of(&owner.create_ok(&service_on(&backing, DEFAULT_PORTS)).await);
    let other_vpc = owner.backend().await;
    let lb = owner.backing_in(&net, LB_OWNER).await;
    let theirs = app.consumer().backend().await;
    for (port_id, code) in [
        (uuid(), "EndPoint.3008"),
        (theirs.port_id.clone(), "EndPoint.3008"),
        (other_vpc.port_id.clone(), "EndPoint.3042"),
        (lb.port_id.clone(), "EndPoint.3021"),
    ] {
        owner
            .update(&id, &json!({ "port_id": port_id }))
            .await
            .err(400, code);
        assert_eq!(owner.show(&id).await.ok(200)["port_id"], backing.port_id);
    }
    // The old port stays guarded until a move succeeds; then the new one is.
    let next = owner.backing_in(&net, VM_OWNER).await;
    owner
        .delete_port(&backing.port_id)
        .await
        .err(409, "VPC.0710");
    let moved = owner
        .update(&id, &json!({ "port_id": next.port_id }))
        .await
        .ok(200);
    assert_eq!(moved["port_id"], next.port_id);
    owner.delete_port(&backing.port_id).await.ok(204);
    owner.delete_port(&next.port_id).await.err(409, "VPC.0710");
}

const INVENTORY_VPC: &str = "6b3c1f0e-0000-4000-8000-000000000001";
const INVENTORY_SUBNET: &str = "6b3c1f0e-0000-4000-8000-000000000002";
const INVENTORY_LB: &str = "6b3c1f0e-0000-4000-8000-000000000003";
const INVENTORY_VM: &str = "6b3c1f0e-0000-4000-8000-000000000004";
const INVENTORY_CONSUMER_VPC: &str = "6b3c1f0e-0000-4000-8000-000000000005";

fn inventory_toml() -> String {
    format!(
        r#"
[[vpc]]
project_id = "{owner}"
id = "{INVENTORY_VPC}"
name = "provider"
cidr = "10.8.0.0/16"
netns = "provider"

[[vpc.subnet]]
id = "{INVENTORY_SUBNET}"
name = "lb"
cidr = "10.8.1.0/24"
gateway_ip = "10.8.1.1"

[[vpc.subnet.port]]
id = "{INVENTORY_LB}"
name = "web-lb"
ip_address = "10.8.1.10"
device_owner = "neutron:LOADBALANCERV2"

[[vpc.subnet.port]]
id = "{INVENTORY_VM}"
name = "web-vm"
device_owner = "compute:test-1a"

[[vpc]]
project_id = "{consumer}"
id = "{INVENTORY_CONSUMER_VPC}"
cidr = "10.9.0.0/16"
"#,
        owner = OWNER.projects[0],
        consumer = CONSUMER.projects[0],
    )
}

async fn inventory_file_is_preloaded_once(app: &mut TestApp) {
    let check = |app: &TestApp| {
        let owner = app.owner();
        let consumer = app.consumer();
        async move {
            let vpcs = owner.list_vpcs("").await.ok(200);
            assert_eq!(ids_of(&vpcs, "vpcs"), vec![INVENTORY_VPC]);
            assert_eq!(vpcs["vpcs"][0]["name"], "provider");
            assert_eq!(vpcs["vpcs"][0]["cidr"], "10.8.0.0/16");
            let subnets = owner.list_subnets("").await.ok(200);
            assert_eq!(ids_of(&subnets, "subnets"), vec![INVENTORY_SUBNET]);
            assert_eq!(subnets["subnets"][0]["vpc_id"], INVENTORY_VPC);
            assert_eq!(subnets["subnets"][0]["gateway_ip"], "10.8.1.1");
            let ports = owner.list_ports("").await.ok(200);
            assert_eq!(ids_of(&ports, "ports"), vec![INVENTORY_LB, INVENTORY_VM]);
            let lb = &ports["ports"][0];
            assert_eq!(lb["name"], "web-lb");
            assert_eq!(lb["device_owner"], LB_OWNER);
            assert_eq!(port_ip(lb), "10.8.1.10");
            // The port without an address got the lowest free one.
            assert_eq!(port_ip(&ports["ports"][1]), "10.8.1.2");
            assert_eq!(
                owner.allocated(INVENTORY_SUBNET).await,
                vec!["10.8.1.2", "10.8.1.10"]
            );
            let theirs = consumer.list_vpcs("").await.ok(200);
            assert_eq!(ids_of(&theirs, "vpcs"), vec![INVENTORY_CONSUMER_VPC]);
            owner
                .show_vpc(INVENTORY_CONSUMER_VPC)
                .await
                .err(404, "VPC.0003");
        }
    };
    check(app).await;
    // The preloaded ports back services like any other.
    let owner = app.owner();
    let lb = Backing {
        vpc_id: INVENTORY_VPC.into(),
        subnet_id: INVENTORY_SUBNET.into(),
        port_id: INVENTORY_LB.into(),
        ip: "10.8.1.10".into(),
    };
    let svc = owner
        .create_ok(&with(
            service_on(&lb, DEFAULT_PORTS),
            "server_type",
            json!("LB"),
        ))
        .await;
    // A second start over the same database creates nothing twice and keeps the addresses.
    app.restart(Duration::ZERO).await;
    check(app).await;
    app.owner().wait_status(&id_of(&svc), "available").await;
}

async fn inventory_preloaded_by_two_nodes_at_once_is_created_once(app: &mut TestApp) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("inventory.toml");
    std::fs::write(&path, inventory_toml()).expect("write the inventory");
    let mut cfg = app.config().clone();
    cfg.inventory = Some(path);
    let (a, b) = tokio::join!(ControlPlane::open(&cfg), ControlPlane::open(&cfg));
    for node in [a, b] {
        if let Err(e) = node {
            panic!("a node failed to start: {e:#}");
        }
    }
    let owner = app.owner();
    let vpcs = owner.list_vpcs("").await.ok(200);
    assert_eq!(ids_of(&vpcs, "vpcs"), vec![INVENTORY_VPC]);
    let subnets = owner.list_subnets("").await.ok(200);
    assert_eq!(ids_of(&subnets, "subnets"), vec![INVENTORY_SUBNET]);
    let ports = owner.list_ports("").await.ok(200);
    assert_eq!(ids_of(&ports, "ports"), vec![INVENTORY_LB, INVENTORY_VM]);
    assert_eq!(
        owner.allocated(INVENTORY_SUBNET).await,
        vec!["10.8.1.2", "10.8.1.10"]
    );
    let theirs = app.consumer().list_vpcs("").await.ok(200);
    assert_eq!(ids_of(&theirs, "vpcs"), vec![INVENTORY_CONSUMER_VPC]);
}

async fn invalid_inventory_file_stops_the_start_naming_the_file(app: &mut TestApp) {
    let dir = tempfile::tempdir().expect("temp dir");
    let owner_project = OWNER.projects[0];
    for (name, text) in [
        (
            "outside.toml",
            format!(
                "[[vpc]]\nproject_id = \"{owner_project}\"\nid = \"{INVENTORY_VPC}\"\ncidr = \"10.8.0.0/16\"\n\
                 [[vpc.subnet]]\nid = \"{INVENTORY_SUBNET}\"\nname = \"s\"\ncidr = \"10.9.0.0/24\"\ngateway_ip = \"10.9.0.1\"\n"
            ),
        ),
        (
            "unknown-field.toml",
            format!("[[vpc]]\nproject_id = \"{owner_project}\"\nid = \"{INVENTORY_VPC}\"\ncidr = \"10.8.0.0/16\"\ncolour = \"blue\"\n"),
        ),
        ("not-toml.toml", "[[vpc]\n".to_string()),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("write the inventory");
        let mut cfg = app.config().clone();
        cfg.inventory = Some(path);
        match ControlPlane::open(&cfg).await {
            Ok(_) => panic!("{name}: the start did not fail"),
            Err(e) => {
                let msg = format!("{e:#}");
                assert!(msg.contains(name), "{name}: {msg}");
            }
        }
    }
    // The subnet outside its VPC was not made (its VPC may have been, before the refusal).
    app.owner()
        .show_subnet(INVENTORY_SUBNET)
        .await
        .err(404, "VPC.0202");
}
