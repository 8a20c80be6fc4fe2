# A backup of the application namespaces before an upgrade, in the same apply: the stack
# changes only once the backup has completed.
resource "platform_backup" "before_upgrade" {
  name                = "apps-before-${var.apps_version}"
  storage_location    = "default"
  included_namespaces = ["apps"]
  ttl                 = "336h"

  timeouts {
    create = "45m"
  }
}

resource "platform_stack" "apps" {
  name       = "apps"
  depends_on = [platform_backup.before_upgrade]

  component {
    name      = "podinfo"
    namespace = "apps"
    helm {
      repository = "oci://ghcr.io/stefanprodan/charts"
      chart      = "podinfo"
      version    = var.apps_version
    }
  }
}

variable "apps_version" {
  type = string
}
