# Import a ReplicationSource by namespace/name. When it names the Secret `<name>-restic`, the
# repository URL and S3 access key are read from it; the password and secret key never are
# (with password and s3_secret_access_key, the first apply writes them again). An imported
# ReplicationSource is released, not deleted, on destroy, unless on_destroy = "delete".
terraform import platform_volume_replication.postgres databases/postgres-data
