# What external-dns wrote for an Ingress, and which external-dns owner claims it.
data "platform_dns_record" "whoami" {
  dns  = "lan"
  zone = "home.example.com"
  name = "whoami"
  type = "A"
}

output "whoami_addresses" {
  value = data.platform_dns_record.whoami.records
}

output "whoami_owner" {
  value = data.platform_dns_record.whoami.owner
}
