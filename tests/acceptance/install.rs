//! The release installed the way users install it: `terraform init` from a provider registry
//! (protocol v1 over HTTPS, SHA256SUMS signed with the release key), and from the mirror
//! `make mirror` makes, as a filesystem mirror and as a network mirror. The release comes
//! from `dist/` (`make release`), built by the harness when missing.

use crate::harness::registry::{filesystem_mirror_cli_config, gpg, release, signature_by_another_key, RegistryServer, Release};
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

/// The entries of a zip's central directory: (name, Unix mode, made on Unix).
fn zip_entries(zip: &[u8]) -> Vec<(String, u32, bool)> {
    let u16_at = |i: usize| u16::from_le_bytes([zip[i], zip[i + 1]]) as usize;
    let u32_at = |i: usize| u32::from_le_bytes([zip[i], zip[i + 1], zip[i + 2], zip[i + 3]]);
    // No archive comment: the end-of-central-directory record is the last 22 bytes.
    let end = zip.len() - 22;
    assert_eq!(u32_at(end), 0x0605_4b50, "no end-of-central-directory record where expected");
    let (count, mut at) = (u16_at(end + 10), u32_at(end + 16) as usize);
    let mut entries = Vec::new();
    for _ in 0..count {
        assert_eq!(u32_at(at), 0x0201_4b50, "bad central directory header");
        let made_on_unix = zip[at + 5] == 3;
        let (name_len, extra_len, comment_len) = (u16_at(at + 28), u16_at(at + 30), u16_at(at + 32));
        let mode = u32_at(at + 38) >> 16;
        let name = String::from_utf8_lossy(&zip[at + 46..at + 46 + name_len]).into_owned();
        entries.push((name, mode, made_on_unix));
        at += 46 + name_len + extra_len + comment_len;
    }
    entries
}

/// dist/ is laid out as goreleaser lays out a Terraform provider release.
#[test]
fn release_layout_is_goreleasers() {
    let release = release();
    let entries = zip_entries(&release.read("zip"));
    assert_eq!(entries, vec![(release.name("binary").to_string(), 0o100755, true)], "zip entries");

    let sums = String::from_utf8(release.read("checksums")).unwrap();
    let listed: Vec<(&str, &str)> = sums.lines().filter_map(|l| l.split_once("  ")).collect();
    let manifest_sha = hex_sha256(&release.read("manifest"));
    let zip_sha = release.zip_sha256();
    assert_eq!(listed, vec![(zip_sha.as_str(), release.name("zip")), (manifest_sha.as_str(), release.name("manifest"))]);
    let manifest: serde_json::Value = serde_json::from_slice(&release.read("manifest")).unwrap();
    assert_eq!(manifest["metadata"]["protocol_versions"], serde_json::json!(["6.0"]));

    // The signature is binary OpenPGP, by the published key, over SHA256SUMS.
    let sig = release.read("signature");
    assert_ne!(sig.first(), Some(&b'-'), "SHA256SUMS.sig is ASCII-armored; Terraform expects binary");
    let home = tempfile::Builder::new().prefix("tf-acc-gpg-").tempdir().unwrap();
    gpg(Some(home.path()), &["--import", &release.file("public_key").to_string_lossy()]).assert_success();
    let verify = gpg(
        Some(home.path()),
        &["--status-fd", "1", "--verify", &release.file("signature").to_string_lossy(), &release.file("checksums").to_string_lossy()],
    );
    verify.assert_success();
    assert!(verify.stdout.contains("[GNUPG:] GOODSIG"), "{}", verify.describe());
    assert!(verify.stdout.contains("[GNUPG:] VALIDSIG"), "{}", verify.describe());
    let _ = std::process::Command::new("gpgconf").env("GNUPGHOME", home.path()).args(["--kill", "gpg-agent"]).status();
}
