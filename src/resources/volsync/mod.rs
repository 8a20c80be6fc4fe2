//! VolSync's restic mover as two typed resources: `platform_volume_replication` (a
//! ReplicationSource backing a PersistentVolumeClaim up, [`replication`]) and
//! `platform_volume_restore` (a ReplicationDestination restoring into one, [`restore`]).
//!
//! The two differ only in a few spec fields, so they are one resource, [`VolSyncResource`],
//! over a [`Side`] that says what is its own; everything else is here:
//! - the repository: an existing Secret, checked at apply to hold `RESTIC_REPOSITORY` and
//!   `RESTIC_PASSWORD`, or a URL, password and S3 keys given here and written into a Secret
//!   this resource owns (`<name>-restic`, deleted with it). Write-only values (`password_wo`,
//!   `s3_secret_access_key_wo`) are written at every apply and never stored;
//! - the trigger: a `schedule` (robfig/cron v3, which VolSync parses with, and the pattern of
//!   VolSync's CRD) or `sync_on_apply`, a manual trigger token that the apply waits on until
//!   `status.lastManualSync` equals it;
//! - the wait, which fails at once on a `Synchronizing` condition False with reason Error
//!   written since our apply, and otherwise reports the condition and the mover's status.
//!
//! An Error condition identical to the one the object had when our apply returned is the
//! verdict on an earlier sync (VolSync keeps it until a sync succeeds), so it does not end
//! the wait; a failure that repeats word for word shows when the wait runs out, quoted.
//!
//! What it must not know: how VolSync runs its mover (Jobs, caches, snapshots); it reads
//! only the status VolSync documents.

pub mod replication;
pub mod restore;

use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{ApiResource, GroupVersionKind};
use regex::Regex;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use crate::clients::deadline::{Progress, WaitError};
use crate::clients::kube::ownership::owner;
use crate::framework::diagnostics::{AttributePath, Diagnostics};
use crate::framework::resource::{Context, Plan, Resource};
use crate::framework::schema::{timeouts_block, Attribute, Block, NestedBlock, Schema};
use crate::framework::timeouts;
use crate::framework::value::Value;
use crate::platform::{cluster_attribute, kube_diagnostic, validate_cluster_attribute, Platform};
use crate::resources::object::{self, NamespacedObject, OneObject};
use crate::resources::velero::cron;
use crate::resources::{metadata, owned};

/// How long an apply waits for a manual sync (a large volume takes a while).
const SYNC_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// How long an apply with a schedule waits for VolSync to take the object up.
const SEEN_TIMEOUT: Duration = Duration::from_secs(5 * 60);
const POLL: Duration = Duration::from_millis(500);

/// The keys VolSync's restic mover cannot do without.
const REQUIRED_KEYS: [&str; 2] = ["RESTIC_REPOSITORY", "RESTIC_PASSWORD"];
/// restic's repository backends, as a repository URL starts (or a path, `/`).
const BACKENDS: [&str; 9] = ["s3:", "b2:", "azure:", "gs:", "swift:", "rest:", "rclone:", "sftp:", "/"];
/// The computed attributes read from the status.
const STATUS_ATTRIBUTES: [&str; 3] = ["last_sync_time", "last_manual_sync", "latest_mover_result"];

/// The pattern VolSync's CRD gives `spec.trigger.schedule` (as the API server applies it:
/// anchored at the start for descriptors, at the end for the five fields).
static CRD_SCHEDULE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(@(annually|yearly|monthly|weekly|daily|hourly))|((((\d+,)*\d+|(\d+(/|-)\d+)|\*(/\d+)?)\s?){5})$").unwrap()
});
/// restic's `--keep-within` durations: `1y5m7d2h`.
static RESTIC_DURATION: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^([0-9]+[ymdh])+$").unwrap());

/// What one VolSync kind adds to what both share.
pub trait Side: Send + Sync + 'static {
    const TYPE_NAME: &'static str;
    const KIND: &'static str;
    const PLURAL: &'static str;
    /// The `copy_method` values this kind takes.
    const COPY_METHODS: &'static [&'static str];
    const DESCRIPTION: &'static str;
    /// This kind's own attributes (the claim first).
    fn attributes() -> Vec<Attribute>;
    fn blocks() -> Vec<NestedBlock> {
        Vec::new()
    }
    fn validate(config: &Value, diags: &mut Diagnostics);
    /// Writes this kind's fields into the object's `spec` (`spec.restic` exists).
    fn spec(planned: &Value, spec: &mut serde_json::Value);
    /// Reads this kind's attributes back from the live `spec`: those `state` sets, or all
    /// of them when importing.
    fn refresh(state: &mut Value, spec: &serde_json::Value, importing: bool);
}

