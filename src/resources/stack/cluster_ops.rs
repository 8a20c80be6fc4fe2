//! What a stack does to a cluster: apply components level by level (objects concurrently,
//! CRDs first and Established before their custom resources), wait for what must be ready,
//! refresh the inventory with one list per kind and namespace, prune and tear down in order.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use futures::future::{BoxFuture, FutureExt};
use futures::stream::{self, StreamExt};
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, ListParams};

use super::config::Component;
use super::flux;
use super::inventory::{self, ObjectKey};
use super::manifests::{self, Manifest, COMPONENT_LABEL, STACK_LABEL};
use crate::clients::kube::{fields, Cluster, KindInfo, KubeError, FIELD_MANAGER};
use crate::framework::resource::Context;

/// Objects applied or deleted at once.
const CONCURRENCY: usize = 16;
const POLL: Duration = Duration::from_millis(500);
/// How long a kind may stay unknown after its CRD is Established (discovery lags a little).
const DISCOVERY_GRACE: Duration = Duration::from_secs(30);

/// What Read records for an object that changed or vanished: anything but a digest makes
/// the next plan re-apply the stack.
pub const CHANGED: &str = "changed outside Terraform";
pub const DELETED: &str = "deleted outside Terraform";

pub struct StackOps<'a> {
    pub cluster: &'a Cluster,
    pub ctx: &'a Context,
    pub stack: &'a str,
    pub deadline: Instant,
}

/// A failure while changing the cluster, in words for the user.
pub type OpError = String;

