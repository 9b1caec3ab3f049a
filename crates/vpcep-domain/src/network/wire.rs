//! Request and response bodies of the VPC API v1 subset, field for field as `huaweicloudsdkvpc`
//! 3.1.219 (client v2) sends and reads them (`shared/reference/vpc-api-subset-surface.md`).

use crate::network::port::{AddressPair, Port};
use crate::network::subnet::{PrivateIp, Subnet};
use crate::network::vpc::{Route, Vpc};
use crate::network::DhcpOpt;
use crate::time::format_millis;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

macro_rules! opt_struct {
    ($(#[$m:meta])* pub struct $name:ident { $($(#[$fm:meta])* pub $f:ident : $t:ty),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
        #[serde(default)]
        pub struct $name { $($(#[$fm])* #[serde(skip_serializing_if = "Option::is_none")] pub $f: Option<$t>),* }
    };
}

opt_struct! {
    /// `route` in an update.
    pub struct RouteDto { pub destination: String, pub nexthop: String }
}
opt_struct! {
    /// `ExtraDhcpOpt` / `ExtraDhcpOption` in requests.
    pub struct DhcpOptDto { pub opt_name: String, pub opt_value: String }
}
opt_struct! {
    /// `AllowedAddressPair` in requests.
    pub struct AddressPairDto { pub ip_address: String, pub mac_address: String }
}
opt_struct! {
    /// `FixedIp` in requests.
    pub struct FixedIpDto { pub ip_address: String, pub subnet_id: String }
}
opt_struct! {
    /// `vpc` of create VPC (`create_vpc`).
    pub struct CreateVpcOption {
        pub cidr: String,
        pub name: String,
        pub description: String,
        pub enterprise_project_id: String,
        pub tags: Vec<String>,
        pub block_service_endpoint_states: String,
        pub enable_network_address_usage_metrics: bool,
    }
}
opt_struct! {
    /// `vpc` of update VPC (`update_vpc`).
    pub struct UpdateVpcOption {
        pub name: String,
        pub description: String,
        pub cidr: String,
        pub routes: Vec<RouteDto>,
        pub enable_network_address_usage_metrics: bool,
    }
}
opt_struct! {
    /// `subnet` of create subnet (`create_subnet`).
    pub struct CreateSubnetOption {
        #[schema(required = true, nullable = false)]
        pub name: String,
        pub description: String,
        #[schema(required = true, nullable = false)]
        pub cidr: String,
        #[schema(required = true, nullable = false)]
        pub vpc_id: String,
        #[schema(required = true, nullable = false)]
        pub gateway_ip: String,
        pub ipv6_enable: bool,
        pub dhcp_enable: bool,
        pub primary_dns: String,
        pub secondary_dns: String,
        #[serde(rename = "dnsList")]
        pub dns_list: Vec<String>,
        pub availability_zone: String,
        pub extra_dhcp_opts: Vec<DhcpOptDto>,
        pub tags: Vec<String>,
        pub enable_network_address_usage_metrics: bool,
    }
}
opt_struct! {
    /// `subnet` of update subnet (`update_subnet`).
    pub struct UpdateSubnetOption {
        #[schema(required = true, nullable = false)]
        pub name: String,
        pub description: String,
        pub ipv6_enable: bool,
        pub dhcp_enable: bool,
        pub primary_dns: String,
        pub secondary_dns: String,
        #[serde(rename = "dnsList")]
        pub dns_list: Vec<String>,
        pub extra_dhcp_opts: Vec<DhcpOptDto>,
        pub enable_network_address_usage_metrics: bool,
    }
}
opt_struct! {
    /// `port` of create port (`create_port`).
    pub struct CreatePortOption {
        pub name: String,
        #[schema(required = true, nullable = false)]
        pub network_id: String,
        pub fixed_ips: Vec<FixedIpDto>,
        pub device_owner: String,
        pub security_groups: Vec<String>,
        pub admin_state_up: bool,
        pub allowed_address_pairs: Vec<AddressPairDto>,
        pub extra_dhcp_opts: Vec<DhcpOptDto>,
        pub tenant_id: String,
    }
}
opt_struct! {
    /// `port` of update port (`update_port`).
    pub struct UpdatePortOption {
        pub name: String,
        pub security_groups: Vec<String>,
        pub allowed_address_pairs: Vec<AddressPairDto>,
        pub extra_dhcp_opts: Vec<DhcpOptDto>,
    }
}
opt_struct! {
    /// Body of create VPC.
    pub struct CreateVpcRequest { #[schema(required = true, nullable = false)] pub vpc: CreateVpcOption }
}
opt_struct! {
    /// Body of update VPC.
    pub struct UpdateVpcRequest { #[schema(required = true, nullable = false)] pub vpc: UpdateVpcOption }
}
opt_struct! {
    /// Body of create subnet.
    pub struct CreateSubnetRequest { #[schema(required = true, nullable = false)] pub subnet: CreateSubnetOption }
}
opt_struct! {
    /// Body of update subnet.
    pub struct UpdateSubnetRequest { #[schema(required = true, nullable = false)] pub subnet: UpdateSubnetOption }
}
opt_struct! {
    /// Body of create port.
    pub struct CreatePortRequest { #[schema(required = true, nullable = false)] pub port: CreatePortOption }
}
opt_struct! {
    /// Body of update port.
    pub struct UpdatePortRequest { #[schema(required = true, nullable = false)] pub port: UpdatePortOption }
}

/// `Vpc` in responses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct VpcView {
    pub id: String,
    pub name: String,
    pub cidr: String,
    pub description: String,
    pub routes: Vec<Route>,
    pub status: String,
    pub enterprise_project_id: String,
    pub tenant_id: String,
    pub created_at: String,
    pub updated_at: String,
    pub block_service_endpoint_states: String,
    pub enable_network_address_usage_metrics: bool,
}

impl From<&Vpc> for VpcView {
    fn from(v: &Vpc) -> Self {
        VpcView {
            id: v.id.to_string(),
            name: v.name.clone(),
            cidr: v.cidr.to_string(),
            description: v.description.clone(),
            routes: v.routes.clone(),
            status: "OK".into(),
            enterprise_project_id: v.enterprise_project_id.clone(),
            tenant_id: v.project_id.clone(),
            created_at: format_millis(v.created_at),
            updated_at: format_millis(v.updated_at),
            block_service_endpoint_states: "off".into(),
            enable_network_address_usage_metrics: v.enable_network_address_usage_metrics,
        }
    }
}

/// `{"vpc": ...}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct VpcResponse {
    pub vpc: VpcView,
}

/// `{"vpcs": [...]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct VpcsResponse {
    pub vpcs: Vec<VpcView>,
}

/// `Subnet` in responses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SubnetView {
    pub id: String,
    pub name: String,
    pub description: String,
    pub cidr: String,
    pub gateway_ip: String,
    pub ipv6_enable: bool,
    pub cidr_v6: String,
    pub gateway_ip_v6: String,
    pub dhcp_enable: bool,
    pub primary_dns: String,
    pub secondary_dns: String,
    #[serde(rename = "dnsList")]
    pub dns_list: Vec<String>,
    pub availability_zone: String,
    pub vpc_id: String,
    pub status: String,
    pub neutron_network_id: String,
    pub neutron_subnet_id: String,
    pub neutron_subnet_id_v6: String,
    pub extra_dhcp_opts: Vec<DhcpOpt>,
    pub scope: String,
    pub tenant_id: String,
    pub created_at: String,
    pub updated_at: String,
    pub enable_network_address_usage_metrics: bool,
    pub available_ip_address_count: i64,
}

impl From<&Subnet> for SubnetView {
    fn from(s: &Subnet) -> Self {
        SubnetView {
            id: s.id.to_string(),
            name: s.name.clone(),
            description: s.description.clone(),
            cidr: s.cidr.to_string(),
            gateway_ip: s.gateway_ip.to_string(),
            ipv6_enable: false,
            cidr_v6: String::new(),
            gateway_ip_v6: String::new(),
            dhcp_enable: s.dhcp_enable,
            primary_dns: s.primary_dns.clone().unwrap_or_default(),
            secondary_dns: s.secondary_dns.clone().unwrap_or_default(),
            dns_list: s.dns_list.clone(),
            availability_zone: s.availability_zone.clone(),
            vpc_id: s.vpc_id.to_string(),
            status: "ACTIVE".into(),
            neutron_network_id: s.id.to_string(),
            neutron_subnet_id: s.neutron_subnet_id.to_string(),
            neutron_subnet_id_v6: String::new(),
            extra_dhcp_opts: s.extra_dhcp_opts.clone(),
            scope: "center".into(),
            tenant_id: s.project_id.clone(),
            created_at: format_millis(s.created_at),
            updated_at: format_millis(s.updated_at),
            enable_network_address_usage_metrics: false,
            available_ip_address_count: s.available_ip_address_count,
        }
    }
}

/// `{"subnet": ...}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SubnetResponse {
    pub subnet: SubnetView,
}

/// `{"subnets": [...]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SubnetsResponse {
    pub subnets: Vec<SubnetView>,
}

/// `SubnetResult` of update subnet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SubnetResult {
    pub id: String,
    pub status: String,
}

/// `{"subnet": {"id", "status"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UpdateSubnetResponse {
    pub subnet: SubnetResult,
}

/// `FixedIp` in responses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FixedIpView {
    pub ip_address: String,
    pub subnet_id: String,
}

/// `BindingVifDetails`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct VifDetails {
    pub primary_interface: bool,
    pub port_filter: bool,
    pub ovs_hybrid_plug: bool,
}

