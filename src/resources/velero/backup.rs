//! `platform_backup`: an on-demand Velero Backup, say before an upgrade, ordered in the same
//! apply with `depends_on`. It is created with a plain create (a Backup of that name that
//! exists already, often synced back from the bucket, is an error and never adopted), after
//! checking that its storage location is Available, and waited on until it ends: Completed
//! is success; PartiallyFailed is an error unless allowed; Failed and FailedValidation quote
//! Velero's reasons.
//!
//! A Backup is immutable: a changed setting replaces it, and the new one needs a new name.
//! Destroy forgets it by default (expiry stays Velero's job); `on_destroy = "delete"` asks
//! Velero to delete it, bucket contents included, with a DeleteBackupRequest, and waits.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use kube::api::ApiResource;
use serde_json::json;

use super::{duration, namespace_attribute, run, not_processed, phase, plan_namespace};
use crate::clients::deadline::Progress;
use crate::framework::diagnostics::{AttributePath, Diagnostics};
use crate::framework::resource::{Context, Plan, Resource};
use crate::framework::schema::{timeouts_block, Attribute, Block, Schema};
use crate::framework::timeouts;
use crate::framework::value::Value;
use crate::platform::{cluster_attribute, kube_diagnostic, validate_cluster_attribute, Platform};
use crate::resources::metadata;
use crate::resources::object::{self, NamespacedObject};

const DEFAULT_CREATE_TIMEOUT: Duration = Duration::from_secs(30 * 60);
const DEFAULT_DELETE_TIMEOUT: Duration = Duration::from_secs(10 * 60);
const POLL: Duration = Duration::from_secs(1);


pub struct BackupResource {
    platform: Arc<Platform>,
    backups: ApiResource,
    locations: ApiResource,
    delete_requests: ApiResource,
}

impl BackupResource {
    pub fn new(platform: Arc<Platform>) -> Self {
        BackupResource {
            platform,
            backups: super::velero_kind("Backup", "backups"),
            locations: super::velero_kind("BackupStorageLocation", "backupstoragelocations"),
            delete_requests: super::velero_kind("DeleteBackupRequest", "deletebackuprequests"),
        }
    }

    async fn object(&self, state: &Value, resource: &ApiResource, name: &str, diags: &mut Diagnostics) -> Option<NamespacedObject> {
        let mut at = state.clone();
        at.set_attr("name", Value::string(name));
        NamespacedObject::connect(&self.platform, &at, resource, diags).await
    }

    async fn backup(&self, state: &Value, diags: &mut Diagnostics) -> Option<NamespacedObject> {
        let name = state.get_attr("name").and_then(Value::as_str).unwrap_or_default().to_string();
        self.object(state, &self.backups, &name, diags).await
    }

    /// A backup to a location Velero cannot use fails late and obscurely: check it first.
    async fn check_location(&self, ctx: &Context, planned: &Value, diags: &mut Diagnostics) -> Option<()> {
        let name = match planned.get_attr("storage_location").and_then(Value::as_str) {
            Some(name) => name.to_string(),
            None => self.default_location(ctx, planned, diags).await?,
        };
        let location = self.object(planned, &self.locations, &name, diags).await?;
        let at = AttributePath::root("storage_location");
        match location.get(ctx).await {
            Ok(Some(live)) if phase(&live) == "Available" => Some(()),
            Ok(Some(live)) => {
                let message = live["status"]["message"].as_str().unwrap_or("Velero gave no message");
                let state = if phase(&live).is_empty() { not_processed("BackupStorageLocation", &location.namespace) } else { format!("{}: {message}", phase(&live)) };
                diags.error_at(at, "Backup storage location not available", format!("{} is not Available ({state}); no backup was started.", location.describe()));
                None
            }
            Ok(None) => {
                diags.error_at(at, "No such backup storage location", format!("{} does not exist; no backup was started.", location.describe()));
                None
            }
            Err(e) => {
                diags.push(kube_diagnostic(&format!("Could not read {}", location.describe()), &e));
                None
            }
        }
    }
}

