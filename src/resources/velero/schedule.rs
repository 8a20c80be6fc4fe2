//! `platform_backup_schedule`: a Velero Schedule, validated at plan time with Velero's own
//! grammar (robfig/cron v3, Go durations), applied by server-side apply, and waited on until
//! Velero has enabled it (or refused it, quoting its `validationErrors`).
//!
//! Drift is judged only on what the configuration sets: fields Velero fills in itself
//! (defaults, `skipImmediately`, `useOwnerReferencesInBackup`) never show as changes.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use kube::api::ApiResource;
use serde_json::json;

use super::{cron, duration, namespace_attribute, not_processed, phase, plan_namespace, validation_errors};
use crate::clients::deadline::{Progress, WaitError};
use crate::framework::diagnostics::{AttributePath, Diagnostics};
use crate::framework::resource::{Context, Plan, Resource};
use crate::framework::schema::{timeouts_block, Attribute, Block, Schema};
use crate::framework::timeouts;
use crate::framework::value::Value;
use crate::platform::{cluster_attribute, kube_diagnostic, validate_cluster_attribute, Platform};
use crate::resources::object::{self, NamespacedObject, OneObject};
use crate::resources::{metadata, owned};

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);
const POLL: Duration = Duration::from_millis(500);


pub struct BackupScheduleResource {
    platform: Arc<Platform>,
    schedules: ApiResource,
    locations: ApiResource,
}

impl BackupScheduleResource {
    pub fn new(platform: Arc<Platform>) -> Self {
        BackupScheduleResource {
            platform,
            schedules: super::velero_kind("Schedule", "schedules"),
            locations: super::velero_kind("BackupStorageLocation", "backupstoragelocations"),
        }
    }

    /// Refuses a `storage_location` that does not exist in Velero's namespace.
    async fn check_location(&self, ctx: &Context, planned: &Value, diags: &mut Diagnostics) -> Option<()> {
        let Some(location) = planned.get_attr("storage_location").and_then(Value::as_str) else { return Some(()) };
        let mut probe = planned.clone();
        probe.set_attr("name", Value::string(location));
        let object = NamespacedObject::connect(&self.platform, &probe, &self.locations, diags).await?;
        match object.get(ctx).await {
            Ok(Some(_)) => Some(()),
            Ok(None) => {
                diags.error_at(
                    AttributePath::root("storage_location"),
                    "No such backup storage location",
                    format!(
                        "{} does not exist. Create it first (a platform_backup_location this schedule depends on), or name an existing one.",
                        object.describe()
                    ),
                );
                None
            }
            Err(e) => {
                diags.push(kube_diagnostic(&format!("Could not read {}", object.describe()), &e));
                None
            }
        }
    }
}

/// The Schedule the configuration describes.
fn desired(planned: &Value) -> serde_json::Value {
    // An empty string means unset (and Kubernetes 1.20 refuses "" inside custom resources).
    let text = |name: &str| planned.get_attr(name).and_then(Value::as_str).filter(|t| !t.is_empty());
    let mut template = json!({});
    if let Some(ttl) = text("ttl").and_then(|t| duration::canonical(t).ok()) {
        template["ttl"] = json!(ttl);
    }
    if let Some(location) = text("storage_location") {
        template["storageLocation"] = json!(location);
    }
    super::write_selection(planned, &mut template);
    let mut spec = json!({ "schedule": text("schedule"), "template": template });
    if let Some(paused) = planned.get_attr("paused").and_then(Value::as_bool) {
        spec["paused"] = json!(paused);
    }
    json!({
        "apiVersion": "velero.io/v1",
        "kind": "Schedule",
        "metadata": { "name": text("name"), "namespace": text("namespace") },
        "spec": spec,
    })
}

/// The state for a live Schedule: only what `state` sets is compared (all of it on import).
fn state_from_live(state: &Value, live: &serde_json::Value, importing: bool) -> Value {
    let mut next = state.clone();
    let spec = &live["spec"];
    let template = &spec["template"];
    let ours = |name: &str| importing || state.get_attr(name).is_some_and(|v| !v.is_null());
    next.set_attr("id", object::live_id(live));
    next.set_attr("schedule", spec["schedule"].as_str().map_or(Value::Null, Value::string));
    next.set_attr("ttl", super::duration_after_read(state.get_attr("ttl"), template["ttl"].as_str()));
    if ours("storage_location") {
        next.set_attr("storage_location", template["storageLocation"].as_str().map_or(Value::Null, Value::string));
    }
    super::read_selection(&mut next, template, ours);
    for (attribute, field) in super::VOLUME_OPTIONS {
        if ours(attribute) {
            next.set_attr(attribute, template[field].as_bool().map_or(Value::Null, Value::Bool));
        }
    }
    if ours("paused") {
        next.set_attr("paused", spec["paused"].as_bool().map_or(Value::Null, Value::Bool));
    }
    next.set_attr("phase", Value::string(phase(live)));
    next
}

