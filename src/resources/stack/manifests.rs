//! Kubernetes manifests as a stack component carries them: the objects [`read_objects`]
//! finds in its YAML, with their identity (apiVersion, kind, namespace, name) checked up
//! front, so that a plan fails on a bad document instead of an apply half-way through a
//! stack; and the labels and default namespace a stack gives them.
//!
//! This module only reads and rewrites objects. It knows nothing of Terraform, of HTTP
//! clients or of what the cluster serves: whether a kind is namespaced is the caller's
//! knowledge, which is why [`default_namespace`] is a separate step the caller takes.
//!
//! Documents can hold Secrets, so no message here ever quotes a value from a document
//! except its apiVersion, kind and metadata.name (field paths are named, values are not).
//!
//! Positions: `document_index` counts the YAML documents of a component's text from 1, as
//! `documents` does.

use std::collections::HashMap;

use thiserror::Error;

use super::documents::{json_type, read_objects, DocumentObject};
use crate::resources::metadata::dns1123_label_problem;

/// Label naming the tool that manages an object (the well-known Kubernetes label).
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// Value of [`MANAGED_BY_LABEL`] on every object a stack applies.
pub const MANAGED_BY_VALUE: &str = "terraform-provider-platform";
/// Label naming the stack an object belongs to.
pub const STACK_LABEL: &str = "platform.terraform.io/stack";
/// Label naming the component (inside its stack) an object belongs to.
pub const COMPONENT_LABEL: &str = "platform.terraform.io/component";

const CRD_GROUP: &str = "apiextensions.k8s.io";
const CRD_KIND: &str = "CustomResourceDefinition";
const NAMESPACE_KIND: &str = "Namespace";

/// One Kubernetes object from a component's YAML.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    /// As written (or as set by [`default_namespace`]); `None` when absent, `null` or empty.
    pub namespace: Option<String>,
    /// The whole object as JSON, ready to be applied.
    pub object: serde_json::Value,
    /// Position of the YAML document in the component's text, counting from 1.
    pub document_index: usize,
    /// Position in `items` (from 0) when the document is a `List`; `None` otherwise.
    pub list_item: Option<usize>,
}

impl Manifest {
    /// The API group: `""` for the core group (`apiVersion: v1`).
    pub fn group(&self) -> &str {
        split_api_version(&self.api_version).0
    }

    #[cfg(test)]
    pub fn version(&self) -> &str {
        split_api_version(&self.api_version).1
    }

    pub fn is_crd(&self) -> bool {
        is_crd(&self.api_version, &self.kind)
    }

    #[cfg(test)]
    pub fn is_namespace(&self) -> bool {
        is_namespace(&self.api_version, &self.kind)
    }

    /// For a CRD, the `(group, kind)` of the custom resources it defines. The CRD's own
    /// name (`self.name`) is then the "plural.group" name: [`parse_documents`] has checked
    /// that it equals `spec.names.plural + "." + spec.group`, as the API server requires.
    pub fn crd_defines(&self) -> Option<(String, String)> {
        if !self.is_crd() {
            return None;
        }
        let spec = self.object.get("spec")?;
        let group = spec.get("group")?.as_str()?;
        let kind = spec.get("names")?.get("kind")?.as_str()?;
        Some((group.to_string(), kind.to_string()))
    }

    /// For a CRD: whether the kind it defines is namespaced (`spec.scope`).
    pub fn crd_namespaced(&self) -> bool {
        self.object["spec"]["scope"] == "Namespaced"
    }

