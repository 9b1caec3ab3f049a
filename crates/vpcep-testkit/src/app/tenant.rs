//! [`Tenant`]: a signed client for one account and project, with one method per operation
//! (endpoint services, endpoints, connections, permissions, tags, quotas, and the VPC API's
//! VPCs, subnets and ports), and the request-body helpers.
//!
//! Backends: a service needs a real port of its project. [`Tenant::service`] makes a create
//! body on a fresh VM port of the project's default network; [`Tenant::backend`] and
//! [`Tenant::network`] make a VPC and subnet (and port) of their own; [`service_on`] and
//! [`endpoint_to`] build bodies on them.

use super::{AccountSpec, Resp};
use crate::wait::{eventually, SETTLE};
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;
use vpcep_client::Client;

/// Polls `show` until the resource it reads has `status`; answers it.
async fn poll_status<F: std::future::Future<Output = Resp>>(
    show: impl Fn() -> F,
    status: &str,
) -> Value {
    eventually(SETTLE, || async {
        let r = show().await;
        match r.status {
            200 if r.json()["status"] == status => Ok(r.json()),
            _ => Err((r.status, r.text())),
        }
    })
    .await
}

/// Polls `show` until the resource it reads is gone: 404 with error code `code`.
async fn poll_gone<F: std::future::Future<Output = Resp>>(show: impl Fn() -> F, code: &str) {
    eventually(SETTLE, || async {
        let r = show().await;
        match r.status {
            404 => {
                r.err(404, code);
                Ok(())
            }
            _ => Err((r.status, r.text())),
        }
    })
    .await
}

/// Each project's default network (see [`Tenant::fresh_port`]), made on first use.
pub(super) type Networks = Arc<tokio::sync::Mutex<HashMap<&'static str, Network>>>;

/// A signed client for one account acting in one project.
#[derive(Clone)]
pub struct Tenant {
    /// Whose credentials sign.
    pub account: AccountSpec,
    /// The `{project_id}` of the paths.
    pub project_id: &'static str,
    /// The signed client.
    pub client: Client,
    pub(super) networks: Networks,
}

const SERVICES: &str = "/v1/{project_id}/vpc-endpoint-services";

impl Tenant {
    /// Sends a signed request; `{project_id}` in the path is the tenant's project.
    pub async fn send(&self, method: Method, path_and_query: &str, body: Option<Vec<u8>>) -> Resp {
        self.client
            .send_raw(method, path_and_query, body)
            .await
            .expect("transport")
            .into()
    }

    /// The same credentials with another `{project_id}` in the paths.
    pub fn in_project(&self, project_id: &'static str) -> Tenant {
        Tenant {
            project_id,
            client: self.client.with_project(project_id),
            ..self.clone()
        }
    }

    /// `create_endpoint_service` with a JSON body.
    pub async fn create(&self, body: &Value) -> Resp {
        self.create_raw(body.to_string().into_bytes()).await
    }

    /// `create_endpoint_service` with raw bytes.
    pub async fn create_raw(&self, body: Vec<u8>) -> Resp {
        self.send(Method::POST, SERVICES, Some(body)).await
    }

    /// `create_endpoint_service`, asserting 200; answers the service.
    pub async fn create_ok(&self, body: &Value) -> Value {
        self.create(body).await.ok(200)
    }

    /// `list_service_details`.
    pub async fn show(&self, id: &str) -> Resp {
        self.send(Method::GET, &format!("{SERVICES}/{id}"), None)
            .await
    }

    /// `list_endpoint_service` with a raw query string (without `?`).
    pub async fn list(&self, query: &str) -> Resp {
        let path = if query.is_empty() {
            SERVICES.to_string()
        } else {
            format!("{SERVICES}?{query}")
        };
        self.send(Method::GET, &path, None).await
    }

    /// `list_endpoint_service`, asserting 200; answers (ids in order, total_count).
    pub async fn list_ids(&self, query: &str) -> (Vec<String>, u64) {
        let v = self.list(query).await.ok(200);
        let ids = v["endpoint_services"]
            .as_array()
            .unwrap_or_else(|| panic!("endpoint_services is not a list: {v}"))
            .iter()
            .map(|s| s["id"].as_str().expect("id").to_string())
            .collect();
        (ids, v["total_count"].as_u64().expect("total_count"))
    }

