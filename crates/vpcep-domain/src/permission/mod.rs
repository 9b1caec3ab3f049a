//! Who may connect to an endpoint service (its "whitelist" of accounts, `permissions`): entries
//! `*`, `iam:domain::<32-hex domain id>` (`permission_type` `domainId`, the default) or
//! `organizations:orgPath::<path>` (`orgPath`). The owner's own account is always allowed and
//! the services of operator accounts (public services) are open to everyone.

pub mod wire;

use crate::ids::{is_hex32, parse_uuid};
use crate::permission::wire::{
    BatchAddPermissionsRequest, BatchRemovePermissionsRequest, PermissionActionRequest,
    UpdatePermissionDescRequest,
};
use crate::service::parse_description;
use crate::{str_enum, ApiError, ApiResult, ErrorCode};
use uuid::Uuid;

/// Most entries one permissions request may carry, and most one service may hold.
pub const MAX_PERMISSIONS: usize = 500;
/// Longest organization path.
pub const MAX_ORG_PATH: usize = 1024;

str_enum! {
    /// `permission_type`.
    pub enum PermissionType { DomainId = "domainId", OrgPath = "orgPath" }
}

str_enum! {
    /// `action` of the permissions action call (`add_or_remove_service_permissions`).
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

/// A validated add-or-remove request (`add_or_remove_service_permissions`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PermissionEdit {
    /// `add` or `remove`.
    pub action: PermissionAction,
    /// The type every entry was checked against.
    pub permission_type: PermissionType,
    /// The entries exactly as given, duplicates included (the answer echoes them).
    pub entries: Vec<String>,
}

/// A validated entry of batch-create (`batch_add_endpoint_service_permissions`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPermission {
    /// The entry exactly as given.
    pub permission: String,
    /// ≤ 128 characters, no `<` `>`.
    pub description: String,
}

/// Checks the size of a permissions list: empty is EndPoint.3036, more than
/// [`MAX_PERMISSIONS`] entries EndPoint.0016.
fn check_batch_size(n: usize) -> ApiResult<()> {
    if n == 0 {
        return Err(ApiError::new(
            ErrorCode::EmptyPermissions,
            "permissions must contain at least one entry",
        ));
    }
    if n > MAX_PERMISSIONS {
        return Err(ApiError::new(
            ErrorCode::BatchTooLarge,
            format!(
                "permissions has {n} entries; at most {MAX_PERMISSIONS} are allowed per request"
            ),
        ));
    }
    Ok(())
}

/// Validates `add_or_remove_service_permissions`: `action` (mandatory, `add` | `remove`, else
/// EndPoint.3035), `permission_type` (default `domainId`), `permissions` (1–500 entries, each valid
/// for the type, else EndPoint.3002 naming it).
pub fn parse_permission_action(req: &PermissionActionRequest) -> ApiResult<PermissionEdit> {
    let action = match req.action.as_deref() {
        None => return Err(ApiError::param("action is mandatory")),
        Some(a) => PermissionAction::parse("action", a, ErrorCode::InvalidPermissionAction)?,
    };
    let permission_type = parse_permission_type(req.permission_type.as_deref())?;
    let entries = req
        .permissions
        .as_ref()
        .ok_or_else(|| ApiError::param("permissions is mandatory"))?;
    check_batch_size(entries.len())?;
    for e in entries {
        validate_permission(permission_type, e)?;
    }
    Ok(PermissionEdit {
        action,
        permission_type,
        entries: entries.clone(),
    })
}

/// Validates `batch_add_endpoint_service_permissions`: `permission_type` (default `domainId`) and
/// 1–500 `{permission, description}` entries. An absent description is empty. An entry given twice
/// is kept once, at its first position, with the last description given.
pub fn parse_batch_create(
    req: &BatchAddPermissionsRequest,
) -> ApiResult<(PermissionType, Vec<NewPermission>)> {
    let kind = parse_permission_type(req.permission_type.as_deref())?;
    let dtos = req
        .permissions
        .as_ref()
        .ok_or_else(|| ApiError::param("permissions is mandatory"))?;
    check_batch_size(dtos.len())?;
    let mut out: Vec<NewPermission> = Vec::with_capacity(dtos.len());
    for (i, d) in dtos.iter().enumerate() {
        let permission = d
            .permission
            .as_ref()
            .ok_or_else(|| ApiError::param(format!("permissions[{i}].permission is mandatory")))?;
        validate_permission(kind, permission)?;
        let description = parse_description(
            &format!("permissions[{i}].description"),
            d.description.as_deref().unwrap_or(""),
        )?;
        match out.iter_mut().find(|p| p.permission == *permission) {
            Some(seen) => seen.description = description,
            None => out.push(NewPermission {
                permission: permission.clone(),
                description,
            }),
        }
    }
    Ok((kind, out))
}

