//! VolSync v0.16's restic mover as the stand-in plays it: instead of a mover Job, the
//! stand-in runs real restic on this machine against the repository its Secret names, with
//! a directory standing in for the PersistentVolumeClaim ([`super::VeleroStandIn::volume_dir`]).
//!
//! - **ReplicationSource** (`spec.restic`): synchronises once at first sight and again
//!   whenever `spec.trigger.manual` differs from `status.lastManualSync` — `lastSyncStartTime`
//!   and `Synchronizing=True` (SyncInProgress), then the mover's script: `restic cat config`,
//!   `restic init` when there is no repository yet, `restic backup --host volsync .` in the
//!   claim's directory, `restic forget` by `spec.restic.retain`; then `lastSyncTime`,
//!   `lastSyncDuration`, `lastManualSync`, `latestMoverStatus` (Successful, restic's lines
//!   filtered as VolSync filters them) and `Synchronizing=False` (WaitingForManual or
//!   WaitingForSchedule).
//! - **ReplicationDestination**: the same trigger; `restic restore latest --host volsync` into
//!   the directory of `spec.restic.destinationPVC` (or of `volsync-<name>-dst`, a claim it
//!   creates from `capacity`/`accessModes` as VolSync does); `latestImage` is that claim for
//!   copyMethod Direct (without VolSync's `apiGroup: ""`, which kube-apiserver v1.20.2 refuses).
//! - Failures: an unreadable Secret (`secret is missing field: RESTIC_PASSWORD`), a missing
//!   claim or a failing restic give `Synchronizing=False` with reason Error and the message,
//!   and `latestMoverStatus` Failed with restic's output; the mover is run again after
//!   [`super::Options::mover_retry`]. (VolSync keeps retrying its Job in the background and
//!   reports Failed after eight attempts; the stand-in reports the first failure.)
//!
//! Not played: schedules (after the first sync a scheduled object waits: no `nextSyncTime`),
//! the tight loop of an object without a trigger (it syncs once), `paused`, copy methods
//! Clone and Snapshot (the claim's directory is read directly; no VolumeSnapshot is made),
//! `restoreAsOf`/`previous`, prune, unlock, custom CAs, and movers other than restic. A
//! repository that is not on 127.0.0.1 (or a local path) is refused without being contacted.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::grammar::format_go_duration;
use super::{name_of, now, set_condition, uid_of, volsync_path, Controllers};
use crate::harness::{env_or_testenv, run_command, CmdOutput};

/// The host name VolSync's mover gives every snapshot.
const RESTIC_HOST: &str = "volsync";
/// How long one restic command may run.
const RESTIC_TIMEOUT: Duration = Duration::from_secs(180);

#[derive(Default)]
pub(super) struct State {
    /// Object uid → when its failed mover may run again.
    retry_after: HashMap<String, Instant>,
    /// Object uid → when its current synchronisation began.
    sync_started: HashMap<String, Instant>,
}

#[derive(Clone, Copy, PartialEq)]
enum Side {
    Source,
    Destination,
}

impl Side {
    fn kind(self) -> &'static str {
        match self {
            Side::Source => "ReplicationSource",
            Side::Destination => "ReplicationDestination",
        }
    }

    fn plural(self) -> &'static str {
        match self {
            Side::Source => "replicationsources",
            Side::Destination => "replicationdestinations",
        }
    }
}

pub(super) fn tick(c: &mut Controllers) {
    for side in [Side::Source, Side::Destination] {
        for object in c.list(&volsync_path(c.ns(), side.plural(), "")) {
            reconcile(c, &object, side);
        }
    }
}

