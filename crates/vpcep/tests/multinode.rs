//! Several control-plane nodes on one PostgreSQL database behave as one: what one node writes
//! the other lists, uniqueness and quota rules hold across nodes under concurrent requests,
//! the reconcilers of all nodes never process a resource twice, and nodes (in process or the
//! real `vpcep serve` binary) may start at once on a fresh schema.
//!
//! PostgreSQL only (`VPCEP_TEST_POSTGRES_URL`, default `postgres://root@127.0.0.1:5432/test`);
//! each test skips with a notice when it is unreachable, unless `VPCEP_REQUIRE_PG=1`.

use reqwest::Method;
use std::collections::BTreeSet;
use std::time::Duration;
use tokio::task::JoinSet;
use vpcep::server::ControlPlane;
use vpcep_testkit::nodes::*;

/// The tests of this file run one at a time: each starts several nodes with their own
/// connection pools, and the PostgreSQL server is shared.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const SETTLE: Duration = Duration::from_secs(15);

async fn pg() -> Option<Env> {
    Env::new(Backend::Postgres).await
}

/// Waits until `api` lists no service in `status`.
async fn wait_none_in(api: &Api, status: &str) {
    eventually(SETTLE, || async {
        let (_, n) = api.list(&format!("status={status}&limit=1")).await;
        if n == 0 {
            Ok(())
        } else {
            Err(format!("{n} services still {status}"))
        }
    })
    .await
}

/// Most requests a test has in flight at once.
const MAX_IN_FLIGHT: usize = 48;

/// Fires `n` creates on `b` split across `apis` (request `i` through `apis[i % len]`), with
/// the ports `ports(i)`, at most [`MAX_IN_FLIGHT`] at once; answers the answers in request
/// order.
async fn create_many(
    apis: &[Api],
    b: &BackendPort,
    n: usize,
    ports: impl Fn(usize) -> Vec<(u16, u16)>,
) -> Vec<Answer> {
    let in_flight = std::sync::Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT));
    let mut set = JoinSet::new();
    for i in 0..n {
        let api = apis[i % apis.len()].clone();
        let b = b.clone();
        let p = ports(i);
        let in_flight = in_flight.clone();
        set.spawn(async move {
            let _permit = in_flight.acquire_owned().await.expect("semaphore");
            (i, api.create(&b, &p).await)
        });
    }
    let mut out: Vec<Option<Answer>> = vec![None; n];
    while let Some(r) = set.join_next().await {
        let (i, a) = r.expect("task");
        out[i] = Some(a);
    }
    out.into_iter().map(|a| a.expect("answered")).collect()
}

/// Deletes the services `created` answered, request `i` through `apis[i % len]`, at most
/// [`MAX_IN_FLIGHT`] at once; asserts each is accepted (204).
async fn delete_all(apis: &[Api], created: &[Answer]) {
    let in_flight = std::sync::Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT));
    let mut set = JoinSet::new();
    for (i, a) in created.iter().enumerate() {
        let api = apis[i % apis.len()].clone();
        let id = id_of(&a.body);
        let in_flight = in_flight.clone();
        set.spawn(async move {
            let _permit = in_flight.acquire_owned().await.expect("semaphore");
            api.try_delete(&id).await
        });
    }
    while let Some(r) = set.join_next().await {
        let d = r.expect("task").expect("transport");
        assert_eq!(d.status, 204, "{}", d.body);
    }
}

