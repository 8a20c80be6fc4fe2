//! Who owns a cluster object, and letting go of one.
//!
//! Every object a resource instance manages carries [`OWNER_ANNOTATION`] with that instance's
//! id (a random id made when the instance is created, kept in its state). Ownership is read
//! from the object itself, never derived from a name: two stacks called `apps` in two
//! working directories have different ids, and neither touches the other's objects.
//!
//! Releasing an object (an adopted one, on destroy) removes our annotation and labels and our
//! entries in `metadata.managedFields`; the object and its values stay as they are.
//!
//! Pure rules over JSON plus one client call; nothing here knows Terraform.

use kube::api::{DeleteParams, Patch, PatchParams, Preconditions, PropagationPolicy};

use super::{Cluster, KindInfo, KubeError, FIELD_MANAGER};

/// The annotation naming the resource instance that manages an object.
pub const OWNER_ANNOTATION: &str = "platform.terraform.io/owner";
/// Helm's "leave this object when the release goes" annotation, honoured on destroy too.
pub const HELM_RESOURCE_POLICY: &str = "helm.sh/resource-policy";
/// Our own "never delete" annotation: `platform.terraform.io/keep: "true"`.
pub const KEEP_ANNOTATION: &str = "platform.terraform.io/keep";

/// A fresh instance id (a random UUID, version 4).
pub fn new_instance_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Whether `id` looks like an id made by [`new_instance_id`].
pub fn is_instance_id(id: &str) -> bool {
    uuid::Uuid::parse_str(id).is_ok_and(|u| u.get_version_num() == 4)
}

/// The owner recorded on `object`, if any.
pub fn owner(object: &serde_json::Value) -> Option<&str> {
    object["metadata"]["annotations"][OWNER_ANNOTATION].as_str()
}

/// How an existing object stands towards the instance `id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    /// Carries our id.
    Ours,
    /// Carries another instance's id.
    OtherInstance(String),
    /// Made by someone else (kubectl, Helm, a controller...), or by us before ownership was recorded.
    Foreign,
}

pub fn standing(object: &serde_json::Value, id: &str) -> Standing {
    match owner(object) {
        Some(owner) if owner == id => Standing::Ours,
        Some(owner) => Standing::OtherInstance(owner.to_string()),
        None => Standing::Foreign,
    }
}

/// Whether an annotation asks for the object to be left in place on delete.
pub fn is_kept(object: &serde_json::Value) -> bool {
    let annotations = &object["metadata"]["annotations"];
    annotations[HELM_RESOURCE_POLICY].as_str() == Some("keep") || annotations[KEEP_ANNOTATION].as_str() == Some("true")
}

/// The field managers of `object`, as "name (operation)" in the order the server lists them,
/// for messages: who else writes to this object.
pub fn field_managers(object: &serde_json::Value) -> Vec<String> {
    let Some(entries) = object["metadata"]["managedFields"].as_array() else { return Vec::new() };
    let mut managers: Vec<String> = Vec::new();
    for entry in entries {
        let Some(manager) = entry["manager"].as_str() else { continue };
        let operation = entry["operation"].as_str().unwrap_or("?");
        let text = match entry["subresource"].as_str().filter(|s| !s.is_empty()) {
            Some(sub) => format!("{manager} ({operation}, {sub})"),
            None => format!("{manager} ({operation})"),
        };
        if !managers.contains(&text) {
            managers.push(text);
        }
    }
    managers
}

/// "field managers: a (Update), b (Apply)" or "no field managers".
pub fn describe_managers(object: &serde_json::Value) -> String {
    let managers = field_managers(object);
    if managers.is_empty() {
        "no field managers".to_string()
    } else {
        format!("field managers: {}", managers.join(", "))
    }
}

