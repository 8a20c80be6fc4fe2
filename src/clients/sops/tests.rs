//! Tests against files the real sops wrote: committed fixtures (always run, see
//! testdata/regenerate.sh) and fixtures generated at test time when a sops binary
//! is available (`TF_ACC_SOPS`, else `sops` on PATH).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::*;

/// THROWAWAY keys: the first decrypts every fixture, the second holds one Shamir share.
const TEST_KEYS: &str = include_str!("testdata/test-keys.txt");

fn all_test_keys() -> Keys {
    Keys::from_identities_text(TEST_KEYS).unwrap()
}

fn first_test_key() -> Keys {
    let first = TEST_KEYS
        .lines()
        .find(|l| l.starts_with("AGE-SECRET-KEY-1"))
        .unwrap();
    Keys::from_identities_text(first).unwrap()
}

fn decrypt_fixture(contents: &[u8], format: Format) -> Decrypted {
    decrypt(contents, format, &first_test_key()).unwrap()
}

/// YAML as text (see below), everything else byte for byte.
fn assert_same_plaintext(ours: &[u8], sops: &[u8], format: Format, what: &str) {
    if format == Format::Yaml {
        assert_same_yaml_text(ours, sops, what);
    } else {
        assert_eq!(
            String::from_utf8_lossy(ours),
            String::from_utf8_lossy(sops),
            "{what}"
        );
        assert_eq!(ours, sops, "{what}");
    }
}

