"""Permissions of a service, who may connect to it: add/remove entries (#3), list (#18),
batch-create with descriptions (#4), batch-delete by record id (#5), description update (#27);
and their effect on endpoint creation (EndPoint.2012)."""

import json
import re

import pytest
from huaweicloudsdkvpcep.v1 import (
    AddOrRemoveServicePermissionsRequest,
    AddOrRemoveServicePermissionsRequestBody,
    BatchAddEndpointServicePermissionsRequest,
    BatchAddEndpointServicePermissionsRequestBody,
    BatchRemoveEndpointServicePermissionsRequest,
    BatchRemoveEndpointServicePermissionsRequestBody,
    EpsAddPermissionRequest,
    EpsRemovePermissionRequest,
    EpsUpdatePermissionDesc,
    ListServicePermissionsDetailsRequest,
    UpdateEndpointServicePermissionDescRequest,
    UpdateEndpointServicePermissionDescRequestBody,
)

from vpcep_support import (
    create_endpoint,
    create_service,
    expect_error,
    new_uuid,
    permit,
    ready_service,
    show_endpoint,
    wait_endpoint,
)

TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
ORG = "organizations:orgPath::o-1a2b/r-3c4d/ou-5e6f/*"


def action(client, sid, act, entries, permission_type=None):
    return client.add_or_remove_service_permissions(AddOrRemoveServicePermissionsRequest(
        vpc_endpoint_service_id=sid, body=AddOrRemoveServicePermissionsRequestBody(
            permissions=entries, action=act, permission_type=permission_type)))


def listing(client, sid, **q):
    return client.list_service_permissions_details(
        ListServicePermissionsDetailsRequest(vpc_endpoint_service_id=sid, **q))


def entries(client, sid, **q):
    return sorted(p.permission for p in listing(client, sid, limit=500, **q).permissions)


def batch_create(client, sid, pairs, permission_type=None):
    return client.batch_add_endpoint_service_permissions(BatchAddEndpointServicePermissionsRequest(
        vpc_endpoint_service_id=sid, body=BatchAddEndpointServicePermissionsRequestBody(
            permissions=[EpsAddPermissionRequest(permission=p, description=d) for p, d in pairs],
            permission_type=permission_type)))


def batch_delete(client, sid, ids):
    return client.batch_remove_endpoint_service_permissions(
        BatchRemoveEndpointServicePermissionsRequest(
            vpc_endpoint_service_id=sid, body=BatchRemoveEndpointServicePermissionsRequestBody(
                permissions=[EpsRemovePermissionRequest(id=i) for i in ids])))


def describe(client, sid, pid, description):
    return client.update_endpoint_service_permission_desc(
        UpdateEndpointServicePermissionDescRequest(
            vpc_endpoint_service_id=sid, permission_id=pid,
            body=UpdateEndpointServicePermissionDescRequestBody(
                permission=EpsUpdatePermissionDesc(description=description))))


def domain(n):
    return f"iam:domain::{n:032x}"


# --- add and remove (#3), list (#18) --------------------------------------------------------------

def test_add_list_and_remove(owner, accounts):
    svc = create_service(owner)
    assert listing(owner, svc.id).total_count == 0  # the owner is allowed without a record
    who = [accounts["consumer"].permission, "*"]
    resp = action(owner, svc.id, "add", who)
    assert resp.status_code == 200
    assert resp.permissions == who
    assert resp.permission_type == "domainId"

    listed = listing(owner, svc.id)
    assert listed.total_count == 2
    raw = json.loads(listed.raw_content)
    assert set(raw) == {"permissions", "total_count"}
    for p in raw["permissions"]:
        assert {"id", "permission", "permission_type", "created_at"} <= set(p), p
        assert p["permission_type"] == "domainId"
        assert TIMESTAMP.match(p["created_at"])
    assert sorted(p["permission"] for p in raw["permissions"]) == sorted(who)

    # adding again changes nothing; removing one leaves the other
    action(owner, svc.id, "add", [accounts["consumer"].permission])
    assert listing(owner, svc.id).total_count == 2
    removed = action(owner, svc.id, "remove", ["*", domain(7)])
    assert removed.permissions == ["*", domain(7)]
    assert entries(owner, svc.id) == [accounts["consumer"].permission]


