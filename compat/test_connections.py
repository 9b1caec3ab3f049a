"""Connections, the owner's side of endpoints: list (#15), accept/reject (#1), descriptions
(#22); the two-account approval flow (with a permission, #3), the reject path, per-endpoint
errors, the endpoint quota, and the polling Terraform's approval resource does."""

import json
import re
import threading
import warnings

import pytest
from huaweicloudsdkcore.exceptions import exceptions as sdk_exc
from huaweicloudsdkvpcep.v1 import (
    ConnectionsDesc,
    ListEndpointServiceRequest,
    ListEndpointsRequest,
    ListQuotaDetailsRequest,
    ListServiceDetailsRequest,
    UpdateEndpointConnectionsDescRequest,
    UpdateEndpointConnectionsDescRequestBody,
)

from vpcep_support import (
    ENDPOINT_STATUSES,
    FRUGAL_ENDPOINT_QUOTA,
    Window,
    connection_action,
    connections,
    create_endpoint,
    create_service,
    delete_endpoint,
    delete_service,
    endpoint_status_or_404,
    expect_error,
    new_uuid,
    outcome,
    permit,
    private_ips,
    ready_service,
    show_endpoint,
    token,
    wait_endpoint,
    wait_status,
    wait_until,
)

TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
CONNECTION_FIELDS = {"id", "marker_id", "created_at", "updated_at", "domain_id", "error",
                     "status", "description"}


def only_connection(client, sid, eid):
    """`connections?id=<endpoint id>`: exactly that one (what Terraform reads as [0])."""
    resp = connections(client, sid, id=eid)
    assert resp.total_count == 1, resp
    assert [c.id for c in resp.connections] == [eid]
    return resp.connections[0]


def act_ok(client, sid, action, eid):
    """#1 for one endpoint that must succeed; answers its connection entry."""
    resp = connection_action(client, sid, action, eid)
    assert resp.status_code == 200
    assert [c.id for c in resp.connections] == [eid]
    entry = resp.connections[0]
    assert not entry.error, entry.error
    return entry


def act_error(client, sid, action, eid):
    """#1 for one endpoint that the server refuses for that endpoint: still HTTP 200, with the
    error in the entry's `error` list; answers the error code."""
    with warnings.catch_warnings():
        # the entry's empty timestamps make the SDK warn: see test_error_entries_parse_cleanly
        warnings.simplefilter("ignore")
        resp = connection_action(client, sid, action, eid)
    assert resp.status_code == 200
    assert [c.id for c in resp.connections] == [eid], resp
    errors = resp.connections[0].error
    assert errors and len(errors) == 1, resp
    assert errors[0].error_message, errors
    return errors[0].error_code


def consumer_total(consumer, svc):
    return consumer.list_endpoints(
        ListEndpointsRequest(endpoint_service_name=svc.service_name)).total_count


def endpoint_quota_used(client):
    [row] = client.list_quota_details(ListQuotaDetailsRequest(type="endpoint")).quotas.resources
    return row.used


def connection_count(owner, sid):
    return owner.list_endpoint_service(
        ListEndpointServiceRequest(id=sid)).endpoint_services[0].connection_count


# --- the two-account flow ----------------------------------------------------------------------

