//! `platform_stack` never takes over or deletes what it did not create: existing objects
//! are refused unless adopted, adopted ones are released on destroy, a second stack of the
//! same name is refused, and CRDs and namespaces that hold what the stack does not own are
//! kept. Real Terraform, real API server.

use serde_json::{json, Value};

use crate::harness::{cluster, for_each_terraform, kubectl, kubectl_stdin, unique_name, Workdir};
use crate::stack::{
    assert_absent, configmap, configmap_path, destroy_and_check_gone, docs, folded, hcl, key, live, namespace_obj,
    namespace_path, stack_tf, unique_group, Component, Kind, ADDR,
};

const OWNER: &str = "platform.terraform.io/owner";
const FIELD_MANAGER: &str = "terraform-provider-platform";

/// The stack's owner id (its `id`).
#[track_caller]
fn stack_id(work: &Workdir) -> String {
    let values = work.resource_values(ADDR).unwrap_or_else(|| panic!("{ADDR} not in the state"));
    values["id"].as_str().unwrap_or_else(|| panic!("no id: {values}")).to_string()
}

#[track_caller]
fn adopted(work: &Workdir) -> Vec<String> {
    let values = work.resource_values(ADDR).unwrap_or_else(|| panic!("{ADDR} not in the state"));
    serde_json::from_value(values["adopted"].clone()).unwrap_or_default()
}

/// No trace of us: no owner annotation, no stack labels, no managedFields entry.
#[track_caller]
fn assert_released(object: &Value) {
    let meta = &object["metadata"];
    assert!(meta["annotations"].get(OWNER).is_none(), "owner annotation left: {meta}");
    assert!(meta["labels"].get("platform.terraform.io/stack").is_none(), "stack label left: {meta}");
    let managers = meta["managedFields"].as_array().cloned().unwrap_or_default();
    assert!(!managers.iter().any(|m| m["manager"] == FIELD_MANAGER), "our managedFields entry left: {managers:?}");
}

/// Scenario 1 of the safety issue: a stack that lists a namespace the user already has.
#[test]
fn stack_refuses_an_existing_namespace_and_adopted_ones_survive_destroy() {
    for_each_terraform(|tf| {
        let stack = unique_name("acc-own");
        let ns = unique_name("acc-precious");
        kubectl(&["create", "namespace", &ns]).assert_success();
        kubectl(&["create", "configmap", "keepsake", "-n", &ns, "--from-literal=k=v"]).assert_success();
        let mut precious = namespace_obj(&ns, false);
        precious["metadata"]["labels"] = json!({"tier": "gold"});
        let work = Workdir::new(tf);
        let config = |adopt: bool| {
            let mut base = Component::new("base").manifests(&docs(&[precious.clone()]));
            if adopt {
                base = base.attr("adopt", "true");
            }
            stack_tf(&stack, "", &[base, Component::new("app").depends_on(&["base"]).namespace(&ns).manifests(&docs(&[configmap("mine", None, &[("a", "1")])]))])
        };

        // Refused at plan, naming the namespace and who made it; nothing written.
        work.write_main_tf(&config(false));
        let out = work.apply();
        let text = folded(&out);
        assert!(!out.success(), "an existing namespace was taken over:\n{}", out.describe());
        assert!(text.contains(&format!("Namespace {ns} cannot be applied")), "{}", out.describe());
        assert!(text.contains("kubectl-create (Update)"), "managers not named: {}", out.describe());
        assert!(text.contains("adopt = true"), "{}", out.describe());
        assert!(live(&namespace_path(&ns))["metadata"]["labels"].get("tier").is_none());
        assert!(cluster().get_json(&configmap_path(&ns, "mine")).is_none(), "the plan-time refusal still applied");

        // Adopted on request: the plan lists it, the apply takes it over.
        work.write_main_tf(&config(true));
        let plan = work.plan();
        plan.assert_success();
        let ns_key = key("base", "v1", "Namespace", None, &ns);
        assert!(plan.stdout.contains(&ns_key) && plan.stdout.contains("adopted"), "plan does not show the adoption:\n{}", plan.stdout);
        work.apply().assert_success();
        assert_eq!(adopted(&work), vec![ns_key]);
        let id = stack_id(&work);
        let taken = live(&namespace_path(&ns));
        assert_eq!(taken["metadata"]["labels"]["tier"], "gold");
        assert_eq!(taken["metadata"]["annotations"][OWNER], id.as_str());
        assert_eq!(live(&configmap_path(&ns, "mine"))["metadata"]["annotations"][OWNER], id.as_str());
        work.assert_plan_empty();

        // Destroy deletes what the stack created and releases the namespace: the user's
        // ConfigMap is still there.
        work.destroy().assert_success();
        let kept = live(&namespace_path(&ns));
        assert!(kept["metadata"]["deletionTimestamp"].is_null(), "the adopted namespace is being deleted");
        assert_released(&kept);
        live(&configmap_path(&ns, "keepsake"));
        assert_absent(&configmap_path(&ns, "mine"));
        kubectl(&["delete", "namespace", &ns, "--wait=false"]).assert_success();
    });
}

