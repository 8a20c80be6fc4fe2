variable "cluster" {
  type        = map(string)
  sensitive   = true
  default     = null
  description = "Connection to the cluster (the `cluster` map of the provider's resources: host, token, cluster_ca_certificate, kubeconfig, ...), e.g. the `connection` of a `platform_k3s_cluster` of the same apply. `null` uses the provider's `kubernetes` block."
}

variable "name" {
  type        = string
  default     = "policy"
  description = "Prefix of the module's `platform_stack` names (`<name>-controllers`, `<name>-baseline`, and for Gatekeeper `<name>-constraints`)."
}

variable "flux_namespace" {
  type        = string
  default     = "flux-system"
  description = "Flux's namespace, where the HelmRepositories and HelmReleases go. Pass `module.gitops.flux_namespace` so that the policy engine waits for Flux."
}

variable "engine" {
  type        = string
  description = "`kyverno` (Kyverno from the provider's catalog, in `kyverno`) or `gatekeeper` (OPA Gatekeeper from its chart repository, in `gatekeeper-system`)."

  validation {
    condition     = contains(["kyverno", "gatekeeper"], var.engine)
    error_message = "The engine value must be \"kyverno\" or \"gatekeeper\"."
  }
}

variable "baseline" {
  type        = bool
  default     = true
  description = "Add baseline Pod security policies in audit mode (violations are reported, nothing is refused): no privileged containers, no host namespaces, and with Kyverno containers running as non-root. `kube-system` is left out."
}

variable "versions" {
  type        = map(string)
  default     = {}
  description = "Chart versions by component (`kyverno`, `gatekeeper`), overriding the provider catalog's pin of Kyverno and the module's pin of Gatekeeper (not in the catalog)."
}

variable "values" {
  type        = map(string)
  default     = {}
  description = "Helm values (YAML mappings) by component (`kyverno`, `gatekeeper`), merged over the module's values key by key at the top level."

  validation {
    condition     = alltrue([for v in values(var.values) : can(keys(yamldecode(v)))])
    error_message = "Each values entry must be a YAML mapping, e.g. yamlencode({ replicas = 3 })."
  }
}
