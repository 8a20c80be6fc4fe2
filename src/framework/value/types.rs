//! The cty type system ([`Type`], with its JSON form) and values ([`Value`]).

use std::collections::BTreeMap;
use std::fmt;

use serde_json::json;

use super::{Number, PathStep, ValueError, Within};

/// A cty type.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Type {
    String,
    Number,
    Bool,
    /// Any type, decided per value (cty's DynamicPseudoType); such values travel with their type.
    Dynamic,
    List(Box<Type>),
    Set(Box<Type>),
    Map(Box<Type>),
    Object(BTreeMap<String, Type>),
    Tuple(Vec<Type>),
}

impl Type {
    pub fn object<K: Into<String>>(attributes: impl IntoIterator<Item = (K, Type)>) -> Type {
        Type::Object(attributes.into_iter().map(|(k, t)| (k.into(), t)).collect())
    }

    pub fn list(element: Type) -> Type {
        Type::List(Box::new(element))
    }

    pub fn set(element: Type) -> Type {
        Type::Set(Box::new(element))
    }

    pub fn map(element: Type) -> Type {
        Type::Map(Box::new(element))
    }

    /// The cty type JSON: `"string"`, `["list","string"]`, `["object",{"a":"bool"}]`, ...
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Type::String => json!("string"),
            Type::Number => json!("number"),
            Type::Bool => json!("bool"),
            Type::Dynamic => json!("dynamic"),
            Type::List(t) => json!(["list", t.to_json()]),
            Type::Set(t) => json!(["set", t.to_json()]),
            Type::Map(t) => json!(["map", t.to_json()]),
            Type::Object(attributes) => {
                let attributes: serde_json::Map<_, _> = attributes
                    .iter()
                    .map(|(name, t)| (name.clone(), t.to_json()))
                    .collect();
                json!(["object", attributes])
            }
            Type::Tuple(elements) => json!([
                "tuple",
                elements.iter().map(Type::to_json).collect::<Vec<_>>()
            ]),
        }
    }

    /// The type JSON as compact bytes, as the protocol carries it.
    pub fn to_json_bytes(&self) -> Vec<u8> {
        self.to_json().to_string().into_bytes()
    }

    /// Reads type JSON. The optional-attributes list some object types carry as a third element
    /// (type constraints only) is accepted and ignored.
    pub fn from_json(v: &serde_json::Value) -> Result<Type, ValueError> {
        use serde_json::Value as J;
        let invalid = || ValueError::new(format!("invalid type JSON {v}"));
        match v {
            J::String(name) => match name.as_str() {
                "string" => Ok(Type::String),
                "number" => Ok(Type::Number),
                "bool" => Ok(Type::Bool),
                "dynamic" => Ok(Type::Dynamic),
                _ => Err(invalid()),
            },
            J::Array(parts) => {
                let (Some(J::String(kind)), Some(argument)) = (parts.first(), parts.get(1)) else {
                    return Err(invalid());
                };
                match (kind.as_str(), argument, parts.len()) {
                    ("list", t, 2) => Ok(Type::list(Type::from_json(t)?)),
                    ("set", t, 2) => Ok(Type::set(Type::from_json(t)?)),
                    ("map", t, 2) => Ok(Type::map(Type::from_json(t)?)),
                    ("tuple", J::Array(elements), 2) => Ok(Type::Tuple(
                        elements
                            .iter()
                            .map(Type::from_json)
                            .collect::<Result<_, _>>()?,
                    )),
                    ("object", J::Object(attributes), 2 | 3) => {
                        if parts.get(2).is_some_and(|optional| !optional.is_array()) {
                            return Err(invalid());
                        }
                        let attributes = attributes
                            .iter()
                            .map(|(name, t)| Ok((name.clone(), Type::from_json(t)?)))
                            .collect::<Result<_, ValueError>>()?;
                        Ok(Type::Object(attributes))
                    }
                    _ => Err(invalid()),
                }
            }
            _ => Err(invalid()),
        }
    }

    pub fn from_json_bytes(bytes: &[u8]) -> Result<Type, ValueError> {
        let v: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
            ValueError::new(format!(
                "invalid type JSON {:?}: {e}",
                String::from_utf8_lossy(bytes)
            ))
        })?;
        Type::from_json(&v)
    }

    /// One word for error messages: `string`, `list`, `object`...
    pub fn kind(&self) -> &'static str {
        match self {
            Type::String => "string",
            Type::Number => "number",
            Type::Bool => "bool",
            Type::Dynamic => "dynamic",
            Type::List(_) => "list",
            Type::Set(_) => "set",
            Type::Map(_) => "map",
            Type::Object(_) => "object",
            Type::Tuple(_) => "tuple",
        }
    }
}

