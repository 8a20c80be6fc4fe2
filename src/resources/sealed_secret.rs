//! `platform_sealed_secret`: a Bitnami `SealedSecret` encrypted offline with the controller's
//! public certificate, so plaintext never reaches the cluster or git. Values are sealed
//! again only when what goes into them changes (`input_digest`): plans stay empty otherwise.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use kube::api::{ApiResource, GroupVersionKind};

use super::object::{self, NamespacedObject, OneObject};
use super::{metadata, owned, secret_data};
use crate::clients::sealing::{Scope, SealingKey};
use crate::framework::diagnostics::{AttributePath, Diagnostics};
use crate::framework::resource::{Context, Plan, Resource};
use crate::framework::schema::{Attribute, Block, Schema};
use crate::framework::value::Value;
use crate::platform::{cluster_attribute, kube_diagnostic, validate_cluster_attribute, Platform};

const SOURCES: &[&str] = &["data", "data_wo"];
/// What Read records when the live SealedSecret's ciphertext is no longer what we wrote: the
/// next plan then seals the values again.
const CHANGED_OUTSIDE: &str = "changed outside Terraform";

pub struct SealedSecretResource {
    platform: Arc<Platform>,
    api_resource: ApiResource,
}

impl SealedSecretResource {
    pub fn new(platform: Arc<Platform>) -> Self {
        let gvk = GroupVersionKind::gvk("bitnami.com", "v1alpha1", "SealedSecret");
        SealedSecretResource { platform, api_resource: ApiResource::from_gvk_with_plural(&gvk, "sealedsecrets") }
    }

}

#[async_trait]
impl OneObject for SealedSecretResource {
    async fn object(&self, state: &Value, diags: &mut Diagnostics) -> Option<NamespacedObject> {
        NamespacedObject::connect(&self.platform, state, &self.api_resource, diags).await
    }

    async fn apply(&self, ctx: &Context, planned: &Value, config: &Value, diags: &mut Diagnostics) -> Option<Value> {
        let object = self.object(planned, diags).await?;
        let encrypted = match planned.get_attr("encrypted_data") {
            Some(Value::Map(known)) => known.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string()))).collect(),
            _ => seal_values(planned, config, diags)?,
        };
        let annotations: BTreeMap<&str, &str> = scope_of(planned).annotations().into_iter().collect();
        let desired = serde_json::json!({
            "apiVersion": "bitnami.com/v1alpha1",
            "kind": "SealedSecret",
            "metadata": {
                "name": object.name,
                "namespace": object.namespace,
                "annotations": annotations,
            },
            "spec": {
                "encryptedData": encrypted,
                "template": {
                    "metadata": object::desired_metadata(planned),
                    "type": planned.get_attr("type").and_then(Value::as_str).unwrap_or("Opaque"),
                },
            },
        });
        let mut state = planned.clone();
        state.set_attr("encrypted_data", metadata::string_map_value(&encrypted));
        match object.apply(ctx, &desired, &owned::id_to_write(planned)).await {
            Ok(live) => Some(state_from_live(&state, &live)),
            Err(e) => {
                let mut diagnostic = kube_diagnostic(&format!("Could not apply {}", object.describe()), &e);
                if e.is_not_found() {
                    diagnostic.detail.push_str(
                        "\n\nThe cluster does not know SealedSecrets (bitnami.com/v1alpha1): install the Sealed Secrets controller first.",
                    );
                }
                diags.push(diagnostic);
                None
            }
        }
    }

    fn state_from_live(&self, state: &Value, live: &serde_json::Value) -> Value {
        state_from_live(state, live)
    }

    fn import_state(&self, mut state: Value, live: &serde_json::Value) -> Value {
        object::adopt_metadata(&mut state, &live["spec"]["template"]["metadata"]);
        let encrypted = object::json_string_map(live.pointer("/spec/encryptedData")).unwrap_or_default();
        state.set_attr("encrypted_data", metadata::string_map_value(&encrypted));
        state.set_attr("scope", Value::string(scope_from_annotations(&live["metadata"]["annotations"]).as_str()));
        // Nothing proves what the adopted ciphertext seals: the first plan seals again.
        state.set_attr("input_digest", Value::string("imported"));
        state
    }

    fn null_state(&self) -> Value {
        Value::null_object(&self.schema().implied_type())
    }
}

