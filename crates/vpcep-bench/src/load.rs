//! Scenarios, the closed-loop load they generate (each connection sends its next request as
//! soon as the previous answer is read), and the figures measured.

use crate::http::{call, request, Conn, Creds, Target};
use anyhow::{bail, Context as _};
use http::Method;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What a run measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// `GET /health`, unsigned.
    Health,
    /// `GET .../vpc-endpoint-services?limit=100` on the seeded project.
    ListServices,
    /// `GET .../vpc-endpoint-services/{id}`, cycling over the seeded services.
    ShowService,
    /// `PUT .../vpc-endpoint-services/{id}`: a new description each time, cycling over the
    /// seeded services.
    UpdateService,
    /// `POST .../vpc-endpoint-services`: a new service each time, with ports no other request
    /// uses, on a backend port of its connection.
    CreateService,
    /// `CreateVpcEndpointServiceConfiguration` against moto's server (`--moto-url`): AWS's
    /// equivalent of create-service in the emulator users pick for it.
    MotoCreate,
}

impl Scenario {
    /// Every scenario, in the order a run takes them (reads before the creates grow the data).
    pub const ALL: [Scenario; 6] = [
        Scenario::Health,
        Scenario::ListServices,
        Scenario::ShowService,
        Scenario::UpdateService,
        Scenario::CreateService,
        Scenario::MotoCreate,
    ];

    /// The name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Health => "health",
            Scenario::ListServices => "list-services",
            Scenario::ShowService => "show-service",
            Scenario::UpdateService => "update-service",
            Scenario::CreateService => "create-service",
            Scenario::MotoCreate => "moto-create",
        }
    }

    /// Parses a name.
    pub fn parse(s: &str) -> anyhow::Result<Scenario> {
        Scenario::ALL
            .into_iter()
            .find(|x| x.name() == s)
            .with_context(|| {
                let names: Vec<_> = Scenario::ALL.iter().map(|x| x.name()).collect();
                format!("unknown scenario {s:?}; use {}", names.join(", "))
            })
    }

    /// Whether it needs the seeded project.
    pub fn needs_seed(self) -> bool {
        matches!(
            self,
            Scenario::ListServices | Scenario::ShowService | Scenario::UpdateService
        )
    }
}

/// A backend port made through the VPC API.
#[derive(Debug, Clone)]
pub struct Backend {
    pub vpc_id: String,
    pub port_id: String,
}

/// A create-service body on `b` with one TCP mapping `port` → `port`.
pub fn service_body(b: &Backend, port: u16) -> Value {
    json!({
        "port_id": b.port_id,
        "vpc_id": b.vpc_id,
        "server_type": "VM",
        "service_type": "interface",
        "approval_enabled": false,
        "ports": [{"client_port": port, "server_port": port, "protocol": "TCP"}],
    })
}

/// Makes a VPC, a subnet and `n` VM ports in `project`.
pub async fn make_backends(
    target: &Target,
    creds: &Creds,
    project: &str,
    n: usize,
) -> anyhow::Result<Vec<Backend>> {
    let mut conn = Conn::open(target.addr).await?;
    let mut post = async |path: &str, body: Value| -> anyhow::Result<Value> {
        let (status, v) = call(
            &mut conn,
            target,
            creds,
            project,
            Method::POST,
            &path.replace("{project_id}", project),
            Some(body),
        )
        .await?;
        if status != 200 && status != 201 {
            bail!("POST {path}: {status} {v}");
        }
        Ok(v)
    };
    let vpc = post(
        "/v1/{project_id}/vpcs",
        json!({"vpc": {"name": format!("bench-{}", uuid::Uuid::new_v4().simple()), "cidr": "10.0.0.0/16"}}),
    )
    .await?;
    let vpc_id = vpc["vpc"]["id"].as_str().context("vpc id")?.to_string();
    let subnet = post(
        "/v1/{project_id}/subnets",
        json!({"subnet": {"name": "bench", "cidr": "10.0.0.0/20", "gateway_ip": "10.0.0.1", "vpc_id": vpc_id}}),
    )
    .await?;
    let subnet_id = subnet["subnet"]["id"]
        .as_str()
        .context("subnet id")?
        .to_string();
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let port = post(
            "/v1/{project_id}/ports",
            json!({"port": {"network_id": subnet_id, "device_owner": "compute:az1"}}),
        )
        .await?;
        out.push(Backend {
            vpc_id: vpc_id.clone(),
            port_id: port["port"]["id"].as_str().context("port id")?.to_string(),
        });
    }
    Ok(out)
}

