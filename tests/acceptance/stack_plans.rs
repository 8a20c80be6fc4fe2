//! Plans of `platform_stack` that tell the truth, read from `terraform show -json` of a saved
//! plan: which inventory entries stay known, which become unknown, which keys come and go;
//! removed HelmReleases named in a warning; objects the API server rejects failing the plan.

use serde_json::Value;

use crate::harness::{
    cluster, flux_standin, for_each_terraform, newest_terraform, oldest_terraform, unique_name, Workdir,
};
use crate::stack::{
    assert_absent, configmap, configmap_path, docs, flux_namespace_component, folded, hcl, live, namespace_obj,
    secret_path, stack_tf, Component, ADDR,
};

/// The stack's `change` in a saved plan.
#[track_caller]
fn stack_change(plan: &Value) -> Value {
    plan["resource_changes"]
        .as_array()
        .and_then(|changes| changes.iter().find(|c| c["address"] == ADDR))
        .map(|c| c["change"].clone())
        .unwrap_or_else(|| panic!("no change of {ADDR} in {plan}"))
}

/// The planned change of the stack: (`after.objects`, `after_unknown.objects`).
#[track_caller]
fn planned_objects(plan: &Value) -> (serde_json::Map<String, Value>, Value) {
    let change = stack_change(plan);
    let after = change["after"]["objects"].as_object().cloned().unwrap_or_default();
    (after, change["after_unknown"]["objects"].clone())
}

/// Inventory keys planned unknown (`after_unknown.objects.<key> = true`), sorted.
fn unknown_keys(after_unknown: &Value) -> Vec<String> {
    let mut keys: Vec<String> = after_unknown
        .as_object()
        .map(|m| m.iter().filter(|(_, v)| **v == Value::Bool(true)).map(|(k, _)| k.clone()).collect())
        .unwrap_or_default();
    keys.sort();
    keys
}

fn configmaps(namespace: &str, count: usize, changed: Option<usize>) -> String {
    let mut objects = vec![namespace_obj(namespace, false)];
    for i in 0..count {
        let value = if Some(i) == changed { "changed" } else { "original" };
        objects.push(configmap(&format!("cm-{i:03}"), Some(namespace), &[("value", value)]));
    }
    docs(&objects)
}

/// Finding 1: one changed value used to turn the whole inventory unknown (and every object
/// into a removal line). Now the unchanged objects keep their known entries, the changed and
/// the added object are unknown, and the removed one is a removed key.
#[test]
fn one_changed_value_plans_only_that_object_and_the_added_one_unknown() {
    for_each_terraform(|tf| {
        let stack = unique_name("acc-plan");
        let namespace = unique_name("acc-plan-ns");
        let work = Workdir::new(tf);
        let tf_text =
            |yaml: String| stack_tf(&stack, "", &[Component::new("app").namespace(&namespace).manifests(&yaml)]);
        work.write_main_tf(&tf_text(configmaps(&namespace, 40, None)));
        work.apply().assert_success();
        work.assert_plan_empty();

        // cm-007 changes, cm-039 goes, cm-new comes.
        let mut changed = configmaps(&namespace, 39, Some(7));
        changed.push_str(&docs(&[configmap("cm-new", Some(&namespace), &[("value", "new")])]));
        work.write_main_tf(&tf_text(changed));
        let plan = work.plan_json();
        let before = plan["prior_state"]["values"]["root_module"]["resources"]
            .as_array()
            .and_then(|r| r.iter().find(|r| r["address"] == ADDR))
            .map(|r| r["values"]["objects"].clone())
            .expect("prior objects");
        let (after, after_unknown) = planned_objects(&plan);
        let key = |name: &str| format!("app: v1 ConfigMap {namespace}/{name}");
        assert_eq!(unknown_keys(&after_unknown), [key("cm-007"), key("cm-new")], "{after_unknown}");
        assert!(!after.contains_key(&key("cm-039")), "the removed object is still planned: {after:?}");
        assert!(before.get(key("cm-039")).is_some(), "cm-039 was in the prior inventory");
        let stays: Vec<&String> = after.keys().collect();
        assert_eq!(stays.len(), 39, "39 objects stay known (the namespace and 38 ConfigMaps): {stays:?}");
        for (k, v) in &after {
            assert_eq!(Some(v), before.get(k), "{k} stays as it was");
        }
        // Field-level truth: the one changed object and the one field of ours that changes.
        assert_eq!(stack_change(&plan)["after"]["object_changes"], serde_json::json!({ key("cm-007"): "data.value" }));
        work.apply().assert_success();
        work.assert_plan_empty();
        let state = work.resource_values(ADDR).expect("stack in state");
        assert_eq!(
            state["object_changes"],
            serde_json::json!({ key("cm-007"): "data.value" }),
            "what the apply changed"
        );
        let cm = cluster().get_json(&configmap_path(&namespace, "cm-007")).expect("cm-007");
        assert_eq!(cm["data"]["value"], "changed");
        assert_absent(&configmap_path(&namespace, "cm-039"));
        work.destroy().assert_success();
    });
}

