//! Identifier rules: resource ids are UUIDs, project and domain ids are 32 lowercase hex.

use crate::{ApiError, ApiResult, ErrorCode};
use uuid::Uuid;

/// True when `s` is a project or domain id: 32 lowercase hexadecimal characters.
pub fn is_hex32(s: &str) -> bool {
    s.len() == 32
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Parses a UUID-shaped resource id in the hyphenated 36-character form the API uses.
pub fn parse_uuid(field: &str, value: &str, code: ErrorCode) -> ApiResult<Uuid> {
    if value.len() == 36 {
        if let Ok(id) = Uuid::parse_str(value) {
            return Ok(id);
        }
    }
    Err(ApiError::new(
        code,
        format!("Invalid {field}: {value:?} is not a UUID"),
    ))
}

/// A fresh resource id: a version 7 UUID (RFC 9562), 48 bits of Unix milliseconds then 74
/// random bits. Ids made later sort later, so the store's id indexes grow at their right edge
/// (one page written per batch of creates instead of one per create); they stay as hard to
/// guess as a version 4 id within a millisecond, and reveal only the creation time the API
/// shows anyway. Within one process ids are strictly increasing (the `uuid` crate's counter).
pub fn new_id() -> Uuid {
    Uuid::now_v7()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_ids_are_v7_uuids_that_follow_time() {
        let ids: Vec<Uuid> = (0..1000).map(|_| new_id()).collect();
        assert!(ids.iter().all(|id| id.get_version_num() == 7));
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids sort by creation");
        let text = ids[0].to_string();
        assert_eq!(
            parse_uuid("id", &text, ErrorCode::Parameter).unwrap(),
            ids[0]
        );
    }

    #[test]
    fn hex32_accepts_only_lowercase_hex_of_32() {
        assert!(is_hex32("0f8a1c2e3d4b5a69788796a5b4c3d2e1"));
        assert!(!is_hex32("0F8A1C2E3D4B5A69788796A5B4C3D2E1"));
        assert!(!is_hex32("0f8a1c2e3d4b5a69788796a5b4c3d2e"));
        assert!(!is_hex32("{project_id}"));
    }

    #[test]
    fn uuid_requires_hyphenated_form() {
        assert!(parse_uuid(
            "port_id",
            "4189d3c2-8882-4871-a3c2-d380272eed88",
            ErrorCode::Parameter
        )
        .is_ok());
        let e = parse_uuid(
            "port_id",
            "4189d3c288824871a3c2d380272eed88",
            ErrorCode::InvalidPortId,
        )
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidPortId);
        assert!(e.msg.contains("port_id"));
    }
}
