//! vpcep HTTP API: the Huawei Cloud VPCEP API (and the VPC subset) over axum.
//!
//! A request passes one way: request id and logging → routing → authentication (signature →
//! account) → the `Caller` extractor (project ownership) → a thin handler that parses and makes
//! one call into `vpcep-control` → a JSON response. Errors from any step render as the API's
//! error body ([`error`]).
//!
//! # Layout
//! - [`error`]: `HttpError`, the request scope (id, account).
//! - [`auth`]: signature verification middleware, body limit.
//! - [`extract`]: JSON bodies, query parameters, `Caller`.
//! - [`json`]: strict JSON (one value, UTF-8, objects where objects belong).
//! - `routes`: one module per resource (`services`, `endpoints` with connections and tags,
//!   `permissions` with quotas, `network`, `versions`, `agent`); every route is registered
//!   through a table that records it ([`registered_routes`]).
//! - [`serve`]: the server loop (connection deadlines and caps).
//! - `conns`: the table of open connections and their watchdog (deadlines, idle shedding).
//! - [`tls`]: HTTPS from PEM files, reloaded on SIGHUP.
//! - [`openapi`]: the OpenAPI 3 document of every route (`GET /openapi.json`).
//! - [`console`]: the web console's static files at `/console/`.

pub mod auth;
mod conns;
pub mod console;
pub mod error;
pub mod extract;
pub mod json;
pub mod openapi;
mod routes;
pub mod serve;
pub mod tls;

pub use routes::registered as registered_routes;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use error::{HttpError, RequestScope, REQUEST};
use futures::FutureExt as _;
use metrics_exporter_prometheus::PrometheusHandle;
use std::sync::{Arc, OnceLock};
use std::time::Instant;
use vpcep_control::Ctx;
use vpcep_domain::ErrorCode;

/// Per-account request rate limits (token buckets keyed by domain id).
pub type RateLimiter = governor::DefaultKeyedRateLimiter<String>;

/// What handlers share.
#[derive(Clone)]
pub struct AppState {
    /// The use cases' context.
    pub ctx: Arc<Ctx>,
    /// Renders `/metrics`.
    pub metrics: Option<PrometheusHandle>,
    /// Requests per second each account may make (`None`: unlimited).
    pub rate_limiter: Option<Arc<RateLimiter>>,
    /// Renders the in-process data plane's per-endpoint counters (Prometheus text) for
    /// `GET /agent/v1/metrics` (operators only); `None` without an in-process data plane.
    pub dataplane_metrics: Option<DataplaneMetrics>,
    /// Request body bytes all requests together may hold buffered (`--max-buffered-bytes`).
    pub body_budget: auth::BodyBudget,
}

/// Renders a data plane's per-endpoint counters in the Prometheus text format.
pub type DataplaneMetrics = Arc<dyn Fn() -> String + Send + Sync>;

impl AppState {
    /// State with no rate limit.
    pub fn new(ctx: Arc<Ctx>, metrics: Option<PrometheusHandle>) -> Self {
        AppState {
            ctx,
            metrics,
            rate_limiter: None,
            dataplane_metrics: None,
            body_budget: auth::BodyBudget::default(),
        }
    }

    /// Lets all requests together hold at most `bytes` of buffered request bodies.
    pub fn with_body_budget(mut self, bytes: usize) -> Self {
        self.body_budget = auth::BodyBudget::new(bytes);
        self
    }

    /// Limits each account to `per_second` requests per second (bursts of the same size).
    pub fn with_rate_limit(mut self, per_second: u32) -> Self {
        if let Some(n) = std::num::NonZeroU32::new(per_second) {
            self.rate_limiter = Some(Arc::new(governor::RateLimiter::keyed(
                governor::Quota::per_second(n),
            )));
        }
        self
    }
}

/// Longest request URI (path and query) answered; longer is 414.
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// Most header bytes answered; more is 431.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;
/// Longest time a request (reading its body included) may take; longer is 504 EndPoint.0013.
pub const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Refuses oversized URIs and headers in the API's error shape.
fn check_request_size(req: &Request) -> Option<HttpError> {
    let uri_len = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().len())
        .unwrap_or(0);
    if uri_len > MAX_URI_BYTES {
        return Some(HttpError::new(
            ErrorCode::UriTooLong,
            format!("The request URI is longer than {MAX_URI_BYTES} bytes"),
        ));
    }
    let header_bytes: usize = req
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum();
    if header_bytes > MAX_HEADER_BYTES {
        return Some(HttpError::new(
            ErrorCode::HeadersTooLarge,
            format!("The request headers are larger than {MAX_HEADER_BYTES} bytes"),
        ));
    }
    None
}