/// Finding 3: renaming a Helm component re-creates its HelmRelease (Flux uninstalls and
/// reinstalls the release). The plan says so in a warning naming both releases, and shows
/// the old keys removed and the new ones added.
#[test]
fn renaming_a_helm_component_warns_that_its_release_is_reinstalled() {
    flux_standin::ensure();
    for_each_terraform(|tf| {
        let stack = unique_name("acc-rename");
        let flux_ns = unique_name("acc-rename-flux");
        let work = Workdir::new(tf);
        let config = |name: &str| {
            stack_tf(
                &stack,
                &format!("namespace = {}", hcl(&flux_ns)),
                &[
                    flux_namespace_component(&flux_ns),
                    Component::new(name).depends_on(&["flux-ns"]).namespace(&flux_ns).helm(
                        "https://charts.example.com/stable",
                        "web",
                        "1.0.0",
                        Some("yamlencode({ replicas = 1 })"),
                    ),
                ],
            )
        };
        work.write_main_tf(&config("web"));
        work.apply().assert_success();
        work.assert_plan_empty();

        work.write_main_tf(&config("frontend"));
        let out = work.plan();
        out.assert_success();
        let text = folded(&out);
        assert!(text.contains("Helm releases will be uninstalled"), "{text}");
        assert!(text.contains(&format!("deletes HelmRelease {flux_ns}/{stack}-web")), "{text}");
        assert!(text.contains(&format!("creates HelmRelease {flux_ns}/{stack}-frontend")), "{text}");
        let (after, after_unknown) = planned_objects(&work.plan_json());
        let old = format!("web: helm.toolkit.fluxcd.io/v2 HelmRelease {flux_ns}/{stack}-web");
        assert!(!after.contains_key(&old) && after_unknown.get(&old).is_none(), "old release still planned: {after:?}");
        let unknown = unknown_keys(&after_unknown);
        assert!(unknown.iter().any(|k| k.starts_with("frontend: ") && k.contains(" HelmRelease ")), "{unknown:?}");
        assert!(
            unknown.iter().all(|k| k.starts_with("frontend: ")),
            "only the renamed component's objects change: {unknown:?}"
        );
        work.apply().assert_success();
        work.assert_plan_empty();
        work.destroy().assert_success();
    });
}

/// An object the API server would refuse fails the plan (a server-side dry run), and
/// nothing is applied.
#[test]
fn objects_the_api_server_rejects_fail_the_plan() {
    let tf = newest_terraform();
    let stack = unique_name("acc-reject");
    let namespace = unique_name("acc-reject-ns");
    let work = Workdir::new(&tf);
    let service = |port: u32| {
        format!(
            "{}---\n{{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{{\"name\":\"web\",\"namespace\":{}}},\"spec\":{{\"ports\":[{{\"port\":{port},\"protocol\":\"TCP\"}}]}}}}\n",
            docs(&[namespace_obj(&namespace, false)]),
            serde_json::to_string(&namespace).unwrap()
        )
    };
    // The namespace exists before the stack: the Service's dry run reaches validation.
    work.write_main_tf(&stack_tf(&stack, "", &[Component::new("web").manifests(&service(80))]));
    work.apply().assert_success();

    work.write_main_tf(&stack_tf(&stack, "", &[Component::new("web").manifests(&service(70000))]));
    let out = work.plan();
    assert!(!out.success(), "plan of an invalid port succeeded:\n{}", out.describe());
    let text = folded(&out);
    assert!(text.contains("the API server rejects an object"), "{text}");
    assert!(text.contains(&format!("v1 Service {namespace}/web")) || text.contains("Service"), "{text}");
    assert!(text.contains("70000"), "the server's reason is quoted: {text}");
    let live = cluster().get_json(&format!("/api/v1/namespaces/{namespace}/services/web")).expect("service");
    assert_eq!(live["spec"]["ports"][0]["port"], 80, "nothing applied");
    work.write_main_tf(&stack_tf(&stack, "", &[Component::new("web").manifests(&service(80))]));
    work.assert_plan_empty();
    work.destroy().assert_success();
}

