//! Real authoritative DNS servers for the DNS-record acceptance tests, each serving the zone
//! `acc.test` on 127.0.0.1 (UDP and TCP, a free port), started once per test binary on first
//! use, in its own temp dir, and killed when the test binary exits (the control plane's bash
//! reaper, see `control_plane`):
//!
//! - [`bind()`]: BIND 9 (`named -g`), zone `acc.test` primary, dynamic updates (RFC 2136)
//!   allowed for two TSIG keys made up per run: `tf-key.` (hmac-sha256) and
//!   `tf-key-sha512.` (hmac-sha512);
//! - [`knot()`]: Knot DNS (`knotd`), same zone and keys, updates allowed by an `update` ACL;
//! - [`powerdns()`]: PowerDNS authoritative with the gsqlite3 backend and its HTTP API on
//!   (random API key, server id `localhost`), zone `acc.test` of kind Native created through
//!   the API; packet and query caches off, so that what the API wrote is what DNS answers.
//!
//! Every zone starts with an SOA (`ns.acc.test. hostmaster.acc.test. ...`), NS `ns.acc.test.`
//! and `ns.acc.test.` A 127.0.0.1. Nothing listens anywhere but 127.0.0.1 and nothing sends
//! NOTIFY or queries elsewhere. [`DnsServer::dig`] reads what a server really holds (dig over
//! TCP), [`DnsServer::set_rrset`] / [`DnsServer::delete_rrset`] change it out of band (nsupdate
//! with the TSIG key, or the PowerDNS API). A missing program (`named`, `knotd`, `pdns_server`,
//! `sqlite3`, `dig`, `nsupdate`) fails the test with [`SETUP_HINT`]. `TF_ACC_KEEP` keeps the
//! temp dirs (configs, logs, zone files).

use std::io::Write;
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use base64::Engine as _;

use super::control_plane::{
    free_ports, is_executable, random_hex, spawn, spawn_reaper, start_rig, tail_log, wait_for, Proc,
};
use super::plain_http;
use super::{run_command, CmdOutput, SETUP_HINT};

/// The zone every server serves.
const ZONE: &str = "acc.test";
/// Name of the hmac-sha256 key of the RFC 2136 servers.
const KEY_SHA256: &str = "tf-key.";
/// Name of the hmac-sha512 key of the RFC 2136 servers.
const KEY_SHA512: &str = "tf-key-sha512.";
/// How long a server may take to answer its first SOA query.
const READY_TIMEOUT: Duration = Duration::from_secs(90);
/// How long one dig / nsupdate / API call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DnsKind {
    Bind,
    Knot,
    PowerDns,
}

impl DnsKind {
    fn slug(self) -> &'static str {
        match self {
            DnsKind::Bind => "bind",
            DnsKind::Knot => "knot",
            DnsKind::PowerDns => "powerdns",
        }
    }
}

/// BIND 9, TSIG-authorised dynamic updates (keys `tf-key.` hmac-sha256, `tf-key-sha512.`).
#[track_caller]
pub fn bind() -> &'static DnsServer {
    static SERVER: OnceLock<Result<DnsServer, String>> = OnceLock::new();
    shared(&SERVER, DnsKind::Bind)
}

/// Knot DNS, TSIG-authorised dynamic updates (keys `tf-key.` hmac-sha256, `tf-key-sha512.`).
#[track_caller]
pub fn knot() -> &'static DnsServer {
    static SERVER: OnceLock<Result<DnsServer, String>> = OnceLock::new();
    shared(&SERVER, DnsKind::Knot)
}

/// PowerDNS authoritative, gsqlite3 backend, HTTP API on.
#[track_caller]
pub fn powerdns() -> &'static DnsServer {
    static SERVER: OnceLock<Result<DnsServer, String>> = OnceLock::new();
    shared(&SERVER, DnsKind::PowerDns)
}

