//! The web console: static HTML, CSS and JavaScript modules built into the binary and served
//! at `/console/` without a signature (design.md "Trust boundaries": anonymous callers may
//! read the console's static files, nothing else). The console signs every API call in the
//! browser (`console/sign.js`, SDK-HMAC-SHA256 as `vpcep-sign`), so it adds no server-side
//! authentication surface, no session and no cookie.
//!
//! Every console response carries a strict Content-Security-Policy (scripts, styles, images
//! and API calls from this origin only; no inline script or style; no framing; Trusted Types
//! required, so no script can assign a string to an HTML sink such as `innerHTML`), `nosniff`, no
//! referrer, and `Cache-Control: no-cache` so an upgraded server never runs with stale assets.

use axum::extract::Path;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use http::header::{HeaderName, HeaderValue};

use crate::error::HttpError;
use vpcep_domain::ErrorCode;

/// The Content-Security-Policy of every console response.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
style-src 'self'; img-src 'self'; connect-src 'self'; font-src 'self'; manifest-src 'self'; \
base-uri 'none'; form-action 'self'; frame-ancestors 'none'; \
require-trusted-types-for 'script'; trusted-types 'none'";

/// One built-in file: its name under `/console/`, media type and bytes.
struct Asset {
    name: &'static str,
    media_type: &'static str,
    bytes: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $media:literal) => {
        Asset {
            name: $name,
            media_type: $media,
            bytes: include_bytes!(concat!("../console/", $name)),
        }
    };
}

/// Every file of `crates/vpcep-api/console/` (a test checks that none is left out).
const ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("app.css", "text/css; charset=utf-8"),
    asset!("app.js", "text/javascript; charset=utf-8"),
    asset!("api.js", "text/javascript; charset=utf-8"),
    asset!("dom.js", "text/javascript; charset=utf-8"),
    asset!("pages.js", "text/javascript; charset=utf-8"),
    asset!("sign.js", "text/javascript; charset=utf-8"),
    asset!("favicon.svg", "image/svg+xml"),
];

const SECURITY_HEADERS: &[(&str, &str)] = &[
    ("content-security-policy", CONTENT_SECURITY_POLICY),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("x-frame-options", "DENY"),
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-resource-policy", "same-origin"),
    (
        "permissions-policy",
        "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
    ),
    ("cache-control", "no-cache"),
];

fn with_security_headers(mut resp: Response) -> Response {
    let headers = resp.headers_mut();
    for (name, value) in SECURITY_HEADERS {
        headers.insert(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    resp
}

fn serve(name: &str) -> Response {
    let resp = match ASSETS.iter().find(|a| a.name == name) {
        Some(a) => ([(http::header::CONTENT_TYPE, a.media_type)], a.bytes).into_response(),
        None => {
            HttpError::new(ErrorCode::NoSuchApi, "The console has no such file").into_response()
        }
    };
    with_security_headers(resp)
}

async fn index() -> Response {
    serve("index.html")
}

async fn file(Path(name): Path<String>) -> Response {
    serve(&name)
}

async fn redirect() -> Response {
    with_security_headers(Redirect::permanent("/console/").into_response())
}

/// The console's routes: `/console` (redirect), `/console/` and `/console/{file}`. They are not
/// API operations, so they are not in the OpenAPI document.
pub(crate) fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/console", get(redirect))
        .route("/console/", get(index))
        .route("/console/{file}", get(file))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_console_file_is_built_in() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/console");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        on_disk.sort();
        let mut built: Vec<String> = ASSETS.iter().map(|a| a.name.to_string()).collect();
        built.sort();
        assert_eq!(on_disk, built);
    }

    #[test]
    fn the_policy_allows_no_inline_code_and_no_other_origin() {
        assert!(!CONTENT_SECURITY_POLICY.contains("unsafe"));
        assert!(!CONTENT_SECURITY_POLICY.contains("http"));
        assert!(CONTENT_SECURITY_POLICY.contains("frame-ancestors 'none'"));
    }

    #[test]
    fn the_scripts_never_parse_strings_as_html_or_code() {
        for a in ASSETS.iter().filter(|a| a.name.ends_with(".js")) {
            let js = std::str::from_utf8(a.bytes).unwrap();
            for sink in [
                ".innerHTML",
                ".outerHTML",
                "insertAdjacentHTML",
                "document.write",
                "eval(",
                "new Function",
                "localStorage",
                "document.cookie",
            ] {
                assert!(!js.contains(sink), "{} uses {sink}", a.name);
            }
        }
    }

    #[test]
    fn the_html_loads_no_inline_script_or_style() {
        let html = std::str::from_utf8(ASSETS[0].bytes).unwrap();
        assert!(!html.contains("<script>"), "inline script");
        assert!(!html.contains("<style"), "inline style");
        assert!(!html.contains(" style="), "inline style attribute");
        for handler in [
            "onclick=",
            "onload=",
            "onerror=",
            "onsubmit=",
            "javascript:",
        ] {
            assert!(!html.contains(handler), "inline handler {handler}");
        }
    }
}
