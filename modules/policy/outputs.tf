output "engine" {
  value       = var.engine
  description = "The installed policy engine: `kyverno` or `gatekeeper`."
  depends_on  = [platform_stack.controllers]
}

output "namespace" {
  value       = local.namespace
  description = "The engine's namespace: `kyverno` or `gatekeeper-system`. Whoever takes it waits for the engine."
  depends_on  = [platform_stack.controllers]
}

output "stacks" {
  value = concat(
    [platform_stack.controllers.name],
    [for s in platform_stack.baseline : s.name],
    [for s in platform_stack.constraints : s.name],
  )
  description = "Names of the module's `platform_stack`s, in the order they are applied."
}
