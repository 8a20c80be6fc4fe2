//! Where a backend-neutral k3s test runs its cluster: the node rig with the k3s stand-in (the
//! default, so CI runs it), or real hosts named by `TF_ACC_K3S_NODES`:
//! - `TF_ACC_K3S_NODES`: comma-separated `user@address` or `address` (user root), at least 4;
//!   one user for all (the provider's `ssh.user` is per cluster); a user other than root needs
//!   passwordless sudo;
//! - `TF_ACC_K3S_SSH_KEY`: the private key file that user logs in with;
//! - `TF_ACC_K3S_KNOWN_HOSTS`: a known_hosts file with every node's host key;
//! - `TF_ACC_K3S_VERSIONS`: two k3s releases, the second newer and at most one minor on, e.g.
//!   `v1.29.1+k3s2,v1.30.0+k3s1`;
//! - `TF_ACC_K3S_INSTALL_SCRIPT_URL` (optional): the install script, default the provider's.
//!
//! With `TF_ACC_K3S_NODES` set, a missing or malformed companion fails the test naming the
//! variable, never skips it. The parsing is [`RealNodes::from_vars`], a pure function.
//! Checks through this module must hold on both targets: the Kubernetes API and plain
//! commands over SSH ([`K3sNodes::ssh`]), never the stand-in's own records.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::hosts::Hosts;
use super::k3s_config::{NodeTarget, V1, V2};
use super::k3s_standin::K3sStandin;
use super::{run_command, CmdOutput};

/// How long one SSH command on a real host may take.
const SSH_TIMEOUT: Duration = Duration::from_secs(120);

/// One real host of `TF_ACC_K3S_NODES`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RealNode {
    pub user: String,
    pub address: String,
}

/// Real hosts and what logging in to them and installing k3s needs, from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RealNodes {
    pub nodes: Vec<RealNode>,
    pub private_key: PathBuf,
    pub known_hosts: PathBuf,
    /// (from, to) of the upgrade.
    pub versions: (String, String),
    pub script_url: Option<String>,
}

impl RealNodes {
    /// The real hosts `var` names, `None` when `TF_ACC_K3S_NODES` is unset or empty, or an
    /// error naming the variable that is missing or malformed. Files are not looked at.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Option<RealNodes>, String> {
        let var = |name: &str| var(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let Some(list) = var("TF_ACC_K3S_NODES") else { return Ok(None) };
        let nodes = parse_nodes(&list).map_err(|e| format!("TF_ACC_K3S_NODES={list:?}: {e}"))?;
        if nodes.len() < 4 {
            return Err(format!(
                "TF_ACC_K3S_NODES={list:?}: {} hosts, the test needs at least 4 (3 servers and an agent)",
                nodes.len()
            ));
        }
        if let Some(other) = nodes.iter().find(|n| n.user != nodes[0].user) {
            return Err(format!(
                "TF_ACC_K3S_NODES={list:?}: users {} and {} differ; the cluster logs in to every node as one \
                 `ssh.user`",
                nodes[0].user, other.user
            ));
        }
        let required =
            |name: &str, what: &str| var(name).ok_or_else(|| format!("TF_ACC_K3S_NODES is set: set {name} to {what}"));
        let private_key = PathBuf::from(required("TF_ACC_K3S_SSH_KEY", "the SSH private key file")?);
        let known_hosts = PathBuf::from(required("TF_ACC_K3S_KNOWN_HOSTS", "a known_hosts file with every node")?);
        let versions = required("TF_ACC_K3S_VERSIONS", "two k3s releases, e.g. v1.29.1+k3s2,v1.30.0+k3s1")?;
        let versions = parse_versions(&versions).map_err(|e| format!("TF_ACC_K3S_VERSIONS={versions:?}: {e}"))?;
        let script_url = var("TF_ACC_K3S_INSTALL_SCRIPT_URL");
        if let Some(url) = &script_url {
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return Err(format!("TF_ACC_K3S_INSTALL_SCRIPT_URL={url:?} is not an http(s) URL"));
            }
        }
        Ok(Some(RealNodes { nodes, private_key, known_hosts, versions, script_url }))
    }
}

/// `user@address` or `address` (user root), comma-separated.
pub fn parse_nodes(list: &str) -> Result<Vec<RealNode>, String> {
    let mut nodes: Vec<RealNode> = Vec::new();
    for entry in list.split(',').map(str::trim) {
        let (user, address) = entry.split_once('@').unwrap_or(("root", entry));
        let word = |s: &str, extra: &str| {
            !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c) || extra.contains(c))
        };
        // Addresses: host names, IPv4, and IPv6 with or without brackets.
        if !word(user, "") || !word(address, ":[]") {
            return Err(format!("{entry:?} is not `user@address` or `address`"));
        }
        if nodes.iter().any(|n| n.address == address) {
            return Err(format!("{address} is named twice"));
        }
        nodes.push(RealNode { user: user.to_string(), address: address.to_string() });
    }
    Ok(nodes)
}

