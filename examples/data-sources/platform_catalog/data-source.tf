data "platform_catalog" "c" {}

output "cert_manager_version" {
  value = data.platform_catalog.c.components["cert-manager"].version
}

output "known_components" {
  value = data.platform_catalog.c.names
}
