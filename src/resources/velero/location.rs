//! `platform_backup_location`: a Velero BackupStorageLocation on S3 (MinIO, SeaweedFS, a
//! cloud), with its credentials either in an existing Secret or given here and written to a
//! Secret this resource owns.
//!
//! Before anything is written to the cluster, the provider lists the bucket prefix with the
//! credentials itself, so a wrong key, a missing bucket or a TLS problem is an apply error
//! quoting S3, not a location Velero reports `Unavailable` days later. After the apply it
//! waits until Velero has validated the location since our write (its `lastValidationTime`
//! against the server's time of our apply) and reports Velero's message when it is not
//! Available.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine;
use k8s_openapi::api::core::v1::Secret;
use kube::api::ApiResource;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use super::{namespace_attribute, not_processed, phase, plan_namespace};
use crate::clients::deadline::{Progress, WaitError};
use crate::clients::kube::FIELD_MANAGER;
use crate::clients::s3::{self, S3Credentials, S3Location};
use crate::framework::diagnostics::{AttributePath, Diagnostic, Diagnostics};
use crate::framework::resource::{Context, Plan, Resource};
use crate::framework::schema::{timeouts_block, Attribute, Block, NestedBlock, Schema};
use crate::framework::timeouts;
use crate::framework::value::Value;
use crate::platform::{cluster_attribute, kube_diagnostic, validate_cluster_attribute, Platform};
use crate::resources::object::{self, NamespacedObject, OneObject};
use crate::resources::{metadata, owned};

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(180);
const CHECK_TIMEOUT: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_secs(1);
/// The key of the Secret this resource writes, as Velero's install does.
const CREDENTIALS_KEY: &str = "cloud";
const ACCESS_MODES: [&str; 2] = ["ReadWrite", "ReadOnly"];

pub struct BackupLocationResource {
    platform: Arc<Platform>,
    locations: ApiResource,
    secrets: ApiResource,
}

impl BackupLocationResource {
    pub fn new(platform: Arc<Platform>) -> Self {
        BackupLocationResource {
            platform,
            locations: super::velero_kind("BackupStorageLocation", "backupstoragelocations"),
            secrets: ApiResource::erase::<Secret>(&()),
        }
    }

    /// The Secret the location reads its credentials from: `credential_secret_name` when
    /// given, else the one this resource writes, `<name>-credentials`.
    async fn secret(&self, state: &Value, diags: &mut Diagnostics) -> Option<NamespacedObject> {
        let (name, _) = credential_ref(state);
        let mut at = state.clone();
        at.set_attr("name", Value::string(name));
        NamespacedObject::connect(&self.platform, &at, &self.secrets, diags).await
    }

    /// The credentials to check the bucket with, from the configuration or the existing Secret.
    async fn credentials(&self, ctx: &Context, planned: &Value, config: &Value, diags: &mut Diagnostics) -> Option<S3Credentials> {
        if let Some(credentials) = given_credentials(planned, config) {
            return Some(credentials);
        }
        let secret = self.secret(planned, diags).await?;
        let (_, key) = credential_ref(planned);
        let at = AttributePath::root("credential_secret_name");
        let live = match secret.get(ctx).await {
            Ok(Some(live)) => live,
            Ok(None) => {
                diags.error_at(at, "No such credentials Secret", format!("{} does not exist.", secret.describe()));
                return None;
            }
            Err(e) => {
                diags.push(kube_diagnostic(&format!("Could not read {}", secret.describe()), &e));
                return None;
            }
        };
        let text = live["data"][&key]
            .as_str()
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
            .and_then(|b| String::from_utf8(b).ok());
        match text.as_deref().and_then(parse_credentials_file) {
            Some(credentials) => Some(credentials),
            None => {
                diags.error_at(
                    at,
                    "Unusable credentials Secret",
                    format!(
                        "{} has no key {key:?} holding an AWS credentials file (`[default]`, `aws_access_key_id=...`, \
                         `aws_secret_access_key=...`).",
                        secret.describe()
                    ),
                );
                None
            }
        }
    }

