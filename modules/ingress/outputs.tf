output "ingress_class" {
  value       = local.ingress_class
  description = "Name of the controller's IngressClass (`nginx` or `traefik` unless `values` rename it), for `ingressClassName`. Known at plan; whoever takes it waits for the controller."
  depends_on  = [platform_stack.controllers]
}

output "namespace" {
  value       = local.namespaces[var.controller]
  description = "Namespace of the ingress controller."
  depends_on  = [platform_stack.controllers]
}

output "controller_service" {
  value       = "${local.namespaces[var.controller]}/${local.controller_service}"
  description = "`namespace/name` of the controller's LoadBalancer Service, as its chart names it for the release `<name>-controllers-<controller>` (e.g. `ingress-nginx/ingress-controllers-ingress-nginx-controller`)."
  depends_on  = [platform_stack.controllers]
}

output "address_pool" {
  value       = var.address_pool
  description = "The addresses LoadBalancer Services get (as given in `address_pool`), for DNS records; available once the pool is applied."
  depends_on  = [platform_stack.controllers]
}

output "stacks" {
  value       = [platform_stack.controllers.name]
  description = "Names of the module's `platform_stack`s."
}
