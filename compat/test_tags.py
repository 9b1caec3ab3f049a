"""Tags of services and endpoints: the tag action (#31), the project's tags (#32) and the
resource query by tags (#33, `limit`/`offset` as strings, as the SDK model types them and
Terraform sends them).

Project-wide answers include other tests' tags, so every test uses keys carrying its own token
and looks only at those."""

import json

import pytest
from huaweicloudsdkvpcep.v1 import (
    BatchAddOrRemoveResourceInstanceRequest,
    BatchAddOrRemoveResourceInstanceRequestBody,
    ListQueryProjectResourceTagsRequest,
    ListResourceInstancesRequest,
    Match,
    QueryResourceInstanceTagsBody,
    ResourceTag,
    TagList,
    TagValuesList,
)

from vpcep_support import (
    create_endpoint,
    create_service,
    delete_endpoint,
    expect_error,
    new_uuid,
    ready_service,
    show_endpoint,
    show_service,
    token,
    wait_endpoint,
)


def tag_action(client, kind, rid, action, *pairs):
    tags = [ResourceTag(key=k, value=v) for k, v in pairs]
    return client.batch_add_or_remove_resource_instance(BatchAddOrRemoveResourceInstanceRequest(
        resource_type=kind, resource_id=rid,
        body=BatchAddOrRemoveResourceInstanceRequestBody(action=action, tags=tags)))


def project_tags(client, kind, prefix):
    resp = client.list_query_project_resource_tags(
        ListQueryProjectResourceTagsRequest(resource_type=kind))
    assert resp.status_code == 200
    return {t.key: sorted(t.values) for t in resp.tags if t.key.startswith(prefix)}


def query(client, kind, **body):
    return client.list_resource_instances(ListResourceInstancesRequest(
        resource_type=kind, body=QueryResourceInstanceTagsBody(**body)))


def tv(key, *values):
    return TagValuesList(key=key, values=list(values))


def pairs(tags):
    return {(t.key, t.value) for t in tags}


# --- tag action (#31) -----------------------------------------------------------------------------

def test_tag_action_on_a_service(owner):
    svc = create_service(owner, tags=[TagList(key="keep", value="1")])
    resp = tag_action(owner, "endpoint_service", svc.id, "create", ("env", "prod"), ("team", ""))
    assert resp.status_code == 204
    assert pairs(show_service(owner, svc.id).tags) == {("keep", "1"), ("env", "prod"), ("team", "")}
    # create on an existing key replaces its value
    tag_action(owner, "endpoint_service", svc.id, "create", ("env", "dev"))
    assert ("env", "dev") in pairs(show_service(owner, svc.id).tags)
    # delete by key and value only when the value matches; by key alone always
    tag_action(owner, "endpoint_service", svc.id, "delete", ("env", "prod"))
    assert ("env", "dev") in pairs(show_service(owner, svc.id).tags)
    tag_action(owner, "endpoint_service", svc.id, "delete", ("env", None), ("absent", None))
    assert pairs(show_service(owner, svc.id).tags) == {("keep", "1"), ("team", "")}


def test_tag_action_on_an_endpoint(owner):
    svc = ready_service(owner, approval_enabled=False)
    ep = create_endpoint(owner, svc.id)
    assert tag_action(owner, "endpoint", ep.id, "create", ("a", "1")).status_code == 204
    assert pairs(show_endpoint(owner, ep.id).tags) == {("a", "1")}
    tag_action(owner, "endpoint", ep.id, "delete", ("a", None))
    assert show_endpoint(owner, ep.id).tags == []


def test_tag_action_limits_and_errors(owner, consumer):
    svc = create_service(owner, tags=[TagList(key=f"k{i}", value="v") for i in range(9)])
    tag_action(owner, "endpoint_service", svc.id, "create", ("k9", "v"))
    expect_error(lambda: tag_action(owner, "endpoint_service", svc.id, "create", ("k10", "v")),
                 400, "EndPoint.3069")
    assert len(show_service(owner, svc.id).tags) == 10  # unchanged
    cases = [
        (("create", ("a=b", "v")), "EndPoint.3068"),
        (("create", ("k", "v/")), "EndPoint.3068"),
        (("create", ("", "v")), "EndPoint.3066"),
        (("create", ("k" * 37, "v")), "EndPoint.3072"),
        (("create", ("k", "v" * 44)), "EndPoint.3073"),
        (("create", ("d", "1"), ("d", "2")), "EndPoint.3067"),
        (("upsert", ("k", "v")), "EndPoint.0007"),
    ]
    for (action, *tags), code in cases:
        expect_error(lambda: tag_action(owner, "endpoint_service", svc.id, action, *tags),
                     400, code)
    expect_error(lambda: tag_action(owner, "vpc", svc.id, "create", ("k", "v")),
                 400, "EndPoint.3070")
    expect_error(lambda: tag_action(owner, "endpoint_service", new_uuid(), "create", ("k", "v")),
                 404, "EndPoint.0005")
    expect_error(lambda: tag_action(owner, "endpoint", svc.id, "create", ("k", "v")),
                 404, "EndPoint.0005")
    expect_error(lambda: tag_action(consumer, "endpoint_service", svc.id, "create", ("k", "v")),
                 404, "EndPoint.0005")