    /// Lists the bucket with the credentials: a location Velero could not use is refused now.
    async fn check_bucket(&self, ctx: &Context, planned: &Value, credentials: &S3Credentials, diags: &mut Diagnostics) -> Option<()> {
        let location = s3_location(planned);
        let deadline = crate::clients::deadline::Deadline::after(CHECK_TIMEOUT, ctx.stop.clone());
        match deadline.run(s3::check_access(&location, credentials)).await {
            Ok(()) => Some(()),
            Err(e) => {
                diags.push(Diagnostic::error(
                    "Bucket not usable with these credentials",
                    format!("{e}\n\nNothing was written to the cluster: fix the bucket, endpoint or keys and apply again."),
                ));
                None
            }
        }
    }

    /// Velero uses one default location: say so when another in the namespace claims it too.
    async fn warn_other_defaults(&self, ctx: &Context, planned: &Value, diags: &mut Diagnostics) {
        let text = |name: &str| planned.get_attr(name).and_then(Value::as_str).unwrap_or_default().to_string();
        let (namespace, name) = (text("namespace"), text("name"));
        // Best effort: a warning is not worth failing the apply over a list that failed.
        let Ok(defaults) = super::default_locations(&self.platform, ctx, planned).await else { return };
        let others: Vec<String> = defaults.into_iter().filter(|other| *other != name).collect();
        if !others.is_empty() {
            diags.push(
                Diagnostic::warning(
                    "Another default backup storage location",
                    format!(
                        "BackupStorageLocation {:?} is also marked default in namespace {namespace}; Velero uses one default. \
                         Set default = false on all but one.",
                        others.join(", ")
                    ),
                )
                .at(AttributePath::root("default")),
            );
        }
    }

    /// Writes the Secret of credentials given in the configuration (a Secret this resource owns).
    async fn write_secret(&self, ctx: &Context, planned: &Value, credentials: &S3Credentials, diags: &mut Diagnostics) -> Option<()> {
        let secret = self.secret(planned, diags).await?;
        let file = format!(
            "[default]\naws_access_key_id={}\naws_secret_access_key={}\n",
            credentials.access_key,
            credentials.secret_key.expose_secret()
        );
        let desired = json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": { "name": secret.name, "namespace": secret.namespace },
            "type": "Opaque",
            "data": { CREDENTIALS_KEY: base64::engine::general_purpose::STANDARD.encode(file) },
        });
        match secret.apply(ctx, &desired, &owned::id_to_write(planned)).await {
            Ok(_) => Some(()),
            Err(e) => {
                diags.push(kube_diagnostic(&format!("Could not write {}", secret.describe()), &e));
                None
            }
        }
    }
}

/// `(name, key)` of the credentials Secret.
fn credential_ref(state: &Value) -> (String, String) {
    let text = |name: &str| state.get_attr(name).and_then(Value::as_str).map(str::to_string);
    match text("credential_secret_name") {
        Some(name) => (name, text("credential_secret_key").unwrap_or_else(|| CREDENTIALS_KEY.to_string())),
        None => (format!("{}-credentials", text("name").unwrap_or_default()), CREDENTIALS_KEY.to_string()),
    }
}

/// Keys given in the configuration (`secret_access_key_wo` is only ever there).
fn given_credentials(planned: &Value, config: &Value) -> Option<S3Credentials> {
    let access_key = planned.get_attr("access_key_id").and_then(Value::as_str)?;
    let secret = config
        .get_attr("secret_access_key_wo")
        .and_then(Value::as_str)
        .or_else(|| planned.get_attr("secret_access_key").and_then(Value::as_str))?;
    Some(S3Credentials { access_key: access_key.to_string(), secret_key: SecretString::from(secret.to_string()) })
}

/// The `[default]` (or only) profile of an AWS credentials file.
fn parse_credentials_file(text: &str) -> Option<S3Credentials> {
    let mut profile = String::new();
    let mut found: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            profile = name.trim().to_string();
            continue;
        }
        if let Some((key, value)) = line.split_once('=') {
            found.entry(profile.clone()).or_default().insert(key.trim().to_string(), value.trim().to_string());
        }
    }
    let entries = found.get("default").or_else(|| found.values().next())?;
    Some(S3Credentials {
        access_key: entries.get("aws_access_key_id")?.clone(),
        secret_key: SecretString::from(entries.get("aws_secret_access_key")?.clone()),
    })
}

