locals {
  stack = "${var.name}-controllers"

  # The catalog's namespaces, set on the components so that the outputs name them.
  namespaces = {
    metallb         = "metallb-system"
    "ingress-nginx" = "ingress-nginx"
    traefik         = "traefik"
  }

  # The module's Helm values; var.values are merged over them at the top level.
  defaults = {
    metallb = {}
    "ingress-nginx" = {
      controller = {
        ingressClassResource = { name = "nginx" }
      }
    }
    traefik = {
      # The chart names its IngressClass after the release unless told otherwise.
      ingressClass = { name = "traefik" }
    }
  }

  helm_values = {
    for component, defaults in local.defaults :
    component => merge(defaults, yamldecode(lookup(var.values, component, "{}")))
  }

  # The controller's Helm release and the names its chart derives from it (fullname:
  # the release name when it contains the chart's name, else "<release>-<chart>").
  release          = "${local.stack}-${var.controller}"
  controller_vals  = local.helm_values[var.controller]
  chart_name       = try(local.controller_vals.nameOverride, "") != "" ? local.controller_vals.nameOverride : var.controller
  default_fullname = replace(local.release, local.chart_name, "") != local.release ? local.release : "${local.release}-${local.chart_name}"
  fullname_raw     = try(local.controller_vals.fullnameOverride, "") != "" ? local.controller_vals.fullnameOverride : local.default_fullname
  fullname         = trimsuffix(substr(local.fullname_raw, 0, 63), "-")

  ingress_class = var.controller == "ingress-nginx" ? try(local.controller_vals.controller.ingressClassResource.name, "nginx") : (
    try(local.controller_vals.ingressClass.name, "") != "" ? local.controller_vals.ingressClass.name : local.fullname
  )
  controller_service = var.controller == "ingress-nginx" ? trimsuffix(substr("${local.fullname}-${try(local.controller_vals.controller.name, "controller")}", 0, 63), "-") : local.fullname

  # Address pools, applied once their controller runs and before the ingress controller,
  # whose Helm release is only ready when its LoadBalancer Service has an address.
  pool_ranges = [for a in var.address_pool : [for part in split("-", a) : trimspace(part)]]

  metallb_pool = [
    {
      apiVersion = "metallb.io/v1beta1"
      kind       = "IPAddressPool"
      metadata   = { name = var.name, namespace = local.namespaces.metallb }
      spec       = { addresses = [for r in local.pool_ranges : join("-", r)] }
    },
    {
      apiVersion = "metallb.io/v1beta1"
      kind       = "L2Advertisement"
      metadata   = { name = var.name, namespace = local.namespaces.metallb }
      spec       = { ipAddressPools = [var.name] }
    },
  ]

  cilium_pool = [
    {
      apiVersion = "cilium.io/v2alpha1"
      kind       = "CiliumLoadBalancerIPPool"
      metadata   = { name = var.name }
      spec = {
        blocks = [
          for r in local.pool_ranges :
          length(r) == 2 ? tomap({ start = r[0], stop = r[1] }) : tomap({ cidr = r[0] })
        ]
      }
    },
    {
      apiVersion = "cilium.io/v2alpha1"
      kind       = "CiliumL2AnnouncementPolicy"
      metadata   = { name = var.name }
      spec       = { loadBalancerIPs = true }
    },
  ]

  # MetalLB installed here has no pool but this one; without it the controller's Service
  # never gets an address and its Helm release never becomes ready. Terraform 1.0 has no
  # preconditions: the plan fails here.
  check_pool = var.load_balancer == "metallb" && length(var.address_pool) == 0 ? tobool("address_pool is required with load_balancer = \"metallb\".") : true

  pool_manifests = {
    metallb = join("---\n", [for o in local.metallb_pool : yamlencode(o)])
    cilium  = join("---\n", [for o in local.cilium_pool : yamlencode(o)])
    none    = ""
  }
  pool_manifest = length(var.address_pool) > 0 ? local.pool_manifests[var.load_balancer] : ""
}

resource "platform_stack" "controllers" {
  cluster   = var.cluster
  name      = local.stack
  namespace = var.flux_namespace

  dynamic "component" {
    for_each = var.load_balancer == "metallb" ? ["metallb"] : []
    content {
      name      = "metallb"
      catalog   = "metallb"
      namespace = local.namespaces.metallb
      helm {
        version = lookup(var.versions, "metallb", null)
        values  = yamlencode(local.helm_values.metallb)
      }
    }
  }

  # The pool's custom resources (MetalLB's come with its chart, Cilium's with Cilium).
  dynamic "component" {
    for_each = local.pool_manifest != "" ? ["address-pool"] : []
    content {
      name       = "address-pool"
      depends_on = var.load_balancer == "metallb" ? ["metallb"] : []
      namespace  = var.load_balancer == "metallb" ? local.namespaces.metallb : null
      manifests  = local.pool_manifest
    }
  }

  component {
    name       = var.controller
    catalog    = var.controller
    namespace  = local.namespaces[var.controller]
    depends_on = local.pool_manifest != "" ? ["address-pool"] : []
    helm {
      version = lookup(var.versions, var.controller, null)
      values  = yamlencode(local.helm_values[var.controller])
    }
  }
}
