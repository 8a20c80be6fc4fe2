//! The cluster connection as resources see it: the `cluster` attribute every
//! Kubernetes-backed resource and data source accepts, and the default connection the
//! provider's `kubernetes` block sets (read in `provider::kubernetes`).

use std::collections::BTreeMap;

use crate::clients::kube::{ConnectionSpec, ExecSpec};
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
    ("config_path", "path of a kubeconfig file, read when the resource connects"),
    ("context", "context of `kubeconfig` or `config_path` to use"),
    ("exec_command", "credential plugin run for a token, as kubectl runs one, so that no token is kept in state"),
    ("exec_args", "its arguments, as `jsonencode([...])`"),
    ("exec_env", "its environment, as `jsonencode({...})`"),
    ("exec_api_version", "its `client.authentication.k8s.io` version (default v1beta1)"),
];

const DEFAULT_EXEC_API_VERSION: &str = "client.authentication.k8s.io/v1beta1";

/// `exec_args` / `exec_env` arrive as JSON text in the map.
fn parse_json<T: serde::de::DeserializeOwned>(value: Option<&str>, name: &str, what: &str, path: &AttributePath) -> Result<Option<T>, Diagnostic> {
    match value {
        None => Ok(None),
        Some(text) => serde_json::from_str(text).map(Some).map_err(|_| {
            Diagnostic::error("Invalid cluster connection", format!("`{name}` must be {what}, e.g. written with `jsonencode(...)`."))
                .at(path.clone().key(name))
        }),
    }
}

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
    let known = |name: &str| match fields.get(name) {
        Some(Value::String(text)) => Some(text.as_str()),
        _ => None,
    };
    if let Err(diagnostic) = parse_json::<Vec<String>>(known("exec_args"), "exec_args", "a JSON list of strings", &path) {
        diags.push(diagnostic);
    }
    if let Err(diagnostic) =
        parse_json::<BTreeMap<String, String>>(known("exec_env"), "exec_env", "a JSON object of strings", &path)
    {
        diags.push(diagnostic);
    }
    let exec_set = ["exec_args", "exec_env", "exec_api_version"].iter().any(|f| fields.get(*f).is_some_and(|v| !v.is_null()));
    if exec_set && fields.get("exec_command").is_none_or(Value::is_null) {
        diags.error_at(path.clone().key("exec_command"), "Incomplete cluster connection", "`exec_args`, `exec_env` and `exec_api_version` need `exec_command`.");
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
    if present("host") || present("kubeconfig") || present("config_path") {
        Ok(())
    } else {
        Err(Diagnostic::error("Incomplete cluster connection", "`cluster` needs at least `host`, `kubeconfig` or `config_path`.")
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
        config_paths: get("config_path")?.map(std::path::PathBuf::from).into_iter().collect(),
        config_context: get("context")?,
        exec: match get("exec_command")? {
            None => None,
            Some(command) => Some(ExecSpec {
                api_version: get("exec_api_version")?.unwrap_or_else(|| DEFAULT_EXEC_API_VERSION.to_string()),
                command,
                args: parse_json(get("exec_args")?.as_deref(), "exec_args", "a JSON list of strings", &path)?.unwrap_or_default(),
                env: parse_json(get("exec_env")?.as_deref(), "exec_env", "a JSON object of strings", &path)?.unwrap_or_default(),
            }),
        },
    };
    Ok(Some(spec))
}

/// The `cluster` map that reaches the same cluster as `spec`, whose client talks to `url`:
/// what a `connection` output hands to the `cluster` attribute of other resources. Always
/// has `host`; credentials keep the form they were given in, so a credential plugin stays
/// `exec_*` (no token is stored) and a kubeconfig file stays `config_path` (read when
/// used). Several kubeconfig files (a `KUBECONFIG` list), which one field cannot name, are
/// resolved into `cluster_ca_certificate` and the credentials they hold.
pub async fn connection_attribute(
    spec: &ConnectionSpec,
    url: &str,
) -> Result<BTreeMap<String, String>, crate::clients::kube::KubeError> {
    let mut map = BTreeMap::new();
    let mut put = |name: &str, value: Option<&String>| {
        if let Some(value) = value {
            map.insert(name.to_string(), value.clone());
        }
    };
    put("host", Some(&spec.host.clone().unwrap_or_else(|| url.trim_end_matches('/').to_string())));
    put("token", spec.token.as_ref());
    put("cluster_ca_certificate", spec.cluster_ca_certificate.as_ref());
    put("client_certificate", spec.client_certificate.as_ref());
    put("client_key", spec.client_key.as_ref());
    put("kubeconfig", spec.kubeconfig.as_ref());
    if spec.kubeconfig.is_none() {
        match spec.config_paths.as_slice() {
            [] => {}
            [path] => put("config_path", Some(&path.to_string_lossy().into_owned())),
            _ => inline_kubeconfig(spec, &mut map).await?,
        }
    }
    if spec.kubeconfig.is_some() || spec.config_paths.len() == 1 {
        put_context(spec, &mut map);
    }
    if spec.insecure {
        map.insert("insecure".into(), "true".into());
    }
    if let Some(exec) = &spec.exec {
        map.insert("exec_command".into(), exec.command.clone());
        map.insert("exec_api_version".into(), exec.api_version.clone());
        if !exec.args.is_empty() {
            map.insert("exec_args".into(), serde_json::to_string(&exec.args).unwrap_or_default());
        }
        if !exec.env.is_empty() {
            map.insert("exec_env".into(), serde_json::to_string(&exec.env).unwrap_or_default());
        }
    }
    Ok(map)
}

fn put_context(spec: &ConnectionSpec, map: &mut BTreeMap<String, String>) {
    if let Some(context) = &spec.config_context {
        map.insert("context".into(), context.clone());
    }
}

/// The server certificate and credentials of merged kubeconfig files, as map fields (only
/// those `spec` does not set itself).
async fn inline_kubeconfig(
    spec: &ConnectionSpec,
    map: &mut BTreeMap<String, String>,
) -> Result<(), crate::clients::kube::KubeError> {
    use base64::Engine as _;
    use secrecy::ExposeSecret as _;
    let config = spec.to_config().await?;
    let decode = |data: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(data.trim())
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
    };
    let read = |path: &str| std::fs::read_to_string(path).ok();
    let mut set = |name: &str, value: Option<String>| {
        if let Some(value) = value {
            map.entry(name.to_string()).or_insert(value);
        }
    };
    set(
        "cluster_ca_certificate",
        config.root_cert.as_ref().map(|certs| certs.iter().map(|der| pem_encode(der)).collect()),
    );
    if config.accept_invalid_certs {
        set("insecure", Some("true".into()));
    }
    let auth = &config.auth_info;
    if spec.exec.is_none() {
        if let Some(exec) = &auth.exec {
            set("exec_command", exec.command.clone());
            set("exec_api_version", exec.api_version.clone());
            set("exec_args", exec.args.as_ref().map(|args| serde_json::to_string(args).unwrap_or_default()));
            let env: Option<BTreeMap<String, String>> = exec.env.as_ref().map(|vars| {
                vars.iter().filter_map(|var| Some((var.get("name")?.clone(), var.get("value")?.clone()))).collect()
            });
            set("exec_env", env.map(|env| serde_json::to_string(&env).unwrap_or_default()));
            return Ok(());
        }
    }
    set(
        "token",
        auth.token
            .as_ref()
            .map(|t| t.expose_secret().to_string())
            .or_else(|| auth.token_file.as_deref().and_then(read).map(|t| t.trim().to_string())),
    );
    set(
        "client_certificate",
        auth.client_certificate_data
            .as_deref()
            .and_then(decode)
            .or_else(|| auth.client_certificate.as_deref().and_then(read)),
    );
    set(
        "client_key",
        auth.client_key_data
            .as_ref()
            .and_then(|k| decode(k.expose_secret()))
            .or_else(|| auth.client_key.as_deref().and_then(read)),
    );
    Ok(())
}

