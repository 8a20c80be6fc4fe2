variable "kubeconfig_path" {
  type        = string
  description = "Kubeconfig of the cluster."
  default     = "~/.kube/config"
}

variable "kube_context" {
  type        = string
  description = "Context of the kubeconfig to use (`null`: its current context)."
  default     = null
}

variable "min_nodes" {
  type        = number
  description = "Nodes that must be Ready before anything is applied."
  default     = 3
}

variable "node_selector" {
  type        = string
  description = "Only these nodes count for the health gate (`null`: all)."
  default     = null
}

variable "flux_install_sha256" {
  type        = string
  description = "SHA-256 of Flux's install.yaml for the pinned release."
}

variable "flux_install_url" {
  type        = string
  description = "URL of Flux's install.yaml (`null`: the release asset on GitHub)."
  default     = null
}

variable "address_pool" {
  type        = list(string)
  description = "Addresses MetalLB gives LoadBalancer Services (L2 mode)."
  default     = ["192.168.10.240-192.168.10.250"]
}

variable "ingress_address" {
  type        = string
  description = "The address of the ingress controller's Service (one of `address_pool`), for the DNS records."
  default     = "192.168.10.240"
}

variable "zone" {
  type        = string
  description = "The DNS zone of the platform's names."
  default     = "platform.example.internal"
}

variable "dns_server" {
  type        = string
  description = "Primary DNS server of `zone` (`host` or `host:port`) taking RFC 2136 updates."
  default     = "192.168.10.2"
}

variable "tsig_key_name" {
  type        = string
  description = "Name of the TSIG key (e.g. `platform-key.`)."
}

variable "tsig_key_secret" {
  type        = string
  sensitive   = true
  description = "The TSIG key's secret (base64, as `tsig-keygen` prints it)."
}

variable "acme_email" {
  type        = string
  description = "Contact address for the ACME server."
}

variable "acme_server" {
  type        = string
  description = "ACME directory URL (Let's Encrypt production by default)."
  default     = "https://acme-v02.api.letsencrypt.org/directory"
}

variable "grafana_admin_password" {
  type        = string
  sensitive   = true
  description = "Grafana's admin password."
}

variable "policy_engine" {
  type        = string
  description = "`kyverno` or `gatekeeper` (OPA)."
  default     = "kyverno"
}
