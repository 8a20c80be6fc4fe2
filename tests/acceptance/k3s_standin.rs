//! Self-test of the k3s stand-in (`harness::k3s_standin`) on the node rig, driven with plain
//! `host.ssh(...)` exactly as the k3s host contract says (no provider): install script piped
//! to `sh -s -` (download and binary-upload modes), config.yaml, the service commands, a
//! cluster of a bootstrap server, a joining server and an agent, upgrades, a wrong token, the
//! fault file, etcd snapshots and uninstall.

use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};
use sha2::Digest as _;

use crate::harness::hosts::{Host, Hosts};
use crate::harness::http::HttpClient;
use crate::harness::k3s_standin::{kubeconfig_credentials, Event, K3sStandin, VERSIONS};
use crate::harness::{plain_http, wait_until, CmdOutput};

const OLD: &str = "v1.29.1+k3s2";
const NEW: &str = "v1.30.2+k3s1";
/// How long a server may take from install to a Ready Node (etcd + kube-apiserver start).
const SERVER_READY: Duration = Duration::from_secs(240);
const AGENT_READY: Duration = Duration::from_secs(90);

/// Writes `/etc/rancher/k3s/config.yaml` (mode 0600) as the provider does: serde_yaml of a map.
#[track_caller]
fn write_config(host: &Host, config: Value) {
    let yaml = serde_yaml::to_string(&config).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD.encode(yaml);
    host.ssh(&format!(
        "mkdir -p /etc/rancher/k3s && umask 077 && echo '{b64}' | base64 -d > /etc/rancher/k3s/config.yaml && \
         chmod 0600 /etc/rancher/k3s/config.yaml"
    ))
    .assert_success();
}

/// The Node `name` seen through `client` once it is Ready=True with kubelet `version`.
#[track_caller]
fn wait_node_ready(client: &HttpClient, name: &str, version: &str, timeout: Duration) -> Value {
    wait_until(&format!("Node {name} Ready with kubelet {version}"), timeout, || {
        let r = client.get(&format!("/api/v1/nodes/{name}"))?;
        if !r.ok() {
            return Err(format!("HTTP {}: {}", r.status, r.body));
        }
        let node = r.json();
        let kubelet = node["status"]["nodeInfo"]["kubeletVersion"].as_str().unwrap_or_default().to_string();
        match ready_status(&node).as_deref() {
            Some("True") if kubelet == version => Ok(node),
            other => Err(format!("Ready={other:?} kubelet={kubelet}")),
        }
    })
}

fn ready_status(node: &Value) -> Option<String> {
    node["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Ready")
        .and_then(|c| c["status"].as_str().map(str::to_string))
}

/// The admin client of a server once its k3s.yaml exists and its API answers `/readyz` `ok`.
#[track_caller]
fn wait_api(standin: &K3sStandin, host: &Host, timeout: Duration) -> HttpClient {
    wait_until(&format!("the API of {} ({})", host.name(), host.address()), timeout, || {
        let client = standin.admin_client(host)?;
        let r = client.get("/readyz")?;
        if r.ok() && r.body.trim() == "ok" {
            Ok(client)
        } else {
            Err(format!("HTTP {}: {}", r.status, r.body))
        }
    })
}

fn short_events(events: &[Event]) -> Vec<String> {
    events.iter().map(Event::short).collect()
}

/// Asserts that `wanted` appear in this order among the events after index `from`.
#[track_caller]
fn assert_in_order(events: &[Event], from: usize, wanted: &[&str]) {
    let shorts = short_events(&events[from..]);
    let mut pos = 0;
    for w in wanted {
        match shorts[pos..].iter().position(|s| s == w) {
            Some(i) => pos += i + 1,
            None => panic!("event {w:?} missing or out of order in {shorts:?} (wanted {wanted:?})"),
        }
    }
    for pair in events.windows(2) {
        assert!(pair[0].unix_ms <= pair[1].unix_ms, "event times go backwards: {events:?}");
    }
}

#[track_caller]
fn etcd_members(host: &Host) -> Vec<Value> {
    let out = host.ssh("curl -sS --fail -X POST -d '{}' http://127.0.0.1:2379/v3/cluster/member/list");
    out.assert_success().json()["members"].as_array().cloned().unwrap_or_default()
}

#[track_caller]
fn is_active(host: &Host, unit: &str) -> CmdOutput {
    host.ssh(&format!("systemctl is-active {unit}"))
}

