//! The reference examples applied for real: each is installed with the modules (as
//! `reference_platforms` plans it), applied with the newest Terraform against the local
//! control plane, checked for what landed in the cluster (and on the DNS server), planned
//! again (empty), destroyed, and checked for anything of ours left behind. The fourth,
//! k3s-ha-platform, makes its own cluster on the node rig: `reference_platform_k3s`.
//!
//! What cannot run here, and its STAND-INS (named so in every test):
//! - Flux's controllers: the Flux CRDs fixture and the helm-controller stand-in
//!   (`harness::flux_standin`), which reports HelmReleases Ready and creates their target
//!   namespaces (`install.createNamespace`) as helm-controller does. No chart is installed.
//! - Flux's `install.yaml` (a GitHub release asset): a stand-in document served on loopback
//!   (`fixtures/examples/flux-install-standin.yaml`: Flux's namespace, a ServiceAccount, a
//!   ConfigMap; no CRDs, which are the fixture's, and no Deployments, which could never roll
//!   out without a kubelet), passed as `flux_install_url` with its real sha256.
//! - The CRDs the charts would install (MetalLB, cert-manager, Kyverno, Traefik, Tailscale,
//!   Cilium, External Secrets): stand-in CRDs (`harness::chart_crds_standin`), so that the
//!   examples' custom resources (address pools, ClusterIssuer, ClusterPolicies, ...) apply.
//! - The cluster's nodes (`platform_cluster`'s health gate): Node objects registered through
//!   the API whose Ready status the test keeps fresh (`harness::test_nodes`).
//! - The LAN's DNS server (gitops-baseline): BIND 9 on loopback with a TSIG key
//!   (`harness::dns::bind`), zone `acc.test`.
//!
//! The tests share cluster-wide names (the namespace `flux-system`, stack names such as
//! `observability`, the ClusterIssuer `letsencrypt`): they run one at a time ([`EXAMPLES`]).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::flux_standin::{self, CREATED_NAMESPACE_LABEL};
use crate::harness::hosts::Hosts;
use crate::harness::manifests_server::{sha256_hex, ManifestsServer};
use crate::harness::s3::s3;
use crate::harness::secrets::{base64, ensure_sealed_secret_crd, require, sealing_python, SealingKeyPair};
use crate::harness::test_nodes::TestNodes;
use crate::harness::velero_standin::{volsync_path, VeleroStandIn};
use crate::harness::{chart_crds_standin, cluster, dns, fixture, kubectl, newest_terraform, unique_name, Workdir};
use crate::reference_platforms::install_example;
use crate::sealed_secrets_certificate_standin::{service_to, start_standin};
use crate::stack::hcl;

const OWNER: &str = "platform.terraform.io/owner";
const STACK_LABEL: &str = "platform.terraform.io/stack";
const FLUX_NAMESPACE: &str = "flux-system";

/// One example test at a time: they share cluster-wide names.
static EXAMPLES: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> MutexGuard<'static, ()> {
    EXAMPLES.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs its closure when dropped: cleanup that must happen however the test ends.
struct OnDrop<F: FnMut()>(F);

impl<F: FnMut()> Drop for OnDrop<F> {
    fn drop(&mut self) {
        (self.0)()
    }
}

/// When the test fails after its apply, destroys what the example made, so that the next
/// example test (they share stack names and `flux-system`) starts from a clean cluster.
fn destroy_on_failure(work: &Workdir) -> OnDrop<impl FnMut() + '_> {
    OnDrop(move || {
        if std::thread::panicking() {
            eprintln!("acceptance: the test failed: destroying what the example made");
            let _ = work.destroy();
        }
    })
}

/// What every example test starts with: the Flux stand-in, the stand-in chart CRDs, the
/// stand-in Flux install document on loopback, and `nodes` Ready nodes of its own.
struct Rig {
    nodes: TestNodes,
    manifests: ManifestsServer,
    flux_install_url: String,
    flux_install_sha256: String,
}

impl Rig {
    fn start(nodes: usize) -> Rig {
        flux_standin::ensure();
        chart_crds_standin::ensure();
        // A namespace of an earlier example still being deleted would refuse the new one.
        cluster().wait_gone(&format!("/api/v1/namespaces/{FLUX_NAMESPACE}"), Duration::from_secs(120));
        let test_nodes = TestNodes::new();
        for i in 0..nodes {
            test_nodes.add(if i == 0 { &["control-plane"] } else { &["worker"] }, true);
        }
        let manifests = ManifestsServer::start();
        let install = fixture("examples/flux-install-standin.yaml");
        let flux_install_url = manifests.put("flux/install.yaml", &install);
        Rig { nodes: test_nodes, manifests, flux_install_url, flux_install_sha256: sha256_hex(&install) }
    }

