//! A Flux stand-in (not Flux) for `platform_stack` Helm components: the Flux CRDs of
//! `fixtures/flux-crds.yaml` and a stand-in helm-controller, a thread that polls every
//! HelmRelease and writes its status the way helm-controller does (conditions carrying
//! `observedGeneration`, `status.observedGeneration` once a generation is finished).
//!
//! What it reports is chosen by the release's own `spec.values.fake` (so tests steer it
//! through the chart values they write):
//! - nothing: `Ready=True` (InstallSucceeded);
//! - `silentSeconds: N`: leaves the status as it is (an older generation's) for N seconds first;
//! - `delaySeconds: N`: `Reconciling=True` / `Ready=Unknown` (Progressing) for N seconds first;
//! - `fail: true`: `Stalled=True` (RetriesExceeded, "Failed to install after 3 attempt(s)")
//!   and `Ready=False` (InstallFailed, `message` or a default), as when retries are exhausted;
//! - `fail: "retrying"`: `Ready=False` (InstallFailed) and `Reconciling=True`
//!   (ProgressingWithRetry), forever: a failure helm-controller keeps retrying.
//!
//! A suspended release (`spec.suspend`) is left alone, as helm-controller leaves it. So are
//! the sources served by the real-Helm stand-in ([`super::helm_standin`]) and the releases
//! installing from them: that stand-in reconciles those.
//! A release whose `spec.dependsOn` releases are not Ready gets `Ready=False`
//! (DependencyNotReady) and is looked at again later. HelmRepository and OCIRepository
//! objects are marked Ready at their generation.
//!
//! The CRDs are cluster-wide, so what a stack does without them is tried (and recorded, see
//! [`runs_without_flux`]) once, before the first [`ensure`] installs them.
//!
//! [`ensure`] runs the stand-in against the shared cluster; [`FluxStandIn::start_on`] runs
//! another against any API server (a k3s stand-in's), which also applies the CRDs of the
//! charts it "installs".

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::http::HttpClient;
use super::{cluster, kube_now, kubectl, kubectl_stdin, terraform_binaries, unique_name, wait_until, CmdOutput, Workdir};

pub const HELM_RELEASES: &str = "/apis/helm.toolkit.fluxcd.io/v2";
pub const SOURCES_V1: &str = "/apis/source.toolkit.fluxcd.io/v1";
pub const SOURCES_V1BETA2: &str = "/apis/source.toolkit.fluxcd.io/v1beta2";
const CRDS: [&str; 3] = [
    "helmrepositories.source.toolkit.fluxcd.io",
    "ocirepositories.source.toolkit.fluxcd.io",
    "helmreleases.helm.toolkit.fluxcd.io",
];
const POLL: Duration = Duration::from_millis(200);
/// The field manager the fixture CRDs are applied with (to tell them from a real Flux).
const CRD_MANAGER: &str = "acceptance-tests";

/// Whether the fixture CRDs are installed; the lock also orders [`without_flux`] and [`ensure`].
fn crds_state() -> &'static Mutex<Option<bool>> {
    static STATE: Mutex<Option<bool>> = Mutex::new(None);
    &STATE
}

fn lock_state() -> MutexGuard<'static, Option<bool>> {
    let mut state = crds_state().lock().unwrap_or_else(|e| e.into_inner());
    if state.is_none() {
        *state = Some(CRDS.iter().any(|crd| crd_exists(crd)));
    }
    state
}

fn crd_path(name: &str) -> String {
    format!("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
}

fn crd_exists(name: &str) -> bool {
    cluster().exists(&crd_path(name))
}

/// One terraform's attempt to apply a Helm component while the Flux CRDs were absent.
pub struct NoFluxRun {
    pub terraform: String,
    pub namespace: String,
    pub apply: CmdOutput,
    /// Whether the stack's plain component (a Namespace, applied before the Helm one) was there after the apply.
    pub namespace_applied: bool,
    /// The owner id on that Namespace after the apply.
    pub owner: Option<String>,
    /// The stack's id in the state after the apply (a failed create is tainted, not forgotten).
    pub state_id: Option<String>,
    pub destroy: CmdOutput,
    pub namespace_left: bool,
}

fn no_flux_runs() -> &'static Mutex<Option<Vec<NoFluxRun>>> {
    static RUNS: Mutex<Option<Vec<NoFluxRun>>> = Mutex::new(None);
    &RUNS
}

