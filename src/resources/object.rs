//! One namespaced Kubernetes object owned by one resource instance (a Secret, a
//! SealedSecret): the connection, bounded reads, server-side apply, create-or-import and
//! delete, shared so each resource file only says what its object looks like.

use std::time::Duration;

use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams};

use super::metadata;
use crate::clients::deadline::Deadline;
use crate::clients::kube::{Cluster, KubeError, FIELD_MANAGER};
use crate::framework::diagnostics::Diagnostics;
use crate::framework::resource::Context;
use crate::framework::value::Value;

use crate::provider::{kube_diagnostic, Platform};

pub const READ_TIMEOUT: Duration = Duration::from_secs(60);
pub const APPLY_TIMEOUT: Duration = Duration::from_secs(60);

pub struct NamespacedObject {
    api: Api<DynamicObject>,
    cluster: Cluster,
    kind: String,
    pub namespace: String,
    pub name: String,
}

impl NamespacedObject {
    /// The object named by `state`'s `namespace` and `name`, on the cluster its `cluster`
    /// attribute (or the provider) points at.
    pub async fn connect(platform: &Platform, state: &Value, resource: &ApiResource, diags: &mut Diagnostics) -> Option<Self> {
        let text = |name: &str| state.get_attr(name).and_then(Value::as_str).unwrap_or_default().to_string();
        let (namespace, name) = (text("namespace"), text("name"));
        match platform.cluster(state.get_attr("cluster")).await {
            Ok(cluster) => Some(NamespacedObject {
                api: Api::namespaced_with(cluster.client.clone(), &namespace, resource),
                cluster,
                kind: resource.kind.clone(),
                namespace,
                name,
            }),
            Err(diagnostic) => {
                diags.push(diagnostic);
                None
            }
        }
    }

    /// `Secret "ns/name"`, for messages.
    pub fn describe(&self) -> String {
        format!("{} \"{}/{}\"", self.kind, self.namespace, self.name)
    }

    pub async fn get(&self, ctx: &Context) -> Result<Option<serde_json::Value>, KubeError> {
        let found = Deadline::after(READ_TIMEOUT, ctx.stop.clone()).run(self.cluster.get_opt(&self.api, &self.name)).await?;
        Ok(found.map(to_json))
    }

    /// Server-side applies `desired` (a whole object) and returns the live result.
    pub async fn apply(&self, ctx: &Context, desired: &serde_json::Value) -> Result<serde_json::Value, KubeError> {
        let params = PatchParams::apply(FIELD_MANAGER).force();
        let live = Deadline::after(APPLY_TIMEOUT, ctx.stop.clone()).run(async {
            self.api.patch(&self.name, &params, &Patch::Apply(desired)).await.map_err(|e| self.cluster.error(e))
        })
        .await?;
        Ok(to_json(live))
    }

    /// Creation refuses to silently adopt an object someone else made: that is what import
    /// is for. Returns false (with a diagnostic) when creation must not go on.
    pub async fn check_absent(&self, ctx: &Context, import_id: &str, diags: &mut Diagnostics) -> bool {
        match self.get(ctx).await {
            Ok(None) => true,
            Ok(Some(_)) => {
                diags.error(
                    format!("{} already exists", self.kind),
                    format!(
                        "{} already exists in the cluster. To manage it with Terraform, import it:\n  terraform import <address> {import_id}",
                        self.describe()
                    ),
                );
                false
            }
            Err(e) => {
                diags.push(kube_diagnostic(&format!("Could not create {}", self.describe()), &e));
                false
            }
        }
    }

    /// Deletes the object; already gone counts as success.
    pub async fn delete(&self, ctx: &Context, diags: &mut Diagnostics) {
        let result = Deadline::after(READ_TIMEOUT, ctx.stop.clone()).run(async {
            self.api.delete(&self.name, &DeleteParams::default()).await.map_err(|e| self.cluster.error(e))
        })
        .await;
        match result {
            Ok(_) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => diags.push(kube_diagnostic(&format!("Could not delete {}", self.describe()), &e)),
        }
    }

    /// The live object for an import; `None` after a diagnostic when it cannot be read.
    pub async fn get_for_import(&self, ctx: &Context, diags: &mut Diagnostics) -> Option<serde_json::Value> {
        match self.get(ctx).await {
            Ok(Some(live)) => Some(live),
            Ok(None) => {
                diags.error(
                    format!("Cannot import non-existent {}", self.kind),
                    format!("There is no {} in the cluster.", self.describe()),
                );
                None
            }
            Err(e) => {
                diags.push(kube_diagnostic(&format!("Could not read {}", self.describe()), &e));
                None
            }
        }
    }

    /// Read's common ending: the refreshed state, `None` when gone, the old state on errors.
    pub async fn refresh(
        &self,
        ctx: &Context,
        state: &Value,
        diags: &mut Diagnostics,
        from_live: impl FnOnce(&serde_json::Value) -> Value,
    ) -> Option<Value> {
        match self.get(ctx).await {
            Ok(Some(live)) => Some(from_live(&live)),
            Ok(None) => {
                tracing::info!(object = %self.describe(), "object is gone; removing it from state");
                None
            }
            // Only NotFound means gone: anything else keeps the state and says why.
            Err(e) => {
                diags.push(kube_diagnostic(&format!("Could not read {}", self.describe()), &e));
                Some(state.clone())
            }
        }
    }
}

