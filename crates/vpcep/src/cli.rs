//! The client subcommands: signed calls to a vpcep server (or any VPCEP-compatible endpoint),
//! raw (`vpcep call`) or as short commands for the common tasks.
//!
//! Credentials come from flags or `VPCEP_ENDPOINT`, `VPCEP_ACCESS_KEY`, `VPCEP_SECRET_KEY`,
//! `VPCEP_PROJECT_ID`; without them, from the default account file the first `vpcep serve`
//! wrote (`./vpcep-data/default-account.toml`).

use anyhow::{anyhow, bail, Context as _};
use clap::{Args, Subcommand};
use serde_json::{json, Value};
use std::io::Write as _;
use std::path::PathBuf;
use vpcep_client::Client;
use vpcep_control::accounts::AccountsFile;

/// Where and as whom to call.
#[derive(Args, Debug, Clone)]
pub struct Connection {
    /// The server's URL.
    #[arg(
        long,
        env = "VPCEP_ENDPOINT",
        default_value = "http://127.0.0.1:8480",
        global = true
    )]
    pub endpoint: String,
    /// Access key (default: from --account-file).
    #[arg(long, env = "VPCEP_ACCESS_KEY", global = true)]
    pub access_key: Option<String>,
    /// Secret key (default: from --account-file).
    #[arg(long, env = "VPCEP_SECRET_KEY", global = true, hide_env_values = true)]
    pub secret_key: Option<String>,
    /// Project id used for `{project_id}` (default: the account file's first project).
    #[arg(long, env = "VPCEP_PROJECT_ID", global = true)]
    pub project_id: Option<String>,
    /// An accounts file to take the first account's credentials from.
    #[arg(
        long,
        env = "VPCEP_ACCOUNT_FILE",
        default_value = "./vpcep-data/default-account.toml",
        global = true
    )]
    pub account_file: PathBuf,
    /// PEM CA certificate(s) to verify an `https://` endpoint (or the agent's control plane)
    /// against, instead of the system's roots.
    #[arg(long, env = "VPCEP_CA_CERT", global = true)]
    pub ca_cert: Option<PathBuf>,
}

impl Connection {
    /// A signed client from the flags, filling gaps from the account file.
    pub fn client(&self) -> anyhow::Result<Client> {
        let (ak, sk, project) = self.credentials_of(false)?;
        let client = Client::new(&self.endpoint, &ak, &sk, &project)?;
        Ok(match self.ca_cert_pem()? {
            Some(pem) => client.with_ca_cert(&pem)?,
            None => client,
        })
    }

    /// The contents of `--ca-cert`, if given.
    pub fn ca_cert_pem(&self) -> anyhow::Result<Option<Vec<u8>>> {
        self.ca_cert
            .as_ref()
            .map(|p| std::fs::read(p).with_context(|| format!("reading --ca-cert {}", p.display())))
            .transpose()
    }

    /// Access key, secret key and project from the flags, else from the account file's first
    /// tenant account (its first operator account when `operator`, as the agent needs).
    pub fn credentials_of(&self, operator: bool) -> anyhow::Result<(String, String, String)> {
        let from_file = || -> anyhow::Result<(String, String, String)> {
            let file = AccountsFile::load(&self.account_file).with_context(|| {
                format!(
                    "no credentials given and {} is not readable",
                    self.account_file.display()
                )
            })?;
            let a = if operator {
                file.first_operator()
            } else {
                file.first_tenant().or(file.accounts.first())
            }
            .ok_or_else(|| {
                anyhow!(
                    "{} lists no {}account",
                    self.account_file.display(),
                    if operator { "operator " } else { "" }
                )
            })?;
            let c = a
                .credentials
                .first()
                .ok_or_else(|| anyhow!("the account has no credential"))?;
            Ok((
                c.access_key.clone(),
                c.secret_key.clone(),
                a.projects.first().cloned().unwrap_or_default(),
            ))
        };
        Ok(match (&self.access_key, &self.secret_key) {
            (Some(ak), Some(sk)) => (
                ak.clone(),
                sk.clone(),
                self.project_id.clone().unwrap_or_default(),
            ),
            _ => {
                let (ak, sk, p) = from_file()?;
                (ak, sk, self.project_id.clone().unwrap_or(p))
            }
        })
    }
}

