//! Managed resources, one module per resource type (`platform_<module>`); `provider` lists
//! them. They share [`crate::platform`] and know nothing of `provider`.

pub mod cluster;
pub mod dns_record;
pub mod k3s_cluster;
pub mod metadata;
pub mod namespace;
mod object;
mod owned;
pub mod sealed_secret;
pub mod secret;
mod secret_data;
pub mod stack;
pub mod velero;
pub mod volsync;
