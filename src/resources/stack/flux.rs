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
//! source-controller's `source.toolkit.fluxcd.io/v1` HelmRepository and OCIRepository
//! (`v1beta2` before Flux 2.6: see [`oci_repository_api`]).

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::helm_values::{parse_values, values_from};
use crate::resources::metadata::dns1123_label_problem as dns_label_problem;

pub const HELM_RELEASE_API: &str = "helm.toolkit.fluxcd.io/v2";
pub const HELM_RELEASE_KIND: &str = "HelmRelease";
pub const HELM_REPOSITORY_API: &str = "source.toolkit.fluxcd.io/v1";
pub const HELM_REPOSITORY_KIND: &str = "HelmRepository";
/// OCIRepository as every Flux since 2.0 serves it; rendered so, and written at
/// [`OCI_REPOSITORY_API_V1`] where the cluster serves that (see [`oci_repository_api`]).
pub const OCI_REPOSITORY_API: &str = "source.toolkit.fluxcd.io/v1beta2";
/// OCIRepository's stable version, from Flux 2.6 on (which still serves `v1beta2`).
pub const OCI_REPOSITORY_API_V1: &str = "source.toolkit.fluxcd.io/v1";
pub const OCI_REPOSITORY_KIND: &str = "OCIRepository";
const SOURCE_GROUP: &str = "source.toolkit.fluxcd.io";

/// Whether a CRD manifest defines OCIRepository: then `Some(serves v1)`.
pub fn crd_serves_oci_v1(crd: &Value) -> Option<bool> {
    let spec = &crd["spec"];
    if spec["group"] != SOURCE_GROUP || spec["names"]["kind"] != OCI_REPOSITORY_KIND {
        return None;
    }
    let versions = spec["versions"].as_array()?;
    Some(versions.iter().any(|v| v["name"] == "v1" && v["served"] == true))
}

/// The API version to write OCIRepositories at: `v1` when the cluster serves it, else
/// `v1beta2`. `served_v1` says whether it does: from the OCIRepository CRD the same stack
/// applies when it has one (that CRD is what will be served), else from the cluster.
pub fn oci_repository_api(served_v1: bool) -> &'static str {
    if served_v1 { OCI_REPOSITORY_API_V1 } else { OCI_REPOSITORY_API }
}
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
/// On a HelmRelease of an OCI chart pinned to a tag: the chart version the apply wants Helm
/// to use (helm-controller reports the one it used in `status.lastAttemptedRevision`).
pub const CHART_VERSION_ANNOTATION: &str = "platform.terraform.io/chart-version";

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
    pub options: &'a HelmOptions,
    /// The stack's HelmRepository the chart comes from (see `repositories`), instead of a
    /// source of the component's own made from `repository`.
    pub shared_source: Option<&'a str>,
}

/// What a `helm` block may set beyond the chart; each unset one keeps our default.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HelmOptions {
    /// Helm's release name; default [`object_name`]. Changing it makes Flux uninstall the old
    /// release and install a new one.
    pub release_name: Option<String>,
    /// How long Helm may take for an install, upgrade or rollback (a Flux duration).
    pub timeout: Option<String>,
    /// Remediation retries of failed installs and upgrades (default 3).
    pub retries: Option<i64>,
    /// CRDs of the chart's crds/ directory on install and upgrade: `Create`, `CreateReplace`
    /// (default) or `Skip`.
    pub crds: Option<String>,
    /// ConfigMaps and Secrets the values are also taken from (Flux's `valuesFrom`), in order,
    /// before the stack's own sensitive values.
    pub values_from: Vec<ValuesReference>,
    /// Install and upgrade without Helm's wait for the release's resources (Flux's
    /// `disableWait`): the release is Ready once Helm has applied it.
    pub disable_wait: bool,
}

/// One of [`HelmOptions::values_from`].
#[derive(Clone, Debug, PartialEq)]
pub struct ValuesReference {
    /// `ConfigMap` or `Secret`, in the Flux namespace.
    pub kind: String,
    pub name: String,
    /// The key holding the values (Flux's default `values.yaml`).
    pub values_key: Option<String>,
    /// Where in the values the key's content goes (a dot path); the whole values when unset.
    pub target_path: Option<String>,
    /// Whether a missing object or key is ignored rather than failing the release.
    pub optional: bool,
}

const CRDS_POLICIES: [&str; 3] = ["Create", "CreateReplace", "Skip"];

