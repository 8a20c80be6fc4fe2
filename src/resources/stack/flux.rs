//! Helm components as Flux objects: a chart source (HelmRepository for http(s) repositories,
//! OCIRepository for `oci://` ones) and a HelmRelease that helm-controller installs and
//! upgrades, plus reading a HelmRelease's readiness back from its status.
//!
//! The objects are plain JSON for server-side apply; labelling them is
//! `manifests::label`'s job. Sensitive values never pass through here: only their keys do,
//! as `valuesFrom` references into a Secret the caller builds (see
//! [`secret_value_for_target_path`] for how to write its values). Nothing here knows
//! Terraform or talks to a cluster.
//!
//! Field names follow helm-controller's `helm.toolkit.fluxcd.io/v2` API and
//! source-controller's `source.toolkit.fluxcd.io/v1` HelmRepository and `v1beta2`
//! OCIRepository.

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::documents::yaml_to_json;
use crate::resources::metadata::dns1123_label_problem as dns_label_problem;

pub const HELM_RELEASE_API: &str = "helm.toolkit.fluxcd.io/v2";
pub const HELM_RELEASE_KIND: &str = "HelmRelease";
pub const HELM_REPOSITORY_API: &str = "source.toolkit.fluxcd.io/v1";
pub const HELM_REPOSITORY_KIND: &str = "HelmRepository";
pub const OCI_REPOSITORY_API: &str = "source.toolkit.fluxcd.io/v1beta2";
pub const OCI_REPOSITORY_KIND: &str = "OCIRepository";
/// The OCI layer holding a Helm chart; the OCIRepository keeps it as is (`operation: copy`),
/// since helm-controller wants the chart archive, not its extracted files.
pub const HELM_CHART_LAYER_MEDIA_TYPE: &str = "application/vnd.cncf.helm.chart.content.v1.tar+gzip";

/// Install and upgrade replace CRDs shipped in a chart's crds/ directory (Helm itself only
/// creates them once), so that a chart upgrade brings its CRD changes.
const CRDS_POLICY: &str = "CreateReplace";
/// Failed installs and upgrades are retried (with remediation in between) this many times
/// before helm-controller gives up and marks the release Stalled.
const REMEDIATION_RETRIES: u32 = 3;
/// Flux's annotation asking a controller to reconcile now: helm-controller handles a changed
/// value at once and records it in `status.lastHandledReconcileAt`.
pub const RECONCILE_REQUEST: &str = "reconcile.fluxcd.io/requestedAt";

/// Helm refuses release names longer than this.
const RELEASE_NAME_MAX: usize = 53;
const OCI_SCHEME: &str = "oci://";

pub struct HelmChart<'a> {
    /// `https://…` (or `http://…`) Helm repository, or `oci://registry/path`.
    pub repository: &'a str,
    pub chart: &'a str,
    /// A chart version or, for http(s) repositories, a semver range; empty for the latest.
    pub version: &'a str,
    /// The chart values as YAML; must be a mapping.
    pub values_yaml: Option<&'a str>,
    /// How often Flux reconciles, a Go duration such as "10m" or "1h30m".
    pub interval: &'a str,
}

pub struct HelmComponent<'a> {
    /// The stack: with the component, it names the HelmRelease, its source and the Helm
    /// release (see [`object_name`]).
    pub stack: &'a str,
    pub component: &'a str,
    /// Where the Flux objects (and the values Secret) live.
    pub flux_namespace: &'a str,
    /// Where the chart is installed, and where Helm keeps its release records.
    pub target_namespace: &'a str,
    pub chart: HelmChart<'a>,
    /// Helm components (HelmRelease names in `flux_namespace`) that must be Ready first.
    pub depends_on: Vec<&'a str>,
    /// Dot paths into the values (`auth.password`) whose values come from the Secret named
    /// `values_secret_name`, each stored under its path as key.
    pub sensitive_keys: Vec<&'a str>,
    pub values_secret_name: Option<&'a str>,
}

