//! Offline encryption of values for Bitnami Sealed Secrets.
//!
//! The Sealed Secrets controller holds an RSA private key and publishes the matching
//! certificate (`kubeseal --fetch-cert` prints it). Anyone with that certificate can
//! encrypt a value that only the controller can decrypt; the result goes into a
//! SealedSecret's `spec.encryptedData`. This module produces exactly the bytes the
//! controller's decryption expects, without talking to the cluster.
//!
//! # Wire format (one value)
//!
//! ```text
//! base64( len(rsa_ct) as u16 big-endian || rsa_ct || aes_gcm_ct || gcm_tag )
//! ```
//!
//! * a fresh random 32-byte session key per value (AES-256);
//! * `rsa_ct` = RSA-OAEP encryption of the session key with SHA-256 as both the OAEP
//!   hash and the MGF1 hash, and the scope-dependent OAEP *label* (see [`Scope`]);
//! * the value is encrypted with AES-256-GCM under the session key with an all-zero
//!   96-bit nonce (safe: every key encrypts exactly one message) and no associated
//!   data; the 16-byte tag follows the ciphertext;
//! * the whole byte string is encoded with standard, padded base64.
//!
//! # Scopes
//!
//! The OAEP label binds a ciphertext to where it may be decrypted. The controller
//! derives the label from the SealedSecret object it is reconciling: from its
//! `metadata.namespace`, `metadata.name` and the scope annotations in its
//! `metadata.annotations` ([`Scope::annotations`]; cluster-wide wins over
//! namespace-wide, and only the exact value `"true"` counts). A value sealed for one
//! label cannot be decrypted under another, so the SealedSecret written to the cluster
//! must carry the same namespace, name and annotations that were used here.
//!
//! # Certificates
//!
//! [`SealingKey::from_pem`] takes the first `CERTIFICATE` block of a PEM document, or,
//! if there is none, the first `PUBLIC KEY` (SubjectPublicKeyInfo) block. Like
//! `kubeseal`, it refuses a certificate whose validity ended (`notAfter` in the past):
//! the controller rotates to a new key pair well before, so an expired certificate
//! almost always means a stale copy. [`SealingKey::from_pem_allow_expired`] skips that
//! check for callers that know better (the controller itself never checks the dates:
//! it keeps every old private key). `notBefore` is not checked (neither does kubeseal),
//! so a freshly rotated certificate works despite clock skew. The certificate's
//! signature and chain are not verified: the controller's certificate is self-signed
//! and is trusted because of where it was fetched from.
//!
//! Errors never contain the value being sealed, nor key material.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::digest;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{OaepPublicEncryptingKey, PublicEncryptingKey, OAEP_SHA256_MGF1SHA256};
use base64::Engine as _;
use secrecy::zeroize::Zeroize as _;
use x509_parser::oid_registry::OID_PKCS1_RSAENCRYPTION;
use x509_parser::prelude::FromDer;
use x509_parser::x509::SubjectPublicKeyInfo;

/// Annotation that makes the controller use the namespace-wide label.
pub const NAMESPACE_WIDE_ANNOTATION: &str = "sealedsecrets.bitnami.com/namespace-wide";
/// Annotation that makes the controller use the cluster-wide (empty) label.
pub const CLUSTER_WIDE_ANNOTATION: &str = "sealedsecrets.bitnami.com/cluster-wide";

/// AES-256 session key length, as upstream (`sessionKeyBytes = 32`).
const SESSION_KEY_BYTES: usize = 32;

/// Where a sealed value may be unsealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Scope {
    /// Only in a SealedSecret with this exact namespace and name (the default).
    /// OAEP label `"<namespace>/<name>"`.
    #[default]
    Strict,
    /// In a SealedSecret of any name in this namespace. OAEP label `"<namespace>"`.
    NamespaceWide,
    /// In any SealedSecret anywhere in the cluster. Empty OAEP label.
    ClusterWide,
}

impl Scope {
    /// All scopes, in the order of their upstream enum.
    pub const ALL: [Scope; 3] = [Scope::Strict, Scope::NamespaceWide, Scope::ClusterWide];

    /// Parses the names `kubeseal --scope` accepts: `strict`, `namespace-wide`,
    /// `cluster-wide` (exact, lower case). Unlike kubeseal, the empty string is not
    /// taken to mean the default: use [`Scope::default`] for that.
    pub fn parse(s: &str) -> Option<Scope> {
        match s {
            "strict" => Some(Scope::Strict),
            "namespace-wide" => Some(Scope::NamespaceWide),
            "cluster-wide" => Some(Scope::ClusterWide),
            _ => None,
        }
    }

