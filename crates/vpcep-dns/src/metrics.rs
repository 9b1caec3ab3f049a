//! `vpcep_dns_queries_total{type, rcode}`: every answered question by its type and response
//! code. No label carries a name or an address (the API's `/metrics` is open and names no
//! tenant); unusual types and codes are counted as `other`.

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use metrics::Counter;

const TYPES: [(RecordType, &str); 10] = [
    (RecordType::A, "A"),
    (RecordType::AAAA, "AAAA"),
    (RecordType::SOA, "SOA"),
    (RecordType::NS, "NS"),
    (RecordType::ANY, "ANY"),
    (RecordType::CNAME, "CNAME"),
    (RecordType::MX, "MX"),
    (RecordType::TXT, "TXT"),
    (RecordType::PTR, "PTR"),
    (RecordType::SRV, "SRV"),
];
/// Label of a request without a usable question (FORMERR, NOTIMP, BADVERS).
const NO_QUESTION: &str = "none";
const OTHER: &str = "other";

const RCODES: [(ResponseCode, &str); 7] = [
    (ResponseCode::NoError, "NOERROR"),
    (ResponseCode::NXDomain, "NXDOMAIN"),
    (ResponseCode::Refused, "REFUSED"),
    (ResponseCode::ServFail, "SERVFAIL"),
    (ResponseCode::FormErr, "FORMERR"),
    (ResponseCode::NotImp, "NOTIMP"),
    (ResponseCode::BADVERS, "BADVERS"),
];

/// The counters, registered once (with the recorder in place) so that answering a query
/// costs one increment.
pub struct QueryMetrics {
    /// `(TYPES.len() + 2) x (RCODES.len() + 1)` counters, row-major.
    counters: Vec<Counter>,
}

impl Default for QueryMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl QueryMetrics {
    /// Registers every counter with the process's recorder.
    pub fn new() -> Self {
        let types = TYPES.iter().map(|(_, l)| *l).chain([OTHER, NO_QUESTION]);
        let mut counters = Vec::new();
        for t in types {
            for r in RCODES.iter().map(|(_, l)| *l).chain([OTHER]) {
                counters
                    .push(metrics::counter!("vpcep_dns_queries_total", "type" => t, "rcode" => r));
            }
        }
        QueryMetrics { counters }
    }

    /// Counts one answer.
    pub fn count(&self, qtype: Option<RecordType>, rcode: ResponseCode) {
        let t = match qtype {
            None => TYPES.len() + 1,
            Some(q) => TYPES
                .iter()
                .position(|(t, _)| *t == q)
                .unwrap_or(TYPES.len()),
        };
        let r = RCODES
            .iter()
            .position(|(c, _)| *c == rcode)
            .unwrap_or(RCODES.len());
        if let Some(c) = self.counters.get(t * (RCODES.len() + 1) + r) {
            c.increment(1);
        }
    }
}
