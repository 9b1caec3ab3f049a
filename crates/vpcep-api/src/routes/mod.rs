//! Route tables: open routes (versions, health, metrics) and signed, project-scoped ones.

mod agent;
mod endpoints;
pub(crate) mod services;
mod versions;
mod vpc;

use crate::AppState;
use axum::routing::get;
use axum::Router;

/// Routes that need no signature.
pub fn open_routes() -> Router<AppState> {
    Router::new()
        .route("/", get(versions::list_versions))
        .route("/{version}", get(versions::show_version))
        .route("/{version}/", get(versions::show_version))
        .route("/health", get(versions::health))
        .route("/metrics", get(crate::metrics_text))
}

/// Routes that need a valid signature and a project the caller owns.
pub fn signed_routes() -> Router<AppState> {
    services::routes()
        .merge(vpc::routes())
        .merge(endpoints::routes())
        .merge(agent::routes())
        .merge(permissions::routes())
}

// Permissions of endpoint services (#3, #4, #5, #18, #27) and quotas (#14).
mod permissions;
