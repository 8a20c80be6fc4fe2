//! terraform-provider-platform: started by Terraform (or by hand with `--debug`).

use std::process::ExitCode;
use std::sync::Arc;

use platform_provider::framework::engine::Engine;
use platform_provider::plugin::{self, Mode, PluginError};
use platform_provider::provider::PlatformProvider;
use platform_provider::{logging, tfproto};
use tokio_util::sync::CancellationToken;

const USAGE: &str = "terraform-provider-platform: a Terraform/OpenTofu provider.

Terraform starts this program itself. Options for running it by hand:
  --debug [--address ADDRESS]  serve without Terraform and print TF_REATTACH_PROVIDERS
                               (ADDRESS defaults to registry.terraform.io/platform/platform)
  --version                    print the version
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        eprint!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    if args.iter().any(|a| a == "--version") {
        // Not plugin mode: stdout carries no handshake here, and scripts read the version from it.
        println!("terraform-provider-platform {}", platform_provider::VERSION);
        return ExitCode::SUCCESS;
    }
    let mode = if args.iter().any(|a| a == "--debug") {
        let address = args
            .iter()
            .position(|a| a == "--address")
            .and_then(|i| args.get(i + 1))
            .cloned()
            .unwrap_or_else(|| "registry.terraform.io/platform/platform".to_string());
        Mode::Debug { provider_address: address }
    } else {
        Mode::Managed
    };

    logging::init();
    tracing::info!(version = platform_provider::VERSION, pid = std::process::id(), "terraform-provider-platform starting");
    std::panic::set_hook(Box::new(|info| {
        tracing::error!(panic = %info, "provider panicked; please report this issue");
    }));

    // 8 MiB per worker rather than tokio's 2 MiB: a rolling cluster upgrade polls deeply nested
    // futures (SSH sessions inside waits inside the rollout), which unoptimized builds keep on
    // the stack.
    let runtime = match tokio::runtime::Builder::new_multi_thread().thread_stack_size(8 << 20).enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("terraform-provider-platform: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        let shutdown = CancellationToken::new();
        watch_interrupts(matches!(mode, Mode::Debug { .. }), shutdown.clone());
        let engine = Arc::new(Engine::new(Arc::new(PlatformProvider::new())));
        plugin::serve(tfproto::routes(engine), tfproto::PROTOCOL_VERSIONS, mode, shutdown).await
    });
    match result {
        Ok(()) => {
            // Do not wait for abandoned background work once the host is done with us.
            runtime.shutdown_background();
            ExitCode::SUCCESS
        }
        Err(PluginError::Handshake(e)) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("terraform-provider-platform: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Ctrl-C reaches the whole process group; Terraform then asks us to stop over gRPC, so a
/// managed plugin ignores the signal. A debug server stops on it.
fn watch_interrupts(stop_on_interrupt: bool, shutdown: CancellationToken) {
    tokio::spawn(async move {
        while tokio::signal::ctrl_c().await.is_ok() {
            if stop_on_interrupt {
                shutdown.cancel();
                return;
            }
        }
    });
}
