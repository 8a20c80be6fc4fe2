//! Acceptance tests: the provider binary driven by real Terraform (every version in
//! `TF_ACC_TERRAFORM_PATHS`) against a real Kubernetes control plane. See `harness` for
//! the environment variables; `make test` (or `scripts/testenv.sh`) prepares everything.

/// The `terraform { required_providers }` block every test configuration starts with.
macro_rules! required_providers {
    () => {
        "terraform {\n  required_providers {\n    platform = { source = \"platform/platform\" }\n  }\n}\n"
    };
}

mod harness;
mod smoke;
mod namespace;
mod cluster;
mod provider_config;
mod secret;
mod sealed_secret;
mod sealed_secrets_certificate_standin;
mod sops_file;
mod stack;
mod stack_ownership;
mod stack_waits;
mod stack_plans;
mod stack_helm_standin;
mod catalog;
mod faults;
mod install;
mod dns_servers;
mod dns_cloudflare_standin;
mod dns_record;
mod dns_faults;
mod s3_rig;
mod hosts_rig;
mod k3s_standin;
mod velero_standin;
mod s3_client;
mod velero;
mod volsync;
mod ssh_client;
mod k3s_cluster;
mod k3s_suc;
mod k3s_nodes;
mod reference_platforms;
mod reference_platforms_apply;
mod reference_platform_k3s;
mod module_policy_gatekeeper_standin;
