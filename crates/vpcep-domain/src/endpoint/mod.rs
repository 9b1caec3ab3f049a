//! VPC endpoints (the consumer side) and connections (the owner's view of them): validation,
//! the status machine, and the rules that need the target service.
//!
//! Status machine: create → `creating`; the reconciler moves it to `pendingAcceptance` when the
//! service requires approval, else to `accepted`. The owner's `receive` moves `pendingAcceptance`
//! (or `rejected`) to `accepted`, `reject` moves `pendingAcceptance` or `accepted` to `rejected`.
//! Delete → `deleting` → gone. Nothing else is ever reported, because clients fail on any status
//! outside these (`client-expectations.md` §1.2).

pub mod wire;

use crate::endpoint::wire::CreateEndpointRequest;
use crate::ids::parse_uuid;
use crate::service::parse_description;
use crate::service::{EndpointService, ResourceError, ServiceStatus, ServiceType};
use crate::tag::parse_tags;
use crate::tag::Tag;
use crate::time::Millis;
use crate::{str_enum, ApiError, ApiResult, ErrorCode};
use ipnet::Ipv4Net;
use serde_json::Value;
use std::net::Ipv4Addr;
use uuid::Uuid;

/// Most whitelist entries an endpoint may hold.
pub const MAX_WHITELIST: usize = 20;
/// Most statements in a `policy_statement`.
pub const MAX_POLICY_STATEMENTS: usize = 10;
/// Most route tables a gateway endpoint binds (`routetables`; vpcep's cap, the API documents
/// none).
pub const MAX_ROUTETABLES: usize = 20;
/// Most connections one request describes (`update_endpoint_connections_desc` `connections`;
/// vpcep's cap, as for permissions).
pub const MAX_CONNECTIONS_PER_REQUEST: usize = 500;

