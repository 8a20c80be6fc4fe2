//! Keyed fingerprints of secret values: HMAC-SHA256 under a key that is never stored next
//! to the fingerprint. A plain SHA-256 of a password in a state file lets anyone who reads
//! the state test guesses offline; an HMAC under a key they do not hold does not.
//!
//! Where keys come from is the caller's business (a Secret's `metadata.uid`, readable only
//! by whoever may read the Secret; a key derived from the age identity that decrypts a SOPS
//! file). Nothing here knows Terraform or Kubernetes.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// How every keyed fingerprint starts, so that it is never mistaken for a plain digest.
pub const PREFIX: &str = "hmac-sha256:";

/// A secret key for [`Fingerprint`]s. `Debug` shows nothing of it.
#[derive(Clone, PartialEq, Eq)]
pub struct DigestKey([u8; 32]);

impl std::fmt::Debug for DigestKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DigestKey(redacted)")
    }
}

impl DigestKey {
    /// A key derived from `secret` for one `purpose`: the same secret used for two
    /// purposes gives unrelated keys.
    pub fn derive(secret: &[u8], purpose: &str) -> DigestKey {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
        mac.update(purpose.as_bytes());
        DigestKey(mac.finalize().into_bytes().into())
    }

    /// A fingerprint being computed under this key.
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint(Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes keys of any length"))
    }
}

/// An HMAC-SHA256 in progress.
pub struct Fingerprint(Hmac<Sha256>);

impl Fingerprint {
    pub fn update(&mut self, bytes: &[u8]) -> &mut Self {
        self.0.update(bytes);
        self
    }

    /// Adds `bytes` preceded by their length, so that consecutive fields cannot run into
    /// each other (`"ab" + "c"` differs from `"a" + "bc"`).
    pub fn field(&mut self, bytes: &[u8]) -> &mut Self {
        self.0.update(&(bytes.len() as u64).to_be_bytes());
        self.0.update(bytes);
        self
    }

    /// `hmac-sha256:` and the hex HMAC.
    pub fn finish(self) -> String {
        format!("{PREFIX}{}", hex::encode(self.0.finalize().into_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_value_under_different_keys_gives_different_fingerprints() {
        let (a, b) = (DigestKey::derive(b"uid-1", "p"), DigestKey::derive(b"uid-2", "p"));
        let of = |key: &DigestKey| {
            let mut f = key.fingerprint();
            f.field(b"password").field(b"hunter2");
            f.finish()
        };
        assert_ne!(of(&a), of(&b));
        assert_eq!(of(&a), of(&DigestKey::derive(b"uid-1", "p")), "not deterministic");
        assert_ne!(of(&a), of(&DigestKey::derive(b"uid-1", "other purpose")));
        assert!(of(&a).starts_with(PREFIX));
    }

    #[test]
    fn fields_are_length_prefixed() {
        let key = DigestKey::derive(b"k", "p");
        let mut ab_c = key.fingerprint();
        ab_c.field(b"ab").field(b"c");
        let mut a_bc = key.fingerprint();
        a_bc.field(b"a").field(b"bc");
        assert_ne!(ab_c.finish(), a_bc.finish());
    }

    #[test]
    fn rfc_4231_test_case_2() {
        // HMAC-SHA256 with key "Jefe" of "what do ya want for nothing?".
        let mut f = Fingerprint(Hmac::<Sha256>::new_from_slice(b"Jefe").unwrap());
        f.update(b"what do ya want for nothing?");
        assert_eq!(f.finish(), "hmac-sha256:5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    }

    #[test]
    fn debug_hides_the_key() {
        assert_eq!(format!("{:?}", DigestKey::derive(b"secret", "p")), "DigestKey(redacted)");
    }
}
