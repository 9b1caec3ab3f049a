//! List parameters shared by every list operation: `limit`, `offset`, `sort_key`, `sort_dir`.

use crate::{str_enum, ApiError, ApiResult, ErrorCode};

/// Default page size when `limit` is absent.
pub const DEFAULT_LIMIT: u32 = 10;
/// Largest `limit` for ordinary lists.
pub const MAX_LIMIT: u32 = 1000;
/// Largest `limit` for the permissions list (the reference gives 500 there).
pub const MAX_PERMISSION_LIMIT: u32 = 500;

/// Raw query parameters in the order received (decoded, `+` kept literal as the SDK signs it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryParams(pub Vec<(String, String)>);

impl QueryParams {
    /// Every non-empty value of `key`, in order (`?id=a&id=b`).
    pub fn get_all(&self, key: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, v)| k == key && !v.is_empty())
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The first value of `key`, if present (an empty value counts as absent, as the SDK drops
    /// `None` parameters and never sends empty ones on purpose).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, v)| k == key && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }
}

str_enum! {
    /// `sort_key`: what a list is ordered by.
    pub enum SortKey { CreatedAt = "created_at", UpdatedAt = "updated_at" }
}

str_enum! {
    /// `sort_dir`: ascending or descending (the default).
    pub enum SortDir { Asc = "asc", Desc = "desc" }
}

/// One validated page request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// Rows to return, 1..=max.
    pub limit: u32,
    /// Rows to skip; past the end gives an empty page with the true total.
    pub offset: u64,
    /// Order column.
    pub sort_key: SortKey,
    /// Order direction.
    pub sort_dir: SortDir,
}

impl Default for Page {
    fn default() -> Self {
        Page {
            limit: DEFAULT_LIMIT,
            offset: 0,
            sort_key: SortKey::CreatedAt,
            sort_dir: SortDir::Desc,
        }
    }
}

/// Parses an integer query value strictly (no sign, no spaces).
fn parse_uint(value: &str) -> Option<u64> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}

/// Parses `limit` (1..=max_limit, default 10; else EndPoint.0006).
pub fn parse_limit(value: Option<&str>, max_limit: u32) -> ApiResult<u32> {
    match value {
        None => Ok(DEFAULT_LIMIT),
        Some(v) => parse_uint(v)
            .filter(|n| (1..=u64::from(max_limit)).contains(n))
            .map(|n| n as u32)
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::InvalidLimit,
                    format!("Invalid limit: {v:?}; it must be an integer from 1 to {max_limit}"),
                )
            }),
    }
}

/// Parses `offset` (an integer >= 0, default 0; else EndPoint.0010).
pub fn parse_offset(value: Option<&str>) -> ApiResult<u64> {
    match value {
        None => Ok(0),
        Some(v) => parse_uint(v)
            .filter(|n| *n <= i64::MAX as u64)
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::InvalidOffset,
                    format!("Invalid offset: {v:?}; it must be an integer >= 0"),
                )
            }),
    }
}

/// Parses `sort_key`, also accepting the `create_at` / `update_at` spellings some clients send.
pub fn parse_sort_key(value: Option<&str>) -> ApiResult<SortKey> {
    match value {
        None | Some("created_at") | Some("create_at") => Ok(SortKey::CreatedAt),
        Some("updated_at") | Some("update_at") => Ok(SortKey::UpdatedAt),
        Some(v) => Err(ApiError::new(
            ErrorCode::InvalidSortKey,
            format!("Invalid sort_key: {v:?}; allowed values are created_at, updated_at"),
        )),
    }
}

/// Parses `limit`, `offset`, `sort_key` and `sort_dir` from a list request.
pub fn parse_page(q: &QueryParams, max_limit: u32) -> ApiResult<Page> {
    Ok(Page {
        limit: parse_limit(q.get("limit"), max_limit)?,
        offset: parse_offset(q.get("offset"))?,
        sort_key: parse_sort_key(q.get("sort_key"))?,
        sort_dir: match q.get("sort_dir") {
            None => SortDir::Desc,
            Some(v) => SortDir::parse("sort_dir", v, ErrorCode::InvalidSortDir)?,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> QueryParams {
        QueryParams(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn defaults_are_ten_newest_first() {
        assert_eq!(parse_page(&q(&[]), MAX_LIMIT).unwrap(), Page::default());
    }

    #[test]
    fn rejects_out_of_range_values_with_their_codes() {
        let code = |pairs: &[(&str, &str)]| parse_page(&q(pairs), MAX_LIMIT).unwrap_err().code;
        assert_eq!(code(&[("limit", "0")]), ErrorCode::InvalidLimit);
        assert_eq!(code(&[("limit", "1001")]), ErrorCode::InvalidLimit);
        assert_eq!(code(&[("limit", "ten")]), ErrorCode::InvalidLimit);
        assert_eq!(code(&[("offset", "-1")]), ErrorCode::InvalidOffset);
        assert_eq!(code(&[("sort_key", "name")]), ErrorCode::InvalidSortKey);
        assert_eq!(code(&[("sort_dir", "up")]), ErrorCode::InvalidSortDir);
    }

    #[test]
    fn accepts_both_sort_key_spellings() {
        let p = parse_page(
            &q(&[
                ("sort_key", "update_at"),
                ("sort_dir", "asc"),
                ("limit", "1000"),
            ]),
            MAX_LIMIT,
        )
        .unwrap();
        assert_eq!(p.sort_key, SortKey::UpdatedAt);
        assert_eq!(p.sort_dir, SortDir::Asc);
        assert_eq!(p.limit, 1000);
        assert_eq!(
            parse_page(&q(&[("limit", "501")]), MAX_PERMISSION_LIMIT)
                .unwrap_err()
                .code,
            ErrorCode::InvalidLimit
        );
    }
}
