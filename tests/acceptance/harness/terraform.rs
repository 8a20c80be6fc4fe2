//! Drives real `terraform` binaries against the provider binary cargo built for this test
//! run, through a CLI config with `dev_overrides` (no `terraform init` needed).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use super::{cluster, command_timeout, env_or_testenv, run_command, CmdOutput, SETUP_HINT};

/// The provider binary under test.
pub const PROVIDER_BINARY: &str = env!("CARGO_BIN_EXE_terraform-provider-platform");

/// The provider address tests write as `source = "platform/platform"`.
pub const PROVIDER_ADDRESS: &str = "registry.terraform.io/platform/platform";

/// A terraform executable and its version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TerraformBin {
    pub path: PathBuf,
    /// `(major, minor, patch)`, e.g. `(1, 0, 3)`.
    pub version: (u32, u32, u32),
    /// `1.0.3`
    pub version_string: String,
}

impl TerraformBin {
    /// Reads the version from the first line of `terraform version` (`Terraform v1.0.3`).
    pub fn probe(path: &Path) -> Result<TerraformBin, String> {
        let mut cmd = Command::new(path);
        cmd.arg("version").env("CHECKPOINT_DISABLE", "1").env("TF_CLI_CONFIG_FILE", "/dev/null");
        let out = run_command(cmd, None, std::time::Duration::from_secs(60));
        if !out.success() {
            return Err(format!("`{} version` failed:\n{}", path.display(), out.describe()));
        }
        let first = out.stdout.lines().next().unwrap_or_default();
        let version_string = first
            .strip_prefix("Terraform v")
            .ok_or_else(|| format!("`{} version` printed {first:?}, not `Terraform vX.Y.Z`", path.display()))?
            .trim()
            .to_string();
        let mut nums = version_string.split(|c: char| !c.is_ascii_digit()).map(|n| n.parse::<u32>().unwrap_or(0));
        let version = (nums.next().unwrap_or(0), nums.next().unwrap_or(0), nums.next().unwrap_or(0));
        Ok(TerraformBin { path: path.to_path_buf(), version, version_string })
    }

    /// True when this terraform is at least `major.minor` (e.g. `at_least(1, 5)` for
    /// `import` blocks).
    pub fn at_least(&self, major: u32, minor: u32) -> bool {
        (self.version.0, self.version.1) >= (major, minor)
    }
}

impl std::fmt::Display for TerraformBin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "terraform {} ({})", self.version_string, self.path.display())
    }
}

/// Every terraform to test with, in order: `TF_ACC_TERRAFORM_PATHS` (colon-separated),
/// else the list `scripts/testenv.sh` recorded, else `terraform` on PATH. Duplicates (same
/// file or same version) are dropped. Panics when there is none.
pub fn terraform_binaries() -> Vec<TerraformBin> {
    static BINS: OnceLock<Result<Vec<TerraformBin>, String>> = OnceLock::new();
    BINS.get_or_init(|| {
        let mut paths: Vec<PathBuf> = match env_or_testenv("TF_ACC_TERRAFORM_PATHS") {
            Some(list) => list.split(':').filter(|p| !p.is_empty()).map(PathBuf::from).collect(),
            None => find_on_path("terraform").into_iter().collect(),
        };
        if paths.is_empty() {
            return Err(format!("no terraform found (TF_ACC_TERRAFORM_PATHS unset and none on PATH): {SETUP_HINT}"));
        }
        let mut bins: Vec<TerraformBin> = Vec::new();
        for p in paths.drain(..) {
            let bin = TerraformBin::probe(&p)?;
            let canonical = std::fs::canonicalize(&bin.path).ok();
            if bins.iter().any(|b| b.version == bin.version || std::fs::canonicalize(&b.path).ok() == canonical) {
                continue;
            }
            bins.push(bin);
        }
        let names: Vec<String> = bins.iter().map(|b| b.version_string.clone()).collect();
        eprintln!("acceptance: terraform versions under test: {}", names.join(", "));
        Ok(bins)
    })
    .clone()
    .unwrap_or_else(|e| panic!("{e}"))
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| std::env::split_paths(&paths).map(|d| d.join(name)).find(|p| p.is_file()))
}

