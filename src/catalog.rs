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
//! The data is static and the module does no I/O.

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
    ENTRIES
}

/// The entry with this exact name, if any.
pub fn lookup(name: &str) -> Option<&'static CatalogEntry> {
    ENTRIES
        .binary_search_by(|entry| entry.name.cmp(name))
        .ok()
        .map(|i| &ENTRIES[i])
}

/// All catalog names, sorted.
pub fn names() -> impl Iterator<Item = &'static str> {
    ENTRIES.iter().map(|entry| entry.name)
}

const GRAFANA_REPO: &str = "https://grafana.github.io/helm-charts";
const ISTIO_REPO: &str = "https://istio-release.storage.googleapis.com/charts";
const ISTIO_VERSION: &str = "1.27.1";
const ROOK_REPO: &str = "https://charts.rook.io/release";
const ROOK_VERSION: &str = "v1.18.2";

// Keep sorted by `name`: `lookup` relies on it and a test checks it.
static ENTRIES: &[CatalogEntry] = &[
    CatalogEntry {
        name: "actions-runner-controller",
        description: "GitHub Actions Runner Controller (runner scale set controller); runner scale sets are installed separately with gha-runner-scale-set",
        repository: "oci://ghcr.io/actions/actions-runner-controller-charts",
        chart: "gha-runner-scale-set-controller",
        version: "0.12.1",
        namespace: "arc-systems",
        depends_on: &[],
        default_values: "",
        homepage: "https://github.com/actions/actions-runner-controller",
    },
    CatalogEntry {
        name: "cert-manager",
        description: "X.509 certificate management: issues and renews TLS certificates (ACME, CA, Vault) as Kubernetes resources",
        repository: "https://charts.jetstack.io",
        chart: "cert-manager",
        version: "v1.18.2",
        namespace: "cert-manager",
        depends_on: &[],
        default_values: "\
# Install (and keep on uninstall) the cert-manager CRDs with the chart.
crds:
  enabled: true
  keep: true
",
        homepage: "https://cert-manager.io",
    },
    CatalogEntry {
        name: "chaos-mesh",
        description: "Chaos engineering platform injecting pod, network, I/O and stress faults through CRDs",
        repository: "https://charts.chaos-mesh.org",
        chart: "chaos-mesh",
        version: "2.7.3",
        namespace: "chaos-mesh",
        depends_on: &[],
        default_values: "\
# The chart defaults to Docker; current clusters run containerd.
chaosDaemon:
  runtime: containerd
  socketPath: /run/containerd/containerd.sock
",
        homepage: "https://chaos-mesh.org",
    },
    CatalogEntry {
        name: "cilium",
        description: "eBPF-based CNI with network policy, load balancing, optional kube-proxy replacement and Hubble observability",
        repository: "https://helm.cilium.io",
        chart: "cilium",
        version: "1.18.2",
        namespace: "kube-system",
        depends_on: &[],
        default_values: "",
        homepage: "https://cilium.io",
    },
    CatalogEntry {
        name: "cloudflared",
        description: "Cloudflare Tunnel connector (cloudflared) for a remotely managed tunnel; set cloudflare.tunnel_token",
        repository: "https://cloudflare.github.io/helm-charts",
        chart: "cloudflare-tunnel-remote",
        version: "0.1.2",
        namespace: "cloudflared",
        depends_on: &[],
        default_values: "",
        homepage: "https://github.com/cloudflare/cloudflared",
    },
    CatalogEntry {
        name: "external-dns",
        description: "Publishes DNS records for Services, Ingresses and Gateway routes to external DNS providers; set provider.name",
        repository: "https://kubernetes-sigs.github.io/external-dns",
        chart: "external-dns",
        version: "1.19.0",
        namespace: "external-dns",
        depends_on: &[],
        default_values: "",
        homepage: "https://kubernetes-sigs.github.io/external-dns/",
    },
    CatalogEntry {
        name: "external-secrets",
        description: "External Secrets Operator: syncs secrets from Vault, cloud secret managers and others into Kubernetes Secrets",
        repository: "https://charts.external-secrets.io",
        chart: "external-secrets",
        version: "0.19.2",
        namespace: "external-secrets",
        depends_on: &[],
        default_values: "",
        homepage: "https://external-secrets.io",
    },
    CatalogEntry {
        name: "falco",
        description: "Runtime security: detects suspicious syscalls and container behaviour with eBPF rules",
        repository: "https://falcosecurity.github.io/charts",
        chart: "falco",
        version: "6.2.5",
        namespace: "falco",
        depends_on: &[],
        default_values: "",
        homepage: "https://falco.org",
    },
    CatalogEntry {
        name: "flagger",
        description: "Progressive delivery (canary, A/B, blue-green) driven by a service mesh or ingress; set meshProvider",
        repository: "https://flagger.app",
        chart: "flagger",
        version: "1.41.0",
        namespace: "flagger-system",
        depends_on: &[],
        default_values: "",
        homepage: "https://flagger.app",
    },
    CatalogEntry {
        name: "flux",
        description: "Flux GitOps controllers (source, kustomize, helm, notification, image automation) via the fluxcd-community flux2 chart",
        repository: "https://fluxcd-community.github.io/helm-charts",
        chart: "flux2",
        version: "2.16.4",
        namespace: "flux-system",
        depends_on: &[],
        default_values: "",
        homepage: "https://fluxcd.io",
    },
    CatalogEntry {
        name: "grafana",
        description: "Grafana dashboards and alerting (grafana/helm-charts release; the chart later moved to grafana-community)",
        repository: GRAFANA_REPO,
        chart: "grafana",
        version: "9.4.5",
        namespace: "monitoring",
        depends_on: &[],
        default_values: "",
        homepage: "https://grafana.com/oss/grafana/",
    },
    CatalogEntry {
        name: "ingress-nginx",
        description: "NGINX Ingress controller maintained by Kubernetes (upstream retired it; best-effort maintenance ended March 2026)",
        repository: "https://kubernetes.github.io/ingress-nginx",
        chart: "ingress-nginx",
        version: "4.13.2",
        namespace: "ingress-nginx",
        depends_on: &[],
        default_values: "",
        homepage: "https://kubernetes.github.io/ingress-nginx/",
    },
    CatalogEntry {
        name: "istio-base",
        description: "Istio base chart: cluster-wide CRDs and the validating webhook configuration istiod needs",
        repository: ISTIO_REPO,
        chart: "base",
        version: ISTIO_VERSION,
        namespace: "istio-system",
        depends_on: &[],
        default_values: "",
        homepage: "https://istio.io",
    },
    CatalogEntry {
        name: "istio-gateway",
        description: "Istio ingress gateway (Envoy deployment and LoadBalancer Service) configured by istiod",
        repository: ISTIO_REPO,
        chart: "gateway",
        version: ISTIO_VERSION,
        namespace: "istio-ingress",
        depends_on: &["istiod"],
        default_values: "",
        homepage: "https://istio.io",
    },
    CatalogEntry {
        name: "istiod",
        description: "Istio control plane (istiod): xDS, certificate authority and sidecar injection webhook",
        repository: ISTIO_REPO,
        chart: "istiod",
        version: ISTIO_VERSION,
        namespace: "istio-system",
        depends_on: &["istio-base"],
        default_values: "",
        homepage: "https://istio.io",
    },
    CatalogEntry {
        name: "k8s-gateway",
        description: "CoreDNS with the k8s_gateway plugin, answering for Ingress/Service/Gateway hostnames; set domain (project quiet since 2024)",
        repository: "https://ori-edge.github.io/k8s_gateway",
        chart: "k8s-gateway",
        version: "2.4.0",
        namespace: "kube-system",
        depends_on: &[],
        default_values: "",
        homepage: "https://github.com/ori-edge/k8s_gateway",
    },
    CatalogEntry {
        name: "keda",
        description: "Kubernetes Event-driven Autoscaling: scales workloads, to and from zero, on external event sources",
        repository: "https://kedacore.github.io/charts",
        chart: "keda",
        version: "2.17.2",
        namespace: "keda",
        depends_on: &[],
        default_values: "",
        homepage: "https://keda.sh",
    },
    CatalogEntry {
        name: "kube-prometheus-stack",
        description: "Prometheus Operator with Prometheus, Alertmanager, node-exporter, kube-state-metrics, Grafana and default rules",
        repository: "https://prometheus-community.github.io/helm-charts",
        chart: "kube-prometheus-stack",
        version: "77.6.2",
        namespace: "monitoring",
        depends_on: &[],
        default_values: "\
# Select ServiceMonitors, PodMonitors, Probes and rules from every release, not only this one.
prometheus:
  prometheusSpec:
    serviceMonitorSelectorNilUsesHelmValues: false
    podMonitorSelectorNilUsesHelmValues: false
    probeSelectorNilUsesHelmValues: false
    ruleSelectorNilUsesHelmValues: false
",
        homepage: "https://github.com/prometheus-community/helm-charts/tree/main/charts/kube-prometheus-stack",
    },
    CatalogEntry {
        name: "kyverno",
        description: "Kubernetes-native policy engine validating, mutating and generating resources through admission webhooks",
        repository: "https://kyverno.github.io/kyverno",
        chart: "kyverno",
        version: "3.5.2",
        namespace: "kyverno",
        depends_on: &[],
        default_values: "",
        homepage: "https://kyverno.io",
    },
    CatalogEntry {
        name: "loki",
        description: "Grafana Loki log store, here as a single binary on filesystem storage (switch to object storage to scale out)",
        repository: GRAFANA_REPO,
        chart: "loki",
        version: "6.41.0",
        namespace: "monitoring",
        depends_on: &[],
        default_values: "\
# The chart refuses to install without a schema and defaults to a scalable,
# object-storage deployment; start with one replica on a persistent volume.
deploymentMode: SingleBinary
loki:
  auth_enabled: false
  commonConfig:
    replication_factor: 1
  storage:
    type: filesystem
  schemaConfig:
    configs:
      - from: \"2024-04-01\"
        store: tsdb
        object_store: filesystem
        schema: v13
        index:
          prefix: loki_index_
          period: 24h
singleBinary:
  replicas: 1
read:
  replicas: 0
write:
  replicas: 0
backend:
  replicas: 0
# The memcached caches reserve several GiB by default.
chunksCache:
  enabled: false
resultsCache:
  enabled: false
",
        homepage: "https://grafana.com/oss/loki/",
    },
    CatalogEntry {
        name: "metallb",
        description: "Bare-metal LoadBalancer Service implementation (L2/ARP and BGP); address pools are configured with its CRDs",
        repository: "https://metallb.github.io/metallb",
        chart: "metallb",
        version: "0.15.2",
        namespace: "metallb-system",
        depends_on: &[],
        default_values: "",
        homepage: "https://metallb.io",
    },
    CatalogEntry {
        name: "metrics-server",
        description: "Resource metrics API (CPU/memory) for kubectl top and the Horizontal Pod Autoscaler",
        repository: "https://kubernetes-sigs.github.io/metrics-server",
        chart: "metrics-server",
        version: "3.13.0",
        namespace: "kube-system",
        depends_on: &[],
        default_values: "",
        homepage: "https://github.com/kubernetes-sigs/metrics-server",
    },
    CatalogEntry {
        name: "mimir",
        description: "Grafana Mimir long-term Prometheus metrics storage (mimir-distributed chart; bundles MinIO unless object storage is set)",
        repository: GRAFANA_REPO,
        chart: "mimir-distributed",
        version: "5.8.0",
        namespace: "monitoring",
        depends_on: &[],
        default_values: "",
        homepage: "https://grafana.com/oss/mimir/",
    },
    CatalogEntry {
        name: "mysql",
        description: "Oracle MySQL Operator for InnoDB Cluster (operator only; clusters via InnoDBCluster resources or the mysql-innodbcluster chart)",
        repository: "https://mysql.github.io/mysql-operator",
        chart: "mysql-operator",
        version: "2.2.2",
        namespace: "mysql-operator",
        depends_on: &[],
        default_values: "",
        homepage: "https://github.com/mysql/mysql-operator",
    },
    CatalogEntry {
        name: "openebs",
        description: "OpenEBS container storage: LocalPV hostpath, LVM and ZFS engines (replicated Mayastor disabled here)",
        repository: "https://openebs.github.io/openebs",
        chart: "openebs",
        version: "4.2.0",
        namespace: "openebs",
        depends_on: &[],
        default_values: "\
# Mayastor needs hugepages and NVMe-oF kernel support on every storage node.
engines:
  replicated:
    mayastor:
      enabled: false
",
        homepage: "https://openebs.io",
    },
    CatalogEntry {
        name: "opentelemetry-operator",
        description: "OpenTelemetry Operator managing collectors and auto-instrumentation; its webhooks use cert-manager certificates",
        repository: "https://open-telemetry.github.io/opentelemetry-helm-charts",
        chart: "opentelemetry-operator",
        version: "0.93.1",
        namespace: "opentelemetry-operator-system",
        depends_on: &["cert-manager"],
        default_values: "",
        homepage: "https://github.com/open-telemetry/opentelemetry-operator",
    },
    CatalogEntry {
        name: "promtail",
        description: "Promtail log shipper for Loki (deprecated upstream in favour of Grafana Alloy; pushes to loki-gateway in its namespace)",
        repository: GRAFANA_REPO,
        chart: "promtail",
        version: "6.17.0",
        namespace: "monitoring",
        depends_on: &[],
        default_values: "",
        homepage: "https://grafana.com/docs/loki/latest/send-data/promtail/",
    },
    CatalogEntry {
        name: "rabbitmq",
        description: "RabbitMQ Cluster and Messaging Topology operators (Bitnami chart, still published; images from bitnamilegacy)",
        repository: "oci://registry-1.docker.io/bitnamicharts",
        chart: "rabbitmq-cluster-operator",
        version: "4.4.34",
        namespace: "rabbitmq-system",
        depends_on: &[],
        default_values: "\
# Bitnami moved its versioned Debian images to docker.io/bitnamilegacy in
# August 2025; the chart must be told to accept them.
global:
  security:
    allowInsecureImages: true
rabbitmqImage:
  repository: bitnamilegacy/rabbitmq
credentialUpdaterImage:
  repository: bitnamilegacy/rmq-default-credential-updater
clusterOperator:
  image:
    repository: bitnamilegacy/rabbitmq-cluster-operator
msgTopologyOperator:
  image:
    repository: bitnamilegacy/rmq-messaging-topology-operator
",
        homepage: "https://github.com/rabbitmq/cluster-operator",
    },
    CatalogEntry {
        name: "redis",
        description: "Opstree (OT-Container-Kit) Redis operator for standalone, replication, sentinel and cluster Redis (operator only)",
        repository: "https://ot-container-kit.github.io/helm-charts",
        chart: "redis-operator",
        version: "0.22.1",
        namespace: "ot-operators",
        depends_on: &[],
        default_values: "",
        homepage: "https://github.com/OT-CONTAINER-KIT/redis-operator",
    },
    CatalogEntry {
        name: "reloader",
        description: "Stakater Reloader: rolls Deployments, StatefulSets and DaemonSets when their ConfigMaps or Secrets change",
        repository: "https://stakater.github.io/stakater-charts",
        chart: "reloader",
        version: "2.2.3",
        namespace: "reloader",
        depends_on: &[],
        default_values: "",
        homepage: "https://github.com/stakater/Reloader",
    },
    CatalogEntry {
        name: "rook-ceph",
        description: "Rook Ceph operator and CRDs (storage clusters come from rook-ceph-cluster)",
        repository: ROOK_REPO,
        chart: "rook-ceph",
        version: ROOK_VERSION,
        namespace: "rook-ceph",
        depends_on: &[],
        default_values: "",
        homepage: "https://rook.io",
    },
    CatalogEntry {
        name: "rook-ceph-cluster",
        description: "Ceph cluster managed by the Rook operator, with block, filesystem and object storage classes",
        repository: ROOK_REPO,
        chart: "rook-ceph-cluster",
        version: ROOK_VERSION,
        namespace: "rook-ceph",
        depends_on: &["rook-ceph"],
        default_values: "\
# Namespace where the rook-ceph operator runs.
operatorNamespace: rook-ceph
",
        homepage: "https://rook.io",
    },
    CatalogEntry {
        name: "sealed-secrets",
        description: "Bitnami Sealed Secrets controller: decrypts SealedSecret resources committed to Git into Secrets",
        repository: "https://bitnami-labs.github.io/sealed-secrets",
        chart: "sealed-secrets",
        version: "2.17.4",
        namespace: "kube-system",
        depends_on: &[],
        default_values: "\
# The name kubeseal looks for by default (in kube-system).
fullnameOverride: sealed-secrets-controller
",
        homepage: "https://github.com/bitnami-labs/sealed-secrets",
    },
    CatalogEntry {
        name: "spegel",
        description: "Stateless cluster-local OCI registry mirror sharing images between nodes through containerd",
        repository: "oci://ghcr.io/spegel-org/helm-charts",
        chart: "spegel",
        version: "0.4.0",
        namespace: "spegel",
        depends_on: &[],
        default_values: "",
        homepage: "https://github.com/spegel-org/spegel",
    },
    CatalogEntry {
        name: "strimzi-kafka-operator",
        description: "Strimzi operator running Apache Kafka clusters, topics and users declared as CRDs",
        repository: "oci://quay.io/strimzi-helm",
        chart: "strimzi-kafka-operator",
        version: "0.47.0",
        namespace: "kafka",
        depends_on: &[],
        default_values: "\
# Manage Kafka resources in every namespace, not only the operator's.
watchAnyNamespace: true
",
        homepage: "https://strimzi.io",
    },
    CatalogEntry {
        name: "system-upgrade-controller",
        description: "Rancher system-upgrade-controller running node upgrade Plans (k3s/RKE2/OS); Rancher's chart, fixed to cattle-system",
        repository: "https://charts.rancher.io",
        chart: "system-upgrade-controller",
        version: "104.0.0+up0.7.0",
        namespace: "cattle-system",
        depends_on: &[],
        default_values: "",
        homepage: "https://github.com/rancher/system-upgrade-controller",
    },
    CatalogEntry {
        name: "tailscale-operator",
        description: "Tailscale Kubernetes operator exposing Services and the API server on a tailnet; set oauth.clientId/clientSecret",
        repository: "https://pkgs.tailscale.com/helmcharts",
        chart: "tailscale-operator",
        version: "1.86.2",
        namespace: "tailscale",
        depends_on: &[],
        default_values: "",
        homepage: "https://tailscale.com/kb/1236/kubernetes-operator",
    },
    CatalogEntry {
        name: "tempo",
        description: "Grafana Tempo distributed tracing backend (single-binary chart)",
        repository: GRAFANA_REPO,
        chart: "tempo",
        version: "1.23.3",
        namespace: "monitoring",
        depends_on: &[],
        default_values: "",
        homepage: "https://grafana.com/oss/tempo/",
    },
    CatalogEntry {
        name: "traefik",
        description: "Traefik Proxy ingress controller with Ingress, IngressRoute and Gateway API support",
        repository: "https://traefik.github.io/charts",
        chart: "traefik",
        version: "37.1.1",
        namespace: "traefik",
        depends_on: &[],
        default_values: "",
        homepage: "https://traefik.io",
    },
    CatalogEntry {
        name: "trivy-operator",
        description: "Aqua Trivy operator: continuous vulnerability, misconfiguration and secret scanning reported as CRDs",
        repository: "https://aquasecurity.github.io/helm-charts",
        chart: "trivy-operator",
        version: "0.30.0",
        namespace: "trivy-system",
        depends_on: &[],
        default_values: "",
        homepage: "https://github.com/aquasecurity/trivy-operator",
    },
    CatalogEntry {
        name: "velero",
        description: "Backup and restore of cluster resources and volumes to object storage; configure a backup storage location",
        repository: "https://vmware-tanzu.github.io/helm-charts",
        chart: "velero",
        version: "10.1.3",
        namespace: "velero",
        depends_on: &[],
        default_values: "",
        homepage: "https://velero.io",
    },
    CatalogEntry {
        name: "volsync",
        description: "Asynchronous PersistentVolume replication and backup (restic, rclone, rsync) driven by CRDs",
        repository: "https://backube.github.io/helm-charts",
        chart: "volsync",
        version: "0.13.1",
        namespace: "volsync-system",
        depends_on: &[],
        default_values: "",
        homepage: "https://github.com/backube/volsync",
    },
];

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
