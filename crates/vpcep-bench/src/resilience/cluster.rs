//! One measured setup: `vpcep serve --require-agent` nodes on one database and `vpcep agent`s
//! as child processes of one binary, the signed API calls that publish a service through
//! them, and the measure of how soon a change is served.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use http::Method;
use serde_json::{json, Value};

use super::traffic::{first_echo, Echo};
use crate::http::{call, Conn, Creds, Target};
use crate::spawn::{free_port, wait_healthy, Proc};

/// The tenant that publishes the services and creates the endpoints.
const TENANT: (&str, &str, &str, &str) = (
    "c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0",
    "c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1",
    "AKRESILIENCE00000001",
    "resilience-tenant-secret",
);
/// The operator account the agents sign with.
const OPERATOR: (&str, &str, &str, &str) = (
    "c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2",
    "c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3",
    "AKRESILIENCEOPER0001",
    "resilience-operator-secret",
);

/// The accounts file: the tenant and the operator.
fn accounts_toml() -> String {
    let account = |(domain, project, ak, sk): (&str, &str, &str, &str), operator: bool| {
        format!(
            "[[account]]\ndomain_id = \"{domain}\"\ndomain_name = \"{domain}\"\n\
             operator = {operator}\nprojects = [\"{project}\"]\n[[account.credential]]\n\
             access_key = \"{ak}\"\nsecret_key = \"{sk}\"\n\n"
        )
    };
    account(TENANT, false) + &account(OPERATOR, true)
}

/// The host range granted to the data plane of binaries that know `--dataplane-cidrs`: the
/// setups use `127.200.0.0`–`127.255.255.255`, outside the ranges the test suites use.
const DATAPLANE_CIDRS: &str = "127.0.0.0/8";
/// Second octet of the first setup's provider network; setup `k` uses `FIRST_NET + 2k` (the
/// provider VPC) and the next one (the consumer VPC).
const FIRST_NET: u8 = 200;
/// The `client_port` of every endpoint.
const CLIENT_PORT: u16 = 8080;

/// A `vpcep` binary under measure, and what it knows.
#[derive(Debug, Clone)]
pub struct Version {
    /// `before` or `after`.
    pub label: &'static str,
    /// The binary.
    pub bin: PathBuf,
    /// Whether it has the issue-18 resilience features: `--handover-socket` (socket
    /// takeover), several `--control-plane` URLs, `--dataplane-cidrs`. Read from
    /// `vpcep agent --help`; the older binary knows none of them.
    pub resilient: bool,
}

impl Version {
    /// Looks at `bin agent --help`.
    pub fn detect(label: &'static str, bin: &Path) -> anyhow::Result<Version> {
        let bin = std::fs::canonicalize(bin).with_context(|| format!("{}", bin.display()))?;
        let out = std::process::Command::new(&bin)
            .args(["agent", "--help"])
            .output()
            .with_context(|| format!("running {} agent --help", bin.display()))?;
        if !out.status.success() {
            bail!("{} agent --help failed", bin.display());
        }
        let help = String::from_utf8_lossy(&out.stdout);
        Ok(Version {
            label,
            bin,
            resilient: help.contains("--handover-socket"),
        })
    }
}

/// A control-plane node: its address stays the same across restarts.
struct Node {
    listen: String,
    proc: Option<Proc>,
}

/// Nodes on one database, agents, and the address block of this setup.
pub struct Cluster {
    version: Version,
    name: String,
    dir: PathBuf,
    accounts: PathBuf,
    database: String,
    nodes: Vec<Node>,
    /// Second octet of the provider network (the consumer's is the next one).
    net: u8,
    log_level: String,
}

impl Cluster {
    /// A setup named `name` in its own directory under `root`, on `database` (`None`: a SQLite
    /// file in that directory), using address block `block` (0, 1, ...).
    pub fn new(
        version: &Version,
        root: &Path,
        name: &str,
        database: Option<String>,
        block: u8,
        log_level: &str,
    ) -> anyhow::Result<Cluster> {
        let net = FIRST_NET
            .checked_add(block.checked_mul(2).context("too many setups")?)
            .filter(|n| *n < 255)
            .context("too many setups for the 127.200+ address blocks")?;
        let dir = root.join(name);
        std::fs::create_dir_all(&dir)?;
        let accounts = dir.join("accounts.toml");
        std::fs::write(&accounts, accounts_toml())?;
        let database =
            database.unwrap_or_else(|| format!("sqlite://{}", dir.join("vpcep.db").display()));
        Ok(Cluster {
            version: version.clone(),
            name: name.to_string(),
            dir,
            accounts,
            database,
            nodes: Vec::new(),
            net,
            log_level: log_level.to_string(),
        })
    }

