"""The asynchronous lifecycle, observed on a server started with `--provisioning-delay`:
`creating` lasts for the delay before `available`; delete answers 204 and the service is
`deleting` for the delay, then 404 (what Terraform's waiters poll for).

Transitional states are asserted only for answers received while the delay cannot yet have
passed (measured from before the request that started it), so a slow machine cannot turn a
correct server into a failure; if it is so slow that nothing transitional could be observed,
the test says so instead of passing vacuously."""

import time

from huaweicloudsdkvpcep.v1 import (
    ListEndpointServiceRequest,
    UpdateEndpointServiceNameRequest,
    UpdateEndpointServiceNameRequestBody,
    UpdateEndpointServiceRequest,
    UpdateEndpointServiceRequestBody,
)

from vpcep_support import (
    SLOW_DELAY_SECONDS,
    Window,
    create_service,
    delete_service,
    expect_error,
    show_service,
    status_or_404,
    token,
    wait_status,
)


def listing(client, **q):
    return client.list_endpoint_service(ListEndpointServiceRequest(**q))


def test_service_stays_creating_then_becomes_available(slow_vpcep):
    client = slow_vpcep.client("owner")
    tok = token()
    window = Window()
    svc = create_service(client, service_name=tok)
    assert svc.status == "creating"

    status = show_service(client, svc.id).status
    if window.open():
        assert status == "creating"
    creating = [s.id for s in listing(client, endpoint_service_name=tok, status="creating")
                .endpoint_services]
    available = listing(client, endpoint_service_name=tok, status="available").total_count
    if window.open():
        assert creating == [svc.id]
        assert available == 0
    assert window.open(), "machine too slow to observe `creating`; raise SLOW_DELAY_SECONDS"

    wait_status(client, svc.id, "available", timeout=SLOW_DELAY_SECONDS + 10)
    assert window.elapsed() >= SLOW_DELAY_SECONDS * 0.9
    assert [s.id for s in listing(client, endpoint_service_name=tok, status="available")
            .endpoint_services] == [svc.id]


def test_a_creating_service_can_be_updated(slow_vpcep):
    client = slow_vpcep.client("owner")
    window = Window()
    svc = create_service(client)
    resp = client.update_endpoint_service(UpdateEndpointServiceRequest(
        vpc_endpoint_service_id=svc.id,
        body=UpdateEndpointServiceRequestBody(description="while creating")))
    assert resp.description == "while creating"
    if window.open():
        assert resp.status == "creating"


def test_delete_goes_through_deleting_then_404(slow_vpcep):
    client = slow_vpcep.client("owner")
    tok = token()
    svc = create_service(client, service_name=tok)
    wait_status(client, svc.id, "available", timeout=SLOW_DELAY_SECONDS + 10)

    window = Window()
    assert delete_service(client, svc.id).status_code == 204
    status = status_or_404(client, svc.id)
    deleting = [s.id for s in listing(client, endpoint_service_name=tok, status="deleting")
                .endpoint_services]
    if window.open():
        assert status == "deleting"
        assert deleting == [svc.id]

        # a service being deleted cannot be modified; deleting it again is accepted
        update = expect_error(lambda: client.update_endpoint_service(UpdateEndpointServiceRequest(
            vpc_endpoint_service_id=svc.id,
            body=UpdateEndpointServiceRequestBody(approval_enabled=False))), 400, "EndPoint.3045")
        rename = expect_error(lambda: client.update_endpoint_service_name(
            UpdateEndpointServiceNameRequest(
                vpc_endpoint_service_id=svc.id,
                body=UpdateEndpointServiceNameRequestBody(endpoint_service_name="late"))),
            400, "EndPoint.3045")
        assert update and rename
        assert delete_service(client, svc.id).status_code == 204
        status = status_or_404(client, svc.id)
        if window.open():
            assert status == "deleting"
    assert window.elapsed() < SLOW_DELAY_SECONDS, \
        "machine too slow to observe `deleting`; raise SLOW_DELAY_SECONDS"

    wait_status(client, svc.id, "404", timeout=SLOW_DELAY_SECONDS + 10)
    assert window.elapsed() >= SLOW_DELAY_SECONDS * 0.9
    assert listing(client, endpoint_service_name=tok).total_count == 0
    expect_error(lambda: delete_service(client, svc.id), 404, "EndPoint.0005")


def test_delete_while_creating_never_shows_available(slow_vpcep):
    client = slow_vpcep.client("owner")
    svc = create_service(client)
    window = Window()
    assert delete_service(client, svc.id).status_code == 204
    seen = []
    deadline = time.monotonic() + SLOW_DELAY_SECONDS + 10
    while time.monotonic() < deadline:
        st = status_or_404(client, svc.id)
        seen.append(st)
        if st == "404":
            break
        time.sleep(0.05)
    assert set(seen) <= {"deleting", "404"}, seen
    assert seen[-1] == "404", seen
    assert window.elapsed() >= SLOW_DELAY_SECONDS * 0.9
