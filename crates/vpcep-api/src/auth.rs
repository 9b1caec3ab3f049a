//! Authentication: every project-scoped request must carry a valid `SDK-HMAC-SHA256` signature
//! (see `vpcep-sign`). The middleware checks what the headers alone can tell first (the
//! `Authorization` header is present and well-formed, the AK is known, `X-Sdk-Date` is within
//! the skew window) and answers 401 before reading a byte of the body; only then does it buffer
//! the body (at most [`MAX_BODY_BYTES`], and within the process-wide [`BodyBudget`]), verify
//! the signature over it and hand the account to the handlers.

use crate::error::{HttpError, REQUEST};
use crate::AppState;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use vpcep_control::accounts::Account;
use vpcep_domain::ErrorCode;
use vpcep_sign::{check_headers, verify_body, RequestParts, SignError};

/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Default of [`BodyBudget`]: request body bytes all requests together may hold buffered.
pub const DEFAULT_BODY_BUDGET: usize = 64 * 1024 * 1024;

/// The verified signer of a request, in request extensions.
#[derive(Debug, Clone)]
pub struct Authenticated {
    /// The account the AK belongs to.
    pub account: Arc<Account>,
}

/// The process-wide budget of buffered request body bytes: a request takes its share while its
/// body is read and handled, and gets 503 (with `Retry-After`) when the budget is spent, so
/// many large bodies at once cannot grow the server without bound.
#[derive(Debug, Clone)]
pub struct BodyBudget {
    bytes: Arc<Semaphore>,
    total: usize,
}

impl BodyBudget {
    /// A budget of `total` bytes (at least one request body of [`MAX_BODY_BYTES`]).
    pub fn new(total: usize) -> Self {
        let total = total.clamp(MAX_BODY_BYTES, Semaphore::MAX_PERMITS);
        BodyBudget {
            bytes: Arc::new(Semaphore::new(total)),
            total,
        }
    }

    /// The budget's size in bytes.
    pub fn total(&self) -> usize {
        self.total
    }

    /// Bytes not taken right now.
    pub fn available(&self) -> usize {
        self.bytes.available_permits()
    }

    /// Takes `n` more bytes into `held`, or answers 503.
    fn take(&self, held: &mut Option<OwnedSemaphorePermit>, n: usize) -> Result<(), HttpError> {
        if n == 0 {
            return Ok(());
        }
        let permit = u32::try_from(n)
            .ok()
            .and_then(|n| self.bytes.clone().try_acquire_many_owned(n).ok())
            .ok_or_else(|| {
                metrics::counter!("vpcep_api_body_budget_exhausted_total").increment(1);
                HttpError::new(
                    ErrorCode::Unavailable,
                    "The server is busy reading other request bodies. Please try later.",
                )
            })?;
        match held {
            Some(h) => h.merge(permit),
            None => *held = Some(permit),
        }
        Ok(())
    }
}

impl Default for BodyBudget {
    fn default() -> Self {
        BodyBudget::new(DEFAULT_BODY_BUDGET)
    }
}

/// Answers 413 when a body is larger than [`MAX_BODY_BYTES`].
pub fn too_large() -> HttpError {
    HttpError::new(
        ErrorCode::PayloadTooLarge,
        format!("Request entity too large: the body may have at most {MAX_BODY_BYTES} bytes"),
    )
}

/// A buffered body and its share of the [`BodyBudget`] (released when dropped).
pub struct BufferedBody {
    /// The body bytes.
    pub bytes: bytes::Bytes,
    /// The budget share; `None` for an empty body.
    _budget: Option<OwnedSemaphorePermit>,
}

/// Reads the whole body, refusing more than [`MAX_BODY_BYTES`] (413, by `Content-Length` before
/// reading) and taking each byte from `budget` before it is buffered (503 when spent).
pub async fn buffer_body(
    headers: &http::HeaderMap,
    body: Body,
    budget: &BodyBudget,
) -> Result<BufferedBody, HttpError> {
    let declared = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Err(too_large());
    }
    let mut held = None;
    // A declared length is taken at once: a body that cannot fit is refused before it is read.
    let mut reserved = declared.map_or(0, |n| n as usize);
    budget.take(&mut held, reserved)?;
    let mut body = body;
    let mut buf = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| {
            HttpError::new(
                ErrorCode::InvalidRequest,
                "Invalid request: the body could not be read",
            )
        })?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        let len = buf.len() + data.len();
        if len > MAX_BODY_BYTES {
            return Err(too_large());
        }
        if len > reserved {
            budget.take(&mut held, len - reserved)?;
            reserved = len;
        }
        buf.extend_from_slice(&data);
    }
    Ok(BufferedBody {
        bytes: buf.freeze(),
        _budget: held,
    })
}

fn sign_error(e: &SignError) -> Response {
    tracing::info!(error = %e, "authentication failed");
    HttpError::new(
        ErrorCode::Unauthenticated,
        format!("Incorrect IAM authentication information: {e}"),
    )
    .into_response()
}

/// Answers 429 (with `Retry-After`) when the account is over `--rate-limit`.
fn rate_limited(state: &AppState, account: &Account) -> Option<Response> {
    let limiter = state.rate_limiter.as_ref()?;
    let not_until = limiter.check_key(&account.domain_id).err()?;
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
    Some(resp)
}

/// The authentication middleware for project-scoped routes: header checks (401 before the
/// body), the body within its caps (413, 503), the signature (401), then the rate limit (429).
pub async fn authenticate(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let now = vpcep_domain::time::now_millis() / 1000;
    let (mut parts, body) = req.into_parts();
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    let checked = match check_headers(header, now, |ak| state.ctx.accounts.lookup(ak)) {
        Ok(c) => c,
        Err(e) => return sign_error(&e),
    };
    let body = match buffer_body(&parts.headers, body, &state.body_budget).await {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let raw_query = parts.uri.query().unwrap_or("");
    let request = RequestParts {
        method: parts.method.as_str(),
        raw_path: parts.uri.path(),
        raw_query,
        body: &body.bytes,
    };
    let account = match verify_body(checked, &request, header) {
        Ok((auth, account)) => {
            tracing::trace!(access_key = %auth.access_key, "signature verified");
            account
        }
        Err(e) => return sign_error(&e),
    };
    // After the signature: an AK alone (not secret) must not spend its account's rate.
    if let Some(resp) = rate_limited(&state, &account) {
        return resp;
    }
    let _ = REQUEST.try_with(|r| r.account.set(account.domain_id.clone()));
    parts.extensions.insert(Authenticated { account });
    let BufferedBody {
        bytes,
        _budget: budget,
    } = body;
    let resp = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    // The bytes are released only once the handler is done with them.
    drop(budget);
    resp
}
