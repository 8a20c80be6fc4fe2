//! `platform_volume_replication` and `platform_volume_restore` with real Terraform against the
//! VolSync stand-in (`harness::velero_standin`), which runs real restic against the real S3
//! server: a sync on apply leaves a restic snapshot, a new token another; drift, import and
//! destroy (our Secret with it); an existing repository Secret without RESTIC_PASSWORD
//! refused; a wrong password failing at once with VolSync's condition; a restore; a wait no
//! controller answers; and no restic password or S3 secret key in trace logs or state.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::s3::s3;
use crate::harness::secrets::{assert_failure_mentions, base64, live_object, random_secret, secret_values, TestNamespace};
use crate::harness::velero_standin::{ensure_crds, volsync_path, VeleroStandIn};
use crate::harness::{cluster, for_each_terraform, kubectl, kubectl_apply, unique_name, TerraformBin, Workdir};

/// What the apply that fails early must beat (its timeout is much longer).
const EARLY: Duration = Duration::from_secs(60);

/// A namespace with two claims (`data` with a file in it, `restored` empty), a bucket, a
/// restic password and, unless told otherwise, a stand-in watching the namespace.
struct Rig {
    standin: Option<VeleroStandIn>,
    ns: TestNamespace,
    bucket: String,
    password: String,
}

impl Rig {
    fn new(prefix: &str, with_standin: bool) -> Rig {
        ensure_crds();
        let ns = TestNamespace::create(prefix);
        for claim in ["data", "restored"] {
            kubectl_apply(
                &json!({
                    "apiVersion": "v1", "kind": "PersistentVolumeClaim",
                    "metadata": {"name": claim, "namespace": ns.name},
                    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
                })
                .to_string(),
            );
        }
        let standin = with_standin.then(|| VeleroStandIn::start(&ns.name));
        if let Some(standin) = &standin {
            std::fs::write(standin.volume_dir("data").join("payload.txt"), "volume contents\n").unwrap();
        }
        let bucket = unique_name("volsync");
        s3().create_bucket(&bucket);
        Rig { standin, ns, bucket, password: random_secret("restic") }
    }

    fn standin(&self) -> &VeleroStandIn {
        self.standin.as_ref().expect("a rig with a stand-in")
    }

    fn url(&self) -> String {
        s3().repository(&self.bucket, "data")
    }

    /// The snapshots restic lists in the repository, with `password`.
    #[track_caller]
    fn snapshots(&self) -> Vec<Value> {
        let out = s3().restic(&self.bucket, "data", &self.password, &["snapshots", "--json"]);
        out.assert_success().json().as_array().cloned().expect("snapshots --json prints an array")
    }

    /// An existing repository Secret `name` with `keys` of the full set.
    fn repository_secret(&self, name: &str, keys: &[&str]) {
        let all = json!({
            "RESTIC_REPOSITORY": self.url(),
            "RESTIC_PASSWORD": self.password,
            "AWS_ACCESS_KEY_ID": s3().access_key(),
            "AWS_SECRET_ACCESS_KEY": s3().secret_key(),
        });
        let data: serde_json::Map<String, Value> = keys.iter().map(|k| (k.to_string(), all[*k].clone())).collect();
        kubectl_apply(
            &json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": self.ns.name}, "stringData": data})
                .to_string(),
        );
    }

    fn live(&self, plural: &str, name: &str) -> Option<Value> {
        cluster().get_json(&volsync_path(&self.ns.name, plural, name))
    }
}

/// The provider, and the secrets as sensitive variables (their values in `terraform.tfvars`).
fn preamble(work: &Workdir, rig: &Rig) -> String {
    work.write_file(
        "terraform.tfvars",
        &format!("restic_password = {:?}\ns3_secret_key = {:?}\n", rig.password, s3().secret_key()),
    );
    format!(
        "{}provider \"platform\" {{}}\n\nvariable \"restic_password\" {{\n  type      = string\n  sensitive = true\n}}\n\n\
         variable \"s3_secret_key\" {{\n  type      = string\n  sensitive = true\n}}\n",
        required_providers!()
    )
}

