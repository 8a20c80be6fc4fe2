//! go-plugin server: handshake, AutoMTLS, listener, health and the side services.
//!
//! This module knows nothing of Terraform's provider protocol or of Kubernetes: it serves
//! whatever gRPC routes it is given, the way a go-plugin host expects.

pub mod handshake;
mod listener;
pub mod services;
pub mod tls;

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tonic::service::Routes;

use handshake::{HostEnvironment, ListenAddress};
use listener::Listener;

#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error(transparent)]
    Handshake(#[from] handshake::HandshakeError),
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error("could not listen: {0}")]
    Listen(std::io::Error),
    #[error("gRPC server failed: {0}")]
    Serve(#[from] tonic::transport::Error),
}

/// How the process was started.
pub enum Mode {
    /// Launched by Terraform: handshake from the environment, AutoMTLS when offered.
    Managed,
    /// Started by hand with `--debug`: plain gRPC on a unix socket (TCP on Windows), and we
    /// print the `TF_REATTACH_PROVIDERS` value for the given provider address.
    Debug { provider_address: String },
}

/// Serves `routes` plus go-plugin's services until the host shuts us down.
/// `supported` lists the application protocol versions the routes implement.
pub async fn serve(
    routes: Routes,
    supported: &[u32],
    mode: Mode,
    shutdown: CancellationToken,
) -> Result<(), PluginError> {
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter
        .set_service_status("plugin", tonic_health::ServingStatus::Serving)
        .await;
    let routes = routes
        .add_service(health_service)
        .add_service(services::proto::grpc_controller_server::GrpcControllerServer::new(
            services::Controller { shutdown: shutdown.clone() },
        ))
        .add_service(services::proto::grpc_stdio_server::GrpcStdioServer::new(services::Stdio {
            shutdown: shutdown.clone(),
        }))
        .add_service(services::proto::grpc_broker_server::GrpcBrokerServer::new(services::Broker {
            shutdown: shutdown.clone(),
        }));

    let (listener, tls) = match &mode {
        Mode::Managed => {
            let host = HostEnvironment::from_lookup(|k| std::env::var(k).ok(), supported)?;
            let listener = Listener::bind(&host).await.map_err(PluginError::Listen)?;
            let tls = match &host.client_cert_pem {
                Some(pem) => {
                    let identity = tls::ServerIdentity::generate()?;
                    let client = tls::first_certificate_from_pem(pem)?;
                    let config = tls::server_config(&identity, client)?;
                    Some((identity.cert_der, Arc::new(config)))
                }
                None => None,
            };
            // The listener is bound before the line is printed: the host dials at once.
            let line = handshake::handshake_line(
                host.protocol_version,
                &listener.address(),
                tls.as_ref().map(|(der, _)| der.as_ref()),
            );
            #[allow(clippy::print_stdout)] // the one line stdout is for
            {
                println!("{line}");
            }
            (listener, tls.map(|(_, config)| config))
        }
        Mode::Debug { provider_address } => {
            let version = supported.iter().copied().max().unwrap_or(6);
            let listener = Listener::bind_default().await.map_err(PluginError::Listen)?;
            let reattach = reattach_value(provider_address, version, &listener.address());
            eprintln!(
                "Provider started. To attach Terraform CLI, set the TF_REATTACH_PROVIDERS environment variable with the following:\n\n\tTF_REATTACH_PROVIDERS='{reattach}'\n"
            );
            (listener, None)
        }
    };

    let address = listener.address();
    let incoming = listener.incoming(tls, shutdown.clone());
    tracing::info!(address = %address, "plugin server listening");
    let result = tonic::transport::Server::builder()
        .add_routes(routes)
        .serve_with_incoming_shutdown(incoming, shutdown.cancelled())
        .await;
    if let ListenAddress::Unix(path) = &address {
        let _ = std::fs::remove_file(path);
    }
    result.map_err(PluginError::from)
}

/// The JSON Terraform reads from `TF_REATTACH_PROVIDERS`. `Test: true` makes Terraform
/// keep our protocol version and leave the process running when it is done.
pub fn reattach_value(provider_address: &str, version: u32, address: &ListenAddress) -> String {
    serde_json::json!({
        provider_address: {
            "Protocol": "grpc",
            "ProtocolVersion": version,
            "Pid": std::process::id(),
            "Test": true,
            "Addr": { "Network": address.network(), "String": address.to_string() },
        }
    })
    .to_string()
}
