// SDK-HMAC-SHA256 request signing in the browser, with WebCrypto: the same canonical request,
// string to sign and signature as crates/vpcep-sign (and the official huaweicloudsdkcore).
// Canonical URI: the path percent-decoded, split on "/", each segment RFC 3986-encoded, ending
// in "/". Canonical query: pairs percent-decoded ("+" stays a plus), sorted by key then value
// (byte order), re-encoded. Signed headers: every header without "_", lower case, sorted.

const utf8 = new TextEncoder();

export const ALGORITHM = "SDK-HMAC-SHA256";

function toHex(buffer) {
  return Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** RFC 3986 encoding: only A-Z a-z 0-9 - _ . ~ stay literal; hex digits upper case. */
export function encode(s) {
  return encodeURIComponent(s).replace(
    /[!'()*]/g,
    (c) => "%" + c.charCodeAt(0).toString(16).toUpperCase(),
  );
}

function isHex(b) {
  return (b >= 48 && b <= 57) || (b >= 65 && b <= 70) || (b >= 97 && b <= 102);
}

/** Percent-decoding as Rust's percent_decode_str + from_utf8_lossy: a "%" not followed by two
 * hex digits stays literal, invalid UTF-8 becomes U+FFFD. */
export function decode(s) {
  const src = utf8.encode(s);
  const out = [];
  for (let i = 0; i < src.length; i++) {
    const b = src[i];
    if (b === 0x25 && i + 2 < src.length && isHex(src[i + 1]) && isHex(src[i + 2])) {
      out.push(parseInt(String.fromCharCode(src[i + 1], src[i + 2]), 16));
      i += 2;
    } else {
      out.push(b);
    }
  }
  return new TextDecoder("utf-8").decode(new Uint8Array(out));
}

function compareBytes(a, b) {
  const x = utf8.encode(a);
  const y = utf8.encode(b);
  const n = Math.min(x.length, y.length);
  for (let i = 0; i < n; i++) {
    if (x[i] !== y[i]) return x[i] - y[i];
  }
  return x.length - y.length;
}

export function canonicalUri(rawPath) {
  let uri = decode(rawPath).split("/").map(encode).join("/");
  if (!uri.endsWith("/")) uri += "/";
  return uri;
}

export function canonicalQuery(rawQuery) {
  const pairs = rawQuery
    .split("&")
    .filter((p) => p !== "")
    .map((p) => {
      const i = p.indexOf("=");
      return i < 0 ? [decode(p), ""] : [decode(p.slice(0, i)), decode(p.slice(i + 1))];
    });
  pairs.sort((a, b) => compareBytes(a[0], b[0]) || compareBytes(a[1], b[1]));
  return pairs.map(([k, v]) => `${encode(k)}=${encode(v)}`).join("&");
}

export async function sha256Hex(data) {
  const bytes = typeof data === "string" ? utf8.encode(data) : data;
  return toHex(await crypto.subtle.digest("SHA-256", bytes));
}

export async function hmacHex(key, message) {
  const k = await crypto.subtle.importKey(
    "raw",
    utf8.encode(key),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  return toHex(await crypto.subtle.sign("HMAC", k, utf8.encode(message)));
}

/** `YYYYMMDDTHHMMSSZ` of a Date (UTC). */
export function sdkDate(date = new Date()) {
  return date.toISOString().replace(/[-:]/g, "").replace(/\.\d{3}/, "");
}

/**
 * Signs a request; returns the Authorization header value.
 * `headers`: an object of header name → value that must include Host and X-Sdk-Date.
 * `body`: the body string exactly as sent ("" when none).
 */
export async function sign({ accessKey, secretKey, method, rawPath, rawQuery = "", headers, body = "" }) {
  const signed = Object.entries(headers)
    .filter(([name]) => !name.includes("_"))
    .map(([name, value]) => [name.toLowerCase(), String(value)]);
  signed.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const date = (signed.find(([n]) => n === "x-sdk-date") || ["", ""])[1].trim();
  const canonicalHeaders = signed.map(([n, v]) => `${n}:${v.trim()}\n`).join("");
  const names = signed.map(([n]) => n).join(";");
  const canonicalRequest = [
    method.toUpperCase(),
    canonicalUri(rawPath),
    canonicalQuery(rawQuery),
    canonicalHeaders,
    names,
    await sha256Hex(body),
  ].join("\n");
  const stringToSign = `${ALGORITHM}\n${date}\n${await sha256Hex(canonicalRequest)}`;
  const signature = await hmacHex(secretKey, stringToSign);
  return `${ALGORITHM} Access=${accessKey}, SignedHeaders=${names}, Signature=${signature}`;
}