/// Creates `n` services in `project` (16 at a time) on one new backend port; answers their ids.
pub async fn seed_services(
    target: &Target,
    creds: &Creds,
    project: &str,
    n: usize,
) -> anyhow::Result<Vec<String>> {
    let backend = make_backends(target, creds, project, 1).await?.remove(0);
    let lanes = 16.min(n.max(1));
    let mut tasks = tokio::task::JoinSet::new();
    for lane in 0..lanes {
        let (target, creds, project, backend) = (
            target.clone(),
            creds.clone(),
            project.to_string(),
            backend.clone(),
        );
        tasks.spawn(async move {
            let mut conn = Conn::open(target.addr).await?;
            let mut ids = Vec::new();
            for k in (lane..n).step_by(lanes) {
                let path = format!("/v1/{project}/vpc-endpoint-services");
                let body = service_body(&backend, 1 + k as u16);
                let (status, v) = call(
                    &mut conn,
                    &target,
                    &creds,
                    &project,
                    Method::POST,
                    &path,
                    Some(body),
                )
                .await?;
                if status != 200 {
                    bail!("seeding a service: {status} {v}");
                }
                ids.push(v["id"].as_str().context("id")?.to_string());
            }
            Ok::<_, anyhow::Error>(ids)
        });
    }
    let mut ids = Vec::with_capacity(n);
    while let Some(r) = tasks.join_next().await {
        ids.extend(r??);
    }
    Ok(ids)
}

/// Everything a run needs.
pub struct Plan {
    /// The servers; connection `i` goes to `targets[i % len]`.
    pub targets: Vec<Target>,
    pub creds: Creds,
    /// Where services are created.
    pub create_project: String,
    /// One backend port per connection for the creates.
    pub create_backends: Vec<Backend>,
    /// The project listed and shown.
    pub seed_project: String,
    /// Its services.
    pub seed_ids: Vec<String>,
    /// moto's server and the load balancer ARN its creates publish.
    pub moto: Option<(Target, String)>,
    pub connections: usize,
    pub warmup: Duration,
    pub duration: Duration,
    /// Each connection sends a request this often (an open-loop client) instead of as soon as
    /// the last answer is read.
    pub pace: Option<Duration>,
}

/// The figures of one scenario.
#[derive(Debug, Clone)]
pub struct Report {
    pub scenario: Scenario,
    /// Services stored in the listed project when the scenario ran (list-services only).
    pub stored: Option<u64>,
    pub connections: usize,
    /// Requests answered inside the measured window.
    pub requests: u64,
    /// Of those, answers that were not 2xx, plus transport failures.
    pub errors: u64,
    /// Requests per second over the measured window.
    pub rate: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// The first error seen, for the log.
    pub first_error: Option<String>,
    /// Where the machine's CPU went during the measured window (Linux only).
    pub cpu: Option<crate::cpu::Usage>,
}

impl Report {
    /// One JSON object (for scripts).
    pub fn to_json(&self, label: &str) -> Value {
        json!({
            "label": label,
            "scenario": self.scenario.name(),
            "stored": self.stored,
            "connections": self.connections,
            "requests": self.requests,
            "errors": self.errors,
            "rate": (self.rate * 10.0).round() / 10.0,
            "p50_ms": (self.p50_ms * 1000.0).round() / 1000.0,
            "p99_ms": (self.p99_ms * 1000.0).round() / 1000.0,
            "max_ms": (self.max_ms * 1000.0).round() / 1000.0,
            "machine_cpu_us_per_req": self.cpu.map(|c| (c.machine_us * 10.0).round() / 10.0),
            "bench_cpu_us_per_req": self.cpu.map(|c| (c.bench_us * 10.0).round() / 10.0),
            "idle_pct": self.cpu.map(|c| c.idle_pct.round()),
        })
    }
}

