"""Create endpoint service (#7) and show (#17): what the SDK sends and reads back."""

import datetime
import json
import re
import uuid

import pytest
from huaweicloudsdkvpcep.v1 import (
    CreateEndpointServiceRequest,
    CreateEndpointServiceRequestBody,
    ListEndpointServiceRequest,
    PortList,
    TagList,
)

from vpcep_support import (
    REGION,
    SEED_PORT_ID,
    SEED_VPC_ID,
    create_service,
    expect_error,
    ports,
    show_service,
    token,
    wait_status,
)

TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


def port_tuples(resp_ports):
    return [(p.client_port, p.server_port, p.protocol) for p in resp_ports]


def test_create_with_the_seed_example_body(vpcep, owner, accounts):
    """The request body of the seed page, verbatim: its port and VPC ids exist because every
    test server is started with them in an `--inventory` file (`seed_inventory`)."""
    assert (SEED_PORT_ID, SEED_VPC_ID) == ("4189d3c2-8882-4871-a3c2-d380272eed88",
                                           "4189d3c2-8882-4871-a3c2-d380272eed80")
    body = CreateEndpointServiceRequestBody(
        port_id="4189d3c2-8882-4871-a3c2-d380272eed88",
        vpc_id="4189d3c2-8882-4871-a3c2-d380272eed80",
        approval_enabled=False,
        service_type="interface",
        server_type="VM",
        ports=[
            PortList(client_port=8080, server_port=90, protocol="TCP"),
            PortList(client_port=8081, server_port=80, protocol="TCP"),
        ],
    )
    resp = owner.create_endpoint_service(CreateEndpointServiceRequest(body=body))
    assert resp.status_code == 200
    uuid.UUID(resp.id)
    assert resp.port_id == "4189d3c2-8882-4871-a3c2-d380272eed88"
    assert resp.vpc_id == "4189d3c2-8882-4871-a3c2-d380272eed80"
    assert resp.approval_enabled is False
    assert resp.service_type == "interface"
    assert resp.server_type == "VM"
    assert resp.status == "creating"
    assert resp.project_id == accounts["owner"].project
    assert resp.service_name == f"{REGION}.{resp.id}"
    assert resp.tcp_proxy == "close"
    assert port_tuples(resp.ports) == [(8080, 90, "TCP"), (8081, 80, "TCP")]

    raw = json.loads(resp.raw_content)
    assert TIMESTAMP.match(raw["created_at"]), raw["created_at"]
    assert TIMESTAMP.match(raw["updated_at"]), raw["updated_at"]
    assert raw["approval_enabled"] is False
    assert raw["tags"] == []
    assert all(isinstance(p["client_port"], int) for p in raw["ports"])

    wait_status(owner, resp.id, "available")
    shown = show_service(owner, resp.id)
    assert shown.id == resp.id
    assert shown.service_name == resp.service_name
    assert port_tuples(shown.ports) == [(8080, 90, "TCP"), (8081, 80, "TCP")]
    assert shown.approval_enabled is False


def test_create_defaults(owner):
    resp = create_service(owner)  # only the four mandatory fields
    assert resp.approval_enabled is True
    assert resp.service_type == "interface"
    assert resp.tcp_proxy == "close"
    assert resp.status == "creating"
    assert resp.server_type == "VM"
    assert resp.service_name == f"{REGION}.{resp.id}"
    raw = json.loads(resp.raw_content)
    assert raw["approval_enabled"] is True
    assert raw["tags"] == []
    assert raw["error"] == []


def test_show_becomes_available(owner):
    resp = create_service(owner)
    wait_status(owner, resp.id, "available", timeout=10)
    shown = show_service(owner, resp.id)
    assert shown.status == "available"
    assert shown.approval_enabled is True
    assert shown.tcp_proxy == "close"


def test_full_name_includes_the_short_name(owner):
    name = "Web_" + token(6) + "-1"
    resp = create_service(owner, service_name=name)
    assert resp.service_name == f"{REGION}.{name}.{resp.id}"
    assert show_service(owner, resp.id).service_name == f"{REGION}.{name}.{resp.id}"


