//! The provider's own SSH client (`platform_provider::clients::ssh`) against the node rig's
//! real sshds: commands with their output, status and stdin on one reused connection, atomic
//! file writes and checked uploads, strict host keys (unknown and changed ones refused with
//! their fingerprints), a wrong key refused, command timeouts, an address nobody answers, and
//! cancellation through the operation's deadline; a non-root user through `sudo -n` (run as
//! root, root-owned files) and a sudo that asks for a password refused.

use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::{Duration, Instant};

use platform_provider::clients::deadline::{Deadline, Interrupted};
use platform_provider::clients::ssh::{SshAuth, SshClient, SshError, SshSettings};
use secrecy::SecretString;
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use crate::harness::hosts::{Host, Hosts, Sudo};

const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

fn settings(hosts: &Hosts) -> SshSettings {
    SshSettings {
        user: "root".to_string(),
        port: 22,
        auth: SshAuth::PrivateKey { pem: SecretString::from(hosts.private_key_pem()), passphrase: None },
        known_hosts: std::fs::read_to_string(hosts.known_hosts_path()).expect("read the rig's known_hosts"),
        connect_timeout: Duration::from_secs(10),
    }
}

fn addr(host: &Host) -> String {
    host.address().to_string()
}

/// `ssh-keygen -lf` of the host's key: `SHA256:...`.
fn keygen_fingerprint(host: &Host) -> String {
    let path = host.root_dir().join("etc/ssh/tf_acc_host_key.pub");
    let out = Command::new("ssh-keygen").arg("-lf").arg(&path).output().expect("run ssh-keygen -lf");
    assert!(out.status.success(), "ssh-keygen -lf {}: {}", path.display(), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).split_whitespace().nth(1).expect("a fingerprint").to_string()
}

/// How many logins the host's sshd accepted.
fn accepted_logins(host: &Host) -> usize {
    std::fs::read_to_string(host.log_path()).unwrap_or_default().matches("Accepted publickey for root").count()
}

#[tokio::test]
async fn ssh_client_runs_commands_with_output_status_and_stdin_on_one_connection() {
    let hosts = Hosts::start(2);
    let client = SshClient::new(settings(&hosts));
    let (h0, h1) = (hosts.host(0), hosts.host(1));
    let before = accepted_logins(h0);

    let out = client
        .run(&addr(h0), "hostname; id -un; echo to-stderr >&2; exit 3", None, COMMAND_TIMEOUT)
        .await
        .expect("the command runs");
    assert_eq!(out.status, 3);
    assert!(!out.success());
    assert_eq!(out.stdout, format!("{}\nroot\n", h0.name()));
    assert_eq!(out.stderr, "to-stderr\n");
    assert_eq!(out.tail(2), "root\nto-stderr");

    // stdin is sent, then EOF (cat ends).
    let input = b"line one\nline two with 'quotes' and $dollars\n";
    let out = client.run(&addr(h0), "cat; echo done", Some(input), COMMAND_TIMEOUT).await.unwrap();
    assert_eq!(out.status, 0);
    assert_eq!(out.stdout, format!("{}done\n", String::from_utf8_lossy(input)));
    // A command that does not read its stdin still gets EOF and ends.
    let stdout = client.run_checked(&addr(h0), "echo quoted 'single' \"double\"", None, COMMAND_TIMEOUT).await;
    assert_eq!(stdout.unwrap(), "quoted single double\n");

    // run_checked: a failure names the command's first line and quotes the output's tail.
    let err = client
        .run_checked(&addr(h0), "ls /nonexistent-dir\nexit 7", Some(b"stdin-content"), COMMAND_TIMEOUT)
        .await
        .unwrap_err();
    match &err {
        SshError::CommandFailed { host, command, status, tail } => {
            assert_eq!(host, &addr(h0));
            assert_eq!(command, "ls /nonexistent-dir…");
            assert_eq!(*status, 7);
            assert!(tail.contains("No such file or directory"), "{tail}");
        }
        other => panic!("expected CommandFailed, got {other:?}"),
    }
    assert!(!err.to_string().contains("stdin-content") && !format!("{err:?}").contains("stdin-content"));

    // Every command so far went over one connection: one login in sshd's log.
    assert_eq!(client.connections_opened(), 1);
    assert_eq!(accepted_logins(h0) - before, 1, "sshd log:\n{}", std::fs::read_to_string(h0.log_path()).unwrap());

    // Another host gets its own connection; both are reused.
    assert_eq!(
        client.run_checked(&addr(h1), "hostname", None, COMMAND_TIMEOUT).await.unwrap(),
        format!("{}\n", h1.name())
    );
    let (a0, a1) = (addr(h0), addr(h1));
    let (a, b) = tokio::join!(
        client.run_checked(&a0, "echo a", None, COMMAND_TIMEOUT),
        client.run_checked(&a1, "echo b", None, COMMAND_TIMEOUT)
    );
    assert_eq!((a.unwrap(), b.unwrap()), ("a\n".to_string(), "b\n".to_string()));
    assert_eq!(client.connections_opened(), 2);

    // After close, the next command connects again.
    client.close().await;
    assert_eq!(client.run_checked(&addr(h0), "echo again", None, COMMAND_TIMEOUT).await.unwrap(), "again\n");
    assert_eq!(client.connections_opened(), 3);
    client.close().await;
}