#[test]
fn k3s_standin_install_script_releases_fault_file_and_uninstall() {
    let standin = K3sStandin::prepare();

    // The script the provider fetches is the one the harness assembled.
    let url = standin.install_script_url();
    let port: u16 = url.trim_start_matches("http://127.0.0.1:").split('/').next().unwrap().parse().unwrap();
    let resp = plain_http::request("127.0.0.1", port, "GET", "/install.sh", &[], b"", Duration::from_secs(10)).unwrap();
    assert_eq!(resp.status, 200);
    assert_eq!(resp.text(), standin.install_script());
    assert!(standin.install_script().contains(&standin.release_dir().display().to_string()));
    assert!(!standin.install_script().contains("@K3S_STANDIN"), "unreplaced placeholder in the script");
    for version in VERSIONS {
        let binary = standin.binary(version);
        let bytes = std::fs::read(&binary).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.contains(&format!("VERSION = \"{version}\"")) && !text.contains("@K3S_STANDIN"));
        let sum = hex::encode(sha2::Sha256::digest(&bytes));
        assert_eq!(standin.binary_sha256(version), sum);
        let listed = std::fs::read_to_string(binary.with_file_name("sha256sum-amd64.txt")).unwrap();
        assert_eq!(listed, format!("{sum}  k3s\n"));
    }

    let hosts = Hosts::start(1);
    let host = hosts.host(0);

    // A version that does not exist: non-zero, message on stderr, nothing installed.
    let out = host.ssh(&standin.install_command("v9.9.9+k3s1", "server", false));
    out.assert_failure_contains("v9.9.9+k3s1");
    assert!(out.stderr.contains("not found"), "{}", out.describe());
    assert!(!host.root_dir().join("usr/local/bin/k3s").exists());
    // Skip-download without an uploaded binary.
    host.ssh(&standin.install_command("", "server", true)).assert_failure_contains("/usr/local/bin/k3s");

    // Binary mode: the provider uploads the binary, then runs the script with skip-download.
    standin.upload_binary(host, "v1.28.9+k3s1").assert_success();
    let out = host.ssh("k3s --version");
    let mut lines = out.assert_success().stdout.lines();
    let first = lines.next().unwrap();
    let commit = first.strip_prefix("k3s version v1.28.9+k3s1 (").and_then(|r| r.strip_suffix(')')).unwrap_or("");
    assert!(commit.len() >= 8 && commit.chars().all(|c| c.is_ascii_hexdigit()), "{}", out.describe());
    assert_eq!(lines.next(), Some("go version go1.21.6"));

    // The fault file: the start fails, quoting it, and the unit is "failed".
    write_config(host, json!({"cluster-init": true, "node-name": "solo", "tls-san": [host.address().to_string()]}));
    standin.fail_start(host, "disk on fire (injected)");
    let out = host.ssh(&standin.install_command("v1.28.9+k3s1", "server", true));
    out.assert_failure_contains("k3s.service failed");
    let out = is_active(host, "k3s");
    assert!(!out.success());
    assert_eq!(out.stdout.trim(), "failed");
    let journal = host.ssh("journalctl -u k3s -n 30 --no-pager");
    assert!(journal.assert_success().stdout.contains("disk on fire (injected)"), "{}", journal.describe());
    for file in ["usr/local/bin/k3s-uninstall.sh", "usr/local/bin/k3s-killall.sh", "etc/systemd/system/k3s.service"] {
        assert!(host.root_dir().join(file).exists(), "{file} not installed");
    }

    // Cleared: a plain start works; stop makes it inactive, with events in order.
    standin.clear_fail_start(host);
    host.ssh("systemctl start k3s").assert_success();
    assert_eq!(is_active(host, "k3s").assert_success().stdout.trim(), "active");
    // Wait for the server to be up before stopping it, so the stop is a normal one.
    let client = wait_api(standin, host, SERVER_READY);
    wait_node_ready(&client, "solo", "v1.28.9+k3s1", SERVER_READY);
    host.ssh("systemctl stop k3s").assert_success();
    let out = is_active(host, "k3s");
    assert_eq!((out.success(), out.stdout.trim()), (false, "inactive"));
    let events = standin.events(host);
    assert_in_order(
        &events,
        0,
        &["install v1.28.9+k3s1", "start-failed v1.28.9+k3s1", "start v1.28.9+k3s1", "ready v1.28.9+k3s1"],
    );
    let stop = events.last().unwrap();
    assert_eq!(
        (stop.name.as_str(), stop.version(), stop.field("unschedulable")),
        ("stop", "v1.28.9+k3s1", Some("false"))
    );
    let failed = events.iter().find(|e| e.name == "start-failed").unwrap();
    assert!(failed.details.contains("disk on fire"), "{failed:?}");

    // Uninstall removes the binary, scripts, config and data.
    host.ssh("/usr/local/bin/k3s-uninstall.sh").assert_success();
    for gone in [
        "/usr/local/bin/k3s",
        "/usr/local/bin/k3s-killall.sh",
        "/usr/local/bin/k3s-uninstall.sh",
        "/etc/rancher/k3s",
        "/var/lib/rancher/k3s",
    ] {
        host.ssh(&format!("test ! -e {gone}")).assert_success();
    }
    assert_eq!(is_active(host, "k3s").stdout.trim(), "inactive");
    assert_eq!(standin.events(host).last().unwrap().short(), "uninstall k3s");
    hosts.assert_alive();
}

