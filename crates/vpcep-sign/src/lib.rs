//! `SDK-HMAC-SHA256` request signing, exactly as `huaweicloudsdkcore` computes it
//! (`shared/reference/vpcep-api-spec.md` §6.3), for both sides: the server verifies with
//! [`verify`], clients (the agent, the CLI, tests, benchmarks) sign with [`sign`].
//!
//! Canonical request:
//! `METHOD \n canonical-URI \n canonical-query \n canonical-headers \n signed-headers \n hex(sha256(body))`
//! - canonical URI: the raw path percent-decoded as a whole, split on `/`, each segment
//!   RFC 3986-encoded, joined, always ending in `/`;
//! - canonical query: pairs percent-decoded (`+` stays a literal plus, as the SDK never sends
//!   `+` for a space), sorted by key then value, re-encoded, joined with `&`;
//! - canonical headers: `name:trimmed-value\n` for each signed header, in SignedHeaders order.
//!
//! String to sign: `SDK-HMAC-SHA256 \n X-Sdk-Date \n hex(sha256(canonical request))`; the
//! signature is hex HMAC-SHA256 keyed with the SK bytes. No derived key.
//!
//! # Layout
//! - this file only: canonicalization, [`sign`] and [`verify`], and their tests.

use hmac::{Hmac, Mac};
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sha2::{Digest, Sha256};

/// The only algorithm accepted.
pub const ALGORITHM: &str = "SDK-HMAC-SHA256";
/// Header carrying the signing time, `YYYYMMDDTHHMMSSZ`.
pub const DATE_HEADER: &str = "x-sdk-date";
/// Header that replaces the body hash (`UNSIGNED-PAYLOAD`) when present.
pub const CONTENT_SHA256_HEADER: &str = "x-sdk-content-sha256";
/// The `X-Sdk-Content-Sha256` value that leaves the body unhashed.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
/// How far the `X-Sdk-Date` may be from the server's clock.
pub const MAX_SKEW_SECS: i64 = 15 * 60;

/// RFC 3986 unreserved characters stay literal: `A-Z a-z 0-9 - _ . ~`.
const RFC3986: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Why a request's signature was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    /// No `Authorization` header.
    #[error("the Authorization header is missing")]
    MissingAuthorization,
    /// The header is not `SDK-HMAC-SHA256 Access=..., SignedHeaders=..., Signature=...`.
    #[error("the Authorization header is malformed: {0}")]
    Malformed(&'static str),
    /// Another algorithm (SM3, ECDSA, V11, ...).
    #[error("unsupported signing algorithm {0:?}; only SDK-HMAC-SHA256 is accepted")]
    UnsupportedAlgorithm(String),
    /// A header named in SignedHeaders is absent, or a mandatory one is not signed.
    #[error("the header {0:?} must be present and signed")]
    MissingSignedHeader(String),
    /// `X-Sdk-Date` is not `YYYYMMDDTHHMMSSZ`.
    #[error("X-Sdk-Date is not in the form YYYYMMDDTHHMMSSZ")]
    BadDate,
    /// `X-Sdk-Date` is more than 15 minutes off.
    #[error("the request is expired: X-Sdk-Date is more than 15 minutes from the server's time")]
    Expired,
    /// The access key is unknown.
    #[error("unknown access key")]
    UnknownAccessKey,
    /// The signature does not match.
    #[error("verify aksk signature fail")]
    SignatureMismatch,
}

/// The parsed `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    /// `Access=`.
    pub access_key: String,
    /// `SignedHeaders=`, lower case, in the order given.
    pub signed_headers: Vec<String>,
    /// `Signature=`, lower-case hex.
    pub signature: String,
}

