//! `platform_stack`: a platform's components (manifests, manifests from a pinned URL, Helm
//! charts through Flux) planned without a cluster and applied in dependency order, with an
//! inventory of every object and a digest of the fields we own, so drift shows in plans.
//!
//! The pure parts live beside this file: `config` (component blocks), `manifests` (YAML),
//! `graph` (ordering), `flux` (Helm as Flux objects), `inventory` (object keys, teardown
//! phases); `cluster_ops` is what touches the cluster. Owned-field digests come from
//! `clients::kube::fields`.

mod claims;
mod cluster_ops;
mod config;
mod documents;
mod dry_run;
mod errors;
mod flux;
mod graph;
mod helm_values;
mod inventory;
mod manifests;
mod readiness;
mod release_health;
mod repositories;
mod teardown;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use self::claims::{Claimant, Identity, Refusal};
use self::cluster_ops::{describe, Applied, StackOps};
use self::dry_run::PlannedObjects;
use self::config::{Component, Source};
use self::inventory::{Entry, ObjectKey};
use self::manifests::{Manifest, STACK_LABEL};
use self::teardown::LetGo;
use super::metadata;
use crate::clients::deadline::{Deadline, Interrupted};
use crate::clients::http;
use crate::clients::kube::ownership::{is_instance_id, new_instance_id, OWNER_ANNOTATION};
use crate::clients::kube::Cluster;
use crate::framework::diagnostics::{AttributePath, Diagnostic, Diagnostics};
use crate::framework::resource::{Context, Plan, Resource};
use crate::framework::schema::{timeouts_block, Attribute, AttributeType, Block, NestedBlock, Schema};
use crate::framework::timeouts;
use crate::framework::value::{Type, Value};
use crate::platform::{cluster_attribute, validate_cluster_attribute, Platform};

const DEFAULT_APPLY_TIMEOUT: Duration = Duration::from_secs(20 * 60);
const DEFAULT_DELETE_TIMEOUT: Duration = Duration::from_secs(10 * 60);
const READ_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a plan may spend looking at the cluster for objects to adopt: a cluster that
/// does not answer by then leaves `adopted` unknown (the apply still checks every object).
const PLAN_TIMEOUT: Duration = Duration::from_secs(20);

pub struct StackResource {
    platform: Arc<Platform>,
}

/// What an instance's prior state says about its objects, for the ownership rules.
#[derive(Default)]
struct Past {
    /// Identities of inventory entries not recorded as deleted.
    inventory: BTreeSet<Identity>,
    adopted: BTreeSet<Identity>,
    /// `adopted` as inventory entries.
    adopted_keys: BTreeSet<String>,
}

impl Past {
    fn of(state: &Value) -> Past {
        let inventory = entries(state)
            .iter()
            .filter(|(_, v)| **v != Entry::Deleted)
            .filter_map(|(k, _)| k.parse::<ObjectKey>().ok())
            .map(|k| k.owned_identity())
            .collect();
        let adopted_keys = string_set(state.get_attr("adopted")).unwrap_or_default();
        Past { inventory, adopted: identities(&adopted_keys), adopted_keys }
    }

    fn claimant<'a>(&'a self, id: &'a str, planned_adoptions: Option<&'a BTreeSet<Identity>>) -> Claimant<'a> {
        Claimant { id, inventory: &self.inventory, adopted: &self.adopted, planned_adoptions }
    }
}

/// The applied inventory, with the digests the plan showed as staying where the apply
/// recorded another (a CRD of the stack changed the schema meanwhile, say): the plan's word
/// stands, and the next refresh shows the object as changed if it really is.
fn keep_planned_digests(planned: &Value, mut applied: BTreeMap<String, Entry>) -> BTreeMap<String, Entry> {
    let Some(Value::Map(planned)) = planned.get_attr("objects") else { return applied };
    for (key, value) in planned {
        let (Some(text), Some(entry)) = (value.as_str(), applied.get_mut(key)) else { continue };
        let promised = Entry::parse(text);
        if matches!(entry, Entry::Digest(_)) && *entry != promised {
            tracing::debug!(object = %key, "applied digest differs from the planned one; the planned one is kept");
            *entry = promised;
        }
    }
    applied
}

/// The inventory of a state: entry text by object key.
fn entries(state: &Value) -> BTreeMap<String, Entry> {
    metadata::string_map(state.get_attr("objects")).unwrap_or_default().into_iter().map(|(k, v)| (k, Entry::parse(&v))).collect()
}

fn entries_value(entries: &BTreeMap<String, Entry>) -> Value {
    Value::Map(entries.iter().map(|(k, v)| (k.clone(), Value::string(v.to_string()))).collect())
}

fn string_set(value: Option<&Value>) -> Option<BTreeSet<String>> {
    match value {
        Some(Value::List(items)) | Some(Value::Set(items)) => Some(items.iter().filter_map(|v| v.as_str().map(str::to_string)).collect()),
        Some(Value::Unknown) => None,
        _ => Some(BTreeSet::new()),
    }
}

fn identities(keys: &BTreeSet<String>) -> BTreeSet<Identity> {
    keys.iter().filter_map(|k| k.parse::<ObjectKey>().ok()).map(|k| k.owned_identity()).collect()
}

/// How to remove by hand what a failed create wrote (not what it adopted): the commands, or
/// for many objects the first of them and how to find the rest.
fn cleanup_hint(applied: &BTreeMap<ObjectKey, Applied>) -> String {
    const SHOWN: usize = 10;
    let created: Vec<&ObjectKey> = applied.iter().filter(|(_, a)| !a.adopted).map(|(k, _)| k).collect();
    if created.is_empty() {
        return String::new();
    }
    let commands = inventory::kubectl_delete_commands(created.iter().copied());
    let more = commands.len().saturating_sub(SHOWN);
    let tail = if more > 0 { format!("\n  ({more} more commands: every object carries the label {STACK_LABEL})") } else { String::new() };
    format!(
        "\n\nTo remove what it wrote by hand instead (then `terraform state rm` the stack):\n  {}{tail}",
        commands.iter().take(SHOWN).cloned().collect::<Vec<_>>().join("\n  ")
    )
}

/// `object_changes` from what an apply did.
fn applied_changes(applied: &BTreeMap<ObjectKey, Applied>) -> BTreeMap<String, String> {
    applied.iter().filter(|(_, a)| !a.changes.is_empty()).map(|(k, a)| (k.to_string(), a.changes.join(", "))).collect()
}

fn string_list_value(items: &BTreeSet<String>) -> Value {
    Value::List(items.iter().map(|s| Value::string(s.clone())).collect())
}

