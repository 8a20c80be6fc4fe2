//! `platform_volume_replication`: a VolSync ReplicationSource with the restic mover, which
//! backs a PersistentVolumeClaim up into a restic repository on a schedule or whenever
//! `sync_on_apply` changes; with a retain policy (`restic forget`) and a prune interval.
//! What it shares with `platform_volume_restore` is in the parent module.

use serde_json::json;

use super::{validate_count, Side, VolSyncResource, RESTIC_DURATION};
use crate::framework::diagnostics::{AttributePath, Diagnostics};
use crate::framework::schema::{Attribute, Block, NestedBlock};
use crate::framework::value::Value;

/// The counts of `retain` (`spec.restic.retain` has the same names).
const RETAIN_COUNTS: [&str; 5] = ["hourly", "daily", "weekly", "monthly", "yearly"];

pub struct Replication;

pub type VolumeReplicationResource = VolSyncResource<Replication>;

impl Side for Replication {
    const TYPE_NAME: &'static str = "platform_volume_replication";
    const KIND: &'static str = "ReplicationSource";
    const PLURAL: &'static str = "replicationsources";
    const COPY_METHODS: &'static [&'static str] = &["Snapshot", "Clone", "Direct"];
    const DESCRIPTION: &'static str =
        "A VolSync ReplicationSource (`volsync.backube/v1alpha1`) that backs a PersistentVolumeClaim up with restic, \
         on a schedule or whenever `sync_on_apply` changes; the apply that changes it waits until VolSync has synced, \
         failing at once with VolSync's error (a wrong password, a missing key) and otherwise, when it runs out, \
         reporting VolSync's condition and the mover's status. The repository is an existing Secret, checked for \
         its restic keys, or given here and written into a Secret this resource owns. Drift is judged only on the \
         fields this resource sets.";

    fn attributes() -> Vec<Attribute> {
        vec![
            Attribute::string("source_pvc").required().describe("The PersistentVolumeClaim to back up, in `namespace`."),
            Attribute::string("copy_method").required().describe(
                "How VolSync takes a point-in-time image of the claim: `Snapshot` (a VolumeSnapshot; needs a CSI \
                 driver that takes them), `Clone` (a clone of the claim) or `Direct` (the claim itself, in use).",
            ),
            Attribute::number("prune_interval_days").optional().describe(
                "How often VolSync prunes the repository (`restic prune`), in days; VolSync's default (7) when omitted.",
            ),
        ]
    }

    fn blocks() -> Vec<NestedBlock> {
        let mut attributes: Vec<Attribute> = RETAIN_COUNTS
            .iter()
            .map(|period| Attribute::number(period).optional().describe(&format!("Keep the newest snapshot of each of this many {} (restic's `--keep-{period}`).", period_noun(period))))
            .collect();
        attributes.push(Attribute::string("within").optional().describe(
            "Keep every snapshot taken within this long of the latest, as restic writes it: `7d`, `1y6m`, `36h`.",
        ));
        vec![NestedBlock::single(
            "retain",
            Block::new(attributes).describe("Which snapshots `restic forget` keeps after each sync; all of them when omitted."),
        )]
    }

    fn validate(config: &Value, diags: &mut Diagnostics) {
        validate_count(config.get_attr("prune_interval_days"), AttributePath::root("prune_interval_days"), diags);
        let Some(retain) = config.get_attr("retain").filter(|r| !r.is_null()) else { return };
        for period in RETAIN_COUNTS {
            validate_count(retain.get_attr(period), AttributePath::root("retain").attribute(period), diags);
        }
        if let Some(within) = retain.get_attr("within").and_then(Value::as_str) {
            if !RESTIC_DURATION.is_match(within) {
                diags.error_at(
                    AttributePath::root("retain").attribute("within"),
                    "Invalid duration",
                    format!("{within:?} is not a restic duration: numbers with y, m, d or h, e.g. \"7d\" or \"1y6m\"."),
                );
            }
        }
    }

    fn spec(planned: &Value, spec: &mut serde_json::Value) {
        spec["sourcePVC"] = json!(planned.get_attr("source_pvc").and_then(Value::as_str));
        let restic = &mut spec["restic"];
        if let Some(days) = planned.get_attr("prune_interval_days").and_then(Value::as_i64) {
            restic["pruneIntervalDays"] = json!(days);
        }
        if let Some(retain) = planned.get_attr("retain").filter(|r| !r.is_null()) {
            let mut policy = json!({});
            for period in RETAIN_COUNTS {
                if let Some(count) = retain.get_attr(period).and_then(Value::as_i64) {
                    policy[period] = json!(count);
                }
            }
            if let Some(within) = retain.get_attr("within").and_then(Value::as_str) {
                policy["within"] = json!(within);
            }
            restic["retain"] = policy;
        }
    }

    fn refresh(state: &mut Value, spec: &serde_json::Value, importing: bool) {
        let restic = &spec["restic"];
        state.set_attr("source_pvc", spec["sourcePVC"].as_str().map_or(Value::Null, Value::string));
        let number = |v: &serde_json::Value| v.as_i64().map_or(Value::Null, Value::number);
        if importing || state.get_attr("prune_interval_days").is_some_and(|v| !v.is_null()) {
            state.set_attr("prune_interval_days", number(&restic["pruneIntervalDays"]));
        }
        let prior = state.get_attr("retain").filter(|r| !r.is_null()).cloned();
        let live = &restic["retain"];
        if prior.is_none() && !(importing && live.is_object()) {
            return;
        }
        let ours = |field: &str| importing || prior.as_ref().and_then(|p| p.get_attr(field)).is_some_and(|v| !v.is_null());
        let mut fields: Vec<(&str, Value)> =
            RETAIN_COUNTS.iter().map(|period| (*period, if ours(period) { number(&live[*period]) } else { Value::Null })).collect();
        let within = if ours("within") { live["within"].as_str().map_or(Value::Null, Value::string) } else { Value::Null };
        fields.push(("within", within));
        state.set_attr("retain", Value::object(fields));
    }
}