/// Validates `routetables`: at most [`MAX_ROUTETABLES`] ids (counted first, EndPoint.0016), each
/// a UUID (EndPoint.1019); a repeated id counts once, in first-seen order.
pub fn parse_routetables(tables: &[String]) -> ApiResult<Vec<String>> {
    if tables.len() > MAX_ROUTETABLES {
        return Err(err(
            ErrorCode::BatchTooLarge,
            format!(
                "routetables has {} entries; at most {MAX_ROUTETABLES} are allowed",
                tables.len()
            ),
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(tables.len());
    for t in tables {
        let id = parse_uuid("routetables", t, ErrorCode::InvalidRouteTable)?.to_string();
        if !out.contains(&id) {
            out.push(id);
        }
    }
    Ok(out)
}

/// Refuses an `update_endpoint_connections_desc` request describing more than
/// [`MAX_CONNECTIONS_PER_REQUEST`] connections (EndPoint.0016), before any entry is read.
pub fn check_connection_batch(n: usize) -> ApiResult<()> {
    if n > MAX_CONNECTIONS_PER_REQUEST {
        return Err(err(
            ErrorCode::BatchTooLarge,
            format!("connections has {n} entries; at most {MAX_CONNECTIONS_PER_REQUEST} are allowed per request"),
        ));
    }
    Ok(())
}

str_enum! {
    /// Endpoint (and connection) `status`.
    pub enum EndpointStatus {
        Creating = "creating",
        PendingAcceptance = "pendingAcceptance",
        Accepted = "accepted",
        Rejected = "rejected",
        Failed = "failed",
        Deleting = "deleting",
    }
}

str_enum! {
    /// `action` of the connections action (`accept_or_reject_endpoint`).
    pub enum ConnectionAction { Receive = "receive", Reject = "reject" }
}

/// A VPC endpoint as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    pub id: Uuid,
    /// The consumer's project and account.
    pub project_id: String,
    pub domain_id: String,
    /// The target service, its full name (read with the endpoint) and type.
    pub service_id: Uuid,
    pub service_name: String,
    pub service_type: ServiceType,
    pub vpc_id: Uuid,
    /// Interface endpoints only.
    pub subnet_id: Option<Uuid>,
    /// The endpoint's address in its subnet (interface endpoints).
    pub ip: Option<Ipv4Addr>,
    /// Whether the endpoint was ever accepted (then `ip` is shown, also after a reject).
    pub ever_accepted: bool,
    /// The owner accepted the connection (with a data plane it stays `creating` until realized).
    pub approved: bool,
    pub status: EndpointStatus,
    /// The packet id carried to backends (PROXY protocol TLV).
    pub marker_id: u32,
    pub enable_dns: bool,
    pub dns_names: Vec<String>,
    pub whitelist: Vec<String>,
    pub enable_whitelist: bool,
    /// Gateway endpoints only.
    pub routetables: Vec<String>,
    /// The consumer's description.
    pub description: String,
    /// The owner's description of the connection (`update_endpoint_connections_desc`).
    pub connection_description: String,
    pub policy_statement: Option<Value>,
    pub policy_document: Option<Value>,
    pub tags: Vec<Tag>,
    /// `default`, or `profession` after the v2 upgrade.
    pub specification_name: String,
    pub ip_version: String,
    pub ipv6_address: Option<String>,
    pub error: Option<ResourceError>,
    pub created_at: Millis,
    pub updated_at: Millis,
}

impl Endpoint {
    /// Whether the answer shows `ip`: once the endpoint was accepted (also after a reject), and
    /// while it is `failed` (the data plane could not serve that address: the user needs it).
    pub fn shows_ip(&self) -> bool {
        self.ever_accepted || self.status == EndpointStatus::Failed
    }
}

/// A validated create request (`create_endpoint`).
#[derive(Debug, Clone, PartialEq)]
pub struct NewEndpoint {
    pub service_id: Uuid,
    pub vpc_id: Uuid,
    pub subnet_id: Option<Uuid>,
    pub port_ip: Option<Ipv4Addr>,
    pub enable_dns: bool,
    pub whitelist: Vec<String>,
    pub enable_whitelist: bool,
    pub routetables: Option<Vec<String>>,
    pub description: String,
    pub policy_statement: Option<Value>,
    pub policy_document: Option<Value>,
    pub tags: Vec<Tag>,
    pub ip_version: String,
    pub ipv6_address: Option<String>,
}

fn err(code: ErrorCode, msg: impl Into<String>) -> ApiError {
    ApiError::new(code, msg)
}

/// Validates `whitelist`: at most 20 IPv4 addresses or CIDRs, normalized (`10.0.0.1` stays an
/// address, `10.0.0.0/24` a network; host bits are refused).
pub fn parse_whitelist(entries: &[String]) -> ApiResult<Vec<String>> {
    if entries.len() > MAX_WHITELIST {
        return Err(err(
            ErrorCode::WhitelistTooLong,
            format!(
                "whitelist has {} entries; at most {MAX_WHITELIST} are allowed",
                entries.len()
            ),
        ));
    }
    entries
        .iter()
        .map(|e| {
            if let Ok(a) = e.parse::<Ipv4Addr>() {
                return Ok(a.to_string());
            }
            match e.parse::<Ipv4Net>() {
                Ok(n) if n.trunc() == n => Ok(n.to_string()),
                _ => Err(err(ErrorCode::InvalidWhitelist, format!("Invalid whitelist entry {e:?}: expected an IPv4 address or CIDR such as 10.0.0.0/24"))),
            }
        })
        .collect()
}

/// Validates a `policy_statement`: at most 10 objects with `Effect` `Allow`|`Deny` and non-empty
/// string lists `Action` and `Resource` (`Condition`, `Sid` optional).
pub fn parse_policy_statement(v: &Value) -> ApiResult<Value> {
    let bad = |m: String| {
        err(
            ErrorCode::InvalidPolicy,
            format!("The VPC endpoint policy is invalid: {m}"),
        )
    };
    let list = v
        .as_array()
        .ok_or_else(|| bad("policy_statement must be a list".into()))?;
    if list.len() > MAX_POLICY_STATEMENTS {
        return Err(bad(format!(
            "at most {MAX_POLICY_STATEMENTS} statements are allowed"
        )));
    }
    for (i, st) in list.iter().enumerate() {
        let o = st
            .as_object()
            .ok_or_else(|| bad(format!("policy_statement[{i}] must be an object")))?;
        match o.get("Effect").and_then(Value::as_str) {
            Some("Allow") | Some("Deny") => {}
            _ => {
                return Err(bad(format!(
                    "policy_statement[{i}].Effect must be Allow or Deny"
                )))
            }
        }
        for key in ["Action", "Resource"] {
            let ok = o.get(key).and_then(Value::as_array).is_some_and(|a| {
                !a.is_empty() && a.iter().all(|x| x.as_str().is_some_and(|s| !s.is_empty()))
            });
            if !ok {
                return Err(bad(format!(
                    "policy_statement[{i}].{key} must be a non-empty list of strings"
                )));
            }
        }
        if o.get("Condition").is_some_and(|c| !c.is_object()) {
            return Err(bad(format!(
                "policy_statement[{i}].Condition must be an object"
            )));
        }
    }
    Ok(v.clone())
}

/// Validates a `policy_document`: a JSON object.
pub fn parse_policy_document(v: &Value) -> ApiResult<Value> {
    if v.is_object() {
        Ok(v.clone())
    } else {
        Err(err(
            ErrorCode::InvalidPolicy,
            "The VPC endpoint policy is invalid: policy_document must be a JSON object",
        ))
    }
}

/// Validates a create request (`create_endpoint`) on its own; [`check_service_for_endpoint`] adds
/// the rules that need the target service.
pub fn parse_create_endpoint(r: &CreateEndpointRequest) -> ApiResult<NewEndpoint> {
    let service_id = match r.endpoint_service_id.as_deref() {
        None | Some("") => {
            return Err(err(
                ErrorCode::Parameter,
                "endpoint_service_id is mandatory",
            ))
        }
        Some(s) => parse_uuid("endpoint_service_id", s, ErrorCode::ServiceRefNotFound)?,
    };
    let vpc_id = match r.vpc_id.as_deref() {
        None | Some("") => {
            return Err(err(
                ErrorCode::VpcIdEmpty,
                "The input parameter vpc_id is empty",
            ))
        }
        Some(s) => parse_uuid("vpc_id", s, ErrorCode::InvalidVpcId)?,
    };
    let subnet_id = match r.subnet_id.as_deref() {
        None | Some("") => None,
        Some(s) => Some(parse_uuid("subnet_id", s, ErrorCode::InvalidSubnetId)?),
    };
    let port_ip = r
        .port_ip
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<Ipv4Addr>().map_err(|_| {
                err(
                    ErrorCode::InvalidPortIp,
                    format!("Invalid port_ip {s:?}: not an IPv4 address"),
                )
            })
        })
        .transpose()?;
    let ip_version = match r.ip_version.as_deref() {
        None | Some("ipv4") => "ipv4".to_string(),
        Some("dualstack") => "dualstack".to_string(),
        Some(v) => {
            return Err(ApiError::param(format!(
                "Invalid ip_version {v:?}; allowed values are ipv4, dualstack"
            )))
        }
    };
    Ok(NewEndpoint {
        service_id,
        vpc_id,
        subnet_id,
        port_ip,
        enable_dns: r.enable_dns.unwrap_or(false),
        whitelist: parse_whitelist(r.whitelist.as_deref().unwrap_or_default())?,
        enable_whitelist: r.enable_whitelist.unwrap_or(false),
        routetables: r
            .routetables
            .as_deref()
            .map(parse_routetables)
            .transpose()?,
        description: parse_description("description", r.description.as_deref().unwrap_or(""))?,
        policy_statement: r
            .policy_statement
            .as_ref()
            .map(parse_policy_statement)
            .transpose()?,
        policy_document: r
            .policy_document
            .as_ref()
            .map(parse_policy_document)
            .transpose()?,
        tags: parse_tags(r.tags.as_deref())?,
        ip_version,
        ipv6_address: r.ipv6_address.clone(),
    })
}

