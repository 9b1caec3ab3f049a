//! Tenants: the accounts file (`--accounts`, TOML, the contract in `shared/design.md`), the
//! default account made on first start, and the AK → account registry that authentication uses.

use rand::distributions::{Alphanumeric, DistString};
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use vpcep_domain::ids::is_hex32;

/// Default per-project quota of endpoint services (Open Telekom Cloud's documented default).
pub const DEFAULT_SERVICE_QUOTA: u64 = 20;
/// Default per-project quota of endpoints.
pub const DEFAULT_ENDPOINT_QUOTA: u64 = 50;
/// Default per-project quota of VPCs (generous: Huawei Cloud's default is 5 per region).
pub const DEFAULT_VPC_QUOTA: u64 = 100;
/// Default per-project quota of subnets.
pub const DEFAULT_SUBNET_QUOTA: u64 = 1_000;
/// Default per-project quota of ports.
pub const DEFAULT_PORT_QUOTA: u64 = 10_000;

/// The accounts file: `[[account]]` tables.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountsFile {
    /// The tenants.
    #[serde(default, rename = "account")]
    pub accounts: Vec<AccountConfig>,
}

/// One `[[account]]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountConfig {
    /// 32 lowercase hex.
    pub domain_id: String,
    /// Display name.
    pub domain_name: String,
    /// Operators' services are listed as public services and they may create gateway services.
    #[serde(default)]
    pub operator: bool,
    /// Project ids (32 lowercase hex) this account owns.
    pub projects: Vec<String>,
    /// Per-project quotas; absent values take the defaults.
    #[serde(default, skip_serializing_if = "Quotas::is_default")]
    pub quotas: Quotas,
    /// Access keys.
    #[serde(default, rename = "credential")]
    pub credentials: Vec<Credential>,
}

/// `[[account.credential]]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credential {
    /// AK.
    pub access_key: String,
    /// SK.
    pub secret_key: String,
}

/// `[account.quotas]`: per-project limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quotas {
    /// Endpoint services per project.
    #[serde(default = "default_service_quota")]
    pub endpoint_service: u64,
    /// Endpoints per project.
    #[serde(default = "default_endpoint_quota")]
    pub endpoint: u64,
    /// VPCs per project (the network resources).
    #[serde(default = "default_vpc_quota")]
    pub vpc: u64,
    /// Subnets per project.
    #[serde(default = "default_subnet_quota")]
    pub subnet: u64,
    /// Ports per project.
    #[serde(default = "default_port_quota")]
    pub port: u64,
}

fn default_service_quota() -> u64 {
    DEFAULT_SERVICE_QUOTA
}
fn default_endpoint_quota() -> u64 {
    DEFAULT_ENDPOINT_QUOTA
}
fn default_vpc_quota() -> u64 {
    DEFAULT_VPC_QUOTA
}
fn default_subnet_quota() -> u64 {
    DEFAULT_SUBNET_QUOTA
}
fn default_port_quota() -> u64 {
    DEFAULT_PORT_QUOTA
}

impl Default for Quotas {
    fn default() -> Self {
        Quotas {
            endpoint_service: DEFAULT_SERVICE_QUOTA,
            endpoint: DEFAULT_ENDPOINT_QUOTA,
            vpc: DEFAULT_VPC_QUOTA,
            subnet: DEFAULT_SUBNET_QUOTA,
            port: DEFAULT_PORT_QUOTA,
        }
    }
}

impl Quotas {
    fn is_default(&self) -> bool {
        *self == Quotas::default()
    }
}

/// Why an accounts file was refused.
#[derive(Debug, thiserror::Error)]
pub enum AccountsError {
    /// Unreadable file.
    #[error("cannot read {path}: {reason}")]
    Io {
        /// The file.
        path: String,
        /// Why (in the message, so not also a `source` that error chains would print twice).
        reason: std::io::Error,
    },
    /// Not valid TOML of the expected shape.
    #[error("invalid accounts file: {0}")]
    Parse(#[from] toml::de::Error),
    /// A rule of the format is broken.
    #[error("invalid accounts file: {0}")]
    Invalid(String),
}

impl AccountsFile {
    /// Parses and checks an accounts file's text.
    pub fn parse(text: &str) -> Result<Self, AccountsError> {
        let file: AccountsFile = toml::from_str(text)?;
        file.check()?;
        Ok(file)
    }

