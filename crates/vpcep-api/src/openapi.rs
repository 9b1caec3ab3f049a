//! The OpenAPI 3 document of every route (`GET /openapi.json`, no signature).
//!
//! It is generated from the code: each handler's `#[utoipa::path]` (path, method, parameters,
//! request body, success and operation-specific error responses) and the wire types' `ToSchema`
//! derives. What every signed route shares is added here from the route tables themselves
//! (`crate::routes`): the `SDK-HMAC-SHA256` security requirement and the error responses the
//! middleware and extractors can answer (400/401/403/404/413/429/5xx), so an operation cannot
//! lose them by omission. A test checks that every registered route is documented.

use crate::routes;
use axum::response::{IntoResponse, Response};
use std::collections::BTreeSet;
use std::sync::OnceLock;
use utoipa::openapi::path::Operation;
use utoipa::openapi::schema::Schema;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{
    ContentBuilder, HeaderBuilder, OpenApi as Document, Ref, RefOr, Response as Resp,
    ResponseBuilder,
};
use utoipa::{IntoParams, Modify, OpenApi};
use vpcep_domain::error::ErrorBody;
use vpcep_domain::list::{SortDir, SortKey};

/// Name of the security scheme in `components.securitySchemes`.
pub const SECURITY_SCHEME: &str = "sdk_hmac_sha256";

/// `{project_id}` of every project-scoped route.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub(crate) struct ProjectPath {
    /// The project: 32 lowercase hex characters (else 400 EndPoint.0014), owned by the signing
    /// account (else 403 EndPoint.0004).
    #[param(pattern = "^[0-9a-f]{32}$")]
    project_id: String,
}

/// Paging of the VPCEP lists (`vpcep_domain::list::parse_page`).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(crate) struct PageQuery {
    /// Page size, 1 to 1000 (default 10; else 400 EndPoint.0006).
    #[param(minimum = 1, maximum = 1000, nullable = false)]
    limit: Option<u32>,
    /// Rows to skip (default 0; else 400 EndPoint.0010); past the end gives an empty page.
    #[param(minimum = 0, maximum = 9223372036854775807_i64, nullable = false)]
    offset: Option<u64>,
    /// Sort column (default `created_at`; `create_at`/`update_at` are accepted too; else 400
    /// EndPoint.0017).
    #[param(inline, nullable = false)]
    sort_key: Option<SortKey>,
    /// Sort direction (default `desc`; else 400 EndPoint.0018).
    #[param(inline, nullable = false)]
    sort_dir: Option<SortDir>,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "vpcep",
        description = "A self-hostable implementation of the Huawei Cloud VPC Endpoint (VPCEP) API, a subset of the VPC API, and the data-plane feed. Signed operations need an `SDK-HMAC-SHA256` signature in the `Authorization` header, computed as the official SDK does."
    ),
    paths(
        routes::versions::list_versions,
        routes::versions::show_version,
        routes::versions::show_version_slash,
        routes::versions::health,
        crate::metrics_text,
        serve,
        routes::services::create,
        routes::services::list,
        routes::services::show,
        routes::services::update,
        routes::services::rename,
        routes::services::delete,
        routes::services::describe,
        routes::services::public,
        routes::services::add_server_resources,
        routes::services::upgrade,
        routes::endpoints::create,
        routes::endpoints::list,
        routes::endpoints::show,
        routes::endpoints::update_whitelist,
        routes::endpoints::delete,
        routes::endpoints::update_policy,
        routes::endpoints::delete_policy,
        routes::endpoints::update_routetables,
        routes::endpoints::upgrade,
        routes::endpoints::list_connections,
        routes::endpoints::connection_action,
        routes::endpoints::connection_descriptions,
        routes::endpoints::tag_action,
        routes::endpoints::project_tags,
        routes::endpoints::query_resources,
        routes::permissions::list,
        routes::permissions::action,
        routes::permissions::batch_create,
        routes::permissions::batch_delete,
        routes::permissions::describe,
        routes::permissions::list_quotas,
        routes::network::create_vpc,
        routes::network::list_vpcs,
        routes::network::show_vpc,
        routes::network::update_vpc,
        routes::network::delete_vpc,
        routes::network::create_subnet,
        routes::network::list_subnets,
        routes::network::show_subnet,
        routes::network::update_subnet,
        routes::network::delete_subnet,
        routes::network::list_private_ips,
        routes::network::create_port,
        routes::network::list_ports,
        routes::network::show_port,
        routes::network::update_port,
        routes::network::delete_port,
        routes::agent::snapshot,
        routes::agent::report,
        routes::agent::metrics,
    ),
    components(schemas(ErrorBody)),
    modifiers(&Shared),
    tags(
        (name = "Versions", description = "API version discovery"),
        (name = "Endpoint services", description = "Endpoint services"),
        (name = "Connections", description = "Connections of a service's endpoints"),
        (name = "Permissions", description = "Whitelist of who may connect to a service"),
        (name = "Endpoints", description = "VPC endpoints"),
        (name = "Tags", description = "Tags of services and endpoints"),
        (name = "Quotas", description = "Resource quotas"),
        (name = "VPC", description = "The VPC API v1 subset: VPCs, subnets, ports, private IPs"),
        (name = "Agent", description = "The data-plane feed (operator accounts only)"),
        (name = "Operations", description = "Health, metrics and this document (no signature)"),
    )
)]
struct ApiDoc;

