//! The HCL of a `platform_k3s_cluster` on the node rig, for the k3s tests and the k3s
//! benchmark: nodes keyed by name at the rig's addresses, SSH with the rig's key and
//! known_hosts, the k3s stand-in's install script.

use super::hosts::Hosts;
use super::k3s_standin::K3sStandin;

/// The first version the tests install.
pub const V1: &str = "v1.29.1+k3s2";

/// One cluster's HCL, keyed nodes with the rig's addresses.
pub struct K3sConfig<'a> {
    /// The cluster's `name`.
    pub name: String,
    pub hosts: &'a Hosts,
    pub standin: &'a K3sStandin,
    pub version: String,
    /// (key, host index) of the servers; the first is the bootstrap server.
    pub servers: Vec<(&'static str, usize)>,
    pub agents: Vec<(&'static str, usize)>,
    pub extra: String,
    pub with_namespace: Option<String>,
}

impl<'a> K3sConfig<'a> {
    pub fn new(hosts: &'a Hosts, servers: &[(&'static str, usize)], agents: &[(&'static str, usize)]) -> Self {
        K3sConfig {
            name: "acc".to_string(),
            hosts,
            standin: K3sStandin::prepare(),
            version: V1.to_string(),
            servers: servers.to_vec(),
            agents: agents.to_vec(),
            extra: String::new(),
            with_namespace: None,
        }
    }

    pub fn endpoint(&self) -> String {
        format!("https://{}:6443", self.hosts.host(self.servers[0].1).address())
    }

    pub fn hcl(&self) -> String {
        let node = |key: &str, index: usize, bootstrap: bool, labels: &str| {
            let bootstrap = if bootstrap { ", bootstrap = true" } else { "" };
            format!("    {key} = {{ host = \"{}\"{bootstrap}{labels} }}\n", self.hosts.host(index).address())
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
    private_key_path = "{key}"
    known_hosts      = file("{known_hosts}")
  }}
  install {{
    script_url = "{script}"
  }}
  upgrade {{
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
            script = self.standin.install_script_url(),
            extra = self.extra,
        )
    }
}
