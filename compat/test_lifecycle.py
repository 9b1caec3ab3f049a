"""The asynchronous lifecycle, observed on a server started with `--provisioning-delay`:
`creating` lasts for the delay before `available`; delete answers 204 and the service is
`deleting` for the delay, then 404 (what Terraform's waiters poll for)."""

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
    started = time.monotonic()
    svc = create_service(client, service_name=tok)
    assert svc.status == "creating"
    assert show_service(client, svc.id).status == "creating"
    assert [s.id for s in listing(client, endpoint_service_name=tok, status="creating")
            .endpoint_services] == [svc.id]
    assert listing(client, endpoint_service_name=tok, status="available").total_count == 0
    # still creating well before the delay is over (checked only while that is certain)
    if time.monotonic() - started < SLOW_DELAY_SECONDS / 2:
        assert show_service(client, svc.id).status == "creating"

    wait_status(client, svc.id, "available", timeout=SLOW_DELAY_SECONDS + 10)
    assert time.monotonic() - started >= SLOW_DELAY_SECONDS * 0.9
    assert [s.id for s in listing(client, endpoint_service_name=tok, status="available")
            .endpoint_services] == [svc.id]


def test_a_creating_service_can_be_updated(slow_vpcep):
    client = slow_vpcep.client("owner")
    svc = create_service(client)
    resp = client.update_endpoint_service(UpdateEndpointServiceRequest(
        vpc_endpoint_service_id=svc.id,
        body=UpdateEndpointServiceRequestBody(description="while creating")))
    assert resp.description == "while creating"
    assert resp.status == "creating"


def test_delete_goes_through_deleting_then_404(slow_vpcep):
    client = slow_vpcep.client("owner")
    tok = token()
    svc = create_service(client, service_name=tok)
    wait_status(client, svc.id, "available", timeout=SLOW_DELAY_SECONDS + 10)

    started = time.monotonic()
    assert delete_service(client, svc.id).status_code == 204
    assert show_service(client, svc.id).status == "deleting"
    assert [s.id for s in listing(client, endpoint_service_name=tok, status="deleting")
            .endpoint_services] == [svc.id]

    # a service being deleted cannot be modified; deleting it again is accepted
    expect_error(lambda: client.update_endpoint_service(UpdateEndpointServiceRequest(
        vpc_endpoint_service_id=svc.id,
        body=UpdateEndpointServiceRequestBody(approval_enabled=False))), 400, "EndPoint.3045")
    expect_error(lambda: client.update_endpoint_service_name(UpdateEndpointServiceNameRequest(
        vpc_endpoint_service_id=svc.id,
        body=UpdateEndpointServiceNameRequestBody(endpoint_service_name="late"))),
        400, "EndPoint.3045")
    assert delete_service(client, svc.id).status_code == 204
    assert status_or_404(client, svc.id) == "deleting"

    wait_status(client, svc.id, "404", timeout=SLOW_DELAY_SECONDS + 10)
    assert time.monotonic() - started >= SLOW_DELAY_SECONDS * 0.9
    assert listing(client, endpoint_service_name=tok).total_count == 0
    expect_error(lambda: delete_service(client, svc.id), 404, "EndPoint.0005")


def test_delete_while_creating(slow_vpcep):
    client = slow_vpcep.client("owner")
    svc = create_service(client)
    assert delete_service(client, svc.id).status_code == 204
    assert status_or_404(client, svc.id) == "deleting"
    # it must never come back as available on its way out
    seen = set()
    deadline = time.monotonic() + SLOW_DELAY_SECONDS + 10
    while time.monotonic() < deadline:
        st = status_or_404(client, svc.id)
        seen.add(st)
        if st == "404":
            break
        time.sleep(0.05)
    assert seen <= {"deleting", "404"}, seen
    assert "404" in seen
