//! `platform_backup_location`, `platform_backup_schedule`, `platform_backup`,
//! `platform_restore` and the `platform_backups` data source with real Terraform, against
//! the real CRDs, the real API server and a real S3 server (SeaweedFS), with the Velero
//! stand-in of the harness doing the controller's visible work (its image cannot run here).

use std::time::Duration;

use serde_json::Value as Json;

use crate::harness::s3::s3;
use crate::harness::velero_standin::{velero_path, VeleroStandIn, OUTCOME_LABEL, SCRIPTED_FAILURE};
use crate::harness::{cluster, for_each_terraform, kubectl, unique_name, wait_until, Workdir};

const PROVIDER: &str = concat!(required_providers!(), "provider \"platform\" {}\n");

/// A namespace of its own, watched by its own stand-in, and a bucket of its own.
struct Site {
    namespace: String,
    bucket: String,
    _standin: VeleroStandIn,
}

impl Site {
    fn new(prefix: &str) -> Site {
        let namespace = unique_name(prefix);
        kubectl(&["create", "namespace", &namespace]).assert_success();
        let bucket = unique_name("bkt");
        s3().create_bucket(&bucket);
        let standin = VeleroStandIn::start(&namespace);
        Site { namespace, bucket, _standin: standin }
    }

    /// A location named `name` on this site's bucket with the rig's keys (or `secret_key`).
    fn location(&self, name: &str, secret_key: &str, extra: &str) -> String {
        format!(
            r#"
resource "platform_backup_location" "{name}" {{
  namespace         = "{ns}"
  name              = "{name}"
  bucket            = "{bucket}"
  prefix            = "cluster-a"
  access_key_id     = "{access}"
  secret_access_key = "{secret_key}"
  s3 {{
    endpoint         = "{endpoint}"
    region           = "{region}"
    force_path_style = true
  }}
  timeouts {{
    create = "60s"
  }}
{extra}}}
"#,
            ns = self.namespace,
            bucket = self.bucket,
            access = s3().access_key(),
            endpoint = s3().endpoint(),
            region = s3().region(),
        )
    }

    fn get(&self, plural: &str, name: &str) -> Option<Json> {
        let response = cluster().get(&velero_path(&self.namespace, plural, name));
        response.ok().then(|| response.json())
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        let _ = kubectl(&["delete", "namespace", &self.namespace, "--wait=false"]);
    }
}