/// Scenario 2 of the safety issue: two working directories, one stack name.
#[test]
fn a_second_stack_of_the_same_name_is_refused_and_touches_nothing() {
    for_each_terraform(|tf| {
        let stack = unique_name("acc-shared");
        let ns = unique_name("acc-shared-ns");
        kubectl(&["create", "namespace", &ns]).assert_success();
        let first = Workdir::new(tf);
        first.write_main_tf(&stack_tf(
            &stack,
            "",
            &[Component::new("app").namespace(&ns).manifests(&docs(&[configmap("first", None, &[("who", "first")])]))],
        ));
        first.apply().assert_success();
        let first_id = stack_id(&first);

        let second = Workdir::new(tf);
        second.write_main_tf(&stack_tf(
            &stack,
            "",
            &[Component::new("app").namespace(&ns).manifests(&docs(&[configmap("second", None, &[("who", "second")])]))],
        ));
        let out = second.apply();
        let text = folded(&out);
        assert!(!out.success(), "a second stack of the same name was applied:\n{}", out.describe());
        assert!(text.contains("Stack name already in use") && text.contains(&first_id), "{}", out.describe());
        assert_eq!(live(&configmap_path(&ns, "first"))["data"]["who"], "first");
        assert!(cluster().get_json(&configmap_path(&ns, "second")).is_none(), "the refused stack wrote an object");
        assert!(second.resource_values(ADDR).is_none());
        first.assert_plan_empty();

        // The same component names under another stack name: separate objects, separate fates.
        let other = Workdir::new(tf);
        other.write_main_tf(&stack_tf(
            &unique_name("acc-other"),
            "",
            &[Component::new("app").namespace(&ns).manifests(&docs(&[configmap("other", None, &[("who", "other")])]))],
        ));
        other.apply().assert_success();
        destroy_and_check_gone(&other, &[configmap_path(&ns, "other")]);
        assert_eq!(live(&configmap_path(&ns, "first"))["data"]["who"], "first");
        destroy_and_check_gone(&first, &[configmap_path(&ns, "first")]);
        kubectl(&["delete", "namespace", &ns, "--wait=false"]).assert_success();
    });
}

/// An object someone else owns (another stack's id on it) is refused even with adopt.
#[test]
fn an_object_of_another_stack_is_never_adopted() {
    for_each_terraform(|tf| {
        let ns = unique_name("acc-theirs-ns");
        kubectl(&["create", "namespace", &ns]).assert_success();
        let first = Workdir::new(tf);
        first.write_main_tf(&stack_tf(
            &unique_name("acc-theirs"),
            "",
            &[Component::new("app").namespace(&ns).manifests(&docs(&[configmap("shared", None, &[("who", "first")])]))],
        ));
        first.apply().assert_success();
        let second = Workdir::new(tf);
        second.write_main_tf(&stack_tf(
            &unique_name("acc-mine"),
            "adopt = true",
            &[Component::new("app").namespace(&ns).manifests(&docs(&[configmap("shared", None, &[("who", "second")])]))],
        ));
        let out = second.apply();
        assert!(!out.success(), "{}", out.describe());
        assert!(folded(&out).contains("belongs to another resource instance"), "{}", out.describe());
        assert_eq!(live(&configmap_path(&ns, "shared"))["data"]["who"], "first");
        destroy_and_check_gone(&first, &[configmap_path(&ns, "shared")]);
        kubectl(&["delete", "namespace", &ns, "--wait=false"]).assert_success();
    });
}

/// `on_destroy = "delete"` deletes an adopted object; without it, prune releases.
#[test]
fn adopted_objects_are_released_on_prune_and_deleted_on_request() {
    for_each_terraform(|tf| {
        let ns = unique_name("acc-adopt-ns");
        kubectl(&["create", "namespace", &ns]).assert_success();
        for name in ["released", "doomed"] {
            kubectl(&["create", "configmap", name, "-n", &ns, "--from-literal=a=1"]).assert_success();
        }
        let work = Workdir::new(tf);
        let both = [
            Component::new("keep").namespace(&ns).attr("adopt", "true").manifests(&docs(&[configmap("released", None, &[("a", "1")])])),
            Component::new("drop")
                .namespace(&ns)
                .attr("adopt", "true")
                .attr("on_destroy", &hcl("delete"))
                .manifests(&docs(&[configmap("doomed", None, &[("a", "1")])])),
        ];
        let stack = unique_name("acc-adopt");
        work.write_main_tf(&stack_tf(&stack, "", &both));
        work.apply().assert_success();
        assert_eq!(adopted(&work).len(), 2, "{:?}", adopted(&work));
        work.assert_plan_empty();

        // Prune: the component goes, its adopted object is released, not deleted.
        work.write_main_tf(&stack_tf(&stack, "", &both[1..]));
        let out = work.apply();
        out.assert_success();
        assert!(folded(&out).contains("released (adopted, so not deleted)"), "{}", out.describe());
        let released = live(&configmap_path(&ns, "released"));
        assert_eq!(released["data"]["a"], "1");
        assert_released(&released);
        work.assert_plan_empty();

        // Destroy with on_destroy = "delete": gone.
        destroy_and_check_gone(&work, &[configmap_path(&ns, "doomed")]);
        live(&configmap_path(&ns, "released"));
        kubectl(&["delete", "namespace", &ns, "--wait=false"]).assert_success();
    });
}