/// The prior and the planned `component` blocks of the stack (`before`, `after`), each by
/// component name (they are a set).
#[track_caller]
fn planned_components(plan: &Value) -> (Value, Value) {
    let change = stack_change(plan);
    let by_name = |blocks: &Value| -> Value {
        let named = blocks
            .as_array()
            .into_iter()
            .flatten()
            .map(|b| (b["name"].as_str().unwrap_or_default().to_string(), b.clone()));
        Value::Object(named.collect())
    };
    (by_name(&change["before"]["component"]), by_name(&change["after"]["component"]))
}

/// Findings 4 and 5: the chart, repository and version a `catalog` component resolves to are
/// in the plan, and a catalog pin that differs from what was applied (as after a provider
/// upgrade) plans a change of those values instead of saying "No changes" and shipping it
/// with the next unrelated edit.
#[test]
fn a_catalog_component_shows_its_resolved_chart_and_a_changed_pin_is_planned() {
    flux_standin::ensure();
    for_each_terraform(|tf| {
        let stack = unique_name("acc-pin");
        let flux_ns = unique_name("acc-pin-flux");
        let work = Workdir::new(tf);
        let entry = crate::catalog::catalog_entry(&work, "sealed-secrets");
        let pin = entry["version"].as_str().expect("pinned version").to_string();
        work.write_main_tf(&stack_tf(
            &stack,
            &format!("namespace = {}", hcl(&flux_ns)),
            &[
                flux_namespace_component(&flux_ns),
                Component::new("sealed-secrets")
                    .depends_on(&["flux-ns"])
                    .attr("catalog", "\"sealed-secrets\"")
                    .block("helm {\n      values = yamlencode({ fake = { delaySeconds = 1 } })\n    }"),
            ],
        ));
        let (_, after) = planned_components(&work.plan_json());
        let sealed = &after["sealed-secrets"];
        assert_eq!(sealed["resolved_repository"], entry["repository"], "{sealed}");
        assert_eq!(sealed["resolved_chart"], entry["chart"], "{sealed}");
        assert_eq!(sealed["resolved_version"], pin.as_str(), "{sealed}");
        assert_eq!(sealed["catalog_version"], pin.as_str(), "{sealed}");
        assert_eq!(after["flux-ns"]["resolved_chart"], Value::Null, "manifests resolve to no chart: {after}");
        work.apply().assert_success();
        work.assert_plan_empty();

        // The state an older provider would leave, whose catalog pinned another version.
        let pulled = work.run(&["state", "pull"]);
        pulled.assert_success();
        let mut state: Value = pulled.json();
        state["serial"] = serde_json::json!(state["serial"].as_u64().unwrap_or(0) + 1);
        let resource = state["resources"]
            .as_array_mut()
            .and_then(|r| r.iter_mut().find(|r| r["type"] == "platform_stack"))
            .expect("stack in state");
        let component = resource["instances"][0]["attributes"]["component"]
            .as_array_mut()
            .and_then(|blocks| blocks.iter_mut().find(|b| b["name"] == "sealed-secrets"))
            .expect("component sealed-secrets in state");
        component["resolved_version"] = serde_json::json!("0.0.1");
        component["catalog_version"] = serde_json::json!("0.0.1");
        work.write_file("older.tfstate", &state.to_string());
        work.run(&["state", "push", "older.tfstate"]).assert_success();

        let plan = work.plan_json();
        let (before, after) = planned_components(&plan);
        assert_eq!(before["sealed-secrets"]["resolved_version"], "0.0.1");
        assert_eq!(after["sealed-secrets"]["resolved_version"], pin.as_str(), "the new pin is planned");
        assert_eq!(after["sealed-secrets"]["catalog_version"], pin.as_str());
        let actions = stack_change(&plan)["actions"].clone();
        assert_eq!(actions, serde_json::json!(["update"]));
        work.apply().assert_success();
        work.assert_plan_empty();
        work.destroy().assert_success();
    });
}

