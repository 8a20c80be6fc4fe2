//! Kubernetes: connections, a client cache shared by every resource of a run, and the
//! error vocabulary resources need (gone vs. transient vs. refused).
//!
//! Every client retries transient failures itself ([`retry`]), within the operation's
//! [`Deadline`](crate::clients::deadline::Deadline); what reaches a caller as a
//! [`KubeError`] is final. Only [`KubeError::NotFound`] — the API server's own NotFound
//! for a named object — means an object is gone: a 404 without it (from a proxy, or for a
//! kind that is no longer served) is an error like any other.

mod connection;
mod dynamic;
pub mod fields;
pub mod ownership;
pub mod retry;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

pub use connection::{ConnectionSpec, ExecSpec};
pub use dynamic::{DiscoveryCache, KindInfo};
use kube::api::Api;
use tokio::sync::{Mutex, OnceCell};

use super::deadline::Interrupted;
use super::error_chain;
use retry::TransportFailure;

/// The field manager of every server-side apply we make.
pub const FIELD_MANAGER: &str = "terraform-provider-platform";

#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    #[error("{0}")]
    Config(String),
    /// The server could not be reached or the connection broke (after retries).
    #[error("cannot reach the Kubernetes API at {url}: {message}")]
    Unreachable { url: String, message: String },
    #[error("TLS failure talking to the Kubernetes API at {url}: {message}")]
    Tls { url: String, message: String },
    #[error("the credential plugin (exec) failed: {message}")]
    ExecPlugin { message: String },
    /// Credentials that could not be loaded (token file, malformed token).
    #[error("cannot load the Kubernetes credentials: {message}")]
    Credentials { message: String },
    /// 401: the server does not accept who we say we are.
    #[error("the Kubernetes API at {url} rejected the credentials ({code} {reason}): {message}")]
    Unauthorized { url: String, code: u16, reason: String, message: String },
    /// 403: RBAC (or an admission rule) denied `verb` on `resource`.
    #[error("{}", describe_forbidden(verb.as_deref(), resource, namespace.as_deref(), message))]
    Forbidden { verb: Option<String>, resource: String, namespace: Option<String>, message: String },
    /// The API server's NotFound for a named object: the object is gone.
    #[error("Kubernetes API error 404 NotFound: {message}")]
    NotFound { resource: String, name: String, message: String },
    #[error("Kubernetes API error {code} {reason}: {message}")]
    Api { code: u16, reason: String, message: String },
    /// An answer that is not one the Kubernetes API gives (a proxy's HTML page, say).
    #[error("unexpected answer from the Kubernetes API at {url}: {message}")]
    Response { url: String, message: String },
    #[error("timed out after {}", humantime::format_duration(*.0))]
    Timeout(std::time::Duration),
    #[error("cancelled: asked to stop")]
    Cancelled,
}

fn describe_forbidden(verb: Option<&str>, resource: &str, namespace: Option<&str>, message: &str) -> String {
    let scope = namespace.map(|ns| format!(" in namespace {ns:?}")).unwrap_or_default();
    match verb {
        Some(verb) => format!("RBAC denied {verb} on {resource}{scope} (403 Forbidden): {message}"),
        None => format!("access to {resource}{scope} denied (403 Forbidden): {message}"),
    }
}

impl From<Interrupted> for KubeError {
    fn from(e: Interrupted) -> Self {
        match e {
            Interrupted::Expired { budget } => KubeError::Timeout(budget),
            Interrupted::Cancelled => KubeError::Cancelled,
        }
    }
}

impl KubeError {
    /// Sorts a client error into what a resource must do about it.
    pub fn from_client(error: kube::Error, url: &str) -> Self {
        match error {
            kube::Error::Api(status) => Self::from_status(*status, url),
            kube::Error::SerdeError(e) => KubeError::Response { url: url.to_string(), message: e.to_string() },
            kube::Error::RustlsTls(e) => KubeError::Tls { url: url.to_string(), message: error_chain(&e) },
            kube::Error::BuildRequest(e) => KubeError::Config(format!("cannot build the request: {e}")),
            other => match TransportFailure::of(&other) {
                TransportFailure::Interrupted(interrupted) => interrupted.into(),
                TransportFailure::Tls(message) => KubeError::Tls { url: url.to_string(), message },
                TransportFailure::ExecPlugin(message) => KubeError::ExecPlugin { message },
                TransportFailure::Credentials(message) => KubeError::Credentials { message },
                _ => KubeError::Unreachable { url: url.to_string(), message: error_chain(&other) },
            },
        }
    }

