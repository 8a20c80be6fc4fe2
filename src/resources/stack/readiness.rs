//! When an applied object is ready, judged as `kubectl rollout status` and `kubectl wait`
//! judge it: pure functions of the live object, so every rule has a unit test.

use super::flux;
use super::manifests::Manifest;
use crate::clients::deadline::Progress;

/// Whether to wait for `m` after applying it. Workloads only where pods can run.
pub fn needs_wait(m: &Manifest, wait: bool, runs_workloads: bool) -> bool {
    match (m.api_version.as_str(), m.kind.as_str()) {
        (_, "HelmRelease") => wait,
        ("apps/v1", "Deployment" | "StatefulSet" | "DaemonSet") | ("batch/v1", "Job") => wait && runs_workloads,
        _ => false,
    }
}

/// The status (`"True"`, `"False"`, `"Unknown"`) of condition `kind`.
pub fn condition<'a>(object: &'a serde_json::Value, kind: &str) -> Option<&'a str> {
    find_condition(object, kind)?["status"].as_str()
}

fn find_condition<'a>(object: &'a serde_json::Value, kind: &str) -> Option<&'a serde_json::Value> {
    object["status"]["conditions"].as_array()?.iter().find(|c| c["type"] == kind)
}

/// Readiness of any object we wait for.
pub fn progress(kind: &str, live: &serde_json::Value) -> Progress {
    match kind {
        "HelmRelease" => match flux::release_status(live) {
            flux::ReleaseStatus::Ready => Progress::Done,
            flux::ReleaseStatus::Failed { reason, message } => Progress::Failed(format!("{reason}: {message}")),
            flux::ReleaseStatus::Progressing { reason, message } => Progress::Pending(format!("{reason}: {message}")),
        },
        "Job" => job_progress(live),
        "CustomResourceDefinition" => match condition(live, "Established") {
            Some("True") => Progress::Done,
            _ => Progress::Pending("not Established yet".into()),
        },
        _ => rollout_progress(kind, live),
    }
}

fn number(live: &serde_json::Value, field: &str) -> i64 {
    live["status"][field].as_i64().unwrap_or(0)
}

/// Whether a workload's current spec is fully rolled out, as `kubectl rollout status` judges:
/// a Deployment past its progress deadline fails; OnDelete DaemonSets and StatefulSets are
/// done once the controller saw the spec; a partitioned StatefulSet is done when the pods
/// above the partition are updated.
pub fn rollout_progress(kind: &str, live: &serde_json::Value) -> Progress {
    let generation = live["metadata"]["generation"].as_i64().unwrap_or(0);
    let observed = number(live, "observedGeneration");
    if observed < generation || (kind == "StatefulSet" && observed == 0) {
        return Progress::Pending("controller has not seen the latest spec".into());
    }
    let strategy = |field: &str| live["spec"][field]["type"].as_str().unwrap_or("RollingUpdate").to_string();
    match kind {
        "Deployment" => {
            if let Some(c) = find_condition(live, "Progressing") {
                if c["reason"] == "ProgressDeadlineExceeded" {
                    let message = c["message"].as_str().unwrap_or("progress deadline exceeded");
                    return Progress::Failed(format!("ProgressDeadlineExceeded: {message}"));
                }
            }
            let desired = live["spec"]["replicas"].as_i64().unwrap_or(1);
            let (updated, replicas, available) =
                (number(live, "updatedReplicas"), number(live, "replicas"), number(live, "availableReplicas"));
            if updated < desired {
                Progress::Pending(format!("{updated} of {desired} updated replicas"))
            } else if replicas > updated {
                Progress::Pending(format!("{} old replicas pending termination", replicas - updated))
            } else if available < updated {
                Progress::Pending(format!("{available} of {updated} updated replicas available"))
            } else {
                Progress::Done
            }
        }
        "DaemonSet" => {
            if strategy("updateStrategy") != "RollingUpdate" {
                return Progress::Done;
            }
            let desired = number(live, "desiredNumberScheduled");
            let (updated, available) = (number(live, "updatedNumberScheduled"), number(live, "numberAvailable"));
            if updated < desired {
                Progress::Pending(format!("{updated} of {desired} updated pods scheduled"))
            } else if available < desired {
                Progress::Pending(format!("{available} of {desired} updated pods available"))
            } else {
                Progress::Done
            }
        }
        "StatefulSet" => {
            if strategy("updateStrategy") == "OnDelete" {
                return Progress::Done;
            }
            let desired = live["spec"]["replicas"].as_i64().unwrap_or(1);
            let ready = number(live, "readyReplicas");
            if ready < desired {
                return Progress::Pending(format!("{ready} of {desired} pods ready"));
            }
            let partition = live["spec"]["updateStrategy"]["rollingUpdate"]["partition"].as_i64().unwrap_or(0);
            if partition > 0 {
                let updated = number(live, "updatedReplicas");
                let wanted = (desired - partition).max(0);
                return if updated < wanted {
                    Progress::Pending(format!("partitioned roll out: {updated} of {wanted} new pods updated"))
                } else {
                    Progress::Done
                };
            }
            let (current, update) = (&live["status"]["currentRevision"], &live["status"]["updateRevision"]);
            if update.is_string() && current != update {
                Progress::Pending(format!("{} of {desired} pods at revision {}", number(live, "updatedReplicas"), update.as_str().unwrap_or("")))
            } else {
                Progress::Done
            }
        }
        _ => Progress::Done,
    }
}

