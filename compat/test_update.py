"""Update (#25), rename (#26) and delete (#10) of endpoint services."""

import uuid

import pytest
from huaweicloudsdkvpcep.v1 import (
    UpdateEndpointServiceNameRequest,
    UpdateEndpointServiceNameRequestBody,
    UpdateEndpointServiceRequest,
    UpdateEndpointServiceRequestBody,
)

from vpcep_support import (
    REGION,
    create_service,
    delete_service,
    expect_error,
    ports,
    show_service,
    status_or_404,
    token,
    wait_status,
    wait_until,
)


def update(client, sid, **fields):
    return client.update_endpoint_service(UpdateEndpointServiceRequest(
        vpc_endpoint_service_id=sid, body=UpdateEndpointServiceRequestBody(**fields)))


def rename(client, sid, name):
    return client.update_endpoint_service_name(UpdateEndpointServiceNameRequest(
        vpc_endpoint_service_id=sid,
        body=UpdateEndpointServiceNameRequestBody(endpoint_service_name=name)))


# --- update ---------------------------------------------------------------------------------------

def test_update_approval_enabled(owner):
    s = create_service(owner)
    assert s.approval_enabled is True
    resp = update(owner, s.id, approval_enabled=False)
    assert resp.status_code == 200
    assert resp.approval_enabled is False
    assert show_service(owner, s.id).approval_enabled is False
    assert update(owner, s.id, approval_enabled=True).approval_enabled is True


def test_update_service_name_rebuilds_the_full_name(owner):
    s = create_service(owner, service_name="old" + token(4))
    new = "new" + token(6)
    resp = update(owner, s.id, service_name=new)
    assert resp.service_name == f"{REGION}.{new}.{s.id}"
    assert show_service(owner, s.id).service_name == f"{REGION}.{new}.{s.id}"
    # an empty name removes it
    assert update(owner, s.id, service_name="").service_name == f"{REGION}.{s.id}"


def test_update_bad_service_name(owner):
    s = create_service(owner)
    expect_error(lambda: update(owner, s.id, service_name="a.b"), 400, "EndPoint.1003")
    expect_error(lambda: update(owner, s.id, service_name="x" * 17), 400, "EndPoint.1003")


def test_update_replaces_the_ports(owner):
    s = create_service(owner, ports=ports((80, 8080), (81, 8081)))
    resp = update(owner, s.id, ports=ports((3, 30), (1, 10), (2, 20)))
    want = [(3, 30, "TCP"), (1, 10, "TCP"), (2, 20, "TCP")]
    assert [(p.client_port, p.server_port, p.protocol) for p in resp.ports] == want
    shown = show_service(owner, s.id)
    assert [(p.client_port, p.server_port, p.protocol) for p in shown.ports] == want


@pytest.mark.parametrize("bad,code", [
    ([], "EndPoint.3043"),
    ([(0, 1)], "EndPoint.3043"),
    ([(1, 1), (1, 1)], "EndPoint.3043"),
    ([(i, i) for i in range(1, 202)], "EndPoint.3074"),
])
def test_update_validates_ports(owner, bad, code):
    s = create_service(owner, ports=ports((80, 8080)))
    expect_error(lambda: update(owner, s.id, ports=ports(*bad)), 400, code)
    assert [(p.client_port, p.server_port) for p in show_service(owner, s.id).ports] == [(80, 8080)]


def test_update_bad_protocol(owner):
    s = create_service(owner)
    expect_error(lambda: update(owner, s.id, ports=ports((1, 1), protocol="UDP")),
                 400, "EndPoint.3075")


@pytest.mark.parametrize("mode", ["toa_open", "proxy_open", "open", "proxy_vni", "close"])
def test_update_tcp_proxy(owner, mode):
    s = create_service(owner, tcp_proxy="open" if mode == "close" else "close")
    assert update(owner, s.id, tcp_proxy=mode).tcp_proxy == mode
    assert show_service(owner, s.id).tcp_proxy == mode


def test_update_bad_tcp_proxy(owner):
    s = create_service(owner)
    expect_error(lambda: update(owner, s.id, tcp_proxy="on"), 400, "EndPoint.0002")


