//! When an applied object is ready, judged as `kubectl rollout status` and `kubectl wait`
//! judge it: pure functions of the live object, so every rule has a unit test.

use serde_json::Value;

use super::flux::{self, RECONCILE_REQUEST};
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
        "HelmRelease" => match release_status(live) {
            ReleaseStatus::Ready => Progress::Done,
            ReleaseStatus::Failed { reason, message } => Progress::Failed(format!("{reason}: {message}")),
            ReleaseStatus::Progressing { reason, message } => Progress::Pending(format!("{reason}: {message}")),
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

/// Whether `revision` (helm-controller's `lastAttemptedRevision`: the chart version, for OCI
/// sources followed by `+` or `@` and a digest) is of chart version `version`.
fn is_revision_of(revision: &str, version: &str) -> bool {
    revision.strip_prefix(version).is_some_and(|rest| rest.is_empty() || rest.starts_with('+') || rest.starts_with('@'))
}

/// A HelmRelease's readiness (also right for HelmRepository and OCIRepository, which report
/// the same kstatus conditions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReleaseStatus {
    /// Reconciled at its current generation and Ready.
    Ready,
    /// helm-controller gave up (Stalled, for instance after the remediation retries), or the
    /// object is suspended and will not be reconciled: waiting longer will not help.
    Failed { reason: String, message: String },
    /// Not there yet: not yet reconciled at its current generation, being reconciled, or
    /// failing in a way helm-controller retries (a dependency not Ready, a chart not yet
    /// fetched). The reason and message are the latest ones, for a timeout's explanation.
    Progressing { reason: String, message: String },
}

