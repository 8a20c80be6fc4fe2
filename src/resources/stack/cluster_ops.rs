//! What a stack does to a cluster when it applies: components level by level (objects
//! concurrently, CRDs first and Established before their custom resources), each object
//! claimed by the ownership rules of `claims` before it is written, waits for what must be
//! ready, and the inventory refreshed with one list per kind and namespace. Letting go of
//! objects (prune, destroy) is in `teardown`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use futures::future::{BoxFuture, FutureExt};
use futures::stream::{self, StreamExt};
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, ListParams};

use super::claims::{self, Claim, Claimant};
use super::config::Component;
use super::flux;
use super::inventory::{self, Entry, ObjectKey};
use super::manifests::{self, Manifest, COMPONENT_LABEL, STACK_LABEL};
use super::readiness::{self, WaitFor};
use super::release_health;
use crate::clients::deadline::{Deadline, Interrupted, Progress};
use crate::clients::kube::ownership::{self, Standing, OWNER_ANNOTATION};
use crate::clients::kube::{fields, Cluster, KindInfo, KubeError, FIELD_MANAGER};

/// Objects applied or deleted at once.
pub(super) const CONCURRENCY: usize = 16;
pub(super) const POLL: Duration = Duration::from_millis(500);
/// How long a kind may stay unknown after its CRD is Established (discovery lags a little).
const DISCOVERY_GRACE: Duration = Duration::from_secs(30);


pub struct StackOps<'a> {
    pub cluster: &'a Cluster,
    pub stack: &'a str,
    /// The operation's budget and Terraform's stop signal: every wait ends with it.
    pub deadline: Deadline,
    pub claimant: Claimant<'a>,
    /// Take over fields other managers own instead of failing on conflicts.
    pub force_conflicts: bool,
    /// Every listable kind, discovered once per operation (a teardown asks for each namespace).
    kinds: tokio::sync::OnceCell<Vec<KindInfo>>,
}

pub use super::errors::OpError;

/// One object written by an apply.
#[derive(Debug, Clone)]
pub struct Applied {
    /// Digest of the fields we own, or [`Entry::Uncertain`].
    pub entry: Entry,
    pub adopted: bool,
    /// The object's resourceVersion after our write (not kept in state).
    pub resource_version: String,
    /// Paths of our fields the write changed (an existing object's only).
    pub changes: Vec<String>,
}

/// Why one object failed, and the object itself when the write may have happened (its
/// outcome is then unknown, and it is recorded so that nothing we wrote is forgotten).
struct ObjectFailure {
    uncertain: Option<Box<ObjectKey>>,
    error: OpError,
}

impl ObjectFailure {
    fn refused(error: OpError) -> Self {
        ObjectFailure { uncertain: None, error }
    }
}

impl From<Interrupted> for ObjectFailure {
    fn from(e: Interrupted) -> Self {
        ObjectFailure::refused(e.into())
    }
}

impl<'a> StackOps<'a> {
    /// Operations that keep fields other managers own as they are (all but apply's choice).
    pub fn new(cluster: &'a Cluster, stack: &'a str, deadline: Deadline, claimant: Claimant<'a>) -> Self {
        StackOps { cluster, stack, deadline, claimant, force_conflicts: false, kinds: tokio::sync::OnceCell::new() }
    }
}

