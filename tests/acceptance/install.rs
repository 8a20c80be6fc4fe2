//! The release installed the way users install it: `terraform init` from a provider registry
//! (protocol v1 over HTTPS, SHA256SUMS signed with the release key), and from the mirror
//! `make mirror` makes, as a filesystem mirror and as a network mirror. The release comes
//! from `dist/` (`make release`), built by the harness when missing.

use crate::harness::registry::{filesystem_mirror_cli_config, release, signature_by_another_key, RegistryServer, Release};
use crate::harness::{for_each_terraform, kubectl, unique_name, CmdOutput, TerraformBin, Workdir};

/// A workdir that installs with `cli_config` (no dev_overrides) and trusts the server's CA.
fn installing_workdir(tf: &TerraformBin, cli_config: &str, server: Option<&RegistryServer>) -> Workdir {
    let mut work = Workdir::new(tf);
    std::fs::write(work.cli_config_path(), cli_config).expect("write CLI config");
    if let Some(server) = server {
        work.set_env("SSL_CERT_FILE", &server.ca_file().to_string_lossy());
    }
    work.write_main_tf(required_providers!());
    work
}

fn init(work: &Workdir) -> CmdOutput {
    work.run(&["init", "-input=false", "-no-color"])
}

fn lock_file(work: &Workdir) -> String {
    std::fs::read_to_string(work.path().join(".terraform.lock.hcl")).expect("terraform init wrote .terraform.lock.hcl")
}

/// `terraform init` installs the release: binary, schema and lock file checked.
#[track_caller]
fn assert_installs(work: &Workdir, release: &Release, with_zip_hash: bool) {
    init(work).assert_success();
    assert_installed(work, release);
    assert_locked(work, release, with_zip_hash);
}

/// The release's binary is what terraform unpacked, and its schema loads through it.
#[track_caller]
fn assert_installed(work: &Workdir, release: &Release) {
    let installed = work.path().join(format!(
        ".terraform/providers/registry.terraform.io/platform/platform/{}/{}_{}/{}",
        release.version(),
        release.name("os"),
        release.name("arch"),
        release.name("binary")
    ));
    let version = std::process::Command::new(&installed)
        .arg("--version")
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", installed.display()));
    assert_eq!(String::from_utf8_lossy(&version.stdout).trim(), format!("terraform-provider-platform {}", release.version()));
    let schema = work.run(&["providers", "schema", "-json"]);
    schema.assert_success();
    let resources = &schema.json()["provider_schemas"]["registry.terraform.io/platform/platform"]["resource_schemas"];
    assert!(resources.get("platform_namespace").is_some(), "no platform_namespace in the installed provider's schema");
}

/// The lock file records the package's content hash (and, from the registry, the zip's).
#[track_caller]
fn assert_locked(work: &Workdir, release: &Release, with_zip_hash: bool) {
    let lock = lock_file(work);
    let words = lock.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(words.contains(&format!("version = \"{}\"", release.version())), "{lock}");
    assert!(lock.contains(&format!("\"{}\"", release.mirror_h1())), "no h1: hash of the package in:\n{lock}");
    let zh = format!("\"zh:{}\"", release.zip_sha256());
    assert_eq!(lock.contains(&zh), with_zip_hash, "zip hash {zh} expected: {with_zip_hash}, lock file:\n{lock}");
}

/// Terraform failed and said `needle` (its line wrapping undone).
#[track_caller]
fn assert_refused(out: &CmdOutput, needle: &str) {
    assert!(!out.success(), "`{}` succeeded, expected a refusal:\n{}", out.command, out.describe());
    let words = out.combined().split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(words.contains(needle), "`{}` failed without saying {needle:?}:\n{}", out.command, out.describe());
}

fn hex_sha256(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}

/// A namespace created and destroyed through the installed provider.
fn create_namespace(work: &Workdir) {
    let name = unique_name("acc-install");
    work.write_main_tf(&format!(
        "{}\nprovider \"platform\" {{}}\n\nresource \"platform_namespace\" \"this\" {{\n  name = \"{name}\"\n}}\n",
        required_providers!()
    ));
    work.apply().assert_success();
    let live = kubectl(&["get", "namespace", &name, "-o", "json"]);
    live.assert_success();
    assert_eq!(live.json()["metadata"]["name"], name.as_str());
    work.destroy().assert_success();
}

#[test]
fn installs_from_the_registry_with_hashes_in_the_lock_file() {
    let release = release();
    for_each_terraform(|tf| {
        let server = RegistryServer::start(release);
        let work = installing_workdir(tf, &server.registry_cli_config(), Some(&server));
        assert_installs(&work, release, true);
        create_namespace(&work);
    });
}

#[test]
fn registry_install_refuses_a_changed_zip_and_a_foreign_signature() {
    let release = release();
    for_each_terraform(|tf| {
        let server = RegistryServer::start(release);
        let mut zip = release.read("zip");
        let middle = zip.len() / 2;
        zip[middle] ^= 0x01;
        let zip_bytes_changed = zip.clone();
        server.replace_file(release.name("zip"), zip);
        let work = installing_workdir(tf, &server.registry_cli_config(), Some(&server));
        let out = init(&work);
        assert_refused(&out, &format!("archive has incorrect checksum zh:{}", hex_sha256(&zip_bytes_changed)));
        assert_refused(&out, &format!("(expected zh:{})", release.zip_sha256()));
        assert!(!work.path().join(".terraform/providers/registry.terraform.io/platform").exists());

        let server = RegistryServer::start(release);
        server.replace_file(release.name("signature"), signature_by_another_key(&release.read("checksums")));
        let work = installing_workdir(tf, &server.registry_cli_config(), Some(&server));
        assert_refused(&init(&work), "authentication signature from unknown issuer");
        assert!(!work.path().join(".terraform/providers/registry.terraform.io/platform").exists());
    });
}

#[test]
fn installs_from_a_filesystem_mirror_and_a_network_mirror() {
    let release = release();
    for_each_terraform(|tf| {
        let work = installing_workdir(tf, &filesystem_mirror_cli_config(&release.mirror_dir()), None);
        assert_installs(&work, release, false);

        let server = RegistryServer::start(release);
        let work = installing_workdir(tf, &server.network_mirror_cli_config(), Some(&server));
        assert_installs(&work, release, false);
        create_namespace(&work);
    });
}

/// docs/index.md lists the Terraform versions tested with; every one under test must be there.
#[test]
fn docs_name_every_terraform_under_test() {
    for_each_terraform(|tf| {
        assert!(
            platform_provider::docs::TESTED_TERRAFORM_VERSIONS.contains(&tf.version_string.as_str()),
            "Terraform {} is under test but not in docs::TESTED_TERRAFORM_VERSIONS: add it and run `make docs`",
            tf.version_string
        );
    });
}
