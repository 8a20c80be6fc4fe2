//! Kubernetes object metadata as resources expose it: name validation, and the labels
//! and annotations a resource manages (keys others add never show up as drift).

use std::collections::BTreeMap;
use std::sync::LazyLock;

use regex::Regex;

use crate::clients::kube::ownership::OWNER_ANNOTATION;
use crate::framework::diagnostics::{AttributePath, Diagnostics};
use crate::framework::value::Value;

static DNS1123_LABEL: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$").unwrap());
static QUALIFIED_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$").unwrap());
static DNS1123_SUBDOMAIN: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$").unwrap());
static LABEL_VALUE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$").unwrap());

/// Keys Kubernetes, kubectl or this provider add on their own; never adopted on import.
const SYSTEM_KEYS: &[&str] =
    &["kubernetes.io/metadata.name", "kubectl.kubernetes.io/last-applied-configuration", OWNER_ANNOTATION];

/// Why `name` is not a DNS-1123 label, if it is not one.
pub fn dns1123_label_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        Some("must not be empty".into())
    } else if name.len() > 63 {
        Some(format!("must be at most 63 characters (it has {})", name.len()))
    } else if !DNS1123_LABEL.is_match(name) {
        Some("must consist of lower case letters, digits and '-', and start and end with a letter or digit".into())
    } else {
        None
    }
}

/// Why `name` is not a DNS-1123 subdomain (the rule for most object names), if it is not one.
pub fn dns1123_subdomain_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        Some("must not be empty".into())
    } else if name.len() > 253 {
        Some(format!("must be at most 253 characters (it has {})", name.len()))
    } else if !DNS1123_SUBDOMAIN.is_match(name) {
        Some("must consist of lower case letters, digits, '-' and '.', and start and end with a letter or digit".into())
    } else {
        None
    }
}

/// Why `key` is not a valid label or annotation key (`[prefix/]name`), if it is not one.
pub fn qualified_name_problem(key: &str) -> Option<String> {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix {
        if prefix.is_empty() || prefix.len() > 253 || !DNS1123_SUBDOMAIN.is_match(prefix) {
            return Some(format!("prefix {prefix:?} must be a DNS subdomain such as example.com"));
        }
    }
    if name.is_empty() || name.len() > 63 || !QUALIFIED_NAME.is_match(name) {
        return Some(format!(
            "name part {name:?} must be 1-63 characters of letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
        ));
    }
    None
}

pub fn validate_name(config: &Value, attribute: &str, diags: &mut Diagnostics) {
    if let Some(name) = config.get_attr(attribute).and_then(Value::as_str) {
        if let Some(problem) = dns1123_label_problem(name) {
            diags.error_at(
                AttributePath::root(attribute),
                "Invalid name",
                format!("{name:?} is not a valid Kubernetes name: it {problem}."),
            );
        }
    }
}

/// Checks label keys and values, and annotation keys.
pub fn validate_labels_and_annotations(config: &Value, diags: &mut Diagnostics) {
    for attribute in ["labels", "annotations"] {
        let Some(Value::Map(entries)) = config.get_attr(attribute) else { continue };
        for (key, value) in entries {
            let path = AttributePath::root(attribute).key(key);
            if let Some(problem) = qualified_name_problem(key) {
                diags.error_at(path.clone(), format!("Invalid {} key", &attribute[..attribute.len() - 1]), format!("{key:?}: {problem}."));
            }
            if key == OWNER_ANNOTATION {
                diags.error_at(
                    path.clone(),
                    "Reserved annotation",
                    format!("{key:?} records which resource instance owns the object; the provider sets it (see `owner_id`)."),
                );
            }
            if attribute == "labels" {
                if let Value::String(v) = value {
                    if v.len() > 63 || !LABEL_VALUE.is_match(v) {
                        diags.error_at(
                            path,
                            "Invalid label value",
                            format!("{v:?} must be at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit."),
                        );
                    }
                }
            }
        }
    }
}

/// A `map(string)` attribute as a Rust map; null and absent are `None`.
pub fn string_map(value: Option<&Value>) -> Option<BTreeMap<String, String>> {
    match value {
        Some(Value::Map(entries)) => Some(
            entries
                .iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect(),
        ),
        _ => None,
    }
}

pub fn string_map_value(map: &BTreeMap<String, String>) -> Value {
    Value::Map(map.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect())
}

/// The live entries for the keys this resource manages (those in `managed`). A managed key
/// someone removed is simply missing, so the next plan puts it back. Null stays null.
pub fn managed_entries(managed: Option<&Value>, live: Option<&BTreeMap<String, String>>) -> Value {
    let Some(managed) = string_map(managed) else { return Value::Null };
    let empty = BTreeMap::new();
    let live = live.unwrap_or(&empty);
    let kept: BTreeMap<String, String> =
        managed.keys().filter_map(|k| live.get(k).map(|v| (k.clone(), v.clone()))).collect();
    string_map_value(&kept)
}

/// Everything but the keys Kubernetes and kubectl add themselves; null when nothing is left.
pub fn adoptable_entries(live: Option<&BTreeMap<String, String>>) -> Value {
    let kept: BTreeMap<String, String> = live
        .into_iter()
        .flatten()
        .filter(|(k, _)| !SYSTEM_KEYS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if kept.is_empty() { Value::Null } else { string_map_value(&kept) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns1123_labels() {
        assert!(dns1123_label_problem("monitoring").is_none());
        assert!(dns1123_label_problem("flux-system").is_none());
        assert!(dns1123_label_problem("Monitoring").is_some());
        assert!(dns1123_label_problem("-a").is_some());
        assert!(dns1123_label_problem(&"a".repeat(64)).unwrap().contains("63"));
        assert!(dns1123_label_problem("").is_some());
        assert!(dns1123_label_problem("a").is_none());
        assert!(dns1123_label_problem("a-").is_some());
        assert!(dns1123_label_problem("a.b").is_some());
        assert!(dns1123_label_problem(&"a".repeat(63)).is_none());
        assert_eq!(dns1123_label_problem(&"a".repeat(64)).as_deref(), Some("must be at most 63 characters (it has 64)"));
    }

    #[test]
    fn qualified_names() {
        assert!(qualified_name_problem("app.kubernetes.io/part-of").is_none());
        assert!(qualified_name_problem("tier").is_none());
        assert!(qualified_name_problem("Bad Key").is_some());
        assert!(qualified_name_problem("UPPER.example/x").is_some());
        assert!(qualified_name_problem("a/").is_some());
    }

    #[test]
    fn only_managed_keys_are_read_back() {
        let managed = string_map_value(&BTreeMap::from([("a".into(), "1".into()), ("b".into(), "2".into())]));
        let live = BTreeMap::from([("a".to_string(), "changed".to_string()), ("other".to_string(), "x".to_string())]);
        let read = managed_entries(Some(&managed), Some(&live));
        assert_eq!(read, string_map_value(&BTreeMap::from([("a".into(), "changed".into())])));
        assert_eq!(managed_entries(Some(&Value::Null), Some(&live)), Value::Null);
    }

    #[test]
    fn import_skips_system_keys() {
        let live = BTreeMap::from([
            ("kubernetes.io/metadata.name".to_string(), "x".to_string()),
            (OWNER_ANNOTATION.to_string(), "some-instance".to_string()),
            ("team".to_string(), "sre".to_string()),
        ]);
        assert_eq!(adoptable_entries(Some(&live)), string_map_value(&BTreeMap::from([("team".into(), "sre".into())])));
        assert_eq!(adoptable_entries(None), Value::Null);
    }
}
