//! Resource quotas (`list_quota_details`): which resource kinds have a per-project quota, the
//! `type` filter, and the response body `{"quotas": {"resources": [{"type", "used", "quota"}]}}`.

use crate::{str_enum, ApiResult, ErrorCode};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

str_enum! {
    /// `type` of a quota row; also the name of its usage counter. `vpc`, `subnet` and `port` are
    /// the network resources' (the VPC API's quota types share the path `/v1/{project_id}/quotas`).
    pub enum QuotaType {
        Endpoint = "endpoint",
        EndpointService = "endpoint_service",
        Vpc = "vpc",
        Subnet = "subnet",
        Port = "port",
    }
}

/// The rows a quota query without `type` answers: the VPCEP API's two kinds (endpoints first, as
/// in the documented example). The network kinds are answered when named.
pub const DEFAULT_QUOTA_TYPES: &[QuotaType] = &[QuotaType::Endpoint, QuotaType::EndpointService];

/// Parses the `type` filter: absent answers [`DEFAULT_QUOTA_TYPES`], else the one named; another
/// value is EndPoint.0002.
pub fn parse_quota_type(v: Option<&str>) -> ApiResult<Vec<QuotaType>> {
    match v {
        None => Ok(DEFAULT_QUOTA_TYPES.to_vec()),
        Some(s) => Ok(vec![QuotaType::parse("type", s, ErrorCode::Parameter)?]),
    }
}

/// One quota row: how many of a kind the project has and may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaUsage {
    /// The resource kind.
    pub kind: QuotaType,
    /// Resources the project holds (those being deleted included).
    pub used: u64,
    /// The most it may hold.
    pub quota: u64,
}

/// `Quotas` on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct QuotaView {
    #[serde(rename = "type")]
    #[schema(value_type = QuotaType)]
    pub kind: String,
    pub used: u64,
    pub quota: u64,
}

impl From<&QuotaUsage> for QuotaView {
    fn from(q: &QuotaUsage) -> Self {
        QuotaView {
            kind: q.kind.as_str().into(),
            used: q.used,
            quota: q.quota,
        }
    }
}

/// `ResourcesResponseBody`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct QuotaResources {
    pub resources: Vec<QuotaView>,
}

/// Response of `list_quota_details`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct QuotasResponse {
    pub quotas: QuotaResources,
}

impl QuotasResponse {
    /// The body for the given rows, in order.
    pub fn new(rows: &[QuotaUsage]) -> Self {
        QuotasResponse {
            quotas: QuotaResources {
                resources: rows.iter().map(QuotaView::from).collect(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_filter_defaults_to_both_and_rejects_others() {
        assert_eq!(
            parse_quota_type(None).unwrap(),
            vec![QuotaType::Endpoint, QuotaType::EndpointService]
        );
        assert_eq!(
            parse_quota_type(Some("endpoint_service")).unwrap(),
            vec![QuotaType::EndpointService]
        );
        assert_eq!(parse_quota_type(Some("vpc")).unwrap(), vec![QuotaType::Vpc]);
        assert_eq!(
            parse_quota_type(Some("router")).unwrap_err().code,
            ErrorCode::Parameter
        );
    }

    #[test]
    fn body_has_the_documented_shape() {
        let body = QuotasResponse::new(&[QuotaUsage {
            kind: QuotaType::EndpointService,
            used: 3,
            quota: 20,
        }]);
        assert_eq!(
            serde_json::to_value(&body).unwrap(),
            serde_json::json!({"quotas": {"resources": [{"type": "endpoint_service", "used": 3, "quota": 20}]}})
        );
    }
}