/// A merge patch by someone else (as `kubectl patch --type merge` sends it).
#[track_caller]
fn merge_patch(path: &str, body: Value) {
    let response = cluster()
        .http()
        .request("PATCH", path, Some("application/merge-patch+json"), Some(body.to_string().as_bytes()))
        .unwrap_or_else(|e| panic!("PATCH {path}: {e}"));
    assert!(response.ok(), "PATCH {path}: {} {}", response.status, response.body);
}

/// Finding 6: a HelmRelease suspended with kubectl, given values keys by someone else, or
/// given up on by helm-controller used to plan "No changes" (and the next apply failed with
/// "Suspended", or the foreign values stayed). Each is now drift the plan names, and the
/// apply repairs it.
#[test]
fn release_health_is_drift_that_the_plan_names_and_the_apply_repairs() {
    flux_standin::ensure();
    let tf = newest_terraform();
    let stack = unique_name("acc-health");
    let flux_ns = unique_name("acc-health-flux");
    let release = format!("{stack}-web");
    let path = format!("{}/namespaces/{flux_ns}/helmreleases/{release}", flux_standin::HELM_RELEASES);
    let work = Workdir::new(&tf);
    work.write_main_tf(&stack_tf(
        &stack,
        &format!("namespace = {}", hcl(&flux_ns)),
        &[
            flux_namespace_component(&flux_ns),
            Component::new("web").depends_on(&["flux-ns"]).namespace(&flux_ns).helm(
                "https://charts.example.com/stable",
                "web",
                "1.0.0",
                Some("yamlencode({ replicas = 1 })"),
            ),
        ],
    ));
    work.apply().assert_success();
    work.assert_plan_empty();
    let live = || flux_standin::helm_release(&flux_ns, &release).expect("HelmRelease");

    // Suspended with kubectl.
    merge_patch(&path, serde_json::json!({"spec": {"suspend": true}}));
    let plan = work.assert_plan_has_changes();
    assert!(folded(&plan).contains("release suspended outside Terraform"), "{}", plan.stdout);
    work.apply().assert_success();
    assert_eq!(live()["spec"]["suspend"], false, "resumed");
    assert!(flux_standin::is_ready(&live()));
    work.assert_plan_empty();

    // Values keys of someone else's.
    merge_patch(&path, serde_json::json!({"spec": {"values": {"extra": {"debug": true}}}}));
    let plan = work.assert_plan_has_changes();
    assert!(folded(&plan).contains("release values set outside Terraform"), "{}", plan.stdout);
    work.apply().assert_success();
    assert_eq!(live()["spec"]["values"], serde_json::json!({"replicas": 1}), "only our values are left");
    work.assert_plan_empty();

    // Given up on (Stalled at its generation): a reconciliation is requested and waited for.
    let generation = live()["metadata"]["generation"].clone();
    merge_patch(
        &format!("{path}/status"),
        serde_json::json!({"status": {"observedGeneration": generation, "conditions": [
            {"type": "Stalled", "status": "True", "reason": "RetriesExceeded", "message": "gave up", "observedGeneration": generation, "lastTransitionTime": "2026-01-01T00:00:00Z"},
            {"type": "Ready", "status": "False", "reason": "UpgradeFailed", "message": "gave up", "observedGeneration": generation, "lastTransitionTime": "2026-01-01T00:00:00Z"}
        ]}}),
    );
    let plan = work.assert_plan_has_changes();
    assert!(folded(&plan).contains("release failed: not Ready"), "{}", plan.stdout);
    work.apply().assert_success();
    let repaired = live();
    assert!(flux_standin::is_ready(&repaired), "{}", repaired["status"]);
    assert!(
        repaired["metadata"]["annotations"]["reconcile.fluxcd.io/requestedAt"].is_string(),
        "{}",
        repaired["metadata"]
    );
    work.assert_plan_empty();
    work.destroy().assert_success();
}

