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

# A CRD and its custom resources in one plan and one apply: the second component waits
# for the first, whose CRD must be Established before the Backup objects are applied.
resource "platform_stack" "backups" {
  name = "backup-policies"

  component {
    name      = "crds"
    manifests = <<-YAML
      apiVersion: apiextensions.k8s.io/v1
      kind: CustomResourceDefinition
      metadata:
        name: backuppolicies.platform.example.com
      spec:
        group: platform.example.com
        names: { kind: BackupPolicy, plural: backuppolicies, singular: backuppolicy, listKind: BackupPolicyList }
        scope: Namespaced
        versions:
          - name: v1
            served: true
            storage: true
            schema:
              openAPIV3Schema: { type: object, x-kubernetes-preserve-unknown-fields: true }
    YAML
  }

  component {
    name       = "policies"
    depends_on = ["crds"]
    manifests = join("\n---\n", [for env, _ in local.environments : yamlencode({
      apiVersion = "platform.example.com/v1"
      kind       = "BackupPolicy"
      metadata   = { name = "nightly", namespace = platform_namespace.environment[env].name }
      spec       = { schedule = "0 3 * * *", retention = env == "production" ? "30d" : "7d" }
    })])
  }
}

variable "grafana_admin_password" {
  type      = string
  sensitive = true
  default   = "change-me-in-a-tfvars-file"
}

resource "platform_secret" "grafana_admin" {
  namespace = platform_namespace.system["monitoring"].name
  name      = "grafana-admin"
  data      = { password = var.grafana_admin_password }
}
