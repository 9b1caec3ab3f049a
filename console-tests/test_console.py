"""The web console in a real browser (headless Chromium): two tenants publish, connect,
approve and see statuses change live; the page signs exactly as vpcep-sign and the official
SDK; and an attacker's view: headers, secrets, and HTML in names and error messages."""

from __future__ import annotations

import json
import time
import urllib.parse

import requests
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.sdk_request import SdkRequest
from huaweicloudsdkcore.signer.signer import Signer
from huaweicloudsdkvpcep.v1 import ListServiceConnectionsRequest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select, WebDriverWait

from console_support import resize
from vpcep_support import SEED_PORT_ID, SEED_VPC_ID, token

TIMEOUT = 20


# --------------------------------------------------------------------------------- helpers


def wait(driver, predicate, timeout=TIMEOUT, what="condition"):
    return WebDriverWait(driver, timeout, poll_frequency=0.1,
                         ignored_exceptions=(StaleElementReferenceException,)).until(
        lambda d: predicate(d), message=f"timed out waiting for {what}")


def css(driver, selector):
    return driver.find_element(By.CSS_SELECTOR, selector)


def shot(driver, screenshots, name):
    driver.save_screenshot(str(screenshots / f"{name}.png"))


def sign_in(driver, server, account, expect_ok=True):
    a = server.accounts[account]
    driver.get(server.url + "/console/")
    wait(driver, lambda d: d.find_elements(By.NAME, "access_key"), what="sign-in form")
    css(driver, "input[name=access_key]").send_keys(a.access_key)
    css(driver, "input[name=secret_key]").send_keys(a.secret_key)
    css(driver, "input[name=project_id]").send_keys(a.project)
    css(driver, "form.signin button[type=submit]").click()
    if expect_ok:
        wait(driver, lambda d: d.find_element(By.ID, "nav").is_displayed(), what="signed in")


def go(driver, hash_):
    driver.execute_script("location.hash = arguments[0]", hash_)
    wait(driver, lambda d: d.execute_script("return location.hash") == hash_, what=hash_)


def open_details(driver, summary_text):
    for s in driver.find_elements(By.CSS_SELECTOR, "details.panel > summary"):
        if s.text.strip() == summary_text:
            if not s.find_element(By.XPATH, "..").get_attribute("open"):
                s.click()
            return s.find_element(By.XPATH, "..")
    raise AssertionError(f"no panel {summary_text!r}")


def choose(driver, form, name, value=None, text=None):
    def ready(_):
        sel = Select(form.find_element(By.NAME, name))
        opts = [(o.get_attribute("value"), o.text) for o in sel.options]
        return any((value is not None and v == value) or (text is not None and text in t)
                   for v, t in opts)
    wait(driver, ready, what=f"option in {name}")
    sel = Select(form.find_element(By.NAME, name))
    if value is not None:
        sel.select_by_value(value)
    else:
        for o in sel.options:
            if text in o.text:
                sel.select_by_value(o.get_attribute("value"))
                break


def fill(form, name, value):
    el = form.find_element(By.NAME, name)
    el.clear()
    el.send_keys(value)


def badge_text(el):
    return el.find_element(By.CSS_SELECTOR, ".badge").text


def summary_status(driver):
    found = driver.find_elements(By.CSS_SELECTOR, "dl.props .badge")
    return found[0].text if found else None


def requests_sent(driver):
    """Every request the page sent (URL, headers, body) from Chromium's performance log."""
    out = []
    for entry in driver.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        if msg.get("method") == "Network.requestWillBeSent":
            r = msg["params"]["request"]
            out.append((r["url"], json.dumps(r.get("headers", {})), r.get("postData", "")))
        elif msg.get("method") == "Network.requestWillBeSentExtraInfo":
            out.append(("", json.dumps(msg["params"].get("headers", {})), ""))
    return out


def no_secret_kept(driver, secret):
    """Nothing of the SK in localStorage, cookies, the URL, or any request the page sent."""
    assert driver.execute_script("return localStorage.length") == 0
    assert driver.execute_script("return document.cookie") == ""
    assert driver.get_cookies() == []
    assert secret not in driver.current_url
    sent = requests_sent(driver)
    assert sent, "the performance log recorded the page's requests"
    for url, headers, body in sent:
        assert secret not in url and secret not in headers and secret not in (body or "")


# ----------------------------------------------------------------------------------- tests


