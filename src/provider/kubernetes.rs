//! The provider block's `kubernetes { ... }`: its schema, and how it becomes the default
//! connection every resource without its own `cluster` attribute uses.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::clients::kube::{ConnectionSpec, ExecSpec};
use crate::framework::diagnostics::{AttributePath, Diagnostic};
use crate::framework::schema::{Attribute, Block, NestedBlock};
use crate::framework::value::Value;
use crate::platform::{connection_not_known, kube_diagnostic, DefaultConnection};

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

/// Why a known default connection cannot be used (its kubeconfig does not parse, names a
/// context it lacks, holds bad certificates...), found without contacting the cluster. A
/// kubeconfig file that does not exist yet is no problem here: the same apply may write it.
pub async fn connection_problem(connection: &DefaultConnection) -> Option<Diagnostic> {
    let DefaultConnection::Known(spec) = connection else { return None };
    if spec.config_paths.iter().any(|path| !path.exists()) {
        return None;
    }
    let error = spec.to_config().await.err()?;
    Some(kube_diagnostic("Invalid Kubernetes connection", &error))
}

fn string_at(object: &Value, name: &str, path: &AttributePath) -> Result<Option<String>, Diagnostic> {
    match object.get_attr(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Unknown) => Err(connection_not_known(path.clone().attribute(name))),
        Some(_) => Err(Diagnostic::error("Invalid value", format!("{name} must be a string")).at(path.clone().attribute(name))),
    }
}

fn bool_at(object: &Value, name: &str, path: &AttributePath) -> Result<bool, Diagnostic> {
    match object.get_attr(name) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::Unknown) => Err(connection_not_known(path.clone().attribute(name))),
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
                _ => Err(connection_not_known(path.clone().attribute(name).index(i as i64))),
            })
            .collect(),
        Some(_) => Err(connection_not_known(path.clone().attribute(name))),
    }
}

fn string_map_at(object: &Value, name: &str, path: &AttributePath) -> Result<BTreeMap<String, String>, Diagnostic> {
    match object.get_attr(name) {
        None | Some(Value::Null) => Ok(BTreeMap::new()),
        Some(Value::Map(entries)) => entries
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                _ => Err(connection_not_known(path.clone().attribute(name).key(k))),
            })
            .collect(),
        Some(_) => Err(connection_not_known(path.clone().attribute(name))),
    }
}
