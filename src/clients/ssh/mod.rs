//! Commands and files on machines over SSH (the k3s cluster resource installs and drives its
//! nodes with it). Knows nothing of Terraform or k3s.
//!
//! An [`SshClient`] serves one operation: it keeps one authenticated connection per host and
//! runs every command of the operation on it, each in a channel of its own. Host keys are
//! checked strictly against the OpenSSH `known_hosts` text of [`SshSettings`]: an unknown host
//! is refused with its fingerprint, a changed key with the expected ones, a revoked one
//! outright; nothing is ever learned or written.
//!
//! Commands run with `sh -c` as root (through `sudo -n` for another user); their input goes
//! over stdin, never on a command line, and errors quote a short summary of the command (its
//! first line), never the script's body or its input. Files are written atomically (a temp
//! file in the target's directory, then `mv`), large ones checked with `sha256sum` first.
//!
//! A command that outlives its timeout, or whose operation is cancelled or runs out of time
//! (the caller's [`Deadline`] dropping the future included), is stopped whole: every process
//! of a run carries the environment variable `TF_SSH_RUN=<random id>` (set by `env` before
//! `sh` starts), and a second command on the same connection kills the processes that carry
//! it (sshd itself would signal only its direct child). Services the script started through
//! systemd do not inherit it and keep running.
//!
//! Connecting (TCP, key exchange, authentication) is retried on transient faults (refused,
//! reset, no answer within [`SshSettings::connect_timeout`]) by [`retry`] until the current
//! [`Deadline`]; a command is never run twice. Every wait honours the deadline's expiry and
//! cancellation ([`SshError::Interrupted`]).
//!
//! Secrets: the private key, its passphrase and the password stay in [`SecretString`]s and go to
//! russh only; russh logs through the `log` facade message types, lengths and public keys at
//! debug and trace, never payloads, and the provider's logger keeps libraries at info anyway.

mod known_hosts;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex as StdMutex, OnceLock};
use std::time::Duration;

use russh::client::{self, AuthResult, Handle};
use russh::keys::agent::client::AgentClient;
use russh::keys::agent::AgentIdentity;
use russh::keys::{PrivateKey, PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use russh::{ChannelMsg, Disconnect, Sig};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Mutex;

use crate::clients::deadline::{retry, Deadline, Interrupted, Retryable};

pub use known_hosts::{describe, fingerprint, hash_name, lookup_name, KnownHosts, Verdict};

/// How many characters of a command's first line errors quote.
const SUMMARY_CHARS: usize = 80;
/// How many lines of output [`SshError::CommandFailed`] quotes.
const TAIL_LINES: usize = 20;
/// Output kept per stream; a command printing more loses the rest (noted at the end).
const OUTPUT_LIMIT: usize = 32 << 20;
/// How long closing a timed-out command's channel may take.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// The exit status of the upload script when the file's sha256 differs.
const CHECKSUM_STATUS: u32 = 86;
/// The environment variable marking every process of one command (a random id per run).
const RUN_MARK: &str = "TF_SSH_RUN";
/// What `sudo -n` prints when it would ask for a password.
const SUDO_PASSWORD_MESSAGES: [&str; 2] = ["sudo: a password is required", "sudo: a terminal is required"];

/// How to reach and log in to the hosts of an [`SshClient`].
#[derive(Debug, Clone)]
pub struct SshSettings {
    /// The user to log in as; commands run as root, through `sudo -n` when it is not root.
    pub user: String,
    /// sshd's port on every host.
    pub port: u16,
    pub auth: SshAuth,
    /// OpenSSH known_hosts text. Entries for `host` or `[host]:port`, plain or hashed
    /// (`|1|salt|hash`), several key types; `@revoked` lines refuse their key,
    /// `@cert-authority` lines are ignored.
    pub known_hosts: String,
    /// How long one connection attempt (TCP, key exchange and authentication) may take.
    pub connect_timeout: Duration,
}

/// How the client authenticates. `Debug` never shows a secret.
#[derive(Debug, Clone)]
pub enum SshAuth {
    /// A private key: OpenSSH (`BEGIN OPENSSH PRIVATE KEY`) or PKCS#8/PKCS#1/SEC1 PEM; ed25519,
    /// ECDSA or RSA; `passphrase` for an encrypted one.
    PrivateKey {
        pem: SecretString,
        passphrase: Option<SecretString>,
    },
    /// The keys of the SSH agent at `$SSH_AUTH_SOCK`, tried in the agent's order.
    Agent,
    Password(SecretString),
}

/// What a command did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandOutput {
    /// Its exit status; `128 + n` when it was killed by signal `n` (noted in `stderr`).
    pub status: u32,
    pub stdout: String,
    pub stderr: String,
}

