//! Nodes as a cluster operator sees and handles them: roles, kubelet version and readiness
//! ([`NodeHealth`]), the API server's `/readyz` ([`readyz`]), cordon and uncordon, drain
//! (evictions that respect PodDisruptionBudgets) and removal.

use std::fmt;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use tokio_util::sync::CancellationToken;

use super::{Cluster, KubeError};
use crate::clients::deadline::{Deadline, Progress, WaitError};

/// How long one `/readyz` request may take, retries of a failing (500) answer included:
/// a failing check is an answer, not something to retry for the whole deadline.
const PROBE_BUDGET: Duration = Duration::from_secs(3);
/// The label prefix kubeadm, k3s, Talos and managed clusters mark node roles with.
const ROLE_LABEL_PREFIX: &str = "node-role.kubernetes.io/";
/// The older single role label some installers still set.
const LEGACY_ROLE_LABEL: &str = "kubernetes.io/role";

/// One node: roles, kubelet version, readiness.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeHealth {
    pub name: String,
    /// From the `node-role.kubernetes.io/<role>` labels (and `kubernetes.io/role`), sorted.
    pub roles: Vec<String>,
    /// `status.nodeInfo.kubeletVersion`, e.g. `v1.20.2` (empty before the kubelet reports).
    pub kubelet_version: String,
    /// The `Ready` condition is `True`.
    pub ready: bool,
    /// The `Ready` condition's reason (e.g. `KubeletReady`, `KubeletNotReady`,
    /// `NodeStatusUnknown`), or `NoReadyCondition` when the node reports none.
    pub reason: String,
    /// The `Ready` condition's message.
    pub message: String,
}

impl NodeHealth {
    /// `name (reason: message)`, for messages about unready nodes.
    pub fn describe(&self) -> String {
        match (self.reason.is_empty(), self.message.is_empty()) {
            (true, true) => self.name.clone(),
            (false, true) => format!("{} ({})", self.name, self.reason),
            (true, false) => format!("{} ({})", self.name, self.message),
            (false, false) => format!("{} ({}: {})", self.name, self.reason, self.message),
        }
    }
}

/// What `/readyz?verbose` said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readyz {
    pub ok: bool,
    /// `ok`, or the failing checks (the `[-]` lines), or why there was no usable answer.
    pub detail: String,
}

pub fn node_health(node: &Node) -> NodeHealth {
    let labels = node.metadata.labels.clone().unwrap_or_default();
    let mut roles: Vec<String> = labels
        .keys()
        .filter_map(|k| k.strip_prefix(ROLE_LABEL_PREFIX))
        .filter(|role| !role.is_empty())
        .map(str::to_string)
        .collect();
    if let Some(role) = labels.get(LEGACY_ROLE_LABEL).filter(|r| !r.is_empty()) {
        roles.push(role.clone());
    }
    roles.sort();
    roles.dedup();
    let status = node.status.as_ref();
    let kubelet_version =
        status.and_then(|s| s.node_info.as_ref()).map(|i| i.kubelet_version.clone()).unwrap_or_default();
    let ready_condition = status
        .and_then(|s| s.conditions.as_ref())
        .and_then(|conditions| conditions.iter().find(|c| c.type_ == "Ready"));
    let (ready, reason, message) = match ready_condition {
        Some(c) => (c.status == "True", c.reason.clone().unwrap_or_default(), c.message.clone().unwrap_or_default()),
        None => (false, "NoReadyCondition".to_string(), "the node reports no Ready condition".to_string()),
    };
    NodeHealth { name: node.metadata.name.clone().unwrap_or_default(), roles, kubelet_version, ready, reason, message }
}

/// `/readyz?verbose`, or `/healthz?verbose` on servers older than 1.16 that lack it.
pub async fn readyz(cluster: &Cluster) -> Result<Readyz, KubeError> {
    match probe(cluster, "/readyz?verbose").await? {
        Some(answer) => Ok(answer),
        None => Ok(probe(cluster, "/healthz?verbose")
            .await?
            .unwrap_or(Readyz { ok: false, detail: "the API server serves neither /readyz nor /healthz".into() })),
    }
}

