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
}
