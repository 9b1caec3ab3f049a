"""Endpoint services against the network inventory: the backend port must exist in the
caller's project (EndPoint.3008), sit in `vpc_id` (EndPoint.3042), fit `server_type` through its
`device_owner` (EndPoint.3021), and the VPC must not overlap 198.19.128.0/17 (EndPoint.3009).
Also the operator's `--inventory FILE` preload (README "Inventory file")."""

import pytest
from huaweicloudsdkvpc.v2 import (
    ListPortsRequest,
    ListSubnetsRequest,
    ListVpcsRequest,
    ShowPortRequest,
    ShowSubnetRequest,
    ShowVpcRequest,
)

from vpcep_support import (
    DEVICE_OWNER,
    create_service,
    expect_error,
    make_port,
    make_subnet,
    new_uuid,
    private_ips,
    show_service,
    wait_status,
)


def rejects(client, code, **fields):
    return expect_error(lambda: create_service(client, **fields), 400, code)


# --- backend checks ------------------------------------------------------------------------------

@pytest.mark.parametrize("server_type", ["VM", "LB", "VIP"])
def test_each_server_type_on_its_kind_of_port(vpcep, owner, server_type):
    b = vpcep.backend("owner", server_type)
    svc = create_service(owner, b)
    assert (svc.server_type, svc.port_id, svc.vpc_id) == (server_type, b.port_id, b.vpc_id)
    wait_status(owner, svc.id, "available")


def test_unbound_port_backs_a_vm_service(vpcep, owner):
    b = vpcep.backend("owner", device_owner="")
    assert create_service(owner, b, server_type="VM").server_type == "VM"


def test_port_that_does_not_exist(owner):
    e = rejects(owner, "EndPoint.3008", port_id=new_uuid())
    assert "port" in e.error_msg.lower()


def test_port_of_another_tenant_does_not_exist_for_the_caller(vpcep, owner, consumer, accounts):
    foreign = vpcep.backend("consumer")
    rejects(owner, "EndPoint.3008", port_id=foreign.port_id, vpc_id=foreign.vpc_id)
    second = vpcep.client("owner", project=accounts["owner"].projects[1])
    mine = vpcep.backend("owner")
    rejects(second, "EndPoint.3008", port_id=mine.port_id, vpc_id=mine.vpc_id)


def test_port_in_another_vpc(vpcep, owner):
    b = vpcep.backend("owner")
    other = vpcep.new_network("owner")
    e = rejects(owner, "EndPoint.3042", port_id=b.port_id, vpc_id=other.vpc_id)
    assert b.vpc_id in e.error_msg
    rejects(owner, "EndPoint.3042", port_id=b.port_id, vpc_id=new_uuid())


@pytest.mark.parametrize("port_kind,server_type", [
    ("VM", "LB"), ("VM", "VIP"), ("LB", "VM"), ("LB", "VIP"), ("VIP", "VM"), ("VIP", "LB"),
])
def test_server_type_must_fit_the_port(vpcep, owner, port_kind, server_type):
    b = vpcep.backend("owner", port_kind)
    e = rejects(owner, "EndPoint.3021", port_id=b.port_id, vpc_id=b.vpc_id,
                server_type=server_type)
    assert DEVICE_OWNER[port_kind] in e.error_msg


@pytest.mark.parametrize("device_owner", ["network:router_interface_distributed",
                                          "network:dhcp", "neutron:LOADBALANCERV3"])
def test_other_ports(vpcep, owner, device_owner):
    """Router and DHCP ports back no service; a v3 load balancer is an LB."""
    b = vpcep.backend("owner", device_owner=device_owner)
    if device_owner.startswith("neutron:LOADBALANCER"):
        assert create_service(owner, b, server_type="LB").server_type == "LB"
        rejects(owner, "EndPoint.3021", port_id=b.port_id, vpc_id=b.vpc_id, server_type="VM")
    else:
        for st in ("VM", "LB", "VIP"):
            rejects(owner, "EndPoint.3021", port_id=b.port_id, vpc_id=b.vpc_id, server_type=st)


@pytest.mark.parametrize("vpc_cidr,subnet_cidr", [
    ("198.19.0.0/16", "198.19.0.0/24"),       # the VPC contains the reserved range
    ("198.19.130.0/24", "198.19.130.0/25"),   # the VPC lies inside it
    ("198.0.0.0/8", "198.1.0.0/24"),
])
def test_vpc_overlapping_the_reserved_range(vpcep, owner, vpc_cidr, subnet_cidr):
    net = vpcep.new_network("owner", vpc_cidr=vpc_cidr, cidr=subnet_cidr)
    b = vpcep.backend("owner", network=net)
    e = rejects(owner, "EndPoint.3009", port_id=b.port_id, vpc_id=b.vpc_id)
    assert "198.19.128.0/17" in e.error_msg


