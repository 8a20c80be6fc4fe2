//! Helm repositories declared once per stack (`repository` blocks) and shared by its Helm
//! components, which name them in `helm.repository` instead of a URL. Each becomes one Flux
//! HelmRepository (`type: oci` for OCI registries), applied by a component of its own
//! ([`COMPONENT`]) that the components using it depend on.
//!
//! Pure: the blocks to typed values with their problems, and the objects they render to.

use serde_json::{json, Value as Json};

use super::flux::{self, HELM_REPOSITORY_API, HELM_REPOSITORY_KIND};
use crate::framework::diagnostics::{AttributePath, Diagnostics};
use crate::framework::value::Value;
use crate::resources::metadata;

/// The component that applies a stack's repositories (a name no other component may take
/// while the stack declares repositories).
pub const COMPONENT: &str = "repositories";

const PROVIDERS: [&str; 4] = ["generic", "aws", "azure", "gcp"];

/// One `repository` block.
#[derive(Clone, Debug, PartialEq)]
pub struct Repository {
    pub name: String,
    pub url: String,
    pub oci: bool,
    pub interval: Option<String>,
    pub secret_ref: Option<String>,
    pub cert_secret_ref: Option<String>,
    pub provider: Option<String>,
}

fn text(block: &Value, name: &str) -> Option<String> {
    block.get_attr(name).and_then(Value::as_str).map(str::to_string)
}

/// The stack's `repository` blocks, checked; problems name their attributes. `None` while
/// any of them is unknown.
pub fn repositories(config: &Value, diags: &mut Diagnostics) -> Option<Vec<Repository>> {
    let blocks = match config.get_attr("repository") {
        Some(Value::Unknown) => return None,
        Some(value) => value.as_slice().unwrap_or_default(),
        None => &[],
    };
    let mut repositories: Vec<Repository> = Vec::new();
    for (index, block) in blocks.iter().enumerate() {
        if !block.is_wholly_known() {
            return None;
        }
        let at = AttributePath::root("repository").index(index as i64);
        let name = text(block, "name").unwrap_or_default();
        if let Some(problem) = metadata::dns1123_label_problem(&name) {
            diags.error_at(at.clone().attribute("name"), "Invalid repository name", format!("{name:?} {problem}."));
        } else if repositories.iter().any(|r| r.name == name) {
            diags.error_at(
                at.clone().attribute("name"),
                "Duplicate repository name",
                format!("Repository {name:?} is declared twice."),
            );
        }
        let url = text(block, "url").unwrap_or_default();
        let oci = match text(block, "type").as_deref() {
            None => url.starts_with("oci://"),
            Some("oci") => true,
            Some("default") => false,
            Some(other) => {
                diags.error_at(
                    at.clone().attribute("type"),
                    "Invalid repository type",
                    format!("{other:?} is `default` or `oci`."),
                );
                false
            }
        };
        let scheme_ok =
            if oci { url.starts_with("oci://") } else { url.starts_with("https://") || url.starts_with("http://") };
        if !scheme_ok || url.contains(char::is_whitespace) {
            let wanted = if oci { "oci://" } else { "https:// or http://" };
            diags.error_at(
                at.clone().attribute("url"),
                "Invalid repository URL",
                format!("Repository {name:?}: the URL must start with {wanted}."),
            );
        }
        let interval = text(block, "interval");
        if let Some(problem) = interval.as_deref().and_then(flux::interval_problem) {
            diags.error_at(
                at.clone().attribute("interval"),
                "Invalid interval",
                format!("{:?} {problem}.", interval.as_deref().unwrap_or_default()),
            );
        }
        let provider = text(block, "provider");
        if let Some(provider) = provider.as_deref().filter(|p| !PROVIDERS.contains(p)) {
            diags.error_at(
                at.clone().attribute("provider"),
                "Invalid provider",
                format!("{provider:?} is one of {}.", PROVIDERS.join(", ")),
            );
        }
        if provider.as_deref().is_some_and(|p| p != "generic") && !oci {
            diags.error_at(
                at.clone().attribute("provider"),
                "Invalid provider",
                format!("Repository {name:?}: a cloud `provider` is for OCI registries only."),
            );
        }
        for reference in ["secret_ref", "cert_secret_ref"] {
            if let Some(problem) = text(block, reference).and_then(|r| metadata::dns1123_subdomain_problem(&r)) {
                diags.error_at(at.clone().attribute(reference), "Invalid Secret name", problem);
            }
        }
        repositories.push(Repository {
            name,
            url,
            oci,
            interval,
            secret_ref: text(block, "secret_ref"),
            cert_secret_ref: text(block, "cert_secret_ref"),
            provider,
        });
    }
    Some(repositories)
}

