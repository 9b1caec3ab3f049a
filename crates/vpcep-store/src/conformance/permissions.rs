//! Permission records of services.

use super::*;
use crate::PermissionChange;
use crate::SqlStore;
use std::sync::Arc;
use uuid::Uuid;
use vpcep_domain::list::{Page, SortDir, SortKey};
use vpcep_domain::permission::{Permission, PermissionType};
use vpcep_domain::ErrorCode;

fn domain_entry(i: usize) -> String {
    format!("iam:domain::{i:032x}")
}

async fn perms_of(store: &SqlStore, project: &str, service: Uuid) -> (Vec<Permission>, u64) {
    store
        .list_permissions(
            project,
            service,
            None,
            &Page {
                limit: 500,
                sort_dir: SortDir::Asc,
                ..Page::default()
            },
        )
        .await
        .unwrap()
}

/// Adding is idempotent (an entry present keeps its record), removing an absent entry is a
/// no-op, entries round-trip byte for byte, and another project's or an unknown service is 404.
pub async fn permissions_add_idempotent_remove_tolerant(store: &SqlStore) {
    let s = new_service(store, P1).await;
    let d = domain_entry(7);
    let org = "organizations:orgPath::o-1/r-2/ou-3/*";
    let dom = |e: &str, t| sample_permission(s.id, e, PermissionType::DomainId, "", t);
    let first = store
        .change_permissions(
            P1,
            s.id,
            10,
            PermissionChange::Add(vec![dom(&d, 10), dom("*", 10), dom(&d, 10)]),
        )
        .await
        .unwrap();
    assert_eq!(
        first
            .iter()
            .map(|p| p.permission.as_str())
            .collect::<Vec<_>>(),
        vec![d.as_str(), "*"]
    );
    let again = store
        .change_permissions(P1, s.id, 20, PermissionChange::Add(vec![dom(&d, 20)]))
        .await
        .unwrap();
    assert_eq!(again, vec![first[0].clone()], "the present record is kept");
    store
        .change_permissions(
            P1,
            s.id,
            30,
            PermissionChange::Add(vec![sample_permission(
                s.id,
                org,
                PermissionType::OrgPath,
                "",
                30,
            )]),
        )
        .await
        .unwrap();
    let (all, n) = perms_of(store, P1, s.id).await;
    assert_eq!(n, 3);
    assert_eq!(all[2].permission, org);
    assert_eq!(all[2].permission_type, PermissionType::OrgPath);
    assert_eq!(all[0], first[0], "every field round-trips");
    let removed = store
        .change_permissions(
            P1,
            s.id,
            40,
            PermissionChange::RemoveEntries(vec![d.clone(), domain_entry(8)]),
        )
        .await
        .unwrap();
    assert_eq!(removed, vec![first[0].clone()]);
    let none = store
        .change_permissions(
            P1,
            s.id,
            50,
            PermissionChange::RemoveEntries(vec![d.clone()]),
        )
        .await
        .unwrap();
    assert!(none.is_empty());
    assert_eq!(perms_of(store, P1, s.id).await.1, 2);
    for (project, id) in [(P2, s.id), (P1, Uuid::new_v4())] {
        assert_eq!(
            code_of(
                store
                    .list_permissions(project, id, None, &Page::default())
                    .await
                    .unwrap_err()
            ),
            ErrorCode::NotFound
        );
        assert_eq!(
            code_of(
                store
                    .change_permissions(project, id, 60, PermissionChange::Add(vec![dom("*", 60)]))
                    .await
                    .unwrap_err()
            ),
            ErrorCode::NotFound
        );
    }
    let got = store.get_service(P1, s.id).await.unwrap().unwrap();
    assert_eq!(
        got.updated_at, s.updated_at,
        "permissions do not touch the service"
    );
}

