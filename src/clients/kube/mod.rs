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
pub mod nodes;
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
    #[error("the Kubernetes API at {url} refused the credentials ({code} {reason}): {message}")]
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

    /// The API server rejects the object itself: invalid (422), malformed (400) or too
    /// large (413). Sending it again will not help; changing it will.
    pub fn is_rejected(&self) -> bool {
        matches!(self, KubeError::Api { code: 400 | 413 | 422, .. })
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

    /// `path` of a Service's first port over plain HTTP, through the API server's service
    /// proxy (`/api/v1/namespaces/<ns>/services/http:<name>:<port>/proxy<path>`, the port
    /// by name when it has one, as `kubeseal` asks). NotFound when there is no such Service.
    pub async fn service_proxy_get(&self, namespace: &str, service: &str, path: &str) -> Result<String, KubeError> {
        let api: Api<k8s_openapi::api::core::v1::Service> = Api::namespaced(self.client.clone(), namespace);
        let Some(found) = self.get_opt(&api, service).await? else {
            return Err(KubeError::NotFound {
                resource: "services".into(),
                name: service.into(),
                message: format!("services {service:?} not found"),
            });
        };
        let first = found.spec.and_then(|s| s.ports).and_then(|ports| ports.into_iter().next());
        let port = first.map(|p| p.name.filter(|n| !n.is_empty()).unwrap_or_else(|| p.port.to_string())).unwrap_or_default();
        let uri = format!("/api/v1/namespaces/{namespace}/services/http:{service}:{port}/proxy{path}");
        let request = http::Request::get(&uri)
            .body(Vec::new())
            .map_err(|e| KubeError::Config(format!("cannot build the request for {uri}: {e}")))?;
        self.client.request_text(request).await.map_err(|e| self.error(e))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn status(json: serde_json::Value) -> KubeError {
        KubeError::from_client(kube::Error::Api(Box::new(serde_json::from_value(json).unwrap())), "https://k:6443/")
    }

    #[test]
    fn only_the_api_servers_notfound_for_an_object_means_gone() {
        let gone = status(serde_json::json!({
            "kind": "Status", "status": "Failure", "reason": "NotFound", "code": 404,
            "message": "configmaps \"x\" not found", "details": { "name": "x", "kind": "configmaps" }
        }));
        assert!(gone.is_not_found(), "{gone:?}");
        // A kind the server no longer serves: its NotFound names no object.
        let unserved = status(serde_json::json!({
            "kind": "Status", "status": "Failure", "reason": "NotFound", "code": 404,
            "message": "the server could not find the requested resource", "details": {}
        }));
        assert!(!unserved.is_not_found() && unserved.is_not_served(), "{unserved:?}");
        // A proxy's page: kube makes a Status of it with the code only.
        let proxy = KubeError::from_client(
            kube::Error::Api(Box::new(kube::core::Status::failure("404 page not found", "Failed to parse error data").with_code(404))),
            "https://k:6443/",
        );
        assert!(!proxy.is_not_found() && !proxy.is_not_served(), "{proxy:?}");
    }

    #[test]
    fn forbidden_names_the_verb_and_resource_rbac_denied() {
        let denied = status(serde_json::json!({
            "kind": "Status", "status": "Failure", "reason": "Forbidden", "code": 403,
            "message": "certificates.cert-manager.io \"c\" is forbidden: User \"dev\" cannot patch resource \"certificates\" in API group \"cert-manager.io\" in the namespace \"apps\"",
            "details": { "name": "c", "group": "cert-manager.io", "kind": "certificates" }
        }));
        assert!(
            matches!(&denied, KubeError::Forbidden { verb: Some(v), resource, namespace: Some(ns), .. }
                if v == "patch" && resource == "certificates.cert-manager.io" && ns == "apps"),
            "{denied:?}"
        );
        assert!(denied.to_string().starts_with("RBAC denied patch on certificates.cert-manager.io in namespace \"apps\" (403 Forbidden)"), "{denied}");
        assert!(denied.is_permanent());
        let cluster_scope = status(serde_json::json!({
            "kind": "Status", "reason": "Forbidden", "code": 403,
            "message": "namespaces is forbidden: User \"dev\" cannot list resource \"namespaces\" in API group \"\" at the cluster scope"
        }));
        assert!(cluster_scope.to_string().starts_with("RBAC denied list on namespaces (403"), "{cluster_scope}");
        // A 403 in other words (an admission webhook, a proxy) still names what it can.
        let other = status(serde_json::json!({ "reason": "Forbidden", "code": 403, "message": "no", "details": { "kind": "pods" } }));
        assert_eq!(other.to_string(), "access to pods denied (403 Forbidden): no");
    }

    #[test]
    fn unauthorized_names_the_server_and_is_permanent() {
        let e = status(serde_json::json!({ "reason": "Unauthorized", "code": 401, "message": "Unauthorized" }));
        assert!(matches!(&e, KubeError::Unauthorized { url, .. } if url == "https://k:6443/"), "{e:?}");
        assert!(e.is_permanent());
        let invalid = status(serde_json::json!({ "reason": "Invalid", "code": 422, "message": "bad" }));
        assert!(invalid.is_permanent());
        let busy = status(serde_json::json!({ "reason": "TooManyRequests", "code": 429, "message": "later" }));
        assert!(!busy.is_permanent());
    }

    #[test]
    fn transport_failures_are_not_all_unreachable() {
        let refused = KubeError::from_client(
            kube::Error::Service(Box::new(std::io::Error::from(std::io::ErrorKind::ConnectionRefused))),
            "https://k:6443/",
        );
        assert!(matches!(refused, KubeError::Unreachable { .. }), "{refused:?}");
        let tls = KubeError::from_client(
            kube::Error::Service(Box::new(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
            ))),
            "https://k:6443/",
        );
        assert!(matches!(tls, KubeError::Tls { .. }), "{tls:?}");
        let exec = KubeError::from_client(kube::Error::Auth(kube::client::AuthError::AuthExec("boom".into())), "u");
        assert!(matches!(exec, KubeError::ExecPlugin { .. }), "{exec:?}");
        let timeout = KubeError::from_client(
            kube::Error::Service(Box::new(Interrupted::Expired { budget: std::time::Duration::from_secs(5) })),
            "u",
        );
        assert!(matches!(timeout, KubeError::Timeout(d) if d.as_secs() == 5), "{timeout:?}");
    }

    #[tokio::test]
    async fn a_failing_exec_plugin_is_reported_as_such() {
        let spec = ConnectionSpec {
            host: Some("https://127.0.0.1:1".into()),
            exec: Some(ExecSpec {
                api_version: "client.authentication.k8s.io/v1beta1".into(),
                command: "/nonexistent/credential-helper".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let error = match ClientCache::default().get(&spec).await {
            Ok(cluster) => cluster.client.list_api_groups().await.map_err(|e| cluster.error(e)).unwrap_err(),
            Err(e) => e,
        };
        assert!(matches!(error, KubeError::ExecPlugin { .. }), "{error:?}");
        assert!(error.to_string().contains("credential plugin"), "{error}");
    }
}