/// The HelmRepository's name: `<stack>-repo-<repository>` (see [`flux::object_name`]), apart
/// from the components' own `<stack>-<component>` sources.
pub fn object_name(stack: &str, repository: &str) -> String {
    flux::object_name(stack, &format!("repo-{repository}"))
}

/// The repositories as Flux HelmRepository objects, in the Flux namespace.
pub fn objects(stack: &str, flux_namespace: &str, repositories: &[Repository], default_interval: &str) -> Vec<Json> {
    repositories
        .iter()
        .map(|r| {
            let mut spec = json!({"url": r.url.trim_end_matches('/'), "interval": r.interval.as_deref().unwrap_or(default_interval)});
            if r.oci {
                spec["type"] = json!("oci");
            }
            if let Some(secret) = &r.secret_ref {
                spec["secretRef"] = json!({"name": secret});
            }
            if let Some(secret) = &r.cert_secret_ref {
                spec["certSecretRef"] = json!({"name": secret});
            }
            if let Some(provider) = &r.provider {
                spec["provider"] = json!(provider);
            }
            json!({
                "apiVersion": HELM_REPOSITORY_API,
                "kind": HELM_REPOSITORY_KIND,
                "metadata": {"name": object_name(stack, &r.name), "namespace": flux_namespace},
                "spec": spec,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(blocks: Vec<Vec<(&str, &str)>>) -> Value {
        let blocks = blocks
            .into_iter()
            .map(|fields| Value::object(fields.into_iter().map(|(k, v)| (k.to_string(), Value::string(v)))))
            .collect();
        Value::object([("repository".to_string(), Value::List(blocks))])
    }

    #[test]
    fn repositories_render_as_helm_repositories_typed_by_their_url() {
        let mut diags = Diagnostics::new();
        let repos = repositories(
            &config(vec![
                vec![("name", "bitnami"), ("url", "https://charts.bitnami.com/bitnami/"), ("secret_ref", "creds")],
                vec![
                    ("name", "ghcr"),
                    ("url", "oci://ghcr.io/org/charts"),
                    ("provider", "generic"),
                    ("interval", "1h"),
                ],
            ]),
            &mut diags,
        )
        .unwrap();
        assert!(diags.is_empty(), "{diags:?}");
        let objects = objects("infra", "flux-system", &repos, "10m");
        assert_eq!(objects[0]["metadata"], json!({"name": "infra-repo-bitnami", "namespace": "flux-system"}));
        assert_eq!(
            objects[0]["spec"],
            json!({"url": "https://charts.bitnami.com/bitnami", "interval": "10m", "secretRef": {"name": "creds"}})
        );
        assert_eq!(
            objects[1]["spec"],
            json!({"url": "oci://ghcr.io/org/charts", "interval": "1h", "type": "oci", "provider": "generic"})
        );
    }

    #[test]
    fn every_problem_names_its_attribute() {
        let mut diags = Diagnostics::new();
        repositories(
            &config(vec![
                vec![("name", "Bad_Name"), ("url", "ftp://x")],
                vec![("name", "ok"), ("url", "https://x"), ("type", "git"), ("interval", "soon")],
                vec![("name", "ok"), ("url", "https://y"), ("provider", "aws")],
            ]),
            &mut diags,
        );
        let summaries: Vec<&str> = diags.iter().map(|d| d.summary.as_str()).collect();
        assert_eq!(
            summaries,
            [
                "Invalid repository name",
                "Invalid repository URL",
                "Invalid repository type",
                "Invalid interval",
                "Duplicate repository name",
                "Invalid provider"
            ]
        );
    }
}