    /// `update_endpoint_service`.
    pub async fn update(&self, id: &str, body: &Value) -> Resp {
        self.send(
            Method::PUT,
            &format!("{SERVICES}/{id}"),
            Some(body.to_string().into_bytes()),
        )
        .await
    }

    /// `update_endpoint_service_name`.
    pub async fn rename(&self, id: &str, name: &str) -> Resp {
        self.send(
            Method::PUT,
            &format!("{SERVICES}/{id}/name"),
            Some(
                json!({ "endpoint_service_name": name })
                    .to_string()
                    .into_bytes(),
            ),
        )
        .await
    }

    /// `delete_endpoint_service`.
    pub async fn delete(&self, id: &str) -> Resp {
        self.send(Method::DELETE, &format!("{SERVICES}/{id}"), None)
            .await
    }

    /// `list_service_describe_details` with a raw query string.
    pub async fn describe(&self, query: &str) -> Resp {
        self.send(Method::GET, &format!("{SERVICES}/describe?{query}"), None)
            .await
    }

    /// `list_service_public_details` with a raw query string.
    pub async fn public(&self, query: &str) -> Resp {
        let path = if query.is_empty() {
            format!("{SERVICES}/public")
        } else {
            format!("{SERVICES}/public?{query}")
        };
        self.send(Method::GET, &path, None).await
    }

    /// Polls `list_service_details` until the service has `status`; answers it.
    pub async fn wait_status(&self, id: &str, status: &str) -> Value {
        poll_status(|| self.show(id), status).await
    }

    /// Polls `list_service_details` until the service is gone (404 EndPoint.0005).
    pub async fn wait_gone(&self, id: &str) {
        poll_gone(|| self.show(id), "EndPoint.0005").await
    }
}

/// A fresh UUID string (port, VPC ids).
pub fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A TCP port mapping for request bodies.
pub fn port(client: u16, server: u16) -> Value {
    json!({ "client_port": client, "server_port": server, "protocol": "TCP" })
}

/// The `ports` of a request body: TCP mappings (client, server), in order.
pub fn ports(pairs: &[(u16, u16)]) -> Value {
    pairs.iter().map(|&(c, s)| port(c, s)).collect()
}

/// A valid create body (the seed example's shape) on `backing` (a `VM` port) with `ports`.
pub fn service_on(backing: &Backing, ports: &[(u16, u16)]) -> Value {
    json!({
        "port_id": backing.port_id,
        "vpc_id": backing.vpc_id,
        "server_type": "VM",
        "ports": self::ports(ports),
    })
}

/// The default port mappings of [`Tenant::service`].
pub const DEFAULT_PORTS: &[(u16, u16)] = &[(8080, 90), (8081, 80)];

/// `body` with `key` set to `value`.
pub fn with(mut body: Value, key: &str, value: Value) -> Value {
    body[key] = value;
    body
}

/// `body` without `key`.
pub fn without(mut body: Value, key: &str) -> Value {
    body.as_object_mut().expect("object").remove(key);
    body
}

/// The `id` of a service JSON.
pub fn id_of(v: &Value) -> String {
    v["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in {v}"))
        .to_string()
}
/// `device_owner` of a VM's NIC: backs `server_type` `VM`.
pub const VM_OWNER: &str = "compute:test-1a";
/// `device_owner` of a load balancer's VIP port: backs `server_type` `LB`.
pub const LB_OWNER: &str = "neutron:LOADBALANCERV2";
/// `device_owner` of a virtual IP port: backs `server_type` `VIP`.
pub const VIP_OWNER: &str = "neutron:VIP_PORT";

/// The `device_owner` a port needs to back a service of `server_type`.
pub fn device_owner_for(server_type: &str) -> &'static str {
    match server_type {
        "VM" => VM_OWNER,
        "LB" => LB_OWNER,
        "VIP" => VIP_OWNER,
        other => panic!("no device owner for server_type {other:?}"),
    }
}