/// Starts the server on first use; a failed start is remembered, so that every test using the
/// server fails with the same message instead of retrying.
#[track_caller]
fn shared(cell: &'static OnceLock<Result<DnsServer, String>>, kind: DnsKind) -> &'static DnsServer {
    match cell.get_or_init(|| {
        let started = Instant::now();
        let result = DnsServer::start(kind);
        if let Ok(s) = &result {
            eprintln!(
                "acceptance: {} DNS server on {} ready in {:.1?} (files in {})",
                kind.slug(),
                s.address(),
                started.elapsed(),
                s.dir.display()
            );
        }
        result
    }) {
        Ok(s) => s,
        Err(e) => panic!("the {} DNS server for the acceptance tests is not available:\n{e}", kind.slug()),
    }
}

struct Tsig {
    secret_sha256: String,
    secret_sha512: String,
}

struct Api {
    url: String,
    port: u16,
    key: String,
}

pub struct DnsServer {
    kind: DnsKind,
    port: u16,
    tsig: Option<Tsig>,
    api: Option<Api>,
    dig: PathBuf,
    nsupdate: PathBuf,
    /// Temp dir with configuration, zone files, data and `*.log`.
    dir: PathBuf,
    log: PathBuf,
    processes: Mutex<Vec<Proc>>,
    /// Write end of the reaper's pipe; never written (but for "keep"), closed at exit.
    _reaper: ChildStdin,
}

impl std::fmt::Debug for DnsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DnsServer").field("kind", &self.kind).field("port", &self.port).field("dir", &self.dir).finish()
    }
}

impl DnsServer {
    pub fn kind(&self) -> DnsKind {
        self.kind
    }

    /// `acc.test` (no trailing dot).
    pub fn zone(&self) -> &str {
        ZONE
    }

    /// `127.0.0.1:PORT`, DNS over UDP and TCP.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The hmac-sha256 key's name, `tf-key.` (bind and knot only).
    #[track_caller]
    pub fn tsig_key_name(&self) -> &str {
        self.tsig();
        KEY_SHA256
    }

    /// `hmac-sha256` (bind and knot only).
    #[track_caller]
    pub fn tsig_algorithm(&self) -> &str {
        self.tsig();
        "hmac-sha256"
    }

    /// The hmac-sha256 key's secret, base64 (bind and knot only).
    #[track_caller]
    pub fn tsig_secret(&self) -> &str {
        &self.tsig().secret_sha256
    }

    /// Name and base64 secret of the second key, hmac-sha512, also allowed to update.
    #[track_caller]
    pub fn tsig_key_sha512(&self) -> (&str, &str) {
        (KEY_SHA512, &self.tsig().secret_sha512)
    }

    /// `http://127.0.0.1:PORT` of the PowerDNS API (server id `localhost`).
    #[track_caller]
    pub fn api_url(&self) -> &str {
        &self.api().url
    }

    /// The PowerDNS API key (`X-API-Key`), random per run.
    #[track_caller]
    pub fn api_key(&self) -> &str {
        &self.api().key
    }

    /// Temp dir with the server's configuration, zone data and log.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The server's log (stdout and stderr).
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The fully qualified name (trailing dot) of `name` relative to the zone; `@` (or "") is
    /// the apex, a name ending in `.` is taken as already absolute.
    pub fn fqdn(&self, name: &str) -> String {
        match name {
            "" | "@" => format!("{ZONE}."),
            n if n.ends_with('.') => n.to_string(),
            n => format!("{n}.{ZONE}."),
        }
    }

    /// What the server really holds: `dig +tcp +norecurse @127.0.0.1 -p PORT <fqdn> <TYPE>`,
    /// the rdata of the answer (and, for a delegation's NS, authority) section's records of
    /// that name and type, sorted; an empty Vec
    /// on NXDOMAIN/NODATA. TXT as dig prints it (quoted chunks). Panics on other statuses.
    #[track_caller]
    pub fn dig(&self, name: &str, rtype: &str) -> Vec<String> {
        let mut values: Vec<String> = self.dig_records(name, rtype).into_iter().map(|(_, rdata)| rdata).collect();
        values.sort();
        values
    }

    /// The TTL of the answer (None if no answer).
    #[track_caller]
    pub fn dig_ttl(&self, name: &str, rtype: &str) -> Option<u32> {
        self.dig_records(name, rtype).first().map(|(ttl, _)| *ttl)
    }

