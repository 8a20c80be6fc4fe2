# A typical self-hosted platform in one apply: infra-controllers -> infra-configs -> apps,
# the chain Flux users know from their repositories, as three stacks.
terraform {
  required_providers {
    platform = { source = "platform/platform" }
  }
}

provider "platform" {
  # The LAN's authoritative server, for the names of the platform's services.
  dns {
    name = "lan"
    rfc2136 {
      server     = var.dns_server
      key_name   = "tf-key."
      key_secret = var.tsig_secret
    }
  }
}

variable "dns_server" {
  type        = string
  description = "The zone's primary server, host:port"
}

variable "tsig_secret" {
  type      = string
  sensitive = true
}

variable "ingress_address" {
  type        = string
  description = "The address ingress-nginx's LoadBalancer service answers on"
}

variable "flux_install_sha256" {
  type        = string
  description = "sha256sum of https://github.com/fluxcd/flux2/releases/download/v2.4.0/install.yaml"
}

variable "grafana_admin_password" {
  type      = string
  sensitive = true
}

resource "platform_stack" "infra_controllers" {
  name = "infra-controllers"

  # Kept out of plans and logs; the components themselves stay readable in plans.
  sensitive_values = {
    kube-prometheus-stack = {
      "grafana.adminPassword" = var.grafana_admin_password
    }
  }

  component {
    name             = "flux"
    manifests_url    = "https://github.com/fluxcd/flux2/releases/download/v2.4.0/install.yaml"
    manifests_sha256 = var.flux_install_sha256
  }
  component {
    name       = "cert-manager"
    depends_on = ["flux"]
    catalog    = "cert-manager"
  }
  component {
    name       = "ingress-nginx"
    depends_on = ["flux"]
    catalog    = "ingress-nginx"
  }
  component {
    name       = "sealed-secrets"
    depends_on = ["flux"]
    catalog    = "sealed-secrets"
  }
  component {
    name       = "kube-prometheus-stack"
    depends_on = ["flux"]
    catalog    = "kube-prometheus-stack"
  }
}

# CRs of the controllers above: planned now, applied once their CRDs exist.
resource "platform_stack" "infra_configs" {
  name       = "infra-configs"
  depends_on = [platform_stack.infra_controllers]

  component {
    name      = "issuers"
    manifests = <<-YAML
      apiVersion: cert-manager.io/v1
      kind: ClusterIssuer
      metadata:
        name: selfsigned
      spec:
        selfSigned: {}
    YAML
  }
}

resource "platform_stack" "apps" {
  name       = "apps"
  depends_on = [platform_stack.infra_configs]

  component {
    name      = "podinfo"
    namespace = "podinfo"
    helm {
      repository = "oci://ghcr.io/stefanprodan/charts"
      chart      = "podinfo"
      version    = "6.7.1"
      values     = yamlencode({ replicaCount = 2 })
    }
  }
}

# The name podinfo is reached by, through ingress-nginx.
resource "platform_dns_record" "podinfo" {
  dns     = "lan"
  zone    = "home.example.com"
  name    = "podinfo"
  type    = "A"
  records = [var.ingress_address]
}
