locals {
  controllers_stack = "${var.name}-controllers"
  stores_stack      = "${var.name}-stores"

  # The backend's namespace, set on its component (the catalog's).
  namespaces = {
    "sealed-secrets"   = "kube-system"
    "external-secrets" = "external-secrets"
  }
  namespace = local.namespaces[var.backend]

  # Vault is not in the catalog: its chart, pinned here.
  vault_chart = {
    repository = "https://helm.releases.hashicorp.com"
    chart      = "vault"
    version    = "0.34.1"
  }
  vault_namespace = "vault"
  # The chart names its Service after the release (`<stack>-vault` contains "vault"); TLS is
  # off by default (global.tlsDisable).
  vault_release       = "${local.controllers_stack}-vault"
  vault_address       = var.vault_address != null ? var.vault_address : (var.vault ? "http://${local.vault_release}.${local.vault_namespace}.svc:8200" : null)
  vault_token_secret  = "vault-token"
  secret_store        = "vault"
  external_secrets    = var.backend == "external-secrets"
  with_store          = local.external_secrets && nonsensitive(var.vault_token != null)
  store_vault_address = local.with_store ? local.vault_address : null

  # Terraform 1.0 has no preconditions: a store with no Vault to read fails the plan here.
  check_vault_address = local.with_store && local.vault_address == null ? tobool("vault_address is required with vault_token when vault = false (no Vault of this module to point at).") : true
  check_vault_token   = !local.external_secrets && nonsensitive(var.vault_token != null) ? tobool("vault_token is only used with backend = \"external-secrets\".") : true

  # The module's Helm values; var.values are merged over them at the top level.
  defaults = {
    "sealed-secrets"   = {}
    "external-secrets" = {}
    vault = {
      server = {
        # Ready while sealed or uninitialized (Vault's health endpoint answers 204 then), so
        # that the release installs; a human initializes and unseals Vault afterwards.
        readinessProbe = {
          enabled = true
          path    = "/v1/sys/health?standbyok=true&sealedcode=204&uninitcode=204"
        }
      }
    }
  }

  helm_values = {
    for component, defaults in local.defaults :
    component => yamlencode(merge(defaults, try(yamldecode(var.values[component]), {})))
  }

  cluster_secret_store = {
    apiVersion = "external-secrets.io/v1"
    kind       = "ClusterSecretStore"
    metadata   = { name = local.secret_store }
    spec = {
      provider = {
        vault = {
          server  = local.store_vault_address
          path    = var.vault_kv_path
          version = "v2"
          auth = {
            tokenSecretRef = {
              name      = local.vault_token_secret
              namespace = local.namespace
              key       = "token"
            }
          }
        }
      }
    }
  }
}

resource "platform_stack" "controllers" {
  cluster   = var.cluster
  name      = local.controllers_stack
  namespace = var.flux_namespace

  component {
    name      = var.backend
    catalog   = var.backend
    namespace = local.namespace
    helm {
      version = lookup(var.versions, var.backend, null)
      values  = local.helm_values[var.backend]
    }
  }

  dynamic "component" {
    for_each = var.vault ? ["vault"] : []
    content {
      name      = component.value
      namespace = local.vault_namespace
      helm {
        repository = local.vault_chart.repository
        chart      = local.vault_chart.chart
        version    = lookup(var.versions, "vault", local.vault_chart.version)
        values     = local.helm_values["vault"]
      }
    }
  }
}

# The Vault token External Secrets authenticates with, in its namespace (which the Helm
# release creates). `data` rather than write-only `data_wo`, so that Terraform 1.0 takes
# it; it is stored in state, marked sensitive.
resource "platform_secret" "vault_token" {
  count = local.with_store ? 1 : 0

  cluster    = var.cluster
  namespace  = local.namespace
  name       = local.vault_token_secret
  labels     = { "app.kubernetes.io/part-of" = local.stores_stack }
  data       = { token = var.vault_token }
  depends_on = [platform_stack.controllers]
}

# The ClusterSecretStore, once External Secrets' CRDs exist.
resource "platform_stack" "stores" {
  count = local.with_store ? 1 : 0

  cluster   = var.cluster
  name      = local.stores_stack
  namespace = var.flux_namespace

  component {
    name      = "cluster-secret-store"
    manifests = yamlencode(local.cluster_secret_store)
  }

  depends_on = [platform_stack.controllers, platform_secret.vault_token]
}