impl StackOps<'_> {
    pub(super) fn kube(&self, what: &str, e: KubeError) -> OpError {
        OpError::kube(what, e)
    }

    /// Every kind the cluster serves that can be listed, discovered once per operation.
    pub(super) async fn listable_kinds(&self) -> Result<&[KindInfo], OpError> {
        let kinds = self.kinds.get_or_try_init(|| self.cluster.listable_kinds()).await.map_err(|e| self.kube("discovery", e))?;
        Ok(kinds)
    }

    /// Discovery for one manifest, waiting a little when a CRD of this stack defines it.
    async fn kind_of(&self, manifest: &Manifest, defined_here: bool) -> Result<KindInfo, OpError> {
        let started = Instant::now();
        loop {
            match self.cluster.kind(&manifest.api_version, &manifest.kind).await {
                Ok(Some(info)) => return Ok(info),
                Ok(None) if defined_here && started.elapsed() < DISCOVERY_GRACE => self.deadline.sleep(POLL).await?,
                // A group whose CRD was just made may be listed before its version answers.
                Err(e) if defined_here && gone_kind(&e) && started.elapsed() < DISCOVERY_GRACE => self.deadline.sleep(POLL).await?,
                Ok(None) => return Err(unknown_kind(manifest)),
                Err(e) => return Err(self.kube(&format!("discovering {} {}", manifest.api_version, manifest.kind), e)),
            }
        }
    }

    /// Applies one component and waits for it; returns the inventory entries of what was
    /// applied (or may have been), even when a later step failed.
    pub async fn apply_component(
        &self,
        component: &Component,
        objects: Vec<Manifest>,
        crd_kinds: &BTreeSet<(String, String)>,
        runs_workloads: bool,
    ) -> (BTreeMap<ObjectKey, Applied>, Vec<OpError>) {
        let mut applied = BTreeMap::new();
        let (foundations, rest): (Vec<Manifest>, Vec<Manifest>) =
            objects.into_iter().partition(|m| inventory::is_foundation(&m.api_version, &m.kind));
        let crds: Vec<Manifest> = foundations.iter().filter(|m| m.is_crd()).cloned().collect();
        let mut errors = self.apply_all(component, foundations, crd_kinds, &mut applied).await;
        if errors.is_empty() {
            for crd in &crds {
                if let Err(e) = self.wait_ready(component, crd).await {
                    errors.push(e);
                }
            }
        }
        if errors.is_empty() {
            // Values Secrets go first: their versions mark the HelmReleases that read them,
            // so that a changed sensitive value rolls the release at once.
            let referenced = values_secrets(&rest);
            let (secrets, mut rest): (Vec<Manifest>, Vec<Manifest>) =
                rest.into_iter().partition(|m| m.kind == "Secret" && referenced.contains(&(m.namespace.clone(), m.name.clone())));
            let mut versions = BTreeMap::new();
            if !secrets.is_empty() {
                let keys: Vec<ObjectKey> = secrets.iter().map(|m| ObjectKey::of(&component.name, m)).collect();
                errors = self.apply_all(component, secrets, crd_kinds, &mut applied).await;
                if !errors.is_empty() {
                    return (applied, errors);
                }
                for key in keys {
                    if let Some(entry) = applied.get(&key) {
                        versions.insert((key.namespace.clone(), key.name.clone()), entry.resource_version.clone());
                    }
                }
                for m in rest.iter_mut().filter(|m| m.kind == "HelmRelease") {
                    mark_values_version(m, &versions);
                }
            }
            let waits: Vec<Manifest> =
                rest.iter().filter(|m| readiness::needs_wait(m, component.wait, runs_workloads)).cloned().collect();
            let all = rest.clone();
            errors = self.apply_all(component, rest, crd_kinds, &mut applied).await;
            if errors.is_empty() {
                let results = concurrently(waits.iter().map(|m| self.wait_ready(component, m).boxed()).collect()).await;
                errors = results.into_iter().filter_map(Result::err).collect();
            }
            if errors.is_empty() {
                let chosen: Vec<(&WaitFor, &Manifest)> =
                    component.wait_for.iter().flat_map(|w| all.iter().filter(|m| w.selects(m)).map(move |m| (w, m))).collect();
                let results = concurrently(chosen.into_iter().map(|(w, m)| self.wait_for(component, w, m).boxed()).collect()).await;
                errors = results.into_iter().filter_map(Result::err).collect();
                for w in component.wait_for.iter().filter(|w| !all.iter().any(|m| w.selects(m))) {
                    errors.push(OpError::WaitSelectsNothing(w.describe()));
                }
            }
        }
        (applied, errors)
    }

    async fn apply_all(
        &self,
        component: &Component,
        objects: Vec<Manifest>,
        crd_kinds: &BTreeSet<(String, String)>,
        applied: &mut BTreeMap<ObjectKey, Applied>,
    ) -> Vec<OpError> {
        let work = objects
            .into_iter()
            .map(|m| {
                let defined_here = crd_kinds.contains(&(m.group().to_string(), m.kind.clone()));
                self.deadline.within(self.apply_one(component, m, defined_here)).boxed()
            })
            .collect();
        let results = concurrently(work).await;
        let mut errors = Vec::new();
        for result in results {
            match result {
                Ok((key, entry)) => {
                    applied.insert(key, entry);
                }
                Err(failure) => {
                    if let Some(key) = failure.uncertain {
                        applied.insert(
                            *key,
                            Applied { entry: Entry::Uncertain, adopted: false, resource_version: String::new(), changes: Vec::new() },
                        );
                    }
                    errors.push(failure.error);
                }
            }
        }
        errors
    }

    /// Puts `m` where it will live: objects of namespaced kinds in the component's namespace
    /// unless they name one; of cluster-scoped kinds in none (the API server would refuse one).
    pub(super) fn place(component: &Component, namespaced: bool, m: &mut Manifest) {
        if namespaced {
            manifests::default_namespace(m, component.namespace.as_deref().unwrap_or("default"));
        } else {
            m.namespace = None;
            if let Some(meta) = m.object.get_mut("metadata").and_then(|v| v.as_object_mut()) {
                meta.remove("namespace");
            }
        }
    }

    /// The object `key` names as the cluster has it now, if it exists.
    pub(super) async fn read_live(&self, info: &KindInfo, key: &ObjectKey) -> Result<Option<serde_json::Value>, OpError> {
        self.cluster.get_dynamic(info, key.namespace.as_deref(), &key.name).await.map_err(|e| self.kube(&format!("reading {}", describe(key)), e))
    }

    async fn apply_one(&self, component: &Component, mut m: Manifest, defined_here: bool) -> Result<(ObjectKey, Applied), ObjectFailure> {
        let info = self.kind_of(&m, defined_here).await.map_err(ObjectFailure::refused)?;
        Self::place(component, info.namespaced, &mut m);
        let key = ObjectKey::of(&component.name, &m);
        let namespace = m.namespace.clone();
        let live = self.read_live(&info, &key).await.map_err(ObjectFailure::refused)?;
        let claim = claims::claim(&self.claimant, &key.owned_identity(), live.as_ref(), component.adopt)
            .map_err(|refusal| ObjectFailure::refused(OpError::Refused { object: describe(&key), refusal }))?;
        let adopted = matches!(claim, Claim::Adopt | Claim::Ours { adopted: true });
        if matches!(claim, Claim::Adopt) {
            tracing::info!(object = %key, "adopting an existing object");
        }
        self.prepare_write(component, &mut m, live.is_some());
        if let Some(live) = live.as_ref().filter(|_| m.kind == "HelmRelease") {
            self.repair_release(&info, &key, live).await?;
        }
        tracing::debug!(object = %key, "server-side apply");
        let written = loop {
            match self.cluster.apply_owned(&info, namespace.as_deref(), &m.name, &m.object, self.force_conflicts).await {
                Ok(written) => break written,
                // Its namespace is still being made by a component of the same level.
                Err(e) if namespace_missing(&e) && !self.deadline.is_cancelled() => {
                    tracing::debug!(object = %key, "namespace not there yet; retrying");
                    self.deadline.sleep(POLL).await?;
                }
                Err(e) => {
                    let error = if e.is_conflict() {
                        OpError::Conflict { object: describe(&key), component: component.name.clone(), source: e }
                    } else {
                        OpError::kube(format!("applying {}", describe(&key)), e)
                    };
                    let refused = error.surely_not_written();
                    // Refused by the server: nothing was written. Otherwise it may have been.
                    return Err(ObjectFailure { uncertain: (!refused).then(|| Box::new(key.clone())), error });
                }
            }
        };
        let (digest, changes) = recorded(component, live.as_ref(), &written);
        let resource_version = written["metadata"]["resourceVersion"].as_str().unwrap_or_default().to_string();
        Ok((key, Applied { entry: Entry::Digest(digest), adopted, resource_version, changes }))
    }

    /// `m` as this instance writes it: with our owner annotation and, over an existing
    /// object, without the component's `ignore_fields` (those are left to other managers).
    pub(super) fn prepare_write(&self, component: &Component, m: &mut Manifest, exists: bool) {
        annotate_owner(&mut m.object, self.claimant.id);
        if exists {
            for path in &component.ignore_fields {
                fields::remove_path(&mut m.object, path);
            }
        }
    }

    /// Repairs a HelmRelease's health before it is written again (see `release_health`).
    async fn repair_release(&self, info: &KindInfo, key: &ObjectKey, live: &serde_json::Value) -> Result<(), ObjectFailure> {
        let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
        let Some(patch) = release_health::repair_patch(live, &now) else { return Ok(()) };
        tracing::info!(object = %key, "repairing the release's health (resume, foreign values, reconcile request)");
        self.cluster.repair_dynamic(info, key.namespace.as_deref(), &key.name, &patch).await.map(drop).map_err(|e| ObjectFailure {
            uncertain: Some(Box::new(key.clone())),
            error: self.kube(&format!("repairing {}", describe(key)), e),
        })
    }

    /// Waits until `m` is ready (see `readiness`), failed, the deadline or Ctrl-C.
    async fn wait_ready(&self, component: &Component, m: &Manifest) -> Result<(), OpError> {
        let goal = match m.kind.as_str() {
            "HelmRelease" => " to be Ready",
            "CustomResourceDefinition" => " to be Established",
            "Job" => " to complete",
            _ => " to be rolled out",
        };
        self.wait_until(component, m, goal, |live| readiness::progress(&m.kind, live)).await
    }

    /// Waits until a `wait_for` holds for `m`.
    async fn wait_for(&self, component: &Component, wait: &WaitFor, m: &Manifest) -> Result<(), OpError> {
        self.wait_until(component, m, &format!(": {}", wait.describe()), |live| wait.progress(live)).await
    }

    /// Polls `m` where the component puts it until `judge` says done or failed; messages
    /// read "<Kind> <namespace>/<name><goal>".
    async fn wait_until(
        &self,
        component: &Component,
        m: &Manifest,
        goal: &str,
        judge: impl Fn(&serde_json::Value) -> Progress + Sync,
    ) -> Result<(), OpError> {
        let info = self.kind_of(m, false).await?;
        let mut placed = m.clone();
        Self::place(component, info.namespaced, &mut placed);
        let namespace = placed.namespace.clone();
        let what = match &namespace {
            Some(ns) => format!("{} {ns}/{}{goal}", m.kind, m.name),
            None => format!("{} {}{goal}", m.kind, m.name),
        };
        tracing::info!("waiting for {what}");
        self.deadline
            .poll(&what, POLL, || async {
                let live = self.cluster.get_dynamic(&info, namespace.as_deref(), &m.name).await?;
                Ok::<_, KubeError>(live.as_ref().map_or_else(|| Progress::Pending("not found".into()), &judge))
            })
            .await
            .map_err(OpError::from)
    }

    /// Whether pods can run at all: a control plane without nodes never rolls anything out.
    pub async fn runs_workloads(&self) -> bool {
        let nodes: Api<Node> = Api::all(self.cluster.client.clone());
        match nodes.list(&ListParams::default().limit(1)).await {
            Ok(list) => !list.items.is_empty(),
            Err(e) => {
                tracing::warn!(error = %e, "cannot list nodes; not waiting for rollouts");
                false
            }
        }
    }

    /// Fresh digests for `entries` (one list per kind and namespace): unchanged entries keep
    /// their digest, others become [`Entry::Changed`] or [`Entry::Deleted`]. An object that now carries
    /// another instance's id counts as deleted: it is no longer ours.
    /// `ignored`: each component's `ignore_fields`, left out of the digests.
    pub async fn refresh(
        &self,
        entries: &BTreeMap<String, Entry>,
        ignored: &BTreeMap<String, Vec<Vec<String>>>,
    ) -> Result<BTreeMap<String, Entry>, OpError> {
        let mut groups: BTreeMap<ListScope, Vec<(String, ObjectKey)>> = BTreeMap::new();
        for text in entries.keys() {
            let Ok(key) = text.parse::<ObjectKey>() else { continue };
            groups
                .entry((key.api_version.clone(), key.kind.clone(), key.namespace.clone()))
                .or_default()
                .push((text.clone(), key));
        }
        let selector = format!("{STACK_LABEL}={}", self.stack);
        let work = groups.into_iter().map(|((api_version, kind, namespace), keys)| {
            let selector = selector.clone();
            async move {
                let info = self.cluster.kind(&api_version, &kind).await.map_err(|e| self.kube("discovery", e))?;
                let live: BTreeMap<String, serde_json::Value> = match info {
                    Some(info) => self
                        .cluster
                        .list_dynamic(&info, namespace.as_deref(), &selector)
                        .await
                        .map_err(|e| self.kube(&format!("listing {kind} objects"), e))?
                        .into_iter()
                        .filter_map(|o| Some((o["metadata"]["name"].as_str()?.to_string(), o)))
                        .collect(),
                    None => BTreeMap::new(),
                };
                Ok::<_, OpError>((keys, live))
            }
            .boxed()
        });
        let lists = concurrently(work.collect()).await;
        let mut refreshed = BTreeMap::new();
        for result in lists {
            let (keys, live) = result?;
            for (text, key) in keys {
                let stored = &entries[&text];
                let value = match live.get(&key.name) {
                    Some(object) if matches!(ownership::standing(object, self.claimant.id), Standing::OtherInstance(_)) => {
                        Entry::Deleted
                    }
                    None => Entry::Deleted,
                    Some(object) => match (fields::owned_digest_except(object, FIELD_MANAGER, ignored.get(&key.component).map_or(&[], Vec::as_slice)), stored) {
                        (Some(digest), Entry::Digest(stored)) if &digest == stored => {
                            let health = (key.kind == "HelmRelease").then(|| release_health::drift(object)).flatten();
                            health.unwrap_or(Entry::Digest(digest))
                        }
                        _ => Entry::Changed,
                    },
                };
                refreshed.insert(text, value);
            }
        }
        Ok(refreshed)
    }

    /// Every object in the cluster labelled with this stack's name, with its owner id (for
    /// import, and to refuse a second stack of the same name). An object served under two
    /// API groups (Ingress under `extensions` too, on old clusters) is counted once.
    pub async fn labelled_objects(&self) -> Result<Vec<LabelledObject>, OpError> {
        let selector = format!("{STACK_LABEL}={}", self.stack);
        let kinds = self.listable_kinds().await?;
        let work = kinds
            .iter()
            .map(|info| {
                let selector = &selector;
                async move { (info, self.cluster.list_dynamic(info, None, selector).await) }.boxed()
            })
            .collect();
        // Results arrive in completion order: each carries its kind.
        let lists = concurrently(work).await;
        let mut by_uid: BTreeMap<String, LabelledObject> = BTreeMap::new();
        for (info, list) in lists {
            let list = match list {
                Ok(list) => list,
                // Kinds we may not list cannot hold objects we applied; a kind that went away
                // since discovery (its CRD deleted) holds nothing any more.
                Err(e) if forbidden(&e) || gone_kind(&e) => continue,
                Err(e) => return Err(self.kube(&format!("listing {} objects", info.resource.kind), e)),
            };
            for object in list {
                let meta = &object["metadata"];
                let key = ObjectKey {
                    component: meta["labels"][COMPONENT_LABEL].as_str().unwrap_or("imported").to_string(),
                    api_version: info.resource.api_version.clone(),
                    kind: info.resource.kind.clone(),
                    namespace: meta["namespace"].as_str().map(str::to_string),
                    name: meta["name"].as_str().unwrap_or_default().to_string(),
                };
                let digest = fields::owned_digest(&object, FIELD_MANAGER).map_or(Entry::Changed, Entry::Digest);
                let owner = ownership::owner(&object).map(str::to_string);
                let uid = meta["uid"].as_str().unwrap_or_default().to_string();
                let keep_existing = by_uid.get(&uid).is_some_and(|existing| existing.key.group() != "extensions");
                if !keep_existing {
                    by_uid.insert(uid, LabelledObject { key, digest, owner });
                }
            }
        }
        Ok(by_uid.into_values().collect())
    }
}

