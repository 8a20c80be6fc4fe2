//! `upgrade { strategy = "system-upgrade-controller" }`: the System Upgrade Controller's two
//! Plans (servers, then agents after the servers' plan is done) for the configured versions.
//! SUC does the upgrading; the rollout waits for the nodes and records each as it arrives.

use serde_json::json;

use super::config::ClusterSpec;
use super::error::K3sError;
use crate::clients::kube::Cluster;

/// Where SUC keeps its Plans.
pub const NAMESPACE: &str = "system-upgrade";
const API_VERSION: &str = "upgrade.cattle.io/v1";
const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
const MANAGER: &str = "terraform-provider-platform";
const CONTROL_PLANE: &str = "node-role.kubernetes.io/control-plane";
const IMAGE: &str = "rancher/k3s-upgrade";

/// The server plan and the agent plan, by name.
pub fn plans(spec: &ClusterSpec) -> Vec<(String, serde_json::Value)> {
    let server = format!("{}-server", spec.name);
    let agent = format!("{}-agent", spec.name);
    let metadata = |name: &str| json!({ "name": name, "namespace": NAMESPACE, "labels": { MANAGED_BY: MANAGER } });
    let mut agent_spec = json!({
        "concurrency": spec.upgrade.agent_concurrency,
        "cordon": true,
        "nodeSelector": { "matchExpressions": [{ "key": CONTROL_PLANE, "operator": "DoesNotExist" }] },
        "prepare": { "image": IMAGE, "args": ["prepare", server] },
        "serviceAccountName": "system-upgrade",
        "upgrade": { "image": IMAGE },
        "version": spec.agent_version.as_str(),
    });
    if spec.upgrade.drain {
        agent_spec["drain"] = json!({ "force": true, "timeout": spec.upgrade.drain_timeout.as_secs() });
    }
    vec![
        (
            server.clone(),
            json!({
                "apiVersion": API_VERSION,
                "kind": "Plan",
                "metadata": metadata(&server),
                "spec": {
                    "concurrency": 1,
                    "cordon": true,
                    "nodeSelector": { "matchExpressions": [{ "key": CONTROL_PLANE, "operator": "In", "values": ["true"] }] },
                    "serviceAccountName": "system-upgrade",
                    "upgrade": { "image": IMAGE },
                    "version": spec.version.as_str(),
                },
            }),
        ),
        (
            agent.clone(),
            json!({ "apiVersion": API_VERSION, "kind": "Plan", "metadata": metadata(&agent), "spec": agent_spec }),
        ),
    ]
}

/// Writes both Plans. Refuses when the cluster does not serve Plans (SUC not installed) and
/// when a Plan of that name exists that this provider did not write.
pub async fn apply_plans(cluster: &Cluster, spec: &ClusterSpec) -> Result<(), K3sError> {
    let Some(info) = cluster.kind(API_VERSION, "Plan").await? else {
        return Err(K3sError::Refused(format!(
            "upgrade.strategy = \"system-upgrade-controller\" needs the System Upgrade Controller, but the cluster \
             does not serve {API_VERSION} Plans; install it first, or use strategy = \"ssh\""
        )));
    };
    for (name, plan) in plans(spec) {
        if let Some(live) = cluster.get_dynamic(&info, Some(NAMESPACE), &name).await? {
            if live["metadata"]["labels"][MANAGED_BY] != MANAGER {
                return Err(K3sError::Refused(format!(
                    "Plan {NAMESPACE}/{name} exists and was not written by this provider; it is left alone. Rename \
                     the cluster's plans by renaming the cluster, or delete that Plan"
                )));
            }
        }
        tracing::info!(plan = %name, version = %plan["spec"]["version"], "writing System Upgrade Controller plan");
        cluster.apply_dynamic(&info, Some(NAMESPACE), &name, &plan).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::diagnostics::Diagnostics;
    use crate::framework::value::Value;

    #[test]
    fn agents_follow_the_server_plan() {
        let mut config = crate::resources::k3s_cluster::tests::base();
        config.set_attr("agent_version", Value::string("v1.29.1+k3s1"));
        let spec = super::super::config::check(&config, &mut Diagnostics::new()).unwrap();
        let plans = plans(&spec);
        assert_eq!(plans[0].0, "home-server");
        assert_eq!(plans[0].1["spec"]["version"], "v1.29.1+k3s2");
        assert_eq!(plans[0].1["spec"]["concurrency"], 1);
        assert_eq!(plans[1].1["spec"]["version"], "v1.29.1+k3s1");
        assert_eq!(plans[1].1["spec"]["prepare"]["args"], json!(["prepare", "home-server"]));
        assert_eq!(plans[1].1["spec"]["drain"]["timeout"], 600);
        assert_eq!(plans[1].1["metadata"]["labels"][MANAGED_BY], MANAGER);
    }
}