/// A VolSync object of kind `S` with its repository and trigger.
pub struct VolSyncResource<S> {
    platform: Arc<Platform>,
    objects: ApiResource,
    secrets: ApiResource,
    side: PhantomData<fn() -> S>,
}

impl<S: Side> VolSyncResource<S> {
    pub fn new(platform: Arc<Platform>) -> Self {
        let gvk = GroupVersionKind::gvk("volsync.backube", "v1alpha1", S::KIND);
        VolSyncResource {
            platform,
            objects: ApiResource::from_gvk_with_plural(&gvk, S::PLURAL),
            secrets: ApiResource::erase::<Secret>(&()),
            side: PhantomData,
        }
    }

    /// The repository Secret: `repository_secret`, else the one this resource writes.
    async fn secret(&self, state: &Value, diags: &mut Diagnostics) -> Option<NamespacedObject> {
        let mut at = state.clone();
        at.set_attr("name", Value::string(secret_name(state)));
        NamespacedObject::connect(&self.platform, &at, &self.secrets, diags).await
    }

    /// Refuses an existing repository Secret that lacks a key the mover needs.
    async fn check_secret(&self, ctx: &Context, planned: &Value, diags: &mut Diagnostics) -> Option<()> {
        let secret = self.secret(planned, diags).await?;
        let at = AttributePath::root("repository_secret");
        let live = match secret.get(ctx).await {
            Ok(Some(live)) => live,
            Ok(None) => {
                diags.error_at(at, "No such repository Secret", format!("{} does not exist.", secret.describe()));
                return None;
            }
            Err(e) => {
                diags.push(kube_diagnostic(&format!("Could not read {}", secret.describe()), &e));
                return None;
            }
        };
        let missing = missing_keys(&live);
        if missing.is_empty() {
            return Some(());
        }
        diags.error_at(
            at,
            "Repository Secret lacks restic keys",
            format!(
                "{} has no {} (or it is empty). VolSync's restic mover needs RESTIC_REPOSITORY and RESTIC_PASSWORD, and \
                 the storage's credentials (for S3, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY).",
                secret.describe(),
                missing.join(" and ")
            ),
        );
        None
    }

    /// Writes the repository given in the configuration into the Secret this resource owns.
    async fn write_secret(&self, ctx: &Context, planned: &Value, config: &Value, diags: &mut Diagnostics) -> Option<()> {
        let Some(repository) = given_repository(planned, config) else {
            diags.error_at(
                AttributePath::root("password_wo"),
                "No repository password",
                "Give password_wo (or password) with repository_url.",
            );
            return None;
        };
        let secret = self.secret(planned, diags).await?;
        let encode = |text: &str| base64::engine::general_purpose::STANDARD.encode(text);
        let mut data = json!({
            "RESTIC_REPOSITORY": encode(&repository.url),
            "RESTIC_PASSWORD": encode(repository.password.expose_secret()),
        });
        if let Some((access_key, secret_key)) = &repository.s3 {
            data["AWS_ACCESS_KEY_ID"] = json!(encode(access_key));
            data["AWS_SECRET_ACCESS_KEY"] = json!(encode(secret_key.expose_secret()));
        }
        let desired = json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": { "name": secret.name, "namespace": secret.namespace },
            "type": "Opaque",
            "data": data,
        });
        match secret.apply(ctx, &desired, &owned::id_to_write(planned)).await {
            Ok(_) => Some(()),
            Err(e) => {
                diags.push(kube_diagnostic(&format!("Could not write {}", secret.describe()), &e));
                None
            }
        }
    }

    /// Deletes the Secret this resource wrote for `prior`, while it still carries our id.
    async fn delete_own_secret(&self, ctx: &Context, prior: &Value, diags: &mut Diagnostics) {
        if !writes_secret(prior) {
            return;
        }
        let owner_id = prior.get_attr("owner_id").and_then(Value::as_str);
        let Some(secret) = self.secret(prior, diags).await else { return };
        match secret.get(ctx).await {
            Ok(Some(live)) if owner(&live).is_some() && owner(&live) == owner_id => {
                secret.delete(ctx, &live, diags).await
            }
            Ok(_) => {}
            Err(e) => diags.push(kube_diagnostic(&format!("Could not read {}", secret.describe()), &e)),
        }
    }

    /// The repository attributes of `state` from the Secret this resource writes: a
    /// changed or missing Secret shows as a change that the next apply writes back.
    async fn refresh_secret(&self, ctx: &Context, state: &mut Value, diags: &mut Diagnostics) {
        let Some(secret) = self.secret(state, diags).await else { return };
        let live = match secret.get(ctx).await {
            Ok(live) => live,
            Err(e) => {
                diags.push(kube_diagnostic(&format!("Could not read {}", secret.describe()), &e));
                return;
            }
        };
        let data = live.as_ref().map(secret_data).unwrap_or_default();
        let text = |key: &str| data.get(key).map_or(Value::Null, |v| Value::string(v.expose_secret()));
        state.set_attr("repository_url", text("RESTIC_REPOSITORY"));
        for (attribute, key) in [
            ("s3_access_key_id", "AWS_ACCESS_KEY_ID"),
            ("password", "RESTIC_PASSWORD"),
            ("s3_secret_access_key", "AWS_SECRET_ACCESS_KEY"),
        ] {
            if state.get_attr(attribute).is_some_and(|v| !v.is_null()) {
                state.set_attr(attribute, text(key));
            }
        }
    }
}