/// Adds what the route tables decide rather than each handler: the security scheme and
/// requirement of signed routes, and the error responses every route of a kind can answer.
struct Shared;

/// A shared error response: its component name, status and description.
struct Common {
    name: &'static str,
    status: &'static str,
    description: &'static str,
}

const BAD_REQUEST: Common = Common {
    name: "BadRequest",
    status: "400",
    description: "Invalid parameter, query or body (EndPoint.0002, EndPoint.1004 and the specific codes), or a malformed `{project_id}` (EndPoint.0014)",
};
const UNAUTHORIZED: Common = Common {
    name: "Unauthorized",
    status: "401",
    description: "Missing, malformed, expired or wrong SDK-HMAC-SHA256 signature, or an unknown access key (EndPoint.0003)",
};
const FORBIDDEN: Common = Common {
    name: "Forbidden",
    status: "403",
    description: "The signing account does not own `{project_id}`, or the operation is for operator accounts only (EndPoint.0004)",
};
const NOT_FOUND: Common = Common {
    name: "NotFound",
    status: "404",
    description: "A resource named in the path does not exist or belongs to another project",
};
const TOO_LARGE: Common = Common {
    name: "PayloadTooLarge",
    status: "413",
    description: "The request body is larger than 1 MiB (APIG.0201)",
};
const TOO_MANY: Common = Common {
    name: "TooManyRequests",
    status: "429",
    description:
        "The account exceeded its request rate (EndPoint.0022); retry after `Retry-After` seconds",
};
const INTERNAL: Common = Common {
    name: "InternalError",
    status: "500",
    description: "Internal error (EndPoint.0001); the message carries no internals",
};
const UNAVAILABLE: Common = Common {
    name: "Unavailable",
    status: "503",
    description:
        "The store is temporarily unavailable (EndPoint.0001); retry after `Retry-After` seconds",
};
const TIMEOUT: Common = Common {
    name: "Timeout",
    status: "504",
    description: "The request took longer than 30 s, e.g. a body sent too slowly (EndPoint.0013)",
};
const URI_TOO_LONG: Common = Common {
    name: "UriTooLong",
    status: "414",
    description: "The request URI is longer than 8 KiB (APIG.0201)",
};
const HEADERS_TOO_LARGE: Common = Common {
    name: "HeadersTooLarge",
    status: "431",
    description: "The request headers are larger than 32 KiB (APIG.0201)",
};

