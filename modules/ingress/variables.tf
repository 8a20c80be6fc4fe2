variable "cluster" {
  type        = map(string)
  sensitive   = true
  default     = null
  description = "Connection to the cluster (the `cluster` map of the provider's resources: host, token, cluster_ca_certificate, kubeconfig, ...), e.g. the `connection` of a `platform_k3s_cluster` of the same apply. `null` uses the provider's `kubernetes` block."
}

variable "name" {
  type        = string
  default     = "ingress"
  description = "Prefix of the module's `platform_stack` name (`<name>-controllers`) and name of the address pool objects. A DNS label of at most 27 characters, so that the Helm release name `<name>-controllers-<controller>` fits Helm's 53."

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", var.name)) && length(var.name) <= 27
    error_message = "The name value must be a DNS label (lower-case letters, digits and '-') of at most 27 characters."
  }
}

variable "flux_namespace" {
  type        = string
  default     = "flux-system"
  description = "Flux's namespace, where the HelmRepositories and HelmReleases go. Pass `module.gitops.flux_namespace` so that the charts wait for Flux."
}

variable "controller" {
  type        = string
  description = "The ingress controller: `ingress-nginx` (IngressClass `nginx`) or `traefik` (IngressClass `traefik`)."

  validation {
    condition     = contains(["ingress-nginx", "traefik"], var.controller)
    error_message = "The controller value must be \"ingress-nginx\" or \"traefik\"."
  }
}

variable "load_balancer" {
  type        = string
  default     = "metallb"
  description = "What gives LoadBalancer Services their addresses: `metallb` (installed here, L2 mode), `cilium` (Cilium's LB IPAM and L2 announcements; Cilium itself must already run with `l2announcements.enabled=true`) or `none` (the cluster has one already: a cloud, k3s ServiceLB)."

  validation {
    condition     = contains(["metallb", "cilium", "none"], var.load_balancer)
    error_message = "The load_balancer value must be \"metallb\", \"cilium\" or \"none\"."
  }
}

variable "address_pool" {
  type        = list(string)
  default     = []
  description = "Addresses for LoadBalancer Services, as CIDRs (`10.0.0.240/28`) or ranges (`10.0.0.240-10.0.0.250`). Required with `metallb`; with `cilium`, empty leaves the pools to Cilium's own configuration (one must exist, or the controller's Service never gets an address and its Helm release never becomes ready)."

  validation {
    condition = alltrue([
      for a in var.address_pool : can(cidrhost(trimspace(a), 0)) || (
        length(split("-", a)) == 2 && alltrue([
          for ip in split("-", a) : can(cidrhost("${trimspace(ip)}/32", 0)) || can(cidrhost("${trimspace(ip)}/128", 0))
        ])
      )
    ])
    error_message = "Each address_pool entry must be a CIDR (10.0.0.240/28) or a range of two addresses (10.0.0.240-10.0.0.250)."
  }
}

variable "versions" {
  type        = map(string)
  default     = {}
  description = "Chart versions by component (`metallb`, `ingress-nginx`, `traefik`), overriding the provider catalog's pins."
}

variable "values" {
  type        = map(string)
  default     = {}
  description = "Helm values (YAML mappings) by component (`metallb`, `ingress-nginx`, `traefik`), merged over the module's values key by key at the top level."

  validation {
    condition     = alltrue([for v in values(var.values) : can(keys(yamldecode(v)))])
    error_message = "Each values entry must be a YAML mapping, e.g. yamlencode({ controller = { replicaCount = 2 } })."
  }
}
