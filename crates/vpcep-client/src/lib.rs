//! A signed HTTP client for the vpcep API: signs every request with `SDK-HMAC-SHA256` the way
//! the official SDK does (headers `Host`, `X-Sdk-Date`, `X-Project-Id`, `Content-Type`).
//!
//! # Layout
//! - this file only: [`Client`] (signing, a custom CA), [`RawResponse`] and [`ClientError`].

use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::Serialize;
use vpcep_sign::{format_sdk_date, sign, RequestParts};

/// Credentials and where to send requests.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: reqwest::Url,
    /// Access key.
    pub access_key: String,
    secret_key: String,
    /// Project the requests act in (`{project_id}`).
    pub project_id: String,
    /// Longest wait for a whole answer ([`Client::with_timeout`]); none by default.
    timeout: Option<std::time::Duration>,
}

/// Longest wait for a TCP (and TLS) connection to the server.
pub const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Transport failure.
    #[error("request failed: {0}")]
    Http(#[from] reqwest::Error),
    /// The server answered an error.
    #[error("HTTP {status}: {code}: {msg}")]
    Api {
        /// HTTP status.
        status: u16,
        /// `error_code`.
        code: String,
        /// `error_msg`.
        msg: String,
    },
    /// The answer was not the JSON expected.
    #[error("unexpected response: {0}")]
    Decode(String),
}

/// A raw answer: status, headers, body.
#[derive(Debug, Clone)]
pub struct RawResponse {
    /// HTTP status.
    pub status: u16,
    /// Response headers.
    pub headers: reqwest::header::HeaderMap,
    /// Body bytes.
    pub body: bytes::Bytes,
}

impl RawResponse {
    /// The body as JSON (`null` when empty).
    pub fn json(&self) -> serde_json::Value {
        if self.body.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
        }
    }

    /// `error_code` of an error body.
    pub fn error_code(&self) -> String {
        self.json()["error_code"].as_str().unwrap_or("").to_string()
    }
}

impl Client {
    /// A client for `base_url` (e.g. `http://127.0.0.1:8480`, or `https://...`, verified
    /// against the system's root certificates unless [`Client::with_ca_cert`]).
    pub fn new(
        base_url: &str,
        access_key: &str,
        secret_key: &str,
        project_id: &str,
    ) -> Result<Self, ClientError> {
        Ok(Client {
            http: Self::http_builder().build()?,
            base: reqwest::Url::parse(base_url).map_err(|e| ClientError::Decode(e.to_string()))?,
            access_key: access_key.into(),
            secret_key: secret_key.into(),
            project_id: project_id.into(),
            timeout: None,
        })
    }

    /// Idle pooled connections are dropped before the server's default `--idle-timeout` (60 s)
    /// closes them, so a request is never sent on a connection the server is closing. A
    /// connection not established within [`CONNECT_TIMEOUT`] fails the request.
    fn http_builder() -> reqwest::ClientBuilder {
        reqwest::Client::builder()
            .pool_max_idle_per_host(64)
            .pool_idle_timeout(std::time::Duration::from_secs(30))
            .connect_timeout(CONNECT_TIMEOUT)
    }

    /// The same client, failing a request whose answer has not wholly arrived within `timeout`
    /// (a server that accepts and never answers would otherwise be waited for forever).
    pub fn with_timeout(self, timeout: std::time::Duration) -> Self {
        Client {
            timeout: Some(timeout),
            ..self
        }
    }

    /// The longest wait for an answer, if one is set.
    pub fn timeout(&self) -> Option<std::time::Duration> {
        self.timeout
    }

    /// The same client, verifying `https://` servers against the PEM CA certificates in `pem`
    /// only (`--ca-cert`), instead of the system's roots.
    pub fn with_ca_cert(self, pem: &[u8]) -> Result<Self, ClientError> {
        let mut builder = Self::http_builder().tls_built_in_root_certs(false);
        let certs = reqwest::Certificate::from_pem_bundle(pem)?;
        if certs.is_empty() {
            return Err(ClientError::Decode(
                "the CA file holds no PEM certificate".into(),
            ));
        }
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
        Ok(Client {
            http: builder.build()?,
            ..self
        })
    }

    /// The same credentials against another server.
    pub fn clone_to(&self, base_url: &str) -> Self {
        Client {
            base: reqwest::Url::parse(base_url).unwrap_or_else(|_| self.base.clone()),
            ..self.clone()
        }
    }

    /// The same credentials acting in another project (or with another path prefix).
    pub fn with_project(&self, project_id: &str) -> Self {
        Client {
            project_id: project_id.into(),
            ..self.clone()
        }
    }

    /// `path_and_query` with `{project_id}` replaced, e.g. `/v1/{project_id}/vpc-endpoint-services?limit=5`.
    pub fn url(&self, path_and_query: &str) -> String {
        let p = path_and_query.replace("{project_id}", &self.project_id);
        format!("{}{}", self.base.as_str().trim_end_matches('/'), p)
    }

    /// Sends a signed request with an optional raw body; `{project_id}` in the path is filled in.
    pub async fn send_raw(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<Vec<u8>>,
    ) -> Result<RawResponse, ClientError> {
        let url = reqwest::Url::parse(&self.url(path_and_query))
            .map_err(|e| ClientError::Decode(e.to_string()))?;
        let body = body.unwrap_or_default();
        let host = match url.port() {
            Some(p) => format!("{}:{p}", url.host_str().unwrap_or_default()),
            None => url.host_str().unwrap_or_default().to_string(),
        };
        let date = format_sdk_date(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0),
        );
        let content_type = if body.is_empty() {
            "application/json"
        } else {
            "application/json;charset=utf-8"
        };
        let headers = [
            ("Content-Type", content_type),
            ("Host", host.as_str()),
            ("X-Project-Id", self.project_id.as_str()),
            ("X-Sdk-Date", date.as_str()),
        ];
        let parts = RequestParts {
            method: method.as_str(),
            raw_path: url.path(),
            raw_query: url.query().unwrap_or(""),
            body: &body,
        };
        let auth = sign(&self.access_key, &self.secret_key, &parts, &headers);
        let mut req = self
            .http
            .request(method, url.clone())
            .header("Authorization", auth);
        for (k, v) in headers.iter().filter(|(k, _)| *k != "Host") {
            req = req.header(*k, *v);
        }
        if let Some(t) = self.timeout {
            req = req.timeout(t);
        }
        let resp = req.body(body).send().await?;
        Ok(RawResponse {
            status: resp.status().as_u16(),
            headers: resp.headers().clone(),
            body: resp.bytes().await?,
        })
    }

    /// Sends a signed JSON request and decodes a JSON answer; an error status is [`ClientError::Api`].
    pub async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<&B>,
    ) -> Result<T, ClientError> {
        let bytes = body.map(|b| serde_json::to_vec(b).expect("request bodies serialize"));
        let resp = self.send_raw(method, path_and_query, bytes).await?;
        if resp.status >= 400 {
            let v = resp.json();
            return Err(ClientError::Api {
                status: resp.status,
                code: v["error_code"].as_str().unwrap_or_default().into(),
                msg: v["error_msg"].as_str().unwrap_or_default().into(),
            });
        }
        let body = if resp.body.is_empty() {
            &b"null"[..]
        } else {
            &resp.body[..]
        };
        serde_json::from_slice(body).map_err(|e| {
            ClientError::Decode(format!("{e}: {}", String::from_utf8_lossy(&resp.body)))
        })
    }
}
