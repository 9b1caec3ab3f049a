"""Fixtures of the console's browser tests: a fresh `vpcep serve` (the compat suite's
`VpcepServer`, with its accounts and the seed inventory) and headless Chromium sessions driven
by Selenium through the system's chromedriver (Debian's `chromium` and `chromium-driver`; no
browser is downloaded). Screenshots go to target/console-screenshots/."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "compat"))

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402

from console_support import resize  # noqa: E402
from vpcep_support import VpcepServer, make_accounts, seed_inventory  # noqa: E402

SCREENSHOTS = ROOT / "target" / "console-screenshots"
CHROMIUM = os.environ.get("CHROMIUM_BIN", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER_BIN", "/usr/bin/chromedriver")


def _binary() -> str:
    path = os.environ.get("VPCEP_BIN") or str(ROOT / "target" / "debug" / "vpcep")
    if not os.access(path, os.X_OK):
        pytest.exit(f"vpcep binary not found: {path} (run `cargo build -p vpcep`)", returncode=2)
    return path


@pytest.fixture(scope="session")
def accounts():
    return make_accounts()


@pytest.fixture(scope="session")
def server(accounts, request):
    srv = VpcepServer(_binary(), accounts, "console", inventory=seed_inventory(accounts))
    srv.start()
    yield srv
    srv.stop()
    if request.session.testsfailed == 0:
        shutil.rmtree(srv.dir, ignore_errors=True)
    else:
        print(f"\n--- server log ({srv.log_path}) ---\n{srv.log_tail(15)}")


@pytest.fixture(scope="session")
def slow_server(accounts, request):
    """A server whose services stay `creating` for 3 s (`--provisioning-delay`)."""
    srv = VpcepServer(_binary(), accounts, "console-slow", provisioning_delay="3000ms",
                      inventory=seed_inventory(accounts))
    srv.start()
    yield srv
    srv.stop()
    if request.session.testsfailed == 0:
        shutil.rmtree(srv.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def screenshots():
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


@pytest.fixture
def browser():
    """`browser(width=1280, height=800)` starts a headless Chromium session (its own profile,
    so two sessions are two users); all are quit when the test ends."""
    started = []

    def start(width=1280, height=800):
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-extensions", "--no-first-run", f"--window-size={width},{height}"):
            options.add_argument(arg)
        options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
        driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
        resize(driver, width, height)
        started.append(driver)
        return driver

    yield start
    for d in started:
        try:
            d.quit()
        except Exception:  # noqa: BLE001 - best effort at teardown
            pass
