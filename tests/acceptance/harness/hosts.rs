//! The node rig: test hosts for the tests that drive machines over SSH (the k3s cluster
//! tests). Each host is a network namespace with its own address and a mount, UTS and pid
//! namespace whose root is an overlay of `/`, with an OpenSSH `sshd` of its own inside.
//!
//! [`Hosts::start`] makes one rig per call (tests run in parallel, so nothing is shared):
//! - a bridge `tfhKKKKb` on the root side holding the gateway `.1` of a private /24 out of
//!   10.128.0.0/9; the index `KKKK` is claimed by creating the bridge (creation fails when
//!   another rig holds it) and a /24 that any route of this machine already covers is skipped;
//! - per host `i`: netns `tfhKKKK-n<i>`, a veth pair (`tfhKKKKv<i>` on the bridge, `eth0`
//!   inside with address `.11+i`, `lo` up, default route via the gateway), so the test process
//!   reaches every host's port 22 and hosts reach each other;
//! - inside it, `unshare --mount --uts --pid --kill-child --propagation private` mounts an
//!   overlay (lowerdir `/`, upper and work dirs in the rig's temp dir) with `/dev`, a fresh
//!   `/proc`, `/sys` and a tmpfs `/tmp`, sets the hostname to the host's name, and `chroot`s
//!   into it to run `sshd -D -e`. Files a host writes (`/etc/rancher`, `/var/lib/rancher`,
//!   `/usr/local/bin`) land in its upper dir ([`Host::root_dir`]), never in the real `/` nor
//!   on another host. The upper dir also holds the rig's own files: `etc/ssh/tf_acc_*` and
//!   `run/sshd`.
//!
//! Keys (ssh-keygen, ed25519): one host key per host and one client key per rig, authorized for
//! root; a `known_hosts` with every host's address and key. [`Host::ssh`] checks host keys
//! strictly, as the provider must.
//!
//! Cleanup, whatever way the test process ends: the control plane's bash reaper kills the
//! recorded `unshare` pids (its `--kill-child` takes the host's pid 1 with it, and the pid
//! namespace everything started over SSH) and removes the temp dir; a second small reaper of
//! this module deletes the namespaces, veths and bridge. [`Drop`] does the same at once, so
//! after `drop(hosts)` nothing of the rig is left in `ip netns list` or `ip link`.
//! Needs root; a missing program (`sshd`, `ssh`, `ssh-keygen`, `ip`, `unshare`, `nsenter`,
//! `chroot`, `mount`, `hostname`) fails the test with [`SETUP_HINT`]. `TF_ACC_KEEP` keeps the
//! temp dir (keys, configs, upper dirs, `sshd-*.log`).

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::control_plane::{spawn, spawn_reaper, start_rig, tail_log, wait_for, Proc};
use super::{run_command, CmdOutput, SETUP_HINT};

/// How long every host's sshd may take to listen.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long one SSH command may take.
const SSH_TIMEOUT: Duration = Duration::from_secs(120);
/// Number of /24s in 10.128.0.0/9.
const SUBNETS: u32 = 1 << 15;
/// The programs the rig runs (looked up on PATH and in the sbin dirs).
const PROGRAMS: [&str; 9] = ["sshd", "ssh", "ssh-keygen", "ip", "unshare", "nsenter", "chroot", "mount", "hostname"];

/// One test host.
#[derive(Debug, Clone)]
pub struct Host {
    name: String,
    veth: String,
    address: Ipv4Addr,
    upper: PathBuf,
    host_key_pub: String,
    private_key: PathBuf,
    known_hosts: PathBuf,
    log: PathBuf,
}

impl Host {
    /// Its address on the rig's bridge (sshd listens on port 22 there).
    pub fn address(&self) -> Ipv4Addr {
        self.address
    }

    /// Its name: the network namespace's name and the hostname inside.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `cmd` as root on the host, checking its host key against the rig's known_hosts.
    pub fn ssh(&self, cmd: &str) -> CmdOutput {
        self.ssh_with_known_hosts(&self.known_hosts, cmd)
    }