    /// The variables every example takes for its cluster and Flux.
    fn common_variables(&self, min_nodes: usize) -> String {
        format!(
            "kubeconfig_path = {}\nmin_nodes = {min_nodes}\nnode_selector = {}\nflux_install_url = {}\nflux_install_sha256 = {}\n",
            hcl(cluster().kubeconfig_path().to_str().unwrap()),
            hcl(&self.nodes.selector()),
            hcl(&self.flux_install_url),
            hcl(&self.flux_install_sha256),
        )
    }
}

/// Every resource of the state (root and modules), as `(address, type, values)`.
fn resources(state: &Value) -> Vec<(String, String, Value)> {
    fn walk(module: &Value, out: &mut Vec<(String, String, Value)>) {
        for r in module["resources"].as_array().into_iter().flatten() {
            if r["mode"] == "managed" {
                let address = r["address"].as_str().unwrap_or_default().to_string();
                out.push((address, r["type"].as_str().unwrap_or_default().to_string(), r["values"].clone()));
            }
        }
        for child in module["child_modules"].as_array().into_iter().flatten() {
            walk(child, out);
        }
    }
    let mut out = Vec::new();
    walk(&state["values"]["root_module"], &mut out);
    out
}

/// What the apply wrote to the cluster, from the state: stack names, owner ids, kinds.
#[derive(Debug, Default)]
struct Written {
    stacks: BTreeSet<String>,
    owners: BTreeSet<String>,
    /// `(apiVersion, kind)` of every object of the stacks' inventories, and Secrets.
    kinds: BTreeSet<(String, String)>,
    /// Inventory entries by stack.
    inventories: BTreeMap<String, BTreeMap<String, String>>,
    /// Target namespaces of the stacks' HelmReleases.
    release_namespaces: BTreeSet<String>,
}

/// Applies the example installed in `work` and returns what it wrote (the apply's time goes
/// to the test's log).
fn apply_example(work: &Workdir, example: &str) -> Written {
    let started = Instant::now();
    work.apply().assert_success();
    let applied = started.elapsed();
    let w = written(work);
    eprintln!("acceptance: {example} applied in {applied:.1?}: stacks {:?}", w.stacks);
    w
}

fn written(work: &Workdir) -> Written {
    let mut w = Written::default();
    w.kinds.insert(("v1".into(), "Secret".into()));
    w.kinds.insert(("v1".into(), "Namespace".into()));
    for (_, kind, values) in resources(&work.show_json()) {
        // The objects of the other resources: their owner ids, read from the live objects.
        let (namespace, name) =
            (values["namespace"].as_str().unwrap_or_default(), values["name"].as_str().unwrap_or_default());
        let object_path = match kind.as_str() {
            "platform_secret" => Some((("v1", "Secret"), format!("/api/v1/namespaces/{namespace}/secrets/{name}"))),
            "platform_namespace" => Some((("v1", "Namespace"), format!("/api/v1/namespaces/{name}"))),
            "platform_sealed_secret" => Some((
                ("bitnami.com/v1alpha1", "SealedSecret"),
                format!("/apis/bitnami.com/v1alpha1/namespaces/{namespace}/sealedsecrets/{name}"),
            )),
            _ => None,
        };
        if let Some(((api_version, object_kind), path)) = object_path {
            let object = live(&path);
            let owner =
                object["metadata"]["annotations"][OWNER].as_str().unwrap_or_else(|| panic!("{path} has no owner id"));
            w.owners.insert(owner.to_string());
            w.kinds.insert((api_version.to_string(), object_kind.to_string()));
        }
        if kind != "platform_stack" {
            continue;
        }
        let name = values["name"].as_str().expect("stack name").to_string();
        w.owners.insert(values["id"].as_str().expect("stack id").to_string());
        let objects: BTreeMap<String, String> = serde_json::from_value(values["objects"].clone()).unwrap_or_default();
        for key in objects.keys() {
            // `component: apiVersion Kind namespace/name`
            let mut words = key.split_whitespace().skip(1);
            if let (Some(api_version), Some(kind)) = (words.next(), words.next()) {
                w.kinds.insert((api_version.to_string(), kind.to_string()));
            }
        }
        w.inventories.insert(name.clone(), objects);
        w.stacks.insert(name);
    }
    for release in list_kind("helm.toolkit.fluxcd.io/v2", "HelmRelease") {
        if w.stacks.contains(release["metadata"]["labels"][STACK_LABEL].as_str().unwrap_or_default()) {
            if let Some(target) = release["spec"]["targetNamespace"].as_str() {
                w.release_namespaces.insert(target.to_string());
            }
        }
    }
    w
}

/// Every live object of a kind, across namespaces (`kubectl get`, which knows the plural).
fn list_kind(api_version: &str, kind: &str) -> Vec<Value> {
    let resource = match api_version.split_once('/') {
        Some((group, version)) => format!("{kind}.{version}.{group}"),
        None => kind.to_string(),
    };
    let out = kubectl(&["get", &resource, "--all-namespaces", "-o", "json"]);
    // A kind no longer served (its CRD deleted with the stack) has no objects left.
    if !out.success()
        && (out.stderr.contains("could not find the requested resource")
            || out.stderr.contains("doesn't have a resource type"))
    {
        return Vec::new();
    }
    out.assert_success();
    out.json()["items"].as_array().cloned().unwrap_or_default()
}

