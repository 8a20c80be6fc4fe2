//! What the provider does on one host, over SSH: find out whether and which k3s runs there,
//! write `config.yaml`, run the install script (install and upgrade), restart, uninstall,
//! read the token and the admin kubeconfig. Only k3s's public contract is used: the install
//! script's environment, its files and its service.

use std::time::Duration;

use super::config::{InstallMode, NodeSpec, Role};
use super::error::K3sError;
use super::version::{self, K3sVersion};
use crate::clients::ssh::SshClient;

pub const CONFIG_PATH: &str = "/etc/rancher/k3s/config.yaml";
pub const KUBECONFIG_PATH: &str = "/etc/rancher/k3s/k3s.yaml";
pub const TOKEN_PATH: &str = "/var/lib/rancher/k3s/server/token";
pub const BINARY_PATH: &str = "/usr/local/bin/k3s";

/// How long a short command (a probe, a file read) may take.
const SHORT: Duration = Duration::from_secs(60);
/// How long the install script may take (it may download a 70 MB binary).
const INSTALL: Duration = Duration::from_secs(900);
/// Lines of the service log quoted when a node fails.
const LOG_LINES: usize = 30;

/// What a host has of k3s.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Probe {
    /// From `k3s --version`, when the binary is installed.
    pub version: Option<K3sVersion>,
    /// The k3s services running (`k3s`, `k3s-agent`).
    pub active: Vec<String>,
    pub has_config: bool,
}

impl Probe {
    pub fn has_k3s(&self) -> bool {
        self.version.is_some() || !self.active.is_empty() || self.has_config
    }

    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(v) = &self.version {
            parts.push(format!("k3s {v} is installed"));
        }
        if !self.active.is_empty() {
            parts.push(format!("service {} is running", self.active.join(", ")));
        }
        if self.has_config {
            parts.push(format!("{CONFIG_PATH} exists"));
        }
        parts.join(", ")
    }
}

/// The install script and, for `mode = "binary"`, the binary to upload first.
pub struct Installer {
    pub script: Vec<u8>,
    pub mode: InstallMode,
    /// Release → (bytes, sha256) for binary mode.
    pub binary: Option<(Vec<u8>, String)>,
}

/// Quotes `text` for a POSIX shell.
pub fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// One node's host, reached through the operation's SSH client.
pub struct NodeHost<'a> {
    pub ssh: &'a SshClient,
    pub node: &'a NodeSpec,
}

