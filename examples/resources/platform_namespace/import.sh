# Import an existing namespace by its name.
terraform import platform_namespace.monitoring monitoring