def test_vpc_next_to_the_reserved_range_is_fine(vpcep, owner):
    net = vpcep.new_network("owner", vpc_cidr="198.19.0.0/17", cidr="198.19.127.0/24")
    b = vpcep.backend("owner", network=net)
    assert create_service(owner, b).vpc_id == net.vpc_id


def test_refused_backends_leave_nothing_behind(vpcep, owner):
    """After a refusal the port is not claimed: the right server_type then works, with the
    same mapping."""
    b = vpcep.backend("owner", "LB")
    rejects(owner, "EndPoint.3021", port_id=b.port_id, vpc_id=b.vpc_id, server_type="VM")
    assert create_service(owner, b).server_type == "LB"


# --- --inventory FILE -------------------------------------------------------------------------

VPC_ID = "6b3c1f0e-0000-4000-8000-000000000001"
LB_SUBNET = "6b3c1f0e-0000-4000-8000-000000000002"
APP_SUBNET = "6b3c1f0e-0000-4000-8000-000000000003"
LB_PORT = "6b3c1f0e-0000-4000-8000-000000000004"
VM_PORT = "6b3c1f0e-0000-4000-8000-000000000005"
FREE_PORT = "6b3c1f0e-0000-4000-8000-000000000006"
CONSUMER_VPC = "6b3c1f0e-0000-4000-8000-000000000007"
CONSUMER_SUBNET = "6b3c1f0e-0000-4000-8000-000000000008"


def inventory(accounts):
    """The README's example, extended: two subnets, explicit and allocated addresses, and a
    VPC of another account."""
    return f"""
[[vpc]]
project_id = "{accounts['owner'].project}"
id = "{VPC_ID}"
name = "provider"
cidr = "10.0.0.0/16"
netns = "provider"

[[vpc.subnet]]
id = "{LB_SUBNET}"
name = "lb"
cidr = "10.0.1.0/24"
gateway_ip = "10.0.1.1"

[[vpc.subnet.port]]
id = "{LB_PORT}"
name = "web-lb"
ip_address = "10.0.1.10"
device_owner = "neutron:LOADBALANCERV2"

[[vpc.subnet.port]]
id = "{FREE_PORT}"
name = "spare"

[[vpc.subnet]]
id = "{APP_SUBNET}"
name = "app"
cidr = "10.0.2.0/24"
gateway_ip = "10.0.2.254"

[[vpc.subnet.port]]
id = "{VM_PORT}"
name = "app-vm"
device_owner = "compute:{'compat-1a'}"

[[vpc]]
project_id = "{accounts['consumer'].project}"
id = "{CONSUMER_VPC}"
name = "consumer"
cidr = "172.31.0.0/16"

[[vpc.subnet]]
id = "{CONSUMER_SUBNET}"
name = "clients"
cidr = "172.31.0.0/24"
gateway_ip = "172.31.0.1"
"""


def check_preloaded(server, app_ports=1):
    vpc = server.vpc("owner")
    v = vpc.show_vpc(ShowVpcRequest(vpc_id=VPC_ID)).vpc
    assert (v.name, v.cidr) == ("provider", "10.0.0.0/16")
    subnets = vpc.list_subnets(ListSubnetsRequest(vpc_id=VPC_ID)).subnets
    assert [(s.id, s.cidr, s.gateway_ip) for s in subnets] == [
        (LB_SUBNET, "10.0.1.0/24", "10.0.1.1"), (APP_SUBNET, "10.0.2.0/24", "10.0.2.254")]
    lb = vpc.show_port(ShowPortRequest(port_id=LB_PORT)).port
    assert (lb.name, lb.fixed_ips[0].ip_address, lb.device_owner, lb.network_id) == \
        ("web-lb", "10.0.1.10", "neutron:LOADBALANCERV2", LB_SUBNET)
    spare = vpc.show_port(ShowPortRequest(port_id=FREE_PORT)).port
    assert (spare.fixed_ips[0].ip_address, spare.device_owner) == ("10.0.1.2", "")
    vm = vpc.show_port(ShowPortRequest(port_id=VM_PORT)).port
    assert (vm.fixed_ips[0].ip_address, vm.device_owner) == ("10.0.2.1", "compute:compat-1a")
    assert private_ips(vpc, LB_SUBNET) == {"10.0.1.10": "neutron:LOADBALANCERV2",
                                           "10.0.1.2": ""}
    assert len(vpc.list_ports(ListPortsRequest(network_id=LB_SUBNET)).ports) == 2
    assert len(vpc.list_ports(ListPortsRequest(network_id=APP_SUBNET)).ports) == app_ports
    # the consumer's VPC is the consumer's only
    cvpc = server.vpc("consumer")
    assert cvpc.show_subnet(ShowSubnetRequest(subnet_id=CONSUMER_SUBNET)).subnet.vpc_id == \
        CONSUMER_VPC
    assert vpc.list_vpcs(ListVpcsRequest(id=CONSUMER_VPC)).vpcs == []


