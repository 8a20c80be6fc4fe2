//! The provider engine: dispatches each protocol operation to the right resource and runs
//! the planning pipeline every resource shares. It works on decoded [`Value`]s; the wire
//! layer (`tfproto`) only converts to and from gRPC messages.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;

use super::diagnostics::{AttributePath, Diagnostic, Diagnostics};
use super::resource::{Context, DataSource, Plan, Provider, Resource};
use super::schema::Schema;
use super::value::{self, Type, Value};

struct Registered<T: ?Sized> {
    implementation: Arc<T>,
    schema: Schema,
    ty: Type,
}

impl<T: ?Sized> Registered<T> {
    fn new(implementation: Arc<T>, schema: Schema) -> Self {
        let ty = schema.implied_type();
        Registered { implementation, schema, ty }
    }
}

pub struct Engine {
    provider: Arc<dyn Provider>,
    provider_schema: Schema,
    provider_type: Type,
    resources: HashMap<&'static str, Registered<dyn Resource>>,
    data_sources: HashMap<&'static str, Registered<dyn DataSource>>,
    ephemeral_resources: HashMap<&'static str, Registered<dyn DataSource>>,
    stop: Mutex<CancellationToken>,
}

impl Engine {
    pub fn new(provider: Arc<dyn Provider>) -> Self {
        let provider_schema = provider.schema();
        let resources = provider
            .resources()
            .into_iter()
            .map(|r| (r.type_name(), Registered::new(r.clone(), r.schema())))
            .collect();
        let data_sources = provider
            .data_sources()
            .into_iter()
            .map(|d| (d.type_name(), Registered::new(d.clone(), d.schema())))
            .collect();
        let ephemeral_resources = provider
            .ephemeral_resources()
            .into_iter()
            .map(|e| (e.type_name(), Registered::new(e.clone(), e.schema())))
            .collect();
        Engine {
            provider_type: provider_schema.implied_type(),
            provider_schema,
            provider,
            resources,
            data_sources,
            ephemeral_resources,
            stop: Mutex::new(CancellationToken::new()),
        }
    }

