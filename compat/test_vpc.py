"""The VPC API subset (all 16 operations of vpc-api-subset-surface.md) through the official
`huaweicloudsdkvpc` v2 client: VPCs (#12 #13 #14 #15 #16), subnets (#2 #4 #6 #8 #10), ports
(#1 #3 #5 #7 #9) and private IPs (#11); CIDR rules, fixed IPs, address allocation, marker
paging, deletion guards (409 with VPC.* codes) and tenancy.

Lists that cannot be filtered down to a test's own resources (VPCs) are compared within the
test only: the suite runs its tests one after another on the session server."""

import ipaddress
import json
import re

import pytest
from huaweicloudsdkvpc.v2 import (
    AllowedAddressPair,
    CreatePortOption,
    CreatePortRequest,
    CreatePortRequestBody,
    CreateSubnetOption,
    CreateSubnetRequest,
    CreateSubnetRequestBody,
    CreateVpcOption,
    CreateVpcRequest,
    CreateVpcRequestBody,
    DeletePortRequest,
    DeleteSubnetRequest,
    DeleteVpcRequest,
    FixedIp,
    ListPortsRequest,
    ListPrivateipsRequest,
    ListSubnetsRequest,
    ListVpcsRequest,
    Route,
    ShowPortRequest,
    ShowSubnetRequest,
    ShowVpcRequest,
    UpdatePortOption,
    UpdatePortRequest,
    UpdatePortRequestBody,
    UpdateSubnetOption,
    UpdateSubnetRequest,
    UpdateSubnetRequestBody,
    UpdateVpcOption,
    UpdateVpcRequest,
    UpdateVpcRequestBody,
)

from vpcep_support import (
    DEVICE_OWNER,
    create_service,
    delete_service,
    expect_error,
    make_port,
    make_subnet,
    make_vpc,
    new_uuid,
    private_ips,
    token,
    wait_status,
)

TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

# Fields the SDK models mark required (vpc-api-subset-surface.md).
VPC_FIELDS = {"id", "name", "cidr", "description", "routes", "status", "enterprise_project_id",
              "tenant_id", "created_at", "updated_at", "block_service_endpoint_states",
              "enable_network_address_usage_metrics"}
SUBNET_FIELDS = {"id", "name", "description", "cidr", "gateway_ip", "ipv6_enable", "cidr_v6",
                 "gateway_ip_v6", "dhcp_enable", "primary_dns", "secondary_dns", "dnsList",
                 "availability_zone", "vpc_id", "status", "neutron_network_id",
                 "neutron_subnet_id", "neutron_subnet_id_v6", "extra_dhcp_opts", "tenant_id",
                 "created_at", "updated_at", "enable_network_address_usage_metrics",
                 "available_ip_address_count"}
PORT_FIELDS = {"id", "name", "network_id", "admin_state_up", "mac_address", "fixed_ips",
               "device_id", "device_owner", "tenant_id", "status", "security_groups",
               "allowed_address_pairs", "extra_dhcp_opts", "binding:vnic_type",
               "dns_assignment", "dns_name", "binding:vif_details", "binding:profile",
               "instance_id", "instance_type", "port_security_enabled", "zone_id", "enable_efi",
               "ipv6_bandwidth_id"}
PRIVATEIP_FIELDS = {"status", "id", "subnet_id", "tenant_id", "device_owner", "ip_address"}


def show_vpc(vpc, vid):
    return vpc.show_vpc(ShowVpcRequest(vpc_id=vid)).vpc


def show_subnet(vpc, sid):
    return vpc.show_subnet(ShowSubnetRequest(subnet_id=sid)).subnet


def show_port(vpc, pid):
    return vpc.show_port(ShowPortRequest(port_id=pid)).port


def update_vpc(vpc, vid, **fields):
    return vpc.update_vpc(UpdateVpcRequest(
        vpc_id=vid, body=UpdateVpcRequestBody(vpc=UpdateVpcOption(**fields))))


def update_subnet(vpc, vid, sid, **fields):
    body = UpdateSubnetRequestBody(subnet=UpdateSubnetOption(**fields))
    return vpc.update_subnet(UpdateSubnetRequest(vpc_id=vid, subnet_id=sid, body=body))


def update_port(vpc, pid, **fields):
    return vpc.update_port(UpdatePortRequest(
        port_id=pid, body=UpdatePortRequestBody(port=UpdatePortOption(**fields))))


