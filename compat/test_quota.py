"""Quotas: the `limited` account has `[account.quotas] endpoint_service = 3` (the endpoint
quota is in test_connections.py); list_quota_details (#14) reports usage and limits."""

import json
import threading

from huaweicloudsdkcore.exceptions import exceptions as sdk_exc
from huaweicloudsdkvpcep.v1 import ListQuotaDetailsRequest

from vpcep_support import (
    create_endpoint,
    create_service,
    delete_endpoint,
    delete_service,
    expect_error,
    wait_endpoint,
    wait_status,
)


def test_fourth_service_exceeds_a_quota_of_three(vpcep):
    limited = vpcep.client("limited")
    made = [create_service(limited) for _ in range(3)]
    e = expect_error(lambda: create_service(limited), 400, "Endpoint.1018")
    assert "quota" in e.error_msg.lower()
    # a refused create does not count, and deleting one frees a unit once it is gone
    expect_error(lambda: create_service(limited), 400, "Endpoint.1018")
    delete_service(limited, made[0].id)
    wait_status(limited, made[0].id, "404")
    create_service(limited)
    expect_error(lambda: create_service(limited), 400, "Endpoint.1018")


def test_concurrent_creates_never_exceed_the_quota(fresh_vpcep):
    n = 8
    clients = [fresh_vpcep.client("limited") for _ in range(n)]
    backends = [fresh_vpcep.backend("limited") for _ in range(n)]
    barrier = threading.Barrier(n, timeout=60)
    results = [None] * n

    def worker(i):
        barrier.wait()
        try:
            results[i] = create_service(clients[i], backends[i])
        except Exception as e:  # noqa: BLE001 - reported below
            results[i] = e

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    created = [r for r in results if not isinstance(r, Exception)]
    errors = [r for r in results if isinstance(r, Exception)]
    assert len(created) == 3, (len(created), errors)
    assert all(isinstance(e, sdk_exc.ClientRequestException)
               and (e.status_code, e.error_code) == (400, "Endpoint.1018") for e in errors), errors


# --- list_quota_details (#14) ---------------------------------------------------------------------

def quotas(client, kind=None):
    resp = client.list_quota_details(ListQuotaDetailsRequest(type=kind))
    assert resp.status_code == 200
    return {r.type: (r.used, r.quota) for r in resp.quotas.resources}


def test_quota_details_follow_usage(fresh_vpcep):
    """On a server of its own, usage is exact: creates count, refusals do not, and a deleted
    resource stops counting once it is gone. Limits come from the accounts file."""
    limited = fresh_vpcep.client("limited")
    raw = json.loads(limited.list_quota_details(ListQuotaDetailsRequest()).raw_content)
    assert set(raw) == {"quotas"} and set(raw["quotas"]) == {"resources"}
    for row in raw["quotas"]["resources"]:
        assert set(row) >= {"type", "used", "quota"}
        assert all(isinstance(row[k], int) for k in ("used", "quota"))
    assert quotas(limited) == {"endpoint_service": (0, 3), "endpoint": (0, 50)}
    assert quotas(limited, "endpoint_service") == {"endpoint_service": (0, 3)}
    assert quotas(limited, "endpoint") == {"endpoint": (0, 50)}

    svc = create_service(limited, approval_enabled=False)
    wait_status(limited, svc.id, "available")
    ep = create_endpoint(limited, svc.id)
    assert quotas(limited) == {"endpoint_service": (1, 3), "endpoint": (1, 50)}
    delete_endpoint(limited, ep.id)
    wait_endpoint(limited, ep.id, "404")
    assert quotas(limited, "endpoint") == {"endpoint": (0, 50)}

    create_service(limited)
    create_service(limited)
    expect_error(lambda: create_service(limited), 400, "Endpoint.1018")
    assert quotas(limited, "endpoint_service") == {"endpoint_service": (3, 3)}
    # per project, per account: others are untouched
    assert quotas(fresh_vpcep.client("consumer")) == {"endpoint_service": (0, 1000),
                                                       "endpoint": (0, 100000)}
    assert quotas(fresh_vpcep.client("frugal"), "endpoint") == {"endpoint": (0, 2)}


def test_network_quota_rows_when_asked(vpcep, owner):
    """`type=vpc|subnet|port` answers the network inventory's row (the account's limit, the
    project's usage); without `type` only the VPCEP rows come."""
    vpcep.network()  # the owner holds at least one VPC, subnet and port from here on
    vpcep.backend()
    for kind in ("vpc", "subnet", "port"):
        [(row, (used, quota))] = quotas(owner, kind).items()
        assert (row, quota) == (kind, 100000) and used >= 1, (row, used, quota)
    assert set(quotas(owner)) == {"endpoint", "endpoint_service"}


def test_quota_details_bad_type(owner):
    expect_error(lambda: owner.list_quota_details(ListQuotaDetailsRequest(type="router")),
                 400, "EndPoint.0002")
