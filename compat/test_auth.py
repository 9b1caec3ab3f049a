"""Authentication (SDK-HMAC-SHA256 AK/SK signatures) and the X-Request-Id header.

The SDK always signs correctly, so negative cases are built with raw HTTP requests signed by
`vpcep_support.sign_headers` (an implementation of vpcep-api-spec.md §6.3, checked here against
the spec's test vectors), then altered after signing."""

import datetime as dt
import hashlib
import json

import pytest
import requests
from huaweicloudsdkvpcep.v1 import ListEndpointServiceRequest, ListVersionDetailsRequest

from vpcep_support import (
    canonical_query,
    create_service,
    delete_service,
    expect_error,
    format_sdk_date,
    new_uuid,
    show_service,
    sign_headers,
    signature_of,
)


def listing(client, **q):
    return client.list_endpoint_service(ListEndpointServiceRequest(**q))


def services_path(accounts, who="owner"):
    return f"/v1/{accounts[who].project}/vpc-endpoint-services"


def create_body(port_id=None):
    return json.dumps({"port_id": port_id or new_uuid(), "vpc_id": new_uuid(),
                       "server_type": "VM",
                       "ports": [{"client_port": 80, "server_port": 8080, "protocol": "TCP"}]}
                      ).encode()


def assert_401(r):
    assert r.status_code == 401, (r.status_code, r.text)
    body = r.json()
    assert body["error_code"] == "EndPoint.0003", body
    assert body["error_msg"]
    assert r.headers.get("X-Request-Id")


# --- our signer matches the spec's vectors --------------------------------------------------------

def test_signer_matches_spec_vector_1():
    body = (b'{"port_id": "p1", "vpc_id": "v1", "server_type": "VM", "ports": '
            b'[{"client_port": 80, "server_port": 8080, "protocol": "TCP"}]}')
    assert hashlib.sha256(body).hexdigest() == \
        "c3b70cb255ba28a5e12bd5cdb3005bde23b199a146472aa42104a117d2343bfa"
    headers = {"Content-Type": "application/json;charset=utf-8", "Host": "127.0.0.1:8080",
               "User-Agent": "test-agent", "X-Project-Id": "proj1",
               "X-Sdk-Date": "20240101T000000Z"}
    names, sig = signature_of("POST", "/v1/proj1/vpc-endpoint-services", "", headers, body,
                              "SKTEST")
    assert names == "content-type;host;user-agent;x-project-id;x-sdk-date"
    assert sig == "b44e02e2d7336bcea67c81693f8abfb58029ba385f0379bd8c4e84822d982b5f"


def test_signer_matches_spec_vector_2():
    query = "endpoint_service_name=a%20b%2Fc&limit=10&sort_dir=asc"
    assert canonical_query("sort_dir=asc&limit=10&endpoint_service_name=a%20b%2Fc") == query
    headers = {"Content-Type": "application/json", "Host": "127.0.0.1:8080",
               "User-Agent": "test-agent", "X-Project-Id": "proj1",
               "X-Sdk-Date": "20240101T000000Z"}
    _, sig = signature_of("GET", "/v1/proj1/vpc-endpoints", query, headers, b"", "SKTEST")
    assert sig == "0344f3536d05f8927789b92e74d36f49dc97728652bca28d4157b6747389ad21"


# --- the SDK with bad credentials -----------------------------------------------------------------

def test_wrong_secret_key_is_401(vpcep):
    client = vpcep.client("owner", sk="not-the-secret")
    expect_error(lambda: listing(client), 401, "EndPoint.0003")
    expect_error(lambda: create_service(client), 401, "EndPoint.0003")


def test_unknown_access_key_is_401(vpcep):
    client = vpcep.client("owner", ak="AKUNKNOWN0000000000", sk="whatever")
    expect_error(lambda: listing(client), 401, "EndPoint.0003")


def test_another_accounts_secret_is_401(vpcep, accounts):
    client = vpcep.client("owner", sk=accounts["consumer"].secret_key)
    expect_error(lambda: listing(client), 401, "EndPoint.0003")


# --- raw requests ---------------------------------------------------------------------------------

def test_correctly_signed_raw_requests_are_accepted(vpcep, accounts):
    """Proves the negative cases below fail for the reason they name, not a signer bug."""
    path = services_path(accounts)
    r = vpcep.raw("GET", path, query="limit=5&sort_dir=asc")
    assert r.status_code == 200, r.text
    assert "endpoint_services" in r.json()
    r = vpcep.raw("POST", path, body=create_body())
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "creating"
    # a query that needs percent-encoding
    r = vpcep.raw("GET", path, query="endpoint_service_name=a%20b%2Fc")
    assert r.status_code == 200, r.text


def test_no_authorization_header_is_401(vpcep, accounts):
    for method, body in (("GET", b""), ("POST", create_body())):
        r = vpcep.raw(method, services_path(accounts), body=body, account=None)
        assert_401(r)
        assert r.json().get("request_id") in (None, r.headers["X-Request-Id"])