def delete_vpc(vpc, vid):
    return vpc.delete_vpc(DeleteVpcRequest(vpc_id=vid))


def delete_subnet(vpc, vid, sid):
    return vpc.delete_subnet(DeleteSubnetRequest(vpc_id=vid, subnet_id=sid))


def delete_port(vpc, pid):
    return vpc.delete_port(DeletePortRequest(port_id=pid))


def port_ip(port):
    return port.fixed_ips[0].ip_address


# --- VPCs (#12 create, #15 show, #14 list, #16 update, #13 delete) ---------------------------

def test_vpc_lifecycle(owner_vpc, accounts):
    name = "v-" + token()
    resp = owner_vpc.create_vpc(CreateVpcRequest(body=CreateVpcRequestBody(vpc=CreateVpcOption(
        name=name, cidr="10.20.0.0/16", description="compat vpc"))))
    assert resp.status_code == 200
    raw = json.loads(resp.raw_content)["vpc"]
    assert VPC_FIELDS <= set(raw), sorted(VPC_FIELDS - set(raw))
    v = resp.vpc
    assert UUID.match(v.id)
    assert (v.name, v.cidr, v.description) == (name, "10.20.0.0/16", "compat vpc")
    assert v.tenant_id == accounts["owner"].project
    assert v.routes == [] and raw["routes"] == []
    assert v.status == "OK"
    assert TIMESTAMP.match(raw["created_at"]) and TIMESTAMP.match(raw["updated_at"])

    shown = show_vpc(owner_vpc, v.id)
    assert (shown.id, shown.name, shown.cidr) == (v.id, name, "10.20.0.0/16")
    listed = owner_vpc.list_vpcs(ListVpcsRequest(id=v.id)).vpcs
    assert [x.id for x in listed] == [v.id]

    up = update_vpc(owner_vpc, v.id, name=name + "x", description="changed", cidr="10.20.0.0/15",
                    routes=[Route(destination="0.0.0.0/0", nexthop="10.20.0.5")])
    assert up.status_code == 200
    assert (up.vpc.name, up.vpc.description, up.vpc.cidr) == (name + "x", "changed",
                                                              "10.20.0.0/15")
    assert [(r.destination, r.nexthop) for r in up.vpc.routes] == [("0.0.0.0/0", "10.20.0.5")]
    shown = show_vpc(owner_vpc, v.id)
    assert (shown.name, shown.cidr) == (name + "x", "10.20.0.0/15")
    assert [(r.destination, r.nexthop) for r in shown.routes] == [("0.0.0.0/0", "10.20.0.5")]

    assert delete_vpc(owner_vpc, v.id).status_code == 204
    expect_error(lambda: show_vpc(owner_vpc, v.id), 404, "VPC.0003")
    assert owner_vpc.list_vpcs(ListVpcsRequest(id=v.id)).vpcs == []


def test_vpc_cidr_is_optional(owner_vpc):
    v = make_vpc(owner_vpc, cidr=None)
    ipaddress.ip_network(v.cidr)  # a real network, 192.168.0.0/16 by default
    assert v.cidr == "192.168.0.0/16"


@pytest.mark.parametrize("cidr", ["10.0.0.1/16", "10.0.0.0/30", "banana", "224.0.0.0/8",
                                  "10.0.0.0", "10.0.0.0/33"])
def test_vpc_bad_cidr(owner_vpc, cidr):
    expect_error(lambda: make_vpc(owner_vpc, cidr=cidr), 400, "VPC.0101")


def test_vpc_bad_name(owner_vpc):
    expect_error(lambda: make_vpc(owner_vpc, name="a b"), 400, "VPC.0101")
    expect_error(lambda: make_vpc(owner_vpc, name="n" * 65), 400, "VPC.0101")


def test_vpc_cidr_update_must_hold_the_subnets(owner_vpc):
    v = make_vpc(owner_vpc, "10.30.0.0/16")
    make_subnet(owner_vpc, v.id, "10.30.200.0/24")
    expect_error(lambda: update_vpc(owner_vpc, v.id, cidr="10.30.0.0/17"), 400, "VPC.0101")
    assert show_vpc(owner_vpc, v.id).cidr == "10.30.0.0/16"
    assert update_vpc(owner_vpc, v.id, cidr="10.30.128.0/17").vpc.cidr == "10.30.128.0/17"
    expect_error(lambda: update_vpc(owner_vpc, v.id, cidr="10.30.0.1/16"), 400, "VPC.0101")