/// Writes the stack's OCIRepositories at `v1` where it is served (see
/// [`flux::oci_repository_api`]): by the OCIRepository CRD among `rendered` when the stack
/// applies one, else by the cluster.
pub(super) async fn settle_oci_repository_api(cluster: &Cluster, rendered: &mut [Vec<Manifest>]) -> Result<(), KubeError> {
    let is_oci = |m: &Manifest| m.kind == flux::OCI_REPOSITORY_KIND && m.api_version == flux::OCI_REPOSITORY_API;
    if !rendered.iter().flatten().any(is_oci) {
        return Ok(());
    }
    let from_crd = rendered.iter().flatten().filter(|m| m.is_crd()).find_map(|m| flux::crd_serves_oci_v1(&m.object));
    let served_v1 = match from_crd {
        Some(served) => served,
        None => cluster.kind(flux::OCI_REPOSITORY_API_V1, flux::OCI_REPOSITORY_KIND).await?.is_some(),
    };
    let api_version = flux::oci_repository_api(served_v1);
    for m in rendered.iter_mut().flatten().filter(|m| is_oci(m)) {
        m.api_version = api_version.to_string();
        m.object["apiVersion"] = serde_json::Value::String(api_version.to_string());
    }
    Ok(())
}

/// The API server's NotFound for the namespace an object goes into.
pub(super) fn namespace_missing(e: &KubeError) -> bool {
    matches!(e, KubeError::NotFound { resource, .. } if resource == "namespaces")
}

