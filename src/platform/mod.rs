//! What the resources and data sources of this provider share during one Terraform run:
//! [`Platform`] (the default connection, the client cache, the SOPS keys), the `cluster`
//! attribute every Kubernetes-backed type accepts, SOPS decryption, and
//! [`kube_diagnostic`], the one place a Kubernetes failure becomes a diagnostic.
//!
//! `provider` fills it in at ConfigureProvider; resources and data sources depend on it and
//! never on `provider`. It knows no resource type.

mod cluster;
pub mod cluster_health;
pub mod dns;
mod secrets;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};

pub use cluster::{
    cluster_attribute, connection_attribute, connection_from_attribute, connection_not_known, validate_cluster_attribute,
    DefaultConnection,
};
pub use secrets::{sops_format, SecretsConfig};
pub use dns::DnsTarget;

use crate::clients::dns::DnsError;
use crate::clients::kube::{ClientCache, Cluster, KubeError};
use dns::{DnsClients, DnsDefaults, DEFAULT_DNS_NAME};
use crate::clients::sops::{Decrypted, Format, Keys};
use crate::framework::diagnostics::{AttributePath, Diagnostic};
use crate::framework::value::Value;

/// What every resource of this provider shares.
#[derive(Default)]
pub struct Platform {
    default_connection: RwLock<DefaultConnection>,
    clients: ClientCache,
    secrets: RwLock<SecretsConfig>,
    /// Loaded on first use, then shared: one key file read per run.
    sops_keys: Mutex<Option<Result<Arc<Keys>, Diagnostic>>>,
    dns_defaults: RwLock<DnsDefaults>,
    dns_clients: DnsClients,
}

impl Platform {
    /// Sets the default cluster from the provider's `kubernetes` block.
    pub fn set_default_connection(&self, connection: DefaultConnection) {
        *self.default_connection.write().expect("connection lock") = connection;
    }

    /// Sets the provider's `secrets` block; keys loaded under the previous one are dropped.
    pub fn set_secrets(&self, secrets: SecretsConfig) {
        *self.secrets.write().expect("secrets lock") = secrets;
        *self.sops_keys.lock().expect("sops keys lock") = None;
    }

    /// The cluster a resource talks to: its own `cluster` attribute when set, else the
    /// provider's. Clients are built on first use and reused.
    pub async fn cluster(&self, cluster_attribute: Option<&Value>) -> Result<Cluster, Diagnostic> {
        let spec = self.connection_spec(cluster_attribute)?;
        let path = cluster_attribute.filter(|c| !c.is_null()).map(|_| AttributePath::root("cluster"));
        self.clients.get(&spec).await.map_err(|e| {
            let diagnostic = kube_diagnostic("Invalid Kubernetes connection", &e);
            match path {
                Some(path) => diagnostic.at(path),
                None => diagnostic,
            }
        })
    }

    /// The connection [`Platform::cluster`] uses, without connecting: the `cluster`
    /// attribute when set, else the provider's.
    pub fn connection_spec(
        &self,
        cluster_attribute: Option<&Value>,
    ) -> Result<crate::clients::kube::ConnectionSpec, Diagnostic> {
        Ok(match connection_from_attribute(cluster_attribute)? {
            Some(spec) => spec,
            None => match self.default_connection.read().expect("connection lock").clone() {
                DefaultConnection::Known(spec) if !spec.is_empty() => *spec,
                DefaultConnection::Known(_) | DefaultConnection::NotConfigured => {
                    return Err(Diagnostic::error(
                        "No Kubernetes cluster configured",
                        "Set the provider's `kubernetes` block (or KUBECONFIG), or this resource's `cluster` attribute.",
                    ))
                }
                DefaultConnection::Unknown => {
                    return Err(Diagnostic::error(
                        "Kubernetes connection not known yet",
                        "The provider's `kubernetes` block depends on values known only after apply. \
                         Use the resource's `cluster` attribute to connect to a cluster created in the same run.",
                    ))
                }
            },
        })
    }
}

impl Platform {
    /// Sets the provider's `dns` blocks.
    pub fn set_dns_defaults(&self, defaults: DnsDefaults) {
        *self.dns_defaults.write().expect("dns lock") = defaults;
    }

    /// The DNS server of a record: its own `connection` when set, else the provider's `dns`
    /// block named `dns_name` (the only block when there is one and no name is given).
    pub fn dns(&self, dns_name: Option<&Value>, connection: Option<&Value>) -> Result<DnsTarget, Diagnostic> {
        let chosen = match dns::connection_from_attribute(connection)? {
            Some(chosen) => chosen,
            None => match dns_name {
                Some(Value::Unknown) => None,
                Some(Value::String(name)) => self.dns_block(Some(name))?.and_then(|(_, block)| block),
                _ => self.dns_block(None)?.and_then(|(_, block)| block),
            },
        };
        match chosen {
            Some(connection) => self.dns_target(&connection),
            None => Ok(DnsTarget::NotKnown),
        }
    }

    /// The name of the `dns` block a record without `dns` uses: the only block, or the one
    /// named `default`; `None` when that is not decided.
    pub fn implied_dns_name(&self) -> Option<String> {
        self.dns_block(None).ok().flatten().map(|(name, _)| name)
    }

