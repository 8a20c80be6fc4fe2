//! A stack's `component` blocks as Rust values: read from the configuration, checked at
//! plan time (nothing here needs a cluster), and rendered into the objects to apply.

use std::collections::BTreeMap;

use base64::Engine as _;

use super::flux::{self, HelmChart, HelmComponent, HelmOptions, ValuesReference};
use super::graph;
use super::helm_values;
use super::manifests::{self, Manifest};
use super::readiness::{self, WaitFor};
use super::repositories;
use crate::catalog;
use crate::framework::diagnostics::{AttributePath, Diagnostics};
use crate::framework::value::Value;
use crate::resources::metadata;

pub const DEFAULT_FLUX_NAMESPACE: &str = "flux-system";
const DEFAULT_INTERVAL: &str = "10m";

/// Where a component's objects come from.
#[derive(Clone, Debug, PartialEq)]
pub enum Source {
    Manifests(String),
    Url { url: String, sha256: String },
    Helm {
        repository: String,
        chart: String,
        version: String,
        values: Option<String>,
        interval: String,
        options: Box<HelmOptions>,
        /// The stack repository `repository` names, when it names one.
        shared: Option<String>,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct Component {
    pub index: usize,
    pub name: String,
    pub depends_on: Vec<String>,
    /// Default namespace of its namespaced objects; a Helm release's target namespace.
    pub namespace: Option<String>,
    pub source: Source,
    pub sensitive_values: BTreeMap<String, String>,
    pub wait: bool,
    /// Take over objects that already exist (the stack's `adopt` or the component's).
    pub adopt: bool,
    /// Delete adopted objects on destroy and prune instead of releasing them.
    pub delete_adopted: bool,
    /// Field paths applied at create and then left to other managers.
    pub ignore_fields: Vec<Vec<String>>,
    /// `wait_for` blocks: what must hold for its objects before the component is done.
    pub wait_for: Vec<WaitFor>,
}

impl Component {
    pub fn path(&self) -> AttributePath {
        if self.index == REPOSITORIES_INDEX {
            return AttributePath::root("repository");
        }
        AttributePath::root("component").element(&self.name)
    }
}

fn text(block: &Value, name: &str) -> Option<String> {
    block.get_attr(name).and_then(Value::as_str).map(str::to_string)
}

/// Reads the `component` blocks, ordered by name (they are a set: the order they are written
/// in means nothing), with their sensitive values. Returns `None` when any of them is not
/// fully known yet (planning then treats the stack's objects as unknown); problems go to
/// `diags`.
pub fn components(config: &Value, diags: &mut Diagnostics) -> Option<Vec<Component>> {
    let mut blocks: Vec<&Value> = match config.get_attr("component") {
        Some(Value::Set(blocks)) | Some(Value::List(blocks)) => blocks.iter().collect(),
        Some(Value::Unknown) => return None,
        _ => Vec::new(),
    };
    blocks.sort_by_key(|block| text(block, "name"));
    let names: Vec<String> = blocks.iter().filter_map(|block| text(block, "name")).collect();
    let shared = repositories::repositories(config, diags)?;
    let mut sensitive = sensitive_values(config, diags);
    let mut components = Vec::new();
    let mut known = true;
    for (index, block) in blocks.into_iter().enumerate() {
        if !block.is_wholly_known() {
            known = false;
            continue;
        }
        if let Some(mut component) = component(index, block, &shared, diags) {
            if let Some(values) = sensitive.as_mut().and_then(|s| s.remove(&component.name)) {
                if !matches!(component.source, Source::Helm { .. }) {
                    diags.error_at(
                        AttributePath::root("sensitive_values").key(&component.name),
                        "sensitive_values needs a Helm chart",
                        format!(
                            "Component {:?}: sensitive values are Helm values; it has no `helm` block or `catalog`.",
                            component.name
                        ),
                    );
                }
                component.sensitive_values = values;
            }
            components.push(component);
        }
    }
    match &sensitive {
        Some(left) if known => {
            for name in left.keys().filter(|name| !names.contains(name)) {
                let suggestion = graph::closest(name, names.iter().map(String::as_str))
                    .map(|close| format!(" Did you mean {close:?}?"))
                    .unwrap_or_default();
                diags.error_at(
                    AttributePath::root("sensitive_values").key(name),
                    "Sensitive values for no component",
                    format!("The stack has no component {name:?}.{suggestion}"),
                );
            }
        }
        Some(_) => {}
        None => known = false,
    }
    if !shared.is_empty() {
        for c in components.iter().filter(|c| c.name == repositories::COMPONENT) {
            diags.error_at(
                c.path().attribute("name"),
                "Reserved component name",
                format!("A stack with `repository` blocks applies them as component {:?}: choose another name.", repositories::COMPONENT),
            );
        }
        let stack = text(config, "name").unwrap_or_default();
        let flux_namespace = text(config, "namespace").unwrap_or_else(|| DEFAULT_FLUX_NAMESPACE.to_string());
        let objects = repositories::objects(&stack, &flux_namespace, &shared, DEFAULT_INTERVAL);
        components.push(Component {
            index: REPOSITORIES_INDEX,
            name: repositories::COMPONENT.to_string(),
            depends_on: Vec::new(),
            namespace: None,
            source: Source::Manifests(objects.iter().map(|o| format!("---\n{o}\n")).collect()),
            sensitive_values: BTreeMap::new(),
            wait: true,
            adopt: false,
            delete_adopted: false,
            ignore_fields: Vec::new(),
            wait_for: Vec::new(),
        });
    }
    known.then_some(components)
}

/// The index of the component that applies the stack's `repository` blocks (it has no
/// `component` block; its problems point at `repository`).
const REPOSITORIES_INDEX: usize = usize::MAX;

/// The stack's sensitive Helm values by component: `sensitive_values` and the write-only
/// `sensitive_values_wo` (from the configuration; planned and stored null) together. `None`
/// while either is unknown.
fn sensitive_values(config: &Value, diags: &mut Diagnostics) -> Option<BTreeMap<String, BTreeMap<String, String>>> {
    let mut merged: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for attribute in ["sensitive_values", "sensitive_values_wo"] {
        let by_component = match config.get_attr(attribute) {
            Some(Value::Map(by_component)) => by_component,
            Some(value) if !value.is_wholly_known() => return None,
            _ => continue,
        };
        for (component, values) in by_component {
            if !values.is_wholly_known() {
                return None;
            }
            let into = merged.entry(component.clone()).or_default();
            for (key, value) in metadata::string_map(Some(values)).unwrap_or_default() {
                if into.insert(key.clone(), value).is_some() {
                    diags.error_at(
                        AttributePath::root(attribute).key(component),
                        "Sensitive value given twice",
                        format!("Component {component:?}: {key:?} is in both `sensitive_values` and `sensitive_values_wo`."),
                    );
                }
            }
        }
    }
    Some(merged)
}

fn component(index: usize, block: &Value, shared: &[repositories::Repository], diags: &mut Diagnostics) -> Option<Component> {
    let name = text(block, "name").unwrap_or_default();
    let path = AttributePath::root("component").element(&name);
    if let Some(problem) = metadata::dns1123_label_problem(&name) {
        diags.error_at(path.clone().attribute("name"), "Invalid component name", format!("{name:?} {problem}."));
    }
    let mut depends_on: Vec<String> = block
        .get_attr("depends_on")
        .and_then(Value::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    let mut namespace = text(block, "namespace");
    let helm = block.get_attr("helm").filter(|h| !h.is_null());
    let catalog_name = text(block, "catalog");
    let entry = match catalog_name.as_deref().map(|c| (c, catalog::lookup(c))) {
        Some((_, Some(entry))) => Some(entry),
        Some((wanted, None)) => {
            let names: Vec<&str> = catalog::names().collect();
            diags.error_at(
                path.clone().attribute("catalog"),
                "Unknown catalog component",
                format!("Component {name:?}: the catalog has no {wanted:?}. It has: {}.", names.join(", ")),
            );
            return None;
        }
        None => None,
    };
    let sources: Vec<&str> = [("manifests", block.get_attr("manifests")), ("manifests_url", block.get_attr("manifests_url"))]
        .into_iter()
        .filter(|(_, v)| v.is_some_and(|v| !v.is_null()))
        .map(|(n, _)| n)
        .chain((helm.is_some() || entry.is_some()).then_some("helm/catalog"))
        .collect();
    if sources.len() != 1 {
        diags.error_at(
            path.clone(),
            "Component needs exactly one source",
            format!(
                "Component {name:?} must set exactly one of `manifests`, `manifests_url`, or a `helm` block / `catalog`{}.",
                if sources.is_empty() { String::new() } else { format!("; it sets {}", sources.join(" and ")) }
            ),
        );
        return None;
    }
    let source = match sources[0] {
        "manifests" => Source::Manifests(text(block, "manifests").unwrap_or_default()),
        "manifests_url" => {
            let url = text(block, "manifests_url").unwrap_or_default();
            let Some(sha256) = text(block, "manifests_sha256") else {
                diags.error_at(
                    path.clone().attribute("manifests_sha256"),
                    "Missing manifests_sha256",
                    format!("Component {name:?}: `manifests_url` needs `manifests_sha256`, checked before anything is applied."),
                );
                return None;
            };
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                diags.error_at(path.clone().attribute("manifests_url"), "Invalid manifests URL", format!("{url:?} is not an http(s) URL."));
            }
            let sha256 = sha256.trim().to_ascii_lowercase();
            if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                diags.error_at(
                    path.clone().attribute("manifests_sha256"),
                    "Invalid sha256",
                    "`manifests_sha256` must be 64 hexadecimal digits.",
                );
            }
            Source::Url { url, sha256 }
        }
        _ => {
            let from_block = |field: &str| helm.and_then(|h| text(h, field));
            let repository = from_block("repository").or(entry.map(|e| e.repository.to_string()));
            let chart = from_block("chart").or(entry.map(|e| e.chart.to_string()));
            let version = from_block("version").or(entry.map(|e| e.version.to_string()));
            let (Some(repository), Some(chart), Some(version)) = (repository, chart, version) else {
                diags.error_at(
                    path.clone().attribute("helm"),
                    "Incomplete Helm chart",
                    format!("Component {name:?}: `helm` needs `repository`, `chart` and `version` (or a `catalog` entry to supply them)."),
                );
                return None;
            };
            let named = (!repository.contains("://")).then(|| shared.iter().find(|r| r.name == repository));
            let (repository, shared_name) = match named {
                Some(Some(found)) => (found.url.clone(), Some(found.name.clone())),
                Some(None) => {
                    let names: Vec<&str> = shared.iter().map(|r| r.name.as_str()).collect();
                    let hint = match graph::closest(&repository, names.iter().copied()) {
                        Some(close) => format!(" Did you mean {close:?}?"),
                        None if names.is_empty() => " The stack declares no `repository` blocks.".to_string(),
                        None => format!(" The stack's repositories: {}.", names.join(", ")),
                    };
                    diags.error_at(
                        path.clone().attribute("helm").attribute("repository"),
                        "Invalid Helm repository",
                        format!("{repository:?} is neither a URL (https://, http://, oci://) nor a `repository` of this stack.{hint}"),
                    );
                    (repository, None)
                }
                None => {
                    if !["https://", "http://", "oci://"].iter().any(|scheme| repository.starts_with(scheme)) {
                        diags.error_at(
                            path.clone().attribute("helm").attribute("repository"),
                            "Invalid Helm repository",
                            format!("{repository:?} must start with https://, http:// or oci://."),
                        );
                    }
                    (repository, None)
                }
            };
            if shared_name.is_some() && !depends_on.iter().any(|d| d == repositories::COMPONENT) {
                depends_on.push(repositories::COMPONENT.to_string());
            }
            let values = merge_values(entry.map(|e| e.default_values), from_block("values").as_deref())
                .map_err(|problem| diags.error_at(path.clone().attribute("helm").attribute("values"), "Invalid Helm values", problem))
                .ok()?;
            if let Some(entry) = entry {
                namespace = namespace.or(Some(entry.namespace.to_string()));
                for dependency in entry.depends_on {
                    if !depends_on.iter().any(|d| d == dependency) {
                        depends_on.push(format!("{}{dependency}", CATALOG_DEPENDENCY));
                    }
                }
            }
            let interval = from_block("interval").unwrap_or_else(|| DEFAULT_INTERVAL.to_string());
            let options = Box::new(helm.map(helm_options).unwrap_or_default());
            Source::Helm { repository, chart, version, values, interval, options, shared: shared_name }
        }
    };
    if let Some(ns) = &namespace {
        if let Some(problem) = metadata::dns1123_label_problem(ns) {
            diags.error_at(path.clone().attribute("namespace"), "Invalid namespace", format!("{ns:?} {problem}."));
        }
    }
    let wait = block.get_attr("wait").and_then(Value::as_bool).unwrap_or(true);
    let adopt = block.get_attr("adopt").and_then(Value::as_bool).unwrap_or(false);
    let delete_adopted = match text(block, "on_destroy").as_deref() {
        None | Some("release") => false,
        Some("delete") => true,
        Some(other) => {
            diags.error_at(
                path.clone().attribute("on_destroy"),
                "Invalid on_destroy",
                format!("Component {name:?}: `on_destroy` is \"release\" (the default) or \"delete\", not {other:?}."),
            );
            false
        }
    };
    let mut ignore_fields = Vec::new();
    for (i, field) in block.get_attr("ignore_fields").and_then(Value::as_slice).unwrap_or_default().iter().enumerate() {
        let Some(field) = field.as_str() else { continue };
        match field_path(field) {
            Ok(steps) => ignore_fields.push(steps),
            Err(problem) => diags.error_at(
                path.clone().attribute("ignore_fields").index(i as i64),
                "Invalid field path",
                format!("Component {name:?}: {field:?} {problem}."),
            ),
        }
    }
    let mut wait_for = Vec::new();
    for (i, block) in block.get_attr("wait_for").and_then(Value::as_slice).unwrap_or_default().iter().enumerate() {
        let at = path.clone().attribute("wait_for").index(i as i64);
        let expression = text(block, "for").unwrap_or_default();
        match readiness::parse_expectation(&expression) {
            Ok(expect) => wait_for.push(WaitFor { kind: text(block, "kind"), name: text(block, "name"), expect }),
            Err(problem) => diags.error_at(at.attribute("for"), "Invalid wait_for", format!("Component {name:?}: {expression:?} {problem}.")),
        }
    }
    Some(Component {
        index,
        name,
        depends_on,
        namespace,
        source,
        sensitive_values: BTreeMap::new(),
        wait,
        adopt,
        delete_adopted,
        ignore_fields,
        wait_for,
    })
}

/// Reads a field path: mapping keys joined by dots, a key holding dots or slashes in
/// brackets and quotes (`metadata.annotations["example.com/owner"]`). Identity fields
/// (`apiVersion`, `kind`, `metadata.name`, `metadata.namespace`) cannot be ignored.
pub fn field_path(text: &str) -> Result<Vec<String>, String> {
    let mut steps = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        if let Some(quoted) = rest.strip_prefix("[\"") {
            let end = quoted.find("\"]").ok_or("has an unclosed [\"...\"]")?;
            steps.push(quoted[..end].to_string());
            rest = &quoted[end + 2..];
        } else {
            let end = rest.find(['.', '[']).unwrap_or(rest.len());
            if end == 0 {
                return Err("has an empty step".into());
            }
            steps.push(rest[..end].to_string());
            rest = &rest[end..];
        }
        if let Some(after) = rest.strip_prefix('.') {
            if after.is_empty() {
                return Err("ends with a dot".into());
            }
            rest = after;
        } else if !rest.is_empty() && !rest.starts_with('[') {
            return Err("is not a field path like `spec.replicas`".into());
        }
    }
    let identity = |steps: &[String]| match steps {
        [one] => one == "apiVersion" || one == "kind" || one == "metadata",
        [meta, field] => meta == "metadata" && (field == "name" || field == "namespace"),
        _ => false,
    };
    if steps.is_empty() {
        Err("is empty".into())
    } else if identity(&steps) {
        Err("names the object itself (apiVersion, kind, metadata.name or metadata.namespace), which cannot be ignored".into())
    } else {
        Ok(steps)
    }
}

