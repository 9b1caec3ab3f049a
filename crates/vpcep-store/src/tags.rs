//! Tags of services and endpoints (`resource_tags`): the helpers the resources' own
//! transactions use, and the tag operations of the API.

use crate::conn::{query, query_scalar, Conn};
use crate::query::placeholders;
use crate::sql::SqlStore;
use crate::{StoreResult, TagMutation, TaggedResource};
use std::collections::HashMap;
use uuid::Uuid;
use vpcep_domain::tag::{ResourceKind, Tag};
use vpcep_domain::ApiError;

/// A column `has_tags` for a statement over `table`: 1 when its row (by `id`) has tags of
/// `resource_type`, else 0. One probe of the tags' primary key per row, so that a page loads
/// the tags of only the rows that have some, and a page without tags runs no second statement
/// (binding each of its ids). `resource_type` is one of the crate's constants.
pub(crate) fn has_tags_col(resource_type: &'static str, table: &str) -> String {
    format!(
        "CASE WHEN EXISTS (SELECT 1 FROM resource_tags t WHERE t.resource_type = \
         '{resource_type}' AND t.resource_id = {table}.id) THEN 1 ELSE 0 END AS has_tags"
    )
}

/// Loads the tags of the given resources, sorted by key.
pub(crate) async fn load_tags(
    conn: &mut Conn,
    resource_type: &str,
    ids: &[String],
) -> StoreResult<HashMap<String, Vec<Tag>>> {
    let mut out: HashMap<String, Vec<Tag>> = HashMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    let sql = format!(
        "SELECT resource_id, key, value FROM resource_tags WHERE resource_type = $1 AND resource_id IN ({}) ORDER BY key",
        placeholders(2, ids.len())
    );
    let mut q = query(&sql).bind(resource_type);
    for id in ids {
        q = q.bind(id);
    }
    for row in q.fetch_all(&mut *conn).await? {
        out.entry(row.try_get("resource_id")?)
            .or_default()
            .push(Tag {
                key: row.try_get("key")?,
                value: row.try_get("value")?,
            });
    }
    Ok(out)
}

/// Inserts the tags of one resource.
pub(crate) async fn insert_tags(
    conn: &mut Conn,
    resource_type: &str,
    resource_id: &str,
    project_id: &str,
    tags: &[Tag],
) -> StoreResult<()> {
    if tags.is_empty() {
        return Ok(());
    }
    let rows = (0..tags.len())
        .map(|i| format!("({})", placeholders(i * 5 + 1, 5)))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!("INSERT INTO resource_tags (resource_type, resource_id, project_id, key, value) VALUES {rows}");
    let mut q = query(&sql);
    for t in tags {
        q = q
            .bind(resource_type)
            .bind(resource_id)
            .bind(project_id)
            .bind(&t.key)
            .bind(&t.value);
    }
    q.execute(&mut *conn).await?;
    Ok(())
}

/// Removes every tag of one resource.
pub(crate) async fn delete_tags(
    conn: &mut Conn,
    resource_type: &str,
    resource_id: &str,
) -> StoreResult<()> {
    query("DELETE FROM resource_tags WHERE resource_type = $1 AND resource_id = $2")
        .bind(resource_type)
        .bind(resource_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

impl SqlStore {
    /// Changes the tags of a service or endpoint of a project (404 when absent).
    pub async fn modify_tags(
        &self,
        project_id: &str,
        kind: ResourceKind,
        id: Uuid,
        change: TagMutation,
    ) -> StoreResult<()> {
        let lock = self.dialect.for_update();
        let project_id = project_id.to_string();
        self.write_retryable(move |c| {
            // Cloned for each run: the call may run again (see `write_retryable`).
            let (change, project_id) = (change.clone(), project_id.clone());
            Box::pin(async move {
                let table = match kind {
                    ResourceKind::EndpointService => "endpoint_services",
                    ResourceKind::Endpoint => "endpoints",
                };
                let exists: Option<String> = query_scalar(&format!(
                    "SELECT id FROM {table} WHERE id = $1 AND project_id = $2{lock}"
                ))
                .bind(id.to_string())
                .bind(&project_id)
                .fetch_optional(&mut *c)
                .await?;
                if exists.is_none() {
                    return Err(ApiError::not_found(kind.as_str(), &id.to_string()).into());
                }
                let rid = id.to_string();
                let mut tags = load_tags(c, kind.as_str(), std::slice::from_ref(&rid))
                    .await?
                    .remove(&rid)
                    .unwrap_or_default();
                let before = tags.clone();
                change(&mut tags)?;
                if tags != before {
                    delete_tags(c, kind.as_str(), &rid).await?;
                    insert_tags(c, kind.as_str(), &rid, &project_id, &tags).await?;
                }
                Ok(())
            })
        })
        .await
    }

    /// Every tag of a project's resources of one kind, sorted by key and value.
    pub async fn project_tags(
        &self,
        project_id: &str,
        kind: ResourceKind,
    ) -> StoreResult<Vec<Tag>> {
        let mut c = self.reader().await?;
        let rows = query("SELECT key, value FROM resource_tags WHERE project_id = $1 AND resource_type = $2 ORDER BY key, value")
            .bind(project_id)
            .bind(kind.as_str())
            .fetch_all(&mut c)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(Tag {
                    key: r.try_get("key")?,
                    value: r.try_get("value")?,
                })
            })
            .collect()
    }

    /// Every resource of one kind in a project, with its name and tags.
    pub async fn tagged_resources(
        &self,
        project_id: &str,
        kind: ResourceKind,
    ) -> StoreResult<Vec<TaggedResource>> {
        let mut c = self.reader().await?;
        let sql = match kind {
            ResourceKind::EndpointService => "SELECT id, full_name AS name FROM endpoint_services WHERE project_id = $1 ORDER BY seq",
            ResourceKind::Endpoint => "SELECT id, id AS name FROM endpoints WHERE project_id = $1 ORDER BY seq",
        };
        let rows = query(sql).bind(project_id).fetch_all(&mut c).await?;
        let mut tags: HashMap<String, Vec<Tag>> = HashMap::new();
        let all = query("SELECT resource_id, key, value FROM resource_tags WHERE project_id = $1 AND resource_type = $2 ORDER BY key")
            .bind(project_id)
            .bind(kind.as_str())
            .fetch_all(&mut c)
            .await?;
        for r in &all {
            tags.entry(r.try_get("resource_id")?)
                .or_default()
                .push(Tag {
                    key: r.try_get("key")?,
                    value: r.try_get("value")?,
                });
        }
        rows.iter()
            .map(|r| {
                let id: String = r.try_get("id")?;
                Ok(TaggedResource {
                    tags: tags.remove(&id).unwrap_or_default(),
                    name: r.try_get("name")?,
                    id,
                })
            })
            .collect()
    }
}
