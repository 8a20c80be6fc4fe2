variable "kubeconfig_path" {
  type        = string
  description = "Kubeconfig of the Talos cluster (`talosctl kubeconfig`)."
  default     = "~/.kube/config"
}

variable "kube_context" {
  type        = string
  description = "Context of the kubeconfig to use (`null`: its current context)."
  default     = "admin@homelab"
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

variable "domain" {
  type        = string
  description = "The zone (on Cloudflare) of the homelab's names."
  default     = "home.example.com"
}

variable "acme_email" {
  type        = string
  description = "Contact address for Let's Encrypt."
}

variable "acme_server" {
  type        = string
  description = "ACME directory URL."
  default     = "https://acme-v02.api.letsencrypt.org/directory"
}

variable "cloudflare_api_token" {
  type        = string
  sensitive   = true
  description = "Cloudflare API token with DNS edit permission on `domain`, for DNS-01 challenges."
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

variable "gateway_api_crds_url" {
  type        = string
  description = "Gateway API's standard CRDs (release asset `standard-install.yaml`)."
  default     = "https://github.com/kubernetes-sigs/gateway-api/releases/download/v1.2.1/standard-install.yaml"
}

variable "gateway_api_crds_sha256" {
  type        = string
  description = "SHA-256 of `gateway_api_crds_url`."
}

variable "load_balancer_pool" {
  type        = list(string)
  description = "Addresses Cilium gives LoadBalancer Services and announces on the LAN (L2)."
  default     = ["10.11.80.80-10.11.80.99"]
}

variable "external_gateway_address" {
  type        = string
  description = "Address of the public Gateway."
  default     = "10.11.80.80"
}

variable "internal_gateway_address" {
  type        = string
  description = "Address of the LAN-only Gateway."
  default     = "10.11.80.81"
}

variable "vault_address" {
  type        = string
  description = "The external Vault (on a VPS, reached over Tailscale) that External Secrets reads."
  default     = "https://vault.example.ts.net:8200"
}

variable "vault_token" {
  type        = string
  sensitive   = true
  description = "Vault token External Secrets authenticates with (a periodic token of a read-only policy)."
}

variable "grafana_admin_password" {
  type        = string
  sensitive   = true
  description = "Grafana's admin password."
}

variable "restic_repository" {
  type        = string
  description = "restic repository (S3 URL) VolSync backs volumes up to."
}

variable "restic_password" {
  type        = string
  sensitive   = true
  description = "restic repository password."
}

variable "restic_access_key_id" {
  type        = string
  sensitive   = true
  description = "S3 access key of the restic repository."
}

variable "restic_secret_access_key" {
  type        = string
  sensitive   = true
  description = "S3 secret key of the restic repository."
}
