//! Ownership of the single object a resource manages (`platform_namespace`,
//! `platform_secret`, `platform_sealed_secret`): the attributes that record it and the rules
//! that decide, from the live object, what create, update and destroy may do.
//!
//! The model is Helm's and kubectl ApplySet's: an object belongs to the resource instance
//! whose id its [`OWNER_ANNOTATION`] carries. An object that exists already is taken over
//! only when the configuration says `adopt = true`; an adopted (or imported) object is
//! released on destroy, not deleted, unless `on_destroy = "delete"`; an object we created is
//! deleted only while it still carries our id.
//!
//! Pure rules: the resources fetch the live object and act on the verdicts.

use crate::clients::kube::ownership::{describe_managers, is_kept, owner, standing, Standing, OWNER_ANNOTATION};
use crate::framework::diagnostics::{AttributePath, Diagnostic, Diagnostics};
use crate::framework::schema::Attribute;
use crate::framework::value::Value;

/// What the ownership attributes say about one instance, read from its state or plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ownership {
    /// This instance's id; `None` in state written before ids existed (such objects were
    /// created by us: ours to delete, and stamped at the next apply).
    pub owner_id: Option<String>,
    /// Whether the object existed before this instance took it over (adoption, import).
    pub adopted: bool,
    pub on_destroy: Option<OnDestroy>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnDestroy {
    Delete,
    Release,
}

impl OnDestroy {
    pub fn parse(text: &str) -> Option<OnDestroy> {
        match text {
            "delete" => Some(OnDestroy::Delete),
            "release" => Some(OnDestroy::Release),
            _ => None,
        }
    }
}

impl Ownership {
    pub fn of(state: &Value) -> Ownership {
        Ownership {
            owner_id: state.get_attr("owner_id").and_then(Value::as_str).map(str::to_string),
            adopted: state.get_attr("adopted").and_then(Value::as_bool).unwrap_or(false),
            on_destroy: state.get_attr("on_destroy").and_then(Value::as_str).and_then(OnDestroy::parse),
        }
    }
}

/// `owner_id`, `adopt`, `adopted` and `on_destroy`, described for `what` ("namespace", "Secret").
pub fn attributes(what: &str) -> Vec<Attribute> {
    vec![
        Attribute::string("owner_id").computed().keep_on_update().describe(&format!(
            "Random id of this resource instance, made when it is created and written to the {what} as the \
             `{OWNER_ANNOTATION}` annotation. Destroy deletes the {what} only while it still carries this id."
        )),
        Attribute::bool("adopt").optional().describe(&format!(
            "Take over the {what} if it already exists. Without it, creating a {what} that exists fails and names \
             it and its current field managers. An adopted {what} is released on destroy (our annotation and field \
             ownership removed, the {what} left in place) unless `on_destroy = \"delete\"`."
        )),
        Attribute::bool("adopted").computed().keep_on_update().describe(&format!(
            "Whether the {what} existed before this resource took it over (by `adopt` or import). Known at plan \
             time when `adopt` is set and the cluster can be reached."
        )),
        Attribute::string("on_destroy").optional().describe(&format!(
            "What destroy does to the {what}: `delete` or `release` (remove our annotation and field ownership, \
             leave the {what}). Defaults to `delete` for a {what} this resource created and `release` for an \
             adopted or imported one."
        )),
    ]
}

/// Plan-time checks of `on_destroy`.
pub fn validate(config: &Value, diags: &mut Diagnostics) {
    if let Some(text) = config.get_attr("on_destroy").and_then(Value::as_str) {
        if OnDestroy::parse(text).is_none() {
            diags.error_at(
                AttributePath::root("on_destroy"),
                "Invalid on_destroy",
                format!("on_destroy must be \"delete\" or \"release\", not {text:?}."),
            );
        }
    }
}

