//! The JSON encoding of cty values: the `attributes` of a resource in the state file, which
//! Terraform hands over as `RawState.json` (and accepts in `DynamicValue.json`).
//!
//! Unlike MessagePack, JSON objects may leave attributes out (they read as null), and values in
//! `dynamic` slots are written as `{"value": ..., "type": ...}`. State never holds unknowns.
//!
//! Numbers: serde_json is used without its `arbitrary_precision` feature, so it reads a JSON
//! number that fits neither `i64` nor `u64` as the nearest `f64`. We then take that number's
//! shortest text (what `serde_json::Number` displays) as the decimal value, which gives back the
//! written value for anything of up to 15 significant digits (e.g. `0.1` stays decimal 0.1, not
//! the `f64` nearest to it); only longer decimals lose digits. Writing never loses precision:
//! numbers are written as their exact decimal text.

use std::collections::BTreeMap;

use serde_json::Value as Json;

use super::{Number, PathStep, Type, Value, ValueError, Within};

/// Encodes a wholly known value of type `ty` as JSON; unknown values are an error.
pub fn encode_json(ty: &Type, value: &Value) -> Result<Vec<u8>, ValueError> {
    let mut out = Vec::new();
    write_value(&mut out, ty, value)?;
    Ok(out)
}

/// Decodes JSON against `ty`. Absent object attributes are null; attributes the type does not
/// have are an error.
pub fn decode_json(ty: &Type, bytes: &[u8]) -> Result<Value, ValueError> {
    Decoder { lenient: false }.decode(ty, &parse(bytes)?)
}

/// Like [`decode_json`] but drops attributes the type does not have, at any depth: for reading
/// state written by a schema that has since removed attributes (UpgradeResourceState).
pub fn decode_json_lenient(ty: &Type, bytes: &[u8]) -> Result<Value, ValueError> {
    Decoder { lenient: true }.decode(ty, &parse(bytes)?)
}

fn parse(bytes: &[u8]) -> Result<Json, ValueError> {
    serde_json::from_slice(bytes).map_err(|e| ValueError::new(format!("invalid JSON: {e}")))
}

// ---------------------------------------------------------------------------------------------
// Encoding. Written by hand rather than through serde_json::Value, which cannot hold numbers
// beyond f64 without the `arbitrary_precision` feature.

fn write_value(out: &mut Vec<u8>, ty: &Type, value: &Value) -> Result<(), ValueError> {
    match (ty, value) {
        (_, Value::Null) => out.extend_from_slice(b"null"),
        (_, Value::Unknown) => {
            return Err(ValueError::new("unknown values cannot be written as JSON"))
        }
        (Type::Dynamic, _) => write_dynamic(out, value)?,
        (Type::String, Value::String(s)) => write_string(out, s),
        (Type::Number, Value::Number(n)) => write_number(out, n)?,
        (Type::Bool, Value::Bool(b)) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        (Type::List(element), Value::List(items)) | (Type::Set(element), Value::Set(items)) => {
            write_array(out, items.iter().map(|item| (element.as_ref(), item)))?;
        }
        (Type::Tuple(elements), Value::Tuple(items)) => {
            ValueError::check_tuple_len(elements.len(), items.len())?;
            write_array(out, elements.iter().zip(items))?;
        }
        (Type::Map(element), Value::Map(entries)) => {
            write_object(
                out,
                entries
                    .iter()
                    .map(|(k, v)| (k, element.as_ref(), v, PathStep::Key(k.clone()))),
            )?;
        }
        (Type::Object(attributes), Value::Object(values)) => {
            if let Some(extra) = values.keys().find(|name| !attributes.contains_key(*name)) {
                return Err(ValueError::new(format!("unsupported attribute {extra:?}")));
            }
            write_object(
                out,
                attributes.iter().map(|(name, ty)| {
                    (
                        name,
                        ty,
                        values.get(name).unwrap_or(&Value::Null),
                        PathStep::Attribute(name.clone()),
                    )
                }),
            )?;
        }
        _ => {
            return Err(ValueError::new(format!(
                "expected {}, got {}",
                ty.kind(),
                value.kind()
            )))
        }
    }
    Ok(())
}

fn write_string(out: &mut Vec<u8>, s: &str) {
    serde_json::to_writer(out, s).expect("a string always serialises to a Vec");
}

