locals {
  controllers_stack = "${var.name}-controllers"

  # The module's Helm values; var.values are merged over them at the top level.
  defaults = {
    velero = {
      # Velero's object-store plugin for any S3 API, copied into the plugins volume.
      initContainers = [{
        name            = "velero-plugin-for-aws"
        image           = var.aws_plugin_image
        imagePullPolicy = "IfNotPresent"
        volumeMounts    = [{ mountPath = "/target", name = "plugins" }]
      }]
      # The chart would otherwise make a BackupStorageLocation "default" and a
      # VolumeSnapshotLocation with no provider and no bucket. The location is
      # platform_backup_location's, with credentials of its own, so the chart's empty
      # credentials Secret is not wanted either.
      backupsEnabled   = false
      snapshotsEnabled = false
      credentials      = { useSecret = false }
    }
    volsync = {}
  }

  helm_values = {
    for component, defaults in local.defaults :
    component => yamlencode(merge(defaults, try(yamldecode(var.values[component]), {})))
  }
}

resource "platform_stack" "controllers" {
  cluster   = var.cluster
  name      = local.controllers_stack
  namespace = var.flux_namespace

  component {
    name      = "velero"
    catalog   = "velero"
    namespace = var.velero_namespace
    helm {
      version = lookup(var.versions, "velero", null)
      values  = local.helm_values["velero"]
    }
  }

  dynamic "component" {
    for_each = var.volsync ? ["volsync"] : []
    content {
      name    = component.value
      catalog = component.value
      helm {
        version = lookup(var.versions, component.value, null)
        values  = local.helm_values[component.value]
      }
    }
  }
}

# Velero's default location. The provider lists the bucket with these keys before it writes
# anything, then waits until Velero reports the location Available. `secret_access_key`
# rather than write-only `secret_access_key_wo`, so that Terraform 1.0 takes it; it is stored
# in state, marked sensitive.
resource "platform_backup_location" "default" {
  cluster   = var.cluster
  name      = "default"
  namespace = var.velero_namespace
  bucket    = var.bucket
  default   = true

  s3 {
    endpoint         = var.s3_url
    region           = var.region
    force_path_style = var.force_path_style
  }

  access_key_id     = var.access_key_id
  secret_access_key = var.secret_access_key

  depends_on = [platform_stack.controllers]
}

resource "platform_backup_schedule" "this" {
  for_each = var.schedules

  cluster             = var.cluster
  name                = each.key
  namespace           = var.velero_namespace
  schedule            = each.value.schedule
  ttl                 = each.value.ttl
  storage_location    = platform_backup_location.default.name
  included_namespaces = length(each.value.included_namespaces) > 0 ? each.value.included_namespaces : null
}
