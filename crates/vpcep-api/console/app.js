// The console's shell: sign-in, navigation (hash routes), live refresh by polling.

import { call, clearCredentials, credentials, saveCredentials } from "./api.js";
import { field, h, input, onSubmit, replace } from "./dom.js";
import * as pages from "./pages.js";

/** How often the open page re-reads its resources (statuses update without reload). */
const POLL_MS = 2000;

const main = document.getElementById("main");
let current = null;
let timer = null;
let refreshing = false;

function announce(text) {
  replace(document.getElementById("live"), text);
}

function stopPolling() {
  if (timer) clearInterval(timer);
  timer = null;
}

async function refresh() {
  if (!current || refreshing || document.hidden) return;
  refreshing = true;
  const page = current;
  try {
    await page.refresh();
    if (page.errorBox) replace(page.errorBox);
  } catch (err) {
    if (err && err.status === 401) {
      signOut("Your keys were refused: sign in again.");
      return;
    }
    if (page.errorBox) replace(page.errorBox, h("p.error", { role: "alert" }, err.code ? `${err.code}: ${err.msg}` : String(err.message || err)));
  } finally {
    refreshing = false;
  }
}

function signOut(message) {
  stopPolling();
  clearCredentials();
  current = null;
  if (location.hash && location.hash !== "#/") history.replaceState(null, "", "#/");
  showSignIn(message);
}

function showShell(c) {
  document.getElementById("nav").hidden = false;
  document.getElementById("who").hidden = false;
  const who = document.getElementById("who-text");
  replace(who, `${c.accessKey} · project ${c.projectId.slice(0, 8)}…`);
  who.title = `Access key ${c.accessKey}, project ${c.projectId}`;
}

function hideShell() {
  document.getElementById("nav").hidden = true;
  document.getElementById("who").hidden = true;
  replace(document.getElementById("who-text"));
  document.getElementById("who-text").removeAttribute("title");
}

function showSignIn(message) {
  hideShell();
  document.title = "Sign in · vpcep console";
  const ak = input("access_key", { required: true, autocomplete: "username" });
  const sk = input("secret_key", { type: "password", required: true, autocomplete: "current-password" });
  const project = input("project_id", { required: true, pattern: "[0-9a-f]{32}", inputmode: "latin" });
  const secure = window.isSecureContext && window.crypto && window.crypto.subtle;
  const form = h(
    "form.panel.signin",
    { method: "post", "aria-labelledby": "signin-title", novalidate: true },
    h("h1", { id: "signin-title" }, "Sign in"),
    h("p.note", {}, "Your keys stay in this browser tab (session storage) and sign each request here; they are never sent to the server."),
    message ? h("p.error", { role: "alert" }, message) : null,
    secure ? null : h("p.error", { role: "alert" }, "This page is not a secure context: open the console over HTTPS (vpcep serve --tls-cert/--tls-key) or on localhost, where the browser allows WebCrypto."),
    field("Access key (AK)", ak),
    field("Secret key (SK)", sk),
    field("Project id", project, "32 lowercase hex digits"),
    h("div.actions", {}, h("button", { type: "submit" }, "Sign in")),
  );
  onSubmit(form, async (data) => {
    const c = {
      accessKey: String(data.get("access_key")).trim(),
      secretKey: String(data.get("secret_key")),
      projectId: String(data.get("project_id")).trim(),
    };
    saveCredentials(c);
    try {
      await call("GET", "/quotas");
    } catch (err) {
      clearCredentials();
      throw err;
    }
    sk.value = "";
    if (!location.hash || location.hash === "#/") location.hash = "#/services";
    else route();
  });
  replace(main, form);
  ak.focus();
}

const routes = [
  [/^#\/services\/([^/]+)$/, pages.serviceDetail],
  [/^#\/services$/, pages.services],
  [/^#\/endpoints\/([^/]+)$/, pages.endpointDetail],
  [/^#\/endpoints$/, pages.endpoints],
  [/^#\/network$/, pages.network],
  [/^#\/quotas$/, pages.quotas],
  [/^#\/public$/, pages.publicServices],
];

async function route() {
  stopPolling();
  const c = credentials();
  if (!c) {
    current = null;
    showSignIn();
    return;
  }
  showShell(c);
  const hash = location.hash || "#/services";
  let match = null;
  let make = null;
  for (const [re, page] of routes) {
    match = hash.match(re);
    if (match) {
      make = page;
      break;
    }
  }
  if (!make) {
    location.replace("#/services");
    return;
  }
  for (const a of document.querySelectorAll("#nav a")) {
    const section = a.getAttribute("href");
    if (hash === section || hash.startsWith(`${section}/`)) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  const page = make({ params: match.slice(1).map(decodeURIComponent), navigate: (to) => { location.hash = to; }, announce });
  current = page;
  document.title = `${page.title} · vpcep console`;
  replace(main, page.el);
  main.focus({ preventScroll: true });
  await refresh();
  if (current === page) timer = setInterval(refresh, POLL_MS);
}

document.getElementById("sign-out").addEventListener("click", () => signOut());
document.addEventListener("visibilitychange", () => { if (!document.hidden) refresh(); });
window.addEventListener("hashchange", route);
route();