# --- project tags (#32) ---------------------------------------------------------------------------

def test_project_tags_aggregate_keys_and_values(vpcep, owner, accounts):
    tok = token()
    create_service(owner, tags=[TagList(key=f"{tok}env", value="prod"),
                                TagList(key=f"{tok}team", value="a")])
    create_service(owner, tags=[TagList(key=f"{tok}env", value="dev")])
    create_service(owner, tags=[TagList(key=f"{tok}env", value="prod")])
    svc = ready_service(owner, approval_enabled=False)
    ep = create_endpoint(owner, svc.id, tags=[TagList(key=f"{tok}ep", value="x")])

    assert project_tags(owner, "endpoint_service", tok) == {f"{tok}env": ["dev", "prod"],
                                                           f"{tok}team": ["a"]}
    assert project_tags(owner, "endpoint", tok) == {f"{tok}ep": ["x"]}
    raw = json.loads(owner.list_query_project_resource_tags(
        ListQueryProjectResourceTagsRequest(resource_type="endpoint")).raw_content)
    assert set(raw) == {"tags"}
    # other projects and accounts see none of it
    second = vpcep.client("owner", project=accounts["owner"].projects[1])
    assert project_tags(second, "endpoint_service", tok) == {}
    assert project_tags(vpcep.client("consumer"), "endpoint", tok) == {}
    # a deleted endpoint's tags go with it
    delete_endpoint(owner, ep.id)
    wait_endpoint(owner, ep.id, "404")
    assert project_tags(owner, "endpoint", tok) == {}


def test_project_tags_bad_resource_type(owner):
    expect_error(lambda: owner.list_query_project_resource_tags(
        ListQueryProjectResourceTagsRequest(resource_type="vpc_endpoint")), 400, "EndPoint.3070")


# --- resource query (#33) -------------------------------------------------------------------------

@pytest.fixture
def tagged(owner):
    """Three services with token-prefixed tags: a {env=prod, tier=web}, b {env=dev}, c
    {env=prod}; named so `matches` can find them."""
    tok = token()
    k = lambda name: f"{tok}{name}"  # noqa: E731
    made = {
        "a": create_service(owner, service_name=f"{tok}alpha",
                            tags=[TagList(key=k("env"), value="prod"),
                                  TagList(key=k("tier"), value="web")]),
        "b": create_service(owner, service_name=f"{tok}beta",
                            tags=[TagList(key=k("env"), value="dev")]),
        "c": create_service(owner, service_name=f"{tok}gamma",
                            tags=[TagList(key=k("env"), value="prod")]),
    }
    return tok, k, {n: s.id for n, s in made.items()}, made


def found(resp):
    return {r.resource_id for r in resp.resources}


def test_filter_by_tags(owner, tagged):
    tok, k, ids, made = tagged
    resp = query(owner, "endpoint_service", action="filter", tags=[tv(k("env"), "prod")])
    assert resp.status_code == 200
    assert found(resp) == {ids["a"], ids["c"]} and resp.total_count == 2
    by_id = {r.resource_id: r for r in resp.resources}
    assert by_id[ids["a"]].resource_name == made["a"].service_name
    assert pairs(by_id[ids["a"]].tags) == {(k("env"), "prod"), (k("tier"), "web")}

    def q(**body):
        return found(query(owner, "endpoint_service", action="filter", **body))

    assert q(tags=[tv(k("env"))]) == set(ids.values())                     # any value
    assert q(tags=[tv(k("env"), "prod", "dev")]) == set(ids.values())      # values OR
    assert q(tags=[tv(k("env"), "prod"), tv(k("tier"))]) == {ids["a"]}     # keys AND
    assert q(tags_any=[tv(k("tier")), tv(k("env"), "dev")]) == {ids["a"], ids["b"]}
    assert q(tags=[tv(k("env"))], not_tags=[tv(k("env"), "prod"), tv(k("tier"))]) == \
        {ids["b"], ids["c"]}
    assert q(tags=[tv(k("env"))], not_tags_any=[tv(k("tier")), tv(k("env"), "dev")]) == \
        {ids["c"]}
    assert q(tags=[tv(k("env"))], matches=[Match(key="resource_name", value=f"{tok}BE")]) == \
        {ids["b"]}


