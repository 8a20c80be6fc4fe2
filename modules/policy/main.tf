locals {
  controllers_stack = "${var.name}-controllers"
  baseline_stack    = "${var.name}-baseline"
  constraints_stack = "${var.name}-constraints"

  namespaces = {
    kyverno    = "kyverno"
    gatekeeper = "gatekeeper-system"
  }
  namespace = local.namespaces[var.engine]

  # Gatekeeper is not in the catalog: its chart, pinned here.
  gatekeeper_chart = {
    repository = "https://open-policy-agent.github.io/gatekeeper/charts"
    chart      = "gatekeeper"
    version    = "3.23.0"
  }

  # Namespaces the baseline leaves alone (CNI, CSI and other node agents run there).
  exempt_namespaces = ["kube-system"]

  # The module's Helm values; var.values are merged over them at the top level.
  defaults = {
    kyverno    = {}
    gatekeeper = {}
  }

  helm_values = {
    for component, defaults in local.defaults :
    component => yamlencode(merge(defaults, try(yamldecode(var.values[component]), {})))
  }

  # Kyverno: ClusterPolicies validating Pods, each rule in Audit (reported in
  # PolicyReports, never refused). Controllers' Pod templates are checked through the
  # rules Kyverno generates for them.
  pods = {
    any = [{ resources = { kinds = ["Pod"] } }]
  }
  exempt = {
    any = [{ resources = { namespaces = local.exempt_namespaces } }]
  }
  kyverno_policies = [
    {
      apiVersion = "kyverno.io/v1"
      kind       = "ClusterPolicy"
      metadata = {
        name = "baseline-no-privileged-containers"
        annotations = {
          "policies.kyverno.io/title"       = "No privileged containers"
          "policies.kyverno.io/category"    = "Pod security baseline"
          "policies.kyverno.io/description" = "A privileged container has every capability and the host's devices: it is as good as root on the node."
        }
      }
      spec = {
        background = true
        rules = [{
          name    = "no-privileged-containers"
          match   = local.pods
          exclude = local.exempt
          validate = {
            failureAction = "Audit"
            message       = "Containers must not set securityContext.privileged to true."
            pattern = {
              spec = {
                "=(ephemeralContainers)" = [{ "=(securityContext)" = { "=(privileged)" = false } }]
                "=(initContainers)"      = [{ "=(securityContext)" = { "=(privileged)" = false } }]
                containers               = [{ "=(securityContext)" = { "=(privileged)" = false } }]
              }
            }
          }
        }]
      }
    },
    {
      apiVersion = "kyverno.io/v1"
      kind       = "ClusterPolicy"
      metadata = {
        name = "baseline-no-host-namespaces"
        annotations = {
          "policies.kyverno.io/title"       = "No host namespaces"
          "policies.kyverno.io/category"    = "Pod security baseline"
          "policies.kyverno.io/description" = "Pods sharing the node's network, process or IPC namespace can see and reach what runs on the node."
        }
      }
      spec = {
        background = true
        rules = [{
          name    = "no-host-namespaces"
          match   = local.pods
          exclude = local.exempt
          validate = {
            failureAction = "Audit"
            message       = "Pods must not set hostNetwork, hostPID or hostIPC to true."
            pattern = {
              spec = {
                "=(hostNetwork)" = false
                "=(hostPID)"     = false
                "=(hostIPC)"     = false
              }
            }
          }
        }]
      }
    },
    {
      apiVersion = "kyverno.io/v1"
      kind       = "ClusterPolicy"
      metadata = {
        name = "baseline-run-as-non-root"
        annotations = {
          "policies.kyverno.io/title"       = "Run as non-root"
          "policies.kyverno.io/category"    = "Pod security (restricted)"
          "policies.kyverno.io/description" = "Containers must say they run as a non-root user: in the Pod's securityContext, or in every container's."
        }
      }
      spec = {
        background = true
        rules = [{
          name    = "run-as-non-root"
          match   = local.pods
          exclude = local.exempt
          validate = {
            failureAction = "Audit"
            message       = "Set securityContext.runAsNonRoot to true on the Pod, or on every container, and to false on none."
            anyPattern = [
              # Set on the Pod, and no container turns it off.
              {
                spec = {
                  securityContext          = { runAsNonRoot = true }
                  "=(ephemeralContainers)" = [{ "=(securityContext)" = { "=(runAsNonRoot)" = true } }]
                  "=(initContainers)"      = [{ "=(securityContext)" = { "=(runAsNonRoot)" = true } }]
                  containers               = [{ "=(securityContext)" = { "=(runAsNonRoot)" = true } }]
                }
              },
              # Set on every container.
              {
                spec = {
                  "=(ephemeralContainers)" = [{ securityContext = { runAsNonRoot = true } }]
                  "=(initContainers)"      = [{ securityContext = { runAsNonRoot = true } }]
                  containers               = [{ securityContext = { runAsNonRoot = true } }]
                }
              },
            ]
          }
        }]
      }
    },
  ]

  # Gatekeeper: ConstraintTemplates (Rego), then Constraints of the kinds they define, in
  # dry-run (reported in the Constraints' status by the audit, never refused).
  gatekeeper_templates = [
    {
      apiVersion = "templates.gatekeeper.sh/v1"
      kind       = "ConstraintTemplate"
      metadata   = { name = "k8sbaselineprivileged" }
      spec = {
        crd = { spec = { names = { kind = "K8sBaselinePrivileged" } } }
        targets = [{
          target = "admission.k8s.gatekeeper.sh"
          rego   = <<-REGO
            package k8sbaselineprivileged

            violation[{"msg": msg}] {
              container := pod_containers[_]
              container.securityContext.privileged
              msg := sprintf("container %v must not run privileged (securityContext.privileged)", [container.name])
            }

            pod_containers[container] {
              container := input.review.object.spec.containers[_]
            }

            pod_containers[container] {
              container := input.review.object.spec.initContainers[_]
            }

            pod_containers[container] {
              container := input.review.object.spec.ephemeralContainers[_]
            }
          REGO
        }]
      }
    },
    {
      apiVersion = "templates.gatekeeper.sh/v1"
      kind       = "ConstraintTemplate"
      metadata   = { name = "k8sbaselinehostnamespaces" }
      spec = {
        crd = { spec = { names = { kind = "K8sBaselineHostNamespaces" } } }
        targets = [{
          target = "admission.k8s.gatekeeper.sh"
          rego   = <<-REGO
            package k8sbaselinehostnamespaces

            host_fields := {"hostNetwork", "hostPID", "hostIPC"}

            violation[{"msg": msg}] {
              some field
              host_fields[field]
              input.review.object.spec[field] == true
              msg := sprintf("pod must not share the node's namespaces (spec.%v)", [field])
            }
          REGO
        }]
      }
    },
  ]

  gatekeeper_constraints = [
    for kind in ["K8sBaselinePrivileged", "K8sBaselineHostNamespaces"] : {
      apiVersion = "constraints.gatekeeper.sh/v1beta1"
      kind       = kind
      metadata   = { name = "baseline-${lower(trimprefix(kind, "K8sBaseline"))}" }
      spec = {
        enforcementAction = "dryrun"
        match = {
          kinds              = [{ apiGroups = [""], kinds = ["Pod"] }]
          excludedNamespaces = local.exempt_namespaces
        }
      }
    }
  ]
}

