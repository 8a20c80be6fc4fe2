//! OpenSSH `known_hosts` text: which host keys are trusted for a host, as `ssh` decides it
//! with `StrictHostKeyChecking=yes`.
//!
//! A line is `[marker] patterns keytype base64 [comment]`. Patterns are a comma-separated
//! list of names (`node1`, `10.0.0.5`), `[name]:port` for a port other than 22, wildcards
//! (`*`, `?`) and negations (`!name`), or one hashed name `|1|salt|hash` (HMAC-SHA1 of the
//! name as it would be written, keyed by the salt: `ssh-keygen -H`). Markers: `@revoked`
//! refuses its key for the hosts it matches; `@cert-authority` lines are ignored (host
//! certificates are not asked for). Lines that do not parse are skipped, as `ssh` skips
//! them; their numbers are kept for a warning.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use russh::keys::ssh_key::{Algorithm, HashAlg, PublicKey};
use sha1::Sha1;

/// Parsed known_hosts text.
#[derive(Debug, Clone, Default)]
pub struct KnownHosts {
    entries: Vec<Entry>,
    skipped: Vec<usize>,
}

#[derive(Debug, Clone)]
struct Entry {
    marker: Marker,
    hosts: Hosts,
    key: PublicKey,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Marker {
    None,
    Revoked,
    CertAuthority,
}

#[derive(Debug, Clone)]
enum Hosts {
    /// `|1|salt|hash`: HMAC-SHA1 keyed by `salt` of the name.
    Hashed { salt: Vec<u8>, hash: Vec<u8> },
    /// Comma-separated patterns, lowercased.
    Patterns(Vec<String>),
}

/// What known_hosts says of a host's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A line for the host holds this key.
    Trusted,
    /// An `@revoked` line matching the host holds this key.
    Revoked,
    /// Lines for the host hold other keys only (described as [`describe`] does).
    Mismatch { expected: Vec<String> },
    /// No line is for the host.
    Unknown,
}

impl KnownHosts {
    /// Parses `text`; lines that are not known_hosts entries are skipped (see [`KnownHosts::skipped`]).
    pub fn parse(text: &str) -> KnownHosts {
        let mut known = KnownHosts::default();
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            match parse_line(line) {
                Some(entry) => known.entries.push(entry),
                None => known.skipped.push(index + 1),
            }
        }
        known
    }

    /// The numbers (1-based) of the lines that could not be parsed.
    pub fn skipped(&self) -> &[usize] {
        &self.skipped
    }

    /// Whether `key` is the host key of `host` on `port`.
    pub fn check(&self, host: &str, port: u16, key: &PublicKey) -> Verdict {
        let name = lookup_name(host, port);
        let for_host = || self.entries.iter().filter(|e| e.hosts.matches(&name));
        if for_host().any(|e| e.marker == Marker::Revoked && e.key.key_data() == key.key_data()) {
            return Verdict::Revoked;
        }
        let plain: Vec<&Entry> = for_host().filter(|e| e.marker == Marker::None).collect();
        if plain.iter().any(|e| e.key.key_data() == key.key_data()) {
            Verdict::Trusted
        } else if plain.is_empty() {
            Verdict::Unknown
        } else {
            let mut expected: Vec<String> = plain.iter().map(|e| describe(&e.key)).collect();
            expected.dedup();
            Verdict::Mismatch { expected }
        }
    }

    /// The key algorithms of the keys trusted for `host` on `port`, in file order, so that the
    /// client asks the server for a key it can check (as `ssh` orders `HostKeyAlgorithms`).
    pub fn algorithms(&self, host: &str, port: u16) -> Vec<Algorithm> {
        let name = lookup_name(host, port);
        let mut algorithms: Vec<Algorithm> = Vec::new();
        for entry in self.entries.iter().filter(|e| e.marker == Marker::None && e.hosts.matches(&name)) {
            let algorithm = entry.key.algorithm();
            let all = if algorithm.clone().is_rsa() {
                vec![
                    Algorithm::Rsa { hash: Some(HashAlg::Sha512) },
                    Algorithm::Rsa { hash: Some(HashAlg::Sha256) },
                    Algorithm::Rsa { hash: None },
                ]
            } else {
                vec![algorithm]
            };
            for a in all {
                if !algorithms.contains(&a) {
                    algorithms.push(a);
                }
            }
        }
        algorithms
    }
}

