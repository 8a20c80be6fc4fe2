//! `platform_stack` with real Terraform and a real API server: CRDs and their custom
//! resources in one apply, drift on owned fields only, pruning, teardown order and its
//! blockers, plan-time diagnostics, pinned downloads, Helm components through a fake
//! helm-controller, import.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::flux_standin;
use crate::harness::manifests_server::{sha256_hex, ManifestsServer};
use crate::harness::{cluster, for_each_terraform, kubectl, unique_name, wait_until, CmdOutput, Workdir};

pub(crate) const PROVIDER: &str = concat!(required_providers!(), "provider \"platform\" {}\n");
pub(crate) const ADDR: &str = "platform_stack.this";
const FIELD_MANAGER: &str = "terraform-provider-platform";
const HOLD: &str = "example.com/hold";

// ---------------------------------------------------------------------------------------
// Configuration builders
// ---------------------------------------------------------------------------------------

/// `s` as an HCL string literal (JSON escapes, template sequences escaped).
pub(crate) fn hcl(s: &str) -> String {
    serde_json::to_string(s).unwrap().replace("${", "$${").replace("%{", "%%{")
}

/// One `component` block.
#[derive(Clone)]
pub(crate) struct Component {
    name: String,
    lines: Vec<String>,
}

impl Component {
    pub(crate) fn new(name: &str) -> Component {
        Component { name: name.to_string(), lines: Vec::new() }
    }
    /// `key = <raw HCL>`, or a nested block when `raw` starts with `{`.
    pub(crate) fn attr(mut self, key: &str, raw: &str) -> Component {
        self.lines.push(format!("{key} = {raw}"));
        self
    }
    pub(crate) fn block(mut self, raw: &str) -> Component {
        self.lines.push(raw.to_string());
        self
    }
    pub(crate) fn manifests(self, yaml: &str) -> Component {
        self.attr("manifests", &hcl(yaml))
    }
    pub(crate) fn depends_on(self, names: &[&str]) -> Component {
        let list: Vec<String> = names.iter().map(|n| hcl(n)).collect();
        self.attr("depends_on", &format!("[{}]", list.join(", ")))
    }
    pub(crate) fn namespace(self, namespace: &str) -> Component {
        self.attr("namespace", &hcl(namespace))
    }
    /// A `helm` block; `values` is raw HCL (e.g. `yamlencode({...})`).
    pub(crate) fn helm(self, repository: &str, chart: &str, version: &str, values: Option<&str>) -> Component {
        let values = values.map(|v| format!("\n      values     = {v}")).unwrap_or_default();
        self.block(&format!(
            "helm {{\n      repository = {}\n      chart      = {}\n      version    = {}{values}\n    }}",
            hcl(repository),
            hcl(chart),
            hcl(version)
        ))
    }
    fn render(&self) -> String {
        let mut out = format!("  component {{\n    name = {}\n", hcl(&self.name));
        for line in &self.lines {
            out.push_str(&format!("    {line}\n"));
        }
        out.push_str("  }\n");
        out
    }
}

/// `platform_stack.this` named `name`; `extra` goes in the resource body as is (e.g.
/// `namespace = "..."` or a `timeouts` block).
pub(crate) fn stack_tf(name: &str, extra: &str, components: &[Component]) -> String {
    let blocks: String = components.iter().map(Component::render).collect();
    format!("{PROVIDER}\nresource \"platform_stack\" \"this\" {{\n  name = {}\n  {extra}\n{blocks}}}\n", hcl(name))
}

/// Objects as multi-document YAML (each document in JSON form, which is YAML).
pub(crate) fn docs(objects: &[Value]) -> String {
    objects.iter().map(|o| format!("---\n{o}\n")).collect()
}

pub(crate) fn namespace_obj(name: &str, finalizer: bool) -> Value {
    let mut ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
    if finalizer {
        ns["metadata"]["finalizers"] = json!([HOLD]);
    }
    ns
}

pub(crate) fn configmap(name: &str, namespace: Option<&str>, data: &[(&str, &str)]) -> Value {
    let mut cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {}});
    if let Some(ns) = namespace {
        cm["metadata"]["namespace"] = json!(ns);
    }
    for (k, v) in data {
        cm["data"][*k] = json!(v);
    }
    cm
}

/// A test-only custom resource kind: `<plural>.<group>`, version v1, any spec.
pub(crate) struct Kind {
    group: String,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
}

impl Kind {
    pub(crate) fn new(group: &str, kind: &'static str, plural: &'static str, namespaced: bool) -> Kind {
        Kind { group: group.to_string(), kind, plural, namespaced }
    }
    pub(crate) fn crd_name(&self) -> String {
        format!("{}.{}", self.plural, self.group)
    }
    pub(crate) fn api_version(&self) -> String {
        format!("{}/v1", self.group)
    }
    pub(crate) fn crd(&self) -> Value {
        json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": self.crd_name()},
            "spec": {
                "group": self.group,
                "scope": if self.namespaced { "Namespaced" } else { "Cluster" },
                "names": {"kind": self.kind, "plural": self.plural, "singular": self.kind.to_lowercase(), "listKind": format!("{}List", self.kind)},
                "versions": [{
                    "name": "v1", "served": true, "storage": true,
                    "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                        "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
                    }}}
                }]
            }
        })
    }
    pub(crate) fn object(&self, name: &str, namespace: Option<&str>, spec: Value, finalizer: bool) -> Value {
        let mut o = json!({"apiVersion": self.api_version(), "kind": self.kind, "metadata": {"name": name}, "spec": spec});
        if let Some(ns) = namespace {
            o["metadata"]["namespace"] = json!(ns);
        }
        if finalizer {
            o["metadata"]["finalizers"] = json!([HOLD]);
        }
        o
    }
    pub(crate) fn path(&self, namespace: Option<&str>, name: &str) -> String {
        match namespace {
            Some(ns) => format!("/apis/{}/namespaces/{ns}/{}/{name}", self.api_version(), self.plural),
            None => format!("/apis/{}/{}/{name}", self.api_version(), self.plural),
        }
    }
    pub(crate) fn crd_path(&self) -> String {
        crd_path(&self.crd_name())
    }
    /// The `kubectl` resource name (`plural.group`).
    pub(crate) fn resource(&self) -> String {
        self.crd_name()
    }
    /// The inventory entry of one of its objects.
    pub(crate) fn key(&self, component: &str, namespace: Option<&str>, name: &str) -> String {
        key(component, &self.api_version(), self.kind, namespace, name)
    }
}

/// A group no other test (or earlier run) uses.
pub(crate) fn unique_group() -> String {
    format!("{}.example.com", unique_name("acc"))
}

// ---------------------------------------------------------------------------------------
// Checks
// ---------------------------------------------------------------------------------------

/// An inventory entry, as `objects` keys read.
pub(crate) fn key(component: &str, api_version: &str, kind: &str, namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) => format!("{component}: {api_version} {kind} {ns}/{name}"),
        None => format!("{component}: {api_version} {kind} {name}"),
    }
}

