//! A stand-in for the Velero and VolSync controllers (their images cannot be pulled here):
//! the real CRDs of `fixtures/velero-crds.yaml` and `fixtures/volsync-crds.yaml`, and a
//! thread per test namespace that does the controllers' visible work against real
//! neighbours — the test kube-apiserver, the SeaweedFS S3 server of [`super::s3`] (signed
//! with the credentials the objects name, so wrong keys are refused for real) and real
//! restic. It is modelled on Velero v1.18 and VolSync v0.16 (the versions of the CRDs);
//! where it simplifies, the module docs of `velero_standin/velero.rs` and `volsync.rs` say so.
//!
//! [`VeleroStandIn::start`] watches one namespace (tests use their own, so they run in
//! parallel) and stops when dropped. Every object kind honours the label
//! [`OUTCOME_LABEL`]`: Ignore` (never processed, no status at all); Backups and Restores
//! also take `Failed`, `PartiallyFailed`, `FailedValidation` and `Slow` (30 s in progress).
//!
//! What it must not know: anything of the provider. It reads and writes only what Velero
//! and VolSync read and write, and contacts nothing but 127.0.0.1.

mod grammar;
mod velero;
mod volsync;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};

use super::http::HttpClient;
use super::{cluster, kubectl, kubectl_stdin, wait_until};
use super::{kube_now as now, kube_time as rfc3339};

pub use grammar::{format_go_duration, parse_go_duration, validate_schedule};

/// API prefix of Velero's kinds.
pub const VELERO: &str = "/apis/velero.io/v1";
/// API prefix of VolSync's kinds.
pub const VOLSYNC: &str = "/apis/volsync.backube/v1alpha1";
/// The label that scripts what the stand-in does with an object: `Ignore` for every kind;
/// `Failed`, `PartiallyFailed`, `FailedValidation` and `Slow` for Backups and Restores.
pub const OUTCOME_LABEL: &str = "standin.velero.io/outcome";
/// The `failureReason` of a Backup or Restore labelled `Failed`.
pub const SCRIPTED_FAILURE: &str = "stand-in: scripted failure";
/// The validation error of a Backup or Restore labelled `FailedValidation`.
pub const SCRIPTED_VALIDATION_ERROR: &str = "stand-in: scripted validation error";

const CRDS: [&str; 7] = [
    "backupstoragelocations.velero.io",
    "schedules.velero.io",
    "backups.velero.io",
    "restores.velero.io",
    "deletebackuprequests.velero.io",
    "replicationsources.volsync.backube",
    "replicationdestinations.volsync.backube",
];
/// The field manager the fixture CRDs are applied with, as for the Flux fixtures.
const CRD_MANAGER: &str = "acceptance-tests";
/// How often the stand-in looks at its namespace.
const POLL: Duration = Duration::from_millis(250);

/// How the stand-in paces itself; [`Options::default`] suits tests.
#[derive(Debug, Clone)]
pub struct Options {
    /// How long a Backup or Restore stays `InProgress` (Velero: as long as the work takes).
    pub work: Duration,
    /// How long one labelled `Slow` stays `InProgress`.
    pub slow_work: Duration,
    /// How often a BackupStorageLocation is validated again when nothing changed (Velero's
    /// default `validationFrequency` is 1m); a changed spec or Secret is validated at once.
    pub validation_period: Duration,
    /// How often backups are synced between each Available location's bucket and the cluster
    /// (Velero's `backupSyncPeriod`, default 1m); `None` turns the sync off.
    pub backup_sync_period: Option<Duration>,
    /// How long to wait before running a failed restic mover again (VolSync retries its job).
    pub mover_retry: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            work: Duration::from_secs(1),
            slow_work: Duration::from_secs(30),
            validation_period: Duration::from_secs(5),
            backup_sync_period: Some(Duration::from_secs(5)),
            mover_retry: Duration::from_secs(10),
        }
    }
}

/// Something the stand-in did, for assertions (`what` is e.g. `Available`, `InProgress`,
/// `Completed`, `deleted`, `synced from bucket`, `restic backup`).
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub kind: &'static str,
    pub name: String,
    pub what: String,
    pub at: Instant,
}

/// What the test thread and the stand-in's thread share.
struct Shared {
    namespace: String,
    events: Mutex<Vec<Event>>,
    /// Directories standing in for the namespace's PersistentVolumeClaims, one per claim.
    volumes: tempfile::TempDir,
}

