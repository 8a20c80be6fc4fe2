//! `platform_k3s_cluster` with real Terraform, real SSH (OpenSSH's sshd on the node rig's
//! test hosts) and the k3s stand-in (`harness::k3s_standin`, named so in every test here),
//! whose servers run a real etcd and kube-apiserver. Orders and one-at-a-time are asserted
//! from the nodes' own event logs, never from the provider's.

use crate::harness::hosts::{Hosts, Sudo};
use crate::harness::k3s_config::{K3sConfig, V1};
use crate::harness::k3s_standin::Event;
use crate::harness::{newest_terraform, oldest_terraform, Workdir};

const V2: &str = "v1.29.4+k3s1";

/// The nodes output: key → (role, version, ready).
fn nodes_output(work: &Workdir) -> serde_json::Value {
    work.output_json()["nodes"]["value"].clone()
}

#[track_caller]
fn assert_node(nodes: &serde_json::Value, key: &str, role: &str, version: &str) {
    let node = &nodes[key];
    assert_eq!(node["role"], role, "{key}: {nodes}");
    assert_eq!(node["version"], version, "{key}: {nodes}");
    assert_eq!(node["ready"], true, "{key}: {nodes}");
}

#[test]
fn k3s_standin_cluster_of_three_servers_and_two_agents_grows_shrinks_upgrades_and_is_destroyed() {
    let tf = newest_terraform();
    let hosts = Hosts::start(6);
    let mut cluster = K3sConfig::new(&hosts, &[("s1", 0), ("s2", 1), ("s3", 2)], &[("a1", 3), ("a2", 4)]);
    cluster.with_namespace = Some("apps".to_string());
    let standin = cluster.standin;
    let work = Workdir::without_cluster(&tf);
    work.write_main_tf(&cluster.hcl());

    // One apply: the cluster, then a namespace on it through its `connection`.
    let out = work.apply();
    out.assert_success();
    let nodes = nodes_output(&work);
    for key in ["s1", "s2", "s3"] {
        assert_node(&nodes, key, "server", V1);
    }
    for key in ["a1", "a2"] {
        assert_node(&nodes, key, "agent", V1);
    }
    let s1 = hosts.host(0);
    let namespace = standin.kube_get(s1, "/api/v1/namespaces/apps");
    assert_eq!(namespace["metadata"]["name"], "apps");
    let node_list = standin.kube_get(s1, "/api/v1/nodes");
    let names: Vec<&str> =
        node_list["items"].as_array().unwrap().iter().map(|n| n["metadata"]["name"].as_str().unwrap()).collect();
    assert_eq!(names.len(), 5, "{names:?}");
    let a1 = node_list["items"].as_array().unwrap().iter().find(|n| n["metadata"]["name"] == "a1").unwrap();
    assert_eq!(a1["metadata"]["labels"]["node.kubernetes.io/pool"], "general");
    // Servers joined one at a time: each started only after the one before was ready.
    let ready_s1 = standin.events_named(s1, "ready")[0].unix_ms;
    let start_s2 = standin.events_named(hosts.host(1), "start")[0].unix_ms;
    let ready_s2 = standin.events_named(hosts.host(1), "ready")[0].unix_ms;
    let start_s3 = standin.events_named(hosts.host(2), "start")[0].unix_ms;
    assert!(ready_s1 <= start_s2 && ready_s2 <= start_s3, "servers not joined one at a time");
    // config.yaml is the provider's, 0600.
    let mode = s1.ssh("stat -c %a /etc/rancher/k3s/config.yaml");
    assert_eq!(mode.stdout.trim(), "600");
    work.assert_plan_empty();

    // Add an agent: only that node is touched.
    let before: Vec<usize> = (0..5).map(|i| standin.events(hosts.host(i)).len()).collect();
    cluster.agents.push(("a3", 5));
    work.write_main_tf(&cluster.hcl());
    let plan = work.assert_plan_has_changes();
    assert!(plan.stdout.contains("a3"), "{}", plan.stdout);
    work.apply().assert_success();
    assert_node(&nodes_output(&work), "a3", "agent", V1);
    for (i, count) in before.iter().enumerate() {
        assert_eq!(standin.events(hosts.host(i)).len(), *count, "node {i} was touched by adding a3");
    }
    work.assert_plan_empty();

    // Remove it again: cordoned, drained, Node deleted, uninstalled.
    cluster.agents.pop();
    work.write_main_tf(&cluster.hcl());
    work.apply().assert_success();
    assert!(standin.events_named(hosts.host(5), "uninstall").len() == 1);
    assert!(!hosts.host(5).root_dir().join("usr/local/bin/k3s").exists());
    let node_list = standin.kube_get(s1, "/api/v1/nodes");
    assert!(node_list["items"].as_array().unwrap().iter().all(|n| n["metadata"]["name"] != "a3"));
    work.assert_plan_empty();

    // A new host under the same key replaces that node only: a2 moves from host 4 to host 5.
    let untouched: Vec<usize> = (0..4).map(|i| standin.events(hosts.host(i)).len()).collect();
    cluster.agents[1] = ("a2", 5);
    work.write_main_tf(&cluster.hcl());
    let plan = work.assert_plan_has_changes();
    assert!(plan.stdout.contains(&hosts.host(5).address().to_string()), "{}", plan.stdout);
    work.apply().assert_success();
    assert_eq!(standin.events_named(hosts.host(4), "uninstall").len(), 1, "a2's old host not uninstalled");
    // Host 5 held a3 before; a2 is its second install there.
    assert_eq!(standin.events_named(hosts.host(5), "ready").len(), 2, "a2 not joined on its new host");
    for (i, count) in untouched.iter().enumerate() {
        assert_eq!(standin.events(hosts.host(i)).len(), *count, "node {i} was touched by moving a2");
    }
    assert_eq!(nodes_output(&work)["a2"]["host"], hosts.host(5).address().to_string());
    work.assert_plan_empty();

    // A fourth server joins the running cluster (an even count needs allow_even_servers) and
    // leaves it again: etcd keeps quorum and the API keeps answering through s1.
    cluster.servers.push(("s4", 4));
    cluster.extra = "  allow_even_servers = true\n".to_string();
    work.write_main_tf(&cluster.hcl());
    work.apply().assert_success();
    assert_node(&nodes_output(&work), "s4", "server", V1);
    let s4 = standin.kube_get(hosts.host(4), "/api/v1/nodes/s4");
    assert_eq!(s4["metadata"]["labels"]["node-role.kubernetes.io/etcd"], "true");
    work.assert_plan_empty();
    cluster.servers.pop();
    cluster.extra = String::new();
    work.write_main_tf(&cluster.hcl());
    work.apply().assert_success();
    assert_eq!(standin.events_named(hosts.host(4), "uninstall").len(), 2, "s4 not uninstalled");
    let node_list = standin.kube_get(s1, "/api/v1/nodes");
    assert!(node_list["items"].as_array().unwrap().iter().all(|n| n["metadata"]["name"] != "s4"));
    work.assert_plan_empty();

    // Refused at plan time: removing a server (even count), a skipped minor, a downgrade,
    // a moved bootstrap server.
    let refused = |edit: &dyn Fn(&mut K3sConfig), needle: &str| {
        let mut changed = K3sConfig {
            servers: cluster.servers.clone(),
            agents: cluster.agents.clone(),
            ..K3sConfig::new(&hosts, &[], &[])
        };
        changed.version = cluster.version.clone();
        edit(&mut changed);
        work.write_main_tf(&changed.hcl());
        let out = work.plan();
        assert!(!out.success(), "plan accepted ({needle})");
        let said = out.stderr.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(said.contains(needle), "no {needle:?} in:\n{}", out.stderr);
    };
    refused(
        &|c| {
            c.servers.pop();
        },
        "Even number of servers",
    );
    refused(&|c| c.version = "v1.31.0+k3s1".into(), "upgrade to v1.30 first");
    refused(&|c| c.version = "v1.28.9+k3s1".into(), "downgrade");
    refused(&|c| c.servers.swap(0, 1), "Bootstrap server changed");
    refused(&|c| c.extra = "  token_wo_version = 2\n".into(), "k3s token rotate");
    refused(&|c| c.servers.truncate(1), "Removing servers would break quorum");

    // Upgrade: servers one at a time, then agents, each drained and back before the next.
    cluster.version = V2.to_string();
    work.write_main_tf(&cluster.hcl());
    let plan = work.assert_plan_has_changes();
    assert!(plan.stdout.contains(V1) && plan.stdout.contains(V2), "plan does not show versions:\n{}", plan.stdout);
    // The second server fails to start on the new version: the apply stops there.
    standin.fail_start(hosts.host(1), "injected start failure for the resume test");
    let failed = work.apply();
    assert!(!failed.success(), "upgrade with a failing server succeeded");
    assert!(failed.stderr.contains("injected start failure"), "service log not quoted:\n{}", failed.stderr);
    let nodes = work.resource_values("platform_k3s_cluster.this").unwrap()["nodes"].clone();
    assert_eq!(nodes["s1"]["version"], V2, "s1's upgrade not recorded: {nodes}");
    assert_eq!(nodes["s3"]["version"], V1, "s3 touched after s2 failed: {nodes}");
    // s2 was uncordoned although it failed.
    let s2_node = standin.kube_get(s1, "/api/v1/nodes/s2");
    assert_ne!(s2_node["spec"]["unschedulable"], true, "s2 left cordoned");
    standin.clear_fail_start(hosts.host(1));
    let plan = work.assert_plan_has_changes();
    assert!(!plan.stdout.contains("\"s1\" = {"), "resumed plan touches s1 again:\n{}", plan.stdout);
    work.apply().assert_success();
    let nodes = nodes_output(&work);
    for key in ["s1", "s2", "s3"] {
        assert_node(&nodes, key, "server", V2);
    }
    for key in ["a1", "a2"] {
        assert_node(&nodes, key, "agent", V2);
    }
    // From the nodes' own logs: each node stopped cordoned, and no two were down at once.
    let mut windows = Vec::new();
    for (key, index) in cluster.servers.iter().chain(&cluster.agents) {
        let host = hosts.host(*index);
        let stops: Vec<Event> = standin.events_named(host, "stop").into_iter().filter(|e| e.version() == V1).collect();
        let stop = stops.last().unwrap_or_else(|| panic!("{key} never stopped for the upgrade"));
        assert_eq!(stop.field("unschedulable"), Some("true"), "{key} was not cordoned when it stopped");
        let ready =
            standin.events_named(host, "ready").into_iter().find(|e| e.version() == V2 && e.unix_ms >= stop.unix_ms);
        let ready = ready.unwrap_or_else(|| panic!("{key} never became ready on {V2}"));
        windows.push((*key, stop.unix_ms, ready.unix_ms));
    }
    let successful: Vec<&(&str, u64, u64)> = windows.iter().collect();
    for pair in successful.windows(2) {
        let ((a, _, a_ready), (b, b_stop, _)) = (pair[0], pair[1]);
        assert!(a_ready <= b_stop, "{b} went down before {a} was back: {windows:?}");
    }
    work.assert_plan_empty();

    // Destroy: the namespace, then agents, then servers; nothing of k3s is left.
    work.destroy().assert_success();
    for (i, uninstalls) in [(0, 1), (1, 1), (2, 1), (3, 1), (5, 2)] {
        let host = hosts.host(i);
        assert_eq!(standin.events_named(host, "uninstall").len(), uninstalls, "{} not uninstalled", host.name());
        let probe = host.ssh("test -e /usr/local/bin/k3s || test -e /etc/rancher/k3s/config.yaml; echo $?");
        assert_eq!(probe.stdout.trim(), "1", "{} still has k3s", host.name());
    }
    let last_agent =
        [3, 5].iter().map(|i| standin.events_named(hosts.host(*i), "uninstall").last().unwrap().unix_ms).max().unwrap();
    let first_server = (0..3).map(|i| standin.events_named(hosts.host(i), "uninstall")[0].unix_ms).min().unwrap();
    assert!(last_agent <= first_server, "servers uninstalled before agents");
}