/// The newest terraform under test (for features older versions lack).
pub fn newest_terraform() -> TerraformBin {
    terraform_binaries().into_iter().max_by_key(|t| t.version).expect("a terraform")
}

/// The oldest terraform under test.
pub fn oldest_terraform() -> TerraformBin {
    terraform_binaries().into_iter().min_by_key(|t| t.version).expect("a terraform")
}

/// Runs `f` once per terraform binary; a failure names the terraform version.
pub fn for_each_terraform(mut f: impl FnMut(&TerraformBin)) {
    for tf in terraform_binaries() {
        eprintln!("=== with {tf}");
        if let Err(payload) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&tf))) {
            let msg = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "(non-string panic)".to_string());
            panic!("[terraform {}] {msg}", tf.version_string);
        }
    }
}

/// A terraform working directory (temp dir, removed on drop unless `TF_ACC_KEEP` is set)
/// with its own CLI config pointing `platform/platform` at the provider under test.
pub struct Workdir {
    tf: TerraformBin,
    root: PathBuf,
    dir: PathBuf,
    cli_config: PathBuf,
    envs: Vec<(String, String)>,
    kubeconfig: Option<PathBuf>,
    _guard: Option<tempfile::TempDir>,
}

impl Workdir {
    /// A workdir whose commands see `KUBECONFIG` of the shared test cluster (started on
    /// first use).
    pub fn new(tf: &TerraformBin) -> Workdir {
        let kubeconfig = cluster().kubeconfig_path().to_path_buf();
        Self::create(tf, Some(kubeconfig))
    }

    /// A workdir that does not start or point at the test cluster (`KUBECONFIG` unset).
    pub fn without_cluster(tf: &TerraformBin) -> Workdir {
        Self::create(tf, None)
    }

