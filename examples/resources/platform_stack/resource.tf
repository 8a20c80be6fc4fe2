data "platform_catalog" "c" {}

variable "flux_install_sha256" {
  type        = string
  description = "sha256sum of Flux's install.yaml for the pinned release."
}

variable "grafana_admin_password" {
  type      = string
  sensitive = true
}

resource "platform_stack" "infra" {
  name      = "infra-controllers"
  namespace = "flux-system" # where HelmRepository/HelmRelease objects live

  component {
    name             = "flux"
    manifests_url    = "https://github.com/fluxcd/flux2/releases/download/v2.4.0/install.yaml"
    manifests_sha256 = var.flux_install_sha256 # verified before anything is applied
  }

  component {
    name       = "cert-manager"
    depends_on = ["flux"]
    catalog    = "cert-manager" # repository, chart, pinned version, namespace
    helm {
      values = yamlencode({ prometheus = { enabled = true } })
    }
  }

  component {
    name       = "grafana"
    depends_on = ["flux"]
    catalog    = "grafana"
  }

  component {
    name       = "issuers"
    depends_on = ["cert-manager"]
    manifests  = file("${path.module}/cluster-issuers.yaml") # multi-document YAML
  }

  # Helm values that never reach plan or state (Terraform 1.11+): by component, then value
  # path. Change the version to apply new values.
  sensitive_values_wo = {
    grafana = { "adminPassword" = var.grafana_admin_password }
  }
  sensitive_values_wo_version = 1

  timeouts {
    create = "20m"
    update = "20m"
    delete = "10m"
  }
}
