//! Use cases of permissions (`add_or_remove_service_permissions`,
//! `batch_add_endpoint_service_permissions`, `batch_remove_endpoint_service_permissions`,
//! `list_service_permissions_details`, `update_endpoint_service_permission_desc`), quotas
//! (`list_quota_details`) and the v2 service operations (`add_endpoint_service_server_resource`,
//! `upgrade_endpoint_service`), on SQLite and PostgreSQL.

use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use vpcep_control::accounts::{Account, AccountsFile, Quotas, Registry};
use vpcep_control::{permissions, quotas, services, Caller, Ctx};
use vpcep_domain::list::QueryParams;
use vpcep_domain::network::port::{random_mac, NewPort};
use vpcep_domain::permission::wire::{
    AddPermissionDto, BatchAddPermissionsRequest, BatchRemovePermissionsRequest,
    PermissionActionRequest, PermissionDescDto, RemovePermissionDto, UpdatePermissionDescRequest,
};
use vpcep_domain::quota::QuotaType;
use vpcep_domain::service::wire::{
    AddServerResourcesRequest, CreateServiceRequest, PortDto, ServerResourceDto,
    UpgradeServiceRequest,
};
use vpcep_domain::service::ServerResource;
use vpcep_domain::{ApiError, ErrorCode};
use vpcep_store::conformance::{make_backend, open_store};
use vpcep_testkit::db::{Backend, TestDb};

const PROJECT: &str = "0f8a1c2e3d4b5a69788796a5b4c3d2e1";
const OTHER_PROJECT: &str = "6e9dfd51d1124e8d8498dce894923a0d";
const DOMAIN: &str = "1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d";

fn caller(project: &str) -> Caller {
    Caller {
        account: Arc::new(Account {
            domain_id: DOMAIN.into(),
            domain_name: "t".into(),
            operator: false,
            projects: vec![PROJECT.into(), OTHER_PROJECT.into()],
            quotas: Quotas {
                endpoint_service: 7,
                endpoint: 9,
                ..Quotas::default()
            },
        }),
        project_id: project.into(),
    }
}

