"""Helpers for the compat suite: starting a vpcep server, the test tenants, SDK clients (VPCEP
and VPC), backends and networks made through the VPC SDK, request signing for raw requests,
and small polling and assertion utilities.

Everything here talks to the server only over HTTP: through the official SDKs
(`huaweicloudsdkvpcep` 3.1.219, `huaweicloudsdkvpc` 3.1.219 client v2) or, for negative cases
the SDKs cannot produce, through `requests` with a signature computed here from
`vpcep-api-spec.md` §6.3.

An endpoint service needs a real backend: a port of the caller's project in the service's
`vpc_id`, whose `device_owner` fits `server_type`. `VpcepServer.backend()` makes one (a fresh
port in a per-tenant VPC and subnet that the server object creates once and caches), and
`create_service()` makes one for each call that names no `port_id`/`vpc_id` of its own, so
tests stay independent: no two of them ever share a port unless they mean to.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import hmac
import ipaddress
import json
import os
import random
import secrets
import socket
import subprocess
import tempfile
import threading
import time
import urllib.parse
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import pytest
import requests
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.exceptions import exceptions as sdk_exc
from huaweicloudsdkcore.http.http_config import HttpConfig
from huaweicloudsdkcore.http.http_handler import HttpHandler
from huaweicloudsdkvpc.v2 import (
    CreatePortOption,
    CreatePortRequest,
    CreatePortRequestBody,
    CreateSubnetOption,
    CreateSubnetRequest,
    CreateSubnetRequestBody,
    CreateVpcOption,
    CreateVpcRequest,
    CreateVpcRequestBody,
    FixedIp,
    ListPrivateipsRequest,
    VpcClient,
)
from huaweicloudsdkvpcep.v1 import (
    AcceptOrRejectEndpointRequest,
    AcceptOrRejectEndpointRequestBody,
    AddOrRemoveServicePermissionsRequest,
    AddOrRemoveServicePermissionsRequestBody,
    CreateEndpointRequest,
    CreateEndpointRequestBody,
    CreateEndpointServiceRequest,
    CreateEndpointServiceRequestBody,
    DeleteEndpointRequest,
    DeleteEndpointServiceRequest,
    ListEndpointInfoDetailsRequest,
    ListServiceConnectionsRequest,
    ListServiceDetailsRequest,
    PortList,
    VpcepClient,
)

REGION = "compat-1"

#: How long `creating` and `deleting` last on the `slow_vpcep` server.
SLOW_DELAY_SECONDS = 1.0

#: The `device_owner` of a port that backs each `server_type` (README "server_type must match").
DEVICE_OWNER = {
    "VM": f"compute:{REGION}a",
    "LB": "neutron:LOADBALANCERV2",
    "VIP": "neutron:VIP_PORT",
}

#: The seed page's example ids, preloaded for the owner through `--inventory` (see
#: `seed_inventory`), so the seed's request body can be sent verbatim.
SEED_VPC_ID = "4189d3c2-8882-4871-a3c2-d380272eed80"
SEED_SUBNET_ID = "4189d3c2-8882-4871-a3c2-d380272eed81"
SEED_PORT_ID = "4189d3c2-8882-4871-a3c2-d380272eed88"

#: Every status a VPC endpoint (or connection) may ever report (vpcep-api.md "Status machines").
ENDPOINT_STATUSES = {"creating", "pendingAcceptance", "accepted", "rejected", "failed",
                     "deleting"}

# ---------------------------------------------------------------------------------------------
# Tenants
# ---------------------------------------------------------------------------------------------


def _hex32() -> str:
    return secrets.token_hex(16)


@dataclass
class Account:
    """One `[[account]]` of the accounts file the server is started with."""

    name: str
    domain_id: str
    projects: List[str]
    access_key: str
    secret_key: str
    operator: bool = False
    service_quota: Optional[int] = None
    endpoint_quota: Optional[int] = None
    #: The `vpc`, `subnet` and `port` quotas (all three), when not the defaults.
    network_quota: Optional[int] = None

    @property
    def project(self) -> str:
        return self.projects[0]

    @property
    def permission(self) -> str:
        """The permission entry that lets this account connect (`iam:domain::<domain_id>`)."""
        return f"iam:domain::{self.domain_id}"

    def toml(self) -> str:
        projects = ", ".join(f'"{p}"' for p in self.projects)
        out = [
            "[[account]]",
            f'domain_id   = "{self.domain_id}"',
            f'domain_name = "{self.name}"',
            f"operator    = {'true' if self.operator else 'false'}",
            f"projects    = [{projects}]",
        ]
        if (self.service_quota, self.endpoint_quota, self.network_quota) != (None, None, None):
            out.append("[account.quotas]")
            if self.service_quota is not None:
                out.append(f"endpoint_service = {self.service_quota}")
            if self.endpoint_quota is not None:
                out.append(f"endpoint = {self.endpoint_quota}")
            if self.network_quota is not None:
                out += [f"{kind} = {self.network_quota}" for kind in ("vpc", "subnet", "port")]
        out += [
            "[[account.credential]]",
            f'access_key = "{self.access_key}"',
            f'secret_key = "{self.secret_key}"',
            "",
        ]
        return "\n".join(out)


#: The endpoint quota of the `frugal` account.
FRUGAL_ENDPOINT_QUOTA = 2


def make_accounts() -> Dict[str, Account]:
    """The tenants every test server knows.

    - owner: two projects (the second one tests cross-project isolation), large quotas because
      most of the suite's services and many endpoints are made there;
    - consumer: another account, one project, large quotas;
    - operator: `operator = true` (gateway services, public list);
    - limited: `endpoint_service = 3`, for the service quota test;
    - frugal: `endpoint = 2`, for the endpoint quota test.
    """

    def acct(name, nprojects=1, **kw):
        return Account(
            name=name,
            domain_id=_hex32(),
            projects=[_hex32() for _ in range(nprojects)],
            access_key=f"AK{name.upper()}{secrets.token_hex(6).upper()}",
            secret_key=f"{name}-sk-{secrets.token_urlsafe(18)}",
            **kw,
        )

    return {
        "owner": acct("owner", nprojects=2, service_quota=100000, endpoint_quota=100000,
                      network_quota=100000),
        "consumer": acct("consumer", service_quota=1000, endpoint_quota=100000,
                         network_quota=100000),
        "operator": acct("operator", operator=True, service_quota=1000, endpoint_quota=1000),
        "limited": acct("limited", service_quota=3),
        "frugal": acct("frugal", endpoint_quota=FRUGAL_ENDPOINT_QUOTA),
    }


def seed_inventory(accounts: Dict[str, Account]) -> str:
    """The inventory file (`--inventory`, TOML as in README "Inventory file") every test server
    starts with: the seed page's VPC and port ids, in the owner's first project."""
    return f"""
