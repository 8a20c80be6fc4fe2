//! Reading encrypted files and writing plaintext in each format, the way sops'
//! stores do (including Go's number and string formatting where sops' output
//! depends on it).

use std::borrow::Cow;
use std::fmt::Write as _;

use serde::Deserialize;

use super::error::SopsError;
use super::tree::{Entry, Node, Scalar};
use super::{yaml, Format};

/// A parsed encrypted file: its documents (YAML may have several) without the
/// metadata, and the metadata.
pub(super) struct Parsed {
    pub(super) docs: Vec<Node>,
    pub(super) metadata: Node,
}

pub(super) fn parse(contents: &[u8], format: Format) -> Result<Parsed, SopsError> {
    match format {
        Format::Yaml => parse_yaml(contents),
        // Binary files are stored as JSON: `{"data": "ENC[…]", "sops": {…}}`.
        Format::Json | Format::Binary => parse_json(contents, format),
        Format::Dotenv => parse_dotenv(contents),
    }
}

fn parse_yaml(contents: &[u8]) -> Result<Parsed, SopsError> {
    let mut docs = Vec::new();
    for document in serde_yaml::Deserializer::from_slice(contents) {
        let node = Node::deserialize(document).map_err(|e| parse_error(Format::Yaml, e))?;
        docs.push(match node {
            Node::Map(_) => node,
            // An empty document (only comments, or `---`).
            Node::Scalar(Scalar::Null) => Node::Map(Vec::new()),
            _ => return Err(parse_error(Format::Yaml, "a document is not a map")),
        });
    }
    // Every document carries a copy of the metadata; sops reads the first one.
    let metadata = docs.first_mut().and_then(|doc| doc.take("sops"));
    for doc in docs.iter_mut().skip(1) {
        doc.take("sops");
    }
    Ok(Parsed {
        metadata: metadata.ok_or(SopsError::NotEncrypted)?,
        docs,
    })
}

fn parse_json(contents: &[u8], format: Format) -> Result<Parsed, SopsError> {
    let mut doc: Node = serde_json::from_slice(contents).map_err(|e| parse_error(format, e))?;
    if !matches!(doc, Node::Map(_)) {
        return Err(parse_error(format, "the top level is not an object"));
    }
    numbers_to_floats(&mut doc);
    let metadata = doc.take("sops").ok_or(SopsError::NotEncrypted)?;
    Ok(Parsed {
        docs: vec![doc],
        metadata,
    })
}

/// Go decodes every JSON number as a float64, and the MAC depends on it.
fn numbers_to_floats(node: &mut Node) {
    match node {
        Node::Scalar(scalar) => {
            if let Scalar::Int(i) = *scalar {
                *scalar = Scalar::Float(i as f64);
            }
        }
        Node::List(items) => items.iter_mut().for_each(numbers_to_floats),
        Node::Map(entries) => entries.iter_mut().for_each(|entry| {
            if let Entry::Pair(_, value) = entry {
                numbers_to_floats(value);
            }
        }),
    }
}

const DOTENV_METADATA_PREFIX: &str = "sops_";

fn parse_dotenv(contents: &[u8]) -> Result<Parsed, SopsError> {
    let text = std::str::from_utf8(contents)
        .map_err(|_| parse_error(Format::Dotenv, "it is not UTF-8"))?;
    let mut entries = Vec::new();
    let mut metadata = Node::Map(Vec::new());
    let mut has_metadata = false;
    for (number, line) in text.split('\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            entries.push(Entry::Comment(comment.to_owned()));
            continue;
        }
        // The line is not quoted in the error: it may be a clear-text secret.
        let (key, value) = line.split_once('=').ok_or_else(|| {
            parse_error(
                Format::Dotenv,
                format!("line {} is not KEY=VALUE", number + 1),
            )
        })?;
        let value = value.replace("\\n", "\n");
        match key.strip_prefix(DOTENV_METADATA_PREFIX) {
            Some(path) => {
                insert_flattened(&mut metadata, &tokenize_flattened(path)?, value);
                has_metadata = true;
            }
            None => entries.push(Entry::Pair(
                key.to_owned(),
                Node::Scalar(Scalar::Str(value)),
            )),
        }
    }
    if !has_metadata {
        return Err(SopsError::NotEncrypted);
    }
    Ok(Parsed {
        docs: vec![Node::Map(entries)],
        metadata,
    })
}

/// One step of a flattened dotenv metadata key such as `age__list_0__map_recipient`.
enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

