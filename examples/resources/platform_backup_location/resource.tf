# Velero's default location on a MinIO bucket. The provider lists the bucket with these keys
# before it writes anything, and waits until Velero has validated the location.
resource "platform_backup_location" "minio" {
  name    = "default"
  bucket  = "velero"
  prefix  = "homelab"
  default = true

  s3 {
    endpoint         = "https://minio.lan:9000"
    region           = "us-east-1"
    force_path_style = true
  }
  ca_certificate = file("${path.module}/minio-ca.pem")

  # Written to the Secret "default-credentials", owned by this resource. The write-only
  # key (Terraform 1.11 and later) is never stored; raise credentials_version to change it.
  access_key_id        = "velero"
  secret_access_key_wo = var.minio_secret_key
  credentials_version  = 1
}

# A second location, read-only, on keys kept in an existing Secret.
resource "platform_backup_location" "offsite" {
  name                   = "offsite"
  bucket                 = "homelab-offsite"
  access_mode            = "ReadOnly"
  credential_secret_name = "offsite-s3"
  credential_secret_key  = "cloud"

  s3 {
    endpoint = "https://s3.eu-central-1.amazonaws.com"
    region   = "eu-central-1"
  }
}

variable "minio_secret_key" {
  type      = string
  sensitive = true
  ephemeral = true
}