/// A Job is done when Complete, failed when Failed (with the Job's own message).
fn job_progress(live: &serde_json::Value) -> Progress {
    if condition(live, "Complete") == Some("True") {
        return Progress::Done;
    }
    if let Some(failed) = find_condition(live, "Failed").filter(|c| c["status"] == "True") {
        let reason = failed["reason"].as_str().unwrap_or("Failed");
        let message = failed["message"].as_str().unwrap_or("the Job failed");
        return Progress::Failed(format!("{reason}: {message}"));
    }
    Progress::Pending(format!(
        "{} succeeded, {} active, {} failed",
        number(live, "succeeded"),
        number(live, "active"),
        number(live, "failed")
    ))
}

/// A `wait_for` block: objects of the component (all, or of one kind, or one name) and
/// what must hold for them, in `kubectl wait --for` terms.
#[derive(Debug, Clone, PartialEq)]
pub struct WaitFor {
    pub kind: Option<String>,
    pub name: Option<String>,
    pub expect: Expectation,
}

/// What `kubectl wait --for` accepts, minus `delete`.
#[derive(Debug, Clone, PartialEq)]
pub enum Expectation {
    /// `condition=Available` (status True) or `condition=Ready=False`.
    Condition { kind: String, status: String },
    /// `jsonpath={.status.phase}=Running`, or `jsonpath={.status.loadBalancer.ingress}` (exists).
    JsonPath { path: Vec<PathStep>, value: Option<String>, text: String },
}

#[derive(Debug, Clone, PartialEq)]
pub enum PathStep {
    Field(String),
    Index(usize),
}

impl WaitFor {
    pub fn selects(&self, m: &Manifest) -> bool {
        self.kind.as_deref().is_none_or(|k| k == m.kind) && self.name.as_deref().is_none_or(|n| n == m.name)
    }

    /// "condition Available" or "{.status.phase} = Running", for messages.
    pub fn describe(&self) -> String {
        match &self.expect {
            Expectation::Condition { kind, status } => format!("condition {kind}={status}"),
            Expectation::JsonPath { text, value: Some(v), .. } => format!("{text}={v}"),
            Expectation::JsonPath { text, value: None, .. } => format!("{text} to be set"),
        }
    }

