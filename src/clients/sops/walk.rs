//! Decrypts a document tree the way sops walks it, and checks the MAC on the way.
//!
//! sops' rules, which the MAC depends on:
//! - a value's path is the keys leading to it; list items add nothing, and the
//!   path joined with `:` plus a trailing `:` is the additional data it was
//!   encrypted with;
//! - nulls are skipped, empty strings stay unencrypted, comments are decrypted but
//!   never hashed;
//! - the MAC is SHA-512 over each value's Go text form in document order (all
//!   values, or with `mac_only_encrypted` only the encrypted ones after a fixed
//!   prefix), upper-case hex, stored encrypted with `lastmodified` as additional data.

use std::borrow::Cow;

use sha2::{Digest, Sha256, Sha512};

use super::cipher::{self, DataKey, Plaintext, ValueType};
use super::error::SopsError;
use super::formats::go_float_f;
use super::metadata::{CryptRule, Metadata};
use super::tree::{Entry, Node, Scalar};

/// Decrypts every encrypted value of `docs` in place, then verifies the MAC.
pub(super) fn decrypt_and_verify(
    docs: &mut [Node],
    metadata: &Metadata,
    key: &DataKey,
) -> Result<(), SopsError> {
    let mut walker = Walker {
        metadata,
        key,
        mac: Sha512::new(),
        path: Vec::new(),
    };
    if metadata.mac_only_encrypted {
        // sops seeds this variant with sha256("sops") so that the two kinds of MAC
        // never coincide.
        walker.mac.update(Sha256::digest(b"sops"));
    }
    for doc in docs.iter_mut() {
        walker.node(doc)?;
    }
    let computed = hex::encode_upper(walker.mac.finalize());
    let stored = match cipher::decrypt(&metadata.mac, key, &metadata.last_modified) {
        Ok(Plaintext { bytes, .. }) => bytes,
        // A missing MAC or an edited `lastmodified` are modifications too.
        Err(_) => return Err(SopsError::MacMismatch),
    };
    if stored == computed.as_bytes() {
        Ok(())
    } else {
        Err(SopsError::MacMismatch)
    }
}

struct Walker<'a> {
    metadata: &'a Metadata,
    key: &'a DataKey,
    mac: Sha512,
    path: Vec<String>,
}

impl Walker<'_> {
    fn node(&mut self, node: &mut Node) -> Result<(), SopsError> {
        match node {
            Node::Map(entries) => {
                for entry in entries {
                    match entry {
                        Entry::Pair(key, value) => {
                            self.path.push(key.clone());
                            let result = self.node(value);
                            self.path.pop();
                            result?;
                        }
                        Entry::Comment(text) => self.comment(text),
                    }
                }
                Ok(())
            }
            Node::List(items) => items.iter_mut().try_for_each(|item| self.node(item)),
            Node::Scalar(Scalar::Null) => Ok(()),
            Node::Scalar(scalar) => self.scalar(scalar),
        }
    }

    fn scalar(&mut self, scalar: &mut Scalar) -> Result<(), SopsError> {
        let encrypted = self.should_be_encrypted(Some(scalar));
        if encrypted {
            match scalar {
                Scalar::Str(s) if s.is_empty() => {}
                Scalar::Str(s) => {
                    let plaintext = cipher::decrypt(s, self.key, &self.additional_data())
                        .map_err(|reason| self.value_error(reason))?;
                    *scalar = restore(plaintext).map_err(|reason| self.value_error(reason))?;
                }
                _ => return Err(self.value_error("it should be encrypted but is not")),
            }
        }
        if encrypted || !self.metadata.mac_only_encrypted {
            self.mac.update(mac_bytes(scalar));
        }
        Ok(())
    }

    /// Like sops, a comment that does not decrypt is taken to be clear text.
    fn comment(&mut self, text: &mut String) {
        if !self.should_be_encrypted(None) {
            return;
        }
        if let Ok(plaintext) = cipher::decrypt(text, self.key, &self.additional_data()) {
            if let Ok(decrypted) = String::from_utf8(plaintext.bytes) {
                *text = decrypted;
            }
        }
    }

    /// sops' `shouldBeEncrypted`: a rule matches when any key on the path matches.
    /// `value` is `None` for comments.
    fn should_be_encrypted(&self, value: Option<&Scalar>) -> bool {
        let keys = || self.path.iter().map(String::as_str);
        match &self.metadata.rule {
            CryptRule::UnencryptedSuffix(suffix) => !keys().any(|k| k.ends_with(suffix.as_str())),
            CryptRule::EncryptedSuffix(suffix) => keys().any(|k| k.ends_with(suffix.as_str())),
            CryptRule::UnencryptedRegex(re) => !keys().any(|k| re.is_match(k)),
            CryptRule::EncryptedRegex(re) => keys().any(|k| re.is_match(k)),
            CryptRule::ByComments => match value {
                Some(Scalar::Str(s)) => cipher::is_encrypted(s),
                Some(_) => false,
                None => true,
            },
        }
    }

    fn additional_data(&self) -> String {
        let mut aad = self.path.join(":");
        aad.push(':');
        aad
    }

    fn value_error(&self, reason: &str) -> SopsError {
        SopsError::Value {
            path: self.path.join("."),
            reason: reason.to_owned(),
        }
    }
}

/// Turns a plaintext back into a value of the type sops recorded, as Go's
/// `strconv` would parse it.
fn restore(plaintext: Plaintext) -> Result<Scalar, &'static str> {
    let Plaintext { value_type, bytes } = plaintext;
    let text = || std::str::from_utf8(&bytes).map_err(|_| "its plaintext is not UTF-8");
    Ok(match value_type {
        ValueType::Str => match String::from_utf8(bytes) {
            Ok(s) => Scalar::Str(s),
            Err(e) => Scalar::Bytes(e.into_bytes()),
        },
        ValueType::Bytes => Scalar::Bytes(bytes),
        ValueType::Int => Scalar::Int(text()?.parse().map_err(|_| "its plaintext is not an int")?),
        ValueType::Float => Scalar::Float(
            text()?
                .parse()
                .map_err(|_| "its plaintext is not a float")?,
        ),
        ValueType::Bool => {
            Scalar::Bool(go_parse_bool(text()?).ok_or("its plaintext is not a bool")?)
        }
        ValueType::Time => Scalar::Time(text()?.to_owned()),
        ValueType::Comment => return Err("it is a comment where a value belongs"),
    })
}

fn go_parse_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Go's `sops.ToBytes`: the form a value takes in the MAC.
fn mac_bytes(scalar: &Scalar) -> Cow<'_, [u8]> {
    match scalar {
        Scalar::Null => Cow::Borrowed(b""),
        Scalar::Str(s) | Scalar::Time(s) => Cow::Borrowed(s.as_bytes()),
        Scalar::Bytes(b) => Cow::Borrowed(b),
        Scalar::Int(i) => Cow::Owned(i.to_string().into_bytes()),
        Scalar::Float(f) => Cow::Owned(go_float_f(*f).into_bytes()),
        // Python sops wrote booleans title-cased, and the MAC kept that.
        Scalar::Bool(b) => Cow::Borrowed(if *b { b"True" } else { b"False" }),
    }
}
