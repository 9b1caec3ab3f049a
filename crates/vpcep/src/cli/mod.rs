//! The client commands: signed calls to a vpcep server (or any VPCEP-compatible endpoint), one
//! command per operation of the VPCEP and VPC APIs, grouped as `vpc`, `subnet`, `port`,
//! `service`, `endpoint`, `connection`, `quota`, `tag`, plus `whoami`, `profile`, `versions`
//! and the raw `call`.
//!
//! Where and as whom: flags (`--endpoint`, `--access-key`, `--secret-key`, `--project-id`,
//! `--ca-cert`, or `VPCEP_*` variables) override the profile (`--profile`, default `default`)
//! of the client configuration ([`config`]), which the first `vpcep serve` writes. Without a
//! profile, `./vpcep-data/default-account.toml` is still read.
//!
//! Output: `-o table` (default), `-o json` (the API's answer unchanged) or `-o id`. Exit codes:
//! 0 ok, 1 the API answered an error, 2 a usage, configuration or connection error.
//!
//! Layout: [`config`] (profiles), [`output`] (rendering), this module (commands → requests).

pub mod config;
pub mod output;

use clap::{Args, Subcommand, ValueEnum};
use config::{ConfigFile, Profile, DEFAULT_PROFILE};
use output::{Items, Output, View};
use reqwest::Method;
use serde_json::{json, Value};
use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;
use vpcep_client::Client;
use vpcep_control::accounts::AccountsFile;

/// The server `--endpoint` defaults to.
pub const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:8480";
/// The account file the first `vpcep serve` writes in its working directory (read when no
/// profile exists, as before profiles).
const LEGACY_ACCOUNT_FILE: &str = "./vpcep-data/default-account.toml";

/// A failed command: the message (one line) and the exit code.
#[derive(Debug)]
pub struct CliError {
    /// 1: the API answered an error; 2: usage, configuration or connection.
    pub code: i32,
    /// What failed, with a hint.
    pub message: String,
}

impl CliError {
    /// A usage, configuration or connection error (exit code 2).
    pub fn usage(message: impl Into<String>) -> Self {
        CliError {
            code: 2,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

type CliResult<T> = Result<T, CliError>;

/// Whose keys to use (for client commands and for `vpcep agent`).
#[derive(Args, Debug, Clone, Default)]
#[command(next_help_heading = "Client credentials")]
pub struct Credentials {
    /// Profile of the client configuration (~/.config/vpcep/config.toml, or $VPCEP_CONFIG) to
    /// use; default: `default` (`vpcep agent`: `operator`). The first `vpcep serve` writes
    /// `default` (its tenant) and `operator`; `vpcep profile set` writes others.
    #[arg(long, env = "VPCEP_PROFILE", global = true)]
    pub profile: Option<String>,
    /// Access key (overrides the profile; needs --secret-key).
    #[arg(long, env = "VPCEP_ACCESS_KEY", global = true)]
    pub access_key: Option<String>,
    /// Secret key (overrides the profile; needs --access-key).
    #[arg(long, env = "VPCEP_SECRET_KEY", global = true, hide_env_values = true)]
    pub secret_key: Option<String>,
    /// Project id the commands act in, filled into `{project_id}` (overrides the profile).
    #[arg(long, env = "VPCEP_PROJECT_ID", global = true)]
    pub project_id: Option<String>,
    /// Take the keys from this accounts file (e.g. vpcep-data/default-account.toml): its first
    /// tenant account (`vpcep agent`: its first operator). This is the client's; the server's
    /// file of tenants is `vpcep serve --accounts`.
    #[arg(long, env = "VPCEP_ACCOUNT_FILE", global = true)]
    pub account_file: Option<PathBuf>,
    /// PEM CA certificate(s) to verify an https:// server against, instead of the system's
    /// roots (overrides the profile).
    #[arg(long, env = "VPCEP_CA_CERT", global = true)]
    pub ca_cert: Option<PathBuf>,
}

/// Where and as whom the client commands call, and how they print.
#[derive(Args, Debug, Clone, Default)]
#[command(next_help_heading = "Client connection")]
pub struct ClientOpts {
    /// Whose keys.
    #[command(flatten)]
    pub creds: Credentials,
    /// The server's URL (default: the profile's, else http://127.0.0.1:8480).
    #[arg(long, env = "VPCEP_ENDPOINT", global = true)]
    pub endpoint: Option<String>,
    /// Output: `table` (a header row, one row per resource), `json` (the API's answer
    /// unchanged) or `id` (one id per line, for scripts).
    #[arg(
        long,
        short = 'o',
        env = "VPCEP_OUTPUT",
        value_enum,
        default_value_t,
        global = true
    )]
    pub output: Output,
    /// Seconds to wait for each answer before giving up with an error (the server itself
    /// answers 504 after 30 s).
    #[arg(
        long,
        env = "VPCEP_TIMEOUT",
        default_value_t = 60,
        value_parser = clap::value_parser!(u64).range(1..=3600),
        global = true
    )]
    pub timeout: u64,
}

/// Credentials and server after flags, environment, profile and account file.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The server's URL.
    pub endpoint: String,
    /// Access key.
    pub access_key: String,
    /// Secret key.
    pub secret_key: String,
    /// Project.
    pub project_id: String,
    /// Domain id when the source of the keys tells it.
    pub domain_id: Option<String>,
    /// `--ca-cert` or the profile's.
    pub ca_cert: Option<PathBuf>,
    /// The profile used, if any.
    pub profile: Option<String>,
}

fn account_keys(
    path: &std::path::Path,
    operator: bool,
) -> CliResult<(String, String, String, String)> {
    let file = AccountsFile::load(path).map_err(|e| CliError::usage(e.to_string()))?;
    let a = if operator {
        file.first_operator()
    } else {
        file.first_tenant().or(file.accounts.first())
    }
    .ok_or_else(|| {
        CliError::usage(format!(
            "{} lists no {}account",
            path.display(),
            if operator { "operator " } else { "" }
        ))
    })?;
    let c = a.credentials.first().ok_or_else(|| {
        CliError::usage(format!(
            "account {} in {} has no credential",
            a.domain_id,
            path.display()
        ))
    })?;
    Ok((
        c.access_key.clone(),
        c.secret_key.clone(),
        a.projects.first().cloned().unwrap_or_default(),
        a.domain_id.clone(),
    ))
}

impl Credentials {
    /// The profile: the one named (an error if missing), else `default` (`operator` for the
    /// agent) when the configuration has it.
    fn profile(&self, operator: bool) -> CliResult<Option<(String, Profile)>> {
        let path = config::config_path();
        let file = match &path {
            Some(p) => ConfigFile::load(p).map_err(CliError::usage)?,
            None => ConfigFile::default(),
        };
        match &self.profile {
            Some(name) => match file.profiles.get(name) {
                Some(p) => Ok(Some((name.clone(), p.clone()))),
                None => Err(CliError::usage(format!(
                    "no profile {name:?} in {} (profiles: {}); add it with `vpcep profile set {name} ...`",
                    path.map(|p| p.display().to_string()).unwrap_or_default(),
                    file.profiles.keys().cloned().collect::<Vec<_>>().join(", ")
                ))),
            },
            None => {
                let name = if operator { "operator" } else { DEFAULT_PROFILE };
                Ok(file
                    .profiles
                    .get(name)
                    .map(|p| (name.to_string(), p.clone())))
            }
        }
    }

