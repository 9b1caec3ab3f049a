"""Creates the resources the fuzz run works on and writes the schemathesis config.

Random ids only ever reach "not found", so before fuzzing this creates a VPC, a subnet, a
port, an endpoint service on it, an endpoint to that service and a permission record, all with
the fuzz account, and binds their ids (with some probability) to the path parameters and body
fields that name such resources. Usage: fixtures.py BASE_URL OUT_TOML (credentials and project
from VPCEP_FUZZ_AK, VPCEP_FUZZ_SK, VPCEP_FUZZ_PROJECT).
"""

from __future__ import annotations

import json
import os
import sys
import time

import requests

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from sign import SdkHmacAuth  # noqa: E402


def main() -> None:
    base, out = sys.argv[1].rstrip("/"), sys.argv[2]
    project = os.environ["VPCEP_FUZZ_PROJECT"]
    s = requests.Session()
    s.auth = SdkHmacAuth(os.environ["VPCEP_FUZZ_AK"], os.environ["VPCEP_FUZZ_SK"])

    def call(method: str, path: str, body: dict | None = None, ok: int = 200) -> dict:
        r = s.request(method, f"{base}/v1/{project}{path}", json=body, timeout=30)
        if r.status_code != ok:
            sys.exit(f"fixtures: {method} {path} answered {r.status_code}: {r.text}")
        return r.json() if r.content else {}

    vpc = call("POST", "/vpcs", {"vpc": {"name": "fuzz-vpc", "cidr": "10.0.0.0/16"}})["vpc"]
    subnet = call(
        "POST",
        "/subnets",
        {
            "subnet": {
                "name": "fuzz-subnet",
                "cidr": "10.0.1.0/24",
                "gateway_ip": "10.0.1.1",
                "vpc_id": vpc["id"],
            }
        },
    )["subnet"]
    port = call("POST", "/ports", {"port": {"name": "fuzz-port", "network_id": subnet["id"]}})[
        "port"
    ]
    service = call(
        "POST",
        "/vpc-endpoint-services",
        {
            "port_id": port["id"],
            "vpc_id": vpc["id"],
            "server_type": "VM",
            "ports": [{"client_port": 80, "server_port": 8080, "protocol": "TCP"}],
            "approval_enabled": False,
            "enable_policy": True,
            "service_name": "fuzz",
        },
    )
    for _ in range(100):
        if call("GET", f"/vpc-endpoint-services/{service['id']}")["status"] == "available":
            break
        time.sleep(0.1)
    else:
        sys.exit("fixtures: the endpoint service never became available")
    endpoint = call(
        "POST",
        "/vpc-endpoints",
        {"endpoint_service_id": service["id"], "vpc_id": vpc["id"], "subnet_id": subnet["id"]},
    )
    permission, spare_permission = call(
        "POST",
        f"/vpc-endpoint-services/{service['id']}/permissions/batch-create",
        {
            "permissions": [
                {"permission": "iam:domain::" + "1" * 32, "description": "fuzz"},
                {"permission": "iam:domain::" + "2" * 32, "description": "spare"},
            ]
        },
    )["permissions"]

    # Spares for the operations that delete: the resources above stay for the others.
    spare_vpc = call("POST", "/vpcs", {"vpc": {"name": "spare-vpc", "cidr": "10.1.0.0/16"}})["vpc"]
    spare_subnet = call(
        "POST",
        "/subnets",
        {
            "subnet": {
                "name": "spare-subnet",
                "cidr": "10.1.1.0/24",
                "gateway_ip": "10.1.1.1",
                "vpc_id": spare_vpc["id"],
            }
        },
    )["subnet"]
    spare_port = call(
        "POST", "/ports", {"port": {"name": "spare-port", "network_id": subnet["id"]}}
    )["port"]
    service_port = call(
        "POST", "/ports", {"port": {"name": "spare-service-port", "network_id": subnet["id"]}}
    )["port"]
    spare_service = call(
        "POST",
        "/vpc-endpoint-services",
        {
            "port_id": service_port["id"],
            "vpc_id": vpc["id"],
            "server_type": "VM",
            "ports": [{"client_port": 81, "server_port": 8081, "protocol": "TCP"}],
            "service_name": "spare",
        },
    )
    spare_endpoint = call(
        "POST",
        "/vpc-endpoints",
        {"endpoint_service_id": service["id"], "vpc_id": vpc["id"], "subnet_id": subnet["id"]},
    )

    dictionaries = {
        "project": [project],
        "vpc": [vpc["id"]],
        "subnet": [subnet["id"]],
        "port": [port["id"]],
        "service": [service["id"]],
        "endpoint": [endpoint["id"]],
        "resource": [service["id"], endpoint["id"]],
        "permission": [permission["id"]],
        "service_name": [service["service_name"]],
    }
    dictionaries["version"] = ["v1", "v2"]
    # (parameter or body field, dictionary, probability of using it instead of generated data)
    bindings = [
        ("path.version", "version", 0.5),
        ("path.vpc_id", "vpc", 0.7),
        ("path.subnet_id", "subnet", 0.7),
        ("path.port_id", "port", 0.7),
        ("path.vpc_endpoint_service_id", "service", 0.7),
        ("path.vpc_endpoint_id", "endpoint", 0.7),
        ("path.resource_id", "resource", 0.7),
        ("path.permission_id", "permission", 0.7),
        ("query.id", "resource", 0.3),
        ("query.vpc_id", "vpc", 0.3),
        ("query.endpoint_service_name", "service_name", 0.3),
        ("body.vpc_id", "vpc", 0.7),
        ("body.subnet_id", "subnet", 0.7),
        ("body.port_id", "port", 0.7),
        ("body.endpoint_service_id", "service", 0.7),
        ("body.subnet.vpc_id", "vpc", 0.7),
        ("body.port.network_id", "subnet", 0.7),
        ("body.endpoints[*]", "endpoint", 0.7),
        ("body.connections[*].id", "endpoint", 0.7),
        ("body.permissions[*].id", "permission", 0.7),
    ]
    lines = [
        "# Written by fuzz/fixtures.py for one run; see fuzz/run.sh.",
        "[parameters]",
        f'"path.project_id" = {json.dumps(project)}',
    ]
    for key, name, p in bindings:
        lines.append(f'"{key}" = {{ dictionary = "{name}", probability = {p} }}')
    for name, values in dictionaries.items():
        lines += ["", f"[dictionaries.{name}]", f"values = {json.dumps(values)}"]
    # The snapshot long-poll waits up to `timeout` seconds when `since` is the current version;
    # keep the run fast.
    lines += [
        "",
        "[[operations]]",
        'include-path = "/agent/v1/snapshot"',
        'parameters = { "query.timeout" = 0 }',
    ]
    # Deleting operations work on the spares (when not on generated ids).
    deleting = {
        "delete_endpoint": {"path.vpc_endpoint_id": spare_endpoint["id"]},
        "delete_endpoint_service": {"path.vpc_endpoint_service_id": spare_service["id"]},
        "delete_vpc": {"path.vpc_id": spare_vpc["id"]},
        "delete_subnet": {"path.vpc_id": spare_vpc["id"], "path.subnet_id": spare_subnet["id"]},
        "delete_port": {"path.port_id": spare_port["id"]},
        "batch_remove_endpoint_service_permissions": {
            "body.permissions[*].id": spare_permission["id"]
        },
        # Not a deletion, but its entries have a format random strings never meet.
        "add_or_remove_service_permissions": {"body.permissions[*]": "iam:domain::" + "3" * 32},
    }
    for operation_id, params in deleting.items():
        name = f"spare_{operation_id}"
        bound = ", ".join(
            f'"{k}" = {{ dictionary = "{name}_{i}", probability = 0.7 }}'
            for i, k in enumerate(params)
        )
        lines += ["", "[[operations]]", f'include-operation-id = "{operation_id}"']
        lines.append(f"parameters = {{ {bound} }}")
        for i, v in enumerate(params.values()):
            dictionaries[f"{name}_{i}"] = [v]
    for name, values in dictionaries.items():
        if name.startswith("spare_"):
            lines += ["", f"[dictionaries.{name}]", f"values = {json.dumps(values)}"]
    with open(out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"fixtures: vpc {vpc['id']}, service {service['id']}, endpoint {endpoint['id']}")


if __name__ == "__main__":
    main()