fn reconcile(c: &mut Controllers, object: &Value, side: Side) {
    if super::ignored(object) || !object["metadata"]["deletionTimestamp"].is_null() || object["spec"]["paused"] == true {
        return;
    }
    let (spec, status) = (&object["spec"], &object["status"]);
    let name = name_of(object).to_string();
    let uid = uid_of(object);
    let manual = spec["trigger"]["manual"].as_str().filter(|m| !m.is_empty());
    let syncing = status["lastSyncStartTime"].is_string();
    let due = syncing || !status["lastSyncTime"].is_string() || manual.is_some_and(|m| status["lastManualSync"] != m);
    if !due || c.volsync.retry_after.get(&uid).is_some_and(|at| Instant::now() < *at) {
        return;
    }
    if spec["restic"].is_null() {
        c.report(&format!("{} {name}: only the restic mover is played", side.kind()));
        return;
    }
    let status_path = format!("{}/status", volsync_path(c.ns(), side.plural(), &name));
    if !syncing {
        let conditions = set_condition(object, "Synchronizing", "True", "SyncInProgress", "Synchronization in-progress");
        if !c.patch(&status_path, &json!({"status": {"lastSyncStartTime": now(), "conditions": conditions}})) {
            return;
        }
        c.record(side.kind(), &name, "SyncInProgress");
    }
    let started = *c.volsync.sync_started.entry(uid.clone()).or_insert_with(Instant::now);
    match run_mover(c, object, side) {
        Ok(Mover { logs, image }) => {
            let (reason, message) = match spec["trigger"]["schedule"].as_str().filter(|_| manual.is_none()) {
                Some(_) => ("WaitingForSchedule", "Waiting for next scheduled synchronization"),
                None => ("WaitingForManual", "Waiting for manual trigger"),
            };
            let mut update = json!({
                "lastSyncTime": now(),
                "lastSyncDuration": format_go_duration(Duration::from_millis(started.elapsed().as_millis() as u64)),
                "lastSyncStartTime": null,
                "lastManualSync": manual,
                "latestMoverStatus": {"result": "Successful", "logs": logs},
                "conditions": set_condition(object, "Synchronizing", "False", reason, message),
            });
            if let Some(image) = image {
                update["latestImage"] = image;
            }
            if c.patch(&status_path, &json!({ "status": update })) {
                c.volsync.sync_started.remove(&uid);
                c.volsync.retry_after.remove(&uid);
                c.record(side.kind(), &name, &format!("Synced (trigger {})", manual.unwrap_or("none")));
            } else {
                // Not again at once: the refusal is reported, the mover's work is done.
                c.volsync.retry_after.insert(uid, Instant::now() + c.options.mover_retry);
            }
        }
        Err(Failure { message, logs }) => {
            let update = json!({
                "latestMoverStatus": {"result": "Failed", "logs": logs},
                "conditions": set_condition(object, "Synchronizing", "False", "Error", &message),
            });
            c.volsync.retry_after.insert(uid, Instant::now() + c.options.mover_retry);
            if c.patch(&status_path, &json!({ "status": update })) {
                c.record(side.kind(), &name, &format!("Error: {message}"));
            }
        }
    }
}

struct Mover {
    /// restic's lines as VolSync keeps them.
    logs: String,
    /// `latestImage` of a destination.
    image: Option<Value>,
}

struct Failure {
    /// The condition's message.
    message: String,
    /// All of the mover's output.
    logs: String,
}

impl Failure {
    fn new(message: impl Into<String>) -> Failure {
        Failure { message: message.into(), logs: String::new() }
    }
}

