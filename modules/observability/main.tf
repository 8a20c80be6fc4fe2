locals {
  # Every chart but the OpenTelemetry operator goes to the catalog's namespace for them,
  # set on the components so that the Service names below stay right.
  namespace = "monitoring"

  # Helm release names: the provider's default, `<stack>-<component>`.
  release = {
    for component in ["kube-prometheus-stack", "loki", "promtail", "tempo", "opentelemetry-operator"] :
    component => "${var.name}-${component}"
  }

  # Service names as the charts make them from the release name: `<release>-<chart>`, or the
  # release name alone when it contains the chart's name (Grafana's, a subchart of
  # kube-prometheus-stack; Loki's and Tempo's always do: `<name>-loki`, `<name>-tempo`).
  grafana_service = length(regexall("grafana", local.release["kube-prometheus-stack"])) > 0 ? local.release["kube-prometheus-stack"] : "${local.release["kube-prometheus-stack"]}-grafana"
  loki_url        = "http://${local.release["loki"]}-gateway.${local.namespace}.svc.cluster.local"
  tempo_url       = "http://${local.release["tempo"]}.${local.namespace}.svc.cluster.local:3200"

  # Grafana data sources besides the Prometheus one kube-prometheus-stack provisions.
  datasources = concat(
    var.loki ? [{
      name   = "Loki"
      type   = "loki"
      uid    = "loki"
      access = "proxy"
      url    = local.loki_url
    }] : [],
    var.tempo ? [{
      name     = "Tempo"
      type     = "tempo"
      uid      = "tempo"
      access   = "proxy"
      url      = local.tempo_url
      jsonData = var.loki ? { tracesToLogsV2 = { datasourceUid = "loki" } } : {}
    }] : [],
  )

  grafana_ingress = merge(
    {
      enabled = true
      hosts   = [var.grafana_hostname]
    },
    var.ingress_class != null ? { ingressClassName = var.ingress_class } : {},
    # (One attribute per conditional: Terraform unifies `{ a = ... }` with `{}`, but not
    # objects of several attributes of different types.)
    var.cluster_issuer != null ? { annotations = { "cert-manager.io/cluster-issuer" = var.cluster_issuer } } : {},
    var.cluster_issuer != null ? { tls = [{ secretName = "${var.name}-grafana-tls", hosts = [var.grafana_hostname] }] } : {},
  )

  # The module's Helm values; var.values are merged over them at the top level, and the
  # catalog's defaults lie under both (Prometheus selects monitors of every release, Loki
  # is a single binary on a filesystem volume).
  defaults = {
    "kube-prometheus-stack" = {
      grafana = merge(
        { additionalDataSources = local.datasources },
        var.grafana_hostname != null ? { ingress = local.grafana_ingress } : {},
      )
    }
    loki = {}
    # Promtail's default client is `loki-gateway`, the gateway of a release named `loki`.
    promtail = {
      config = { clients = [{ url = "${local.loki_url}/loki/api/v1/push" }] }
    }
    tempo                    = {}
    "opentelemetry-operator" = {}
  }

  helm_values = {
    for component, defaults in local.defaults :
    component => yamlencode(merge(defaults, try(yamldecode(var.values[component]), {})))
  }

  # The optional components, with what each needs first in this stack. Promtail only comes
  # with Loki; the OpenTelemetry operator keeps the catalog's namespace.
  optional = {
    loki                     = { enabled = var.loki, depends_on = [], namespace = local.namespace }
    promtail                 = { enabled = var.loki && var.promtail, depends_on = ["loki"], namespace = local.namespace }
    tempo                    = { enabled = var.tempo, depends_on = [], namespace = local.namespace }
    "opentelemetry-operator" = { enabled = var.opentelemetry, depends_on = [], namespace = null }
  }
}

resource "platform_stack" "observability" {
  cluster   = var.cluster
  name      = var.name
  namespace = var.flux_namespace

  # Grafana's admin password, kept out of plans: a values Secret in the Flux namespace.
  sensitive_values = {
    kube-prometheus-stack = {
      "grafana.adminPassword" = var.grafana_admin_password
    }
  }

  component {
    name      = "kube-prometheus-stack"
    catalog   = "kube-prometheus-stack"
    namespace = local.namespace
    helm {
      version = lookup(var.versions, "kube-prometheus-stack", null)
      values  = local.helm_values["kube-prometheus-stack"]
      timeout = "10m"
    }
  }

  dynamic "component" {
    for_each = { for name, c in local.optional : name => c if c.enabled }
    content {
      name       = component.key
      catalog    = component.key
      namespace  = component.value.namespace
      depends_on = length(component.value.depends_on) > 0 ? component.value.depends_on : null
      helm {
        version = lookup(var.versions, component.key, null)
        values  = local.helm_values[component.key]
      }
    }
  }
}