impl Shared {
    fn record(&self, kind: &'static str, name: &str, what: &str) {
        eprintln!("velero stand-in [{}]: {kind} {name}: {what}", self.namespace);
        self.events.lock().unwrap_or_else(|e| e.into_inner()).push(Event {
            kind,
            name: name.to_string(),
            what: what.to_string(),
            at: Instant::now(),
        });
    }

    fn volume_dir(&self, claim: &str) -> PathBuf {
        let dir = self.volumes.path().join(claim);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("velero stand-in: {}: {e}", dir.display()));
        dir
    }
}

/// The stand-in controllers for one namespace; stopped (and joined) when dropped.
pub struct VeleroStandIn {
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl VeleroStandIn {
    /// Installs the CRDs (once per test binary) and starts watching `namespace`.
    pub fn start(namespace: &str) -> VeleroStandIn {
        Self::start_with(namespace, Options::default())
    }

    pub fn start_with(namespace: &str, options: Options) -> VeleroStandIn {
        ensure_crds();
        Self::start_on(cluster().http().clone(), namespace, options)
    }

    /// Starts watching `namespace` of the cluster `api` reaches (a k3s stand-in's, say),
    /// whose Velero and VolSync CRDs are someone else's to install: until they are served,
    /// the stand-in reports the failed lists once and tries again.
    pub fn start_on(api: HttpClient, namespace: &str, options: Options) -> VeleroStandIn {
        let volumes = tempfile::Builder::new().prefix("tf-acc-standin-volumes-").tempdir().expect("temp dir");
        let shared = Arc::new(Shared { namespace: namespace.to_string(), events: Mutex::new(Vec::new()), volumes });
        let stop = Arc::new(AtomicBool::new(false));
        let mut controllers = Controllers::new(api, shared.clone(), options);
        let stopped = stop.clone();
        let thread = std::thread::Builder::new()
            .name(format!("velero-standin-{namespace}"))
            .spawn(move || {
                while !stopped.load(Ordering::Relaxed) {
                    controllers.tick_guarded();
                    std::thread::sleep(POLL);
                }
            })
            .expect("start the velero stand-in thread");
        eprintln!("velero stand-in [{namespace}]: started");
        VeleroStandIn { shared, stop, thread: Some(thread) }
    }

    pub fn namespace(&self) -> &str {
        &self.shared.namespace
    }

    /// The directory standing in for PersistentVolumeClaim `claim` of the namespace: what a
    /// ReplicationSource backs up and where a ReplicationDestination restores (created empty
    /// on first use; removed when the stand-in is dropped).
    pub fn volume_dir(&self, claim: &str) -> PathBuf {
        self.shared.volume_dir(claim)
    }

    /// Everything the stand-in did so far, in order.
    pub fn events(&self) -> Vec<Event> {
        self.shared.events.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// What it did to the object `kind`/`name`, in order (e.g. `["Queued", "ReadyToStart", ...]`).
    pub fn events_for(&self, kind: &str, name: &str) -> Vec<String> {
        self.events().into_iter().filter(|e| e.kind == kind && e.name == name).map(|e| e.what).collect()
    }
}

impl Drop for VeleroStandIn {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        eprintln!("velero stand-in [{}]: stopped", self.shared.namespace);
    }
}

/// Applies the Velero and VolSync fixture CRDs (server-side: VolSync's are larger than a
/// client-side apply's annotation allows) and waits until every kind is served. Idempotent;
/// the first caller in the test binary does the work, the others wait for it.
pub fn ensure_crds() {
    static READY: OnceLock<()> = OnceLock::new();
    READY.get_or_init(|| {
        for file in ["velero-crds.yaml", "volsync-crds.yaml"] {
            let text = super::fixture(file);
            kubectl_stdin(
                &["apply", "--server-side", "--force-conflicts", &format!("--field-manager={CRD_MANAGER}"), "-f", "-"],
                &text,
            )
            .assert_success();
        }
        let mut args = vec!["wait", "--for=condition=Established", "--timeout=60s"];
        let names: Vec<String> = CRDS.iter().map(|c| format!("crd/{c}")).collect();
        args.extend(names.iter().map(String::as_str));
        kubectl(&args).assert_success();
        wait_until("Velero and VolSync kinds served", Duration::from_secs(60), || {
            for crd in CRDS {
                let (plural, group) = crd.split_once('.').unwrap();
                let base = if group == "velero.io" { VELERO } else { VOLSYNC };
                let resp = cluster().get(&format!("{base}/{plural}"));
                if !resp.ok() {
                    return Err(format!("{base}/{plural}: HTTP {}", resp.status));
                }
            }
            Ok(())
        });
    });
}

/// `/apis/velero.io/v1/namespaces/<ns>/<plural>[/<name>]`.
pub fn velero_path(namespace: &str, plural: &str, name: &str) -> String {
    object_path(VELERO, namespace, plural, name)
}

/// `/apis/volsync.backube/v1alpha1/namespaces/<ns>/<plural>[/<name>]`.
pub fn volsync_path(namespace: &str, plural: &str, name: &str) -> String {
    object_path(VOLSYNC, namespace, plural, name)
}

fn object_path(base: &str, namespace: &str, plural: &str, name: &str) -> String {
    match name {
        "" => format!("{base}/namespaces/{namespace}/{plural}"),
        n => format!("{base}/namespaces/{namespace}/{plural}/{n}"),
    }
}

/// An AWS shared credentials file, the format Velero reads from a location's Secret key.
pub fn aws_credentials_file(access_key: &str, secret_key: &str) -> String {
    format!("[default]\naws_access_key_id={access_key}\naws_secret_access_key={secret_key}\n")
}

/// The `type` condition of an object's `status.conditions`.
pub fn condition<'a>(object: &'a Value, kind: &str) -> Option<&'a Value> {
    object["status"]["conditions"].as_array()?.iter().find(|c| c["type"] == kind)
}