    /// The URL of node `i`.
    pub fn url(&self, i: usize) -> String {
        format!("http://{}", self.nodes[i].listen)
    }

    /// Starts node `i` (on its address, for a restart) and waits until it answers `/health`.
    async fn run_node(&mut self, i: usize) -> anyhow::Result<()> {
        let listen = self.nodes[i].listen.clone();
        let mut args: Vec<String> = [
            "serve",
            "--listen",
            &listen,
            "--database",
            &self.database,
            "--require-agent",
        ]
        .into_iter()
        .map(String::from)
        .collect();
        args.extend(["--accounts".into(), self.accounts.display().to_string()]);
        if self.version.resilient {
            args.extend(["--dataplane-cidrs".into(), DATAPLANE_CIDRS.into()]);
        }
        let mut proc = Proc::spawn(
            &self.version.bin,
            &args,
            &self.dir,
            &format!("serve-{i}"),
            &self.log_level,
        )?;
        wait_healthy(&mut proc, &self.url(i), Duration::from_secs(60)).await?;
        self.nodes[i].proc = Some(proc);
        Ok(())
    }

    /// Starts a new node on a free port; answers its index.
    pub async fn start_node(&mut self) -> anyhow::Result<usize> {
        self.nodes.push(Node {
            listen: format!("127.0.0.1:{}", free_port()?),
            proc: None,
        });
        let i = self.nodes.len() - 1;
        self.run_node(i).await?;
        Ok(i)
    }

    /// SIGKILLs node `i`.
    pub async fn kill_node(&mut self, i: usize) {
        if let Some(mut p) = self.nodes[i].proc.take() {
            p.kill().await;
        }
    }

    /// Starts node `i` again on the same address and database.
    pub async fn restart_node(&mut self, i: usize) -> anyhow::Result<()> {
        self.run_node(i).await
    }

    /// Starts an agent (log `<log_name>.log`) following `nodes`, with this setup's name as
    /// `--agent-id` and, when the binary knows it, `<name>.sock` as handover socket. The older
    /// binary takes one `--control-plane` URL: it gets the first.
    pub fn agent(&self, log_name: &str, nodes: &[usize]) -> anyhow::Result<Proc> {
        let take = if self.version.resilient {
            nodes.len()
        } else {
            1
        };
        let urls: Vec<String> = nodes.iter().take(take).map(|&i| self.url(i)).collect();
        let mut args: Vec<String> = [
            "agent",
            "--control-plane",
            &urls.join(","),
            "--access-key",
            OPERATOR.2,
            "--secret-key",
            OPERATOR.3,
            "--agent-id",
            &self.name,
        ]
        .into_iter()
        .map(String::from)
        .collect();
        if self.version.resilient {
            let socket = self.dir.join(format!("{}.sock", self.name));
            args.extend([
                "--dataplane-cidrs".into(),
                DATAPLANE_CIDRS.into(),
                "--handover-socket".into(),
                socket.display().to_string(),
            ]);
        }
        Proc::spawn(
            &self.version.bin,
            &args,
            &self.dir,
            log_name,
            &self.log_level,
        )
    }

    /// The tenant's client of node `i`.
    pub fn api(&self, i: usize) -> anyhow::Result<Api> {
        Ok(Api {
            target: Target::parse(&self.url(i))?,
            creds: Creds {
                access_key: TENANT.2.into(),
                secret_key: TENANT.3.into(),
            },
            project: TENANT.1.into(),
        })
    }

    fn provider_ip(&self, host: u8) -> Ipv4Addr {
        Ipv4Addr::new(127, self.net, 0, host)
    }

    fn consumer_ip(&self, host: u8) -> Ipv4Addr {
        Ipv4Addr::new(127, self.net + 1, 0, host)
    }

