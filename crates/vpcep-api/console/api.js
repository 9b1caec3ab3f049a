// Signed calls to the vpcep API from the browser. The credentials live only in this tab's
// sessionStorage (never local storage, cookies or the URL); every request is signed here with
// WebCrypto (sign.js) and sent to this same origin, so no CORS and no server-side session.

import { encode, sdkDate, sign } from "./sign.js";

const KEY = "vpcep-console-credentials";

/** An error answered by the API: `{error_code, error_msg}` with the HTTP status. */
export class ApiError extends Error {
  constructor(status, code, msg, requestId) {
    super(`${code}: ${msg}`);
    this.status = status;
    this.code = code;
    this.msg = msg;
    this.requestId = requestId;
  }
}

export function credentials() {
  try {
    const c = JSON.parse(sessionStorage.getItem(KEY) || "null");
    return c && c.accessKey && c.secretKey && c.projectId ? c : null;
  } catch {
    return null;
  }
}

export function saveCredentials(c) {
  sessionStorage.setItem(KEY, JSON.stringify(c));
}

export function clearCredentials() {
  sessionStorage.removeItem(KEY);
}

/** `a=1&b=x%20y` from an object, RFC 3986-encoded (never "+" for a space: the server treats
 * "+" as a literal plus, as the SDK does); undefined and "" values are left out. */
export function queryString(params = {}) {
  return Object.entries(params)
    .filter(([, v]) => v !== undefined && v !== null && v !== "")
    .map(([k, v]) => `${encode(k)}=${encode(String(v))}`)
    .join("&");
}

/**
 * Calls the API: `path` is relative to the project (e.g. "/vpc-endpoints") unless it starts
 * with "//" (then it is taken as is, minus one slash). Returns the parsed JSON body (null for
 * 204); throws ApiError for an error answer.
 */
export async function call(method, path, { query, body, version = "v1" } = {}) {
  const c = credentials();
  if (!c) throw new ApiError(401, "console", "Not signed in", "");
  const rawPath = path.startsWith("//")
    ? path.slice(1)
    : `/${version}/${encodeURIComponent(c.projectId)}${path}`;
  const rawQuery = queryString(query);
  const text = body === undefined ? "" : JSON.stringify(body);
  const headers = {
    "Content-Type": "application/json",
    Host: location.host,
    "X-Project-Id": c.projectId,
    "X-Sdk-Date": sdkDate(),
  };
  const authorization = await sign({
    accessKey: c.accessKey,
    secretKey: c.secretKey,
    method,
    rawPath,
    rawQuery,
    headers,
    body: text,
  });
  delete headers.Host; // the browser sends it (a forbidden header name for scripts)
  headers.Authorization = authorization;
  const resp = await fetch(rawPath + (rawQuery ? `?${rawQuery}` : ""), {
    method,
    headers,
    body: body === undefined ? undefined : text,
    cache: "no-store",
    credentials: "omit",
    referrerPolicy: "no-referrer",
    redirect: "error",
  });
  const requestId = resp.headers.get("x-request-id") || "";
  if (resp.status === 204) return null;
  let data = null;
  try {
    data = await resp.json();
  } catch {
    data = null;
  }
  if (!resp.ok) {
    const code = (data && data.error_code) || `HTTP ${resp.status}`;
    const msg = (data && data.error_msg) || resp.statusText || "Request failed";
    throw new ApiError(resp.status, code, msg, requestId);
  }
  return data;
}
