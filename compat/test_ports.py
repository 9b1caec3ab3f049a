"""Port mappings shared across services: services on one backend port (`port_id`) must not
repeat a client port or a server port (same protocol) → 400 EndPoint.3044, also under
concurrency and on update. Backends are real ports made through the VPC SDK."""

import threading

from huaweicloudsdkcore.exceptions import exceptions as sdk_exc
from huaweicloudsdkvpcep.v1 import UpdateEndpointServiceRequest, UpdateEndpointServiceRequestBody

from vpcep_support import (
    create_service,
    delete_service,
    expect_error,
    ports,
    show_service,
    wait_status,
)


def update_ports(client, sid, *pairs):
    body = UpdateEndpointServiceRequestBody(ports=ports(*pairs))
    return client.update_endpoint_service(
        UpdateEndpointServiceRequest(vpc_endpoint_service_id=sid, body=body))


def update_port_id(client, sid, port_id):
    return client.update_endpoint_service(UpdateEndpointServiceRequest(
        vpc_endpoint_service_id=sid, body=UpdateEndpointServiceRequestBody(port_id=port_id)))


def test_client_port_repeated_on_shared_port_id(vpcep, owner):
    b = vpcep.backend("owner")
    create_service(owner, b, ports=ports((80, 8080)))
    e = expect_error(lambda: create_service(owner, b, ports=ports((80, 9090))),
                     400, "EndPoint.3044")
    assert "80" in e.error_msg


def test_server_port_repeated_on_shared_port_id(vpcep, owner):
    b = vpcep.backend("owner")
    create_service(owner, b, ports=ports((80, 8080)))
    expect_error(lambda: create_service(owner, b, ports=ports((81, 8080))), 400, "EndPoint.3044")


def test_same_mapping_on_shared_port_id(vpcep, owner):
    b = vpcep.backend("owner")
    create_service(owner, b, ports=ports((80, 8080), (443, 8443)))
    expect_error(lambda: create_service(owner, b, ports=ports((22, 22), (443, 8443))),
                 400, "EndPoint.3044")


def test_another_tenants_port_cannot_back_a_service(vpcep, owner, consumer):
    """A port belongs to its project: another account naming it gets EndPoint.3008 (the port
    does not exist for it), not a port conflict, and claims nothing."""
    b = vpcep.backend("owner")
    create_service(owner, b, ports=ports((80, 8080)))
    expect_error(lambda: create_service(consumer, b, ports=ports((81, 8081))),
                 400, "EndPoint.3008")
    create_service(owner, b, ports=ports((81, 8081)))


def test_disjoint_ports_on_shared_port_id_are_fine(vpcep, owner):
    b = vpcep.backend("owner")
    x = create_service(owner, b, ports=ports((80, 8080)))
    y = create_service(owner, b, ports=ports((81, 8081)))
    assert x.id != y.id and x.port_id == y.port_id == b.port_id


def test_same_ports_on_different_port_ids_are_fine(owner):
    create_service(owner, ports=ports((80, 8080)))
    create_service(owner, ports=ports((80, 8080)))


def test_update_rechecks_conflicts(vpcep, owner):
    b = vpcep.backend("owner")
    x = create_service(owner, b, ports=ports((80, 8080)))
    y = create_service(owner, b, ports=ports((81, 8081)))

    # y may not take x's client port or x's server port
    expect_error(lambda: update_ports(owner, y.id, (80, 7070)), 400, "EndPoint.3044")
    expect_error(lambda: update_ports(owner, y.id, (82, 8080)), 400, "EndPoint.3044")
    # a refused update changes nothing
    assert [(p.client_port, p.server_port) for p in show_service(owner, y.id).ports] == [(81, 8081)]

    # a service may keep its own ports while adding new ones
    resp = update_ports(owner, x.id, (80, 8080), (90, 9090))
    assert [(p.client_port, p.server_port) for p in resp.ports] == [(80, 8080), (90, 9090)]

    # moving y away frees its old ports for others
    update_ports(owner, y.id, (82, 8082))
    create_service(owner, b, ports=ports((81, 8081)))
    # ... and x's newly taken ports are claimed
    expect_error(lambda: create_service(owner, b, ports=ports((90, 1))), 400, "EndPoint.3044")


def test_update_of_port_id_rechecks_conflicts(vpcep, owner):
    taken = vpcep.backend("owner")
    create_service(owner, taken, ports=ports((80, 8080)))
    y = create_service(owner, ports=ports((80, 8080)))
    expect_error(lambda: update_port_id(owner, y.id, taken.port_id), 400, "EndPoint.3044")
    free = vpcep.backend("owner")
    resp = update_port_id(owner, y.id, free.port_id)
    assert resp.port_id == free.port_id
    # the old port is free again
    create_service(owner, port_id=y.port_id, vpc_id=y.vpc_id, ports=ports((80, 8080)))


def test_update_of_port_id_checks_the_inventory(vpcep, owner, consumer):
    """The new port must exist in the caller's project (3008), sit in the service's VPC (3042)
    and fit its server_type (3021); a refused update changes nothing."""
    s = create_service(owner)
    elsewhere = vpcep.backend("owner", network=vpcep.new_network("owner"))
    foreign = vpcep.backend("consumer")
    lb = vpcep.backend("owner", "LB")
    expect_error(lambda: update_port_id(owner, s.id, foreign.port_id), 400, "EndPoint.3008")
    expect_error(lambda: update_port_id(owner, s.id, elsewhere.port_id), 400, "EndPoint.3042")
    expect_error(lambda: update_port_id(owner, s.id, lb.port_id), 400, "EndPoint.3021")
    assert show_service(owner, s.id).port_id == s.port_id


def test_update_with_a_bad_port_id(owner):
    s = create_service(owner)
    expect_error(lambda: update_port_id(owner, s.id, "nope"), 400, "EndPoint.3003")


def test_deleted_service_releases_its_ports(vpcep, owner):
    b = vpcep.backend("owner")
    x = create_service(owner, b, ports=ports((80, 8080)))
    delete_service(owner, x.id)
    wait_status(owner, x.id, "404")
    create_service(owner, b, ports=ports((80, 8080)))


def _race(vpcep, n, make):
    clients = [vpcep.client("owner") for _ in range(n)]
    barrier = threading.Barrier(n, timeout=60)
    results = [None] * n

    def worker(i):
        barrier.wait()
        try:
            results[i] = make(clients[i], i)
        except Exception as e:  # noqa: BLE001 - reported by the caller
            results[i] = e

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results


def test_concurrent_creates_with_the_same_mapping_admit_exactly_one(vpcep):
    b = vpcep.backend("owner")
    results = _race(vpcep, 8, lambda c, i: create_service(c, b, ports=ports((80, 8080))))
    errors = [r for r in results if isinstance(r, Exception)]
    created = [r for r in results if not isinstance(r, Exception)]
    assert len(created) == 1, f"created {len(created)}; errors: {errors}"
    assert all(isinstance(e, sdk_exc.ClientRequestException)
               and (e.status_code, e.error_code) == (400, "EndPoint.3044") for e in errors), errors


def test_concurrent_creates_with_disjoint_mappings_all_succeed(vpcep):
    b = vpcep.backend("owner")
    results = _race(vpcep, 6,
                    lambda c, i: create_service(c, b, ports=ports((1000 + i, 2000 + i))))
    assert not [r for r in results if isinstance(r, Exception)], results