impl CommandOutput {
    /// Whether it exited with status 0.
    pub fn success(&self) -> bool {
        self.status == 0
    }

    /// Up to `lines` last lines of output for diagnostics: the end of stdout followed by the end
    /// of stderr, stderr's lines taking precedence when both are long.
    pub fn tail(&self, lines: usize) -> String {
        let stderr = last_lines(&self.stderr, lines);
        let stdout = last_lines(&self.stdout, lines - stderr.len());
        stdout.into_iter().chain(stderr).collect::<Vec<_>>().join("\n")
    }
}

fn last_lines(text: &str, n: usize) -> Vec<&str> {
    let lines: Vec<&str> = text.lines().map(|l| l.trim_end_matches('\r')).collect();
    let lines: Vec<&str> = match lines.iter().rposition(|l| !l.trim().is_empty()) {
        Some(last) => lines[..=last].to_vec(),
        None => Vec::new(),
    };
    lines[lines.len().saturating_sub(n)..].to_vec()
}

/// Why a command or transfer failed. `command` is a summary (the script's first line, at most
/// 80 characters), never the script's body nor its input.
#[derive(Debug, thiserror::Error)]
pub enum SshError {
    /// No SSH answer: refused, reset, no route, no answer in time, name not resolved (retried).
    #[error("cannot reach {host} over SSH: {detail}")]
    Unreachable { host: String, detail: String },
    /// known_hosts has no entry for the host.
    #[error("the host key of {host} ({fingerprint}) is not in known_hosts: check the fingerprint on the host (ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub) and add the key to known_hosts")]
    HostKeyUnknown { host: String, fingerprint: String },
    /// known_hosts lists other keys for the host: it was reinstalled, or someone is in the way.
    #[error("the host key of {host} is {found}, but known_hosts expects {}: if the host was reinstalled, update known_hosts; otherwise someone may be intercepting the connection", .expected.join(" or "))]
    HostKeyMismatch { host: String, expected: Vec<String>, found: String },
    /// known_hosts marks the host's key `@revoked`.
    #[error("the host key of {host} ({fingerprint}) is marked @revoked in known_hosts")]
    HostKeyRevoked { host: String, fingerprint: String },
    /// The server refused every credential offered.
    #[error("{host} refused SSH login as {user:?}: {detail}")]
    AuthRejected { host: String, user: String, detail: String },
    /// `sudo` wants a password for the user; it needs `NOPASSWD` (or log in as root).
    #[error(
        "sudo on {host} asks {user:?} for a password: allow it without one (NOPASSWD in sudoers) or log in as root"
    )]
    SudoPassword { host: String, user: String },
    /// A command ran longer than its timeout; its channel was closed.
    #[error("`{command}` on {host} did not finish within {}", humantime::format_duration(*.after))]
    Timeout { host: String, command: String, after: Duration },
    /// A command exited with a non-zero status (from [`SshClient::run_checked`] and the file writers).
    #[error("`{command}` failed on {host} with exit status {status}{}", tail_text(.tail))]
    CommandFailed { host: String, command: String, status: u32, tail: String },
    /// An uploaded file's sha256 on the host is not the expected one; it was not moved in place.
    #[error("the upload of {path} to {host} has sha256 {actual}, expected {expected}; the file was left unchanged")]
    ChecksumMismatch { host: String, path: String, expected: String, actual: String },
    /// The private key does not parse, or the passphrase is wrong (the key is never quoted).
    #[error("invalid SSH private key: {0}")]
    InvalidKey(String),
    /// The deadline passed or the caller asked to stop.
    #[error("{0}")]
    Interrupted(#[from] Interrupted),
    /// The server broke the protocol, refused a channel, or the connection dropped mid-command
    /// (which may or may not have run).
    #[error("SSH with {host} failed: {detail}")]
    Protocol { host: String, detail: String },
}

fn tail_text(tail: &str) -> String {
    if tail.trim().is_empty() {
        " and no output".to_string()
    } else {
        format!(":\n{tail}")
    }
}

impl Retryable for SshError {
    fn is_transient(&self) -> bool {
        matches!(self, SshError::Unreachable { .. })
    }

