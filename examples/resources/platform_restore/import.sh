# Import a Restore by namespace/name, e.g. one started with the velero CLI.
terraform import platform_restore.apps_copy velero/apps-copy-1