/// The `s3` block as the S3 client takes it.
fn s3_location(state: &Value) -> S3Location {
    let s3 = state.get_attr("s3").cloned().unwrap_or(Value::Null);
    let text = |v: &Value, name: &str| v.get_attr(name).and_then(Value::as_str).map(str::to_string);
    let flag = |name: &str| s3.get_attr(name).and_then(Value::as_bool).unwrap_or(false);
    S3Location {
        endpoint: text(&s3, "endpoint").unwrap_or_default(),
        region: text(&s3, "region").unwrap_or_else(|| "us-east-1".to_string()),
        bucket: text(state, "bucket").unwrap_or_default(),
        prefix: text(state, "prefix"),
        path_style: flag("force_path_style"),
        insecure_skip_tls_verify: flag("insecure_skip_tls_verify"),
        ca_pem: text(state, "ca_certificate"),
    }
}

/// `spec.config` of the location: the typed `s3` block over the raw `config`.
fn location_config(planned: &Value) -> BTreeMap<String, String> {
    let mut config = metadata::string_map(planned.get_attr("config")).unwrap_or_default();
    if let Some(s3) = planned.get_attr("s3").filter(|v| !v.is_null()) {
        let text = |name: &str| s3.get_attr(name).and_then(Value::as_str).filter(|t| !t.is_empty()).map(str::to_string);
        let flag = |name: &str| s3.get_attr(name).and_then(Value::as_bool);
        for (field, value) in [
            ("s3Url", text("endpoint")),
            ("region", text("region")),
            ("publicUrl", text("public_url")),
            ("s3ForcePathStyle", flag("force_path_style").map(|b| b.to_string())),
            ("insecureSkipTLSVerify", flag("insecure_skip_tls_verify").map(|b| b.to_string())),
        ] {
            if let Some(value) = value {
                config.insert(field.to_string(), value);
            }
        }
    }
    config
}

/// The typed `s3` block from a location's `spec.config`, taking its keys out of `config`.
fn s3_block_from(config: &mut BTreeMap<String, String>) -> Value {
    let mut take = |key: &str| config.remove(key);
    let text = |v: Option<String>| v.map_or(Value::Null, Value::String);
    let flag = |v: Option<String>| v.map_or(Value::Null, |v| Value::Bool(v == "true"));
    let block = Value::object([
        ("endpoint", text(take("s3Url"))),
        ("region", text(take("region"))),
        ("force_path_style", flag(take("s3ForcePathStyle"))),
        ("insecure_skip_tls_verify", flag(take("insecureSkipTLSVerify"))),
        ("public_url", text(take("publicUrl"))),
    ]);
    if block.as_map().is_some_and(|m| m.values().all(Value::is_null)) {
        Value::Null
    } else {
        block
    }
}

fn desired(planned: &Value) -> serde_json::Value {
    // An empty string means unset (and Kubernetes 1.20 refuses "" inside custom resources).
    let text = |name: &str| planned.get_attr(name).and_then(Value::as_str).filter(|t| !t.is_empty());
    let (secret_name, secret_key) = credential_ref(planned);
    let mut storage = json!({ "bucket": text("bucket") });
    if let Some(prefix) = text("prefix") {
        storage["prefix"] = json!(prefix);
    }
    if let Some(ca) = text("ca_certificate") {
        storage["caCert"] = json!(base64::engine::general_purpose::STANDARD.encode(ca));
    }
    let mut spec = json!({
        "provider": text("provider").unwrap_or("aws"),
        "objectStorage": storage,
        "config": location_config(planned),
        "credential": { "name": secret_name, "key": secret_key },
    });
    if let Some(default) = planned.get_attr("default").and_then(Value::as_bool) {
        spec["default"] = json!(default);
    }
    if let Some(mode) = text("access_mode") {
        spec["accessMode"] = json!(mode);
    }
    json!({
        "apiVersion": "velero.io/v1",
        "kind": "BackupStorageLocation",
        "metadata": { "name": text("name"), "namespace": text("namespace") },
        "spec": spec,
    })
}

