# The namespaces of a typical self-hosted platform, in one apply.
terraform {
  required_providers {
    platform = {
      source = "platform/platform"
    }
  }
}

provider "platform" {}

locals {
  environments = {
    production = "production"
    staging    = "staging"
    testing    = "testing"
  }
  system = {
    monitoring     = "observability"
    "flux-system"  = "gitops"
    "cert-manager" = "security"
  }
}

resource "platform_namespace" "environment" {
  for_each = local.environments
  name     = each.key
  labels = {
    "app.kubernetes.io/part-of" = "platform"
    environment                 = each.value
  }
}

resource "platform_namespace" "system" {
  for_each = local.system
  name     = each.key
  labels = {
    "app.kubernetes.io/part-of" = "platform"
    "platform/area"             = each.value
  }
  annotations = {
    owner = "platform-team"
  }
}

output "namespaces" {
  value = sort(concat(
    [for ns in platform_namespace.environment : ns.name],
    [for ns in platform_namespace.system : ns.name],
  ))
}
