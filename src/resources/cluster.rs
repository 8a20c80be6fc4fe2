//! `platform_cluster`: adopts a cluster this provider did not bootstrap (Talos, kind, a
//! managed cluster) and reports its health: server version, nodes, `/readyz`, and the
//! `connection` map other resources take as `cluster`. Create and update can wait until
//! the cluster is healthy, so that what depends on it starts only on a healthy cluster.
//! Nothing in the cluster is ever created, changed or deleted: destroy only forgets it.
//!
//! The computed values and their reading are shared with the `platform_cluster` data
//! source; the health logic itself is [`crate::platform::cluster_health`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::clients::deadline::{Deadline, WaitError};
use crate::clients::kube::Cluster;
use crate::framework::diagnostics::{AttributePath, Diagnostic, Diagnostics};
use crate::framework::resource::{Context, Plan, Resource};
use crate::framework::schema::{timeouts_block, Attribute, AttributeType, Block, Schema};
use crate::framework::timeouts;
use crate::framework::value::{Type, Value};
use crate::platform::cluster_health::{observe, wait_healthy, ClusterHealth, HealthError, HealthGate};
use crate::platform::{cluster_attribute, connection_attribute, kube_diagnostic, validate_cluster_attribute, Platform};

const DEFAULT_WAIT_TIMEOUT: Duration = Duration::from_secs(600);
const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(60);

/// The attributes the resource and the data source compute alike.
pub(crate) fn observed_attributes() -> Vec<Attribute> {
    vec![
        Attribute::string("id").computed().keep_on_update().describe("URL of the cluster's API server."),
        Attribute::string("host").computed().describe("URL of the cluster's API server (as `id`)."),
        Attribute::string("server_version")
            .computed()
            .describe("The API server's version (`gitVersion` of `/version`), e.g. `v1.30.4` or `v1.30.4+k3s1`."),
        Attribute::bool("readyz").computed().describe("Whether the API server's `/readyz` answered ok."),
        Attribute::string("readyz_detail")
            .computed()
            .describe("`ok`, or the failing checks of `/readyz?verbose` (one per line, e.g. `[-]etcd failed: reason withheld`)."),
        Attribute::new("nodes", AttributeType::Plain(nodes_type())).computed().describe(
            "The nodes (those matching `node_selector`), by name: `roles` (from the `node-role.kubernetes.io/<role>` \
             labels), `kubelet_version`, `ready` (the Ready condition is True) and `reason` (the Ready condition's \
             reason, e.g. `KubeletReady` or `KubeletNotReady`).",
        ),
        Attribute::string_map("connection").computed().sensitive().describe(
            "The connection to this cluster as a map for the `cluster` attribute of every Kubernetes resource of this \
             provider: `host`, and the credentials in the form they were given (`token`, `client_certificate`/`client_key`, \
             `cluster_ca_certificate`; a credential plugin stays `exec_*`, a kubeconfig file stays `config_path` and \
             `context`).",
        ),
    ]
}

pub(crate) fn node_selector_attribute() -> Attribute {
    Attribute::string("node_selector").optional().describe(
        "A label selector (e.g. `node-role.kubernetes.io/worker` or `pool in (a,b)`): only these nodes are reported \
         and waited for. Unset: all nodes.",
    )
}

fn nodes_type() -> Type {
    Type::map(Type::object([
        ("roles", Type::list(Type::String)),
        ("kubelet_version", Type::String),
        ("ready", Type::Bool),
        ("reason", Type::String),
    ]))
}

pub(crate) fn node_selector(config: &Value) -> Option<String> {
    config.get_attr("node_selector").and_then(Value::as_str).map(str::to_string)
}