/// `vA.B.C+k3sN,vA.B'.C'+k3sN'` with the second newer and at most one minor on.
pub fn parse_versions(text: &str) -> Result<(String, String), String> {
    let parse = |v: &str| -> Result<(u32, u32, u32, u32), String> {
        let bad = || format!("{v:?} is not a k3s release like v1.30.0+k3s1");
        let (semver, build) = v.strip_prefix('v').and_then(|r| r.split_once("+k3s")).ok_or_else(bad)?;
        let nums: Vec<u32> = semver.split('.').map(|n| n.parse().map_err(|_| bad())).collect::<Result<_, _>>()?;
        match nums[..] {
            [major, minor, patch] => Ok((major, minor, patch, build.parse().map_err(|_| bad())?)),
            _ => Err(bad()),
        }
    };
    let parts: Vec<&str> = text.split(',').map(str::trim).collect();
    let [from, to] = parts[..] else { return Err(format!("{} releases, expected two", parts.len())) };
    let (a, b) = (parse(from)?, parse(to)?);
    if b <= a {
        return Err(format!("{to} is not newer than {from}"));
    }
    if a.0 != b.0 || b.1 > a.1 + 1 {
        return Err(format!("{from} to {to} skips a minor, which the provider refuses"));
    }
    Ok((from.to_string(), to.to_string()))
}

/// The test's nodes: the rig (hosts with the k3s stand-in) or real hosts.
pub enum K3sNodes {
    Rig { hosts: Hosts, standin: &'static K3sStandin },
    Real(RealNodes),
}

impl K3sNodes {
    /// Real hosts when `TF_ACC_K3S_NODES` is set (panicking, naming the variable, when it or a
    /// companion is wrong), else a rig of `rig_hosts` hosts.
    #[track_caller]
    pub fn from_env_or_rig(rig_hosts: usize) -> K3sNodes {
        let real = RealNodes::from_vars(|name| std::env::var(name).ok()).unwrap_or_else(|e| panic!("{e}"));
        let Some(real) = real else {
            let standin = K3sStandin::prepare();
            return K3sNodes::Rig { hosts: Hosts::start(rig_hosts), standin };
        };
        for (name, path) in [("TF_ACC_K3S_SSH_KEY", &real.private_key), ("TF_ACC_K3S_KNOWN_HOSTS", &real.known_hosts)] {
            if let Err(e) = std::fs::metadata(path) {
                panic!("{name}={}: {e}", path.display());
            }
        }
        eprintln!(
            "acceptance: k3s on the real hosts of TF_ACC_K3S_NODES: {}",
            real.nodes.iter().map(|n| format!("{}@{}", n.user, n.address)).collect::<Vec<_>>().join(", ")
        );
        K3sNodes::Real(real)
    }

    pub fn is_rig(&self) -> bool {
        matches!(self, K3sNodes::Rig { .. })
    }

    pub fn len(&self) -> usize {
        match self {
            K3sNodes::Rig { hosts, .. } => hosts.len(),
            K3sNodes::Real(real) => real.nodes.len(),
        }
    }

    /// (from, to) of the upgrade: the stand-in's [`V1`] and [`V2`] on the rig.
    pub fn versions(&self) -> (&str, &str) {
        match self {
            K3sNodes::Rig { .. } => (V1, V2),
            K3sNodes::Real(real) => (&real.versions.0, &real.versions.1),
        }
    }

    /// Runs `command` with root's rights on node `index` (through `sudo -n` for another user).
    pub fn ssh(&self, index: usize, command: &str) -> CmdOutput {
        let real = match self {
            K3sNodes::Rig { hosts, .. } => return hosts.host(index).ssh(command),
            K3sNodes::Real(real) => real,
        };
        let node = &real.nodes[index];
        let command = match node.user.as_str() {
            "root" => command.to_string(),
            _ => format!("sudo -n sh -c '{}'", command.replace('\'', r"'\''")),
        };
        let destination = format!("{}@{}", node.user, node.address);
        super::hosts::ssh(&real.private_key, &real.known_hosts, &destination, &command, SSH_TIMEOUT)
    }
}

impl NodeTarget for K3sNodes {
    /// Nothing: checks that hold on both targets cannot use the stand-in.
    type Standin = ();

    fn standin(&self) {}

    fn address(&self, index: usize) -> String {
        match self {
            K3sNodes::Rig { hosts, .. } => hosts.address(index),
            K3sNodes::Real(real) => real.nodes[index].address.clone(),
        }
    }

    fn ssh_user(&self) -> &str {
        match self {
            K3sNodes::Rig { hosts, .. } => hosts.ssh_user(),
            K3sNodes::Real(real) => &real.nodes[0].user,
        }
    }

    fn private_key_path(&self) -> &Path {
        match self {
            K3sNodes::Rig { hosts, .. } => hosts.private_key_path(),
            K3sNodes::Real(real) => &real.private_key,
        }
    }

    fn known_hosts_path(&self) -> &Path {
        match self {
            K3sNodes::Rig { hosts, .. } => hosts.known_hosts_path(),
            K3sNodes::Real(real) => &real.known_hosts,
        }
    }

    fn script_url(&self) -> Option<String> {
        match self {
            K3sNodes::Rig { standin, .. } => Some(standin.install_script_url().to_string()),
            K3sNodes::Real(real) => real.script_url.clone(),
        }
    }
}
