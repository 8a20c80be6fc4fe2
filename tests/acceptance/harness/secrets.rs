//! Helpers for the secrets types: real `sops` and `age-keygen` for encrypted files, the
//! SealedSecret CRD, RSA sealing certificates and unsealing through kubesealpy, namespaces
//! that delete themselves, and leak checks over everything Terraform leaves behind.
//!
//! Environment (falling back to what `scripts/testenv.sh` recorded):
//! - `TF_ACC_SOPS`: the sops binary (else `sops` on PATH);
//! - `TF_ACC_AGE_KEYGEN`: the age-keygen binary (else `age-keygen` on PATH);
//! - `TF_ACC_PYTHON`: a Python with `kubesealpy` and `cryptography`.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use base64::Engine as _;

use super::{command_timeout, env_or_testenv, kubectl, kubectl_stdin, run_command, wait_until, CmdOutput, Workdir};

/// The tool a test needs; a missing one fails the test, saying how to install it:
/// `let sops = require(Sops::find());`.
#[track_caller]
pub fn require<T>(found: Result<T, String>) -> T {
    found.unwrap_or_else(|reason| panic!("missing test tool: {reason}; {}", super::SETUP_HINT))
}

/// `ENV` (or what testenv recorded), else `fallback` on PATH.
fn tool(env: &str, fallback: &str) -> Result<PathBuf, String> {
    if let Some(path) = env_or_testenv(env) {
        let path = PathBuf::from(path);
        return if path.is_file() { Ok(path) } else { Err(format!("{env}={} does not exist", path.display())) };
    }
    std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|d| d.join(fallback)).find(|p| p.is_file()))
        .ok_or_else(|| format!("{env} is unset and there is no `{fallback}` on PATH ({})", super::SETUP_HINT))
}

/// A distinctive random value (`prefix-` and 32 hex digits) to look for in logs and state.
pub fn random_secret(prefix: &str) -> String {
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes)).expect("read /dev/urandom");
    format!("{prefix}-{}", hex::encode(bytes))
}

pub fn base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Where the provider's age keys may come from besides an explicit setting: an empty
/// `XDG_CONFIG_HOME` keeps a developer's `~/.config/sops/age/keys.txt` out of the tests.
pub fn isolate_age_keys(work: &mut Workdir) {
    let config_home = work.root().join("xdg-config");
    std::fs::create_dir_all(&config_home).expect("create XDG_CONFIG_HOME");
    work.set_env("XDG_CONFIG_HOME", &config_home.display().to_string());
}

/// `terraform { required_providers }` and a `platform` provider block, with a `secrets`
/// block when `secrets` is given (its body, e.g. `age_key_file = "..."`).
pub fn provider_config(secrets: Option<&str>) -> String {
    match secrets {
        Some(body) => format!("{}provider \"platform\" {{\n  secrets {{\n    {body}\n  }}\n}}\n", required_providers!()),
        None => format!("{}provider \"platform\" {{}}\n", required_providers!()),
    }
}

/// An HCL map literal of string values: `{ "k" = "v", ... }`.
pub fn hcl_map(entries: &[(&str, &str)]) -> String {
    let body: Vec<String> = entries.iter().map(|(k, v)| format!("{k:?} = {v:?}")).collect();
    format!("{{ {} }}", body.join(", "))
}

// ---------------------------------------------------------------------------------------
// sops and age
// ---------------------------------------------------------------------------------------

/// The real `sops` and `age-keygen`.
pub struct Sops {
    sops: PathBuf,
    age_keygen: PathBuf,
}

/// An age identity file made by `age-keygen`.
#[derive(Clone, Debug)]
pub struct AgeKey {
    /// The identity file (`# public key: ...` and `AGE-SECRET-KEY-1...`).
    pub path: PathBuf,
    /// `age1...`
    pub recipient: String,
    /// `AGE-SECRET-KEY-1...`
    pub identity: String,
}

impl Sops {
    pub fn find() -> Result<Sops, String> {
        Ok(Sops { sops: tool("TF_ACC_SOPS", "sops")?, age_keygen: tool("TF_ACC_AGE_KEYGEN", "age-keygen")? })
    }