/// The merge patch that releases `live`: our annotation and the given labels removed (when
/// present), and `managedFields` without the entries of `manager`. `None` when there is
/// nothing to remove.
pub fn release_patch(live: &serde_json::Value, manager: &str, labels: &[&str]) -> Option<serde_json::Value> {
    let metadata = &live["metadata"];
    let mut patch = serde_json::Map::new();
    if metadata["annotations"].get(OWNER_ANNOTATION).is_some() {
        patch.insert("annotations".into(), serde_json::json!({ OWNER_ANNOTATION: null }));
    }
    let present: serde_json::Map<String, serde_json::Value> = labels
        .iter()
        .filter(|l| metadata["labels"].get(**l).is_some())
        .map(|l| (l.to_string(), serde_json::Value::Null))
        .collect();
    if !present.is_empty() {
        patch.insert("labels".into(), serde_json::Value::Object(present));
    }
    if let Some(entries) = metadata["managedFields"].as_array() {
        let kept: Vec<serde_json::Value> =
            entries.iter().filter(|e| e["manager"].as_str() != Some(manager)).cloned().collect();
        if kept.len() != entries.len() {
            // An empty list would mean "unchanged" to the server; `[{}]` clears every entry.
            let kept = if kept.is_empty() { vec![serde_json::json!({})] } else { kept };
            patch.insert("managedFields".into(), serde_json::Value::Array(kept));
        }
    }
    if patch.is_empty() {
        return None;
    }
    if let Some(version) = metadata["resourceVersion"].as_str() {
        patch.insert("resourceVersion".into(), version.into());
    }
    Some(serde_json::json!({ "metadata": patch }))
}

/// The field manager name of release patches: never ours, so the patch itself records no
/// ownership for us.
const RELEASE_MANAGER: &str = "terraform-provider-platform-release";

/// The field manager name of repair patches (see [`Cluster::repair_dynamic`]).
const REPAIR_MANAGER: &str = "terraform-provider-platform-repair";

impl Cluster {
    /// Server-side applies one whole object as our field manager. Without `force`, a field
    /// another manager owns with a different value is a 409 conflict naming that manager.
    pub async fn apply_owned(
        &self,
        info: &KindInfo,
        namespace: Option<&str>,
        name: &str,
        object: &serde_json::Value,
        force: bool,
    ) -> Result<serde_json::Value, KubeError> {
        self.server_side_apply(info, namespace, name, object, force, false).await
    }

    /// [`apply_owned`](Self::apply_owned) as a server-side dry run: the object as the apply
    /// would leave it (defaults, admission, validation and size checks included), nothing
    /// written.
    pub async fn apply_owned_dry_run(
        &self,
        info: &KindInfo,
        namespace: Option<&str>,
        name: &str,
        object: &serde_json::Value,
        force: bool,
    ) -> Result<serde_json::Value, KubeError> {
        self.server_side_apply(info, namespace, name, object, force, true).await
    }

    async fn server_side_apply(
        &self,
        info: &KindInfo,
        namespace: Option<&str>,
        name: &str,
        object: &serde_json::Value,
        force: bool,
        dry_run: bool,
    ) -> Result<serde_json::Value, KubeError> {
        let mut params = PatchParams::apply(FIELD_MANAGER);
        params.force = force;
        params.dry_run = dry_run;
        let live = self.dynamic_api(info, namespace).patch(name, &params, &Patch::Apply(object)).await.map_err(|e| self.error(e))?;
        Ok(serde_json::to_value(live).unwrap_or_default())
    }

    /// A JSON merge patch under a field manager of its own, for repairs made beside our own
    /// apply (resuming a suspended object, removing fields others added): it takes none of
    /// our fields, and the fields it sets do not become ours.
    pub async fn repair_dynamic(
        &self,
        info: &KindInfo,
        namespace: Option<&str>,
        name: &str,
        patch: &serde_json::Value,
    ) -> Result<serde_json::Value, KubeError> {
        let params = PatchParams { field_manager: Some(REPAIR_MANAGER.to_string()), ..Default::default() };
        let live = self.dynamic_api(info, namespace).patch(name, &params, &Patch::Merge(patch)).await.map_err(|e| self.error(e))?;
        Ok(serde_json::to_value(live).unwrap_or_default())
    }

