# Decrypted for this run only: feed write-only attributes, nothing is stored.
ephemeral "platform_sops_file" "db" {
  path = "${path.module}/secrets/db.sops.yaml"
}

resource "platform_secret" "db" {
  namespace       = "data-plane"
  name            = "mysql-root"
  data_wo         = { password = ephemeral.platform_sops_file.db.data["password"] }
  data_wo_version = 1
}
