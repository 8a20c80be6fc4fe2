//! `platform_restore`: a Velero Restore from a backup, or from the latest backup of a
//! schedule, waited on until it ends, with the same reporting as `platform_backup`.
//!
//! A Restore is a one-time action: its settings replace it, and one that Velero later
//! garbage-collects stays in state (reading it as gone would restore again at the next
//! apply). Destroy forgets it unless `on_destroy = "delete"`, which deletes the Restore
//! object (not what it restored).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use kube::api::ApiResource;
use serde_json::json;

use super::{namespace_attribute, plan_namespace, run};
use crate::framework::diagnostics::{AttributePath, Diagnostics};
use crate::framework::resource::{Context, Plan, Resource};
use crate::framework::schema::{timeouts_block, Attribute, Block, Schema};
use crate::framework::timeouts;
use crate::framework::value::Value;
use crate::platform::{cluster_attribute, kube_diagnostic, validate_cluster_attribute, Platform};
use crate::resources::metadata;
use crate::resources::object::{self, NamespacedObject};

const DEFAULT_CREATE_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// `existing_resource_policy` values Velero knows.
const POLICIES: [&str; 2] = ["none", "update"];

pub struct RestoreResource {
    platform: Arc<Platform>,
    restores: ApiResource,
}

impl RestoreResource {
    pub fn new(platform: Arc<Platform>) -> Self {
        RestoreResource { platform, restores: super::velero_kind("Restore", "restores") }
    }

    async fn restore(&self, state: &Value, diags: &mut Diagnostics) -> Option<NamespacedObject> {
        NamespacedObject::connect(&self.platform, state, &self.restores, diags).await
    }
}

fn desired(planned: &Value) -> serde_json::Value {
    // An empty string means unset (and Kubernetes 1.20 refuses "" inside custom resources).
    let text = |name: &str| planned.get_attr(name).and_then(Value::as_str).filter(|t| !t.is_empty());
    let mut spec = json!({});
    if let Some(backup) = text("backup_name") {
        spec["backupName"] = json!(backup);
    }
    if let Some(schedule) = text("schedule_name") {
        spec["scheduleName"] = json!(schedule);
    }
    super::write_selection(planned, &mut spec);
    if let Some(mapping) = metadata::string_map(planned.get_attr("namespace_mapping")) {
        spec["namespaceMapping"] = json!(mapping);
    }
    if let Some(policy) = text("existing_resource_policy") {
        spec["existingResourcePolicy"] = json!(policy);
    }
    if let Some(restore_pvs) = planned.get_attr("restore_pvs").and_then(Value::as_bool) {
        spec["restorePVs"] = json!(restore_pvs);
    }
    json!({
        "apiVersion": "velero.io/v1",
        "kind": "Restore",
        "metadata": { "name": text("name"), "namespace": text("namespace") },
        "spec": spec,
    })
}

fn imported(mut state: Value, live: &serde_json::Value) -> Value {
    let spec = &live["spec"];
    let text = |v: &serde_json::Value| v.as_str().filter(|s| !s.is_empty()).map_or(Value::Null, Value::string);
    state.set_attr("backup_name", if spec["scheduleName"].is_string() { Value::Null } else { text(&spec["backupName"]) });
    state.set_attr("schedule_name", text(&spec["scheduleName"]));
    super::read_selection(&mut state, spec, |_| true);
    let mapping = object::json_string_map(spec.get("namespaceMapping")).filter(|m| !m.is_empty());
    state.set_attr("namespace_mapping", mapping.map_or(Value::Null, |m| metadata::string_map_value(&m)));
    state.set_attr("existing_resource_policy", text(&spec["existingResourcePolicy"]));
    state.set_attr("restore_pvs", spec["restorePVs"].as_bool().map_or(Value::Null, Value::Bool));
    state
}

