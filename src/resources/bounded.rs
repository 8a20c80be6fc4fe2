//! Remote calls bounded by a timeout and by Terraform's stop signal (Ctrl-C).

use std::future::Future;
use std::time::Duration;

use crate::clients::kube::KubeError;
use crate::framework::resource::Context;

/// Runs `work` unless it outlasts `timeout` or Terraform asks us to stop.
pub async fn run_bounded<T>(
    ctx: &Context,
    timeout: Duration,
    work: impl Future<Output = Result<T, KubeError>>,
) -> Result<T, KubeError> {
    tokio::select! {
        _ = ctx.stop.cancelled() => Err(KubeError::Cancelled),
        result = tokio::time::timeout(timeout, work) => result.unwrap_or(Err(KubeError::Timeout(timeout))),
    }
}
