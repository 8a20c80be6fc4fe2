resource "platform_namespace" "monitoring" {
  name = "monitoring"

  labels = {
    "app.kubernetes.io/part-of" = "platform"
    tier                        = "production"
  }

  annotations = {
    owner = "sre"
  }

  timeouts {
    delete = "5m"
  }
}

# A namespace that exists already (made with kubectl, say) is taken over only when asked;
# destroy then releases it (removes this provider's annotation and field ownership) and
# leaves it in place, unless on_destroy = "delete".
resource "platform_namespace" "legacy" {
  name  = "legacy-apps"
  adopt = true
}

# A namespace in a cluster created in the same apply: planning contacts nothing
# until the cluster's connection is known.
resource "platform_namespace" "apps" {
  name = "apps"

  cluster = {
    host                   = var.cluster_host
    cluster_ca_certificate = var.cluster_ca
    token                  = var.cluster_token
  }
}

variable "cluster_host" { type = string }
variable "cluster_ca" { type = string }
variable "cluster_token" {
  type      = string
  sensitive = true
}