def test_org_path_entries(owner):
    svc = create_service(owner)
    resp = action(owner, svc.id, "add", [ORG], permission_type="orgPath")
    assert resp.permission_type == "orgPath"
    [record] = listing(owner, svc.id).permissions
    assert (record.permission, record.permission_type) == (ORG, "orgPath")
    # the entries round-trip byte for byte (Terraform sorts them by permission_type)
    action(owner, svc.id, "add", ["organizations:orgPath::*"], permission_type="orgPath")
    assert entries(owner, svc.id) == sorted([ORG, "organizations:orgPath::*"])
    expect_error(lambda: action(owner, svc.id, "add", [ORG]), 400, "EndPoint.3002")
    expect_error(lambda: action(owner, svc.id, "add", ["*"], permission_type="orgPath"),
                 400, "EndPoint.3002")


def test_list_filter_and_paging(owner):
    svc = create_service(owner)
    made = [domain(0xabc000 + i) for i in range(5)]
    action(owner, svc.id, "add", made)
    assert listing(owner, svc.id).total_count == 5
    assert [p.permission for p in listing(owner, svc.id, permission="abc003").permissions] == \
        [made[3]]
    assert listing(owner, svc.id, permission="ABC00").total_count == 5  # case-insensitive
    seen = []
    for offset in (0, 2, 4):
        page = listing(owner, svc.id, limit=2, offset=offset)
        assert page.total_count == 5 and len(page.permissions) <= 2
        seen += [p.permission for p in page.permissions]
    assert sorted(seen) == sorted(made)
    asc = [p.permission for p in listing(owner, svc.id, sort_key="create_at",
                                         sort_dir="asc").permissions]
    assert sorted(asc) == sorted(made)
    assert listing(owner, svc.id, offset=9).permissions == []
    assert len(listing(owner, svc.id, limit=500).permissions) == 5
    expect_error(lambda: listing(owner, svc.id, limit=501), 400, "EndPoint.0006")
    expect_error(lambda: listing(owner, svc.id, limit=0), 400, "EndPoint.0006")
    expect_error(lambda: listing(owner, svc.id, offset=-1), 400, "EndPoint.0010")


@pytest.mark.parametrize("act,entries_,code", [
    ("add", ["iam:domain::xyz"], "EndPoint.3002"),
    ("add", ["domain::" + "0" * 32], "EndPoint.3002"),
    ("add", ["iam:domain::" + "A" * 32], "EndPoint.3002"),
    ("add", [], "EndPoint.3036"),
    ("grant", ["*"], "EndPoint.3035"),
    ("add", ["*"] * 501, "EndPoint.0016"),
])
def test_action_errors(owner, act, entries_, code):
    svc = create_service(owner)
    expect_error(lambda: action(owner, svc.id, act, entries_), 400, code)
    assert listing(owner, svc.id).total_count == 0


def test_unknown_or_foreign_service_is_404(owner, consumer):
    svc = create_service(owner)
    for client, sid in ((owner, new_uuid()), (consumer, svc.id)):
        expect_error(lambda: action(client, sid, "add", ["*"]), 404, "EndPoint.0005")
        expect_error(lambda: listing(client, sid), 404, "EndPoint.0005")
        expect_error(lambda: batch_create(client, sid, [("*", "x")]), 404, "EndPoint.0005")
    assert listing(owner, svc.id).total_count == 0


# --- batch create (#4), description (#27), batch delete (#5) --------------------------------------

def test_batch_create_describe_and_delete(owner, accounts):
    svc = create_service(owner)
    pairs = [(accounts["consumer"].permission, "the consumer"), ("*", "everyone"),
             (domain(42), "")]
    resp = batch_create(owner, svc.id, pairs)
    assert resp.status_code == 200
    got = {p.permission: p for p in resp.permissions}
    assert set(got) == {p for p, _ in pairs}
    for perm, desc in pairs:
        rec = got[perm]
        assert re.match(r"^[0-9a-f-]{36}$", rec.id)
        assert rec.description == desc and rec.permission_type == "domainId"
    assert listing(owner, svc.id).total_count == 3

    # the list's records carry the same ids
    listed = {p.permission: p.id for p in listing(owner, svc.id).permissions}
    assert listed == {p: r.id for p, r in got.items()}

    # a repeated entry keeps its record and takes the new description
    again = batch_create(owner, svc.id, [("*", "anyone at all")])
    assert [(p.id, p.description) for p in again.permissions] == [(got["*"].id, "anyone at all")]
    assert listing(owner, svc.id).total_count == 3

    updated = describe(owner, svc.id, got[domain(42)].id, "answer")
    assert updated.status_code == 200
    assert [(p.id, p.description) for p in updated.permissions] == [(got[domain(42)].id,
                                                                     "answer")]
    expect_error(lambda: describe(owner, svc.id, new_uuid(), "x"), 404, "EndPoint.0005")
    expect_error(lambda: describe(owner, svc.id, got["*"].id, "<x>"), 400, "EndPoint.0002")

    deleted = batch_delete(owner, svc.id, [got["*"].id, got[domain(42)].id])
    assert deleted.status_code == 200
    assert {p.id for p in deleted.permissions} == {got["*"].id, got[domain(42)].id}
    assert entries(owner, svc.id) == [accounts["consumer"].permission]
    # all or nothing: one unknown id deletes none
    expect_error(lambda: batch_delete(owner, svc.id, [got[accounts["consumer"].permission].id,
                                                      new_uuid()]), 404, "EndPoint.0005")
    assert entries(owner, svc.id) == [accounts["consumer"].permission]