/// The rules of an endpoint create that depend on its target service: the service is
/// available, the caller may connect (`allowed`, from the permission rules), an interface
/// endpoint names a subnet, and policies go only to services that allow them.
pub fn check_service_for_endpoint(
    new: &NewEndpoint,
    svc: &EndpointService,
    allowed: bool,
) -> ApiResult<()> {
    if !allowed {
        return Err(err(
            ErrorCode::NoConnectPermission,
            format!("You have no permission to connect to the VPC endpoint service {}; ask its owner to add your account to its permissions", svc.id),
        ));
    }
    if svc.status != ServiceStatus::Available {
        return Err(err(
            ErrorCode::ServiceUnavailable,
            format!(
                "The endpoint service {} is {}, not available",
                svc.id, svc.status
            ),
        ));
    }
    match svc.service_type {
        ServiceType::Interface if new.subnet_id.is_none() => {
            return Err(err(
                ErrorCode::SubnetIdEmpty,
                "The input parameter subnet_id is empty; interface endpoints need a subnet",
            ))
        }
        ServiceType::Interface if new.policy_statement.is_some() => {
            return Err(err(
                ErrorCode::InvalidPolicy,
                "policy_statement applies to gateway endpoints; use policy_document",
            ))
        }
        ServiceType::Gateway if new.policy_document.is_some() => {
            return Err(err(
                ErrorCode::InvalidPolicy,
                "policy_document applies to interface endpoints; use policy_statement",
            ))
        }
        _ => {}
    }
    if (new.policy_statement.is_some() || new.policy_document.is_some()) && !svc.enable_policy {
        return Err(err(
            ErrorCode::InvalidPolicy,
            format!(
                "The endpoint service {} does not allow custom policies (enable_policy is false)",
                svc.id
            ),
        ));
    }
    Ok(())
}

