//! The store conformance suite on both backends.

use vpcep_store::conformance::{run_all, Backend};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_store_conforms() {
    run_all(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_store_conforms() {
    run_all(Backend::Postgres).await;
}

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
