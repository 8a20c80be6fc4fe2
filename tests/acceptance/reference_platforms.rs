//! The reference platforms of `examples/` and the modules of `modules/` they are built from:
//! every one validates and is formatted for every Terraform under test, and every example
//! plans with its cluster connection unknown without contacting anything.

use std::io::Read as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::harness::{self, for_each_terraform, secrets, Workdir};

/// The examples that reproduce our users' platforms (`../shared/seeds/`), one each.
pub(crate) const REFERENCE_EXAMPLES: [&str; 4] =
    ["k3s-ha-platform", "talos-homelab", "flux-homelab", "gitops-baseline"];

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Every directory under `modules/`, sorted.
fn modules() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(repo().join("modules"))
        .expect("modules/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

/// The `.tf` files of `dir` (not recursive) by name.
fn tf_files(dir: &Path) -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "tf"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p.file_name().unwrap().to_string_lossy().into_owned(), text)
        })
        .collect();
    files.sort();
    files
}

/// Copies a module's `.tf` files into `target`.
fn copy_module(from: &Path, target: &Path) {
    std::fs::create_dir_all(target).expect("create module dir");
    for (name, text) in tf_files(from) {
        std::fs::write(target.join(name), text).expect("copy module file");
    }
}

/// Puts example `name` into the workdir with every module beside it (`./modules/<m>`, where
/// the example says `../../modules/<m>`), then installs the module calls (`terraform get`,
/// which needs no registry).
pub(crate) fn install_example(work: &Workdir, name: &str) {
    for (file, text) in tf_files(&repo().join("examples").join(name)) {
        work.write_file(&file, &text.replace("\"../../modules/", "\"./modules/"));
    }
    install_modules(work);
}

/// Copies every module into the workdir (`./modules/<m>`) and installs the module calls of
/// its configuration (`terraform get`).
pub(crate) fn install_modules(work: &Workdir) {
    for module in modules() {
        copy_module(&module, &work.path().join("modules").join(module.file_name().unwrap()));
    }
    work.run(&["get", "-no-color"]).assert_success();
}

#[test]
fn every_module_has_its_files_and_a_documented_readme() {
    let found = modules();
    let names: Vec<String> = found.iter().map(|m| m.file_name().unwrap().to_string_lossy().into_owned()).collect();
    for expected in ["gitops", "ingress", "certificates", "observability", "backups", "secrets", "policy", "dns"] {
        assert!(names.iter().any(|n| n == expected), "no module {expected} in {names:?}");
    }
    for module in &found {
        for file in ["README.md", "variables.tf", "outputs.tf", "versions.tf", "main.tf"] {
            assert!(module.join(file).is_file(), "{} has no {file}", module.display());
        }
        let readme = std::fs::read_to_string(module.join("README.md")).unwrap();
        assert!(
            readme.contains("## Inputs") && readme.contains("## Outputs"),
            "{}: README without tables",
            module.display()
        );
    }
    for example in REFERENCE_EXAMPLES {
        let dir = repo().join("examples").join(example);
        for file in ["README.md", "main.tf", "variables.tf", "outputs.tf", "versions.tf"] {
            assert!(dir.join(file).is_file(), "{} has no {file}", dir.display());
        }
    }
}

#[test]
fn modules_and_reference_examples_validate_with_every_terraform() {
    for_each_terraform(|tf| {
        for module in modules() {
            let work = Workdir::without_cluster(tf);
            copy_module(&module, work.path());
            let out = work.run(&["validate", "-no-color"]);
            assert!(out.success(), "module {} does not validate:\n{}", module.display(), out.describe());
        }
        for example in REFERENCE_EXAMPLES {
            let work = Workdir::without_cluster(tf);
            install_example(&work, example);
            let out = work.run(&["validate", "-no-color"]);
            assert!(out.success(), "example {example} does not validate:\n{}", out.describe());
        }
    });
}

#[test]
fn modules_and_examples_are_formatted_for_every_terraform() {
    for_each_terraform(|tf| {
        let work = Workdir::without_cluster(tf);
        let mut dirs = modules();
        dirs.extend(REFERENCE_EXAMPLES.iter().map(|e| repo().join("examples").join(e)));
        for dir in dirs {
            let out = work.run(&["fmt", "-check", "-diff", "-no-color", &dir.display().to_string()]);
            assert!(out.success(), "{} is not formatted as {tf} formats it:\n{}", dir.display(), out.describe());
        }
    });
}

/// A TCP listener on loopback that counts the connections made to it: a cluster address
/// that must never be contacted.
pub(crate) struct Tripwire {
    pub address: String,
    hits: Arc<AtomicUsize>,
}