/// Objects of the written kinds carrying one of the stacks' labels or owner ids.
fn ours_in_cluster(w: &Written) -> Vec<String> {
    let mut found = Vec::new();
    for (api_version, kind) in &w.kinds {
        for object in list_kind(api_version, kind) {
            let meta = &object["metadata"];
            let stack = meta["labels"][STACK_LABEL].as_str().unwrap_or_default();
            let owner = meta["annotations"][OWNER].as_str().unwrap_or_default();
            if w.stacks.contains(stack) || w.owners.contains(owner) {
                let place = meta["namespace"].as_str().map(|ns| format!("{ns}/")).unwrap_or_default();
                found.push(format!("{api_version} {kind} {place}{} (stack {stack:?}, owner {owner:?})", meta["name"]));
            }
        }
    }
    found
}

#[track_caller]
fn live(path: &str) -> Value {
    cluster().get_json(path).unwrap_or_else(|| panic!("{path} does not exist"))
}

#[track_caller]
fn ready_release(name: &str) -> Value {
    let release = flux_standin::helm_release(FLUX_NAMESPACE, name)
        .unwrap_or_else(|| panic!("no HelmRelease {FLUX_NAMESPACE}/{name}"));
    assert!(flux_standin::is_ready(&release), "HelmRelease {name} not Ready: {}", release["status"]);
    release
}

#[track_caller]
fn assert_owned_by(object: &Value, stack: &str, w: &Written) {
    let meta = &object["metadata"];
    let what = format!("{} {}", object["kind"], meta["name"]);
    assert_eq!(meta["labels"][STACK_LABEL], stack, "{what}: labels {}", meta["labels"]);
    let owner = meta["annotations"][OWNER].as_str().unwrap_or_default();
    assert!(w.owners.contains(owner), "{what}: owner {owner:?} is none of the stacks' {:?}", w.owners);
}

/// `terraform output -json` values by name.
fn outputs(work: &Workdir) -> Value {
    let mut values = serde_json::Map::new();
    for (name, output) in work.output_json().as_object().unwrap() {
        values.insert(name.clone(), output["value"].clone());
    }
    Value::Object(values)
}

/// Destroys, then checks that nothing of ours is left (stack labels, owner ids, Flux's
/// namespace) and removes the namespaces the helm-controller stand-in made for the releases
/// (helm-controller leaves them too; they carry nothing of ours).
#[track_caller]
fn destroy_and_check_nothing_left(work: &Workdir, w: &Written) {
    work.destroy().assert_success();
    let state = work.run(&["state", "list"]);
    assert!(state.stdout.trim().is_empty(), "state after destroy:\n{}", state.stdout);
    let left = ours_in_cluster(w);
    assert!(left.is_empty(), "left behind after destroy:\n{}", left.join("\n"));
    // Flux's namespace was the gitops stack's: deleted with it, not merely marked.
    cluster().wait_gone(&format!("/api/v1/namespaces/{FLUX_NAMESPACE}"), Duration::from_secs(120));
    for namespace in &w.release_namespaces {
        let labelled = cluster()
            .get_json(&format!("/api/v1/namespaces/{namespace}"))
            .is_some_and(|ns| ns["metadata"]["labels"][CREATED_NAMESPACE_LABEL] == "helm-controller-standin");
        if labelled {
            kubectl(&["delete", "namespace", namespace, "--wait=false", "--ignore-not-found"]).assert_success();
        }
    }
}