/// Terraform's type-constraint notation: `list(string)`, `object({a=bool, b=number})`.
impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Type::List(t) | Type::Set(t) | Type::Map(t) => write!(f, "{}({t})", self.kind()),
            Type::Object(attributes) => {
                f.write_str("object({")?;
                for (i, (name, t)) in attributes.iter().enumerate() {
                    write!(f, "{}{name}={t}", if i == 0 { "" } else { ", " })?;
                }
                f.write_str("})")
            }
            Type::Tuple(elements) => {
                f.write_str("tuple([")?;
                for (i, t) in elements.iter().enumerate() {
                    write!(f, "{}{t}", if i == 0 { "" } else { ", " })?;
                }
                f.write_str("])")
            }
            _ => f.write_str(self.kind()),
        }
    }
}

/// A cty value. Its type is not stored (except under [`Value::Dynamic`]): values are always
/// encoded and decoded against a [`Type`], which also gives [`Value::Null`] and
/// [`Value::Unknown`] their meaning.
///
/// Equality compares values: numbers by value, sets regardless of order, and a
/// [`Value::Dynamic`] equals the plain value it wraps (its type is compared only when both
/// sides are wrapped).
#[derive(Debug, Clone)]
pub enum Value {
    Null,
    /// Not known until apply. Refinements Terraform may attach are not kept.
    Unknown,
    Bool(bool),
    Number(Number),
    String(String),
    List(Vec<Value>),
    /// Elements in no particular order, without duplicates.
    Set(Vec<Value>),
    Map(BTreeMap<String, Value>),
    /// Attributes by name; missing ones encode as null.
    Object(BTreeMap<String, Value>),
    Tuple(Vec<Value>),
    /// A value in a `dynamic` slot together with its concrete type.
    Dynamic(Type, Box<Value>),
}

impl Value {
    pub fn string(s: impl Into<String>) -> Value {
        Value::String(s.into())
    }

    pub fn number(n: impl Into<Number>) -> Value {
        Value::Number(n.into())
    }

