//! Data sources, one module per type (`platform_<module>`).

pub mod catalog;
pub mod namespace;
pub mod sops_file;

use std::sync::Arc;

use crate::framework::resource::DataSource;
use crate::provider::Platform;

pub fn all(platform: &Arc<Platform>) -> Vec<Arc<dyn DataSource>> {
    vec![
        Arc::new(catalog::CatalogDataSource),
        Arc::new(namespace::NamespaceDataSource::new(platform.clone())),
        Arc::new(sops_file::SopsFile::new(platform.clone())),
    ]
}

/// Ephemeral resources: opened like data sources, never stored.
pub fn ephemeral(platform: &Arc<Platform>) -> Vec<Arc<dyn DataSource>> {
    vec![Arc::new(sops_file::SopsFile::new(platform.clone()))]
}
