//! Version discovery (`list_specified_version_details`, `list_version_details`) and health.

use crate::error::{HttpError, HttpResult};
use crate::AppState;
use axum::extract::{Path, State};
use axum::Json;
use http::HeaderMap;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use vpcep_domain::error::ErrorBody;
use vpcep_domain::version::{version_view, VersionResponse, VersionsResponse, VERSIONS};
use vpcep_domain::{ApiError, ErrorCode};

fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    format!("http://{host}")
}

/// `{version}` of the version lookup.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct VersionPath {
    /// `v1` or `v2`; another is 404.
    version: String,
}

/// Body of `GET /health`.
#[derive(Serialize, ToSchema)]
pub(crate) struct Health {
    /// `ok`.
    status: &'static str,
}

/// Handles `GET /` (`list_version_details`): every API version.
#[utoipa::path(get, path = "/", operation_id = "list_version_details", tag = "Versions",
    responses((status = 200, description = "Every API version", body = VersionsResponse)))]
pub(crate) async fn list_versions(headers: HeaderMap) -> Json<VersionsResponse> {
    let base = base_url(&headers);
    Json(VersionsResponse {
        versions: VERSIONS
            .iter()
            .filter_map(|(v, _)| version_view(&base, v))
            .collect(),
    })
}

/// Handles `GET /{version}` (`list_specified_version_details`): one version, 404 for an unknown
/// one.
#[utoipa::path(get, path = "/{version}", operation_id = "list_specified_version_details", tag = "Versions",
    params(VersionPath),
    responses(
        (status = 200, description = "The version", body = VersionResponse),
        (status = 404, description = "No such version (EndPoint.0005)", body = ErrorBody),
    ))]
pub(crate) async fn show_version(
    headers: HeaderMap,
    Path(p): Path<VersionPath>,
) -> HttpResult<Json<VersionResponse>> {
    let version = p.version;
    version_view(&base_url(&headers), &version)
        .map(|version| Json(VersionResponse { version }))
        .ok_or_else(|| {
            HttpError::new(
                ErrorCode::NotFound,
                format!("API version {version:?} does not exist"),
            )
        })
}

/// Handles `GET /{version}/` (`list_specified_version_details` with the trailing slash of the
/// version's self link).
#[utoipa::path(get, path = "/{version}/", operation_id = "list_specified_version_details_slash", tag = "Versions",
    params(VersionPath),
    responses(
        (status = 200, description = "The version", body = VersionResponse),
        (status = 404, description = "No such version (EndPoint.0005)", body = ErrorBody),
    ))]
pub(crate) async fn show_version_slash(
    headers: HeaderMap,
    path: Path<VersionPath>,
) -> HttpResult<Json<VersionResponse>> {
    show_version(headers, path).await
}

/// Handles `GET /health`: the process answers HTTP and its store can serve; 503 EndPoint.0503
/// once the SQLite database file or WAL was removed or replaced under the server.
#[utoipa::path(get, path = "/health", operation_id = "health", tag = "Operations",
    responses(
        (status = 200, description = "The process answers HTTP and its store can serve", body = Health),
        (status = 503, description = "The store cannot serve (EndPoint.0503)", body = ErrorBody),
    ))]
pub(crate) async fn health(State(app): State<AppState>) -> HttpResult<Json<Health>> {
    app.ctx.store.health().map_err(ApiError::from)?;
    Ok(Json(Health { status: "ok" }))
}