/// Batch create updates present records' descriptions; batch delete by id is all or nothing;
/// a description update names one record of the service.
pub async fn permission_batches_are_atomic(store: &SqlStore) {
    let s = new_service(store, P1).await;
    let other = {
        let b = make_backend_with(store, P1, "10.1.0.0/16", "compute:az").await;
        let o = sample_service(P1, &b, &[(80, 80)], 1);
        store.create_service(&o, 100).await.unwrap();
        o
    };
    let rec = |e: &str, d: &str, t| sample_permission(s.id, e, PermissionType::DomainId, d, t);
    let (a, b, c) = (domain_entry(1), domain_entry(2), domain_entry(3));
    let created = store
        .change_permissions(
            P1,
            s.id,
            10,
            PermissionChange::Upsert(vec![rec(&a, "x", 10), rec(&b, "y", 10)]),
        )
        .await
        .unwrap();
    assert_eq!(created.len(), 2);
    let second = store
        .change_permissions(
            P1,
            s.id,
            20,
            PermissionChange::Upsert(vec![rec(&a, "z", 20), rec(&c, "", 20), rec(&b, "y", 20)]),
        )
        .await
        .unwrap();
    assert_eq!(
        (
            second[0].id,
            second[0].description.as_str(),
            second[0].created_at,
            second[0].updated_at
        ),
        (created[0].id, "z", 10, 20),
        "a present record takes the new description"
    );
    assert_eq!(second[1].permission, c);
    assert_eq!(
        second[2], created[1],
        "an unchanged description leaves the record as it was"
    );
    assert_eq!(perms_of(store, P1, s.id).await.1, 3);
    let foreign = store
        .change_permissions(
            P1,
            other.id,
            25,
            PermissionChange::Add(vec![sample_permission(
                other.id,
                &a,
                PermissionType::DomainId,
                "",
                25,
            )]),
        )
        .await
        .unwrap();
    for ids in [
        vec![created[0].id, Uuid::new_v4()],
        vec![created[0].id, foreign[0].id],
    ] {
        assert_eq!(
            code_of(
                store
                    .change_permissions(P1, s.id, 30, PermissionChange::RemoveIds(ids))
                    .await
                    .unwrap_err()
            ),
            ErrorCode::NotFound
        );
        assert_eq!(perms_of(store, P1, s.id).await.1, 3, "nothing was deleted");
    }
    let removed = store
        .change_permissions(
            P1,
            s.id,
            40,
            PermissionChange::RemoveIds(vec![created[1].id, created[0].id, created[1].id]),
        )
        .await
        .unwrap();
    assert_eq!(
        removed.iter().map(|p| p.id).collect::<Vec<_>>(),
        vec![created[1].id, created[0].id]
    );
    let (left, n) = perms_of(store, P1, s.id).await;
    assert_eq!((n, left[0].permission.as_str()), (1, c.as_str()));
    assert_eq!(
        perms_of(store, P1, other.id).await.1,
        1,
        "other services keep theirs"
    );
    let described = store
        .change_permissions(
            P1,
            s.id,
            50,
            PermissionChange::Describe {
                id: left[0].id,
                description: "new".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (
            described.len(),
            described[0].description.as_str(),
            described[0].updated_at
        ),
        (1, "new", 50)
    );
    assert_eq!(perms_of(store, P1, s.id).await.0[0].description, "new");
    for id in [Uuid::new_v4(), foreign[0].id] {
        assert_eq!(
            code_of(
                store
                    .change_permissions(
                        P1,
                        s.id,
                        60,
                        PermissionChange::Describe {
                            id,
                            description: "x".into(),
                        },
                    )
                    .await
                    .unwrap_err()
            ),
            ErrorCode::NotFound
        );
    }
}

/// A service holds at most 500 records: an add that would pass the limit is EndPoint.3049 and
/// adds nothing; entries already present do not count again.
pub async fn permission_limit_holds(store: &SqlStore) {
    let s = new_service(store, P1).await;
    let recs = |range: std::ops::Range<usize>| {
        range
            .map(|i| sample_permission(s.id, &domain_entry(i), PermissionType::DomainId, "", 1))
            .collect::<Vec<_>>()
    };
    store
        .change_permissions(P1, s.id, 1, PermissionChange::Add(recs(0..499)))
        .await
        .unwrap();
    for change in [
        PermissionChange::Add(recs(499..501)),
        PermissionChange::Upsert(recs(498..501)),
    ] {
        assert_eq!(
            code_of(
                store
                    .change_permissions(P1, s.id, 2, change)
                    .await
                    .unwrap_err()
            ),
            ErrorCode::PermissionsTooMany
        );
        assert_eq!(perms_of(store, P1, s.id).await.1, 499);
    }
    store
        .change_permissions(P1, s.id, 3, PermissionChange::Add(recs(490..500)))
        .await
        .unwrap();
    assert_eq!(perms_of(store, P1, s.id).await.1, 500);
    store
        .change_permissions(P1, s.id, 4, PermissionChange::Upsert(recs(0..3)))
        .await
        .unwrap();
    assert_eq!(
        code_of(
            store
                .change_permissions(P1, s.id, 5, PermissionChange::Add(recs(500..501)))
                .await
                .unwrap_err()
        ),
        ErrorCode::PermissionsTooMany
    );
}

/// The permission list pages, sorts (ties in insertion order), filters case-insensitively with
/// literal wildcards, and answers an empty page with the true total past the end.
pub async fn permission_list_pages_sorts_and_filters(store: &SqlStore) {
    let s = new_service(store, P1).await;
    let mut ids = Vec::new();
    for i in 0..7usize {
        let e = if i == 3 {
            "iam:domain::abcdef0123456789abcdef0123456789".to_string()
        } else {
            domain_entry(i)
        };
        let r = store
            .change_permissions(
                P1,
                s.id,
                100 + i as i64,
                PermissionChange::Add(vec![sample_permission(
                    s.id,
                    &e,
                    PermissionType::DomainId,
                    "",
                    100 + i as i64,
                )]),
            )
            .await
            .unwrap();
        ids.push(r[0].id);
    }
    let list = |contains: Option<&'static str>, limit, offset, key, dir| async move {
        let (v, n) = store
            .list_permissions(
                P1,
                s.id,
                contains,
                &Page {
                    limit,
                    offset,
                    sort_key: key,
                    sort_dir: dir,
                },
            )
            .await
            .unwrap();
        (v.into_iter().map(|p| p.id).collect::<Vec<_>>(), n)
    };
    use SortKey::{CreatedAt, UpdatedAt};
    assert_eq!(
        list(None, 3, 0, CreatedAt, SortDir::Desc).await,
        (vec![ids[6], ids[5], ids[4]], 7)
    );
    assert_eq!(
        list(None, 3, 6, CreatedAt, SortDir::Desc).await,
        (vec![ids[0]], 7)
    );
    assert_eq!(
        list(None, 3, 7, CreatedAt, SortDir::Desc).await,
        (vec![], 7)
    );
    assert_eq!(
        list(None, 2, 0, CreatedAt, SortDir::Asc).await,
        (vec![ids[0], ids[1]], 7)
    );
    assert_eq!(
        list(Some("ABCDEF0123"), 10, 0, CreatedAt, SortDir::Desc).await,
        (vec![ids[3]], 1)
    );
    assert_eq!(list(Some("%"), 10, 0, CreatedAt, SortDir::Desc).await.1, 0);
    assert_eq!(
        list(Some("IAM:"), 10, 0, CreatedAt, SortDir::Desc).await.1,
        7
    );
    store
        .change_permissions(
            P1,
            s.id,
            999,
            PermissionChange::Describe {
                id: ids[2],
                description: "touched".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        list(None, 1, 0, UpdatedAt, SortDir::Desc).await.0,
        vec![ids[2]]
    );
    assert_eq!(
        list(None, 1, 0, CreatedAt, SortDir::Desc).await.0,
        vec![ids[6]]
    );
    // Records added in one call share created_at; insertion order breaks the tie.
    let batch: Vec<Permission> = (10..13)
        .map(|i| sample_permission(s.id, &domain_entry(i), PermissionType::DomainId, "", 5000))
        .collect();
    let added = store
        .change_permissions(P1, s.id, 5000, PermissionChange::Add(batch))
        .await
        .unwrap();
    assert_eq!(
        list(None, 3, 0, CreatedAt, SortDir::Desc).await.0,
        vec![added[2].id, added[1].id, added[0].id]
    );
}

/// Concurrent adds of one entry leave one record, and every caller gets that record back.
pub async fn concurrent_permission_adds_leave_one_record(store: Arc<SqlStore>) {
    let s = new_service(&store, P1).await;
    let entry = domain_entry(42);
    let mut tasks = Vec::new();
    for i in 0..16usize {
        let store = store.clone();
        let entry = entry.clone();
        tasks.push(tokio::spawn(async move {
            let change = if i % 2 == 0 {
                PermissionChange::Add
            } else {
                PermissionChange::Upsert
            };
            store
                .change_permissions(
                    P1,
                    s.id,
                    i as i64,
                    change(vec![
                        sample_permission(s.id, &entry, PermissionType::DomainId, "", i as i64),
                        sample_permission(
                            s.id,
                            &domain_entry(100 + i),
                            PermissionType::DomainId,
                            "",
                            i as i64,
                        ),
                    ]),
                )
                .await
        }));
    }
    let mut ids = std::collections::HashSet::new();
    for t in tasks {
        ids.insert(t.await.unwrap().unwrap()[0].id);
    }
    assert_eq!(ids.len(), 1, "one record for the shared entry");
    let (_, n) = store
        .list_permissions(P1, s.id, Some(&entry), &Page::default())
        .await
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(perms_of(&store, P1, s.id).await.1, 17);
}

/// The reconciler removes a service's permission records with the service.
pub async fn deleted_services_lose_their_permissions(store: &SqlStore) {
    let s = new_service(store, P1).await;
    store
        .change_permissions(
            P1,
            s.id,
            5,
            PermissionChange::Add(vec![sample_permission(
                s.id,
                "*",
                PermissionType::DomainId,
                "",
                5,
            )]),
        )
        .await
        .unwrap();
    mark_deleting(store, P1, s.id, 10).await;
    assert_eq!(perms_of(store, P1, s.id).await.1, 1, "kept while deleting");
    assert_eq!(store.complete_deletions(10, 100).await.unwrap(), 1);
    assert_eq!(
        code_of(
            store
                .list_permissions(P1, s.id, None, &Page::default())
                .await
                .unwrap_err()
        ),
        ErrorCode::NotFound
    );
    // A service stored again under the same id starts with no records.
    let b = make_backend_with(store, P1, "10.2.0.0/16", "compute:az").await;
    let mut again = sample_service(P1, &b, &[(80, 80)], 20);
    again.id = s.id;
    store.create_service(&again, 100).await.unwrap();
    assert_eq!(perms_of(store, P1, s.id).await.1, 0);
}
