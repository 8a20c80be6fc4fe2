//! sops' value encryption: `ENC[AES256_GCM,data:…,iv:…,tag:…,type:…]`, AES-256-GCM
//! under the file's data key, with a 32-byte IV and the value's key path as
//! additional data.

use std::sync::LazyLock;

use aes_gcm::aead::consts::U32;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::aes::Aes256;
use aes_gcm::{AesGcm, Nonce};
use base64::alphabet;
use base64::engine::{GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;
use regex::Regex;

/// The data key every value of a file is encrypted with.
pub(super) type DataKey = [u8; 32];

/// sops always writes 32-byte IVs (a GCM nonce size of its own choosing).
type SopsGcm = AesGcm<Aes256, U32>;
const TAG_LEN: usize = 16;

/// The same pattern sops matches values with; like Go's RE2, the regex crate picks
/// the leftmost-first match, so odd inputs split the same way.
static ENC_VALUE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^ENC\[AES256_GCM,data:(.+),iv:(.+),tag:(.+),type:(.+)\]")
        .expect("the ENC pattern is valid")
});

/// Go's `base64.StdEncoding`: padded, and lenient about trailing bits.
const GO_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
);

/// The type sops recorded for a value, so that it can be restored after decryption.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum ValueType {
    Str,
    Int,
    Float,
    Bool,
    Time,
    Bytes,
    Comment,
}

/// A decrypted value: its recorded type and its plaintext bytes.
pub(super) struct Plaintext {
    pub(super) value_type: ValueType,
    pub(super) bytes: Vec<u8>,
}

/// Whether a string is in sops' encrypted-value format (without decrypting it).
pub(super) fn is_encrypted(value: &str) -> bool {
    ENC_VALUE.is_match(value)
}

/// Decrypts one value. `additional_data` binds it to its place in the file: a value
/// copied to another key fails to authenticate. Errors are short reasons that never
/// contain the value.
pub(super) fn decrypt(
    value: &str,
    key: &DataKey,
    additional_data: &str,
) -> Result<Plaintext, &'static str> {
    let parts = ENC_VALUE
        .captures(value)
        .ok_or("it is not in sops' ENC[AES256_GCM,...] format")?;
    let field = |i: usize| parts.get(i).map_or("", |m| m.as_str());
    let mut data = GO_BASE64
        .decode(field(1))
        .map_err(|_| "its data is not valid base64")?;
    let iv = GO_BASE64
        .decode(field(2))
        .map_err(|_| "its iv is not valid base64")?;
    let tag = GO_BASE64
        .decode(field(3))
        .map_err(|_| "its tag is not valid base64")?;
    let value_type = match field(4) {
        "str" => ValueType::Str,
        "int" => ValueType::Int,
        "float" => ValueType::Float,
        "bool" => ValueType::Bool,
        "time" => ValueType::Time,
        "bytes" => ValueType::Bytes,
        "comment" => ValueType::Comment,
        _ => return Err("it has an unknown value type"),
    };
    if iv.len() != 32 {
        return Err("its iv is not 32 bytes long");
    }
    if tag.len() != TAG_LEN {
        return Err("its tag is not 16 bytes long");
    }
    data.extend_from_slice(&tag);
    let cipher = SopsGcm::new(key.into());
    let bytes = cipher
        .decrypt(
            Nonce::<U32>::from_slice(&iv),
            Payload {
                msg: &data,
                aad: additional_data.as_bytes(),
            },
        )
        .map_err(|_| {
            "authentication failed: the value was modified or moved, or the data key is wrong"
        })?;
    Ok(Plaintext { value_type, bytes })
}
