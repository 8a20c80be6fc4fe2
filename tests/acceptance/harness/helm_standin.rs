//! A stand-in for Flux's helm-controller and source-controller around REAL Helm: Flux's
//! controllers cannot run here, Helm can (PyPI's helm-python-sdk ships the Helm v4 library,
//! installed into the tests' venv by `scripts/testenv.sh`). See `helm_standin/controller.py`
//! for what it does and where it is simpler than helm-controller.
//!
//! [`ensure`] starts, once per test binary:
//! - the fixture Flux CRDs and the scripted Flux stand-in ([`super::flux_standin`]), which
//!   leaves alone every source whose URL [`owns_url`] and every HelmRelease using one;
//! - a loopback chart repository (`helm_standin/charts.py serve`, Python's HTTP server)
//!   holding the chart `hello` 0.1.0 and 0.2.0, made, packaged and indexed by Helm itself
//!   (`charts.py make`; the chart is described there);
//! - a loopback OCI registry (Debian's `docker-registry`) holding the same charts, pushed by
//!   Helm (`charts.py push`);
//! - the controller (`helm_standin/controller.py`), which reconciles the HelmRepositories and
//!   OCIRepositories of those two and the HelmReleases installing from them with Helm,
//!   against the harness's kube-apiserver.
//!
//! `TF_ACC_PYTHON` (the venv's Python) and `TF_ACC_DOCKER_REGISTRY` (default
//! `/usr/bin/docker-registry`) name the programs; a missing one, or a venv without the Helm
//! library, fails the test (see [`SETUP_HINT`]). Their output goes to log files in one temp
//! dir (kept with `TF_ACC_KEEP`); a process that dies fails the next [`ensure`] with its log.
//! The harness's reaper ends the processes when the tests end.
//!
//! Assertions read what Helm wrote: [`release_record`] decodes Helm's release Secret
//! (`sh.helm.release.v1.<release>.v<revision>`), [`release_secrets`] lists them.

use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use base64::Engine as _;
use serde_json::Value;

use super::control_plane::{free_ports, spawn, spawn_reaper, tail_log, wait_for, Proc};
use super::{cluster, command_timeout, env_or_testenv, flux_standin, run_command, SETUP_HINT};

/// The helm-python-sdk version `scripts/testenv.sh` installs.
pub const HELM_SDK_VERSION: &str = "0.2.2";
/// The finalizer the controller puts on the HelmReleases it handles (helm-controller's).
pub const FINALIZER: &str = "finalizers.fluxcd.io";

pub struct HelmStandIn {
    /// The loopback chart repository, `http://127.0.0.1:<port>`.
    pub repo_url: String,
    /// The same charts in the loopback OCI registry, `oci://127.0.0.1:<port>/charts`.
    pub registry_url: String,
    dir: PathBuf,
    controller_log: PathBuf,
    procs: Mutex<Vec<Proc>>,
    /// Closing it (the test process ending) makes the reaper stop the processes.
    _reaper: Mutex<ChildStdin>,
}

fn owned_prefixes() -> &'static Mutex<Vec<String>> {
    static PREFIXES: Mutex<Vec<String>> = Mutex::new(Vec::new());
    &PREFIXES
}

/// Whether a HelmRepository or OCIRepository URL is served by this stand-in (the scripted
/// Flux stand-in must then leave the source and its releases alone).
pub fn owns_url(url: &str) -> bool {
    let url = url.trim_end_matches('/');
    owned_prefixes()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .any(|p| url == p || url.strip_prefix(p.as_str()).is_some_and(|rest| rest.starts_with('/')))
}

/// Starts the stand-in (once) and checks that its processes still run.
pub fn ensure() -> &'static HelmStandIn {
    static STANDIN: OnceLock<HelmStandIn> = OnceLock::new();
    flux_standin::ensure();
    let standin = STANDIN.get_or_init(|| start().unwrap_or_else(|e| panic!("helm-controller stand-in: {e}")));
    standin.assert_running();
    standin
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/acceptance/harness/helm_standin").join(name)
}

