//! `platform_sealed_secrets_certificate` fetching the certificate through the API server's
//! service proxy, as `kubeseal --fetch-cert` does. The Sealed Secrets controller cannot run
//! here: its STAND-IN is a plain HTTP server (python3's http.server) on a node-rig host,
//! serving the test's certificate at `/v1/cert.pem` on the controller's port, behind a
//! selector-less Service and its Endpoints. The API server really proxies to it (it refuses
//! loopback endpoints, hence the rig host), and a `platform_sealed_secret` seals with what
//! came back, which kubesealpy then opens with the test's private key.

use crate::harness::hosts::Hosts;
use crate::harness::kubectl::{kubectl, kubectl_stdin};
use crate::harness::secrets::{
    ensure_sealed_secret_crd, live_object, provider_config, require, sealing_python, SealingKeyPair, TestNamespace,
};
use crate::harness::{for_each_terraform, Workdir};
use crate::stack::folded;

const PORT: u16 = 8080;

/// The stand-in controller: `certificate` served at http://<host>:8080/v1/cert.pem.
pub(crate) fn start_standin(hosts: &Hosts, certificate: &str) {
    let host = hosts.host(0);
    let script = format!(
        "[ -f /run/standin.pid ] && kill $(cat /run/standin.pid) && sleep 0.2; mkdir -p /srv/sealed-secrets/v1 && cat > /srv/sealed-secrets/v1/cert.pem <<'PEM'\n{certificate}PEM\n\
         setsid python3 -m http.server {PORT} --bind 0.0.0.0 --directory /srv/sealed-secrets >/tmp/standin.log 2>&1 < /dev/null & echo $! > /run/standin.pid\n\
         for i in $(seq 50); do python3 -c 'import urllib.request; urllib.request.urlopen(\"http://127.0.0.1:{PORT}/v1/cert.pem\")' 2>/dev/null && exit 0; sleep 0.1; done; cat /tmp/standin.log; exit 1"
    );
    host.ssh(&script).assert_success();
}

/// A selector-less Service `name` in `namespace` whose Endpoints point at the rig host,
/// through a Pod that says it has the host's address: the API server's service proxy only
/// dials endpoint addresses that a Pod of the endpoint's `targetRef` holds. (No kubelet
/// runs here; the Pod's status is written as a kubelet would.)
pub(crate) fn service_to(hosts: &Hosts, namespace: &str, name: &str) {
    let address = hosts.host(0).address();
    let pod = format!("{name}-0");
    let yaml = format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: {pod}, namespace: {namespace}}}
spec:
  containers: [{{name: controller, image: sealed-secrets-controller-stand-in}}]
---
apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  ports: [{{name: http, port: {PORT}, targetPort: {PORT}, protocol: TCP}}]
---
apiVersion: v1
kind: Endpoints
metadata: {{name: {name}, namespace: {namespace}}}
subsets:
- addresses: [{{ip: "{address}", targetRef: {{kind: Pod, name: {pod}, namespace: {namespace}}}}}]
  ports: [{{name: http, port: {PORT}, protocol: TCP}}]
"#
    );
    kubectl_stdin(&["apply", "-f", "-"], &yaml).assert_success();
    let status = format!(r#"{{"status":{{"phase":"Running","podIP":"{address}","podIPs":[{{"ip":"{address}"}}]}}}}"#);
    kubectl(&["patch", "pod", &pod, "-n", namespace, "--subresource=status", "--type=merge", "-p", &status])
        .assert_success();
}

#[test]
fn sealed_secrets_certificate_standin_is_fetched_through_the_service_proxy_and_seals() {
    let python = require(sealing_python());
    ensure_sealed_secret_crd();
    let hosts = Hosts::start(1);
    for_each_terraform(|tf| {
        let mut work = Workdir::new(tf);
        let keys = SealingKeyPair::generate(&python, work.root());
        start_standin(&hosts, &keys.certificate_pem);
        let controller = TestNamespace::create("acc-sealed-ctl");
        let apps = TestNamespace::create("acc-sealed-apps");
        service_to(&hosts, &controller.name, "sealed-secrets-controller");
        work.set_env("TF_VAR_password", "s3cret-for-the-stand-in");
        work.write_main_tf(&format!(
            r#"{provider}
variable "password" {{
  type      = string
  sensitive = true
}}

data "platform_sealed_secrets_certificate" "this" {{
  controller_namespace = "{controller}"
}}

resource "platform_sealed_secret" "db" {{
  namespace   = "{apps}"
  name        = "db"
  certificate = data.platform_sealed_secrets_certificate.this.certificate
  data        = {{ password = var.password }}
}}

output "certificate" {{ value = data.platform_sealed_secrets_certificate.this.certificate }}
output "fingerprint" {{ value = data.platform_sealed_secrets_certificate.this.fingerprint }}
output "not_after" {{ value = data.platform_sealed_secrets_certificate.this.not_after }}
"#,
            provider = provider_config(None),
            controller = controller.name,
            apps = apps.name,
        ));
        work.apply().assert_success();
        let outputs = work.output_json();
        assert_eq!(outputs["certificate"]["value"], keys.certificate_pem.as_str(), "the served certificate, unchanged");
        let fingerprint = outputs["fingerprint"]["value"].as_str().unwrap_or_default();
        assert!(fingerprint.len() == 64 && fingerprint.bytes().all(|b| b.is_ascii_hexdigit()), "{fingerprint:?}");
        assert!(outputs["not_after"]["value"].as_str().is_some_and(|t| t.ends_with('Z')), "{}", outputs["not_after"]);
        let sealed = live_object("sealedsecret", &apps.name, "db").expect("the SealedSecret");
        let opened = keys.unseal_as(&sealed, &apps.name, "db").expect("kubesealpy opens it with the controller's key");
        assert_eq!(opened.get("password").map(String::as_str), Some("s3cret-for-the-stand-in"), "{opened:?}");
        work.assert_plan_empty();

        // No controller where it is looked for: a diagnostic naming the attribute.
        work.write_main_tf(&format!(
            "{}\ndata \"platform_sealed_secrets_certificate\" \"missing\" {{\n  controller_namespace = \"{}\"\n  controller_name      = \"nowhere\"\n}}\n",
            provider_config(None),
            controller.name
        ));
        let out = work.plan();
        assert!(!out.success(), "{}", out.describe());
        let text = folded(&out);
        assert!(text.contains("Sealed Secrets controller not found"), "{text}");
        assert!(text.contains(&format!("{}/nowhere", controller.name)) && text.contains("controller_name"), "{text}");
        work.write_main_tf(&provider_config(None));
        work.destroy().assert_success();
    });
}
