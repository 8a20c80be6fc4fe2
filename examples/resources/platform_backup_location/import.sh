# Import a BackupStorageLocation by namespace/name. An imported location is released, not
# deleted, on destroy, unless on_destroy = "delete".
terraform import platform_backup_location.offsite velero/offsite