#[tokio::test]
async fn ssh_client_writes_files_atomically_and_checks_uploads() {
    let hosts = Hosts::start(1);
    let client = SshClient::new(settings(&hosts));
    let host = hosts.host(0);
    let a = addr(host);

    // write_file: parent dirs made, mode 0600, exact content (binary-safe).
    let contents = b"token: s3cr3t\n\x00\xffbinary tail";
    client.write_file(&a, "/etc/rancher/k3s/config.yaml", contents, 0o600, COMMAND_TIMEOUT).await.unwrap();
    let written = host.root_dir().join("etc/rancher/k3s/config.yaml");
    assert_eq!(std::fs::read(&written).unwrap(), contents);
    assert_eq!(std::fs::metadata(&written).unwrap().permissions().mode() & 0o7777, 0o600);
    let stat = client.run_checked(&a, "stat -c '%a %U' /etc/rancher/k3s/config.yaml", None, COMMAND_TIMEOUT).await;
    assert_eq!(stat.unwrap(), "600 root\n");
    // Overwriting replaces the content; no temp file is left behind.
    client.write_file(&a, "/etc/rancher/k3s/config.yaml", b"v2\n", 0o644, COMMAND_TIMEOUT).await.unwrap();
    assert_eq!(std::fs::read(&written).unwrap(), b"v2\n");
    assert_eq!(std::fs::metadata(&written).unwrap().permissions().mode() & 0o7777, 0o644);
    let listing = client.run_checked(&a, "ls -A /etc/rancher/k3s", None, COMMAND_TIMEOUT).await.unwrap();
    assert_eq!(listing, "config.yaml\n");

    // upload: 60 MB, streamed, sha256 checked on the host.
    let big: Vec<u8> = (0..60u32 << 20).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
    let sha = hex::encode(Sha256::digest(&big));
    let started = Instant::now();
    client.upload(&a, "/usr/local/bin/k3s", &big, 0o755, &sha, Duration::from_secs(300)).await.unwrap();
    eprintln!("ssh_client: uploaded {} MiB in {:.1?}", big.len() >> 20, started.elapsed());
    let uploaded = host.root_dir().join("usr/local/bin/k3s");
    assert_eq!(std::fs::metadata(&uploaded).unwrap().len(), big.len() as u64);
    assert_eq!(hex::encode(Sha256::digest(std::fs::read(&uploaded).unwrap())), sha);
    assert_eq!(std::fs::metadata(&uploaded).unwrap().permissions().mode() & 0o7777, 0o755);

    // A wrong sha256 is refused and leaves the target as it was, with no temp file.
    let other = b"not the binary".to_vec();
    let err = client.upload(&a, "/usr/local/bin/k3s", &other, 0o755, &sha, COMMAND_TIMEOUT).await.unwrap_err();
    match &err {
        SshError::ChecksumMismatch { path, expected, actual, .. } => {
            assert_eq!(path, "/usr/local/bin/k3s");
            assert_eq!(expected, &sha);
            assert_eq!(actual, &hex::encode(Sha256::digest(&other)));
        }
        other => panic!("expected ChecksumMismatch, got {other:?}"),
    }
    assert_eq!(std::fs::metadata(&uploaded).unwrap().len(), big.len() as u64);
    let leftovers = client.run_checked(&a, "ls -A /usr/local/bin | grep -c '^\\.tmp' || true", None, COMMAND_TIMEOUT);
    assert_eq!(leftovers.await.unwrap(), "0\n");
    assert_eq!(client.connections_opened(), 1);
    client.close().await;
}