/// With every terraform: apply a stack (a Namespace, then a Helm component) while the Flux
/// CRDs are absent, then destroy it. Runs once, before [`ensure`] installs the CRDs
/// (whichever test gets there first), since the CRDs are cluster-wide.
fn record_runs_without_flux() {
    let mut runs = no_flux_runs().lock().unwrap_or_else(|e| e.into_inner());
    if runs.is_some() {
        return;
    }
    let mut recorded = Vec::new();
    for tf in terraform_binaries() {
        let stack = unique_name("acc-noflux");
        let namespace = unique_name("acc-noflux-ns");
        let work = Workdir::new(&tf);
        let namespace_yaml = format!("apiVersion: v1\\nkind: Namespace\\nmetadata:\\n  name: {namespace}\\n");
        work.write_main_tf(&format!(
            r#"{required}
provider "platform" {{}}
resource "platform_stack" "this" {{
  name      = "{stack}"
  namespace = "{namespace}"
  component {{
    name      = "plain"
    manifests = "{namespace_yaml}"
  }}
  component {{
    name       = "chart"
    depends_on = ["plain"]
    helm {{
      repository = "https://charts.example.com"
      chart      = "x"
      version    = "1.0.0"
    }}
  }}
}}
"#,
            required = required_providers!()
        ));
        let apply = work.apply();
        let live = cluster().get_json(&format!("/api/v1/namespaces/{namespace}"));
        let namespace_applied = live.is_some();
        let owner = live.and_then(|ns| ns["metadata"]["annotations"]["platform.terraform.io/owner"].as_str().map(str::to_string));
        let state_id = work.resource_values("platform_stack.this").and_then(|v| v["id"].as_str().map(str::to_string));
        let destroy = work.destroy();
        let namespace_left = cluster()
            .get_json(&format!("/api/v1/namespaces/{namespace}"))
            .is_some_and(|ns| ns["metadata"]["deletionTimestamp"].is_null());
        // In case the destroy failed.
        crate::harness::kubectl(&["delete", "namespace", &namespace, "--ignore-not-found", "--wait=false"]);
        recorded.push(NoFluxRun {
            terraform: tf.version_string.clone(),
            namespace,
            apply,
            namespace_applied,
            owner,
            state_id,
            destroy,
            namespace_left,
        });
    }
    *runs = Some(recorded);
}

/// What [`record_runs_without_flux`] saw (running it now if the CRDs are still absent);
/// `None` when the Flux CRDs were installed before these tests began.
pub fn runs_without_flux() -> Option<MutexGuard<'static, Option<Vec<NoFluxRun>>>> {
    {
        let state = lock_state();
        if *state == Some(false) {
            record_runs_without_flux();
        }
    }
    let runs = no_flux_runs().lock().unwrap_or_else(|e| e.into_inner());
    runs.is_some().then_some(runs)
}

/// Installs the fixture Flux CRDs (once) and starts the helm-controller stand-in (once).
/// Panics when the cluster runs a real Flux (CRDs not applied by these tests).
pub fn ensure() {
    let mut state = lock_state();
    if *state != Some(true) {
        record_runs_without_flux();
        let text = super::fixture("flux-crds.yaml");
        kubectl_stdin(
            &["apply", "--server-side", "--force-conflicts", &format!("--field-manager={CRD_MANAGER}"), "-f", "-"],
            &text,
        )
        .assert_success();
        *state = Some(true);
    }
    drop(state);
    for crd in CRDS {
        let live = cluster().get_json(&crd_path(crd)).unwrap_or_else(|| panic!("CRD {crd} missing"));
        let ours = live["metadata"]["managedFields"]
            .as_array()
            .is_some_and(|fields| fields.iter().any(|f| f["manager"] == CRD_MANAGER));
        assert!(ours, "CRD {crd} was not installed by these tests (a real Flux?): the helm-controller stand-in would fight it");
    }
    static READY: OnceLock<()> = OnceLock::new();
    READY.get_or_init(|| {
        let mut args = vec!["wait", "--for=condition=Established", "--timeout=60s"];
        let names: Vec<String> = CRDS.iter().map(|c| format!("crd/{c}")).collect();
        args.extend(names.iter().map(String::as_str));
        kubectl(&args).assert_success();
        wait_until("Flux kinds served", Duration::from_secs(60), || {
            for path in [
                format!("{HELM_RELEASES}/helmreleases"),
                format!("{SOURCES_V1}/helmrepositories"),
                format!("{SOURCES_V1BETA2}/ocirepositories"),
            ] {
                let resp = cluster().get(&path);
                if !resp.ok() {
                    return Err(format!("{path}: HTTP {}", resp.status));
                }
            }
            Ok(())
        });
        let (api, stop) = (cluster().http().clone(), AtomicBool::new(false));
        std::thread::Builder::new()
            .name("helm-controller-standin".into())
            .spawn(move || controller_loop(&api, ChartCrds::Preinstalled, &stop))
            .expect("start the helm-controller stand-in");
    });
}

