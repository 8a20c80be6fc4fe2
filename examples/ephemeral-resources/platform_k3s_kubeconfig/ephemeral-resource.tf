# The admin kubeconfig, read over SSH on every run and never stored in state.
ephemeral "platform_k3s_kubeconfig" "home" {
  host         = "10.11.80.11"
  api_endpoint = "https://10.11.80.11:6443"
  name         = "home"
  ssh {
    private_key_path = "~/.ssh/id_ed25519"
    known_hosts      = file("${path.module}/known_hosts")
  }
}

provider "platform" {
  alias = "home"
  kubernetes {
    host                   = ephemeral.platform_k3s_kubeconfig.home.connection.host
    cluster_ca_certificate = ephemeral.platform_k3s_kubeconfig.home.connection.cluster_ca_certificate
    client_certificate     = ephemeral.platform_k3s_kubeconfig.home.connection.client_certificate
    client_key             = ephemeral.platform_k3s_kubeconfig.home.connection.client_key
  }
}