/// When the API server recorded our last apply of `live` (RFC 3339, whole seconds).
fn applied_at(live: &serde_json::Value) -> Option<String> {
    live["metadata"]["managedFields"]
        .as_array()?
        .iter()
        .filter(|entry| entry["manager"] == FIELD_MANAGER && entry["operation"] == "Apply")
        .filter_map(|entry| entry["time"].as_str().map(str::to_string))
        .max()
}

/// Judges the location after our apply: validated since then, and Available.
fn judge(live: Option<&serde_json::Value>, applied: Option<&str>, namespace: &str) -> Progress {
    let Some(live) = live else { return Progress::Failed("the BackupStorageLocation was deleted".to_string()) };
    let validated = live["status"]["lastValidationTime"].as_str();
    let fresh = match (validated, applied) {
        (Some(validated), Some(applied)) => validated >= applied,
        (Some(_), None) => true,
        (None, _) => false,
    };
    match (phase(live), fresh) {
        ("", _) => Progress::Pending(not_processed("BackupStorageLocation", namespace)),
        ("Available", true) => Progress::Done,
        ("Unavailable", true) => Progress::Failed(format!(
            "Velero finds it Unavailable: {}",
            live["status"]["message"].as_str().unwrap_or("no message")
        )),
        (phase, false) => Progress::Pending(format!(
            "{phase}, last validated {} (before our change at {}): waiting for Velero to validate it again",
            validated.unwrap_or("never"),
            applied.unwrap_or("?")
        )),
        (phase, true) => Progress::Pending(format!("phase {phase}")),
    }
}

fn state_from_live(state: &Value, live: &serde_json::Value) -> Value {
    let mut next = state.clone();
    let spec = &live["spec"];
    next.set_attr("id", object::live_id(live));
    next.set_attr("bucket", spec["objectStorage"]["bucket"].as_str().map_or(Value::Null, Value::string));
    if state.get_attr("prefix").is_some_and(|p| !p.is_null()) || spec["objectStorage"]["prefix"].is_string() {
        next.set_attr("prefix", spec["objectStorage"]["prefix"].as_str().map_or(Value::Null, Value::string));
    }
    if state.get_attr("default").is_some_and(|d| !d.is_null()) {
        next.set_attr("default", Value::Bool(spec["default"].as_bool().unwrap_or(false)));
    }
    let mut config = object::json_string_map(spec.get("config")).unwrap_or_default();
    let s3 = s3_block_from(&mut config);
    if state.get_attr("s3").is_some_and(|v| !v.is_null()) {
        next.set_attr("s3", s3);
    }
    if state.get_attr("config").is_some_and(|v| !v.is_null()) {
        next.set_attr("config", if config.is_empty() { Value::Null } else { metadata::string_map_value(&config) });
    }
    next.set_attr("phase", Value::string(phase(live)));
    next.set_attr("message", live["status"]["message"].as_str().map_or(Value::Null, Value::string));
    next.set_attr("last_validated", live["status"]["lastValidationTime"].as_str().map_or(Value::Null, Value::string));
    next
}

#[async_trait]
impl OneObject for BackupLocationResource {
    async fn object(&self, state: &Value, diags: &mut Diagnostics) -> Option<NamespacedObject> {
        NamespacedObject::connect(&self.platform, state, &self.locations, diags).await
    }

    async fn apply(&self, ctx: &Context, planned: &Value, config: &Value, diags: &mut Diagnostics) -> Option<Value> {
        let credentials = self.credentials(ctx, planned, config, diags).await?;
        self.check_bucket(ctx, planned, &credentials, diags).await?;
        if given_credentials(planned, config).is_some() {
            self.write_secret(ctx, planned, &credentials, diags).await?;
        }
        let location = self.object(planned, diags).await?;
        let live = match location.apply(ctx, &desired(planned), &owned::id_to_write(planned)).await {
            Ok(live) => live,
            Err(e) => {
                let mut diagnostic = kube_diagnostic(&format!("Could not apply {}", location.describe()), &e);
                if e.is_not_found() {
                    diagnostic.detail.push_str("\n\nThe cluster does not know Velero's BackupStorageLocations (velero.io/v1): install Velero first.");
                }
                diags.push(diagnostic);
                return None;
            }
        };
        if planned.get_attr("default").and_then(Value::as_bool) == Some(true) {
            self.warn_other_defaults(ctx, planned, diags).await;
        }
        let applied = applied_at(&live);
        let operation = if planned.get_attr("id").is_some_and(Value::is_unknown) { "create" } else { "update" };
        let timeout = timeouts::timeout(planned, operation, DEFAULT_TIMEOUT);
        let what = format!("Velero to validate {}", location.describe());
        let mut state = planned.clone();
        state.set_attr("secret_access_key_wo", Value::Null);
        match location.wait(ctx, timeout, POLL, &what, |live| judge(live, applied.as_deref(), &location.namespace)).await {
            Ok(Some(live)) => Some(state_from_live(&state, &live)),
            Ok(None) => None,
            Err(e) => {
                let summary = match e {
                    WaitError::Failed { .. } => format!("{} is not usable", location.describe()),
                    _ => format!("{} was not validated", location.describe()),
                };
                diags.error(summary, e.to_string());
                // The location exists: record it, so that the next apply fixes or removes it.
                location.get(ctx).await.ok().flatten().map(|live| state_from_live(&state, &live))
            }
        }
    }

