//! The UDP receive loops: one OS thread per socket, blocked in `recvmmsg` like classic
//! authoritative servers, answering each batch of queries inline and sending the answers with
//! one `sendmmsg` (no task, no reactor round trip per query); only queries forwarded upstream,
//! which wait on the network, go to a tokio task.
//! Decoding, encoding and truncation are hickory's (`MessageRequest`,
//! `MessageResponse::destructive_emit`), and the answers come from the same [`Handler`] as over
//! TCP.

use std::io::{self, IoSlice, IoSliceMut};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex};

use hickory_proto::op::{Header, MessageType, ResponseCode};
use hickory_proto::rr::Record;
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder, BinEncodable, BinEncoder};
use hickory_proto::xfer::Protocol;
use hickory_server::authority::{MessageRequest, MessageResponse};
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use nix::errno::Errno;
use nix::sys::socket::{
    recvmmsg, sendmmsg, ControlMessage, MsgFlags, MultiHeaders, SockaddrStorage,
};
use std::net::UdpSocket;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

use crate::handler::Handler;

/// Largest UDP answer without EDNS (RFC 1035).
const PLAIN_UDP: u16 = 512;

/// Encoded answers waiting for the batch's `sendmmsg`, with their destinations.
pub(crate) type Outbox = Arc<Mutex<Vec<(Vec<u8>, SocketAddr)>>>;

/// Where answers go: straight out (forwarded queries, answered later by a task), or into the
/// batch the receive loop sends with one `sendmmsg`.
#[derive(Clone)]
enum Sink {
    Direct(Arc<UdpSocket>),
    Batch(Outbox),
}

/// Sends one answer to `dst`, at most the size the client can take (its EDNS payload size,
/// else 512 bytes; hickory truncates and sets TC beyond it).
#[derive(Clone)]
pub(crate) struct Reply {
    sink: Sink,
    dst: SocketAddr,
    /// Over TCP: any size up to the 16-bit length prefix (no EDNS limit, no truncation).
    tcp: bool,
}