/// examples/gitops-baseline: Flux, ingress-nginx behind MetalLB, Sealed Secrets and Vault,
/// cert-manager with an RFC 2136 ClusterIssuer, the observability charts, Kyverno with its
/// baseline policies, and the platform's DNS records on the LAN's DNS server (BIND here),
/// on 3 stand-in nodes. Stand-ins: see the module's doc.
#[test]
fn gitops_baseline_applies_with_standins_plans_empty_and_destroys_clean() {
    let _one = one_at_a_time();
    let started = Instant::now();
    let rig = Rig::start(3);
    let bind = dns::bind();
    let zone = bind.zone();
    let ingress_address = "127.0.0.240";
    for name in ["grafana", "vault"] {
        assert!(bind.dig(name, "A").is_empty(), "{name}.{zone} exists before the apply");
    }

    let tf = newest_terraform();
    let mut work = Workdir::new(&tf);
    install_example(&work, "gitops-baseline");
    work.write_file(
        "test.auto.tfvars",
        &format!(
            "{}address_pool = [\"127.0.0.240-127.0.0.250\"]\ningress_address = {}\nzone = {}\ndns_server = {}\n\
             tsig_key_name = {}\nacme_email = \"ops@example.com\"\n",
            rig.common_variables(3),
            hcl(ingress_address),
            hcl(zone),
            hcl(&bind.address()),
            hcl(bind.tsig_key_name()),
        ),
    );
    let grafana_password = "grafana-s3cret-standin";
    work.set_env("TF_VAR_tsig_key_secret", bind.tsig_secret());
    work.set_env("TF_VAR_grafana_admin_password", grafana_password);

    let _cleanup = destroy_on_failure(&work);
    let w = apply_example(&work, "gitops-baseline");
    let expected_stacks = [
        "gitops",
        "ingress-controllers",
        "secrets-controllers",
        "certificates-controllers",
        "certificates-issuers",
        "observability",
        "policy-controllers",
        "policy-baseline",
    ];
    assert_eq!(w.stacks, expected_stacks.iter().map(|s| s.to_string()).collect(), "stacks in the state");
    assert!(rig.manifests.hits("flux/install.yaml") > 0, "the stand-in install.yaml was not downloaded");

    // gitops: the stand-in install document, Flux's namespace owned by the stack.
    assert_owned_by(&live(&format!("/api/v1/namespaces/{FLUX_NAMESPACE}")), "gitops", &w);
    let note = live(&format!("/api/v1/namespaces/{FLUX_NAMESPACE}/configmaps/flux-install-standin"));
    assert_owned_by(&note, "gitops", &w);

    // ingress: MetalLB, then its pool (stand-in CRDs), then ingress-nginx with the address.
    ready_release("ingress-controllers-metallb");
    let pool = live("/apis/metallb.io/v1beta1/namespaces/metallb-system/ipaddresspools/ingress");
    assert_eq!(pool["spec"]["addresses"], json!(["127.0.0.240-127.0.0.250"]));
    assert_owned_by(&pool, "ingress-controllers", &w);
    let l2 = live("/apis/metallb.io/v1beta1/namespaces/metallb-system/l2advertisements/ingress");
    assert_eq!(l2["spec"]["ipAddressPools"], json!(["ingress"]));
    let nginx = ready_release("ingress-controllers-ingress-nginx");
    assert_eq!(nginx["spec"]["targetNamespace"], "ingress-nginx");
    assert_eq!(nginx["spec"]["values"]["controller"]["service"]["loadBalancerIP"], ingress_address);
    // The pool before the controller (a level of the stack's order, not a Flux dependsOn).
    let created = |o: &Value| o["metadata"]["creationTimestamp"].as_str().unwrap_or_default().to_string();
    assert!(created(&nginx) >= created(&pool), "ingress-nginx's release was made before the address pool");

    // secrets: Sealed Secrets in kube-system (as kubeseal expects) and Vault.
    assert_eq!(ready_release("secrets-controllers-sealed-secrets")["spec"]["targetNamespace"], "kube-system");
    let vault = ready_release("secrets-controllers-vault");
    assert_eq!(vault["spec"]["targetNamespace"], "vault");
    assert_eq!(vault["spec"]["chart"]["spec"]["chart"], "vault");
    assert!(cluster().exists("/api/v1/namespaces/vault"), "the stand-in did not create Vault's namespace");

    // certificates: the TSIG secret beside cert-manager, the RFC 2136 ClusterIssuer.
    ready_release("certificates-controllers-cert-manager");
    let tsig = live("/api/v1/namespaces/cert-manager/secrets/certificates-rfc2136");
    assert!(w.owners.contains(tsig["metadata"]["annotations"][OWNER].as_str().unwrap_or_default()));
    assert_eq!(tsig["data"]["tsig-secret"], base64(bind.tsig_secret().as_bytes()));
    let issuer = live("/apis/cert-manager.io/v1/clusterissuers/letsencrypt");
    assert_owned_by(&issuer, "certificates-issuers", &w);
    let solver = &issuer["spec"]["acme"]["solvers"][0];
    assert_eq!(
        solver["dns01"]["rfc2136"],
        json!({
            "nameserver": bind.address(), "tsigKeyName": bind.tsig_key_name(), "tsigAlgorithm": "HMACSHA256",
            "tsigSecretSecretRef": {"name": "certificates-rfc2136", "key": "tsig-secret"},
        })
    );
    assert_eq!(solver["selector"]["dnsZones"], json!([zone]));
    assert_eq!(issuer["spec"]["acme"]["email"], "ops@example.com");

    // observability: the charts, Grafana behind the ingress with the issuer, its password
    // only in the values Secret.
    let prometheus = ready_release("observability-kube-prometheus-stack");
    let grafana = &prometheus["spec"]["values"]["grafana"];
    assert_eq!(grafana["ingress"]["hosts"], json!([format!("grafana.{zone}")]));
    assert_eq!(grafana["ingress"]["ingressClassName"], "nginx");
    assert_eq!(grafana["ingress"]["annotations"]["cert-manager.io/cluster-issuer"], "letsencrypt");
    assert!(!prometheus.to_string().contains(grafana_password), "Grafana's password in the HelmRelease");
    let values =
        live(&format!("/api/v1/namespaces/{FLUX_NAMESPACE}/secrets/observability.kube-prometheus-stack.helm-values"));
    assert_eq!(values["data"]["grafana.adminPassword"], base64(grafana_password.as_bytes()));
    for release in ["observability-loki", "observability-promtail", "observability-opentelemetry-operator"] {
        ready_release(release);
    }

    // policy: Kyverno and its baseline ClusterPolicies (stand-in CRD), in Audit.
    ready_release("policy-controllers-kyverno");
    for policy in ["baseline-no-privileged-containers", "baseline-no-host-namespaces", "baseline-run-as-non-root"] {
        let live_policy = live(&format!("/apis/kyverno.io/v1/clusterpolicies/{policy}"));
        assert_owned_by(&live_policy, "policy-baseline", &w);
        assert_eq!(live_policy["spec"]["rules"][0]["validate"]["failureAction"], "Audit", "{policy}");
    }

    // dns: the records, asked of the DNS server itself.
    for name in ["grafana", "vault"] {
        assert_eq!(bind.dig(name, "A"), vec![ingress_address.to_string()], "{name}.{zone}");
    }
    let out = outputs(&work);
    assert_eq!(out["ingress_class"], "nginx");
    assert_eq!(out["grafana_url"], format!("https://grafana.{zone}"));
    assert_eq!(out["policy_engine"], "kyverno");
    assert_eq!(out["dns_names"], json!({"grafana": format!("grafana.{zone}"), "vault": format!("vault.{zone}")}));

    work.assert_plan_empty();

    destroy_and_check_nothing_left(&work, &w);
    for name in ["grafana", "vault"] {
        assert!(bind.dig(name, "A").is_empty(), "{name}.{zone} left on the DNS server");
    }
    eprintln!("acceptance: gitops-baseline applied, checked and destroyed in {:.1?}", started.elapsed());
}

