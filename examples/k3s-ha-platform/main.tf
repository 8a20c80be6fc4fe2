# The Helix AI platform (../../../shared/seeds, first document) in one apply: a k3s cluster
# of 3 servers and 4 agents, Flux, ingress-nginx, cert-manager with Cloudflare DNS-01,
# Prometheus/Grafana/Loki/Tempo/Mimir, Velero, SOPS-encrypted secrets, public DNS records,
# and the component list of the document. Everything after the cluster reaches it through
# `platform_k3s_cluster.helix.connection`, unknown until the servers are up: the plan
# contacts no host and no cluster.

locals {
  cluster = platform_k3s_cluster.helix.connection
}

resource "platform_k3s_cluster" "helix" {
  name         = "helix"
  version      = var.k3s_version
  api_endpoint = var.api_endpoint
  # ingress-nginx replaces Traefik; Cilium runs chained on flannel (network policy).
  server_config = yamlencode({
    disable                 = ["traefik"]
    "write-kubeconfig-mode" = "0600"
  })

  servers = { for name, host in var.servers : name => { host = host, bootstrap = name == sort(keys(var.servers))[0] } }
  agents  = { for name, host in var.agents : name => { host = host } }

  ssh {
    user             = var.ssh_user
    private_key_path = var.ssh_private_key_path
    known_hosts      = file(var.known_hosts_file)
  }

  install {
    script_url = var.k3s_install_script_url
  }

  upgrade {
    drain_timeout   = "10m"
    snapshot_before = true
  }
}

module "gitops" {
  source              = "../../modules/gitops"
  cluster             = local.cluster
  flux_install_url    = var.flux_install_url
  flux_install_sha256 = var.flux_install_sha256
}

module "ingress" {
  source         = "../../modules/ingress"
  cluster        = local.cluster
  flux_namespace = module.gitops.flux_namespace
  controller     = "ingress-nginx"
  load_balancer  = "none" # k3s's service load balancer
}

module "certificates" {
  source               = "../../modules/certificates"
  cluster              = local.cluster
  flux_namespace       = module.gitops.flux_namespace
  acme_email           = var.acme_email
  acme_server          = var.acme_server
  dns01_provider       = "cloudflare"
  cloudflare_api_token = var.cloudflare_api_token
  dns_zones            = [var.domain]
}

module "observability" {
  source                 = "../../modules/observability"
  cluster                = local.cluster
  flux_namespace         = module.gitops.flux_namespace
  grafana_admin_password = var.grafana_admin_password
  grafana_hostname       = "grafana.${var.domain}"
  ingress_class          = module.ingress.ingress_class
  cluster_issuer         = module.certificates.cluster_issuer
  loki                   = true
  promtail               = true
  tempo                  = true
}

module "backups" {
  source            = "../../modules/backups"
  cluster           = local.cluster
  flux_namespace    = module.gitops.flux_namespace
  bucket            = var.backup_bucket
  s3_url            = var.backup_s3_url
  access_key_id     = var.backup_access_key_id
  secret_access_key = var.backup_secret_access_key
  schedules = {
    nightly = {
      schedule            = "0 3 * * *"
      ttl                 = "720h"
      included_namespaces = ["production", "data-plane"]
    }
  }
}

module "dns" {
  source = "../../modules/dns"
  dns    = "public"
  zone   = var.domain
  records = {
    "@"       = { type = "A", records = var.ingress_addresses }
    "grafana" = { type = "A", records = var.ingress_addresses }
    "staging" = { type = "A", records = var.ingress_addresses }
  }
}

# The environments of the document, and the application's secrets in each, decrypted from
# the SOPS file inside the provider (never in plan or state).
resource "platform_namespace" "environments" {
  for_each = toset(["production", "staging", "testing"])
  name     = each.key
  cluster  = local.cluster
}

resource "platform_secret" "app" {
  for_each  = platform_namespace.environments
  cluster   = local.cluster
  namespace = each.value.name
  name      = "helix-secrets"
  sops_file = var.app_secrets_file
}

# kube-system: Cilium chained on flannel for network policy, metrics, config reloads and
# k3s upgrades.
resource "platform_stack" "system" {
  name      = "helix-system"
  cluster   = local.cluster
  namespace = module.gitops.flux_namespace

  component {
    name    = "cilium"
    catalog = "cilium"
    helm {
      values = yamlencode({
        cni                  = { chainingMode = "generic-veth", customConf = true, configMap = "cni-configuration" }
        routingMode          = "native"
        enableIPv4Masquerade = false
      })
    }
  }
  component {
    name    = "metrics-server"
    catalog = "metrics-server"
  }
  component {
    name    = "reloader"
    catalog = "reloader"
  }
  component {
    name    = "system-upgrade-controller"
    catalog = "system-upgrade-controller"
  }
}

# data-plane: storage and the data services.
resource "platform_stack" "data" {
  name      = "helix-data"
  cluster   = local.cluster
  namespace = module.gitops.flux_namespace

  component {
    name      = "openebs"
    catalog   = "openebs"
    namespace = "data-plane"
  }
  component {
    name       = "redis"
    catalog    = "redis"
    namespace  = "data-plane"
    depends_on = ["openebs"]
  }
  component {
    name       = "mysql"
    catalog    = "mysql"
    namespace  = "data-plane"
    depends_on = ["openebs"]
  }
  component {
    name       = "rabbitmq"
    catalog    = "rabbitmq"
    namespace  = "data-plane"
    depends_on = ["openebs"]
  }
  component {
    name      = "kafka-operator"
    catalog   = "strimzi-kafka-operator"
    namespace = "data-plane"
  }
}

# Traffic management, delivery and security tooling.
resource "platform_stack" "mesh" {
  name      = "helix-mesh"
  cluster   = local.cluster
  namespace = module.gitops.flux_namespace

  component {
    name    = "istio-base"
    catalog = "istio-base"
  }
  component {
    name       = "istiod"
    catalog    = "istiod"
    depends_on = ["istio-base"]
  }
  component {
    name       = "istio-gateway"
    catalog    = "istio-gateway"
    depends_on = ["istiod"]
  }
  component {
    name       = "flagger"
    catalog    = "flagger"
    depends_on = ["istiod"]
  }
  component {
    name    = "falco"
    catalog = "falco"
  }
  component {
    name    = "trivy-operator"
    catalog = "trivy-operator"
  }
  component {
    name    = "chaos-mesh"
    catalog = "chaos-mesh"
  }
}

# network: the tunnel, DNS automation and long-term metrics.
resource "platform_stack" "network" {
  name      = "helix-network"
  cluster   = local.cluster
  namespace = module.gitops.flux_namespace

  component {
    name      = "cloudflared"
    catalog   = "cloudflared"
    namespace = "network"
  }
  component {
    name      = "external-dns"
    catalog   = "external-dns"
    namespace = "network"
  }
  component {
    name      = "k8s-gateway"
    catalog   = "k8s-gateway"
    namespace = "network"
    helm {
      values = yamlencode({ domain = var.domain })
    }
  }
  component {
    name      = "mimir"
    catalog   = "mimir"
    namespace = "monitoring"
  }
}
