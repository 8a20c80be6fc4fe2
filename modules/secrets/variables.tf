variable "cluster" {
  type        = map(string)
  sensitive   = true
  default     = null
  description = "Connection to the cluster (the `cluster` map of the provider's resources: host, token, cluster_ca_certificate, kubeconfig, ...), e.g. the `connection` of a `platform_k3s_cluster` of the same apply. `null` uses the provider's `kubernetes` block."
}

variable "name" {
  type        = string
  default     = "secrets"
  description = "Prefix of the module's `platform_stack` names (`<name>-controllers`, `<name>-stores`); Vault's Helm release is `<name>-controllers-vault`, which also names its Service."
}

variable "flux_namespace" {
  type        = string
  default     = "flux-system"
  description = "Flux's namespace, where the HelmRepositories and HelmReleases go. Pass `module.gitops.flux_namespace` so that the charts wait for Flux."
}

variable "backend" {
  type        = string
  description = "`sealed-secrets` (Bitnami Sealed Secrets controller in `kube-system`, as `sealed-secrets-controller`, the name kubeseal looks for) or `external-secrets` (External Secrets Operator in `external-secrets`)."

  validation {
    condition     = contains(["sealed-secrets", "external-secrets"], var.backend)
    error_message = "The backend value must be \"sealed-secrets\" or \"external-secrets\"."
  }
}

variable "vault" {
  type        = bool
  default     = false
  description = "Install HashiCorp Vault (chart `vault` from https://helm.releases.hashicorp.com, standalone, file storage on a persistent volume) in the namespace `vault`. It starts sealed and uninitialized: run `vault operator init` and `vault operator unseal` in the pod once."
}

variable "vault_address" {
  type        = string
  default     = null
  description = "Address of the Vault the ClusterSecretStore reads; `null`: the Vault this module installs, `http://<name>-controllers-vault.vault.svc:8200`."
}

variable "vault_token" {
  type        = string
  sensitive   = true
  default     = null
  description = "Vault token for External Secrets (backend `external-secrets`): with it, the module writes it to the Secret `vault-token` in `external-secrets` and makes the ClusterSecretStore `vault` (token auth, KV v2 at `vault_kv_path`). `null`: no store. Stored in Terraform state, marked sensitive."
}

variable "vault_kv_path" {
  type        = string
  default     = "secret"
  description = "Mount path of the KV version 2 secrets engine the ClusterSecretStore reads."
}

variable "versions" {
  type        = map(string)
  default     = {}
  description = "Chart versions by component (`sealed-secrets`, `external-secrets`, `vault`), overriding the provider catalog's pins (and the module's pin of `vault`, which is not in the catalog)."
}

variable "values" {
  type        = map(string)
  default     = {}
  description = "Helm values (YAML mappings) by component (`sealed-secrets`, `external-secrets`, `vault`), merged over the module's values key by key at the top level (a `server` key for `vault` replaces the module's readiness probe)."

  validation {
    condition     = alltrue([for v in values(var.values) : can(keys(yamldecode(v)))])
    error_message = "Each values entry must be a YAML mapping, e.g. yamlencode({ replicaCount = 2 })."
  }
}
