//! The Kubernetes control plane the acceptance tests run against: either an existing
//! cluster (`TF_ACC_KUBECONFIG`), or etcd + kube-apiserver + kube-controller-manager
//! started here on 127.0.0.1 from `TF_ACC_KUBE_BIN_DIR`.
//!
//! Started processes die with the test binary, whatever way it ends: a small bash
//! "reaper" holds the read end of a pipe whose write end only this process has; when the
//! process is gone the read sees EOF and the reaper kills the recorded pids (then deletes
//! the temp dir unless `TF_ACC_KEEP` is set).

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use base64::Engine as _;

use super::http::{HttpClient, HttpResponse};
use super::{env_or_testenv, tail_file, testenv_dir, SETUP_HINT};

/// The shared cluster, started on first use. A failed start is remembered: every test
/// that needs the cluster then fails with the same message instead of retrying.
pub fn cluster() -> &'static Cluster {
    static CLUSTER: OnceLock<Result<Cluster, String>> = OnceLock::new();
    match CLUSTER.get_or_init(|| {
        let started = Instant::now();
        let result = match std::env::var("TF_ACC_KUBECONFIG").ok().filter(|v| !v.is_empty()) {
            Some(path) => Cluster::existing(Path::new(&path)),
            None => Cluster::start(),
        };
        if let Ok(c) = &result {
            eprintln!(
                "acceptance: cluster {} ready in {:.1?} (kubeconfig {})",
                c.server,
                started.elapsed(),
                c.kubeconfig_path.display()
            );
        }
        result
    }) {
        Ok(c) => c,
        Err(e) => panic!("the acceptance-test cluster is not available:\n{e}"),
    }
}

/// A process of the local control plane.
pub(crate) struct Proc {
    pub(crate) name: &'static str,
    pub(crate) child: Child,
    pub(crate) log: PathBuf,
}

pub struct Cluster {
    kubeconfig_path: PathBuf,
    server: String,
    token: String,
    ca_pem: String,
    http: HttpClient,
    /// The temp dir with certificates, logs and etcd data (local control plane only).
    dir: Option<PathBuf>,
    processes: Mutex<Vec<Proc>>,
    /// Write end of the reaper's pipe; never written, closed by the kernel at exit.
    _reaper: Option<ChildStdin>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster").field("server", &self.server).field("kubeconfig", &self.kubeconfig_path).finish()
    }
}