pub(super) fn gone_kind(e: &KubeError) -> bool {
    matches!(e, KubeError::Api { code: 404, .. })
}

pub(super) fn forbidden(e: &KubeError) -> bool {
    matches!(e, KubeError::Forbidden { .. })
}

/// An object found by the stack's label.
#[derive(Debug, Clone)]
pub struct LabelledObject {
    pub key: ObjectKey,
    pub digest: Entry,
    pub owner: Option<String>,
}

/// The annotation on a HelmRelease that asks Flux to reconcile it now, valued with the
/// resourceVersions of the Secrets its values come from: it changes exactly when they do (no
/// fingerprint of the values themselves), so new sensitive values roll the release at once
/// rather than at Flux's next interval.
const VALUES_VERSION_ANNOTATION: &str = flux::RECONCILE_REQUEST;

/// (namespace, name) of the Secrets HelmReleases among `objects` take values from.
pub(super) fn values_secrets(objects: &[Manifest]) -> BTreeSet<(Option<String>, String)> {
    objects
        .iter()
        .filter(|m| m.kind == "HelmRelease")
        .flat_map(|m| {
            let namespace = m.namespace.clone();
            m.object["spec"]["valuesFrom"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|r| r["kind"] == "Secret")
                .filter_map(move |r| Some((namespace.clone(), r["name"].as_str()?.to_string())))
        })
        .collect()
}