/// `vpcep call`, `vpcep service ...` and friends.
#[derive(Subcommand, Debug)]
pub enum ClientCommand {
    /// Send any signed request, e.g. `vpcep call GET '/v1/{project_id}/vpc-endpoint-services?limit=5'`.
    Call {
        /// HTTP method.
        method: String,
        /// Path and query; `{project_id}` is filled in.
        path: String,
        /// JSON body, or `@file` to read it from a file.
        #[arg(long, short)]
        data: Option<String>,
    },
    /// VPCs.
    #[command(subcommand)]
    Vpc(VpcCmd),
    /// Subnets.
    #[command(subcommand)]
    Subnet(SubnetCmd),
    /// Ports (backends of endpoint services).
    #[command(subcommand)]
    Port(PortCmd),
    /// Endpoint services.
    #[command(subcommand)]
    Service(ServiceCmd),
    /// Endpoints.
    #[command(subcommand)]
    Endpoint(EndpointCmd),
    /// Connections to one of your services (accept / reject endpoints).
    #[command(subcommand)]
    Connection(ConnectionCmd),
}

#[derive(Subcommand, Debug)]
pub enum VpcCmd {
    /// Create a VPC.
    Create {
        #[arg(long)]
        cidr: String,
        #[arg(long, default_value = "")]
        name: String,
    },
    /// List VPCs.
    List,
    /// Delete a VPC.
    Delete { id: String },
}

