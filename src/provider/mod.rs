//! The `platform` provider itself: its configuration block, ConfigureProvider, and the list
//! of its types. What the types share lives in [`crate::platform`], which this module fills
//! in; nothing under `resources` or `data_sources` depends on this module.

mod dns;
mod kubernetes;
mod secrets;

use std::sync::Arc;

use async_trait::async_trait;

use crate::framework::diagnostics::{AttributePath, Diagnostics};
use crate::framework::resource::{Context, DataSource, Provider, Resource};
use crate::framework::schema::{Block, Schema};
use crate::framework::value::Value;
use crate::platform::Platform;
use crate::{data_sources, resources};

pub struct PlatformProvider {
    shared: Arc<Platform>,
}

impl PlatformProvider {
    pub fn new() -> Self {
        PlatformProvider { shared: Arc::new(Platform::default()) }
    }
}

impl Default for PlatformProvider {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl Provider for PlatformProvider {
    fn type_name(&self) -> &'static str {
        "platform"
    }

    fn schema(&self) -> Schema {
        Schema::new(
            Block::new(vec![])
                .with_block(kubernetes::kubernetes_block())
                .with_block(secrets::secrets_block())
                .with_block(dns::dns_block())
                .describe("Plans and applies a whole self-hosted Kubernetes platform: clusters, namespaces, component stacks, DNS, backups and secrets."),
        )
    }

    async fn configure(&self, _ctx: &Context, config: &Value, _terraform_version: &str, diags: &mut Diagnostics) {
        let block = config.get_attr("kubernetes");
        match kubernetes::default_connection_from_block(block, |k| std::env::var(k).ok()) {
            Ok(connection) => {
                tracing::debug!(connection = ?connection, "provider configured");
                // A `kubernetes` block the user wrote that cannot work is reported here, once,
                // rather than by every resource that uses it. (Without one, the kubeconfig
                // found by default is only read when a resource needs a cluster.)
                if block.is_some_and(|b| !b.is_null()) {
                    if let Some(problem) = kubernetes::connection_problem(&connection).await {
                        diags.push(problem.at(AttributePath::root("kubernetes")));
                    }
                }
                self.shared.set_default_connection(connection);
            }
            Err(diagnostic) => diags.push(diagnostic),
        }
        let secrets = secrets::secrets_config_from_block(config.get_attr("secrets").filter(|b| !b.is_null()));
        tracing::debug!(secrets = ?secrets, "secrets configured");
        self.shared.set_secrets(secrets);
        let dns = dns::dns_defaults_from_config(config.get_attr("dns"), diags);
        tracing::debug!(dns = ?dns, "dns configured");
        self.shared.set_dns_defaults(dns);
    }

    fn validate(&self, config: &Value, diags: &mut Diagnostics) {
        dns::dns_defaults_from_config(config.get_attr("dns"), diags);
    }

    fn resources(&self) -> Vec<Arc<dyn Resource>> {
        let platform = &self.shared;
        vec![
            Arc::new(resources::namespace::NamespaceResource::new(platform.clone())),
            Arc::new(resources::k3s_cluster::K3sClusterResource::new(platform.clone())),
            Arc::new(resources::cluster::ClusterResource::new(platform.clone())),
            Arc::new(resources::secret::SecretResource::new(platform.clone())),
            Arc::new(resources::sealed_secret::SealedSecretResource::new(platform.clone())),
            Arc::new(resources::stack::StackResource::new(platform.clone())),
            Arc::new(resources::dns_record::DnsRecordResource::new(platform.clone())),
            Arc::new(resources::velero::location::BackupLocationResource::new(platform.clone())),
            Arc::new(resources::velero::schedule::BackupScheduleResource::new(platform.clone())),
            Arc::new(resources::velero::backup::BackupResource::new(platform.clone())),
            Arc::new(resources::velero::restore::RestoreResource::new(platform.clone())),
            Arc::new(resources::volsync::replication::VolumeReplicationResource::new(platform.clone())),
            Arc::new(resources::volsync::restore::VolumeRestoreResource::new(platform.clone())),
        ]
    }

    fn data_sources(&self) -> Vec<Arc<dyn DataSource>> {
        let platform = &self.shared;
        vec![
            Arc::new(data_sources::backups::BackupsDataSource::new(platform.clone())),
            Arc::new(data_sources::catalog::CatalogDataSource),
            Arc::new(data_sources::cluster::ClusterDataSource::new(platform.clone())),
            Arc::new(data_sources::dns_record::DnsRecordDataSource::new(platform.clone())),
            Arc::new(data_sources::namespace::NamespaceDataSource::new(platform.clone())),
            Arc::new(data_sources::sealed_secrets_certificate::SealedSecretsCertificateDataSource::new(platform.clone())),
            Arc::new(data_sources::sops_file::SopsFile::new(platform.clone())),
        ]
    }

    /// Ephemeral resources: opened like data sources, never stored.
    fn ephemeral_resources(&self) -> Vec<Arc<dyn DataSource>> {
        vec![Arc::new(data_sources::sops_file::SopsFile::new(self.shared.clone())), data_sources::k3s_kubeconfig::K3sKubeconfig::new()]
    }
}