    fn from_status(status: kube::core::Status, url: &str) -> Self {
        let details = status.details.clone();
        let (kind, name) = details.map(|d| (d.kind, d.name)).unwrap_or_default();
        match (status.code, status.reason.as_str()) {
            (401, _) => KubeError::Unauthorized {
                url: url.to_string(),
                code: status.code,
                reason: status.reason,
                message: status.message,
            },
            (403, _) => {
                let denied = forbidden_parts(&status.message);
                KubeError::Forbidden {
                    verb: denied.as_ref().map(|d| d.0.clone()),
                    resource: denied.as_ref().map(|d| d.1.clone()).unwrap_or_else(|| {
                        if kind.is_empty() { "the requested resource".into() } else { kind.clone() }
                    }),
                    namespace: denied.and_then(|d| d.2),
                    message: status.message,
                }
            }
            // Only the API server's own answer for a named object: it fills in the name.
            (404, "NotFound") if !name.is_empty() => KubeError::NotFound { resource: kind, name, message: status.message },
            (code, _) => KubeError::Api { code, reason: status.reason, message: status.message },
        }
    }

    /// The object is gone: the API server's NotFound for it, never a bare 404.
    pub fn is_not_found(&self) -> bool {
        matches!(self, KubeError::NotFound { .. })
    }

    /// The API server says it serves nothing at that path (an API version or kind it does
    /// not know): its own NotFound without an object name. A proxy's 404 is not this.
    pub fn is_not_served(&self) -> bool {
        matches!(self, KubeError::Api { code: 404, reason, .. } if reason == "NotFound")
    }

    pub fn is_conflict(&self) -> bool {
        matches!(self, KubeError::Api { code: 409, .. })
    }

    /// Failures that waiting will not fix: wrong credentials, denied access, invalid
    /// requests, bad configuration. (Transient ones were already retried below.)
    pub fn is_permanent(&self) -> bool {
        match self {
            KubeError::Config(_)
            | KubeError::Tls { .. }
            | KubeError::ExecPlugin { .. }
            | KubeError::Credentials { .. }
            | KubeError::Unauthorized { .. }
            | KubeError::Forbidden { .. }
            | KubeError::Cancelled => true,
            KubeError::Api { code, .. } => matches!(code, 400 | 405 | 406 | 409 | 413 | 415 | 422),
            _ => false,
        }
    }
}

/// `(verb, resource, namespace)` from the API server's RBAC message, e.g. `configmaps "x"
/// is forbidden: User "u" cannot patch resource "configmaps" in API group "" in the
/// namespace "ns"`.
fn forbidden_parts(message: &str) -> Option<(String, String, Option<String>)> {
    static PATTERN: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let pattern = PATTERN.get_or_init(|| {
        regex::Regex::new(r#"cannot (\S+) resource "([^"]+)"(?: in API group "([^"]*)")?(?: in the namespace "([^"]+)")?"#)
            .expect("valid pattern")
    });
    let found = pattern.captures(message)?;
    let resource = match found.get(3).map(|g| g.as_str()).filter(|g| !g.is_empty()) {
        Some(group) => format!("{}.{group}", &found[2]),
        None => found[2].to_string(),
    };
    Some((found[1].to_string(), resource, found.get(4).map(|ns| ns.as_str().to_string())))
}

/// A connected client plus the URL it talks to (for messages).
#[derive(Clone)]
pub struct Cluster {
    pub client: kube::Client,
    pub url: String,
    pub discovery: Arc<DiscoveryCache>,
    /// Requests this client retried, over the whole run.
    retries: Arc<AtomicU64>,
}

impl Cluster {
    pub fn error(&self, error: kube::Error) -> KubeError {
        KubeError::from_client(error, &self.url)
    }

    /// How many requests this client has retried so far (transient failures).
    pub fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }

    /// The object `name`, or `None` when the API server says it does not exist. Use this,
    /// not `Api::get_opt`, which takes any 404 (a proxy's too) for "gone".
    pub async fn get_opt<K>(&self, api: &Api<K>, name: &str) -> Result<Option<K>, KubeError>
    where
        K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    {
        match api.get(name).await {
            Ok(object) => Ok(Some(object)),
            Err(e) => match self.error(e) {
                e if e.is_not_found() => Ok(None),
                e => Err(e),
            },
        }
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
            let retries = Arc::new(AtomicU64::new(0));
            let client = connection::build_client(config, retries.clone()).map_err(|e| match KubeError::from_client(e, &url) {
                KubeError::Unreachable { message, .. } => KubeError::Config(format!("cannot build a Kubernetes client: {message}")),
                other => other,
            })?;
            Ok(Cluster { client, url, discovery: Arc::default(), retries })
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
