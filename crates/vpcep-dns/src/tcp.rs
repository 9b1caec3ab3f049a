//! DNS over TCP (RFC 7766 framing: a 16-bit length, then the message), with our own accept loop
//! so that open connections are capped: TCP connections hold file descriptors the API shares,
//! so an anonymous flood of them must not grow without bound. Past the cap a new connection is
//! closed at once (UDP, which nearly all queries use, is not affected); a connection that sends
//! no complete query for the idle timeout is closed. Decoding and encoding are hickory's; the
//! answers come from the same [`Handler`] as over UDP.

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_proto::op::MessageType;
use hickory_proto::serialize::binary::BinDecodable;
use hickory_proto::xfer::Protocol;
use hickory_server::authority::MessageRequest;
use hickory_server::server::{Request, RequestHandler};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::handler::Handler;
use crate::udp::{form_error_answer, Outbox, Reply};

/// Serves DNS over TCP on `listener` until `cancel`: at most `max` connections at once.
pub(crate) fn spawn(
    listener: TcpListener,
    handler: Arc<Handler>,
    idle: Duration,
    max: usize,
    cancel: CancellationToken,
) {
    tokio::spawn(async move {
        let open = Arc::new(Semaphore::new(max));
        loop {
            let (stream, src) = tokio::select! {
                _ = cancel.cancelled() => return,
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of descriptors or a connection reset before accept: wait a little
                        // instead of spinning.
                        tracing::debug!(error = %e, "DNS TCP accept failed");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                },
            };
            let Ok(permit) = open.clone().try_acquire_owned() else {
                metrics::counter!("vpcep_dns_tcp_refused_total").increment(1);
                drop(stream);
                continue;
            };
            let (handler, cancel) = (handler.clone(), cancel.clone());
            tokio::spawn(async move {
                let _permit = permit;
                tokio::select! {
                    _ = cancel.cancelled() => {}
                    _ = serve(stream, src, &handler, idle) => {}
                }
            });
        }
    });
}

/// Answers the queries of one connection, in order, until it closes, sends something that is
/// not a query, or sends no complete query within `idle`.
async fn serve(mut stream: TcpStream, src: SocketAddr, handler: &Handler, idle: Duration) {
    let _ = stream.set_nodelay(true);
    loop {
        let Ok(Ok(bytes)) = tokio::time::timeout(idle, read_message(&mut stream)).await else {
            return;
        };
        let answers = match MessageRequest::from_bytes(&bytes) {
            Ok(message) if message.message_type() == MessageType::Query => {
                let out: Outbox = Arc::new(Mutex::new(Vec::new()));
                let request = Request::new(message, src, Protocol::Tcp);
                handler
                    .handle_request(&request, Reply::tcp(out.clone(), src))
                    .await;
                let answers = std::mem::take(&mut *out.lock().unwrap_or_else(|e| e.into_inner()));
                answers.into_iter().map(|(b, _)| b).collect()
            }
            // Never answer answers.
            Ok(_) => continue,
            Err(_) => match form_error_answer(&bytes, handler) {
                Some(b) => vec![b],
                None => return,
            },
        };
        for answer in answers {
            let write = write_message(&mut stream, &answer);
            if !matches!(tokio::time::timeout(idle, write).await, Ok(Ok(()))) {
                return;
            }
        }
    }
}

async fn read_message(stream: &mut TcpStream) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).await?;
    let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
    stream.read_exact(&mut buf).await?;
    Ok(buf)
}

async fn write_message(stream: &mut TcpStream, message: &[u8]) -> io::Result<()> {
    let len = u16::try_from(message.len()).map_err(io::Error::other)?;
    let mut framed = Vec::with_capacity(2 + message.len());
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(message);
    stream.write_all(&framed).await
}