    /// `work` with its own age key and no other key in reach (see [`isolate_age_keys`]).
    pub fn keyed_workdir(&self, mut work: Workdir) -> (Workdir, AgeKey) {
        isolate_age_keys(&mut work);
        let key = self.age_key(work.root(), "age.txt");
        (work, key)
    }

    /// `age-keygen -o DIR/NAME`.
    #[track_caller]
    pub fn age_key(&self, dir: &Path, name: &str) -> AgeKey {
        std::fs::create_dir_all(dir).expect("create key dir");
        let path = dir.join(name);
        let mut cmd = Command::new(&self.age_keygen);
        cmd.arg("-o").arg(&path);
        run_command(cmd, None, command_timeout()).assert_success();
        let text = std::fs::read_to_string(&path).expect("read age key");
        let recipient = text
            .lines()
            .find_map(|l| l.strip_prefix("# public key: "))
            .unwrap_or_else(|| panic!("no public key line in {}:\n{text}", path.display()))
            .trim()
            .to_string();
        let identity = text.lines().find(|l| l.starts_with("AGE-SECRET-KEY-1")).expect("identity line").trim().to_string();
        AgeKey { path, recipient, identity }
    }

    /// `sops encrypt` of `plaintext` (`format`: yaml, json, dotenv or binary) for
    /// `recipients`, written to `dest`. The plaintext goes through a temp file that is
    /// removed at once; `extra` adds flags such as `--encrypted-regex`.
    #[track_caller]
    pub fn encrypt(&self, recipients: &[&AgeKey], format: &str, plaintext: &[u8], dest: &Path, extra: &[&str]) {
        let plain = tempfile::Builder::new().prefix("sops-plain-").tempfile().expect("temp plaintext");
        std::fs::write(plain.path(), plaintext).expect("write plaintext");
        let recipients: Vec<&str> = recipients.iter().map(|k| k.recipient.as_str()).collect();
        let mut cmd = Command::new(&self.sops);
        cmd.args(["--config", "/dev/null", "encrypt", "--age", &recipients.join(",")])
            .args(["--input-type", format, "--output-type", format])
            .args(extra)
            .arg("--output")
            .arg(dest)
            .arg(plain.path())
            .env("SOPS_DISABLE_VERSION_CHECK", "1");
        run_command(cmd, None, command_timeout()).assert_success();
    }

    /// `sops decrypt` with `key`: what sops itself makes of a file.
    pub fn decrypt(&self, key: &AgeKey, path: &Path, format: &str) -> CmdOutput {
        let mut cmd = Command::new(&self.sops);
        cmd.args(["--config", "/dev/null", "decrypt", "--input-type", format, "--output-type", format])
            .arg(path)
            .env("SOPS_AGE_KEY_FILE", &key.path)
            .env_remove("SOPS_AGE_KEY")
            .env("SOPS_DISABLE_VERSION_CHECK", "1");
        run_command(cmd, None, command_timeout())
    }
}

/// Changes one character inside the first `ENC[...]` whose line contains `marker`, keeping
/// it valid base64, so the ciphertext no longer authenticates.
#[track_caller]
pub fn tamper_enc_data(text: &str, marker: &str) -> String {
    let line_start = text.find(marker).unwrap_or_else(|| panic!("{marker:?} not in:\n{text}"));
    let data = line_start + text[line_start..].find("ENC[AES256_GCM,data:").expect("ENC[ after the marker") + "ENC[AES256_GCM,data:".len();
    let mut bytes = text.as_bytes().to_vec();
    bytes[data] = if bytes[data] == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).unwrap()
}

// ---------------------------------------------------------------------------------------
// Kubernetes objects
// ---------------------------------------------------------------------------------------

/// A namespace created with kubectl for one test; deleted (without waiting) on drop, also
/// when the test panics.
pub struct TestNamespace {
    pub name: String,
}

impl TestNamespace {
    #[track_caller]
    pub fn create(prefix: &str) -> TestNamespace {
        let name = super::unique_name(prefix);
        kubectl(&["create", "namespace", &name]).assert_success();
        TestNamespace { name }
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        let _ = kubectl(&["delete", "namespace", &self.name, "--wait=false", "--ignore-not-found"]);
    }
}

