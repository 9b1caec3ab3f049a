"""List endpoint services (#12): filters, sorting, paging and their error codes.

Every test creates its own services under a unique name token and filters on it, so services
made by other tests never show up in its pages or totals."""

import time

import pytest
from huaweicloudsdkvpcep.v1 import (
    ListEndpointServiceRequest,
    UpdateEndpointServiceRequest,
    UpdateEndpointServiceRequestBody,
)

from vpcep_support import create_service, delete_service, expect_error, token, wait_status


def listing(client, **q):
    return client.list_endpoint_service(ListEndpointServiceRequest(**q))


def ids(resp):
    return [s.id for s in resp.endpoint_services]


def make(client, tok, n, prefix=""):
    """n services named `{prefix}{tok}{i}`, created one after another (oldest first)."""
    out = []
    for i in range(n):
        out.append(create_service(client, service_name=f"{prefix}{tok}{i}"))
        time.sleep(0.002)  # distinct creation instants, so the expected order is unambiguous
    return [s.id for s in out]


# --- filters ------------------------------------------------------------------------------------

def test_name_filter_is_a_case_insensitive_substring(owner):
    tok = token()
    a, b = make(owner, tok, 2)
    c = create_service(owner, service_name=f"x{tok}Z").id
    other = create_service(owner, service_name=token()).id

    resp = listing(owner, endpoint_service_name=tok)
    assert set(ids(resp)) == {a, b, c}
    assert resp.total_count == 3
    assert other not in ids(resp)

    assert set(ids(listing(owner, endpoint_service_name=tok.upper()))) == {a, b, c}
    assert ids(listing(owner, endpoint_service_name=f"{tok}z".upper())) == [c]
    assert ids(listing(owner, endpoint_service_name=f"X{tok}z")) == [c]


def test_name_filter_matches_the_full_name(owner):
    tok = token()
    s = create_service(owner, service_name=tok)
    assert ids(listing(owner, endpoint_service_name=s.service_name)) == [s.id]
    assert ids(listing(owner, endpoint_service_name=s.id)) == [s.id]


def test_name_filter_treats_like_wildcards_literally(owner):
    tok = token()
    make(owner, tok, 2)
    assert listing(owner, endpoint_service_name=f"{tok}%").total_count == 0
    assert listing(owner, endpoint_service_name=f"{tok[:-1]}_").total_count == 0


def test_id_filter(owner):
    tok = token()
    a, b = make(owner, tok, 2)
    resp = listing(owner, id=a)
    assert ids(resp) == [a]
    assert resp.total_count == 1
    assert ids(listing(owner, id=b, endpoint_service_name=tok)) == [b]
    assert listing(owner, id=a, endpoint_service_name=token()).total_count == 0


def test_status_filter(owner):
    tok = token()
    created = make(owner, tok, 3)
    for sid in created:
        wait_status(owner, sid, "available")
    assert set(ids(listing(owner, endpoint_service_name=tok, status="available"))) == set(created)
    for status in ("creating", "failed", "deleting"):
        resp = listing(owner, endpoint_service_name=tok, status=status)
        assert resp.endpoint_services == [] and resp.total_count == 0, status


def test_deleted_services_leave_the_list(owner):
    tok = token()
    a, b = make(owner, tok, 2)
    delete_service(owner, a)
    wait_status(owner, a, "404")
    resp = listing(owner, endpoint_service_name=tok)
    assert ids(resp) == [b] and resp.total_count == 1


# --- sorting ------------------------------------------------------------------------------------

def test_default_order_is_newest_first(owner):
    tok = token()
    created = make(owner, tok, 4)
    assert ids(listing(owner, endpoint_service_name=tok)) == created[::-1]


@pytest.mark.parametrize("sort_key", ["created_at", "create_at"])
def test_sort_by_creation(owner, sort_key):
    tok = token()
    created = make(owner, tok, 4)
    asc = listing(owner, endpoint_service_name=tok, sort_key=sort_key, sort_dir="asc")
    desc = listing(owner, endpoint_service_name=tok, sort_key=sort_key, sort_dir="desc")
    assert ids(asc) == created
    assert ids(desc) == created[::-1]
    assert ids(listing(owner, endpoint_service_name=tok, sort_key=sort_key)) == created[::-1]