/// Parses `SDK-HMAC-SHA256 Access=AK, SignedHeaders=a;b, Signature=hex` (lenient about spaces).
pub fn parse_authorization(value: &str) -> Result<Authorization, SignError> {
    let value = value.trim();
    let (algorithm, rest) = value
        .split_once(' ')
        .ok_or(SignError::Malformed("no credentials after the algorithm"))?;
    if algorithm != ALGORITHM {
        return Err(SignError::UnsupportedAlgorithm(algorithm.to_string()));
    }
    let (mut access, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let (k, v) = part
            .trim()
            .split_once('=')
            .ok_or(SignError::Malformed("expected key=value parts"))?;
        match k.trim() {
            "Access" => access = Some(v.trim().to_string()),
            "SignedHeaders" => signed = Some(v.trim().to_string()),
            "Signature" => signature = Some(v.trim().to_string()),
            _ => return Err(SignError::Malformed("unknown part")),
        }
    }
    let access_key = access
        .filter(|a| !a.is_empty())
        .ok_or(SignError::Malformed("Access is missing"))?;
    let signed = signed.ok_or(SignError::Malformed("SignedHeaders is missing"))?;
    let signature = signature
        .filter(|s| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or(SignError::Malformed("Signature must be 64 hex digits"))?;
    Ok(Authorization {
        access_key,
        signed_headers: signed
            .split(';')
            .filter(|h| !h.is_empty())
            .map(|h| h.to_ascii_lowercase())
            .collect(),
        signature: signature.to_ascii_lowercase(),
    })
}

fn encode(s: &str) -> String {
    utf8_percent_encode(s, RFC3986).to_string()
}

fn decode(s: &str) -> String {
    percent_decode_str(s).decode_utf8_lossy().into_owned()
}

/// The canonical URI of a raw (still percent-encoded) request path.
pub fn canonical_uri(raw_path: &str) -> String {
    let decoded = decode(raw_path);
    let mut uri = decoded.split('/').map(encode).collect::<Vec<_>>().join("/");
    if !uri.ends_with('/') {
        uri.push('/');
    }
    uri
}

/// The canonical query string of a raw query (without `?`).
pub fn canonical_query(raw_query: &str) -> String {
    let mut pairs: Vec<(String, String)> = raw_query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(p), String::new()),
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Lower-case hex SHA-256.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// The pieces of a request that the signature covers.
#[derive(Debug, Clone, Copy)]
pub struct RequestParts<'a> {
    /// Upper-case HTTP method.
    pub method: &'a str,
    /// Raw path as sent (percent-encoded).
    pub raw_path: &'a str,
    /// Raw query as sent, without `?` ("" when none).
    pub raw_query: &'a str,
    /// The body bytes as sent.
    pub body: &'a [u8],
}

/// Builds the canonical request. `headers` are the signed headers as `(lower-case name, value)`
/// in SignedHeaders order; `payload_hash` is the body hash or the `X-Sdk-Content-Sha256` literal.
pub fn canonical_request(
    parts: &RequestParts<'_>,
    headers: &[(&str, &str)],
    payload_hash: &str,
) -> String {
    let mut out = String::with_capacity(256 + parts.raw_path.len() + parts.raw_query.len());
    out.push_str(&parts.method.to_ascii_uppercase());
    out.push('\n');
    out.push_str(&canonical_uri(parts.raw_path));
    out.push('\n');
    out.push_str(&canonical_query(parts.raw_query));
    out.push('\n');
    for (name, value) in headers {
        out.push_str(name);
        out.push(':');
        out.push_str(value.trim());
        out.push('\n');
    }
    out.push('\n');
    out.push_str(
        &headers
            .iter()
            .map(|(n, _)| *n)
            .collect::<Vec<_>>()
            .join(";"),
    );
    out.push('\n');
    out.push_str(payload_hash);
    out
}

/// The string to sign for a canonical request.
pub fn string_to_sign(sdk_date: &str, canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{sdk_date}\n{}",
        sha256_hex(canonical_request.as_bytes())
    )
}

fn mac(secret_key: &str) -> Hmac<Sha256> {
    Hmac::<Sha256>::new_from_slice(secret_key.as_bytes()).expect("HMAC accepts keys of any length")
}

/// Hex HMAC-SHA256 of the string to sign, keyed with the SK.
pub fn signature(secret_key: &str, string_to_sign: &str) -> String {
    let mut m = mac(secret_key);
    m.update(string_to_sign.as_bytes());
    hex::encode(m.finalize().into_bytes())
}

/// Parses `YYYYMMDDTHHMMSSZ` into Unix seconds.
pub fn parse_sdk_date(value: &str) -> Option<i64> {
    chrono::NaiveDateTime::parse_from_str(value, "%Y%m%dT%H%M%SZ")
        .ok()
        .map(|t| t.and_utc().timestamp())
}

/// Formats Unix seconds as `YYYYMMDDTHHMMSSZ`.
pub fn format_sdk_date(unix_secs: i64) -> String {
    chrono::DateTime::from_timestamp(unix_secs, 0)
        .unwrap_or_default()
        .format("%Y%m%dT%H%M%SZ")
        .to_string()
}