/// Whether the configuration asks for adoption: `Some(true)`, `Some(false)`, or `None` while unknown.
pub fn adopt_requested(config: &Value) -> Option<bool> {
    match config.get_attr("adopt") {
        Some(Value::Unknown) => None,
        Some(value) => Some(value.as_bool().unwrap_or(false)),
        None => Some(false),
    }
}

/// `adopted` in a create plan. Without `adopt` nothing is ever adopted: false. With it,
/// `live` is what a plan-time read found (`Err` when the cluster could not be asked):
/// absent is false; present without an owner is true; present with an owner is unknown,
/// since it may be the very object this plan replaces (deleted before the create).
pub fn planned_adopted(adopt: Option<bool>, live: Result<Option<&serde_json::Value>, ()>) -> Value {
    match (adopt, live) {
        (Some(false), _) => Value::Bool(false),
        (None, _) | (_, Err(())) => Value::Unknown,
        (Some(true), Ok(None)) => Value::Bool(false),
        (Some(true), Ok(Some(object))) if owner(object).is_none() => Value::Bool(true),
        (Some(true), Ok(Some(_))) => Value::Unknown,
    }
}

/// What create does about what it found under the name.
#[derive(Debug, PartialEq)]
pub enum Creating {
    /// Nothing there (or, after a create whose outcome was unknown, our own object): create it.
    Create,
    /// Take the existing object over.
    Adopt,
}

/// The rule for create. `describe` names the object (`Namespace "apps"`); `import_id` is
/// what `terraform import` takes for it; `planned_adopted` is the plan's `adopted`.
/// Warnings (a planned adoption of an object that has since gone, a takeover from another
/// instance) go to `diags`.
pub fn creating(
    describe: &str,
    import_id: &str,
    live: Option<&serde_json::Value>,
    id: &str,
    adopt: bool,
    planned_adopted: Option<bool>,
    diags: &mut Diagnostics,
) -> Result<Creating, Diagnostic> {
    let Some(live) = live else {
        if planned_adopted == Some(true) {
            diags.warning(
                format!("{describe} was created, not adopted"),
                format!(
                    "The plan adopted the existing {describe}, but it was gone at apply time, so it was created. It is \
                     still recorded as adopted (as planned): destroy will leave it in place unless on_destroy = \"delete\"."
                ),
            );
        }
        return Ok(Creating::Create);
    };
    let standing = standing(live, id);
    if standing == Standing::Ours {
        return Ok(Creating::Create);
    }
    if !adopt {
        let other = match &standing {
            Standing::OtherInstance(other) => {
                format!(" It is managed by another Terraform resource instance (owner id {other}).")
            }
            _ => String::new(),
        };
        return Err(Diagnostic::error(
            format!("{describe} already exists"),
            format!(
                "{describe} already exists in the cluster ({}).{other} Terraform did not create it, so it will not \
                 take it over silently.\n\nTo manage it with this resource, set adopt = true (destroy then releases \
                 it instead of deleting it, unless on_destroy = \"delete\"), or import it:\n  terraform import <address> {import_id}",
                describe_managers(live)
            ),
        ));
    }
    if planned_adopted == Some(false) {
        return Err(Diagnostic::error(
            format!("{describe} appeared after the plan"),
            format!(
                "{describe} did not exist when the plan was made, but exists now ({}). Run plan again to adopt it.",
                describe_managers(live)
            ),
        ));
    }
    if let Standing::OtherInstance(other) = standing {
        diags.warning(
            format!("{describe} taken over from another resource instance"),
            format!(
                "{describe} carried the owner id {other} of another Terraform resource instance; adopt = true made \
                 it this one's. If that instance still exists, remove it from its state (terraform state rm) so that \
                 the two do not fight over it."
            ),
        );
    }
    Ok(Creating::Adopt)
}

/// Update refuses an object that another instance has taken over since.
pub fn updating(describe: &str, live: Option<&serde_json::Value>, ownership: &Ownership) -> Result<(), Diagnostic> {
    let (Some(live), Some(id)) = (live, ownership.owner_id.as_deref()) else { return Ok(()) };
    match standing(live, id) {
        Standing::OtherInstance(other) => Err(taken_over(describe, &other, "not changing it")),
        _ => Ok(()),
    }
}

