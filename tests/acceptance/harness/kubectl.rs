//! `kubectl` against the test cluster, for setting up and checking state independently of
//! the provider.

use std::process::Command;

use super::{cluster, command_timeout, run_command, CmdOutput};

/// The kubectl program: `TF_ACC_KUBECTL`, else `kubectl` on PATH.
pub fn kubectl_program() -> String {
    std::env::var("TF_ACC_KUBECTL").ok().filter(|v| !v.is_empty()).unwrap_or_else(|| "kubectl".to_string())
}

fn command(args: &[&str]) -> Command {
    let mut cmd = Command::new(kubectl_program());
    cmd.arg("--kubeconfig").arg(cluster().kubeconfig_path()).args(args);
    cmd.env_remove("KUBECONFIG");
    cmd
}

/// Runs `kubectl --kubeconfig <cluster> ARGS...`. Check the result with
/// `.assert_success()`, `.json()`, ...
pub fn kubectl(args: &[&str]) -> CmdOutput {
    run_command(command(args), None, command_timeout())
}

/// Runs kubectl with `input` on stdin (e.g. `&["apply", "-f", "-"]`).
pub fn kubectl_stdin(args: &[&str], input: &str) -> CmdOutput {
    run_command(command(args), Some(input.as_bytes()), command_timeout())
}

/// `kubectl apply -f -` of a YAML or JSON document; panics on failure.
#[track_caller]
pub fn kubectl_apply(manifest: &str) -> CmdOutput {
    let out = kubectl_stdin(&["apply", "-f", "-"], manifest);
    out.assert_success();
    out
}
