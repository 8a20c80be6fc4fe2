//! `platform_k3s_cluster`'s lifecycle on whatever `harness::k3s_nodes` gives: the node rig
//! with the k3s stand-in by default, real hosts when `TF_ACC_K3S_NODES` names them. So the
//! same assertions hold on both, everything is checked through the Kubernetes API (with the
//! cluster's own kubeconfig) and plain commands over SSH, never the stand-in's event logs;
//! order during the upgrade is watched on the Node list as it happens.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::harness::http::HttpClient;
use crate::harness::k3s_config::K3sConfig;
use crate::harness::k3s_nodes::{parse_nodes, K3sNodes, RealNode, RealNodes};
use crate::harness::k3s_standin::kubeconfig_credentials;
use crate::harness::kubectl::kubectl_program;
use crate::harness::{command_timeout, newest_terraform, run_command, CmdOutput, Workdir};

/// How often the upgrade's watcher lists the Nodes.
const POLL: Duration = Duration::from_millis(200);

/// What the test asserts of one Node.
#[derive(Debug, Clone, PartialEq, Eq)]
struct NodeState {
    kubelet_version: String,
    ready: bool,
    unschedulable: bool,
}

/// The cluster's API with the admin credentials of its `kubeconfig` attribute.
#[derive(Clone)]
struct Api {
    client: HttpClient,
    kubeconfig: String,
}

impl Api {
    #[track_caller]
    fn of(work: &Workdir) -> Api {
        let state = work.resource_values("platform_k3s_cluster.this").expect("the cluster in state");
        let kubeconfig = state["kubeconfig"].as_str().expect("a kubeconfig in state").to_string();
        let doc: serde_yaml::Value = serde_yaml::from_str(&kubeconfig).expect("kubeconfig YAML");
        let server = doc["clusters"][0]["cluster"]["server"].as_str().expect("a server in the kubeconfig");
        let (ca, cert, key) = kubeconfig_credentials(&kubeconfig).expect("kubeconfig credentials");
        let client = HttpClient::new(server, &ca, None, Some((&cert, &key))).expect("API client");
        Api { client, kubeconfig }
    }

    fn nodes(&self) -> Result<BTreeMap<String, NodeState>, String> {
        let response = self.client.get("/api/v1/nodes")?;
        if response.status != 200 {
            return Err(format!("GET /api/v1/nodes: {} {}", response.status, response.body));
        }
        let list: serde_json::Value = serde_json::from_str(&response.body).map_err(|e| e.to_string())?;
        let items = list["items"].as_array().ok_or("no items")?;
        Ok(items
            .iter()
            .map(|node| {
                let ready = node["status"]["conditions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True");
                let state = NodeState {
                    kubelet_version: node["status"]["nodeInfo"]["kubeletVersion"].as_str().unwrap_or("").to_string(),
                    ready,
                    unschedulable: node["spec"]["unschedulable"] == true,
                };
                (node["metadata"]["name"].as_str().unwrap_or("").to_string(), state)
            })
            .collect())
    }

    #[track_caller]
    fn assert_nodes(&self, expected: &[&str], version: &str) {
        let nodes = self.nodes().unwrap_or_else(|e| panic!("{e}"));
        let names: Vec<&str> = nodes.keys().map(String::as_str).collect();
        assert_eq!(names, expected, "{nodes:?}");
        for (name, state) in &nodes {
            let want = NodeState { kubelet_version: version.to_string(), ready: true, unschedulable: false };
            assert_eq!(state, &want, "Node {name}");
        }
    }

    /// `kubectl --kubeconfig <the cluster's kubeconfig> ARGS`, as a user of the cluster would.
    fn kubectl(&self, work: &Workdir, args: &[&str]) -> CmdOutput {
        let path = work.write_file("cluster.kubeconfig", &self.kubeconfig);
        let mut cmd = std::process::Command::new(kubectl_program());
        cmd.arg("--kubeconfig").arg(path).args(args).env_remove("KUBECONFIG");
        run_command(cmd, None, command_timeout())
    }
}

