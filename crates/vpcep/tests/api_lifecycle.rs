//! The endpoint-service status machine as clients see it: `creating` → `available` by the
//! reconciler (after the provisioning delay), delete → 204 → `deleting` → 404, what `deleting`
//! allows, and that a restarted server finishes transitions the previous one left.

use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use vpcep_testkit::app::*;

api_tests!(
    create_answers_creating_and_the_reconciler_makes_it_available,
    service_stays_creating_until_the_provisioning_delay_passes = |b| b.provisioning_delay(DELAY),
    changes_made_while_creating_survive_the_transition = |b| b.provisioning_delay(FOREVER),
    delete_answers_204_then_the_service_goes_away,
    deleting_service_accepts_a_second_delete_and_refuses_changes =
        |b| b.provisioning_delay(FOREVER),
    deleted_service_frees_its_ports,
    restarted_server_finishes_interrupted_transitions = |b| b.provisioning_delay(FOREVER),
);

/// Long enough that no transition completes during a test.
const FOREVER: Duration = Duration::from_secs(3600);

/// The provisioning delay of `service_stays_creating_until_the_provisioning_delay_passes`.
const DELAY: Duration = Duration::from_millis(1500);

async fn create_answers_creating_and_the_reconciler_makes_it_available(app: &mut TestApp) {
    let owner = app.owner();
    let created = owner.create_ok(&owner.service().await).await;
    assert_eq!(created["status"], "creating");
    let id = id_of(&created);
    let available = owner.wait_status(&id, "available").await;
    for key in ["id", "service_name", "ports", "port_id", "created_at"] {
        assert_eq!(available[key], created[key], "{key}");
    }
    assert!(available["updated_at"].as_str() >= created["created_at"].as_str());
    let (ids, total) = owner.list_ids("status=available").await;
    assert_eq!((ids, total), (vec![id.clone()], 1));
    assert_eq!(owner.list_ids("status=creating").await, (vec![], 0));
}

async fn service_stays_creating_until_the_provisioning_delay_passes(app: &mut TestApp) {
    let delay = DELAY;
    // The server keeps times in whole milliseconds, so its view may run up to 1 ms behind.
    let slack = Duration::from_millis(2);
    let owner = app.owner();
    let started = Instant::now();
    let created = owner.create_ok(&owner.service().await).await;
    assert_eq!(created["status"], "creating");
    let id = id_of(&created);
    // Every answer that arrived before the delay had passed since the create was sent says
    // `creating` (the server read it even earlier).
    let looks_before = AtomicUsize::new(0);
    let available_after = eventually(SETTLE, || async {
        let status = owner.show(&id).await.ok(200)["status"].clone();
        let answered = started.elapsed();
        if answered + slack < delay {
            assert_eq!(status, "creating", "after {answered:?} of {delay:?}");
            looks_before.fetch_add(1, Ordering::Relaxed);
        }
        match status.as_str() {
            Some("available") => Ok(answered),
            _ => Err(status),
        }
    })
    .await;
    assert!(
        looks_before.into_inner() > 0,
        "never looked before the delay passed"
    );
    assert!(
        available_after + slack >= delay,
        "available after {available_after:?}, before the delay of {delay:?}"
    );
}

async fn changes_made_while_creating_survive_the_transition(app: &mut TestApp) {
    // The service stays `creating` for as long as the first server runs; the second one
    // finishes the transition.
    let owner = app.owner();
    let id = id_of(&owner.create_ok(&owner.service().await).await);
    let updated = owner
        .update(
            &id,
            &json!({"description": "changed early", "ports": [port(9000, 9001)]}),
        )
        .await
        .ok(200);
    assert_eq!(updated["status"], "creating");
    let renamed = owner.rename(&id, "early").await.ok(200);
    app.restart(Duration::ZERO).await;
    let available = app.owner().wait_status(&id, "available").await;
    assert_eq!(available["description"], "changed early");
    assert_eq!(available["ports"], updated["ports"]);
    assert_eq!(available["service_name"], renamed["endpoint_service_name"]);
}