/// One health endpoint; `None` when the server does not serve it (404).
async fn probe(cluster: &Cluster, path: &str) -> Result<Option<Readyz>, KubeError> {
    let outer = Deadline::current();
    // Its own short deadline, so that the retry layer gives up on a 500 quickly; bounded by
    // the operation's, whose expiry and cancellation still end it.
    let inner = Deadline::after(PROBE_BUDGET.min(outer.remaining()), CancellationToken::new());
    let request = http::Request::get(path)
        .body(kube::client::Body::from(Vec::new()))
        .map_err(|e| KubeError::Config(format!("cannot build the request for {path}: {e}")))?;
    let sent = outer
        .within(inner.run(async {
            let response = cluster.client.send(request).await.map_err(|e| cluster.error(e))?;
            let status = response.status();
            let body = response.into_body().collect_bytes().await.map_err(|e| cluster.error(e))?;
            Ok::<_, KubeError>((status, String::from_utf8_lossy(&body).into_owned()))
        }))
        .await;
    let (status, body) = match sent {
        Ok(answer) => answer,
        Err(KubeError::Timeout(_)) if outer.check().is_ok() => {
            return Ok(Some(Readyz {
                ok: false,
                detail: format!("{path} did not answer within {}", humantime::format_duration(inner.budget())),
            }))
        }
        Err(e) => return Err(e),
    };
    match status.as_u16() {
        200..=299 => Ok(Some(Readyz { ok: true, detail: "ok".into() })),
        404 => Ok(None),
        401 | 403 => Err(cluster.error(kube::Error::Api(Box::new(
            kube::core::Status::failure(body.trim(), status.canonical_reason().unwrap_or(""))
                .with_code(status.as_u16()),
        )))),
        code => Ok(Some(Readyz { ok: false, detail: failing_checks(code, &body) })),
    }
}

/// The `[-]` lines of a verbose health answer (`[-]etcd failed: reason withheld`), else
/// its status and text.
fn failing_checks(code: u16, body: &str) -> String {
    let failing: Vec<&str> = body.lines().map(str::trim).filter(|l| l.starts_with("[-]")).collect();
    if failing.is_empty() {
        format!("HTTP {code}: {}", body.trim())
    } else {
        failing.join("\n")
    }
}

impl fmt::Display for NodeHealth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

impl Cluster {
    fn nodes_api(&self) -> Api<Node> {
        Api::all(self.client.clone())
    }

    /// The node `name`, `None` when the API server says it does not exist.
    pub async fn node(&self, name: &str) -> Result<Option<NodeHealth>, KubeError> {
        Ok(self.get_opt(&self.nodes_api(), name).await?.as_ref().map(node_health))
    }

    /// Every node of the cluster.
    pub async fn nodes(&self) -> Result<Vec<NodeHealth>, KubeError> {
        let list = self.nodes_api().list(&ListParams::default()).await.map_err(|e| self.error(e))?;
        Ok(list.items.iter().map(node_health).collect())
    }

    /// Marks the node (un)schedulable.
    pub async fn cordon(&self, name: &str, unschedulable: bool) -> Result<(), KubeError> {
        let patch = serde_json::json!({ "spec": { "unschedulable": unschedulable } });
        self.nodes_api()
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(|e| self.error(e))?;
        Ok(())
    }

    /// Deletes the Node object; `false` when it was already gone.
    pub async fn delete_node(&self, name: &str) -> Result<bool, KubeError> {
        match self.nodes_api().delete(name, &DeleteParams::default()).await {
            Ok(_) => Ok(true),
            Err(e) => match self.error(e) {
                e if e.is_not_found() => Ok(false),
                e => Err(e),
            },
        }
    }