def test_vpc_list_pages_with_a_marker(owner_vpc):
    mine = [make_vpc(owner_vpc, "10.40.0.0/16").id for _ in range(3)]
    full = [v.id for v in owner_vpc.list_vpcs(ListVpcsRequest()).vpcs]
    assert full[-3:] == mine  # oldest first, and this test made the three newest
    paged, marker = [], None
    for _ in range(100):  # a marker the server ignored would page forever
        page = owner_vpc.list_vpcs(ListVpcsRequest(limit=2, marker=marker)).vpcs
        assert len(page) <= 2
        if not page:
            break
        paged += [v.id for v in page]
        marker = page[-1].id
    else:
        raise AssertionError("the pages never ended")
    assert paged == full
    assert [v.id for v in owner_vpc.list_vpcs(ListVpcsRequest(limit=1, marker=mine[0])).vpcs] \
        == [mine[1]]
    assert owner_vpc.list_vpcs(ListVpcsRequest(marker=mine[-1])).vpcs == []


def test_vpc_list_bad_parameters(owner_vpc):
    expect_error(lambda: owner_vpc.list_vpcs(ListVpcsRequest(limit=0)), 400, "VPC.0101")
    expect_error(lambda: owner_vpc.list_vpcs(ListVpcsRequest(marker=new_uuid())),
                 400, "VPC.0101")


def test_vpc_unknown_ids_are_404(owner_vpc):
    for vid in (new_uuid(), "not-a-uuid"):
        expect_error(lambda: show_vpc(owner_vpc, vid), 404, "VPC.0003")
        expect_error(lambda: update_vpc(owner_vpc, vid, name="x"), 404, "VPC.0003")
        expect_error(lambda: delete_vpc(owner_vpc, vid), 404, "VPC.0003")


# --- subnets (#2 create, #8 show, #6 list, #10 update, #4 delete) ----------------------------

def test_subnet_lifecycle(owner_vpc, accounts):
    v = make_vpc(owner_vpc, "10.50.0.0/16")
    resp = owner_vpc.create_subnet(CreateSubnetRequest(body=CreateSubnetRequestBody(
        subnet=CreateSubnetOption(name="web", cidr="10.50.1.0/24", gateway_ip="10.50.1.1",
                                  vpc_id=v.id, description="d", primary_dns="100.125.1.250",
                                  availability_zone="compat-1a"))))
    assert resp.status_code == 200
    raw = json.loads(resp.raw_content)["subnet"]
    assert SUBNET_FIELDS <= set(raw), sorted(SUBNET_FIELDS - set(raw))
    s = resp.subnet
    assert (s.name, s.cidr, s.gateway_ip, s.vpc_id) == ("web", "10.50.1.0/24", "10.50.1.1", v.id)
    assert s.tenant_id == accounts["owner"].project
    assert s.neutron_network_id == s.id
    assert s.dhcp_enable is True
    assert s.primary_dns == "100.125.1.250"
    assert s.available_ip_address_count == 256 - 3  # network, gateway, broadcast

    shown = show_subnet(owner_vpc, s.id)
    assert (shown.id, shown.cidr, shown.vpc_id) == (s.id, s.cidr, v.id)
    assert [x.id for x in owner_vpc.list_subnets(ListSubnetsRequest(vpc_id=v.id)).subnets] == [s.id]

    up = update_subnet(owner_vpc, v.id, s.id, name="web2", description="new",
                       secondary_dns="100.125.21.250", dhcp_enable=False)
    assert up.status_code == 200
    assert up.subnet.id == s.id and up.subnet.status
    shown = show_subnet(owner_vpc, s.id)
    assert (shown.name, shown.description, shown.secondary_dns, shown.dhcp_enable) == \
        ("web2", "new", "100.125.21.250", False)
    assert shown.cidr == "10.50.1.0/24"

    assert delete_subnet(owner_vpc, v.id, s.id).status_code == 204
    expect_error(lambda: show_subnet(owner_vpc, s.id), 404, "VPC.0202")
    assert owner_vpc.list_subnets(ListSubnetsRequest(vpc_id=v.id)).subnets == []
    assert delete_vpc(owner_vpc, v.id).status_code == 204