    /// Resolves keys, project and server: flags and `VPCEP_*` first, then `--account-file`,
    /// then the profile, then `./vpcep-data/default-account.toml`. `operator` picks an
    /// operator account from account files (the agent).
    pub fn resolve(&self, endpoint: Option<&str>, operator: bool) -> CliResult<Resolved> {
        let profile = self.profile(operator)?;
        let p = profile.as_ref().map(|(_, p)| p.clone()).unwrap_or_default();
        let from_file = match &self.account_file {
            Some(f) => Some(account_keys(f, operator)?),
            None if profile.is_none() && std::path::Path::new(LEGACY_ACCOUNT_FILE).exists() => {
                Some(account_keys(
                    std::path::Path::new(LEGACY_ACCOUNT_FILE),
                    operator,
                )?)
            }
            None => None,
        };
        let (ak, sk, project, domain) = match (&self.access_key, &self.secret_key) {
            (Some(ak), Some(sk)) => (ak.clone(), sk.clone(), None, None),
            (Some(_), None) | (None, Some(_)) => {
                return Err(CliError::usage(
                    "--access-key and --secret-key go together (or VPCEP_ACCESS_KEY and VPCEP_SECRET_KEY)",
                ))
            }
            (None, None) => match (from_file, &p.access_key, &p.secret_key) {
                (Some((ak, sk, project, domain)), _, _) => (ak, sk, Some(project), Some(domain)),
                (None, Some(ak), Some(sk)) => (
                    ak.clone(),
                    sk.clone(),
                    p.project_id.clone(),
                    p.domain_id.clone(),
                ),
                _ => {
                    return Err(CliError::usage(format!(
                        "no credentials: start `vpcep serve` once (it writes the client profile `default` in {}), or give --profile, or --access-key and --secret-key",
                        config::config_path()
                            .map(|p| p.display().to_string())
                            .unwrap_or_else(|| "the configuration directory".into())
                    )))
                }
            },
        };
        Ok(Resolved {
            endpoint: endpoint
                .map(str::to_string)
                .or(p.endpoint.clone())
                .unwrap_or_else(|| DEFAULT_ENDPOINT.to_string())
                .trim_end_matches('/')
                .to_string(),
            access_key: ak,
            secret_key: sk,
            project_id: self
                .project_id
                .clone()
                .or(project)
                .or(p.project_id.clone())
                .unwrap_or_default(),
            domain_id: domain,
            ca_cert: self.ca_cert.clone().or(p.ca_cert.clone()),
            profile: profile.map(|(n, _)| n),
        })
    }
}

impl Resolved {
    /// The contents of the CA file, if one is set.
    pub fn ca_cert_pem(&self) -> CliResult<Option<Vec<u8>>> {
        self.ca_cert
            .as_ref()
            .map(|p| {
                std::fs::read(p).map_err(|e| {
                    CliError::usage(format!("cannot read the CA file {}: {e}", p.display()))
                })
            })
            .transpose()
    }

    /// A signed client.
    pub fn client(&self) -> CliResult<Client> {
        let url = reqwest::Url::parse(&self.endpoint)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
            .ok_or_else(|| {
                CliError::usage(format!(
                    "endpoint {:?} is not an http:// or https:// URL with a host, e.g. {DEFAULT_ENDPOINT}",
                    self.endpoint
                ))
            })?;
        let client = Client::new(
            url.as_str(),
            &self.access_key,
            &self.secret_key,
            &self.project_id,
        )
        .map_err(|e| CliError::usage(e.to_string()))?;
        match self.ca_cert_pem()? {
            Some(pem) => client.with_ca_cert(&pem).map_err(|e| {
                CliError::usage(format!(
                    "the CA file {}: {e}",
                    self.ca_cert.clone().unwrap_or_default().display()
                ))
            }),
            None => Ok(client),
        }
    }
}

/// `endpoint_service` or `endpoint` in the tag operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ResourceType {
    /// Endpoint services.
    Service,
    /// Endpoints.
    Endpoint,
}

impl ResourceType {
    fn path(self) -> &'static str {
        match self {
            ResourceType::Service => "endpoint_service",
            ResourceType::Endpoint => "endpoint",
        }
    }
}

/// The client commands.
#[derive(Subcommand, Debug)]
pub enum ClientCommand {
    /// Show who the CLI calls as: profile, server, domain id, project id, access key (checks
    /// the keys with a signed call). `-o id` prints the domain id.
    Whoami {
        #[command(flatten)]
        conn: ClientOpts,
    },
    /// VPCs (the network resources).
    Vpc {
        #[command(flatten)]
        conn: ClientOpts,
        #[command(subcommand)]
        cmd: VpcCmd,
    },
    /// Subnets of VPCs.
    Subnet {
        #[command(flatten)]
        conn: ClientOpts,
        #[command(subcommand)]
        cmd: SubnetCmd,
    },
    /// Ports: the backends of endpoint services (VM NICs, load balancer VIPs).
    Port {
        #[command(flatten)]
        conn: ClientOpts,
        #[command(subcommand)]
        cmd: PortCmd,
    },
    /// Endpoint services: publish a backend; permissions; public services.
    Service {
        #[command(flatten)]
        conn: ClientOpts,
        #[command(subcommand)]
        cmd: ServiceCmd,
    },
    /// Endpoints: connect a VPC of yours to a service.
    Endpoint {
        #[command(flatten)]
        conn: ClientOpts,
        #[command(subcommand)]
        cmd: EndpointCmd,
    },
    /// Connections to one of your services: accept or reject endpoints.
    Connection {
        #[command(flatten)]
        conn: ClientOpts,
        #[command(subcommand)]
        cmd: ConnectionCmd,
    },
    /// Quotas of the project and their use.
    Quota {
        #[command(flatten)]
        conn: ClientOpts,
        #[command(subcommand)]
        cmd: QuotaCmd,
    },
    /// Tags of services and endpoints.
    Tag {
        #[command(flatten)]
        conn: ClientOpts,
        #[command(subcommand)]
        cmd: TagCmd,
    },
    /// The API versions the server offers (`vpcep versions v1` for one).
    Versions {
        #[command(flatten)]
        conn: ClientOpts,
        /// One version, e.g. `v1`.
        version: Option<String>,
    },
    /// Client profiles (~/.config/vpcep/config.toml): servers and keys by name.
    Profile {
        #[command(flatten)]
        conn: ClientOpts,
        #[command(subcommand)]
        cmd: ProfileCmd,
    },
    /// Send any signed request, e.g. `vpcep call GET '/v1/{project_id}/vpc-endpoint-services?limit=5'`;
    /// prints the answer's JSON (`-o id`: its `id`).
    Call {
        #[command(flatten)]
        conn: ClientOpts,
        /// HTTP method (GET, POST, PUT, DELETE).
        method: String,
        /// Path and query, e.g. `/v1/{project_id}/vpcs` (`{project_id}` is filled in; a
        /// missing leading `/` is added).
        path: String,
        /// JSON body, or `@FILE` to read it from a file.
        #[arg(long, short)]
        data: Option<String>,
    },
}

/// `vpcep vpc ...`.
#[derive(Subcommand, Debug)]
pub enum VpcCmd {
    /// Create a VPC.
    Create {
        /// Its address range, e.g. 127.30.0.0/16 (with a data plane: a range inside
        /// --dataplane-cidrs, so that its endpoints can carry traffic).
        #[arg(long)]
        cidr: String,
        /// Its name (unique in the project).
        #[arg(long, default_value = "")]
        name: String,
        /// A description.
        #[arg(long)]
        description: Option<String>,
    },
    /// List VPCs.
    List,
    /// Show a VPC.
    Show {
        /// VPC id.
        id: String,
    },
    /// Change a VPC's name, description or range.
    Update {
        /// VPC id.
        id: String,
        /// New name.
        #[arg(long)]
        name: Option<String>,
        /// New description.
        #[arg(long)]
        description: Option<String>,
        /// New range (must keep its subnets).
        #[arg(long)]
        cidr: Option<String>,
    },
    /// Delete a VPC (delete its subnets first).
    Delete {
        /// VPC id.
        id: String,
    },
}

/// `vpcep subnet ...`.
#[derive(Subcommand, Debug)]
pub enum SubnetCmd {
    /// Create a subnet in a VPC.
    Create {
        /// The VPC.
        #[arg(long)]
        vpc_id: String,
        /// Its range, inside the VPC's, e.g. 127.30.1.0/24.
        #[arg(long)]
        cidr: String,
        /// Its gateway address (default: the first host address, e.g. 127.30.1.1; do not use
        /// it as a backend address).
        #[arg(long)]
        gateway_ip: Option<String>,
        /// Its name.
        #[arg(long, default_value = "subnet")]
        name: String,
    },
    /// List subnets.
    List {
        /// Only the subnets of this VPC.
        #[arg(long)]
        vpc_id: Option<String>,
    },
    /// Show a subnet.
    Show {
        /// Subnet id.
        id: String,
    },
    /// Rename a subnet or change its description.
    Update {
        /// Subnet id.
        id: String,
        /// New name (default: keep it).
        #[arg(long)]
        name: Option<String>,
        /// New description.
        #[arg(long)]
        description: Option<String>,
    },
    /// Delete a subnet (delete its ports first).
    Delete {
        /// Subnet id.
        id: String,
    },
    /// List the addresses in use in a subnet.
    Ips {
        /// Subnet id.
        id: String,
    },
}

