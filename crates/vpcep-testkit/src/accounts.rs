//! The accounts file the test servers load: [`AccountSpec`] describes one account, and
//! [`accounts_toml`] writes any set of them.

/// Quotas of an account's projects; `None` leaves the server's default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quotas {
    /// Endpoint services per project.
    pub endpoint_service: Option<u64>,
    /// Endpoints per project.
    pub endpoint: Option<u64>,
    /// VPCs per project.
    pub vpc: Option<u64>,
    /// Subnets per project.
    pub subnet: Option<u64>,
    /// Ports per project.
    pub port: Option<u64>,
}

impl Quotas {
    /// The server's defaults.
    pub const DEFAULT: Quotas = Quotas {
        endpoint_service: None,
        endpoint: None,
        vpc: None,
        subnet: None,
        port: None,
    };
}

/// One account of the accounts file.
#[derive(Debug, Clone, Copy)]
pub struct AccountSpec {
    /// Account (domain) id.
    pub domain_id: &'static str,
    /// Display name.
    pub domain_name: &'static str,
    /// Whether its services are public and it may create gateway services (and sign agents).
    pub operator: bool,
    /// Projects it owns.
    pub projects: &'static [&'static str],
    /// Quotas per project.
    pub quotas: Quotas,
    /// Access key.
    pub access_key: &'static str,
    /// Secret key.
    pub secret_key: &'static str,
}

impl AccountSpec {
    /// Its first project.
    pub fn project(&self) -> &'static str {
        self.projects[0]
    }
}

/// A plain tenant with one project and the server's default quotas (the tests that run the
/// binary with a small accounts file of their own).
pub const ACME: AccountSpec = AccountSpec {
    domain_id: "0f8a1c2e3d4b5a69788796a5b4c3d2e1",
    domain_name: "acme",
    operator: false,
    projects: &["6e9dfd51d1124e8d8498dce894923a0d"],
    quotas: Quotas::DEFAULT,
    access_key: "AKACME",
    secret_key: "acme-sk",
};

/// The accounts file (TOML) holding `accounts`.
pub fn accounts_toml(accounts: &[AccountSpec]) -> String {
    let mut out = String::new();
    for a in accounts {
        let projects = a
            .projects
            .iter()
            .map(|p| format!("{p:?}"))
            .collect::<Vec<_>>()
            .join(", ");
        out.push_str(&format!(
            "[[account]]\ndomain_id = {:?}\ndomain_name = {:?}\noperator = {}\nprojects = [{projects}]\n",
            a.domain_id, a.domain_name, a.operator,
        ));
        let q = a.quotas;
        let set: Vec<String> = [
            ("endpoint_service", q.endpoint_service),
            ("endpoint", q.endpoint),
            ("vpc", q.vpc),
            ("subnet", q.subnet),
            ("port", q.port),
        ]
        .iter()
        .filter_map(|(k, v)| v.map(|v| format!("{k} = {v}\n")))
        .collect();
        if !set.is_empty() {
            out.push_str("[account.quotas]\n");
            out.push_str(&set.concat());
        }
        out.push_str(&format!(
            "[[account.credential]]\naccess_key = {:?}\nsecret_key = {:?}\n\n",
            a.access_key, a.secret_key
        ));
    }
    out
}

/// Writes [`accounts_toml`] of `accounts` to `dir/accounts.toml`; answers the path.
pub fn write_accounts(dir: &std::path::Path, accounts: &[AccountSpec]) -> std::path::PathBuf {
    let path = dir.join("accounts.toml");
    std::fs::write(&path, accounts_toml(accounts)).expect("write the accounts file");
    path
}
