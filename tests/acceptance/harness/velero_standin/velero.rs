//! Velero v1.18's controllers as the stand-in plays them, one namespace per stand-in:
//!
//! - **BackupStorageLocation**: lists the bucket prefix (delimiter `/`) with the credentials
//!   of the location's Secret (`spec.credential`, else Velero's default `cloud-credentials`
//!   key `cloud`, an AWS shared credentials file) and sets `phase` Available or Unavailable,
//!   `lastValidationTime` and on failure `message` (`BackupStorageLocation "x" is
//!   unavailable: ...` with the S3 error code and message, as the AWS plugin reports them; a
//!   prefix holding other top-level directories than Velero's is Unavailable too). Validated at
//!   once when its spec or Secret changes, and every [`Options::validation_period`]. Of several
//!   `default` locations it keeps the newest and unsets the others, as Velero does.
//! - **Schedule**: `spec.skipImmediately` written back (`false` when unset; `true` is reset to
//!   `false` with `status.lastSkipped`), the cron checked with robfig/cron's grammar → `Enabled`
//!   or `FailedValidation` with `validationErrors`. A paused schedule is not looked at at all
//!   (Velero filters them out: one created paused never gets a phase). Velero does not check
//!   `template.storageLocation` here (a missing location fails the backup), so neither does
//!   this. It never creates Backups on the cron.
//! - **Backup**: New → Queued (`queuePosition`) → ReadyToStart → InProgress (`startTimestamp`,
//!   `expiration`, `version`, `formatVersion`, `progress`; spec defaults written back: `ttl`
//!   `720h0m0s`, `storageLocation` (the default location), timeouts, ...) → Finalizing →
//!   Completed, or FailedValidation (location missing, read-only or not Available). One backup
//!   runs at a time per namespace, as with Velero's default concurrency. `velero-backup.json`,
//!   `<name>.tar.gz` (not a real tarball) and `<name>-logs.gz` are written to
//!   `<prefix>/backups/<name>/` with the location's credentials.
//! - **DeleteBackupRequest**: Velero's checks and messages; deletes the backup's objects from
//!   the bucket, its Restores, then the Backup; `Processed` (with `errors`), and on success
//!   every request for that backup is deleted, as Velero does at once.
//! - **Restore**: finalizer `restores.velero.io/external-resources-finalizer` added (removed on
//!   deletion, after the restore's files are deleted from the bucket); `backupName` or the
//!   schedule's latest Completed backup; FailedValidation with Velero's messages, else
//!   InProgress → Finalizing → Completed, `restore-<name>-logs.gz`/`-results.gz` written to
//!   `<prefix>/restores/<name>/`. Nothing is restored into the cluster.
//! - **Backup sync** (every [`Options::backup_sync_period`]): a backup in an Available
//!   location's bucket but not in the cluster is created from its `velero-backup.json` (so a
//!   plain DELETE of a Backup comes back, as with Velero); a Completed/PartiallyFailed Backup
//!   labelled with a location whose bucket no longer has it is deleted.
//!
//! Not played: the garbage collection of expired backups, volume snapshots and file-system
//! backups, plugins other than `aws`, TLS to the S3 server (`caCert`, `insecureSkipTLSVerify`
//! are ignored), backup hooks, and any real backup or restore of cluster objects. An object
//! Velero could not decode (a `ttl` that is no Go duration) stays unprocessed, as with Velero.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

use super::grammar::{format_go_duration, parse_go_duration, validate_schedule};
use super::{
    label_value, merged, name_of, now, outcome_of, phase_of, rfc3339, uid_of, velero_path, xml_texts, Controllers,
    SCRIPTED_FAILURE, SCRIPTED_VALIDATION_ERROR,
};
use crate::harness::s3::{s3, S3Response};

const RESTORE_FINALIZER: &str = "restores.velero.io/external-resources-finalizer";
const STORAGE_LOCATION_LABEL: &str = "velero.io/storage-location";
const SCHEDULE_NAME_LABEL: &str = "velero.io/schedule-name";
const BACKUP_NAME_LABEL: &str = "velero.io/backup-name";
const BACKUP_UID_LABEL: &str = "velero.io/backup-uid";
/// Velero's `--default-backup-storage-location`.
const SERVER_DEFAULT_LOCATION: &str = "default";
const DEFAULT_TTL: Duration = Duration::from_secs(720 * 3600);
/// What the stand-in says it backed up or restored (Velero counts the real objects).
const ITEMS: u64 = 10;
/// The top-level directories Velero allows under a location's prefix.
const VELERO_DIRS: [&str; 6] = ["backups", "restores", "restic", "metadata", "plugins", "kopia"];

#[derive(Default)]
pub(super) struct State {
    /// Location uid → fingerprint of its spec and Secret, and when it was last validated.
    validated: HashMap<String, (u64, Instant)>,
    /// Backup or Restore uid → when its work began.
    started: HashMap<String, Instant>,
    last_sync: Option<Instant>,
}

pub(super) fn tick(c: &mut Controllers) {
    let ns = c.ns().to_string();
    let locations_path = velero_path(&ns, "backupstoragelocations", "");
    let mut locations = c.list(&locations_path);
    let mut changed = single_default(c, &locations);
    for location in &locations {
        changed |= validate_location(c, location);
    }
    if changed {
        locations = c.list(&locations_path);
    }
    for schedule in c.list(&velero_path(&ns, "schedules", "")) {
        reconcile_schedule(c, &schedule);
    }
    let mut backups = c.list(&velero_path(&ns, "backups", ""));
    for i in 0..backups.len() {
        reconcile_backup(c, i, &mut backups, &locations);
    }
    let requests = c.list(&velero_path(&ns, "deletebackuprequests", ""));
    for request in &requests {
        let backups = c.list(&velero_path(&ns, "backups", ""));
        reconcile_delete_request(c, request, &requests, &backups, &locations);
    }
    let restores = c.list(&velero_path(&ns, "restores", ""));
    if !restores.is_empty() {
        let backups = c.list(&velero_path(&ns, "backups", ""));
        for restore in &restores {
            reconcile_restore(c, restore, &backups, &locations);
        }
    }
    sync_backups(c, &locations);
}

