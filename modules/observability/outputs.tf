output "namespace" {
  value       = local.namespace
  description = "Namespace of kube-prometheus-stack, Loki, Promtail and Tempo (the OpenTelemetry operator keeps the catalog's `opentelemetry-operator-system`). Whoever takes it waits for the stack."
  depends_on  = [platform_stack.observability]
}

output "grafana_hostname" {
  value       = var.grafana_hostname
  description = "Host name of the Grafana Ingress (for a DNS record), or `null` when there is none."
  depends_on  = [platform_stack.observability]
}

output "grafana_service" {
  value       = "${local.namespace}/${local.grafana_service}"
  description = "Grafana's Service as `namespace/name` (port 80), e.g. for `kubectl port-forward` or an Ingress of your own."
  depends_on  = [platform_stack.observability]
}

output "stacks" {
  value       = [platform_stack.observability.name]
  description = "Names of the module's `platform_stack`s."
}