def test_console_is_served_with_a_strict_policy_and_security_headers(server):
    r = requests.get(server.url + "/console/", timeout=5)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    csp = r.headers["content-security-policy"]
    for directive in ("default-src 'none'", "script-src 'self'", "style-src 'self'",
                      "connect-src 'self'", "frame-ancestors 'none'", "base-uri 'none'",
                      "require-trusted-types-for 'script'"):
        assert directive in csp, directive
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp and "http" not in csp
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "no-referrer"
    assert r.headers["x-frame-options"] == "DENY"
    assert "set-cookie" not in r.headers
    assert "<script>" not in r.text and "<script type=\"module\" src=\"app.js\">" in r.text
    js = requests.get(server.url + "/console/app.js", timeout=5)
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    assert js.headers["content-security-policy"] == csp
    # Only the built-in files: no path reaches the file system.
    for bad in ("/console/nope.js", "/console/..%2fCargo.toml", "/console/%2e%2e%2f%2e%2e%2fREADME.md"):
        r = requests.get(server.url + bad, timeout=5)
        assert r.status_code == 404 and r.json()["error_code"] == "APIG.0101", bad
    r = requests.get(server.url + "/console", timeout=5, allow_redirects=False)
    assert r.status_code in (301, 308) and r.headers["location"] == "/console/"
    # Serving the console opens nothing else: the API still wants a signature.
    a = server.accounts["owner"]
    r = requests.get(f"{server.url}/v1/{a.project}/vpc-endpoint-services", timeout=5)
    assert r.status_code == 401


#: crates/vpcep-sign/src/lib.rs, reference_vector_1_signs_as_the_sdk and
#: reference_vector_2_canonicalises_the_query: the same inputs must give the same signatures.
RUST_VECTORS = [
    ({"method": "POST", "rawPath": "/v1/proj1/vpc-endpoint-services", "rawQuery": "",
      "body": '{"port_id": "p1", "vpc_id": "v1", "server_type": "VM", "ports": [{"client_port": 80, "server_port": 8080, "protocol": "TCP"}]}',
      "headers": {"Content-Type": "application/json;charset=utf-8", "Host": "127.0.0.1:8080",
                  "User-Agent": "test-agent", "X-Project-Id": "proj1", "X-Sdk-Date": "20240101T000000Z"}},
     "SDK-HMAC-SHA256 Access=AKTEST, SignedHeaders=content-type;host;user-agent;x-project-id;x-sdk-date, "
     "Signature=b44e02e2d7336bcea67c81693f8abfb58029ba385f0379bd8c4e84822d982b5f"),
    ({"method": "GET", "rawPath": "/v1/proj1/vpc-endpoints",
      "rawQuery": "sort_dir=asc&limit=10&endpoint_service_name=a%20b%2Fc", "body": "",
      "headers": {"Content-Type": "application/json", "Host": "127.0.0.1:8080", "User-Agent": "test-agent",
                  "X-Project-Id": "proj1", "X-Sdk-Date": "20240101T000000Z"}},
     "SDK-HMAC-SHA256 Access=AKTEST, SignedHeaders=content-type;host;user-agent;x-project-id;x-sdk-date, "
     "Signature=0344f3536d05f8927789b92e74d36f49dc97728652bca28d4157b6747389ad21"),
]

SIGN_IN_PAGE = """
const [cases, done] = [arguments[0], arguments[arguments.length - 1]];
import("/console/sign.js").then(async (m) => {
  const out = [];
  for (const c of cases) out.push(await m.sign({accessKey: "AKTEST", secretKey: c.sk || "SKTEST", ...c}));
  done(out);
}).catch((e) => done("ERROR " + e));
"""


def sdk_signature(case):
    """The official SDK's (huaweicloudsdkcore) Authorization for a case."""
    query = [tuple(urllib.parse.unquote(x) for x in p.split("=", 1))
             for p in case["rawQuery"].split("&") if p]
    headers = dict(case["headers"])
    req = SdkRequest(method=case["method"], schema="http", host=headers["Host"],
                     resource_path=case["rawPath"], query_params=query, header_params=headers,
                     body=case["body"].encode() if case["body"] else None)
    Signer(BasicCredentials("AKTEST", case.get("sk", "SKTEST"), "proj")).sign(req)
    return req.header_params["Authorization"]


