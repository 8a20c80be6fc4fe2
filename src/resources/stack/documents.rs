//! A component's text as YAML documents: split so that a syntax error in one document does
//! not hide the others, each read as YAML 1.2 and converted to JSON the way Kubernetes'
//! own reader does, and `List` documents replaced by their items.
//!
//! This module knows YAML and JSON, not what makes a Kubernetes object valid: that is
//! `manifests`, which checks each object found here.
//!
//! Documents can hold Secrets, so no message here ever quotes a value: field paths are
//! named, values are not.
//!
//! Positions: `document_index` counts the YAML documents of a component's text from 1, as
//! people count them, so messages can print it as is. Empty and `null` documents are
//! skipped but keep their number, so "document 3" is always the third document in the text.

/// One object of a component's text (a document, or an item of a `List` document), or
/// what is wrong with it.
#[derive(Debug)]
pub struct DocumentObject {
    /// Position of the YAML document in the text, counting from 1.
    pub document_index: usize,
    /// Position in `items` (from 0) when the document is a `List`; `None` otherwise.
    pub list_item: Option<usize>,
    /// The object as JSON, or why this document (or item) gives none.
    pub value: Result<serde_json::Value, String>,
}

/// Reads a component's multi-document YAML, in order.
///
/// Documents are separated by `---` lines; `...` ends a document; comments, empty documents
/// and `null` documents are skipped (their numbers are kept). A `List` (any kind ending in
/// `List` with an `items` field, as Kubernetes reads them) is replaced by its items.
/// YAML merge keys (`<<`) are applied.
///
/// YAML is read as YAML 1.2: unquoted `yes`, `no`, `on` and `off` are strings, where
/// kubectl's YAML 1.1 reader makes them booleans.
pub fn read_objects(yaml: &str) -> Vec<DocumentObject> {
    let mut objects = Vec::new();
    for (offset, document) in split_documents(yaml).into_iter().enumerate() {
        let document_index = offset + 1;
        let whole = |value| DocumentObject { document_index, list_item: None, value };
        let value = match parse_yaml_document(&document) {
            Ok(Some(value)) => value,
            Ok(None) => continue,
            Err(message) => {
                objects.push(whole(Err(message)));
                continue;
            }
        };
        match list_items(&value) {
            None => objects.push(whole(Ok(value))),
            Some(serde_json::Value::Array(items)) => {
                for (item_index, item) in items.iter().enumerate() {
                    let value = match list_items(item) {
                        Some(_) => Err("a List inside a List is not supported".to_string()),
                        None => Ok(item.clone()),
                    };
                    objects.push(DocumentObject { document_index, list_item: Some(item_index), value });
                }
            }
            Some(serde_json::Value::Null) => {}
            Some(other) => objects.push(whole(Err(format!("items must be a list, found {}", json_type(other))))),
        }
    }
    objects
}

/// One document's text, exactly as written, and the (0-based) line it starts on.
#[derive(Debug)]
struct Document<'a> {
    first_line: usize,
    text: &'a str,
}

/// Splits a YAML stream into its documents so that a syntax error in one document does not
/// hide the problems of the others (a YAML parser stops at the first error of a stream).
/// `---` and `...` at the start of a line always end a document in YAML, even inside block
/// scalars, so a line-based split agrees with the parser.
///
/// Text before the first `---` (or after a `...`) is a document only if it has content:
/// comments and directives there belong to the next document.
fn split_documents(yaml: &str) -> Vec<Document<'_>> {
    let yaml = yaml.strip_prefix('\u{feff}').unwrap_or(yaml);
    let mut documents = Vec::new();
    // The document being read: its first byte and line, and whether `---` opened it (then
    // it counts even if empty).
    let (mut start, mut first_line, mut explicit) = (0, 0, false);
    let mut offset = 0;
    for (number, line) in yaml.split_inclusive('\n').enumerate() {
        let line_end = offset + line.len();
        let pending = &yaml[start..offset];
        if is_marker(line, "---") {
            if explicit || has_content(pending) {
                documents.push(Document { first_line, text: pending });
                (start, first_line) = (offset, number);
            } else if pending.is_empty() {
                first_line = number;
            }
            explicit = true;
        } else if is_marker(line, "...") {
            if explicit || has_content(pending) {
                documents.push(Document { first_line, text: &yaml[start..line_end] });
            }
            (start, first_line, explicit) = (line_end, number + 1, false);
        }
        offset = line_end;
    }
    let rest = &yaml[start..];
    if explicit || has_content(rest) {
        documents.push(Document { first_line, text: rest });
    }
    documents
}