@pytest.mark.parametrize("sort_key", ["updated_at", "update_at"])
def test_sort_by_update(owner, sort_key):
    tok = token()
    created = make(owner, tok, 3)
    for sid in created:
        wait_status(owner, sid, "available")
    time.sleep(0.005)  # the update must happen at a later instant than the others' last change
    oldest = created[0]
    owner.update_endpoint_service(UpdateEndpointServiceRequest(
        vpc_endpoint_service_id=oldest,
        body=UpdateEndpointServiceRequestBody(description="touched")))
    desc = ids(listing(owner, endpoint_service_name=tok, sort_key=sort_key, sort_dir="desc"))
    asc = ids(listing(owner, endpoint_service_name=tok, sort_key=sort_key, sort_dir="asc"))
    assert desc[0] == oldest, desc
    assert asc[-1] == oldest, asc
    assert asc == desc[::-1]


# --- paging -------------------------------------------------------------------------------------

def test_paging_with_limit_and_offset(owner):
    tok = token()
    created = make(owner, tok, 5)
    newest_first = created[::-1]
    seen = []
    for offset in (0, 2, 4):
        resp = listing(owner, endpoint_service_name=tok, limit=2, offset=offset)
        assert resp.total_count == 5
        seen += ids(resp)
    assert seen == newest_first

    for offset in (5, 6, 1000):
        resp = listing(owner, endpoint_service_name=tok, limit=2, offset=offset)
        assert resp.endpoint_services == [], offset
        assert resp.total_count == 5, offset


def test_default_limit_is_ten(owner):
    tok = token()
    created = make(owner, tok, 11)
    resp = listing(owner, endpoint_service_name=tok)
    assert len(resp.endpoint_services) == 10
    assert resp.total_count == 11
    assert ids(resp) == created[::-1][:10]
    assert ids(listing(owner, endpoint_service_name=tok, offset=10)) == [created[0]]


def test_limit_bounds_are_accepted(owner):
    tok = token()
    created = make(owner, tok, 2)
    assert len(listing(owner, endpoint_service_name=tok, limit=1).endpoint_services) == 1
    assert set(ids(listing(owner, endpoint_service_name=tok, limit=1000))) == set(created)


def test_empty_result_has_a_list_and_zero_total(owner):
    resp = listing(owner, endpoint_service_name=token(12))
    assert resp.endpoint_services == []
    assert resp.total_count == 0


# --- errors -------------------------------------------------------------------------------------

@pytest.mark.parametrize("query,code", [
    ({"limit": 0}, "EndPoint.0006"),
    ({"limit": 1001}, "EndPoint.0006"),
    ({"limit": -1}, "EndPoint.0006"),
    ({"offset": -1}, "EndPoint.0010"),
    ({"sort_key": "name"}, "EndPoint.0017"),
    ({"sort_key": "created"}, "EndPoint.0017"),
    ({"sort_dir": "up"}, "EndPoint.0018"),
    ({"sort_dir": "ASCENDING"}, "EndPoint.0018"),
    ({"status": "running"}, "EndPoint.0019"),
    ({"status": "deleted"}, "EndPoint.0019"),
])
def test_bad_list_parameters(owner, query, code):
    expect_error(lambda: listing(owner, **query), 400, code)


@pytest.mark.parametrize("query,code", [
    ("limit=ten", "EndPoint.0006"),
    ("limit=1.5", "EndPoint.0006"),
    ("offset=x", "EndPoint.0010"),
])
def test_non_numeric_paging_parameters(vpcep, accounts, query, code):
    """The SDK types limit/offset as int; other clients may send anything (raw signed request)."""
    r = vpcep.raw("GET", f"/v1/{accounts['owner'].project}/vpc-endpoint-services", query=query)
    assert r.status_code == 400, r.text
    assert r.json()["error_code"] == code