pub(crate) fn crd_path(name: &str) -> String {
    format!("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
}
pub(crate) fn namespace_path(name: &str) -> String {
    format!("/api/v1/namespaces/{name}")
}
pub(crate) fn configmap_path(namespace: &str, name: &str) -> String {
    format!("/api/v1/namespaces/{namespace}/configmaps/{name}")
}
pub(crate) fn secret_path(namespace: &str, name: &str) -> String {
    format!("/api/v1/namespaces/{namespace}/secrets/{name}")
}

#[track_caller]
pub(crate) fn live(path: &str) -> Value {
    cluster().get_json(path).unwrap_or_else(|| panic!("{path} does not exist"))
}

#[track_caller]
pub(crate) fn assert_absent(path: &str) {
    if let Some(o) = cluster().get_json(path) {
        panic!("{path} should not exist; it does: {}", o["metadata"]);
    }
}

/// The stack's `objects` inventory from the state.
#[track_caller]
pub(crate) fn inventory(work: &Workdir) -> BTreeMap<String, String> {
    let values = work.resource_values(ADDR).unwrap_or_else(|| panic!("{ADDR} not in the state"));
    serde_json::from_value(values["objects"].clone()).unwrap_or_else(|e| panic!("objects is not a map ({e}): {values}"))
}

/// The inventory has exactly `expected` keys, each with a digest.
#[track_caller]
pub(crate) fn assert_inventory(work: &Workdir, expected: &[String]) {
    let objects = inventory(work);
    let mut keys: Vec<&String> = objects.keys().collect();
    let mut wanted: Vec<&String> = expected.iter().collect();
    keys.sort();
    wanted.sort();
    assert_eq!(keys, wanted, "inventory keys");
    for (k, digest) in &objects {
        let hex = digest.strip_prefix("sha256:").or_else(|| digest.strip_prefix("hmac-sha256:"));
        assert!(hex.is_some_and(|h| h.len() == 64), "{k} has no digest: {digest:?}");
    }
}

/// Labelled as this stack's and component's, and applied (server-side) by the provider.
#[track_caller]
pub(crate) fn assert_ours(object: &Value, stack: &str, component: &str) {
    let labels = &object["metadata"]["labels"];
    let what = format!("{} {}", object["kind"], object["metadata"]["name"]);
    assert_eq!(labels["platform.terraform.io/stack"], stack, "{what}: stack label in {labels}");
    assert_eq!(labels["platform.terraform.io/component"], component, "{what}: component label in {labels}");
    assert_eq!(labels["app.kubernetes.io/managed-by"], FIELD_MANAGER, "{what}: managed-by label in {labels}");
    let managers = object["metadata"]["managedFields"].as_array().cloned().unwrap_or_default();
    assert!(
        managers.iter().any(|m| m["manager"] == FIELD_MANAGER && m["operation"] == "Apply"),
        "{what}: no server-side apply by {FIELD_MANAGER}: {managers:?}"
    );
}

/// Output with Terraform's diagnostic frame (`│`) and line wrapping taken out.
pub(crate) fn folded(out: &CmdOutput) -> String {
    out.combined().replace(['│', '╷', '╵'], " ").split_whitespace().collect::<Vec<_>>().join(" ")
}

#[track_caller]
pub(crate) fn assert_no_crash(out: &CmdOutput) {
    let text = out.combined();
    assert!(!text.contains("panicked") && !text.contains("crash"), "provider crashed:\n{text}");
}

/// Destroys and checks that every path is gone.
#[track_caller]
pub(crate) fn destroy_and_check_gone(work: &Workdir, paths: &[String]) {
    work.destroy().assert_success();
    for path in paths {
        assert_absent(path);
    }
    let state = work.run(&["state", "list"]);
    assert!(state.stdout.trim().is_empty(), "state after destroy: {}", state.stdout);
}

/// Removes the finalizers of a live object (if it still exists).
fn release_finalizers(path: &str) {
    let _ = cluster().http().request(
        "PATCH",
        path,
        Some("application/merge-patch+json"),
        Some(br#"{"metadata":{"finalizers":null}}"#),
    );
}

// ---------------------------------------------------------------------------------------
// Raw manifests
// ---------------------------------------------------------------------------------------

#[test]
fn crds_and_their_custom_resources_apply_in_one_run() {
    for_each_terraform(|tf| {
        let stack = unique_name("acc-stack");
        let ns = unique_name("acc-stack-ns");
        let group = unique_group();
        let widgets = Kind::new(&group, "Widget", "widgets", true);
        let gadgets = Kind::new(&group, "Gadget", "gadgets", true);
        let gizmos = Kind::new(&group, "Gizmo", "gizmos", false);
        let work = Workdir::new(tf);
        let components = [
            Component::new("crds").manifests(&docs(&[widgets.crd()])),
            Component::new("ns").manifests(&docs(&[namespace_obj(&ns, false)])),
            // Namespaced objects without a namespace land in the component's.
            Component::new("app").depends_on(&["crds", "ns"]).namespace(&ns).manifests(&docs(&[
                widgets.object("w1", None, json!({"size": 3, "tags": ["a", "b"]}), false),
                configmap("settings", None, &[("mode", "production")]),
                configmap("explicit", Some(&ns), &[("k", "v")]),
            ])),
            // A CRD and its custom resources in the same component (namespaced and cluster-scoped).
            Component::new("bundle").depends_on(&["ns"]).manifests(&docs(&[
                gadgets.object("g1", Some(&ns), json!({"colour": "red"}), false),
                gadgets.crd(),
                gizmos.object("gz1", None, json!({"weight": 7}), false),
                gizmos.crd(),
            ])),
        ];
        work.write_main_tf(&stack_tf(&stack, "", &components));
        let out = work.apply();
        out.assert_success();
        assert_no_crash(&out);

        assert_inventory(
            &work,
            &[
                key("crds", "apiextensions.k8s.io/v1", "CustomResourceDefinition", None, &widgets.crd_name()),
                key("ns", "v1", "Namespace", None, &ns),
                widgets.key("app", Some(&ns), "w1"),
                key("app", "v1", "ConfigMap", Some(&ns), "settings"),
                key("app", "v1", "ConfigMap", Some(&ns), "explicit"),
                key("bundle", "apiextensions.k8s.io/v1", "CustomResourceDefinition", None, &gadgets.crd_name()),
                key("bundle", "apiextensions.k8s.io/v1", "CustomResourceDefinition", None, &gizmos.crd_name()),
                gadgets.key("bundle", Some(&ns), "g1"),
                gizmos.key("bundle", None, "gz1"),
            ],
        );
        let state = work.resource_values(ADDR).unwrap();
        let id = state["id"].as_str().unwrap();
        assert!(id.len() == 36 && id != stack, "the id is the instance's owner id, not the name: {id}");
        assert_eq!(state["namespace"], "flux-system", "default Flux namespace");

        let w1 = live(&widgets.path(Some(&ns), "w1"));
        assert_eq!(w1["spec"], json!({"size": 3, "tags": ["a", "b"]}));
        assert_eq!(w1["metadata"]["annotations"]["platform.terraform.io/owner"], id);
        assert_ours(&w1, &stack, "app");
        let settings = live(&configmap_path(&ns, "settings"));
        assert_eq!(settings["data"]["mode"], "production");
        assert_ours(&settings, &stack, "app");
        assert_ours(&live(&configmap_path(&ns, "explicit")), &stack, "app");
        assert_ours(&live(&namespace_path(&ns)), &stack, "ns");
        assert_ours(&live(&widgets.crd_path()), &stack, "crds");
        assert_ours(&live(&gadgets.crd_path()), &stack, "bundle");
        let g1 = live(&gadgets.path(Some(&ns), "g1"));
        assert_eq!(g1["spec"]["colour"], "red");
        assert_ours(&g1, &stack, "bundle");
        let gz1 = live(&gizmos.path(None, "gz1"));
        assert_eq!(gz1["spec"]["weight"], 7);
        assert_ours(&gz1, &stack, "bundle");
        // kubectl sees them through discovery, with our labels.
        let listed = kubectl(&["get", &widgets.resource(), "-n", &ns, "-l", &format!("platform.terraform.io/stack={stack}"), "-o", "name"]);
        listed.assert_success();
        assert_eq!(listed.stdout.trim(), format!("widget.{group}/w1"));

        work.assert_plan_empty();

        destroy_and_check_gone(
            &work,
            &[
                widgets.crd_path(),
                gadgets.crd_path(),
                gizmos.crd_path(),
                namespace_path(&ns),
                gizmos.path(None, "gz1"),
            ],
        );
    });
}

#[test]
fn stack_drift_on_owned_fields_is_planned_and_repaired() {
    for_each_terraform(|tf| {
        let stack = unique_name("acc-drift");
        let ns = unique_name("acc-drift-ns");
        let widgets = Kind::new(&unique_group(), "Widget", "widgets", true);
        let work = Workdir::new(tf);
        let config = |force: bool| {
            stack_tf(
                &stack,
                if force { "force_conflicts = true" } else { "" },
                &[
                    Component::new("base").manifests(&docs(&[namespace_obj(&ns, false), widgets.crd()])),
                    Component::new("app").depends_on(&["base"]).namespace(&ns).manifests(&docs(&[
                        configmap("cm", None, &[("a", "1"), ("b", "2")]),
                        widgets.object("w", None, json!({"size": 3}), false),
                    ])),
                ],
            )
        };
        work.write_main_tf(&config(false));
        work.apply().assert_success();
        work.assert_plan_empty();
        let cm_key = key("app", "v1", "ConfigMap", Some(&ns), "cm");
        let w_key = widgets.key("app", Some(&ns), "w");
        let digests = inventory(&work);

        // What others add (an annotation, a data key, a spec field we never set) is not ours.
        kubectl(&["annotate", "configmap", "cm", "-n", &ns, "note=not-ours"]).assert_success();
        kubectl(&["patch", "configmap", "cm", "-n", &ns, "--type=merge", "-p", r#"{"data":{"extra":"foreign"}}"#]).assert_success();
        kubectl(&["label", "configmap", "cm", "-n", &ns, "team=other"]).assert_success();
        kubectl(&["patch", &widgets.resource(), "w", "-n", &ns, "--type=merge", "-p", r#"{"spec":{"colour":"blue"}}"#])
            .assert_success();
        work.assert_plan_empty();
        let refreshed = work.apply_with(&["-refresh-only"]);
        refreshed.assert_success();
        assert_eq!(inventory(&work), digests, "foreign changes altered the digests");

        // An owned field changed out of band: the plan names the object, and only it.
        kubectl(&["patch", "configmap", "cm", "-n", &ns, "--type=merge", "-p", r#"{"data":{"a":"tampered"}}"#]).assert_success();
        let plan = work.assert_plan_has_changes();
        assert!(plan.stdout.contains(&cm_key), "plan does not name {cm_key}:\n{}", plan.stdout);
        assert!(plan.stdout.contains("changed outside Terraform"), "{}", plan.stdout);
        assert!(!plan.stdout.contains(&w_key), "unchanged widget shown as drifted:\n{}", plan.stdout);
        // kubectl now owns that field: taking it back is a conflict unless forced.
        let out = work.apply();
        assert!(!out.success(), "a field another manager owns was taken without force_conflicts:\n{}", out.describe());
        let text = folded(&out);
        assert!(text.contains("kubectl-patch") && text.contains(".data.a") && text.contains("force_conflicts"), "{}", out.describe());
        assert_eq!(live(&configmap_path(&ns, "cm"))["data"]["a"], "tampered");
        work.write_main_tf(&config(true));
        work.apply().assert_success();
        let cm = live(&configmap_path(&ns, "cm"));
        assert_eq!(cm["data"]["a"], "1", "drift not repaired");
        assert_eq!(cm["data"]["extra"], "foreign", "a foreign data key was removed");
        assert_eq!(cm["metadata"]["annotations"]["note"], "not-ours");
        assert_eq!(cm["metadata"]["labels"]["team"], "other");
        assert_eq!(live(&widgets.path(Some(&ns), "w"))["spec"]["colour"], "blue");
        work.assert_plan_empty();

        // Same for a custom resource's spec, and for one of our labels removed.
        kubectl(&["patch", &widgets.resource(), "w", "-n", &ns, "--type=merge", "-p", r#"{"spec":{"size":99}}"#]).assert_success();
        let plan = work.assert_plan_has_changes();
        assert!(plan.stdout.contains(&w_key) && plan.stdout.contains("changed outside Terraform"), "{}", plan.stdout);
        // The planned actions name the widget only (Terraform 1.0's note on what changed
        // outside Terraform also shows the previous apply's `object_changes` emptied).
        let actions = plan.stdout.split("will perform the following actions").nth(1).unwrap_or_default();
        assert!(actions.contains(&w_key) && !actions.contains(&cm_key), "{}", plan.stdout);
        work.apply().assert_success();
        assert_eq!(live(&widgets.path(Some(&ns), "w"))["spec"]["size"], 3);
        work.assert_plan_empty();

        // Deleted out of band: named as such, recreated.
        let old_uid = live(&configmap_path(&ns, "cm"))["metadata"]["uid"].clone();
        kubectl(&["delete", "configmap", "cm", "-n", &ns]).assert_success();
        let plan = work.assert_plan_has_changes();
        assert!(plan.stdout.contains(&cm_key) && plan.stdout.contains("deleted outside Terraform"), "{}", plan.stdout);
        work.apply().assert_success();
        let cm = live(&configmap_path(&ns, "cm"));
        assert_ne!(cm["metadata"]["uid"], old_uid);
        assert_eq!(cm["data"], json!({"a": "1", "b": "2"}));
        assert_ours(&cm, &stack, "app");
        work.assert_plan_empty();

        destroy_and_check_gone(&work, &[namespace_path(&ns), widgets.crd_path()]);
    });
}

#[test]
fn stack_prunes_removed_documents_and_components() {
    for_each_terraform(|tf| {
        let stack = unique_name("acc-prune");
        let ns = unique_name("acc-prune-ns");
        let work = Workdir::new(tf);
        let cm = |name: &str, data: &[(&str, &str)]| configmap(name, Some(&ns), data);
        let base = Component::new("base").manifests(&docs(&[namespace_obj(&ns, false)]));
        work.write_main_tf(&stack_tf(
            &stack,
            "",
            &[
                base.clone(),
                Component::new("app").depends_on(&["base"]).manifests(&docs(&[
                    cm("keep", &[("a", "1"), ("b", "2")]),
                    cm("drop", &[("x", "1")]),
                    cm("moves", &[("m", "1")]),
                ])),
                Component::new("extra").depends_on(&["base"]).manifests(&docs(&[cm("extra-1", &[]), cm("extra-2", &[])])),
            ],
        ));
        work.apply().assert_success();
        for name in ["keep", "drop", "moves", "extra-1", "extra-2"] {
            live(&configmap_path(&ns, name));
        }
        let keep_uid = live(&configmap_path(&ns, "keep"))["metadata"]["uid"].clone();
        let moves_uid = live(&configmap_path(&ns, "moves"))["metadata"]["uid"].clone();

        // Drop a document and a whole component, move one object to a new component, and
        // drop one data key of a kept object.
        work.write_main_tf(&stack_tf(
            &stack,
            "",
            &[
                base,
                Component::new("app").depends_on(&["base"]).manifests(&docs(&[cm("keep", &[("a", "1")])])),
                Component::new("moved").depends_on(&["app"]).manifests(&docs(&[cm("moves", &[("m", "2")])])),
            ],
        ));
        work.apply().assert_success();
        for gone in ["drop", "extra-1", "extra-2"] {
            assert_absent(&configmap_path(&ns, gone));
        }
        let keep = live(&configmap_path(&ns, "keep"));
        assert_eq!(keep["metadata"]["uid"], keep_uid, "kept object was recreated");
        assert_eq!(keep["data"], json!({"a": "1"}), "a field we stopped applying was not removed");
        let moves = live(&configmap_path(&ns, "moves"));
        assert_eq!(moves["metadata"]["uid"], moves_uid, "an object moved between components was deleted and recreated");
        assert_eq!(moves["data"]["m"], "2");
        assert_ours(&moves, &stack, "moved");
        live(&namespace_path(&ns));
        assert_inventory(
            &work,
            &[
                key("base", "v1", "Namespace", None, &ns),
                key("app", "v1", "ConfigMap", Some(&ns), "keep"),
                key("moved", "v1", "ConfigMap", Some(&ns), "moves"),
            ],
        );
        work.assert_plan_empty();
        destroy_and_check_gone(&work, &[namespace_path(&ns)]);
    });
}

/// Whether an object is there, and whether it is being deleted.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Seen {
    Live,
    Terminating,
    Gone,
}

fn seen(path: &str) -> Seen {
    match cluster().http().get(path) {
        Ok(resp) if resp.status == 404 => Seen::Gone,
        Ok(resp) if resp.ok() => {
            if resp.json()["metadata"]["deletionTimestamp"].is_string() {
                Seen::Terminating
            } else {
                Seen::Live
            }
        }
        _ => Seen::Live,
    }
}

#[test]
fn stack_teardown_runs_custom_resources_first_and_namespaces_last() {
    for_each_terraform(|tf| {
        let stack = unique_name("acc-teardown");
        let ns = unique_name("acc-teardown-ns");
        let widgets = Kind::new(&unique_group(), "Widget", "widgets", true);
        let work = Workdir::new(tf);
        work.write_main_tf(&stack_tf(
            &stack,
            "timeouts {\n    delete = \"3m\"\n  }",
            &[
                Component::new("base").namespace(&ns).manifests(&docs(&[
                    namespace_obj(&ns, true),
                    widgets.crd(),
                    widgets.object("w-base", None, json!({}), true),
                    configmap("cm", None, &[]),
                ])),
                Component::new("late")
                    .depends_on(&["base"])
                    .namespace(&ns)
                    .manifests(&docs(&[widgets.object("w-late", None, json!({}), true)])),
            ],
        ));
        work.apply().assert_success();
        assert_eq!(live(&namespace_path(&ns))["metadata"]["finalizers"], json!([HOLD]));

        // Watch the teardown: when a held object starts terminating, note what else is
        // still there, then let it go.
        let objects: Vec<(&str, String)> = vec![
            ("w-late", widgets.path(Some(&ns), "w-late")),
            ("w-base", widgets.path(Some(&ns), "w-base")),
            ("cm", configmap_path(&ns, "cm")),
            ("crd", widgets.crd_path()),
            ("ns", namespace_path(&ns)),
        ];
        let held = ["w-late", "w-base", "ns"];
        let snapshots: Arc<Mutex<BTreeMap<&str, BTreeMap<&str, Seen>>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let watcher = {
            let (objects, snapshots, stop) = (objects.clone(), snapshots.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let now: BTreeMap<&str, Seen> = objects.iter().map(|(n, p)| (*n, seen(p))).collect();
                    for (name, path) in &objects {
                        if held.contains(name) && now[name] == Seen::Terminating && !snapshots.lock().unwrap().contains_key(name) {
                            snapshots.lock().unwrap().insert(*name, now.clone());
                            release_finalizers(path);
                        }
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            })
        };
        let out = work.destroy();
        stop.store(true, Ordering::SeqCst);
        watcher.join().unwrap();
        out.assert_success();
        for (_, path) in &objects {
            assert_absent(path);
        }
        let snapshots = snapshots.lock().unwrap();
        let at = |name: &str| snapshots.get(name).unwrap_or_else(|| panic!("{name} was never seen terminating: {snapshots:?}"));
        use Seen::*;
        // The later component first...
        let first = at("w-late");
        assert_eq!(
            (first["w-base"], first["cm"], first["crd"], first["ns"]),
            (Live, Live, Live, Live),
            "when w-late started terminating: {first:?}"
        );
        // ...then in the base component custom resources, while their CRD and namespace stay...
        let second = at("w-base");
        assert_eq!(second["w-late"], Gone, "{second:?}");
        assert_eq!((second["cm"], second["crd"], second["ns"]), (Live, Live, Live), "when w-base started terminating: {second:?}");
        // ...and the namespace after everything else, CRD included.
        let last = at("ns");
        assert_eq!(
            (last["w-late"], last["w-base"], last["cm"], last["crd"]),
            (Gone, Gone, Gone, Gone),
            "when the namespace started terminating: {last:?}"
        );
    });
}

#[test]
fn stack_delete_timeout_names_the_blocking_finalizer() {
    for_each_terraform(|tf| {
        let stack = unique_name("acc-stuck");
        let widgets = Kind::new(&unique_group(), "Widget", "widgets", false);
        let work = Workdir::new(tf);
        work.write_main_tf(&stack_tf(
            &stack,
            "timeouts {\n    delete = \"5s\"\n  }",
            &[Component::new("all").manifests(&docs(&[widgets.crd(), widgets.object("stuck", None, json!({}), true)]))],
        ));
        work.apply().assert_success();

        let out = work.destroy();
        out.assert_failure_contains("Stack teardown incomplete");
        let text = folded(&out);
        assert!(text.contains("waiting for deletion; last status: still present:"), "{text}");
        assert!(text.contains(&format!("Widget stuck (finalizers: {HOLD})")), "blocker not named:\n{text}");
        // The CRD waits for its custom resources; the stack stays in the state.
        assert!(cluster().exists(&widgets.crd_path()), "CRD deleted before its custom resource");
        let state = work.run(&["state", "list"]);
        assert!(state.stdout.contains(ADDR), "{}", state.stdout);

        release_finalizers(&widgets.path(None, "stuck"));
        destroy_and_check_gone(&work, &[widgets.crd_path(), widgets.path(None, "stuck")]);
    });
}

// ---------------------------------------------------------------------------------------
// Plan-time diagnostics
// ---------------------------------------------------------------------------------------

#[test]
fn stack_configuration_problems_fail_the_plan_without_a_cluster() {
    let cm = |name: &str, ns: &str| docs(&[configmap(name, Some(ns), &[])]);
    let bad_yaml = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: fine}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n broken: here\n";
    let cases: Vec<(&str, Vec<Component>, Vec<&str>)> = vec![
        (
            "bad YAML",
            vec![Component::new("app").manifests(bad_yaml)],
            vec!["Invalid component", "component \"app\": document 2: invalid YAML", "line 9"],
        ),
        (
            "no metadata.name",
            vec![Component::new("app").manifests("apiVersion: v1\nkind: ConfigMap\nmetadata: {namespace: x}\n")],
            vec!["component \"app\": document 1: metadata.name is missing"],
        ),
        (
            "cycle",
            vec![
                Component::new("a").depends_on(&["c"]).manifests(&cm("a", "x")),
                Component::new("b").depends_on(&["a"]).manifests(&cm("b", "x")),
                Component::new("c").depends_on(&["b"]).manifests(&cm("c", "x")),
            ],
            vec!["Invalid component dependencies", "cycle: a -> c -> b -> a"],
        ),
        (
            "unknown dependency",
            vec![Component::new("a").depends_on(&["nope"]).manifests(&cm("a", "x"))],
            vec!["component \"a\" depends on \"nope\", which is not a component of this stack"],
        ),
        (
            "duplicate object",
            vec![Component::new("one").manifests(&cm("same", "x")), Component::new("two").manifests(&cm("same", "x"))],
            vec!["Duplicate object", "v1 ConfigMap x/same is defined twice: in component \"one\" (document 1) and in component \"two\" (document 1)"],
        ),
        (
            "manifests_url without sha256",
            vec![Component::new("remote").attr("manifests_url", "\"https://example.com/x.yaml\"")],
            vec!["Missing manifests_sha256", "Component \"remote\": `manifests_url` needs `manifests_sha256`"],
        ),
        (
            "bad sha256",
            vec![Component::new("remote")
                .attr("manifests_url", "\"https://example.com/x.yaml\"")
                .attr("manifests_sha256", "\"abc\"")],
            vec!["Invalid sha256", "64 hexadecimal digits"],
        ),
        (
            "two sources",
            vec![Component::new("both").manifests(&cm("a", "x")).attr("manifests_url", "\"https://example.com/x.yaml\"")],
            vec!["Component needs exactly one source", "it sets manifests and manifests_url"],
        ),
        (
            "no source",
            vec![Component::new("empty")],
            vec!["Component needs exactly one source"],
        ),
        (
            "duplicate component",
            vec![Component::new("a").manifests(&cm("a", "x")), Component::new("a").manifests(&cm("b", "x"))],
            vec!["component \"a\" is defined more than once"],
        ),
        (
            "every dependency problem at once",
            vec![
                Component::new("database").manifests(&cm("db", "x")),
                Component::new("app").depends_on(&["databse"]).manifests(&cm("app", "x")),
                Component::new("web").depends_on(&["nope"]).manifests(&cm("web", "x")),
                Component::new("app").manifests(&cm("app2", "x")),
                Component::new("p").depends_on(&["q"]).manifests(&cm("p", "x")),
                Component::new("q").depends_on(&["p"]).manifests(&cm("q", "x")),
            ],
            vec![
                "Duplicate component name",
                "component \"app\" is defined more than once",
                "component \"app\" depends on \"databse\", which is not a component of this stack (did you mean \"database\"?)",
                "component \"web\" depends on \"nope\", which is not a component of this stack",
                "cycle: p -> q -> p",
            ],
        ),
        (
            "Helm values too large to store",
            vec![Component::new("big")
                .helm("https://charts.example.com", "big", "1.0.0", Some("yamlencode({ blob = format(\"%02200000d\", 0) })"))],
            vec!["component \"big\": HelmRelease", "its Helm values are too large", "at most 1 MiB"],
        ),
        (
            "bad helm options",
            vec![Component::new("h").block(
                "helm {\n      repository = \"https://charts.example.com\"\n      chart = \"x\"\n      version = \"1\"\n      crds = \"Always\"\n      timeout = \"5 minutes\"\n      remediation_retries = -1\n      release_name = \"Bad_Name\"\n      values_from {\n        kind = \"Pod\"\n        name = \"x\"\n      }\n    }",
            )],
            vec![
                "crds \"Always\" must be one of Create, CreateReplace, Skip",
                "timeout \"5 minutes\" is not a duration",
                "remediation_retries -1 must be between 0 and 100",
                "release_name \"Bad_Name\"",
                "values_from kind \"Pod\" must be ConfigMap or Secret",
            ],
        ),
        (
            "incomplete helm",
            vec![Component::new("h").block("helm {\n      chart = \"x\"\n    }")],
            vec!["Incomplete Helm chart", "needs `repository`, `chart` and `version`"],
        ),
    ];
    // Problems with stack-level attributes: (what, attributes, components, expected).
    let stack_cases: Vec<(&str, &str, Vec<Component>, Vec<&str>)> = vec![
        (
            "sensitive values without helm",
            "sensitive_values = { a = { \"p\" = \"s\" } }",
            vec![Component::new("a").manifests(&cm("a", "x"))],
            vec!["sensitive_values needs a Helm chart", "Component \"a\": sensitive values are Helm values"],
        ),
        (
            "sensitive values for no component",
            "sensitive_values = { grafanna = { \"p\" = \"s\" } }",
            vec![Component::new("grafana").helm("https://charts.example.com", "grafana", "1.0.0", None)],
            vec!["Sensitive values for no component", "The stack has no component \"grafanna\". Did you mean \"grafana\"?"],
        ),
    ];
    let cases = cases.into_iter().map(|(what, components, expected)| (what, "", components, expected)).chain(stack_cases);
    let cases: Vec<(&str, &str, Vec<Component>, Vec<&str>)> = cases.collect();
    for_each_terraform(|tf| {
        let work = Workdir::without_cluster(tf);
        for (what, extra, components, expected) in &cases {
            work.write_main_tf(&stack_tf("diag", extra, components));
            let out = work.plan();
            assert!(!out.success(), "{what}: plan succeeded:\n{}", out.describe());
            let text = out.combined();
            // Terraform wraps long diagnostics: compare with line breaks folded.
            let folded = folded(&out);
            for needle in expected {
                assert!(folded.contains(needle), "{what}: no {needle:?} in:\n{text}");
            }
            assert!(text.contains(r#"resource "platform_stack" "this""#), "{what}: not attached to the resource:\n{text}");
            assert!(!text.contains("cannot reach") && !text.contains("kubeconfig"), "{what}: plan touched a cluster:\n{text}");
            assert_no_crash(&out);
        }
        // A valid stack plans without any cluster.
        work.write_main_tf(&stack_tf(
            "diag",
            "",
            &[
                Component::new("a").manifests(&cm("a", "x")),
                Component::new("b").depends_on(&["a"]).manifests(&cm("b", "x")),
            ],
        ));
        let plan = work.plan();
        plan.assert_success();
        assert!(plan.stdout.contains("1 to add"), "{}", plan.stdout);
    });
}

/// The same object written once with its namespace and once through the component's
/// default namespace is still one object defined twice.
#[test]
fn stack_duplicate_through_the_default_namespace_is_refused() {
    for_each_terraform(|tf| {
        let stack = unique_name("acc-dupns");
        let ns = unique_name("acc-dupns-ns");
        let work = Workdir::new(tf);
        work.write_main_tf(&stack_tf(
            &stack,
            "",
            &[
                Component::new("base").manifests(&docs(&[namespace_obj(&ns, false)])),
                Component::new("one").depends_on(&["base"]).manifests(&docs(&[configmap("same", Some(&ns), &[("from", "one")])])),
                Component::new("two")
                    .depends_on(&["base"])
                    .namespace(&ns)
                    .manifests(&docs(&[configmap("same", None, &[("from", "two")])])),
            ],
        ));
        let out = work.apply();
        let refused = !out.success() && folded(&out).contains("defined twice");
        if !refused {
            // Show what happens instead: the plan never settles.
            let (code, plan) = work.plan_detailed();
            let _ = work.destroy();
            panic!(
                "ConfigMap {ns}/same in components \"one\" and \"two\" was not refused (apply {}); next plan exit code {code}:\n{}\n{}",
                out.status,
                out.describe(),
                plan.stdout
            );
        }
        let _ = work.destroy();
        let _ = kubectl(&["delete", "namespace", &ns, "--ignore-not-found", "--wait=false"]);
    });
}

// ---------------------------------------------------------------------------------------
// Manifests from a URL
// ---------------------------------------------------------------------------------------

#[test]
fn stack_manifests_url_applies_only_with_the_pinned_checksum() {
    let server = ManifestsServer::start();
    for_each_terraform(|tf| {
        let stack = unique_name("acc-url");
        let ns = unique_name("acc-url-ns");
        let work = Workdir::new(tf);
        let remote_yaml = docs(&[configmap("remote-1", Some(&ns), &[("from", "url")]), configmap("remote-2", Some(&ns), &[])]);
        let file = format!("{stack}/remote.yaml");
        let url = server.put(&file, &remote_yaml);
        let config = |sha: &str, inline: &[Value]| {
            let mut inline_docs = vec![namespace_obj(&ns, false)];
            inline_docs.extend_from_slice(inline);
            stack_tf(
                &stack,
                "",
                &[
                    Component::new("inline").manifests(&docs(&inline_docs)),
                    Component::new("remote")
                        .depends_on(&["inline"])
                        .attr("manifests_url", &hcl(&url))
                        .attr("manifests_sha256", &hcl(sha)),
                ],
            )
        };

        // A wrong checksum: refused before anything reaches the cluster.
        let wrong = sha256_hex("something else");
        work.write_main_tf(&config(&wrong, &[]));
        let out = work.apply();
        out.assert_failure_contains("Manifests download refused");
        let text = folded(&out);
        assert!(text.contains(&format!("not the pinned {wrong}")), "{text}");
        assert!(text.contains(&sha256_hex(&remote_yaml)), "actual checksum not shown: {text}");
        assert!(text.contains("Nothing was applied"), "{text}");
        assert!(server.hits(&file) >= 1, "the URL was never fetched: {:?}", server.requests());
        assert_absent(&namespace_path(&ns));
        assert_absent(&configmap_path(&ns, "remote-1"));

        // The right one (upper case is fine too).
        work.write_main_tf(&config(&sha256_hex(&remote_yaml).to_uppercase(), &[]));
        let out = work.apply();
        out.assert_success();
        let remote = live(&configmap_path(&ns, "remote-1"));
        assert_eq!(remote["data"]["from"], "url");
        assert_ours(&remote, &stack, "remote");
        assert_ours(&live(&configmap_path(&ns, "remote-2")), &stack, "remote");
        assert_inventory(
            &work,
            &[
                key("inline", "v1", "Namespace", None, &ns),
                key("remote", "v1", "ConfigMap", Some(&ns), "remote-1"),
                key("remote", "v1", "ConfigMap", Some(&ns), "remote-2"),
            ],
        );
        let fetched = server.hits(&file);
        work.assert_plan_empty();
        assert_eq!(server.hits(&file), fetched, "a plan downloaded the manifests again");

        // The file changes behind the pinned checksum: an update is refused as a whole,
        // including the inline component's new object.
        server.put(&file, &docs(&[configmap("remote-1", Some(&ns), &[("from", "tampered")])]));
        work.write_main_tf(&config(&sha256_hex(&remote_yaml), &[configmap("inline-new", Some(&ns), &[])]));
        let out = work.apply();
        out.assert_failure_contains("Manifests download refused");
        assert_absent(&configmap_path(&ns, "inline-new"));
        assert_eq!(live(&configmap_path(&ns, "remote-1"))["data"]["from"], "url");

        destroy_and_check_gone(&work, &[namespace_path(&ns), configmap_path(&ns, "remote-1")]);
    });
}

// ---------------------------------------------------------------------------------------
// Workloads, import
// ---------------------------------------------------------------------------------------

#[test]
fn stack_deployment_applies_without_waiting_on_a_cluster_without_nodes() {
    for_each_terraform(|tf| {
        let stack = unique_name("acc-deploy");
        let ns = unique_name("acc-deploy-ns");
        let work = Workdir::new(tf);
        let deployment = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web"},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "web", "image": "registry.invalid/web:1"}]}
                }
            }
        });
        work.write_main_tf(&stack_tf(
            &stack,
            "timeouts {\n    create = \"3m\"\n  }",
            &[
                Component::new("ns").manifests(&docs(&[namespace_obj(&ns, false)])),
                Component::new("app").depends_on(&["ns"]).namespace(&ns).attr("wait", "true").manifests(&docs(&[deployment])),
            ],
        ));
        let started = Instant::now();
        let out = work.apply();
        out.assert_success();
        assert!(started.elapsed() < Duration::from_secs(90), "apply took {:?}", started.elapsed());
        let path = format!("/apis/apps/v1/namespaces/{ns}/deployments/web");
        let web = live(&path);
        assert_ours(&web, &stack, "app");
        assert_eq!(web["spec"]["replicas"], 2);
        // The controller manager works on it (a ReplicaSet appears), pods never run.
        wait_until("a ReplicaSet for the Deployment", Duration::from_secs(60), || {
            let list = cluster().get_json(&format!("/apis/apps/v1/namespaces/{ns}/replicasets")).unwrap();
            if list["items"].as_array().is_some_and(|items| !items.is_empty()) { Ok(()) } else { Err("none".into()) }
        });
        // Status updates by the controllers are not drift.
        work.assert_plan_empty();
        destroy_and_check_gone(&work, &[path, namespace_path(&ns)]);
    });
}

#[test]
fn stack_import_adopts_labelled_objects() {
    for_each_terraform(|tf| {
        let stack = unique_name("acc-import");
        let ns = unique_name("acc-import-ns");
        let widgets = Kind::new(&unique_group(), "Widget", "widgets", true);
        let work = Workdir::new(tf);
        let components = [
            Component::new("base").manifests(&docs(&[namespace_obj(&ns, false), widgets.crd()])),
            Component::new("app").depends_on(&["base"]).namespace(&ns).manifests(&docs(&[
                configmap("cm", None, &[("a", "1")]),
                widgets.object("w", None, json!({"size": 1}), false),
            ])),
        ];
        work.write_main_tf(&stack_tf(&stack, "", &components));
        work.apply().assert_success();
        let expected = inventory(&work);
        let cm_uid = live(&configmap_path(&ns, "cm"))["metadata"]["uid"].clone();
        let id = work.resource_values(ADDR).unwrap()["id"].clone();

        work.run(&["state", "rm", ADDR]).assert_success();
        let out = work.import(ADDR, &stack);
        out.assert_success();
        assert_eq!(work.resource_values(ADDR).unwrap()["id"], id, "import did not take the objects' owner id");
        let imported = inventory(&work);
        for k in expected.keys() {
            assert!(imported.contains_key(k), "import did not find {k}: {imported:?}");
        }
        assert_eq!(work.resource_values(ADDR).unwrap()["name"], stack.as_str());

        // The first apply re-applies the configuration; then nothing is left to do.
        work.apply().assert_success();
        assert_eq!(inventory(&work).keys().collect::<Vec<_>>(), expected.keys().collect::<Vec<_>>());
        assert_eq!(live(&configmap_path(&ns, "cm"))["metadata"]["uid"], cm_uid, "import recreated an object");
        work.assert_plan_empty();

        // Nothing carries an unknown stack's label.
        work.run(&["state", "rm", ADDR]).assert_success();
        let nothing = unique_name("acc-nothing");
        let out = work.import(ADDR, &nothing);
        out.assert_failure_contains("Cannot import stack");
        assert!(folded(&out).contains(&format!("platform.terraform.io/stack={nothing}")), "{}", out.describe());
        assert!(work.run(&["state", "list"]).stdout.trim().is_empty());
        work.import(ADDR, &stack).assert_success();
        destroy_and_check_gone(&work, &[namespace_path(&ns), widgets.crd_path()]);
    });
}

// ---------------------------------------------------------------------------------------
// Helm components through the helm-controller stand-in
// ---------------------------------------------------------------------------------------

/// The Flux namespace of a Helm test, created by the stack itself.
pub(crate) fn flux_namespace_component(namespace: &str) -> Component {
    Component::new("flux-ns").manifests(&docs(&[namespace_obj(namespace, false)]))
}

#[test]
fn helm_release_ready_with_fake_helm_controller() {
    flux_standin::ensure();
    for_each_terraform(|tf| {
        let stack = unique_name("acc-helm");
        let crds_name = format!("{stack}-crds-chart");
        let app_name = format!("{stack}-app");
        let flux_ns = unique_name("acc-helm-flux");
        let target = unique_name("acc-helm-target");
        let password = format!("pw-{}", unique_name("s3cret"));
        let mut work = Workdir::new(tf);
        work.set_env("TF_VAR_password", &password);
        work.write_main_tf(&format!(
            "{}\nvariable \"password\" {{\n  type      = string\n  sensitive = true\n}}\n",
            stack_tf(
                &stack,
                &format!(
                    "namespace = {}\n  sensitive_values = {{ app = {{ \"auth.password\" = var.password }} }}\n  timeouts {{\n    create = \"2m\"\n  }}",
                    hcl(&flux_ns)
                ),
                &[
                    flux_namespace_component(&flux_ns),
                    Component::new("crds-chart").depends_on(&["flux-ns"]).helm(
                        "https://charts.example.com/stable",
                        "crds",
                        "1.2.3",
                        Some("yamlencode({ fake = { delaySeconds = 3 }, replicas = 2 })"),
                    ),
                    Component::new("app")
                        .depends_on(&["crds-chart", "flux-ns"])
                        .namespace(&target)
                        .helm("oci://registry.example.com/charts", "app-chart", "4.5.6", Some("yamlencode({ image = { tag = \"v1\" } })")),
                ],
            )
        ));
        let plan = work.plan();
        plan.assert_success();
        let started = Instant::now();
        let apply = work.run_with_env(&["apply", "-auto-approve", "-input=false", "-no-color"], &[("TF_LOG", "trace")]);
        apply.assert_success();
        let finished = Instant::now();

        // The apply waited for Ready, which the fake only reports after its delay.
        let crds = flux_standin::helm_release(&flux_ns, &crds_name).expect("HelmRelease crds-chart");
        assert!(flux_standin::is_ready(&crds), "apply returned before crds-chart was Ready: {}", crds["status"]);
        let ready_at = flux_standin::events_for(&flux_ns, &crds_name)
            .iter()
            .find(|e| e.outcome == "Ready")
            .map(|e| e.at)
            .expect("fake controller never made crds-chart Ready");
        assert!(ready_at > started && ready_at < finished, "crds-chart became Ready outside the apply");
        assert!(
            flux_standin::events_for(&flux_ns, &crds_name).iter().any(|e| e.outcome == "Progressing"),
            "the fake never reported progress"
        );
        let app = flux_standin::helm_release(&flux_ns, &app_name).expect("HelmRelease app");
        assert!(flux_standin::is_ready(&app), "{}", app["status"]);
        // app waited for crds-chart (helm-controller's dependsOn, and our level order).
        let app_ready = flux_standin::events_for(&flux_ns, &app_name).iter().find(|e| e.outcome == "Ready").map(|e| e.at).unwrap();
        assert!(app_ready > ready_at);

        // HelmRepository + HelmRelease with chart, version and sourceRef.
        let repo = flux_standin::helm_repository(&flux_ns, &crds_name).expect("HelmRepository crds-chart");
        assert_eq!(repo["spec"]["url"], "https://charts.example.com/stable");
        assert_ours(&repo, &stack, "crds-chart");
        assert_ours(&crds, &stack, "crds-chart");
        let spec = &crds["spec"];
        assert_eq!(
            spec["chart"]["spec"],
            json!({"chart": "crds", "version": "1.2.3", "sourceRef": {"kind": "HelmRepository", "name": crds_name, "namespace": flux_ns}})
        );
        assert_eq!(spec["targetNamespace"], "crds-chart", "target namespace defaults to the component name");
        assert_eq!(spec["install"]["createNamespace"], true);
        assert_eq!(spec["releaseName"], crds_name.as_str(), "release names are per stack");
        assert_eq!(spec["values"], json!({"fake": {"delaySeconds": 3}, "replicas": 2}));
        assert!(spec.get("dependsOn").is_none(), "dependsOn on a manifests component: {}", spec["dependsOn"]);

        // OCI: an OCIRepository and a chartRef; dependsOn mirrors the Helm dependency only.
        let oci = flux_standin::oci_repository(&flux_ns, &app_name).expect("OCIRepository app");
        assert_eq!(oci["spec"]["url"], "oci://registry.example.com/charts/app-chart");
        assert_eq!(oci["spec"]["ref"], json!({"tag": "4.5.6"}));
        assert_ours(&oci, &stack, "app");
        // Written at v1, which the fixture CRD serves (as Flux 2.6 and later do).
        let written_at: Vec<&Value> = oci["metadata"]["managedFields"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|f| f["manager"] == "terraform-provider-platform")
            .map(|f| &f["apiVersion"])
            .collect();
        assert_eq!(written_at, vec!["source.toolkit.fluxcd.io/v1"], "{}", oci["metadata"]["managedFields"]);
        let spec = &app["spec"];
        assert_eq!(spec["chartRef"], json!({"kind": "OCIRepository", "name": app_name, "namespace": flux_ns}));
        assert!(spec.get("chart").is_none());
        assert_eq!(spec["dependsOn"], json!([{"name": crds_name, "namespace": flux_ns}]));
        assert_eq!(spec["targetNamespace"], target.as_str());
        assert_eq!(spec["install"]["createNamespace"], true);

        // Sensitive values: a Secret referenced by valuesFrom, never in the release or output.
        let secret_name = format!("{stack}.app.helm-values");
        assert_eq!(
            spec["valuesFrom"],
            json!([{"kind": "Secret", "name": secret_name, "valuesKey": "auth.password", "targetPath": "auth.password"}])
        );
        assert_eq!(spec["values"], json!({"image": {"tag": "v1"}}));
        let secret = live(&secret_path(&flux_ns, &secret_name));
        assert_ours(&secret, &stack, "app");
        use base64::Engine as _;
        let stored = base64::engine::general_purpose::STANDARD.decode(secret["data"]["auth.password"].as_str().unwrap()).unwrap();
        assert_eq!(String::from_utf8(stored).unwrap(), password);
        let encoded = base64::engine::general_purpose::STANDARD.encode(&password);
        for (what, text) in [("plan", plan.combined()), ("apply", apply.combined())] {
            assert!(!text.contains(&password) && !text.contains(&encoded), "{what} output shows the sensitive value:\n{text}");
        }
        assert!(apply.combined().contains("provider.terraform-provider-platform"), "no provider log lines in the apply");

        assert_inventory(
            &work,
            &[
                key("flux-ns", "v1", "Namespace", None, &flux_ns),
                key("crds-chart", "source.toolkit.fluxcd.io/v1", "HelmRepository", Some(&flux_ns), &crds_name),
                key("crds-chart", "helm.toolkit.fluxcd.io/v2", "HelmRelease", Some(&flux_ns), &crds_name),
                key("app", "source.toolkit.fluxcd.io/v1", "OCIRepository", Some(&flux_ns), &app_name),
                key("app", "helm.toolkit.fluxcd.io/v2", "HelmRelease", Some(&flux_ns), &app_name),
                key("app", "v1", "Secret", Some(&flux_ns), &secret_name),
            ],
        );
        // The status the controller writes is not drift.
        work.assert_plan_empty();
        destroy_and_check_gone(&work, &[namespace_path(&flux_ns), secret_path(&flux_ns, &secret_name)]);
        assert!(flux_standin::helm_release(&flux_ns, &app_name).is_none());
    });
}

#[test]
fn helm_release_failure_with_fake_helm_controller_quotes_the_reason() {
    flux_standin::ensure();
    for_each_terraform(|tf| {
        let stack = unique_name("acc-helmfail");
        let web = format!("{stack}-web");
        let flux_ns = unique_name("acc-helmfail-flux");
        let work = Workdir::new(tf);
        let config = |values: &str| {
            stack_tf(
                &stack,
                &format!("namespace = {}\n  timeouts {{\n    create = \"2m\"\n    update = \"15s\"\n  }}", hcl(&flux_ns)),
                &[
                    flux_namespace_component(&flux_ns),
                    Component::new("web").depends_on(&["flux-ns"]).helm("https://charts.example.com", "web", "1.0.0", Some(values)),
                ],
            )
        };
        work.write_main_tf(&config("yamlencode({ fake = {} })"));
        work.apply().assert_success();
        assert_eq!(flux_standin::helm_release(&flux_ns, &web).unwrap()["metadata"]["generation"], 1);

        // helm-controller gives up (Stalled): the apply fails at once, quoting it.
        let message = "Helm install failed for release web: context deadline exceeded";
        work.write_main_tf(&config(&format!("yamlencode({{ fake = {{ fail = true, message = {} }} }})", hcl(message))));
        let started = Instant::now();
        let out = work.apply();
        out.assert_failure_contains("Component \"web\" failed");
        let text = folded(&out);
        assert!(text.contains("RetriesExceeded: Failed to install after 3 attempt(s)"), "reason and message not quoted:\n{text}");
        assert!(text.contains(&format!("HelmRelease {flux_ns}/{web}")), "release not named:\n{text}");
        assert!(started.elapsed() < Duration::from_secs(14), "a stalled release waited for the timeout");
        // A failed update is planned again.
        work.assert_plan_has_changes();

        // Fixed, but helm-controller takes a while to notice: the old generation's Stalled
        // no longer counts, and the apply waits for the new one.
        work.write_main_tf(&config("yamlencode({ fake = { silentSeconds = 3 } })"));
        let out = work.apply();
        out.assert_success();
        let release = flux_standin::helm_release(&flux_ns, &web).unwrap();
        assert_eq!(release["metadata"]["generation"], 3);
        assert!(flux_standin::is_ready(&release), "{}", release["status"]);
        work.assert_plan_empty();

        // A failure helm-controller keeps retrying (Ready=False, not Stalled) is waited on
        // until the timeout, whose message quotes the last reason and message.
        let retry_message = "Helm upgrade failed: pre-upgrade hooks failed";
        work.write_main_tf(&config(&format!("yamlencode({{ fake = {{ fail = \"retrying\", message = {} }} }})", hcl(retry_message))));
        let out = work.apply();
        out.assert_failure_contains("timed out");
        let text = folded(&out);
        assert!(text.contains(&format!("InstallFailed: {retry_message}")), "last status not quoted:\n{text}");
        assert!(text.contains(&format!("HelmRelease {flux_ns}/{web} to be Ready")), "{text}");

        destroy_and_check_gone(&work, &[namespace_path(&flux_ns)]);
    });
}

/// Tried once per test binary before the Flux stand-in CRDs go in (see `flux_standin`).
#[test]
fn helm_without_flux_crds_says_flux_is_not_installed() {
    let Some(runs) = flux_standin::runs_without_flux() else {
        panic!("the Flux CRDs were installed before these tests started: this test needs a cluster without Flux");
    };
    let runs = runs.as_ref().unwrap();
    assert_eq!(runs.len(), crate::harness::terraform_binaries().len());
    for run in runs {
        let context = format!("[terraform {}]", run.terraform);
        assert!(!run.apply.success(), "{context} apply succeeded without Flux:\n{}", run.apply.describe());
        let text = folded(&run.apply);
        for needle in ["Component \"chart\" failed", "Flux is not installed", "helm.toolkit.fluxcd.io/v2 HelmRelease", "depends_on"] {
            assert!(text.contains(needle), "{context} no {needle:?} in:\n{}", run.apply.describe());
        }
        assert_no_crash(&run.apply);
        // The component before it was applied and is recorded: the failed create is tainted
        // with the objects it wrote, and destroy removes exactly those.
        assert!(run.namespace_applied, "{context} the plain component was not applied");
        assert!(run.state_id.is_some() && run.state_id == run.owner, "{context} state id {:?}, owner {:?}", run.state_id, run.owner);
        assert!(text.contains("terraform untaint"), "{context} {}", run.apply.describe());
        run.destroy.assert_success();
        assert!(!run.namespace_left, "{context} namespace {} outlived the destroy of the stack that created it", run.namespace);
    }
}

/// Flux sets a `valuesFrom` entry with a `targetPath` the way `helm --set` does, so a
/// value with a ',' (or one that looks like a bool or number) must be escaped in the
/// Secret to reach the chart unchanged.
#[test]
fn helm_sensitive_values_are_stored_for_flux_target_paths() {
    flux_standin::ensure();
    for_each_terraform(|tf| {
        let stack = unique_name("acc-helmsec");
        let flux_ns = unique_name("acc-helmsec-flux");
        let work = Workdir::new(tf);
        let config = |password: &str| {
            stack_tf(
                &stack,
                &format!(
                    "namespace = {}\n  sensitive_values = {{ db = {{ \"auth.password\" = {}, \"auth.pin\" = \"1234\", plain = \"word\" }} }}\n  timeouts {{\n    create = \"2m\"\n  }}",
                    hcl(&flux_ns),
                    hcl(password)
                ),
                &[
                    flux_namespace_component(&flux_ns),
                    Component::new("db")
                        .depends_on(&["flux-ns"])
                        // Not waiting: the fake would only get to it after a minute.
                        .attr("wait", "false")
                        .helm("https://charts.example.com", "db", "1.0.0", Some("yamlencode({ fake = { silentSeconds = 60 } })")),
                ],
            )
        };
        work.write_main_tf(&config("pa,ss"));
        let started = Instant::now();
        work.apply().assert_success();
        assert!(started.elapsed() < Duration::from_secs(50), "wait = false still waited");
        let db = flux_standin::helm_release(&flux_ns, &format!("{stack}-db")).unwrap();
        assert!(!flux_standin::is_ready(&db), "the fake should not have reconciled yet");
        let secret = live(&secret_path(&flux_ns, &format!("{stack}.db.helm-values")));
        use base64::Engine as _;
        let value = |k: &str| {
            String::from_utf8(base64::engine::general_purpose::STANDARD.decode(secret["data"][k].as_str().unwrap()).unwrap()).unwrap()
        };
        assert_eq!(value("plain"), "word");
        let stored = (value("auth.password"), value("auth.pin"));
        // The release is marked with the Secret's version, never with the values.
        let marked = |release: &Value| release["metadata"]["annotations"]["reconcile.fluxcd.io/requestedAt"].clone();
        let version = marked(&db);
        assert_eq!(version, json!(format!("{stack}.db.helm-values={}", secret["metadata"]["resourceVersion"].as_str().unwrap())));
        work.assert_plan_empty();
        // A changed sensitive value asks Flux to reconcile the release now (the same
        // generation: only the request annotation changes).
        work.write_main_tf(&config("n3w,pass"));
        work.apply().assert_success();
        let rolled = flux_standin::helm_release(&flux_ns, &format!("{stack}-db")).unwrap();
        let secret = live(&secret_path(&flux_ns, &format!("{stack}.db.helm-values")));
        assert_ne!(marked(&rolled), version, "the release was not asked to reconcile");
        assert_eq!(marked(&rolled), json!(format!("{stack}.db.helm-values={}", secret["metadata"]["resourceVersion"].as_str().unwrap())));
        work.assert_plan_empty();
        let _ = work.destroy();
        assert_eq!(
            stored,
            ("pa\\,ss".to_string(), "\"1234\"".to_string()),
            "sensitive values stored raw: Flux would cut \"pa,ss\" at the comma and turn \"1234\" into a number"
        );
    });
}

/// A first apply that fails half-way leaves what it applied in the state; fixing the
/// configuration then finishes the stack without deleting what is already there.
#[test]
fn stack_failed_create_is_finished_by_the_next_apply() {
    for_each_terraform(|tf| {
        let stack = unique_name("acc-retry");
        let ns = unique_name("acc-retry-ns");
        let widgets = Kind::new(&unique_group(), "Widget", "widgets", true);
        let work = Workdir::new(tf);
        let config = |with_crd: bool| {
            let mut app = vec![widgets.object("w", Some(&ns), json!({}), false)];
            if with_crd {
                app.insert(0, widgets.crd());
            }
            stack_tf(
                &stack,
                "",
                &[
                    Component::new("base").manifests(&docs(&[namespace_obj(&ns, false), configmap("cm", Some(&ns), &[])])),
                    Component::new("app").depends_on(&["base"]).manifests(&docs(&app)),
                ],
            )
        };
        // The custom resource's CRD is missing: the second component fails.
        work.write_main_tf(&config(false));
        let out = work.apply();
        out.assert_failure_contains("Component \"app\" failed");
        assert!(folded(&out).contains(&format!("the cluster does not serve {}/v1 Widget", widgets.group)), "{}", out.describe());
        let ns_uid = live(&namespace_path(&ns))["metadata"]["uid"].clone();
        let cm_uid = live(&configmap_path(&ns, "cm"))["metadata"]["uid"].clone();
        // The state records what was written (Terraform taints it), so nothing is forgotten.
        let values = work.resource_values("platform_stack.this").expect("a failed create left no state");
        let id = values["id"].as_str().unwrap().to_string();
        assert!(values["objects"].as_object().unwrap().contains_key(&key("base", "v1", "ConfigMap", Some(&ns), "cm")), "{values}");
        assert!(folded(&out).contains("terraform untaint"), "{}", out.describe());
        // And how to remove what it wrote by hand, in teardown order.
        let text = folded(&out);
        let (cm, namespace) = (format!("kubectl delete -n {ns} configmap/cm"), format!("kubectl delete namespace/{ns}"));
        assert!(text.find(&cm).is_some_and(|at| text.find(&namespace).is_some_and(|later| at < later)), "{text}");
        assert_eq!(live(&configmap_path(&ns, "cm"))["metadata"]["annotations"]["platform.terraform.io/owner"], id.as_str());

        // Untainted, the next apply finishes the create: nothing is deleted and re-created.
        work.write_main_tf(&config(true));
        work.run(&["untaint", "platform_stack.this"]).assert_success();
        let plan = work.plan();
        plan.assert_success();
        assert!(!plan.stdout.contains("must be replaced"), "{}", plan.stdout);
        work.apply().assert_success();
        assert_eq!(live(&namespace_path(&ns))["metadata"]["uid"], ns_uid, "the namespace was deleted and recreated");
        assert_eq!(live(&configmap_path(&ns, "cm"))["metadata"]["uid"], cm_uid, "the ConfigMap was deleted and recreated");
        live(&widgets.path(Some(&ns), "w"));
        work.assert_plan_empty();
        destroy_and_check_gone(&work, &[namespace_path(&ns), widgets.crd_path()]);
    });
}
