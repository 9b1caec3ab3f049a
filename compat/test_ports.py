"""Port mappings shared across services: services on one `port_id` must not repeat a client
port or a server port (same protocol) → 400 EndPoint.3044, also under concurrency and on update."""

import threading

from huaweicloudsdkcore.exceptions import exceptions as sdk_exc
from huaweicloudsdkvpcep.v1 import UpdateEndpointServiceRequest, UpdateEndpointServiceRequestBody

from vpcep_support import (
    create_service,
    delete_service,
    expect_error,
    new_uuid,
    ports,
    show_service,
    wait_status,
)


def update_ports(client, sid, *pairs):
    body = UpdateEndpointServiceRequestBody(ports=ports(*pairs))
    return client.update_endpoint_service(
        UpdateEndpointServiceRequest(vpc_endpoint_service_id=sid, body=body))


def test_client_port_repeated_on_shared_port_id(owner):
    port_id = new_uuid()
    create_service(owner, port_id=port_id, ports=ports((80, 8080)))
    e = expect_error(lambda: create_service(owner, port_id=port_id, ports=ports((80, 9090))),
                     400, "EndPoint.3044")
    assert "80" in e.error_msg


def test_server_port_repeated_on_shared_port_id(owner):
    port_id = new_uuid()
    create_service(owner, port_id=port_id, ports=ports((80, 8080)))
    expect_error(lambda: create_service(owner, port_id=port_id, ports=ports((81, 8080))),
                 400, "EndPoint.3044")


def test_same_mapping_on_shared_port_id(owner):
    port_id = new_uuid()
    create_service(owner, port_id=port_id, ports=ports((80, 8080), (443, 8443)))
    expect_error(lambda: create_service(owner, port_id=port_id, ports=ports((22, 22), (443, 8443))),
                 400, "EndPoint.3044")


def test_conflict_spans_accounts(owner, consumer):
    """The port is a network resource: the rule holds whoever owns the other service."""
    port_id = new_uuid()
    create_service(owner, port_id=port_id, ports=ports((80, 8080)))
    expect_error(lambda: create_service(consumer, port_id=port_id, ports=ports((80, 8080))),
                 400, "EndPoint.3044")


def test_disjoint_ports_on_shared_port_id_are_fine(owner):
    port_id = new_uuid()
    a = create_service(owner, port_id=port_id, ports=ports((80, 8080)))
    b = create_service(owner, port_id=port_id, ports=ports((81, 8081)))
    assert a.id != b.id and a.port_id == b.port_id == port_id


def test_same_ports_on_different_port_ids_are_fine(owner):
    create_service(owner, port_id=new_uuid(), ports=ports((80, 8080)))
    create_service(owner, port_id=new_uuid(), ports=ports((80, 8080)))


def test_update_rechecks_conflicts(owner):
    port_id = new_uuid()
    a = create_service(owner, port_id=port_id, ports=ports((80, 8080)))
    b = create_service(owner, port_id=port_id, ports=ports((81, 8081)))

    # b may not take a's client port or a's server port
    expect_error(lambda: update_ports(owner, b.id, (80, 7070)), 400, "EndPoint.3044")
    expect_error(lambda: update_ports(owner, b.id, (82, 8080)), 400, "EndPoint.3044")
    # a refused update changes nothing
    assert [(p.client_port, p.server_port) for p in show_service(owner, b.id).ports] == [(81, 8081)]

    # a service may keep its own ports while adding new ones
    resp = update_ports(owner, a.id, (80, 8080), (90, 9090))
    assert [(p.client_port, p.server_port) for p in resp.ports] == [(80, 8080), (90, 9090)]

    # moving b away frees its old ports for others
    update_ports(owner, b.id, (82, 8082))
    create_service(owner, port_id=port_id, ports=ports((81, 8081)))
    # ... and a's newly taken ports are claimed
    expect_error(lambda: create_service(owner, port_id=port_id, ports=ports((90, 1))),
                 400, "EndPoint.3044")


def test_update_of_port_id_rechecks_conflicts(owner):
    taken = new_uuid()
    create_service(owner, port_id=taken, ports=ports((80, 8080)))
    b = create_service(owner, ports=ports((80, 8080)))
    expect_error(lambda: owner.update_endpoint_service(UpdateEndpointServiceRequest(
        vpc_endpoint_service_id=b.id, body=UpdateEndpointServiceRequestBody(port_id=taken))),
        400, "EndPoint.3044")
    free = new_uuid()
    resp = owner.update_endpoint_service(UpdateEndpointServiceRequest(
        vpc_endpoint_service_id=b.id, body=UpdateEndpointServiceRequestBody(port_id=free)))
    assert resp.port_id == free
    # the old port_id is free again
    create_service(owner, port_id=b.port_id, ports=ports((80, 8080)))


def test_update_with_a_bad_port_id(owner):
    s = create_service(owner)
    expect_error(lambda: owner.update_endpoint_service(UpdateEndpointServiceRequest(
        vpc_endpoint_service_id=s.id, body=UpdateEndpointServiceRequestBody(port_id="nope"))),
        400, "EndPoint.3003")


def test_deleted_service_releases_its_ports(owner):
    port_id = new_uuid()
    a = create_service(owner, port_id=port_id, ports=ports((80, 8080)))
    delete_service(owner, a.id)
    wait_status(owner, a.id, "404")
    create_service(owner, port_id=port_id, ports=ports((80, 8080)))


def test_concurrent_creates_with_the_same_mapping_admit_exactly_one(vpcep):
    port_id = new_uuid()
    n = 8
    clients = [vpcep.client("owner") for _ in range(n)]
    barrier = threading.Barrier(n)
    results = [None] * n

    def worker(i):
        barrier.wait()
        try:
            results[i] = create_service(clients[i], port_id=port_id, ports=ports((80, 8080)))
        except sdk_exc.ClientRequestException as e:
            results[i] = e
        except Exception as e:  # noqa: BLE001 - reported below
            results[i] = e

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    errors = [r for r in results if isinstance(r, Exception)]
    created = [r for r in results if not isinstance(r, Exception)]
    assert len(created) == 1, f"created {len(created)}; errors: {errors}"
    assert all(isinstance(e, sdk_exc.ClientRequestException)
               and (e.status_code, e.error_code) == (400, "EndPoint.3044") for e in errors), errors


def test_concurrent_creates_with_disjoint_mappings_all_succeed(vpcep):
    port_id = new_uuid()
    n = 6
    clients = [vpcep.client("owner") for _ in range(n)]
    barrier = threading.Barrier(n)
    results = [None] * n

    def worker(i):
        barrier.wait()
        try:
            results[i] = create_service(clients[i], port_id=port_id,
                                        ports=ports((1000 + i, 2000 + i)))
        except Exception as e:  # noqa: BLE001 - reported below
            results[i] = e

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not [r for r in results if isinstance(r, Exception)], results
