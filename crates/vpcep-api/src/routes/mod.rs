//! Route tables: open routes (versions, health, metrics, the OpenAPI document) and signed,
//! project-scoped ones.
//!
//! Every route is registered through [`RouteTable`], which remembers each `(method, path)` it
//! adds; [`registered`] lists them so a test can prove that the OpenAPI document
//! (`crate::openapi`) describes every route the router serves.

pub(crate) mod agent;
pub(crate) mod endpoints;
pub(crate) mod network;
pub(crate) mod permissions;
pub(crate) mod services;
pub(crate) mod versions;

use crate::AppState;
use axum::handler::Handler;
use axum::routing::{on, MethodFilter};
use axum::Router;

/// An axum router plus the list of `(method, path)` pairs registered on it.
pub(crate) struct RouteTable {
    router: Router<AppState>,
    routes: Vec<(&'static str, String)>,
}

impl RouteTable {
    pub(crate) fn new() -> Self {
        RouteTable {
            router: Router::new(),
            routes: Vec::new(),
        }
    }

    fn on<H, T>(mut self, method: &'static str, path: &str, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        let filter = match method {
            "GET" => MethodFilter::GET,
            "POST" => MethodFilter::POST,
            "PUT" => MethodFilter::PUT,
            "DELETE" => MethodFilter::DELETE,
            other => unreachable!("no route uses {other}"),
        };
        self.router = self.router.route(path, on(filter, handler));
        self.routes.push((method, path.to_string()));
        self
    }

    /// Registers `GET path` (axum answers `HEAD` with it too).
    pub(crate) fn get<H: Handler<T, AppState>, T: 'static>(self, path: &str, h: H) -> Self {
        self.on("GET", path, h)
    }

    /// Registers `POST path`.
    pub(crate) fn post<H: Handler<T, AppState>, T: 'static>(self, path: &str, h: H) -> Self {
        self.on("POST", path, h)
    }

    /// Registers `PUT path`.
    pub(crate) fn put<H: Handler<T, AppState>, T: 'static>(self, path: &str, h: H) -> Self {
        self.on("PUT", path, h)
    }

    /// Registers `DELETE path`.
    pub(crate) fn delete<H: Handler<T, AppState>, T: 'static>(self, path: &str, h: H) -> Self {
        self.on("DELETE", path, h)
    }

    /// Both tables' routes.
    pub(crate) fn merge(mut self, other: RouteTable) -> Self {
        self.router = self.router.merge(other.router);
        self.routes.extend(other.routes);
        self
    }

    /// The router and the registered routes.
    pub(crate) fn into_parts(self) -> (Router<AppState>, Vec<(&'static str, String)>) {
        (self.router, self.routes)
    }
}

/// Routes that need no signature.
pub(crate) fn open_routes() -> RouteTable {
    RouteTable::new()
        .get("/", versions::list_versions)
        .get("/{version}", versions::show_version)
        .get("/{version}/", versions::show_version_slash)
        .get("/health", versions::health)
        .get("/metrics", crate::metrics_text)
        .get("/openapi.json", crate::openapi::serve)
}

/// Routes that need a valid signature and (under `/{version}/{project_id}`) a project the
/// caller owns.
pub(crate) fn signed_routes() -> RouteTable {
    services::routes()
        .merge(network::routes())
        .merge(endpoints::routes())
        .merge(agent::routes())
        .merge(permissions::routes())
}

/// Every `(method, path)` the router serves, open and signed, as registered.
pub fn registered() -> Vec<(&'static str, String)> {
    let (_, mut routes) = open_routes().into_parts();
    routes.extend(signed_routes().into_parts().1);
    routes
}

/// A JSON answer serialized into a buffer sized for a page of items up front. axum's `Json`
/// starts from 128 bytes and doubles, so a 100-item page (about 100 KiB) was copied through
/// ten reallocations.
pub(crate) struct PageJson<T>(pub T);

/// Room reserved for a page's JSON.
const PAGE_JSON_BYTES: usize = 128 * 1024;

impl<T: serde::Serialize> axum::response::IntoResponse for PageJson<T> {
    fn into_response(self) -> axum::response::Response {
        let mut buf = Vec::with_capacity(PAGE_JSON_BYTES);
        // sonic-rs writes the same JSON from the same `Serialize` impls as serde_json, with
        // SIMD string escaping: serde_json's byte-at-a-time escaping was about 8 % of the
        // server's samples in a profile of list-services.
        match sonic_rs::to_writer(&mut buf, &self.0) {
            Ok(()) => (
                [(
                    axum::http::header::CONTENT_TYPE,
                    axum::http::HeaderValue::from_static("application/json"),
                )],
                buf,
            )
                .into_response(),
            Err(e) => crate::error::HttpError(vpcep_domain::ApiError::new(
                vpcep_domain::ErrorCode::System,
                format!("the answer could not be written as JSON: {e}"),
            ))
            .into_response(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::response::IntoResponse;
    use http_body_util::BodyExt;

    /// A page is written byte for byte as serde_json writes it (what the SDK was tested
    /// against): escapes, non-ASCII text, numbers, nulls, nesting.
    #[tokio::test]
    async fn a_page_is_the_json_serde_json_writes() {
        let page = serde_json::json!({
            "endpoint_services": [{
                "id": "0193a0f4-0000-7000-8000-000000000001",
                "description": "quote \" backslash \\ slash / tab \t newline \n nul \u{0} bell \u{7} del \u{7f}",
                "name": "ünïcödé 名前 😀 \u{2028}\u{2029}",
                "ports": [{"client_port": 80, "server_port": 65535}],
                "connection_count": 0,
                "big": u64::MAX,
                "negative": i64::MIN,
                "ratio": 0.1,
                "approval_enabled": false,
                "error": null,
                "tags": [],
            }],
            "total_count": 1,
        });
        let body = PageJson(&page)
            .into_response()
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes();
        assert_eq!(
            String::from_utf8(body.to_vec()).unwrap(),
            serde_json::to_string(&page).unwrap()
        );
    }
}