/// `kubectl get KIND NAME -n NAMESPACE -o json`, `None` when absent.
#[track_caller]
pub fn live_object(kind: &str, namespace: &str, name: &str) -> Option<serde_json::Value> {
    let out = kubectl(&["get", kind, name, "-n", namespace, "-o", "json", "--ignore-not-found"]);
    out.assert_success();
    (!out.stdout.trim().is_empty()).then(|| out.json())
}

/// A live Secret's values, base64-decoded.
#[track_caller]
pub fn secret_values(namespace: &str, name: &str) -> BTreeMap<String, Vec<u8>> {
    let live = live_object("secret", namespace, name).unwrap_or_else(|| panic!("Secret {namespace}/{name} does not exist"));
    live["data"]
        .as_object()
        .map(|data| {
            data.iter()
                .map(|(k, v)| {
                    let bytes = base64::engine::general_purpose::STANDARD.decode(v.as_str().unwrap_or_default()).expect("base64 value");
                    (k.clone(), bytes)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// One live Secret value as text.
#[track_caller]
pub fn secret_text(namespace: &str, name: &str, key: &str) -> Option<String> {
    secret_values(namespace, name).get(key).map(|v| String::from_utf8_lossy(v).into_owned())
}

/// Replaces one value of a live Secret as another client would (`kubectl patch`).
#[track_caller]
pub fn patch_secret_value(namespace: &str, name: &str, key: &str, value: &str) {
    let patch = serde_json::json!({ "data": { key: base64(value.as_bytes()) } }).to_string();
    kubectl(&["patch", "secret", name, "-n", namespace, "--type=merge", "-p", &patch]).assert_success();
}

/// Applies the SealedSecret CRD fixture (server-side, idempotent) once per test binary
/// and waits until it is served.
pub fn ensure_sealed_secret_crd() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let text = super::fixture("sealedsecrets-crd.yaml");
        kubectl_stdin(&["apply", "--server-side", "--force-conflicts", "--field-manager=acceptance-tests", "-f", "-"], &text)
            .assert_success();
        kubectl(&["wait", "--for=condition=Established", "--timeout=60s", "crd/sealedsecrets.bitnami.com"]).assert_success();
        // Established can precede discovery by a moment.
        wait_until("SealedSecrets served", Duration::from_secs(60), || {
            let out = kubectl(&["get", "sealedsecrets", "--all-namespaces", "-o", "name"]);
            if out.success() { Ok(()) } else { Err(out.stderr) }
        });
    });
}

// ---------------------------------------------------------------------------------------
// Sealed Secrets: a controller key pair and kubesealpy
// ---------------------------------------------------------------------------------------

/// The Python of `TF_ACC_PYTHON`, once checked to have kubesealpy and cryptography.
pub fn sealing_python() -> Result<PathBuf, String> {
    static CHECKED: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    CHECKED
        .get_or_init(|| {
            let python = tool("TF_ACC_PYTHON", "python3")?;
            let mut cmd = Command::new(&python);
            cmd.args(["-c", "import kubesealpy.unsealer, cryptography"]);
            let out = run_command(cmd, None, command_timeout());
            if out.success() {
                Ok(python)
            } else {
                Err(format!("{} lacks kubesealpy or cryptography ({}): {}", python.display(), super::SETUP_HINT, out.stderr.trim()))
            }
        })
        .clone()
}

const GENERATE_KEY_PAIR: &str = r#"
import datetime, sys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sealed-secret"), x509.NameAttribute(NameOID.ORGANIZATION_NAME, "sealed-secret")])
now = datetime.datetime.now(datetime.timezone.utc)
cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=3650)).sign(key, hashes.SHA256()))
open(sys.argv[1], "wb").write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
open(sys.argv[2], "wb").write(cert.public_bytes(serialization.Encoding.PEM))
"#;