    /// Where the clients of this setup's endpoints connect from.
    pub fn client_ip(&self) -> IpAddr {
        IpAddr::V4(self.consumer_ip(99))
    }

    /// Through node `api`: a provider VPC with an echo backend on a port of it, a service
    /// (`close`, no approval) on that port once `available`, and a consumer VPC and subnet.
    pub async fn publish(&self, api: &Api) -> anyhow::Result<Published> {
        let (pvpc, psub) = api
            .vpc_with_subnet(&format!("p-{}", self.name), self.net)
            .await?;
        let (cvpc, csub) = api
            .vpc_with_subnet(&format!("c-{}", self.name), self.net + 1)
            .await?;
        let backend_ip = self.provider_ip(10);
        let echo = Echo::start(IpAddr::V4(backend_ip)).await?;
        let port = api
            .ok(
                Method::POST,
                "/v1/{project_id}/ports",
                json!({"port": {
                    "name": "backend", "network_id": psub,
                    "fixed_ips": [{"ip_address": backend_ip.to_string()}],
                    "device_owner": "compute:az1",
                }}),
            )
            .await?;
        let port_id = port["port"]["id"].as_str().context("port id")?;
        let svc = api
            .ok(
                Method::POST,
                "/v1/{project_id}/vpc-endpoint-services",
                json!({
                    "port_id": port_id, "vpc_id": pvpc, "server_type": "VM",
                    "service_type": "interface", "tcp_proxy": "close",
                    "approval_enabled": false,
                    "ports": [{"client_port": CLIENT_PORT, "server_port": echo.addr.port(), "protocol": "TCP"}],
                }),
            )
            .await?;
        let service_id = svc["id"].as_str().context("service id")?.to_string();
        let path = format!("/v1/{{project_id}}/vpc-endpoint-services/{service_id}");
        api.wait_status(&path, "available", Duration::from_secs(30))
            .await?;
        Ok(Published {
            service_id,
            vpc_id: cvpc,
            subnet_id: csub,
            _echo: echo,
        })
    }

    /// One create-endpoint call through `api` for an endpoint on consumer host `host`; answers
    /// its id and the address it serves on.
    pub async fn create_endpoint(
        &self,
        api: &Api,
        p: &Published,
        host: u8,
    ) -> anyhow::Result<(String, SocketAddr)> {
        let ip = self.consumer_ip(host);
        let v = api
            .ok(
                Method::POST,
                "/v1/{project_id}/vpc-endpoints",
                json!({
                    "endpoint_service_id": p.service_id, "vpc_id": p.vpc_id,
                    "subnet_id": p.subnet_id, "port_ip": ip.to_string(),
                }),
            )
            .await?;
        let id = v["id"].as_str().context("endpoint id")?.to_string();
        Ok((id, SocketAddr::new(IpAddr::V4(ip), CLIENT_PORT)))
    }

    /// An endpoint on consumer host `host` that is `accepted` and carries traffic (the setup
    /// works before anything is measured); answers its address.
    pub async fn serving_endpoint(
        &self,
        api: &Api,
        p: &Published,
        host: u8,
    ) -> anyhow::Result<SocketAddr> {
        let (id, dst) = self.create_endpoint(api, p, host).await?;
        let path = format!("/v1/{{project_id}}/vpc-endpoints/{id}");
        api.wait_status(&path, "accepted", Duration::from_secs(30))
            .await?;
        first_echo(
            self.client_ip(),
            dst,
            Instant::now() + Duration::from_secs(30),
        )
        .await
        .with_context(|| format!("{}: no traffic through {dst}", self.name))?;
        Ok(dst)
    }

