variable "cluster" {
  type        = map(string)
  sensitive   = true
  default     = null
  description = "Connection to the cluster (the `cluster` map of the provider's resources: host, token, cluster_ca_certificate, kubeconfig, ...), e.g. the `connection` of a `platform_k3s_cluster` of the same apply. `null` uses the provider's `kubernetes` block."
}

variable "name" {
  type        = string
  default     = "certificates"
  description = "Prefix of the module's `platform_stack` names (`<name>-controllers`, `<name>-issuers`) and of the DNS-01 credentials Secret (`<name>-<dns01_provider>`)."
}

variable "flux_namespace" {
  type        = string
  default     = "flux-system"
  description = "Flux's namespace, where the HelmRepository and HelmRelease go. Pass `module.gitops.flux_namespace` so that cert-manager waits for Flux."
}

variable "acme_email" {
  type        = string
  description = "E-mail address of the ACME account (expiry and problem notices)."
}

variable "acme_server" {
  type        = string
  default     = "https://acme-v02.api.letsencrypt.org/directory"
  description = "ACME directory URL; Let's Encrypt production by default (`https://acme-staging-v02.api.letsencrypt.org/directory` for staging)."
}

variable "issuer_name" {
  type        = string
  default     = "letsencrypt"
  description = "Name of the ClusterIssuer (`cert-manager.io/cluster-issuer` annotation, `issuerRef.name`)."
}

variable "dns01_provider" {
  type        = string
  default     = "cloudflare"
  description = "DNS-01 solver: `cloudflare` (API token with Zone:DNS:Edit) or `rfc2136` (dynamic updates signed with a TSIG key)."

  validation {
    condition     = contains(["cloudflare", "rfc2136"], var.dns01_provider)
    error_message = "The dns01_provider value must be \"cloudflare\" or \"rfc2136\"."
  }
}

variable "cloudflare_api_token" {
  type        = string
  sensitive   = true
  default     = null
  description = "Cloudflare API token with Zone:DNS:Edit (and Zone:Zone:Read) on the zones; required with `dns01_provider = \"cloudflare\"`."
}

variable "rfc2136_nameserver" {
  type        = string
  default     = null
  description = "The zone's primary server for RFC 2136 updates, `host:port` or `[v6]:port` (port 53 when absent); required with `dns01_provider = \"rfc2136\"`."
}

variable "rfc2136_tsig_key_name" {
  type        = string
  default     = null
  description = "Name of the TSIG key, e.g. `cert-manager.`; required with `dns01_provider = \"rfc2136\"`."
}

variable "rfc2136_tsig_algorithm" {
  type        = string
  default     = "HMACSHA256"
  description = "TSIG algorithm as cert-manager names it: `HMACMD5`, `HMACSHA1`, `HMACSHA256` or `HMACSHA512` (`null`: `HMACSHA256`)."

  validation {
    condition     = contains(["HMACMD5", "HMACSHA1", "HMACSHA256", "HMACSHA512"], coalesce(var.rfc2136_tsig_algorithm, "HMACSHA256"))
    error_message = "The rfc2136_tsig_algorithm value must be HMACMD5, HMACSHA1, HMACSHA256 or HMACSHA512."
  }
}

variable "rfc2136_tsig_secret" {
  type        = string
  sensitive   = true
  default     = null
  description = "The TSIG key's secret, base64 as `tsig-keygen` prints it; required with `dns01_provider = \"rfc2136\"`."
}

variable "dns_zones" {
  type        = list(string)
  default     = []
  description = "Zones the DNS-01 solver answers for (its `selector.dnsZones`, subdomains included); empty: every name."
}

variable "versions" {
  type        = map(string)
  default     = {}
  description = "Chart versions by component (`cert-manager`), overriding the provider catalog's pins."
}

variable "values" {
  type        = map(string)
  default     = {}
  description = "Helm values (YAML mappings) by component (`cert-manager`), merged over the module's values key by key at the top level."

  validation {
    condition     = alltrue([for v in values(var.values) : can(keys(yamldecode(v)))])
    error_message = "Each values entry must be a YAML mapping, e.g. yamlencode({ replicaCount = 2 })."
  }
}