def test_two_account_approval_flow(vpcep, owner, consumer, consumer_vpc, accounts):
    svc = ready_service(owner, approval_enabled=True, service_name="appr" + token(4))
    net = vpcep.new_network("consumer", vpc_cidr="10.90.0.0/16", cidr="10.90.1.0/24")
    used_before = endpoint_quota_used(consumer)

    # not permitted: refused, and nothing is created anywhere
    e = expect_error(lambda: create_endpoint(consumer, svc.id, net), 400, "EndPoint.2012")
    assert svc.id in e.error_msg
    assert consumer_total(consumer, svc) == 0
    assert endpoint_quota_used(consumer) == used_before
    assert private_ips(consumer_vpc, net.subnet_id) == {}
    assert connections(owner, svc.id).total_count == 0

    # the owner lets the consumer's account in
    granted = permit(owner, svc.id, accounts["consumer"].permission)
    assert granted.status_code == 200
    assert accounts["consumer"].permission in granted.permissions

    ep = create_endpoint(consumer, svc.id, net)
    assert ep.status == "creating"
    assert ep.endpoint_service_name == svc.service_name
    assert endpoint_quota_used(consumer) == used_before + 1
    wait_endpoint(consumer, ep.id, "pendingAcceptance")
    pending = show_endpoint(consumer, ep.id)
    assert not pending.ip  # no address shown before acceptance

    conn = only_connection(owner, svc.id, ep.id)
    assert conn.status == "pendingAcceptance"
    assert conn.domain_id == accounts["consumer"].domain_id
    assert conn.marker_id == ep.marker_id
    raw = json.loads(connections(owner, svc.id, id=ep.id).raw_content)["connections"][0]
    assert CONNECTION_FIELDS <= set(raw), sorted(CONNECTION_FIELDS - set(raw))
    assert raw["error"] == [] and isinstance(raw["marker_id"], int)
    assert TIMESTAMP.match(raw["created_at"]) and TIMESTAMP.match(raw["updated_at"])
    assert connection_count(owner, svc.id) == 1

    entry = act_ok(owner, svc.id, "receive", ep.id)
    assert entry.status == "accepted"
    assert entry.domain_id == accounts["consumer"].domain_id

    wait_endpoint(consumer, ep.id, "accepted")
    accepted = show_endpoint(consumer, ep.id)
    assert accepted.ip and net.contains(accepted.ip)
    assert accepted.ip in private_ips(consumer_vpc, net.subnet_id)
    assert only_connection(owner, svc.id, ep.id).status == "accepted"
    assert connection_count(owner, svc.id) == 1

    # accepting again is refused for that endpoint
    assert act_error(owner, svc.id, "receive", ep.id) == "EndPoint.2014"


def test_reject_path(vpcep, owner, consumer, accounts):
    svc = ready_service(owner, approval_enabled=True)
    permit(owner, svc.id, accounts["consumer"].permission)
    ep = create_endpoint(consumer, svc.id)
    wait_endpoint(consumer, ep.id, "pendingAcceptance")

    entry = act_ok(owner, svc.id, "reject", ep.id)
    assert entry.status == "rejected"
    assert wait_endpoint(consumer, ep.id, "rejected") == "rejected"
    assert not show_endpoint(consumer, ep.id).ip  # never accepted: no address shown
    # a rejected connection stays listed (and filterable), but is no longer counted
    assert only_connection(owner, svc.id, ep.id).status == "rejected"
    assert [c.id for c in connections(owner, svc.id, status="rejected").connections] == [ep.id]
    assert connections(owner, svc.id, status="pendingAcceptance").total_count == 0
    assert connection_count(owner, svc.id) == 0

    # the owner may change their mind
    assert act_ok(owner, svc.id, "receive", ep.id).status == "accepted"
    wait_endpoint(consumer, ep.id, "accepted")
    ip = show_endpoint(consumer, ep.id).ip
    assert ip
    # rejecting an accepted endpoint keeps showing its address
    assert act_ok(owner, svc.id, "reject", ep.id).status == "rejected"
    assert show_endpoint(consumer, ep.id).ip == ip

    # a rejected endpoint does not hold the service (AWS's rule); it stays its owner's, visible
    # as rejected, and its owner deletes it
    delete_service(owner, svc.id)
    wait_status(owner, svc.id, "404")
    assert show_endpoint(consumer, ep.id).status == "rejected"
    delete_endpoint(consumer, ep.id)
    wait_endpoint(consumer, ep.id, "404")


def test_owner_connecting_to_own_service_still_needs_approval(owner, accounts):
    """The owner's account is always permitted, but approval still applies."""
    svc = ready_service(owner, approval_enabled=True)
    ep = create_endpoint(owner, svc.id)
    wait_endpoint(owner, ep.id, "pendingAcceptance")
    conn = only_connection(owner, svc.id, ep.id)
    assert conn.domain_id == accounts["owner"].domain_id
    act_ok(owner, svc.id, "receive", ep.id)
    wait_endpoint(owner, ep.id, "accepted")
    assert show_endpoint(owner, ep.id).ip