    /// Deletes exactly the object with `uid` (a newer object of the same name is left
    /// alone: the server refuses with a conflict). `Ok(false)` when it was already gone.
    pub async fn delete_exact(&self, info: &KindInfo, namespace: Option<&str>, name: &str, uid: &str) -> Result<bool, KubeError> {
        let params = DeleteParams {
            propagation_policy: Some(PropagationPolicy::Background),
            preconditions: Some(Preconditions { uid: Some(uid.to_string()), resource_version: None }),
            ..Default::default()
        };
        match self.dynamic_api(info, namespace).delete(name, &params).await.map_err(|e| self.error(e)) {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Releases an object: see [`release_patch`]. Retries once when the object changed
    /// between read and patch; `Ok(false)` when it is already gone.
    pub async fn release_dynamic(
        &self,
        info: &KindInfo,
        namespace: Option<&str>,
        name: &str,
        labels: &[&str],
    ) -> Result<bool, KubeError> {
        let api = self.dynamic_api(info, namespace);
        let mut attempts = 0;
        loop {
            attempts += 1;
            let Some(live) = self.get_dynamic(info, namespace, name).await? else { return Ok(false) };
            let Some(patch) = release_patch(&live, FIELD_MANAGER, labels) else { return Ok(true) };
            let params = PatchParams { field_manager: Some(RELEASE_MANAGER.into()), ..Default::default() };
            match api.patch(name, &params, &Patch::Merge(&patch)).await.map_err(|e| self.error(e)) {
                Ok(_) => return Ok(true),
                Err(e) if e.is_conflict() && attempts < 3 => continue,
                Err(e) if e.is_not_found() => return Ok(false),
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn object(annotations: serde_json::Value, managers: serde_json::Value) -> serde_json::Value {
        json!({"metadata": {"name": "x", "resourceVersion": "7", "annotations": annotations,
            "labels": {"platform.terraform.io/stack": "s", "team": "a"}, "managedFields": managers}})
    }

    #[test]
    fn instance_ids_are_random_v4_uuids() {
        let (a, b) = (new_instance_id(), new_instance_id());
        assert_ne!(a, b);
        assert!(is_instance_id(&a), "{a}");
        assert!(!is_instance_id("apps"));
        assert!(!is_instance_id("00000000-0000-1000-8000-000000000000"), "a v1 UUID is not ours");
    }

    #[test]
    fn standing_reads_the_annotation_only() {
        let ours = object(json!({OWNER_ANNOTATION: "id-1"}), json!([]));
        assert_eq!(standing(&ours, "id-1"), Standing::Ours);
        assert_eq!(standing(&ours, "id-2"), Standing::OtherInstance("id-1".into()));
        assert_eq!(standing(&object(json!({}), json!([])), "id-1"), Standing::Foreign);
    }

    #[test]
    fn kept_objects() {
        assert!(is_kept(&object(json!({"helm.sh/resource-policy": "keep"}), json!([]))));
        assert!(is_kept(&object(json!({KEEP_ANNOTATION: "true"}), json!([]))));
        assert!(!is_kept(&object(json!({KEEP_ANNOTATION: "false"}), json!([]))));
    }

    #[test]
    fn managers_are_listed_once_with_operation_and_subresource() {
        let o = object(
            json!({}),
            json!([
                {"manager": "kubectl-create", "operation": "Update"},
                {"manager": "kubectl-create", "operation": "Update"},
                {"manager": "kube-controller-manager", "operation": "Update", "subresource": "status"},
                {"manager": FIELD_MANAGER, "operation": "Apply"}
            ]),
        );
        assert_eq!(
            describe_managers(&o),
            "field managers: kubectl-create (Update), kube-controller-manager (Update, status), terraform-provider-platform (Apply)"
        );
        assert_eq!(describe_managers(&json!({})), "no field managers");
    }

    #[test]
    fn release_removes_our_marks_and_keeps_other_managers() {
        let o = object(
            json!({OWNER_ANNOTATION: "id-1", "note": "user"}),
            json!([{"manager": "kubectl-create", "operation": "Update"}, {"manager": FIELD_MANAGER, "operation": "Apply"}]),
        );
        let patch = release_patch(&o, FIELD_MANAGER, &["platform.terraform.io/stack", "absent"]).unwrap();
        assert_eq!(
            patch,
            json!({"metadata": {
                "annotations": {OWNER_ANNOTATION: null},
                "labels": {"platform.terraform.io/stack": null},
                "managedFields": [{"manager": "kubectl-create", "operation": "Update"}],
                "resourceVersion": "7"
            }})
        );
    }

    #[test]
    fn release_of_an_object_only_we_managed_clears_managed_fields() {
        let o = object(json!({}), json!([{"manager": FIELD_MANAGER, "operation": "Apply"}]));
        let patch = release_patch(&o, FIELD_MANAGER, &[]).unwrap();
        assert_eq!(patch["metadata"]["managedFields"], json!([{}]));
        let untouched = object(json!({}), json!([{"manager": "kubectl", "operation": "Update"}]));
        assert_eq!(release_patch(&untouched, FIELD_MANAGER, &[]), None);
    }
}
