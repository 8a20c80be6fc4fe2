# Three servers with embedded etcd and one agent, installed over SSH.
resource "platform_k3s_cluster" "home" {
  name          = "home"
  version       = "v1.29.1+k3s2"
  api_endpoint  = "https://10.11.80.11:6443"
  server_config = yamlencode({ disable = ["traefik"], "flannel-backend" = "none" })

  servers = {
    s1 = { host = "10.11.80.11", bootstrap = true }
    s2 = { host = "10.11.80.12" }
    s3 = { host = "10.11.80.13" }
  }
  agents = {
    a1 = { host = "10.11.80.21", labels = { "node.kubernetes.io/gpu" = "true" } }
  }

  ssh {
    user             = "root"
    private_key_path = "~/.ssh/id_ed25519"
    known_hosts      = file("${path.module}/known_hosts")
  }

  upgrade {
    drain            = true
    drain_timeout    = "10m"
    agent_concurrency = 1
    snapshot_before  = true
  }
}

# A namespace on the new cluster, in the same apply.
resource "platform_namespace" "apps" {
  name    = "apps"
  cluster = platform_k3s_cluster.home.connection
}