/// What the controller stand-in last did to a release, for assertions.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub namespace: String,
    pub name: String,
    pub generation: i64,
    /// `Ready`, `Progressing`, `Stalled`, `Retrying` or `DependencyNotReady`.
    pub outcome: String,
    pub at: Instant,
}

fn events() -> &'static Mutex<Vec<Event>> {
    static EVENTS: Mutex<Vec<Event>> = Mutex::new(Vec::new());
    &EVENTS
}

/// Everything the controller stand-in reported for HelmRelease `namespace/name`, in order.
pub fn events_for(namespace: &str, name: &str) -> Vec<Event> {
    events().lock().unwrap().iter().filter(|e| e.namespace == namespace && e.name == name).cloned().collect()
}

/// The live HelmRelease, `None` when absent.
pub fn helm_release(namespace: &str, name: &str) -> Option<Value> {
    cluster().get_json(&format!("{HELM_RELEASES}/namespaces/{namespace}/helmreleases/{name}"))
}

pub fn helm_repository(namespace: &str, name: &str) -> Option<Value> {
    cluster().get_json(&format!("{SOURCES_V1}/namespaces/{namespace}/helmrepositories/{name}"))
}

pub fn oci_repository(namespace: &str, name: &str) -> Option<Value> {
    cluster().get_json(&format!("{SOURCES_V1BETA2}/namespaces/{namespace}/ocirepositories/{name}"))
}

/// The `type` condition of an object's status.
pub fn condition<'a>(object: &'a Value, kind: &str) -> Option<&'a Value> {
    object["status"]["conditions"].as_array()?.iter().find(|c| c["type"] == kind)
}

/// Ready=True for the object's current generation.
pub fn is_ready(object: &Value) -> bool {
    let generation = object["metadata"]["generation"].as_i64();
    condition(object, "Ready").is_some_and(|c| c["status"] == "True" && c["observedGeneration"].as_i64() == generation)
        && object["status"]["observedGeneration"].as_i64() == generation
}

/// Where the CRDs of the charts a release "installs" come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChartCrds {
    /// Applied to the shared cluster beforehand ([`super::chart_crds_standin::ensure`]).
    Preinstalled,
    /// Applied by the stand-in before it reports the release Ready, as Helm applies a
    /// chart's `crds/` before its templates.
    WithRelease,
}

/// The controller's rounds against the API server `api` until `stop` is set.
fn controller_loop(api: &HttpClient, chart_crds: ChartCrds, stop: &AtomicBool) {
    // (uid, generation) -> when first seen, for `delaySeconds`.
    let mut first_seen: HashMap<(String, i64), Instant> = HashMap::new();
    let mut progressing_reported: HashSet<(String, i64)> = HashSet::new();
    while !stop.load(Ordering::Relaxed) {
        reconcile_sources(api);
        if let Ok(resp) = api.get(&format!("{HELM_RELEASES}/helmreleases")) {
            if resp.ok() {
                let items = resp.json()["items"].as_array().cloned().unwrap_or_default();
                for release in &items {
                    reconcile_release(api, chart_crds, release, &items, &mut first_seen, &mut progressing_reported);
                }
            }
        }
        std::thread::sleep(POLL);
    }
}

