//! The HCL of a `platform_k3s_cluster`, for the k3s tests and the k3s benchmark: nodes keyed
//! by name at their target's addresses, SSH with the target's key and known_hosts, and its
//! install script. A target is the node rig ([`Hosts`], with the k3s stand-in's install script)
//! or real hosts ([`super::k3s_nodes::K3sNodes`]); [`NodeTarget`] is what the HCL needs of one.

use std::path::Path;

use super::hosts::Hosts;
use super::k3s_standin::K3sStandin;

/// The first version the tests install.
pub const V1: &str = "v1.29.1+k3s2";
/// The stand-in's release the tests upgrade [`V1`] to.
pub const V2: &str = "v1.29.4+k3s1";

/// Where a cluster's nodes are, as its HCL names them.
pub trait NodeTarget {
    /// What a [`K3sConfig`] carries for its test's own checks: the k3s stand-in on the rig.
    type Standin: Copy;
    fn standin(&self) -> Self::Standin;
    /// The address of node `index` (the `host` of a node).
    fn address(&self, index: usize) -> String;
    /// The SSH user; `root`, the provider's default, is not written.
    fn ssh_user(&self) -> &str;
    fn private_key_path(&self) -> &Path;
    fn known_hosts_path(&self) -> &Path;
    /// `install.script_url`; `None` keeps the provider's default (get.k3s.io).
    fn script_url(&self) -> Option<String>;
}

/// The rig, whose nodes install the k3s stand-in.
impl NodeTarget for Hosts {
    type Standin = &'static K3sStandin;

    fn standin(&self) -> &'static K3sStandin {
        K3sStandin::prepare()
    }

    fn address(&self, index: usize) -> String {
        self.host(index).address().to_string()
    }

    fn ssh_user(&self) -> &str {
        "root"
    }

    fn private_key_path(&self) -> &Path {
        Hosts::private_key_path(self)
    }

    fn known_hosts_path(&self) -> &Path {
        Hosts::known_hosts_path(self)
    }

    fn script_url(&self) -> Option<String> {
        Some(K3sStandin::prepare().install_script_url().to_string())
    }
}

/// One cluster's HCL, keyed nodes with the target's addresses.
pub struct K3sConfig<'a, T: NodeTarget = Hosts> {
    /// The cluster's `name`.
    pub name: String,
    pub hosts: &'a T,
    pub standin: T::Standin,
    pub version: String,
    /// (key, host index) of the servers; the first is the bootstrap server.
    pub servers: Vec<(&'static str, usize)>,
    pub agents: Vec<(&'static str, usize)>,
    pub extra: String,
    pub with_namespace: Option<String>,
}

impl<'a, T: NodeTarget> K3sConfig<'a, T> {
    pub fn new(hosts: &'a T, servers: &[(&'static str, usize)], agents: &[(&'static str, usize)]) -> Self {
        K3sConfig {
            name: "acc".to_string(),
            hosts,
            standin: hosts.standin(),
            version: V1.to_string(),
            servers: servers.to_vec(),
            agents: agents.to_vec(),
            extra: String::new(),
            with_namespace: None,
        }
    }

    pub fn endpoint(&self) -> String {
        format!("https://{}:6443", self.hosts.address(self.servers[0].1))
    }

    pub fn hcl(&self) -> String {
        let node = |key: &str, index: usize, bootstrap: bool, labels: &str| {
            let bootstrap = if bootstrap { ", bootstrap = true" } else { "" };
            format!("    {key} = {{ host = \"{}\"{bootstrap}{labels} }}\n", self.hosts.address(index))
        };
        let servers: String =
            self.servers.iter().enumerate().map(|(i, (key, index))| node(key, *index, i == 0, "")).collect();
        let agents: String = self
            .agents
            .iter()
            .map(|(key, index)| node(key, *index, false, ", labels = { \"node.kubernetes.io/pool\" = \"general\" }"))
            .collect();
        let namespace = self
            .with_namespace
            .as_ref()
            .map(|name| {
                format!(
                    "resource \"platform_namespace\" \"apps\" {{\n  name    = \"{name}\"\n  cluster = platform_k3s_cluster.this.connection\n}}\n"
                )
            })
            .unwrap_or_default();
        let user = match self.hosts.ssh_user() {
            "root" => String::new(),
            user => format!("    user             = \"{user}\"\n"),
        };
        let install = self
            .hosts
            .script_url()
            .map(|url| format!("  install {{\n    script_url = \"{url}\"\n  }}\n"))
            .unwrap_or_default();
        format!(
            r#"{providers}
provider "platform" {{}}

resource "platform_k3s_cluster" "this" {{
  name          = "{name}"
  version       = "{version}"
  api_endpoint  = "{endpoint}"
  server_config = yamlencode({{ "write-kubeconfig-mode" = "0600", disable = ["traefik"] }})
  servers = {{
{servers}  }}
  agents = {{
{agents}  }}
  ssh {{
{user}    private_key_path = "{key}"
    known_hosts      = file("{known_hosts}")
  }}
{install}  upgrade {{
    drain_timeout = "2m"
  }}
{extra}}}

{namespace}
output "nodes" {{
  value = platform_k3s_cluster.this.nodes
}}
"#,
            providers = required_providers!(),
            name = self.name,
            version = self.version,
            endpoint = self.endpoint(),
            key = self.hosts.private_key_path().display(),
            known_hosts = self.hosts.known_hosts_path().display(),
            extra = self.extra,
        )
    }
}
