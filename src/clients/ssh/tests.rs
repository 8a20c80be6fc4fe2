use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use russh::keys::PublicKey;
use sha1::Sha1;

use super::*;

/// Test keys made with `ssh-keygen -t ed25519` / `-t ecdsa` (public halves only), with the
/// fingerprints `ssh-keygen -lf` printed for them.
const KEY_A: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGgPbvgO06IvtIAsSfDOpK+RhvH+XlkWFT8bgYA4dVsi";
const KEY_A_FINGERPRINT: &str = "SHA256:y7gkj/sOcj4YXEYri4lnYZ0xcMtp3pp3+wPF51n2pT8";
const KEY_B: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILHDsW8E1K0GVZ6CMKtTfRi5lEj4mIQk5VuRvRTYpi98";
const KEY_B_FINGERPRINT: &str = "SHA256:PLGkGdI4isryh4VKZlmfkPY/rgrRKO1l9Lyl5XK+aHE";
const KEY_C: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJRkWrDUBlaGz+7jE3xiDTITbSF6qTpBMQn1VaNES4ZB";
const KEY_ECDSA: &str = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBNiR/IRpBm4t+QMjddvkgYJ0+Vbygt4t/b+u9WD8blZwX/plgiKTbEpsiN8gK5WLtjI38/kmnQumassLji7jx1k=";
const KEY_ECDSA_FINGERPRINT: &str = "SHA256:X8reFzA2k6CW9KQ/JohhcHA2zA/MkZCyt1b5MZwZJtY";

/// `ssh-keygen -H` of `10.1.2.3 KEY_A` and `[node1.lan]:2222 KEY_B`.
const HASHED_BY_SSH_KEYGEN: &str = "\
|1|6q7et6b6DGbMhVRunVJ8ZoUUC6s=|/q4asUAri8DQS/6w6MsbPRsJ+7E= ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGgPbvgO06IvtIAsSfDOpK+RhvH+XlkWFT8bgYA4dVsi
|1|i6g4Tkbq8XyhTKSpdrXws2bgFmI=|2FnV3r5a3nsch1C9xvGZbYmDT8c= ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILHDsW8E1K0GVZ6CMKtTfRi5lEj4mIQk5VuRvRTYpi98
";

fn key(text: &str) -> PublicKey {
    PublicKey::from_openssh(text).expect("test key parses")
}

#[test]
fn fingerprints_are_those_ssh_keygen_prints() {
    assert_eq!(fingerprint(&key(KEY_A)), KEY_A_FINGERPRINT);
    assert_eq!(fingerprint(&key(KEY_ECDSA)), KEY_ECDSA_FINGERPRINT);
    assert_eq!(describe(&key(KEY_B)), format!("ssh-ed25519 {KEY_B_FINGERPRINT}"));
}

#[test]
fn plain_entries_match_by_name_and_port() {
    let known = KnownHosts::parse(&format!(
        "# comment\n\n10.0.0.5 {KEY_A}\nnode1.lan,10.0.0.6 {KEY_B} root@node1\n[10.0.0.7]:2222 {KEY_C}\n"
    ));
    assert!(known.skipped().is_empty());
    assert_eq!(known.check("10.0.0.5", 22, &key(KEY_A)), Verdict::Trusted);
    assert_eq!(known.check("10.0.0.6", 22, &key(KEY_B)), Verdict::Trusted);
    // Host names compare without case, as ssh lowercases them.
    assert_eq!(known.check("NODE1.lan", 22, &key(KEY_B)), Verdict::Trusted);
    // A non-22 port is looked up as [host]:port only.
    assert_eq!(known.check("10.0.0.7", 2222, &key(KEY_C)), Verdict::Trusted);
    assert_eq!(known.check("10.0.0.7", 22, &key(KEY_C)), Verdict::Unknown);
    assert_eq!(known.check("10.0.0.5", 2222, &key(KEY_A)), Verdict::Unknown);
    // An address that only shares a prefix is another host.
    assert_eq!(known.check("10.0.0.50", 22, &key(KEY_A)), Verdict::Unknown);
}

#[test]
fn another_key_for_a_known_host_is_a_mismatch_naming_the_expected_keys() {
    let known = KnownHosts::parse(&format!("10.0.0.5 {KEY_A}\n10.0.0.5 {KEY_ECDSA}\n"));
    assert_eq!(
        known.check("10.0.0.5", 22, &key(KEY_B)),
        Verdict::Mismatch {
            expected: vec![
                format!("ssh-ed25519 {KEY_A_FINGERPRINT}"),
                format!("ecdsa-sha2-nistp256 {KEY_ECDSA_FINGERPRINT}")
            ]
        }
    );
    // Either of several keys of a host is fine.
    assert_eq!(known.check("10.0.0.5", 22, &key(KEY_ECDSA)), Verdict::Trusted);
    assert_eq!(known.check("10.0.0.9", 22, &key(KEY_B)), Verdict::Unknown);
}

