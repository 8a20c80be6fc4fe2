//! The MessagePack encoding of cty values (`DynamicValue.msgpack`).
//!
//! Decoding is deliberately liberal in what Terraform may legitimately send (every integer
//! width, floats, numbers as strings, `bin` for strings, any extension as unknown) and strict
//! about shape (objects must carry exactly their attributes). Encoding writes what Terraform
//! itself writes: compact integers, sorted object keys, plain unknowns.

use std::collections::BTreeMap;

use rmp::encode;
use rmp::Marker;

use super::{Number, PathStep, Type, Value, ValueError, Within};

/// The plain unknown value: fixext1 of extension type 0 with a zero payload byte. Terraform
/// rejects other extension types (unless a valid refinement payload follows).
const UNKNOWN: [u8; 3] = [0xd4, 0x00, 0x00];

/// Encodes `value` as a value of type `ty`, checking that it conforms.
pub fn encode_msgpack(ty: &Type, value: &Value) -> Result<Vec<u8>, ValueError> {
    let mut out = Vec::new();
    encode_value(&mut out, ty, value)?;
    Ok(out)
}

/// Decodes bytes holding one value of type `ty`.
pub fn decode_msgpack(ty: &Type, bytes: &[u8]) -> Result<Value, ValueError> {
    let mut reader = Reader { bytes, pos: 0 };
    let value = decode_value(&mut reader, ty)?;
    if reader.pos != bytes.len() {
        return Err(ValueError::new(format!(
            "{} unexpected bytes after the value",
            bytes.len() - reader.pos
        )));
    }
    Ok(value)
}

// ---------------------------------------------------------------------------------------------
// Encoding

/// Writing into a Vec cannot fail; rmp's signatures allow for I/O errors anyway.
fn written<T, E: std::fmt::Debug>(result: Result<T, E>) {
    result
        .map(|_| ())
        .expect("writing to a Vec<u8> cannot fail");
}

fn length(len: usize) -> Result<u32, ValueError> {
    u32::try_from(len).map_err(|_| ValueError::new("too many elements for MessagePack"))
}

fn mismatch(ty: &Type, value: &Value) -> ValueError {
    ValueError::new(format!("expected {}, got {}", ty.kind(), value.kind()))
}

fn encode_value(out: &mut Vec<u8>, ty: &Type, value: &Value) -> Result<(), ValueError> {
    match value {
        Value::Null => {
            written(encode::write_nil(out));
            return Ok(());
        }
        Value::Unknown => {
            out.extend_from_slice(&UNKNOWN);
            return Ok(());
        }
        _ => {}
    }
    match (ty, value) {
        (Type::Dynamic, _) => encode_dynamic(out, value),
        (Type::String, Value::String(s)) => {
            written(encode::write_str(out, s));
            Ok(())
        }
        (Type::Number, Value::Number(n)) => encode_number(out, n),
        (Type::Bool, Value::Bool(b)) => {
            written(encode::write_bool(out, *b));
            Ok(())
        }
        (Type::List(element), Value::List(items)) | (Type::Set(element), Value::Set(items)) => {
            written(encode::write_array_len(out, length(items.len())?));
            for (i, item) in items.iter().enumerate() {
                encode_value(out, element, item).within(|| PathStep::Index(i))?;
            }
            Ok(())
        }
        (Type::Tuple(elements), Value::Tuple(items)) => {
            ValueError::check_tuple_len(elements.len(), items.len())?;
            written(encode::write_array_len(out, length(items.len())?));
            for (i, (element, item)) in elements.iter().zip(items).enumerate() {
                encode_value(out, element, item).within(|| PathStep::Index(i))?;
            }
            Ok(())
        }
        (Type::Map(element), Value::Map(entries)) => {
            written(encode::write_map_len(out, length(entries.len())?));
            for (key, item) in entries {
                written(encode::write_str(out, key));
                encode_value(out, element, item).within(|| PathStep::Key(key.clone()))?;
            }
            Ok(())
        }
        (Type::Object(attributes), Value::Object(values)) => encode_object(out, attributes, values),
        _ => Err(mismatch(ty, value)),
    }
}

