//! One keep-alive HTTP/1.1 connection that sends requests signed exactly as the SDK signs them
//! (`SDK-HMAC-SHA256` over `Content-Type`, `Host`, `X-Project-Id`, `X-Sdk-Date`; the same
//! headers and content types as `vpcep-client`).

use anyhow::Context as _;
use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::net::TcpStream;
use vpcep_sign::{format_sdk_date, sign, RequestParts};

/// Who signs: an access key pair acting in a project.
#[derive(Debug, Clone)]
pub struct Creds {
    pub access_key: String,
    pub secret_key: String,
}

/// A server to send to.
#[derive(Debug, Clone)]
pub struct Target {
    /// Where to connect.
    pub addr: SocketAddr,
    /// The `Host` header (`ip:port`), signed.
    pub host: String,
}

impl Target {
    /// Parses `http://host:port` (an IP address, or `localhost`).
    pub fn parse(url: &str) -> anyhow::Result<Target> {
        let rest = url
            .strip_prefix("http://")
            .with_context(|| format!("{url}: only http:// URLs are supported"))?
            .trim_end_matches('/');
        let host = rest.to_string();
        let addr = rest
            .replace("localhost", "127.0.0.1")
            .parse()
            .with_context(|| format!("{url}: expected http://IP:PORT"))?;
        Ok(Target { addr, host })
    }
}

/// A request ready to send. `project` fills the `X-Project-Id` header; `None` sends an unsigned
/// request (`/health`).
pub fn request(
    target: &Target,
    creds: Option<(&Creds, &str)>,
    method: Method,
    path_and_query: &str,
    body: Vec<u8>,
) -> Request<Full<Bytes>> {
    let mut b = Request::builder()
        .method(method.clone())
        .uri(path_and_query)
        .header("Host", &target.host);
    if let Some((creds, project)) = creds {
        let (path, query) = path_and_query
            .split_once('?')
            .unwrap_or((path_and_query, ""));
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let date = format_sdk_date(secs);
        let content_type = if body.is_empty() {
            "application/json"
        } else {
            "application/json;charset=utf-8"
        };
        let headers = [
            ("Content-Type", content_type),
            ("Host", target.host.as_str()),
            ("X-Project-Id", project),
            ("X-Sdk-Date", date.as_str()),
        ];
        let parts = RequestParts {
            method: method.as_str(),
            raw_path: path,
            raw_query: query,
            body: &body,
        };
        let auth = sign(&creds.access_key, &creds.secret_key, &parts, &headers);
        b = b
            .header("Content-Type", content_type)
            .header("X-Project-Id", project)
            .header("X-Sdk-Date", date)
            .header("Authorization", auth);
    }
    b.body(Full::new(Bytes::from(body)))
        .expect("a valid request")
}

/// One HTTP/1.1 keep-alive connection.
pub struct Conn {
    sender: SendRequest<Full<Bytes>>,
}

impl Conn {
    /// Connects (TCP_NODELAY) and starts the connection task.
    pub async fn open(addr: SocketAddr) -> anyhow::Result<Conn> {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Conn { sender })
    }

    /// Whether the server closed the connection.
    pub fn is_closed(&self) -> bool {
        self.sender.is_closed()
    }

    /// Sends and reads the whole answer: status and body.
    pub async fn send(&mut self, req: Request<Full<Bytes>>) -> anyhow::Result<(u16, Bytes)> {
        self.sender.ready().await?;
        let resp = self.sender.send_request(req).await?;
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }
}

/// A signed JSON call on a fresh connection for setup work; answers status and JSON body.
pub async fn call(
    conn: &mut Conn,
    target: &Target,
    creds: &Creds,
    project: &str,
    method: Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> anyhow::Result<(u16, serde_json::Value)> {
    let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
    let req = request(target, Some((creds, project)), method, path, bytes);
    let (status, body) = conn.send(req).await?;
    let json = if body.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null)
    };
    Ok((status, json))
}
