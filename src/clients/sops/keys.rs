//! age identities, where they come from, and recovering a file's data key with them.

use std::fmt;
use std::io::Read;
use std::path::PathBuf;
use std::str::FromStr;

use age::armor::ArmoredReader;
use age::x25519::Identity;
use age::{DecryptError, Decryptor};

use super::cipher::DataKey;
use crate::clients::keyed::DigestKey;
use super::error::SopsError;
use super::metadata::Metadata;

/// The age identities available for decryption, and where they were looked for.
/// `Debug` shows public keys and locations only.
#[derive(Default)]
pub struct Keys {
    identities: Vec<Identity>,
    /// Locations consulted, for messages ("SOPS_AGE_KEY (not set)", …).
    searched: Vec<String>,
    /// Non-fatal problems met while loading (an unreadable SOPS_AGE_KEY_FILE, …):
    /// like sops, loading goes on with the other locations.
    problems: Vec<String>,
}

const SOPS_AGE_KEY: &str = "SOPS_AGE_KEY";
/// What keys derived from an age identity are for (so it keys nothing else the same way).
const DIGEST_PURPOSE: &str = "terraform-provider-platform: values of a SOPS file";
const SOPS_AGE_KEY_FILE: &str = "SOPS_AGE_KEY_FILE";

impl Keys {
    /// The explicit key file if one is given (it must be readable and valid).
    /// Otherwise, like sops, every identity found in SOPS_AGE_KEY (the keys
    /// themselves), in the file SOPS_AGE_KEY_FILE names, and in the default
    /// `$XDG_CONFIG_HOME/sops/age/keys.txt` (or `~/.config/sops/age/keys.txt`).
    /// `env` reads environment variables, so that tests can inject them.
    pub fn load(
        explicit_key_file: Option<&str>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Keys, SopsError> {
        let mut keys = Keys::default();
        if let Some(path) = explicit_key_file {
            let path = expand_home(path, env)?;
            let text = std::fs::read_to_string(&path).map_err(|e| SopsError::KeyFile {
                path: path.clone(),
                reason: e.to_string(),
            })?;
            keys.add_text(&text, &path)?;
            keys.searched.push(format!("the key file {path}"));
            return Ok(keys);
        }

        match env(SOPS_AGE_KEY) {
            Some(text) => {
                keys.add_text_or_note(&text, SOPS_AGE_KEY);
                keys.searched.push(SOPS_AGE_KEY.to_owned());
            }
            None => keys.searched.push(format!("{SOPS_AGE_KEY} (not set)")),
        }
        match env(SOPS_AGE_KEY_FILE) {
            Some(path) => {
                let origin = format!("{SOPS_AGE_KEY_FILE} ({path})");
                match std::fs::read_to_string(&path) {
                    Ok(text) => keys.add_text_or_note(&text, &origin),
                    Err(e) => keys.problems.push(format!("cannot read {origin}: {e}")),
                }
                keys.searched.push(origin);
            }
            None => keys.searched.push(format!("{SOPS_AGE_KEY_FILE} (not set)")),
        }
        if let Some(path) = default_key_file(env) {
            let path = path.display().to_string();
            match std::fs::read_to_string(&path) {
                Ok(text) => {
                    keys.add_text_or_note(&text, &path);
                    keys.searched.push(path);
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    keys.searched.push(format!("{path} (not found)"));
                }
                Err(e) => {
                    keys.problems.push(format!("cannot read {path}: {e}"));
                    keys.searched.push(path);
                }
            }
        }
        Ok(keys)
    }

    /// Identities in age's key file format: one `AGE-SECRET-KEY-1…` per line; blank
    /// lines and `#` comments (as age-keygen writes them) are skipped.
    pub fn from_identities_text(text: &str) -> Result<Keys, SopsError> {
        let mut keys = Keys::default();
        keys.add_text(text, "the age identities given")?;
        keys.searched.push("the age identities given".to_owned());
        Ok(keys)
    }

    pub fn is_empty(&self) -> bool {
        self.identities.is_empty()
    }

    /// The public keys of the identities, safe to show.
    pub fn recipients(&self) -> Vec<String> {
        self.identities
            .iter()
            .map(|id| id.to_public().to_string())
            .collect()
    }

    fn add_text(&mut self, text: &str, origin: &str) -> Result<(), SopsError> {
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            // The line itself never goes into the error: it is a private key.
            let invalid = |reason| SopsError::InvalidIdentity {
                origin: origin.to_owned(),
                line: index + 1,
                reason,
            };
            if line.starts_with("AGE-PLUGIN-") {
                return Err(invalid("age plugin identities are not supported"));
            }
            if !line.starts_with("AGE-SECRET-KEY-1") {
                return Err(invalid("not an age identity (expected AGE-SECRET-KEY-1…)"));
            }
            let identity =
                Identity::from_str(line).map_err(|_| invalid("malformed age identity"))?;
            self.identities.push(identity);
        }
        Ok(())
    }

