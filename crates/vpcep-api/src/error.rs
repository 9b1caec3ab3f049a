//! Rendering errors: every failure leaves as `{"error_code", "error_msg", "request_id"}` with the
//! code's HTTP status; the request id is the one the request-id middleware put in scope.

use axum::response::{IntoResponse, Response};
use axum::Json;
use http::StatusCode;
use std::sync::OnceLock;
use vpcep_domain::wire::ErrorBody;
use vpcep_domain::{ApiError, ErrorCode};

/// Per-request facts the logging middleware reports: the id, and the account once known.
#[derive(Debug)]
pub struct RequestScope {
    /// `X-Request-Id` of this request.
    pub id: String,
    /// Domain id of the authenticated caller.
    pub account: OnceLock<String>,
}

tokio::task_local! {
    /// The current request's scope; set by the request-id middleware around each request.
    pub static REQUEST: std::sync::Arc<RequestScope>;
}

/// The current request id, if inside a request.
pub fn current_request_id() -> Option<String> {
    REQUEST.try_with(|r| r.id.clone()).ok()
}

/// An [`ApiError`] on its way out as an HTTP response.
#[derive(Debug)]
pub struct HttpError(pub ApiError);

impl From<ApiError> for HttpError {
    fn from(e: ApiError) -> Self {
        HttpError(e)
    }
}

impl HttpError {
    /// Shorthand for a code and message.
    pub fn new(code: ErrorCode, msg: impl Into<String>) -> Self {
        HttpError(ApiError::new(code, msg))
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.0.code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = ErrorBody {
            error_code: self.0.code.code().to_string(),
            error_msg: self.0.msg,
            request_id: current_request_id(),
        };
        let mut resp = (status, Json(body)).into_response();
        if matches!(
            self.0.code,
            ErrorCode::TooManyRequests | ErrorCode::Unavailable
        ) {
            resp.headers_mut().insert(
                http::header::RETRY_AFTER,
                http::HeaderValue::from_static("1"),
            );
        }
        resp
    }
}

/// Handler results.
pub type HttpResult<T> = Result<T, HttpError>;