    /// Like [`Host::ssh`] with another known_hosts file (e.g. one holding a wrong key).
    pub fn ssh_with_known_hosts(&self, known_hosts: &Path, cmd: &str) -> CmdOutput {
        ssh(&self.private_key, known_hosts, &format!("root@{}", self.address), cmd, SSH_TIMEOUT)
    }

    /// The host's overlay upper dir: every file it wrote or changed, at its path under `/`.
    pub fn root_dir(&self) -> &Path {
        &self.upper
    }

    /// Its host key, `ssh-ed25519 AAAA...` (no comment).
    pub fn host_key_pub(&self) -> &str {
        &self.host_key_pub
    }

    /// The root-side end of its veth pair.
    pub fn veth(&self) -> &str {
        &self.veth
    }

    /// Its sshd's log (`sshd -e`).
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Creates user `name` on this host (home dir, `/bin/sh`), who logs in with the rig's key
    /// (the rig's `AuthorizedKeysFile` serves every user) and may use sudo as `sudo` says (a
    /// `/etc/sudoers.d/tf-acc-<name>` file); the host's name goes into its `/etc/hosts` for
    /// sudo. Panics with [`SETUP_HINT`] when this machine has no
    /// `sudo` (the hosts' root is an overlay of `/`, so they have what it has).
    #[track_caller]
    pub fn add_user(&self, name: &str, sudo: Sudo) {
        let missing: Vec<&str> =
            ["sudo", "useradd", "usermod", "chpasswd", "visudo"].into_iter().filter(|p| which(p).is_none()).collect();
        if !missing.is_empty() {
            panic!(
                "the node rig's non-root users need {} (Debian `sudo`, `passwd`; not found on PATH or in /usr/sbin, /sbin): {SETUP_HINT}",
                missing.join(", ")
            );
        }
        assert!(
            !name.is_empty() && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
            "add_user({name:?}): lowercase letters, digits and '-' only"
        );
        // Without PAM, sshd refuses a locked account (`!` in shadow, useradd's default): `*`
        // is no usable password but no lock either.
        let password = match sudo {
            Sudo::Password => format!("echo '{name}:tf-acc-{name}-password' | chpasswd"),
            Sudo::NoPassword | Sudo::None => format!("usermod -p '*' {name}"),
        };
        let rule = match sudo {
            Sudo::NoPassword => Some(format!("{name} ALL=(ALL:ALL) NOPASSWD: ALL")),
            Sudo::Password => Some(format!("{name} ALL=(ALL:ALL) ALL")),
            Sudo::None => None,
        };
        let sudoers = rule
            .map(|rule| {
                let file = format!("/etc/sudoers.d/tf-acc-{name}");
                format!("printf '%s\\n' '{rule}' > {file}\nchmod 0440 {file}\nvisudo -c -q -f {file}\n")
            })
            .unwrap_or_default();
        // sudo looks up the host's own name: without an /etc/hosts line it asks the machine's DNS
        // server, which the host's network namespace cannot reach (every sudo then waits for
        // its timeouts and warns "unable to resolve host"). Real hosts have the line.
        let hosts_line =
            "grep -q \"[[:space:]]$(hostname)\\$\" /etc/hosts || echo \"127.0.1.1 $(hostname)\" >> /etc/hosts";
        let script = format!("set -e\n{hosts_line}\nuseradd -m -s /bin/sh {name}\n{password}\n{sudoers}");
        let out = self.ssh(&script);
        assert!(out.success(), "adding user {name} ({sudo:?}) on {} failed:\n{}", self.name, out.describe());
    }
}

/// What a user made by [`Host::add_user`] may do with sudo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sudo {
    /// Anything as anyone, without a password (`NOPASSWD: ALL`).
    NoPassword,
    /// Anything as anyone after typing their password (which they have).
    Password,
    /// No sudoers entry.
    None,
}

