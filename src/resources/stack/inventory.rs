//! The inventory a stack keeps in its state: which objects each component applied, in a
//! text form that survives the trip through Terraform state, and the orders in which
//! objects are applied and torn down.
//!
//! Nothing here talks to a cluster or knows Terraform: an entry is identity only (the
//! digests kept beside entries come from `fields`).
//!
//! Two entries are the same object when group, kind, namespace and name agree: a new API
//! version of a kind (`apps/v1beta2` to `apps/v1`) does not make a new object, so it must
//! not be pruned as an old one.

use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;

use thiserror::Error;

use super::manifests::{is_crd, is_namespace, split_api_version, Manifest, ObjectIdentity};

/// One applied object, as kept in state. Its text form round-trips through
/// [`Display`](fmt::Display) and [`FromStr`]:
/// "cert-manager: apps/v1 Deployment cert-manager/cert-manager" (namespaced) or
/// "flux: apiextensions.k8s.io/v1 CustomResourceDefinition helmreleases.helm.toolkit.fluxcd.io"
/// (cluster-scoped). It holds for the names Kubernetes accepts (no whitespace, no '/'; see
/// `manifests::parse_documents`) and component names without ": ".
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey {
    pub component: String,
    pub api_version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
}

impl ObjectKey {
    /// The entry for `manifest` applied by `component`; give the manifest its namespace
    /// (`manifests::default_namespace`) first.
    pub fn of(component: &str, manifest: &Manifest) -> Self {
        ObjectKey {
            component: component.to_string(),
            api_version: manifest.api_version.clone(),
            kind: manifest.kind.clone(),
            namespace: manifest.namespace.clone(),
            name: manifest.name.clone(),
        }
    }

    /// The API group: `""` for the core group.
    pub fn group(&self) -> &str {
        split_api_version(&self.api_version).0
    }

    /// Whether both entries are the same cluster object (the version and the component that
    /// applied it do not count: an object can move between components without being deleted).
    #[cfg(test)]
    pub fn same_object(&self, other: &ObjectKey) -> bool {
        self.identity() == other.identity()
    }

    pub fn identity(&self) -> ObjectIdentity<'_> {
        (self.group(), &self.kind, self.namespace.as_deref(), &self.name)
    }

    pub fn teardown_phase(&self) -> TeardownPhase {
        teardown_phase(&self.api_version, &self.kind)
    }

    /// [`identity`](Self::identity), owned: for sets that outlive the entries.
    pub fn owned_identity(&self) -> super::claims::Identity {
        (self.group().to_string(), self.kind.clone(), self.namespace.clone(), self.name.clone())
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} {} ", self.component, self.api_version, self.kind)?;
        match &self.namespace {
            Some(namespace) => write!(f, "{namespace}/{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// What the inventory holds for an object beside its key: the digest of the fields we own,
/// or why there is none. Its text is what the state, and so the plan, shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Digest(String),
    /// A field we own was changed outside Terraform: the next apply writes it back.
    Changed,
    /// The object is gone, or belongs to another instance now.
    Deleted,
    /// A write whose outcome is unknown (a timeout, a dropped connection).
    Uncertain,
    /// A HelmRelease suspended outside Terraform (see `release_health`).
    Suspended,
    /// A HelmRelease carrying values keys that someone else set.
    ForeignValues,
    /// A HelmRelease helm-controller gave up on.
    NotReady,
}

const CHANGED_TEXT: &str = "changed outside Terraform";
const DELETED_TEXT: &str = "deleted outside Terraform";
const UNCERTAIN_TEXT: &str = "outcome unknown";
const SUSPENDED_TEXT: &str = "release suspended outside Terraform";
const FOREIGN_VALUES_TEXT: &str = "release values set outside Terraform";
const NOT_READY_TEXT: &str = "release failed: not Ready";

impl Entry {
    pub fn parse(text: &str) -> Entry {
        match text {
            CHANGED_TEXT => Entry::Changed,
            DELETED_TEXT => Entry::Deleted,
            UNCERTAIN_TEXT => Entry::Uncertain,
            SUSPENDED_TEXT => Entry::Suspended,
            FOREIGN_VALUES_TEXT => Entry::ForeignValues,
            NOT_READY_TEXT => Entry::NotReady,
            digest => Entry::Digest(digest.to_string()),
        }
    }

    /// Whether an apply has something to repair for this object.
    pub fn is_stale(&self) -> bool {
        !matches!(self, Entry::Digest(_))
    }
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Entry::Digest(digest) => digest,
            Entry::Changed => CHANGED_TEXT,
            Entry::Deleted => DELETED_TEXT,
            Entry::Uncertain => UNCERTAIN_TEXT,
            Entry::Suspended => SUSPENDED_TEXT,
            Entry::ForeignValues => FOREIGN_VALUES_TEXT,
            Entry::NotReady => NOT_READY_TEXT,
        })
    }
}