/// Answered by the request-scope middleware, before routing, on every route.
const EVERY_ROUTE: &[Common] = &[URI_TOO_LONG, HEADERS_TOO_LARGE];
/// Answered on every signed route: body limit, signature, rate limit, store, timeout; and the
/// extractors' parameter and body errors.
const SIGNED_ROUTES: &[Common] = &[
    BAD_REQUEST,
    UNAUTHORIZED,
    FORBIDDEN,
    TOO_LARGE,
    TOO_MANY,
    INTERNAL,
    UNAVAILABLE,
    TIMEOUT,
];

fn error_response(c: &Common) -> Resp {
    let mut b = ResponseBuilder::new().description(c.description).content(
        "application/json",
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("ErrorBody")))
            .build(),
    );
    if matches!(c.status, "429" | "503") {
        b = b.header(
            "Retry-After",
            HeaderBuilder::new()
                .schema(
                    utoipa::openapi::ObjectBuilder::new()
                        .schema_type(utoipa::openapi::schema::Type::Integer),
                )
                .description(Some("Seconds to wait before retrying"))
                .build(),
        );
    }
    b.build()
}

fn add_response(op: &mut Operation, c: &Common) {
    op.responses
        .responses
        .entry(c.status.to_string())
        .or_insert_with(|| RefOr::Ref(Ref::from_response_name(c.name)));
}

fn operation_mut<'a>(doc: &'a mut Document, method: &str, path: &str) -> Option<&'a mut Operation> {
    let item = doc.paths.paths.get_mut(path)?;
    match method {
        "GET" => item.get.as_mut(),
        "POST" => item.post.as_mut(),
        "PUT" => item.put.as_mut(),
        "DELETE" => item.delete.as_mut(),
        _ => None,
    }
}

/// Drops `"default": null` from the properties of object schemas. The derive writes it for every
/// field of a `#[serde(default)]` request struct, also for the mandatory ones documented as
/// non-null, where it would make the document invalid; elsewhere it says nothing that leaving
/// the field out does not (and OpenAPI models, utoipa's included, read it back as no default).
fn drop_null_defaults(schema: &mut RefOr<Schema>) {
    let RefOr::T(Schema::Object(object)) = schema else {
        return;
    };
    for property in object.properties.values_mut() {
        let default = match property {
            RefOr::T(Schema::Object(o)) => &mut o.default,
            RefOr::T(Schema::Array(a)) => &mut a.default,
            RefOr::T(Schema::OneOf(o)) => &mut o.default,
            _ => continue,
        };
        if default.as_ref().is_some_and(serde_json::Value::is_null) {
            *default = None;
        }
    }
}

impl Modify for Shared {
    fn modify(&self, doc: &mut Document) {
        if let Some(components) = doc.components.as_mut() {
            components.schemas.values_mut().for_each(drop_null_defaults);
        }
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            SECURITY_SCHEME,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "Authorization",
                "`SDK-HMAC-SHA256 Access=<AK>, SignedHeaders=<names>, Signature=<hex>`: HMAC-SHA256 \
                 with the SK over the canonical request (method, canonical URI ending in `/`, sorted \
                 canonical query, signed headers, hex SHA-256 of the body), as the Huawei Cloud SDK \
                 signs. `Host` and `X-Sdk-Date` (`YYYYMMDDTHHMMSSZ`, within 15 minutes) must be signed.",
            ))),
        );
        for c in SIGNED_ROUTES.iter().chain(EVERY_ROUTE).chain([&NOT_FOUND]) {
            components
                .responses
                .insert(c.name.to_string(), RefOr::T(error_response(c)));
        }

        let (_, signed) = routes::signed_routes().into_parts();
        let signed: BTreeSet<(&str, String)> = signed.into_iter().collect();
        for (method, path) in routes::registered() {
            let is_signed = signed.contains(&(method, path.clone()));
            let Some(op) = operation_mut(doc, method, &path) else {
                continue; // undocumented: the coverage test reports it
            };
            for c in EVERY_ROUTE {
                add_response(op, c);
            }
            if is_signed {
                op.security = Some(vec![SecurityRequirement::new(
                    SECURITY_SCHEME,
                    Vec::<String>::new(),
                )]);
                for c in SIGNED_ROUTES {
                    add_response(op, c);
                }
                // The project segment or a resource id in the path may name nothing.
                if path.contains('{') {
                    add_response(op, &NOT_FOUND);
                }
            }
        }
    }
}