/// The venv's Python (`TF_ACC_PYTHON`), checked to import helm-python-sdk of the pinned version.
pub fn python() -> PathBuf {
    static PYTHON: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    PYTHON
        .get_or_init(|| {
            let python =
                env_or_testenv("TF_ACC_PYTHON").ok_or_else(|| format!("TF_ACC_PYTHON is not set: {SETUP_HINT}"))?;
            let mut cmd = Command::new(&python);
            cmd.args(["-c", "import helm_python; print(helm_python.__version__, helm_python.helm_sdk_version())"]);
            let out = run_command(cmd, None, command_timeout());
            let version = out.stdout.split_whitespace().next().unwrap_or_default().to_string();
            if !out.success() || version != HELM_SDK_VERSION {
                return Err(format!(
                    "{python} does not have helm-python-sdk {HELM_SDK_VERSION} ({}{}); {SETUP_HINT}",
                    out.stdout.trim(),
                    out.stderr.trim()
                ));
            }
            Ok(PathBuf::from(python))
        })
        .clone()
        .unwrap_or_else(|e| panic!("{e}"))
}

fn start() -> Result<HelmStandIn, String> {
    let python = python();
    let keep = std::env::var_os("TF_ACC_KEEP").is_some_and(|v| !v.is_empty() && v != "0");
    let dir = tempfile::Builder::new().prefix("tf-acc-helm-standin-").tempdir().map_err(|e| e.to_string())?.keep();
    let reaper = spawn_reaper(&dir, keep)?;
    let p = |p: &Path| p.display().to_string();

    // The charts, made and indexed by Helm.
    let repo = dir.join("repo");
    let mut make = Command::new(&python);
    make.arg(script("charts.py")).arg("make").arg(&repo);
    let out = run_command(make, None, command_timeout());
    if !out.success() {
        return Err(format!("charts.py make failed:\n{}", out.describe()));
    }

    let mut procs = Vec::new();
    let port_file = dir.join("repo-port");
    spawn(
        "chart-repository",
        &python,
        &[p(&script("charts.py")), "serve".into(), p(&repo), p(&port_file)],
        &dir,
        &mut procs,
    )?;
    wait_for("the chart repository's port", Duration::from_secs(30), &mut procs, || {
        std::fs::read_to_string(&port_file).map(|_| ()).map_err(|e| e.to_string())
    })?;
    let port = std::fs::read_to_string(&port_file).map_err(|e| e.to_string())?;
    let repo_url = format!("http://127.0.0.1:{}", port.trim());
    owned_prefixes().lock().unwrap_or_else(|e| e.into_inner()).push(repo_url.clone());

    // The OCI registry (Debian's docker-registry, the CNCF Distribution registry) on
    // loopback, with the same charts pushed by Helm.
    let registry = env_or_testenv("TF_ACC_DOCKER_REGISTRY").unwrap_or_else(|| "/usr/bin/docker-registry".into());
    if !Path::new(&registry).is_file() {
        return Err(format!("{registry} is missing: {SETUP_HINT}"));
    }
    let registry_port = free_ports(1)?[0];
    let registry_config = dir.join("registry.yml");
    let config = format!(
        "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{registry_port}\n",
        p(&dir.join("registry"))
    );
    std::fs::write(&registry_config, config).map_err(|e| e.to_string())?;
    spawn("oci-registry", Path::new(&registry), &["serve".into(), p(&registry_config)], &dir, &mut procs)?;
    wait_for("the OCI registry", Duration::from_secs(30), &mut procs, || {
        let response =
            super::plain_http::request("127.0.0.1", registry_port, "GET", "/v2/", &[], b"", Duration::from_secs(5))?;
        if response.status == 200 {
            Ok(())
        } else {
            Err(format!("GET /v2/: HTTP {}", response.status))
        }
    })?;
    let registry_url = format!("oci://127.0.0.1:{registry_port}/charts");
    let mut push = Command::new(&python);
    push.arg(script("charts.py")).arg("push").arg(&repo).arg(&registry_url);
    let out = run_command(push, None, command_timeout());
    if !out.success() {
        return Err(format!("charts.py push failed:\n{}", out.describe()));
    }
    owned_prefixes().lock().unwrap_or_else(|e| e.into_inner()).push(format!("oci://127.0.0.1:{registry_port}"));

    let ca = dir.join("ca.crt");
    std::fs::write(&ca, cluster().ca_pem()).map_err(|e| e.to_string())?;
    let args = vec![
        p(&script("controller.py")),
        format!("--server={}", cluster().server()),
        format!("--token={}", cluster().token()),
        format!("--ca-file={}", p(&ca)),
        format!("--kubeconfig={}", p(cluster().kubeconfig_path())),
        format!("--serve={repo_url}"),
        format!("--serve=oci://127.0.0.1:{registry_port}"),
    ];
    spawn("helm-controller-standin", &python, &args, &dir, &mut procs)?;
    let controller_log = dir.join("helm-controller-standin.log");
    wait_for("the helm-controller stand-in to start", Duration::from_secs(60), &mut procs, || {
        let text = std::fs::read_to_string(&controller_log).unwrap_or_default();
        if text.lines().any(|l| l == "READY") {
            Ok(())
        } else {
            Err("no READY line yet".into())
        }
    })?;
    eprintln!(
        "acceptance: helm-controller stand-in running (chart repository {repo_url}, registry {registry_url}, logs in {})",
        dir.display()
    );
    Ok(HelmStandIn {
        repo_url,
        registry_url,
        dir,
        controller_log,
        procs: Mutex::new(procs),
        _reaper: Mutex::new(reaper),
    })
}

