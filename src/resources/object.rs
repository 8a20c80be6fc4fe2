//! One namespaced Kubernetes object owned by one resource instance (a Secret, a
//! SealedSecret): the connection, bounded reads, server-side apply, create (or adopt),
//! import, and delete or release as [`owned`] rules, shared so each resource file only says
//! what its object looks like.

use std::time::Duration;

use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, Preconditions};

use super::metadata;
use super::owned::{self, Creating, Destroying, Ownership};
use crate::clients::deadline::{Deadline, Progress, WaitError};
use crate::clients::kube::ownership::owner;
use crate::clients::kube::{Cluster, KindInfo, KubeError, FIELD_MANAGER};
use crate::framework::diagnostics::Diagnostics;
use crate::framework::resource::{Context, Plan};
use crate::framework::value::Value;

use crate::platform::{kube_diagnostic, Platform};

pub const READ_TIMEOUT: Duration = Duration::from_secs(60);
pub const APPLY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a plan may spend asking whether an object to adopt exists; also how long an
/// apply whose answer was lost may spend looking whether it happened.
const CHECK_TIMEOUT: Duration = Duration::from_secs(10);

pub struct NamespacedObject {
    api: Api<DynamicObject>,
    cluster: Cluster,
    resource: ApiResource,
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
                resource: resource.clone(),
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
        self.get_within(ctx, READ_TIMEOUT).await
    }

    async fn get_within(&self, ctx: &Context, timeout: Duration) -> Result<Option<serde_json::Value>, KubeError> {
        let found = Deadline::after(timeout, ctx.stop.clone()).run(self.cluster.get_opt(&self.api, &self.name)).await?;
        Ok(found.map(to_json))
    }

    /// Server-side applies `desired` (a whole object) carrying the owner id `owner_id`, and
    /// returns the live result.
    pub async fn apply(&self, ctx: &Context, desired: &serde_json::Value, owner_id: &str) -> Result<serde_json::Value, KubeError> {
        let mut desired = desired.clone();
        owned::stamp(&mut desired["metadata"], owner_id);
        let params = PatchParams::apply(FIELD_MANAGER).force();
        let result = Deadline::after(APPLY_TIMEOUT, ctx.stop.clone()).run(async {
            self.api.patch(&self.name, &params, &Patch::Apply(&desired)).await.map_err(|e| self.cluster.error(e))
        })
        .await;
        match result {
            Ok(live) => Ok(to_json(live)),
            // The apply may have reached the server all the same (a lost answer): an
            // object carrying our id is our own, and the apply is done.
            Err(e) if !e.is_permanent() => match self.get_within(ctx, CHECK_TIMEOUT).await {
                Ok(Some(live)) if owner(&live) == Some(owner_id) => {
                    tracing::info!(object = %self.describe(), error = %e, "apply outcome unknown, but the object carries our id");
                    Ok(live)
                }
                _ => Err(e),
            },
            Err(e) => Err(e),
        }
    }

    /// Creates `desired` with a plain create: an object of that name that exists already is
    /// an error (409), never taken over. Returns the created object.
    pub async fn create(&self, ctx: &Context, desired: &serde_json::Value) -> Result<serde_json::Value, KubeError> {
        let object: DynamicObject = serde_json::from_value(desired.clone())
            .map_err(|e| KubeError::Config(format!("{}: {e}", self.describe())))?;
        let params = kube::api::PostParams { field_manager: Some(FIELD_MANAGER.to_string()), ..Default::default() };
        Deadline::after(APPLY_TIMEOUT, ctx.stop.clone())
            .run(async { self.api.create(&params, &object).await.map_err(|e| self.cluster.error(e)) })
            .await
            .map(to_json)
    }

    /// Deletes the live object `live` (and not one made again under its name meanwhile);
    /// already gone counts as success.
    pub async fn delete(&self, ctx: &Context, live: &serde_json::Value, diags: &mut Diagnostics) {
        let uid = live["metadata"]["uid"].as_str().map(str::to_string);
        let params = DeleteParams { preconditions: Some(Preconditions { uid, resource_version: None }), ..Default::default() };
        let result = Deadline::after(READ_TIMEOUT, ctx.stop.clone()).run(async {
            self.api.delete(&self.name, &params).await.map_err(|e| self.cluster.error(e))
        })
        .await;
        match result {
            Ok(_) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => diags.push(kube_diagnostic(&format!("Could not delete {}", self.describe()), &e)),
        }
    }

    /// Removes our owner annotation and field ownership; the object stays.
    async fn release(&self, ctx: &Context, diags: &mut Diagnostics) {
        let info = KindInfo { resource: self.resource.clone(), namespaced: true, listable: true };
        let result = Deadline::after(READ_TIMEOUT, ctx.stop.clone())
            .run(self.cluster.release_dynamic(&info, Some(&self.namespace), &self.name, &[]))
            .await;
        if let Err(e) = result {
            diags.push(kube_diagnostic(&format!("Could not release {}", self.describe()), &e));
        }
    }

    /// Reads the object every `interval` until `judge` says it is done (or will never be),
    /// within `timeout` and until Ctrl-C; returns the object as last seen. Read failures
    /// count as "not yet" and are quoted if the wait runs out.
    pub async fn wait(
        &self,
        ctx: &Context,
        timeout: Duration,
        interval: Duration,
        what: &str,
        judge: impl Fn(Option<&serde_json::Value>) -> Progress,
    ) -> Result<Option<serde_json::Value>, WaitError> {
        let last = std::sync::Mutex::new(None);
        Deadline::after(timeout, ctx.stop.clone())
            .poll(what, interval, || async {
                let live = self.cluster.get_opt(&self.api, &self.name).await?.map(to_json);
                let progress = judge(live.as_ref());
                *last.lock().expect("last seen lock") = live;
                Ok::<_, KubeError>(progress)
            })
            .await?;
        Ok(last.into_inner().expect("last seen lock"))
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
    fn import_state(&self, state: Value, live: &serde_json::Value) -> Value;
    fn null_state(&self) -> Value;
}