impl Tripwire {
    pub(crate) fn new() -> Tripwire {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let address = format!("https://{}", listener.local_addr().unwrap());
        let hits = Arc::new(AtomicUsize::new(0));
        let counted = hits.clone();
        std::thread::spawn(move || {
            for mut stream in listener.incoming().flatten() {
                counted.fetch_add(1, Ordering::SeqCst);
                let mut sink = [0u8; 512];
                let _ = stream.read(&mut sink);
            }
        });
        Tripwire { address, hits }
    }

    pub(crate) fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

/// Variables for planning example `name` against a cluster at `cluster_url` that must not be
/// contacted (and hosts on loopback that are not contacted either), as a tfvars file: the
/// example's `fixtures/examples/plan-only/<name>.tfvars` (shared with the benchmark) with its
/// placeholders filled in.
fn plan_variables(work: &Workdir, name: &str, cluster_url: &str) -> String {
    let fixture = format!("examples/plan-only/{name}.tfvars");
    let text = harness::fixture(&fixture);
    let kubeconfig = work.write_file(
        "tripwire.kubeconfig",
        &format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {cluster_url}\n    insecure-skip-tls-verify: true\n\
             users:\n- name: u\n  user:\n    token: plan-only\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\ncurrent-context: c\n"
        ),
    );
    let mut text =
        text.replace("@CLUSTER_URL@", cluster_url).replace("@KUBECONFIG@", &kubeconfig.display().to_string());
    if text.contains("@SSH_PRIVATE_KEY@") {
        let key = work.path().join("id_ed25519");
        let status = std::process::Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&key)
            .status()
            .expect("ssh-keygen");
        assert!(status.success(), "ssh-keygen failed");
        // Host keys of hosts that are never contacted: any well-formed key will do.
        let public = std::fs::read_to_string(key.with_extension("pub")).expect("public key");
        let public: Vec<&str> = public.split_whitespace().take(2).collect();
        let hosts = ["11", "12", "13", "21", "22", "23", "24"];
        let lines: String = hosts.iter().map(|h| format!("127.0.0.{h} {}\n", public.join(" "))).collect();
        let known_hosts = work.write_file("known_hosts", &lines);
        text = text
            .replace("@SSH_PRIVATE_KEY@", &key.display().to_string())
            .replace("@KNOWN_HOSTS@", &known_hosts.display().to_string());
    }
    if text.contains("@AGE_KEY_FILE@") {
        let sops = secrets::require(secrets::Sops::find());
        let age = sops.age_key(work.root(), "age.txt");
        let secrets = work.path().join("secrets.sops.yaml");
        sops.encrypt(&[&age], "yaml", b"DATABASE_PASSWORD: plan-only\n", &secrets, &[]);
        text = text
            .replace("@AGE_KEY_FILE@", &age.path.display().to_string())
            .replace("@APP_SECRETS_FILE@", &secrets.display().to_string());
    }
    let placeholders = ["@CLUSTER_URL@", "@KUBECONFIG@", "@SSH_PRIVATE_KEY@", "@KNOWN_HOSTS@", "@AGE_KEY_FILE@"];
    assert!(!placeholders.iter().any(|p| text.contains(p)), "a placeholder left in {fixture}:\n{text}");
    text
}

/// The plan summary line (`Plan: N to add, ...`) of a plan's output.
fn summary(text: &str) -> Option<String> {
    text.lines().map(str::trim).find(|l| l.starts_with("Plan: ")).map(str::to_string)
}

/// Every reference example plans from nothing without contacting its cluster (the connection
/// comes from a `platform_k3s_cluster` or `platform_cluster` of the same apply, unknown
/// until it is applied), and plans what its README says it plans.
#[test]
fn reference_examples_plan_with_the_connection_unknown_and_contact_nothing() {
    for_each_terraform(|tf| {
        let mut missing = Vec::new();
        for example in REFERENCE_EXAMPLES {
            let tripwire = Tripwire::new();
            let work = Workdir::without_cluster(tf);
            install_example(&work, example);
            let vars = plan_variables(&work, example, &tripwire.address);
            work.write_file("test.tfvars", &vars);
            let out = work.run(&["plan", "-input=false", "-no-color", "-var-file=test.tfvars"]);
            assert!(out.success(), "example {example} does not plan:\n{}", out.describe());
            assert_eq!(tripwire.hits(), 0, "planning example {example} contacted the cluster");
            let planned =
                summary(&out.stdout).unwrap_or_else(|| panic!("no plan summary for {example}:\n{}", out.stdout));
            let readme =
                std::fs::read_to_string(repo().join("examples").join(example).join("README.md")).unwrap_or_default();
            if !readme.contains(&planned) {
                missing.push(format!("examples/{example}/README.md does not show the plan summary {planned:?}"));
            }
        }
        assert!(missing.is_empty(), "{}", missing.join("\n"));
    });
}
