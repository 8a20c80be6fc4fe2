//! `platform_namespace` (resource and data source) with real Terraform and a real API server.

use std::time::Duration;

use crate::harness::{cluster, for_each_terraform, kubectl, unique_name, wait_until, Workdir};

const OWNER_ANNOTATION: &str = "platform.terraform.io/owner";
/// Our server-side apply field manager.
const MANAGER: &str = "terraform-provider-platform";

const PROVIDER: &str = concat!(required_providers!(), "provider \"platform\" {}\n");

fn live_namespace(name: &str) -> Option<serde_json::Value> {
    let out = kubectl(&["get", "namespace", name, "-o", "json", "--ignore-not-found", "--show-managed-fields"]);
    out.assert_success();
    (!out.stdout.trim().is_empty()).then(|| out.json())
}

/// Namespace `name` of a new workdir, held by a finalizer once created, so deletes wait.
fn namespace_held_by_finalizer(tf: &crate::harness::TerraformBin, prefix: &str, delete_timeout: &str) -> (Workdir, String) {
    let name = unique_name(prefix);
    let work = Workdir::new(tf);
    work.write_main_tf(&format!(
        "{PROVIDER}\nresource \"platform_namespace\" \"this\" {{\n  name = \"{name}\"\n  timeouts {{ delete = \"{delete_timeout}\" }}\n}}\n"
    ));
    work.apply().assert_success();
    kubectl(&["patch", "namespace", &name, "--type=merge", "-p", r#"{"metadata":{"finalizers":["example.com/hold"]}}"#])
        .assert_success();
    (work, name)
}

/// Removes the finalizer, waits for the namespace to go, and destroys what is left.
fn release_and_destroy(work: &Workdir, name: &str) {
    kubectl(&["patch", "namespace", name, "--type=merge", "-p", r#"{"metadata":{"finalizers":null}}"#]).assert_success();
    wait_until("namespace gone", Duration::from_secs(60), || {
        live_namespace(name).map_or(Ok(()), |_| Err("still there".to_string()))
    });
    work.destroy().assert_success();
}

fn label(namespace: &serde_json::Value, key: &str) -> Option<String> {
    namespace["metadata"]["labels"][key].as_str().map(str::to_string)
}

#[test]
fn lifecycle_with_drift_update_import_and_destroy() {
    for_each_terraform(|tf| {
        let name = unique_name("acc-ns");
        let work = Workdir::new(tf);
        let config = |labels: &str, annotations: &str| {
            format!(
                "{PROVIDER}\nresource \"platform_namespace\" \"this\" {{\n  name = \"{name}\"\n  labels = {{ {labels} }}\n  annotations = {{ {annotations} }}\n}}\n"
            )
        };
        work.write_main_tf(&config(r#""app.kubernetes.io/part-of" = "platform", tier = "production""#, r#"owner = "sre""#));

        // Create, then nothing to do.
        work.apply().assert_success();
        let live = live_namespace(&name).expect("namespace created");
        assert_eq!(label(&live, "tier").as_deref(), Some("production"));
        assert_eq!(live["metadata"]["annotations"]["owner"], "sre");
        let state = work.resource_values("platform_namespace.this").unwrap();
        assert_eq!(state["id"], name.as_str());
        assert_eq!(state["uid"], live["metadata"]["uid"]);
        work.assert_plan_empty();

        // Keys others add are not ours: no diff.
        kubectl(&["label", "namespace", &name, "added-by=someone-else"]).assert_success();
        kubectl(&["annotate", "namespace", &name, "note=not-ours"]).assert_success();
        work.assert_plan_empty();

        // A managed key changed out of band is drift, and apply puts it back.
        kubectl(&["label", "namespace", &name, "tier=tampered", "--overwrite"]).assert_success();
        let plan = work.assert_plan_has_changes();
        assert!(plan.stdout.contains("tampered"), "plan does not show the drift:\n{}", plan.stdout);
        work.apply().assert_success();
        let live = live_namespace(&name).unwrap();
        assert_eq!(label(&live, "tier").as_deref(), Some("production"));
        assert_eq!(label(&live, "added-by").as_deref(), Some("someone-else"), "foreign label removed");
        work.assert_plan_empty();

        // A managed key removed out of band is drift too.
        kubectl(&["annotate", "namespace", &name, "owner-"]).assert_success();
        work.assert_plan_has_changes();
        work.apply().assert_success();
        assert_eq!(live_namespace(&name).unwrap()["metadata"]["annotations"]["owner"], "sre");

        // Update: change one label, drop another, change the annotation.
        work.write_main_tf(&config(r#"tier = "staging""#, r#"owner = "platform-team""#));
        work.apply().assert_success();
        let live = live_namespace(&name).unwrap();
        assert_eq!(label(&live, "tier").as_deref(), Some("staging"));
        assert_eq!(label(&live, "app.kubernetes.io/part-of"), None, "dropped label still present");
        assert_eq!(label(&live, "added-by").as_deref(), Some("someone-else"));
        assert_eq!(live["metadata"]["annotations"]["owner"], "platform-team");
        work.assert_plan_empty();

        // Destroy of a namespace this resource created waits until it is really gone.
        let created = live_namespace(&name).unwrap();
        assert_eq!(owner_of(&created), state_owner_id(&work, "platform_namespace.this").as_deref(), "not stamped");
        work.destroy().assert_success();
        assert!(live_namespace(&name).is_none(), "namespace still exists after destroy");
    });
}

/// The owner id in the namespace's annotation.
fn owner_of(namespace: &serde_json::Value) -> Option<&str> {
    namespace["metadata"]["annotations"][OWNER_ANNOTATION].as_str()
}

fn state_owner_id(work: &Workdir, address: &str) -> Option<String> {
    work.resource_values(address)?["owner_id"].as_str().map(str::to_string)
}

/// The field managers with entries in `managedFields`.
fn managers(object: &serde_json::Value) -> Vec<String> {
    object["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["manager"].as_str().map(str::to_string))
        .collect()
}

/// A namespace made with kubectl, holding a ConfigMap and a label of the user's own.
fn users_namespace(prefix: &str) -> String {
    let name = unique_name(prefix);
    kubectl(&["create", "namespace", &name]).assert_success();
    kubectl(&["label", "namespace", &name, "team=payments"]).assert_success();
    kubectl(&["create", "configmap", "precious", "-n", &name, "--from-literal=k=v"]).assert_success();
    name
}

/// Released: still there with the user's label and ConfigMap, without our annotation or
/// our managedFields entry.
#[track_caller]
fn assert_released(name: &str) {
    let live = live_namespace(name).expect("a released namespace must stay");
    assert!(live["metadata"]["deletionTimestamp"].is_null(), "namespace is being deleted: {live}");
    assert_eq!(label(&live, "team").as_deref(), Some("payments"), "the user's label is gone");
    assert_eq!(owner_of(&live), None, "our owner annotation is still there");
    assert!(!managers(&live).iter().any(|m| m == MANAGER), "our managedFields entry is still there: {:?}", managers(&live));
    let configmap = kubectl(&["get", "configmap", "precious", "-n", name, "-o", "name"]);
    configmap.assert_success();
}

#[test]
fn an_existing_namespace_is_refused_then_adopted_and_released_on_destroy() {
    for_each_terraform(|tf| {
        let name = users_namespace("acc-adopt");
        let work = Workdir::new(tf);
        let config = |extra: &str| {
            format!(
                "{PROVIDER}\nresource \"platform_namespace\" \"this\" {{\n  name   = \"{name}\"\n  labels = {{ tier = \"prod\" }}\n{extra}}}\n"
            )
        };

        // Not ours: create fails, naming the namespace and who manages it, and records nothing.
        work.write_main_tf(&config(""));
        let out = work.apply();
        out.assert_failure_contains(&format!("Namespace \"{name}\" already exists"));
        assert!(out.combined().contains("kubectl-create (Update)"), "managers not named:\n{}", out.describe());
        assert!(out.combined().contains("adopt = true"), "no way out offered:\n{}", out.describe());
        assert!(work.run(&["state", "list"]).stdout.trim().is_empty(), "a refused create left state");
        let untouched = live_namespace(&name).unwrap();
        assert_eq!(owner_of(&untouched), None);
        assert_eq!(label(&untouched, "tier"), None, "the refused create changed the namespace");

        // adopt = true: the plan says it will be adopted; apply takes it over.
        work.write_main_tf(&config("  adopt  = true\n"));
        let plan = work.plan_json();
        let after = &plan["resource_changes"][0]["change"]["after"];
        assert_eq!(after["adopted"], true, "the plan does not show the adoption: {after}");
        work.apply().assert_success();
        let live = live_namespace(&name).unwrap();
        let state = work.resource_values("platform_namespace.this").unwrap();
        assert_eq!(state["adopted"], true);
        assert_eq!(owner_of(&live), state["owner_id"].as_str(), "our id was not written");
        assert_eq!(label(&live, "tier").as_deref(), Some("prod"));
        assert!(managers(&live).iter().any(|m| m == MANAGER), "{:?}", managers(&live));
        work.assert_plan_empty();

        // Destroy releases it: the namespace, its content and the user's label stay.
        work.destroy().assert_success();
        assert_released(&name);
        kubectl(&["delete", "namespace", &name, "--wait=false"]).assert_success();
    });
}

#[test]
fn an_adopted_namespace_with_on_destroy_delete_is_deleted() {
    for_each_terraform(|tf| {
        let name = users_namespace("acc-adopt-del");
        let work = Workdir::new(tf);
        work.write_main_tf(&format!(
            "{PROVIDER}\nresource \"platform_namespace\" \"this\" {{\n  name       = \"{name}\"\n  adopt      = true\n  on_destroy = \"delete\"\n}}\n"
        ));
        work.apply().assert_success();
        assert_eq!(work.resource_values("platform_namespace.this").unwrap()["adopted"], true);
        work.assert_plan_empty();
        work.destroy().assert_success();
        assert!(live_namespace(&name).is_none(), "on_destroy = \"delete\" left the namespace");
    });
}

#[test]
fn an_imported_namespace_is_released_on_destroy() {
    for_each_terraform(|tf| {
        let name = users_namespace("acc-import");
        let work = Workdir::new(tf);
        work.write_main_tf(&format!(
            "{PROVIDER}\nresource \"platform_namespace\" \"this\" {{\n  name   = \"{name}\"\n  labels = {{ team = \"payments\" }}\n}}\n"
        ));
        work.import("platform_namespace.this", &name).assert_success();
        let state = work.resource_values("platform_namespace.this").unwrap();
        assert_eq!(state["adopted"], true, "{state}");
        assert!(state["owner_id"].is_string(), "{state}");
        work.assert_plan_empty();
        work.destroy().assert_success();
        assert_released(&name);
        kubectl(&["delete", "namespace", &name, "--wait=false"]).assert_success();
    });
}

#[test]
fn a_namespace_that_lost_our_owner_id_is_not_deleted() {
    for_each_terraform(|tf| {
        let name = unique_name("acc-lost");
        let work = Workdir::new(tf);
        let config = |extra: &str| format!("{PROVIDER}\nresource \"platform_namespace\" \"this\" {{\n  name = \"{name}\"\n{extra}}}\n");
        work.write_main_tf(&config(""));
        work.apply().assert_success();
        work.assert_plan_empty();

        // Someone else takes it over (another instance's id): destroy refuses to delete it.
        let other = "00000000-0000-4000-8000-000000000001";
        kubectl(&["annotate", "namespace", &name, &format!("{OWNER_ANNOTATION}={other}"), "--overwrite"]).assert_success();
        let out = work.destroy();
        out.assert_failure_contains("belongs to another resource instance");
        assert!(out.combined().contains(other), "{}", out.describe());
        assert!(live_namespace(&name).is_some(), "deleted another instance's namespace");
        // ... and so does an update.
        work.write_main_tf(&config("  labels = { a = \"b\" }\n"));
        work.apply().assert_failure_contains("belongs to another resource instance");

        // The annotation removed: not ours for sure either; on_destroy = "delete" says it is.
        kubectl(&["annotate", "namespace", &name, &format!("{OWNER_ANNOTATION}-")]).assert_success();
        work.write_main_tf(&config(""));
        work.destroy().assert_failure_contains("no longer carries this resource's owner id");
        assert!(live_namespace(&name).is_some());
        work.write_main_tf(&config("  on_destroy = \"delete\"\n"));
        work.apply().assert_success();
        work.assert_plan_empty();
        work.destroy().assert_success();
        assert!(live_namespace(&name).is_none());
    });
}

/// State written before owner ids existed (schema version 0, no `owner_id`) keeps working:
/// the namespace was created by us; the next apply writes our id, and destroy deletes it.
#[test]
fn state_from_before_owner_ids_is_stamped_at_the_next_apply() {
    for_each_terraform(|tf| {
        let name = unique_name("acc-legacy");
        let work = Workdir::new(tf);
        work.write_main_tf(&format!("{PROVIDER}\nresource \"platform_namespace\" \"this\" {{ name = \"{name}\" }}\n"));
        work.apply().assert_success();
        // Make it look like an earlier version's: no annotation, no ownership attributes.
        kubectl(&["annotate", "namespace", &name, &format!("{OWNER_ANNOTATION}-")]).assert_success();
        let path = work.path().join("terraform.tfstate");
        let mut state: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let instance = &mut state["resources"][0]["instances"][0];
        instance["schema_version"] = serde_json::json!(0);
        for attribute in ["owner_id", "adopt", "adopted", "on_destroy"] {
            instance["attributes"].as_object_mut().unwrap().remove(attribute);
        }
        state["serial"] = serde_json::json!(state["serial"].as_u64().unwrap() + 1);
        std::fs::write(&path, serde_json::to_string_pretty(&state).unwrap()).unwrap();

        let plan = work.assert_plan_has_changes();
        assert!(plan.stdout.contains("owner_id"), "{}", plan.stdout);
        work.apply().assert_success();
        let id = state_owner_id(&work, "platform_namespace.this").expect("an owner id after apply");
        assert_eq!(owner_of(&live_namespace(&name).unwrap()), Some(id.as_str()));
        assert_eq!(work.resource_values("platform_namespace.this").unwrap()["adopted"], false);
        work.assert_plan_empty();
        work.destroy().assert_success();
        assert!(live_namespace(&name).is_none());
    });
}

#[test]
fn out_of_band_delete_plans_a_create_and_apply_recreates() {
    for_each_terraform(|tf| {
        let name = unique_name("acc-gone");
        let work = Workdir::new(tf);
        work.write_main_tf(&format!("{PROVIDER}\nresource \"platform_namespace\" \"this\" {{ name = \"{name}\" }}\n"));
        work.apply().assert_success();
        let first_uid = live_namespace(&name).unwrap()["metadata"]["uid"].clone();

        kubectl(&["delete", "namespace", &name, "--wait=true"]).assert_success();
        let plan = work.assert_plan_has_changes();
        assert!(plan.stdout.contains("will be created"), "{}", plan.stdout);
        work.apply().assert_success();
        let second_uid = live_namespace(&name).expect("recreated")["metadata"]["uid"].clone();
        assert_ne!(first_uid, second_uid);
        work.assert_plan_empty();
        work.destroy().assert_success();
    });
}

#[test]
fn bad_input_gets_diagnostics_naming_the_attribute() {
    for_each_terraform(|tf| {
        let work = Workdir::without_cluster(tf);
        let cases = [
            (r#"name = "Not_Valid""#, "is not a valid Kubernetes name"),
            (&*format!(r#"name = "{}""#, "a".repeat(64)), "at most 63 characters"),
            (r#"name = "ok"
  labels = { "bad key!" = "x" }"#, "Invalid label key"),
            (r#"name = "ok"
  labels = { tier = "not a valid value" }"#, "Invalid label value"),
            (r#"name = "ok"
  timeouts { delete = "soon" }"#, "is not a duration"),
            (r#"name = "ok"
  cluster = { hots = "https://127.0.0.1:6443" }"#, "has no field \"hots\""),
            (r#"name = "ok"
  cluster = { token = "t" }"#, "needs at least `host`, `kubeconfig` or `config_path`"),
            (r#"name = ["a"]"#, "Incorrect attribute value type"),
            (r#"name = "ok"
  on_destroy = "orphan""#, r#"on_destroy must be "delete" or "release", not "orphan""#),
            (r#"name = "ok"
  annotations = { "platform.terraform.io/owner" = "me" }"#, "Reserved annotation"),
        ];
        for (body, expected) in cases {
            work.write_main_tf(&format!("{PROVIDER}\nresource \"platform_namespace\" \"bad\" {{\n  {body}\n}}\n"));
            let out = work.plan();
            out.assert_failure_contains(expected);
            let text = out.combined();
            assert!(!text.contains("panic") && !text.contains("crash"), "crash for {body}:\n{text}");
            assert!(text.contains(r#""platform_namespace" "bad""#), "diagnostic not attached to the resource:\n{text}");
        }
    });
}

#[test]
fn unreachable_api_and_bad_credentials_are_clear_errors() {
    for_each_terraform(|tf| {
        let work = Workdir::without_cluster(tf);
        // Nothing listens on port 1 of the loopback address.
        work.write_main_tf(&format!(
            "{PROVIDER}\nresource \"platform_namespace\" \"x\" {{\n  name = \"{}\"\n  cluster = {{ host = \"https://127.0.0.1:1\", insecure = true }}\n}}\n",
            unique_name("acc-unreach")
        ));
        let out = work.apply();
        out.assert_failure_contains("cannot reach the Kubernetes API");
        assert!(!out.combined().contains("panic"));

        work.write_main_tf(&format!(
            "{PROVIDER}\nresource \"platform_namespace\" \"x\" {{\n  name = \"{}\"\n  cluster = {{ host = \"{}\", token = \"not-a-valid-token\", insecure = true }}\n}}\n",
            unique_name("acc-badtoken"),
            cluster().server()
        ));
        work.apply().assert_failure_contains("refused the credentials");
        // Nothing was recorded for the failed creates.
        let state = work.run(&["state", "list"]);
        assert!(state.stdout.trim().is_empty(), "unexpected state: {}", state.stdout);
    });
}

#[test]
fn a_connection_unknown_at_plan_time_plans_without_contacting_anything() {
    for_each_terraform(|tf| {
        let work = Workdir::without_cluster(tf);
        let first = unique_name("acc-first");
        let second = unique_name("acc-second");
        let kubeconfig = work.write_file("cluster.kubeconfig", &cluster().kubeconfig_yaml());
        // The provider's default connection points nowhere; `second`'s connection depends on
        // `first`'s uid, unknown until it is created: the plan must still succeed.
        work.write_main_tf(&format!(
            r#"{required}
provider "platform" {{
  kubernetes {{ host = "https://127.0.0.1:1" }}
}}
locals {{ kubeconfig = file("{kubeconfig}") }}
resource "platform_namespace" "first" {{
  name    = "{first}"
  cluster = {{ kubeconfig = local.kubeconfig }}
}}
resource "platform_namespace" "second" {{
  name    = "{second}"
  cluster = {{ kubeconfig = "${{local.kubeconfig}}${{substr(platform_namespace.first.uid, 0, 0)}}" }}
}}
"#,
            required = required_providers!(),
            kubeconfig = kubeconfig.display()
        ));
        let plan = work.plan();
        plan.assert_success();
        assert!(plan.stdout.contains("2 to add"), "{}", plan.stdout);
        work.apply().assert_success();
        assert!(live_namespace(&second).is_some());
        work.assert_plan_empty();
        work.destroy().assert_success();
        assert!(live_namespace(&first).is_none() && live_namespace(&second).is_none());
    });
}

#[test]
fn delete_timeout_names_what_blocks_the_namespace() {
    for_each_terraform(|tf| {
        let (work, name) = namespace_held_by_finalizer(tf, "acc-stuck", "3s");

        let out = work.destroy();
        out.assert_failure_contains("example.com/hold");
        assert!(out.combined().contains("still terminating"), "{}", out.describe());
        // The namespace stays in state, so nothing is forgotten.
        let state = work.run(&["state", "list"]);
        assert!(state.stdout.contains("platform_namespace.this"), "{}", state.stdout);

        // Once the blocker is gone, destroy completes.
        release_and_destroy(&work, &name);
    });
}

#[test]
fn data_source_reads_a_namespace_and_reports_a_missing_one() {
    for_each_terraform(|tf| {
        let name = unique_name("acc-ds");
        kubectl(&["create", "namespace", &name]).assert_success();
        kubectl(&["label", "namespace", &name, "team=sre"]).assert_success();
        let work = Workdir::new(tf);
        work.write_main_tf(&format!(
            "{PROVIDER}\ndata \"platform_namespace\" \"x\" {{ name = \"{name}\" }}\noutput \"labels\" {{ value = data.platform_namespace.x.labels }}\noutput \"uid\" {{ value = data.platform_namespace.x.uid }}\noutput \"phase\" {{ value = data.platform_namespace.x.phase }}\n"
        ));
        work.apply().assert_success();
        let outputs = work.output_json();
        assert_eq!(outputs["labels"]["value"]["team"], "sre");
        assert_eq!(outputs["phase"]["value"], "Active");
        assert_eq!(outputs["uid"]["value"], live_namespace(&name).unwrap()["metadata"]["uid"]);
        work.assert_plan_empty();

        work.write_main_tf(&format!("{PROVIDER}\ndata \"platform_namespace\" \"x\" {{ name = \"{name}-missing\" }}\n"));
        work.plan().assert_failure_contains("Namespace not found");
        kubectl(&["delete", "namespace", &name, "--wait=false"]).assert_success();
    });
}

#[test]
fn credentials_never_reach_logs_or_plan_output() {
    let token = cluster().token().to_string();
    assert!(
        !token.is_empty(),
        "this test looks for the cluster's bearer token in logs and plans: use a cluster whose kubeconfig has one"
    );
    for_each_terraform(|tf| {
        let name = unique_name("acc-secret");
        let work = Workdir::without_cluster(tf);
        work.write_main_tf(&format!(
            "{PROVIDER}\nvariable \"token\" {{\n  type = string\n  sensitive = true\n}}\nresource \"platform_namespace\" \"x\" {{\n  name = \"{name}\"\n  cluster = {{ host = \"{}\", token = var.token, insecure = true }}\n}}\n",
            cluster().server()
        ));
        let env = [("TF_LOG", "trace"), ("TF_VAR_token", token.as_str())];
        let plan = work.run_with_env(&["plan", "-input=false", "-no-color", "-out=tfplan"], &env);
        plan.assert_success();
        let apply = work.run_with_env(&["apply", "-input=false", "-no-color", "tfplan"], &env);
        apply.assert_success();
        let refresh = work.run_with_env(&["plan", "-input=false", "-no-color"], &env);
        refresh.assert_success();
        for (what, text) in [("plan", plan.combined()), ("apply", apply.combined()), ("refresh", refresh.combined())] {
            assert!(text.contains("provider.terraform-provider-platform"), "{what}: no provider log lines seen");
            assert!(!text.contains(&token), "{what} output or trace log contains the token");
        }
        work.run_with_env(&["destroy", "-auto-approve", "-input=false", "-no-color"], &[("TF_VAR_token", token.as_str())])
            .assert_success();
    });
}

/// Ctrl-C during a long wait: Terraform calls StopProvider, the wait ends at once with a
/// clear message, and the namespace stays in the state.
#[test]
fn an_interrupt_cancels_a_waiting_delete() {
    for_each_terraform(|tf| {
        let (work, name) = namespace_held_by_finalizer(tf, "acc-stop", "10m");

        let destroy = work.start_interruptible(&["destroy", "-auto-approve", "-input=false", "-no-color"]);
        // Let the delete start waiting on the finalizer.
        wait_until("namespace terminating", Duration::from_secs(60), || match live_namespace(&name) {
            Some(ns) if ns["metadata"]["deletionTimestamp"].is_string() => Ok(()),
            _ => Err("not terminating yet".to_string()),
        });
        std::thread::sleep(Duration::from_secs(1));
        let (succeeded, text) = destroy.interrupt(Duration::from_secs(30));
        assert!(!succeeded, "destroy succeeded despite the interrupt:\n{text}");
        assert!(text.contains("cancelled"), "no cancellation message:\n{text}");
        let state = work.run(&["state", "list"]);
        assert!(state.stdout.contains("platform_namespace.this"), "{}", state.stdout);

        release_and_destroy(&work, &name);
    });
}
