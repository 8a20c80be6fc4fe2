//! Bringing the hosts from what the state records to what the configuration asks, one
//! safe step at a time: the bootstrap server, joining servers one by one, agents; removals
//! (cordon, drain, delete the Node, uninstall); rolling upgrades and config changes with a
//! health gate before and after every node. Progress is recorded in [`Progress`] as each
//! node finishes, so a failed or interrupted apply resumes where it stopped.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::config::{ClusterSpec, InstallMode, NodeSpec, Role, Strategy};
use super::error::K3sError;
use super::host::{Installer, NodeHost, KUBECONFIG_PATH, TOKEN_PATH};
use super::kubeconfig::{self, Credentials};
use super::suc;
use super::version::K3sVersion;
use crate::clients::deadline::{Deadline, Progress as Check};
use crate::clients::kube::{nodes, Cluster};
use crate::clients::ssh::SshClient;
use crate::framework::value::Value;
use crate::platform::Platform;

/// How often node readiness is checked.
const POLL: Duration = Duration::from_secs(2);
/// The longest a bootstrap server may take to write its token and kubeconfig.
const FILES_TIMEOUT: Duration = Duration::from_secs(300);
/// The largest binary `install.binary_url` may download.
const MAX_BINARY: usize = 512 * 1024 * 1024;

/// One node as the state records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRecord {
    pub role: Role,
    pub host: String,
    pub version: String,
    pub ready: bool,
}

/// What is done so far: the state's `nodes`, `connection` and `kubeconfig`.
#[derive(Clone, Default)]
pub struct Progress {
    pub nodes: BTreeMap<String, NodeRecord>,
    pub credentials: Option<Credentials>,
    pub kubeconfig: Option<String>,
}

/// Everything one apply needs, built once.
pub struct Rollout<'a> {
    pub platform: &'a Platform,
    pub spec: &'a ClusterSpec,
    pub ssh: &'a SshClient,
    pub deadline: &'a Deadline,
    /// `token_wo`, when given.
    pub token: Option<String>,
    /// Whether `token` came from the configuration (else the bootstrap server made it).
    user_token: bool,
    installer: Option<Arc<Installer>>,
    /// Time spent waiting for nodes to become Ready (microseconds), shared by the agents' copies.
    waited: Arc<std::sync::atomic::AtomicU64>,
}

impl<'a> Rollout<'a> {
    pub fn new(
        platform: &'a Platform,
        spec: &'a ClusterSpec,
        ssh: &'a SshClient,
        deadline: &'a Deadline,
        token: Option<String>,
    ) -> Self {
        Rollout {
            platform,
            spec,
            ssh,
            deadline,
            user_token: token.is_some(),
            token,
            installer: None,
            waited: Arc::default(),
        }
    }

