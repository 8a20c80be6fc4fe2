//! `platform_stack`: a platform's components (manifests, manifests from a pinned URL, Helm
//! charts through Flux) planned without a cluster and applied in dependency order, with an
//! inventory of every object and a digest of the fields we own, so drift shows in plans.
//!
//! The pure parts live beside this file: `config` (component blocks), `manifests` (YAML),
//! `graph` (ordering), `flux` (Helm as Flux objects), `inventory` (object keys, teardown
//! phases); `cluster_ops` is what touches the cluster. Owned-field digests come from
//! `clients::kube::fields`.

mod cluster_ops;
mod config;
mod flux;
mod graph;
mod inventory;
mod manifests;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use self::cluster_ops::{StackOps, CHANGED, DELETED};
use self::config::{Component, Source};
use self::inventory::ObjectKey;
use self::manifests::{Manifest, STACK_LABEL};
use super::metadata;
use crate::clients::http;
use crate::clients::kube::Cluster;
use crate::framework::diagnostics::{AttributePath, Diagnostics};
use crate::framework::resource::{Context, Plan, Resource};
use crate::framework::schema::{timeouts_block, Attribute, Block, NestedBlock, Schema};
use crate::framework::timeouts;
use crate::framework::value::Value;
use crate::provider::{cluster_attribute, validate_cluster_attribute, Platform};

const DEFAULT_APPLY_TIMEOUT: Duration = Duration::from_secs(20 * 60);
const DEFAULT_DELETE_TIMEOUT: Duration = Duration::from_secs(10 * 60);
const READ_TIMEOUT: Duration = Duration::from_secs(120);

pub struct StackResource {
    platform: Arc<Platform>,
}

impl StackResource {
    pub fn new(platform: Arc<Platform>) -> Self {
        StackResource { platform }
    }

    async fn cluster(&self, state: &Value, diags: &mut Diagnostics) -> Option<Cluster> {
        self.platform.cluster(state.get_attr("cluster")).await.map_err(|d| diags.push(d)).ok()
    }

    /// Create and update: render everything (downloads verified) before touching the
    /// cluster, apply level by level, then prune what the previous apply had and this one
    /// does not. A failed update's state records what was applied; a failed create leaves
    /// no state (see below).
    async fn apply(&self, ctx: &Context, prior: &Value, planned: &Value, diags: &mut Diagnostics) -> Option<Value> {
        let operation = if prior.is_null() { "create" } else { "update" };
        let deadline = Instant::now() + timeouts::timeout(planned, operation, DEFAULT_APPLY_TIMEOUT);
        let stack = text(planned, "name");
        let flux_namespace = text(planned, "namespace");
        let mut components = config::components(planned, diags)?;
        let levels = config::levels(&mut components, diags)?;
        let rendered = render_all(&stack, &flux_namespace, &components, diags).await?;
        let crd_kinds: BTreeSet<(String, String)> = rendered.iter().flatten().filter_map(Manifest::crd_defines).collect();
        let cluster = self.cluster(planned, diags).await?;
        let ops = StackOps { cluster: &cluster, ctx, stack: &stack, deadline };
        // A create adopts what an earlier, failed create of this stack left behind, so
        // that it is pruned if no longer configured.
        let prior_objects = if prior.is_null() {
            match ops.labelled_objects().await {
                Ok(leftovers) => leftovers,
                Err(e) => {
                    diags.error("Could not look for earlier objects of this stack", format!("Stack {stack:?}: {e}"));
                    return None;
                }
            }
        } else {
            metadata::string_map(prior.get_attr("objects")).unwrap_or_default()
        };
        let runs_workloads = ops.runs_workloads().await;

        let mut applied: BTreeMap<ObjectKey, String> = BTreeMap::new();
        let mut failed = false;
        for level in &levels {
            let results = futures::future::join_all(level.iter().map(|&i| {
                ops.apply_component(&components[i], rendered[i].clone(), &crd_kinds, runs_workloads)
            }))
            .await;
            for (&i, (entries, errors)) in level.iter().zip(results) {
                applied.extend(entries);
                for error in errors {
                    failed = true;
                    diags.error_at(
                        components[i].path(),
                        format!("Component {:?} failed", components[i].name),
                        error,
                    );
                }
            }
            if failed {
                break;
            }
        }

        let applied_text: BTreeMap<String, String> = applied.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
        if failed && prior.is_null() {
            // No state: a failed create would be tainted, and replacing it would delete what
            // did get applied. The next apply finds those objects by their label instead.
            diags.warning(
                "Objects applied before the failure were kept",
                format!(
                    "They carry the label {STACK_LABEL}={stack}; the next apply of this stack adopts them and deletes \
                     those no longer configured. Until then Terraform has no state for them: destroy leaves them alone."
                ),
            );
            return None;
        }
        if failed {
            // Keep the prior configuration so the next plan tries again; record both what
            // was applied now and what the previous apply left in place.
            let mut objects = prior_objects;
            objects.extend(applied_text);
            let mut state = prior.clone();
            state.set_attr("objects", metadata::string_map_value(&objects));
            return Some(with_id(state));
        }
        // Objects that moved to another component are re-applied, not pruned.
        let previous: Vec<ObjectKey> = prior_objects.keys().filter_map(|k| k.parse().ok()).collect();
        let current: Vec<ObjectKey> = applied.keys().cloned().collect();
        let prune: Vec<ObjectKey> = inventory::removed(&previous, &current).into_iter().cloned().collect();
        if !prune.is_empty() {
            tracing::info!(count = prune.len(), stack = %stack, "pruning objects no longer in the stack");
            if let Err(e) = ops.delete_in_order(&prune).await {
                diags.error("Could not prune removed objects", format!("Stack {stack:?}: {e}"));
                let mut objects = applied_text.clone();
                for key in prune {
                    objects.insert(key.to_string(), DELETED.to_string());
                }
                let mut state = planned.clone();
                state.set_attr("objects", metadata::string_map_value(&objects));
                return Some(with_id(state));
            }
        }
        let mut state = planned.clone();
        state.set_attr("objects", metadata::string_map_value(&applied_text));
        Some(with_id(state))
    }
}