    fn add_text_or_note(&mut self, text: &str, origin: &str) {
        if let Err(e) = self.add_text(text, origin) {
            self.problems.push(e.to_string());
        }
    }

    /// Recovers the file's data key: from any age stanza of the single key group, or
    /// by combining Shamir shares from enough key groups.
    pub(super) fn data_key(&self, metadata: &Metadata) -> Result<DataKey, SopsError> {
        if self.is_empty() {
            return Err(SopsError::NoKeys {
                searched: self.searched.join(", "),
                default_path: Os::current().default_key_file_text().to_owned(),
                problems: self.problems_suffix(),
            });
        }
        let mut failures = Vec::new();
        let mut shares = Vec::new();
        for group in &metadata.key_groups {
            for stanza in &group.age {
                match self.unwrap(&stanza.enc) {
                    Ok(Some(share)) => {
                        shares.push(share);
                        break;
                    }
                    Ok(None) => {}
                    Err(e) => {
                        failures.push(format!("the age stanza for {}: {e}", stanza.recipient))
                    }
                }
            }
        }

        let groups = metadata.key_groups.len();
        let (secret, needed) = if groups == 1 {
            (shares.pop(), 1)
        } else {
            // With several groups the data key is split; sops defaults the threshold
            // to the number of groups when encrypting, and combining needs at least two.
            let threshold = match metadata.shamir_threshold {
                0 => groups,
                t => t,
            }
            .max(2);
            let secret = (shares.len() >= threshold)
                .then(|| shamir_combine(&shares))
                .transpose()?;
            (secret, threshold)
        };
        match secret {
            Some(secret) => secret.try_into().map_err(|secret: Vec<u8>| {
                SopsError::DataKey(format!("it is {} bytes long instead of 32", secret.len()))
            }),
            None => Err(self.no_matching_key(metadata, shares.len(), needed, &failures)),
        }
    }

    /// The key for fingerprints of a file's values ([`super::Decrypted::digest_key`]):
    /// derived from the first of our identities, in the order they were loaded, that the
    /// file is encrypted for, so it stays the same while that identity decrypts the file,
    /// whatever else changes in it. A file whose recipients none of ours match by name
    /// (but which `data_key` could decrypt) keys by its data key, just as secret.
    pub(super) fn digest_key(&self, metadata: &Metadata, data_key: &DataKey) -> DigestKey {
        use age::secrecy::ExposeSecret;
        let recipients = metadata.age_recipients();
        let identity = self.identities.iter().find(|id| recipients.contains(&id.to_public().to_string().as_str()));
        match identity {
            Some(identity) => DigestKey::derive(identity.to_string().expose_secret().as_bytes(), DIGEST_PURPOSE),
            None => DigestKey::derive(data_key.as_ref(), DIGEST_PURPOSE),
        }
    }

