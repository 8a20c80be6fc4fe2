//! `platform_sops_file` as a data source (values flattened, sensitive, in state) and as an
//! ephemeral resource feeding a write-only `data_wo` (nothing in state), with files
//! encrypted by the real `sops`.

use std::collections::BTreeMap;

use crate::harness::secrets::{
    platform_secret, provider_config, random_secret, secret_text, require, AgeKey, Evidence,
    SampleYaml, Sops, TestNamespace,
};
use crate::harness::{for_each_terraform, Workdir};

fn provider_with_key_file(key: &AgeKey) -> String {
    provider_config(Some(&format!("age_key_file = {:?}", key.path.display().to_string())))
}

/// A data source reading `file` (with `format` if given) and sensitive outputs of its
/// `data` and `raw`, named after `label`.
fn data_source_with_outputs(label: &str, file: &str, format: Option<&str>) -> String {
    let format = format.map(|f| format!("\n  format = {f:?}")).unwrap_or_default();
    format!(
        "data \"platform_sops_file\" {label:?} {{\n  path = \"${{path.module}}/{file}\"{format}\n}}\n\
         output \"{label}_data\" {{\n  value     = data.platform_sops_file.{label}.data\n  sensitive = true\n}}\n\
         output \"{label}_raw\" {{\n  value     = data.platform_sops_file.{label}.raw\n  sensitive = true\n}}\n"
    )
}

fn string_map(value: &serde_json::Value) -> BTreeMap<String, String> {
    value
        .as_object()
        .unwrap_or_else(|| panic!("not a map: {value}"))
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_else(|| panic!("{k} is not a string: {v}")).to_string()))
        .collect()
}

