//! Velero's objects as typed resources: `platform_backup_schedule` (Schedule) and
//! `platform_backup` (an on-demand Backup), with what they share: the kinds, the `namespace`
//! they live in (Velero's, `velero` by default), Velero's grammars (cron, Go durations) and
//! how a wait on Velero explains itself when no controller answers.

pub mod backup;
pub mod cron;
pub mod duration;
pub mod location;
pub mod restore;
mod run;
pub mod schedule;

use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams};

use crate::clients::deadline::{Deadline, Progress};
use crate::framework::diagnostics::Diagnostic;
use crate::framework::resource::Context;
use crate::platform::{kube_diagnostic, Platform};

use crate::framework::diagnostics::{AttributePath, Diagnostics};
use crate::framework::resource::Plan;
use crate::framework::schema::Attribute;
use crate::framework::value::Value;

/// Where Velero runs unless told otherwise.
pub const DEFAULT_NAMESPACE: &str = "velero";
/// Velero's default backup TTL (30 days), as Go prints it.
pub const DEFAULT_TTL: &str = "720h0m0s";
/// How long a list of Velero's objects may take.
const LIST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// A `velero.io/v1` kind.
pub fn velero_kind(kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("velero.io", "v1", kind), plural)
}

/// The names of the BackupStorageLocations marked default in `state`'s namespace (Velero's
/// when omitted), on the cluster `state` names.
pub async fn default_locations(platform: &Platform, ctx: &Context, state: &Value) -> Result<Vec<String>, Diagnostic> {
    let namespace = state.get_attr("namespace").and_then(Value::as_str).unwrap_or(DEFAULT_NAMESPACE).to_string();
    let cluster = platform.cluster(state.get_attr("cluster")).await?;
    let locations = velero_kind("BackupStorageLocation", "backupstoragelocations");
    let api: Api<DynamicObject> = Api::namespaced_with(cluster.client.clone(), &namespace, &locations);
    let listed = Deadline::after(LIST_TIMEOUT, ctx.stop.clone())
        .run(async { api.list(&ListParams::default()).await.map_err(|e| cluster.error(e)) })
        .await
        .map_err(|e| kube_diagnostic(&format!("Could not list the BackupStorageLocations in namespace {namespace:?}"), &e))?;
    Ok(listed
        .items
        .into_iter()
        .filter(|l| l.data["spec"]["default"].as_bool() == Some(true))
        .filter_map(|l| l.metadata.name)
        .collect())
}

/// `namespace`: Velero's namespace, `velero` when omitted.
pub fn namespace_attribute() -> Attribute {
    Attribute::string("namespace")
        .optional()
        .computed()
        .requires_replace()
        .describe(&format!("Namespace Velero runs in; `{DEFAULT_NAMESPACE}` when omitted."))
}

/// Plans `namespace` as `velero` when the configuration leaves it out (the generic pass
/// planned it unknown, and so as a replacement, on every update).
pub fn plan_namespace(plan: &mut Plan) {
    if plan.config.get_attr("namespace").is_none_or(Value::is_null) {
        plan.planned.set_attr("namespace", Value::string(DEFAULT_NAMESPACE));
        let unchanged = plan.planned.get_attr("namespace") == plan.prior.get_attr("namespace");
        plan.requires_replace.retain(|path| !(unchanged && *path == AttributePath::root("namespace")));
    }
}

/// The status phase of a live Velero object ("" when no controller wrote one).
pub fn phase(live: &serde_json::Value) -> &str {
    live["status"]["phase"].as_str().unwrap_or_default()
}

/// What a wait reports while a Velero object has no status at all.
pub fn not_processed(kind: &str, namespace: &str) -> String {
    format!("no controller has processed this {kind}: is Velero running in namespace {namespace}?")
}

/// `validationErrors` of a status, joined for a message.
pub fn validation_errors(live: &serde_json::Value) -> String {
    let errors: Vec<&str> =
        live["status"]["validationErrors"].as_array().into_iter().flatten().filter_map(|e| e.as_str()).collect();
    if errors.is_empty() {
        "no reason given".to_string()
    } else {
        errors.join("; ")
    }
}

