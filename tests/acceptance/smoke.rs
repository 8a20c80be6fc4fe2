//! The harness itself works: the control plane is real (namespace controller, custom
//! resources) and every terraform binary runs with the CLI config the harness writes.

use std::time::Duration;

use crate::harness::{self, cluster, for_each_terraform, kubectl, kubectl_apply, unique_name, Workdir};

#[test]
fn control_plane_serves_the_default_namespace() {
    let c = cluster();
    assert!(c.server().starts_with("https://"), "server {}", c.server());
    assert!(!c.token().is_empty());
    assert!(c.ca_pem().contains("BEGIN CERTIFICATE"));
    let readyz = c.get("/readyz");
    assert_eq!(readyz.status, 200, "readyz: {}", readyz.body);

    let ns = kubectl(&["get", "namespace", "default", "-o", "json"]);
    ns.assert_success();
    let ns = ns.json();
    assert_eq!(ns["kind"], "Namespace");
    assert_eq!(ns["metadata"]["name"], "default");
    assert_eq!(ns["status"]["phase"], "Active");

    // The kubeconfig the harness hands to terraform names the same server.
    let kubeconfig: serde_yaml::Value = serde_yaml::from_str(&c.kubeconfig_yaml()).unwrap();
    let servers: Vec<&str> = kubeconfig["clusters"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(|cl| cl["cluster"]["server"].as_str())
        .collect();
    assert!(servers.contains(&c.server().trim_end_matches('/')), "{servers:?} vs {}", c.server());
}

#[test]
fn deleted_namespace_really_disappears() {
    let c = cluster();
    let name = unique_name("smoke-ns");
    kubectl(&["create", "namespace", &name]).assert_success();
    // Content the namespace controller has to delete before it can drop the finalizer.
    kubectl(&["-n", &name, "create", "configmap", "content", "--from-literal=k=v"]).assert_success();
    let path = format!("/api/v1/namespaces/{name}");
    let ns = c.get_json(&path).expect("namespace exists after create");
    assert_eq!(ns["spec"]["finalizers"][0], "kubernetes", "{ns}");

    kubectl(&["delete", "namespace", &name, "--wait=false"]).assert_success();
    c.wait_gone(&path, Duration::from_secs(60));
    assert!(c.get_json(&format!("{path}/configmaps/content")).is_none());
}

#[test]
fn custom_resources_can_be_written() {
    let c = cluster();
    let group = "smoke.tf-acc.example.com";
    let crd = format!(
        r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.{group}
spec:
  group: {group}
  scope: Namespaced
  names: {{plural: widgets, singular: widget, kind: Widget, listKind: WidgetList}}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {{type: integer}}
              color: {{type: string}}
"#
    );
    kubectl_apply(&crd);
    kubectl(&["wait", "--for=condition=Established", &format!("crd/widgets.{group}"), "--timeout=60s"])
        .assert_success();

    let name = unique_name("widget");
    // Discovery of a fresh CRD can lag a moment behind Established.
    let manifest = format!(
        "apiVersion: {group}/v1\nkind: Widget\nmetadata:\n  name: {name}\n  namespace: default\nspec:\n  size: 3\n  color: blue\n"
    );
    harness::wait_until("the Widget kind to be served", Duration::from_secs(30), || {
        let out = harness::kubectl_stdin(&["apply", "-f", "-"], &manifest);
        if out.success() {
            Ok(())
        } else {
            Err(out.stderr)
        }
    });
    // Written and read back through the API server (the reflect2 path that used to crash it).
    let path = format!("/apis/{group}/v1/namespaces/default/widgets/{name}");
    let widget = c.get_json(&path).expect("widget exists");
    assert_eq!(widget["spec"]["size"], 3);
    assert_eq!(widget["spec"]["color"], "blue");
    let patched = c.request("PATCH", &path, Some("application/merge-patch+json"), Some(br#"{"spec":{"size":4}}"#));
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert_eq!(patched.json()["spec"]["size"], 4);
    c.assert_alive();
    assert_eq!(c.get("/readyz").status, 200);

    kubectl(&["-n", "default", "delete", &format!("widgets.{group}"), &name]).assert_success();
    assert!(c.get_json(&path).is_none());
    kubectl(&["delete", "crd", &format!("widgets.{group}"), "--wait=false"]).assert_success();
}

#[test]
fn every_terraform_applies_an_output_only_config() {
    let bins = harness::terraform_binaries();
    assert!(!bins.is_empty());
    for_each_terraform(|tf| {
        let wd = Workdir::new(tf);
        wd.write_main_tf("output \"x\" {\n  value = 1\n}\n");
        let out = wd.apply();
        out.assert_success();
        assert!(out.stdout.contains("x = 1"), "{}", out.describe());
        // The CLI config really is the harness's (dev_overrides for platform/platform).
        assert!(out.combined().contains("platform/platform"), "{}", out.describe());
        assert_eq!(wd.output_json()["x"]["value"], 1);
        wd.assert_plan_empty();
        let (code, plan) = wd.plan_detailed();
        assert_eq!(code, 0, "{}", plan.describe());
        wd.destroy().assert_success();
    });
}