#[test]
fn velero_location_schedule_backup_restore_lifecycle() {
    for_each_terraform(|tf| {
        let site = Site::new("acc-velero");
        let ns = site.namespace.clone();
        let config = |ttl: &str| {
            format!(
                r#"{PROVIDER}{location}
resource "platform_backup_schedule" "nightly" {{
  namespace           = "{ns}"
  name                = "nightly"
  schedule            = "0 3 * * *"
  ttl                 = "{ttl}"
  storage_location    = platform_backup_location.default.name
  included_namespaces = ["apps"]
}}

resource "platform_backup" "before" {{
  namespace           = "{ns}"
  name                = "before-upgrade"
  storage_location    = platform_backup_location.default.name
  included_namespaces = ["apps"]
  depends_on          = [platform_backup_schedule.nightly]
}}

resource "platform_restore" "copy" {{
  namespace         = "{ns}"
  name              = "copy-1"
  backup_name       = platform_backup.before.name
  namespace_mapping = {{ apps = "apps-copy" }}
}}

data "platform_backups" "all" {{
  namespace  = "{ns}"
  depends_on = [platform_backup.before]
}}

output "latest" {{
  value = data.platform_backups.all.latest_completed
}}
"#,
                location = site.location("default", s3().secret_key(), "  default = true\n")
            )
        };
        let work = Workdir::new(tf);
        work.write_main_tf(&config("168h"));
        work.apply().assert_success();

        let location = work.resource_values("platform_backup_location.default").unwrap();
        assert_eq!(location["phase"], "Available");
        let schedule = work.resource_values("platform_backup_schedule.nightly").unwrap();
        assert_eq!(schedule["phase"], "Enabled");
        let backup = work.resource_values("platform_backup.before").unwrap();
        assert_eq!(backup["phase"], "Completed");
        assert!(backup["completed"].is_string(), "{backup}");
        let restore = work.resource_values("platform_restore.copy").unwrap();
        assert_eq!(restore["phase"], "Completed");
        assert_eq!(work.output_json()["latest"]["value"], "before-upgrade");
        // What Velero (here its stand-in) wrote is really in the bucket.
        let keys = s3().list(&site.bucket, "cluster-a/backups/before-upgrade/");
        assert!(keys.iter().any(|k| k.ends_with("velero-backup.json")), "{keys:?}");
        // The Secret of the keys belongs to the location and holds a credentials file.
        let secret = kubectl(&["get", "secret", "-n", &ns, "default-credentials", "-o", "json"]);
        secret.assert_success();
        assert!(secret.json()["data"]["cloud"].is_string());
        assert_eq!(site.get("schedules", "nightly").unwrap()["spec"]["template"]["ttl"], "168h0m0s");
        work.assert_plan_empty();

        // An update of the TTL, spelled as Go would not; no diff afterwards.
        work.write_main_tf(&config("720h"));
        work.apply().assert_success();
        assert_eq!(site.get("schedules", "nightly").unwrap()["spec"]["template"]["ttl"], "720h0m0s");
        work.assert_plan_empty();

        // What a run may change in place (how it is judged and destroyed) changes nothing in
        // the cluster and is not a new backup or restore.
        let uid = |plural: &str, name: &str| site.get(plural, name).unwrap()["metadata"]["uid"].clone();
        let (backup_uid, restore_uid) = (uid("backups", "before-upgrade"), uid("restores", "copy-1"));
        let in_place = config("720h")
            .replace("  depends_on          = [platform_backup_schedule.nightly]", "  depends_on          = [platform_backup_schedule.nightly]\n  allow_partial_failure = true")
            .replace("  namespace_mapping = { apps = \"apps-copy\" }", "  namespace_mapping = { apps = \"apps-copy\" }\n  on_destroy        = \"retain\"");
        work.write_main_tf(&in_place);
        let plan = work.assert_plan_has_changes();
        assert!(plan.stdout.contains("2 to change") && plan.stdout.contains("0 to destroy"), "{}", plan.stdout);
        work.apply().assert_success();
        work.assert_plan_empty();
        assert_eq!(uid("backups", "before-upgrade"), backup_uid);
        assert_eq!(uid("restores", "copy-1"), restore_uid);
        work.write_main_tf(&config("720h"));
        work.apply().assert_success();

        // Drift on what we set is shown and undone; what Velero adds is not drift.
        kubectl(&["patch", "-n", &ns, "schedules.velero.io", "nightly", "--type=merge", "-p", r#"{"spec":{"schedule":"0 4 * * *","skipImmediately":true}}"#])
            .assert_success();
        let plan = work.assert_plan_has_changes();
        assert!(plan.stdout.contains("0 4 * * *"), "{}", plan.stdout);
        assert!(!plan.stdout.contains("skipImmediately"), "{}", plan.stdout);
        work.apply().assert_success();
        assert_eq!(site.get("schedules", "nightly").unwrap()["spec"]["schedule"], "0 3 * * *");
        work.assert_plan_empty();

        // Import, then nothing to do (with the TTL as Go prints it: import cannot know
        // another spelling).
        work.write_main_tf(&config("720h0m0s"));
        work.apply().assert_success();
        for (address, id) in [
            ("platform_backup_schedule.nightly", format!("{ns}/nightly")),
            ("platform_backup.before", format!("{ns}/before-upgrade")),
            ("platform_restore.copy", format!("{ns}/copy-1")),
        ] {
            work.run(&["state", "rm", address]).assert_success();
            work.import(address, &id).assert_success();
        }
        let plan = work.plan();
        plan.assert_success();
        // The imported schedule is released, not deleted, on destroy: that shows nowhere in a
        // plan, so an empty plan is what import must give.
        assert!(plan.stdout.contains("No changes"), "{}", plan.stdout);

        // Destroy: the location and its Secret go; the backup and restore are retained.
        work.destroy().assert_success();
        assert!(site.get("backupstoragelocations", "default").is_none());
        assert!(!kubectl(&["get", "secret", "-n", &ns, "default-credentials"]).success());
        assert!(site.get("schedules", "nightly").is_some(), "an imported schedule was deleted");
        assert!(site.get("backups", "before-upgrade").is_some(), "a retained backup was deleted");
    });
}

/// Velero's grammars at plan time, before anything is contacted.
#[test]
fn velero_bad_input_is_refused_at_plan() {
    for_each_terraform(|tf| {
        let work = Workdir::without_cluster(tf);
        let long = "n".repeat(64);
        work.write_main_tf(&format!(
            r#"{PROVIDER}
resource "platform_backup_schedule" "bad_cron" {{
  name     = "bad-cron"
  schedule = "0 25 * * *"
}}
resource "platform_backup_schedule" "seconds" {{
  name     = "seconds"
  schedule = "0 0 3 * * *"
}}
resource "platform_backup_schedule" "bad_ttl" {{
  name     = "bad-ttl"
  schedule = "@daily"
  ttl      = "30d"
}}
resource "platform_backup" "long" {{
  name = "{long}"
}}
resource "platform_restore" "nothing" {{
  name = "nothing"
}}
"#
        ));
        let out = work.plan();
        let text = out.combined().split_whitespace().collect::<Vec<_>>().join(" ");
        for needle in [
            "outside 0-23",
            "Velero's schedules have no seconds field",
            "unknown unit \"d\"",
            "has 64 characters",
            "Give exactly one of backup_name and schedule_name",
        ] {
            assert!(text.contains(needle), "plan does not say {needle:?}:\n{}", out.describe());
        }
        assert!(!out.success());
    });
}

/// A wrong key is an S3 error before anything is written to the cluster.
#[test]
fn velero_wrong_s3_key_is_refused_before_anything_is_written() {
    for_each_terraform(|tf| {
        let site = Site::new("acc-velero-key");
        let work = Workdir::new(tf);
        work.write_main_tf(&format!("{PROVIDER}{}", site.location("bad", "not-the-secret-key", "")));
        work.apply().assert_failure_contains("SignatureDoesNotMatch");
        assert!(site.get("backupstoragelocations", "bad").is_none(), "a location was written");
        assert!(!kubectl(&["get", "secret", "-n", &site.namespace, "bad-credentials"]).success(), "a Secret was written");
    });
}

/// A failed backup is an error quoting Velero's reason, and stays in the state; a partly
/// failed one passes when allowed; one no controller processes times out with a hint.
#[test]
fn velero_failed_partial_and_unprocessed_backups() {
    for_each_terraform(|tf| {
        let site = Site::new("acc-velero-fail");
        let ns = &site.namespace;
        let work = Workdir::new(tf);
        work.write_main_tf(&format!(
            r#"{PROVIDER}{location}
resource "platform_backup" "failing" {{
  namespace = "{ns}"
  name      = "failing"
  storage_location = platform_backup_location.default.name
  labels    = {{ "{OUTCOME_LABEL}" = "Failed" }}
}}
resource "platform_backup" "partial" {{
  namespace             = "{ns}"
  name                  = "partial"
  storage_location      = platform_backup_location.default.name
  labels                = {{ "{OUTCOME_LABEL}" = "PartiallyFailed" }}
  allow_partial_failure = true
}}
resource "platform_backup" "ignored" {{
  namespace = "{ns}"
  name      = "ignored"
  depends_on = [platform_backup_location.default]
  labels    = {{ "{OUTCOME_LABEL}" = "Ignore" }}
  timeouts {{
    create = "5s"
  }}
}}
"#,
            location = site.location("default", s3().secret_key(), "  default = true\n")
        ));
        let out = work.apply();
        out.assert_failure_contains(SCRIPTED_FAILURE);
        assert!(out.combined().contains("no controller has processed this Backup"), "{}", out.describe());
        let partial = work.resource_values("platform_backup.partial").unwrap();
        assert_eq!(partial["phase"], "PartiallyFailed");
        let state = work.run(&["state", "list"]);
        assert!(state.stdout.contains("platform_backup.failing"), "a failed backup left the state:\n{}", state.stdout);
    });
}

/// Ctrl-C during a backup's wait ends the apply promptly.
#[test]
fn velero_interrupt_cancels_a_backup_wait() {
    for_each_terraform(|tf| {
        let site = Site::new("acc-velero-stop");
        let ns = &site.namespace;
        let work = Workdir::new(tf);
        work.write_main_tf(&format!(
            r#"{PROVIDER}{location}
resource "platform_backup" "slow" {{
  namespace        = "{ns}"
  name             = "slow"
  storage_location = platform_backup_location.default.name
  labels           = {{ "{OUTCOME_LABEL}" = "Slow" }}
}}
"#,
            location = site.location("default", s3().secret_key(), "  default = true\n")
        ));
        let apply = work.start_interruptible(&["apply", "-auto-approve", "-input=false", "-no-color"]);
        wait_until("the slow backup in progress", Duration::from_secs(60), || match site.get("backups", "slow") {
            Some(b) if b["status"]["phase"] == "InProgress" => Ok(()),
            other => Err(format!("{other:?}")),
        });
        let (succeeded, text) = apply.interrupt(Duration::from_secs(30));
        assert!(!succeeded, "apply succeeded despite the interrupt:\n{text}");
        assert!(text.contains("cancelled"), "no cancellation message:\n{text}");
    });
}

/// A backup taken before a stack change, in one apply, ordered by depends_on.
#[test]
fn velero_backup_before_a_stack_change_in_one_apply() {
    for_each_terraform(|tf| {
        let site = Site::new("acc-velero-order");
        let ns = &site.namespace;
        let app_ns = unique_name("acc-velero-app");
        let work = Workdir::new(tf);
        work.write_main_tf(&format!(
            r#"{PROVIDER}{location}
resource "platform_backup" "before" {{
  namespace        = "{ns}"
  name             = "before-change"
  storage_location = platform_backup_location.default.name
}}
resource "platform_stack" "apps" {{
  name       = "{app_ns}"
  depends_on = [platform_backup.before]
  component {{
    name      = "settings"
    manifests = <<-YAML
      apiVersion: v1
      kind: Namespace
      metadata:
        name: {app_ns}
      ---
      apiVersion: v1
      kind: ConfigMap
      metadata:
        name: settings
        namespace: {app_ns}
      data:
        version: "2"
    YAML
  }}
}}
"#,
            location = site.location("default", s3().secret_key(), "  default = true\n")
        ));
        work.apply().assert_success();
        let backup = site.get("backups", "before-change").unwrap();
        let completed = backup["status"]["completionTimestamp"].as_str().unwrap().to_string();
        let configmap = kubectl(&["get", "configmap", "-n", &app_ns, "settings", "-o", "json"]);
        configmap.assert_success();
        let created = configmap.json()["metadata"]["creationTimestamp"].as_str().unwrap().to_string();
        assert!(created >= completed, "the stack changed ({created}) before the backup completed ({completed})");
        work.destroy().assert_success();
    });
}

/// No S3 key appears in a trace log; with Terraform 1.11 and the write-only key, not in the
/// state or the plan either (before 1.11 the key is a sensitive attribute, and Terraform
/// keeps those in state and in `show -json`).
#[test]
fn velero_s3_key_stays_out_of_logs_state_and_plan() {
    for_each_terraform(|tf| {
        let site = Site::new("acc-velero-trace");
        let work = Workdir::new(tf);
        let write_only = tf.at_least(1, 11);
        let mut location = site.location("traced", "${var.secret}", "");
        if write_only {
            location = location.replace("secret_access_key =", "secret_access_key_wo =");
        }
        work.write_main_tf(&format!("{PROVIDER}{location}\nvariable \"secret\" {{\n  type      = string\n  sensitive = true\n}}\n"));
        let secret = s3().secret_key().to_string();
        let env = [("TF_LOG", "trace"), ("TF_VAR_secret", secret.as_str())];
        let apply = work.run_with_env(&["apply", "-auto-approve", "-input=false", "-no-color"], &env);
        apply.assert_success();
        assert!(apply.combined().contains("provider.terraform-provider-platform"), "no provider log lines seen");
        assert!(!apply.combined().contains(&secret), "the trace log holds the S3 secret key");
        let plan = work.run_with_env(&["plan", "-out=plan.bin", "-input=false", "-no-color"], &env);
        assert!(!plan.combined().contains(&secret), "the trace log of a plan holds the S3 secret key");
        if write_only {
            // Terraform itself records the values of input variables in a saved plan; the rest
            // is what the provider planned.
            let mut plan = work.run(&["show", "-json", "plan.bin"]).json();
            plan.as_object_mut().map(|p| p.remove("variables"));
            assert!(!plan.to_string().contains(&secret), "the plan JSON holds the S3 secret key");
            let state = std::fs::read_to_string(work.path().join("terraform.tfstate")).unwrap();
            assert!(!state.contains(&secret), "the state holds the write-only S3 secret key");
        }
        work.run_with_env(&["destroy", "-auto-approve", "-input=false", "-no-color"], &env).assert_success();
    });
}

/// A location on an existing Secret: drift, import with an empty plan, release on destroy;
/// a second default location is warned about.
#[test]
fn velero_location_on_an_existing_secret_import_and_default_warning() {
    for_each_terraform(|tf| {
        let site = Site::new("acc-velero-loc");
        let ns = &site.namespace;
        let file = crate::harness::velero_standin::aws_credentials_file(s3().access_key(), s3().secret_key());
        kubectl(&["create", "secret", "generic", "-n", ns, "s3-keys", &format!("--from-literal=aws={file}")]).assert_success();
        let shared = |prefix: &str, extra: &str| {
            format!(
                r#"
resource "platform_backup_location" "shared" {{
  namespace              = "{ns}"
  name                   = "shared"
  bucket                 = "{bucket}"
  prefix                 = "{prefix}"
  credential_secret_name = "s3-keys"
  credential_secret_key  = "aws"
  s3 {{
    endpoint         = "{endpoint}"
    region           = "{region}"
    force_path_style = true
  }}
{extra}}}
"#,
                bucket = site.bucket,
                endpoint = s3().endpoint(),
                region = s3().region(),
            )
        };
        let work = Workdir::new(tf);
        work.write_main_tf(&format!("{PROVIDER}{}", shared("cluster-b", "  default = true\n")));
        work.apply().assert_success();
        work.assert_plan_empty();

        // Drift on the prefix is shown and undone.
        kubectl(&["patch", "-n", ns, "backupstoragelocations.velero.io", "shared", "--type=merge", "-p", r#"{"spec":{"objectStorage":{"prefix":"elsewhere"}}}"#])
            .assert_success();
        let plan = work.assert_plan_has_changes();
        assert!(plan.stdout.contains("elsewhere"), "{}", plan.stdout);
        work.apply().assert_success();
        assert_eq!(site.get("backupstoragelocations", "shared").unwrap()["spec"]["objectStorage"]["prefix"], "cluster-b");

        // A second default in the namespace is warned about.
        let second = site.location("second", s3().secret_key(), "  default = true\n");
        work.write_main_tf(&format!("{PROVIDER}{}{second}", shared("cluster-b", "  default = true\n")));
        let out = work.apply();
        out.assert_success();
        assert!(out.combined().contains("Another default backup storage location"), "{}", out.describe());
        work.write_main_tf(&format!("{PROVIDER}{}", shared("cluster-b", "  default = true\n")));
        work.apply().assert_success();

        // Import, then nothing to do; an imported location is released on destroy.
        work.run(&["state", "rm", "platform_backup_location.shared"]).assert_success();
        work.import("platform_backup_location.shared", &format!("{ns}/shared")).assert_success();
        work.assert_plan_empty();
        work.destroy().assert_success();
        assert!(site.get("backupstoragelocations", "shared").is_some(), "an imported location was deleted");
        assert!(kubectl(&["get", "secret", "-n", ns, "s3-keys"]).success(), "the user's Secret was deleted");
    });
}

/// The catalog's Velero entry and the backup resources in one apply: the stack installs
/// Velero (a HelmRelease the helm-controller stand-in makes Ready), then the location and the
/// schedule follow.
#[test]
fn velero_from_the_catalog_then_location_and_schedule_in_one_apply() {
    use crate::harness::flux_standin;
    use crate::stack::{flux_namespace_component, stack_tf, Component};
    flux_standin::ensure();
    for_each_terraform(|tf| {
        let site = Site::new("acc-velero-cat");
        let ns = &site.namespace;
        let stack = unique_name("acc-velero-stack");
        let flux_ns = unique_name("acc-velero-flux");
        let velero = Component::new("velero").depends_on(&["flux-ns"]).attr("catalog", "\"velero\"").attr("namespace", &format!("{ns:?}"));
        let stack_config = stack_tf(
            &stack,
            &format!("namespace = {flux_ns:?}\n  timeouts {{\n    create = \"2m\"\n  }}"),
            &[flux_namespace_component(&flux_ns), velero],
        );
        let location = site.location("default", s3().secret_key(), "  default = true\n  depends_on = [platform_stack.this]\n");
        let work = Workdir::new(tf);
        work.write_main_tf(&format!(
            r#"{stack_config}{location}
resource "platform_backup_schedule" "nightly" {{
  namespace        = "{ns}"
  name             = "nightly"
  schedule         = "@daily"
  storage_location = platform_backup_location.default.name
}}
"#
        ));
        work.apply().assert_success();
        let release = flux_standin::helm_release(&flux_ns, &format!("{stack}-velero")).expect("the Velero HelmRelease");
        assert!(flux_standin::is_ready(&release), "{}", release["status"]);
        assert_eq!(work.resource_values("platform_backup_schedule.nightly").unwrap()["phase"], "Enabled");
        work.assert_plan_empty();
        work.destroy().assert_success();
    });
}
