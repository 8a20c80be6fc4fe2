//! `platform_secret` with real Terraform, real `sops`/`age-keygen` and a real API server:
//! values from `data`, write-only `data_wo` and SOPS files; drift, foreign keys, import,
//! replacement of immutable Secrets; and the issue's core requirement, that no secret value
//! reaches Terraform's output, its logs or its state.

use crate::harness::secrets::{
    assert_failure_mentions, base64, ensure_sealed_secret_crd, hcl_map, isolate_age_keys, live_object,
    patch_secret_value, platform_secret, provider_config, random_secret, sealing_python, secret_text, secret_values,
    require, tamper_enc_data, AgeKey, Evidence, SampleYaml, SealingKeyPair, Sops, TestNamespace,
};
use crate::harness::{for_each_terraform, kubectl, Workdir};
use sha2::{Digest, Sha256};

/// The provider block reading age identities from `key`'s file.
fn provider_with_key_file(key: &AgeKey) -> String {
    provider_config(Some(&format!("age_key_file = {:?}", key.path.display().to_string())))
}

fn state_attr(work: &Workdir, address: &str, attribute: &str) -> serde_json::Value {
    work.resource_values(address).unwrap_or_else(|| panic!("{address} not in state"))[attribute].clone()
}

#[test]
fn data_lifecycle_with_drift_foreign_keys_update_import_and_destroy() {
    for_each_terraform(|tf| {
        let ns = TestNamespace::create("acc-secret");
        let work = Workdir::new(tf);
        let (password, token, new_token) = (random_secret("pw"), random_secret("tok"), random_secret("tok2"));
        let config = |data: &[(&str, &str)], labels: &str| {
            provider_config(None)
                + &platform_secret(
                    "app",
                    &ns.name,
                    &format!("data        = {}\n  labels      = {labels}\n  annotations = {{ owner = \"sre\" }}", hcl_map(data)),
                )
        };
        work.write_main_tf(&config(&[("password", &password), ("token", &token)], r#"{ tier = "backend" }"#));

        // Create: the values, type, labels and annotations reach the cluster.
        let apply = work.apply();
        apply.assert_success();
        assert!(!apply.combined().contains(&password), "apply output shows a value:\n{}", apply.stdout);
        let live = live_object("secret", &ns.name, "app").expect("Secret created");
        assert_eq!(live["type"], "Opaque");
        assert_eq!(live["metadata"]["labels"]["tier"], "backend");
        assert_eq!(live["metadata"]["annotations"]["owner"], "sre");
        assert_eq!(secret_text(&ns.name, "app", "password").as_deref(), Some(password.as_str()));
        assert_eq!(secret_text(&ns.name, "app", "token").as_deref(), Some(token.as_str()));
        assert_eq!(state_attr(&work, "platform_secret.app", "id"), format!("{}/app", ns.name).as_str());
        assert_eq!(state_attr(&work, "platform_secret.app", "type"), "Opaque");
        assert!(state_attr(&work, "platform_secret.app", "data_digest").is_null());
        work.assert_plan_empty();

        // Keys, labels and annotations added by others are not ours: no diff.
        kubectl(&["patch", "secret", "app", "-n", &ns.name, "--type=merge", "-p", &format!(r#"{{"data":{{"other":"{}"}}}}"#, base64(b"theirs"))])
            .assert_success();
        kubectl(&["label", "secret", "app", "-n", &ns.name, "added-by=someone-else"]).assert_success();
        kubectl(&["annotate", "secret", "app", "-n", &ns.name, "note=not-ours"]).assert_success();
        work.assert_plan_empty();

        // A managed value changed out of band is drift; apply puts it back, keeping theirs.
        patch_secret_value(&ns.name, "app", "password", "tampered-value");
        let plan = work.assert_plan_has_changes();
        assert!(plan.stdout.contains("platform_secret.app will be updated in-place"), "{}", plan.stdout);
        assert!(!plan.stdout.contains("tampered-value"), "plan shows a sensitive value:\n{}", plan.stdout);
        work.apply().assert_success();
        assert_eq!(secret_text(&ns.name, "app", "password").as_deref(), Some(password.as_str()));
        assert_eq!(secret_text(&ns.name, "app", "other").as_deref(), Some("theirs"), "foreign key removed");
        work.assert_plan_empty();

        // A managed key removed out of band is drift too.
        kubectl(&["patch", "secret", "app", "-n", &ns.name, "--type=json", "-p", r#"[{"op":"remove","path":"/data/token"}]"#])
            .assert_success();
        work.assert_plan_has_changes();
        work.apply().assert_success();
        assert_eq!(secret_text(&ns.name, "app", "token").as_deref(), Some(token.as_str()));

        // Update: change a value, drop a key, add one, change the label.
        work.write_main_tf(&config(&[("token", &new_token), ("extra", "x")], r#"{ tier = "frontend" }"#));
        work.apply().assert_success();
        let values = secret_values(&ns.name, "app");
        assert_eq!(values.get("token").map(Vec::as_slice), Some(new_token.as_bytes()));
        assert_eq!(values.get("extra").map(Vec::as_slice), Some(&b"x"[..]));
        assert!(!values.contains_key("password"), "dropped key still present");
        assert_eq!(values.get("other").map(Vec::as_slice), Some(&b"theirs"[..]), "foreign key removed");
        assert_eq!(live_object("secret", &ns.name, "app").unwrap()["metadata"]["labels"]["tier"], "frontend");
        work.assert_plan_empty();

        // Destroy removes a Secret this resource created.
        let live = live_object("secret", &ns.name, "app").unwrap();
        assert_eq!(live["metadata"]["annotations"][OWNER_ANNOTATION], state_attr(&work, "platform_secret.app", "owner_id"));
        work.destroy().assert_success();
        assert!(live_object("secret", &ns.name, "app").is_none(), "Secret still exists after destroy");
    });
}

const OWNER_ANNOTATION: &str = "platform.terraform.io/owner";
const MANAGER: &str = "terraform-provider-platform";

/// A Secret's live object with its managedFields.
fn live_secret(namespace: &str, name: &str) -> Option<serde_json::Value> {
    let out = kubectl(&["get", "secret", name, "-n", namespace, "-o", "json", "--ignore-not-found", "--show-managed-fields"]);
    out.assert_success();
    (!out.stdout.trim().is_empty()).then(|| out.json())
}

/// Still there, with `values` as they were, without our annotation or managedFields entry.
#[track_caller]
fn assert_released(namespace: &str, name: &str, values: &[(&str, &[u8])]) {
    let live = live_secret(namespace, name).expect("a released Secret must stay");
    assert!(live["metadata"]["annotations"][OWNER_ANNOTATION].is_null(), "our owner annotation is still there: {live}");
    let managers: Vec<&str> =
        live["metadata"]["managedFields"].as_array().into_iter().flatten().filter_map(|e| e["manager"].as_str()).collect();
    assert!(!managers.contains(&MANAGER), "our managedFields entry is still there: {managers:?}");
    let live_values = secret_values(namespace, name);
    for (key, value) in values {
        assert_eq!(live_values.get(*key).map(Vec::as_slice), Some(*value), "{key} changed on release");
    }
}

#[test]
fn an_existing_secret_is_refused_then_adopted_and_released_on_destroy() {
    for_each_terraform(|tf| {
        let ns = TestNamespace::create("acc-sec-adopt");
        let (theirs, ours) = (random_secret("theirs"), random_secret("ours"));
        kubectl(&["create", "secret", "generic", "db", "-n", &ns.name, &format!("--from-literal=user-key={theirs}")]).assert_success();
        let work = Workdir::new(tf);
        let config = |extra: &str| {
            provider_config(None) + &platform_secret("db", &ns.name, &format!("data = {}\n{extra}", hcl_map(&[("password", &ours)])))
        };

        // Not ours: refused, naming the Secret and its managers; nothing written or recorded.
        work.write_main_tf(&config(""));
        let out = work.apply();
        out.assert_failure_contains(&format!("Secret \"{}/db\" already exists", ns.name));
        assert!(out.combined().contains("kubectl-create (Update)"), "managers not named:\n{}", out.describe());
        assert!(work.run(&["state", "list"]).stdout.trim().is_empty(), "a refused create left state");
        assert!(!secret_values(&ns.name, "db").contains_key("password"), "the refused create wrote a value");

        // adopt = true: the plan says so, apply takes it over and writes our value.
        work.write_main_tf(&config("  adopt = true"));
        let plan = work.plan_json();
        assert_eq!(plan["resource_changes"][0]["change"]["after"]["adopted"], true, "the plan does not show the adoption");
        work.apply().assert_success();
        assert_eq!(state_attr(&work, "platform_secret.db", "adopted"), true);
        assert_eq!(secret_text(&ns.name, "db", "password").as_deref(), Some(ours.as_str()));
        let live = live_secret(&ns.name, "db").unwrap();
        assert_eq!(live["metadata"]["annotations"][OWNER_ANNOTATION], state_attr(&work, "platform_secret.db", "owner_id"));
        work.assert_plan_empty();

        // Destroy releases it: the Secret and every value in it stay.
        work.destroy().assert_success();
        assert_released(&ns.name, "db", &[("user-key", theirs.as_bytes()), ("password", ours.as_bytes())]);

        // With on_destroy = "delete", an adopted Secret is deleted.
        work.write_main_tf(&config("  adopt = true\n  on_destroy = \"delete\""));
        work.apply().assert_success();
        work.assert_plan_empty();
        work.destroy().assert_success();
        assert!(live_secret(&ns.name, "db").is_none(), "on_destroy = \"delete\" left the Secret");
    });
}

/// Import never copies live values into state, whatever the configuration's source: the
/// next plan shows the configured values as an update, and values the configuration does
/// not manage (a binary one here) are left byte for byte.
#[test]
fn import_copies_no_values_into_state_and_destroy_releases() {
    let sops = require(Sops::find());
    for_each_terraform(|tf| {
        let ns = TestNamespace::create("acc-sec-import");
        let (work, key) = sops.keyed_workdir(Workdir::new(tf));
        let sample = SampleYaml::new();
        sample.encrypt(&sops, &key, &work.path().join("app.yaml"));
        let (live_text, live_binary) = (random_secret("live"), [&[0xffu8, 0xfe, 0][..], random_secret("bin").as_bytes()].concat());
        let binary_file = work.write_file("blob", "");
        std::fs::write(&binary_file, &live_binary).unwrap();
        kubectl(&[
            "create", "secret", "generic", "sops", "-n", &ns.name,
            &format!("--from-literal=token={live_text}"), &format!("--from-file=blob={}", binary_file.display()),
        ])
        .assert_success();
        kubectl(&["create", "secret", "generic", "plain", "-n", &ns.name, &format!("--from-literal=value={live_text}")]).assert_success();
        let configured = random_secret("configured");
        work.write_main_tf(&(provider_with_key_file(&key)
            + &platform_secret("sops", &ns.name, "sops_file = \"${path.module}/app.yaml\"")
            + &platform_secret("plain", &ns.name, &format!("data = {}", hcl_map(&[("value", &configured)])))));

        work.import("platform_secret.sops", &format!("{}/sops", ns.name)).assert_success();
        work.import("platform_secret.plain", &format!("{}/plain", ns.name)).assert_success();
        for address in ["platform_secret.sops", "platform_secret.plain"] {
            assert!(state_attr(&work, address, "data").is_null(), "{address}: import stored values");
            assert_eq!(state_attr(&work, address, "adopted"), true, "{address}");
        }
        let mut stored = Evidence::default();
        stored.add_state(&work);
        stored.assert_absent(&[&live_text]);

        // The next plan writes the configured values, shown as sensitive.
        let plan = work.assert_plan_has_changes();
        assert!(plan.stdout.contains("platform_secret.sops will be updated in-place"), "{}", plan.stdout);
        assert!(plan.stdout.contains("platform_secret.plain will be updated in-place"), "{}", plan.stdout);
        assert!(!plan.stdout.contains(&live_text) && !plan.stdout.contains(&configured), "{}", plan.stdout);
        work.apply().assert_success();
        assert_eq!(secret_text(&ns.name, "sops", "token").as_deref(), Some(sample.token.as_str()));
        assert_eq!(secret_text(&ns.name, "plain", "value").as_deref(), Some(configured.as_str()));
        assert_eq!(secret_values(&ns.name, "sops")["blob"], live_binary, "a binary value was changed");
        let mut stored = Evidence::default();
        stored.add_state(&work);
        stored.assert_absent(&[&live_text, &sample.token, &sample.password]);
        work.assert_plan_empty();

        // Imported means adopted: destroy releases both.
        work.destroy().assert_success();
        assert_released(&ns.name, "sops", &[("blob", &live_binary), ("token", sample.token.as_bytes())]);
        assert_released(&ns.name, "plain", &[("value", configured.as_bytes())]);
    });
}

#[test]
fn tls_type_and_immutable_secrets_are_replaced_on_change() {
    for_each_terraform(|tf| {
        let ns = TestNamespace::create("acc-tls");
        let work = Workdir::new(tf);
        let tls = rcgen::generate_simple_self_signed(vec!["app.example".to_string()]).expect("self-signed certificate");
        let (crt, key) = (tls.cert.pem(), tls.signing_key.serialize_pem());
        work.write_file("tls.crt", &crt);
        work.write_file("tls.key", &key);
        let config = |value: &str| {
            provider_config(None)
                + &platform_secret(
                    "tls",
                    &ns.name,
                    "type = \"kubernetes.io/tls\"\n  data = {\n    \"tls.crt\" = file(\"${path.module}/tls.crt\")\n    \"tls.key\" = file(\"${path.module}/tls.key\")\n  }",
                )
                + &platform_secret("frozen", &ns.name, &format!("immutable = true\n  data      = {}", hcl_map(&[("value", value)])))
        };
        work.write_main_tf(&config("first"));
        work.apply().assert_success();

        let live = live_object("secret", &ns.name, "tls").expect("TLS Secret created");
        assert_eq!(live["type"], "kubernetes.io/tls");
        let values = secret_values(&ns.name, "tls");
        assert_eq!(values["tls.crt"], crt.as_bytes());
        assert_eq!(values["tls.key"], key.as_bytes());
        assert_eq!(state_attr(&work, "platform_secret.tls", "type"), "kubernetes.io/tls");
        let frozen = live_object("secret", &ns.name, "frozen").expect("immutable Secret created");
        assert_eq!(frozen["immutable"], true);
        assert_eq!(frozen["type"], "Opaque");
        work.assert_plan_empty();

        // Kubernetes refuses new values for an immutable Secret: the plan replaces it.
        work.write_main_tf(&config("second"));
        let plan = work.assert_plan_has_changes();
        assert!(plan.stdout.contains("platform_secret.frozen must be replaced"), "{}", plan.stdout);
        assert!(plan.stdout.contains("1 to add, 0 to change, 1 to destroy"), "{}", plan.stdout);
        work.apply().assert_success();
        let replaced = live_object("secret", &ns.name, "frozen").expect("replacement created");
        assert_ne!(replaced["metadata"]["uid"], frozen["metadata"]["uid"], "not a new Secret");
        assert_eq!(replaced["immutable"], true);
        assert_eq!(secret_text(&ns.name, "frozen", "value").as_deref(), Some("second"));
        work.assert_plan_empty();

        work.destroy().assert_success();
        assert!(live_object("secret", &ns.name, "tls").is_none() && live_object("secret", &ns.name, "frozen").is_none());
    });
}

/// Every file format sops writes, and a whole Secret manifest, as a Secret's values.
struct SopsFixtures {
    yaml: SampleYaml,
    api_key: String,
    db_password: String,
    binary: Vec<u8>,
    manifest_cert: String,
    manifest_password: String,
}

impl SopsFixtures {
    fn write(sops: &Sops, key: &AgeKey, work: &Workdir) -> SopsFixtures {
        let fixtures = SopsFixtures {
            yaml: SampleYaml::new(),
            api_key: random_secret("api"),
            db_password: random_secret("dbpw"),
            binary: [&[0u8, 1, 0xfe, 0xff][..], random_secret("bin").as_bytes(), b"\n"].concat(),
            manifest_cert: random_secret("cert"),
            manifest_password: random_secret("mpw"),
        };
        let dir = work.path();
        fixtures.yaml.encrypt(sops, key, &dir.join("app.yaml"));
        let json = serde_json::json!({ "api_key": fixtures.api_key, "limits": { "rps": 10 } }).to_string();
        sops.encrypt(&[key], "json", json.as_bytes(), &dir.join("settings.sops"), &[]);
        let dotenv = format!("DB_PASSWORD={}\nMODE=prod\n", fixtures.db_password);
        sops.encrypt(&[key], "dotenv", dotenv.as_bytes(), &dir.join("app.env"), &[]);
        sops.encrypt(&[key], "binary", &fixtures.binary, &dir.join("blob.bin"), &[]);
        let manifest = format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: from-manifest\ntype: Opaque\ndata:\n  cert: {}\nstringData:\n  password: {}\n",
            base64(fixtures.manifest_cert.as_bytes()),
            fixtures.manifest_password
        );
        sops.encrypt(&[key], "yaml", manifest.as_bytes(), &dir.join("manifest.yaml"), &["--encrypted-regex", "^(data|stringData)$"]);
        let encrypted = std::fs::read_to_string(dir.join("manifest.yaml")).unwrap();
        assert!(encrypted.contains("name: from-manifest"), "metadata was encrypted too:\n{encrypted}");
        fixtures
    }

    fn secrets(&self) -> Vec<&str> {
        vec![&self.yaml.password, &self.yaml.token, &self.api_key, &self.db_password, &self.manifest_cert, &self.manifest_password]
    }

    fn config(key: &AgeKey, namespace: &str) -> String {
        let file = |name: &str, extra: &str| format!("sops_file = \"${{path.module}}/{name}\"{extra}");
        provider_with_key_file(key)
            + &platform_secret("yaml", namespace, &file("app.yaml", ""))
            + &platform_secret("json", namespace, &file("settings.sops", "\n  sops_format = \"json\""))
            + &platform_secret("dotenv", namespace, &file("app.env", ""))
            + &platform_secret("binary", namespace, &file("blob.bin", ""))
            + &platform_secret("manifest", namespace, &file("manifest.yaml", ""))
    }
}

#[test]
fn sops_files_of_every_format_become_secrets_and_follow_file_and_live_changes() {
    let sops = require(Sops::find());
    for_each_terraform(|tf| {
        let ns = TestNamespace::create("acc-sops");
        let (work, key) = sops.keyed_workdir(Workdir::new(tf));
        let fixtures = SopsFixtures::write(&sops, &key, &work);
        work.write_main_tf(&SopsFixtures::config(&key, &ns.name));
        let apply = work.apply();
        apply.assert_success();

        // YAML: scalars as text, nested maps and lists serialized as YAML.
        let yaml = secret_values(&ns.name, "yaml");
        let text = |k: &str| String::from_utf8(yaml[k].clone()).unwrap();
        assert_eq!(text("token"), fixtures.yaml.token);
        assert_eq!(text("port"), "5432");
        assert_eq!(text("enabled"), "true");
        let database: serde_json::Value = serde_yaml::from_str(&text("database")).expect("database is YAML");
        assert_eq!(database, serde_json::json!({ "user": "admin", "password": fixtures.yaml.password }));
        let hosts: serde_json::Value = serde_yaml::from_str(&text("hosts")).expect("hosts is YAML");
        assert_eq!(hosts, serde_json::json!(["a.example", "b.example"]));
        assert_eq!(yaml.len(), 5, "{:?}", yaml.keys());
        // JSON with an explicit format, nested values serialized as JSON.
        assert_eq!(secret_text(&ns.name, "json", "api_key").as_deref(), Some(fixtures.api_key.as_str()));
        let limits: serde_json::Value = serde_json::from_str(&secret_text(&ns.name, "json", "limits").unwrap()).expect("limits is JSON");
        assert_eq!(limits, serde_json::json!({ "rps": 10 }));
        // dotenv.
        assert_eq!(secret_text(&ns.name, "dotenv", "DB_PASSWORD").as_deref(), Some(fixtures.db_password.as_str()));
        assert_eq!(secret_text(&ns.name, "dotenv", "MODE").as_deref(), Some("prod"));
        // Binary, byte for byte (not UTF-8), as the key `data`.
        assert_eq!(secret_values(&ns.name, "binary").get("data"), Some(&fixtures.binary));
        // A Secret manifest gives its own data (base64-decoded) and stringData.
        let manifest = secret_values(&ns.name, "manifest");
        assert_eq!(manifest.keys().collect::<Vec<_>>(), ["cert", "password"]);
        assert_eq!(manifest["cert"], fixtures.manifest_cert.as_bytes());
        assert_eq!(manifest["password"], fixtures.manifest_password.as_bytes());

        // State keeps the path and a digest, never a value.
        let yaml_digest = state_attr(&work, "platform_secret.yaml", "data_digest");
        assert!(yaml_digest.as_str().is_some_and(|d| d.starts_with("hmac-sha256:")), "{yaml_digest}");
        // Keyed: the state holds no plain SHA-256 of the values (whole or one by one).
        let state_text = std::fs::read_to_string(work.path().join("terraform.tfstate")).unwrap();
        for name in ["yaml", "json", "dotenv", "binary", "manifest"] {
            let values = secret_values(&ns.name, name);
            let mut whole = Sha256::new();
            for (k, v) in &values {
                whole.update((k.len() as u64).to_be_bytes());
                whole.update(k.as_bytes());
                whole.update((v.len() as u64).to_be_bytes());
                whole.update(v);
                let single = hex::encode(Sha256::digest(v));
                assert!(!state_text.contains(&single), "{name}/{k}: the state holds the SHA-256 of its value");
            }
            let whole = hex::encode(whole.finalize());
            assert!(!state_text.contains(&whole), "{name}: the state holds an unkeyed SHA-256 of its values");
        }
        assert!(state_attr(&work, "platform_secret.yaml", "data").is_null());
        let mut evidence = Evidence::default();
        evidence.add_output("apply", &apply).add_state(&work);
        evidence.assert_absent(&fixtures.secrets());
        work.assert_plan_empty();

        // A new value in the file: the plan shows a new digest and apply writes it.
        let changed = SampleYaml { password: fixtures.yaml.password.clone(), token: random_secret("tok-new") };
        changed.encrypt(&sops, &key, &work.path().join("app.yaml"));
        let plan = work.assert_plan_has_changes();
        assert!(plan.stdout.contains("platform_secret.yaml will be updated in-place"), "{}", plan.stdout);
        assert!(plan.stdout.contains("data_digest"), "{}", plan.stdout);
        assert!(plan.stdout.contains("1 to change"), "only the changed file's Secret may change:\n{}", plan.stdout);
        assert!(!plan.stdout.contains(&changed.token), "{}", plan.stdout);
        work.apply().assert_success();
        assert_eq!(secret_text(&ns.name, "yaml", "token").as_deref(), Some(changed.token.as_str()));
        assert_ne!(state_attr(&work, "platform_secret.yaml", "data_digest"), yaml_digest);
        work.assert_plan_empty();

        // A value edited in the cluster: the digest of what we own changes; apply restores it.
        patch_secret_value(&ns.name, "dotenv", "MODE", "debug");
        let plan = work.assert_plan_has_changes();
        assert!(plan.stdout.contains("platform_secret.dotenv will be updated in-place"), "{}", plan.stdout);
        work.apply().assert_success();
        assert_eq!(secret_text(&ns.name, "dotenv", "MODE").as_deref(), Some("prod"));
        work.assert_plan_empty();

        // A value removed in the cluster: same.
        kubectl(&["patch", "secret", "manifest", "-n", &ns.name, "--type=json", "-p", r#"[{"op":"remove","path":"/data/cert"}]"#])
            .assert_success();
        work.assert_plan_has_changes();
        work.apply().assert_success();
        assert_eq!(secret_values(&ns.name, "manifest")["cert"], fixtures.manifest_cert.as_bytes());
        work.assert_plan_empty();

        work.destroy().assert_success();
        for name in ["yaml", "json", "dotenv", "binary", "manifest"] {
            assert!(live_object("secret", &ns.name, name).is_none(), "{name} survived destroy");
        }
    });
}

#[test]
fn tampered_foreign_and_unreadable_sops_files_are_clear_errors() {
    let sops = require(Sops::find());
    for_each_terraform(|tf| {
        let (work, key) = sops.keyed_workdir(Workdir::without_cluster(tf));
        let stranger = sops.age_key(work.root(), "stranger.txt");
        let sample = SampleYaml::new();
        let dir = work.path().to_path_buf();
        sample.encrypt(&sops, &key, &dir.join("good.yaml"));
        let good = std::fs::read_to_string(dir.join("good.yaml")).unwrap();
        work.write_file("value-tampered.yaml", &tamper_enc_data(&good, "password:"));
        work.write_file("mac-tampered.yaml", &tamper_enc_data(&good, "mac:"));
        let manifest = format!("apiVersion: v1\nkind: Secret\nmetadata:\n  name: original\nstringData:\n  password: {}\n", sample.password);
        sops.encrypt(&[&key], "yaml", manifest.as_bytes(), &dir.join("manifest.yaml"), &["--encrypted-regex", "^(data|stringData)$"]);
        let manifest = std::fs::read_to_string(dir.join("manifest.yaml")).unwrap();
        work.write_file("manifest-tampered.yaml", &manifest.replace("name: original", "name: renamed"));
        sample.encrypt(&sops, &stranger, &dir.join("foreign.yaml"));
        work.write_file("plain.yaml", &sample.text());
        // Real sops agrees that the tampered files are bad.
        assert!(!sops.decrypt(&key, &dir.join("mac-tampered.yaml"), "yaml").success());

        let with_key = provider_with_key_file(&key);
        let cases: Vec<(String, &str, Vec<String>)> = vec![
            (
                with_key.clone() + &platform_secret("x", "default", "sops_file = \"${path.module}/value-tampered.yaml\""),
                "value-tampered.yaml",
                vec!["cannot decrypt the value at `database.password`".into(), "modified".into()],
            ),
            (
                with_key.clone() + &platform_secret("x", "default", "sops_file = \"${path.module}/mac-tampered.yaml\""),
                "mac-tampered.yaml",
                vec!["MAC mismatch".into(), "modified after it was encrypted".into()],
            ),
            (
                with_key.clone() + &platform_secret("x", "default", "sops_file = \"${path.module}/manifest-tampered.yaml\""),
                "unencrypted field changed",
                vec!["MAC mismatch".into()],
            ),
            (
                with_key.clone() + &platform_secret("x", "default", "sops_file = \"${path.module}/foreign.yaml\""),
                "file for another recipient",
                vec!["none of the available age identities can decrypt this file".into(), stranger.recipient.clone(), key.recipient.clone()],
            ),
            (
                with_key.clone() + &platform_secret("x", "default", "sops_file = \"${path.module}/plain.yaml\""),
                "unencrypted file",
                vec!["not sops-encrypted".into()],
            ),
            (
                with_key.clone() + &platform_secret("x", "default", "sops_file = \"${path.module}/missing.yaml\""),
                "missing file",
                vec!["Cannot read SOPS file".into(), "missing.yaml".into()],
            ),
            (
                provider_config(Some("age_key_file = \"/nonexistent/keys.txt\""))
                    + &platform_secret("x", "default", "sops_file = \"${path.module}/good.yaml\""),
                "missing key file",
                vec!["cannot read the age key file".into(), "/nonexistent/keys.txt".into()],
            ),
            (
                provider_config(None) + &platform_secret("x", "default", "sops_file = \"${path.module}/good.yaml\""),
                "no key anywhere",
                vec!["no age identities".into(), "SOPS_AGE_KEY_FILE".into()],
            ),
            (
                with_key.clone()
                    + &platform_secret("x", "default", "sops_file = \"${path.module}/good.yaml\"\n  sops_format = \"toml\""),
                "invalid format",
                vec!["Invalid SOPS format".into(), "sops_format".into()],
            ),
            (
                with_key.clone()
                    + &platform_secret("x", "default", "sops_file = \"${path.module}/good.yaml\"\n  data = { a = \"b\" }"),
                "two sources",
                vec!["Conflicting secret sources".into()],
            ),
        ];
        for (config, what, expected) in cases {
            work.write_main_tf(&config);
            let out = work.plan();
            assert_failure_mentions(&out, what, &expected.iter().map(String::as_str).collect::<Vec<_>>());
            let text = out.combined();
            assert!(text.contains("platform_secret.x"), "{what}: diagnostic not attached to the resource:\n{text}");
            // Attached to the attribute: Terraform quotes its line of main.tf.
            assert!(text.contains("sops_file = \"") || text.contains("sops_format = \""), "{what}: no attribute quoted:\n{text}");
            assert!(!text.contains("panic"), "{what}: crash:\n{text}");
            assert!(!text.contains(&sample.password) && !text.contains(&sample.token), "{what}: error shows plaintext:\n{text}");
            assert!(!text.contains(&key.identity) && !text.contains(&stranger.identity), "{what}: error shows a private key:\n{text}");
        }
    });
}

#[test]
fn age_keys_come_from_the_provider_block_the_environment_or_inline() {
    let sops = require(Sops::find());
    for_each_terraform(|tf| {
        let (work, key) = sops.keyed_workdir(Workdir::without_cluster(tf));
        let stranger = sops.age_key(work.root(), "stranger.txt");
        let sample = SampleYaml::new();
        sample.encrypt(&sops, &key, &work.path().join("app.yaml"));
        let resource = platform_secret("x", "default", "sops_file = \"${path.module}/app.yaml\"");
        let inline = format!(
            "variable \"age_key\" {{\n  type      = string\n  sensitive = true\n}}\n{}",
            provider_config(Some(&format!(
                "age_key      = var.age_key\n    age_key_file = {:?}",
                stranger.path.display().to_string()
            )))
        );
        let key_file = key.path.display().to_string();
        let cases = [
            ("secrets.age_key_file", provider_with_key_file(&key), vec![]),
            ("SOPS_AGE_KEY_FILE", provider_config(None), vec![("SOPS_AGE_KEY_FILE", key_file.as_str())]),
            ("SOPS_AGE_KEY", provider_config(None), vec![("SOPS_AGE_KEY", key.identity.as_str())]),
            // Inline identities win over the key file (which holds the wrong key).
            ("secrets.age_key", inline, vec![("TF_VAR_age_key", key.identity.as_str())]),
        ];
        let mut digests = Vec::new();
        for (source, provider, env) in &cases {
            work.write_main_tf(&(provider.clone() + &resource));
            let out = work.run_with_env(&["plan", "-input=false", "-no-color", "-out=tfplan"], env);
            if !out.success() {
                panic!("keys from {source}: plan failed:\n{}", out.describe());
            }
            assert!(!out.combined().contains(&key.identity), "keys from {source}: the identity is shown:\n{}", out.stdout);
            let plan = work.run(&["show", "-json", "tfplan"]);
            plan.assert_success();
            let digest = plan.json()["resource_changes"][0]["change"]["after"]["data_digest"].clone();
            assert!(digest.as_str().is_some_and(|d| d.starts_with("hmac-sha256:")), "keys from {source}: no digest at plan: {digest}");
            digests.push(digest);
        }
        assert!(digests.windows(2).all(|w| w[0] == w[1]), "every key source must decrypt the same values: {digests:?}");
    });
}

#[test]
fn write_only_data_reaches_the_cluster_but_never_the_state() {
    for_each_terraform(|tf| {
        if !tf.at_least(1, 11) {
            // Older Terraform would store write-only values like any other: refused.
            let work = Workdir::without_cluster(tf);
            work.write_main_tf(&(provider_config(None) + &platform_secret("wo", "default", "data_wo = { k = \"v\" }\n  data_wo_version = 1")));
            let out = work.plan();
            // Named in the text, and attached to the attribute (Terraform quotes its line).
            assert_failure_mentions(&out, "data_wo on old Terraform", &["needs Terraform 1.11 or later", "\"data_wo\" is write-only", "data_wo = {"]);
            eprintln!("with {tf}: data_wo refused as it must be (write-only attributes need Terraform 1.11)");
            return;
        }
        let ns = TestNamespace::create("acc-wo");
        let work = Workdir::new(tf);
        let key = random_secret("wokey");
        let (first, unversioned, second) = (random_secret("wo1"), random_secret("wo-unversioned"), random_secret("wo2"));
        let config = |value: &str, version: u32| {
            provider_config(None)
                + &platform_secret("wo", &ns.name, &format!("data_wo         = {}\n  data_wo_version = {version}", hcl_map(&[(&key, value)])))
        };
        work.write_main_tf(&config(&first, 1));
        let apply = work.apply();
        apply.assert_success();
        assert_eq!(secret_text(&ns.name, "wo", &key).as_deref(), Some(first.as_str()));
        let state = work.resource_values("platform_secret.wo").expect("in state");
        assert!(state["data_wo"].is_null(), "write-only value stored: {state}");
        assert!(state["data"].is_null(), "{state}");
        let mut evidence = Evidence::default();
        evidence.add_output("apply", &apply).add_state(&work);
        evidence.assert_absent(&[&first, &key]);
        work.assert_plan_empty();

        // Terraform cannot see a new write-only value: nothing happens until the version moves.
        work.write_main_tf(&config(&unversioned, 1));
        work.assert_plan_empty();
        assert_eq!(secret_text(&ns.name, "wo", &key).as_deref(), Some(first.as_str()));

        work.write_main_tf(&config(&second, 2));
        let plan = work.assert_plan_has_changes();
        assert!(plan.stdout.contains("data_wo_version"), "{}", plan.stdout);
        let apply = work.apply();
        apply.assert_success();
        assert_eq!(secret_text(&ns.name, "wo", &key).as_deref(), Some(second.as_str()));
        let mut evidence = Evidence::default();
        evidence.add_output("plan", &plan).add_output("apply", &apply).add_state(&work);
        evidence.assert_absent(&[&first, &unversioned, &second, &key]);
        work.assert_plan_empty();

        work.destroy().assert_success();
        assert!(live_object("secret", &ns.name, "wo").is_none());
    });
}

/// The issue's core requirement: with `TF_LOG=trace`, no value from `data_wo`, a SOPS file
/// or a sealed secret appears in Terraform's output, its log, `show -json` (state and plan)
/// or the state file; `data` values appear only in state (sensitive, as documented).
#[test]
fn secret_values_never_reach_output_logs_or_state() {
    let sops = require(Sops::find());
    let python = Some(require(sealing_python()));
    if python.is_some() {
        ensure_sealed_secret_crd();
    }
    for_each_terraform(|tf| {
        let ns = TestNamespace::create("acc-hygiene");
        let mut work = Workdir::new(tf);
        isolate_age_keys(&mut work);
        let log = work.root().join("trace.log");
        work.set_env("TF_LOG", "trace").set_env("TF_LOG_PATH", &log.display().to_string());
        let key = sops.age_key(work.root(), "age.txt");
        let sample = SampleYaml::new();
        sample.encrypt(&sops, &key, &work.path().join("app.yaml"));
        let write_only = tf.at_least(1, 11);
        let (in_data, in_wo, in_sealed) = (random_secret("data"), random_secret("wo"), random_secret("sealed"));

        // Values that may be in state (sensitive) but nowhere else, and values allowed nowhere.
        let mut state_only = vec![in_data.as_str()];
        let mut nowhere = vec![sample.password.as_str(), sample.token.as_str()];
        let mut config = provider_with_key_file(&key)
            + &platform_secret("plain", &ns.name, &format!("data = {}", hcl_map(&[("value", &in_data)])))
            + &platform_secret("sops", &ns.name, "sops_file = \"${path.module}/app.yaml\"");
        // Values come from variables, as in real use: a literal would be part of the
        // configuration, which `show -json` of a plan prints. Write-only values come from
        // ephemeral variables, which no plan or state keeps.
        let variable = |name: &str, value: &str, work: &mut Workdir| {
            work.set_env(&format!("TF_VAR_{name}"), value);
            let ephemeral = if write_only { "\n  ephemeral = true" } else { "" };
            format!("variable {name:?} {{\n  type      = string\n  sensitive = true{ephemeral}\n}}\n")
        };
        if write_only {
            config += &variable("wo", &in_wo, &mut work);
            config += &platform_secret("wo", &ns.name, "data_wo         = { value = var.wo }\n  data_wo_version = 1");
            nowhere.push(&in_wo);
        } else {
            eprintln!("with {tf}: no data_wo part (write-only attributes need Terraform 1.11)");
        }
        let keys = python.as_ref().map(|python| SealingKeyPair::generate(python, work.root()));
        if let Some(keys) = &keys {
            let values = if write_only { "data_wo = { value = var.sealed }\n  data_wo_version = 1" } else { "data = { value = var.sealed }" };
            config += &variable("sealed", &in_sealed, &mut work);
            config += &format!(
                "resource \"platform_sealed_secret\" \"sealed\" {{\n  namespace   = {:?}\n  name        = \"sealed\"\n  certificate = file({:?})\n  {values}\n}}\n",
                ns.name,
                keys.certificate_path.display().to_string()
            );
            if write_only { nowhere.push(&in_sealed) } else { state_only.push(&in_sealed) }
        }
        work.write_main_tf(&config);

        let plan = work.run(&["plan", "-input=false", "-no-color", "-out=tfplan"]);
        plan.assert_success();
        assert!(plan.stdout.contains("(sensitive value)"), "`data` is not shown as sensitive:\n{}", plan.stdout);
        let plan_json = work.run(&["show", "-json", "tfplan"]);
        plan_json.assert_success();
        let apply = work.run(&["apply", "-input=false", "-no-color", "tfplan"]);
        apply.assert_success();
        let refresh = work.run(&["plan", "-input=false", "-no-color", "-detailed-exitcode"]);
        assert_eq!(refresh.code(), 0, "second plan not empty:\n{}", refresh.describe());

        // The values did arrive.
        assert_eq!(secret_text(&ns.name, "sops", "token").as_deref(), Some(sample.token.as_str()));
        assert_eq!(secret_text(&ns.name, "plain", "value").as_deref(), Some(in_data.as_str()));
        if write_only {
            assert_eq!(secret_text(&ns.name, "wo", "value").as_deref(), Some(in_wo.as_str()));
        }
        if let Some(keys) = &keys {
            let sealed = live_object("sealedsecret", &ns.name, "sealed").expect("SealedSecret created");
            assert_eq!(keys.unseal(&sealed).get("value"), Some(&in_sealed));
        }

        let mut evidence = Evidence::default();
        evidence.add_output("plan", &plan).add_output("apply", &apply).add_output("refresh plan", &refresh);
        evidence.add_file("TF_LOG trace log", &log);
        assert!(
            evidence.contains("TF_LOG trace log", "provider.terraform-provider-platform"),
            "the trace log has no provider lines: {}",
            crate::harness::tail_file(&log, 20)
        );
        // Output and logs: nothing at all.
        let mut everything = nowhere.clone();
        everything.extend(&state_only);
        evidence.assert_absent(&everything);
        // The state and the saved plan: `data` values only.
        let mut stored = Evidence::default();
        stored.add_state(&work).add_output("show -json tfplan", &plan_json);
        stored.assert_absent(&nowhere);
        // ... which is where `data` values are (so the search does find values that are there).
        assert!(stored.contains("terraform.tfstate", &in_data), "`data` is not in the state file");

        let destroy = work.destroy();
        destroy.assert_success();
        let mut after = Evidence::default();
        after.add_output("destroy", &destroy).add_file("TF_LOG trace log", &log);
        after.assert_absent(&everything);
    });
}
