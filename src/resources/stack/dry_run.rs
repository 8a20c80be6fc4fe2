//! What a plan learns from the cluster before anything is applied. For every object the
//! apply would write: its inventory key, whether it exists and may be taken over (the
//! ownership rules of `claims`), and what a server-side dry-run apply says the apply would
//! record. The plan then shows which objects stay as they are, appear, disappear or change,
//! and objects the API server refuses (invalid, malformed, too large) fail the plan instead
//! of the apply.

use std::collections::{BTreeMap, BTreeSet};

use futures::future::FutureExt;

use super::claims::{self, Claim, Refusal};
use super::cluster_ops::{concurrently, mark_values_version, recorded, values_secrets, OpError, StackOps};
use super::config::Component;
use super::inventory::{Entry, ObjectKey};
use super::manifests::Manifest;
use crate::clients::kube::KubeError;

/// The plan's view of the objects an apply would write.
#[derive(Debug, Default)]
pub struct PlannedObjects {
    /// Inventory entries of the objects the apply would adopt.
    pub adopted: BTreeSet<String>,
    /// Objects that exist and may not be taken over, by component index.
    pub refusals: Vec<(usize, ObjectKey, Refusal)>,
    /// Every object's key, with the digest the apply would record when a dry run could tell
    /// (`None`: its kind or namespace comes with this apply, or the dry run was not asked).
    /// `None` as a whole when a key itself cannot be known before the apply: a kind that
    /// neither the cluster serves nor a CRD of the stack defines.
    pub entries: Option<BTreeMap<ObjectKey, Option<String>>>,
    /// Objects the API server refused in the dry run, by component index.
    pub rejected: Vec<(usize, ObjectKey, KubeError)>,
    /// For each existing object the dry run changes: the paths of our fields that change.
    pub changes: BTreeMap<ObjectKey, Vec<String>>,
}

impl PlannedObjects {
    /// The planned inventory: an object whose dry-run digest is the one in `prior` stays as
    /// it is (known); every other object's entry is unknown until the apply writes it.
    pub fn inventory(&self, prior: &BTreeMap<String, Entry>) -> Option<BTreeMap<String, Option<String>>> {
        let entries = self.entries.as_ref()?;
        Some(
            entries
                .iter()
                .map(|(key, digest)| {
                    let key = key.to_string();
                    let unchanged = match (digest, prior.get(&key)) {
                        (Some(digest), Some(Entry::Digest(before))) if digest == before => Some(digest.clone()),
                        _ => None,
                    };
                    (key, unchanged)
                })
                .collect(),
        )
    }

    /// The `object_changes` the plan shows: for each existing object whose entry changes,
    /// the paths of our fields that change, comma-separated.
    pub fn object_changes(&self, prior: &BTreeMap<String, Entry>) -> Option<BTreeMap<String, String>> {
        let inventory = self.inventory(prior)?;
        Some(
            self.changes
                .iter()
                .map(|(key, paths)| (key.to_string(), paths))
                .filter(|(key, paths)| !paths.is_empty() && inventory.get(key).is_some_and(Option::is_none))
                .map(|(key, paths)| (key, paths.join(", ")))
                .collect(),
        )
    }
}

/// One object as the plan found it.
struct Looked {
    component: usize,
    key: ObjectKey,
    claim: Result<Claim, Refusal>,
    /// The live object's resourceVersion.
    resource_version: Option<String>,
    digest: Option<String>,
    rejected: Option<KubeError>,
    /// Paths of our fields the write changes (existing objects only).
    changes: Vec<String>,
}

impl Looked {
    /// Found, with nothing yet known of what a write would record.
    fn new(component: &Component, key: ObjectKey, claim: Result<Claim, Refusal>, resource_version: Option<String>) -> Self {
        Looked { component: component.index, key, claim, resource_version, digest: None, rejected: None, changes: Vec::new() }
    }
}