const MAP_SEPARATOR: &str = "__map_";
const LIST_SEPARATOR: &str = "__list_";
/// Guard against forged keys making us allocate a huge list or recurse too deep.
const MAX_LIST_INDEX: usize = 1024;
const MAX_STEPS: usize = 32;

fn tokenize_flattened(path: &str) -> Result<Vec<Step<'_>>, SopsError> {
    let mut steps = Vec::new();
    let mut rest = path;
    let mut is_index = false;
    loop {
        let next = [(MAP_SEPARATOR, false), (LIST_SEPARATOR, true)]
            .into_iter()
            .filter_map(|(sep, index)| rest.find(sep).map(|at| (at, sep.len(), index)))
            .min_by_key(|&(at, ..)| at);
        let piece = next.map_or(rest, |(at, ..)| &rest[..at]);
        steps.push(if is_index {
            // Like sops, an unparsable index counts as 0.
            let index = piece.parse().unwrap_or(0);
            if index > MAX_LIST_INDEX {
                return Err(SopsError::Metadata(
                    "a list index in the metadata is too large".into(),
                ));
            }
            Step::Index(index)
        } else {
            Step::Key(piece)
        });
        match next {
            Some(_) if steps.len() == MAX_STEPS => {
                return Err(SopsError::Metadata(
                    "a metadata key is nested too deeply".into(),
                ));
            }
            Some((at, len, index)) => {
                rest = &rest[at + len..];
                is_index = index;
            }
            None => return Ok(steps),
        }
    }
}

fn insert_flattened(node: &mut Node, steps: &[Step], value: String) {
    let Some((step, rest)) = steps.split_first() else {
        *node = Node::Scalar(Scalar::Str(value));
        return;
    };
    let child = match (step, node) {
        (Step::Key(key), Node::Map(entries)) => {
            let at = match entries
                .iter()
                .position(|e| matches!(e, Entry::Pair(k, _) if k == key))
            {
                Some(at) => at,
                None => {
                    entries.push(Entry::Pair((*key).to_owned(), Node::Scalar(Scalar::Null)));
                    entries.len() - 1
                }
            };
            match &mut entries[at] {
                Entry::Pair(_, child) => child,
                Entry::Comment(_) => return, // position() only finds pairs
            }
        }
        (Step::Index(index), Node::List(items)) => {
            if items.len() <= *index {
                items.resize_with(index + 1, || Node::Scalar(Scalar::Null));
            }
            &mut items[*index]
        }
        // Like sops, a step replaces whatever was there with the collection it needs.
        (Step::Key(_), node) => {
            *node = Node::Map(Vec::new());
            return insert_flattened(node, steps, value);
        }
        (Step::Index(_), node) => {
            *node = Node::List(Vec::new());
            return insert_flattened(node, steps, value);
        }
    };
    insert_flattened(child, rest, value);
}

fn parse_error(format: Format, reason: impl ToString) -> SopsError {
    SopsError::Parse {
        format: format.name(),
        reason: reason.to_string(),
    }
}

/// The plaintext of a decrypted tree as `sops -d` prints it: JSON and dotenv byte
/// for byte, YAML as the same data in nearly the same layout (see [`yaml`]).
pub(super) fn render(docs: &[Node], format: Format) -> Vec<u8> {
    match format {
        Format::Yaml => docs
            .iter()
            .map(yaml::document)
            .collect::<Vec<_>>()
            .join("---\n")
            .into_bytes(),
        Format::Json | Format::Binary => {
            let mut out = String::new();
            if let Some(doc) = docs.first() {
                write_json(&mut out, doc, Some(0));
            }
            out.push('\n');
            out.into_bytes()
        }
        Format::Dotenv => {
            let mut out = String::new();
            for entry in docs.iter().flat_map(|doc| match doc {
                Node::Map(entries) => entries.as_slice(),
                _ => &[],
            }) {
                match entry {
                    Entry::Comment(text) => {
                        let _ = writeln!(out, "#{text}");
                    }
                    Entry::Pair(key, value) => {
                        let _ =
                            writeln!(out, "{key}={}", nested(value, format).replace('\n', "\\n"));
                    }
                }
            }
            out.into_bytes()
        }
    }
}

/// A value as one string: scalars as the format prints them, maps and lists
/// serialized in the file's format (compact JSON for JSON).
pub(super) fn nested(node: &Node, format: Format) -> Cow<'_, str> {
    match (node, format) {
        (Node::Scalar(scalar), _) => scalar_text(scalar, format),
        (_, Format::Json | Format::Binary) => {
            let mut out = String::new();
            write_json(&mut out, node, None);
            out.into()
        }
        _ => yaml::document(node).into(),
    }
}