/// The Flux objects for a Helm component: its chart source first, then the HelmRelease
/// (both named after the component, in the Flux namespace). All problems with the input are
/// reported together, joined by "; "; repository URLs and values are never quoted (a URL
/// can hold credentials, values secrets).
pub fn flux_objects(c: &HelmComponent) -> Result<Vec<Value>, String> {
    let mut problems = Vec::new();
    check_names(c, &mut problems);
    if let Some(problem) = interval_problem(c.chart.interval) {
        problems.push(format!("interval {:?} {problem}", c.chart.interval));
    }
    let source = chart_source(c).map_err(|problem| problems.push(problem)).ok();
    let values = parse_values(c.chart.values_yaml).map_err(|problem| problems.push(problem)).ok().flatten();
    let values_from = values_from(c).map_err(|mut found| problems.append(&mut found)).ok();
    let (Some(source), Some(values_from)) = (source, values_from) else { return Err(problems.join("; ")) };
    if !problems.is_empty() {
        return Err(problems.join("; "));
    }

    let name = object_name(c.stack, c.component);
    let metadata = json!({"name": name, "namespace": c.flux_namespace});
    let (source_object, chart_reference) = match source {
        ChartSource::HelmRepository { url } => (
            json!({
                "apiVersion": HELM_REPOSITORY_API,
                "kind": HELM_REPOSITORY_KIND,
                "metadata": metadata,
                "spec": {"url": url, "interval": c.chart.interval},
            }),
            {
                let mut chart_spec = json!({
                    "chart": c.chart.chart,
                    "sourceRef": {"kind": HELM_REPOSITORY_KIND, "name": name, "namespace": c.flux_namespace},
                });
                if !c.chart.version.is_empty() {
                    chart_spec["version"] = json!(c.chart.version);
                }
                ("chart", json!({"spec": chart_spec}))
            },
        ),
        ChartSource::OciRepository { url, reference } => {
            let mut spec = json!({
                "url": url,
                "interval": c.chart.interval,
                "layerSelector": {"mediaType": HELM_CHART_LAYER_MEDIA_TYPE, "operation": "copy"},
            });
            if let Some(reference) = reference {
                spec["ref"] = reference;
            }
            (
                json!({"apiVersion": OCI_REPOSITORY_API, "kind": OCI_REPOSITORY_KIND, "metadata": metadata, "spec": spec}),
                ("chartRef", json!({"kind": OCI_REPOSITORY_KIND, "name": name, "namespace": c.flux_namespace})),
            )
        }
    };

    let remediation = json!({"retries": REMEDIATION_RETRIES});
    let mut spec = json!({
        "interval": c.chart.interval,
        "releaseName": name,
        "targetNamespace": c.target_namespace,
        "storageNamespace": c.target_namespace,
        "install": {"createNamespace": true, "crds": CRDS_POLICY, "remediation": remediation},
        "upgrade": {"crds": CRDS_POLICY, "remediation": remediation},
    });
    spec[chart_reference.0] = chart_reference.1;
    if let Some(values) = values {
        spec["values"] = values;
    }
    if !c.depends_on.is_empty() {
        spec["dependsOn"] =
            c.depends_on.iter().map(|d| json!({"name": object_name(c.stack, d), "namespace": c.flux_namespace})).collect();
    }
    if !values_from.is_empty() {
        spec["valuesFrom"] = Value::Array(values_from);
    }
    let release = json!({
        "apiVersion": HELM_RELEASE_API,
        "kind": HELM_RELEASE_KIND,
        "metadata": {"name": name, "namespace": c.flux_namespace},
        "spec": spec,
    });
    Ok(vec![source_object, release])
}

fn check_names(c: &HelmComponent, problems: &mut Vec<String>) {
    if let Some(problem) = dns_label_problem(c.component) {
        problems.push(format!("component name {:?} cannot name a Helm release: it {problem}", c.component));
    }
    for (what, namespace) in [("Flux namespace", c.flux_namespace), ("target namespace", c.target_namespace)] {
        if let Some(problem) = dns_label_problem(namespace) {
            problems.push(format!("{what} {namespace:?} {problem}"));
        }
    }
    for dependency in &c.depends_on {
        if let Some(problem) = dns_label_problem(dependency) {
            problems.push(format!("dependency {dependency:?} is not a Helm component name: it {problem}"));
        }
    }
}

/// Flux durations: `^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`, as the Flux CRDs validate them.
fn interval_problem(interval: &str) -> Option<&'static str> {
    let mut rest = interval;
    if rest.is_empty() {
        return Some("must not be empty (use a duration such as \"10m\")");
    }
    while !rest.is_empty() {
        let integer = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if integer == 0 {
            return Some("is not a duration such as \"30s\", \"10m\" or \"1h30m\"");
        }
        rest = &rest[integer..];
        if let Some(fraction) = rest.strip_prefix('.') {
            let digits = fraction.len() - fraction.trim_start_matches(|c: char| c.is_ascii_digit()).len();
            if digits == 0 {
                return Some("is not a duration such as \"30s\", \"10m\" or \"1h30m\"");
            }
            rest = &fraction[digits..];
        }
        match ["ms", "s", "m", "h"].iter().find(|unit| rest.starts_with(*unit)) {
            Some(unit) => rest = &rest[unit.len()..],
            None => return Some("is not a duration such as \"30s\", \"10m\" or \"1h30m\""),
        }
    }
    None
}

enum ChartSource {
    HelmRepository {
        url: String,
    },
    /// `reference`: the OCIRepository `ref`, or `None` for the latest tag.
    OciRepository {
        url: String,
        reference: Option<Value>,
    },
}

fn chart_source(c: &HelmComponent) -> Result<ChartSource, String> {
    let chart = c.chart.chart;
    if chart.is_empty() || chart.contains(char::is_whitespace) || chart.starts_with('/') || chart.ends_with('/') {
        return Err(format!("chart {chart:?} must be a chart name (or path in an OCI registry) without spaces"));
    }
    let repository = c.chart.repository.trim_end_matches('/');
    if repository.contains(char::is_whitespace) {
        return Err("the chart repository URL must not contain whitespace".into());
    }
    if let Some(location) = repository.strip_prefix(OCI_SCHEME) {
        if location.is_empty() {
            return Err("the chart repository URL oci:// needs a registry (oci://registry/path)".into());
        }
        let reference = match c.chart.version {
            "" => None,
            version if is_oci_tag(version) => Some(json!({"tag": version})),
            range => Some(json!({"semver": range})),
        };
        Ok(ChartSource::OciRepository { url: format!("{repository}/{chart}"), reference })
    } else if ["https://", "http://"]
        .iter()
        .any(|scheme| repository.len() > scheme.len() && repository.starts_with(scheme))
    {
        Ok(ChartSource::HelmRepository { url: repository.to_string() })
    } else {
        Err("the chart repository URL must start with https://, http:// or oci://".into())
    }
}