/// `vpcep port ...`.
#[derive(Subcommand, Debug)]
pub enum PortCmd {
    /// Create a port (by default a VM NIC, `compute:az1`).
    Create {
        /// The subnet.
        #[arg(long)]
        subnet_id: String,
        /// A fixed address in the subnet (default: the lowest free one).
        #[arg(long)]
        ip: Option<String>,
        /// `compute:<az>` (a VM NIC: server type VM), `neutron:LOADBALANCERV2` (LB) or
        /// `neutron:VIP_PORT` (VIP).
        #[arg(long, default_value = "compute:az1")]
        device_owner: String,
        /// Its name.
        #[arg(long)]
        name: Option<String>,
    },
    /// List ports.
    List,
    /// Show a port.
    Show {
        /// Port id.
        id: String,
    },
    /// Rename a port.
    Update {
        /// Port id.
        id: String,
        /// New name.
        #[arg(long)]
        name: String,
    },
    /// Delete a port (not while a service uses it).
    Delete {
        /// Port id.
        id: String,
    },
}

/// `vpcep service ...`.
#[derive(Subcommand, Debug)]
pub enum ServiceCmd {
    /// Publish a backend port as an endpoint service.
    Create {
        /// The backend port (see `vpcep port create`).
        #[arg(long)]
        port_id: String,
        /// The VPC of the backend.
        #[arg(long)]
        vpc_id: String,
        /// VM, LB or VIP (must match the port's device owner).
        #[arg(long, default_value = "VM")]
        server_type: String,
        /// A mapping CLIENT_PORT:SERVER_PORT (endpoint side : backend side); repeat for more.
        #[arg(long = "port", required = true, value_name = "CLIENT:SERVER")]
        ports: Vec<String>,
        /// The middle part of its full name `<region>.<name>.<id>`.
        #[arg(long)]
        name: Option<String>,
        /// Accept connections without the owner's approval.
        #[arg(long)]
        no_approval: bool,
        /// What the backend learns of clients: close, proxy_open, proxy_vni, toa_open or open.
        #[arg(long)]
        tcp_proxy: Option<String>,
        /// The backend address, when not the port's fixed IP (inside the VPC).
        #[arg(long)]
        ip: Option<String>,
        /// A description.
        #[arg(long)]
        description: Option<String>,
        /// interface (default) or gateway (operators only).
        #[arg(long)]
        service_type: Option<String>,
        /// A tag KEY=VALUE; repeat for more.
        #[arg(long = "tag", value_name = "KEY=VALUE")]
        tags: Vec<String>,
    },
    /// List your endpoint services.
    List {
        /// Only services whose name contains this.
        #[arg(long)]
        name: Option<String>,
    },
    /// Show one of your services.
    Show {
        /// Service id.
        id: String,
    },
    /// Change a service: approval, port mappings, backend, TCP proxy, description.
    Update {
        /// Service id.
        id: String,
        /// Whether connections wait for the owner's approval (true or false).
        #[arg(long)]
        approval: Option<bool>,
        /// New port mappings CLIENT:SERVER (replace all); repeat for more.
        #[arg(long = "port", value_name = "CLIENT:SERVER")]
        ports: Vec<String>,
        /// New backend port.
        #[arg(long)]
        port_id: Option<String>,
        /// New backend address.
        #[arg(long)]
        ip: Option<String>,
        /// close, proxy_open, proxy_vni, toa_open or open.
        #[arg(long)]
        tcp_proxy: Option<String>,
        /// New description.
        #[arg(long)]
        description: Option<String>,
        /// New name part.
        #[arg(long)]
        name: Option<String>,
    },
    /// Rename a service (its full name becomes `<region>.<name>.<id>`).
    Rename {
        /// Service id.
        id: String,
        /// The new name part.
        name: String,
    },
    /// Delete a service (refused while endpoints are pending or accepted).
    Delete {
        /// Service id.
        id: String,
    },
    /// List who may connect to a service.
    Permissions {
        /// Service id.
        id: String,
    },
    /// Let accounts connect: DOMAIN_ID (or `*` for everyone, or a full `iam:domain::ID`).
    Permit {
        /// Service id.
        id: String,
        /// Domain ids (see `vpcep whoami`), `*`, or `iam:domain::ID` entries.
        #[arg(required = true)]
        domains: Vec<String>,
        /// A description of the permission (uses the batch operation).
        #[arg(long)]
        description: Option<String>,
    },
    /// Withdraw permissions, by domain id (or `*`), or by permission id with --by-id.
    Unpermit {
        /// Service id.
        id: String,
        /// Domain ids, `*`, `iam:domain::ID` entries, or permission ids with --by-id.
        #[arg(required = true)]
        entries: Vec<String>,
        /// The entries are permission ids (from `vpcep service permissions`).
        #[arg(long)]
        by_id: bool,
    },
    /// Describe a permission.
    PermissionDescribe {
        /// Service id.
        id: String,
        /// Permission id (from `vpcep service permissions`).
        permission_id: String,
        /// The description.
        description: String,
    },
    /// List the public services (an operator's, open to every account).
    Public {
        /// Only services whose name contains this.
        #[arg(long)]
        name: Option<String>,
    },
    /// Look a service up by full name (`region.name.id`) or id, as a consumer does.
    Describe {
        /// Full service name or id.
        name_or_id: String,
    },
    /// Add backend resources to a service (v2 API).
    AddServerResources {
        /// Service id.
        id: String,
        /// Resource ids; repeat for more.
        #[arg(required = true)]
        resources: Vec<String>,
        /// Availability zone of the resources.
        #[arg(long)]
        availability_zone: Option<String>,
    },
    /// Upgrade a service to support professional endpoints (v2 API).
    Upgrade {
        /// Service id.
        id: String,
    },
}

/// `vpcep endpoint ...`.
#[derive(Subcommand, Debug)]
pub enum EndpointCmd {
    /// Create an endpoint to a service in one of your VPCs.
    Create {
        /// The service: its full name (`region.name.id`, from its owner) or its id.
        #[arg(long, alias = "service-id", value_name = "NAME_OR_ID")]
        service: String,
        /// Your VPC.
        #[arg(long)]
        vpc_id: String,
        /// Your subnet (interface services).
        #[arg(long)]
        subnet_id: Option<String>,
        /// A fixed address in the subnet (default: the lowest free one).
        #[arg(long)]
        ip: Option<String>,
        /// A client CIDR or address allowed through (turns the whitelist on); repeat.
        #[arg(long = "whitelist", value_name = "CIDR")]
        whitelist: Vec<String>,
        /// Create a private DNS name for the endpoint.
        #[arg(long)]
        enable_dns: bool,
        /// Route tables (gateway services); repeat.
        #[arg(long = "routetable")]
        routetables: Vec<String>,
        /// A description.
        #[arg(long)]
        description: Option<String>,
        /// A tag KEY=VALUE; repeat for more.
        #[arg(long = "tag", value_name = "KEY=VALUE")]
        tags: Vec<String>,
    },
    /// List your endpoints.
    List {
        /// Only endpoints of services whose name contains this.
        #[arg(long)]
        service_name: Option<String>,
        /// Only endpoints in this VPC.
        #[arg(long)]
        vpc_id: Option<String>,
    },
    /// Show an endpoint.
    Show {
        /// Endpoint id.
        id: String,
    },
    /// Change an endpoint's whitelist.
    Update {
        /// Endpoint id.
        id: String,
        /// Allowed client CIDRs or addresses (replace the list); repeat.
        #[arg(long = "whitelist", value_name = "CIDR")]
        whitelist: Vec<String>,
        /// Turn the whitelist on or off (true or false).
        #[arg(long)]
        enable_whitelist: Option<bool>,
    },
    /// Delete an endpoint.
    Delete {
        /// Endpoint id.
        id: String,
    },
    /// Set an endpoint's policy (gateway endpoints).
    PolicySet {
        /// Endpoint id.
        id: String,
        /// `policy_statement` JSON (a list), or @FILE.
        #[arg(long)]
        statement: Option<String>,
        /// `policy_document` JSON (an object), or @FILE.
        #[arg(long)]
        document: Option<String>,
    },
    /// Delete an endpoint's policy.
    PolicyDelete {
        /// Endpoint id.
        id: String,
    },
    /// Set the route tables of a gateway endpoint.
    Routetables {
        /// Endpoint id.
        id: String,
        /// Route table ids (none: remove all).
        routetables: Vec<String>,
    },
    /// Upgrade an endpoint to a professional one (v2 API).
    Upgrade {
        /// Endpoint id.
        id: String,
    },
}