/// The scope a live SealedSecret was sealed for, from the annotations the controller reads.
fn scope_from_annotations(annotations: &serde_json::Value) -> Scope {
    let flag = |key: &str| annotations.get(key).and_then(|v| v.as_str()) == Some("true");
    if flag("sealedsecrets.bitnami.com/cluster-wide") {
        Scope::ClusterWide
    } else if flag("sealedsecrets.bitnami.com/namespace-wide") {
        Scope::NamespaceWide
    } else {
        Scope::Strict
    }
}

fn scope_of(state: &Value) -> Scope {
    state.get_attr("scope").and_then(Value::as_str).and_then(Scope::parse).unwrap_or(Scope::Strict)
}

/// Seals every configured value with the certificate's key.
fn seal_values(planned: &Value, config: &Value, diags: &mut Diagnostics) -> Option<BTreeMap<String, String>> {
    let key = sealing_key(planned, diags)?;
    let text = |name: &str| planned.get_attr(name).and_then(Value::as_str).unwrap_or_default().to_string();
    let (namespace, name, scope) = (text("namespace"), text("name"), scope_of(planned));
    let values = secret_data::configured(planned, config).unwrap_or_default();
    let mut sealed = BTreeMap::new();
    for (k, v) in &values {
        match key.seal(scope, &namespace, &name, v) {
            Ok(ciphertext) => {
                sealed.insert(k.clone(), ciphertext);
            }
            Err(e) => {
                diags.error_at(AttributePath::root("certificate"), "Cannot seal value", format!("Sealing key {k:?} failed: {e}"));
                return None;
            }
        }
    }
    Some(sealed)
}

fn sealing_key(state: &Value, diags: &mut Diagnostics) -> Option<SealingKey> {
    let pem = state.get_attr("certificate").and_then(Value::as_str).unwrap_or_default();
    SealingKey::from_pem(pem)
        .map_err(|e| diags.error_at(AttributePath::root("certificate"), "Invalid sealing certificate", e.to_string()))
        .ok()
}