fn is_marker(line: &str, marker: &str) -> bool {
    line.strip_prefix(marker).is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t', '\r', '\n']))
}

/// Whether text holds more than blank lines, comments and directives (`%YAML`, `%TAG`).
fn has_content(text: &str) -> bool {
    text.lines().any(|line| {
        let trimmed = line.trim();
        !(trimmed.is_empty() || trimmed.starts_with('#') || line.starts_with('%'))
    })
}

/// One document as JSON; `None` for an empty or `null` document.
fn parse_yaml_document(document: &Document) -> Result<Option<serde_json::Value>, String> {
    let text = document.text;
    let mut value: serde_yaml::Value = match serde_yaml::from_str(text) {
        Ok(value) => value,
        Err(_) => {
            // Parse again with the document at its place in the text, so that the line
            // numbers in the message are those the user sees in the whole component.
            let padded = "\n".repeat(document.first_line) + text;
            let error = serde_yaml::from_str::<serde_yaml::Value>(&padded).err();
            return Err(match error {
                Some(error) => format!("invalid YAML: {error}"),
                None => "invalid YAML".into(),
            });
        }
    };
    if value.is_null() {
        return Ok(None);
    }
    value.apply_merge().map_err(|error| format!("invalid YAML merge (<<): {error}"))?;
    yaml_to_json(value).map(Some)
}

/// Converts parsed YAML to JSON the way Kubernetes' own YAML reader does: number and boolean
/// mapping keys become strings. Tags, non-scalar keys and non-finite numbers have no JSON
/// form and are refused, naming the field (never its value).
pub(super) fn yaml_to_json(value: serde_yaml::Value) -> Result<serde_json::Value, String> {
    convert(value, &mut String::new())
}

fn convert(value: serde_yaml::Value, path: &mut String) -> Result<serde_json::Value, String> {
    use serde_yaml::Value as Yaml;
    let at = |path: &str| if path.is_empty() { "at the top level".to_string() } else { format!("at {path}") };
    Ok(match value {
        Yaml::Null => serde_json::Value::Null,
        Yaml::Bool(b) => serde_json::Value::Bool(b),
        Yaml::String(s) => serde_json::Value::String(s),
        Yaml::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.into()
            } else if let Some(u) = n.as_u64() {
                u.into()
            } else {
                let float = n.as_f64().and_then(serde_json::Number::from_f64);
                match float {
                    Some(number) => serde_json::Value::Number(number),
                    None => return Err(format!("a number {} is not finite (JSON has no NaN or infinity)", at(path))),
                }
            }
        }
        Yaml::Sequence(items) => {
            let mut array = Vec::with_capacity(items.len());
            for (index, item) in items.into_iter().enumerate() {
                let length = path.len();
                path.push_str(&format!("[{index}]"));
                array.push(convert(item, path)?);
                path.truncate(length);
            }
            serde_json::Value::Array(array)
        }
        Yaml::Mapping(mapping) => {
            let mut object = serde_json::Map::new();
            for (key, item) in mapping {
                let key = match key {
                    Yaml::String(s) => s,
                    Yaml::Number(n) => n.to_string(),
                    Yaml::Bool(b) => b.to_string(),
                    _ => return Err(format!("a mapping key {} is not a string, number or boolean", at(path))),
                };
                let length = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(&key);
                if object.contains_key(&key) {
                    return Err(format!("key {key:?} appears twice {}", at(&path[..length])));
                }
                let converted = convert(item, path)?;
                path.truncate(length);
                object.insert(key, converted);
            }
            serde_json::Value::Object(object)
        }
        Yaml::Tagged(tagged) => {
            return Err(format!("YAML tag {} {} is not supported", tagged.tag, at(path)));
        }
    })
}

/// The `items` of a list document: a kind ending in `List` with an `items` field, the
/// test Kubernetes' own decoder uses (a custom kind like `AllowList` has no `items`).
fn list_items(value: &serde_json::Value) -> Option<&serde_json::Value> {
    let kind = value.get("kind").and_then(serde_json::Value::as_str)?;
    if kind.ends_with("List") {
        value.get("items")
    } else {
        None
    }
}