    pub fn progress(&self, live: &serde_json::Value) -> Progress {
        match &self.expect {
            Expectation::Condition { kind, status } => match condition(live, kind) {
                Some(s) if s.eq_ignore_ascii_case(status) => Progress::Done,
                Some(s) => Progress::Pending(format!("condition {kind} is {s}")),
                None => Progress::Pending(format!("no condition {kind} yet")),
            },
            Expectation::JsonPath { path, value, text } => {
                let found = path.iter().try_fold(live, |node, step| match step {
                    PathStep::Field(f) => node.get(f.as_str()),
                    PathStep::Index(i) => node.get(*i),
                });
                match (found, value) {
                    (None | Some(serde_json::Value::Null), _) => Progress::Pending(format!("{text} is not set")),
                    (Some(_), None) => Progress::Done,
                    (Some(v), Some(wanted)) => {
                        let actual = match v {
                            serde_json::Value::String(s) => s.clone(),
                            other => other.to_string(),
                        };
                        if &actual == wanted {
                            Progress::Done
                        } else {
                            Progress::Pending(format!("{text} is {actual}"))
                        }
                    }
                }
            }
        }
    }
}

/// Reads a `for` expression: `condition=<type>[=<status>]` or `jsonpath={<path>}[=<value>]`,
/// the path being fields and indexes (`.status.conditions[0].type`).
pub fn parse_expectation(text: &str) -> Result<Expectation, String> {
    if let Some(rest) = text.strip_prefix("condition=") {
        let (kind, status) = rest.split_once('=').unwrap_or((rest, "True"));
        if kind.is_empty() || status.is_empty() || kind.contains(char::is_whitespace) {
            return Err("needs a condition type, as in `condition=Available` or `condition=Ready=False`".into());
        }
        return Ok(Expectation::Condition { kind: kind.to_string(), status: status.to_string() });
    }
    if let Some(rest) = text.strip_prefix("jsonpath=") {
        let inner = rest.strip_prefix('{').ok_or("needs a path in braces, as in `jsonpath={.status.phase}=Running`")?;
        let end = inner.find('}').ok_or("has no closing `}`")?;
        let (path_text, after) = (&inner[..end], &inner[end + 1..]);
        let value = match after {
            "" => None,
            _ => Some(after.strip_prefix('=').ok_or("must be followed by `=<value>` or nothing")?.to_string()),
        };
        let path = parse_json_path(path_text)?;
        return Ok(Expectation::JsonPath { path, value, text: format!("{{{path_text}}}") });
    }
    Err("must start with `condition=` or `jsonpath=`".into())
}