fn taken_over(describe: &str, other: &str, consequence: &str) -> Diagnostic {
    Diagnostic::error(
        format!("{describe} belongs to another resource instance"),
        format!(
            "{describe} now carries the owner id {other} of another Terraform resource instance (it was adopted \
             there), so this one is {consequence}. Remove it from this state with terraform state rm <address>."
        ),
    )
}

/// What destroy does to the live object.
#[derive(Debug, PartialEq)]
pub enum Destroying {
    Delete,
    /// Remove our annotation and field ownership; the object stays.
    Release,
    /// Leave it untouched; the warning says why.
    Leave(Diagnostic),
    Refuse(Diagnostic),
}

/// The rule for destroy, given the live object (a gone object needs no rule).
pub fn destroying(describe: &str, ownership: &Ownership, live: &serde_json::Value) -> Destroying {
    let default = if ownership.adopted { OnDestroy::Release } else { OnDestroy::Delete };
    let mode = ownership.on_destroy.unwrap_or(default);
    let standing = match &ownership.owner_id {
        Some(id) => standing(live, id),
        // State from before owner ids: the object was created by us and never stamped.
        None => match owner(live) {
            Some(other) => Standing::OtherInstance(other.to_string()),
            None => Standing::Ours,
        },
    };
    if let Standing::OtherInstance(other) = &standing {
        return match mode {
            OnDestroy::Release => Destroying::Leave(Diagnostic::warning(
                format!("{describe} left to another resource instance"),
                format!(
                    "{describe} now carries the owner id {other} of another Terraform resource instance; it was left \
                     as it is and only removed from this state."
                ),
            )),
            OnDestroy::Delete => Destroying::Refuse(taken_over(describe, other, "not deleting it")),
        };
    }
    if mode == OnDestroy::Release {
        return Destroying::Release;
    }
    if is_kept(live) {
        return Destroying::Leave(Diagnostic::warning(
            format!("{describe} kept"),
            format!(
                "{describe} is annotated to be kept (helm.sh/resource-policy: keep or platform.terraform.io/keep: \
                 \"true\"), so destroy left it in place and only removed it from the state."
            ),
        ));
    }
    // Our own id, or an adopted object with no owner: the user asked for deletion.
    if standing == Standing::Ours || ownership.adopted || ownership.on_destroy == Some(OnDestroy::Delete) {
        return Destroying::Delete;
    }
    Destroying::Refuse(Diagnostic::error(
        format!("{describe} no longer carries this resource's owner id"),
        format!(
            "{describe} was created by this resource, but its {OWNER_ANNOTATION} annotation ({}) was removed or \
             changed outside Terraform ({}), so it may no longer be this resource's to delete. It was not deleted.\n\n\
             To delete it anyway, set on_destroy = \"delete\" and apply before destroying; to leave it, set \
             on_destroy = \"release\", or remove it from the state with terraform state rm <address>.",
            ownership.owner_id.as_deref().unwrap_or_default(),
            describe_managers(live)
        ),
    ))
}

/// The computed ownership attributes of a plan: `adopted` and `owner_id` on create,
/// and for state written before owner ids existed, a new id (stamped by the update this
/// makes) and `adopted = false` (such objects were created by us).
pub fn plan(prior: &Value, planned: &mut Value, planned_adopted: impl FnOnce() -> Value) {
    if prior.is_null() {
        planned.set_attr("owner_id", Value::Unknown);
        planned.set_attr("adopted", planned_adopted());
        return;
    }
    if prior.get_attr("owner_id").is_none_or(Value::is_null) {
        planned.set_attr("owner_id", Value::Unknown);
    }
    if prior.get_attr("adopted").is_none_or(Value::is_null) {
        planned.set_attr("adopted", Value::Bool(false));
    }
}

