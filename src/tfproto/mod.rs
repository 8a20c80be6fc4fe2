//! The tfplugin6 gRPC service. Each RPC decodes its request against the right schema,
//! calls the [`Engine`], and encodes the answer; user-facing failures travel as
//! diagnostics inside OK responses, never as gRPC errors.

mod convert;

use std::sync::Arc;

use tonic::service::Routes;
use tonic::{Request, Response, Status};

use crate::framework::diagnostics::Diagnostics;
use crate::framework::engine::Engine;
use crate::framework::value::Value;

pub mod proto {
    tonic::include_proto!("tfplugin6");
}

use proto::provider_server::{Provider, ProviderServer};
use proto::*;

/// Plans and states of hundreds of objects exceed tonic's 4 MiB default by far.
const MAX_MESSAGE_SIZE: usize = 256 * 1024 * 1024;

/// The application protocol versions this service implements.
pub const PROTOCOL_VERSIONS: &[u32] = &[6];

pub fn routes(engine: Arc<Engine>) -> Routes {
    let server = ProviderServer::new(ProviderService { engine })
        .max_decoding_message_size(MAX_MESSAGE_SIZE)
        .max_encoding_message_size(MAX_MESSAGE_SIZE);
    Routes::new(server)
}

pub struct ProviderService {
    engine: Arc<Engine>,
}

fn capabilities() -> ServerCapabilities {
    // plan_destroy stays off: core plans destroys itself. The schema is built per
    // process, so Terraform may not skip GetProviderSchema.
    ServerCapabilities { plan_destroy: false, get_provider_schema_optional: false, ..Default::default() }
}

macro_rules! try_diags {
    ($result:expr, $diags:ident, $response:expr) => {
        match $result {
            Ok(v) => v,
            Err(d) => {
                $diags.extend(d);
                return Ok(Response::new($response));
            }
        }
    };
}

#[tonic::async_trait]
impl Provider for ProviderService {
    async fn get_metadata(&self, _request: Request<get_metadata::Request>) -> Result<Response<get_metadata::Response>, Status> {
        let engine = &self.engine;
        Ok(Response::new(get_metadata::Response {
            server_capabilities: Some(capabilities()),
            resources: engine
                .resource_schemas()
                .into_iter()
                .map(|(name, _)| get_metadata::ResourceMetadata { type_name: name.to_string() })
                .collect(),
            data_sources: engine
                .data_source_schemas()
                .into_iter()
                .map(|(name, _)| get_metadata::DataSourceMetadata { type_name: name.to_string() })
                .collect(),
            ephemeral_resources: engine
                .ephemeral_resource_schemas()
                .into_iter()
                .map(|(name, _)| get_metadata::EphemeralMetadata { type_name: name.to_string() })
                .collect(),
            ..Default::default()
        }))
    }

    async fn get_provider_schema(
        &self,
        _request: Request<get_provider_schema::Request>,
    ) -> Result<Response<get_provider_schema::Response>, Status> {
        let engine = &self.engine;
        tracing::trace!("GetProviderSchema");
        Ok(Response::new(get_provider_schema::Response {
            provider: Some(convert::schema(engine.provider_schema())),
            resource_schemas: engine
                .resource_schemas()
                .into_iter()
                .map(|(name, schema)| (name.to_string(), convert::schema(schema)))
                .collect(),
            data_source_schemas: engine
                .data_source_schemas()
                .into_iter()
                .map(|(name, schema)| (name.to_string(), convert::schema(schema)))
                .collect(),
            ephemeral_resource_schemas: engine
                .ephemeral_resource_schemas()
                .into_iter()
                .map(|(name, schema)| (name.to_string(), convert::schema(schema)))
                .collect(),
            server_capabilities: Some(capabilities()),
            ..Default::default()
        }))
    }

    async fn get_functions(&self, _request: Request<get_functions::Request>) -> Result<Response<get_functions::Response>, Status> {
        Ok(Response::new(get_functions::Response::default()))
    }

