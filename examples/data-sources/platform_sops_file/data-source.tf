# Values land in state (sensitive); prefer the ephemeral resource on Terraform 1.10+.
data "platform_sops_file" "dns" {
  path = "${path.module}/secrets/dns.sops.yaml"
}

output "dns_zone" {
  value     = data.platform_sops_file.dns.data["zone"]
  sensitive = true
}