/// What a stack writes: its components, their dependency levels (indexes into
/// `components`), and each component's rendered objects.
struct Desired {
    components: Vec<Component>,
    levels: Vec<Vec<usize>>,
    rendered: Vec<Vec<Manifest>>,
}

/// The objects an apply of `planned` writes (downloads verified), with the write-only values
/// of `config`, which only the configuration holds. `None` when a component is not known yet
/// or cannot be read or rendered (said in `diags`).
async fn desired(planned: &Value, config: &Value, diags: &mut Diagnostics) -> Option<Desired> {
    let mut value = planned.clone();
    value.set_attr("sensitive_values_wo", config.get_attr("sensitive_values_wo").cloned().unwrap_or(Value::Null));
    let mut components = stack_components(&value, diags)?;
    let levels = config::levels(&mut components, diags)?;
    let rendered = render_all(&text(planned, "name"), &text(planned, "namespace"), &components, diags).await?;
    Some(Desired { components, levels, rendered })
}

/// Reads the components, with the stack's own `adopt` applied to each.
fn stack_components(value: &Value, diags: &mut Diagnostics) -> Option<Vec<Component>> {
    let mut components = config::components(value, diags)?;
    if value.get_attr("adopt").and_then(Value::as_bool) == Some(true) {
        for component in &mut components {
            component.adopt = true;
        }
    }
    Some(components)
}

fn flag(value: &Value, name: &str) -> bool {
    value.get_attr(name).and_then(Value::as_bool).unwrap_or(false)
}

impl StackResource {
    pub fn new(platform: Arc<Platform>) -> Self {
        StackResource { platform }
    }

    async fn cluster(&self, state: &Value, diags: &mut Diagnostics) -> Option<Cluster> {
        self.platform.cluster(state.get_attr("cluster")).await.map_err(|d| diags.push(d)).ok()
    }

