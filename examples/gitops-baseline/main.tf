# The GitOps baseline (../../../shared/seeds, fourth document) in one apply, built only from
# the modules: Flux; ingress-nginx behind MetalLB; Vault and Sealed Secrets; cert-manager
# with DNS-01 on the LAN's DNS server (RFC 2136); Prometheus, Grafana, Loki and
# OpenTelemetry; Kyverno (or OPA Gatekeeper) with baseline policies in audit mode; and the
# DNS records of what the platform exposes.

resource "platform_cluster" "this" {
  cluster = {
    config_path = var.kubeconfig_path
    context     = var.kube_context
  }
  min_nodes     = var.min_nodes
  node_selector = var.node_selector
}

locals {
  cluster = platform_cluster.this.connection
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
  load_balancer  = "metallb"
  address_pool   = var.address_pool
  values = {
    "ingress-nginx" = yamlencode({ controller = { service = { loadBalancerIP = var.ingress_address } } })
  }
}

module "secrets" {
  source         = "../../modules/secrets"
  cluster        = local.cluster
  flux_namespace = module.gitops.flux_namespace
  backend        = "sealed-secrets"
  vault          = true
}

module "certificates" {
  source                 = "../../modules/certificates"
  cluster                = local.cluster
  flux_namespace         = module.gitops.flux_namespace
  acme_email             = var.acme_email
  acme_server            = var.acme_server
  dns01_provider         = "rfc2136"
  rfc2136_nameserver     = var.dns_server
  rfc2136_tsig_key_name  = var.tsig_key_name
  rfc2136_tsig_algorithm = "HMACSHA256"
  rfc2136_tsig_secret    = var.tsig_key_secret
  dns_zones              = [var.zone]
}

module "observability" {
  source                 = "../../modules/observability"
  cluster                = local.cluster
  flux_namespace         = module.gitops.flux_namespace
  grafana_admin_password = var.grafana_admin_password
  grafana_hostname       = "grafana.${var.zone}"
  ingress_class          = module.ingress.ingress_class
  cluster_issuer         = module.certificates.cluster_issuer
  loki                   = true
  promtail               = true
  opentelemetry          = true

  # The OpenTelemetry operator's webhook certificates come from cert-manager.
  depends_on = [module.certificates]
}

module "policy" {
  source         = "../../modules/policy"
  cluster        = local.cluster
  flux_namespace = module.gitops.flux_namespace
  engine         = var.policy_engine
  baseline       = true
}

module "dns" {
  source = "../../modules/dns"
  dns    = "lan"
  zone   = var.zone
  records = {
    grafana = { type = "A", records = [var.ingress_address] }
    vault   = { type = "A", records = [var.ingress_address] }
  }
}