impl StackOps<'_> {
    fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    fn kube(&self, what: &str, e: KubeError) -> OpError {
        format!("{what}: {e}")
    }

    /// Runs `work` within the deadline and Terraform's stop signal.
    async fn bounded<T>(&self, work: impl std::future::Future<Output = Result<T, OpError>>) -> Result<T, OpError> {
        tokio::select! {
            _ = self.ctx.stop.cancelled() => Err("cancelled: Terraform asked the provider to stop".into()),
            result = tokio::time::timeout(self.remaining(), work) => result.unwrap_or_else(|_| Err("timed out".into())),
        }
    }

    /// Discovery for one manifest, waiting a little when a CRD of this stack defines it.
    async fn kind_of(&self, manifest: &Manifest, defined_here: bool) -> Result<KindInfo, OpError> {
        let started = Instant::now();
        loop {
            match self.cluster.kind(&manifest.api_version, &manifest.kind).await {
                Ok(Some(info)) => return Ok(info),
                Ok(None) if defined_here && started.elapsed() < DISCOVERY_GRACE => tokio::time::sleep(POLL).await,
                Ok(None) => return Err(unknown_kind(manifest)),
                Err(e) => return Err(self.kube(&format!("discovering {} {}", manifest.api_version, manifest.kind), e)),
            }
        }
    }

    /// Applies one component and waits for it; returns the inventory entries of what was
    /// applied, even when a later step failed.
    pub async fn apply_component(
        &self,
        component: &Component,
        objects: Vec<Manifest>,
        crd_kinds: &BTreeSet<(String, String)>,
        runs_workloads: bool,
    ) -> (BTreeMap<ObjectKey, String>, Vec<OpError>) {
        let mut applied = BTreeMap::new();
        let (foundations, rest): (Vec<Manifest>, Vec<Manifest>) =
            objects.into_iter().partition(|m| inventory::is_foundation(&m.api_version, &m.kind));
        let mut errors = self.apply_all(component, foundations.clone(), crd_kinds, &mut applied).await;
        if errors.is_empty() {
            let crds: Vec<&Manifest> = foundations.iter().filter(|m| m.is_crd()).collect();
            for crd in crds {
                if let Err(e) = self.wait_crd_established(&crd.name).await {
                    errors.push(e);
                }
            }
        }
        if errors.is_empty() {
            let waits: Vec<Manifest> = rest.iter().filter(|m| needs_wait(m, component.wait, runs_workloads)).cloned().collect();
            errors = self.apply_all(component, rest, crd_kinds, &mut applied).await;
            if errors.is_empty() {
                let results = concurrently(waits.iter().map(|m| self.wait_ready(m).boxed()).collect()).await;
                errors = results.into_iter().filter_map(Result::err).collect();
            }
        }
        (applied, errors)
    }

    async fn apply_all(
        &self,
        component: &Component,
        objects: Vec<Manifest>,
        crd_kinds: &BTreeSet<(String, String)>,
        applied: &mut BTreeMap<ObjectKey, String>,
    ) -> Vec<OpError> {
        let work = objects
            .into_iter()
            .map(|m| {
                let defined_here = crd_kinds.contains(&(m.group().to_string(), m.kind.clone()));
                self.bounded(self.apply_one(component, m, defined_here)).boxed()
            })
            .collect();
        let results = concurrently(work).await;
        let mut errors = Vec::new();
        for result in results {
            match result {
                Ok((key, digest)) => {
                    applied.insert(key, digest);
                }
                Err(e) => errors.push(e),
            }
        }
        errors
    }

    async fn apply_one(&self, component: &Component, mut m: Manifest, defined_here: bool) -> Result<(ObjectKey, String), OpError> {
        let info = self.kind_of(&m, defined_here).await?;
        if info.namespaced {
            manifests::default_namespace(&mut m, component.namespace.as_deref().unwrap_or("default"));
        } else {
            // Cluster-scoped: a namespace written anyway would make the API server refuse it.
            m.namespace = None;
            if let Some(meta) = m.object.get_mut("metadata").and_then(|v| v.as_object_mut()) {
                meta.remove("namespace");
            }
        }
        let key = ObjectKey::of(&component.name, &m);
        let namespace = m.namespace.clone();
        tracing::debug!(object = %key, "server-side apply");
        let live = self
            .cluster
            .apply_dynamic(&info, namespace.as_deref(), &m.name, &m.object)
            .await
            .map_err(|e| self.kube(&format!("applying {}", describe(&key)), e))?;
        let digest = fields::owned_digest(&live, FIELD_MANAGER).unwrap_or_else(|| fields::digest(&serde_json::Value::Null));
        Ok((key, digest))
    }

    async fn wait_crd_established(&self, name: &str) -> Result<(), OpError> {
        tracing::info!(crd = name, "waiting for CustomResourceDefinition to be Established");
        let crd_kind = self.cluster.kind("apiextensions.k8s.io/v1", "CustomResourceDefinition").await.ok().flatten();
        let Some(info) = crd_kind else { return Err("the cluster serves no apiextensions.k8s.io/v1 CustomResourceDefinition".into()) };
        self.poll(&format!("CustomResourceDefinition {name} to be Established"), || async {
            let live = self.cluster.get_dynamic(&info, None, name).await.map_err(|e| e.to_string())?;
            Ok(match live {
                Some(crd) if condition(&crd, "Established") == Some("True") => Progress::Done,
                Some(_) => Progress::Pending("not Established yet".into()),
                None => Progress::Pending("not found".into()),
            })
        })
        .await
    }

    /// HelmReleases until Ready, workloads until rolled out.
    async fn wait_ready(&self, m: &Manifest) -> Result<(), OpError> {
        let info = self.kind_of(m, false).await?;
        let namespace = m.object["metadata"]["namespace"].as_str().map(str::to_string);
        let what = format!("{} {}/{}", m.kind, namespace.as_deref().unwrap_or(""), m.name);
        let is_release = m.kind == "HelmRelease";
        tracing::info!(object = %what, "waiting for {}", if is_release { "Ready" } else { "rollout" });
        self.poll(&format!("{what} to be {}", if is_release { "Ready" } else { "rolled out" }), || async {
            let live = self.cluster.get_dynamic(&info, namespace.as_deref(), &m.name).await.map_err(|e| e.to_string())?;
            let Some(live) = live else { return Ok(Progress::Pending("not found".into())) };
            Ok(if is_release {
                match flux::release_status(&live) {
                    flux::ReleaseStatus::Ready => Progress::Done,
                    flux::ReleaseStatus::Failed { reason, message } => Progress::Failed(format!("{reason}: {message}")),
                    flux::ReleaseStatus::Progressing { reason, message } => Progress::Pending(format!("{reason}: {message}")),
                }
            } else {
                rollout_progress(&m.kind, &live)
            })
        })
        .await
    }

    /// Polls `check` until done, failed, the deadline or Ctrl-C; messages say what we waited for.
    async fn poll<F, Fut>(&self, what: &str, check: F) -> Result<(), OpError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<Progress, String>>,
    {
        let started = Instant::now();
        loop {
            let last = match check().await {
                Ok(Progress::Done) => return Ok(()),
                Ok(Progress::Failed(message)) => return Err(format!("{what}: failed: {message}")),
                Ok(Progress::Pending(status)) => status,
                Err(e) => format!("could not check: {e}"),
            };
            if Instant::now() >= self.deadline {
                return Err(format!(
                    "timed out after {} waiting for {what}; last status: {last}",
                    humantime::format_duration(Duration::from_secs(started.elapsed().as_secs()))
                ));
            }
            tokio::select! {
                _ = self.ctx.stop.cancelled() => return Err(format!("cancelled while waiting for {what}")),
                _ = tokio::time::sleep(POLL.min(self.remaining())) => {}
            }
        }
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
    /// their digest, others become [`CHANGED`] or [`DELETED`].
    pub async fn refresh(&self, entries: &BTreeMap<String, String>) -> Result<BTreeMap<String, String>, OpError> {
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
                    None => DELETED.to_string(),
                    Some(object) => match fields::owned_digest(object, FIELD_MANAGER) {
                        Some(digest) if &digest == stored => digest,
                        _ => CHANGED.to_string(),
                    },
                };
                refreshed.insert(text, value);
            }
        }
        Ok(refreshed)
    }

    /// Every object in the cluster labelled with this stack's name, as inventory entries
    /// (for import, and for a create after a failed one). An object served under two API
    /// groups (Ingress under `extensions` too, on old clusters) is counted once.
    pub async fn labelled_objects(&self) -> Result<BTreeMap<String, String>, OpError> {
        let selector = format!("{STACK_LABEL}={}", self.stack);
        let kinds = self.cluster.listable_kinds().await.map_err(|e| self.kube("discovery", e))?;
        let work = kinds
            .iter()
            .map(|info| {
                let selector = &selector;
                async move { (info, self.cluster.list_dynamic(info, None, selector).await) }.boxed()
            })
            .collect();
        // Results arrive in completion order: each carries its kind.
        let lists = concurrently(work).await;
        let mut by_uid: BTreeMap<String, (ObjectKey, String)> = BTreeMap::new();
        for (info, list) in lists {
            // Kinds we may not list cannot hold objects we applied.
            for object in list.unwrap_or_default() {
                let meta = &object["metadata"];
                let key = ObjectKey {
                    component: meta["labels"][COMPONENT_LABEL].as_str().unwrap_or("imported").to_string(),
                    api_version: info.resource.api_version.clone(),
                    kind: info.resource.kind.clone(),
                    namespace: meta["namespace"].as_str().map(str::to_string),
                    name: meta["name"].as_str().unwrap_or_default().to_string(),
                };
                let digest = fields::owned_digest(&object, FIELD_MANAGER).unwrap_or_else(|| CHANGED.to_string());
                let uid = meta["uid"].as_str().unwrap_or_default().to_string();
                let keep_existing = by_uid.get(&uid).is_some_and(|(existing, _)| existing.group() != "extensions");
                if !keep_existing {
                    by_uid.insert(uid, (key, digest));
                }
            }
        }
        Ok(by_uid.into_values().map(|(key, digest)| (key.to_string(), digest)).collect())
    }

    /// Deletes `keys` phase by phase (custom resources, other objects, CRDs, namespaces),
    /// each phase gone before the next starts.
    pub async fn delete_in_order(&self, keys: &[ObjectKey]) -> Result<(), OpError> {
        for (phase, batch) in inventory::teardown_order(keys) {
            tracing::info!(phase = ?phase, count = batch.len(), "deleting");
            let work = batch
                .into_iter()
                .map(|key| {
                    async move {
                        let info =
                            self.cluster.kind(&key.api_version, &key.kind).await.map_err(|e| self.kube("discovery", e))?;
                        // A kind the cluster no longer serves took its objects with it.
                        let Some(info) = info else { return Ok(None) };
                        let existed = self
                            .cluster
                            .delete_dynamic(&info, key.namespace.as_deref(), &key.name)
                            .await
                            .map_err(|e| self.kube(&format!("deleting {}", describe(key)), e))?;
                        Ok(existed.then_some((key, info)))
                    }
                    .boxed()
                })
                .collect();
            let results: Vec<Result<Option<(&ObjectKey, KindInfo)>, OpError>> = concurrently(work).await;
            let mut pending = Vec::new();
            for result in results {
                if let Some(entry) = result? {
                    pending.push(entry);
                }
            }
            self.wait_gone(pending).await?;
        }
        Ok(())
    }

    async fn wait_gone(&self, mut pending: Vec<(&ObjectKey, KindInfo)>) -> Result<(), OpError> {
        loop {
            let mut still = Vec::new();
            for (key, info) in pending {
                match self.cluster.get_dynamic(&info, key.namespace.as_deref(), &key.name).await {
                    Ok(None) => {}
                    Ok(Some(live)) => still.push((key, info, Some(live))),
                    Err(e) => {
                        tracing::warn!(object = %key, error = %e, "checking deletion");
                        still.push((key, info, None));
                    }
                }
            }
            if still.is_empty() {
                return Ok(());
            }
            if Instant::now() >= self.deadline || self.ctx.stop.is_cancelled() {
                let blocking: Vec<String> = still
                    .iter()
                    .map(|(key, _, live)| {
                        let finalizers = live
                            .as_ref()
                            .and_then(|l| l["metadata"]["finalizers"].as_array())
                            .map(|f| f.iter().filter_map(|v| v.as_str()).collect::<Vec<_>>().join(", "))
                            .filter(|f| !f.is_empty());
                        match finalizers {
                            Some(f) => format!("{} (finalizers: {f})", describe(key)),
                            None => describe(key),
                        }
                    })
                    .collect();
                let why = if self.ctx.stop.is_cancelled() { "cancelled" } else { "timed out" };
                return Err(format!("{why} waiting for deletion; still present: {}", blocking.join("; ")));
            }
            pending = still.into_iter().map(|(k, i, _)| (k, i)).collect();
            tokio::select! {
                _ = self.ctx.stop.cancelled() => {}
                _ = tokio::time::sleep(POLL) => {}
            }
        }
    }
}