    /// Create and update: render everything (downloads verified) before touching the
    /// cluster, apply level by level (every object claimed first: see `claims`), then let go
    /// of what the previous apply had and this one does not. A failed apply's state records
    /// what was applied, so that nothing we wrote is forgotten.
    async fn apply(&self, ctx: &Context, prior: &Value, planned: &Value, config: &Value, diags: &mut Diagnostics) -> Option<Value> {
        let operation = if prior.is_null() { "create" } else { "update" };
        let deadline = Deadline::after(timeouts::timeout(planned, operation, DEFAULT_APPLY_TIMEOUT), ctx.stop.clone());
        let stack = text(planned, "name");
        let id = planned.get_attr("id").and_then(Value::as_str).filter(|id| is_instance_id(id)).map(str::to_string);
        let id = id.unwrap_or_else(new_instance_id);
        let Desired { components, levels, mut rendered } = desired(planned, config, diags).await?;
        let crd_kinds: BTreeSet<(String, String)> = rendered.iter().flatten().filter_map(Manifest::crd_defines).collect();
        let cluster = self.cluster(planned, diags).await?;
        let settled = deadline.run(cluster_ops::settle_oci_repository_api(&cluster, &mut rendered)).await;
        if let Err(e) = settled {
            diags.error("Could not read which Flux API versions the cluster serves", format!("Stack {stack:?}: {e}"));
            return None;
        }
        let past = Past::of(prior);
        let planned_adoptions = string_set(planned.get_attr("adopted")).map(|keys| identities(&keys));
        let mut ops = StackOps::new(&cluster, &stack, deadline, past.claimant(&id, planned_adoptions.as_ref()));
        ops.force_conflicts = flag(planned, "force_conflicts");
        if prior.is_null() && !self.name_is_free(&ops, &stack, diags).await {
            return None;
        }
        let runs_workloads = ops.runs_workloads().await;

        let mut applied: BTreeMap<ObjectKey, Applied> = BTreeMap::new();
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
                    diags.error_at(components[i].path(), format!("Component {:?} failed", components[i].name), error.to_string());
                }
            }
            if failed {
                break;
            }
        }

        let applied_entries: BTreeMap<String, Entry> = applied.iter().map(|(k, v)| (k.to_string(), v.entry.clone())).collect();
        let adopted_now: BTreeSet<String> = applied.iter().filter(|(_, v)| v.adopted).map(|(k, _)| k.to_string()).collect();
        if failed {
            // Keep the prior configuration so the next plan tries again (a failed create is
            // tainted: replacing it deletes only what it created), and record both what was
            // applied now and what the previous apply left in place.
            let mut objects = entries(prior);
            objects.extend(applied_entries);
            let mut adopted = past.adopted_keys.clone();
            adopted.extend(adopted_now);
            let mut state = if prior.is_null() { planned.clone() } else { prior.clone() };
            state.set_attr("objects", entries_value(&objects));
            state.set_attr("adopted", string_list_value(&adopted));
            state.set_attr("id", Value::string(id.clone()));
            state.set_attr("object_changes", metadata::string_map_value(&applied_changes(&applied)));
            if prior.is_null() {
                diags.warning(
                    "The stack was partly created",
                    format!(
                        "Terraform marks stack {stack:?} as tainted, and the next apply replaces it: it deletes the objects this \
                         create wrote (only those) and starts again. To finish this create instead, run `terraform untaint` on \
                         the stack's address before the next apply.{}",
                        cleanup_hint(&applied)
                    ),
                );
            }
            return Some(state);
        }
        // Objects that moved to another component are re-applied, not pruned.
        let previous: Vec<ObjectKey> =
            metadata::string_map(prior.get_attr("objects")).unwrap_or_default().keys().filter_map(|k| k.parse().ok()).collect();
        let current: Vec<ObjectKey> = applied.keys().cloned().collect();
        let prune: Vec<ObjectKey> = inventory::removed(&previous, &current).into_iter().cloned().collect();
        let mut state = planned.clone();
        state.set_attr("id", Value::string(id.clone()));
        state.set_attr("adopted", string_list_value(&adopted_now));
        if !planned.get_attr("object_changes").is_some_and(Value::is_wholly_known) {
            state.set_attr("object_changes", metadata::string_map_value(&applied_changes(&applied)));
        }
        if !prune.is_empty() {
            tracing::info!(count = prune.len(), stack = %stack, "letting go of objects no longer in the stack");
            let mut scratch = Diagnostics::new();
            let prior_components = stack_components(prior, &mut scratch).unwrap_or_default();
            let delete_adopted = |key: &ObjectKey| prior_components.iter().any(|c| c.name == key.component && c.delete_adopted);
            let how = LetGo { delete_adopted: &delete_adopted, force_delete: flag(planned, "force_delete") };
            match ops.let_go(&prune, &how).await {
                Ok(notes) => report_notes(&stack, notes, diags),
                Err(e) => {
                    diags.error("Could not prune removed objects", format!("Stack {stack:?}: {e}"));
                    // Keep them in the inventory (as deleted, so the next apply tries again).
                    let mut objects = applied_entries.clone();
                    for key in prune {
                        objects.insert(key.to_string(), Entry::Deleted);
                    }
                    let mut adopted = adopted_now.clone();
                    adopted.extend(past.adopted_keys.iter().filter(|k| objects.contains_key(*k)).cloned());
                    state.set_attr("objects", entries_value(&objects));
                    state.set_attr("adopted", string_list_value(&adopted));
                    return Some(state);
                }
            }
        }
        state.set_attr("objects", entries_value(&keep_planned_digests(planned, applied_entries)));
        Some(state)
    }

    /// A create refuses a stack name another instance already uses in this cluster: its
    /// objects carry the same stack label and another owner id.
    async fn name_is_free(&self, ops: &StackOps<'_>, stack: &str, diags: &mut Diagnostics) -> bool {
        let labelled = match ops.labelled_objects().await {
            Ok(labelled) => labelled,
            Err(e) => {
                diags.error("Could not check that the stack name is free", format!("Stack {stack:?}: {e}"));
                return false;
            }
        };
        let others: BTreeMap<&str, Vec<String>> = labelled.iter().fold(BTreeMap::new(), |mut others, object| {
            if let Some(owner) = object.owner.as_deref().filter(|o| *o != ops.claimant.id) {
                others.entry(owner).or_default().push(describe(&object.key));
            }
            others
        });
        for (owner, objects) in &others {
            diags.error_at(
                AttributePath::root("name"),
                "Stack name already in use",
                format!(
                    "Another platform_stack named {stack:?} (owner id {owner}) manages {} object(s) in this cluster, e.g. {}. Two \
                     stacks of the same name would be indistinguishable to import and to people reading the labels: choose \
                     another name, or import that stack (`terraform import <address> {stack}`).",
                    objects.len(),
                    objects.iter().take(3).cloned().collect::<Vec<_>>().join(", ")
                ),
            );
        }
        others.is_empty()
    }

    /// At plan, with a reachable cluster and a known connection: the objects the apply would
    /// write, looked up and dry-run applied (see `dry_run`). Refusals (objects that exist and
    /// may not be taken over) and objects the API server rejects are errors on their
    /// components. `None` when the cluster cannot be asked (unknown connection, unreachable);
    /// else the adoptions (`None`: unknown until the apply) and what was found.
    async fn plan_objects(
        &self,
        ctx: &Context,
        plan: &Plan,
        diags: &mut Diagnostics,
    ) -> Option<(Option<BTreeSet<String>>, PlannedObjects)> {
        let cluster_value = plan.planned.get_attr("cluster");
        if cluster_value.is_some_and(|c| !c.is_wholly_known()) {
            return None;
        }
        let mut scratch = Diagnostics::new();
        let Desired { components, mut rendered, .. } = desired(&plan.planned, &plan.config, &mut scratch).await?;
        let stack = text(&plan.planned, "name");
        if scratch.has_errors() {
            return None;
        }
        let cluster = self.platform.cluster(cluster_value).await.ok()?;
        let plan_deadline = Deadline::after(PLAN_TIMEOUT, ctx.stop.clone());
        if let Err(e) = plan_deadline.run(cluster_ops::settle_oci_repository_api(&cluster, &mut rendered)).await {
            tracing::info!(stack = %stack, error = %e, "cannot read the served Flux API versions at plan; objects shown as unknown");
            return None;
        }
        let id = plan.prior.get_attr("id").and_then(Value::as_str).filter(|id| is_instance_id(id)).unwrap_or_default().to_string();
        let past = Past::of(&plan.prior);
        let mut ops = StackOps::new(&cluster, &stack, plan_deadline, past.claimant(&id, None));
        ops.force_conflicts = flag(&plan.planned, "force_conflicts");
        // Without an instance id yet (a create) the dry runs still catch rejected objects;
        // their digests then match nothing of the prior state, so every entry stays unknown.
        let looked = ops.deadline.run(ops.plan_objects(&components, &rendered, &entries(&plan.prior))).await;
        let mut planned = match looked {
            Ok(planned) => planned,
            Err(e) => {
                tracing::info!(stack = %stack, error = %e, "cannot look at the cluster at plan; objects and adoptions shown as unknown");
                return None;
            }
        };
        let name_of = |index: usize| components.iter().find(|c| c.index == index).map_or("?", |c| c.name.as_str());
        let path_of = |index: usize| {
            components.iter().find(|c| c.index == index).map_or_else(|| AttributePath::root("component"), |c| c.path())
        };
        let mut adoptions_known = true;
        for (index, key, refusal) in std::mem::take(&mut planned.refusals) {
            // Planning a create (or a replacement) cannot know an id yet: an object of another
            // instance may be the one being replaced, released or deleted before this create.
            // The apply decides; what it adopts is unknown.
            if plan.is_create() && matches!(refusal, Refusal::OtherOwner { .. }) {
                adoptions_known = false;
                continue;
            }
            diags.error_at(
                path_of(index),
                format!("Component {:?} would take over an existing object", name_of(index)),
                format!("{} cannot be applied: {refusal}", describe(&key)),
            );
        }
        for (index, key, error) in &planned.rejected {
            diags.error_at(
                path_of(*index),
                format!("Component {:?}: the API server rejects an object", name_of(*index)),
                format!("A dry run of the apply was refused for {}: {error}. Nothing was applied.", describe(key)),
            );
        }
        let adopted = adoptions_known.then(|| std::mem::take(&mut planned.adopted));
        Some((adopted, planned))
    }
}

/// Secrets written out in `manifests` put their values in the configuration, the plan and
/// the state: a warning points to the resources that keep them out.
fn warn_literal_secrets(component: &Component, objects: &[Manifest], diags: &mut Diagnostics) {
    for m in objects.iter().filter(|m| m.api_version == "v1" && m.kind == "Secret") {
        let has_values = ["data", "stringData"].iter().any(|f| m.object[*f].as_object().is_some_and(|d| !d.is_empty()));
        if has_values {
            diags.push(Diagnostic::warning(
                "Secret values in manifests",
                format!(
                    "Component {:?} writes Secret {} with its values in `manifests`: they end up in the plan and the state in plain \
                     text. Use `platform_secret` (write-only `data_wo`, or a SOPS file) or `platform_sealed_secret` instead.",
                    component.name,
                    m.location()
                ),
            )
            .at(component.path().attribute("manifests")));
        }
    }
}

