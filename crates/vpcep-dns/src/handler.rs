//! Answers one DNS request: authoritatively inside the endpoint zone, by forwarding (or
//! REFUSED) outside it. Parsing and encoding are hickory's.

use std::net::IpAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;
use hickory_proto::op::{Edns, Header, OpCode, ResponseCode};
use hickory_proto::rr::{DNSClass, Record, RecordType};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::Resolver;
use hickory_server::authority::MessageResponseBuilder;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};

use crate::metrics::QueryMetrics;
use crate::zone::{ns_address, Lookup, Scope, Zone};

/// Largest UDP answer offered with EDNS (the DNS flag day 2020 size: no fragmentation).
const EDNS_PAYLOAD: u16 = 1232;

/// The request handler of one listening address.
#[derive(Clone)]
pub struct Handler {
    pub(crate) zone: Arc<ArcSwap<Zone>>,
    pub(crate) scope: Scope,
    /// The address this resolver listens on (answered for `ns.<zone>`).
    pub(crate) addr: IpAddr,
    pub(crate) upstream: Option<Arc<Resolver<TokioConnectionProvider>>>,
    pub(crate) metrics: Arc<QueryMetrics>,
}

impl Handler {
    /// Whether answering `request` waits on the upstream (a well-formed question outside the
    /// zone, with `--dns-upstream`): the UDP loop answers it in a task of its own.
    pub(crate) fn forwards(&self, request: &Request) -> bool {
        if self.upstream.is_none()
            || request.op_code() != OpCode::Query
            || request.edns().is_some_and(|e| e.version() > 0)
        {
            return false;
        }
        let Ok(info) = request.request_info() else {
            return false;
        };
        info.query.query_class() == DNSClass::IN
            && !matches!(info.query.query_type(), RecordType::AXFR | RecordType::IXFR)
            && !self.zone.load().origin().zone_of(info.query.name())
    }

    #[allow(clippy::too_many_arguments)]
    async fn send<R: ResponseHandler>(
        &self,
        request: &Request,
        mut response: R,
        header: Header,
        answers: Vec<&Record>,
        authority: Vec<&Record>,
        edns: Option<Edns>,
        qtype: Option<RecordType>,
    ) -> ResponseInfo {
        let mut builder = MessageResponseBuilder::from_message_request(request);
        if let Some(e) = edns {
            builder.edns(e);
        }
        self.metrics.count(qtype, header.response_code());
        let msg = builder.build(header, answers, authority, [], []);
        match response.send_response(msg).await {
            Ok(info) => info,
            Err(e) => {
                tracing::debug!(error = %e, "cannot send a DNS response");
                let mut h = Header::response_from_request(request.header());
                h.set_response_code(ResponseCode::ServFail);
                h.into()
            }
        }
    }

    async fn forward(
        &self,
        resolver: &Resolver<TokioConnectionProvider>,
        query: &hickory_proto::op::LowerQuery,
        header: &mut Header,
    ) -> (Vec<Record>, Vec<Record>) {
        header.set_authoritative(false);
        match resolver
            .lookup(query.name().clone(), query.query_type())
            .await
        {
            Ok(lookup) => (lookup.records().to_vec(), Vec::new()),
            Err(e) => {
                let code = match e.proto().map(|p| p.kind()) {
                    Some(hickory_proto::ProtoErrorKind::NoRecordsFound {
                        response_code, ..
                    }) => *response_code,
                    _ => {
                        tracing::debug!(error = %e, name = %query.name(), "forwarding failed");
                        ResponseCode::ServFail
                    }
                };
                header.set_response_code(code);
                let soa = e
                    .into_soa()
                    .map(|s| vec![s.into_record_of_rdata()])
                    .unwrap_or_default();
                (Vec::new(), soa)
            }
        }
    }
}

#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler>(
        &self,
        request: &Request,
        response: R,
    ) -> ResponseInfo {
        let mut header = Header::response_from_request(request.header());
        header.set_recursion_available(self.upstream.is_some());
        let mut edns = None;
        if let Some(req) = request.edns() {
            let mut e = Edns::new();
            e.set_max_payload(EDNS_PAYLOAD);
            if req.version() > 0 {
                e.set_rcode_high(ResponseCode::BADVERS.high());
                header.set_response_code(ResponseCode::BADVERS);
                return self
                    .send(request, response, header, vec![], vec![], Some(e), None)
                    .await;
            }
            edns = Some(e);
        }
        if request.op_code() != OpCode::Query {
            header.set_response_code(ResponseCode::NotImp);
            return self
                .send(request, response, header, vec![], vec![], edns, None)
                .await;
        }
        let info = match request.request_info() {
            Ok(info) => info,
            Err(_) => {
                // Not exactly one question.
                header.set_response_code(ResponseCode::FormErr);
                return self
                    .send(request, response, header, vec![], vec![], edns, None)
                    .await;
            }
        };
        let query = info.query;
        let qtype = query.query_type();
        if query.query_class() != DNSClass::IN
            || matches!(qtype, RecordType::AXFR | RecordType::IXFR)
        {
            // No other classes (version.bind and friends) and no zone transfers: the zone's
            // names are other tenants' endpoints.
            header.set_response_code(ResponseCode::Refused);
            return self
                .send(request, response, header, vec![], vec![], edns, Some(qtype))
                .await;
        }
        let zone = self.zone.load_full();
        match zone.lookup(&self.scope, query.name(), qtype) {
            Lookup::OutOfZone => match &self.upstream {
                Some(resolver) => {
                    let (answers, authority) = self.forward(resolver, query, &mut header).await;
                    self.send(
                        request,
                        response,
                        header,
                        answers.iter().collect(),
                        authority.iter().collect(),
                        edns,
                        Some(qtype),
                    )
                    .await
                }
                None => {
                    header.set_response_code(ResponseCode::Refused);
                    self.send(request, response, header, vec![], vec![], edns, Some(qtype))
                        .await
                }
            },
            Lookup::Answer(records) => {
                header.set_authoritative(true);
                self.send(
                    request,
                    response,
                    header,
                    records,
                    vec![],
                    edns,
                    Some(qtype),
                )
                .await
            }
            Lookup::NameServer => {
                header.set_authoritative(true);
                match ns_address(zone.ns_name(), self.addr, qtype) {
                    Some(r) => {
                        self.send(
                            request,
                            response,
                            header,
                            vec![&r],
                            vec![],
                            edns,
                            Some(qtype),
                        )
                        .await
                    }
                    None => {
                        let soa = vec![zone.soa()];
                        self.send(request, response, header, vec![], soa, edns, Some(qtype))
                            .await
                    }
                }
            }
            negative @ (Lookup::NoData | Lookup::NxDomain) => {
                header.set_authoritative(true);
                if matches!(negative, Lookup::NxDomain) {
                    header.set_response_code(ResponseCode::NXDomain);
                }
                let soa = vec![zone.soa()];
                self.send(request, response, header, vec![], soa, edns, Some(qtype))
                    .await
            }
        }
    }
}