[[vpc]]
project_id = "{accounts['owner'].project}"
id = "{SEED_VPC_ID}"
name = "seed"
cidr = "192.168.0.0/16"

[[vpc.subnet]]
id = "{SEED_SUBNET_ID}"
name = "seed"
cidr = "192.168.0.0/24"
gateway_ip = "192.168.0.1"

[[vpc.subnet.port]]
id = "{SEED_PORT_ID}"
name = "seed-vm"
device_owner = "{DEVICE_OWNER['VM']}"
"""


# ---------------------------------------------------------------------------------------------
# Networks and backends (made through the VPC SDK)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Network:
    """A VPC with one subnet. `subnet_id` is also the subnet's network id (ports' `network_id`
    and endpoints' `subnet_id`)."""

    vpc_id: str
    subnet_id: str
    vpc_cidr: str
    cidr: str
    gateway_ip: str

    def contains(self, ip: str) -> bool:
        return ipaddress.ip_address(ip) in ipaddress.ip_network(self.cidr)


@dataclass(frozen=True)
class Backend:
    """A port that can back an endpoint service of `server_type`."""

    vpc_id: str
    subnet_id: str
    port_id: str
    ip: str
    server_type: str


def make_vpc(vpc: VpcClient, cidr: str = "10.0.0.0/8", name: Optional[str] = None, **kw):
    return vpc.create_vpc(CreateVpcRequest(body=CreateVpcRequestBody(
        vpc=CreateVpcOption(cidr=cidr, name=name or f"compat-{token()}", **kw)))).vpc