    pub fn provider_type_name(&self) -> &'static str {
        self.provider.type_name()
    }

    pub fn provider_schema(&self) -> &Schema {
        &self.provider_schema
    }

    pub fn provider_value_type(&self) -> &Type {
        &self.provider_type
    }

    /// Resource schemas by type name, sorted for stable output.
    pub fn resource_schemas(&self) -> Vec<(&'static str, &Schema)> {
        let mut all: Vec<_> = self.resources.iter().map(|(n, r)| (*n, &r.schema)).collect();
        all.sort_by_key(|(n, _)| *n);
        all
    }

    pub fn data_source_schemas(&self) -> Vec<(&'static str, &Schema)> {
        let mut all: Vec<_> = self.data_sources.iter().map(|(n, r)| (*n, &r.schema)).collect();
        all.sort_by_key(|(n, _)| *n);
        all
    }

    pub fn ephemeral_resource_schemas(&self) -> Vec<(&'static str, &Schema)> {
        let mut schemas: Vec<_> = self.ephemeral_resources.iter().map(|(name, e)| (*name, &e.schema)).collect();
        schemas.sort_by_key(|(name, _)| *name);
        schemas
    }

    pub fn ephemeral_resource_value_type(&self, type_name: &str) -> Result<&Type, Diagnostics> {
        self.ephemeral_resource(type_name).map(|e| &e.ty)
    }

    pub fn resource_value_type(&self, type_name: &str) -> Result<&Type, Diagnostics> {
        self.resource(type_name).map(|r| &r.ty)
    }

    pub fn data_source_value_type(&self, type_name: &str) -> Result<&Type, Diagnostics> {
        self.data_source(type_name).map(|d| &d.ty)
    }

    fn resource(&self, type_name: &str) -> Result<&Registered<dyn Resource>, Diagnostics> {
        self.resources.get(type_name).ok_or_else(|| unknown_type("resource", type_name))
    }

    fn ephemeral_resource(&self, type_name: &str) -> Result<&Registered<dyn DataSource>, Diagnostics> {
        self.ephemeral_resources.get(type_name).ok_or_else(|| unknown_type("ephemeral resource", type_name))
    }

    fn data_source(&self, type_name: &str) -> Result<&Registered<dyn DataSource>, Diagnostics> {
        self.data_sources.get(type_name).ok_or_else(|| unknown_type("data source", type_name))
    }

    /// A context whose stop signal fires when Terraform calls StopProvider.
    pub fn context(&self) -> Context {
        Context { stop: self.stop.lock().expect("stop token lock").clone() }
    }

    /// Cancels everything in flight. Later calls get a fresh token: Terraform may still
    /// ask for cleanup work after an interrupt.
    pub fn stop(&self) {
        let mut token = self.stop.lock().expect("stop token lock");
        token.cancel();
        *token = CancellationToken::new();
    }

    pub fn validate_provider(&self, config: &Value) -> Diagnostics {
        let mut diags = Diagnostics::new();
        self.provider.validate(config, &mut diags);
        diags
    }

    pub async fn configure(&self, config: &Value, terraform_version: &str) -> Diagnostics {
        let mut diags = Diagnostics::new();
        self.provider.configure(&self.context(), config, terraform_version, &mut diags).await;
        diags
    }

    /// `write_only_allowed` is the client's capability: Terraform before 1.11 does not know
    /// write-only attributes and would store their values in state like any other.
    pub fn validate_resource(&self, type_name: &str, config: &Value, write_only_allowed: bool) -> Diagnostics {
        match self.resource(type_name) {
            Ok(r) => {
                let mut diags = Diagnostics::new();
                if !write_only_allowed {
                    reject_write_only_values(&r.schema, config, &mut diags);
                }
                r.implementation.validate(config, &mut diags);
                diags
            }
            Err(diags) => diags,
        }
    }

    pub fn validate_ephemeral_resource(&self, type_name: &str, config: &Value) -> Diagnostics {
        validate_with(self.ephemeral_resource(type_name), config)
    }

    pub async fn open_ephemeral_resource(&self, type_name: &str, config: &Value) -> (Option<Value>, Diagnostics) {
        self.read_with(self.ephemeral_resource(type_name), config, "open").await
    }

    pub fn validate_data_source(&self, type_name: &str, config: &Value) -> Diagnostics {
        validate_with(self.data_source(type_name), config)
    }

    /// Reads state JSON written by any earlier version of this provider. Attributes a
    /// later version removed are dropped; attributes it added start out null.
    pub fn upgrade_resource_state(&self, type_name: &str, version: i64, json: &[u8]) -> Result<Value, Diagnostics> {
        let r = self.resource(type_name)?;
        if version > r.schema.version {
            return Err(Diagnostic::error(
                "State written by a newer provider",
                format!(
                    "The state of this {type_name} has schema version {version}, but this provider only knows up to {}. Upgrade the provider.",
                    r.schema.version
                ),
            )
            .into());
        }
        value::decode_json_lenient(&r.ty, json).map_err(|e| {
            Diagnostic::error("Unreadable state", format!("The stored state of this {type_name} could not be read: {e}")).into()
        })
    }

    pub async fn read_resource(&self, type_name: &str, state: &Value) -> (Option<Value>, Diagnostics) {
        let r = match self.resource(type_name) {
            Ok(r) => r,
            Err(diags) => return (Some(state.clone()), diags),
        };
        let mut diags = Diagnostics::new();
        let new_state = r.implementation.read(&self.context(), state, &mut diags).await;
        let new_state = new_state.map(|s| ensure_known(s, &r.schema, "read", &mut diags));
        (new_state, diags)
    }

    pub async fn plan_resource(
        &self,
        type_name: &str,
        prior: &Value,
        proposed: &Value,
        config: &Value,
    ) -> (Value, Vec<AttributePath>, Diagnostics) {
        let r = match self.resource(type_name) {
            Ok(r) => r,
            Err(diags) => return (proposed.clone(), vec![], diags),
        };
        // Destroy: nothing to plan.
        if proposed.is_null() {
            return (Value::Null, vec![], Diagnostics::new());
        }
        let mut plan = plan_defaults(&r.schema, prior, proposed, config);
        let mut diags = Diagnostics::new();
        r.implementation.modify_plan(&self.context(), &mut plan, &mut diags).await;
        (plan.planned, plan.requires_replace, diags)
    }

    pub async fn apply_resource(
        &self,
        type_name: &str,
        prior: &Value,
        planned: &Value,
        config: &Value,
    ) -> (Value, Diagnostics) {
        let r = match self.resource(type_name) {
            Ok(r) => r,
            Err(diags) => return (prior.clone(), diags),
        };
        let ctx = self.context();
        let mut diags = Diagnostics::new();
        let implementation = &r.implementation;
        let new_state = if planned.is_null() {
            implementation.delete(&ctx, prior, &mut diags).await;
            // A failed delete keeps the object in state so it is not forgotten.
            if diags.has_errors() { prior.clone() } else { Value::Null }
        } else if prior.is_null() {
            implementation.create(&ctx, planned, config, &mut diags).await.unwrap_or(Value::Null)
        } else {
            implementation.update(&ctx, prior, planned, config, &mut diags).await.unwrap_or_else(|| prior.clone())
        };
        let new_state = ensure_known(new_state, &r.schema, "apply", &mut diags);
        (new_state, diags)
    }

    pub async fn import_resource(&self, type_name: &str, id: &str) -> (Option<Value>, Diagnostics) {
        let r = match self.resource(type_name) {
            Ok(r) => r,
            Err(diags) => return (None, diags),
        };
        let mut diags = Diagnostics::new();
        let state = r.implementation.import(&self.context(), id, &mut diags).await;
        (state.map(|s| ensure_known(s, &r.schema, "import", &mut diags)), diags)
    }

    pub async fn read_data_source(&self, type_name: &str, config: &Value) -> (Option<Value>, Diagnostics) {
        self.read_with(self.data_source(type_name), config, "read").await
    }

    /// Reading a data source and opening an ephemeral resource are the same call.
    async fn read_with(
        &self,
        found: Result<&Registered<dyn DataSource>, Diagnostics>,
        config: &Value,
        operation: &str,
    ) -> (Option<Value>, Diagnostics) {
        let d = match found {
            Ok(d) => d,
            Err(diags) => return (None, diags),
        };
        let mut diags = Diagnostics::new();
        let state = d.implementation.read(&self.context(), config, &mut diags).await;
        (state.map(|s| ensure_known(s, &d.schema, operation, &mut diags)), diags)
    }
}

