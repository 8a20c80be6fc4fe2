# Backups of a homelab in one apply: Velero from the catalog, a location on MinIO, a nightly
# schedule, and a backup taken before the applications are upgraded.
terraform {
  required_providers {
    platform = { source = "platform/platform" }
  }
}

provider "platform" {}

variable "minio_secret_key" {
  type      = string
  sensitive = true
}

variable "apps_version" {
  type    = string
  default = "6.7.1"
}

resource "platform_stack" "velero" {
  name = "backup-controllers"

  component {
    name    = "velero"
    catalog = "velero"
    helm {
      values = yamlencode({
        initContainers = [{
          name         = "velero-plugin-for-aws"
          image        = "velero/velero-plugin-for-aws:v1.12.0"
          volumeMounts = [{ mountPath = "/target", name = "plugins" }]
        }]
      })
    }
  }
}

resource "platform_backup_location" "minio" {
  name       = "default"
  bucket     = "velero"
  default    = true
  depends_on = [platform_stack.velero]

  s3 {
    endpoint         = "http://minio.lan:9000"
    force_path_style = true
  }
  access_key_id     = "velero"
  secret_access_key = var.minio_secret_key
}

resource "platform_backup_schedule" "nightly" {
  name               = "nightly"
  schedule           = "0 3 * * *"
  ttl                = "168h"
  storage_location   = platform_backup_location.minio.name
  excluded_resources = ["events", "events.events.k8s.io"]
}

resource "platform_backup" "before_upgrade" {
  name                = "apps-before-${var.apps_version}"
  storage_location    = platform_backup_location.minio.name
  included_namespaces = ["apps"]
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
