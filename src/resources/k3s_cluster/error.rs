//! What can go wrong building or changing a k3s cluster, and its one conversion into a
//! diagnostic ([`diagnostic`]).

use crate::clients::deadline::{Interrupted, WaitError};
use crate::clients::kube::KubeError;
use crate::clients::ssh::SshError;
use crate::framework::diagnostics::Diagnostic;
use crate::platform::kube_diagnostic;

#[derive(Debug, thiserror::Error)]
pub enum K3sError {
    #[error(transparent)]
    Ssh(#[from] SshError),
    #[error(transparent)]
    Kube(#[from] KubeError),
    #[error(transparent)]
    Wait(#[from] WaitError),
    #[error(transparent)]
    Interrupted(#[from] Interrupted),
    /// A host that runs k3s which this resource did not install.
    #[error("host {host} of node {node:?} already runs k3s ({found}) but is not in this resource's state")]
    Foreign { node: String, host: String, found: String },
    #[error("installing k3s on node {node:?} ({host}) failed: {detail}")]
    Install { node: String, host: String, detail: String, log: String },
    #[error("k3s on node {node:?} ({host}) did not start: {detail}")]
    Start { node: String, host: String, detail: String, log: String },
    #[error("the install script could not be fetched from {url}: {detail}")]
    Script { url: String, detail: String },
    #[error("the k3s binary could not be read: {0}")]
    Binary(String),
    #[error("the kubeconfig written by k3s on {host} is not usable: {detail}")]
    Kubeconfig { host: String, detail: String },
    #[error("draining node {node:?} failed: {detail}")]
    Drain { node: String, detail: String },
    #[error("{0}")]
    Refused(String),
}

impl K3sError {
    /// The service log lines the error carries, if any.
    fn log(&self) -> Option<&str> {
        match self {
            K3sError::Install { log, .. } | K3sError::Start { log, .. } if !log.trim().is_empty() => Some(log),
            _ => None,
        }
    }
}

/// The diagnostic for `error`, under `summary`.
pub fn diagnostic(summary: &str, error: &K3sError) -> Diagnostic {
    match error {
        K3sError::Kube(e) => kube_diagnostic(summary, e),
        K3sError::Foreign { .. } => Diagnostic::error(
            summary,
            format!(
                "{error}. It is refused rather than taken over: import the cluster (`terraform import` with the \
                 cluster name) to manage it, or uninstall k3s there first."
            ),
        ),
        K3sError::Ssh(SshError::HostKeyMismatch { .. }) => Diagnostic::error(
            summary,
            format!(
                "{error}. The host's key is not the one in `ssh.known_hosts`: if the host was reinstalled, update \
                 known_hosts; otherwise this may be someone else's machine answering at that address."
            ),
        ),
        other => match other.log() {
            Some(log) => Diagnostic::error(summary, format!("{other}.\n\nLast lines of its output:\n{log}")),
            None => Diagnostic::error(summary, format!("{other}.")),
        },
    }
}
