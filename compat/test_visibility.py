"""What other accounts see: describe (#16), public services (#19), gateway services."""

import json
import uuid

from huaweicloudsdkvpcep.v1 import (
    ListServiceDescribeDetailsRequest,
    ListServicePublicDetailsRequest,
)

from vpcep_support import create_service, delete_service, expect_error, token, wait_status

DESCRIBE_FIELDS = {"id", "service_name", "service_type", "created_at", "is_charge",
                   "public_border_group", "enable_policy"}
BACKEND_FIELDS = {"port_id", "vpc_id", "ports", "project_id", "domain_id", "server_type",
                  "tcp_proxy", "approval_enabled", "ip", "tags", "description"}


def describe(client, **q):
    return client.list_service_describe_details(ListServiceDescribeDetailsRequest(**q))


def public(client, **q):
    return client.list_service_public_details(ListServicePublicDetailsRequest(**q))


# --- describe -------------------------------------------------------------------------------------

def check_summary(resp, svc):
    assert resp.status_code == 200
    assert resp.id == svc.id
    assert resp.service_name == svc.service_name
    assert resp.service_type == "interface"
    assert isinstance(resp.is_charge, bool)
    assert isinstance(resp.enable_policy, bool)
    assert resp.public_border_group
    raw = json.loads(resp.raw_content)
    assert set(raw) <= DESCRIBE_FIELDS | {"request_id"}, sorted(raw)
    assert not set(raw) & BACKEND_FIELDS, sorted(set(raw) & BACKEND_FIELDS)
    assert raw["created_at"]


def test_describe_by_id_from_another_account(owner, consumer):
    svc = create_service(owner, service_name="dsc" + token(6))
    check_summary(describe(consumer, id=svc.id), svc)


def test_describe_by_full_name_from_another_account(owner, consumer):
    svc = create_service(owner, service_name="dsc" + token(6))
    check_summary(describe(consumer, endpoint_service_name=svc.service_name), svc)


def test_describe_unnamed_service_by_full_name(owner, consumer):
    svc = create_service(owner)
    assert describe(consumer, endpoint_service_name=svc.service_name).id == svc.id


def test_describe_own_service(owner):
    svc = create_service(owner)
    check_summary(describe(owner, id=svc.id), svc)


def test_describe_needs_id_or_name(consumer):
    expect_error(lambda: describe(consumer), 400, "EndPoint.0002")


def test_describe_unknown_is_404(owner, consumer):
    expect_error(lambda: describe(consumer, id=str(uuid.uuid4())), 404, "EndPoint.0005")
    expect_error(lambda: describe(consumer, endpoint_service_name=f"compat-1.{token()}"),
                 404, "EndPoint.0005")


def test_describe_by_name_is_not_a_substring_match(owner, consumer):
    name = "exact" + token(6)
    svc = create_service(owner, service_name=name)
    expect_error(lambda: describe(consumer, endpoint_service_name=name), 404, "EndPoint.0005")
    assert describe(consumer, endpoint_service_name=svc.service_name).id == svc.id


def test_describe_of_a_deleted_service_is_404(owner, consumer):
    svc = create_service(owner)
    delete_service(owner, svc.id)
    wait_status(owner, svc.id, "404")
    expect_error(lambda: describe(consumer, id=svc.id), 404, "EndPoint.0005")


# --- public services and gateway services ---------------------------------------------------------

def test_gateway_service_by_non_operator_is_forbidden(owner, consumer):
    expect_error(lambda: create_service(owner, service_type="gateway"), 403, "EndPoint.0004")
    expect_error(lambda: create_service(consumer, service_type="gateway"), 403, "EndPoint.0004")


def test_gateway_service_by_operator(operator):
    svc = create_service(operator, service_type="gateway", service_name="gw" + token(6))
    assert svc.service_type == "gateway"
    wait_status(operator, svc.id, "available")


def test_public_list_shows_only_operator_services(owner, consumer, operator, accounts):
    tok = token()
    gw = create_service(operator, service_type="gateway", service_name=f"{tok}gw")
    itf = create_service(operator, service_name=f"{tok}if")
    private = create_service(owner, service_name=f"{tok}own")
    foreign = create_service(consumer, service_name=f"{tok}con")

    for viewer in (consumer, owner, operator):
        resp = public(viewer, endpoint_service_name=tok)
        got = {s.id: s for s in resp.endpoint_services}
        assert set(got) == {gw.id, itf.id}, sorted(got)
        assert resp.total_count == 2
        assert private.id not in got and foreign.id not in got
        assert got[gw.id].service_type == "gateway"
        assert got[itf.id].service_type == "interface"
        assert got[gw.id].service_name == gw.service_name
        for s in got.values():
            assert s.owner == accounts["operator"].domain_id
            assert isinstance(s.is_charge, bool)


def test_public_list_filters_and_pages(consumer, operator):
    tok = token()
    made = []
    for i in range(3):
        made.append(create_service(operator, service_name=f"{tok}{i}").id)
    assert [s.id for s in public(consumer, id=made[1]).endpoint_services] == [made[1]]
    asc = public(consumer, endpoint_service_name=tok.upper(), sort_key="created_at",
                 sort_dir="asc")
    assert [s.id for s in asc.endpoint_services] == made
    page = public(consumer, endpoint_service_name=tok, limit=1, offset=1, sort_dir="asc")
    assert [s.id for s in page.endpoint_services] == [made[1]]
    assert page.total_count == 3
    past = public(consumer, endpoint_service_name=tok, offset=10)
    assert past.endpoint_services == [] and past.total_count == 3


def test_public_list_bad_parameters(consumer):
    expect_error(lambda: public(consumer, limit=0), 400, "EndPoint.0006")
    expect_error(lambda: public(consumer, limit=1001), 400, "EndPoint.0006")
    expect_error(lambda: public(consumer, offset=-1), 400, "EndPoint.0010")
    expect_error(lambda: public(consumer, sort_key="name"), 400, "EndPoint.0017")
    expect_error(lambda: public(consumer, sort_dir="up"), 400, "EndPoint.0018")
