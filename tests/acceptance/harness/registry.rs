//! The release in `dist/` (from `scripts/release.sh`, built here when missing) served on
//! loopback HTTPS the way users get providers: as a provider registry (protocol v1) and as a
//! network mirror (`scripts/mirror.sh`'s directory), with a throwaway CA that terraform
//! trusts through `SSL_CERT_FILE`. Files can be replaced while it runs (tampering tests).

use std::collections::HashMap;
use std::io::{BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::{run_command, CmdOutput};

/// The repository root (scripts, dist/).
pub const ROOT: &str = env!("CARGO_MANIFEST_DIR");
/// A release build takes minutes on two cores; far more than one terraform command.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(3600);

/// The release artifacts of the current version and their names.
#[derive(Debug)]
pub struct Release {
    /// `scripts/release.sh --names`: project, version, os, arch, binary, zip, checksums, ...
    pub names: HashMap<String, String>,
    pub dist: PathBuf,
}

impl Release {
    pub fn name(&self, key: &str) -> &str {
        self.names.get(key).unwrap_or_else(|| panic!("release.sh --names has no {key}"))
    }

    pub fn version(&self) -> &str {
        self.name("version")
    }

    /// The file `dist/<name of key>` (e.g. `file("zip")`).
    pub fn file(&self, key: &str) -> PathBuf {
        self.dist.join(self.name(key))
    }

    #[track_caller]
    pub fn read(&self, key: &str) -> Vec<u8> {
        let p = self.file(key);
        std::fs::read(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
    }

    /// The zip's sha256, as Terraform's `zh:` lock-file hashes write it.
    pub fn zip_sha256(&self) -> String {
        hex::encode(Sha256::digest(self.read("zip")))
    }

    /// `dist/mirror` (from `scripts/mirror.sh`).
    pub fn mirror_dir(&self) -> PathBuf {
        self.dist.join("mirror")
    }

    /// The `h1:` hash of the zip's contents as the mirror's `VERSION.json` lists it.
    pub fn mirror_h1(&self) -> String {
        let p = self.mirror_dir().join(format!("registry.terraform.io/platform/platform/{}.json", self.version()));
        let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).expect("read mirror VERSION.json")).unwrap();
        let target = format!("{}_{}", self.name("os"), self.name("arch"));
        json["archives"][&target]["hashes"][0].as_str().unwrap_or_else(|| panic!("no h1 hash in {json}")).to_string()
    }

    /// The signing key's long key id (16 hex digits), read by gpg from `signing-key.asc`.
    pub fn key_id(&self) -> String {
        let out = gpg(None, &["--with-colons", "--show-keys", &self.file("public_key").to_string_lossy()]);
        out.assert_success();
        out.stdout
            .lines()
            .find_map(|l| l.strip_prefix("pub:").map(|rest| rest.split(':').nth(3).unwrap_or_default().to_string()))
            .filter(|id| id.len() == 16)
            .unwrap_or_else(|| panic!("no key id in gpg's listing:\n{}", out.describe()))
    }
}

/// The release of the current version: `dist/` as `make release` left it, or built now (once
/// per test binary) by the same script; `dist/mirror` likewise from `scripts/mirror.sh`.
pub fn release() -> &'static Release {
    static RELEASE: OnceLock<Release> = OnceLock::new();
    RELEASE.get_or_init(|| {
        let dist = PathBuf::from(ROOT).join("dist");
        let mut names_cmd = Command::new("bash");
        names_cmd.arg(Path::new(ROOT).join("scripts/release.sh")).arg("--names").env("DIST_DIR", &dist);
        let out = run_command(names_cmd, None, Duration::from_secs(60));
        out.assert_success();
        let names: HashMap<String, String> = out
            .stdout
            .lines()
            .filter_map(|l| l.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
            .collect();
        let release = Release { names, dist };
        let complete = ["zip", "checksums", "signature", "manifest", "public_key"].iter().all(|k| release.file(k).is_file());
        if !complete {
            eprintln!("acceptance: no release of {} in dist/: running scripts/release.sh", release.version());
            let mut build = Command::new("bash");
            build.arg(Path::new(ROOT).join("scripts/release.sh")).env("DIST_DIR", &release.dist);
            run_command(build, None, RELEASE_TIMEOUT).assert_success();
        }
        if !release.mirror_dir().join("registry.terraform.io/platform/platform/index.json").is_file() {
            let mut mirror = Command::new("bash");
            mirror.arg(Path::new(ROOT).join("scripts/mirror.sh")).env("DIST_DIR", &release.dist);
            run_command(mirror, None, RELEASE_TIMEOUT).assert_success();
        }
        release
    })
}