/// Judges a Schedule after our apply: Enabled is done; FailedValidation never will be.
/// Velero does not look at a paused Schedule at all: one with no phase yet is done too.
fn judge(live: Option<&serde_json::Value>, namespace: &str) -> Progress {
    let Some(live) = live else { return Progress::Failed("the Schedule was deleted".to_string()) };
    let paused = live["spec"]["paused"].as_bool() == Some(true);
    match phase(live) {
        "Enabled" => Progress::Done,
        "" if paused => Progress::Done,
        "FailedValidation" => Progress::Failed(format!("Velero refused it: {}", validation_errors(live))),
        "" => Progress::Pending(not_processed("Schedule", namespace)),
        other => Progress::Pending(format!("phase {other}")),
    }
}

#[async_trait]
impl OneObject for BackupScheduleResource {
    async fn object(&self, state: &Value, diags: &mut Diagnostics) -> Option<NamespacedObject> {
        NamespacedObject::connect(&self.platform, state, &self.schedules, diags).await
    }

    async fn apply(&self, ctx: &Context, planned: &Value, _config: &Value, diags: &mut Diagnostics) -> Option<Value> {
        self.check_location(ctx, planned, diags).await?;
        let object = self.object(planned, diags).await?;
        if let Err(e) = object.apply(ctx, &desired(planned), &owned::id_to_write(planned)).await {
            let mut diagnostic = kube_diagnostic(&format!("Could not apply {}", object.describe()), &e);
            if e.is_not_found() {
                diagnostic.detail.push_str("\n\nThe cluster does not know Velero's Schedules (velero.io/v1): install Velero first.");
            }
            diags.push(diagnostic);
            return None;
        }
        // The id is known from the create on: unknown means this is the create.
        let operation = if planned.get_attr("id").is_some_and(Value::is_unknown) { "create" } else { "update" };
        let timeout = timeouts::timeout(planned, operation, DEFAULT_TIMEOUT);
        let what = format!("Velero to enable {}", object.describe());
        match object.wait(ctx, timeout, POLL, &what, |live| judge(live, &object.namespace)).await {
            Ok(Some(live)) => Some(state_from_live(planned, &live, false)),
            Ok(None) => None,
            Err(e) => {
                let summary = match e {
                    WaitError::Failed { .. } => format!("Velero refused {}", object.describe()),
                    _ => format!("{} was not enabled", object.describe()),
                };
                diags.error(summary, e.to_string());
                None
            }
        }
    }

    fn state_from_live(&self, state: &Value, live: &serde_json::Value) -> Value {
        state_from_live(state, live, false)
    }

    fn import_state(&self, state: Value, live: &serde_json::Value) -> Value {
        state_from_live(&state, live, true)
    }

    fn null_state(&self) -> Value {
        Value::null_object(&self.schema().implied_type())
    }
}

