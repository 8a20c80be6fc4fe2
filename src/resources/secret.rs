//! `platform_secret`: a Kubernetes Secret whose values come from `data` (sensitive, in
//! state), `data_wo` (write-only, never stored) or a SOPS file decrypted inside the provider
//! (state keeps the path and a keyed digest of the values, never the plaintext).
//!
//! The digest is an HMAC under a key derived from the age identity that decrypts the file
//! (see [`crate::clients::sops::Decrypted::digest_key`]), so plan and refresh compute the
//! same value, and whoever reads the state without that identity cannot test guesses of the
//! values against it. Import never copies live values into state: the configuration's
//! values are written by the first apply after it.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine as _;
use k8s_openapi::api::core::v1::Secret;
use kube::api::ApiResource;

use super::object::{self, NamespacedObject, OneObject};
use super::{metadata, owned, secret_data};
use crate::clients::keyed::DigestKey;
use crate::clients::kube::{owned_children, FIELD_MANAGER};
use crate::framework::diagnostics::{AttributePath, Diagnostics};
use crate::framework::resource::{Context, Plan, Resource};
use crate::framework::schema::{Attribute, Block, Schema};
use crate::framework::value::Value;
use crate::platform::{cluster_attribute, kube_diagnostic, sops_format, validate_cluster_attribute, Platform};

const SOURCES: &[&str] = &["data", "data_wo", "sops_file"];
/// A SOPS file's values by key, and the key their digest is made with.
type SopsValues = (BTreeMap<String, Vec<u8>>, DigestKey);
/// Changing these on an immutable Secret needs a new Secret.
const IMMUTABLE_CONTENT: &[&str] = &["data", "data_wo_version", "data_digest", "type"];

pub struct SecretResource {
    platform: Arc<Platform>,
    api_resource: ApiResource,
}

impl SecretResource {
    pub fn new(platform: Arc<Platform>) -> Self {
        SecretResource { platform, api_resource: ApiResource::erase::<Secret>(&()) }
    }

    /// The values of the decrypted SOPS file named in `config`, if any, and the key their
    /// digest is made with; `Err` after a diagnostic.
    fn sops_data(&self, config: &Value, diags: &mut Diagnostics) -> Result<Option<SopsValues>, ()> {
        let Some(path) = config.get_attr("sops_file").and_then(Value::as_str) else { return Ok(None) };
        let format = match sops_format(path, config.get_attr("sops_format").and_then(Value::as_str)) {
            Ok(format) => format,
            Err(problem) => {
                diags.error_at(AttributePath::root("sops_format"), "Invalid SOPS format", problem);
                return Err(());
            }
        };
        let decrypted = self.platform.decrypt_sops_file(path, format, AttributePath::root("sops_file")).map_err(|d| diags.push(d))?;
        let values = decrypted.secret_data().map_err(|e| {
            diags.error_at(AttributePath::root("sops_file"), "Unusable SOPS file", format!("{path}: {e}"));
        })?;
        Ok(Some((values, decrypted.digest_key().clone())))
    }

    /// The digest key for refreshing `state` (whose `sops_file` is set): the file is
    /// decrypted again. `None` when that fails now (the file moved, no key in this run):
    /// refresh then keeps the digest it had, and plan reports the file's problem.
    fn refresh_key(&self, state: &Value) -> Option<DigestKey> {
        let mut diags = Diagnostics::new();
        match self.sops_data(state, &mut diags) {
            Ok(found) => found.map(|(_, key)| key),
            Err(()) => {
                let problems: Vec<String> = diags.iter().map(|d| format!("{}: {}", d.summary, d.detail)).collect();
                tracing::warn!(problems = %problems.join("; "), "cannot decrypt the SOPS file to refresh data_digest; keeping the previous one");
                None
            }
        }
    }
}

#[async_trait]
impl OneObject for SecretResource {
    async fn object(&self, state: &Value, diags: &mut Diagnostics) -> Option<NamespacedObject> {
        NamespacedObject::connect(&self.platform, state, &self.api_resource, diags).await
    }

