# A k3s cluster and a component stack on it, in one apply: the stack's `cluster` is the
# cluster's `connection`, known once the servers are up.
terraform {
  required_providers {
    platform = { source = "platform/platform" }
  }
}

provider "platform" {}

variable "k3s_token" {
  type      = string
  sensitive = true
  ephemeral = true # Terraform >= 1.10; token_wo needs Terraform >= 1.11
}

resource "platform_k3s_cluster" "home" {
  name             = "home"
  version          = "v1.29.1+k3s2"
  api_endpoint     = "https://k3s.home.example.com:6443"
  server_config    = yamlencode({ disable = ["traefik"], "write-kubeconfig-mode" = "0600" })
  token_wo         = var.k3s_token
  token_wo_version = 1

  servers = {
    s1 = { host = "10.11.80.11", bootstrap = true }
    s2 = { host = "10.11.80.12" }
    s3 = { host = "10.11.80.13" }
  }
  agents = {
    a1 = { host = "10.11.80.21" }
    a2 = { host = "10.11.80.22" }
  }

  ssh {
    user             = "admin" # commands run with sudo -n
    private_key_path = "~/.ssh/id_ed25519"
    known_hosts      = file("${path.module}/known_hosts")
  }

  upgrade {
    drain_timeout   = "10m"
    snapshot_before = true
  }
}

resource "platform_stack" "ingress" {
  name    = "ingress"
  cluster = platform_k3s_cluster.home.connection

  component {
    name    = "ingress-nginx"
    catalog = "ingress-nginx"
  }
}

output "nodes" {
  value = platform_k3s_cluster.home.nodes
}
