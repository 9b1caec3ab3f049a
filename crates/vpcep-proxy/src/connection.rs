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
    let header = cfg.tcp_proxy.sends_proxy_header();
    // Connect failures count as an unreachable backend; a header that cannot be made (the
    // client's first read failed) ends the connection without.
    let connect = async {
        let connecting = shared
            .netns
            .connect(cfg.backend_netns.as_deref(), cfg.backend, header)
            .await
            .map_err(Failure::Connect)?;
        if !header {
            let backend = connecting.established(false).await;
            return Ok((backend.map_err(Failure::Connect)?, None));
        }
        // The header and the client's first bytes leave now if the connection is already up;
        // else once it is, with what more the client sent meanwhile.
        let (mut first, mut client_bytes) =
            first_segment(cfg, &shared, &client, peer, local).map_err(Failure::Header)?;
        let sent = connecting.send_now(&first).map_err(Failure::Connect)?;
        let backend = connecting
            .established(sent > 0)
            .await
            .map_err(Failure::Connect)?;
        if sent == 0 {
            client_bytes += copy::read_append(&client, &mut first, FIRST_BYTES - client_bytes)
                .map_err(Failure::Header)?;
        }
        Ok((backend, Some((first, sent, client_bytes))))
    };
    let (mut backend, first) = tokio::select! {
        r = tokio::time::timeout(shared.opts.connect_timeout, connect) => match r {
            Ok(Ok(c)) => c,
            Ok(Err(Failure::Connect(e))) => {
                route.metrics.refused(RefuseReason::BackendUnreachable);
                debug!(endpoint_id = %cfg.endpoint_id, backend = %cfg.backend, "backend connect failed: {e}");
                return;
            }
            Ok(Err(Failure::Header(e))) => {
                debug!(endpoint_id = %cfg.endpoint_id, "making the PROXY header failed: {e}");
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
    if let Some((first, sent, client_bytes)) = first {
        route
            .metrics
            .bytes(Direction::ClientToBackend, client_bytes as u64);
        if let Err(e) = backend.write_all(&first[sent..]).await {
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

/// Why a connection ended before its copy began.
enum Failure {
    Connect(std::io::Error),
    Header(std::io::Error),
}

/// Most client bytes sent in the same write as the PROXY header.
const FIRST_BYTES: usize = 4096;

/// The backend's first segment: the PROXY header followed by whatever the client has sent
/// already (without waiting: a protocol where the server speaks first sends nothing yet), and
/// how many client bytes that is. One write then carries both, so the backend gets one segment
/// and one wake-up instead of two. An end of stream read here is read again by the copy that
/// follows.
fn first_segment(
    cfg: &ListenerConfig,
    shared: &Shared,
    client: &TcpStream,
    peer: SocketAddr,
    local: Option<SocketAddr>,
) -> std::io::Result<(Vec<u8>, usize)> {
    let destination = match local {
        Some(a) => a,
        None => client.local_addr().unwrap_or(peer),
    };
    let mut header = match shared.opts.proxy_version {
        ProxyVersion::V1 => proxy_protocol::encode_v1(peer, destination),
        ProxyVersion::V2 => proxy_protocol::encode_v2(&proxy_protocol::HeaderFields {
            source: peer,
            destination,
            endpoint_id: &cfg.endpoint_id,
            marker_id: cfg.marker_id,
            vni: cfg.tcp_proxy.sends_vni().then_some(cfg.vni),
        })?,
    };
    header.reserve(FIRST_BYTES);
    let n = copy::read_append(client, &mut header, FIRST_BYTES)?;
    Ok((header, n))
}