/// A scalar as the format prints it: booleans `true`/`false`, numbers as Go
/// formats them for that format, null as `null`.
pub(super) fn scalar_text(scalar: &Scalar, format: Format) -> Cow<'_, str> {
    match scalar {
        Scalar::Null => "null".into(),
        Scalar::Bool(b) => if *b { "true" } else { "false" }.into(),
        Scalar::Int(i) => i.to_string().into(),
        Scalar::Float(f) => match format {
            Format::Json | Format::Binary => go_float_json(*f),
            Format::Dotenv => go_val_to_string(*f),
            Format::Yaml => go_float_yaml(*f),
        }
        .into(),
        Scalar::Str(s) | Scalar::Time(s) => s.as_str().into(),
        Scalar::Bytes(b) => String::from_utf8_lossy(b),
    }
}

/// Go's `encoding/json` output: `json.Marshal` values, laid out by `json.Indent`
/// with tabs when `depth` is given, compact otherwise.
fn write_json(out: &mut String, node: &Node, depth: Option<usize>) {
    let (open, close, children): (char, char, Vec<(Option<&str>, &Node)>) = match node {
        Node::Map(_) => ('{', '}', node.pairs().map(|(k, v)| (Some(k), v)).collect()),
        Node::List(items) => ('[', ']', items.iter().map(|v| (None, v)).collect()),
        Node::Scalar(Scalar::Str(s) | Scalar::Time(s)) => return json_string(out, s.as_bytes()),
        Node::Scalar(Scalar::Bytes(b)) => return json_string(out, b),
        Node::Scalar(other) => return out.push_str(&scalar_text(other, Format::Json)),
    };
    let new_line = |out: &mut String, level: usize| {
        if depth.is_some() {
            out.push('\n');
            out.extend(std::iter::repeat_n('\t', level));
        }
    };
    let level = depth.unwrap_or_default();
    out.push(open);
    for (i, (key, value)) in children.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        new_line(out, level + 1);
        if let Some(key) = key {
            json_string(out, key.as_bytes());
            out.push_str(if depth.is_some() { ": " } else { ":" });
        }
        write_json(out, value, depth.map(|d| d + 1));
    }
    // Empty objects and arrays stay `{}` and `[]`, as json.Indent leaves them.
    if !children.is_empty() {
        new_line(out, level);
    }
    out.push(close);
}

/// Go's JSON string escaping, HTML-safe as `json.Marshal` does by default; each
/// byte of invalid UTF-8 becomes `\ufffd`.
fn json_string(out: &mut String, bytes: &[u8]) {
    out.push('"');
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\u{8}' => out.push_str("\\b"),
                '\u{c}' => out.push_str("\\f"),
                '<' | '>' | '&' | '\u{2028}' | '\u{2029}' | '\0'..='\u{1f}' => {
                    let _ = write!(out, "\\u{:04x}", c as u32);
                }
                c => out.push(c),
            }
        }
        for _ in chunk.invalid() {
            out.push_str("\\ufffd");
        }
    }
    out.push('"');
}

/// Go's `strconv.FormatFloat(f, 'f', -1, 64)`: the shortest digits that round-trip,
/// never with an exponent (which is exactly Rust's `Display`).
pub(super) fn go_float_f(f: f64) -> String {
    match non_finite(f) {
        Some(s) => s.to_owned(),
        None => f.to_string(),
    }
}

fn non_finite(f: f64) -> Option<&'static str> {
    if f.is_nan() {
        Some("NaN")
    } else if f.is_infinite() {
        Some(if f > 0.0 { "+Inf" } else { "-Inf" })
    } else {
        None
    }
}

/// The shortest round-trip digits of a finite float and its decimal exponent
/// (`d.ddd × 10^exp`).
fn shortest_digits(f: f64) -> (String, i32) {
    let scientific = format!("{:e}", f.abs());
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    (mantissa.replace('.', ""), exponent.parse().unwrap_or(0))
}

/// Go's `%e` form of the shortest digits: `d.ddde±XX`, at least two exponent digits.
fn go_exponent_form(f: f64, e: char) -> String {
    let (digits, exponent) = shortest_digits(f);
    let mut out = String::new();
    if f.is_sign_negative() {
        out.push('-');
    }
    out.push_str(&digits[..1]);
    if digits.len() > 1 {
        out.push('.');
        out.push_str(&digits[1..]);
    }
    let _ = write!(
        out,
        "{e}{}{:02}",
        if exponent < 0 { '-' } else { '+' },
        exponent.abs()
    );
    out
}

