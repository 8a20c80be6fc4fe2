data "platform_namespace" "kube_system" {
  name = "kube-system"
}

output "kube_system_uid" {
  value = data.platform_namespace.kube_system.uid
}
