# Import a ReplicationDestination by namespace/name. An imported ReplicationDestination is
# released, not deleted, on destroy, unless on_destroy = "delete".
terraform import platform_volume_restore.postgres databases/postgres-data-restore
