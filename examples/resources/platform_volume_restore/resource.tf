# Restores the latest snapshot of a restic repository into an existing claim when the apply
# sets or changes `sync_on_apply`, and waits until VolSync has restored it.
resource "platform_volume_restore" "postgres" {
  namespace         = "databases"
  name              = "postgres-data-restore"
  destination_pvc   = "data-postgres-0"
  copy_method       = "Direct"
  repository_secret = "postgres-data-restic"
  sync_on_apply     = "restore-1"

  # The latest snapshot taken at or before this time, instead of the latest.
  restore_as_of = "2026-11-28T03:00:00Z"

  timeouts {
    create = "1h"
  }
}