def test_batch_errors(owner):
    svc = create_service(owner)
    expect_error(lambda: batch_create(owner, svc.id, []), 400, "EndPoint.3036")
    expect_error(lambda: batch_create(owner, svc.id, [("iam:domain::1", "x")]), 400,
                 "EndPoint.3002")
    expect_error(lambda: batch_create(owner, svc.id, [("*", "<b>")]), 400, "EndPoint.0002")
    expect_error(lambda: batch_create(owner, svc.id, [(ORG, "org")]), 400, "EndPoint.3002")
    assert batch_create(owner, svc.id, [(ORG, "org")], permission_type="orgPath") \
        .permissions[0].permission_type == "orgPath"
    expect_error(lambda: batch_delete(owner, svc.id, []), 400, "EndPoint.3036")
    expect_error(lambda: batch_delete(owner, svc.id, ["nope"]), 404, "EndPoint.0005")


# --- the effect on endpoints ----------------------------------------------------------------------

def test_permissions_decide_who_may_connect(vpcep, owner, consumer, accounts):
    svc = ready_service(owner, approval_enabled=False)
    limited = vpcep.client("limited")

    expect_error(lambda: create_endpoint(consumer, svc.id), 400, "EndPoint.2012")
    # another account's entry, or an organisation path, lets nobody else in
    action(owner, svc.id, "add", [accounts["limited"].permission])
    action(owner, svc.id, "add", [ORG], permission_type="orgPath")
    expect_error(lambda: create_endpoint(consumer, svc.id), 400, "EndPoint.2012")
    assert create_endpoint(limited, svc.id).status == "creating"

    permit(owner, svc.id, accounts["consumer"].permission)
    ep = create_endpoint(consumer, svc.id)
    wait_endpoint(consumer, ep.id, "accepted")

    # taking the permission away refuses new endpoints; the existing one stays
    permit(owner, svc.id, accounts["consumer"].permission, action="remove")
    expect_error(lambda: create_endpoint(consumer, svc.id), 400, "EndPoint.2012")
    assert show_endpoint(consumer, ep.id).status == "accepted"


@pytest.mark.parametrize("entry", ["*", "iam:domain::*"])
def test_wildcard_lets_every_account_in(vpcep, owner, entry):
    svc = ready_service(owner, approval_enabled=False)
    limited = vpcep.client("limited")
    expect_error(lambda: create_endpoint(limited, svc.id), 400, "EndPoint.2012")
    action(owner, svc.id, "add", [entry])
    ep = create_endpoint(limited, svc.id)
    wait_endpoint(limited, ep.id, "accepted")


def test_batch_created_permission_lets_the_consumer_in(owner, consumer, accounts):
    svc = ready_service(owner, approval_enabled=True)
    resp = batch_create(owner, svc.id, [(accounts["consumer"].permission, "partner")])
    ep = create_endpoint(consumer, svc.id)
    wait_endpoint(consumer, ep.id, "pendingAcceptance")
    batch_delete(owner, svc.id, [resp.permissions[0].id])
    expect_error(lambda: create_endpoint(consumer, svc.id), 400, "EndPoint.2012")


def test_operator_services_need_no_permission(vpcep, operator, consumer):
    svc = ready_service(operator, approval_enabled=False)
    ep = create_endpoint(consumer, svc.id)
    wait_endpoint(consumer, ep.id, "accepted")