/// Runs `cmd` on `destination` (`user@address`) with OpenSSH: the key `private_key` alone, the
/// host key checked against `known_hosts` alone, no prompts; killed after `timeout`.
pub fn ssh(private_key: &Path, known_hosts: &Path, destination: &str, cmd: &str, timeout: Duration) -> CmdOutput {
    let mut ssh = Command::new("ssh");
    ssh.args(["-F", "/dev/null", "-i"])
        .arg(private_key)
        .arg("-o")
        .arg(format!("UserKnownHostsFile={}", known_hosts.display()))
        .args(["-o", "GlobalKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes"])
        .args(["-o", "ConnectTimeout=10", "-o", "IdentitiesOnly=yes"])
        .arg(destination)
        .arg(cmd);
    run_command(ssh, None, timeout)
}

/// The hosts of one test, removed when dropped.
pub struct Hosts {
    dir: PathBuf,
    bridge: String,
    gateway: Ipv4Addr,
    hosts: Vec<Host>,
    private_key: PathBuf,
    known_hosts: PathBuf,
    processes: Mutex<Vec<Proc>>,
    /// Write end of the control plane reaper's pipe (kills the pids, removes `dir`).
    reaper: Option<ChildStdin>,
    /// Write end of this module's reaper's pipe (deletes namespaces, veths and bridge).
    net_reaper: Option<ChildStdin>,
}

impl std::fmt::Debug for Hosts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hosts").field("bridge", &self.bridge).field("hosts", &self.hosts).finish()
    }
}

impl Hosts {
    /// Starts `n` hosts (1 to 200) with sshd listening on each; panics with the reason (and log
    /// tails) when they cannot be started.
    #[track_caller]
    pub fn start(n: usize) -> Hosts {
        assert!((1..=200).contains(&n), "Hosts::start({n}): between 1 and 200 hosts");
        let started = Instant::now();
        check_programs();
        let hosts = Hosts::create(n).unwrap_or_else(|e| panic!("the node rig could not be started:\n{e}"));
        eprintln!(
            "acceptance: node rig {} with {n} hosts ({}..) ready in {:.1?} (files in {})",
            hosts.bridge,
            hosts.hosts[0].address,
            started.elapsed(),
            hosts.dir.display()
        );
        hosts
    }

    /// Host `i` (0-based).
    #[track_caller]
    pub fn host(&self, i: usize) -> &Host {
        &self.hosts[i]
    }

    pub fn hosts(&self) -> &[Host] {
        &self.hosts
    }

    pub fn len(&self) -> usize {
        self.hosts.len()
    }

    /// The client key authorized for root on every host (OpenSSH private key file).
    pub fn private_key_path(&self) -> &Path {
        &self.private_key
    }

    /// The client key's text: ssh-keygen's `-----BEGIN OPENSSH PRIVATE KEY-----` armour.
    pub fn private_key_pem(&self) -> String {
        std::fs::read_to_string(&self.private_key).expect("read the rig's private key")
    }

    /// A known_hosts file with every host's address and host key.
    pub fn known_hosts_path(&self) -> &Path {
        &self.known_hosts
    }

    /// The bridge's address, the hosts' default gateway (the test process's side).
    pub fn gateway(&self) -> Ipv4Addr {
        self.gateway
    }

    /// The rig's bridge on the root side.
    pub fn bridge(&self) -> &str {
        &self.bridge
    }

    /// The rig's temp dir (keys, configs, upper dirs, logs).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Panics (with its log tail) if a host's sshd has exited.
    #[track_caller]
    pub fn assert_alive(&self) {
        let mut procs = self.processes.lock().unwrap_or_else(|e| e.into_inner());
        for p in procs.iter_mut() {
            if let Ok(Some(status)) = p.child.try_wait() {
                panic!("{} exited ({status}); log tail:\n{}", p.name, tail_log(&p.log, 40));
            }
        }
    }

