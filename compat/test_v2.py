"""The v2 operations: add-server-resources (#2, 204), service upgrade (#29, 204, no body as the
SDK sends it) and endpoint upgrade (#30, 202)."""

import json

from huaweicloudsdkvpcep.v1 import (
    AddEndpointServiceServerResourceRequest,
    AddEndpointServiceServerResourceRequestBody,
    ListEndpointServiceRequest,
    ServerResource,
    UpgradeEndpointRequest,
    UpgradeEndpointRequestBody,
    UpgradeEndpointServiceRequest,
)

from vpcep_support import (
    Window,
    create_endpoint,
    create_service,
    delete_service,
    expect_error,
    new_uuid,
    outcome,
    ready_service,
    show_endpoint,
    show_service,
    wait_endpoint,
    wait_status,
)


def add_resources(client, sid, *resources):
    return client.add_endpoint_service_server_resource(AddEndpointServiceServerResourceRequest(
        vpc_endpoint_service_id=sid, body=AddEndpointServiceServerResourceRequestBody(
            server_resources=[ServerResource(resource_id=r, availability_zone_id=az)
                              for r, az in resources])))


def upgrade_service(client, sid):
    return client.upgrade_endpoint_service(UpgradeEndpointServiceRequest(
        vpc_endpoint_service_id=sid))


def upgrade_endpoint(client, eid, action="start"):
    return client.upgrade_endpoint(UpgradeEndpointRequest(
        vpc_endpoint_id=eid, body=UpgradeEndpointRequestBody(action=action)))


def test_add_server_resources(vpcep, owner, accounts):
    svc = create_service(owner, server_type="LB")
    # Backend resources are load balancers (ports) of the owner's project in the service's VPC.
    first, second = (vpcep.backend("owner", "LB").port_id for _ in range(2))
    resp = add_resources(owner, svc.id, (first, "compat-1a"), (second, None))
    assert resp.status_code == 204
    assert not resp.raw_content
    # the same resource again is accepted and kept once
    assert add_resources(owner, svc.id, (first, "compat-1a")).status_code == 204
    raw = vpcep.raw("GET", f"/v1/{accounts['owner'].project}/vpc-endpoint-services/{svc.id}")
    kept = raw.json().get("server_resources")
    if kept is not None:  # not in the SDK model; when shown, it lists each resource once
        assert sorted(r["resource_id"] for r in kept) == sorted([first, second])


def test_add_server_resources_errors(vpcep, owner, consumer):
    svc = create_service(owner)
    mine = vpcep.backend("owner", "LB").port_id
    expect_error(lambda: add_resources(owner, svc.id), 400, "EndPoint.0002")
    expect_error(lambda: add_resources(owner, svc.id, ("", None)), 400, "EndPoint.0002")
    expect_error(lambda: add_resources(owner, new_uuid(), (mine, None)),
                 404, "EndPoint.0005")
    expect_error(lambda: add_resources(consumer, svc.id, (mine, None)),
                 404, "EndPoint.0005")
    # Like port_id at create: a port id, of the caller's project, in the service's VPC.
    expect_error(lambda: add_resources(owner, svc.id, ("elb-1", None)), 400, "EndPoint.3003")
    expect_error(lambda: add_resources(owner, svc.id, (new_uuid(), None)), 400, "EndPoint.3008")
    theirs = vpcep.backend("consumer", "LB").port_id
    expect_error(lambda: add_resources(owner, svc.id, (theirs, None)), 400, "EndPoint.3008")
    elsewhere = vpcep.backend("owner", "LB", network=vpcep.new_network("owner")).port_id
    expect_error(lambda: add_resources(owner, svc.id, (elsewhere, None)), 400, "EndPoint.3042")


def test_service_upgrade_adds_the_professional_edition(owner):
    svc = create_service(owner)
    assert show_service(owner, svc.id).supported_editions == ["basic"]
    resp = upgrade_service(owner, svc.id)
    assert resp.status_code == 204
    assert not resp.raw_content
    assert sorted(show_service(owner, svc.id).supported_editions) == ["basic", "profession"]
    listed = owner.list_endpoint_service(ListEndpointServiceRequest(id=svc.id))
    assert sorted(listed.endpoint_services[0].supported_editions) == ["basic", "profession"]
    assert upgrade_service(owner, svc.id).status_code == 204  # again: no change
    assert sorted(show_service(owner, svc.id).supported_editions) == ["basic", "profession"]


def test_service_upgrade_accepts_the_documented_body(vpcep, owner, accounts):
    """The newer docs describe {"action": "upgrade"|"rollback"}; the SDK sends no body."""
    svc = create_service(owner)
    path = f"/v2/{accounts['owner'].project}/vpc-endpoint-services/{svc.id}/upgrade"
    r = vpcep.raw("POST", path, body=json.dumps({"action": "upgrade"}).encode())
    assert r.status_code == 204, r.text
    assert "profession" in show_service(owner, svc.id).supported_editions
    r = vpcep.raw("POST", path, body=json.dumps({"action": "rollback"}).encode())
    assert r.status_code == 204, r.text
    assert show_service(owner, svc.id).supported_editions == ["basic"]
    r = vpcep.raw("POST", path, body=json.dumps({"action": "sideways"}).encode())
    assert r.status_code == 400, r.text


def test_service_upgrade_errors(owner, consumer):
    svc = create_service(owner)
    expect_error(lambda: upgrade_service(owner, new_uuid()), 404, "EndPoint.0005")
    expect_error(lambda: upgrade_service(consumer, svc.id), 404, "EndPoint.0005")


def test_endpoint_upgrade(owner):
    svc = ready_service(owner, approval_enabled=False)
    ep = create_endpoint(owner, svc.id)
    wait_endpoint(owner, ep.id, "accepted")
    before = show_endpoint(owner, ep.id).specification_name
    # the service must offer the professional edition first
    expect_error(lambda: upgrade_endpoint(owner, ep.id), 400, "EndPoint.0002")
    upgrade_service(owner, svc.id)
    resp = upgrade_endpoint(owner, ep.id)
    assert resp.status_code == 202
    after = show_endpoint(owner, ep.id)
    assert after.status == "accepted"
    assert after.specification_name and after.specification_name != before


def test_endpoint_upgrade_errors(owner):
    svc = ready_service(owner, approval_enabled=False)
    ep = create_endpoint(owner, svc.id)
    expect_error(lambda: upgrade_endpoint(owner, ep.id, action="stop"), 400, "EndPoint.0007")
    expect_error(lambda: upgrade_endpoint(owner, new_uuid()), 404, "EndPoint.2006")


def test_deleting_service_cannot_be_upgraded(slow_vpcep):
    client = slow_vpcep.client("owner")
    slow_vpcep.network("owner")
    window = Window()
    svc = create_service(client)
    delete_service(client, svc.id)
    up = outcome(lambda: upgrade_service(client, svc.id))
    port = slow_vpcep.backend("owner", "LB").port_id
    add = outcome(lambda: add_resources(client, svc.id, (port, None)))
    if window.open():
        for e in (up, add):
            assert (getattr(e, "status_code", None), getattr(e, "error_code", None)) == \
                (400, "EndPoint.3045"), e
    wait_status(client, svc.id, "404", timeout=15)
