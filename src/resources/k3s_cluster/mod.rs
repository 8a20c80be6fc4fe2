//! `platform_k3s_cluster`: a k3s cluster bootstrapped, grown, shrunk and upgraded over SSH.
//!
//! Data flows one way: configuration → [`config::ClusterSpec`] (checked, typed) → a plan that
//! shows every node's role, host and version ([`planned_nodes`]) → [`rollout::Rollout`],
//! which brings the hosts from what the state records to the spec one node at a time and
//! records each node as it finishes.

pub mod config;
mod error;
mod host;
pub mod kubeconfig;
mod rollout;
mod suc;
mod version;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use self::config::{ClusterSpec, Role};
use self::error::{diagnostic, K3sError};
pub use self::rollout::server_url;
use self::rollout::{NodeRecord, Progress, Rollout};
use self::version::{upgrade_refusal, K3sVersion};
use crate::clients::deadline::Deadline;
use crate::clients::ssh::{SshAuth, SshClient, SshSettings};
use crate::framework::diagnostics::{AttributePath, Diagnostics};
use crate::framework::resource::{Context, Plan, Resource};
use crate::framework::schema::{timeouts_block, Attribute, AttributeType, Block, NestedBlock, Nesting, Schema};
use crate::framework::timeouts;
use crate::framework::value::{Type, Value};
use crate::platform::Platform;

const DEFAULT_CREATE_TIMEOUT: Duration = Duration::from_secs(30 * 60);
const DEFAULT_UPDATE_TIMEOUT: Duration = Duration::from_secs(60 * 60);
const DEFAULT_DELETE_TIMEOUT: Duration = Duration::from_secs(20 * 60);
const READ_TIMEOUT: Duration = Duration::from_secs(60);
const SSH_CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

pub struct K3sClusterResource {
    platform: Arc<Platform>,
}

impl K3sClusterResource {
    pub fn new(platform: Arc<Platform>) -> Self {
        K3sClusterResource { platform }
    }
}

fn node_type() -> Type {
    Type::object([("role", Type::String), ("host", Type::String), ("version", Type::String), ("ready", Type::Bool)])
}

fn node_value(record: &NodeRecord) -> Value {
    Value::object([
        ("role", Value::string(record.role.as_str())),
        ("host", Value::string(record.host.clone())),
        ("version", Value::string(record.version.clone())),
        ("ready", Value::Bool(record.ready)),
    ])
}

fn nodes_value(nodes: &BTreeMap<String, NodeRecord>) -> Value {
    Value::map(nodes.iter().map(|(k, r)| (k.clone(), node_value(r))))
}

/// The state's `nodes`, as records.
fn recorded_nodes(state: &Value) -> BTreeMap<String, NodeRecord> {
    let Some(map) = state.get_attr("nodes").and_then(Value::as_map) else { return BTreeMap::new() };
    map.iter()
        .filter_map(|(key, node)| {
            let text = |name: &str| node.get_attr(name).and_then(Value::as_str).unwrap_or_default().to_string();
            let role = match text("role").as_str() {
                "server" => Role::Server,
                "agent" => Role::Agent,
                _ => return None,
            };
            Some((
                key.clone(),
                NodeRecord {
                    role,
                    host: text("host"),
                    version: text("version"),
                    ready: node.get_attr("ready").and_then(Value::as_bool).unwrap_or(false),
                },
            ))
        })
        .collect()
}

/// What the plan promises for every node: its role, host and version, Ready.
fn planned_nodes(spec: &ClusterSpec) -> BTreeMap<String, NodeRecord> {
    spec.nodes
        .iter()
        .map(|n| {
            let record = NodeRecord {
                role: n.role,
                host: n.host.clone(),
                version: spec.version_for(n.role).to_string(),
                ready: true,
            };
            (n.key.clone(), record)
        })
        .collect()
}

