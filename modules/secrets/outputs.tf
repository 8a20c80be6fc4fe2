output "backend" {
  value       = var.backend
  description = "The installed backend: `sealed-secrets` or `external-secrets`."
  depends_on  = [platform_stack.controllers]
}

output "namespace" {
  value       = local.namespace
  description = "The backend's namespace: `kube-system` for Sealed Secrets (controller `sealed-secrets-controller`, as kubeseal expects), `external-secrets` for External Secrets. Whoever takes it waits for the controllers."
  depends_on  = [platform_stack.controllers]
}

output "secret_store" {
  value       = local.with_store ? local.secret_store : null
  description = "Name of the Vault ClusterSecretStore, for `secretStoreRef` (`kind: ClusterSecretStore`) of ExternalSecrets, or `null` when there is none. Whoever takes it waits for the store."
  depends_on  = [platform_stack.stores]
}

output "stacks" {
  value       = concat([platform_stack.controllers.name], [for s in platform_stack.stores : s.name])
  description = "Names of the module's `platform_stack`s."
}