    fn state_from_live(&self, state: &Value, live: &serde_json::Value) -> Value {
        state_from_live(state, live)
    }

    fn import_state(&self, mut state: Value, live: &serde_json::Value) -> Value {
        let spec = &live["spec"];
        let text = |v: &serde_json::Value| v.as_str().map_or(Value::Null, Value::string);
        state.set_attr("provider", text(&spec["provider"]));
        state.set_attr("prefix", text(&spec["objectStorage"]["prefix"]));
        state.set_attr("credential_secret_name", text(&spec["credential"]["name"]));
        state.set_attr("credential_secret_key", text(&spec["credential"]["key"]));
        // Velero's defaults (false, ReadWrite) were not asked for: only what differs was.
        state.set_attr("default", if spec["default"].as_bool() == Some(true) { Value::Bool(true) } else { Value::Null });
        state.set_attr("access_mode", if spec["accessMode"] == "ReadOnly" { Value::string("ReadOnly") } else { Value::Null });
        let mut config = object::json_string_map(spec.get("config")).unwrap_or_default();
        state.set_attr("s3", s3_block_from(&mut config));
        state.set_attr("config", if config.is_empty() { Value::Null } else { metadata::string_map_value(&config) });
        state
    }

    fn null_state(&self) -> Value {
        Value::null_object(&self.schema().implied_type())
    }
}