/// What a JSON value is, for messages that must not quote it.
pub(super) fn json_type(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "a list",
        serde_json::Value::Object(_) => "a mapping",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// (document, list item, object) for every object; a problem fails the test.
    fn read_ok(yaml: &str) -> Vec<(usize, Option<usize>, serde_json::Value)> {
        read_objects(yaml)
            .into_iter()
            .map(|o| match o.value {
                Ok(value) => (o.document_index, o.list_item, value),
                Err(problem) => panic!("document {}: unexpected problem: {problem}", o.document_index),
            })
            .collect()
    }

    /// The one object of `yaml`.
    fn read_one(yaml: &str) -> serde_json::Value {
        let mut objects = read_ok(yaml);
        assert_eq!(objects.len(), 1, "{objects:?}");
        objects.remove(0).2
    }

    /// (metadata.name, document) for every object.
    fn names(yaml: &str) -> Vec<(String, usize)> {
        read_ok(yaml).into_iter().map(|(document, _, object)| (object["metadata"]["name"].as_str().unwrap().to_string(), document)).collect()
    }

    /// "document N: problem" for every problem, in order; objects are left out.
    fn problems(yaml: &str) -> Vec<String> {
        read_objects(yaml)
            .into_iter()
            .filter_map(|o| o.value.err().map(|problem| format!("document {}: {problem}", o.document_index)))
            .collect()
    }

    fn named(pairs: &[(&str, usize)]) -> Vec<(String, usize)> {
        pairs.iter().map(|(name, document)| (name.to_string(), *document)).collect()
    }

    #[test]
    fn documents_are_numbered_from_one_and_empty_ones_keep_their_number() {
        let yaml = "\
# leading comment, not a document
---
apiVersion: v1
kind: ConfigMap
metadata: {name: a}
---
# only a comment
---
null
---
~
---
apiVersion: v1
kind: ConfigMap
metadata: {name: b}
---
";
        assert_eq!(names(yaml), named(&[("a", 1), ("b", 5)]));
    }

    #[test]
    fn text_before_the_first_separator_is_a_document_when_it_has_content() {
        let yaml = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\n";
        assert_eq!(names(yaml), named(&[("a", 1), ("b", 2)]));
    }

    #[test]
    fn empty_input_has_no_objects() {
        assert!(read_objects("").is_empty());
        assert!(read_objects("\n# nothing\n").is_empty());
        assert!(read_objects("---\n---\n").is_empty());
    }

    #[test]
    fn separator_lines_may_carry_comments_content_and_windows_line_ends() {
        let yaml = "--- # first\r\napiVersion: v1\r\nkind: ConfigMap\r\nmetadata: {name: a}\r\n--- {apiVersion: v1, kind: ConfigMap, metadata: {name: b}}\r\n";
        assert_eq!(names(yaml), named(&[("a", 1), ("b", 2)]));
    }

    #[test]
    fn a_byte_order_mark_and_directives_are_accepted() {
        let yaml = "\u{feff}%YAML 1.2\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n";
        assert_eq!(names(yaml), named(&[("a", 1)]));
    }

    #[test]
    fn document_end_markers_end_documents() {
        let yaml = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n...\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\n...\n# trailing\n";
        assert_eq!(names(yaml), named(&[("a", 1), ("b", 2)]));
    }

    #[test]
    fn dashes_inside_block_scalars_that_are_indented_are_content() {
        let yaml = "\
apiVersion: v1
kind: ConfigMap
metadata: {name: nested}
data:
  manifests.yaml: |
    a: 1
    ---
    b: 2
";
        assert_eq!(read_one(yaml)["data"]["manifests.yaml"], json!("a: 1\n---\nb: 2\n"));
    }

    #[test]
    fn separators_need_to_stand_alone() {
        // "----" and "---x" are not separators (they are plain content here, in a scalar).
        let yaml = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata:\n  x: |\n    ----\n";
        assert_eq!(read_ok(yaml).len(), 1);
    }

    #[test]
    fn lists_are_flattened_and_items_located() {
        let yaml = "\
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: ServiceAccount
  metadata: {name: a, namespace: x}
- apiVersion: rbac.authorization.k8s.io/v1
  kind: ClusterRole
  metadata: {name: b}
---
apiVersion: v1
kind: ConfigMapList
items: []
";
        let found: Vec<_> =
            read_ok(yaml).into_iter().map(|(document, item, object)| (object["kind"].clone(), document, item)).collect();
        assert_eq!(found, [(json!("ServiceAccount"), 1, Some(0)), (json!("ClusterRole"), 1, Some(1))]);
    }

    #[test]
    fn list_problems_name_the_item() {
        let yaml = "apiVersion: v1\nkind: List\nitems:\n- {kind: ConfigMap}\n- apiVersion: v1\n  kind: List\n  items: []\n";
        let found: Vec<_> = read_objects(yaml).into_iter().map(|o| (o.document_index, o.list_item, o.value)).collect();
        assert_eq!(
            found,
            [(1, Some(0), Ok(json!({"kind": "ConfigMap"}))), (1, Some(1), Err("a List inside a List is not supported".to_string()))]
        );
        assert_eq!(problems("apiVersion: v1\nkind: List\nitems: {}\n"), ["document 1: items must be a list, found a mapping"]);
    }

    #[test]
    fn a_kind_ending_in_list_without_items_is_an_ordinary_object() {
        let object = read_one("apiVersion: example.com/v1\nkind: AllowList\nmetadata: {name: a}\nspec: {}\n");
        assert_eq!(object["kind"], json!("AllowList"));
    }

    #[test]
    fn a_syntax_error_does_not_hide_other_documents_and_gives_the_real_line() {
        let yaml = "\
apiVersion: v1
kind: ConfigMap
metadata: {name: a}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: b
 broken: here
---
apiVersion: v1
metadata: {name: c}
";
        let objects = read_objects(yaml);
        let read: Vec<_> = objects.iter().map(|o| (o.document_index, o.value.is_ok())).collect();
        assert_eq!(read, [(1, true), (2, false), (3, true)]);
        let problems = problems(yaml);
        assert!(problems[0].starts_with("document 2: invalid YAML: "), "{}", problems[0]);
        assert!(problems[0].contains("line 9"), "{}", problems[0]);
    }

    #[test]
    fn line_numbers_count_comments_and_directives_before_the_document() {
        let yaml = "# header\n# more\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a\n";
        let problems = problems(yaml);
        assert_eq!(problems.len(), 1);
        assert!(problems[0].starts_with("document 1: invalid YAML: "), "{}", problems[0]);
        assert!(problems[0].contains("line 7"), "{}", problems[0]);
    }

    #[test]
    fn yaml_1_2_booleans() {
        let object = read_one("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {a: yes, b: off, c: true}\n");
        assert_eq!(object["data"], json!({"a": "yes", "b": "off", "c": true}));
    }

    #[test]
    fn secret_values_never_appear_in_problems() {
        let yaml = "\
apiVersion: v1
kind: Secret
metadata: {namespace: hunter2-ns}
stringData:
  password: hunter2
  token: !vault hunter2
---
apiVersion: v1
kind: Secret
metadata: {name: s}
data:
  key: hunter2
  key: hunter2
---
apiVersion: v1
kind: Secret
metadata: {name: s}
data:
  key: [hunter2
";
        let problems = problems(yaml);
        assert_eq!(problems.len(), 3, "{problems:?}");
        for problem in &problems {
            assert!(!problem.contains("hunter2"), "{problem}");
        }
        assert_eq!(problems[0], "document 1: YAML tag !vault at stringData.token is not supported");
        assert!(problems[1].contains("duplicate entry with key \"key\""), "{}", problems[1]);
    }

    #[test]
    fn yaml_without_a_json_form_is_refused_with_its_path() {
        let found = problems("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata:\n  ratio: .nan\n");
        assert_eq!(found, ["document 1: a number at data.ratio is not finite (JSON has no NaN or infinity)"]);
        let found = problems("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata:\n  ? [a, b]\n  : c\n");
        assert_eq!(found, ["document 1: a mapping key at data is not a string, number or boolean"]);
        let found = problems("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata:\n  1: a\n  '1': b\n");
        assert_eq!(found, ["document 1: key \"1\" appears twice at data"]);
    }

    #[test]
    fn number_and_boolean_keys_become_strings_and_merge_keys_apply() {
        let yaml = "\
apiVersion: v1
kind: ConfigMap
metadata: {name: a}
x-defaults: &defaults {tier: web, port: 80}
data:
  <<: *defaults
  port: 8080
  80: http
  true: yes
  big: 18446744073709551615
  ratio: 0.5
";
        assert_eq!(
            read_one(yaml)["data"],
            json!({"tier": "web", "port": 8080, "80": "http", "true": "yes", "big": 18446744073709551615u64, "ratio": 0.5})
        );
    }
}
