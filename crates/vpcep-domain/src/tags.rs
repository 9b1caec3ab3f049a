//! Resource tags (`tags` on create, the tag action): at most 10 per resource, key 1–36 and
//! value 0–43 Unicode characters, none of `=*<>\,|/`, no leading or trailing space, unique keys.

use crate::{model::Tag, wire::TagDto, ApiError, ApiResult, ErrorCode};

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

/// Validates the `tags` of a create request: each tag, unique keys, at most 10.
pub fn parse_tags(dtos: Option<&[TagDto]>) -> ApiResult<Vec<Tag>> {
    let dtos = dtos.unwrap_or_default();
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