impl HelmOptions {
    fn problems(&self, problems: &mut Vec<String>) {
        if let Some(name) = &self.release_name {
            if let Some(problem) = dns_label_problem(name) {
                problems.push(format!("release_name {name:?} {problem}"));
            } else if name.len() > RELEASE_NAME_MAX {
                problems.push(format!("release_name {name:?} is longer than Helm's {RELEASE_NAME_MAX} characters"));
            }
        }
        if let Some(problem) = self.timeout.as_deref().and_then(interval_problem) {
            problems.push(format!("timeout {:?} {problem}", self.timeout.as_deref().unwrap_or_default()));
        }
        if let Some(retries) = self.retries.filter(|r| !(0..=100).contains(r)) {
            problems.push(format!("remediation_retries {retries} must be between 0 and 100"));
        }
        if let Some(crds) = self.crds.as_deref().filter(|c| !CRDS_POLICIES.contains(c)) {
            problems.push(format!("crds {crds:?} must be one of {}", CRDS_POLICIES.join(", ")));
        }
        for reference in &self.values_from {
            if !["ConfigMap", "Secret"].contains(&reference.kind.as_str()) {
                problems.push(format!("values_from kind {:?} must be ConfigMap or Secret", reference.kind));
            }
            if let Some(problem) = crate::resources::metadata::dns1123_subdomain_problem(&reference.name) {
                problems.push(format!("values_from name {:?} {problem}", reference.name));
            }
        }
    }

    fn references(&self) -> Vec<Value> {
        self.values_from
            .iter()
            .map(|r| {
                let mut reference = json!({"kind": r.kind, "name": r.name});
                if let Some(key) = &r.values_key {
                    reference["valuesKey"] = json!(key);
                }
                if let Some(path) = &r.target_path {
                    reference["targetPath"] = json!(path);
                }
                if r.optional {
                    reference["optional"] = json!(true);
                }
                reference
            })
            .collect()
    }
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
    c.chart.options.problems(&mut problems);
    let source = match c.chart.shared_source {
        Some(name) => match chart_name_problem(c.chart.chart) {
            Some(problem) => {
                problems.push(problem);
                None
            }
            None => Some(ChartSource::Shared { name: name.to_string() }),
        },
        None => chart_source(c).map_err(|problem| problems.push(problem)).ok(),
    };
    let values = parse_values(c.chart.values_yaml).map_err(|problem| problems.push(problem)).ok().flatten();
    let values_from = values_from(c).map_err(|mut found| problems.append(&mut found)).ok();
    let (Some(source), Some(values_from)) = (source, values_from) else { return Err(problems.join("; ")) };
    if !problems.is_empty() {
        return Err(problems.join("; "));
    }

