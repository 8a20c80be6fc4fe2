# The whole RRset of a name and type: two A records for Grafana on the LAN server.
resource "platform_dns_record" "grafana" {
  dns     = "lan" # the provider's dns block named "lan"
  zone    = "home.example.com"
  name    = "grafana" # relative to the zone; "@" for the apex
  type    = "A"
  ttl     = 300
  records = ["10.11.80.80", "10.11.80.81"]
}

# Values are normalised: case, trailing dots, IPv6 forms, quoting and order never show as
# changes. TXT values are plain text, cut into 255-byte strings for you.
resource "platform_dns_record" "spf" {
  dns     = "lan"
  zone    = "home.example.com"
  name    = "@"
  type    = "TXT"
  records = ["v=spf1 mx -all"]
}

resource "platform_dns_record" "caa" {
  dns     = "lan"
  zone    = "home.example.com"
  name    = "@"
  type    = "CAA"
  records = ["0 issue \"letsencrypt.org\"", "0 iodef \"mailto:security@example.com\""]
}

# A record set that exists already (written by hand, or by external-dns) is refused
# unless adopted; the plan then shows the records it replaces in adopted_records.
# Destroy leaves an adopted set in place unless on_destroy = "delete".
resource "platform_dns_record" "legacy" {
  dns     = "lan"
  zone    = "home.example.com"
  name    = "nas"
  type    = "A"
  records = ["10.11.80.5"]
  adopt   = true
}

# A server created in the same apply: the record carries its own connection, and
# planning contacts nothing while it is unknown.
resource "platform_dns_record" "public" {
  zone    = "example.com"
  name    = "status"
  type    = "CNAME"
  records = ["example.github.io."]

  connection = {
    api_token = var.cloudflare_token
  }
}

variable "cloudflare_token" {
  type      = string
  sensitive = true
}