/// `node_selector` must be a selector when known; the API server checks the rest.
pub(crate) fn validate_node_selector(config: &Value, diags: &mut Diagnostics) {
    if let Some(selector) = node_selector(config) {
        if selector.trim().is_empty() {
            diags.error_at(
                AttributePath::root("node_selector"),
                "Invalid node_selector",
                "`node_selector` must be a label selector such as \"pool=workers\"; leave it unset for all nodes.",
            );
        }
    }
}

/// The cluster's URL as `id` and `host` show it.
fn server_url(cluster: &Cluster) -> String {
    cluster.url.trim_end_matches('/').to_string()
}

/// Writes what was observed (and the connection) into `state`.
pub(crate) fn record(
    state: &mut Value,
    cluster: &Cluster,
    health: &ClusterHealth,
    connection: BTreeMap<String, String>,
) {
    let url = server_url(cluster);
    state.set_attr("id", Value::String(url.clone()));
    state.set_attr("host", Value::String(url));
    state.set_attr("server_version", Value::String(health.server_version.clone()));
    state.set_attr("readyz", Value::Bool(health.readyz.ok));
    state.set_attr("readyz_detail", Value::String(health.readyz.detail.clone()));
    let nodes = health.nodes.iter().map(|node| {
        let roles = node.roles.iter().cloned().map(Value::String).collect();
        let object = Value::object([
            ("roles", Value::List(roles)),
            ("kubelet_version", Value::String(node.kubelet_version.clone())),
            ("ready", Value::Bool(node.ready)),
            ("reason", Value::String(node.reason.clone())),
        ]);
        (node.name.clone(), object)
    });
    state.set_attr("nodes", Value::map(nodes));
    state.set_attr("connection", Value::map(connection.into_iter().map(|(k, v)| (k, Value::String(v)))));
}

/// The `connection` map for the connection `state` uses (its `cluster`, else the
/// provider's), talking to `cluster`.
pub(crate) async fn connection_of(
    platform: &Platform,
    state: &Value,
    cluster: &Cluster,
) -> Result<BTreeMap<String, String>, Diagnostic> {
    let spec = platform.connection_spec(state.get_attr("cluster"))?;
    connection_attribute(&spec, &cluster.url)
        .await
        .map_err(|e| kube_diagnostic("Could not describe the cluster connection", &e))
}

/// Looks at the cluster once, within `timeout`, and fills in `state`.
pub(crate) async fn observe_into(
    platform: &Platform,
    ctx: &Context,
    state: &mut Value,
    timeout: Duration,
    diags: &mut Diagnostics,
) -> Option<()> {
    let cluster = platform.cluster(state.get_attr("cluster")).await.map_err(|d| diags.push(d)).ok()?;
    let selector = node_selector(state);
    let observed = Deadline::after(timeout, ctx.stop.clone()).run(observe(&cluster, selector.as_deref())).await;
    let health = match observed {
        Ok(health) => health,
        Err(e) => {
            diags.push(kube_diagnostic(&format!("Could not read the cluster at {}", server_url(&cluster)), &e));
            return None;
        }
    };
    let connection = connection_of(platform, state, &cluster).await.map_err(|d| diags.push(d)).ok()?;
    record(state, &cluster, &health, connection);
    Some(())
}

pub struct ClusterResource {
    platform: Arc<Platform>,
}

impl ClusterResource {
    pub fn new(platform: Arc<Platform>) -> Self {
        ClusterResource { platform }
    }