@pytest.mark.parametrize("cidr", [
    "10.61.0.0/24",     # outside the VPC
    "10.0.0.0/8",       # contains the VPC
    "10.60.1.0/24",     # equal to a sibling
    "10.60.1.128/25",   # inside a sibling
    "10.60.0.0/23",     # contains a sibling
])
def test_subnet_must_lie_inside_its_vpc_without_overlap(owner_vpc, cidr):
    v = make_vpc(owner_vpc, "10.60.0.0/16")
    make_subnet(owner_vpc, v.id, "10.60.1.0/24")
    expect_error(lambda: make_subnet(owner_vpc, v.id, cidr), 400, "VPC.0204")
    assert len(owner_vpc.list_subnets(ListSubnetsRequest(vpc_id=v.id)).subnets) == 1


def test_adjacent_subnets_and_the_whole_vpc_range_are_fine(owner_vpc):
    v = make_vpc(owner_vpc, "10.62.0.0/23")
    make_subnet(owner_vpc, v.id, "10.62.0.0/24")
    make_subnet(owner_vpc, v.id, "10.62.1.0/24")
    w = make_vpc(owner_vpc, "10.63.0.0/24")
    assert make_subnet(owner_vpc, w.id, "10.63.0.0/24").cidr == "10.63.0.0/24"


@pytest.mark.parametrize("gateway", ["10.64.2.1", "10.64.1.0", "10.64.1.255", "banana"])
def test_subnet_gateway_must_be_a_host_of_the_subnet(owner_vpc, gateway):
    v = make_vpc(owner_vpc, "10.64.0.0/16")
    expect_error(lambda: make_subnet(owner_vpc, v.id, "10.64.1.0/24", gateway_ip=gateway),
                 400, "VPC.0201")


@pytest.mark.parametrize("cidr", ["10.65.1.1/24", "10.65.1.0/30", "nope"])
def test_subnet_bad_cidr(owner_vpc, cidr):
    v = make_vpc(owner_vpc, "10.65.0.0/16")
    expect_error(lambda: make_subnet(owner_vpc, v.id, cidr, gateway_ip="10.65.1.2"),
                 400, "VPC.0201")


def test_subnet_in_an_unknown_vpc_is_404(owner_vpc):
    expect_error(lambda: make_subnet(owner_vpc, new_uuid(), "10.0.0.0/24"), 404, "VPC.0003")


def test_subnet_update_needs_the_right_vpc_and_a_name(owner_vpc):
    v = make_vpc(owner_vpc, "10.66.0.0/16")
    w = make_vpc(owner_vpc, "10.67.0.0/16")
    s = make_subnet(owner_vpc, v.id, "10.66.0.0/24", name="keep")
    expect_error(lambda: update_subnet(owner_vpc, w.id, s.id, name="moved"), 404, "VPC.0202")
    expect_error(lambda: delete_subnet(owner_vpc, w.id, s.id), 404, "VPC.0202")
    expect_error(lambda: update_subnet(owner_vpc, v.id, s.id, name="a b"), 400, "VPC.0201")
    assert show_subnet(owner_vpc, s.id).name == "keep"


def test_subnet_list_pages_with_a_marker(owner_vpc):
    v = make_vpc(owner_vpc, "10.68.0.0/16")
    mine = [make_subnet(owner_vpc, v.id, f"10.68.{i}.0/24").id for i in range(5)]
    assert [s.id for s in owner_vpc.list_subnets(ListSubnetsRequest(vpc_id=v.id)).subnets] == mine
    paged, marker = [], None
    for _ in range(100):  # a marker the server ignored would page forever
        page = owner_vpc.list_subnets(ListSubnetsRequest(vpc_id=v.id, limit=2, marker=marker))
        if not page.subnets:
            break
        assert len(page.subnets) <= 2
        paged += [s.id for s in page.subnets]
        marker = page.subnets[-1].id
    else:
        raise AssertionError("the pages never ended")
    assert paged == mine


def test_subnet_unknown_ids_are_404(owner_vpc):
    v = make_vpc(owner_vpc, "10.69.0.0/16")
    for sid in (new_uuid(), "not-a-uuid"):
        expect_error(lambda: show_subnet(owner_vpc, sid), 404, "VPC.0202")
        expect_error(lambda: update_subnet(owner_vpc, v.id, sid, name="x"), 404, "VPC.0202")
        expect_error(lambda: delete_subnet(owner_vpc, v.id, sid), 404, "VPC.0202")


# --- ports (#1 create, #7 show, #5 list, #9 update, #3 delete) -------------------------------

