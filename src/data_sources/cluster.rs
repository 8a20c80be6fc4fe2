//! `platform_cluster` data source: a running cluster's version, nodes, `/readyz` and the
//! `connection` map for other resources; the same values as the `platform_cluster`
//! resource, read without adopting anything.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::framework::diagnostics::Diagnostics;
use crate::framework::resource::{Context, DataSource};
use crate::framework::schema::{Block, Schema};
use crate::framework::value::Value;
use crate::platform::{cluster_attribute, validate_cluster_attribute, Platform};
use crate::resources::cluster::{node_selector_attribute, observe_into, observed_attributes, validate_node_selector};

const READ_TIMEOUT: Duration = Duration::from_secs(60);

pub struct ClusterDataSource {
    platform: Arc<Platform>,
}

impl ClusterDataSource {
    pub fn new(platform: Arc<Platform>) -> Self {
        ClusterDataSource { platform }
    }
}

#[async_trait]
impl DataSource for ClusterDataSource {
    fn type_name(&self) -> &'static str {
        "platform_cluster"
    }

    fn schema(&self) -> Schema {
        let mut attributes = vec![cluster_attribute(), node_selector_attribute()];
        attributes.extend(observed_attributes());
        Schema::new(Block::new(attributes).describe(
            "Reads a running Kubernetes cluster, from the provider's `kubernetes` block or `cluster`: the API server's \
             version, the nodes with their roles, kubelet versions and readiness, `/readyz`, and the `connection` map \
             for the `cluster` attribute of other resources. To wait until the cluster is healthy, use the \
             `platform_cluster` resource.",
        ))
    }

    fn validate(&self, config: &Value, diags: &mut Diagnostics) {
        validate_cluster_attribute(config, diags);
        validate_node_selector(config, diags);
    }

    async fn read(&self, ctx: &Context, config: &Value, diags: &mut Diagnostics) -> Option<Value> {
        let mut state = config.clone();
        observe_into(&self.platform, ctx, &mut state, READ_TIMEOUT, diags).await?;
        Some(state)
    }
}