resource "platform_stack" "controllers" {
  cluster   = var.cluster
  name      = local.controllers_stack
  namespace = var.flux_namespace

  dynamic "component" {
    for_each = var.engine == "kyverno" ? ["kyverno"] : []
    content {
      name      = component.value
      catalog   = component.value
      namespace = local.namespace
      helm {
        version = lookup(var.versions, component.value, null)
        values  = local.helm_values[component.value]
      }
    }
  }

  dynamic "component" {
    for_each = var.engine == "gatekeeper" ? ["gatekeeper"] : []
    content {
      name      = component.value
      namespace = local.namespace
      helm {
        repository = local.gatekeeper_chart.repository
        chart      = local.gatekeeper_chart.chart
        version    = lookup(var.versions, component.value, local.gatekeeper_chart.version)
        values     = local.helm_values[component.value]
      }
    }
  }
}

# Kyverno's ClusterPolicies, or Gatekeeper's ConstraintTemplates, once the engine's CRDs
# exist. A ConstraintTemplate is not a CRD: Gatekeeper makes the CRD of its constraint kind
# afterwards and then sets status.created, which the stack waits for.
resource "platform_stack" "baseline" {
  count = var.baseline ? 1 : 0

  cluster   = var.cluster
  name      = local.baseline_stack
  namespace = var.flux_namespace

  dynamic "component" {
    for_each = var.engine == "kyverno" ? ["cluster-policies"] : []
    content {
      name      = component.value
      manifests = join("---\n", [for p in local.kyverno_policies : yamlencode(p)])
    }
  }

  dynamic "component" {
    for_each = var.engine == "gatekeeper" ? ["constraint-templates"] : []
    content {
      name      = component.value
      manifests = join("---\n", [for t in local.gatekeeper_templates : yamlencode(t)])
      wait_for {
        kind = "ConstraintTemplate"
        for  = "jsonpath={.status.created}=true"
      }
    }
  }

  depends_on = [platform_stack.controllers]
}

# Gatekeeper's Constraints, in a stack of their own: their kinds exist only once Gatekeeper
# has acted on the templates of the stack before, and a stack applies custom resources of
# kinds the cluster serves or CRDs of that same stack define.
resource "platform_stack" "constraints" {
  count = var.baseline && var.engine == "gatekeeper" ? 1 : 0

  cluster   = var.cluster
  name      = local.constraints_stack
  namespace = var.flux_namespace

  component {
    name      = "constraints"
    manifests = join("---\n", [for c in local.gatekeeper_constraints : yamlencode(c)])
  }

  depends_on = [platform_stack.baseline]
}