fn find<'a>(objects: &'a [Value], name: &str) -> Option<&'a Value> {
    objects.iter().find(|o| name_of(o) == name)
}

fn available(location: &Value) -> bool {
    phase_of(location) == "Available"
}

fn read_only(location: &Value) -> bool {
    location["spec"]["accessMode"] == "ReadOnly"
}

// ------------------------------------------------------------------------ locations

/// Velero's `ensureSingleDefaultBSL`: of several default locations the newest stays default.
fn single_default(c: &mut Controllers, locations: &[Value]) -> bool {
    let defaults: Vec<&Value> =
        locations.iter().filter(|l| l["spec"]["default"] == true && !super::ignored(l)).collect();
    if defaults.len() < 2 {
        return false;
    }
    let created = |l: &Value| l["metadata"]["creationTimestamp"].as_str().unwrap_or_default().to_string();
    let newest = defaults.iter().fold(defaults[0], |newest, l| if created(newest) < created(l) { l } else { newest });
    for location in defaults.iter().filter(|l| name_of(l) != name_of(newest)) {
        let name = name_of(location);
        if c.patch(&velero_path(c.ns(), "backupstoragelocations", name), &json!({"spec": {"default": false}})) {
            c.record("BackupStorageLocation", name, &format!("default unset ({} is newer)", name_of(newest)));
        }
    }
    true
}

/// Validates the location when it is new, changed (spec or Secret) or due; true when it
/// wrote a status.
fn validate_location(c: &mut Controllers, location: &Value) -> bool {
    if super::ignored(location) || !location["metadata"]["deletionTimestamp"].is_null() {
        return false;
    }
    let (secret_name, _) = credential_ref(location);
    let secret_version = c.secret(&secret_name).map(|(version, _)| version).unwrap_or_else(|e| e);
    let mut hasher = DefaultHasher::new();
    (location["spec"].to_string(), secret_version).hash(&mut hasher);
    let fingerprint = hasher.finish();
    let period = c.options.validation_period;
    let due = match c.velero.validated.get(&uid_of(location)) {
        Some((seen, at)) => *seen != fingerprint || at.elapsed() >= period || phase_of(location).is_empty(),
        None => true,
    };
    if !due {
        return false;
    }
    let name = name_of(location).to_string();
    let (phase, message) = match open_bucket(c, location).and_then(|bucket| bucket.validate()) {
        Ok(()) => ("Available", Value::Null),
        Err(e) => ("Unavailable", json!(format!("BackupStorageLocation {name:?} is unavailable: {e}"))),
    };
    c.velero.validated.insert(uid_of(location), (fingerprint, Instant::now()));
    let status = json!({"phase": phase, "message": message, "lastValidationTime": now()});
    let path = velero_path(c.ns(), "backupstoragelocations", &name);
    let written = c.patch(&path, &json!({ "status": status }));
    if written && (phase_of(location) != phase || location["status"]["message"] != message) {
        let what = match message.as_str() {
            Some(m) => format!("{phase}: {m}"),
            None => phase.to_string(),
        };
        c.record("BackupStorageLocation", &name, &what);
    }
    written
}

/// The Secret and key holding the location's credentials file.
fn credential_ref(location: &Value) -> (String, String) {
    let credential = &location["spec"]["credential"];
    match (credential["name"].as_str(), credential["key"].as_str()) {
        (Some(name), Some(key)) => (name.to_string(), key.to_string()),
        // What `velero install` and the chart mount into the server when no credential is named.
        _ => ("cloud-credentials".to_string(), "cloud".to_string()),
    }
}