fn write_number(out: &mut Vec<u8>, n: &Number) -> Result<(), ValueError> {
    let n = n.normalized()?;
    if matches!(n, Number::Float(f) if f.is_infinite()) {
        return Err(ValueError::new("infinity cannot be written as JSON"));
    }
    // Display is the exact plain decimal text, which is valid JSON number syntax.
    out.extend_from_slice(n.to_string().as_bytes());
    Ok(())
}

fn write_array<'a>(
    out: &mut Vec<u8>,
    items: impl Iterator<Item = (&'a Type, &'a Value)>,
) -> Result<(), ValueError> {
    out.push(b'[');
    for (i, (ty, item)) in items.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_value(out, ty, item).within(|| PathStep::Index(i))?;
    }
    out.push(b']');
    Ok(())
}

fn write_object<'a>(
    out: &mut Vec<u8>,
    entries: impl Iterator<Item = (&'a String, &'a Type, &'a Value, PathStep)>,
) -> Result<(), ValueError> {
    out.push(b'{');
    for (i, (key, ty, value, step)) in entries.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_string(out, key);
        out.push(b':');
        write_value(out, ty, value).map_err(|e| e.within(step))?;
    }
    out.push(b'}');
    Ok(())
}

fn write_dynamic(out: &mut Vec<u8>, value: &Value) -> Result<(), ValueError> {
    let (ty, inner) = value.dynamic_parts()?;
    if ty == Type::Dynamic {
        return write_value(out, &Type::Dynamic, inner);
    }
    out.extend_from_slice(b"{\"value\":");
    write_value(out, &ty, inner)?;
    out.extend_from_slice(b",\"type\":");
    out.extend_from_slice(&ty.to_json_bytes());
    out.push(b'}');
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Decoding

fn json_kind(j: &Json) -> &'static str {
    match j {
        Json::Null => "null",
        Json::Bool(_) => "JSON bool",
        Json::Number(_) => "JSON number",
        Json::String(_) => "JSON string",
        Json::Array(_) => "JSON array",
        Json::Object(_) => "JSON object",
    }
}

fn expected(what: &str, j: &Json) -> ValueError {
    ValueError::new(format!("expected {what}, got {}", json_kind(j)))
}

struct Decoder {
    /// Drop object attributes the type does not have instead of failing.
    lenient: bool,
}

impl Decoder {
    fn decode(&self, ty: &Type, j: &Json) -> Result<Value, ValueError> {
        if j.is_null() {
            return Ok(Value::Null);
        }
        // Primitives convert as cty does when reading state: strings accept numbers and bools,
        // numbers and bools accept their text.
        match ty {
            Type::Dynamic => self.decode_dynamic(j),
            Type::String => match j {
                Json::String(s) => Ok(Value::String(s.clone())),
                Json::Number(n) => Ok(Value::String(n.to_string())),
                Json::Bool(b) => Ok(Value::String(b.to_string())),
                _ => Err(expected("string", j)),
            },
            Type::Number => match j {
                Json::Number(n) => Ok(Value::Number(number(n)?)),
                Json::String(s) => Ok(Value::Number(Number::parse(s)?)),
                _ => Err(expected("number", j)),
            },
            Type::Bool => match j {
                Json::Bool(b) => Ok(Value::Bool(*b)),
                Json::String(s) if s == "true" => Ok(Value::Bool(true)),
                Json::String(s) if s == "false" => Ok(Value::Bool(false)),
                _ => Err(expected("bool", j)),
            },
            Type::List(element) => self.decode_items(element, j, "list").map(Value::List),
            Type::Set(element) => self.decode_items(element, j, "set").map(Value::Set),
            Type::Tuple(elements) => {
                let Json::Array(items) = j else {
                    return Err(expected("tuple", j));
                };
                ValueError::check_tuple_len(elements.len(), items.len())?;
                let items = elements
                    .iter()
                    .zip(items)
                    .enumerate()
                    .map(|(i, (ty, item))| self.decode(ty, item).within(|| PathStep::Index(i)))
                    .collect::<Result<_, _>>()?;
                Ok(Value::Tuple(items))
            }
            Type::Map(element) => {
                let Json::Object(entries) = j else {
                    return Err(expected("map", j));
                };
                let entries = entries
                    .iter()
                    .map(|(k, v)| {
                        Ok((
                            k.clone(),
                            self.decode(element, v)
                                .within(|| PathStep::Key(k.clone()))?,
                        ))
                    })
                    .collect::<Result<_, ValueError>>()?;
                Ok(Value::Map(entries))
            }
            Type::Object(attributes) => self.decode_object(attributes, j),
        }
    }

