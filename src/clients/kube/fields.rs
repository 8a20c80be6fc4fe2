//! Drift detection by field ownership: the digest of the parts of an object that a field
//! manager owns, read from the object's `metadata.managedFields`.
//!
//! With server-side apply the API server records, per manager, the set of fields it last set
//! (a `fieldsV1` set). When someone else changes one of our fields, the field moves to their
//! set and out of ours; fields the server defaulted or other managers added were never in
//! ours. So the projection of an object onto our set changes exactly when something we
//! applied changed, and its digest, kept in state, detects drift without false alarms from
//! defaults, status or controllers.
//!
//! `fieldsV1` is structured-merge-diff's set format: a JSON tree whose keys are path elements
//! - `f:<name>` an object field,
//! - `k:<JSON object>` the list item whose key fields have these values (`k:{"name":"web"}`),
//! - `v:<JSON value>` the list item equal to this value (lists used as sets),
//! - `i:<index>` the list item at this position,
//! - `.` the node itself (a member of the set in its own right; it selects nothing below it),
//!
//! and a leaf `{}` says the whole value at that path is in the set.
//!
//! Pure functions over JSON: nothing here knows Terraform or how the object was fetched.

use sha2::{Digest, Sha256};

use crate::clients::keyed::DigestKey;

/// The union of the `fieldsV1` sets of the `managedFields` entries of `manager` with
/// operation "Apply" on the object itself. Entries for a subresource (`status`, `scale`) are
/// left out: the stack applies objects, never their subresources. `None` when the manager
/// owns nothing in the object.
pub fn owned_fields(object: &serde_json::Value, manager: &str) -> Option<serde_json::Value> {
    let entries = object.get("metadata")?.get("managedFields")?.as_array()?;
    let mut owned: Option<serde_json::Value> = None;
    for entry in entries {
        let is_ours = entry.get("manager").and_then(serde_json::Value::as_str) == Some(manager)
            && entry.get("operation").and_then(serde_json::Value::as_str) == Some("Apply")
            && entry.get("subresource").and_then(serde_json::Value::as_str).unwrap_or("").is_empty();
        let Some(fields) = entry.get("fieldsV1").filter(|fields| fields.is_object()) else { continue };
        if is_ours {
            match &mut owned {
                Some(owned) => merge_sets(owned, fields),
                None => owned = Some(fields.clone()),
            }
        }
    }
    owned.filter(|fields| fields.as_object().is_some_and(|set| !set.is_empty()))
}

/// Adds the set `other` to `set` (both `fieldsV1` trees).
fn merge_sets(set: &mut serde_json::Value, other: &serde_json::Value) {
    let (Some(set), Some(other)) = (set.as_object_mut(), other.as_object()) else { return };
    for (element, children) in other {
        match set.get_mut(element) {
            Some(existing) => merge_sets(existing, children),
            None => {
                set.insert(element.clone(), children.clone());
            }
        }
    }
}

/// The parts of `object` covered by `fields` (a `fieldsV1` set). A leaf (`{}`) takes the whole
/// value; list items chosen by `k:`, `v:` or `i:` come out in the object's order (so that
/// reordering our own items shows, while items others insert around them do not). A path the
/// object does not have is left out. Where the set expects an object or list and the value is
/// something else, the value is taken whole, so that the change shows in a digest.
pub fn project(object: &serde_json::Value, fields: &serde_json::Value) -> serde_json::Value {
    let Some(set) = fields.as_object() else { return object.clone() };
    let has_children = set.keys().any(|element| element != ".");
    if !has_children {
        return match object {
            // Only the node itself is in the set: an empty object or list says it is there.
            serde_json::Value::Object(_) if !set.is_empty() => serde_json::json!({}),
            serde_json::Value::Array(_) if !set.is_empty() => serde_json::json!([]),
            _ => object.clone(),
        };
    }
    match object {
        serde_json::Value::Object(members) => {
            let mut projected = serde_json::Map::new();
            for (element, children) in set {
                let Some(name) = element.strip_prefix("f:") else { continue };
                if let Some(value) = members.get(name) {
                    projected.insert(name.to_string(), project(value, children));
                }
            }
            serde_json::Value::Object(projected)
        }
        serde_json::Value::Array(items) => {
            let selectors: Vec<(ItemSelector, &serde_json::Value)> = set
                .iter()
                .filter_map(|(element, children)| ItemSelector::parse(element).map(|s| (s, children)))
                .collect();
            let projected = items
                .iter()
                .enumerate()
                .filter_map(|(index, item)| {
                    let (_, children) = selectors.iter().find(|(selector, _)| selector.selects(index, item))?;
                    Some(project(item, children))
                })
                .collect();
            serde_json::Value::Array(projected)
        }
        scalar => scalar.clone(),
    }
}