    async fn validate_provider_config(
        &self,
        request: Request<validate_provider_config::Request>,
    ) -> Result<Response<validate_provider_config::Response>, Status> {
        let request = request.into_inner();
        let mut diags = Diagnostics::new();
        let config = convert::decode(self.engine.provider_value_type(), request.config.as_ref(), "provider configuration");
        match config {
            Ok(config) => diags.extend(self.engine.validate_provider(&config)),
            Err(d) => diags.extend(d),
        }
        Ok(Response::new(validate_provider_config::Response { diagnostics: convert::diagnostics(diags) }))
    }

    async fn validate_resource_config(
        &self,
        request: Request<validate_resource_config::Request>,
    ) -> Result<Response<validate_resource_config::Response>, Status> {
        let request = request.into_inner();
        tracing::debug!(type_name = %request.type_name, "ValidateResourceConfig");
        let diags = match self
            .engine
            .resource_value_type(&request.type_name)
            .and_then(|ty| convert::decode(ty, request.config.as_ref(), "configuration"))
        {
            Ok(config) => {
                let write_only_allowed =
                    request.client_capabilities.as_ref().is_some_and(|c| c.write_only_attributes_allowed);
                self.engine.validate_resource(&request.type_name, &config, write_only_allowed)
            }
            Err(d) => d,
        };
        Ok(Response::new(validate_resource_config::Response { diagnostics: convert::diagnostics(diags) }))
    }

    async fn validate_data_resource_config(
        &self,
        request: Request<validate_data_resource_config::Request>,
    ) -> Result<Response<validate_data_resource_config::Response>, Status> {
        let request = request.into_inner();
        let diags = match self
            .engine
            .data_source_value_type(&request.type_name)
            .and_then(|ty| convert::decode(ty, request.config.as_ref(), "configuration"))
        {
            Ok(config) => self.engine.validate_data_source(&request.type_name, &config),
            Err(d) => d,
        };
        Ok(Response::new(validate_data_resource_config::Response { diagnostics: convert::diagnostics(diags) }))
    }

    async fn upgrade_resource_state(
        &self,
        request: Request<upgrade_resource_state::Request>,
    ) -> Result<Response<upgrade_resource_state::Response>, Status> {
        let request = request.into_inner();
        let mut diags = Diagnostics::new();
        let empty = upgrade_resource_state::Response::default();
        let ty = try_diags!(self.engine.resource_value_type(&request.type_name), diags, with_diags(empty, diags));
        let json = request.raw_state.map(|raw| raw.json).unwrap_or_default();
        let state = if json.is_empty() {
            Ok(Value::Null)
        } else {
            self.engine.upgrade_resource_state(&request.type_name, request.version, &json)
        };
        let state = try_diags!(state, diags, with_diags(upgrade_resource_state::Response::default(), diags));
        let upgraded_state = convert::encode(ty, &state, &mut diags);
        Ok(Response::new(upgrade_resource_state::Response {
            upgraded_state,
            diagnostics: convert::diagnostics(diags),
        }))
    }

    async fn configure_provider(
        &self,
        request: Request<configure_provider::Request>,
    ) -> Result<Response<configure_provider::Response>, Status> {
        let request = request.into_inner();
        tracing::debug!(terraform_version = %request.terraform_version, "ConfigureProvider");
        let diags = match convert::decode(self.engine.provider_value_type(), request.config.as_ref(), "provider configuration") {
            Ok(config) => self.engine.configure(&config, &request.terraform_version).await,
            Err(d) => d,
        };
        Ok(Response::new(configure_provider::Response { diagnostics: convert::diagnostics(diags) }))
    }

    async fn read_resource(&self, request: Request<read_resource::Request>) -> Result<Response<read_resource::Response>, Status> {
        let request = request.into_inner();
        tracing::debug!(type_name = %request.type_name, "ReadResource");
        let mut diags = Diagnostics::new();
        let fallback = read_resource::Response { new_state: request.current_state.clone(), private: request.private.clone(), ..Default::default() };
        let ty = try_diags!(self.engine.resource_value_type(&request.type_name), diags, with_diags(fallback, diags));
        let current = try_diags!(
            convert::decode(ty, request.current_state.as_ref(), "current state"),
            diags,
            with_diags(fallback, diags)
        );
        let (new_state, read_diags) = self.engine.read_resource(&request.type_name, &current).await;
        diags.extend(read_diags);
        let new_state = new_state.and_then(|state| convert::encode(ty, &state, &mut diags));
        Ok(Response::new(read_resource::Response {
            new_state,
            private: request.private,
            diagnostics: convert::diagnostics(diags),
            ..Default::default()
        }))
    }