fn text(value: &Value, name: &str) -> String {
    value.get_attr(name).and_then(Value::as_str).unwrap_or_default().to_string()
}

fn with_id(mut state: Value) -> Value {
    let name = text(&state, "name");
    state.set_attr("id", Value::string(name));
    state
}

/// Every component's objects; downloads are verified first, so a bad checksum stops the
/// apply before anything reaches the cluster.
async fn render_all(stack: &str, flux_namespace: &str, components: &[Component], diags: &mut Diagnostics) -> Option<Vec<Vec<Manifest>>> {
    let mut rendered = Vec::new();
    for component in components {
        let fetched = match &component.source {
            Source::Url { url, sha256 } => match http::fetch_verified(url, sha256).await {
                Ok(text) => Some(text),
                Err(e) => {
                    diags.error_at(
                        component.path().attribute("manifests_url"),
                        "Manifests download refused",
                        format!("Component {:?}: {e}. Nothing was applied.", component.name),
                    );
                    return None;
                }
            },
            _ => None,
        };
        let helm_dependencies: Vec<&str> = component
            .depends_on
            .iter()
            .filter(|d| components.iter().any(|c| &c.name == *d && matches!(c.source, Source::Helm { .. })))
            .map(String::as_str)
            .collect();
        match config::render(stack, flux_namespace, component, &helm_dependencies, fetched.as_deref()) {
            Ok(objects) => rendered.push(objects),
            Err(problems) => {
                for problem in problems {
                    diags.error_at(component.path(), "Invalid component", problem);
                }
                return None;
            }
        }
    }
    report_duplicates(components, &rendered, diags).then_some(rendered)
}

/// Reports objects defined twice, compared as they will be applied: an object that names no
/// namespace lands in its component's (or `default`). True when there are none.
fn report_duplicates(components: &[Component], rendered: &[Vec<Manifest>], diags: &mut Diagnostics) -> bool {
    let placed: Vec<(&str, Manifest)> = components
        .iter()
        .zip(rendered)
        .flat_map(|(c, objects)| {
            objects.iter().map(move |m| {
                let mut m = m.clone();
                manifests::default_namespace(&mut m, c.namespace.as_deref().unwrap_or("default"));
                (c.name.as_str(), m)
            })
        })
        .collect();
    let refs: Vec<(&str, &Manifest)> = placed.iter().map(|(c, m)| (*c, m)).collect();
    let duplicates = manifests::duplicates(&refs);
    for duplicate in &duplicates {
        diags.error_at(AttributePath::root("component"), "Duplicate object", duplicate.clone());
    }
    duplicates.is_empty()
}