/// Marks a dependency that came from the catalog: it only applies when the stack has a
/// component of that name (it may be installed by another stack).
const CATALOG_DEPENDENCY: &str = "catalog:";

/// Resolves catalog dependencies against the stack's components and checks the graph.
/// Returns the components grouped in dependency levels.
pub fn levels(components: &mut [Component], diags: &mut Diagnostics) -> Option<Vec<Vec<usize>>> {
    let names: Vec<String> = components.iter().map(|c| c.name.clone()).collect();
    for component in components.iter_mut() {
        component.depends_on.retain(|d| match d.strip_prefix(CATALOG_DEPENDENCY) {
            Some(name) => names.iter().any(|n| n == name),
            None => true,
        });
        for d in component.depends_on.iter_mut() {
            if let Some(name) = d.strip_prefix(CATALOG_DEPENDENCY) {
                *d = name.to_string();
            }
        }
    }
    let graph_input: Vec<(&str, &[String])> = components.iter().map(|c| (c.name.as_str(), c.depends_on.as_slice())).collect();
    match graph::levels(&graph_input) {
        Ok(levels) => Some(levels),
        Err(problems) => {
            for problem in problems {
                let at = components[problem.index()].path();
                let (at, summary) = match problem {
                    graph::GraphProblem::DuplicateName { .. } => (at.attribute("name"), "Duplicate component name"),
                    _ => (at.attribute("depends_on"), "Invalid component dependencies"),
                };
                diags.error_at(at, summary, problem.to_string());
            }
            None
        }
    }
}

