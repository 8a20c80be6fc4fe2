output "kubernetes_version" {
  description = "The API server's version."
  value       = platform_cluster.talos.server_version
}

output "nodes" {
  description = "The nodes the health gate saw."
  value       = platform_cluster.talos.nodes
}

output "cluster_issuer" {
  description = "The ClusterIssuer the Gateways' certificates come from."
  value       = module.certificates.cluster_issuer
}

output "secret_store" {
  description = "The ClusterSecretStore that reads Vault."
  value       = module.secrets.secret_store
}