fn component_block() -> NestedBlock {
    let helm = Block::new(vec![
        Attribute::string("repository").optional().describe("Chart repository: `https://...` (a HelmRepository) or `oci://...` (an OCIRepository)."),
        Attribute::string("chart").optional().describe("Chart name."),
        Attribute::string("version").optional().describe("Chart version."),
        Attribute::string("values").optional().describe("Helm values as YAML, e.g. `yamlencode({...})`; merged over the catalog's defaults."),
        Attribute::string("interval").optional().describe("How often Flux reconciles the release; default `10m`."),
    ])
    .describe("A Helm chart, installed through a Flux HelmRelease. May only override a `catalog` entry.");
    NestedBlock::list(
        "component",
        Block::new(vec![
            Attribute::string("name").required().describe("Component name, unique in the stack (a DNS label). Terraform blocks take no labels, so it is an attribute."),
            Attribute::string_list("depends_on").optional().describe("Names of components of this stack applied (and ready) before this one."),
            Attribute::string("namespace").optional().describe("Namespace for the component's namespaced objects that name none, and the Helm release's target namespace (created if missing)."),
            Attribute::string("manifests").optional().describe("Kubernetes objects as multi-document YAML."),
            Attribute::string("manifests_url").optional().describe("URL of multi-document YAML, downloaded at apply."),
            Attribute::string("manifests_sha256").optional().describe("SHA-256 (hex) the download must have; checked before anything is applied."),
            Attribute::string("catalog").optional().describe("Name of a `platform_catalog` entry supplying repository, chart, version, namespace and dependencies."),
            Attribute::string_map("sensitive_values").optional().sensitive().describe(
                "Helm values given through a Secret (`valuesFrom`), never echoed in plans or logs. Keys are value paths like `auth.password`.",
            ),
            Attribute::bool("wait").optional().describe("Wait for HelmReleases to be Ready and workloads to roll out (default true)."),
        ])
        .with_block(NestedBlock::single("helm", helm))
        .describe("One component of the stack."),
    )
}