/// The options of a `helm` block beyond the chart (checked where they are rendered).
fn helm_options(helm: &Value) -> HelmOptions {
    let values_from = helm
        .get_attr("values_from")
        .and_then(Value::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|r| ValuesReference {
            kind: text(r, "kind").unwrap_or_default(),
            name: text(r, "name").unwrap_or_default(),
            values_key: text(r, "values_key"),
            target_path: text(r, "target_path"),
            optional: r.get_attr("optional").and_then(Value::as_bool).unwrap_or(false),
        })
        .collect();
    HelmOptions {
        release_name: text(helm, "release_name"),
        timeout: text(helm, "timeout"),
        retries: helm.get_attr("remediation_retries").and_then(Value::as_i64),
        crds: text(helm, "crds"),
        values_from,
        disable_wait: helm.get_attr("disable_wait").and_then(Value::as_bool).unwrap_or(false),
    }
}

/// Deep-merges the user's values over the catalog's defaults; both YAML mappings.
fn merge_values(defaults: Option<&str>, user: Option<&str>) -> Result<Option<String>, String> {
    let parse = |text: &str, what: &str| -> Result<serde_yaml::Value, String> {
        match serde_yaml::from_str::<serde_yaml::Value>(text) {
            Ok(serde_yaml::Value::Null) => Ok(serde_yaml::Value::Mapping(Default::default())),
            Ok(value @ serde_yaml::Value::Mapping(_)) => Ok(value),
            Ok(_) => Err(format!("{what} must be a YAML mapping")),
            Err(e) => Err(format!("{what} are not valid YAML: {e}")),
        }
    };
    match (defaults.filter(|d| !d.trim().is_empty()), user) {
        (None, None) => Ok(None),
        (None, Some(user)) => parse(user, "values").map(|_| Some(user.to_string())),
        (Some(defaults), user) => {
            let mut merged = parse(defaults, "catalog default values")?;
            if let Some(user) = user {
                merge_into(&mut merged, parse(user, "values")?);
            }
            serde_yaml::to_string(&merged).map(Some).map_err(|e| e.to_string())
        }
    }
}