def test_port_lifecycle(vpcep, owner_vpc, accounts):
    net = vpcep.new_network("owner", vpc_cidr="10.70.0.0/16", cidr="10.70.1.0/24")
    sg = new_uuid()
    resp = owner_vpc.create_port(CreatePortRequest(body=CreatePortRequestBody(
        port=CreatePortOption(name="nic", network_id=net.subnet_id,
                              device_owner=DEVICE_OWNER["VM"], security_groups=[sg],
                              admin_state_up=True))))
    assert resp.status_code == 200
    raw = json.loads(resp.raw_content)["port"]
    assert PORT_FIELDS <= set(raw), sorted(PORT_FIELDS - set(raw))
    p = resp.port
    assert UUID.match(p.id)
    assert (p.name, p.network_id, p.device_owner) == ("nic", net.subnet_id, DEVICE_OWNER["VM"])
    assert p.tenant_id == accounts["owner"].project
    assert p.security_groups == [sg]
    assert re.match(r"^([0-9a-f]{2}:){5}[0-9a-f]{2}$", p.mac_address), p.mac_address
    assert port_ip(p) == "10.70.1.2"  # the lowest host address after the gateway .1
    assert p.status == "ACTIVE"

    shown = show_port(owner_vpc, p.id)
    assert (shown.id, port_ip(shown), shown.mac_address) == (p.id, "10.70.1.2", p.mac_address)
    ids = [x.id for x in owner_vpc.list_ports(ListPortsRequest(network_id=net.subnet_id)).ports]
    assert ids == [p.id]

    up = update_port(owner_vpc, p.id, name="nic2",
                     allowed_address_pairs=[AllowedAddressPair(ip_address="10.70.1.100")])
    assert up.status_code == 200
    assert up.port.name == "nic2"
    assert [a.ip_address for a in up.port.allowed_address_pairs] == ["10.70.1.100"]
    assert port_ip(up.port) == "10.70.1.2"
    assert show_port(owner_vpc, p.id).name == "nic2"

    assert delete_port(owner_vpc, p.id).status_code == 204
    expect_error(lambda: show_port(owner_vpc, p.id), 404, "VPC.0702")
    assert private_ips(owner_vpc, net.subnet_id) == {}


def test_unbound_port_is_down(vpcep, owner_vpc):
    net = vpcep.network("owner")
    p = make_port(owner_vpc, net.subnet_id, device_owner=None)
    assert p.device_owner == "" and p.status == "DOWN"


def test_port_filters(vpcep, owner_vpc):
    net = vpcep.new_network("owner", vpc_cidr="10.71.0.0/16", cidr="10.71.0.0/24")
    name = "n" + token()
    a = make_port(owner_vpc, net.subnet_id, DEVICE_OWNER["VM"], name=name)
    b = make_port(owner_vpc, net.subnet_id, DEVICE_OWNER["LB"], ip="10.71.0.77")

    def ids(**q):
        return [p.id for p in owner_vpc.list_ports(ListPortsRequest(**q)).ports]

    assert ids(network_id=net.subnet_id) == [a.id, b.id]
    assert ids(name=name) == [a.id]
    assert ids(id=[b.id]) == [b.id]
    assert ids(network_id=net.subnet_id, device_owner=DEVICE_OWNER["LB"]) == [b.id]
    assert ids(mac_address=a.mac_address) == [a.id]
    assert ids(network_id=net.subnet_id, fixed_ips=["ip_address=10.71.0.77"]) == [b.id]
    assert ids(network_id=net.subnet_id, limit=1) == [a.id]
    assert ids(network_id=net.subnet_id, marker=a.id) == [b.id]


@pytest.fixture
def three_ports(vpcep, owner_vpc):
    net = vpcep.new_network("owner", vpc_cidr="10.82.0.0/16", cidr="10.82.0.0/24")
    return net, [make_port(owner_vpc, net.subnet_id) for _ in range(3)]


def test_port_filter_by_several_ids(owner_vpc, three_ports):
    _, (a, b, _c) = three_ports
    got = {p.id for p in owner_vpc.list_ports(ListPortsRequest(id=[a.id, b.id])).ports}
    assert got == {a.id, b.id}


def test_port_filter_by_several_addresses(owner_vpc, three_ports):
    # Addresses repeat across subnets of the project, so scope the query to this subnet.
    net, (a, b, _c) = three_ports
    got = {p.id for p in owner_vpc.list_ports(ListPortsRequest(
        network_id=net.subnet_id,
        fixed_ips=[f"ip_address={port_ip(a)}", f"ip_address={port_ip(b)}"])).ports}
    assert got == {a.id, b.id}