#[async_trait]
impl Resource for BackupScheduleResource {
    fn type_name(&self) -> &'static str {
        "platform_backup_schedule"
    }

    fn schema(&self) -> Schema {
        let mut attributes = vec![
            Attribute::string("id").computed().keep_on_update().describe("`namespace/name`."),
            namespace_attribute(),
            Attribute::string("name").required().requires_replace().describe(
                "Name of the Schedule, at most 63 characters (Velero puts it into a label of every backup).",
            ),
            Attribute::string("schedule").required().describe(
                "When to back up, as Velero reads it (robfig/cron v3): five fields `minute hour day-of-month month \
                 day-of-week` (`0 3 * * *`), a descriptor (`@daily`), `@every <duration>`, optionally after `CRON_TZ=<zone>`. \
                 There is no seconds field.",
            ),
            Attribute::string("ttl").optional().computed().describe(
                "How long backups are kept, as a Go duration (`720h`, `168h30m`); `720h0m0s` when omitted. `720h` and \
                 `720h0m0s` are the same value and never show as a change.",
            ),
            Attribute::string("storage_location").optional().describe(
                "The BackupStorageLocation backups go to; Velero's default location when omitted. Must exist when applied.",
            ),

            Attribute::bool("snapshot_volumes").optional().describe("Take snapshots of persistent volumes."),
            Attribute::bool("default_volumes_to_fs_backup").optional().describe("Back up volumes with file-system backup by default."),
            Attribute::bool("paused").optional().describe("Keep the Schedule but take no backups."),
            Attribute::string("phase").computed().describe("Velero's verdict: `Enabled` once applied (empty while a paused Schedule was never enabled)."),
            cluster_attribute(),
        ];
        attributes.extend(super::selection_attributes("back up", false));
        attributes.extend(owned::attributes("Schedule"));
        Schema::new(
            Block::new(attributes).with_block(timeouts_block(&["create", "update"])).describe(
                "A Velero backup Schedule (`velero.io/v1`), checked at plan time with Velero's own cron and duration \
                 grammars and waited on until Velero enables it; a refusal quotes Velero's validation errors. Drift is \
                 judged only on the fields this resource sets.",
            ),
        )
    }

    fn validate(&self, config: &Value, diags: &mut Diagnostics) {
        super::validate_name(config, diags);
        metadata::validate_name(config, "namespace", diags);
        if let Some(schedule) = config.get_attr("schedule").and_then(Value::as_str) {
            if let Err(e) = cron::validate(schedule) {
                diags.error_at(AttributePath::root("schedule"), "Invalid schedule", format!("{e}."));
            }
        }
        super::validate_duration(config, "ttl", diags);
        timeouts::validate(config, &["create", "update"], diags);
        owned::validate(config, diags);
        validate_cluster_attribute(config, diags);
    }

    async fn modify_plan(&self, ctx: &Context, plan: &mut Plan, _diags: &mut Diagnostics) {
        if plan.planned.is_null() {
            return;
        }
        plan_namespace(plan);
        if plan.config.get_attr("ttl").is_none_or(Value::is_null) {
            // Omitted means Velero's default; keep the spelling already in state when it means that.
            let prior = plan.prior.get_attr("ttl").filter(|t| t.as_str().and_then(|t| duration::canonical(t).ok()).as_deref() == Some(super::DEFAULT_TTL));
            plan.planned.set_attr("ttl", prior.cloned().unwrap_or_else(|| Value::string(super::DEFAULT_TTL)));
        }
        object::plan_ownership(self, ctx, plan).await;
    }

    async fn create(&self, ctx: &Context, planned: &Value, config: &Value, diags: &mut Diagnostics) -> Option<Value> {
        object::create(self, ctx, planned, config, diags).await
    }

    async fn read(&self, ctx: &Context, state: &Value, diags: &mut Diagnostics) -> Option<Value> {
        object::read(self, ctx, state, diags).await
    }

    async fn update(&self, ctx: &Context, prior: &Value, planned: &Value, config: &Value, diags: &mut Diagnostics) -> Option<Value> {
        object::update(self, ctx, prior, planned, config, diags).await
    }

    async fn delete(&self, ctx: &Context, prior: &Value, diags: &mut Diagnostics) {
        object::delete(self, ctx, prior, diags).await
    }

    async fn import(&self, ctx: &Context, id: &str, diags: &mut Diagnostics) -> Option<Value> {
        object::import(self, ctx, id, diags).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn planned() -> Value {
        let mut v = Value::null_object(&BackupScheduleResource::new(Arc::default()).schema().implied_type());
        v.set_attr("namespace", Value::string("velero"));
        v.set_attr("name", Value::string("nightly"));
        v.set_attr("schedule", Value::string("0 3 * * *"));
        v.set_attr("ttl", Value::string("168h"));
        v.set_attr("included_namespaces", Value::List(vec![Value::string("apps")]));
        v.set_attr("snapshot_volumes", Value::Bool(false));
        v
    }

    #[test]
    fn the_schedule_carries_only_what_is_set() {
        let object = desired(&planned());
        assert_eq!(
            object["spec"],
            json!({ "schedule": "0 3 * * *", "template": { "ttl": "168h0m0s", "includedNamespaces": ["apps"], "snapshotVolumes": false } })
        );
    }

    #[test]
    fn what_velero_adds_is_not_drift() {
        let state = planned();
        let live = json!({
            "metadata": { "namespace": "velero", "name": "nightly" },
            "spec": { "schedule": "0 3 * * *", "skipImmediately": false, "useOwnerReferencesInBackup": false,
                      "template": { "ttl": "168h0m0s", "includedNamespaces": ["apps"], "snapshotVolumes": false,
                                    "excludedResources": ["events"], "hooks": {}, "csiSnapshotTimeout": "10m0s" } },
            "status": { "phase": "Enabled" }
        });
        let next = state_from_live(&state, &live, false);
        assert_eq!(next.get_attr("ttl"), Some(&Value::string("168h")));
        assert_eq!(next.get_attr("excluded_resources"), Some(&Value::Null));
        assert_eq!(next.get_attr("phase"), Some(&Value::string("Enabled")));
        let null = Value::null_object(&BackupScheduleResource::new(Arc::default()).schema().implied_type());
        let imported = state_from_live(&null, &live, true);
        assert_eq!(imported.get_attr("excluded_resources"), Some(&Value::List(vec![Value::string("events")])));
    }

    #[test]
    fn a_refusal_quotes_velero() {
        let live = json!({ "status": { "phase": "FailedValidation", "validationErrors": ["invalid schedule"] } });
        assert_eq!(judge(Some(&live), "velero"), Progress::Failed("Velero refused it: invalid schedule".to_string()));
        assert!(matches!(judge(Some(&json!({})), "velero"), Progress::Pending(s) if s.contains("is Velero running in namespace velero")));
    }
}
