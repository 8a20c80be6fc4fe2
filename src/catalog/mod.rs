//! Built-in catalog of platform components: the Helm charts people usually install on a
//! self-hosted Kubernetes cluster (CNI, ingress, certificates, DNS, storage, backups,
//! observability, policy, operators, ...).
//!
//! Each [`CatalogEntry`] supplies the defaults behind `component { catalog = "cert-manager" }`
//! in a `platform_stack` resource (chart repository, chart name, pinned chart version, target
//! namespace, the other catalog components that must be installed first, and the few Helm
//! values needed for a working install) and is what the `platform_catalog` data source lists.
//! Anything set in the component's own `helm` block or `namespace` overrides the entry, and
//! the component's Helm values are merged over [`CatalogEntry::default_values`].
//!
//! Conventions:
//! - `repository` is either an HTTP(S) Helm repository (`https://...`, the URL given to
//!   `helm repo add`) or an OCI registry path (`oci://...`). For OCI charts the full chart
//!   reference is `{repository}/{chart}`, as in `helm install NAME oci://host/path/chart`
//!   (see [`CatalogEntry::oci_reference`]). Repository URLs carry no trailing slash.
//! - `version` is a chart version published in that repository (not the app version).
//! - `depends_on` lists only hard install-time needs: CRDs another chart's resources use, or
//!   webhooks/issuers that must answer before this chart can be applied. Soft relations
//!   (for example promtail shipping logs to loki) are not encoded.
//!
//! The entries are data, in `components.yaml` beside this file: embedded in the binary,
//! parsed on first use, and checked entry by entry by the unit tests below, so a bad edit
//! fails `cargo test`, never a provider run. The module does no I/O.

use std::sync::OnceLock;

use serde::Deserialize;

/// The catalog's data, sorted by name.
const COMPONENTS: &str = include_str!("components.yaml");

/// One installable component: a Helm chart plus the defaults used to install it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CatalogEntry {
    /// Catalog key, a DNS-1123 label such as `cert-manager` or `istio-base`.
    pub name: &'static str,
    /// One-line summary.
    pub description: &'static str,
    /// `https://...` Helm repository, or `oci://...` registry path for OCI charts.
    pub repository: &'static str,
    /// Chart name in that repository.
    pub chart: &'static str,
    /// Pinned default chart version.
    pub version: &'static str,
    /// Conventional target namespace.
    pub namespace: &'static str,
    /// Catalog names that must be installed before this one.
    pub depends_on: &'static [&'static str],
    /// Helm values (YAML, possibly empty) needed for a sane install.
    pub default_values: &'static str,
    /// Project home page.
    pub homepage: &'static str,
}

impl CatalogEntry {
    /// Whether the chart is pulled from an OCI registry rather than an HTTP(S) repository.
    pub fn is_oci(&self) -> bool {
        self.repository.starts_with("oci://")
    }

    /// Full `oci://` reference of the chart (`{repository}/{chart}`), for OCI charts only.
    pub fn oci_reference(&self) -> Option<String> {
        self.is_oci()
            .then(|| format!("{}/{}", self.repository.trim_end_matches('/'), self.chart))
    }
}

/// Every catalog entry, sorted by name.
pub fn entries() -> &'static [CatalogEntry] {
    static ENTRIES: OnceLock<Vec<CatalogEntry>> = OnceLock::new();
    ENTRIES.get_or_init(|| parse(COMPONENTS).unwrap_or_else(|e| panic!("src/catalog/components.yaml: {e}")))
}

/// The entry with this exact name, if any.
pub fn lookup(name: &str) -> Option<&'static CatalogEntry> {
    let entries = entries();
    entries.binary_search_by(|entry| entry.name.cmp(name)).ok().map(|i| &entries[i])
}

/// All catalog names, sorted.
pub fn names() -> impl Iterator<Item = &'static str> {
    entries().iter().map(|entry| entry.name)
}

/// An entry as `components.yaml` spells it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileEntry {
    name: String,
    description: String,
    repository: String,
    chart: String,
    version: String,
    namespace: String,
    #[serde(default)]
    depends_on: Vec<String>,
    #[serde(default)]
    default_values: String,
    homepage: String,
}