#[derive(Default)]
struct ConnStats {
    latencies_us: Vec<u32>,
    errors: u64,
    first_error: Option<String>,
}

/// The highest port a create may use; each connection's `k`-th create uses port `k + 1`.
const MAX_PORT: usize = 65_535;

fn build(
    plan: &Plan,
    scenario: Scenario,
    target: &Target,
    conn_idx: usize,
    k: usize,
) -> Option<http::Request<http_body_util::Full<bytes::Bytes>>> {
    let signed = |project: &str, method, path: String, body: Vec<u8>| {
        Some(request(
            target,
            Some((&plan.creds, project)),
            method,
            &path,
            body,
        ))
    };
    match scenario {
        Scenario::Health => Some(request(target, None, Method::GET, "/health", Vec::new())),
        Scenario::ListServices => signed(
            &plan.seed_project,
            Method::GET,
            format!("/v1/{}/vpc-endpoint-services?limit=100", plan.seed_project),
            Vec::new(),
        ),
        Scenario::ShowService => signed(
            &plan.seed_project,
            Method::GET,
            seeded_path(plan, conn_idx, k),
            Vec::new(),
        ),
        Scenario::UpdateService => signed(
            &plan.seed_project,
            Method::PUT,
            seeded_path(plan, conn_idx, k),
            json!({"description": format!("bench {conn_idx} {k}")})
                .to_string()
                .into_bytes(),
        ),
        Scenario::CreateService => {
            if k >= MAX_PORT {
                return None;
            }
            let body = service_body(&plan.create_backends[conn_idx], k as u16 + 1);
            signed(
                &plan.create_project,
                Method::POST,
                format!("/v1/{}/vpc-endpoint-services", plan.create_project),
                body.to_string().into_bytes(),
            )
        }
        Scenario::MotoCreate => {
            let (moto, arn) = plan.moto.as_ref()?;
            Some(moto_create(moto, arn))
        }
    }
}

/// The path of a seeded service; connections walk the list from different places.
fn seeded_path(plan: &Plan, conn_idx: usize, k: usize) -> String {
    let id = &plan.seed_ids[(conn_idx * 7919 + k) % plan.seed_ids.len()];
    format!("/v1/{}/vpc-endpoint-services/{id}", plan.seed_project)
}

/// An EC2 query-protocol `CreateVpcEndpointServiceConfiguration` as boto3 sends it. moto does
/// not check signatures, so the `Authorization` header only carries the shape (and the region
/// moto reads from it); this costs moto nothing that vpcep's real signature check costs it.
fn moto_create(moto: &Target, arn: &str) -> http::Request<http_body_util::Full<bytes::Bytes>> {
    let body = format!(
        "Action=CreateVpcEndpointServiceConfiguration&Version=2016-11-15\
         &AcceptanceRequired=false&NetworkLoadBalancerArn.1={}",
        form_escape(arn)
    );
    http::Request::builder()
        .method(Method::POST)
        .uri("/")
        .header("Host", &moto.host)
        .header(
            "Content-Type",
            "application/x-www-form-urlencoded; charset=utf-8",
        )
        .header("X-Amz-Date", "20261129T000000Z")
        .header(
            "Authorization",
            "AWS4-HMAC-SHA256 Credential=testing/20261129/us-east-1/ec2/aws4_request, \
             SignedHeaders=content-type;host;x-amz-date, Signature=0",
        )
        .body(http_body_util::Full::new(bytes::Bytes::from(body)))
        .expect("a valid request")
}

