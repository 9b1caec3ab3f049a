"""SDK-HMAC-SHA256 request signing, as huaweicloudsdkcore computes it.

Follows shared/reference/vpcep-api-spec.md section 6.3 step by step (and the server's
`vpcep-sign` crate): canonical request, string to sign, HMAC-SHA256 keyed with the SK.
`SdkHmacAuth` is a `requests` auth hook, so it signs the request exactly as it goes on the
wire (final URL, final body bytes); `python3 sign.py` checks the reference's test vectors.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
from urllib.parse import quote, unquote, urlsplit

import requests

ALGORITHM = "SDK-HMAC-SHA256"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def _encode(s: str) -> str:
    """RFC 3986: everything but A-Z a-z 0-9 - _ . ~ is percent-encoded (upper-case hex)."""
    return quote(s, safe="-_.~")


def _decode(s: str) -> str:
    """Percent-decoding that keeps `+` literal and replaces invalid UTF-8, as the server does."""
    return unquote(s, errors="replace")


def canonical_uri(raw_path: str) -> str:
    """Decode the raw path as a whole, encode each segment, always end in `/`."""
    uri = "/".join(_encode(seg) for seg in _decode(raw_path).split("/"))
    return uri if uri.endswith("/") else uri + "/"


def canonical_query(raw_query: str) -> str:
    """Decoded pairs sorted by key then value, re-encoded, joined with `&`."""
    pairs = []
    for part in raw_query.split("&"):
        if not part:
            continue
        k, _, v = part.partition("=")
        pairs.append((_decode(k), _decode(v)))
    pairs.sort()
    return "&".join(f"{_encode(k)}={_encode(v)}" for k, v in pairs)


def signature(
    *,
    method: str,
    raw_path: str,
    raw_query: str,
    headers: dict[str, str],
    body: bytes,
    secret_key: str,
) -> tuple[str, str]:
    """(SignedHeaders, hex signature) over `headers` (all of them are signed)."""
    names = sorted(h.lower() for h in headers if "_" not in h)
    lowered = {k.lower(): v for k, v in headers.items()}
    canonical_headers = "".join(f"{n}:{lowered[n].strip()}\n" for n in names)
    signed_headers = ";".join(names)
    payload = hashlib.sha256(body).hexdigest() if body else EMPTY_SHA256
    canonical_request = "\n".join(
        [
            method.upper(),
            canonical_uri(raw_path),
            canonical_query(raw_query),
            canonical_headers,
            signed_headers,
            payload,
        ]
    )
    string_to_sign = "\n".join(
        [
            ALGORITHM,
            lowered["x-sdk-date"],
            hashlib.sha256(canonical_request.encode()).hexdigest(),
        ]
    )
    sig = hmac.new(secret_key.encode(), string_to_sign.encode(), hashlib.sha256).hexdigest()
    return signed_headers, sig


def authorization(access_key: str, signed_headers: str, sig: str) -> str:
    return f"{ALGORITHM} Access={access_key}, SignedHeaders={signed_headers}, Signature={sig}"


class SdkHmacAuth(requests.auth.AuthBase):
    """Signs each prepared request: `Host`, `X-Sdk-Date` and `Content-Type` (when sent)."""

    def __init__(self, access_key: str, secret_key: str, project_id: str | None = None):
        self.access_key = access_key
        self.secret_key = secret_key
        self.project_id = project_id

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        url = urlsplit(r.url)
        date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        r.headers["X-Sdk-Date"] = date
        r.headers["Host"] = url.netloc
        if self.project_id:
            r.headers["X-Project-Id"] = self.project_id
        signed = {"Host": url.netloc, "X-Sdk-Date": date}
        for name in ("Content-Type", "X-Project-Id"):
            if name in r.headers:
                signed[name] = r.headers[name]
        body = r.body or b""
        if isinstance(body, str):
            body = body.encode("utf-8")
        signed_headers, sig = signature(
            method=r.method or "GET",
            raw_path=url.path or "/",
            raw_query=url.query,
            headers=signed,
            body=body,
            secret_key=self.secret_key,
        )
        r.headers["Authorization"] = authorization(self.access_key, signed_headers, sig)
        return r


def _self_test() -> None:
    """The two vectors of vpcep-api-spec.md section 6.3."""
    headers = {
        "Content-Type": "application/json;charset=utf-8",
        "Host": "127.0.0.1:8080",
        "User-Agent": "test-agent",
        "X-Project-Id": "proj1",
        "X-Sdk-Date": "20240101T000000Z",
    }
    body = (
        b'{"port_id": "p1", "vpc_id": "v1", "server_type": "VM", "ports": '
        b'[{"client_port": 80, "server_port": 8080, "protocol": "TCP"}]}'
    )
    signed, sig = signature(
        method="POST",
        raw_path="/v1/proj1/vpc-endpoint-services",
        raw_query="",
        headers=headers,
        body=body,
        secret_key="SKTEST",
    )
    assert signed == "content-type;host;user-agent;x-project-id;x-sdk-date", signed
    assert sig == "b44e02e2d7336bcea67c81693f8abfb58029ba385f0379bd8c4e84822d982b5f", sig
    headers["Content-Type"] = "application/json"
    _, sig = signature(
        method="GET",
        raw_path="/v1/proj1/vpc-endpoints",
        raw_query="endpoint_service_name=a%20b%2Fc&limit=10&sort_dir=asc",
        headers=headers,
        body=b"",
        secret_key="SKTEST",
    )
    assert sig == "0344f3536d05f8927789b92e74d36f49dc97728652bca28d4157b6747389ad21", sig


if __name__ == "__main__":
    _self_test()
    print("sign.py: both reference vectors match")
