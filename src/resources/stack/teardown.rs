//! Letting go of a stack's objects (prune and destroy), phase by phase: custom resources,
//! other objects, CRDs, namespaces, each phase gone before the next starts.
//!
//! Only objects carrying this instance's id are deleted; adopted ones are released; kept
//! ones are left and reported. A CRD is not deleted while custom resources of its kind that
//! the stack does not own exist, nor a namespace that holds objects the stack does not own,
//! unless the user says `force_delete`.

use std::collections::BTreeMap;

use futures::future::FutureExt;

use super::claims::{self, Parting};
use super::cluster_ops::{concurrently, describe, forbidden, gone_kind, OpError, StackOps, POLL};
use super::inventory::{self, ObjectKey, TeardownPhase};
use super::manifests::{COMPONENT_LABEL, MANAGED_BY_LABEL, STACK_LABEL};
use crate::clients::kube::ownership::{self, Standing};
use crate::clients::deadline::Progress;
use crate::clients::kube::{KindInfo, KubeError};

/// How to let go.
pub struct LetGo<'a> {
    /// Adopted objects of these components are deleted rather than released
    /// (`on_destroy = "delete"`).
    pub delete_adopted: &'a (dyn Fn(&ObjectKey) -> bool + Sync),
    /// Delete CRDs and namespaces even when they hold what the stack does not own.
    pub force_delete: bool,
}

/// How many names a diagnostic lists before it only counts.
const LISTED: usize = 20;

impl StackOps<'_> {
    /// Lets go of `keys`; returns notes for the user (objects released, kept or left alone).
    pub async fn let_go(&self, keys: &[ObjectKey], how: &LetGo<'_>) -> Result<Vec<String>, OpError> {
        let mut notes = Vec::new();
        for (phase, batch) in inventory::teardown_order(keys) {
            tracing::info!(phase = ?phase, count = batch.len(), "letting go of objects");
            let work = batch.into_iter().map(|key| self.let_go_of(key, phase, how).boxed()).collect();
            let mut pending = Vec::new();
            for result in concurrently(work).await {
                let (deleted, note) = result?;
                pending.extend(deleted);
                notes.extend(note);
            }
            self.wait_gone(pending).await?;
        }
        Ok(notes)
    }

    /// One object: returns it when a delete was sent (to wait for), and a note.
    async fn let_go_of<'k>(
        &self,
        key: &'k ObjectKey,
        phase: TeardownPhase,
        how: &LetGo<'_>,
    ) -> Result<(Option<(&'k ObjectKey, KindInfo)>, Option<String>), OpError> {
        let info = self.cluster.kind(&key.api_version, &key.kind).await.map_err(|e| self.kube("discovery", e))?;
        let Some(info) = info else {
            return Err(OpError::NoLongerServed {
                api_version: key.api_version.clone(),
                kind: key.kind.clone(),
                object: describe(key),
            });
        };
        let namespace = key.namespace.as_deref();
        let live = self
            .cluster
            .get_dynamic(&info, namespace, &key.name)
            .await
            .map_err(|e| self.kube(&format!("reading {}", describe(key)), e))?;
        let decision = claims::parting(&self.claimant, &key.owned_identity(), live.as_ref(), (how.delete_adopted)(key));
        let Some(live) = live else { return Ok((None, None)) };
        match decision {
            Parting::Gone => Ok((None, None)),
            Parting::NotOurs(why) => Ok((None, Some(format!("{} left in place: {why}", describe(key))))),
            Parting::Keep => Ok((None, Some(format!("{} kept: it is annotated to be kept", describe(key))))),
            Parting::Release => {
                self.cluster
                    .release_dynamic(&info, namespace, &key.name, &[STACK_LABEL, COMPONENT_LABEL, MANAGED_BY_LABEL])
                    .await
                    .map_err(|e| self.kube(&format!("releasing {}", describe(key)), e))?;
                Ok((None, Some(format!("{} released (adopted, so not deleted)", describe(key)))))
            }
            Parting::Delete => {
                if !how.force_delete {
                    match phase {
                        TeardownPhase::Crds => self.refuse_crd_in_use(key, &live).await?,
                        TeardownPhase::Namespaces => self.refuse_namespace_in_use(key).await?,
                        _ => {}
                    }
                }
                let uid = live["metadata"]["uid"].as_str().unwrap_or_default();
                let existed = self
                    .cluster
                    .delete_exact(&info, namespace, &key.name, uid)
                    .await
                    .map_err(|e| self.kube(&format!("deleting {}", describe(key)), e))?;
                Ok((existed.then_some((key, info)), None))
            }
        }
    }

    /// Fails when custom resources of the CRD's kind exist that this stack does not own:
    /// deleting the CRD would delete them all.
    async fn refuse_crd_in_use(&self, key: &ObjectKey, crd: &serde_json::Value) -> Result<(), OpError> {
        let spec = &crd["spec"];
        let (Some(group), Some(kind)) = (spec["group"].as_str(), spec["names"]["kind"].as_str()) else { return Ok(()) };
        let versions = spec["versions"].as_array().cloned().unwrap_or_default();
        let Some(version) = versions.iter().find(|v| v["storage"] == true).or(versions.first()).and_then(|v| v["name"].as_str())
        else {
            return Ok(());
        };
        let Some(info) = self.cluster.kind(&format!("{group}/{version}"), kind).await.map_err(|e| self.kube("discovery", e))? else {
            return Ok(());
        };
        let objects = self
            .cluster
            .list_dynamic(&info, None, "")
            .await
            .map_err(|e| self.kube(&format!("listing {kind} objects"), e))?;
        let mut by_namespace: BTreeMap<String, usize> = BTreeMap::new();
        for object in objects.iter().filter(|o| ownership::standing(o, self.claimant.id) != Standing::Ours) {
            let place = object["metadata"]["namespace"].as_str().map_or("(cluster-scoped)".to_string(), |ns| format!("namespace {ns}"));
            *by_namespace.entry(place).or_default() += 1;
        }
        if by_namespace.is_empty() {
            return Ok(());
        }
        let total: usize = by_namespace.values().sum();
        let counts: Vec<String> = by_namespace.iter().map(|(place, n)| format!("{n} in {place}")).collect();
        Err(OpError::CrdInUse { crd: describe(key), kind: kind.to_string(), total, counts: counts.join(", ") })
    }

    /// Fails when the namespace holds objects this stack does not own (beyond what
    /// Kubernetes puts in every namespace and what controllers derive from other objects).
    async fn refuse_namespace_in_use(&self, key: &ObjectKey) -> Result<(), OpError> {
        let kinds = self.listable_kinds().await?;
        let work = kinds
            .iter()
            .filter(|k| k.namespaced && !is_derived_kind(&k.resource.kind))
            .map(|info| async move { (info, self.cluster.list_dynamic(info, Some(&key.name), "").await) }.boxed())
            .collect();
        let mut foreign = Vec::new();
        for (info, list) in concurrently(work).await {
            let list = match list {
                Ok(list) => list,
                Err(e) if forbidden(&e) || gone_kind(&e) => continue,
                Err(e) => return Err(self.kube(&format!("listing {} in namespace {}", info.resource.kind, key.name), e)),
            };
            for object in list {
                if ownership::standing(&object, self.claimant.id) != Standing::Ours && !is_automatic(&info.resource.kind, &object) {
                    foreign.push(format!("{} {}", info.resource.kind, object["metadata"]["name"].as_str().unwrap_or("?")));
                }
            }
        }
        if foreign.is_empty() {
            return Ok(());
        }
        foreign.sort();
        let shown = foreign.iter().take(LISTED).cloned().collect::<Vec<_>>().join(", ");
        let more = if foreign.len() > LISTED { format!(" and {} more", foreign.len() - LISTED) } else { String::new() };
        Err(OpError::NamespaceInUse { namespace: describe(key), count: foreign.len(), listed: format!("{shown}{more}") })
    }

    /// Waits until every deleted object is gone; a timeout names those still there and the
    /// finalizers holding them.
    async fn wait_gone(&self, pending: Vec<(&ObjectKey, KindInfo)>) -> Result<(), OpError> {
        if pending.is_empty() {
            return Ok(());
        }
        let pending = &pending;
        self.deadline
            .poll("deletion", POLL, || async move {
                let mut still = Vec::new();
                for (key, info) in pending {
                    if let Some(live) = self.cluster.get_dynamic(info, key.namespace.as_deref(), &key.name).await? {
                        let finalizers = live["metadata"]["finalizers"]
                            .as_array()
                            .map(|f| f.iter().filter_map(|v| v.as_str()).collect::<Vec<_>>().join(", "))
                            .filter(|f| !f.is_empty());
                        still.push(match finalizers {
                            Some(f) => format!("{} (finalizers: {f})", describe(key)),
                            None => describe(key),
                        });
                    }
                }
                Ok::<_, KubeError>(if still.is_empty() {
                    Progress::Done
                } else {
                    Progress::Pending(format!("still present: {}", still.join("; ")))
                })
            })
            .await
            .map_err(OpError::from)
    }
}

