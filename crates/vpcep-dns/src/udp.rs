//! The UDP receive loops: one OS thread per socket, blocked in `recvfrom` like classic
//! authoritative servers, answering each query inline (no task, no reactor round trip per
//! query); only queries forwarded upstream, which wait on the network, go to a tokio task.
//! Decoding, encoding and truncation are hickory's (`MessageRequest`,
//! `MessageResponse::destructive_emit`), and the answers come from the same [`Handler`] as over
//! TCP.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use hickory_proto::op::{Header, MessageType, ResponseCode};
use hickory_proto::rr::Record;
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder, BinEncodable, BinEncoder};
use hickory_proto::xfer::Protocol;
use hickory_server::authority::{MessageRequest, MessageResponse};
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use std::net::UdpSocket;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

use crate::handler::Handler;

/// Largest UDP answer without EDNS (RFC 1035).
const PLAIN_UDP: u16 = 512;

/// Sends one answer to `dst` on `socket`, at most the size the client can take (its EDNS
/// payload size, else 512 bytes; hickory truncates and sets TC beyond it).
#[derive(Clone)]
struct Reply {
    socket: Arc<UdpSocket>,
    dst: SocketAddr,
}

#[async_trait::async_trait]
impl ResponseHandler for Reply {
    async fn send_response<'a>(
        &mut self,
        response: MessageResponse<
            '_,
            'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
        >,
    ) -> io::Result<ResponseInfo> {
        let id = response.header().id();
        let max = response
            .get_edns()
            .as_ref()
            .map(|e| e.max_payload().max(PLAIN_UDP))
            .unwrap_or(PLAIN_UDP);
        let mut buf = Vec::with_capacity(512);
        let info = {
            let mut encoder = BinEncoder::new(&mut buf);
            encoder.set_max_size(max);
            response.destructive_emit(&mut encoder)
        };
        let info = match info {
            Ok(info) => info,
            Err(e) => {
                tracing::debug!(error = %e, "cannot encode a DNS answer; SERVFAIL");
                buf.clear();
                let mut h = Header::new();
                h.set_id(id)
                    .set_message_type(MessageType::Response)
                    .set_response_code(ResponseCode::ServFail);
                h.emit(&mut BinEncoder::new(&mut buf))
                    .map_err(io::Error::other)?;
                h.into()
            }
        };
        send(&self.socket, &buf, self.dst)?;
        Ok(info)
    }
}

/// Sends on the (blocking) socket: a UDP send waits only for room in the socket buffer.
fn send(socket: &UdpSocket, buf: &[u8], dst: SocketAddr) -> io::Result<()> {
    socket.send_to(buf, dst).map(|_| ())
}

/// How often a loop with nothing to read looks whether it must stop.
const STOP_CHECK: Duration = Duration::from_millis(200);

/// Answers queries arriving on `socket` on a thread of its own until `cancel`; forwarded
/// queries run on `runtime`.
pub(crate) fn spawn(
    socket: UdpSocket,
    handler: Arc<Handler>,
    cancel: CancellationToken,
    runtime: tokio::runtime::Handle,
) -> io::Result<()> {
    socket.set_nonblocking(false)?;
    socket.set_read_timeout(Some(STOP_CHECK))?;
    std::thread::Builder::new()
        .name("dns-udp".into())
        .spawn(move || serve(Arc::new(socket), handler, cancel, runtime))?;
    Ok(())
}

fn serve(
    socket: Arc<UdpSocket>,
    handler: Arc<Handler>,
    cancel: CancellationToken,
    runtime: tokio::runtime::Handle,
) {
    // The largest datagram: anything longer is cut by the kernel and fails to decode.
    let mut buf = vec![0u8; 65_535];
    let mut served: u32 = 0;
    loop {
        // Under a flood the read never times out: look now and then (the check locks).
        served = served.wrapping_add(1);
        if served.is_multiple_of(1024) && cancel.is_cancelled() {
            return;
        }
        let (n, src) = match socket.recv_from(&mut buf) {
            Ok(r) => r,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                if cancel.is_cancelled() {
                    return;
                }
                continue;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                tracing::debug!(error = %e, "DNS UDP receive failed");
                continue;
            }
        };
        if src.port() == 0 {
            continue;
        }
        let bytes = &buf[..n];
        let message = match MessageRequest::from_bytes(bytes) {
            Ok(m) => m,
            Err(_) => {
                form_error(&socket, bytes, src, &handler);
                continue;
            }
        };
        // Never answer answers (reflection loops).
        if message.message_type() == MessageType::Response {
            continue;
        }
        let request = Request::new(message, src, Protocol::Udp);
        let reply = Reply {
            socket: socket.clone(),
            dst: src,
        };
        if handler.forwards(&request) {
            let handler = handler.clone();
            runtime.spawn(async move {
                handler.handle_request(&request, reply).await;
            });
        } else {
            // Nothing on this path waits (the zone is in memory, the send is blocking).
            futures::executor::block_on(handler.handle_request(&request, reply));
        }
    }
}

/// A message whose header decodes but whose body does not: FORMERR (as hickory's own server
/// does); anything shorter than a header, or a response, is dropped.
fn form_error(socket: &UdpSocket, bytes: &[u8], src: SocketAddr, handler: &Handler) {
    let Ok(header) = Header::read(&mut BinDecoder::new(bytes)) else {
        return;
    };
    if header.message_type() == MessageType::Response {
        return;
    }
    let mut h = Header::response_from_request(&header);
    h.set_response_code(ResponseCode::FormErr);
    let mut buf = Vec::with_capacity(12);
    if h.emit(&mut BinEncoder::new(&mut buf)).is_ok() {
        handler.metrics.count(None, ResponseCode::FormErr);
        let _ = send(socket, &buf, src);
    }
}
