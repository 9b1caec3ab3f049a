//! The data-plane feed (see `vpcep_domain::dataplane`): operator accounts only.

use crate::auth::Authenticated;
use crate::error::{HttpError, HttpResult};
use crate::extract::{JsonBody, Params};
use crate::routes::RouteTable;
use crate::AppState;
use axum::extract::{FromRequestParts, State};
use axum::Json;
use http::request::Parts;
use http::StatusCode;
use std::time::Duration;
use utoipa::IntoParams;
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

pub(crate) fn routes() -> RouteTable {
    RouteTable::new()
        .get("/agent/v1/snapshot", snapshot)
        .post("/agent/v1/report", report)
        .get("/agent/v1/metrics", metrics)
}

/// Longest long-poll answered: it must end well before [`crate::REQUEST_TIMEOUT`] cuts the
/// request off with a 504 (the agent asks for 30 s by default, as long as that timeout).
pub const LONG_POLL_LIMIT: Duration = Duration::from_secs(25);
const _: () = assert!(LONG_POLL_LIMIT.as_secs() + 5 <= crate::REQUEST_TIMEOUT.as_secs());

/// Query of the snapshot long-poll.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(crate) struct SnapshotQuery {
    /// The version the agent has; the answer waits for another (absent: answer at once).
    #[param(nullable = false, minimum = 0)]
    since: Option<u64>,
    /// Seconds to wait for a change (default and most: 25).
    #[param(nullable = false, minimum = 0)]
    timeout: Option<u64>,
}

/// Handles `GET /agent/v1/snapshot?since=N&timeout=S`: the desired state, long-polled.
#[utoipa::path(get, path = "/agent/v1/snapshot", operation_id = "agent_snapshot", tag = "Agent",
    params(SnapshotQuery),
    responses((status = 200, description = "The desired state, once its version differs from `since` or the wait is over", body = Snapshot)))]
pub(crate) async fn snapshot(
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
    let wait = wait.min(LONG_POLL_LIMIT);
    Ok(Json(dataplane::snapshot(&app.ctx, since, wait).await?))
}

/// Handles `POST /agent/v1/report`: what an agent realized; 204.
#[utoipa::path(post, path = "/agent/v1/report", operation_id = "agent_report", tag = "Agent",
    request_body = AgentReport,
    responses((status = 204, description = "The report was recorded")))]
pub(crate) async fn report(
    State(app): State<AppState>,
    _op: Operator,
    JsonBody(r): JsonBody<AgentReport>,
) -> HttpResult<StatusCode> {
    dataplane::report(&app.ctx, &r).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Handles `GET /agent/v1/metrics`: the per-endpoint counters of the data plane this server runs
/// in process (`--with-agent`), in the Prometheus text format. They name tenants' endpoints, so
/// unlike `/metrics` only operators may read them.
#[utoipa::path(get, path = "/agent/v1/metrics", operation_id = "agent_metrics", tag = "Agent",
    responses(
        (status = 200, description = "Prometheus text exposition of the in-process data plane", content_type = "text/plain", body = String),
        (status = 404, description = "This server runs no data plane in process (APIG.0101)", body = vpcep_domain::error::ErrorBody),
    ))]
pub(crate) async fn metrics(
    State(app): State<AppState>,
    _op: Operator,
) -> HttpResult<axum::response::Response> {
    use axum::response::IntoResponse;
    match app.dataplane_metrics.clone() {
        // Rendering reads the kernel path's counters with `nft`: off the async workers.
        Some(render) => Ok((
            [(http::header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            tokio::task::spawn_blocking(move || render())
                .await
                .map_err(|_| HttpError::new(ErrorCode::System, "rendering the metrics failed"))?,
        )
            .into_response()),
        None => Err(HttpError::new(
            ErrorCode::NoSuchApi,
            "This server runs no data plane in process (serve --with-agent)",
        )),
    }
}
