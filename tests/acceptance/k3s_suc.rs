//! `platform_k3s_cluster` with `upgrade { strategy = "system-upgrade-controller" }`: real
//! Terraform, real SSH on the node rig, the k3s stand-in (`harness::k3s_standin`) and the
//! System Upgrade Controller stand-in (`harness::suc_standin`), named so in the test's name.
//! The provider only writes Plans and waits for the Nodes; that the stand-in (and not the
//! provider over SSH) upgraded each node, and in which order, is read from the stand-in's
//! record and the nodes' own event logs.

use crate::harness::hosts::{Host, Hosts};
use crate::harness::k3s_config::{K3sConfig, V1};
use crate::harness::k3s_standin::{Event, K3sStandin};
use crate::harness::suc_standin::{SucStandin, PLANS_PATH};
use crate::harness::{newest_terraform, Workdir};

const V2: &str = "v1.29.4+k3s1";

/// The cluster's HCL with `strategy = "system-upgrade-controller"` in its `upgrade` block.
fn suc_hcl(cluster: &K3sConfig) -> String {
    let block = "    drain_timeout = \"2m\"\n";
    let hcl = cluster.hcl();
    assert!(hcl.contains(block), "K3sConfig no longer writes {block:?}:\n{hcl}");
    hcl.replace(block, &format!("{block}    strategy = \"system-upgrade-controller\"\n"))
}

/// (stop on V1, ready on V2) of a node's upgrade, from its own event log.
#[track_caller]
fn upgrade_window(standin: &K3sStandin, host: &Host, key: &str) -> (u64, u64) {
    let stop = standin.events_named(host, "stop").into_iter().rfind(|e| e.version() == V1);
    let stop = stop.unwrap_or_else(|| panic!("{key} never stopped on {V1}: {:?}", standin.events(host)));
    let ready =
        standin.events_named(host, "ready").into_iter().find(|e| e.version() == V2 && e.unix_ms >= stop.unix_ms);
    let ready = ready.unwrap_or_else(|| panic!("{key} never became ready on {V2}: {:?}", standin.events(host)));
    (stop.unix_ms, ready.unix_ms)
}

