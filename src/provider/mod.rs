//! The `platform` provider: its configuration block and the state shared by all of its
//! resources during one Terraform run (the default connection and the client cache).

mod connection;
mod secrets;

use std::sync::{Arc, Mutex, RwLock};

use async_trait::async_trait;

pub use connection::{cluster_attribute, connection_from_attribute, validate_cluster_attribute, DefaultConnection};
pub use secrets::sops_format;
use secrets::SecretsConfig;

use crate::clients::kube::{ClientCache, Cluster, KubeError};
use crate::clients::sops::{Decrypted, Format, Keys};
use crate::framework::diagnostics::{AttributePath, Diagnostic, Diagnostics};
use crate::framework::resource::{Context, DataSource, Provider, Resource};
use crate::framework::schema::{Block, Schema};
use crate::framework::value::Value;
use crate::{data_sources, resources};

/// What every resource of this provider shares.
#[derive(Default)]
pub struct Platform {
    default_connection: RwLock<DefaultConnection>,
    clients: ClientCache,
    secrets: RwLock<SecretsConfig>,
    /// Loaded on first use, then shared: one key file read per run.
    sops_keys: Mutex<Option<Result<Arc<Keys>, Diagnostic>>>,
}

impl Platform {
    /// The cluster a resource talks to: its own `cluster` attribute when set, else the
    /// provider's. Clients are built on first use and reused.
    pub async fn cluster(&self, cluster_attribute: Option<&Value>) -> Result<Cluster, Diagnostic> {
        let spec = match connection_from_attribute(cluster_attribute)? {
            Some(spec) => spec,
            None => match self.default_connection.read().expect("connection lock").clone() {
                DefaultConnection::Known(spec) if !spec.is_empty() => *spec,
                DefaultConnection::Known(_) | DefaultConnection::NotConfigured => {
                    return Err(Diagnostic::error(
                        "No Kubernetes cluster configured",
                        "Set the provider's `kubernetes` block (or KUBECONFIG), or this resource's `cluster` attribute.",
                    ))
                }
                DefaultConnection::Unknown => {
                    return Err(Diagnostic::error(
                        "Kubernetes connection not known yet",
                        "The provider's `kubernetes` block depends on values known only after apply. \
                         Use the resource's `cluster` attribute to connect to a cluster created in the same run.",
                    ))
                }
            },
        };
        let path = cluster_attribute.filter(|c| !c.is_null()).map(|_| AttributePath::root("cluster"));
        self.clients.get(&spec).await.map_err(|e| {
            let diagnostic = kube_diagnostic("Invalid Kubernetes connection", &e);
            match path {
                Some(path) => diagnostic.at(path),
                None => diagnostic,
            }
        })
    }
}

impl Platform {
    /// Decrypts the SOPS file at `path` with the provider's age keys; errors point at `at`.
    pub fn decrypt_sops_file(&self, path: &str, format: Format, at: AttributePath) -> Result<Decrypted, Diagnostic> {
        let keys = self
            .sops_keys
            .lock()
            .expect("sops keys lock")
            .get_or_insert_with(|| {
                self.secrets.read().expect("secrets lock").load_keys().map(Arc::new).map_err(|e| {
                    Diagnostic::error("No usable age key for SOPS", format!("{e}"))
                })
            })
            .clone();
        secrets::decrypt_file(&keys, path, format, at)
    }
}

/// A diagnostic for a Kubernetes failure, with a hint for the failures users hit most.
/// The one place a [`KubeError`] becomes something Terraform shows.
pub fn kube_diagnostic(summary: &str, error: &KubeError) -> Diagnostic {
    let hint = match error {
        KubeError::Unreachable { .. } => {
            "\n\nCheck that the API server is running and that `host` or the kubeconfig points at it.".to_string()
        }
        KubeError::Tls { .. } => "\n\nCheck `cluster_ca_certificate` (or the kubeconfig's certificate-authority) and that `host` \
             names the server its certificate was issued for."
            .to_string(),
        KubeError::ExecPlugin { .. } => "\n\nRun the `exec` command of the `cluster` attribute or the provider's `kubernetes` block \
             (or the kubeconfig user's exec plugin) by hand to see why it fails."
            .to_string(),
        KubeError::Unauthorized { .. } | KubeError::Credentials { .. } => "\n\nThe credentials are wrong or have expired: update \
             the resource's `cluster` attribute or the provider's `kubernetes` block (token, client certificate, \
             `exec` or kubeconfig)."
            .to_string(),
        KubeError::Forbidden { verb: Some(verb), resource, .. } => {
            format!("\n\nGrant the user permission to {verb} {resource} (a Role or ClusterRole and its binding), or use other credentials.")
        }
        KubeError::Timeout(_) => "\n\nRaise this resource's `timeouts` if the cluster is just slow.".to_string(),
        _ => String::new(),
    };
    Diagnostic::error(summary, format!("{error}{hint}"))
}

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
                .with_block(connection::kubernetes_block())
                .with_block(secrets::secrets_block())
                .describe("Plans and applies a whole self-hosted Kubernetes platform: clusters, namespaces, component stacks, DNS, backups and secrets."),
        )
    }

    async fn configure(&self, _ctx: &Context, config: &Value, _terraform_version: &str, diags: &mut Diagnostics) {
        let block = config.get_attr("kubernetes");
        match connection::default_connection_from_block(block, |k| std::env::var(k).ok()) {
            Ok(connection) => {
                tracing::debug!(connection = ?connection, "provider configured");
                *self.shared.default_connection.write().expect("connection lock") = connection;
            }
            Err(diagnostic) => diags.push(diagnostic),
        }
        let secrets = SecretsConfig::from_block(config.get_attr("secrets").filter(|b| !b.is_null()));
        tracing::debug!(secrets = ?secrets, "secrets configured");
        *self.shared.secrets.write().expect("secrets lock") = secrets;
        *self.shared.sops_keys.lock().expect("sops keys lock") = None;
    }

    fn resources(&self) -> Vec<Arc<dyn Resource>> {
        resources::all(&self.shared)
    }

    fn data_sources(&self) -> Vec<Arc<dyn DataSource>> {
        data_sources::all(&self.shared)
    }

    fn ephemeral_resources(&self) -> Vec<Arc<dyn DataSource>> {
        data_sources::ephemeral(&self.shared)
    }
}
