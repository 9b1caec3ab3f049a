"""Quota: the `limited` account has `[account.quotas] endpoint_service = 3`."""

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


def test_quota_is_per_account(vpcep, owner):
    """Other accounts are not limited by `limited`'s quota (it is full after the test above or
    not; either way owner can create)."""
    create_service(owner)