/// How far a Backup or Restore (`kind`) has got: done, still going (with its progress), or
/// failed for good, with Velero's reasons.
pub fn judge_run(kind: &str, live: Option<&serde_json::Value>, namespace: &str, allow_partial: bool) -> Progress {
    let Some(live) = live else { return Progress::Failed(format!("the {kind} was deleted while it ran")) };
    let status = &live["status"];
    let counts = format!(
        "{} errors, {} warnings",
        status["errors"].as_u64().unwrap_or(0),
        status["warnings"].as_u64().unwrap_or(0)
    );
    let name = live["metadata"]["name"].as_str().unwrap_or_default();
    match phase(live) {
        "Completed" => Progress::Done,
        "PartiallyFailed" if allow_partial => Progress::Done,
        "PartiallyFailed" => Progress::Failed(format!(
            "it partially failed ({counts}); `velero {} logs {name}` says which items. Set allow_partial_failure to accept it",
            kind.to_ascii_lowercase()
        )),
        "Failed" => Progress::Failed(format!(
            "it failed: {} ({counts})",
            status["failureReason"].as_str().unwrap_or("Velero gave no reason")
        )),
        "FailedValidation" => Progress::Failed(format!("Velero refused it: {}", validation_errors(live))),
        "" => Progress::Pending(not_processed(kind, namespace)),
        other => {
            let progress = &status["progress"];
            let done = progress["itemsBackedUp"].as_u64().or(progress["itemsRestored"].as_u64());
            match (done, progress["totalItems"].as_u64()) {
                (Some(done), Some(total)) => Progress::Pending(format!("{other}, {done} of {total} items")),
                _ => Progress::Pending(other.to_string()),
            }
        }
    }
}

/// The outcome attributes of a Backup or Restore, from its status.
pub fn outcome_attributes() -> Vec<Attribute> {
    vec![
        Attribute::string("phase").computed().describe(
            "Velero's last phase: `Completed`, or `PartiallyFailed` when allowed; `Gone` once Velero has deleted the object.",
        ),
        Attribute::string("started").computed().describe("When Velero started it (RFC 3339)."),
        Attribute::string("completed").computed().describe("When it ended (RFC 3339)."),
        Attribute::number("errors").computed().describe("Items that failed."),
        Attribute::number("warnings").computed().describe("Warnings Velero logged."),
    ]
}

/// `state` with the outcome of `live` (see [`outcome_attributes`]).
pub fn with_outcome(state: &Value, live: &serde_json::Value) -> Value {
    let mut next = state.clone();
    let status = &live["status"];
    let text = |v: &serde_json::Value| v.as_str().map_or(Value::Null, Value::string);
    next.set_attr("id", crate::resources::object::live_id(live));
    next.set_attr("phase", Value::string(phase(live)));
    next.set_attr("started", text(&status["startTimestamp"]));
    next.set_attr("completed", text(&status["completionTimestamp"]));
    next.set_attr("errors", Value::number(status["errors"].as_u64().unwrap_or(0)));
    next.set_attr("warnings", Value::number(status["warnings"].as_u64().unwrap_or(0)));
    next
}

/// A Go duration attribute, checked at plan time.
pub fn validate_duration(config: &Value, attribute: &str, diags: &mut Diagnostics) {
    if let Some(text) = config.get_attr(attribute).and_then(Value::as_str) {
        if let Err(e) = duration::parse(text) {
            diags.error_at(AttributePath::root(attribute), "Invalid duration", format!("{e}."));
        }
    }
}

/// A duration in state: the spelling in `state` while it means `live`, else `live` as Go prints it.
pub fn duration_after_read(state: Option<&Value>, live: Option<&str>) -> Value {
    let Some(live) = live else { return Value::Null };
    let written = state.and_then(Value::as_str);
    match (written.map(duration::canonical), duration::canonical(live)) {
        (Some(Ok(ours)), Ok(theirs)) if ours == theirs => Value::string(written.unwrap_or(live)),
        (_, Ok(theirs)) => Value::string(theirs),
        (_, Err(_)) => Value::string(live),
    }
}

/// A Velero object name: it becomes a label value, so at most 63 characters.
pub fn validate_name(config: &Value, diags: &mut Diagnostics) {
    let Some(name) = config.get_attr("name").and_then(Value::as_str) else { return };
    if let Some(problem) = crate::resources::metadata::dns1123_subdomain_problem(name) {
        diags.error_at(AttributePath::root("name"), "Invalid name", format!("{name:?} {problem}."));
    } else if name.len() > 63 {
        diags.error_at(
            AttributePath::root("name"),
            "Name too long",
            format!(
                "{name:?} has {} characters; Velero puts the name into a label value, which holds at most 63.",
                name.len()
            ),
        );
    }
}