/// A VPC with one subnet, made through the VPC API.
#[derive(Debug, Clone)]
pub struct Network {
    /// The VPC.
    pub vpc_id: String,
    /// Its subnet (also the `network_id` of ports).
    pub subnet_id: String,
    /// The subnet's CIDR.
    pub cidr: String,
}

/// A port that can back an endpoint service, with where it sits.
#[derive(Debug, Clone)]
pub struct Backing {
    /// The port's VPC.
    pub vpc_id: String,
    /// The port's subnet.
    pub subnet_id: String,
    /// The port.
    pub port_id: String,
    /// Its fixed IP.
    pub ip: String,
}

/// The first host address of an IPv4 CIDR (`10.0.1.0/24` → `10.0.1.1`): the tests' gateway.
pub fn first_host(cidr: &str) -> String {
    let (net, _) = cidr.split_once('/').expect("CIDR");
    let ip: std::net::Ipv4Addr = net.parse().expect("IPv4 network");
    std::net::Ipv4Addr::from(u32::from(ip) + 1).to_string()
}

/// A create-endpoint body for `service_id` in `net`.
pub fn endpoint_to(service_id: &str, net: &Network) -> Value {
    json!({
        "endpoint_service_id": service_id,
        "vpc_id": net.vpc_id,
        "subnet_id": net.subnet_id,
    })
}

const VPCS: &str = "/v1/{project_id}/vpcs";
const SUBNETS: &str = "/v1/{project_id}/subnets";
const PORTS: &str = "/v1/{project_id}/ports";
const ENDPOINTS: &str = "/v1/{project_id}/vpc-endpoints";

fn with_query(path: &str, query: &str) -> String {
    if query.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{query}")
    }
}

/// The `id` strings of a JSON list.
pub fn ids_in(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(id_of)
        .collect()
}

impl Tenant {
    async fn post(&self, path: &str, body: &Value) -> Resp {
        self.send(Method::POST, path, Some(body.to_string().into_bytes()))
            .await
    }

    async fn put(&self, path: &str, body: &Value) -> Resp {
        self.send(Method::PUT, path, Some(body.to_string().into_bytes()))
            .await
    }

    async fn get(&self, path: &str) -> Resp {
        self.send(Method::GET, path, None).await
    }

    async fn del(&self, path: &str) -> Resp {
        self.send(Method::DELETE, path, None).await
    }

    /// `create_vpc` with `{"vpc": vpc}`.
    pub async fn create_vpc(&self, vpc: &Value) -> Resp {
        self.post(VPCS, &json!({ "vpc": vpc })).await
    }

    /// `create_vpc` with this CIDR, asserting 200; answers the VPC id.
    pub async fn vpc_ok(&self, cidr: &str) -> String {
        id_of(&self.create_vpc(&json!({ "cidr": cidr })).await.ok(200)["vpc"])
    }

    /// `show_vpc`.
    pub async fn show_vpc(&self, id: &str) -> Resp {
        self.get(&format!("{VPCS}/{id}")).await
    }

    /// `list_vpcs` with a raw query.
    pub async fn list_vpcs(&self, query: &str) -> Resp {
        self.get(&with_query(VPCS, query)).await
    }

    /// `update_vpc` with `{"vpc": vpc}`.
    pub async fn update_vpc(&self, id: &str, vpc: &Value) -> Resp {
        self.put(&format!("{VPCS}/{id}"), &json!({ "vpc": vpc }))
            .await
    }

    /// `delete_vpc`.
    pub async fn delete_vpc(&self, id: &str) -> Resp {
        self.del(&format!("{VPCS}/{id}")).await
    }

    /// `create_subnet` with `{"subnet": subnet}`.
    pub async fn create_subnet(&self, subnet: &Value) -> Resp {
        self.post(SUBNETS, &json!({ "subnet": subnet })).await
    }