def test_unsupported_algorithm_is_401(vpcep, accounts):
    r = vpcep.raw("GET", services_path(accounts), account=None, headers={
        "X-Sdk-Date": format_sdk_date(),
        "Authorization": "SDK-HMAC-SM3 Access=AK, SignedHeaders=host;x-sdk-date, Signature="
                         + "0" * 64})
    assert_401(r)


def test_garbage_authorization_is_401(vpcep, accounts):
    r = vpcep.raw("GET", services_path(accounts), account=None,
                  headers={"Authorization": "Bearer abc"})
    assert_401(r)


def test_body_tampered_after_signing_is_401(vpcep, accounts):
    port_id = new_uuid()
    signed = create_body(port_id)
    sent = signed.replace(b"8080", b"8081")
    assert sent != signed and len(sent) == len(signed)
    r = vpcep.raw("POST", services_path(accounts), body=sent, signed_body=signed)
    assert_401(r)
    # and nothing was created: the very same mapping is still free on that port_id
    r = vpcep.raw("POST", services_path(accounts), body=sent)
    assert r.status_code == 200, r.text


def test_query_tampered_after_signing_is_401(vpcep, accounts):
    r = vpcep.raw("GET", services_path(accounts), query="limit=2", signed_query="limit=1")
    assert_401(r)
    r = vpcep.raw("GET", services_path(accounts), query="limit=1&offset=1",
                  signed_query="limit=1")
    assert_401(r)


def test_path_tampered_after_signing_is_401(vpcep, accounts):
    """A signature for one project's path does not authorise another path."""
    svc = create_service(vpcep.client("owner"))
    a = accounts["owner"]
    signed_path = services_path(accounts)
    headers = sign_headers("DELETE", vpcep.url, signed_path, "", b"",
                           {"Content-Type": "application/json"}, a.access_key, a.secret_key)
    r = requests.delete(f"{vpcep.url}{signed_path}/{svc.id}", headers=headers, timeout=30)
    assert_401(r)
    assert show_service(vpcep.client("owner"), svc.id).id == svc.id


@pytest.mark.parametrize("minutes", [-20, 20, -60 * 24])
def test_stale_or_future_sdk_date_is_401(vpcep, accounts, minutes):
    when = dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=minutes)
    r = vpcep.raw("GET", services_path(accounts), sdk_date=format_sdk_date(when))
    assert_401(r)


def test_sdk_date_within_the_window_is_accepted(vpcep, accounts):
    when = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=10)
    r = vpcep.raw("GET", services_path(accounts), sdk_date=format_sdk_date(when))
    assert r.status_code == 200, r.text


def test_malformed_sdk_date_is_401(vpcep, accounts):
    r = vpcep.raw("GET", services_path(accounts), sdk_date="2024-01-01 00:00:00")
    assert_401(r)


# --- X-Request-Id on every response -----------------------------------------------------------------

def test_every_sdk_response_has_a_request_id(vpcep):
    seen = []
    client = vpcep.client("owner", responses=seen)
    svc = create_service(client)
    show_service(client, svc.id)
    listing(client, limit=1)
    client.list_version_details(ListVersionDetailsRequest())
    assert delete_service(client, svc.id).status_code == 204
    assert [r.status_code for r in seen] == [200, 200, 200, 200, 204]
    ids = [r.headers.get("X-Request-Id") for r in seen]
    assert all(ids), ids
    assert len(set(ids)) == len(ids), ids


def test_every_error_response_has_a_request_id(vpcep, accounts):
    owner_project = accounts["owner"].project
    cases = [
        vpcep.raw("GET", services_path(accounts), query="limit=0"),                 # 400
        vpcep.raw("GET", services_path(accounts), account=None),                    # 401
        vpcep.raw("GET", services_path(accounts, "consumer")),                      # 403
        vpcep.raw("GET", f"{services_path(accounts)}/{new_uuid()}"),                # 404
        vpcep.raw("POST", f"/v1/{owner_project}/vpc-endpoint-services", body=b"{"),  # 400 JSON
        vpcep.raw("GET", "/no/such/route", account=None),                           # 404 route
    ]
    for r in cases:
        assert r.status_code >= 400, r.text
        rid = r.headers.get("X-Request-Id")
        assert rid, (r.status_code, r.text)
        body = r.json()
        assert body["error_code"] and body["error_msg"], body
        assert body.get("request_id", rid) == rid
    assert [r.status_code for r in cases] == [400, 401, 403, 404, 400, 404]


def test_open_routes_have_a_request_id(vpcep):
    for path in ("/health", "/", "/v1"):
        r = requests.get(vpcep.url + path, timeout=10)
        assert r.status_code == 200, (path, r.text)
        assert r.headers.get("X-Request-Id"), path