/// Writes [`VALUES_VERSION_ANNOTATION`] on a HelmRelease from its values Secrets' versions.
pub(super) fn mark_values_version(release: &mut Manifest, versions: &BTreeMap<(Option<String>, String), String>) {
    let mut mine: Vec<String> = values_secrets(std::slice::from_ref(release))
        .into_iter()
        .filter_map(|secret| versions.get(&secret).map(|v| format!("{}={v}", secret.1)))
        .collect();
    if mine.is_empty() {
        return;
    }
    mine.sort();
    let Some(metadata) = release.object.get_mut("metadata").and_then(|m| m.as_object_mut()) else { return };
    let annotations = metadata.entry("annotations").or_insert_with(|| serde_json::json!({}));
    if let Some(annotations) = annotations.as_object_mut() {
        annotations.insert(VALUES_VERSION_ANNOTATION.into(), serde_json::Value::String(mine.join(",")));
    }
}

/// What the inventory records of a write that left `written`: the digest of the fields we own
/// (the component's `ignore_fields` aside), and the paths of ours it changed in `live`.
pub(super) fn recorded(component: &Component, live: Option<&serde_json::Value>, written: &serde_json::Value) -> (String, Vec<String>) {
    let digest = fields::owned_digest_except(written, FIELD_MANAGER, &component.ignore_fields)
        .unwrap_or_else(|| fields::digest(&serde_json::Value::Null));
    (digest, fields::owned_changes(live, written, FIELD_MANAGER, &component.ignore_fields))
}

