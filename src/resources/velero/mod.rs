//! Velero's objects as typed resources: `platform_backup_schedule` (Schedule) and
//! `platform_backup` (an on-demand Backup), with what they share: the kinds, the `namespace`
//! they live in (Velero's, `velero` by default), Velero's grammars (cron, Go durations) and
//! how a wait on Velero explains itself when no controller answers.

pub mod backup;
pub mod cron;
pub mod duration;
pub mod schedule;

use kube::api::{ApiResource, GroupVersionKind};

use crate::framework::diagnostics::{AttributePath, Diagnostics};
use crate::framework::resource::Plan;
use crate::framework::schema::Attribute;
use crate::framework::value::Value;

/// Where Velero runs unless told otherwise.
pub const DEFAULT_NAMESPACE: &str = "velero";
/// Velero's default backup TTL (30 days), as Go prints it.
pub const DEFAULT_TTL: &str = "720h0m0s";

/// A `velero.io/v1` kind.
pub fn velero_kind(kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("velero.io", "v1", kind), plural)
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

/// A list of strings from a state or configuration (absent as empty).
pub fn strings(value: Option<&Value>) -> Vec<String> {
    value.and_then(Value::as_slice).into_iter().flatten().filter_map(|v| v.as_str().map(str::to_string)).collect()
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
