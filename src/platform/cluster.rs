//! The cluster connection as resources see it: the `cluster` attribute every
//! Kubernetes-backed resource and data source accepts, and the default connection the
//! provider's `kubernetes` block sets (read in `provider::kubernetes`).

use std::collections::BTreeMap;

use crate::clients::kube::ConnectionSpec;
use crate::framework::diagnostics::{AttributePath, Diagnostic};
use crate::framework::schema::Attribute;
use crate::framework::value::Value;

/// The fields a `cluster` value may have, with what each means.
pub const CLUSTER_FIELDS: &[(&str, &str)] = &[
    ("host", "URL of the Kubernetes API server"),
    ("token", "bearer token"),
    ("cluster_ca_certificate", "PEM of the API server's CA"),
    ("client_certificate", "PEM client certificate"),
    ("client_key", "PEM private key of `client_certificate`"),
    ("insecure", "skip verification of the API server's certificate (bool)"),
    ("kubeconfig", "a whole kubeconfig document"),
    ("context", "context of `kubeconfig` to use"),
];

/// The optional `cluster` attribute of Kubernetes-backed resources and data sources.
///
/// A `map(string)`, not a nested attribute or `dynamic`: Terraform 1.0 crashes planning a
/// null nested attribute and logs `dynamic` state (credentials included) at debug level.
/// A map takes `{ host = ..., insecure = true }` literals and objects of strings from other
/// resources alike; its keys are checked by [`validate_cluster_attribute`].
pub fn cluster_attribute() -> Attribute {
    let fields: Vec<String> = CLUSTER_FIELDS.iter().map(|(name, what)| format!("`{name}` ({what})")).collect();
    Attribute::string_map("cluster")
        .optional()
        .sensitive()
        .describe(&format!(
            "Connection to the cluster holding this object, overriding the provider's `kubernetes` block: a map with {}. \
             May refer to a cluster created in the same apply: while it is unknown, planning contacts nothing.",
            fields.join(", ")
        ))
}

/// The entries of a `cluster` value (a `map(string)`).
fn cluster_fields<'a>(cluster: &'a Value, path: &AttributePath) -> Result<&'a BTreeMap<String, Value>, Diagnostic> {
    match cluster {
        Value::Map(fields) => Ok(fields),
        _ => Err(Diagnostic::error(
            "Invalid cluster connection",
            "`cluster` must be a map such as `{ host = \"https://...\", token = \"...\" }`.",
        )
        .at(path.clone())),
    }
}

/// Checks the shape of `cluster` at plan time; unknown values are fine.
pub fn validate_cluster_attribute(config: &Value, diags: &mut crate::framework::diagnostics::Diagnostics) {
    let path = AttributePath::root("cluster");
    let Some(cluster) = config.get_attr("cluster") else { return };
    if cluster.is_null() || cluster.is_unknown() {
        return;
    }
    let fields = match cluster_fields(cluster, &path) {
        Ok(fields) => fields,
        Err(diagnostic) => return diags.push(diagnostic),
    };
    for name in fields.keys() {
        if !CLUSTER_FIELDS.iter().any(|(field, _)| *field == name) {
            let known: Vec<&str> = CLUSTER_FIELDS.iter().map(|(f, _)| *f).collect();
            diags.error_at(
                path.clone().key(name),
                "Unknown cluster connection field",
                format!("`cluster` has no field {name:?}; the fields are: {}.", known.join(", ")),
            );
        }
    }
    if let Some(Value::String(insecure)) = fields.get("insecure") {
        if let Err(diagnostic) = parse_insecure(Some(insecure.as_str()), &path) {
            diags.push(diagnostic);
        }
    }
    if let Err(diagnostic) = require_host_or_kubeconfig(fields, &path) {
        diags.push(diagnostic);
    }
}

/// A field's text; an unknown value cannot be used yet.
fn field_value(fields: &BTreeMap<String, Value>, name: &str, path: &AttributePath) -> Result<Option<String>, Diagnostic> {
    match fields.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(connection_not_known(path.clone().key(name))),
    }
}