    fn create(tf: &TerraformBin, kubeconfig: Option<PathBuf>) -> Workdir {
        let tmp = tempfile::Builder::new().prefix("tf-acc-work-").tempdir().expect("create temp dir");
        let keep = std::env::var_os("TF_ACC_KEEP").is_some_and(|v| !v.is_empty() && v != "0");
        let (root, guard) = if keep {
            let p = tmp.keep();
            eprintln!("acceptance: workdir kept in {}", p.display());
            (p, None)
        } else {
            (tmp.path().to_path_buf(), Some(tmp))
        };
        let dir = root.join("work");
        std::fs::create_dir_all(&dir).expect("create workdir");
        // `TF_ACC_PROVIDER_DIR` (for benchmarks): another directory holding a
        // `terraform-provider-platform`, such as a release build under a profiler.
        let provider_dir = std::env::var_os("TF_ACC_PROVIDER_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(PROVIDER_BINARY).parent().expect("provider binary dir").to_path_buf());
        let cli_config = root.join("terraformrc");
        std::fs::write(
            &cli_config,
            format!(
                "disable_checkpoint = true\n\nprovider_installation {{\n  dev_overrides {{\n    \"{PROVIDER_ADDRESS}\" = \"{}\"\n  }}\n  direct {{}}\n}}\n",
                provider_dir.display()
            ),
        )
        .expect("write CLI config");
        Workdir { tf: tf.clone(), root, dir, cli_config, envs: Vec::new(), kubeconfig, _guard: guard }
    }

    /// The directory terraform runs in (holds `main.tf`, state, ...).
    pub fn path(&self) -> &Path {
        &self.dir
    }

    pub fn tf(&self) -> &TerraformBin {
        &self.tf
    }

    /// The CLI config file every command runs with.
    pub fn cli_config_path(&self) -> &Path {
        &self.cli_config
    }

    /// An environment variable for every later command of this workdir (e.g. `TF_LOG`).
    pub fn set_env(&mut self, key: &str, value: &str) -> &mut Self {
        self.envs.retain(|(k, _)| k != key);
        self.envs.push((key.to_string(), value.to_string()));
        self
    }

    pub fn write_file(&self, name: &str, content: &str) -> PathBuf {
        let p = self.dir.join(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("create dir");
        }
        std::fs::write(&p, content).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
        p
    }

    /// (Re)writes `main.tf`.
    pub fn write_main_tf(&self, content: &str) -> PathBuf {
        self.write_file("main.tf", content)
    }

    /// Runs `terraform ARGS...` here.
    pub fn run(&self, args: &[&str]) -> CmdOutput {
        self.run_with_env(args, &[])
    }

    /// Runs `terraform ARGS...` with extra environment variables (e.g. `("TF_LOG", "debug")`).
    pub fn run_with_env(&self, args: &[&str], envs: &[(&str, &str)]) -> CmdOutput {
        run_command(self.command(args, envs), None, command_timeout())
    }

    /// Starts `terraform ARGS...` in a process group of its own, to be interrupted as Ctrl-C
    /// would (see [`Interruptible::interrupt`]). Output goes to files, not pipes: the provider
    /// inherits them and may outlive terraform.
    pub fn start_interruptible(&self, args: &[&str]) -> Interruptible {
        use std::os::unix::process::CommandExt;
        let out = self.root.join(format!("interruptible-{}.out", std::process::id()));
        let mut cmd = self.command(args, &[]);
        // Ctrl-C signals a terminal's whole process group (Terraform 1.0 is a wrapper process
        // around the real one): give terraform a group of its own to signal. A background
        // test process may also have SIGINT ignored, which Go would inherit.
        cmd.process_group(0);
        unsafe {
            cmd.pre_exec(|| {
                libc::signal(libc::SIGINT, libc::SIG_DFL);
                Ok(())
            });
        }
        let file = std::fs::File::create(&out).expect("create output file");
        cmd.stdout(std::process::Stdio::from(file.try_clone().expect("clone output file")))
            .stderr(std::process::Stdio::from(file));
        let child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start terraform {args:?}: {e}"));
        Interruptible { child, out }
    }

    fn command(&self, args: &[&str], envs: &[(&str, &str)]) -> Command {
        let mut cmd = Command::new(&self.tf.path);
        cmd.args(args).current_dir(&self.dir);
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy();
            if k.starts_with("TF_CLI_ARGS") || k == "TF_WORKSPACE" || k == "TF_DATA_DIR" || k == "TF_PLUGIN_CACHE_DIR" || k == "KUBE_CONFIG_PATH" {
                cmd.env_remove(k.as_ref());
            }
        }
        cmd.env("TF_CLI_CONFIG_FILE", &self.cli_config)
            .env("TF_IN_AUTOMATION", "1")
            .env("CHECKPOINT_DISABLE", "1")
            .env("TF_INPUT", "0");
        match &self.kubeconfig {
            Some(k) => cmd.env("KUBECONFIG", k),
            None => cmd.env_remove("KUBECONFIG"),
        };
        for (k, v) in &self.envs {
            cmd.env(k, v);
        }
        for (k, v) in envs {
            cmd.env(k, v);
        }
        cmd
    }

    /// `terraform apply -auto-approve -input=false -no-color`.
    pub fn apply(&self) -> CmdOutput {
        self.run(&["apply", "-auto-approve", "-input=false", "-no-color"])
    }

    /// `terraform apply` with extra arguments (e.g. `-refresh-only`, `-var=...`).
    pub fn apply_with(&self, extra: &[&str]) -> CmdOutput {
        let mut args = vec!["apply", "-auto-approve", "-input=false", "-no-color"];
        args.extend_from_slice(extra);
        self.run(&args)
    }

    /// `terraform plan -input=false -no-color`.
    pub fn plan(&self) -> CmdOutput {
        self.run(&["plan", "-input=false", "-no-color"])
    }

    /// `terraform plan -detailed-exitcode`: 0 = no changes, 2 = changes, 1 = error.
    pub fn plan_detailed(&self) -> (i32, CmdOutput) {
        let out = self.run(&["plan", "-detailed-exitcode", "-input=false", "-no-color"]);
        (out.code(), out)
    }