/// A repository given in the configuration.
struct Repository {
    url: String,
    password: SecretString,
    s3: Option<(String, SecretString)>,
}

/// The repository of `repository_url` (write-only values are only ever in `config`).
fn given_repository(planned: &Value, config: &Value) -> Option<Repository> {
    let given = |write_only: &str, stored: &str| {
        config
            .get_attr(write_only)
            .and_then(Value::as_str)
            .or_else(|| planned.get_attr(stored).and_then(Value::as_str))
            .map(|text| SecretString::from(text.to_string()))
    };
    let url = planned.get_attr("repository_url").and_then(Value::as_str)?.to_string();
    let password = given("password_wo", "password")?;
    let access_key = planned.get_attr("s3_access_key_id").and_then(Value::as_str).map(str::to_string);
    let s3 = access_key.zip(given("s3_secret_access_key_wo", "s3_secret_access_key"));
    Some(Repository { url, password, s3 })
}

/// Whether `state` has the repository written into a Secret this resource owns.
fn writes_secret(state: &Value) -> bool {
    state.get_attr("repository_secret").is_none_or(Value::is_null)
}

/// The Secret the object names: `repository_secret`, else `<name>-restic`.
fn secret_name(state: &Value) -> String {
    match state.get_attr("repository_secret").and_then(Value::as_str) {
        Some(name) => name.to_string(),
        None => own_secret_name(state.get_attr("name").and_then(Value::as_str).unwrap_or_default()),
    }
}

fn own_secret_name(name: &str) -> String {
    format!("{name}-restic")
}

/// A live Secret's values, decoded.
fn secret_data(live: &serde_json::Value) -> BTreeMap<String, SecretString> {
    let entries = live["data"].as_object().into_iter().flatten();
    entries
        .filter_map(|(key, value)| {
            let bytes = base64::engine::general_purpose::STANDARD.decode(value.as_str()?).ok()?;
            Some((key.clone(), SecretString::from(String::from_utf8_lossy(&bytes).into_owned())))
        })
        .collect()
}

/// The keys of [`REQUIRED_KEYS`] a live Secret lacks or holds empty.
fn missing_keys(live: &serde_json::Value) -> Vec<&'static str> {
    let data = &live["data"];
    REQUIRED_KEYS.into_iter().filter(|key| data[*key].as_str().is_none_or(str::is_empty)).collect()
}

/// The object the configuration describes.
fn desired<S: Side>(planned: &Value) -> serde_json::Value {
    let text = |name: &str| planned.get_attr(name).and_then(Value::as_str);
    let mut trigger = json!({});
    if let Some(schedule) = text("schedule") {
        trigger["schedule"] = json!(schedule);
    }
    if let Some(token) = text("sync_on_apply") {
        trigger["manual"] = json!(token);
    }
    let mut spec = json!({
        "trigger": trigger,
        "restic": { "repository": secret_name(planned), "copyMethod": text("copy_method") },
    });
    S::spec(planned, &mut spec);
    json!({
        "apiVersion": "volsync.backube/v1alpha1",
        "kind": S::KIND,
        "metadata": { "name": text("name"), "namespace": text("namespace") },
        "spec": spec,
    })
}

