//! The API version documents (list_api_versions, list_specified_version_details).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `Link` of a version object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LinkView {
    pub href: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub rel: String,
}

/// `VersionObject` (`list_specified_version_details`, `list_version_details`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct VersionView {
    pub id: String,
    pub status: String,
    pub updated: String,
    pub version: String,
    pub min_version: String,
    pub links: Vec<LinkView>,
}

/// Response of `GET /` (`list_version_details`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct VersionsResponse {
    pub versions: Vec<VersionView>,
}

/// Response of `GET /{version}` (`list_specified_version_details`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct VersionResponse {
    pub version: VersionView,
}

/// The API versions this server offers: `(id, updated)`.
pub const VERSIONS: &[(&str, &str)] = &[
    ("v1", "2018-09-30T00:00:00Z"),
    ("v2", "2020-03-30T00:00:00Z"),
];

/// The version object for `id`, with its self link under `base_url`.
pub fn version_view(base_url: &str, id: &str) -> Option<VersionView> {
    VERSIONS
        .iter()
        .find(|(v, _)| *v == id)
        .map(|(v, updated)| VersionView {
            id: (*v).into(),
            status: "CURRENT".into(),
            updated: (*updated).into(),
            version: v.trim_start_matches('v').into(),
            min_version: String::new(),
            links: vec![LinkView {
                href: format!("{}/{v}/", base_url.trim_end_matches('/')),
                kind: "application/json".into(),
                rel: "self".into(),
            }],
        })
}
