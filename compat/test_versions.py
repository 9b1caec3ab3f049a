"""Version discovery (#20 list_version_details, #21 list_specified_version_details)."""

import requests
from huaweicloudsdkvpcep.v1 import ListSpecifiedVersionDetailsRequest, ListVersionDetailsRequest

from vpcep_support import expect_error


def test_list_version_details_offers_v1_and_v2(owner):
    resp = owner.list_version_details(ListVersionDetailsRequest())
    assert resp.status_code == 200
    by_id = {v.id: v for v in resp.versions}
    assert set(by_id) >= {"v1", "v2"}
    for vid, v in by_id.items():
        assert v.status
        assert v.links, f"{vid} has no links"
        assert any(link.rel == "self" and link.href.rstrip("/").endswith("/" + vid)
                   for link in v.links), v.links


def test_list_specified_version_v1(owner):
    resp = owner.list_specified_version_details(ListSpecifiedVersionDetailsRequest(version="v1"))
    assert resp.status_code == 200
    assert resp.version.id == "v1"
    assert resp.version.status


def test_list_specified_version_unknown_is_404(owner):
    expect_error(
        lambda: owner.list_specified_version_details(
            ListSpecifiedVersionDetailsRequest(version="v9")),
        404, "EndPoint.0005")


def test_version_self_links_resolve(vpcep, owner):
    resp = owner.list_version_details(ListVersionDetailsRequest())
    for v in resp.versions:
        for link in v.links:
            if link.rel != "self":
                continue
            assert link.href.startswith(vpcep.url), link.href
            r = requests.get(link.href, timeout=10)
            assert r.status_code == 200, (link.href, r.status_code, r.text)
            assert r.json()["version"]["id"] == v.id


def test_version_discovery_needs_no_signature(vpcep):
    r = requests.get(vpcep.url + "/", timeout=10)
    assert r.status_code == 200
    assert {v["id"] for v in r.json()["versions"]} >= {"v1", "v2"}
    r = requests.get(vpcep.url + "/v2", timeout=10)
    assert r.status_code == 200 and r.json()["version"]["id"] == "v2"
