//! Kubernetes: connections, a client cache shared by every resource of a run, and the
//! error vocabulary resources need (gone vs. transient vs. refused).

mod connection;

use std::collections::HashMap;
use std::sync::Arc;

pub use connection::{ConnectionSpec, ExecSpec};
use tokio::sync::{Mutex, OnceCell};

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

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// A connected client plus the URL it talks to (for messages).
#[derive(Clone)]
pub struct Cluster {
    pub client: kube::Client,
    pub url: String,
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
            Ok(Cluster { client, url })
        })
        .await
        .cloned()
    }
}