/// What Helm and Flux users reach for in a `helm` block reaches the HelmRelease: release
/// name, timeout, remediation retries, the CRD policy and `valuesFrom` references; a changed
/// release name is announced as a reinstall.
#[test]
fn helm_options_reach_the_release_and_a_new_release_name_is_announced() {
    flux_standin::ensure();
    let tf = newest_terraform();
    let stack = unique_name("acc-helmopt");
    let flux_ns = unique_name("acc-helmopt-flux");
    let work = Workdir::new(&tf);
    let config = |release_name: &str| {
        stack_tf(
            &stack,
            &format!("namespace = {}", hcl(&flux_ns)),
            &[
                flux_namespace_component(&flux_ns),
                Component::new("web").depends_on(&["flux-ns"]).namespace(&flux_ns).block(&format!(
                    r#"helm {{
      repository          = "https://charts.example.com/stable"
      chart               = "web"
      version             = "1.0.0"
      values              = yamlencode({{ replicas = 1 }})
      release_name        = "{release_name}"
      timeout             = "9m"
      remediation_retries = 5
      crds                = "Skip"
      disable_wait        = true
      values_from {{
        kind        = "ConfigMap"
        name        = "web-defaults"
        values_key  = "defaults.yaml"
        target_path = "config"
      }}
      values_from {{
        kind     = "Secret"
        name     = "web-extra"
        optional = true
      }}
    }}"#
                )),
            ],
        )
    };
    work.write_main_tf(&config("shop-web"));
    work.apply().assert_success();
    let release = flux_standin::helm_release(&flux_ns, &format!("{stack}-web")).expect("HelmRelease");
    let spec = &release["spec"];
    assert_eq!(spec["releaseName"], "shop-web");
    assert_eq!(spec["timeout"], "9m");
    assert_eq!(spec["install"]["remediation"]["retries"], 5);
    assert_eq!(spec["upgrade"]["remediation"]["retries"], 5);
    assert_eq!(spec["install"]["crds"], "Skip");
    assert_eq!(spec["upgrade"]["crds"], "Skip");
    assert_eq!(
        (&spec["install"]["disableWait"], &spec["upgrade"]["disableWait"]),
        (&serde_json::json!(true), &serde_json::json!(true))
    );
    assert_eq!(
        spec["valuesFrom"],
        serde_json::json!([
            {"kind": "ConfigMap", "name": "web-defaults", "valuesKey": "defaults.yaml", "targetPath": "config"},
            {"kind": "Secret", "name": "web-extra", "optional": true}
        ])
    );
    work.assert_plan_empty();

    work.write_main_tf(&config("shop-frontend"));
    let out = work.plan();
    out.assert_success();
    let text = folded(&out);
    assert!(text.contains("Helm releases will be uninstalled"), "{text}");
    assert!(
        text.contains(&format!(
            "renames HelmRelease {flux_ns}/{stack}-web (Helm release \"shop-web\" becomes \"shop-frontend\")"
        )),
        "{text}"
    );
    work.apply().assert_success();
    work.assert_plan_empty();
    work.destroy().assert_success();
}

