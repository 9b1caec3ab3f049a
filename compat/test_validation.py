"""Create endpoint service (#7): every validation rule the SDK can run into, with its HTTP
status and error code."""

import pytest
from huaweicloudsdkvpcep.v1 import PortList, TagList

from vpcep_support import create_service, expect_error, ports


def rejects(client, status, code, **fields):
    return expect_error(lambda: create_service(client, **fields), status, code)


# --- mandatory fields ---------------------------------------------------------------------------

@pytest.mark.parametrize("field", ["port_id", "vpc_id", "server_type", "ports"])
def test_each_mandatory_field_missing(owner, field):
    e = rejects(owner, 400, "EndPoint.0002", **{field: None})
    assert field in e.error_msg


def test_empty_ports_list(owner):
    rejects(owner, 400, "EndPoint.3043", ports=[])


# --- ids and enums ------------------------------------------------------------------------------

@pytest.mark.parametrize("bad", ["not-a-uuid", "4189d3c288824871a3c2d380272eed88", "",
                                 "4189d3c2-8882-4871-a3c2-d380272eed8z"])
def test_bad_port_id(owner, bad):
    rejects(owner, 400, "EndPoint.3003", port_id=bad)


@pytest.mark.parametrize("bad", ["vpc-1", "4189d3c288824871a3c2d380272eed80", ""])
def test_bad_vpc_id(owner, bad):
    rejects(owner, 400, "EndPoint.0020", vpc_id=bad)


@pytest.mark.parametrize("bad", ["BMS", "ECS", "", "vm "])
def test_bad_server_type(owner, bad):
    rejects(owner, 400, "EndPoint.3021", server_type=bad)


@pytest.mark.parametrize("bad", ["on", "CLOSE", "proxy", ""])
def test_bad_tcp_proxy(owner, bad):
    rejects(owner, 400, "EndPoint.0002", tcp_proxy=bad)


def test_bad_service_type(owner):
    rejects(owner, 400, "EndPoint.0002", service_type="lan")


def test_wrong_json_type_names_the_field(owner):
    e = rejects(owner, 400, "EndPoint.0002", approval_enabled="yes")
    assert "approval_enabled" in e.error_msg


# --- ports --------------------------------------------------------------------------------------

@pytest.mark.parametrize("client_port,server_port", [
    (0, 80), (80, 0), (65536, 80), (80, 65536), (-1, 80), (80, -5),
])
def test_port_out_of_range(owner, client_port, server_port):
    rejects(owner, 400, "EndPoint.3043", ports=ports((client_port, server_port)))


def test_port_bounds_are_accepted(owner):
    create_service(owner, ports=ports((1, 65535), (65535, 1)))


@pytest.mark.parametrize("missing", ["client_port", "server_port"])
def test_port_number_missing(owner, missing):
    p = PortList(client_port=80, server_port=8080, protocol="TCP")
    setattr(p, missing, None)
    rejects(owner, 400, "EndPoint.3043", ports=[p])


def test_duplicate_mapping(owner):
    rejects(owner, 400, "EndPoint.3043", ports=ports((80, 8080), (81, 8081), (80, 8080)))


def test_same_client_port_mapped_twice(owner):
    rejects(owner, 400, "EndPoint.3043", ports=ports((80, 8080), (80, 8081)))


def test_two_client_ports_may_share_a_server_port(owner):
    resp = create_service(owner, ports=ports((80, 8080), (81, 8080)))
    assert [(p.client_port, p.server_port) for p in resp.ports] == [(80, 8080), (81, 8080)]


def test_more_than_200_ports(owner):
    rejects(owner, 400, "EndPoint.3074", ports=ports(*[(i, i) for i in range(1, 202)]))


@pytest.mark.parametrize("protocol", ["UDP", "HTTP", "ICMP"])
def test_bad_protocol(owner, protocol):
    rejects(owner, 400, "EndPoint.3075", ports=ports((80, 8080), protocol=protocol))


# --- name and description -------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["x" * 17, "a.b", "a b", "名字", "svc!", "a/b"])
def test_bad_service_name(owner, name):
    rejects(owner, 400, "EndPoint.1003", service_name=name)


@pytest.mark.parametrize("desc", ["<b>", "a<b", "a>b", "d" * 129])
def test_bad_description(owner, desc):
    rejects(owner, 400, "EndPoint.0002", description=desc)


def test_bad_ip(owner):
    rejects(owner, 400, "EndPoint.3010", ip="300.1.1.1")


# --- tags -----------------------------------------------------------------------------------------

def tags(*pairs):
    return [TagList(key=k, value=v) for k, v in pairs]


def test_tag_key_too_long(owner):
    rejects(owner, 400, "EndPoint.3072", tags=tags(("k" * 37, "v")))


def test_tag_value_too_long(owner):
    rejects(owner, 400, "EndPoint.3073", tags=tags(("k", "v" * 44)))


def test_tag_key_empty(owner):
    rejects(owner, 400, "EndPoint.3066", tags=tags(("", "v")))


def test_tag_key_absent(owner):
    rejects(owner, 400, "EndPoint.3066", tags=[TagList(value="v")])


@pytest.mark.parametrize("ch", list("=*<>\\,|/"))
def test_tag_key_forbidden_character(owner, ch):
    rejects(owner, 400, "EndPoint.3068", tags=tags((f"a{ch}b", "v")))


@pytest.mark.parametrize("ch", list("=*<>\\,|/"))
def test_tag_value_forbidden_character(owner, ch):
    rejects(owner, 400, "EndPoint.3068", tags=tags(("k", f"a{ch}b")))


@pytest.mark.parametrize("key,value", [(" k", "v"), ("k ", "v"), ("k", " v"), ("k", "v ")])
def test_tag_leading_or_trailing_space(owner, key, value):
    rejects(owner, 400, "EndPoint.3068", tags=tags((key, value)))


def test_duplicate_tag_keys(owner):
    rejects(owner, 400, "EndPoint.3067", tags=tags(("k", "1"), ("k", "2")))


def test_eleven_tags(owner):
    rejects(owner, 400, "EndPoint.3069", tags=tags(*[(f"k{i}", "v") for i in range(11)]))


def test_rejected_create_leaves_nothing_behind(vpcep, owner):
    """A refused create claims no ports: the same mapping on the same port_id then works."""
    b = vpcep.backend("owner")
    expect_error(lambda: create_service(owner, b, ports=ports((80, 8080)),
                                        tags=tags(("a=b", "v"))), 400, "EndPoint.3068")
    create_service(owner, b, ports=ports((80, 8080)))