/// `vpcep connection ...`.
#[derive(Subcommand, Debug)]
pub enum ConnectionCmd {
    /// List the connections (endpoints) of one of your services.
    List {
        /// Service id.
        service_id: String,
        /// Only connections in this status (e.g. pendingAcceptance).
        #[arg(long)]
        status: Option<String>,
    },
    /// Accept endpoints' connections.
    Accept {
        /// Service id.
        service_id: String,
        /// Endpoint ids.
        #[arg(required = true)]
        endpoint_ids: Vec<String>,
    },
    /// Reject endpoints' connections.
    Reject {
        /// Service id.
        service_id: String,
        /// Endpoint ids.
        #[arg(required = true)]
        endpoint_ids: Vec<String>,
    },
    /// Describe a connection.
    Describe {
        /// Service id.
        service_id: String,
        /// Endpoint id.
        endpoint_id: String,
        /// The description.
        description: String,
    },
}

/// `vpcep quota ...`.
#[derive(Subcommand, Debug)]
pub enum QuotaCmd {
    /// List the quotas and their use.
    List {
        /// Only this type: endpoint_service or endpoint.
        #[arg(long = "type")]
        kind: Option<String>,
    },
}

/// `vpcep tag ...`.
#[derive(Subcommand, Debug)]
pub enum TagCmd {
    /// Add tags to a resource.
    Add {
        /// service or endpoint.
        #[arg(value_enum)]
        resource_type: ResourceType,
        /// The resource's id.
        id: String,
        /// Tags KEY=VALUE.
        #[arg(required = true, value_name = "KEY=VALUE")]
        tags: Vec<String>,
    },
    /// Remove tags from a resource.
    Remove {
        /// service or endpoint.
        #[arg(value_enum)]
        resource_type: ResourceType,
        /// The resource's id.
        id: String,
        /// Tag keys (KEY, or KEY=VALUE to remove only that value).
        #[arg(required = true, value_name = "KEY[=VALUE]")]
        tags: Vec<String>,
    },
    /// List the tags used in the project on a resource type.
    List {
        /// service or endpoint.
        #[arg(value_enum)]
        resource_type: ResourceType,
    },
    /// Find resources by tags.
    Find {
        /// service or endpoint.
        #[arg(value_enum)]
        resource_type: ResourceType,
        /// KEY=VALUE[,VALUE...] that resources must have; repeat (all must match).
        #[arg(long = "tag", value_name = "KEY=VALUES")]
        tags: Vec<String>,
        /// Count instead of listing.
        #[arg(long)]
        count: bool,
    },
}

/// `vpcep profile ...`.
#[derive(Subcommand, Debug)]
pub enum ProfileCmd {
    /// Write a profile from the connection flags (--endpoint, --access-key, --secret-key,
    /// --project-id, --ca-cert) and --domain-id; fields not given are kept.
    Set {
        /// Profile name.
        name: String,
        /// The account's domain id (shown by `whoami`).
        #[arg(long)]
        domain_id: Option<String>,
    },
    /// List the profiles (without secret keys).
    List,
}

fn parse_mapping(m: &str) -> CliResult<Value> {
    let bad = || {
        CliError::usage(format!(
            "--port {m:?}: expected CLIENT_PORT:SERVER_PORT, e.g. 80:8080"
        ))
    };
    let (c, s) = m.split_once(':').ok_or_else(bad)?;
    let c: u16 = c.trim().parse().map_err(|_| bad())?;
    let s: u16 = s.trim().parse().map_err(|_| bad())?;
    Ok(json!({"client_port": c, "server_port": s, "protocol": "TCP"}))
}

fn parse_tag(t: &str) -> CliResult<Value> {
    match t.split_once('=') {
        Some((k, v)) => Ok(json!({"key": k, "value": v})),
        None => Err(CliError::usage(format!("tag {t:?}: expected KEY=VALUE"))),
    }
}

fn first_host(cidr: &str) -> CliResult<String> {
    let net: ipnet::Ipv4Net = cidr
        .parse()
        .map_err(|_| CliError::usage(format!("--cidr {cidr:?} is not an IPv4 CIDR")))?;
    net.hosts()
        .next()
        .map(|h| h.to_string())
        .ok_or_else(|| CliError::usage(format!("{cidr} has no host address")))
}

fn json_arg(name: &str, text: &str) -> CliResult<Value> {
    let text = match text.strip_prefix('@') {
        Some(f) => std::fs::read_to_string(f)
            .map_err(|e| CliError::usage(format!("{name}: cannot read {f}: {e}")))?,
        None => text.to_string(),
    };
    serde_json::from_str(&text).map_err(|e| CliError::usage(format!("{name} is not JSON: {e}")))
}

/// `domain` as a permission entry: `*` and `iam:...` as given, else `iam:domain::<domain>`.
fn permission_entry(domain: &str) -> String {
    if domain == "*" || domain.starts_with("iam:") || domain.starts_with("organizations:") {
        domain.to_string()
    } else {
        format!("iam:domain::{domain}")
    }
}

fn query(pairs: &[(&str, Option<&str>)]) -> String {
    let q: Vec<String> = pairs
        .iter()
        .filter_map(|(k, v)| v.map(|v| format!("{k}={}", percent_encode(v))))
        .collect();
    if q.is_empty() {
        String::new()
    } else {
        format!("?{}", q.join("&"))
    }
}

fn percent_encode(v: &str) -> String {
    use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
    /// RFC 3986 unreserved characters stay as they are.
    const QUERY: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    utf8_percent_encode(v, QUERY).to_string()
}

/// One request of a command and how to show its answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Req {
    /// HTTP method.
    pub method: Method,
    /// Path and query with `{project_id}`.
    pub path: String,
    /// JSON body.
    pub body: Option<Value>,
    /// How to print the answer.
    pub view: View,
    /// What `-o id` prints when the answer has no body.
    pub ids: Vec<String>,
}

impl Req {
    fn new(method: Method, path: String, body: Option<Value>, view: View) -> Self {
        Req {
            method,
            path,
            body,
            view,
            ids: vec![],
        }
    }
    fn get(path: String, view: View) -> Self {
        Self::new(Method::GET, path, None, view)
    }
    fn post(path: String, body: Value, view: View) -> Self {
        Self::new(Method::POST, path, Some(body), view)
    }
    fn put(path: String, body: Value, view: View) -> Self {
        Self::new(Method::PUT, path, Some(body), view)
    }
    fn delete(path: String, id: &str) -> Self {
        Self::new(Method::DELETE, path, None, View::NOTHING).ids(&[id])
    }
    fn ids(mut self, ids: &[&str]) -> Self {
        self.ids = ids.iter().map(|s| s.to_string()).collect();
        self
    }
}

const P: &str = "/v1/{project_id}";

const VPC: &[&str] = &["id", "name", "cidr", "status"];
const SUBNET: &[&str] = &["id", "name", "cidr", "gateway_ip", "vpc_id", "status"];
const PORT: &[&str] = &[
    "id",
    "name",
    "fixed_ips.ip_address",
    "device_owner",
    "network_id",
    "status",
];
const SERVICE: &[&str] = &[
    "id",
    "service_name",
    "status",
    "server_type",
    "ports",
    "approval_enabled",
    "tcp_proxy",
];
const ENDPOINT: &[&str] = &[
    "id",
    "endpoint_service_name",
    "status",
    "ip",
    "vpc_id",
    "subnet_id",
];
const CONNECTION: &[&str] = &["id", "domain_id", "status", "description"];
const PERMISSION: &[&str] = &["id", "permission", "permission_type", "description"];

fn service_path(id: &str) -> String {
    format!("{P}/vpc-endpoint-services/{id}")
}