/// The mover's work for one synchronisation.
fn run_mover(c: &mut Controllers, object: &Value, side: Side) -> Result<Mover, Failure> {
    let restic = &object["spec"]["restic"];
    let repository_secret = restic["repository"].as_str().unwrap_or_default();
    let (_, data) = c.secret(repository_secret).map_err(Failure::new)?;
    let required = ["RESTIC_REPOSITORY", "RESTIC_PASSWORD"];
    if data.len() < required.len() {
        return Err(Failure::new(format!("secret should have fields: [{}]", required.join(" "))));
    }
    if let Some(missing) = required.iter().find(|k| !data.contains_key(**k)) {
        return Err(Failure::new(format!("secret is missing field: {missing}")));
    }
    let repository = String::from_utf8_lossy(&data["RESTIC_REPOSITORY"]).into_owned();
    let local = ["s3:http://127.0.0.1:", "s3:http://localhost:", "/"].iter().any(|p| repository.starts_with(p));
    if !local {
        return Err(Failure::new(format!(
            "velero stand-in: repository {repository:?} is not on 127.0.0.1 (s3:http://127.0.0.1:PORT/...) or a local path; the stand-in reaches nothing else"
        )));
    }
    let claim = match side {
        Side::Source => object["spec"]["sourcePVC"].as_str().unwrap_or_default().to_string(),
        Side::Destination => destination_claim(c, object)?,
    };
    let claim_path = format!("/api/v1/namespaces/{}/persistentvolumeclaims/{claim}", c.ns());
    if c.get(&claim_path).map_err(Failure::new)?.is_none() {
        return Err(Failure::new(format!("persistentvolumeclaims {claim:?} not found")));
    }
    let dir = c.shared.volume_dir(&claim);
    let env: Vec<(String, String)> = data
        .iter()
        .filter(|(k, _)| k.starts_with("RESTIC_") || k.starts_with("AWS_"))
        .map(|(k, v)| (k.clone(), String::from_utf8_lossy(v).into_owned()))
        .chain([("RESTIC_CACHE_DIR".to_string(), c.shared.volumes.path().join(".restic-cache").display().to_string())])
        .collect();
    let run = |args: &[&str], cwd: &Path| restic_command(args, cwd, &env);
    let started = Instant::now();
    let mut log = vec![format!("VolSync restic container version: velero stand-in (restic on {})", std::env::consts::OS)];
    let fail = |log: &mut Vec<String>, what: &str, out: &CmdOutput| {
        log.push(out.combined());
        let detail = out.combined().lines().rev().find(|l| l.contains("Fatal") || l.contains("rror")).unwrap_or("").trim().to_string();
        Failure { message: format!("{what} (restic exit {}): {detail}", out.code()), logs: log.join("\n") }
    };

    log.push("=== Check for dir initialized ===".to_string());
    let config = run(&["cat", "config"], &dir);
    if config.success() {
        log.push("dir is initialized".to_string());
    } else if config.combined().contains("Is there a repository at the following location?") {
        log.push("=== Initialize Dir ===".to_string());
        let init = run(&["init"], &dir);
        if !init.success() {
            return Err(fail(&mut log, "restic init failed", &init));
        }
        log.push(init.combined());
    } else {
        return Err(fail(&mut log, "failure checking existence of repository", &config));
    }

    let image = match side {
        Side::Source => {
            log.push("=== Starting backup ===".to_string());
            let backup = run(&["backup", "--host", RESTIC_HOST, "--exclude=lost+found", "."], &dir);
            if !backup.success() {
                return Err(fail(&mut log, "restic backup failed", &backup));
            }
            log.push(backup.combined());
            let forget = forget_options(&restic["retain"]);
            if !forget.is_empty() {
                log.push("=== Starting forget ===".to_string());
                let mut args = vec!["forget", "--host", RESTIC_HOST];
                args.extend(forget.iter().map(String::as_str));
                let out = run(&args, &dir);
                if !out.success() {
                    return Err(fail(&mut log, "restic forget failed", &out));
                }
                log.push(out.combined());
            }
            None
        }
        Side::Destination => {
            let snapshots = run(&["snapshots", "--host", RESTIC_HOST, "--json"], &dir);
            if !snapshots.success() {
                return Err(fail(&mut log, "failure getting list of snapshots from repository", &snapshots));
            }
            let none = serde_json::from_str::<Value>(&snapshots.stdout).ok().and_then(|v| v.as_array().map(Vec::is_empty)).unwrap_or(true);
            if none {
                log.push("No eligible snapshots found".to_string());
            } else {
                log.push("=== Starting restore ===".to_string());
                let target = dir.display().to_string();
                let restore = run(&["restore", "latest", "--host", RESTIC_HOST, "--target", &target], &dir);
                if !restore.success() {
                    return Err(fail(&mut log, "restic restore failed", &restore));
                }
                log.push(restore.combined());
            }
            let direct = matches!(restic["copyMethod"].as_str(), Some("Direct") | Some("None"));
            // VolSync also sends `apiGroup: ""`, which kube-apiserver v1.20.2 refuses as null.
            direct.then(|| json!({"kind": "PersistentVolumeClaim", "name": claim}))
        }
    };
    log.push(format!("Restic completed in {}s", started.elapsed().as_secs()));
    Ok(Mover { logs: filter_logs(&log.join("\n")), image })
}