def test_the_page_signs_exactly_as_vpcep_sign_and_the_sdk(server, browser):
    driver = browser()
    driver.get(server.url + "/console/")
    got = driver.execute_async_script(SIGN_IN_PAGE, [c for c, _ in RUST_VECTORS])
    assert got == [want for _, want in RUST_VECTORS]
    # Harder inputs (reserved and non-ASCII characters, repeated keys, a non-ASCII SK), each
    # compared with the official SDK's signer.
    q = urllib.parse.quote
    cases = [
        {"method": "get", "rawPath": "/v1/p/vpc-endpoint-services/describe",
         "rawQuery": f"endpoint_service_name={q('rég.ñame.*(x)!~', safe='~')}&id=&b=2&a=1&a=0",
         "body": "", "headers": {"Content-Type": "application/json", "Host": "[::1]:8480",
                                 "X-Project-Id": "p", "X-Sdk-Date": "20261206T081500Z"}},
        {"method": "PUT", "rawPath": "/v1/p/vpc-endpoints/3f1c",
         "rawQuery": "", "body": json.dumps({"whitelist": ["10.0.0.0/8"], "d": "☃ é <b>"}),
         "headers": {"Content-Type": "application/json", "Host": "console.example:443",
                     "X-Project-Id": "p", "X-Sdk-Date": "20261206T081500Z", "X_Skip": "unsigned"},
         "sk": "sk-ü-🔑"},
    ]
    got = driver.execute_async_script(SIGN_IN_PAGE, cases)
    assert got == [sdk_signature(c) for c in cases]
    assert "x_skip" not in got[1]