    /// Out-of-band change, as an admin or external-dns would: replaces the RRset with
    /// `values` (rdata in zone-file presentation format, which is also PowerDNS content
    /// format: TXT quoted, names with trailing dot). bind/knot: one nsupdate with the
    /// hmac-sha256 key; PowerDNS: API PATCH, changetype REPLACE.
    #[track_caller]
    pub fn set_rrset(&self, name: &str, rtype: &str, ttl: u32, values: &[&str]) {
        let fqdn = self.fqdn(name);
        let rtype = rtype.to_ascii_uppercase();
        if self.kind == DnsKind::PowerDns {
            let records: Vec<serde_json::Value> =
                values.iter().map(|v| serde_json::json!({ "content": v, "disabled": false })).collect();
            self.pdns_patch(serde_json::json!({ "rrsets": [{
                "name": fqdn, "type": rtype, "ttl": ttl, "changetype": "REPLACE", "records": records,
            }]}));
            return;
        }
        let mut commands = format!("update delete {fqdn} {rtype}\n");
        for v in values {
            commands.push_str(&format!("update add {fqdn} {ttl} {rtype} {v}\n"));
        }
        let out = self.nsupdate_with_key(self.tsig_algorithm(), KEY_SHA256, self.tsig_secret(), &commands);
        if !out.success() {
            panic!(
                "set_rrset {fqdn} {rtype} on {}: nsupdate failed:\n{}{}",
                self.kind.slug(),
                out.describe(),
                self.state()
            );
        }
    }

    /// Out-of-band delete of the RRset.
    #[track_caller]
    pub fn delete_rrset(&self, name: &str, rtype: &str) {
        let fqdn = self.fqdn(name);
        let rtype = rtype.to_ascii_uppercase();
        if self.kind == DnsKind::PowerDns {
            self.pdns_patch(serde_json::json!({ "rrsets": [{
                "name": fqdn, "type": rtype, "changetype": "DELETE",
            }]}));
            return;
        }
        let out = self.nsupdate_with_key(
            self.tsig_algorithm(),
            KEY_SHA256,
            self.tsig_secret(),
            &format!("update delete {fqdn} {rtype}\n"),
        );
        if !out.success() {
            panic!(
                "delete_rrset {fqdn} {rtype} on {}: nsupdate failed:\n{}{}",
                self.kind.slug(),
                out.describe(),
                self.state()
            );
        }
    }

    /// Runs `nsupdate -v -y ALGORITHM:KEY_NAME:SECRET` against this server (bind and knot)
    /// with `server`/`zone` lines, then `commands` (e.g. `update add ...` lines), then `send`;
    /// returns what it did without judging it (e.g. to check that a wrong key is refused).
    #[track_caller]
    pub fn nsupdate_with_key(&self, algorithm: &str, key_name: &str, secret: &str, commands: &str) -> CmdOutput {
        self.tsig();
        let script = format!("server 127.0.0.1 {}\nzone {ZONE}.\n{}\nsend\n", self.port, commands.trim_end());
        let mut cmd = Command::new(&self.nsupdate);
        cmd.arg("-v").arg("-t").arg("20").arg("-y").arg(format!("{algorithm}:{key_name}:{secret}"));
        run_command(cmd, Some(script.as_bytes()), CALL_TIMEOUT)
    }

    /// A request to the PowerDNS API (`path` from `/api/v1/...`, JSON body) with the API key;
    /// returns the status and body. Panics only when the API cannot be reached.
    #[track_caller]
    pub fn api_request(&self, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
        let api = self.api();
        http_request(api.port, method, path, &api.key, body)
            .unwrap_or_else(|e| panic!("{method} {}{path}: {e}{}", api.url, self.state()))
    }

    /// Panics (with the log tail) if the server process has exited.
    #[track_caller]
    pub fn assert_alive(&self) {
        let mut procs = self.processes.lock().unwrap_or_else(|e| e.into_inner());
        for p in procs.iter_mut() {
            if let Ok(Some(status)) = p.child.try_wait() {
                panic!("{} exited ({status}); log tail:\n{}", p.name, tail_log(&p.log, 60));
            }
        }
    }

    // ---------------------------------------------------------------- internals

    #[track_caller]
    fn tsig(&self) -> &Tsig {
        self.tsig.as_ref().unwrap_or_else(|| {
            panic!("the {} DNS server takes no RFC 2136 updates (no TSIG key); use its HTTP API", self.kind.slug())
        })
    }

    #[track_caller]
    fn api(&self) -> &Api {
        self.api
            .as_ref()
            .unwrap_or_else(|| panic!("the {} DNS server has no HTTP API (PowerDNS only)", self.kind.slug()))
    }

