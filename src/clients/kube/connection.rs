//! How to reach a cluster, and turning that into a `kube::Config`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use kube::config::{AuthInfo, ExecConfig, KubeConfigOptions, Kubeconfig};
use secrecy::SecretString;
use tower::buffer::BufferLayer;

use super::retry::RetryLayer;
use super::KubeError;

/// Everything a user can say about reaching a cluster, from the provider block or a
/// resource's `cluster` attribute. Equal specs share one client.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct ConnectionSpec {
    pub config_paths: Vec<PathBuf>,
    pub config_context: Option<String>,
    /// A whole kubeconfig document, as produced by a cluster created in the same run.
    pub kubeconfig: Option<String>,
    pub host: Option<String>,
    pub token: Option<String>,
    pub cluster_ca_certificate: Option<String>,
    pub client_certificate: Option<String>,
    pub client_key: Option<String>,
    pub insecure: bool,
    pub exec: Option<ExecSpec>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct ExecSpec {
    pub api_version: String,
    pub command: String,
    pub args: Vec<String>,
    pub env: BTreeMap<String, String>,
}

/// Secrets never reach logs, even through `{:?}`.
impl fmt::Debug for ConnectionSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redacted = |v: &Option<String>| v.as_ref().map(|_| "<redacted>");
        f.debug_struct("ConnectionSpec")
            .field("config_paths", &self.config_paths)
            .field("config_context", &self.config_context)
            .field("kubeconfig", &redacted(&self.kubeconfig))
            .field("host", &self.host)
            .field("token", &redacted(&self.token))
            .field("cluster_ca_certificate", &self.cluster_ca_certificate.as_ref().map(|_| "<pem>"))
            .field("client_certificate", &self.client_certificate.as_ref().map(|_| "<pem>"))
            .field("client_key", &redacted(&self.client_key))
            .field("insecure", &self.insecure)
            .field("exec", &self.exec.as_ref().map(|e| &e.command))
            .finish()
    }
}

impl ConnectionSpec {
    /// The kubeconfig files to read when the user gave no paths: `KUBECONFIG` (a list),
    /// then `KUBE_CONFIG_PATH`, then `~/.kube/config` if it exists.
    pub fn default_config_paths(get_env: impl Fn(&str) -> Option<String>) -> Vec<PathBuf> {
        if let Some(list) = get_env("KUBECONFIG").filter(|v| !v.is_empty()) {
            return std::env::split_paths(&list).filter(|p| !p.as_os_str().is_empty()).collect();
        }
        if let Some(path) = get_env("KUBE_CONFIG_PATH").filter(|v| !v.is_empty()) {
            return vec![PathBuf::from(path)];
        }
        dirs::home_dir()
            .map(|home| home.join(".kube").join("config"))
            .filter(|p| p.exists())
            .into_iter()
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.config_paths.is_empty() && self.kubeconfig.is_none() && self.host.is_none()
    }

    /// Builds the client configuration. Reads local files but contacts nothing.
    pub async fn to_config(&self) -> Result<kube::Config, KubeError> {
        let kubeconfig = self.load_kubeconfig()?;
        let mut config = match kubeconfig {
            Some(kubeconfig) => {
                let options = KubeConfigOptions { context: self.config_context.clone(), ..Default::default() };
                kube::Config::from_custom_kubeconfig(kubeconfig, &options)
                    .await
                    .map_err(|e| KubeError::Config(format!("invalid kubeconfig: {e}")))?
            }
            None => {
                let host = self.host.as_deref().ok_or_else(|| {
                    KubeError::Config(
                        "no cluster configured: set `host` or a kubeconfig (`config_path`, KUBECONFIG or `kubeconfig`)".into(),
                    )
                })?;
                let mut config = kube::Config::new(parse_host(host)?);
                config.auth_info = AuthInfo::default();
                config
            }
        };
        if let Some(host) = &self.host {
            config.cluster_url = parse_host(host)?;
        }
        if let Some(pem) = &self.cluster_ca_certificate {
            config.root_cert = Some(pem_certificates(pem, "cluster_ca_certificate")?);
        }
        if let Some(token) = &self.token {
            config.auth_info.token = Some(SecretString::from(token.clone()));
        }
        if let Some(cert) = &self.client_certificate {
            pem_certificates(cert, "client_certificate")?;
            config.auth_info.client_certificate_data = Some(base64_encode(cert));
        }
        if let Some(key) = &self.client_key {
            config.auth_info.client_key_data = Some(SecretString::from(base64_encode(key)));
        }
        if self.insecure {
            config.accept_invalid_certs = true;
        }
        if let Some(exec) = &self.exec {
            config.auth_info.exec = Some(ExecConfig {
                api_version: Some(exec.api_version.clone()),
                command: Some(exec.command.clone()),
                args: Some(exec.args.clone()),
                env: Some(
                    exec.env
                        .iter()
                        .map(|(k, v)| [("name".to_string(), k.clone()), ("value".to_string(), v.clone())].into())
                        .collect(),
                ),
                ..Default::default()
            });
        }
        config.connect_timeout = Some(std::time::Duration::from_secs(10));
        config.read_timeout = Some(std::time::Duration::from_secs(60));
        // Retries are ours (`build_client`), bounded by the operation's deadline; kube's own
        // would wait up to 1000 s between attempts, unaware of it.
        config.default_retry = false;
        Ok(config)
    }