/// Validates `batch_remove_endpoint_service_permissions`: 1–500 `{id}` entries, each mandatory. An
/// id that is not a UUID names no record: 404 EndPoint.0005, like an unknown one. Ids given twice
/// are kept once.
pub fn parse_batch_delete(req: &BatchRemovePermissionsRequest) -> ApiResult<Vec<Uuid>> {
    let dtos = req
        .permissions
        .as_ref()
        .ok_or_else(|| ApiError::param("permissions is mandatory"))?;
    check_batch_size(dtos.len())?;
    let mut out = Vec::with_capacity(dtos.len());
    for (i, d) in dtos.iter().enumerate() {
        let id =
            d.id.as_deref()
                .ok_or_else(|| ApiError::param(format!("permissions[{i}].id is mandatory")))?;
        let id = parse_uuid("permission id", id, ErrorCode::NotFound)
            .map_err(|_| ApiError::not_found("permission", id))?;
        if !out.contains(&id) {
            out.push(id);
        }
    }
    Ok(out)
}

/// Validates `update_endpoint_service_permission_desc`: `permission.description` is mandatory, ≤
/// 128 characters without `<` `>`.
pub fn parse_permission_description(req: &UpdatePermissionDescRequest) -> ApiResult<String> {
    let d = req
        .permission
        .as_ref()
        .ok_or_else(|| ApiError::param("permission is mandatory"))?
        .description
        .as_deref()
        .ok_or_else(|| ApiError::param("permission.description is mandatory"))?;
    parse_description("permission.description", d)
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

    use crate::permission::wire::{AddPermissionDto, PermissionDescDto, RemovePermissionDto};

    fn action(
        action: Option<&str>,
        kind: Option<&str>,
        entries: Option<Vec<&str>>,
    ) -> ApiResult<PermissionEdit> {
        parse_permission_action(&PermissionActionRequest {
            permissions: entries.map(|v| v.into_iter().map(String::from).collect()),
            permission_type: kind.map(String::from),
            action: action.map(String::from),
        })
    }

    #[test]
    fn action_request_rules_and_codes() {
        let d = format!("iam:domain::{D}");
        let ok = action(Some("add"), None, Some(vec![&d, "*", &d])).unwrap();
        assert_eq!(ok.action, PermissionAction::Add);
        assert_eq!(ok.permission_type, PermissionType::DomainId);
        assert_eq!(
            ok.entries,
            vec![d.clone(), "*".into(), d.clone()],
            "echoed as given"
        );
        let org = action(
            Some("remove"),
            Some("orgPath"),
            Some(vec!["organizations:orgPath::o-1/r-2/*"]),
        )
        .unwrap();
        assert_eq!(
            (org.action, org.permission_type),
            (PermissionAction::Remove, PermissionType::OrgPath)
        );
        let code = |r: ApiResult<PermissionEdit>| r.unwrap_err().code;
        assert_eq!(
            code(action(Some("grant"), None, Some(vec!["*"]))),
            ErrorCode::InvalidPermissionAction
        );
        assert_eq!(
            code(action(Some("ADD"), None, Some(vec!["*"]))),
            ErrorCode::InvalidPermissionAction
        );
        assert_eq!(
            code(action(None, None, Some(vec!["*"]))),
            ErrorCode::Parameter
        );
        assert_eq!(code(action(Some("add"), None, None)), ErrorCode::Parameter);
        assert_eq!(
            code(action(Some("add"), None, Some(vec![]))),
            ErrorCode::EmptyPermissions
        );
        assert_eq!(
            code(action(Some("add"), Some("domainid"), Some(vec!["*"]))),
            ErrorCode::Parameter
        );
        let many: Vec<&str> = vec!["*"; 501];
        assert_eq!(
            code(action(Some("add"), None, Some(many))),
            ErrorCode::BatchTooLarge
        );
        assert_eq!(
            action(Some("add"), None, Some(vec!["*"; 500]))
                .unwrap()
                .entries
                .len(),
            500
        );
        let bad = action(Some("add"), None, Some(vec!["*", "iam:domain::xyz"])).unwrap_err();
        assert_eq!(bad.code, ErrorCode::InvalidPermission);
        assert!(bad.msg.contains("iam:domain::xyz"), "{}", bad.msg);
    }

    #[test]
    fn batch_create_validates_descriptions_and_merges_repeats() {
        let dto = |p: &str, d: Option<&str>| AddPermissionDto {
            permission: Some(p.into()),
            description: d.map(String::from),
        };
        let d = format!("iam:domain::{D}");
        let (kind, got) = parse_batch_create(&BatchAddPermissionsRequest {
            permissions: Some(vec![dto(&d, Some("a")), dto("*", None), dto(&d, Some("b"))]),
            permission_type: None,
        })
        .unwrap();
        assert_eq!(kind, PermissionType::DomainId);
        assert_eq!(
            got,
            vec![
                NewPermission {
                    permission: d.clone(),
                    description: "b".into()
                },
                NewPermission {
                    permission: "*".into(),
                    description: String::new()
                },
            ]
        );
        let code = |ps: Option<Vec<AddPermissionDto>>, kind: Option<&str>| {
            parse_batch_create(&BatchAddPermissionsRequest {
                permissions: ps,
                permission_type: kind.map(String::from),
            })
            .unwrap_err()
            .code
        };
        assert_eq!(code(None, None), ErrorCode::Parameter);
        assert_eq!(code(Some(vec![]), None), ErrorCode::EmptyPermissions);
        assert_eq!(
            code(Some(vec![dto("*", Some("<x>"))]), None),
            ErrorCode::Parameter
        );
        assert_eq!(
            code(Some(vec![dto("*", Some(&"x".repeat(129)))]), None),
            ErrorCode::Parameter
        );
        assert_eq!(
            code(Some(vec![dto("*", None)]), Some("orgPath")),
            ErrorCode::InvalidPermission
        );
        assert_eq!(
            code(
                Some(vec![AddPermissionDto {
                    permission: None,
                    description: None
                }]),
                None
            ),
            ErrorCode::Parameter
        );
        assert_eq!(
            code(Some(vec![dto("*", None); 501]), None),
            ErrorCode::BatchTooLarge
        );
    }

    #[test]
    fn batch_delete_needs_ids_and_treats_non_uuids_as_unknown() {
        let req = |ids: Vec<Option<&str>>| BatchRemovePermissionsRequest {
            permissions: Some(
                ids.into_iter()
                    .map(|id| RemovePermissionDto {
                        id: id.map(String::from),
                    })
                    .collect(),
            ),
        };
        let a = "4189d3c2-8882-4871-a3c2-d380272eed88";
        let b = "4189d3c2-8882-4871-a3c2-d380272eed89";
        assert_eq!(
            parse_batch_delete(&req(vec![Some(a), Some(b), Some(a)])).unwrap(),
            vec![Uuid::parse_str(a).unwrap(), Uuid::parse_str(b).unwrap()]
        );
        assert_eq!(
            parse_batch_delete(&req(vec![Some("nope")]))
                .unwrap_err()
                .code,
            ErrorCode::NotFound
        );
        assert_eq!(
            parse_batch_delete(&req(vec![None])).unwrap_err().code,
            ErrorCode::Parameter
        );
        assert_eq!(
            parse_batch_delete(&req(vec![])).unwrap_err().code,
            ErrorCode::EmptyPermissions
        );
        assert_eq!(
            parse_batch_delete(&BatchRemovePermissionsRequest { permissions: None })
                .unwrap_err()
                .code,
            ErrorCode::Parameter
        );
    }

    #[test]
    fn description_update_is_nested_and_checked() {
        let req = |d: Option<&str>| UpdatePermissionDescRequest {
            permission: Some(PermissionDescDto {
                description: d.map(String::from),
            }),
        };
        assert_eq!(
            parse_permission_description(&req(Some("ok"))).unwrap(),
            "ok"
        );
        assert_eq!(parse_permission_description(&req(Some(""))).unwrap(), "");
        assert_eq!(
            parse_permission_description(&req(None)).unwrap_err().code,
            ErrorCode::Parameter
        );
        assert_eq!(
            parse_permission_description(&req(Some("a>b")))
                .unwrap_err()
                .code,
            ErrorCode::Parameter
        );
        assert_eq!(
            parse_permission_description(&UpdatePermissionDescRequest { permission: None })
                .unwrap_err()
                .code,
            ErrorCode::Parameter
        );
    }
}
