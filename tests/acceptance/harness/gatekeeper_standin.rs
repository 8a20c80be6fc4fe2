//! A STAND-IN for OPA Gatekeeper's controller (its image cannot be pulled here), doing the
//! part of its work the policy module relies on, against the shared cluster: for every
//! ConstraintTemplate (the stand-in CRD of `fixtures/chart-crds-standin/gatekeeper.yaml`) it
//! creates the CRD of the template's constraint kind, `<kind lower-cased>.constraints.gatekeeper.sh`
//! (group `constraints.gatekeeper.sh`, cluster-scoped, served at v1beta1 and v1alpha1, label
//! `gatekeeper.sh/constraint: "yes"`, owned by the template), and once that CRD is established
//! sets the template's `status.created: true` with a `byPod` entry at its generation, as
//! Gatekeeper does. The owner reference lets the cluster's garbage collector delete the CRD
//! with its template, as it does for Gatekeeper's. No Rego is compiled and nothing is audited.

use std::sync::OnceLock;
use std::time::Duration;

use serde_json::{json, Value};

use super::cluster;

const TEMPLATES: &str = "/apis/templates.gatekeeper.sh/v1/constrainttemplates";
const CRDS: &str = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions";
/// The group of the constraint kinds.
pub const CONSTRAINTS_GROUP: &str = "constraints.gatekeeper.sh";
const POLL: Duration = Duration::from_millis(250);

/// Starts the stand-in (once per test binary); the ConstraintTemplate CRD must be installed
/// (`chart_crds_standin::ensure`).
pub fn ensure() {
    static STARTED: OnceLock<()> = OnceLock::new();
    STARTED.get_or_init(|| {
        std::thread::Builder::new()
            .name("gatekeeper-standin".into())
            .spawn(|| loop {
                reconcile();
                std::thread::sleep(POLL);
            })
            .expect("start the Gatekeeper stand-in");
    });
}

/// The name of the CRD Gatekeeper makes for constraint kind `kind`.
pub fn constraint_crd_name(kind: &str) -> String {
    format!("{}.{CONSTRAINTS_GROUP}", kind.to_lowercase())
}

fn reconcile() {
    let Ok(resp) = cluster().http().get(TEMPLATES) else { return };
    if !resp.ok() {
        return;
    }
    for template in resp.json()["items"].as_array().cloned().unwrap_or_default() {
        if template["metadata"]["deletionTimestamp"].is_string() {
            continue;
        }
        let Some(kind) = template["spec"]["crd"]["spec"]["names"]["kind"].as_str() else { continue };
        let crd_name = constraint_crd_name(kind);
        let crd = match cluster().http().get(&format!("{CRDS}/{crd_name}")) {
            Ok(resp) if resp.ok() => resp.json(),
            Ok(resp) if resp.status == 404 => {
                create_crd(&template, kind);
                continue;
            }
            _ => continue,
        };
        let established = crd["status"]["conditions"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c["type"] == "Established" && c["status"] == "True"));
        let generation = template["metadata"]["generation"].as_i64().unwrap_or(1);
        let recorded = template["status"]["byPod"][0]["observedGeneration"].as_i64();
        if established && (template["status"]["created"] != true || recorded != Some(generation)) {
            let name = template["metadata"]["name"].as_str().unwrap_or_default();
            let status = json!({"status": {
                "created": true,
                "byPod": [{"id": "gatekeeper-controller-standin", "observedGeneration": generation, "operations": ["audit", "status"]}],
            }});
            let _ = cluster().http().request(
                "PATCH",
                &format!("{TEMPLATES}/{name}/status"),
                Some("application/merge-patch+json"),
                Some(status.to_string().as_bytes()),
            );
        }
    }
}

fn create_crd(template: &Value, kind: &str) {
    let plural = kind.to_lowercase();
    let version = |name: &str, storage: bool| {
        json!({
            "name": name, "served": true, "storage": storage,
            "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
            "subresources": {"status": {}},
        })
    };
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": constraint_crd_name(kind),
            "labels": {"gatekeeper.sh/constraint": "yes"},
            "ownerReferences": [{
                "apiVersion": "templates.gatekeeper.sh/v1",
                "kind": "ConstraintTemplate",
                "name": template["metadata"]["name"],
                "uid": template["metadata"]["uid"],
                "controller": true,
                "blockOwnerDeletion": true,
            }],
        },
        "spec": {
            "group": CONSTRAINTS_GROUP,
            "scope": "Cluster",
            "names": {
                "kind": kind, "listKind": format!("{kind}List"), "plural": plural, "singular": plural,
                "categories": ["constraint", "constraints"],
            },
            "versions": [version("v1beta1", true), version("v1alpha1", false)],
        },
    });
    let body = crd.to_string();
    if let Ok(resp) = cluster().http().request("POST", CRDS, Some("application/json"), Some(body.as_bytes())) {
        if !resp.ok() && resp.status != 409 {
            eprintln!("gatekeeper stand-in: creating the CRD of {kind} refused: HTTP {}: {}", resp.status, resp.body);
        }
    }
}
