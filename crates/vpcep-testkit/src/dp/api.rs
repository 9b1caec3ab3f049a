//! [`Api`]: the signed client of the data-plane tests, with the VPC and VPCEP calls they make.

use super::{AccountSpec, Backend, TENANT};
use crate::wait::{eventually, SETTLE};
use reqwest::Method;
use serde_json::{json, Value};
use vpcep_client::Client;

/// A signed client for the tenant's project.
#[derive(Clone)]
pub struct Api {
    client: Client,
}

impl Api {
    /// The tenant's client of the server at `base_url`.
    pub fn tenant(base_url: &str) -> Api {
        Api {
            client: crate::client(
                base_url,
                TENANT.access_key,
                TENANT.secret_key,
                TENANT.project(),
            ),
        }
    }

    /// The client of another tenant ([`VICTIM`](super::VICTIM), [`ATTACKER`](super::ATTACKER)) of the server at `base_url`.
    pub fn of(base_url: &str, account: AccountSpec) -> Api {
        Api {
            client: crate::client(
                base_url,
                account.access_key,
                account.secret_key,
                account.project(),
            ),
        }
    }

    /// The same account's client of another node.
    pub fn at(&self, base_url: &str) -> Api {
        Api {
            client: self.client.clone_to(base_url),
        }
    }

    /// Sends a signed request; answers the status and the JSON body (`null` when empty).
    pub async fn send(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let r = self
            .client
            .send_raw(method, path, body.map(|b| b.to_string().into_bytes()))
            .await
            .expect("transport");
        (r.status, r.json())
    }

    /// Like [`Api::send`], asserting a 2xx answer.
    pub async fn ok(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let m = method.clone();
        let (status, v) = self.send(method, path, body).await;
        assert!(
            (200..300).contains(&status),
            "{m} {path}: HTTP {status}: {v}"
        );
        v
    }

    /// A VPC with one subnet (gateway: the subnet's first host); answers (vpc_id, subnet_id).
    pub async fn vpc_with_subnet(&self, name: &str, cidr: &str, subnet: &str) -> (String, String) {
        let vpc = self
            .ok(
                Method::POST,
                "/v1/{project_id}/vpcs",
                Some(json!({"vpc": {"name": name, "cidr": cidr}})),
            )
            .await;
        let vpc_id = vpc["vpc"]["id"].as_str().expect("vpc id").to_string();
        let network: std::net::Ipv4Addr = subnet
            .split('/')
            .next()
            .and_then(|a| a.parse().ok())
            .expect("subnet cidr");
        let gateway = std::net::Ipv4Addr::from(u32::from(network) + 1).to_string();
        let s = self
            .ok(
                Method::POST,
                "/v1/{project_id}/subnets",
                Some(json!({"subnet": {
                    "name": format!("{name}-subnet"), "cidr": subnet,
                    "gateway_ip": gateway, "vpc_id": vpc_id,
                }})),
            )
            .await;
        let subnet_id = s["subnet"]["id"].as_str().expect("subnet id").to_string();
        (vpc_id, subnet_id)
    }

    /// A published service of this tenant: a provider VPC `{net}.0.0/16`, an echo backend on
    /// `{net}.0.10`, port 80 → the backend, `close`; answers the service id once `available`,
    /// and the backend.
    pub async fn published(&self, net: &str, approval: bool) -> (String, Backend) {
        let (vpc, subnet) = self
            .vpc_with_subnet(
                &format!("provider-{net}"),
                &format!("{net}.0.0/16"),
                &format!("{net}.0.0/24"),
            )
            .await;
        let backend = Backend::start(&format!("{net}.0.10:0")).await;
        let port = self.port(&subnet, &format!("{net}.0.10")).await;
        let svc = self
            .service(&port, &vpc, &[(80, backend.addr.port())], "close", approval)
            .await;
        self.wait_service(&svc, "available").await;
        (svc, backend)
    }

    /// A VM NIC with a fixed IP in `subnet_id`; answers its id.
    pub async fn port(&self, subnet_id: &str, ip: &str) -> String {
        let p = self
            .ok(
                Method::POST,
                "/v1/{project_id}/ports",
                Some(json!({"port": {
                    "name": format!("backend-{ip}"), "network_id": subnet_id,
                    "fixed_ips": [{"ip_address": ip}], "device_owner": "compute:az1",
                }})),
            )
            .await;
        p["port"]["id"].as_str().expect("port id").to_string()
    }

