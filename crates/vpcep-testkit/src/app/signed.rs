//! [`HandSigned`]: a request signed by hand with `vpcep_sign`, like the SDK, where the test can
//! change what is sent after signing (the authentication tests).

use super::Resp;
use crate::wait::unix_now;
use reqwest::Method;

/// A request signed by hand with `vpcep_sign::sign`, like the SDK, where the test can change
/// what is sent after signing.
pub struct HandSigned {
    pub(super) base_url: String,
    pub(super) access_key: String,
    pub(super) secret_key: String,
    pub(super) project_id: String,
    pub(super) method: String,
    pub(super) path: String,
    pub(super) query: String,
    pub(super) sent_query: Option<String>,
    pub(super) body: Vec<u8>,
    pub(super) sent_body: Option<Vec<u8>>,
    pub(super) date: i64,
    pub(super) authorization: bool,
    pub(super) unsigned: Option<&'static str>,
    pub(super) extra: Vec<(&'static str, String, bool)>,
    pub(super) payload_hash: Option<String>,
}

impl HandSigned {
    /// Signs and sends this query (without `?`).
    pub fn query(mut self, q: &str) -> Self {
        self.query = q.into();
        self
    }

    /// Sends this query instead of the signed one.
    pub fn send_query(mut self, q: &str) -> Self {
        self.sent_query = Some(q.into());
        self
    }

    /// Signs and sends this body.
    pub fn body(mut self, b: &[u8]) -> Self {
        self.body = b.to_vec();
        self
    }

    /// Sends this body instead of the signed one.
    pub fn send_body(mut self, b: &[u8]) -> Self {
        self.sent_body = Some(b.to_vec());
        self
    }

    /// Signs with these credentials instead.
    pub fn keys(mut self, access_key: &str, secret_key: &str) -> Self {
        self.access_key = access_key.into();
        self.secret_key = secret_key.into();
        self
    }

    /// Dates the request `offset_secs` from now (negative: in the past).
    pub fn date_offset(mut self, offset_secs: i64) -> Self {
        self.date = unix_now() + offset_secs;
        self
    }

    /// Leaves the `Authorization` header out.
    pub fn without_authorization(mut self) -> Self {
        self.authorization = false;
        self
    }

    /// Leaves the header `name` (`Host`, `X-Sdk-Date`, ...) out of the signed headers; it is
    /// still sent.
    pub fn without_signed(mut self, name: &'static str) -> Self {
        self.unsigned = Some(name);
        self
    }

    /// Sends the header `name: value` too; `signed` puts it in `SignedHeaders`.
    pub fn header(mut self, name: &'static str, value: &str, signed: bool) -> Self {
        self.extra.push((name, value.into(), signed));
        self
    }

    /// Signs with this literal in place of the hex SHA-256 of the body, as the SDK does with
    /// `X-Sdk-Content-Sha256: UNSIGNED-PAYLOAD`.
    pub fn payload_hash(mut self, literal: &str) -> Self {
        self.payload_hash = Some(literal.into());
        self
    }

    /// Signs and sends.
    pub async fn send(self) -> Resp {
        let host = self
            .base_url
            .strip_prefix("http://")
            .expect("http base url")
            .to_string();
        let date = vpcep_sign::format_sdk_date(self.date);
        let content_type = "application/json;charset=utf-8";
        let headers = [
            ("Content-Type", content_type),
            ("Host", host.as_str()),
            ("X-Project-Id", self.project_id.as_str()),
            ("X-Sdk-Date", date.as_str()),
        ];
        let parts = vpcep_sign::RequestParts {
            method: &self.method,
            raw_path: &self.path,
            raw_query: &self.query,
            body: &self.body,
        };
        let mut signed: Vec<(&str, &str)> = headers
            .iter()
            .copied()
            .filter(|(name, _)| Some(*name) != self.unsigned)
            .collect();
        signed.extend(
            self.extra
                .iter()
                .filter(|(_, _, is_signed)| *is_signed)
                .map(|(name, value, _)| (*name, value.as_str())),
        );
        let auth = match &self.payload_hash {
            None => vpcep_sign::sign(&self.access_key, &self.secret_key, &parts, &signed),
            Some(literal) => {
                let mut lower: Vec<(String, &str)> = signed
                    .iter()
                    .map(|(n, v)| (n.to_ascii_lowercase(), *v))
                    .collect();
                lower.sort();
                let refs: Vec<(&str, &str)> = lower.iter().map(|(n, v)| (n.as_str(), *v)).collect();
                let creq = vpcep_sign::canonical_request(&parts, &refs, literal);
                let sig = vpcep_sign::signature(
                    &self.secret_key,
                    &vpcep_sign::string_to_sign(&date, &creq),
                );
                let names: Vec<&str> = refs.iter().map(|(n, _)| *n).collect();
                format!(
                    "{} Access={}, SignedHeaders={}, Signature={sig}",
                    vpcep_sign::ALGORITHM,
                    self.access_key,
                    names.join(";")
                )
            }
        };
        let query = self.sent_query.as_deref().unwrap_or(&self.query);
        let url = if query.is_empty() {
            format!("{}{}", self.base_url, self.path)
        } else {
            format!("{}{}?{query}", self.base_url, self.path)
        };
        let method = Method::from_bytes(self.method.as_bytes()).expect("method");
        let mut req = crate::http()
            .request(method, url)
            .header("Content-Type", content_type)
            .header("X-Project-Id", &self.project_id)
            .header("X-Sdk-Date", &date);
        for (name, value, _) in &self.extra {
            req = req.header(*name, value);
        }
        if self.authorization {
            req = req.header("Authorization", auth);
        }
        let body = self.sent_body.unwrap_or(self.body);
        Resp::from_reqwest(req.body(body).send().await.expect("send")).await
    }
}
