terraform import platform_secret.db data-plane/mysql-root