/// Data sources and ephemeral resources validate alike.
fn validate_with(found: Result<&Registered<dyn DataSource>, Diagnostics>, config: &Value) -> Diagnostics {
    match found {
        Ok(d) => {
            let mut diags = Diagnostics::new();
            d.implementation.validate(config, &mut diags);
            diags
        }
        Err(diags) => diags,
    }
}

fn reject_write_only_values(schema: &Schema, config: &Value, diags: &mut Diagnostics) {
    for attribute in schema.block.attributes.iter().filter(|a| a.write_only) {
        if config.get_attr(&attribute.name).is_some_and(|v| !v.is_null()) {
            diags.push(
                Diagnostic::error(
                    "Write-only attribute needs Terraform 1.11 or later",
                    format!(
                        "{:?} is write-only: its value is never stored, which only Terraform 1.11 and later \
                         support. Upgrade Terraform, or use the attribute this one replaces (see the docs).",
                        attribute.name
                    ),
                )
                .at(AttributePath::root(&attribute.name)),
            );
        }
    }
}

fn unknown_type(kind: &str, type_name: &str) -> Diagnostics {
    Diagnostic::error(
        format!("Unknown {kind} type"),
        format!("This provider has no {kind} named {type_name:?}."),
    )
    .into()
}

/// The planning steps every resource shares, in the order Terraform's rules need them:
/// - create: computed attributes the configuration leaves unset become unknown;
/// - update: nothing changes when the proposal equals the prior state; otherwise computed
///   attributes become unknown unless marked `keep_on_update`;
/// - attributes marked `requires_replace` that change are reported, and a replacement
///   makes every computed attribute unknown;
/// - write-only attributes are always planned null.
pub fn plan_defaults(schema: &Schema, prior: &Value, proposed: &Value, config: &Value) -> Plan {
    let attributes = &schema.block.attributes;
    let mut planned = proposed.clone();
    let mut requires_replace = Vec::new();
    let unset_in_config = |name: &str| config.get_attr(name).is_none_or(Value::is_null);

    for attribute in attributes.iter().filter(|a| a.write_only) {
        planned.set_attr(&attribute.name, Value::Null);
    }
    // Terraform 1.0 proposes null for an empty nested-attribute map (`agents = {}`), then
    // rejects that plan ("planned for absence but config wants existence"): a value that only
    // the configuration sets is planned as written.
    for attribute in attributes.iter().filter(|a| !a.computed && !a.write_only) {
        if let Some(value) = config.get_attr(&attribute.name).filter(|v| !v.is_null()) {
            if planned.get_attr(&attribute.name).is_none_or(Value::is_null) {
                planned.set_attr(&attribute.name, value.clone());
            }
        }
    }

    if prior.is_null() {
        for attribute in attributes.iter().filter(|a| a.computed && unset_in_config(&a.name)) {
            planned.set_attr(&attribute.name, Value::Unknown);
        }
    } else {
        for attribute in attributes.iter().filter(|a| a.requires_replace) {
            if planned.get_attr(&attribute.name) != prior.get_attr(&attribute.name) {
                requires_replace.push(AttributePath::root(&attribute.name));
            }
        }
        let replacing = !requires_replace.is_empty();
        if replacing || &planned != prior {
            for attribute in attributes.iter().filter(|a| a.computed && unset_in_config(&a.name)) {
                if replacing || !attribute.keep_on_update {
                    planned.set_attr(&attribute.name, Value::Unknown);
                }
            }
        }
    }
    Plan { prior: prior.clone(), config: config.clone(), planned, requires_replace }
}