/// The request of a command that needs no lookup (all but a few: see [`plan`]).
fn request(cmd: &ClientCommand) -> CliResult<Vec<Req>> {
    use ClientCommand as C;
    let one = |r: Req| Ok(vec![r]);
    match cmd {
        C::Whoami { .. } | C::Profile { .. } => Ok(vec![]),
        C::Call {
            method, path, data, ..
        } => {
            let method = Method::from_bytes(method.to_uppercase().as_bytes())
                .map_err(|_| CliError::usage(format!("invalid HTTP method {method:?}")))?;
            let path = if path.starts_with('/') {
                path.clone()
            } else {
                format!("/{path}")
            };
            let body = data.as_deref().map(|d| json_arg("--data", d)).transpose()?;
            one(Req::new(
                method,
                path,
                body,
                View::new(Items::Root, &["id"]),
            ))
        }
        C::Versions { version, .. } => one(match version {
            Some(v) => Req::get(
                format!("/{v}"),
                View::new(Items::One("version"), &["id", "status", "version", "min_version"]),
            ),
            None => Req::get(
                "/".into(),
                View::new(Items::List("versions"), &["id", "status", "version", "min_version"]),
            ),
        }),
        C::Vpc { cmd, .. } => one(match cmd {
            VpcCmd::Create {
                cidr,
                name,
                description,
            } => {
                let mut vpc = json!({"cidr": cidr, "name": name});
                if let Some(d) = description {
                    vpc["description"] = json!(d);
                }
                Req::post(format!("{P}/vpcs"), json!({ "vpc": vpc }), View::new(Items::One("vpc"), VPC))
            }
            VpcCmd::List => Req::get(format!("{P}/vpcs"), View::new(Items::List("vpcs"), VPC)),
            VpcCmd::Show { id } => {
                Req::get(format!("{P}/vpcs/{id}"), View::new(Items::One("vpc"), VPC))
            }
            VpcCmd::Update {
                id,
                name,
                description,
                cidr,
            } => {
                let mut vpc = json!({});
                for (k, v) in [("name", name), ("description", description), ("cidr", cidr)] {
                    if let Some(v) = v {
                        vpc[k] = json!(v);
                    }
                }
                Req::put(
                    format!("{P}/vpcs/{id}"),
                    json!({ "vpc": vpc }),
                    View::new(Items::One("vpc"), VPC),
                )
            }
            VpcCmd::Delete { id } => Req::delete(format!("{P}/vpcs/{id}"), id),
        }),
        C::Subnet { cmd, .. } => match cmd {
            SubnetCmd::Create {
                vpc_id,
                cidr,
                gateway_ip,
                name,
            } => {
                let gateway_ip = match gateway_ip {
                    Some(g) => g.clone(),
                    None => first_host(cidr)?,
                };
                one(Req::post(
                    format!("{P}/subnets"),
                    json!({"subnet": {"vpc_id": vpc_id, "cidr": cidr, "gateway_ip": gateway_ip, "name": name}}),
                    View::new(Items::One("subnet"), SUBNET),
                ))
            }
            SubnetCmd::List { vpc_id } => one(Req::get(
                format!("{P}/subnets{}", query(&[("vpc_id", vpc_id.as_deref())])),
                View::new(Items::List("subnets"), SUBNET),
            )),
            SubnetCmd::Show { id } => one(Req::get(
                format!("{P}/subnets/{id}"),
                View::new(Items::One("subnet"), SUBNET),
            )),
            SubnetCmd::Ips { id } => one(Req::get(
                format!("{P}/subnets/{id}/privateips"),
                View::new(
                    Items::List("privateips"),
                    &["id", "ip_address", "device_owner", "status"],
                ),
            )),
            // Both need the subnet's VPC: see `plan`.
            SubnetCmd::Update { .. } | SubnetCmd::Delete { .. } => Ok(vec![]),
        },
        C::Port { cmd, .. } => one(match cmd {
            PortCmd::Create {
                subnet_id,
                ip,
                device_owner,
                name,
            } => {
                let mut port = json!({"network_id": subnet_id, "device_owner": device_owner});
                if let Some(ip) = ip {
                    port["fixed_ips"] = json!([{"ip_address": ip, "subnet_id": subnet_id}]);
                }
                if let Some(n) = name {
                    port["name"] = json!(n);
                }
                Req::post(
                    format!("{P}/ports"),
                    json!({ "port": port }),
                    View::new(Items::One("port"), PORT),
                )
            }
            PortCmd::List => Req::get(format!("{P}/ports"), View::new(Items::List("ports"), PORT)),
            PortCmd::Show { id } => {
                Req::get(format!("{P}/ports/{id}"), View::new(Items::One("port"), PORT))
            }
            PortCmd::Update { id, name } => Req::put(
                format!("{P}/ports/{id}"),
                json!({"port": {"name": name}}),
                View::new(Items::One("port"), PORT),
            ),
            PortCmd::Delete { id } => Req::delete(format!("{P}/ports/{id}"), id),
        }),
        C::Service { cmd, .. } => one(service_request(cmd)?),
        C::Endpoint { cmd, .. } => match cmd {
            // Resolves the service name: see `plan`.
            EndpointCmd::Create { .. } => Ok(vec![]),
            other => one(endpoint_request(other)?),
        },
        C::Connection { cmd, .. } => {
            let view = View::new(Items::List("connections"), CONNECTION);
            one(match cmd {
                ConnectionCmd::List { service_id, status } => Req::get(
                    format!(
                        "{}/connections{}",
                        service_path(service_id),
                        query(&[("status", status.as_deref()), ("limit", Some("1000"))])
                    ),
                    view,
                ),
                ConnectionCmd::Accept {
                    service_id,
                    endpoint_ids,
                }
                | ConnectionCmd::Reject {
                    service_id,
                    endpoint_ids,
                } => {
                    let action = if matches!(cmd, ConnectionCmd::Accept { .. }) {
                        "receive"
                    } else {
                        "reject"
                    };
                    Req::post(
                        format!("{}/connections/action", service_path(service_id)),
                        json!({"action": action, "endpoints": endpoint_ids}),
                        view,
                    )
                }
                ConnectionCmd::Describe {
                    service_id,
                    endpoint_id,
                    description,
                } => Req::put(
                    format!("{}/connections/description", service_path(service_id)),
                    json!({"connections": [{"id": endpoint_id, "description": description}]}),
                    view,
                ),
            })
        }
        C::Quota {
            cmd: QuotaCmd::List { kind },
            ..
        } => one(Req::get(
            format!("{P}/quotas{}", query(&[("type", kind.as_deref())])),
            View::new(Items::List("quotas.resources"), &["type", "used", "quota"]).id("type"),
        )),
        C::Tag { cmd, .. } => one(match cmd {
            TagCmd::Add {
                resource_type,
                id,
                tags,
            } => Req::post(
                format!("{P}/{}/{id}/tags/action", resource_type.path()),
                json!({"action": "create", "tags": tags.iter().map(|t| parse_tag(t)).collect::<CliResult<Vec<_>>>()?}),
                View::NOTHING,
            )
            .ids(&[id]),
            TagCmd::Remove {
                resource_type,
                id,
                tags,
            } => {
                let tags: Vec<Value> = tags
                    .iter()
                    .map(|t| match t.split_once('=') {
                        Some((k, v)) => json!({"key": k, "value": v}),
                        None => json!({ "key": t }),
                    })
                    .collect();
                Req::post(
                    format!("{P}/{}/{id}/tags/action", resource_type.path()),
                    json!({"action": "delete", "tags": tags}),
                    View::NOTHING,
                )
                .ids(&[id])
            }
            TagCmd::List { resource_type } => Req::get(
                format!("{P}/{}/tags", resource_type.path()),
                View::new(Items::List("tags"), &["key", "values"]).id("key"),
            ),
            TagCmd::Find {
                resource_type,
                tags,
                count,
            } => {
                let tags: Vec<Value> = tags
                    .iter()
                    .map(|t| match t.split_once('=') {
                        Some((k, v)) => Ok(json!({"key": k, "values": v.split(',').collect::<Vec<_>>()})),
                        None => Err(CliError::usage(format!("--tag {t:?}: expected KEY=VALUE[,VALUE...]"))),
                    })
                    .collect::<CliResult<_>>()?;
                let mut body = json!({"action": if *count { "count" } else { "filter" }});
                if !tags.is_empty() {
                    body["tags"] = json!(tags);
                }
                let view = if *count {
                    View::new(Items::Root, &["total_count"]).id("total_count")
                } else {
                    View::new(Items::List("resources"), &["resource_id", "resource_name", "tags"])
                        .id("resource_id")
                };
                Req::post(
                    format!("{P}/{}/resource_instances/action", resource_type.path()),
                    body,
                    view,
                )
            }
        }),
    }
}