    /// `create_endpoint_service`: an interface service on `port_id`; answers its id.
    pub async fn service(
        &self,
        port_id: &str,
        vpc_id: &str,
        ports: &[(u16, u16)],
        tcp_proxy: &str,
        approval: bool,
    ) -> String {
        let v = self
            .ok(
                Method::POST,
                "/v1/{project_id}/vpc-endpoint-services",
                Some(json!({
                    "port_id": port_id, "vpc_id": vpc_id, "server_type": "VM",
                    "service_type": "interface", "tcp_proxy": tcp_proxy,
                    "approval_enabled": approval, "ports": crate::app::ports(ports),
                })),
            )
            .await;
        v["id"].as_str().expect("service id").to_string()
    }

    /// `list_service_details`.
    pub async fn show_service(&self, id: &str) -> (u16, Value) {
        self.send(
            Method::GET,
            &format!("/v1/{{project_id}}/vpc-endpoint-services/{id}"),
            None,
        )
        .await
    }

    /// Polls `list_service_details` until the service has `status`.
    pub async fn wait_service(&self, id: &str, status: &str) -> Value {
        poll_status(|| self.show_service(id), status).await
    }

    /// `update_endpoint_service` with `ports`.
    pub async fn set_service_ports(&self, id: &str, ports: &[(u16, u16)]) -> Value {
        self.ok(
            Method::PUT,
            &format!("/v1/{{project_id}}/vpc-endpoint-services/{id}"),
            Some(json!({ "ports": crate::app::ports(ports) })),
        )
        .await
    }

    /// `create_endpoint`: an interface endpoint at `ip` in the subnet, optionally with a whitelist.
    pub async fn endpoint(
        &self,
        service_id: &str,
        vpc_id: &str,
        subnet_id: &str,
        ip: &str,
        whitelist: Option<&[&str]>,
    ) -> Value {
        let mut body = json!({
            "endpoint_service_id": service_id, "vpc_id": vpc_id, "subnet_id": subnet_id,
            "port_ip": ip,
        });
        if let Some(w) = whitelist {
            body["whitelist"] = json!(w);
            body["enable_whitelist"] = json!(true);
        }
        self.ok(Method::POST, "/v1/{project_id}/vpc-endpoints", Some(body))
            .await
    }

    /// `list_endpoint_info_details`.
    pub async fn show_endpoint(&self, id: &str) -> (u16, Value) {
        self.send(
            Method::GET,
            &format!("/v1/{{project_id}}/vpc-endpoints/{id}"),
            None,
        )
        .await
    }

    /// Polls `list_endpoint_info_details` until the endpoint has `status`.
    pub async fn wait_endpoint(&self, id: &str, status: &str) -> Value {
        poll_status(|| self.show_endpoint(id), status).await
    }

    /// `update_endpoint_white`.
    pub async fn set_whitelist(&self, id: &str, whitelist: &[&str], enable: bool) -> Value {
        self.ok(
            Method::PUT,
            &format!("/v1/{{project_id}}/vpc-endpoints/{id}"),
            Some(json!({"whitelist": whitelist, "enable_whitelist": enable})),
        )
        .await
    }

    /// `delete_endpoint`.
    pub async fn delete_endpoint(&self, id: &str) {
        self.ok(
            Method::DELETE,
            &format!("/v1/{{project_id}}/vpc-endpoints/{id}"),
            None,
        )
        .await;
    }

    /// `accept_or_reject_endpoint` with `action` (`receive` or `reject`); answers the connection entry.
    pub async fn connection(&self, service_id: &str, endpoint_id: &str, action: &str) -> Value {
        let v = self
            .ok(
                Method::POST,
                &format!(
                    "/v1/{{project_id}}/vpc-endpoint-services/{service_id}/connections/action"
                ),
                Some(json!({"action": action, "endpoints": [endpoint_id]})),
            )
            .await;
        let entry = v["connections"][0].clone();
        assert!(
            entry["error"].as_array().is_none_or(Vec::is_empty),
            "{action} failed: {v}"
        );
        entry
    }
}

/// Polls `show` (answering status code and body) until the resource has `status`; answers it.
async fn poll_status<F: std::future::Future<Output = (u16, Value)>>(
    show: impl Fn() -> F,
    status: &str,
) -> Value {
    eventually(SETTLE, || async {
        let (code, v) = show().await;
        if code == 200 && v["status"] == status {
            Ok(v)
        } else {
            Err((code, v))
        }
    })
    .await
}
