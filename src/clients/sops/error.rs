//! The one error type of the sops module.
//!
//! Messages may name files, key paths, recipients and key sources, which are all
//! in clear text in an encrypted file anyway. They never contain decrypted values
//! or private keys: callers may log them and show them to users as they are.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum SopsError {
    #[error("the file is not sops-encrypted: it has no sops metadata")]
    NotEncrypted,

    #[error("cannot parse the file as {format}: {reason}")]
    Parse {
        format: &'static str,
        reason: String,
    },

    #[error("invalid sops metadata: {0}")]
    Metadata(String),

    #[error("cannot read the age key file {path}: {reason}")]
    KeyFile { path: String, reason: String },

    #[error("{origin}, line {line}: {reason}")]
    InvalidIdentity {
        origin: String,
        line: usize,
        reason: &'static str,
    },

    #[error(
        "no age identities to decrypt sops files with: looked in {searched}. Configure an \
         explicit key file (the provider's `secrets.age_key_file`), set SOPS_AGE_KEY to the keys \
         themselves or SOPS_AGE_KEY_FILE to a key file, or put the keys in {default_path}{problems}"
    )]
    NoKeys {
        searched: String,
        default_path: String,
        problems: String,
    },

    #[error(
        "none of the available age identities can decrypt this file{detail}: it is encrypted \
         for {file_recipients}; the identities tried have the public keys {tried}"
    )]
    NoMatchingKey {
        file_recipients: String,
        tried: String,
        detail: String,
    },

    #[error("cannot recover the file's data key: {0}")]
    DataKey(String),

    #[error("cannot decrypt the value at `{path}`: {reason}")]
    Value { path: String, reason: String },

    #[error("MAC mismatch: the file was modified after it was encrypted, or it is corrupt")]
    MacMismatch,

    #[error("invalid Kubernetes Secret manifest: {0}")]
    SecretManifest(String),
}