/// The secret attributes this Terraform takes: write-only from 1.11 on, else the sensitive ones.
fn secret_attributes(tf: &TerraformBin) -> (&'static str, &'static str) {
    if tf.at_least(1, 11) {
        ("password_wo", "s3_secret_access_key_wo")
    } else {
        ("password", "s3_secret_access_key")
    }
}

/// The repository given here, its secrets from the variables.
fn given_repository(tf: &TerraformBin, rig: &Rig) -> String {
    let (password, secret_key) = secret_attributes(tf);
    format!(
        "  repository_url   = {:?}\n  {password} = var.restic_password\n  s3_access_key_id = {:?}\n  {secret_key} = var.s3_secret_key\n",
        rig.url(),
        s3().access_key()
    )
}

/// A `platform_volume_replication` of claim `data`.
fn replication(name: &str, ns: &str, repository: &str, extra: &str) -> String {
    format!(
        "\nresource \"platform_volume_replication\" {name:?} {{\n  namespace   = {ns:?}\n  name        = {name:?}\n  \
         source_pvc  = \"data\"\n  copy_method = \"Snapshot\"\n{repository}{extra}}}\n"
    )
}

#[track_caller]
fn state_of(work: &Workdir, address: &str) -> Value {
    work.resource_values(address).unwrap_or_else(|| panic!("{address} not in state"))
}

