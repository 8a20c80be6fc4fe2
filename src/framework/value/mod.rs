//! cty types and values, and their two wire encodings in the Terraform plugin protocol.
//!
//! Terraform describes every configuration, plan and state as a *cty* value of a known type
//! (for resources, the implied type of the schema). This module holds those types ([`Type`]) and
//! values ([`Value`]) and reads and writes the two encodings of a `DynamicValue`:
//! - MessagePack ([`encode_msgpack`], [`decode_msgpack`]): what Terraform sends, and the only
//!   form the provider answers with;
//! - JSON ([`encode_json`], [`decode_json`], [`decode_json_lenient`]): the form of stored state
//!   (`RawState` in UpgradeResourceState) and an accepted alternative input.
//!
//! Both are always read and written *against a type*: the bytes alone do not say whether a map
//! is a `map` or an `object`, nor which attributes must be present. Nothing here knows about gRPC,
//! schemas or Kubernetes.
//!
//! Representation choices:
//! - null and unknown are untyped ([`Value::Null`], [`Value::Unknown`]); the type used to encode
//!   them gives them meaning. Refinements of unknown values (ext type 12) are read and dropped;
//!   unknowns are always written as the plain `d4 00 00`.
//! - A value held in a `dynamic` slot is decoded as [`Value::Dynamic`] with its concrete type.
//!   When encoding, a plain value in such a slot has its type inferred ([`Value::infer_type`]).
//! - Numbers keep their exact value, as decimal text when neither `i64` nor `f64` holds it
//!   exactly (see [`Number`]).
//! - Strings are not NFC-normalised (cty does that); Terraform sends normalised text already.

mod json;
mod msgpack;
mod number;
mod types;

use std::fmt;

pub use json::{decode_json, decode_json_lenient, encode_json};
pub use msgpack::{decode_msgpack, encode_msgpack};
pub use number::Number;
pub use types::{Type, Value};

/// One step of the path to a value inside another, as reported in [`ValueError`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PathStep {
    /// An object attribute.
    Attribute(String),
    /// A map key.
    Key(String),
    /// A list or tuple index, or the position of a set element in the encoded array (set
    /// elements have no stable key).
    Index(usize),
}

/// A value that does not match its type, or bytes that cannot be read as one.
///
/// Displays as `at .labels["a"]: expected string, got bool` (just the message at the root).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ValueError {
    /// Where the problem is, from the outermost value inwards; empty for the value itself.
    pub path: Vec<PathStep>,
    pub message: String,
}

impl ValueError {
    /// Tuples have a fixed length in both encodings.
    pub(crate) fn check_tuple_len(expected: usize, got: usize) -> Result<(), ValueError> {
        if expected == got {
            Ok(())
        } else {
            Err(ValueError::new(format!("expected a tuple of {expected} elements, got {got}")))
        }
    }

    pub fn new(message: impl Into<String>) -> Self {
        ValueError {
            path: Vec::new(),
            message: message.into(),
        }
    }

    /// Places the error one step deeper: errors are built where they are found and learn their
    /// path while returning outwards.
    pub(crate) fn within(mut self, step: PathStep) -> Self {
        self.path.insert(0, step);
        self
    }

    /// The path in the `.attr["key"][0]` notation.
    pub fn path_string(&self) -> String {
        let mut out = String::new();
        for step in &self.path {
            match step {
                PathStep::Attribute(name) => {
                    out.push('.');
                    out.push_str(name);
                }
                PathStep::Key(key) => out.push_str(&format!("[{key:?}]")),
                PathStep::Index(index) => out.push_str(&format!("[{index}]")),
            }
        }
        out
    }
}

impl fmt::Display for ValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "at {}: {}", self.path_string(), self.message)
        }
    }
}

/// Adds a path step to the error of a nested encode or decode.
pub(crate) trait Within<T> {
    fn within(self, step: impl FnOnce() -> PathStep) -> Result<T, ValueError>;
}

impl<T> Within<T> for Result<T, ValueError> {
    fn within(self, step: impl FnOnce() -> PathStep) -> Result<T, ValueError> {
        self.map_err(|e| e.within(step()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_display_shows_path() {
        let e = ValueError::new("expected string, got bool")
            .within(PathStep::Key("a".into()))
            .within(PathStep::Attribute("labels".into()));
        assert_eq!(
            e.to_string(),
            r#"at .labels["a"]: expected string, got bool"#
        );
        let e = ValueError::new("boom")
            .within(PathStep::Index(2))
            .within(PathStep::Attribute("rules".into()));
        assert_eq!(e.to_string(), "at .rules[2]: boom");
        assert_eq!(ValueError::new("boom").to_string(), "boom");
    }
}