/// The owner id an apply writes: the planned one, or a new one when the plan leaves it unknown.
pub fn id_to_write(planned: &Value) -> String {
    planned
        .get_attr("owner_id")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(crate::clients::kube::ownership::new_instance_id)
}

/// `annotations` with our owner annotation added, for the object an apply writes.
pub fn stamp(metadata: &mut serde_json::Value, id: &str) {
    if !metadata["annotations"].is_object() {
        metadata["annotations"] = serde_json::json!({});
    }
    metadata["annotations"][OWNER_ANNOTATION] = serde_json::Value::String(id.to_string());
}

/// The owner id an import records: the one the object carries, if any (so that importing
/// an object after losing its state, or moving it between states, keeps it ours), else a
/// new one, written at the next apply. Taking over a carried id is said in a warning.
pub fn imported_id(describe: &str, live: &serde_json::Value, diags: &mut Diagnostics) -> String {
    let Some(carried) = owner(live) else { return crate::clients::kube::ownership::new_instance_id() };
    diags.warning(
        format!("{describe} carries an owner id"),
        format!(
            "{describe} carries the owner id {carried} of a Terraform resource instance; the import takes it over. If \
             another configuration still manages it, remove it from one of the two states (terraform state rm) so \
             that they do not both manage it. Imported objects are released, not deleted, on destroy."
        ),
    );
    carried.to_string()
}