#[test]
fn volsync_replication_syncs_on_apply_again_on_a_new_token_and_lives_its_lifecycle() {
    for_each_terraform(|tf| {
        let rig = Rig::new("acc-volsync", true);
        let ns = rig.ns.name.clone();
        let work = Workdir::new(tf);
        let head = preamble(&work, &rig);
        let config = |token: &str, extra: &str| {
            let trigger = format!("  sync_on_apply = {token:?}\n  retain {{\n    daily  = 7\n    within = \"3d\"\n  }}\n{extra}");
            format!("{head}{}", replication("data", &ns, &given_repository(tf, &rig), &trigger))
        };

        // Create: the apply waits for the sync, which leaves a real snapshot.
        work.write_main_tf(&config("v1", ""));
        work.apply().assert_success();
        let snapshots = rig.snapshots();
        assert_eq!(snapshots.len(), 1, "{snapshots:?}");
        assert_eq!(snapshots[0]["hostname"], "volsync");
        let state = state_of(&work, "platform_volume_replication.data");
        assert_eq!(state["last_manual_sync"], "v1");
        assert_eq!(state["latest_mover_result"], "Successful");
        assert!(state["last_sync_time"].as_str().is_some_and(|t| t.ends_with('Z')), "{state}");
        assert!(state["password_wo"].is_null() && state["s3_secret_access_key_wo"].is_null());
        let live = rig.live("replicationsources", "data").expect("the ReplicationSource");
        assert_eq!(
            live["spec"]["restic"],
            json!({"repository": "data-restic", "copyMethod": "Snapshot", "retain": {"daily": 7, "within": "3d"}})
        );
        let values = secret_values(&ns, "data-restic");
        assert_eq!(values.get("RESTIC_REPOSITORY").map(Vec::as_slice), Some(rig.url().as_bytes()));
        assert_eq!(values.get("RESTIC_PASSWORD").map(Vec::as_slice), Some(rig.password.as_bytes()));
        assert_eq!(values.get("AWS_ACCESS_KEY_ID").map(Vec::as_slice), Some(s3().access_key().as_bytes()));
        assert_eq!(values.get("AWS_SECRET_ACCESS_KEY").map(Vec::as_slice), Some(s3().secret_key().as_bytes()));
        work.assert_plan_empty();

        // A new token: another sync, another snapshot.
        work.write_main_tf(&config("v2", ""));
        work.apply().assert_success();
        assert_eq!(rig.snapshots().len(), 2);
        assert_eq!(state_of(&work, "platform_volume_replication.data")["last_manual_sync"], "v2");
        work.assert_plan_empty();
        let syncs = rig.standin().events_for("ReplicationSource", "data").into_iter().filter(|e| e.starts_with("Synced")).count();
        assert_eq!(syncs, 2, "{:?}", rig.standin().events());

        // Drift on what we set (the copy method, the repository in our Secret) is put back.
        kubectl(&["-n", &ns, "patch", "replicationsources.volsync.backube", "data", "--type=merge", "-p", r#"{"spec":{"restic":{"copyMethod":"Clone"}}}"#])
            .assert_success();
        let patch = json!({"data": {"RESTIC_REPOSITORY": base64(b"s3:http://127.0.0.1:1/elsewhere")}}).to_string();
        kubectl(&["-n", &ns, "patch", "secret", "data-restic", "--type=merge", "-p", &patch]).assert_success();
        let plan = work.assert_plan_has_changes();
        assert!(plan.stdout.contains("copy_method") && plan.stdout.contains("repository_url"), "{}", plan.stdout);
        work.apply().assert_success();
        assert_eq!(rig.live("replicationsources", "data").unwrap()["spec"]["restic"]["copyMethod"], "Snapshot");
        assert_eq!(secret_values(&ns, "data-restic").get("RESTIC_REPOSITORY").map(Vec::as_slice), Some(rig.url().as_bytes()));
        // Fields we do not set are VolSync's or others': no diff.
        kubectl(&["-n", &ns, "patch", "replicationsources.volsync.backube", "data", "--type=merge", "-p", r#"{"spec":{"restic":{"cacheCapacity":"2Gi"}}}"#])
            .assert_success();
        work.assert_plan_empty();
        assert_eq!(rig.snapshots().len(), 2, "an apply without a new token synced");

        // Import: what the object and our Secret hold comes back; the secrets do not.
        work.run(&["state", "rm", "platform_volume_replication.data"]).assert_success();
        work.import("platform_volume_replication.data", &format!("{ns}/data")).assert_success();
        let imported = state_of(&work, "platform_volume_replication.data");
        assert_eq!(imported["repository_url"], rig.url().as_str());
        assert!(imported["repository_secret"].is_null() && imported["password"].is_null(), "{imported}");
        if tf.at_least(1, 11) {
            work.assert_plan_empty();
        } else {
            // The sensitive password and key are not read into state: the next apply writes them.
            let plan = work.assert_plan_has_changes();
            assert!(plan.stdout.contains("updated in-place") && plan.stdout.contains("password"), "{}", plan.stdout);
            work.apply().assert_success();
            work.assert_plan_empty();
        }

        // An imported object is released on destroy unless on_destroy = "delete": then it
        // goes, and the Secret this resource wrote with it; the snapshots stay.
        work.write_main_tf(&config("v2", "  on_destroy = \"delete\"\n"));
        work.apply().assert_success();
        work.destroy().assert_success();
        assert!(rig.live("replicationsources", "data").is_none(), "the ReplicationSource is still there");
        assert!(live_object("secret", &ns, "data-restic").is_none(), "our Secret is still there");
        assert_eq!(rig.snapshots().len(), 2);
    });
}

#[test]
fn volsync_restore_after_a_replication_restores_the_files() {
    for_each_terraform(|tf| {
        let rig = Rig::new("acc-volsync-restore", true);
        let ns = rig.ns.name.clone();
        rig.repository_secret("restic", &["RESTIC_REPOSITORY", "RESTIC_PASSWORD", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]);
        let work = Workdir::new(tf);
        let repository = "  repository_secret = \"restic\"\n";
        let main = format!(
            "{}{}\nresource \"platform_volume_restore\" \"restored\" {{\n  namespace       = {ns:?}\n  name            = \"restored\"\n  \
             destination_pvc = \"restored\"\n  copy_method     = \"Direct\"\n{repository}  sync_on_apply   = \"r1\"\n  \
             depends_on      = [platform_volume_replication.data]\n}}\n",
            preamble(&work, &rig),
            replication("data", &ns, repository, "  sync_on_apply = \"s1\"\n")
        );
        work.write_main_tf(&main);
        work.apply().assert_success();
        let restored = state_of(&work, "platform_volume_restore.restored");
        assert_eq!(restored["last_manual_sync"], "r1");
        assert_eq!(restored["latest_mover_result"], "Successful");
        let live = rig.live("replicationdestinations", "restored").expect("the ReplicationDestination");
        assert_eq!(live["status"]["lastManualSync"], "r1");
        assert_eq!(live["spec"]["restic"]["destinationPVC"], "restored");
        let content = std::fs::read_to_string(rig.standin().volume_dir("restored").join("payload.txt")).expect("restored file");
        assert_eq!(content, "volume contents\n");
        work.assert_plan_empty();

        work.destroy().assert_success();
        assert!(rig.live("replicationdestinations", "restored").is_none());
        assert!(live_object("secret", &ns, "restic").is_some(), "an existing repository Secret was deleted");
    });
}

#[test]
fn volsync_repository_secret_without_restic_password_is_refused_naming_it() {
    for_each_terraform(|tf| {
        let rig = Rig::new("acc-volsync-keys", false);
        let ns = rig.ns.name.clone();
        rig.repository_secret("incomplete", &["RESTIC_REPOSITORY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]);
        let work = Workdir::new(tf);
        let repository = "  repository_secret = \"incomplete\"\n";
        work.write_main_tf(&format!("{}{}", preamble(&work, &rig), replication("data", &ns, repository, "  sync_on_apply = \"v1\"\n")));
        let out = work.apply();
        let named = format!("Secret \"{ns}/incomplete\" has no RESTIC_PASSWORD");
        assert_failure_mentions(&out, "an incomplete repository Secret", &["Repository Secret lacks restic keys", &named]);
        assert!(rig.live("replicationsources", "data").is_none(), "the ReplicationSource was written all the same");
    });
}

#[test]
fn volsync_wrong_password_fails_at_once_quoting_volsyncs_condition() {
    for_each_terraform(|tf| {
        let rig = Rig::new("acc-volsync-wrong", true);
        let ns = rig.ns.name.clone();
        // The repository exists with another password.
        s3().restic(&rig.bucket, "data", "the real password", &["init"]).assert_success();
        let work = Workdir::new(tf);
        let extra = "  sync_on_apply = \"v1\"\n  timeouts {\n    create = \"5m\"\n  }\n";
        work.write_main_tf(&format!("{}{}", preamble(&work, &rig), replication("data", &ns, &given_repository(tf, &rig), extra)));
        let started = Instant::now();
        let out = work.apply();
        let took = started.elapsed();
        let quoted = ["VolSync could not sync ReplicationSource", "VolSync reports Synchronizing=False (Error:", "wrong password", "latest mover: Failed"];
        assert_failure_mentions(&out, "a wrong restic password", &quoted);
        assert!(took < EARLY, "the apply took {took:?}: it did not fail early");
        // The object is in state (tainted), so destroy removes it and our Secret.
        work.destroy().assert_success();
        assert!(rig.live("replicationsources", "data").is_none());
        assert!(live_object("secret", &ns, "data-restic").is_none());
    });
}

#[test]
fn volsync_without_a_controller_times_out_with_the_hint() {
    for_each_terraform(|tf| {
        let rig = Rig::new("acc-volsync-nobody", false);
        let ns = rig.ns.name.clone();
        let work = Workdir::new(tf);
        let extra = "  sync_on_apply = \"v1\"\n  timeouts {\n    create = \"5s\"\n  }\n";
        work.write_main_tf(&format!("{}{}", preamble(&work, &rig), replication("data", &ns, &given_repository(tf, &rig), extra)));
        let out = work.apply();
        let hint = ["timed out after 5s", "no controller has processed this ReplicationSource: is VolSync running?"];
        assert_failure_mentions(&out, "a ReplicationSource no controller takes up", &hint);
        work.destroy().assert_success();
        assert!(rig.live("replicationsources", "data").is_none());
    });
}

#[test]
fn volsync_restic_password_and_s3_key_stay_out_of_trace_logs_and_state() {
    for_each_terraform(|tf| {
        let rig = Rig::new("acc-volsync-trace", true);
        let ns = rig.ns.name.clone();
        let work = Workdir::new(tf);
        work.write_main_tf(&format!(
            "{}{}",
            preamble(&work, &rig),
            replication("data", &ns, &given_repository(tf, &rig), "  sync_on_apply = \"v1\"\n")
        ));
        let secrets = [rig.password.clone(), base64(rig.password.as_bytes()), s3().secret_key().to_string(), base64(s3().secret_key().as_bytes())];
        let trace = [("TF_LOG", "trace")];
        let apply = work.run_with_env(&["apply", "-auto-approve", "-input=false", "-no-color"], &trace);
        apply.assert_success();
        assert!(apply.stderr.contains("ApplyResourceChange"), "the trace log holds none of the provider's lines");
        assert_eq!(rig.snapshots().len(), 1, "the sync did not happen");
        let mut state: Value = serde_json::from_str(&std::fs::read_to_string(work.path().join("terraform.tfstate")).unwrap()).unwrap();
        if !tf.at_least(1, 11) {
            // Terraform 1.0 has no write-only attributes: the sensitive ones hold the values,
            // and only they may.
            let attributes = &mut state["resources"][0]["instances"][0]["attributes"];
            assert_eq!(attributes["password"], rig.password.as_str());
            attributes["password"] = Value::Null;
            attributes["s3_secret_access_key"] = Value::Null;
        }
        let destroy = work.run_with_env(&["destroy", "-auto-approve", "-input=false", "-no-color"], &trace);
        destroy.assert_success();
        for (what, text) in [("apply output", apply.combined()), ("state", state.to_string()), ("destroy output", destroy.combined())] {
            for secret in &secrets {
                if let Some(at) = text.find(secret.as_str()) {
                    let from = text[..at].char_indices().rev().nth(200).map_or(0, |(i, _)| i);
                    panic!("a secret is in the {what}:\n...{}", &text[from..at]);
                }
            }
        }
    });
}

#[test]
fn volsync_bad_input_is_refused_at_plan_time() {
    for_each_terraform(|tf| {
        let work = Workdir::without_cluster(tf);
        let secret = "  repository_secret = \"restic\"\n";
        let resources = [
            replication("six", "apps", secret, "  schedule = \"0 0 3 * * *\"\n"),
            replication("every", "apps", secret, "  schedule = \"@every 1h\"\n"),
            replication("both", "apps", secret, "  schedule = \"@daily\"\n  sync_on_apply = \"v1\"\n"),
            replication("nowhere", "apps", "  repository_url = \"minio.lan/backups\"\n  password = \"x\"\n", "  sync_on_apply = \"v1\"\n"),
            replication("within", "apps", secret, "  sync_on_apply = \"v1\"\n  retain {\n    within = \"3 days\"\n  }\n"),
            "\nresource \"platform_volume_restore\" \"clone\" {\n  namespace = \"apps\"\n  name = \"clone\"\n  destination_pvc = \"data\"\n  \
             copy_method = \"Clone\"\n  repository_secret = \"restic\"\n  sync_on_apply = \"v1\"\n  restore_as_of = \"yesterday\"\n}\n"
                .to_string(),
        ];
        work.write_main_tf(&format!("{}provider \"platform\" {{}}\n{}", required_providers!(), resources.concat()));
        let out = work.plan();
        let expected = [
            "VolSync's schedules have no seconds field",
            "VolSync's CRDs take only five numeric fields",
            "Two triggers",
            "is no restic repository",
            "\"3 days\" is not a restic duration",
            "\"Clone\" is not one of `Direct`, `Snapshot`",
            "\"yesterday\" is not an RFC 3339 time",
        ];
        assert_failure_mentions(&out, "bad input", &expected);
    });
}
