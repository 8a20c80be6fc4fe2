//! What can go wrong while a stack changes a cluster, as values: each variant says what it
//! concerns, and its text is the diagnostic detail the user reads.

use super::claims::Refusal;
use crate::clients::deadline::{Interrupted, WaitError};
use crate::clients::kube::KubeError;

#[derive(Debug, thiserror::Error)]
pub enum OpError {
    /// A call to the API server failed; `what` is what we were doing.
    #[error("{what}: {source}")]
    Kube { what: String, source: KubeError },
    /// The ownership rules forbid writing to an existing object.
    #[error("{object} cannot be applied: {refusal}")]
    Refused { object: String, refusal: Refusal },
    /// Server-side apply found fields another manager owns.
    #[error(
        "applying {object}: {source}. Another field manager owns these fields: set `force_conflicts = true` on the stack to \
         take them over, or list them in `ignore_fields` of component {component:?} to leave them to it"
    )]
    Conflict { object: String, component: String, source: KubeError },
    /// A kind the cluster does not serve (yet).
    #[error(
        "the cluster does not serve {api_version} {kind}: Flux is not installed. Add a component installing Flux (for \
         example `manifests_url` of Flux's install.yaml, or `catalog = \"flux\"` in another stack) and list it in `depends_on`."
    )]
    FluxMissing { api_version: String, kind: String },
    #[error(
        "the cluster does not serve {api_version} {kind} (document {document}): install its CustomResourceDefinition in this or \
         an earlier component"
    )]
    KindMissing { api_version: String, kind: String, document: usize },
    /// A kind no longer served while we let go of one of its objects: nothing says it is gone.
    #[error(
        "the cluster no longer serves {api_version} {kind}, so {object} cannot be confirmed gone. If it really is, remove \
         the stack from the state with `terraform state rm`"
    )]
    NoLongerServed { api_version: String, kind: String, object: String },
    /// Deleting the CRD would delete custom resources the stack does not own.
    #[error(
        "{crd} not deleted: {total} {kind} object(s) that this stack does not own still exist ({counts}). Deleting the CRD \
         would delete them all. Remove them first, or set `force_delete = true` on the stack"
    )]
    CrdInUse { crd: String, kind: String, total: usize, counts: String },
    /// Deleting the namespace would delete objects the stack does not own.
    #[error(
        "{namespace} not deleted: it holds {count} object(s) this stack does not own ({listed}). Deleting the namespace would \
         delete them. Move or remove them first, or set `force_delete = true` on the stack"
    )]
    NamespaceInUse { namespace: String, count: usize, listed: String },
    #[error("wait_for {0} selects no object of the component")]
    WaitSelectsNothing(String),
    #[error(transparent)]
    Wait(#[from] WaitError),
    #[error(transparent)]
    Interrupted(#[from] Interrupted),
}

impl OpError {
    pub fn kube(what: impl Into<String>, source: KubeError) -> Self {
        OpError::Kube { what: what.into(), source }
    }

    /// Whether the API server refused the request, so that a write surely did not happen.
    pub fn surely_not_written(&self) -> bool {
        match self {
            OpError::Kube { source, .. } | OpError::Conflict { source, .. } => source.is_permanent() || source.is_not_found(),
            _ => true,
        }
    }
}
