# Adopt a cluster this provider did not bootstrap (Talos, kind, a managed cluster): the
# apply waits until every node is Ready and /readyz answers ok, so what depends on it
# starts only on a healthy cluster. Destroy only forgets it.
resource "platform_cluster" "talos" {
  cluster = {
    config_path = "~/.kube/talos"
    context     = "admin@homelab"
  }

  min_nodes = 3

  timeouts {
    create = "15m"
  }
}

# Everything else reaches the cluster through its connection, after the health gate.
resource "platform_namespace" "monitoring" {
  name    = "monitoring"
  cluster = platform_cluster.talos.connection
}

# On a shared cluster, gate on (and report) the nodes that matter only.
resource "platform_cluster" "workers" {
  node_selector = "node-role.kubernetes.io/worker"
  wait_healthy  = true
}

output "talos_version" {
  value = platform_cluster.talos.server_version
}

output "unready_nodes" {
  value = [for name, node in platform_cluster.talos.nodes : name if !node.ready]
}
