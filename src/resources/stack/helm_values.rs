//! A Helm component's values as Flux reads them: the `values` mapping, and sensitive values
//! given through a Secret (`valuesFrom` with `targetPath`), encoded so that Helm's `--set`
//! parsing gives them back unchanged.

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::documents::yaml_to_json;
use super::flux::{safe_label, HelmComponent};
use crate::resources::metadata::dns1123_label_problem as dns_label_problem;

/// The values mapping; `None` when there are none (no text, an empty document or `null`).
pub(super) fn parse_values(values_yaml: Option<&str>) -> Result<Option<Value>, String> {
    let Some(text) = values_yaml else { return Ok(None) };
    let parsed: serde_yaml::Value =
        serde_yaml::from_str(text).map_err(|error| format!("values are not valid YAML: {error}"))?;
    let mut parsed = parsed;
    parsed.apply_merge().map_err(|error| format!("values are not valid YAML: {error}"))?;
    match yaml_to_json(parsed).map_err(|problem| format!("values: {problem}"))? {
        Value::Null => Ok(None),
        Value::Object(values) if values.is_empty() => Ok(None),
        values @ Value::Object(_) => Ok(Some(values)),
        Value::Array(_) => Err("values must be a YAML mapping of chart values, not a list".into()),
        _ => Err("values must be a YAML mapping of chart values, not a single value".into()),
    }
}

/// `valuesFrom` entries, one per sensitive key: Flux reads the Secret's entry of that name
/// and sets it at that dot path of the values (over any value written in the values YAML).
pub(super) fn values_from(c: &HelmComponent) -> Result<Vec<Value>, Vec<String>> {
    if c.sensitive_keys.is_empty() {
        return Ok(Vec::new());
    }
    let mut problems = Vec::new();
    let secret = match c.values_secret_name {
        Some(name) if !name.is_empty() => name,
        _ => {
            problems.push("sensitive values need a values Secret name".to_string());
            ""
        }
    };
    let mut entries = Vec::with_capacity(c.sensitive_keys.len());
    for (position, key) in c.sensitive_keys.iter().enumerate() {
        if let Some(problem) = sensitive_key_problem(key) {
            problems.push(format!("sensitive key {key:?} {problem}"));
        } else if c.sensitive_keys[..position].contains(key) {
            problems.push(format!("sensitive key {key:?} is listed twice"));
        }
        entries.push(json!({"kind": "Secret", "name": secret, "valuesKey": key, "targetPath": key}));
    }
    if problems.is_empty() {
        Ok(entries)
    } else {
        Err(problems)
    }
}

/// A sensitive key is both a Secret data key (`[-._a-zA-Z0-9]+`, at most 253) and a Helm
/// `--set` path, where dots separate map keys (so no empty part between dots).
fn sensitive_key_problem(key: &str) -> Option<&'static str> {
    if key.is_empty() || key.len() > 253 {
        Some("must be 1 to 253 characters")
    } else if !key.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')) {
        Some("must be a dot path of letters, digits, '-' and '_' (such as auth.password)")
    } else if key.split('.').any(str::is_empty) {
        Some("must not start or end with '.' or contain '..'")
    } else {
        None
    }
}

/// How to write a sensitive string into the values Secret so that the chart gets it back
/// exactly, as a string.
///
/// Flux merges a `valuesFrom` entry that has a `targetPath` the way `helm --set path=value`
/// does: an unescaped ',' ends the value (and starts another assignment), '\' escapes, a
/// leading '{' starts a list, `true`, `false`, `null` and integers become typed values, and
/// a value wrapped in quotes is taken as a string after every leading and trailing quote is
/// stripped. So '\' and ',' are escaped, and so is a leading '{', `'` or `"`; a value that
/// would be typed is wrapped in double quotes (it holds no quote to lose).
pub fn secret_value_for_target_path(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len() + 2);
    for (position, character) in value.chars().enumerate() {
        let special = matches!(character, '\\' | ',') || (position == 0 && matches!(character, '{' | '\'' | '"'));
        if special {
            escaped.push('\\');
        }
        escaped.push(character);
    }
    if helm_would_type(value) {
        format!("\"{escaped}\"")
    } else {
        escaped
    }
}

/// Whether Helm's `--set` parser turns this text into something other than a string
/// (its `typedVal`: booleans and null in any case, "0", integers not starting with '0').
fn helm_would_type(value: &str) -> bool {
    ["true", "false", "null"].iter().any(|word| value.eq_ignore_ascii_case(word))
        || value == "0"
        || (!value.starts_with('0') && value.parse::<i64>().is_ok())
}

