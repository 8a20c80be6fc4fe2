//! The health of a running cluster as a stack needs it before it starts: the API server's
//! version, the nodes (roles, kubelet version, Ready), and `/readyz`; and a wait until all
//! nodes are Ready and `/readyz` answers ok. Nothing here knows Terraform: the
//! `platform_cluster` resource and data source and the k3s cluster resource share it.
//!
//! Everything runs under the caller's [`Deadline`] (see [`Deadline::run`]): [`observe`] is
//! one look, [`wait_healthy`] polls [`observe`] until the cluster passes the [`HealthGate`].

use std::sync::Mutex;
use std::time::Duration;

use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, ListParams};

use crate::clients::deadline::{Deadline, Progress, WaitError};
use crate::clients::kube::nodes::{node_health, readyz};
pub use crate::clients::kube::nodes::{NodeHealth, Readyz};
use crate::clients::kube::{Cluster, KubeError};

/// How often [`wait_healthy`] looks again.
const POLL_INTERVAL: Duration = Duration::from_secs(2);

/// One look at a cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterHealth {
    /// The API server's `gitVersion`, e.g. `v1.20.2` (or `v1.30.4+k3s1`).
    pub server_version: String,
    /// The nodes looked at (those matching the gate's selector), by name.
    pub nodes: Vec<NodeHealth>,
    pub readyz: Readyz,
}

impl ClusterHealth {
    pub fn unready_nodes(&self) -> impl Iterator<Item = &NodeHealth> {
        self.nodes.iter().filter(|n| !n.ready)
    }

    /// What keeps the cluster from passing `gate`; empty when it passes.
    pub fn problems(&self, gate: &HealthGate) -> Vec<String> {
        let mut problems = Vec::new();
        let scope = gate.node_selector.as_deref().map(|s| format!(" matching {s:?}")).unwrap_or_default();
        if let Some(min) = gate.min_nodes {
            if self.nodes.len() < min {
                problems.push(format!("{} of at least {min} nodes{scope} registered", self.nodes.len()));
            }
        }
        let unready: Vec<String> = self.unready_nodes().map(NodeHealth::describe).collect();
        if !unready.is_empty() {
            problems.push(format!(
                "{} of {} nodes{scope} not Ready: {}",
                unready.len(),
                self.nodes.len(),
                unready.join(", ")
            ));
        }
        if !self.readyz.ok {
            problems.push(format!("/readyz failing: {}", self.readyz.detail.lines().collect::<Vec<_>>().join("; ")));
        }
        problems
    }

    pub fn is_healthy(&self, gate: &HealthGate) -> bool {
        self.problems(gate).is_empty()
    }
}

/// What "healthy" means for [`wait_healthy`]: every node (matching `node_selector`) Ready,
/// at least `min_nodes` of them, and `/readyz` ok.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HealthGate {
    pub min_nodes: Option<usize>,
    /// A label selector (`role=worker,zone in (a,b)`): only these nodes are looked at.
    pub node_selector: Option<String>,
}

impl HealthGate {
    pub fn min_nodes(mut self, min_nodes: usize) -> Self {
        self.min_nodes = Some(min_nodes);
        self
    }
    pub fn node_selector(mut self, selector: impl Into<String>) -> Self {
        self.node_selector = Some(selector.into());
        self
    }
}

/// Why [`wait_healthy`] gave up.
#[derive(Debug, thiserror::Error)]
pub enum HealthError {
    /// A failure waiting cannot fix (credentials, RBAC, a bad selector).
    #[error("{0}")]
    Kube(KubeError),
    /// Timed out or cancelled; the message names the unready nodes and failing checks.
    #[error("{error}")]
    Unhealthy { error: WaitError, last: Option<Box<ClusterHealth>> },
}

/// Looks at the cluster once: `/version`, the nodes matching `node_selector`, `/readyz`.
/// Runs under the current [`Deadline`]; a failing `/readyz` is an answer, not an error.
pub async fn observe(cluster: &Cluster, node_selector: Option<&str>) -> Result<ClusterHealth, KubeError> {
    let version = cluster.client.apiserver_version().await.map_err(|e| cluster.error(e))?;
    let api: Api<Node> = Api::all(cluster.client.clone());
    let mut params = ListParams::default();
    if let Some(selector) = node_selector.filter(|s| !s.trim().is_empty()) {
        params = params.labels(selector);
    }
    let list = api.list(&params).await.map_err(|e| cluster.error(e))?;
    let mut nodes: Vec<NodeHealth> = list.items.iter().map(node_health).collect();
    nodes.sort_by(|a, b| a.name.cmp(&b.name));
    let readyz = readyz(cluster).await?;
    Ok(ClusterHealth { server_version: version.git_version, nodes, readyz })
}