/// A location's bucket, reached the way the AWS plugin would with the location's config
/// and credentials; the error is the text Velero puts after "is unavailable: ".
fn open_bucket(c: &mut Controllers, location: &Value) -> Result<Bucket, String> {
    let spec = &location["spec"];
    let provider = spec["provider"].as_str().unwrap_or_default();
    if !matches!(provider, "aws" | "velero.io/aws") {
        return Err(format!("unable to locate ObjectStore plugin named velero.io/{}", provider.trim_start_matches("velero.io/")));
    }
    let bucket = spec["objectStorage"]["bucket"].as_str().unwrap_or_default().to_string();
    let root = match spec["objectStorage"]["prefix"].as_str().unwrap_or_default().trim_matches('/') {
        "" => String::new(),
        prefix => format!("{prefix}/"),
    };
    let (secret_name, key) = credential_ref(location);
    let (_, data) = c.secret(&secret_name).map_err(|e| format!("unable to get credentials: {e}"))?;
    let file = data.get(&key).ok_or_else(|| format!("unable to get credentials: key {key:?} not found in secret {secret_name}"))?;
    let profile = spec["config"]["profile"].as_str().unwrap_or("default");
    let (access_key, secret_key) = credentials_from_file(&String::from_utf8_lossy(file), profile)
        .ok_or_else(|| format!("failed to get shared config profile, {profile}"))?;

    let config = &spec["config"];
    let url = config["s3Url"].as_str().unwrap_or_default().trim_end_matches('/').to_string();
    let list_url = format!("{url}/{bucket}?delimiter=%2F&list-type=2&prefix={}", root.replace('/', "%2F"));
    let send_failed = |cause: &str| {
        format!(
            "rpc error: code = Unknown desc = operation error S3: ListObjectsV2, exceeded maximum number of attempts, 3, https response error StatusCode: 0, RequestID: , HostID: , request send failed, Get {list_url:?}: {cause}"
        )
    };
    let (scheme, authority) = url.split_once("://").ok_or_else(|| {
        "velero stand-in: config.s3Url must name the test S3 server (http://127.0.0.1:PORT); the stand-in reaches nothing else".to_string()
    })?;
    let authority = authority.split('/').next().unwrap_or_default();
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) => (h, p.parse::<u16>().map_err(|e| format!("velero stand-in: bad port in s3Url {url}: {e}"))?),
        None => (authority, if scheme == "https" { 443 } else { 80 }),
    };
    if !matches!(host, "127.0.0.1" | "localhost") {
        return Err(format!("velero stand-in: s3Url {url} is not on 127.0.0.1; the stand-in reaches nothing else"));
    }
    if config["s3ForcePathStyle"] != "true" {
        // The SDK would put the bucket into the host name.
        return Err(send_failed(&format!("dial tcp: lookup {bucket}.{host}: no such host")));
    }
    let server = s3();
    let server_port: u16 = server.endpoint().rsplit(':').next().and_then(|p| p.parse().ok()).unwrap_or_default();
    if port != server_port {
        let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        return match std::net::TcpStream::connect_timeout(&address, Duration::from_secs(2)) {
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                Err(send_failed(&format!("dial tcp 127.0.0.1:{port}: connect: connection refused")))
            }
            Err(e) => Err(send_failed(&format!("dial tcp 127.0.0.1:{port}: {e}"))),
            Ok(_) => Err(format!(
                "velero stand-in: s3Url {url} answers, but the stand-in signs requests only for the test S3 server at {}",
                server.endpoint()
            )),
        };
    }
    if scheme == "https" {
        return Err(send_failed("http: server gave HTTP response to HTTPS client"));
    }
    Ok(Bucket { access_key, secret_key, name: bucket, root })
}

/// `aws_access_key_id` and `aws_secret_access_key` of `[profile]` in an AWS shared
/// credentials file.
fn credentials_from_file(text: &str, profile: &str) -> Option<(String, String)> {
    let mut section = String::new();
    let (mut access, mut secret) = (None, None);
    for line in text.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.trim().trim_start_matches("profile ").trim().to_string();
        } else if let Some((key, value)) = line.split_once('=') {
            if section == profile {
                match key.trim() {
                    "aws_access_key_id" => access = Some(value.trim().to_string()),
                    "aws_secret_access_key" => secret = Some(value.trim().to_string()),
                    _ => {}
                }
            }
        }
    }
    Some((access?, secret?))
}

/// A bucket and prefix on the test S3 server with a location's own credentials.
struct Bucket {
    access_key: String,
    secret_key: String,
    name: String,
    /// The location's prefix with a trailing `/`, or empty.
    root: String,
}

impl Bucket {
    /// One request; a refusal reads as the AWS plugin reports it.
    fn call(&self, operation: &str, method: &str, key: &str, query: &[(&str, &str)], body: &[u8]) -> Result<S3Response, String> {
        let path = match key {
            "" => format!("/{}", self.name),
            k => format!("/{}/{k}", self.name),
        };
        let resp = s3().request_as(&self.access_key, &self.secret_key, method, &path, query, body);
        if resp.ok() {
            return Ok(resp);
        }
        let text = resp.text();
        let code = resp.error_code().unwrap_or_else(|| "UnknownError".to_string());
        let message = xml_texts(&text, "Message").into_iter().next().unwrap_or_default();
        Err(format!(
            "rpc error: code = Unknown desc = operation error S3: {operation}, https response error StatusCode: {}, RequestID: , HostID: , api error {code}: {message}",
            resp.status
        ))
    }

    /// Keys and (with `delimited`) common prefixes under `prefix`, every page.
    fn list(&self, prefix: &str, delimited: bool) -> Result<(Vec<String>, Vec<String>), String> {
        let (mut keys, mut prefixes) = (Vec::new(), Vec::new());
        let mut token: Option<String> = None;
        loop {
            let mut query = vec![("list-type", "2"), ("prefix", prefix)];
            if delimited {
                query.push(("delimiter", "/"));
            }
            if let Some(t) = &token {
                query.push(("continuation-token", t));
            }
            let text = self.call("ListObjectsV2", "GET", "", &query, b"")?.text();
            for entry in xml_texts(&text, "Contents") {
                keys.extend(xml_texts(&entry, "Key"));
            }
            for entry in xml_texts(&text, "CommonPrefixes") {
                prefixes.extend(xml_texts(&entry, "Prefix"));
            }
            token = match xml_texts(&text, "IsTruncated").first().map(String::as_str) {
                Some("true") => xml_texts(&text, "NextContinuationToken").into_iter().next(),
                _ => None,
            };
            if token.is_none() {
                return Ok((keys, prefixes));
            }
        }
    }

    /// Velero's `IsValid`: the prefix can be listed and holds only Velero's directories.
    fn validate(&self) -> Result<(), String> {
        let (_, dirs) = self.list(&self.root, true)?;
        let invalid: Vec<String> = dirs
            .iter()
            .map(|d| d.strip_prefix(&self.root).unwrap_or(d).trim_end_matches('/').to_string())
            .filter(|d| !VELERO_DIRS.contains(&d.as_str()))
            .collect();
        match invalid.len() {
            0 => Ok(()),
            n if n > 3 => Err(format!("Backup store contains {n} invalid top-level directories: [{} ...]", invalid[..3].join(" "))),
            _ => Err(format!("Backup store contains invalid top-level directories: [{}]", invalid.join(" "))),
        }
    }

