# Import an existing namespace by its name. An imported namespace is released, not
# deleted, on destroy (our annotation and field ownership removed), unless on_destroy = "delete".
terraform import platform_namespace.monitoring monitoring