async fn delete_answers_204_then_the_service_goes_away(app: &mut TestApp) {
    let owner = app.owner();
    let keep = id_of(&owner.create_ok(&owner.service().await).await);
    let id = id_of(&owner.create_ok(&owner.service().await).await);
    owner.wait_status(&id, "available").await;
    let r = owner.delete(&id).await;
    r.ok(204);
    assert!(r.body.is_empty(), "204 with a body: {}", r.text());
    // Right after: still visible as `deleting`, or already gone.
    let r = owner.show(&id).await;
    match r.status {
        200 => assert_eq!(r.json()["status"], "deleting"),
        _ => {
            r.err(404, "EndPoint.0005");
        }
    }
    owner.wait_gone(&id).await;
    owner.delete(&id).await.err(404, "EndPoint.0005");
    owner
        .update(&id, &json!({"description": "x"}))
        .await
        .err(404, "EndPoint.0005");
    owner.rename(&id, "x").await.err(404, "EndPoint.0005");
    let (ids, total) = owner.list_ids("").await;
    assert_eq!((ids, total), (vec![keep.clone()], 1));
    app.owner()
        .describe(&format!("id={id}"))
        .await
        .err(404, "EndPoint.0005");
    owner.show(&keep).await.ok(200);
}

async fn deleting_service_accepts_a_second_delete_and_refuses_changes(app: &mut TestApp) {
    let owner = app.owner();
    let backing = owner.fresh_port().await;
    let id = id_of(&owner.create_ok(&service_on(&backing, &[(80, 8080)])).await);
    // A service may be deleted while it is still being created.
    owner.delete(&id).await.ok(204);
    let shown = owner.show(&id).await.ok(200);
    assert_eq!(shown["status"], "deleting");
    owner.delete(&id).await.ok(204);
    let again = owner.show(&id).await.ok(200);
    assert_eq!(again["status"], "deleting");
    assert_eq!(again["updated_at"], shown["updated_at"]);
    owner
        .update(&id, &json!({"description": "too late"}))
        .await
        .err(400, "EndPoint.3045");
    owner.rename(&id, "late").await.err(400, "EndPoint.3045");
    let (ids, total) = owner.list_ids("status=deleting").await;
    assert_eq!((ids, total), (vec![id.clone()], 1));
    // Until it is gone it keeps its ports; both refusals name it (claims keep ids as bytes).
    let msg = owner
        .create(&service_on(&backing, &[(80, 8080)]))
        .await
        .err(400, "EndPoint.3044");
    assert!(msg.contains(&id), "{msg}");
    // ...and its port cannot be deleted.
    let msg = owner
        .delete_port(&backing.port_id)
        .await
        .err(409, "VPC.0710");
    assert!(msg.contains(&id), "{msg}");
}

async fn deleted_service_frees_its_ports(app: &mut TestApp) {
    let owner = app.owner();
    let backing = owner.fresh_port().await;
    let id = id_of(&owner.create_ok(&service_on(&backing, &[(80, 8080)])).await);
    owner.delete(&id).await.ok(204);
    owner.wait_gone(&id).await;
    assert_eq!(owner.list_ids("").await, (vec![], 0));
    // A new service may take the same ports on the same port.
    let again = id_of(&owner.create_ok(&service_on(&backing, &[(80, 8080)])).await);
    owner.wait_status(&again, "available").await;
    owner.delete(&again).await.ok(204);
    owner.wait_gone(&again).await;
    // With no service left on it, the port itself may go.
    owner.delete_port(&backing.port_id).await.ok(204);
    owner.show_port(&backing.port_id).await.err(404, "VPC.0702");
}

async fn restarted_server_finishes_interrupted_transitions(app: &mut TestApp) {
    let owner = app.owner();
    let backing = owner.fresh_port().await;
    let creating = id_of(&owner.create_ok(&service_on(&backing, &[(80, 8080)])).await);
    let doomed = id_of(&owner.create_ok(&service_on(&backing, &[(81, 8081)])).await);
    owner.delete(&doomed).await.ok(204);
    assert_eq!(owner.show(&creating).await.ok(200)["status"], "creating");
    assert_eq!(owner.show(&doomed).await.ok(200)["status"], "deleting");

    // The first server stops with both transitions unfinished; a new one on the same database
    // with no delay must finish them.
    app.restart(Duration::ZERO).await;
    let owner = app.owner();
    owner.wait_status(&creating, "available").await;
    owner.wait_gone(&doomed).await;
    let (ids, total) = owner.list_ids("").await;
    assert_eq!((ids, total), (vec![creating.clone()], 1));
    // The finished deletion released its ports; the surviving service still holds its own.
    owner.create_ok(&service_on(&backing, &[(81, 8081)])).await;
    owner
        .create(&service_on(&backing, &[(80, 9999)]))
        .await
        .err(400, "EndPoint.3044");
}