/// Polls [`observe`] every 2 s until the cluster passes `gate` or `deadline` passes (or is
/// cancelled). The timeout message names the unready nodes and the failing `/readyz`
/// checks; transient failures are retried (and quoted if they are the last status).
pub async fn wait_healthy(
    cluster: &Cluster,
    deadline: &Deadline,
    gate: &HealthGate,
) -> Result<ClusterHealth, HealthError> {
    let last: Mutex<Option<ClusterHealth>> = Mutex::new(None);
    let fatal: Mutex<Option<KubeError>> = Mutex::new(None);
    let what = match &gate.node_selector {
        Some(selector) => format!("the cluster to be healthy (nodes matching {selector:?} Ready, /readyz ok)"),
        None => "the cluster to be healthy (all nodes Ready, /readyz ok)".to_string(),
    };
    let waited = deadline
        .poll(&what, POLL_INTERVAL, || async {
            match observe(cluster, gate.node_selector.as_deref()).await {
                Ok(health) => {
                    let problems = health.problems(gate);
                    *last.lock().expect("health lock") = Some(health);
                    Ok(if problems.is_empty() { Progress::Done } else { Progress::Pending(problems.join("; ")) })
                }
                Err(e) if e.is_permanent() => {
                    let message = e.to_string();
                    *fatal.lock().expect("fatal lock") = Some(e);
                    Ok(Progress::Failed(message))
                }
                Err(e) => Err(e),
            }
        })
        .await;
    let last = last.into_inner().expect("health lock");
    match waited {
        Ok(()) => Ok(last.expect("a passing check recorded its health")),
        Err(error) => match fatal.into_inner().expect("fatal lock") {
            Some(e) => Err(HealthError::Kube(e)),
            None => Err(HealthError::Unhealthy { error, last: last.map(Box::new) }),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(json: serde_json::Value) -> NodeHealth {
        node_health(&serde_json::from_value(json).unwrap())
    }

    #[test]
    fn a_node_reports_roles_version_and_readiness() {
        let n = node(serde_json::json!({
            "metadata": { "name": "cp-1", "labels": {
                "node-role.kubernetes.io/control-plane": "", "node-role.kubernetes.io/master": "true",
                "kubernetes.io/role": "etcd", "kubernetes.io/hostname": "cp-1" } },
            "status": { "nodeInfo": { "kubeletVersion": "v1.30.4+k3s1", "machineID": "", "systemUUID": "", "bootID": "",
                "kernelVersion": "", "osImage": "", "containerRuntimeVersion": "", "kubeProxyVersion": "",
                "operatingSystem": "linux", "architecture": "amd64" },
                "conditions": [
                    { "type": "MemoryPressure", "status": "False" },
                    { "type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status" } ] }
        }));
        assert_eq!(n.roles, ["control-plane", "etcd", "master"]);
        assert_eq!(n.kubelet_version, "v1.30.4+k3s1");
        assert!(n.ready);
        let bare = node(serde_json::json!({ "metadata": { "name": "w" } }));
        assert!(!bare.ready && bare.roles.is_empty() && bare.kubelet_version.is_empty());
        assert_eq!(bare.describe(), "w (NoReadyCondition: the node reports no Ready condition)");
    }

    #[test]
    fn problems_name_unready_nodes_missing_nodes_and_failing_checks() {
        let unready = NodeHealth {
            name: "w-2".into(),
            roles: vec![],
            kubelet_version: "v1.20.2".into(),
            ready: false,
            reason: "KubeletNotReady".into(),
            message: "PLEG is not healthy".into(),
        };
        let ready = NodeHealth { name: "w-1".into(), ready: true, reason: "KubeletReady".into(), ..unready.clone() };
        let health = ClusterHealth {
            server_version: "v1.20.2".into(),
            nodes: vec![ready.clone(), unready],
            readyz: Readyz { ok: false, detail: "[-]etcd failed: reason withheld\n[-]informer-sync failed".into() },
        };
        let problems = health.problems(&HealthGate::default().min_nodes(3).node_selector("pool=a"));
        assert_eq!(
            problems,
            [
                "2 of at least 3 nodes matching \"pool=a\" registered",
                "1 of 2 nodes matching \"pool=a\" not Ready: w-2 (KubeletNotReady: PLEG is not healthy)",
                "/readyz failing: [-]etcd failed: reason withheld; [-]informer-sync failed",
            ]
        );
        let healthy = ClusterHealth { nodes: vec![ready], readyz: Readyz { ok: true, detail: "ok".into() }, ..health };
        assert!(healthy.is_healthy(&HealthGate::default().min_nodes(1)));
        assert!(!healthy.is_healthy(&HealthGate::default().min_nodes(2)));
    }

}