    /// Whether the process still runs, and the log tail, for failure messages.
    fn state(&self) -> String {
        let mut procs = self.processes.lock().unwrap_or_else(|e| e.into_inner());
        let mut text = String::new();
        for p in procs.iter_mut() {
            let status = match p.child.try_wait() {
                Ok(Some(status)) => format!("EXITED ({status})"),
                _ => "running".to_string(),
            };
            text.push_str(&format!(
                "\n--- {} ({status}), log {} ---\n{}",
                p.name,
                p.log.display(),
                tail_log(&p.log, 30)
            ));
        }
        text
    }

    #[track_caller]
    fn pdns_patch(&self, body: serde_json::Value) {
        let path = format!("/api/v1/servers/localhost/zones/{ZONE}.");
        // PowerDNS answers 500 when its SQLite database is locked by a write of another
        // test's (its log says "database is locked"); the write is tried again, as the
        // provider retries a 5xx.
        let mut attempts = 0;
        loop {
            attempts += 1;
            let (status, text) = self.api_request("PATCH", &path, Some(&body.to_string()));
            match status {
                204 => return,
                500 if attempts < 5 => std::thread::sleep(Duration::from_millis(200 * attempts)),
                _ => panic!("PATCH {path} {body}: HTTP {status} (attempt {attempts}): {text}{}", self.state()),
            }
        }
    }

    /// (ttl, rdata) of the answer records of `name`/`rtype`, in dig's order.
    #[track_caller]
    fn dig_records(&self, name: &str, rtype: &str) -> Vec<(u32, String)> {
        let fqdn = self.fqdn(name);
        let out = dig_query(&self.dig, self.port, &fqdn, rtype, 5, 2);
        let (status, records) = parse_dig(&out).unwrap_or_else(|e| {
            panic!("dig {fqdn} {rtype} on {}: {e}\n{}{}", self.kind.slug(), out.describe(), self.state())
        });
        match status.as_str() {
            "NOERROR" | "NXDOMAIN" => {}
            s => panic!("dig {fqdn} {rtype} on {}: status {s}\n{}{}", self.kind.slug(), out.describe(), self.state()),
        }
        records
            .into_iter()
            .filter(|r| r.name.eq_ignore_ascii_case(&fqdn) && r.rtype.eq_ignore_ascii_case(rtype))
            .map(|r| (r.ttl, r.rdata))
            .collect()
    }

    // ---------------------------------------------------------------- start

    fn start(kind: DnsKind) -> Result<DnsServer, String> {
        let dig = find_program("dig")?;
        let nsupdate = find_program("nsupdate")?;
        let programs: Vec<PathBuf> = match kind {
            DnsKind::Bind => vec![find_program("named")?],
            DnsKind::Knot => vec![find_program("knotd")?],
            DnsKind::PowerDns => {
                if !Path::new(PDNS_SQLITE_SCHEMA).is_file() {
                    return Err(format!("{PDNS_SQLITE_SCHEMA} missing (package pdns-backend-sqlite3): {SETUP_HINT}"));
                }
                vec![find_program("pdns_server")?, find_program("sqlite3")?]
            }
        };

        let keep = std::env::var_os("TF_ACC_KEEP").is_some_and(|v| !v.is_empty() && v != "0");
        let dir = tempfile::Builder::new()
            .prefix(&format!("tf-acc-dns-{}-", kind.slug()))
            .tempdir()
            .map_err(|e| format!("temp dir: {e}"))?
            .keep();
        let reaper = spawn_reaper(&dir, keep)?;
        if keep {
            eprintln!("acceptance: {} DNS server files kept in {}", kind.slug(), dir.display());
        }
        let tsig = match kind {
            DnsKind::Bind | DnsKind::Knot => {
                Some(Tsig { secret_sha256: random_base64(32), secret_sha512: random_base64(64) })
            }
            DnsKind::PowerDns => None,
        };
        let api_key = random_hex(20);

        let mut reaper = reaper;
        let what = format!("{} DNS server", kind.slug());
        let ((port, api_port), procs) = start_rig(&what, &dir, &mut reaper, |procs| {
            dns_port().and_then(|port| {
                let api_port = match kind {
                    DnsKind::PowerDns => Some(free_ports(1)?[0]),
                    _ => None,
                };
                match kind {
                    DnsKind::Bind => start_bind(&programs[0], &dir, port, tsig.as_ref().unwrap(), procs)?,
                    DnsKind::Knot => start_knot(&programs[0], &dir, port, tsig.as_ref().unwrap(), procs)?,
                    DnsKind::PowerDns => {
                        start_powerdns(&programs[0], &programs[1], &dir, port, api_port.unwrap(), &api_key, procs)?
                    }
                }
                wait_for(
                    &format!("{} to answer SOA {ZONE}. on port {port}", kind.slug()),
                    READY_TIMEOUT,
                    procs,
                    || soa_answers(&dig, port),
                )?;
                Ok((port, api_port))
            })
        })?;
        let log = procs.first().map(|p| p.log.clone()).unwrap_or_default();
        Ok(DnsServer {
            kind,
            port,
            tsig,
            api: api_port.map(|p| Api { url: format!("http://127.0.0.1:{p}"), port: p, key: api_key }),
            dig,
            nsupdate,
            dir,
            log,
            processes: Mutex::new(procs),
            _reaper: reaper,
        })
    }
}

