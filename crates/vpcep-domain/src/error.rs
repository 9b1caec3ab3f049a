//! The API's error codes and the one error type every layer returns to the HTTP edge.
//!
//! Codes and statuses follow `shared/reference/vpcep-api.md` ("Errors") and the long table in
//! `vpcep-api-spec.md` §5.2. Where a specific code exists we use it; otherwise `EndPoint.0002`
//! with a message that names the field.

use serde::{Deserialize, Serialize};
use std::fmt;
use utoipa::ToSchema;

/// One documented error condition: its wire code and HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// 500 EndPoint.0001: internal error; the message never carries internals.
    System,
    /// 400 EndPoint.0002: general parameter error.
    Parameter,
    /// 401 EndPoint.0003: missing, malformed, stale or wrong signature, or unknown AK.
    Unauthenticated,
    /// 403 EndPoint.0004: authenticated, but not allowed (project not owned, operator-only action).
    Forbidden,
    /// 404 EndPoint.0005: the resource does not exist (or belongs to another tenant).
    NotFound,
    /// 400 EndPoint.0006: invalid `limit`.
    InvalidLimit,
    /// 400 EndPoint.0007: invalid `action`.
    InvalidAction,
    /// 400 EndPoint.0010: invalid `offset`.
    InvalidOffset,
    /// 400 EndPoint.0014: the `{project_id}` in the path is not a project id.
    InvalidProjectId,
    /// 400 EndPoint.0016: too many items in one batch request.
    BatchTooLarge,
    /// 400 EndPoint.0017: invalid `sort_key`.
    InvalidSortKey,
    /// 400 EndPoint.0018: invalid `sort_dir`.
    InvalidSortDir,
    /// 400 EndPoint.0019: invalid `status` filter.
    InvalidStatus,
    /// 400 EndPoint.0020: invalid VPC id.
    InvalidVpcId,
    /// 400 EndPoint.0021: invalid `marker_id`.
    InvalidMarkerId,
    /// 400 EndPoint.0023: invalid `subnet_id`.
    InvalidSubnetId,
    /// 400 EndPoint.1003: invalid service name.
    InvalidServiceName,
    /// 400 EndPoint.1004: invalid request (malformed body).
    InvalidRequest,
    /// 400 Endpoint.1018: quota exceeded (the docs spell it with a lower-case p).
    QuotaExceeded,
    /// 400 EndPoint.1019: invalid route table id.
    InvalidRouteTable,
    /// 400 EndPoint.2001: the VPC does not exist.
    VpcNotFound,
    /// 400 EndPoint.2003: a referenced endpoint service does not exist.
    ServiceRefNotFound,
    /// 400 EndPoint.2004: the endpoint service is unavailable.
    ServiceUnavailable,
    /// 404 EndPoint.2006: the endpoint does not exist.
    EndpointNotFound,
    /// 400 EndPoint.2010: `subnet_id` is empty.
    SubnetIdEmpty,
    /// 400 EndPoint.2011: `vpc_id` is empty.
    VpcIdEmpty,
    /// 400 EndPoint.2012: no permission to connect to the service.
    NoConnectPermission,
    /// 400 EndPoint.2013: the endpoint does not belong to the service.
    EndpointNotOfService,
    /// 400 EndPoint.2014: the endpoint is already connected (accepted).
    EndpointConnected,
    /// 400 EndPoint.2018: the endpoint is being deleted.
    EndpointDeleting,
    /// 400 EndPoint.2019: the endpoint is being created.
    EndpointCreating,
    /// 400 EndPoint.2031: only one endpoint per accept/reject call.
    OnlyOneEndpoint,
    /// 400 EndPoint.2037: the subnet does not belong to the VPC.
    SubnetNotInVpc,
    /// 400 EndPoint.2039: the route table is used by another endpoint.
    RouteTableInUse,
    /// 400 EndPoint.2040: no route table bound (interface endpoint).
    NoRouteTable,
    /// 400 EndPoint.2041: invalid `port_ip`.
    InvalidPortIp,
    /// 400 EndPoint.2042: `port_ip` is in use.
    PortIpInUse,
    /// 400 EndPoint.2043: `port_ip` is not in the subnet.
    PortIpNotInSubnet,
    /// 400 EndPoint.2044: invalid whitelist entry.
    InvalidWhitelist,
    /// 400 EndPoint.2045: too many whitelist records.
    WhitelistTooLong,
    /// 400 EndPoint.2047: a failed endpoint cannot be modified.
    EndpointFailed,
    /// 400 EndPoint.2048: invalid endpoint policy.
    InvalidPolicy,
    /// 400 EndPoint.2049: the endpoint has no policy.
    NoPolicy,
    /// 400 EndPoint.3002: invalid permission string.
    InvalidPermission,
    /// 400 EndPoint.3003: invalid port id.
    InvalidPortId,
    /// 400 EndPoint.3006: the endpoint service is in use.
    ServiceInUse,
    /// 400 EndPoint.3008: the port does not exist.
    PortNotFound,
    /// 400 EndPoint.3009: invalid CIDR.
    InvalidCidr,
    /// 400 EndPoint.3010: invalid IP address.
    InvalidIp,
    /// 400 EndPoint.3021: invalid `server_type`.
    InvalidServerType,
    /// 400 EndPoint.3035: invalid action.
    InvalidPermissionAction,
    /// 400 EndPoint.3036: the permission list is empty.
    EmptyPermissions,
    /// 400 EndPoint.3042: the port does not belong to the VPC.
    PortNotInVpc,
    /// 400 EndPoint.3043: invalid service port.
    InvalidServicePort,
    /// 400 EndPoint.3044: the ports conflict with an existing endpoint service.
    PortConflict,
    /// 400 EndPoint.3045: not modifiable in the service's current state.
    ServiceStateConflict,
    /// 400 EndPoint.3046: the IP address conflicts with an existing endpoint service (another
    /// VPC holds the backend address in the data plane's address space).
    IpConflictsWithService,
    /// 400 EndPoint.3049: too many permission records.
    PermissionsTooMany,
    /// 400 EndPoint.3066: a tag is empty.
    TagEmpty,
    /// 400 EndPoint.3067: duplicate tag key.
    TagKeyDuplicate,
    /// 400 EndPoint.3068: tag key or value has invalid characters.
    TagInvalid,
    /// 400 EndPoint.3069: too many tags.
    TagTooMany,
    /// 400 EndPoint.3070: invalid resource type in a tag path.
    InvalidResourceType,
    /// 400 EndPoint.3072: tag key length.
    TagKeySize,
    /// 400 EndPoint.3073: tag value length.
    TagValueSize,
    /// 400 EndPoint.3074: too many port mappings.
    TooManyPorts,
    /// 400 EndPoint.3075: invalid protocol.
    InvalidProtocol,
    /// 400 EndPoint.3076: invalid service name.
    InvalidServiceNameFormat,
    /// 400 VPC.0101: invalid VPC parameter.
    VpcParam,
    /// 404 VPC.0003: the VPC does not exist.
    VpcMissing,
    /// 400 VPC.0115: a VPC of this name exists in the project.
    VpcNameExists,
    /// 409 VPC.0109: the VPC still has subnets.
    VpcInUse,
    /// 400 VPC.0201: invalid subnet parameter.
    SubnetParam,
    /// 404 VPC.0202: the subnet does not exist.
    SubnetMissing,
    /// 400 VPC.0204: the subnet CIDR conflicts with the VPC or another subnet.
    SubnetCidrConflict,
    /// 409 VPC.0211: the subnet still has ports or endpoint addresses.
    SubnetInUse,
    /// 400 VPC.0701: invalid port parameter.
    PortParam,
    /// 404 VPC.0702: the port does not exist.
    PortMissing,
    /// 409 VPC.0703: the IP address is already used in the subnet, or none is left.
    IpInUse,
    /// 409 VPC.0710: the port is used by an endpoint service.
    PortInUse,
    /// 404 APIG.0101: no such API (unknown route or method).
    NoSuchApi,
    /// 405 APIG.0101: the route exists, but not with this method.
    MethodNotAllowed,
    /// 409 EndPoint.0002-like conflict for network deletions (resource in use).
    InUse,
    /// 414 APIG.0201: the request URI is too long.
    UriTooLong,
    /// 431 APIG.0201: the request headers are too large.
    HeadersTooLarge,
    /// 504 EndPoint.0013: the request timed out (e.g. a body sent too slowly).
    RequestTimeout,
    /// 413 APIG.0201: request body too large.
    PayloadTooLarge,
    /// 429 EndPoint.0022: too many requests.
    TooManyRequests,
    /// 503 EndPoint.0001: the store is temporarily unavailable; retry.
    Unavailable,
    /// 409 VPC.0114: the project holds its quota of VPCs, subnets or ports. The VPC API documents
    /// VPC.0114 ("Quota exceeded for resources: ['router']") for VPCs and no code for subnets or
    /// ports, so all three answer it, the message naming the resource as Neutron does.
    NetworkQuotaExceeded,
    /// 507 EndPoint.0507: the database's disk is full; nothing was written. vpcep's own code
    /// (the API has none for this): writes succeed again once space is freed, without a restart.
    StorageFull,
    /// 503 EndPoint.0503: the database cannot be written or read (an I/O error, a read-only or
    /// removed file, a database file or WAL replaced under the running server). vpcep's own
    /// code; nothing was written, and `/health` fails while it lasts.
    StorageFault,
}