/// How a `fieldsV1` path element picks list items.
#[derive(Debug, PartialEq)]
enum ItemSelector {
    /// `k:{...}`: items (objects) whose fields named here have these values.
    Key(serde_json::Map<String, serde_json::Value>),
    /// `v:...`: items equal to this value.
    Value(serde_json::Value),
    /// `i:n`: the item at position n.
    Index(usize),
}

impl ItemSelector {
    /// `None` for `f:` and `.` elements and for malformed ones (which select nothing).
    fn parse(element: &str) -> Option<ItemSelector> {
        if let Some(key) = element.strip_prefix("k:") {
            serde_json::from_str(key).ok().map(ItemSelector::Key)
        } else if let Some(value) = element.strip_prefix("v:") {
            serde_json::from_str(value).ok().map(ItemSelector::Value)
        } else if let Some(index) = element.strip_prefix("i:") {
            index.parse().ok().map(ItemSelector::Index)
        } else {
            None
        }
    }

    fn selects(&self, index: usize, item: &serde_json::Value) -> bool {
        match self {
            ItemSelector::Key(key) => key.iter().all(|(field, value)| item.get(field) == Some(value)),
            ItemSelector::Value(value) => item == value,
            ItemSelector::Index(position) => index == *position,
        }
    }
}

/// The paths of the fields `manager` owns that differ between `before` (the live object, if
/// any) and `after` (the object as a write leaves it, such as a dry run's answer): both are
/// projected onto the union of what `manager` owned before and owns after, so that fields set
/// anew, changed and given up all show. Paths read like `ignore_fields` entries:
/// `data.value`, `metadata.annotations["example.com/x"]`, `spec.ports[0].port`. `ignored`
/// paths are left out. Only paths: no value of a field appears.
pub fn owned_changes(before: Option<&serde_json::Value>, after: &serde_json::Value, manager: &str, ignored: &[Vec<String>]) -> Vec<String> {
    let Some(before) = before else { return Vec::new() };
    let mut fields = owned_fields(after, manager).unwrap_or_else(|| serde_json::json!({}));
    if let Some(earlier) = owned_fields(before, manager) {
        merge_sets(&mut fields, &earlier);
    }
    let (mut old, mut new) = (project(before, &fields), project(after, &fields));
    for path in ignored {
        remove_path(&mut old, path);
        remove_path(&mut new, path);
    }
    let mut paths = Vec::new();
    diff_paths(&old, &new, &mut String::new(), &mut paths);
    paths
}

/// Appends to `out` the paths below `at` where `old` and `new` differ.
fn diff_paths(old: &serde_json::Value, new: &serde_json::Value, at: &mut String, out: &mut Vec<String>) {
    use serde_json::Value;
    if old == new {
        return;
    }
    let length = at.len();
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let names: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for name in names {
                let null = Value::Null;
                push_field(at, name);
                diff_paths(a.get(name).unwrap_or(&null), b.get(name).unwrap_or(&null), at, out);
                at.truncate(length);
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (index, (x, y)) in a.iter().zip(b).enumerate() {
                at.push_str(&format!("[{index}]"));
                diff_paths(x, y, at, out);
                at.truncate(length);
            }
        }
        _ => out.push(if at.is_empty() { ".".to_string() } else { at.clone() }),
    }
}

/// `at` extended by the field `name`: `.name`, or `["name"]` when it is not a plain word.
fn push_field(at: &mut String, name: &str) {
    let plain = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if plain {
        if !at.is_empty() {
            at.push('.');
        }
        at.push_str(name);
    } else {
        at.push_str(&format!("[{}]", serde_json::Value::String(name.to_string())));
    }
}

