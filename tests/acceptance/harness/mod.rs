//! Acceptance-test harness: a real Kubernetes control plane (etcd, kube-apiserver,
//! kube-controller-manager) shared by every test of the binary, and a runner that drives
//! real `terraform` binaries against the provider built by cargo.
//!
//! Environment:
//! - `TF_ACC_KUBECONFIG`: use this existing cluster (e.g. kind) instead of starting one;
//! - `TF_ACC_KUBE_BIN_DIR`: directory with `etcd`, `kube-apiserver`, `kube-controller-manager`;
//! - `TF_ACC_TERRAFORM_PATHS`: colon-separated terraform binaries to run every test with;
//! - `TF_ACC_KEEP`: keep the control plane's temp dir (certs, logs, etcd data) after the run;
//! - `TF_ACC_TIMEOUT`: seconds one terraform/kubectl command may take (default 600);
//! - `TF_ACC_KUBECTL`: the kubectl to use (default `kubectl` on PATH);
//! - `TF_ACC_PROVIDER_DIR`: a directory whose `terraform-provider-platform` the tests run
//!   instead of the one cargo built (the benchmarks use it).
//!
//! When the first three are unset, the values written by `scripts/testenv.sh` to
//! `$PLATFORM_TESTENV_DIR/env.sh` (default `~/.cache/terraform-provider-platform/testenv`)
//! are used.

#![allow(dead_code, unused_imports)]

pub mod chart_crds_standin;
pub mod cloudflare_standin;
pub mod background;
pub mod control_plane;
pub mod dns;
pub mod dns_fault_proxy;
pub mod flux_standin;
pub mod gatekeeper_standin;
pub mod fault_proxy;
pub mod helm_standin;
pub mod hosts;
pub mod http;
pub mod k3s_config;
pub mod k3s_nodes;
pub mod k3s_standin;
pub mod kubectl;
pub mod manifests_server;
pub mod plain_http;
pub mod registry;
pub mod s3;
pub mod secrets;
pub mod suc_standin;
pub mod terraform;
pub mod test_nodes;
pub mod velero_standin;

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub use control_plane::{cluster, Cluster};
pub use kubectl::{kubectl, kubectl_apply, kubectl_stdin};
pub use terraform::{for_each_terraform, newest_terraform, oldest_terraform, terraform_binaries, TerraformBin, Workdir};

/// The cache directory of `scripts/testenv.sh`.
pub fn testenv_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("PLATFORM_TESTENV_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/root"));
    home.join(".cache/terraform-provider-platform/testenv")
}

/// `export KEY='value'` lines of `$PLATFORM_TESTENV_DIR/env.sh`, if it exists.
fn testenv_vars() -> &'static HashMap<String, String> {
    static VARS: OnceLock<HashMap<String, String>> = OnceLock::new();
    VARS.get_or_init(|| {
        let mut vars = HashMap::new();
        let Ok(text) = std::fs::read_to_string(testenv_dir().join("env.sh")) else { return vars };
        for line in text.lines() {
            let Some(rest) = line.trim().strip_prefix("export ") else { continue };
            let Some((key, value)) = rest.split_once('=') else { continue };
            let value = value.trim();
            let value = value
                .strip_prefix('\'')
                .and_then(|v| v.strip_suffix('\''))
                .or_else(|| value.strip_prefix('"').and_then(|v| v.strip_suffix('"')))
                .unwrap_or(value);
            if !value.contains('$') {
                vars.insert(key.trim().to_string(), value.to_string());
            }
        }
        vars
    })
}

/// An environment variable, falling back to the value `scripts/testenv.sh` recorded.
pub fn env_or_testenv(key: &str) -> Option<String> {
    std::env::var(key).ok().filter(|v| !v.is_empty()).or_else(|| testenv_vars().get(key).cloned())
}

pub(crate) const SETUP_HINT: &str =
    "run `bash scripts/testenv.sh` (or `make test`, which runs it) and `source ~/.cache/terraform-provider-platform/testenv/env.sh`";