/// The scope of a create or update: the Kubernetes client's retries share its budget. The
/// operation watches its own deadline (and returns what it managed, for the state); this
/// scope lasts a little longer, so that it never cuts that off.
fn operation_scope(ctx: &Context, budget: Duration) -> Deadline {
    const GRACE: Duration = Duration::from_secs(10);
    Deadline::after(budget + GRACE, ctx.stop.clone())
}

/// The outcome of an operation run in [`operation_scope`], its diagnostics added to `diags`.
fn finish(result: Result<Option<Value>, Interrupted>, inner: Diagnostics, diags: &mut Diagnostics) -> Option<Value> {
    diags.extend(inner);
    result.unwrap_or_else(|e| {
        diags.error("Stack operation interrupted", format!("{e}. Run apply again to finish it."));
        None
    })
}

/// Plans `adopted` and `object_changes` from what [`StackResource::plan_objects`] found
/// (unknown where it could not look).
fn set_found(plan: &mut Plan, looked: Option<(Option<BTreeSet<String>>, PlannedObjects)>) {
    let adopted = looked.as_ref().and_then(|(adopted, _)| adopted.as_ref());
    plan.planned.set_attr("adopted", adopted.map_or(Value::Unknown, string_list_value));
    let changes = looked.and_then(|(_, planned)| planned.object_changes(&entries(&plan.prior)));
    plan.planned.set_attr("object_changes", changes.as_ref().map_or(Value::Unknown, metadata::string_map_value));
}

/// A change that removes a HelmRelease (a renamed component, another release name or
/// namespace) makes Flux uninstall that Helm release; one added beside it is a fresh install.
/// The plan says so, naming them, rather than let it pass as an in-place update.
fn warn_reinstalls(prior: &Value, planned: &Value, diags: &mut Diagnostics) {
    let before = helm_releases(prior, true);
    if before.is_empty() {
        return;
    }
    let after = helm_releases(planned, false);
    let gone: Vec<&String> = before.keys().filter(|r| !after.contains_key(*r)).collect();
    let added: Vec<&String> = after.keys().filter(|r| !before.contains_key(*r)).collect();
    let renamed: Vec<String> = after
        .iter()
        .filter_map(|(release, name)| {
            let old = before.get(release).filter(|old| *old != name)?;
            Some(format!("HelmRelease {release} (Helm release {old:?} becomes {name:?})"))
        })
        .collect();
    let list = |names: &[&String]| names.iter().map(|n| format!("HelmRelease {n}")).collect::<Vec<_>>().join(", ");
    let mut changes = Vec::new();
    if !gone.is_empty() && added.is_empty() {
        changes.push(format!("This apply deletes {}: Flux uninstalls those Helm releases and everything they installed.", list(&gone)));
    } else if !gone.is_empty() {
        changes.push(format!(
            "This apply deletes {} and creates {}: Flux uninstalls the old Helm releases and installs new ones, so their \
             workloads are removed and created again (a renamed component or namespace does this).",
            list(&gone),
            list(&added)
        ));
    }
    if !renamed.is_empty() {
        changes.push(format!(
            "This apply renames {}: Flux uninstalls the release under its old name and installs it under the new one.",
            renamed.join(", ")
        ));
    }
    if !changes.is_empty() {
        diags.warning("Helm releases will be uninstalled", changes.join("\n\n"));
    }
}

/// The HelmReleases (`namespace/name`) a stack's configuration renders, each with its Helm
/// release name; with `recorded`, only those its inventory holds (and every one it holds).
fn helm_releases(value: &Value, recorded: bool) -> BTreeMap<String, String> {
    let stack = text(value, "name");
    let flux_namespace = text(value, "namespace");
    let mut scratch = Diagnostics::new();
    let components = stack_components(value, &mut scratch).unwrap_or_default();
    let mut releases: BTreeMap<String, String> = components
        .iter()
        .filter(|c| matches!(c.source, Source::Helm { .. }))
        .flat_map(|c| config::render(&stack, &flux_namespace, c, &[], None).unwrap_or_default())
        .filter(|m| m.kind == "HelmRelease")
        .map(|m| {
            let release = m.object["spec"]["releaseName"].as_str().unwrap_or(&m.name).to_string();
            (format!("{}/{}", m.namespace.as_deref().unwrap_or_default(), m.name), release)
        })
        .collect();
    if !recorded {
        return releases;
    }
    // The inventory decides which releases exist; the configuration only names them.
    let held: BTreeSet<String> = entries(value)
        .into_iter()
        .filter(|(_, v)| *v != Entry::Deleted)
        .filter_map(|(k, _)| k.parse::<ObjectKey>().ok())
        .filter(|k| k.kind == "HelmRelease")
        .map(|k| format!("{}/{}", k.namespace.unwrap_or_default(), k.name))
        .collect();
    releases.retain(|release, _| held.contains(release));
    for release in held {
        let name = release.rsplit('/').next().unwrap_or_default().to_string();
        releases.entry(release).or_insert(name);
    }
    releases
}

/// Fills each component's `resolved_*` and `catalog_version` from its `helm` block and the
/// catalog: what the plan shows the apply will install. Unknown while the configuration is.
fn resolve_charts(planned: &mut Value) {
    let mut scratch = Diagnostics::new();
    let components = config::components(planned, &mut scratch);
    let Some(Value::Set(blocks)) = planned.get_attr("component").cloned() else { return };
    let blocks = blocks
        .into_iter()
        .map(|mut block| {
            let name = block.get_attr("name").and_then(Value::as_str).map(str::to_string);
            let component = components.as_ref().and_then(|all| all.iter().find(|c| Some(&c.name) == name.as_ref()));
            let resolved: [Value; 3] = match component.map(|c| &c.source) {
                Some(Source::Helm { repository, chart, version, .. }) => {
                    [Value::string(repository.clone()), Value::string(chart.clone()), Value::string(version.clone())]
                }
                Some(_) => [Value::Null, Value::Null, Value::Null],
                None => [Value::Unknown, Value::Unknown, Value::Unknown],
            };
            for (name, value) in ["resolved_repository", "resolved_chart", "resolved_version"].into_iter().zip(resolved) {
                block.set_attr(name, value);
            }
            let pin = match block.get_attr("catalog") {
                Some(Value::String(name)) => crate::catalog::lookup(name).map_or(Value::Null, |e| Value::string(e.version)),
                Some(Value::Unknown) => Value::Unknown,
                _ => Value::Null,
            };
            block.set_attr("catalog_version", pin);
            block
        })
        .collect();
    planned.set_attr("component", Value::Set(blocks));
}

