# Values from a SOPS file (age), decrypted inside the provider: state keeps only the path
# and a digest of the values.
resource "platform_secret" "grafana_admin" {
  namespace = "monitoring"
  name      = "grafana-admin"
  labels    = { app = "grafana" }
  sops_file = "${path.module}/secrets/grafana.sops.yaml"
}

# Write-only values (Terraform 1.11 and later): never stored in plan or state.
variable "db_password" {
  type      = string
  sensitive = true
}

resource "platform_secret" "db" {
  namespace       = "data-plane"
  name            = "mysql-root"
  data_wo         = { password = var.db_password }
  data_wo_version = 1 # bump to apply a new password
}

# Plain sensitive values, for older Terraform (stored in state, marked sensitive).
resource "platform_secret" "tls" {
  namespace = "ingress"
  name      = "wildcard-tls"
  type      = "kubernetes.io/tls"
  data = {
    "tls.crt" = file("${path.module}/tls.crt")
    "tls.key" = file("${path.module}/tls.key")
  }
}
