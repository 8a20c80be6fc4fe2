//! Kubernetes: connections, a client cache shared by every resource of a run, and the
//! error vocabulary resources need (gone vs. transient vs. refused).

mod connection;
mod dynamic;
pub mod fields;

use std::collections::HashMap;
use std::sync::Arc;

pub use connection::{ConnectionSpec, ExecSpec};
pub use dynamic::{DiscoveryCache, KindInfo};
use tokio::sync::{Mutex, OnceCell};

use super::error_chain;

/// The field manager of every server-side apply we make.
pub const FIELD_MANAGER: &str = "terraform-provider-platform";

#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    #[error("{0}")]
    Config(String),
    #[error("cannot reach the Kubernetes API at {url}: {message}")]
    Unreachable { url: String, message: String },
    #[error("the Kubernetes API refused the credentials ({code} {reason}): {message}")]
    Unauthorized { code: u16, reason: String, message: String },
    #[error("Kubernetes API error {code} {reason}: {message}")]
    Api { code: u16, reason: String, message: String },
    #[error("timed out after {0:?}")]
    Timeout(std::time::Duration),
    #[error("cancelled: Terraform asked the provider to stop")]
    Cancelled,
}

impl KubeError {
    /// Sorts a client error into what a resource must do about it.
    pub fn from_client(error: kube::Error, url: &str) -> Self {
        match error {
            kube::Error::Api(status) => {
                let code = status.code;
                let reason = status.reason.clone();
                let message = status.message.clone();
                if code == 401 || code == 403 {
                    KubeError::Unauthorized { code, reason, message }
                } else {
                    KubeError::Api { code, reason, message }
                }
            }
            other => KubeError::Unreachable { url: url.to_string(), message: error_chain(&other) },
        }
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self, KubeError::Api { code: 404, .. })
    }

    pub fn is_conflict(&self) -> bool {
        matches!(self, KubeError::Api { code: 409, .. })
    }
}


/// A connected client plus the URL it talks to (for messages).
#[derive(Clone)]
pub struct Cluster {
    pub client: kube::Client,
    pub url: String,
    pub discovery: Arc<DiscoveryCache>,
}

impl Cluster {
    pub fn error(&self, error: kube::Error) -> KubeError {
        KubeError::from_client(error, &self.url)
    }
}

/// One client per distinct connection, built on first use and shared by every resource
/// in the process: configuring the provider never contacts a cluster.
#[derive(Default)]
pub struct ClientCache {
    clients: Mutex<HashMap<ConnectionSpec, Arc<OnceCell<Cluster>>>>,
}

impl ClientCache {
    pub async fn get(&self, spec: &ConnectionSpec) -> Result<Cluster, KubeError> {
        let cell = {
            let mut clients = self.clients.lock().await;
            clients.entry(spec.clone()).or_default().clone()
        };
        cell.get_or_try_init(|| async {
            let config = spec.to_config().await?;
            let url = config.cluster_url.to_string();
            tracing::debug!(url = %url, "building Kubernetes client");
            let client = kube::Client::try_from(config)
                .map_err(|e| KubeError::Config(format!("cannot build a Kubernetes client: {}", error_chain(&e))))?;
            Ok(Cluster { client, url, discovery: Arc::default() })
        })
        .await
        .cloned()
    }
}

/// The child field names under `path` (e.g. `["data"]`) that `manager` owns through
/// server-side apply, from the object's `metadata.managedFields`.
pub fn owned_children(object: &serde_json::Value, manager: &str, path: &[&str]) -> std::collections::BTreeSet<String> {
    let owned = fields::owned_fields(object, manager);
    let node = owned.as_ref().and_then(|set| path.iter().try_fold(set, |node, step| node.get(format!("f:{step}"))));
    node.and_then(|n| n.as_object())
        .into_iter()
        .flat_map(|children| children.keys().filter_map(|k| k.strip_prefix("f:")).map(str::to_string))
        .collect()
}