/// Text that is not an inventory entry (only identity is quoted: entries hold no values).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{0:?} is not an inventory entry of the form \"<component>: <apiVersion> <kind> [<namespace>/]<name>\"")]
pub struct ObjectKeyParseError(pub String);

impl FromStr for ObjectKey {
    type Err = ObjectKeyParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || ObjectKeyParseError(text.to_string());
        let (component, rest) = text.split_once(": ").ok_or_else(invalid)?;
        let parts: Vec<&str> = rest.split(' ').collect();
        let [api_version, kind, object] = parts[..] else { return Err(invalid()) };
        let (namespace, name) = match object.split_once('/') {
            Some((namespace, name)) => (Some(namespace), name),
            None => (None, object),
        };
        let words = [component, api_version, kind, name].into_iter().chain(namespace);
        let well_formed = |word: &str| !word.is_empty() && !word.contains(char::is_whitespace);
        if !words.into_iter().all(well_formed) || name.contains('/') {
            return Err(invalid());
        }
        Ok(ObjectKey {
            component: component.to_string(),
            api_version: api_version.to_string(),
            kind: kind.to_string(),
            namespace: namespace.map(str::to_string),
            name: name.to_string(),
        })
    }
}

/// Teardown phases inside a component, in the order they run: custom resources first,
/// while the controllers that hold finalizers on them still run; then workloads and the
/// other built-in kinds; then the CRDs, once nothing of their kinds is left; Namespaces last,
/// because deleting one deletes everything still in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TeardownPhase {
    CustomResources,
    BuiltIn,
    Crds,
    Namespaces,
}

/// API groups served by kube-apiserver itself. A list rather than "every *.k8s.io group"
/// because Kubernetes SIG projects publish CRDs under k8s.io (gateway.networking.k8s.io,
/// snapshot.storage.k8s.io, ...): those are custom resources whose controllers must still
/// run while they are deleted. A built-in group missing here only moves its objects to the
/// custom-resources phase, which is early but harmless.
pub const BUILT_IN_GROUPS: &[&str] = &[
    "",
    "admissionregistration.k8s.io",
    "apiextensions.k8s.io",
    "apiregistration.k8s.io",
    "apps",
    "authentication.k8s.io",
    "authorization.k8s.io",
    "autoscaling",
    "batch",
    "certificates.k8s.io",
    "coordination.k8s.io",
    "discovery.k8s.io",
    "events.k8s.io",
    "extensions",
    "flowcontrol.apiserver.k8s.io",
    "internal.apiserver.k8s.io",
    "networking.k8s.io",
    "node.k8s.io",
    "policy",
    "rbac.authorization.k8s.io",
    "resource.k8s.io",
    "scheduling.k8s.io",
    "storage.k8s.io",
    "storagemigration.k8s.io",
];

pub fn is_built_in_group(group: &str) -> bool {
    BUILT_IN_GROUPS.contains(&group)
}