/// A resource that owns exactly one namespaced object: create, read, update, delete and
/// import are the same for all of them, given how to apply and how to read back.
#[async_trait::async_trait]
pub trait OneObject: Send + Sync {
    async fn object(&self, state: &Value, diags: &mut Diagnostics) -> Option<NamespacedObject>;
    /// Writes the object as planned; returns the new state.
    async fn apply(&self, ctx: &Context, planned: &Value, config: &Value, diags: &mut Diagnostics) -> Option<Value>;
    fn state_from_live(&self, state: &Value, live: &serde_json::Value) -> Value;
    /// The state of an imported object, before [`OneObject::state_from_live`].
    fn adopt(&self, state: Value, live: &serde_json::Value) -> Value;
    fn null_state(&self) -> Value;
}

/// Creation refuses an existing object (see [`NamespacedObject::check_absent`]).
pub async fn create(r: &impl OneObject, ctx: &Context, planned: &Value, config: &Value, diags: &mut Diagnostics) -> Option<Value> {
    let object = r.object(planned, diags).await?;
    let id = format!("{}/{}", object.namespace, object.name);
    if !object.check_absent(ctx, &id, diags).await {
        return None;
    }
    r.apply(ctx, planned, config, diags).await
}

pub async fn read(r: &impl OneObject, ctx: &Context, state: &Value, diags: &mut Diagnostics) -> Option<Value> {
    let Some(object) = r.object(state, diags).await else { return Some(state.clone()) };
    object.refresh(ctx, state, diags, |live| r.state_from_live(state, live)).await
}

pub async fn delete(r: &impl OneObject, ctx: &Context, prior: &Value, diags: &mut Diagnostics) {
    if let Some(object) = r.object(prior, diags).await {
        object.delete(ctx, diags).await;
    }
}

/// Import by `namespace/name`.
pub async fn import(r: &impl OneObject, ctx: &Context, id: &str, diags: &mut Diagnostics) -> Option<Value> {
    let (namespace, name) = parse_import_id(id, diags)?;
    let mut state = r.null_state();
    state.set_attr("namespace", Value::string(namespace));
    state.set_attr("name", Value::string(name));
    let object = r.object(&state, diags).await?;
    let live = object.get_for_import(ctx, diags).await?;
    let adopted = r.adopt(state, &live);
    Some(r.state_from_live(&adopted, &live))
}

fn to_json(object: DynamicObject) -> serde_json::Value {
    serde_json::to_value(object).unwrap_or_default()
}

/// Splits an import id `namespace/name`, checking both parts.
pub fn parse_import_id(id: &str, diags: &mut Diagnostics) -> Option<(String, String)> {
    let problem = match id.split_once('/') {
        Some((namespace, name)) => metadata::dns1123_label_problem(namespace)
            .map(|p| format!("namespace {namespace:?} {p}"))
            .or_else(|| metadata::dns1123_subdomain_problem(name).map(|p| format!("name {name:?} {p}")))
            .map_or(Ok((namespace.to_string(), name.to_string())), Err),
        None => Err("it has no '/'".to_string()),
    };
    match problem {
        Ok(parts) => Some(parts),
        Err(problem) => {
            diags.error("Invalid import id", format!("Import by `namespace/name`; {id:?} is not one: {problem}."));
            None
        }
    }
}

/// The `namespace/name` id of a live object (the import id too).
pub fn live_id(live: &serde_json::Value) -> Value {
    let text = |field: &str| live["metadata"][field].as_str().unwrap_or_default();
    Value::string(format!("{}/{}", text("namespace"), text("name")))
}

/// A string-to-string map from an object's JSON (labels, annotations).
pub fn json_string_map(value: Option<&serde_json::Value>) -> Option<std::collections::BTreeMap<String, String>> {
    value.and_then(|v| v.as_object()).map(|entries| {
        entries.iter().filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string()))).collect()
    })
}

/// Labels and annotations of `metadata` for the keys `state` manages.
pub fn refresh_metadata(state: &mut Value, metadata_json: &serde_json::Value) {
    for key in ["labels", "annotations"] {
        let live = json_string_map(metadata_json.get(key));
        let refreshed = metadata::managed_entries(state.get_attr(key), live.as_ref());
        state.set_attr(key, refreshed);
    }
}

/// On import every non-system label and annotation counts as managed.
pub fn adopt_metadata(state: &mut Value, metadata_json: &serde_json::Value) {
    for key in ["labels", "annotations"] {
        let live = json_string_map(metadata_json.get(key));
        state.set_attr(key, metadata::adoptable_entries(live.as_ref()));
    }
}

/// `metadata` for an apply: name, namespace and the managed labels/annotations.
pub fn desired_metadata(planned: &Value) -> serde_json::Value {
    let mut meta = serde_json::json!({
        "name": planned.get_attr("name").and_then(Value::as_str),
        "namespace": planned.get_attr("namespace").and_then(Value::as_str),
    });
    for key in ["labels", "annotations"] {
        if let Some(map) = metadata::string_map(planned.get_attr(key)) {
            meta[key] = serde_json::json!(map);
        }
    }
    meta
}