/// What the headers alone establish, before any body byte is read: the `Authorization` header
/// is well-formed, every signed header is present (`x-sdk-date` and `host` among them), the date
/// is within [`MAX_SKEW_SECS`] and the AK is known. [`verify_body`] finishes the check.
#[derive(Debug)]
pub struct HeaderCheck<'h, T> {
    /// The parsed `Authorization` header.
    pub auth: Authorization,
    /// Values of `auth.signed_headers`, in that order.
    values: Vec<&'h str>,
    /// `X-Sdk-Date` as sent.
    date: &'h str,
    /// The AK's SK.
    secret: String,
    /// What `secret_for` returned beside the SK (e.g. the account).
    pub extra: T,
}

/// The header half of [`verify`]: everything that needs no body. `header` looks a header up by
/// lower-case name; `secret_for` maps an AK to its SK (and whatever the caller wants back).
pub fn check_headers<'h, T>(
    header: impl Fn(&str) -> Option<&'h str>,
    now_secs: i64,
    secret_for: impl FnOnce(&str) -> Option<(String, T)>,
) -> Result<HeaderCheck<'h, T>, SignError> {
    let auth =
        parse_authorization(header("authorization").ok_or(SignError::MissingAuthorization)?)?;
    for required in [DATE_HEADER, "host"] {
        if !auth.signed_headers.iter().any(|h| h == required) {
            return Err(SignError::MissingSignedHeader(required.to_string()));
        }
    }
    let mut values = Vec::with_capacity(auth.signed_headers.len());
    for name in &auth.signed_headers {
        values.push(header(name).ok_or_else(|| SignError::MissingSignedHeader(name.clone()))?);
    }
    let date =
        header(DATE_HEADER).ok_or_else(|| SignError::MissingSignedHeader(DATE_HEADER.into()))?;
    let signed_at = parse_sdk_date(date.trim()).ok_or(SignError::BadDate)?;
    if (now_secs - signed_at).abs() > MAX_SKEW_SECS {
        return Err(SignError::Expired);
    }
    let (secret, extra) = secret_for(&auth.access_key).ok_or(SignError::UnknownAccessKey)?;
    Ok(HeaderCheck {
        auth,
        values,
        date,
        secret,
        extra,
    })
}

/// The body half of [`verify`]: the signature over the request with its body.
pub fn verify_body<'h, T>(
    checked: HeaderCheck<'h, T>,
    parts: &RequestParts<'_>,
    header: impl Fn(&str) -> Option<&'h str>,
) -> Result<(Authorization, T), SignError> {
    let HeaderCheck {
        auth,
        values,
        date,
        secret,
        extra,
    } = checked;
    // `X-Sdk-Content-Sha256` stands in for the body hash only when it is signed; a digest it
    // claims must be the digest of the body received. Only the literal `UNSIGNED-PAYLOAD`
    // (what the SDK sends for non-JSON bodies) opts out of hashing the body.
    let body_hash = sha256_hex(parts.body);
    let signed_content_hash = auth
        .signed_headers
        .iter()
        .any(|h| h == CONTENT_SHA256_HEADER);
    let payload_hash = match header(CONTENT_SHA256_HEADER).map(str::trim) {
        Some(h) if signed_content_hash && h == UNSIGNED_PAYLOAD => h.to_string(),
        Some(h) if signed_content_hash && !h.eq_ignore_ascii_case(&body_hash) => {
            return Err(SignError::SignatureMismatch)
        }
        _ => body_hash,
    };
    let named: Vec<(&str, &str)> = auth
        .signed_headers
        .iter()
        .map(String::as_str)
        .zip(values)
        .collect();
    let creq = canonical_request(parts, &named, &payload_hash);
    let sts = string_to_sign(date.trim(), &creq);
    let expected =
        hex::decode(&auth.signature).map_err(|_| SignError::Malformed("Signature is not hex"))?;
    let mut m = mac(&secret);
    m.update(sts.as_bytes());
    m.verify_slice(&expected)
        .map_err(|_| SignError::SignatureMismatch)?;
    Ok((auth, extra))
}

/// Verifies a request: [`check_headers`], then [`verify_body`]. `now_secs` is the server clock;
/// the comparison is constant-time.
pub fn verify<'h, T>(
    parts: &RequestParts<'_>,
    header: impl Fn(&str) -> Option<&'h str> + Copy,
    now_secs: i64,
    secret_for: impl FnOnce(&str) -> Option<(String, T)>,
) -> Result<(Authorization, T), SignError> {
    verify_body(check_headers(header, now_secs, secret_for)?, parts, header)
}