impl BackupResource {
    /// The location Velero uses for a backup that names none: the one marked default.
    async fn default_location(&self, ctx: &Context, planned: &Value, diags: &mut Diagnostics) -> Option<String> {
        match super::default_locations(&self.platform, ctx, planned).await {
            Ok(defaults) => {
                let default = defaults.into_iter().next();
                if default.is_none() {
                    let namespace = planned.get_attr("namespace").and_then(Value::as_str).unwrap_or(super::DEFAULT_NAMESPACE);
                    diags.error_at(
                        AttributePath::root("storage_location"),
                        "No default backup storage location",
                        format!("Namespace {namespace:?} has no BackupStorageLocation marked default; name one in storage_location. No backup was started."),
                    );
                }
                default
            }
            Err(diagnostic) => {
                diags.push(diagnostic);
                None
            }
        }
    }
}

/// The Backup the configuration describes.
fn desired(planned: &Value) -> serde_json::Value {
    // An empty string means unset (and Kubernetes 1.20 refuses "" inside custom resources).
    let text = |name: &str| planned.get_attr(name).and_then(Value::as_str).filter(|t| !t.is_empty());
    let mut spec = json!({});
    if let Some(ttl) = text("ttl").and_then(|t| duration::canonical(t).ok()) {
        spec["ttl"] = json!(ttl);
    }
    if let Some(location) = text("storage_location") {
        spec["storageLocation"] = json!(location);
    }
    super::write_selection(planned, &mut spec);
    json!({
        "apiVersion": "velero.io/v1",
        "kind": "Backup",
        "metadata": { "name": text("name"), "namespace": text("namespace"), "labels": metadata::string_map(planned.get_attr("labels")) },
        "spec": spec,
    })
}

/// What the state shows of a live Backup: its outcome (the settings are immutable).
fn with_status(state: &Value, live: &serde_json::Value) -> Value {
    let mut next = super::with_outcome(state, live);
    next.set_attr("expiration", live["status"]["expiration"].as_str().map_or(Value::Null, Value::string));
    next
}

/// The settings of a live Backup, for import.
fn imported(mut state: Value, live: &serde_json::Value) -> Value {
    let spec = &live["spec"];
    state.set_attr("ttl", spec["ttl"].as_str().map_or(Value::Null, |t| Value::string(duration::canonical(t).unwrap_or_else(|_| t.to_string()))));
    state.set_attr("storage_location", spec["storageLocation"].as_str().map_or(Value::Null, Value::string));
    super::read_selection(&mut state, spec, |_| true);
    // Velero writes `false` for flags nobody set: only a `true` was asked for.
    for (attribute, field) in super::VOLUME_OPTIONS {
        state.set_attr(attribute, if spec[field].as_bool() == Some(true) { Value::Bool(true) } else { Value::Null });
    }
    state.set_attr("on_destroy", Value::Null);
    state
}

