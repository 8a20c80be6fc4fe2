variable "kubeconfig_path" {
  type        = string
  description = "Kubeconfig of the k3s cluster."
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
  default     = 1
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

variable "domain" {
  type        = string
  description = "Domain of the homelab's services behind Traefik."
  default     = "elysium.example.com"
}

variable "acme_email" {
  type        = string
  description = "Contact address for Let's Encrypt (HTTP-01 through Traefik)."
}

variable "tailscale_oauth_client_id" {
  type        = string
  sensitive   = true
  description = "OAuth client of the Tailscale operator."
}

variable "tailscale_oauth_client_secret" {
  type        = string
  sensitive   = true
  description = "OAuth client secret of the Tailscale operator."
}

variable "minio_root_password" {
  type        = string
  sensitive   = true
  description = "MinIO's root password (Loki's and Tempo's blocks live in MinIO)."
}

variable "minio_chart_version" {
  type        = string
  description = "Version of MinIO's chart (charts.min.io)."
  default     = "5.4.0"
}

variable "grafana_admin_password" {
  type        = string
  sensitive   = true
  description = "Grafana's admin password."
}

variable "webui_secret_key" {
  type        = string
  sensitive   = true
  description = "Open WebUI's session secret, sealed for the cluster's Sealed Secrets controller."
}

variable "app_chart_versions" {
  type        = map(string)
  description = "Chart versions of the applications (not in this provider's catalog): `ollama` (otwld/ollama-helm) and `open-webui`."
  default = {
    ollama       = "1.8.0"
    "open-webui" = "6.4.0"
  }
}