/// Records in `state` who owns the object after an apply.
pub fn record(state: &mut Value, id: &str, adopted: bool) {
    state.set_attr("owner_id", Value::string(id));
    state.set_attr("adopted", Value::Bool(adopted));
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const ID: &str = "11111111-1111-4111-8111-111111111111";
    const OTHER: &str = "22222222-2222-4222-8222-222222222222";

    fn object(owner: Option<&str>, extra_annotations: serde_json::Value) -> serde_json::Value {
        let mut annotations = extra_annotations;
        if let Some(owner) = owner {
            annotations[OWNER_ANNOTATION] = json!(owner);
        }
        json!({"metadata": {"name": "x", "annotations": annotations,
            "managedFields": [{"manager": "kubectl-create", "operation": "Update"}]}})
    }

    fn ownership(owner_id: Option<&str>, adopted: bool, on_destroy: Option<OnDestroy>) -> Ownership {
        Ownership { owner_id: owner_id.map(str::to_string), adopted, on_destroy }
    }

    #[test]
    fn create_refuses_an_existing_object_naming_it_and_its_managers() {
        let mut diags = Diagnostics::new();
        let live = object(None, json!({}));
        let err = creating("Namespace \"apps\"", "apps", Some(&live), ID, false, Some(false), &mut diags).unwrap_err();
        assert_eq!(err.summary, "Namespace \"apps\" already exists");
        assert!(err.detail.contains("field managers: kubectl-create (Update)"), "{}", err.detail);
        assert!(err.detail.contains("adopt = true") && err.detail.contains("terraform import <address> apps"), "{}", err.detail);

        let theirs = object(Some(OTHER), json!({}));
        let err = creating("Secret \"a/b\"", "a/b", Some(&theirs), ID, false, Some(false), &mut diags).unwrap_err();
        assert!(err.detail.contains(OTHER), "{}", err.detail);
        assert!(diags.is_empty());
    }

    #[test]
    fn create_adopts_when_asked_and_goes_on_with_its_own_object() {
        let mut diags = Diagnostics::new();
        let live = object(None, json!({}));
        assert_eq!(creating("S", "i", Some(&live), ID, true, Some(true), &mut diags), Ok(Creating::Adopt));
        assert_eq!(creating("S", "i", Some(&live), ID, true, None, &mut diags), Ok(Creating::Adopt));
        assert!(diags.is_empty());
        // An earlier attempt of this very create wrote the object: no "already exists".
        let ours = object(Some(ID), json!({}));
        assert_eq!(creating("S", "i", Some(&ours), ID, false, Some(false), &mut diags), Ok(Creating::Create));
        assert_eq!(creating("S", "i", None, ID, false, Some(false), &mut diags), Ok(Creating::Create));
        assert!(diags.is_empty());
        // Taking over another instance's object says so.
        let theirs = object(Some(OTHER), json!({}));
        assert_eq!(creating("S", "i", Some(&theirs), ID, true, None, &mut diags), Ok(Creating::Adopt));
        assert!(diags.iter().any(|d| d.detail.contains(OTHER)));
    }

    #[test]
    fn create_keeps_to_the_plan() {
        let mut diags = Diagnostics::new();
        let live = object(None, json!({}));
        let err = creating("S", "i", Some(&live), ID, true, Some(false), &mut diags).unwrap_err();
        assert!(err.summary.contains("appeared after the plan"), "{}", err.summary);
        assert_eq!(creating("S", "i", None, ID, true, Some(true), &mut diags), Ok(Creating::Create));
        assert!(diags.iter().any(|d| d.summary.contains("created, not adopted")));
    }

    #[test]
    fn plan_shows_adoption_only_when_it_is_certain() {
        let foreign = object(None, json!({}));
        let owned = object(Some(OTHER), json!({}));
        assert_eq!(planned_adopted(Some(false), Err(())), Value::Bool(false));
        assert_eq!(planned_adopted(Some(true), Ok(None)), Value::Bool(false));
        assert_eq!(planned_adopted(Some(true), Ok(Some(&foreign))), Value::Bool(true));
        assert_eq!(planned_adopted(Some(true), Ok(Some(&owned))), Value::Unknown);
        assert_eq!(planned_adopted(Some(true), Err(())), Value::Unknown);
        assert_eq!(planned_adopted(None, Ok(None)), Value::Unknown);
    }

    #[test]
    fn destroy_deletes_only_our_own_objects() {
        let ours = object(Some(ID), json!({}));
        let unmarked = object(None, json!({}));
        let theirs = object(Some(OTHER), json!({}));
        let created = ownership(Some(ID), false, None);
        assert_eq!(destroying("S", &created, &ours), Destroying::Delete);
        let Destroying::Refuse(d) = destroying("S", &created, &unmarked) else { panic!("deleted an unmarked object") };
        assert!(d.detail.contains("on_destroy = \"delete\""), "{}", d.detail);
        let Destroying::Refuse(d) = destroying("S", &created, &theirs) else { panic!("deleted another's object") };
        assert!(d.detail.contains(OTHER), "{}", d.detail);
        // Explicit deletion of an unmarked object, but never of another instance's.
        let explicit = ownership(Some(ID), false, Some(OnDestroy::Delete));
        assert_eq!(destroying("S", &explicit, &unmarked), Destroying::Delete);
        assert!(matches!(destroying("S", &explicit, &theirs), Destroying::Refuse(_)));
        // Created but to be released.
        assert_eq!(destroying("S", &ownership(Some(ID), false, Some(OnDestroy::Release)), &ours), Destroying::Release);
    }

    #[test]
    fn destroy_releases_adopted_objects_unless_told_to_delete() {
        let unmarked = object(None, json!({}));
        let ours = object(Some(ID), json!({}));
        let theirs = object(Some(OTHER), json!({}));
        let adopted = ownership(Some(ID), true, None);
        assert_eq!(destroying("S", &adopted, &ours), Destroying::Release);
        assert_eq!(destroying("S", &adopted, &unmarked), Destroying::Release);
        assert!(matches!(destroying("S", &adopted, &theirs), Destroying::Leave(_)));
        let delete = ownership(Some(ID), true, Some(OnDestroy::Delete));
        assert_eq!(destroying("S", &delete, &ours), Destroying::Delete);
        assert_eq!(destroying("S", &delete, &unmarked), Destroying::Delete);
        assert!(matches!(destroying("S", &delete, &theirs), Destroying::Refuse(_)));
    }

    #[test]
    fn destroy_of_state_from_before_owner_ids_deletes_unmarked_objects_only() {
        let legacy = ownership(None, false, None);
        assert_eq!(destroying("S", &legacy, &object(None, json!({}))), Destroying::Delete);
        assert!(matches!(destroying("S", &legacy, &object(Some(OTHER), json!({}))), Destroying::Refuse(_)));
    }

    #[test]
    fn kept_objects_are_left_in_place() {
        let kept = object(Some(ID), json!({"helm.sh/resource-policy": "keep"}));
        assert!(matches!(destroying("S", &ownership(Some(ID), false, None), &kept), Destroying::Leave(_)));
    }

    #[test]
    fn update_refuses_an_object_another_instance_took_over() {
        let created = ownership(Some(ID), false, None);
        assert!(updating("S", Some(&object(Some(OTHER), json!({}))), &created).is_err());
        assert!(updating("S", Some(&object(None, json!({}))), &created).is_ok());
        assert!(updating("S", Some(&object(Some(ID), json!({}))), &created).is_ok());
        assert!(updating("S", None, &created).is_ok());
    }

    #[test]
    fn plans_stamp_state_from_before_owner_ids() {
        let mut planned = Value::object([("owner_id", Value::Null), ("adopted", Value::Null), ("name", Value::string("a"))]);
        let prior = planned.clone();
        plan(&prior, &mut planned, || unreachable!("no plan-time read on update"));
        assert_eq!(planned.get_attr("owner_id"), Some(&Value::Unknown));
        assert_eq!(planned.get_attr("adopted"), Some(&Value::Bool(false)));

        let prior = Value::object([("owner_id", Value::string(ID)), ("adopted", Value::Bool(true)), ("name", Value::string("a"))]);
        let mut planned = prior.clone();
        plan(&prior, &mut planned, || unreachable!());
        assert_eq!(planned, prior, "a current state plans no ownership change");

        let mut planned = prior.clone();
        plan(&Value::Null, &mut planned, || Value::Bool(true));
        assert_eq!(planned.get_attr("owner_id"), Some(&Value::Unknown));
        assert_eq!(planned.get_attr("adopted"), Some(&Value::Bool(true)));
    }

    #[test]
    fn on_destroy_is_checked_at_plan() {
        let mut diags = Diagnostics::new();
        validate(&Value::object([("on_destroy", Value::string("orphan"))]), &mut diags);
        let d = diags.iter().next().expect("a diagnostic");
        assert!(d.detail.contains("\"orphan\"") && d.summary.contains("on_destroy"), "{d:?}");
        let mut diags = Diagnostics::new();
        validate(&Value::object([("on_destroy", Value::string("release"))]), &mut diags);
        validate(&Value::object([("on_destroy", Value::Unknown)]), &mut diags);
        assert!(diags.is_empty());
    }

    #[test]
    fn import_keeps_the_id_an_object_carries() {
        let mut diags = Diagnostics::new();
        assert_eq!(imported_id("S", &object(Some(OTHER), json!({})), &mut diags), OTHER);
        assert!(diags.iter().any(|d| d.detail.contains(OTHER)), "taking over an id is not said");
        let mut diags = Diagnostics::new();
        let fresh = imported_id("S", &object(None, json!({})), &mut diags);
        assert!(crate::clients::kube::ownership::is_instance_id(&fresh), "{fresh}");
        assert!(diags.is_empty());
    }

    #[test]
    fn stamping_adds_the_annotation_and_keeps_the_others() {
        let mut metadata = json!({"name": "x", "annotations": {"note": "a"}});
        stamp(&mut metadata, ID);
        assert_eq!(metadata["annotations"], json!({"note": "a", OWNER_ANNOTATION: ID}));
        let mut bare = json!({"name": "x"});
        stamp(&mut bare, ID);
        assert_eq!(bare["annotations"], json!({OWNER_ANNOTATION: ID}));
    }
}