#[async_trait]
impl Resource for BackupResource {
    fn type_name(&self) -> &'static str {
        "platform_backup"
    }

    fn schema(&self) -> Schema {
        let replace = |a: Attribute| a.requires_replace();
        Schema::new(
            Block::new(
            vec![
                Attribute::string("id").computed().keep_on_update().describe("`namespace/name`."),
                namespace_attribute(),
                replace(Attribute::string("name").required()).describe(
                    "Name of the Backup, at most 63 characters. A Backup cannot be made again under a name Velero \
                     already has: give each backup its own (e.g. with the version it precedes).",
                ),
                replace(Attribute::string("storage_location").optional()).describe(
                    "The BackupStorageLocation to write to; it must be Available. Velero's default location when omitted.",
                ),
                replace(Attribute::string("ttl").optional().computed()).describe("How long Velero keeps it, as a Go duration; `720h0m0s` when omitted."),
                replace(Attribute::bool("snapshot_volumes").optional()).describe("Take snapshots of persistent volumes."),
                replace(Attribute::bool("default_volumes_to_fs_backup").optional()).describe("Back up volumes with file-system backup by default."),
                replace(Attribute::string_map("labels").optional()).describe("Labels of the Backup object."),
                Attribute::bool("allow_partial_failure").optional().describe(
                    "Accept a PartiallyFailed backup (some items failed) instead of failing the apply.",
                ),
                Attribute::string("on_destroy").optional().describe(
                    "What destroy does: `retain` (the default: forget it; Velero deletes it when its TTL expires) or \
                     `delete` (a DeleteBackupRequest, which also removes it from the bucket, waited on until it is gone).",
                ),
                Attribute::string("expiration").computed().describe("When Velero will delete it."),
                cluster_attribute(),
            ]
            .into_iter()
            .chain(super::selection_attributes("back up", true))
            .chain(super::outcome_attributes())
            .collect())
            .with_block(timeouts_block(&["create", "delete"]))
            .describe(
                "An on-demand Velero Backup (`velero.io/v1`), e.g. before an upgrade in the same apply (`depends_on`). \
                 Checks that its location is Available, creates it (never adopting one of the same name), and waits until \
                 it ends, reporting progress; a failed backup is an error quoting Velero's reason.",
            ),
        )
    }

    fn validate(&self, config: &Value, diags: &mut Diagnostics) {
        super::validate_name(config, diags);
        metadata::validate_name(config, "namespace", diags);
        super::validate_duration(config, "ttl", diags);
        run::validate_on_destroy(config, diags);
        timeouts::validate(config, &["create", "delete"], diags);
        validate_cluster_attribute(config, diags);
    }

    async fn modify_plan(&self, _ctx: &Context, plan: &mut Plan, _diags: &mut Diagnostics) {
        if plan.planned.is_null() {
            return;
        }
        plan_namespace(plan);
        if plan.is_create() {
            if plan.config.get_attr("ttl").is_none_or(Value::is_null) {
                plan.planned.set_attr("ttl", Value::string(super::DEFAULT_TTL));
            }
            return;
        }
        // An update changes only how the apply judges and destroys it: what Velero did stays.
        run::keep_outcome(plan, &["id", "phase", "started", "completed", "expiration", "errors", "warnings"]);
        if plan.config.get_attr("ttl").is_none_or(Value::is_null) {
            run::keep_outcome(plan, &["ttl"]);
        }
        // The generic pass planned an omitted ttl as unknown, hence as a replacement; it is not.
        let ttl_unchanged = plan.planned.get_attr("ttl") == plan.prior.get_attr("ttl");
        plan.requires_replace.retain(|path| !(ttl_unchanged && *path == AttributePath::root("ttl")));
    }

    async fn create(&self, ctx: &Context, planned: &Value, _config: &Value, diags: &mut Diagnostics) -> Option<Value> {
        self.check_location(ctx, planned, diags).await?;
        let backup = self.backup(planned, diags).await?;
        let timeout = timeouts::timeout(planned, "create", DEFAULT_CREATE_TIMEOUT);
        run::Run { object: &backup, kind: "Backup", outcome: with_status }.start_and_wait(ctx, planned, &desired(planned), timeout, diags).await
    }

    async fn read(&self, ctx: &Context, state: &Value, diags: &mut Diagnostics) -> Option<Value> {
        let backup = self.backup(state, diags).await?;
        run::Run { object: &backup, kind: "Backup", outcome: with_status }.read(ctx, state, diags).await
    }

    async fn update(&self, _ctx: &Context, _prior: &Value, planned: &Value, _config: &Value, _diags: &mut Diagnostics) -> Option<Value> {
        // Only allow_partial_failure and on_destroy change in place: nothing to do in the cluster.
        Some(planned.clone())
    }

    async fn delete(&self, ctx: &Context, prior: &Value, diags: &mut Diagnostics) {
        if !run::deletes_on_destroy(prior) {
            return;
        }
        let Some(backup) = self.backup(prior, diags).await else { return };
        match backup.get(ctx).await {
            Ok(None) => return,
            Ok(Some(_)) => {}
            Err(e) => {
                diags.push(kube_diagnostic(&format!("Could not read {}", backup.describe()), &e));
                return;
            }
        }
        // A plain DELETE would come back from the bucket: ask Velero to delete it.
        let request_name = format!("{}-{}", backup.name.chars().take(40).collect::<String>(), &crate::clients::kube::ownership::new_instance_id()[..8]);
        let Some(request) = self.object(prior, &self.delete_requests, &request_name, diags).await else { return };
        let body = json!({
            "apiVersion": "velero.io/v1",
            "kind": "DeleteBackupRequest",
            "metadata": { "name": request_name, "namespace": backup.namespace, "labels": { "velero.io/backup-name": backup.name } },
            "spec": { "backupName": backup.name },
        });
        if let Err(e) = request.create(ctx, &body).await {
            diags.push(kube_diagnostic(&format!("Could not ask Velero to delete {}", backup.describe()), &e));
            return;
        }
        let timeout = timeouts::timeout(prior, "delete", DEFAULT_DELETE_TIMEOUT);
        let namespace = backup.namespace.clone();
        let what = format!("Velero to delete {}", backup.describe());
        let gone = backup
            .wait(ctx, timeout, POLL, &what, |live| match live {
                None => Progress::Done,
                Some(live) if live["metadata"]["deletionTimestamp"].is_string() => Progress::Pending("being deleted".to_string()),
                Some(_) => Progress::Pending(format!("the DeleteBackupRequest {request_name} is not processed yet: is Velero running in namespace {namespace}?")),
            })
            .await;
        if let Err(e) = gone {
            diags.error(format!("{} was not deleted", backup.describe()), e.to_string());
        }
    }

    async fn import(&self, ctx: &Context, id: &str, diags: &mut Diagnostics) -> Option<Value> {
        let (namespace, name) = object::parse_import_id(id, diags)?;
        let mut state = Value::null_object(&self.schema().implied_type());
        state.set_attr("namespace", Value::string(namespace));
        state.set_attr("name", Value::string(name));
        let backup = self.backup(&state, diags).await?;
        let live = backup.get_for_import(ctx, diags).await?;
        Some(with_status(&imported(state, &live), &live))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_are_judged_as_velero_means_them() {
        let at = |phase: &str, extra: serde_json::Value| {
            let mut live = json!({ "metadata": { "name": "pre-upgrade" }, "status": { "phase": phase } });
            if let (Some(status), Some(extra)) = (live["status"].as_object_mut(), extra.as_object()) {
                status.extend(extra.clone());
            }
            live
        };
        assert_eq!(crate::resources::velero::judge_run("Backup", Some(&at("Completed", json!({}))), "velero", false), Progress::Done);
        assert_eq!(crate::resources::velero::judge_run("Backup", Some(&at("PartiallyFailed", json!({ "errors": 2 }))), "velero", true), Progress::Done);
        assert!(matches!(crate::resources::velero::judge_run("Backup", Some(&at("PartiallyFailed", json!({ "errors": 2 }))), "velero", false), Progress::Failed(m) if m.contains("2 errors")));
        assert!(matches!(crate::resources::velero::judge_run("Backup", Some(&at("Failed", json!({ "failureReason": "bucket gone" }))), "velero", false), Progress::Failed(m) if m.contains("bucket gone")));
        assert!(matches!(crate::resources::velero::judge_run("Backup", Some(&at("InProgress", json!({ "progress": { "itemsBackedUp": 3, "totalItems": 10 } }))), "velero", false), Progress::Pending(m) if m == "InProgress, 3 of 10 items"));
        assert!(matches!(crate::resources::velero::judge_run("Backup", Some(&json!({})), "velero", false), Progress::Pending(m) if m.contains("no controller")));
    }

    #[test]
    fn the_backup_carries_what_is_set() {
        let mut planned = Value::null_object(&BackupResource::new(Arc::default()).schema().implied_type());
        planned.set_attr("namespace", Value::string("velero"));
        planned.set_attr("name", Value::string("pre-upgrade"));
        planned.set_attr("ttl", Value::string("48h"));
        planned.set_attr("included_namespaces", Value::List(vec![Value::string("apps")]));
        let object = desired(&planned);
        assert_eq!(object["spec"], json!({ "ttl": "48h0m0s", "includedNamespaces": ["apps"] }));
    }
}
