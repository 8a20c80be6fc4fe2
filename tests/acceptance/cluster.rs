//! `platform_cluster` (resource and data source) against the local control plane. It has
//! no kubelets: the tests register Node objects through the API and keep their status
//! (Ready or not, kubelet version) fresh themselves, as a kubelet would, so that the node
//! lifecycle controller does not mark them Unknown meanwhile. Every test labels its nodes
//! with a value of its own and looks only at those (`node_selector`): tests run in parallel
//! against one API server.

use std::time::{Duration, Instant};

use crate::harness::test_nodes::TestNodes;
use crate::harness::{cluster, for_each_terraform, unique_name, Workdir};

const PROVIDER: &str = concat!(required_providers!(), "provider \"platform\" {}\n");

/// `terraform output -json` values by name.
fn outputs(work: &Workdir) -> serde_json::Value {
    let all = work.output_json();
    let mut values = serde_json::Map::new();
    for (name, output) in all.as_object().unwrap() {
        values.insert(name.clone(), output["value"].clone());
    }
    serde_json::Value::Object(values)
}

#[test]
fn cluster_data_source_reports_version_readyz_nodes_and_connection() {
    let nodes = TestNodes::new();
    let control = nodes.add(&["control-plane", "master"], true);
    let worker = nodes.add(&["worker"], false);
    for_each_terraform(|tf| {
        let work = Workdir::new(tf);
        work.write_main_tf(&format!(
            r#"{PROVIDER}
data "platform_cluster" "mine" {{
  node_selector = "{selector}"
}}
data "platform_cluster" "all" {{}}
output "id" {{ value = data.platform_cluster.mine.id }}
output "server_version" {{ value = data.platform_cluster.mine.server_version }}
output "readyz" {{ value = data.platform_cluster.mine.readyz }}
output "readyz_detail" {{ value = data.platform_cluster.mine.readyz_detail }}
output "nodes" {{ value = data.platform_cluster.mine.nodes }}
output "all_nodes" {{ value = keys(data.platform_cluster.all.nodes) }}
output "connection" {{
  value     = data.platform_cluster.mine.connection
  sensitive = true
}}
"#,
            selector = nodes.selector()
        ));
        work.apply().assert_success();
        let out = outputs(&work);
        let server = cluster().server().trim_end_matches('/');
        assert_eq!(out["id"], server);
        if !cluster().is_external() {
            assert_eq!(out["server_version"], "v1.20.2");
        }
        assert_eq!(out["readyz"], true, "{out}");
        assert_eq!(out["readyz_detail"], "ok");
        let expected = serde_json::json!({
            control.clone(): { "roles": ["control-plane", "master"], "kubelet_version": "v1.20.2", "ready": true, "reason": "KubeletReady" },
            worker.clone(): { "roles": ["worker"], "kubelet_version": "v1.20.2", "ready": false, "reason": "KubeletNotReady" },
        });
        assert_eq!(out["nodes"], expected);
        // Without a selector: every node, other tests' included.
        let all: Vec<&str> = out["all_nodes"].as_array().unwrap().iter().filter_map(|n| n.as_str()).collect();
        assert!(all.contains(&control.as_str()) && all.contains(&worker.as_str()), "{all:?}");
        // The provider connects through KUBECONFIG: the map keeps that file, and the host.
        let connection = &out["connection"];
        assert_eq!(connection["host"], server);
        assert_eq!(connection["config_path"], cluster().kubeconfig_path().to_str().unwrap());
        assert!(connection.get("token").is_none(), "the kubeconfig's token was copied: {connection}");
        work.assert_plan_empty();
    });
}

/// A namespace on the cluster through `connection`, and outputs that follow the nodes.
fn lifecycle_config(selector: &str, namespace: &str) -> String {
    format!(
        r#"{PROVIDER}
resource "platform_cluster" "this" {{
  node_selector = "{selector}"
  min_nodes     = 2
  timeouts {{
    create = "60s"
  }}
}}
resource "platform_namespace" "on_it" {{
  name    = "{namespace}"
  cluster = platform_cluster.this.connection
}}
output "nodes" {{ value = platform_cluster.this.nodes }}
"#
    )
}

