//! The cluster connection as Terraform sees it: the provider's `kubernetes` block and
//! the `cluster` attribute every Kubernetes-backed resource accepts.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::clients::kube::{ConnectionSpec, ExecSpec};
use crate::framework::diagnostics::{AttributePath, Diagnostic};
use crate::framework::schema::{Attribute, Block, NestedBlock};
use crate::framework::value::Value;

/// The provider block's `kubernetes { ... }`.
pub fn kubernetes_block() -> NestedBlock {
    let exec = Block::new(vec![
        Attribute::string("api_version").required().describe("API version of the exec credential plugin, e.g. `client.authentication.k8s.io/v1beta1`."),
        Attribute::string("command").required().describe("Command that prints an ExecCredential."),
        Attribute::string_list("args").optional().describe("Arguments of the command."),
        Attribute::string_map("env").optional().describe("Extra environment variables for the command."),
    ])
    .describe("Obtain credentials from an external command, as kubectl's exec plugins do.");
    let block = Block::new(vec![
        Attribute::string("config_path").optional().describe("Path of a kubeconfig file. Defaults to `$KUBECONFIG`, then `$KUBE_CONFIG_PATH`, then `~/.kube/config`."),
        Attribute::string_list("config_paths").optional().describe("Several kubeconfig files, merged like `KUBECONFIG` does."),
        Attribute::string("config_context").optional().describe("Context of the kubeconfig to use; defaults to its current context."),
        Attribute::string("host").optional().describe("URL of the Kubernetes API server, overriding the kubeconfig."),
        Attribute::string("token").optional().sensitive().describe("Bearer token."),
        Attribute::string("cluster_ca_certificate").optional().describe("PEM of the CA that signed the API server's certificate."),
        Attribute::string("client_certificate").optional().describe("PEM client certificate for TLS authentication."),
        Attribute::string("client_key").optional().sensitive().describe("PEM private key of `client_certificate`."),
        Attribute::bool("insecure").optional().describe("Skip verification of the API server's certificate. Only for test clusters."),
    ])
    .with_block(NestedBlock::single("exec", exec))
    .describe("How to reach the default Kubernetes cluster. Resources may override it with their `cluster` attribute.");
    NestedBlock::single("kubernetes", block)
}

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
        Some(_) => Err(unknown(path.clone().key(name))),
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

fn string_at(object: &Value, name: &str, path: &AttributePath) -> Result<Option<String>, Diagnostic> {
    match object.get_attr(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Unknown) => Err(unknown(path.clone().attribute(name))),
        Some(_) => Err(Diagnostic::error("Invalid value", format!("{name} must be a string")).at(path.clone().attribute(name))),
    }
}

fn bool_at(object: &Value, name: &str, path: &AttributePath) -> Result<bool, Diagnostic> {
    match object.get_attr(name) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::Unknown) => Err(unknown(path.clone().attribute(name))),
        Some(_) => Err(Diagnostic::error("Invalid value", format!("{name} must be a bool")).at(path.clone().attribute(name))),
    }
}

fn strings_at(object: &Value, name: &str, path: &AttributePath) -> Result<Vec<String>, Diagnostic> {
    match object.get_attr(name) {
        None | Some(Value::Null) => Ok(vec![]),
        Some(Value::List(items)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::String(s) => Ok(s.clone()),
                _ => Err(unknown(path.clone().attribute(name).index(i as i64))),
            })
            .collect(),
        Some(_) => Err(unknown(path.clone().attribute(name))),
    }
}

fn string_map_at(object: &Value, name: &str, path: &AttributePath) -> Result<BTreeMap<String, String>, Diagnostic> {
    match object.get_attr(name) {
        None | Some(Value::Null) => Ok(BTreeMap::new()),
        Some(Value::Map(entries)) => entries
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                _ => Err(unknown(path.clone().attribute(name).key(k))),
            })
            .collect(),
        Some(_) => Err(unknown(path.clone().attribute(name))),
    }
}

fn unknown(path: AttributePath) -> Diagnostic {
    Diagnostic::error(
        "Connection not known yet",
        "This connection setting is only known after apply, but it is needed now.",
    )
    .at(path)
}

/// Reads the provider's `kubernetes` block. Unknown values make the whole default
/// connection unknown: resources that need it before apply then say so.
pub fn default_connection_from_block(
    block: Option<&Value>,
    get_env: impl Fn(&str) -> Option<String>,
) -> Result<DefaultConnection, Diagnostic> {
    let block = match block {
        Some(v) if v.is_unknown() => return Ok(DefaultConnection::Unknown),
        Some(v) if !v.is_null() => v.clone(),
        _ => Value::Null,
    };
    if !block.is_wholly_known() {
        return Ok(DefaultConnection::Unknown);
    }
    let path = AttributePath::root("kubernetes");
    let mut spec = ConnectionSpec::default();
    if !block.is_null() {
        spec.config_paths = strings_at(&block, "config_paths", &path)?.into_iter().map(PathBuf::from).collect();
        if let Some(single) = string_at(&block, "config_path", &path)? {
            spec.config_paths.insert(0, PathBuf::from(single));
        }
        spec.config_context = string_at(&block, "config_context", &path)?;
        spec.host = string_at(&block, "host", &path)?;
        spec.token = string_at(&block, "token", &path)?;
        spec.cluster_ca_certificate = string_at(&block, "cluster_ca_certificate", &path)?;
        spec.client_certificate = string_at(&block, "client_certificate", &path)?;
        spec.client_key = string_at(&block, "client_key", &path)?;
        spec.insecure = bool_at(&block, "insecure", &path)?;
        if let Some(exec) = block.get_attr("exec").filter(|e| !e.is_null()) {
            let exec_path = path.clone().attribute("exec");
            spec.exec = Some(ExecSpec {
                api_version: string_at(exec, "api_version", &exec_path)?.unwrap_or_default(),
                command: string_at(exec, "command", &exec_path)?.unwrap_or_default(),
                args: strings_at(exec, "args", &exec_path)?,
                env: string_map_at(exec, "env", &exec_path)?,
            });
        }
    }
    // Explicit host settings stand alone; otherwise fall back to the usual kubeconfig files.
    if spec.config_paths.is_empty() && spec.host.is_none() {
        spec.config_paths = ConnectionSpec::default_config_paths(get_env);
    }
    Ok(DefaultConnection::Known(Box::new(spec)))
}

/// Reads a resource's `cluster` attribute: `Ok(None)` when absent (use the provider's).
pub fn connection_from_attribute(cluster: Option<&Value>) -> Result<Option<ConnectionSpec>, Diagnostic> {
    let path = AttributePath::root("cluster");
    let cluster = match cluster {
        None => return Ok(None),
        Some(v) if v.is_null() => return Ok(None),
        Some(v) if v.is_unknown() => return Err(unknown(path)),
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
