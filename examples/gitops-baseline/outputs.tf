output "ingress_class" {
  description = "IngressClass of the platform's ingress controller."
  value       = module.ingress.ingress_class
}

output "grafana_url" {
  description = "Where Grafana answers."
  value       = "https://${module.observability.grafana_hostname}"
}

output "dns_names" {
  description = "The names the platform put in the zone."
  value       = module.dns.fqdns
}

output "policy_engine" {
  description = "The policy engine installed."
  value       = module.policy.engine
}