/// A helm-controller stand-in (with its source-controller part) for a cluster other than
/// the shared one, e.g. a k3s stand-in's, reached through `api`; stopped when dropped.
/// Unlike the shared cluster's, it applies the stand-in CRDs of the charts it "installs"
/// ([`super::chart_crds_standin::for_chart`]) before it reports a release Ready, since that
/// cluster starts without them. The Flux CRDs are the cluster's own business (the tests
/// install them with Flux's install document).
pub struct FluxStandIn {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FluxStandIn {
    pub fn start_on(api: HttpClient) -> FluxStandIn {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::Builder::new()
            .name("helm-controller-standin-remote".into())
            .spawn(move || controller_loop(&api, ChartCrds::WithRelease, &stopped))
            .expect("start the helm-controller stand-in");
        FluxStandIn { stop, thread: Some(thread) }
    }
}

impl Drop for FluxStandIn {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn cond(kind: &str, status: &str, reason: &str, message: &str, generation: i64) -> Value {
    json!({
        "type": kind, "status": status, "reason": reason, "message": message,
        "observedGeneration": generation, "lastTransitionTime": kube_now(),
    })
}

/// Merge-patches the status subresource; a refusal is printed once per path and message
/// (the test's output then explains a release that never becomes Ready).
fn patch_status(api: &HttpClient, path: &str, status: Value) -> bool {
    static REPORTED: Mutex<Option<HashSet<String>>> = Mutex::new(None);
    let body = json!({ "status": status }).to_string();
    let problem = match api.request(
        "PATCH",
        &format!("{path}/status"),
        Some("application/merge-patch+json"),
        Some(body.as_bytes()),
    ) {
        Ok(resp) if resp.ok() => return true,
        Ok(resp) => format!("HTTP {}: {}", resp.status, resp.body),
        Err(e) => e,
    };
    let note = format!("helm-controller stand-in: PATCH {path}/status refused: {problem}");
    if REPORTED.lock().unwrap().get_or_insert_with(HashSet::new).insert(note.clone()) {
        eprintln!("{note}");
    }
    false
}

fn record(release: &Value, generation: i64, outcome: &str) {
    events().lock().unwrap().push(Event {
        namespace: release["metadata"]["namespace"].as_str().unwrap_or_default().to_string(),
        name: release["metadata"]["name"].as_str().unwrap_or_default().to_string(),
        generation,
        outcome: outcome.to_string(),
        at: Instant::now(),
    });
}

fn reconcile_sources(api: &HttpClient) {
    for (base, plural) in [(SOURCES_V1, "helmrepositories"), (SOURCES_V1BETA2, "ocirepositories")] {
        let Ok(resp) = api.get(&format!("{base}/{plural}")) else { continue };
        if !resp.ok() {
            continue;
        }
        for item in resp.json()["items"].as_array().cloned().unwrap_or_default() {
            if super::helm_standin::owns_url(item["spec"]["url"].as_str().unwrap_or_default()) {
                continue;
            }
            let generation = item["metadata"]["generation"].as_i64().unwrap_or(1);
            if item["status"]["observedGeneration"].as_i64() == Some(generation) {
                continue;
            }
            let (ns, name) = (item["metadata"]["namespace"].as_str().unwrap_or(""), item["metadata"]["name"].as_str().unwrap_or(""));
            patch_status(
                api,
                &format!("{base}/namespaces/{ns}/{plural}/{name}"),
                json!({
                    "observedGeneration": generation,
                    "conditions": [cond("Ready", "True", "Succeeded", "stored artifact (source-controller stand-in)", generation)],
                }),
            );
        }
    }
}

/// Whether the release is the real-Helm stand-in's ([`super::helm_standin`]): it carries
/// that controller's finalizer, or its chart source's URL is one that stand-in serves.
fn served_by_helm_standin(api: &HttpClient, release: &Value) -> bool {
    let finalizers = release["metadata"]["finalizers"].as_array();
    if finalizers.is_some_and(|f| f.iter().any(|f| f == super::helm_standin::FINALIZER)) {
        return true;
    }
    let ns = release["metadata"]["namespace"].as_str().unwrap_or_default();
    let spec = &release["spec"];
    let source = if spec["chartRef"].is_object() { &spec["chartRef"] } else { &spec["chart"]["spec"]["sourceRef"] };
    let (base, plural) = match source["kind"].as_str() {
        Some("HelmRepository") => (SOURCES_V1, "helmrepositories"),
        Some("OCIRepository") => (SOURCES_V1BETA2, "ocirepositories"),
        _ => return false,
    };
    let source_ns = source["namespace"].as_str().unwrap_or(ns);
    let name = source["name"].as_str().unwrap_or_default();
    match api.get(&format!("{base}/namespaces/{source_ns}/{plural}/{name}")) {
        Ok(resp) if resp.ok() => super::helm_standin::owns_url(resp.json()["spec"]["url"].as_str().unwrap_or_default()),
        _ => false,
    }
}

fn reconcile_release(
    api: &HttpClient,
    chart_crds: ChartCrds,
    release: &Value,
    all: &[Value],
    first_seen: &mut HashMap<(String, i64), Instant>,
    progressing_reported: &mut HashSet<(String, i64)>,
) {
    let meta = &release["metadata"];
    let (ns, name) = (meta["namespace"].as_str().unwrap_or(""), meta["name"].as_str().unwrap_or(""));
    let uid = meta["uid"].as_str().unwrap_or("").to_string();
    let generation = meta["generation"].as_i64().unwrap_or(1);
    // `reconcile.fluxcd.io/requestedAt` asks for a reconciliation even at the same generation.
    let requested = meta["annotations"]["reconcile.fluxcd.io/requestedAt"].as_str().map(str::to_string);
    let handled = release["status"]["lastHandledReconcileAt"].as_str().map(str::to_string);
    let request_pending = requested.is_some() && requested != handled;
    if (release["status"]["observedGeneration"].as_i64() == Some(generation) && !request_pending) || meta["deletionTimestamp"].is_string() {
        return;
    }
    // helm-controller leaves a suspended release alone.
    if release["spec"]["suspend"] == true {
        return;
    }
    if served_by_helm_standin(api, release) {
        return;
    }
    // One round per generation and request.
    let uid = format!("{uid}/{}", requested.as_deref().unwrap_or(""));
    let path = format!("{HELM_RELEASES}/namespaces/{ns}/helmreleases/{name}");
    let fake = &release["spec"]["values"]["fake"];

    for dependency in release["spec"]["dependsOn"].as_array().cloned().unwrap_or_default() {
        let dep_name = dependency["name"].as_str().unwrap_or("");
        let dep_ns = dependency["namespace"].as_str().unwrap_or(ns);
        let ready = all.iter().any(|r| r["metadata"]["name"] == dep_name && r["metadata"]["namespace"] == dep_ns && is_ready(r));
        if !ready {
            let message = format!("dependency '{dep_ns}/{dep_name}' is not ready");
            if patch_status(api, &path, json!({"conditions": [cond("Ready", "False", "DependencyNotReady", &message, generation)]})) {
                record(release, generation, "DependencyNotReady");
            }
            return;
        }
    }

    let seen = *first_seen.entry((uid.clone(), generation)).or_insert_with(Instant::now);
    let silent = Duration::from_secs_f64(fake["silentSeconds"].as_f64().unwrap_or(0.0));
    if seen.elapsed() < silent {
        return;
    }
    let delay = silent + Duration::from_secs_f64(fake["delaySeconds"].as_f64().unwrap_or(0.0));
    if seen.elapsed() < delay {
        if progressing_reported.insert((uid, generation)) {
            let message = "Running 'install' action with timeout of 5m0s (helm-controller stand-in)";
            let status = json!({"conditions": [
                cond("Reconciling", "True", "Progressing", message, generation),
                cond("Ready", "Unknown", "Progressing", message, generation),
            ]});
            if patch_status(api, &path, status) {
                record(release, generation, "Progressing");
            }
        }
        return;
    }

    let message = fake["message"].as_str().unwrap_or("Helm install failed: fake failure").to_string();
    let (status, outcome) = match &fake["fail"] {
        Value::Bool(true) => (
            json!({
                "observedGeneration": generation,
                "conditions": [
                    cond("Stalled", "True", "RetriesExceeded", "Failed to install after 3 attempt(s)", generation),
                    cond("Ready", "False", "InstallFailed", &message, generation),
                    cond("Released", "False", "InstallFailed", &message, generation),
                ],
            }),
            "Stalled",
        ),
        Value::String(mode) if mode == "retrying" => (
            json!({"conditions": [
                cond("Reconciling", "True", "ProgressingWithRetry", "retrying after failure (helm-controller stand-in)", generation),
                cond("Ready", "False", "InstallFailed", &message, generation),
            ]}),
            "Retrying",
        ),
        _ => (
            json!({
                "observedGeneration": generation,
                "lastAppliedRevision": release["spec"]["chart"]["spec"]["version"].clone(),
                "conditions": [
                    cond("Ready", "True", "InstallSucceeded", "Helm install succeeded (helm-controller stand-in)", generation),
                    cond("Released", "True", "InstallSucceeded", "Helm install succeeded", generation),
                    cond("Reconciling", "False", "InstallSucceeded", "reconciliation finished", generation),
                    cond("Stalled", "False", "InstallSucceeded", "not stalled", generation),
                ],
            }),
            "Ready",
        ),
    };
    // A retrying release is reported once per generation.
    if outcome == "Retrying" && events_for(ns, name).iter().any(|e| e.generation == generation && e.outcome == "Retrying") {
        return;
    }
    // helm-controller creates the target namespace before it installs.
    if outcome == "Ready" && !create_target_namespace(api, release) {
        return;
    }
    if outcome == "Ready" && chart_crds == ChartCrds::WithRelease && !apply_chart_crds(api, release) {
        return;
    }
    let mut status = status;
    if let (Some(requested), true) = (&requested, outcome != "Retrying") {
        status["lastHandledReconcileAt"] = json!(requested);
    }
    if patch_status(api, &path, status) {
        record(release, generation, outcome);
    }
}

/// The label on the namespaces [`create_target_namespace`] made.
pub const CREATED_NAMESPACE_LABEL: &str = "tf-acc.platform/created-by";

/// What helm-controller does for `spec.install.createNamespace: true`: creates the release's
/// `spec.targetNamespace` if it is missing (labelled [`CREATED_NAMESPACE_LABEL`]
/// `=helm-controller-standin`; like helm-controller, the stand-in never deletes it). False
/// when the namespace could not be made (the release is then left for the next round).
fn create_target_namespace(api: &HttpClient, release: &Value) -> bool {
    let spec = &release["spec"];
    let Some(target) = spec["targetNamespace"].as_str().filter(|_| spec["install"]["createNamespace"] == true) else {
        return true;
    };
    let path = format!("/api/v1/namespaces/{target}");
    match api.get(&path) {
        // A namespace still being deleted is waited for, then made again.
        Ok(resp) if resp.ok() => return resp.json()["metadata"]["deletionTimestamp"].is_null(),
        Ok(resp) if resp.status == 404 => {}
        _ => return false,
    }
    let body = json!({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": target, "labels": {CREATED_NAMESPACE_LABEL: "helm-controller-standin"}},
    })
    .to_string();
    match api.request("POST", "/api/v1/namespaces", Some("application/json"), Some(body.as_bytes())) {
        Ok(resp) => resp.ok() || resp.status == 409,
        Err(_) => false,
    }
}

/// What Helm does with a chart's `crds/` before it installs the templates: creates the
/// stand-in CRDs of the release's chart ([`super::chart_crds_standin::for_chart`]; charts
/// without any have nothing to do), leaving alone those that exist. False while they are
/// not all established (the release is then left for the next round).
fn apply_chart_crds(api: &HttpClient, release: &Value) -> bool {
    let chart = release["spec"]["chart"]["spec"]["chart"].as_str().unwrap_or_default();
    let path = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions";
    let crds = super::chart_crds_standin::for_chart(chart);
    let created = crds.iter().all(|crd| {
        let body = crd.to_string();
        match api.request("POST", path, Some("application/json"), Some(body.as_bytes())) {
            Ok(resp) => resp.ok() || resp.status == 409,
            Err(_) => false,
        }
    });
    // Helm waits for them to be established before it goes on.
    created
        && crds.iter().all(|crd| {
            let name = crd["metadata"]["name"].as_str().unwrap_or_default();
            match api.get(&format!("{path}/{name}")) {
                Ok(resp) if resp.ok() => condition(&resp.json(), "Established").is_some_and(|c| c["status"] == "True"),
                _ => false,
            }
        })
}