    async fn apply(&self, ctx: &Context, planned: &Value, config: &Value, diags: &mut Diagnostics) -> Option<Value> {
        let object = self.object(planned, diags).await?;
        let (values, key) = match self.sops_data(config, diags) {
            Ok(Some((values, key))) => {
                // The file may have changed between plan and apply; say so rather than
                // letting Terraform report an inconsistent result.
                let digest = secret_data::map_digest(&key, &values);
                if let Some(planned_digest) = planned.get_attr("data_digest").and_then(Value::as_str) {
                    if planned_digest != digest {
                        diags.error_at(
                            AttributePath::root("sops_file"),
                            "SOPS file changed since plan",
                            "The decrypted values differ from those planned. Run plan again.",
                        );
                        return None;
                    }
                }
                (Some(values), Some(key))
            }
            Ok(None) => (secret_data::configured(planned, config), None),
            Err(()) => return None,
        };
        let desired = desired_object(planned, values.as_ref());
        match object.apply(ctx, &desired, &owned::id_to_write(planned)).await {
            Ok(live) => Some(state_from_live(planned, &live, key.as_ref())),
            Err(e) => {
                diags.push(kube_diagnostic(&format!("Could not apply {}", object.describe()), &e));
                None
            }
        }
    }

    fn state_from_live(&self, state: &Value, live: &serde_json::Value) -> Value {
        let uses_sops = state.get_attr("sops_file").is_some_and(|v| !v.is_null());
        let key = if uses_sops { self.refresh_key(state) } else { None };
        state_from_live(state, live, key.as_ref())
    }

    /// Labels and annotations only. Import has no configuration to say where the values
    /// come from, and copying live values into `data` would put them in state (and, for
    /// values that are not UTF-8, change them); so `data` stays empty and the first plan
    /// after import shows the configured values (`data`, `data_wo_version` or the SOPS
    /// file's `data_digest`) as an update that writes them.
    fn import_state(&self, mut state: Value, live: &serde_json::Value) -> Value {
        object::adopt_metadata(&mut state, &live["metadata"]);
        state
    }

    fn null_state(&self) -> Value {
        Value::null_object(&self.schema().implied_type())
    }
}

fn desired_object(planned: &Value, values: Option<&BTreeMap<String, Vec<u8>>>) -> serde_json::Value {
    let mut desired = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": object::desired_metadata(planned),
        "type": planned.get_attr("type").and_then(Value::as_str).unwrap_or("Opaque"),
    });
    if let Some(values) = values {
        let encoded: BTreeMap<&str, String> = values
            .iter()
            .map(|(k, v)| (k.as_str(), base64::engine::general_purpose::STANDARD.encode(v)))
            .collect();
        desired["data"] = serde_json::json!(encoded);
    }
    if let Some(immutable) = planned.get_attr("immutable").and_then(Value::as_bool) {
        desired["immutable"] = serde_json::json!(immutable);
    }
    desired
}

/// The live Secret's data values.
fn live_data(live: &serde_json::Value) -> BTreeMap<String, Vec<u8>> {
    let Some(entries) = live.get("data").and_then(|d| d.as_object()) else { return BTreeMap::new() };
    entries
        .iter()
        .filter_map(|(k, v)| {
            let bytes = base64::engine::general_purpose::STANDARD.decode(v.as_str()?).ok()?;
            Some((k.clone(), bytes))
        })
        .collect()
}

/// The state for a live Secret. Values come back only where the state holds them (`data`);
/// for a SOPS file, `data_digest` becomes the digest (under `key`, the file's digest key) of
/// the values our field manager still owns, so an edit by anyone else (which takes
/// ownership) or a removed key shows as a change. Without a key the digest stays as it was.
fn state_from_live(state: &Value, live: &serde_json::Value, key: Option<&DigestKey>) -> Value {
    let mut next = state.clone();
    next.set_attr("id", object::live_id(live));
    next.set_attr("type", Value::string(live.get("type").and_then(|t| t.as_str()).unwrap_or("Opaque")));
    if state.get_attr("immutable").is_some_and(|v| !v.is_null()) {
        next.set_attr("immutable", Value::Bool(live.get("immutable").and_then(|v| v.as_bool()).unwrap_or(false)));
    }
    object::refresh_metadata(&mut next, &live["metadata"]);
    let values = live_data(live);
    if let Some(managed) = metadata::string_map(state.get_attr("data")) {
        let kept = managed
            .keys()
            .filter_map(|k| values.get(k).map(|v| (k.clone(), Value::string(String::from_utf8_lossy(v)))))
            .collect::<BTreeMap<_, _>>();
        next.set_attr("data", Value::Map(kept));
    }
    if state.get_attr("sops_file").is_some_and(|v| !v.is_null()) {
        if let Some(key) = key {
            let owned = owned_children(live, FIELD_MANAGER, &["data"]);
            let owned_values = values.iter().filter(|(k, _)| owned.contains(*k)).map(|(k, v)| (k.as_str(), v.as_slice()));
            next.set_attr("data_digest", Value::string(secret_data::keyed_digest(key, owned_values)));
        }
    } else {
        next.set_attr("data_digest", Value::Null);
    }
    next
}