    /// The provider's `dns` block named `name`, or without a name the only block or the one
    /// named `default`: its name and connection (`None` while not known). `Ok(None)` while
    /// the blocks themselves are not known.
    fn dns_block(&self, name: Option<&str>) -> Result<Option<(String, Option<dns::DnsConnection>)>, Diagnostic> {
        let blocks = match &*self.dns_defaults.read().expect("dns lock") {
            DnsDefaults::Unknown => return Ok(None),
            DnsDefaults::NotConfigured => BTreeMap::new(),
            DnsDefaults::Known(blocks) => blocks.clone(),
        };
        let names = || blocks.keys().map(|n| format!("{n:?}")).collect::<Vec<_>>().join(", ");
        let chosen = match name {
            Some(name) => name,
            None if blocks.len() == 1 => blocks.keys().next().map(String::as_str).unwrap_or(DEFAULT_DNS_NAME),
            None if blocks.contains_key(DEFAULT_DNS_NAME) => DEFAULT_DNS_NAME,
            None => {
                let detail = if blocks.is_empty() {
                    "The provider has no `dns` block: add one, or give this record a `connection`.".to_string()
                } else {
                    format!("The provider has several `dns` blocks ({}): say which with `dns`.", names())
                };
                return Err(Diagnostic::error("Which DNS server?", detail).at(AttributePath::root("dns")));
            }
        };
        match blocks.get(chosen) {
            Some(block) => Ok(Some((chosen.to_string(), block.clone()))),
            None => {
                let detail = if blocks.is_empty() {
                    format!("The provider has no `dns` block; add one named {chosen:?}, or give this record a `connection`.")
                } else {
                    format!("The provider has no `dns` block named {chosen:?}; its `dns` blocks are {}.", names())
                };
                Err(Diagnostic::error("Unknown DNS server", detail).at(AttributePath::root("dns")))
            }
        }
    }

    fn dns_target(&self, connection: &dns::DnsConnection) -> Result<DnsTarget, Diagnostic> {
        let backend = self
            .dns_clients
            .get(connection)
            .map_err(|e| Diagnostic::error("Invalid DNS connection", e))?;
        Ok(DnsTarget::Ready { backend, owner_id: connection.owner_id.clone() })
    }

    /// Decrypts the SOPS file at `path` with the provider's age keys; errors point at `at`.
    pub fn decrypt_sops_file(&self, path: &str, format: Format, at: AttributePath) -> Result<Decrypted, Diagnostic> {
        let keys = self
            .sops_keys
            .lock()
            .expect("sops keys lock")
            .get_or_insert_with(|| {
                self.secrets.read().expect("secrets lock").load_keys().map(Arc::new).map_err(|e| {
                    Diagnostic::error("No usable age key for SOPS", format!("{e}"))
                })
            })
            .clone();
        secrets::decrypt_file(&keys, path, format, at)
    }
}

/// A diagnostic for a Kubernetes failure, with a hint for the failures users hit most.
/// The one place a [`KubeError`] becomes something Terraform shows.
pub fn kube_diagnostic(summary: &str, error: &KubeError) -> Diagnostic {
    let hint = match error {
        KubeError::Unreachable { .. } => {
            "\n\nCheck that the API server is running and that `host` or the kubeconfig points at it.".to_string()
        }
        KubeError::Tls { .. } => "\n\nCheck `cluster_ca_certificate` (or the kubeconfig's certificate-authority) and that `host` \
             names the server its certificate was issued for."
            .to_string(),
        KubeError::ExecPlugin { .. } => "\n\nRun the `exec` command of the `cluster` attribute or the provider's `kubernetes` block \
             (or the kubeconfig user's exec plugin) by hand to see why it fails."
            .to_string(),
        KubeError::Unauthorized { .. } | KubeError::Credentials { .. } => "\n\nThe credentials are wrong or have expired: update \
             the resource's `cluster` attribute or the provider's `kubernetes` block (token, client certificate, \
             `exec` or kubeconfig)."
            .to_string(),
        KubeError::Forbidden { verb: Some(verb), resource, .. } => {
            format!("\n\nGrant the user permission to {verb} {resource} (a Role or ClusterRole and its binding), or use other credentials.")
        }
        KubeError::Timeout(_) => "\n\nRaise this resource's `timeouts` if the cluster is just slow.".to_string(),
        _ => String::new(),
    };
    Diagnostic::error(summary, format!("{error}{hint}"))
}

/// A diagnostic for a DNS failure, with a hint for the failures users hit most. The one
/// place a [`DnsError`] becomes something Terraform shows.
pub fn dns_diagnostic(summary: &str, error: &DnsError) -> Diagnostic {
    let hint = match error {
        DnsError::Unreachable { .. } => "\n\nCheck that the server runs and that `server` or `url` points at it; raise `timeouts` if it is just slow.",
        DnsError::Credentials { .. } => "\n\nCheck the TSIG key (`key_name`, `key_algorithm`, `key_secret`) or the API key/token of the `dns` block or `connection`.",
        DnsError::ZoneNotServed { .. } => "\n\nCheck `zone`: the server must be the zone's primary (authoritative) server.",
        DnsError::Changed { .. } => "\n\nSomeone changed the record set meanwhile. Run `terraform apply -refresh-only` to see it, then plan again.",
        DnsError::Partial { .. } => "\n\nThe next `terraform apply` reads the records and finishes the change.",
        DnsError::Interrupted(crate::clients::deadline::Interrupted::Expired { .. }) => {
            "\n\nThe server did not answer in time: check that it runs, or raise this resource's `timeouts`."
        }
        _ => "",
    };
    Diagnostic::error(summary, format!("{error}{hint}"))
}
