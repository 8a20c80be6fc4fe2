//! `platform_namespace`: a Kubernetes namespace with the labels and annotations it manages.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};

use super::metadata;
use super::owned::{self, Creating, Destroying, Ownership};
use crate::clients::deadline::{Deadline, Progress, WaitError};
use crate::clients::kube::ownership::owner;
use crate::clients::kube::{Cluster, KindInfo, KubeError, FIELD_MANAGER};
use crate::framework::diagnostics::Diagnostics;
use crate::framework::resource::{Context, Plan, Resource};
use crate::framework::schema::{timeouts_block, Attribute, Block, Schema};
use crate::framework::timeouts;
use crate::framework::value::Value;
use crate::platform::{cluster_attribute, kube_diagnostic, validate_cluster_attribute, Platform};

const DEFAULT_CREATE_TIMEOUT: Duration = Duration::from_secs(60);
const DEFAULT_DELETE_TIMEOUT: Duration = Duration::from_secs(300);
const READ_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a plan may spend asking whether a namespace to adopt exists.
const PLAN_READ_TIMEOUT: Duration = Duration::from_secs(10);

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

    /// Server-side applies name, labels, annotations and our owner id; returns the live object.
    async fn apply(
        &self,
        ctx: &Context,
        connection: &(Api<Namespace>, Cluster),
        planned: &Value,
        id: &str,
        timeout: Duration,
        diags: &mut Diagnostics,
    ) -> Option<Namespace> {
        let (api, cluster) = connection;
        let name = planned.get_attr("name").and_then(Value::as_str).unwrap_or_default().to_string();
        let desired = desired_object(planned, id);
        let params = PatchParams::apply(FIELD_MANAGER).force();
        let result = Deadline::after(timeout, ctx.stop.clone()).run(async {
            api.patch(&name, &params, &Patch::Apply(&desired)).await.map_err(|e| cluster.error(e))
        })
        .await;
        match result {
            Ok(namespace) => Some(namespace),
            Err(e) => {
                // The apply may have reached the server all the same (a lost answer): a
                // namespace carrying our id is our own, and the create is done.
                if !e.is_permanent() {
                    if let Ok(Some(live)) = get_bounded(ctx, connection, &name, PLAN_READ_TIMEOUT).await {
                        if owner(&to_json(&live)) == Some(id) {
                            tracing::info!(namespace = %name, error = %e, "apply outcome unknown, but the namespace carries our id");
                            return Some(live);
                        }
                    }
                }
                diags.push(kube_diagnostic(&format!("Could not apply namespace {name:?}"), &e));
                None
            }
        }
    }

    /// Whether the namespace exists, for a create plan with `adopt`; `Err` when the
    /// cluster cannot be asked now (the connection is not known yet, or it is down).
    async fn plan_time_lookup(&self, ctx: &Context, planned: &Value) -> Result<Option<serde_json::Value>, ()> {
        let name = planned.get_attr("name").and_then(Value::as_str).ok_or(())?;
        let cluster = self.platform.cluster(planned.get_attr("cluster")).await.map_err(|_| ())?;
        let connection = (Api::all(cluster.client.clone()), cluster);
        match get_bounded(ctx, &connection, name, PLAN_READ_TIMEOUT).await {
            Ok(found) => Ok(found.map(|n| to_json(&n))),
            Err(e) => {
                tracing::debug!(namespace = %name, error = %e, "cannot tell at plan time whether the namespace exists");
                Err(())
            }
        }
    }
}

fn to_json(namespace: &Namespace) -> serde_json::Value {
    serde_json::to_value(namespace).unwrap_or_default()
}

/// How the API serves namespaces, for the dynamic helpers (release).
fn namespace_kind() -> KindInfo {
    KindInfo { resource: kube::api::ApiResource::erase::<Namespace>(&()), namespaced: false, listable: true }
}