    /// The name [`Scope::parse`] accepts.
    pub fn as_str(&self) -> &'static str {
        match self {
            Scope::Strict => "strict",
            Scope::NamespaceWide => "namespace-wide",
            Scope::ClusterWide => "cluster-wide",
        }
    }

    /// The annotations the SealedSecret's `metadata.annotations` must carry for the
    /// controller to pick this scope's label (none for strict). A SealedSecret must
    /// not carry the other scope's annotation as well: cluster-wide wins.
    pub fn annotations(&self) -> Vec<(&'static str, &'static str)> {
        match self {
            Scope::Strict => Vec::new(),
            Scope::NamespaceWide => vec![(NAMESPACE_WIDE_ANNOTATION, "true")],
            Scope::ClusterWide => vec![(CLUSTER_WIDE_ANNOTATION, "true")],
        }
    }

    /// The scope the controller reads from a SealedSecret's annotations: cluster-wide
    /// if `sealedsecrets.bitnami.com/cluster-wide` is exactly `"true"`, else
    /// namespace-wide if `sealedsecrets.bitnami.com/namespace-wide` is exactly
    /// `"true"`, else strict.
    pub fn from_annotations<'a, I>(annotations: I) -> Scope
    where
        I: IntoIterator<Item = (&'a str, &'a str)>,
    {
        let (mut cluster, mut namespace) = (false, false);
        for (k, v) in annotations {
            if v == "true" {
                cluster |= k == CLUSTER_WIDE_ANNOTATION;
                namespace |= k == NAMESPACE_WIDE_ANNOTATION;
            }
        }
        if cluster {
            Scope::ClusterWide
        } else if namespace {
            Scope::NamespaceWide
        } else {
            Scope::Strict
        }
    }

    /// The RSA-OAEP label for a value sealed with this scope for the SealedSecret
    /// `namespace`/`name` (upstream `EncryptionLabel`). Does not validate its input:
    /// [`SealingKey::seal`] does.
    pub fn label(&self, namespace: &str, name: &str) -> Vec<u8> {
        match self {
            Scope::Strict => format!("{namespace}/{name}").into_bytes(),
            Scope::NamespaceWide => namespace.as_bytes().to_vec(),
            Scope::ClusterWide => Vec::new(),
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What went wrong while loading a key or sealing. Never contains the value being
/// sealed nor any key material.
#[derive(Debug, thiserror::Error)]
pub enum SealingError {
    /// The input is not PEM, or a PEM block is malformed.
    #[error("the sealing certificate is not valid PEM: {0}")]
    Pem(String),
    /// Well-formed PEM, but no certificate or public key in it.
    #[error(
        "the PEM holds no certificate or public key{found}: expected the controller's certificate as printed by `kubeseal --fetch-cert` (-----BEGIN CERTIFICATE-----) or a public key (-----BEGIN PUBLIC KEY-----)"
    )]
    NoKey {
        /// a description of what the PEM held instead, starting with `" (found ..."`
        /// (empty when nothing recognisable)
        found: String,
    },
    /// A `CERTIFICATE` block that is not a parseable X.509 certificate.
    #[error("the sealing certificate cannot be parsed as X.509: {0}")]
    Certificate(String),
    /// A `PUBLIC KEY` block that is not a parseable SubjectPublicKeyInfo.
    #[error("the sealing public key cannot be parsed: {0}")]
    PublicKey(String),
    /// The key is not an RSA (rsaEncryption) key.
    #[error("the sealing key must be an RSA key (as the Sealed Secrets controller uses), but the {source_kind} holds a key of algorithm {algorithm}")]
    NotRsa {
        /// "certificate" or "public key"
        source_kind: &'static str,
        /// the algorithm OID (dotted) of the key
        algorithm: String,
    },
    /// An RSA key that cannot be used (malformed, or outside 2048..=8192 bits).
    #[error("the sealing RSA key cannot be used: {0}")]
    UnusableKey(String),
    /// The certificate's validity ended.
    #[error("the sealing certificate expired on {not_after}; fetch the controller's current certificate (kubeseal --fetch-cert)")]
    Expired {
        /// the certificate's notAfter, human readable
        not_after: String,
    },
    /// The namespace or name given to [`SealingKey::seal`] cannot produce a label
    /// the controller would ever compute.
    #[error("cannot seal with scope {scope}: {reason}")]
    InvalidTarget {
        /// the scope asked for
        scope: Scope,
        /// what is wrong (names the offending namespace/name, never the value)
        reason: String,
    },
    /// The cryptographic library failed (should not happen).
    #[error("sealing failed: {0}")]
    Crypto(&'static str),
}

/// An RSA public key of a Sealed Secrets controller, ready to seal values.
#[derive(Clone)]
pub struct SealingKey {
    key: PublicEncryptingKey,
    fingerprint: String,
    not_after: Option<i64>,
}

impl fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealingKey")
            .field("bits", &self.bits())
            .field("fingerprint", &self.fingerprint)
            .field("not_after", &self.not_after)
            .finish()
    }
}