const PDNS_SQLITE_SCHEMA: &str = "/usr/share/pdns-backend-sqlite3/schema/schema.sqlite3.sql";

/// `program` on PATH or in the sbin directories (not always on a user's PATH).
fn find_program(program: &str) -> Result<PathBuf, String> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/bin", "/sbin", "/bin", "/usr/local/sbin", "/usr/local/bin"].map(PathBuf::from))
        .map(|d| d.join(program))
        .find(|p| is_executable(p))
        .ok_or_else(|| format!("`{program}` not found on PATH or in /usr/sbin: {SETUP_HINT}"))
}

fn random_base64(bytes: usize) -> String {
    let raw = hex::decode(random_hex(bytes)).expect("hex from random_hex");
    base64::engine::general_purpose::STANDARD.encode(raw)
}

/// A port of 127.0.0.1 free for both TCP and UDP (at the time of asking).
fn dns_port() -> Result<u16, String> {
    for _ in 0..50 {
        let port = free_ports(1)?[0];
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    Err("no port of 127.0.0.1 free for both TCP and UDP after 50 tries".into())
}

fn write_file(path: &Path, content: &str) -> Result<(), String> {
    std::fs::write(path, content).map_err(|e| format!("{}: {e}", path.display()))
}

fn p(path: &Path) -> String {
    path.display().to_string()
}

/// The zone file both RFC 2136 servers start from.
fn zone_file() -> String {
    format!(
        "$ORIGIN {ZONE}.\n$TTL 300\n@ IN SOA ns.{ZONE}. hostmaster.{ZONE}. 1 3600 600 86400 60\n@ IN NS ns.{ZONE}.\nns IN A 127.0.0.1\n"
    )
}

fn start_bind(named: &Path, dir: &Path, port: u16, tsig: &Tsig, procs: &mut Vec<Proc>) -> Result<(), String> {
    let data = dir.join("bind");
    // A fresh start (a retry must not find the journal of the previous attempt).
    let _ = std::fs::remove_dir_all(&data);
    std::fs::create_dir_all(&data).map_err(|e| format!("{}: {e}", data.display()))?;
    let zone_path = data.join(format!("{ZONE}.zone"));
    write_file(&zone_path, &zone_file())?;
    let conf = format!(
        r#"options {{
    directory "{data}";
    listen-on port {port} {{ 127.0.0.1; }};
    listen-on-v6 {{ none; }};
    recursion no;
    allow-query {{ any; }};
    allow-transfer {{ none; }};
    notify no;
    dnssec-validation no;
    check-names primary ignore;
    pid-file "{data}/named.pid";
    session-keyfile "{data}/session.key";
    managed-keys-directory "{data}";
}};
controls {{ }};
key "{KEY_SHA256}" {{ algorithm hmac-sha256; secret "{s256}"; }};
key "{KEY_SHA512}" {{ algorithm hmac-sha512; secret "{s512}"; }};
zone "{ZONE}" {{
    type primary;
    file "{zone}";
    allow-update {{ key "{KEY_SHA256}"; key "{KEY_SHA512}"; }};
}};
"#,
        data = p(&data),
        zone = p(&zone_path),
        s256 = tsig.secret_sha256,
        s512 = tsig.secret_sha512,
    );
    let conf_path = data.join("named.conf");
    write_file(&conf_path, &conf)?;
    // -g: foreground, log to stderr; one worker thread is plenty.
    spawn("named", named, &["-g".into(), "-n".into(), "1".into(), "-c".into(), p(&conf_path)], dir, procs)
}