    /// Reads and checks an accounts file.
    pub fn load(path: &Path) -> Result<Self, AccountsError> {
        let text = std::fs::read_to_string(path).map_err(|reason| AccountsError::Io {
            path: path.display().to_string(),
            reason,
        })?;
        Self::parse(&text)
    }

    /// Checks ids, uniqueness of domains, projects and access keys.
    pub fn check(&self) -> Result<(), AccountsError> {
        let invalid = |m: String| Err(AccountsError::Invalid(m));
        let mut domains = HashMap::new();
        let mut projects = HashMap::new();
        let mut keys = HashMap::new();
        for a in &self.accounts {
            if !is_hex32(&a.domain_id) {
                return invalid(format!(
                    "domain_id {:?} is not 32 lowercase hex characters",
                    a.domain_id
                ));
            }
            if domains.insert(&a.domain_id, ()).is_some() {
                return invalid(format!("domain_id {} appears twice", a.domain_id));
            }
            for p in &a.projects {
                if !is_hex32(p) {
                    return invalid(format!(
                        "project {p:?} of {} is not 32 lowercase hex characters",
                        a.domain_id
                    ));
                }
                if let Some(other) = projects.insert(p, &a.domain_id) {
                    return invalid(format!(
                        "project {p} belongs to both {other} and {}",
                        a.domain_id
                    ));
                }
            }
            for c in &a.credentials {
                if c.access_key.is_empty() || c.secret_key.is_empty() {
                    return invalid(format!("an access key of {} is empty", a.domain_id));
                }
                if keys.insert(&c.access_key, ()).is_some() {
                    return invalid(format!("access_key {} appears twice", c.access_key));
                }
            }
        }
        Ok(())
    }

    /// The accounts the first start makes, with random ids and keys: a tenant, `default` (a
    /// normal account: its services are private until `service permit`), and `operator` (its
    /// keys run data-plane agents; its services are public). The tenant comes first, so tools
    /// that take a file's first account act as the tenant.
    pub fn generate_default() -> Self {
        let mut rng = rand::thread_rng();
        let mut account = |name: &str, operator: bool| {
            let hex32 = format!("{:032x}", rng.gen::<u128>());
            let project = format!("{:032x}", rng.gen::<u128>());
            AccountConfig {
                domain_id: hex32,
                domain_name: name.into(),
                operator,
                projects: vec![project],
                quotas: Quotas::default(),
                credentials: vec![Credential {
                    access_key: Alphanumeric
                        .sample_string(&mut rng, 20)
                        .to_ascii_uppercase(),
                    secret_key: Alphanumeric.sample_string(&mut rng, 40),
                }],
            }
        };
        AccountsFile {
            accounts: vec![account("default", false), account("operator", true)],
        }
    }

    /// The first account that is not an operator (the tenant of a default accounts file).
    pub fn first_tenant(&self) -> Option<&AccountConfig> {
        self.accounts.iter().find(|a| !a.operator)
    }

    /// The first operator account.
    pub fn first_operator(&self) -> Option<&AccountConfig> {
        self.accounts.iter().find(|a| a.operator)
    }

