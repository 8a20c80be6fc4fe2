//! modules/policy with `engine = "gatekeeper"`, applied against the local control plane: the
//! Gatekeeper release, its ConstraintTemplates, and Constraints of the kinds Gatekeeper makes
//! from them, in one apply. The reference examples use Kyverno; this is the other engine.
//!
//! STAND-INS: the helm-controller stand-in (`harness::flux_standin`) for Flux, the stand-in
//! ConstraintTemplate CRD (`harness::chart_crds_standin`) for the one Gatekeeper's chart
//! installs, and the Gatekeeper stand-in (`harness::gatekeeper_standin`) for its controller,
//! which makes each template's constraint CRD and reports the template created. The test
//! owns the cluster-wide names the module fixes (the templates `k8sbaseline*`, the
//! Constraints `baseline-*`), so only it may use the Gatekeeper engine.

use std::time::Duration;

use serde_json::json;

use crate::harness::flux_standin::{self, CREATED_NAMESPACE_LABEL, HELM_RELEASES};
use crate::harness::gatekeeper_standin::{self, constraint_crd_name, CONSTRAINTS_GROUP};
use crate::harness::{chart_crds_standin, cluster, kubectl, newest_terraform, unique_name, wait_until, Workdir};
use crate::reference_platforms::install_modules;

const STACK_LABEL: &str = "platform.terraform.io/stack";
const TEMPLATES: &str = "/apis/templates.gatekeeper.sh/v1/constrainttemplates";
const CRDS: &str = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions";

#[test]
fn policy_module_with_gatekeeper_standin_applies_templates_then_constraints_and_destroys_clean() {
    flux_standin::ensure();
    chart_crds_standin::ensure();
    gatekeeper_standin::ensure();
    let name = unique_name("acc-gk");
    let flux_namespace = unique_name("acc-gk-flux");

    let tf = newest_terraform();
    let work = Workdir::new(&tf);
    work.write_main_tf(&format!(
        r#"{required}
provider "platform" {{}}

resource "platform_namespace" "flux" {{
  name = "{flux_namespace}"
}}

module "policy" {{
  source         = "./modules/policy"
  name           = "{name}"
  flux_namespace = platform_namespace.flux.name
  engine         = "gatekeeper"
}}

output "stacks" {{
  value = module.policy.stacks
}}

output "namespace" {{
  value = module.policy.namespace
}}
"#,
        required = required_providers!()
    ));
    install_modules(&work);

    work.apply().assert_success();
    let outputs = work.output_json();
    let stacks = [format!("{name}-controllers"), format!("{name}-baseline"), format!("{name}-constraints")];
    assert_eq!(outputs["stacks"]["value"], json!(stacks));
    assert_eq!(outputs["namespace"]["value"], "gatekeeper-system");

    // The engine: Gatekeeper's chart, pinned by the module, into its namespace.
    let release = cluster()
        .get_json(&format!("{HELM_RELEASES}/namespaces/{flux_namespace}/helmreleases/{name}-controllers-gatekeeper"))
        .expect("the Gatekeeper HelmRelease");
    assert!(flux_standin::is_ready(&release), "{}", release["status"]);
    assert_eq!(release["spec"]["chart"]["spec"]["chart"], "gatekeeper");
    assert_eq!(release["spec"]["targetNamespace"], "gatekeeper-system");

    // The templates, each acted on by Gatekeeper (the stack waited for status.created).
    for (template, kind, constraint, stack_of_constraint) in [
        ("k8sbaselineprivileged", "K8sBaselinePrivileged", "baseline-privileged", &stacks[2]),
        ("k8sbaselinehostnamespaces", "K8sBaselineHostNamespaces", "baseline-hostnamespaces", &stacks[2]),
    ] {
        let live = cluster().get_json(&format!("{TEMPLATES}/{template}")).expect("the ConstraintTemplate");
        assert_eq!(live["metadata"]["labels"][STACK_LABEL], stacks[1].as_str(), "{template}");
        assert_eq!(live["status"]["created"], true, "{template}");
        assert!(live["spec"]["targets"][0]["rego"].as_str().unwrap_or_default().contains("violation"), "{template}");
        // The Constraint, of the kind Gatekeeper made, in dry-run.
        let plural = kind.to_lowercase();
        let path = format!("/apis/{CONSTRAINTS_GROUP}/v1beta1/{plural}/{constraint}");
        let live = cluster().get_json(&path).unwrap_or_else(|| panic!("no {path}"));
        assert_eq!(live["metadata"]["labels"][STACK_LABEL], stack_of_constraint.as_str(), "{constraint}");
        assert_eq!(live["spec"]["enforcementAction"], "dryrun", "{constraint}");
        assert_eq!(live["spec"]["match"]["excludedNamespaces"], json!(["kube-system"]), "{constraint}");
        assert_eq!(live["spec"]["match"]["kinds"], json!([{"apiGroups": [""], "kinds": ["Pod"]}]), "{constraint}");
    }

    work.assert_plan_empty();

    // Destroy: the Constraints, then the templates (whose constraint CRDs the cluster's
    // garbage collector removes after them, as with Gatekeeper), then the release.
    work.destroy().assert_success();
    for kind in ["K8sBaselinePrivileged", "K8sBaselineHostNamespaces"] {
        let template = kind.to_lowercase();
        assert!(!cluster().exists(&format!("{TEMPLATES}/{template}")), "{template} left");
        cluster().wait_gone(&format!("{CRDS}/{}", constraint_crd_name(kind)), Duration::from_secs(60));
    }
    assert!(
        cluster()
            .get_json(&format!(
                "{HELM_RELEASES}/namespaces/{flux_namespace}/helmreleases/{name}-controllers-gatekeeper"
            ))
            .is_none(),
        "the HelmRelease is left"
    );
    wait_until("the Flux namespace deleted", Duration::from_secs(120), || {
        match cluster().get_json(&format!("/api/v1/namespaces/{flux_namespace}")) {
            None => Ok(()),
            Some(ns) => Err(format!("phase {}", ns["status"]["phase"])),
        }
    });
    // gatekeeper-system is helm-controller's (made for the release, never deleted by it).
    let target = cluster().get_json("/api/v1/namespaces/gatekeeper-system");
    if target.is_some_and(|ns| ns["metadata"]["labels"][CREATED_NAMESPACE_LABEL] == "helm-controller-standin") {
        kubectl(&["delete", "namespace", "gatekeeper-system", "--wait=false", "--ignore-not-found"]).assert_success();
    }
}