fn parse_json_path(text: &str) -> Result<Vec<PathStep>, String> {
    let mut steps = Vec::new();
    let mut rest = text.strip_prefix('.').ok_or("a path starts with `.`, as in `.status.phase`")?;
    while !rest.is_empty() {
        let end = rest.find(['.', '[']).unwrap_or(rest.len());
        if end > 0 {
            steps.push(PathStep::Field(rest[..end].to_string()));
        }
        rest = &rest[end..];
        while let Some(index) = rest.strip_prefix('[') {
            let close = index.find(']').ok_or("has an unclosed `[`")?;
            let n = index[..close].parse().map_err(|_| format!("index {:?} is not a number", &index[..close]))?;
            steps.push(PathStep::Index(n));
            rest = &index[close + 1..];
        }
        if let Some(next) = rest.strip_prefix('.') {
            if next.is_empty() || next.starts_with('.') {
                return Err("has an empty field name".into());
            }
            rest = next;
        } else if !rest.is_empty() {
            return Err(format!("cannot read {rest:?}"));
        }
    }
    if steps.is_empty() {
        return Err("names no field".into());
    }
    Ok(steps)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn deployment(status: serde_json::Value) -> serde_json::Value {
        json!({"metadata": {"generation": 2}, "spec": {"replicas": 3}, "status": status})
    }

    #[test]
    fn deployment_waits_for_the_controller_updates_old_pods_and_availability() {
        let stale = deployment(json!({"observedGeneration": 1}));
        assert!(matches!(rollout_progress("Deployment", &stale), Progress::Pending(m) if m.contains("not seen")));
        let updating = deployment(json!({"observedGeneration": 2, "updatedReplicas": 1, "replicas": 3, "availableReplicas": 3}));
        assert_eq!(rollout_progress("Deployment", &updating), Progress::Pending("1 of 3 updated replicas".into()));
        let old = deployment(json!({"observedGeneration": 2, "updatedReplicas": 3, "replicas": 4, "availableReplicas": 3}));
        assert_eq!(rollout_progress("Deployment", &old), Progress::Pending("1 old replicas pending termination".into()));
        let unavailable = deployment(json!({"observedGeneration": 2, "updatedReplicas": 3, "replicas": 3, "availableReplicas": 2}));
        assert!(matches!(rollout_progress("Deployment", &unavailable), Progress::Pending(_)));
        let done = deployment(json!({"observedGeneration": 2, "updatedReplicas": 3, "replicas": 3, "availableReplicas": 3}));
        assert_eq!(rollout_progress("Deployment", &done), Progress::Done);
    }

    #[test]
    fn deployment_past_its_progress_deadline_fails_with_its_message() {
        let stuck = deployment(json!({"observedGeneration": 2, "updatedReplicas": 1, "conditions": [
            {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
             "message": "ReplicaSet \"web-5d\" has timed out progressing."}]}));
        assert_eq!(
            rollout_progress("Deployment", &stuck),
            Progress::Failed("ProgressDeadlineExceeded: ReplicaSet \"web-5d\" has timed out progressing.".into())
        );
    }

    #[test]
    fn on_delete_workloads_are_done_once_observed() {
        let ds = json!({"metadata": {"generation": 1}, "spec": {"updateStrategy": {"type": "OnDelete"}},
            "status": {"observedGeneration": 1, "desiredNumberScheduled": 2, "updatedNumberScheduled": 0}});
        assert_eq!(rollout_progress("DaemonSet", &ds), Progress::Done);
        let sts = json!({"metadata": {"generation": 1}, "spec": {"replicas": 2, "updateStrategy": {"type": "OnDelete"}},
            "status": {"observedGeneration": 1, "currentRevision": "a", "updateRevision": "b"}});
        assert_eq!(rollout_progress("StatefulSet", &sts), Progress::Done);
    }

    #[test]
    fn daemonset_rolling_update() {
        let ds = |updated: i64, available: i64| {
            json!({"metadata": {"generation": 1}, "status": {"observedGeneration": 1, "desiredNumberScheduled": 2,
                "updatedNumberScheduled": updated, "numberAvailable": available}})
        };
        assert!(matches!(rollout_progress("DaemonSet", &ds(1, 2)), Progress::Pending(_)));
        assert!(matches!(rollout_progress("DaemonSet", &ds(2, 1)), Progress::Pending(_)));
        assert_eq!(rollout_progress("DaemonSet", &ds(2, 2)), Progress::Done);
    }

    #[test]
    fn partitioned_statefulset_is_done_when_pods_above_the_partition_are_updated() {
        let sts = |updated: i64| {
            json!({"metadata": {"generation": 3}, "spec": {"replicas": 5, "updateStrategy": {"type": "RollingUpdate",
                "rollingUpdate": {"partition": 3}}}, "status": {"observedGeneration": 3, "readyReplicas": 5,
                "updatedReplicas": updated, "currentRevision": "a", "updateRevision": "b"}})
        };
        assert!(matches!(rollout_progress("StatefulSet", &sts(1)), Progress::Pending(m) if m.contains("partitioned")));
        assert_eq!(rollout_progress("StatefulSet", &sts(2)), Progress::Done);
    }

    #[test]
    fn statefulset_waits_for_ready_pods_and_the_update_revision() {
        let sts = json!({"metadata": {"generation": 1}, "spec": {"replicas": 2}, "status": {"observedGeneration": 1,
            "readyReplicas": 2, "updatedReplicas": 1, "currentRevision": "a", "updateRevision": "b"}});
        assert!(matches!(rollout_progress("StatefulSet", &sts), Progress::Pending(_)));
        let unobserved = json!({"metadata": {"generation": 0}, "spec": {"replicas": 2}, "status": {}});
        assert!(matches!(rollout_progress("StatefulSet", &unobserved), Progress::Pending(_)));
    }

    #[test]
    fn jobs_complete_or_fail_with_their_message() {
        let running = json!({"status": {"active": 1}});
        assert_eq!(progress("Job", &running), Progress::Pending("0 succeeded, 1 active, 0 failed".into()));
        let done = json!({"status": {"conditions": [{"type": "Complete", "status": "True"}]}});
        assert_eq!(progress("Job", &done), Progress::Done);
        let failed = json!({"status": {"conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
            "message": "Job has reached the specified backoff limit"}]}});
        assert_eq!(progress("Job", &failed), Progress::Failed("BackoffLimitExceeded: Job has reached the specified backoff limit".into()));
    }

    #[test]
    fn crds_wait_for_established() {
        assert!(matches!(progress("CustomResourceDefinition", &json!({})), Progress::Pending(_)));
        let established = json!({"status": {"conditions": [{"type": "Established", "status": "True"}]}});
        assert_eq!(progress("CustomResourceDefinition", &established), Progress::Done);
    }

    #[test]
    fn wait_for_expressions_parse_as_kubectl_wait_reads_them() {
        assert_eq!(
            parse_expectation("condition=Available").unwrap(),
            Expectation::Condition { kind: "Available".into(), status: "True".into() }
        );
        assert_eq!(
            parse_expectation("condition=Ready=False").unwrap(),
            Expectation::Condition { kind: "Ready".into(), status: "False".into() }
        );
        let Expectation::JsonPath { path, value, .. } = parse_expectation("jsonpath={.status.conditions[1].type}=Ready").unwrap() else {
            panic!("not a jsonpath")
        };
        assert_eq!(
            path,
            [PathStep::Field("status".into()), PathStep::Field("conditions".into()), PathStep::Index(1), PathStep::Field("type".into())]
        );
        assert_eq!(value.as_deref(), Some("Ready"));
        for bad in ["delete", "condition=", "jsonpath=.status", "jsonpath={.status", "jsonpath={status}", "jsonpath={.a..b}", "jsonpath={.a[x]}", "jsonpath={.a}x"] {
            assert!(parse_expectation(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn wait_for_checks_conditions_and_paths() {
        let live = json!({"status": {"phase": "Running", "replicas": 2, "conditions": [{"type": "Available", "status": "True"}]}});
        let wait = |text: &str| WaitFor { kind: None, name: None, expect: parse_expectation(text).unwrap() };
        assert_eq!(wait("condition=Available").progress(&live), Progress::Done);
        assert!(matches!(wait("condition=Available=False").progress(&live), Progress::Pending(_)));
        assert!(matches!(wait("condition=Progressing").progress(&live), Progress::Pending(m) if m.contains("no condition")));
        assert_eq!(wait("jsonpath={.status.phase}=Running").progress(&live), Progress::Done);
        assert_eq!(wait("jsonpath={.status.replicas}=2").progress(&live), Progress::Done);
        assert_eq!(wait("jsonpath={.status.conditions[0].type}=Available").progress(&live), Progress::Done);
        assert!(matches!(wait("jsonpath={.status.phase}=Failed").progress(&live), Progress::Pending(m) if m.contains("Running")));
        assert!(matches!(wait("jsonpath={.status.loadBalancer}").progress(&live), Progress::Pending(_)));
        assert_eq!(wait("jsonpath={.status.phase}").progress(&live), Progress::Done);
    }
}