/// One observed change of a Node: ms since the watch started, its name, its new state
/// (`None`: gone).
type Transition = (u128, String, Option<NodeState>);

/// What a [`NodeWatch`] saw: each Node's changes, and every list (ms since the watch started)
/// in which more than one Node was cordoned.
struct Watched {
    transitions: Vec<Transition>,
    overlaps: Vec<(u128, Vec<String>)>,
}

/// Lists the Nodes every [`POLL`] on a thread until finished.
struct NodeWatch {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Watched>,
}

impl NodeWatch {
    fn start(api: &Api) -> NodeWatch {
        let (api, stop) = (api.clone(), Arc::new(AtomicBool::new(false)));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            let started = Instant::now();
            let mut last: BTreeMap<String, NodeState> = BTreeMap::new();
            let (mut transitions, mut overlaps) = (Vec::new(), Vec::new());
            // One more list after the stop: the state the apply left.
            let mut finishing = false;
            loop {
                finishing |= stopped.load(Ordering::SeqCst);
                // A server restarting can make the API fail for a while; such lists are skipped.
                if let Ok(nodes) = api.nodes() {
                    let ms = started.elapsed().as_millis();
                    for (name, state) in &nodes {
                        if last.get(name) != Some(state) {
                            transitions.push((ms, name.clone(), Some(state.clone())));
                        }
                    }
                    for name in last.keys().filter(|n| !nodes.contains_key(*n)) {
                        transitions.push((ms, name.clone(), None));
                    }
                    let cordoned: Vec<String> =
                        nodes.iter().filter(|(_, s)| s.unschedulable).map(|(n, _)| n.clone()).collect();
                    if cordoned.len() > 1 {
                        overlaps.push((ms, cordoned));
                    }
                    last = nodes;
                    if finishing {
                        return Watched { transitions, overlaps };
                    }
                }
                std::thread::sleep(POLL);
            }
        });
        NodeWatch { stop, thread }
    }

    fn finish(self) -> Watched {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.join().expect("the Node watch panicked")
    }
}

/// On real hosts, a failed test still uninstalls what it can: the hosts are someone's.
struct DestroyOnPanic<'a> {
    work: &'a Workdir,
    real: bool,
}

impl Drop for DestroyOnPanic<'_> {
    fn drop(&mut self) {
        if self.real && std::thread::panicking() {
            eprintln!("acceptance: the test failed; destroying the cluster on the real hosts");
            let _ = self.work.destroy();
        }
    }
}