impl SealingKey {
    /// Loads the controller's key from a PEM certificate (as `kubeseal --fetch-cert`
    /// prints it; the first `CERTIFICATE` block is used, like kubeseal does) or, when
    /// the PEM holds no certificate, from its first `PUBLIC KEY` block.
    ///
    /// Fails with a clear [`SealingError`] when the input is not PEM, holds neither,
    /// holds a non-RSA key or an RSA key outside 2048..=8192 bits, or when the
    /// certificate has expired (like kubeseal; see [`Self::from_pem_allow_expired`]).
    pub fn from_pem(pem: &str) -> Result<SealingKey, SealingError> {
        let key = Self::from_pem_allow_expired(pem)?;
        if let Some(not_after) = key.not_after {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0);
            if now > not_after {
                return Err(SealingError::Expired {
                    not_after: format_unix_time(not_after),
                });
            }
        }
        Ok(key)
    }

    /// Like [`Self::from_pem`], but accepts an expired certificate (the controller
    /// still decrypts with old keys; only kubeseal refuses to encrypt with them).
    pub fn from_pem_allow_expired(pem: &str) -> Result<SealingKey, SealingError> {
        let (spki_der, not_after, source_kind) = first_key_from_pem(pem)?;
        let (_, spki) = SubjectPublicKeyInfo::from_der(&spki_der)
            .map_err(|e| SealingError::PublicKey(e.to_string()))?;
        if spki.algorithm.algorithm != OID_PKCS1_RSAENCRYPTION {
            return Err(SealingError::NotRsa {
                source_kind,
                algorithm: spki.algorithm.algorithm.to_id_string(),
            });
        }
        let key = PublicEncryptingKey::from_der(&spki_der)
            .map_err(|e| SealingError::UnusableKey(e.to_string()))?;
        // Fingerprint the canonical re-encoding, so a certificate and the bare public
        // key of the same key pair have the same fingerprint whatever their encoding.
        let canonical = key
            .as_der()
            .map_err(|_| SealingError::Crypto("cannot encode the public key"))?;
        let fingerprint = hex::encode(digest::digest(&digest::SHA256, canonical.as_ref()));
        Ok(SealingKey {
            key,
            fingerprint,
            not_after,
        })
    }

    /// Lower-case hex SHA-256 of the public key's DER SubjectPublicKeyInfo (in its
    /// canonical encoding), for change detection. Note: this is not the format of the
    /// controller's own key fingerprint (an SSH-style `SHA256:` digest).
    pub fn fingerprint(&self) -> String {
        self.fingerprint.clone()
    }

    /// The RSA modulus size in bits.
    pub fn bits(&self) -> usize {
        self.key.key_size_bits()
    }

    /// The certificate's notAfter as Unix seconds (`None` for a bare public key).
    pub fn not_after_unix(&self) -> Option<i64> {
        self.not_after
    }

    /// The public key as DER SubjectPublicKeyInfo (canonical encoding).
    pub fn public_key_der(&self) -> Result<Vec<u8>, SealingError> {
        self.key
            .as_der()
            .map(|d| d.as_ref().to_vec())
            .map_err(|_| SealingError::Crypto("cannot encode the public key"))
    }

    /// Encrypts `plaintext` for the SealedSecret `namespace`/`name` under `scope` and
    /// returns the value for its `spec.encryptedData` (standard padded base64).
    ///
    /// Strict needs a namespace and a name, namespace-wide a namespace; cluster-wide
    /// ignores both. Neither may contain `/` (no Kubernetes object name can, so such
    /// a label would never match).
    pub fn seal(
        &self,
        scope: Scope,
        namespace: &str,
        name: &str,
        plaintext: &[u8],
    ) -> Result<String, SealingError> {
        let raw = self.seal_raw(scope, namespace, name, plaintext)?;
        Ok(base64::engine::general_purpose::STANDARD.encode(raw))
    }

    /// Like [`Self::seal`], but returns the raw hybrid ciphertext (before base64).
    pub fn seal_raw(
        &self,
        scope: Scope,
        namespace: &str,
        name: &str,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, SealingError> {
        check_target(scope, namespace, name)?;
        hybrid_encrypt(&self.key, plaintext, &scope.label(namespace, name))
    }
}