#[test]
fn hashed_entries_of_ssh_keygen_match() {
    let known = KnownHosts::parse(HASHED_BY_SSH_KEYGEN);
    assert!(known.skipped().is_empty());
    assert_eq!(known.check("10.1.2.3", 22, &key(KEY_A)), Verdict::Trusted);
    assert_eq!(known.check("node1.lan", 2222, &key(KEY_B)), Verdict::Trusted);
    assert_eq!(known.check("node1.lan", 22, &key(KEY_B)), Verdict::Unknown);
    assert!(matches!(known.check("10.1.2.3", 22, &key(KEY_C)), Verdict::Mismatch { .. }));
}

#[test]
fn hashed_entries_made_here_match() {
    // HMAC-SHA1 keyed by a random-looking salt over the name as ssh writes it.
    let salt = b"0123456789abcdefghij";
    let entry = |name: &str| {
        let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(salt).unwrap();
        mac.update(name.as_bytes());
        format!("|1|{}|{}", STANDARD.encode(salt), STANDARD.encode(mac.finalize().into_bytes()))
    };
    assert_eq!(hash_name("[db.lan]:2200", salt), entry("[db.lan]:2200"));
    let known = KnownHosts::parse(&format!("{} {KEY_A}\n{} {KEY_ECDSA}\n", entry("db.lan"), entry("[db.lan]:2200")));
    assert_eq!(known.check("db.lan", 22, &key(KEY_A)), Verdict::Trusted);
    assert_eq!(known.check("db.lan", 2200, &key(KEY_ECDSA)), Verdict::Trusted);
    assert_eq!(known.check("DB.lan", 2200, &key(KEY_ECDSA)), Verdict::Trusted);
    assert_eq!(
        known.check("db.lan", 2200, &key(KEY_A)),
        Verdict::Mismatch { expected: vec![format!("ecdsa-sha2-nistp256 {KEY_ECDSA_FINGERPRINT}")] }
    );
    assert_eq!(known.check("web.lan", 22, &key(KEY_A)), Verdict::Unknown);
}

#[test]
fn revoked_keys_are_refused_and_cert_authorities_ignored() {
    let known = KnownHosts::parse(&format!(
        "10.0.0.5 {KEY_A}\n@revoked * {KEY_A}\n@cert-authority *.lan {KEY_B}\n10.0.0.6 {KEY_C}\n"
    ));
    assert_eq!(known.check("10.0.0.5", 22, &key(KEY_A)), Verdict::Revoked);
    assert_eq!(known.check("10.0.0.6", 22, &key(KEY_C)), Verdict::Trusted);
    // A CA key is not a host key.
    assert_eq!(known.check("node.lan", 22, &key(KEY_B)), Verdict::Unknown);
}

#[test]
fn wildcards_and_negations() {
    let known = KnownHosts::parse(&format!("10.0.0.*,!10.0.0.13 {KEY_A}\nnode?.lan {KEY_B}\n"));
    assert_eq!(known.check("10.0.0.12", 22, &key(KEY_A)), Verdict::Trusted);
    assert_eq!(known.check("10.0.0.13", 22, &key(KEY_A)), Verdict::Unknown);
    assert_eq!(known.check("node7.lan", 22, &key(KEY_B)), Verdict::Trusted);
    assert_eq!(known.check("node17.lan", 22, &key(KEY_B)), Verdict::Unknown);
}

#[test]
fn broken_lines_are_skipped_and_counted() {
    let known = KnownHosts::parse(&format!(
        "10.0.0.5 {KEY_A}\n10.0.0.6 ssh-ed25519 not-base64!\n10.0.0.7\n@bogus 10.0.0.8 {KEY_B}\n|1|x|y {KEY_B}\n"
    ));
    assert_eq!(known.skipped(), &[2, 3, 4, 5]);
    assert_eq!(known.check("10.0.0.5", 22, &key(KEY_A)), Verdict::Trusted);
    assert_eq!(known.check("10.0.0.6", 22, &key(KEY_A)), Verdict::Unknown);
}

