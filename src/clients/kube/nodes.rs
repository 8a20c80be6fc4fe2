//! Nodes as a cluster operator handles them: their readiness and kubelet version, cordon
//! and uncordon, drain (evictions that respect PodDisruptionBudgets), removal, and the API
//! server's `/readyz`.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};

use super::{Cluster, KubeError};
use crate::clients::deadline::{Deadline, Progress, WaitError};

/// What matters of one Node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeStatus {
    pub name: String,
    pub ready: bool,
    /// The Ready condition's reason and message, or "no Ready condition".
    pub ready_detail: String,
    pub kubelet_version: String,
    pub unschedulable: bool,
    pub internal_ip: Option<String>,
}

impl NodeStatus {
    pub fn from_node(node: &Node) -> NodeStatus {
        let status = node.status.as_ref();
        let ready = status.and_then(|s| s.conditions.as_ref()).and_then(|c| c.iter().find(|c| c.type_ == "Ready"));
        NodeStatus {
            name: node.metadata.name.clone().unwrap_or_default(),
            ready: ready.is_some_and(|c| c.status == "True"),
            ready_detail: match ready {
                Some(c) => format!(
                    "Ready={} {} {}",
                    c.status,
                    c.reason.as_deref().unwrap_or_default(),
                    c.message.as_deref().unwrap_or_default()
                )
                .trim()
                .to_string(),
                None => "no Ready condition".to_string(),
            },
            kubelet_version: status
                .and_then(|s| s.node_info.as_ref())
                .map(|i| i.kubelet_version.clone())
                .unwrap_or_default(),
            unschedulable: node.spec.as_ref().and_then(|s| s.unschedulable).unwrap_or(false),
            internal_ip: status
                .and_then(|s| s.addresses.as_ref())
                .and_then(|a| a.iter().find(|a| a.type_ == "InternalIP"))
                .map(|a| a.address.clone()),
        }
    }
}

impl Cluster {
    fn nodes_api(&self) -> Api<Node> {
        Api::all(self.client.clone())
    }

    pub async fn node_status(&self, name: &str) -> Result<Option<NodeStatus>, KubeError> {
        Ok(self.get_opt(&self.nodes_api(), name).await?.as_ref().map(NodeStatus::from_node))
    }

    pub async fn node_statuses(&self) -> Result<Vec<NodeStatus>, KubeError> {
        let list = self.nodes_api().list(&ListParams::default()).await.map_err(|e| self.error(e))?;
        Ok(list.items.iter().map(NodeStatus::from_node).collect())
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

    /// The server's `/readyz`: `Ok(None)` when ready, else the failing checks.
    pub async fn readyz(&self) -> Result<Option<String>, KubeError> {
        let request =
            http::Request::get("/readyz?verbose").body(Vec::new()).map_err(|e| KubeError::Config(e.to_string()))?;
        match self.client.request_text(request).await {
            Ok(_) => Ok(None),
            Err(kube::Error::Api(status)) if status.code == 500 => Ok(Some(failing_checks(&status.message))),
            Err(e) => Err(self.error(e)),
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

/// The `[-]check failed: reason` lines of a verbose `/readyz` answer.
fn failing_checks(text: &str) -> String {
    let failed: Vec<&str> = text.lines().map(str::trim).filter(|l| l.starts_with("[-]")).collect();
    if failed.is_empty() {
        text.trim().to_string()
    } else {
        failed.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_only_failing_checks() {
        let text = "[+]ping ok\n[-]etcd failed: reason withheld\n[+]log ok\nreadyz check failed";
        assert_eq!(failing_checks(text), "[-]etcd failed: reason withheld");
        assert_eq!(failing_checks("  something else  "), "something else");
    }

    #[test]
    fn reads_node_status() {
        let node: Node = serde_json::from_value(serde_json::json!({
            "metadata": { "name": "s1" },
            "spec": { "unschedulable": true },
            "status": {
                "conditions": [{ "type": "Ready", "status": "False", "reason": "KubeletNotReady", "message": "stopped" }],
                "nodeInfo": { "kubeletVersion": "v1.29.1+k3s2", "architecture": "", "bootID": "", "containerRuntimeVersion": "",
                    "kernelVersion": "", "kubeProxyVersion": "", "machineID": "", "operatingSystem": "", "osImage": "", "systemUUID": "" },
                "addresses": [{ "type": "InternalIP", "address": "10.0.0.11" }]
            }
        }))
        .unwrap();
        let status = NodeStatus::from_node(&node);
        assert!(!status.ready && status.unschedulable);
        assert_eq!(status.ready_detail, "Ready=False KubeletNotReady stopped");
        assert_eq!(status.kubelet_version, "v1.29.1+k3s2");
        assert_eq!(status.internal_ip.as_deref(), Some("10.0.0.11"));
    }
}
