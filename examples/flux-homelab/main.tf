# The Elysium homelab (../../../shared/seeds, third document) in one apply: Flux's
# dependency chain infra-controllers → infra-configs → apps (and monitoring beside it) as
# stacks with depends_on, its Helm repositories declared once, Sealed Secrets (a secret
# sealed with the certificate the controller made in this same apply), Traefik,
# cert-manager, the Tailscale operator, MinIO, kube-prometheus-stack, Loki and Tempo.

resource "platform_cluster" "homelab" {
  cluster = {
    config_path = var.kubeconfig_path
    context     = var.kube_context
  }
  min_nodes     = var.min_nodes
  node_selector = var.node_selector
}

locals {
  cluster = platform_cluster.homelab.connection
}

module "gitops" {
  source              = "../../modules/gitops"
  cluster             = local.cluster
  flux_install_url    = var.flux_install_url
  flux_install_sha256 = var.flux_install_sha256
}

# infra-controllers: the controllers, from repositories declared once.
resource "platform_stack" "infra_controllers" {
  name      = "infra-controllers"
  cluster   = local.cluster
  namespace = module.gitops.flux_namespace

  repository {
    name     = "sealed-secrets"
    url      = "https://bitnami-labs.github.io/sealed-secrets"
    interval = "24h"
  }
  repository {
    name     = "jetstack"
    url      = "https://charts.jetstack.io"
    interval = "24h"
  }
  repository {
    name     = "traefik"
    url      = "https://traefik.github.io/charts"
    interval = "1h"
  }
  repository {
    name     = "tailscale"
    url      = "https://pkgs.tailscale.com/helmcharts"
    interval = "1h"
  }
  repository {
    name     = "minio"
    url      = "https://charts.min.io"
    interval = "1h"
  }

  sensitive_values = {
    tailscale-operator = {
      "oauth.clientId"     = var.tailscale_oauth_client_id
      "oauth.clientSecret" = var.tailscale_oauth_client_secret
    }
    minio = {
      "rootPassword" = var.minio_root_password
    }
  }

  # Named as kubeseal expects (kube-system/sealed-secrets-controller), so the data source
  # below needs no settings.
  component {
    name    = "sealed-secrets"
    catalog = "sealed-secrets"
    helm {
      repository   = "sealed-secrets"
      release_name = "sealed-secrets-controller"
      values       = yamlencode({ fullnameOverride = "sealed-secrets-controller" })
    }
  }
  component {
    name    = "cert-manager"
    catalog = "cert-manager"
    helm {
      repository = "jetstack"
    }
  }
  component {
    name    = "traefik"
    catalog = "traefik"
    helm {
      repository = "traefik"
      values     = yamlencode({ ingressClass = { name = "traefik", isDefaultClass = true } })
    }
  }
  component {
    name    = "tailscale-operator"
    catalog = "tailscale-operator"
    helm {
      repository = "tailscale"
    }
  }
  component {
    name      = "minio"
    namespace = "minio"
    helm {
      repository = "minio"
      chart      = "minio"
      version    = var.minio_chart_version
      values = yamlencode({
        mode        = "standalone"
        rootUser    = "admin"
        buckets     = [{ name = "loki" }, { name = "tempo" }]
        persistence = { size = "50Gi" }
      })
    }
  }
}

# infra-configs: custom resources of those controllers.
resource "platform_stack" "infra_configs" {
  name       = "infra-configs"
  cluster    = local.cluster
  depends_on = [platform_stack.infra_controllers]

  component {
    name = "issuers"
    manifests = yamlencode({
      apiVersion = "cert-manager.io/v1"
      kind       = "ClusterIssuer"
      metadata   = { name = "letsencrypt" }
      spec = {
        acme = {
          email               = var.acme_email
          server              = "https://acme-v02.api.letsencrypt.org/directory"
          privateKeySecretRef = { name = "letsencrypt-account" }
          solvers             = [{ http01 = { ingress = { ingressClassName = "traefik" } } }]
        }
      }
    })
  }
  component {
    name      = "traefik-tls"
    namespace = "traefik"
    manifests = yamlencode({
      apiVersion = "traefik.io/v1alpha1"
      kind       = "TLSOption"
      metadata   = { name = "default", namespace = "traefik" }
      spec       = { minVersion = "VersionTLS12" }
    })
  }
  component {
    name = "tailscale-proxy-class"
    manifests = yamlencode({
      apiVersion = "tailscale.com/v1alpha1"
      kind       = "ProxyClass"
      metadata   = { name = "ts-default-proxy-class" }
      spec       = { statefulSet = { pod = { labels = { "app.kubernetes.io/part-of" = "tailscale" } } } }
    })
  }
}

# monitoring-controllers and their configuration, beside the infra chain.
module "observability" {
  source                 = "../../modules/observability"
  cluster                = local.cluster
  flux_namespace         = module.gitops.flux_namespace
  grafana_admin_password = var.grafana_admin_password
  grafana_hostname       = "grafana.${var.domain}"
  ingress_class          = "traefik"
  loki                   = true
  promtail               = true
  tempo                  = true
  opentelemetry          = true

  # The OpenTelemetry operator's webhook certificates come from cert-manager.
  depends_on = [platform_stack.infra_controllers]
}

# The controller's certificate, read once infra-controllers is applied (in this same
# apply: Terraform reads it after the stack).
data "platform_sealed_secrets_certificate" "this" {
  cluster    = local.cluster
  depends_on = [platform_stack.infra_controllers]
}

resource "platform_namespace" "ai" {
  name    = "ai"
  cluster = local.cluster
}

resource "platform_sealed_secret" "webui" {
  cluster     = local.cluster
  namespace   = platform_namespace.ai.name
  name        = "open-webui"
  certificate = data.platform_sealed_secrets_certificate.this.certificate
  data = {
    WEBUI_SECRET_KEY = var.webui_secret_key
  }
}

# apps: after infra-configs, as in Flux's chain.
resource "platform_stack" "apps" {
  name       = "apps"
  cluster    = local.cluster
  namespace  = module.gitops.flux_namespace
  depends_on = [platform_stack.infra_configs, platform_sealed_secret.webui]

  repository {
    name = "otwld"
    url  = "https://otwld.github.io/ollama-helm"
  }
  repository {
    name = "open-webui"
    url  = "https://helm.openwebui.com"
  }

  component {
    name      = "ollama"
    namespace = platform_namespace.ai.name
    helm {
      repository = "otwld"
      chart      = "ollama"
      version    = var.app_chart_versions["ollama"]
    }
  }
  component {
    name       = "open-webui"
    namespace  = platform_namespace.ai.name
    depends_on = ["ollama"]
    helm {
      repository = "open-webui"
      chart      = "open-webui"
      version    = var.app_chart_versions["open-webui"]
      values = yamlencode({
        ollama       = { enabled = false }
        ollamaUrls   = ["http://apps-ollama.${platform_namespace.ai.name}.svc:11434"]
        extraEnvFrom = [{ secretRef = { name = platform_sealed_secret.webui.name } }]
        ingress      = { enabled = true, class = "traefik", host = "chat.${var.domain}" }
      })
    }
  }
}