    pub fn object<K: Into<String>>(attributes: impl IntoIterator<Item = (K, Value)>) -> Value {
        Value::Object(attributes.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    pub fn map<K: Into<String>>(entries: impl IntoIterator<Item = (K, Value)>) -> Value {
        Value::Map(entries.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// An object with every attribute of `ty` null; plain null for other types.
    pub fn null_object(ty: &Type) -> Value {
        match ty {
            Type::Object(attributes) => Value::Object(
                attributes
                    .keys()
                    .map(|k| (k.clone(), Value::Null))
                    .collect(),
            ),
            _ => Value::Null,
        }
    }

    /// The value itself, without any [`Value::Dynamic`] wrappers.
    /// The concrete type and value of something stored in a `dynamic` slot: the wrapper's
    /// type when there is one, else the type the value itself implies.
    pub fn dynamic_parts(&self) -> Result<(Type, &Value), ValueError> {
        match self {
            Value::Dynamic(ty, inner) => Ok((ty.clone(), inner.as_ref())),
            plain => Ok((plain.infer_type()?, plain)),
        }
    }

    pub fn unwrap_dynamic(&self) -> &Value {
        match self {
            Value::Dynamic(_, inner) => inner.unwrap_dynamic(),
            other => other,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self.unwrap_dynamic(), Value::Null)
    }

    pub fn is_unknown(&self) -> bool {
        matches!(self.unwrap_dynamic(), Value::Unknown)
    }

    /// Whether the value itself is known (as in cty, its parts may still be unknown; see
    /// [`Value::is_wholly_known`]).
    pub fn is_known(&self) -> bool {
        !self.is_unknown()
    }

    /// Whether no unknown value is anywhere inside.
    pub fn is_wholly_known(&self) -> bool {
        match self {
            Value::Unknown => false,
            Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => true,
            Value::List(items) | Value::Set(items) | Value::Tuple(items) => {
                items.iter().all(Value::is_wholly_known)
            }
            Value::Map(entries) | Value::Object(entries) => {
                entries.values().all(Value::is_wholly_known)
            }
            Value::Dynamic(_, inner) => inner.is_wholly_known(),
        }
    }

    /// An attribute of an object (None for other values and for absent attributes).
    pub fn get_attr(&self, name: &str) -> Option<&Value> {
        match self.unwrap_dynamic() {
            Value::Object(attributes) => attributes.get(name),
            _ => None,
        }
    }

    /// Sets an attribute of an object. Does nothing to other values: a null or unknown object has
    /// no attributes to set.
    pub fn set_attr(&mut self, name: &str, value: Value) {
        match self {
            Value::Object(attributes) => {
                attributes.insert(name.to_string(), value);
            }
            Value::Dynamic(_, inner) => inner.set_attr(name, value),
            _ => {}
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self.unwrap_dynamic() {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self.unwrap_dynamic() {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    pub fn as_number(&self) -> Option<&Number> {
        match self.unwrap_dynamic() {
            Value::Number(n) => Some(n),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        self.as_number().and_then(Number::as_i64)
    }

    /// The elements of a list, set or tuple.
    pub fn as_slice(&self) -> Option<&[Value]> {
        match self.unwrap_dynamic() {
            Value::List(items) | Value::Set(items) | Value::Tuple(items) => Some(items),
            _ => None,
        }
    }

    /// The entries of a map or the attributes of an object.
    pub fn as_map(&self) -> Option<&BTreeMap<String, Value>> {
        match self.unwrap_dynamic() {
            Value::Map(entries) | Value::Object(entries) => Some(entries),
            _ => None,
        }
    }

    /// The same value with every unknown inside replaced by null.
    pub fn unknown_to_null(&self) -> Value {
        match self {
            Value::Unknown => Value::Null,
            Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => self.clone(),
            Value::List(items) => Value::List(items.iter().map(Value::unknown_to_null).collect()),
            Value::Set(items) => Value::Set(items.iter().map(Value::unknown_to_null).collect()),
            Value::Tuple(items) => Value::Tuple(items.iter().map(Value::unknown_to_null).collect()),
            Value::Map(entries) => Value::Map(nulls_for_unknowns(entries)),
            Value::Object(entries) => Value::Object(nulls_for_unknowns(entries)),
            Value::Dynamic(ty, inner) => {
                Value::Dynamic(ty.clone(), Box::new(inner.unknown_to_null()))
            }
        }
    }

    /// One word for error messages: `string`, `null`, `dynamic`...
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Unknown => "unknown",
            Value::Bool(_) => "bool",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::List(_) => "list",
            Value::Set(_) => "set",
            Value::Map(_) => "map",
            Value::Object(_) => "object",
            Value::Tuple(_) => "tuple",
            Value::Dynamic(..) => "dynamic value",
        }
    }

    /// The type a plain value put in a `dynamic` slot is sent with. Null and unknown parts give
    /// `dynamic`; the elements of a list, set or map must agree on one type.
    pub fn infer_type(&self) -> Result<Type, ValueError> {
        Ok(match self {
            Value::Null | Value::Unknown => Type::Dynamic,
            Value::Bool(_) => Type::Bool,
            Value::Number(_) => Type::Number,
            Value::String(_) => Type::String,
            Value::Dynamic(ty, _) => ty.clone(),
            Value::List(items) => Type::list(common_type(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| (PathStep::Index(i), v)),
            )?),
            Value::Set(items) => Type::set(common_type(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| (PathStep::Index(i), v)),
            )?),
            Value::Map(entries) => Type::map(common_type(
                entries.iter().map(|(k, v)| (PathStep::Key(k.clone()), v)),
            )?),
            Value::Object(attributes) => Type::Object(
                attributes
                    .iter()
                    .map(|(k, v)| {
                        Ok((
                            k.clone(),
                            v.infer_type().within(|| PathStep::Attribute(k.clone()))?,
                        ))
                    })
                    .collect::<Result<_, ValueError>>()?,
            ),
            Value::Tuple(items) => Type::Tuple(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| v.infer_type().within(|| PathStep::Index(i)))
                    .collect::<Result<_, _>>()?,
            ),
        })
    }
}

fn nulls_for_unknowns(entries: &BTreeMap<String, Value>) -> BTreeMap<String, Value> {
    entries
        .iter()
        .map(|(k, v)| (k.clone(), v.unknown_to_null()))
        .collect()
}

/// The one type all (non-null, known) elements share; `dynamic` when there are none.
fn common_type<'a>(
    elements: impl Iterator<Item = (PathStep, &'a Value)>,
) -> Result<Type, ValueError> {
    let mut common = Type::Dynamic;
    for (step, element) in elements {
        let ty = element.infer_type().map_err(|e| e.within(step.clone()))?;
        if ty == Type::Dynamic || ty == common {
            continue;
        }
        if common != Type::Dynamic {
            return Err(ValueError::new(format!(
                "cannot infer a type for a dynamic value: elements are {common} and {ty}"
            ))
            .within(step));
        }
        common = ty;
    }
    Ok(common)
}

impl PartialEq for Value {
    fn eq(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::Dynamic(t1, v1), Value::Dynamic(t2, v2)) => t1 == t2 && v1 == v2,
            (Value::Dynamic(_, v), other) | (other, Value::Dynamic(_, v)) => **v == *other,
            (Value::Null, Value::Null) | (Value::Unknown, Value::Unknown) => true,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::Number(a), Value::Number(b)) => a == b,
            (Value::String(a), Value::String(b)) => a == b,
            (Value::List(a), Value::List(b)) | (Value::Tuple(a), Value::Tuple(b)) => a == b,
            (Value::Set(a), Value::Set(b)) => same_elements(a, b),
            (Value::Map(a), Value::Map(b)) | (Value::Object(a), Value::Object(b)) => a == b,
            _ => false,
        }
    }
}

/// Order-insensitive comparison. Values have no total order or hash (numbers compare across
/// forms), so this pairs elements off one by one; sets in a schema are small.
fn same_elements(a: &[Value], b: &[Value]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut unmatched: Vec<&Value> = b.iter().collect();
    a.iter()
        .all(|x| match unmatched.iter().position(|y| x == *y) {
            Some(i) => {
                unmatched.swap_remove(i);
                true
            }
            None => false,
        })
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::String(s.to_string())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::String(s)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Value {
        Value::Number(Number::Int(i))
    }
}

impl From<f64> for Value {
    fn from(f: f64) -> Value {
        Value::Number(Number::from_f64(f))
    }
}

impl From<Number> for Value {
    fn from(n: Number) -> Value {
        Value::Number(n)
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    /// `None` is null.
    fn from(v: Option<T>) -> Value {
        v.map_or(Value::Null, Into::into)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_type_forms() -> Vec<Type> {
        vec![
            Type::String,
            Type::Number,
            Type::Bool,
            Type::Dynamic,
            Type::list(Type::String),
            Type::set(Type::Number),
            Type::map(Type::Bool),
            Type::object([("b", Type::String), ("a", Type::list(Type::Dynamic))]),
            Type::object::<&str>([]),
            Type::Tuple(vec![Type::String, Type::map(Type::Number)]),
            Type::Tuple(vec![]),
            Type::list(Type::object([(
                "x",
                Type::set(Type::Tuple(vec![Type::Bool])),
            )])),
        ]
    }

    #[test]
    fn type_json_round_trips() {
        for ty in all_type_forms() {
            let bytes = ty.to_json_bytes();
            assert_eq!(
                Type::from_json_bytes(&bytes).unwrap(),
                ty,
                "{}",
                String::from_utf8_lossy(&bytes)
            );
        }
    }

    #[test]
    fn type_json_text() {
        assert_eq!(Type::String.to_json_bytes(), br#""string""#);
        assert_eq!(
            Type::map(Type::String).to_json_bytes(),
            br#"["map","string"]"#
        );
        assert_eq!(
            Type::object([("name", Type::String), ("count", Type::Number)]).to_json_bytes(),
            br#"["object",{"count":"number","name":"string"}]"#
        );
        assert_eq!(
            Type::Tuple(vec![Type::Bool, Type::Dynamic]).to_json_bytes(),
            br#"["tuple",["bool","dynamic"]]"#
        );
    }

    #[test]
    fn type_json_accepts_optional_attributes() {
        let ty = Type::from_json_bytes(br#"["object",{"a":"string","b":"number"},["b"]]"#).unwrap();
        assert_eq!(ty, Type::object([("a", Type::String), ("b", Type::Number)]));
    }

    #[test]
    fn type_json_rejects_nonsense() {
        for text in [
            r#""str""#,
            r#"["list"]"#,
            r#"["list","string","x"]"#,
            r#"["object",["a"]]"#,
            r#"["tuple","string"]"#,
            "3",
            "{",
        ] {
            assert!(Type::from_json_bytes(text.as_bytes()).is_err(), "{text}");
        }
    }

    #[test]
    fn type_display() {
        let ty = Type::object([
            ("a", Type::list(Type::String)),
            ("b", Type::Tuple(vec![Type::Bool, Type::Number])),
        ]);
        assert_eq!(
            ty.to_string(),
            "object({a=list(string), b=tuple([bool, number])})"
        );
    }

    #[test]
    fn set_equality_ignores_order() {
        let a = Value::Set(vec!["x".into(), "y".into(), "y".into()]);
        let b = Value::Set(vec!["y".into(), "x".into(), "y".into()]);
        assert_eq!(a, b);
        assert_ne!(a, Value::Set(vec!["y".into(), "x".into(), "x".into()]));
        assert_ne!(
            Value::List(vec!["x".into(), "y".into()]),
            Value::List(vec!["y".into(), "x".into()])
        );
    }

    #[test]
    fn equality_compares_numbers_by_value_and_sees_through_dynamic() {
        assert_eq!(Value::from(3i64), Value::Number(Number::Float(3.0)));
        let wrapped = Value::Dynamic(Type::String, Box::new("x".into()));
        assert_eq!(wrapped, Value::from("x"));
        assert_ne!(
            Value::Dynamic(Type::list(Type::String), Box::new(Value::List(vec![]))),
            Value::Dynamic(Type::list(Type::Number), Box::new(Value::List(vec![])))
        );
    }

    #[test]
    fn knownness() {
        let v = Value::object([("a", Value::List(vec![Value::Unknown])), ("b", Value::Null)]);
        assert!(v.is_known());
        assert!(!v.is_wholly_known());
        assert!(v.unknown_to_null().is_wholly_known());
        assert_eq!(
            v.unknown_to_null().get_attr("a"),
            Some(&Value::List(vec![Value::Null]))
        );
        assert!(Value::Dynamic(Type::String, Box::new(Value::Unknown)).is_unknown());
    }

    #[test]
    fn attribute_access() {
        let mut v = Value::null_object(&Type::object([("a", Type::String), ("b", Type::Bool)]));
        assert_eq!(v.get_attr("a"), Some(&Value::Null));
        v.set_attr("a", "x".into());
        assert_eq!(v.get_attr("a").and_then(Value::as_str), Some("x"));
        let mut null = Value::Null;
        null.set_attr("a", "x".into());
        assert_eq!(null, Value::Null);
    }

    #[test]
    fn infers_types_for_dynamic_slots() {
        let v = Value::object([
            ("n", Value::from(1i64)),
            ("l", Value::List(vec![Value::Null, "a".into()])),
            ("t", Value::Tuple(vec![true.into(), "b".into()])),
        ]);
        assert_eq!(
            v.infer_type().unwrap(),
            Type::object([
                ("n", Type::Number),
                ("l", Type::list(Type::String)),
                ("t", Type::Tuple(vec![Type::Bool, Type::String])),
            ])
        );
        let mixed = Value::object([(
            "m",
            Value::map([("a", Value::from("x")), ("b", Value::from(true))]),
        )]);
        let err = mixed.infer_type().unwrap_err();
        assert_eq!(err.path_string(), r#".m["b"]"#, "{err}");
    }
}
