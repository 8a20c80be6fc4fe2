# The controller's certificate, as `kubeseal --fetch-cert` fetches it: nothing to copy by hand.
data "platform_sealed_secrets_certificate" "this" {}

variable "db_password" {
  type      = string
  sensitive = true
}

resource "platform_sealed_secret" "db" {
  namespace   = "apps"
  name        = "db"
  certificate = data.platform_sealed_secrets_certificate.this.certificate
  data = {
    password = var.db_password
  }
}
