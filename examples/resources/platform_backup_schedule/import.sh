# Import a Schedule by namespace/name. An imported Schedule is released, not deleted, on
# destroy, unless on_destroy = "delete".
terraform import platform_backup_schedule.nightly velero/nightly
