//! The health of a running cluster as a stack needs it before it starts: the API server's
//! version, the nodes (roles, kubelet version, Ready), and `/readyz`; and a wait until all
//! nodes are Ready and `/readyz` answers ok. Nothing here knows Terraform: the
//! `platform_cluster` resource and data source and the k3s cluster resource share it.
//!
//! Everything runs under the caller's [`Deadline`] (see [`Deadline::run`]): [`observe`] is
//! one look, [`wait_healthy`] polls [`observe`] until the cluster passes the [`HealthGate`].

use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, ListParams};
use tokio_util::sync::CancellationToken;

use crate::clients::deadline::{Deadline, Progress, WaitError};
use crate::clients::kube::{Cluster, KubeError};

/// How often [`wait_healthy`] looks again.
const POLL_INTERVAL: Duration = Duration::from_secs(2);
/// How long one `/readyz` request may take, retries of a failing (500) answer included:
/// a failing check is an answer, not something to retry for the whole deadline.
const PROBE_BUDGET: Duration = Duration::from_secs(3);
/// The label prefix kubeadm, k3s, Talos and managed clusters mark node roles with.
const ROLE_LABEL_PREFIX: &str = "node-role.kubernetes.io/";
/// The older single role label some installers still set.
const LEGACY_ROLE_LABEL: &str = "kubernetes.io/role";

/// One node as [`observe`] saw it.
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

fn node_health(node: &Node) -> NodeHealth {
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
async fn readyz(cluster: &Cluster) -> Result<Readyz, KubeError> {
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

    #[test]
    fn failing_checks_keep_only_the_failed_lines() {
        let body = "[+]ping ok\n[-]etcd failed: reason withheld\n[+]log ok\nreadyz check failed\n";
        assert_eq!(failing_checks(500, body), "[-]etcd failed: reason withheld");
        assert_eq!(failing_checks(502, "Bad Gateway"), "HTTP 502: Bad Gateway");
    }
}