def test_update_description(owner):
    s = create_service(owner, description="before")
    assert update(owner, s.id, description="after").description == "after"
    assert show_service(owner, s.id).description == "after"
    assert update(owner, s.id, description="").description == ""
    expect_error(lambda: update(owner, s.id, description="<script>"), 400, "EndPoint.0002")
    expect_error(lambda: update(owner, s.id, description="d" * 129), 400, "EndPoint.0002")


def test_update_leaves_other_fields_alone(owner):
    name = "keep" + token(4)
    s = create_service(owner, service_name=name, description="desc", approval_enabled=False,
                       tcp_proxy="proxy_open", ports=ports((5, 50)))
    resp = update(owner, s.id, description="changed")
    assert resp.service_name == f"{REGION}.{name}.{s.id}"
    assert resp.approval_enabled is False
    assert resp.tcp_proxy == "proxy_open"
    assert [(p.client_port, p.server_port) for p in resp.ports] == [(5, 50)]
    assert resp.port_id == s.port_id and resp.vpc_id == s.vpc_id


def test_update_unknown_service_is_404(owner):
    expect_error(lambda: update(owner, str(uuid.uuid4()), approval_enabled=False),
                 404, "EndPoint.0005")
    expect_error(lambda: update(owner, "nope", approval_enabled=False), 404, "EndPoint.0005")


# --- rename ---------------------------------------------------------------------------------------

def test_rename_answers_the_full_name(owner):
    s = create_service(owner)
    name = "ren" + token(6)
    resp = rename(owner, s.id, name)
    assert resp.status_code == 200
    assert resp.endpoint_service_name == f"{REGION}.{name}.{s.id}"
    assert show_service(owner, s.id).service_name == f"{REGION}.{name}.{s.id}"


def test_rename_to_empty_removes_the_short_name(owner):
    s = create_service(owner, service_name="had" + token(4))
    assert rename(owner, s.id, "").endpoint_service_name == f"{REGION}.{s.id}"
    assert show_service(owner, s.id).service_name == f"{REGION}.{s.id}"


@pytest.mark.parametrize("name", ["x" * 17, "a.b", "a b"])
def test_rename_bad_name(owner, name):
    s = create_service(owner)
    expect_error(lambda: rename(owner, s.id, name), 400, "EndPoint.1003")


def test_rename_unknown_service_is_404(owner):
    expect_error(lambda: rename(owner, str(uuid.uuid4()), "x"), 404, "EndPoint.0005")


# --- delete ---------------------------------------------------------------------------------------

def test_delete_answers_204_then_the_service_goes_away(owner):
    s = create_service(owner)
    wait_status(owner, s.id, "available")
    resp = delete_service(owner, s.id)
    assert resp.status_code == 204
    first = status_or_404(owner, s.id)
    assert first in ("deleting", "404"), first
    wait_status(owner, s.id, "404")


def test_delete_of_a_creating_service(owner):
    s = create_service(owner)
    assert delete_service(owner, s.id).status_code == 204
    wait_status(owner, s.id, "404")


def test_delete_unknown_service_is_404(owner):
    expect_error(lambda: delete_service(owner, str(uuid.uuid4())), 404, "EndPoint.0005")
    expect_error(lambda: delete_service(owner, "not-a-uuid"), 404, "EndPoint.0005")


def test_delete_after_gone_is_404(owner):
    s = create_service(owner)
    delete_service(owner, s.id)
    wait_status(owner, s.id, "404")
    expect_error(lambda: delete_service(owner, s.id), 404, "EndPoint.0005")
    expect_error(lambda: update(owner, s.id, description="x"), 404, "EndPoint.0005")
    expect_error(lambda: rename(owner, s.id, "x"), 404, "EndPoint.0005")


def test_status_never_leaves_the_documented_set(owner):
    """Pollers fail on any status outside creating/available/deleting (then 404)."""
    s = create_service(owner)
    seen = set()

    def probe():
        st = status_or_404(owner, s.id)
        seen.add(st)
        return st

    wait_until(probe, lambda st: st == "available", what="available")
    delete_service(owner, s.id)
    wait_until(probe, lambda st: st == "404", what="gone")
    assert seen <= {"creating", "available", "deleting", "404"}, seen
