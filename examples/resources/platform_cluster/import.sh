# Import the cluster the provider's kubernetes block connects to, by its API server URL.
# Nothing in the cluster changes; the next apply waits for health as configured.
terraform import platform_cluster.talos https://10.0.0.10:6443