    pub fn identity(&self) -> ObjectIdentity<'_> {
        (self.group(), &self.kind, self.namespace.as_deref(), &self.name)
    }

    /// Where the manifest came from, for messages: "document 3" or "document 3, items[0]".
    pub fn location(&self) -> String {
        match self.list_item {
            Some(item) => format!("document {}, items[{item}]", self.document_index),
            None => format!("document {}", self.document_index),
        }
    }

    /// "apps/v1 Deployment web/frontend" (namespaced) or "v1 Namespace web" (cluster-scoped).
    pub fn describe(&self) -> String {
        match &self.namespace {
            Some(namespace) => format!("{} {} {namespace}/{}", self.api_version, self.kind, self.name),
            None => format!("{} {} {}", self.api_version, self.kind, self.name),
        }
    }
}

/// What makes a cluster object: (group, kind, namespace, name). Not the version: one object
/// is served under every version of its kind.
pub type ObjectIdentity<'a> = (&'a str, &'a str, Option<&'a str>, &'a str);

/// Something wrong with one document of a component's YAML.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("document {document_index}: {message}")]
pub struct ManifestProblem {
    /// Counted from 1, like [`Manifest::document_index`].
    pub document_index: usize,
    pub message: String,
}

/// `("apps", "v1")` for `"apps/v1"`, `("", "v1")` for the core group's `"v1"`.
pub fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        Some((group, version)) => (group, version),
        None => ("", api_version),
    }
}

pub fn is_crd(api_version: &str, kind: &str) -> bool {
    split_api_version(api_version).0 == CRD_GROUP && kind == CRD_KIND
}

pub fn is_namespace(api_version: &str, kind: &str) -> bool {
    split_api_version(api_version).0.is_empty() && kind == NAMESPACE_KIND
}

/// Parses a component's multi-document YAML into manifests.
///
/// The text is read by [`read_objects`] (documents, `List` items, YAML 1.2, merge keys);
/// each object's identity is then checked. Every problem in every document is reported;
/// those of a List's items start with `items[i]: `.
pub fn parse_documents(yaml: &str) -> Result<Vec<Manifest>, Vec<ManifestProblem>> {
    let mut manifests = Vec::new();
    let mut problems = Vec::new();
    for DocumentObject { document_index, list_item, value } in read_objects(yaml) {
        let checked = value.map_err(|message| vec![message]).and_then(|object| read_object(object, document_index, list_item));
        match checked {
            Ok(manifest) => manifests.push(manifest),
            Err(messages) => problems.extend(messages.into_iter().map(|message| ManifestProblem {
                document_index,
                message: match list_item {
                    Some(item) => format!("items[{item}]: {message}"),
                    None => message,
                },
            })),
        }
    }
    if problems.is_empty() {
        Ok(manifests)
    } else {
        Err(problems)
    }
}

/// Objects defined more than once (same group, kind, namespace and name) among `manifests`,
/// each given with the name of its component. One message per extra definition, naming it
/// and the first one. A version change does not make another object (`apps/v1` and
/// `apps/v1beta2` Deployments of one name are the same object), hence the group.
///
/// Call it after [`default_namespace`], so that an object written without a namespace and
/// the same object written with the default one are seen as one.
pub fn duplicates(manifests: &[(&str, &Manifest)]) -> Vec<String> {
    let mut first_seen: HashMap<ObjectIdentity, (&str, &Manifest)> = HashMap::new();
    let mut messages = Vec::new();
    for &(component, manifest) in manifests {
        let identity = manifest.identity();
        match first_seen.get(&identity) {
            Some(&(first_component, first)) => messages.push(format!(
                "{} is defined twice: in component {first_component:?} ({}) and in component {component:?} ({})",
                manifest.describe(),
                first.location(),
                manifest.location()
            )),
            None => {
                first_seen.insert(identity, (component, manifest));
            }
        }
    }
    messages
}

