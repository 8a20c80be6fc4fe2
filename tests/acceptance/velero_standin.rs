//! Self-test of the Velero/VolSync stand-in (`harness::velero_standin`) against the real CRDs,
//! the real S3 server and real restic: locations validated with the credentials they name,
//! backups written to and deleted from the bucket, scripted failures, restores, schedules,
//! the backup sync, and a VolSync manual trigger that leaves a real restic snapshot.

use std::time::Duration;

use serde_json::{json, Value};

use crate::harness::s3::s3;
use crate::harness::velero_standin::{
    aws_credentials_file, condition, velero_path, volsync_path, VeleroStandIn, OUTCOME_LABEL, SCRIPTED_FAILURE,
    SCRIPTED_VALIDATION_ERROR,
};
use crate::harness::{cluster, kubectl, kubectl_apply, unique_name, wait_until};

const WAIT: Duration = Duration::from_secs(60);

/// A fresh namespace watched by its own stand-in.
fn namespace_with_standin(prefix: &str) -> (String, VeleroStandIn) {
    let ns = unique_name(prefix);
    kubectl(&["create", "namespace", &ns]).assert_success();
    let standin = VeleroStandIn::start(&ns);
    (ns, standin)
}

fn apply(object: Value) {
    kubectl_apply(&object.to_string());
}