/// Reads a SealedSecret as JSON on stdin; prints `{"data": {key: plaintext}}` or
/// `{"error": ...}`. With `NAMESPACE NAME` arguments it unseals as if the object had that
/// namespace and name (to check what a scope binds the ciphertext to).
const UNSEAL: &str = r#"
import base64, json, sys
from kubesealpy.models import SealedSecret
from kubesealpy.unsealer import Unsealer
obj = json.load(sys.stdin)
if len(sys.argv) > 2:
    obj["metadata"]["namespace"], obj["metadata"]["name"] = sys.argv[2], sys.argv[3]
try:
    secret = Unsealer.from_private_key_file(sys.argv[1]).unseal(SealedSecret.model_validate(obj))
    data = {k: base64.b64decode(v).decode("utf-8", "replace") for k, v in (secret.data or {}).items()}
    print(json.dumps({"data": data, "type": secret.type}))
except Exception as e:
    print(json.dumps({"error": "%s: %s" % (type(e).__name__, e)}))
"#;

/// An RSA key pair standing in for the Sealed Secrets controller's.
pub struct SealingKeyPair {
    python: PathBuf,
    unseal_script: PathBuf,
    pub private_key: PathBuf,
    pub certificate_path: PathBuf,
    pub certificate_pem: String,
}

impl SealingKeyPair {
    /// A 2048-bit key and a self-signed certificate in `dir`.
    #[track_caller]
    pub fn generate(python: &Path, dir: &Path) -> SealingKeyPair {
        std::fs::create_dir_all(dir).expect("create key dir");
        let (private_key, certificate_path) = (dir.join("sealing.key"), dir.join("sealing.crt"));
        let (generate_script, unseal_script) = (dir.join("generate_sealing_key.py"), dir.join("unseal.py"));
        std::fs::write(&generate_script, GENERATE_KEY_PAIR).expect("write script");
        std::fs::write(&unseal_script, UNSEAL).expect("write script");
        let mut cmd = Command::new(python);
        cmd.arg(&generate_script).arg(&private_key).arg(&certificate_path);
        run_command(cmd, None, command_timeout()).assert_success();
        let certificate_pem = std::fs::read_to_string(&certificate_path).expect("read certificate");
        SealingKeyPair { python: python.to_path_buf(), unseal_script, private_key, certificate_path, certificate_pem }
    }

    fn run_unseal(&self, sealed: &serde_json::Value, as_object: Option<(&str, &str)>) -> Result<BTreeMap<String, String>, String> {
        let mut cmd = Command::new(&self.python);
        cmd.arg(&self.unseal_script).arg(&self.private_key);
        if let Some((namespace, name)) = as_object {
            cmd.args([namespace, name]);
        }
        let out = run_command(cmd, Some(sealed.to_string().as_bytes()), command_timeout());
        out.assert_success();
        let answer = out.json();
        match answer["data"].as_object() {
            Some(data) => Ok(data.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string())).collect()),
            None => Err(answer["error"].as_str().unwrap_or("no answer").to_string()),
        }
    }

    /// Unseals a live SealedSecret (scope from its annotations) with the private key, as
    /// the controller would.
    #[track_caller]
    pub fn unseal(&self, sealed: &serde_json::Value) -> BTreeMap<String, String> {
        self.run_unseal(sealed, None).unwrap_or_else(|e| panic!("kubesealpy cannot unseal {sealed}: {e}"))
    }

    /// Unsealing as if the object were `namespace/name`: `Err` when the scope forbids it.
    pub fn unseal_as(&self, sealed: &serde_json::Value, namespace: &str, name: &str) -> Result<BTreeMap<String, String>, String> {
        self.run_unseal(sealed, Some((namespace, name)))
    }
}

// ---------------------------------------------------------------------------------------
// Leak checks
// ---------------------------------------------------------------------------------------

/// Everything a run left readable (command output, logs, state, `show -json`), searched
/// for secret values in clear text and base64.
#[derive(Default)]
pub struct Evidence {
    items: Vec<(String, String)>,
}

impl Evidence {
    pub fn add(&mut self, what: &str, text: impl Into<String>) -> &mut Self {
        self.items.push((what.to_string(), text.into()));
        self
    }

