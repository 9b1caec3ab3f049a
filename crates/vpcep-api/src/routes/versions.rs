//! Version discovery (#20, #21) and health.

use crate::error::{HttpError, HttpResult};
use axum::extract::Path;
use axum::Json;
use http::HeaderMap;
use vpcep_domain::wire::{version_view, VersionResponse, VersionsResponse, VERSIONS};
use vpcep_domain::ErrorCode;

fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    format!("http://{host}")
}

/// Handles `GET /` (#21): every API version.
pub async fn list_versions(headers: HeaderMap) -> Json<VersionsResponse> {
    let base = base_url(&headers);
    Json(VersionsResponse {
        versions: VERSIONS
            .iter()
            .filter_map(|(v, _)| version_view(&base, v))
            .collect(),
    })
}

/// Handles `GET /{version}` (#20): one version, 404 for an unknown one.
pub async fn show_version(
    headers: HeaderMap,
    Path(version): Path<String>,
) -> HttpResult<Json<VersionResponse>> {
    version_view(&base_url(&headers), &version)
        .map(|version| Json(VersionResponse { version }))
        .ok_or_else(|| {
            HttpError::new(
                ErrorCode::NotFound,
                format!("API version {version:?} does not exist"),
            )
        })
}

/// Handles `GET /health`: the process answers HTTP.
pub async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}