fn secret(ns: &str, name: &str, data: Value) {
    apply(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": ns}, "stringData": data}));
}

fn velero(kind: &str, ns: &str, name: &str, labels: Value, spec: Value) {
    apply(json!({
        "apiVersion": "velero.io/v1", "kind": kind,
        "metadata": {"name": name, "namespace": ns, "labels": labels}, "spec": spec,
    }));
}

/// Waits until the object at `path` reaches one of `phases`, and returns it.
#[track_caller]
fn wait_phase(path: &str, phases: &[&str]) -> Value {
    wait_until(&format!("{path} to reach {phases:?}"), WAIT, || {
        let object = cluster().get_json(path).ok_or("absent")?;
        match object["status"]["phase"].as_str() {
            Some(p) if phases.contains(&p) => Ok(object),
            _ => Err(format!("status {}", object["status"])),
        }
    })
}

/// Seconds since the epoch of a `YYYY-MM-DDTHH:MM:SSZ` timestamp.
fn unix_seconds(timestamp: &str) -> i64 {
    let n = |range: std::ops::Range<usize>| timestamp[range].parse::<i64>().unwrap_or_else(|e| panic!("{timestamp}: {e}"));
    let (y, m, d) = (n(0..4), n(5..7), n(8..10));
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    days * 86_400 + n(11..13) * 3600 + n(14..16) * 60 + n(17..19)
}

fn location(ns: &str, name: &str, bucket: &str, prefix: &str, s3_url: &str, secret: &str, default: bool) {
    velero(
        "BackupStorageLocation",
        ns,
        name,
        json!({}),
        json!({
            "provider": "aws",
            "default": default,
            "objectStorage": {"bucket": bucket, "prefix": prefix},
            "config": {"region": "us-east-1", "s3ForcePathStyle": "true", "s3Url": s3_url},
            "credential": {"name": secret, "key": "cloud"},
        }),
    );
}

#[test]
fn velero_standin_locations_backups_restores_and_deletion() {
    let s3 = s3();
    let (ns, standin) = namespace_with_standin("velero-standin");
    let bucket = unique_name("velero-standin");
    s3.create_bucket(&bucket);
    let good_keys = aws_credentials_file(s3.access_key(), s3.secret_key());
    secret(&ns, "creds-good", json!({"cloud": good_keys}));
    secret(&ns, "creds-bad", json!({"cloud": aws_credentials_file(s3.access_key(), "not-the-secret")}));
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();

    // Each its own prefix: two Available locations on one prefix would both sync its backups.
    location(&ns, "good", &bucket, "cluster-a", &s3.endpoint(), "creds-good", true);
    location(&ns, "bad", &bucket, "cluster-b", &s3.endpoint(), "creds-bad", false);
    location(&ns, "closed", &bucket, "cluster-c", &format!("http://127.0.0.1:{closed_port}"), "creds-good", false);
    let bsl = |name: &str| velero_path(&ns, "backupstoragelocations", name);

    let good = wait_phase(&bsl("good"), &["Available", "Unavailable"]);
    assert_eq!(good["status"]["phase"], "Available", "{}", good["status"]);
    assert!(good["status"]["lastValidationTime"].as_str().is_some_and(|t| t.ends_with('Z')), "{}", good["status"]);
    assert!(good["status"]["message"].is_null());

    let bad = wait_phase(&bsl("bad"), &["Available", "Unavailable"]);
    assert_eq!(bad["status"]["phase"], "Unavailable");
    let message = bad["status"]["message"].as_str().unwrap_or_default();
    assert!(message.starts_with("BackupStorageLocation \"bad\" is unavailable: "), "{message}");
    assert!(message.contains("api error SignatureDoesNotMatch"), "{message}");

    let closed = wait_phase(&bsl("closed"), &["Available", "Unavailable"]);
    let message = closed["status"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(&format!("dial tcp 127.0.0.1:{closed_port}: connect: connection refused")), "{message}");

    // A corrected Secret is validated again without a change to the location.
    secret(&ns, "creds-bad", json!({"cloud": good_keys}));
    let fixed = wait_phase(&bsl("bad"), &["Available"]);
    assert!(fixed["status"]["message"].is_null(), "{}", fixed["status"]);

    // Backups: one to completion, one scripted to fail, one on the default location with
    // Velero's defaults, one on a location that does not exist, one never processed, one
    // partially failed. They run one at a time, as with Velero.
    let backup = |name: &str| velero_path(&ns, "backups", name);
    velero("Backup", &ns, "b1", json!({}), json!({"storageLocation": "good", "ttl": "1h0m0s"}));
    velero("Backup", &ns, "b2", json!({OUTCOME_LABEL: "Failed"}), json!({"storageLocation": "good"}));
    velero("Backup", &ns, "b3", json!({}), json!({}));
    velero("Backup", &ns, "b4", json!({}), json!({"storageLocation": "nowhere"}));
    velero("Backup", &ns, "b5", json!({OUTCOME_LABEL: "Ignore"}), json!({"storageLocation": "good"}));
    velero("Backup", &ns, "b6", json!({OUTCOME_LABEL: "PartiallyFailed"}), json!({"storageLocation": "good"}));

    let b1 = wait_phase(&backup("b1"), &["Completed", "Failed", "PartiallyFailed", "FailedValidation"]);
    assert_eq!(b1["status"]["phase"], "Completed", "{}", b1["status"]);
    let start = unix_seconds(b1["status"]["startTimestamp"].as_str().expect("startTimestamp"));
    let end = unix_seconds(b1["status"]["completionTimestamp"].as_str().expect("completionTimestamp"));
    let expiration = unix_seconds(b1["status"]["expiration"].as_str().expect("expiration"));
    assert!(end >= start && end - start < 30, "{}", b1["status"]);
    assert_eq!(expiration - start, 3600, "{}", b1["status"]);
    assert_eq!(b1["status"]["formatVersion"], "1.1.0");
    assert_eq!(b1["status"]["progress"], json!({"totalItems": 10, "itemsBackedUp": 10}));
    assert_eq!(b1["metadata"]["labels"]["velero.io/storage-location"], "good");
    recorded(&standin, "Backup", "b1", "Completed");
    assert_eq!(
        standin.events_for("Backup", "b1"),
        ["Queued", "ReadyToStart", "InProgress", "Finalizing", "Completed"],
        "{:?}",
        standin.events()
    );
    let mut objects = s3.list(&bucket, "cluster-a/backups/b1/");
    objects.sort();
    assert_eq!(
        objects,
        ["cluster-a/backups/b1/b1-logs.gz", "cluster-a/backups/b1/b1.tar.gz", "cluster-a/backups/b1/velero-backup.json"]
    );
    let stored: Value = serde_json::from_slice(&s3.get(&bucket, "cluster-a/backups/b1/velero-backup.json").unwrap()).unwrap();
    assert_eq!((stored["metadata"]["name"].as_str(), stored["status"]["phase"].as_str()), (Some("b1"), Some("Completed")));

    let b2 = wait_phase(&backup("b2"), &["Completed", "Failed", "PartiallyFailed", "FailedValidation"]);
    assert_eq!((b2["status"]["phase"].as_str(), b2["status"]["failureReason"].as_str()), (Some("Failed"), Some(SCRIPTED_FAILURE)));

    let b3 = wait_phase(&backup("b3"), &["Completed", "Failed", "PartiallyFailed", "FailedValidation"]);
    assert_eq!(b3["status"]["phase"], "Completed", "{}", b3["status"]);
    assert_eq!(b3["spec"]["storageLocation"], "good");
    assert_eq!(b3["spec"]["ttl"], "720h0m0s");
    assert_eq!(b3["spec"]["itemOperationTimeout"], "4h0m0s");

    let b4 = wait_phase(&backup("b4"), &["Completed", "Failed", "PartiallyFailed", "FailedValidation"]);
    assert_eq!(b4["status"]["phase"], "FailedValidation");
    let errors = b4["status"]["validationErrors"].to_string();
    assert!(errors.contains("the default nowhere was not found"), "{errors}");
    assert!(s3.list(&bucket, "cluster-a/backups/b4/").is_empty());

    let b6 = wait_phase(&backup("b6"), &["Completed", "Failed", "PartiallyFailed", "FailedValidation"]);
    assert_eq!(
        (b6["status"]["phase"].as_str(), b6["status"]["errors"].as_i64(), b6["status"]["warnings"].as_i64()),
        (Some("PartiallyFailed"), Some(2), Some(1))
    );
    recorded(&standin, "Backup", "b6", "PartiallyFailed");
    assert_eq!(standin.events_for("Backup", "b6").last().map(String::as_str), Some("PartiallyFailed"));

    // Restore from b3: finalizer, Completed, files in the bucket; deleting it removes them.
    let restore = velero_path(&ns, "restores", "r1");
    velero("Restore", &ns, "r1", json!({}), json!({"backupName": "b3"}));
    let r1 = wait_phase(&restore, &["Completed", "Failed", "PartiallyFailed", "FailedValidation"]);
    assert_eq!(r1["status"]["phase"], "Completed", "{}", r1["status"]);
    assert_eq!(r1["metadata"]["finalizers"], json!(["restores.velero.io/external-resources-finalizer"]));
    assert_eq!(s3.list(&bucket, "cluster-a/restores/r1/").len(), 2);
    velero("Restore", &ns, "r2", json!({OUTCOME_LABEL: "FailedValidation"}), json!({"backupName": "b3"}));
    let r2 = wait_phase(&velero_path(&ns, "restores", "r2"), &["Completed", "FailedValidation"]);
    assert_eq!(r2["status"]["validationErrors"], json!([SCRIPTED_VALIDATION_ERROR]));
    kubectl(&["-n", &ns, "delete", "restores.velero.io", "r1", "--wait=false"]).assert_success();
    cluster().wait_gone(&restore, WAIT);
    assert!(s3.list(&bucket, "cluster-a/restores/r1/").is_empty());

    // A DeleteBackupRequest removes the files, then the Backup, then itself.
    velero("DeleteBackupRequest", &ns, "delete-b1", json!({}), json!({"backupName": "b1"}));
    cluster().wait_gone(&backup("b1"), WAIT);
    assert!(s3.list(&bucket, "cluster-a/backups/b1/").is_empty());
    cluster().wait_gone(&velero_path(&ns, "deletebackuprequests", "delete-b1"), WAIT);
    recorded(&standin, "DeleteBackupRequest", "delete-b1", "Processed");

    // A plain DELETE of a backup still in the bucket is undone by the backup sync.
    kubectl(&["-n", &ns, "delete", "backups.velero.io", "b3"]).assert_success();
    let back = wait_phase(&backup("b3"), &["Completed"]);
    assert_eq!(back["metadata"]["labels"]["velero.io/storage-location"], "good");
    assert!(standin.events_for("Backup", "b3").contains(&"synced from bucket".to_string()));

    // Schedules: a valid cron, a six-field one, and a paused one (never looked at).
    let schedule = |name: &str| velero_path(&ns, "schedules", name);
    velero("Schedule", &ns, "nightly", json!({}), json!({"schedule": "0 1 * * *", "template": {"ttl": "24h"}}));
    velero("Schedule", &ns, "seconds", json!({}), json!({"schedule": "0 0 1 * * *", "template": {}}));
    velero("Schedule", &ns, "paused", json!({}), json!({"schedule": "0 1 * * *", "paused": true, "template": {}}));
    let nightly = wait_phase(&schedule("nightly"), &["Enabled", "FailedValidation"]);
    assert_eq!(nightly["status"]["phase"], "Enabled");
    assert_eq!(nightly["spec"]["skipImmediately"], false);
    let seconds = wait_phase(&schedule("seconds"), &["Enabled", "FailedValidation"]);
    assert_eq!(
        seconds["status"]["validationErrors"],
        json!(["invalid schedule: expected exactly 5 fields, found 6: [0 0 1 * * *]"])
    );
    assert!(cluster().get_json(&schedule("paused")).unwrap()["status"].is_null());
    // Seconds after everything else, the ignored backup has still no status.
    assert!(cluster().get_json(&backup("b5")).unwrap()["status"].is_null());
}

#[test]
fn velero_standin_volsync_manual_trigger_runs_restic() {
    let s3 = s3();
    let (ns, standin) = namespace_with_standin("velero-standin-volsync");
    let bucket = unique_name("velero-standin-restic");
    s3.create_bucket(&bucket);
    let password = "volsync stand-in password";
    let repository = |password: &str| {
        json!({
            "RESTIC_REPOSITORY": s3.repository(&bucket, "data"),
            "RESTIC_PASSWORD": password,
            "AWS_ACCESS_KEY_ID": s3.access_key(),
            "AWS_SECRET_ACCESS_KEY": s3.secret_key(),
        })
    };
    secret(&ns, "restic-repo", repository(password));
    secret(&ns, "restic-wrong", repository("not the password"));
    for claim in ["data", "restored"] {
        apply(json!({
            "apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": claim, "namespace": ns},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
        }));
    }
    std::fs::write(standin.volume_dir("data").join("payload.txt"), "volume contents\n").unwrap();

    let source = volsync_path(&ns, "replicationsources", "data");
    apply(json!({
        "apiVersion": "volsync.backube/v1alpha1", "kind": "ReplicationSource",
        "metadata": {"name": "data", "namespace": ns},
        "spec": {
            "sourcePVC": "data",
            "trigger": {"manual": "first"},
            "restic": {"repository": "restic-repo", "copyMethod": "Direct", "retain": {"last": "3"}},
        },
    }));
    let synced = wait_until("the ReplicationSource's manual sync", WAIT, || {
        let object = cluster().get_json(&source).ok_or("absent")?;
        match object["status"]["lastManualSync"].as_str() {
            Some("first") => Ok(object),
            _ => Err(format!("status {}", object["status"])),
        }
    });
    let status = &synced["status"];
    assert_eq!(status["latestMoverStatus"]["result"], "Successful", "{status}");
    assert!(status["latestMoverStatus"]["logs"].as_str().unwrap_or_default().contains("snapshot"), "{status}");
    assert!(status["lastSyncTime"].is_string() && status["lastSyncStartTime"].is_null(), "{status}");
    let synchronizing = condition(&synced, "Synchronizing").expect("Synchronizing condition");
    assert_eq!((synchronizing["status"].as_str(), synchronizing["reason"].as_str()), (Some("False"), Some("WaitingForManual")));

    let snapshots = s3.restic(&bucket, "data", password, &["snapshots", "--json"]).assert_success().json();
    let snapshots = snapshots.as_array().expect("snapshots --json prints an array");
    assert_eq!(snapshots.len(), 1, "{snapshots:?}");
    assert_eq!(snapshots[0]["hostname"], "volsync");

    // The destination restores the snapshot into its claim's directory.
    let destination = volsync_path(&ns, "replicationdestinations", "restored");
    apply(json!({
        "apiVersion": "volsync.backube/v1alpha1", "kind": "ReplicationDestination",
        "metadata": {"name": "restored", "namespace": ns},
        "spec": {
            "trigger": {"manual": "restore-1"},
            "restic": {"repository": "restic-repo", "destinationPVC": "restored", "copyMethod": "Direct"},
        },
    }));
    let restored = wait_until("the ReplicationDestination's manual sync", WAIT, || {
        let object = cluster().get_json(&destination).ok_or("absent")?;
        match object["status"]["lastManualSync"].as_str() {
            Some("restore-1") => Ok(object),
            _ => Err(format!("status {}", object["status"])),
        }
    });
    assert_eq!(restored["status"]["latestImage"], json!({"kind": "PersistentVolumeClaim", "name": "restored"}));
    let content = std::fs::read_to_string(standin.volume_dir("restored").join("payload.txt")).unwrap();
    assert_eq!(content, "volume contents\n");

    // A wrong password: restic refuses, and the condition says so.
    let wrong = volsync_path(&ns, "replicationsources", "wrong");
    apply(json!({
        "apiVersion": "volsync.backube/v1alpha1", "kind": "ReplicationSource",
        "metadata": {"name": "wrong", "namespace": ns},
        "spec": {"sourcePVC": "data", "trigger": {"manual": "first"}, "restic": {"repository": "restic-wrong", "copyMethod": "Direct"}},
    }));
    let failed = wait_until("the wrong-password ReplicationSource to fail", WAIT, || {
        let object = cluster().get_json(&wrong).ok_or("absent")?;
        match condition(&object, "Synchronizing") {
            Some(c) if c["reason"] == "Error" => Ok(c.clone()),
            _ => Err(format!("status {}", object["status"])),
        }
    });
    assert_eq!(failed["status"], "False");
    assert!(failed["message"].as_str().unwrap_or_default().contains("wrong password"), "{failed}");
    let snapshots = s3.restic(&bucket, "data", password, &["snapshots", "--json"]).assert_success().json();
    assert_eq!(snapshots.as_array().map(Vec::len), Some(1));
}

/// Waits until the stand-in has recorded `what` for the object: it records an event just
/// after writing the status, so the API can show a phase a moment before the event exists.
fn recorded(standin: &VeleroStandIn, kind: &str, name: &str, what: &str) {
    wait_until(&format!("{kind} {name}: event {what:?}"), Duration::from_secs(10), || {
        let events = standin.events_for(kind, name);
        if events.iter().any(|e| e == what) {
            Ok(())
        } else {
            Err(format!("events so far: {events:?}"))
        }
    });
}
