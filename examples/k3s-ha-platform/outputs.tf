output "nodes" {
  description = "The cluster's nodes as k3s reports them."
  value       = platform_k3s_cluster.helix.nodes
}

output "kubeconfig" {
  description = "Admin kubeconfig of the cluster."
  value       = platform_k3s_cluster.helix.kubeconfig
  sensitive   = true
}

output "grafana_url" {
  description = "Where Grafana answers."
  value       = "https://${module.observability.grafana_hostname}"
}

output "cluster_issuer" {
  description = "The ClusterIssuer certificates of the platform use."
  value       = module.certificates.cluster_issuer
}

output "dns_names" {
  description = "The public names of the platform."
  value       = module.dns.fqdns
}
