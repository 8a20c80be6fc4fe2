# Nightly restic backups of a database volume to MinIO, the repository written by the
# provider into a Secret it owns (`postgres-data-restic`). The password and S3 secret key
# are write-only (Terraform 1.11 and later): never stored; raise credentials_version to
# write new ones.
resource "platform_volume_replication" "postgres" {
  namespace   = "databases"
  name        = "postgres-data"
  source_pvc  = "data-postgres-0"
  copy_method = "Snapshot"
  schedule    = "0 2 * * *"

  repository_url          = "s3:https://minio.lan:9000/volsync/postgres-data"
  password_wo             = var.restic_password
  s3_access_key_id        = var.minio_access_key
  s3_secret_access_key_wo = var.minio_secret_key
  credentials_version     = 1

  retain {
    daily   = 7
    weekly  = 4
    monthly = 6
  }
  prune_interval_days = 7
}

# A backup taken by the apply itself, e.g. before an upgrade in the same apply: changing the
# token syncs again, and the apply waits until VolSync has finished (or fails with its error).
resource "platform_volume_replication" "uploads" {
  namespace         = "apps"
  name              = "uploads"
  source_pvc        = "uploads"
  copy_method       = "Clone"
  repository_secret = "restic-uploads" # holds RESTIC_REPOSITORY, RESTIC_PASSWORD and the S3 keys
  sync_on_apply     = "before-${var.apps_version}"

  timeouts {
    create = "1h"
    update = "1h"
  }
}

variable "restic_password" {
  type      = string
  sensitive = true
}

variable "minio_access_key" {
  type = string
}

variable "minio_secret_key" {
  type      = string
  sensitive = true
}

variable "apps_version" {
  type = string
}
