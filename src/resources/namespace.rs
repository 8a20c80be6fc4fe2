//! `platform_namespace`: a Kubernetes namespace with the labels and annotations it manages.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, Patch, PatchParams};

use super::metadata;
use crate::clients::deadline::{Deadline, Progress, WaitError};
use crate::clients::kube::{Cluster, KubeError, FIELD_MANAGER};
use crate::framework::diagnostics::Diagnostics;
use crate::framework::resource::{Context, Resource};
use crate::framework::schema::{timeouts_block, Attribute, Block, Schema};
use crate::framework::timeouts;
use crate::framework::value::Value;
use crate::provider::{cluster_attribute, kube_diagnostic, validate_cluster_attribute, Platform};

const DEFAULT_CREATE_TIMEOUT: Duration = Duration::from_secs(60);
const DEFAULT_DELETE_TIMEOUT: Duration = Duration::from_secs(300);
const READ_TIMEOUT: Duration = Duration::from_secs(60);

pub struct NamespaceResource {
    platform: Arc<Platform>,
}

impl NamespaceResource {
    pub fn new(platform: Arc<Platform>) -> Self {
        NamespaceResource { platform }
    }

    async fn api(&self, state: &Value, diags: &mut Diagnostics) -> Option<(Api<Namespace>, Cluster)> {
        match self.platform.cluster(state.get_attr("cluster")).await {
            Ok(cluster) => Some((Api::all(cluster.client.clone()), cluster)),
            Err(diagnostic) => {
                diags.push(diagnostic);
                None
            }
        }
    }

    /// Server-side applies name, labels and annotations; returns the live object.
    async fn apply(
        &self,
        ctx: &Context,
        (api, cluster): &(Api<Namespace>, Cluster),
        planned: &Value,
        timeout: Duration,
        diags: &mut Diagnostics,
    ) -> Option<Namespace> {
        let name = planned.get_attr("name").and_then(Value::as_str).unwrap_or_default().to_string();
        let desired = desired_object(planned);
        let params = PatchParams::apply(FIELD_MANAGER).force();
        let result = Deadline::after(timeout, ctx.stop.clone()).run(async {
            api.patch(&name, &params, &Patch::Apply(&desired)).await.map_err(|e| cluster.error(e))
        })
        .await;
        match result {
            Ok(namespace) => Some(namespace),
            Err(e) => {
                diags.push(kube_diagnostic(&format!("Could not apply namespace {name:?}"), &e));
                None
            }
        }
    }
}

fn desired_object(planned: &Value) -> serde_json::Value {
    let mut metadata = serde_json::json!({ "name": planned.get_attr("name").and_then(Value::as_str) });
    for key in ["labels", "annotations"] {
        if let Some(map) = metadata::string_map(planned.get_attr(key)) {
            metadata[key] = serde_json::json!(map);
        }
    }
    serde_json::json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": metadata })
}

/// Reads the namespace unless that outlasts `timeout` or Terraform asks us to stop.
async fn get_bounded(
    ctx: &Context,
    (api, cluster): &(Api<Namespace>, Cluster),
    name: &str,
    timeout: Duration,
) -> Result<Option<Namespace>, KubeError> {
    Deadline::after(timeout, ctx.stop.clone()).run(cluster.get_opt(api, name)).await
}

/// The state for a live namespace: managed keys come from `state`, the rest from the cluster.
fn state_from_live(state: &Value, live: &Namespace) -> Value {
    let mut next = state.clone();
    let name = live.metadata.name.clone().unwrap_or_default();
    next.set_attr("id", Value::String(name.clone()));
    next.set_attr("name", Value::String(name));
    next.set_attr("uid", Value::String(live.metadata.uid.clone().unwrap_or_default()));
    next.set_attr("labels", metadata::managed_entries(state.get_attr("labels"), live.metadata.labels.as_ref()));
    next.set_attr(
        "annotations",
        metadata::managed_entries(state.get_attr("annotations"), live.metadata.annotations.as_ref()),
    );
    next
}

/// Explains why a namespace is still terminating: its finalizers and the conditions the
/// namespace controller reports (which name the kinds of objects left inside).
fn blocking_reasons(namespace: &Namespace) -> String {
    let mut reasons = Vec::new();
    let spec_finalizers = namespace.spec.as_ref().and_then(|s| s.finalizers.clone()).unwrap_or_default();
    let meta_finalizers = namespace.metadata.finalizers.clone().unwrap_or_default();
    let finalizers: Vec<String> = spec_finalizers.into_iter().chain(meta_finalizers).collect();
    if !finalizers.is_empty() {
        reasons.push(format!("finalizers: {}", finalizers.join(", ")));
    }
    for condition in namespace.status.as_ref().and_then(|s| s.conditions.clone()).unwrap_or_default() {
        if condition.status == "True" {
            if let Some(message) = condition.message {
                reasons.push(format!("{}: {message}", condition.type_));
            }
        }
    }
    if reasons.is_empty() {
        "the namespace controller reported nothing; check that kube-controller-manager is running".into()
    } else {
        reasons.join("; ")
    }
}

