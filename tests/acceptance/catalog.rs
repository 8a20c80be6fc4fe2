//! `platform_catalog` (data source) and `component { catalog = "..." }` of `platform_stack`,
//! the latter through the helm-controller stand-in.

use serde_json::{json, Value};

use crate::harness::{flux_standin, for_each_terraform, unique_name, Workdir};
use crate::stack::{
    assert_no_crash, assert_ours, destroy_and_check_gone, flux_namespace_component, folded, hcl, key, namespace_path,
    stack_tf, Component, PROVIDER,
};

const OUTPUTS: &str = r#"
data "platform_catalog" "c" {}
output "names" { value = data.platform_catalog.c.names }
output "cert_manager_version" { value = data.platform_catalog.c.components["cert-manager"].version }
output "sealed_secrets" { value = data.platform_catalog.c.components["sealed-secrets"] }
output "id" { value = data.platform_catalog.c.id }
"#;

#[test]
fn catalog_data_source_lists_components_without_a_cluster() {
    for_each_terraform(|tf| {
        let work = Workdir::without_cluster(tf);
        work.write_main_tf(&format!("{PROVIDER}{OUTPUTS}"));
        let out = work.apply();
        out.assert_success();
        let outputs = work.output_json();
        let names: Vec<String> = serde_json::from_value(outputs["names"]["value"].clone()).unwrap();
        for wanted in ["cert-manager", "cilium", "flux", "velero", "sealed-secrets", "ingress-nginx"] {
            assert!(names.iter().any(|n| n == wanted), "{wanted} missing from {names:?}");
        }
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(names, sorted, "names are not sorted and unique");
        assert_eq!(outputs["id"]["value"], "catalog");

        let version = outputs["cert_manager_version"]["value"].as_str().unwrap();
        let numbers: Vec<&str> = version.trim_start_matches('v').split('.').collect();
        assert!(numbers.len() == 3 && numbers.iter().all(|n| n.parse::<u32>().is_ok()), "version {version:?}");

        let sealed = &outputs["sealed_secrets"]["value"];
        assert!(sealed["repository"].as_str().unwrap().starts_with("https://"), "{sealed}");
        assert_eq!(sealed["chart"], "sealed-secrets");
        assert_eq!(sealed["namespace"], "kube-system");
        assert_eq!(sealed["depends_on"], json!([]));
        assert!(!sealed["description"].as_str().unwrap().is_empty());
        assert!(sealed["homepage"].as_str().unwrap().starts_with("https://"));
        // Reading the catalog again changes nothing.
        work.assert_plan_empty();
    });
}

#[test]
fn unknown_catalog_name_lists_the_known_ones() {
    for_each_terraform(|tf| {
        let work = Workdir::without_cluster(tf);
        work.write_main_tf(&stack_tf("cat", "", &[Component::new("x").attr("catalog", "\"cert-mangler\"")]));
        let out = work.plan();
        out.assert_failure_contains("Unknown catalog component");
        let text = folded(&out);
        assert!(text.contains("the catalog has no \"cert-mangler\""), "{text}");
        for name in ["cert-manager", "cilium", "flux", "velero"] {
            assert!(text.contains(name), "{name} not listed: {text}");
        }
        assert_no_crash(&out);
    });
}

/// The catalog entry as the data source reports it.
pub(crate) fn catalog_entry(work: &Workdir, name: &str) -> Value {
    work.write_main_tf(&format!(
        "{PROVIDER}\ndata \"platform_catalog\" \"c\" {{}}\noutput \"entry\" {{ value = data.platform_catalog.c.components[{}] }}\n",
        hcl(name)
    ));
    work.apply().assert_success();
    work.output_json()["entry"]["value"].clone()
}

#[test]
fn catalog_component_with_fake_helm_controller() {
    flux_standin::ensure();
    for_each_terraform(|tf| {
        let stack = unique_name("acc-cat");
        let flux_ns = unique_name("acc-cat-flux");
        let release_name = format!("{stack}-sealed-secrets");
        let work = Workdir::new(tf);
        let entry = catalog_entry(&work, "sealed-secrets");
        let defaults: serde_yaml::Value = serde_yaml::from_str(entry["default_values"].as_str().unwrap()).unwrap();
        assert!(defaults.get("fullnameOverride").is_some(), "the test relies on sealed-secrets' default values: {defaults:?}");

        let config = |helm: Option<&str>| {
            let mut component = Component::new("sealed-secrets").depends_on(&["flux-ns"]).attr("catalog", "\"sealed-secrets\"");
            if let Some(helm) = helm {
                component = component.block(helm);
            }
            stack_tf(&stack, &format!("namespace = {}\n  timeouts {{\n    create = \"2m\"\n    update = \"2m\"\n  }}", hcl(&flux_ns)), &[flux_namespace_component(&flux_ns), component])
        };
        // Values of our own are merged over the catalog's defaults.
        work.write_main_tf(&config(Some("helm {\n      values = yamlencode({ fake = { delaySeconds = 1 } })\n    }")));
        work.apply().assert_success();

        let release = flux_standin::helm_release(&flux_ns, &release_name).expect("HelmRelease");
        assert!(flux_standin::is_ready(&release), "apply returned before Ready: {}", release["status"]);
        assert_ours(&release, &stack, "sealed-secrets");
        let spec = &release["spec"];
        assert_eq!(
            spec["chart"]["spec"],
            json!({
                "chart": entry["chart"],
                "version": entry["version"],
                "sourceRef": {"kind": "HelmRepository", "name": release_name, "namespace": flux_ns},
            })
        );
        assert_eq!(spec["targetNamespace"], entry["namespace"]);
        assert_eq!(spec["install"]["createNamespace"], true);
        assert_eq!(spec["values"]["fullnameOverride"], json!(defaults["fullnameOverride"].as_str().unwrap()));
        assert_eq!(spec["values"]["fake"], json!({"delaySeconds": 1}));
        let repo = flux_standin::helm_repository(&flux_ns, &release_name).expect("HelmRepository");
        assert_eq!(repo["spec"]["url"], entry["repository"]);
        let objects = crate::stack::inventory(&work);
        assert!(objects.contains_key(&key(
            "sealed-secrets",
            "helm.toolkit.fluxcd.io/v2",
            "HelmRelease",
            Some(&flux_ns),
            &release_name
        )));
        work.assert_plan_empty();

        // Overriding the version changes only the version.
        work.write_main_tf(&config(Some(
            "helm {\n      version = \"2.16.0\"\n      values  = yamlencode({ fake = { delaySeconds = 1 } })\n    }",
        )));
        work.apply().assert_success();
        let updated = flux_standin::helm_release(&flux_ns, &release_name).unwrap();
        assert!(flux_standin::is_ready(&updated), "{}", updated["status"]);
        let mut expected = spec.clone();
        expected["chart"]["spec"]["version"] = json!("2.16.0");
        assert_eq!(updated["spec"], expected, "more than the version changed");
        assert_eq!(updated["metadata"]["generation"], 2);
        assert_eq!(flux_standin::helm_repository(&flux_ns, &release_name).unwrap()["spec"], repo["spec"]);
        work.assert_plan_empty();

        destroy_and_check_gone(&work, &[namespace_path(&flux_ns)]);
        assert!(flux_standin::helm_release(&flux_ns, &release_name).is_none());
    });
}
