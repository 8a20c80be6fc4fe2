output "location" {
  value       = platform_backup_location.default.name
  description = "Name of the BackupStorageLocation (`default`), for the `storage_location` of `platform_backup`s and `platform_backup_schedule`s. Whoever takes it waits until Velero has validated the location."
}

output "schedules" {
  value       = [for s in platform_backup_schedule.this : s.name]
  description = "Names of the Velero Schedules."
}

output "namespace" {
  value       = var.velero_namespace
  description = "Velero's namespace. Whoever takes it waits for Velero."
  depends_on  = [platform_stack.controllers]
}

output "stacks" {
  value       = [platform_stack.controllers.name]
  description = "Names of the module's `platform_stack`s."
}