    fn host(&self, node: &'a NodeSpec) -> NodeHost<'a> {
        NodeHost { ssh: self.ssh, node }
    }

    /// The install script (fetched once per apply) and the binary in binary mode.
    async fn installer(&mut self) -> Result<Arc<Installer>, K3sError> {
        if let Some(installer) = &self.installer {
            return Ok(installer.clone());
        }
        let install = &self.spec.install;
        let script = crate::clients::http::fetch_bytes(&install.script_url, None, 1024 * 1024)
            .await
            .map_err(|e| K3sError::Script { url: install.script_url.clone(), detail: e.to_string() })?;
        let binary = match install.mode {
            InstallMode::Script => None,
            InstallMode::Binary => {
                let bytes = match (&install.binary_path, &install.binary_url) {
                    (Some(path), _) => {
                        tokio::fs::read(path).await.map_err(|e| K3sError::Binary(format!("{path}: {e}")))?
                    }
                    (None, Some(url)) => {
                        crate::clients::http::fetch_bytes(url, install.binary_sha256.as_deref(), MAX_BINARY)
                            .await
                            .map_err(|e| K3sError::Binary(e.to_string()))?
                    }
                    (None, None) => return Err(K3sError::Binary("no binary_path or binary_url".into())),
                };
                use sha2::Digest;
                let sum = hex::encode(sha2::Sha256::digest(&bytes));
                if let Some(expected) = &install.binary_sha256 {
                    if !sum.eq_ignore_ascii_case(expected) {
                        return Err(K3sError::Binary(format!("its SHA-256 is {sum}, not the configured {expected}")));
                    }
                }
                Some((bytes, sum))
            }
        };
        let installer = Arc::new(Installer { script, mode: install.mode, binary });
        self.installer = Some(installer.clone());
        Ok(installer)
    }

    /// A client for the cluster through `server` (an `https://` URL) with the admin credentials.
    async fn cluster_via(&self, server: &str, credentials: &Credentials) -> Result<Cluster, K3sError> {
        let map = kubeconfig::connection(server, credentials);
        let value = Value::map(map.into_iter().map(|(k, v)| (k, Value::String(v))));
        self.platform.cluster(Some(&value)).await.map_err(|d| K3sError::Refused(format!("{}: {}", d.summary, d.detail)))
    }

    async fn cluster(&self, progress: &Progress) -> Result<Cluster, K3sError> {
        let credentials =
            progress.credentials.as_ref().ok_or_else(|| K3sError::Refused("no cluster credentials yet".into()))?;
        self.cluster_via(&self.spec.api_endpoint, credentials).await
    }

    /// The cluster token: `token_wo`, or the one the bootstrap server generated.
    async fn token(&mut self) -> Result<String, K3sError> {
        if let Some(token) = &self.token {
            return Ok(token.clone());
        }
        let bootstrap = self.spec.bootstrap();
        let token = self.host(bootstrap).read_token().await?;
        self.token = Some(token.clone());
        Ok(token)
    }

    /// `config.yaml` for `node`. The bootstrap server's carries the token only when the user
    /// gave one (otherwise it generated the token itself).
    async fn desired_config(&mut self, node: &NodeSpec) -> Result<String, K3sError> {
        let token = if node.bootstrap && !self.user_token { None } else { Some(self.token().await?) };
        Ok(self.spec.config_yaml(node, token.as_deref()))
    }

    /// Time spent so far waiting for nodes to become Ready.
    pub fn waited(&self) -> Duration {
        Duration::from_micros(self.waited.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// Refuses hosts that already run k3s this state does not record.
    pub async fn refuse_foreign(&self, nodes: &[&NodeSpec]) -> Result<(), K3sError> {
        let probes =
            futures::future::join_all(nodes.iter().map(|node| async move { (node, self.host(node).probe().await) }))
                .await;
        for (node, probe) in probes {
            let probe = probe?;
            if probe.has_k3s() {
                return Err(K3sError::Foreign {
                    node: node.key.clone(),
                    host: node.host.clone(),
                    found: probe.describe(),
                });
            }
        }
        Ok(())
    }

    /// Reads a server's admin kubeconfig, rewritten for `api_endpoint`.
    pub async fn read_credentials(&self, server: &NodeSpec) -> Result<(Credentials, String), K3sError> {
        let text = self.host(server).read_kubeconfig().await?;
        let bad = |detail: String| K3sError::Kubeconfig { host: server.host.clone(), detail };
        let credentials = kubeconfig::credentials(&text).map_err(bad)?;
        let rewritten = kubeconfig::rewrite(&text, &self.spec.api_endpoint, &self.spec.name).map_err(bad)?;
        Ok((credentials, rewritten))
    }

    /// Installs the bootstrap server (cluster-init) and waits until the cluster answers.
    async fn bootstrap(&mut self, progress: &mut Progress) -> Result<(), K3sError> {
        let node = self.spec.bootstrap();
        let version = self.spec.version.clone();
        let installer = self.installer().await?;
        let host = self.host(node);
        host.write_config(&self.spec.config_yaml(node, self.token.as_deref())).await?;
        tracing::info!(node = %node.key, host = %node.host, version = %version, "installing the bootstrap server");
        host.install(&installer, &version).await?;
        let files = FILES_TIMEOUT.min(self.deadline.remaining());
        host.wait_for_file(TOKEN_PATH, files).await?;
        host.wait_for_file(KUBECONFIG_PATH, files).await?;
        let (credentials, kubeconfig) = self.read_credentials(node).await?;
        progress.credentials = Some(credentials);
        progress.kubeconfig = Some(kubeconfig);
        self.wait_node(node, &version, progress, true).await?;
        self.record(node, &version, progress);
        Ok(())
    }

    fn record(&self, node: &NodeSpec, version: &K3sVersion, progress: &mut Progress) {
        progress.nodes.insert(
            node.key.clone(),
            NodeRecord { role: node.role, host: node.host.clone(), version: version.to_string(), ready: true },
        );
    }

    /// Waits until `node` is Ready with `version` (and, for a server, its own API is ready),
    /// stopping early with the service log when the service has failed.
    /// `watch_service`: also look at the service over SSH (not while SUC upgrades the node).
    async fn wait_node(
        &self,
        node: &NodeSpec,
        version: &K3sVersion,
        progress: &Progress,
        watch_service: bool,
    ) -> Result<(), K3sError> {
        let cluster = self.cluster(progress).await?;
        let server_api = match node.role {
            Role::Server => Some(
                self.cluster_via(&server_url(&node.host), progress.credentials.as_ref().expect("credentials")).await?,
            ),
            Role::Agent => None,
        };
        let host = self.host(node);
        let started = std::time::Instant::now();
        let mut checks = 0u32;
        let what = format!("node {:?} ({}) to be Ready with k3s {version}", node.key, node.host);
        let waited = self
            .deadline
            .poll(&what, POLL, || {
                checks += 1;
                let check_service = watch_service && checks % 5 == 0;
                let (cluster, server_api, host) = (&cluster, &server_api, &host);
                async move {
                    if check_service {
                        if let Ok(false) = host.service_active().await {
                            if let Ok(false) = host.service_active().await {
                                return Ok::<_, K3sError>(Check::Failed(format!(
                                    "the {} service is not running; last lines of its log:\n{}",
                                    node.role.service(),
                                    host.service_log().await
                                )));
                            }
                        }
                    }
                    let Some(status) = cluster.node(&node.key).await? else {
                        return Ok(Check::Pending("the Node has not registered yet".into()));
                    };
                    if status.kubelet_version != version.as_str() {
                        return Ok(Check::Pending(format!("kubelet {} (want {version})", status.kubelet_version)));
                    }
                    if !status.ready {
                        return Ok(Check::Pending(format!("not Ready: {status}")));
                    }
                    if let Some(api) = server_api {
                        let readyz = nodes::readyz(api).await?;
                        if !readyz.ok {
                            return Ok(Check::Pending(format!("/readyz on {}: {}", node.host, readyz.detail)));
                        }
                    }
                    Ok(Check::Done)
                }
            })
            .await;
        self.waited.fetch_add(started.elapsed().as_micros() as u64, std::sync::atomic::Ordering::Relaxed);
        waited.map_err(|e| K3sError::Start {
            node: node.key.clone(),
            host: node.host.clone(),
            detail: e.to_string(),
            log: String::new(),
        })
    }

    /// Joins a new server or agent and waits until it is Ready.
    async fn join(&mut self, node: &NodeSpec, progress: &mut Progress) -> Result<(), K3sError> {
        let token = self.token().await?;
        let version = self.spec.version_for(node.role).clone();
        let installer = self.installer().await?;
        let host = self.host(node);
        host.write_config(&self.spec.config_yaml(node, Some(&token))).await?;
        tracing::info!(node = %node.key, host = %node.host, role = node.role.as_str(), version = %version, "joining");
        host.install(&installer, &version).await?;
        self.wait_node(node, &version, progress, true).await?;
        self.record(node, &version, progress);
        Ok(())
    }

    /// Removes a node the configuration no longer has: cordon, drain, delete its Node,
    /// uninstall k3s. A server leaving also leaves etcd (k3s removes the member of a
    /// deleted server node).
    async fn remove(&self, key: &str, record: &NodeRecord, progress: &mut Progress) -> Result<(), K3sError> {
        let cluster = self.cluster(progress).await?;
        let node = NodeSpec::recorded(key, record.role, &record.host);
        tracing::info!(node = key, host = %record.host, "removing");
        if cluster.node(key).await?.is_some() {
            cluster.cordon(key, true).await?;
            let drain =
                Deadline::after(self.spec.upgrade.drain_timeout.min(self.deadline.remaining()), Default::default());
            let drained = self.deadline.within(async { Ok::<_, K3sError>(cluster.drain(key, &drain).await) }).await?;
            drained.map_err(|e| K3sError::Drain { node: key.to_string(), detail: e.to_string() })?;
            cluster.delete_node(key).await?;
        }
        self.host(&node).uninstall(record.role).await?;
        progress.nodes.remove(key);
        Ok(())
    }

    /// Brings one existing node to `version` and its desired config: cordon and drain when
    /// asked, write the config, run the installer (or restart), wait, uncordon.
    async fn roll(&mut self, node: &NodeSpec, progress: &mut Progress) -> Result<(), K3sError> {
        let desired = self.desired_config(node).await?;
        let version = self.spec.version_for(node.role).clone();
        let host = self.host(node);
        let config_changed = host.read_config().await?.as_deref() != Some(desired.as_str());
        let recorded = progress.nodes.get(&node.key).map(|r| r.version.clone()).unwrap_or_default();
        let upgrade = recorded != version.as_str();
        let active = host.service_active().await?;
        if !upgrade && !config_changed && active {
            // Only readiness was off: wait for it.
            self.wait_node(node, &version, progress, true).await?;
            self.record(node, &version, progress);
            return Ok(());
        }
        let cluster = self.cluster(progress).await?;
        let drain = self.spec.upgrade.drain;
        if drain {
            cluster.cordon(&node.key, true).await?;
        }
        let result = async {
            if drain {
                let budget =
                    Deadline::after(self.spec.upgrade.drain_timeout.min(self.deadline.remaining()), Default::default());
                let drained =
                    self.deadline.within(async { Ok::<_, K3sError>(cluster.drain(&node.key, &budget).await) }).await?;
                drained.map_err(|e| K3sError::Drain { node: node.key.clone(), detail: e.to_string() })?;
            }
            if config_changed {
                host.write_config(&desired).await?;
            }
            tracing::info!(node = %node.key, from = %recorded, to = %version, config_changed, "rolling");
            if upgrade {
                let installer = self.installer().await?;
                host.install(&installer, &version).await?;
            } else {
                host.restart().await?;
            }
            self.wait_node(node, &version, progress, true).await
        }
        .await;
        if drain {
            // Uncordoned also when the node failed: a cordoned node is an outage in waiting.
            let uncordoned = cluster.cordon(&node.key, false).await;
            if let (Ok(()), Err(e)) = (&result, uncordoned) {
                return Err(e.into());
            }
        }
        result?;
        self.record(node, &version, progress);
        Ok(())
    }

    /// Every node Ready (but those already recorded as not Ready, which are repaired first),
    /// `/readyz` ok: the gate before any node is taken down.
    async fn preflight(&self, progress: &Progress) -> Result<(), K3sError> {
        let cluster = self.cluster(progress).await?;
        let mut problems = Vec::new();
        let readyz = nodes::readyz(&cluster).await?;
        if !readyz.ok {
            problems.push(format!("/readyz: {}", readyz.detail));
        }
        for (key, record) in &progress.nodes {
            if !record.ready {
                continue;
            }
            match cluster.node(key).await? {
                Some(status) if status.ready => {}
                Some(status) => problems.push(format!("not Ready: {status}")),
                None => problems.push(format!("node {key:?} is not registered")),
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(K3sError::Refused(format!(
                "the cluster is not healthy, so no node is taken down: {}",
                problems.join("; ")
            )))
        }
    }

    /// From `progress` (what the state records) to the spec.
    pub async fn converge(&mut self, progress: &mut Progress) -> Result<(), K3sError> {
        let spec = self.spec;
        // A node whose host changed is removed, then joined again.
        let removed: Vec<(String, NodeRecord)> = progress
            .nodes
            .iter()
            .filter(|(key, record)| spec.node(key).is_none_or(|n| n.host != record.host || n.role != record.role))
            .map(|(k, r)| (k.clone(), r.clone()))
            .collect();
        let new: Vec<&NodeSpec> = spec
            .nodes
            .iter()
            .filter(|n| progress.nodes.get(&n.key).is_none_or(|r| r.host != n.host || r.role != n.role))
            .collect();
        self.refuse_foreign(&new).await?;
        if progress.nodes.is_empty() {
            self.bootstrap(progress).await?;
        }
        let existing: Vec<&NodeSpec> = spec
            .nodes
            .iter()
            .filter(|n| progress.nodes.get(&n.key).is_some_and(|r| r.host == n.host && r.role == n.role))
            .collect();
        let stale: Vec<&NodeSpec> = {
            let mut stale = Vec::new();
            for node in &existing {
                if self.needs_roll(node, progress).await? {
                    stale.push(*node);
                }
            }
            stale
        };
        // Nodes recorded as not Ready (a node whose upgrade failed) are repaired first; the
        // health gate holds for all the others.
        let mut stale = stale;
        stale.sort_by_key(|n| (n.role, progress.nodes.get(&n.key).is_some_and(|r| r.ready), n.key.clone()));
        if !removed.is_empty() || !stale.is_empty() {
            self.preflight(progress).await?;
        }
        // Agents leave before servers; within a role, in reverse key order.
        let mut leaving = removed;
        leaving.sort_by(|a, b| b.1.role.cmp(&a.1.role).then(b.0.cmp(&a.0)));
        for (key, record) in &leaving {
            self.remove(key, record, progress).await?;
        }
        if stale
            .iter()
            .any(|n| progress.nodes.get(&n.key).is_some_and(|r| r.version != spec.version_for(n.role).as_str()))
            && spec.upgrade.snapshot_before
        {
            let name = format!("platform-pre-upgrade-{}", spec.version.as_str().replace('+', "-"));
            let output = self.host(spec.bootstrap()).snapshot(&name).await?;
            tracing::info!(snapshot = %output.trim(), "etcd snapshot taken before the upgrade");
        }
        if spec.upgrade.strategy == Strategy::SystemUpgradeController {
            let upgrading: Vec<&NodeSpec> = stale
                .iter()
                .copied()
                .filter(|n| progress.nodes.get(&n.key).is_some_and(|r| r.version != spec.version_for(n.role).as_str()))
                .collect();
            if !upgrading.is_empty() {
                self.suc_upgrade(&upgrading, progress).await?;
                // Only the nodes SUC upgraded can have nothing left to do (their config already
                // matched); the others still need what made them stale.
                let mut rest = Vec::new();
                for node in stale {
                    if !upgrading.iter().any(|u| u.key == node.key) || self.needs_roll(node, progress).await? {
                        rest.push(node);
                    }
                }
                stale = rest;
            }
        }
        for node in stale.iter().filter(|n| n.role == Role::Server) {
            self.roll(node, progress).await?;
        }
        let joining_servers: Vec<&NodeSpec> =
            new.iter().copied().filter(|n| n.role == Role::Server && !progress.nodes.contains_key(&n.key)).collect();
        for node in joining_servers {
            self.join(node, progress).await?;
        }
        let agents: Vec<&NodeSpec> = stale.iter().copied().filter(|n| n.role == Role::Agent).collect();
        for chunk in agents.chunks(spec.upgrade.agent_concurrency) {
            self.each_agent(chunk, progress, Step::Roll).await?;
        }
        let joining: Vec<&NodeSpec> =
            new.iter().copied().filter(|n| n.role == Role::Agent && !progress.nodes.contains_key(&n.key)).collect();
        if !joining.is_empty() {
            self.each_agent(&joining, progress, Step::Join).await?;
        }
        Ok(())
    }

    /// Rolls or joins `agents` at the same time; every one that finished is recorded, and the
    /// first failure is returned.
    async fn each_agent(&mut self, agents: &[&NodeSpec], progress: &mut Progress, step: Step) -> Result<(), K3sError> {
        // Token and installer once, before the agents share them.
        self.token().await?;
        self.installer().await?;
        let snapshot = progress.clone();
        let this = &*self;
        let results = futures::future::join_all(agents.iter().map(|node| {
            let mut own = snapshot.clone();
            async move {
                let mut sub = this.shallow();
                let result = match step {
                    Step::Roll => sub.roll(node, &mut own).await,
                    Step::Join => sub.join(node, &mut own).await,
                };
                (node.key.clone(), own.nodes.get(&node.key).cloned(), result)
            }
        }))
        .await;
        let mut first_error = None;
        for (key, record, result) in results {
            match (result, record) {
                (Ok(()), Some(record)) => {
                    progress.nodes.insert(key, record);
                }
                (Ok(()), None) => {}
                (Err(e), _) => first_error = first_error.or(Some(e)),
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Upgrades through the System Upgrade Controller: writes its Plans, then waits for each
    /// node (servers first, as SUC does them) and records it as it arrives.
    async fn suc_upgrade(&self, nodes: &[&NodeSpec], progress: &mut Progress) -> Result<(), K3sError> {
        let cluster = self.cluster(progress).await?;
        suc::apply_plans(&cluster, self.spec).await?;
        for node in nodes {
            let version = self.spec.version_for(node.role).clone();
            self.wait_node(node, &version, progress, false).await?;
            self.record(node, &version, progress);
        }
        Ok(())
    }

    /// Takes over an imported cluster: every configured node must already run k3s of its
    /// configured version and role, and be Ready. Nothing is installed or restarted.
    pub async fn adopt(&mut self, progress: &mut Progress) -> Result<(), K3sError> {
        let spec = self.spec;
        for node in &spec.nodes {
            let probe = self.host(node).probe().await?;
            let want = spec.version_for(node.role);
            let found = match (&probe.version, probe.active.iter().any(|s| s == node.role.service())) {
                (Some(version), true) if version == want => None,
                (Some(version), true) => Some(format!("runs k3s {version}, not the configured {want}")),
                (Some(_), false) => Some(format!("has k3s but its {} service is not running", node.role.service())),
                (None, _) => Some("does not run k3s".to_string()),
            };
            if let Some(found) = found {
                return Err(K3sError::Refused(format!(
                    "cannot adopt node {:?} ({}): it {found}. Make the configuration describe the cluster as it \
                     is, then change it after the import",
                    node.key, node.host
                )));
            }
        }
        let (credentials, kubeconfig) = self.read_credentials(spec.bootstrap()).await?;
        progress.credentials = Some(credentials);
        progress.kubeconfig = Some(kubeconfig);
        for node in &spec.nodes {
            let version = spec.version_for(node.role).clone();
            self.wait_node(node, &version, progress, true).await?;
            self.record(node, &version, progress);
        }
        Ok(())
    }

    fn shallow(&self) -> Rollout<'a> {
        Rollout {
            platform: self.platform,
            spec: self.spec,
            ssh: self.ssh,
            deadline: self.deadline,
            token: self.token.clone(),
            user_token: self.user_token,
            installer: self.installer.clone(),
            waited: self.waited.clone(),
        }
    }

    /// Whether an existing node must be rolled: another version, another config, or not Ready.
    async fn needs_roll(&mut self, node: &NodeSpec, progress: &Progress) -> Result<bool, K3sError> {
        let record = &progress.nodes[&node.key];
        if record.version != self.spec.version_for(node.role).as_str() || !record.ready {
            return Ok(true);
        }
        let desired = self.desired_config(node).await?;
        Ok(self.host(node).read_config().await?.as_deref() != Some(desired.as_str()))
    }
}

#[derive(Debug, Clone, Copy)]
enum Step {
    Roll,
    Join,
}

/// `https://<host>:6443`, with brackets around an IPv6 address.
pub fn server_url(host: &str) -> String {
    if host.contains(':') {
        format!("https://[{host}]:6443")
    } else {
        format!("https://{host}:6443")
    }
}
