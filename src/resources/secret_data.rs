//! The secret values `platform_secret` and `platform_sealed_secret` take, and how they are
//! fingerprinted: `data` (sensitive, kept in state, for any Terraform), `data_wo` with
//! `data_wo_version` (write-only, never stored; Terraform >= 1.11).

use std::collections::BTreeMap;
use std::sync::LazyLock;

use regex::Regex;
use sha2::{Digest, Sha256};

use crate::clients::keyed::DigestKey;
use crate::framework::diagnostics::{AttributePath, Diagnostics};
use crate::framework::schema::Attribute;
use crate::framework::value::Value;

/// Kubernetes' rule for keys of a Secret's data.
static SECRET_KEY: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^[-._a-zA-Z0-9]+$").unwrap());

pub fn data_attributes() -> Vec<Attribute> {
    vec![
        Attribute::string_map("data").optional().sensitive().describe(
            "Secret values by key, as text. Sensitive, but stored in state: prefer `data_wo` on Terraform 1.11 and later.",
        ),
        Attribute::string_map("data_wo").optional().sensitive().write_only().describe(
            "Write-only secret values by key (Terraform 1.11 and later): sent to the cluster, never stored in \
             plan or state. Terraform cannot see changes to them: bump `data_wo_version` to apply new values.",
        ),
        Attribute::number("data_wo_version")
            .optional()
            .describe("Any number; changing it applies the current `data_wo` values."),
    ]
}

fn is_set(config: &Value, name: &str) -> bool {
    config.get_attr(name).is_some_and(|v| !v.is_null())
}

/// At most one source of values among `sources`; key syntax; `data_wo_version` with `data_wo`.
pub fn validate(config: &Value, sources: &[&str], diags: &mut Diagnostics) {
    let set: Vec<&str> = sources.iter().copied().filter(|s| is_set(config, s)).collect();
    if set.len() > 1 {
        diags.error_at(
            AttributePath::root(set[1]),
            "Conflicting secret sources",
            format!("Set only one of {}; this configuration sets {}.", quoted(sources), quoted(&set)),
        );
    }
    for attribute in ["data", "data_wo"] {
        let Some(Value::Map(entries)) = config.get_attr(attribute) else { continue };
        for key in entries.keys() {
            if key.len() > 253 || !SECRET_KEY.is_match(key) {
                diags.error_at(
                    AttributePath::root(attribute).key(key),
                    "Invalid secret key",
                    format!("{key:?} must be 1-253 letters, digits, '-', '_' or '.'."),
                );
            }
        }
    }
    if is_set(config, "data_wo_version") && !is_set(config, "data_wo") {
        diags.error_at(AttributePath::root("data_wo_version"), "Missing data_wo", "`data_wo_version` versions `data_wo`; set both.");
    }
}

fn quoted(names: &[&str]) -> String {
    names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
}

/// The values to write: `data` from the plan, or `data_wo` from the configuration (the only
/// place write-only values exist). `None` when neither is set.
pub fn configured(planned: &Value, config: &Value) -> Option<BTreeMap<String, Vec<u8>>> {
    let source = [planned.get_attr("data"), config.get_attr("data_wo")].into_iter().flatten().find(|v| !v.is_null())?;
    let entries = source.as_map()?;
    Some(entries.iter().filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.as_bytes().to_vec()))).collect())
}

/// A fingerprint of keys and values: changes when any of them does, reveals neither.
/// Length prefixes keep `{"ab": "c"}` and `{"a": "bc"}` apart.
pub fn digest<'a>(entries: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> String {
    let mut hasher = Sha256::new();
    for (key, value) in entries {
        hasher.update((key.len() as u64).to_be_bytes());
        hasher.update(key.as_bytes());
        hasher.update((value.len() as u64).to_be_bytes());
        hasher.update(value);
    }
    format!("sha256:{}", hex::encode(hasher.finalize()))
}

/// Like [`digest`], but an HMAC under `key`: for values that must not be fingerprinted in
/// the clear (a digest kept in state would let anyone test guesses of them).
pub fn keyed_digest<'a>(key: &DigestKey, entries: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> String {
    let mut fingerprint = key.fingerprint();
    for (name, value) in entries {
        fingerprint.field(name.as_bytes()).field(value);
    }
    fingerprint.finish()
}

pub fn map_digest(key: &DigestKey, entries: &BTreeMap<String, Vec<u8>>) -> String {
    keyed_digest(key, entries.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_separates_keys_from_values_and_is_order_stable() {
        let a = digest([("ab", b"c".as_slice())]);
        let b = digest([("a", b"bc".as_slice())]);
        assert_ne!(a, b);
        assert!(a.starts_with("sha256:"));
    }

    #[test]
    fn keyed_digests_depend_on_the_key_and_are_no_plain_hash() {
        let mut map = BTreeMap::new();
        map.insert("y".to_string(), b"2".to_vec());
        map.insert("x".to_string(), b"1".to_vec());
        let key = DigestKey::derive(b"identity-1", "test");
        let keyed = map_digest(&key, &map);
        assert_eq!(keyed, keyed_digest(&key, [("x", b"1".as_slice()), ("y", b"2".as_slice())]), "not order-stable");
        assert!(keyed.starts_with("hmac-sha256:"), "{keyed}");
        assert_ne!(keyed, map_digest(&DigestKey::derive(b"identity-2", "test"), &map), "the key makes no difference");
        let plain = digest([("x", b"1".as_slice()), ("y", b"2".as_slice())]);
        assert_ne!(keyed.trim_start_matches("hmac-sha256:"), plain.trim_start_matches("sha256:"));
        assert_ne!(keyed_digest(&key, [("ab", b"c".as_slice())]), keyed_digest(&key, [("a", b"bc".as_slice())]));
    }

    #[test]
    fn one_source_only_and_valid_keys() {
        let config = Value::object([
            ("data", Value::map([("ok.key", Value::string("v")), ("bad key", Value::string("v"))])),
            ("sops_file", Value::string("x.yaml")),
            ("data_wo", Value::Null),
            ("data_wo_version", Value::number(1)),
        ]);
        let mut diags = Diagnostics::new();
        validate(&config, &["data", "data_wo", "sops_file"], &mut diags);
        let text: Vec<String> = diags.iter().map(|d| format!("{} {}", d.summary, d.detail)).collect();
        assert_eq!(text.len(), 3, "{text:?}");
        assert!(text[0].contains("`data`, `sops_file`"), "{text:?}");
        assert!(text[1].contains("\"bad key\""), "{text:?}");
        assert!(text[2].contains("data_wo_version"), "{text:?}");
    }
}