/// An OCI tag: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`. Anything else (`>=1.2`, `1.2.*`) is taken
/// as a semver range, which OCIRepository resolves against the registry's tags.
fn is_oci_tag(version: &str) -> bool {
    version.len() <= 128
        && version.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
        && version.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// The values mapping; `None` when there are none (no text, an empty document or `null`).
fn parse_values(values_yaml: Option<&str>) -> Result<Option<Value>, String> {
    let Some(text) = values_yaml else { return Ok(None) };
    let parsed: serde_yaml::Value =
        serde_yaml::from_str(text).map_err(|error| format!("values are not valid YAML: {error}"))?;
    let mut parsed = parsed;
    parsed.apply_merge().map_err(|error| format!("values are not valid YAML: {error}"))?;
    match yaml_to_json(parsed).map_err(|problem| format!("values: {problem}"))? {
        Value::Null => Ok(None),
        Value::Object(values) if values.is_empty() => Ok(None),
        values @ Value::Object(_) => Ok(Some(values)),
        Value::Array(_) => Err("values must be a YAML mapping of chart values, not a list".into()),
        _ => Err("values must be a YAML mapping of chart values, not a single value".into()),
    }
}

/// `valuesFrom` entries, one per sensitive key: Flux reads the Secret's entry of that name
/// and sets it at that dot path of the values (over any value written in the values YAML).
fn values_from(c: &HelmComponent) -> Result<Vec<Value>, Vec<String>> {
    if c.sensitive_keys.is_empty() {
        return Ok(Vec::new());
    }
    let mut problems = Vec::new();
    let secret = match c.values_secret_name {
        Some(name) if !name.is_empty() => name,
        _ => {
            problems.push("sensitive values need a values Secret name".to_string());
            ""
        }
    };
    let mut entries = Vec::with_capacity(c.sensitive_keys.len());
    for (position, key) in c.sensitive_keys.iter().enumerate() {
        if let Some(problem) = sensitive_key_problem(key) {
            problems.push(format!("sensitive key {key:?} {problem}"));
        } else if c.sensitive_keys[..position].contains(key) {
            problems.push(format!("sensitive key {key:?} is listed twice"));
        }
        entries.push(json!({"kind": "Secret", "name": secret, "valuesKey": key, "targetPath": key}));
    }
    if problems.is_empty() {
        Ok(entries)
    } else {
        Err(problems)
    }
}

/// A sensitive key is both a Secret data key (`[-._a-zA-Z0-9]+`, at most 253) and a Helm
/// `--set` path, where dots separate map keys (so no empty part between dots).
fn sensitive_key_problem(key: &str) -> Option<&'static str> {
    if key.is_empty() || key.len() > 253 {
        Some("must be 1 to 253 characters")
    } else if !key.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')) {
        Some("must be a dot path of letters, digits, '-' and '_' (such as auth.password)")
    } else if key.split('.').any(str::is_empty) {
        Some("must not start or end with '.' or contain '..'")
    } else {
        None
    }
}

/// How to write a sensitive string into the values Secret so that the chart gets it back
/// exactly, as a string.
///
/// Flux merges a `valuesFrom` entry that has a `targetPath` the way `helm --set path=value`
/// does: an unescaped ',' ends the value (and starts another assignment), '\' escapes, a
/// leading '{' starts a list, `true`, `false`, `null` and integers become typed values, and
/// a value wrapped in quotes is taken as a string after every leading and trailing quote is
/// stripped. So '\' and ',' are escaped, and so is a leading '{', `'` or `"`; a value that
/// would be typed is wrapped in double quotes (it holds no quote to lose).
pub fn secret_value_for_target_path(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len() + 2);
    for (position, character) in value.chars().enumerate() {
        let special = matches!(character, '\\' | ',') || (position == 0 && matches!(character, '{' | '\'' | '"'));
        if special {
            escaped.push('\\');
        }
        escaped.push(character);
    }
    if helm_would_type(value) {
        format!("\"{escaped}\"")
    } else {
        escaped
    }
}

/// Whether Helm's `--set` parser turns this text into something other than a string
/// (its `typedVal`: booleans and null in any case, "0", integers not starting with '0').
fn helm_would_type(value: &str) -> bool {
    ["true", "false", "null"].iter().any(|word| value.eq_ignore_ascii_case(word))
        || value == "0"
        || (!value.starts_with('0') && value.parse::<i64>().is_ok())
}

/// The name of a Helm component's Flux objects (HelmRepository or OCIRepository, HelmRelease)
/// and of its Helm release: "<stack>-<component>", so that two stacks with a component of the
/// same name never share them. Longer than a Helm release name may be (53 characters), it is
/// cut and a hash of both names appended.
pub fn object_name(stack: &str, component: &str) -> String {
    let joined = format!("{stack}-{component}");
    if joined.len() <= RELEASE_NAME_MAX {
        return joined;
    }
    let mut hasher = Sha256::new();
    hasher.update(stack.as_bytes());
    hasher.update([0]);
    hasher.update(component.as_bytes());
    let hash = hex::encode(hasher.finalize());
    let head = safe_label(&joined[..RELEASE_NAME_MAX - 9]);
    format!("{head}-{}", &hash[..8])
}

/// The name of the Secret holding a Helm component's sensitive values: a DNS subdomain
/// (at most 253 characters), "<stack>.<component>.helm-values" when both names are valid
/// DNS labels. Otherwise the names are lower-cased, cut down and made safe, and a hash of
/// the original names is appended, so that different stacks and components never share a
/// Secret.
pub fn values_secret_name(stack: &str, component: &str) -> String {
    const SUFFIX: &str = "helm-values";
    if dns_label_problem(stack).is_none() && dns_label_problem(component).is_none() {
        return format!("{stack}.{component}.{SUFFIX}");
    }
    let mut hasher = Sha256::new();
    hasher.update(stack.as_bytes());
    hasher.update([0]);
    hasher.update(component.as_bytes());
    let hash = hex::encode(hasher.finalize());
    format!("{}.{}.{SUFFIX}-{}", safe_label(stack), safe_label(component), &hash[..12])
}