def test_inventory_preload_is_usable_and_idempotent(start_server, accounts):
    server = start_server("inv", inventory=inventory(accounts))
    check_preloaded(server)
    owner = server.client("owner")

    # the preloaded ports back services like any other
    svc = create_service(owner, port_id=LB_PORT, vpc_id=VPC_ID, server_type="LB")
    wait_status(owner, svc.id, "available")
    expect_error(lambda: create_service(owner, port_id=VM_PORT, vpc_id=VPC_ID, server_type="LB"),
                 400, "EndPoint.3021")
    vm_svc = create_service(owner, port_id=VM_PORT, vpc_id=VPC_ID, server_type="VM")
    # ... and the API can build on the preloaded network
    extra = make_port(server.vpc("owner"), APP_SUBNET)
    assert extra.fixed_ips[0].ip_address == "10.0.2.2"

    # a restart with the same file creates nothing twice and keeps everything
    server.restart()
    check_preloaded(server, app_ports=2)
    owner = server.client("owner")
    assert show_service(owner, svc.id).status == "available"
    assert show_service(owner, vm_svc.id).port_id == VM_PORT


def test_inventory_recreates_what_was_deleted(start_server, accounts):
    """Entries are created when absent (by id), so a port deleted through the API comes back
    on the next start, with its address."""
    from huaweicloudsdkvpc.v2 import DeletePortRequest
    server = start_server("inv-re", inventory=inventory(accounts))
    server.vpc("owner").delete_port(DeletePortRequest(port_id=LB_PORT))
    server.restart()
    check_preloaded(server)


@pytest.mark.parametrize("broken,needle", [
    ('cidr = "10.0.1.0/24"', 'cidr = "10.9.1.0/24"'),           # subnet outside its VPC
    ('ip_address = "10.0.1.10"', 'ip_address = "10.0.3.10"'),   # address outside its subnet
    ('name = "web-lb"', 'name = "web-lb"\ncolour = "red"'),     # unknown field
])
def test_invalid_inventory_stops_the_server(start_server, accounts, broken, needle):
    text = inventory(accounts).replace(broken, needle, 1)
    assert text != inventory(accounts)
    with pytest.raises(RuntimeError) as info:
        start_server("inv-bad", inventory=text)
    assert "did not become healthy" in str(info.value)


def test_inventory_and_api_share_the_address_rules(start_server, accounts):
    """An address the API handed out cannot be claimed by a later preload entry: the server
    refuses to start rather than hand it out twice."""
    server = start_server("inv-clash", inventory=inventory(accounts))
    vpc = server.vpc("owner")
    taken = make_port(vpc, LB_SUBNET, ip="10.0.1.20")
    more = inventory(accounts) + f"""
[[vpc]]
project_id = "{accounts['owner'].project}"
id = "{VPC_ID}"
name = "provider"
cidr = "10.0.0.0/16"

[[vpc.subnet]]
id = "{LB_SUBNET}"
name = "lb"
cidr = "10.0.1.0/24"
gateway_ip = "10.0.1.1"

[[vpc.subnet.port]]
id = "{new_uuid()}"
ip_address = "10.0.1.20"
"""
    server.inventory_file.write_text(more)
    with pytest.raises(RuntimeError):
        server.restart()
    assert taken.fixed_ips[0].ip_address == "10.0.1.20"


def test_api_cannot_reuse_preloaded_addresses(start_server, accounts):
    server = start_server("inv-api", inventory=inventory(accounts))
    vpc = server.vpc("owner")
    expect_error(lambda: make_port(vpc, LB_SUBNET, ip="10.0.1.10"), 409, "VPC.0703")
    expect_error(lambda: make_subnet(vpc, VPC_ID, "10.0.1.128/25"), 400, "VPC.0204")