/// `spec.restic.destinationPVC`, else `volsync-<name>-dst`, created from `capacity` and
/// `accessModes` (owned by the destination) when it does not exist.
fn destination_claim(c: &mut Controllers, object: &Value) -> Result<String, Failure> {
    let restic = &object["spec"]["restic"];
    if let Some(claim) = restic["destinationPVC"].as_str().filter(|c| !c.is_empty()) {
        return Ok(claim.to_string());
    }
    let name = format!("volsync-{}-dst", name_of(object));
    let path = format!("/api/v1/namespaces/{}/persistentvolumeclaims", c.ns());
    if c.get(&format!("{path}/{name}")).map_err(Failure::new)?.is_some() {
        return Ok(name);
    }
    let (Some(capacity), Some(modes)) = (restic["capacity"].as_str(), restic["accessModes"].as_array()) else {
        return Err(Failure::new("when destinationPVC is not provided, capacity and accessModes must be"));
    };
    let mut claim = json!({
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {
            "name": name,
            "labels": {"app.kubernetes.io/created-by": "volsync"},
            "ownerReferences": [{
                "apiVersion": "volsync.backube/v1alpha1", "kind": "ReplicationDestination",
                "name": name_of(object), "uid": uid_of(object), "controller": true, "blockOwnerDeletion": true,
            }],
        },
        "spec": {"accessModes": modes, "resources": {"requests": {"storage": capacity}}},
    });
    if let Some(class) = restic["storageClassName"].as_str() {
        claim["spec"]["storageClassName"] = json!(class);
    }
    if !c.create(&path, &claim) {
        return Err(Failure::new(format!("creating persistentvolumeclaim {name} failed")));
    }
    c.record("ReplicationDestination", name_of(object), &format!("created claim {name}"));
    Ok(name)
}

/// `restic forget` options from `spec.restic.retain`, as VolSync's mover passes them.
fn forget_options(retain: &Value) -> Vec<String> {
    let mut options = Vec::new();
    // `last` and `within` are strings in the CRD, the others integers.
    for (field, flag) in [
        ("hourly", "--keep-hourly"),
        ("daily", "--keep-daily"),
        ("weekly", "--keep-weekly"),
        ("monthly", "--keep-monthly"),
        ("yearly", "--keep-yearly"),
        ("last", "--keep-last"),
        ("within", "--keep-within"),
    ] {
        let value = match &retain[field] {
            Value::Number(n) => n.to_string(),
            Value::String(s) => s.clone(),
            _ => continue,
        };
        options.extend([flag.to_string(), value]);
    }
    options
}

/// restic with only the Secret's variables (and the cache dir) in its environment.
fn restic_command(args: &[&str], cwd: &Path, env: &[(String, String)]) -> CmdOutput {
    let program = env_or_testenv("TF_ACC_RESTIC").unwrap_or_else(|| "restic".to_string());
    let mut cmd = Command::new(program);
    cmd.args(args).current_dir(cwd);
    for (key, _) in std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v))) {
        if key.starts_with("RESTIC_") || key.starts_with("AWS_") {
            cmd.env_remove(key);
        }
    }
    cmd.envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    run_command(cmd, None, RESTIC_TIMEOUT)
}

/// VolSync's `LogLineFilterSuccess`: the restic lines worth keeping in the status.
fn filter_logs(logs: &str) -> String {
    static FILTER: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let filter = FILTER.get_or_init(|| {
        regex::Regex::new(concat!(
            r"^\s*([pP]rocessed)\s.+([fF]iles)|",
            r"^\s*([sS]napshot)\s.+([sS]aved)|",
            r"^\s*(No eligible)|",
            r"(No data)|",
            r"(Directory is empty)|",
            r"^\s*([cC]reated)|",
            r"^\s*([rR]epository)\s.+([oO]pened)|",
            r"^\s*([rR]estoring)|",
            r"^\s*([nN]o parent snapshot)|",
            r"^\s*([uU]sing parent snapshot)|",
            r"^\s*([aA]dded to the repository)|",
            r"^\s*([sS]uccessfully)|",
            r"(RESTORE_OPTIONS)|",
            r"([iI]nitialize [dD]ir)|",
            r"^\s*([fF]atal)|",
            r"^\s*(ERROR)|",
            r"^\s*([rR]estic completed in)",
        ))
        .expect("VolSync's log filter")
    });
    logs.lines().filter(|l| filter.is_match(l)).collect::<Vec<_>>().join("\n")
}
