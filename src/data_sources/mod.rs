//! Data sources and ephemeral resources, one module per type (`platform_<module>`);
//! `provider` lists them. They share [`crate::platform`] and know nothing of `provider`.

pub mod backups;
pub mod catalog;
pub mod cluster;
pub mod dns_record;
pub mod k3s_kubeconfig;
pub mod namespace;
pub mod sealed_secrets_certificate;
pub mod sops_file;
