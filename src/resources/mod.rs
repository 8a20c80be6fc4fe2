//! Managed resources, one module per resource type (`platform_<module>`).

pub mod metadata;
pub mod namespace;

use std::sync::Arc;

use crate::framework::resource::Resource;
use crate::provider::Platform;

pub fn all(platform: &Arc<Platform>) -> Vec<Arc<dyn Resource>> {
    vec![Arc::new(namespace::NamespaceResource::new(platform.clone()))]
}
