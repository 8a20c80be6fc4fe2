//! `platform_k3s_kubeconfig` (ephemeral resource, Terraform >= 1.10): a k3s server's admin
//! kubeconfig read over SSH each run and never stored, for users who keep it out of state.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::framework::diagnostics::{AttributePath, Diagnostics};
use crate::framework::resource::{Context, DataSource};
use crate::framework::schema::{Attribute, Block, NestedBlock, Schema};
use crate::framework::value::Value;
use crate::resources::k3s_cluster::{self, config, kubeconfig};

const TIMEOUT: Duration = Duration::from_secs(120);

pub struct K3sKubeconfig;

impl K3sKubeconfig {
    pub fn new() -> Arc<Self> {
        Arc::new(K3sKubeconfig)
    }
}

fn text<'a>(config: &'a Value, name: &str) -> Option<&'a str> {
    config.get_attr(name).and_then(Value::as_str)
}

#[async_trait]
impl DataSource for K3sKubeconfig {
    fn type_name(&self) -> &'static str {
        "platform_k3s_kubeconfig"
    }

    fn schema(&self) -> Schema {
        let ssh = Block::new(vec![
            Attribute::string("user").optional().describe("SSH user (default `root`); others use `sudo -n`."),
            Attribute::number("port").optional().describe("SSH port (default 22)."),
            Attribute::string("private_key_wo").optional().sensitive().describe("Private key (OpenSSH or PKCS#8 PEM)."),
            Attribute::string("private_key_path").optional().describe("Path of the private key."),
            Attribute::bool("use_agent").optional().describe("Authenticate with the SSH agent at `SSH_AUTH_SOCK`."),
            Attribute::string("known_hosts")
                .required()
                .describe("known_hosts lines for the server: host keys are always checked."),
        ])
        .describe("How the provider reaches the server, as in `platform_k3s_cluster`.");
        Schema::new(
            Block::new(vec![
                Attribute::string("host").required().describe("Address of a k3s server."),
                Attribute::string("api_endpoint").optional().describe(
                    "Server URL written into the kubeconfig (default `https://<host>:6443`), usually the cluster's \
                     `api_endpoint`.",
                ),
                Attribute::string("name").optional().describe("Cluster, user and context name (default `default`)."),
                Attribute::string("kubeconfig").computed().sensitive().describe("The admin kubeconfig."),
                Attribute::string_map("connection").computed().sensitive().describe(
                    "The same credentials as a map for the `cluster` attribute or the provider's `kubernetes` block.",
                ),
            ])
            .with_block(NestedBlock::single("ssh", ssh))
            .describe(
                "A k3s server's admin kubeconfig (`/etc/rancher/k3s/k3s.yaml`), read over SSH each run with the \
                 server rewritten to `api_endpoint`. Ephemeral: Terraform never stores it.",
            ),
        )
    }

    fn validate(&self, config: &Value, diags: &mut Diagnostics) {
        if config.get_attr("ssh").is_some_and(Value::is_null) {
            diags.error_at(
                AttributePath::root("ssh"),
                "Missing ssh block",
                "An `ssh` block with `known_hosts` is required.",
            );
            return;
        }
        config::check_ssh(config, diags);
        if let Some(endpoint) = text(config, "api_endpoint") {
            if let Err(e) = config::endpoint_host(endpoint) {
                diags.error_at(AttributePath::root("api_endpoint"), "Invalid API endpoint", format!("{e}."));
            }
        }
    }

    async fn read(&self, ctx: &Context, config: &Value, diags: &mut Diagnostics) -> Option<Value> {
        let host = text(config, "host")?;
        let server = text(config, "api_endpoint").map(str::to_string).unwrap_or_else(|| k3s_cluster::server_url(host));
        let name = text(config, "name").unwrap_or("default");
        let ssh = config::ssh(config);
        match k3s_cluster::read_kubeconfig(&ssh, host, &server, name, TIMEOUT, ctx.stop.clone()).await {
            Ok((credentials, text)) => {
                let mut state = config.clone();
                state.set_attr("kubeconfig", Value::string(text));
                let map = kubeconfig::connection(&server, &credentials);
                state.set_attr("connection", Value::map(map.into_iter().map(|(k, v)| (k, Value::String(v)))));
                Some(state)
            }
            Err(diagnostic) => {
                diags.push(diagnostic);
                None
            }
        }
    }
}
