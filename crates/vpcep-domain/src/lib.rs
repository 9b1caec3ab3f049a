//! vpcep domain: the plain types of the VPC Endpoint API, the rules that turn wire requests into
//! them, their status machines and the API's error codes.
//!
//! Nothing here does IO or knows HTTP; the store, the control layer and the API build on it.
//!
//! # Layout
//! - [`error`]: `ErrorCode` (wire code + HTTP status) and `ApiError`.
//! - [`wire`]: request and response bodies exactly as the official SDK sends and reads them.
//! - [`model`]: domain values (`EndpointService`, `PortMapping`, `Tag`, statuses, ...).
//! - [`service`]: endpoint-service validation (create, update, rename) and state rules.
//! - [`tags`], [`list`], [`ids`], [`time`]: shared field rules.

pub mod dataplane;
pub mod endpoint;
pub mod error;
pub mod ids;
pub mod list;
pub mod model;
pub mod network;
pub mod permission;
pub mod service;
mod strenum;
pub mod tags;
pub mod time;
pub mod wire;
pub mod wire_endpoint;
pub mod wire_vpc;

pub use error::{ApiError, ApiResult, ErrorCode};

/// For `str_enum!`'s OpenAPI schema (the macro is exported).
#[doc(hidden)]
pub use utoipa as __utoipa;

// Permissions (whitelists), quotas: wire bodies and rules.
pub mod quota;
pub mod wire_permission;