    /// Decrypts one age stanza; `None` when none of our identities is a recipient.
    fn unwrap(&self, armored: &str) -> Result<Option<Vec<u8>>, DecryptError> {
        let decryptor = Decryptor::new_buffered(ArmoredReader::new(armored.as_bytes()))?;
        let identities = self.identities.iter().map(|id| id as &dyn age::Identity);
        let mut reader = match decryptor.decrypt(identities) {
            Ok(reader) => reader,
            Err(DecryptError::NoMatchingKeys) => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut plaintext = Vec::new();
        reader.read_to_end(&mut plaintext)?;
        Ok(Some(plaintext))
    }

    fn no_matching_key(
        &self,
        metadata: &Metadata,
        recovered: usize,
        needed: usize,
        failures: &[String],
    ) -> SopsError {
        let recipients = metadata.age_recipients();
        let other_keys: usize = metadata.key_groups.iter().map(|g| g.other_keys).sum();
        let mut detail = String::new();
        if metadata.key_groups.len() > 1 {
            detail.push_str(&format!(
                " (its data key is split across {} key groups, {needed} of which are needed; \
                 {recovered} could be decrypted)",
                metadata.key_groups.len(),
            ));
        }
        if other_keys > 0 {
            detail.push_str(&format!(
                " ({other_keys} of its master keys are not age keys, which are not supported)"
            ));
        }
        if !failures.is_empty() {
            detail.push_str(&format!(" ({})", failures.join("; ")));
        }
        detail.push_str(&self.problems_suffix());
        SopsError::NoMatchingKey {
            file_recipients: if recipients.is_empty() {
                "no age recipients".to_owned()
            } else {
                recipients.join(", ")
            },
            tried: format!(
                "{} (from {})",
                self.recipients().join(", "),
                self.searched.join(", ")
            ),
            detail,
        }
    }

    fn problems_suffix(&self) -> String {
        if self.problems.is_empty() {
            String::new()
        } else {
            format!(
                " [problems while loading keys: {}]",
                self.problems.join("; ")
            )
        }
    }
}

impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keys")
            .field("recipients", &self.recipients())
            .field("searched", &self.searched)
            .field("problems", &self.problems)
            .finish()
    }
}

fn expand_home(path: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, SopsError> {
    match path.strip_prefix("~/") {
        None => Ok(path.to_owned()),
        Some(rest) => match env("HOME").filter(|home| !home.is_empty()) {
            Some(home) => Ok(PathBuf::from(home).join(rest).display().to_string()),
            None => Err(SopsError::KeyFile {
                path: path.to_owned(),
                reason: "cannot expand `~`: HOME is not set".to_owned(),
            }),
        },
    }
}

/// The operating systems whose default key location differs, as sops sees them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Os {
    /// Linux and the other Unix systems.
    Unix,
    Mac,
    Windows,
}

impl Os {
    fn current() -> Os {
        if cfg!(target_os = "macos") {
            Os::Mac
        } else if cfg!(windows) {
            Os::Windows
        } else {
            Os::Unix
        }
    }

    /// The default location in words, for "no key found" messages.
    fn default_key_file_text(self) -> &'static str {
        match self {
            Os::Unix => "$XDG_CONFIG_HOME/sops/age/keys.txt (~/.config/sops/age/keys.txt)",
            Os::Mac => "$XDG_CONFIG_HOME/sops/age/keys.txt if XDG_CONFIG_HOME is set, else ~/Library/Application Support/sops/age/keys.txt",
            Os::Windows => "%AppData%\\sops\\age\\keys.txt",
        }
    }
}

/// Where sops looks by default: `sops/age/keys.txt` under Go's `os.UserConfigDir`
/// (`$XDG_CONFIG_HOME` or `~/.config` on Unix, `~/Library/Application Support` on macOS,
/// `%AppData%` on Windows), except that sops also honours `XDG_CONFIG_HOME` on macOS.
fn default_key_file(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    default_key_file_on(Os::current(), env).map(PathBuf::from)
}

/// [`default_key_file`] for `os`, as text with that system's separator (so that every
/// system's rule can be tested anywhere).
fn default_key_file_on(os: Os, env: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    let non_empty = |name| env(name).filter(|v: &String| !v.is_empty());
    let (config_dir, separator) = match os {
        Os::Unix => match non_empty("XDG_CONFIG_HOME") {
            Some(dir) => (dir, '/'),
            None => (format!("{}/.config", non_empty("HOME")?.trim_end_matches('/')), '/'),
        },
        Os::Mac => match non_empty("XDG_CONFIG_HOME") {
            Some(dir) => (dir, '/'),
            None => (format!("{}/Library/Application Support", non_empty("HOME")?.trim_end_matches('/')), '/'),
        },
        Os::Windows => (non_empty("AppData")?, '\\'),
    };
    let config_dir = config_dir.trim_end_matches(separator);
    Some(["sops", "age", "keys.txt"].iter().fold(config_dir.to_owned(), |path, part| format!("{path}{separator}{part}")))
}

