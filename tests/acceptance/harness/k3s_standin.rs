//! A TEST STAND-IN for k3s on the node rig ([`super::hosts`]): real k3s cannot be downloaded
//! here, so the `platform_k3s_cluster` tests install this instead. It keeps the host contract
//! the provider relies on (install script, `/usr/local/bin/k3s`, config.yaml, k3s.yaml, the
//! token, `systemctl`/`journalctl`, Nodes, embedded etcd, uninstall, etcd snapshots); the
//! provider has no code path for it. The programs are in `k3s_standin/`:
//! - `install-standin.sh`: the install script (`INSTALL_K3S_VERSION`, `INSTALL_K3S_EXEC`,
//!   `INSTALL_K3S_SKIP_DOWNLOAD`, piped to `sh -s -`), assembled here with the release
//!   directory and the stand-in `systemctl-standin.sh`, `journalctl-standin.sh`,
//!   `killall-standin.sh` and `uninstall-standin.sh` baked into its text;
//! - `k3s-standin.py`: the "k3s binary" (python3 stdlib), one copy per release with its version
//!   baked in. `k3s server` runs a real etcd (client 2379 / peer 2380 on the node's address,
//!   plain http), a real kube-apiserver (1.20, the testenv's) on 0.0.0.0:6443 and a
//!   kube-controller-manager (leader-elected), with certificates made by openssl; joining servers and agents get the cluster's CAs from
//!   bootstrap data the first server stores in etcd, sealed with the token's secret (as k3s
//!   keeps encrypted bootstrap data in its datastore), so a wrong token fails with
//!   `failed to validate token: ...`. A "kubelet" thread registers the Node, heartbeats Ready
//!   every 5 s, marks bound pods Running and finishes deleted ones, and marks the Node
//!   Ready=Unknown when the service stops.
//!
//! Stand-in extras for tests: every node appends `<unix_ms> <event> <details>` lines to
//! `/var/lib/rancher/k3s-standin/events.log` (`install <version> <unit>`, `start <version>
//! role=<server|agent>`, `start-failed <version> <reason>`, `ready <version>`, `stop <version>
//! unschedulable=<true|false|unknown>`, `uninstall <unit>`), read with [`K3sStandin::events`];
//! a file `/etc/k3s-standin/fail-start` makes the service fail to start
//! ([`K3sStandin::fail_start`]). The service's own log is `/var/log/k3s-standin/<unit>.log`
//! (what `journalctl -u <unit>` prints); etcd's and kube-apiserver's are next to it.
//!
//! [`K3sStandin::prepare`] writes the releases of [`VERSIONS`] once per test binary into a temp
//! dir under `/var/tmp` (the hosts see the machine's `/` except `/tmp`), removed by a reaper
//! when the test binary exits, and serves the install script on 127.0.0.1.

use std::io::{BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::ChildStdin;
use std::sync::{Mutex, OnceLock};

use base64::Engine as _;
use sha2::Digest as _;

use super::control_plane::{is_executable, kube_bin_dir, spawn_reaper};
use super::hosts::Host;
use super::http::HttpClient;
use super::{read_request_head, CmdOutput, SETUP_HINT};

/// The releases the stand-in "publishes".
pub const VERSIONS: [&str; 5] = ["v1.28.9+k3s1", "v1.29.1+k3s2", "v1.29.4+k3s1", "v1.30.2+k3s1", "v1.31.0+k3s1"];

const INSTALL: &str = include_str!("k3s_standin/install-standin.sh");
const K3S: &str = include_str!("k3s_standin/k3s-standin.py");
const SYSTEMCTL: &str = include_str!("k3s_standin/systemctl-standin.sh");
const JOURNALCTL: &str = include_str!("k3s_standin/journalctl-standin.sh");
const KILLALL: &str = include_str!("k3s_standin/killall-standin.sh");
const UNINSTALL: &str = include_str!("k3s_standin/uninstall-standin.sh");

/// The event log on a node (under `/`).
pub const EVENTS_LOG: &str = "var/lib/rancher/k3s-standin/events.log";
/// The fault file: while it exists the service fails to start, logging its content.
pub const FAIL_START: &str = "/etc/k3s-standin/fail-start";

/// One line of a node's event log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub unix_ms: u64,
    /// `install`, `start`, `start-failed`, `ready`, `stop`, `uninstall`.
    pub name: String,
    /// The rest of the line, e.g. `v1.29.1+k3s2 unschedulable=true`.
    pub details: String,
}