fn start_knot(knotd: &Path, dir: &Path, port: u16, tsig: &Tsig, procs: &mut Vec<Proc>) -> Result<(), String> {
    let data = dir.join("knot");
    let _ = std::fs::remove_dir_all(&data);
    let db = data.join("db");
    std::fs::create_dir_all(&db).map_err(|e| format!("{}: {e}", db.display()))?;
    write_file(&data.join(format!("{ZONE}.zone")), &zone_file())?;
    // No `user:` (stays the invoking user); updates go to the journal and are flushed to the
    // zone file at once (zonefile-sync: 0); the SOA serial is incremented per update.
    let conf = format!(
        r#"server:
    rundir: "{data}"
    pidfile: "{data}/knot.pid"
    listen: 127.0.0.1@{port}
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1

control:
    listen: "{data}/knot.sock"

log:
  - target: stderr
    any: info

database:
    storage: "{db}"

key:
  - id: {KEY_SHA256}
    algorithm: hmac-sha256
    secret: {s256}
  - id: {KEY_SHA512}
    algorithm: hmac-sha512
    secret: {s512}

acl:
  - id: tf-update
    address: 127.0.0.1
    key: [ {KEY_SHA256}, {KEY_SHA512} ]
    action: update

zone:
  - domain: {ZONE}
    storage: "{data}"
    file: "{ZONE}.zone"
    acl: tf-update
    zonefile-sync: 0
    zonefile-load: whole
    journal-content: changes
    serial-policy: increment
"#,
        data = p(&data),
        db = p(&db),
        s256 = tsig.secret_sha256,
        s512 = tsig.secret_sha512,
    );
    let conf_path = data.join("knot.conf");
    write_file(&conf_path, &conf)?;
    spawn("knotd", knotd, &["-c".into(), p(&conf_path)], dir, procs)
}

fn start_powerdns(
    pdns_server: &Path,
    sqlite3: &Path,
    dir: &Path,
    port: u16,
    api_port: u16,
    api_key: &str,
    procs: &mut Vec<Proc>,
) -> Result<(), String> {
    let data = dir.join("powerdns");
    let _ = std::fs::remove_dir_all(&data);
    std::fs::create_dir_all(&data).map_err(|e| format!("{}: {e}", data.display()))?;
    let db = data.join("pdns.sqlite3");
    let schema = std::fs::read(PDNS_SQLITE_SCHEMA).map_err(|e| format!("{PDNS_SQLITE_SCHEMA}: {e}"))?;
    let mut cmd = Command::new(sqlite3);
    cmd.arg(&db);
    let out = run_command(cmd, Some(&schema), CALL_TIMEOUT);
    if !out.success() {
        return Err(format!("creating the PowerDNS database with `{}`:\n{}", out.command, out.describe()));
    }
    let args: Vec<String> = vec![
        "--no-config".into(),
        "--daemon=no".into(),
        "--guardian=no".into(),
        "--disable-syslog=yes".into(),
        "--write-pid=no".into(),
        format!("--socket-dir={}", p(&data)),
        "--launch=gsqlite3".into(),
        format!("--gsqlite3-database={}", p(&db)),
        "--local-address=127.0.0.1".into(),
        format!("--local-port={port}"),
        "--api=yes".into(),
        format!("--api-key={api_key}"),
        "--webserver=yes".into(),
        "--webserver-address=127.0.0.1".into(),
        format!("--webserver-port={api_port}"),
        "--webserver-allow-from=127.0.0.0/8".into(),
        // What the API wrote is what DNS answers right away.
        "--cache-ttl=0".into(),
        "--query-cache-ttl=0".into(),
        "--negquery-cache-ttl=0".into(),
        // No security-status query to the outside world.
        "--security-poll-suffix=".into(),
        "--distributor-threads=1".into(),
        "--loglevel=6".into(),
    ];
    spawn("pdns_server", pdns_server, &args, dir, procs)?;

    let zones = "/api/v1/servers/localhost/zones";
    wait_for("the PowerDNS API", READY_TIMEOUT, procs, || {
        let (status, body) = http_request(api_port, "GET", "/api/v1/servers/localhost", api_key, None)?;
        if status == 200 {
            Ok(())
        } else {
            Err(format!("HTTP {status}: {body}"))
        }
    })?;
    let zone = serde_json::json!({
        "name": format!("{ZONE}."),
        "kind": "Native",
        "nameservers": [format!("ns.{ZONE}.")],
        "rrsets": [
            { "name": format!("{ZONE}."), "type": "SOA", "ttl": 300, "records": [
                { "content": format!("ns.{ZONE}. hostmaster.{ZONE}. 1 3600 600 86400 60"), "disabled": false } ] },
            { "name": format!("ns.{ZONE}."), "type": "A", "ttl": 300, "records": [
                { "content": "127.0.0.1", "disabled": false } ] },
        ],
    });
    let (status, body) = http_request(api_port, "POST", zones, api_key, Some(&zone.to_string()))?;
    if status != 201 {
        return Err(format!("POST {zones} (zone {ZONE}.): HTTP {status}: {body}"));
    }
    Ok(())
}