def test_port_filter_by_fixed_ip_subnet(owner_vpc, three_ports):
    _, ports = three_ports
    sid = ports[0].fixed_ips[0].subnet_id
    got = {p.id for p in owner_vpc.list_ports(ListPortsRequest(
        fixed_ips=[f"subnet_id={sid}"])).ports}
    assert got == {p.id for p in ports}


def test_port_filter_by_security_group(vpcep, owner_vpc):
    net = vpcep.new_network("owner", vpc_cidr="10.83.0.0/16", cidr="10.83.0.0/24")
    sg = new_uuid()
    member = make_port(owner_vpc, net.subnet_id, security_groups=[sg])
    make_port(owner_vpc, net.subnet_id)
    got = [p.id for p in owner_vpc.list_ports(ListPortsRequest(security_groups=[sg])).ports]
    assert got == [member.id]


def test_fixed_ip_must_be_a_free_host_of_the_subnet(vpcep, owner_vpc):
    net = vpcep.new_network("owner", vpc_cidr="10.72.0.0/16", cidr="10.72.1.0/24")
    p = make_port(owner_vpc, net.subnet_id, ip="10.72.1.50")
    assert port_ip(p) == "10.72.1.50"
    e = expect_error(lambda: make_port(owner_vpc, net.subnet_id, ip="10.72.1.50"), 409, "VPC.0703")
    assert "10.72.1.50" in e.error_msg
    for bad in ("10.72.2.5", "10.72.1.1", "10.72.1.0", "10.72.1.255", "300.1.1.1"):
        expect_error(lambda: make_port(owner_vpc, net.subnet_id, ip=bad), 400, "VPC.0701")
    assert private_ips(owner_vpc, net.subnet_id) == {"10.72.1.50": DEVICE_OWNER["VM"]}


def test_fixed_ip_subnet_must_be_the_ports_network(vpcep, owner_vpc):
    net = vpcep.new_network("owner", vpc_cidr="10.73.0.0/16", cidr="10.73.1.0/24")
    other = make_subnet(owner_vpc, net.vpc_id, "10.73.2.0/24")

    def create(subnet_id):
        return owner_vpc.create_port(CreatePortRequest(body=CreatePortRequestBody(
            port=CreatePortOption(network_id=net.subnet_id,
                                  fixed_ips=[FixedIp(subnet_id=subnet_id)])))).port

    expect_error(lambda: create(other.id), 400, "VPC.0701")
    own = show_subnet(owner_vpc, net.subnet_id)
    assert create(own.neutron_subnet_id).network_id == net.subnet_id
    assert create(net.subnet_id).network_id == net.subnet_id


def test_allocation_skips_network_gateway_and_broadcast(vpcep, owner_vpc):
    """A /29 with the gateway in the middle: five assignable addresses, lowest first."""
    net = vpcep.new_network("owner", vpc_cidr="10.74.0.0/24", cidr="10.74.0.8/29",
                            gateway_ip="10.74.0.11")
    assert show_subnet(owner_vpc, net.subnet_id).available_ip_address_count == 5
    got = [port_ip(make_port(owner_vpc, net.subnet_id)) for _ in range(5)]
    assert got == ["10.74.0.9", "10.74.0.10", "10.74.0.12", "10.74.0.13", "10.74.0.14"]
    assert show_subnet(owner_vpc, net.subnet_id).available_ip_address_count == 0
    expect_error(lambda: make_port(owner_vpc, net.subnet_id), 409, "VPC.0703")


def test_freed_addresses_are_handed_out_again(vpcep, owner_vpc):
    net = vpcep.new_network("owner", vpc_cidr="10.75.0.0/24", cidr="10.75.0.0/28")
    ports = [make_port(owner_vpc, net.subnet_id) for _ in range(3)]
    assert [port_ip(p) for p in ports] == ["10.75.0.2", "10.75.0.3", "10.75.0.4"]
    delete_port(owner_vpc, ports[1].id)
    assert port_ip(make_port(owner_vpc, net.subnet_id)) == "10.75.0.3"
    assert show_subnet(owner_vpc, net.subnet_id).available_ip_address_count == 16 - 3 - 3


def test_port_in_an_unknown_network_is_404(owner_vpc):
    expect_error(lambda: make_port(owner_vpc, new_uuid()), 404, "VPC.0202")


