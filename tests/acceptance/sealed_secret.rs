//! `platform_sealed_secret` with real Terraform against a real API server serving the
//! SealedSecret CRD. No controller runs: kubesealpy unseals the live ciphertext with the
//! test's private key instead, so each scope's binding is checked as the controller would.

use std::collections::BTreeMap;

use crate::harness::secrets::{
    assert_failure_mentions, ensure_sealed_secret_crd, hcl_map, live_object, provider_config, random_secret, sealing_python, require,
    Evidence, SealingKeyPair, TestNamespace,
};
use crate::harness::{for_each_terraform, kubectl, TerraformBin, Workdir};

const SCOPE_ANNOTATIONS: [&str; 2] = ["sealedsecrets.bitnami.com/namespace-wide", "sealedsecrets.bitnami.com/cluster-wide"];

/// A `platform_sealed_secret` labelled `label`, named `label` with `_` as `-`.
fn sealed_secret(label: &str, namespace: &str, keys: &SealingKeyPair, body: &str) -> String {
    format!(
        "resource \"platform_sealed_secret\" {label:?} {{\n  namespace   = {namespace:?}\n  name        = {:?}\n  certificate = file({:?})\n  {body}\n}}\n",
        label.replace('_', "-"),
        keys.certificate_path.display().to_string()
    )
}

fn live(namespace: &str, name: &str) -> serde_json::Value {
    live_object("sealedsecret", namespace, name).unwrap_or_else(|| panic!("SealedSecret {namespace}/{name} does not exist"))
}

fn state_encrypted(work: &Workdir, address: &str) -> serde_json::Value {
    work.resource_values(address).unwrap_or_else(|| panic!("{address} not in state"))["encrypted_data"].clone()
}

/// The key pair and CRD every test needs (Python with kubesealpy is required).
fn setup(work: &Workdir) -> SealingKeyPair {
    let python = require(sealing_python());
    ensure_sealed_secret_crd();
    SealingKeyPair::generate(&python, work.root())
}

