//! The document tree: maps keep their entries in document order (duplicates
//! included), because sops' MAC covers the values in that order.
//!
//! None of these types implement `Debug`, so that a decrypted tree cannot end up
//! in a log line or an error message by accident.

use std::fmt;

use serde::de::{
    self, Deserialize, Deserializer, EnumAccess, MapAccess, SeqAccess, VariantAccess, Visitor,
};

pub(super) enum Node {
    Map(Vec<Entry>),
    List(Vec<Node>),
    Scalar(Scalar),
}

pub(super) enum Entry {
    Pair(String, Node),
    /// Only dotenv files keep comments in the tree (sops encrypts them too).
    Comment(String),
}

pub(super) enum Scalar {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    /// A `str` value whose plaintext is not UTF-8 (binary files), or a `bytes` value.
    Bytes(Vec<u8>),
    /// A timestamp, kept as the RFC 3339 text sops encrypted or wrote.
    Time(String),
}

impl Node {
    /// The value of the first entry named `key`, if this is a map.
    pub(super) fn get(&self, key: &str) -> Option<&Node> {
        self.pairs().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// The key/value entries of a map (comments skipped); nothing for other nodes.
    pub(super) fn pairs(&self) -> impl Iterator<Item = (&str, &Node)> {
        let entries = match self {
            Node::Map(entries) => entries.as_slice(),
            _ => &[],
        };
        entries.iter().filter_map(|entry| match entry {
            Entry::Pair(k, v) => Some((k.as_str(), v)),
            Entry::Comment(_) => None,
        })
    }

    pub(super) fn as_str(&self) -> Option<&str> {
        match self {
            Node::Scalar(Scalar::Str(s)) => Some(s),
            _ => None,
        }
    }

    /// Removes every top-level entry named `key` and returns the first one's value.
    pub(super) fn take(&mut self, key: &str) -> Option<Node> {
        let Node::Map(entries) = self else {
            return None;
        };
        let mut taken = None;
        let mut kept = Vec::with_capacity(entries.len());
        for entry in entries.drain(..) {
            match entry {
                Entry::Pair(k, v) if k == key => {
                    taken.get_or_insert(v);
                }
                other => kept.push(other),
            }
        }
        *entries = kept;
        taken
    }
}

/// Builds the tree straight from serde_json or serde_yaml events, so that map order
/// and duplicate keys survive (neither crate's own value type keeps both).
impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a YAML or JSON value")
    }

    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::Scalar(Scalar::Null))
    }

    fn visit_none<E>(self) -> Result<Node, E> {
        Ok(Node::Scalar(Scalar::Null))
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        Node::deserialize(d)
    }

    fn visit_bool<E>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Scalar(Scalar::Bool(v)))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Scalar(Scalar::Int(v)))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Node, E> {
        Ok(Node::Scalar(match i64::try_from(v) {
            Ok(i) => Scalar::Int(i),
            Err(_) => Scalar::Float(v as f64),
        }))
    }

    fn visit_i128<E>(self, v: i128) -> Result<Node, E> {
        Ok(Node::Scalar(Scalar::Float(v as f64)))
    }

    fn visit_u128<E>(self, v: u128) -> Result<Node, E> {
        Ok(Node::Scalar(Scalar::Float(v as f64)))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Node, E> {
        Ok(Node::Scalar(Scalar::Float(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Scalar(Scalar::Str(v.to_owned())))
    }

    fn visit_string<E>(self, v: String) -> Result<Node, E> {
        Ok(Node::Scalar(Scalar::Str(v)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Node::List(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some(MapKey(key)) = map.next_key()? {
            entries.push(Entry::Pair(key, map.next_value()?));
        }
        Ok(Node::Map(entries))
    }

    /// serde_yaml hands over custom-tagged values (`!tag value`) as enums; like
    /// sops, keep the value and drop the tag.
    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Node, A::Error> {
        let (_tag, variant): (de::IgnoredAny, _) = data.variant()?;
        variant.newtype_variant()
    }
}

/// sops only supports string keys.
struct MapKey(String);

impl<'de> Deserialize<'de> for MapKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = MapKey;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string key (sops supports no other keys)")
            }
            fn visit_str<E>(self, v: &str) -> Result<MapKey, E> {
                Ok(MapKey(v.to_owned()))
            }
        }
        deserializer.deserialize_any(KeyVisitor)
    }
}