fn service_request(cmd: &ServiceCmd) -> CliResult<Req> {
    let root = View::new(Items::Root, SERVICE);
    let perms = View::new(Items::List("permissions"), PERMISSION);
    let strings = View::new(Items::List("permissions"), &["."]).id(".");
    Ok(match cmd {
        ServiceCmd::Create {
            port_id,
            vpc_id,
            server_type,
            ports,
            name,
            no_approval,
            tcp_proxy,
            ip,
            description,
            service_type,
            tags,
        } => {
            let mut body = json!({
                "port_id": port_id,
                "vpc_id": vpc_id,
                "server_type": server_type,
                "ports": ports.iter().map(|m| parse_mapping(m)).collect::<CliResult<Vec<_>>>()?,
                "approval_enabled": !no_approval,
            });
            for (k, v) in [
                ("service_name", name),
                ("tcp_proxy", tcp_proxy),
                ("ip", ip),
                ("description", description),
                ("service_type", service_type),
            ] {
                if let Some(v) = v {
                    body[k] = json!(v);
                }
            }
            if !tags.is_empty() {
                body["tags"] = json!(tags
                    .iter()
                    .map(|t| parse_tag(t))
                    .collect::<CliResult<Vec<_>>>()?);
            }
            Req::post(format!("{P}/vpc-endpoint-services"), body, root)
        }
        ServiceCmd::List { name } => Req::get(
            format!(
                "{P}/vpc-endpoint-services{}",
                query(&[
                    ("endpoint_service_name", name.as_deref()),
                    ("limit", Some("1000"))
                ])
            ),
            View::new(Items::List("endpoint_services"), SERVICE),
        ),
        ServiceCmd::Show { id } => Req::get(service_path(id), root),
        ServiceCmd::Update {
            id,
            approval,
            ports,
            port_id,
            ip,
            tcp_proxy,
            description,
            name,
        } => {
            let mut body = json!({});
            if let Some(a) = approval {
                body["approval_enabled"] = json!(a);
            }
            if !ports.is_empty() {
                body["ports"] = json!(ports
                    .iter()
                    .map(|m| parse_mapping(m))
                    .collect::<CliResult<Vec<_>>>()?);
            }
            for (k, v) in [
                ("port_id", port_id),
                ("ip", ip),
                ("tcp_proxy", tcp_proxy),
                ("description", description),
                ("service_name", name),
            ] {
                if let Some(v) = v {
                    body[k] = json!(v);
                }
            }
            Req::put(service_path(id), body, root)
        }
        ServiceCmd::Rename { id, name } => Req::put(
            format!("{}/name", service_path(id)),
            json!({ "endpoint_service_name": name }),
            View::new(Items::Root, &["endpoint_service_name"]).id("endpoint_service_name"),
        ),
        ServiceCmd::Delete { id } => Req::delete(service_path(id), id),
        ServiceCmd::Permissions { id } => Req::get(
            format!("{}/permissions?limit=500", service_path(id)),
            View::new(
                Items::List("permissions"),
                &["id", "permission", "permission_type", "created_at"],
            ),
        ),
        ServiceCmd::Permit {
            id,
            domains,
            description,
        } => match description {
            Some(d) => Req::post(
                format!("{}/permissions/batch-create", service_path(id)),
                json!({
                    "permissions": domains.iter().map(|x| json!({"permission": permission_entry(x), "description": d})).collect::<Vec<_>>(),
                    "permission_type": "domainId",
                }),
                perms,
            ),
            None => Req::post(
                format!("{}/permissions/action", service_path(id)),
                json!({
                    "permissions": domains.iter().map(|x| permission_entry(x)).collect::<Vec<_>>(),
                    "permission_type": "domainId",
                    "action": "add",
                }),
                strings,
            ),
        },
        ServiceCmd::Unpermit { id, entries, by_id } => {
            if *by_id {
                Req::post(
                    format!("{}/permissions/batch-delete", service_path(id)),
                    json!({"permissions": entries.iter().map(|x| json!({"id": x})).collect::<Vec<_>>()}),
                    perms,
                )
            } else {
                Req::post(
                    format!("{}/permissions/action", service_path(id)),
                    json!({
                        "permissions": entries.iter().map(|x| permission_entry(x)).collect::<Vec<_>>(),
                        "permission_type": "domainId",
                        "action": "remove",
                    }),
                    strings,
                )
            }
        }
        ServiceCmd::PermissionDescribe {
            id,
            permission_id,
            description,
        } => Req::put(
            format!("{}/permissions/{permission_id}", service_path(id)),
            json!({"permission": {"description": description}}),
            perms,
        ),
        ServiceCmd::Public { name } => Req::get(
            format!(
                "{P}/vpc-endpoint-services/public{}",
                query(&[
                    ("endpoint_service_name", name.as_deref()),
                    ("limit", Some("1000"))
                ])
            ),
            View::new(
                Items::List("endpoint_services"),
                &["id", "service_name", "owner", "service_type"],
            ),
        ),
        ServiceCmd::Describe { name_or_id } => Req::get(
            describe_path(name_or_id),
            View::new(Items::Root, &["id", "service_name", "service_type"]),
        ),
        ServiceCmd::AddServerResources {
            id,
            resources,
            availability_zone,
        } => Req::post(
            format!("/v2/{{project_id}}/vpc-endpoint-services/{id}/add-server-resources"),
            json!({"server_resources": resources.iter().map(|r| {
                let mut o = json!({"resource_id": r});
                if let Some(az) = availability_zone {
                    o["availability_zone_id"] = json!(az);
                }
                o
            }).collect::<Vec<_>>()}),
            View::NOTHING,
        )
        .ids(&[id]),
        ServiceCmd::Upgrade { id } => Req::new(
            Method::POST,
            format!("/v2/{{project_id}}/vpc-endpoint-services/{id}/upgrade"),
            None,
            View::NOTHING,
        )
        .ids(&[id]),
    })
}

/// `GET .../describe?id=` for an id, `?endpoint_service_name=` for a name.
fn describe_path(name_or_id: &str) -> String {
    let key = if uuid::Uuid::try_parse(name_or_id).is_ok() {
        "id"
    } else {
        "endpoint_service_name"
    };
    format!(
        "{P}/vpc-endpoint-services/describe{}",
        query(&[(key, Some(name_or_id))])
    )
}

fn endpoint_request(cmd: &EndpointCmd) -> CliResult<Req> {
    let root = View::new(Items::Root, ENDPOINT);
    let ep = |id: &str| format!("{P}/vpc-endpoints/{id}");
    Ok(match cmd {
        EndpointCmd::Create { .. } => unreachable!("planned with a lookup"),
        EndpointCmd::List {
            service_name,
            vpc_id,
        } => Req::get(
            format!(
                "{P}/vpc-endpoints{}",
                query(&[
                    ("endpoint_service_name", service_name.as_deref()),
                    ("vpc_id", vpc_id.as_deref()),
                    ("limit", Some("1000"))
                ])
            ),
            View::new(Items::List("endpoints"), ENDPOINT),
        ),
        EndpointCmd::Show { id } => Req::get(ep(id), root),
        EndpointCmd::Update {
            id,
            whitelist,
            enable_whitelist,
        } => {
            let mut body = json!({});
            if !whitelist.is_empty() {
                body["whitelist"] = json!(whitelist);
            }
            if let Some(e) = enable_whitelist {
                body["enable_whitelist"] = json!(e);
            }
            Req::put(ep(id), body, root)
        }
        EndpointCmd::Delete { id } => Req::delete(ep(id), id),
        EndpointCmd::PolicySet {
            id,
            statement,
            document,
        } => {
            let mut body = json!({});
            if let Some(s) = statement {
                body["policy_statement"] = json_arg("--statement", s)?;
            }
            if let Some(d) = document {
                body["policy_document"] = json_arg("--document", d)?;
            }
            Req::put(format!("{}/policy", ep(id)), body, root)
        }
        EndpointCmd::PolicyDelete { id } => Req::delete(format!("{}/policy", ep(id)), id),
        EndpointCmd::Routetables { id, routetables } => Req::put(
            format!("{}/routetables", ep(id)),
            json!({ "routetables": routetables }),
            View::new(Items::Root, &["routetables"]).id("routetables"),
        ),
        EndpointCmd::Upgrade { id } => Req::post(
            format!("/v2/{{project_id}}/vpc-endpoints/{id}/upgrade"),
            json!({"action": "start"}),
            View::NOTHING,
        )
        .ids(&[id]),
    })
}