/// Runs `work` at most [`CONCURRENCY`] at a time. (Boxed: unboxed closures over borrowed
/// state trip the compiler's Send inference inside async traits.)
async fn concurrently<'a, T: Send + 'a>(work: Vec<BoxFuture<'a, T>>) -> Vec<T> {
    stream::iter(work).buffer_unordered(CONCURRENCY).collect().await
}

/// One list call of a refresh: API version, kind, namespace (none: cluster-scoped).
type ListScope = (String, String, Option<String>);

enum Progress {
    Done,
    Pending(String),
    Failed(String),
}

fn unknown_kind(m: &Manifest) -> OpError {
    if m.api_version.starts_with("helm.toolkit.fluxcd.io/") || m.api_version.starts_with("source.toolkit.fluxcd.io/") {
        format!(
            "the cluster does not serve {} {}: Flux is not installed. Add a component installing Flux (for example \
             `manifests_url` of Flux's install.yaml, or `catalog = \"flux\"` in another stack) and list it in `depends_on`.",
            m.api_version, m.kind
        )
    } else {
        format!(
            "the cluster does not serve {} {} (document {}): install its CustomResourceDefinition in this or an earlier component",
            m.api_version, m.kind, m.document_index
        )
    }
}

pub fn describe(key: &ObjectKey) -> String {
    match &key.namespace {
        Some(ns) => format!("{} {ns}/{}", key.kind, key.name),
        None => format!("{} {}", key.kind, key.name),
    }
}