/// The attributes that decide what is in the cluster.
const APPLIED_ATTRIBUTES: &[&str] = &[
    "name",
    "namespace",
    "component",
    "repository",
    "sensitive_values",
    "sensitive_values_wo_version",
    "adopt",
    "force_conflicts",
];

fn changes_cluster(prior: &Value, planned: &Value) -> bool {
    APPLIED_ATTRIBUTES.iter().any(|a| prior.get_attr(a) != planned.get_attr(a))
}

/// The planned inventory when Read recorded drift: stale entries become unknown (the apply
/// writes them back), the others stay, so the plan names exactly the objects concerned.
/// `None` when nothing drifted.
fn repair_plan(objects: &BTreeMap<String, Value>) -> Option<BTreeMap<String, Value>> {
    let stale = |v: &Value| v.as_str().is_some_and(|text| Entry::parse(text).is_stale());
    objects
        .values()
        .any(stale)
        .then(|| objects.iter().map(|(k, v)| (k.clone(), if stale(v) { Value::Unknown } else { v.clone() })).collect())
}

/// Whether Read recorded drift (or an apply an uncertain write) that an apply repairs.
fn has_stale_entries(state: &Value) -> bool {
    entries(state).values().any(Entry::is_stale)
}

/// Notes from letting go of objects, as one warning.
fn report_notes(stack: &str, notes: Vec<String>, diags: &mut Diagnostics) {
    if !notes.is_empty() {
        diags.warning(
            "Objects left in the cluster",
            format!("Stack {stack:?} did not delete these objects:\n  - {}", notes.join("\n  - ")),
        );
    }
}