#[cfg(test)]
#[test]
fn field_paths() {
    assert_eq!(field_path("spec.replicas").unwrap(), ["spec", "replicas"]);
    assert_eq!(field_path(r#"metadata.annotations["example.com/x"]"#).unwrap(), ["metadata", "annotations", "example.com/x"]);
    assert_eq!(field_path(r#"data["a.b"].c"#).unwrap(), ["data", "a.b", "c"]);
    for bad in ["", "spec.", ".spec", "spec..x", "metadata.name", "kind", "spec[\"x"] {
        assert!(field_path(bad).is_err(), "{bad:?} accepted");
    }
}

fn merge_into(base: &mut serde_yaml::Value, overlay: serde_yaml::Value) {
    match (base, overlay) {
        (serde_yaml::Value::Mapping(base), serde_yaml::Value::Mapping(overlay)) => {
            for (key, value) in overlay {
                match base.get_mut(&key) {
                    Some(existing) => merge_into(existing, value),
                    None => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (base, overlay) => *base = overlay,
    }
}

/// The objects of one component. `fetched` is the downloaded text of a `manifests_url`.
/// Problems name the component and the document.
pub fn render(
    stack: &str,
    flux_namespace: &str,
    component: &Component,
    helm_dependencies: &[&str],
    fetched: Option<&str>,
) -> Result<Vec<Manifest>, Vec<String>> {
    let prefix = |m: String| format!("component {:?}: {m}", component.name);
    let mut objects = match &component.source {
        Source::Manifests(text) => manifests::parse_documents(text).map_err(|ps| ps.into_iter().map(|p| prefix(p.to_string())).collect::<Vec<_>>())?,
        Source::Url { url, .. } => match fetched {
            Some(text) => manifests::parse_documents(text)
                .map_err(|ps| ps.into_iter().map(|p| prefix(format!("{url}: {p}"))).collect::<Vec<_>>())?,
            None => return Ok(Vec::new()),
        },
        Source::Helm { repository, chart, version, values, interval, options, shared } => {
            let shared_source = shared.as_deref().map(|name| repositories::object_name(stack, name));
            let values_secret = helm_values::values_secret_name(stack, &component.name);
            let helm = HelmComponent {
                stack,
                component: &component.name,
                flux_namespace,
                target_namespace: component.namespace.as_deref().unwrap_or(&component.name),
                chart: HelmChart {
                    repository,
                    chart,
                    version,
                    values_yaml: values.as_deref(),
                    interval,
                    options,
                    shared_source: shared_source.as_deref(),
                },
                depends_on: helm_dependencies.to_vec(),
                sensitive_keys: component.sensitive_values.keys().map(String::as_str).collect(),
                values_secret_name: (!component.sensitive_values.is_empty()).then_some(values_secret.as_str()),
            };
            let mut objects: Vec<serde_json::Value> = flux::flux_objects(&helm).map_err(|e| vec![prefix(e)])?;
            if !component.sensitive_values.is_empty() {
                objects.insert(0, values_secret_object(&values_secret, flux_namespace, &component.sensitive_values));
            }
            objects
                .into_iter()
                .enumerate()
                .map(|(index, object)| manifest_from_json(object, index))
                .collect::<Result<_, _>>()
                .map_err(|e| vec![prefix(e)])?
        }
    };
    for object in &mut objects {
        manifests::label(&mut object.object, stack, &component.name);
    }
    let too_large: Vec<String> = objects.iter().filter_map(|m| size_problem(m).map(prefix)).collect();
    if !too_large.is_empty() {
        return Err(too_large);
    }
    Ok(objects)
}

/// The most an object may weigh: the limit Kubernetes documents for ConfigMaps and Secrets,
/// close to etcd's request limit for everything else, and the size of the Secret in which
/// Helm keeps a release's values.
const MAX_OBJECT_BYTES: usize = 1024 * 1024;

/// Why `m` cannot be stored: larger than [`MAX_OBJECT_BYTES`] as JSON.
fn size_problem(m: &Manifest) -> Option<String> {
    let size = serde_json::to_vec(&m.object).map_or(0, |bytes| bytes.len());
    (size > MAX_OBJECT_BYTES).then(|| {
        let what = if m.kind == "HelmRelease" { "its Helm values are too large" } else { "it is too large" };
        format!(
            "{} {} ({}) is {:.1} MiB as JSON: {what}. Kubernetes stores objects of at most 1 MiB; split it, or move bulky data \
             into files the workload reads (a volume, an image, object storage)",
            m.kind,
            m.name,
            m.location(),
            size as f64 / (1024.0 * 1024.0)
        )
    })
}

fn values_secret_object(name: &str, namespace: &str, values: &BTreeMap<String, String>) -> serde_json::Value {
    let data: BTreeMap<&str, String> =
        values.iter().map(|(k, v)| (k.as_str(), base64::engine::general_purpose::STANDARD.encode(helm_values::secret_value_for_target_path(v)))).collect();
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": { "name": name, "namespace": namespace },
        "type": "Opaque",
        "data": data,
    })
}

fn manifest_from_json(object: serde_json::Value, document_index: usize) -> Result<Manifest, String> {
    let field = |pointer: &str| object.pointer(pointer).and_then(|v| v.as_str()).map(str::to_string);
    Ok(Manifest {
        api_version: field("/apiVersion").ok_or("generated object without apiVersion")?,
        kind: field("/kind").ok_or("generated object without kind")?,
        name: field("/metadata/name").ok_or("generated object without name")?,
        namespace: field("/metadata/namespace"),
        document_index,
        list_item: None,
        object,
    })
}
