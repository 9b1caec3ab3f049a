"""Service quota: the `limited` account has `[account.quotas] endpoint_service = 3`. (The
endpoint quota is in test_connections.py.)"""

import threading

from huaweicloudsdkcore.exceptions import exceptions as sdk_exc

from vpcep_support import create_service, delete_service, expect_error, wait_status


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
    barrier = threading.Barrier(n)
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