fn check_target(scope: Scope, namespace: &str, name: &str) -> Result<(), SealingError> {
    let bad = |reason: String| Err(SealingError::InvalidTarget { scope, reason });
    if matches!(scope, Scope::Strict | Scope::NamespaceWide) {
        if namespace.is_empty() {
            return bad("the SealedSecret's namespace is empty".into());
        }
        if namespace.contains('/') {
            return bad(format!("namespace {namespace:?} contains '/'"));
        }
    }
    if scope == Scope::Strict {
        if name.is_empty() {
            return bad("the SealedSecret's name is empty".into());
        }
        if name.contains('/') {
            return bad(format!("name {name:?} contains '/'"));
        }
    }
    Ok(())
}

/// Upstream `HybridEncrypt`: RSA-OAEP(SHA-256, label) of a random AES-256 key, then
/// AES-256-GCM of the plaintext under that key with the zero nonce.
fn hybrid_encrypt(
    key: &PublicEncryptingKey,
    plaintext: &[u8],
    label: &[u8],
) -> Result<Vec<u8>, SealingError> {
    let mut session_key = [0u8; SESSION_KEY_BYTES];
    aws_lc_rs::rand::fill(&mut session_key)
        .map_err(|_| SealingError::Crypto("the random number generator failed"))?;
    let result = encrypt_with_session_key(key, &session_key, plaintext, label);
    wipe(&mut session_key);
    result
}

fn encrypt_with_session_key(
    key: &PublicEncryptingKey,
    session_key: &[u8; SESSION_KEY_BYTES],
    plaintext: &[u8],
    label: &[u8],
) -> Result<Vec<u8>, SealingError> {
    let oaep = OaepPublicEncryptingKey::new(key.clone())
        .map_err(|_| SealingError::Crypto("cannot set up RSA-OAEP"))?;
    let mut rsa_ct = vec![0u8; oaep.ciphertext_size()];
    let rsa_len = oaep
        .encrypt(
            &OAEP_SHA256_MGF1SHA256,
            session_key,
            &mut rsa_ct,
            // An empty label and no label are the same in OAEP (the hash of "").
            (!label.is_empty()).then_some(label),
        )
        .map_err(|_| SealingError::Crypto("RSA-OAEP encryption of the session key failed"))?
        .len();
    rsa_ct.truncate(rsa_len);
    let rsa_len16 = u16::try_from(rsa_len)
        .map_err(|_| SealingError::Crypto("RSA ciphertext longer than 65535 bytes"))?;

    let unbound = UnboundKey::new(&aead::AES_256_GCM, session_key)
        .map_err(|_| SealingError::Crypto("cannot set up AES-256-GCM"))?;
    let aes = LessSafeKey::new(unbound);

    let mut out = Vec::with_capacity(2 + rsa_len + plaintext.len() + aead::MAX_TAG_LEN);
    out.extend_from_slice(&rsa_len16.to_be_bytes());
    out.extend_from_slice(&rsa_ct);
    let mut body = plaintext.to_vec();
    // The session key encrypts exactly one message, so the all-zero nonce is safe
    // (and it is what the controller uses to decrypt).
    let sealed = aes.seal_in_place_append_tag(
        Nonce::assume_unique_for_key([0u8; aead::NONCE_LEN]),
        Aad::empty(),
        &mut body,
    );
    if sealed.is_err() {
        wipe(&mut body);
        return Err(SealingError::Crypto("AES-GCM encryption failed"));
    }
    out.extend_from_slice(&body);
    Ok(out)
}

/// Overwrites a buffer that held secret bytes, in a way the compiler keeps.
fn wipe(buf: &mut [u8]) {
    buf.zeroize();
}

