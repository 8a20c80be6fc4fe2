variable "cluster" {
  type        = map(string)
  sensitive   = true
  default     = null
  description = "Connection to the cluster (the `cluster` map of the provider's resources: host, token, cluster_ca_certificate, kubeconfig, ...), e.g. the `connection` of a `platform_k3s_cluster` of the same apply. `null` uses the provider's `kubernetes` block."
}

variable "name" {
  type        = string
  default     = "gitops"
  description = "Name of the module's `platform_stack` (unique in a cluster)."
}

variable "flux_version" {
  type        = string
  default     = "v2.4.0"
  description = "Flux release whose `install.yaml` is applied, e.g. `v2.4.0`. Changing it needs a new `flux_install_sha256`."
}

variable "flux_install_url" {
  type        = string
  default     = null
  description = "URL of Flux's `install.yaml`; `null` for the release asset of `flux_version` on GitHub (set it for a mirror)."
}

variable "flux_install_sha256" {
  type        = string
  description = "SHA-256 (hex) of the `install.yaml` (`curl -sL <url> | sha256sum`); the download is checked against it before anything is applied."

  validation {
    condition     = can(regex("^[0-9a-fA-F]{64}$", var.flux_install_sha256))
    error_message = "The flux_install_sha256 value must be a SHA-256 digest: 64 hexadecimal characters."
  }
}

variable "flux_namespace" {
  type        = string
  default     = "flux-system"
  description = "Namespace of Flux's controllers, where the other modules' stacks put their HelmRepositories and HelmReleases. Flux's `install.yaml` installs into `flux-system`: change this only with an `install.yaml` made for another namespace."
}
