# Import by namespace/name. The live values are not copied into state: the first apply
# writes the configured ones. An imported Secret is released, not deleted, on destroy.
terraform import platform_secret.db data-plane/mysql-root
