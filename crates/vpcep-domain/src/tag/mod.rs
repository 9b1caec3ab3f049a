//! Resource tags (`tags` on create, the tag action): at most 10 per resource, key 1–36 and
//! value 0–43 Unicode characters, none of `=*<>\,|/`, no leading or trailing space, unique keys.
//!
//! [`wire`]: the tag bodies (`tags` entries, the tag action, the project's tags, the
//! resource query).

pub mod wire;

use crate::tag::wire::TagDto;
use crate::{str_enum, ApiError, ApiResult, ErrorCode};
use serde::Serialize;

/// A resource tag.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
pub struct Tag {
    /// 1–36 characters.
    pub key: String,
    /// 0–43 characters.
    pub value: String,
}

str_enum! {
    /// `resource_type` of the tag operations (`batch_add_or_remove_resource_instance`,
    /// `list_query_project_resource_tags`, `list_resource_instances`).
    pub enum ResourceKind { EndpointService = "endpoint_service", Endpoint = "endpoint" }
}

/// Most tags one resource may carry.
pub const MAX_TAGS: usize = 10;

/// Longest key, in Unicode characters.
pub const MAX_KEY_CHARS: usize = 36;

/// Longest value, in Unicode characters.
pub const MAX_VALUE_CHARS: usize = 43;

const FORBIDDEN: &[char] = &['=', '*', '<', '>', '\\', ',', '|', '/'];

fn check_chars(what: &str, s: &str) -> ApiResult<()> {
    if let Some(c) = s.chars().find(|c| FORBIDDEN.contains(c) || c.is_control()) {
        return Err(ApiError::new(
            ErrorCode::TagInvalid,
            format!("Tag {what} {s:?} contains the forbidden character {c:?}"),
        ));
    }
    if s.starts_with(' ') || s.ends_with(' ') {
        return Err(ApiError::new(
            ErrorCode::TagInvalid,
            format!("Tag {what} {s:?} must not start or end with a space"),
        ));
    }
    Ok(())
}

/// Validates a tag key.
pub fn validate_key(key: &str) -> ApiResult<()> {
    if key.is_empty() {
        return Err(ApiError::new(
            ErrorCode::TagEmpty,
            "Tag key must not be empty",
        ));
    }
    if key.chars().count() > MAX_KEY_CHARS {
        return Err(ApiError::new(
            ErrorCode::TagKeySize,
            format!("Tag key {key:?} is longer than {MAX_KEY_CHARS} characters"),
        ));
    }
    check_chars("key", key)
}

/// Validates a tag value (may be empty).
pub fn validate_value(value: &str) -> ApiResult<()> {
    if value.chars().count() > MAX_VALUE_CHARS {
        return Err(ApiError::new(
            ErrorCode::TagValueSize,
            format!("Tag value {value:?} is longer than {MAX_VALUE_CHARS} characters"),
        ));
    }
    check_chars("value", value)
}

/// Validates one wire tag (`key` required, `value` defaulting to "").
pub fn parse_tag(dto: &TagDto) -> ApiResult<Tag> {
    let key = dto.key.clone().unwrap_or_default();
    let value = dto.value.clone().unwrap_or_default();
    validate_key(&key)?;
    validate_value(&value)?;
    Ok(Tag { key, value })
}

/// Validates the `tags` of a create request: at most 10 (counted first, before any tag is
/// looked at, so an oversized list costs nothing), each tag, unique keys.
pub fn parse_tags(dtos: Option<&[TagDto]>) -> ApiResult<Vec<Tag>> {
    let dtos = dtos.unwrap_or_default();
    ensure_count(dtos.len())?;
    let tags = dtos.iter().map(parse_tag).collect::<ApiResult<Vec<_>>>()?;
    ensure_unique_keys(&tags)?;
    ensure_count(tags.len())?;
    Ok(tags)
}

/// Refuses a tag set with a repeated key.
pub fn ensure_unique_keys(tags: &[Tag]) -> ApiResult<()> {
    let mut seen = std::collections::HashSet::new();
    for t in tags {
        if !seen.insert(t.key.as_str()) {
            return Err(ApiError::new(
                ErrorCode::TagKeyDuplicate,
                format!("Tag key {:?} is repeated", t.key),
            ));
        }
    }
    Ok(())
}