#[tokio::test]
async fn ssh_client_refuses_unknown_and_changed_host_keys() {
    let hosts = Hosts::start(2);
    let (h0, h1) = (hosts.host(0), hosts.host(1));
    let fingerprint0 = keygen_fingerprint(h0);
    let fingerprint1 = keygen_fingerprint(h1);

    // No entry for the host: refused with the fingerprint ssh-keygen prints.
    let mut unknown = settings(&hosts);
    unknown.known_hosts = format!("{} {}\n", h1.address(), h1.host_key_pub());
    let client = SshClient::new(unknown);
    let err = client.run(&addr(h0), "touch /should-not-exist", None, COMMAND_TIMEOUT).await.unwrap_err();
    match &err {
        SshError::HostKeyUnknown { host, fingerprint } => {
            assert_eq!(host, &addr(h0));
            assert_eq!(fingerprint, &fingerprint0);
        }
        other => panic!("expected HostKeyUnknown, got {other:?}"),
    }
    assert!(err.to_string().contains("add the key to known_hosts"), "{err}");

    // Another host's key listed for the address: a mismatch naming both.
    let mut changed = settings(&hosts);
    changed.known_hosts = format!("{} {}\n", h0.address(), h1.host_key_pub());
    let client = SshClient::new(changed);
    let err = client.run(&addr(h0), "touch /should-not-exist", None, COMMAND_TIMEOUT).await.unwrap_err();
    match &err {
        SshError::HostKeyMismatch { host, expected, found } => {
            assert_eq!(host, &addr(h0));
            assert_eq!(expected, &vec![format!("ssh-ed25519 {fingerprint1}")]);
            assert_eq!(found, &format!("ssh-ed25519 {fingerprint0}"));
        }
        other => panic!("expected HostKeyMismatch, got {other:?}"),
    }
    assert_eq!(client.connections_opened(), 0);
    assert!(!h0.root_dir().join("should-not-exist").exists(), "a command ran on a host with a wrong key");

    // The right key, hashed as ssh-keygen -H writes it, is accepted.
    let mut hashed = settings(&hosts);
    let salt = *b"node-rig-salt-twenty";
    let name = platform_provider::clients::ssh::hash_name(&addr(h0), &salt);
    hashed.known_hosts = format!("{name} {}\n", h0.host_key_pub());
    let client = SshClient::new(hashed);
    assert_eq!(client.run_checked(&addr(h0), "echo ok", None, COMMAND_TIMEOUT).await.unwrap(), "ok\n");
    client.close().await;
}