fn progress_from_state(state: &Value) -> Progress {
    let connection = state.get_attr("connection").and_then(Value::as_map);
    let text = |name: &str| connection.and_then(|c| c.get(name)).and_then(Value::as_str).map(str::to_string);
    let credentials = match (text("cluster_ca_certificate"), text("client_certificate"), text("client_key")) {
        (Some(ca_pem), Some(client_certificate_pem), Some(client_key_pem)) => {
            Some(kubeconfig::Credentials { ca_pem, client_certificate_pem, client_key_pem })
        }
        _ => None,
    };
    Progress {
        nodes: recorded_nodes(state),
        credentials,
        kubeconfig: state.get_attr("kubeconfig").and_then(Value::as_str).map(str::to_string),
    }
}

/// `state` with what `progress` says is done.
fn with_progress(mut state: Value, spec: &ClusterSpec, progress: &Progress) -> Value {
    state.set_attr("id", Value::string(spec.name.clone()));
    state.set_attr("nodes", nodes_value(&progress.nodes));
    if let Some(credentials) = &progress.credentials {
        let map = kubeconfig::connection(&spec.api_endpoint, credentials);
        state.set_attr("connection", Value::map(map.into_iter().map(|(k, v)| (k, Value::String(v)))));
    }
    if let Some(kubeconfig) = &progress.kubeconfig {
        state.set_attr("kubeconfig", Value::string(kubeconfig.clone()));
    }
    state
}

/// Write-only values never reach the state.
fn without_write_only(mut state: Value) -> Value {
    state.set_attr("token_wo", Value::Null);
    if let Some(mut ssh) = state.get_attr("ssh").cloned().filter(|s| !s.is_null()) {
        ssh.set_attr("private_key_wo", Value::Null);
        state.set_attr("ssh", ssh);
    }
    state
}

/// A server's admin kubeconfig read over SSH, rewritten for `server` under `name`, with its
/// decoded credentials: what `platform_k3s_kubeconfig` opens.
pub async fn read_kubeconfig(
    ssh: &config::SshSpec,
    host: &str,
    server: &str,
    name: &str,
    timeout: Duration,
    stop: tokio_util::sync::CancellationToken,
) -> Result<(kubeconfig::Credentials, String), crate::framework::diagnostics::Diagnostic> {
    let client =
        ssh_client(ssh).map_err(|e| crate::framework::diagnostics::Diagnostic::error("No SSH credentials", e))?;
    let node = config::NodeSpec::recorded("", Role::Server, host);
    let deadline = Deadline::after(timeout, stop);
    let result = deadline
        .run(async {
            let text = host::NodeHost { ssh: &client, node: &node }.read_kubeconfig().await?;
            let bad = |detail: String| K3sError::Kubeconfig { host: host.to_string(), detail };
            let credentials = kubeconfig::credentials(&text).map_err(bad)?;
            Ok::<_, K3sError>((credentials, kubeconfig::rewrite(&text, server, name).map_err(bad)?))
        })
        .await;
    client.close().await;
    result.map_err(|e| diagnostic("Could not read the k3s kubeconfig", &e))
}

/// The SSH client for one operation. `private_key_wo` exists only during create and update.
fn ssh_client(spec: &config::SshSpec) -> Result<SshClient, String> {
    let auth = if let Some(key) = &spec.private_key {
        SshAuth::PrivateKey { pem: key.clone(), passphrase: None }
    } else if let Some(path) = &spec.private_key_path {
        let expanded = match path.strip_prefix("~/") {
            Some(rest) => dirs::home_dir().map(|h| h.join(rest)).unwrap_or_else(|| path.into()),
            None => path.into(),
        };
        let text = std::fs::read_to_string(&expanded)
            .map_err(|e| format!("ssh.private_key_path {}: {e}", expanded.display()))?;
        SshAuth::PrivateKey { pem: text.into(), passphrase: None }
    } else if spec.use_agent {
        SshAuth::Agent
    } else {
        return Err("no SSH credentials: the `ssh` block's `private_key_wo` is only available while creating or \
                    updating; set `private_key_path` or `use_agent = true` so that refresh and destroy can reach \
                    the hosts"
            .into());
    };
    Ok(SshClient::new(SshSettings {
        user: spec.user.clone(),
        port: spec.port,
        auth,
        known_hosts: spec.known_hosts.clone(),
        connect_timeout: SSH_CONNECT_TIMEOUT,
    }))
}