/// "sha256:" and the hex SHA-256 of `value` as canonical JSON: object keys sorted, no
/// whitespace. Sorted explicitly rather than relying on serde_json's map order, which
/// another crate in the build enabling `preserve_order` would change.
pub fn digest(value: &serde_json::Value) -> String {
    let mut canonical = String::new();
    write_canonical(value, &mut canonical);
    format!("sha256:{}", hex::encode(Sha256::digest(canonical.as_bytes())))
}

fn write_canonical(value: &serde_json::Value, out: &mut String) {
    match value {
        serde_json::Value::Object(members) => {
            let mut names: Vec<&String> = members.keys().collect();
            names.sort();
            out.push('{');
            for (position, name) in names.into_iter().enumerate() {
                if position > 0 {
                    out.push(',');
                }
                write_scalar(&serde_json::Value::String(name.clone()), out);
                out.push(':');
                if let Some(member) = members.get(name) {
                    write_canonical(member, out);
                }
            }
            out.push('}');
        }
        serde_json::Value::Array(items) => {
            out.push('[');
            for (position, item) in items.iter().enumerate() {
                if position > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => write_scalar(scalar, out),
    }
}

fn write_scalar(scalar: &serde_json::Value, out: &mut String) {
    // Serializing a string, number, boolean or null to a String cannot fail.
    out.push_str(&serde_json::to_string(scalar).unwrap_or_default());
}

/// The digest of what `manager` owns in `object` (by applying it): `None` when it owns nothing.
///
/// For a Secret the projection holds secret values, so its digest is keyed (see
/// [`keyed_digest`]) with the Secret's `metadata.uid`: whoever can read the uid can read
/// the Secret, and a digest kept in state is no plaintext fingerprint to test guesses on.
pub fn owned_digest(object: &serde_json::Value, manager: &str) -> Option<String> {
    owned_digest_except(object, manager, &[])
}

/// [`owned_digest`] without the fields at `ignored` (paths of mapping keys): fields applied
/// once and then left to other managers, whose changes are no drift.
pub fn owned_digest_except(object: &serde_json::Value, manager: &str, ignored: &[Vec<String>]) -> Option<String> {
    let mut projected = project(object, &owned_fields(object, manager)?);
    for path in ignored {
        remove_path(&mut projected, path);
    }
    Some(if is_secret(object) {
        // API server objects always have a uid; a bare manifest without one is keyed by "".
        let uid = object["metadata"]["uid"].as_str().unwrap_or_default();
        keyed_digest(&projected, &DigestKey::derive(uid.as_bytes(), SECRET_DIGEST_PURPOSE))
    } else {
        digest(&projected)
    })
}

/// Removes the field at `path` (keys of nested mappings) from `value`, if it is there.
pub fn remove_path(value: &mut serde_json::Value, path: &[String]) {
    let Some((last, parents)) = path.split_last() else { return };
    let mut node = value;
    for step in parents {
        match node.get_mut(step.as_str()) {
            Some(next) => node = next,
            None => return,
        }
    }
    if let Some(map) = node.as_object_mut() {
        map.remove(last.as_str());
    }
}

/// What keys derived from a Secret's uid are for (so the uid keys nothing else the same way).
const SECRET_DIGEST_PURPOSE: &str = "terraform-provider-platform: owned fields of a Secret";

fn is_secret(object: &serde_json::Value) -> bool {
    object["kind"].as_str() == Some("Secret") && object["apiVersion"].as_str() == Some("v1")
}

/// `hmac-sha256:` and the hex HMAC of `value` as canonical JSON (as in [`digest`]) under `key`.
pub fn keyed_digest(value: &serde_json::Value, key: &DigestKey) -> String {
    let mut canonical = String::new();
    write_canonical(value, &mut canonical);
    let mut fingerprint = key.fingerprint();
    fingerprint.update(canonical.as_bytes());
    fingerprint.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    const MANAGER: &str = "terraform-provider-platform";

    /// A Deployment as the API server returns it after our server-side apply, the
    /// controller's status update and the defaults it fills in.
    fn deployment() -> Value {
        serde_json::from_str(r#"{
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": "web",
                "namespace": "shop",
                "uid": "2f6c3e1a-8d1b-4a7e-9a51-0c7c54a1f0d2",
                "resourceVersion": "48213",
                "generation": 1,
                "creationTimestamp": "2025-03-02T10:15:31Z",
                "annotations": {"deployment.kubernetes.io/revision": "1"},
                "labels": {
                    "app": "web",
                    "app.kubernetes.io/managed-by": "terraform-provider-platform",
                    "platform.terraform.io/stack": "prod",
                    "platform.terraform.io/component": "shop"
                },
                "managedFields": [
                    {
                        "manager": "terraform-provider-platform",
                        "operation": "Apply",
                        "apiVersion": "apps/v1",
                        "time": "2025-03-02T10:15:31Z",
                        "fieldsType": "FieldsV1",
                        "fieldsV1": {
                            "f:metadata": {"f:labels": {
                                "f:app": {},
                                "f:app.kubernetes.io/managed-by": {},
                                "f:platform.terraform.io/component": {},
                                "f:platform.terraform.io/stack": {}
                            }},
                            "f:spec": {
                                "f:replicas": {},
                                "f:selector": {},
                                "f:template": {
                                    "f:metadata": {"f:labels": {"f:app": {}}},
                                    "f:spec": {"f:containers": {
                                        "k:{\"name\":\"web\"}": {
                                            ".": {},
                                            "f:args": {},
                                            "f:env": {
                                                "k:{\"name\":\"LOG_LEVEL\"}": {".": {}, "f:name": {}, "f:value": {}},
                                                "k:{\"name\":\"PORT\"}": {".": {}, "f:name": {}, "f:value": {}}
                                            },
                                            "f:image": {},
                                            "f:name": {},
                                            "f:ports": {
                                                "k:{\"containerPort\":8080,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}, "f:name": {}},
                                                "k:{\"containerPort\":9090,\"protocol\":\"UDP\"}": {".": {}, "f:containerPort": {}, "f:protocol": {}}
                                            },
                                            "f:resources": {"f:limits": {"f:memory": {}}}
                                        }
                                    }}
                                }
                            }
                        }
                    },
                    {
                        "manager": "kube-controller-manager",
                        "operation": "Update",
                        "apiVersion": "apps/v1",
                        "time": "2025-03-02T10:15:40Z",
                        "fieldsType": "FieldsV1",
                        "subresource": "status",
                        "fieldsV1": {
                            "f:metadata": {"f:annotations": {".": {}, "f:deployment.kubernetes.io/revision": {}}},
                            "f:status": {"f:availableReplicas": {}, "f:conditions": {".": {}, "k:{\"type\":\"Available\"}": {".": {}, "f:status": {}, "f:type": {}}}, "f:observedGeneration": {}, "f:readyReplicas": {}, "f:replicas": {}, "f:updatedReplicas": {}}
                        }
                    }
                ]
            },
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "web"}},
                "progressDeadlineSeconds": 600,
                "revisionHistoryLimit": 10,
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
                "template": {
                    "metadata": {"creationTimestamp": null, "labels": {"app": "web"}},
                    "spec": {
                        "containers": [{
                            "name": "web",
                            "image": "registry.example.com/web:1.4.2",
                            "args": ["--listen=:8080", "--verbose"],
                            "env": [{"name": "LOG_LEVEL", "value": "info"}, {"name": "PORT", "value": "8080"}],
                            "ports": [
                                {"name": "http", "containerPort": 8080, "protocol": "TCP"},
                                {"containerPort": 9090, "protocol": "UDP"}
                            ],
                            "resources": {"limits": {"memory": "256Mi"}},
                            "imagePullPolicy": "IfNotPresent",
                            "terminationMessagePath": "/dev/termination-log",
                            "terminationMessagePolicy": "File"
                        }],
                        "dnsPolicy": "ClusterFirst",
                        "restartPolicy": "Always",
                        "schedulerName": "default-scheduler",
                        "securityContext": {},
                        "terminationGracePeriodSeconds": 30
                    }
                }
            },
            "status": {
                "availableReplicas": 2,
                "conditions": [{"type": "Available", "status": "True"}],
                "observedGeneration": 1,
                "readyReplicas": 2,
                "replicas": 2,
                "updatedReplicas": 2
            }
        }"#)
        .unwrap()
    }

    fn managed_fields(object: &mut Value) -> &mut Vec<Value> {
        object["metadata"]["managedFields"].as_array_mut().unwrap()
    }

    /// Our entry's set, to edit as the API server would when ownership moves.
    fn our_set(object: &mut Value) -> &mut Value {
        &mut managed_fields(object)[0]["fieldsV1"]
    }

    fn container_set(object: &mut Value) -> &mut serde_json::Map<String, Value> {
        our_set(object)["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"web\"}"]
            .as_object_mut()
            .unwrap()
    }

    fn digest_of(object: &Value) -> String {
        owned_digest(object, MANAGER).unwrap()
    }

    #[test]
    fn owned_changes_name_the_paths_that_change_and_no_values() {
        let before = deployment();
        assert!(owned_changes(Some(&before), &before, MANAGER, &[]).is_empty(), "nothing changes");
        assert!(owned_changes(None, &before, MANAGER, &[]).is_empty(), "a new object lists no changes");

        let mut after = before.clone();
        after["spec"]["replicas"] = json!(3);
        after["spec"]["template"]["spec"]["containers"][0]["image"] = json!("registry.example.com/web:1.5.0");
        after["metadata"]["labels"]["platform.terraform.io/stack"] = json!("staging");
        // Fields others own change too, and do not count.
        after["status"]["replicas"] = json!(9);
        after["spec"]["revisionHistoryLimit"] = json!(3);
        let changes = owned_changes(Some(&before), &after, MANAGER, &[]);
        assert_eq!(
            changes,
            [
                "metadata.labels[\"platform.terraform.io/stack\"]",
                "spec.replicas",
                "spec.template.spec.containers[0].image",
            ]
        );
        assert!(!changes.iter().any(|c| c.contains("1.5.0") || c.contains("staging")), "no values: {changes:?}");

        // Ignored fields are left out.
        let ignored = vec![vec!["spec".to_string(), "replicas".to_string()]];
        assert_eq!(owned_changes(Some(&before), &after, MANAGER, &ignored).len(), 2);

        // A field we give up shows as well: we owned it before, the write leaves it out.
        let mut given_up = before.clone();
        given_up["spec"]["template"]["spec"]["containers"][0].as_object_mut().unwrap().remove("args");
        let set = &mut given_up["metadata"]["managedFields"][0]["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"];
        set["k:{\"name\":\"web\"}"].as_object_mut().unwrap().remove("f:args");
        assert_eq!(owned_changes(Some(&before), &given_up, MANAGER, &[]), ["spec.template.spec.containers[0].args"]);
    }

    #[test]
    fn projection_keeps_exactly_what_we_applied() {
        let object = deployment();
        let fields = owned_fields(&object, MANAGER).unwrap();
        assert_eq!(
            project(&object, &fields),
            json!({
                "metadata": {"labels": {
                    "app": "web",
                    "app.kubernetes.io/managed-by": "terraform-provider-platform",
                    "platform.terraform.io/stack": "prod",
                    "platform.terraform.io/component": "shop"
                }},
                "spec": {
                    "replicas": 2,
                    "selector": {"matchLabels": {"app": "web"}},
                    "template": {
                        "metadata": {"labels": {"app": "web"}},
                        "spec": {"containers": [{
                            "name": "web",
                            "image": "registry.example.com/web:1.4.2",
                            "args": ["--listen=:8080", "--verbose"],
                            "env": [{"name": "LOG_LEVEL", "value": "info"}, {"name": "PORT", "value": "8080"}],
                            "ports": [{"name": "http", "containerPort": 8080}, {"containerPort": 9090, "protocol": "UDP"}],
                            "resources": {"limits": {"memory": "256Mi"}}
                        }]}
                    }
                }
            })
        );
    }

    #[test]
    fn unchanged_object_same_digest() {
        assert_eq!(digest_of(&deployment()), digest_of(&deployment()));
        assert!(digest_of(&deployment()).starts_with("sha256:"));
    }

    #[test]
    fn what_others_own_and_defaults_do_not_count() {
        let before = digest_of(&deployment());
        let mut object = deployment();
        // Status, bookkeeping, defaults and a controller's annotation change...
        object["status"]["readyReplicas"] = json!(1);
        object["metadata"]["resourceVersion"] = json!("99999");
        object["metadata"]["generation"] = json!(7);
        object["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = json!("3");
        object["spec"]["revisionHistoryLimit"] = json!(3);
        object["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] = json!("Always");
        // ...a label another tool adds...
        object["metadata"]["labels"]["team"] = json!("payments");
        // ...and a sidecar and an env var injected by a webhook, before and between ours.
        object["spec"]["template"]["spec"]["containers"]
            .as_array_mut()
            .unwrap()
            .insert(0, json!({"name": "proxy", "image": "envoy"}));
        object["spec"]["template"]["spec"]["containers"][1]["env"]
            .as_array_mut()
            .unwrap()
            .insert(1, json!({"name": "INJECTED", "value": "1"}));
        managed_fields(&mut object).push(json!({
            "manager": "sidecar-injector", "operation": "Update", "apiVersion": "apps/v1", "fieldsType": "FieldsV1",
            "fieldsV1": {"f:metadata": {"f:labels": {"f:team": {}}}, "f:spec": {"f:template": {"f:spec": {"f:containers": {"k:{\"name\":\"proxy\"}": {".": {}, "f:image": {}, "f:name": {}}}}}}}
        }));
        assert_eq!(digest_of(&object), before);
    }

    #[test]
    fn a_field_taken_over_by_another_manager_changes_the_digest() {
        let before = digest_of(&deployment());
        // `kubectl edit` changes the image: the server moves f:image to kubectl-edit's set.
        let mut object = deployment();
        object["spec"]["template"]["spec"]["containers"][0]["image"] = json!("registry.example.com/web:1.5.0");
        container_set(&mut object).remove("f:image");
        managed_fields(&mut object).push(json!({
            "manager": "kubectl-edit", "operation": "Update", "apiVersion": "apps/v1", "fieldsType": "FieldsV1",
            "fieldsV1": {"f:spec": {"f:template": {"f:spec": {"f:containers": {"k:{\"name\":\"web\"}": {"f:image": {}}}}}}}
        }));
        assert_ne!(digest_of(&object), before);

        // An autoscaler takes over replicas.
        let mut object = deployment();
        object["spec"]["replicas"] = json!(5);
        our_set(&mut object)["f:spec"].as_object_mut().unwrap().remove("f:replicas");
        assert_ne!(digest_of(&object), before);

        // Someone removes one of our env vars (and with it our ownership of it).
        let mut object = deployment();
        object["spec"]["template"]["spec"]["containers"][0]["env"].as_array_mut().unwrap().remove(1);
        container_set(&mut object)["f:env"].as_object_mut().unwrap().remove("k:{\"name\":\"PORT\"}");
        assert_ne!(digest_of(&object), before);
    }

    #[test]
    fn a_value_changed_under_our_ownership_changes_the_digest() {
        // Not how the server records a change by someone else, but a projection must follow
        // the values: a label value changed while the set still lists it.
        let before = digest_of(&deployment());
        let mut object = deployment();
        object["metadata"]["labels"]["app"] = json!("other");
        assert_ne!(digest_of(&object), before);
        let mut object = deployment();
        object["spec"]["template"]["spec"]["containers"][0]["args"][1] = json!("--quiet");
        assert_ne!(digest_of(&object), before);
    }

    #[test]
    fn shared_ownership_with_the_same_value_is_not_drift() {
        // Another applier sets the same replicas: both own it, the value is ours.
        let before = digest_of(&deployment());
        let mut object = deployment();
        managed_fields(&mut object).push(json!({
            "manager": "other-applier", "operation": "Apply", "apiVersion": "apps/v1", "fieldsType": "FieldsV1",
            "fieldsV1": {"f:spec": {"f:replicas": {}}}
        }));
        assert_eq!(digest_of(&object), before);
    }

    #[test]
    fn reordering_our_own_items_is_drift() {
        let before = digest_of(&deployment());
        let mut object = deployment();
        object["spec"]["template"]["spec"]["containers"][0]["env"].as_array_mut().unwrap().swap(0, 1);
        assert_ne!(digest_of(&object), before);
    }

    #[test]
    fn only_our_apply_entries_count() {
        let object = deployment();
        assert_eq!(owned_fields(&object, "kube-controller-manager"), None, "an Update entry is not owned by applying");
        assert_eq!(owned_fields(&object, "nobody"), None);
        assert_eq!(owned_digest(&object, "nobody"), None);
        assert_eq!(owned_fields(&json!({"metadata": {}}), MANAGER), None);
        assert_eq!(owned_fields(&json!({}), MANAGER), None);
        assert_eq!(owned_fields(&json!("text"), MANAGER), None);
        let mut object = deployment();
        our_set(&mut object).as_object_mut().unwrap().clear();
        assert_eq!(owned_fields(&object, MANAGER), None, "an empty set owns nothing");
    }

    #[test]
    fn subresource_entries_are_left_out() {
        let mut object = deployment();
        managed_fields(&mut object).push(json!({
            "manager": MANAGER, "operation": "Apply", "apiVersion": "apps/v1", "fieldsType": "FieldsV1",
            "subresource": "status", "fieldsV1": {"f:status": {"f:replicas": {}}}
        }));
        assert!(owned_fields(&object, MANAGER).unwrap().get("f:status").is_none());
    }

    #[test]
    fn entries_of_one_manager_are_united() {
        let object = json!({
            "metadata": {"managedFields": [
                {"manager": "m", "operation": "Apply", "fieldsV1": {"f:spec": {"f:a": {}, "f:list": {"k:{\"id\":1}": {".": {}, "f:id": {}}}}}},
                {"manager": "m", "operation": "Apply", "fieldsV1": {"f:spec": {"f:b": {}, "f:list": {"k:{\"id\":2}": {".": {}, "f:id": {}}}}}},
                {"manager": "m", "operation": "Apply", "fieldsV1": "not a set"},
                {"manager": "m", "operation": "Apply"}
            ]},
            "spec": {"a": 1, "b": 2, "c": 3, "list": [{"id": 2, "x": 1}, {"id": 3}, {"id": 1}]}
        });
        let fields = owned_fields(&object, "m").unwrap();
        assert_eq!(project(&object, &fields), json!({"spec": {"a": 1, "b": 2, "list": [{"id": 2}, {"id": 1}]}}));
    }

    #[test]
    fn set_and_index_elements() {
        let object = json!({
            "metadata": {"finalizers": ["ours.example.com/cleanup", "theirs.example.com/keep"]},
            "spec": {"ports": [80, 443, 8443], "pairs": [[1, 2], [3, 4]], "rules": [{"a": 1, "b": 2}, {"a": 3}]}
        });
        let fields = json!({
            "f:metadata": {"f:finalizers": {".": {}, "v:\"ours.example.com/cleanup\"": {}}},
            "f:spec": {
                "f:ports": {"v:443": {}, "v:8443": {}},
                "f:pairs": {"v:[3,4]": {}},
                "f:rules": {"i:0": {"f:a": {}}, "i:5": {}}
            }
        });
        assert_eq!(
            project(&object, &fields),
            json!({
                "metadata": {"finalizers": ["ours.example.com/cleanup"]},
                "spec": {"ports": [443, 8443], "pairs": [[3, 4]], "rules": [{"a": 1}]}
            })
        );
    }

    #[test]
    fn leaves_take_whole_values() {
        let object = json!({"spec": {"selector": {"matchLabels": {"a": "b"}}, "args": ["x", "y"], "n": null}});
        let fields = json!({"f:spec": {"f:selector": {}, "f:args": {}, "f:n": {}}});
        assert_eq!(project(&object, &fields), object);
    }

    #[test]
    fn node_only_members_give_empty_containers() {
        let object = json!({"spec": {"securityContext": {"runAsUser": 1000}, "items": [1]}});
        let fields = json!({"f:spec": {"f:securityContext": {".": {}}, "f:items": {".": {}}}});
        assert_eq!(project(&object, &fields), json!({"spec": {"securityContext": {}, "items": []}}));
    }

    #[test]
    fn paths_the_object_lacks_are_left_out() {
        let object = json!({"spec": {"a": 1}});
        let fields = json!({"f:spec": {"f:a": {}, "f:gone": {}, "f:nested": {"f:x": {}}}, "f:status": {}});
        assert_eq!(project(&object, &fields), json!({"spec": {"a": 1}}));
    }

    #[test]
    fn type_changes_show() {
        // The set expects an object under spec.template, the object has a scalar there.
        let fields = json!({"f:spec": {"f:template": {"f:metadata": {}}, "f:list": {"k:{\"a\":1}": {}}}});
        let object = json!({"spec": {"template": "oops", "list": 7}});
        assert_eq!(project(&object, &fields), json!({"spec": {"template": "oops", "list": 7}}));
        let fine = json!({"spec": {"template": {"metadata": {}}, "list": [{"a": 1}]}});
        assert_ne!(digest(&project(&object, &fields)), digest(&project(&fine, &fields)));
    }

    #[test]
    fn malformed_sets_never_panic_and_select_nothing() {
        let object = json!({"spec": {"list": [{"a": 1}, 2, "x"], "m": {"f": 1}}});
        let fields = json!({"f:spec": {
            "f:list": {"k:{not json": {}, "k:[1]": {}, "v:": {}, "i:-1": {}, "i:x": {}, "f:wrong": {}, "bogus": {}},
            "f:m": {"k:{\"a\":1}": {}, "v:1": {}, "garbage": {}}
        }});
        assert_eq!(project(&object, &fields), json!({"spec": {"list": [], "m": {}}}));
        assert_eq!(project(&object, &json!("not a set")), object);
        assert_eq!(project(&object, &json!({})), object);
    }

    #[test]
    fn keys_match_on_all_key_fields_with_their_types() {
        let object = json!({"ports": [
            {"containerPort": 80, "protocol": "TCP", "name": "a"},
            {"containerPort": 80, "protocol": "UDP", "name": "b"},
            {"containerPort": "80", "protocol": "TCP", "name": "c"}
        ]});
        let fields = json!({"f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {"f:name": {}}}});
        assert_eq!(project(&object, &fields), json!({"ports": [{"name": "a"}]}));
    }

    #[test]
    fn digest_is_canonical_json_sha256() {
        assert_eq!(digest(&json!({})), "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a");
        // sha256 of {"a":[true,null,"x",1.5,-3],"b":{"c":"é\n"}} (the \n as JSON escapes it).
        let value = json!({"b": {"c": "é\n"}, "a": [true, null, "x", 1.5, -3]});
        assert_eq!(digest(&value), "sha256:b0a015f41882ac371adf3a6d19b7d52103d48d5672ea73526a317c9b032da359");
    }

    /// A Secret as the API server returns it after our apply of `data.password`.
    fn secret(uid: &str, password: &str) -> Value {
        json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "db", "namespace": "apps", "uid": uid, "managedFields": [
                {"manager": MANAGER, "operation": "Apply", "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:password": {}}}}
            ]},
            "data": {"password": base64(password)},
            "type": "Opaque"
        })
    }

    fn base64(text: &str) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(text)
    }

    #[test]
    fn secret_digests_are_keyed_by_uid_and_never_a_plain_hash_of_the_values() {
        let a = owned_digest(&secret("uid-a", "hunter2"), MANAGER).unwrap();
        let b = owned_digest(&secret("uid-b", "hunter2"), MANAGER).unwrap();
        assert!(a.starts_with("hmac-sha256:"), "{a}");
        assert_ne!(a, b, "the same value under different keys must differ");
        assert_eq!(a, owned_digest(&secret("uid-a", "hunter2"), MANAGER).unwrap());
        assert_ne!(a, owned_digest(&secret("uid-a", "hunter3"), MANAGER).unwrap(), "a changed value must show");
        // No unkeyed SHA-256 of the projection, which anyone could recompute from a guess.
        let projected = json!({"data": {"password": base64("hunter2")}});
        assert_ne!(a.trim_start_matches("hmac-sha256:"), digest(&projected).trim_start_matches("sha256:"));
        // Other kinds keep plain digests, comparable across objects.
        let mut config_map = secret("uid-a", "hunter2");
        config_map["kind"] = json!("ConfigMap");
        assert!(owned_digest(&config_map, MANAGER).unwrap().starts_with("sha256:"));
    }

    #[test]
    fn digest_ignores_key_order_but_not_list_order_or_types() {
        let a: Value = serde_json::from_str(r#"{"x": 1, "y": {"p": true, "q": [1, 2]}}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"y": {"q": [1, 2], "p": true}, "x": 1}"#).unwrap();
        assert_eq!(digest(&a), digest(&b));
        assert_ne!(digest(&a), digest(&json!({"x": 1, "y": {"p": true, "q": [2, 1]}})));
        assert_ne!(digest(&a), digest(&json!({"x": "1", "y": {"p": true, "q": [1, 2]}})));
        assert_ne!(digest(&json!(null)), digest(&json!({})));
    }
}
