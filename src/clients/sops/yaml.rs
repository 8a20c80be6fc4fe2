//! Writes a decrypted tree as YAML in the layout `sops -d` uses (4-space indents,
//! literal blocks for multi-line strings, Go's number formats). Strings that any
//! YAML 1.1 or 1.2 reader could take for something else (`off`, `0123`,
//! `2024-01-01`, …) are quoted, so the output means the same to every reader.
//! It is not byte-identical to sops' output: sops also prints the file's comments,
//! which serde_yaml does not give us.

use super::formats::go_float_yaml;
use super::tree::{Node, Scalar};

const INDENT: usize = 4;

pub(super) fn document(node: &Node) -> String {
    let mut out = String::new();
    if is_empty_collection(node) {
        empty_collection(&mut out, node);
    } else {
        block(&mut out, node, 0, false);
    }
    out
}

/// A node at column `indent` (maps and lists non-empty); with `inline_first` its
/// first line continues the current one (after a list item's `- `).
fn block(out: &mut String, node: &Node, indent: usize, inline_first: bool) {
    let pad = |out: &mut String, first: bool| {
        if !(first && inline_first) {
            out.extend(std::iter::repeat_n(' ', indent));
        }
    };
    match node {
        Node::Map(_) => {
            for (i, (key, value)) in node.pairs().enumerate() {
                pad(out, i == 0);
                write_string(out, key, 0, false);
                out.push(':');
                match value {
                    Node::Scalar(scalar) => {
                        out.push(' ');
                        write_scalar(out, scalar, deeper(indent));
                    }
                    _ if is_empty_collection(value) => {
                        out.push(' ');
                        empty_collection(out, value);
                    }
                    _ => {
                        out.push('\n');
                        block(out, value, deeper(indent), false);
                    }
                }
            }
        }
        Node::List(items) => {
            for (i, item) in items.iter().enumerate() {
                pad(out, i == 0);
                out.push_str("- ");
                match item {
                    Node::Scalar(scalar) => write_scalar(out, scalar, indent + 2),
                    _ if is_empty_collection(item) => empty_collection(out, item),
                    _ => block(out, item, indent + 2, true),
                }
            }
        }
        Node::Scalar(scalar) => write_scalar(out, scalar, deeper(indent)),
    }
}

/// Like Go's YAML encoder, what a map holds goes to the next multiple of 4; what a
/// list item holds just clears its `- `.
fn deeper(indent: usize) -> usize {
    INDENT * (1 + indent / INDENT)
}

fn is_empty_collection(node: &Node) -> bool {
    match node {
        Node::Map(_) => node.pairs().next().is_none(),
        Node::List(items) => items.is_empty(),
        Node::Scalar(_) => false,
    }
}

fn empty_collection(out: &mut String, node: &Node) {
    out.push_str(if matches!(node, Node::List(_)) {
        "[]\n"
    } else {
        "{}\n"
    });
}

/// A scalar and its line end. `indent` is where a literal block's lines go.
fn write_scalar(out: &mut String, scalar: &Scalar, indent: usize) {
    match scalar {
        Scalar::Str(s) => write_string(out, s, indent, true),
        Scalar::Bytes(b) => write_string(out, &String::from_utf8_lossy(b), indent, true),
        // Timestamps are written plain, so that they stay timestamps.
        Scalar::Time(t) => out.push_str(t),
        Scalar::Null => out.push_str("null"),
        Scalar::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Scalar::Int(i) => out.push_str(&i.to_string()),
        Scalar::Float(f) => out.push_str(&go_float_yaml(*f)),
    }
    if !out.ends_with('\n') {
        out.push('\n');
    }
}

fn write_string(out: &mut String, s: &str, indent: usize, block_allowed: bool) {
    if can_be_plain(s) {
        out.push_str(s);
    } else if block_allowed && can_be_literal(s) {
        write_literal(out, s, indent);
    } else {
        write_double_quoted(out, s);
    }
}

