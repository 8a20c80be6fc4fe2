//! Managed resources, one module per resource type (`platform_<module>`).

pub mod metadata;
pub mod namespace;
mod object;
mod owned;
pub mod sealed_secret;
pub mod secret;
mod secret_data;
pub mod stack;

use std::sync::Arc;

use crate::framework::resource::Resource;
use crate::provider::Platform;

pub fn all(platform: &Arc<Platform>) -> Vec<Arc<dyn Resource>> {
    vec![
        Arc::new(namespace::NamespaceResource::new(platform.clone())),
        Arc::new(secret::SecretResource::new(platform.clone())),
        Arc::new(sealed_secret::SealedSecretResource::new(platform.clone())),
        Arc::new(stack::StackResource::new(platform.clone())),
    ]
}
