# Nightly backups of the application namespaces, kept for a week. The cron expression and
# the TTL are checked at plan time with Velero's own grammars.
resource "platform_backup_schedule" "nightly" {
  name                = "nightly"
  schedule            = "CRON_TZ=Europe/Berlin 0 3 * * *"
  ttl                 = "168h"
  storage_location    = "default"
  included_namespaces = ["apps", "monitoring"]
  excluded_resources  = ["events", "events.events.k8s.io"]
  snapshot_volumes    = false

  default_volumes_to_fs_backup = true
}

# Hourly backups of what carries a label, paused for now.
resource "platform_backup_schedule" "databases" {
  name           = "databases"
  schedule       = "@every 1h"
  label_selector = { "backup.example.com/tier" = "database" }
  paused         = true
}