/// The first certificate's SPKI (with its notAfter), else the first public key's.
fn first_key_from_pem(pem: &str) -> Result<(Vec<u8>, Option<i64>, &'static str), SealingError> {
    use rustls_pemfile::Item;

    let mut rest = pem.as_bytes();
    let mut public_key: Option<Vec<u8>> = None;
    let mut found: Vec<&'static str> = Vec::new();
    loop {
        let item = match rustls_pemfile::read_one_from_slice(rest) {
            Ok(Some((item, remainder))) => {
                rest = remainder;
                item
            }
            Ok(None) => break,
            Err(e) => return Err(SealingError::Pem(describe_pem_error(e))),
        };
        match item {
            Item::X509Certificate(der) => {
                let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref())
                    .map_err(|e| SealingError::Certificate(e.to_string()))?;
                let spki = cert.tbs_certificate.subject_pki.raw.to_vec();
                let not_after = cert.validity().not_after.timestamp();
                return Ok((spki, Some(not_after), "certificate"));
            }
            Item::SubjectPublicKeyInfo(der) => {
                if public_key.is_none() {
                    public_key = Some(der.as_ref().to_vec());
                }
            }
            Item::Pkcs1Key(_) | Item::Pkcs8Key(_) | Item::Sec1Key(_) => found.push("a private key"),
            Item::Crl(_) => found.push("a certificate revocation list"),
            Item::Csr(_) => found.push("a certificate signing request"),
            _ => found.push("an unsupported PEM block"),
        }
    }
    if let Some(der) = public_key {
        return Ok((der, None, "public key"));
    }
    if pem.contains("-----BEGIN RSA PUBLIC KEY-----") {
        found.push("a PKCS#1 'RSA PUBLIC KEY', which is not supported: convert it with `openssl rsa -RSAPublicKey_in -pubout`");
    }
    found.dedup();
    let found = if found.is_empty() {
        if pem.contains("-----BEGIN ") {
            " (found only unsupported PEM blocks)".to_string()
        } else {
            " (found no PEM block at all)".to_string()
        }
    } else {
        format!(" (found {})", found.join(", "))
    };
    Err(SealingError::NoKey { found })
}

fn describe_pem_error(e: rustls_pemfile::Error) -> String {
    match e {
        rustls_pemfile::Error::MissingSectionEnd { end_marker } => {
            format!(
                "a {} block has no END line",
                String::from_utf8_lossy(&end_marker)
            )
        }
        rustls_pemfile::Error::IllegalSectionStart { .. } => "malformed BEGIN line".to_string(),
        rustls_pemfile::Error::Base64Decode(_) => "a PEM block is not valid base64".to_string(),
    }
}

