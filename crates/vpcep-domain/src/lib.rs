//! vpcep domain: the plain types of the VPC Endpoint API, the rules that turn wire requests into
//! them, their status machines and the API's error codes.
//!
//! Nothing here does IO or knows HTTP; the store, the control layer and the API build on it.
//! Each resource has a folder: `mod.rs` holds its model and rules, `wire.rs` its request and
//! response bodies exactly as the official SDK sends and reads them.
//!
//! # Layout
//! - [`service`]: endpoint services (`EndpointService`, port mappings, backends, statuses) and
//!   their create, update, rename and upgrade rules.
//! - [`endpoint`]: endpoints and their connections: create rules, whitelists, policies, routes,
//!   the status machine.
//! - [`permission`]: the whitelist of accounts and organizations a service admits.
//! - [`tag`]: resource tags, the tag action and the resource query.
//! - [`network`]: the VPC API subset: [`network::vpc`], [`network::subnet`], [`network::port`].
//! - [`quota`]: quota types and the quota listing.
//! - [`dataplane`]: what the control plane hands agents and they report back, and the
//!   data-plane address policy.
//! - [`version`]: the API version documents.
//! - [`error`]: `ErrorCode` (wire code + HTTP status), `ApiError` and the error body.
//! - [`list`], [`ids`], [`time`]: shared field rules (paging, ids, timestamps).
//! - `strenum`: the `str_enum!` macro for enums with fixed wire strings.

pub mod dataplane;
pub mod endpoint;
pub mod error;
pub mod ids;
pub mod list;
pub mod network;
pub mod permission;
pub mod quota;
pub mod service;
mod strenum;
pub mod tag;
pub mod time;
pub mod version;

pub use error::{ApiError, ApiResult, ErrorCode};

/// For `str_enum!`'s OpenAPI schema (the macro is exported).
#[doc(hidden)]
pub use utoipa as __utoipa;