/// Sends a request; a transport failure is a one-line error naming the URL, with a hint.
async fn send(
    client: &Client,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> CliResult<vpcep_client::RawResponse> {
    let bytes = body.map(|b| serde_json::to_vec(b).expect("JSON values serialize"));
    let url = client.url(path);
    client
        .send_raw(method.clone(), path, bytes)
        .await
        .map_err(|e| {
            let root = match &e {
                vpcep_client::ClientError::Http(h) if h.is_timeout() && !h.is_connect() => {
                    return CliError::usage(format!(
                        "{method} {url}: no answer within {} s; the server accepted the connection but did not answer (raise --timeout, or check the server's log)",
                        client.timeout().unwrap_or_default().as_secs()
                    ));
                }
                vpcep_client::ClientError::Http(h) => {
                    let mut cause: &dyn std::error::Error = h;
                    while let Some(next) = cause.source() {
                        cause = next;
                    }
                    cause.to_string()
                }
                other => other.to_string(),
            };
            let hint = if url.starts_with("https://") {
                "is the server running there, and is its certificate signed by --ca-cert (or the profile's)?"
            } else {
                "is `vpcep serve` running there? Choose the server with --endpoint or --profile"
            };
            CliError::usage(format!("{method} {url}: cannot reach the server: {root}; {hint}"))
        })
}

/// An error answer in one line: method, URL, status, code and message, plus a hint.
fn api_error(method: &Method, url: &str, resp: &vpcep_client::RawResponse) -> CliError {
    let v = resp.json();
    let code = v["error_code"].as_str().unwrap_or_default();
    let msg = v["error_msg"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| String::from_utf8_lossy(&resp.body).trim().to_string());
    let hint = match resp.status {
        401 => " (check the keys: `vpcep whoami`, --profile)",
        403 => " (the keys' account does not own this project, or lacks permission)",
        _ => "",
    };
    // The server's words, shown escaped: they may echo what another account wrote.
    CliError {
        code: 1,
        message: output::printable(&format!(
            "{method} {url}: HTTP {}{}{}: {msg}{hint}",
            resp.status,
            if code.is_empty() { "" } else { " " },
            code
        )),
    }
}

/// Sends and checks: the body of a success, or a one-line error.
async fn call_ok(
    client: &Client,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> CliResult<vpcep_client::RawResponse> {
    let resp = send(client, method.clone(), path, body).await?;
    if resp.status >= 400 {
        return Err(api_error(&method, &client.url(path), &resp));
    }
    Ok(resp)
}

/// The requests of a command, with the lookups some need (a subnet's VPC, a service's id).
async fn plan(client: &Client, cmd: &ClientCommand) -> CliResult<Vec<Req>> {
    match cmd {
        ClientCommand::Subnet {
            cmd: SubnetCmd::Update { id, .. } | SubnetCmd::Delete { id },
            ..
        } => {
            let path = format!("{P}/subnets/{id}");
            let subnet = call_ok(client, Method::GET, &path, None).await?.json();
            let vpc = subnet["subnet"]["vpc_id"].as_str().unwrap_or_default();
            let target = format!("{P}/vpcs/{vpc}/subnets/{id}");
            Ok(vec![match cmd {
                ClientCommand::Subnet {
                    cmd:
                        SubnetCmd::Update {
                            name, description, ..
                        },
                    ..
                } => {
                    let mut body = json!({"name": name.clone().unwrap_or_else(|| subnet["subnet"]["name"].as_str().unwrap_or_default().to_string())});
                    if let Some(d) = description {
                        body["description"] = json!(d);
                    }
                    Req::put(
                        target,
                        json!({ "subnet": body }),
                        View::new(Items::One("subnet"), SUBNET),
                    )
                }
                _ => Req::delete(target, id),
            }])
        }
        ClientCommand::Endpoint {
            cmd:
                EndpointCmd::Create {
                    service,
                    vpc_id,
                    subnet_id,
                    ip,
                    whitelist,
                    enable_dns,
                    routetables,
                    description,
                    tags,
                },
            ..
        } => {
            let service_id = if uuid::Uuid::try_parse(service).is_ok() {
                service.clone()
            } else {
                let found = call_ok(client, Method::GET, &describe_path(service), None)
                    .await
                    .map_err(|e| CliError {
                        message: format!("looking the service {service:?} up by name: {e}"),
                        ..e
                    })?
                    .json();
                found["id"].as_str().unwrap_or_default().to_string()
            };
            let mut body = json!({"endpoint_service_id": service_id, "vpc_id": vpc_id});
            if let Some(s) = subnet_id {
                body["subnet_id"] = json!(s);
            }
            if let Some(ip) = ip {
                body["port_ip"] = json!(ip);
            }
            if !whitelist.is_empty() {
                body["whitelist"] = json!(whitelist);
                body["enable_whitelist"] = json!(true);
            }
            if *enable_dns {
                body["enable_dns"] = json!(true);
            }
            if !routetables.is_empty() {
                body["routetables"] = json!(routetables);
            }
            if let Some(d) = description {
                body["description"] = json!(d);
            }
            if !tags.is_empty() {
                body["tags"] = json!(tags
                    .iter()
                    .map(|t| parse_tag(t))
                    .collect::<CliResult<Vec<_>>>()?);
            }
            Ok(vec![Req::post(
                format!("{P}/vpc-endpoints"),
                body,
                View::new(Items::Root, ENDPOINT),
            )])
        }
        other => request(other),
    }
}

fn print(text: &str) -> CliResult<()> {
    if text.is_empty() {
        return Ok(());
    }
    // A closed pipe (`vpcep ... | head`) is the reader's choice, not an error.
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(CliError::usage(format!("writing the output: {e}")))
        }
        _ => Ok(()),
    }
}

fn conn_of(cmd: &ClientCommand) -> &ClientOpts {
    use ClientCommand as C;
    match cmd {
        C::Whoami { conn }
        | C::Vpc { conn, .. }
        | C::Subnet { conn, .. }
        | C::Port { conn, .. }
        | C::Service { conn, .. }
        | C::Endpoint { conn, .. }
        | C::Connection { conn, .. }
        | C::Quota { conn, .. }
        | C::Tag { conn, .. }
        | C::Versions { conn, .. }
        | C::Profile { conn, .. }
        | C::Call { conn, .. } => conn,
    }
}

/// `vpcep profile ...`.
fn profile_command(conn: &ClientOpts, cmd: &ProfileCmd) -> CliResult<()> {
    let path = config::config_path()
        .ok_or_else(|| CliError::usage("no configuration directory (set VPCEP_CONFIG or HOME)"))?;
    let mut file = ConfigFile::load(&path).map_err(CliError::usage)?;
    match cmd {
        ProfileCmd::Set { name, domain_id } => {
            let c = &conn.creds;
            let p = file.profiles.entry(name.clone()).or_default();
            let set = |slot: &mut Option<String>, v: &Option<String>| {
                if v.is_some() {
                    slot.clone_from(v);
                }
            };
            set(&mut p.endpoint, &conn.endpoint);
            set(&mut p.access_key, &c.access_key);
            set(&mut p.secret_key, &c.secret_key);
            set(&mut p.project_id, &c.project_id);
            set(&mut p.domain_id, domain_id);
            if let Some(ca) = &c.ca_cert {
                p.ca_cert = Some(std::path::absolute(ca).unwrap_or_else(|_| ca.clone()));
            }
            file.save(&path)
                .map_err(|e| CliError::usage(format!("cannot write {}: {e}", path.display())))?;
            if conn.output == Output::Id {
                print(&format!("{name}\n"))?;
            }
            Ok(())
        }
        ProfileCmd::List => {
            let rows: Vec<Value> = file
                .profiles
                .iter()
                .map(|(name, p)| {
                    json!({"name": name, "endpoint": p.endpoint, "access_key": p.access_key,
                        "project_id": p.project_id, "domain_id": p.domain_id, "ca_cert": p.ca_cert})
                })
                .collect();
            let body = json!({ "profiles": rows }).to_string();
            let view = View::new(
                Items::List("profiles"),
                &["name", "endpoint", "access_key", "project_id", "domain_id"],
            )
            .id("name");
            print(&output::render(conn.output, &view, body.as_bytes(), &[]))
        }
    }
}