/// examples/flux-homelab: Flux's chain infra-controllers → infra-configs → apps as stacks,
/// their Helm repositories declared once, Traefik, cert-manager, Tailscale, MinIO, the
/// observability charts, and Open WebUI's secret sealed with the certificate of the Sealed
/// Secrets controller installed in the same apply. Besides the common stand-ins: the Sealed
/// Secrets controller's certificate endpoint is the STAND-IN of
/// `sealed_secrets_certificate_standin` (python's http.server on a node-rig host, behind
/// kube-system/sealed-secrets-controller, its Endpoints and a Pod that says it has the host's
/// address), serving the certificate of a key pair the test holds, so that the test can open
/// what `platform_sealed_secret` sealed.
#[test]
fn flux_homelab_applies_with_standins_plans_empty_and_destroys_clean() {
    let _one = one_at_a_time();
    let started = Instant::now();
    let python = require(sealing_python());
    ensure_sealed_secret_crd();
    let rig = Rig::start(1);
    let hosts = Hosts::start(1);

    let tf = newest_terraform();
    let mut work = Workdir::new(&tf);
    let keys = SealingKeyPair::generate(&python, work.root());
    // What the sealed-secrets chart would run: its controller's Service, serving the certificate.
    start_standin(&hosts, &keys.certificate_pem);
    service_to(&hosts, "kube-system", "sealed-secrets-controller");
    // The stand-in controller's Service, Endpoints and Pod (not the example's) go at the end.
    let _standin = OnDrop(|| {
        let _ = kubectl(&[
            "delete",
            "-n",
            "kube-system",
            "service/sealed-secrets-controller",
            "endpoints/sealed-secrets-controller",
            "pod/sealed-secrets-controller-0",
            "--ignore-not-found",
            "--wait=false",
        ]);
    });

    install_example(&work, "flux-homelab");
    work.write_file("test.auto.tfvars", &format!("{}acme_email = \"ops@example.com\"\n", rig.common_variables(1)));
    let secrets = [
        ("tailscale_oauth_client_id", "ts-client-standin"),
        ("tailscale_oauth_client_secret", "ts-s3cret-standin"),
        ("minio_root_password", "minio-s3cret-standin"),
        ("grafana_admin_password", "grafana-s3cret-standin"),
        ("webui_secret_key", "webui-s3cret-standin"),
    ];
    for (name, value) in secrets {
        work.set_env(&format!("TF_VAR_{name}"), value);
    }

    let _cleanup = destroy_on_failure(&work);
    let w = apply_example(&work, "flux-homelab");
    let out = outputs(&work);
    assert_eq!(out["stacks"], json!(["gitops", "infra-controllers", "infra-configs", "observability", "apps"]));
    let expected: BTreeSet<String> = ["gitops", "infra-controllers", "infra-configs", "observability", "apps"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(w.stacks, expected, "stacks in the state");

    // infra-controllers: five repositories declared once, which every release points at.
    let repositories: Vec<Value> = list_kind("source.toolkit.fluxcd.io/v1", "HelmRepository")
        .into_iter()
        .filter(|r| r["metadata"]["labels"][STACK_LABEL] == "infra-controllers")
        .collect();
    let mut names: Vec<&str> = repositories.iter().filter_map(|r| r["metadata"]["name"].as_str()).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "infra-controllers-repo-jetstack",
            "infra-controllers-repo-minio",
            "infra-controllers-repo-sealed-secrets",
            "infra-controllers-repo-tailscale",
            "infra-controllers-repo-traefik"
        ]
    );
    for (component, repository, target) in [
        ("sealed-secrets", "sealed-secrets", "kube-system"),
        ("cert-manager", "jetstack", "cert-manager"),
        ("traefik", "traefik", "traefik"),
        ("tailscale-operator", "tailscale", "tailscale"),
        ("minio", "minio", "minio"),
    ] {
        let release = ready_release(&format!("infra-controllers-{component}"));
        assert_eq!(
            release["spec"]["chart"]["spec"]["sourceRef"]["name"],
            format!("infra-controllers-repo-{repository}")
        );
        assert_eq!(release["spec"]["targetNamespace"], target, "{component}");
        assert_owned_by(&release, "infra-controllers", &w);
    }
    let sealed_secrets = ready_release("infra-controllers-sealed-secrets");
    assert_eq!(sealed_secrets["spec"]["releaseName"], "sealed-secrets-controller");
    // The sensitive values reach the charts through Secrets, not the releases.
    let tailscale =
        live(&format!("/api/v1/namespaces/{FLUX_NAMESPACE}/secrets/infra-controllers.tailscale-operator.helm-values"));
    assert_eq!(tailscale["data"]["oauth.clientSecret"], base64(b"ts-s3cret-standin"));
    let minio = live(&format!("/api/v1/namespaces/{FLUX_NAMESPACE}/secrets/infra-controllers.minio.helm-values"));
    assert_eq!(minio["data"]["rootPassword"], base64(b"minio-s3cret-standin"));
    assert!(!ready_release("infra-controllers-minio").to_string().contains("minio-s3cret-standin"));

    // infra-configs: the controllers' custom resources (stand-in CRDs).
    let issuer = live("/apis/cert-manager.io/v1/clusterissuers/letsencrypt");
    assert_owned_by(&issuer, "infra-configs", &w);
    assert_eq!(issuer["spec"]["acme"]["solvers"][0]["http01"]["ingress"]["ingressClassName"], "traefik");
    let tls = live("/apis/traefik.io/v1alpha1/namespaces/traefik/tlsoptions/default");
    assert_owned_by(&tls, "infra-configs", &w);
    assert_eq!(tls["spec"]["minVersion"], "VersionTLS12");
    assert_owned_by(&live("/apis/tailscale.com/v1alpha1/proxyclasses/ts-default-proxy-class"), "infra-configs", &w);

    // The sealed secret: sealed with the certificate the stand-in controller served.
    let fingerprint = out["sealed_secrets_fingerprint"].as_str().unwrap_or_default();
    assert!(fingerprint.len() == 64 && fingerprint.bytes().all(|b| b.is_ascii_hexdigit()), "{fingerprint:?}");
    let sealed = live("/apis/bitnami.com/v1alpha1/namespaces/ai/sealedsecrets/open-webui");
    let opened = keys.unseal_as(&sealed, "ai", "open-webui").expect("the controller's key opens it");
    assert_eq!(opened.get("WEBUI_SECRET_KEY").map(String::as_str), Some("webui-s3cret-standin"));

    // apps: after infra-configs (the chain), Open WebUI after Ollama, reading the secret.
    let ollama = ready_release("apps-ollama");
    assert_eq!(ollama["spec"]["targetNamespace"], "ai");
    let created = |o: &Value| o["metadata"]["creationTimestamp"].as_str().unwrap_or_default().to_string();
    assert!(created(&ollama) >= created(&issuer), "apps was applied before infra-configs");
    let webui = ready_release("apps-open-webui");
    assert_eq!(webui["spec"]["dependsOn"], json!([{"name": "apps-ollama", "namespace": FLUX_NAMESPACE}]));
    assert_eq!(webui["spec"]["values"]["extraEnvFrom"], json!([{"secretRef": {"name": "open-webui"}}]));

    // observability, beside the chain.
    let prometheus = ready_release("observability-kube-prometheus-stack");
    assert_eq!(prometheus["spec"]["values"]["grafana"]["ingress"]["ingressClassName"], "traefik");
    for release in
        ["observability-loki", "observability-promtail", "observability-tempo", "observability-opentelemetry-operator"]
    {
        ready_release(release);
    }
    assert_eq!(out["grafana_url"], "https://grafana.elysium.example.com");

    work.assert_plan_empty();

    destroy_and_check_nothing_left(&work, &w);
    eprintln!("acceptance: flux-homelab applied, checked and destroyed in {:.1?}", started.elapsed());
}