def make_subnet(vpc: VpcClient, vpc_id: str, cidr: str, gateway_ip: Optional[str] = None,
                name: Optional[str] = None, **kw):
    if gateway_ip is None:
        gateway_ip = str(next(ipaddress.ip_network(cidr).hosts()))
    return vpc.create_subnet(CreateSubnetRequest(body=CreateSubnetRequestBody(
        subnet=CreateSubnetOption(name=name or f"sub-{token()}", cidr=cidr,
                                  gateway_ip=gateway_ip, vpc_id=vpc_id, **kw)))).subnet


def make_port(vpc: VpcClient, network_id: str, device_owner: Optional[str] = DEVICE_OWNER["VM"],
              ip: Optional[str] = None, name: Optional[str] = None, **kw):
    fixed = [FixedIp(ip_address=ip)] if ip is not None else None
    return vpc.create_port(CreatePortRequest(body=CreatePortRequestBody(port=CreatePortOption(
        network_id=network_id, device_owner=device_owner, fixed_ips=fixed, name=name,
        **kw)))).port


def private_ips(vpc: VpcClient, subnet_id: str) -> Dict[str, str]:
    """The subnet's allocated addresses: {ip_address: device_owner}."""
    resp = vpc.list_privateips(ListPrivateipsRequest(subnet_id=subnet_id))
    return {p.ip_address: p.device_owner for p in resp.privateips}


# ---------------------------------------------------------------------------------------------
# The server under test
# ---------------------------------------------------------------------------------------------

#: Every server started in this session, so that failure reports can show their logs.
RUNNING: List["VpcepServer"] = []


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class ClientContext:
    """Who an SDK client signs as, so helpers can make backends in the same project."""

    server: "VpcepServer"
    account: str
    project: str


def context(client) -> ClientContext:
    ctx = getattr(client, "_compat", None)
    if ctx is None:
        raise AssertionError("not a client built by VpcepServer.client()")
    return ctx