/// `YYYY-MM-DD HH:MM:SS UTC` for Unix seconds (proleptic Gregorian calendar).
fn format_unix_time(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let tod = secs.rem_euclid(86_400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        tod / 3600,
        tod % 3600 / 60,
        tod % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::rsa::{OaepPrivateDecryptingKey, PrivateDecryptingKey};

    /// A fresh RSA-2048 key pair and a self-signed certificate for it.
    struct TestKey {
        cert_pem: String,
        /// PKCS#8 PEM ("PRIVATE KEY")
        key_pem: String,
        key_der: Vec<u8>,
    }

    fn test_key(not_after_year: Option<i32>) -> TestKey {
        let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).expect("RSA key generation");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "sealed-secret");
        if let Some(y) = not_after_year {
            params.not_before = rcgen::date_time_ymd(y - 1, 1, 1);
            params.not_after = rcgen::date_time_ymd(y, 1, 1);
        }
        let cert = params.self_signed(&kp).expect("self-signed certificate");
        TestKey {
            cert_pem: cert.pem(),
            key_pem: kp.serialize_pem(),
            key_der: kp.serialize_der(),
        }
    }

    /// Decrypts with aws-lc (same library, so only a format check; the independent
    /// check is `unseal_with_kubesealpy`).
    fn open(key_der: &[u8], sealed_b64: &str, label: &[u8]) -> Option<Vec<u8>> {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(sealed_b64)
            .unwrap();
        let n = u16::from_be_bytes([raw[0], raw[1]]) as usize;
        let (rsa_ct, aes_ct) = raw[2..].split_at(n);
        let sk = OaepPrivateDecryptingKey::new(PrivateDecryptingKey::from_pkcs8(key_der).unwrap())
            .unwrap();
        let mut buf = vec![0u8; sk.min_output_size()];
        let session = sk
            .decrypt(
                &OAEP_SHA256_MGF1SHA256,
                rsa_ct,
                &mut buf,
                (!label.is_empty()).then_some(label),
            )
            .ok()?
            .to_vec();
        assert_eq!(session.len(), 32);
        let aes = LessSafeKey::new(UnboundKey::new(&aead::AES_256_GCM, &session).unwrap());
        let mut body = aes_ct.to_vec();
        let pt = aes
            .open_in_place(
                Nonce::assume_unique_for_key([0u8; 12]),
                Aad::empty(),
                &mut body,
            )
            .ok()?;
        Some(pt.to_vec())
    }

    #[test]
    fn scope_names_annotations_labels() {
        for s in Scope::ALL {
            assert_eq!(Scope::parse(s.as_str()), Some(s));
            assert_eq!(
                Scope::from_annotations(s.annotations().iter().copied()),
                s,
                "annotations of {s} read back"
            );
        }
        assert_eq!(Scope::parse(""), None);
        assert_eq!(Scope::parse("Strict"), None);
        assert_eq!(Scope::default(), Scope::Strict);
        assert!(Scope::Strict.annotations().is_empty());
        assert_eq!(
            Scope::NamespaceWide.annotations(),
            vec![("sealedsecrets.bitnami.com/namespace-wide", "true")]
        );
        assert_eq!(
            Scope::ClusterWide.annotations(),
            vec![("sealedsecrets.bitnami.com/cluster-wide", "true")]
        );
        // controller precedence: cluster-wide wins; only "true" counts
        assert_eq!(
            Scope::from_annotations([
                (NAMESPACE_WIDE_ANNOTATION, "true"),
                (CLUSTER_WIDE_ANNOTATION, "true")
            ]),
            Scope::ClusterWide
        );
        assert_eq!(
            Scope::from_annotations([(CLUSTER_WIDE_ANNOTATION, "True")]),
            Scope::Strict
        );
        assert_eq!(Scope::Strict.label("ns", "n"), b"ns/n");
        assert_eq!(Scope::NamespaceWide.label("ns", "n"), b"ns");
        assert_eq!(Scope::ClusterWide.label("ns", "n"), b"");
    }

    #[test]
    fn seal_format_and_in_process_round_trip() {
        let k = test_key(None);
        let key = SealingKey::from_pem(&k.cert_pem).unwrap();
        assert_eq!(key.bits(), 2048);
        assert!(key.not_after_unix().is_some());
        let value = b"s3cr3t value \x00\xff";
        for scope in Scope::ALL {
            let sealed = key.seal(scope, "team-a", "db", value).unwrap();
            let raw = base64::engine::general_purpose::STANDARD
                .decode(&sealed)
                .unwrap();
            assert_eq!(&raw[..2], &256u16.to_be_bytes(), "length prefix");
            assert_eq!(raw.len(), 2 + 256 + value.len() + 16);
            assert_eq!(
                open(&k.key_der, &sealed, &scope.label("team-a", "db")).as_deref(),
                Some(&value[..])
            );
            // a fresh session key every time
            assert_ne!(sealed, key.seal(scope, "team-a", "db", value).unwrap());
        }
        let strict = key.seal(Scope::Strict, "team-a", "db", value).unwrap();
        assert_eq!(open(&k.key_der, &strict, b"team-a/other"), None);
        assert_eq!(open(&k.key_der, &strict, b"team-a"), None);
        assert_eq!(open(&k.key_der, &strict, b""), None);
        // empty value
        let empty = key.seal(Scope::Strict, "a", "b", b"").unwrap();
        assert_eq!(open(&k.key_der, &empty, b"a/b").as_deref(), Some(&b""[..]));
    }

    #[test]
    fn public_key_pem_and_fingerprint() {
        let k = test_key(None);
        let from_cert = SealingKey::from_pem(&k.cert_pem).unwrap();
        let spki = from_cert.public_key_der().unwrap();
        let from_pub = SealingKey::from_pem(&public_key_pem(&k)).unwrap();
        assert_eq!(from_pub.not_after_unix(), None);
        let fp = from_cert.fingerprint();
        assert_eq!(fp.len(), 64);
        assert!(fp
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_eq!(fp, from_pub.fingerprint());
        assert_eq!(fp, hex::encode(digest::digest(&digest::SHA256, &spki)));
        // stable across parses, different for another key
        assert_eq!(fp, SealingKey::from_pem(&k.cert_pem).unwrap().fingerprint());
        let other = test_key(None);
        assert_ne!(
            fp,
            SealingKey::from_pem(&other.cert_pem).unwrap().fingerprint()
        );
        // the first certificate wins; text around the PEM is ignored
        let two = format!("hello\n{}{}", k.cert_pem, other.cert_pem);
        assert_eq!(SealingKey::from_pem(&two).unwrap().fingerprint(), fp);
        // a certificate beats a public key that comes first
        let mixed = format!("{}{}", public_key_pem(&other), k.cert_pem);
        assert_eq!(SealingKey::from_pem(&mixed).unwrap().fingerprint(), fp);
        // sealing with the bare public key works the same
        let sealed = from_pub
            .seal(Scope::NamespaceWide, "ns", "x", b"v")
            .unwrap();
        assert_eq!(open(&k.key_der, &sealed, b"ns").as_deref(), Some(&b"v"[..]));
    }

    /// The certificate's public key as a `PUBLIC KEY` PEM.
    fn public_key_pem(k: &TestKey) -> String {
        let spki = SealingKey::from_pem(&k.cert_pem)
            .unwrap()
            .public_key_der()
            .unwrap();
        format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            base64::engine::general_purpose::STANDARD.encode(&spki)
        )
    }

    #[test]
    fn expired_certificate() {
        let k = test_key(Some(2001));
        let err = SealingKey::from_pem(&k.cert_pem).unwrap_err();
        assert!(matches!(err, SealingError::Expired { .. }), "{err:?}");
        assert!(err.to_string().contains("2001-01-01 00:00:00 UTC"), "{err}");
        let key = SealingKey::from_pem_allow_expired(&k.cert_pem).unwrap();
        let sealed = key.seal(Scope::ClusterWide, "", "", b"v").unwrap();
        assert_eq!(open(&k.key_der, &sealed, b"").as_deref(), Some(&b"v"[..]));
    }

    #[test]
    fn bad_input_is_an_error() {
        let k = test_key(None);
        let cases: Vec<(&str, String)> = vec![
            ("empty", String::new()),
            ("garbage", "not a certificate at all".into()),
            ("private key only", k.key_pem.clone()),
            ("truncated", k.cert_pem[..k.cert_pem.len() / 2].to_string()),
            (
                "bad base64",
                "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n".into(),
            ),
            (
                "not DER",
                "-----BEGIN CERTIFICATE-----\naGVsbG8=\n-----END CERTIFICATE-----\n".into(),
            ),
            (
                "bad public key",
                "-----BEGIN PUBLIC KEY-----\naGVsbG8=\n-----END PUBLIC KEY-----\n".into(),
            ),
            (
                "pkcs1 public key",
                "-----BEGIN RSA PUBLIC KEY-----\naGVsbG8=\n-----END RSA PUBLIC KEY-----\n".into(),
            ),
        ];
        for (what, pem) in cases {
            let err = SealingKey::from_pem(&pem).expect_err(what);
            let msg = err.to_string();
            assert!(!msg.is_empty(), "{what}");
            assert!(!msg.contains("PRIVATE KEY-----"), "{what}: {msg}");
            eprintln!("{what}: {msg}");
        }
        let err = SealingKey::from_pem(&k.key_pem).unwrap_err();
        assert!(err.to_string().contains("private key"), "{err}");
        let err = SealingKey::from_pem("").unwrap_err();
        assert!(err.to_string().contains("kubeseal --fetch-cert"), "{err}");

        // an EC certificate
        let ec = rcgen::KeyPair::generate().unwrap();
        let ec_cert = rcgen::CertificateParams::new(vec!["x".to_string()])
            .unwrap()
            .self_signed(&ec)
            .unwrap();
        let err = SealingKey::from_pem(&ec_cert.pem()).unwrap_err();
        assert!(matches!(err, SealingError::NotRsa { .. }), "{err:?}");
        eprintln!("ec: {err}");
    }

    #[test]
    fn invalid_targets() {
        let k = test_key(None);
        let key = SealingKey::from_pem(&k.cert_pem).unwrap();
        let secret = b"do-not-leak-this";
        for (scope, ns, name) in [
            (Scope::Strict, "", "n"),
            (Scope::Strict, "ns", ""),
            (Scope::Strict, "a/b", "n"),
            (Scope::Strict, "ns", "a/b"),
            (Scope::NamespaceWide, "", "n"),
        ] {
            let err = key.seal(scope, ns, name, secret).unwrap_err();
            assert!(matches!(err, SealingError::InvalidTarget { .. }));
            let shown = format!("{err} {err:?}");
            assert!(!shown.contains("do-not-leak-this"), "{shown}");
        }
        // namespace-wide ignores the name; cluster-wide ignores both
        key.seal(Scope::NamespaceWide, "ns", "", secret).unwrap();
        key.seal(Scope::ClusterWide, "", "", secret).unwrap();
    }

    #[test]
    fn format_unix_time_is_utc_calendar() {
        assert_eq!(format_unix_time(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(format_unix_time(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(format_unix_time(4_102_444_799), "2099-12-31 23:59:59 UTC");
    }

    /// Independent check: the PyPI package kubesealpy (its own Python implementation of
    /// the controller's unsealing, on the `cryptography` library) decrypts what we seal,
    /// reading the scope from the SealedSecret's annotations as the controller does.
    /// Needs TF_ACC_PYTHON: a Python with kubesealpy installed (scripts/testenv.sh
    /// makes one).
    #[test]
    fn unseal_with_kubesealpy() {
        let Some(python) = std::env::var_os("TF_ACC_PYTHON").filter(|p| !p.is_empty()) else {
            eprintln!(
                "SKIPPED unseal_with_kubesealpy: TF_ACC_PYTHON is not set (a Python with kubesealpy; \
                 run scripts/testenv.sh and source its env.sh)"
            );
            return;
        };
        let k = test_key(None);
        let key = SealingKey::from_pem(&k.cert_pem).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let key_path = dir.path().join("key.pem");
        std::fs::write(&key_path, &k.key_pem).unwrap();

        let value: &[u8] = "pässword\n\u{1F512} with bytes \u{0}".as_bytes();
        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);

        /// One SealedSecret for kubesealpy to unseal.
        struct Case {
            what: String,
            namespace: &'static str,
            name: &'static str,
            annotations: Vec<(&'static str, &'static str)>,
            sealed: String,
            /// the plaintext kubesealpy must find, or None if unsealing must fail
            expect: Option<Vec<u8>>,
        }
        let mut cases = Vec::new();
        for scope in Scope::ALL {
            let sealed = key.seal(scope, "team-a", "db-creds", value).unwrap();
            let ok = |yes: bool| yes.then(|| value.to_vec());
            // (what, namespace, name, annotations on the object, unseals?)
            let variants = [
                ("as sealed", "team-a", "db-creds", scope.annotations(), true),
                (
                    "as another name",
                    "team-a",
                    "other",
                    scope.annotations(),
                    scope != Scope::Strict,
                ),
                (
                    "in another namespace",
                    "team-b",
                    "db-creds",
                    scope.annotations(),
                    scope == Scope::ClusterWide,
                ),
                // an object without the scope annotation uses the strict label
                (
                    "without annotations",
                    "team-a",
                    "db-creds",
                    Vec::new(),
                    scope == Scope::Strict,
                ),
            ];
            for (what, namespace, name, annotations, unseals) in variants {
                cases.push(Case {
                    what: format!("{scope} unsealed {what}"),
                    namespace,
                    name,
                    annotations,
                    sealed: sealed.clone(),
                    expect: ok(unseals),
                });
            }
        }
        cases.push(Case {
            what: "empty value".into(),
            namespace: "team-a",
            name: "empty",
            annotations: Vec::new(),
            sealed: key.seal(Scope::Strict, "team-a", "empty", b"").unwrap(),
            expect: Some(Vec::new()),
        });

        // One Python process for all cases (imports are slow). Input: lines of
        // "namespace\tname\tannotations(k=v,..)\tvalue-b64"; output one line per case.
        let mut input = String::new();
        for c in &cases {
            let ann: Vec<String> = c
                .annotations
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            input.push_str(&format!(
                "{}\t{}\t{}\t{}\n",
                c.namespace,
                c.name,
                ann.join(","),
                c.sealed
            ));
        }
        const SCRIPT: &str = r#"
import sys
from kubesealpy.unsealer import Unsealer
from kubesealpy.models import SealedSecret
u = Unsealer.from_private_key_file(sys.argv[1])
for line in sys.stdin.read().splitlines():
    ns, name, ann, value = line.split("\t")
    annotations = dict(kv.split("=", 1) for kv in ann.split(",") if kv)
    obj = {"apiVersion": "bitnami.com/v1alpha1", "kind": "SealedSecret",
           "metadata": {"name": name, "namespace": ns, "annotations": annotations or None},
           "spec": {"encryptedData": {"v": value}}}
    try:
        secret = u.unseal(SealedSecret.model_validate(obj))
        print("ok " + secret.data["v"])
    except Exception as e:
        print("err " + type(e).__name__)
"#;
        use std::io::Write as _;
        let mut child = std::process::Command::new(&python)
            .arg("-c")
            .arg(SCRIPT)
            .arg(&key_path)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run TF_ACC_PYTHON={python:?}: {e}"));
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "kubesealpy script failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8(out.stdout).unwrap();
        let lines: Vec<&str> = stdout.lines().collect();
        assert_eq!(lines.len(), cases.len(), "output: {stdout}");
        for (c, line) in cases.iter().zip(lines) {
            match &c.expect {
                Some(want) => assert_eq!(line, format!("ok {}", b64(want)), "{}", c.what),
                None => assert!(
                    line.starts_with("err "),
                    "{}: expected unsealing to fail, got {line}",
                    c.what
                ),
            }
            eprintln!("kubesealpy: {}: {line}", c.what);
        }
    }
}