    /// Creates an endpoint on consumer host `host` through `api` (the call repeated until it
    /// succeeds) and measures from the first call how soon it carries traffic and shows
    /// `accepted`, giving up `give_up` after that call.
    pub async fn measure_change(
        &self,
        api: &Api,
        p: &Published,
        host: u8,
        give_up: Duration,
    ) -> Change {
        let start = Instant::now();
        let deadline = start + give_up;
        let mut create_errors = 0;
        let (id, dst) = loop {
            match self.create_endpoint(api, p, host).await {
                Ok(made) => break made,
                Err(e) if Instant::now() >= deadline => {
                    return Change {
                        served: None,
                        accepted: None,
                        note: Some(format!("the create never succeeded: {e:#}")),
                    }
                }
                Err(_) => {
                    create_errors += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        };
        let path = format!("/v1/{{project_id}}/vpc-endpoints/{id}");
        let accepted = async {
            loop {
                if api.status(&path).await.ok().as_deref() == Some("accepted") {
                    return Some(Instant::now());
                }
                if Instant::now() >= deadline {
                    return None;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        };
        let (served, accepted) =
            tokio::join!(first_echo(self.client_ip(), dst, deadline), accepted);
        Change {
            served: served.map(|t| t - start),
            accepted: accepted.map(|t| t - start),
            note: (create_errors > 0)
                .then(|| format!("the create call failed {create_errors} times first")),
        }
    }
}

/// A published service and the consumer network endpoints go to.
pub struct Published {
    service_id: String,
    vpc_id: String,
    subnet_id: String,
    _echo: Echo,
}

/// How soon a change (a new endpoint) was served, from its create call.
#[derive(Debug, Clone)]
pub struct Change {
    /// The first echo through it (`None`: not within the give-up time).
    pub served: Option<Duration>,
    /// Its status `accepted`, as the node the change was made through shows it.
    pub accepted: Option<Duration>,
    /// Anything worth knowing (failed create calls).
    pub note: Option<String>,
}

/// The tenant's signed calls to one node, each on a new connection (a node may be killed in
/// between).
pub struct Api {
    target: Target,
    creds: Creds,
    project: String,
}

impl Api {
    /// Sends one call; `{project_id}` in `path` is filled in.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<(u16, Value)> {
        let path = path.replace("{project_id}", &self.project);
        let once = async {
            let mut conn = Conn::open(self.target.addr).await?;
            call(
                &mut conn,
                &self.target,
                &self.creds,
                &self.project,
                method.clone(),
                &path,
                body,
            )
            .await
        };
        tokio::time::timeout(Duration::from_secs(5), once)
            .await
            .with_context(|| format!("{method} {path}: no answer within 5 s"))?
    }

    /// Like [`Api::send`] with a body, failing unless the answer is 2xx.
    pub async fn ok(&self, method: Method, path: &str, body: Value) -> anyhow::Result<Value> {
        let (status, v) = self.send(method.clone(), path, Some(body)).await?;
        if !(200..300).contains(&status) {
            bail!("{method} {path}: HTTP {status}: {v}");
        }
        Ok(v)
    }

    /// A VPC `127.{net}.0.0/16` with the subnet `127.{net}.0.0/24`: (vpc id, subnet id).
    async fn vpc_with_subnet(&self, name: &str, net: u8) -> anyhow::Result<(String, String)> {
        let vpc = self
            .ok(
                Method::POST,
                "/v1/{project_id}/vpcs",
                json!({"vpc": {"name": name, "cidr": format!("127.{net}.0.0/16")}}),
            )
            .await?;
        let vpc_id = vpc["vpc"]["id"].as_str().context("vpc id")?.to_string();
        let subnet = self
            .ok(
                Method::POST,
                "/v1/{project_id}/subnets",
                json!({"subnet": {
                    "name": format!("{name}-subnet"), "cidr": format!("127.{net}.0.0/24"),
                    "gateway_ip": format!("127.{net}.0.1"), "vpc_id": vpc_id,
                }}),
            )
            .await?;
        let subnet_id = subnet["subnet"]["id"]
            .as_str()
            .context("subnet id")?
            .to_string();
        Ok((vpc_id, subnet_id))
    }

    /// The `status` of the resource at `path`.
    pub async fn status(&self, path: &str) -> anyhow::Result<String> {
        let (code, v) = self.send(Method::GET, path, None).await?;
        match v["status"].as_str() {
            Some(s) if code == 200 => Ok(s.to_string()),
            _ => bail!("GET {path}: HTTP {code}: {v}"),
        }
    }

    /// Polls the resource at `path` until its status is `status`.
    pub async fn wait_status(
        &self,
        path: &str,
        status: &str,
        timeout: Duration,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let now = self.status(path).await;
            if now.as_deref().ok() == Some(status) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!("{path} not {status} within {timeout:?}: {now:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
