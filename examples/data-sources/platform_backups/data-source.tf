# The newest completed backup of the nightly schedule, e.g. to restore from it.
data "platform_backups" "nightly" {
  schedule = "nightly"
}

resource "platform_restore" "staging" {
  name              = "staging-from-nightly"
  backup_name       = data.platform_backups.nightly.latest_completed
  namespace_mapping = { apps = "apps-staging" }
}
