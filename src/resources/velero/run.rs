//! What `platform_backup` and `platform_restore` share: both start one run of Velero with a
//! plain create (never adopting an object of the same name), wait until it ends, keep their
//! state after Velero garbage-collects the object, and change nothing in the cluster on an
//! in-place update (only how the apply judges and destroys them can change).

use std::time::Duration;

use crate::framework::diagnostics::{AttributePath, Diagnostics};
use crate::framework::resource::{Context, Plan};
use crate::framework::value::Value;
use crate::platform::kube_diagnostic;
use crate::resources::object::NamespacedObject;

const POLL: Duration = Duration::from_secs(1);

/// How the state shows a run's outcome (the object as Velero last wrote it).
pub type Outcome = fn(&Value, &serde_json::Value) -> Value;

/// One run: the object, its kind (`Backup`, `Restore`) and how its state shows the outcome.
pub struct Run<'a> {
    pub object: &'a NamespacedObject,
    pub kind: &'static str,
    pub outcome: Outcome,
}

impl Run<'_> {
    /// Creates the run `desired` and waits until it ends, within `timeout`. From the create on
    /// the state records it, whatever happens: a failed run is an error with Velero's reason,
    /// and Terraform keeps it (tainted).
    pub async fn start_and_wait(
        &self,
        ctx: &Context,
        planned: &Value,
        desired: &serde_json::Value,
        timeout: Duration,
        diags: &mut Diagnostics,
    ) -> Option<Value> {
        let (run, kind, outcome) = (self.object, self.kind, self.outcome);
        let live = match run.create(ctx, desired).await {
            Ok(live) => live,
            Err(e) => {
                let mut diagnostic = kube_diagnostic(&format!("Could not create {}", run.describe()), &e);
                if e.is_conflict() {
                    diagnostic.summary = format!("{} already exists", run.describe());
                    diagnostic.detail.push_str(&format!(
                    "\n\nA {kind} of that name exists (Velero may have synced it back from the bucket). It is not taken \
                     over: give this one another name, or import it."
                ));
                } else if e.is_not_found() {
                    diagnostic.detail.push_str(&format!(
                        "\n\nThe cluster does not know Velero's {kind}s (velero.io/v1): install Velero first."
                    ));
                }
                diags.push(diagnostic);
                return None;
            }
        };
        let mut state = outcome(planned, &live);
        let allow_partial = planned.get_attr("allow_partial_failure").and_then(Value::as_bool).unwrap_or(false);
        let what = format!("{} to finish", run.describe());
        match run
            .wait(ctx, timeout, POLL, &what, |live| super::judge_run(kind, live, &run.namespace, allow_partial))
            .await
        {
            Ok(Some(live)) => state = outcome(&state, &live),
            Ok(None) => {}
            Err(e) => {
                if let Ok(Some(live)) = run.get(ctx).await {
                    state = outcome(&state, &live);
                }
                diags.error(format!("{kind} {} did not succeed", run.describe()), e.to_string());
            }
        }
        Some(state)
    }

    /// Read: the run's outcome; once Velero has deleted it (expiry, garbage collection) the
    /// state stays, with phase `Gone` (reading it as gone would run it again at the next apply).
    pub async fn read(&self, ctx: &Context, state: &Value, diags: &mut Diagnostics) -> Option<Value> {
        let (run, outcome) = (self.object, self.outcome);
        match run.get(ctx).await {
            Ok(Some(live)) => Some(outcome(state, &live)),
            Ok(None) => {
                let mut next = state.clone();
                next.set_attr("phase", Value::string("Gone"));
                Some(next)
            }
            Err(e) => {
                diags.push(kube_diagnostic(&format!("Could not read {}", run.describe()), &e));
                Some(state.clone())
            }
        }
    }
}

/// An in-place update keeps what Velero did: these computed attributes stay as they are.
pub fn keep_outcome(plan: &mut Plan, names: &[&str]) {
    for name in names {
        plan.planned.set_attr(name, plan.prior.get_attr(name).cloned().unwrap_or(Value::Null));
    }
}

/// `on_destroy`: `retain` or `delete`.
pub fn validate_on_destroy(config: &Value, diags: &mut Diagnostics) {
    if let Some(text) = config.get_attr("on_destroy").and_then(Value::as_str) {
        if !matches!(text, "retain" | "delete") {
            diags.error_at(
                AttributePath::root("on_destroy"),
                "Invalid on_destroy",
                format!("on_destroy must be \"retain\" or \"delete\", not {text:?}."),
            );
        }
    }
}

/// Whether destroy deletes the object (`on_destroy = "delete"`) rather than forgetting it.
pub fn deletes_on_destroy(prior: &Value) -> bool {
    prior.get_attr("on_destroy").and_then(Value::as_str) == Some("delete")
}
