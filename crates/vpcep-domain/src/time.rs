//! Timestamps: stored as Unix milliseconds, answered as UTC `YYYY-MM-DDTHH:MM:SSZ`.

use chrono::{DateTime, SecondsFormat, Utc};

/// Unix time in milliseconds; the unit every layer stores and compares.
pub type Millis = i64;

/// The current time in Unix milliseconds.
pub fn now_millis() -> Millis {
    Utc::now().timestamp_millis()
}

/// Formats as the API does: `2018-01-30T07:42:01Z` (RFC 3339 in whole seconds; chrono's RFC
/// 3339 writer: no `strftime` pattern parsed on every call, which list pages paid per row).
pub fn format_millis(ms: Millis) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc_seconds_with_z() {
        assert_eq!(format_millis(1_517_298_121_999), "2018-01-30T07:42:01Z");
        assert_eq!(format_millis(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_millis(253_402_300_799_000), "9999-12-31T23:59:59Z");
    }
}