/// The spec of a state or plan (write-only values, absent there, are not needed).
fn spec_of(value: &Value, diags: &mut Diagnostics) -> Option<ClusterSpec> {
    let mut own = Diagnostics::new();
    let spec = config::check(value, &mut own);
    if spec.is_none() {
        diags.extend(own);
        if !diags.has_errors() {
            diags.error("Incomplete configuration", "Part of the cluster's configuration is not known.");
        }
    }
    spec
}

/// A state made by import that no apply has completed yet: it names the cluster only.
fn is_imported(state: &Value) -> bool {
    state.get_attr("adopted").and_then(Value::as_bool) == Some(true) && recorded_nodes(state).is_empty()
}

fn token_of(config: &Value) -> Option<String> {
    config.get_attr("token_wo").and_then(Value::as_str).map(str::to_string)
}

impl K3sClusterResource {
    async fn apply(
        &self,
        ctx: &Context,
        prior: Option<&Value>,
        planned: &Value,
        config: &Value,
        timeout: Duration,
        diags: &mut Diagnostics,
    ) -> Option<Value> {
        // The spec is built from the configuration: it alone holds write-only values.
        let spec = spec_of(config, diags)?;
        let ssh = match ssh_client(&spec.ssh) {
            Ok(ssh) => ssh,
            Err(e) => {
                diags.error_at(AttributePath::root("ssh"), "No SSH credentials", e);
                return prior.cloned();
            }
        };
        let mut progress = prior.map(progress_from_state).unwrap_or_default();
        let deadline = Deadline::after(timeout, ctx.stop.clone());
        let started = std::time::Instant::now();
        let result = {
            let mut rollout = Rollout::new(&self.platform, &spec, &ssh, &deadline, token_of(config));
            let result = if prior.is_some_and(is_imported) {
                deadline.run(Box::pin(rollout.adopt(&mut progress))).await
            } else {
                deadline.run(Box::pin(rollout.converge(&mut progress))).await
            };
            // What the apply spent where: SSH commands (round trips and the work they do on
            // the hosts) apart from waiting for nodes to become Ready.
            let (commands, in_commands) = ssh.stats();
            tracing::info!(
                cluster = %spec.name,
                seconds = started.elapsed().as_secs_f64(),
                ssh_commands = commands,
                ssh_connections = ssh.connections_opened(),
                ssh_seconds = in_commands.as_secs_f64(),
                ready_wait_seconds = rollout.waited().as_secs_f64(),
                "k3s rollout finished"
            );
            result
        };
        ssh.close().await;
        let base = match &result {
            Ok(()) => planned.clone(),
            // What the configuration says stays as it was where the work did not finish:
            // the next plan shows the rest again.
            Err(_) => prior.cloned().unwrap_or_else(|| planned.clone()),
        };
        let mut state = with_progress(without_write_only(base), &spec, &progress);
        if let Err(e) = result {
            diags.push(diagnostic(
                if prior.is_some() { "Could not update the k3s cluster" } else { "Could not create the k3s cluster" },
                &e,
            ));
            if prior.is_none() {
                // A failed create keeps what it installed, so destroy (or the replacement) can remove it.
                for (name, value) in [("connection", Value::Null), ("kubeconfig", Value::Null)] {
                    if state.get_attr(name).is_some_and(Value::is_unknown) {
                        state.set_attr(name, value);
                    }
                }
                return (!progress.nodes.is_empty()).then_some(state);
            }
            return Some(state);
        }
        if let Some(prior) = prior {
            // Keep the prior connection when the plan kept it (a known planned value must not change).
            for name in ["connection", "kubeconfig"] {
                if planned.get_attr(name).is_some_and(Value::is_known) {
                    if let Some(value) = prior.get_attr(name) {
                        state.set_attr(name, value.clone());
                    }
                }
            }
        }
        Some(state)
    }