fn expected(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// Resource labels and their `scope` (unset for the default, strict).
const SCOPES: [(&str, Option<&str>); 3] =
    [("strict", None), ("namespace_wide", Some("namespace-wide")), ("cluster_wide", Some("cluster-wide"))];

/// The scope annotations of a live SealedSecret (which the controller reads) match
/// `scope`, and the ciphertext opens exactly where the scope allows: strict only under its
/// own namespace and name, namespace-wide under any name of its namespace, cluster-wide
/// anywhere.
#[track_caller]
fn assert_sealed_for_scope(keys: &SealingKeyPair, object: &serde_json::Value, scope: Option<&str>) {
    let (namespace, name) = (object["metadata"]["namespace"].as_str().unwrap(), object["metadata"]["name"].as_str().unwrap());
    for annotation in SCOPE_ANNOTATIONS {
        let set = object["metadata"]["annotations"][annotation] == "true";
        assert_eq!(set, scope.is_some_and(|s| annotation.ends_with(s)), "{name}: {annotation} in {}", object["metadata"]);
    }
    let renamed = keys.unseal_as(object, namespace, "another-name");
    let moved = keys.unseal_as(object, "another-namespace", name);
    match scope {
        None => assert!(renamed.is_err() && moved.is_err(), "strict ciphertext opens elsewhere: {renamed:?} {moved:?}"),
        Some("namespace-wide") => assert!(renamed.is_ok() && moved.is_err(), "namespace-wide binding: {renamed:?} {moved:?}"),
        _ => assert!(renamed.is_ok() && moved.is_ok(), "cluster-wide binding: {renamed:?} {moved:?}"),
    }
}

#[test]
fn every_scope_seals_for_its_binding_and_reseals_only_on_change() {
    for_each_terraform(|tf| {
        let ns = TestNamespace::create("acc-sealed");
        let work = Workdir::new(tf);
        let keys = setup(&work);
        let passwords: BTreeMap<&str, String> = SCOPES.iter().map(|(label, _)| (*label, random_secret(label))).collect();
        let config = |passwords: &BTreeMap<&str, String>| {
            let mut config = provider_config(None);
            for (label, scope) in SCOPES {
                let scope_line = scope.map(|s| format!("scope       = {s:?}\n  ")).unwrap_or_default();
                let type_line = if label == "namespace_wide" { "type        = \"kubernetes.io/basic-auth\"\n  " } else { "" };
                config += &sealed_secret(
                    label,
                    &ns.name,
                    &keys,
                    &format!(
                        "{scope_line}{type_line}labels      = {{ app = \"db\" }}\n  annotations = {{ note = \"sealed\" }}\n  data        = {}",
                        hcl_map(&[("username", "admin"), ("password", &passwords[label])])
                    ),
                );
            }
            config
        };
        work.write_main_tf(&config(&passwords));
        let apply = work.apply();
        apply.assert_success();
        let mut evidence = Evidence::default();
        evidence.add_output("apply", &apply);
        evidence.assert_absent(&passwords.values().map(String::as_str).collect::<Vec<_>>());

        for (label, scope) in SCOPES {
            let name = label.replace('_', "-");
            let object = live(&ns.name, &name);
            let password = &passwords[label];
            // Labels, annotations and type go to the Secret's template.
            let template = &object["spec"]["template"];
            assert_eq!(template["metadata"]["labels"]["app"], "db", "{label}: {template}");
            assert_eq!(template["metadata"]["annotations"]["note"], "sealed", "{label}: {template}");
            let secret_type = if label == "namespace_wide" { "kubernetes.io/basic-auth" } else { "Opaque" };
            assert_eq!(template["type"], secret_type, "{label}");
            // Only ciphertext in the cluster; the state holds the same ciphertext.
            assert!(!object.to_string().contains(password.as_str()), "{label}: plaintext in the SealedSecret");
            assert_eq!(state_encrypted(&work, &format!("platform_sealed_secret.{label}")), object["spec"]["encryptedData"]);
            let values = work.resource_values(&format!("platform_sealed_secret.{label}")).unwrap();
            assert_eq!(values["scope"], scope.unwrap_or("strict"), "{label}: scope default");
            assert_eq!(values["id"], format!("{}/{name}", ns.name).as_str());
            // The private key opens it, and the scope decides under which names.
            assert_eq!(keys.unseal(&object), expected(&[("username", "admin"), ("password", password)]), "{label}");
            assert_sealed_for_scope(&keys, &object, scope);
        }

        // Nothing is sealed again while the inputs stay the same.
        let before: Vec<serde_json::Value> = SCOPES.iter().map(|(label, _)| live(&ns.name, &label.replace('_', "-"))).collect();
        work.assert_plan_empty();
        work.apply().assert_success();
        for ((label, _), old) in SCOPES.iter().zip(&before) {
            let now = live(&ns.name, &label.replace('_', "-"));
            assert_eq!(now["spec"]["encryptedData"], old["spec"]["encryptedData"], "{label} sealed again without a change");
            assert_eq!(now["metadata"]["resourceVersion"], old["metadata"]["resourceVersion"], "{label} rewritten");
        }

        // A changed value is sealed again; the other resources are left alone.
        let mut changed = passwords.clone();
        changed.insert("strict", random_secret("strict-new"));
        work.write_main_tf(&config(&changed));
        let plan = work.assert_plan_has_changes();
        assert!(plan.stdout.contains("1 to change"), "{}", plan.stdout);
        work.apply().assert_success();
        let strict = live(&ns.name, "strict");
        assert_ne!(strict["spec"]["encryptedData"]["password"], before[0]["spec"]["encryptedData"]["password"]);
        assert_eq!(keys.unseal(&strict)["password"], changed["strict"]);
        assert_eq!(live(&ns.name, "cluster-wide")["spec"]["encryptedData"], before[2]["spec"]["encryptedData"]);
        work.assert_plan_empty();

        // Ciphertext replaced outside Terraform shows in the next plan; apply seals ours again.
        let swapped = serde_json::json!({ "spec": { "encryptedData": { "password": before[0]["spec"]["encryptedData"]["username"] } } });
        kubectl(&["patch", "sealedsecret", "namespace-wide", "-n", &ns.name, "--type=merge", "-p", &swapped.to_string()])
            .assert_success();
        let plan = work.assert_plan_has_changes();
        assert!(plan.stdout.contains("platform_sealed_secret.namespace_wide will be updated in-place"), "{}", plan.stdout);
        work.apply().assert_success();
        let restored = live(&ns.name, "namespace-wide");
        assert_eq!(keys.unseal(&restored), expected(&[("username", "admin"), ("password", &changed["namespace_wide"])]));
        work.assert_plan_empty();

        // Import adopts the live object by `namespace/name`.
        work.run(&["state", "rm", "platform_sealed_secret.cluster_wide"]).assert_success();
        work.import("platform_sealed_secret.cluster_wide", &format!("{}/cluster-wide", ns.name)).assert_success();
        let imported = work.resource_values("platform_sealed_secret.cluster_wide").unwrap();
        let object = live(&ns.name, "cluster-wide");
        assert_eq!(imported["encrypted_data"], object["spec"]["encryptedData"]);
        assert_eq!(imported["scope"], "cluster-wide");
        assert_eq!(imported["labels"]["app"], "db");
        assert_eq!(imported["type"], "Opaque");
        // Nothing proves what imported ciphertext seals: the first apply seals the configured values.
        assert_eq!(imported["adopted"], true);
        work.apply().assert_success();
        assert_eq!(keys.unseal(&live(&ns.name, "cluster-wide"))["password"], changed["cluster_wide"]);
        work.assert_plan_empty();

        // Destroy deletes what this configuration created and releases what it imported.
        work.destroy().assert_success();
        for (label, _) in SCOPES.iter().filter(|(label, _)| *label != "cluster_wide") {
            assert!(live_object("sealedsecret", &ns.name, &label.replace('_', "-")).is_none(), "{label} survived destroy");
        }
        let released = live(&ns.name, "cluster-wide");
        assert!(released["metadata"]["annotations"]["platform.terraform.io/owner"].is_null(), "not released: {released}");
        assert_eq!(keys.unseal(&released)["password"], changed["cluster_wide"]);
    });
}

#[test]
fn write_only_values_are_sealed_and_never_stored() {
    for_each_terraform(|tf| {
        if !tf.at_least(1, 11) {
            refused_without_write_only_support(tf);
            return;
        }
        let ns = TestNamespace::create("acc-sealed-wo");
        let work = Workdir::new(tf);
        let keys = setup(&work);
        let (first, unversioned, second) = (random_secret("first"), random_secret("unversioned"), random_secret("second"));
        let config = |value: &str, version: u32| {
            let mut config = provider_config(None);
            for (label, scope) in SCOPES {
                let scope_line = scope.map(|s| format!("scope           = {s:?}\n  ")).unwrap_or_default();
                let values = format!("data_wo         = {}\n  data_wo_version = {version}", hcl_map(&[("token", value)]));
                config += &sealed_secret(label, &ns.name, &keys, &(scope_line + &values));
            }
            config
        };
        let check_all = |value: &str| {
            for (label, scope) in SCOPES {
                let object = live(&ns.name, &label.replace('_', "-"));
                assert_eq!(keys.unseal(&object), expected(&[("token", value)]), "{label}");
                assert_sealed_for_scope(&keys, &object, scope);
                assert_eq!(state_encrypted(&work, &format!("platform_sealed_secret.{label}")), object["spec"]["encryptedData"]);
            }
        };
        work.write_main_tf(&config(&first, 1));
        work.apply().assert_success();
        check_all(&first);
        work.assert_plan_empty();

        // A new value alone is invisible to Terraform; the version bump seals it.
        work.write_main_tf(&config(&unversioned, 1));
        work.assert_plan_empty();
        work.write_main_tf(&config(&second, 2));
        let plan = work.assert_plan_has_changes();
        assert!(plan.stdout.contains("3 to change"), "{}", plan.stdout);
        work.apply().assert_success();
        check_all(&second);
        work.assert_plan_empty();

        let mut evidence = Evidence::default();
        evidence.add_output("plan", &plan).add_state(&work);
        evidence.assert_absent(&[&first, &unversioned, &second]);
        work.destroy().assert_success();
        for (label, _) in SCOPES {
            assert!(live_object("sealedsecret", &ns.name, &label.replace('_', "-")).is_none(), "{label} survived destroy");
        }
    });
}

/// Terraform before 1.11 would store `data_wo` in state: the provider refuses it.
fn refused_without_write_only_support(tf: &TerraformBin) {
    let work = Workdir::without_cluster(tf);
    work.write_main_tf(&format!(
        "{}resource \"platform_sealed_secret\" \"wo\" {{\n  namespace = \"default\"\n  name = \"wo\"\n  certificate = \"x\"\n  data_wo = {{ k = \"v\" }}\n  data_wo_version = 1\n}}\n",
        provider_config(None)
    ));
    let out = work.plan();
    assert_failure_mentions(&out, "data_wo on old Terraform", &["needs Terraform 1.11 or later", "\"data_wo\" is write-only", "data_wo = {"]);
    eprintln!("with {tf}: data_wo refused as it must be (write-only attributes need Terraform 1.11)");
}

#[test]
fn bad_certificates_and_scopes_are_diagnostics_naming_the_attribute() {
    for_each_terraform(|tf| {
        let work = Workdir::without_cluster(tf);
        let ec = rcgen::generate_simple_self_signed(vec!["not-rsa.example".to_string()]).expect("EC certificate");
        work.write_file("ec.crt", &ec.cert.pem());
        let resource = |body: &str| {
            format!(
                "{}resource \"platform_sealed_secret\" \"bad\" {{\n  namespace = \"default\"\n  name      = \"bad\"\n  data      = {{ k = \"v\" }}\n  {body}\n}}\n",
                provider_config(None)
            )
        };
        let cases = [
            ("certificate = \"not a certificate\"", "Invalid sealing certificate", "certificate = \"not a certificate\""),
            ("certificate = file(\"${path.module}/ec.crt\")", "must be an RSA key", "certificate = file("),
            ("certificate = \"x\"\n  scope = \"everywhere\"", "Invalid scope", "scope = \"everywhere\""),
            ("certificate = \"x\"\n  data_wo_version = 1", "Missing data_wo", "data_wo_version = 1"),
        ];
        // The diagnostic points at the attribute: Terraform quotes its line of main.tf.
        for (body, summary, quoted_line) in cases {
            work.write_main_tf(&resource(body));
            let out = work.plan();
            assert_failure_mentions(&out, body, &[summary, quoted_line]);
            let text = out.combined();
            assert!(text.contains("platform_sealed_secret.bad"), "{body}: not attached to the resource:\n{text}");
            assert!(!text.contains("panic"), "{body}: crash:\n{text}");
        }
    });
}