/// Refuses more than [`MAX_TAGS`] tags on one resource.
pub fn ensure_count(n: usize) -> ApiResult<()> {
    if n > MAX_TAGS {
        return Err(ApiError::new(
            ErrorCode::TagTooMany,
            format!("A resource can carry at most {MAX_TAGS} tags; this would make {n}"),
        ));
    }
    Ok(())
}

/// `action` of the tag action (`batch_add_or_remove_resource_instance`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagAction {
    /// Add tags, replacing the value of a key the resource already has.
    Create,
    /// Remove tags by key (and value, when given).
    Delete,
}

/// A validated tag action: what to do with which `(key, value)` pairs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagChange {
    /// Create or delete.
    pub action: TagAction,
    /// The pairs; `None` values only for delete ("by key").
    pub tags: Vec<(String, Option<String>)>,
}

/// Validates the body of the tag action (`batch_add_or_remove_resource_instance`): at most
/// [`MAX_TAGS`] tags, each key valid and named once, values valid.
pub fn parse_tag_change(req: &crate::tag::wire::TagActionRequest) -> ApiResult<TagChange> {
    let action = match req.action.as_deref() {
        Some("create") => TagAction::Create,
        Some("delete") => TagAction::Delete,
        other => {
            return Err(ApiError::new(
                ErrorCode::InvalidAction,
                format!("Invalid action {other:?}; allowed values are create, delete"),
            ))
        }
    };
    let list = req.tags.as_deref().unwrap_or_default();
    // One request names at most MAX_TAGS tags (a resource carries no more; the VPC tag API's
    // "number of tags exceeds max num of 10"): counted before any key is parsed or hashed.
    ensure_count(list.len())?;
    let mut tags = Vec::with_capacity(list.len());
    let mut seen = std::collections::HashSet::new();
    for t in list {
        let key = t.key.clone().unwrap_or_default();
        validate_key(&key)?;
        if !seen.insert(key.clone()) {
            return Err(ApiError::new(
                ErrorCode::TagKeyDuplicate,
                format!("Tag key {key:?} is repeated"),
            ));
        }
        let value = match (action, &t.value) {
            (TagAction::Create, v) => Some(v.clone().unwrap_or_default()),
            (TagAction::Delete, v) => v.clone(),
        };
        if let Some(v) = &value {
            validate_value(v)?;
        }
        tags.push((key, value));
    }
    Ok(TagChange { action, tags })
}

impl TagChange {
    /// Applies the change to a resource's tags (kept sorted by key); at most [`MAX_TAGS`].
    pub fn apply(&self, current: &mut Vec<Tag>) -> ApiResult<()> {
        for (key, value) in &self.tags {
            match self.action {
                TagAction::Create => {
                    let value = value.clone().unwrap_or_default();
                    match current.iter_mut().find(|t| &t.key == key) {
                        Some(t) => t.value = value,
                        None => current.push(Tag {
                            key: key.clone(),
                            value,
                        }),
                    }
                }
                TagAction::Delete => current
                    .retain(|t| &t.key != key || value.as_ref().is_some_and(|v| v != &t.value)),
            }
        }
        ensure_count(current.len())?;
        current.sort();
        Ok(())
    }
}

/// A validated resource query by tags (`list_resource_instances`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResourceQuery {
    /// `count` answers only the total.
    pub count_only: bool,
    /// Must carry every key (any listed value; no values = any value).
    pub tags: Vec<(String, Vec<String>)>,
    /// Must carry at least one of the keys.
    pub tags_any: Vec<(String, Vec<String>)>,
    /// Excluded when carrying every key.
    pub not_tags: Vec<(String, Vec<String>)>,
    /// Excluded when carrying any key.
    pub not_tags_any: Vec<(String, Vec<String>)>,
    /// Case-insensitive substring of the resource name.
    pub name_contains: Option<String>,
    /// Only resources without tags (the tag filters are then ignored).
    pub without_any_tag: bool,
    /// Page size (1–1000, default 1000).
    pub limit: u32,
    /// Rows to skip.
    pub offset: u64,
}

const MAX_QUERY_KEYS: usize = 10;

const MAX_QUERY_VALUES: usize = 10;

