output "cluster_issuer" {
  value       = var.issuer_name
  description = "Name of the ACME ClusterIssuer, for the `cert-manager.io/cluster-issuer` annotation or a Certificate's `issuerRef`. Known at plan; whoever takes it waits for the issuer."
  depends_on  = [platform_stack.issuers]
}

output "namespace" {
  value       = local.namespace
  description = "cert-manager's namespace (which also holds the DNS-01 credentials Secret)."
  depends_on  = [platform_stack.controllers]
}

output "stacks" {
  value       = [platform_stack.controllers.name, platform_stack.issuers.name]
  description = "Names of the module's `platform_stack`s."
}
