//! STAND-INS for the CRDs that Helm charts would install. The helm-controller stand-in
//! (`flux_standin`) installs no chart, so the kinds whose custom resources the reference
//! examples' stacks apply (MetalLB's address pools, cert-manager's ClusterIssuer, Kyverno's
//! ClusterPolicy, Traefik's TLSOption, Tailscale's ProxyClass, Cilium's LB IP pools and L2
//! announcement policies, External Secrets' ClusterSecretStore, Gatekeeper's
//! ConstraintTemplate) would not exist. The fixtures `fixtures/chart-crds-standin/*.yaml`
//! define them with their real group, version, kind and scope and a schema that takes any
//! content; [`ensure`] applies them once per test binary with a field manager of their own
//! ([`FIELD_MANAGER`]) and waits until they are served. Nothing deletes them: they are
//! cluster-wide and other tests may use them. A cluster that starts without them (a k3s stand-in's) gets them from the helm-controller
//! stand-in when it "installs" the chart ([`for_chart`]), as Helm applies a chart's CRDs.

use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use super::{cluster, kubectl, kubectl_stdin, wait_until};

/// The field manager the stand-in CRDs are applied with.
pub const FIELD_MANAGER: &str = "acceptance-chart-crds-standin";

/// The fixture files (`fixtures/chart-crds-standin/<chart>.yaml`).
const CHARTS: [&str; 8] =
    ["metallb", "cert-manager", "kyverno", "traefik", "tailscale", "cilium", "external-secrets", "gatekeeper"];

fn fixture(chart: &str) -> String {
    super::fixture(&format!("chart-crds-standin/{chart}.yaml"))
}

/// The CRD documents a chart of that name would install: its stand-in fixture, or for
/// `velero` the real Velero CRDs of `fixtures/velero-crds.yaml` (no chart without CRDs here
/// has any). For a cluster that starts without them (see `flux_standin::FluxStandIn`).
pub fn for_chart(chart: &str) -> Vec<serde_json::Value> {
    let text = match chart {
        "velero" => super::fixture("velero-crds.yaml"),
        "tailscale-operator" => fixture("tailscale"),
        chart if CHARTS.contains(&chart) => fixture(chart),
        _ => return Vec::new(),
    };
    serde_yaml::Deserializer::from_str(&text)
        .map(|doc| <serde_json::Value as serde::Deserialize>::deserialize(doc).expect("a CRD document"))
        .filter(|crd| crd["kind"] == "CustomResourceDefinition")
        .collect()
}

/// The names of the stand-in CRDs (`<plural>.<group>`), from the fixtures.
pub fn crd_names() -> Vec<String> {
    let mut names = Vec::new();
    for chart in CHARTS {
        for doc in serde_yaml::Deserializer::from_str(&fixture(chart)) {
            let value = <serde_json::Value as serde::Deserialize>::deserialize(doc).expect("a CRD document");
            if let Some(name) = value["metadata"]["name"].as_str() {
                names.push(name.to_string());
            }
        }
    }
    names
}

/// The API path listing the custom resources of `kind`'s stand-in CRD across the cluster,
/// e.g. `/apis/metallb.io/v1beta1/ipaddresspools`.
pub fn list_path(crd_name: &str) -> String {
    let (plural, group) = crd_name.split_once('.').expect("<plural>.<group>");
    let crd = cluster()
        .get_json(&format!("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{crd_name}"))
        .unwrap_or_else(|| panic!("stand-in CRD {crd_name} is not installed"));
    let version = crd["spec"]["versions"][0]["name"].as_str().expect("a version").to_string();
    format!("/apis/{group}/{version}/{plural}")
}

/// Applies every stand-in CRD (once per test binary) and waits until each is served.
pub fn ensure() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let all: String = CHARTS.iter().map(|c| format!("---\n{}\n", fixture(c))).collect();
        kubectl_stdin(
            &["apply", "--server-side", "--force-conflicts", &format!("--field-manager={FIELD_MANAGER}"), "-f", "-"],
            &all,
        )
        .assert_success();
        let names = crd_names();
        let mut args = vec!["wait".to_string(), "--for=condition=Established".into(), "--timeout=60s".into()];
        args.extend(names.iter().map(|n| format!("crd/{n}")));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        kubectl(&args).assert_success();
        wait_until("the stand-in chart CRDs served", Duration::from_secs(60), || {
            for name in &names {
                let path = list_path(name);
                let resp = cluster().get(&path);
                if !resp.ok() {
                    return Err(format!("{path}: HTTP {}", resp.status));
                }
            }
            Ok(())
        });
    });
}
