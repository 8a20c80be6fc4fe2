//! `platform_volume_restore`: a VolSync ReplicationDestination with the restic mover, which
//! restores the latest snapshot of a restic repository (or the latest as of `restore_as_of`)
//! into a PersistentVolumeClaim, on a schedule or whenever `sync_on_apply` changes. What it
//! shares with `platform_volume_replication` is in the parent module.

use std::sync::LazyLock;

use regex::Regex;
use serde_json::json;

use super::{Side, VolSyncResource};
use crate::framework::diagnostics::{AttributePath, Diagnostics};
use crate::framework::schema::Attribute;
use crate::framework::value::Value;

/// RFC 3339, as the CRD's `date-time` format takes it.
static RFC3339: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])[Tt]([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d+)?([Zz]|[+-]([01]\d|2[0-3]):[0-5]\d)$").unwrap()
});

pub struct Restore;

pub type VolumeRestoreResource = VolSyncResource<Restore>;

impl Side for Restore {
    const TYPE_NAME: &'static str = "platform_volume_restore";
    const KIND: &'static str = "ReplicationDestination";
    const PLURAL: &'static str = "replicationdestinations";
    const COPY_METHODS: &'static [&'static str] = &["Direct", "Snapshot"];
    const DESCRIPTION: &'static str =
        "A VolSync ReplicationDestination (`volsync.backube/v1alpha1`) that restores a restic repository's latest \
         snapshot into a PersistentVolumeClaim, on a schedule or whenever `sync_on_apply` changes; the apply that \
         changes it waits until VolSync has restored, failing at once with VolSync's error and otherwise, when it \
         runs out, reporting VolSync's condition and the mover's status. The repository is an existing Secret, \
         checked for its restic keys, or given here and written into a Secret this resource owns.";

    fn attributes() -> Vec<Attribute> {
        vec![
            Attribute::string("destination_pvc").required().describe(
                "The PersistentVolumeClaim to restore into, in `namespace`. It must exist; what the snapshot holds \
                 overwrites its files.",
            ),
            Attribute::string("copy_method").required().describe(
                "What VolSync leaves after a restore: `Direct` (the claim, restored in place) or `Snapshot` (also a \
                 VolumeSnapshot of it, named in VolSync's `latestImage`).",
            ),
            Attribute::string("restore_as_of").optional().describe(
                "Restore the latest snapshot taken at or before this time (RFC 3339, e.g. `2026-11-28T03:00:00Z`) \
                 instead of the latest.",
            ),
        ]
    }

    fn validate(config: &Value, diags: &mut Diagnostics) {
        if let Some(at) = config.get_attr("restore_as_of").and_then(Value::as_str) {
            if !RFC3339.is_match(at) {
                diags.error_at(
                    AttributePath::root("restore_as_of"),
                    "Invalid time",
                    format!("{at:?} is not an RFC 3339 time such as \"2026-11-28T03:00:00Z\"."),
                );
            }
        }
    }

    fn spec(planned: &Value, spec: &mut serde_json::Value) {
        let restic = &mut spec["restic"];
        restic["destinationPVC"] = json!(planned.get_attr("destination_pvc").and_then(Value::as_str));
        if let Some(at) = planned.get_attr("restore_as_of").and_then(Value::as_str) {
            restic["restoreAsOf"] = json!(at);
        }
    }

    fn refresh(state: &mut Value, spec: &serde_json::Value, importing: bool) {
        let restic = &spec["restic"];
        let text = |v: &serde_json::Value| v.as_str().map_or(Value::Null, Value::string);
        state.set_attr("destination_pvc", text(&restic["destinationPVC"]));
        if importing || state.get_attr("restore_as_of").is_some_and(|v| !v.is_null()) {
            state.set_attr("restore_as_of", text(&restic["restoreAsOf"]));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::framework::resource::Resource;

    #[test]
    fn the_destination_restores_into_its_claim() {
        let mut planned = Value::null_object(&VolumeRestoreResource::new(Arc::default()).schema().implied_type());
        planned.set_attr("namespace", Value::string("apps"));
        planned.set_attr("name", Value::string("data-restore"));
        planned.set_attr("destination_pvc", Value::string("data"));
        planned.set_attr("copy_method", Value::string("Direct"));
        planned.set_attr("repository_secret", Value::string("restic"));
        planned.set_attr("schedule", Value::string("@daily"));
        planned.set_attr("restore_as_of", Value::string("2026-11-28T03:00:00Z"));
        let object = super::super::desired::<Restore>(&planned);
        assert_eq!(object["kind"], "ReplicationDestination");
        assert_eq!(
            object["spec"],
            json!({
                "trigger": { "schedule": "@daily" },
                "restic": { "repository": "restic", "copyMethod": "Direct", "destinationPVC": "data", "restoreAsOf": "2026-11-28T03:00:00Z" },
            })
        );
        let mut diags = Diagnostics::new();
        VolumeRestoreResource::new(Arc::default()).validate(&planned, &mut diags);
        assert!(diags.is_empty(), "{diags:?}");
        planned.set_attr("restore_as_of", Value::string("yesterday"));
        planned.set_attr("copy_method", Value::string("Clone"));
        VolumeRestoreResource::new(Arc::default()).validate(&planned, &mut diags);
        let problems: Vec<&str> = diags.iter().map(|d| d.summary.as_str()).collect();
        assert_eq!(problems, ["Invalid copy_method", "Invalid time"]);
    }
}
