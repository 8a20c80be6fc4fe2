//! Decrypts files encrypted by [sops](https://getsops.io) 3.x with age recipients,
//! in memory, so that secrets the provider reads never touch the disk or a log.
//!
//! It reads YAML, JSON, dotenv and binary files as sops writes them: it recovers
//! the data key with the caller's age identities (directly, or from Shamir shares
//! when the file has several key groups), decrypts the `ENC[AES256_GCM,…]` values
//! under the file's encrypted/unencrypted rules, and refuses the file unless its
//! MAC matches, so a file changed after encryption is never used.
//!
//! It knows nothing of Terraform or Kubernetes, except that
//! [`Decrypted::secret_data`] recognises a Kubernetes Secret manifest. Decrypted
//! values live only in [`Decrypted`], whose `Debug` is redacted, and no error
//! message contains one.

mod cipher;
mod error;
mod formats;
mod keys;
mod metadata;
mod tree;
mod walk;
mod yaml;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use base64::Engine as _;

pub use self::error::SopsError;
use crate::clients::keyed::DigestKey;
pub use self::keys::Keys;
use self::metadata::Metadata;
use self::tree::{Node, Scalar};

/// A sops file format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Yaml,
    Json,
    Dotenv,
    Binary,
}

impl Format {
    /// Like sops: `.yaml`/`.yml` → Yaml, `.json` → Json, `.env` → Dotenv, anything
    /// else Binary (sops compares the suffixes case-sensitively).
    pub fn from_path(path: &Path) -> Format {
        let name = path.to_string_lossy();
        if name.ends_with(".yaml") || name.ends_with(".yml") {
            Format::Yaml
        } else if name.ends_with(".json") {
            Format::Json
        } else if name.ends_with(".env") {
            Format::Dotenv
        } else {
            Format::Binary
        }
    }

    fn name(self) -> &'static str {
        match self {
            Format::Yaml => "YAML",
            Format::Json => "JSON",
            Format::Dotenv => "dotenv",
            Format::Binary => "a sops binary file (JSON)",
        }
    }
}

/// Decrypts a sops file and verifies its MAC.
pub fn decrypt(contents: &[u8], format: Format, keys: &Keys) -> Result<Decrypted, SopsError> {
    let parsed = formats::parse(contents, format)?;
    let metadata = Metadata::from_node(&parsed.metadata)?;
    let data_key = keys.data_key(&metadata)?;
    let mut docs = parsed.docs;
    walk::decrypt_and_verify(&mut docs, &metadata, &data_key)?;
    let content = match format {
        Format::Binary => Content::Binary(binary_data(&docs)?),
        _ => Content::Tree { format, docs },
    };
    Ok(Decrypted { content, digest_key: keys.digest_key(&metadata, &data_key) })
}

/// The single `data` value a binary file is stored as.
fn binary_data(docs: &[Node]) -> Result<Vec<u8>, SopsError> {
    match docs.first().and_then(|doc| doc.get("data")) {
        Some(Node::Scalar(Scalar::Str(s))) => Ok(s.clone().into_bytes()),
        Some(Node::Scalar(Scalar::Bytes(b))) => Ok(b.clone()),
        _ => Err(SopsError::Parse {
            format: Format::Binary.name(),
            reason: "it has no string `data` entry".to_owned(),
        }),
    }
}

/// The plaintext of a decrypted file. `Debug` is redacted.
pub struct Decrypted {
    content: Content,
    digest_key: DigestKey,
}

enum Content {
    Tree { format: Format, docs: Vec<Node> },
    Binary(Vec<u8>),
}

const BINARY_KEY: &str = "data";

impl Decrypted {
    /// A secret key for fingerprints of these values (see [`crate::clients::keyed`]),
    /// derived from the age identity that decrypts the file: a fingerprint made with it
    /// tells nothing to whoever lacks that identity.
    pub fn digest_key(&self) -> &DigestKey {
        &self.digest_key
    }

    /// The plaintext as `sops -d` prints it, without the sops metadata: binary, JSON
    /// and dotenv files byte for byte; YAML as the same data in sops' layout, but
    /// without the file's comments.
    pub fn raw(&self) -> Vec<u8> {
        match &self.content {
            Content::Binary(bytes) => bytes.clone(),
            Content::Tree { format, docs } => formats::render(docs, *format),
        }
    }