def test_two_tenants_publish_connect_approve_and_see_it_live(server, browser, screenshots):
    owner_acct, consumer_acct = server.accounts["owner"], server.accounts["consumer"]
    owner = browser()
    sign_in(owner, server, "owner")
    assert owner.execute_script("return location.hash") == "#/services"
    shot(owner, screenshots, "01-services-empty")

    # The owner publishes the seed port with approval.
    form = open_details(owner, "Create endpoint service")
    name = f"web{token()[:8]}"
    fill(form, "service_name", name)
    choose(owner, form, "vpc_id", value=SEED_VPC_ID)
    choose(owner, form, "port_id", value=SEED_PORT_ID)
    assert form.find_element(By.NAME, "approval_enabled").is_selected()
    fill(form, "client_port", "80")
    fill(form, "server_port", "8080")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait(owner, lambda d: d.execute_script("return location.hash").startswith("#/services/"),
         what="service detail")
    service_id = owner.execute_script("return location.hash").split("/")[-1]
    wait(owner, lambda d: summary_status(d) == "available", what="available")
    full_name = owner.find_element(By.CSS_SELECTOR, "dl.props dd .mono").text
    assert full_name.startswith("compat-1.") and name in full_name and service_id in full_name

    # ... and lets the consumer's account connect.
    perm_form = css(owner, "form[aria-label='Add permission']")
    fill(perm_form, "permissions", consumer_acct.permission)
    perm_form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait(owner, lambda d: consumer_acct.permission in d.find_element(
        By.CSS_SELECTOR, "[aria-label^='Permissions'] tbody").text, what="permission row")
    shot(owner, screenshots, "02-service-detail")

    # The consumer (another browser profile) makes a VPC and subnet in the console ...
    consumer = browser()
    sign_in(consumer, server, "consumer")
    go(consumer, "#/network")
    vpc_form = open_details(consumer, "Create VPC")
    fill(vpc_form, "name", "consumer-vpc")
    fill(vpc_form, "cidr", "10.20.0.0/16")
    vpc_form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    sub_form = open_details(consumer, "Create subnet")
    choose(consumer, sub_form, "vpc_id", text="consumer-vpc")
    fill(sub_form, "name", "consumer-sub")
    fill(sub_form, "cidr", "10.20.1.0/24")
    fill(sub_form, "gateway_ip", "10.20.1.1")
    sub_form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait(consumer, lambda d: "consumer-sub" in d.find_element(By.CSS_SELECTOR, "[aria-label='Subnets']").text,
         what="subnet row")
    shot(consumer, screenshots, "03-network")

    # ... and an endpoint to the owner's service by its name.
    go(consumer, "#/endpoints")
    ep_form = open_details(consumer, "Create endpoint")
    fill(ep_form, "endpoint_service_name", full_name)
    choose(consumer, ep_form, "vpc_id", text="consumer-vpc")
    choose(consumer, ep_form, "subnet_id", text="consumer-sub")
    ep_form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait(consumer, lambda d: d.execute_script("return location.hash").startswith("#/endpoints/"),
         what="endpoint detail")
    endpoint_id = consumer.execute_script("return location.hash").split("/")[-1]
    wait(consumer, lambda d: summary_status(d) == "pendingAcceptance", what="pendingAcceptance")
    shot(consumer, screenshots, "04-endpoint-pending")
    consumer.execute_script("window.__sameDocument = true")

    # The owner's open page shows the pending connection by itself (polling), and accepts it.
    row_sel = f"[aria-label^='Connections'] tr[data-key='{endpoint_id}']"
    wait(owner, lambda d: d.find_elements(By.CSS_SELECTOR, row_sel)
         and badge_text(d.find_element(By.CSS_SELECTOR, row_sel)) == "pendingAcceptance",
         what="pending connection on the owner's page")
    assert consumer_acct.domain_id in css(owner, row_sel).text
    shot(owner, screenshots, "05-connection-pending")
    accept = css(owner, f"button[aria-label='Accept connection {endpoint_id}']")
    accept.send_keys(Keys.ENTER)  # the keyboard works
    wait(owner, lambda d: badge_text(d.find_element(By.CSS_SELECTOR, row_sel)) == "accepted",
         what="accepted on the owner's page")

    # The owner describes the connection, and withdraws the permission (the accepted
    # connection stays).
    desc = css(owner, f"input[aria-label='Description of connection {endpoint_id}']")
    desc.send_keys("approved in the console", Keys.ENTER)
    owner_sdk = server.client("owner")
    wait(owner, lambda d: owner_sdk.list_service_connections(ListServiceConnectionsRequest(
        vpc_endpoint_service_id=service_id, id=endpoint_id)).connections[0].description
        == "approved in the console", what="description saved")
    css(owner, f"button[aria-label='Remove permission {consumer_acct.permission}']").click()
    wait(owner, lambda d: consumer_acct.permission not in d.find_element(
        By.CSS_SELECTOR, "[aria-label^='Permissions'] tbody").text, what="permission removed")
    assert badge_text(css(owner, row_sel)) == "accepted"

    # The consumer's page turns to accepted without a reload.
    wait(consumer, lambda d: summary_status(d) == "accepted", what="accepted on the consumer's page")
    assert consumer.execute_script("return window.__sameDocument") is True
    shot(consumer, screenshots, "06-endpoint-accepted")

    # A bad input shows the API's error next to the field it concerns.
    wl_form = css(consumer, "form[aria-label='Whitelist']")
    fill(wl_form, "whitelist", "999.1.1.1")
    wl_form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    err = wait(consumer, lambda d: d.find_elements(By.CSS_SELECTOR, "form[aria-label='Whitelist'] p.error"),
               what="error shown")[0]
    assert err.text.startswith("EndPoint.") and "whitelist" in err.text, err.text
    field = wl_form.find_element(By.NAME, "whitelist")
    assert field.get_attribute("aria-invalid") == "true"
    assert err.get_attribute("id") in field.get_attribute("aria-describedby")
    shot(consumer, screenshots, "07-api-error")

    # The other pages render (and are saved for the record), at desktop and phone widths.
    for drv, page, file in ((owner, "#/services", "08-services"), (consumer, "#/endpoints", "09-endpoints"),
                            (consumer, "#/quotas", "10-quotas"), (owner, "#/public", "11-public")):
        go(drv, page)
        wait(drv, lambda d: d.find_elements(By.CSS_SELECTOR, "tbody tr"), what=page)
        shot(drv, screenshots, file)
    quotas = css(consumer, "main").text
    assert "endpoint" in quotas and "vpc" in quotas
    go(owner, "#/services")
    wait(owner, lambda d: full_name in css(d, "main").text, what="service in the list")
    resize(owner, 390, 844)
    go(owner, f"#/services/{service_id}")
    wait(owner, lambda d: summary_status(d) == "available", what="detail at phone width")
    width = owner.execute_script("return document.documentElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways at phone width ({width}px)"
    shot(owner, screenshots, "12-service-detail-phone")

    # Nothing secret outlives the tab, and sign-out forgets the keys.
    for drv, acct in ((owner, owner_acct), (consumer, consumer_acct)):
        no_secret_kept(drv, acct.secret_key)
        assert drv.execute_script("return sessionStorage.length") == 1
        css(drv, "#sign-out").click()
        wait(drv, lambda d: d.find_elements(By.NAME, "access_key"), what="signed out")
        assert drv.execute_script("return sessionStorage.length") == 0
        assert acct.secret_key not in drv.page_source
        assert acct.secret_key not in server.log_tail(100000)


XSS = '<img src=x onerror="window.__xss=1">'


def test_html_in_names_and_error_messages_is_shown_as_text(server, browser, screenshots):
    driver = browser()
    sign_in(driver, server, "owner")
    driver.execute_script("window.__xss = undefined")
    # A service named with HTML: the API refuses it, and its message (which repeats the name)
    # is shown as text.
    form = open_details(driver, "Create endpoint service")
    fill(form, "service_name", XSS)
    choose(driver, form, "vpc_id", value=SEED_VPC_ID)
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    err = wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "main p.error"), what="error")[0]
    assert err.text.startswith("EndPoint.")
    # An endpoint to a service "named" with HTML: the describe 404 repeats the name.
    go(driver, "#/endpoints")
    ep_form = open_details(driver, "Create endpoint")
    fill(ep_form, "endpoint_service_name", XSS)
    ep_form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    err = wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "main p.error"), what="error")[0]
    assert "<img" in err.text, err.text
    assert driver.find_elements(By.CSS_SELECTOR, "main img") == []
    time.sleep(0.3)
    assert driver.execute_script("return window.__xss") is None
    shot(driver, screenshots, "13-html-as-text")
    # Defence in depth, enforced by the browser: Trusted Types refuse any string assigned to an
    # HTML sink, and the policy refuses inline script.
    refused = driver.execute_script("""
        const out = {};
        try { document.querySelector('main').innerHTML = '<b>x</b>'; out.html = 'assigned'; }
        catch (e) { out.html = e.name; }
        try { const s = document.createElement('script'); s.textContent = 'window.__inline = 1';
              document.body.append(s); out.script = 'appended'; }
        catch (e) { out.script = e.name; }
        return out;""")
    assert refused["html"] == "TypeError", refused
    assert driver.execute_script("return window.__inline") is None