/// The policy a gateway endpoint gets when none is given: full access.
pub fn default_policy_statement() -> Value {
    serde_json::json!([{"Effect": "Allow", "Action": ["*"], "Resource": ["*"]}])
}

impl EndpointStatus {
    /// Where `creating` settles: `pendingAcceptance` with approval, else `accepted`.
    pub fn settled(approval_enabled: bool) -> EndpointStatus {
        if approval_enabled {
            EndpointStatus::PendingAcceptance
        } else {
            EndpointStatus::Accepted
        }
    }

    /// Whether the owner counts this connection in `connection_count` (a `failed` endpoint is
    /// one the data plane could not serve yet: still wanted, and served once it can).
    pub fn is_connected(self) -> bool {
        matches!(
            self,
            EndpointStatus::Creating
                | EndpointStatus::PendingAcceptance
                | EndpointStatus::Accepted
                | EndpointStatus::Failed
        )
    }

    /// The consumer may change whitelist, policy or route tables (not while failed or deleting).
    pub fn ensure_modifiable(self) -> ApiResult<()> {
        match self {
            EndpointStatus::Failed => Err(err(
                ErrorCode::EndpointFailed,
                "The VPC endpoint in the failed status cannot be modified",
            )),
            EndpointStatus::Deleting => Err(err(
                ErrorCode::EndpointDeleting,
                "The endpoint is being deleted",
            )),
            _ => Ok(()),
        }
    }

    /// The owner's accept (`receive`) or `reject` of a connection in this status.
    pub fn apply(self, action: ConnectionAction) -> ApiResult<EndpointStatus> {
        use ConnectionAction::*;
        use EndpointStatus::*;
        match (self, action) {
            (PendingAcceptance | Rejected, Receive) => Ok(Accepted),
            // The owner may revoke a connection the data plane could not serve yet (`failed`
            // turns `accepted` by itself once it can).
            (PendingAcceptance | Accepted | Failed, Reject) => Ok(Rejected),
            (Accepted, Receive) => Err(err(
                ErrorCode::EndpointConnected,
                "The endpoint has been connected to the endpoint service already",
            )),
            (Rejected, Reject) => Err(err(
                ErrorCode::Parameter,
                "The connection is already rejected",
            )),
            (Creating, _) => Err(err(
                ErrorCode::EndpointCreating,
                "The endpoint is being created; it is not pending acceptance yet",
            )),
            (Deleting, _) => Err(err(
                ErrorCode::EndpointDeleting,
                "The endpoint is being deleted",
            )),
            (Failed, _) => Err(err(
                ErrorCode::EndpointFailed,
                "The endpoint is in the failed status",
            )),
        }
    }
}

impl Endpoint {
    /// Sets the status, remembering an acceptance (so the address stays visible).
    pub fn set_status(&mut self, status: EndpointStatus) {
        self.status = status;
        if status == EndpointStatus::Accepted {
            self.ever_accepted = true;
        }
    }

    /// The owner's decision on this connection. An acceptance takes effect at once without a
    /// data plane; with one (`via_dataplane`) the endpoint waits in `creating` until agents
    /// realize it, then the reconciler makes it `accepted`.
    pub fn decide(&mut self, action: ConnectionAction, via_dataplane: bool) -> ApiResult<()> {
        match self.status.apply(action)? {
            EndpointStatus::Accepted => {
                self.approved = true;
                if via_dataplane {
                    self.status = EndpointStatus::Creating;
                } else {
                    self.set_status(EndpointStatus::Accepted);
                }
            }
            other => {
                self.approved = false;
                self.set_status(other);
            }
        }
        Ok(())
    }