impl Cluster {
    /// Path of a kubeconfig whose current context is an admin of this cluster.
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig_path
    }

    /// The kubeconfig document itself (e.g. for a `cluster { kubeconfig = ... }` attribute).
    pub fn kubeconfig_yaml(&self) -> String {
        std::fs::read_to_string(&self.kubeconfig_path).expect("read kubeconfig")
    }

    /// `https://127.0.0.1:PORT` (or the external cluster's server URL).
    pub fn server(&self) -> &str {
        &self.server
    }

    /// An admin (system:masters / cluster-admin) bearer token.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The PEM of the CA that signed the API server's certificate.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// True when running against `TF_ACC_KUBECONFIG` rather than a local control plane.
    pub fn is_external(&self) -> bool {
        self.dir.is_none()
    }

    /// The local control plane's temp dir (certs, `*.log`, etcd data).
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    pub fn http(&self) -> &HttpClient {
        &self.http
    }

    /// A request with the admin token; panics only when the server cannot be reached.
    #[track_caller]
    pub fn request(&self, method: &str, path: &str, content_type: Option<&str>, body: Option<&[u8]>) -> HttpResponse {
        self.http
            .request(method, path, content_type, body)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}{}", self.logs_hint()))
    }

    #[track_caller]
    pub fn get(&self, path: &str) -> HttpResponse {
        self.request("GET", path, None, None)
    }

    /// The object at `path` (e.g. `/api/v1/namespaces/default`), `None` on 404; panics on
    /// other errors.
    #[track_caller]
    pub fn get_json(&self, path: &str) -> Option<serde_json::Value> {
        let resp = self.get(path);
        match resp.status {
            404 => None,
            s if (200..300).contains(&s) => Some(resp.json()),
            s => panic!("GET {path}: HTTP {s}: {}", resp.body),
        }
    }

    #[track_caller]
    pub fn exists(&self, path: &str) -> bool {
        self.get_json(path).is_some()
    }

    /// Waits until GET `path` answers 404.
    #[track_caller]
    pub fn wait_gone(&self, path: &str, timeout: Duration) {
        super::wait_until(&format!("{path} to be deleted"), timeout, || match self.get(path).status {
            404 => Ok(()),
            s => Err(format!("HTTP {s}")),
        })
    }

    /// Panics (with log tails) if a process of the local control plane has exited.
    #[track_caller]
    pub fn assert_alive(&self) {
        let mut procs = self.processes.lock().unwrap_or_else(|e| e.into_inner());
        for p in procs.iter_mut() {
            if let Ok(Some(status)) = p.child.try_wait() {
                panic!("{} exited ({status}); log tail:\n{}", p.name, tail_log(&p.log, 60));
            }
        }
    }

    /// Paths of the process logs (local control plane only).
    pub fn log_paths(&self) -> Vec<PathBuf> {
        let procs = self.processes.lock().unwrap_or_else(|e| e.into_inner());
        procs.iter().map(|p| p.log.clone()).collect()
    }

    fn logs_hint(&self) -> String {
        match &self.dir {
            Some(dir) => format!(" (control-plane logs in {})", dir.display()),
            None => String::new(),
        }
    }

    // ---------------------------------------------------------------- existing cluster

    fn existing(path: &Path) -> Result<Cluster, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("TF_ACC_KUBECONFIG={}: {e}", path.display()))?;
        let doc: serde_yaml::Value = serde_yaml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let ctx_name = std::env::var("TF_ACC_KUBE_CONTEXT")
            .ok()
            .or_else(|| doc["current-context"].as_str().map(str::to_string))
            .ok_or("kubeconfig has no current-context")?;
        let named = |list: &str, name: &str, key: &str| -> Result<serde_yaml::Value, String> {
            doc[list]
                .as_sequence()
                .and_then(|s| s.iter().find(|e| e["name"].as_str() == Some(name)))
                .map(|e| e[key].clone())
                .ok_or_else(|| format!("kubeconfig has no {list} entry {name:?}"))
        };
        let ctx = named("contexts", &ctx_name, "context")?;
        let cluster = named("clusters", ctx["cluster"].as_str().unwrap_or_default(), "cluster")?;
        let user = named("users", ctx["user"].as_str().unwrap_or_default(), "user")?;
        let data_or_file = |v: &serde_yaml::Value, data: &str, file: &str| -> Result<Option<String>, String> {
            if let Some(d) = v[data].as_str() {
                let bytes =
                    base64::engine::general_purpose::STANDARD.decode(d.trim()).map_err(|e| format!("{data}: {e}"))?;
                return Ok(Some(String::from_utf8_lossy(&bytes).into_owned()));
            }
            if let Some(f) = v[file].as_str() {
                return std::fs::read_to_string(base.join(f)).map(Some).map_err(|e| format!("{file} {f}: {e}"));
            }
            Ok(None)
        };
        let server =
            cluster["server"].as_str().ok_or("kubeconfig cluster has no server")?.trim_end_matches('/').to_string();
        let ca_pem = data_or_file(&cluster, "certificate-authority-data", "certificate-authority")?
            .ok_or("the harness needs the cluster CA (certificate-authority[-data]) in TF_ACC_KUBECONFIG")?;
        let mut token = user["token"].as_str().map(str::to_string);
        if token.is_none() {
            if let Some(f) = user["tokenFile"].as_str() {
                token = Some(
                    std::fs::read_to_string(base.join(f))
                        .map_err(|e| format!("tokenFile {f}: {e}"))?
                        .trim()
                        .to_string(),
                );
            }
        }
        let cert = data_or_file(&user, "client-certificate-data", "client-certificate")?;
        let key = data_or_file(&user, "client-key-data", "client-key")?;
        let token = match token {
            Some(t) => t,
            None => mint_admin_token(path)?,
        };
        let client_cert = match (&cert, &key) {
            (Some(c), Some(k)) => Some((c.as_str(), k.as_str())),
            _ => None,
        };
        let http = HttpClient::new(&server, &ca_pem, Some(&token), client_cert)?;
        let c = Cluster {
            kubeconfig_path: path.to_path_buf(),
            server,
            token,
            ca_pem,
            http,
            dir: None,
            processes: Mutex::new(Vec::new()),
            _reaper: None,
        };
        let resp = c.http.get("/readyz").map_err(|e| format!("{}: {e}", c.server))?;
        if !resp.ok() {
            return Err(format!("{}/readyz: HTTP {}: {}", c.server, resp.status, resp.body));
        }
        Ok(c)
    }

    // ---------------------------------------------------------------- local control plane

    fn start() -> Result<Cluster, String> {
        let bin_dir = kube_bin_dir()?;
        let keep = std::env::var_os("TF_ACC_KEEP").is_some_and(|v| !v.is_empty() && v != "0");
        let dir =
            tempfile::Builder::new().prefix("tf-acc-cluster-").tempdir().map_err(|e| format!("temp dir: {e}"))?.keep();
        let reaper = spawn_reaper(&dir, keep)?;
        if keep {
            eprintln!("acceptance: control plane files kept in {}", dir.display());
        }
        let pki = Pki::generate(&dir)?;

        let mut reaper = reaper;
        let ((server, http), procs) =
            start_rig("control plane", &dir, &mut reaper, |procs| start_processes(&bin_dir, &dir, &pki, procs))?;
        Ok(Cluster {
            kubeconfig_path: dir.join("kubeconfig"),
            server,
            token: pki.token.clone(),
            ca_pem: pki.ca_pem.clone(),
            http,
            dir: Some(dir),
            processes: Mutex::new(procs),
            _reaper: Some(reaper),
        })
    }
}

