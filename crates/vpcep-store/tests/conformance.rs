//! The store conformance suite: each check of `vpcep_store::conformance` is its own test, on a
//! fresh database of each backend, named `<resource>::<check>::<backend>`:
//! `cargo test -p vpcep-store address_claims_have_one_owner` runs one check on both backends,
//! `cargo test -p vpcep-store claims::` a resource's checks, `cargo test -p vpcep-store ::sqlite`
//! every check on SQLite. The PostgreSQL tests skip (with a notice) when the server is not
//! reachable, unless `VPCEP_REQUIRE_PG=1`.

use vpcep_store::conformance::open_store;
use vpcep_testkit::db::{Backend, TestDb};

/// Runs one check on a fresh database of `backend`: the check takes the store (`store`: by
/// reference, `arc`: shared) or the database URL (`db`).
macro_rules! on {
    ($backend:expr, $kind:ident, $check:path) => {{
        let Some(db) = TestDb::new($backend).await else {
            return;
        };
        on!(@call $kind, db, $check);
        db.cleanup().await;
    }};
    (@call store, $db:ident, $check:path) => {{
        let store = open_store(&$db.url).await;
        $check(&store).await
    }};
    (@call arc, $db:ident, $check:path) => {
        $check(open_store(&$db.url).await).await
    };
    (@call db, $db:ident, $check:path) => {
        $check(&$db.url).await
    };
}

/// One module per resource, one module per check, one test per backend.
macro_rules! checks {
    ($resource:ident { $($check:ident($kind:ident)),* $(,)? }) => {
        mod $resource {
            use super::*;
            $(
                mod $check {
                    use super::*;

                    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                    async fn sqlite() {
                        on!(Backend::Sqlite, $kind, vpcep_store::conformance::$resource::$check);
                    }

                    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                    async fn postgres() {
                        on!(Backend::Postgres, $kind, vpcep_store::conformance::$resource::$check);
                    }
                }
            )*
        }
    };
}

checks!(services {
    service_round_trip(store),
    port_claims_conflict_on_shared_port_id(store),
    concurrent_conflicting_creates_admit_one(arc),
    quota_holds_under_concurrency(arc),
    list_pages_sorts_and_filters(store),
    modify_is_transactional(store),
    transitions_complete_when_due(store),
    default_account_first_wins(store),
    services_check_their_backend(store),
    server_resources_round_trip(store),
    service_changes_move_the_dataplane_version_when_served(store),
});

checks!(usage {
    quota_usage_counts_per_project(store),
    network_quotas_hold_under_concurrency(arc),
    quotas_hold_when_changed_under_concurrency(arc),
});

checks!(network {
    vpcs_round_trip_and_guard_deletion(store),
    subnets_never_overlap(arc),
    ports_allocate_unique_addresses(arc),
});

checks!(endpoints {
    endpoint_lifecycle(store),
    endpoint_creates_are_all_or_nothing(arc),
    endpoint_changes_move_the_dataplane_version_when_served(store),
});

checks!(tags {
    tags_change_and_query(store),
});

checks!(permissions {
    permissions_add_idempotent_remove_tolerant(store),
    permission_batches_are_atomic(store),
    permission_limit_holds(store),
    permission_list_pages_sorts_and_filters(store),
    concurrent_permission_adds_leave_one_record(arc),
    deleted_services_lose_their_permissions(store),
});

checks!(claims {
    address_claims_have_one_owner(db),
    concurrent_claims_admit_one(db),
    concurrent_claims_of_one_vpc_share_the_address(db),
});

#[test]
fn migration_directories_list_the_same_files() {
    let names = |d: &str| {
        let mut v: Vec<_> =
            std::fs::read_dir(format!("{}/migrations/{d}", env!("CARGO_MANIFEST_DIR")))
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect();
        v.sort();
        v
    };
    assert_eq!(names("sqlite"), names("postgres"));
}
