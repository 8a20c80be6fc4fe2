variable "cluster" {
  type        = map(string)
  sensitive   = true
  default     = null
  description = "Connection to the cluster (the `cluster` map of the provider's resources: host, token, cluster_ca_certificate, kubeconfig, ...), e.g. the `connection` of a `platform_k3s_cluster` of the same apply. `null` uses the provider's `kubernetes` block."
}

variable "name" {
  type        = string
  default     = "backups"
  description = "Prefix of the module's `platform_stack` name (`<name>-controllers`)."
}

variable "flux_namespace" {
  type        = string
  default     = "flux-system"
  description = "Flux's namespace, where the HelmRepositories and HelmReleases go. Pass `module.gitops.flux_namespace` so that Velero waits for Flux."
}

variable "velero_namespace" {
  type        = string
  default     = "velero"
  description = "Namespace Velero runs in, with its BackupStorageLocation, credentials Secret and Schedules."
}

variable "bucket" {
  type        = string
  description = "S3 bucket the backups go to. It must exist: the provider lists it with the keys below before it writes anything."
}

variable "s3_url" {
  type        = string
  description = "URL of the S3 API, e.g. `https://minio.lan:9000`."
}

variable "region" {
  type        = string
  default     = "us-east-1"
  description = "Region of the bucket (MinIO and most self-hosted servers accept `us-east-1`)."
}

variable "access_key_id" {
  type        = string
  sensitive   = true
  description = "S3 access key id, written with the secret key into the Secret `default-credentials` in `velero_namespace`."
}

variable "secret_access_key" {
  type        = string
  sensitive   = true
  description = "S3 secret access key (stored in Terraform state, marked sensitive)."
}

variable "force_path_style" {
  type        = bool
  default     = true
  description = "Address the bucket as `<s3_url>/<bucket>` (MinIO, SeaweedFS, Garage) rather than `<bucket>.<host>`."
}

variable "schedules" {
  type = map(object({
    schedule            = string
    ttl                 = string
    included_namespaces = list(string)
  }))
  default     = {}
  description = "Velero Schedules by name: `schedule` in cron form (`0 3 * * *`, `@daily`, `@every 6h`, optionally after `CRON_TZ=<zone>`), `ttl` as a Go duration (`168h`), `included_namespaces` (empty: every namespace). Cron and TTL are checked at plan time."
}

variable "volsync" {
  type        = bool
  default     = false
  description = "Also install VolSync (asynchronous PersistentVolume replication and backup with restic, rclone or rsync), in `volsync-system`."
}

variable "aws_plugin_image" {
  type        = string
  default     = "velero/velero-plugin-for-aws:v1.12.0"
  description = "Image of Velero's AWS (S3) object-store plugin, added as an init container."
}

variable "versions" {
  type        = map(string)
  default     = {}
  description = "Chart versions by component (`velero`, `volsync`), overriding the provider catalog's pins."
}

variable "values" {
  type        = map(string)
  default     = {}
  description = "Helm values (YAML mappings) by component (`velero`, `volsync`), merged over the module's values key by key at the top level (an `initContainers` key for `velero` replaces the AWS plugin)."

  validation {
    condition     = alltrue([for v in values(var.values) : can(keys(yamldecode(v)))])
    error_message = "Each values entry must be a YAML mapping, e.g. yamlencode({ deployNodeAgent = true })."
  }
}