    /// The pods a drain must move off `node`: everything bound to it except DaemonSet
    /// pods and static (mirror) pods, which stay with the node.
    async fn drainable_pods(&self, node: &str) -> Result<Vec<Pod>, KubeError> {
        let params = ListParams::default().fields(&format!("spec.nodeName={node}"));
        let pods = Api::<Pod>::all(self.client.clone()).list(&params).await.map_err(|e| self.error(e))?;
        Ok(pods
            .items
            .into_iter()
            .filter(|p| {
                let daemon = p.metadata.owner_references.iter().flatten().any(|o| o.kind == "DaemonSet");
                let mirror =
                    p.metadata.annotations.as_ref().is_some_and(|a| a.contains_key("kubernetes.io/config.mirror"));
                let finished = p
                    .status
                    .as_ref()
                    .and_then(|s| s.phase.as_deref())
                    .is_some_and(|ph| ph == "Succeeded" || ph == "Failed");
                !daemon && !mirror && !finished
            })
            .collect())
    }

    /// Evicts one pod; `Ok(false)` when a PodDisruptionBudget does not allow it yet (429).
    async fn evict(&self, pod: &Pod) -> Result<bool, KubeError> {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let namespace = pod.metadata.namespace.clone().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &namespace);
        // policy/v1 first; API servers before 1.22 only know the v1beta1 Eviction body.
        for version in ["policy/v1", "policy/v1beta1"] {
            let body = serde_json::json!({
                "apiVersion": version,
                "kind": "Eviction",
                "metadata": { "name": name, "namespace": namespace },
            });
            match api.create_subresource::<_, serde_json::Value>("eviction", &name, &PostParams::default(), &body).await
            {
                Ok(_) => return Ok(true),
                Err(kube::Error::Api(status)) if status.code == 429 => return Ok(false),
                Err(e) => match self.error(e) {
                    e if e.is_not_found() => return Ok(true),
                    KubeError::Api { code: 400 | 404, .. } if version == "policy/v1" => continue,
                    e => return Err(e),
                },
            }
        }
        Ok(false)
    }

    /// Evicts the pods left on `node` (cordoned before), waiting until they are gone,
    /// within `deadline`.
    pub async fn drain(&self, node: &str, deadline: &Deadline) -> Result<(), WaitError> {
        let what = format!("node {node:?} to drain");
        deadline.poll(&what, Duration::from_secs(2), || async { Ok::<_, KubeError>(self.drain_step(node).await) }).await
    }

    /// One pass of a drain: evicts what can be evicted and says what is left.
    async fn drain_step(&self, node: &str) -> Progress {
        let pods = match self.drainable_pods(node).await {
            Ok(pods) => pods,
            Err(e) if e.is_permanent() => return Progress::Failed(e.to_string()),
            Err(e) => return Progress::Pending(e.to_string()),
        };
        if pods.is_empty() {
            return Progress::Done;
        }
        let mut left = Vec::new();
        for pod in &pods {
            let id = format!(
                "{}/{}",
                pod.metadata.namespace.as_deref().unwrap_or_default(),
                pod.metadata.name.as_deref().unwrap_or_default()
            );
            if pod.metadata.deletion_timestamp.is_some() {
                left.push(format!("{id} terminating"));
                continue;
            }
            match self.evict(pod).await {
                Ok(true) => left.push(format!("{id} evicted")),
                Ok(false) => left.push(format!("{id} blocked by a PodDisruptionBudget")),
                Err(e) if e.is_permanent() => return Progress::Failed(format!("evicting {id}: {e}")),
                Err(e) => left.push(format!("{id}: {e}")),
            }
        }
        tracing::debug!(node, pods = pods.len(), "draining");
        Progress::Pending(format!("{} pod(s) left: {}", pods.len(), left.join(", ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failing_checks_keep_only_the_failed_lines() {
        let body = "[+]ping ok\n[-]etcd failed: reason withheld\n[+]log ok\nreadyz check failed\n";
        assert_eq!(failing_checks(500, body), "[-]etcd failed: reason withheld");
        assert_eq!(failing_checks(502, "Bad Gateway"), "HTTP 502: Bad Gateway");
    }
}