    /// Leaf values as strings, keyed by their path: map keys joined with `.`, list
    /// items by index (`a.0.b`). Nulls are `null`; empty maps and lists have no
    /// leaves. YAML documents are merged (later ones win). Binary files give `data`.
    pub fn flattened(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        match &self.content {
            Content::Binary(bytes) => {
                out.insert(
                    BINARY_KEY.to_owned(),
                    String::from_utf8_lossy(bytes).into_owned(),
                );
            }
            Content::Tree { format, docs } => {
                for doc in docs {
                    flatten_into(&mut out, None, doc, *format);
                }
            }
        }
        out
    }

    /// Top-level entries as Kubernetes Secret data: scalars as the file prints them
    /// (nulls empty), maps and lists serialized as YAML (YAML files) or JSON (JSON
    /// files). A Kubernetes Secret manifest (`kind: Secret` with `data` and/or
    /// `stringData`) gives its own data, base64-decoded, merged with `stringData`
    /// (which wins, as in Kubernetes). Binary files give `data`.
    pub fn secret_data(&self) -> Result<BTreeMap<String, Vec<u8>>, SopsError> {
        let (format, docs) = match &self.content {
            Content::Binary(bytes) => {
                return Ok(BTreeMap::from([(BINARY_KEY.to_owned(), bytes.clone())]))
            }
            Content::Tree { format, docs } => (*format, docs),
        };
        if let [doc] = docs.as_slice() {
            if is_secret_manifest(doc) {
                return manifest_data(doc, format);
            }
        }
        Ok(docs
            .iter()
            .flat_map(Node::pairs)
            .map(|(key, value)| (key.to_owned(), secret_value(value, format)))
            .collect())
    }
}

impl fmt::Debug for Decrypted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let format = match &self.content {
            Content::Binary(_) => Format::Binary,
            Content::Tree { format, .. } => *format,
        };
        f.debug_struct("Decrypted")
            .field("format", &format)
            .field("plaintext", &"<redacted>")
            .finish()
    }
}

fn flatten_into(
    out: &mut BTreeMap<String, String>,
    prefix: Option<&str>,
    node: &Node,
    format: Format,
) {
    let path = |key: &str| match prefix {
        Some(prefix) => format!("{prefix}.{key}"),
        None => key.to_owned(),
    };
    match node {
        Node::Map(_) => {
            for (key, value) in node.pairs() {
                flatten_into(out, Some(&path(key)), value, format);
            }
        }
        Node::List(items) => {
            for (index, item) in items.iter().enumerate() {
                flatten_into(out, Some(&path(&index.to_string())), item, format);
            }
        }
        Node::Scalar(scalar) => {
            out.insert(
                prefix.unwrap_or_default().to_owned(),
                formats::scalar_text(scalar, format).into_owned(),
            );
        }
    }
}

fn secret_value(node: &Node, format: Format) -> Vec<u8> {
    match node {
        Node::Scalar(Scalar::Null) => Vec::new(),
        Node::Scalar(Scalar::Bytes(b)) => b.clone(),
        _ => formats::nested(node, format).into_owned().into_bytes(),
    }
}

fn is_secret_manifest(doc: &Node) -> bool {
    doc.get("kind").and_then(Node::as_str) == Some("Secret")
        && (doc.get("data").is_some() || doc.get("stringData").is_some())
}

fn manifest_data(doc: &Node, format: Format) -> Result<BTreeMap<String, Vec<u8>>, SopsError> {
    let invalid = |what: String| Err(SopsError::SecretManifest(what));
    let mut out = BTreeMap::new();
    for (section, base64) in [("data", true), ("stringData", false)] {
        let entries = match doc.get(section) {
            None | Some(Node::Scalar(Scalar::Null)) => continue,
            Some(map @ Node::Map(_)) => map,
            Some(_) => return invalid(format!("`{section}` is not a map")),
        };
        for (key, value) in entries.pairs() {
            let bytes = match (value, base64) {
                (Node::Scalar(Scalar::Str(s)), true) => {
                    match base64::engine::general_purpose::STANDARD.decode(s) {
                        Ok(bytes) => bytes,
                        Err(_) => return invalid(format!("data.{key} is not valid base64")),
                    }
                }
                (_, true) => return invalid(format!("data.{key} is not a base64 string")),
                (Node::Scalar(_), false) => secret_value(value, format),
                (_, false) => return invalid(format!("stringData.{key} is not a scalar")),
            };
            out.insert(key.to_owned(), bytes);
        }
    }
    Ok(out)
}