/// Reads readiness from `status` as helm-controller writes it: `observedGeneration` below
/// `metadata.generation` means the status describes an older spec (so it is not Ready, and
/// a Stalled from then no longer counts); `Stalled=True` is a final failure; `Reconciling=True`
/// or `Ready` other than True is progress; `Ready=True` at the current generation is ready.
/// Conditions that carry an older `observedGeneration` than the object's are ignored.
pub fn release_status(object: &Value) -> ReleaseStatus {
    let generation = object.get("metadata").and_then(|m| m.get("generation")).and_then(Value::as_i64);
    let status = object.get("status");
    let observed = status.and_then(|s| s.get("observedGeneration")).and_then(Value::as_i64);
    let conditions: &[Value] =
        status.and_then(|s| s.get("conditions")).and_then(Value::as_array).map_or(&[], Vec::as_slice);
    let condition = |kind: &str| {
        conditions
            .iter()
            .filter(|c| c.get("type").and_then(Value::as_str) == Some(kind))
            .find(|c| match (c.get("observedGeneration").and_then(Value::as_i64), generation) {
                (Some(seen), Some(current)) => seen >= current,
                _ => true,
            })
            .map(|c| Condition {
                status: c.get("status").and_then(Value::as_str).unwrap_or("Unknown"),
                reason: c.get("reason").and_then(Value::as_str).unwrap_or(""),
                message: c.get("message").and_then(Value::as_str).unwrap_or(""),
            })
    };
    // A requested reconciliation (see `RECONCILE_REQUEST`) not handled yet: the status
    // describes the release from before it.
    let requested = object.get("metadata").and_then(|m| m.get("annotations")).and_then(|a| a.get(RECONCILE_REQUEST)).and_then(Value::as_str);
    let handled = status.and_then(|s| s.get("lastHandledReconcileAt")).and_then(Value::as_str);
    let request_pending = requested.is_some_and(|r| handled != Some(r));
    let stale = request_pending
        || match (generation, observed) {
            (Some(current), Some(seen)) => seen < current,
            (Some(_), None) => true,
            (None, _) => false,
        };
    let reconciling = condition("Reconciling").filter(|c| c.status == "True");
    // An OCI chart's new version reaches helm-controller through the OCIRepository, not the
    // HelmRelease's generation: until Helm has tried it, Ready describes the old version.
    let wanted_chart = object
        .get("metadata")
        .and_then(|m| m.get("annotations"))
        .and_then(|a| a.get(flux::CHART_VERSION_ANNOTATION))
        .and_then(Value::as_str);
    let attempted = status.and_then(|s| s.get("lastAttemptedRevision")).and_then(Value::as_str);
    // (wanted, last attempted) while they differ.
    let chart_pending = wanted_chart.zip(attempted).filter(|(wanted, attempted)| !is_revision_of(attempted, wanted));

    let ready = condition("Ready");
    // Stalled says that Flux gave up, unless a reconciliation was requested since (it then
    // tries again); Ready=False usually says why.
    if let Some(stalled) = condition("Stalled").filter(|c| c.status == "True" && !request_pending) {
        let mut message = stalled.message.to_string();
        if let Some(why) = ready.as_ref().filter(|c| c.status == "False" && !c.message.is_empty() && c.message != stalled.message) {
            message = format!("{message} (Ready=False, {}: {})", why.reason, why.message);
        }
        return ReleaseStatus::Failed { reason: stalled.reason.into(), message };
    }
    let is_ready = ready.as_ref().is_some_and(|c| c.status == "True");
    if is_ready && !stale && reconciling.is_none() && chart_pending.is_none() {
        return ReleaseStatus::Ready;
    }
    if let Some((wanted, attempted)) = chart_pending {
        return ReleaseStatus::Progressing {
            reason: "ChartVersionPending".into(),
            message: format!("Helm has not used chart version {wanted} yet (last attempted: {attempted})"),
        };
    }
    let suspended = object.get("spec").and_then(|s| s.get("suspend")).and_then(Value::as_bool) == Some(true);
    if suspended {
        return ReleaseStatus::Failed {
            reason: "Suspended".into(),
            message: "reconciliation is suspended (spec.suspend is true), so the current spec will not be applied"
                .into(),
        };
    }
    // The most telling explanation first: a failure being retried, then what is running.
    let failing = ready.as_ref().filter(|c| c.status == "False");
    match failing.or(reconciling.as_ref()).or(ready.as_ref().filter(|c| c.status != "True")) {
        Some(c) if !c.reason.is_empty() || !c.message.is_empty() => {
            ReleaseStatus::Progressing { reason: c.reason.into(), message: c.message.into() }
        }
        _ => ReleaseStatus::Progressing {
            reason: "Pending".into(),
            message: match (generation, observed) {
                _ if request_pending => "waiting for the controller to handle the requested reconciliation".into(),
                (Some(current), Some(seen)) if seen < current => {
                    format!("waiting for the controller to reconcile generation {current} (it last finished generation {seen})")
                }
                (Some(current), _) => format!("waiting for the controller to reconcile generation {current}"),
                (None, _) => "waiting for the controller to report readiness".into(),
            },
        },
    }
}