/// The state for a live object: what `state` sets (all of it when importing) and the status.
fn state_from_live<S: Side>(state: &Value, live: &serde_json::Value, importing: bool) -> Value {
    let mut next = state.clone();
    let spec = &live["spec"];
    let restic = &spec["restic"];
    let text = |v: &serde_json::Value| v.as_str().map_or(Value::Null, Value::string);
    let ours = |name: &str| importing || state.get_attr(name).is_some_and(|v| !v.is_null());
    next.set_attr("id", object::live_id(live));
    next.set_attr("copy_method", text(&restic["copyMethod"]));
    for (attribute, field) in [("schedule", "schedule"), ("sync_on_apply", "manual")] {
        if ours(attribute) {
            next.set_attr(attribute, text(&spec["trigger"][field]));
        }
    }
    let repository = restic["repository"].as_str().unwrap_or_default();
    let own = own_secret_name(state.get_attr("name").and_then(Value::as_str).unwrap_or_default());
    // Another Secret named where ours should be shows as a change back to ours.
    if ours("repository_secret") || repository != own {
        next.set_attr("repository_secret", text(&restic["repository"]));
    }
    S::refresh(&mut next, spec, importing);
    with_status(next, live)
}

/// `state` with the status attributes of `live`.
fn with_status(mut state: Value, live: &serde_json::Value) -> Value {
    let status = &live["status"];
    let text = |v: &serde_json::Value| v.as_str().map_or(Value::Null, Value::string);
    state.set_attr("last_sync_time", text(&status["lastSyncTime"]));
    state.set_attr("last_manual_sync", text(&status["lastManualSync"]));
    state.set_attr("latest_mover_result", text(&status["latestMoverStatus"]["result"]));
    state
}

/// The `Synchronizing` condition of a live object.
fn synchronizing(live: &serde_json::Value) -> Option<&serde_json::Value> {
    live["status"]["conditions"].as_array()?.iter().find(|c| c["type"] == "Synchronizing")
}

/// What a wait reports while an object has no status at all.
pub fn not_processed(kind: &str) -> String {
    format!("no controller has processed this {kind}: is VolSync running?")
}

/// The last lines of the mover's logs, for a message.
fn mover_summary(status: &serde_json::Value) -> String {
    let mover = &status["latestMoverStatus"];
    let Some(result) = mover["result"].as_str() else { return "no mover has run yet".to_string() };
    let lines: Vec<&str> = mover["logs"].as_str().unwrap_or_default().lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    match lines.len() {
        0 => format!("latest mover: {result}"),
        n => format!("latest mover: {result}: {}", lines[n.saturating_sub(3)..].join(" / ")),
    }
}

/// The condition and the mover's status, for a message.
fn describe_status(live: &serde_json::Value) -> String {
    let status = &live["status"];
    let condition = match synchronizing(live) {
        Some(c) => format!(
            "Synchronizing={} ({}: {})",
            c["status"].as_str().unwrap_or("?"),
            c["reason"].as_str().unwrap_or("no reason"),
            c["message"].as_str().unwrap_or("no message")
        ),
        None => "no Synchronizing condition yet".to_string(),
    };
    let manual = match status["lastManualSync"].as_str() {
        Some(token) => format!("last manual sync {token:?}"),
        None => "no manual sync yet".to_string(),
    };
    format!("{condition}; {manual}; {}", mover_summary(status))
}

/// Judges a VolSync object after our apply. With a manual trigger `token`, done when
/// `lastManualSync` equals it; with a schedule, done once VolSync has taken the object up.
/// Either way, an Error condition other than `before` (the one there when our apply
/// returned) ends the wait at once.
fn judge(kind: &str, live: Option<&serde_json::Value>, token: Option<&str>, before: Option<&serde_json::Value>) -> Progress {
    let Some(live) = live else { return Progress::Failed(format!("the {kind} was deleted")) };
    if live["status"].as_object().is_none_or(|status| status.is_empty()) {
        return Progress::Pending(not_processed(kind));
    }
    if token.is_some() && live["status"]["lastManualSync"].as_str() == token {
        return Progress::Done;
    }
    if let Some(condition) = synchronizing(live) {
        let error = condition["status"] == "False" && condition["reason"] == "Error";
        if error && Some(condition) != before {
            return Progress::Failed(format!("VolSync reports {}", describe_status(live)));
        }
    }
    match token {
        Some(_) => Progress::Pending(describe_status(live)),
        None => Progress::Done,
    }
}