#[async_trait]
impl Resource for NamespaceResource {
    fn type_name(&self) -> &'static str {
        "platform_namespace"
    }

    fn schema(&self) -> Schema {
        Schema::new(
            Block::new(vec![
                Attribute::string("id").computed().keep_on_update().describe("The namespace name."),
                Attribute::string("name")
                    .required()
                    .requires_replace()
                    .describe("Name of the namespace, a DNS-1123 label. Changing it replaces the namespace."),
                Attribute::string_map("labels").optional().describe(
                    "Labels this resource manages. Labels added by others are left alone and never show as changes.",
                ),
                Attribute::string_map("annotations").optional().describe(
                    "Annotations this resource manages. Annotations added by others are left alone.",
                ),
                Attribute::string("uid").computed().keep_on_update().describe("UID Kubernetes gave the namespace."),
                cluster_attribute(),
            ])
            .with_block(timeouts_block(&["create", "delete"]))
            .describe(
                "A Kubernetes namespace, created and updated by server-side apply. Deleting waits until the namespace \
                 is really gone and, on timeout, says what blocks it.",
            ),
        )
    }

    fn validate(&self, config: &Value, diags: &mut Diagnostics) {
        metadata::validate_name(config, "name", diags);
        metadata::validate_labels_and_annotations(config, diags);
        timeouts::validate(config, &["create", "delete"], diags);
        validate_cluster_attribute(config, diags);
    }

    async fn create(&self, ctx: &Context, planned: &Value, _config: &Value, diags: &mut Diagnostics) -> Option<Value> {
        let timeout = timeouts::timeout(planned, "create", DEFAULT_CREATE_TIMEOUT);
        let name = planned.get_attr("name").and_then(Value::as_str).unwrap_or_default().to_string();
        // Refuse to silently adopt a namespace someone else made: that is what import is for.
        let connection = self.api(planned, diags).await?;
        match get_bounded(ctx, &connection, &name, timeout).await {
            Ok(Some(_)) => {
                diags.error(
                    "Namespace already exists",
                    format!(
                        "Namespace {name:?} already exists in the cluster. To manage it with Terraform, import it:\n  terraform import <address> {name}"
                    ),
                );
                return None;
            }
            Ok(None) => {}
            Err(e) => {
                diags.push(kube_diagnostic(&format!("Could not create namespace {name:?}"), &e));
                return None;
            }
        }
        let live = self.apply(ctx, &connection, planned, timeout, diags).await?;
        Some(state_from_live(planned, &live))
    }

    async fn read(&self, ctx: &Context, state: &Value, diags: &mut Diagnostics) -> Option<Value> {
        let name = state.get_attr("name").and_then(Value::as_str).unwrap_or_default().to_string();
        let Some(connection) = self.api(state, diags).await else { return Some(state.clone()) };
        match get_bounded(ctx, &connection, &name, READ_TIMEOUT).await {
            Ok(Some(live)) => Some(state_from_live(state, &live)),
            Ok(None) => {
                tracing::info!(namespace = %name, "namespace is gone; removing it from state");
                None
            }
            // Only NotFound means gone: anything else keeps the state and says why.
            Err(e) => {
                diags.push(kube_diagnostic(&format!("Could not read namespace {name:?}"), &e));
                Some(state.clone())
            }
        }
    }

    async fn update(
        &self,
        ctx: &Context,
        _prior: &Value,
        planned: &Value,
        _config: &Value,
        diags: &mut Diagnostics,
    ) -> Option<Value> {
        let timeout = timeouts::timeout(planned, "create", DEFAULT_CREATE_TIMEOUT);
        let connection = self.api(planned, diags).await?;
        let live = self.apply(ctx, &connection, planned, timeout, diags).await?;
        Some(state_from_live(planned, &live))
    }

    async fn delete(&self, ctx: &Context, prior: &Value, diags: &mut Diagnostics) {
        let name = prior.get_attr("name").and_then(Value::as_str).unwrap_or_default().to_string();
        let timeout = timeouts::timeout(prior, "delete", DEFAULT_DELETE_TIMEOUT);
        let Some((api, cluster)) = self.api(prior, diags).await else { return };
        let deadline = Deadline::after(timeout, ctx.stop.clone());
        let deleted = deadline.run(async { api.delete(&name, &DeleteParams::default()).await.map_err(|e| cluster.error(e)) });
        if let Err(e) = deleted.await {
            if !e.is_not_found() {
                diags.push(kube_diagnostic(&format!("Could not delete namespace {name:?}"), &e));
            }
            return;
        }
        // A failure waiting cannot fix (401, 403...) ends the wait; kept for its diagnostic.
        let fatal = std::sync::Mutex::new(None::<KubeError>);
        let gone = deadline
            .poll(&format!("namespace {name:?} to be deleted"), Duration::from_millis(500), || async {
                match cluster.get_opt(&api, &name).await {
                    Ok(None) => Ok(Progress::Done),
                    Ok(Some(live)) => Ok(Progress::Pending(blocking_reasons(&live))),
                    Err(e) if e.is_permanent() => {
                        let message = e.to_string();
                        *fatal.lock().expect("fatal lock") = Some(e);
                        Ok(Progress::Failed(message))
                    }
                    Err(e) => Err(e),
                }
            })
            .await;
        match gone {
            Ok(()) => {}
            Err(WaitError::TimedOut { last: reasons, .. }) => {
                diags.error(
                    "Namespace still terminating",
                    format!(
                        "Namespace {name:?} was not gone after {}. What blocks it: {reasons}.\n\nThe namespace stays in the state; run destroy again once the blockers are resolved, or raise timeouts.delete.",
                        humantime::format_duration(timeout)
                    ),
                );
            }
            Err(e) => match fatal.into_inner().expect("fatal lock") {
                Some(e) => diags.push(kube_diagnostic(&format!("Could not delete namespace {name:?}"), &e)),
                None => diags.error(format!("Could not delete namespace {name:?}"), e.to_string()),
            },
        }
    }

    async fn import(&self, ctx: &Context, id: &str, diags: &mut Diagnostics) -> Option<Value> {
        if let Some(problem) = metadata::dns1123_label_problem(id) {
            diags.error("Invalid import id", format!("Import by namespace name; {id:?} {problem}."));
            return None;
        }
        let mut state = self.schema_null_state();
        state.set_attr("name", Value::String(id.to_string()));
        let connection = self.api(&state, diags).await?;
        let live = match get_bounded(ctx, &connection, id, READ_TIMEOUT).await {
            Ok(Some(live)) => live,
            Ok(None) => {
                diags.error("Cannot import non-existent namespace", format!("There is no namespace {id:?} in the cluster."));
                return None;
            }
            Err(e) => {
                diags.push(kube_diagnostic(&format!("Could not read namespace {id:?}"), &e));
                return None;
            }
        };
        // On import every non-system key counts as managed; the configuration decides after.
        state.set_attr("labels", metadata::adoptable_entries(live.metadata.labels.as_ref()));
        state.set_attr("annotations", metadata::adoptable_entries(live.metadata.annotations.as_ref()));
        Some(state_from_live(&state, &live))
    }
}