#[test]
fn k3s_standin_cluster_join_upgrade_wrong_token_snapshot_uninstall() {
    let standin = K3sStandin::prepare();
    let hosts = Hosts::start(3);
    let (s0, s1, a0) = (hosts.host(0), hosts.host(1), hosts.host(2));
    let endpoint = format!("https://{}:6443", s0.address());

    // Bootstrap server (download mode), no token in its config: it generates one.
    let t0 = Instant::now();
    write_config(
        s0,
        json!({"cluster-init": true, "tls-san": [s0.address().to_string()], "node-name": "server-0",
               "node-label": ["tier=control"], "write-kubeconfig-mode": "0600"}),
    );
    standin.assert_install(s0, OLD, "server", false);
    let api0 = wait_api(standin, s0, SERVER_READY);
    let node = wait_node_ready(&api0, "server-0", OLD, SERVER_READY);
    eprintln!("acceptance: k3s stand-in bootstrap server Ready {:.1?} after install", t0.elapsed());
    let labels = &node["metadata"]["labels"];
    for role in ["control-plane", "master", "etcd"] {
        assert_eq!(labels[format!("node-role.kubernetes.io/{role}")], "true", "{labels}");
    }
    assert_eq!(labels["tier"], "control");
    let addresses = node["status"]["addresses"].to_string();
    assert!(addresses.contains(&s0.address().to_string()), "{addresses}");

    // k3s.yaml and the token as the contract says.
    let kubeconfig = standin.kubeconfig(s0).unwrap();
    assert!(kubeconfig.contains("server: https://127.0.0.1:6443"), "{kubeconfig}");
    let (ca_pem, cert_pem, _) = kubeconfig_credentials(&kubeconfig).unwrap();
    let subject = s0.ssh(&format!(
        "echo '{}' | base64 -d | openssl x509 -noout -subject",
        base64::engine::general_purpose::STANDARD.encode(&cert_pem)
    ));
    assert!(subject.assert_success().stdout.contains("O = system:masters"), "{}", subject.describe());
    let mode = s0.ssh("stat -c %a /etc/rancher/k3s/k3s.yaml");
    assert_eq!(mode.assert_success().stdout.trim(), "600");
    let token = standin.token(s0).expect("server token");
    let ca_hash = hex::encode(sha2::Sha256::digest(ca_pem.as_bytes()));
    let secret = token.strip_prefix(&format!("K10{ca_hash}::server:")).unwrap_or_else(|| panic!("token {token}"));
    assert!(!secret.is_empty());
    // The serving certificate holds the tls-san, the node address, 127.0.0.1 and localhost.
    let sans = s0
        .ssh("openssl x509 -noout -ext subjectAltName -in /var/lib/rancher/k3s/server/tls/serving-kube-apiserver.crt");
    for san in [format!("IP Address:{}", s0.address()), "IP Address:127.0.0.1".into(), "DNS:localhost".into()] {
        assert!(sans.assert_success().stdout.contains(&san), "{san} missing: {}", sans.stdout);
    }
    assert_eq!(is_active(s0, "k3s").assert_success().stdout.trim(), "active");
    let out = s0.ssh("k3s kubectl get node server-0 -o jsonpath='{.status.nodeInfo.kubeletVersion}'");
    assert_eq!(out.assert_success().stdout.trim(), OLD);

    // Joining server with the full token.
    let t1 = Instant::now();
    write_config(
        s1,
        json!({"server": endpoint, "token": token, "tls-san": [s0.address().to_string()], "node-name": "server-1"}),
    );
    standin.assert_install(s1, OLD, "server", false);
    let api1 = wait_api(standin, s1, SERVER_READY);
    wait_node_ready(&api0, "server-1", OLD, SERVER_READY);
    eprintln!("acceptance: k3s stand-in joining server Ready {:.1?} after install", t1.elapsed());
    assert_eq!(etcd_members(s0).len(), 2, "{:?}", etcd_members(s0));
    assert_eq!(standin.token(s1).as_deref(), Some(token.as_str()));

    // Agent in binary mode with the short token form.
    let t2 = Instant::now();
    write_config(
        a0,
        json!({"server": endpoint, "token": secret, "node-name": "agent-0", "node-label": ["pool=blue", "zone=z1"]}),
    );
    standin.upload_binary(a0, OLD).assert_success();
    standin.assert_install(a0, OLD, "agent", true);
    let agent = wait_node_ready(&api1, "agent-0", OLD, AGENT_READY);
    eprintln!("acceptance: k3s stand-in agent Ready {:.1?} after install", t2.elapsed());
    let labels = &agent["metadata"]["labels"];
    assert_eq!((labels["pool"].as_str(), labels["zone"].as_str()), (Some("blue"), Some("z1")));
    assert!(labels.get("node-role.kubernetes.io/control-plane").is_none(), "{labels}");
    assert_eq!(is_active(a0, "k3s-agent").assert_success().stdout.trim(), "active");
    assert!(!a0.root_dir().join("usr/local/bin/k3s-uninstall.sh").exists());

    // Both servers serve the same objects.
    let nodes = |api: &HttpClient| -> Vec<String> {
        let mut names: Vec<String> = api.get("/api/v1/nodes").unwrap().json()["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["metadata"]["name"].as_str().unwrap().to_string())
            .collect();
        names.sort();
        names
    };
    assert_eq!(nodes(&api0), ["agent-0", "server-0", "server-1"]);
    assert_eq!(nodes(&api1), nodes(&api0));
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "shared"}, "data": {"k": "v"}});
    let r = api0
        .request(
            "POST",
            "/api/v1/namespaces/default/configmaps",
            Some("application/json"),
            Some(cm.to_string().as_bytes()),
        )
        .unwrap();
    assert!(r.ok(), "{}", r.body);
    let r = api1.get("/api/v1/namespaces/default/configmaps/shared").unwrap();
    assert_eq!((r.status, r.json()["data"]["k"].clone()), (200, json!("v")));

    // The "kubelet" runs pods bound to it and finishes deleted ones (drain). The controller
    // manager makes the namespace's default service account first.
    wait_until("service account default/default", Duration::from_secs(60), || {
        match api0.get("/api/v1/namespaces/default/serviceaccounts/default")?.status {
            200 => Ok(()),
            s => Err(format!("HTTP {s}")),
        }
    });
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "workload"},
                     "spec": {"nodeName": "agent-0", "containers": [{"name": "c", "image": "busybox"}]}});
    let r = api0
        .request("POST", "/api/v1/namespaces/default/pods", Some("application/json"), Some(pod.to_string().as_bytes()))
        .unwrap();
    assert!(r.ok(), "{}", r.body);
    wait_until("pod workload Running", Duration::from_secs(30), || {
        let p = api0.get("/api/v1/namespaces/default/pods/workload")?.json();
        if p["status"]["phase"] == "Running" {
            Ok(())
        } else {
            Err(p["status"].to_string())
        }
    });
    let r = api0.request("DELETE", "/api/v1/namespaces/default/pods/workload", None, None).unwrap();
    assert!(r.ok(), "{}", r.body);
    wait_until("pod workload gone", Duration::from_secs(30), || {
        match api0.get("/api/v1/namespaces/default/pods/workload")?.status {
            404 => Ok(()),
            s => Err(format!("HTTP {s}")),
        }
    });

    // Upgrade of the cordoned agent: re-run the script with another version.
    let patch = json!({"spec": {"unschedulable": true}}).to_string();
    let r = api0
        .request("PATCH", "/api/v1/nodes/agent-0", Some("application/merge-patch+json"), Some(patch.as_bytes()))
        .unwrap();
    assert!(r.ok(), "{}", r.body);
    let before = standin.events(a0).len();
    standin.assert_install(a0, NEW, "agent", false);
    wait_node_ready(&api0, "agent-0", NEW, AGENT_READY);
    let events = standin.events(a0);
    assert_in_order(
        &events,
        before,
        &[&format!("install {NEW}"), &format!("stop {OLD}"), &format!("start {NEW}"), &format!("ready {NEW}")],
    );
    let stop = events[before..].iter().find(|e| e.name == "stop").unwrap();
    assert_eq!(stop.field("unschedulable"), Some("true"), "{stop:?}");
    assert_eq!(a0.ssh("k3s --version").assert_success().stdout.lines().next().unwrap().split(' ').nth(2), Some(NEW));

    // Upgrade of the joined server: etcd restarts from its data, the API comes back.
    let before = standin.events(s1).len();
    let t3 = Instant::now();
    standin.assert_install(s1, NEW, "server", false);
    wait_node_ready(&api0, "server-1", NEW, SERVER_READY);
    let api1 = wait_api(standin, s1, SERVER_READY);
    eprintln!("acceptance: k3s stand-in server upgrade Ready {:.1?} after install", t3.elapsed());
    assert_in_order(
        &standin.events(s1),
        before,
        &[&format!("stop {OLD}"), &format!("start {NEW}"), &format!("ready {NEW}")],
    );
    assert_eq!(api1.get("/api/v1/namespaces/default/configmaps/shared").unwrap().status, 200);
    assert_eq!(etcd_members(s1).len(), 2);

    // Snapshot on a server.
    let out = s0.ssh("k3s etcd-snapshot save --name nightly");
    let path = out.assert_success().stdout.lines().last().unwrap_or_default().trim().to_string();
    assert!(path.starts_with("/var/lib/rancher/k3s/server/db/snapshots/nightly-server-0-"), "{}", out.describe());
    let size = s0.ssh(&format!("stat -c %s '{path}'"));
    assert!(size.assert_success().stdout.trim().parse::<u64>().unwrap() > 1000, "snapshot too small: {}", size.stdout);

    // Stopping the agent marks its Node not Ready.
    a0.ssh("systemctl stop k3s-agent").assert_success();
    assert_eq!(is_active(a0, "k3s-agent").stdout.trim(), "inactive");
    let node = api0.get("/api/v1/nodes/agent-0").unwrap().json();
    assert_ne!(ready_status(&node).as_deref(), Some("True"), "{}", node["status"]["conditions"]);

    // Wrong token: the agent's start fails, the log says "token".
    a0.ssh("/usr/local/bin/k3s-agent-uninstall.sh").assert_success();
    a0.ssh("test ! -e /usr/local/bin/k3s && test ! -e /var/lib/rancher/k3s").assert_success();
    let wrong = format!("K10{ca_hash}::server:not-the-secret");
    write_config(a0, json!({"server": endpoint, "token": wrong, "node-name": "agent-0"}));
    let out = a0.ssh(&standin.install_command(NEW, "agent", false));
    assert!(!out.success(), "install with a wrong token succeeded:\n{}", out.describe());
    let journal = a0.ssh("journalctl -u k3s-agent -n 30 --no-pager").assert_success().stdout.clone();
    let line = journal.lines().rev().find(|l| l.contains("level=fatal")).unwrap_or_else(|| panic!("{journal}"));
    assert!(line.contains("failed to validate token"), "{line}");
    assert_eq!(is_active(a0, "k3s-agent").stdout.trim(), "failed");
    // Same for a joining server given only a wrong short token (another host's files are clean).
    write_config(a0, json!({"server": endpoint, "token": "nope", "node-name": "server-x"}));
    a0.ssh(&standin.install_command(NEW, "server", false)).assert_failure_contains("k3s.service failed");
    let journal = a0.ssh("journalctl -u k3s -n 30 --no-pager").assert_success().stdout.clone();
    assert!(journal.contains("failed to validate token"), "{journal}");
    assert_eq!(etcd_members(s0).len(), 2, "a failed join must not add an etcd member");

    // Uninstall of the joined server: its etcd member leaves, the first server keeps working.
    let r = api0.request("DELETE", "/api/v1/nodes/server-1", None, None).unwrap();
    assert!(r.ok(), "{}", r.body);
    s1.ssh("/usr/local/bin/k3s-uninstall.sh").assert_success();
    for gone in ["/usr/local/bin/k3s", "/usr/local/bin/k3s-killall.sh", "/etc/rancher/k3s", "/var/lib/rancher/k3s"] {
        s1.ssh(&format!("test ! -e {gone}")).assert_success();
    }
    let members = etcd_members(s0);
    assert_eq!(members.len(), 1, "{members:?}");
    assert!(members[0]["name"].as_str().unwrap().starts_with("server-0-"), "{members:?}");
    assert_eq!(standin.events(s1).last().unwrap().short(), "uninstall k3s");
    let api0 = wait_api(standin, s0, Duration::from_secs(60));
    assert_eq!(api0.get("/api/v1/namespaces/default/configmaps/shared").unwrap().status, 200);
    assert_eq!(nodes(&api0), ["agent-0", "server-0"]);
    hosts.assert_alive();
}
