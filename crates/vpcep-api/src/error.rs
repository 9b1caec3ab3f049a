//! Rendering errors: every failure leaves as `{"error_code", "error_msg", "request_id"}` with the
//! code's HTTP status; the request id is the one the request-id middleware put in scope.

use axum::response::{IntoResponse, Response};
use axum::Json;
use http::StatusCode;
use std::sync::OnceLock;
use vpcep_domain::error::ErrorBody;
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

/// The code an error response of HTTP `status` that the API did not produce itself (an
/// extractor's rejection, say) is given.
fn code_for_status(status: StatusCode) -> ErrorCode {
    match status.as_u16() {
        401 => ErrorCode::Unauthenticated,
        403 => ErrorCode::Forbidden,
        404 => ErrorCode::NoSuchApi,
        405 => ErrorCode::MethodNotAllowed,
        408 | 504 => ErrorCode::RequestTimeout,
        413 => ErrorCode::PayloadTooLarge,
        414 => ErrorCode::UriTooLong,
        429 => ErrorCode::TooManyRequests,
        431 => ErrorCode::HeadersTooLarge,
        503 => ErrorCode::Unavailable,
        400..=499 => ErrorCode::InvalidRequest,
        _ => ErrorCode::System,
    }
}

/// Gives an error response that is not already JSON the API's error shape, keeping its status
/// (and its plain-text message, when it has one, for a client error).
pub async fn ensure_api_shape(resp: Response) -> Response {
    let status = resp.status();
    let is_json = resp
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let text = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&text).trim().to_string();
    let code = code_for_status(status);
    let msg = if text.is_empty() || status.is_server_error() {
        status.canonical_reason().unwrap_or("Error").to_string()
    } else {
        text
    };
    let body = ErrorBody {
        error_code: code.code().to_string(),
        error_msg: msg,
        request_id: current_request_id(),
    };
    let mut out = (status, Json(body)).into_response();
    for name in [http::header::RETRY_AFTER, http::header::ALLOW] {
        if let Some(v) = parts.headers.get(&name) {
            out.headers_mut().insert(name, v.clone());
        }
    }
    out
}

/// Handler results.
pub type HttpResult<T> = Result<T, HttpError>;

#[cfg(test)]
mod tests {
    use super::*;

    async fn body_json(resp: Response) -> serde_json::Value {
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 16)
            .await
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn a_plain_text_rejection_gets_the_api_error_shape_and_keeps_its_status() {
        let plain = (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Expected request with JSON",
        )
            .into_response();
        let resp = ensure_api_shape(plain).await;
        assert_eq!(resp.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
        let v = body_json(resp).await;
        assert_eq!(v["error_code"], "EndPoint.1004");
        assert_eq!(v["error_msg"], "Expected request with JSON");

        let server = (StatusCode::INTERNAL_SERVER_ERROR, "panic at src/x.rs:1").into_response();
        let v = body_json(ensure_api_shape(server).await).await;
        assert_eq!(v["error_code"], "EndPoint.0001");
        assert_eq!(v["error_msg"], "Internal Server Error", "no internals leak");
    }

    #[tokio::test]
    async fn api_errors_and_successes_pass_unchanged() {
        let api = HttpError::new(ErrorCode::NotFound, "gone").into_response();
        let v = body_json(ensure_api_shape(api).await).await;
        assert_eq!(v["error_msg"], "gone");
        let ok = ensure_api_shape((StatusCode::OK, "fine").into_response()).await;
        assert_eq!(ok.status(), StatusCode::OK);
    }
}