/// Kinds whose objects controllers derive from others (and remove with them).
fn is_derived_kind(kind: &str) -> bool {
    matches!(kind, "Event" | "Endpoints" | "EndpointSlice" | "Pod" | "ReplicaSet" | "ControllerRevision" | "Lease")
}

/// What Kubernetes creates in every namespace, and objects owned by other objects (their
/// owners decide their fate).
fn is_automatic(kind: &str, object: &serde_json::Value) -> bool {
    let name = object["metadata"]["name"].as_str().unwrap_or_default();
    let owned = object["metadata"]["ownerReferences"].as_array().is_some_and(|refs| !refs.is_empty());
    owned
        || (kind == "ServiceAccount" && name == "default")
        || (kind == "ConfigMap" && name == "kube-root-ca.crt")
        || (kind == "Secret" && object["type"] == "kubernetes.io/service-account-token")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn what_every_namespace_holds_does_not_count() {
        assert!(is_automatic("ServiceAccount", &json!({"metadata": {"name": "default"}})));
        assert!(!is_automatic("ServiceAccount", &json!({"metadata": {"name": "app"}})));
        assert!(is_automatic("ConfigMap", &json!({"metadata": {"name": "kube-root-ca.crt"}})));
        assert!(is_automatic("Secret", &json!({"metadata": {"name": "default-token-x"}, "type": "kubernetes.io/service-account-token"})));
        assert!(is_automatic("ConfigMap", &json!({"metadata": {"name": "x", "ownerReferences": [{"uid": "1"}]}})));
        assert!(!is_automatic("ConfigMap", &json!({"metadata": {"name": "precious"}})));
        assert!(is_derived_kind("Event") && !is_derived_kind("ConfigMap"));
    }
}