pub fn teardown_phase(api_version: &str, kind: &str) -> TeardownPhase {
    if is_namespace(api_version, kind) {
        TeardownPhase::Namespaces
    } else if is_crd(api_version, kind) {
        TeardownPhase::Crds
    } else if is_built_in_group(split_api_version(api_version).0) {
        TeardownPhase::BuiltIn
    } else {
        TeardownPhase::CustomResources
    }
}

/// Apply order inside a component: Namespaces and CRDs first (then the caller waits for the
/// CRDs to be Established, so that their kinds can be applied), then everything else.
pub fn is_foundation(api_version: &str, kind: &str) -> bool {
    is_namespace(api_version, kind) || is_crd(api_version, kind)
}

/// `keys` grouped by teardown phase, in teardown order; empty phases are left out and
/// entries keep their order within a phase.
pub fn teardown_order<'a>(keys: impl IntoIterator<Item = &'a ObjectKey>) -> Vec<(TeardownPhase, Vec<&'a ObjectKey>)> {
    let mut keys: Vec<&ObjectKey> = keys.into_iter().collect();
    // Stable: the order inside a phase is the caller's.
    keys.sort_by_key(|key| key.teardown_phase());
    let mut phases: Vec<(TeardownPhase, Vec<&ObjectKey>)> = Vec::new();
    for key in keys {
        match phases.last_mut() {
            Some((phase, members)) if *phase == key.teardown_phase() => members.push(key),
            _ => phases.push((key.teardown_phase(), vec![key])),
        }
    }
    phases
}

/// `kubectl delete` commands that remove `keys` by hand, in teardown order: one command per
/// phase and namespace, naming each object as `kind.group/name`.
pub fn kubectl_delete_commands<'a>(keys: impl IntoIterator<Item = &'a ObjectKey>) -> Vec<String> {
    let mut commands = Vec::new();
    for (_, members) in teardown_order(keys) {
        let mut by_namespace: std::collections::BTreeMap<Option<&str>, Vec<String>> = std::collections::BTreeMap::new();
        for key in members {
            let group = key.group();
            let resource = if group.is_empty() { key.kind.to_lowercase() } else { format!("{}.{group}", key.kind.to_lowercase()) };
            by_namespace.entry(key.namespace.as_deref()).or_default().push(format!("{resource}/{}", key.name));
        }
        for (namespace, objects) in by_namespace {
            let scope = namespace.map(|ns| format!(" -n {ns}")).unwrap_or_default();
            commands.push(format!("kubectl delete{scope} {}", objects.join(" ")));
        }
    }
    commands
}

