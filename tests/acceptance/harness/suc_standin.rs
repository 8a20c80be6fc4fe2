//! A TEST STAND-IN for the System Upgrade Controller (rancher/system-upgrade-controller, "SUC")
//! on a k3s stand-in cluster ([`super::k3s_standin`]) of the node rig ([`super::hosts`]). The
//! real controller runs, for every node a `Plan` selects, a Job with the `rancher/k3s-upgrade`
//! image that replaces the k3s binary and restarts the service; no image can run here, so this
//! stand-in does the same from the test process: it runs
//! [`K3sStandin::install_command`] on the node's host over SSH (which is what k3s-upgrade does
//! on the node). The provider has no code path for it: it only sees the real Plan CRD
//! (`fixtures/system-upgrade-controller-crd.yaml`) and Plans being applied.
//!
//! [`SucStandin::start`] installs the CRD, the `system-upgrade` namespace and its
//! `system-upgrade` ServiceAccount on the cluster through the admin client, then polls the
//! Plans of `system-upgrade` every second on a thread (stopped and joined on drop). For a Plan
//! (in name order) whose `spec.version` some selected Node does not run yet:
//! - `spec.nodeSelector` picks the Nodes (`matchLabels`; `matchExpressions` with `In`, `NotIn`,
//!   `Exists`, `DoesNotExist`; a missing selector selects nothing, as in SUC);
//! - `spec.prepare.args == ["prepare", "<plan>"]` (k3s-upgrade's prepare step) waits until that
//!   Plan is complete: each Node it selects reports its version;
//! - at most `spec.concurrency` (default 1) Nodes at a time, in name order: cordon
//!   (`spec.unschedulable`) when `cordon` or `drain`; with `drain`, evict (policy/v1beta1) the
//!   Node's pods but DaemonSet and mirror pods, deleting those the eviction refuses when
//!   `drain.force`, and wait up to `drain.timeout` seconds for them to go; the install command
//!   (`server` for Nodes labelled `node-role.kubernetes.io/control-plane=true`, else `agent`);
//!   wait until the Node is Ready with `kubeletVersion == spec.version`; uncordon; label the
//!   Node `plan.upgrade.cattle.io/<plan>=<version>`;
//! - `status.latestVersion`, `status.applying` (the Nodes of the batch) and a `Complete`
//!   condition are written to the Plan's status subresource, as SUC does.
//!
//! Simplifications: one thread serves every Plan (a batch blocks the loop until it is done);
//! a Node needs the Plan when its kubelet reports another version (SUC compares a hash label);
//! `channel` is not resolved. What it did is recorded as [`SucEvent`]s
//! (`plan <plan> node <node> start|upgraded|done|failed`), read with [`SucStandin::events`].

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use super::hosts::Hosts;
use super::http::HttpClient;
use super::k3s_standin::K3sStandin;
use super::{run_command, CmdOutput};

/// The namespace the stand-in watches (SUC's default).
pub const NAMESPACE: &str = "system-upgrade";
/// The API path of the Plans it watches.
pub const PLANS_PATH: &str = "/apis/upgrade.cattle.io/v1/namespaces/system-upgrade/plans";
/// The field manager of everything the stand-in writes.
pub const MANAGER: &str = "suc-standin";

const CRD: &str = include_str!("../fixtures/system-upgrade-controller-crd.yaml");
const CRD_NAME: &str = "plans.upgrade.cattle.io";
const POLL: Duration = Duration::from_secs(1);
/// How long a Node may take to come back Ready on the new version.
const READY_TIMEOUT: Duration = Duration::from_secs(300);
const SSH_TIMEOUT: Duration = Duration::from_secs(300);

/// One thing the stand-in did to a Node for a Plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SucEvent {
    pub unix_ms: u64,
    pub plan: String,
    pub node: String,
    /// `start` (picked, about to cordon), `upgraded` (the install command exited 0), `done`
    /// (Ready on the version, uncordoned), `failed`.
    pub what: String,
    /// The version for `start`/`upgraded`/`done`, the reason for `failed`.
    pub detail: String,
}

impl SucEvent {
    /// `plan <plan> node <node> <what>`.
    pub fn line(&self) -> String {
        format!("plan {} node {} {}", self.plan, self.node, self.what)
    }
}

/// Where a Node's host is reached over SSH (what [`super::hosts::Host::ssh`] runs).
#[derive(Debug, Clone)]
struct NodeHost {
    address: Ipv4Addr,
    private_key: PathBuf,
    known_hosts: PathBuf,
}