fn pem_encode(der: &[u8]) -> String {
    use base64::Engine as _;
    let text = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> =
        text.as_bytes().chunks(64).map(|chunk| std::str::from_utf8(chunk).unwrap_or_default()).collect();
    format!("-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n", lines.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::diagnostics::Diagnostics;

    fn config_with_cluster(entries: &[(&str, Value)]) -> Value {
        let cluster = Value::Map(entries.iter().map(|(k, v)| (k.to_string(), v.clone())).collect());
        Value::Object(BTreeMap::from([("cluster".to_string(), cluster)]))
    }

    #[tokio::test]
    async fn a_connection_map_keeps_credentials_in_the_form_they_were_given() {
        let spec = ConnectionSpec {
            config_paths: vec![std::path::PathBuf::from("/etc/kube/config")],
            config_context: Some("lab".into()),
            exec: Some(ExecSpec {
                api_version: DEFAULT_EXEC_API_VERSION.into(),
                command: "aws".into(),
                args: vec!["eks".into()],
                env: BTreeMap::new(),
            }),
            ..Default::default()
        };
        let map = connection_attribute(&spec, "https://k:6443/").await.unwrap();
        let keys: Vec<&str> = map.keys().map(String::as_str).collect();
        assert_eq!(keys, ["config_path", "context", "exec_api_version", "exec_args", "exec_command", "host"]);
        assert_eq!(map["host"], "https://k:6443");
        assert_eq!(map["exec_args"], r#"["eks"]"#);
        // The map is a valid `cluster` value that reaches the same place.
        let value = Value::Map(map.iter().map(|(k, v)| (k.clone(), Value::string(v.clone()))).collect());
        let again = connection_from_attribute(Some(&value)).unwrap().unwrap();
        assert_eq!(again.exec, spec.exec);
        assert_eq!(again.config_paths, spec.config_paths);

        let direct = ConnectionSpec {
            host: Some("https://h".into()),
            token: Some("t".into()),
            insecure: true,
            ..Default::default()
        };
        let map = connection_attribute(&direct, "https://h/").await.unwrap();
        assert_eq!(
            map,
            BTreeMap::from([
                ("host".into(), "https://h".into()),
                ("insecure".into(), "true".into()),
                ("token".into(), "t".into())
            ])
        );
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

    #[test]
    fn a_cluster_reached_through_a_kubeconfig_file_and_a_credential_plugin_keeps_no_token() {
        let cluster = Value::Map(BTreeMap::from([
            ("host".to_string(), Value::string("https://k:6443")),
            ("config_path".to_string(), Value::string("~/.kube/config")),
            ("context".to_string(), Value::string("homelab")),
            ("exec_command".to_string(), Value::string("aws")),
            ("exec_args".to_string(), Value::string(r#"["eks","get-token"]"#)),
            ("exec_env".to_string(), Value::string(r#"{"AWS_PROFILE":"lab"}"#)),
        ]));
        let spec = connection_from_attribute(Some(&cluster)).unwrap().unwrap();
        assert_eq!(spec.config_paths, [std::path::PathBuf::from("~/.kube/config")]);
        assert_eq!(spec.config_context.as_deref(), Some("homelab"));
        let exec = spec.exec.expect("exec");
        assert_eq!((exec.command.as_str(), exec.args.as_slice()), ("aws", ["eks".to_string(), "get-token".to_string()].as_slice()));
        assert_eq!(exec.env["AWS_PROFILE"], "lab");
        assert_eq!(exec.api_version, "client.authentication.k8s.io/v1beta1");
        assert!(spec.token.is_none());

        let mut diags = Diagnostics::new();
        validate_cluster_attribute(
            &config_with_cluster(&[("host", Value::string("https://k")), ("exec_args", Value::string("eks get-token"))]),
            &mut diags,
        );
        let texts: Vec<String> = diags.iter().map(|d| d.detail.clone()).collect();
        assert!(texts.iter().any(|t| t.contains("`exec_args` must be a JSON list")), "{texts:?}");
        assert!(texts.iter().any(|t| t.contains("need `exec_command`")), "{texts:?}");
        let mut diags = Diagnostics::new();
        validate_cluster_attribute(&config_with_cluster(&[("config_path", Value::string("/k"))]), &mut diags);
        assert!(diags.is_empty(), "a kubeconfig path alone is a connection");
    }
}