impl Reply {
    /// A reply over TCP: the answers are collected in `out`, for the caller to write.
    pub(crate) fn tcp(out: Outbox, dst: SocketAddr) -> Self {
        Reply {
            sink: Sink::Batch(out),
            dst,
            tcp: true,
        }
    }
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
        let max = if self.tcp {
            u16::MAX
        } else {
            response
                .get_edns()
                .as_ref()
                .map(|e| e.max_payload().max(PLAIN_UDP))
                .unwrap_or(PLAIN_UDP)
        };
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
        match &self.sink {
            Sink::Direct(socket) => send(socket, &buf, self.dst)?,
            Sink::Batch(out) => out
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((buf, self.dst)),
        }
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

/// Datagrams taken (and answers sent) per system call.
const BATCH: usize = 32;
/// Longest query read; longer datagrams are cut and fail to decode (FORMERR or dropped).
const MAX_QUERY: usize = 4096;

fn serve(
    socket: Arc<UdpSocket>,
    handler: Arc<Handler>,
    cancel: CancellationToken,
    runtime: tokio::runtime::Handle,
) {
    let fd = socket.as_raw_fd();
    let mut bufs = vec![[0u8; MAX_QUERY]; BATCH];
    let mut rx = MultiHeaders::<SockaddrStorage>::preallocate(BATCH, None);
    let mut tx = MultiHeaders::<SockaddrStorage>::preallocate(BATCH, None);
    let outbox: Outbox = Arc::new(Mutex::new(Vec::with_capacity(BATCH)));
    let mut batches: u32 = 0;
    loop {
        // Under a flood the read never times out: look now and then (the check locks).
        batches = batches.wrapping_add(1);
        if batches.is_multiple_of(256) && cancel.is_cancelled() {
            return;
        }
        let got: Vec<(usize, Option<SocketAddr>)> = {
            let mut iovs: Vec<[IoSliceMut<'_>; 1]> = bufs
                .iter_mut()
                .map(|b| [IoSliceMut::new(&mut b[..])])
                .collect();
            match recvmmsg(fd, &mut rx, iovs.iter_mut(), MsgFlags::MSG_WAITFORONE, None) {
                Ok(res) => res
                    .map(|m| (m.bytes, m.address.and_then(|a| std_addr(&a))))
                    .collect(),
                Err(Errno::EAGAIN | Errno::EINTR) => {
                    if cancel.is_cancelled() {
                        return;
                    }
                    continue;
                }
                Err(e) => {
                    tracing::debug!(error = %e, "DNS UDP receive failed");
                    continue;
                }
            }
        };
        for (i, (n, src)) in got.into_iter().enumerate() {
            let Some(src) = src.filter(|s| s.port() != 0) else {
                continue;
            };
            let bytes = &bufs[i][..n.min(MAX_QUERY)];
            answer(bytes, src, &socket, &outbox, &handler, &runtime);
        }
        let out = std::mem::take(&mut *outbox.lock().unwrap_or_else(|e| e.into_inner()));
        if out.is_empty() {
            continue;
        }
        let slices: Vec<[IoSlice<'_>; 1]> = out.iter().map(|(b, _)| [IoSlice::new(b)]).collect();
        let addrs: Vec<Option<SockaddrStorage>> = out
            .iter()
            .map(|(_, a)| Some(SockaddrStorage::from(*a)))
            .collect();
        let sent = sendmmsg(
            fd,
            &mut tx,
            &slices,
            &addrs,
            [] as [ControlMessage<'_>; 0],
            MsgFlags::empty(),
        )
        .map(|r| r.count())
        .unwrap_or(0);
        // What one call did not send goes one by one.
        for (buf, dst) in out.iter().skip(sent) {
            let _ = send(&socket, buf, *dst);
        }
    }
}

/// Answers one datagram: into the batch, or from a task when it is forwarded upstream.
fn answer(
    bytes: &[u8],
    src: SocketAddr,
    socket: &Arc<UdpSocket>,
    outbox: &Outbox,
    handler: &Arc<Handler>,
    runtime: &tokio::runtime::Handle,
) {
    let message = match MessageRequest::from_bytes(bytes) {
        Ok(m) => m,
        Err(_) => {
            form_error(socket, bytes, src, handler);
            return;
        }
    };
    // Never answer answers (reflection loops).
    if message.message_type() == MessageType::Response {
        return;
    }
    let request = Request::new(message, src, Protocol::Udp);
    if handler.forwards(&request) {
        let handler = handler.clone();
        let reply = Reply {
            sink: Sink::Direct(socket.clone()),
            dst: src,
            tcp: false,
        };
        runtime.spawn(async move {
            handler.handle_request(&request, reply).await;
        });
    } else {
        let reply = Reply {
            sink: Sink::Batch(outbox.clone()),
            dst: src,
            tcp: false,
        };
        // Nothing on this path waits (the zone is in memory, the answer goes to the batch).
        futures::executor::block_on(handler.handle_request(&request, reply));
    }
}

fn std_addr(a: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = a.as_sockaddr_in() {
        return Some(SocketAddr::V4((*v4).into()));
    }
    a.as_sockaddr_in6().map(|v6| SocketAddr::V6((*v6).into()))
}

/// A message whose header decodes but whose body does not: FORMERR (as hickory's own server
/// does); anything shorter than a header, or a response, is dropped.
fn form_error(socket: &UdpSocket, bytes: &[u8], src: SocketAddr, handler: &Handler) {
    if let Some(buf) = form_error_answer(bytes, handler) {
        let _ = send(socket, &buf, src);
    }
}

/// The FORMERR answer to a message whose header decodes (`None`: no answer), counted.
pub(crate) fn form_error_answer(bytes: &[u8], handler: &Handler) -> Option<Vec<u8>> {
    let header = Header::read(&mut BinDecoder::new(bytes)).ok()?;
    if header.message_type() == MessageType::Response {
        return None;
    }
    let mut h = Header::response_from_request(&header);
    h.set_response_code(ResponseCode::FormErr);
    let mut buf = Vec::with_capacity(12);
    h.emit(&mut BinEncoder::new(&mut buf)).ok()?;
    handler.metrics.count(None, ResponseCode::FormErr);
    Some(buf)
}
