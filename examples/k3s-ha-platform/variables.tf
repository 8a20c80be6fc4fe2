variable "servers" {
  type        = map(string)
  description = "The three k3s servers (control plane with embedded etcd): node name to SSH address."
  default = {
    master-1 = "10.11.80.11"
    master-2 = "10.11.80.12"
    master-3 = "10.11.80.13"
  }
}

variable "agents" {
  type        = map(string)
  description = "The k3s agents (workers): node name to SSH address."
  default = {
    worker-1 = "10.11.80.21"
    worker-2 = "10.11.80.22"
    worker-3 = "10.11.80.23"
    worker-4 = "10.11.80.24"
  }
}

variable "api_endpoint" {
  type        = string
  description = "Fixed registration address of the cluster (a VIP or DNS name in front of the servers), `https://host:6443`."
  default     = "https://10.11.80.10:6443"
}

variable "k3s_version" {
  type        = string
  description = "k3s release on every node; a change is a rolling upgrade."
  default     = "v1.29.1+k3s2"
}

variable "k3s_install_script_url" {
  type        = string
  description = "URL of the k3s install script the hosts download (`null`: https://get.k3s.io)."
  default     = null
}

variable "ssh_user" {
  type        = string
  description = "SSH user on every host (commands run with `sudo -n`)."
  default     = "admin"
}

variable "ssh_private_key_path" {
  type        = string
  description = "Path of the SSH private key."
  default     = "~/.ssh/id_ed25519"
}

variable "known_hosts_file" {
  type        = string
  description = "Path of a known_hosts file holding every host's key: unknown keys are refused."
}

variable "domain" {
  type        = string
  description = "The public zone (on Cloudflare) the platform's names live in."
  default     = "helixaibot.com"
}

variable "cloudflare_api_token" {
  type        = string
  sensitive   = true
  description = "Cloudflare API token with DNS edit permission on `domain`: for the records and for cert-manager's DNS-01 challenges."
}

variable "cloudflare_api_url" {
  type        = string
  description = "Base URL of Cloudflare's API (`null`: Cloudflare's own); for a proxy."
  default     = null
}

variable "ingress_addresses" {
  type        = list(string)
  description = "Public addresses of the ingress (k3s's service load balancer answers on the agents): the A records of the platform's names."
  default     = ["10.11.80.21", "10.11.80.22"]
}

variable "acme_email" {
  type        = string
  description = "Contact address for Let's Encrypt."
}

variable "acme_server" {
  type        = string
  description = "ACME directory URL (Let's Encrypt production by default; use the staging directory while trying things out)."
  default     = "https://acme-v02.api.letsencrypt.org/directory"
}

variable "flux_install_sha256" {
  type        = string
  description = "SHA-256 of Flux's install.yaml for the pinned release (`curl -sL <url> | sha256sum`)."
}

variable "flux_install_url" {
  type        = string
  description = "URL of Flux's install.yaml (`null`: the release asset on GitHub)."
  default     = null
}

variable "grafana_admin_password" {
  type        = string
  sensitive   = true
  description = "Grafana's admin password."
}

variable "age_key_file" {
  type        = string
  description = "File with the age identity that opens the SOPS files of `secrets/`."
  default     = null
}

variable "app_secrets_file" {
  type        = string
  description = "SOPS-encrypted YAML (age) with the application's secrets, written into Secret `helix-secrets` of each environment."
}

variable "backup_s3_url" {
  type        = string
  description = "S3 API of the backup bucket (on-premises MinIO, or AWS S3)."
}

variable "backup_bucket" {
  type        = string
  description = "Bucket for Velero's backups."
  default     = "helix-velero"
}

variable "backup_access_key_id" {
  type        = string
  sensitive   = true
  description = "Access key of the backup bucket."
}

variable "backup_secret_access_key" {
  type        = string
  sensitive   = true
  description = "Secret key of the backup bucket."
}