/// Where etcd, kube-apiserver and kube-controller-manager are.
pub fn kube_bin_dir() -> Result<PathBuf, String> {
    let dir = env_or_testenv("TF_ACC_KUBE_BIN_DIR").map(PathBuf::from).unwrap_or_else(|| testenv_dir().join("bin"));
    let missing: Vec<_> = ["etcd", "kube-apiserver", "kube-controller-manager"]
        .into_iter()
        .filter(|b| !is_executable(&dir.join(b)))
        .collect();
    if missing.is_empty() {
        Ok(dir)
    } else {
        Err(format!(
            "{} missing from {} (TF_ACC_KUBE_BIN_DIR): {SETUP_HINT}, or set TF_ACC_KUBECONFIG to use an existing cluster",
            missing.join(", "),
            dir.display()
        ))
    }
}

pub(crate) fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false)
}

/// A kubeconfig without a token (kind uses client certificates): make a cluster-admin
/// service account and ask for a token with kubectl.
fn mint_admin_token(kubeconfig: &Path) -> Result<String, String> {
    let run = |args: &[&str]| {
        let mut cmd = Command::new(super::kubectl::kubectl_program());
        cmd.arg("--kubeconfig").arg(kubeconfig).args(args);
        super::run_command(cmd, None, Duration::from_secs(60))
    };
    let sa = run(&["-n", "kube-system", "create", "serviceaccount", "tf-acc-admin"]);
    if !sa.success() && !sa.stderr.contains("AlreadyExists") {
        return Err(format!("creating service account tf-acc-admin: {}", sa.describe()));
    }
    let crb = run(&[
        "create",
        "clusterrolebinding",
        "tf-acc-admin",
        "--clusterrole=cluster-admin",
        "--serviceaccount=kube-system:tf-acc-admin",
    ]);
    if !crb.success() && !crb.stderr.contains("AlreadyExists") {
        return Err(format!("creating clusterrolebinding tf-acc-admin: {}", crb.describe()));
    }
    let tok = run(&["-n", "kube-system", "create", "token", "tf-acc-admin", "--duration=24h"]);
    if !tok.success() {
        return Err(format!("kubectl create token: {}", tok.describe()));
    }
    Ok(tok.stdout.trim().to_string())
}