/// `days` for `daily`, and so on.
fn period_noun(period: &str) -> &'static str {
    match period {
        "hourly" => "hours",
        "daily" => "days",
        "weekly" => "weeks",
        "monthly" => "months",
        _ => "years",
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::framework::resource::Resource;

    fn planned() -> Value {
        let mut v = Value::null_object(&VolumeReplicationResource::new(Arc::default()).schema().implied_type());
        v.set_attr("namespace", Value::string("apps"));
        v.set_attr("name", Value::string("data"));
        v.set_attr("source_pvc", Value::string("data"));
        v.set_attr("copy_method", Value::string("Snapshot"));
        v.set_attr("repository_url", Value::string("s3:http://minio:9000/backups/data"));
        v.set_attr("sync_on_apply", Value::string("v1"));
        v.set_attr(
            "retain",
            Value::object([
                ("hourly", Value::Null),
                ("daily", Value::number(7)),
                ("weekly", Value::Null),
                ("monthly", Value::Null),
                ("yearly", Value::Null),
                ("within", Value::string("3d")),
            ]),
        );
        v
    }

    #[test]
    fn the_source_carries_only_what_is_set() {
        let object = super::super::desired::<Replication>(&planned());
        assert_eq!(
            object["spec"],
            json!({
                "sourcePVC": "data",
                "trigger": { "manual": "v1" },
                "restic": { "repository": "data-restic", "copyMethod": "Snapshot", "retain": { "daily": 7, "within": "3d" } },
            })
        );
    }

    #[test]
    fn drift_is_read_only_on_fields_we_set() {
        let live = json!({
            "metadata": { "name": "data", "namespace": "apps" },
            "spec": {
                "sourcePVC": "data",
                "trigger": { "manual": "v1" },
                "restic": { "repository": "data-restic", "copyMethod": "Snapshot", "pruneIntervalDays": 3,
                            "retain": { "daily": 5, "hourly": 24, "within": "3d" } },
            },
            "status": { "lastManualSync": "v1", "latestMoverStatus": { "result": "Successful" } },
        });
        let state = super::super::state_from_live::<Replication>(&planned(), &live, false);
        let retain = state.get_attr("retain").unwrap();
        assert_eq!(retain.get_attr("daily"), Some(&Value::number(5)), "a changed count is drift");
        assert_eq!(retain.get_attr("hourly"), Some(&Value::Null), "a count set by others is not ours");
        assert_eq!(state.get_attr("prune_interval_days"), Some(&Value::Null));
        assert_eq!(state.get_attr("repository_secret"), Some(&Value::Null));
        assert_eq!(state.get_attr("last_manual_sync"), Some(&Value::string("v1")));
        assert_eq!(state.get_attr("id"), Some(&Value::string("apps/data")));

        let imported = super::super::state_from_live::<Replication>(&planned(), &live, true);
        assert_eq!(imported.get_attr("prune_interval_days"), Some(&Value::number(3)));
        assert_eq!(imported.get_attr("retain").unwrap().get_attr("hourly"), Some(&Value::number(24)));
        assert_eq!(imported.get_attr("repository_secret"), Some(&Value::string("data-restic")));
    }

    #[test]
    fn plan_time_checks() {
        let resource = VolumeReplicationResource::new(Arc::default());
        let check = |config: &Value| {
            let mut diags = Diagnostics::new();
            resource.validate(config, &mut diags);
            diags.iter().map(|d| format!("{}: {}", d.summary, d.detail)).collect::<Vec<_>>()
        };
        let mut config = planned();
        config.set_attr("password_wo", Value::string("pw"));
        assert_eq!(check(&config), Vec::<String>::new());

        let mut bad = config.clone();
        bad.set_attr("copy_method", Value::string("None"));
        bad.set_attr("schedule", Value::string("0 3 * * *"));
        bad.set_attr("password", Value::string("pw"));
        bad.set_attr("s3_secret_access_key_wo", Value::string("sk"));
        let problems = check(&bad).join("\n");
        for expected in ["Invalid copy_method", "Two triggers", "Repository password", "Incomplete S3 credentials"] {
            assert!(problems.contains(expected), "{expected} missing from:\n{problems}");
        }

        let mut both = config.clone();
        both.set_attr("repository_secret", Value::string("restic"));
        assert!(check(&both).join("\n").contains("`repository_url`, `password_wo`"));
        let mut retain = config;
        retain.set_attr("retain", Value::object([("daily", Value::number(0)), ("within", Value::string("3 days"))]));
        let problems = check(&retain).join("\n");
        assert!(problems.contains("at least 1") && problems.contains("\"3 days\""), "{problems}");
    }
}