fn parse_tag_filter(
    field: &str,
    list: Option<&[crate::tag::wire::TagValuesDto]>,
) -> ApiResult<Vec<(String, Vec<String>)>> {
    let list = list.unwrap_or_default();
    if list.len() > MAX_QUERY_KEYS {
        return Err(ApiError::param(format!(
            "{field} may name at most {MAX_QUERY_KEYS} keys"
        )));
    }
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for (i, t) in list.iter().enumerate() {
        let key = t.key.as_deref().unwrap_or("").trim().to_string();
        if key.is_empty() || key.chars().count() > 128 {
            return Err(ApiError::new(
                ErrorCode::TagKeySize,
                format!("{field}[{i}].key must have 1 to 128 characters"),
            ));
        }
        if out.iter().any(|(k, _)| *k == key) {
            return Err(ApiError::new(
                ErrorCode::TagKeyDuplicate,
                format!("{field} repeats the key {key:?}"),
            ));
        }
        let raw = t.values.as_deref().unwrap_or_default();
        if raw.len() > MAX_QUERY_VALUES || raw.iter().any(|v| v.trim().chars().count() > 255) {
            return Err(ApiError::new(
                ErrorCode::TagValueSize,
                format!("{field}[{i}].values may have at most {MAX_QUERY_VALUES} values of at most 255 characters"),
            ));
        }
        out.push((key, raw.iter().map(|v| v.trim().to_string()).collect()));
    }
    Ok(out)
}

fn parse_num(
    field: &str,
    v: Option<&crate::tag::wire::NumOrString>,
    default: i64,
    range: std::ops::RangeInclusive<i64>,
    code: ErrorCode,
) -> ApiResult<i64> {
    use crate::tag::wire::NumOrString;
    let n = match v {
        None => return Ok(default),
        Some(NumOrString::Num(n)) => Some(*n),
        Some(NumOrString::Str(s)) => s.trim().parse::<i64>().ok(),
    };
    n.filter(|n| range.contains(n)).ok_or_else(|| {
        ApiError::new(
            code,
            format!(
                "Invalid {field}: it must be an integer from {} to {}",
                range.start(),
                range.end()
            ),
        )
    })
}

/// Validates the body of the resource query by tags (`list_resource_instances`).
pub fn parse_resource_query(
    req: &crate::tag::wire::ResourceQueryRequest,
) -> ApiResult<ResourceQuery> {
    let count_only = match req.action.as_deref() {
        Some("filter") => false,
        Some("count") => true,
        other => {
            return Err(ApiError::new(
                ErrorCode::InvalidAction,
                format!("Invalid action {other:?}; allowed values are filter, count"),
            ))
        }
    };
    let mut name_contains = None;
    for (i, m) in req
        .matches
        .as_deref()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        match m.key.as_deref() {
            Some("resource_name") => {
                let v = m.value.clone().unwrap_or_default();
                if v.chars().count() > 255 {
                    return Err(ApiError::param(format!(
                        "matches[{i}].value may have at most 255 characters"
                    )));
                }
                name_contains = Some(v);
            }
            other => {
                return Err(ApiError::param(format!(
                    "Invalid matches[{i}].key {other:?}; only resource_name is supported"
                )))
            }
        }
    }
    Ok(ResourceQuery {
        count_only,
        tags: parse_tag_filter("tags", req.tags.as_deref())?,
        tags_any: parse_tag_filter("tags_any", req.tags_any.as_deref())?,
        not_tags: parse_tag_filter("not_tags", req.not_tags.as_deref())?,
        not_tags_any: parse_tag_filter("not_tags_any", req.not_tags_any.as_deref())?,
        name_contains,
        without_any_tag: req.without_any_tag.unwrap_or(false),
        limit: parse_num(
            "limit",
            req.limit.as_ref(),
            1000,
            1..=1000,
            ErrorCode::InvalidLimit,
        )? as u32,
        offset: parse_num(
            "offset",
            req.offset.as_ref(),
            0,
            0..=i64::MAX,
            ErrorCode::InvalidOffset,
        )? as u64,
    })
}

fn has(tags: &[Tag], key: &str, values: &[String]) -> bool {
    tags.iter()
        .any(|t| t.key == key && (values.is_empty() || values.contains(&t.value)))
}