/// Entries of `previous` that are no longer applied: no entry of `current` is the same
/// object. Those are the ones to delete (prune), in `previous`' order.
pub fn removed<'a>(previous: &'a [ObjectKey], current: &[ObjectKey]) -> Vec<&'a ObjectKey> {
    let applied: HashSet<_> = current.iter().map(ObjectKey::identity).collect();
    previous.iter().filter(|old| !applied.contains(&old.identity())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleanup_commands_follow_the_teardown_order_one_per_namespace() {
        let keys: Vec<ObjectKey> = [
            "app: v1 Namespace shop",
            "app: apps/v1 Deployment shop/web",
            "app: v1 ConfigMap shop/settings",
            "app: v1 ConfigMap other/x",
            "crds: apiextensions.k8s.io/v1 CustomResourceDefinition widgets.example.com",
            "app: example.com/v1 Widget shop/w",
        ]
        .iter()
        .map(|k| k.parse().unwrap())
        .collect();
        assert_eq!(
            kubectl_delete_commands(&keys),
            [
                "kubectl delete -n shop widget.example.com/w",
                "kubectl delete -n other configmap/x",
                "kubectl delete -n shop deployment.apps/web configmap/settings",
                "kubectl delete customresourcedefinition.apiextensions.k8s.io/widgets.example.com",
                "kubectl delete namespace/shop",
            ]
        );
    }

    fn key(text: &str) -> ObjectKey {
        text.parse().unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn text_form_round_trips() {
        for text in [
            "cert-manager: apps/v1 Deployment cert-manager/cert-manager",
            "flux: apiextensions.k8s.io/v1 CustomResourceDefinition helmreleases.helm.toolkit.fluxcd.io",
            "base: v1 Namespace shop",
            "base: rbac.authorization.k8s.io/v1 ClusterRole system:controller:thing",
        ] {
            assert_eq!(key(text).to_string(), text);
        }
    }

    #[test]
    fn parses_the_parts() {
        assert_eq!(
            key("cert-manager: apps/v1 Deployment cert-manager/webhook"),
            ObjectKey {
                component: "cert-manager".into(),
                api_version: "apps/v1".into(),
                kind: "Deployment".into(),
                namespace: Some("cert-manager".into()),
                name: "webhook".into(),
            }
        );
        let crd = key("flux: apiextensions.k8s.io/v1 CustomResourceDefinition helmreleases.helm.toolkit.fluxcd.io");
        assert_eq!(crd.namespace, None);
        assert_eq!(crd.group(), "apiextensions.k8s.io");
        assert_eq!(key("a: v1 ConfigMap x/y").group(), "");
    }

    #[test]
    fn rejects_what_is_not_an_entry() {
        for text in [
            "",
            "no colon here",
            "c: v1 ConfigMap",
            "c: v1 ConfigMap a b",
            "c: v1  ConfigMap a",
            ": v1 ConfigMap a",
            "c: v1 ConfigMap /a",
            "c: v1 ConfigMap a/",
            "c: v1 ConfigMap a/b/c",
            "c:v1 ConfigMap a",
            "c d: v1 ConfigMap a",
        ] {
            let error = text.parse::<ObjectKey>().unwrap_err();
            assert_eq!(error, ObjectKeyParseError(text.to_string()));
        }
        assert_eq!(
            "x".parse::<ObjectKey>().unwrap_err().to_string(),
            "\"x\" is not an inventory entry of the form \"<component>: <apiVersion> <kind> [<namespace>/]<name>\""
        );
    }

    #[test]
    fn built_from_a_manifest() {
        let manifests = super::super::manifests::parse_documents(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: shop}\n",
        )
        .unwrap();
        assert_eq!(ObjectKey::of("app", &manifests[0]).to_string(), "app: apps/v1 Deployment shop/web");
    }

    #[test]
    fn same_object_ignores_version_and_component() {
        let a = key("one: apps/v1beta2 Deployment shop/web");
        assert!(a.same_object(&key("two: apps/v1 Deployment shop/web")));
        assert!(!a.same_object(&key("one: extensions/v1beta1 Deployment shop/web")));
        assert!(!a.same_object(&key("one: apps/v1 Deployment other/web")));
        assert!(!a.same_object(&key("one: apps/v1 StatefulSet shop/web")));
        assert!(!a.same_object(&key("one: apps/v1 Deployment shop/api")));
        assert!(!key("c: v1 Namespace web").same_object(&key("c: v1 Namespace x/web")));
    }

    #[test]
    fn phases() {
        assert_eq!(teardown_phase("v1", "Namespace"), TeardownPhase::Namespaces);
        assert_eq!(teardown_phase("apiextensions.k8s.io/v1", "CustomResourceDefinition"), TeardownPhase::Crds);
        for (api_version, kind) in [
            ("v1", "Service"),
            ("v1", "ConfigMap"),
            ("apps/v1", "Deployment"),
            ("batch/v1", "Job"),
            ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
            ("networking.k8s.io/v1", "Ingress"),
            ("policy/v1", "PodDisruptionBudget"),
            ("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration"),
            ("apiregistration.k8s.io/v1", "APIService"),
            ("autoscaling/v2", "HorizontalPodAutoscaler"),
        ] {
            assert_eq!(teardown_phase(api_version, kind), TeardownPhase::BuiltIn, "{api_version} {kind}");
        }
        for (api_version, kind) in [
            ("cert-manager.io/v1", "ClusterIssuer"),
            ("helm.toolkit.fluxcd.io/v2", "HelmRelease"),
            ("gateway.networking.k8s.io/v1", "Gateway"),
            ("snapshot.storage.k8s.io/v1", "VolumeSnapshotClass"),
            ("example.com/v1", "Namespace"),
        ] {
            assert_eq!(teardown_phase(api_version, kind), TeardownPhase::CustomResources, "{api_version} {kind}");
        }
        assert!(TeardownPhase::CustomResources < TeardownPhase::BuiltIn);
        assert!(TeardownPhase::BuiltIn < TeardownPhase::Crds);
        assert!(TeardownPhase::Crds < TeardownPhase::Namespaces);
    }

    #[test]
    fn foundation_is_namespaces_and_crds() {
        assert!(is_foundation("v1", "Namespace"));
        assert!(is_foundation("apiextensions.k8s.io/v1", "CustomResourceDefinition"));
        assert!(!is_foundation("v1", "ConfigMap"));
        assert!(!is_foundation("cert-manager.io/v1", "Certificate"));
    }

    #[test]
    fn teardown_order_groups_by_phase_keeping_order_within() {
        let keys: Vec<ObjectKey> = [
            "c: v1 Namespace shop",
            "c: apps/v1 Deployment shop/web",
            "c: apiextensions.k8s.io/v1 CustomResourceDefinition certificates.cert-manager.io",
            "c: cert-manager.io/v1 Certificate shop/tls",
            "c: v1 Service shop/web",
            "c: cert-manager.io/v1 ClusterIssuer letsencrypt",
        ]
        .iter()
        .map(|t| key(t))
        .collect();
        let order: Vec<(TeardownPhase, Vec<String>)> =
            teardown_order(&keys).into_iter().map(|(p, ks)| (p, ks.iter().map(|k| k.name.clone()).collect())).collect();
        assert_eq!(
            order,
            [
                (TeardownPhase::CustomResources, vec!["tls".to_string(), "letsencrypt".to_string()]),
                (TeardownPhase::BuiltIn, vec!["web".to_string(), "web".to_string()]),
                (TeardownPhase::Crds, vec!["certificates.cert-manager.io".to_string()]),
                (TeardownPhase::Namespaces, vec!["shop".to_string()]),
            ]
        );
        assert!(teardown_order(&[]).is_empty());
        let only_built_in = [key("c: v1 ConfigMap a/b")];
        assert_eq!(teardown_order(&only_built_in).len(), 1);
    }

    #[test]
    fn removed_entries_are_those_no_longer_applied() {
        let previous = vec![
            key("a: apps/v1beta2 Deployment shop/web"),
            key("a: v1 ConfigMap shop/old"),
            key("a: v1 Service shop/web"),
            key("b: v1 Secret shop/moved"),
        ];
        let current =
            vec![key("a: apps/v1 Deployment shop/web"), key("a: v1 Service shop/web"), key("c: v1 Secret shop/moved")];
        let removed: Vec<String> = removed(&previous, &current).iter().map(|k| k.to_string()).collect();
        assert_eq!(removed, ["a: v1 ConfigMap shop/old"]);
        assert!(super::removed(&[], &current).is_empty());
        assert_eq!(super::removed(&previous, &[]).len(), previous.len());
    }

    #[test]
    fn keys_order_for_use_in_sorted_maps() {
        let mut keys = [key("b: v1 ConfigMap x/a"), key("a: v1 ConfigMap x/b"), key("a: v1 ConfigMap x/a")];
        keys.sort();
        let texts: Vec<String> = keys.iter().map(ToString::to_string).collect();
        assert_eq!(texts, ["a: v1 ConfigMap x/a", "a: v1 ConfigMap x/b", "b: v1 ConfigMap x/a"]);
    }

    #[test]
    fn entries_round_trip_through_their_text() {
        for entry in [Entry::Digest("sha256:ab".into()), Entry::Changed, Entry::Deleted, Entry::Uncertain] {
            assert_eq!(Entry::parse(&entry.to_string()), entry);
        }
        assert!(Entry::Changed.is_stale() && !Entry::Digest("x".into()).is_stale());
    }
}