/// Starts a rig's processes with `attempt`, up to three times when a port picked free was
/// taken by someone else before use ("in use"). A failed attempt's processes are killed;
/// after the last failure the reaper is told to keep `dir` for a post-mortem (it still kills
/// the processes).
pub(crate) fn start_rig<T>(
    what: &str,
    dir: &Path,
    reaper: &mut ChildStdin,
    mut attempt: impl FnMut(&mut Vec<Proc>) -> Result<T, String>,
) -> Result<(T, Vec<Proc>), String> {
    let mut last_err = String::new();
    for n in 1..=3 {
        let mut procs = Vec::new();
        match attempt(&mut procs) {
            Ok(value) => return Ok((value, procs)),
            Err(e) => {
                for p in procs.iter_mut() {
                    let _ = p.child.kill();
                    let _ = p.child.wait();
                }
                last_err = e;
                if !last_err.to_ascii_lowercase().contains("in use") {
                    break;
                }
                eprintln!("acceptance: {what} attempt {n} hit a port race; retrying");
            }
        }
    }
    let _ = writeln!(reaper, "keep");
    Err(format!("{last_err}\n({what} files kept in {})", dir.display()))
}

/// The bash reaper: waits for EOF on stdin (this process exiting), then kills every pid
/// listed in `$dir/pids` and removes `$dir` unless asked to keep it.
pub(crate) fn spawn_reaper(dir: &Path, keep: bool) -> Result<ChildStdin, String> {
    const SCRIPT: &str = r#"
trap '' INT HUP TERM PIPE
dir=$1 keep=$2
while read -r line; do [ "$line" = keep ] && keep=1; done
pids=$(cat "$dir/pids" 2>/dev/null || true)
[ -n "$pids" ] && kill -TERM $pids 2>/dev/null
for _ in $(seq 1 10); do
  alive=
  for p in $pids; do kill -0 "$p" 2>/dev/null && alive=1; done
  [ -z "$alive" ] && break
  sleep 0.1
done
[ -n "$pids" ] && kill -KILL $pids 2>/dev/null
[ "$keep" = 1 ] || rm -rf "$dir"
exit 0
"#;
    let mut child = Command::new("bash")
        .arg("-c")
        .arg(SCRIPT)
        .arg("tf-acc-reaper")
        .arg(dir)
        .arg(if keep { "1" } else { "0" })
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start the bash reaper: {e}"))?;
    let stdin = child.stdin.take().unwrap();
    // The reaper outlives us by design; dropping the handle neither waits nor kills.
    drop(child);
    Ok(stdin)
}

struct Pki {
    ca_pem: String,
    token: String,
    ca_cert: PathBuf,
    ca_key: PathBuf,
    serving_cert: PathBuf,
    serving_key: PathBuf,
    sa_key: PathBuf,
    sa_pub: PathBuf,
    tokens: PathBuf,
}

impl Pki {
    fn generate(dir: &Path) -> Result<Pki, String> {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
            KeyUsagePurpose, SanType,
        };
        let e = |e: rcgen::Error| e.to_string();
        let pki = dir.join("pki");
        std::fs::create_dir_all(&pki).map_err(|e| e.to_string())?;
        let now = time::OffsetDateTime::now_utc();

        let ca_key = KeyPair::generate().map_err(e)?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(e)?;
        ca_params.distinguished_name.push(DnType::CommonName, "tf-acc-ca");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        ca_params.not_before = now - time::Duration::hours(1);
        ca_params.not_after = now + time::Duration::days(7);
        let ca_cert = ca_params.self_signed(&ca_key).map_err(e)?;
        let ca_pem = ca_cert.pem();
        let issuer = Issuer::new(ca_params, &ca_key);

        let serving_key = KeyPair::generate().map_err(e)?;
        let mut params = CertificateParams::new(vec![
            "localhost".to_string(),
            "kubernetes".to_string(),
            "kubernetes.default".to_string(),
            "kubernetes.default.svc".to_string(),
        ])
        .map_err(e)?;
        params.subject_alt_names.push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
        params.subject_alt_names.push(SanType::IpAddress("10.0.0.1".parse().unwrap()));
        params.distinguished_name.push(DnType::CommonName, "kube-apiserver");
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.not_before = now - time::Duration::hours(1);
        params.not_after = now + time::Duration::days(7);
        let serving_cert = params.signed_by(&serving_key, &issuer).map_err(e)?;

        let sa_key = KeyPair::generate().map_err(e)?;
        let token = random_hex(24);