fn text(value: &Value, name: &str) -> String {
    value.get_attr(name).and_then(Value::as_str).unwrap_or_default().to_string()
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

/// `sensitive_values`: component name → value path → value.
fn sensitive_values_type() -> Type {
    Type::Map(Box::new(Type::Map(Box::new(Type::String))))
}

fn component_block() -> NestedBlock {
    let helm = Block::new(vec![
        Attribute::string("repository").optional().describe(
            "Chart repository: `https://...` (a HelmRepository of the component's own), `oci://...` (an OCIRepository, at `v1` where the cluster or the stack's \
             own Flux CRDs serve it, else `v1beta2`), or the \
             name of one of the stack's `repository` blocks (shared).",
        ),
        Attribute::string("chart").optional().describe("Chart name."),
        Attribute::string("version").optional().describe("Chart version."),
        Attribute::string("values").optional().describe("Helm values as YAML, e.g. `yamlencode({...})`; merged over the catalog's defaults."),
        Attribute::string("interval").optional().describe("How often Flux reconciles the release; default `10m`."),
        Attribute::string("release_name").optional().describe(
            "Helm's release name; default `<stack>-<component>`. Changing it uninstalls the old release and installs a new one (the plan warns).",
        ),
        Attribute::string("timeout").optional().describe("How long Helm may take for an install, upgrade or rollback (Flux's default: 5m)."),
        Attribute::number("remediation_retries").optional().describe(
            "How many times a failed install or upgrade is retried, with remediation in between, before Flux gives up (default 3).",
        ),
        Attribute::bool("disable_wait").optional().describe(
            "Install and upgrade without Helm's wait for the chart's resources (Flux's `disableWait`): the release is Ready \
             once Helm has applied it. For charts whose resources only become ready after something applied later, such as \
             a LoadBalancer Service whose address pool comes next (default false).",
        ),
        Attribute::string("crds").optional().describe(
            "What happens to the CRDs in the chart's crds/ directory on install and upgrade: `Create`, `CreateReplace` (default) or `Skip`.",
        ),
    ])
    .with_block(NestedBlock::list(
        "values_from",
        Block::new(vec![
            Attribute::string("kind").required().describe("`ConfigMap` or `Secret`, in the stack's Flux namespace."),
            Attribute::string("name").required().describe("Its name."),
            Attribute::string("values_key").optional().describe("The key holding the values (default `values.yaml`)."),
            Attribute::string("target_path").optional().describe("Where the key's content goes in the values (a dot path); the whole values when unset."),
            Attribute::bool("optional").optional().describe("Ignore a missing object or key instead of failing the release."),
        ])
        .describe("Values Flux reads from a ConfigMap or Secret kept elsewhere, merged in order before the component's sensitive values; `values` are merged last."),
    ))
    .describe("A Helm chart, installed through a Flux HelmRelease. May only override a `catalog` entry.");
    NestedBlock::set(
        "component",
        Block::new(vec![
            Attribute::string("name").required().describe("Component name, unique in the stack (a DNS label). Terraform blocks take no labels, so it is an attribute."),
            Attribute::string_list("depends_on").optional().describe("Names of components of this stack applied (and ready) before this one."),
            Attribute::string("namespace").optional().describe("Namespace for the component's namespaced objects that name none, and the Helm release's target namespace (created if missing)."),
            Attribute::string("manifests").optional().describe("Kubernetes objects as multi-document YAML."),
            Attribute::string("manifests_url").optional().describe("URL of multi-document YAML, downloaded at apply."),
            Attribute::string("manifests_sha256").optional().describe("SHA-256 (hex) the download must have; checked before anything is applied."),
            Attribute::string("catalog").optional().describe("Name of a `platform_catalog` entry supplying repository, chart, version, namespace and dependencies."),
            Attribute::bool("wait").optional().describe(
                "Wait for HelmReleases to be Ready, workloads to roll out (as `kubectl rollout status` judges) and Jobs to complete (default true).",
            ),
            Attribute::bool("adopt").optional().describe(
                "Take over objects of this component that already exist in the cluster (default false: they are refused, naming their field managers). \
                 The plan lists them in `adopted`; adopted objects are released, not deleted, when the stack lets go of them.",
            ),
            Attribute::string("on_destroy").optional().describe(
                "What happens to adopted objects of this component on destroy and prune: `release` (default: our annotation, labels and \
                 field ownership are removed, the object stays) or `delete`.",
            ),
            Attribute::string("resolved_repository").computed().describe(
                "The Helm repository the component installs from, as `helm` and `catalog` resolve it (null for manifests).",
            ),
            Attribute::string("resolved_chart").computed().describe("The Helm chart the component installs (null for manifests)."),
            Attribute::string("resolved_version").computed().describe(
                "The chart version the component installs: `helm.version`, else the catalog's pin (null for manifests).",
            ),
            Attribute::string("catalog_version").computed().describe(
                "The version this provider's catalog pins for `catalog`, shown even when `helm.version` overrides it. A provider \
                 upgrade that changes a pin shows here, and in `resolved_version`, in the next plan: it is never shipped unseen \
                 with another change.",
            ),
            Attribute::string_list("ignore_fields").optional().describe(
                "Field paths (`spec.replicas`, `metadata.annotations[\"example.com/x\"]`) applied when an object is created and then left to \
                 other managers, such as an autoscaler. If no other manager owns such a field, the API server removes it.",
            ),
        ])
        .with_block(NestedBlock::single("helm", helm))
        .with_block(NestedBlock::list(
            "wait_for",
            Block::new(vec![
                Attribute::string("for").required().describe(
                    "What must hold, as `kubectl wait --for` says it: `condition=Available`, `condition=Ready=False`, \
                     `jsonpath={.status.phase}=Running`, or `jsonpath={.status.loadBalancer.ingress}` (set at all).",
                ),
                Attribute::string("kind").optional().describe("Only objects of this kind (default: every object of the component)."),
                Attribute::string("name").optional().describe("Only the object of this name."),
            ])
            .describe("Waits after the component is applied (and rolled out) until this holds for the objects it selects, within the stack's timeouts."),
        ))
        .describe(
            "One component of the stack. Components are a set: the order they are written in means nothing (they are \
             applied in dependency order), so reordering them changes nothing.",
        ),
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
                Attribute::string("id").computed().keep_on_update().describe(
                    "This stack instance's owner id (a random UUID made at create), written on every object it manages as the \
                     annotation `platform.terraform.io/owner`. Only objects carrying it are ever deleted.",
                ),
                Attribute::string("name").required().requires_replace().describe(
                    "Stack name; every object is labelled with it. Unique in a cluster: a create is refused when another stack uses it.",
                ),
                Attribute::bool("adopt").optional().describe("`adopt` for every component."),
                Attribute::bool("force_conflicts").optional().describe(
                    "Take over fields that another field manager owns (default false: such a conflict fails the apply, naming the manager and the field).",
                ),
                Attribute::bool("force_delete").optional().describe(
                    "Delete CRDs whose custom resources this stack does not own, and namespaces holding objects it does not own (default false: \
                     such a destroy fails, listing them).",
                ),
                Attribute::string_list("adopted").computed().describe(
                    "Inventory entries of the objects this stack adopted (known at plan when the cluster can be reached).",
                ),
                Attribute::string("namespace").optional().computed().describe(
                    "Namespace of the Flux objects (HelmRepository, OCIRepository, HelmRelease, values Secrets). Default `flux-system`.",
                ),
                Attribute::string_map("object_changes").computed().describe(
                    "For each existing object the apply changes, the paths of the fields this provider owns that change, \
                     comma-separated (`data.value, spec.replicas`): at plan when the cluster can be reached (from a server-side \
                     dry run), after apply what that apply changed, emptied at the next refresh. New and removed objects show in \
                     `objects`. Only paths, never values, so Secret contents do not appear.",
                ),
                Attribute::string_map("objects").computed().describe(
                    "Inventory: `component: apiVersion Kind namespace/name` of every applied object, with a digest of the fields this \
                     provider owns. An object changed or deleted outside Terraform shows here in the next plan. When the plan can \
                     reach the cluster, it shows exactly what the apply changes: objects that stay keep their entries, removed \
                     objects are removed keys, and only added objects and those a server-side dry run says will change are \
                     `(known after apply)`. Objects the API server would reject fail the plan.",
                ),
                Attribute::new("sensitive_values", AttributeType::Plain(sensitive_values_type())).optional().sensitive().describe(
                    "Helm values kept out of plans and logs, by component name, then value path: `{ grafana = { \"adminPassword\" = \
                     var.password } }`. They reach the chart through a Secret in the Flux namespace (`valuesFrom` with \
                     `targetPath`) and are stored in state (sensitive): prefer `sensitive_values_wo` on Terraform 1.11 and later.",
                ),
                Attribute::new("sensitive_values_wo", AttributeType::Plain(sensitive_values_type()))
                    .optional()
                    .sensitive()
                    .write_only()
                    .describe(
                        "Like `sensitive_values`, write-only (Terraform 1.11 and later): never stored in plan or state. Terraform \
                         cannot see changes to them: change `sensitive_values_wo_version` to apply new values.",
                    ),
                Attribute::number("sensitive_values_wo_version").optional().describe(
                    "Any number; changing it applies `sensitive_values_wo` again (the values Secrets are rewritten and the Helm \
                     releases reading them reconciled).",
                ),
                cluster_attribute(),
            ])
            .with_block(component_block())
            .with_block(NestedBlock::list(
                "repository",
                Block::new(vec![
                    Attribute::string("name").required().describe(
                        "Name that Helm components give as `helm.repository` (a DNS label); the HelmRepository is `<stack>-repo-<name>`.",
                    ),
                    Attribute::string("url").required().describe("`https://…` or `http://…` Helm repository, or `oci://registry/path` of charts."),
                    Attribute::string("type").optional().describe("`default` or `oci`; by default from the URL's scheme."),
                    Attribute::string("interval").optional().describe("How often Flux fetches its index; default `10m`."),
                    Attribute::string("secret_ref").optional().describe("Secret in the Flux namespace with the repository's credentials."),
                    Attribute::string("cert_secret_ref").optional().describe("Secret in the Flux namespace with TLS certificates for it."),
                    Attribute::string("provider").optional().describe("For OCI registries: `generic` (default), `aws`, `azure` or `gcp` credentials."),
                ])
                .describe(
                    "A Helm repository declared once and shared by the stack's Helm components, which name it in `helm.repository`. \
                     Each becomes a Flux HelmRepository (`type: oci` for OCI registries), applied before the components using it.",
                ),
            ))
            .with_block(timeouts_block(&["create", "update", "delete"]))
            .describe(
                "A set of platform components applied in dependency order in one run: raw manifests (CRDs and their custom \
                 resources together), manifests from a pinned URL, and Helm charts as Flux HelmReleases. Drift on any owned field \
                 shows in plans; removed objects are pruned; destroy tears down in reverse order. Objects that already exist are \
                 never taken over unless adopted, and only objects carrying this instance's id are deleted.",
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
                Ok(objects) => {
                    if matches!(component.source, Source::Manifests(_)) {
                        warn_literal_secrets(component, &objects, diags);
                    }
                    rendered.push(objects)
                }
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

    async fn modify_plan(&self, ctx: &Context, plan: &mut Plan, diags: &mut Diagnostics) {
        if plan.config.get_attr("namespace").is_none_or(Value::is_null) {
            plan.planned.set_attr("namespace", Value::string(config::DEFAULT_FLUX_NAMESPACE));
        }
        if plan.planned.is_null() {
            return;
        }
        resolve_charts(&mut plan.planned);
        // State from before owner ids (the id was the stack name) gets one at the next apply.
        let legacy = !plan.is_create() && !plan.prior.get_attr("id").and_then(Value::as_str).is_some_and(is_instance_id);
        if !plan.is_create() && !changes_cluster(&plan.prior, &plan.planned) && !legacy {
            // Only how the cluster is reached (or timeouts, force_delete) changed: nothing
            // in the cluster changes.
            for computed in ["id", "objects", "adopted", "object_changes"] {
                plan.planned.set_attr(computed, plan.prior.get_attr(computed).cloned().unwrap_or(Value::Null));
            }
        } else {
            if legacy {
                plan.planned.set_attr("id", Value::Unknown);
            }
            warn_reinstalls(&plan.prior, &plan.planned, diags);
            let looked = self.plan_objects(ctx, plan, diags).await;
            let inventory = looked.as_ref().and_then(|(_, planned)| planned.inventory(&entries(&plan.prior)));
            let objects = inventory.map_or(Value::Unknown, |inventory| {
                Value::Map(inventory.into_iter().map(|(k, v)| (k, v.map_or(Value::Unknown, Value::string))).collect())
            });
            plan.planned.set_attr("objects", objects);
            set_found(plan, looked);
            return;
        }
        // Unchanged configuration: only drift recorded by Read makes an update, and the
        // plan names the objects it concerns.
        if let Some(Value::Map(objects)) = plan.prior.get_attr("objects") {
            if let Some(planned) = repair_plan(objects) {
                plan.planned.set_attr("objects", Value::Map(planned));
                let looked = self.plan_objects(ctx, plan, diags).await;
                set_found(plan, looked);
            }
        }
    }

    async fn create(&self, ctx: &Context, planned: &Value, config: &Value, diags: &mut Diagnostics) -> Option<Value> {
        let scope = operation_scope(ctx, timeouts::timeout(planned, "create", DEFAULT_APPLY_TIMEOUT));
        let mut inner = Diagnostics::new();
        let result = scope.run(async { Ok(self.apply(ctx, &Value::Null, planned, config, &mut inner).await) }).await;
        finish(result, inner, diags)
    }

    async fn read(&self, ctx: &Context, state: &Value, diags: &mut Diagnostics) -> Option<Value> {
        // `object_changes` describes an apply, not the cluster: once read, the next plan lists
        // only what it changes itself.
        let mut state = state.clone();
        if state.get_attr("object_changes").is_some_and(|c| !c.is_null()) {
            state.set_attr("object_changes", Value::Map(BTreeMap::new()));
        }
        let state = &state;
        let objects = entries(state);
        if objects.is_empty() {
            return Some(state.clone());
        }
        let Some(cluster) = self.cluster(state, diags).await else { return Some(state.clone()) };
        let stack = text(state, "name");
        let id = text(state, "id");
        let past = Past::of(state);
        let ops = StackOps::new(&cluster, &stack, Deadline::after(READ_TIMEOUT, ctx.stop.clone()), past.claimant(&id, None));
        let mut scratch = Diagnostics::new();
        let ignored: BTreeMap<String, Vec<Vec<String>>> = stack_components(state, &mut scratch)
            .unwrap_or_default()
            .into_iter()
            .map(|c| (c.name, c.ignore_fields))
            .collect();
        match ops.deadline.run(ops.refresh(&objects, &ignored)).await {
            Ok(refreshed) => {
                let drifted: Vec<&String> = refreshed.iter().filter(|(_, v)| v.is_stale()).map(|(k, _)| k).collect();
                if !drifted.is_empty() {
                    tracing::info!(stack = %stack, objects = ?drifted, "objects changed outside Terraform");
                }
                let mut next = state.clone();
                next.set_attr("objects", entries_value(&refreshed));
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
        config: &Value,
        diags: &mut Diagnostics,
    ) -> Option<Value> {
        if !changes_cluster(prior, planned) && is_instance_id(&text(prior, "id")) && !has_stale_entries(prior) {
            return Some(planned.clone());
        }
        let scope = operation_scope(ctx, timeouts::timeout(planned, "update", DEFAULT_APPLY_TIMEOUT));
        let mut inner = Diagnostics::new();
        let result = scope.run(async { Ok(self.apply(ctx, prior, planned, config, &mut inner).await) }).await;
        finish(result, inner, diags)
    }

    /// Reverse dependency order; inside each level custom resources, then other objects,
    /// then CRDs, then namespaces. Only objects carrying this instance's id are deleted;
    /// adopted ones are released.
    async fn delete(&self, ctx: &Context, prior: &Value, diags: &mut Diagnostics) {
        let objects = metadata::string_map(prior.get_attr("objects")).unwrap_or_default();
        let keys: Vec<ObjectKey> = objects.keys().filter_map(|k| k.parse().ok()).collect();
        if keys.is_empty() {
            return;
        }
        let mut scratch = Diagnostics::new();
        let mut components = stack_components(prior, &mut scratch).unwrap_or_default();
        let levels = config::levels(&mut components, &mut scratch).unwrap_or_default();
        let Some(cluster) = self.cluster(prior, diags).await else { return };
        let stack = text(prior, "name");
        let id = text(prior, "id");
        let past = Past::of(prior);
        let deadline = Deadline::after(timeouts::timeout(prior, "delete", DEFAULT_DELETE_TIMEOUT), ctx.stop.clone());
        let ops = StackOps::new(&cluster, &stack, deadline, past.claimant(&id, None));
        let delete_adopted = |key: &ObjectKey| components.iter().any(|c| c.name == key.component && c.delete_adopted);
        let how = LetGo { delete_adopted: &delete_adopted, force_delete: flag(prior, "force_delete") };
        // Objects of components no longer configured go first.
        let mut order: Vec<Vec<&str>> = vec![keys
            .iter()
            .map(|k| k.component.as_str())
            .filter(|c| !components.iter().any(|comp| comp.name == *c))
            .collect()];
        order.extend(levels.iter().rev().map(|level| level.iter().map(|&i| components[i].name.as_str()).collect()));
        let mut notes = Vec::new();
        for names in order {
            let batch: Vec<ObjectKey> = keys.iter().filter(|k| names.contains(&k.component.as_str())).cloned().collect();
            if batch.is_empty() {
                continue;
            }
            match ops.deadline.run(ops.let_go(&batch, &how)).await {
                Ok(more) => notes.extend(more),
                Err(e) => {
                    report_notes(&stack, notes, diags);
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
        report_notes(&stack, notes, diags);
    }

    /// Import by stack name. Objects carrying an owner id are this stack's when they all
    /// carry the same one (the instance takes that id); labelled objects without an id were
    /// made by someone else and are recorded as adopted: destroy releases them.
    async fn import(&self, ctx: &Context, id: &str, diags: &mut Diagnostics) -> Option<Value> {
        if let Some(problem) = metadata::dns1123_label_problem(id) {
            diags.error("Invalid import id", format!("Import by stack name; {id:?} {problem}."));
            return None;
        }
        let mut state = Value::null_object(&self.schema().implied_type());
        state.set_attr("name", Value::string(id));
        state.set_attr("namespace", Value::string(config::DEFAULT_FLUX_NAMESPACE));
        state.set_attr("component", Value::Set(Vec::new()));
        let cluster = self.cluster(&state, diags).await?;
        let past = Past::default();
        let ops = StackOps::new(&cluster, id, Deadline::after(READ_TIMEOUT, ctx.stop.clone()), past.claimant("", None));
        let labelled = match ops.deadline.run(ops.labelled_objects()).await {
            Ok(objects) => objects,
            Err(e) => {
                diags.error("Could not import stack", e.to_string());
                return None;
            }
        };
        if labelled.is_empty() {
            diags.error("Cannot import stack", format!("No object in the cluster carries the label {STACK_LABEL}={id}."));
            return None;
        }
        let owners: BTreeSet<&str> = labelled.iter().filter_map(|o| o.owner.as_deref()).collect();
        if owners.len() > 1 {
            diags.error(
                "Cannot import stack",
                format!(
                    "Objects labelled {STACK_LABEL}={id} belong to {} different stack instances ({}; annotation {OWNER_ANNOTATION}). \
                     Import cannot tell which one is meant.",
                    owners.len(),
                    owners.iter().copied().collect::<Vec<_>>().join(", ")
                ),
            );
            return None;
        }
        let owner = owners.first().map(|o| o.to_string()).unwrap_or_else(new_instance_id);
        let objects: BTreeMap<String, Entry> = labelled.iter().map(|o| (o.key.to_string(), o.digest.clone())).collect();
        let adopted: BTreeSet<String> = labelled.iter().filter(|o| o.owner.is_none()).map(|o| o.key.to_string()).collect();
        state.set_attr("objects", entries_value(&objects));
        state.set_attr("adopted", string_list_value(&adopted));
        state.set_attr("id", Value::string(owner));
        Some(state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(objects: &[(&str, &str)]) -> Value {
        let mut state = Value::null_object(&StackResource::new(Arc::default()).schema().implied_type());
        state.set_attr("name", Value::string("apps"));
        state.set_attr("objects", Value::Map(objects.iter().map(|(k, v)| (k.to_string(), Value::string(*v))).collect()));
        state
    }

    #[test]
    fn drift_plans_unknown_only_for_the_objects_concerned() {
        let prior = state(&[
            ("app: v1 ConfigMap apps/a", "sha256:aa"),
            ("app: v1 ConfigMap apps/b", "changed outside Terraform"),
            ("app: v1 ConfigMap apps/c", "deleted outside Terraform"),
            ("app: v1 ConfigMap apps/d", "outcome unknown"),
        ]);
        let Some(Value::Map(objects)) = prior.get_attr("objects") else { panic!() };
        let planned = repair_plan(objects).expect("drift makes a plan");
        assert_eq!(planned["app: v1 ConfigMap apps/a"], Value::string("sha256:aa"));
        for stale in ["b", "c", "d"] {
            assert_eq!(planned[&format!("app: v1 ConfigMap apps/{stale}")], Value::Unknown, "{stale}");
        }
        let clean = state(&[("app: v1 ConfigMap apps/a", "sha256:aa")]);
        let Some(Value::Map(objects)) = clean.get_attr("objects") else { panic!() };
        assert_eq!(repair_plan(objects), None);
        assert!(has_stale_entries(&prior) && !has_stale_entries(&clean));
    }

    #[test]
    fn only_what_reaches_the_cluster_makes_an_apply() {
        let prior = state(&[]);
        let mut planned = prior.clone();
        planned.set_attr("cluster", Value::Map([("config_context".to_string(), Value::string("other"))].into()));
        planned.set_attr("force_delete", Value::Bool(true));
        assert!(!changes_cluster(&prior, &planned), "the connection and force_delete change nothing in the cluster");
        planned.set_attr("force_conflicts", Value::Bool(true));
        assert!(changes_cluster(&prior, &planned));
    }

    #[test]
    fn secret_values_written_in_manifests_get_a_warning() {
        let component = |yaml: &str| {
            let block = Value::object([
                ("name".to_string(), Value::string("app")),
                ("manifests".to_string(), Value::string(yaml)),
            ]);
            let mut diags = Diagnostics::new();
            let component = config::components(&Value::object([("component".to_string(), Value::List(vec![block]))]), &mut diags);
            component.and_then(|mut c| c.pop()).expect("component")
        };
        let with_data = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\nstringData:\n  password: hunter2\n";
        let c = component(with_data);
        let objects = config::render("s", "flux-system", &c, &[], None).unwrap();
        let mut diags = Diagnostics::new();
        warn_literal_secrets(&c, &objects, &mut diags);
        let warning = diags.iter().next().expect("a warning");
        assert!(warning.detail.contains("platform_secret") && !warning.detail.contains("hunter2"), "{}", warning.detail);
        let empty = component("apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n");
        let objects = config::render("s", "flux-system", &empty, &[], None).unwrap();
        let mut diags = Diagnostics::new();
        warn_literal_secrets(&empty, &objects, &mut diags);
        assert!(diags.is_empty());
    }

    #[test]
    fn inventory_deleted_entries_are_not_ours_any_more() {
        let past = Past::of(&state(&[("app: v1 ConfigMap apps/a", "sha256:aa"), ("app: v1 ConfigMap apps/gone", "deleted outside Terraform")]));
        assert!(past.inventory.contains(&("".into(), "ConfigMap".into(), Some("apps".into()), "a".into())));
        assert!(!past.inventory.contains(&("".into(), "ConfigMap".into(), Some("apps".into()), "gone".into())));
    }
}
