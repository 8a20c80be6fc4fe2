//! Downloads of manifests over HTTP(S), checked against a pinned SHA-256 before anyone
//! may use the bytes. Knows nothing of Kubernetes or Terraform.

use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::error_chain;

/// Manifests larger than this are refused rather than held in memory.
const MAX_BYTES: usize = 64 * 1024 * 1024;
const TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("cannot download {url}: {message}")]
    Download { url: String, message: String },
    #[error("{url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("{url} is larger than {max} bytes")]
    TooLarge { url: String, max: usize },
    #[error("{url} has SHA-256 {actual}, not the pinned {expected}: refusing to use it")]
    Checksum { url: String, expected: String, actual: String },
    #[error("{url} is not UTF-8 text")]
    NotText { url: String },
}

/// An HTTP client that trusts the system's CA certificates, with an overall request timeout.
pub(crate) fn client() -> Result<reqwest::Client, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        // A broken system certificate must not make every download fail.
        let _ = roots.add(cert);
    }
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .timeout(TIMEOUT)
        .build()
        .map_err(|e| e.to_string())
}

/// Downloads `url` and returns its text only if its SHA-256 is `expected_sha256` (hex).
pub async fn fetch_verified(url: &str, expected_sha256: &str) -> Result<String, FetchError> {
    let body = fetch_bytes(url, Some(expected_sha256), MAX_BYTES).await?;
    String::from_utf8(body).map_err(|_| FetchError::NotText { url: url.to_string() })
}

/// Downloads `url` (at most `max_bytes`), checked against `expected_sha256` when given.
pub async fn fetch_bytes(url: &str, expected_sha256: Option<&str>, max_bytes: usize) -> Result<Vec<u8>, FetchError> {
    let download = |message: String| FetchError::Download { url: url.to_string(), message };
    let client = client().map_err(download)?;
    let mut response = client.get(url).send().await.map_err(|e| download(error_chain(&e)))?;
    if !response.status().is_success() {
        return Err(FetchError::Status { url: url.to_string(), status: response.status().as_u16() });
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| download(error_chain(&e)))? {
        body.extend_from_slice(&chunk);
        if body.len() > max_bytes {
            return Err(FetchError::TooLarge { url: url.to_string(), max: max_bytes });
        }
    }
    if let Some(expected) = expected_sha256 {
        let actual = hex::encode(Sha256::digest(&body));
        if !actual.eq_ignore_ascii_case(expected) {
            return Err(FetchError::Checksum { url: url.to_string(), expected: expected.to_string(), actual });
        }
    }
    Ok(body)
}