#[tokio::test]
async fn ssh_client_rejects_a_wrong_private_key() {
    let hosts = Hosts::start(1);
    let host = hosts.host(0);
    let other_key = hosts.dir().join("other_id_ed25519");
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "other", "-f"])
        .arg(&other_key)
        .output()
        .expect("run ssh-keygen");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let pem = std::fs::read_to_string(&other_key).unwrap();

    let mut wrong = settings(&hosts);
    wrong.auth = SshAuth::PrivateKey { pem: SecretString::from(pem.clone()), passphrase: None };
    let started = Instant::now();
    let err = SshClient::new(wrong).run(&addr(host), "true", None, COMMAND_TIMEOUT).await.unwrap_err();
    match &err {
        SshError::AuthRejected { host: h, user, detail } => {
            assert_eq!(h, &addr(host));
            assert_eq!(user, "root");
            assert!(detail.contains("publickey"), "{detail}");
        }
        other => panic!("expected AuthRejected, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(10), "a rejected login is not retried");
    let body: String = pem.lines().nth(1).unwrap().to_string();
    assert!(!format!("{err:?}").contains(&body));

    // Text that is no key at all.
    let mut garbage = settings(&hosts);
    garbage.auth = SshAuth::PrivateKey {
        pem: SecretString::from("-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n"),
        passphrase: None,
    };
    let err = SshClient::new(garbage).run(&addr(host), "true", None, COMMAND_TIMEOUT).await.unwrap_err();
    assert!(matches!(err, SshError::InvalidKey(_)), "{err:?}");
}

#[tokio::test]
async fn ssh_client_times_out_a_command_and_keeps_the_connection() {
    let hosts = Hosts::start(1);
    let host = hosts.host(0);
    let client = SshClient::new(settings(&hosts));
    let started = Instant::now();
    let err = client
        .run(&addr(host), "sleep 300 # the marker", Some(b"secret-stdin"), Duration::from_secs(2))
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    match &err {
        SshError::Timeout { host: h, command, after } => {
            assert_eq!(h, &addr(host));
            assert_eq!(command, "sleep 300 # the marker");
            assert_eq!(*after, Duration::from_secs(2));
        }
        other => panic!("expected Timeout, got {other:?}"),
    }
    assert!(elapsed >= Duration::from_secs(2) && elapsed < Duration::from_secs(10), "took {elapsed:?}");
    assert!(!format!("{err:?}").contains("secret-stdin"));
    // The connection still serves, and the timed-out command was stopped.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let left = client.run_checked(&addr(host), "pgrep -f 'slee[p] 300' | wc -l", None, COMMAND_TIMEOUT).await;
    assert_eq!(left.unwrap().trim(), "0", "the timed-out command still runs");
    assert_eq!(client.connections_opened(), 1);
    client.close().await;
}

#[tokio::test]
async fn ssh_client_gives_up_on_an_unreachable_address_within_the_deadline() {
    let hosts = Hosts::start(1);
    // An unused address of the rig's /24: nothing answers ARP for it.
    let unused = Ipv4Addr::from(u32::from(hosts.gateway()) + 240).to_string();
    let mut quick = settings(&hosts);
    quick.connect_timeout = Duration::from_secs(2);
    let client = SshClient::new(quick);
    let deadline = Deadline::after(Duration::from_secs(8), CancellationToken::new());
    let started = Instant::now();
    let err = deadline.run(client.run(&unused, "true", None, COMMAND_TIMEOUT)).await.unwrap_err();
    let elapsed = started.elapsed();
    match &err {
        SshError::Unreachable { host, detail } => {
            assert_eq!(host, &unused);
            assert!(detail.contains("gave up after"), "{detail}");
        }
        other => panic!("expected Unreachable, got {other:?}"),
    }
    assert!(elapsed < Duration::from_secs(9), "took {elapsed:?}");
    assert!(deadline.retries() >= 1, "connecting was retried");
    assert_eq!(client.connections_opened(), 0);

    // A closed port on a live host is refused quickly, and retried too.
    let mut closed = settings(&hosts);
    closed.port = 2;
    let deadline = Deadline::after(Duration::from_secs(3), CancellationToken::new());
    let err = deadline
        .run(SshClient::new(closed).run(&addr(hosts.host(0)), "true", None, COMMAND_TIMEOUT))
        .await
        .unwrap_err();
    assert!(matches!(&err, SshError::Unreachable { detail, .. } if detail.contains("refused")), "{err:?}");
}

#[tokio::test]
async fn ssh_client_stops_when_the_deadline_is_cancelled() {
    let hosts = Hosts::start(1);
    let host = hosts.host(0);
    let client = SshClient::new(settings(&hosts));
    let token = CancellationToken::new();
    let deadline = Deadline::after(Duration::from_secs(120), token.clone());
    let canceller = {
        let token = token.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(2)).await;
            token.cancel();
        })
    };
    let started = Instant::now();
    let err = deadline.run(client.run(&addr(host), "sleep 301", None, COMMAND_TIMEOUT)).await.unwrap_err();
    let elapsed = started.elapsed();
    assert!(matches!(err, SshError::Interrupted(Interrupted::Cancelled)), "{err:?}");
    assert!(elapsed >= Duration::from_secs(2) && elapsed < Duration::from_secs(6), "took {elapsed:?}");
    canceller.await.unwrap();

    // An expired deadline stops a command too.
    let deadline = Deadline::after(Duration::from_secs(2), CancellationToken::new());
    let err = deadline.run(client.run(&addr(host), "sleep 302", None, COMMAND_TIMEOUT)).await.unwrap_err();
    assert!(matches!(err, SshError::Interrupted(Interrupted::Expired { .. })), "{err:?}");
    // Both commands were stopped.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let left = client.run_checked(&addr(host), "pgrep -f 'slee[p] 30[12]' | wc -l", None, COMMAND_TIMEOUT).await;
    assert_eq!(left.unwrap().trim(), "0");
    client.close().await;
}