def test_full_name_without_short_name(owner):
    resp = create_service(owner)
    assert resp.service_name == f"{REGION}.{resp.id}"
    assert show_service(owner, resp.id).service_name == f"{REGION}.{resp.id}"


def test_empty_short_name_means_no_name(owner):
    resp = create_service(owner, service_name="")
    assert resp.service_name == f"{REGION}.{resp.id}"


def test_sixteen_character_name_is_accepted(owner):
    name = "n" + token(15)
    assert len(name) == 16
    resp = create_service(owner, service_name=name)
    assert resp.service_name == f"{REGION}.{name}.{resp.id}"


def test_ports_are_echoed_in_request_order(owner):
    sent = [(9003, 3003), (9001, 3001), (9002, 3001), (22, 2222)]
    resp = create_service(owner, ports=ports(*sent))
    want = [(c, s, "TCP") for c, s in sent]
    assert port_tuples(resp.ports) == want
    assert port_tuples(show_service(owner, resp.id).ports) == want


def test_protocol_defaults_to_tcp(owner):
    resp = create_service(owner, ports=ports((80, 8080), protocol=None))
    assert port_tuples(resp.ports) == [(80, 8080, "TCP")]


def test_two_hundred_ports_are_accepted(owner):
    sent = [(i, 10000 + i) for i in range(1, 201)]
    resp = create_service(owner, ports=ports(*sent))
    assert port_tuples(resp.ports) == [(c, s, "TCP") for c, s in sent]


def test_tags_are_echoed(owner):
    tags = [TagList(key="env", value="prod"), TagList(key="team", value=""),
            TagList(key="环境", value="测试"), TagList(key="k" * 36, value="v" * 43)]
    resp = create_service(owner, tags=tags)
    want = {(t.key, t.value) for t in tags}
    assert {(t.key, t.value) for t in resp.tags} == want
    assert {(t.key, t.value) for t in show_service(owner, resp.id).tags} == want


def test_ten_tags_are_accepted(owner):
    tags = [TagList(key=f"k{i}", value=f"v{i}") for i in range(10)]
    resp = create_service(owner, tags=tags)
    assert len(resp.tags) == 10


@pytest.mark.parametrize("mode", ["close", "toa_open", "proxy_open", "open", "proxy_vni"])
def test_tcp_proxy_is_echoed(owner, mode):
    resp = create_service(owner, tcp_proxy=mode)
    assert resp.tcp_proxy == mode
    assert show_service(owner, resp.id).tcp_proxy == mode


@pytest.mark.parametrize("server_type", ["VM", "VIP", "LB"])
def test_server_types(owner, server_type):
    resp = create_service(owner, server_type=server_type)
    assert resp.server_type == server_type


def test_description_and_approval_are_kept(owner):
    desc = "d" * 127 + "é"
    resp = create_service(owner, description=desc, approval_enabled=False)
    shown = show_service(owner, resp.id)
    assert shown.description == desc
    assert shown.approval_enabled is False


def test_show_unknown_and_malformed_ids_are_404(owner):
    expect_error(lambda: show_service(owner, str(uuid.uuid4())), 404, "EndPoint.0005")
    expect_error(lambda: show_service(owner, "not-a-uuid"), 404, "EndPoint.0005")


def test_ip_address_is_kept(owner):
    # The backend's address lies inside the service's VPC (the shared network: 10.0.0.0/8).
    resp = create_service(owner, ip="10.200.0.10")
    assert resp.ip == "10.200.0.10"
    assert show_service(owner, resp.id).ip == "10.200.0.10"


def test_ip_outside_the_vpc_is_refused(owner):
    """A backend stays in the provider's network: no host loopback, metadata or public
    address that would let the data plane connect outside it."""
    for outside in ("192.168.0.10", "127.0.0.1", "169.254.169.254", "8.8.8.8"):
        expect_error(lambda: create_service(owner, ip=outside), 400, "EndPoint.3010")


def test_ip_may_be_a_domain_name(owner):
    resp = create_service(owner, ip="backend.example.com")
    assert resp.ip == "backend.example.com"


