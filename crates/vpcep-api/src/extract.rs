//! Extractors: JSON bodies that name the bad field, raw query parameters, the caller.

use crate::auth::Authenticated;
use crate::error::HttpError;
use crate::AppState;
use axum::extract::{FromRequest, FromRequestParts, RawPathParams, Request};
use bytes::Bytes;
use http::request::Parts;
use percent_encoding::percent_decode_str;
use serde::de::DeserializeOwned;
use vpcep_control::Caller;
use vpcep_domain::ids::is_hex32;
use vpcep_domain::list::QueryParams;
use vpcep_domain::ErrorCode;

/// A JSON body: malformed JSON is EndPoint.1004, a wrong type EndPoint.0002 naming the field.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = HttpError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            HttpError::new(
                ErrorCode::InvalidRequest,
                format!("Invalid request body: {e}"),
            )
        })?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// Parses a JSON body with the API's errors (see [`JsonBody`] and [`crate::json`]): anything
/// but exactly one well-formed UTF-8 JSON value is EndPoint.1004; a value of the wrong type (an
/// array where an object belongs included) is EndPoint.0002 naming where.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, HttpError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(HttpError::new(
            ErrorCode::InvalidRequest,
            "Invalid request: the request body is empty",
        ));
    }
    let value = crate::json::parse_value(bytes).map_err(json_error)?;
    // No API field may hold a NUL character (PostgreSQL text cannot store one).
    if let Some(path) = nul_path(&value, String::new()) {
        return Err(HttpError::new(
            ErrorCode::Parameter,
            format!("Invalid value of {path}: strings must not contain the NUL character"),
        ));
    }
    crate::json::from_value(&value).map_err(json_error)
}

fn json_error(e: crate::json::JsonError) -> HttpError {
    use crate::json::JsonError;
    match e {
        JsonError::Malformed(m) => HttpError::new(
            ErrorCode::InvalidRequest,
            format!("Invalid request: malformed JSON ({m})"),
        ),
        JsonError::Invalid { path, msg } if path == "." => {
            HttpError::new(ErrorCode::Parameter, format!("Invalid request body: {msg}"))
        }
        JsonError::Invalid { path, msg } => HttpError::new(
            ErrorCode::Parameter,
            format!("Invalid value of {path}: {msg}"),
        ),
    }
}

/// The path (`ports[0].protocol`) of the first string (or key) holding a NUL character.
fn nul_path(v: &serde_json::Value, at: String) -> Option<String> {
    use serde_json::Value;
    match v {
        Value::String(s) if s.contains('\0') => Some(if at.is_empty() { ".".into() } else { at }),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, x)| nul_path(x, format!("{at}[{i}]"))),
        Value::Object(map) => map.iter().find_map(|(k, x)| {
            let here = if at.is_empty() {
                k.clone()
            } else {
                format!("{at}.{k}")
            };
            if k.contains('\0') {
                Some(here)
            } else {
                nul_path(x, here)
            }
        }),
        _ => None,
    }
}

/// The query string as decoded pairs; `+` stays a plus, as the SDK signs it.
pub struct Params(pub QueryParams);

/// Decodes a raw query string into pairs.
pub fn parse_query(raw: &str) -> QueryParams {
    let dec = |s: &str| percent_decode_str(s).decode_utf8_lossy().into_owned();
    QueryParams(
        raw.split('&')
            .filter(|p| !p.is_empty())
            .map(|p| match p.split_once('=') {
                Some((k, v)) => (dec(k), dec(v)),
                None => (dec(p), String::new()),
            })
            .collect(),
    )
}

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let q = parse_query(parts.uri.query().unwrap_or(""));
        if let Some((k, _)) =
            q.0.iter()
                .find(|(k, v)| k.contains('\0') || v.contains('\0'))
        {
            return Err(HttpError::new(
                ErrorCode::Parameter,
                format!("Invalid query parameter {k:?}: values must not contain the NUL character"),
            ));
        }
        Ok(Params(q))
    }
}

/// The decoded `{project_id}` segment of `/{version}/{project_id}/...`, if it is valid UTF-8.
fn project_segment(path: &str) -> Option<String> {
    let raw = path.split('/').nth(2)?;
    percent_decode_str(raw)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

/// The caller of a `/{version}/{project_id}/...` route: the signer's account, which must own the
/// project (400 EndPoint.0014 for a malformed project id, 403 EndPoint.0004 for another's).
impl FromRequestParts<AppState> for Caller {
    type Rejection = HttpError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let auth = parts
            .extensions
            .get::<Authenticated>()
            .cloned()
            .ok_or_else(|| HttpError::new(ErrorCode::Unauthenticated, "Authentication required"))?;
        // A path parameter that is not UTF-8 is either the project (EndPoint.0014) or a resource
        // id, which then names nothing (404).
        let project_id = project_segment(parts.uri.path()).ok_or_else(|| {
            HttpError::new(ErrorCode::InvalidProjectId, "Invalid project ID: not UTF-8")
        })?;
        if RawPathParams::from_request_parts(parts, state)
            .await
            .is_err()
        {
            return Err(HttpError::new(
                ErrorCode::NotFound,
                "The requested resource does not exist",
            ));
        }
        if !is_hex32(&project_id) {
            return Err(HttpError::new(
                ErrorCode::InvalidProjectId,
                format!("Invalid project ID {project_id:?}: expected 32 lowercase hex characters"),
            ));
        }
        if !auth.account.owns_project(&project_id) {
            return Err(HttpError::new(
                ErrorCode::Forbidden,
                format!("The account does not own project {project_id}"),
            ));
        }
        Ok(Caller {
            account: auth.account,
            project_id,
        })
    }
}
