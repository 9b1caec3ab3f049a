//! [`Resp`]: an HTTP answer and the assertions the tests make on it.

use reqwest::header::HeaderMap;
use serde_json::Value;
use vpcep_client::RawResponse;

/// An HTTP answer.
#[derive(Debug, Clone)]
pub struct Resp {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: HeaderMap,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl From<RawResponse> for Resp {
    fn from(r: RawResponse) -> Self {
        Resp {
            status: r.status,
            headers: r.headers,
            body: r.body.to_vec(),
        }
    }
}

impl Resp {
    pub(crate) async fn from_reqwest(r: reqwest::Response) -> Self {
        Resp {
            status: r.status().as_u16(),
            headers: r.headers().clone(),
            body: r.bytes().await.expect("read body").to_vec(),
        }
    }

    /// The body as JSON; panics with the text when it is not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): status {} body {:?}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// `X-Request-Id`, if present.
    pub fn request_id(&self) -> Option<&str> {
        self.headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
    }

    /// Asserts a 2xx status `status`; answers the JSON body (`null` when empty).
    pub fn ok(&self, status: u16) -> Value {
        assert_eq!(
            self.status,
            status,
            "expected {status}, got {}: {}",
            self.status,
            self.text()
        );
        assert!(self.request_id().is_some(), "no X-Request-Id");
        if self.body.is_empty() {
            Value::Null
        } else {
            self.json()
        }
    }

    /// Asserts the API error shape with `status` and `code` (and an `X-Request-Id`); answers
    /// `error_msg`.
    pub fn err(&self, status: u16, code: &str) -> String {
        assert_eq!(
            self.status,
            status,
            "expected {status} {code}, got {}: {}",
            self.status,
            self.text()
        );
        assert!(
            self.request_id().is_some_and(|id| !id.is_empty()),
            "error response without X-Request-Id: {}",
            self.text()
        );
        let v = self.json();
        assert_eq!(v["error_code"], code, "error body: {v}");
        let msg = v["error_msg"].as_str().unwrap_or_default().to_string();
        assert!(!msg.is_empty(), "error_msg is empty: {v}");
        msg
    }

    /// Like [`Resp::err`], and the message names `field`.
    pub fn err_naming(&self, status: u16, code: &str, field: &str) -> String {
        let msg = self.err(status, code);
        assert!(
            msg.contains(field),
            "error_msg does not name {field:?}: {msg}"
        );
        msg
    }
}