#[test]
fn k3s_standin_suc_standin_upgrade_through_plans_server_first_then_agents_one_at_a_time() {
    let tf = newest_terraform();
    let hosts = Hosts::start(4);
    let mut cluster = K3sConfig::new(&hosts, &[("s1", 0)], &[("a1", 1), ("a2", 2)]);
    let standin = cluster.standin;
    let work = Workdir::without_cluster(&tf);
    work.write_main_tf(&suc_hcl(&cluster));

    // Created as always, over SSH.
    work.apply().assert_success();
    let s1 = hosts.host(0);
    let nodes = work.output_json()["nodes"]["value"].clone();
    for key in ["s1", "a1", "a2"] {
        assert_eq!(nodes[key]["version"], V1, "{nodes}");
    }
    work.assert_plan_empty();

    // Without the System Upgrade Controller the strategy is refused, and nothing is touched.
    let before: Vec<usize> = (0..3).map(|i| standin.events(hosts.host(i)).len()).collect();
    cluster.version = V2.to_string();
    work.write_main_tf(&suc_hcl(&cluster));
    let refused = work.apply();
    assert!(!refused.success(), "upgrade without the SUC succeeded");
    let said = refused.stderr.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(said.contains("upgrade.cattle.io"), "refusal does not name upgrade.cattle.io:\n{}", refused.stderr);
    for (i, count) in before.iter().enumerate() {
        assert_eq!(standin.events(hosts.host(i)).len(), *count, "node {i} touched by a refused upgrade");
    }

    // With the stand-in: the provider writes the Plans, the stand-in upgrades the nodes.
    let api = standin.admin_client(s1).expect("admin client");
    let suc = SucStandin::start(&hosts, api, &[("s1", 0), ("a1", 1), ("a2", 2)]);
    let started = std::time::Instant::now();
    work.apply().assert_success();
    eprintln!("acceptance: upgrade through the SUC stand-in took {:.1?}", started.elapsed());

    let server_plan = standin.kube_get(s1, &format!("{PLANS_PATH}/acc-server"));
    let spec = &server_plan["spec"];
    assert_eq!(spec["version"], V2, "{server_plan}");
    assert_eq!(spec["concurrency"], 1, "{server_plan}");
    assert_eq!(spec["cordon"], true, "{server_plan}");
    assert_eq!(spec["serviceAccountName"], "system-upgrade", "{server_plan}");
    assert_eq!(spec["upgrade"]["image"], "rancher/k3s-upgrade", "{server_plan}");
    let expr = &spec["nodeSelector"]["matchExpressions"][0];
    assert_eq!(expr["key"], "node-role.kubernetes.io/control-plane", "{server_plan}");
    assert_eq!(expr["operator"], "In", "{server_plan}");
    assert_eq!(expr["values"], serde_json::json!(["true"]), "{server_plan}");
    assert!(spec["prepare"].is_null() && spec["drain"].is_null(), "{server_plan}");

    let agent_plan = standin.kube_get(s1, &format!("{PLANS_PATH}/acc-agent"));
    let spec = &agent_plan["spec"];
    assert_eq!(spec["version"], V2, "{agent_plan}");
    assert_eq!(spec["concurrency"], 1, "{agent_plan}");
    assert_eq!(spec["cordon"], true, "{agent_plan}");
    assert_eq!(spec["serviceAccountName"], "system-upgrade", "{agent_plan}");
    assert_eq!(spec["upgrade"]["image"], "rancher/k3s-upgrade", "{agent_plan}");
    let expr = &spec["nodeSelector"]["matchExpressions"][0];
    assert_eq!(expr["key"], "node-role.kubernetes.io/control-plane", "{agent_plan}");
    assert_eq!(expr["operator"], "DoesNotExist", "{agent_plan}");
    assert_eq!(spec["prepare"]["image"], "rancher/k3s-upgrade", "{agent_plan}");
    assert_eq!(spec["prepare"]["args"], serde_json::json!(["prepare", "acc-server"]), "{agent_plan}");
    // drain defaults to true; drain_timeout = "2m".
    assert_eq!(spec["drain"]["force"], true, "{agent_plan}");
    assert_eq!(spec["drain"]["timeout"], 120, "{agent_plan}");
    for plan in [&server_plan, &agent_plan] {
        assert_eq!(plan["metadata"]["labels"]["app.kubernetes.io/managed-by"], "terraform-provider-platform");
        assert_eq!(plan["status"]["latestVersion"], V2, "{plan}");
    }

    // Every Node on V2, and the state says so.
    let node_list = standin.kube_get(s1, "/api/v1/nodes");
    for node in node_list["items"].as_array().unwrap() {
        assert_eq!(node["status"]["nodeInfo"]["kubeletVersion"], V2, "{node}");
        assert_ne!(node["spec"]["unschedulable"], true, "{} left cordoned", node["metadata"]["name"]);
    }
    let nodes = work.output_json()["nodes"]["value"].clone();
    for key in ["s1", "a1", "a2"] {
        assert_eq!(nodes[key]["version"], V2, "{nodes}");
        assert_eq!(nodes[key]["ready"], true, "{nodes}");
    }

    // The stand-in ran each node's upgrade, once, under the right Plan.
    let record = suc.events();
    let lines: Vec<String> = record.iter().map(|e| e.line()).collect();
    assert!(record.iter().all(|e| e.what != "failed"), "{lines:?}");
    for (plan, node) in [("acc-server", "s1"), ("acc-agent", "a1"), ("acc-agent", "a2")] {
        for what in ["start", "upgraded", "done"] {
            let line = format!("plan {plan} node {node} {what}");
            assert_eq!(lines.iter().filter(|l| **l == line).count(), 1, "{line:?} not once in {lines:?}");
        }
    }
    // ... and the provider did not upgrade over SSH itself: each node installed V2 exactly once,
    // inside the stand-in's start..upgraded window for it.
    for (node, index) in [("s1", 0), ("a1", 1), ("a2", 2)] {
        let host = hosts.host(index);
        let installs: Vec<Event> =
            standin.events_named(host, "install").into_iter().filter(|e| e.version() == V2).collect();
        assert_eq!(installs.len(), 1, "{node} installed {V2} {} times: {:?}", installs.len(), standin.events(host));
        let at = |what: &str| record.iter().find(|e| e.node == node && e.what == what).unwrap().unix_ms;
        assert!(
            at("start") <= installs[0].unix_ms && installs[0].unix_ms <= at("upgraded"),
            "{node}'s install of {V2} was not the stand-in's"
        );
    }

    // From the nodes' own logs: the server was back before any agent went down, then the
    // agents one at a time (concurrency 1), each cordoned when it stopped.
    let (_, s1_ready) = upgrade_window(standin, s1, "s1");
    let mut agents: Vec<(&str, u64, u64)> = [("a1", 1), ("a2", 2)]
        .into_iter()
        .map(|(key, index)| {
            let (stop, ready) = upgrade_window(standin, hosts.host(index), key);
            (key, stop, ready)
        })
        .collect();
    agents.sort_by_key(|a| a.1);
    assert!(
        s1_ready <= agents[0].1,
        "an agent went down before the server was upgraded: s1 ready {s1_ready}, {agents:?}"
    );
    assert!(agents[0].2 <= agents[1].1, "agents upgraded at the same time: {agents:?}");
    for (key, index) in [("s1", 0), ("a1", 1), ("a2", 2)] {
        let stop = standin.events_named(hosts.host(index), "stop").into_iter().rfind(|e| e.version() == V1).unwrap();
        assert_eq!(stop.field("unschedulable"), Some("true"), "{key} was not cordoned when it stopped");
    }

    work.assert_plan_empty();
    drop(suc);
    work.destroy().assert_success();
    for i in 0..3 {
        assert_eq!(
            standin.events_named(hosts.host(i), "uninstall").len(),
            1,
            "{} not uninstalled",
            hosts.host(i).name()
        );
    }
}

