//! Tags of services and endpoints.

use super::*;
use crate::SqlStore;
use vpcep_domain::tag::{ResourceKind, Tag};
use vpcep_domain::ErrorCode;

/// Tags of services and endpoints change in one transaction, are listed per project and feed
/// the tag queries with the resource names.
pub async fn tags_change_and_query(store: &SqlStore) {
    let svc = available_service(store, P1, false).await;
    let add = |k: &'static str| -> crate::TagMutation {
        std::sync::Arc::new(move |t: &mut Vec<Tag>| {
            t.push(Tag {
                key: k.into(),
                value: "1".into(),
            });
            t.sort();
            Ok(())
        })
    };
    store
        .modify_tags(P1, ResourceKind::EndpointService, svc.id, add("b"))
        .await
        .unwrap();
    store
        .modify_tags(P1, ResourceKind::EndpointService, svc.id, add("a"))
        .await
        .unwrap();
    let refused = store
        .modify_tags(
            P1,
            ResourceKind::EndpointService,
            svc.id,
            std::sync::Arc::new(|t: &mut Vec<Tag>| {
                t.clear();
                Err(vpcep_domain::ApiError::new(ErrorCode::TagTooMany, "no"))
            }),
        )
        .await
        .unwrap_err();
    assert_eq!(code_of(refused), ErrorCode::TagTooMany);
    assert_eq!(
        store
            .get_service(P1, svc.id)
            .await
            .unwrap()
            .unwrap()
            .tags
            .len(),
        2,
        "a refused change writes nothing"
    );
    assert_eq!(
        code_of(
            store
                .modify_tags(P2, ResourceKind::EndpointService, svc.id, add("c"))
                .await
                .unwrap_err()
        ),
        ErrorCode::NotFound
    );
    assert_eq!(
        code_of(
            store
                .modify_tags(P1, ResourceKind::Endpoint, svc.id, add("c"))
                .await
                .unwrap_err()
        ),
        ErrorCode::NotFound
    );
    let all = store
        .project_tags(P1, ResourceKind::EndpointService)
        .await
        .unwrap();
    assert_eq!(
        all.iter().map(|t| t.key.as_str()).collect::<Vec<_>>(),
        vec!["a", "b"]
    );
    let res = store
        .tagged_resources(P1, ResourceKind::EndpointService)
        .await
        .unwrap();
    let mine = res.iter().find(|r| r.id == svc.id.to_string()).unwrap();
    assert_eq!(
        (mine.name.as_str(), mine.tags.len()),
        (svc.full_name.as_str(), 2)
    );
}
