# The cluster of the provider's kubernetes block (or of `cluster`): version, nodes, /readyz.
data "platform_cluster" "current" {}

output "server_version" {
  value = data.platform_cluster.current.server_version
}

output "healthy" {
  value = data.platform_cluster.current.readyz && alltrue([for node in values(data.platform_cluster.current.nodes) : node.ready])
}

output "control_plane_nodes" {
  value = [for name, node in data.platform_cluster.current.nodes : name if contains(node.roles, "control-plane")]
}
