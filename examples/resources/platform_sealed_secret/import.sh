# Import by namespace/name. An imported SealedSecret is released, not deleted, on destroy.
terraform import platform_sealed_secret.cloudflare network/cloudflare-token
