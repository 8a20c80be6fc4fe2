//! Which objects a stack may write to and delete: the ownership rules as pure decisions.
//!
//! Every object a stack instance applies carries the instance's id (its `id` attribute, a
//! random UUID made at create) in `platform.terraform.io/owner`. An object that exists and
//! carries no id of ours is taken over only when the user asks (`adopt`), is then recorded
//! as adopted in state, and is released rather than deleted when the stack lets go of it.
//!
//! Nothing here talks to a cluster: the callers fetch the live object and act on the answer.

use std::collections::BTreeSet;

use crate::clients::kube::ownership::{self, Standing};

/// An object's identity for sets of objects: group, kind, namespace and name (the component
/// that applies it and the API version do not count).
pub type Identity = (String, String, Option<String>, String);

/// What a stack instance knows about its own past, for deciding about one object.
pub struct Claimant<'a> {
    /// This instance's id.
    pub id: &'a str,
    /// Objects the prior state holds as applied by this instance (entries not recorded as
    /// deleted). Ours even without our id: state written before ownership was recorded, or
    /// an annotation someone removed. (An object deleted and made again by someone else is
    /// recorded as deleted by the refresh, so it does not count.)
    pub inventory: &'a BTreeSet<Identity>,
    /// Objects the prior state records as adopted.
    pub adopted: &'a BTreeSet<Identity>,
    /// Adoptions the plan showed, when it could look (`None`: the plan could not tell).
    pub planned_adoptions: Option<&'a BTreeSet<Identity>>,
}

/// The outcome for an object the stack is about to apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// Not there yet: we create it.
    Create,
    /// Ours already; `adopted` as recorded before.
    Ours { adopted: bool },
    /// Someone else's, taken over because the user asked.
    Adopt,
}

/// Why an object may not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("it already exists and was not created by this stack ({managers}). Set `adopt = true` on the component (or the stack) to take it over; adopted objects are released, not deleted, when the stack lets go of them")]
    Exists { managers: String },
    #[error("it belongs to another resource instance (owner id {owner}, {managers}); two Terraform resources must not manage one object. Remove it from the other configuration first, or use another name")]
    OtherOwner { owner: String, managers: String },
    #[error("it appeared after the plan was made ({managers}), so the plan did not show its adoption. Run plan again to review it")]
    AppearedSincePlan { managers: String },
}

/// Decides about applying `identity`, given its live object (if any) and whether the user
/// allows adoption for it.
pub fn claim(claimant: &Claimant, identity: &Identity, live: Option<&serde_json::Value>, adopt: bool) -> Result<Claim, Refusal> {
    let Some(live) = live else { return Ok(Claim::Create) };
    let managers = || ownership::describe_managers(live);
    match ownership::standing(live, claimant.id) {
        Standing::Ours => Ok(Claim::Ours { adopted: claimant.adopted.contains(identity) }),
        Standing::OtherInstance(owner) => Err(Refusal::OtherOwner { owner, managers: managers() }),
        Standing::Foreign => {
            if claimant.adopted.contains(identity) {
                // Adopted earlier; someone removed our annotation since. It is written back.
                return Ok(Claim::Ours { adopted: true });
            }
            if claimant.inventory.contains(identity) {
                return Ok(Claim::Ours { adopted: false });
            }
            if !adopt {
                return Err(Refusal::Exists { managers: managers() });
            }
            match claimant.planned_adoptions {
                Some(planned) if !planned.contains(identity) => Err(Refusal::AppearedSincePlan { managers: managers() }),
                _ => Ok(Claim::Adopt),
            }
        }
    }
}

/// What to do with an object the stack lets go of (prune or destroy), given its live state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parting {
    /// Already gone.
    Gone,
    /// Ours, created by us (or adopted with `on_destroy = "delete"`): delete it.
    Delete,
    /// Adopted: remove our marks, leave the object.
    Release,
    /// Annotated to be kept (Helm's `resource-policy: keep`, or ours): left as it is.
    Keep,
    /// Not ours any more (another instance's id, or our id removed): left alone.
    NotOurs(String),
}