/// Fingerprint of everything the ciphertext depends on. `data` values count; `data_wo`
/// values cannot be seen between applies, so their keys and `data_wo_version` stand in.
fn input_digest(config: &Value, key: &SealingKey) -> String {
    let text = |name: &str| config.get_attr(name).and_then(Value::as_str).unwrap_or_default().to_string();
    let mut entries: Vec<(String, Vec<u8>)> = vec![
        ("certificate".into(), key.fingerprint().into_bytes()),
        ("scope".into(), scope_of(config).as_str().as_bytes().to_vec()),
        ("namespace".into(), text("namespace").into_bytes()),
        ("name".into(), text("name").into_bytes()),
    ];
    for (key, value) in metadata::string_map(config.get_attr("data")).unwrap_or_default() {
        entries.push((format!("data/{key}"), value.into_bytes()));
    }
    for key in metadata::string_map(config.get_attr("data_wo")).unwrap_or_default().keys() {
        entries.push((format!("data_wo/{key}"), Vec::new()));
    }
    if let Some(version) = config.get_attr("data_wo_version").and_then(Value::as_number) {
        entries.push(("data_wo_version".into(), version.to_string().into_bytes()));
    }
    secret_data::digest(entries.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
}

fn state_from_live(state: &Value, live: &serde_json::Value) -> Value {
    let mut next = state.clone();
    next.set_attr("id", object::live_id(live));
    let template = &live["spec"]["template"];
    next.set_attr("type", Value::string(template.get("type").and_then(|t| t.as_str()).unwrap_or("Opaque")));
    object::refresh_metadata(&mut next, &template["metadata"]);
    let live_encrypted = object::json_string_map(live.pointer("/spec/encryptedData")).unwrap_or_default();
    let ours = metadata::string_map(state.get_attr("encrypted_data")).unwrap_or_default();
    if live_encrypted != ours {
        next.set_attr("input_digest", Value::string(CHANGED_OUTSIDE));
    }
    next
}

#[async_trait]
impl Resource for SealedSecretResource {
    fn type_name(&self) -> &'static str {
        "platform_sealed_secret"
    }

    fn schema(&self) -> Schema {
        let mut attributes = vec![
            Attribute::string("id").computed().keep_on_update().describe("`namespace/name`."),
            Attribute::string("namespace").required().requires_replace().describe("Namespace of the SealedSecret and of the Secret it becomes."),
            Attribute::string("name").required().requires_replace().describe("Name of the SealedSecret and of the Secret it becomes."),
            Attribute::string("certificate").required().describe(
                "The Sealed Secrets controller's public certificate (PEM, as `kubeseal --fetch-cert` prints it).",
            ),
            Attribute::string("scope").optional().computed().describe(
                "Who may decrypt: `strict` (the default: only this name in this namespace), `namespace-wide` or `cluster-wide`.",
            ),
            Attribute::string("type").optional().computed().describe("Type of the resulting Secret; defaults to `Opaque`."),
            Attribute::string_map("labels").optional().describe("Labels of the resulting Secret."),
            Attribute::string_map("annotations").optional().describe("Annotations of the resulting Secret."),
            Attribute::string_map("encrypted_data").computed().describe(
                "The sealed values by key (base64 ciphertext, safe to store and share).",
            ),
            Attribute::string("input_digest").computed().describe(
                "Digest of what the ciphertext depends on (certificate, scope, namespace, name, values). Values are sealed \
                 again only when it changes, or when the live SealedSecret was changed outside Terraform.",
            ),
            cluster_attribute(),
        ];
        attributes.extend(secret_data::data_attributes());
        attributes.extend(owned::attributes("SealedSecret"));
        let mut schema = Schema::new(Block::new(attributes).describe(
            "A Bitnami SealedSecret (`bitnami.com/v1alpha1`) sealed offline with the controller's certificate, applied by \
             server-side apply. The controller turns it into a Secret; plaintext never reaches the cluster. An existing \
             SealedSecret is only taken over with `adopt = true`; destroy deletes only one this resource created and \
             still owns (adopted and imported ones are released).",
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
        if let Some(scope) = config.get_attr("scope").and_then(Value::as_str) {
            if Scope::parse(scope).is_none() {
                diags.error_at(
                    AttributePath::root("scope"),
                    "Invalid scope",
                    format!("{scope:?} is not a scope; use strict, namespace-wide or cluster-wide."),
                );
            }
        }
        if config.get_attr("certificate").and_then(Value::as_str).is_some() {
            sealing_key(config, diags);
        }
        metadata::validate_labels_and_annotations(config, diags);
        secret_data::validate(config, SOURCES, diags);
        owned::validate(config, diags);
        validate_cluster_attribute(config, diags);
    }

    async fn modify_plan(&self, ctx: &Context, plan: &mut Plan, diags: &mut Diagnostics) {
        object::plan_ownership(self, ctx, plan).await;
        for (name, default) in [("scope", "strict"), ("type", "Opaque")] {
            if plan.config.get_attr(name).is_none_or(Value::is_null) {
                plan.planned.set_attr(name, Value::string(default));
            }
        }
        // Write-only values exist only in the configuration.
        let mut inputs = plan.planned.clone();
        inputs.set_attr("data_wo", plan.config.get_attr("data_wo").cloned().unwrap_or(Value::Null));
        let inputs_known = ["certificate", "scope", "namespace", "name", "data", "data_wo", "data_wo_version"]
            .iter()
            .all(|name| inputs.get_attr(name).is_none_or(Value::is_wholly_known));
        let digest = match inputs_known.then(|| sealing_key(&inputs, diags)).flatten() {
            Some(key) => input_digest(&inputs, &key),
            None => {
                plan.planned.set_attr("input_digest", Value::Unknown);
                plan.planned.set_attr("encrypted_data", Value::Unknown);
                return;
            }
        };
        let unchanged = plan.prior.get_attr("input_digest").and_then(Value::as_str) == Some(digest.as_str());
        let encrypted = if unchanged { plan.prior.get_attr("encrypted_data").cloned().unwrap_or(Value::Unknown) } else { Value::Unknown };
        plan.planned.set_attr("input_digest", Value::string(digest));
        plan.planned.set_attr("encrypted_data", encrypted);
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