impl HelmStandIn {
    /// Panics with the log of a stand-in process that exited.
    #[track_caller]
    pub fn assert_running(&self) {
        let mut procs = self.procs.lock().unwrap_or_else(|e| e.into_inner());
        for proc in procs.iter_mut() {
            if let Ok(Some(status)) = proc.child.try_wait() {
                panic!(
                    "the helm-controller stand-in's {} exited ({status}); log tail:\n{}",
                    proc.name,
                    tail_log(&proc.log, 40)
                );
            }
        }
    }

    /// The last lines of the controller's log, for failure messages.
    pub fn log_tail(&self, lines: usize) -> String {
        format!("--- {} ---\n{}", self.controller_log.display(), tail_log(&self.controller_log, lines))
    }

    /// The controller's log lines that mention HelmRelease `namespace/name`.
    pub fn log_of(&self, namespace: &str, name: &str) -> Vec<String> {
        let needle = format!("HelmRelease {namespace}/{name}:");
        std::fs::read_to_string(&self.controller_log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(&needle))
            .map(str::to_string)
            .collect()
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// The names of Helm's release Secrets of `release` in `namespace` (label `owner=helm`), sorted.
pub fn release_secrets(namespace: &str, release: &str) -> Vec<String> {
    let path = format!("/api/v1/namespaces/{namespace}/secrets?labelSelector=owner%3Dhelm%2Cname%3D{release}");
    let mut names: Vec<String> = cluster()
        .get_json(&path)
        .and_then(|list| list["items"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|s| s["metadata"]["name"].as_str().map(str::to_string))
        .collect();
    names.sort();
    names
}

/// Helm's stored release `namespace/release` at `revision`, decoded from its Secret
/// (`data.release`: base64 of gzipped JSON): `name`, `namespace`, `version`,
/// `info.status`, `chart.metadata`, `config` (the values Helm was given), `manifest`.
/// `None` when the Secret does not exist.
pub fn release_record(namespace: &str, release: &str, revision: i64) -> Option<Value> {
    let secret = cluster()
        .get_json(&format!("/api/v1/namespaces/{namespace}/secrets/sh.helm.release.v1.{release}.v{revision}"))?;
    let engine = base64::engine::general_purpose::STANDARD;
    let outer =
        engine.decode(secret["data"]["release"].as_str().expect("a Helm release Secret has data.release")).unwrap();
    let gzipped = engine.decode(&outer).expect("data.release holds base64 text");
    let mut cmd = Command::new(python());
    cmd.args(["-c", "import gzip, sys; sys.stdout.buffer.write(gzip.decompress(sys.stdin.buffer.read()))"]);
    let out = run_command(cmd, Some(&gzipped), command_timeout());
    out.assert_success();
    Some(out.json())
}