/// Terraform requires every attribute, so absent ones are written as nil. Keys come out sorted
/// by name, as Terraform writes them, because both maps are BTreeMaps.
fn encode_object(
    out: &mut Vec<u8>,
    attributes: &BTreeMap<String, Type>,
    values: &BTreeMap<String, Value>,
) -> Result<(), ValueError> {
    if let Some(extra) = values.keys().find(|name| !attributes.contains_key(*name)) {
        return Err(ValueError::new(format!("unsupported attribute {extra:?}")));
    }
    written(encode::write_map_len(out, length(attributes.len())?));
    for (name, ty) in attributes {
        written(encode::write_str(out, name));
        let value = values.get(name).unwrap_or(&Value::Null);
        encode_value(out, ty, value).within(|| PathStep::Attribute(name.clone()))?;
    }
    Ok(())
}

/// A known value in a `dynamic` slot travels as `[type JSON as bin, value]`.
fn encode_dynamic(out: &mut Vec<u8>, value: &Value) -> Result<(), ValueError> {
    let (ty, inner) = value.dynamic_parts()?;
    if ty == Type::Dynamic {
        // "Dynamic of type dynamic" says nothing more than the inner value.
        return encode_value(out, &Type::Dynamic, inner);
    }
    written(encode::write_array_len(out, 2));
    written(encode::write_bin(out, &ty.to_json_bytes()));
    encode_value(out, &ty, inner)
}

/// Integers in the most compact form, other exact floats as float64, everything else as
/// decimal text: what cty does, so that Terraform reads back exactly the value it compares.
fn encode_number(out: &mut Vec<u8>, n: &Number) -> Result<(), ValueError> {
    match n.normalized()? {
        Number::Int(i) => written(encode::write_sint(out, i)),
        Number::Float(f) => written(encode::write_f64(out, f)),
        Number::Big(text) => written(encode::write_str(out, &text)),
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Decoding

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn peek(&self) -> Result<Marker, ValueError> {
        self.bytes
            .get(self.pos)
            .map(|b| Marker::from_u8(*b))
            .ok_or_else(truncated)
    }

    fn marker(&mut self) -> Result<Marker, ValueError> {
        let marker = self.peek()?;
        self.pos += 1;
        Ok(marker)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], ValueError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|end| *end <= self.bytes.len())
            .ok_or_else(truncated)?;
        let taken = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(taken)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], ValueError> {
        Ok(self
            .take(N)?
            .try_into()
            .expect("take returns exactly N bytes"))
    }

    fn u8(&mut self) -> Result<usize, ValueError> {
        Ok(self.array::<1>()?[0].into())
    }

    fn u16(&mut self) -> Result<usize, ValueError> {
        Ok(u16::from_be_bytes(self.array()?).into())
    }

    fn u32(&mut self) -> Result<usize, ValueError> {
        usize::try_from(u32::from_be_bytes(self.array()?)).map_err(|_| truncated())
    }

    /// How many more bytes there are: no element is smaller than one byte, so no honest length
    /// exceeds this (used to bound allocations).
    fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    /// Skips an extension whose marker was just read.
    fn skip_extension(&mut self, marker: Marker) -> Result<(), ValueError> {
        let payload = match marker {
            Marker::FixExt1 => 1,
            Marker::FixExt2 => 2,
            Marker::FixExt4 => 4,
            Marker::FixExt8 => 8,
            Marker::FixExt16 => 16,
            Marker::Ext8 => self.u8()?,
            Marker::Ext16 => self.u16()?,
            Marker::Ext32 => self.u32()?,
            _ => unreachable!("only called for extension markers"),
        };
        // The type byte, then the payload: for type 12 the refinements of the unknown, which
        // we do not keep.
        self.take(1 + payload)?;
        Ok(())
    }

    /// The bytes of a str or bin (both are accepted wherever text is expected).
    fn bytes_of(&mut self, marker: Marker) -> Result<Option<&'a [u8]>, ValueError> {
        let len = match marker {
            Marker::FixStr(len) => len.into(),
            Marker::Str8 | Marker::Bin8 => self.u8()?,
            Marker::Str16 | Marker::Bin16 => self.u16()?,
            Marker::Str32 | Marker::Bin32 => self.u32()?,
            _ => return Ok(None),
        };
        self.take(len).map(Some)
    }

    fn text(&mut self, marker: Marker) -> Result<Option<String>, ValueError> {
        match self.bytes_of(marker)? {
            Some(bytes) => match String::from_utf8(bytes.to_vec()) {
                Ok(s) => Ok(Some(s)),
                Err(_) => Err(ValueError::new("string is not valid UTF-8")),
            },
            None => Ok(None),
        }
    }

    fn array_len(&mut self, marker: Marker) -> Result<Option<usize>, ValueError> {
        Ok(Some(match marker {
            Marker::FixArray(len) => len.into(),
            Marker::Array16 => self.u16()?,
            Marker::Array32 => self.u32()?,
            _ => return Ok(None),
        }))
    }

    fn map_len(&mut self, marker: Marker) -> Result<Option<usize>, ValueError> {
        Ok(Some(match marker {
            Marker::FixMap(len) => len.into(),
            Marker::Map16 => self.u16()?,
            Marker::Map32 => self.u32()?,
            _ => return Ok(None),
        }))
    }
}