impl NodeHost<'_> {
    fn host(&self) -> &str {
        &self.node.host
    }

    pub async fn probe(&self) -> Result<Probe, K3sError> {
        let script = format!(
            "if [ -x {BINARY_PATH} ]; then {BINARY_PATH} --version 2>/dev/null | head -n 1; else echo none; fi\n\
             for s in k3s k3s-agent; do if command -v systemctl >/dev/null 2>&1 && systemctl is-active \"$s\" >/dev/null 2>&1; then echo \"active $s\"; fi; done\n\
             if [ -f {CONFIG_PATH} ]; then echo config; fi\n"
        );
        let out = self.ssh.run_checked(self.host(), &script, None, SHORT).await?;
        let mut lines = out.lines();
        let first = lines.next().unwrap_or_default();
        let mut probe = Probe { version: version::from_version_output(first), ..Probe::default() };
        for line in lines {
            if let Some(service) = line.strip_prefix("active ") {
                probe.active.push(service.to_string());
            } else if line == "config" {
                probe.has_config = true;
            }
        }
        Ok(probe)
    }

    /// The current `config.yaml`, if any (it holds the token: never log it).
    pub async fn read_config(&self) -> Result<Option<String>, K3sError> {
        let out = self
            .ssh
            .run_checked(
                self.host(),
                &format!("if [ -f {CONFIG_PATH} ]; then echo present; cat {CONFIG_PATH}; fi"),
                None,
                SHORT,
            )
            .await?;
        Ok(out.strip_prefix("present\n").map(str::to_string))
    }

    pub async fn write_config(&self, text: &str) -> Result<(), K3sError> {
        self.ssh.write_file(self.host(), CONFIG_PATH, text.as_bytes(), 0o600, SHORT).await?;
        Ok(())
    }

    /// Runs the install script for `version` (an install, or an upgrade of a node that has
    /// k3s), uploading the binary first in binary mode. The script starts the service.
    pub async fn install(&self, installer: &Installer, version: &K3sVersion) -> Result<(), K3sError> {
        let mut env =
            format!("INSTALL_K3S_VERSION={} INSTALL_K3S_EXEC={}", quote(version.as_str()), self.node.role.as_str());
        if let (InstallMode::Binary, Some((bytes, sha256))) = (installer.mode, &installer.binary) {
            self.ssh.upload(self.host(), BINARY_PATH, bytes, 0o755, sha256, INSTALL).await?;
            env.push_str(" INSTALL_K3S_SKIP_DOWNLOAD=true");
        }
        let out = self.ssh.run(self.host(), &format!("{env} sh -s -"), Some(&installer.script), INSTALL).await?;
        if !out.success() {
            let service = self.node.role.service();
            return Err(K3sError::Install {
                node: self.node.key.clone(),
                host: self.host().to_string(),
                detail: format!("the install script exited with {}", out.status),
                log: format!("{}\n\n`journalctl -u {service}`:\n{}", out.tail(LOG_LINES), self.service_log().await),
            });
        }
        Ok(())
    }

    pub async fn restart(&self) -> Result<(), K3sError> {
        let service = self.node.role.service();
        self.ssh.run_checked(self.host(), &format!("systemctl restart {service}"), None, INSTALL).await?;
        Ok(())
    }

    /// Whether the node's service runs (`systemctl is-active`).
    pub async fn service_active(&self) -> Result<bool, K3sError> {
        let service = self.node.role.service();
        let out = self.ssh.run(self.host(), &format!("systemctl is-active {service}"), None, SHORT).await?;
        Ok(out.success() && out.stdout.trim() == "active")
    }

    /// The last lines of the service's log, for diagnostics; empty when unavailable.
    pub async fn service_log(&self) -> String {
        let service = self.node.role.service();
        let script = format!("journalctl -u {service} -n {LOG_LINES} --no-pager 2>&1 | tail -n {LOG_LINES}");
        match self.ssh.run(self.host(), &script, None, SHORT).await {
            Ok(out) => out.stdout.trim_end().to_string(),
            Err(e) => format!("(the service log could not be read: {e})"),
        }
    }

    /// Runs k3s's uninstall script for the node's role; absent scripts mean nothing is left.
    pub async fn uninstall(&self, role: Role) -> Result<(), K3sError> {
        let script = role.uninstall_script();
        self.ssh.run_checked(self.host(), &format!("if [ -x {script} ]; then {script}; fi"), None, INSTALL).await?;
        Ok(())
    }

    /// The cluster token a server keeps.
    pub async fn read_token(&self) -> Result<String, K3sError> {
        let out = self.ssh.run_checked(self.host(), &format!("cat {TOKEN_PATH}"), None, SHORT).await?;
        Ok(out.trim().to_string())
    }

    /// The admin kubeconfig a server writes.
    pub async fn read_kubeconfig(&self) -> Result<String, K3sError> {
        Ok(self.ssh.run_checked(self.host(), &format!("cat {KUBECONFIG_PATH}"), None, SHORT).await?)
    }

    /// `k3s etcd-snapshot save`; returns what k3s printed.
    pub async fn snapshot(&self, name: &str) -> Result<String, K3sError> {
        let script = format!("{BINARY_PATH} etcd-snapshot save --name {}", quote(name));
        Ok(self.ssh.run_checked(self.host(), &script, None, INSTALL).await?)
    }

    /// Waits until `path` exists on the host (the token and kubeconfig appear after start).
    pub async fn wait_for_file(&self, path: &str, timeout: Duration) -> Result<(), K3sError> {
        let script = format!(
            "i=0; while [ ! -s {path} ]; do i=$((i+1)); if [ $i -gt {} ]; then exit 1; fi; sleep 1; done",
            timeout.as_secs().max(1)
        );
        let out = self.ssh.run(self.host(), &script, None, timeout + SHORT).await?;
        if out.success() {
            Ok(())
        } else {
            Err(K3sError::Start {
                node: self.node.key.clone(),
                host: self.host().to_string(),
                detail: format!("{path} did not appear within {}", humantime::format_duration(timeout)),
                log: self.service_log().await,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_for_the_shell() {
        assert_eq!(quote("v1.29.1+k3s2"), "'v1.29.1+k3s2'");
        assert_eq!(quote("it's"), r"'it'\''s'");
    }

    #[test]
    fn describes_what_a_host_has() {
        let probe =
            Probe { version: K3sVersion::parse("v1.29.1+k3s2").ok(), active: vec!["k3s".into()], has_config: true };
        assert!(probe.has_k3s());
        assert_eq!(
            probe.describe(),
            "k3s v1.29.1+k3s2 is installed, service k3s is running, /etc/rancher/k3s/config.yaml exists"
        );
        assert!(!Probe::default().has_k3s());
    }
}