/// Signs a request as the SDK does: every header in `headers` whose name has no `_` is signed
/// (sorted, lower case). `headers` must already contain `Host` and `X-Sdk-Date`. Returns the
/// `Authorization` header value.
pub fn sign(
    access_key: &str,
    secret_key: &str,
    parts: &RequestParts<'_>,
    headers: &[(&str, &str)],
) -> String {
    let mut signed: Vec<(String, &str)> = headers
        .iter()
        .filter(|(n, _)| !n.contains('_'))
        .map(|(n, v)| (n.to_ascii_lowercase(), *v))
        .collect();
    signed.sort_by(|a, b| a.0.cmp(&b.0));
    let date = signed
        .iter()
        .find(|(n, _)| n == DATE_HEADER)
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_default();
    let refs: Vec<(&str, &str)> = signed.iter().map(|(n, v)| (n.as_str(), *v)).collect();
    let creq = canonical_request(parts, &refs, &sha256_hex(parts.body));
    let sig = signature(secret_key, &string_to_sign(&date, &creq));
    let names = refs.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(";");
    format!("{ALGORITHM} Access={access_key}, SignedHeaders={names}, Signature={sig}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY1: &str = r#"{"port_id": "p1", "vpc_id": "v1", "server_type": "VM", "ports": [{"client_port": 80, "server_port": 8080, "protocol": "TCP"}]}"#;

    fn vector1_headers() -> Vec<(&'static str, &'static str)> {
        vec![
            ("Content-Type", "application/json;charset=utf-8"),
            ("Host", "127.0.0.1:8080"),
            ("User-Agent", "test-agent"),
            ("X-Project-Id", "proj1"),
            ("X-Sdk-Date", "20240101T000000Z"),
        ]
    }

    fn vector1() -> RequestParts<'static> {
        RequestParts {
            method: "POST",
            raw_path: "/v1/proj1/vpc-endpoint-services",
            raw_query: "",
            body: BODY1.as_bytes(),
        }
    }

    #[test]
    fn reference_vector_1_signs_as_the_sdk() {
        assert_eq!(
            sha256_hex(BODY1.as_bytes()),
            "c3b70cb255ba28a5e12bd5cdb3005bde23b199a146472aa42104a117d2343bfa"
        );
        let auth = sign("AKTEST", "SKTEST", &vector1(), &vector1_headers());
        assert_eq!(
            auth,
            "SDK-HMAC-SHA256 Access=AKTEST, SignedHeaders=content-type;host;user-agent;x-project-id;x-sdk-date, \
             Signature=b44e02e2d7336bcea67c81693f8abfb58029ba385f0379bd8c4e84822d982b5f"
        );
        let h = vec![
            ("content-type", "application/json;charset=utf-8"),
            ("host", "127.0.0.1:8080"),
            ("user-agent", "test-agent"),
            ("x-project-id", "proj1"),
            ("x-sdk-date", "20240101T000000Z"),
        ];
        let creq = canonical_request(&vector1(), &h, &sha256_hex(BODY1.as_bytes()));
        assert_eq!(
            sha256_hex(creq.as_bytes()),
            "5f5d1205b9a5f96716560086454eb7b96c6dffbe754082ef7ef56c39f7e79cad"
        );
    }

    #[test]
    fn reference_vector_2_canonicalises_the_query() {
        let parts = RequestParts {
            method: "GET",
            raw_path: "/v1/proj1/vpc-endpoints",
            raw_query: "sort_dir=asc&limit=10&endpoint_service_name=a%20b%2Fc",
            body: b"",
        };
        assert_eq!(
            canonical_query(parts.raw_query),
            "endpoint_service_name=a%20b%2Fc&limit=10&sort_dir=asc"
        );
        let headers = [
            ("Content-Type", "application/json"),
            ("Host", "127.0.0.1:8080"),
            ("User-Agent", "test-agent"),
            ("X-Project-Id", "proj1"),
            ("X-Sdk-Date", "20240101T000000Z"),
        ];
        let auth = sign("AKTEST", "SKTEST", &parts, &headers);
        assert!(
            auth.ends_with(
                "Signature=0344f3536d05f8927789b92e74d36f49dc97728652bca28d4157b6747389ad21"
            ),
            "{auth}"
        );
    }

    #[test]
    fn canonical_uri_always_ends_in_slash_and_reencodes() {
        assert_eq!(canonical_uri("/"), "/");
        assert_eq!(canonical_uri("/v1/p/vpc-endpoints"), "/v1/p/vpc-endpoints/");
        assert_eq!(
            canonical_uri("/v1/%7Bproject_id%7D/x"),
            "/v1/%7Bproject_id%7D/x/"
        );
        assert_eq!(canonical_query("b=2&a=1+1&a=0"), "a=0&a=1%2B1&b=2");
    }

    fn lookup(h: &[(&'static str, &'static str)], name: &str) -> Option<&'static str> {
        h.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }

    fn verify_with(
        headers: &[(&'static str, &'static str)],
        parts: &RequestParts<'_>,
        now: i64,
    ) -> Result<(), SignError> {
        verify(
            parts,
            |n| lookup(headers, n),
            now,
            |ak| (ak == "AKTEST").then(|| ("SKTEST".to_string(), ())),
        )
        .map(|_| ())
    }

    #[test]
    fn verify_accepts_the_sdk_signature_and_refuses_tampering() {
        let now = parse_sdk_date("20240101T000000Z").unwrap();
        let auth: &'static str =
            Box::leak(sign("AKTEST", "SKTEST", &vector1(), &vector1_headers()).into_boxed_str());
        let mut h = vector1_headers();
        h.push(("Authorization", auth));
        assert_eq!(verify_with(&h, &vector1(), now), Ok(()));
        assert_eq!(verify_with(&h, &vector1(), now + 14 * 60), Ok(()));
        assert_eq!(
            verify_with(&h, &vector1(), now + 16 * 60),
            Err(SignError::Expired)
        );
        let altered = RequestParts {
            body: b"{}",
            ..vector1()
        };
        assert_eq!(
            verify_with(&h, &altered, now),
            Err(SignError::SignatureMismatch)
        );
        let query = RequestParts {
            raw_query: "a=1",
            ..vector1()
        };
        assert_eq!(
            verify_with(&h, &query, now),
            Err(SignError::SignatureMismatch)
        );
        let wrong_ak = auth.replace("AKTEST", "AKOTHER");
        let mut h2 = vector1_headers();
        h2.push(("Authorization", Box::leak(wrong_ak.into_boxed_str())));
        assert_eq!(
            verify_with(&h2, &vector1(), now),
            Err(SignError::UnknownAccessKey)
        );
        let mut h3 = vector1_headers();
        h3.retain(|(n, _)| *n != "User-Agent");
        h3.push(("Authorization", auth));
        assert_eq!(
            verify_with(&h3, &vector1(), now),
            Err(SignError::MissingSignedHeader("user-agent".into()))
        );
        assert_eq!(
            verify_with(&vector1_headers(), &vector1(), now),
            Err(SignError::MissingAuthorization)
        );
    }

    #[test]
    fn content_sha256_header_counts_only_when_signed_and_true() {
        let now = parse_sdk_date("20240101T000000Z").unwrap();
        let signed_body = sha256_hex(BODY1.as_bytes());
        let other = RequestParts {
            body: b"{\"port_id\": \"evil\"}",
            ..vector1()
        };
        // Unsigned header claiming the signed body's hash: the received body is hashed instead.
        let auth: &'static str =
            Box::leak(sign("AKTEST", "SKTEST", &vector1(), &vector1_headers()).into_boxed_str());
        let mut h = vector1_headers();
        h.push(("Authorization", auth));
        h.push((
            "X-Sdk-Content-Sha256",
            Box::leak(signed_body.clone().into_boxed_str()),
        ));
        assert_eq!(
            verify_with(&h, &other, now),
            Err(SignError::SignatureMismatch)
        );
        // Signed header holding a digest that is not the body's.
        let mut hs = vector1_headers();
        hs.push((
            "X-Sdk-Content-Sha256",
            Box::leak(signed_body.into_boxed_str()),
        ));
        let auth2: &'static str =
            Box::leak(sign("AKTEST", "SKTEST", &vector1(), &hs).into_boxed_str());
        hs.push(("Authorization", auth2));
        assert_eq!(verify_with(&hs, &vector1(), now), Ok(()));
        assert_eq!(
            verify_with(&hs, &other, now),
            Err(SignError::SignatureMismatch)
        );
    }

    #[test]
    fn parse_authorization_rejects_other_algorithms() {
        assert!(matches!(
            parse_authorization("SDK-HMAC-SM3 Access=a, SignedHeaders=h, Signature=00"),
            Err(SignError::UnsupportedAlgorithm(_))
        ));
        assert!(matches!(
            parse_authorization("SDK-HMAC-SHA256 Access=a"),
            Err(SignError::Malformed(_))
        ));
    }
}
