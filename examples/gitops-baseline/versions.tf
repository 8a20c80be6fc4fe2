terraform {
  required_version = ">= 1.0.0"

  required_providers {
    platform = {
      source = "platform/platform"
    }
  }
}

provider "platform" {
  # The LAN's DNS server takes RFC 2136 updates signed with this TSIG key, for the
  # platform's records and for cert-manager's DNS-01 challenges.
  dns {
    name = "lan"
    rfc2136 {
      server        = var.dns_server
      key_name      = var.tsig_key_name
      key_algorithm = "hmac-sha256"
      key_secret    = var.tsig_key_secret
    }
  }
}