#[async_trait]
impl Resource for BackupLocationResource {
    fn type_name(&self) -> &'static str {
        "platform_backup_location"
    }

    fn schema(&self) -> Schema {
        let s3 = Block::new(vec![
            Attribute::string("endpoint").optional().describe("URL of the S3 API, e.g. `https://minio.lan:9000` (a cloud's own when omitted)."),
            Attribute::string("region").optional().describe("Region of the bucket; `us-east-1` when omitted (MinIO and most self-hosted servers accept it)."),
            Attribute::bool("force_path_style").optional().describe("Address the bucket as `endpoint/bucket` (MinIO, SeaweedFS) rather than `bucket.endpoint`."),
            Attribute::bool("insecure_skip_tls_verify").optional().describe("Do not check the endpoint's certificate (test setups only)."),
            Attribute::string("public_url").optional().describe("URL clients such as `velero backup download` use instead of `endpoint`."),
        ])
        .describe("Where the S3 bucket is, typed; written to `spec.config` over `config`.");
        let mut attributes = vec![
            Attribute::string("id").computed().keep_on_update().describe("`namespace/name`."),
            namespace_attribute(),
            Attribute::string("name").required().requires_replace().describe("Name of the BackupStorageLocation (`default` for Velero's default name)."),
            Attribute::string("provider").optional().computed().describe("Velero object-store plugin; `aws` (any S3 API) when omitted."),
            Attribute::string("bucket").required().describe("The bucket."),
            Attribute::string("prefix").optional().describe("Directory in the bucket for this location's backups."),
            Attribute::string_map("config").optional().describe("Further `spec.config` keys of the plugin, as strings."),
            Attribute::string("ca_certificate").optional().describe("PEM of a CA to trust for the endpoint (provider and Velero both)."),
            Attribute::string("credential_secret_name").optional().describe(
                "An existing Secret holding an AWS credentials file; give this, or `access_key_id` with a secret key.",
            ),
            Attribute::string("credential_secret_key").optional().describe("Key of that Secret; `cloud` when omitted."),
            Attribute::string("access_key_id").optional().sensitive().describe(
                "Access key written, with the secret key, into a Secret this resource owns (`<name>-credentials`).",
            ),
            Attribute::string("secret_access_key").optional().sensitive().describe(
                "Secret key (kept in state, marked sensitive); prefer `secret_access_key_wo` with Terraform 1.11 or later.",
            ),
            Attribute::string("secret_access_key_wo").optional().write_only().describe(
                "Secret key, write-only: never stored. Raise `credentials_version` to write a new one.",
            ),
            Attribute::number("credentials_version").optional().describe("Change to write `secret_access_key_wo` again."),
            Attribute::bool("default").optional().describe("Velero's default location. A warning tells when another location in the namespace is default too."),
            Attribute::string("access_mode").optional().describe("`ReadWrite` (the default) or `ReadOnly` (restore only, e.g. another cluster's backups)."),
            Attribute::string("phase").computed().describe("Velero's verdict: `Available` or `Unavailable`."),
            Attribute::string("message").computed().describe("Velero's message when it is Unavailable."),
            Attribute::string("last_validated").computed().describe("When Velero last validated it."),
            cluster_attribute(),
        ];
        attributes.extend(owned::attributes("BackupStorageLocation"));
        Schema::new(
            Block::new(attributes)
                .with_block(NestedBlock::single("s3", s3))
                .with_block(timeouts_block(&["create", "update"]))
                .describe(
                    "A Velero BackupStorageLocation on S3. Before writing anything, the provider lists the bucket with the \
                     credentials itself and fails with S3's error (wrong key, no bucket, TLS). After the apply it waits until \
                     Velero has validated the location and reports Velero's message when it is Unavailable.",
                ),
        )
    }

    fn validate(&self, config: &Value, diags: &mut Diagnostics) {
        metadata::validate_name(config, "namespace", diags);
        if let Some(name) = config.get_attr("name").and_then(Value::as_str) {
            if let Some(problem) = metadata::dns1123_subdomain_problem(name) {
                diags.error_at(AttributePath::root("name"), "Invalid name", format!("{name:?} {problem}."));
            }
        }
        let given = |name: &str| config.get_attr(name).is_some_and(|v| !v.is_null());
        let has_secret_ref = given("credential_secret_name");
        let has_keys = given("access_key_id") || given("secret_access_key") || given("secret_access_key_wo");
        if has_secret_ref && has_keys {
            diags.error_at(
                AttributePath::root("credential_secret_name"),
                "Credentials given twice",
                "Give either credential_secret_name (an existing Secret) or access_key_id with a secret key, not both.",
            );
        } else if !has_secret_ref && !has_keys {
            diags.error_at(
                AttributePath::root("access_key_id"),
                "No credentials",
                "Give credential_secret_name (an existing Secret), or access_key_id with secret_access_key_wo (or secret_access_key).",
            );
        } else if has_keys && !config.get_attr("access_key_id").is_some_and(Value::is_unknown) {
            let secrets = [given("secret_access_key"), given("secret_access_key_wo")];
            if !given("access_key_id") || secrets.iter().filter(|s| **s).count() != 1 {
                diags.error_at(
                    AttributePath::root("access_key_id"),
                    "Incomplete credentials",
                    "Give access_key_id with exactly one of secret_access_key_wo and secret_access_key.",
                );
            }
        }
        if let Some(mode) = config.get_attr("access_mode").and_then(Value::as_str) {
            if !ACCESS_MODES.contains(&mode) {
                diags.error_at(AttributePath::root("access_mode"), "Invalid access_mode", format!("{mode:?} is not one of {}.", ACCESS_MODES.join(", ")));
            }
        }
        timeouts::validate(config, &["create", "update"], diags);
        owned::validate(config, diags);
        validate_cluster_attribute(config, diags);
    }

    async fn modify_plan(&self, ctx: &Context, plan: &mut Plan, _diags: &mut Diagnostics) {
        if plan.planned.is_null() {
            return;
        }
        plan_namespace(plan);
        if plan.config.get_attr("provider").is_none_or(Value::is_null) {
            plan.planned.set_attr("provider", Value::string("aws"));
        }
        object::plan_ownership(self, ctx, plan).await;
    }

    async fn create(&self, ctx: &Context, planned: &Value, config: &Value, diags: &mut Diagnostics) -> Option<Value> {
        object::create(self, ctx, planned, config, diags).await
    }

    async fn read(&self, ctx: &Context, state: &Value, diags: &mut Diagnostics) -> Option<Value> {
        object::read(self, ctx, state, diags).await
    }

    async fn update(&self, ctx: &Context, prior: &Value, planned: &Value, config: &Value, diags: &mut Diagnostics) -> Option<Value> {
        object::update(self, ctx, prior, planned, config, diags).await
    }

    async fn delete(&self, ctx: &Context, prior: &Value, diags: &mut Diagnostics) {
        object::delete(self, ctx, prior, diags).await;
        // The credentials Secret goes with the location when this resource wrote it.
        if diags.has_errors() || prior.get_attr("credential_secret_name").is_some_and(|v| !v.is_null()) {
            return;
        }
        let Some(secret) = self.secret(prior, diags).await else { return };
        if let Ok(Some(live)) = secret.get(ctx).await {
            let ours = crate::clients::kube::ownership::owner(&live) == prior.get_attr("owner_id").and_then(Value::as_str);
            if ours && owned::Ownership::of(prior).on_destroy != Some(owned::OnDestroy::Release) && !owned::Ownership::of(prior).adopted {
                secret.delete(ctx, &live, diags).await;
            }
        }
    }

    async fn import(&self, ctx: &Context, id: &str, diags: &mut Diagnostics) -> Option<Value> {
        object::import(self, ctx, id, diags).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_files_are_read_as_velero_writes_them() {
        let parsed = parse_credentials_file("[default]\naws_access_key_id = AK\naws_secret_access_key=SK\n").unwrap();
        assert_eq!(parsed.access_key, "AK");
        assert_eq!(parsed.secret_key.expose_secret(), "SK");
        assert!(parse_credentials_file("[default]\naws_access_key_id=AK\n").is_none());
    }

    #[test]
    fn validation_waits_for_a_check_after_our_write() {
        let live = |phase: &str, at: &str| json!({ "status": { "phase": phase, "lastValidationTime": at, "message": "bucket gone" } });
        let applied = Some("2026-11-29T10:00:05Z");
        assert!(matches!(judge(Some(&live("Available", "2026-11-29T10:00:00Z")), applied, "velero"), Progress::Pending(_)));
        assert_eq!(judge(Some(&live("Available", "2026-11-29T10:00:06Z")), applied, "velero"), Progress::Done);
        assert!(matches!(judge(Some(&live("Unavailable", "2026-11-29T10:00:05Z")), applied, "velero"), Progress::Failed(m) if m.contains("bucket gone")));
        assert!(matches!(judge(Some(&json!({})), applied, "velero"), Progress::Pending(m) if m.contains("no controller")));
    }

    #[test]
    fn the_s3_block_becomes_config() {
        let mut planned = Value::null_object(&BackupLocationResource::new(Arc::default()).schema().implied_type());
        planned.set_attr("name", Value::string("default"));
        planned.set_attr("namespace", Value::string("velero"));
        planned.set_attr("bucket", Value::string("backups"));
        planned.set_attr(
            "s3",
            Value::object([
                ("endpoint", Value::string("http://minio:9000")),
                ("region", Value::string("eu-1")),
                ("force_path_style", Value::Bool(true)),
                ("insecure_skip_tls_verify", Value::Null),
                ("public_url", Value::Null),
            ]),
        );
        planned.set_attr("config", metadata::string_map_value(&BTreeMap::from([("checksumAlgorithm".to_string(), "".to_string())])));
        let spec = &desired(&planned)["spec"];
        assert_eq!(spec["config"], json!({ "s3Url": "http://minio:9000", "region": "eu-1", "s3ForcePathStyle": "true", "checksumAlgorithm": "" }));
        assert_eq!(spec["credential"], json!({ "name": "default-credentials", "key": "cloud" }));
        assert_eq!(spec["provider"], "aws");
    }
}