/// Ok when the server answers the zone's SOA authoritatively.
fn soa_answers(dig: &Path, port: u16) -> Result<(), String> {
    let out = dig_query(dig, port, &format!("{ZONE}."), "SOA", 2, 1);
    let (status, records) = parse_dig(&out)?;
    if status == "NOERROR" && records.iter().any(|r| r.rtype == "SOA") {
        Ok(())
    } else {
        Err(format!("status {status}: {}", out.combined().trim()))
    }
}

fn dig_query(dig: &Path, port: u16, fqdn: &str, rtype: &str, time: u32, tries: u32) -> CmdOutput {
    let mut cmd = Command::new(dig);
    // The authority section too: NS records below the apex come back as a referral there.
    cmd.args(["+tcp", "+norecurse", "+noall", "+comments", "+answer", "+authority"])
        .arg(format!("+time={time}"))
        .arg(format!("+tries={tries}"))
        .args(["@127.0.0.1", "-p", &port.to_string(), fqdn, rtype]);
    run_command(cmd, None, CALL_TIMEOUT)
}

struct DigRecord {
    name: String,
    ttl: u32,
    rtype: String,
    rdata: String,
}

/// The status (`NOERROR`, `NXDOMAIN`, ...) and answer records of
/// `dig +noall +comments +answer` output.
fn parse_dig(out: &CmdOutput) -> Result<(String, Vec<DigRecord>), String> {
    if !out.success() {
        return Err(format!("`{}` failed ({})", out.command, out.status));
    }
    let status = out
        .stdout
        .lines()
        .find_map(|l| l.split_once("status: ").map(|(_, rest)| rest.split(',').next().unwrap_or_default().trim()))
        .ok_or_else(|| format!("no status in the output of `{}`", out.command))?
        .to_string();
    let mut records = Vec::new();
    for line in out.stdout.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with(';') {
            continue;
        }
        // owner TTL class type rdata...
        let mut rest = line;
        let mut fields = Vec::new();
        for _ in 0..4 {
            rest = rest.trim_start();
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            fields.push(&rest[..end]);
            rest = &rest[end..];
        }
        let ttl = fields[1].parse().map_err(|e| format!("bad TTL in answer line {line:?}: {e}"))?;
        records.push(DigRecord {
            name: fields[0].to_string(),
            ttl,
            rtype: fields[3].to_string(),
            rdata: rest.trim().to_string(),
        });
    }
    Ok((status, records))
}

/// A plain HTTP/1.1 request to the PowerDNS webserver on 127.0.0.1:`port`; (status, body).
fn http_request(
    port: u16,
    method: &str,
    path: &str,
    api_key: &str,
    body: Option<&str>,
) -> Result<(u16, String), String> {
    let headers = [("X-API-Key", api_key), ("Accept", "application/json"), ("Content-Type", "application/json")];
    let body = body.unwrap_or_default().as_bytes();
    let response = plain_http::request("127.0.0.1", port, method, path, &headers, body, CALL_TIMEOUT)?;
    Ok((response.status, response.text()))
}