impl StackOps<'_> {
    /// Looks at every object of `rendered` without changing anything, and asks the server
    /// what each write would record. `prior`: the inventory before this plan, which tells
    /// whether a HelmRelease's values Secrets stay as they are.
    pub async fn plan_objects(
        &self,
        components: &[Component],
        rendered: &[Vec<Manifest>],
        prior: &BTreeMap<String, Entry>,
    ) -> Result<PlannedObjects, OpError> {
        let crd_scopes: BTreeMap<(String, String), bool> =
            rendered.iter().flatten().filter_map(|m| Some((m.crd_defines()?, m.crd_namespaced()))).collect();
        // HelmReleases that read values Secrets carry those Secrets' resourceVersions (see
        // `mark_values_version`): they are looked at once the Secrets are.
        let mut first = Vec::new();
        let mut releases = Vec::new();
        for (component, objects) in components.iter().zip(rendered) {
            let secrets = values_secrets(objects);
            for m in objects {
                let reads_secrets = m.kind == "HelmRelease" && !values_secrets(std::slice::from_ref(m)).is_empty();
                if reads_secrets {
                    releases.push((component, m, secrets.clone()));
                } else {
                    first.push(self.look(component, m.clone(), &crd_scopes, true).boxed());
                }
            }
        }
        let mut looked: Vec<Option<Looked>> = concurrently(first).await.into_iter().collect::<Result<_, _>>()?;
        let mut second = Vec::new();
        for (component, release, secrets) in releases {
            // The versions the apply will write, if every Secret stays as it is.
            let mut versions = BTreeMap::new();
            let mut unchanged = true;
            for (namespace, name) in &secrets {
                let found = looked.iter().flatten().find(|l| {
                    l.component == component.index
                        && l.key.kind == "Secret"
                        && l.key.name == *name
                        && l.key.namespace == *namespace
                });
                let stays = found.filter(|l| {
                    matches!((&l.digest, prior.get(&l.key.to_string())), (Some(d), Some(Entry::Digest(p))) if d == p)
                });
                match stays.and_then(|l| l.resource_version.clone()) {
                    Some(version) => {
                        versions.insert((namespace.clone(), name.clone()), version);
                    }
                    None => unchanged = false,
                }
            }
            let mut release = release.clone();
            mark_values_version(&mut release, &versions);
            second.push(self.look(component, release, &crd_scopes, unchanged).boxed());
        }
        looked.extend(concurrently(second).await.into_iter().collect::<Result<Vec<_>, _>>()?);

        let mut planned = PlannedObjects::default();
        let mut entries = Some(BTreeMap::new());
        for found in looked {
            let Some(found) = found else {
                entries = None;
                continue;
            };
            if let Some(error) = found.rejected {
                planned.rejected.push((found.component, found.key.clone(), error));
            }
            match found.claim {
                Ok(Claim::Adopt | Claim::Ours { adopted: true }) => {
                    planned.adopted.insert(found.key.to_string());
                }
                Ok(_) => {}
                Err(refusal) => planned.refusals.push((found.component, found.key.clone(), refusal)),
            }
            if !found.changes.is_empty() {
                planned.changes.insert(found.key.clone(), found.changes);
            }
            if let Some(entries) = entries.as_mut() {
                entries.insert(found.key, found.digest);
            }
        }
        planned.entries = entries;
        Ok(planned)
    }

    /// One object: where it goes, whether we may write it, and what the write would record
    /// (`digest`: false when the object as looked at is not the one the apply will write, as
    /// for a HelmRelease whose values Secrets change first). `None` when its kind is unknown
    /// to the cluster and to the stack's CRDs.
    async fn look(
        &self,
        component: &Component,
        mut m: Manifest,
        crd_scopes: &BTreeMap<(String, String), bool>,
        digest: bool,
    ) -> Result<Option<Looked>, OpError> {
        let defined_here = crd_scopes.get(&(m.group().to_string(), m.kind.clone())).copied();
        let info = self.cluster.kind(&m.api_version, &m.kind).await.map_err(|e| self.kube("discovery", e))?;
        let Some(info) = info else {
            // A kind a CRD of this stack brings: nothing of it exists yet.
            let Some(namespaced) = defined_here else { return Ok(None) };
            Self::place(component, namespaced, &mut m);
            let key = ObjectKey::of(&component.name, &m);
            return Ok(Some(Looked::new(component, key, Ok(Claim::Create), None)));
        };
        Self::place(component, info.namespaced, &mut m);
        let key = ObjectKey::of(&component.name, &m);
        let namespace = m.namespace.clone();
        let live = self.read_live(&info, &key).await?;
        let claim = claims::claim(&self.claimant, &key.owned_identity(), live.as_ref(), component.adopt);
        let resource_version =
            live.as_ref().and_then(|l| l["metadata"]["resourceVersion"].as_str()).map(str::to_string);
        let mut looked = Looked::new(component, key, claim, resource_version);
        if looked.claim.is_err() {
            return Ok(Some(looked));
        }
        self.prepare_write(component, &mut m, live.is_some());
        match self
            .cluster
            .apply_owned_dry_run(&info, namespace.as_deref(), &m.name, &m.object, self.force_conflicts)
            .await
        {
            Ok(written) if digest => {
                let (digest, changes) = recorded(component, live.as_ref(), &written);
                (looked.digest, looked.changes) = (Some(digest), changes);
            }
            Ok(_) => {}
            // A CRD of this stack may change the schema first: the apply decides then.
            Err(e) if e.is_rejected() && defined_here.is_none() => looked.rejected = Some(e),
            Err(e) => {
                tracing::debug!(object = %looked.key, error = %e, "dry run inconclusive; the entry stays unknown")
            }
        }
        Ok(Some(looked))
    }
}