    pub fn add_output(&mut self, what: &str, out: &CmdOutput) -> &mut Self {
        self.add(&format!("{what} stdout"), out.stdout.clone()).add(&format!("{what} stderr"), out.stderr.clone())
    }

    #[track_caller]
    pub fn add_file(&mut self, what: &str, path: &Path) -> &mut Self {
        let text = std::fs::read(path).unwrap_or_else(|e| panic!("read {} ({what}): {e}", path.display()));
        self.add(what, String::from_utf8_lossy(&text).into_owned())
    }

    /// The state file and `terraform show -json`.
    #[track_caller]
    pub fn add_state(&mut self, work: &Workdir) -> &mut Self {
        let show = work.run(&["show", "-json", "-no-color"]);
        show.assert_success();
        self.add_output("show -json", &show).add_file("terraform.tfstate", &work.path().join("terraform.tfstate"))
    }

    pub fn contains(&self, what: &str, needle: &str) -> bool {
        self.items.iter().any(|(w, text)| w == what && text.contains(needle))
    }

    /// Panics naming the place when any `secret` (or its base64) appears anywhere.
    #[track_caller]
    pub fn assert_absent(&self, secrets: &[&str]) {
        for secret in secrets {
            let encoded = base64(secret.as_bytes());
            for (what, text) in &self.items {
                for (form, needle) in [("in clear text", secret.to_string()), ("base64-encoded", encoded.clone())] {
                    if let Some(at) = text.find(&needle) {
                        let start = text[..at].char_indices().rev().nth(200).map_or(0, |(i, _)| i);
                        let end = (at + needle.len() + 200).min(text.len());
                        let end = (end..=text.len()).find(|&i| text.is_char_boundary(i)).unwrap_or(text.len());
                        panic!("secret {secret:?} leaked {form} into {what}:\n...{}...", &text[start..end]);
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Configurations and sample files
// ---------------------------------------------------------------------------------------

/// A `platform_secret` resource whose label is also the Secret's name.
pub fn platform_secret(name: &str, namespace: &str, body: &str) -> String {
    format!("resource \"platform_secret\" {name:?} {{\n  namespace = {namespace:?}\n  name      = {name:?}\n  {body}\n}}\n")
}

/// A YAML document with a nested map, an int, a bool, a list and two random secrets.
pub struct SampleYaml {
    pub password: String,
    pub token: String,
}

impl SampleYaml {
    pub fn new() -> SampleYaml {
        SampleYaml { password: random_secret("pw"), token: random_secret("tok") }
    }

    pub fn text(&self) -> String {
        format!(
            "database:\n  user: admin\n  password: {}\nport: 5432\nenabled: true\nhosts:\n  - a.example\n  - b.example\ntoken: {}\n",
            self.password, self.token
        )
    }

    /// The values as `platform_sops_file` flattens them.
    pub fn flattened(&self) -> BTreeMap<String, String> {
        [
            ("database.user", "admin"),
            ("database.password", self.password.as_str()),
            ("port", "5432"),
            ("enabled", "true"),
            ("hosts.0", "a.example"),
            ("hosts.1", "b.example"),
            ("token", self.token.as_str()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    /// Encrypts the document for `key` into `dest`.
    #[track_caller]
    pub fn encrypt(&self, sops: &Sops, key: &AgeKey, dest: &Path) {
        sops.encrypt(&[key], "yaml", self.text().as_bytes(), dest, &[]);
    }
}

impl Default for SampleYaml {
    fn default() -> Self {
        Self::new()
    }
}

/// Panics unless `out` failed mentioning every one of `needles`. Terraform wraps diagnostic
/// text at spaces, so runs of whitespace compare equal to one space.
#[track_caller]
pub fn assert_failure_mentions(out: &CmdOutput, what: &str, needles: &[&str]) {
    let flat = |text: &str| text.split_whitespace().collect::<Vec<_>>().join(" ");
    let text = flat(&out.combined());
    for needle in needles {
        if out.success() || !text.contains(&flat(needle)) {
            panic!("{what}: expected a failure mentioning {needle:?}:\n{}", out.describe());
        }
    }
}