    fn load_kubeconfig(&self) -> Result<Option<Kubeconfig>, KubeError> {
        if let Some(text) = &self.kubeconfig {
            return Kubeconfig::from_yaml(text)
                .map(Some)
                .map_err(|e| KubeError::Config(format!("the `kubeconfig` text is not a valid kubeconfig: {e}")));
        }
        let mut merged: Option<Kubeconfig> = None;
        for path in &self.config_paths {
            let path = expand_home(path);
            let next = Kubeconfig::read_from(&path)
                .map_err(|e| KubeError::Config(format!("cannot read kubeconfig {}: {e}", path.display())))?;
            merged = Some(match merged {
                None => next,
                Some(first) => first.merge(next).map_err(|e| KubeError::Config(e.to_string()))?,
            });
        }
        Ok(merged)
    }
}

/// A client for `config` whose every request goes through the [`RetryLayer`], which counts
/// its retries in `retries`.
pub(super) fn build_client(config: kube::Config, retries: Arc<AtomicU64>) -> Result<kube::Client, kube::Error> {
    let builder = kube::client::ClientBuilder::try_from(config)?;
    // The retry layer sends a request more than once, so the service under it must be
    // shareable: a buffer in front of kube's (boxed, not clonable) stack.
    Ok(builder.with_layer(&BufferLayer::new(1024)).with_layer(&RetryLayer::new(retries)).build())
}

fn parse_host(host: &str) -> Result<http::Uri, KubeError> {
    let with_scheme = if host.contains("://") { host.to_string() } else { format!("https://{host}") };
    with_scheme
        .parse()
        .map_err(|e| KubeError::Config(format!("`host` {host:?} is not a URL: {e}")))
}

fn pem_certificates(pem: &str, what: &str) -> Result<Vec<Vec<u8>>, KubeError> {
    let certs: Result<Vec<_>, _> = rustls_pemfile::certs(&mut pem.as_bytes()).collect();
    match certs {
        Ok(certs) if !certs.is_empty() => Ok(certs.into_iter().map(|c| c.to_vec()).collect()),
        _ => Err(KubeError::Config(format!("`{what}` must hold a PEM-encoded certificate"))),
    }
}

fn base64_encode(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text.as_bytes())
}

fn expand_home(path: &std::path::Path) -> PathBuf {
    match path.strip_prefix("~") {
        Ok(rest) => dirs::home_dir().map(|h| h.join(rest)).unwrap_or_else(|| path.to_path_buf()),
        Err(_) => path.to_path_buf(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_hides_secrets() {
        let spec = ConnectionSpec {
            token: Some("s3cr3t-token".into()),
            client_key: Some("-----BEGIN PRIVATE KEY-----".into()),
            kubeconfig: Some("apiVersion: v1 token: abc".into()),
            host: Some("https://127.0.0.1:6443".into()),
            ..Default::default()
        };
        let text = format!("{spec:?}");
        assert!(!text.contains("s3cr3t") && !text.contains("PRIVATE KEY") && !text.contains("abc"), "{text}");
        assert!(text.contains("127.0.0.1:6443"));
    }

    #[test]
    fn kubeconfig_list_comes_from_the_environment() {
        let paths = ConnectionSpec::default_config_paths(|k| (k == "KUBECONFIG").then(|| "/a:/b".to_string()));
        assert_eq!(paths, vec![PathBuf::from("/a"), PathBuf::from("/b")]);
        let single = ConnectionSpec::default_config_paths(|k| (k == "KUBE_CONFIG_PATH").then(|| "/c".to_string()));
        assert_eq!(single, vec![PathBuf::from("/c")]);
    }

    #[tokio::test]
    async fn host_and_token_make_a_config_without_contacting_anything() {
        let spec = ConnectionSpec { host: Some("127.0.0.1:1".into()), token: Some("t".into()), insecure: true, ..Default::default() };
        let config = spec.to_config().await.unwrap();
        assert_eq!(config.cluster_url.to_string(), "https://127.0.0.1:1/");
        assert!(config.accept_invalid_certs);
    }

    #[tokio::test]
    async fn bad_inputs_are_reported_by_name() {
        let spec = ConnectionSpec { host: Some("h".into()), cluster_ca_certificate: Some("junk".into()), ..Default::default() };
        let err = spec.to_config().await.unwrap_err().to_string();
        assert!(err.contains("cluster_ca_certificate"), "{err}");
        let none = ConnectionSpec::default().to_config().await.unwrap_err().to_string();
        assert!(none.contains("no cluster configured"), "{none}");
    }
}