fn truncated() -> ValueError {
    ValueError::new("MessagePack data ends too early")
}

fn is_extension(marker: Marker) -> bool {
    matches!(
        marker,
        Marker::FixExt1
            | Marker::FixExt2
            | Marker::FixExt4
            | Marker::FixExt8
            | Marker::FixExt16
            | Marker::Ext8
            | Marker::Ext16
            | Marker::Ext32
    )
}

/// What a marker starts, for error messages.
fn marker_kind(marker: Marker) -> &'static str {
    match marker {
        Marker::Null => "nil",
        Marker::True | Marker::False => "bool",
        Marker::FixPos(_) | Marker::FixNeg(_) => "integer",
        Marker::U8 | Marker::U16 | Marker::U32 | Marker::U64 => "integer",
        Marker::I8 | Marker::I16 | Marker::I32 | Marker::I64 => "integer",
        Marker::F32 | Marker::F64 => "float",
        Marker::FixStr(_) | Marker::Str8 | Marker::Str16 | Marker::Str32 => "string",
        Marker::Bin8 | Marker::Bin16 | Marker::Bin32 => "binary",
        Marker::FixArray(_) | Marker::Array16 | Marker::Array32 => "array",
        Marker::FixMap(_) | Marker::Map16 | Marker::Map32 => "map",
        Marker::Reserved => "reserved byte 0xc1",
        _ => "extension",
    }
}

fn expected(what: &str, marker: Marker) -> ValueError {
    ValueError::new(format!("expected {what}, got {}", marker_kind(marker)))
}

fn decode_value(r: &mut Reader, ty: &Type) -> Result<Value, ValueError> {
    let marker = r.marker()?;
    // An extension means unknown whatever the type, so this comes before the dynamic wrapper.
    if is_extension(marker) {
        r.skip_extension(marker)?;
        return Ok(Value::Unknown);
    }
    if marker == Marker::Null {
        return Ok(Value::Null);
    }
    match ty {
        Type::Dynamic => decode_dynamic(r, marker),
        Type::String => r
            .text(marker)?
            .map(Value::String)
            .ok_or_else(|| expected("string", marker)),
        Type::Number => decode_number(r, marker).map(Value::Number),
        Type::Bool => match marker {
            Marker::True => Ok(Value::Bool(true)),
            Marker::False => Ok(Value::Bool(false)),
            _ => Err(expected("bool", marker)),
        },
        Type::List(element) => decode_items(r, marker, "list", element).map(Value::List),
        Type::Set(element) => decode_items(r, marker, "set", element).map(Value::Set),
        Type::Tuple(elements) => {
            let len = r
                .array_len(marker)?
                .ok_or_else(|| expected("tuple", marker))?;
            ValueError::check_tuple_len(elements.len(), len)?;
            let items = elements
                .iter()
                .enumerate()
                .map(|(i, element)| decode_value(r, element).within(|| PathStep::Index(i)))
                .collect::<Result<_, _>>()?;
            Ok(Value::Tuple(items))
        }
        Type::Map(element) => {
            let len = r.map_len(marker)?.ok_or_else(|| expected("map", marker))?;
            let mut entries = BTreeMap::new();
            for _ in 0..len {
                let key = decode_key(r)?;
                let item = decode_value(r, element).within(|| PathStep::Key(key.clone()))?;
                entries.insert(key, item);
            }
            Ok(Value::Map(entries))
        }
        Type::Object(attributes) => decode_object(r, marker, attributes),
    }
}

