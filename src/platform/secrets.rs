//! SOPS decryption on behalf of resources, with the keys the provider's `secrets` block
//! names: age keys are loaded once, on first use, and plaintext never leaves memory.

use std::path::Path;
use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};

use crate::clients::sops::{self, Decrypted, Format, Keys};
use crate::framework::diagnostics::{AttributePath, Diagnostic};

/// What the `secrets` block said; keys are loaded lazily from it.
#[derive(Default)]
pub struct SecretsConfig {
    age_key_file: Option<String>,
    age_key: Option<SecretString>,
}

impl std::fmt::Debug for SecretsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretsConfig")
            .field("age_key_file", &self.age_key_file)
            .field("age_key", &self.age_key.as_ref().map(|_| "(redacted)"))
            .finish()
    }
}

impl SecretsConfig {
    pub fn new(age_key_file: Option<String>, age_key: Option<SecretString>) -> SecretsConfig {
        SecretsConfig { age_key_file, age_key }
    }

    pub fn load_keys(&self) -> Result<Keys, sops::SopsError> {
        match &self.age_key {
            Some(inline) => Keys::from_identities_text(inline.expose_secret()),
            None => Keys::load(self.age_key_file.as_deref(), &|name| std::env::var(name).ok()),
        }
    }
}

/// The `format` attribute of SOPS-reading types, or the format sops infers from the file name.
pub fn sops_format(path: &str, format: Option<&str>) -> Result<Format, String> {
    match format {
        None => Ok(Format::from_path(Path::new(path))),
        Some("yaml") => Ok(Format::Yaml),
        Some("json") => Ok(Format::Json),
        Some("dotenv") => Ok(Format::Dotenv),
        Some("binary") => Ok(Format::Binary),
        Some(other) => Err(format!("format must be one of yaml, json, dotenv or binary, not {other:?}")),
    }
}

/// Reads and decrypts a SOPS file. Errors name the file and `at`, never any plaintext.
pub fn decrypt_file(keys: &Result<Arc<Keys>, Diagnostic>, path: &str, format: Format, at: AttributePath) -> Result<Decrypted, Diagnostic> {
    let keys = keys.as_ref().map_err(|d| d.clone().at(at.clone()))?;
    let contents = std::fs::read(path).map_err(|e| {
        Diagnostic::error("Cannot read SOPS file", format!("Reading {path:?} failed: {e}.")).at(at.clone())
    })?;
    sops::decrypt(&contents, format, keys)
        .map_err(|e| Diagnostic::error("Cannot decrypt SOPS file", format!("{path}: {e}")).at(at))
}