def test_port_bad_parameters(vpcep, owner_vpc):
    net = vpcep.network("owner")
    expect_error(lambda: make_port(owner_vpc, "nope"), 400, "VPC.0701")
    expect_error(lambda: make_port(owner_vpc, net.subnet_id, device_owner="a b"),
                 400, "VPC.0701")
    expect_error(lambda: make_port(owner_vpc, net.subnet_id, security_groups=["sg"]),
                 400, "VPC.0701")


def test_port_unknown_ids_are_404(owner_vpc):
    for pid in (new_uuid(), "not-a-uuid"):
        expect_error(lambda: show_port(owner_vpc, pid), 404, "VPC.0702")
        expect_error(lambda: update_port(owner_vpc, pid, name="x"), 404, "VPC.0702")
        expect_error(lambda: delete_port(owner_vpc, pid), 404, "VPC.0702")


# --- private IPs (#11) -----------------------------------------------------------------------

def test_private_ips_list_the_allocated_addresses(vpcep, owner_vpc, accounts):
    net = vpcep.new_network("owner", vpc_cidr="10.76.0.0/24", cidr="10.76.0.0/26")
    vm = make_port(owner_vpc, net.subnet_id, DEVICE_OWNER["VM"])
    lb = make_port(owner_vpc, net.subnet_id, DEVICE_OWNER["LB"], ip="10.76.0.40")
    resp = owner_vpc.list_privateips(ListPrivateipsRequest(subnet_id=net.subnet_id))
    assert resp.status_code == 200
    raw = json.loads(resp.raw_content)["privateips"]
    for entry in raw:
        assert PRIVATEIP_FIELDS <= set(entry), sorted(PRIVATEIP_FIELDS - set(entry))
    got = {p.ip_address: p for p in resp.privateips}
    assert set(got) == {port_ip(vm), "10.76.0.40"}
    assert got["10.76.0.40"].device_owner == DEVICE_OWNER["LB"]
    assert got[port_ip(vm)].device_owner == DEVICE_OWNER["VM"]
    for p in resp.privateips:
        assert p.subnet_id == net.subnet_id
        assert p.tenant_id == accounts["owner"].project
        assert p.status == "ACTIVE"
        assert UUID.match(p.id)
    delete_port(owner_vpc, lb.id)
    assert private_ips(owner_vpc, net.subnet_id) == {port_ip(vm): DEVICE_OWNER["VM"]}


def test_private_ips_page_with_a_marker(vpcep, owner_vpc):
    net = vpcep.new_network("owner", vpc_cidr="10.77.0.0/24", cidr="10.77.0.0/26")
    for _ in range(5):
        make_port(owner_vpc, net.subnet_id)
    everything = owner_vpc.list_privateips(ListPrivateipsRequest(subnet_id=net.subnet_id))
    assert len(everything.privateips) == 5
    paged, marker = [], None
    for _ in range(100):  # a marker the server ignored would page forever
        page = owner_vpc.list_privateips(ListPrivateipsRequest(
            subnet_id=net.subnet_id, limit=2, marker=marker)).privateips
        if not page:
            break
        assert len(page) <= 2
        paged += [p.id for p in page]
        marker = page[-1].id
    else:
        raise AssertionError("the pages never ended")
    assert paged == [p.id for p in everything.privateips]


def test_private_ips_of_an_unknown_subnet_are_404(owner_vpc):
    expect_error(lambda: owner_vpc.list_privateips(ListPrivateipsRequest(subnet_id=new_uuid())),
                 404, "VPC.0202")


# --- deletion guards ---------------------------------------------------------------------------

def test_deletion_guards_and_teardown_order(vpcep, owner, owner_vpc):
    """A VPC with subnets, a subnet with ports and a port backing a service are refused with
    409; once the dependants are gone, each delete works."""
    net = vpcep.new_network("owner", vpc_cidr="10.78.0.0/24", cidr="10.78.0.0/28")
    b = vpcep.backend("owner", network=net)
    svc = create_service(owner, b)

    expect_error(lambda: delete_vpc(owner_vpc, net.vpc_id), 409, "VPC.0109")
    expect_error(lambda: delete_subnet(owner_vpc, net.vpc_id, net.subnet_id), 409, "VPC.0211")
    e = expect_error(lambda: delete_port(owner_vpc, b.port_id), 409, "VPC.0710")
    assert svc.id in e.error_msg
    assert show_port(owner_vpc, b.port_id).id == b.port_id

    delete_service(owner, svc.id)
    wait_status(owner, svc.id, "404")
    assert delete_port(owner_vpc, b.port_id).status_code == 204
    assert delete_subnet(owner_vpc, net.vpc_id, net.subnet_id).status_code == 204
    assert delete_vpc(owner_vpc, net.vpc_id).status_code == 204
    expect_error(lambda: show_vpc(owner_vpc, net.vpc_id), 404, "VPC.0003")