    let name = object_name(c.stack, c.component);
    let metadata = json!({"name": name, "namespace": c.flux_namespace});
    let (source_object, chart_reference) = match source {
        ChartSource::Shared { name: shared } => {
            let mut chart_spec = json!({
                "chart": c.chart.chart,
                "sourceRef": {"kind": HELM_REPOSITORY_KIND, "name": shared, "namespace": c.flux_namespace},
            });
            if !c.chart.version.is_empty() {
                chart_spec["version"] = json!(c.chart.version);
            }
            (None, ("chart", json!({"spec": chart_spec})))
        }
        ChartSource::HelmRepository { url } => (
            Some(json!({
                "apiVersion": HELM_REPOSITORY_API,
                "kind": HELM_REPOSITORY_KIND,
                "metadata": metadata,
                "spec": {"url": url, "interval": c.chart.interval},
            })),
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
                Some(json!({"apiVersion": OCI_REPOSITORY_API, "kind": OCI_REPOSITORY_KIND, "metadata": metadata, "spec": spec})),
                ("chartRef", json!({"kind": OCI_REPOSITORY_KIND, "name": name, "namespace": c.flux_namespace})),
            )
        }
    };

    let options = c.chart.options;
    let remediation = json!({"retries": options.retries.unwrap_or(REMEDIATION_RETRIES.into())});
    let crds = options.crds.as_deref().unwrap_or(CRDS_POLICY);
    let mut spec = json!({
        "interval": c.chart.interval,
        "releaseName": options.release_name.as_deref().unwrap_or(&name),
        "targetNamespace": c.target_namespace,
        "storageNamespace": c.target_namespace,
        "install": {"createNamespace": true, "crds": crds, "remediation": remediation},
        "upgrade": {"crds": crds, "remediation": remediation},
    });
    if options.disable_wait {
        spec["install"]["disableWait"] = json!(true);
        spec["upgrade"]["disableWait"] = json!(true);
    }
    if let Some(timeout) = &options.timeout {
        spec["timeout"] = json!(timeout);
    }
    spec[chart_reference.0] = chart_reference.1;
    if let Some(values) = values {
        spec["values"] = values;
    }
    if !c.depends_on.is_empty() {
        spec["dependsOn"] =
            c.depends_on.iter().map(|d| json!({"name": object_name(c.stack, d), "namespace": c.flux_namespace})).collect();
    }
    let values_from: Vec<Value> = options.references().into_iter().chain(values_from).collect();
    if !values_from.is_empty() {
        spec["valuesFrom"] = Value::Array(values_from);
    }
    let mut release = json!({
        "apiVersion": HELM_RELEASE_API,
        "kind": HELM_RELEASE_KIND,
        "metadata": {"name": name, "namespace": c.flux_namespace},
        "spec": spec,
    });
    // An OCI chart's version lives in the OCIRepository: the HelmRelease's spec does not
    // change with it, so its status says nothing of the new version. The annotation lets
    // readiness wait for Helm to use it (see `readiness::release_status`).
    // Only an OCIRepository has a `ref`.
    let pinned = source_object.as_ref().and_then(|s| s["spec"]["ref"]["tag"].as_str());
    if let Some(version) = pinned {
        release["metadata"]["annotations"] = json!({ CHART_VERSION_ANNOTATION: version });
    }
    Ok(source_object.into_iter().chain([release]).collect())
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
pub(super) fn interval_problem(interval: &str) -> Option<&'static str> {
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
    /// A HelmRepository of the stack's, by name.
    Shared {
        name: String,
    },
    /// `reference`: the OCIRepository `ref`, or `None` for the latest tag.
    OciRepository {
        url: String,
        reference: Option<Value>,
    },
}

fn chart_name_problem(chart: &str) -> Option<String> {
    (chart.is_empty() || chart.contains(char::is_whitespace) || chart.starts_with('/') || chart.ends_with('/'))
        .then(|| format!("chart {chart:?} must be a chart name (or path in an OCI registry) without spaces"))
}

fn chart_source(c: &HelmComponent) -> Result<ChartSource, String> {
    let chart = c.chart.chart;
    if let Some(problem) = chart_name_problem(chart) {
        return Err(problem);
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

/// `text` made a DNS label: lower case, other characters replaced by '-', at most 63
/// characters, starting and ending with a letter or digit ("x" if nothing is left).
pub(super) fn safe_label(text: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    static NO_OPTIONS: HelmOptions =
        HelmOptions { release_name: None, timeout: None, retries: None, crds: None, values_from: Vec::new(), disable_wait: false };

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
                options: &NO_OPTIONS,
                shared_source: None,
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
    fn oci_repository_is_written_at_v1_where_a_crd_serves_it() {
        let crd = |versions: Value| {
            json!({"spec": {"group": "source.toolkit.fluxcd.io", "names": {"kind": "OCIRepository"}, "versions": versions}})
        };
        let flux_2_6 = crd(json!([{"name": "v1", "served": true}, {"name": "v1beta2", "served": true}]));
        let flux_2_4 = crd(json!([{"name": "v1beta2", "served": true}]));
        let v1_not_served = crd(json!([{"name": "v1", "served": false}, {"name": "v1beta2", "served": true}]));
        assert_eq!(crd_serves_oci_v1(&flux_2_6), Some(true));
        assert_eq!(crd_serves_oci_v1(&flux_2_4), Some(false));
        assert_eq!(crd_serves_oci_v1(&v1_not_served), Some(false));
        let helm_repositories =
            json!({"spec": {"group": "source.toolkit.fluxcd.io", "names": {"kind": "HelmRepository"}, "versions": []}});
        assert_eq!(crd_serves_oci_v1(&helm_repositories), None);
        assert_eq!(oci_repository_api(true), "source.toolkit.fluxcd.io/v1");
        assert_eq!(oci_repository_api(false), "source.toolkit.fluxcd.io/v1beta2");
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
        assert_eq!(objects[1]["metadata"]["annotations"], json!({"platform.terraform.io/chart-version": "6.7.1"}));
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
                options: &NO_OPTIONS,
                shared_source: None,
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
}