/// Our YAML is sops' text, except that sops also prints the file's comments, which
/// serde_yaml does not give us, and prints timestamps that were never encrypted
/// unquoted, where we quote them (serde_yaml hands them over as strings).
fn assert_same_yaml_text(ours: &[u8], sops: &[u8], what: &str) {
    let unquote_times = regex::Regex::new(r#"(?m): "(\d{4}-\d\d-\d\dT[^"]*)"$"#).unwrap();
    let ours = unquote_times.replace_all(std::str::from_utf8(ours).unwrap(), ": $1");
    let sops: String = std::str::from_utf8(sops)
        .unwrap()
        .lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .map(|line| format!("{line}\n"))
        .collect();
    assert_eq!(ours, sops, "{what}");
}

fn strings(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

mod fixtures {
    use super::*;

    const BASIC_YAML: &[u8] = include_bytes!("testdata/basic.enc.yaml");
    const BASIC_JSON: &[u8] = include_bytes!("testdata/basic.enc.json");
    const BASIC_ENV: &[u8] = include_bytes!("testdata/basic.enc.env");
    const BLOB: &[u8] = include_bytes!("testdata/blob.enc.bin");
    const MULTIDOC: &[u8] = include_bytes!("testdata/multidoc.enc.yaml");
    const SECRET: &[u8] = include_bytes!("testdata/secret.enc.yaml");
    const SHAMIR: &[u8] = include_bytes!("testdata/shamir.enc.yaml");

    #[test]
    fn yaml_decrypts_to_what_sops_prints() {
        let decrypted = decrypt_fixture(BASIC_YAML, Format::Yaml);
        let expected = include_bytes!("testdata/expected/basic.yaml");
        assert_same_plaintext(&decrypted.raw(), expected, Format::Yaml, "basic.yaml");

        let flat = decrypted.flattened();
        for (key, value) in [
            ("name", "hello"),
            ("port", "8080"),
            ("negative", "-17"),
            ("ratio", "1.5"),
            ("big", "1e+06"),
            ("tiny", "1e-05"),
            ("enabled", "true"),
            ("off", "false"),
            ("when", "2024-01-01T00:00:00Z"),
            ("empty", ""),
            ("nothing", "null"),
            ("nested.key", "value"),
            ("nested.list.0", "a"),
            ("nested.list.1", "2"),
            ("nested.list.2.x", "1.25"),
            ("nested.list.2.y.0", "true"),
            ("nested.list.2.y.1", "s"),
            ("nested.deeper.a.b", "c"),
            ("unicode", "héllo → 世界 🔐"),
            ("quoted_number", "0123"),
            ("multi", "line1\nline2\n"),
            ("password_unencrypted", "shown-in-clear"),
            ("port_unencrypted", "31"),
            ("ratio_unencrypted", "2.5"),
            ("flag_unencrypted", "false"),
            ("list_unencrypted.1", "two"),
        ] {
            assert_eq!(
                flat.get(key).map(String::as_str),
                Some(value),
                "flattened {key}"
            );
        }
    }

    #[test]
    fn yaml_secret_data_serializes_nested_values_as_yaml() {
        let data = decrypt_fixture(BASIC_YAML, Format::Yaml)
            .secret_data()
            .unwrap();
        assert_eq!(data["port"], b"8080");
        assert_eq!(data["enabled"], b"true");
        assert_eq!(data["nothing"], b"");
        let nested: serde_yaml::Value = serde_yaml::from_slice(&data["nested"]).unwrap();
        assert_eq!(nested["deeper"]["a"]["b"], "c");
        assert_eq!(nested["list"][2]["x"], 1.25);
    }

    #[test]
    fn json_decrypts_byte_for_byte_like_sops() {
        let decrypted = decrypt_fixture(BASIC_JSON, Format::Json);
        let expected = include_bytes!("testdata/expected/basic.json");
        assert_same_plaintext(&decrypted.raw(), expected, Format::Json, "basic.json");

        let flat = decrypted.flattened();
        assert_eq!(flat["port"], "8080");
        assert_eq!(flat["huge"], "1e+21");
        assert_eq!(flat["small"], "1.5e-7");
        assert_eq!(flat["nested.list.3.deep"], "er");
        assert_eq!(flat["dup"], "2");
        let data = decrypted.secret_data().unwrap();
        assert_eq!(
            data["nested"],
            br#"{"list":[1,"two",false,{"deep":"er"}],"empty":{},"none":[]}"#
        );
        assert_eq!(data["html"], br#"<a href="x">&</a>"#);
    }

    #[test]
    fn dotenv_decrypts_byte_for_byte_like_sops() {
        let decrypted = decrypt_fixture(BASIC_ENV, Format::Dotenv);
        let expected = include_bytes!("testdata/expected/basic.env");
        assert_same_plaintext(&decrypted.raw(), expected, Format::Dotenv, "basic.env");
        assert_eq!(
            decrypted.flattened(),
            strings(&[
                ("DB_USER", "admin"),
                ("DB_PASSWORD", "s3cr3t=with=equals"),
                ("EMPTY", ""),
                ("MULTI", "line1\nline2"),
                ("PUBLIC_unencrypted", "visible"),
            ])
        );
        assert_eq!(
            decrypted.secret_data().unwrap()["DB_PASSWORD"],
            b"s3cr3t=with=equals"
        );
    }

    #[test]
    fn binary_gives_back_the_original_bytes() {
        let original = include_bytes!("testdata/src/blob.bin");
        let decrypted = decrypt_fixture(BLOB, Format::Binary);
        assert_eq!(decrypted.raw(), original);
        assert_eq!(decrypted.secret_data().unwrap()["data"], original);
        assert_eq!(decrypted.flattened().keys().collect::<Vec<_>>(), ["data"]);
    }

    #[test]
    fn multiple_yaml_documents_with_an_encrypted_suffix() {
        let decrypted = decrypt_fixture(MULTIDOC, Format::Yaml);
        let expected = include_bytes!("testdata/expected/multidoc.yaml");
        assert_same_plaintext(&decrypted.raw(), expected, Format::Yaml, "multidoc.yaml");
        let flat = decrypted.flattened();
        assert_eq!(flat["token_secret"], "abc");
        assert_eq!(flat["nested.password_secret"], "xyz");
        assert_eq!(flat["nested.plain"], "3");
    }

    #[test]
    fn kubernetes_secret_manifest_gives_its_data() {
        let decrypted = decrypt_fixture(SECRET, Format::Yaml);
        let expected = include_bytes!("testdata/expected/secret.yaml");
        assert_same_plaintext(&decrypted.raw(), expected, Format::Yaml, "secret.yaml");
        let data = decrypted.secret_data().unwrap();
        let data: BTreeMap<&str, &[u8]> = data
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_slice()))
            .collect();
        assert_eq!(
            data,
            BTreeMap::from([
                ("password", &b"secret-password"[..]),
                ("shared", b"from-stringData"),
                ("username", b"admin"),
                ("config.yaml", b"port: 5432\n"),
            ])
        );
    }

    #[test]
    fn mac_only_encrypted_ignores_clear_text_edits_like_sops() {
        // With mac_only_encrypted, sops leaves clear-text values out of the MAC.
        let edited = String::from_utf8(SECRET.to_vec())
            .unwrap()
            .replace("namespace: apps", "namespace: other");
        assert_ne!(edited.as_bytes(), SECRET);
        let decrypted = decrypt_fixture(edited.as_bytes(), Format::Yaml);
        assert_eq!(decrypted.flattened()["metadata.namespace"], "other");

        let cleared = String::from_utf8(SECRET.to_vec())
            .unwrap()
            .lines()
            .map(|l| {
                if l.trim_start().starts_with("username:") {
                    "    username: admin"
                } else {
                    l
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        let err = decrypt(cleared.as_bytes(), Format::Yaml, &first_test_key()).unwrap_err();
        assert!(
            matches!(err, SopsError::Value { ref path, .. } if path == "stringData.username"),
            "{err}"
        );
        assert!(!err.to_string().contains("admin"), "{err}");
    }

    #[test]
    fn shamir_key_groups_need_the_threshold() {
        let decrypted = decrypt(SHAMIR, Format::Yaml, &all_test_keys()).unwrap();
        assert_eq!(
            decrypted.flattened(),
            decrypt_fixture(BASIC_YAML, Format::Yaml).flattened()
        );

        let err = decrypt(SHAMIR, Format::Yaml, &first_test_key()).unwrap_err();
        assert!(matches!(err, SopsError::NoMatchingKey { .. }), "{err}");
        assert!(
            err.to_string()
                .contains("3 key groups, 2 of which are needed; 1 could be decrypted"),
            "{err}"
        );
    }

    #[test]
    fn tampering_is_refused() {
        let yaml = std::str::from_utf8(BASIC_YAML).unwrap();
        let replace_line = |prefix: &str, with: &str| {
            yaml.lines()
                .map(|l| if l.starts_with(prefix) { with } else { l })
                .collect::<Vec<_>>()
                .join("\n")
        };
        let line_of = |prefix: &str| {
            yaml.lines()
                .find(|l| l.starts_with(prefix))
                .unwrap()
                .to_owned()
        };
        let value_of = |prefix: &str| line_of(prefix).split_once(": ").unwrap().1.to_owned();

        let cases = [
            (
                "clear-text value edited",
                replace_line("password_unencrypted:", "password_unencrypted: edited"),
            ),
            ("value removed", replace_line("port:", "")),
            (
                "lastmodified edited",
                replace_line(
                    "    lastmodified:",
                    "    lastmodified: \"2020-01-01T00:00:00Z\"",
                ),
            ),
            ("mac removed", replace_line("    mac:", "    mac: \"\"")),
            (
                "mac replaced",
                replace_line("    mac:", &format!("    mac: {}", value_of("name:"))),
            ),
        ];
        for (what, tampered) in cases {
            let err = decrypt(tampered.as_bytes(), Format::Yaml, &first_test_key()).unwrap_err();
            assert!(matches!(err, SopsError::MacMismatch), "{what}: {err}");
            assert!(
                err.to_string().contains("modified after it was encrypted"),
                "{what}: {err}"
            );
        }

        // A ciphertext moved to another key fails to authenticate: the path is bound in.
        let moved = replace_line("negative:", &format!("negative: {}", value_of("port:")));
        let err = decrypt(moved.as_bytes(), Format::Yaml, &first_test_key()).unwrap_err();
        assert!(
            matches!(err, SopsError::Value { ref path, .. } if path == "negative"),
            "{err}"
        );

        let env = String::from_utf8(BASIC_ENV.to_vec())
            .unwrap()
            .replace("=visible", "=edited");
        let err = decrypt(env.as_bytes(), Format::Dotenv, &first_test_key()).unwrap_err();
        assert!(matches!(err, SopsError::MacMismatch), "{err}");
    }

    #[test]
    fn malformed_values_are_errors_that_do_not_leak() {
        let yaml = std::str::from_utf8(BASIC_YAML).unwrap();
        let name = yaml.lines().find(|l| l.starts_with("name:")).unwrap();
        let enc = name.trim_start_matches("name: ");
        let iv = enc
            .split(",iv:")
            .nth(1)
            .unwrap()
            .split(",tag:")
            .next()
            .unwrap();
        let truncated = &enc[..enc.len() / 2];
        let cases = [
            truncated.to_owned(),
            enc.replacen("data:", "data:!!", 1),
            enc.replacen(iv, "AAAA", 1),
            enc.replacen(iv, "AAECAwQFBgcICQoL", 1),
            enc.replacen(",tag:", ",tag:AA", 1),
            enc.replacen("type:str", "type:widget", 1),
            enc.replacen("type:str", "type:int", 1),
            "hello".to_owned(),
        ];
        for bad in cases {
            let tampered = yaml.replacen(name, &format!("name: {bad}"), 1);
            let err = decrypt(tampered.as_bytes(), Format::Yaml, &first_test_key()).unwrap_err();
            assert!(
                matches!(err, SopsError::Value { ref path, .. } if path == "name"),
                "{bad}: {err}"
            );
            assert!(!err.to_string().contains("hello"), "{err}");
        }
    }

    #[test]
    fn garbage_never_panics() {
        let keys = first_test_key();
        let inputs: [(&[u8], Format); 5] = [
            (BASIC_YAML, Format::Yaml),
            (BASIC_JSON, Format::Json),
            (BASIC_ENV, Format::Dotenv),
            (BLOB, Format::Binary),
            (SHAMIR, Format::Yaml),
        ];
        for (contents, format) in inputs {
            // Prefixes, and single bytes overwritten, sampled across the file.
            for len in (0..contents.len()).step_by(13) {
                let _ = decrypt(&contents[..len], format, &keys);
            }
            for at in (0..contents.len()).step_by(29) {
                let mut mangled = contents.to_vec();
                mangled[at] ^= 0x5a;
                // Comments, key names and recipients are outside the MAC (as in
                // sops), so only the absence of panics is checked here.
                let _ = decrypt(&mangled, format, &keys);
            }
            for other in [Format::Yaml, Format::Json, Format::Dotenv, Format::Binary] {
                let _ = decrypt(contents, other, &keys);
            }
        }
        for garbage in [
            &b""[..],
            b"\x00\xff\xfe",
            b"[1, 2]",
            b"just text",
            b"{",
            b"a: [",
            b"=\n",
            b"\"x\"",
        ] {
            for format in [Format::Yaml, Format::Json, Format::Dotenv, Format::Binary] {
                assert!(decrypt(garbage, format, &keys).is_err());
            }
        }
    }

    #[test]
    fn plain_files_are_not_sops_files() {
        let keys = first_test_key();
        for (contents, format) in [
            (&b"a: 1\n"[..], Format::Yaml),
            (b"a: 1\n---\nsops: {}\n", Format::Yaml),
            (b"{\"a\": 1}", Format::Json),
            (b"A=1\n", Format::Dotenv),
        ] {
            let err = decrypt(contents, format, &keys).unwrap_err();
            assert!(matches!(err, SopsError::NotEncrypted), "{err}");
            assert!(err.to_string().contains("not sops-encrypted"));
        }
        let err = decrypt(b"a: 1\nsops: {lastmodified: x}\n", Format::Yaml, &keys).unwrap_err();
        assert!(matches!(err, SopsError::Metadata(_)), "{err}");
    }

    #[test]
    fn key_errors_explain_themselves_without_secrets() {
        let err = decrypt(
            BASIC_YAML,
            Format::Yaml,
            &Keys::load(None, &|_| None).unwrap(),
        )
        .unwrap_err();
        assert!(matches!(err, SopsError::NoKeys { .. }), "{err}");
        let message = err.to_string();
        for place in [
            "secrets.age_key_file",
            "SOPS_AGE_KEY",
            "SOPS_AGE_KEY_FILE",
            "sops/age/keys.txt",
        ] {
            assert!(message.contains(place), "{message}");
        }

        let stranger = age::x25519::Identity::generate();
        let secret = {
            use age::secrecy::ExposeSecret;
            stranger.to_string().expose_secret().to_owned()
        };
        let keys = Keys::from_identities_text(&secret).unwrap();
        let err = decrypt(BASIC_YAML, Format::Yaml, &keys).unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, SopsError::NoMatchingKey { .. }), "{message}");
        assert!(
            message.contains(&first_test_key().recipients()[0]),
            "{message}"
        );
        assert!(
            message.contains(&stranger.to_public().to_string()),
            "{message}"
        );
        assert!(!message.contains(&secret), "{message}");
    }

    #[test]
    fn debug_is_redacted() {
        let debug = format!("{:?}", decrypt_fixture(BASIC_YAML, Format::Yaml));
        assert!(
            !debug.contains("hello") && debug.contains("redacted"),
            "{debug}"
        );
    }
}

#[test]
fn formats_follow_the_file_extension_like_sops() {
    for (path, format) in [
        ("a/b.yaml", Format::Yaml),
        ("b.yml", Format::Yaml),
        ("c.json", Format::Json),
        (".env", Format::Dotenv),
        ("prod.env", Format::Dotenv),
        ("key.pem", Format::Binary),
        ("noext", Format::Binary),
        ("upper.YAML", Format::Binary),
    ] {
        assert_eq!(Format::from_path(Path::new(path)), format, "{path}");
    }
}

/// Fixtures made at test time by the real sops and age-keygen.
mod live {
    use super::*;

    const YAML_SAMPLE: &str = r#"# comment at the top
name: hello
port: 8080
ratio: 0.125
big: 123456789.0
enabled: true
disabled: false
when: 2024-02-29T12:30:00.5+01:00
empty: ""
nothing: ~
nested:
    # a comment inside
    key: value # trailing comment
    list:
        - one
        - 2
        - {x: -3.5, "y": [true, "s", null]}
    api_secret: s3cr3t
    public_url: https://example.com
unicode: "日本語 ✓ ünïcödé"
multi: |
    first line
    second line
token_secret: abc123
public_port: 443
count_unencrypted: 7
note_unencrypted: clear
"#;

    const SECRET_MANIFEST: &str = r#"apiVersion: v1
kind: Secret
metadata:
    name: app
    annotations:
        note: "not secret"
type: Opaque
data:
    token: dG9rZW4tdmFsdWU=
stringData:
    user: admin
    port: "5432"
"#;

    const MULTI_DOC: &str = "a: 1\nb: [x, y]\n---\nc: {d: e}\n---\n# only a comment\n";

    const JSON_SAMPLE: &str = r#"{
  "name": "hello",
  "numbers": [0, -1, 1.5, 1e21, 1e-7, 123456789012, 0.1],
  "flags": {"on": true, "off": false, "none": null},
  "text": "quote \" backslash \\ tab \t newline \n <html> & \u2028 ü",
  "nested": {"deep": {"deeper": ["a", {"b": "c"}]}, "empty": {}, "list": []},
  "plain_unencrypted": "clear"
}"#;

    const DOTENV_SAMPLE: &str =
        "# database\nDB_HOST=db.internal\nDB_PASSWORD=p@ss=word\nEMPTY=\nMULTILINE=a\\nb\nAPI_SECRET=xyz\nPLAIN_unencrypted=ok\n";

    /// File name, plaintext, `sops encrypt` options, creation rule.
    type Case<'a> = (&'a str, &'a [u8], &'a [&'a str], Option<&'a str>);

    struct LiveSops {
        bin: PathBuf,
        dir: tempfile::TempDir,
        key_file: PathBuf,
        recipient: String,
    }

    fn live_sops() -> Option<LiveSops> {
        let bin = std::env::var_os("TF_ACC_SOPS")
            .map(PathBuf::from)
            .or_else(|| find_on_path("sops"));
        let Some(bin) = bin else {
            eprintln!("SKIPPED: no sops binary (set TF_ACC_SOPS or put sops on PATH); only the committed fixtures were tested");
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        let key_file = dir.path().join("keys.txt");
        let keys = new_key_text(&dir).unwrap_or_else(|| {
            eprintln!("age-keygen not found: using the committed test key");
            TEST_KEYS.to_owned()
        });
        std::fs::write(&key_file, &keys).unwrap();
        let recipient = Keys::from_identities_text(&keys)
            .unwrap()
            .recipients()
            .remove(0);
        Some(LiveSops {
            bin,
            dir,
            key_file,
            recipient,
        })
    }

    fn find_on_path(name: &str) -> Option<PathBuf> {
        let path = std::env::var_os("PATH")?;
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    }

    /// A fresh identity from age-keygen, as its key file text.
    fn new_key_text(dir: &tempfile::TempDir) -> Option<String> {
        let out = Command::new("age-keygen")
            .current_dir(dir.path())
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8(out.stdout).unwrap())
    }

    impl LiveSops {
        fn keys(&self) -> Keys {
            Keys::from_identities_text(&std::fs::read_to_string(&self.key_file).unwrap()).unwrap()
        }

        fn sops(&self, args: &[&str]) -> std::process::Output {
            Command::new(&self.bin)
                .args(args)
                .current_dir(self.dir.path())
                .env("HOME", self.dir.path())
                .env("SOPS_AGE_KEY_FILE", &self.key_file)
                .env_remove("SOPS_AGE_KEY")
                .env_remove("SOPS_AGE_KEY_CMD")
                .env_remove("SOPS_AGE_RECIPIENTS")
                .env_remove("XDG_CONFIG_HOME")
                .output()
                .expect("sops runs")
        }

        fn write(&self, name: &str, contents: &[u8]) -> String {
            std::fs::write(self.dir.path().join(name), contents).unwrap();
            name.to_owned()
        }

        /// Encrypts to our recipient with command-line options, or with a
        /// `.sops.yaml`-style creation rule when `rule` is given.
        fn encrypt(
            &self,
            name: &str,
            plaintext: &[u8],
            options: &[&str],
            rule: Option<&str>,
        ) -> Vec<u8> {
            let input = self.write(name, plaintext);
            let mut args = vec!["--config"];
            let config;
            match rule {
                Some(rule) => {
                    config = self.write(
                        "rules.sops.yaml",
                        format!("creation_rules:\n  - age: {}\n{rule}", self.recipient).as_bytes(),
                    );
                    args.extend([config.as_str(), "encrypt"]);
                }
                None => args.extend(["/dev/null", "encrypt", "--age", &self.recipient]),
            }
            args.extend(options);
            args.push(&input);
            let out = self.sops(&args);
            assert!(
                out.status.success(),
                "sops encrypt {name}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            out.stdout
        }

        fn decrypt(&self, name: &str, encrypted: &[u8]) -> std::process::Output {
            let file = self.write(&format!("encrypted-{name}"), encrypted);
            self.sops(&["--config", "/dev/null", "decrypt", &file])
        }

        /// Encrypts with sops, then checks that we decrypt to what `sops -d` prints.
        fn check(
            &self,
            name: &str,
            plaintext: &[u8],
            options: &[&str],
            rule: Option<&str>,
        ) -> Decrypted {
            let encrypted = self.encrypt(name, plaintext, options, rule);
            let format = Format::from_path(Path::new(name));
            let ours = decrypt(&encrypted, format, &self.keys())
                .unwrap_or_else(|e| panic!("{name} {options:?} {rule:?}: {e}"));
            let out = self.decrypt(name, &encrypted);
            assert!(
                out.status.success(),
                "sops decrypt {name}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert_same_plaintext(
                &ours.raw(),
                &out.stdout,
                format,
                &format!("{name} {options:?} {rule:?}"),
            );
            ours
        }
    }

    #[test]
    fn every_format_and_rule_decrypts_like_sops() {
        let Some(sops) = live_sops() else { return };
        let yaml = YAML_SAMPLE.as_bytes();
        let cases: &[Case] = &[
            ("default.yaml", yaml, &[], None),
            (
                "unencrypted-suffix.yaml",
                yaml,
                &["--unencrypted-suffix", "_unencrypted"],
                None,
            ),
            (
                "encrypted-suffix.yaml",
                yaml,
                &["--encrypted-suffix", "_secret"],
                None,
            ),
            (
                "unencrypted-regex.yaml",
                yaml,
                &["--unencrypted-regex", "^(public_|nested$)"],
                None,
            ),
            (
                "encrypted-regex.yaml",
                yaml,
                &["--encrypted-regex", "^(nested|name)$"],
                None,
            ),
            (
                "secret.yaml",
                SECRET_MANIFEST.as_bytes(),
                &["--encrypted-regex", "^(data|stringData)$"],
                None,
            ),
            (
                "mac-only.yaml",
                yaml,
                &[],
                Some("    encrypted_regex: \"^(nested|port)$\"\n    mac_only_encrypted: true\n"),
            ),
            (
                "comments.yaml",
                yaml,
                &[],
                Some("    encrypted_comment_regex: \"a comment\"\n"),
            ),
            (
                "uncomments.yaml",
                yaml,
                &[],
                Some("    unencrypted_comment_regex: \"top\"\n    mac_only_encrypted: true\n"),
            ),
            ("multi.yaml", MULTI_DOC.as_bytes(), &[], None),
            ("sample.json", JSON_SAMPLE.as_bytes(), &[], None),
            (
                "regex.json",
                JSON_SAMPLE.as_bytes(),
                &["--encrypted-regex", "^(flags|text)$"],
                None,
            ),
            (
                "mac-only.json",
                JSON_SAMPLE.as_bytes(),
                &[],
                Some("    unencrypted_regex: \"^nested$\"\n    mac_only_encrypted: true\n"),
            ),
            ("sample.env", DOTENV_SAMPLE.as_bytes(), &[], None),
            (
                "suffix.env",
                DOTENV_SAMPLE.as_bytes(),
                &["--encrypted-suffix", "_SECRET"],
                None,
            ),
            (
                "blob.bin",
                &[0, 1, 2, 255, 254, b'\n', b'{', 0x80, b'a'],
                &[],
                None,
            ),
            ("empty.bin", b"", &[], None),
            ("text.txt", "plain text ✓\n".as_bytes(), &[], None),
        ];
        for (name, plaintext, options, rule) in cases {
            sops.check(name, plaintext, options, *rule);
        }

        let secret = sops.check(
            "k8s.yaml",
            SECRET_MANIFEST.as_bytes(),
            &["--encrypted-regex", "^(data|stringData)$"],
            None,
        );
        let data = secret.secret_data().unwrap();
        assert_eq!(data.keys().collect::<Vec<_>>(), ["port", "token", "user"]);
        assert_eq!(data["token"], b"token-value");
        assert_eq!(data["port"], b"5432");
    }

    #[test]
    fn several_recipients_and_shamir_groups() {
        let Some(sops) = live_sops() else { return };
        let (Some(second), Some(third)) = (new_key_text(&sops.dir), new_key_text(&sops.dir)) else {
            eprintln!("SKIPPED: age-keygen not found");
            return;
        };
        let public = |text: &str| {
            Keys::from_identities_text(text)
                .unwrap()
                .recipients()
                .remove(0)
        };
        let (second_public, third_public) = (public(&second), public(&third));

        let others = format!("{second_public},{}", sops.recipient);
        sops.check(
            "several.yaml",
            YAML_SAMPLE.as_bytes(),
            &["--age", &others],
            None,
        );

        let config = sops.write(
            "shamir.sops.yaml",
            format!(
                "creation_rules:\n  - shamir_threshold: 2\n    key_groups:\n      - age: [{}]\n      - age: [{second_public}]\n      - age: [{third_public}]\n",
                sops.recipient
            )
            .as_bytes(),
        );
        let input = sops.write("shamir.yaml", YAML_SAMPLE.as_bytes());
        let out = sops.sops(&["--config", &config, "encrypt", &input]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let encrypted = out.stdout;

        let err = decrypt(&encrypted, Format::Yaml, &sops.keys()).unwrap_err();
        assert!(matches!(err, SopsError::NoMatchingKey { .. }), "{err}");
        let two = Keys::from_identities_text(&format!(
            "{}\n{third}",
            std::fs::read_to_string(&sops.key_file).unwrap()
        ))
        .unwrap();
        let ours = decrypt(&encrypted, Format::Yaml, &two).unwrap();
        assert_eq!(ours.flattened()["nested.api_secret"], "s3cr3t");
    }

    #[test]
    fn sops_and_we_both_refuse_a_tampered_file() {
        let Some(sops) = live_sops() else { return };
        let encrypted = sops.encrypt("tamper.yaml", YAML_SAMPLE.as_bytes(), &[], None);
        let tampered = String::from_utf8(encrypted)
            .unwrap()
            .replace("note_unencrypted: clear", "note_unencrypted: changed");
        assert!(!sops
            .decrypt("tamper.yaml", tampered.as_bytes())
            .status
            .success());
        let err = decrypt(tampered.as_bytes(), Format::Yaml, &sops.keys()).unwrap_err();
        assert!(matches!(err, SopsError::MacMismatch), "{err}");
    }
}

/// The fingerprint key follows the identity that decrypts a file, not the file: files for
/// the same identity share it (so a digest survives re-encryption), another identity's
/// key differs, and it is never the identity itself.
#[test]
fn digest_key_is_derived_from_the_decrypting_identity() {
    let yaml = decrypt_fixture(include_bytes!("testdata/basic.enc.yaml"), Format::Yaml);
    let json = decrypt_fixture(include_bytes!("testdata/basic.enc.json"), Format::Json);
    assert_eq!(yaml.digest_key(), json.digest_key());
    // With both test keys loaded, the first one (which the file is for) still decides.
    let both = decrypt(include_bytes!("testdata/basic.enc.yaml"), Format::Yaml, &all_test_keys()).unwrap();
    assert_eq!(both.digest_key(), yaml.digest_key());
    let first = TEST_KEYS.lines().find(|l| l.starts_with("AGE-SECRET-KEY-1")).unwrap();
    let second = TEST_KEYS.lines().filter(|l| l.starts_with("AGE-SECRET-KEY-1")).nth(1).unwrap();
    assert_ne!(
        crate::clients::keyed::DigestKey::derive(first.as_bytes(), "x"),
        crate::clients::keyed::DigestKey::derive(second.as_bytes(), "x")
    );
    assert!(!format!("{:?}", yaml.digest_key()).contains("AGE-SECRET-KEY"));
}