/// Helm repositories declared once (`repository` blocks) and shared: one HelmRepository each,
/// applied first, the releases' `sourceRef` pointing at it and no source of their own; an
/// unknown repository name fails the plan with the closest name.
#[test]
fn shared_repositories_are_declared_once_and_used_by_name() {
    flux_standin::ensure();
    for_each_terraform(|tf| {
        let stack = unique_name("acc-repos");
        let flux_ns = unique_name("acc-repos-flux");
        let work = Workdir::new(tf);
        let config = |registry_ref: &str| {
            let helm = |name: &str, repository: &str| {
                Component::new(name).depends_on(&["flux-ns"]).namespace(&flux_ns).helm(repository, name, "1.0.0", None)
            };
            let repositories = r#"repository {
    name = "charts"
    url  = "https://charts.example.com/stable"
  }
  repository {
    name     = "registry"
    url      = "oci://registry.example.com/charts"
    interval = "1h"
  }"#;
            stack_tf(
                &stack,
                &format!("namespace = {}\n  {repositories}", hcl(&flux_ns)),
                &[
                    flux_namespace_component(&flux_ns),
                    helm("web", "charts"),
                    helm("api", "charts"),
                    helm("jobs", registry_ref),
                    helm("own", "https://other.example.com/charts"),
                ],
            )
        };
        work.write_main_tf(&config("registy"));
        let out = work.plan();
        assert!(!out.success(), "{}", out.describe());
        let text = folded(&out);
        assert!(text.contains("nor a `repository` of this stack. Did you mean \"registry\"?"), "{text}");

        work.write_main_tf(&config("registry"));
        work.apply().assert_success();
        let charts =
            flux_standin::helm_repository(&flux_ns, &format!("{stack}-repo-charts")).expect("shared HelmRepository");
        assert_eq!(charts["spec"]["url"], "https://charts.example.com/stable");
        let registry =
            flux_standin::helm_repository(&flux_ns, &format!("{stack}-repo-registry")).expect("OCI HelmRepository");
        assert_eq!(registry["spec"]["type"], "oci");
        assert_eq!(registry["spec"]["interval"], "1h");
        for (release, source) in [("web", "charts"), ("api", "charts"), ("jobs", "registry")] {
            let hr = flux_standin::helm_release(&flux_ns, &format!("{stack}-{release}")).expect("HelmRelease");
            assert_eq!(hr["spec"]["chart"]["spec"]["sourceRef"]["name"], format!("{stack}-repo-{source}"), "{release}");
            assert!(flux_standin::is_ready(&hr), "{release}: {}", hr["status"]);
            assert!(
                flux_standin::helm_repository(&flux_ns, &format!("{stack}-{release}")).is_none(),
                "{release} has a source of its own"
            );
        }
        assert!(
            flux_standin::helm_repository(&flux_ns, &format!("{stack}-own")).is_some(),
            "a URL still makes its own source"
        );
        work.assert_plan_empty();
        work.destroy().assert_success();
        assert!(flux_standin::helm_repository(&flux_ns, &format!("{stack}-repo-charts")).is_none());
    });
}

/// Finding 2: the order of `component` blocks means nothing (they are a set), so writing
/// them in another order plans no change; and sensitive values, kept out of the blocks,
/// hide only themselves: a changed component stays readable in the plan.
#[test]
fn reordered_components_plan_no_change_and_sensitive_values_hide_only_themselves() {
    flux_standin::ensure();
    for_each_terraform(|tf| {
        let stack = unique_name("acc-order");
        let flux_ns = unique_name("acc-order-flux");
        let namespace = unique_name("acc-order-ns");
        let work = Workdir::new(tf);
        let config = |replicas: u32| {
            vec![
                flux_namespace_component(&flux_ns),
                Component::new("settings").namespace(&namespace).manifests(&docs(&[
                    namespace_obj(&namespace, false),
                    configmap("settings", Some(&namespace), &[("mode", "fast")]),
                ])),
                Component::new("web").depends_on(&["flux-ns"]).namespace(&flux_ns).helm(
                    "https://charts.example.com/stable",
                    "web",
                    "1.0.0",
                    Some(&format!("yamlencode({{ replicas = {replicas} }})")),
                ),
            ]
        };
        let attributes = format!(
            "namespace = {}\n  sensitive_values = {{ web = {{ \"auth.password\" = \"hunter2\" }} }}",
            hcl(&flux_ns)
        );
        work.write_main_tf(&stack_tf(&stack, &attributes, &config(1)));
        work.apply().assert_success();
        work.assert_plan_empty();

        let mut reordered = config(1);
        reordered.reverse();
        work.write_main_tf(&stack_tf(&stack, &attributes, &reordered));
        work.assert_plan_empty();

        let mut changed = config(2);
        changed.rotate_left(1);
        work.write_main_tf(&stack_tf(&stack, &attributes, &changed));
        let plan = work.plan_json();
        let change = stack_change(&plan);
        assert_eq!(change["after_sensitive"]["sensitive_values"], Value::Bool(true), "{}", change["after_sensitive"]);
        assert_ne!(
            change["after_sensitive"]["component"],
            Value::Bool(true),
            "the components are hidden: {}",
            change["after_sensitive"]
        );
        let (before, after) = planned_components(&plan);
        assert!(after["web"]["helm"]["values"].as_str().is_some_and(|v| v.contains("\"replicas\": 2")), "{after}");
        assert_eq!(before["settings"], after["settings"], "an unchanged component changes");
        // As people read the plan: the changed values show, the sensitive one does not.
        let shown = work.plan();
        shown.assert_success();
        let text = shown.combined();
        assert!(text.contains("\"replicas\": 2"), "the changed values are not shown:\n{text}");
        assert!(!text.contains("hunter2"), "a sensitive value is shown:\n{text}");
        work.apply().assert_success();
        work.assert_plan_empty();
        work.destroy().assert_success();
    });
}