/// `application/x-www-form-urlencoded` escaping of one value.
fn form_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 2);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

async fn drive(
    plan: Arc<Plan>,
    scenario: Scenario,
    conn_idx: usize,
    measure_from: Instant,
    end: Instant,
) -> ConnStats {
    let target = match (scenario, &plan.moto) {
        (Scenario::MotoCreate, Some((moto, _))) => moto,
        _ => &plan.targets[conn_idx % plan.targets.len()],
    };
    let mut stats = ConnStats::default();
    let mut conn: Option<Conn> = None;
    let mut k = 0;
    let mut next = Instant::now();
    while Instant::now() < end {
        if let Some(every) = plan.pace {
            tokio::time::sleep_until(next.into()).await;
            next += every;
        }
        let Some(req) = build(&plan, scenario, target, conn_idx, k) else {
            break;
        };
        k += 1;
        if conn.as_ref().is_none_or(Conn::is_closed) {
            match Conn::open(target.addr).await {
                Ok(c) => conn = Some(c),
                Err(e) => {
                    stats.errors += 1;
                    stats.first_error.get_or_insert(format!("{e:#}"));
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            }
        }
        let c = conn.as_mut().expect("connected");
        let started = Instant::now();
        let result = c.send(req).await;
        let took = started.elapsed();
        if started < measure_from {
            continue;
        }
        match result {
            Ok((status, _)) if (200..300).contains(&status) => {}
            Ok((status, body)) => {
                stats.errors += 1;
                stats
                    .first_error
                    .get_or_insert_with(|| format!("{status} {}", String::from_utf8_lossy(&body)));
            }
            Err(e) => {
                stats.errors += 1;
                stats.first_error.get_or_insert(format!("{e:#}"));
                conn = None;
            }
        }
        stats
            .latencies_us
            .push(u32::try_from(took.as_micros()).unwrap_or(u32::MAX));
    }
    stats
}

fn percentile_ms(sorted_us: &[u32], p: f64) -> f64 {
    if sorted_us.is_empty() {
        return 0.0;
    }
    let idx = ((sorted_us.len() as f64 * p).ceil() as usize).clamp(1, sorted_us.len()) - 1;
    f64::from(sorted_us[idx]) / 1000.0
}

/// Runs `scenario`: `warmup`, then `duration` measured, over `connections` connections.
pub async fn run(plan: Arc<Plan>, scenario: Scenario, stored: Option<u64>) -> Report {
    let start = Instant::now();
    let measure_from = start + plan.warmup;
    let end = measure_from + plan.duration;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..plan.connections {
        tasks.spawn(drive(plan.clone(), scenario, i, measure_from, end));
    }
    // The CPU counters at both ends of the measured window.
    let cpu = tokio::spawn(async move {
        tokio::time::sleep_until(measure_from.into()).await;
        let from = crate::cpu::sample();
        tokio::time::sleep_until(end.into()).await;
        from.zip(crate::cpu::sample())
    });
    let mut all = Vec::new();
    let mut errors = 0;
    let mut first_error = None;
    while let Some(r) = tasks.join_next().await {
        let s = r.expect("load task");
        all.extend(s.latencies_us);
        errors += s.errors;
        if first_error.is_none() {
            first_error = s.first_error;
        }
    }
    let measured = Instant::now()
        .min(end)
        .saturating_duration_since(measure_from);
    all.sort_unstable();
    let requests = all.len() as u64;
    let cpu = cpu
        .await
        .ok()
        .flatten()
        .and_then(|(from, to)| crate::cpu::Usage::between(from, to, requests));
    Report {
        scenario,
        stored,
        connections: plan.connections,
        requests,
        errors,
        rate: requests as f64 / measured.as_secs_f64().max(1e-9),
        p50_ms: percentile_ms(&all, 0.50),
        p99_ms: percentile_ms(&all, 0.99),
        max_ms: percentile_ms(&all, 1.0),
        first_error,
        cpu,
    }
}