#[test]
fn known_key_types_are_asked_for_first() {
    let known = KnownHosts::parse(&format!("10.0.0.5 {KEY_ECDSA}\n10.0.0.5 {KEY_A}\n"));
    let names: Vec<String> = known.algorithms("10.0.0.5", 22).iter().map(|a| a.as_str().to_string()).collect();
    assert_eq!(names, ["ecdsa-sha2-nistp256", "ssh-ed25519"]);
    assert!(known.algorithms("10.0.0.6", 22).is_empty());
}

#[test]
fn lookup_names() {
    assert_eq!(lookup_name("Node1", 22), "node1");
    assert_eq!(lookup_name("node1", 2222), "[node1]:2222");
    assert_eq!(lookup_name("[fd00::1]", 22), "fd00::1");
    assert_eq!(lookup_name("fd00::1", 2222), "[fd00::1]:2222");
}

#[test]
fn summaries_are_the_first_line_cut_at_80_characters() {
    assert_eq!(summarize("systemctl restart k3s"), "systemctl restart k3s");
    assert_eq!(summarize("\n  set -e\n  echo secret-from-line-two\n"), "set -e…");
    let long = "x".repeat(100);
    assert_eq!(summarize(&long), format!("{}…", "x".repeat(80)));
    // Cut on a character, not a byte.
    let wide = "é".repeat(90);
    assert_eq!(summarize(&wide).chars().count(), 81);
    assert_eq!(summarize(""), "");
}

#[test]
fn tails_prefer_stderr_and_keep_order() {
    let output = CommandOutput { status: 1, stdout: "a\nb\nc\n".into(), stderr: "e1\ne2\n\n".into() };
    assert_eq!(output.tail(3), "c\ne1\ne2");
    assert_eq!(output.tail(10), "a\nb\nc\ne1\ne2");
    assert_eq!(output.tail(1), "e2");
    assert_eq!(output.tail(0), "");
    assert!(!output.success());
    assert!(CommandOutput { status: 0, stdout: String::new(), stderr: String::new() }.success());
}

#[test]
fn errors_quote_the_summary_not_the_script() {
    let script = "cat > /etc/token <<EOF\nsuper-secret-token\nEOF";
    let output = CommandOutput { status: 2, stdout: String::new(), stderr: "permission denied\n".into() };
    let error = checked("10.0.0.5", &summarize(script), output).unwrap_err();
    let text = error.to_string();
    assert!(!text.contains("super-secret-token"), "{text}");
    assert_eq!(text, "`cat > /etc/token <<EOF…` failed on 10.0.0.5 with exit status 2:\npermission denied");
    let timeout = SshError::Timeout { host: "h".into(), command: "sleep 10".into(), after: Duration::from_secs(2) };
    assert_eq!(timeout.to_string(), "`sleep 10` on h did not finish within 2s");
}

#[test]
fn only_unreachable_is_retried() {
    let unreachable = SshError::Unreachable { host: "h".into(), detail: "refused".into() };
    assert!(unreachable.is_transient());
    assert_eq!(unreachable.noting("gave up").to_string(), "cannot reach h over SSH: refused; gave up");
    assert!(!SshError::AuthRejected { host: "h".into(), user: "u".into(), detail: "d".into() }.is_transient());
    assert!(!SshError::HostKeyUnknown { host: "h".into(), fingerprint: "f".into() }.is_transient());
    let interrupted = SshError::from(Interrupted::Cancelled);
    assert_eq!(interrupted.interrupted(), Some(Interrupted::Cancelled));
    assert!(!interrupted.is_transient());
}

#[test]
fn shell_quoting_survives_quotes() {
    assert_eq!(shell_quote("it's"), r"'it'\''s'");
    let script = write_script("/etc/o'dd/file", 0o600, None);
    assert!(script.contains(r"p='/etc/o'\''dd/file'"), "{script}");
    assert!(script.contains("chmod 600 --"), "{script}");
    let upload = write_script("/usr/local/bin/k3s", 0o755, Some("abc"));
    assert!(upload.contains("!= 'abc' ]"), "{upload}");
    assert!(upload.contains("chmod 755 --"), "{upload}");
}

#[test]
fn bad_keys_are_named_without_quoting_them() {
    let pem = SecretString::from(
        "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAAnotakeyatallAAAA\n-----END OPENSSH PRIVATE KEY-----\n",
    );
    let error = decode_key(&pem, None).unwrap_err();
    assert!(!error.contains("AAAAnotakey"), "{error}");
    let garbage = SecretString::from("hello");
    let error = decode_key(&garbage, None).unwrap_err();
    assert!(error.contains("no recognised BEGIN"), "{error}");
    assert!(!error.contains("hello"), "{error}");
}
