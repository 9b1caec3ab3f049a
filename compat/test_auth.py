"""Authentication (SDK-HMAC-SHA256 AK/SK signatures) and the X-Request-Id header.

The SDK always signs correctly, so negative cases are built with raw HTTP requests signed by
`vpcep_support.sign_headers` (an implementation of vpcep-api-spec.md §6.3, checked here against
the spec's test vectors), then altered after signing."""

import datetime as dt
import hashlib
import json

import pytest
import requests
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.http.http_config import HttpConfig
from huaweicloudsdkvpcep.v1 import (
    ListEndpointServiceRequest,
    ListVersionDetailsRequest,
    VpcepClient,
)

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


def create_body(vpcep, backend=None):
    """A create body on a fresh backend port of the owner (or on `backend`)."""
    b = backend or vpcep.backend("owner")
    return json.dumps({"port_id": b.port_id, "vpc_id": b.vpc_id, "server_type": "VM",
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
    r = vpcep.raw("POST", path, body=create_body(vpcep))
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "creating"
    # a query that needs percent-encoding
    r = vpcep.raw("GET", path, query="endpoint_service_name=a%20b%2Fc")
    assert r.status_code == 200, r.text


def test_no_authorization_header_is_401(vpcep, accounts):
    for method, body in (("GET", b""), ("POST", create_body(vpcep))):
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
    signed = create_body(vpcep)
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


def test_signed_header_changed_after_signing_is_401(vpcep, accounts):
    a = accounts["owner"]
    path = services_path(accounts)
    headers = sign_headers("GET", vpcep.url, path, "", b"",
                           {"Content-Type": "application/json", "User-Agent": "compat/1"},
                           a.access_key, a.secret_key)
    assert "user-agent" in headers["Authorization"]
    headers["User-Agent"] = "compat/2"
    assert_401(requests.get(vpcep.url + path, headers=headers, timeout=30))


@pytest.mark.parametrize("unsigned", ["host", "x-sdk-date"])
def test_host_and_date_must_be_signed(vpcep, accounts, unsigned):
    """A valid signature over fewer headers is not enough: Host and X-Sdk-Date must be signed."""
    a = accounts["owner"]
    path = services_path(accounts)
    headers = {"Content-Type": "application/json", "Host": vpcep.url.split("//")[1],
               "X-Sdk-Date": format_sdk_date()}
    covered = {k: v for k, v in headers.items() if k.lower() != unsigned}
    names, sig = signature_of("GET", path, "", covered, b"", a.secret_key,
                              date=headers["X-Sdk-Date"])
    headers["Authorization"] = (f"SDK-HMAC-SHA256 Access={a.access_key}, "
                                f"SignedHeaders={names}, Signature={sig}")
    assert_401(requests.get(vpcep.url + path, headers=headers, timeout=30))


def test_unsigned_payload_as_the_sdk_sends_it_is_accepted(vpcep, accounts):
    """The SDK signs `X-Sdk-Content-Sha256: UNSIGNED-PAYLOAD` (and uses that literal as the
    payload hash) for non-JSON content types; the server must verify it the same way."""
    r = vpcep.raw("POST", services_path(accounts), body=create_body(vpcep),
                  headers={"X-Sdk-Content-Sha256": "UNSIGNED-PAYLOAD"})
    assert r.status_code == 200, r.text


def test_unsigned_content_sha256_header_cannot_replace_the_body(vpcep, accounts):
    """Sign body A normally, then send body B plus an *unsigned* `X-Sdk-Content-Sha256`
    carrying sha256(A): the signature still covers A only, so B must be refused."""
    signed = create_body(vpcep)
    sent = signed.replace(b"8080", b"9999")
    a = accounts["owner"]
    path = services_path(accounts)
    headers = sign_headers("POST", vpcep.url, path, "", signed,
                           {"Content-Type": "application/json;charset=utf-8"},
                           a.access_key, a.secret_key)
    assert "x-sdk-content-sha256" not in headers["Authorization"].lower()
    headers["X-Sdk-Content-Sha256"] = hashlib.sha256(signed).hexdigest()
    r = requests.post(vpcep.url + path, data=sent, headers=headers, timeout=30)
    assert_401(r)


def test_signed_content_sha256_must_match_the_body(vpcep, accounts):
    signed = create_body(vpcep)
    digest = hashlib.sha256(signed).hexdigest()
    sent = signed.replace(b"8080", b"9999")
    r = vpcep.raw("POST", services_path(accounts), body=sent,
                  headers={"X-Sdk-Content-Sha256": digest})
    assert_401(r)


def test_sdk_without_content_type_on_get_works(vpcep, accounts):
    """`HttpConfig.ignore_content_type_for_get_request` makes the SDK sign GETs without a
    Content-Type header."""
    a = accounts["owner"]
    config = HttpConfig.get_default_config()
    config.ignore_content_type_for_get_request = True
    client = VpcepClient.new_builder() \
        .with_credentials(BasicCredentials(a.access_key, a.secret_key, a.project)) \
        .with_endpoint(vpcep.url).with_http_config(config).build()
    svc = create_service(client, vpcep.backend("owner"))
    assert show_service(client, svc.id).id == svc.id
    assert listing(client, id=svc.id).total_count == 1


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


# --- X-Request-Id on every response ---------------------------------------------------------------

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
        vpcep.raw("PATCH", services_path(accounts)),                                # 405
        vpcep.raw("POST", services_path(accounts), body=b" " * (1024 * 1024 + 1)),  # 413
    ]
    for r in cases:
        assert r.status_code >= 400, r.text
        rid = r.headers.get("X-Request-Id")
        assert rid, (r.status_code, r.text)
        body = r.json()
        assert body["error_code"] and body["error_msg"], body
        assert body.get("request_id", rid) == rid
        assert r.headers.get("Content-Type", "").startswith("application/json"), r.headers
    assert [r.status_code for r in cases] == [400, 401, 403, 404, 400, 404, 405, 413]


def test_open_routes_have_a_request_id(vpcep):
    for path in ("/health", "/", "/v1"):
        r = requests.get(vpcep.url + path, timeout=10)
        assert r.status_code == 200, (path, r.text)
        assert r.headers.get("X-Request-Id"), path


# --- what the SDK's canonicalisation produces must verify ----------------------------------------

@pytest.mark.parametrize("value", ["a b", "a/b", "%", "\\", "+", "a+b", "&x=1", "=", "~", "*",
                                   "é", "'\"", "?#", "名"])
def test_sdk_query_values_that_need_encoding_verify(owner, value):
    resp = listing(owner, endpoint_service_name=value)
    assert resp.status_code == 200
    assert resp.total_count == 0


@pytest.mark.parametrize("sid", ["a/b", "a b", "é", "%", "a?b", "a#b", "a+b"])
def test_sdk_path_ids_that_need_encoding_verify(owner, sid):
    """Odd ids reach the handler (404 EndPoint.0005), not a signature failure (401)."""
    expect_error(lambda: show_service(owner, sid), 404, "EndPoint.0005")