    /// Marks the endpoint for deletion; deleting twice is EndPoint.2018.
    pub fn begin_delete(&mut self) -> ApiResult<()> {
        if self.status == EndpointStatus::Deleting {
            return Err(err(
                ErrorCode::EndpointDeleting,
                "The endpoint is being deleted",
            ));
        }
        self.status = EndpointStatus::Deleting;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoint::wire::CreateEndpointRequest;

    fn req() -> CreateEndpointRequest {
        CreateEndpointRequest {
            endpoint_service_id: Some(Uuid::new_v4().to_string()),
            vpc_id: Some(Uuid::new_v4().to_string()),
            subnet_id: Some(Uuid::new_v4().to_string()),
            ..Default::default()
        }
    }

    #[test]
    fn create_needs_service_and_vpc_and_valid_fields() {
        let ok = parse_create_endpoint(&req()).unwrap();
        assert!(!ok.enable_dns && !ok.enable_whitelist && ok.whitelist.is_empty());
        let code = |r: CreateEndpointRequest| parse_create_endpoint(&r).unwrap_err().code;
        assert_eq!(
            code(CreateEndpointRequest {
                endpoint_service_id: None,
                ..req()
            }),
            ErrorCode::Parameter
        );
        assert_eq!(
            code(CreateEndpointRequest {
                vpc_id: None,
                ..req()
            }),
            ErrorCode::VpcIdEmpty
        );
        assert_eq!(
            code(CreateEndpointRequest {
                vpc_id: Some("x".into()),
                ..req()
            }),
            ErrorCode::InvalidVpcId
        );
        assert_eq!(
            code(CreateEndpointRequest {
                subnet_id: Some("x".into()),
                ..req()
            }),
            ErrorCode::InvalidSubnetId
        );
        assert_eq!(
            code(CreateEndpointRequest {
                port_ip: Some("1.2.3".into()),
                ..req()
            }),
            ErrorCode::InvalidPortIp
        );
        assert_eq!(
            code(CreateEndpointRequest {
                whitelist: Some(vec!["10.0.0.1/24".into()]),
                ..req()
            }),
            ErrorCode::InvalidWhitelist
        );
        assert_eq!(
            code(CreateEndpointRequest {
                whitelist: Some((0..21).map(|i| format!("10.0.0.{i}")).collect()),
                ..req()
            }),
            ErrorCode::WhitelistTooLong
        );
        assert_eq!(
            code(CreateEndpointRequest {
                policy_statement: Some(
                    serde_json::json!([{"Effect": "Maybe", "Action": ["*"], "Resource": ["*"]}])
                ),
                ..req()
            }),
            ErrorCode::InvalidPolicy
        );
        assert_eq!(
            code(CreateEndpointRequest {
                policy_document: Some(serde_json::json!([1])),
                ..req()
            }),
            ErrorCode::InvalidPolicy
        );
        assert_eq!(
            code(CreateEndpointRequest {
                ip_version: Some("ipv6".into()),
                ..req()
            }),
            ErrorCode::Parameter
        );
        let wl = parse_create_endpoint(&CreateEndpointRequest {
            whitelist: Some(vec!["10.0.0.0/24".into(), "192.168.1.7".into()]),
            ..req()
        })
        .unwrap();
        assert_eq!(wl.whitelist, vec!["10.0.0.0/24", "192.168.1.7"]);
    }

    #[test]
    fn approval_status_machine() {
        use ConnectionAction::*;
        use EndpointStatus::*;
        assert_eq!(EndpointStatus::settled(true), PendingAcceptance);
        assert_eq!(EndpointStatus::settled(false), Accepted);
        assert_eq!(PendingAcceptance.apply(Receive).unwrap(), Accepted);
        assert_eq!(PendingAcceptance.apply(Reject).unwrap(), Rejected);
        assert_eq!(Accepted.apply(Reject).unwrap(), Rejected);
        assert_eq!(
            Failed.apply(Reject).unwrap(),
            Rejected,
            "the owner can always revoke"
        );
        assert_eq!(
            Failed.apply(Receive).unwrap_err().code,
            ErrorCode::EndpointFailed
        );
        assert_eq!(Rejected.apply(Receive).unwrap(), Accepted);
        assert_eq!(
            Accepted.apply(Receive).unwrap_err().code,
            ErrorCode::EndpointConnected
        );
        assert_eq!(
            Creating.apply(Receive).unwrap_err().code,
            ErrorCode::EndpointCreating
        );
        assert_eq!(
            Deleting.apply(Reject).unwrap_err().code,
            ErrorCode::EndpointDeleting
        );
        assert!(
            Creating.is_connected() && PendingAcceptance.is_connected() && Accepted.is_connected()
        );
        assert!(!Rejected.is_connected() && !Deleting.is_connected());
    }
}