/// Velero's `label.GetValidName`: a name as a label value (over 63 characters: 57 of them
/// and 6 hex digits of its SHA-256).
pub fn label_value(name: &str) -> String {
    use sha2::{Digest, Sha256};
    if name.len() <= 63 {
        return name.to_string();
    }
    format!("{}{}", &name[..57], &hex::encode(Sha256::digest(name.as_bytes()))[..6])
}

// ------------------------------------------------------------------------ the loop

/// The stand-in's state, owned by its thread.
struct Controllers {
    /// The API server of the cluster it watches.
    api: HttpClient,
    shared: Arc<Shared>,
    options: Options,
    /// Messages printed once (refused writes, objects it cannot read).
    reported: HashSet<String>,
    velero: velero::State,
    volsync: volsync::State,
}

impl Controllers {
    fn new(api: HttpClient, shared: Arc<Shared>, options: Options) -> Self {
        Controllers { api, shared, options, reported: HashSet::new(), velero: Default::default(), volsync: Default::default() }
    }

    /// One round, a panic (e.g. the S3 server gone) reported instead of ending the thread.
    fn tick_guarded(&mut self) {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.tick()));
        if let Err(panic) = result {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "(no message)".to_string());
            self.report(&format!("a round failed: {message}"));
        }
    }

    fn tick(&mut self) {
        velero::tick(self);
        volsync::tick(self);
    }

    fn ns(&self) -> &str {
        &self.shared.namespace
    }

    fn record(&self, kind: &'static str, name: &str, what: &str) {
        self.shared.record(kind, name, what);
    }

    /// Prints `message` the first time only.
    fn report(&mut self, message: &str) {
        if self.reported.insert(message.to_string()) {
            eprintln!("velero stand-in [{}]: {message}", self.shared.namespace);
        }
    }

    /// The items of a list; an error is reported and reads as empty.
    fn list(&mut self, path: &str) -> Vec<Value> {
        match self.api.get(path) {
            Ok(resp) if resp.ok() => resp.json()["items"].as_array().cloned().unwrap_or_default(),
            Ok(resp) => {
                self.report(&format!("GET {path}: HTTP {}: {}", resp.status, resp.body));
                Vec::new()
            }
            Err(e) => {
                self.report(&format!("GET {path}: {e}"));
                Vec::new()
            }
        }
    }

    /// The object, `Ok(None)` on 404.
    fn get(&mut self, path: &str) -> Result<Option<Value>, String> {
        let resp = self.api.get(path)?;
        match resp.status {
            404 => Ok(None),
            s if (200..300).contains(&s) => Ok(Some(resp.json())),
            s => Err(format!("GET {path}: HTTP {s}: {}", resp.body)),
        }
    }

    /// A JSON merge patch (of `path` or its `/status`); a refusal is reported.
    fn patch(&mut self, path: &str, body: &Value) -> bool {
        self.send("PATCH", path, Some(body))
    }

    fn create(&mut self, path: &str, body: &Value) -> bool {
        self.send("POST", path, Some(body))
    }

    /// Deletes the object; one already gone counts as deleted.
    fn delete(&mut self, path: &str) -> bool {
        self.send("DELETE", path, None)
    }

    fn send(&mut self, method: &str, path: &str, body: Option<&Value>) -> bool {
        let content_type = match method {
            "PATCH" => Some("application/merge-patch+json"),
            _ => body.map(|_| "application/json"),
        };
        let bytes = body.map(|b| b.to_string().into_bytes());
        let problem = match self.api.request(method, path, content_type, bytes.as_deref()) {
            Ok(resp) if resp.ok() || (method == "DELETE" && resp.status == 404) => return true,
            Ok(resp) => format!("HTTP {}: {}", resp.status, resp.body),
            Err(e) => e,
        };
        self.report(&format!("{method} {path} refused: {problem}"));
        false
    }

    /// The data of Secret `name` (decoded) and its resourceVersion; the error reads as
    /// the API server's (`secrets "x" not found`).
    fn secret(&mut self, name: &str) -> Result<(String, HashMap<String, Vec<u8>>), String> {
        let path = format!("/api/v1/namespaces/{}/secrets/{name}", self.ns());
        let secret = self.get(&path)?.ok_or_else(|| format!("secrets \"{name}\" not found"))?;
        let mut data = HashMap::new();
        for (key, value) in secret["data"].as_object().into_iter().flatten() {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(value.as_str().unwrap_or_default())
                .map_err(|e| format!("secret {name} key {key}: {e}"))?;
            data.insert(key.clone(), bytes);
        }
        Ok((secret["metadata"]["resourceVersion"].as_str().unwrap_or_default().to_string(), data))
    }
}