/// `insecure` arrives as text in the map; `true`/`false` are what HCL's bools become.
fn parse_insecure(value: Option<&str>, path: &AttributePath) -> Result<bool, Diagnostic> {
    match value {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => Err(Diagnostic::error(
            "Invalid cluster connection",
            format!("`insecure` must be true or false, not {other:?}."),
        )
        .at(path.clone().key("insecure"))),
    }
}

/// Present means set, known or not: an unknown `host` will have a value at apply.
fn require_host_or_kubeconfig(fields: &BTreeMap<String, Value>, path: &AttributePath) -> Result<(), Diagnostic> {
    let present = |name: &str| fields.get(name).is_some_and(|v| !v.is_null());
    if present("host") || present("kubeconfig") {
        Ok(())
    } else {
        Err(Diagnostic::error("Incomplete cluster connection", "`cluster` needs at least `host` or `kubeconfig`.")
            .at(path.clone()))
    }
}

/// What the provider block says about the default cluster.
#[derive(Debug, Clone, Default)]
pub enum DefaultConnection {
    /// `ConfigureProvider` has not run (validation-only processes).
    #[default]
    NotConfigured,
    /// The block refers to values unknown until apply (a cluster created in this run).
    Unknown,
    Known(Box<ConnectionSpec>),
}

/// A connection setting that is needed now but known only after apply.
pub fn connection_not_known(path: AttributePath) -> Diagnostic {
    Diagnostic::error(
        "Connection not known yet",
        "This connection setting is only known after apply, but it is needed now.",
    )
    .at(path)
}

/// Reads a resource's `cluster` attribute: `Ok(None)` when absent (use the provider's).
pub fn connection_from_attribute(cluster: Option<&Value>) -> Result<Option<ConnectionSpec>, Diagnostic> {
    let path = AttributePath::root("cluster");
    let cluster = match cluster {
        None => return Ok(None),
        Some(v) if v.is_null() => return Ok(None),
        Some(v) if v.is_unknown() => return Err(connection_not_known(path)),
        Some(v) => v,
    };
    let fields = cluster_fields(cluster, &path)?;
    require_host_or_kubeconfig(fields, &path)?;
    let get = |name: &str| field_value(fields, name, &path);
    let spec = ConnectionSpec {
        host: get("host")?,
        token: get("token")?,
        cluster_ca_certificate: get("cluster_ca_certificate")?,
        client_certificate: get("client_certificate")?,
        client_key: get("client_key")?,
        insecure: parse_insecure(get("insecure")?.as_deref(), &path)?,
        kubeconfig: get("kubeconfig")?,
        config_context: get("context")?,
        ..Default::default()
    };
    Ok(Some(spec))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::diagnostics::Diagnostics;

    fn config_with_cluster(entries: &[(&str, Value)]) -> Value {
        let cluster = Value::Map(entries.iter().map(|(k, v)| (k.to_string(), v.clone())).collect());
        Value::Object(BTreeMap::from([("cluster".to_string(), cluster)]))
    }

    #[test]
    fn plan_time_checks_tolerate_unknowns_but_not_mistakes() {
        let mut diags = Diagnostics::new();
        validate_cluster_attribute(&config_with_cluster(&[("host", Value::Unknown), ("token", Value::Unknown)]), &mut diags);
        assert!(diags.is_empty(), "{diags:?}");

        let mut diags = Diagnostics::new();
        validate_cluster_attribute(&config_with_cluster(&[("hots", "x".into()), ("insecure", "yes".into())]), &mut diags);
        let summaries: Vec<&str> = diags.iter().map(|d| d.summary.as_str()).collect();
        assert_eq!(
            summaries,
            ["Unknown cluster connection field", "Invalid cluster connection", "Incomplete cluster connection"]
        );
    }

    #[test]
    fn a_known_cluster_becomes_a_connection_spec() {
        let config = config_with_cluster(&[("host", "https://127.0.0.1:6443".into()), ("insecure", "true".into())]);
        let spec = connection_from_attribute(config.get_attr("cluster")).unwrap().unwrap();
        assert_eq!(spec.host.as_deref(), Some("https://127.0.0.1:6443"));
        assert!(spec.insecure);
        assert!(connection_from_attribute(Some(&Value::Null)).unwrap().is_none());
        let unknown = config_with_cluster(&[("host", Value::Unknown)]);
        assert!(connection_from_attribute(unknown.get_attr("cluster")).is_err());
    }
}