/// Adds the labels that mark an object as this stack's and this component's.
///
/// `stack` and `component` must be valid label values (at most 63 letters, digits, '-', '_'
/// or '.'); the caller validates them where the user wrote them. Not an object: left as is
/// (the API server will say what is wrong with it).
pub fn label(object: &mut serde_json::Value, stack: &str, component: &str) {
    let labels =
        object.as_object_mut().and_then(|o| member_object(o, "metadata")).and_then(|m| member_object(m, "labels"));
    let Some(labels) = labels else { return };
    labels.insert(MANAGED_BY_LABEL.into(), MANAGED_BY_VALUE.into());
    labels.insert(STACK_LABEL.into(), stack.into());
    labels.insert(COMPONENT_LABEL.into(), component.into());
}

/// The mapping under `key`, created (or put in place of a value that is not one) if needed.
fn member_object<'a>(
    object: &'a mut serde_json::Map<String, serde_json::Value>,
    key: &str,
) -> Option<&'a mut serde_json::Map<String, serde_json::Value>> {
    let member = object.entry(key).or_insert(serde_json::Value::Null);
    if !member.is_object() {
        *member = serde_json::Value::Object(serde_json::Map::new());
    }
    member.as_object_mut()
}

/// Puts `manifest` in namespace `namespace` unless it names one. Only for namespaced kinds:
/// the caller knows which kinds are (from discovery), this module does not.
pub fn default_namespace(manifest: &mut Manifest, namespace: &str) {
    if manifest.namespace.is_some() {
        return;
    }
    manifest.namespace = Some(namespace.to_string());
    if let Some(metadata) = manifest.object.get_mut("metadata").and_then(serde_json::Value::as_object_mut) {
        metadata.insert("namespace".into(), namespace.into());
    }
}

/// Checks one object and reads its identity; all its problems at once.
fn read_object(
    mut object: serde_json::Value,
    document_index: usize,
    list_item: Option<usize>,
) -> Result<Manifest, Vec<String>> {
    let mut problems = Vec::new();
    if !object.is_object() {
        return Err(vec![format!("expected a mapping (a Kubernetes object), found {}", json_type(&object))]);
    }
    let api_version = required_string(&object, "apiVersion", &mut problems);
    if let Some(api_version) = &api_version {
        if let Some(problem) = api_version_problem(api_version) {
            problems.push(format!("apiVersion {api_version:?} {problem}"));
        }
    }
    let kind = required_string(&object, "kind", &mut problems);
    if let Some(kind) = &kind {
        if !is_valid_kind(kind) {
            problems.push(format!("kind {kind:?} must be a letter followed by letters, digits or '-'"));
        }
    }
    let (name, namespace) = match object.get_mut("metadata") {
        None | Some(serde_json::Value::Null) => {
            problems.push("metadata.name is missing".into());
            (None, None)
        }
        Some(serde_json::Value::Object(metadata)) => {
            (read_name(metadata, &mut problems), read_namespace(metadata, &mut problems))
        }
        Some(other) => {
            problems.push(format!("metadata must be a mapping, found {}", json_type(other)));
            (None, None)
        }
    };
    if let (Some(api_version), Some(kind), Some(name)) = (&api_version, &kind, &name) {
        if is_crd(api_version, kind) {
            problems.extend(crd_problems(&object, name));
        }
    }
    match (api_version, kind, name) {
        (Some(api_version), Some(kind), Some(name)) if problems.is_empty() => {
            Ok(Manifest { api_version, kind, name, namespace, object, document_index, list_item })
        }
        _ => Err(problems),
    }
}

fn required_string(object: &serde_json::Value, field: &str, problems: &mut Vec<String>) -> Option<String> {
    match object.get(field) {
        Some(serde_json::Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(serde_json::Value::String(_)) => {
            problems.push(format!("{field} must not be empty"));
            None
        }
        None | Some(serde_json::Value::Null) => {
            problems.push(format!("{field} is missing"));
            None
        }
        Some(other) => {
            problems.push(format!("{field} must be a string, found {}", json_type(other)));
            None
        }
    }
}

fn api_version_problem(api_version: &str) -> Option<&'static str> {
    let (group, version) = split_api_version(api_version);
    let group_ok = group.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
    let version_ok =
        !version.is_empty() && version.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    let has_group_separator = api_version.contains('/');
    if !group_ok || !version_ok || (has_group_separator && group.is_empty()) {
        Some("is not of the form [group/]version (such as v1 or apps/v1)")
    } else {
        None
    }
}

