//! Who may connect to an endpoint service (its "whitelist" of accounts, `permissions`): entries
//! `*`, `iam:domain::<32-hex domain id>` (`permission_type` `domainId`, the default) or
//! `organizations:orgPath::<path>` (`orgPath`). The owner's own account is always allowed and
//! the services of operator accounts (public services) are open to everyone.

use crate::ids::is_hex32;
use crate::{str_enum, ApiError, ApiResult, ErrorCode};

/// Most entries one permissions request may carry, and most one service may hold.
pub const MAX_PERMISSIONS: usize = 500;
/// Longest organization path.
pub const MAX_ORG_PATH: usize = 1024;

str_enum! {
    /// `permission_type`.
    pub enum PermissionType { DomainId = "domainId", OrgPath = "orgPath" }
}

str_enum! {
    /// `action` of the permissions action call (#3).
    pub enum PermissionAction { Add = "add", Remove = "remove" }
}

/// A stored permission record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permission {
    pub id: uuid::Uuid,
    pub service_id: uuid::Uuid,
    /// The entry exactly as given.
    pub permission: String,
    pub permission_type: PermissionType,
    pub description: String,
    pub created_at: crate::time::Millis,
    pub updated_at: crate::time::Millis,
}

/// Parses `permission_type` (default `domainId`).
pub fn parse_permission_type(v: Option<&str>) -> ApiResult<PermissionType> {
    match v {
        None => Ok(PermissionType::DomainId),
        Some(s) => PermissionType::parse("permission_type", s, ErrorCode::Parameter),
    }
}

/// Validates one entry against its type; the stored string is the entry exactly as given.
pub fn validate_permission(kind: PermissionType, p: &str) -> ApiResult<()> {
    let ok = match kind {
        PermissionType::DomainId => {
            p == "*"
                || p.strip_prefix("iam:domain::")
                    .is_some_and(|d| d == "*" || is_hex32(d))
        }
        PermissionType::OrgPath => p
            .strip_prefix("organizations:orgPath::")
            .is_some_and(|path| {
                !path.is_empty()
                    && path.len() <= MAX_ORG_PATH
                    && path
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '-' | '*' | '?'))
            }),
    };
    if ok {
        Ok(())
    } else {
        let want = match kind {
            PermissionType::DomainId => "'*' or 'iam:domain::<32 lowercase hex domain id>'",
            PermissionType::OrgPath => {
                "'organizations:orgPath::<path>' (letters, digits, '/', '-', '*', '?')"
            }
        };
        Err(ApiError::new(
            ErrorCode::InvalidPermission,
            format!("Invalid permission {p:?} for permission_type {kind}: expected {want}"),
        ))
    }
}

/// Whether an account may connect to a service: its owner, anyone for an operator's (public)
/// service, or an account a `domainId` entry names (`*` names every account). `orgPath` entries
/// never match: accounts here belong to no organization.
pub fn permits(
    entries: &[String],
    owner_domain: &str,
    owner_is_operator: bool,
    caller_domain: &str,
) -> bool {
    caller_domain == owner_domain
        || owner_is_operator
        || entries.iter().any(|e| {
            e == "*"
                || e == "iam:domain::*"
                || e.strip_prefix("iam:domain::") == Some(caller_domain)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "0f8a1c2e3d4b5a69788796a5b4c3d2e1";

    #[test]
    fn validates_entries_by_type() {
        assert!(validate_permission(PermissionType::DomainId, "*").is_ok());
        assert!(validate_permission(PermissionType::DomainId, &format!("iam:domain::{D}")).is_ok());
        assert!(validate_permission(PermissionType::DomainId, "iam:domain::1234").is_err());
        assert!(
            validate_permission(PermissionType::DomainId, "organizations:orgPath::o-1/r-2")
                .is_err()
        );
        assert!(validate_permission(
            PermissionType::OrgPath,
            "organizations:orgPath::o-1/r-2/ou-3/*"
        )
        .is_ok());
        assert!(validate_permission(PermissionType::OrgPath, "organizations:orgPath::").is_err());
        assert_eq!(
            validate_permission(PermissionType::OrgPath, "*")
                .unwrap_err()
                .code,
            ErrorCode::InvalidPermission
        );
    }

    #[test]
    fn owner_operator_and_listed_domains_may_connect() {
        let other = "6e9dfd51d1124e8d8498dce894923a0d";
        assert!(permits(&[], D, false, D));
        assert!(!permits(&[], D, false, other));
        assert!(permits(&[], D, true, other));
        assert!(permits(&[format!("iam:domain::{other}")], D, false, other));
        assert!(permits(&["*".into()], D, false, other));
        assert!(!permits(
            &["organizations:orgPath::o-1/*".into()],
            D,
            false,
            other
        ));
    }
}