/// `Port` in responses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PortView {
    pub id: String,
    pub name: String,
    pub network_id: String,
    pub admin_state_up: bool,
    pub mac_address: String,
    pub fixed_ips: Vec<FixedIpView>,
    pub device_id: String,
    pub device_owner: String,
    pub tenant_id: String,
    pub status: String,
    pub security_groups: Vec<String>,
    pub allowed_address_pairs: Vec<AddressPair>,
    pub extra_dhcp_opts: Vec<DhcpOpt>,
    #[serde(rename = "binding:vnic_type")]
    pub binding_vnic_type: String,
    #[schema(value_type = Vec<Object>)]
    pub dns_assignment: Vec<serde_json::Value>,
    pub dns_name: String,
    #[serde(rename = "binding:vif_details")]
    pub binding_vif_details: VifDetails,
    #[serde(rename = "binding:profile")]
    #[schema(value_type = Object)]
    pub binding_profile: serde_json::Value,
    pub instance_id: String,
    pub instance_type: String,
    pub port_security_enabled: bool,
    pub zone_id: String,
    pub enable_efi: bool,
    pub ipv6_bandwidth_id: String,
}

impl From<&Port> for PortView {
    fn from(p: &Port) -> Self {
        PortView {
            id: p.id.to_string(),
            name: p.name.clone(),
            network_id: p.subnet_id.to_string(),
            admin_state_up: p.admin_state_up,
            mac_address: p.mac_address.clone(),
            fixed_ips: vec![FixedIpView {
                ip_address: p.ip_address.to_string(),
                subnet_id: p.neutron_subnet_id.to_string(),
            }],
            device_id: p.device_id.clone(),
            device_owner: p.device_owner.clone(),
            tenant_id: p.project_id.clone(),
            status: p.status().into(),
            security_groups: p.security_groups.clone(),
            allowed_address_pairs: p.allowed_address_pairs.clone(),
            extra_dhcp_opts: p.extra_dhcp_opts.clone(),
            binding_vnic_type: "normal".into(),
            dns_assignment: vec![],
            dns_name: String::new(),
            binding_vif_details: VifDetails {
                primary_interface: true,
                port_filter: true,
                ovs_hybrid_plug: false,
            },
            binding_profile: serde_json::json!({}),
            instance_id: String::new(),
            instance_type: String::new(),
            port_security_enabled: true,
            zone_id: String::new(),
            enable_efi: false,
            ipv6_bandwidth_id: String::new(),
        }
    }
}

/// `{"port": ...}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PortResponse {
    pub port: PortView,
}

/// `{"ports": [...]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PortsResponse {
    pub ports: Vec<PortView>,
}

/// `Privateip` in responses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PrivateIpView {
    pub status: String,
    pub id: String,
    pub subnet_id: String,
    pub tenant_id: String,
    pub device_owner: String,
    pub ip_address: String,
}

impl From<&PrivateIp> for PrivateIpView {
    fn from(p: &PrivateIp) -> Self {
        PrivateIpView {
            status: if p.device_owner.is_empty() {
                "DOWN"
            } else {
                "ACTIVE"
            }
            .into(),
            id: p.id.to_string(),
            subnet_id: p.subnet_id.to_string(),
            tenant_id: p.project_id.clone(),
            device_owner: p.device_owner.clone(),
            ip_address: p.ip_address.to_string(),
        }
    }
}

/// `{"privateips": [...]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PrivateIpsResponse {
    pub privateips: Vec<PrivateIpView>,
}