    /// `create_subnet` with this CIDR (gateway: its first host), asserting 200; answers the subnet id.
    pub async fn subnet_ok(&self, vpc_id: &str, cidr: &str) -> String {
        let body = json!({
            "name": "subnet",
            "cidr": cidr,
            "gateway_ip": first_host(cidr),
            "vpc_id": vpc_id,
        });
        id_of(&self.create_subnet(&body).await.ok(200)["subnet"])
    }

    /// `show_subnet`.
    pub async fn show_subnet(&self, id: &str) -> Resp {
        self.get(&format!("{SUBNETS}/{id}")).await
    }

    /// `list_subnets` with a raw query.
    pub async fn list_subnets(&self, query: &str) -> Resp {
        self.get(&with_query(SUBNETS, query)).await
    }

    /// `update_subnet` with `{"subnet": subnet}`.
    pub async fn update_subnet(&self, vpc_id: &str, id: &str, subnet: &Value) -> Resp {
        self.put(
            &format!("{VPCS}/{vpc_id}/subnets/{id}"),
            &json!({ "subnet": subnet }),
        )
        .await
    }

    /// `delete_subnet`.
    pub async fn delete_subnet(&self, vpc_id: &str, id: &str) -> Resp {
        self.del(&format!("{VPCS}/{vpc_id}/subnets/{id}")).await
    }

    /// `create_port` with `{"port": port}`.
    pub async fn create_port(&self, port: &Value) -> Resp {
        self.post(PORTS, &json!({ "port": port })).await
    }

    /// `create_port` in `subnet_id` with `device_owner`, asserting 200; answers the port.
    pub async fn port_ok(&self, subnet_id: &str, device_owner: &str) -> Value {
        let body = json!({ "network_id": subnet_id, "device_owner": device_owner });
        self.create_port(&body).await.ok(200)["port"].clone()
    }

    /// `show_port`.
    pub async fn show_port(&self, id: &str) -> Resp {
        self.get(&format!("{PORTS}/{id}")).await
    }

    /// `list_ports` with a raw query.
    pub async fn list_ports(&self, query: &str) -> Resp {
        self.get(&with_query(PORTS, query)).await
    }

    /// `update_port` with `{"port": port}`.
    pub async fn update_port(&self, id: &str, port: &Value) -> Resp {
        self.put(&format!("{PORTS}/{id}"), &json!({ "port": port }))
            .await
    }

    /// `delete_port`.
    pub async fn delete_port(&self, id: &str) -> Resp {
        self.del(&format!("{PORTS}/{id}")).await
    }

    /// `list_privateips` with a raw query.
    pub async fn private_ips(&self, subnet_id: &str, query: &str) -> Resp {
        self.get(&with_query(
            &format!("{SUBNETS}/{subnet_id}/privateips"),
            query,
        ))
        .await
    }

    /// `list_privateips`, asserting 200; answers the allocated addresses, sorted.
    pub async fn allocated(&self, subnet_id: &str) -> Vec<String> {
        let v = self.private_ips(subnet_id, "").await.ok(200);
        let mut ips: Vec<String> = v["privateips"]
            .as_array()
            .unwrap_or_else(|| panic!("no privateips: {v}"))
            .iter()
            .map(|p| p["ip_address"].as_str().expect("ip_address").to_string())
            .collect();
        ips.sort_by_key(|ip| ip.parse::<std::net::Ipv4Addr>().expect("IPv4"));
        ips
    }

    /// A new VPC of `vpc_cidr` with one subnet of `subnet_cidr`.
    pub async fn network_with(&self, vpc_cidr: &str, subnet_cidr: &str) -> Network {
        let vpc_id = self.vpc_ok(vpc_cidr).await;
        let subnet_id = self.subnet_ok(&vpc_id, subnet_cidr).await;
        Network {
            vpc_id,
            subnet_id,
            cidr: subnet_cidr.into(),
        }
    }

    /// A new VPC 10.0.0.0/16 with the subnet 10.0.0.0/20.
    pub async fn network(&self) -> Network {
        self.network_with("10.0.0.0/16", "10.0.0.0/20").await
    }