    async fn plan_resource_change(
        &self,
        request: Request<plan_resource_change::Request>,
    ) -> Result<Response<plan_resource_change::Response>, Status> {
        let request = request.into_inner();
        tracing::debug!(type_name = %request.type_name, "PlanResourceChange");
        let mut diags = Diagnostics::new();
        let ty = try_diags!(self.engine.resource_value_type(&request.type_name), diags, with_diags(plan_resource_change::Response::default(), diags));
        let decoded = convert::decode(ty, request.prior_state.as_ref(), "prior state").and_then(|prior| {
            let proposed = convert::decode(ty, request.proposed_new_state.as_ref(), "proposed new state")?;
            let config = convert::decode(ty, request.config.as_ref(), "configuration")?;
            Ok((prior, proposed, config))
        });
        let (prior, proposed, config) =
            try_diags!(decoded, diags, with_diags(plan_resource_change::Response::default(), diags));
        let (planned, requires_replace, plan_diags) =
            self.engine.plan_resource(&request.type_name, &prior, &proposed, &config).await;
        diags.extend(plan_diags);
        let planned_state = convert::encode(ty, &planned, &mut diags);
        Ok(Response::new(plan_resource_change::Response {
            planned_state,
            requires_replace: requires_replace.iter().map(convert::attribute_path).collect(),
            planned_private: request.prior_private,
            diagnostics: convert::diagnostics(diags),
            ..Default::default()
        }))
    }

    async fn apply_resource_change(
        &self,
        request: Request<apply_resource_change::Request>,
    ) -> Result<Response<apply_resource_change::Response>, Status> {
        let request = request.into_inner();
        tracing::debug!(type_name = %request.type_name, "ApplyResourceChange");
        let mut diags = Diagnostics::new();
        let ty = try_diags!(self.engine.resource_value_type(&request.type_name), diags, with_diags(apply_resource_change::Response::default(), diags));
        let decoded = convert::decode(ty, request.prior_state.as_ref(), "prior state").and_then(|prior| {
            let planned = convert::decode(ty, request.planned_state.as_ref(), "planned state")?;
            let config = convert::decode(ty, request.config.as_ref(), "configuration")?;
            Ok((prior, planned, config))
        });
        let fallback = apply_resource_change::Response { new_state: request.prior_state.clone(), ..Default::default() };
        let (prior, planned, config) = try_diags!(decoded, diags, with_diags(fallback, diags));
        let (new_state, apply_diags) = self.engine.apply_resource(&request.type_name, &prior, &planned, &config).await;
        diags.extend(apply_diags);
        let new_state = if new_state.is_null() { None } else { convert::encode(ty, &new_state, &mut diags) };
        Ok(Response::new(apply_resource_change::Response {
            new_state,
            private: request.planned_private,
            diagnostics: convert::diagnostics(diags),
            ..Default::default()
        }))
    }

    async fn import_resource_state(
        &self,
        request: Request<import_resource_state::Request>,
    ) -> Result<Response<import_resource_state::Response>, Status> {
        let request = request.into_inner();
        tracing::debug!(type_name = %request.type_name, "ImportResourceState");
        let mut diags = Diagnostics::new();
        let ty = try_diags!(self.engine.resource_value_type(&request.type_name), diags, with_diags(import_resource_state::Response::default(), diags));
        let (state, import_diags) = self.engine.import_resource(&request.type_name, &request.id).await;
        diags.extend(import_diags);
        let imported_resources = state
            .and_then(|state| convert::encode(ty, &state, &mut diags))
            .map(|state| import_resource_state::ImportedResource { type_name: request.type_name.clone(), state: Some(state), ..Default::default() })
            .into_iter()
            .collect();
        Ok(Response::new(import_resource_state::Response {
            imported_resources,
            diagnostics: convert::diagnostics(diags),
            ..Default::default()
        }))
    }

