//! A HelmRelease's health as drift. A release someone suspended, one that helm-controller
//! gave up on, or one given values keys we did not set is not what the stack declared, even
//! when every field we own is intact: Read records why (see `inventory::Entry`), the plan
//! shows it, and the apply repairs it before writing the release again:
//! - suspended: resumed (`spec.suspend` set to false);
//! - values keys of other managers: removed, so that the release renders with ours only;
//! - failed (Stalled: helm-controller gave up): a reconciliation requested, as
//!   `flux reconcile helmrelease` does, unless the stack writes that annotation itself.
//!
//! The repair is one JSON merge patch under a field manager of its own, so that it takes
//! none of our fields and none become ours.
//!
//! Pure: judgements and patches over JSON, nothing that talks to a cluster.

use serde_json::{json, Map, Value};

use super::flux::RECONCILE_REQUEST;
use super::inventory::Entry;
use super::readiness::{release_status, ReleaseStatus};
use crate::clients::kube::{fields, FIELD_MANAGER};

/// What Read records for a HelmRelease whose owned fields are intact: `None` when it is
/// healthy (or still being reconciled).
pub fn drift(live: &Value) -> Option<Entry> {
    if is_suspended(live) {
        return Some(Entry::Suspended);
    }
    if foreign_values(live).is_some() {
        return Some(Entry::ForeignValues);
    }
    matches!(release_status(live), ReleaseStatus::Failed { .. }).then_some(Entry::NotReady)
}

/// The merge patch that repairs `live` (see the module's list), or `None` when it is healthy.
/// `at`: the time to request a reconciliation at (RFC 3339).
pub fn repair_patch(live: &Value, at: &str) -> Option<Value> {
    let mut patch = Map::new();
    let mut spec = Map::new();
    let suspended = is_suspended(live);
    if suspended {
        spec.insert("suspend".into(), Value::Bool(false));
    }
    if let Some(values) = foreign_values(live) {
        spec.insert("values".into(), values);
    }
    if !spec.is_empty() {
        patch.insert("spec".into(), Value::Object(spec));
    }
    let failed = matches!(release_status(live), ReleaseStatus::Failed { .. });
    if (suspended || failed) && !owns_request_annotation(live) {
        patch.insert("metadata".into(), json!({ "annotations": { RECONCILE_REQUEST: at } }));
    }
    (!patch.is_empty()).then_some(Value::Object(patch))
}

fn is_suspended(live: &Value) -> bool {
    live["spec"]["suspend"] == Value::Bool(true)
}

/// The values keys present in `live` that we did not set, as a merge patch body that removes
/// them (each such key `null`, nested where they are nested), or `None` when there are none.
fn foreign_values(live: &Value) -> Option<Value> {
    let values = live.get("spec")?.get("values")?;
    let owned = fields::owned_fields(live, FIELD_MANAGER)?;
    let ours = fields::project(live, &owned);
    let ours = ours.get("spec").and_then(|s| s.get("values")).cloned().unwrap_or_else(|| json!({}));
    removal(values, &ours)
}

/// Keys of `live` that `ours` lacks, as a merge patch removing them.
fn removal(live: &Value, ours: &Value) -> Option<Value> {
    let (Value::Object(live), Value::Object(ours)) = (live, ours) else { return None };
    let mut patch = Map::new();
    for (key, value) in live {
        match ours.get(key) {
            None => {
                patch.insert(key.clone(), Value::Null);
            }
            Some(mine) => {
                if let Some(inner) = removal(value, mine) {
                    patch.insert(key.clone(), inner);
                }
            }
        }
    }
    (!patch.is_empty()).then_some(Value::Object(patch))
}

/// Whether the stack itself writes the reconcile request (its values-Secret versions): a
/// request from another manager would take that field from us.
fn owns_request_annotation(live: &Value) -> bool {
    let Some(owned) = fields::owned_fields(live, FIELD_MANAGER) else { return false };
    owned["f:metadata"]["f:annotations"].get(format!("f:{RECONCILE_REQUEST}")).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A HelmRelease as the stack applied it: values `replicas` and `image.tag` are ours.
    fn release() -> Value {
        json!({
            "apiVersion": "helm.toolkit.fluxcd.io/v2",
            "kind": "HelmRelease",
            "metadata": {
                "name": "web", "namespace": "flux-system", "generation": 1,
                "managedFields": [{
                    "manager": FIELD_MANAGER, "operation": "Apply", "fieldsType": "FieldsV1",
                    "fieldsV1": {"f:spec": {"f:values": {"f:replicas": {}, "f:image": {"f:tag": {}}}, "f:interval": {}}}
                }]
            },
            "spec": {"interval": "10m", "values": {"replicas": 2, "image": {"tag": "v1"}}},
            "status": {"observedGeneration": 1, "conditions": [
                {"type": "Ready", "status": "True", "reason": "InstallSucceeded", "observedGeneration": 1}
            ]}
        })
    }

    #[test]
    fn a_healthy_release_has_no_drift_and_no_repair() {
        assert_eq!(drift(&release()), None);
        assert_eq!(repair_patch(&release(), "t"), None);
    }

    #[test]
    fn a_suspended_release_is_resumed_and_reconciled() {
        let mut live = release();
        live["spec"]["suspend"] = json!(true);
        assert_eq!(drift(&live), Some(Entry::Suspended));
        assert_eq!(
            repair_patch(&live, "2026-11-30T05:00:00Z"),
            Some(
                json!({"spec": {"suspend": false}, "metadata": {"annotations": {RECONCILE_REQUEST: "2026-11-30T05:00:00Z"}}})
            )
        );
    }

    #[test]
    fn values_keys_of_others_are_removed_where_they_are() {
        let mut live = release();
        live["spec"]["values"]["extra"] = json!({"debug": true});
        live["spec"]["values"]["image"]["pullPolicy"] = json!("Always");
        assert_eq!(drift(&live), Some(Entry::ForeignValues));
        assert_eq!(
            repair_patch(&live, "t"),
            Some(json!({"spec": {"values": {"extra": null, "image": {"pullPolicy": null}}}}))
        );
    }

    #[test]
    fn a_failed_release_gets_a_reconcile_request_unless_the_stack_writes_that_annotation() {
        let mut live = release();
        live["status"]["conditions"] = json!([
            {"type": "Stalled", "status": "True", "reason": "RetriesExceeded", "observedGeneration": 1},
            {"type": "Ready", "status": "False", "reason": "InstallFailed", "observedGeneration": 1}
        ]);
        assert_eq!(drift(&live), Some(Entry::NotReady));
        assert_eq!(repair_patch(&live, "t"), Some(json!({"metadata": {"annotations": {RECONCILE_REQUEST: "t"}}})));
        let fields = &mut live["metadata"]["managedFields"][0]["fieldsV1"];
        fields["f:metadata"] = json!({"f:annotations": {format!("f:{RECONCILE_REQUEST}"): {}}});
        assert_eq!(repair_patch(&live, "t"), None, "the stack's own annotation is left to the stack");
    }

    #[test]
    fn a_release_in_progress_is_not_drift() {
        let mut live = release();
        live["metadata"]["generation"] = json!(2);
        assert_eq!(drift(&live), None);
    }
}