impl ErrorCode {
    /// The `error_code` string on the wire.
    pub fn code(self) -> &'static str {
        use ErrorCode::*;
        match self {
            System | Unavailable => "EndPoint.0001",
            Parameter | InUse => "EndPoint.0002",
            Unauthenticated => "EndPoint.0003",
            Forbidden => "EndPoint.0004",
            NotFound => "EndPoint.0005",
            InvalidLimit => "EndPoint.0006",
            InvalidAction => "EndPoint.0007",
            InvalidOffset => "EndPoint.0010",
            InvalidProjectId => "EndPoint.0014",
            BatchTooLarge => "EndPoint.0016",
            InvalidSortKey => "EndPoint.0017",
            InvalidSortDir => "EndPoint.0018",
            InvalidStatus => "EndPoint.0019",
            InvalidVpcId => "EndPoint.0020",
            InvalidMarkerId => "EndPoint.0021",
            TooManyRequests => "EndPoint.0022",
            InvalidSubnetId => "EndPoint.0023",
            InvalidServiceName => "EndPoint.1003",
            InvalidRequest => "EndPoint.1004",
            QuotaExceeded => "Endpoint.1018",
            InvalidRouteTable => "EndPoint.1019",
            VpcNotFound => "EndPoint.2001",
            ServiceRefNotFound => "EndPoint.2003",
            ServiceUnavailable => "EndPoint.2004",
            EndpointNotFound => "EndPoint.2006",
            SubnetIdEmpty => "EndPoint.2010",
            VpcIdEmpty => "EndPoint.2011",
            NoConnectPermission => "EndPoint.2012",
            EndpointNotOfService => "EndPoint.2013",
            EndpointConnected => "EndPoint.2014",
            EndpointDeleting => "EndPoint.2018",
            EndpointCreating => "EndPoint.2019",
            OnlyOneEndpoint => "EndPoint.2031",
            SubnetNotInVpc => "EndPoint.2037",
            RouteTableInUse => "EndPoint.2039",
            NoRouteTable => "EndPoint.2040",
            InvalidPortIp => "EndPoint.2041",
            PortIpInUse => "EndPoint.2042",
            PortIpNotInSubnet => "EndPoint.2043",
            InvalidWhitelist => "EndPoint.2044",
            WhitelistTooLong => "EndPoint.2045",
            EndpointFailed => "EndPoint.2047",
            InvalidPolicy => "EndPoint.2048",
            NoPolicy => "EndPoint.2049",
            InvalidPermission => "EndPoint.3002",
            InvalidPortId => "EndPoint.3003",
            ServiceInUse => "EndPoint.3006",
            PortNotFound => "EndPoint.3008",
            InvalidCidr => "EndPoint.3009",
            InvalidIp => "EndPoint.3010",
            InvalidServerType => "EndPoint.3021",
            InvalidPermissionAction => "EndPoint.3035",
            EmptyPermissions => "EndPoint.3036",
            PortNotInVpc => "EndPoint.3042",
            InvalidServicePort => "EndPoint.3043",
            PortConflict => "EndPoint.3044",
            ServiceStateConflict => "EndPoint.3045",
            IpConflictsWithService => "EndPoint.3046",
            PermissionsTooMany => "EndPoint.3049",
            TagEmpty => "EndPoint.3066",
            TagKeyDuplicate => "EndPoint.3067",
            TagInvalid => "EndPoint.3068",
            TagTooMany => "EndPoint.3069",
            InvalidResourceType => "EndPoint.3070",
            TagKeySize => "EndPoint.3072",
            TagValueSize => "EndPoint.3073",
            TooManyPorts => "EndPoint.3074",
            InvalidProtocol => "EndPoint.3075",
            InvalidServiceNameFormat => "EndPoint.3076",
            VpcParam => "VPC.0101",
            VpcMissing => "VPC.0003",
            VpcNameExists => "VPC.0115",
            VpcInUse => "VPC.0109",
            SubnetParam => "VPC.0201",
            SubnetMissing => "VPC.0202",
            SubnetCidrConflict => "VPC.0204",
            SubnetInUse => "VPC.0211",
            PortParam => "VPC.0701",
            PortMissing => "VPC.0702",
            IpInUse => "VPC.0703",
            PortInUse => "VPC.0710",
            NoSuchApi | MethodNotAllowed => "APIG.0101",
            PayloadTooLarge | UriTooLong | HeadersTooLarge => "APIG.0201",
            RequestTimeout => "EndPoint.0013",
            NetworkQuotaExceeded => "VPC.0114",
            StorageFull => "EndPoint.0507",
            StorageFault => "EndPoint.0503",
        }
    }

    /// The HTTP status the code is answered with.
    pub fn status(self) -> u16 {
        use ErrorCode::*;
        match self {
            System => 500,
            Unavailable | StorageFault => 503,
            StorageFull => 507,
            Unauthenticated => 401,
            Forbidden => 403,
            NotFound | EndpointNotFound | NoSuchApi | VpcMissing | SubnetMissing | PortMissing => {
                404
            }
            MethodNotAllowed => 405,
            InUse | VpcInUse | SubnetInUse | IpInUse | PortInUse | NetworkQuotaExceeded => 409,
            PayloadTooLarge => 413,
            UriTooLong => 414,
            HeadersTooLarge => 431,
            RequestTimeout => 504,
            TooManyRequests => 429,
            Parameter
            | InvalidLimit
            | InvalidAction
            | InvalidOffset
            | InvalidProjectId
            | BatchTooLarge
            | InvalidSortKey
            | InvalidSortDir
            | InvalidStatus
            | InvalidVpcId
            | InvalidMarkerId
            | InvalidSubnetId
            | InvalidServiceName
            | InvalidRequest
            | QuotaExceeded
            | InvalidRouteTable
            | VpcNotFound
            | ServiceRefNotFound
            | ServiceUnavailable
            | SubnetIdEmpty
            | VpcIdEmpty
            | NoConnectPermission
            | EndpointNotOfService
            | EndpointDeleting
            | EndpointConnected
            | EndpointCreating
            | OnlyOneEndpoint
            | SubnetNotInVpc
            | RouteTableInUse
            | NoRouteTable
            | InvalidPortIp
            | PortIpInUse
            | PortIpNotInSubnet
            | InvalidWhitelist
            | WhitelistTooLong
            | EndpointFailed
            | InvalidPolicy
            | NoPolicy
            | InvalidPermission
            | InvalidPortId
            | ServiceInUse
            | PortNotFound
            | InvalidCidr
            | InvalidIp
            | InvalidServerType
            | InvalidPermissionAction
            | EmptyPermissions
            | PortNotInVpc
            | InvalidServicePort
            | PortConflict
            | ServiceStateConflict
            | IpConflictsWithService
            | PermissionsTooMany
            | TagEmpty
            | TagKeyDuplicate
            | TagInvalid
            | TagTooMany
            | InvalidResourceType
            | TagKeySize
            | TagValueSize
            | TooManyPorts
            | InvalidProtocol
            | InvalidServiceNameFormat
            | VpcParam
            | VpcNameExists
            | SubnetParam
            | SubnetCidrConflict
            | PortParam => 400,
        }
    }
}