# --- accept/reject errors (#1) -------------------------------------------------------------------

def test_per_endpoint_errors(owner):
    svc = ready_service(owner, approval_enabled=False)
    other = ready_service(owner, approval_enabled=False)
    ep = create_endpoint(owner, svc.id)
    wait_endpoint(owner, ep.id, "accepted")
    foreign = create_endpoint(owner, other.id)

    assert act_error(owner, svc.id, "receive", ep.id) == "EndPoint.2014"
    assert act_error(owner, svc.id, "receive", new_uuid()) == "EndPoint.2006"
    assert act_error(owner, svc.id, "reject", new_uuid()) == "EndPoint.2006"
    assert act_error(owner, svc.id, "receive", "not-an-id") == "EndPoint.2006"
    assert act_error(owner, svc.id, "reject", foreign.id) == "EndPoint.2013"
    # none of that changed anything
    assert only_connection(owner, svc.id, ep.id).status == "accepted"
    assert endpoint_status_or_404(owner, foreign.id) in ("creating", "accepted")


@pytest.mark.parametrize("case", ["unknown", "already accepted"])
def test_error_entries_parse_cleanly(owner, case):
    svc = ready_service(owner, approval_enabled=False)
    ep = create_endpoint(owner, svc.id)
    wait_endpoint(owner, ep.id, "accepted")
    eid = new_uuid() if case == "unknown" else ep.id
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the SDK's TypeConversionWarning fails the call
        resp = connection_action(owner, svc.id, "receive", eid)
    entry = json.loads(resp.raw_content)["connections"][0]
    assert entry["error"], entry
    for key in ("created_at", "updated_at"):
        assert key not in entry or TIMESTAMP.match(entry[key]), entry
    assert "status" not in entry or entry["status"] in ENDPOINT_STATUSES, entry
    if case == "already accepted":
        assert (entry["marker_id"], entry["status"]) == (ep.marker_id, "accepted"), entry


def test_request_errors(owner, consumer):
    svc = ready_service(owner, approval_enabled=True)
    a = create_endpoint(owner, svc.id)
    b = create_endpoint(owner, svc.id)
    expect_error(lambda: connection_action(owner, svc.id, "receive", a.id, b.id),
                 400, "EndPoint.2031")
    expect_error(lambda: connection_action(owner, svc.id, "approve", a.id), 400, "EndPoint.0007")
    expect_error(lambda: connection_action(owner, svc.id, "receive"), 400, "EndPoint.0002")
    expect_error(lambda: connection_action(owner, new_uuid(), "receive", a.id),
                 404, "EndPoint.0005")
    # only the service's owner acts on its connections
    expect_error(lambda: connection_action(consumer, svc.id, "receive", a.id),
                 404, "EndPoint.0005")
    expect_error(lambda: connections(consumer, svc.id), 404, "EndPoint.0005")
    wait_endpoint(owner, a.id, "pendingAcceptance")
    assert only_connection(owner, svc.id, a.id).status == "pendingAcceptance"


def test_accept_while_creating_is_refused_for_that_endpoint(slow_vpcep, slow_approval_service):
    client = slow_vpcep.client("owner")
    svc = slow_approval_service
    slow_vpcep.network("owner")
    window = Window()
    ep = create_endpoint(client, svc.id)
    code = act_error(client, svc.id, "receive", ep.id) if window.open() else None
    if window.open():
        assert code == "EndPoint.2019"
    assert window.open(), "machine too slow to observe `creating`; raise SLOW_DELAY_SECONDS"
    wait_endpoint(client, ep.id, "pendingAcceptance", timeout=15)
    assert act_ok(client, svc.id, "receive", ep.id).status == "accepted"


# --- list connections (#15) -----------------------------------------------------------------------

