//! go-plugin's side services: the controller (shutdown), stdio streaming and the broker.
//! Terraform calls Shutdown at the end of every phase; the other two are optional for it
//! and we answer them with streams that simply end when the plugin shuts down.

use std::pin::Pin;

use futures::{Stream, StreamExt};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status, Streaming};

pub mod proto {
    tonic::include_proto!("plugin");
}

use proto::grpc_broker_server::GrpcBroker;
use proto::grpc_controller_server::GrpcController;
use proto::grpc_stdio_server::GrpcStdio;
use proto::{ConnInfo, Empty, StdioData};

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// Ends the process when the host asks: cancels `shutdown`, which stops the server.
pub struct Controller {
    pub shutdown: CancellationToken,
}

#[tonic::async_trait]
impl GrpcController for Controller {
    async fn shutdown(&self, _request: Request<Empty>) -> Result<Response<Empty>, Status> {
        tracing::debug!("host requested shutdown");
        self.shutdown.cancel();
        Ok(Response::new(Empty {}))
    }
}

/// We log straight to stderr (the host reads it), so the stdio stream carries nothing;
/// it stays open until shutdown so the host does not log a broken stream.
pub struct Stdio {
    pub shutdown: CancellationToken,
}

#[tonic::async_trait]
impl GrpcStdio for Stdio {
    async fn stream_stdio(&self, _request: Request<()>) -> Result<Response<BoxStream<StdioData>>, Status> {
        let shutdown = self.shutdown.clone();
        let stream = futures::stream::once(async move { shutdown.cancelled_owned().await })
            .filter_map(|_| async { None });
        Ok(Response::new(Box::pin(stream)))
    }
}

/// Providers offer no brokered services: incoming messages are read and ignored.
pub struct Broker {
    pub shutdown: CancellationToken,
}

#[tonic::async_trait]
impl GrpcBroker for Broker {
    async fn start_stream(
        &self,
        request: Request<Streaming<ConnInfo>>,
    ) -> Result<Response<BoxStream<ConnInfo>>, Status> {
        let incoming = request.into_inner();
        let shutdown = self.shutdown.clone();
        let drained = incoming
            .take_until(shutdown.cancelled_owned())
            .filter_map(|_| async { None });
        Ok(Response::new(Box::pin(drained)))
    }
}