/// Go's `strconv.FormatFloat(f, 'g', -1, 64)`: the exponent form below 1e-4 and from 1e6.
fn go_float_g(f: f64, e: char) -> String {
    if let Some(s) = non_finite(f) {
        return s.to_owned();
    }
    let (_, exponent) = shortest_digits(f);
    if f != 0.0 && !(-4..6).contains(&exponent) {
        go_exponent_form(f, e)
    } else {
        f.to_string()
    }
}

/// How Go's YAML encoder (and so `sops -d`) writes a float.
pub(super) fn go_float_yaml(f: f64) -> String {
    match go_float_g(f, 'e').as_str() {
        "+Inf" => ".inf".to_owned(),
        "-Inf" => "-.inf".to_owned(),
        "NaN" => ".nan".to_owned(),
        other => other.to_owned(),
    }
}

/// How Go's `json.Marshal` writes a float (JSON has no NaN or infinities; Go would
/// fail on them, we write null).
fn go_float_json(f: f64) -> String {
    if !f.is_finite() {
        return "null".to_owned();
    }
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let form = go_exponent_form(f, 'e');
        // json.Marshal trims e-07 to e-7.
        match form.split_once("e-0") {
            Some((mantissa, digit)) => format!("{mantissa}e-{digit}"),
            None => form,
        }
    } else {
        f.to_string()
    }
}

/// sops' `ValToString`, which dotenv output uses: `%G`, with a `.0` added to
/// anything that would read as an integer.
fn go_val_to_string(f: f64) -> String {
    let g = go_float_g(f, 'E');
    if f.is_finite() && !g.contains(['.', 'E']) {
        format!("{f:.1}")
    } else {
        g
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_format_like_go() {
        for (f, f_form, yaml, json) in [
            (1.5, "1.5", "1.5", "1.5"),
            (1.0, "1", "1", "1"),
            (1e6, "1000000", "1e+06", "1000000"),
            (123456789.0, "123456789", "1.23456789e+08", "123456789"),
            (1e21, "1000000000000000000000", "1e+21", "1e+21"),
            (1e-7, "0.0000001", "1e-07", "1e-7"),
            (1.5e-10, "0.00000000015", "1.5e-10", "1.5e-10"),
            (0.0001, "0.0001", "0.0001", "0.0001"),
            (-2.5e-5, "-0.000025", "-2.5e-05", "-0.000025"),
            (0.0, "0", "0", "0"),
            (f64::INFINITY, "+Inf", ".inf", "null"),
            (f64::NEG_INFINITY, "-Inf", "-.inf", "null"),
            (f64::NAN, "NaN", ".nan", "null"),
        ] {
            assert_eq!(go_float_f(f), f_form, "'f' of {f}");
            assert_eq!(go_float_yaml(f), yaml, "yaml of {f}");
            assert_eq!(go_float_json(f), json, "json of {f}");
        }
        assert_eq!(go_val_to_string(5.0), "5.0");
        assert_eq!(go_val_to_string(1e6), "1E+06");
        assert_eq!(go_val_to_string(0.25), "0.25");
    }

    #[test]
    fn json_strings_escape_like_go() {
        let mut out = String::new();
        json_string(
            &mut out,
            b"a\"\\\n\t\x08\x0c\x01<>&\x7f\xe2\x80\xa8\xff\xe2\x82z",
        );
        assert_eq!(
            out,
            r#""a\"\\\n\t\b\f\u0001\u003c\u003e\u0026\u007f\u2028\ufffd\ufffd\ufffdz""#
                .replace("\\u007f", "\u{7f}")
        );
    }

    #[test]
    fn dotenv_metadata_keys_unflatten() {
        let steps = tokenize_flattened("key_groups__list_1__map_age__list_0__map_enc").unwrap();
        let mut root = Node::Map(Vec::new());
        insert_flattened(&mut root, &steps, "x".into());
        let groups = match root.get("key_groups") {
            Some(Node::List(groups)) => groups,
            _ => panic!("key_groups is not a list"),
        };
        assert_eq!(groups.len(), 2);
        let age = match groups[1].get("age") {
            Some(Node::List(age)) => age,
            _ => panic!("age is not a list"),
        };
        assert_eq!(age[0].get("enc").and_then(Node::as_str), Some("x"));
        assert!(tokenize_flattened("age__list_99999999__map_enc").is_err());
        assert!(tokenize_flattened(&"a__map_".repeat(100)).is_err());
    }
}