def test_list_connections_filters_and_paging(owner):
    svc = ready_service(owner, approval_enabled=True)
    made = [create_endpoint(owner, svc.id) for _ in range(4)]
    ids = [e.id for e in made]
    for e in made:
        wait_endpoint(owner, e.id, "pendingAcceptance")
    act_ok(owner, svc.id, "receive", ids[1])
    act_ok(owner, svc.id, "reject", ids[2])

    resp = connections(owner, svc.id)
    assert resp.status_code == 200
    assert set(json.loads(resp.raw_content)) == {"connections", "total_count"}
    assert resp.total_count == 4
    assert [c.id for c in resp.connections] == ids[::-1]  # newest first
    assert [c.id for c in connections(owner, svc.id, sort_key="create_at",
                                      sort_dir="asc").connections] == ids
    assert [c.id for c in connections(owner, svc.id, status="accepted").connections] == [ids[1]]
    assert [c.id for c in connections(owner, svc.id, status="rejected").connections] == [ids[2]]
    assert {c.id for c in connections(owner, svc.id,
                                      status="pendingAcceptance").connections} == \
        {ids[0], ids[3]}
    assert [c.id for c in connections(owner, svc.id,
                                      marker_id=str(made[3].marker_id)).connections] == [ids[3]]
    for e in made:
        only_connection(owner, svc.id, e.id)
    page = connections(owner, svc.id, limit=2, offset=1, sort_dir="asc")
    assert [c.id for c in page.connections] == ids[1:3] and page.total_count == 4
    past = connections(owner, svc.id, offset=9)
    assert past.connections == [] and past.total_count == 4
    assert connections(owner, svc.id, id=new_uuid()).total_count == 0
    # sorting by the last change puts the two just decided last (ascending)
    by_update = [c.id for c in connections(owner, svc.id, sort_key="updated_at",
                                           sort_dir="asc").connections]
    assert set(by_update[-2:]) == {ids[1], ids[2]}


@pytest.mark.parametrize("query,code", [
    ({"status": "running"}, "EndPoint.0019"),
    ({"marker_id": "abc"}, "EndPoint.0021"),
    ({"limit": 0}, "EndPoint.0006"),
    ({"limit": 1001}, "EndPoint.0006"),
    ({"offset": -1}, "EndPoint.0010"),
    ({"sort_key": "name"}, "EndPoint.0017"),
    ({"sort_dir": "sideways"}, "EndPoint.0018"),
])
def test_list_connections_bad_parameters(owner, query, code):
    svc = create_service(owner)
    expect_error(lambda: connections(owner, svc.id, **query), 400, code)


def test_list_connections_of_unknown_service(owner):
    expect_error(lambda: connections(owner, new_uuid()), 404, "EndPoint.0005")
    expect_error(lambda: connections(owner, "nope"), 404, "EndPoint.0005")


# --- connection descriptions (#22) ----------------------------------------------------------------

def describe(client, sid, *pairs):
    return client.update_endpoint_connections_desc(UpdateEndpointConnectionsDescRequest(
        vpc_endpoint_service_id=sid, body=UpdateEndpointConnectionsDescRequestBody(
            connections=[ConnectionsDesc(id=i, description=d) for i, d in pairs])))


def test_connection_descriptions(owner):
    svc = ready_service(owner, approval_enabled=False)
    a = create_endpoint(owner, svc.id, description="consumer's own words")
    b = create_endpoint(owner, svc.id)
    resp = describe(owner, svc.id, (a.id, "team A"), (b.id, "team B"))
    assert resp.status_code == 200
    assert {(c.id, c.description) for c in resp.connections} == {(a.id, "team A"),
                                                                 (b.id, "team B")}
    assert only_connection(owner, svc.id, a.id).description == "team A"
    # the owner's description is not the consumer's
    assert show_endpoint(owner, a.id).description == "consumer's own words"
    assert describe(owner, svc.id, (a.id, "")).connections[0].description == ""

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # see test_error_entries_parse_cleanly
        mixed = describe(owner, svc.id, (b.id, "still B"), (new_uuid(), "x"))
    by_id = {c.id: c for c in mixed.connections}
    assert by_id[b.id].description == "still B" and not by_id[b.id].error
    unknown = [c for c in mixed.connections if c.id != b.id]
    assert len(unknown) == 1 and unknown[0].error[0].error_code == "EndPoint.2006"

    expect_error(lambda: describe(owner, svc.id, (a.id, "<b>")), 400, "EndPoint.0002")
    expect_error(lambda: describe(owner, svc.id), 400, "EndPoint.0002")
    expect_error(lambda: describe(owner, new_uuid(), (a.id, "x")), 404, "EndPoint.0005")


