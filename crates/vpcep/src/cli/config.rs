//! The client configuration: named profiles (endpoint, keys, project, CA file) in
//! `$XDG_CONFIG_HOME/vpcep/config.toml` (`~/.config/vpcep/config.toml`), so that the CLI works
//! from any directory. The first `vpcep serve` writes the profiles `default` (the tenant) and
//! `operator`; `vpcep profile set` writes others. The file holds secret keys: it is written
//! 0600 in a 0700 directory.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The profile used when none is named.
pub const DEFAULT_PROFILE: &str = "default";

/// `config.toml`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// `[profiles.NAME]` tables.
    #[serde(default)]
    pub profiles: BTreeMap<String, Profile>,
}

/// One `[profiles.NAME]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// The server's URL, e.g. `http://127.0.0.1:8480`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Access key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key: Option<String>,
    /// Secret key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key: Option<String>,
    /// Project the commands act in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_id: Option<String>,
    /// The account's domain id (shown by `whoami`; the API has no call that answers it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain_id: Option<String>,
    /// PEM CA certificate(s) that verify an `https://` endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_cert: Option<PathBuf>,
}

/// Where the configuration file lives: `$VPCEP_CONFIG` when set, else
/// `$XDG_CONFIG_HOME/vpcep/config.toml` (by default `~/.config/vpcep/config.toml`).
pub fn config_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("VPCEP_CONFIG").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    use etcetera::BaseStrategy as _;
    etcetera::choose_base_strategy()
        .ok()
        .map(|s| s.config_dir().join("vpcep").join("config.toml"))
}

impl ConfigFile {
    /// Reads `path`; a missing file is an empty configuration.
    pub fn load(path: &Path) -> Result<Self, String> {
        match std::fs::read_to_string(path) {
            Ok(text) => toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ConfigFile::default()),
            Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        }
    }

    /// Writes the file readable by its owner only (0600, its directory 0700 when created).
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        use std::io::Write as _;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if !dir.exists() {
                let mut b = std::fs::DirBuilder::new();
                b.recursive(true);
                #[cfg(unix)]
                std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
                b.create(dir)?;
            }
        }
        let text = toml::to_string(self).map_err(std::io::Error::other)?;
        // Write a sibling and rename it over, so that a reader never sees half a file.
        let tmp = path.with_extension("toml.tmp");
        let mut o = std::fs::OpenOptions::new();
        o.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
        let mut f = o.open(&tmp)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
        }
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    }
}

/// What the first `vpcep serve` does with the configuration file: writes the profiles
/// `default` and `operator` for its accounts, unless a `default` profile for another server
/// exists; then it writes `<port>` and `<port>-operator` instead, leaving the user's profiles
/// alone. Answers the names written.
pub fn write_first_start_profiles(
    path: &Path,
    endpoint: &str,
    tenant: Profile,
    operator: Option<Profile>,
) -> Result<Vec<String>, String> {
    let mut file = ConfigFile::load(path)?;
    let taken = file
        .profiles
        .get(DEFAULT_PROFILE)
        .is_some_and(|p| p.endpoint.as_deref() != Some(endpoint));
    let base = if taken {
        reqwest::Url::parse(endpoint)
            .ok()
            .and_then(|u| u.port_or_known_default())
            .map(|p| p.to_string())
            .unwrap_or_else(|| "local".into())
    } else {
        DEFAULT_PROFILE.to_string()
    };
    let mut names = vec![base.clone()];
    file.profiles.insert(base.clone(), tenant);
    if let Some(op) = operator {
        let name = if taken {
            format!("{base}-operator")
        } else {
            "operator".to_string()
        };
        file.profiles.insert(name.clone(), op);
        names.push(name);
    }
    file.save(path)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(endpoint: &str, ak: &str) -> Profile {
        Profile {
            endpoint: Some(endpoint.into()),
            access_key: Some(ak.into()),
            secret_key: Some("sk".into()),
            ..Profile::default()
        }
    }

    #[test]
    fn first_start_profiles_never_replace_another_servers_default() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/config.toml");
        let names = write_first_start_profiles(
            &path,
            "http://127.0.0.1:8480",
            profile("http://127.0.0.1:8480", "A"),
            Some(profile("http://127.0.0.1:8480", "OP")),
        )
        .unwrap();
        assert_eq!(names, ["default", "operator"]);
        // The same server made anew (its data removed): its profiles are replaced.
        write_first_start_profiles(
            &path,
            "http://127.0.0.1:8480",
            profile("http://127.0.0.1:8480", "B"),
            None,
        )
        .unwrap();
        let f = ConfigFile::load(&path).unwrap();
        assert_eq!(f.profiles["default"].access_key.as_deref(), Some("B"));
        // Another server: the user's default stays.
        let names = write_first_start_profiles(
            &path,
            "http://127.0.0.1:9000",
            profile("http://127.0.0.1:9000", "C"),
            Some(profile("http://127.0.0.1:9000", "D")),
        )
        .unwrap();
        assert_eq!(names, ["9000", "9000-operator"]);
        let f = ConfigFile::load(&path).unwrap();
        assert_eq!(f.profiles["default"].access_key.as_deref(), Some("B"));
        assert_eq!(f.profiles["9000"].access_key.as_deref(), Some("C"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&path), 0o600);
            assert_eq!(mode(path.parent().unwrap()), 0o700);
        }
        assert!(ConfigFile::load(&dir.path().join("missing.toml"))
            .unwrap()
            .profiles
            .is_empty());
        std::fs::write(&path, "[profiles.x]\nendpont = 1\n").unwrap();
        assert!(ConfigFile::load(&path).is_err());
    }
}