/// Recombines a secret split by sops' Shamir scheme (HashiCorp Vault's): each share
/// is the secret's bytes evaluated on random polynomials over GF(2^8), followed by
/// its x coordinate; the secret is every polynomial's value at x = 0.
fn shamir_combine(shares: &[Vec<u8>]) -> Result<Vec<u8>, SopsError> {
    let invalid = |reason: &str| SopsError::DataKey(format!("invalid Shamir shares: {reason}"));
    let len = shares[0].len();
    if len < 2 || shares.iter().any(|s| s.len() != len) {
        return Err(invalid("they differ in length or are too short"));
    }
    let xs: Vec<u8> = shares.iter().map(|s| s[len - 1]).collect();
    if xs.iter().enumerate().any(|(i, x)| xs[..i].contains(x)) {
        return Err(invalid("two shares have the same x coordinate"));
    }
    Ok((0..len - 1)
        .map(|byte| {
            // Lagrange interpolation at 0; in GF(2^8) subtraction is XOR.
            xs.iter().enumerate().fold(0u8, |acc, (i, &xi)| {
                let basis = xs
                    .iter()
                    .enumerate()
                    .filter(|&(j, _)| j != i)
                    .fold(1u8, |b, (_, &xj)| {
                        gf_mul(b, gf_mul(xj, gf_inverse(xi ^ xj)))
                    });
                acc ^ gf_mul(shares[i][byte], basis)
            })
        })
        .collect())
}

/// Multiplication in GF(2^8) modulo x^8 + x^4 + x^3 + x + 1 (AES' field).
fn gf_mul(mut a: u8, mut b: u8) -> u8 {
    let mut product = 0;
    while b != 0 {
        if b & 1 != 0 {
            product ^= a;
        }
        a = (a << 1) ^ if a & 0x80 != 0 { 0x1b } else { 0 };
        b >>= 1;
    }
    product
}