# --- endpoint quota -------------------------------------------------------------------------------

def test_endpoint_quota(vpcep):
    """`frugal` has `[account.quotas] endpoint = 2`: the third endpoint is refused with
    Endpoint.1018 and leaves nothing behind; deleting one frees a unit once it is gone."""
    frugal, fvpc = vpcep.client("frugal"), vpcep.vpc("frugal")
    svc = ready_service(frugal, approval_enabled=False)
    net = vpcep.new_network("frugal", vpc_cidr="10.91.0.0/16", cidr="10.91.0.0/24")
    made = [create_endpoint(frugal, svc.id, net) for _ in range(FRUGAL_ENDPOINT_QUOTA)]
    held = private_ips(fvpc, net.subnet_id)
    assert len(held) == FRUGAL_ENDPOINT_QUOTA

    e = expect_error(lambda: create_endpoint(frugal, svc.id, net), 400, "Endpoint.1018")
    assert "quota" in e.error_msg.lower()
    assert frugal.list_endpoints(ListEndpointsRequest()).total_count == FRUGAL_ENDPOINT_QUOTA
    assert private_ips(fvpc, net.subnet_id) == held
    assert connections(frugal, svc.id).total_count == FRUGAL_ENDPOINT_QUOTA

    delete_endpoint(frugal, made[0].id)
    wait_endpoint(frugal, made[0].id, "404")
    create_endpoint(frugal, svc.id, net)
    expect_error(lambda: create_endpoint(frugal, svc.id, net), 400, "Endpoint.1018")


# --- Terraform-style polling ----------------------------------------------------------------------

def test_terraform_approval_polling(slow_vpcep, slow_approval_service):
    """What huaweicloud_vpcep_endpoint and huaweicloud_vpcep_approval do: create, poll the
    endpoint until it leaves `creating` (failing on any undocumented status), GET the service,
    POST the action for one endpoint, then poll `connections?id=` (reading `[0]`) until the
    status is the target; delete and poll for 404."""
    client = slow_vpcep.client("owner")
    svc = slow_approval_service
    ep = create_endpoint(client, svc.id)
    seen = []

    def probe():
        st = endpoint_status_or_404(client, ep.id)
        seen.append(st)
        return st

    wait_until(probe, lambda st: st != "creating", timeout=15, what="settled")
    assert seen[-1] == "pendingAcceptance"
    assert client.list_service_details(
        ListServiceDetailsRequest(vpc_endpoint_service_id=svc.id)).approval_enabled is True
    act_ok(client, svc.id, "receive", ep.id)

    def conn_status():
        st = only_connection(client, svc.id, ep.id).status
        assert st in ENDPOINT_STATUSES, st
        seen.append(st)
        return st

    wait_until(conn_status, lambda st: st == "accepted", timeout=15, what="accepted")
    wait_until(probe, lambda st: st == "accepted", timeout=15, what="endpoint accepted")
    delete_endpoint(client, ep.id)
    wait_until(probe, lambda st: st == "404", timeout=15, what="gone")
    assert set(seen) <= ENDPOINT_STATUSES | {"404"}, seen
    # the order never goes backwards
    order = ["creating", "pendingAcceptance", "accepted", "deleting", "404"]
    ranks = [order.index(s) for s in seen]
    assert ranks == sorted(ranks), seen


