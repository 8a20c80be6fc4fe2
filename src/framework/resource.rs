//! What a resource, a data source and the provider itself implement. Nothing here knows
//! about gRPC: values are [`Value`]s decoded against the type's own schema.

use std::sync::Arc;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use super::diagnostics::{AttributePath, Diagnostics};
use super::schema::Schema;
use super::value::Value;

/// Per-call context. `stop` is cancelled when Terraform asks the provider to stop
/// (Ctrl-C): long waits must give up promptly when it fires.
#[derive(Clone, Default)]
pub struct Context {
    pub stop: CancellationToken,
}

/// A plan being built for one resource instance.
pub struct Plan {
    /// Null when creating.
    pub prior: Value,
    /// The configuration as written (may hold unknowns).
    pub config: Value,
    /// Starts as the framework's proposal; the resource may refine it.
    pub planned: Value,
    pub requires_replace: Vec<AttributePath>,
}

impl Plan {
    pub fn is_create(&self) -> bool {
        self.prior.is_null()
    }
}

#[async_trait]
pub trait Resource: Send + Sync {
    /// The full type name, e.g. `platform_namespace`.
    fn type_name(&self) -> &'static str;
    fn schema(&self) -> Schema;

    /// Checks configuration that needs no remote system. Unknown values must be tolerated.
    fn validate(&self, _config: &Value, _diags: &mut Diagnostics) {}

    /// Refines the plan after the framework's generic pass (computed values unknown on
    /// create, kept or unknown on update, replacement paths).
    async fn modify_plan(&self, _ctx: &Context, _plan: &mut Plan, _diags: &mut Diagnostics) {}

    /// Creates the object. On error, return the partial state if something was created, so
    /// Terraform keeps track of it (as tainted). `config` is the configuration as written:
    /// the only place write-only values ever appear.
    async fn create(&self, ctx: &Context, planned: &Value, config: &Value, diags: &mut Diagnostics) -> Option<Value>;

    /// Refreshes `state` from the remote system; `None` means the object is gone.
    /// Transient failures must return the state unchanged with a diagnostic, never `None`.
    async fn read(&self, ctx: &Context, state: &Value, diags: &mut Diagnostics) -> Option<Value>;

    async fn update(
        &self,
        ctx: &Context,
        prior: &Value,
        planned: &Value,
        config: &Value,
        diags: &mut Diagnostics,
    ) -> Option<Value>;

    async fn delete(&self, ctx: &Context, prior: &Value, diags: &mut Diagnostics);

    /// Turns an import id into a state that `read` can refresh.
    async fn import(&self, _ctx: &Context, id: &str, diags: &mut Diagnostics) -> Option<Value> {
        diags.error(
            "Import not supported",
            format!("{} cannot be imported (id {id:?}).", self.type_name()),
        );
        None
    }
}

#[async_trait]
pub trait DataSource: Send + Sync {
    fn type_name(&self) -> &'static str;
    fn schema(&self) -> Schema;
    fn validate(&self, _config: &Value, _diags: &mut Diagnostics) {}
    /// Returns the full state (config values plus computed attributes).
    async fn read(&self, ctx: &Context, config: &Value, diags: &mut Diagnostics) -> Option<Value>;
}

/// Ephemeral resources (Terraform >= 1.10) are opened exactly like a data source is read,
/// through [`DataSource`]; Terraform never stores what they return.
#[async_trait]
pub trait Provider: Send + Sync {
    /// The provider type, e.g. `platform`; every resource name starts with it and `_`.
    fn type_name(&self) -> &'static str;
    fn schema(&self) -> Schema;
    fn validate(&self, _config: &Value, _diags: &mut Diagnostics) {}
    /// Takes the provider block. Must not contact remote systems: the configuration may
    /// refer to things that do not exist yet.
    async fn configure(&self, ctx: &Context, config: &Value, terraform_version: &str, diags: &mut Diagnostics);
    fn resources(&self) -> Vec<Arc<dyn Resource>>;
    fn data_sources(&self) -> Vec<Arc<dyn DataSource>>;
    fn ephemeral_resources(&self) -> Vec<Arc<dyn DataSource>> {
        Vec::new()
    }
}