/// The document, built once.
pub fn document() -> &'static Document {
    static DOC: OnceLock<Document> = OnceLock::new();
    DOC.get_or_init(ApiDoc::openapi)
}

/// Handles `GET /openapi.json`: this document.
#[utoipa::path(get, path = "/openapi.json", operation_id = "openapi_document", tag = "Operations",
    responses((status = 200, description = "The OpenAPI 3 document of every operation", content_type = "application/json", body = Object)))]
pub(crate) async fn serve() -> Response {
    static JSON: OnceLock<String> = OnceLock::new();
    let body = JSON.get_or_init(|| document().to_json().expect("the document serializes"));
    (
        [(http::header::CONTENT_TYPE, "application/json")],
        body.clone(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    const METHODS: [&str; 8] = [
        "get", "put", "post", "delete", "patch", "head", "options", "trace",
    ];

    fn served() -> Value {
        serde_json::from_str(&document().to_json().unwrap()).unwrap()
    }

    /// Every `(method, path, operation)` of the document.
    fn operations(doc: &Value) -> Vec<(String, String, Value)> {
        let mut out = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for m in METHODS {
                if let Some(op) = item.get(m) {
                    out.push((m.to_uppercase(), path.clone(), op.clone()));
                }
            }
        }
        out
    }

    #[test]
    fn every_routed_operation_is_documented_and_every_documented_one_is_routed() {
        let doc = served();
        let routed: BTreeSet<(String, String)> = routes::registered()
            .into_iter()
            .map(|(m, p)| (m.to_string(), p))
            .collect();
        let documented: BTreeSet<(String, String)> = operations(&doc)
            .into_iter()
            .map(|(m, p, _)| (m, p))
            .collect();
        let undocumented: Vec<_> = routed.difference(&documented).collect();
        assert!(
            undocumented.is_empty(),
            "routes without an OpenAPI operation (add #[utoipa::path] and list the handler in ApiDoc): {undocumented:?}"
        );
        let unrouted: Vec<_> = documented.difference(&routed).collect();
        assert!(
            unrouted.is_empty(),
            "documented operations the router does not serve: {unrouted:?}"
        );
        // 33 VPCEP operations, 16 of the VPC API, the agent feed (2), `/{version}/`, health,
        // metrics and this document.
        assert_eq!(routed.len(), 56);
    }

    #[test]
    fn document_is_openapi_3_and_round_trips_through_the_openapi_model() {
        let text = document().to_json().unwrap();
        let value: Value = serde_json::from_str(&text).unwrap();
        assert!(value["openapi"].as_str().unwrap().starts_with("3."));
        assert!(value["info"]["title"].is_string() && value["info"]["version"].is_string());
        let parsed: Document = serde_json::from_str(&text).unwrap();
        let again = serde_json::to_value(&parsed).unwrap();
        assert_eq!(first_difference(&value, &again, ""), None);
    }

    /// The JSON pointer of the first place where `a` and `b` differ.
    fn first_difference(a: &Value, b: &Value, at: &str) -> Option<String> {
        match (a, b) {
            (Value::Object(x), Value::Object(y)) => {
                let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
                keys.into_iter().find_map(|k| match (x.get(k), y.get(k)) {
                    (Some(u), Some(v)) => first_difference(u, v, &format!("{at}/{k}")),
                    (u, v) => Some(format!("{at}/{k}: {u:?} vs {v:?}")),
                })
            }
            (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
                .iter()
                .zip(y)
                .enumerate()
                .find_map(|(i, (u, v))| first_difference(u, v, &format!("{at}/{i}"))),
            _ if a == b => None,
            _ => Some(format!("{at}: {a} vs {b}")),
        }
    }

    #[test]
    fn every_reference_resolves() {
        fn refs(v: &Value, out: &mut Vec<String>) {
            match v {
                Value::Object(m) => {
                    if let Some(Value::String(r)) = m.get("$ref") {
                        out.push(r.clone());
                    }
                    m.values().for_each(|v| refs(v, out));
                }
                Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
                _ => {}
            }
        }
        let doc = served();
        let mut all = Vec::new();
        refs(&doc, &mut all);
        assert!(!all.is_empty());
        for r in all {
            let pointer = r.strip_prefix('#').expect("local reference");
            assert!(doc.pointer(pointer).is_some(), "{r} does not resolve");
        }
    }

    #[test]
    fn operation_ids_are_unique() {
        let doc = served();
        let mut seen = BTreeSet::new();
        for (m, p, op) in operations(&doc) {
            let id = op["operationId"].as_str().unwrap().to_string();
            assert!(
                seen.insert(id.clone()),
                "{m} {p}: duplicate operationId {id}"
            );
        }
    }

    #[test]
    fn signed_operations_require_the_signature_and_document_the_shared_errors() {
        let doc = served();
        let (_, signed) = routes::signed_routes().into_parts();
        let signed: BTreeSet<(String, String)> = signed
            .into_iter()
            .map(|(m, p)| (m.to_string(), p))
            .collect();
        let scheme = &doc["components"]["securitySchemes"][SECURITY_SCHEME];
        assert_eq!(
            (&scheme["type"], &scheme["in"], &scheme["name"]),
            (
                &serde_json::json!("apiKey"),
                &serde_json::json!("header"),
                &serde_json::json!("Authorization")
            )
        );
        assert!(scheme["description"]
            .as_str()
            .unwrap()
            .contains("SDK-HMAC-SHA256"));
        for (m, p, op) in operations(&doc) {
            let codes: BTreeSet<&str> = op["responses"]
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            if signed.contains(&(m.clone(), p.clone())) {
                assert_eq!(
                    op["security"],
                    serde_json::json!([{ SECURITY_SCHEME: [] }]),
                    "{m} {p}"
                );
                for code in ["400", "401", "403", "413", "429", "500", "503"] {
                    assert!(codes.contains(code), "{m} {p} lacks {code}");
                }
                if p.contains('{') {
                    assert!(codes.contains("404"), "{m} {p} lacks 404");
                }
            } else {
                assert!(op.get("security").is_none(), "{m} {p} is open");
                assert!(!codes.contains("401"), "{m} {p} is open");
            }
            assert!(codes.contains("414") && codes.contains("431"), "{m} {p}");
        }
        let open: Vec<_> = routes::open_routes().into_parts().1;
        assert!(open.contains(&("GET", "/openapi.json".to_string())));
    }

    #[test]
    fn bodiless_statuses_have_no_content_and_the_others_have_one() {
        let doc = served();
        for (m, p, op) in operations(&doc) {
            for (code, resp) in op["responses"].as_object().unwrap() {
                let resp = match resp.get("$ref").and_then(Value::as_str) {
                    Some(r) => doc.pointer(r.strip_prefix('#').unwrap()).unwrap(),
                    None => resp,
                };
                let has_body = resp.get("content").is_some();
                match code.as_str() {
                    "202" | "204" => assert!(!has_body, "{m} {p} {code} has a body"),
                    _ => assert!(has_body, "{m} {p} {code} has no body"),
                }
            }
        }
    }

    fn schema(doc: &Value, name: &str) -> Value {
        doc["components"]["schemas"][name].clone()
    }

    fn required(schema: &Value) -> BTreeSet<String> {
        schema["required"]
            .as_array()
            .map(|r| r.iter().map(|v| v.as_str().unwrap().to_string()).collect())
            .unwrap_or_default()
    }

    #[test]
    fn fields_skipped_when_absent_are_optional_and_null_ones_nullable() {
        let doc = served();
        let service = schema(&doc, "ServiceView");
        let req = required(&service);
        assert!(req.contains("id") && req.contains("server_resources"));
        assert!(!req.contains("ip") && !req.contains("snat_network_id"));
        assert_eq!(service["properties"]["ip"]["type"], "string");

        let endpoint = schema(&doc, "EndpointView");
        let req = required(&endpoint);
        assert!(!req.contains("ip") && !req.contains("subnet_id") && !req.contains("ipv6_address"));
        // Always written, `null` when unset.
        assert!(req.contains("policy_statement") && req.contains("policy_document"));

        let error = schema(&doc, "ErrorBody");
        assert_eq!(
            required(&error),
            BTreeSet::from(["error_code".to_string(), "error_msg".to_string()])
        );

        let spec = schema(&doc, "EndpointSpec");
        assert!(required(&spec).contains("listen_netns"));
        assert_eq!(
            spec["properties"]["listen_netns"]["type"],
            serde_json::json!(["string", "null"])
        );
        assert_eq!(
            schema(&doc, "DhcpOpt")["properties"]["opt_value"]["type"],
            serde_json::json!(["string", "null"])
        );
        // Request fields are optional and may be null, except the mandatory ones.
        let create = schema(&doc, "CreateServiceRequest");
        assert_eq!(
            required(&create),
            ["port_id", "vpc_id", "server_type", "ports"]
                .iter()
                .map(|s| s.to_string())
                .collect()
        );
        assert_eq!(
            create["properties"]["description"]["type"],
            serde_json::json!(["string", "null"])
        );
        assert_eq!(create["properties"]["port_id"]["type"], "string");
        assert!(create["properties"]["port_id"].get("default").is_none());
    }

    #[test]
    fn enums_list_the_wire_values_of_the_code() {
        let doc = served();
        let values = |name: &str| -> Vec<String> {
            schema(&doc, name)["enum"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_string())
                .collect()
        };
        use vpcep_domain::service::{ServerType, ServiceStatus};
        assert_eq!(
            values("ServerType"),
            ServerType::ALL
                .iter()
                .map(|t| t.as_str())
                .collect::<Vec<_>>()
        );
        assert_eq!(
            values("ServiceStatus"),
            ServiceStatus::ALL
                .iter()
                .map(|t| t.as_str())
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn paging_limits_match_the_code() {
        use vpcep_domain::list::{MAX_LIMIT, MAX_PERMISSION_LIMIT};
        let doc = served();
        let limit_max = |path: &str| -> u64 {
            doc["paths"][path]["get"]["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["name"] == "limit")
                .unwrap()["schema"]["maximum"]
                .as_u64()
                .unwrap()
        };
        assert_eq!(
            limit_max("/v1/{project_id}/vpc-endpoint-services"),
            u64::from(MAX_LIMIT)
        );
        assert_eq!(
            limit_max("/v1/{project_id}/vpc-endpoints"),
            u64::from(MAX_LIMIT)
        );
        assert_eq!(
            limit_max(
                "/v1/{project_id}/vpc-endpoint-services/{vpc_endpoint_service_id}/permissions"
            ),
            u64::from(MAX_PERMISSION_LIMIT)
        );
        assert_eq!(
            limit_max("/v1/{project_id}/vpcs"),
            u64::from(vpcep_control::network::MAX_VPC_LIMIT)
        );
    }
}