#[test]
fn k3s_standin_small_cluster_with_the_oldest_terraform_refuses_foreign_hosts_and_bad_host_keys() {
    let tf = oldest_terraform();
    let hosts = Hosts::start(3);
    let mut cluster = K3sConfig::new(&hosts, &[("s1", 0)], &[("a1", 1)]);
    // Imported clusters are kept on destroy unless asked; this one is imported below.
    cluster.extra = "  on_destroy = \"uninstall\"\n".to_string();
    let standin = cluster.standin;
    let work = Workdir::without_cluster(&tf);
    work.write_main_tf(&cluster.hcl());
    // Created under TF_LOG=trace: no key, token or kubeconfig content in the log.
    let out = work.run_with_env(&["apply", "-auto-approve", "-input=false", "-no-color"], &[("TF_LOG", "trace")]);
    out.assert_success();
    let log = format!("{}{}", out.stdout, out.stderr);
    let state = work.resource_values("platform_k3s_cluster.this").unwrap();
    let client_key = state["connection"]["client_key"].as_str().unwrap().to_string();
    let token = standin.token(hosts.host(0)).expect("token");
    let token_secret = token.rsplit(':').next().unwrap().to_string();
    let private_key = hosts.private_key_pem();
    let key_body: String = private_key.lines().filter(|l| !l.starts_with("-----")).collect::<Vec<_>>().join("");
    for (what, secret) in [
        ("client key", client_key.lines().nth(1).unwrap().to_string()),
        ("token", token_secret),
        ("ssh key", private_key.lines().nth(1).unwrap().to_string()),
        ("ssh key", key_body[..40].to_string()),
    ] {
        assert!(!log.contains(&secret), "{what} appears in the TF_LOG=trace output");
    }
    assert!(log.contains("ApplyResourceChange") || log.contains("apply"), "no trace output captured");
    assert_node(&nodes_output(&work), "s1", "server", V1);
    assert_node(&nodes_output(&work), "a1", "agent", V1);
    work.assert_plan_empty();
    // The kubeconfig points at api_endpoint and works.
    let state = work.resource_values("platform_k3s_cluster.this").unwrap();
    let kubeconfig = state["kubeconfig"].as_str().unwrap();
    assert!(kubeconfig.contains(&cluster.endpoint()), "{kubeconfig}");
    assert!(!kubeconfig.contains("127.0.0.1"));
    assert_eq!(state["connection"]["host"], cluster.endpoint());

    // A config change rolls over the nodes of that role only: the agent restarts with it.
    let s1_events = standin.events(hosts.host(0)).len();
    let a1_starts = standin.events_named(hosts.host(1), "start").len();
    let mut configured = K3sConfig::new(&hosts, &[("s1", 0)], &[("a1", 1)]);
    configured.extra =
        format!("{}  agent_config = yamlencode({{ \"kubelet-arg\" = [\"max-pods=50\"] }})\n", cluster.extra);
    work.write_main_tf(&configured.hcl());
    work.apply().assert_success();
    assert_eq!(standin.events_named(hosts.host(1), "start").len(), a1_starts + 1, "a1 not restarted");
    assert_eq!(standin.events(hosts.host(0)).len(), s1_events, "s1 touched by an agent config change");
    let agent_config = hosts.host(1).ssh("cat /etc/rancher/k3s/config.yaml");
    assert!(agent_config.stdout.contains("max-pods=50"), "{}", agent_config.stdout);
    work.assert_plan_empty();
    work.write_main_tf(&cluster.hcl());
    work.apply().assert_success();

    // Import by name (no hosts or credentials in the id); the next apply adopts the nodes
    // the configuration names without touching them, and then nothing is left to do.
    work.run(&["state", "rm", "platform_k3s_cluster.this"]).assert_success();
    let events_before: Vec<usize> = (0..2).map(|i| standin.events(hosts.host(i)).len()).collect();
    work.import("platform_k3s_cluster.this", "acc").assert_success();
    let adopt = work.apply();
    adopt.assert_success();
    for (i, count) in events_before.iter().enumerate() {
        assert_eq!(standin.events(hosts.host(i)).len(), *count, "adoption touched node {i}");
    }
    assert_eq!(work.resource_values("platform_k3s_cluster.this").unwrap()["adopted"], true);
    assert_node(&nodes_output(&work), "a1", "agent", V1);
    work.assert_plan_empty();
    // Adopting a configuration that does not match what runs is refused, naming the node.
    work.run(&["state", "rm", "platform_k3s_cluster.this"]).assert_success();
    work.import("platform_k3s_cluster.this", "acc").assert_success();
    let mut wrong = K3sConfig::new(&hosts, &[("s1", 0)], &[("a1", 1)]);
    wrong.extra = cluster.extra.clone();
    wrong.version = V2.to_string();
    work.write_main_tf(&wrong.hcl());
    let out = work.apply();
    assert!(!out.success());
    let said = out.stderr.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(said.contains("cannot adopt node") && said.contains(&format!("runs k3s {V1}")), "{}", out.stderr);
    work.write_main_tf(&cluster.hcl());
    work.apply().assert_success();
    work.assert_plan_empty();

    // A host that already runs k3s is refused, naming it, and left alone.
    standin.upload_binary(hosts.host(2), V1).assert_success();
    let mut grown = K3sConfig::new(&hosts, &[("s1", 0)], &[("a1", 1), ("a2", 2)]);
    grown.extra = cluster.extra.clone();
    work.write_main_tf(&grown.hcl());
    let out = work.apply();
    assert!(!out.success());
    assert!(
        out.stderr.contains("already runs k3s") && out.stderr.contains(&hosts.host(2).address().to_string()),
        "{}",
        out.stderr
    );
    assert!(standin.events_named(hosts.host(2), "uninstall").is_empty(), "foreign k3s was touched");
    // The resource did not change (the failed apply may leave the `nodes` output stale, which
    // the next apply refreshes).
    work.write_main_tf(&cluster.hcl());
    let plan = work.plan();
    assert!(!plan.stdout.contains("platform_k3s_cluster.this will be"), "{}", plan.stdout);
    work.apply().assert_success();
    work.assert_plan_empty();

    // A host key that is not the one in known_hosts: refused at apply, nothing done.
    let wrong = work.write_file(
        "known_hosts",
        &std::fs::read_to_string(hosts.known_hosts_path())
            .unwrap()
            .lines()
            .map(|line| {
                if line.starts_with(&format!("{} ", hosts.host(0).address())) {
                    format!("{} {}", hosts.host(0).address(), hosts.host(1).host_key_pub())
                } else {
                    line.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n"),
    );
    let mut upgraded = K3sConfig::new(&hosts, &[("s1", 0)], &[("a1", 1)]);
    upgraded.extra = cluster.extra.clone();
    upgraded.version = V2.to_string();
    let hcl = upgraded.hcl().replace(&hosts.known_hosts_path().display().to_string(), &wrong.display().to_string());
    work.write_main_tf(&hcl);
    let out = work.apply();
    assert!(!out.success());
    assert!(out.stderr.to_lowercase().contains("host key"), "{}", out.stderr);
    assert!(standin.events_named(hosts.host(0), "stop").is_empty(), "s1 was touched with a wrong host key");

    // An unreachable node: the apply gives up within its timeout, naming the host.
    let octets = hosts.gateway().octets();
    let nowhere = format!("{}.{}.{}.250", octets[0], octets[1], octets[2]);
    let mut unreachable = K3sConfig::new(&hosts, &[("s1", 0)], &[("a1", 1)]);
    unreachable.extra = format!("{}  timeouts {{\n    update = \"20s\"\n  }}\n", cluster.extra);
    let hcl =
        unreachable.hcl().replace("  agents = {\n", &format!("  agents = {{\n    a9 = {{ host = \"{nowhere}\" }}\n"));
    work.write_main_tf(&hcl);
    let started = std::time::Instant::now();
    let out = work.apply();
    assert!(!out.success());
    assert!(out.stderr.contains(&nowhere), "{}", out.stderr);
    assert!(started.elapsed() < std::time::Duration::from_secs(90), "took {:?}", started.elapsed());

    work.write_main_tf(&cluster.hcl());
    work.destroy().assert_success();
    for i in 0..2 {
        assert_eq!(standin.events_named(hosts.host(i), "uninstall").len(), 1);
    }
    // The foreign installation is still there.
    assert!(hosts.host(2).root_dir().join("usr/local/bin/k3s").exists());
}

#[test]
fn k3s_standin_plan_time_refusals_name_their_attribute() {
    let tf = newest_terraform();
    let work = Workdir::without_cluster(&tf);
    let cases = [
        ("version = \"1.29\"", "Invalid k3s version"),
        ("server_config = \"- not\\n- a map\\n\"", "must be a YAML mapping"),
        ("server_config = yamlencode({ token = \"x\" })", "Flag set by the provider"),
        ("agent_version = \"v1.30.2+k3s1\"", "Agents newer than servers"),
        ("api_endpoint = \"http://10.0.0.1:6443\"", "must be an https:// URL"),
    ];
    for (line, needle) in cases {
        let attribute = line.split_whitespace().next().unwrap();
        let body = "  name = \"x\"\n  version = \"v1.29.1+k3s2\"\n  api_endpoint = \"https://10.0.0.1:6443\"\n  servers = { s1 = { host = \"10.0.0.1\", bootstrap = true } }\n  ssh {\n    private_key_path = \"/nonexistent\"\n    known_hosts = \"10.0.0.1 ssh-ed25519 AAAA\"\n  }\n";
        let body =
            body.lines().filter(|l| l.split_whitespace().next() != Some(attribute)).collect::<Vec<_>>().join("\n");
        work.write_main_tf(&format!(
            "{}\nresource \"platform_k3s_cluster\" \"this\" {{\n{body}\n  {line}\n}}\n",
            required_providers!()
        ));
        let out = work.plan();
        assert!(!out.success(), "{line}: accepted");
        assert!(out.stderr.contains(needle), "{line}: no {needle:?} in\n{}", out.stderr);
    }
    let even = format!(
        "{}\nresource \"platform_k3s_cluster\" \"this\" {{\n  name = \"x\"\n  version = \"v1.29.1+k3s2\"\n  api_endpoint = \"https://10.0.0.1:6443\"\n  servers = {{\n    s1 = {{ host = \"10.0.0.1\", bootstrap = true }}\n    s2 = {{ host = \"10.0.0.2\" }}\n  }}\n  ssh {{\n    private_key_path = \"/k\"\n    known_hosts = \"\"\n  }}\n}}\n",
        required_providers!()
    );
    work.write_main_tf(&even);
    let out = work.plan();
    assert!(out.stderr.contains("Even number of servers") && out.stderr.contains("known_hosts"), "{}", out.stderr);
}

#[test]
fn k3s_standin_cluster_as_a_sudo_user_is_created_and_destroyed_and_a_sudo_password_is_refused() {
    let tf = oldest_terraform();
    // Hosts 0 and 1 make the cluster as a user with passwordless sudo; host 2 stays fresh for
    // a user whose sudo asks for a password.
    let hosts = Hosts::start(3);
    hosts.host(0).add_user("deploy", Sudo::NoPassword);
    hosts.host(1).add_user("deploy", Sudo::NoPassword);
    hosts.host(2).add_user("deploy", Sudo::Password);
    let as_deploy = |hcl: String| {
        assert!(hcl.contains("    private_key_path = "), "no private_key_path in:\n{hcl}");
        hcl.replace("    private_key_path = ", "    user             = \"deploy\"\n    private_key_path = ")
    };
    let cluster = K3sConfig::new(&hosts, &[("s1", 0)], &[("a1", 1)]);
    let standin = cluster.standin;
    let work = Workdir::without_cluster(&tf);
    work.write_main_tf(&as_deploy(cluster.hcl()));
    work.apply().assert_success();
    let nodes = nodes_output(&work);
    assert_node(&nodes, "s1", "server", V1);
    assert_node(&nodes, "a1", "agent", V1);
    // Logged in as deploy; what the provider wrote is root's, as if it had logged in as root.
    for i in 0..2 {
        let host = hosts.host(i);
        let log = std::fs::read_to_string(host.log_path()).unwrap();
        assert!(log.contains("Accepted publickey for deploy "), "{} was not reached as deploy:\n{log}", host.name());
        let stat = host.ssh("stat -c '%n %a %U %G' /usr/local/bin/k3s /etc/rancher/k3s/config.yaml");
        assert_eq!(
            stat.stdout,
            "/usr/local/bin/k3s 755 root root\n/etc/rancher/k3s/config.yaml 600 root root\n",
            "{}: {}",
            host.name(),
            stat.describe()
        );
    }
    let node_list = standin.kube_get(hosts.host(0), "/api/v1/nodes");
    assert_eq!(node_list["items"].as_array().unwrap().len(), 2, "{node_list}");
    work.assert_plan_empty();

    work.destroy().assert_success();
    for i in 0..2 {
        let host = hosts.host(i);
        assert_eq!(standin.events_named(host, "uninstall").len(), 1, "{} not uninstalled", host.name());
        let probe = host.ssh("test -e /usr/local/bin/k3s || test -e /etc/rancher/k3s/config.yaml; echo $?");
        assert_eq!(probe.stdout.trim(), "1", "{} still has k3s", host.name());
    }

    // A sudo that asks for a password: the apply fails fast, naming sudo and the host; nothing
    // is installed.
    let refused = K3sConfig::new(&hosts, &[("s1", 2)], &[]);
    let work = Workdir::without_cluster(&tf);
    // No `agents = {}`: with Terraform 1.0.3 the provider plans an empty agents map as null
    // ("planned for absense but config wants existence").
    let hcl = refused.hcl();
    assert!(hcl.contains("  agents = {\n  }\n"), "{hcl}");
    work.write_main_tf(&as_deploy(hcl.replace("  agents = {\n  }\n", "")));
    let started = std::time::Instant::now();
    let out = work.apply();
    let elapsed = started.elapsed();
    assert!(!out.success(), "apply with a password-asking sudo succeeded");
    let said = out.stderr.split_whitespace().collect::<Vec<_>>().join(" ");
    let address = hosts.host(2).address().to_string();
    assert!(said.contains("sudo") && said.contains(&address), "no sudo diagnostic naming {address}:\n{}", out.stderr);
    assert!(said.contains("NOPASSWD"), "no hint to allow sudo without a password:\n{}", out.stderr);
    assert!(elapsed < std::time::Duration::from_secs(60), "took {elapsed:?}");
    assert!(refused.standin.events_named(hosts.host(2), "start").is_empty(), "k3s started on host 2");
    assert!(!hosts.host(2).root_dir().join("usr/local/bin/k3s").exists(), "k3s installed on host 2");
}