/// `ssh-ed25519 SHA256:...`: the key's type and its fingerprint as `ssh-keygen -lf` prints it.
pub fn describe(key: &PublicKey) -> String {
    format!("{} {}", key.algorithm().as_str(), fingerprint(key))
}

/// `SHA256:` and the unpadded base64 of the key's SHA-256, as `ssh-keygen -lf` prints it.
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// The name known_hosts lists a host under: `host` on port 22, `[host]:port` otherwise;
/// lowercase, without the brackets of an IPv6 address given as `[::1]`.
pub fn lookup_name(host: &str, port: u16) -> String {
    let host = host.trim();
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host).to_ascii_lowercase();
    if port == 22 {
        host
    } else {
        format!("[{host}]:{port}")
    }
}

/// The hashed form `|1|salt|hash` of `name` with `salt` (as `ssh-keygen -H` writes it).
pub fn hash_name(name: &str, salt: &[u8]) -> String {
    format!("|1|{}|{}", STANDARD.encode(salt), STANDARD.encode(hmac_sha1(salt, name)))
}

fn hmac_sha1(salt: &[u8], name: &str) -> Vec<u8> {
    // HMAC takes a key of any length.
    let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(salt).expect("HMAC accepts any key length");
    mac.update(name.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

fn parse_line(line: &str) -> Option<Entry> {
    let mut fields = line.split_whitespace();
    let mut first = fields.next()?;
    let marker = match first {
        "@revoked" => Marker::Revoked,
        "@cert-authority" => Marker::CertAuthority,
        m if m.starts_with('@') => return None,
        _ => Marker::None,
    };
    if marker != Marker::None {
        first = fields.next()?;
    }
    let hosts = parse_hosts(first)?;
    let key_type = fields.next()?;
    let blob = fields.next()?;
    let key = PublicKey::from_openssh(&format!("{key_type} {blob}")).ok()?;
    Some(Entry { marker, hosts, key })
}

fn parse_hosts(field: &str) -> Option<Hosts> {
    if let Some(rest) = field.strip_prefix("|1|") {
        let (salt, hash) = rest.split_once('|')?;
        let salt = STANDARD.decode(salt).ok()?;
        let hash = STANDARD.decode(hash).ok()?;
        if hash.len() != 20 {
            return None;
        }
        return Some(Hosts::Hashed { salt, hash });
    }
    let patterns: Vec<String> = field.split(',').filter(|p| !p.is_empty()).map(|p| p.to_ascii_lowercase()).collect();
    if patterns.is_empty() {
        None
    } else {
        Some(Hosts::Patterns(patterns))
    }
}

impl Hosts {
    /// Whether `name` (as [`lookup_name`] gives it) is one of these hosts.
    fn matches(&self, name: &str) -> bool {
        match self {
            Hosts::Hashed { salt, hash } => {
                let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(salt).expect("HMAC accepts any key length");
                mac.update(name.as_bytes());
                mac.verify_slice(hash).is_ok()
            }
            Hosts::Patterns(patterns) => {
                let mut matched = false;
                for pattern in patterns {
                    match pattern.strip_prefix('!') {
                        // A negated match rules the name out whatever else matches.
                        Some(negated) if glob(negated.as_bytes(), name.as_bytes()) => return false,
                        Some(_) => {}
                        None => matched |= glob(pattern.as_bytes(), name.as_bytes()),
                    }
                }
                matched
            }
        }
    }
}

/// OpenSSH's `match_pattern`: `*` any run of characters, `?` one character.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == b'?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p.min(pattern.len())..].iter().all(|&c| c == b'*')
}