// ------------------------------------------------------------------------ small helpers

fn name_of(object: &Value) -> &str {
    object["metadata"]["name"].as_str().unwrap_or_default()
}

fn uid_of(object: &Value) -> String {
    object["metadata"]["uid"].as_str().unwrap_or_default().to_string()
}

fn phase_of(object: &Value) -> &str {
    object["status"]["phase"].as_str().unwrap_or_default()
}

/// The scripted outcome of [`OUTCOME_LABEL`], `""` when unlabelled.
fn outcome_of(object: &Value) -> &str {
    object["metadata"]["labels"][OUTCOME_LABEL].as_str().unwrap_or_default()
}

fn ignored(object: &Value) -> bool {
    outcome_of(object) == "Ignore"
}

/// `json!` objects merged: `patch`'s keys over `base`'s (nulls remove), recursively, as a
/// JSON merge patch applies.
fn merged(base: &Value, patch: &Value) -> Value {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            let mut out = b.clone();
            for (key, value) in p {
                if value.is_null() {
                    out.remove(key);
                } else {
                    let next = merged(b.get(key).unwrap_or(&Value::Null), value);
                    out.insert(key.clone(), next);
                }
            }
            Value::Object(out)
        }
        (_, p) => p.clone(),
    }
}

/// The text of every `<tag>...</tag>` in an S3 answer (no entities expected in what the
/// stand-in reads: codes, messages, keys it wrote itself).
fn xml_texts(xml: &str, tag: &str) -> Vec<String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    xml.split(&open).skip(1).filter_map(|part| part.split_once(&close).map(|(text, _)| text.to_string())).collect()
}

/// A condition with `lastTransitionTime` kept when its status did not change, as
/// `meta.SetStatusCondition` does; the other conditions are kept as they are.
fn set_condition(object: &Value, kind: &str, status: &str, reason: &str, message: &str) -> Value {
    let mut conditions: Vec<Value> = object["status"]["conditions"].as_array().cloned().unwrap_or_default();
    let generation = object["metadata"]["generation"].as_i64().unwrap_or(1);
    let previous = conditions.iter().position(|c| c["type"] == kind);
    let transition = match previous.map(|i| &conditions[i]) {
        Some(c) if c["status"] == status => c["lastTransitionTime"].clone(),
        _ => json!(now()),
    };
    let condition = json!({
        "type": kind, "status": status, "reason": reason, "message": message,
        "lastTransitionTime": transition, "observedGeneration": generation,
    });
    match previous {
        Some(i) => conditions[i] = condition,
        None => conditions.push(condition),
    }
    Value::Array(conditions)
}