/// Decides about letting go of `identity`. `delete_adopted`: the component says
/// `on_destroy = "delete"`.
pub fn parting(claimant: &Claimant, identity: &Identity, live: Option<&serde_json::Value>, delete_adopted: bool) -> Parting {
    let Some(live) = live else { return Parting::Gone };
    let adopted = claimant.adopted.contains(identity);
    let ours = match ownership::standing(live, claimant.id) {
        Standing::Ours => true,
        Standing::OtherInstance(owner) => return Parting::NotOurs(format!("it now belongs to another instance (owner id {owner})")),
        Standing::Foreign => claimant.inventory.contains(identity),
    };
    if !ours {
        return Parting::NotOurs("it no longer carries this stack's owner id".to_string());
    }
    if ownership::is_kept(live) {
        Parting::Keep
    } else if adopted && !delete_adopted {
        Parting::Release
    } else {
        Parting::Delete
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::clients::kube::ownership::OWNER_ANNOTATION;

    fn id(name: &str) -> Identity {
        ("".into(), "ConfigMap".into(), Some("apps".into()), name.into())
    }

    fn live(owner: Option<&str>) -> serde_json::Value {
        let annotations = match owner {
            Some(o) => json!({ OWNER_ANNOTATION: o }),
            None => json!({}),
        };
        json!({"metadata": {"name": "x", "annotations": annotations,
            "managedFields": [{"manager": "kubectl-create", "operation": "Update"}]}})
    }

    struct Past {
        inventory: BTreeSet<Identity>,
        adopted: BTreeSet<Identity>,
        planned: Option<BTreeSet<Identity>>,
    }

    impl Past {
        fn new() -> Self {
            Past { inventory: BTreeSet::new(), adopted: BTreeSet::new(), planned: None }
        }
        fn claimant(&self) -> Claimant<'_> {
            Claimant {
                id: "me",
                inventory: &self.inventory,
                adopted: &self.adopted,
                planned_adoptions: self.planned.as_ref(),
            }
        }
    }

    #[test]
    fn absent_objects_are_created_and_ours_are_applied() {
        let past = Past::new();
        assert_eq!(claim(&past.claimant(), &id("a"), None, false), Ok(Claim::Create));
        assert_eq!(claim(&past.claimant(), &id("a"), Some(&live(Some("me"))), false), Ok(Claim::Ours { adopted: false }));
    }

    #[test]
    fn existing_objects_are_refused_unless_adopted_and_name_their_managers() {
        let past = Past::new();
        let refusal = claim(&past.claimant(), &id("a"), Some(&live(None)), false).unwrap_err();
        assert!(refusal.to_string().contains("kubectl-create (Update)"), "{refusal}");
        assert!(refusal.to_string().contains("adopt = true"), "{refusal}");
        assert_eq!(claim(&past.claimant(), &id("a"), Some(&live(None)), true), Ok(Claim::Adopt));
    }

    #[test]
    fn another_instance_is_refused_even_with_adopt() {
        let past = Past::new();
        let refusal = claim(&past.claimant(), &id("a"), Some(&live(Some("other"))), true).unwrap_err();
        assert!(matches!(&refusal, Refusal::OtherOwner { owner, .. } if owner == "other"), "{refusal:?}");
    }

    #[test]
    fn adoption_must_have_been_planned_when_the_plan_could_look() {
        let mut past = Past::new();
        past.planned = Some([id("b")].into());
        assert!(matches!(claim(&past.claimant(), &id("a"), Some(&live(None)), true), Err(Refusal::AppearedSincePlan { .. })));
        assert_eq!(claim(&past.claimant(), &id("b"), Some(&live(None)), true), Ok(Claim::Adopt));
    }

    #[test]
    fn the_inventory_owns_its_objects_without_annotation() {
        let mut past = Past::new();
        past.inventory.insert(id("a"));
        assert_eq!(claim(&past.claimant(), &id("a"), Some(&live(None)), false), Ok(Claim::Ours { adopted: false }));
        assert!(claim(&past.claimant(), &id("b"), Some(&live(None)), false).is_err());
    }

    #[test]
    fn release_deletes_ours_releases_adopted_and_leaves_others() {
        let mut past = Past::new();
        past.adopted.insert(id("adopted"));
        let c = past.claimant();
        assert_eq!(parting(&c, &id("a"), None, false), Parting::Gone);
        assert_eq!(parting(&c, &id("a"), Some(&live(Some("me"))), false), Parting::Delete);
        assert_eq!(parting(&c, &id("adopted"), Some(&live(Some("me"))), false), Parting::Release);
        assert_eq!(parting(&c, &id("adopted"), Some(&live(Some("me"))), true), Parting::Delete);
        assert!(matches!(parting(&c, &id("a"), Some(&live(Some("other"))), false), Parting::NotOurs(_)));
        assert!(matches!(parting(&c, &id("a"), Some(&live(None)), false), Parting::NotOurs(_)));
        let mut kept = live(Some("me"));
        kept["metadata"]["annotations"]["helm.sh/resource-policy"] = json!("keep");
        assert_eq!(parting(&c, &id("a"), Some(&kept), false), Parting::Keep);
    }
}