/// An error answered to the client as `{"error_code", "error_msg"}` with `code.status()`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// What went wrong, as a documented code.
    pub code: ErrorCode,
    /// Human-readable, naming the field or resource; never internals.
    pub msg: String,
}

impl ApiError {
    /// An error with a code and a message.
    pub fn new(code: ErrorCode, msg: impl Into<String>) -> Self {
        ApiError {
            code,
            msg: msg.into(),
        }
    }

    /// 400 EndPoint.0002 naming a field.
    pub fn param(msg: impl Into<String>) -> Self {
        Self::new(ErrorCode::Parameter, msg)
    }

    /// 404 EndPoint.0005 for a resource kind and id.
    pub fn not_found(kind: &str, id: &str) -> Self {
        Self::new(
            ErrorCode::NotFound,
            format!("The requested resource does not exist: {kind} {id}"),
        )
    }

    /// 500 EndPoint.0001; the message is generic on purpose.
    pub fn internal() -> Self {
        Self::new(ErrorCode::System, "System error. Please retry.")
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.code.status(),
            self.code.code(),
            self.msg
        )
    }
}

impl std::error::Error for ApiError {}

/// Shorthand for results that end at the API edge.
pub type ApiResult<T> = Result<T, ApiError>;

/// The error body: `{"error_code", "error_msg", "request_id"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error_code: String,
    pub error_msg: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub request_id: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_have_documented_statuses() {
        assert_eq!(ErrorCode::NotFound.code(), "EndPoint.0005");
        assert_eq!(ErrorCode::NotFound.status(), 404);
        assert_eq!(ErrorCode::QuotaExceeded.code(), "Endpoint.1018");
        assert_eq!(ErrorCode::Unauthenticated.status(), 401);
        assert_eq!(ErrorCode::Forbidden.status(), 403);
        assert_eq!(ErrorCode::PortConflict.code(), "EndPoint.3044");
        assert_eq!(ErrorCode::PortConflict.status(), 400);
        assert_eq!(ErrorCode::System.status(), 500);
        assert_eq!(ErrorCode::NetworkQuotaExceeded.code(), "VPC.0114");
        assert_eq!(ErrorCode::NetworkQuotaExceeded.status(), 409);
        assert_eq!(ErrorCode::StorageFull.status(), 507);
        assert_eq!(ErrorCode::StorageFault.status(), 503);
    }
}
