//! Clients for the systems the provider manages. Nothing here knows about Terraform:
//! these modules speak Kubernetes (and later DNS, SOPS, ...) and report plain errors.

pub mod kube;