/// What a finished command printed and how it exited.
#[derive(Debug, Clone)]
pub struct CmdOutput {
    /// The command line, for messages.
    pub command: String,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl CmdOutput {
    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// The exit code (-1 when killed by a signal).
    pub fn code(&self) -> i32 {
        self.status.code().unwrap_or(-1)
    }

    /// stdout followed by stderr.
    pub fn combined(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    /// Panics, showing both streams, unless the command exited 0.
    #[track_caller]
    pub fn assert_success(&self) -> &Self {
        if !self.success() {
            panic!("`{}` failed ({}):\n{}", self.command, self.status, self.describe());
        }
        self
    }

    /// Panics unless the command failed and its output contains `needle`.
    #[track_caller]
    pub fn assert_failure_contains(&self, needle: &str) -> &Self {
        if self.success() {
            panic!("`{}` succeeded, expected a failure mentioning {needle:?}:\n{}", self.command, self.describe());
        }
        if !self.combined().contains(needle) {
            panic!("`{}` failed without mentioning {needle:?}:\n{}", self.command, self.describe());
        }
        self
    }

    /// stdout parsed as JSON; panics with both streams when it is not.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("`{}` printed no JSON ({e}):\n{}", self.command, self.describe()))
    }

    pub fn describe(&self) -> String {
        format!("--- stdout ---\n{}\n--- stderr ---\n{}", self.stdout, self.stderr)
    }
}

/// Seconds one external command may run before it is killed (`TF_ACC_TIMEOUT`, default 600).
pub fn command_timeout() -> Duration {
    let secs = std::env::var("TF_ACC_TIMEOUT").ok().and_then(|v| v.parse().ok()).unwrap_or(600);
    Duration::from_secs(secs)
}

/// Runs `cmd` to completion (feeding `stdin` if given), killing it after `timeout`.
pub fn run_command(mut cmd: Command, stdin: Option<&[u8]>, timeout: Duration) -> CmdOutput {
    let command = describe_command(&cmd);
    cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start `{command}`: {e}"));
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        let input = input.to_vec();
        std::thread::spawn(move || {
            use std::io::Write;
            let _ = pipe.write_all(&input);
        });
    }
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = out.read_to_end(&mut buf);
        buf
    });
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = err.read_to_end(&mut buf);
        buf
    });
    let started = Instant::now();
    let deadline = started + timeout;
    let (status, timed_out) = loop {
        match child.try_wait() {
            Ok(Some(status)) => break (status, false),
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                break (child.wait().expect("wait for killed child"), true);
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(25)),
            Err(e) => panic!("waiting for `{command}`: {e}"),
        }
    };
    let exited = started.elapsed();
    // A grandchild that inherited the pipes (e.g. a provider outliving a crashed terraform)
    // would keep them open: stop waiting for it shortly after the command itself exited.
    let (stdout, stderr) =
        (join_within(out_reader, Duration::from_secs(10)), join_within(err_reader, Duration::from_secs(10)));
    let output = CmdOutput {
        command,
        status,
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    };
    eprintln!("acceptance: `{}` -> {} in {:.1?}", output.command, output.status, exited);
    if timed_out {
        panic!("`{}` did not finish within {timeout:?} and was killed:\n{}", output.command, output.describe());
    }
    output
}

fn join_within(reader: std::thread::JoinHandle<Vec<u8>>, limit: Duration) -> Vec<u8> {
    let deadline = Instant::now() + limit;
    while !reader.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    if reader.is_finished() {
        reader.join().unwrap_or_default()
    } else {
        b"(output pipe still held open by a leftover child process; stopped reading)".to_vec()
    }
}

fn describe_command(cmd: &Command) -> String {
    let mut parts = vec![cmd.get_program().to_string_lossy().into_owned()];
    parts.extend(cmd.get_args().map(|a| a.to_string_lossy().into_owned()));
    parts.join(" ")
}

/// Polls `check` until it returns `Some`, panicking with `what` (and the last `Err`
/// message) after `timeout`.
#[track_caller]
pub fn wait_until<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + timeout;
    let mut delay = Duration::from_millis(50);
    loop {
        match check() {
            Ok(v) => return v,
            Err(last) if Instant::now() >= deadline => {
                panic!("timed out after {timeout:?} waiting for {what}; last: {last}")
            }
            Err(_) => {
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_millis(500));
            }
        }
    }
}

/// The text of `tests/acceptance/fixtures/<path>`; panics naming the file when it cannot be read.
#[track_caller]
pub fn fixture(path: &str) -> String {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/acceptance/fixtures").join(path);
    std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("read the fixture {}: {e}", file.display()))
}

/// `at` as Kubernetes serialises a `metav1.Time`: RFC 3339 in UTC, whole seconds.
pub fn kube_time(at: time::OffsetDateTime) -> String {
    at.to_offset(time::UtcOffset::UTC)
        .replace_nanosecond(0)
        .expect("zero nanoseconds")
        .format(&time::format_description::well_known::Rfc3339)
        .expect("format RFC 3339")
}

/// Now, as [`kube_time`] writes it (the stand-in controllers' timestamps).
pub fn kube_now() -> String {
    kube_time(time::OffsetDateTime::now_utc())
}

/// A DNS-1123 name unique within this test run and across runs against one cluster,
/// e.g. `unique_name("ns")` → `ns-3f9a1c-7`.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    static RUN: OnceLock<String> = OnceLock::new();
    let run = RUN.get_or_init(|| {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
        format!("{:x}", (std::process::id() as u64 * 1_000_003 + nanos as u64) & 0xff_ffff)
    });
    format!("{prefix}-{run}-{}", COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// Reads an HTTP/1.1 request head from a test server's connection and returns its method and
/// path (query dropped, no leading `/`); headers are skipped. `None` when the client went away.
pub fn read_request_head(reader: &mut impl std::io::BufRead) -> Option<(String, String)> {
    let mut request_line = String::new();
    reader.read_line(&mut request_line).ok()?;
    loop {
        let mut header = String::new();
        match reader.read_line(&mut header) {
            Ok(0) | Err(_) => return None,
            Ok(_) if header.trim().is_empty() => break,
            Ok(_) => {}
        }
    }
    let mut parts = request_line.split_whitespace();
    let (method, target) = (parts.next()?, parts.next().unwrap_or("/"));
    let path = target.split('?').next().unwrap_or_default().trim_start_matches('/');
    Some((method.to_string(), path.to_string()))
}

/// The last `lines` lines of a file, for failure messages.
pub fn tail_file(path: &Path, lines: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}