/// `text` made a DNS label: lower case, other characters replaced by '-', at most 63
/// characters, starting and ending with a letter or digit ("x" if nothing is left).
fn safe_label(text: &str) -> String {
    let replaced: String = text
        .chars()
        .map(|c| c.to_ascii_lowercase())
        .map(|c| if c.is_ascii_lowercase() || c.is_ascii_digit() { c } else { '-' })
        .take(63)
        .collect();
    let trimmed = replaced.trim_matches('-');
    if trimmed.is_empty() {
        "x".to_string()
    } else {
        trimmed.to_string()
    }
}

/// A HelmRelease's readiness (also right for HelmRepository and OCIRepository, which report
/// the same kstatus conditions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReleaseStatus {
    /// Reconciled at its current generation and Ready.
    Ready,
    /// helm-controller gave up (Stalled, for instance after the remediation retries), or the
    /// object is suspended and will not be reconciled: waiting longer will not help.
    Failed { reason: String, message: String },
    /// Not there yet: not yet reconciled at its current generation, being reconciled, or
    /// failing in a way helm-controller retries (a dependency not Ready, a chart not yet
    /// fetched). The reason and message are the latest ones, for a timeout's explanation.
    Progressing { reason: String, message: String },
}

/// Reads readiness from `status` as helm-controller writes it: `observedGeneration` below
/// `metadata.generation` means the status describes an older spec (so it is not Ready, and
/// a Stalled from then no longer counts); `Stalled=True` is a final failure; `Reconciling=True`
/// or `Ready` other than True is progress; `Ready=True` at the current generation is ready.
/// Conditions that carry an older `observedGeneration` than the object's are ignored.
pub fn release_status(object: &Value) -> ReleaseStatus {
    let generation = object.get("metadata").and_then(|m| m.get("generation")).and_then(Value::as_i64);
    let status = object.get("status");
    let observed = status.and_then(|s| s.get("observedGeneration")).and_then(Value::as_i64);
    let conditions: &[Value] =
        status.and_then(|s| s.get("conditions")).and_then(Value::as_array).map_or(&[], Vec::as_slice);
    let condition = |kind: &str| {
        conditions
            .iter()
            .filter(|c| c.get("type").and_then(Value::as_str) == Some(kind))
            .find(|c| match (c.get("observedGeneration").and_then(Value::as_i64), generation) {
                (Some(seen), Some(current)) => seen >= current,
                _ => true,
            })
            .map(|c| Condition {
                status: c.get("status").and_then(Value::as_str).unwrap_or("Unknown"),
                reason: c.get("reason").and_then(Value::as_str).unwrap_or(""),
                message: c.get("message").and_then(Value::as_str).unwrap_or(""),
            })
    };
    // A requested reconciliation (see `RECONCILE_REQUEST`) not handled yet: the status
    // describes the release from before it.
    let requested = object.get("metadata").and_then(|m| m.get("annotations")).and_then(|a| a.get(RECONCILE_REQUEST)).and_then(Value::as_str);
    let handled = status.and_then(|s| s.get("lastHandledReconcileAt")).and_then(Value::as_str);
    let request_pending = requested.is_some_and(|r| handled != Some(r));
    let stale = request_pending
        || match (generation, observed) {
            (Some(current), Some(seen)) => seen < current,
            (Some(_), None) => true,
            (None, _) => false,
        };
    let reconciling = condition("Reconciling").filter(|c| c.status == "True");

    let ready = condition("Ready");
    if let Some(stalled) = condition("Stalled").filter(|c| c.status == "True") {
        // Stalled says that Flux gave up; Ready=False usually says why.
        let mut message = stalled.message.to_string();
        if let Some(why) = ready.as_ref().filter(|c| c.status == "False" && !c.message.is_empty() && c.message != stalled.message) {
            message = format!("{message} (Ready=False, {}: {})", why.reason, why.message);
        }
        return ReleaseStatus::Failed { reason: stalled.reason.into(), message };
    }
    let is_ready = ready.as_ref().is_some_and(|c| c.status == "True");
    if is_ready && !stale && reconciling.is_none() {
        return ReleaseStatus::Ready;
    }
    let suspended = object.get("spec").and_then(|s| s.get("suspend")).and_then(Value::as_bool) == Some(true);
    if suspended {
        return ReleaseStatus::Failed {
            reason: "Suspended".into(),
            message: "reconciliation is suspended (spec.suspend is true), so the current spec will not be applied"
                .into(),
        };
    }
    // The most telling explanation first: a failure being retried, then what is running.
    let failing = ready.as_ref().filter(|c| c.status == "False");
    match failing.or(reconciling.as_ref()).or(ready.as_ref().filter(|c| c.status != "True")) {
        Some(c) if !c.reason.is_empty() || !c.message.is_empty() => {
            ReleaseStatus::Progressing { reason: c.reason.into(), message: c.message.into() }
        }
        _ => ReleaseStatus::Progressing {
            reason: "Pending".into(),
            message: match (generation, observed) {
                _ if request_pending => "waiting for the controller to handle the requested reconciliation".into(),
                (Some(current), Some(seen)) if seen < current => {
                    format!("waiting for the controller to reconcile generation {current} (it last finished generation {seen})")
                }
                (Some(current), _) => format!("waiting for the controller to reconcile generation {current}"),
                (None, _) => "waiting for the controller to report readiness".into(),
            },
        },
    }
}