    fn interrupted(&self) -> Option<Interrupted> {
        match self {
            SshError::Interrupted(i) => Some(*i),
            _ => None,
        }
    }

    fn noting(self, note: &str) -> SshError {
        match self {
            SshError::Unreachable { host, detail } => {
                SshError::Unreachable { host, detail: format!("{detail}; {note}") }
            }
            other => other,
        }
    }
}

/// The first line of `script`, trimmed, at most 80 characters (`…` marks a cut or more lines).
pub fn summarize(script: &str) -> String {
    let mut lines = script.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines.next().unwrap_or("");
    let mut summary: String = first.chars().take(SUMMARY_CHARS).collect();
    if summary.len() < first.len() || lines.next().is_some() {
        summary.push('…');
    }
    summary
}

/// `text` in single quotes for `sh`.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

type Connection = Arc<Handle<HostCheck>>;

/// Adds one command and its duration to [`SshClient::stats`] when dropped.
struct Counted<'a> {
    client: &'a SshClient,
    started: std::time::Instant,
}

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.client.commands.fetch_add(1, Ordering::Relaxed);
        self.client.command_micros.fetch_add(self.started.elapsed().as_micros() as u64, Ordering::Relaxed);
    }
}

/// One per operation: keeps one authenticated connection per host and reuses it.
pub struct SshClient {
    settings: SshSettings,
    known_hosts: Arc<KnownHosts>,
    /// One slot per host, locked while its connection is being made.
    connections: StdMutex<HashMap<String, Arc<Mutex<Option<Connection>>>>>,
    opened: AtomicU64,
    /// Commands run and the time spent in them (microseconds), for [`SshClient::stats`].
    commands: AtomicU64,
    command_micros: AtomicU64,
    /// The decoded private key, decoded once (an encrypted key's KDF is slow).
    key: OnceLock<Result<Arc<PrivateKey>, String>>,
}

impl fmt::Debug for SshClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SshClient")
            .field("user", &self.settings.user)
            .field("port", &self.settings.port)
            .field("connections_opened", &self.connections_opened())
            .finish()
    }
}

impl SshClient {
    /// A client with no connection yet (they are made on first use).
    pub fn new(settings: SshSettings) -> SshClient {
        let known_hosts = KnownHosts::parse(&settings.known_hosts);
        if !known_hosts.skipped().is_empty() {
            tracing::warn!(lines = ?known_hosts.skipped(), "known_hosts lines that are not entries are ignored");
        }
        SshClient {
            settings,
            known_hosts: Arc::new(known_hosts),
            connections: StdMutex::new(HashMap::new()),
            opened: AtomicU64::new(0),
            commands: AtomicU64::new(0),
            command_micros: AtomicU64::new(0),
            key: OnceLock::new(),
        }
    }

    /// How many connections this client has made (authenticated) so far.
    pub fn connections_opened(&self) -> u64 {
        self.opened.load(Ordering::Relaxed)
    }

    /// Commands run so far and the wall time spent in them (connecting included).
    pub fn stats(&self) -> (u64, Duration) {
        (self.commands.load(Ordering::Relaxed), Duration::from_micros(self.command_micros.load(Ordering::Relaxed)))
    }

