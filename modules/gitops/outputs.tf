output "flux_namespace" {
  value       = platform_stack.flux.namespace
  description = "Flux's namespace, taken from the applied stack: pass it as `flux_namespace` to the modules that install Helm charts, so that their stacks wait for Flux."
}

output "stack" {
  value       = platform_stack.flux.name
  description = "Name of the `platform_stack` holding Flux."
}