/// examples/talos-homelab: the Talos cluster adopted as it is (3 stand-in nodes), Flux,
/// Gateway API CRDs from a pinned URL with Cilium's LB IP pool, L2 announcements and two
/// Gateways, Spegel and k8s-gateway, Rook-Ceph, VolSync, KEDA, cert-manager with Cloudflare
/// DNS-01, External Secrets with a ClusterSecretStore for the external Vault, the
/// observability charts, and a volume backed up by VolSync with restic. Besides the common
/// stand-ins: Gateway API's standard-install.yaml is a STAND-IN served on loopback
/// (`fixtures/examples/gateway-api-standard-install-standin.yaml`: the GatewayClass, Gateway
/// and HTTPRoute CRDs, any content); Cilium's CRDs are stand-in chart CRDs (Talos installs
/// Cilium with the cluster); VolSync is the VolSync STAND-IN of `harness::velero_standin`
/// watching the namespace `home`, which backs the claim up with real restic into SeaweedFS
/// (`harness::s3`) as VolSync's mover would. Cloudflare and the Vault are only named in the
/// ClusterIssuer and the ClusterSecretStore (no controller runs to contact them): loopback
/// addresses nothing listens on.
#[test]
fn talos_homelab_applies_with_standins_plans_empty_and_destroys_clean() {
    let _one = one_at_a_time();
    let started = Instant::now();
    let rig = Rig::start(3);
    let gateway_api = fixture("examples/gateway-api-standard-install-standin.yaml");
    let gateway_api_url = rig.manifests.put("gateway-api/standard-install.yaml", &gateway_api);
    let volsync = VeleroStandIn::start("home");
    std::fs::write(volsync.volume_dir("home-assistant-config").join("configuration.yaml"), "homeassistant:\n").unwrap();
    let bucket = unique_name("talos-volsync");
    s3().create_bucket(&bucket);
    let repository = s3().repository(&bucket, "home-assistant");
    let restic_password = "restic-s3cret-standin";

    let tf = newest_terraform();
    let mut work = Workdir::new(&tf);
    install_example(&work, "talos-homelab");
    work.write_file(
        "test.auto.tfvars",
        &format!(
            "{}kube_context = null\ngateway_api_crds_url = {}\ngateway_api_crds_sha256 = {}\nacme_email = \"ops@example.com\"\n\
             vault_address = \"http://127.0.0.1:1\"\nrestic_repository = {}\nrestic_access_key_id = {}\n",
            rig.common_variables(3),
            hcl(&gateway_api_url),
            hcl(&sha256_hex(&gateway_api)),
            hcl(&repository),
            hcl(s3().access_key()),
        ),
    );
    for (name, value) in [
        ("cloudflare_api_token", "cf-token-standin"),
        ("vault_token", "vault-token-standin"),
        ("grafana_admin_password", "grafana-s3cret-standin"),
        ("restic_password", restic_password),
        ("restic_secret_access_key", s3().secret_key()),
    ] {
        work.set_env(&format!("TF_VAR_{name}"), value);
    }

    let _cleanup = destroy_on_failure(&work);
    let w = apply_example(&work, "talos-homelab");
    let expected: BTreeSet<String> = [
        "gitops",
        "homelab-network",
        "homelab-storage",
        "homelab-apps",
        "certificates-controllers",
        "certificates-issuers",
        "secrets-controllers",
        "secrets-stores",
        "observability",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(w.stacks, expected, "stacks in the state");
    let out = outputs(&work);
    assert_eq!(out["cluster_issuer"], "letsencrypt");
    assert_eq!(out["secret_store"], "vault");
    assert_eq!(out["nodes"].as_object().map(|n| n.len()), Some(3), "{}", out["nodes"]);

    // network: Gateway API from the pinned URL, Cilium's pool and policy, the Gateways.
    assert!(rig.manifests.hits("gateway-api/standard-install.yaml") > 0);
    for crd in ["gatewayclasses", "gateways", "httproutes"] {
        let live_crd =
            live(&format!("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{crd}.gateway.networking.k8s.io"));
        assert_owned_by(&live_crd, "homelab-network", &w);
    }
    let pool = live("/apis/cilium.io/v2alpha1/ciliumloadbalancerippools/lan");
    assert_owned_by(&pool, "homelab-network", &w);
    assert_eq!(pool["spec"]["blocks"], json!([{"start": "10.11.80.80", "stop": "10.11.80.99"}]));
    assert_eq!(live("/apis/cilium.io/v2alpha1/ciliuml2announcementpolicies/lan")["spec"]["loadBalancerIPs"], true);
    for (gateway, address) in [("external", "10.11.80.80"), ("internal", "10.11.80.81")] {
        let live_gateway =
            live(&format!("/apis/gateway.networking.k8s.io/v1/namespaces/kube-system/gateways/{gateway}"));
        assert_owned_by(&live_gateway, "homelab-network", &w);
        assert_eq!(live_gateway["metadata"]["annotations"]["cert-manager.io/cluster-issuer"], "letsencrypt");
        assert_eq!(live_gateway["spec"]["addresses"], json!([{"type": "IPAddress", "value": address}]));
        assert_eq!(live_gateway["spec"]["gatewayClassName"], "cilium");
    }
    assert_eq!(ready_release("homelab-network-spegel")["spec"]["targetNamespace"], "kube-system");
    let k8s_gateway = ready_release("homelab-network-k8s-gateway");
    assert_eq!(k8s_gateway["spec"]["values"]["domain"], "home.example.com");

    // storage: Rook-Ceph's cluster after its operator (Flux dependsOn), VolSync, KEDA.
    let ceph = ready_release("homelab-storage-rook-ceph-cluster");
    assert_eq!(ceph["spec"]["dependsOn"], json!([{"name": "homelab-storage-rook-ceph", "namespace": FLUX_NAMESPACE}]));
    assert_eq!(ceph["spec"]["values"]["cephClusterSpec"]["mon"]["count"], 3);
    assert_eq!(ready_release("homelab-storage-volsync")["spec"]["targetNamespace"], "volsync-system");
    ready_release("homelab-storage-keda");

    // certificates: the Cloudflare token beside cert-manager, the DNS-01 ClusterIssuer.
    let token = live("/api/v1/namespaces/cert-manager/secrets/certificates-cloudflare");
    assert_eq!(token["data"]["api-token"], base64(b"cf-token-standin"));
    let issuer = live("/apis/cert-manager.io/v1/clusterissuers/letsencrypt");
    assert_owned_by(&issuer, "certificates-issuers", &w);
    let solver = &issuer["spec"]["acme"]["solvers"][0];
    assert_eq!(
        solver["dns01"]["cloudflare"]["apiTokenSecretRef"],
        json!({"name": "certificates-cloudflare", "key": "api-token"})
    );
    assert_eq!(solver["selector"]["dnsZones"], json!(["home.example.com"]));

    // secrets: External Secrets, the Vault token, the ClusterSecretStore.
    assert_eq!(ready_release("secrets-controllers-external-secrets")["spec"]["targetNamespace"], "external-secrets");
    let vault_token = live("/api/v1/namespaces/external-secrets/secrets/vault-token");
    assert_eq!(vault_token["data"]["token"], base64(b"vault-token-standin"));
    let store = live("/apis/external-secrets.io/v1/clustersecretstores/vault");
    assert_owned_by(&store, "secrets-stores", &w);
    assert_eq!(store["spec"]["provider"]["vault"]["server"], "http://127.0.0.1:1");
    assert_eq!(store["spec"]["provider"]["vault"]["auth"]["tokenSecretRef"]["name"], "vault-token");

    // observability.
    for release in ["observability-kube-prometheus-stack", "observability-loki", "observability-promtail"] {
        ready_release(release);
    }

    // home: the claim, and its ReplicationSource backing it up nightly with restic.
    assert_owned_by(&live("/api/v1/namespaces/home/persistentvolumeclaims/home-assistant-config"), "homelab-apps", &w);
    let source = live(&volsync_path("home", "replicationsources", "home-assistant-config"));
    assert_eq!(source["spec"]["sourcePVC"], "home-assistant-config");
    assert_eq!(source["spec"]["trigger"]["schedule"], "0 3 * * *");
    assert_eq!(source["spec"]["restic"]["copyMethod"], "Snapshot");
    assert_eq!(source["spec"]["restic"]["retain"], json!({"daily": 7, "weekly": 4}));
    let repository_secret = source["spec"]["restic"]["repository"].as_str().expect("the repository Secret").to_string();
    let secret = live(&format!("/api/v1/namespaces/home/secrets/{repository_secret}"));
    assert_eq!(secret["data"]["RESTIC_REPOSITORY"], base64(repository.as_bytes()));
    assert_eq!(secret["data"]["RESTIC_PASSWORD"], base64(restic_password.as_bytes()));
    // The VolSync stand-in synchronises once at first sight: a real restic snapshot.
    crate::harness::wait_until("the VolSync stand-in's first sync", Duration::from_secs(120), || {
        let events = volsync.events_for("ReplicationSource", "home-assistant-config");
        if events.iter().any(|e| e.starts_with("Synced")) {
            Ok(())
        } else {
            Err(format!("{events:?}"))
        }
    });
    let snapshots = s3().restic(&bucket, "home-assistant", restic_password, &["snapshots", "--json"]);
    assert_eq!(snapshots.assert_success().json().as_array().map(Vec::len), Some(1), "{}", snapshots.stdout);

    work.assert_plan_empty();

    destroy_and_check_nothing_left(&work, &w);
    assert!(
        cluster().get_json(&volsync_path("home", "replicationsources", "home-assistant-config")).is_none(),
        "the ReplicationSource is left"
    );
    eprintln!("acceptance: talos-homelab applied, checked and destroyed in {:.1?}", started.elapsed());
}