/// A key made by `ssh-keygen -t <kind>` with `extra` options, authorized for root on `host`;
/// its private key text.
fn authorized_key(hosts: &Hosts, host: &Host, name: &str, kind: &str, extra: &[&str]) -> String {
    let path = hosts.dir().join(name);
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", kind, "-C", name, "-f"])
        .arg(&path)
        .args(extra)
        .output()
        .expect("run ssh-keygen");
    assert!(out.status.success(), "ssh-keygen -t {kind}: {}", String::from_utf8_lossy(&out.stderr));
    let public = std::fs::read_to_string(path.with_extension("pub")).unwrap();
    let authorized = host.root_dir().join("etc/ssh/tf_acc_authorized_keys");
    let mut keys = std::fs::read_to_string(&authorized).unwrap();
    keys.push_str(&public);
    std::fs::write(&authorized, keys).unwrap();
    std::fs::read_to_string(&path).unwrap()
}

#[tokio::test]
async fn ssh_client_logs_in_with_rsa_ecdsa_pkcs8_and_encrypted_keys() {
    let hosts = Hosts::start(1);
    let host = hosts.host(0);
    let keys = [
        ("rsa-openssh", authorized_key(&hosts, host, "id_rsa", "rsa", &["-b", "3072", "-N", ""]), None),
        ("rsa-pkcs1", authorized_key(&hosts, host, "id_rsa_pem", "rsa", &["-b", "2048", "-N", "", "-m", "PEM"]), None),
        ("ecdsa-pkcs8", authorized_key(&hosts, host, "id_ecdsa", "ecdsa", &["-N", "", "-m", "PKCS8"]), None),
        (
            "ed25519-encrypted",
            authorized_key(&hosts, host, "id_ed25519_enc", "ed25519", &["-N", "correct horse"]),
            Some("correct horse"),
        ),
    ];
    for (what, pem, passphrase) in &keys {
        let mut s = settings(&hosts);
        s.auth = SshAuth::PrivateKey {
            pem: SecretString::from(pem.clone()),
            passphrase: passphrase.map(SecretString::from),
        };
        let out = SshClient::new(s).run_checked(&addr(host), "id -un", None, COMMAND_TIMEOUT).await;
        assert_eq!(out.unwrap_or_else(|e| panic!("{what}: {e}")), "root\n", "{what}");
    }

    // The encrypted key without its passphrase, or with a wrong one, is an invalid key.
    let encrypted = &keys[3].1;
    for passphrase in [None, Some("wrong")] {
        let mut s = settings(&hosts);
        s.auth = SshAuth::PrivateKey {
            pem: SecretString::from(encrypted.clone()),
            passphrase: passphrase.map(SecretString::from),
        };
        let err = SshClient::new(s).run(&addr(host), "true", None, COMMAND_TIMEOUT).await.unwrap_err();
        match &err {
            SshError::InvalidKey(detail) => assert!(detail.contains("passphrase"), "{detail}"),
            other => panic!("expected InvalidKey with passphrase {passphrase:?}, got {other:?}"),
        }
        assert!(
            !err.to_string().contains("correct horse") && !err.to_string().contains(encrypted.lines().nth(1).unwrap())
        );
    }
}