    fn create(n: usize) -> Result<Hosts, String> {
        let keep = std::env::var_os("TF_ACC_KEEP").is_some_and(|v| !v.is_empty() && v != "0");
        let dir =
            tempfile::Builder::new().prefix("tf-acc-hosts-").tempdir().map_err(|e| format!("temp dir: {e}"))?.keep();
        let reaper = spawn_reaper(&dir, keep)?;
        let (index, bridge) = claim_bridge()?;
        let prefix = format!("tfh{index:04x}");
        let netns: Vec<String> = (0..n).map(|i| format!("{prefix}-n{i}")).collect();
        let veths: Vec<String> = (0..n).map(|i| format!("{prefix}v{i}")).collect();
        let net_reaper = spawn_net_reaper(&netns, &veths, &bridge)?;
        let subnet = subnet_base(index);
        let gateway = Ipv4Addr::from(u32::from(subnet) + 1);
        let mut hosts = Hosts {
            dir: dir.clone(),
            bridge,
            gateway,
            hosts: Vec::new(),
            private_key: dir.join("id_ed25519"),
            known_hosts: dir.join("known_hosts"),
            processes: Mutex::new(Vec::new()),
            reaper: Some(reaper),
            net_reaper: Some(net_reaper),
        };
        // From here on a failure drops `hosts`, which removes what was made.
        ip(&["addr", "add", &format!("{gateway}/24"), "dev", &hosts.bridge])?;
        ip(&["link", "set", &hosts.bridge, "up"])?;
        keygen(&hosts.private_key, "tf-acc-node-rig")?;
        let authorized = read(&hosts.private_key.with_extension("pub"))?;
        let mut known_hosts = String::new();
        for (i, (ns, veth)) in netns.iter().zip(&veths).enumerate() {
            let address = Ipv4Addr::from(u32::from(subnet) + 11 + i as u32);
            let host =
                make_host(&dir, ns, veth, address, gateway, &authorized, &hosts.private_key, &hosts.known_hosts)?;
            known_hosts.push_str(&format!("{address} {}\n", host.host_key_pub));
            hosts.hosts.push(host);
        }
        std::fs::write(&hosts.known_hosts, known_hosts).map_err(|e| format!("known_hosts: {e}"))?;

        let reaper = hosts.reaper.as_mut().expect("reaper");
        let ((), procs) = start_rig("node rig", &dir, reaper, |procs| {
            for host in &hosts.hosts {
                start_sshd(&dir, host, procs)?;
            }
            for host in &hosts.hosts {
                let addr = SocketAddr::from((host.address, 22));
                wait_for(&format!("sshd of {} on {addr}", host.name), READY_TIMEOUT, procs, || {
                    TcpStream::connect_timeout(&addr, Duration::from_secs(2)).map(drop).map_err(|e| e.to_string())
                })?;
            }
            Ok(())
        })?;
        *hosts.processes.lock().unwrap() = procs;
        Ok(hosts)
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        let mut procs = self.processes.lock().unwrap_or_else(|e| e.into_inner());
        for p in procs.iter_mut() {
            let _ = p.child.kill();
            let _ = p.child.wait();
        }
        procs.clear();
        // The pids are gone: the reaper must not kill whatever reuses them.
        let _ = std::fs::remove_file(self.dir.join("pids"));
        for host in &self.hosts {
            let _ = quiet_ip(&["netns", "delete", &host.name]);
            let _ = quiet_ip(&["link", "delete", &host.veth]);
        }
        let _ = quiet_ip(&["link", "delete", &self.bridge]);
        // Everything is gone: the net reaper must not delete names another rig may claim next.
        if let Some(mut net_reaper) = self.net_reaper.take() {
            let _ = writeln!(net_reaper, "done");
        }
        // EOF for the control plane's reaper: it removes the temp dir.
        self.reaper.take();
    }
}

/// Creates the bridge of a free subnet index, starting from one derived from the pid and a
/// process-wide counter; creation is the claim (it fails when another rig has that index).
fn claim_bridge() -> Result<(u32, String), String> {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let first = std::process::id().wrapping_mul(2654435761).wrapping_add(COUNTER.fetch_add(1, Ordering::Relaxed) * 97);
    let mut last = String::new();
    for attempt in 0..256u32 {
        let index = (first.wrapping_add(attempt * 7919)) % SUBNETS;
        if subnet_in_use(subnet_base(index))? {
            continue;
        }
        let bridge = format!("tfh{index:04x}b");
        let out = quiet_ip(&["link", "add", &bridge, "type", "bridge"]);
        if out.success() {
            return Ok((index, bridge));
        }
        last = out.combined();
        if !last.contains("exists") {
            return Err(format!("ip link add {bridge} type bridge: {last}"));
        }
    }
    Err(format!("no free subnet for the node rig in 10.128.0.0/9 (last: {last})"))
}