def test_limit_and_offset_as_strings(owner, tagged):
    tok, k, ids, _ = tagged
    everything = query(owner, "endpoint_service", action="filter", tags=[tv(k("env"))],
                       limit="1000", offset="0")
    assert found(everything) == set(ids.values())
    page1 = query(owner, "endpoint_service", action="filter", tags=[tv(k("env"))],
                  limit="2", offset="0")
    page2 = query(owner, "endpoint_service", action="filter", tags=[tv(k("env"))],
                  limit="2", offset="2")
    assert len(page1.resources) == 2 and len(page2.resources) == 1
    assert page1.total_count == page2.total_count == 3
    assert found(page1) | found(page2) == set(ids.values())
    past = query(owner, "endpoint_service", action="filter", tags=[tv(k("env"))], offset="5")
    assert past.resources == [] and past.total_count == 3


def test_limit_as_a_number_in_a_raw_body(vpcep, accounts, tagged):
    """Clients that send numbers (not the SDK's strings) get the same answer."""
    tok, k, ids, _ = tagged
    path = f"/v1/{accounts['owner'].project}/endpoint_service/resource_instances/action"
    body = {"action": "filter", "tags": [{"key": k("env"), "values": ["prod"]}],
            "limit": 1000, "offset": 0}
    r = vpcep.raw("POST", path, body=json.dumps(body).encode())
    assert r.status_code == 200, r.text
    assert {x["resource_id"] for x in r.json()["resources"]} == {ids["a"], ids["c"]}


def test_terraform_pages_by_hand_until_empty(vpcep, accounts, tagged):
    """data.huaweicloud_vpcep_resources_by_tags sends `"limit": "1000"` (a string) and
    `"offset": N` (a number) and stops at the first empty page."""
    tok, k, ids, _ = tagged
    path = f"/v1/{accounts['owner'].project}/endpoint_service/resource_instances/action"
    seen, offset = [], 0
    for _ in range(10):
        body = {"action": "filter", "tags": [{"key": k("env"), "values": []}],
                "limit": "2", "offset": offset}
        r = vpcep.raw("POST", path, body=json.dumps(body).encode())
        assert r.status_code == 200, r.text
        page = r.json()["resources"]
        assert r.json()["total_count"] == 3
        if not page:
            break
        seen += [x["resource_id"] for x in page]
        offset += len(page)
    assert sorted(seen) == sorted(ids.values())


def test_count_answers_only_the_total(owner, tagged):
    tok, k, ids, _ = tagged
    resp = query(owner, "endpoint_service", action="count", tags=[tv(k("env"), "prod")])
    assert resp.total_count == 2
    raw = json.loads(resp.raw_content)
    assert raw == {"total_count": 2} or not raw.get("resources"), raw


def test_endpoints_by_tags(owner):
    tok = token()
    svc = ready_service(owner, approval_enabled=False)
    a = create_endpoint(owner, svc.id, tags=[TagList(key=f"{tok}k", value="1")])
    create_endpoint(owner, svc.id, tags=[TagList(key=f"{tok}k", value="2")])
    resp = query(owner, "endpoint", action="filter", tags=[tv(f"{tok}k", "1")])
    assert found(resp) == {a.id} and resp.total_count == 1
    assert resp.resources[0].resource_name  # a name (the id when the endpoint has none)


@pytest.mark.parametrize("body,code", [
    (dict(action="list"), "EndPoint.0007"),
    (dict(action="filter", limit="0"), "EndPoint.0006"),
    (dict(action="filter", limit="1001"), "EndPoint.0006"),
    (dict(action="filter", limit="ten"), "EndPoint.0006"),
    (dict(action="filter", offset="-1"), "EndPoint.0010"),
    (dict(action="filter", tags=[tv("k"), tv("k")]), "EndPoint.3067"),
    (dict(action="filter", tags=[tv("")]), "EndPoint.3072"),
    (dict(action="filter", matches=[Match(key="name", value="x")]), "EndPoint.0002"),
])
def test_query_errors(owner, body, code):
    expect_error(lambda: query(owner, "endpoint_service", **body), 400, code)


def test_query_bad_resource_type(owner):
    expect_error(lambda: query(owner, "subnet", action="filter"), 400, "EndPoint.3070")