fn needs_wait(m: &Manifest, wait: bool, runs_workloads: bool) -> bool {
    match m.kind.as_str() {
        "HelmRelease" => wait,
        "Deployment" | "StatefulSet" | "DaemonSet" => wait && runs_workloads && m.api_version == "apps/v1",
        _ => false,
    }
}

fn condition<'a>(object: &'a serde_json::Value, kind: &str) -> Option<&'a str> {
    object["status"]["conditions"].as_array()?.iter().find(|c| c["type"] == kind)?["status"].as_str()
}

/// Whether a workload's current spec is fully rolled out, as `kubectl rollout status` judges.
fn rollout_progress(kind: &str, live: &serde_json::Value) -> Progress {
    let number = |field: &str| live["status"][field].as_i64().unwrap_or(0);
    let generation = live["metadata"]["generation"].as_i64().unwrap_or(0);
    if number("observedGeneration") < generation {
        return Progress::Pending("controller has not seen the latest spec".into());
    }
    let desired = match kind {
        "DaemonSet" => number("desiredNumberScheduled"),
        _ => live["spec"]["replicas"].as_i64().unwrap_or(1),
    };
    let (updated, ready) = match kind {
        "DaemonSet" => (number("updatedNumberScheduled"), number("numberAvailable")),
        "StatefulSet" => (number("updatedReplicas"), number("readyReplicas")),
        _ => (number("updatedReplicas"), number("availableReplicas")),
    };
    if updated >= desired && ready >= desired {
        Progress::Done
    } else {
        Progress::Pending(format!("{updated} of {desired} updated, {ready} ready"))
    }
}