#[async_trait]
impl Resource for StackResource {
    fn type_name(&self) -> &'static str {
        "platform_stack"
    }

    fn schema(&self) -> Schema {
        Schema::new(
            Block::new(vec![
                Attribute::string("id").computed().keep_on_update().describe("The stack name."),
                Attribute::string("name").required().requires_replace().describe("Stack name; every object is labelled with it."),
                Attribute::string("namespace").optional().computed().describe(
                    "Namespace of the Flux objects (HelmRepository, OCIRepository, HelmRelease, values Secrets). Default `flux-system`.",
                ),
                Attribute::string_map("objects").computed().describe(
                    "Inventory: `component: apiVersion Kind namespace/name` of every applied object, with a digest of the fields this \
                     provider owns. An object changed or deleted outside Terraform shows here in the next plan.",
                ),
                cluster_attribute(),
            ])
            .with_block(component_block())
            .with_block(timeouts_block(&["create", "update", "delete"]))
            .describe(
                "A set of platform components applied in dependency order in one run: raw manifests (CRDs and their custom \
                 resources together), manifests from a pinned URL, and Helm charts as Flux HelmReleases. Drift on any owned field \
                 shows in plans; removed objects are pruned; destroy tears down in reverse order.",
            ),
        )
    }

    fn validate(&self, config: &Value, diags: &mut Diagnostics) {
        if let Some(name) = config.get_attr("name").and_then(Value::as_str) {
            if let Some(problem) = metadata::dns1123_label_problem(name) {
                diags.error_at(AttributePath::root("name"), "Invalid stack name", format!("{name:?} {problem}."));
            }
        }
        metadata::validate_name(config, "namespace", diags);
        timeouts::validate(config, &["create", "update", "delete"], diags);
        validate_cluster_attribute(config, diags);
        let Some(mut components) = config::components(config, diags) else { return };
        if diags.has_errors() || config::levels(&mut components, diags).is_none() {
            return;
        }
        // Parse what can be parsed now: problems surface at plan, before any cluster is touched.
        let stack = config.get_attr("name").and_then(Value::as_str).unwrap_or("stack");
        let flux_namespace = config.get_attr("namespace").and_then(Value::as_str).unwrap_or(config::DEFAULT_FLUX_NAMESPACE);
        let mut rendered = Vec::new();
        for component in &components {
            match config::render(stack, flux_namespace, component, &[], None) {
                Ok(objects) => rendered.push(objects),
                Err(problems) => {
                    rendered.push(Vec::new());
                    for problem in problems {
                        diags.error_at(component.path(), "Invalid component", problem);
                    }
                }
            }
        }
        report_duplicates(&components, &rendered, diags);
    }

    async fn modify_plan(&self, _ctx: &Context, plan: &mut Plan, _diags: &mut Diagnostics) {
        if plan.config.get_attr("namespace").is_none_or(Value::is_null) {
            plan.planned.set_attr("namespace", Value::string(config::DEFAULT_FLUX_NAMESPACE));
        }
        if plan.is_create() || plan.planned != plan.prior {
            plan.planned.set_attr("objects", Value::Unknown);
            return;
        }
        // Unchanged configuration: only drift recorded by Read makes an update, and the
        // plan names the objects it concerns.
        if let Some(Value::Map(objects)) = plan.prior.get_attr("objects") {
            let drifted = objects.values().any(|v| matches!(v.as_str(), Some(CHANGED) | Some(DELETED)));
            if drifted {
                let planned = objects
                    .iter()
                    .map(|(k, v)| {
                        let drift = matches!(v.as_str(), Some(CHANGED) | Some(DELETED));
                        (k.clone(), if drift { Value::Unknown } else { v.clone() })
                    })
                    .collect();
                plan.planned.set_attr("objects", Value::Map(planned));
            }
        }
    }

    async fn create(&self, ctx: &Context, planned: &Value, _config: &Value, diags: &mut Diagnostics) -> Option<Value> {
        self.apply(ctx, &Value::Null, planned, diags).await
    }

    async fn read(&self, ctx: &Context, state: &Value, diags: &mut Diagnostics) -> Option<Value> {
        let objects = metadata::string_map(state.get_attr("objects")).unwrap_or_default();
        if objects.is_empty() {
            return Some(state.clone());
        }
        let Some(cluster) = self.cluster(state, diags).await else { return Some(state.clone()) };
        let stack = text(state, "name");
        let ops = StackOps { cluster: &cluster, ctx, stack: &stack, deadline: Instant::now() + READ_TIMEOUT };
        match ops.refresh(&objects).await {
            Ok(refreshed) => {
                let drifted: Vec<&String> = refreshed.iter().filter(|(_, v)| v.as_str() == CHANGED || v.as_str() == DELETED).map(|(k, _)| k).collect();
                if !drifted.is_empty() {
                    tracing::info!(stack = %stack, objects = ?drifted, "objects changed outside Terraform");
                }
                let mut next = state.clone();
                next.set_attr("objects", metadata::string_map_value(&refreshed));
                Some(next)
            }
            Err(e) => {
                diags.error("Could not read stack objects", format!("Stack {stack:?}: {e}"));
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
        self.apply(ctx, prior, planned, diags).await
    }

    /// Reverse dependency order; inside each level custom resources, then other objects,
    /// then CRDs, then namespaces.
    async fn delete(&self, ctx: &Context, prior: &Value, diags: &mut Diagnostics) {
        let objects = metadata::string_map(prior.get_attr("objects")).unwrap_or_default();
        let keys: Vec<ObjectKey> = objects.keys().filter_map(|k| k.parse().ok()).collect();
        if keys.is_empty() {
            return;
        }
        let mut scratch = Diagnostics::new();
        let mut components = config::components(prior, &mut scratch).unwrap_or_default();
        let levels = config::levels(&mut components, &mut scratch).unwrap_or_default();
        let Some(cluster) = self.cluster(prior, diags).await else { return };
        let stack = text(prior, "name");
        let deadline = Instant::now() + timeouts::timeout(prior, "delete", DEFAULT_DELETE_TIMEOUT);
        let ops = StackOps { cluster: &cluster, ctx, stack: &stack, deadline };
        // Objects of components no longer configured go first.
        let mut order: Vec<Vec<&str>> = vec![keys
            .iter()
            .map(|k| k.component.as_str())
            .filter(|c| !components.iter().any(|comp| comp.name == *c))
            .collect()];
        order.extend(levels.iter().rev().map(|level| level.iter().map(|&i| components[i].name.as_str()).collect()));
        for names in order {
            let batch: Vec<ObjectKey> = keys.iter().filter(|k| names.contains(&k.component.as_str())).cloned().collect();
            if batch.is_empty() {
                continue;
            }
            if let Err(e) = ops.delete_in_order(&batch).await {
                diags.error(
                    "Stack teardown incomplete",
                    format!(
                        "Stack {stack:?}: {e}.\n\nThe stack stays in the state; run destroy again once the blockers are resolved, or raise timeouts.delete."
                    ),
                );
                return;
            }
        }
    }

    /// Adopts every object labelled with this stack name; the configuration then decides
    /// (the first apply after import re-applies and prunes).
    async fn import(&self, ctx: &Context, id: &str, diags: &mut Diagnostics) -> Option<Value> {
        if let Some(problem) = metadata::dns1123_label_problem(id) {
            diags.error("Invalid import id", format!("Import by stack name; {id:?} {problem}."));
            return None;
        }
        let mut state = Value::null_object(&self.schema().implied_type());
        state.set_attr("name", Value::string(id));
        state.set_attr("namespace", Value::string(config::DEFAULT_FLUX_NAMESPACE));
        state.set_attr("component", Value::List(Vec::new()));
        let cluster = self.cluster(&state, diags).await?;
        let ops = StackOps { cluster: &cluster, ctx, stack: id, deadline: Instant::now() + READ_TIMEOUT };
        let objects = match ops.labelled_objects().await {
            Ok(objects) => objects,
            Err(e) => {
                diags.error("Could not import stack", e);
                return None;
            }
        };
        if objects.is_empty() {
            diags.error("Cannot import stack", format!("No object in the cluster carries the label {STACK_LABEL}={id}."));
            return None;
        }
        state.set_attr("objects", metadata::string_map_value(&objects));
        Some(with_id(state))
    }
}
