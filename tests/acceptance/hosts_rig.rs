//! Self-test of the node rig (`harness::hosts`): three hosts, each with its own address,
//! hostname and files, reachable over SSH with strict host-key checking and from each other,
//! and gone from `ip netns` / `ip link` once dropped.

use std::process::Command;

use crate::harness::hosts::Hosts;

#[test]
fn hosts_rig_addresses_files_host_keys_and_cleanup() {
    let hosts = Hosts::start(3);
    assert_eq!(hosts.len(), 3);

    for i in 0..3 {
        let host = hosts.host(i);
        let out = hosts.host(i).ssh("hostname; ip -4 -o addr show dev eth0");
        out.assert_success();
        let mut lines = out.stdout.lines();
        assert_eq!(lines.next(), Some(host.name()), "{}", out.describe());
        let inet = format!("inet {}/24", host.address());
        assert!(out.stdout.contains(&inet), "host {i} does not show {inet}:\n{}", out.describe());
        for other in (0..3).filter(|&j| j != i) {
            assert_ne!(host.address(), hosts.host(other).address());
            assert_ne!(host.name(), hosts.host(other).name());
        }
    }

    // Host to host, on the rig's bridge.
    let target = hosts.host(1).address();
    hosts.host(0).ssh(&format!("bash -c 'echo > /dev/tcp/{target}/22'")).assert_success();

    // Each host's files are its own.
    hosts.host(0).ssh("mkdir -p /etc/rancher && echo node0 > /etc/rancher/marker").assert_success();
    assert_eq!(hosts.host(0).ssh("cat /etc/rancher/marker").assert_success().stdout, "node0\n");
    assert_eq!(std::fs::read_to_string(hosts.host(0).root_dir().join("etc/rancher/marker")).unwrap(), "node0\n");
    let out = hosts.host(1).ssh("test ! -e /etc/rancher/marker && echo absent");
    assert_eq!(out.assert_success().stdout, "absent\n");
    assert!(!hosts.host(1).root_dir().join("etc/rancher/marker").exists());
    assert!(!std::path::Path::new("/etc/rancher/marker").exists(), "host 0 wrote to the real /etc");

    // A wrong host key for host 2 is refused.
    let wrong = hosts.dir().join("wrong_known_hosts");
    let other_key = hosts.host(0).host_key_pub();
    assert_ne!(other_key, hosts.host(2).host_key_pub());
    std::fs::write(&wrong, format!("{} {other_key}\n", hosts.host(2).address())).unwrap();
    let out = hosts.host(2).ssh_with_known_hosts(&wrong, "echo should-not-run");
    assert!(!out.success(), "ssh accepted a wrong host key:\n{}", out.describe());
    assert!(
        out.stderr.contains("REMOTE HOST IDENTIFICATION HAS CHANGED")
            || out.stderr.contains("Host key verification failed"),
        "{}",
        out.describe()
    );
    assert!(!out.stdout.contains("should-not-run"));
    assert!(hosts.private_key_pem().starts_with("-----BEGIN OPENSSH PRIVATE KEY-----"));
    assert!(hosts.known_hosts_path().exists() && hosts.private_key_path().exists());
    hosts.assert_alive();

    let names: Vec<String> = hosts.hosts().iter().map(|h| h.name().to_string()).collect();
    let bridge = hosts.bridge().to_string();
    drop(hosts);
    let netns = Command::new("ip").args(["netns", "list"]).output().expect("ip netns list");
    let netns = String::from_utf8_lossy(&netns.stdout);
    for name in &names {
        assert!(!netns.lines().any(|l| l.split_whitespace().next() == Some(name)), "{name} left:\n{netns}");
    }
    let link = Command::new("ip").args(["link", "show", &bridge]).output().expect("ip link show");
    assert!(!link.status.success(), "bridge {bridge} left behind");
}