#[test]
fn data_source_flattens_decrypted_values_behind_sensitive_outputs() {
    let sops = require(Sops::find());
    for_each_terraform(|tf| {
        let (work, key) = sops.keyed_workdir(Workdir::without_cluster(tf));
        let yaml = SampleYaml::new();
        yaml.encrypt(&sops, &key, &work.path().join("app.yaml"));
        let api_key = random_secret("api");
        let json = serde_json::json!({ "service": { "api_key": api_key, "ports": [8080, { "tls": true }] } }).to_string();
        sops.encrypt(&[&key], "json", json.as_bytes(), &work.path().join("service.sops"), &[]);
        let db_password = random_secret("dbpw");
        sops.encrypt(&[&key], "dotenv", format!("DB_PASSWORD={db_password}\n").as_bytes(), &work.path().join("app.env"), &[]);
        let blob = format!("-----BEGIN KEY-----\n{}\n-----END KEY-----\n", random_secret("blob"));
        sops.encrypt(&[&key], "binary", blob.as_bytes(), &work.path().join("blob.bin"), &[]);
        work.write_main_tf(
            &(provider_with_key_file(&key)
                + &data_source_with_outputs("yaml", "app.yaml", None)
                + &data_source_with_outputs("json", "service.sops", Some("json"))
                + &data_source_with_outputs("dotenv", "app.env", None)
                + &data_source_with_outputs("binary", "blob.bin", None)),
        );

        let apply = work.apply();
        apply.assert_success();
        let secrets = [yaml.password.as_str(), yaml.token.as_str(), api_key.as_str(), db_password.as_str(), blob.as_str()];
        Evidence::default().add_output("apply", &apply).assert_absent(&secrets);

        let outputs = work.output_json();
        for name in ["yaml_data", "yaml_raw", "json_data", "dotenv_data", "binary_data", "binary_raw"] {
            assert_eq!(outputs[name]["sensitive"], true, "{name}");
        }
        assert_eq!(string_map(&outputs["yaml_data"]["value"]), yaml.flattened());
        let raw: serde_json::Value = serde_yaml::from_str(outputs["yaml_raw"]["value"].as_str().unwrap()).expect("raw is YAML");
        let original: serde_json::Value = serde_yaml::from_str(&yaml.text()).unwrap();
        assert_eq!(raw, original, "raw is not the decrypted document");
        let expected_json: BTreeMap<String, String> = [
            ("service.api_key", api_key.as_str()),
            ("service.ports.0", "8080"),
            ("service.ports.1.tls", "true"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(string_map(&outputs["json_data"]["value"]), expected_json);
        assert_eq!(string_map(&outputs["dotenv_data"]["value"]), BTreeMap::from([("DB_PASSWORD".to_string(), db_password.clone())]));
        assert_eq!(string_map(&outputs["binary_data"]["value"]), BTreeMap::from([("data".to_string(), blob.clone())]));
        assert_eq!(outputs["binary_raw"]["value"], blob.as_str());

        let plan = work.run(&["plan", "-input=false", "-no-color", "-detailed-exitcode"]);
        assert_eq!(plan.code(), 0, "second plan not empty:\n{}", plan.describe());
        Evidence::default().add_output("plan", &plan).assert_absent(&secrets);

        // Problems name the file and the attribute.
        work.write_main_tf(&(provider_with_key_file(&key) + "data \"platform_sops_file\" \"x\" {\n  path = \"${path.module}/missing.yaml\"\n}\n"));
        let out = work.plan();
        out.assert_failure_contains("Cannot read SOPS file");
        assert!(out.combined().contains("missing.yaml") && out.combined().contains("data.platform_sops_file.x"), "{}", out.describe());
        work.write_main_tf(
            &(provider_with_key_file(&key) + "data \"platform_sops_file\" \"x\" {\n  path   = \"${path.module}/app.yaml\"\n  format = \"ini\"\n}\n"),
        );
        work.plan().assert_failure_contains("Invalid SOPS format");
    });
}

#[test]
fn ephemeral_values_feed_write_only_data_without_reaching_state() {
    let sops = require(Sops::find());
    for_each_terraform(|tf| {
        if !tf.at_least(1, 11) {
            let why = if tf.at_least(1, 10) {
                "write-only attributes need Terraform 1.11"
            } else {
                "ephemeral resources need Terraform 1.10, write-only attributes 1.11"
            };
            // This Terraform cannot even read the configuration: it must say so, not apply it.
            let work = Workdir::new(tf);
            work.write_main_tf(&(provider_config(None) + "ephemeral \"platform_sops_file\" \"app\" {\n  path = \"app.yaml\"\n}\n"));
            let out = work.plan();
            assert!(!out.success(), "{tf} accepted an ephemeral block ({why}):\n{}", out.describe());
            return;
        }
        let ns = TestNamespace::create("acc-ephemeral");
        let (work, key) = sops.keyed_workdir(Workdir::new(tf));
        let yaml = SampleYaml::new();
        yaml.encrypt(&sops, &key, &work.path().join("app.yaml"));
        let config = |version: u32| {
            provider_with_key_file(&key)
                + "ephemeral \"platform_sops_file\" \"app\" {\n  path = \"${path.module}/app.yaml\"\n}\n"
                + &platform_secret(
                    "db",
                    &ns.name,
                    &format!(
                        "data_wo = {{\n    password = ephemeral.platform_sops_file.app.data[\"database.password\"]\n    token    = ephemeral.platform_sops_file.app.data[\"token\"]\n  }}\n  data_wo_version = {version}"
                    ),
                )
        };
        work.write_main_tf(&config(1));
        let apply = work.apply();
        apply.assert_success();
        assert_eq!(secret_text(&ns.name, "db", "password").as_deref(), Some(yaml.password.as_str()));
        assert_eq!(secret_text(&ns.name, "db", "token").as_deref(), Some(yaml.token.as_str()));

        let mut evidence = Evidence::default();
        evidence.add_output("apply", &apply).add_state(&work);
        evidence.assert_absent(&[&yaml.password, &yaml.token]);
        let state = work.show_json();
        let resources = state["values"]["root_module"]["resources"].as_array().cloned().unwrap_or_default();
        assert!(resources.iter().all(|r| r["mode"] != "ephemeral" && !r["address"].as_str().unwrap_or("").contains("ephemeral")), "{state}");
        work.assert_plan_empty();

        // A re-encrypted file takes effect when the version moves.
        let rotated = SampleYaml { password: random_secret("pw-rotated"), token: yaml.token.clone() };
        rotated.encrypt(&sops, &key, &work.path().join("app.yaml"));
        work.assert_plan_empty();
        work.write_main_tf(&config(2));
        work.apply().assert_success();
        assert_eq!(secret_text(&ns.name, "db", "password").as_deref(), Some(rotated.password.as_str()));
        Evidence::default().add_state(&work).assert_absent(&[&rotated.password, &yaml.password]);

        work.destroy().assert_success();
    });
}