    /// Runs `script` with `sh -c` as root: directly when user is root, else through
    /// `sudo -n sh -c` (a sudo asking for a password → [`SshError::SudoPassword`]). `stdin` is
    /// sent then EOF. Times out after `timeout` from the channel's opening (then the channel is
    /// closed) and honours [`Deadline::current`] (cancel/expiry → [`SshError::Interrupted`]).
    /// Connecting is retried on transient faults; the command itself is never re-run.
    pub async fn run(
        &self,
        host: &str,
        script: &str,
        stdin: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<CommandOutput, SshError> {
        self.run_summarized(host, script, &summarize(script), stdin, timeout).await
    }

    /// [`SshClient::run`] that turns a non-zero exit into [`SshError::CommandFailed`]; the
    /// command's stdout.
    pub async fn run_checked(
        &self,
        host: &str,
        script: &str,
        stdin: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<String, SshError> {
        let summary = summarize(script);
        let output = self.run_summarized(host, script, &summary, stdin, timeout).await?;
        checked(host, &summary, output)
    }

    /// Writes `contents` to `path` atomically (temp file in the same dir + `mv`), with `mode`
    /// (e.g. `0o600`), creating parent dirs; the content goes over stdin, never on a command line.
    pub async fn write_file(
        &self,
        host: &str,
        path: &str,
        contents: &[u8],
        mode: u32,
        timeout: Duration,
    ) -> Result<(), SshError> {
        let script = write_script(path, mode, None);
        let summary = summarize(&format!("write {path}"));
        let output = self.run_summarized(host, &script, &summary, Some(contents), timeout).await?;
        checked(host, &summary, output).map(drop)
    }

    /// Uploads a large file the same way as [`SshClient::write_file`], streaming, then checks its
    /// sha256 on the host with `sha256sum` against `sha256` (hex) before moving it in place: a
    /// different one is [`SshError::ChecksumMismatch`] and leaves `path` as it was.
    pub async fn upload(
        &self,
        host: &str,
        path: &str,
        contents: &[u8],
        mode: u32,
        sha256: &str,
        timeout: Duration,
    ) -> Result<(), SshError> {
        let expected = sha256.trim().to_ascii_lowercase();
        let script = write_script(path, mode, Some(&expected));
        let summary = summarize(&format!("upload {path}"));
        let output = self.run_summarized(host, &script, &summary, Some(contents), timeout).await?;
        if output.status == CHECKSUM_STATUS {
            if let Some(actual) = output.stderr.lines().find_map(|l| l.strip_prefix("sha256-mismatch ")) {
                return Err(SshError::ChecksumMismatch {
                    host: host.to_string(),
                    path: path.to_string(),
                    expected,
                    actual: actual.trim().to_string(),
                });
            }
        }
        checked(host, &summary, output).map(drop)
    }

    /// Disconnects from every host (later calls connect again).
    pub async fn close(&self) {
        let slots: Vec<_> = self.lock_connections().drain().map(|(_, slot)| slot).collect();
        for slot in slots {
            if let Some(handle) = slot.lock().await.take() {
                let _ = tokio::time::timeout(
                    CLOSE_TIMEOUT,
                    handle.disconnect(Disconnect::ByApplication, "operation done", "en"),
                )
                .await;
            }
        }
    }

    fn lock_connections(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Mutex<Option<Connection>>>>> {
        self.connections.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn run_summarized(
        &self,
        host: &str,
        script: &str,
        summary: &str,
        stdin: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<CommandOutput, SshError> {
        // Counted however the run ends (a dropped future included).
        let _counted = Counted { client: self, started: std::time::Instant::now() };
        let deadline = Deadline::current();
        deadline.check()?;
        // Every process of the script inherits the run's mark, so that a timed-out or
        // interrupted one can be found and stopped whole (sshd signals only its direct child).
        let run = uuid::Uuid::new_v4().simple().to_string();
        let command = self.as_root(script, Some(&run));
        tracing::debug!(host, command = summary, "ssh: running");
        // A connection found dead (the server restarted, the link dropped) is made anew once:
        // nothing was run on it.
        let mut fresh = false;
        let (connection, channel) = loop {
            let connection = self.connection(host, fresh).await?;
            match deadline.within(async { Ok::<_, SshError>(connection.channel_open_session().await) }).await? {
                Ok(channel) => break (connection, channel),
                Err(e) if !fresh && connection.is_closed() => {
                    tracing::debug!(host, error = %e, "ssh: connection lost; reconnecting");
                    fresh = true;
                }
                Err(e) => return Err(protocol(host, format!("cannot open a session channel: {e}"))),
            }
        };
        let (mut reader, writer) = channel.split();
        let writer = Arc::new(writer);
        // Dropped before the command is done (the caller's deadline or cancellation drops this
        // future, or it timed out), it stops the command's processes in a task of its own.
        let mut unfinished = Unfinished {
            stop: Some(Stop {
                connection,
                writer: writer.clone(),
                command: self.as_root(&stop_script(&run), None),
                host: host.to_string(),
                summary: summary.to_string(),
            }),
        };
        let exchange = async {
            writer.exec(true, command.as_bytes()).await.map_err(|e| lost(host, summary, e))?;
            let writing = async {
                if let Some(input) = stdin {
                    writer.data(input).await?;
                }
                writer.eof().await
            };
            let reading = read_output(&mut reader);
            tokio::pin!(writing, reading);
            let mut written = false;
            loop {
                tokio::select! {
                    // The command may exit without reading all its input: a write error then
                    // is no failure of its own, the output and exit status tell what happened.
                    _ = &mut writing, if !written => written = true,
                    output = &mut reading => break output.map_err(|detail| protocol(host, format!("`{summary}`: {detail}"))),
                }
            }
        };
        let timed = async {
            match tokio::time::timeout(timeout, exchange).await {
                Ok(result) => result,
                Err(_) => {
                    Err(SshError::Timeout { host: host.to_string(), command: summary.to_string(), after: timeout })
                }
            }
        };
        let result = deadline.within(timed).await;
        match (&result, unfinished.stop.take()) {
            // Stopped here rather than in the background: the next command may count on it.
            (Err(SshError::Timeout { .. }), Some(stop)) => stop.run().await,
            // Out of time: stopped in the background when `unfinished` is dropped.
            (Err(SshError::Interrupted(_)), stop) => unfinished.stop = stop,
            _ => {}
        }
        let output = result?;
        if self.settings.user != "root"
            && !output.success()
            && SUDO_PASSWORD_MESSAGES.iter().any(|m| output.stderr.contains(m))
        {
            return Err(SshError::SudoPassword { host: host.to_string(), user: self.settings.user.clone() });
        }
        tracing::debug!(host, command = summary, status = output.status, "ssh: finished");
        Ok(output)
    }

    /// The command line running `script` with `sh -c` as root, its environment marked with
    /// `run` when given ([`RUN_MARK`]; `env` sets it before `sh` starts, so `sh` is marked too).
    fn as_root(&self, script: &str, run: Option<&str>) -> String {
        let sudo = if self.settings.user == "root" { "" } else { "sudo -n " };
        let mark = run.map(|run| format!("env {RUN_MARK}={run} ")).unwrap_or_default();
        format!("{sudo}{mark}sh -c {}", shell_quote(script))
    }

    /// The live connection to `host`, made (with retries) when there is none or `fresh` is asked.
    async fn connection(&self, host: &str, fresh: bool) -> Result<Connection, SshError> {
        let slot = self.lock_connections().entry(host.to_string()).or_default().clone();
        let deadline = Deadline::current();
        let mut slot = deadline.within(async { Ok::<_, SshError>(slot.lock().await) }).await?;
        if let Some(handle) = slot.as_ref() {
            if !fresh && !handle.is_closed() {
                return Ok(handle.clone());
            }
        }
        *slot = None;
        let handle = Arc::new(retry("SSH connection", || self.connect(host)).await?);
        self.opened.fetch_add(1, Ordering::Relaxed);
        *slot = Some(handle.clone());
        Ok(handle)
    }

    /// One connection attempt: TCP, key exchange, host key check and authentication, within
    /// the connect timeout.
    async fn connect(&self, host: &str) -> Result<Handle<HostCheck>, SshError> {
        let timeout = self.settings.connect_timeout;
        match tokio::time::timeout(timeout, self.connect_once(host)).await {
            Ok(result) => result,
            Err(_) => Err(SshError::Unreachable {
                host: host.to_string(),
                detail: format!("no SSH session within the {} connect timeout", humantime::format_duration(timeout)),
            }),
        }
    }

    async fn connect_once(&self, host: &str) -> Result<Handle<HostCheck>, SshError> {
        let port = self.settings.port;
        let address = host.trim_start_matches('[').trim_end_matches(']');
        let stream = tokio::net::TcpStream::connect((address, port))
            .await
            .map_err(|e| SshError::Unreachable { host: host.to_string(), detail: format!("port {port}: {e}") })?;
        let _ = stream.set_nodelay(true);

        let mut preferred = russh::Preferred::default();
        let known = self.known_hosts.algorithms(host, port);
        if !known.is_empty() {
            // Ask first for a key known_hosts can vouch for, as ssh does.
            let mut keys: Vec<_> = preferred.key.iter().filter(|a| known.contains(a)).cloned().collect();
            keys.extend(preferred.key.iter().filter(|a| !known.contains(a)).cloned());
            preferred.key = keys.into();
        }
        let config = client::Config {
            preferred,
            keepalive_interval: Some(Duration::from_secs(30)),
            keepalive_max: 3,
            ..Default::default()
        };
        let refusal = Arc::new(StdMutex::new(None));
        let check =
            HostCheck { host: host.to_string(), port, known_hosts: self.known_hosts.clone(), refusal: refusal.clone() };
        let mut handle = match client::connect_stream(Arc::new(config), stream, check).await {
            Ok(handle) => handle,
            Err(e) => {
                let refused = refusal.lock().unwrap_or_else(|e| e.into_inner()).take();
                return Err(refused.unwrap_or_else(|| handshake_error(host, e)));
            }
        };
        self.authenticate(host, &mut handle).await?;
        tracing::debug!(host, user = %self.settings.user, "ssh: connected");
        Ok(handle)
    }

    async fn authenticate(&self, host: &str, handle: &mut Handle<HostCheck>) -> Result<(), SshError> {
        let user = self.settings.user.clone();
        let rejected = |detail: String| SshError::AuthRejected { host: host.to_string(), user: user.clone(), detail };
        let failed = |e: russh::Error| handshake_error(host, e);
        let outcome = match &self.settings.auth {
            SshAuth::PrivateKey { pem, passphrase } => {
                let key = self
                    .key
                    .get_or_init(|| decode_key(pem, passphrase.as_ref()))
                    .clone()
                    .map_err(SshError::InvalidKey)?;
                let hash = if key.algorithm().is_rsa() {
                    handle.best_supported_rsa_hash().await.map_err(failed)?.flatten()
                } else {
                    None
                };
                let result = handle
                    .authenticate_publickey(&user, PrivateKeyWithHashAlg::new(key.clone(), hash))
                    .await
                    .map_err(failed)?;
                described(result, &format!("the {} key {}", key.algorithm().as_str(), fingerprint(key.public_key())))
            }
            SshAuth::Password(password) => {
                let result = handle.authenticate_password(&user, password.expose_secret()).await.map_err(failed)?;
                described(result, "the password")
            }
            SshAuth::Agent => {
                let mut agent = AgentClient::connect_env()
                    .await
                    .map_err(|e| rejected(format!("no SSH agent to ask ($SSH_AUTH_SOCK): {e}")))?;
                let identities =
                    agent.request_identities().await.map_err(|e| rejected(format!("the SSH agent failed: {e}")))?;
                let keys: Vec<_> = identities
                    .into_iter()
                    .filter_map(|i| match i {
                        AgentIdentity::PublicKey { key, .. } => Some(key),
                        AgentIdentity::Certificate { .. } => None,
                    })
                    .collect();
                if keys.is_empty() {
                    return Err(rejected("the SSH agent holds no key".to_string()));
                }
                let mut last = Err(String::new());
                for key in &keys {
                    let hash = if key.algorithm().is_rsa() {
                        handle.best_supported_rsa_hash().await.map_err(failed)?.flatten()
                    } else {
                        None
                    };
                    let result = handle
                        .authenticate_publickey_with(&user, key.clone(), hash, &mut agent)
                        .await
                        .map_err(|e| rejected(format!("the SSH agent failed to sign: {e}")))?;
                    last = described(result, &format!("the agent's {} keys", keys.len()));
                    if last.is_ok() {
                        break;
                    }
                }
                last
            }
        };
        outcome.map_err(rejected)
    }
}

/// `Ok` for a successful login, else what was refused and what the server would accept.
fn described(result: AuthResult, offered: &str) -> Result<(), String> {
    match result {
        AuthResult::Success => Ok(()),
        AuthResult::Failure { remaining_methods, .. } => {
            let methods: Vec<&str> = remaining_methods.iter().map(<&str>::from).collect();
            let accepted = if methods.is_empty() { "nothing more".to_string() } else { methods.join(", ") };
            Err(format!("{offered} was refused (the server accepts: {accepted})"))
        }
    }
}

/// The key of `pem`; errors say what is wrong without quoting it.
fn decode_key(pem: &SecretString, passphrase: Option<&SecretString>) -> Result<Arc<PrivateKey>, String> {
    match russh::keys::decode_secret_key(pem.expose_secret(), passphrase.map(|p| p.expose_secret())) {
        Ok(key) => Ok(Arc::new(key)),
        Err(russh::keys::Error::KeyIsEncrypted) => Err(if passphrase.is_some() {
            "the key is encrypted and the passphrase does not open it".to_string()
        } else {
            "the key is encrypted: a passphrase is needed".to_string()
        }),
        Err(e) => {
            let detail = match &e {
                russh::keys::Error::SshKey(russh::keys::ssh_key::Error::Crypto)
                | russh::keys::Error::SshKey(russh::keys::ssh_key::Error::Decrypted)
                    if passphrase.is_some() =>
                {
                    "the passphrase does not open the key".to_string()
                }
                other => key_error_text(other),
            };
            Err(detail)
        }
    }
}

/// A key error's message, which for these kinds never holds key material (parsers report
/// positions and kinds, not bytes); a PEM with no key block at all is named as such.
fn key_error_text(e: &russh::keys::Error) -> String {
    match e {
        russh::keys::Error::CouldNotReadKey => {
            "not an OpenSSH, PKCS#8, PKCS#1 or SEC1 private key (no recognised BEGIN ... PRIVATE KEY block)".to_string()
        }
        other => format!("the key does not parse: {other}"),
    }
}

/// `output`'s stdout, or [`SshError::CommandFailed`] for a non-zero exit.
fn checked(host: &str, summary: &str, output: CommandOutput) -> Result<String, SshError> {
    if output.success() {
        Ok(output.stdout)
    } else {
        Err(SshError::CommandFailed {
            host: host.to_string(),
            command: summary.to_string(),
            status: output.status,
            tail: output.tail(TAIL_LINES),
        })
    }
}

/// The script writing stdin to `path` through a temp file of its directory, checked against
/// `sha256` when given.
fn write_script(path: &str, mode: u32, sha256: Option<&str>) -> String {
    let check = match sha256 {
        Some(expected) => format!(
            "actual=$(sha256sum < \"$t\" | cut -d' ' -f1)\n\
             if [ \"$actual\" != {} ]; then echo \"sha256-mismatch $actual\" >&2; exit {CHECKSUM_STATUS}; fi\n",
            shell_quote(expected)
        ),
        None => String::new(),
    };
    format!(
        "set -e\n\
         p={path}\n\
         d=$(dirname -- \"$p\")\n\
         mkdir -p -- \"$d\"\n\
         t=$(mktemp \"$d/.tmp.XXXXXXXX\")\n\
         trap 'rm -f -- \"$t\"' EXIT\n\
         cat > \"$t\"\n\
         {check}\
         chmod {mode:o} -- \"$t\"\n\
         mv -f -- \"$t\" \"$p\"\n\
         trap - EXIT\n",
        path = shell_quote(path),
        mode = mode & 0o7777,
    )
}

/// Stops an unfinished command when dropped (see [`Stop`]).
struct Unfinished {
    stop: Option<Stop>,
}

impl Drop for Unfinished {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(stop.run());
            }
        }
    }
}

/// What stops an unfinished command: its channel, and a command killing its processes.
struct Stop {
    connection: Connection,
    writer: Arc<russh::ChannelWriteHalf<client::Msg>>,
    command: String,
    host: String,
    summary: String,
}

impl Stop {
    /// Signals the command (sshd passes it to its direct child only), closes its channel and
    /// kills every process of the run; best effort, bounded by [`CLOSE_TIMEOUT`] (this runs
    /// after the deadline too).
    async fn run(self) {
        let Stop { connection, writer, command, host, summary } = self;
        let stopped = tokio::time::timeout(CLOSE_TIMEOUT, async {
            let _ = writer.signal(Sig::KILL).await;
            let _ = writer.close().await;
            let channel = connection.channel_open_session().await?;
            let (mut reader, writer) = channel.split();
            writer.exec(true, command.as_bytes()).await?;
            writer.eof().await?;
            Ok::<_, russh::Error>(read_output(&mut reader).await)
        })
        .await;
        if matches!(stopped, Ok(Ok(Ok(ref out))) if out.success()) {
            tracing::debug!(host, command = summary, "ssh: stopped an unfinished command");
        } else {
            tracing::warn!(host, command = summary, "ssh: could not stop the processes of an unfinished command");
        }
    }
}

/// Kills every process whose environment holds the mark of `run` (see [`RUN_MARK`]).
fn stop_script(run: &str) -> String {
    format!(
        "for d in /proc/[0-9]*; do\n\
         if tr '\\0' '\\n' < \"$d/environ\" 2>/dev/null | grep -qx '{RUN_MARK}={run}'; then kill -KILL \"${{d#/proc/}}\" 2>/dev/null; fi\n\
         done\n\
         true\n"
    )
}

/// Collects a channel's output until it closes: stdout, stderr and the exit status.
async fn read_output(reader: &mut russh::ChannelReadHalf) -> Result<CommandOutput, String> {
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    let mut status: Option<u32> = None;
    let mut signal: Option<String> = None;
    let mut clipped = false;
    while let Some(message) = reader.wait().await {
        match message {
            ChannelMsg::Data { data } => clipped |= append(&mut stdout, &data),
            ChannelMsg::ExtendedData { data, ext: 1 } => clipped |= append(&mut stderr, &data),
            ChannelMsg::ExitStatus { exit_status } => status = Some(exit_status),
            ChannelMsg::ExitSignal { signal_name, error_message, .. } => {
                let name = format!("{signal_name:?}");
                status = Some(128 + signal_number(&name));
                signal = Some(if error_message.is_empty() { name } else { format!("{name}: {error_message}") });
            }
            ChannelMsg::Failure => return Err("the server refused to run the command".to_string()),
            ChannelMsg::Close => break,
            _ => {}
        }
    }
    let mut stderr = String::from_utf8_lossy(&stderr).into_owned();
    if let Some(signal) = signal {
        stderr.push_str(&format!("\n(killed by signal {signal})"));
    }
    if clipped {
        stderr.push_str(&format!("\n(output beyond {} MiB per stream was dropped)", OUTPUT_LIMIT >> 20));
    }
    match status {
        Some(status) => Ok(CommandOutput { status, stdout: String::from_utf8_lossy(&stdout).into_owned(), stderr }),
        None => Err("the connection closed before the command reported its exit status (it may or may not have run)"
            .to_string()),
    }
}

/// Appends up to the output limit; whether something was dropped.
fn append(buffer: &mut Vec<u8>, data: &[u8]) -> bool {
    let room = OUTPUT_LIMIT.saturating_sub(buffer.len());
    buffer.extend_from_slice(&data[..data.len().min(room)]);
    data.len() > room
}

fn signal_number(name: &str) -> u32 {
    match name {
        "HUP" => 1,
        "INT" => 2,
        "QUIT" => 3,
        "ILL" => 4,
        "ABRT" => 6,
        "FPE" => 8,
        "KILL" => 9,
        "USR1" => 10,
        "SEGV" => 11,
        "PIPE" => 13,
        "ALRM" => 14,
        "TERM" => 15,
        _ => 127,
    }
}

fn protocol(host: &str, detail: String) -> SshError {
    SshError::Protocol { host: host.to_string(), detail }
}

/// The connection failed while a command was under way: it may or may not have run.
fn lost(host: &str, summary: &str, e: russh::Error) -> SshError {
    protocol(host, format!("`{summary}`: the connection failed: {e} (the command may or may not have run)"))
}

/// A failure before a session was set up: transient ones (no answer, dropped) are
/// [`SshError::Unreachable`], the rest [`SshError::Protocol`].
fn handshake_error(host: &str, e: russh::Error) -> SshError {
    use russh::Error as E;
    match e {
        E::IO(_) | E::Disconnect | E::HUP | E::ConnectionTimeout | E::SendError | E::RecvError => {
            SshError::Unreachable { host: host.to_string(), detail: format!("the SSH session broke off: {e}") }
        }
        other => protocol(host, other.to_string()),
    }
}

/// The russh handler: checks the server's key against known_hosts, keeping the reason of a
/// refusal for the error.
struct HostCheck {
    host: String,
    port: u16,
    known_hosts: Arc<KnownHosts>,
    refusal: Arc<StdMutex<Option<SshError>>>,
}

impl client::Handler for HostCheck {
    type Error = russh::Error;

    async fn check_server_key(&mut self, server_key: &PublicKeyOrCertificate) -> Result<bool, Self::Error> {
        let key = match server_key {
            PublicKeyOrCertificate::PublicKey { key, .. } => key.clone(),
            PublicKeyOrCertificate::Certificate(cert) => russh::keys::PublicKey::from(cert.public_key().clone()),
        };
        let host = self.host.clone();
        let refusal = match self.known_hosts.check(&self.host, self.port, &key) {
            Verdict::Trusted => return Ok(true),
            Verdict::Unknown => SshError::HostKeyUnknown { host, fingerprint: fingerprint(&key) },
            Verdict::Revoked => SshError::HostKeyRevoked { host, fingerprint: fingerprint(&key) },
            Verdict::Mismatch { expected } => SshError::HostKeyMismatch { host, expected, found: describe(&key) },
        };
        tracing::debug!(host = %self.host, error = %refusal, "ssh: host key refused");
        *self.refusal.lock().unwrap_or_else(|e| e.into_inner()) = Some(refusal);
        Ok(false)
    }
}