class VpcepServer:
    """A `vpcep serve` process on a free loopback port with its own SQLite database, started
    with an accounts file and an inventory file (`--inventory`)."""

    def __init__(self, binary: str, accounts: Dict[str, Account], label: str,
                 provisioning_delay: Optional[str] = None, inventory: Optional[str] = None,
                 tls: Optional[Tuple[str, str]] = None, ca_cert: Optional[str] = None):
        """`tls=(cert_file, key_file)` serves HTTPS (`--tls-cert`, `--tls-key`); `ca_cert` is
        the PEM CA that the health check and the SDK clients verify the server against."""
        self.binary = binary
        self.tls = tls
        self.ca_cert = ca_cert
        self.accounts = accounts
        self.label = label
        self.provisioning_delay = provisioning_delay
        self.dir = Path(tempfile.mkdtemp(prefix=f"vpcep-compat-{label}-"))
        self.accounts_file = self.dir / "accounts.toml"
        self.accounts_file.write_text("\n".join(a.toml() for a in accounts.values()))
        self.inventory_file: Optional[Path] = None
        if inventory is not None:
            self.inventory_file = self.dir / "inventory.toml"
            self.inventory_file.write_text(inventory)
        self.log_path = self.dir / "stderr.log"
        self.proc: Optional[subprocess.Popen] = None
        self.port: Optional[int] = None
        self.url = ""
        self._lock = threading.Lock()
        self._networks: Dict[Tuple[str, str], Network] = {}

    # -- process management -------------------------------------------------------------------

    def start(self, timeout: float = 30.0) -> "VpcepServer":
        last_error = ""
        for _attempt in range(5):
            self.port = _free_port()
            scheme = "https" if self.tls else "http"
            self.url = f"{scheme}://127.0.0.1:{self.port}"
            args = [
                self.binary, "serve",
                "--listen", f"127.0.0.1:{self.port}",
                "--database", f"sqlite://{self.dir / 'vpcep.db'}",
                "--region", REGION,
                "--accounts", str(self.accounts_file),
            ]
            if self.inventory_file is not None:
                args += ["--inventory", str(self.inventory_file)]
            if self.provisioning_delay:
                args += ["--provisioning-delay", self.provisioning_delay]
            if self.tls:
                args += ["--tls-cert", self.tls[0], "--tls-key", self.tls[1]]
            env = dict(os.environ, NO_COLOR="1")
            env.setdefault("VPCEP_LOG", "info")
            with open(self.log_path, "ab") as log:
                log.write(f"=== {' '.join(args)}\n".encode())
                log.flush()
                self.proc = subprocess.Popen(args, stdout=log, stderr=log, env=env,
                                             stdin=subprocess.DEVNULL)
            RUNNING.append(self)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                try:
                    r = requests.get(self.url + "/health", timeout=1,
                                     verify=self.ca_cert or True)
                    if r.status_code == 200:
                        return self
                except requests.RequestException:
                    pass
                time.sleep(0.05)
            RUNNING.remove(self)
            last_error = self.log_tail(60)
            self.stop()
            if "in use" not in last_error.lower():
                break  # not a port race: retrying will not help
        raise RuntimeError(f"vpcep server ({self.label}) did not become healthy:\n{last_error}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def restart(self) -> "VpcepServer":
        """Stops the process and starts it again on the same database and files (the URL
        changes: build new clients afterwards)."""
        self.stop()
        if self in RUNNING:
            RUNNING.remove(self)
        return self.start()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_size(self) -> int:
        try:
            return self.log_path.stat().st_size
        except OSError:
            return 0

    def log_since(self, offset: int, max_lines: int = 150) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                text = f.read().decode("utf-8", "replace")
        except OSError:
            return ""
        lines = text.splitlines()
        if len(lines) > max_lines:
            lines = [f"... ({len(lines) - max_lines} earlier lines omitted)"] + lines[-max_lines:]
        return "\n".join(lines)

    def log_tail(self, max_lines: int = 80) -> str:
        return self.log_since(0, max_lines)

    # -- clients ------------------------------------------------------------------------------

    def _builder(self, cls, account, project, with_project, ak, sk, responses):
        a = self.accounts[account]
        creds = BasicCredentials(ak or a.access_key, sk or a.secret_key)
        if with_project:
            creds = creds.with_project_id(project or a.project)
        config = HttpConfig.get_default_config()
        config.timeout = (5, 30)
        if self.ca_cert:
            config.ignore_ssl_verification = False
            config.ssl_ca_cert = self.ca_cert
        builder = cls.new_builder().with_credentials(creds).with_endpoint(self.url) \
            .with_http_config(config)
        if responses is not None:
            handler = HttpHandler().add_response_handler(
                lambda **kw: responses.append(kw["response"]))
            builder = builder.with_http_handler(handler)
        client = builder.build()
        client._compat = ClientContext(self, account, project or a.project)
        return client

    def client(self, account: str = "owner", project: Optional[str] = None,
               with_project: bool = True, ak: Optional[str] = None, sk: Optional[str] = None,
               responses: Optional[list] = None) -> VpcepClient:
        """A VPCEP SDK client for `account`, signing for `project` (default: its first
        project).

        `with_project=False` builds the credentials without a project id, so the SDK leaves the
        `{project_id}` placeholder in the path. `responses`, when given, collects every raw
        `requests.Response` the client receives.
        """
        return self._builder(VpcepClient, account, project, with_project, ak, sk, responses)

    def vpc(self, account: str = "owner", project: Optional[str] = None,
            responses: Optional[list] = None) -> VpcClient:
        """A VPC SDK client (`huaweicloudsdkvpc.v2.VpcClient`) for `account` and `project`."""
        return self._builder(VpcClient, account, project, True, None, None, responses)

    # -- networks and backends ----------------------------------------------------------------

    def network(self, account: str = "owner", project: Optional[str] = None) -> Network:
        """The tenant's shared network on this server (VPC 10.0.0.0/8, subnet 10.0.0.0/16),
        made on first use. Tests take fresh ports and endpoint addresses from it; a test that
        counts addresses or deletes things makes its own with `new_network`."""
        project = project or self.accounts[account].project
        key = (account, project)
        with self._lock:
            if key not in self._networks:
                self._networks[key] = self.new_network(account, project, "10.0.0.0/8",
                                                       "10.0.0.0/16")
            return self._networks[key]

    def new_network(self, account: str = "owner", project: Optional[str] = None,
                    vpc_cidr: str = "172.16.0.0/16", cidr: Optional[str] = None,
                    gateway_ip: Optional[str] = None) -> Network:
        """A fresh VPC with one subnet (by default the whole VPC range as a /24 at its start)."""
        vpc = self.vpc(account, project)
        if cidr is None:
            net = ipaddress.ip_network(vpc_cidr)
            cidr = str(next(net.subnets(new_prefix=max(net.prefixlen, 24))))
        v = make_vpc(vpc, vpc_cidr)
        s = make_subnet(vpc, v.id, cidr, gateway_ip)
        return Network(vpc_id=v.id, subnet_id=s.id, vpc_cidr=vpc_cidr, cidr=cidr,
                       gateway_ip=s.gateway_ip)

    def backend(self, account: str = "owner", server_type: str = "VM",
                project: Optional[str] = None, network: Optional[Network] = None,
                device_owner: Optional[str] = None) -> Backend:
        """A fresh port of `account`/`project` that can back a service of `server_type`, in
        `network` (default: the tenant's shared network)."""
        net = network or self.network(account, project)
        port = make_port(self.vpc(account, project), net.subnet_id,
                         device_owner if device_owner is not None else DEVICE_OWNER[server_type])
        return Backend(vpc_id=net.vpc_id, subnet_id=net.subnet_id, port_id=port.id,
                       ip=port.fixed_ips[0].ip_address, server_type=server_type)

    # -- raw requests -------------------------------------------------------------------------

    def raw(self, method: str, path: str, query: str = "", body: bytes = b"",
            account: Optional[str] = "owner", sdk_date: Optional[str] = None,
            signed_body: Optional[bytes] = None, signed_query: Optional[str] = None,
            ak: Optional[str] = None, sk: Optional[str] = None,
            headers: Optional[dict] = None) -> requests.Response:
        """Sends one request with `requests`. With an `account` it is signed as the SDK signs
        (over `signed_body`/`signed_query` when given, to model tampering after signing);
        with `account=None` it carries no Authorization header at all."""
        url = self.url + path + (("?" + query) if query else "")
        hdrs = {"Content-Type": "application/json;charset=utf-8" if body else "application/json"}
        hdrs.update(headers or {})
        if account is not None:
            a = self.accounts[account]
            hdrs = sign_headers(
                method, self.url, path,
                query if signed_query is None else signed_query,
                body if signed_body is None else signed_body,
                hdrs, ak or a.access_key, sk or a.secret_key, sdk_date=sdk_date,
            )
        return requests.request(method, url, data=body or None, headers=hdrs, timeout=30)


# ---------------------------------------------------------------------------------------------
# SDK-HMAC-SHA256 signing (vpcep-api-spec.md §6.3), independent of the server's code
# ---------------------------------------------------------------------------------------------


def _enc(s: str) -> str:
    # RFC 3986: only A-Z a-z 0-9 - _ . ~ stay literal; upper-case hex.
    return urllib.parse.quote(s, safe="~")


def canonical_uri(raw_path: str) -> str:
    decoded = urllib.parse.unquote(raw_path)
    uri = "/".join(_enc(seg) for seg in decoded.split("/"))
    return uri if uri.endswith("/") else uri + "/"


def canonical_query(raw_query: str) -> str:
    pairs = []
    for part in raw_query.split("&"):
        if not part:
            continue
        k, _, v = part.partition("=")
        # decode %XX only; '+' stays a literal plus
        pairs.append((urllib.parse.unquote(k), urllib.parse.unquote(v)))
    pairs.sort()
    return "&".join(f"{_enc(k)}={_enc(v)}" for k, v in pairs)


def format_sdk_date(t: Optional[_dt.datetime] = None) -> str:
    t = t or _dt.datetime.now(_dt.timezone.utc)
    return t.strftime("%Y%m%dT%H%M%SZ")


def payload_hash(headers: Dict[str, str], body: bytes) -> str:
    """As the SDK: the empty-body hash for no body, else a given X-Sdk-Content-Sha256 value
    (e.g. UNSIGNED-PAYLOAD), else the hex SHA-256 of the body bytes."""
    if not body:
        return hashlib.sha256(b"").hexdigest()
    for k, v in headers.items():
        if k.lower() == "x-sdk-content-sha256":
            return v
    return hashlib.sha256(body).hexdigest()


def signature_of(method: str, raw_path: str, raw_query: str, headers: Dict[str, str],
                 body: bytes, sk: str, date: Optional[str] = None) -> Tuple[str, str]:
    """(SignedHeaders, hex signature) over `headers`, which normally include Host and
    X-Sdk-Date; `date` gives the X-Sdk-Date for the string to sign when it is not among them."""
    signed = sorted((k.lower(), v) for k, v in headers.items() if "_" not in k)
    names = ";".join(k for k, _ in signed)
    canonical_headers = "".join(f"{k}:{v.strip()}\n" for k, v in signed)
    creq = "\n".join([
        method.upper(),
        canonical_uri(raw_path),
        canonical_query(raw_query),
        canonical_headers,
        names,
        payload_hash(headers, body),
    ])
    if date is None:
        date = next(v for k, v in headers.items() if k.lower() == "x-sdk-date").strip()
    sts = "\n".join(["SDK-HMAC-SHA256", date, hashlib.sha256(creq.encode()).hexdigest()])
    sig = hmac.new(sk.encode(), sts.encode(), hashlib.sha256).hexdigest()
    return names, sig


def sign_headers(method: str, base_url: str, raw_path: str, raw_query: str, body: bytes,
                 headers: Dict[str, str], ak: str, sk: str,
                 sdk_date: Optional[str] = None) -> Dict[str, str]:
    """`headers` plus Host, X-Sdk-Date and the Authorization header, as the SDK sends them."""
    out = dict(headers)
    out["Host"] = urllib.parse.urlsplit(base_url).netloc
    out["X-Sdk-Date"] = sdk_date or format_sdk_date()
    names, sig = signature_of(method, raw_path, raw_query, out, body, sk)
    out["Authorization"] = f"SDK-HMAC-SHA256 Access={ak}, SignedHeaders={names}, Signature={sig}"
    return out


# ---------------------------------------------------------------------------------------------
# Test data and small utilities
# ---------------------------------------------------------------------------------------------

_TOKEN_CHARS = "ghijkmnpqrstuvwxyz"  # never hex, so a token cannot match inside a UUID


def token(n: int = 8) -> str:
    """A short unique marker for names and filters (letters outside the hex range)."""
    return "".join(random.choice(_TOKEN_CHARS) for _ in range(n))


def new_uuid() -> str:
    return str(uuid.uuid4())


def ports(*pairs: Tuple[int, int], protocol: Optional[str] = "TCP") -> List[PortList]:
    return [PortList(client_port=c, server_port=s, protocol=protocol) for c, s in pairs]


def service_body(client, backend: Optional[Backend] = None,
                 **kw) -> CreateEndpointServiceRequestBody:
    """A valid create body for `client`'s tenant; keyword arguments override fields (pass
    `None` to leave a field out). Unless both `port_id` and `vpc_id` are given, the backend is
    `backend` or a fresh port made for this call whose `device_owner` fits `server_type`."""
    fields = dict(server_type=backend.server_type if backend else "VM", ports=ports((8080, 90)))
    fields.update(kw)
    if "port_id" not in kw or "vpc_id" not in kw:
        if backend is None:
            ctx = context(client)
            kind = fields.get("server_type")
            backend = ctx.server.backend(ctx.account, kind if kind in DEVICE_OWNER else "VM",
                                         ctx.project)
        fields.setdefault("port_id", backend.port_id)
        fields.setdefault("vpc_id", backend.vpc_id)
    return CreateEndpointServiceRequestBody(**fields)


def create_service(client: VpcepClient, backend: Optional[Backend] = None, **kw):
    return client.create_endpoint_service(
        CreateEndpointServiceRequest(body=service_body(client, backend, **kw)))


def create_service_raw(server: "VpcepServer", account: str = "owner",
                       backend: Optional[Backend] = None, **fields) -> dict:
    """Creates a service with a raw signed request, for fields the Python SDK's create model
    lacks (`enable_policy`, sent by Terraform); answers the JSON body."""
    kind = fields.get("server_type", "VM")
    b = backend or server.backend(account, kind)
    body = {"port_id": b.port_id, "vpc_id": b.vpc_id, "server_type": b.server_type,
            "ports": [{"client_port": 80, "server_port": 8080, "protocol": "TCP"}]}
    body.update(fields)
    r = server.raw("POST", f"/v1/{server.accounts[account].project}/vpc-endpoint-services",
                   body=json.dumps(body).encode(), account=account)
    assert r.status_code == 200, r.text
    return r.json()


def show_service(client: VpcepClient, sid: str):
    return client.list_service_details(ListServiceDetailsRequest(vpc_endpoint_service_id=sid))


def delete_service(client: VpcepClient, sid: str):
    return client.delete_endpoint_service(DeleteEndpointServiceRequest(vpc_endpoint_service_id=sid))


def wait_until(probe: Callable[[], object], ok: Callable[[object], bool], timeout: float = 10.0,
               interval: float = 0.05, what: str = "condition"):
    """Calls `probe` until `ok(result)` holds or `timeout` passes; answers the last result."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = probe()
        if ok(last):
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")
        time.sleep(interval)


class Window:
    """Started just before the request that begins a transition lasting `delay` seconds on a
    server with `--provisioning-delay`; `open()` is true while it cannot have finished yet, so
    a transitional state is asserted only for answers received inside the window."""

    def __init__(self, delay: float = SLOW_DELAY_SECONDS):
        self.delay = delay
        self.t0 = time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def open(self) -> bool:
        return self.elapsed() < self.delay * 0.9


def outcome(call: Callable[[], object]):
    """The result of `call`, or the SDK exception it raised."""
    try:
        return call()
    except sdk_exc.ClientRequestException as e:
        return e


def status_or_404(client: VpcepClient, sid: str) -> str:
    """The service's status, or "404" once it is gone (any other error propagates)."""
    try:
        return show_service(client, sid).status
    except sdk_exc.ClientRequestException as e:
        if e.status_code == 404:
            assert e.error_code == "EndPoint.0005", e
            return "404"
        raise


def wait_status(client: VpcepClient, sid: str, status: str, timeout: float = 10.0) -> str:
    return wait_until(lambda: status_or_404(client, sid), lambda s: s == status,
                      timeout=timeout, what=f"service {sid} to be {status}")


def ready_service(client: VpcepClient, backend: Optional[Backend] = None, **kw):
    """Creates a service and waits until it is `available` (endpoints need that); answers the
    create response."""
    svc = create_service(client, backend, **kw)
    wait_status(client, svc.id, "available")
    return svc


def expect_error(call: Callable[[], object], status: int, code: str):
    """Runs an SDK call that must fail with HTTP `status` and `error_code`; answers the
    exception. Every error must carry a request id (from `X-Request-Id`)."""
    with pytest.raises(sdk_exc.ClientRequestException) as info:
        call()
    e = info.value
    assert (e.status_code, e.error_code) == (status, code), f"got {e}"
    assert e.error_msg, f"empty error_msg: {e}"
    assert e.request_id, f"no request id: {e}"
    return e


# ---------------------------------------------------------------------------------------------
# Endpoints and connections
# ---------------------------------------------------------------------------------------------


def create_endpoint(client: VpcepClient, service_id: str, network: Optional[Network] = None,
                    **kw):
    """Creates an endpoint of `client`'s tenant to `service_id` in `network` (default: the
    tenant's shared network); keyword arguments override body fields."""
    if network is None:
        ctx = context(client)
        network = ctx.server.network(ctx.account, ctx.project)
    fields = dict(endpoint_service_id=service_id, vpc_id=network.vpc_id,
                  subnet_id=network.subnet_id)
    fields.update(kw)
    return client.create_endpoint(CreateEndpointRequest(body=CreateEndpointRequestBody(**fields)))


def show_endpoint(client: VpcepClient, eid: str):
    return client.list_endpoint_info_details(ListEndpointInfoDetailsRequest(vpc_endpoint_id=eid))


def delete_endpoint(client: VpcepClient, eid: str):
    return client.delete_endpoint(DeleteEndpointRequest(vpc_endpoint_id=eid))


def endpoint_status_or_404(client: VpcepClient, eid: str) -> str:
    """The endpoint's status, or "404" once it is gone. Any status outside the documented set
    fails at once: pollers such as Terraform's do."""
    try:
        status = show_endpoint(client, eid).status
    except sdk_exc.ClientRequestException as e:
        if e.status_code == 404:
            assert e.error_code == "EndPoint.2006", e
            return "404"
        raise
    assert status in ENDPOINT_STATUSES, f"undocumented endpoint status {status!r}"
    return status


def wait_endpoint(client: VpcepClient, eid: str, status: str, timeout: float = 10.0) -> str:
    return wait_until(lambda: endpoint_status_or_404(client, eid), lambda s: s == status,
                      timeout=timeout, what=f"endpoint {eid} to be {status}")


def connections(client: VpcepClient, sid: str, **q):
    return client.list_service_connections(
        ListServiceConnectionsRequest(vpc_endpoint_service_id=sid, **q))


def connection_action(client: VpcepClient, sid: str, action: str, *eids: str):
    """#1 with `action` (`receive` | `reject`) for the given endpoint ids."""
    return client.accept_or_reject_endpoint(AcceptOrRejectEndpointRequest(
        vpc_endpoint_service_id=sid,
        body=AcceptOrRejectEndpointRequestBody(action=action, endpoints=list(eids))))


def permit(client: VpcepClient, sid: str, *entries: str, action: str = "add"):
    """#3: adds (or removes) permission entries such as `iam:domain::<domain_id>`."""
    return client.add_or_remove_service_permissions(AddOrRemoveServicePermissionsRequest(
        vpc_endpoint_service_id=sid,
        body=AddOrRemoveServicePermissionsRequestBody(permissions=list(entries), action=action)))