/// [`settings`] logging in as `user` (made by [`Host::add_user`]; the rig's key serves every user).
fn settings_as(hosts: &Hosts, user: &str) -> SshSettings {
    SshSettings { user: user.to_string(), ..settings(hosts) }
}

/// How many logins as `user` the host's sshd accepted.
fn accepted_logins_as(host: &Host, user: &str) -> usize {
    std::fs::read_to_string(host.log_path())
        .unwrap_or_default()
        .matches(&format!("Accepted publickey for {user} "))
        .count()
}

#[tokio::test]
async fn ssh_client_sudo_without_password_runs_as_root_and_writes_root_owned_files() {
    let hosts = Hosts::start(1);
    let host = hosts.host(0);
    let a = addr(host);
    host.add_user("deploy", Sudo::NoPassword);
    let root_logins = accepted_logins_as(host, "root");
    let client = SshClient::new(settings_as(&hosts, "deploy"));

    // Logged in as deploy, the script runs as root through sudo; stdin and the exit status pass
    // through sudo unchanged.
    let out = client
        .run(
            &a,
            "id -u; id -un; echo \"$SUDO_USER\"; cat; echo to-stderr >&2; exit 3",
            Some(b"via stdin\n"),
            COMMAND_TIMEOUT,
        )
        .await
        .expect("the command runs");
    assert_eq!(out.stdout, "0\nroot\ndeploy\nvia stdin\n");
    assert_eq!(out.stderr, "to-stderr\n");
    assert_eq!(out.status, 3);
    assert_eq!(
        accepted_logins_as(host, "deploy"),
        1,
        "sshd log:\n{}",
        std::fs::read_to_string(host.log_path()).unwrap()
    );
    assert_eq!(accepted_logins_as(host, "root"), root_logins, "logged in as root");
    // sudo's secure_path: what the provider installs to /usr/local/bin is found.
    let path = client.run_checked(&a, "echo \"$PATH\"", None, COMMAND_TIMEOUT).await.unwrap();
    assert!(path.split(':').any(|d| d.trim() == "/usr/local/bin"), "PATH under sudo: {path}");

    // write_file: a root-owned file with the mode, in a directory only root may write.
    let contents = b"token: s3cr3t\n\x00\xffbinary";
    client.write_file(&a, "/etc/rancher/k3s/config.yaml", contents, 0o600, COMMAND_TIMEOUT).await.unwrap();
    let written = host.root_dir().join("etc/rancher/k3s/config.yaml");
    assert_eq!(std::fs::read(&written).unwrap(), contents);
    assert_eq!(std::fs::metadata(&written).unwrap().permissions().mode() & 0o7777, 0o600);
    let stat = client.run_checked(
        &a,
        "stat -c '%a %U %G' /etc/rancher/k3s /etc/rancher/k3s/config.yaml",
        None,
        COMMAND_TIMEOUT,
    );
    assert_eq!(stat.await.unwrap(), "755 root root\n600 root root\n");
    // upload too (checked with sha256sum as root).
    let binary: Vec<u8> = (0..1u32 << 20).map(|i| (i.wrapping_mul(2654435761) >> 11) as u8).collect();
    let sha = hex::encode(Sha256::digest(&binary));
    client.upload(&a, "/usr/local/bin/k3s", &binary, 0o755, &sha, COMMAND_TIMEOUT).await.unwrap();
    let stat = client.run_checked(&a, "stat -c '%a %U %G %s' /usr/local/bin/k3s", None, COMMAND_TIMEOUT).await;
    assert_eq!(stat.unwrap(), format!("755 root root {}\n", binary.len()));
    // What deploy itself cannot do, the client can: the file is root's alone.
    let mine = host.ssh("su deploy -s /bin/sh -c 'cat /etc/rancher/k3s/config.yaml' >/dev/null 2>&1; echo $?");
    assert_eq!(mine.stdout.trim(), "1", "deploy can read a 0600 root file: {}", mine.describe());

    // A timed-out command run through sudo is stopped whole (the stop runs through sudo too).
    let err = client.run(&a, "sleep 303", None, Duration::from_secs(2)).await.unwrap_err();
    assert!(matches!(err, SshError::Timeout { .. }), "{err:?}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let left = client.run_checked(&a, "pgrep -f 'slee[p] 303' | wc -l", None, COMMAND_TIMEOUT).await;
    assert_eq!(left.unwrap().trim(), "0", "the timed-out command still runs");
    assert_eq!(client.connections_opened(), 1);
    client.close().await;
}

#[tokio::test]
async fn ssh_client_sudo_asking_for_a_password_is_refused_naming_host_and_user() {
    let hosts = Hosts::start(1);
    let host = hosts.host(0);
    let a = addr(host);
    host.add_user("deploy", Sudo::Password);
    host.add_user("nosudo", Sudo::None);

    for user in ["deploy", "nosudo"] {
        let client = SshClient::new(settings_as(&hosts, user));
        let started = Instant::now();
        let err = client.run(&a, "touch /should-not-exist", None, COMMAND_TIMEOUT).await.unwrap_err();
        let elapsed = started.elapsed();
        match &err {
            SshError::SudoPassword { host: h, user: u } => {
                assert_eq!(h, &a);
                assert_eq!(u, user);
            }
            other => panic!("{user}: expected SudoPassword, got {other:?}"),
        }
        assert!(elapsed < Duration::from_secs(10), "{user}: took {elapsed:?} (sudo waited for a password?)");
        let message = err.to_string();
        assert!(message.contains(&a) && message.contains(user) && message.contains("NOPASSWD"), "{message}");
        // The checked runners and the file writers say the same.
        let err = client.run_checked(&a, "true", None, COMMAND_TIMEOUT).await.unwrap_err();
        assert!(matches!(err, SshError::SudoPassword { .. }), "{user}: {err:?}");
        let err = client.write_file(&a, "/etc/should-not-exist", b"x", 0o600, COMMAND_TIMEOUT).await.unwrap_err();
        assert!(matches!(err, SshError::SudoPassword { .. }), "{user}: {err:?}");
        assert_eq!(client.connections_opened(), 1, "{user}");
        client.close().await;
    }
    assert!(!host.root_dir().join("should-not-exist").exists(), "a command ran as root");
    assert!(!host.root_dir().join("etc/should-not-exist").exists(), "a file was written");
    // The users did log in: it is sudo that refused, not sshd.
    let log = std::fs::read_to_string(host.log_path()).unwrap();
    assert!(log.contains("Accepted publickey for deploy ") && log.contains("Accepted publickey for nosudo "), "{log}");
}
