# Import a running k3s cluster by its name; no hosts or credentials go into the id. The
# configuration must name its nodes, version and ssh access as they are: the next apply
# adopts them (it checks each node runs that k3s version and role, and installs nothing).
# An imported cluster is left alone on destroy unless on_destroy = "uninstall".
terraform import platform_k3s_cluster.home home
