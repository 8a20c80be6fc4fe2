terraform {
  required_providers {
    platform = {
      source = "platform/platform"
    }
  }
}

# Uses $KUBECONFIG (or ~/.kube/config) and its current context unless told otherwise.
provider "platform" {
  kubernetes {
    config_path    = "~/.kube/config"
    config_context = "homelab"
  }

  # age identities for SOPS files; defaults like sops (SOPS_AGE_KEY, SOPS_AGE_KEY_FILE, ~/.config/sops/age/keys.txt).
  secrets {
    age_key_file = "~/.config/sops/age/keys.txt"
  }

  # DNS servers for platform_dns_record, each named; a record picks one with dns = "...".
  dns {
    name = "lan"
    rfc2136 {
      server        = "10.11.80.1:53"
      key_name      = "tf-key."
      key_algorithm = "hmac-sha256"
      key_secret    = var.tsig_secret
    }
  }
  dns {
    name     = "pdns"
    owner_id = "terraform" # claim records with external-dns's TXT registry, and leave its records alone
    powerdns {
      url     = "http://10.11.80.2:8081"
      api_key = var.pdns_api_key
    }
  }
  dns {
    name = "public"
    cloudflare {
      api_token = var.cloudflare_token
    }
  }
}

variable "tsig_secret" {
  type      = string
  sensitive = true
}
variable "pdns_api_key" {
  type      = string
  sensitive = true
}
variable "cloudflare_token" {
  type      = string
  sensitive = true
}
