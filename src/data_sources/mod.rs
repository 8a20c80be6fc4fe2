//! Data sources, one module per type (`platform_<module>`).

pub mod namespace;

use std::sync::Arc;

use crate::framework::resource::DataSource;
use crate::provider::Platform;

pub fn all(platform: &Arc<Platform>) -> Vec<Arc<dyn DataSource>> {
    vec![Arc::new(namespace::NamespaceDataSource::new(platform.clone()))]
}
