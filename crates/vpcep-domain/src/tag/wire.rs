//! Tag bodies of the VPCEP API: `tags` entries of create requests and responses, and the bodies
//! of the tag operations (batch_tag_resource_action, list_project_tags, list_resource_instances).

use crate::tag::Tag;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `TagList` / `ResourceTag` in requests.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TagDto {
    /// Tag key: 1 to 36 characters, none of `=*<>\,|/`, no surrounding spaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_length = 1, max_length = 36)]
    pub key: Option<String>,
    /// Tag value: up to 43 characters, the same characters as keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 43)]
    pub value: Option<String>,
}

/// `TagList` in responses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TagView {
    pub key: String,
    pub value: String,
}

impl From<&Tag> for TagView {
    fn from(t: &Tag) -> Self {
        TagView {
            key: t.key.clone(),
            value: t.value.clone(),
        }
    }
}

/// Renders tags for a response.
pub fn tag_views(tags: &[Tag]) -> Vec<TagView> {
    tags.iter().map(TagView::from).collect()
}

/// Body of the tag action (`batch_add_or_remove_resource_instance`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct TagActionRequest {
    /// `create` or `delete`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^(create|delete)$")]
    #[schema(required = true, nullable = false)]
    pub action: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<TagDto>>,
}

/// `TagValuesList`: a key with values.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TagValuesDto {
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub values: Option<Vec<String>>,
}

/// A key with its values (responses).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TagValuesView {
    pub key: String,
    pub values: Vec<String>,
}

/// Response of the project tags (`list_query_project_resource_tags`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ProjectTagsResponse {
    pub tags: Vec<TagValuesView>,
}

/// `Match` of the resource query.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MatchDto {
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub value: Option<String>,
}

/// A number that clients send as a JSON number or as a string (`"limit": "1000"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum NumOrString {
    /// `1000`.
    Num(i64),
    /// `"1000"`.
    Str(String),
}

/// Body of the resource query by tags (`list_resource_instances`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct ResourceQueryRequest {
    /// `filter` (a page of resources) or `count` (only `total_count`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^(filter|count)$")]
    pub action: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<TagValuesDto>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags_any: Option<Vec<TagValuesDto>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_tags: Option<Vec<TagValuesDto>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_tags_any: Option<Vec<TagValuesDto>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sys_tags: Option<Vec<TagValuesDto>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<NumOrString>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<NumOrString>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matches: Option<Vec<MatchDto>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub without_any_tag: Option<bool>,
}

/// One resource of the query result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ResourceView {
    pub resource_id: String,
    pub resource_name: String,
    pub tags: Vec<TagView>,
}

/// Response of `filter` (`list_resource_instances`); `count` answers only `total_count`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ResourceQueryResponse {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub resources: Option<Vec<ResourceView>>,
    pub total_count: u64,
}