#[async_trait]
impl Resource for RestoreResource {
    fn type_name(&self) -> &'static str {
        "platform_restore"
    }

    fn schema(&self) -> Schema {
        let replace = |a: Attribute| a.requires_replace();
        let attributes = vec![
            Attribute::string("id").computed().keep_on_update().describe("`namespace/name`."),
            namespace_attribute(),
            replace(Attribute::string("name").required()).describe("Name of the Restore."),
            replace(Attribute::string("backup_name").optional()).describe("The Backup to restore; give this or `schedule_name`."),
            replace(Attribute::string("schedule_name").optional()).describe(
                "Restore the latest completed backup of this Schedule; give this or `backup_name`.",
            ),
            replace(Attribute::string_map("namespace_mapping").optional()).describe("Restore namespace `from` into namespace `to`."),
            replace(Attribute::string("existing_resource_policy").optional()).describe(
                "What to do with objects that exist already: `none` (leave them, the default) or `update`.",
            ),
            replace(Attribute::bool("restore_pvs").optional()).describe("Restore persistent volumes from their snapshots."),
            Attribute::bool("allow_partial_failure").optional().describe("Accept a PartiallyFailed restore instead of failing the apply."),
            Attribute::string("on_destroy").optional().describe(
                "What destroy does: `retain` (the default: forget it) or `delete` (delete the Restore object; what it restored stays).",
            ),
            cluster_attribute(),
        ];
        Schema::new(
            Block::new(attributes.into_iter().chain(super::selection_attributes("restore", true)).chain(super::outcome_attributes()).collect())
                .with_block(timeouts_block(&["create"]))
                .describe(
                    "A Velero Restore (`velero.io/v1`) from a backup or from a schedule's latest backup, waited on until it \
                     ends; a failure quotes Velero's reason. It stays in state after Velero garbage-collects it, so it is \
                     never run twice by accident.",
                ),
        )
    }

    fn validate(&self, config: &Value, diags: &mut Diagnostics) {
        super::validate_name(config, diags);
        metadata::validate_name(config, "namespace", diags);
        let given = |name: &str| config.get_attr(name).is_some_and(|v| !v.is_null());
        let unknown = |name: &str| config.get_attr(name).is_some_and(Value::is_unknown);
        if !unknown("backup_name") && !unknown("schedule_name") && given("backup_name") == given("schedule_name") {
            diags.error_at(
                AttributePath::root("backup_name"),
                "Restore from what?",
                "Give exactly one of backup_name and schedule_name.",
            );
        }
        if let Some(policy) = config.get_attr("existing_resource_policy").and_then(Value::as_str) {
            if !POLICIES.contains(&policy) {
                diags.error_at(
                    AttributePath::root("existing_resource_policy"),
                    "Invalid existing_resource_policy",
                    format!("{policy:?} is not one of {}.", POLICIES.join(", ")),
                );
            }
        }
        run::validate_on_destroy(config, diags);
        timeouts::validate(config, &["create"], diags);
        validate_cluster_attribute(config, diags);
    }

    async fn modify_plan(&self, _ctx: &Context, plan: &mut Plan, _diags: &mut Diagnostics) {
        if plan.planned.is_null() {
            return;
        }
        plan_namespace(plan);
        if plan.is_create() {
            return;
        }
        run::keep_outcome(plan, &["id", "phase", "started", "completed", "errors", "warnings"]);
    }

    async fn create(&self, ctx: &Context, planned: &Value, _config: &Value, diags: &mut Diagnostics) -> Option<Value> {
        let restore = self.restore(planned, diags).await?;
        let timeout = timeouts::timeout(planned, "create", DEFAULT_CREATE_TIMEOUT);
        run::Run { object: &restore, kind: "Restore", outcome: super::with_outcome }.start_and_wait(ctx, planned, &desired(planned), timeout, diags).await
    }

    async fn read(&self, ctx: &Context, state: &Value, diags: &mut Diagnostics) -> Option<Value> {
        let restore = self.restore(state, diags).await?;
        run::Run { object: &restore, kind: "Restore", outcome: super::with_outcome }.read(ctx, state, diags).await
    }

    async fn update(&self, _ctx: &Context, _prior: &Value, planned: &Value, _config: &Value, _diags: &mut Diagnostics) -> Option<Value> {
        // Only allow_partial_failure and on_destroy change in place: nothing to do in the cluster.
        Some(planned.clone())
    }

    async fn delete(&self, ctx: &Context, prior: &Value, diags: &mut Diagnostics) {
        if !run::deletes_on_destroy(prior) {
            return;
        }
        let Some(restore) = self.restore(prior, diags).await else { return };
        match restore.get(ctx).await {
            Ok(Some(live)) => restore.delete(ctx, &live, diags).await,
            Ok(None) => {}
            Err(e) => diags.push(kube_diagnostic(&format!("Could not read {}", restore.describe()), &e)),
        }
    }

    async fn import(&self, ctx: &Context, id: &str, diags: &mut Diagnostics) -> Option<Value> {
        let (namespace, name) = object::parse_import_id(id, diags)?;
        let mut state = Value::null_object(&self.schema().implied_type());
        state.set_attr("namespace", Value::string(namespace));
        state.set_attr("name", Value::string(name));
        let restore = self.restore(&state, diags).await?;
        let live = restore.get_for_import(ctx, diags).await?;
        Some(super::with_outcome(&imported(state, &live), &live))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exactly_one_source() {
        let resource = RestoreResource::new(Arc::default());
        let mut config = Value::null_object(&resource.schema().implied_type());
        config.set_attr("name", Value::string("r1"));
        let mut diags = Diagnostics::new();
        resource.validate(&config, &mut diags);
        assert!(diags.iter().any(|d| d.summary == "Restore from what?"));
        config.set_attr("backup_name", Value::string("b1"));
        let mut diags = Diagnostics::new();
        resource.validate(&config, &mut diags);
        assert!(diags.is_empty(), "{diags:?}");
        assert_eq!(desired(&config)["spec"], json!({ "backupName": "b1" }));
    }
}
