variable "dns" {
  type        = string
  default     = null
  description = "Name of the provider's `dns` block holding the zone; `null` when the provider has one block (or one named `default`), or when `connection` is given."
}

variable "connection" {
  type        = map(string)
  sensitive   = true
  default     = null
  description = "The DNS server, given on every record instead of a provider `dns` block: the keys of one backend, as `platform_dns_record`'s `connection` takes them (RFC 2136: `server`, `key_name`, `key_algorithm`, `key_secret`; PowerDNS: `url`, `api_key`, `server_id`; Cloudflare: `api_token`, `base_url`; optional `owner_id`). Kept in state (marked sensitive), credentials included; a provider `dns` block keeps them out."
}

variable "zone" {
  type        = string
  description = "The zone, e.g. `home.example.com`."
}

variable "ttl" {
  type        = number
  default     = 300
  description = "Time to live of every record set, in seconds."
}

variable "records" {
  type = map(object({
    type    = string
    records = list(string)
  }))
  description = "Record sets by owner name relative to the zone (`grafana`, `@` for the apex, or an absolute name ending in `.`): their `type` (A, AAAA, CNAME, TXT, MX, SRV, CAA, NS or PTR) and every record of the set, e.g. `{ grafana = { type = \"A\", records = module.ingress.address_pool } }`. One type per name: call the module again for a second type."

  validation {
    condition     = alltrue([for r in values(var.records) : contains(["A", "AAAA", "CNAME", "TXT", "MX", "SRV", "CAA", "NS", "PTR"], upper(r.type))])
    error_message = "Each record's type must be one of A, AAAA, CNAME, TXT, MX, SRV, CAA, NS or PTR."
  }
}

variable "adopt" {
  type        = bool
  default     = false
  description = "Take over record sets that already exist (otherwise creating one fails, naming the records found). Adopted sets are left in place on destroy."
}