/// Writes the owner annotation into an object about to be applied.
fn annotate_owner(object: &mut serde_json::Value, id: &str) {
    let Some(metadata) = object.get_mut("metadata").and_then(|m| m.as_object_mut()) else { return };
    let annotations = metadata.entry("annotations").or_insert_with(|| serde_json::json!({}));
    if !annotations.is_object() {
        *annotations = serde_json::json!({});
    }
    annotations[OWNER_ANNOTATION] = serde_json::Value::String(id.to_string());
}

/// Runs `work` at most [`CONCURRENCY`] at a time. (Boxed: unboxed closures over borrowed
/// state trip the compiler's Send inference inside async traits.)
pub(super) async fn concurrently<'a, T: Send + 'a>(work: Vec<BoxFuture<'a, T>>) -> Vec<T> {
    stream::iter(work).buffer_unordered(CONCURRENCY).collect().await
}

/// One list call of a refresh: API version, kind, namespace (none: cluster-scoped).
type ListScope = (String, String, Option<String>);

fn unknown_kind(m: &Manifest) -> OpError {
    let (api_version, kind) = (m.api_version.clone(), m.kind.clone());
    if api_version.starts_with("helm.toolkit.fluxcd.io/") || api_version.starts_with("source.toolkit.fluxcd.io/") {
        OpError::FluxMissing { api_version, kind }
    } else {
        OpError::KindMissing { api_version, kind, document: m.document_index }
    }
}

pub fn describe(key: &ObjectKey) -> String {
    match &key.namespace {
        Some(ns) => format!("{} {ns}/{}", key.kind, key.name),
        None => format!("{} {}", key.kind, key.name),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn owner_annotation_is_added_beside_the_users() {
        let mut object = json!({"metadata": {"name": "a", "annotations": {"note": "x"}}});
        annotate_owner(&mut object, "id-1");
        assert_eq!(object["metadata"]["annotations"], json!({"note": "x", OWNER_ANNOTATION: "id-1"}));
        let mut bare = json!({"metadata": {"name": "a"}});
        annotate_owner(&mut bare, "id-1");
        assert_eq!(bare["metadata"]["annotations"][OWNER_ANNOTATION], "id-1");
    }

    #[test]
    fn ignored_fields_are_removed_where_present() {
        let mut object = json!({"spec": {"replicas": 3, "template": {}}});
        fields::remove_path(&mut object, &["spec".into(), "replicas".into()]);
        fields::remove_path(&mut object, &["spec".into(), "absent".into(), "x".into()]);
        assert_eq!(object, json!({"spec": {"template": {}}}));
    }
}