/// a^254 = a^-1 for non-zero a.
fn gf_inverse(a: u8) -> u8 {
    (0..253).fold(a, |acc, _| gf_mul(acc, a))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gf_inverse_inverts() {
        for a in 1..=255u8 {
            assert_eq!(gf_mul(a, gf_inverse(a)), 1, "inverse of {a}");
        }
    }

    #[test]
    fn shamir_recovers_a_split_secret() {
        // Shares of the secret [7, 42] on the lines y = 7 + 3x and y = 42 + 9x.
        let share = |x: u8| vec![7 ^ gf_mul(3, x), 42 ^ gf_mul(9, x), x];
        assert_eq!(shamir_combine(&[share(1), share(3)]).unwrap(), vec![7, 42]);
        assert_eq!(shamir_combine(&[share(2), share(5)]).unwrap(), vec![7, 42]);
        assert!(shamir_combine(&[share(2), share(2)]).is_err());
        assert!(shamir_combine(&[vec![1], vec![2]]).is_err());
    }

    #[test]
    fn debug_shows_no_private_key() {
        let identity = Identity::generate();
        let secret = {
            use age::secrecy::ExposeSecret;
            identity.to_string().expose_secret().to_owned()
        };
        let keys = Keys::from_identities_text(&format!("# comment\n\n{secret}\n")).unwrap();
        assert_eq!(keys.recipients(), vec![identity.to_public().to_string()]);
        let debug = format!("{keys:?}");
        assert!(!debug.contains(&secret) && debug.contains(&keys.recipients()[0]));
    }

    #[test]
    fn invalid_identities_are_rejected_without_echoing_them() {
        let err = Keys::from_identities_text("AGE-SECRET-KEY-1NOTAKEY").unwrap_err();
        assert!(!err.to_string().contains("NOTAKEY"), "{err}");
        assert!(Keys::from_identities_text("ssh-ed25519 AAAA").is_err());
        assert!(Keys::from_identities_text("AGE-PLUGIN-YUBIKEY-1XYZ").is_err());
        assert!(Keys::from_identities_text("# only a comment\n")
            .unwrap()
            .is_empty());
    }

    #[test]
    fn load_prefers_the_explicit_file_and_expands_home() {
        let dir = tempfile::tempdir().unwrap();
        let identity = Identity::generate();
        let secret = {
            use age::secrecy::ExposeSecret;
            identity.to_string().expose_secret().to_owned()
        };
        std::fs::write(dir.path().join("keys.txt"), format!("{secret}\n")).unwrap();
        let home = dir.path().display().to_string();
        let env = |name: &str| match name {
            "HOME" => Some(home.clone()),
            "SOPS_AGE_KEY" => Some("garbage".to_owned()),
            _ => None,
        };
        let keys = Keys::load(Some("~/keys.txt"), &env).unwrap();
        assert_eq!(keys.recipients(), vec![identity.to_public().to_string()]);
        assert!(matches!(
            Keys::load(Some("~/missing.txt"), &env),
            Err(SopsError::KeyFile { .. })
        ));
    }

    #[test]
    fn load_collects_all_sops_locations() {
        let dir = tempfile::tempdir().unwrap();
        let [a, b, c] = [(); 3].map(|_| Identity::generate());
        let secret = |id: &Identity| {
            use age::secrecy::ExposeSecret;
            id.to_string().expose_secret().to_owned()
        };
        let file = dir.path().join("file.txt");
        std::fs::write(&file, secret(&b)).unwrap();
        let default = dir.path().join("xdg/sops/age");
        std::fs::create_dir_all(&default).unwrap();
        std::fs::write(default.join("keys.txt"), secret(&c)).unwrap();
        let vars = [
            ("SOPS_AGE_KEY", secret(&a)),
            ("SOPS_AGE_KEY_FILE", file.display().to_string()),
            (
                "XDG_CONFIG_HOME",
                dir.path().join("xdg").display().to_string(),
            ),
        ];
        let env = |name: &str| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.clone())
        };
        let keys = Keys::load(None, &env).unwrap();
        let expected: Vec<String> = [a, b, c]
            .iter()
            .map(|id| id.to_public().to_string())
            .collect();
        assert_eq!(keys.recipients(), expected);

        // Nothing anywhere: empty, and the error explains where keys are looked for.
        let keys = Keys::load(None, &|_| None).unwrap();
        assert!(keys.is_empty());
    }

    fn env_of<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string())
    }

    #[test]
    fn default_key_file_on_unix_follows_xdg_then_home() {
        let both = [("XDG_CONFIG_HOME", "/xdg/"), ("HOME", "/home/me")];
        assert_eq!(default_key_file_on(Os::Unix, &env_of(&both)).as_deref(), Some("/xdg/sops/age/keys.txt"));
        let home = [("XDG_CONFIG_HOME", ""), ("HOME", "/home/me/")];
        assert_eq!(default_key_file_on(Os::Unix, &env_of(&home)).as_deref(), Some("/home/me/.config/sops/age/keys.txt"));
        assert_eq!(default_key_file_on(Os::Unix, &env_of(&[("AppData", "C:\\x")])), None);
    }

    #[test]
    fn default_key_file_on_macos_is_under_application_support() {
        let home = [("HOME", "/Users/me")];
        assert_eq!(
            default_key_file_on(Os::Mac, &env_of(&home)).as_deref(),
            Some("/Users/me/Library/Application Support/sops/age/keys.txt")
        );
        // sops honours XDG_CONFIG_HOME on macOS too, when it is set.
        let xdg = [("HOME", "/Users/me"), ("XDG_CONFIG_HOME", "/Users/me/.config")];
        assert_eq!(default_key_file_on(Os::Mac, &env_of(&xdg)).as_deref(), Some("/Users/me/.config/sops/age/keys.txt"));
        assert_eq!(default_key_file_on(Os::Mac, &env_of(&[])), None);
    }

    #[test]
    fn default_key_file_on_windows_is_under_appdata() {
        let vars = [("AppData", "C:\\Users\\me\\AppData\\Roaming\\"), ("HOME", "/ignored"), ("XDG_CONFIG_HOME", "/ignored")];
        assert_eq!(
            default_key_file_on(Os::Windows, &env_of(&vars)).as_deref(),
            Some("C:\\Users\\me\\AppData\\Roaming\\sops\\age\\keys.txt")
        );
        assert_eq!(default_key_file_on(Os::Windows, &env_of(&[("HOME", "/home/me")])), None);
    }

    #[test]
    fn the_no_key_message_names_this_systems_default() {
        assert!(Os::Unix.default_key_file_text().contains("~/.config/sops/age/keys.txt"));
        assert!(Os::Mac.default_key_file_text().contains("~/Library/Application Support/sops/age/keys.txt"));
        assert_eq!(Os::Windows.default_key_file_text(), "%AppData%\\sops\\age\\keys.txt");
    }
}
