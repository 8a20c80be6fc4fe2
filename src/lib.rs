//! terraform-provider-platform: a Terraform/OpenTofu provider for self-hosted Kubernetes
//! platforms.
//!
//! Layers, each using only those below it:
//! - [`plugin`]: go-plugin process protocol (handshake, AutoMTLS, health, shutdown);
//! - [`tfproto`]: the tfplugin6 gRPC service, converting wire messages to framework values;
//! - [`framework`]: values, schemas, diagnostics, resource traits and planning;
//! - [`clients`]: Kubernetes and other systems, knowing nothing of Terraform;
//! - [`catalog`]: the platform components we know (`catalog/components.yaml`, no I/O);
//! - [`platform`]: what this provider's types share (connections, client cache, SOPS keys,
//!   Kubernetes errors as diagnostics);
//! - [`resources`], [`data_sources`]: this provider's types, using [`platform`];
//! - [`provider`]: the provider block, ConfigureProvider and the list of types.

// stdout belongs to the go-plugin handshake line alone; anything else printed there breaks
// the host's connection.
#![deny(clippy::print_stdout)]

/// This build's version: Cargo.toml's `version`, the one place it is set. `scripts/release.sh`
/// refuses to build a tag `vX.Y.Z` that disagrees with it, so release names and the binary match.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

pub mod catalog;
pub mod clients;
pub mod data_sources;
pub mod docs;
pub mod framework;
pub mod logging;
pub mod platform;
pub mod plugin;
pub mod provider;
pub mod resources;
pub mod tfproto;
