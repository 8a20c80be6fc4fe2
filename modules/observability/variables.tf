variable "cluster" {
  type        = map(string)
  sensitive   = true
  default     = null
  description = "Connection to the cluster (the `cluster` map of the provider's resources: host, token, cluster_ca_certificate, kubeconfig, ...), e.g. the `connection` of a `platform_k3s_cluster` of the same apply. `null` uses the provider's `kubernetes` block."
}

variable "name" {
  type        = string
  default     = "observability"
  description = "Name of the module's `platform_stack`; its Helm releases are `<name>-<component>` (`observability-loki`, ...), which also names their Services."
}

variable "flux_namespace" {
  type        = string
  default     = "flux-system"
  description = "Flux's namespace, where the HelmRepositories, HelmReleases and the Grafana password's values Secret go. Pass `module.gitops.flux_namespace` so that the charts wait for Flux."
}

variable "grafana_admin_password" {
  type        = string
  sensitive   = true
  description = "Password of Grafana's `admin` user. Reaches the chart through the stack's `sensitive_values` (a Secret in the Flux namespace), never through plans."
}

variable "grafana_hostname" {
  type        = string
  default     = null
  description = "Host name of an Ingress for Grafana, e.g. `grafana.home.example.com`; `null`: no Ingress (reach Grafana through its Service)."
}

variable "ingress_class" {
  type        = string
  default     = null
  description = "`ingressClassName` of the Grafana Ingress (`nginx`, `traefik`, ...); `null`: the cluster's default class."
}

variable "cluster_issuer" {
  type        = string
  default     = null
  description = "cert-manager ClusterIssuer for the Grafana Ingress, e.g. `module.certificates.cluster_issuer`: sets the `cert-manager.io/cluster-issuer` annotation and TLS for `grafana_hostname` (Secret `<name>-grafana-tls`). `null`: plain HTTP."
}

variable "loki" {
  type        = bool
  default     = true
  description = "Install Loki (single binary on a persistent volume) and add it to Grafana's data sources."
}

variable "promtail" {
  type        = bool
  default     = true
  description = "Install Promtail on every node, shipping container logs to Loki. Only with `loki = true` (Promtail needs a Loki to push to)."
}

variable "tempo" {
  type        = bool
  default     = false
  description = "Install Tempo (single binary) and add it to Grafana's data sources."
}

variable "opentelemetry" {
  type        = bool
  default     = false
  description = "Install the OpenTelemetry operator (collectors and auto-instrumentation as custom resources). Its webhooks take their certificates from cert-manager, which must be installed first (module `certificates`)."
}

variable "versions" {
  type        = map(string)
  default     = {}
  description = "Chart versions by component (`kube-prometheus-stack`, `loki`, `promtail`, `tempo`, `opentelemetry-operator`), overriding the provider catalog's pins."
}

variable "values" {
  type        = map(string)
  default     = {}
  description = "Helm values (YAML mappings) by component (`kube-prometheus-stack`, `loki`, `promtail`, `tempo`, `opentelemetry-operator`), merged over the module's values key by key at the top level: a `grafana` key for `kube-prometheus-stack` replaces the module's (Ingress, data sources)."

  validation {
    condition     = alltrue([for v in values(var.values) : can(keys(yamldecode(v)))])
    error_message = "Each values entry must be a YAML mapping, e.g. yamlencode({ replicaCount = 2 })."
  }
}
