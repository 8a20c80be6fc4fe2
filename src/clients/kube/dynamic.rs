//! Objects of any kind, known only at run time (manifests, custom resources): discovery
//! cached per API version, and server-side apply, list, get and delete on them.

use std::collections::HashMap;
use std::sync::Arc;

use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, ListParams, PropagationPolicy};
use kube::discovery::{self, Scope};
use kube::core::GroupVersion;
use tokio::sync::Mutex;

use super::{Cluster, KubeError};

/// How the API server serves one kind.
#[derive(Clone, Debug)]
pub struct KindInfo {
    pub resource: ApiResource,
    pub namespaced: bool,
    pub listable: bool,
}

/// Kinds by API version, fetched one API version at a time and kept for the run.
#[derive(Default)]
pub struct DiscoveryCache {
    versions: Mutex<HashMap<String, Arc<HashMap<String, KindInfo>>>>,
}

impl Cluster {
    /// How `kind` of `api_version` is served; `None` when the server does not know it (yet:
    /// a CRD applied a moment ago may still be on its way, so misses are never cached).
    pub async fn kind(&self, api_version: &str, kind: &str) -> Result<Option<KindInfo>, KubeError> {
        if let Some(kinds) = self.discovery.versions.lock().await.get(api_version) {
            if let Some(info) = kinds.get(kind) {
                return Ok(Some(info.clone()));
            }
        }
        let kinds = Arc::new(self.fetch_kinds(api_version).await?);
        let found = kinds.get(kind).cloned();
        self.discovery.versions.lock().await.insert(api_version.to_string(), kinds);
        Ok(found)
    }

    async fn fetch_kinds(&self, api_version: &str) -> Result<HashMap<String, KindInfo>, KubeError> {
        let gv: GroupVersion = api_version
            .parse()
            .map_err(|_| KubeError::Config(format!("{api_version:?} is not an API version")))?;
        match discovery::pinned_group(&self.client, &gv).await {
            Ok(group) => Ok(group
                .versioned_resources(&gv.version)
                .into_iter()
                // Subresources (pods/log, ...) share kinds with their parents.
                .filter(|(resource, _)| !resource.plural.contains('/'))
                .map(|(resource, caps)| {
                    let info = KindInfo {
                        namespaced: caps.scope == Scope::Namespaced,
                        listable: caps.supports_operation(kube::discovery::verbs::LIST),
                        resource,
                    };
                    (info.resource.kind.clone(), info)
                })
                .collect()),
            Err(e) => {
                // The API server's own "nothing here": this version is not served (yet).
                // It answers an unknown group with a bare "404 page not found", so a 404 is
                // believed only when the server's list of groups agrees. Any other 404 (a
                // proxy's) is an error, never "no such kinds".
                let e = self.error(e);
                if e.is_not_served() || (matches!(e, KubeError::Api { code: 404, .. }) && !self.serves(&gv).await?) {
                    Ok(HashMap::new())
                } else {
                    Err(e)
                }
            }
        }
    }

    /// Whether the server lists `gv` among the API versions it serves.
    async fn serves(&self, gv: &GroupVersion) -> Result<bool, KubeError> {
        if gv.group.is_empty() {
            let core = self.client.list_core_api_versions().await.map_err(|e| self.error(e))?;
            return Ok(core.versions.contains(&gv.version));
        }
        let groups = self.client.list_api_groups().await.map_err(|e| self.error(e))?;
        Ok(groups.groups.iter().any(|g| g.name == gv.group && g.versions.iter().any(|v| v.version == gv.version)))
    }

    pub fn dynamic_api(&self, info: &KindInfo, namespace: Option<&str>) -> Api<DynamicObject> {
        match (info.namespaced, namespace) {
            (true, Some(ns)) => Api::namespaced_with(self.client.clone(), ns, &info.resource),
            _ => Api::all_with(self.client.clone(), &info.resource),
        }
    }

    /// Server-side applies one whole object as our field manager, taking over conflicting fields.
    pub async fn apply_dynamic(
        &self,
        info: &KindInfo,
        namespace: Option<&str>,
        name: &str,
        object: &serde_json::Value,
    ) -> Result<serde_json::Value, KubeError> {
        self.apply_owned(info, namespace, name, object, true).await
    }

    pub async fn get_dynamic(&self, info: &KindInfo, namespace: Option<&str>, name: &str) -> Result<Option<serde_json::Value>, KubeError> {
        let live = self.get_opt(&self.dynamic_api(info, namespace), name).await?;
        Ok(live.map(|o| serde_json::to_value(o).unwrap_or_default()))
    }

    /// Every object of a kind (in `namespace`, or everywhere) carrying `label_selector`.
    pub async fn list_dynamic(
        &self,
        info: &KindInfo,
        namespace: Option<&str>,
        label_selector: &str,
    ) -> Result<Vec<serde_json::Value>, KubeError> {
        let params = ListParams::default().labels(label_selector);
        let list = self.dynamic_api(info, namespace).list(&params).await.map_err(|e| self.error(e))?;
        // Items of a list carry no apiVersion and kind: give them theirs, so that they read
        // like objects fetched one by one.
        let types = kube::core::TypeMeta { api_version: info.resource.api_version.clone(), kind: info.resource.kind.clone() };
        Ok(list
            .items
            .into_iter()
            .map(|mut o| {
                o.types = Some(types.clone());
                serde_json::to_value(o).unwrap_or_default()
            })
            .collect())
    }

    /// Deletes in the foreground-free default way (dependents go in the background);
    /// `Ok(false)` when it was already gone.
    pub async fn delete_dynamic(&self, info: &KindInfo, namespace: Option<&str>, name: &str) -> Result<bool, KubeError> {
        let params = DeleteParams { propagation_policy: Some(PropagationPolicy::Background), ..Default::default() };
        match self.dynamic_api(info, namespace).delete(name, &params).await {
            Ok(_) => Ok(true),
            Err(e) => {
                let e = self.error(e);
                if e.is_not_found() { Ok(false) } else { Err(e) }
            }
        }
    }

    /// Every kind the server serves that can be listed (for import by label), in each
    /// group's preferred version. Groups that vanish meanwhile (a CRD being deleted) and
    /// aggregated APIs that are down (503 after retries) are skipped with a warning; any
    /// other failure fails the discovery: a kind left out would look empty.
    pub async fn listable_kinds(&self) -> Result<Vec<KindInfo>, KubeError> {
        let groups = self.client.list_api_groups().await.map_err(|e| self.error(e))?;
        let mut api_versions = vec!["v1".to_string()];
        for group in groups.groups {
            let preferred = group.preferred_version.or_else(|| group.versions.into_iter().next());
            api_versions.extend(preferred.map(|v| v.group_version));
        }
        let fetched = futures::future::join_all(api_versions.iter().map(|v| self.fetch_kinds(v))).await;
        let mut kinds = Vec::new();
        for (api_version, found) in api_versions.iter().zip(fetched) {
            match found {
                Ok(found) => kinds.extend(found.into_values().filter(|k| k.listable)),
                // An unavailable aggregated API (metrics.k8s.io, say) holds nothing of ours, nor
                // does a group whose CRD went away since the list of groups was read (its
                // version then answers 404). Skipping one errs on the safe side: what is not
                // listed is neither imported nor deleted.
                Err(e) if e.is_not_served() || matches!(e, KubeError::Api { code: 404 | 503, .. }) => {
                    tracing::warn!(api_version = %api_version, error = %e, "skipping an API version discovery could not read")
                }
                Err(e) => return Err(e),
            }
        }
        Ok(kinds)
    }
}