#[async_trait]
impl Resource for SecretResource {
    fn type_name(&self) -> &'static str {
        "platform_secret"
    }

    fn schema(&self) -> Schema {
        let mut attributes = vec![
            Attribute::string("id").computed().keep_on_update().describe("`namespace/name`."),
            Attribute::string("namespace").required().requires_replace().describe("Namespace of the Secret."),
            Attribute::string("name").required().requires_replace().describe("Name of the Secret."),
            Attribute::string("type").optional().computed().requires_replace().describe(
                "Secret type: `Opaque` (the default), `kubernetes.io/tls`, `kubernetes.io/dockerconfigjson`, ... Changing it replaces the Secret.",
            ),
            Attribute::bool("immutable").optional().describe(
                "Mark the Secret immutable. Kubernetes then refuses changes to its values, so changing them replaces the Secret.",
            ),
            Attribute::string_map("labels").optional().describe("Labels this resource manages; others' labels are left alone."),
            Attribute::string_map("annotations").optional().describe("Annotations this resource manages; others' are left alone."),
            Attribute::string("sops_file").optional().describe(
                "Path of a SOPS file (YAML, JSON, dotenv or binary, age recipients) decrypted inside the provider at plan and apply. \
                 Its top-level keys become the Secret's keys; a file holding a whole Secret manifest gives that Secret's data. \
                 State keeps only the path and `data_digest`.",
            ),
            Attribute::string("sops_format")
                .optional()
                .describe("Format of `sops_file`: `yaml`, `json`, `dotenv` or `binary`. Defaults from the file name, like sops."),
            Attribute::string("data_digest").computed().describe(
                "Keyed digest (HMAC-SHA256) of the values from `sops_file`, under a key derived from the age identity \
                 that decrypts the file, so it reveals nothing about the values to whoever lacks that identity. Changes \
                 when the file's values change or when the live Secret's values are changed or removed outside Terraform.",
            ),
            cluster_attribute(),
        ];
        attributes.extend(secret_data::data_attributes());
        attributes.extend(owned::attributes("Secret"));
        let mut schema = Schema::new(Block::new(attributes).describe(
            "A Kubernetes Secret, written by server-side apply. Values come from `data`, write-only `data_wo`, or a \
             SOPS-encrypted file; plaintext from `data_wo` and `sops_file` never reaches plan, state or logs. An existing \
             Secret is only taken over with `adopt = true`; destroy deletes only a Secret this resource created and still \
             owns (adopted and imported ones are released). Import never copies the live values into state: the first \
             apply after it writes the configured values.",
        ));
        // Version 1 added owner ids; state of version 0 has none (see `owned`).
        schema.version = 1;
        schema
    }

    fn validate(&self, config: &Value, diags: &mut Diagnostics) {
        metadata::validate_name(config, "namespace", diags);
        if let Some(name) = config.get_attr("name").and_then(Value::as_str) {
            if let Some(problem) = metadata::dns1123_subdomain_problem(name) {
                diags.error_at(AttributePath::root("name"), "Invalid name", format!("{name:?} {problem}."));
            }
        }
        metadata::validate_labels_and_annotations(config, diags);
        secret_data::validate(config, SOURCES, diags);
        if let Some(format) = config.get_attr("sops_format").and_then(Value::as_str) {
            if let Err(problem) = sops_format("", Some(format)) {
                diags.error_at(AttributePath::root("sops_format"), "Invalid SOPS format", problem);
            }
        }
        owned::validate(config, diags);
        validate_cluster_attribute(config, diags);
    }

    async fn modify_plan(&self, ctx: &Context, plan: &mut Plan, diags: &mut Diagnostics) {
        object::plan_ownership(self, ctx, plan).await;
        if plan.config.get_attr("type").is_none_or(Value::is_null) {
            let prior = plan.prior.get_attr("type").filter(|t| !t.is_null()).cloned();
            plan.planned.set_attr("type", prior.unwrap_or_else(|| Value::string("Opaque")));
        }
        // The digest of the file's values, computed now so the plan shows whether they changed.
        let digest = match plan.config.get_attr("sops_file") {
            Some(Value::Unknown) => Value::Unknown,
            Some(Value::String(_)) => match self.sops_data(&plan.config, diags) {
                Ok(Some((values, key))) => Value::string(secret_data::map_digest(&key, &values)),
                _ => Value::Unknown,
            },
            _ => Value::Null,
        };
        plan.planned.set_attr("data_digest", digest);
        if plan.prior.get_attr("immutable").and_then(Value::as_bool) == Some(true) {
            for name in IMMUTABLE_CONTENT {
                if plan.prior.get_attr(name) != plan.planned.get_attr(name) {
                    plan.requires_replace.push(AttributePath::root(name));
                }
            }
        }
    }

    async fn create(&self, ctx: &Context, planned: &Value, config: &Value, diags: &mut Diagnostics) -> Option<Value> {
        object::create(self, ctx, planned, config, diags).await
    }

    async fn read(&self, ctx: &Context, state: &Value, diags: &mut Diagnostics) -> Option<Value> {
        object::read(self, ctx, state, diags).await
    }

    async fn update(
        &self,
        ctx: &Context,
        prior: &Value,
        planned: &Value,
        config: &Value,
        diags: &mut Diagnostics,
    ) -> Option<Value> {
        object::update(self, ctx, prior, planned, config, diags).await
    }

    async fn delete(&self, ctx: &Context, prior: &Value, diags: &mut Diagnostics) {
        object::delete(self, ctx, prior, diags).await
    }

    async fn import(&self, ctx: &Context, id: &str, diags: &mut Diagnostics) -> Option<Value> {
        object::import(self, ctx, id, diags).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn planned() -> Value {
        Value::object([
            ("namespace", Value::string("apps")),
            ("name", Value::string("db")),
            ("type", Value::string("Opaque")),
            ("immutable", Value::Null),
            ("labels", Value::map([("app", Value::string("db"))])),
            ("annotations", Value::Null),
            ("data", Value::map([("password", Value::string("s3cret"))])),
            ("sops_file", Value::Null),
            ("data_digest", Value::Null),
        ])
    }

    #[test]
    fn desired_object_encodes_values_and_only_managed_metadata() {
        let values = secret_data::configured(&planned(), &Value::Null).unwrap();
        let desired = desired_object(&planned(), Some(&values));
        assert_eq!(desired["data"]["password"], "czNjcmV0");
        assert_eq!(desired["metadata"]["labels"]["app"], "db");
        assert!(desired["metadata"].get("annotations").is_none());
        assert!(desired.get("immutable").is_none());
    }

    #[test]
    fn refresh_keeps_managed_keys_and_digests_only_owned_values() {
        let live = serde_json::json!({
            "metadata": { "name": "db", "namespace": "apps", "labels": { "app": "db", "other": "x" },
                "managedFields": [
                    { "manager": FIELD_MANAGER, "operation": "Apply", "fieldsType": "FieldsV1",
                      "fieldsV1": { "f:data": { "f:a": {}, "f:b": {} } } },
                    { "manager": "kubectl-edit", "operation": "Update", "fieldsType": "FieldsV1",
                      "fieldsV1": { "f:data": { "f:c": {} } } }
                ] },
            "type": "Opaque",
            "data": { "a": "MQ==", "b": "Mg==", "c": "Mw==", "password": "czNjcmV0" }
        });
        let key = DigestKey::derive(b"identity", "test");
        let state = state_from_live(&planned(), &live, None);
        assert_eq!(state.get_attr("id"), Some(&Value::string("apps/db")));
        assert_eq!(state.get_attr("labels"), Some(&Value::map([("app", Value::string("db"))])));
        assert_eq!(state.get_attr("data"), Some(&Value::map([("password", Value::string("s3cret"))])));
        assert_eq!(state.get_attr("data_digest"), Some(&Value::Null));

        let mut sops_state = planned();
        sops_state.set_attr("data", Value::Null);
        sops_state.set_attr("sops_file", Value::string("x.yaml"));
        let refreshed = state_from_live(&sops_state, &live, Some(&key));
        let expected = secret_data::keyed_digest(&key, [("a", b"1".as_slice()), ("b", b"2".as_slice())]);
        assert_eq!(refreshed.get_attr("data_digest"), Some(&Value::string(expected)));
        // Without the key (the file cannot be decrypted now) the digest is left as it was.
        sops_state.set_attr("data_digest", Value::string("hmac-sha256:before"));
        let kept = state_from_live(&sops_state, &live, None);
        assert_eq!(kept.get_attr("data_digest"), Some(&Value::string("hmac-sha256:before")));
    }
}