impl NodeHost {
    fn ssh(&self, cmd: &str) -> CmdOutput {
        super::hosts::ssh(&self.private_key, &self.known_hosts, &format!("root@{}", self.address), cmd, SSH_TIMEOUT)
    }
}

struct Shared {
    events: Mutex<Vec<SucEvent>>,
    stop: AtomicBool,
}

impl Shared {
    fn record(&self, plan: &str, node: &str, what: &str, detail: &str) {
        eprintln!("suc stand-in: plan {plan} node {node} {what} {detail}");
        let unix_ms = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as u64;
        self.events.lock().unwrap_or_else(|e| e.into_inner()).push(SucEvent {
            unix_ms,
            plan: plan.to_string(),
            node: node.to_string(),
            what: what.to_string(),
            detail: detail.to_string(),
        });
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Sleeps `d` unless stopped first; false when stopped.
    fn sleep(&self, d: Duration) -> bool {
        let until = Instant::now() + d;
        while Instant::now() < until {
            if self.stopped() {
                return false;
            }
            std::thread::sleep(Duration::from_millis(100).min(until - Instant::now()));
        }
        !self.stopped()
    }
}

/// The stand-in controller; stopped (and joined) when dropped.
pub struct SucStandin {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl SucStandin {
    /// Installs the Plan CRD, the `system-upgrade` namespace and ServiceAccount through `api`
    /// (an admin client of the k3s cluster, e.g. [`K3sStandin::admin_client`]), waits until
    /// Plans are served, and starts the controller. `nodes` maps each Node name to the index
    /// of its host in `hosts`. Panics when the installation fails.
    #[track_caller]
    pub fn start(hosts: &Hosts, api: HttpClient, nodes: &[(&str, usize)]) -> SucStandin {
        if let Err(e) = install(&api) {
            panic!("suc stand-in: installing the Plan CRD and the {NAMESPACE} namespace: {e}");
        }
        let nodes = nodes
            .iter()
            .map(|(name, index)| {
                let host = hosts.host(*index);
                let node = NodeHost {
                    address: host.address(),
                    private_key: hosts.private_key_path().to_path_buf(),
                    known_hosts: hosts.known_hosts_path().to_path_buf(),
                };
                (name.to_string(), node)
            })
            .collect();
        let shared = Arc::new(Shared { events: Mutex::new(Vec::new()), stop: AtomicBool::new(false) });
        let controller = Controller { api, nodes, k3s: K3sStandin::prepare(), shared: shared.clone() };
        let thread = std::thread::Builder::new()
            .name("suc-standin".to_string())
            .spawn(move || {
                while !controller.shared.stopped() {
                    controller.tick();
                    controller.shared.sleep(POLL);
                }
            })
            .expect("start the suc stand-in thread");
        eprintln!("suc stand-in: started");
        SucStandin { shared, thread: Some(thread) }
    }

    /// Everything it did so far, in order.
    pub fn events(&self) -> Vec<SucEvent> {
        self.shared.events.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The events of one Plan as `plan <plan> node <node> <what>` lines.
    pub fn lines(&self, plan: &str) -> Vec<String> {
        self.events().iter().filter(|e| e.plan == plan).map(SucEvent::line).collect()
    }
}

impl Drop for SucStandin {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        eprintln!("suc stand-in: stopped");
    }
}

/// The fixture CRD as JSON (its header comment dropped by the YAML parser).
pub fn crd() -> Value {
    let docs: Vec<Value> = serde_yaml::Deserializer::from_str(CRD)
        .filter_map(|doc| serde::Deserialize::deserialize(doc).ok())
        .filter(|v: &Value| !v.is_null())
        .collect();
    assert_eq!(docs.len(), 1, "the SUC CRD fixture holds one document");
    docs.into_iter().next().unwrap()
}

/// Server-side applies `object` at `path` (the object's own URL).
fn apply(api: &HttpClient, path: &str, object: &Value) -> Result<(), String> {
    let body = serde_json::to_vec(object).map_err(|e| e.to_string())?;
    let url = format!("{path}?fieldManager={MANAGER}&force=true");
    let response = api.request("PATCH", &url, Some("application/apply-patch+yaml"), Some(&body))?;
    if !response.ok() {
        return Err(format!("apply {path}: HTTP {} {}", response.status, response.body));
    }
    Ok(())
}

fn install(api: &HttpClient) -> Result<(), String> {
    apply(api, &format!("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{CRD_NAME}"), &crd())?;
    apply(
        api,
        &format!("/api/v1/namespaces/{NAMESPACE}"),
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}),
    )?;
    apply(
        api,
        &format!("/api/v1/namespaces/{NAMESPACE}/serviceaccounts/system-upgrade"),
        &json!({"apiVersion": "v1", "kind": "ServiceAccount",
                "metadata": {"name": "system-upgrade", "namespace": NAMESPACE}}),
    )?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match api.get(PLANS_PATH) {
            Ok(r) if r.ok() => return Ok(()),
            Ok(r) if Instant::now() >= deadline => {
                return Err(format!("Plans not served: HTTP {} {}", r.status, r.body))
            }
            Err(e) if Instant::now() >= deadline => return Err(format!("Plans not served: {e}")),
            _ => std::thread::sleep(Duration::from_millis(250)),
        }
    }
}