/// 10.128.0.0 + index * 256.
fn subnet_base(index: u32) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 128, 0, 0)) + index * 256)
}

/// Whether a route other than the default one covers the /24 at `base`.
fn subnet_in_use(base: Ipv4Addr) -> Result<bool, String> {
    let probe = Ipv4Addr::from(u32::from(base) + 1);
    let out = quiet_ip(&["-4", "route", "show", "to", "match", &probe.to_string()]);
    if !out.success() {
        return Err(format!("ip route show to match {probe}: {}", out.combined()));
    }
    Ok(out.stdout.lines().any(|l| !l.trim().is_empty() && !l.starts_with("default")))
}

/// Makes host `ns`: namespace, veth pair, address, keys and sshd config in its upper dir.
#[allow(clippy::too_many_arguments)]
fn make_host(
    dir: &Path,
    ns: &str,
    veth: &str,
    address: Ipv4Addr,
    gateway: Ipv4Addr,
    authorized: &str,
    private_key: &Path,
    known_hosts: &Path,
) -> Result<Host, String> {
    ip(&["netns", "add", ns])?;
    ip(&["link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns])?;
    ip(&["link", "set", veth, "master", &bridge_of(veth), "up"])?;
    ip(&["-n", ns, "addr", "add", &format!("{address}/24"), "dev", "eth0"])?;
    ip(&["-n", ns, "link", "set", "eth0", "up"])?;
    ip(&["-n", ns, "link", "set", "lo", "up"])?;
    ip(&["-n", ns, "route", "add", "default", "via", &gateway.to_string()])?;

    let host_dir = dir.join(ns);
    let upper = host_dir.join("upper");
    let ssh_dir = upper.join("etc/ssh");
    for d in [&ssh_dir, &upper.join("run/sshd"), &host_dir.join("work"), &host_dir.join("merged")] {
        std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
    }
    let host_key = ssh_dir.join("tf_acc_host_key");
    keygen(&host_key, ns)?;
    let host_key_pub = read(&host_key.with_extension("pub"))?.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
    std::fs::write(ssh_dir.join("tf_acc_authorized_keys"), authorized).map_err(|e| format!("authorized keys: {e}"))?;
    let config = format!(
        "ListenAddress {address}:22\n\
         HostKey /etc/ssh/tf_acc_host_key\n\
         AuthorizedKeysFile /etc/ssh/tf_acc_authorized_keys\n\
         PermitRootLogin prohibit-password\n\
         PasswordAuthentication no\n\
         KbdInteractiveAuthentication no\n\
         UsePAM no\n\
         UseDNS no\n\
         PrintMotd no\n\
         PidFile none\n\
         MaxStartups 100\n\
         MaxSessions 100\n\
         Subsystem sftp internal-sftp\n"
    );
    std::fs::write(ssh_dir.join("tf_acc_sshd_config"), config).map_err(|e| format!("sshd config: {e}"))?;
    Ok(Host {
        name: ns.to_string(),
        veth: veth.to_string(),
        address,
        upper,
        host_key_pub,
        private_key: private_key.to_path_buf(),
        known_hosts: known_hosts.to_path_buf(),
        log: dir.join(format!("sshd-{ns}.log")),
    })
}

/// `tfhKKKKv<i>` → `tfhKKKKb`.
fn bridge_of(veth: &str) -> String {
    format!("{}b", &veth[..7])
}

/// The host's own namespaces, root and sshd (see the module docs); the recorded pid is
/// `unshare`'s, whose death kills the host's pid 1 and so its whole pid namespace.
fn start_sshd(dir: &Path, host: &Host, procs: &mut Vec<Proc>) -> Result<(), String> {
    const SETUP: &str = r#"
set -e
name=$1 merged=$2 upper=$3 work=$4
mount -t overlay overlay -o "lowerdir=/,upperdir=$upper,workdir=$work" "$merged"
mount --rbind /dev "$merged/dev"
mount -t proc proc "$merged/proc"
mount -t sysfs sysfs "$merged/sys"
mount -t tmpfs -o mode=1777 tmpfs "$merged/tmp"
hostname "$name"
exec chroot "$merged" /usr/sbin/sshd -D -e -f /etc/ssh/tf_acc_sshd_config
"#;
    let host_dir = dir.join(&host.name);
    let args: Vec<String> = [
        "netns",
        "exec",
        &host.name,
        "unshare",
        "--mount",
        "--uts",
        "--pid",
        "--kill-child",
        "--propagation",
        "private",
        "bash",
        "-c",
        SETUP,
        "tf-acc-node",
        &host.name,
    ]
    .into_iter()
    .map(str::to_string)
    .chain(["merged", "upper", "work"].map(|d| host_dir.join(d).display().to_string()))
    .collect();
    // `spawn` names the log `<name>.log`; one leaked name per host and test is cheap.
    let name: &'static str = Box::leak(format!("sshd-{}", host.name).into_boxed_str());
    spawn(name, &which("ip").ok_or("ip")?, &args, dir, procs)
}

/// Deletes the namespaces, veths and bridge on EOF of stdin (this process exiting).
fn spawn_net_reaper(netns: &[String], veths: &[String], bridge: &str) -> Result<ChildStdin, String> {
    const SCRIPT: &str = r#"
trap '' INT HUP TERM PIPE
bridge=$1 n=$2; shift 2
done=
while read -r line; do [ "$line" = done ] && done=1; done
[ -n "$done" ] && exit 0
# Give the control plane's reaper time to kill the hosts' processes first.
sleep 2
i=0
for arg in "$@"; do
  if [ "$i" -lt "$n" ]; then ip netns delete "$arg"; else ip link delete "$arg"; fi
  i=$((i + 1))
done 2>/dev/null
ip link delete "$bridge" 2>/dev/null
exit 0
"#;
    let mut child = Command::new("bash")
        .arg("-c")
        .arg(SCRIPT)
        .arg("tf-acc-net-reaper")
        .arg(bridge)
        .arg(netns.len().to_string())
        .args(netns)
        .args(veths)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start the node rig's net reaper: {e}"))?;
    let stdin = child.stdin.take().unwrap();
    // Outlives us by design, like the control plane's reaper.
    drop(child);
    Ok(stdin)
}

/// Panics naming the programs the rig needs that are not installed.
#[track_caller]
fn check_programs() {
    let missing: Vec<&str> = PROGRAMS.into_iter().filter(|p| which(p).is_none()).collect();
    if !missing.is_empty() {
        panic!("the node rig needs {} (not found on PATH or in /usr/sbin, /sbin): {SETUP_HINT}", missing.join(", "));
    }
    let uid = std::fs::read_to_string("/proc/self/status").ok().and_then(|s| {
        s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(1).unwrap_or("").to_string())
    });
    if uid.as_deref() != Some("0") {
        panic!("the node rig needs root (network and mount namespaces); uid is {uid:?}");
    }
}

fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|d| d.join(program))
        .find(|p| super::control_plane::is_executable(p))
}

fn keygen(path: &Path, comment: &str) -> Result<(), String> {
    let mut cmd = Command::new("ssh-keygen");
    cmd.args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"]).arg(path);
    let out = run_command(cmd, None, Duration::from_secs(30));
    if out.success() {
        Ok(())
    } else {
        Err(format!("`{}` failed:\n{}", out.command, out.describe()))
    }
}

fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// `ip ARGS`, an error with its output unless it succeeds.
fn ip(args: &[&str]) -> Result<(), String> {
    let out = quiet_ip(args);
    if out.success() {
        Ok(())
    } else {
        Err(format!("`{}` failed: {}", out.command, out.combined().trim()))
    }
}

/// `ip ARGS` without the harness's per-command log line (the rig runs dozens).
fn quiet_ip(args: &[&str]) -> CmdOutput {
    let command = format!("ip {}", args.join(" "));
    match Command::new(which("ip").unwrap_or_else(|| PathBuf::from("ip"))).args(args).stdin(Stdio::null()).output() {
        Ok(out) => CmdOutput {
            command,
            status: out.status,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        },
        Err(e) => panic!("cannot run `{command}`: {e}"),
    }
}