def test_port_of_a_deleting_service_is_still_in_use(slow_vpcep):
    """While the service is `deleting` (here: deleted while still `creating`) it still holds
    its backend."""
    client, vpc = slow_vpcep.client("owner"), slow_vpcep.vpc("owner")
    b = slow_vpcep.backend("owner")
    svc = create_service(client, b)
    delete_service(client, svc.id)
    expect_error(lambda: delete_port(vpc, b.port_id), 409, "VPC.0710")
    wait_status(client, svc.id, "404", timeout=15)
    assert delete_port(vpc, b.port_id).status_code == 204


# --- tenancy -------------------------------------------------------------------------------------

def test_another_tenants_network_is_invisible(vpcep, owner_vpc, consumer_vpc):
    net = vpcep.new_network("owner", vpc_cidr="10.79.0.0/24", cidr="10.79.0.0/28")
    p = make_port(owner_vpc, net.subnet_id)
    expect_error(lambda: show_vpc(consumer_vpc, net.vpc_id), 404, "VPC.0003")
    expect_error(lambda: update_vpc(consumer_vpc, net.vpc_id, name="stolen"), 404, "VPC.0003")
    expect_error(lambda: delete_vpc(consumer_vpc, net.vpc_id), 404, "VPC.0003")
    expect_error(lambda: show_subnet(consumer_vpc, net.subnet_id), 404, "VPC.0202")
    expect_error(lambda: update_subnet(consumer_vpc, net.vpc_id, net.subnet_id, name="x"),
                 404, "VPC.0202")
    expect_error(lambda: delete_subnet(consumer_vpc, net.vpc_id, net.subnet_id),
                 404, "VPC.0202")
    expect_error(lambda: show_port(consumer_vpc, p.id), 404, "VPC.0702")
    expect_error(lambda: update_port(consumer_vpc, p.id, name="x"), 404, "VPC.0702")
    expect_error(lambda: delete_port(consumer_vpc, p.id), 404, "VPC.0702")
    expect_error(lambda: consumer_vpc.list_privateips(
        ListPrivateipsRequest(subnet_id=net.subnet_id)), 404, "VPC.0202")
    # nor can it build inside it
    expect_error(lambda: make_subnet(consumer_vpc, net.vpc_id, "10.79.0.16/28"), 404, "VPC.0003")
    expect_error(lambda: make_port(consumer_vpc, net.subnet_id), 404, "VPC.0202")
    # and its lists never show it
    assert consumer_vpc.list_vpcs(ListVpcsRequest(id=net.vpc_id)).vpcs == []
    assert consumer_vpc.list_subnets(ListSubnetsRequest(vpc_id=net.vpc_id)).subnets == []
    assert consumer_vpc.list_ports(ListPortsRequest(network_id=net.subnet_id)).ports == []
    assert show_vpc(owner_vpc, net.vpc_id).name != "stolen"
    assert private_ips(owner_vpc, net.subnet_id) == {port_ip(p): DEVICE_OWNER["VM"]}


def test_projects_of_one_account_are_separate(vpcep, accounts, owner_vpc):
    second = vpcep.vpc("owner", project=accounts["owner"].projects[1])
    v = make_vpc(owner_vpc, "10.80.0.0/16")
    expect_error(lambda: show_vpc(second, v.id), 404, "VPC.0003")
    w = make_vpc(second, "10.80.0.0/16")
    assert w.tenant_id == accounts["owner"].projects[1]
    expect_error(lambda: show_vpc(owner_vpc, w.id), 404, "VPC.0003")


def test_foreign_project_in_the_path_is_forbidden(vpcep, accounts):
    foreign = vpcep.vpc("owner", project=accounts["consumer"].project)
    expect_error(lambda: foreign.list_vpcs(ListVpcsRequest()), 403, "EndPoint.0004")
    expect_error(lambda: make_vpc(foreign, "10.0.0.0/16"), 403, "EndPoint.0004")
