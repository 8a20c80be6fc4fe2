# The Talos homelab (../../../shared/seeds, second document) in one apply. Talos brings the
# cluster and Cilium up; this adopts the cluster as it is (platform_cluster only reads it:
# nothing on the nodes changes), then installs everything else in dependency order:
# Flux, Gateway API with Cilium's L2 load balancing, Rook-Ceph, VolSync, KEDA, Spegel,
# k8s-gateway, External Secrets reading an external Vault, cert-manager with Cloudflare
# DNS-01, and Prometheus/Grafana/Loki.

resource "platform_cluster" "talos" {
  cluster = {
    config_path = var.kubeconfig_path
    context     = var.kube_context
  }
  min_nodes     = var.min_nodes
  node_selector = var.node_selector

  timeouts {
    create = "15m"
  }
}

locals {
  # Known once the health gate has passed: nothing below contacts the cluster before.
  cluster = platform_cluster.talos.connection
}

module "gitops" {
  source              = "../../modules/gitops"
  cluster             = local.cluster
  flux_install_url    = var.flux_install_url
  flux_install_sha256 = var.flux_install_sha256
}

# kube-system: Gateway API and Cilium's address pool, L2 announcements and Gateways;
# Spegel's registry mirror and k8s-gateway for the LAN's DNS.
resource "platform_stack" "network" {
  name      = "homelab-network"
  cluster   = local.cluster
  namespace = module.gitops.flux_namespace

  component {
    name             = "gateway-api"
    manifests_url    = var.gateway_api_crds_url
    manifests_sha256 = var.gateway_api_crds_sha256
  }

  component {
    name       = "load-balancing"
    depends_on = ["gateway-api"]
    manifests = join("---\n", [for o in [
      {
        apiVersion = "cilium.io/v2alpha1"
        kind       = "CiliumLoadBalancerIPPool"
        metadata   = { name = "lan" }
        spec = { blocks = [for r in var.load_balancer_pool : length(split("-", r)) == 2 ?
          tomap({ start = split("-", r)[0], stop = split("-", r)[1] }) : tomap({ cidr = r })
        ] }
      },
      {
        apiVersion = "cilium.io/v2alpha1"
        kind       = "CiliumL2AnnouncementPolicy"
        metadata   = { name = "lan" }
        spec       = { loadBalancerIPs = true }
      },
    ] : yamlencode(o)])
  }

  component {
    name       = "gateways"
    namespace  = "kube-system"
    depends_on = ["load-balancing"]
    manifests = join("---\n", [for name, address in {
      external = var.external_gateway_address
      internal = var.internal_gateway_address
      } : yamlencode({
        apiVersion = "gateway.networking.k8s.io/v1"
        kind       = "Gateway"
        metadata = {
          name        = name
          annotations = { "cert-manager.io/cluster-issuer" = module.certificates.cluster_issuer }
        }
        spec = {
          gatewayClassName = "cilium"
          addresses        = [{ type = "IPAddress", value = address }]
          listeners = [
            { name = "http", protocol = "HTTP", port = 80, allowedRoutes = { namespaces = { from = "All" } } },
            {
              name          = "https"
              protocol      = "HTTPS"
              port          = 443
              hostname      = "*.${var.domain}"
              allowedRoutes = { namespaces = { from = "All" } }
              tls           = { certificateRefs = [{ kind = "Secret", name = "${name}-gateway-tls" }] }
            },
          ]
        }
    })])
  }

  component {
    name      = "spegel"
    catalog   = "spegel"
    namespace = "kube-system"
  }

  component {
    name      = "k8s-gateway"
    catalog   = "k8s-gateway"
    namespace = "kube-system"
    helm {
      values = yamlencode({ domain = var.domain, watchedResources = ["HTTPRoute", "Service"] })
    }
  }
}

# Storage: Rook-Ceph (operator, then the cluster of 3 OSDs), VolSync for volume backups,
# KEDA for event-driven scaling.
resource "platform_stack" "storage" {
  name      = "homelab-storage"
  cluster   = local.cluster
  namespace = module.gitops.flux_namespace

  component {
    name    = "rook-ceph"
    catalog = "rook-ceph"
  }
  component {
    name       = "rook-ceph-cluster"
    catalog    = "rook-ceph-cluster"
    depends_on = ["rook-ceph"]
    helm {
      values = yamlencode({
        cephClusterSpec = { mon = { count = 3 }, storage = { useAllNodes = true, useAllDevices = true } }
      })
    }
  }
  component {
    name    = "volsync"
    catalog = "volsync"
  }
  component {
    name    = "keda"
    catalog = "keda"
  }
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

# External Secrets reading the Vault on the VPS (not installed here).
module "secrets" {
  source         = "../../modules/secrets"
  cluster        = local.cluster
  flux_namespace = module.gitops.flux_namespace
  backend        = "external-secrets"
  vault          = false
  vault_address  = var.vault_address
  vault_token    = var.vault_token
}

module "observability" {
  source                 = "../../modules/observability"
  cluster                = local.cluster
  flux_namespace         = module.gitops.flux_namespace
  grafana_admin_password = var.grafana_admin_password
  loki                   = true
  promtail               = true
}

# A volume of the home namespace, backed up nightly by VolSync with restic.
resource "platform_stack" "home" {
  name    = "homelab-apps"
  cluster = local.cluster

  component {
    name      = "home-assistant-config"
    namespace = "home"
    manifests = join("---\n", [
      yamlencode({ apiVersion = "v1", kind = "Namespace", metadata = { name = "home" } }),
      yamlencode({
        apiVersion = "v1"
        kind       = "PersistentVolumeClaim"
        metadata   = { name = "home-assistant-config", namespace = "home" }
        spec = {
          accessModes      = ["ReadWriteOnce"]
          storageClassName = "ceph-block"
          resources        = { requests = { storage = "5Gi" } }
        }
      }),
    ])
  }
}

resource "platform_volume_replication" "home_assistant" {
  cluster              = local.cluster
  namespace            = "home"
  name                 = "home-assistant-config"
  source_pvc           = "home-assistant-config"
  copy_method          = "Snapshot"
  repository_url       = var.restic_repository
  password             = var.restic_password
  s3_access_key_id     = var.restic_access_key_id
  s3_secret_access_key = var.restic_secret_access_key
  schedule             = "0 3 * * *"

  retain {
    daily  = 7
    weekly = 4
  }

  depends_on = [platform_stack.home, platform_stack.storage]
}
