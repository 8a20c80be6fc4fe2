locals {
  controllers_stack = "${var.name}-controllers"
  issuers_stack     = "${var.name}-issuers"

  # The catalog's namespace for cert-manager, set on the component: the DNS-01 credentials
  # Secret goes there, where cert-manager looks for the Secrets of ClusterIssuers.
  namespace = "cert-manager"

  # The module's Helm values; var.values are merged over them at the top level (the
  # catalog's own defaults install the CRDs with the chart).
  defaults = {
    "cert-manager" = {}
  }

  helm_values = {
    for component, defaults in local.defaults :
    component => merge(defaults, yamldecode(lookup(var.values, component, "{}")))
  }

  # Terraform 1.0 has no preconditions: a missing credential fails the plan here, naming it.
  check_cloudflare = var.dns01_provider == "cloudflare" && var.cloudflare_api_token == null ? tobool("cloudflare_api_token is required with dns01_provider = \"cloudflare\".") : true
  check_rfc2136 = var.dns01_provider == "rfc2136" && (
    var.rfc2136_nameserver == null || var.rfc2136_tsig_key_name == null || var.rfc2136_tsig_secret == null
  ) ? tobool("rfc2136_nameserver, rfc2136_tsig_key_name and rfc2136_tsig_secret are required with dns01_provider = \"rfc2136\".") : true

  # The DNS-01 credentials: one key in one Secret.
  secret_name = "${var.name}-${var.dns01_provider}"
  secret_key  = var.dns01_provider == "cloudflare" ? "api-token" : "tsig-secret"
  secret_data = {
    (local.secret_key) = var.dns01_provider == "cloudflare" ? var.cloudflare_api_token : var.rfc2136_tsig_secret
  }

  solvers = {
    cloudflare = {
      cloudflare = {
        apiTokenSecretRef = { name = local.secret_name, key = local.secret_key }
      }
    }
    rfc2136 = {
      rfc2136 = {
        nameserver          = var.rfc2136_nameserver
        tsigKeyName         = var.rfc2136_tsig_key_name
        tsigAlgorithm       = coalesce(var.rfc2136_tsig_algorithm, "HMACSHA256")
        tsigSecretSecretRef = { name = local.secret_name, key = local.secret_key }
      }
    }
  }

  cluster_issuer = {
    apiVersion = "cert-manager.io/v1"
    kind       = "ClusterIssuer"
    metadata   = { name = var.issuer_name }
    spec = {
      acme = {
        email               = var.acme_email
        server              = var.acme_server
        privateKeySecretRef = { name = "${var.issuer_name}-account-key" }
        solvers = [
          merge(
            { dns01 = local.solvers[var.dns01_provider] },
            length(var.dns_zones) > 0 ? { selector = { dnsZones = var.dns_zones } } : {},
          )
        ]
      }
    }
  }
}

resource "platform_stack" "controllers" {
  cluster   = var.cluster
  name      = local.controllers_stack
  namespace = var.flux_namespace

  component {
    name      = "cert-manager"
    catalog   = "cert-manager"
    namespace = local.namespace
    helm {
      version = lookup(var.versions, "cert-manager", null)
      values  = yamlencode(local.helm_values["cert-manager"])
    }
  }
}

# The Cloudflare token or TSIG secret, in cert-manager's namespace (which the Helm release
# creates). `data` rather than write-only `data_wo`, so that Terraform 1.0 takes it; it is
# stored in state, marked sensitive.
resource "platform_secret" "dns01" {
  cluster    = var.cluster
  namespace  = local.namespace
  name       = local.secret_name
  labels     = { "app.kubernetes.io/part-of" = local.issuers_stack }
  data       = local.secret_data
  depends_on = [platform_stack.controllers]
}

resource "platform_stack" "issuers" {
  cluster   = var.cluster
  name      = local.issuers_stack
  namespace = var.flux_namespace

  component {
    name      = "cluster-issuer"
    manifests = yamlencode(local.cluster_issuer)
  }

  depends_on = [platform_stack.controllers, platform_secret.dns01]
}