#[test]
fn k3s_cluster_lifecycle_on_the_rig_or_on_tf_acc_k3s_nodes() {
    let started = Instant::now();
    let tf = newest_terraform();
    let nodes = K3sNodes::from_env_or_rig(5);
    let (from, to) = nodes.versions();
    let mut cluster = K3sConfig::new(&nodes, &[("s1", 0), ("s2", 1), ("s3", 2)], &[("a1", 3)]);
    cluster.version = from.to_string();
    cluster.with_namespace = Some("apps".to_string());
    // The cluster is imported below; imported clusters are kept on destroy unless asked.
    cluster.extra = "  on_destroy = \"uninstall\"\n".to_string();
    let work = Workdir::without_cluster(&tf);
    let _cleanup = DestroyOnPanic { work: &work, real: !nodes.is_rig() };

    // One apply: 3 servers, an agent, and a namespace on the new cluster through `connection`.
    work.write_main_tf(&cluster.hcl());
    work.apply().assert_success();
    let api = Api::of(&work);
    api.assert_nodes(&["a1", "s1", "s2", "s3"], from);
    let namespace = api.kubectl(&work, &["get", "namespace", "apps", "-o", "json"]);
    assert_eq!(namespace.assert_success().json()["status"]["phase"], "Active", "{}", namespace.stdout);
    for index in 0..4 {
        let mode = nodes.ssh(index, "stat -c %a /etc/rancher/k3s/config.yaml");
        assert_eq!(mode.stdout.trim(), "600", "config.yaml on node {index}: {}", mode.describe());
    }
    work.assert_plan_empty();

    // An agent joins and leaves again: its Node goes and its host has no k3s left.
    if nodes.len() >= 5 {
        cluster.agents.push(("a2", 4));
        work.write_main_tf(&cluster.hcl());
        work.apply().assert_success();
        api.assert_nodes(&["a1", "a2", "s1", "s2", "s3"], from);
        cluster.agents.pop();
        work.write_main_tf(&cluster.hcl());
        work.apply().assert_success();
        api.assert_nodes(&["a1", "s1", "s2", "s3"], from);
        nodes.ssh(4, "test ! -e /usr/local/bin/k3s").assert_success();
    } else {
        eprintln!("acceptance: TF_ACC_K3S_NODES names 4 hosts; adding and removing an agent needs a 5th");
    }

    // The upgrade, watched on the Node list: servers in their order, then the agent, each back
    // Ready on the new version and uncordoned before the next is touched; never two cordoned.
    cluster.version = to.to_string();
    work.write_main_tf(&cluster.hcl());
    let watch = NodeWatch::start(&api);
    let applied = work.apply();
    let Watched { transitions, overlaps } = watch.finish();
    applied.assert_success();
    eprintln!("acceptance: Node changes during the upgrade: {transitions:#?}");
    assert!(overlaps.is_empty(), "more than one Node cordoned at once: {overlaps:?}");
    let order: Vec<&str> = cluster.servers.iter().chain(&cluster.agents).map(|(key, _)| *key).collect();
    let upgraded = NodeState { kubelet_version: to.to_string(), ready: true, unschedulable: false };
    let untouched = NodeState { kubelet_version: from.to_string(), ready: true, unschedulable: false };
    let of = |name: &'static str| transitions.iter().filter(move |(_, n, _)| n == name);
    let mut windows = Vec::new();
    for name in &order {
        let touched = of(name).find(|(_, _, s)| s.as_ref() != Some(&untouched)).map(|t| t.0);
        let done = of(name).find(|(_, _, s)| s.as_ref() == Some(&upgraded)).map(|t| t.0);
        let (Some(touched), Some(done)) = (touched, done) else {
            panic!("{name} not seen going to {to}: {transitions:?}")
        };
        windows.push((*name, touched, done));
    }
    for pair in windows.windows(2) {
        let ((a, _, a_done), (b, b_touched, _)) = (pair[0], pair[1]);
        assert!(a_done <= b_touched, "{b} was touched before {a} was back on {to}: {windows:?}");
    }
    // The API's server may be down while it is cordoned; every other node must be seen cordoned.
    for name in &order[1..] {
        assert!(of(name).any(|(_, _, s)| s.as_ref().is_some_and(|s| s.unschedulable)), "{name} never seen cordoned");
    }
    api.assert_nodes(&["a1", "s1", "s2", "s3"], to);
    work.assert_plan_empty();

    // Import by name into a fresh state; adopting the configured nodes changes none of them.
    work.run(&["state", "rm", "platform_namespace.apps", "platform_k3s_cluster.this"]).assert_success();
    cluster.with_namespace = None;
    work.write_main_tf(&cluster.hcl());
    work.import("platform_k3s_cluster.this", "acc").assert_success();
    let watch = NodeWatch::start(&api);
    let adopted = work.apply();
    let Watched { transitions, .. } = watch.finish();
    adopted.assert_success();
    let changed: Vec<&Transition> = transitions.iter().filter(|(_, _, s)| s.as_ref() != Some(&upgraded)).collect();
    assert!(changed.is_empty(), "adoption changed Nodes: {changed:?}");
    work.assert_plan_empty();

    // Destroy: no host keeps k3s.
    work.destroy().assert_success();
    for index in 0..nodes.len().min(5) {
        let probe = nodes.ssh(index, "test ! -e /usr/local/bin/k3s && test ! -e /etc/rancher/k3s/config.yaml");
        assert!(probe.success(), "node {index} still has k3s: {}", probe.describe());
    }
    eprintln!(
        "acceptance: k3s lifecycle on {} in {:.1?}",
        if nodes.is_rig() { "the rig" } else { "TF_ACC_K3S_NODES" },
        started.elapsed()
    );
}

