//! `.goreleaser.yml` (the full multi-platform release) and `scripts/release.sh` (`make
//! release`, this machine's platform) must name and sign the same artifacts: this test
//! renders goreleaser's templates with the script's values and compares them with the
//! names the script prints (`scripts/release.sh --names`, which builds nothing).

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use serde_yaml::Value;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn goreleaser() -> Value {
    let text = std::fs::read_to_string(Path::new(ROOT).join(".goreleaser.yml")).expect("read .goreleaser.yml");
    serde_yaml::from_str(&text).expect(".goreleaser.yml is YAML")
}

/// The `KEY=VALUE` lines of `scripts/release.sh --names`.
fn script_names() -> HashMap<String, String> {
    let out = Command::new("bash")
        .arg(Path::new(ROOT).join("scripts/release.sh"))
        .arg("--names")
        .output()
        .expect("run bash scripts/release.sh --names");
    assert!(out.status.success(), "release.sh --names failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap_or_else(|| panic!("not KEY=VALUE: {l:?}"));
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// goreleaser's template fields and signing placeholders, filled in as the script fills them.
fn render(template: &str, names: &HashMap<String, String>) -> String {
    template
        .replace("{{ .ProjectName }}", &names["project"])
        .replace("{{ .Version }}", &names["version"])
        .replace("{{ .Os }}", &names["os"])
        .replace("{{ .Arch }}", &names["arch"])
        .replace("{{ .Env.GPG_FINGERPRINT }}", "{fingerprint}")
        .replace("${signature}", "{signature}")
        .replace("${artifact}", "{artifact}")
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    let mut cur = v;
    for key in path {
        cur = match key.parse::<usize>() {
            Ok(i) => &cur[i],
            Err(_) => &cur[*key],
        };
    }
    cur.as_str().unwrap_or_else(|| panic!(".goreleaser.yml has no string at {}", path.join(".")))
}

#[test]
fn version_is_cargo_tomls() {
    assert_eq!(script_names()["version"], env!("CARGO_PKG_VERSION"));
}

#[test]
fn project_binary_and_archive_names_agree() {
    let (g, names) = (goreleaser(), script_names());
    assert_eq!(str_at(&g, &["project_name"]), names["project"]);
    assert_eq!(render(str_at(&g, &["builds", "0", "binary"]), &names), names["binary"]);
    let flags: Vec<&str> = g["builds"][0]["flags"].as_sequence().unwrap().iter().filter_map(Value::as_str).collect();
    assert!(flags.contains(&"--release"), "goreleaser builds with the release profile, as the script does: {flags:?}");
    assert!(flags.contains(&"--bin=terraform-provider-platform"), "{flags:?}");
    let targets: Vec<&str> = g["builds"][0]["targets"].as_sequence().unwrap().iter().filter_map(Value::as_str).collect();
    assert!(targets.contains(&"x86_64-unknown-linux-gnu"), "the script's platform is among goreleaser's: {targets:?}");

    let archive = &g["archives"][0];
    assert_eq!(archive["formats"], serde_yaml::from_str::<Value>("[zip]").unwrap());
    assert_eq!(format!("{}.zip", render(str_at(archive, &["name_template"]), &names)), names["zip"]);
    // `none*` matches nothing: the zip holds the binary alone (no README or LICENSE).
    assert_eq!(archive["files"], serde_yaml::from_str::<Value>("[none*]").unwrap());
}

#[test]
fn checksum_and_manifest_names_agree() {
    let (g, names) = (goreleaser(), script_names());
    let checksum = &g["checksum"];
    assert_eq!(render(str_at(checksum, &["name_template"]), &names), names["checksums"]);
    assert_eq!(str_at(checksum, &["algorithm"]), names["checksum_algorithm"]);
    // The manifest is covered by the checksums and published beside them under one name.
    for extra in [&checksum["extra_files"][0], &g["release"]["extra_files"][0]] {
        assert_eq!(str_at(extra, &["glob"]), names["manifest_source"]);
        assert_eq!(render(str_at(extra, &["name_template"]), &names), names["manifest"]);
    }
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(Path::new(ROOT).join(&names["manifest_source"])).unwrap()).unwrap();
    assert_eq!(manifest["version"], 1);
    assert_eq!(manifest["metadata"]["protocol_versions"], serde_json::json!(["6.0"]));
}

#[test]
fn signing_settings_agree() {
    let (g, names) = (goreleaser(), script_names());
    let signs = g["signs"].as_sequence().expect("signs");
    assert_eq!(signs.len(), 1);
    let sign = &signs[0];
    assert_eq!(str_at(sign, &["artifacts"]), "checksum");
    // goreleaser's default signature name is "${artifact}.sig", and its default command gpg.
    assert!(sign.get("signature").is_none(), "a custom signature name would differ from the script's");
    assert!(sign.get("cmd").is_none_or(|c| c.as_str() == Some("gpg")));
    assert_eq!(names["signature"], format!("{}.sig", names["checksums"]));
    let args: Vec<String> =
        sign["args"].as_sequence().unwrap().iter().map(|a| render(a.as_str().unwrap(), &names)).collect();
    assert_eq!(args.join(" "), names["sign_args"]);
    // A binary signature: Terraform reads SHA256SUMS.sig as raw OpenPGP, not ASCII armor.
    assert!(!args.iter().any(|a| a == "--armor" || a == "-a"));
}