/// `sensitive_values_wo` reaches the chart's values Secret without ever being stored: not in
/// the plan, not in the state. Terraform cannot see a new value; a new
/// `sensitive_values_wo_version` applies it. Terraform before 1.11 (which would store it) is
/// refused at validate.
#[test]
fn write_only_sensitive_values_are_applied_by_version_and_never_stored() {
    flux_standin::ensure();
    let stack = unique_name("acc-wo");
    let flux_ns = unique_name("acc-wo-flux");
    // The value comes from an ephemeral variable: a literal would be in the plan's
    // `configuration`, and a plain variable's value in its `variables`.
    let config = |password: &str, version: u32| {
        let tf = stack_tf(
            &stack,
            &format!(
                "namespace = {}\n  sensitive_values_wo = {{ db = {{ \"auth.password\" = {password} }} }}\n  sensitive_values_wo_version = {version}",
                hcl(&flux_ns)
            ),
            &[
                flux_namespace_component(&flux_ns),
                Component::new("db").depends_on(&["flux-ns"]).helm("https://charts.example.com", "db", "1.0.0", None),
            ],
        );
        if password.starts_with("var.") {
            tf + "\nvariable \"password\" {\n  type      = string\n  sensitive = true\n  ephemeral = true\n}\n"
        } else {
            tf
        }
    };
    let old = oldest_terraform();
    if !old.at_least(1, 11) {
        let work = Workdir::without_cluster(&old);
        work.write_main_tf(&config("\"never-stored\"", 1));
        let out = work.plan();
        assert!(!out.success(), "Terraform {old} planned a write-only value:\n{}", out.describe());
        assert!(folded(&out).contains("Write-only attribute needs Terraform 1.11"), "{}", out.combined());
    }

    let tf = newest_terraform();
    assert!(tf.at_least(1, 11), "write-only attributes need Terraform 1.11 or later; the newest here is {tf}");
    let mut work = Workdir::new(&tf);
    work.set_env("TF_VAR_password", "first-secret");
    let stored_password = || {
        let secret = live(&secret_path(&flux_ns, &format!("{stack}.db.helm-values")));
        use base64::Engine as _;
        let encoded = secret["data"]["auth.password"].as_str().expect("auth.password in the values Secret").to_string();
        String::from_utf8(base64::engine::general_purpose::STANDARD.decode(encoded).unwrap()).unwrap()
    };
    let assert_not_stored = |work: &Workdir, secret: &str| {
        let state = work.run(&["state", "pull"]);
        state.assert_success();
        assert!(!state.stdout.contains(secret), "the write-only value is in the state");
    };
    work.write_main_tf(&config("var.password", 1));
    let plan = work.plan_json();
    assert!(!plan.to_string().contains("first-secret"), "the write-only value is in the plan");
    work.apply().assert_success();
    assert_eq!(stored_password(), "first-secret");
    assert_not_stored(&work, "first-secret");
    work.assert_plan_empty();

    work.set_env("TF_VAR_password", "second-secret");
    work.assert_plan_empty();
    work.write_main_tf(&config("var.password", 2));
    let apply = work.run_with_env(&["apply", "-auto-approve", "-input=false", "-no-color"], &[("TF_LOG", "trace")]);
    apply.assert_success();
    assert!(apply.combined().contains("provider.terraform-provider-platform"), "no provider log lines in the apply");
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode("second-secret");
    let log = apply.combined();
    assert!(!log.contains("second-secret") && !log.contains(&encoded), "the write-only value is in the trace log");
    assert_eq!(stored_password(), "second-secret", "a new version did not apply the new value");
    assert_not_stored(&work, "second-secret");
    work.assert_plan_empty();
    work.destroy().assert_success();
}
