//! The data-plane feed (see `vpcep_domain::dataplane`): operator accounts only.

use crate::auth::Authenticated;
use crate::error::{HttpError, HttpResult};
use crate::extract::{JsonBody, Params};
use crate::AppState;
use axum::extract::{FromRequestParts, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use http::request::Parts;
use http::StatusCode;
use std::time::Duration;
use vpcep_control::dataplane;
use vpcep_domain::dataplane::{AgentReport, Snapshot};
use vpcep_domain::ErrorCode;

/// A request signed by an operator account (agents use operator credentials).
pub struct Operator;

impl<S: Send + Sync> FromRequestParts<S> for Operator {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        match parts.extensions.get::<Authenticated>() {
            Some(a) if a.account.operator => Ok(Operator),
            Some(_) => Err(HttpError::new(
                ErrorCode::Forbidden,
                "Only operator accounts may read the data plane's desired state",
            )),
            None => Err(HttpError::new(
                ErrorCode::Unauthenticated,
                "Authentication required",
            )),
        }
    }
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/agent/v1/snapshot", get(snapshot))
        .route("/agent/v1/report", post(report))
}

/// Handles `GET /agent/v1/snapshot?since=N&timeout=S`: the desired state, long-polled.
async fn snapshot(
    State(app): State<AppState>,
    _op: Operator,
    Params(q): Params,
) -> HttpResult<Json<Snapshot>> {
    let since = q
        .get("since")
        .map(|v| {
            v.parse::<u64>()
                .map_err(|_| HttpError::new(ErrorCode::Parameter, format!("Invalid since {v:?}")))
        })
        .transpose()?;
    let wait =
        match q.get("timeout") {
            None => dataplane::DEFAULT_WAIT,
            Some(v) => Duration::from_secs(v.parse::<u64>().map_err(|_| {
                HttpError::new(ErrorCode::Parameter, format!("Invalid timeout {v:?}"))
            })?),
        };
    Ok(Json(dataplane::snapshot(&app.ctx, since, wait).await?))
}

/// Handles `POST /agent/v1/report`: what an agent realized; 204.
async fn report(
    State(app): State<AppState>,
    _op: Operator,
    JsonBody(r): JsonBody<AgentReport>,
) -> HttpResult<StatusCode> {
    dataplane::report(&app.ctx, &r).await?;
    Ok(StatusCode::NO_CONTENT)
}