    /// Panics (with the plan) unless `plan -detailed-exitcode` says there is nothing to do.
    #[track_caller]
    pub fn assert_plan_empty(&self) {
        let (code, out) = self.plan_detailed();
        if code != 0 {
            panic!("expected an empty plan with {}, got exit code {code}:\n{}", self.tf, out.describe());
        }
    }

    /// Panics (with the plan) unless `plan -detailed-exitcode` proposes changes; returns it.
    #[track_caller]
    pub fn assert_plan_has_changes(&self) -> CmdOutput {
        let (code, out) = self.plan_detailed();
        if code != 2 {
            panic!("expected a non-empty plan with {}, got exit code {code}:\n{}", self.tf, out.describe());
        }
        out
    }

    /// `terraform import ADDR ID`.
    pub fn import(&self, addr: &str, id: &str) -> CmdOutput {
        self.run(&["import", "-input=false", "-no-color", addr, id])
    }

    /// `terraform destroy -auto-approve`.
    pub fn destroy(&self) -> CmdOutput {
        self.run(&["destroy", "-auto-approve", "-input=false", "-no-color"])
    }

    /// `terraform show -json` (the state) parsed; panics if it fails.
    #[track_caller]
    pub fn show_json(&self) -> serde_json::Value {
        let out = self.run(&["show", "-json", "-no-color"]);
        out.assert_success();
        out.json()
    }

    /// Same as [`Workdir::show_json`]: the state as JSON.
    #[track_caller]
    pub fn state_json(&self) -> serde_json::Value {
        self.show_json()
    }

    /// `plan -out` then `show -json` of that plan.
    #[track_caller]
    pub fn plan_json(&self) -> serde_json::Value {
        self.run(&["plan", "-input=false", "-no-color", "-out=tfplan"]).assert_success();
        let out = self.run(&["show", "-json", "-no-color", "tfplan"]);
        out.assert_success();
        out.json()
    }

    /// `terraform output -json` parsed.
    #[track_caller]
    pub fn output_json(&self) -> serde_json::Value {
        let out = self.run(&["output", "-json", "-no-color"]);
        out.assert_success();
        out.json()
    }

    /// The `values` of resource `addr` (e.g. `platform_namespace.x`) in the state, if any.
    #[track_caller]
    pub fn resource_values(&self, addr: &str) -> Option<serde_json::Value> {
        find_resource(&self.show_json()["values"]["root_module"], addr).map(|r| r["values"].clone())
    }
}

fn find_resource<'a>(module: &'a serde_json::Value, addr: &str) -> Option<&'a serde_json::Value> {
    if let Some(found) = module["resources"].as_array().and_then(|rs| rs.iter().find(|r| r["address"] == addr)) {
        return Some(found);
    }
    module["child_modules"].as_array()?.iter().find_map(|m| find_resource(m, addr))
}

impl std::fmt::Debug for Workdir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Workdir({}, {})", self.dir.display(), self.tf)
    }
}

impl Workdir {
    /// The temp root (CLI config + `work/`).
    pub fn root(&self) -> &Path {
        &self.root
    }
}

/// A terraform command running in its own process group (see [`Workdir::start_interruptible`]).
pub struct Interruptible {
    child: std::process::Child,
    out: PathBuf,
}

impl Interruptible {
    /// Sends SIGINT to the command's process group, as Ctrl-C does, and waits for it to end;
    /// panics if it is still running `within` later. Returns whether it succeeded and all it
    /// printed.
    pub fn interrupt(mut self, within: Duration) -> (bool, String) {
        let interrupted = std::time::Instant::now();
        let group = format!("-{}", self.child.id());
        Command::new("kill").args(["-INT", "--", &group]).status().expect("run kill");
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait for terraform") {
                break status;
            }
            if interrupted.elapsed() > within {
                let signals = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
                let _ = self.child.kill();
                panic!(
                    "terraform still running {within:?} after Ctrl-C ({}):\n{}",
                    signals.lines().filter(|l| l.starts_with("Sig")).collect::<Vec<_>>().join(" "),
                    std::fs::read_to_string(&self.out).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        (status.success(), std::fs::read_to_string(&self.out).unwrap_or_default())
    }
}