    /// Plan-time refusals that compare the configuration with the state.
    fn check_change(&self, prior: &Value, spec: &ClusterSpec, config: &Value, diags: &mut Diagnostics) {
        let recorded = recorded_nodes(prior);
        // The bootstrap server holds the cluster's identity.
        let prior_bootstrap = prior
            .get_attr("servers")
            .and_then(Value::as_map)
            .and_then(|m| m.iter().find(|(_, s)| s.get_attr("bootstrap").and_then(Value::as_bool) == Some(true)))
            .map(|(k, s)| (k.clone(), s.get_attr("host").and_then(Value::as_str).unwrap_or_default().to_string()));
        let bootstrap = spec.bootstrap();
        if let Some((key, host)) = prior_bootstrap {
            if key != bootstrap.key || host != bootstrap.host {
                diags.error_at(
                    AttributePath::root("servers"),
                    "Bootstrap server changed",
                    format!(
                        "The cluster was started on server {key:?} ({host}); the bootstrap server cannot change after \
                         creation. Keep `bootstrap = true` on {key:?} with the same host."
                    ),
                );
            }
        }
        // Agents follow `version` unless `agent_version` is set: one refusal per attribute.
        let agent_attribute =
            if config.get_attr("agent_version").is_some_and(|v| !v.is_null()) { "agent_version" } else { "version" };
        let mut refused = std::collections::BTreeSet::new();
        for record in recorded.values() {
            let (target, attribute) = match record.role {
                Role::Server => (&spec.version, "version"),
                Role::Agent => (&spec.agent_version, agent_attribute),
            };
            let Ok(from) = K3sVersion::parse(&record.version) else { continue };
            if let Some(why) = upgrade_refusal(&from, target) {
                if refused.insert((attribute, why.clone())) {
                    diags.error_at(AttributePath::root(attribute), "Unsupported version change", format!("{why}."));
                }
            }
        }
        // Token: a change after bootstrap is a rotation k3s does itself.
        let prior_token_version = prior.get_attr("token_wo_version").and_then(Value::as_i64);
        let token_version = config.get_attr("token_wo_version").and_then(Value::as_i64);
        if prior_token_version != token_version && !recorded.is_empty() {
            diags.error_at(
                AttributePath::root("token_wo_version"),
                "Token change after bootstrap",
                "The cluster token cannot be replaced by re-installing: rotate it on a server with `k3s token rotate \
                 --new-token <token>`, then restore `token_wo_version` (or set the new value with the new version).",
            );
        }
        // Servers leaving: never the last, never more than quorum allows at once.
        let servers_before = recorded.values().filter(|r| r.role == Role::Server).count();
        let leaving: Vec<&String> = recorded
            .iter()
            .filter(|(k, r)| r.role == Role::Server && spec.node(k).is_none_or(|n| n.role != Role::Server))
            .map(|(k, _)| k)
            .collect();
        if !leaving.is_empty() {
            let remaining = servers_before - leaving.len();
            let tolerated = servers_before.saturating_sub(1) / 2;
            if remaining == 0 {
                diags.error_at(AttributePath::root("servers"), "Last server", "A cluster cannot lose all its servers.");
            } else if leaving.len() > tolerated.max(1) || remaining < servers_before.div_ceil(2) {
                diags.error_at(
                    AttributePath::root("servers"),
                    "Removing servers would break quorum",
                    format!(
                        "Removing {} of {servers_before} servers at once leaves {remaining}, fewer than etcd's quorum of \
                         {}; remove at most {} per apply.",
                        leaving.len(),
                        servers_before / 2 + 1,
                        tolerated.max(1)
                    ),
                );
            }
        }
    }
}