def test_consumer_polls_its_own_endpoint_while_pending(slow_vpcep, slow_approval_service,
                                                       accounts):
    """The consumer side of the flow on a server with a provisioning delay: the endpoint is
    `creating` for the delay, then `pendingAcceptance`."""
    owner = slow_vpcep.client("owner")
    consumer = slow_vpcep.client("consumer")
    svc = slow_approval_service
    permit(owner, svc.id, accounts["consumer"].permission)
    slow_vpcep.network("consumer")
    window = Window()
    ep = create_endpoint(consumer, svc.id)
    first = endpoint_status_or_404(consumer, ep.id)
    listed = outcome(lambda: only_connection(owner, svc.id, ep.id).status)
    if window.open():
        assert first == "creating"
        assert listed == "creating"
    wait_endpoint(consumer, ep.id, "pendingAcceptance", timeout=15)
    act_ok(owner, svc.id, "receive", ep.id)
    wait_endpoint(consumer, ep.id, "accepted", timeout=15)


def test_settled_statuses_follow_the_services_approval(owner):
    free = ready_service(owner, approval_enabled=False)
    gated = ready_service(owner, approval_enabled=True)
    a = create_endpoint(owner, free.id)
    b = create_endpoint(owner, gated.id)
    assert wait_endpoint(owner, a.id, "accepted") == "accepted"
    assert wait_endpoint(owner, b.id, "pendingAcceptance") == "pendingAcceptance"
    assert isinstance(b.marker_id, int)
    # statuses never leave the documented set on any read path
    for e in owner.list_endpoints(ListEndpointsRequest(limit=1000)).endpoints:
        assert e.status in ENDPOINT_STATUSES, e.status


def test_error_types_are_sdk_exceptions(owner):
    """Connection errors come back as the SDK's ClientRequestException with the request id."""
    with pytest.raises(sdk_exc.ClientRequestException) as info:
        connections(owner, new_uuid())
    assert info.value.request_id


# --- concurrency ----------------------------------------------------------------------------------

def _race(n, make):
    barrier = threading.Barrier(n, timeout=60)
    results = [None] * n

    def worker(i):
        barrier.wait()
        try:
            results[i] = make(i)
        except Exception as e:  # noqa: BLE001 - reported by the caller
            results[i] = e

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results


def test_concurrent_endpoints_never_share_an_address(vpcep, owner_vpc):
    """Eight endpoints race for the five addresses of a /29: five get distinct ones, three are
    refused, and the subnet holds exactly the five."""
    owner = vpcep.client("owner")
    svc = ready_service(owner, approval_enabled=False)
    net = vpcep.new_network("owner", vpc_cidr="10.92.0.0/24", cidr="10.92.0.0/29")
    clients = [vpcep.client("owner") for _ in range(8)]
    results = _race(8, lambda i: create_endpoint(clients[i], svc.id, net))
    made = [r for r in results if not isinstance(r, Exception)]
    errors = [r for r in results if isinstance(r, Exception)]
    assert len(made) == 5, errors
    assert all(isinstance(e, sdk_exc.ClientRequestException) and e.status_code == 400
               for e in errors), errors
    ips = set()
    for ep in made:
        wait_endpoint(owner, ep.id, "accepted")
        ips.add(show_endpoint(owner, ep.id).ip)
    assert len(ips) == 5
    assert set(private_ips(owner_vpc, net.subnet_id)) == ips


def test_concurrent_endpoints_never_exceed_the_quota(fresh_vpcep):
    frugal = fresh_vpcep.client("frugal")
    svc = ready_service(frugal, approval_enabled=False)
    fresh_vpcep.network("frugal")
    clients = [fresh_vpcep.client("frugal") for _ in range(6)]
    results = _race(6, lambda i: create_endpoint(clients[i], svc.id))
    made = [r for r in results if not isinstance(r, Exception)]
    errors = [r for r in results if isinstance(r, Exception)]
    assert len(made) == FRUGAL_ENDPOINT_QUOTA, errors
    assert all(isinstance(e, sdk_exc.ClientRequestException)
               and (e.status_code, e.error_code) == (400, "Endpoint.1018") for e in errors), errors
    assert frugal.list_endpoints(ListEndpointsRequest()).total_count == FRUGAL_ENDPOINT_QUOTA
