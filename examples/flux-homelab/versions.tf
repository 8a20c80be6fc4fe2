terraform {
  required_version = ">= 1.0.0"

  required_providers {
    platform = {
      source = "platform/platform"
    }
  }
}

provider "platform" {}