    fn decode_items(&self, element: &Type, j: &Json, what: &str) -> Result<Vec<Value>, ValueError> {
        let Json::Array(items) = j else {
            return Err(expected(what, j));
        };
        items
            .iter()
            .enumerate()
            .map(|(i, item)| self.decode(element, item).within(|| PathStep::Index(i)))
            .collect()
    }

    fn decode_object(
        &self,
        attributes: &BTreeMap<String, Type>,
        j: &Json,
    ) -> Result<Value, ValueError> {
        let Json::Object(entries) = j else {
            return Err(expected("object", j));
        };
        if !self.lenient {
            if let Some(extra) = entries.keys().find(|name| !attributes.contains_key(*name)) {
                return Err(ValueError::new(format!("unsupported attribute {extra:?}")));
            }
        }
        let values = attributes
            .iter()
            .map(|(name, ty)| {
                let value = match entries.get(name) {
                    Some(j) => self
                        .decode(ty, j)
                        .within(|| PathStep::Attribute(name.clone()))?,
                    None => Value::Null,
                };
                Ok((name.clone(), value))
            })
            .collect::<Result<_, ValueError>>()?;
        Ok(Value::Object(values))
    }

    /// `{"value": ..., "type": ...}`, nothing else.
    fn decode_dynamic(&self, j: &Json) -> Result<Value, ValueError> {
        let Json::Object(entries) = j else {
            return Err(expected(
                "{\"value\", \"type\"} object for a dynamic value",
                j,
            ));
        };
        if let Some(extra) = entries.keys().find(|k| *k != "value" && *k != "type") {
            return Err(ValueError::new(format!(
                "unexpected key {extra:?} in a dynamic value"
            )));
        }
        let ty = Type::from_json(
            entries
                .get("type")
                .ok_or_else(|| ValueError::new("dynamic value without \"type\""))?,
        )?;
        let value = self.decode(
            &ty,
            entries
                .get("value")
                .ok_or_else(|| ValueError::new("dynamic value without \"value\""))?,
        )?;
        Ok(match ty {
            Type::Dynamic => value,
            ty => Value::Dynamic(ty, Box::new(value)),
        })
    }
}

