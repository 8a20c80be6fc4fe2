output "fqdns" {
  value       = { for k, r in platform_dns_record.this : k => trimsuffix(r.fqdn, ".") }
  description = "Fully qualified name of each record set, by the key in `records`, without the trailing dot (`grafana.home.example.com`), for Ingress hosts and certificates. Known at plan; whoever takes it waits for the records."
}

output "records" {
  value = {
    for k, r in platform_dns_record.this : k => {
      id      = r.id
      fqdn    = r.fqdn
      type    = r.type
      ttl     = r.ttl
      records = r.records
    }
  }
  description = "Each record set by the key in `records`: `id` (`zone/name/type`), `fqdn` (with its trailing dot), `type`, `ttl` and `records`."
}