struct Condition<'a> {
    status: &'a str,
    reason: &'a str,
    message: &'a str,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn component<'a>(repository: &'a str, values: Option<&'a str>) -> HelmComponent<'a> {
        HelmComponent {
            stack: "infra",
            component: "cert-manager",
            flux_namespace: "flux-system",
            target_namespace: "cert-manager",
            chart: HelmChart {
                repository,
                chart: "cert-manager",
                version: "v1.16.2",
                values_yaml: values,
                interval: "10m",
            },
            depends_on: vec![],
            sensitive_keys: vec![],
            values_secret_name: None,
        }
    }

    #[test]
    fn https_repository_gives_helm_repository_and_chart_template() {
        let objects =
            flux_objects(&component("https://charts.jetstack.io/", Some("crds:\n  enabled: true\nreplicaCount: 2\n")))
                .unwrap();
        assert_eq!(objects.len(), 2);
        assert_eq!(
            objects[0],
            json!({
                "apiVersion": "source.toolkit.fluxcd.io/v1",
                "kind": "HelmRepository",
                "metadata": {"name": "infra-cert-manager", "namespace": "flux-system"},
                "spec": {"url": "https://charts.jetstack.io", "interval": "10m"}
            })
        );
        assert_eq!(
            objects[1],
            json!({
                "apiVersion": "helm.toolkit.fluxcd.io/v2",
                "kind": "HelmRelease",
                "metadata": {"name": "infra-cert-manager", "namespace": "flux-system"},
                "spec": {
                    "interval": "10m",
                    "releaseName": "infra-cert-manager",
                    "targetNamespace": "cert-manager",
                    "storageNamespace": "cert-manager",
                    "chart": {"spec": {
                        "chart": "cert-manager",
                        "version": "v1.16.2",
                        "sourceRef": {"kind": "HelmRepository", "name": "infra-cert-manager", "namespace": "flux-system"}
                    }},
                    "install": {"createNamespace": true, "crds": "CreateReplace", "remediation": {"retries": 3}},
                    "upgrade": {"crds": "CreateReplace", "remediation": {"retries": 3}},
                    "values": {"crds": {"enabled": true}, "replicaCount": 2}
                }
            })
        );
    }

    #[test]
    fn oci_repository_gives_oci_repository_and_chart_ref() {
        let mut c = component("oci://ghcr.io/example/charts", None);
        c.chart.chart = "podinfo";
        c.chart.version = "6.7.1";
        let objects = flux_objects(&c).unwrap();
        assert_eq!(
            objects[0],
            json!({
                "apiVersion": "source.toolkit.fluxcd.io/v1beta2",
                "kind": "OCIRepository",
                "metadata": {"name": "infra-cert-manager", "namespace": "flux-system"},
                "spec": {
                    "url": "oci://ghcr.io/example/charts/podinfo",
                    "interval": "10m",
                    "ref": {"tag": "6.7.1"},
                    "layerSelector": {"mediaType": "application/vnd.cncf.helm.chart.content.v1.tar+gzip", "operation": "copy"}
                }
            })
        );
        assert_eq!(
            objects[1]["spec"]["chartRef"],
            json!({"kind": "OCIRepository", "name": "infra-cert-manager", "namespace": "flux-system"})
        );
        assert!(objects[1]["spec"].get("chart").is_none());
        assert!(objects[1]["spec"].get("values").is_none());
    }

    #[test]
    fn oci_versions_that_are_not_tags_are_semver_ranges_and_empty_is_latest() {
        let mut c = component("oci://registry.example.com/charts/", None);
        c.chart.version = ">=1.2.0 <2.0.0";
        assert_eq!(flux_objects(&c).unwrap()[0]["spec"]["ref"], json!({"semver": ">=1.2.0 <2.0.0"}));
        c.chart.version = "1.2.*";
        assert_eq!(flux_objects(&c).unwrap()[0]["spec"]["ref"], json!({"semver": "1.2.*"}));
        c.chart.version = "";
        let objects = flux_objects(&c).unwrap();
        assert!(objects[0]["spec"].get("ref").is_none());
        assert_eq!(objects[0]["spec"]["url"], json!("oci://registry.example.com/charts/cert-manager"));
    }

    #[test]
    fn empty_version_is_left_to_flux_for_http_repositories() {
        let mut c = component("http://charts.internal", None);
        c.chart.version = "";
        let objects = flux_objects(&c).unwrap();
        assert!(objects[1]["spec"]["chart"]["spec"].get("version").is_none());
        assert_eq!(objects[0]["spec"]["url"], json!("http://charts.internal"));
    }

    #[test]
    fn dependencies_and_sensitive_keys() {
        let mut c = component("https://charts.example.com", Some("auth:\n  username: admin\n"));
        c.depends_on = vec!["cert-manager-crds", "ingress"];
        c.sensitive_keys = vec!["auth.password", "smtp_token"];
        c.values_secret_name = Some("prod.cert-manager.helm-values");
        let release = &flux_objects(&c).unwrap()[1];
        assert_eq!(
            release["spec"]["dependsOn"],
            json!([{"name": "infra-cert-manager-crds", "namespace": "flux-system"}, {"name": "infra-ingress", "namespace": "flux-system"}])
        );
        assert_eq!(
            release["spec"]["valuesFrom"],
            json!([
                {"kind": "Secret", "name": "prod.cert-manager.helm-values", "valuesKey": "auth.password", "targetPath": "auth.password"},
                {"kind": "Secret", "name": "prod.cert-manager.helm-values", "valuesKey": "smtp_token", "targetPath": "smtp_token"}
            ])
        );
    }

    #[test]
    fn values_must_be_a_mapping() {
        for (yaml, expected) in [
            ("- a\n- b\n", "values must be a YAML mapping of chart values, not a list"),
            ("hello\n", "values must be a YAML mapping of chart values, not a single value"),
        ] {
            assert_eq!(flux_objects(&component("https://c.example.com", Some(yaml))).unwrap_err(), expected);
        }
        let error = flux_objects(&component("https://c.example.com", Some("a: [1\n"))).unwrap_err();
        assert!(error.starts_with("values are not valid YAML: "), "{error}");
        let error = flux_objects(&component("https://c.example.com", Some("a: !secret x\n"))).unwrap_err();
        assert_eq!(error, "values: YAML tag !secret at a is not supported");
    }

    #[test]
    fn empty_values_are_left_out() {
        for yaml in ["", "# nothing\n", "null\n", "{}\n"] {
            let objects = flux_objects(&component("https://c.example.com", Some(yaml))).unwrap();
            assert!(objects[1]["spec"].get("values").is_none(), "{yaml:?}");
        }
    }

    #[test]
    fn all_problems_are_reported_without_quoting_urls_or_values() {
        let c = HelmComponent {
            stack: "infra",
            component: "Cert_Manager",
            flux_namespace: "flux_system",
            target_namespace: "",
            chart: HelmChart {
                repository: "ftp://user:hunter2@example.com",
                chart: "",
                version: "1",
                values_yaml: Some("password: hunter2\npassword: hunter2\n"),
                interval: "10 minutes",
            },
            depends_on: vec!["Bad"],
            sensitive_keys: vec!["auth..password", "ok", "ok", "a[0]"],
            values_secret_name: None,
        };
        let error = flux_objects(&c).unwrap_err();
        assert!(!error.contains("hunter2"), "{error}");
        let problems: Vec<&str> = error.split("; ").collect();
        assert_eq!(
            problems,
            [
                "component name \"Cert_Manager\" cannot name a Helm release: it must consist of lower case letters, digits and '-', and start and end with a letter or digit",
                "Flux namespace \"flux_system\" must consist of lower case letters, digits and '-', and start and end with a letter or digit",
                "target namespace \"\" must not be empty",
                "dependency \"Bad\" is not a Helm component name: it must consist of lower case letters, digits and '-', and start and end with a letter or digit",
                "interval \"10 minutes\" is not a duration such as \"30s\", \"10m\" or \"1h30m\"",
                "chart \"\" must be a chart name (or path in an OCI registry) without spaces",
                "values are not valid YAML: duplicate entry with key \"password\"",
                "sensitive values need a values Secret name",
                "sensitive key \"auth..password\" must not start or end with '.' or contain '..'",
                "sensitive key \"ok\" is listed twice",
                "sensitive key \"a[0]\" must be a dot path of letters, digits, '-' and '_' (such as auth.password)",
            ]
        );
    }

    #[test]
    fn repositories_need_a_known_scheme() {
        for repository in ["charts.example.com", "ftp://example.com", "https://", "oci://", "https://exa mple.com"] {
            let error = flux_objects(&component(repository, None)).unwrap_err();
            assert!(error.contains("repository URL"), "{repository}: {error}");
        }
    }

    #[test]
    fn object_names_are_per_stack_and_fit_a_helm_release_name() {
        assert_eq!(object_name("infra", "cert-manager"), "infra-cert-manager");
        assert_ne!(object_name("staging", "loki"), object_name("prod", "loki"));
        let long = "a".repeat(60);
        let (one, two) = (object_name("infra", &long), object_name("apps", &long));
        assert!(one.len() <= 53 && two.len() <= 53, "{one} {two}");
        assert_ne!(one, two);
        assert!(dns_label_problem(&one).is_none(), "{one}");
        let mut c = component("https://c.example.com", None);
        c.component = &long;
        let objects = flux_objects(&c).unwrap();
        assert_eq!(objects[1]["spec"]["releaseName"], json!(object_name("infra", &long)));
    }

    #[test]
    fn intervals_follow_the_flux_pattern() {
        for good in ["10m", "1h30m", "30s", "500ms", "1.5h", "0s", "1h0m0s"] {
            assert_eq!(interval_problem(good), None, "{good}");
        }
        for bad in ["", "10", "m", "1d", "1.h", ".5h", "10m ", "-1m", "1h30"] {
            assert!(interval_problem(bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn secret_names() {
        assert_eq!(values_secret_name("prod", "cert-manager"), "prod.cert-manager.helm-values");
        let odd = values_secret_name("Prod_EU", "cert manager");
        assert!(odd.starts_with("prod-eu.cert-manager.helm-values-"), "{odd}");
        assert_eq!(odd.len(), "prod-eu.cert-manager.helm-values-".len() + 12);
        // Names that clean up alike still get different Secrets.
        assert_ne!(values_secret_name("Prod_EU", "x"), values_secret_name("prod-eu_", "x"));
        assert_ne!(values_secret_name("a", ""), values_secret_name("", "a"));
        for (stack, component) in [("", ""), ("___", "---"), (&*"Z".repeat(400), &*"é".repeat(300)), ("a.b", "c")] {
            let name = values_secret_name(stack, component);
            assert!(name.len() <= 253, "{name}");
            assert!(is_dns_subdomain(&name), "{name}");
        }
    }

    fn is_dns_subdomain(name: &str) -> bool {
        name.len() <= 253 && name.split('.').all(|label| dns_label_problem(label).is_none())
    }

    /// Helm's `--set` value parsing as Flux applies it to a `valuesFrom` entry with a
    /// `targetPath` (quote stripping, then strvals' list detection, escape handling, ',' as
    /// the end of the value and typing), written from their documented behaviour, to check
    /// [`secret_value_for_target_path`] against.
    #[derive(Debug, PartialEq)]
    enum Parsed {
        Str(String),
        Typed(&'static str),
        List,
        /// The value ended at a ',' and more followed (another assignment).
        Cut(String),
    }

    fn helm_parse(raw: &str) -> Parsed {
        let is_quoted = |q: char| raw.starts_with(q) && raw.ends_with(q);
        let (text, as_string) = if is_quoted('\'') || is_quoted('"') {
            (raw.trim_matches(|c| c == '\'' || c == '"'), true)
        } else {
            (raw, false)
        };
        if text.starts_with('{') {
            return Parsed::List;
        }
        let mut value = String::new();
        let mut characters = text.chars();
        while let Some(c) = characters.next() {
            match c {
                '\\' => {
                    if let Some(next) = characters.next() {
                        value.push(next);
                    }
                }
                ',' => return Parsed::Cut(value),
                c => value.push(c),
            }
        }
        if !as_string {
            if value.eq_ignore_ascii_case("true") || value.eq_ignore_ascii_case("false") {
                return Parsed::Typed("bool");
            }
            if value.eq_ignore_ascii_case("null") {
                return Parsed::Typed("null");
            }
            if value == "0" || (!value.is_empty() && !value.starts_with('0') && value.parse::<i64>().is_ok()) {
                return Parsed::Typed("int");
            }
        }
        Parsed::Str(value)
    }

    #[test]
    fn the_model_of_helm_parsing_shows_why_encoding_is_needed() {
        assert_eq!(helm_parse("pa,ss"), Parsed::Cut("pa".into()));
        assert_eq!(helm_parse("True"), Parsed::Typed("bool"));
        assert_eq!(helm_parse("1234"), Parsed::Typed("int"));
        assert_eq!(helm_parse("0123"), Parsed::Str("0123".into()));
        assert_eq!(helm_parse("{a}"), Parsed::List);
        assert_eq!(helm_parse("'quoted'"), Parsed::Str("quoted".into()));
        assert_eq!(helm_parse("a\\b"), Parsed::Str("ab".into()));
    }

    #[test]
    fn secret_values_survive_helm_parsing_unchanged() {
        let samples = [
            "",
            "plain",
            "pa,ss,word",
            "true",
            "FALSE",
            "Null",
            "0",
            "00",
            "0123",
            "1234",
            "-5",
            "+5",
            "1.5",
            "1e3",
            "9223372036854775808",
            "{a,b}",
            "}{",
            "[0]",
            "'single'",
            "\"double\"",
            "'",
            "\"",
            "''",
            "it's",
            "say \"hi\"",
            "ends with '",
            "ends with \"",
            "back\\slash",
            "trailing\\",
            "\\",
            "x=y",
            "a.b",
            "multi\nline\n",
            "  spaced  ",
            "é,ü",
            "-----BEGIN KEY-----\nMII,==\n-----END KEY-----\n",
        ];
        for sample in samples {
            let encoded = secret_value_for_target_path(sample);
            assert_eq!(helm_parse(&encoded), Parsed::Str(sample.to_string()), "{sample:?} encoded as {encoded:?}");
        }
        assert_eq!(secret_value_for_target_path("plain"), "plain");
        assert_eq!(secret_value_for_target_path("true"), "\"true\"");
        assert_eq!(secret_value_for_target_path("a,b"), "a\\,b");
    }

    fn release(generation: i64, observed: Option<i64>, conditions: Value) -> Value {
        let mut status = json!({"conditions": conditions});
        if let Some(observed) = observed {
            status["observedGeneration"] = json!(observed);
        }
        json!({"apiVersion": HELM_RELEASE_API, "kind": HELM_RELEASE_KIND, "metadata": {"name": "x", "generation": generation}, "spec": {}, "status": status})
    }

    fn progressing(reason: &str, message: &str) -> ReleaseStatus {
        ReleaseStatus::Progressing { reason: reason.into(), message: message.into() }
    }

    #[test]
    fn ready_at_the_current_generation() {
        let object = release(
            2,
            Some(2),
            json!([
                {"type": "Ready", "status": "True", "reason": "UpgradeSucceeded", "message": "Helm upgrade succeeded", "observedGeneration": 2},
                {"type": "Released", "status": "True", "reason": "UpgradeSucceeded", "observedGeneration": 2}
            ]),
        );
        assert_eq!(release_status(&object), ReleaseStatus::Ready);
    }

    #[test]
    fn ready_from_an_older_generation_is_progressing() {
        let object = release(
            3,
            Some(2),
            json!([
                {"type": "Ready", "status": "True", "reason": "UpgradeSucceeded", "message": "done", "observedGeneration": 2}
            ]),
        );
        assert_eq!(
            release_status(&object),
            progressing(
                "Pending",
                "waiting for the controller to reconcile generation 3 (it last finished generation 2)"
            )
        );
    }

    #[test]
    fn no_status_yet_is_progressing() {
        let object = json!({"metadata": {"generation": 1}});
        assert_eq!(
            release_status(&object),
            progressing("Pending", "waiting for the controller to reconcile generation 1")
        );
        assert_eq!(
            release_status(&json!({})),
            progressing("Pending", "waiting for the controller to report readiness")
        );
        assert_eq!(
            release_status(&json!("garbage")),
            progressing("Pending", "waiting for the controller to report readiness")
        );
    }

    #[test]
    fn reconciling_is_progressing_with_its_message() {
        let object = release(
            1,
            None,
            json!([
                {"type": "Reconciling", "status": "True", "reason": "Progressing", "message": "Running 'install' action with timeout of 5m0s", "observedGeneration": 1},
                {"type": "Ready", "status": "Unknown", "reason": "Progressing", "message": "Running 'install' action with timeout of 5m0s", "observedGeneration": 1}
            ]),
        );
        assert_eq!(
            release_status(&object),
            progressing("Progressing", "Running 'install' action with timeout of 5m0s")
        );
    }

    #[test]
    fn a_failure_being_retried_is_progressing_with_the_failure() {
        let object = release(
            1,
            None,
            json!([
                {"type": "Reconciling", "status": "True", "reason": "ProgressingWithRetry", "message": "retrying", "observedGeneration": 1},
                {"type": "Ready", "status": "False", "reason": "InstallFailed", "message": "Helm install failed: timed out", "observedGeneration": 1},
                {"type": "Released", "status": "False", "reason": "InstallFailed", "observedGeneration": 1}
            ]),
        );
        assert_eq!(release_status(&object), progressing("InstallFailed", "Helm install failed: timed out"));
        let dependency = release(
            1,
            Some(1),
            json!([
                {"type": "Ready", "status": "False", "reason": "DependencyNotReady", "message": "dependency 'flux-system/crds' is not ready", "observedGeneration": 1}
            ]),
        );
        assert_eq!(
            release_status(&dependency),
            progressing("DependencyNotReady", "dependency 'flux-system/crds' is not ready")
        );
    }

    #[test]
    fn a_requested_reconciliation_counts_once_handled() {
        let release = |handled: Option<&str>| {
            let mut r = json!({"metadata": {"generation": 2, "annotations": {RECONCILE_REQUEST: "v=7"}},
                "status": {"observedGeneration": 2, "conditions": [{"type": "Ready", "status": "True", "reason": "UpgradeSucceeded"}]}});
            if let Some(h) = handled {
                r["status"]["lastHandledReconcileAt"] = json!(h);
            }
            r
        };
        assert!(matches!(release_status(&release(None)), ReleaseStatus::Progressing { .. }));
        assert!(matches!(release_status(&release(Some("v=6"))), ReleaseStatus::Progressing { message, .. } if message.contains("requested")));
        assert_eq!(release_status(&release(Some("v=7"))), ReleaseStatus::Ready);
    }

    #[test]
    fn stalled_is_failed() {
        let object = release(
            1,
            Some(1),
            json!([
                {"type": "Stalled", "status": "True", "reason": "RetriesExceeded", "message": "Failed to install after 3 attempt(s)", "observedGeneration": 1},
                {"type": "Ready", "status": "False", "reason": "InstallFailed", "message": "Helm install failed", "observedGeneration": 1}
            ]),
        );
        assert_eq!(
            release_status(&object),
            ReleaseStatus::Failed {
                reason: "RetriesExceeded".into(),
                message: "Failed to install after 3 attempt(s) (Ready=False, InstallFailed: Helm install failed)".into()
            }
        );
    }

    #[test]
    fn a_stall_from_an_older_generation_no_longer_counts() {
        let object = release(
            2,
            Some(1),
            json!([
                {"type": "Stalled", "status": "True", "reason": "RetriesExceeded", "message": "old", "observedGeneration": 1},
                {"type": "Ready", "status": "False", "reason": "InstallFailed", "message": "old failure", "observedGeneration": 1}
            ]),
        );
        assert_eq!(
            release_status(&object),
            progressing(
                "Pending",
                "waiting for the controller to reconcile generation 2 (it last finished generation 1)"
            )
        );
    }

    #[test]
    fn ready_while_reconciling_again_is_progressing() {
        let object = release(
            1,
            Some(1),
            json!([
                {"type": "Ready", "status": "True", "reason": "InstallSucceeded", "message": "ok", "observedGeneration": 1},
                {"type": "Reconciling", "status": "True", "reason": "Progressing", "message": "detecting drift", "observedGeneration": 1}
            ]),
        );
        assert_eq!(release_status(&object), progressing("Progressing", "detecting drift"));
    }

    #[test]
    fn suspended_and_not_ready_is_failed() {
        let mut object = release(2, Some(1), json!([]));
        object["spec"]["suspend"] = json!(true);
        assert!(matches!(release_status(&object), ReleaseStatus::Failed { reason, .. } if reason == "Suspended"));
        let mut ready = release(1, Some(1), json!([{"type": "Ready", "status": "True", "observedGeneration": 1}]));
        ready["spec"]["suspend"] = json!(true);
        assert_eq!(release_status(&ready), ReleaseStatus::Ready);
    }

    #[test]
    fn conditions_without_generations_are_taken_at_their_word() {
        // Older controllers did not set observedGeneration on conditions.
        let object =
            release(1, Some(1), json!([{"type": "Ready", "status": "True", "reason": "ReconciliationSucceeded"}]));
        assert_eq!(release_status(&object), ReleaseStatus::Ready);
    }
}
