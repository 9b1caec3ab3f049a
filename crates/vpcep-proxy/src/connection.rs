//! One client connection: whitelist → connect to the backend (with a timeout, from the
//! backend's namespace) → optional PROXY header → bidirectional copy.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use crate::config::{ListenerConfig, ProxyVersion};
use crate::copy;
use crate::listener::Shared;
use crate::metrics::{Direction, EndpointMetrics, RefuseReason};
use crate::proxy_protocol;

/// A listener's config together with the counters of its endpoint.
#[derive(Debug)]
pub(crate) struct Route {
    pub cfg: ListenerConfig,
    pub metrics: Arc<EndpointMetrics>,
}

/// Serves one accepted connection until both sides are done, an error, or `abort`. `local` is
/// the address the client connected to when the listener's own address says it (not a
/// wildcard); else it is asked of the socket. The client socket already has `TCP_NODELAY`,
/// inherited from the listener.
pub(crate) async fn serve(
    client: TcpStream,
    peer: SocketAddr,
    local: Option<SocketAddr>,
    route: Arc<Route>,
    shared: Arc<Shared>,
    abort: CancellationToken,
) {
    let cfg = &route.cfg;
    if !cfg.whitelist.allows(peer.ip()) {
        route.metrics.refused(RefuseReason::Whitelist);
        debug!(endpoint_id = %cfg.endpoint_id, %peer, "refused: not in whitelist");
        return;
    }
    let _active = route.metrics.opened();
    let connect = shared.netns.connect(
        cfg.backend_netns.as_deref(),
        cfg.backend,
        cfg.tcp_proxy.sends_proxy_header(),
    );
    let backend = tokio::select! {
        r = tokio::time::timeout(shared.opts.connect_timeout, connect) => match r {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                route.metrics.refused(RefuseReason::BackendUnreachable);
                debug!(endpoint_id = %cfg.endpoint_id, backend = %cfg.backend, "backend connect failed: {e}");
                return;
            }
            Err(_) => {
                route.metrics.refused(RefuseReason::BackendUnreachable);
                debug!(endpoint_id = %cfg.endpoint_id, backend = %cfg.backend, "backend connect timed out");
                return;
            }
        },
        _ = abort.cancelled() => return,
    };
    let mut backend = backend;
    if cfg.tcp_proxy.sends_proxy_header() {
        let destination = match local {
            Some(a) => a,
            None => client.local_addr().unwrap_or(peer),
        };
        let header = match shared.opts.proxy_version {
            ProxyVersion::V1 => Ok(proxy_protocol::encode_v1(peer, destination)),
            ProxyVersion::V2 => proxy_protocol::encode_v2(&proxy_protocol::HeaderFields {
                source: peer,
                destination,
                endpoint_id: &cfg.endpoint_id,
                marker_id: cfg.marker_id,
                vni: cfg.tcp_proxy.sends_vni().then_some(cfg.vni),
            }),
        };
        let written = match header {
            Ok(h) => match with_first_bytes(h, &client) {
                Ok((h, n)) => {
                    route.metrics.bytes(Direction::ClientToBackend, n as u64);
                    backend.write_all(&h).await
                }
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        if let Err(e) = written {
            debug!(endpoint_id = %cfg.endpoint_id, "writing the PROXY header failed: {e}");
            return;
        }
    }
    tokio::select! {
        r = copy::bidirectional(&client, &backend, shared.copy, &route.metrics) => {
            if let Err(e) = r {
                debug!(endpoint_id = %cfg.endpoint_id, %peer, "connection ended: {e}");
            }
        }
        _ = abort.cancelled() => {
            debug!(endpoint_id = %cfg.endpoint_id, %peer, "connection aborted after the drain deadline");
        }
    }
}

/// Most client bytes sent in the same write as the PROXY header.
const FIRST_BYTES: usize = 4096;

/// `header` followed by whatever the client has sent already (without waiting: a protocol where
/// the server speaks first sends nothing yet), and how many client bytes that is. One write
/// then carries both, so the backend gets one segment and one wake-up instead of two. An end
/// of stream read here is read again by the copy that follows.
fn with_first_bytes(mut header: Vec<u8>, client: &TcpStream) -> std::io::Result<(Vec<u8>, usize)> {
    header.reserve(FIRST_BYTES);
    let n = copy::read_append(client, &mut header, FIRST_BYTES)?;
    Ok((header, n))
}