/// The ownership part of a plan (see [`owned::plan`]): with `adopt`, a create plan asks the
/// cluster, when it can be reached now, whether the object exists.
pub async fn plan_ownership(r: &impl OneObject, ctx: &Context, plan: &mut Plan) {
    let adopt = owned::adopt_requested(&plan.config);
    let lookup = if plan.is_create() && adopt == Some(true) { plan_time_lookup(r, ctx, &plan.planned).await } else { Err(()) };
    owned::plan(&plan.prior, &mut plan.planned, || owned::planned_adopted(adopt, lookup.as_ref().map(Option::as_ref).map_err(|_| ())));
}

/// The live object, or `Err` when the cluster cannot be asked now (the name or the
/// connection is not known yet, or the cluster is down): the plan then leaves `adopted` unknown.
async fn plan_time_lookup(r: &impl OneObject, ctx: &Context, planned: &Value) -> Result<Option<serde_json::Value>, ()> {
    let known = ["namespace", "name", "cluster"].iter().all(|a| planned.get_attr(a).is_none_or(Value::is_wholly_known));
    if !known {
        return Err(());
    }
    let object = r.object(planned, &mut Diagnostics::new()).await.ok_or(())?;
    object.get_within(ctx, CHECK_TIMEOUT).await.map_err(|e| {
        tracing::debug!(object = %object.describe(), error = %e, "cannot tell at plan time whether the object exists");
    })
}

/// Create: a new object, or with `adopt` an existing one; an existing object is refused
/// otherwise (see [`owned::creating`]).
pub async fn create(r: &impl OneObject, ctx: &Context, planned: &Value, config: &Value, diags: &mut Diagnostics) -> Option<Value> {
    let object = r.object(planned, diags).await?;
    let existing = match object.get(ctx).await {
        Ok(found) => found,
        Err(e) => {
            diags.push(kube_diagnostic(&format!("Could not create {}", object.describe()), &e));
            return None;
        }
    };
    let id = owned::id_to_write(planned);
    let adopt = owned::adopt_requested(planned) == Some(true);
    let planned_adopted = planned.get_attr("adopted").and_then(Value::as_bool);
    let import_id = format!("{}/{}", object.namespace, object.name);
    let adopted = match owned::creating(&object.describe(), &import_id, existing.as_ref(), &id, adopt, planned_adopted, diags) {
        Ok(Creating::Adopt) => true,
        Ok(Creating::Create) => planned_adopted.unwrap_or(false),
        Err(diagnostic) => {
            diags.push(diagnostic);
            return None;
        }
    };
    let mut planned = planned.clone();
    owned::record(&mut planned, &id, adopted);
    r.apply(ctx, &planned, config, diags).await
}

/// Update: refused when another instance has taken the object over; otherwise applied,
/// writing our owner id (a new one for state from before owner ids).
pub async fn update(
    r: &impl OneObject,
    ctx: &Context,
    prior: &Value,
    planned: &Value,
    config: &Value,
    diags: &mut Diagnostics,
) -> Option<Value> {
    let object = r.object(planned, diags).await?;
    let existing = match object.get(ctx).await {
        Ok(found) => found,
        Err(e) => {
            diags.push(kube_diagnostic(&format!("Could not update {}", object.describe()), &e));
            return None;
        }
    };
    if let Err(diagnostic) = owned::updating(&object.describe(), existing.as_ref(), &Ownership::of(prior)) {
        diags.push(diagnostic);
        return None;
    }
    let mut planned = planned.clone();
    let adopted = planned.get_attr("adopted").and_then(Value::as_bool).unwrap_or(false);
    let id = owned::id_to_write(&planned);
    owned::record(&mut planned, &id, adopted);
    r.apply(ctx, &planned, config, diags).await
}

pub async fn read(r: &impl OneObject, ctx: &Context, state: &Value, diags: &mut Diagnostics) -> Option<Value> {
    let Some(object) = r.object(state, diags).await else { return Some(state.clone()) };
    object.refresh(ctx, state, diags, |live| r.state_from_live(state, live)).await
}

/// Destroy: deletes, releases or leaves the object as [`owned::destroying`] rules.
pub async fn delete(r: &impl OneObject, ctx: &Context, prior: &Value, diags: &mut Diagnostics) {
    let Some(object) = r.object(prior, diags).await else { return };
    let live = match object.get(ctx).await {
        Ok(Some(live)) => live,
        Ok(None) => return,
        Err(e) => {
            diags.push(kube_diagnostic(&format!("Could not delete {}", object.describe()), &e));
            return;
        }
    };
    match owned::destroying(&object.describe(), &Ownership::of(prior), &live) {
        Destroying::Delete => object.delete(ctx, &live, diags).await,
        Destroying::Release => object.release(ctx, diags).await,
        Destroying::Leave(diagnostic) | Destroying::Refuse(diagnostic) => diags.push(diagnostic),
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
    // Imported means adopted: destroy releases it. Our id is written at the next apply.
    let owner_id = owned::imported_id(&object.describe(), &live, diags);
    owned::record(&mut state, &owner_id, true);
    let imported = r.import_state(state, &live);
    Some(r.state_from_live(&imported, &live))
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