#[test]
fn cluster_resource_adopts_refreshes_imports_and_forgets() {
    let nodes = TestNodes::new();
    let first = nodes.add(&["control-plane"], true);
    let second = nodes.add(&[], true);
    for_each_terraform(|tf| {
        let work = Workdir::new(tf);
        let namespace = unique_name("acc-cl-ns");
        work.write_main_tf(&lifecycle_config(&nodes.selector(), &namespace));

        // Healthy: the gate passes, the namespace is made through `connection`.
        work.apply().assert_success();
        let state = work.resource_values("platform_cluster.this").unwrap();
        let server = cluster().server().trim_end_matches('/');
        assert_eq!(state["id"], server);
        assert_eq!(state["readyz"], true);
        assert_eq!(state["nodes"][&first]["ready"], true);
        assert_eq!(state["nodes"][&second]["roles"], serde_json::json!([]));
        assert!(
            cluster().exists(&format!("/api/v1/namespaces/{namespace}")),
            "namespace not created through connection"
        );
        work.assert_plan_empty();

        // A node going NotReady is drift refresh shows, never a replacement.
        nodes.set_ready(&second, false);
        let plan = work.plan();
        plan.assert_success();
        let text = plan.stdout.clone();
        assert!(text.contains("changed outside of Terraform"), "the drift is not shown:\n{text}");
        assert!(text.contains("KubeletNotReady"), "the node's state is not shown:\n{text}");
        assert!(
            !text.contains("must be replaced") && !text.contains("forces replacement"),
            "replacement planned:\n{text}"
        );
        work.apply_with(&["-refresh-only"]).assert_success();
        assert_eq!(work.resource_values("platform_cluster.this").unwrap()["nodes"][&second]["ready"], false);
        nodes.set_ready(&second, true);
        work.apply_with(&["-refresh-only"]).assert_success();
        work.assert_plan_empty();

        // Import by the server's URL, with the provider's connection; one apply brings the
        // configured gate into the state, then nothing is left to do.
        work.run(&["state", "rm", "platform_cluster.this"]).assert_success();
        work.import("platform_cluster.this", server).assert_success();
        let imported = work.resource_values("platform_cluster.this").unwrap();
        assert_eq!(imported["id"], server);
        // No `node_selector` yet: every node, ours among them.
        assert_eq!(imported["nodes"][&first]["ready"], true, "{imported}");
        work.apply().assert_success();
        assert_eq!(work.resource_values("platform_cluster.this").unwrap()["nodes"][&first]["ready"], true);
        work.assert_plan_empty();

        // Destroy forgets the cluster: its nodes stay as they were.
        work.destroy().assert_success();
        assert!(nodes.exists(&first) && nodes.exists(&second), "destroy deleted nodes");
        let node = cluster().get_json(&format!("/api/v1/nodes/{first}")).unwrap();
        assert!(node["metadata"]["deletionTimestamp"].is_null());
        assert!(cluster().exists("/api/v1/namespaces/kube-system"));
    });
}

#[test]
fn cluster_health_gate_times_out_naming_the_unready_nodes() {
    let nodes = TestNodes::new();
    let ready = nodes.add(&["worker"], true);
    let unready = nodes.add(&["worker"], false);
    for_each_terraform(|tf| {
        nodes.set_ready(&unready, false);
        let work = Workdir::new(tf);
        let config = |timeout: &str, min_nodes: u32| {
            format!(
                "{PROVIDER}\nresource \"platform_cluster\" \"this\" {{\n  node_selector = \"{}\"\n  min_nodes = {min_nodes}\n  timeouts {{\n    create = \"{timeout}\"\n  }}\n}}\n",
                nodes.selector()
            )
        };

        // Never healthy: the apply fails at the timeout, naming what is wrong; nothing is kept.
        work.write_main_tf(&config("5s", 3));
        let started = Instant::now();
        let out = work.apply();
        let took = started.elapsed();
        out.assert_failure_contains("Cluster not healthy");
        let text = out.combined();
        assert!(text.contains(&unready) && text.contains("KubeletNotReady"), "unready node not named:\n{text}");
        assert!(text.contains("2 of at least 3 nodes"), "missing nodes not named:\n{text}");
        assert!(!text.contains(&format!("{ready} (")), "a Ready node is named as unready:\n{text}");
        assert!(took < Duration::from_secs(45), "the 5s gate took {took:?}");
        eprintln!("acceptance: the 5s health gate failed after {took:?}:\n{}", out.stderr);
        assert!(work.run(&["state", "list"]).stdout.trim().is_empty(), "a failed adoption left state");

        // The node becomes Ready while the gate waits: the apply passes once it is.
        work.write_main_tf(&config("90s", 2));
        let flip = {
            let (nodes, unready) = (&nodes, unready.clone());
            std::thread::scope(|scope| {
                let started = Instant::now();
                let flipper = scope.spawn(move || {
                    std::thread::sleep(Duration::from_secs(6));
                    nodes.set_ready(&unready, true);
                });
                let out = work.apply();
                flipper.join().unwrap();
                out.assert_success();
                started.elapsed()
            })
        };
        assert!(flip >= Duration::from_secs(6), "the gate passed before the node was Ready ({flip:?})");
        assert_eq!(work.resource_values("platform_cluster.this").unwrap()["nodes"][&unready]["ready"], true);
        work.destroy().assert_success();
    });
}