/// Parses the catalog file. Its strings are leaked into `&'static str`: the catalog is read
/// once and lives as long as the process, so its entries can be lent out for `'static`.
fn parse(text: &str) -> Result<Vec<CatalogEntry>, serde_yaml::Error> {
    let entries: Vec<FileEntry> = serde_yaml::from_str(text)?;
    let leak = |s: String| -> &'static str { s.leak() };
    Ok(entries
        .into_iter()
        .map(|e| CatalogEntry {
            name: leak(e.name),
            description: leak(e.description),
            repository: leak(e.repository),
            chart: leak(e.chart),
            version: leak(e.version),
            namespace: leak(e.namespace),
            depends_on: e.depends_on.into_iter().map(leak).collect::<Vec<_>>().leak(),
            default_values: leak(e.default_values),
            homepage: leak(e.homepage),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeSet, HashMap};

    /// The components the provider documents as available from the catalog.
    const REQUIRED: &[&str] = &[
        "cert-manager",
        "cilium",
        "ingress-nginx",
        "traefik",
        "metallb",
        "external-dns",
        "k8s-gateway",
        "cloudflared",
        "metrics-server",
        "reloader",
        "kube-prometheus-stack",
        "loki",
        "promtail",
        "tempo",
        "mimir",
        "grafana",
        "opentelemetry-operator",
        "velero",
        "volsync",
        "rook-ceph",
        "rook-ceph-cluster",
        "openebs",
        "sealed-secrets",
        "external-secrets",
        "kyverno",
        "falco",
        "trivy-operator",
        "chaos-mesh",
        "system-upgrade-controller",
        "keda",
        "flagger",
        "istio-base",
        "istiod",
        "istio-gateway",
        "redis",
        "mysql",
        "rabbitmq",
        "strimzi-kafka-operator",
        "spegel",
        "tailscale-operator",
        "actions-runner-controller",
        "flux",
    ];

    fn is_dns_label(s: &str) -> bool {
        let b = s.as_bytes();
        !b.is_empty()
            && b.len() <= 63
            && b.iter()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
            && b[0].is_ascii_alphanumeric()
            && b[b.len() - 1].is_ascii_alphanumeric()
    }

    /// Digits only, no leading zero unless the number is `0`.
    fn is_numeric_identifier(s: &str) -> bool {
        !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()) && (s == "0" || !s.starts_with('0'))
    }

    fn are_identifiers(s: &str) -> bool {
        s.split('.')
            .all(|id| !id.is_empty() && id.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-'))
    }

    /// SemVer 2.0 `MAJOR.MINOR.PATCH[-pre][+build]`, optionally with a leading `v`.
    fn is_semver(version: &str) -> bool {
        let v = version.strip_prefix('v').unwrap_or(version);
        let (v, build) = match v.split_once('+') {
            Some((v, build)) => (v, Some(build)),
            None => (v, None),
        };
        let (core, pre) = match v.split_once('-') {
            Some((core, pre)) => (core, Some(pre)),
            None => (v, None),
        };
        let parts: Vec<&str> = core.split('.').collect();
        parts.len() == 3
            && parts.iter().all(|p| is_numeric_identifier(p))
            && pre.is_none_or(are_identifiers)
            && build.is_none_or(are_identifiers)
    }

    #[test]
    fn the_file_parses() {
        let parsed = parse(COMPONENTS).unwrap_or_else(|e| panic!("components.yaml: {e}"));
        assert_eq!(parsed, entries());
        let unknown_field = "- name: x\n  description: d\n  repository: oci://r\n  chart: c\n  version: \"1.0.0\"\n  \
                             namespace: n\n  homepage: https://h\n  dependson: [y]\n";
        assert!(parse(unknown_field).unwrap_err().to_string().contains("dependson"));
    }

    #[test]
    fn semver_checker_itself() {
        for ok in [
            "1.2.3",
            "v1.18.2",
            "0.0.1",
            "104.0.0+up0.7.0",
            "5.8.0-weekly.356",
            "1.0.0-rc.1+b.5",
        ] {
            assert!(is_semver(ok), "{ok} should be accepted");
        }
        for bad in [
            "",
            "1.2",
            "1.2.3.4",
            "01.2.3",
            "1.2.x",
            "latest",
            "v",
            "1.2.3-",
            "1.2.3+",
            "1.2.3-a..b",
            "V1.2.3",
        ] {
            assert!(!is_semver(bad), "{bad} should be rejected");
        }
    }

    #[test]
    fn names_are_sorted_unique_dns_labels() {
        for pair in entries().windows(2) {
            assert!(
                pair[0].name < pair[1].name,
                "{} must sort strictly before {}",
                pair[0].name,
                pair[1].name
            );
        }
        for e in entries() {
            assert!(
                is_dns_label(e.name),
                "{}: name is not a lowercase DNS-1123 label",
                e.name
            );
        }
    }

    #[test]
    fn required_components_are_present() {
        let missing: Vec<&str> = REQUIRED
            .iter()
            .copied()
            .filter(|n| lookup(n).is_none())
            .collect();
        assert!(missing.is_empty(), "missing catalog entries: {missing:?}");
    }

    #[test]
    fn lookup_and_names_agree_with_entries() {
        assert_eq!(names().count(), entries().len());
        for (name, e) in names().zip(entries()) {
            assert_eq!(name, e.name);
            assert_eq!(lookup(name), Some(e));
        }
        for unknown in [
            "",
            "Cert-Manager",
            "cert-manage",
            "cert-manager ",
            "zzz",
            "aaa",
        ] {
            assert!(lookup(unknown).is_none(), "{unknown:?} should not be found");
        }
    }

    #[test]
    fn dependencies_exist_and_are_acyclic() {
        for e in entries() {
            let distinct: BTreeSet<&str> = e.depends_on.iter().copied().collect();
            assert_eq!(
                distinct.len(),
                e.depends_on.len(),
                "{}: duplicate depends_on",
                e.name
            );
            for d in e.depends_on {
                assert_ne!(*d, e.name, "{} depends on itself", e.name);
                assert!(lookup(d).is_some(), "{} depends on unknown {d:?}", e.name);
            }
        }
        // Depth-first search with colours: 1 = on the current path, 2 = done.
        fn visit(
            name: &'static str,
            colour: &mut HashMap<&'static str, u8>,
            path: &mut Vec<&'static str>,
        ) {
            match colour.get(name) {
                Some(2) => return,
                Some(1) => panic!("dependency cycle: {} -> {name}", path.join(" -> ")),
                _ => {}
            }
            colour.insert(name, 1);
            path.push(name);
            for d in lookup(name).expect("checked above").depends_on {
                visit(d, colour, path);
            }
            path.pop();
            colour.insert(name, 2);
        }
        let mut colour = HashMap::new();
        for e in entries() {
            visit(e.name, &mut colour, &mut Vec::new());
        }
    }

    #[test]
    fn known_hard_dependencies() {
        let deps = |n: &str| lookup(n).unwrap().depends_on;
        assert_eq!(deps("istiod"), ["istio-base"]);
        assert_eq!(deps("istio-gateway"), ["istiod"]);
        assert_eq!(deps("rook-ceph-cluster"), ["rook-ceph"]);
        assert_eq!(deps("opentelemetry-operator"), ["cert-manager"]);
        assert!(deps("kube-prometheus-stack").is_empty());
        assert!(deps("promtail").is_empty());
    }

    #[test]
    fn repositories_charts_and_homepages_are_well_formed() {
        for e in entries() {
            assert!(
                e.repository.starts_with("https://") || e.repository.starts_with("oci://"),
                "{}: repository {:?} must start with https:// or oci://",
                e.name,
                e.repository
            );
            assert!(
                !e.repository.ends_with('/'),
                "{}: repository has a trailing slash",
                e.name
            );
            assert!(
                !e.repository.contains(char::is_whitespace),
                "{}: whitespace in repository",
                e.name
            );
            assert!(
                is_dns_label(e.chart),
                "{}: chart {:?} is not a plain chart name",
                e.name,
                e.chart
            );
            assert!(
                e.homepage.starts_with("https://"),
                "{}: homepage must be https",
                e.name
            );
            assert!(
                !e.description.trim().is_empty(),
                "{}: empty description",
                e.name
            );
            assert!(
                !e.description.contains('\n'),
                "{}: description must be one line",
                e.name
            );
        }
    }

    #[test]
    fn oci_entries() {
        for name in [
            "actions-runner-controller",
            "spegel",
            "strimzi-kafka-operator",
            "rabbitmq",
        ] {
            assert!(lookup(name).unwrap().is_oci(), "{name} is an OCI chart");
        }
        assert!(!lookup("cilium").unwrap().is_oci());
        assert_eq!(lookup("cilium").unwrap().oci_reference(), None);
        assert_eq!(
            lookup("spegel").unwrap().oci_reference().as_deref(),
            Some("oci://ghcr.io/spegel-org/helm-charts/spegel")
        );
        assert_eq!(
            lookup("actions-runner-controller").unwrap().oci_reference().as_deref(),
            Some("oci://ghcr.io/actions/actions-runner-controller-charts/gha-runner-scale-set-controller")
        );
    }

    #[test]
    fn versions_look_like_semver() {
        for e in entries() {
            assert!(
                is_semver(e.version),
                "{}: version {:?} is not semver",
                e.name,
                e.version
            );
        }
    }

    #[test]
    fn namespaces_are_dns_labels() {
        for e in entries() {
            assert!(
                is_dns_label(e.namespace),
                "{}: namespace {:?} is not a DNS-1123 label",
                e.name,
                e.namespace
            );
        }
    }

    #[test]
    fn default_values_are_yaml_mappings() {
        for e in entries() {
            let parsed: serde_yaml::Value = serde_yaml::from_str(e.default_values)
                .unwrap_or_else(|err| panic!("{}: default_values is not YAML: {err}", e.name));
            assert!(
                parsed.is_null() || parsed.is_mapping(),
                "{}: default_values must be empty or a mapping, got {parsed:?}",
                e.name
            );
            assert!(
                !e.default_values.contains('\t'),
                "{}: tab in default_values",
                e.name
            );
        }
        let cert_manager: serde_yaml::Value =
            serde_yaml::from_str(lookup("cert-manager").unwrap().default_values).unwrap();
        assert_eq!(
            cert_manager["crds"]["enabled"],
            serde_yaml::Value::Bool(true)
        );
        let loki: serde_yaml::Value =
            serde_yaml::from_str(lookup("loki").unwrap().default_values).unwrap();
        assert_eq!(
            loki["loki"]["schemaConfig"]["configs"][0]["from"].as_str(),
            Some("2024-04-01")
        );
    }
}
