//! Who a record set belongs to, and what create, update and destroy may therefore do.
//!
//! A set that exists before create is refused unless `adopt = true`; adopted and imported
//! sets are released (left on the server) on destroy unless `on_destroy = "delete"`. With an
//! external-dns owner id on the server, a set is claimed by external-dns's TXT registry
//! record ([`Registry`]): a set another owner claims is never changed without `adopt`.

use crate::clients::dns::{Backend, Registry, Rrset, RrsetId};
use crate::framework::diagnostics::Diagnostic;
use crate::framework::value::Value;

use super::{describe, Doing, Failure};

/// The `resource` label our registry records carry.
const RESOURCE_LABEL: &str = "terraform/platform_dns_record";

pub use crate::resources::owned::{adopt_requested, validate, OnDestroy};
use crate::resources::owned::Ownership;

/// What destroy does for this state: `on_destroy` when set, else release what was adopted.
pub fn on_destroy(state: &Value) -> OnDestroy {
    let ownership = Ownership::of(state);
    ownership.on_destroy.unwrap_or(if ownership.adopted { OnDestroy::Release } else { OnDestroy::Delete })
}

/// The registry's view of one set: our owner id (when the registry is on), the registry
/// record now on the server, and the owner it names.
#[derive(Debug, Default)]
pub struct Claim {
    ours: Option<Registry>,
    record: Option<Rrset>,
    holder: Option<String>,
}

impl Claim {
    fn held_by_other(&self) -> Option<&str> {
        match (&self.ours, &self.holder) {
            (Some(ours), Some(holder)) if *holder != ours.owner_id => Some(holder),
            (None, Some(holder)) => Some(holder),
            _ => None,
        }
    }

    fn held_by_us(&self) -> bool {
        matches!((&self.ours, &self.holder), (Some(ours), Some(holder)) if *holder == ours.owner_id)
    }
}

/// Reads the registry record of `id` (nothing when the registry is off).
pub async fn claim(backend: &dyn Backend, id: &RrsetId, owner_id: Option<&str>) -> Result<Claim, Failure> {
    let Some(owner_id) = owner_id else { return Ok(Claim::default()) };
    let registry_id = Registry::record_id(id);
    let record = backend.read(&registry_id).await.doing(|| format!("Could not read the external-dns registry record of {}", describe(id)))?;
    let holder = record.as_ref().and_then(Registry::owner_of);
    Ok(Claim { ours: Some(Registry::new(owner_id)), record, holder })
}

/// Whether create may write `id`, given what the server holds now.
pub fn creating(
    id: &RrsetId,
    backend: &dyn Backend,
    live: Option<&Rrset>,
    claim: &Claim,
    adopt: bool,
    planned: &Value,
) -> Result<(), Diagnostic> {
    if let Some(other) = claim.held_by_other() {
        if !adopt {
            return Err(Diagnostic::error(
                format!("The {} belongs to external-dns owner {other:?}", describe(id)),
                format!(
                    "external-dns's registry record {} on {} names owner {other:?}. It is left alone; set `adopt = true` \
                     to take it over (external-dns then leaves it to this resource).",
                    Registry::record_id(id).name,
                    backend.describe()
                ),
            ));
        }
    }
    let Some(live) = live else { return Ok(()) };
    // Our own claim on it: a create that wrote it before failing, finished now.
    if claim.held_by_us() {
        return Ok(());
    }
    if !adopt {
        return Err(Diagnostic::error(
            format!("The {} already exists", describe(id)),
            format!(
                "{} already holds {live}. It was not made by this resource and is left alone. Set `adopt = true` to take \
                 it over (the plan then shows the records it replaces), or import it.",
                backend.describe()
            ),
        ));
    }
    if planned.get_attr("adopted").and_then(Value::as_bool) == Some(false) {
        return Err(Diagnostic::error(
            format!("The {} appeared after the plan", describe(id)),
            format!(
                "When planned, the set did not exist; now {} holds {live}. It is not taken over unseen: plan again to see \
                 what adopting it replaces.",
                backend.describe()
            ),
        ));
    }
    Ok(())
}

/// Whether update or delete may change `id`: not while another owner claims it.
pub fn updating(id: &RrsetId, claim: &Claim) -> Result<(), Diagnostic> {
    match claim.held_by_other() {
        Some(other) if claim.ours.is_some() => Err(Diagnostic::error(
            format!("The {} now belongs to external-dns owner {other:?}", describe(id)),
            format!(
                "external-dns's registry record {} names owner {other:?}, not ours; the set is left alone.",
                Registry::record_id(id).name
            ),
        )),
        _ => Ok(()),
    }
}

/// Writes our registry record for `id`, when the registry is on and it is not ours yet.
pub async fn stake(backend: &dyn Backend, id: &RrsetId, claim: &Claim) -> Result<(), Failure> {
    let Some(ours) = &claim.ours else { return Ok(()) };
    if claim.held_by_us() {
        return Ok(());
    }
    let record = ours.record(RESOURCE_LABEL);
    backend
        .write(&Registry::record_id(id), claim.record.as_ref(), &record)
        .await
        .doing(|| format!("Could not write the external-dns registry record of {}", describe(id)))
}

/// Removes our registry record for `id`, if it is ours.
pub async fn unstake(backend: &dyn Backend, id: &RrsetId, claim: &Claim) -> Result<(), Failure> {
    let (true, Some(record)) = (claim.held_by_us(), &claim.record) else { return Ok(()) };
    backend
        .delete(&Registry::record_id(id), record)
        .await
        .doing(|| format!("Could not remove the external-dns registry record of {}", describe(id)))
}