    /// Create and update: wait until healthy (unless `wait_healthy = false`), then record.
    async fn adopt(&self, ctx: &Context, planned: &Value, operation: &str, diags: &mut Diagnostics) -> Option<Value> {
        let timeout = timeouts::timeout(planned, operation, DEFAULT_WAIT_TIMEOUT);
        let mut state = planned.clone();
        if planned.get_attr("wait_healthy").and_then(Value::as_bool) == Some(false) {
            observe_into(&self.platform, ctx, &mut state, timeout, diags).await?;
            return Some(state);
        }
        let cluster = self.platform.cluster(planned.get_attr("cluster")).await.map_err(|d| diags.push(d)).ok()?;
        let gate = HealthGate {
            min_nodes: planned.get_attr("min_nodes").and_then(Value::as_i64).and_then(|n| usize::try_from(n).ok()),
            node_selector: node_selector(planned),
        };
        let deadline = Deadline::after(timeout, ctx.stop.clone());
        let health = match wait_healthy(&cluster, &deadline, &gate).await {
            Ok(health) => health,
            Err(HealthError::Kube(e)) => {
                diags.push(kube_diagnostic(&format!("Could not check the cluster at {}", server_url(&cluster)), &e));
                return None;
            }
            Err(HealthError::Unhealthy { error, last }) => {
                diags.push(unhealthy(&cluster, &gate, operation, &error, last.as_deref()));
                return None;
            }
        };
        let connection = connection_of(&self.platform, planned, &cluster).await.map_err(|d| diags.push(d)).ok()?;
        record(&mut state, &cluster, &health, connection);
        Some(state)
    }
}

/// The health gate ran out: what was still wrong, node by node and check by check.
fn unhealthy(
    cluster: &Cluster,
    gate: &HealthGate,
    operation: &str,
    error: &WaitError,
    last: Option<&ClusterHealth>,
) -> Diagnostic {
    let problems = match last {
        Some(health) => health.problems(gate).iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"),
        None => format!("  - {}", error.last_status()),
    };
    let url = server_url(cluster);
    match error {
        WaitError::TimedOut { waited, .. } => Diagnostic::error(
            "Cluster not healthy",
            format!(
                "The cluster at {url} was not healthy after {}:\n{problems}\n\nRaise timeouts.{operation} if it is still \
                 coming up, set `node_selector` or `min_nodes` to the nodes that matter, or set `wait_healthy = false` \
                 to adopt it as it is.",
                humantime::format_duration(*waited)
            ),
        ),
        _ => Diagnostic::error("Cluster not healthy", format!("Waiting for the cluster at {url}: {error}\n{problems}")),
    }
}

