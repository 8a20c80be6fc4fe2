//! The `sops` metadata block: where the data key is, which values are encrypted,
//! and the MAC.

use std::sync::LazyLock;

use regex::Regex;

use super::error::SopsError;
use super::tree::{Node, Scalar};

/// The rule a file's values were encrypted by. sops allows at most one; without
/// any it leaves keys ending in `_unencrypted` in clear text.
pub(super) enum CryptRule {
    UnencryptedSuffix(String),
    EncryptedSuffix(String),
    UnencryptedRegex(Regex),
    EncryptedRegex(Regex),
    /// `encrypted_comment_regex`/`unencrypted_comment_regex` decide by the comments
    /// above a value. YAML comments are not available to us (serde_yaml drops them),
    /// so under these rules a value counts as encrypted when it is in the ENC
    /// format. That is safe: a value turned into clear text still changes the MAC.
    ByComments,
}

pub(super) struct AgeStanza {
    pub(super) recipient: String,
    /// The data key (or its Shamir share), age-encrypted and armored.
    pub(super) enc: String,
}

pub(super) struct KeyGroup {
    pub(super) age: Vec<AgeStanza>,
    /// Master keys of other kinds (PGP, cloud KMS, …), which this module cannot use;
    /// counted only to explain a failure.
    pub(super) other_keys: usize,
}

pub(super) struct Metadata {
    /// `lastmodified` as Go re-formats it after parsing: the MAC's additional data.
    pub(super) last_modified: String,
    pub(super) mac: String,
    pub(super) rule: CryptRule,
    pub(super) mac_only_encrypted: bool,
    pub(super) key_groups: Vec<KeyGroup>,
    pub(super) shamir_threshold: usize,
}

const DEFAULT_UNENCRYPTED_SUFFIX: &str = "_unencrypted";
const NON_AGE_KEY_KINDS: [&str; 6] = ["pgp", "kms", "gcp_kms", "azure_kv", "hc_vault", "hckms"];

impl Metadata {
    pub(super) fn from_node(node: &Node) -> Result<Metadata, SopsError> {
        if !matches!(node, Node::Map(_)) {
            return Err(invalid("the `sops` entry is not a map"));
        }
        let last_modified = string_field(node, "lastmodified")?
            .ok_or_else(|| invalid("`lastmodified` is missing"))?;
        Ok(Metadata {
            last_modified: go_rfc3339(last_modified)
                .ok_or_else(|| invalid("`lastmodified` is not an RFC 3339 timestamp"))?,
            mac: string_field(node, "mac")?.unwrap_or_default().to_owned(),
            rule: crypt_rule(node)?,
            mac_only_encrypted: bool_field(node, "mac_only_encrypted")?,
            key_groups: key_groups(node)?,
            shamir_threshold: usize_field(node, "shamir_threshold")?,
        })
    }

    /// Every age recipient named in the file, for messages.
    pub(super) fn age_recipients(&self) -> Vec<&str> {
        self.key_groups
            .iter()
            .flat_map(|g| g.age.iter().map(|s| s.recipient.as_str()))
            .collect()
    }
}

fn crypt_rule(node: &Node) -> Result<CryptRule, SopsError> {
    let mut rules = Vec::new();
    for name in [
        "unencrypted_suffix",
        "encrypted_suffix",
        "unencrypted_regex",
        "encrypted_regex",
        "unencrypted_comment_regex",
        "encrypted_comment_regex",
    ] {
        if let Some(value) = string_field(node, name)?.filter(|v| !v.is_empty()) {
            rules.push((name, value));
        }
    }
    let regex = |name: &str, pattern: &str| {
        Regex::new(pattern)
            .map_err(|_| invalid(&format!("`{name}` is not a valid regular expression")))
    };
    match rules.as_slice() {
        [] => Ok(CryptRule::UnencryptedSuffix(DEFAULT_UNENCRYPTED_SUFFIX.to_owned())),
        [(name, value)] => Ok(match *name {
            "unencrypted_suffix" => CryptRule::UnencryptedSuffix((*value).to_owned()),
            "encrypted_suffix" => CryptRule::EncryptedSuffix((*value).to_owned()),
            "unencrypted_regex" => CryptRule::UnencryptedRegex(regex(name, value)?),
            "encrypted_regex" => CryptRule::EncryptedRegex(regex(name, value)?),
            _ => CryptRule::ByComments,
        }),
        _ => Err(invalid(
            "more than one of the encrypted/unencrypted suffix, regex and comment regex rules is set",
        )),
    }
}