/// See the module documentation for what survives of numbers beyond `i64`/`u64`.
fn number(n: &serde_json::Number) -> Result<Number, ValueError> {
    if let Some(i) = n.as_i64() {
        Ok(Number::Int(i))
    } else if let Some(u) = n.as_u64() {
        Ok(Number::from(u))
    } else {
        Number::parse(&n.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(ty: &Type, v: &Value) -> String {
        String::from_utf8(encode_json(ty, v).unwrap_or_else(|e| panic!("encode failed: {e}")))
            .unwrap()
    }

    fn decode(ty: &Type, text: &str) -> Value {
        decode_json(ty, text.as_bytes()).unwrap_or_else(|e| panic!("decode failed: {e}"))
    }

    fn state_type() -> Type {
        Type::object([
            ("id", Type::String),
            ("replicas", Type::Number),
            ("enabled", Type::Bool),
            ("labels", Type::map(Type::String)),
            (
                "ports",
                Type::list(Type::object([
                    ("port", Type::Number),
                    ("protocols", Type::set(Type::String)),
                ])),
            ),
            ("pair", Type::Tuple(vec![Type::String, Type::Number])),
        ])
    }

    #[test]
    fn nested_state_round_trips() {
        let ty = state_type();
        let value = Value::object([
            ("id", Value::from("ns/web")),
            ("replicas", Value::from(3i64)),
            ("enabled", Value::from(true)),
            (
                "labels",
                Value::map([("app", Value::from("web \"quoted\" \u{e9}"))]),
            ),
            (
                "ports",
                Value::List(vec![
                    Value::object([
                        ("port", Value::from(443i64)),
                        ("protocols", Value::Set(vec!["TCP".into()])),
                    ]),
                    Value::object([("port", Value::from(0.5)), ("protocols", Value::Null)]),
                ]),
            ),
            (
                "pair",
                Value::Tuple(vec!["a".into(), Value::Number(Number::Big("0.1".into()))]),
            ),
        ]);
        let json = text(&ty, &value);
        assert_eq!(
            json,
            r#"{"enabled":true,"id":"ns/web","labels":{"app":"web \"quoted\" é"},"pair":["a",0.1],"ports":[{"port":443,"protocols":["TCP"]},{"port":0.5,"protocols":null}],"replicas":3}"#
        );
        assert_eq!(decode(&ty, &json), value);
    }

    #[test]
    fn missing_attributes_read_as_null() {
        let ty = state_type();
        let value = decode(&ty, r#"{"id":"x"}"#);
        assert_eq!(value.get_attr("id"), Some(&Value::from("x")));
        assert_eq!(value.get_attr("labels"), Some(&Value::Null));
        assert_eq!(value.as_map().map(BTreeMap::len), Some(6));
    }

    #[test]
    fn unknown_attributes_error_unless_lenient() {
        let ty = Type::object([
            ("id", Type::String),
            ("spec", Type::object([("a", Type::String)])),
        ]);
        let json = br#"{"id":"x","old":1,"spec":{"a":"y","gone":true}}"#;
        let err = decode_json(&ty, json).unwrap_err();
        assert!(
            err.to_string().contains("unsupported attribute \"old\""),
            "{err}"
        );
        let value = decode_json_lenient(&ty, json).unwrap();
        assert_eq!(
            value,
            Value::object([
                ("id", Value::from("x")),
                ("spec", Value::object([("a", Value::from("y"))]))
            ])
        );
    }

    #[test]
    fn dynamic_values() {
        let ty = Type::object([("manifest", Type::Dynamic)]);
        let json = r#"{"manifest":{"value":{"kind":"Pod","n":2},"type":["object",{"kind":"string","n":"number"}]}}"#;
        let value = decode(&ty, json);
        let inner_ty = Type::object([("kind", Type::String), ("n", Type::Number)]);
        let inner = Value::object([("kind", Value::from("Pod")), ("n", Value::from(2i64))]);
        assert!(
            matches!(value.get_attr("manifest"), Some(Value::Dynamic(t, v)) if *t == inner_ty && **v == inner)
        );
        assert_eq!(text(&ty, &value), json);
        // A plain value has its type inferred.
        assert_eq!(text(&ty, &Value::object([("manifest", inner)])), json);
        assert_eq!(
            decode(&ty, r#"{"manifest":null}"#),
            Value::object([("manifest", Value::Null)])
        );
        assert!(decode_json(&Type::Dynamic, br#"{"value":1}"#).is_err());
        assert!(decode_json(&Type::Dynamic, br#"{"value":1,"type":"number","x":0}"#).is_err());
    }

    #[test]
    fn numbers_keep_their_value() {
        assert_eq!(
            decode(&Type::Number, "18446744073709551615"),
            Value::from(Number::from(u64::MAX))
        );
        assert_eq!(
            decode(&Type::Number, "0.1"),
            Value::Number(Number::Big("0.1".into()))
        );
        assert_eq!(decode(&Type::Number, "1.5"), Value::from(1.5));
        assert_eq!(decode(&Type::Number, "1e3"), Value::from(1000i64));
        assert_eq!(decode(&Type::Number, r#""12.5""#), Value::from(12.5));
        assert_eq!(
            text(
                &Type::Number,
                &Value::Number(Number::Big("123456789012345678901234567890.5".into()))
            ),
            "123456789012345678901234567890.5"
        );
        assert_eq!(text(&Type::Number, &Value::from(-2.0)), "-2");
        assert!(encode_json(&Type::Number, &Value::from(f64::INFINITY)).is_err());
    }

    #[test]
    fn primitives_convert_like_cty() {
        assert_eq!(decode(&Type::String, "12"), Value::from("12"));
        assert_eq!(decode(&Type::String, "true"), Value::from("true"));
        assert_eq!(decode(&Type::Bool, r#""false""#), Value::from(false));
        assert!(decode_json(&Type::Bool, br#""yes""#).is_err());
        assert!(decode_json(&Type::Number, b"[]").is_err());
    }

    #[test]
    fn unknowns_cannot_be_written() {
        let ty = Type::object([("id", Type::String)]);
        let err = encode_json(&ty, &Value::object([("id", Value::Unknown)])).unwrap_err();
        assert_eq!(err.path_string(), ".id");
    }

    #[test]
    fn errors_carry_the_path() {
        let err = decode_json(&state_type(), br#"{"ports":[{"port":"x"}]}"#).unwrap_err();
        assert_eq!(err.path_string(), ".ports[0].port");
        let err = decode_json(&state_type(), br#"{"labels":{"a":[]}}"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"at .labels["a"]: expected string, got JSON array"#
        );
        assert!(decode_json(&state_type(), b"{").is_err());
    }
}