/// The attributes both kinds share, around `own` (the kind's).
fn attributes(own: Vec<Attribute>) -> Vec<Attribute> {
    let mut attributes = vec![
        Attribute::string("id").computed().keep_on_update().describe("`namespace/name`."),
        Attribute::string("namespace").required().requires_replace().describe("Namespace of the object, its claim and its Secret."),
        Attribute::string("name").required().requires_replace().describe("Name of the object."),
    ];
    attributes.extend(own);
    attributes.extend([
        Attribute::string("repository_secret").optional().describe(
            "An existing Secret holding the restic repository (`RESTIC_REPOSITORY`, `RESTIC_PASSWORD` and the \
             storage's credentials, e.g. `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`); checked for the first two \
             at apply. Give this, or `repository_url` with a password.",
        ),
        Attribute::string("repository_url").optional().describe(
            "The restic repository, e.g. `s3:https://minio.lan:9000/backups/app`, written with the password and S3 \
             keys into a Secret this resource owns, `<name>-restic` (deleted with it).",
        ),
        Attribute::string("password").optional().sensitive().describe(
            "Password of the repository (kept in state, marked sensitive); prefer `password_wo` with Terraform 1.11 or later.",
        ),
        Attribute::string("password_wo").optional().sensitive().write_only().describe(
            "Password of the repository, write-only: never stored. Raise `credentials_version` to write a new one.",
        ),
        Attribute::string("s3_access_key_id").optional().sensitive().describe("S3 access key of the repository's bucket."),
        Attribute::string("s3_secret_access_key").optional().sensitive().describe(
            "S3 secret key (kept in state, marked sensitive); prefer `s3_secret_access_key_wo` with Terraform 1.11 or later.",
        ),
        Attribute::string("s3_secret_access_key_wo").optional().sensitive().write_only().describe(
            "S3 secret key, write-only: never stored. Raise `credentials_version` to write a new one.",
        ),
        Attribute::number("credentials_version").optional().describe(
            "Change to write `password_wo` and `s3_secret_access_key_wo` again (Terraform cannot see their changes).",
        ),
        Attribute::string("schedule").optional().describe(
            "When to sync, as a cron expression: five numeric fields (`0 3 * * *`; `*`, lists, ranges and steps, \
             no names) or `@hourly`, `@daily`, `@weekly`, `@monthly`, `@yearly`. Give this or `sync_on_apply`. The \
             apply waits only until VolSync has taken the object up.",
        ),
        Attribute::string("sync_on_apply").optional().describe(
            "A manual trigger: any text, e.g. a version or a date. The apply that sets or changes it waits until \
             VolSync has synced (its `lastManualSync` equals it). Give this or `schedule`.",
        ),
        Attribute::string("last_sync_time").computed().describe("When the last sync ended (RFC 3339)."),
        Attribute::string("last_manual_sync").computed().describe("The manual trigger VolSync last synced for."),
        Attribute::string("latest_mover_result").computed().describe("`Successful` or `Failed`: how the last mover run ended."),
        cluster_attribute(),
    ]);
    attributes
}

fn is_set(config: &Value, name: &str) -> bool {
    config.get_attr(name).is_some_and(|v| !v.is_null())
}

fn quoted(names: &[&str]) -> String {
    names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
}

/// The checks both kinds share; unknown values pass.
fn validate_common(config: &Value, copy_methods: &[&str], diags: &mut Diagnostics) {
    metadata::validate_name(config, "namespace", diags);
    if let Some(name) = config.get_attr("name").and_then(Value::as_str) {
        if let Some(problem) = metadata::dns1123_subdomain_problem(name) {
            diags.error_at(AttributePath::root("name"), "Invalid name", format!("{name:?} {problem}."));
        }
    }
    if let Some(method) = config.get_attr("copy_method").and_then(Value::as_str) {
        if !copy_methods.contains(&method) {
            diags.error_at(
                AttributePath::root("copy_method"),
                "Invalid copy_method",
                format!("{method:?} is not one of {}.", quoted(copy_methods)),
            );
        }
    }
    validate_trigger(config, diags);
    validate_repository(config, diags);
    timeouts::validate(config, &["create", "update"], diags);
    owned::validate(config, diags);
    validate_cluster_attribute(config, diags);
}

fn validate_trigger(config: &Value, diags: &mut Diagnostics) {
    match (is_set(config, "schedule"), is_set(config, "sync_on_apply")) {
        (true, true) => diags.error_at(
            AttributePath::root("sync_on_apply"),
            "Two triggers",
            "Give either schedule (VolSync syncs on its own) or sync_on_apply (each apply that changes it syncs), not both.",
        ),
        (false, false) => diags.error_at(
            AttributePath::root("schedule"),
            "No trigger",
            "Give schedule (a cron expression) or sync_on_apply (a token; changing it syncs again).",
        ),
        _ => {}
    }
    if let Some(schedule) = config.get_attr("schedule").and_then(Value::as_str) {
        if let Err(problem) = validate_schedule(schedule) {
            diags.error_at(AttributePath::root("schedule"), "Invalid schedule", format!("{problem}."));
        }
    }
    if config.get_attr("sync_on_apply").and_then(Value::as_str).is_some_and(str::is_empty) {
        diags.error_at(AttributePath::root("sync_on_apply"), "Empty sync_on_apply", "An empty token triggers nothing: give any text.");
    }
}