/// Whether a `metav1.LabelSelector` (JSON) selects `labels`; a null selector selects nothing.
pub fn selects(selector: &Value, labels: &Value) -> bool {
    if selector.is_null() {
        return false;
    }
    let label = |key: &str| labels.get(key).and_then(Value::as_str);
    if let Some(map) = selector.get("matchLabels").and_then(Value::as_object) {
        if map.iter().any(|(k, v)| label(k) != v.as_str()) {
            return false;
        }
    }
    for expr in selector.get("matchExpressions").and_then(Value::as_array).into_iter().flatten() {
        let key = expr["key"].as_str().unwrap_or_default();
        let values: Vec<&str> = expr["values"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
        let ok = match (expr["operator"].as_str().unwrap_or_default(), label(key)) {
            ("In", Some(v)) => values.contains(&v),
            ("In", None) => false,
            ("NotIn", v) => v.is_none_or(|v| !values.contains(&v)),
            ("Exists", v) => v.is_some(),
            ("DoesNotExist", v) => v.is_none(),
            _ => false,
        };
        if !ok {
            return false;
        }
    }
    true
}

fn name_of(object: &Value) -> &str {
    object["metadata"]["name"].as_str().unwrap_or_default()
}

fn kubelet_version(node: &Value) -> &str {
    node["status"]["nodeInfo"]["kubeletVersion"].as_str().unwrap_or_default()
}

fn is_ready(node: &Value) -> bool {
    node["status"]["conditions"].as_array().into_iter().flatten().any(|c| c["type"] == "Ready" && c["status"] == "True")
}

/// Label values are at most 63 characters of `[A-Za-z0-9._-]`: `v1.29.4+k3s1` → `v1.29.4-k3s1`.
fn label_value(version: &str) -> String {
    version.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '_' { c } else { '-' }).take(63).collect()
}

struct Controller {
    api: HttpClient,
    nodes: HashMap<String, NodeHost>,
    k3s: &'static K3sStandin,
    shared: Arc<Shared>,
}

impl Controller {
    fn get(&self, path: &str) -> Result<Value, String> {
        let response = self.api.get(path)?;
        if !response.ok() {
            return Err(format!("GET {path}: HTTP {} {}", response.status, response.body));
        }
        serde_json::from_str(&response.body).map_err(|e| format!("GET {path}: {e}"))
    }

    fn send(&self, method: &str, path: &str, content_type: &str, body: &Value) -> Result<Value, String> {
        let bytes = serde_json::to_vec(body).map_err(|e| e.to_string())?;
        let response = self.api.request(method, path, Some(content_type), Some(&bytes))?;
        if !response.ok() {
            return Err(format!("{method} {path}: HTTP {} {}", response.status, response.body));
        }
        Ok(serde_json::from_str(&response.body).unwrap_or(Value::Null))
    }

    fn merge_patch(&self, path: &str, body: &Value) -> Result<Value, String> {
        self.send("PATCH", path, "application/merge-patch+json", body)
    }

    fn items(&self, path: &str) -> Result<Vec<Value>, String> {
        Ok(self.get(path)?["items"].as_array().cloned().unwrap_or_default())
    }