impl NamespaceResource {
    fn schema_null_state(&self) -> Value {
        Value::null_object(&self.schema().implied_type())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn blocking_reasons_name_finalizers_and_remaining_content() {
        let namespace: Namespace = serde_json::from_value(serde_json::json!({
            "metadata": { "name": "x", "finalizers": ["example.com/hold"] },
            "spec": { "finalizers": ["kubernetes"] },
            "status": { "phase": "Terminating", "conditions": [
                { "type": "NamespaceContentRemaining", "status": "True",
                  "message": "Some resources are remaining: configmaps. has 1 resource instances" },
                { "type": "NamespaceDeletionDiscoveryFailure", "status": "False", "message": "ignored" }
            ]}
        }))
        .unwrap();
        let text = blocking_reasons(&namespace);
        assert!(text.contains("finalizers: kubernetes, example.com/hold"), "{text}");
        assert!(text.contains("NamespaceContentRemaining: Some resources are remaining: configmaps"), "{text}");
        assert!(!text.contains("ignored"), "{text}");
    }

    #[test]
    fn desired_object_carries_only_what_is_managed() {
        let mut planned = Value::null_object(&NamespaceResource::new(Arc::default()).schema().implied_type());
        planned.set_attr("name", Value::from("monitoring"));
        planned.set_attr("labels", metadata::string_map_value(&BTreeMap::from([("tier".into(), "prod".into())])));
        let object = desired_object(&planned);
        assert_eq!(
            object,
            serde_json::json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": "monitoring", "labels": { "tier": "prod" } } })
        );
    }
}
