variable "cloudflare_token" {
  type      = string
  sensitive = true
}

# Sealed offline with the controller's public certificate (`kubeseal --fetch-cert`);
# only the Sealed Secrets controller in the cluster can decrypt it.
resource "platform_sealed_secret" "cloudflare" {
  namespace       = "network"
  name            = "cloudflare-token"
  certificate     = file("${path.module}/pub-sealed-secrets.pem")
  scope           = "strict" # strict | namespace-wide | cluster-wide
  data_wo         = { token = var.cloudflare_token }
  data_wo_version = 1
}
