# Import a Backup by namespace/name (to refer to it, or to delete it with on_destroy = "delete").
terraform import platform_backup.before_upgrade velero/apps-before-6.7.1
