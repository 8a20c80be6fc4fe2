terraform {
  required_version = ">= 1.0.0"

  required_providers {
    platform = {
      source = "platform/platform"
    }
  }
}

provider "platform" {
  # Public DNS records go to Cloudflare; the token stays out of state.
  dns {
    name = "public"
    cloudflare {
      api_token = var.cloudflare_api_token
      base_url  = var.cloudflare_api_url
    }
  }

  # SOPS files are decrypted inside the provider with this age identity.
  secrets {
    age_key_file = var.age_key_file
  }
}