    /// A new port with `device_owner` in `net`.
    pub async fn backing_in(&self, net: &Network, device_owner: &str) -> Backing {
        let p = self.port_ok(&net.subnet_id, device_owner).await;
        Backing {
            vpc_id: net.vpc_id.clone(),
            subnet_id: net.subnet_id.clone(),
            port_id: id_of(&p),
            ip: p["fixed_ips"][0]["ip_address"]
                .as_str()
                .expect("fixed ip")
                .to_string(),
        }
    }

    /// A new VPC, subnet and VM port, for a test that needs a backend of its own.
    pub async fn backend(&self) -> Backing {
        let net = self.network().await;
        self.backing_in(&net, VM_OWNER).await
    }

    /// This project's default network (10.0.0.0/16 with the subnet 10.0.0.0/18), made on
    /// first use and shared by [`Tenant::fresh_port`].
    pub async fn default_network(&self) -> Network {
        let mut nets = self.networks.lock().await;
        if let Some(net) = nets.get(self.project_id) {
            return net.clone();
        }
        let net = self.network_with("10.0.0.0/16", "10.0.0.0/18").await;
        nets.insert(self.project_id, net.clone());
        net
    }

    /// A new VM port in the default network: one request per service after the first.
    pub async fn fresh_port(&self) -> Backing {
        self.fresh_port_of("VM").await
    }

    /// A new port in the default network that backs `server_type`.
    pub async fn fresh_port_of(&self, server_type: &str) -> Backing {
        let net = self.default_network().await;
        self.backing_in(&net, device_owner_for(server_type)).await
    }

    /// A valid create body on a fresh VM port with [`DEFAULT_PORTS`].
    pub async fn service(&self) -> Value {
        service_on(&self.fresh_port().await, DEFAULT_PORTS)
    }

    /// `create_endpoint_service` with `body`, then waits until the service is `available`; answers it.
    pub async fn available_service(&self, body: &Value) -> Value {
        let id = id_of(&self.create_ok(body).await);
        self.wait_status(&id, "available").await
    }

    /// `create_endpoint`.
    pub async fn create_endpoint(&self, body: &Value) -> Resp {
        self.post(ENDPOINTS, body).await
    }

    /// `create_endpoint`, asserting 200; answers the endpoint.
    pub async fn endpoint_ok(&self, body: &Value) -> Value {
        self.create_endpoint(body).await.ok(200)
    }

    /// `list_endpoint_info_details`.
    pub async fn show_endpoint(&self, id: &str) -> Resp {
        self.get(&format!("{ENDPOINTS}/{id}")).await
    }

    /// `list_endpoints` with a raw query.
    pub async fn list_endpoints(&self, query: &str) -> Resp {
        self.get(&with_query(ENDPOINTS, query)).await
    }

    /// `list_endpoints`, asserting 200; answers (ids in order, total_count).
    pub async fn list_endpoint_ids(&self, query: &str) -> (Vec<String>, u64) {
        let v = self.list_endpoints(query).await.ok(200);
        (
            ids_in(&v["endpoints"]),
            v["total_count"].as_u64().expect("total_count"),
        )
    }

    /// `update_endpoint_white`.
    pub async fn update_whitelist(&self, id: &str, body: &Value) -> Resp {
        self.put(&format!("{ENDPOINTS}/{id}"), body).await
    }

    /// `delete_endpoint`.
    pub async fn delete_endpoint(&self, id: &str) -> Resp {
        self.del(&format!("{ENDPOINTS}/{id}")).await
    }

    /// `update_endpoint_policy`.
    pub async fn update_policy(&self, id: &str, body: &Value) -> Resp {
        self.put(&format!("{ENDPOINTS}/{id}/policy"), body).await
    }

    /// `delete_endpoint_policy`.
    pub async fn delete_policy(&self, id: &str) -> Resp {
        self.del(&format!("{ENDPOINTS}/{id}/policy")).await
    }

    /// `update_endpoint_routetable`.
    pub async fn update_routetables(&self, id: &str, body: &Value) -> Resp {
        self.put(&format!("{ENDPOINTS}/{id}/routetables"), body)
            .await
    }

    /// `upgrade_endpoint`.
    pub async fn upgrade_endpoint(&self, id: &str, body: &Value) -> Resp {
        self.post(
            &format!("/v2/{{project_id}}/vpc-endpoints/{id}/upgrade"),
            body,
        )
        .await
    }