/// Kinds are CamelCase identifiers; the API server wants them to be a DNS-1035 label once
/// lower-cased. Checked here because a kind is part of an inventory entry's text form.
fn is_valid_kind(kind: &str) -> bool {
    kind.len() <= 63
        && kind.starts_with(|c: char| c.is_ascii_alphabetic())
        && kind.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

fn read_name(metadata: &serde_json::Map<String, serde_json::Value>, problems: &mut Vec<String>) -> Option<String> {
    match metadata.get("name") {
        Some(serde_json::Value::String(name)) => match name_problem(name) {
            Some(problem) => {
                problems.push(format!("metadata.name {name:?} {problem}"));
                None
            }
            None => Some(name.clone()),
        },
        None | Some(serde_json::Value::Null) => {
            if metadata.get("generateName").is_some_and(|g| !g.is_null()) {
                problems.push(
                    "metadata.generateName is not supported: every object needs a fixed metadata.name \
                     so that it can be found again, checked for drift and deleted"
                        .into(),
                );
            } else {
                problems.push("metadata.name is missing".into());
            }
            None
        }
        Some(other) => {
            problems.push(format!("metadata.name must be a string, found {}", json_type(other)));
            None
        }
    }
}

/// The checks every kind's names share (a path segment without whitespace); the API server
/// checks the rest per kind. Whitespace and '/' would also break an inventory entry's text.
fn name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("must not be empty")
    } else if name == "." || name == ".." {
        Some("cannot be '.' or '..'")
    } else if name.contains(['/', '%']) {
        Some("must not contain '/' or '%'")
    } else if name.chars().any(char::is_whitespace) {
        Some("must not contain whitespace")
    } else if name.len() > 253 {
        Some("must be at most 253 characters")
    } else {
        None
    }
}

/// The namespace if one is set. `null` and `""` mean none (as for kubectl) and are removed,
/// so that [`default_namespace`] can fill them in.
fn read_namespace(
    metadata: &mut serde_json::Map<String, serde_json::Value>,
    problems: &mut Vec<String>,
) -> Option<String> {
    match metadata.get("namespace") {
        None => None,
        Some(serde_json::Value::Null) => {
            metadata.remove("namespace");
            None
        }
        Some(serde_json::Value::String(namespace)) if namespace.is_empty() => {
            metadata.remove("namespace");
            None
        }
        Some(serde_json::Value::String(namespace)) => match dns1123_label_problem(namespace) {
            // The namespace is not quoted: only apiVersion, kind and name ever are.
            Some(problem) => {
                problems.push(format!("metadata.namespace is not a valid namespace name: it {problem}"));
                None
            }
            None => Some(namespace.clone()),
        },
        Some(other) => {
            problems.push(format!("metadata.namespace must be a string, found {}", json_type(other)));
            None
        }
    }
}