/// The elements of a list or set.
fn decode_items(
    r: &mut Reader,
    marker: Marker,
    what: &str,
    element: &Type,
) -> Result<Vec<Value>, ValueError> {
    let len = r.array_len(marker)?.ok_or_else(|| expected(what, marker))?;
    let mut items = Vec::with_capacity(len.min(r.remaining()));
    for i in 0..len {
        items.push(decode_value(r, element).within(|| PathStep::Index(i))?);
    }
    Ok(items)
}

fn decode_key(r: &mut Reader) -> Result<String, ValueError> {
    let marker = r.marker()?;
    r.text(marker)?
        .ok_or_else(|| expected("string key", marker))
}

/// Every attribute must be present (Terraform always sends all of them), and no other.
fn decode_object(
    r: &mut Reader,
    marker: Marker,
    attributes: &BTreeMap<String, Type>,
) -> Result<Value, ValueError> {
    let len = r
        .map_len(marker)?
        .ok_or_else(|| expected("object", marker))?;
    let mut values = BTreeMap::new();
    for _ in 0..len {
        let name = decode_key(r)?;
        let Some(ty) = attributes.get(&name) else {
            return Err(ValueError::new(format!("unsupported attribute {name:?}")));
        };
        let value = decode_value(r, ty).within(|| PathStep::Attribute(name.clone()))?;
        values.insert(name, value);
    }
    let missing: Vec<String> = attributes
        .keys()
        .filter(|name| !values.contains_key(*name))
        .map(|name| format!("{name:?}"))
        .collect();
    if !missing.is_empty() {
        return Err(ValueError::new(format!(
            "object is missing attribute{} {} ({} of {} given)",
            if missing.len() == 1 { "" } else { "s" },
            missing.join(", "),
            values.len(),
            attributes.len()
        )));
    }
    Ok(Value::Object(values))
}

/// `[type JSON, value]`; nil and unknown were handled before.
fn decode_dynamic(r: &mut Reader, marker: Marker) -> Result<Value, ValueError> {
    let len = r
        .array_len(marker)?
        .ok_or_else(|| expected("[type, value] array for a dynamic value", marker))?;
    if len != 2 {
        return Err(ValueError::new(format!(
            "a dynamic value must be a [type, value] array, got {len} elements"
        )));
    }
    let type_marker = r.marker()?;
    let type_json = r
        .bytes_of(type_marker)?
        .ok_or_else(|| expected("type JSON for a dynamic value", type_marker))?;
    let ty = Type::from_json_bytes(type_json)?;
    let value = decode_value(r, &ty)?;
    Ok(match ty {
        // The wrapper adds nothing when it names no concrete type.
        Type::Dynamic => value,
        ty => Value::Dynamic(ty, Box::new(value)),
    })
}

fn decode_number(r: &mut Reader, marker: Marker) -> Result<Number, ValueError> {
    Ok(match marker {
        Marker::FixPos(n) => Number::Int(n.into()),
        Marker::FixNeg(n) => Number::Int(n.into()),
        Marker::U8 => Number::Int(u8::from_be_bytes(r.array()?).into()),
        Marker::U16 => Number::Int(u16::from_be_bytes(r.array()?).into()),
        Marker::U32 => Number::Int(u32::from_be_bytes(r.array()?).into()),
        Marker::U64 => Number::from(u64::from_be_bytes(r.array()?)),
        Marker::I8 => Number::Int(i8::from_be_bytes(r.array()?).into()),
        Marker::I16 => Number::Int(i16::from_be_bytes(r.array()?).into()),
        Marker::I32 => Number::Int(i32::from_be_bytes(r.array()?).into()),
        Marker::I64 => Number::Int(i64::from_be_bytes(r.array()?)),
        Marker::F32 => float(f32::from_be_bytes(r.array()?).into())?,
        Marker::F64 => float(f64::from_be_bytes(r.array()?))?,
        // cty sends numbers that neither int64 nor float64 holds exactly as decimal text.
        _ => match r.text(marker)? {
            Some(text) => Number::parse(&text)?,
            None => return Err(expected("number", marker)),
        },
    })
}

