output "sealed_secrets_fingerprint" {
  description = "Fingerprint of the Sealed Secrets controller's key: it changes when the controller's key does."
  value       = data.platform_sealed_secrets_certificate.this.fingerprint
}

output "grafana_url" {
  description = "Where Grafana answers."
  value       = "https://${module.observability.grafana_hostname}"
}

output "stacks" {
  description = "The stacks of the chain, in the order they apply."
  value = concat(
    [module.gitops.stack, platform_stack.infra_controllers.name, platform_stack.infra_configs.name],
    module.observability.stacks,
    [platform_stack.apps.name],
  )
}