/// Runs a client command; prints the answer as `-o` asks. Errors are one line; see
/// [`CliError`] for the exit codes.
pub async fn run(cmd: ClientCommand) -> CliResult<()> {
    let conn = conn_of(&cmd).clone();
    if let ClientCommand::Profile { cmd, .. } = &cmd {
        return profile_command(&conn, cmd);
    }
    let who = conn.creds.resolve(conn.endpoint.as_deref(), false)?;
    let client = who
        .client()?
        .with_timeout(Duration::from_secs(conn.timeout));
    if let ClientCommand::Whoami { .. } = cmd {
        // Any signed call checks the keys; the quotas are every account's to read.
        call_ok(&client, Method::GET, &format!("{P}/quotas"), None).await?;
        let body = json!({
            "profile": who.profile,
            "endpoint": who.endpoint,
            "domain_id": who.domain_id,
            "project_id": who.project_id,
            "access_key": who.access_key,
        })
        .to_string();
        let view = View::new(
            Items::Root,
            &[
                "profile",
                "endpoint",
                "domain_id",
                "project_id",
                "access_key",
            ],
        )
        .id("domain_id");
        return print(&output::render(conn.output, &view, body.as_bytes(), &[]));
    }
    let output = match (&cmd, conn.output) {
        // A raw call has no columns to show: its JSON is the table.
        (ClientCommand::Call { .. }, Output::Table) => Output::Json,
        (_, o) => o,
    };
    for req in plan(&client, &cmd).await? {
        let resp = call_ok(&client, req.method.clone(), &req.path, req.body.as_ref()).await?;
        print(&output::render(output, &req.view, &resp.body, &req.ids))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(cmd: ServiceCmd) -> ClientCommand {
        ClientCommand::Service {
            conn: ClientOpts::default(),
            cmd,
        }
    }

    #[test]
    fn commands_build_the_documented_requests() {
        let r = request(&service(ServiceCmd::Create {
            port_id: "p".into(),
            vpc_id: "v".into(),
            server_type: "VM".into(),
            ports: vec!["80:8080".into(), "81:8081".into()],
            name: Some("web".into()),
            no_approval: true,
            tcp_proxy: None,
            ip: None,
            description: None,
            service_type: None,
            tags: vec!["env=prod".into()],
        }))
        .unwrap();
        assert_eq!(
            (r[0].method.as_str(), r[0].path.as_str()),
            ("POST", "/v1/{project_id}/vpc-endpoint-services")
        );
        let b = r[0].body.as_ref().unwrap();
        assert_eq!(b["ports"][1]["server_port"], 8081);
        assert_eq!(b["approval_enabled"], false);
        assert_eq!(b["service_name"], "web");
        assert_eq!(b["tags"][0], json!({"key": "env", "value": "prod"}));
        let r = request(&ClientCommand::Subnet {
            conn: ClientOpts::default(),
            cmd: SubnetCmd::Create {
                vpc_id: "v".into(),
                cidr: "10.0.1.0/24".into(),
                gateway_ip: None,
                name: "s".into(),
            },
        })
        .unwrap();
        assert_eq!(
            r[0].body.as_ref().unwrap()["subnet"]["gateway_ip"],
            "10.0.1.1"
        );
        let r = request(&service(ServiceCmd::Permit {
            id: "s".into(),
            domains: vec!["d".into(), "*".into()],
            description: None,
        }))
        .unwrap();
        let b = r[0].body.as_ref().unwrap();
        assert_eq!(b["permissions"], json!(["iam:domain::d", "*"]));
        assert_eq!(b["action"], "add");
        assert!(parse_mapping("80").is_err());
        assert!(parse_mapping("80:x").is_err());
    }

    /// Every operation of the server's OpenAPI document (but the agent feed and the server's
    /// own endpoints) has a command.
    #[test]
    fn every_api_operation_has_a_command() {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(subcommand)]
            cmd: ClientCommand,
        }
        let x = "0f8a1c2e-3d4b-5a69-7887-96a5b4c3d2e1";
        let lines = [
            "vpc create --cidr 10.0.0.0/16",
            "vpc list",
            "vpc show X",
            "vpc update X --name n",
            "vpc delete X",
            "subnet create --vpc-id X --cidr 10.0.1.0/24",
            "subnet list",
            "subnet show X",
            "subnet ips X",
            "port create --subnet-id X",
            "port list",
            "port show X",
            "port update X --name n",
            "port delete X",
            "service create --port-id X --vpc-id X --port 80:80",
            "service list",
            "service show X",
            "service update X --approval false",
            "service rename X n",
            "service delete X",
            "service permissions X",
            "service permit X d",
            "service permit X d --description t",
            "service unpermit X X --by-id",
            "service permission-describe X X t",
            "service public",
            "service describe X",
            "service add-server-resources X r",
            "service upgrade X",
            "endpoint list",
            "endpoint show X",
            "endpoint update X --enable-whitelist true",
            "endpoint delete X",
            "endpoint policy-set X --document {}",
            "endpoint policy-delete X",
            "endpoint routetables X r",
            "endpoint upgrade X",
            "connection list X",
            "connection accept X X",
            "connection describe X X t",
            "quota list",
            "tag add service X k=v",
            "tag list endpoint",
            "tag find service",
            "versions",
            "versions v1",
        ];
        let mut sent: Vec<(String, String)> = lines
            .iter()
            .flat_map(|l| {
                let argv =
                    std::iter::once("vpcep")
                        .chain(l.split(' ').map(|w| if w == "X" { x } else { w }));
                let cli = <Cli as clap::Parser>::try_parse_from(argv)
                    .unwrap_or_else(|e| panic!("{l}: {e}"));
                request(&cli.cmd).unwrap_or_else(|e| panic!("{l}: {e}"))
            })
            .map(|r| {
                (
                    r.method.to_string(),
                    r.path.split('?').next().unwrap().to_string(),
                )
            })
            .collect();
        // The commands that look something up first (see `plan`).
        for (m, p) in [
            ("PUT", "/v1/{project_id}/vpcs/X/subnets/X"),
            ("DELETE", "/v1/{project_id}/vpcs/X/subnets/X"),
            ("POST", "/v1/{project_id}/vpc-endpoints"),
        ] {
            sent.push((m.into(), p.replace('X', x)));
        }
        let doc = serde_json::to_value(vpcep_api::openapi::document()).unwrap();
        let mut missing = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            if path.starts_with("/agent")
                || !path.starts_with("/v") && path != "/" && path != "/{version}"
            {
                continue;
            }
            for method in item.as_object().unwrap().keys() {
                let method = method.to_uppercase();
                let segments: Vec<&str> = path.split('/').collect();
                let covered = sent.iter().any(|(m, p)| {
                    let got: Vec<&str> = p.split('/').collect();
                    *m == method
                        && got.len() == segments.len()
                        && segments.iter().zip(&got).all(|(want, got)| {
                            // A path parameter but the project (filled in by the client).
                            want == got || (want.starts_with('{') && *want != "{project_id}")
                        })
                });
                if !covered {
                    missing.push(format!("{method} {path}"));
                }
            }
        }
        assert!(
            missing.is_empty(),
            "operations without a command: {missing:#?}"
        );
    }

    #[test]
    fn call_paths_without_a_leading_slash_get_one() {
        let r = request(&ClientCommand::Call {
            conn: ClientOpts::default(),
            method: "get".into(),
            path: "v1/{project_id}/vpcs".into(),
            data: None,
        })
        .unwrap();
        assert_eq!(r[0].method, Method::GET);
        assert_eq!(r[0].path, "/v1/{project_id}/vpcs");
    }

    #[test]
    fn describe_looks_names_up_by_name_and_ids_by_id() {
        assert!(
            describe_path("local-1.api.0f8a1c2e-3d4b-5a69-7887-96a5b4c3d2e1").ends_with(
                "?endpoint_service_name=local-1.api.0f8a1c2e-3d4b-5a69-7887-96a5b4c3d2e1"
            )
        );
        assert!(describe_path("0f8a1c2e-3d4b-5a69-7887-96a5b4c3d2e1")
            .ends_with("?id=0f8a1c2e-3d4b-5a69-7887-96a5b4c3d2e1"));
    }
}
