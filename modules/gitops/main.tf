locals {
  flux_install_url = var.flux_install_url != null ? var.flux_install_url : "https://github.com/fluxcd/flux2/releases/download/${var.flux_version}/install.yaml"
}

# Flux's controllers and CRDs from the release's install.yaml. The checksum is verified
# before any object is applied.
resource "platform_stack" "flux" {
  cluster   = var.cluster
  name      = var.name
  namespace = var.flux_namespace

  component {
    name             = "flux"
    manifests_url    = local.flux_install_url
    manifests_sha256 = lower(var.flux_install_sha256)
  }
}