/// Runs gpg with `--batch` in `home` (a throwaway GNUPGHOME) or, without one, in a fresh
/// empty one. gpg is a test prerequisite (scripts/testenv.sh installs it).
pub fn gpg(home: Option<&Path>, args: &[&str]) -> CmdOutput {
    let tmp;
    let home = match home {
        Some(h) => h,
        None => {
            tmp = tempfile::Builder::new().prefix("tf-acc-gpg-").tempdir().expect("temp GNUPGHOME");
            tmp.path()
        }
    };
    let mut cmd = Command::new("gpg");
    cmd.env("GNUPGHOME", home).arg("--batch").args(args);
    run_command(cmd, None, Duration::from_secs(120))
}

/// A detached binary signature of `data` by a new throwaway RSA key: a signature Terraform
/// must refuse when the registry names another key.
pub fn signature_by_another_key(data: &[u8]) -> Vec<u8> {
    let home = tempfile::Builder::new().prefix("tf-acc-gpg-").tempdir().expect("temp GNUPGHOME");
    let h = home.path();
    gpg(
        Some(h),
        &["--pinentry-mode", "loopback", "--passphrase", "", "--quick-generate-key", "someone else <other@localhost>", "rsa2048", "sign", "never"],
    )
    .assert_success();
    let input = h.join("SHA256SUMS");
    std::fs::write(&input, data).unwrap();
    let output = h.join("SHA256SUMS.sig");
    gpg(Some(h), &["--output", &output.to_string_lossy(), "--detach-sign", &input.to_string_lossy()]).assert_success();
    let sig = std::fs::read(&output).expect("read the other key's signature");
    let _ = Command::new("gpgconf").env("GNUPGHOME", h).args(["--kill", "gpg-agent"]).status();
    sig
}

/// Loopback HTTPS: `/.well-known/terraform.json`, `/v1/providers/platform/platform/...`
/// (registry protocol v1), `/files/<release file>` and `/mirror/<path>` (network mirror).
pub struct RegistryServer {
    port: u16,
    files: Arc<Mutex<HashMap<String, Vec<u8>>>>,
    ca_file: PathBuf,
    _dir: tempfile::TempDir,
}

impl RegistryServer {
    #[track_caller]
    pub fn start(release: &Release) -> RegistryServer {
        let dir = tempfile::Builder::new().prefix("tf-acc-registry-").tempdir().expect("temp dir");
        let (ca_pem, tls) = super::fault_proxy::server_tls("tf-acc-registry").expect("registry TLS material");
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, ca_pem).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let port = listener.local_addr().unwrap().port();
        let base = format!("https://127.0.0.1:{port}");

        let mut files: HashMap<String, Vec<u8>> = HashMap::new();
        for key in ["zip", "checksums", "signature"] {
            files.insert(format!("files/{}", release.name(key)), release.read(key));
        }
        let (version, os, arch) = (release.version(), release.name("os"), release.name("arch"));
        let json = |v: serde_json::Value| v.to_string().into_bytes();
        files.insert(".well-known/terraform.json".into(), json(serde_json::json!({ "providers.v1": "/v1/providers/" })));
        files.insert(
            "v1/providers/platform/platform/versions".into(),
            json(serde_json::json!({ "versions": [{
                "version": version, "protocols": ["6.0"], "platforms": [{ "os": os, "arch": arch }]
            }]})),
        );
        let public_key = String::from_utf8(release.read("public_key")).unwrap();
        files.insert(
            format!("v1/providers/platform/platform/{version}/download/{os}/{arch}"),
            json(serde_json::json!({
                "protocols": ["6.0"], "os": os, "arch": arch,
                "filename": release.name("zip"),
                "download_url": format!("{base}/files/{}", release.name("zip")),
                "shasums_url": format!("{base}/files/{}", release.name("checksums")),
                "shasums_signature_url": format!("{base}/files/{}", release.name("signature")),
                "shasum": release.zip_sha256(),
                "signing_keys": { "gpg_public_keys": [{ "key_id": release.key_id(), "ascii_armor": public_key }] },
            })),
        );
        add_tree(&mut files, &release.mirror_dir(), "mirror");