fn desired_object(planned: &Value, id: &str) -> serde_json::Value {
    let mut metadata = serde_json::json!({ "name": planned.get_attr("name").and_then(Value::as_str) });
    for key in ["labels", "annotations"] {
        if let Some(map) = metadata::string_map(planned.get_attr(key)) {
            metadata[key] = serde_json::json!(map);
        }
    }
    owned::stamp(&mut metadata, id);
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
        let mut attributes = vec![
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
        ];
        attributes.extend(owned::attributes("namespace"));
        let mut schema = Schema::new(
            Block::new(attributes)
            .with_block(timeouts_block(&["create", "delete"]))
            .describe(
                "A Kubernetes namespace, created and updated by server-side apply. A namespace that already exists is \
                 only taken over with `adopt = true`, and destroy deletes only a namespace this resource created and \
                 still owns (adopted and imported ones are released). Deleting waits until the namespace is really \
                 gone and, on timeout, says what blocks it.",
            ),
        );
        // Version 1 added owner ids; state of version 0 has none (see `owned`).
        schema.version = 1;
        schema
    }

    fn validate(&self, config: &Value, diags: &mut Diagnostics) {
        metadata::validate_name(config, "name", diags);
        metadata::validate_labels_and_annotations(config, diags);
        timeouts::validate(config, &["create", "delete"], diags);
        owned::validate(config, diags);
        validate_cluster_attribute(config, diags);
    }

    async fn modify_plan(&self, ctx: &Context, plan: &mut Plan, _diags: &mut Diagnostics) {
        let adopt = owned::adopt_requested(&plan.config);
        let lookup = if plan.is_create() && adopt == Some(true) { self.plan_time_lookup(ctx, &plan.planned).await } else { Err(()) };
        owned::plan(&plan.prior, &mut plan.planned, || owned::planned_adopted(adopt, lookup.as_ref().map(Option::as_ref).map_err(|_| ())));
    }

    async fn create(&self, ctx: &Context, planned: &Value, _config: &Value, diags: &mut Diagnostics) -> Option<Value> {
        let timeout = timeouts::timeout(planned, "create", DEFAULT_CREATE_TIMEOUT);
        let name = planned.get_attr("name").and_then(Value::as_str).unwrap_or_default().to_string();
        let connection = self.api(planned, diags).await?;
        let existing = match get_bounded(ctx, &connection, &name, timeout).await {
            Ok(found) => found.map(|n| to_json(&n)),
            Err(e) => {
                diags.push(kube_diagnostic(&format!("Could not create namespace {name:?}"), &e));
                return None;
            }
        };
        // Never take over a namespace someone else made unless the configuration says so.
        let id = owned::id_to_write(planned);
        let adopt = owned::adopt_requested(planned) == Some(true);
        let planned_adopted = planned.get_attr("adopted").and_then(Value::as_bool);
        let describe = format!("Namespace {name:?}");
        let adopted = match owned::creating(&describe, &name, existing.as_ref(), &id, adopt, planned_adopted, diags) {
            Ok(Creating::Adopt) => true,
            Ok(Creating::Create) => planned_adopted.unwrap_or(false),
            Err(diagnostic) => {
                diags.push(diagnostic);
                return None;
            }
        };
        let live = self.apply(ctx, &connection, planned, &id, timeout, diags).await?;
        let mut state = state_from_live(planned, &live);
        owned::record(&mut state, &id, adopted);
        Some(state)
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
        prior: &Value,
        planned: &Value,
        _config: &Value,
        diags: &mut Diagnostics,
    ) -> Option<Value> {
        let timeout = timeouts::timeout(planned, "create", DEFAULT_CREATE_TIMEOUT);
        let name = planned.get_attr("name").and_then(Value::as_str).unwrap_or_default().to_string();
        let connection = self.api(planned, diags).await?;
        let existing = match get_bounded(ctx, &connection, &name, timeout).await {
            Ok(found) => found.map(|n| to_json(&n)),
            Err(e) => {
                diags.push(kube_diagnostic(&format!("Could not update namespace {name:?}"), &e));
                return None;
            }
        };
        if let Err(diagnostic) = owned::updating(&format!("Namespace {name:?}"), existing.as_ref(), &Ownership::of(prior)) {
            diags.push(diagnostic);
            return None;
        }
        let id = owned::id_to_write(planned);
        let live = self.apply(ctx, &connection, planned, &id, timeout, diags).await?;
        let mut state = state_from_live(planned, &live);
        owned::record(&mut state, &id, planned.get_attr("adopted").and_then(Value::as_bool).unwrap_or(false));
        Some(state)
    }

    async fn delete(&self, ctx: &Context, prior: &Value, diags: &mut Diagnostics) {
        let name = prior.get_attr("name").and_then(Value::as_str).unwrap_or_default().to_string();
        let timeout = timeouts::timeout(prior, "delete", DEFAULT_DELETE_TIMEOUT);
        let Some((api, cluster)) = self.api(prior, diags).await else { return };
        let deadline = Deadline::after(timeout, ctx.stop.clone());
        // Only what this resource may delete is deleted (see `owned::destroying`).
        let live = match deadline.run(cluster.get_opt(&api, &name)).await {
            Ok(Some(live)) => to_json(&live),
            Ok(None) => return,
            Err(e) => {
                diags.push(kube_diagnostic(&format!("Could not delete namespace {name:?}"), &e));
                return;
            }
        };
        match owned::destroying(&format!("Namespace {name:?}"), &Ownership::of(prior), &live) {
            Destroying::Delete => {}
            Destroying::Release => {
                if let Err(e) = deadline.run(cluster.release_dynamic(&namespace_kind(), None, &name, &[])).await {
                    diags.push(kube_diagnostic(&format!("Could not release namespace {name:?}"), &e));
                }
                return;
            }
            Destroying::Leave(diagnostic) | Destroying::Refuse(diagnostic) => {
                diags.push(diagnostic);
                return;
            }
        }
        // The very namespace judged above, not one recreated under its name meanwhile.
        let uid = live["metadata"]["uid"].as_str().map(str::to_string);
        let params = DeleteParams { preconditions: Some(Preconditions { uid, resource_version: None }), ..Default::default() };
        let deleted = deadline.run(async { api.delete(&name, &params).await.map_err(|e| cluster.error(e)) });
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
        // Imported means adopted: destroy releases it. Our id is written at the next apply.
        let owner_id = owned::imported_id(&format!("Namespace {id:?}"), &to_json(&live), diags);
        owned::record(&mut state, &owner_id, true);
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
        let object = desired_object(&planned, "id-1");
        assert_eq!(
            object,
            serde_json::json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": {
                "name": "monitoring", "labels": { "tier": "prod" }, "annotations": { "platform.terraform.io/owner": "id-1" } } })
        );
    }
}