    /// Writes the Plan's status; errors are logged (the next tick writes it again).
    fn status(&self, plan: &str, version: &str, applying: &[String], complete: bool, message: &str) {
        let now = rfc3339_now();
        let mut done =
            json!({"type": "Complete", "status": if complete { "True" } else { "False" }, "lastUpdateTime": now});
        // Empty strings are left out: the 1.20 apiserver reads them as null and rejects them.
        if !complete {
            done["reason"] = json!("Applying");
        }
        if !message.is_empty() {
            done["message"] = json!(message);
        }
        let body = json!({"status": {
            "latestVersion": version,
            "applying": if applying.is_empty() { Value::Null } else { json!(applying) },
            "conditions": [
                {"type": "LatestResolved", "status": "True", "reason": "Version", "lastUpdateTime": now},
                done,
            ],
        }});
        if let Err(e) = self.merge_patch(&format!("{PLANS_PATH}/{plan}/status"), &body) {
            eprintln!("suc stand-in: plan {plan} status: {e}");
        }
    }

    /// The Nodes `plan` selects, by name.
    fn selected<'n>(plan: &Value, nodes: &'n [Value]) -> Vec<&'n Value> {
        let mut picked: Vec<&Value> =
            nodes.iter().filter(|n| selects(&plan["spec"]["nodeSelector"], &n["metadata"]["labels"])).collect();
        picked.sort_by_key(|n| name_of(n).to_string());
        picked
    }

    /// Whether every Node the Plan selects reports its version.
    fn complete(plan: &Value, nodes: &[Value]) -> bool {
        let version = plan["spec"]["version"].as_str().unwrap_or_default();
        Self::selected(plan, nodes).iter().all(|n| kubelet_version(n) == version)
    }

    fn tick(&self) {
        let (plans, nodes) = match (self.items(PLANS_PATH), self.items("/api/v1/nodes")) {
            (Ok(p), Ok(n)) => (p, n),
            // The API restarts with its server: try again on the next tick.
            (Err(e), _) | (_, Err(e)) => return eprintln!("suc stand-in: {e}"),
        };
        let mut plans = plans;
        plans.sort_by_key(|p| name_of(p).to_string());
        for plan in &plans {
            if self.shared.stopped() {
                return;
            }
            let name = name_of(plan);
            let Some(version) = plan["spec"]["version"].as_str().filter(|v| !v.is_empty()) else { continue };
            let pending: Vec<&Value> =
                Self::selected(plan, &nodes).into_iter().filter(|n| kubelet_version(n) != version).collect();
            let status = &plan["status"];
            if pending.is_empty() {
                let completed = status["conditions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|c| c["type"] == "Complete" && c["status"] == "True");
                if status["latestVersion"] != version || !status["applying"].is_null() || !completed {
                    self.status(name, version, &[], true, "");
                }
                continue;
            }
            let args: Vec<&str> =
                plan["spec"]["prepare"]["args"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
            if let ["prepare", other] = args.as_slice() {
                let ready = plans.iter().find(|p| name_of(p) == *other).is_some_and(|p| Self::complete(p, &nodes));
                if !ready {
                    let message = format!("waiting for plan {other} to complete");
                    if status["conditions"].as_array().into_iter().flatten().all(|c| c["message"] != message) {
                        self.status(name, version, &[], false, &message);
                    }
                    continue;
                }
            }
            let concurrency = plan["spec"]["concurrency"].as_u64().unwrap_or(1).max(1) as usize;
            let batch: Vec<String> = pending.iter().take(concurrency).map(|n| name_of(n).to_string()).collect();
            self.status(name, version, &batch, false, "");
            std::thread::scope(|scope| {
                let this = &*self;
                for node in &batch {
                    let node_object = pending.iter().find(|n| name_of(n) == node).copied().unwrap();
                    scope.spawn(move || {
                        if let Err(e) = this.upgrade(plan, node_object, version) {
                            this.shared.record(name, node, "failed", &e);
                        }
                    });
                }
            });
            self.status(name, version, &[], false, "");
            // Look again before the next batch: the Nodes changed.
            return;
        }
    }

    /// One Node through one Plan (see the module docs).
    fn upgrade(&self, plan: &Value, node: &Value, version: &str) -> Result<(), String> {
        let (plan_name, name) = (name_of(plan), name_of(node));
        let host = self.nodes.get(name).ok_or_else(|| format!("no host known for Node {name}"))?;
        let spec = &plan["spec"];
        let drain = &spec["drain"];
        let node_path = format!("/api/v1/nodes/{name}");
        self.shared.record(plan_name, name, "start", version);
        if spec["cordon"] == true || drain.is_object() {
            self.merge_patch(&node_path, &json!({"spec": {"unschedulable": true}}))?;
        }
        if drain.is_object() {
            self.drain(name, drain)?;
        }
        let server = node["metadata"]["labels"]["node-role.kubernetes.io/control-plane"] == "true";
        let exec = if server { "server" } else { "agent" };
        let out = host.ssh(&self.k3s.install_command(version, exec, false));
        if !out.success() {
            return Err(format!("k3s-upgrade on {name} exited {}: {}", out.code(), out.combined().trim()));
        }
        self.shared.record(plan_name, name, "upgraded", version);
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            match self.get(&node_path) {
                Ok(n) if is_ready(&n) && kubelet_version(&n) == version => break,
                Ok(_) | Err(_) if Instant::now() >= deadline => {
                    return Err(format!("Node {name} not Ready on {version} within {READY_TIMEOUT:?}"));
                }
                _ => {
                    if !self.shared.sleep(Duration::from_millis(500)) {
                        return Err("stopped".into());
                    }
                }
            }
        }
        let label = format!("plan.upgrade.cattle.io/{plan_name}");
        let patch = json!({"metadata": {"labels": {label: label_value(version)}}, "spec": {"unschedulable": null}});
        self.merge_patch(&node_path, &patch)?;
        self.shared.record(plan_name, name, "done", version);
        Ok(())
    }

    /// Evicts the Node's pods (not DaemonSet or mirror pods) and waits for them to go.
    fn drain(&self, node: &str, drain: &Value) -> Result<(), String> {
        let timeout = Duration::from_secs(drain["timeout"].as_u64().unwrap_or(600));
        let force = drain["force"] == true;
        let path = format!("/api/v1/pods?fieldSelector=spec.nodeName%3D{node}");
        let evictable = |pod: &&Value| {
            let daemon =
                pod["metadata"]["ownerReferences"].as_array().into_iter().flatten().any(|o| o["kind"] == "DaemonSet");
            let mirror = pod["metadata"]["annotations"]["kubernetes.io/config.mirror"].is_string();
            !daemon && !mirror
        };
        let deadline = Instant::now() + timeout;
        loop {
            let pods = self.items(&path)?;
            let left: Vec<&Value> = pods.iter().filter(evictable).collect();
            if left.is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let names: Vec<&str> = left.iter().map(|p| name_of(p)).collect();
                return Err(format!("drain of {node} timed out after {timeout:?}: {names:?} left"));
            }
            for pod in left.iter().filter(|p| p["metadata"]["deletionTimestamp"].is_null()) {
                let ns = pod["metadata"]["namespace"].as_str().unwrap_or_default();
                let pod_path = format!("/api/v1/namespaces/{ns}/pods/{}", name_of(pod));
                let eviction = json!({"apiVersion": "policy/v1beta1", "kind": "Eviction",
                                      "metadata": {"name": name_of(pod), "namespace": ns}});
                let evicted = self.send("POST", &format!("{pod_path}/eviction"), "application/json", &eviction);
                if evicted.is_err() && force {
                    let _ = self.api.request("DELETE", &pod_path, None, None);
                }
            }
            if !self.shared.sleep(Duration::from_millis(500)) {
                return Err("stopped".into());
            }
        }
    }
}

/// RFC 3339 UTC now, second precision.
fn rfc3339_now() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suc_standin_selectors_and_fixture() {
        let labels = json!({"node-role.kubernetes.io/control-plane": "true", "kubernetes.io/os": "linux"});
        let server = json!({"matchExpressions": [
            {"key": "node-role.kubernetes.io/control-plane", "operator": "In", "values": ["true"]}]});
        let agent = json!({"matchExpressions": [
            {"key": "node-role.kubernetes.io/control-plane", "operator": "DoesNotExist"}]});
        assert!(selects(&server, &labels) && !selects(&agent, &labels));
        assert!(selects(&agent, &json!({})) && !selects(&server, &json!({})));
        assert!(selects(&json!({"matchLabels": {"kubernetes.io/os": "linux"}}), &labels));
        assert!(!selects(&json!({"matchLabels": {"kubernetes.io/os": "windows"}}), &labels));
        assert!(selects(&json!({}), &labels) && !selects(&Value::Null, &labels));
        assert_eq!(crd()["metadata"]["name"], CRD_NAME);
        assert_eq!(label_value("v1.29.4+k3s1"), "v1.29.4-k3s1");
        assert_eq!(rfc3339_now().len(), 20);
    }
}