    /// Polls `list_endpoint_info_details` until the endpoint has `status`; answers it.
    pub async fn wait_endpoint_status(&self, id: &str, status: &str) -> Value {
        poll_status(|| self.show_endpoint(id), status).await
    }

    /// Polls `list_endpoint_info_details` until the endpoint is gone (404 EndPoint.2006).
    pub async fn wait_endpoint_gone(&self, id: &str) {
        poll_gone(|| self.show_endpoint(id), "EndPoint.2006").await
    }

    /// `list_service_connections` with a raw query.
    pub async fn connections(&self, service_id: &str, query: &str) -> Resp {
        self.get(&with_query(
            &format!("{SERVICES}/{service_id}/connections"),
            query,
        ))
        .await
    }

    /// `accept_or_reject_endpoint` with `action` on `endpoints`.
    pub async fn connection_action(
        &self,
        service_id: &str,
        action: &str,
        endpoints: &[&str],
    ) -> Resp {
        self.post(
            &format!("{SERVICES}/{service_id}/connections/action"),
            &json!({ "action": action, "endpoints": endpoints }),
        )
        .await
    }

    /// `update_endpoint_connections_desc`.
    pub async fn connection_descriptions(&self, service_id: &str, body: &Value) -> Resp {
        self.put(
            &format!("{SERVICES}/{service_id}/connections/description"),
            body,
        )
        .await
    }

    /// `add_or_remove_service_permissions` with `action` (`add` or `remove`) on `permissions` (type `domainId`).
    pub async fn permission_action(
        &self,
        service_id: &str,
        action: &str,
        permissions: &[&str],
    ) -> Resp {
        self.post(
            &format!("{SERVICES}/{service_id}/permissions/action"),
            &json!({ "action": action, "permissions": permissions }),
        )
        .await
    }

    /// `batch_add_endpoint_service_permissions` with a raw body.
    pub async fn batch_add_permissions(&self, service_id: &str, body: &Value) -> Resp {
        self.post(
            &format!("{SERVICES}/{service_id}/permissions/batch-create"),
            body,
        )
        .await
    }

    /// v2 `upgrade_endpoint_service` with an optional JSON body (the SDK sends none).
    pub async fn upgrade_service(&self, service_id: &str, body: Option<&Value>) -> Resp {
        self.send(
            Method::POST,
            &format!("/v2/{{project_id}}/vpc-endpoint-services/{service_id}/upgrade"),
            body.map(|b| b.to_string().into_bytes()),
        )
        .await
    }

    /// `list_quota_details` with a raw query; asserting 200, answers `(used, quota)` per resource type.
    pub async fn quotas(&self, query: &str) -> HashMap<String, (u64, u64)> {
        let v = self
            .get(&with_query("/v1/{project_id}/quotas", query))
            .await
            .ok(200);
        v["quotas"]["resources"]
            .as_array()
            .unwrap_or_else(|| panic!("no quotas.resources: {v}"))
            .iter()
            .map(|r| {
                (
                    r["type"].as_str().expect("type").to_string(),
                    (
                        r["used"].as_u64().expect("used"),
                        r["quota"].as_u64().expect("quota"),
                    ),
                )
            })
            .collect()
    }

    /// `batch_add_or_remove_resource_instance` on `/v1/{project_id}/{kind}/{id}/tags/action`.
    pub async fn tag_action(&self, kind: &str, id: &str, body: &Value) -> Resp {
        self.post(&format!("/v1/{{project_id}}/{kind}/{id}/tags/action"), body)
            .await
    }

    /// `list_query_project_resource_tags`.
    pub async fn project_tags(&self, kind: &str) -> Resp {
        self.get(&format!("/v1/{{project_id}}/{kind}/tags")).await
    }

    /// `list_resource_instances`.
    pub async fn query_resources(&self, kind: &str, body: &Value) -> Resp {
        self.post(
            &format!("/v1/{{project_id}}/{kind}/resource_instances/action"),
            body,
        )
        .await
    }
}