/// Server-side applies a Plan as the test's own field manager (what the provider does).
fn apply_plan(client: &crate::harness::http::HttpClient, plan: &serde_json::Value) {
    let name = plan["metadata"]["name"].as_str().unwrap();
    let path = format!("{PLANS_PATH}/{name}?fieldManager=acc-test&force=true");
    let body = serde_json::to_vec(plan).unwrap();
    let response = client.request("PATCH", &path, Some("application/apply-patch+yaml"), Some(&body)).expect("apply");
    assert!(response.ok(), "apply Plan {name}: HTTP {} {}", response.status, response.body);
}

/// The stand-in on its own (no provider strategy involved): Plans written by the test, a
/// pod to drain, two agents at concurrency 2.
#[test]
fn k3s_standin_suc_standin_self_test_plans_written_by_the_test_upgrade_the_nodes() {
    use serde_json::json;
    let tf = newest_terraform();
    let hosts = Hosts::start(3);
    let mut cluster = K3sConfig::new(&hosts, &[("s1", 0)], &[("a1", 1), ("a2", 2)]);
    let standin = cluster.standin;
    let work = Workdir::without_cluster(&tf);
    work.write_main_tf(&cluster.hcl());
    work.apply().assert_success();
    let s1 = hosts.host(0);
    let client = standin.admin_client(s1).expect("admin client");
    let suc = SucStandin::start(&hosts, client.clone(), &[("s1", 0), ("a1", 1), ("a2", 2)]);
    // A pod on a1 for the drain to evict.
    let pod = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "victim", "namespace": "system-upgrade"},
        "spec": {"nodeName": "a1", "serviceAccountName": "system-upgrade", "automountServiceAccountToken": false,
                 "containers": [{"name": "c", "image": "busybox"}]}});
    let response = client
        .request(
            "POST",
            "/api/v1/namespaces/system-upgrade/pods",
            Some("application/json"),
            Some(&serde_json::to_vec(&pod).unwrap()),
        )
        .expect("create pod");
    assert!(response.ok(), "create pod: {} {}", response.status, response.body);
    let selector = |operator: &str| {
        let mut expr = json!({"key": "node-role.kubernetes.io/control-plane", "operator": operator});
        if operator == "In" {
            expr["values"] = json!(["true"]);
        }
        json!({"matchExpressions": [expr]})
    };
    let started = std::time::Instant::now();
    // The agent Plan first: it must wait for the server Plan all the same.
    apply_plan(
        &client,
        &json!({"apiVersion": "upgrade.cattle.io/v1", "kind": "Plan",
        "metadata": {"name": "t-agent", "namespace": "system-upgrade"},
        "spec": {"concurrency": 2, "cordon": true, "drain": {"force": true, "timeout": 60},
                 "nodeSelector": selector("DoesNotExist"), "serviceAccountName": "system-upgrade",
                 "prepare": {"image": "rancher/k3s-upgrade", "args": ["prepare", "t-server"]},
                 "upgrade": {"image": "rancher/k3s-upgrade"}, "version": V2}}),
    );
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert!(suc.events().is_empty(), "the agent Plan ran before the server Plan existed: {:?}", suc.events());
    apply_plan(
        &client,
        &json!({"apiVersion": "upgrade.cattle.io/v1", "kind": "Plan",
        "metadata": {"name": "t-server", "namespace": "system-upgrade"},
        "spec": {"concurrency": 1, "cordon": true, "nodeSelector": selector("In"),
                 "serviceAccountName": "system-upgrade", "upgrade": {"image": "rancher/k3s-upgrade"}, "version": V2}}),
    );
    crate::harness::wait_until("every Node on V2", std::time::Duration::from_secs(300), || {
        let client = standin.admin_client(s1)?;
        let nodes = client.get("/api/v1/nodes")?.json();
        let versions: Vec<String> = nodes["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["status"]["nodeInfo"]["kubeletVersion"].as_str().unwrap_or_default().to_string())
            .collect();
        let done = suc.events().iter().filter(|e| e.what == "done").count();
        if versions.len() == 3 && versions.iter().all(|v| v == V2) && done == 3 {
            Ok(())
        } else {
            Err(format!("{versions:?}, {done} done"))
        }
    });
    eprintln!("acceptance: the SUC stand-in upgraded 3 nodes in {:.1?}", started.elapsed());
    let lines: Vec<String> = suc.events().iter().map(|e| e.line()).collect();
    assert!(suc.events().iter().all(|e| e.what != "failed"), "{lines:?}");
    // The server first; both agents at once (concurrency 2).
    let at = |node: &str, what: &str| suc.events().iter().find(|e| e.node == node && e.what == what).unwrap().unix_ms;
    assert!(at("s1", "done") <= at("a1", "start") && at("s1", "done") <= at("a2", "start"), "{lines:?}");
    assert!(
        at("a1", "start") <= at("a2", "done") && at("a2", "start") <= at("a1", "done"),
        "agents not in one batch: {lines:?}"
    );
    // The pod was evicted; statuses written; nobody left cordoned; nodes labelled.
    crate::harness::wait_until("the pod gone", std::time::Duration::from_secs(30), || {
        let r = client.get("/api/v1/namespaces/system-upgrade/pods/victim")?;
        if r.status == 404 {
            Ok(())
        } else {
            Err(format!("HTTP {}", r.status))
        }
    });
    crate::harness::wait_until("Plans complete", std::time::Duration::from_secs(30), || {
        for plan in ["t-server", "t-agent"] {
            let p = client.get(&format!("{PLANS_PATH}/{plan}"))?.json();
            let complete = p["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Complete" && c["status"] == "True");
            if p["status"]["latestVersion"] != V2 || !complete || !p["status"]["applying"].is_null() {
                return Err(format!("{plan}: {}", p["status"]));
            }
        }
        Ok(())
    });
    for node in standin.kube_get(s1, "/api/v1/nodes")["items"].as_array().unwrap() {
        assert_ne!(node["spec"]["unschedulable"], true, "{node}");
        let plan = if node["metadata"]["name"] == "s1" { "t-server" } else { "t-agent" };
        assert_eq!(node["metadata"]["labels"][format!("plan.upgrade.cattle.io/{plan}")], "v1.29.4-k3s1", "{node}");
    }
    for index in 0..3 {
        let (stop, _) = upgrade_window(standin, hosts.host(index), hosts.host(index).name());
        let stopped = standin.events_named(hosts.host(index), "stop").into_iter().find(|e| e.unix_ms == stop).unwrap();
        assert_eq!(stopped.field("unschedulable"), Some("true"), "node {index} not cordoned when it stopped");
    }
    drop(suc);
    // The refresh sees the nodes on V2: the configuration follows before the destroy.
    cluster.version = V2.to_string();
    work.write_main_tf(&cluster.hcl());
    work.destroy().assert_success();
}