/// A CRD with custom resources the stack does not own, and a namespace holding objects it
/// does not own, are not deleted; force_delete deletes them.
#[test]
fn crds_and_namespaces_holding_foreign_objects_are_kept_unless_forced() {
    for_each_terraform(|tf| {
        let stack = unique_name("acc-guard");
        let ns = unique_name("acc-guard-ns");
        let widgets = Kind::new(&unique_group(), "Widget", "widgets", true);
        let work = Workdir::new(tf);
        let config = |force: bool| {
            stack_tf(
                &stack,
                if force { "force_delete = true" } else { "" },
                &[
                    Component::new("base").manifests(&docs(&[namespace_obj(&ns, false), widgets.crd()])),
                    Component::new("app")
                        .depends_on(&["base"])
                        .namespace(&ns)
                        .manifests(&docs(&[widgets.object("ours", None, json!({}), false), configmap("ours", None, &[])])),
                ],
            )
        };
        work.write_main_tf(&config(false));
        work.apply().assert_success();
        // Someone else's objects: a Widget in the stack's namespace, and a ConfigMap.
        let theirs = widgets.object("theirs", Some(&ns), json!({"size": 1}), false);
        kubectl_stdin(&["apply", "-f", "-"], &theirs.to_string()).assert_success();
        kubectl(&["create", "configmap", "theirs", "-n", &ns]).assert_success();

        let out = work.destroy();
        let text = folded(&out);
        assert!(!out.success(), "destroy deleted a CRD with foreign objects:\n{}", out.describe());
        assert!(text.contains("1 Widget object(s) that this stack does not own"), "{}", out.describe());
        assert!(text.contains(&format!("1 in namespace {ns}")), "{}", out.describe());
        live(&widgets.crd_path());
        live(&widgets.path(Some(&ns), "theirs"));
        assert_absent(&widgets.path(Some(&ns), "ours"));

        // The Widget goes; the namespace still holds the foreign ConfigMap.
        kubectl(&["delete", &widgets.resource(), "theirs", "-n", &ns]).assert_success();
        let out = work.destroy();
        assert!(!out.success(), "{}", out.describe());
        assert!(folded(&out).contains("ConfigMap theirs"), "namespace contents not listed: {}", out.describe());
        assert!(live(&namespace_path(&ns))["metadata"]["deletionTimestamp"].is_null());

        work.write_main_tf(&config(true));
        work.apply().assert_success();
        destroy_and_check_gone(&work, &[widgets.crd_path()]);
        let gone = cluster().get_json(&namespace_path(&ns));
        assert!(gone.is_none() || !gone.unwrap()["metadata"]["deletionTimestamp"].is_null(), "forced delete left the namespace");
    });
}

/// Objects annotated to be kept (ours, and Helm's resource policy) outlive destroy, and the
/// destroy says so.
#[test]
fn objects_annotated_to_be_kept_survive_destroy_and_are_reported() {
    for_each_terraform(|tf| {
        let ns = unique_name("acc-keep-ns");
        kubectl(&["create", "namespace", &ns]).assert_success();
        let mut ours = configmap("kept-ours", None, &[("a", "1")]);
        ours["metadata"]["annotations"] = json!({"platform.terraform.io/keep": "true"});
        let mut helms = configmap("kept-helm", None, &[("a", "1")]);
        helms["metadata"]["annotations"] = json!({"helm.sh/resource-policy": "keep"});
        let work = Workdir::new(tf);
        work.write_main_tf(&stack_tf(
            &unique_name("acc-keep"),
            "",
            &[Component::new("app").namespace(&ns).manifests(&docs(&[ours, helms, configmap("gone", None, &[])]))],
        ));
        work.apply().assert_success();
        let out = work.destroy();
        out.assert_success();
        let text = folded(&out);
        for name in ["kept-ours", "kept-helm"] {
            assert!(text.contains(&format!("ConfigMap {ns}/{name} kept")), "{name} not reported: {}", out.describe());
            live(&configmap_path(&ns, name));
        }
        assert_absent(&configmap_path(&ns, "gone"));
        kubectl(&["delete", "namespace", &ns, "--wait=false"]).assert_success();
    });
}