#[derive(Subcommand, Debug)]
pub enum SubnetCmd {
    /// Create a subnet (its gateway defaults to the first host address).
    Create {
        #[arg(long)]
        vpc_id: String,
        #[arg(long)]
        cidr: String,
        #[arg(long)]
        gateway_ip: Option<String>,
        #[arg(long, default_value = "subnet")]
        name: String,
    },
    /// List subnets.
    List {
        #[arg(long)]
        vpc_id: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum PortCmd {
    /// Create a port (a VM NIC by default).
    Create {
        #[arg(long)]
        subnet_id: String,
        #[arg(long)]
        ip: Option<String>,
        #[arg(long, default_value = "compute:az1")]
        device_owner: String,
    },
    /// List ports.
    List,
}

#[derive(Subcommand, Debug)]
pub enum ServiceCmd {
    /// Create an endpoint service.
    Create {
        #[arg(long)]
        port_id: String,
        #[arg(long)]
        vpc_id: String,
        /// VM, LB or VIP (must match the port).
        #[arg(long, default_value = "VM")]
        server_type: String,
        /// A mapping `client_port:server_port`; repeat for more.
        #[arg(long = "port", required = true)]
        ports: Vec<String>,
        #[arg(long)]
        name: Option<String>,
        /// Accept connections without the owner's approval.
        #[arg(long)]
        no_approval: bool,
        /// close, proxy_open, proxy_vni, toa_open or open.
        #[arg(long)]
        tcp_proxy: Option<String>,
    },
    /// List your endpoint services.
    List,
    /// Show one.
    Show { id: String },
    /// Delete one.
    Delete { id: String },
    /// Let an account connect: `vpcep service permit SERVICE_ID DOMAIN_ID` (or `*`).
    Permit { id: String, domain_id: String },
}

#[derive(Subcommand, Debug)]
pub enum EndpointCmd {
    /// Create an endpoint to a service.
    Create {
        #[arg(long)]
        service_id: String,
        #[arg(long)]
        vpc_id: String,
        #[arg(long)]
        subnet_id: String,
        /// A fixed address in the subnet (default: the lowest free one).
        #[arg(long)]
        ip: Option<String>,
    },
    /// List your endpoints.
    List,
    /// Show one.
    Show { id: String },
    /// Delete one.
    Delete { id: String },
}

#[derive(Subcommand, Debug)]
pub enum ConnectionCmd {
    /// List the connections of a service.
    List { service_id: String },
    /// Accept an endpoint's connection.
    Accept {
        service_id: String,
        endpoint_id: String,
    },
    /// Reject an endpoint's connection.
    Reject {
        service_id: String,
        endpoint_id: String,
    },
}

fn parse_mapping(m: &str) -> anyhow::Result<Value> {
    let (c, s) = m
        .split_once(':')
        .ok_or_else(|| anyhow!("--port {m:?}: expected client_port:server_port"))?;
    Ok(
        json!({"client_port": c.parse::<u16>()?, "server_port": s.parse::<u16>()?, "protocol": "TCP"}),
    )
}

fn first_host(cidr: &str) -> anyhow::Result<String> {
    let net: ipnet::Ipv4Net = cidr
        .parse()
        .with_context(|| format!("{cidr:?} is not an IPv4 CIDR"))?;
    Ok(net
        .hosts()
        .next()
        .ok_or_else(|| anyhow!("{cidr} has no host address"))?
        .to_string())
}

/// The request a command sends: method, path, body.
fn request(cmd: ClientCommand) -> anyhow::Result<(String, String, Option<Value>)> {
    let p = "/v1/{project_id}";
    Ok(match cmd {
        ClientCommand::Call { method, path, data } => {
            let body = match data {
                None => None,
                Some(d) => {
                    let text = match d.strip_prefix('@') {
                        Some(f) => {
                            std::fs::read_to_string(f).with_context(|| format!("reading {f}"))?
                        }
                        None => d,
                    };
                    Some(serde_json::from_str(&text).context("--data is not JSON")?)
                }
            };
            (method.to_uppercase(), path, body)
        }
        ClientCommand::Vpc(VpcCmd::Create { cidr, name }) => (
            "POST".into(),
            format!("{p}/vpcs"),
            Some(json!({"vpc": {"cidr": cidr, "name": name}})),
        ),
        ClientCommand::Vpc(VpcCmd::List) => ("GET".into(), format!("{p}/vpcs"), None),
        ClientCommand::Vpc(VpcCmd::Delete { id }) => {
            ("DELETE".into(), format!("{p}/vpcs/{id}"), None)
        }
        ClientCommand::Subnet(SubnetCmd::Create {
            vpc_id,
            cidr,
            gateway_ip,
            name,
        }) => {
            let gateway_ip = match gateway_ip {
                Some(g) => g,
                None => first_host(&cidr)?,
            };
            let body = json!({"subnet": {"vpc_id": vpc_id, "cidr": cidr, "gateway_ip": gateway_ip, "name": name}});
            ("POST".into(), format!("{p}/subnets"), Some(body))
        }
        ClientCommand::Subnet(SubnetCmd::List { vpc_id }) => {
            let q = vpc_id.map(|v| format!("?vpc_id={v}")).unwrap_or_default();
            ("GET".into(), format!("{p}/subnets{q}"), None)
        }
        ClientCommand::Port(PortCmd::Create {
            subnet_id,
            ip,
            device_owner,
        }) => {
            let mut port = json!({"network_id": subnet_id, "device_owner": device_owner});
            if let Some(ip) = ip {
                port["fixed_ips"] = json!([{"ip_address": ip}]);
            }
            (
                "POST".into(),
                format!("{p}/ports"),
                Some(json!({ "port": port })),
            )
        }
        ClientCommand::Port(PortCmd::List) => ("GET".into(), format!("{p}/ports"), None),
        ClientCommand::Service(ServiceCmd::Create {
            port_id,
            vpc_id,
            server_type,
            ports,
            name,
            no_approval,
            tcp_proxy,
        }) => {
            let mut body = json!({
                "port_id": port_id,
                "vpc_id": vpc_id,
                "server_type": server_type,
                "ports": ports.iter().map(|m| parse_mapping(m)).collect::<anyhow::Result<Vec<_>>>()?,
                "approval_enabled": !no_approval,
            });
            if let Some(n) = name {
                body["service_name"] = json!(n);
            }
            if let Some(t) = tcp_proxy {
                body["tcp_proxy"] = json!(t);
            }
            (
                "POST".into(),
                format!("{p}/vpc-endpoint-services"),
                Some(body),
            )
        }
        ClientCommand::Service(ServiceCmd::List) => (
            "GET".into(),
            format!("{p}/vpc-endpoint-services?limit=1000"),
            None,
        ),
        ClientCommand::Service(ServiceCmd::Show { id }) => (
            "GET".into(),
            format!("{p}/vpc-endpoint-services/{id}"),
            None,
        ),
        ClientCommand::Service(ServiceCmd::Delete { id }) => (
            "DELETE".into(),
            format!("{p}/vpc-endpoint-services/{id}"),
            None,
        ),
        ClientCommand::Service(ServiceCmd::Permit { id, domain_id }) => {
            let entry = if domain_id == "*" {
                "*".to_string()
            } else {
                format!("iam:domain::{domain_id}")
            };
            let body =
                json!({"permissions": [entry], "action": "add", "permission_type": "domainId"});
            (
                "POST".into(),
                format!("{p}/vpc-endpoint-services/{id}/permissions/action"),
                Some(body),
            )
        }
        ClientCommand::Endpoint(EndpointCmd::Create {
            service_id,
            vpc_id,
            subnet_id,
            ip,
        }) => {
            let mut body = json!({"endpoint_service_id": service_id, "vpc_id": vpc_id, "subnet_id": subnet_id});
            if let Some(ip) = ip {
                body["port_ip"] = json!(ip);
            }
            ("POST".into(), format!("{p}/vpc-endpoints"), Some(body))
        }
        ClientCommand::Endpoint(EndpointCmd::List) => {
            ("GET".into(), format!("{p}/vpc-endpoints?limit=1000"), None)
        }
        ClientCommand::Endpoint(EndpointCmd::Show { id }) => {
            ("GET".into(), format!("{p}/vpc-endpoints/{id}"), None)
        }
        ClientCommand::Endpoint(EndpointCmd::Delete { id }) => {
            ("DELETE".into(), format!("{p}/vpc-endpoints/{id}"), None)
        }
        ClientCommand::Connection(ConnectionCmd::List { service_id }) => (
            "GET".into(),
            format!("{p}/vpc-endpoint-services/{service_id}/connections?limit=1000"),
            None,
        ),
        ClientCommand::Connection(ConnectionCmd::Accept {
            service_id,
            endpoint_id,
        }) => (
            "POST".into(),
            format!("{p}/vpc-endpoint-services/{service_id}/connections/action"),
            Some(json!({"action": "receive", "endpoints": [endpoint_id]})),
        ),
        ClientCommand::Connection(ConnectionCmd::Reject {
            service_id,
            endpoint_id,
        }) => (
            "POST".into(),
            format!("{p}/vpc-endpoint-services/{service_id}/connections/action"),
            Some(json!({"action": "reject", "endpoints": [endpoint_id]})),
        ),
    })
}

/// Runs a client command: prints the JSON answer (or the status for empty ones); an error
/// status prints the error body to stderr and fails.
pub async fn run(conn: &Connection, cmd: ClientCommand) -> anyhow::Result<()> {
    let client = conn.client()?;
    let (method, path, body) = request(cmd)?;
    let method = reqwest::Method::from_bytes(method.as_bytes())
        .map_err(|_| anyhow!("invalid method {method:?}"))?;
    let bytes = body.map(|b| serde_json::to_vec(&b)).transpose()?;
    let resp = client.send_raw(method, &path, bytes).await?;
    let text = if resp.body.is_empty() {
        format!("{{\"status\": {}}}", resp.status)
    } else {
        match serde_json::from_slice::<Value>(&resp.body) {
            Ok(v) => serde_json::to_string_pretty(&v)?,
            Err(_) => String::from_utf8_lossy(&resp.body).into_owned(),
        }
    };
    if resp.status >= 400 {
        eprintln!("{text}");
        bail!("HTTP {}", resp.status);
    }
    // A closed pipe (`vpcep call ... | head`) is the reader's choice, not an error.
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{text}") {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_build_the_documented_requests() {
        let (m, p, b) = request(ClientCommand::Service(ServiceCmd::Create {
            port_id: "p".into(),
            vpc_id: "v".into(),
            server_type: "VM".into(),
            ports: vec!["80:8080".into(), "81:8081".into()],
            name: Some("web".into()),
            no_approval: true,
            tcp_proxy: None,
        }))
        .unwrap();
        assert_eq!(
            (m.as_str(), p.as_str()),
            ("POST", "/v1/{project_id}/vpc-endpoint-services")
        );
        let b = b.unwrap();
        assert_eq!(b["ports"][1]["server_port"], 8081);
        assert_eq!(b["approval_enabled"], false);
        assert_eq!(b["service_name"], "web");
        let (_, _, b) = request(ClientCommand::Subnet(SubnetCmd::Create {
            vpc_id: "v".into(),
            cidr: "10.0.1.0/24".into(),
            gateway_ip: None,
            name: "s".into(),
        }))
        .unwrap();
        assert_eq!(b.unwrap()["subnet"]["gateway_ip"], "10.0.1.1");
        let (_, _, b) = request(ClientCommand::Service(ServiceCmd::Permit {
            id: "s".into(),
            domain_id: "d".into(),
        }))
        .unwrap();
        assert_eq!(b.unwrap()["permissions"][0], "iam:domain::d");
        assert!(parse_mapping("80").is_err());
    }
}