        let write = |name: &str, content: &str| -> Result<PathBuf, String> {
            let p = pki.join(name);
            std::fs::write(&p, content).map_err(|e| format!("{}: {e}", p.display()))?;
            Ok(p)
        };
        Ok(Pki {
            ca_cert: write("ca.crt", &ca_pem)?,
            ca_key: write("ca.key", &ca_key.serialize_pem())?,
            serving_cert: write("apiserver.crt", &serving_cert.pem())?,
            serving_key: write("apiserver.key", &serving_key.serialize_pem())?,
            sa_key: write("sa.key", &sa_key.serialize_pem())?,
            sa_pub: write("sa.pub", &sa_key.public_key_pem())?,
            tokens: write("tokens.csv", &format!("{token},tf-acc-admin,tf-acc-admin,\"system:masters\"\n"))?,
            ca_pem,
            token,
        })
    }
}

pub(crate) fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut buf)).expect("read /dev/urandom");
    hex::encode(buf)
}

/// The last lines of a process log, without the kube components' flag dump.
pub(crate) fn tail_log(path: &Path, lines: usize) -> String {
    let text = tail_file(path, lines + 400);
    let kept: Vec<&str> = text.lines().filter(|l| !l.contains("] FLAG: --")).collect();
    kept[kept.len().saturating_sub(lines)..].join("\n")
}

pub(crate) fn free_ports(n: usize) -> Result<Vec<u16>, String> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("free port: {e}"))?;
    listeners.iter().map(|l| l.local_addr().map(|a| a.port()).map_err(|e| e.to_string())).collect()
}

pub(crate) fn spawn(
    name: &'static str,
    program: &Path,
    args: &[String],
    dir: &Path,
    procs: &mut Vec<Proc>,
) -> Result<(), String> {
    let log = dir.join(format!("{name}.log"));
    let out = OpenOptions::new().create(true).append(true).open(&log).map_err(|e| format!("{}: {e}", log.display()))?;
    let err = out.try_clone().map_err(|e| e.to_string())?;
    let child = Command::new(program)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", program.display()))?;
    let mut pids = OpenOptions::new().create(true).append(true).open(dir.join("pids")).map_err(|e| e.to_string())?;
    writeln!(pids, "{}", child.id()).map_err(|e| e.to_string())?;
    procs.push(Proc { name, child, log });
    Ok(())
}