    /// This file (`--accounts`) with the stored default accounts it does not list (by
    /// `domain_id`) added, so that starting with `--accounts` never locks the first start's
    /// accounts out; an entry of the file with a default account's `domain_id` replaces it (e.g.
    /// with no `[[account.credential]]` to revoke its keys). Refused when the result breaks a
    /// rule of the format (e.g. a default account's project or access key is in the file under
    /// another domain). Answers the merged file and the domain ids kept from `defaults`.
    pub fn with_defaults(
        mut self,
        defaults: &AccountsFile,
    ) -> Result<(Self, Vec<String>), AccountsError> {
        let mut kept = Vec::new();
        for d in &defaults.accounts {
            if !self.accounts.iter().any(|a| a.domain_id == d.domain_id) {
                kept.push(d.domain_id.clone());
                self.accounts.push(d.clone());
            }
        }
        self.check().map_err(|e| {
            AccountsError::Invalid(format!(
                "the default accounts of the first start ({}) stay in force beside the file, and together they break a rule: {e}",
                defaults
                    .accounts
                    .iter()
                    .map(|a| format!("{} {}", a.domain_name, a.domain_id))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
        Ok((self, kept))
    }

    /// The TOML text of this file.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("accounts serialize to TOML")
    }
}

/// An authenticated tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// Account id.
    pub domain_id: String,
    /// Display name.
    pub domain_name: String,
    /// See [`AccountConfig::operator`].
    pub operator: bool,
    /// Owned projects.
    pub projects: Vec<String>,
    /// Per-project quotas.
    pub quotas: Quotas,
}

impl Account {
    /// Whether this account owns `project_id`.
    pub fn owns_project(&self, project_id: &str) -> bool {
        self.projects.iter().any(|p| p == project_id)
    }
}

/// AK → (SK, account): built at start, replaced whole by [`Registry::replace`] when the
/// accounts file is reloaded (requests in flight keep the account they were authenticated as).
#[derive(Debug, Default)]
pub struct Registry {
    current: std::sync::RwLock<Arc<Keys>>,
}

/// One version of the registry's contents.
#[derive(Debug, Default)]
struct Keys {
    by_access_key: HashMap<String, (String, Arc<Account>)>,
    operators: Vec<String>,
}

impl Keys {
    fn new(file: &AccountsFile) -> Self {
        let mut r = Keys::default();
        for a in &file.accounts {
            let account = Arc::new(Account {
                domain_id: a.domain_id.clone(),
                domain_name: a.domain_name.clone(),
                operator: a.operator,
                projects: a.projects.clone(),
                quotas: a.quotas,
            });
            if a.operator {
                r.operators.push(a.domain_id.clone());
            }
            for c in &a.credentials {
                r.by_access_key.insert(
                    c.access_key.clone(),
                    (c.secret_key.clone(), account.clone()),
                );
            }
        }
        r
    }
}

impl Registry {
    /// Builds the registry of a checked accounts file.
    pub fn new(file: &AccountsFile) -> Self {
        Registry {
            current: std::sync::RwLock::new(Arc::new(Keys::new(file))),
        }
    }

    fn keys(&self) -> Arc<Keys> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Replaces every account and key with those of a checked accounts file: keys it lacks are
    /// refused from the next request on.
    pub fn replace(&self, file: &AccountsFile) {
        let keys = Arc::new(Keys::new(file));
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = keys;
    }

    /// The SK and account of an AK.
    pub fn lookup(&self, access_key: &str) -> Option<(String, Arc<Account>)> {
        self.keys().by_access_key.get(access_key).cloned()
    }

    /// Domain ids of operator accounts (their services are public).
    pub fn operator_domains(&self) -> Vec<String> {
        self.keys().operators.clone()
    }

    /// How many access keys are known.
    pub fn key_count(&self) -> usize {
        self.keys().by_access_key.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"
[[account]]
domain_id   = "0f8a1c2e3d4b5a69788796a5b4c3d2e1"
domain_name = "acme"
operator    = false
projects    = ["6e9dfd51d1124e8d8498dce894923a0d"]
[[account.credential]]
access_key = "AKACMEEXAMPLE0000001"
secret_key = "acme-secret-key-example"
"#;

    #[test]
    fn parses_the_documented_example() {
        let f = AccountsFile::parse(EXAMPLE).unwrap();
        let r = Registry::new(&f);
        let (sk, acct) = r.lookup("AKACMEEXAMPLE0000001").unwrap();
        assert_eq!(sk, "acme-secret-key-example");
        assert!(acct.owns_project("6e9dfd51d1124e8d8498dce894923a0d"));
        assert_eq!(acct.quotas, Quotas::default());
        assert!(r.operator_domains().is_empty());
    }

    #[test]
    fn replace_swaps_every_key() {
        let r = Registry::new(&AccountsFile::parse(EXAMPLE).unwrap());
        let other = EXAMPLE.replace("AKACMEEXAMPLE0000001", "AKOTHER");
        r.replace(&AccountsFile::parse(&other).unwrap());
        assert!(r.lookup("AKACMEEXAMPLE0000001").is_none());
        assert!(r.lookup("AKOTHER").is_some());
        assert_eq!(r.key_count(), 1);
    }

    #[test]
    fn refuses_bad_ids_duplicates_and_unknown_keys() {
        assert!(
            AccountsFile::parse(&EXAMPLE.replace("0f8a1c2e3d4b5a69788796a5b4c3d2e1", "acme"))
                .is_err()
        );
        assert!(AccountsFile::parse(&format!("{EXAMPLE}\n{EXAMPLE}")).is_err());
        assert!(AccountsFile::parse(&EXAMPLE.replace("operator", "admin")).is_err());
        let quotas = EXAMPLE.replace(
            "[[account.credential]]",
            "[account.quotas]\nendpoint_service = 1000000\n[[account.credential]]",
        );
        assert_eq!(
            AccountsFile::parse(&quotas).unwrap().accounts[0]
                .quotas
                .endpoint_service,
            1_000_000
        );
        let network = EXAMPLE.replace(
            "[[account.credential]]",
            "[account.quotas]\nvpc = 3\nport = 7\n[[account.credential]]",
        );
        let q = AccountsFile::parse(&network).unwrap().accounts[0].quotas;
        assert_eq!((q.vpc, q.subnet, q.port), (3, DEFAULT_SUBNET_QUOTA, 7));
        assert!(AccountsFile::parse(&network.replace("port = 7", "ports = 7")).is_err());
    }

    #[test]
    fn generated_default_round_trips_through_toml() {
        let f = AccountsFile::generate_default();
        f.check().unwrap();
        assert_eq!(AccountsFile::parse(&f.to_toml()).unwrap(), f);
    }

    #[test]
    fn the_first_start_makes_a_tenant_first_and_a_separate_operator() {
        let f = AccountsFile::generate_default();
        assert_eq!(f.accounts.len(), 2);
        assert!(
            !f.accounts[0].operator,
            "the first account is a normal tenant"
        );
        assert_eq!(f.first_tenant().unwrap().domain_name, "default");
        let op = f.first_operator().unwrap();
        assert_ne!(op.domain_id, f.accounts[0].domain_id);
        assert_ne!(
            op.credentials[0].access_key,
            f.accounts[0].credentials[0].access_key
        );
        let r = Registry::new(&f);
        assert_eq!(r.operator_domains(), vec![op.domain_id.clone()]);
    }

    #[test]
    fn accounts_file_keeps_the_default_accounts_unless_it_lists_them() {
        let defaults = AccountsFile::generate_default();
        let tenant_ak = defaults.accounts[0].credentials[0].access_key.clone();
        let file = AccountsFile::parse(EXAMPLE).unwrap();
        let (merged, kept) = file.clone().with_defaults(&defaults).unwrap();
        assert_eq!(kept.len(), 2);
        let r = Registry::new(&merged);
        assert!(r.lookup("AKACMEEXAMPLE0000001").is_some());
        assert!(
            r.lookup(&tenant_ak).is_some(),
            "the default tenant is not locked out"
        );

        // Listing a default account's domain with no key revokes its keys on purpose.
        let mut revoking = file.clone();
        let mut entry = defaults.accounts[0].clone();
        entry.credentials.clear();
        revoking.accounts.push(entry);
        let (merged, kept) = revoking.with_defaults(&defaults).unwrap();
        assert_eq!(kept, vec![defaults.accounts[1].domain_id.clone()]);
        assert!(Registry::new(&merged).lookup(&tenant_ak).is_none());

        // A file reusing a default account's key under another domain is refused, saying why.
        let clash = EXAMPLE.replace("AKACMEEXAMPLE0000001", &tenant_ak);
        let e = AccountsFile::parse(&clash)
            .unwrap()
            .with_defaults(&defaults)
            .unwrap_err()
            .to_string();
        assert!(e.contains("default accounts of the first start"), "{e}");
        assert!(e.contains("appears twice"), "{e}");
    }
}