/// The operation a request was routed to (its route template), for logs and metrics.
#[derive(Debug, Clone)]
struct Operation(String);

async fn record_operation(req: Request, next: Next) -> Response {
    let op = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string());
    let mut resp = next.run(req).await;
    if let Some(op) = op {
        resp.extensions_mut().insert(Operation(op));
    }
    resp
}

/// Gives each request an id (`X-Request-Id` on every response), then logs and counts it.
async fn request_scope(req: Request, next: Next) -> Response {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let scope = Arc::new(RequestScope {
        id: id.clone(),
        account: OnceLock::new(),
    });
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let started = Instant::now();
    let run = async move {
        if let Some(e) = check_request_size(&req) {
            return e.into_response();
        }
        let handled = std::panic::AssertUnwindSafe(next.run(req)).catch_unwind();
        match tokio::time::timeout(REQUEST_TIMEOUT, handled).await {
            Ok(Ok(resp)) => error::ensure_api_shape(resp).await,
            Ok(Err(_)) => {
                tracing::error!("a request handler panicked");
                HttpError::new(ErrorCode::System, "Internal error").into_response()
            }
            Err(_) => {
                HttpError::new(ErrorCode::RequestTimeout, "The request timed out").into_response()
            }
        }
    };
    let mut resp = REQUEST.scope(scope.clone(), run).await;
    let latency = started.elapsed();
    let status = resp.status().as_u16();
    let op = resp
        .extensions()
        .get::<Operation>()
        .map(|o| o.0.clone())
        .unwrap_or_else(|| "unmatched".into());
    if let Ok(v) = http::HeaderValue::from_str(&id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    tracing::info!(
        request_id = %id,
        account = scope.account.get().map(String::as_str).unwrap_or("-"),
        method = %method,
        path = %path,
        operation = %op,
        status,
        // Microsecond precision: 1.166, not 1.1664379999999999.
        latency_ms = (latency.as_secs_f64() * 1e6).round() / 1e3,
        "request"
    );
    let labels = [
        ("operation", op),
        ("method", method.to_string()),
        ("status", status.to_string()),
    ];
    metrics::counter!("vpcep_api_requests_total", &labels).increment(1);
    metrics::histogram!("vpcep_api_request_duration_seconds", &labels)
        .record(latency.as_secs_f64());
    resp
}

async fn no_such_api() -> HttpError {
    HttpError::new(
        ErrorCode::NoSuchApi,
        "The API does not exist or has not been published",
    )
}

async fn method_not_allowed() -> HttpError {
    HttpError::new(
        ErrorCode::MethodNotAllowed,
        "The API does not support this method",
    )
}

/// The whole HTTP surface.
pub fn router(state: AppState) -> Router {
    let (open, _) = routes::open_routes().into_parts();
    let (signed, _) = routes::signed_routes().into_parts();
    let signed = signed.route_layer(middleware::from_fn_with_state(
        state.clone(),
        auth::authenticate,
    ));
    open.merge(signed)
        .merge(console::routes())
        .route_layer(middleware::from_fn(record_operation))
        .fallback(no_such_api)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn(request_scope))
        .with_state(state)
}

/// Answers `/metrics`.
#[utoipa::path(get, path = "/metrics", operation_id = "metrics", tag = "Operations",
    responses(
        (status = 200, description = "Prometheus text exposition", content_type = "text/plain", body = String),
        (status = 404, description = "Metrics are not enabled (APIG.0101)", body = vpcep_domain::error::ErrorBody),
    ))]
async fn metrics_text(State(state): State<AppState>) -> Response {
    match &state.metrics {
        Some(h) => (
            [(http::header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            h.render(),
        )
            .into_response(),
        None => HttpError::new(ErrorCode::NoSuchApi, "metrics are not enabled").into_response(),
    }
}
