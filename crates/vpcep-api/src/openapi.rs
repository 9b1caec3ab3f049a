//! The OpenAPI 3 document of every route (`GET /openapi.json`, no signature).
//!
//! It is generated from the code: each handler's `#[utoipa::path]` (path, method, parameters,
//! request body, success and operation-specific error responses) and the wire types' `ToSchema`
//! derives. What every signed route shares is added here from the route tables themselves
//! ([`crate::routes`]): the `SDK-HMAC-SHA256` security requirement and the error responses the
//! middleware and extractors can answer (400/401/403/404/413/429/5xx), so an operation cannot
//! lose them by omission. A test checks that every registered route is documented.

use crate::routes;
use axum::response::{IntoResponse, Response};
use std::collections::BTreeSet;
use std::sync::OnceLock;
use utoipa::openapi::path::Operation;
use utoipa::openapi::schema::{Schema, SchemaType, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{
    ContentBuilder, HeaderBuilder, OpenApi as Document, Ref, RefOr, Response as Resp,
    ResponseBuilder,
};
use utoipa::{IntoParams, Modify, OpenApi};
use vpcep_domain::list::{SortDir, SortKey};
use vpcep_domain::wire::ErrorBody;

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
        routes::vpc::create_vpc,
        routes::vpc::list_vpcs,
        routes::vpc::show_vpc,
        routes::vpc::update_vpc,
        routes::vpc::delete_vpc,
        routes::vpc::create_subnet,
        routes::vpc::list_subnets,
        routes::vpc::show_subnet,
        routes::vpc::update_subnet,
        routes::vpc::delete_subnet,
        routes::vpc::list_private_ips,
        routes::vpc::create_port,
        routes::vpc::list_ports,
        routes::vpc::show_port,
        routes::vpc::update_port,
        routes::vpc::delete_port,
        routes::agent::snapshot,
        routes::agent::report,
    ),
    components(schemas(ErrorBody)),
    modifiers(&Shared),
    tags(
        (name = "Versions", description = "API version discovery (#20, #21)"),
        (name = "Endpoint services", description = "Endpoint services (#2, #7, #10, #12, #16, #17, #19, #25, #26, #29)"),
        (name = "Connections", description = "Connections of a service's endpoints (#1, #15, #22)"),
        (name = "Permissions", description = "Whitelist of who may connect to a service (#3, #4, #5, #18, #27)"),
        (name = "Endpoints", description = "VPC endpoints (#6, #8, #9, #11, #13, #23, #24, #28, #30)"),
        (name = "Tags", description = "Tags of services and endpoints (#31, #32, #33)"),
        (name = "Quotas", description = "Resource quotas (#14)"),
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
    description: "The account exceeded its request rate (EndPoint.0022); retry after `Retry-After` seconds",
};
const INTERNAL: Common = Common {
    name: "InternalError",
    status: "500",
    description: "Internal error (EndPoint.0001); the message carries no internals",
};
const UNAVAILABLE: Common = Common {
    name: "Unavailable",
    status: "503",
    description: "The store is temporarily unavailable (EndPoint.0001); retry after `Retry-After` seconds",
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

fn operation_mut<'a>(
    doc: &'a mut Document,
    method: &str,
    path: &str,
) -> Option<&'a mut Operation> {
    let item = doc.paths.paths.get_mut(path)?;
    match method {
        "GET" => item.get.as_mut(),
        "POST" => item.post.as_mut(),
        "PUT" => item.put.as_mut(),
        "DELETE" => item.delete.as_mut(),
        _ => None,
    }
}

fn type_admits_null(t: &SchemaType) -> bool {
    match t {
        SchemaType::Type(t) => *t == Type::Null,
        SchemaType::Array(ts) => ts.contains(&Type::Null),
        SchemaType::AnyValue => true,
    }
}

/// Whether a schema admits `null` (its type, or a `null` branch of a `oneOf`).
fn admits_null(schema: &RefOr<Schema>) -> bool {
    match schema {
        RefOr::Ref(_) => false,
        RefOr::T(Schema::Object(o)) => type_admits_null(&o.schema_type),
        RefOr::T(Schema::Array(a)) => type_admits_null(&a.schema_type),
        RefOr::T(Schema::OneOf(o)) => o.items.iter().any(admits_null),
        RefOr::T(Schema::AnyOf(o)) => o.items.iter().any(admits_null),
        RefOr::T(_) => true,
    }
}

/// Drops `"default": null` from properties that do not admit `null`: the derive writes it for
/// every field of a `#[serde(default)]` request struct, also for the mandatory ones documented
/// as non-null, where it would make the document invalid.
fn drop_impossible_null_defaults(schema: &mut RefOr<Schema>) {
    let RefOr::T(Schema::Object(object)) = schema else {
        return;
    };
    for property in object.properties.values_mut() {
        let admits = admits_null(property);
        let default = match property {
            RefOr::T(Schema::Object(o)) => &mut o.default,
            RefOr::T(Schema::Array(a)) => &mut a.default,
            RefOr::T(Schema::OneOf(o)) => &mut o.default,
            _ => continue,
        };
        if !admits && default.as_ref().is_some_and(serde_json::Value::is_null) {
            *default = None;
        }
    }
}

impl Modify for Shared {
    fn modify(&self, doc: &mut Document) {
        if let Some(components) = doc.components.as_mut() {
            components
                .schemas
                .values_mut()
                .for_each(drop_impossible_null_defaults);
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
