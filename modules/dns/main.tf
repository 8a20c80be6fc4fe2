# One record set (every record of a name and type) per entry of var.records.
resource "platform_dns_record" "this" {
  for_each = var.records

  dns        = var.dns
  connection = var.connection
  zone       = var.zone
  name       = each.key
  type       = upper(each.value.type)
  ttl        = var.ttl
  records    = each.value.records
  adopt      = var.adopt
}