/// How volumes are backed up: boolean attributes and the fields they set (in a Backup's
/// spec, or a Schedule's template).
pub const VOLUME_OPTIONS: [(&str, &str); 2] =
    [("snapshot_volumes", "snapshotVolumes"), ("default_volumes_to_fs_backup", "defaultVolumesToFsBackup")];

/// What to take in a backup or restore: list attributes and the spec fields they set.
const SELECTION_LISTS: [(&str, &str); 4] = [
    ("included_namespaces", "includedNamespaces"),
    ("excluded_namespaces", "excludedNamespaces"),
    ("included_resources", "includedResources"),
    ("excluded_resources", "excludedResources"),
];

/// The selection attributes, for a run that `verb`s ("back up", "restore"); a change of them
/// replaces the object when `immutable`.
pub fn selection_attributes(verb: &str, immutable: bool) -> Vec<Attribute> {
    let all = if verb == "restore" { "all in the backup" } else { "all" };
    [
        Attribute::string_list("included_namespaces").optional().describe(&format!("Namespaces to {verb} ({all} when omitted).")),
        Attribute::string_list("excluded_namespaces").optional().describe("Namespaces to leave out."),
        Attribute::string_list("included_resources").optional().describe(&format!("Resources to {verb}, e.g. `deployments.apps`.")),
        Attribute::string_list("excluded_resources").optional().describe("Resources to leave out."),
        Attribute::string_map("label_selector").optional().describe(&format!("{} only objects with these labels.", capitalised(verb))),
    ]
    .into_iter()
    .map(|a| if immutable { a.requires_replace() } else { a })
    .collect()
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

/// Writes the selection of `planned` (namespace and resource lists, label selector) and
/// its volume options, where it has them, into a Backup's or Restore's spec, or a
/// Schedule's template.
pub fn write_selection(planned: &Value, spec: &mut serde_json::Value) {
    for (attribute, field) in SELECTION_LISTS {
        if let Some(items) = planned.get_attr(attribute).filter(|v| !v.is_null()) {
            spec[field] = serde_json::json!(strings(Some(items)));
        }
    }
    if let Some(labels) = crate::resources::metadata::string_map(planned.get_attr("label_selector")) {
        spec["labelSelector"] = serde_json::json!({ "matchLabels": labels });
    }
    for (attribute, field) in VOLUME_OPTIONS {
        if let Some(flag) = planned.get_attr(attribute).and_then(Value::as_bool) {
            spec[field] = serde_json::json!(flag);
        }
    }
}

/// Reads the selection of a live spec into `state`, for the attributes `ours` names.
pub fn read_selection(state: &mut Value, spec: &serde_json::Value, ours: impl Fn(&str) -> bool) {
    for (attribute, field) in SELECTION_LISTS {
        if ours(attribute) {
            state.set_attr(attribute, strings_value(&spec[field]));
        }
    }
    if ours("label_selector") {
        let labels = crate::resources::object::json_string_map(spec["labelSelector"].get("matchLabels")).filter(|l| !l.is_empty());
        state.set_attr("label_selector", labels.map_or(Value::Null, |l| crate::resources::metadata::string_map_value(&l)));
    }
}

/// A list of strings from a state or configuration (absent as empty).
pub fn strings(value: Option<&Value>) -> Vec<String> {
    value.and_then(Value::as_slice).into_iter().flatten().filter_map(Value::as_str).filter(|s| !s.is_empty()).map(str::to_string).collect()
}

/// A list of strings from live JSON, as the state holds it (null when absent or empty).
pub fn strings_value(live: &serde_json::Value) -> Value {
    let items: Vec<Value> = live.as_array().into_iter().flatten().filter_map(|v| v.as_str()).map(Value::string).collect();
    if items.is_empty() {
        Value::Null
    } else {
        Value::List(items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_keep_the_spelling_that_means_the_same() {
        assert_eq!(duration_after_read(Some(&Value::string("720h")), Some("720h0m0s")), Value::string("720h"));
        assert_eq!(duration_after_read(Some(&Value::string("24h")), Some("720h0m0s")), Value::string("720h0m0s"));
        assert_eq!(duration_after_read(None, Some("1h30m")), Value::string("1h30m0s"));
        assert_eq!(duration_after_read(Some(&Value::string("1h")), None), Value::Null);
    }

    #[test]
    fn long_names_are_refused() {
        let mut diags = Diagnostics::new();
        validate_name(&Value::object([("name", Value::string("a".repeat(64)))]), &mut diags);
        assert!(diags.iter().any(|d| d.detail.contains("at most 63")));
    }
}
