"""Fixtures of the compat suite: a freshly started `vpcep serve` (binary from $VPCEP_BIN) with
its own accounts file, inventory file and SQLite database, and SDK clients (VPCEP and VPC) for
each test tenant.

- `vpcep`: the session's server with no provisioning delay (services become `available` at
  once). Tests share it, so each one uses fresh `port_id`s and unique name tokens and never
  relies on what another test left behind.
- `slow_vpcep`: a second server started with `--provisioning-delay`, for lifecycle tests that
  must observe `creating` and `deleting`.
- `fresh_vpcep`: a server of one test's own, for tests that need an empty database.

When a test fails, the server's stderr written while it ran is attached to its report, and the
tail of each server's log is printed at the end of the run.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from vpcep_support import (
    RUNNING,
    SLOW_DELAY_SECONDS,
    VpcepServer,
    create_service,
    make_accounts,
    seed_inventory,
    wait_status,
)


def _binary() -> str:
    path = os.environ.get("VPCEP_BIN")
    if not path:
        root = Path(__file__).resolve().parent.parent
        path = str(root / "target" / "debug" / "vpcep")
    if not os.access(path, os.X_OK):
        pytest.exit(f"vpcep binary not found or not executable: {path} "
                    "(set VPCEP_BIN or run `cargo build -p vpcep`)", returncode=2)
    return path


@pytest.fixture(scope="session")
def accounts():
    """The tenants (see `vpcep_support.make_accounts`); both servers load the same ones."""
    return make_accounts()


def _serve(accounts, label, delay=None):
    server = VpcepServer(_binary(), accounts, label, provisioning_delay=delay,
                         inventory=seed_inventory(accounts))
    server.start()
    return server


def _shutdown(server, request):
    server.stop()
    if request.session.testsfailed == 0:
        shutil.rmtree(server.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def vpcep(accounts, request):
    server = _serve(accounts, "main")
    yield server
    _shutdown(server, request)


@pytest.fixture(scope="session")
def slow_vpcep(accounts, request):
    server = _serve(accounts, "slow", delay=f"{int(SLOW_DELAY_SECONDS * 1000)}ms")
    yield server
    _shutdown(server, request)


@pytest.fixture(scope="session")
def slow_open_service(slow_vpcep):
    """An `available` service of the owner on `slow_vpcep` without approval, shared by the
    tests that only need something to connect to there (each makes its own endpoints)."""
    client = slow_vpcep.client("owner")
    svc = create_service(client, approval_enabled=False)
    wait_status(client, svc.id, "available", timeout=SLOW_DELAY_SECONDS + 10)
    return svc


@pytest.fixture(scope="session")
def slow_approval_service(slow_vpcep):
    """An `available` service of the owner on `slow_vpcep` with approval, shared likewise."""
    client = slow_vpcep.client("owner")
    svc = create_service(client, approval_enabled=True)
    wait_status(client, svc.id, "available", timeout=SLOW_DELAY_SECONDS + 10)
    return svc


@pytest.fixture
def fresh_vpcep(accounts, request):
    """A server of this test's own (empty database), for tests that need a clean slate."""
    server = _serve(accounts, f"fresh-{request.node.name}"[:40])
    yield server
    server.stop()
    if not request.node.stash.get(_FAILED_KEY, False):
        shutil.rmtree(server.dir, ignore_errors=True)


@pytest.fixture
def start_server(accounts, request):
    """Starts servers of this test's own: `start_server(label, inventory=..., ...)` takes the
    keyword arguments of `VpcepServer`; they are stopped when the test ends."""
    started = []

    def start(label, **kw):
        server = VpcepServer(_binary(), accounts, f"{label}-{request.node.name}"[:40], **kw)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()
        if not request.node.stash.get(_FAILED_KEY, False):
            shutil.rmtree(server.dir, ignore_errors=True)


@pytest.fixture
def owner(vpcep):
    """SDK client of the owner account in its first project."""
    return vpcep.client("owner")


@pytest.fixture
def consumer(vpcep):
    """SDK client of another account."""
    return vpcep.client("consumer")


@pytest.fixture
def operator(vpcep):
    """SDK client of the operator account (public services, gateway services)."""
    return vpcep.client("operator")


@pytest.fixture
def owner_vpc(vpcep):
    """VPC SDK client (`huaweicloudsdkvpc.v2.VpcClient`) of the owner's first project."""
    return vpcep.vpc("owner")


@pytest.fixture
def consumer_vpc(vpcep):
    """VPC SDK client of the consumer."""
    return vpcep.vpc("consumer")


# --- failure reporting: the server's stderr ---------------------------------------------------

_OFFSETS_KEY = pytest.StashKey[dict]()
_FAILED_KEY = pytest.StashKey[bool]()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    item.stash[_OFFSETS_KEY] = {id(s): s.log_size() for s in RUNNING}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        item.stash[_FAILED_KEY] = True
        offsets = item.stash.get(_OFFSETS_KEY, {})
        for s in list(RUNNING):
            state = "running" if s.alive() else f"EXITED with {s.proc.returncode}"
            text = s.log_since(offsets.get(id(s), 0))
            report.sections.append(
                (f"vpcep server '{s.label}' ({state}) stderr during {report.when}", text))


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if exitstatus == 0 or not RUNNING:
        return
    for s in RUNNING:
        state = "running" if s.alive() else f"exited with {s.proc.returncode}"
        terminalreporter.section(f"vpcep server '{s.label}' stderr (tail; {state})")
        terminalreporter.write_line(s.log_tail(60))
        terminalreporter.write_line(f"(full log: {s.log_path})")
