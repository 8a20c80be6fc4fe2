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
}