/// A flat key list (the usual case) is one group; `key_groups` is for Shamir sharing.
fn key_groups(node: &Node) -> Result<Vec<KeyGroup>, SopsError> {
    let flat = key_group(node)?;
    if !flat.age.is_empty() || flat.other_keys > 0 {
        return Ok(vec![flat]);
    }
    let groups = match node.get("key_groups") {
        Some(Node::List(groups)) => groups
            .iter()
            .map(key_group)
            .collect::<Result<Vec<_>, _>>()?,
        _ => Vec::new(),
    };
    if groups.is_empty() {
        return Err(invalid("the file names no master keys"));
    }
    Ok(groups)
}

fn key_group(node: &Node) -> Result<KeyGroup, SopsError> {
    let list = |name: &str| match node.get(name) {
        Some(Node::List(items)) => items.as_slice(),
        _ => &[],
    };
    let age = list("age")
        .iter()
        .map(|stanza| {
            let field = |name| {
                string_field(stanza, name)?
                    .map(str::to_owned)
                    .ok_or_else(|| invalid(&format!("an age entry has no `{name}`")))
            };
            Ok(AgeStanza {
                recipient: field("recipient")?,
                enc: field("enc")?,
            })
        })
        .collect::<Result<_, SopsError>>()?;
    let other_keys = NON_AGE_KEY_KINDS.iter().map(|kind| list(kind).len()).sum();
    Ok(KeyGroup { age, other_keys })
}

fn string_field<'a>(node: &'a Node, name: &str) -> Result<Option<&'a str>, SopsError> {
    match node.get(name) {
        None | Some(Node::Scalar(Scalar::Null)) => Ok(None),
        Some(Node::Scalar(Scalar::Str(s))) => Ok(Some(s)),
        Some(_) => Err(invalid(&format!("`{name}` is not a string"))),
    }
}

/// Dotenv files store every metadata value as a string.
fn bool_field(node: &Node, name: &str) -> Result<bool, SopsError> {
    match node.get(name) {
        None | Some(Node::Scalar(Scalar::Null)) => Ok(false),
        Some(Node::Scalar(Scalar::Bool(b))) => Ok(*b),
        Some(Node::Scalar(Scalar::Str(s))) => Ok(s == "true"),
        Some(_) => Err(invalid(&format!("`{name}` is not a boolean"))),
    }
}

/// JSON numbers are floats and dotenv values strings; both count when integral.
fn usize_field(node: &Node, name: &str) -> Result<usize, SopsError> {
    let value = match node.get(name) {
        None | Some(Node::Scalar(Scalar::Null)) => return Ok(0),
        Some(Node::Scalar(Scalar::Int(i))) => Some(*i as f64),
        Some(Node::Scalar(Scalar::Float(f))) => Some(*f),
        Some(Node::Scalar(Scalar::Str(s))) => s.parse::<f64>().ok(),
        Some(_) => None,
    };
    match value {
        Some(v) if v >= 0.0 && v.fract() == 0.0 && v <= 255.0 => Ok(v as usize),
        _ => Err(invalid(&format!(
            "`{name}` is not a small non-negative integer"
        ))),
    }
}

/// Go parses `lastmodified` as RFC 3339 and formats it again before using it as the
/// MAC's additional data: fractional seconds go, and a zero offset becomes `Z`.
fn go_rfc3339(text: &str) -> Option<String> {
    static RFC3339: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.\d+)?(Z|[+-]\d{2}:\d{2})$")
            .expect("the RFC 3339 pattern is valid")
    });
    let parts = RFC3339.captures(text)?;
    let offset = match &parts[2] {
        "+00:00" | "-00:00" => "Z",
        other => other,
    };
    Some(format!("{}{offset}", &parts[1]))
}

fn invalid(reason: &str) -> SopsError {
    SopsError::Metadata(reason.to_owned())
}

#[cfg(test)]
mod tests {
    use super::go_rfc3339;

    #[test]
    fn lastmodified_is_reformatted_like_go() {
        assert_eq!(
            go_rfc3339("2024-05-01T10:00:00Z").as_deref(),
            Some("2024-05-01T10:00:00Z")
        );
        assert_eq!(
            go_rfc3339("2024-05-01T10:00:00.123Z").as_deref(),
            Some("2024-05-01T10:00:00Z")
        );
        assert_eq!(
            go_rfc3339("2024-05-01T10:00:00+00:00").as_deref(),
            Some("2024-05-01T10:00:00Z")
        );
        assert_eq!(
            go_rfc3339("2024-05-01T10:00:00+02:00").as_deref(),
            Some("2024-05-01T10:00:00+02:00")
        );
        assert_eq!(go_rfc3339("yesterday"), None);
    }
}