fn float(f: f64) -> Result<Number, ValueError> {
    if f.is_nan() {
        return Err(ValueError::new("NaN is not a valid number"));
    }
    Ok(Number::from_f64(f))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(text: &str) -> Vec<u8> {
        text.split_whitespace()
            .map(|b| u8::from_str_radix(b, 16).unwrap())
            .collect()
    }

    fn encode(ty: &Type, v: &Value) -> Vec<u8> {
        encode_msgpack(ty, v).unwrap_or_else(|e| panic!("encode failed: {e}"))
    }

    fn decode(ty: &Type, bytes: &[u8]) -> Value {
        decode_msgpack(ty, bytes).unwrap_or_else(|e| panic!("decode failed: {e}"))
    }

    fn id_name() -> Type {
        Type::object([("id", Type::String), ("name", Type::String)])
    }

    #[test]
    fn null_and_empty_objects() {
        assert_eq!(encode(&id_name(), &Value::Null), hex("c0"));
        assert_eq!(decode(&id_name(), &hex("c0")), Value::Null);
        let empty = Type::object::<&str>([]);
        assert_eq!(encode(&empty, &Value::object::<&str>([])), hex("80"));
        assert_eq!(decode(&empty, &hex("80")), Value::object::<&str>([]));
    }

    #[test]
    fn object_with_unknown_attribute() {
        let value = Value::object([("id", Value::Unknown), ("name", "a".into())]);
        let bytes = hex("82 a2 69 64 d4 00 00 a4 6e 61 6d 65 a1 61");
        assert_eq!(encode(&id_name(), &value), bytes);
        assert_eq!(decode(&id_name(), &bytes), value);
    }

    #[test]
    fn absent_attributes_encode_as_nil_in_sorted_order() {
        let ty = Type::object([("b", Type::Bool), ("a", Type::Number)]);
        assert_eq!(
            encode(&ty, &Value::object([("b", true.into())])),
            hex("82 a1 61 c0 a1 62 c3")
        );
    }

    #[test]
    fn dynamic_holding_string() {
        let bytes = hex("92 c4 08 22 73 74 72 69 6e 67 22 a1 78");
        let wrapped = Value::Dynamic(Type::String, Box::new("x".into()));
        assert_eq!(encode(&Type::Dynamic, &wrapped), bytes);
        // A plain value in a dynamic slot has its type inferred.
        assert_eq!(encode(&Type::Dynamic, &"x".into()), bytes);
        let decoded = decode(&Type::Dynamic, &bytes);
        assert!(
            matches!(&decoded, Value::Dynamic(Type::String, v) if v.as_str() == Some("x")),
            "{decoded:?}"
        );
        // The type JSON may also come as str.
        assert_eq!(
            decode(&Type::Dynamic, &hex("92 a8 22 73 74 72 69 6e 67 22 a1 78")),
            wrapped
        );
    }

    #[test]
    fn dynamic_null_unknown_and_nested() {
        assert_eq!(encode(&Type::Dynamic, &Value::Null), hex("c0"));
        assert_eq!(encode(&Type::Dynamic, &Value::Unknown), hex("d4 00 00"));
        assert_eq!(decode(&Type::Dynamic, &hex("c0")), Value::Null);
        assert_eq!(decode(&Type::Dynamic, &hex("d4 00 00")), Value::Unknown);
        // A typed null keeps its type.
        let typed_null = Value::Dynamic(Type::Number, Box::new(Value::Null));
        let bytes = encode(&Type::Dynamic, &typed_null);
        assert_eq!(bytes, hex("92 c4 08 22 6e 75 6d 62 65 72 22 c0"));
        assert!(
            matches!(decode(&Type::Dynamic, &bytes), Value::Dynamic(Type::Number, v) if v.is_null())
        );

        let ty = Type::object([("manifest", Type::Dynamic)]);
        let manifest = Value::object([
            ("kind", Value::from("Pod")),
            ("spec", Value::object([("n", Value::from(2i64))])),
        ]);
        let value = Value::object([("manifest", manifest.clone())]);
        let decoded = decode(&ty, &encode(&ty, &value));
        let Some(Value::Dynamic(inner_ty, inner)) = decoded.get_attr("manifest") else {
            panic!("{decoded:?}")
        };
        assert_eq!(*inner_ty, manifest.infer_type().unwrap());
        assert_eq!(**inner, manifest);
    }

    #[test]
    fn unknowns_in_every_extension_form() {
        for bytes in [
            "d4 00 00",
            "c7 03 0c 81 01 c2",
            "d4 05 01",
            "d5 00 00 00",
            "d6 00 01 02 03 04",
            "d7 0c 01 02 03 04 05 06 07 08",
            "d8 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00",
            "c8 00 01 0c c0",
            "c9 00 00 00 00 00",
        ] {
            for ty in [
                Type::String,
                Type::Number,
                Type::Dynamic,
                id_name(),
                Type::list(Type::Bool),
            ] {
                assert_eq!(decode(&ty, &hex(bytes)), Value::Unknown, "{bytes} as {ty}");
            }
        }
        // Inside a list, decoding carries on after the extension.
        assert_eq!(
            decode(
                &Type::list(Type::String),
                &hex("92 c7 03 0c 81 01 c2 a1 61")
            ),
            Value::List(vec![Value::Unknown, "a".into()])
        );
    }

    #[test]
    fn numbers_of_every_width() {
        let cases: &[(&str, Number)] = &[
            ("05", Number::Int(5)),
            ("e0", Number::Int(-32)),
            ("cc ff", Number::Int(255)),
            ("cd 01 2c", Number::Int(300)),
            ("ce 00 01 00 00", Number::Int(65536)),
            (
                "cf ff ff ff ff ff ff ff ff",
                Number::Big("18446744073709551615".into()),
            ),
            ("d0 80", Number::Int(-128)),
            ("d1 fe d4", Number::Int(-300)),
            ("d2 ff fe 79 60", Number::Int(-100000)),
            ("d3 80 00 00 00 00 00 00 00", Number::Int(i64::MIN)),
            ("ca 3f c0 00 00", Number::Float(1.5)),
            ("cb 3f f8 00 00 00 00 00 00", Number::Float(1.5)),
            ("cb 40 08 00 00 00 00 00 00", Number::Int(3)),
            ("a3 30 2e 31", Number::Big("0.1".into())),
            ("a2 34 32", Number::Int(42)),
        ];
        for (bytes, number) in cases {
            assert_eq!(
                decode(&Type::Number, &hex(bytes)),
                Value::Number(number.clone()),
                "{bytes}"
            );
        }
    }

    #[test]
    fn numbers_encode_compactly() {
        let cases: &[(Number, &str)] = &[
            (Number::Int(1), "01"),
            (Number::Int(-1), "ff"),
            (Number::Int(300), "cd 01 2c"),
            (Number::Int(-300), "d1 fe d4"),
            (Number::Float(1.5), "cb 3f f8 00 00 00 00 00 00"),
            (Number::Float(2.0), "02"),
            (Number::Float(f64::INFINITY), "cb 7f f0 00 00 00 00 00 00"),
            (Number::Big("0.1".into()), "a3 30 2e 31"),
            (Number::Big("7".into()), "07"),
        ];
        for (number, bytes) in cases {
            assert_eq!(
                encode(&Type::Number, &Value::Number(number.clone())),
                hex(bytes),
                "{number:?}"
            );
        }
        assert!(encode_msgpack(&Type::Number, &Value::Number(Number::Float(f64::NAN))).is_err());
    }

    #[test]
    fn strings_in_every_form() {
        for bytes in [
            "a1 78",
            "d9 01 78",
            "da 00 01 78",
            "db 00 00 00 01 78",
            "c4 01 78",
            "c5 00 01 78",
            "c6 00 00 00 01 78",
        ] {
            assert_eq!(
                decode(&Type::String, &hex(bytes)),
                Value::from("x"),
                "{bytes}"
            );
        }
        let long = "y".repeat(40);
        let bytes = encode(&Type::String, &long.as_str().into());
        assert_eq!(&bytes[..2], &[0xd9, 40]);
        assert_eq!(decode(&Type::String, &bytes), Value::from(long.as_str()));
    }

    #[test]
    fn nested_list_of_objects_round_trips() {
        let ty = Type::object([
            (
                "rules",
                Type::list(Type::object([
                    ("port", Type::Number),
                    ("hosts", Type::set(Type::String)),
                ])),
            ),
            ("labels", Type::map(Type::String)),
            ("pair", Type::Tuple(vec![Type::Bool, Type::String])),
        ]);
        let value = Value::object([
            (
                "rules",
                Value::List(vec![
                    Value::object([
                        ("port", Value::from(443i64)),
                        ("hosts", Value::Set(vec!["a".into(), "b".into()])),
                    ]),
                    Value::object([("port", Value::Unknown), ("hosts", Value::Null)]),
                ]),
            ),
            (
                "labels",
                Value::map([("app", Value::from("web")), ("tier", Value::Unknown)]),
            ),
            ("pair", Value::Tuple(vec![true.into(), "z".into()])),
        ]);
        assert_eq!(decode(&ty, &encode(&ty, &value)), value);
    }

    #[test]
    fn map_of_strings_round_trips() {
        let ty = Type::map(Type::String);
        let value = Value::map([("a", Value::from("1")), ("b", Value::from("2"))]);
        let bytes = encode(&ty, &value);
        assert_eq!(bytes, hex("82 a1 61 a1 31 a1 62 a1 32"));
        assert_eq!(decode(&ty, &bytes), value);
        assert_eq!(decode(&ty, &hex("80")), Value::map::<&str>([]));
    }

    #[test]
    fn object_missing_attribute_is_an_error() {
        let err = decode_msgpack(&id_name(), &hex("81 a2 69 64 a1 61")).unwrap_err();
        assert!(err.to_string().contains("\"name\""), "{err}");
        // An empty map is not an object with attributes.
        let err = decode_msgpack(&id_name(), &hex("80")).unwrap_err();
        assert!(err.to_string().contains("\"id\", \"name\""), "{err}");
    }

    #[test]
    fn extra_attribute_is_an_error() {
        let err = decode_msgpack(
            &id_name(),
            &hex("83 a2 69 64 c0 a4 6e 61 6d 65 c0 a3 61 67 65 c0"),
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("unsupported attribute \"age\""),
            "{err}"
        );
        let err = encode_msgpack(&id_name(), &Value::object([("age", Value::Null)])).unwrap_err();
        assert!(
            err.to_string().contains("unsupported attribute \"age\""),
            "{err}"
        );
    }

    #[test]
    fn errors_carry_the_path() {
        let ty = Type::object([("labels", Type::map(Type::String))]);
        let err = decode_msgpack(&ty, &hex("81 a6 6c 61 62 65 6c 73 81 a1 61 c3")).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"at .labels["a"]: expected string, got bool"#
        );
        let ty = Type::object([("flags", Type::list(Type::Bool))]);
        let err = encode_msgpack(
            &ty,
            &Value::object([("flags", Value::List(vec![true.into(), "no".into()]))]),
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "at .flags[1]: expected bool, got string");
    }

    #[test]
    fn malformed_input_is_an_error() {
        for (ty, bytes) in [
            (Type::String, "a3 61 62"),
            (Type::String, ""),
            (Type::Number, "a1 78"),
            (Type::Tuple(vec![Type::Bool]), "92 c2 c2"),
            (Type::Dynamic, "93 c4 00 c0 c0"),
            (Type::Dynamic, "92 c4 03 22 78 22 c0"),
            (Type::String, "a1 78 c0"),
            (Type::list(Type::String), "dd ff ff ff ff"),
            (Type::String, "c7 05 0c 00"),
        ] {
            assert!(decode_msgpack(&ty, &hex(bytes)).is_err(), "{bytes} as {ty}");
        }
    }

    #[test]
    fn type_mismatch_on_encode_is_an_error() {
        let err = encode_msgpack(&Type::Bool, &"true".into()).unwrap_err();
        assert_eq!(err.to_string(), "expected bool, got string");
        assert!(encode_msgpack(&Type::list(Type::String), &Value::Set(vec![])).is_err());
        assert!(encode_msgpack(&Type::Tuple(vec![Type::String]), &Value::Tuple(vec![])).is_err());
    }
}
