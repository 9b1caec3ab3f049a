//! Timestamps: stored as Unix milliseconds, answered as UTC `YYYY-MM-DDTHH:MM:SSZ`.

use chrono::{DateTime, Utc};

/// Unix time in milliseconds; the unit every layer stores and compares.
pub type Millis = i64;

/// The current time in Unix milliseconds.
pub fn now_millis() -> Millis {
    Utc::now().timestamp_millis()
}

/// Formats as the API does: `2018-01-30T07:42:01Z`.
pub fn format_millis(ms: Millis) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc_seconds_with_z() {
        assert_eq!(format_millis(1_517_298_121_999), "2018-01-30T07:42:01Z");
    }
}