fn nested_nodes(name: &str, role: Role, required: bool) -> Attribute {
    let mut attributes = vec![
        Attribute::string("host").required().describe("Address or name the provider reaches the node at over SSH."),
        Attribute::string_map("labels").optional().describe("Node labels, set with k3s's `node-label`."),
        Attribute::string("config").optional().describe(
            "YAML of k3s flags for this node only, merged over the role's config (e.g. `node-ip`). Flags every server \
             must share cannot be set here.",
        ),
    ];
    if role == Role::Server {
        attributes.push(Attribute::bool("bootstrap").optional().describe(
            "The server that starts the cluster (`cluster-init`). Exactly one; it cannot change after creation.",
        ));
    }
    let attribute = Attribute::nested(name, Nesting::Map, attributes);
    let attribute = if required { attribute.required() } else { attribute.optional() };
    attribute.describe(match role {
        Role::Server => "Servers (control plane with embedded etcd), keyed by node name. Use an odd number.",
        Role::Agent => "Agents (workers), keyed by node name.",
    })
}

#[async_trait]
impl Resource for K3sClusterResource {
    fn type_name(&self) -> &'static str {
        "platform_k3s_cluster"
    }

    fn schema(&self) -> Schema {
        let attributes = vec![
            Attribute::string("id").computed().keep_on_update().describe("The cluster name."),
            Attribute::string("name")
                .required()
                .requires_replace()
                .describe("Name of the cluster: the kubeconfig's cluster, user and context name, and the import id."),
            Attribute::string("version").required().describe(
                "k3s release on the servers (and agents unless `agent_version`), e.g. `v1.29.1+k3s2`. A change is a \
                 rolling upgrade, one minor version at a time; downgrades are refused.",
            ),
            Attribute::string("agent_version")
                .optional()
                .describe("k3s release on the agents when it differs from `version` (never newer than the servers)."),
            Attribute::string("api_endpoint").required().describe(
                "Fixed registration address, `https://host:6443`: nodes join through it, it is added to `tls-san`, \
                 and `connection` and `kubeconfig` point at it.",
            ),
            Attribute::string("server_config").optional().describe(
                "YAML of k3s server flags (`config.yaml`), e.g. `yamlencode({ disable = [\"traefik\"] })`. A change \
                 rolls over the servers one at a time.",
            ),
            Attribute::string("agent_config")
                .optional()
                .describe("YAML of k3s agent flags; a change rolls over the agents."),
            Attribute::string("token_wo").optional().sensitive().write_only().describe(
                "Cluster token (write-only, Terraform 1.11 and later; never stored). When absent, the bootstrap \
                 server generates one and joining nodes read it from there.",
            ),
            Attribute::number("token_wo_version").optional().describe(
                "Version of `token_wo`. A change after creation is refused: rotate tokens with `k3s token rotate`.",
            ),
            Attribute::bool("allow_even_servers")
                .optional()
                .describe("Allow an even number of servers (etcd tolerates no more failures with 4 than with 3)."),
            Attribute::string("on_destroy").optional().describe(
                "`uninstall` (agents, then servers, run k3s's uninstall script; the default for a cluster this \
                 resource created) or `keep` (leave the hosts as they are; the default for an imported cluster).",
            ),
            Attribute::bool("adopted")
                .computed()
                .keep_on_update()
                .describe("Whether the cluster was imported rather than created here."),
            nested_nodes("servers", Role::Server, true),
            nested_nodes("agents", Role::Agent, false),
            Attribute::string_map("connection").computed().sensitive().describe(
                "Connection for the `cluster` attribute of every Kubernetes resource: `host` (= `api_endpoint`), \
                 `cluster_ca_certificate`, `client_certificate`, `client_key`.",
            ),
            Attribute::string("kubeconfig").computed().sensitive().describe(
                "Admin kubeconfig with the server set to `api_endpoint`. Refreshed on read (k3s renews its \
                 certificates). To keep it out of state use the `platform_k3s_kubeconfig` ephemeral resource.",
            ),
            Attribute::new("nodes", AttributeType::Plain(Type::map(node_type()))).computed().describe(
                "Per node: `role`, `host`, `version` (the kubelet's) and `ready`. The plan shows each node's version \
                 change; state records each node as it finishes, so a failed upgrade resumes where it stopped.",
            ),
        ];
        let ssh = Block::new(vec![
            Attribute::string("user").optional().describe("SSH user (default `root`); others use `sudo -n`."),
            Attribute::number("port").optional().describe("SSH port (default 22)."),
            Attribute::string("private_key_wo").optional().sensitive().write_only().describe(
                "Private key (OpenSSH or PKCS#8 PEM), write-only: used while creating and updating only, so refresh \
                 and destroy need `private_key_path` or `use_agent` too.",
            ),
            Attribute::string("private_key_path").optional().describe("Path of the private key, read by the provider."),
            Attribute::bool("use_agent").optional().describe("Authenticate with the SSH agent at `SSH_AUTH_SOCK`."),
            Attribute::string("known_hosts")
                .required()
                .describe("known_hosts lines for every node: host keys are always checked."),
        ])
        .describe("How the provider reaches the hosts.");
        let install = Block::new(vec![
            Attribute::string("mode").optional().describe(
                "`script` (default: the install script downloads k3s on the host) or `binary` (the provider uploads \
                 the binary, for air-gapped hosts).",
            ),
            Attribute::string("script_url").optional().describe(
                "Where the provider fetches the install script, which it runs on each host (default https://get.k3s.io).",
            ),
            Attribute::string("binary_path").optional().describe("Local path of the k3s binary (binary mode)."),
            Attribute::string("binary_url").optional().describe("URL of the k3s binary (binary mode, with `binary_sha256`)."),
            Attribute::string("binary_sha256").optional().describe("SHA-256 the binary must have."),
        ])
        .describe("How k3s gets onto the hosts.");
        let upgrade = Block::new(vec![
            Attribute::bool("drain")
                .optional()
                .describe("Cordon and drain each node before it restarts (default true)."),
            Attribute::string("drain_timeout").optional().describe("How long a drain may take (default `10m`)."),
            Attribute::number("agent_concurrency").optional().describe("Agents upgraded at once (default 1)."),
            Attribute::bool("snapshot_before").optional().describe("Take an etcd snapshot before upgrading."),
            Attribute::string("strategy").optional().describe(
                "Who upgrades the nodes when `version` changes: `ssh` (default: the provider, node by node as \
                 described above) or `system-upgrade-controller` (the provider writes the System Upgrade \
                 Controller's server and agent Plans, `<name>-server` and `<name>-agent` in namespace \
                 `system-upgrade`, and waits until every node runs the new version; for clusters that already \
                 run SUC). Config changes and new nodes always go over SSH.",
            ),
        ])
        .describe("How version and config changes roll over the nodes.");
        Schema::new(
            Block::new(attributes)
                .with_block(NestedBlock::single("ssh", ssh))
                .with_block(NestedBlock::single("install", install))
                .with_block(NestedBlock::single("upgrade", upgrade))
                .with_block(timeouts_block(&["create", "update", "delete"]))
                .describe(
                    "A k3s cluster installed over SSH: the bootstrap server, then the other servers one at a time, then \
                     the agents. Adding or removing a node touches that node only; a version change upgrades servers \
                     one at a time, then agents, each drained, upgraded and checked Ready before the next. Hosts \
                     that already run k3s are refused, never taken over.",
                ),
        )
    }

    fn validate(&self, config: &Value, diags: &mut Diagnostics) {
        config::check(config, diags);
        config::check_ssh(config, diags);
        timeouts::validate(config, &["create", "update", "delete"], diags);
        if config.get_attr("ssh").is_some_and(Value::is_null) {
            diags.error_at(
                AttributePath::root("ssh"),
                "Missing ssh block",
                "An `ssh` block with `known_hosts` is required.",
            );
        }
    }

    async fn modify_plan(&self, _ctx: &Context, plan: &mut Plan, diags: &mut Diagnostics) {
        if plan.planned.is_null() {
            return;
        }
        let Some(spec) = config::check(&plan.config, &mut Diagnostics::new()) else {
            plan.planned.set_attr("nodes", Value::Unknown);
            return;
        };
        plan.planned.set_attr("id", Value::string(spec.name.clone()));
        let nodes = planned_nodes(&spec);
        if plan.is_create() {
            plan.planned.set_attr("adopted", Value::Bool(false));
        } else if is_imported(&plan.prior) {
            // The apply adopts the configured nodes; it changes nothing on them.
            for name in ["connection", "kubeconfig"] {
                plan.planned.set_attr(name, Value::Unknown);
            }
        } else {
            self.check_change(&plan.prior, &spec, &plan.config, diags);
            let endpoint_changed = plan.prior.get_attr("api_endpoint") != plan.planned.get_attr("api_endpoint");
            for name in ["connection", "kubeconfig"] {
                let value = if endpoint_changed {
                    Value::Unknown
                } else {
                    plan.prior.get_attr(name).cloned().unwrap_or(Value::Null)
                };
                plan.planned.set_attr(name, value);
            }
        }
        plan.planned.set_attr("nodes", nodes_value(&nodes));
    }

    async fn create(&self, ctx: &Context, planned: &Value, config: &Value, diags: &mut Diagnostics) -> Option<Value> {
        let timeout = timeouts::timeout(planned, "create", DEFAULT_CREATE_TIMEOUT);
        self.apply(ctx, None, planned, config, timeout, diags).await
    }

    async fn read(&self, ctx: &Context, state: &Value, diags: &mut Diagnostics) -> Option<Value> {
        let mut progress = progress_from_state(state);
        let Some(credentials) = progress.credentials.clone() else { return Some(state.clone()) };
        let Some(endpoint) = state.get_attr("api_endpoint").and_then(Value::as_str) else { return Some(state.clone()) };
        let map = kubeconfig::connection(endpoint, &credentials);
        let value = Value::map(map.into_iter().map(|(k, v)| (k, Value::String(v))));
        let deadline = Deadline::after(READ_TIMEOUT, ctx.stop.clone());
        let observed = deadline
            .run(async {
                let cluster = self.platform.cluster(Some(&value)).await.map_err(|d| K3sError::Refused(d.detail))?;
                Ok::<_, K3sError>(cluster.nodes().await?)
            })
            .await;
        match observed {
            Ok(statuses) => {
                for (key, record) in progress.nodes.iter_mut() {
                    match statuses.iter().find(|s| &s.name == key) {
                        Some(status) => {
                            record.ready = status.ready;
                            if !status.kubelet_version.is_empty() {
                                record.version = status.kubelet_version.clone();
                            }
                        }
                        None => record.ready = false,
                    }
                }
            }
            Err(e) => {
                let mut warning = diagnostic("Could not refresh the k3s cluster", &e);
                warning.severity = crate::framework::diagnostics::Severity::Warning;
                diags.push(warning);
                return Some(state.clone());
            }
        }
        // Fresh credentials when a server can be reached (k3s renews its certificates).
        if let Some(spec) = config::check(state, &mut Diagnostics::new()) {
            if let Ok(ssh) = ssh_client(&spec.ssh) {
                let rollout = Rollout::new(&self.platform, &spec, &ssh, &deadline, None);
                if let Ok(Ok((credentials, kubeconfig))) =
                    deadline.run(async { Ok::<_, K3sError>(rollout.read_credentials(spec.bootstrap()).await) }).await
                {
                    progress.credentials = Some(credentials);
                    progress.kubeconfig = Some(kubeconfig);
                }
                ssh.close().await;
            }
            return Some(with_progress(state.clone(), &spec, &progress));
        }
        let mut next = state.clone();
        next.set_attr("nodes", nodes_value(&progress.nodes));
        Some(next)
    }

    async fn update(
        &self,
        ctx: &Context,
        prior: &Value,
        planned: &Value,
        config: &Value,
        diags: &mut Diagnostics,
    ) -> Option<Value> {
        let timeout = timeouts::timeout(planned, "update", DEFAULT_UPDATE_TIMEOUT);
        self.apply(ctx, Some(prior), planned, config, timeout, diags).await
    }

    /// Import takes the cluster name only (no hosts, no credentials in the id); the next apply
    /// adopts the nodes the configuration names, checking each runs k3s as configured.
    async fn import(&self, _ctx: &Context, id: &str, diags: &mut Diagnostics) -> Option<Value> {
        let name = id.trim();
        if name.is_empty() || name.contains(char::is_whitespace) {
            diags.error("Invalid import id", format!("Import a k3s cluster by its name, e.g. \"home\", not {id:?}."));
            return None;
        }
        let mut state = Value::null_object(&self.schema().implied_type());
        state.set_attr("id", Value::string(name));
        state.set_attr("name", Value::string(name));
        state.set_attr("adopted", Value::Bool(true));
        Some(state)
    }

    async fn delete(&self, ctx: &Context, prior: &Value, diags: &mut Diagnostics) {
        if is_imported(prior) {
            // Imported, never adopted: nothing was touched.
            return;
        }
        let Some(spec) = config::check(prior, &mut Diagnostics::new()) else {
            diags.error("Invalid state", "The k3s cluster's state cannot be read; nothing was uninstalled.");
            return;
        };
        let adopted = prior.get_attr("adopted").and_then(Value::as_bool).unwrap_or(false);
        if spec.keep_on_destroy.unwrap_or(adopted) {
            tracing::info!(cluster = %spec.name, "on_destroy = keep: leaving the hosts as they are");
            return;
        }
        let ssh = match ssh_client(&spec.ssh) {
            Ok(ssh) => ssh,
            Err(e) => {
                diags.error_at(
                    AttributePath::root("ssh"),
                    "Cannot reach the hosts to uninstall k3s",
                    format!("{e}. Or set `on_destroy = \"keep\"` to leave the hosts as they are."),
                );
                return;
            }
        };
        let deadline = Deadline::after(timeouts::timeout(prior, "delete", DEFAULT_DELETE_TIMEOUT), ctx.stop.clone());
        let nodes: Vec<config::NodeSpec> = recorded_nodes(prior)
            .iter()
            .map(|(key, record)| config::NodeSpec::recorded(key, record.role, &record.host))
            .collect();
        // Agents first, all at once; then servers one at a time, the bootstrap server last.
        let bootstrap = spec.bootstrap().key.clone();
        let mut servers: Vec<&config::NodeSpec> = nodes.iter().filter(|n| n.role == Role::Server).collect();
        servers.sort_by_key(|n| (n.key == bootstrap, std::cmp::Reverse(n.key.clone())));
        let uninstall = |node: &config::NodeSpec| {
            let ssh = &ssh;
            let node = node.clone();
            async move {
                tracing::info!(node = %node.key, host = %node.host, "uninstalling k3s");
                host::NodeHost { ssh, node: &node }.uninstall(node.role).await
            }
        };
        let result = deadline
            .run(async {
                let agents = nodes.iter().filter(|n| n.role == Role::Agent).map(&uninstall);
                futures::future::try_join_all(agents).await?;
                for server in servers {
                    uninstall(server).await?;
                }
                Ok::<_, K3sError>(())
            })
            .await;
        ssh.close().await;
        if let Err(e) = result {
            diags.push(diagnostic("Could not uninstall the k3s cluster", &e));
        }
    }
}

#[cfg(test)]
mod tests;