#[test]
fn tf_acc_k3s_nodes_and_its_companions_are_parsed_or_refused_naming_the_variable() {
    assert_eq!(
        parse_nodes("root@10.0.0.1, ubuntu@10.0.0.2,10.0.0.3").unwrap(),
        [("root", "10.0.0.1"), ("ubuntu", "10.0.0.2"), ("root", "10.0.0.3")]
            .map(|(user, address)| RealNode { user: user.into(), address: address.into() })
    );
    for bad in ["10.0.0.1,,10.0.0.2", "@10.0.0.1", "root@", "a b@10.0.0.1", "10.0.0.1,10.0.0.1", "x@y@z"] {
        assert!(parse_nodes(bad).is_err(), "{bad:?} accepted");
    }

    let vars = |pairs: &[(&str, &str)]| {
        let pairs: Vec<(String, String)> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    };
    let complete = [
        ("TF_ACC_K3S_NODES", "deploy@n1,deploy@n2,deploy@n3,deploy@n4"),
        ("TF_ACC_K3S_SSH_KEY", "/keys/id"),
        ("TF_ACC_K3S_KNOWN_HOSTS", "/keys/known_hosts"),
        ("TF_ACC_K3S_VERSIONS", "v1.29.1+k3s2,v1.30.0+k3s1"),
    ];
    assert_eq!(RealNodes::from_vars(vars(&[])).unwrap(), None);
    assert_eq!(RealNodes::from_vars(vars(&[("TF_ACC_K3S_NODES", " ")])).unwrap(), None);
    let real = RealNodes::from_vars(vars(&complete)).unwrap().unwrap();
    assert_eq!(real.nodes.len(), 4);
    assert_eq!(real.versions, ("v1.29.1+k3s2".to_string(), "v1.30.0+k3s1".to_string()));
    assert_eq!(real.script_url, None);

    let refused = |change: (&str, &str), variable: &str| {
        let mut pairs: Vec<(&str, &str)> = complete.iter().copied().filter(|(k, _)| *k != change.0).collect();
        if !change.1.is_empty() {
            pairs.push(change);
        }
        let error = RealNodes::from_vars(vars(&pairs)).expect_err(&format!("{change:?} accepted"));
        assert!(error.contains(variable), "{change:?}: {error:?} does not name {variable}");
    };
    refused(("TF_ACC_K3S_NODES", "n1,n2,n3"), "TF_ACC_K3S_NODES");
    refused(("TF_ACC_K3S_NODES", "root@n1,ubuntu@n2,n3,n4"), "TF_ACC_K3S_NODES");
    refused(("TF_ACC_K3S_NODES", "n1;n2,n3,n4,n5"), "TF_ACC_K3S_NODES");
    refused(("TF_ACC_K3S_SSH_KEY", ""), "TF_ACC_K3S_SSH_KEY");
    refused(("TF_ACC_K3S_KNOWN_HOSTS", ""), "TF_ACC_K3S_KNOWN_HOSTS");
    refused(("TF_ACC_K3S_VERSIONS", ""), "TF_ACC_K3S_VERSIONS");
    refused(("TF_ACC_K3S_VERSIONS", "v1.29.1+k3s2"), "TF_ACC_K3S_VERSIONS");
    refused(("TF_ACC_K3S_VERSIONS", "v1.30.0+k3s1,v1.29.1+k3s2"), "TF_ACC_K3S_VERSIONS");
    refused(("TF_ACC_K3S_VERSIONS", "v1.29.1+k3s2,v1.31.0+k3s1"), "TF_ACC_K3S_VERSIONS");
    refused(("TF_ACC_K3S_VERSIONS", "1.29.1,1.30.0"), "TF_ACC_K3S_VERSIONS");
    refused(("TF_ACC_K3S_INSTALL_SCRIPT_URL", "get.k3s.io"), "TF_ACC_K3S_INSTALL_SCRIPT_URL");
}