    async fn read_data_source(
        &self,
        request: Request<read_data_source::Request>,
    ) -> Result<Response<read_data_source::Response>, Status> {
        let request = request.into_inner();
        tracing::debug!(type_name = %request.type_name, "ReadDataSource");
        let mut diags = Diagnostics::new();
        let ty = try_diags!(self.engine.data_source_value_type(&request.type_name), diags, with_diags(read_data_source::Response::default(), diags));
        let config = try_diags!(
            convert::decode(ty, request.config.as_ref(), "configuration"),
            diags,
            with_diags(read_data_source::Response::default(), diags)
        );
        let (state, read_diags) = self.engine.read_data_source(&request.type_name, &config).await;
        diags.extend(read_diags);
        let state = state.and_then(|state| convert::encode(ty, &state, &mut diags));
        Ok(Response::new(read_data_source::Response { state, diagnostics: convert::diagnostics(diags), ..Default::default() }))
    }

    async fn validate_ephemeral_resource_config(
        &self,
        request: Request<validate_ephemeral_resource_config::Request>,
    ) -> Result<Response<validate_ephemeral_resource_config::Response>, Status> {
        let request = request.into_inner();
        tracing::debug!(type_name = %request.type_name, "ValidateEphemeralResourceConfig");
        let diags = match self
            .engine
            .ephemeral_resource_value_type(&request.type_name)
            .and_then(|ty| convert::decode(ty, request.config.as_ref(), "configuration"))
        {
            Ok(config) => self.engine.validate_ephemeral_resource(&request.type_name, &config),
            Err(d) => d,
        };
        Ok(Response::new(validate_ephemeral_resource_config::Response { diagnostics: convert::diagnostics(diags) }))
    }

    async fn open_ephemeral_resource(
        &self,
        request: Request<open_ephemeral_resource::Request>,
    ) -> Result<Response<open_ephemeral_resource::Response>, Status> {
        let request = request.into_inner();
        tracing::debug!(type_name = %request.type_name, "OpenEphemeralResource");
        let mut diags = Diagnostics::new();
        let empty = open_ephemeral_resource::Response::default;
        let ty = try_diags!(self.engine.ephemeral_resource_value_type(&request.type_name), diags, with_diags(empty(), diags));
        let config = try_diags!(convert::decode(ty, request.config.as_ref(), "configuration"), diags, with_diags(empty(), diags));
        let (result, open_diags) = self.engine.open_ephemeral_resource(&request.type_name, &config).await;
        diags.extend(open_diags);
        let result = result.and_then(|result| convert::encode(ty, &result, &mut diags));
        // Nothing to renew or close: results are plain values, not leases.
        Ok(Response::new(open_ephemeral_resource::Response { result, diagnostics: convert::diagnostics(diags), ..Default::default() }))
    }

    async fn renew_ephemeral_resource(
        &self,
        _request: Request<renew_ephemeral_resource::Request>,
    ) -> Result<Response<renew_ephemeral_resource::Response>, Status> {
        Ok(Response::new(renew_ephemeral_resource::Response::default()))
    }

    async fn close_ephemeral_resource(
        &self,
        _request: Request<close_ephemeral_resource::Request>,
    ) -> Result<Response<close_ephemeral_resource::Response>, Status> {
        Ok(Response::new(close_ephemeral_resource::Response::default()))
    }

    async fn stop_provider(&self, _request: Request<stop_provider::Request>) -> Result<Response<stop_provider::Response>, Status> {
        tracing::info!("StopProvider: cancelling work in flight");
        self.engine.stop();
        Ok(Response::new(stop_provider::Response::default()))
    }
}

/// Sets the diagnostics field of any response type.
trait WithDiagnostics {
    fn set_diagnostics(&mut self, diagnostics: Vec<Diagnostic>);
}

macro_rules! with_diagnostics {
    ($($module:ident),*) => {
        $(impl WithDiagnostics for $module::Response {
            fn set_diagnostics(&mut self, diagnostics: Vec<Diagnostic>) {
                self.diagnostics = diagnostics;
            }
        })*
    };
}

with_diagnostics!(
    upgrade_resource_state,
    read_resource,
    plan_resource_change,
    apply_resource_change,
    import_resource_state,
    read_data_source,
    open_ephemeral_resource
);

fn with_diags<R: WithDiagnostics>(mut response: R, diags: Diagnostics) -> R {
    response.set_diagnostics(convert::diagnostics(diags));
    response
}
