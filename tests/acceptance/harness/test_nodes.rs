//! Node objects registered through the API for tests of `platform_cluster` and of the
//! examples that start with one: the local control plane has no kubelets, so [`TestNodes`]
//! registers Nodes and keeps their status (Ready or not, kubelet version) fresh, as a
//! kubelet would, so that the node lifecycle controller does not mark them Unknown
//! meanwhile. Every user labels its nodes with a value of its own and looks only at those
//! (`node_selector`): tests run in parallel against one API server.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{cluster, kube_now, unique_name};

/// The label of the nodes of one test.
pub const TEST_LABEL: &str = "tf-acc.platform/cluster-test";

#[derive(Clone)]
struct NodeState {
    ready: bool,
    reason: String,
    message: String,
}

/// Nodes of one test, registered through the API, their status refreshed every 5 s (a
/// kubelet's heartbeat) while this lives, deleted when it is dropped.
pub struct TestNodes {
    selector_value: String,
    nodes: Arc<Mutex<BTreeMap<String, NodeState>>>,
    stop: Arc<AtomicBool>,
    heartbeat: Option<std::thread::JoinHandle<()>>,
}

fn post_status(name: &str, state: &NodeState) {
    let (status, reason) = (if state.ready { "True" } else { "False" }, state.reason.as_str());
    let now = kube_now();
    let patch = serde_json::json!({ "status": {
        "nodeInfo": { "kubeletVersion": "v1.20.2", "kubeProxyVersion": "v1.20.2", "operatingSystem": "linux",
            "architecture": "amd64", "machineID": "", "systemUUID": "", "bootID": "", "kernelVersion": "",
            "osImage": "", "containerRuntimeVersion": "" },
        "conditions": [{ "type": "Ready", "status": status, "reason": reason, "message": state.message,
            "lastHeartbeatTime": now, "lastTransitionTime": now }]
    }});
    let path = format!("/api/v1/nodes/{name}/status");
    let body = patch.to_string();
    let r = cluster().request("PATCH", &path, Some("application/merge-patch+json"), Some(body.as_bytes()));
    assert!(r.ok(), "PATCH {path}: HTTP {}: {}", r.status, r.body);
}

impl TestNodes {
    pub fn new() -> TestNodes {
        let nodes: Arc<Mutex<BTreeMap<String, NodeState>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let heartbeat = {
            let (nodes, stop) = (nodes.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut last = Instant::now();
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(100));
                    if last.elapsed() >= Duration::from_secs(5) {
                        last = Instant::now();
                        let current = nodes.lock().unwrap().clone();
                        for (name, state) in &current {
                            post_status(name, state);
                        }
                    }
                }
            })
        };
        TestNodes { selector_value: unique_name("cl"), nodes, stop, heartbeat: Some(heartbeat) }
    }

    /// The `node_selector` that picks exactly these nodes.
    pub fn selector(&self) -> String {
        format!("{TEST_LABEL}={}", self.selector_value)
    }

    /// Registers a node with `roles` (as `node-role.kubernetes.io/<role>` labels).
    pub fn add(&self, roles: &[&str], ready: bool) -> String {
        let name = unique_name("acc-node");
        let mut labels = serde_json::json!({ TEST_LABEL: self.selector_value });
        for role in roles {
            labels[format!("node-role.kubernetes.io/{role}")] = serde_json::json!("");
        }
        let node =
            serde_json::json!({ "apiVersion": "v1", "kind": "Node", "metadata": { "name": name, "labels": labels } });
        let body = node.to_string();
        let r = cluster().request("POST", "/api/v1/nodes", Some("application/json"), Some(body.as_bytes()));
        assert!(r.ok(), "POST node: HTTP {}: {}", r.status, r.body);
        self.set_ready(&name, ready);
        name
    }

    pub fn set_ready(&self, name: &str, ready: bool) {
        let state = if ready {
            NodeState { ready, reason: "KubeletReady".into(), message: "kubelet is posting ready status".into() }
        } else {
            NodeState { ready, reason: "KubeletNotReady".into(), message: "container runtime network not ready".into() }
        };
        post_status(name, &state);
        self.nodes.lock().unwrap().insert(name.to_string(), state);
    }

    pub fn exists(&self, name: &str) -> bool {
        cluster().exists(&format!("/api/v1/nodes/{name}"))
    }
}

impl Drop for TestNodes {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.heartbeat.take() {
            let _ = thread.join();
        }
        for name in self.nodes.lock().unwrap().keys() {
            let _ = cluster().request("DELETE", &format!("/api/v1/nodes/{name}"), None, None);
        }
    }
}