impl Event {
    /// The first word of the details: the version (or the unit of `uninstall`).
    pub fn version(&self) -> &str {
        self.details.split_whitespace().next().unwrap_or_default()
    }

    /// The value of a `key=value` word of the details.
    pub fn field(&self, key: &str) -> Option<&str> {
        self.details.split_whitespace().find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
    }

    /// `name version`, e.g. `stop v1.29.1+k3s2`, for order assertions.
    pub fn short(&self) -> String {
        format!("{} {}", self.name, self.version())
    }
}

/// The prepared stand-in releases and install script (see the module docs).
pub struct K3sStandin {
    dir: PathBuf,
    releases: PathBuf,
    install_script: String,
    url: String,
    /// Write end of the reaper's pipe; closed by the kernel at exit, then the dir is removed.
    _reaper: Mutex<ChildStdin>,
}

impl std::fmt::Debug for K3sStandin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("K3sStandin").field("releases", &self.releases).field("url", &self.url).finish()
    }
}

impl K3sStandin {
    /// Prepares the releases and the script server once per test binary; panics (every time
    /// it is called) when that failed, e.g. a missing tool.
    #[track_caller]
    pub fn prepare() -> &'static K3sStandin {
        static STANDIN: OnceLock<Result<K3sStandin, String>> = OnceLock::new();
        match STANDIN.get_or_init(K3sStandin::create) {
            Ok(s) => s,
            Err(e) => panic!("the k3s stand-in could not be prepared: {e}"),
        }
    }

    fn create() -> Result<K3sStandin, String> {
        let bin = kube_bin_dir()?;
        let mut missing = Vec::new();
        for tool in ["/usr/bin/python3", "/usr/bin/openssl", "/usr/bin/setsid", "/usr/bin/sha256sum"] {
            if !is_executable(Path::new(tool)) {
                missing.push(tool.to_string());
            }
        }
        let kubectl = which(&super::kubectl::kubectl_program());
        if kubectl.is_none() {
            missing.push(format!("kubectl ({})", super::kubectl::kubectl_program()));
        }
        if !missing.is_empty() {
            return Err(format!("the k3s stand-in needs {} on the machine: {SETUP_HINT}", missing.join(", ")));
        }
        let kubectl = kubectl.unwrap();
        let keep = std::env::var_os("TF_ACC_KEEP").is_some_and(|v| !v.is_empty() && v != "0");
        let dir = tempfile::Builder::new()
            .prefix("tf-acc-k3s-standin-")
            .tempdir_in("/var/tmp")
            .map_err(|e| format!("temp dir under /var/tmp: {e}"))?
            .keep();
        let reaper = spawn_reaper(&dir, keep)?;
        let releases = dir.join("releases");
        for version in VERSIONS {
            let rel = releases.join(version);
            std::fs::create_dir_all(&rel).map_err(|e| format!("{}: {e}", rel.display()))?;
            let commit = &hex::encode(sha2::Sha256::digest(version.as_bytes()))[..8];
            let text = K3S
                .replace("@K3S_STANDIN_VERSION@", version)
                .replace("@K3S_STANDIN_COMMIT@", commit)
                .replace("@K3S_STANDIN_KUBE_BIN_DIR@", &bin.display().to_string())
                .replace("@K3S_STANDIN_KUBECTL@", &kubectl.display().to_string());
            let binary = rel.join("k3s");
            std::fs::write(&binary, &text).map_err(|e| format!("{}: {e}", binary.display()))?;
            set_mode(&binary, 0o755)?;
            let sum = hex::encode(sha2::Sha256::digest(text.as_bytes()));
            std::fs::write(rel.join("sha256sum-amd64.txt"), format!("{sum}  k3s\n")).map_err(|e| e.to_string())?;
        }
        let install_script = INSTALL
            .replace("@K3S_STANDIN_RELEASE_DIR@", &releases.display().to_string())
            .replace("@SYSTEMCTL_STANDIN@", SYSTEMCTL.trim_end())
            .replace("@JOURNALCTL_STANDIN@", JOURNALCTL.trim_end())
            .replace("@KILLALL_STANDIN@", KILLALL.trim_end())
            .replace("@UNINSTALL_STANDIN@", UNINSTALL.trim_end());
        std::fs::write(dir.join("install.sh"), &install_script).map_err(|e| e.to_string())?;
        let url = serve_script(install_script.clone())?;
        eprintln!("acceptance: k3s stand-in releases in {}, install script at {url}", releases.display());
        Ok(K3sStandin { dir, releases, install_script, url, _reaper: Mutex::new(reaper) })
    }

    /// The install script's text (release dir baked in); pipe it to `sh -s -` on a host.
    pub fn install_script(&self) -> &str {
        &self.install_script
    }

    /// `http://127.0.0.1:PORT/install.sh`, serving [`K3sStandin::install_script`] (any path).
    pub fn install_script_url(&self) -> &str {
        &self.url
    }

    /// The release directory baked into the install script (`<dir>/<version>/k3s`).
    pub fn release_dir(&self) -> &Path {
        &self.releases
    }

    /// The stand-in k3s binary of `version` (for the provider's binary-upload mode); panics
    /// for a version not in [`VERSIONS`].
    #[track_caller]
    pub fn binary(&self, version: &str) -> PathBuf {
        assert!(VERSIONS.contains(&version), "the k3s stand-in has no release {version} (has {VERSIONS:?})");
        self.releases.join(version).join("k3s")
    }

    /// Hex sha256 of [`K3sStandin::binary`].
    #[track_caller]
    pub fn binary_sha256(&self, version: &str) -> String {
        let bytes = std::fs::read(self.binary(version)).expect("read stand-in binary");
        hex::encode(sha2::Sha256::digest(&bytes))
    }

    /// A shell command for `host.ssh(...)` that pipes the install script to
    /// `INSTALL_K3S_VERSION=<version> INSTALL_K3S_EXEC=<exec> [INSTALL_K3S_SKIP_DOWNLOAD=true] sh -s -`
    /// (the script travels base64-encoded inside the command: the rig's ssh has no stdin).
    pub fn install_command(&self, version: &str, exec: &str, skip_download: bool) -> String {
        let b64 = base64::engine::general_purpose::STANDARD.encode(&self.install_script);
        let skip = if skip_download { " INSTALL_K3S_SKIP_DOWNLOAD=true" } else { "" };
        format!("echo '{b64}' | base64 -d | INSTALL_K3S_VERSION='{version}' INSTALL_K3S_EXEC='{exec}'{skip} sh -s -")
    }

    /// Runs [`K3sStandin::install_command`] on `host` and panics unless it exits 0.
    #[track_caller]
    pub fn assert_install(&self, host: &Host, version: &str, exec: &str, skip_download: bool) -> CmdOutput {
        let out = host.ssh(&self.install_command(version, exec, skip_download));
        if !out.success() {
            let unit = if exec == "agent" { "k3s-agent" } else { "k3s" };
            panic!(
                "installing k3s {version} ({exec}) on {} failed ({}):\n{}\n--- service log ---\n{}",
                host.name(),
                out.status,
                out.describe(),
                self.service_log(host, unit)
            );
        }
        out
    }

    /// Uploads the binary of `version` to `/usr/local/bin/k3s` (0755) over SSH, as the
    /// provider's binary mode does.
    #[track_caller]
    pub fn upload_binary(&self, host: &Host, version: &str) -> CmdOutput {
        let bytes = std::fs::read(self.binary(version)).expect("read stand-in binary");
        let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
        host.ssh(&format!(
            "mkdir -p /usr/local/bin && echo '{b64}' | base64 -d > /usr/local/bin/k3s.upload && \
             chmod 0755 /usr/local/bin/k3s.upload && mv -f /usr/local/bin/k3s.upload /usr/local/bin/k3s"
        ))
    }

    /// The node's event log, oldest first (empty when it has none yet).
    pub fn events(&self, host: &Host) -> Vec<Event> {
        let text = std::fs::read_to_string(host.root_dir().join(EVENTS_LOG)).unwrap_or_default();
        text.lines()
            .filter_map(|line| {
                let mut parts = line.splitn(3, ' ');
                let unix_ms = parts.next()?.parse().ok()?;
                let name = parts.next()?.to_string();
                Some(Event { unix_ms, name, details: parts.next().unwrap_or_default().trim().to_string() })
            })
            .collect()
    }

    /// The node's events called `name`, oldest first.
    pub fn events_named(&self, host: &Host, name: &str) -> Vec<Event> {
        self.events(host).into_iter().filter(|e| e.name == name).collect()
    }

    /// GET `path` from the server on `server` with the admin certificate; panics unless 200.
    #[track_caller]
    pub fn kube_get(&self, server: &Host, path: &str) -> serde_json::Value {
        let client = self.admin_client(server).expect("admin client");
        let response = client.get(path).unwrap_or_else(|e| panic!("GET {path}: {e}"));
        assert_eq!(response.status, 200, "GET {path}: {}", response.body);
        serde_json::from_str(&response.body).expect("json")
    }

    /// The service log of `unit` (`k3s` or `k3s-agent`) on the node, as `journalctl` shows it.
    pub fn service_log(&self, host: &Host, unit: &str) -> String {
        std::fs::read_to_string(host.root_dir().join(format!("var/log/k3s-standin/{unit}.log"))).unwrap_or_default()
    }

    /// Makes the service on `host` fail to start (logging `message`) until
    /// [`K3sStandin::clear_fail_start`]. Written through SSH: a file put into the overlay's
    /// upper dir from outside may stay invisible to the host (overlayfs caches lookups); the
    /// file then is in `host.root_dir()` too.
    #[track_caller]
    pub fn fail_start(&self, host: &Host, message: &str) {
        let b64 = base64::engine::general_purpose::STANDARD.encode(message);
        host.ssh(&format!("mkdir -p /etc/k3s-standin && echo '{b64}' | base64 -d > {FAIL_START}")).assert_success();
        assert!(host.root_dir().join(FAIL_START.trim_start_matches('/')).exists());
    }

    #[track_caller]
    pub fn clear_fail_start(&self, host: &Host) {
        host.ssh(&format!("rm -f {FAIL_START}")).assert_success();
    }

    /// The admin kubeconfig (`/etc/rancher/k3s/k3s.yaml`) of a server, `None` before it exists.
    pub fn kubeconfig(&self, host: &Host) -> Option<String> {
        std::fs::read_to_string(host.root_dir().join("etc/rancher/k3s/k3s.yaml")).ok()
    }

    /// The full token of a server (`/var/lib/rancher/k3s/server/token`), `None` before it exists.
    pub fn token(&self, host: &Host) -> Option<String> {
        std::fs::read_to_string(host.root_dir().join("var/lib/rancher/k3s/server/token"))
            .ok()
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
    }

    /// A client for `https://<host address>:6443` with the admin certificate of the server's
    /// k3s.yaml (its `server` rewritten from 127.0.0.1 to the host's address).
    pub fn admin_client(&self, host: &Host) -> Result<HttpClient, String> {
        let text = self.kubeconfig(host).ok_or("no /etc/rancher/k3s/k3s.yaml yet")?;
        let (ca, cert, key) = kubeconfig_credentials(&text)?;
        HttpClient::new(&format!("https://{}:6443", host.address()), &ca, None, Some((&cert, &key)))
    }

    /// The temp dir (releases, the assembled install.sh).
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// (CA PEM, client cert PEM, client key PEM) of a k3s.yaml.
pub fn kubeconfig_credentials(text: &str) -> Result<(String, String, String), String> {
    let doc: serde_yaml::Value = serde_yaml::from_str(text).map_err(|e| format!("k3s.yaml: {e}"))?;
    let field = |v: &serde_yaml::Value, key: &str| -> Result<String, String> {
        let data = v[key].as_str().ok_or_else(|| format!("k3s.yaml has no {key}"))?;
        let bytes = base64::engine::general_purpose::STANDARD.decode(data).map_err(|e| format!("{key}: {e}"))?;
        String::from_utf8(bytes).map_err(|e| format!("{key}: {e}"))
    };
    Ok((
        field(&doc["clusters"][0]["cluster"], "certificate-authority-data")?,
        field(&doc["users"][0]["user"], "client-certificate-data")?,
        field(&doc["users"][0]["user"], "client-key-data")?,
    ))
}

fn set_mode(path: &Path, mode: u32) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| format!("{}: {e}", path.display()))
}

fn which(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        return Some(PathBuf::from(program)).filter(|p| is_executable(p));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).map(|d| d.join(program)).find(|p| is_executable(p))
}

/// Serves `script` to every GET on a thread for the rest of the test binary's life.
fn serve_script(script: String) -> Result<String, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("install script server: {e}"))?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let script = script.clone();
            std::thread::spawn(move || {
                let Ok(read_half) = stream.try_clone() else { return };
                let mut reader = BufReader::new(read_half);
                let Some((method, _path)) = read_request_head(&mut reader) else { return };
                let (status, body) = if method == "GET" || method == "HEAD" {
                    ("200 OK", script.as_str())
                } else {
                    ("405 Method Not Allowed", "")
                };
                let head = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: text/x-shellscript\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(head.as_bytes());
                if method != "HEAD" {
                    let _ = stream.write_all(body.as_bytes());
                }
            });
        }
    });
    Ok(format!("http://127.0.0.1:{port}/install.sh"))
}