        let files = Arc::new(Mutex::new(files));
        let table = files.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (table, tls) = (table.clone(), tls.clone());
                std::thread::spawn(move || serve(stream, tls, &table));
            }
        });
        RegistryServer { port, files, ca_file, _dir: dir }
    }

    /// Serves `body` instead of the release file named `name` (e.g. a tampered zip).
    pub fn replace_file(&self, name: &str, body: Vec<u8>) {
        let key = format!("files/{name}");
        let mut files = self.files.lock().unwrap();
        assert!(files.contains_key(&key), "no release file {name} is served");
        files.insert(key, body);
    }

    /// The CA certificate (PEM) to hand terraform as `SSL_CERT_FILE`.
    pub fn ca_file(&self) -> &Path {
        &self.ca_file
    }

    /// A CLI configuration that sends `registry.terraform.io` (the host of
    /// `source = "platform/platform"`) to this server, and installs only from registries.
    pub fn registry_cli_config(&self) -> String {
        format!(
            "disable_checkpoint = true\n\nhost \"registry.terraform.io\" {{\n  services = {{\n    \"providers.v1\" = \"https://127.0.0.1:{}/v1/providers/\"\n  }}\n}}\n\nprovider_installation {{\n  direct {{}}\n}}\n",
            self.port
        )
    }

    /// A CLI configuration that installs only from this server's network mirror.
    pub fn network_mirror_cli_config(&self) -> String {
        format!(
            "disable_checkpoint = true\n\nprovider_installation {{\n  network_mirror {{\n    url = \"https://127.0.0.1:{}/mirror/\"\n  }}\n}}\n",
            self.port
        )
    }
}

/// A CLI configuration that installs only from the directory `path` (a filesystem mirror).
pub fn filesystem_mirror_cli_config(path: &Path) -> String {
    format!(
        "disable_checkpoint = true\n\nprovider_installation {{\n  filesystem_mirror {{\n    path    = \"{}\"\n    include = [\"registry.terraform.io/platform/platform\"]\n  }}\n}}\n",
        path.display()
    )
}

/// Every file under `dir`, keyed `prefix/<relative path>`.
fn add_tree(files: &mut HashMap<String, Vec<u8>>, dir: &Path, prefix: &str) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display()));
    for entry in entries.map(Result::unwrap) {
        let name = format!("{prefix}/{}", entry.file_name().to_string_lossy());
        if entry.file_type().unwrap().is_dir() {
            add_tree(files, &entry.path(), &name);
        } else {
            files.insert(name, std::fs::read(entry.path()).unwrap());
        }
    }
}

/// One request per connection (`Connection: close`), GET only.
fn serve(tcp: TcpStream, tls: Arc<rustls::ServerConfig>, files: &Mutex<HashMap<String, Vec<u8>>>) {
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(30)));
    let Ok(conn) = rustls::ServerConnection::new(tls) else { return };
    let mut stream = rustls::StreamOwned::new(conn, tcp);
    let mut reader = BufReader::new(&mut stream);
    let Some((method, path)) = super::read_request_head(&mut reader) else { return };
    let body = if method == "GET" { files.lock().unwrap().get(&path).cloned() } else { None };
    let (status, content_type, body) = match body {
        Some(b) if path.ends_with(".zip") || path.starts_with("files/") => ("200 OK", "application/octet-stream", b),
        Some(b) => ("200 OK", "application/json", b),
        None => ("404 Not Found", "application/json", br#"{"errors":["not found"]}"#.to_vec()),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(&body);
    let _ = stream.flush();
    stream.conn.send_close_notify();
    let _ = stream.flush();
    let mut rest = [0u8; 1];
    let _ = stream.read(&mut rest);
}