def test_wrong_keys_are_refused_and_nothing_is_kept(server, browser):
    driver = browser()
    a = server.accounts["owner"]
    driver.get(server.url + "/console/")
    wait(driver, lambda d: d.find_elements(By.NAME, "access_key"), what="sign-in form")
    css(driver, "input[name=access_key]").send_keys(a.access_key)
    css(driver, "input[name=secret_key]").send_keys("not-the-secret")
    css(driver, "input[name=project_id]").send_keys(a.project)
    css(driver, "form.signin button[type=submit]").click()
    err = wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "form.signin p.error"), what="error")[0]
    assert err.text.startswith("EndPoint.0003"), err.text
    assert driver.execute_script("return sessionStorage.length") == 0
    assert not css(driver, "#nav").is_displayed()
    # Another tenant's project with one's own keys: refused by the API, shown, not kept.
    other = server.accounts["consumer"]
    for name, value in (("secret_key", a.secret_key), ("project_id", other.project)):
        el = css(driver, f"input[name={name}]")
        el.clear()
        el.send_keys(value)
    css(driver, "form.signin button[type=submit]").click()
    wait(driver, lambda d: "EndPoint.0003" not in css(d, "form.signin").text
         and d.find_elements(By.CSS_SELECTOR, "form.signin p.error"), what="project error")
    assert driver.execute_script("return sessionStorage.length") == 0


def test_keyboard_sign_in_and_creating_turns_available_without_reload(slow_server, browser, screenshots):
    driver = browser()
    a = slow_server.accounts["owner"]
    driver.get(slow_server.url + "/console/")
    wait(driver, lambda d: d.find_elements(By.NAME, "access_key"), what="sign-in form")
    # Keyboard only: the access key field has the focus, Tab moves on, Enter submits.
    active = driver.switch_to.active_element
    assert active.get_attribute("name") == "access_key"
    active.send_keys(a.access_key, Keys.TAB)
    driver.switch_to.active_element.send_keys(a.secret_key, Keys.TAB)
    driver.switch_to.active_element.send_keys(a.project, Keys.ENTER)
    wait(driver, lambda d: d.find_element(By.ID, "nav").is_displayed(), what="signed in")
    # Every control of the page has a label.
    unlabelled = driver.execute_script("""
        return [...document.querySelectorAll('main input, main select, main textarea')]
          .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute('aria-label'))
          .map((el) => el.name);""")
    assert unlabelled == []
    form = open_details(driver, "Create endpoint service")
    choose(driver, form, "vpc_id", value=SEED_VPC_ID)
    choose(driver, form, "port_id", value=SEED_PORT_ID)
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait(driver, lambda d: summary_status(d) == "creating", what="creating")
    driver.execute_script("window.__sameDocument = true")
    shot(driver, screenshots, "14-service-creating")
    wait(driver, lambda d: summary_status(d) == "available", timeout=15, what="available")
    assert driver.execute_script("return window.__sameDocument") is True