/// Terraform rejects unknown values in results; turning them to null with an error names
/// the bug instead of failing with a protocol error.
fn ensure_known(mut state: Value, schema: &Schema, operation: &str, diags: &mut Diagnostics) -> Value {
    for attribute in &schema.block.attributes {
        if attribute.write_only {
            state.set_attr(&attribute.name, Value::Null);
        }
        if let Some(v) = state.get_attr(&attribute.name) {
            if !v.is_wholly_known() {
                diags.error_at(
                    AttributePath::root(&attribute.name),
                    "Provider bug: unknown value after ".to_string() + operation,
                    "The provider left this attribute unknown. Please report this issue.",
                );
                state.set_attr(&attribute.name, Value::Null);
            }
        }
    }
    state
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::schema::{Attribute, Block};
    use crate::provider::PlatformProvider;

    fn schema() -> Schema {
        Schema::new(Block::new(vec![
            Attribute::string("id").computed().keep_on_update(),
            Attribute::string("name").required().requires_replace(),
            Attribute::string_map("labels").optional(),
            Attribute::string("generation").computed(),
            Attribute::string("mode").optional().computed(),
            Attribute::string("secret_wo").optional().write_only(),
        ]))
    }

    fn object(pairs: &[(&str, Value)]) -> Value {
        let mut v = Value::null_object(&schema().implied_type());
        for (k, val) in pairs {
            v.set_attr(k, val.clone());
        }
        v
    }

    #[test]
    fn a_configured_value_proposed_as_null_is_planned_as_written() {
        // Terraform 1.0 proposes null for an empty nested-attribute map.
        let config = object(&[("name", Value::string("a")), ("labels", Value::map(Vec::<(String, Value)>::new()))]);
        let proposed = object(&[("name", Value::string("a"))]);
        let plan = plan_defaults(&schema(), &Value::Null, &proposed, &config);
        assert_eq!(plan.planned.get_attr("labels"), Some(&Value::map(Vec::<(String, Value)>::new())));
    }

    #[test]
    fn create_marks_unset_computed_attributes_unknown() {
        // Pitfall 15: a create plan that echoes the proposal makes apply "inconsistent".
        let config = object(&[("name", "a".into()), ("mode", "fast".into()), ("secret_wo", "s".into())]);
        let plan = plan_defaults(&schema(), &Value::Null, &config, &config);
        assert_eq!(plan.planned.get_attr("id"), Some(&Value::Unknown));
        assert_eq!(plan.planned.get_attr("generation"), Some(&Value::Unknown));
        // Optional+computed set in config keeps the configured value.
        assert_eq!(plan.planned.get_attr("mode"), Some(&Value::from("fast")));
        // Write-only values are never planned.
        assert_eq!(plan.planned.get_attr("secret_wo"), Some(&Value::Null));
        assert!(plan.requires_replace.is_empty());
    }

    #[test]
    fn unchanged_update_plans_exactly_the_prior_state() {
        let prior = object(&[("id", "a".into()), ("name", "a".into()), ("generation", "1".into()), ("mode", "x".into())]);
        let config = object(&[("name", "a".into())]);
        // Core's proposal copies computed values from the prior state.
        let plan = plan_defaults(&schema(), &prior, &prior, &config);
        assert_eq!(plan.planned, prior);
        assert!(plan.requires_replace.is_empty());
    }

    #[test]
    fn changed_update_keeps_ids_and_recomputes_the_rest() {
        let prior = object(&[("id", "a".into()), ("name", "a".into()), ("generation", "1".into()), ("mode", "x".into())]);
        let labels = Value::Map([("tier".to_string(), Value::from("prod"))].into());
        let config = object(&[("name", "a".into()), ("labels", labels.clone())]);
        let mut proposed = prior.clone();
        proposed.set_attr("labels", labels);
        let plan = plan_defaults(&schema(), &prior, &proposed, &config);
        assert_eq!(plan.planned.get_attr("id"), Some(&Value::from("a")));
        assert_eq!(plan.planned.get_attr("generation"), Some(&Value::Unknown));
        assert_eq!(plan.planned.get_attr("mode"), Some(&Value::Unknown));
    }

    #[test]
    fn changing_a_replacing_attribute_reports_its_path() {
        let prior = object(&[("id", "a".into()), ("name", "a".into()), ("generation", "1".into())]);
        let config = object(&[("name", "b".into())]);
        let mut proposed = prior.clone();
        proposed.set_attr("name", "b".into());
        let plan = plan_defaults(&schema(), &prior, &proposed, &config);
        assert_eq!(plan.requires_replace, vec![AttributePath::root("name")]);
        // A new object gets new ids.
        assert_eq!(plan.planned.get_attr("id"), Some(&Value::Unknown));
    }

    #[test]
    fn unknown_config_values_pass_through_and_force_an_update() {
        let prior = object(&[("id", "a".into()), ("name", "a".into()), ("generation", "1".into())]);
        let config = object(&[("name", "a".into()), ("labels", Value::Unknown)]);
        let mut proposed = prior.clone();
        proposed.set_attr("labels", Value::Unknown);
        let plan = plan_defaults(&schema(), &prior, &proposed, &config);
        assert_eq!(plan.planned.get_attr("labels"), Some(&Value::Unknown));
        assert_eq!(plan.planned.get_attr("generation"), Some(&Value::Unknown));
    }

    #[test]
    fn results_never_carry_unknowns() {
        // Pitfall 19: unknowns in apply/read results are a protocol error in Terraform.
        let state = object(&[("id", "a".into()), ("name", "a".into()), ("generation", Value::Unknown), ("secret_wo", "s".into())]);
        let mut diags = Diagnostics::new();
        let cleaned = ensure_known(state, &schema(), "apply", &mut diags);
        assert!(cleaned.is_wholly_known());
        assert_eq!(cleaned.get_attr("secret_wo"), Some(&Value::Null));
        assert!(diags.has_errors());
    }

    fn engine() -> Engine {
        Engine::new(Arc::new(PlatformProvider::new()))
    }

    #[test]
    fn state_from_older_or_newer_schemas_upgrades_cleanly() {
        // Pitfall 20: attributes a later version removed are dropped, missing ones are null.
        let json = br#"{"id":"a","name":"a","removed_long_ago":"x","labels":{"k":"v"}}"#;
        let state = engine().upgrade_resource_state("platform_namespace", 0, json).unwrap();
        assert_eq!(state.get_attr("name"), Some(&Value::from("a")));
        assert_eq!(state.get_attr("uid"), Some(&Value::Null));
        assert!(state.get_attr("removed_long_ago").is_none());
        let newer = engine().upgrade_resource_state("platform_namespace", 7, json).unwrap_err();
        assert!(newer.iter().any(|d| d.summary.contains("newer provider")));
    }

    #[test]
    fn a_stack_state_from_before_component_sets_reads_as_a_set() {
        // Components were a list holding `sensitive_values`; they are now a set without it.
        let json = br#"{"id":"x","name":"s","component":[
            {"name":"b","manifests":"---\n{}\n","sensitive_values":{"p":"secret"}},
            {"name":"a","catalog":"grafana"}]}"#;
        let state = engine().upgrade_resource_state("platform_stack", 0, json).unwrap();
        let Some(Value::Set(components)) = state.get_attr("component") else { panic!("not a set: {state:?}") };
        assert_eq!(components.len(), 2);
        assert!(components.iter().all(|c| c.get_attr("sensitive_values").is_none()));
        assert_eq!(components[0].get_attr("name"), Some(&Value::from("b")));
    }

    #[tokio::test]
    async fn destroy_plans_null_and_unknown_types_are_diagnostics() {
        // Pitfall 18: a destroy plan is null.
        let engine = engine();
        let ty = engine.resource_value_type("platform_namespace").unwrap().clone();
        let mut prior = Value::null_object(&ty);
        prior.set_attr("name", Value::from("a"));
        let (planned, replace, diags) = engine.plan_resource("platform_namespace", &prior, &Value::Null, &Value::Null).await;
        assert!(planned.is_null() && replace.is_empty() && diags.is_empty());
        let (_, _, diags) = engine.plan_resource("platform_nope", &prior, &prior, &prior).await;
        assert!(diags.has_errors());
    }
}