/// Strings that read back as the same string, in YAML 1.1 and 1.2 alike.
fn can_be_plain(s: &str) -> bool {
    const RESERVED: [&str; 28] = [
        "~", "null", "Null", "NULL", "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO",
        "true", "True", "TRUE", "false", "False", "FALSE", "on", "On", "ON", "off", "Off", "OFF",
        "=", "<<",
    ];
    let Some(first) = s.chars().next() else {
        return false;
    };
    // Digits, signs and dots may start numbers, dates or `.inf`; the rest are
    // YAML indicators.
    let needs_quotes = first.is_ascii_digit()
        || "+-.?:,[]{}#&*!|>'\"%@` \t".contains(first)
        || s.ends_with([' ', '\t', ':'])
        || s.contains(": ")
        || s.contains(" #")
        || s.chars().any(is_special)
        || RESERVED.contains(&s);
    !needs_quotes
}

/// Multi-line strings whose lines survive a literal block unchanged.
fn can_be_literal(s: &str) -> bool {
    let body = s.trim_end_matches('\n');
    s.contains('\n')
        && !body.is_empty()
        && !body.starts_with([' ', '\t', '\n'])
        && !body
            .chars()
            .any(|c| c != '\n' && c != '\t' && is_special(c))
        && body.split('\n').all(|line| !line.ends_with([' ', '\t']))
}

fn write_literal(out: &mut String, s: &str, indent: usize) {
    let body = s.trim_end_matches('\n');
    // Chomping: `|-` strips the final line break, `|` keeps one, `|+` keeps all.
    out.push_str(match s.len() - body.len() {
        0 => "|-\n",
        1 => "|\n",
        _ => "|+\n",
    });
    for line in body.split('\n') {
        if !line.is_empty() {
            out.extend(std::iter::repeat_n(' ', indent));
            out.push_str(line);
        }
        out.push('\n');
    }
    for _ in 1..s.len() - body.len() {
        out.push('\n');
    }
}

fn write_double_quoted(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c > '\u{ffff}' => out.push_str(&format!("\\U{:08X}", c as u32)),
            c if is_special(c) => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Characters to escape: controls, the ones YAML treats as line breaks or
/// byte-order marks, and (as Go's encoder does) those outside the BMP.
fn is_special(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}') || c > '\u{ffff}'
}

#[cfg(test)]
mod tests {
    use super::super::tree::Entry;
    use super::*;

    fn string(s: &str) -> Node {
        Node::Scalar(Scalar::Str(s.to_owned()))
    }

    #[test]
    fn writes_the_sops_layout_and_quotes_ambiguous_strings() {
        let doc = Node::Map(vec![
            Entry::Pair("off".into(), Node::Scalar(Scalar::Bool(false))),
            Entry::Pair("plain".into(), string("https://example.com/a?b=c")),
            Entry::Pair(
                "quoted".into(),
                Node::List(
                    [
                        "0123",
                        "2024-01-01",
                        "yes",
                        "",
                        " lead",
                        "a: b",
                        "-x",
                        "tab\there",
                        "x\u{2028}🔐",
                    ]
                    .into_iter()
                    .map(string)
                    .collect(),
                ),
            ),
            Entry::Pair(
                "nested".into(),
                Node::List(vec![
                    Node::Map(vec![
                        Entry::Pair("x".into(), Node::Scalar(Scalar::Float(1e6))),
                        Entry::Pair("y".into(), Node::List(vec![Node::Scalar(Scalar::Null)])),
                    ]),
                    Node::List(vec![string("a"), string("b")]),
                    Node::Map(Vec::new()),
                ]),
            ),
            Entry::Pair("multi".into(), string("line 1\n  line 2\n")),
            Entry::Pair("strip".into(), string("a\nb")),
            Entry::Pair("keep".into(), string("a\n\n")),
            Entry::Pair("odd".into(), string(" starts with a space\n")),
        ]);
        let expected = r#""off": false
plain: https://example.com/a?b=c
quoted:
    - "0123"
    - "2024-01-01"
    - "yes"
    - ""
    - " lead"
    - "a: b"
    - "-x"
    - "tab\there"
    - "x\u2028\U0001F510"
nested:
    - x: 1e+06
      "y":
        - null
    - - a
      - b
    - {}
multi: |
    line 1
      line 2
strip: |-
    a
    b
keep: |+
    a

odd: " starts with a space\n"
"#;
        let written = document(&doc);
        assert_eq!(written, expected);
        let back: serde_yaml::Value = serde_yaml::from_str(&written).unwrap();
        assert_eq!(back["quoted"][4], " lead");
        assert_eq!(back["keep"], "a\n\n");
        assert_eq!(back["multi"], "line 1\n  line 2\n");
    }
}
