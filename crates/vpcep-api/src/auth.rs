//! Authentication: every project-scoped request must carry a valid `SDK-HMAC-SHA256` signature
//! (see `vpcep-sign`). The middleware buffers the body (up to the limit; larger is 413 without
//! reading the rest), verifies against the AK's SK, and hands the account to the handlers.

use crate::error::{HttpError, REQUEST};
use crate::AppState;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use std::sync::Arc;
use vpcep_control::accounts::Account;
use vpcep_domain::ErrorCode;
use vpcep_sign::{verify, RequestParts, SignError};

/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The verified signer of a request, in request extensions.
#[derive(Debug, Clone)]
pub struct Authenticated {
    /// The account the AK belongs to.
    pub account: Arc<Account>,
}

/// Answers 413 when a body is larger than [`MAX_BODY_BYTES`].
pub fn too_large() -> HttpError {
    HttpError::new(
        ErrorCode::PayloadTooLarge,
        format!("Request entity too large: the body may have at most {MAX_BODY_BYTES} bytes"),
    )
}

/// Reads the whole body, refusing more than [`MAX_BODY_BYTES`] (by `Content-Length` up front).
pub async fn buffer_body(req: Request) -> Result<(http::request::Parts, bytes::Bytes), HttpError> {
    let declared = req
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Err(too_large());
    }
    let (parts, body) = req.into_parts();
    let bytes = Limited::new(body, MAX_BODY_BYTES)
        .collect()
        .await
        .map_err(|e| {
            if e.downcast_ref::<LengthLimitError>().is_some() {
                too_large()
            } else {
                HttpError::new(
                    ErrorCode::InvalidRequest,
                    "Invalid request: the body could not be read",
                )
            }
        })?
        .to_bytes();
    Ok((parts, bytes))
}

fn sign_error_message(e: &SignError) -> String {
    format!("Incorrect IAM authentication information: {e}")
}

/// The authentication middleware for project-scoped routes.
pub async fn authenticate(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let (mut parts, body) = match buffer_body(req).await {
        Ok(x) => x,
        Err(e) => return e.into_response(),
    };
    let now = vpcep_domain::time::now_millis() / 1000;
    let raw_path = parts.uri.path().to_string();
    let raw_query = parts.uri.query().unwrap_or("").to_string();
    let method = parts.method.as_str().to_string();
    let request = RequestParts {
        method: &method,
        raw_path: &raw_path,
        raw_query: &raw_query,
        body: &body,
    };
    let headers = &parts.headers;
    let verified = verify(
        &request,
        |name| headers.get(name).and_then(|v| v.to_str().ok()),
        now,
        |ak| state.ctx.accounts.lookup(ak),
    );
    match verified {
        Ok((auth, account)) => {
            tracing::trace!(access_key = %auth.access_key, "signature verified");
            if let Some(limiter) = &state.rate_limiter {
                if let Err(not_until) = limiter.check_key(&account.domain_id) {
                    let wait = not_until.wait_time_from(governor::clock::Clock::now(
                        &governor::clock::DefaultClock::default(),
                    ));
                    let mut resp = HttpError::new(
                        ErrorCode::TooManyRequests,
                        "The number of requests exceeded the limit. Please try later.",
                    )
                    .into_response();
                    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                    if let Ok(v) = http::HeaderValue::from_str(&secs.max(1).to_string()) {
                        resp.headers_mut().insert(http::header::RETRY_AFTER, v);
                    }
                    return resp;
                }
            }
            let _ = REQUEST.try_with(|r| r.account.set(account.domain_id.clone()));
            parts.extensions.insert(Authenticated { account });
            next.run(Request::from_parts(parts, Body::from(body))).await
        }
        Err(e) => {
            tracing::info!(error = %e, "authentication failed");
            HttpError::new(ErrorCode::Unauthenticated, sign_error_message(&e)).into_response()
        }
    }
}
