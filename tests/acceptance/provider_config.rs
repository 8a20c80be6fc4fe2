//! Every way of telling the provider where the cluster is: kubeconfig with a chosen context,
//! host + token + CA, an exec credential plugin, and a client certificate.

use std::process::Command;

use crate::harness::{cluster, for_each_terraform, kubectl, unique_name, Workdir};

fn namespace_exists(name: &str) -> bool {
    let out = kubectl(&["get", "namespace", name, "--ignore-not-found", "-o", "name"]);
    out.assert_success();
    !out.stdout.trim().is_empty()
}

/// A kubeconfig whose current context is broken and whose `good` context works.
fn two_context_kubeconfig() -> String {
    let ca = base64_std(cluster().ca_pem().as_bytes());
    format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: broken\nclusters:\n- name: good\n  cluster:\n    server: {server}\n    certificate-authority-data: {ca}\n- name: broken\n  cluster:\n    server: https://127.0.0.1:1\n    insecure-skip-tls-verify: true\nusers:\n- name: admin\n  user:\n    token: {token}\ncontexts:\n- name: good\n  context: {{cluster: good, user: admin}}\n- name: broken\n  context: {{cluster: broken, user: admin}}\n",
        server = cluster().server(),
        token = cluster().token()
    )
}

fn base64_std(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A client certificate in group system:masters signed by the local cluster's CA.
fn admin_client_certificate(work: &Workdir) -> Option<(String, String)> {
    let pki = cluster().dir()?.join("pki");
    let dir = work.root();
    let key = dir.join("client.key");
    let csr = dir.join("client.csr");
    let crt = dir.join("client.crt");
    // Extensions make it an X.509 v3 certificate; rustls refuses v1.
    let ext = dir.join("client.ext");
    std::fs::write(&ext, "extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n").ok()?;
    let ok = Command::new("openssl")
        .args(["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/O=system:masters/CN=acc-admin"])
        .arg("-keyout").arg(&key).arg("-out").arg(&csr)
        .status()
        .ok()?
        .success()
        && Command::new("openssl")
            .args(["x509", "-req", "-days", "1", "-CAcreateserial"])
            .arg("-in").arg(&csr)
            .arg("-CA").arg(pki.join("ca.crt"))
            .arg("-CAkey").arg(pki.join("ca.key"))
            .arg("-extfile").arg(&ext)
            .arg("-out").arg(&crt)
            .status()
            .ok()?
            .success();
    ok.then(|| (std::fs::read_to_string(crt).unwrap(), std::fs::read_to_string(key).unwrap()))
}

/// An executable credential plugin in `work` that prints the cluster's token as an
/// ExecCredential, after `guard` (shell lines that may `exit` non-zero).
fn credential_plugin(work: &Workdir, guard: &str) -> std::path::PathBuf {
    let exec = work.write_file(
        "credential.sh",
        &format!(
            "#!/bin/sh\n{guard}echo '{{\"apiVersion\":\"client.authentication.k8s.io/v1beta1\",\"kind\":\"ExecCredential\",\"status\":{{\"token\":\"{}\"}}}}'\n",
            cluster().token()
        ),
    );
    Command::new("chmod").arg("+x").arg(&exec).status().unwrap();
    exec
}

#[test]
fn every_connection_method_reaches_the_cluster() {
    for_each_terraform(|tf| {
        let work = Workdir::without_cluster(tf);
        let kubeconfig = work.write_file("two-contexts.kubeconfig", &two_context_kubeconfig());
        let ca = work.write_file("ca.pem", cluster().ca_pem());
        let exec = credential_plugin(&work, "");
        let names: Vec<String> = ["ctx", "token", "exec", "cert"].iter().map(|m| unique_name(&format!("acc-{m}"))).collect();
        let client = admin_client_certificate(&work);
        let (cert_provider, cert_resource) = match &client {
            Some((crt, key)) => {
                work.write_file("client.crt", crt);
                work.write_file("client.key", key);
                (
                    format!(
                        "provider \"platform\" {{\n  alias = \"cert\"\n  kubernetes {{\n    host = \"{}\"\n    cluster_ca_certificate = file(\"{}\")\n    client_certificate = file(\"{}\")\n    client_key = file(\"{}\")\n  }}\n}}\n",
                        cluster().server(),
                        ca.display(),
                        work.root().join("client.crt").display(),
                        work.root().join("client.key").display()
                    ),
                    format!("resource \"platform_namespace\" \"cert\" {{\n  provider = platform.cert\n  name = \"{}\"\n}}\n", names[3]),
                )
            }
            None => (String::new(), String::new()),
        };
        work.write_main_tf(&format!(
            r#"{required}
provider "platform" {{
  alias = "ctx"
  kubernetes {{
    config_path    = "{kubeconfig}"
    config_context = "good"
  }}
}}
provider "platform" {{
  alias = "token"
  kubernetes {{
    host                   = "{server}"
    token                  = "{token}"
    cluster_ca_certificate = file("{ca}")
  }}
}}
provider "platform" {{
  alias = "exec"
  kubernetes {{
    host                   = "{server}"
    cluster_ca_certificate = file("{ca}")
    exec {{
      api_version = "client.authentication.k8s.io/v1beta1"
      command     = "{exec}"
    }}
  }}
}}
{cert_provider}
resource "platform_namespace" "ctx" {{
  provider = platform.ctx
  name     = "{ns0}"
}}
resource "platform_namespace" "token" {{
  provider = platform.token
  name     = "{ns1}"
}}
resource "platform_namespace" "exec" {{
  provider = platform.exec
  name     = "{ns2}"
}}
{cert_resource}
"#,
            required = required_providers!(),
            kubeconfig = kubeconfig.display(),
            server = cluster().server(),
            token = cluster().token(),
            ca = ca.display(),
            exec = exec.display(),
            ns0 = names[0],
            ns1 = names[1],
            ns2 = names[2],
        ));
        work.apply().assert_success();
        let expected = if client.is_some() { 4 } else { 3 };
        for name in &names[..expected] {
            assert!(namespace_exists(name), "{name} was not created");
        }
        work.assert_plan_empty();
        work.destroy().assert_success();
        for name in &names[..expected] {
            assert!(!namespace_exists(name), "{name} survived destroy");
        }
    });
}

#[test]
fn a_context_that_does_not_exist_is_named_in_the_error() {
    for_each_terraform(|tf| {
        let work = Workdir::without_cluster(tf);
        let kubeconfig = work.write_file("k.kubeconfig", &two_context_kubeconfig());
        work.write_main_tf(&format!(
            "{}provider \"platform\" {{\n  kubernetes {{\n    config_path = \"{}\"\n    config_context = \"nope\"\n  }}\n}}\nresource \"platform_namespace\" \"x\" {{ name = \"{}\" }}\n",
            required_providers!(),
            kubeconfig.display(),
            unique_name("acc-noctx")
        ));
        work.apply().assert_failure_contains("nope");
    });
}

/// A provider `kubernetes` block that cannot work is reported once, at the provider, however
/// many resources use it; resources with their own `cluster` are not what fails.
#[test]
fn an_invalid_provider_kubeconfig_is_reported_once() {
    for_each_terraform(|tf| {
        let work = Workdir::without_cluster(tf);
        let kubeconfig = work.write_file("broken.kubeconfig", "apiVersion: v1\nkind: Config\nclusters: [this is not a kubeconfig\n");
        let resources: String = (0..3)
            .map(|i| format!("resource \"platform_namespace\" \"n{i}\" {{ name = \"{}\" }}\n", unique_name("acc-badkc")))
            .collect();
        work.write_main_tf(&format!(
            "{}provider \"platform\" {{\n  kubernetes {{\n    config_path = \"{}\"\n  }}\n}}\n{resources}",
            required_providers!(),
            kubeconfig.display(),
        ));
        let out = work.plan();
        assert!(!out.success(), "{}", out.describe());
        let text = out.combined();
        assert_eq!(text.matches("Invalid Kubernetes connection").count(), 1, "reported once:\n{text}");
        assert!(text.contains("cannot read kubeconfig") && text.contains("broken.kubeconfig"), "{text}");
        assert!(text.contains("provider \"platform\""), "attached to the provider block:\n{text}");
    });
}

/// A resource's own `cluster` reaches the cluster through a kubeconfig file and context, or a
/// credential plugin: no token is written in the configuration or kept in state.
#[test]
fn a_resource_cluster_via_kubeconfig_path_or_credential_plugin_keeps_no_token_in_state() {
    for_each_terraform(|tf| {
        let work = Workdir::without_cluster(tf);
        let kubeconfig = work.write_file("two-contexts.kubeconfig", &two_context_kubeconfig());
        let ca = work.write_file("ca.pem", cluster().ca_pem());
        let exec = credential_plugin(&work, "[ \"$1\" = get-token ] && [ \"$LAB\" = yes ] || exit 3\n");
        let (by_file, by_exec) = (unique_name("acc-cfgpath"), unique_name("acc-execattr"));
        work.write_main_tf(&format!(
            r#"{required}
provider "platform" {{}}
resource "platform_namespace" "file" {{
  name    = "{by_file}"
  cluster = {{ config_path = "{kubeconfig}", context = "good" }}
}}
resource "platform_namespace" "exec" {{
  name    = "{by_exec}"
  cluster = {{
    host                   = "{server}"
    cluster_ca_certificate = file("{ca}")
    exec_command           = "{exec}"
    exec_args              = jsonencode(["get-token"])
    exec_env               = jsonencode({{ LAB = "yes" }})
  }}
}}
"#,
            required = required_providers!(),
            kubeconfig = kubeconfig.display(),
            server = cluster().server(),
            ca = ca.display(),
            exec = exec.display(),
        ));
        work.apply().assert_success();
        assert!(namespace_exists(&by_file) && namespace_exists(&by_exec));
        let state = work.state_json().to_string();
        assert!(!state.contains(cluster().token()), "a token reached the state");
        work.assert_plan_empty();
        work.destroy().assert_success();
        assert!(!namespace_exists(&by_file) && !namespace_exists(&by_exec));
    });
}
