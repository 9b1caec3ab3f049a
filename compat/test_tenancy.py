"""Tenancy: resources are scoped by project; another tenant's service is a 404; the path's
project must belong to the signer (403) and be a project id at all (400 EndPoint.0014)."""

import secrets

from huaweicloudsdkvpcep.v1 import (
    ListEndpointServiceRequest,
    UpdateEndpointServiceNameRequest,
    UpdateEndpointServiceNameRequestBody,
    UpdateEndpointServiceRequest,
    UpdateEndpointServiceRequestBody,
)

from vpcep_support import (
    create_service,
    delete_service,
    expect_error,
    new_uuid,
    show_service,
    token,
    wait_status,
)


def listing(client, **q):
    return client.list_endpoint_service(ListEndpointServiceRequest(**q))


def test_other_account_gets_404_for_the_owners_service(owner, consumer):
    svc = create_service(owner, service_name="ten" + token(6))
    wait_status(owner, svc.id, "available")
    expect_error(lambda: show_service(consumer, svc.id), 404, "EndPoint.0005")
    expect_error(lambda: consumer.update_endpoint_service(UpdateEndpointServiceRequest(
        vpc_endpoint_service_id=svc.id,
        body=UpdateEndpointServiceRequestBody(approval_enabled=False))), 404, "EndPoint.0005")
    expect_error(lambda: consumer.update_endpoint_service_name(UpdateEndpointServiceNameRequest(
        vpc_endpoint_service_id=svc.id,
        body=UpdateEndpointServiceNameRequestBody(endpoint_service_name="stolen"))),
        404, "EndPoint.0005")
    expect_error(lambda: delete_service(consumer, svc.id), 404, "EndPoint.0005")
    assert listing(consumer, id=svc.id).total_count == 0
    # nothing the consumer tried changed the service
    shown = show_service(owner, svc.id)
    assert shown.status == "available" and shown.approval_enabled is True
    assert "stolen" not in shown.service_name


def test_second_project_of_the_same_account_is_isolated(vpcep, accounts, owner):
    second = vpcep.client("owner", project=accounts["owner"].projects[1])
    tok = token()
    first_svc = create_service(owner, service_name=tok + "p1")
    expect_error(lambda: show_service(second, first_svc.id), 404, "EndPoint.0005")
    assert listing(second, endpoint_service_name=tok).total_count == 0
    expect_error(lambda: delete_service(second, first_svc.id), 404, "EndPoint.0005")

    second_svc = create_service(second, service_name=tok + "p2")
    assert second_svc.project_id == accounts["owner"].projects[1]
    assert [s.id for s in listing(second, endpoint_service_name=tok).endpoint_services] == \
        [second_svc.id]
    assert [s.id for s in listing(owner, endpoint_service_name=tok).endpoint_services] == \
        [first_svc.id]
    expect_error(lambda: show_service(owner, second_svc.id), 404, "EndPoint.0005")


def test_project_of_another_account_is_forbidden(vpcep, accounts):
    foreign = vpcep.client("owner", project=accounts["consumer"].project)
    expect_error(lambda: listing(foreign), 403, "EndPoint.0004")
    expect_error(lambda: create_service(foreign, port_id=new_uuid(), vpc_id=new_uuid()),
                 403, "EndPoint.0004")


def test_unknown_project_is_forbidden(vpcep):
    stranger = vpcep.client("owner", project=secrets.token_hex(16))
    expect_error(lambda: listing(stranger), 403, "EndPoint.0004")


def test_missing_project_id_placeholder_is_400(vpcep):
    """Built without a project id, the SDK sends `/v1/{project_id}/...` unfilled."""
    client = vpcep.client("owner", with_project=False)
    expect_error(lambda: listing(client), 400, "EndPoint.0014")
    b = vpcep.backend("owner")
    expect_error(lambda: create_service(client, b), 400, "EndPoint.0014")


def test_malformed_project_id_is_400(vpcep, accounts):
    upper = vpcep.client("owner", project=accounts["owner"].project.upper())
    expect_error(lambda: listing(upper), 400, "EndPoint.0014")
    short = vpcep.client("owner", project="abc123")
    expect_error(lambda: listing(short), 400, "EndPoint.0014")