/// Polls `check` until Ok, failing early (with the log tail) if `procs` has an exited
/// process, or after `timeout`.
pub(crate) fn wait_for(
    what: &str,
    timeout: Duration,
    procs: &mut [Proc],
    mut check: impl FnMut() -> Result<(), String>,
) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    loop {
        let last = match check() {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        for p in procs.iter_mut() {
            if let Ok(Some(status)) = p.child.try_wait() {
                return Err(format!(
                    "{} exited ({status}) while waiting for {what}; log tail:\n{}",
                    p.name,
                    tail_log(&p.log, 40)
                ));
            }
        }
        if Instant::now() >= deadline {
            let logs: Vec<String> = procs
                .iter()
                .map(|p| format!("--- {} ({}) ---\n{}", p.name, p.log.display(), tail_log(&p.log, 25)))
                .collect();
            return Err(format!(
                "timed out after {timeout:?} waiting for {what} (last: {last}); log tails:\n{}",
                logs.join("\n")
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn etcd_health(port: u16) -> Result<(), String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok();
    s.write_all(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").map_err(|e| e.to_string())?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).map_err(|e| e.to_string())?;
    if resp.contains("\"health\":\"true\"") {
        Ok(())
    } else {
        Err(resp.lines().last().unwrap_or_default().to_string())
    }
}

fn start_processes(bin: &Path, dir: &Path, pki: &Pki, procs: &mut Vec<Proc>) -> Result<(String, HttpClient), String> {
    let ports = free_ports(3)?;
    let (etcd_client, etcd_peer, api_port) = (ports[0], ports[1], ports[2]);
    let p = |p: &Path| p.display().to_string();

    // etcd
    let data = dir.join("etcd");
    let _ = std::fs::remove_dir_all(&data);
    let client_url = format!("http://127.0.0.1:{etcd_client}");
    let peer_url = format!("http://127.0.0.1:{etcd_peer}");
    let etcd_args = vec![
        "--name=acc".to_string(),
        format!("--data-dir={}", p(&data)),
        format!("--listen-client-urls={client_url}"),
        format!("--advertise-client-urls={client_url}"),
        format!("--listen-peer-urls={peer_url}"),
        format!("--initial-advertise-peer-urls={peer_url}"),
        format!("--initial-cluster=acc={peer_url}"),
        "--initial-cluster-state=new".to_string(),
        "--unsafe-no-fsync".to_string(),
        "--log-level=warn".to_string(),
    ];
    spawn("etcd", &bin.join("etcd"), &etcd_args, dir, procs)?;
    wait_for("etcd /health", Duration::from_secs(30), procs, || etcd_health(etcd_client))?;

    // kube-apiserver
    let api_args = vec![
        "--bind-address=127.0.0.1".to_string(),
        "--advertise-address=127.0.0.1".to_string(),
        format!("--secure-port={api_port}"),
        "--insecure-port=0".to_string(),
        format!("--etcd-servers={client_url}"),
        format!("--tls-cert-file={}", p(&pki.serving_cert)),
        format!("--tls-private-key-file={}", p(&pki.serving_key)),
        format!("--client-ca-file={}", p(&pki.ca_cert)),
        format!("--token-auth-file={}", p(&pki.tokens)),
        "--authorization-mode=RBAC".to_string(),
        format!("--service-account-key-file={}", p(&pki.sa_pub)),
        format!("--service-account-signing-key-file={}", p(&pki.sa_key)),
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local".to_string(),
        "--service-cluster-ip-range=10.0.0.0/24".to_string(),
        "--allow-privileged=true".to_string(),
        format!("--cert-dir={}", p(&dir.join("apiserver-certs"))),
        "--profiling=false".to_string(),
        "--v=1".to_string(),
    ];
    spawn("kube-apiserver", &bin.join("kube-apiserver"), &api_args, dir, procs)?;
    let server = format!("https://127.0.0.1:{api_port}");
    let http = HttpClient::new(&server, &pki.ca_pem, Some(&pki.token), None)?;
    wait_for("kube-apiserver /readyz", Duration::from_secs(120), procs, || {
        let r = http.get("/readyz")?;
        if r.ok() {
            Ok(())
        } else {
            Err(format!(
                "HTTP {}: {}",
                r.status,
                r.body.lines().filter(|l| l.contains("failed")).collect::<Vec<_>>().join("; ")
            ))
        }
    })?;

    // kubeconfig for the tests, kubectl and the controller manager
    let kubeconfig = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: acc\n  cluster:\n    server: {server}\n    certificate-authority-data: {ca}\nusers:\n- name: acc-admin\n  user:\n    token: {token}\ncontexts:\n- name: acc\n  context:\n    cluster: acc\n    user: acc-admin\ncurrent-context: acc\n",
        ca = base64::engine::general_purpose::STANDARD.encode(&pki.ca_pem),
        token = pki.token,
    );
    let kubeconfig_path = dir.join("kubeconfig");
    std::fs::write(&kubeconfig_path, kubeconfig).map_err(|e| e.to_string())?;

    // kube-controller-manager (namespace deletion, service accounts, garbage collection...)
    let kcm_args = vec![
        format!("--kubeconfig={}", p(&kubeconfig_path)),
        "--bind-address=127.0.0.1".to_string(),
        "--secure-port=0".to_string(),
        "--port=0".to_string(),
        "--leader-elect=false".to_string(),
        "--controllers=*".to_string(),
        "--use-service-account-credentials=false".to_string(),
        format!("--service-account-private-key-file={}", p(&pki.sa_key)),
        format!("--root-ca-file={}", p(&pki.ca_cert)),
        format!("--cluster-signing-cert-file={}", p(&pki.ca_cert)),
        format!("--cluster-signing-key-file={}", p(&pki.ca_key)),
        "--v=1".to_string(),
    ];
    spawn("kube-controller-manager", &bin.join("kube-controller-manager"), &kcm_args, dir, procs)?;

    // `default` namespace (apiserver bootstrap) and its `default` service account (made by
    // the controller manager's serviceaccount controller: proof that it is working).
    wait_for("namespace default and its service account default", Duration::from_secs(120), procs, || {
        for path in ["/api/v1/namespaces/default", "/api/v1/namespaces/default/serviceaccounts/default"] {
            let r = http.get(path)?;
            if !r.ok() {
                return Err(format!("GET {path}: HTTP {}", r.status));
            }
        }
        Ok(())
    })?;
    Ok((server, http))
}