/// A schedule as VolSync takes it: robfig/cron v3 (which VolSync parses with), within the
/// pattern of VolSync's CRD (which the API server enforces).
pub fn validate_schedule(schedule: &str) -> Result<(), String> {
    let fields = schedule.split_whitespace().filter(|f| !f.starts_with("CRON_TZ=") && !f.starts_with("TZ=")).count();
    if fields == 6 {
        return Err(format!(
            "{schedule:?} has six fields, but VolSync's schedules have no seconds field: give five (minute hour \
             day-of-month month day-of-week), e.g. \"0 3 * * *\""
        ));
    }
    cron::validate(schedule)?;
    if CRD_SCHEDULE.is_match(schedule) {
        Ok(())
    } else {
        Err(format!(
            "{schedule:?} is valid cron, but VolSync's CRDs take only five numeric fields (`*`, lists, \
             ranges and steps; no month or day names, no `?`) or one of @hourly, @daily, @weekly, @monthly, @yearly, \
             @annually"
        ))
    }
}

fn validate_repository(config: &Value, diags: &mut Diagnostics) {
    let given = |names: &[&'static str]| -> Vec<&'static str> { names.iter().copied().filter(|n| is_set(config, n)).collect() };
    let url_mode = given(&["repository_url", "password", "password_wo", "s3_access_key_id", "s3_secret_access_key", "s3_secret_access_key_wo"]);
    if is_set(config, "repository_secret") {
        if !url_mode.is_empty() {
            diags.error_at(
                AttributePath::root("repository_secret"),
                "Repository given twice",
                format!(
                    "With repository_secret, the repository is all in that Secret; {} belong to repository_url.",
                    quoted(&url_mode)
                ),
            );
        }
        return;
    }
    if !is_set(config, "repository_url") {
        diags.error_at(
            AttributePath::root("repository_url"),
            "No repository",
            "Give repository_secret (an existing Secret), or repository_url with password_wo (or password).",
        );
        return;
    }
    if let Some(url) = config.get_attr("repository_url").and_then(Value::as_str) {
        if !BACKENDS.iter().any(|b| url.starts_with(b)) {
            diags.error_at(
                AttributePath::root("repository_url"),
                "Invalid repository_url",
                format!("{url:?} is no restic repository: it starts with a backend, one of {}.", quoted(&BACKENDS)),
            );
        }
    }
    if given(&["password", "password_wo"]).len() != 1 {
        diags.error_at(AttributePath::root("password_wo"), "Repository password", "Give exactly one of password_wo and password.");
    }
    let secrets = given(&["s3_secret_access_key", "s3_secret_access_key_wo"]);
    let incomplete = if is_set(config, "s3_access_key_id") { secrets.len() != 1 } else { !secrets.is_empty() };
    if incomplete {
        diags.error_at(
            AttributePath::root("s3_access_key_id"),
            "Incomplete S3 credentials",
            "Give s3_access_key_id with exactly one of s3_secret_access_key_wo and s3_secret_access_key (or none of them).",
        );
    }
}

/// A count (of snapshots, of days): a whole number from 1 to VolSync's int32 limit.
fn validate_count(value: Option<&Value>, path: AttributePath, diags: &mut Diagnostics) {
    let Some(number) = value.and_then(Value::as_number) else { return };
    if !number.as_i64().is_some_and(|n| (1..=i64::from(i32::MAX)).contains(&n)) {
        diags.error_at(path, "Invalid number", "Give a whole number of at least 1.");
    }
}

#[async_trait]
impl<S: Side> OneObject for VolSyncResource<S> {
    async fn object(&self, state: &Value, diags: &mut Diagnostics) -> Option<NamespacedObject> {
        NamespacedObject::connect(&self.platform, state, &self.objects, diags).await
    }

    async fn apply(&self, ctx: &Context, planned: &Value, config: &Value, diags: &mut Diagnostics) -> Option<Value> {
        if writes_secret(planned) {
            self.write_secret(ctx, planned, config, diags).await?;
        } else {
            self.check_secret(ctx, planned, diags).await?;
        }
        let object = self.object(planned, diags).await?;
        let live = match object.apply(ctx, &desired::<S>(planned), &owned::id_to_write(planned)).await {
            Ok(live) => live,
            Err(e) => {
                let mut diagnostic = kube_diagnostic(&format!("Could not apply {}", object.describe()), &e);
                if e.is_not_found() {
                    diagnostic.detail.push_str(&format!(
                        "\n\nThe cluster does not know VolSync's {}s (volsync.backube/v1alpha1): install VolSync first.",
                        S::KIND
                    ));
                }
                diags.push(diagnostic);
                return None;
            }
        };
        let before = synchronizing(&live).cloned();
        let token = planned.get_attr("sync_on_apply").and_then(Value::as_str);
        // The id is known from the create on: unknown means this is the create.
        let operation = if planned.get_attr("id").is_some_and(Value::is_unknown) { "create" } else { "update" };
        let timeout = timeouts::timeout(planned, operation, if token.is_some() { SYNC_TIMEOUT } else { SEEN_TIMEOUT });
        let what = match token {
            Some(token) => format!("VolSync to sync {} for the manual trigger {token:?}", object.describe()),
            None => format!("VolSync to take up {}", object.describe()),
        };
        let judged = object.wait(ctx, timeout, POLL, &what, |live| judge(S::KIND, live, token, before.as_ref())).await;
        match judged {
            Ok(Some(live)) => Some(state_from_live::<S>(planned, &live, false)),
            Ok(None) => None,
            Err(e) => {
                let summary = match e {
                    WaitError::Failed { .. } => format!("VolSync could not sync {}", object.describe()),
                    _ => format!("{} did not sync", object.describe()),
                };
                diags.error(summary, e.to_string());
                // The object exists: record it, so that the next apply waits again or fixes it.
                object.get(ctx).await.ok().flatten().map(|live| state_from_live::<S>(planned, &live, false))
            }
        }
    }

    fn state_from_live(&self, state: &Value, live: &serde_json::Value) -> Value {
        state_from_live::<S>(state, live, false)
    }

    fn import_state(&self, state: Value, live: &serde_json::Value) -> Value {
        state_from_live::<S>(&state, live, true)
    }

    fn null_state(&self) -> Value {
        Value::null_object(&self.schema().implied_type())
    }
}

#[async_trait]
impl<S: Side> Resource for VolSyncResource<S> {
    fn type_name(&self) -> &'static str {
        S::TYPE_NAME
    }

    fn schema(&self) -> Schema {
        let mut attributes = attributes(S::attributes());
        attributes.extend(owned::attributes(S::KIND));
        let mut block = Block::new(attributes).describe(S::DESCRIPTION);
        for nested in S::blocks() {
            block = block.with_block(nested);
        }
        Schema::new(block.with_block(timeouts_block(&["create", "update"])))
    }

    fn validate(&self, config: &Value, diags: &mut Diagnostics) {
        validate_common(config, S::COPY_METHODS, diags);
        S::validate(config, diags);
    }

    async fn modify_plan(&self, ctx: &Context, plan: &mut Plan, _diags: &mut Diagnostics) {
        if plan.planned.is_null() {
            return;
        }
        object::plan_ownership(self, ctx, plan).await;
        // A manual sync that has not finished (the wait ran out or failed) is waited on again.
        let token = plan.planned.get_attr("sync_on_apply").and_then(Value::as_str);
        if !plan.is_create() && token.is_some() && plan.prior.get_attr("last_manual_sync").and_then(Value::as_str) != token {
            for name in STATUS_ATTRIBUTES {
                plan.planned.set_attr(name, Value::Unknown);
            }
        }
    }

    async fn create(&self, ctx: &Context, planned: &Value, config: &Value, diags: &mut Diagnostics) -> Option<Value> {
        object::create(self, ctx, planned, config, diags).await
    }

    async fn read(&self, ctx: &Context, state: &Value, diags: &mut Diagnostics) -> Option<Value> {
        let mut next = object::read(self, ctx, state, diags).await?;
        if writes_secret(&next) && next.get_attr("repository_url").is_some_and(|v| !v.is_null()) && !diags.has_errors() {
            self.refresh_secret(ctx, &mut next, diags).await;
        }
        Some(next)
    }

    async fn update(&self, ctx: &Context, prior: &Value, planned: &Value, config: &Value, diags: &mut Diagnostics) -> Option<Value> {
        let next = object::update(self, ctx, prior, planned, config, diags).await;
        // Moved to an existing Secret: the one this resource wrote goes.
        if next.is_some() && !diags.has_errors() && !writes_secret(planned) {
            self.delete_own_secret(ctx, prior, diags).await;
        }
        next
    }

    async fn delete(&self, ctx: &Context, prior: &Value, diags: &mut Diagnostics) {
        object::delete(self, ctx, prior, diags).await;
        // The Secret goes with the object: a released object keeps it.
        let ownership = owned::Ownership::of(prior);
        let object_deleted = match ownership.on_destroy {
            Some(mode) => mode == owned::OnDestroy::Delete,
            None => !ownership.adopted,
        };
        if object_deleted && !diags.has_errors() {
            self.delete_own_secret(ctx, prior, diags).await;
        }
    }

    /// Import by `namespace/name`. An object naming `<name>-restic` reads its repository
    /// URL and S3 access key from that Secret; the password and secret key never come into
    /// state this way (`password` and `s3_secret_access_key` are written by the next apply).
    async fn import(&self, ctx: &Context, id: &str, diags: &mut Diagnostics) -> Option<Value> {
        let mut state = object::import(self, ctx, id, diags).await?;
        let name = state.get_attr("name").and_then(Value::as_str).unwrap_or_default().to_string();
        if state.get_attr("repository_secret").and_then(Value::as_str) != Some(own_secret_name(&name).as_str()) {
            return Some(state);
        }
        let secret = self.secret(&state, diags).await?;
        if let Ok(Some(live)) = secret.get(ctx).await {
            let data = secret_data(&live);
            if let Some(url) = data.get("RESTIC_REPOSITORY") {
                state.set_attr("repository_secret", Value::Null);
                state.set_attr("repository_url", Value::string(url.expose_secret()));
                let access_key = data.get("AWS_ACCESS_KEY_ID").map_or(Value::Null, |k| Value::string(k.expose_secret()));
                state.set_attr("s3_access_key_id", access_key);
            }
        }
        Some(state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live(status: serde_json::Value) -> serde_json::Value {
        json!({ "metadata": { "name": "data", "namespace": "apps" }, "status": status })
    }

    fn condition(status: &str, reason: &str, message: &str) -> serde_json::Value {
        json!({ "type": "Synchronizing", "status": status, "reason": reason, "message": message, "lastTransitionTime": "2026-01-01T00:00:00Z" })
    }

    #[test]
    fn a_manual_sync_is_done_when_lastmanualsync_equals_the_token() {
        let kind = "ReplicationSource";
        assert_eq!(
            judge(kind, Some(&live(json!({}))), Some("t1"), None),
            Progress::Pending("no controller has processed this ReplicationSource: is VolSync running?".to_string())
        );
        let syncing = live(json!({ "lastManualSync": "t0", "conditions": [condition("True", "SyncInProgress", "Synchronization in-progress")] }));
        assert!(matches!(judge(kind, Some(&syncing), Some("t1"), None), Progress::Pending(m) if m.contains("SyncInProgress") && m.contains("\"t0\"")));
        let done = live(json!({ "lastManualSync": "t1", "latestMoverStatus": { "result": "Successful" } }));
        assert_eq!(judge(kind, Some(&done), Some("t1"), None), Progress::Done);
        assert!(matches!(judge(kind, None, Some("t1"), None), Progress::Failed(_)));
    }

    #[test]
    fn a_new_error_condition_ends_the_wait_and_an_old_one_does_not() {
        let kind = "ReplicationSource";
        let error = condition("False", "Error", "restic backup failed: wrong password");
        let failed = live(json!({ "conditions": [error.clone()], "latestMoverStatus": { "result": "Failed", "logs": "a\nb\nFatal: wrong password\n" } }));
        let Progress::Failed(message) = judge(kind, Some(&failed), Some("t1"), None) else { panic!("not failed") };
        assert!(message.contains("wrong password") && message.contains("latest mover: Failed"), "{message}");
        // The same condition as when our apply returned: an earlier sync's verdict.
        assert!(matches!(judge(kind, Some(&failed), Some("t1"), Some(&error)), Progress::Pending(m) if m.contains("wrong password")));
        // With a schedule, taken up is enough.
        let waiting = live(json!({ "conditions": [condition("False", "WaitingForSchedule", "Waiting")] }));
        assert_eq!(judge(kind, Some(&waiting), None, None), Progress::Done);
    }

    #[test]
    fn schedules_must_suit_robfig_cron_and_volsyncs_crd() {
        assert!(validate_schedule("0 3 * * *").is_ok());
        assert!(validate_schedule("*/15 1-5 * * 1,3").is_ok());
        assert!(validate_schedule("@daily").is_ok());
        assert!(validate_schedule("0 0 1 * * *").unwrap_err().contains("six fields"));
        assert!(validate_schedule("@every 1h").unwrap_err().contains("VolSync"));
        assert!(validate_schedule("0 3 * jan mon").unwrap_err().contains("no month or day names"));
        assert!(validate_schedule("0 3 * *").is_err());
    }

    #[test]
    fn missing_restic_keys_are_named() {
        let secret = json!({ "data": { "RESTIC_REPOSITORY": "czM6eA==", "RESTIC_PASSWORD": "" } });
        assert_eq!(missing_keys(&secret), ["RESTIC_PASSWORD"]);
        assert_eq!(missing_keys(&json!({})), REQUIRED_KEYS);
    }
}