fn assert_stored_consistent(stored: &Stored) {
    let problems = stored.problems();
    assert!(problems.is_empty(), "half-written state: {problems:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creates_through_both_nodes_are_listed_alike_by_either() {
    let _serial = SERIAL.lock().await;
    let Some(env) = pg().await else { return };
    let a = Node::start(&env.config(Duration::ZERO)).await;
    let b = Node::start(&env.config(Duration::ZERO)).await;
    let (api_a, api_b) = (a.api(OWNER), b.api(OWNER));
    let backend = api_a.make_backend(1).await;

    let answers = create_many(&[api_a.clone(), api_b.clone()], &backend, 60, |i| {
        vec![(1000 + i as u16, 2000 + i as u16)]
    })
    .await;
    let mut created = BTreeSet::new();
    for (i, a) in answers.iter().enumerate() {
        assert_eq!(a.status, 200, "create {i}: {}", a.body);
        assert_eq!(ports_of(&a.body), vec![(1000 + i as u16, 2000 + i as u16)]);
        created.insert(id_of(&a.body));
    }
    wait_none_in(&api_a, "creating").await;

    let (items_a, total_a) = api_a.list_all("").await;
    let (items_b, total_b) = api_b.list_all("").await;
    assert_eq!((total_a, total_b), (60, 60));
    assert_eq!(items_a, items_b, "the nodes list different services");
    let listed: BTreeSet<String> = items_a.iter().map(id_of).collect();
    assert_eq!(listed, created);
    // Filtered totals come from COUNT(*), unfiltered ones from the usage counter: both agree.
    assert_eq!(api_b.list("status=available&limit=1").await.1, 60);

    // Pages fetched alternately from either node make up the whole list, once each.
    let mut paged = Vec::new();
    for (k, offset) in (0..60).step_by(7).enumerate() {
        let api = if k % 2 == 0 { &api_a } else { &api_b };
        paged.extend(api.list(&format!("limit=7&offset={offset}")).await.0);
    }
    assert_eq!(paged, items_a);

    // Each node shows what the other created.
    for (i, a) in answers.iter().enumerate() {
        let other = if i % 2 == 0 { &api_b } else { &api_a };
        let shown = other.show(&id_of(&a.body)).await;
        assert_eq!(shown.status, 200, "{}", shown.body);
        assert_eq!(ports_of(&shown.body), ports_of(&a.body));
        assert_eq!(shown.body["port_id"], backend.port_id.as_str());
    }
    assert_stored_consistent(&Stored::read(env.url()).await);
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflicting_port_mappings_on_one_port_id_across_nodes_admit_exactly_one() {
    let _serial = SERIAL.lock().await;
    let Some(env) = pg().await else { return };
    let a = Node::start(&env.config(Duration::ZERO)).await;
    let b = Node::start(&env.config(Duration::ZERO)).await;
    let apis = [a.api(OWNER), b.api(OWNER)];
    let backend = apis[0].make_backend(2).await;

    const ROUNDS: u16 = 12;
    const RACERS: usize = 8;
    let mut winners = Vec::new();
    for round in 0..ROUNDS {
        // Even rounds race for one client port, odd rounds for one server port; the other
        // side is distinct per racer.
        let answers = create_many(&apis, &backend, RACERS, |k| {
            let unique = 10_000 + round * 100 + k as u16;
            let shared = 5000 + round;
            if round % 2 == 0 {
                vec![(shared, unique)]
            } else {
                vec![(unique, shared)]
            }
        })
        .await;
        let ok: Vec<&Answer> = answers.iter().filter(|a| a.status == 200).collect();
        assert_eq!(
            ok.len(),
            1,
            "round {round}: {} creates admitted: {answers:#?}",
            ok.len()
        );
        for a in answers.iter().filter(|a| a.status != 200) {
            assert_eq!(
                (a.status, a.code()),
                (400, "EndPoint.3044"),
                "round {round}: {}",
                a.body
            );
        }
        winners.push(id_of(&ok[0].body));
    }
    for api in &apis {
        let (items, total) = api.list_all("").await;
        assert_eq!(total, u64::from(ROUNDS));
        let ids: BTreeSet<String> = items.iter().map(id_of).collect();
        assert_eq!(ids, winners.iter().cloned().collect());
    }
    // The claims hold afterwards too, on either node.
    let again = apis[1].create(&backend, &[(5000, 60_000)]).await;
    assert_eq!((again.status, again.code()), (400, "EndPoint.3044"));
    assert_stored_consistent(&Stored::read(env.url()).await);
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_updates_taking_one_port_across_nodes_admit_exactly_one() {
    let _serial = SERIAL.lock().await;
    let Some(env) = pg().await else { return };
    let a = Node::start(&env.config(Duration::ZERO)).await;
    let b = Node::start(&env.config(Duration::ZERO)).await;
    let apis = [a.api(OWNER), b.api(OWNER)];
    let backend = apis[0].make_backend(8).await;
    const RACERS: usize = 6;
    let services: Vec<String> = create_many(&apis, &backend, RACERS, |i| {
        vec![(1000 + i as u16, 1000 + i as u16)]
    })
    .await
    .iter()
    .map(|a| {
        assert_eq!(a.status, 200, "{}", a.body);
        id_of(&a.body)
    })
    .collect();
    for round in 0..8u16 {
        // Every service tries to add the same client port, each through the other node.
        let wanted = 7000 + round;
        let mut set = JoinSet::new();
        for (k, id) in services.iter().enumerate() {
            let api = apis[(k + round as usize) % 2].clone();
            let id = id.clone();
            let mine = 1000 + k as u16;
            set.spawn(async move {
                let shown = api.show(&id).await;
                let mut ports = ports_of(&shown.body);
                ports.push((wanted, 20_000 + round * 10 + k as u16));
                let body = serde_json::json!({ "ports": vpcep_testkit::app::ports(&ports) });
                assert!(ports.contains(&(mine, mine)));
                api.update(&id, &body).await
            });
        }
        let mut ok = 0;
        while let Some(r) = set.join_next().await {
            let a = r.expect("task");
            match a.status {
                200 => ok += 1,
                _ => assert_eq!((a.status, a.code()), (400, "EndPoint.3044"), "{}", a.body),
            }
        }
        assert_eq!(
            ok, 1,
            "round {round}: {ok} updates took client port {wanted}"
        );
    }
    assert_stored_consistent(&Stored::read(env.url()).await);
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_port_while_another_node_creates_a_service_on_it_never_does_both() {
    let _serial = SERIAL.lock().await;
    let Some(env) = pg().await else { return };
    let a = Node::start(&env.config(Duration::ZERO)).await;
    let b = Node::start(&env.config(Duration::ZERO)).await;
    let (api_a, api_b) = (a.api(OWNER), b.api(OWNER));
    let first = api_a.make_backend(9).await;
    let mut outcomes = std::collections::BTreeMap::new();
    for round in 0..20 {
        let port = BackendPort {
            port_id: api_a.make_port(&first).await,
            ..first.clone()
        };
        let (create_api, delete_api) = if round % 2 == 0 {
            (&api_a, &api_b)
        } else {
            (&api_b, &api_a)
        };
        let path = format!("/v1/{{project_id}}/ports/{}", port.port_id);
        let (created, deleted) = tokio::join!(
            create_api.create(&port, &[(80, 80)]),
            delete_api.send(Method::DELETE, &path, None)
        );
        let outcome = (
            (created.status, created.code().to_string()),
            (deleted.status, deleted.code().to_string()),
        );
        let shown = api_a.send(Method::GET, &path, None).await;
        match (created.status, deleted.status) {
            (200, 409) => {
                assert_eq!(deleted.code(), "VPC.0710");
                assert_eq!(shown.status, 200, "the service's port is gone");
            }
            (400 | 404, 204) => {
                assert_eq!(created.code(), "EndPoint.3008", "{}", created.body);
                assert_eq!(shown.status, 404);
            }
            _ => panic!("round {round}: create and port delete gave {outcome:?}"),
        }
        *outcomes.entry(outcome).or_insert(0) += 1;
    }
    eprintln!("create vs port delete outcomes: {outcomes:?}");
    assert_stored_consistent(&Stored::read(env.url()).await);
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn project_quota_holds_across_nodes_under_concurrent_creates() {
    let _serial = SERIAL.lock().await;
    let Some(env) = pg().await else { return };
    let a = Node::start(&env.config(Duration::ZERO)).await;
    let b = Node::start(&env.config(Duration::ZERO)).await;
    let apis = [a.api(SMALL), b.api(SMALL)];
    let backend = apis[0].make_backend(3).await;

    let answers = create_many(&apis, &backend, 40, |i| {
        vec![(1000 + i as u16, 1000 + i as u16)]
    })
    .await;
    let admitted: Vec<String> = answers
        .iter()
        .filter(|a| a.status == 200)
        .map(|a| id_of(&a.body))
        .collect();
    assert_eq!(admitted.len() as u64, SMALL_QUOTA, "{answers:#?}");
    for a in answers.iter().filter(|a| a.status != 200) {
        assert_eq!((a.status, a.code()), (400, "Endpoint.1018"), "{}", a.body);
    }
    for api in &apis {
        assert_eq!(api.list("").await.1, SMALL_QUOTA);
    }

    // Free three places (deleting through both nodes), then race again for them.
    for (k, id) in admitted.iter().take(3).enumerate() {
        let d = apis[k % 2].try_delete(id).await.expect("transport");
        assert_eq!(d.status, 204, "{}", d.body);
    }
    eventually(SETTLE, || async {
        match apis[1].list("").await.1 {
            n if n == SMALL_QUOTA - 3 => Ok(()),
            n => Err(n),
        }
    })
    .await;
    let answers = create_many(&apis, &backend, 20, |i| {
        vec![(3000 + i as u16, 3000 + i as u16)]
    })
    .await;
    assert_eq!(
        answers.iter().filter(|a| a.status == 200).count(),
        3,
        "{answers:#?}"
    );
    for api in &apis {
        let (items, total) = api.list_all("").await;
        assert_eq!((items.len() as u64, total), (SMALL_QUOTA, SMALL_QUOTA));
    }
    assert_stored_consistent(&Stored::read(env.url()).await);
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_deletes_through_both_nodes_end_with_exact_usage() {
    let _serial = SERIAL.lock().await;
    let Some(env) = pg().await else { return };
    // A short delay makes both reconcilers find the same rows due at the same time.
    let delay = Duration::from_millis(300);
    let a = Node::start(&env.config(delay)).await;
    let b = Node::start(&env.config(delay)).await;
    let apis = [a.api(OWNER), b.api(OWNER)];
    let backend = apis[0].make_backend(4).await;
    const N: usize = 300;
    let ports = |i: usize| vec![(1000 + i as u16, 1000 + i as u16)];

    let answers = create_many(&apis, &backend, N, ports).await;
    assert!(answers.iter().all(|a| a.status == 200), "{answers:#?}");
    wait_none_in(&apis[1], "creating").await;

    // Each service is deleted through the node that did not create it.
    delete_all(&[apis[1].clone(), apis[0].clone()], &answers).await;
    for api in &apis {
        eventually(SETTLE, || async {
            match api.list_all("").await {
                (items, 0) if items.is_empty() => Ok(()),
                (items, total) => Err((items.len(), total)),
            }
        })
        .await;
    }
    let stored = Stored::read(env.url()).await;
    assert_stored_consistent(&stored);
    assert!(stored.claims.is_empty(), "claims left: {:?}", stored.claims);
    assert_eq!(
        stored.usage.get(OWNER.project()),
        Some(&0),
        "usage counter after deleting everything"
    );

    // Every claim was released exactly once: the same mappings can all be made again.
    let again = create_many(&apis, &backend, N, ports).await;
    assert!(again.iter().all(|a| a.status == 200), "{again:#?}");
    assert_eq!(apis[0].list("").await.1, N as u64);
    a.stop().await;
    b.stop().await;
}

/// Runs reconciler passes on each context from several tasks at once until nothing is left in
/// `status`; answers the total the passes reported as moved.
async fn race_reconcilers(
    ctxs: &[std::sync::Arc<vpcep_control::Ctx>],
    probe: &Api,
    status: &str,
) -> u64 {
    let mut set = JoinSet::new();
    for k in 0..6 {
        let ctx = ctxs[k % ctxs.len()].clone();
        let probe = probe.clone();
        let status = status.to_string();
        set.spawn(async move {
            let mut moved = 0;
            let deadline = std::time::Instant::now() + Duration::from_secs(120);
            loop {
                assert!(
                    std::time::Instant::now() < deadline,
                    "rows still {status} after 120 s of reconciler passes"
                );
                let n = vpcep_control::reconciler::reconcile_once(&ctx)
                    .await
                    .unwrap_or_else(|e| panic!("reconciler pass failed: {e}"));
                moved += n;
                if n == 0 && probe.list(&format!("status={status}&limit=1")).await.1 == 0 {
                    return moved;
                }
            }
        });
    }
    let mut total = 0;
    while let Some(r) = set.join_next().await {
        total += r.expect("reconciler task");
    }
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_reconciler_passes_on_two_nodes_move_each_service_once() {
    let _serial = SERIAL.lock().await;
    let Some(env) = pg().await else { return };
    // The serving nodes never finish anything themselves (an hour's delay); two more nodes,
    // opened on the same database with no delay, race their reconciler passes.
    let hour = Duration::from_secs(3600);
    let a = Node::start(&env.config(hour)).await;
    let b = Node::start(&env.config(hour)).await;
    let c = ControlPlane::open(&env.config(Duration::ZERO))
        .await
        .expect("open c");
    let d = ControlPlane::open(&env.config(Duration::ZERO))
        .await
        .expect("open d");
    let ctxs = [c.ctx.clone(), d.ctx.clone()];
    let apis = [a.api(OWNER), b.api(OWNER)];
    let backend = apis[0].make_backend(5).await;
    const N: usize = 600; // more than two reconciler batches

    let answers = create_many(&apis, &backend, N, |i| {
        vec![(1000 + i as u16, 1000 + i as u16)]
    })
    .await;
    assert!(answers.iter().all(|a| a.status == 200));
    assert_eq!(
        race_reconcilers(&ctxs, &apis[0], "creating").await,
        N as u64
    );
    assert_eq!(apis[1].list("status=available&limit=1").await.1, N as u64);

    delete_all(&apis, &answers).await;
    assert_eq!(
        race_reconcilers(&ctxs, &apis[1], "deleting").await,
        N as u64
    );
    let stored = Stored::read(env.url()).await;
    assert_stored_consistent(&stored);
    assert!(stored.services.is_empty() && stored.claims.is_empty());
    assert_eq!(stored.usage.get(OWNER.project()), Some(&0));
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_nodes_starting_at_once_migrate_a_fresh_schema_safely() {
    let _serial = SERIAL.lock().await;
    let Some(env) = pg().await else { return };
    let mut set = JoinSet::new();
    for _ in 0..4 {
        let cfg = env.config(Duration::ZERO);
        set.spawn(async move { ControlPlane::open(&cfg).await });
    }
    let mut nodes = Vec::new();
    while let Some(r) = set.join_next().await {
        let plane = r
            .expect("task")
            .unwrap_or_else(|e| panic!("a node failed to open: {e:#}"));
        nodes.push(Node::serve(plane).await);
    }
    let apis: Vec<Api> = nodes.iter().map(|n| n.api(OWNER)).collect();
    let backend = apis[0].make_backend(6).await;
    let answers = create_many(&apis, &backend, 8, |i| vec![(1000 + i as u16, 80)]).await;
    // One server port shared by all eight: exactly one may have it.
    assert_eq!(answers.iter().filter(|a| a.status == 200).count(), 1);
    let answers = create_many(&apis, &backend, 8, |i| {
        vec![(2000 + i as u16, 2000 + i as u16)]
    })
    .await;
    assert!(answers.iter().all(|a| a.status == 200), "{answers:#?}");
    for api in &apis {
        assert_eq!(api.list("").await.1, 9);
    }
    for n in nodes {
        n.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_binaries_started_at_once_on_a_fresh_schema_all_come_up() {
    let _serial = SERIAL.lock().await;
    let Some(env) = pg().await else { return };
    let mut procs: Vec<Process> = (0..4)
        .map(|k| {
            Process::spawn(
                env.url(),
                Some(&env.accounts),
                "0s",
                env.dir.path(),
                &format!("node{k}.log"),
            )
        })
        .collect();
    for p in &mut procs {
        p.wait_healthy(Duration::from_secs(30)).await;
    }
    let apis: Vec<Api> = procs.iter().map(|p| p.api(OWNER)).collect();
    let backend = apis[3].make_backend(7).await;
    for (k, api) in apis.iter().enumerate() {
        api.create_ok(&backend, &[(1000 + k as u16, 1000 + k as u16)])
            .await;
    }
    for api in &apis {
        assert_eq!(api.list("").await.1, 4);
    }
    for p in &mut procs {
        p.terminate().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_binaries_without_accounts_started_at_once_share_one_default_account() {
    let _serial = SERIAL.lock().await;
    let Some(env) = pg().await else { return };
    let mut procs: Vec<Process> = (0..3)
        .map(|k| {
            Process::spawn(
                env.url(),
                None,
                "0s",
                env.dir.path(),
                &format!("node{k}.log"),
            )
        })
        .collect();
    for p in &mut procs {
        p.wait_healthy(Duration::from_secs(30)).await;
    }
    let creators: Vec<String> = procs
        .iter()
        .map(Process::log_text)
        .filter(|l| l.contains("created the default account"))
        .collect();
    assert_eq!(
        creators.len(),
        1,
        "exactly one node creates the default account: {creators:#?}"
    );
    let field = |name: &str| {
        creators[0]
            .lines()
            .find_map(|l| l.trim().strip_prefix(name))
            .and_then(|rest| rest.trim().strip_prefix('='))
            .map(|v| v.trim().to_string())
            .unwrap_or_else(|| panic!("no {name} in {}", creators[0]))
    };
    let (project, ak, sk) = (
        field("project_id"),
        field("access_key"),
        field("secret_key"),
    );
    for p in &procs {
        let client = vpcep_testkit::client(&p.url, &ak, &sk, &project);
        let r = client
            .send_raw(Method::GET, "/v1/{project_id}/vpc-endpoint-services", None)
            .await
            .expect("transport");
        assert_eq!(r.status, 200, "{:?}", r.body);
    }
    for p in &mut procs {
        p.terminate().await;
    }
}
