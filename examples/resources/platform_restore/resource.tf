# Restore the latest nightly backup of "apps" into a new namespace, to compare before
# switching over. Runs once: it stays in state after Velero garbage-collects it.
resource "platform_restore" "apps_copy" {
  name                = "apps-copy-1"
  schedule_name       = "nightly"
  included_namespaces = ["apps"]
  namespace_mapping   = { apps = "apps-copy" }

  existing_resource_policy = "none"
  allow_partial_failure    = true
}