def test_timestamps_parse_as_utc_datetimes(owner):
    """With python-dateutil installed (as in most user environments) the SDK parses
    created_at/updated_at into aware datetimes; they must be UTC and about now."""
    resp = create_service(owner)
    now = datetime.datetime.now(datetime.timezone.utc)
    for value in (resp.created_at, resp.updated_at, show_service(owner, resp.id).created_at):
        assert isinstance(value, datetime.datetime), value
        assert value.utcoffset() == datetime.timedelta(0)
        assert abs((value - now).total_seconds()) < 120


def test_unicode_limits_count_characters_not_bytes(owner):
    ok = create_service(owner, tags=[TagList(key="键" * 36, value="值" * 43)],
                        description="é" * 128)
    assert ok.tags[0].key == "键" * 36
    assert ok.description == "é" * 128
    expect_error(lambda: create_service(owner, tags=[TagList(key="键" * 37, value="")]),
                 400, "EndPoint.3072")
    expect_error(lambda: create_service(owner, tags=[TagList(key="k", value="值" * 44)]),
                 400, "EndPoint.3073")
    expect_error(lambda: create_service(owner, description="é" * 129), 400, "EndPoint.0002")


# Fields of the SDK's response models that the server must fill (optional ones like `ip`,
# `pool_id` and `snat_network_id` may be absent).
SHOW_FIELDS = {"id", "port_id", "service_name", "server_type", "vpc_id", "approval_enabled",
               "status", "service_type", "supported_editions", "created_at", "updated_at",
               "project_id", "cidr_type", "ports", "tcp_proxy", "tags", "error",
               "enable_policy", "description"}
LIST_ENTRY_FIELDS = {"id", "port_id", "service_name", "server_type", "vpc_id",
                     "approval_enabled", "status", "service_type", "created_at", "updated_at",
                     "project_id", "domain_id", "ports", "tags", "connection_count", "tcp_proxy",
                     "error", "description", "supported_editions", "public_border_group",
                     "enable_policy"}
CREATE_FIELDS = {"id", "port_id", "service_name", "server_type", "vpc_id", "approval_enabled",
                 "status", "service_type", "created_at", "updated_at", "project_id", "ports",
                 "tcp_proxy", "tags", "description", "enable_policy", "ip_version"}


def test_responses_carry_the_sdk_model_fields(owner, accounts):
    resp = create_service(owner, service_name="f" + token(6))
    created = json.loads(resp.raw_content)
    assert CREATE_FIELDS <= set(created), sorted(CREATE_FIELDS - set(created))
    shown = json.loads(show_service(owner, resp.id).raw_content)
    assert SHOW_FIELDS <= set(shown), sorted(SHOW_FIELDS - set(shown))
    listed = json.loads(owner.list_endpoint_service(
        ListEndpointServiceRequest(id=resp.id)).raw_content)
    assert set(listed) == {"endpoint_services", "total_count"}
    entry = listed["endpoint_services"][0]
    assert LIST_ENTRY_FIELDS <= set(entry), sorted(LIST_ENTRY_FIELDS - set(entry))
    assert entry["domain_id"] == accounts["owner"].domain_id
    assert entry["connection_count"] == 0
    assert isinstance(entry["supported_editions"], list)


def test_terraform_style_body_with_extra_fields(vpcep, accounts):
    """golangsdk (Terraform) also sends vip_port_id, pool_id and enable_policy, which the
    Python SDK model lacks; they must not break the create (raw signed request)."""
    lb = vpcep.backend("owner", "LB")
    body = json.dumps({
        "port_id": lb.port_id, "vpc_id": lb.vpc_id, "server_type": "LB",
        "service_type": "interface", "approval_enabled": False, "vip_port_id": "",
        "pool_id": "", "enable_policy": True, "tcp_proxy": "proxy_open",
        "ports": [{"protocol": "TCP", "client_port": 443, "server_port": 8443}],
        "tags": [{"key": "owner", "value": "tf"}], "description": "from terraform",
    }).encode()
    r = vpcep.raw("POST", f"/v1/{accounts['owner'].project}/vpc-endpoint-services", body=body)
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["approval_enabled"] is False
    assert got["enable_policy"] is True
    assert got["tcp_proxy"] == "proxy_open"
    assert got["ports"] == [{"client_port": 443, "server_port": 8443, "protocol": "TCP"}]
