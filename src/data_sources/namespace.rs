//! `platform_namespace` data source: reads an existing namespace.

use std::sync::Arc;

use async_trait::async_trait;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::Api;

use crate::framework::diagnostics::{AttributePath, Diagnostics};
use crate::framework::resource::{Context, DataSource};
use crate::framework::schema::{Attribute, Block, Schema};
use crate::framework::value::Value;
use crate::platform::{cluster_attribute, kube_diagnostic, validate_cluster_attribute, Platform};
use crate::resources::metadata;

pub struct NamespaceDataSource {
    platform: Arc<Platform>,
}

impl NamespaceDataSource {
    pub fn new(platform: Arc<Platform>) -> Self {
        NamespaceDataSource { platform }
    }
}

#[async_trait]
impl DataSource for NamespaceDataSource {
    fn type_name(&self) -> &'static str {
        "platform_namespace"
    }

    fn schema(&self) -> Schema {
        Schema::new(
            Block::new(vec![
                Attribute::string("id").computed().describe("The namespace name."),
                Attribute::string("name").required().describe("Name of the namespace to read."),
                Attribute::string_map("labels").computed().describe("All labels of the namespace."),
                Attribute::string_map("annotations").computed().describe("All annotations of the namespace."),
                Attribute::string("uid").computed().describe("UID of the namespace."),
                Attribute::string("phase").computed().describe("`Active` or `Terminating`."),
                cluster_attribute(),
            ])
            .describe("Reads an existing Kubernetes namespace. Fails when it does not exist."),
        )
    }

    fn validate(&self, config: &Value, diags: &mut Diagnostics) {
        metadata::validate_name(config, "name", diags);
        validate_cluster_attribute(config, diags);
    }

    async fn read(&self, _ctx: &Context, config: &Value, diags: &mut Diagnostics) -> Option<Value> {
        let name = config.get_attr("name").and_then(Value::as_str).unwrap_or_default().to_string();
        let cluster = match self.platform.cluster(config.get_attr("cluster")).await {
            Ok(cluster) => cluster,
            Err(diagnostic) => {
                diags.push(diagnostic);
                return None;
            }
        };
        let api: Api<Namespace> = Api::all(cluster.client.clone());
        let live = match cluster.get_opt(&api, &name).await {
            Ok(Some(live)) => live,
            Ok(None) => {
                diags.error_at(AttributePath::root("name"), "Namespace not found", format!("There is no namespace {name:?} in the cluster."));
                return None;
            }
            Err(e) => {
                diags.push(kube_diagnostic(&format!("Could not read namespace {name:?}"), &e));
                return None;
            }
        };
        let all = |map: Option<&std::collections::BTreeMap<String, String>>| {
            metadata::string_map_value(&map.cloned().unwrap_or_default())
        };
        let mut state = config.clone();
        state.set_attr("id", Value::String(name));
        state.set_attr("labels", all(live.metadata.labels.as_ref()));
        state.set_attr("annotations", all(live.metadata.annotations.as_ref()));
        state.set_attr("uid", Value::String(live.metadata.uid.clone().unwrap_or_default()));
        let phase = live.status.as_ref().and_then(|s| s.phase.clone()).unwrap_or_default();
        state.set_attr("phase", Value::String(phase));
        Some(state)
    }
}