/// A CRD must say what it defines, under the name the API server insists on; checking it
/// here lets [`Manifest::crd_defines`] be relied on for every parsed CRD.
fn crd_problems(object: &serde_json::Value, name: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let field =
        |path: &[&str]| path.iter().try_fold(object, |value, key| value.get(key)).and_then(serde_json::Value::as_str);
    let group = field(&["spec", "group"]);
    let plural = field(&["spec", "names", "plural"]);
    for (value, path) in
        [(group, "spec.group"), (plural, "spec.names.plural"), (field(&["spec", "names", "kind"]), "spec.names.kind")]
    {
        if value.is_none_or(str::is_empty) {
            problems.push(format!("a CustomResourceDefinition needs {path} (a string)"));
        }
    }
    if let (Some(group), Some(plural)) = (group, plural) {
        if !group.is_empty() && !plural.is_empty() && name != format!("{plural}.{group}") {
            problems.push(format!(
                "metadata.name {name:?} of a CustomResourceDefinition must be spec.names.plural + \".\" + spec.group"
            ));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse_ok(yaml: &str) -> Vec<Manifest> {
        match parse_documents(yaml) {
            Ok(manifests) => manifests,
            Err(problems) => panic!("unexpected problems: {problems:?}"),
        }
    }

    fn parse_err(yaml: &str) -> Vec<String> {
        match parse_documents(yaml) {
            Ok(manifests) => panic!("expected problems, got {manifests:?}"),
            Err(problems) => problems.iter().map(ToString::to_string).collect(),
        }
    }

    const DEPLOYMENT: &str = "\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
spec:
  replicas: 2
";

    #[test]
    fn reads_identity_and_object() {
        let manifests = parse_ok(DEPLOYMENT);
        assert_eq!(manifests.len(), 1);
        let m = &manifests[0];
        assert_eq!((m.api_version.as_str(), m.kind.as_str(), m.name.as_str()), ("apps/v1", "Deployment", "web"));
        assert_eq!(m.namespace.as_deref(), Some("shop"));
        assert_eq!((m.group(), m.version()), ("apps", "v1"));
        assert_eq!(m.document_index, 1);
        assert_eq!(m.list_item, None);
        assert_eq!(m.object["spec"]["replicas"], json!(2));
        assert_eq!(m.describe(), "apps/v1 Deployment shop/web");
        assert_eq!(m.location(), "document 1");
    }

    #[test]
    fn list_items_keep_their_place() {
        let yaml = "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: ServiceAccount, metadata: {name: a}}\n- {apiVersion: v1, kind: ServiceAccount, metadata: {name: b}}\n";
        let manifests = parse_ok(yaml);
        let found: Vec<_> = manifests.iter().map(|m| (m.name.as_str(), m.document_index, m.list_item)).collect();
        assert_eq!(found, [("a", 1, Some(0)), ("b", 1, Some(1))]);
        assert_eq!(manifests[1].location(), "document 1, items[1]");
    }

    #[test]
    fn core_group_is_empty() {
        let m = &parse_ok("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\n")[0];
        assert_eq!((m.group(), m.version()), ("", "v1"));
        assert_eq!(m.namespace, None);
        assert_eq!(m.describe(), "v1 ConfigMap settings");
    }

    #[test]
    fn list_problems_name_the_item() {
        let yaml = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: ok}\n- kind: ConfigMap\n  metadata: {name: nope}\n- apiVersion: v1\n  kind: List\n  items: []\n";
        assert_eq!(
            parse_err(yaml),
            [
                "document 1: items[1]: apiVersion is missing",
                "document 1: items[2]: a List inside a List is not supported"
            ]
        );
        assert_eq!(
            parse_err("apiVersion: v1\nkind: List\nitems: {}\n"),
            ["document 1: items must be a list, found a mapping"]
        );
    }

    #[test]
    fn every_problem_in_every_document_is_reported() {
        let yaml = "\
apiVersion: v1
metadata: {}
---
- just
- a list
---
kind: Secret
apiVersion: 7
metadata: {name: 3}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: good}
---
apiVersion: v1
kind: ConfigMap
metadata: {generateName: gen-}
";
        assert_eq!(
            parse_err(yaml),
            [
                "document 1: kind is missing",
                "document 1: metadata.name is missing",
                "document 2: expected a mapping (a Kubernetes object), found a list",
                "document 3: apiVersion must be a string, found a number",
                "document 3: metadata.name must be a string, found a number",
                "document 5: metadata.generateName is not supported: every object needs a fixed metadata.name \
                 so that it can be found again, checked for drift and deleted",
            ]
        );
    }

    #[test]
    fn odd_input_gives_problems_not_panics() {
        let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
        let deep_map = "a:\n".to_string() + &(1..300).map(|i| format!("{}b:\n", "  ".repeat(i))).collect::<String>();
        for yaml in [
            "{",
            "]",
            "- - -",
            "\t",
            "key: *undefined",
            "a: &x [*x]",
            "...",
            "--- ...",
            "---\n...\n...\n---",
            "apiVersion: v1\nkind: List\nitems: [1, null, {}]\n",
            "? a\n",
            "!!binary aGVsbG8=",
            "\u{0}",
            deep.as_str(),
            deep_map.as_str(),
        ] {
            let _ = parse_documents(yaml);
        }
        let problems = parse_err(&deep);
        assert!(problems[0].starts_with("document 1: invalid YAML: "), "{}", problems[0]);
    }

    #[test]
    fn scalar_documents_are_refused() {
        assert_eq!(parse_err("hello\n"), ["document 1: expected a mapping (a Kubernetes object), found a string"]);
    }

    #[test]
    fn identity_fields_are_checked() {
        let problems = parse_err(
            "apiVersion: Apps/v1\nkind: Deploy ment\nmetadata: {name: 'a b'}\n---\napiVersion: /v1\nkind: X\nmetadata: {name: ''}\n---\napiVersion: v1\nkind: ''\nmetadata: {name: a/b}\n",
        );
        assert_eq!(
            problems,
            [
                "document 1: apiVersion \"Apps/v1\" is not of the form [group/]version (such as v1 or apps/v1)",
                "document 1: kind \"Deploy ment\" must be a letter followed by letters, digits or '-'",
                "document 1: metadata.name \"a b\" must not contain whitespace",
                "document 2: apiVersion \"/v1\" is not of the form [group/]version (such as v1 or apps/v1)",
                "document 2: metadata.name \"\" must not be empty",
                "document 3: kind must not be empty",
                "document 3: metadata.name \"a/b\" must not contain '/' or '%'",
            ]
        );
    }

    #[test]
    fn metadata_must_be_a_mapping() {
        assert_eq!(
            parse_err("apiVersion: v1\nkind: ConfigMap\nmetadata: [a]\n"),
            ["document 1: metadata must be a mapping, found a list"]
        );
    }

    #[test]
    fn namespaces_are_checked_without_quoting_them() {
        let problems = parse_err("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: Top_Secret}\n");
        assert_eq!(
            problems,
            ["document 1: metadata.namespace is not a valid namespace name: it must consist of lower case letters, digits and '-', and start and end with a letter or digit"]
        );
        assert!(!problems[0].contains("Top_Secret"));
        let problems = parse_err("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: 5}\n");
        assert_eq!(problems, ["document 1: metadata.namespace must be a string, found a number"]);
    }

    #[test]
    fn empty_and_null_namespaces_mean_none_and_are_removed() {
        for yaml in [
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: ''}\n",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: null}\n",
        ] {
            let m = &parse_ok(yaml)[0];
            assert_eq!(m.namespace, None);
            assert_eq!(m.object["metadata"], json!({"name": "a"}));
        }
    }

    #[test]
    fn crds_define_group_and_kind() {
        let yaml = "\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  names: {kind: Widget, plural: widgets}
  scope: Namespaced
";
        let m = &parse_ok(yaml)[0];
        assert!(m.is_crd());
        assert!(!m.is_namespace());
        assert_eq!(m.crd_defines(), Some(("example.com".to_string(), "Widget".to_string())));
    }

    #[test]
    fn crds_are_checked() {
        let problems = parse_err(
            "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: gadgets.example.com}\nspec:\n  group: example.com\n  names: {kind: Widget, plural: widgets}\n---\napiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: x}\nspec: {names: {plural: x}}\n",
        );
        assert_eq!(
            problems,
            [
                "document 1: metadata.name \"gadgets.example.com\" of a CustomResourceDefinition must be spec.names.plural + \".\" + spec.group",
                "document 2: a CustomResourceDefinition needs spec.group (a string)",
                "document 2: a CustomResourceDefinition needs spec.names.kind (a string)",
            ]
        );
    }

    #[test]
    fn kind_predicates() {
        assert!(is_namespace("v1", "Namespace"));
        assert!(!is_namespace("example.com/v1", "Namespace"));
        assert!(is_crd("apiextensions.k8s.io/v1", "CustomResourceDefinition"));
        assert!(is_crd("apiextensions.k8s.io/v1beta1", "CustomResourceDefinition"));
        assert!(!is_crd("v1", "CustomResourceDefinition"));
        let ns = &parse_ok("apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n")[0];
        assert!(ns.is_namespace());
        assert_eq!(ns.crd_defines(), None);
    }

    #[test]
    fn labels_are_added_and_kept() {
        let mut object = json!({"metadata": {"name": "a", "labels": {"app": "web"}}});
        label(&mut object, "prod", "shop");
        assert_eq!(
            object["metadata"]["labels"],
            json!({
                "app": "web",
                "app.kubernetes.io/managed-by": "terraform-provider-platform",
                "platform.terraform.io/stack": "prod",
                "platform.terraform.io/component": "shop",
            })
        );
    }

    #[test]
    fn labels_are_added_where_metadata_or_labels_are_missing_or_malformed() {
        for mut object in [
            json!({}),
            json!({"metadata": null}),
            json!({"metadata": {"labels": null}}),
            json!({"metadata": {"labels": "x"}}),
        ] {
            label(&mut object, "s", "c");
            assert_eq!(object["metadata"]["labels"][STACK_LABEL], json!("s"));
            assert_eq!(object["metadata"]["labels"][COMPONENT_LABEL], json!("c"));
        }
        let mut not_an_object = json!([1]);
        label(&mut not_an_object, "s", "c");
        assert_eq!(not_an_object, json!([1]));
    }

    #[test]
    fn default_namespace_fills_only_when_absent() {
        let mut manifests = parse_ok("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: b, namespace: mine}\n");
        for m in &mut manifests {
            default_namespace(m, "default-ns");
        }
        assert_eq!(manifests[0].namespace.as_deref(), Some("default-ns"));
        assert_eq!(manifests[0].object["metadata"]["namespace"], json!("default-ns"));
        assert_eq!(manifests[1].namespace.as_deref(), Some("mine"));
        assert_eq!(manifests[1].object["metadata"]["namespace"], json!("mine"));
    }

    #[test]
    fn duplicates_name_both_places_and_ignore_the_version() {
        let first = parse_ok("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: shop}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: shop}\n");
        let second = parse_ok("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n---\napiVersion: apps/v1beta2\nkind: Deployment\nmetadata: {name: web, namespace: shop}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: other}\n");
        let all: Vec<(&str, &Manifest)> =
            first.iter().map(|m| ("base", m)).chain(second.iter().map(|m| ("extra", m))).collect();
        assert_eq!(
            duplicates(&all),
            ["apps/v1beta2 Deployment shop/web is defined twice: in component \"base\" (document 1) and in component \"extra\" (document 2)"]
        );
    }

    #[test]
    fn duplicates_within_one_component_and_every_extra_copy() {
        let manifests = parse_ok("apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\napiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Namespace, metadata: {name: a}}\n");
        let all: Vec<(&str, &Manifest)> = manifests.iter().map(|m| ("c", m)).collect();
        assert_eq!(
            duplicates(&all),
            [
                "v1 Namespace a is defined twice: in component \"c\" (document 1) and in component \"c\" (document 2)",
                "v1 Namespace a is defined twice: in component \"c\" (document 1) and in component \"c\" (document 3, items[0])",
            ]
        );
        assert!(duplicates(&[]).is_empty());
    }
}