#[async_trait]
impl Resource for ClusterResource {
    fn type_name(&self) -> &'static str {
        "platform_cluster"
    }

    fn schema(&self) -> Schema {
        let mut attributes = vec![
            cluster_attribute(),
            node_selector_attribute(),
            Attribute::bool("wait_healthy").optional().describe(
                "Wait at create and update until every node (matching `node_selector`) is Ready and `/readyz` answers \
                 ok, failing after the `create`/`update` timeout with the unready nodes and failing checks named. \
                 Default true.",
            ),
            Attribute::number("min_nodes").optional().describe(
                "With `wait_healthy`, also wait until at least this many nodes (matching `node_selector`) exist.",
            ),
        ];
        attributes.extend(observed_attributes());
        Schema::new(Block::new(attributes).with_block(timeouts_block(&["create", "update", "read"])).describe(
            "An existing Kubernetes cluster this provider did not bootstrap (Talos, kind, a managed cluster), adopted to \
             report its health and pass on its `connection`. Create and update wait until the cluster is healthy (all \
             nodes Ready and `/readyz` ok, see `wait_healthy`), so that resources depending on it start only on a \
             healthy cluster. Refresh reads the version, nodes and `/readyz` again. Nothing in the cluster is ever \
             changed: destroy only forgets it. Import with the API server's URL (or any name), using the provider's \
             `kubernetes` block.",
        ))
    }

    fn validate(&self, config: &Value, diags: &mut Diagnostics) {
        validate_cluster_attribute(config, diags);
        validate_node_selector(config, diags);
        timeouts::validate(config, &["create", "update", "read"], diags);
        if let Some(n) = config.get_attr("min_nodes").and_then(Value::as_number) {
            if n.as_i64().is_none_or(|n| n < 0) {
                diags.error_at(
                    AttributePath::root("min_nodes"),
                    "Invalid min_nodes",
                    "`min_nodes` must be a whole number, 0 or more.",
                );
            }
        }
    }

    async fn modify_plan(&self, _ctx: &Context, plan: &mut Plan, _diags: &mut Diagnostics) {
        // The same connection reaches the same cluster: its URL and `connection` stay known,
        // so that an update of the gate does not ripple into the resources using it.
        if !plan.is_create() && plan.planned.get_attr("cluster") == plan.prior.get_attr("cluster") {
            for name in ["id", "host", "connection"] {
                if let Some(prior) = plan.prior.get_attr(name) {
                    plan.planned.set_attr(name, prior.clone());
                }
            }
        }
    }

    async fn create(&self, ctx: &Context, planned: &Value, _config: &Value, diags: &mut Diagnostics) -> Option<Value> {
        self.adopt(ctx, planned, "create", diags).await
    }

    async fn read(&self, ctx: &Context, state: &Value, diags: &mut Diagnostics) -> Option<Value> {
        let timeout = timeouts::timeout(state, "read", DEFAULT_READ_TIMEOUT);
        let mut next = state.clone();
        // A cluster cannot be seen to be gone: a failure keeps the state and says why.
        match observe_into(&self.platform, ctx, &mut next, timeout, diags).await {
            Some(()) => Some(next),
            None => Some(state.clone()),
        }
    }

    async fn update(
        &self,
        ctx: &Context,
        _prior: &Value,
        planned: &Value,
        _config: &Value,
        diags: &mut Diagnostics,
    ) -> Option<Value> {
        self.adopt(ctx, planned, "update", diags).await
    }

    async fn delete(&self, _ctx: &Context, prior: &Value, _diags: &mut Diagnostics) {
        let id = prior.get_attr("id").and_then(Value::as_str).unwrap_or_default();
        tracing::info!(cluster = %id, "forgetting the cluster; nothing in it is changed");
    }

    async fn import(&self, ctx: &Context, id: &str, diags: &mut Diagnostics) -> Option<Value> {
        let mut state = Value::null_object(&self.schema().implied_type());
        let cluster = self.platform.cluster(None).await.map_err(|d| diags.push(d)).ok()?;
        let url = server_url(&cluster);
        if id.contains("://") && id.trim_end_matches('/') != url {
            diags.error(
                "Import id names another cluster",
                format!(
                    "The provider's `kubernetes` block connects to {url}, not {id:?}. Import with that URL (or any \
                     name), with the provider configured for the cluster to adopt."
                ),
            );
            return None;
        }
        observe_into(&self.platform, ctx, &mut state, DEFAULT_READ_TIMEOUT, diags).await?;
        Some(state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::engine::plan_defaults;

    #[test]
    fn an_update_of_the_gate_keeps_the_connection_known() {
        let resource = ClusterResource::new(Arc::default());
        let schema = resource.schema();
        let mut prior = Value::null_object(&schema.implied_type());
        prior.set_attr("id", Value::string("https://k:6443"));
        prior.set_attr("host", Value::string("https://k:6443"));
        prior.set_attr("connection", Value::map([("host", Value::string("https://k:6443"))]));
        prior.set_attr("server_version", Value::string("v1.20.2"));
        let mut proposed = prior.clone();
        proposed.set_attr("min_nodes", Value::number(2));
        let mut config = Value::null_object(&schema.implied_type());
        config.set_attr("min_nodes", Value::number(2));
        let mut plan = plan_defaults(&schema, &prior, &proposed, &config);
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(resource.modify_plan(&Context::default(), &mut plan, &mut Diagnostics::new()));
        assert_eq!(plan.planned.get_attr("connection"), prior.get_attr("connection"));
        assert_eq!(plan.planned.get_attr("host"), prior.get_attr("host"));
        assert!(plan.planned.get_attr("server_version").is_some_and(Value::is_unknown));
        assert!(plan.requires_replace.is_empty());
    }
}