struct Condition<'a> {
    status: &'a str,
    reason: &'a str,
    message: &'a str,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::resources::stack::flux::{HELM_RELEASE_API, HELM_RELEASE_KIND};

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

    fn release(generation: i64, observed: Option<i64>, conditions: Value) -> Value {
        let mut status = json!({"conditions": conditions});
        if let Some(observed) = observed {
            status["observedGeneration"] = json!(observed);
        }
        json!({"apiVersion": HELM_RELEASE_API, "kind": HELM_RELEASE_KIND, "metadata": {"name": "x", "generation": generation}, "spec": {}, "status": status})
    }

    fn progressing(reason: &str, message: &str) -> ReleaseStatus {
        ReleaseStatus::Progressing { reason: reason.into(), message: message.into() }
    }

    #[test]
    fn ready_at_the_current_generation() {
        let object = release(
            2,
            Some(2),
            json!([
                {"type": "Ready", "status": "True", "reason": "UpgradeSucceeded", "message": "Helm upgrade succeeded", "observedGeneration": 2},
                {"type": "Released", "status": "True", "reason": "UpgradeSucceeded", "observedGeneration": 2}
            ]),
        );
        assert_eq!(release_status(&object), ReleaseStatus::Ready);
    }

    #[test]
    fn ready_from_an_older_generation_is_progressing() {
        let object = release(
            3,
            Some(2),
            json!([
                {"type": "Ready", "status": "True", "reason": "UpgradeSucceeded", "message": "done", "observedGeneration": 2}
            ]),
        );
        assert_eq!(
            release_status(&object),
            progressing(
                "Pending",
                "waiting for the controller to reconcile generation 3 (it last finished generation 2)"
            )
        );
    }

    #[test]
    fn no_status_yet_is_progressing() {
        let object = json!({"metadata": {"generation": 1}});
        assert_eq!(
            release_status(&object),
            progressing("Pending", "waiting for the controller to reconcile generation 1")
        );
        assert_eq!(
            release_status(&json!({})),
            progressing("Pending", "waiting for the controller to report readiness")
        );
        assert_eq!(
            release_status(&json!("garbage")),
            progressing("Pending", "waiting for the controller to report readiness")
        );
    }

    #[test]
    fn reconciling_is_progressing_with_its_message() {
        let object = release(
            1,
            None,
            json!([
                {"type": "Reconciling", "status": "True", "reason": "Progressing", "message": "Running 'install' action with timeout of 5m0s", "observedGeneration": 1},
                {"type": "Ready", "status": "Unknown", "reason": "Progressing", "message": "Running 'install' action with timeout of 5m0s", "observedGeneration": 1}
            ]),
        );
        assert_eq!(
            release_status(&object),
            progressing("Progressing", "Running 'install' action with timeout of 5m0s")
        );
    }

    #[test]
    fn a_failure_being_retried_is_progressing_with_the_failure() {
        let object = release(
            1,
            None,
            json!([
                {"type": "Reconciling", "status": "True", "reason": "ProgressingWithRetry", "message": "retrying", "observedGeneration": 1},
                {"type": "Ready", "status": "False", "reason": "InstallFailed", "message": "Helm install failed: timed out", "observedGeneration": 1},
                {"type": "Released", "status": "False", "reason": "InstallFailed", "observedGeneration": 1}
            ]),
        );
        assert_eq!(release_status(&object), progressing("InstallFailed", "Helm install failed: timed out"));
        let dependency = release(
            1,
            Some(1),
            json!([
                {"type": "Ready", "status": "False", "reason": "DependencyNotReady", "message": "dependency 'flux-system/crds' is not ready", "observedGeneration": 1}
            ]),
        );
        assert_eq!(
            release_status(&dependency),
            progressing("DependencyNotReady", "dependency 'flux-system/crds' is not ready")
        );
    }

    #[test]
    fn an_oci_chart_version_counts_once_helm_has_tried_it() {
        let release = |attempted: Option<&str>| {
            let mut r = json!({"metadata": {"generation": 1, "annotations": {flux::CHART_VERSION_ANNOTATION: "0.2.0"}},
                "status": {"observedGeneration": 1, "conditions": [{"type": "Ready", "status": "True", "reason": "UpgradeSucceeded"}]}});
            if let Some(a) = attempted {
                r["status"]["lastAttemptedRevision"] = json!(a);
            }
            r
        };
        assert!(matches!(
            release_status(&release(Some("0.1.0+0123456789ab"))),
            ReleaseStatus::Progressing { reason, message } if reason == "ChartVersionPending" && message.contains("0.2.0")
        ));
        assert!(matches!(release_status(&release(Some("0.2.0-rc.1"))), ReleaseStatus::Progressing { .. }));
        assert_eq!(release_status(&release(Some("0.2.0+0123456789ab"))), ReleaseStatus::Ready);
        assert_eq!(release_status(&release(Some("0.2.0@sha256:abcd"))), ReleaseStatus::Ready);
        assert_eq!(release_status(&release(Some("0.2.0"))), ReleaseStatus::Ready);
        // A controller that reports no attempted revision is judged by its conditions alone.
        assert_eq!(release_status(&release(None)), ReleaseStatus::Ready);
    }

    #[test]
    fn a_requested_reconciliation_counts_once_handled() {
        let release = |handled: Option<&str>| {
            let mut r = json!({"metadata": {"generation": 2, "annotations": {RECONCILE_REQUEST: "v=7"}},
                "status": {"observedGeneration": 2, "conditions": [{"type": "Ready", "status": "True", "reason": "UpgradeSucceeded"}]}});
            if let Some(h) = handled {
                r["status"]["lastHandledReconcileAt"] = json!(h);
            }
            r
        };
        assert!(matches!(release_status(&release(None)), ReleaseStatus::Progressing { .. }));
        assert!(matches!(release_status(&release(Some("v=6"))), ReleaseStatus::Progressing { message, .. } if message.contains("requested")));
        assert_eq!(release_status(&release(Some("v=7"))), ReleaseStatus::Ready);
    }

    #[test]
    fn stalled_is_failed() {
        let object = release(
            1,
            Some(1),
            json!([
                {"type": "Stalled", "status": "True", "reason": "RetriesExceeded", "message": "Failed to install after 3 attempt(s)", "observedGeneration": 1},
                {"type": "Ready", "status": "False", "reason": "InstallFailed", "message": "Helm install failed", "observedGeneration": 1}
            ]),
        );
        assert_eq!(
            release_status(&object),
            ReleaseStatus::Failed {
                reason: "RetriesExceeded".into(),
                message: "Failed to install after 3 attempt(s) (Ready=False, InstallFailed: Helm install failed)".into()
            }
        );
        // A reconciliation requested since (`flux reconcile`, or the stack repairing it): Flux tries again.
        let mut requested = object.clone();
        requested["metadata"]["annotations"] = json!({RECONCILE_REQUEST: "2026-11-30T05:00:00Z"});
        assert!(matches!(release_status(&requested), ReleaseStatus::Progressing { .. }), "{:?}", release_status(&requested));
        requested["status"]["lastHandledReconcileAt"] = json!("2026-11-30T05:00:00Z");
        assert!(matches!(release_status(&requested), ReleaseStatus::Failed { .. }));
    }

    #[test]
    fn a_stall_from_an_older_generation_no_longer_counts() {
        let object = release(
            2,
            Some(1),
            json!([
                {"type": "Stalled", "status": "True", "reason": "RetriesExceeded", "message": "old", "observedGeneration": 1},
                {"type": "Ready", "status": "False", "reason": "InstallFailed", "message": "old failure", "observedGeneration": 1}
            ]),
        );
        assert_eq!(
            release_status(&object),
            progressing(
                "Pending",
                "waiting for the controller to reconcile generation 2 (it last finished generation 1)"
            )
        );
    }

    #[test]
    fn ready_while_reconciling_again_is_progressing() {
        let object = release(
            1,
            Some(1),
            json!([
                {"type": "Ready", "status": "True", "reason": "InstallSucceeded", "message": "ok", "observedGeneration": 1},
                {"type": "Reconciling", "status": "True", "reason": "Progressing", "message": "detecting drift", "observedGeneration": 1}
            ]),
        );
        assert_eq!(release_status(&object), progressing("Progressing", "detecting drift"));
    }

    #[test]
    fn suspended_and_not_ready_is_failed() {
        let mut object = release(2, Some(1), json!([]));
        object["spec"]["suspend"] = json!(true);
        assert!(matches!(release_status(&object), ReleaseStatus::Failed { reason, .. } if reason == "Suspended"));
        let mut ready = release(1, Some(1), json!([{"type": "Ready", "status": "True", "observedGeneration": 1}]));
        ready["spec"]["suspend"] = json!(true);
        assert_eq!(release_status(&ready), ReleaseStatus::Ready);
    }

    #[test]
    fn conditions_without_generations_are_taken_at_their_word() {
        // Older controllers did not set observedGeneration on conditions.
        let object =
            release(1, Some(1), json!([{"type": "Ready", "status": "True", "reason": "ReconciliationSucceeded"}]));
        assert_eq!(release_status(&object), ReleaseStatus::Ready);
    }
}