impl ResourceQuery {
    /// Whether a resource with this name and these tags is selected.
    pub fn matches(&self, name: &str, tags: &[Tag]) -> bool {
        if let Some(needle) = &self.name_contains {
            if needle.is_empty() || !name.to_lowercase().contains(&needle.to_lowercase()) {
                return false;
            }
        }
        if self.without_any_tag {
            return tags.is_empty();
        }
        self.tags.iter().all(|(k, v)| has(tags, k, v))
            && (self.tags_any.is_empty() || self.tags_any.iter().any(|(k, v)| has(tags, k, v)))
            && (self.not_tags.is_empty() || !self.not_tags.iter().all(|(k, v)| has(tags, k, v)))
            && !self.not_tags_any.iter().any(|(k, v)| has(tags, k, v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dto(k: &str, v: &str) -> TagDto {
        TagDto {
            key: Some(k.into()),
            value: Some(v.into()),
        }
    }

    #[test]
    fn accepts_unicode_within_limits() {
        let key = "k".repeat(36);
        let value = "é".repeat(43);
        let tags = parse_tags(Some(&[dto(&key, &value), dto("环境", "")])).unwrap();
        assert_eq!(tags.len(), 2);
    }

    #[test]
    fn tag_action_upserts_deletes_and_limits() {
        use crate::tag::wire::TagActionRequest;
        let req = |action: &str, tags: Vec<TagDto>| TagActionRequest {
            action: Some(action.into()),
            tags: Some(tags),
        };
        let mut cur = vec![
            Tag {
                key: "a".into(),
                value: "1".into(),
            },
            Tag {
                key: "b".into(),
                value: "2".into(),
            },
        ];
        parse_tag_change(&req("create", vec![dto("a", "9"), dto("c", "3")]))
            .unwrap()
            .apply(&mut cur)
            .unwrap();
        assert_eq!(
            cur.iter()
                .map(|t| (t.key.as_str(), t.value.as_str()))
                .collect::<Vec<_>>(),
            vec![("a", "9"), ("b", "2"), ("c", "3")]
        );
        parse_tag_change(&req(
            "delete",
            vec![
                dto("b", "wrong"),
                TagDto {
                    key: Some("c".into()),
                    value: None,
                },
            ],
        ))
        .unwrap()
        .apply(&mut cur)
        .unwrap();
        assert_eq!(cur.len(), 2, "b stays (value differs), c goes (by key)");
        let many: Vec<_> = (0..9).map(|i| dto(&format!("k{i}"), "v")).collect();
        assert_eq!(
            parse_tag_change(&req("create", many))
                .unwrap()
                .apply(&mut cur)
                .unwrap_err()
                .code,
            ErrorCode::TagTooMany
        );
        assert_eq!(
            parse_tag_change(&req("update", vec![])).unwrap_err().code,
            ErrorCode::InvalidAction
        );
        assert_eq!(
            parse_tag_change(&req("create", vec![dto("k", "1"), dto("k", "2")]))
                .unwrap_err()
                .code,
            ErrorCode::TagKeyDuplicate
        );
    }

    #[test]
    fn resource_query_semantics() {
        use crate::tag::wire::{MatchDto, NumOrString, ResourceQueryRequest, TagValuesDto};
        let tv = |k: &str, v: &[&str]| TagValuesDto {
            key: Some(k.into()),
            values: Some(v.iter().map(|s| s.to_string()).collect()),
        };
        let tags = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| Tag {
                    key: k.to_string(),
                    value: v.to_string(),
                })
                .collect::<Vec<_>>()
        };
        let base = ResourceQueryRequest {
            action: Some("filter".into()),
            limit: Some(NumOrString::Str("1000".into())),
            ..Default::default()
        };
        let q = parse_resource_query(&ResourceQueryRequest {
            tags: Some(vec![tv("env", &["dev", "prod"]), tv("team", &[])]),
            ..base.clone()
        })
        .unwrap();
        assert!(q.matches("x", &tags(&[("env", "dev"), ("team", "a")])));
        assert!(!q.matches("x", &tags(&[("env", "qa"), ("team", "a")])));
        assert!(!q.matches("x", &tags(&[("env", "dev")])));
        let q = parse_resource_query(&ResourceQueryRequest {
            tags_any: Some(vec![tv("a", &[]), tv("b", &[])]),
            not_tags_any: Some(vec![tv("c", &[])]),
            ..base.clone()
        })
        .unwrap();
        assert!(q.matches("x", &tags(&[("b", "1")])));
        assert!(!q.matches("x", &tags(&[("b", "1"), ("c", "1")])));
        assert!(!q.matches("x", &tags(&[])));
        let q = parse_resource_query(&ResourceQueryRequest {
            not_tags: Some(vec![tv("a", &[]), tv("b", &[])]),
            ..base.clone()
        })
        .unwrap();
        assert!(q.matches("x", &tags(&[("a", "1")])));
        assert!(!q.matches("x", &tags(&[("a", "1"), ("b", "2")])));
        let q = parse_resource_query(&ResourceQueryRequest {
            matches: Some(vec![MatchDto {
                key: Some("resource_name".into()),
                value: Some("WEB".into()),
            }]),
            without_any_tag: Some(true),
            ..base.clone()
        })
        .unwrap();
        assert!(q.matches("local-1.web.x", &[]));
        assert!(!q.matches("local-1.web.x", &tags(&[("a", "1")])));
        assert!(!q.matches("local-1.api.x", &[]));
        assert_eq!(q.limit, 1000);
        let code = |r: ResourceQueryRequest| parse_resource_query(&r).unwrap_err().code;
        assert_eq!(
            code(ResourceQueryRequest {
                action: Some("list".into()),
                ..base.clone()
            }),
            ErrorCode::InvalidAction
        );
        assert_eq!(
            code(ResourceQueryRequest {
                limit: Some(NumOrString::Num(0)),
                ..base.clone()
            }),
            ErrorCode::InvalidLimit
        );
        assert_eq!(
            code(ResourceQueryRequest {
                offset: Some(NumOrString::Str("-1".into())),
                ..base.clone()
            }),
            ErrorCode::InvalidOffset
        );
        assert_eq!(
            code(ResourceQueryRequest {
                tags: Some(vec![tv("a", &[]), tv("a", &[])]),
                ..base
            }),
            ErrorCode::TagKeyDuplicate
        );
    }

    /// A tag list is counted before any tag is parsed or hashed: eleven tags that each break a
    /// rule (empty keys, one key repeated) answer TagTooMany, not the first tag's error. So a
    /// 1 MiB list costs one length check, not a walk that grows with it (the resource's tags
    /// are matched per request tag in `TagChange::apply`, quadratic without the cap).
    #[test]
    fn oversized_tag_lists_are_refused_by_their_count_before_parsing() {
        use crate::tag::wire::TagActionRequest;
        let empty: Vec<TagDto> = (0..=MAX_TAGS).map(|_| dto("", "v")).collect();
        assert_eq!(
            parse_tags(Some(&empty)).unwrap_err().code,
            ErrorCode::TagTooMany
        );
        // About 1 MiB of one repeated key: a set would report the duplicate; the count comes first.
        let huge: Vec<TagDto> = (0..40_000).map(|_| dto("same-key", "v")).collect();
        for action in ["create", "delete"] {
            let req = TagActionRequest {
                action: Some(action.into()),
                tags: Some(huge.clone()),
            };
            assert_eq!(
                parse_tag_change(&req).unwrap_err().code,
                ErrorCode::TagTooMany,
                "{action}"
            );
        }
        let ten: Vec<TagDto> = (0..MAX_TAGS).map(|i| dto(&format!("k{i}"), "v")).collect();
        assert_eq!(parse_tags(Some(&ten)).unwrap().len(), MAX_TAGS);
    }

    #[test]
    fn rejects_each_rule_with_its_code() {
        let code = |t: Vec<TagDto>| parse_tags(Some(&t)).unwrap_err().code;
        assert_eq!(code(vec![dto("", "v")]), ErrorCode::TagEmpty);
        assert_eq!(code(vec![dto(&"k".repeat(37), "v")]), ErrorCode::TagKeySize);
        assert_eq!(
            code(vec![dto("k", &"v".repeat(44))]),
            ErrorCode::TagValueSize
        );
        for bad in [
            "a=b", "a*", "<a", "a>", "a\\b", "a,b", "a|b", "a/b", " a", "a ",
        ] {
            assert_eq!(
                code(vec![dto(bad, "v")]),
                ErrorCode::TagInvalid,
                "key {bad:?}"
            );
            assert_eq!(
                code(vec![dto("k", bad)]),
                ErrorCode::TagInvalid,
                "value {bad:?}"
            );
        }
        assert_eq!(
            code(vec![dto("k", "1"), dto("k", "2")]),
            ErrorCode::TagKeyDuplicate
        );
        let eleven: Vec<_> = (0..11).map(|i| dto(&format!("k{i}"), "v")).collect();
        assert_eq!(code(eleven), ErrorCode::TagTooMany);
    }
}