/// The name of the Secret holding a Helm component's sensitive values: a DNS subdomain
/// (at most 253 characters), "<stack>.<component>.helm-values" when both names are valid
/// DNS labels. Otherwise the names are lower-cased, cut down and made safe, and a hash of
/// the original names is appended, so that different stacks and components never share a
/// Secret.
pub fn values_secret_name(stack: &str, component: &str) -> String {
    const SUFFIX: &str = "helm-values";
    if dns_label_problem(stack).is_none() && dns_label_problem(component).is_none() {
        return format!("{stack}.{component}.{SUFFIX}");
    }
    let mut hasher = Sha256::new();
    hasher.update(stack.as_bytes());
    hasher.update([0]);
    hasher.update(component.as_bytes());
    let hash = hex::encode(hasher.finalize());
    format!("{}.{}.{SUFFIX}-{}", safe_label(stack), safe_label(component), &hash[..12])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_names() {
        assert_eq!(values_secret_name("prod", "cert-manager"), "prod.cert-manager.helm-values");
        let odd = values_secret_name("Prod_EU", "cert manager");
        assert!(odd.starts_with("prod-eu.cert-manager.helm-values-"), "{odd}");
        assert_eq!(odd.len(), "prod-eu.cert-manager.helm-values-".len() + 12);
        // Names that clean up alike still get different Secrets.
        assert_ne!(values_secret_name("Prod_EU", "x"), values_secret_name("prod-eu_", "x"));
        assert_ne!(values_secret_name("a", ""), values_secret_name("", "a"));
        for (stack, component) in [("", ""), ("___", "---"), (&*"Z".repeat(400), &*"é".repeat(300)), ("a.b", "c")] {
            let name = values_secret_name(stack, component);
            assert!(name.len() <= 253, "{name}");
            assert!(is_dns_subdomain(&name), "{name}");
        }
    }

    fn is_dns_subdomain(name: &str) -> bool {
        name.len() <= 253 && name.split('.').all(|label| dns_label_problem(label).is_none())
    }

    /// Helm's `--set` value parsing as Flux applies it to a `valuesFrom` entry with a
    /// `targetPath` (quote stripping, then strvals' list detection, escape handling, ',' as
    /// the end of the value and typing), written from their documented behaviour, to check
    /// [`secret_value_for_target_path`] against.
    #[derive(Debug, PartialEq)]
    enum Parsed {
        Str(String),
        Typed(&'static str),
        List,
        /// The value ended at a ',' and more followed (another assignment).
        Cut(String),
    }

    fn helm_parse(raw: &str) -> Parsed {
        let is_quoted = |q: char| raw.starts_with(q) && raw.ends_with(q);
        let (text, as_string) = if is_quoted('\'') || is_quoted('"') {
            (raw.trim_matches(|c| c == '\'' || c == '"'), true)
        } else {
            (raw, false)
        };
        if text.starts_with('{') {
            return Parsed::List;
        }
        let mut value = String::new();
        let mut characters = text.chars();
        while let Some(c) = characters.next() {
            match c {
                '\\' => {
                    if let Some(next) = characters.next() {
                        value.push(next);
                    }
                }
                ',' => return Parsed::Cut(value),
                c => value.push(c),
            }
        }
        if !as_string {
            if value.eq_ignore_ascii_case("true") || value.eq_ignore_ascii_case("false") {
                return Parsed::Typed("bool");
            }
            if value.eq_ignore_ascii_case("null") {
                return Parsed::Typed("null");
            }
            if value == "0" || (!value.is_empty() && !value.starts_with('0') && value.parse::<i64>().is_ok()) {
                return Parsed::Typed("int");
            }
        }
        Parsed::Str(value)
    }

    #[test]
    fn the_model_of_helm_parsing_shows_why_encoding_is_needed() {
        assert_eq!(helm_parse("pa,ss"), Parsed::Cut("pa".into()));
        assert_eq!(helm_parse("True"), Parsed::Typed("bool"));
        assert_eq!(helm_parse("1234"), Parsed::Typed("int"));
        assert_eq!(helm_parse("0123"), Parsed::Str("0123".into()));
        assert_eq!(helm_parse("{a}"), Parsed::List);
        assert_eq!(helm_parse("'quoted'"), Parsed::Str("quoted".into()));
        assert_eq!(helm_parse("a\\b"), Parsed::Str("ab".into()));
    }

    #[test]
    fn secret_values_survive_helm_parsing_unchanged() {
        let samples = [
            "",
            "plain",
            "pa,ss,word",
            "true",
            "FALSE",
            "Null",
            "0",
            "00",
            "0123",
            "1234",
            "-5",
            "+5",
            "1.5",
            "1e3",
            "9223372036854775808",
            "{a,b}",
            "}{",
            "[0]",
            "'single'",
            "\"double\"",
            "'",
            "\"",
            "''",
            "it's",
            "say \"hi\"",
            "ends with '",
            "ends with \"",
            "back\\slash",
            "trailing\\",
            "\\",
            "x=y",
            "a.b",
            "multi\nline\n",
            "  spaced  ",
            "é,ü",
            "-----BEGIN KEY-----\nMII,==\n-----END KEY-----\n",
        ];
        for sample in samples {
            let encoded = secret_value_for_target_path(sample);
            assert_eq!(helm_parse(&encoded), Parsed::Str(sample.to_string()), "{sample:?} encoded as {encoded:?}");
        }
        assert_eq!(secret_value_for_target_path("plain"), "plain");
        assert_eq!(secret_value_for_target_path("true"), "\"true\"");
        assert_eq!(secret_value_for_target_path("a,b"), "a\\,b");
    }
}
