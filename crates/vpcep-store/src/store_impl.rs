//! `Store for SqlStore`: the trait surface, delegating to the per-resource modules.

use crate::endpoints::endpoint_where;
use crate::inventory::{
    port_missing, port_where, subnet_missing, subnet_where, vpc_missing, vpc_where,
};
use crate::sql::{Dialect, SqlStore};
use crate::{
    ConnectionFilter, ConnectionMutation, EndpointCheck, EndpointFilter, EndpointMutation,
    PortFilter, PortMutation, ServiceFilter, ServiceLookup, ServiceMutation, ServiceScope, Store,
    StoreResult, SubnetMutation, TagMutation, TaggedResource, VpcMutation,
};
use crate::{DataplaneGate, PermissionChange};
use async_trait::async_trait;
use std::net::Ipv4Addr;
use uuid::Uuid;
use vpcep_domain::dataplane::AddressPolicy;
use vpcep_domain::endpoint::Endpoint;
use vpcep_domain::list::Page;
use vpcep_domain::model::EndpointService;
use vpcep_domain::model::{ResourceKind, Tag};
use vpcep_domain::network::{NewPort, Port, PrivateIp, Subnet, Vpc};
use vpcep_domain::permission::Permission;
use vpcep_domain::ErrorCode;

#[async_trait]
impl Store for SqlStore {
    fn backend(&self) -> &'static str {
        match self.dialect {
            Dialect::Sqlite => "sqlite",
            Dialect::Postgres => "postgres",
        }
    }

    async fn default_account(&self, toml: String) -> StoreResult<String> {
        self.svc_default_account(toml).await
    }

    async fn stored_default_account(&self) -> StoreResult<Option<String>> {
        self.svc_stored_default_account().await
    }

    async fn create_service(&self, service: &EndpointService, quota: u64) -> StoreResult<()> {
        self.svc_create_service(service, quota).await
    }

    async fn get_service(
        &self,
        project_id: &str,
        id: Uuid,
    ) -> StoreResult<Option<EndpointService>> {
        self.svc_get_service(project_id, id).await
    }

    async fn find_service(&self, lookup: &ServiceLookup) -> StoreResult<Option<EndpointService>> {
        self.svc_find_service(lookup).await
    }

    async fn list_services(
        &self,
        scope: &ServiceScope,
        filter: &ServiceFilter,
        page: &Page,
    ) -> StoreResult<(Vec<EndpointService>, u64)> {
        self.svc_list_services(scope, filter, page).await
    }

    async fn modify_service(
        &self,
        project_id: &str,
        id: Uuid,
        now: i64,
        mutate: ServiceMutation,
    ) -> StoreResult<EndpointService> {
        self.svc_modify_service(project_id, id, now, mutate).await
    }

    async fn complete_creations(&self, cutoff: i64, now: i64, limit: u32) -> StoreResult<u64> {
        self.svc_complete_creations(cutoff, now, limit, None).await
    }

    async fn complete_deletions(&self, cutoff: i64, limit: u32) -> StoreResult<u64> {
        self.svc_complete_deletions(cutoff, limit).await
    }

    async fn create_vpc(&self, vpc: &Vpc, quota: u64) -> StoreResult<()> {
        self.inv_create_vpc(vpc, quota).await
    }

    async fn get_vpc(&self, project_id: &str, id: Uuid) -> StoreResult<Option<Vpc>> {
        self.inv_get(project_id, id).await
    }

    async fn list_vpcs(
        &self,
        project_id: &str,
        id: Option<&str>,
        limit: u32,
        marker: Option<&str>,
    ) -> StoreResult<Vec<Vpc>> {
        self.inv_page(
            vpc_where(project_id, id),
            limit,
            marker,
            ErrorCode::VpcParam,
        )
        .await
    }

    async fn modify_vpc(
        &self,
        project_id: &str,
        id: Uuid,
        now: i64,
        mutate: VpcMutation,
    ) -> StoreResult<Vpc> {
        self.inv_modify(
            project_id,
            id,
            now,
            vpc_missing,
            |v: &Vpc| Some(v.id),
            mutate,
        )
        .await
    }

    async fn delete_vpc(&self, project_id: &str, id: Uuid) -> StoreResult<()> {
        self.inv_delete_vpc(project_id, id).await
    }

    async fn create_subnet(&self, subnet: &Subnet, quota: u64) -> StoreResult<()> {
        self.inv_create_subnet(subnet, quota).await
    }

    async fn get_subnet(&self, project_id: &str, id: Uuid) -> StoreResult<Option<Subnet>> {
        self.inv_get_subnet(project_id, id).await
    }

    async fn list_subnets(
        &self,
        project_id: &str,
        vpc_id: Option<&str>,
        limit: u32,
        marker: Option<&str>,
    ) -> StoreResult<Vec<Subnet>> {
        self.inv_list_subnets(subnet_where(project_id, vpc_id), limit, marker)
            .await
    }

    async fn modify_subnet(
        &self,
        project_id: &str,
        id: Uuid,
        now: i64,
        mutate: SubnetMutation,
    ) -> StoreResult<Subnet> {
        let missing = |id: Uuid| subnet_missing(id);
        self.inv_modify(
            project_id,
            id,
            now,
            missing,
            |_: &Subnet| None,
            Box::new(move |s, _| mutate(s)),
        )
        .await
    }

    async fn delete_subnet(&self, project_id: &str, vpc_id: Uuid, id: Uuid) -> StoreResult<()> {
        self.inv_delete_subnet(project_id, vpc_id, id).await
    }

    async fn create_port(
        &self,
        project_id: &str,
        port: NewPort,
        id: Uuid,
        mac: String,
        now: i64,
        quota: u64,
    ) -> StoreResult<Port> {
        self.inv_create_port(project_id, port, id, mac, now, quota)
            .await
    }

    async fn get_port(&self, project_id: &str, id: Uuid) -> StoreResult<Option<Port>> {
        self.inv_get(project_id, id).await
    }

    async fn list_ports(
        &self,
        project_id: &str,
        filter: &PortFilter,
        limit: u32,
        marker: Option<&str>,
    ) -> StoreResult<Vec<Port>> {
        self.inv_page(
            port_where(project_id, filter),
            limit,
            marker,
            ErrorCode::PortParam,
        )
        .await
    }

    async fn modify_port(
        &self,
        project_id: &str,
        id: Uuid,
        now: i64,
        mutate: PortMutation,
    ) -> StoreResult<Port> {
        self.inv_modify(
            project_id,
            id,
            now,
            port_missing,
            |_: &Port| None,
            Box::new(move |p, _| mutate(p)),
        )
        .await
    }

    async fn delete_port(&self, project_id: &str, id: Uuid) -> StoreResult<()> {
        self.inv_delete_port(project_id, id).await
    }

    async fn list_private_ips(
        &self,
        project_id: &str,
        subnet_id: Uuid,
        limit: u32,
        marker: Option<&str>,
    ) -> StoreResult<Vec<PrivateIp>> {
        self.inv_list_private_ips(project_id, subnet_id, limit, marker)
            .await
    }

    async fn create_endpoint(
        &self,
        endpoint: &Endpoint,
        port_ip: Option<Ipv4Addr>,
        quota: u64,
        check: EndpointCheck,
    ) -> StoreResult<Endpoint> {
        self.ep_create(endpoint, port_ip, quota, check).await
    }

    async fn get_endpoint(&self, project_id: &str, id: Uuid) -> StoreResult<Option<Endpoint>> {
        self.ep_get(project_id, id).await
    }

    async fn list_endpoints(
        &self,
        project_id: &str,
        filter: &EndpointFilter,
        page: &Page,
    ) -> StoreResult<(Vec<Endpoint>, u64)> {
        self.ep_list(endpoint_where(project_id, filter), page).await
    }

    async fn modify_endpoint(
        &self,
        project_id: &str,
        id: Uuid,
        now: i64,
        mutate: EndpointMutation,
    ) -> StoreResult<Endpoint> {
        self.ep_modify(project_id, id, now, mutate).await
    }

    async fn list_connections(
        &self,
        project_id: &str,
        service_id: Uuid,
        filter: &ConnectionFilter,
        page: &Page,
    ) -> StoreResult<(Vec<Endpoint>, u64)> {
        self.conn_list(project_id, service_id, filter, page).await
    }

    async fn modify_connections(
        &self,
        project_id: &str,
        service_id: Uuid,
        ids: Vec<Uuid>,
        now: i64,
        mutate: ConnectionMutation,
    ) -> StoreResult<Vec<crate::ConnectionOutcome>> {
        self.conn_modify(project_id, service_id, ids, now, mutate)
            .await
    }

    async fn modify_tags(
        &self,
        project_id: &str,
        kind: ResourceKind,
        id: Uuid,
        change: TagMutation,
    ) -> StoreResult<()> {
        self.tags_modify(project_id, kind, id, change).await
    }

    async fn project_tags(&self, project_id: &str, kind: ResourceKind) -> StoreResult<Vec<Tag>> {
        self.tags_of_project(project_id, kind).await
    }

    async fn tagged_resources(
        &self,
        project_id: &str,
        kind: ResourceKind,
    ) -> StoreResult<Vec<TaggedResource>> {
        self.tags_resources(project_id, kind).await
    }

    async fn complete_creations_gated(
        &self,
        cutoff: i64,
        now: i64,
        limit: u32,
        gate: DataplaneGate,
    ) -> StoreResult<u64> {
        self.svc_complete_creations(cutoff, now, limit, Some(gate))
            .await
    }

    async fn agents_overview(&self, alive_since: i64) -> StoreResult<crate::AgentsOverview> {
        self.dp_overview(alive_since).await
    }

    async fn close(&self) {
        SqlStore::close(self).await
    }

    async fn settle_claims(&self, limit: u32) -> StoreResult<u64> {
        self.claims_settle(limit).await
    }

    async fn dns_fingerprint(&self) -> StoreResult<(i64, i64, i64)> {
        self.dns_fingerprint_of().await
    }

    async fn dns_records(&self) -> StoreResult<crate::DnsRecords> {
        self.dns_records_of().await
    }

    async fn dataplane_version(&self) -> StoreResult<u64> {
        self.dp_version().await
    }

    async fn dataplane_snapshot(
        &self,
        policy: &AddressPolicy,
    ) -> StoreResult<vpcep_domain::dataplane::Snapshot> {
        self.dp_snapshot(policy).await
    }

    async fn record_agent_report(
        &self,
        report: &vpcep_domain::dataplane::AgentReport,
        now: i64,
    ) -> StoreResult<()> {
        self.dp_report(report, now).await
    }

    async fn oldest_transition(&self) -> StoreResult<Option<i64>> {
        self.dp_oldest_transition().await
    }

    async fn list_permissions(
        &self,
        project_id: &str,
        service_id: Uuid,
        contains: Option<&str>,
        page: &Page,
    ) -> StoreResult<(Vec<Permission>, u64)> {
        self.perm_list(project_id, service_id, contains, page).await
    }

    async fn change_permissions(
        &self,
        project_id: &str,
        service_id: Uuid,
        now: i64,
        change: PermissionChange,
    ) -> StoreResult<Vec<Permission>> {
        self.perm_change(project_id, service_id, now, change).await
    }

    async fn project_usage(&self, project_id: &str, resource: &str) -> StoreResult<u64> {
        self.perm_usage(project_id, resource).await
    }

    fn health(&self) -> StoreResult<()> {
        self.sqlite_health()
    }
}