fn q(pairs: &[(&str, &str)]) -> QueryParams {
    QueryParams(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

fn code<T: std::fmt::Debug>(r: Result<T, ApiError>) -> ErrorCode {
    r.unwrap_err().code
}

async fn ctx(db: &TestDb) -> Ctx {
    Ctx {
        store: open_store(&db.url).await,
        region: "local-1".into(),
        accounts: Arc::new(Registry::new(&AccountsFile::default())),
        reconciler_wake: Arc::new(Notify::new()),
        provisioning_delay: Duration::ZERO,
        dataplane: false,
        policy: Arc::default(),
        agent_grace: vpcep_control::dataplane::DEFAULT_AGENT_GRACE,
        started_at: 0,
    }
}

async fn service(ctx: &Ctx, c: &Caller) -> String {
    let b = make_backend(&ctx.store, &c.project_id).await;
    let s = services::create_service(
        ctx,
        c,
        &CreateServiceRequest {
            port_id: Some(b.port_id.to_string()),
            vpc_id: Some(b.vpc_id.to_string()),
            server_type: Some("VM".into()),
            ports: Some(vec![PortDto {
                client_port: Some(80),
                server_port: Some(8080),
                protocol: Some("TCP".into()),
            }]),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    s.id.to_string()
}

fn action(a: &str, kind: Option<&str>, entries: &[&str]) -> PermissionActionRequest {
    PermissionActionRequest {
        permissions: Some(entries.iter().map(|e| e.to_string()).collect()),
        permission_type: kind.map(String::from),
        action: Some(a.into()),
    }
}

async fn permissions_flow(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let ctx = ctx(&db).await;
    let me = caller(PROJECT);
    let sid = service(&ctx, &me).await;
    let d = "iam:domain::6e9dfd51d1124e8d8498dce894923a0d";
    let org = "organizations:orgPath::o-1/r-2/*";

    // `add_or_remove_service_permissions` add echoes the request; adding again is idempotent.
    let edit = permissions::permission_action(&ctx, &me, &sid, &action("add", None, &[d, "*", d]))
        .await
        .unwrap();
    assert_eq!(edit.entries, vec![d, "*", d]);
    permissions::permission_action(&ctx, &me, &sid, &action("add", None, &[d]))
        .await
        .unwrap();
    permissions::permission_action(&ctx, &me, &sid, &action("add", Some("orgPath"), &[org]))
        .await
        .unwrap();
    let (list, total) = permissions::list_permissions(&ctx, &me, &sid, &q(&[("sort_dir", "asc")]))
        .await
        .unwrap();
    assert_eq!(total, 3);
    assert_eq!(
        list.iter()
            .map(|p| p.permission.as_str())
            .collect::<Vec<_>>(),
        vec![d, "*", org]
    );
    assert_eq!(list[2].permission_type.as_str(), "orgPath");
    // `list_service_permissions_details` filters and limits.
    let (hit, n) = permissions::list_permissions(&ctx, &me, &sid, &q(&[("permission", "ORGPATH")]))
        .await
        .unwrap();
    assert_eq!((hit.len(), n), (1, 1));
    let (page, n) =
        permissions::list_permissions(&ctx, &me, &sid, &q(&[("offset", "3"), ("limit", "500")]))
            .await
            .unwrap();
    assert_eq!((page.len(), n), (0, 3));
    for (pairs, want) in [
        (vec![("limit", "501")], ErrorCode::InvalidLimit),
        (vec![("limit", "0")], ErrorCode::InvalidLimit),
        (vec![("offset", "x")], ErrorCode::InvalidOffset),
        (vec![("sort_key", "name")], ErrorCode::InvalidSortKey),
        (vec![("sort_dir", "up")], ErrorCode::InvalidSortDir),
    ] {
        assert_eq!(
            code(permissions::list_permissions(&ctx, &me, &sid, &q(&pairs)).await),
            want
        );
    }
    assert!(
        permissions::list_permissions(&ctx, &me, &sid, &q(&[("sort_key", "update_at")]))
            .await
            .is_ok()
    );
    // `add_or_remove_service_permissions` remove; an absent entry is a no-op; bad requests keep
    // their codes.
    permissions::permission_action(
        &ctx,
        &me,
        &sid,
        &action(
            "remove",
            None,
            &[d, "iam:domain::00000000000000000000000000000000"],
        ),
    )
    .await
    .unwrap();
    assert_eq!(
        permissions::list_permissions(&ctx, &me, &sid, &q(&[]))
            .await
            .unwrap()
            .1,
        2
    );
    assert_eq!(
        code(permissions::permission_action(&ctx, &me, &sid, &action("drop", None, &["*"])).await),
        ErrorCode::InvalidPermissionAction
    );
    assert_eq!(
        code(permissions::permission_action(&ctx, &me, &sid, &action("add", None, &[])).await),
        ErrorCode::EmptyPermissions
    );
    assert_eq!(
        code(
            permissions::permission_action(
                &ctx,
                &me,
                &sid,
                &action("add", None, &["iam:domain::1234"])
            )
            .await
        ),
        ErrorCode::InvalidPermission
    );
    assert_eq!(
        code(
            permissions::permission_action(&ctx, &me, &sid, &action("add", None, &vec!["*"; 501]))
                .await
        ),
        ErrorCode::BatchTooLarge
    );

    // Another project, an unknown id and a malformed id are 404.
    let other = caller(OTHER_PROJECT);
    assert_eq!(
        code(permissions::list_permissions(&ctx, &other, &sid, &q(&[])).await),
        ErrorCode::NotFound
    );
    assert_eq!(
        code(
            permissions::permission_action(&ctx, &other, &sid, &action("add", None, &["*"])).await
        ),
        ErrorCode::NotFound
    );
    assert_eq!(
        code(permissions::list_permissions(&ctx, &me, "nope", &q(&[])).await),
        ErrorCode::NotFound
    );
    assert_eq!(
        code(
            permissions::list_permissions(
                &ctx,
                &me,
                "4189d3c2-8882-4871-a3c2-d380272eed88",
                &q(&[])
            )
            .await
        ),
        ErrorCode::NotFound
    );

    // `batch_add_endpoint_service_permissions` creates new records and describes present ones.
    let add = |p: &str, desc: &str| AddPermissionDto {
        permission: Some(p.into()),
        description: Some(desc.into()),
    };
    let created = permissions::batch_add_permissions(
        &ctx,
        &me,
        &sid,
        &BatchAddPermissionsRequest {
            permissions: Some(vec![add(d, "partner"), add("*", "everyone")]),
            permission_type: Some("domainId".into()),
        },
    )
    .await
    .unwrap();
    assert_eq!(created.len(), 2);
    assert_eq!(
        (
            created[0].permission.as_str(),
            created[0].description.as_str()
        ),
        (d, "partner")
    );
    assert_eq!(created[1].description, "everyone");
    assert_eq!(
        permissions::list_permissions(&ctx, &me, &sid, &q(&[]))
            .await
            .unwrap()
            .1,
        3
    );

    // `update_endpoint_service_permission_desc` sets one description; unknown and malformed ids are
    // 404.
    let upd = |desc: &str| UpdatePermissionDescRequest {
        permission: Some(PermissionDescDto {
            description: Some(desc.into()),
        }),
    };
    let changed = permissions::update_permission_description(
        &ctx,
        &me,
        &sid,
        &created[0].id.to_string(),
        &upd("renamed"),
    )
    .await
    .unwrap();
    assert_eq!(
        (changed.len(), changed[0].description.as_str()),
        (1, "renamed")
    );
    assert_eq!(
        code(permissions::update_permission_description(&ctx, &me, &sid, "nope", &upd("x")).await),
        ErrorCode::NotFound
    );
    assert_eq!(
        code(
            permissions::update_permission_description(
                &ctx,
                &me,
                &sid,
                &uuid::Uuid::new_v4().to_string(),
                &upd("x")
            )
            .await
        ),
        ErrorCode::NotFound
    );
    assert_eq!(
        code(
            permissions::update_permission_description(
                &ctx,
                &me,
                &sid,
                &created[0].id.to_string(),
                &upd("<b>")
            )
            .await
        ),
        ErrorCode::Parameter
    );

    // `batch_remove_endpoint_service_permissions` deletes all or nothing.
    let del = |ids: Vec<String>| BatchRemovePermissionsRequest {
        permissions: Some(
            ids.into_iter()
                .map(|id| RemovePermissionDto { id: Some(id) })
                .collect(),
        ),
    };
    assert_eq!(
        code(
            permissions::batch_remove_permissions(
                &ctx,
                &me,
                &sid,
                &del(vec![created[0].id.to_string(), "nope".into()])
            )
            .await
        ),
        ErrorCode::NotFound
    );
    assert_eq!(
        permissions::list_permissions(&ctx, &me, &sid, &q(&[]))
            .await
            .unwrap()
            .1,
        3
    );
    let gone = permissions::batch_remove_permissions(
        &ctx,
        &me,
        &sid,
        &del(vec![created[0].id.to_string(), created[1].id.to_string()]),
    )
    .await
    .unwrap();
    assert_eq!(gone.len(), 2);
    assert_eq!(gone[0].description, "renamed");
    let (left, n) = permissions::list_permissions(&ctx, &me, &sid, &q(&[]))
        .await
        .unwrap();
    assert_eq!((n, left[0].permission.as_str()), (1, org));
    db.cleanup().await;
}

async fn quotas_and_v2(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let ctx = ctx(&db).await;
    let me = caller(PROJECT);
    let rows = quotas::list_quotas(&ctx, &me, &q(&[])).await.unwrap();
    assert_eq!(
        rows.iter()
            .map(|r| (r.kind, r.used, r.quota))
            .collect::<Vec<_>>(),
        vec![
            (QuotaType::Endpoint, 0, 9),
            (QuotaType::EndpointService, 0, 7)
        ]
    );
    let sid = service(&ctx, &me).await;
    let rows = quotas::list_quotas(&ctx, &me, &q(&[("type", "endpoint_service")]))
        .await
        .unwrap();
    assert_eq!(
        rows.iter()
            .map(|r| (r.kind, r.used, r.quota))
            .collect::<Vec<_>>(),
        vec![(QuotaType::EndpointService, 1, 7)]
    );
    assert_eq!(
        quotas::list_quotas(
            &ctx,
            &caller(OTHER_PROJECT),
            &q(&[("type", "endpoint_service")])
        )
        .await
        .unwrap()[0]
            .used,
        0
    );
    assert_eq!(
        code(quotas::list_quotas(&ctx, &me, &q(&[("type", "router")])).await),
        ErrorCode::Parameter
    );

    // `add_endpoint_service_server_resource` add-server-resources: stored, deduplicated by
    // resource_id, at most 20.
    let res = |ids: &[&str]| AddServerResourcesRequest {
        server_resources: Some(
            ids.iter()
                .map(|id| ServerResourceDto {
                    resource_id: Some(id.to_string()),
                    availability_zone_id: Some("az1".into()),
                })
                .collect(),
        ),
    };
    // Resources are load balancers (ports) of the caller's project in the service's VPC.
    let port_of = ctx
        .store
        .get_port(
            PROJECT,
            services::show_service(&ctx, &me, &sid)
                .await
                .unwrap()
                .port_id,
        )
        .await
        .unwrap()
        .unwrap();
    let mut lbs: Vec<String> = Vec::new();
    for i in 0..21 {
        let p = ctx
            .store
            .create_port(
                PROJECT,
                NewPort::simple(port_of.subnet_id, None, "neutron:LOADBALANCERV2"),
                uuid::Uuid::new_v4(),
                random_mac(i),
                1,
                u64::MAX,
            )
            .await
            .unwrap();
        lbs.push(p.id.to_string());
    }
    services::add_server_resources(&ctx, &me, &sid, &res(&[&lbs[0], &lbs[1]]))
        .await
        .unwrap();
    services::add_server_resources(&ctx, &me, &sid, &res(&[&lbs[1], &lbs[2]]))
        .await
        .unwrap();
    let s = services::show_service(&ctx, &me, &sid).await.unwrap();
    assert_eq!(
        s.server_resources
            .iter()
            .map(|r| r.resource_id.as_str())
            .collect::<Vec<_>>(),
        vec![lbs[0].as_str(), &lbs[1], &lbs[2]]
    );
    assert_eq!(
        s.server_resources[0],
        ServerResource {
            resource_id: lbs[0].clone(),
            availability_zone_id: Some("az1".into())
        }
    );
    assert_eq!(
        code(services::add_server_resources(&ctx, &me, &sid, &res(&["lb-1"])).await),
        ErrorCode::InvalidPortId
    );
    let many: Vec<&str> = lbs[3..21].iter().map(String::as_str).collect();
    assert_eq!(
        code(services::add_server_resources(&ctx, &me, &sid, &res(&many)).await),
        ErrorCode::Parameter
    );
    assert_eq!(
        code(services::add_server_resources(&ctx, &me, &sid, &res(&[""])).await),
        ErrorCode::Parameter
    );
    assert_eq!(
        code(
            services::add_server_resources(&ctx, &caller(OTHER_PROJECT), &sid, &res(&["a"])).await
        ),
        ErrorCode::NotFound
    );

    // `upgrade_endpoint_service` upgrade / rollback.
    services::upgrade_service(&ctx, &me, &sid, None)
        .await
        .unwrap();
    assert_eq!(
        services::show_service(&ctx, &me, &sid)
            .await
            .unwrap()
            .supported_editions,
        vec!["basic", "profession"]
    );
    let body = |a: &str| UpgradeServiceRequest {
        action: Some(a.into()),
        enable_multi_server: None,
    };
    services::upgrade_service(&ctx, &me, &sid, Some(&body("rollback")))
        .await
        .unwrap();
    assert_eq!(
        services::show_service(&ctx, &me, &sid)
            .await
            .unwrap()
            .supported_editions,
        vec!["basic"]
    );
    assert_eq!(
        code(services::upgrade_service(&ctx, &me, &sid, Some(&body("start"))).await),
        ErrorCode::InvalidAction
    );

    // A service being deleted refuses both.
    services::delete_service(&ctx, &me, &sid).await.unwrap();
    assert_eq!(
        code(services::upgrade_service(&ctx, &me, &sid, None).await),
        ErrorCode::ServiceStateConflict
    );
    assert_eq!(
        code(services::add_server_resources(&ctx, &me, &sid, &res(&["lb-9"])).await),
        ErrorCode::ServiceStateConflict
    );
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permissions_use_cases_sqlite() {
    permissions_flow(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permissions_use_cases_postgres() {
    permissions_flow(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quotas_and_v2_use_cases_sqlite() {
    quotas_and_v2(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quotas_and_v2_use_cases_postgres() {
    quotas_and_v2(Backend::Postgres).await;
}