    fn put(&self, key: &str, body: &[u8]) -> Result<(), String> {
        self.call("PutObject", "PUT", &format!("{}{key}", self.root), &[], body).map(|_| ())
    }

    /// The object under the prefix, `None` when there is no such key.
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
        match self.call("GetObject", "GET", &format!("{}{key}", self.root), &[], b"") {
            Ok(resp) => Ok(Some(resp.body)),
            Err(e) if e.contains("api error NoSuchKey") => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Deletes every object under `dir` (relative to the prefix, ending in `/`).
    fn delete_dir(&self, dir: &str) -> Result<(), String> {
        let (keys, _) = self.list(&format!("{}{dir}", self.root), false)?;
        for key in keys {
            self.call("DeleteObject", "DELETE", &key, &[], b"")?;
        }
        Ok(())
    }

    /// Names of the directories under `dir` (relative to the prefix).
    fn subdirs(&self, dir: &str) -> Result<Vec<String>, String> {
        let full = format!("{}{dir}", self.root);
        let (_, prefixes) = self.list(&full, true)?;
        Ok(prefixes.iter().map(|p| p.strip_prefix(&full).unwrap_or(p).trim_end_matches('/').to_string()).collect())
    }
}

// ------------------------------------------------------------------------ schedules

fn reconcile_schedule(c: &mut Controllers, schedule: &Value) {
    let spec = &schedule["spec"];
    if super::ignored(schedule) || spec["paused"] == true || !schedule["metadata"]["deletionTimestamp"].is_null() {
        return;
    }
    let name = name_of(schedule).to_string();
    if !decodable(c, "Schedule", &name, &spec["template"]) {
        return;
    }
    let mut patch = json!({});
    match spec["skipImmediately"].as_bool() {
        None => patch["spec"] = json!({"skipImmediately": false}),
        Some(true) => {
            patch["spec"] = json!({"skipImmediately": false});
            patch["status"] = json!({"lastSkipped": now()});
        }
        Some(false) => {}
    }
    let (phase, errors) = match validate_schedule(spec["schedule"].as_str().unwrap_or_default()) {
        Ok(()) => ("Enabled", Value::Null),
        Err(errors) => ("FailedValidation", json!(errors)),
    };
    // Velero writes the phase (and its errors) only when the phase changes.
    let phase_changed = phase_of(schedule) != phase;
    if phase_changed {
        patch["status"]["phase"] = json!(phase);
        patch["status"]["validationErrors"] = errors.clone();
    }
    if patch.as_object().is_some_and(|p| p.is_empty()) {
        return;
    }
    if c.patch(&velero_path(c.ns(), "schedules", &name), &patch) && phase_changed {
        let what = match errors.as_array() {
            Some(e) => format!("{phase}: {}", e.iter().filter_map(Value::as_str).collect::<Vec<_>>().join("; ")),
            None => phase.to_string(),
        };
        c.record("Schedule", &name, &what);
    }
}

/// Whether Velero could decode the backup spec (its `ttl` a Go duration); reported once if not.
fn decodable(c: &mut Controllers, kind: &str, name: &str, backup_spec: &Value) -> bool {
    match backup_spec["ttl"].as_str().map(parse_go_duration) {
        Some(Err(e)) => {
            c.report(&format!("{kind} {name}: spec ttl is no Go duration ({e}); Velero cannot decode such an object, so it stays unprocessed"));
            false
        }
        _ => true,
    }
}

// ------------------------------------------------------------------------ backups

fn queue_position(backup: &Value) -> u64 {
    backup["status"]["queuePosition"].as_u64().unwrap_or(0)
}

/// Moves backup `all[i]` one step; the queue steps update `all` so that the backups after it
/// in the same round see its new place.
fn reconcile_backup(c: &mut Controllers, i: usize, all: &mut [Value], locations: &[Value]) {
    let backup = all[i].clone();
    if super::ignored(&backup) || !backup["metadata"]["deletionTimestamp"].is_null() {
        return;
    }
    let name = name_of(&backup).to_string();
    if !decodable(c, "Backup", &name, &backup["spec"]) {
        return;
    }
    let path = velero_path(c.ns(), "backups", &name);
    let queue_step = match phase_of(&backup) {
        "" | "New" => {
            let last = all.iter().filter(|b| phase_of(b) == "Queued").map(queue_position).max().unwrap_or(0);
            json!({"status": {"phase": "Queued", "queuePosition": last + 1}})
        }
        "Queued" => {
            // One backup at a time (Velero's default --concurrent-backups), first in the queue first.
            let running = all.iter().any(|b| matches!(phase_of(b), "ReadyToStart" | "InProgress"));
            let position = queue_position(&backup);
            let earlier = all.iter().any(|b| phase_of(b) == "Queued" && queue_position(b) < position);
            if running || earlier {
                return;
            }
            json!({"status": {"phase": "ReadyToStart", "queuePosition": null}})
        }
        "ReadyToStart" => return start_backup(c, &backup, locations),
        "InProgress" => return run_backup(c, &backup, locations),
        "Finalizing" | "FinalizingPartiallyFailed" => return finalize_backup(c, &backup, locations),
        _ => return,
    };
    if c.patch(&path, &queue_step) {
        all[i] = merged(&backup, &queue_step);
        c.record("Backup", &name, phase_of(&all[i]));
    }
}

/// The location a backup without one uses: the default-marked location, else the server's.
fn default_location(locations: &[Value]) -> String {
    locations
        .iter()
        .find(|l| l["spec"]["default"] == true)
        .map(|l| name_of(l).to_string())
        .unwrap_or_else(|| SERVER_DEFAULT_LOCATION.to_string())
}

/// Velero's `prepareBackupRequest`: defaults written back into the spec, the location
/// checked, then InProgress or FailedValidation.
fn start_backup(c: &mut Controllers, backup: &Value, locations: &[Value]) {
    let (name, spec) = (name_of(backup).to_string(), &backup["spec"]);
    let mut spec_patch = Map::new();
    let mut ttl = spec["ttl"].as_str().and_then(|t| parse_go_duration(t).ok()).unwrap_or_default();
    if ttl.is_zero() {
        ttl = DEFAULT_TTL;
        spec_patch.insert("ttl".into(), json!(format_go_duration(ttl)));
    }
    for (field, default) in [("csiSnapshotTimeout", "10m0s"), ("itemOperationTimeout", "4h0m0s")] {
        if spec[field].as_str().and_then(|t| parse_go_duration(t).ok()).unwrap_or_default().is_zero() {
            spec_patch.insert(field.into(), json!(default));
        }
    }
    for field in ["defaultVolumesToFsBackup", "snapshotMoveData"] {
        if spec[field].is_null() {
            spec_patch.insert(field.into(), json!(false));
        }
    }
    if spec["volumeGroupSnapshotLabelKey"].as_str().unwrap_or_default().is_empty() {
        spec_patch.insert("volumeGroupSnapshotLabelKey".into(), json!("velero.io/volume-group"));
    }
    let (location_name, server_chosen) = match spec["storageLocation"].as_str().filter(|l| !l.is_empty()) {
        Some(l) => (l.to_string(), false),
        None => (default_location(locations), true),
    };
    if server_chosen {
        spec_patch.insert("storageLocation".into(), json!(location_name));
    }
    let mut errors = Vec::new();
    match find(locations, &location_name) {
        None => {
            let whose = if server_chosen { "the server default" } else { "the default" };
            let missing = if server_chosen { "does not exist" } else { "was not found" };
            errors.push(format!(
                "an existing backup storage location was not specified at backup creation time and {whose} {location_name} {missing}. Please address this issue (see `velero backup-location -h` for options) and create a new backup. Error: backupstoragelocations.velero.io {location_name:?} not found"
            ));
        }
        Some(location) => {
            if read_only(location) {
                errors.push(format!("backup can't be created because backup storage location {location_name} is currently in read-only mode"));
            }
            if !available(location) {
                errors.push(format!("backup can't be created because BackupStorageLocation {location_name} is in Unavailable status."));
            }
        }
    }
    if outcome_of(backup) == "FailedValidation" {
        errors.push(SCRIPTED_VALIDATION_ERROR.to_string());
    }
    let started = time::OffsetDateTime::now_utc();
    let mut status = json!({"version": 1, "formatVersion": "1.1.0", "expiration": rfc3339(started + ttl)});
    let phase = if errors.is_empty() {
        status["startTimestamp"] = json!(rfc3339(started));
        status["progress"] = json!({"totalItems": ITEMS, "itemsBackedUp": 0});
        "InProgress"
    } else {
        status["validationErrors"] = json!(errors);
        "FailedValidation"
    };
    status["phase"] = json!(phase);
    let patch = json!({
        "metadata": {"labels": {STORAGE_LOCATION_LABEL: label_value(&location_name)}},
        "spec": spec_patch,
        "status": status,
    });
    if c.patch(&velero_path(c.ns(), "backups", &name), &patch) {
        c.velero.started.insert(uid_of(backup), Instant::now());
        let what = if errors.is_empty() { phase.to_string() } else { format!("{phase}: {}", errors.join("; ")) };
        c.record("Backup", &name, &what);
    }
}

/// How long the object's work takes, by its scripted outcome.
fn work_time(c: &Controllers, object: &Value) -> Duration {
    if outcome_of(object) == "Slow" {
        c.options.slow_work
    } else {
        c.options.work
    }
}

/// Whether the object's work (begun when first seen InProgress) is done.
fn work_done(c: &mut Controllers, object: &Value) -> bool {
    let work = work_time(c, object);
    c.velero.started.entry(uid_of(object)).or_insert_with(Instant::now).elapsed() >= work
}

/// The end of the work: the backup's files written to the bucket, then Finalizing (or
/// Failed), as Velero's `runBackup` leaves it.
fn run_backup(c: &mut Controllers, backup: &Value, locations: &[Value]) {
    if !work_done(c, backup) {
        return;
    }
    let name = name_of(backup).to_string();
    let mut status = json!({"completionTimestamp": now(), "progress": {"totalItems": ITEMS, "itemsBackedUp": ITEMS}});
    match outcome_of(backup) {
        "Failed" => {
            status["phase"] = json!("Failed");
            status["failureReason"] = json!(SCRIPTED_FAILURE);
        }
        "PartiallyFailed" => {
            status["phase"] = json!("FinalizingPartiallyFailed");
            status["errors"] = json!(2);
            status["warnings"] = json!(1);
        }
        _ => status["phase"] = json!("Finalizing"),
    }
    if let Err(e) = persist_backup(c, &merged(backup, &json!({ "status": status })), locations, true) {
        status = json!({"phase": "Failed", "failureReason": e, "completionTimestamp": now()});
    }
    let phase = status["phase"].as_str().unwrap_or_default().to_string();
    if c.patch(&velero_path(c.ns(), "backups", &name), &json!({ "status": status })) {
        c.velero.started.remove(&uid_of(backup));
        let what = match status["failureReason"].as_str() {
            Some(reason) => format!("{phase}: {reason}"),
            None => phase,
        };
        c.record("Backup", &name, &what);
    }
}

/// Velero's backup finalizer: the final phase, and `velero-backup.json` written again with it.
fn finalize_backup(c: &mut Controllers, backup: &Value, locations: &[Value]) {
    let name = name_of(backup).to_string();
    let phase = if phase_of(backup) == "Finalizing" { "Completed" } else { "PartiallyFailed" };
    let status = json!({"phase": phase, "completionTimestamp": now()});
    if let Err(e) = persist_backup(c, &merged(backup, &json!({ "status": status })), locations, false) {
        c.report(&format!("Backup {name}: writing velero-backup.json again failed: {e}"));
    }
    if c.patch(&velero_path(c.ns(), "backups", &name), &json!({ "status": status })) {
        c.record("Backup", &name, phase);
    }
}

/// Writes `velero-backup.json` (and with `all`, the tarball and log) to the backup's location.
fn persist_backup(c: &mut Controllers, backup: &Value, locations: &[Value], all: bool) -> Result<(), String> {
    let name = name_of(backup).to_string();
    let location_name = backup["spec"]["storageLocation"].as_str().unwrap_or_default();
    let location = find(locations, location_name)
        .ok_or_else(|| format!("backupstoragelocations.velero.io {location_name:?} not found"))?;
    let bucket = open_bucket(c, location)?;
    let mut object = backup.clone();
    if let Some(meta) = object["metadata"].as_object_mut() {
        meta.remove("managedFields");
    }
    let dir = format!("backups/{name}/");
    bucket.put(&format!("{dir}velero-backup.json"), object.to_string().as_bytes())?;
    if all {
        bucket.put(&format!("{dir}{name}.tar.gz"), b"velero stand-in: not a real tarball\n")?;
        bucket.put(&format!("{dir}{name}-logs.gz"), b"velero stand-in: no real log\n")?;
    }
    Ok(())
}

// ------------------------------------------------------------------------ delete requests

fn reconcile_delete_request(c: &mut Controllers, request: &Value, requests: &[Value], backups: &[Value], locations: &[Value]) {
    if super::ignored(request) || !request["metadata"]["deletionTimestamp"].is_null() {
        return;
    }
    // Velero deletes processed requests after 24 hours; the stand-in leaves them.
    if matches!(phase_of(request), "Processed" | "InProgress") {
        return;
    }
    let ns = c.ns().to_string();
    let name = name_of(request).to_string();
    let path = velero_path(&ns, "deletebackuprequests", &name);
    let refuse = |c: &mut Controllers, error: String| {
        if c.patch(&path, &json!({"status": {"phase": "Processed", "errors": [error]}})) {
            c.record("DeleteBackupRequest", &name, &format!("Processed: {error}"));
        }
    };
    let backup_name = request["spec"]["backupName"].as_str().unwrap_or_default().to_string();
    if backup_name.is_empty() {
        return refuse(c, "spec.backupName is required".to_string());
    }
    // One request per backup at a time.
    for other in requests {
        if name_of(other) != name && other["metadata"]["labels"][BACKUP_NAME_LABEL] == label_value(&backup_name).as_str() {
            c.delete(&velero_path(&ns, "deletebackuprequests", name_of(other)));
        }
    }
    let Some(backup) = find(backups, &backup_name) else { return refuse(c, "backup not found".to_string()) };
    if matches!(phase_of(backup), "ReadyToStart" | "InProgress") {
        return refuse(c, "backup is still in progress".to_string());
    }
    let location_name = backup["spec"]["storageLocation"].as_str().unwrap_or_default();
    let Some(location) = find(locations, location_name) else {
        return refuse(c, format!("backup storage location {location_name} not found"));
    };
    if read_only(location) {
        return refuse(c, format!("cannot delete backup because backup storage location {location_name} is currently in read-only mode"));
    }
    if !available(location) {
        return refuse(c, format!("cannot delete backup because backup storage location {location_name} is currently in Unavailable state"));
    }
    let backup_uid = uid_of(backup);
    let labels = json!({BACKUP_NAME_LABEL: label_value(&backup_name), BACKUP_UID_LABEL: backup_uid});
    if !c.patch(&path, &json!({"metadata": {"labels": labels}, "status": {"phase": "InProgress"}})) {
        return;
    }
    c.record("DeleteBackupRequest", &name, "InProgress");
    let backup_path = velero_path(&ns, "backups", &backup_name);
    c.patch(&backup_path, &json!({"status": {"phase": "Deleting"}}));
    c.record("Backup", &backup_name, "Deleting");

    let mut errors = Vec::new();
    match open_bucket(c, location) {
        Ok(bucket) => {
            if let Err(e) = bucket.delete_dir(&format!("backups/{backup_name}/")) {
                errors.push(e);
            }
        }
        Err(e) => errors.push(e),
    }
    let restores = c.list(&velero_path(&ns, "restores", ""));
    for restore in restores.iter().filter(|r| r["spec"]["backupName"] == backup_name.as_str()) {
        if !c.delete(&velero_path(&ns, "restores", name_of(restore))) {
            errors.push(format!("error deleting restore {ns}/{}", name_of(restore)));
            continue;
        }
        if let Ok(Some(deleted)) = c.get(&velero_path(&ns, "restores", name_of(restore))) {
            finalize_restore_deletion(c, &deleted, backups, locations);
        }
    }
    if errors.is_empty() && !c.delete(&backup_path) {
        errors.push(format!("error deleting backup {ns}/{backup_name}"));
    }
    let reported = if errors.is_empty() { Value::Null } else { json!(errors) };
    c.patch(&path, &json!({"status": {"phase": "Processed", "errors": reported}}));
    if errors.is_empty() {
        c.record("Backup", &backup_name, "deleted");
        c.record("DeleteBackupRequest", &name, "Processed");
        // Velero then deletes every request for this backup.
        for request in c.list(&velero_path(&ns, "deletebackuprequests", "")) {
            let labels = &request["metadata"]["labels"];
            if labels[BACKUP_NAME_LABEL] == label_value(&backup_name).as_str() && labels[BACKUP_UID_LABEL] == backup_uid.as_str() {
                c.delete(&velero_path(&ns, "deletebackuprequests", name_of(&request)));
                c.record("DeleteBackupRequest", name_of(&request), "deleted");
            }
        }
    } else {
        c.record("DeleteBackupRequest", &name, &format!("Processed: {}", errors.join("; ")));
    }
}

// ------------------------------------------------------------------------ restores

fn finalizers(object: &Value) -> Vec<String> {
    object["metadata"]["finalizers"].as_array().into_iter().flatten().filter_map(|f| f.as_str().map(str::to_string)).collect()
}

fn reconcile_restore(c: &mut Controllers, restore: &Value, backups: &[Value], locations: &[Value]) {
    if super::ignored(restore) {
        return;
    }
    let name = name_of(restore).to_string();
    let path = velero_path(c.ns(), "restores", &name);
    let mut present = finalizers(restore);
    if !restore["metadata"]["deletionTimestamp"].is_null() {
        if present.iter().any(|f| f == RESTORE_FINALIZER) {
            finalize_restore_deletion(c, restore, backups, locations);
        }
        return;
    }
    if !present.iter().any(|f| f == RESTORE_FINALIZER) {
        present.push(RESTORE_FINALIZER.to_string());
        if !c.patch(&path, &json!({"metadata": {"finalizers": present}})) {
            return;
        }
    }
    match phase_of(restore) {
        "" | "New" => start_restore(c, restore, backups, locations),
        "InProgress" => run_restore(c, restore, backups, locations),
        phase @ ("Finalizing" | "FinalizingPartiallyFailed") => {
            let done = if phase == "Finalizing" { "Completed" } else { "PartiallyFailed" };
            if c.patch(&path, &json!({"status": {"phase": done, "completionTimestamp": now()}})) {
                c.record("Restore", &name, done);
            }
        }
        _ => {}
    }
}

/// Velero's `validateAndComplete`, then InProgress or FailedValidation.
fn start_restore(c: &mut Controllers, restore: &Value, backups: &[Value], locations: &[Value]) {
    let (name, spec) = (name_of(restore).to_string(), &restore["spec"]);
    let mut errors = Vec::new();
    let mut spec_patch = Map::new();
    let policy = spec["existingResourcePolicy"].as_str().unwrap_or_default();
    if !matches!(policy, "" | "none" | "update") {
        errors.push(format!("Invalid ExistingResourcePolicy: {policy}"));
    }
    let backup_name = spec["backupName"].as_str().unwrap_or_default();
    let schedule_name = spec["scheduleName"].as_str().unwrap_or_default();
    let mut backup = None;
    if backup_name.is_empty() == schedule_name.is_empty() {
        errors.push("Either a backup or schedule must be specified as a source for the restore, but not both".to_string());
    } else if !schedule_name.is_empty() {
        let of_schedule: Vec<&Value> =
            backups.iter().filter(|b| b["metadata"]["labels"][SCHEDULE_NAME_LABEL] == schedule_name).collect();
        if of_schedule.is_empty() {
            errors.push("No backups found for schedule".to_string());
        }
        let start = |b: &Value| b["status"]["startTimestamp"].as_str().unwrap_or_default().to_string();
        match of_schedule.iter().filter(|b| phase_of(b) == "Completed").max_by_key(|b| start(b)) {
            Some(latest) => {
                spec_patch.insert("backupName".into(), json!(name_of(latest)));
                backup = Some(*latest);
            }
            None => errors.push("No completed backups found for schedule".to_string()),
        }
    } else {
        match find(backups, backup_name) {
            Some(b) => backup = Some(b),
            None => errors.push(format!(
                "Error retrieving backup: can't find backup {}/{backup_name}: backups.velero.io {backup_name:?} not found",
                c.ns()
            )),
        }
    }
    if let Some(backup) = backup {
        let location_name = backup["spec"]["storageLocation"].as_str().unwrap_or_default();
        match find(locations, location_name) {
            None => errors.push(format!("Error retrieving backup: backupstoragelocations.velero.io {location_name:?} not found")),
            Some(l) if !available(l) => errors.push(format!("The BSL {location_name} is unavailable, cannot retrieve the backup")),
            Some(_) => {}
        }
        if let Some(schedule) = backup["metadata"]["labels"][SCHEDULE_NAME_LABEL].as_str().filter(|_| schedule_name.is_empty()) {
            spec_patch.insert("scheduleName".into(), json!(schedule));
        }
    }
    if outcome_of(restore) == "FailedValidation" {
        errors.push(SCRIPTED_VALIDATION_ERROR.to_string());
    }
    if spec["itemOperationTimeout"].as_str().and_then(|t| parse_go_duration(t).ok()).unwrap_or_default().is_zero() {
        spec_patch.insert("itemOperationTimeout".into(), json!("4h0m0s"));
    }
    let status = if errors.is_empty() {
        json!({"phase": "InProgress", "startTimestamp": now()})
    } else {
        json!({"phase": "FailedValidation", "validationErrors": errors})
    };
    if c.patch(&velero_path(c.ns(), "restores", &name), &json!({"spec": spec_patch, "status": status})) {
        c.velero.started.insert(uid_of(restore), Instant::now());
        let phase = status["phase"].as_str().unwrap_or_default();
        let what = if errors.is_empty() { phase.to_string() } else { format!("{phase}: {}", errors.join("; ")) };
        c.record("Restore", &name, &what);
    }
}

/// The restore's location: that of its backup.
fn restore_bucket(c: &mut Controllers, restore: &Value, backups: &[Value], locations: &[Value]) -> Result<Bucket, String> {
    let backup_name = restore["spec"]["backupName"].as_str().unwrap_or_default();
    let backup = find(backups, backup_name).ok_or_else(|| format!("backups.velero.io {backup_name:?} not found"))?;
    let location_name = backup["spec"]["storageLocation"].as_str().unwrap_or_default();
    let location = find(locations, location_name)
        .ok_or_else(|| format!("backupstoragelocations.velero.io {location_name:?} not found"))?;
    open_bucket(c, location)
}

/// The end of the work: the restore's log and results written, then Finalizing (or Failed).
fn run_restore(c: &mut Controllers, restore: &Value, backups: &[Value], locations: &[Value]) {
    if !work_done(c, restore) {
        return;
    }
    let name = name_of(restore).to_string();
    let mut status = json!({"progress": {"totalItems": ITEMS, "itemsRestored": ITEMS}});
    match outcome_of(restore) {
        "Failed" => {
            status["phase"] = json!("Failed");
            status["failureReason"] = json!(SCRIPTED_FAILURE);
            status["completionTimestamp"] = json!(now());
        }
        "PartiallyFailed" => {
            status["phase"] = json!("FinalizingPartiallyFailed");
            status["errors"] = json!(2);
            status["warnings"] = json!(1);
        }
        _ => status["phase"] = json!("Finalizing"),
    }
    let written = restore_bucket(c, restore, backups, locations).and_then(|bucket| {
        let dir = format!("restores/{name}/");
        bucket.put(&format!("{dir}restore-{name}-logs.gz"), b"velero stand-in: no real log\n")?;
        bucket.put(&format!("{dir}restore-{name}-results.gz"), b"velero stand-in: no real results\n")
    });
    if let Err(e) = written {
        status = json!({"phase": "Failed", "failureReason": e, "completionTimestamp": now()});
    }
    if c.patch(&velero_path(c.ns(), "restores", &name), &json!({ "status": status })) {
        c.velero.started.remove(&uid_of(restore));
        let phase = status["phase"].as_str().unwrap_or_default();
        let what = match status["failureReason"].as_str() {
            Some(reason) => format!("{phase}: {reason}"),
            None => phase.to_string(),
        };
        c.record("Restore", &name, &what);
    }
}

/// Velero's restore finalizer on deletion: the restore's files deleted from the bucket (when
/// it can still be reached), then the finalizer removed.
fn finalize_restore_deletion(c: &mut Controllers, restore: &Value, backups: &[Value], locations: &[Value]) {
    let name = name_of(restore).to_string();
    if let Ok(bucket) = restore_bucket(c, restore, backups, locations) {
        if let Err(e) = bucket.delete_dir(&format!("restores/{name}/")) {
            c.report(&format!("Restore {name}: deleting its files failed: {e}"));
        }
    }
    let rest: Vec<String> = finalizers(restore).into_iter().filter(|f| f != RESTORE_FINALIZER).collect();
    let rest = if rest.is_empty() { Value::Null } else { json!(rest) };
    if c.patch(&velero_path(c.ns(), "restores", &name), &json!({"metadata": {"finalizers": rest}})) {
        c.record("Restore", &name, "finalizer removed");
    }
}

// ------------------------------------------------------------------------ backup sync

fn sync_backups(c: &mut Controllers, locations: &[Value]) {
    let Some(period) = c.options.backup_sync_period else { return };
    if c.velero.last_sync.is_some_and(|at| at.elapsed() < period) {
        return;
    }
    c.velero.last_sync = Some(Instant::now());
    let ns = c.ns().to_string();
    for location in locations.iter().filter(|l| available(l) && !super::ignored(l)) {
        let Ok(bucket) = open_bucket(c, location) else { continue };
        let stored: HashSet<String> = match bucket.subdirs("backups/") {
            Ok(names) => names.into_iter().collect(),
            Err(e) => {
                c.report(&format!("backup sync from {}: {e}", name_of(location)));
                continue;
            }
        };
        let backups = c.list(&velero_path(&ns, "backups", ""));
        let present: HashSet<&str> = backups.iter().map(name_of).collect();
        let location_name = name_of(location);
        for missing in stored.iter().filter(|n| !present.contains(n.as_str())) {
            let Ok(Some(bytes)) = bucket.get(&format!("backups/{missing}/velero-backup.json")) else { continue };
            let Ok(stored_backup) = serde_json::from_slice::<Value>(&bytes) else {
                c.report(&format!("backup sync: backups/{missing}/velero-backup.json is no JSON"));
                continue;
            };
            if matches!(phase_of(&stored_backup), "Finalizing" | "FinalizingPartiallyFailed" | "WaitingForPluginOperations" | "WaitingForPluginOperationsPartiallyFailed") {
                continue;
            }
            let mut labels = stored_backup["metadata"]["labels"].as_object().cloned().unwrap_or_default();
            labels.insert(STORAGE_LOCATION_LABEL.into(), json!(label_value(location_name)));
            let mut spec = stored_backup["spec"].clone();
            spec["storageLocation"] = json!(location_name);
            let object = json!({
                "apiVersion": "velero.io/v1",
                "kind": "Backup",
                "metadata": {
                    "name": missing,
                    "namespace": ns,
                    "labels": labels,
                    "annotations": stored_backup["metadata"]["annotations"].clone(),
                },
                "spec": spec,
                "status": stored_backup["status"].clone(),
            });
            if c.create(&velero_path(&ns, "backups", ""), &object) {
                c.record("Backup", missing, "synced from bucket");
            }
        }
        for orphan in &backups {
            let labelled = orphan["metadata"]["labels"][STORAGE_LOCATION_LABEL] == label_value(location_name).as_str();
            let done = matches!(phase_of(orphan), "Completed" | "PartiallyFailed");
            if labelled && done && !stored.contains(name_of(orphan)) && c.delete(&velero_path(&ns, "backups", name_of(orphan))) {
                c.record("Backup", name_of(orphan), "deleted: no longer in the bucket");
            }
        }
    }
}
