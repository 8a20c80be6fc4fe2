//! `platform_dns_record`: one record set (every record of a name and type in a zone) on an
//! RFC 2136 server, a PowerDNS API or Cloudflare.
//!
//! The path through it: configuration → [`config::desired`] (the RRset in canonical form) →
//! plan (`adopted`, `adopted_records` when adopting) → the server, where every write is
//! conditional on what was last read. Ownership: an RRset that exists already is refused
//! unless `adopt = true`; an adopted or imported set is left in place on destroy. With an
//! external-dns owner id on the server's `dns` block, each set we own is claimed with
//! external-dns's TXT registry record, and sets another owner claims are refused.

pub mod config;
mod ownership;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::clients::deadline::Deadline;
use crate::clients::dns::{Backend, DnsError, Rrset, RrsetId};
use crate::framework::diagnostics::{Diagnostic, Diagnostics};
use crate::framework::resource::{Context, Plan, Resource};
use crate::framework::schema::{timeouts_block, Attribute, AttributeType, Block, Schema};
use crate::framework::timeouts;
use crate::framework::value::{Type, Value};
use crate::platform::dns::connection_from_attribute;
use crate::platform::{dns_diagnostic, DnsTarget, Platform};
use ownership::OnDestroy;

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);
const READ_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a plan may spend asking what an RRset to adopt holds.
const PLAN_READ_TIMEOUT: Duration = Duration::from_secs(10);

pub struct DnsRecordResource {
    platform: Arc<Platform>,
}

/// The server of one record, ready to use.
struct Server {
    backend: Arc<dyn Backend>,
    owner_id: Option<String>,
}

impl DnsRecordResource {
    pub fn new(platform: Arc<Platform>) -> Self {
        DnsRecordResource { platform }
    }

    /// The record's server; `Ok(None)` while its connection is not known.
    fn server(&self, values: &Value) -> Result<Option<Server>, Diagnostic> {
        match self.platform.dns(values.get_attr("dns"), values.get_attr("connection"))? {
            DnsTarget::Ready { backend, owner_id } => Ok(Some(Server { backend, owner_id })),
            DnsTarget::NotKnown => Ok(None),
        }
    }

    /// The server, where apply needs one: not knowing it is an error.
    fn server_for_apply(&self, values: &Value) -> Result<Server, Diagnostic> {
        self.server(values)?.ok_or_else(|| {
            Diagnostic::error(
                "DNS server not known",
                "The record's `connection` or `dns` block is still not known at apply.",
            )
        })
    }
}

/// `records` as Terraform holds it: a set of strings.
fn string_set(records: &[String]) -> Value {
    Value::Set(records.iter().map(|r| Value::String(r.clone())).collect())
}

fn address_of(values: &Value) -> Result<RrsetId, Diagnostic> {
    config::address(values)?
        .ok_or_else(|| Diagnostic::error("Record set not known", "zone, name and type must be known at apply."))
}

/// The RRset a state says we hold (records canonical).
fn held(state: &Value, id: &RrsetId) -> Result<Rrset, Diagnostic> {
    let written = config::written_records(state).unwrap_or_default();
    Ok(Rrset::new(config::ttl(state), config::canonical_records(id.rtype, &written)?))
}

/// The state's records after a read: the strings as written while they mean what the
/// server holds, so no spelling (case, address form, quoting, order) ever shows as a change.
fn records_after_read(state: &Value, id: &RrsetId, live: &Rrset) -> Value {
    let written = config::written_records(state).unwrap_or_default();
    match config::canonical_records(id.rtype, &written) {
        Ok(canonical) if Rrset::new(0, canonical.clone()).same_records(live) => string_set(&written),
        _ => string_set(&live.records),
    }
}

fn record_state(mut state: Value, id: &RrsetId, live: &Rrset) -> Value {
    let records = records_after_read(&state, id, live);
    state.set_attr("records", records);
    state.set_attr("ttl", Value::number(live.ttl));
    state.set_attr("id", Value::String(config::record_id(id)));
    state.set_attr("fqdn", Value::String(id.name.clone()));
    state
}

fn describe(id: &RrsetId) -> String {
    format!("record set {} {}", id.name, id.rtype)
}

/// Runs `work` under the operation's deadline; failures become one diagnostic, and running
/// out of time or being stopped names what was being done (`doing`).
async fn within<T>(
    ctx: &Context,
    timeout: Duration,
    doing: &str,
    work: impl std::future::Future<Output = Result<T, Failure>>,
) -> Result<T, Diagnostic> {
    let deadline = Deadline::after(timeout, ctx.stop.clone());
    deadline.run(work).await.map_err(|failure| match failure {
        Failure::Dns(_, DnsError::Interrupted(why)) => dns_diagnostic(doing, &DnsError::Interrupted(why)),
        other => other.into_diagnostic(),
    })
}

/// Why an operation stopped: a DNS failure (with what we were doing) or a refusal.
enum Failure {
    Dns(String, DnsError),
    Refused(Diagnostic),
}

impl Failure {
    fn into_diagnostic(self) -> Diagnostic {
        match self {
            Failure::Dns(doing, e) => dns_diagnostic(&doing, &e),
            Failure::Refused(diagnostic) => diagnostic,
        }
    }
}

impl From<crate::clients::deadline::Interrupted> for Failure {
    fn from(i: crate::clients::deadline::Interrupted) -> Failure {
        Failure::Dns("DNS operation stopped".to_string(), DnsError::Interrupted(i))
    }
}

/// Context for a DNS failure: `.doing("Could not create ...")`.
trait Doing<T> {
    fn doing(self, what: impl Fn() -> String) -> Result<T, Failure>;
}

impl<T> Doing<T> for Result<T, DnsError> {
    fn doing(self, what: impl Fn() -> String) -> Result<T, Failure> {
        self.map_err(|e| Failure::Dns(what(), e))
    }
}

/// Writes `desired` and reads it back: a server may drop part of an update silently (a
/// CNAME beside other records, say), and a record Terraform believes in must exist.
async fn write_checked(
    backend: &dyn Backend,
    id: &RrsetId,
    expected: Option<&Rrset>,
    desired: &Rrset,
    verb: &str,
) -> Result<Rrset, Failure> {
    let doing = || format!("Could not {verb} {}", describe(id));
    backend.write(id, expected, desired).await.doing(doing)?;
    let stored = backend.read(id).await.doing(doing)?;
    match stored {
        Some(stored) if stored.same_records(desired) => Ok(stored),
        other => {
            let found = other.map_or_else(|| "nothing".to_string(), |s| s.to_string());
            Err(Failure::Refused(Diagnostic::error(
                doing(),
                format!(
                    "{} accepted the update but holds {found} instead of {desired}. A server drops records it may not \
                     keep, e.g. a CNAME beside other records of the name (RFC 1034 section 3.6.2).",
                    backend.describe()
                ),
            )))
        }
    }
}

#[async_trait]
impl Resource for DnsRecordResource {
    fn type_name(&self) -> &'static str {
        "platform_dns_record"
    }

    fn schema(&self) -> Schema {
        let records_set = AttributeType::Plain(Type::set(Type::String));
        Schema::new(
            Block::new(vec![
                Attribute::string("id").computed().keep_on_update().describe("`<zone>/<name>/<type>`, as import takes it."),
                Attribute::string("dns").optional().requires_replace().describe(
                    "Name of the provider's `dns` block holding the zone; may be omitted when there is one block, or one named `default`.",
                ),
                crate::platform::dns::connection_attribute(),
                Attribute::string("zone").required().requires_replace().describe("The zone, e.g. `home.example.com`."),
                Attribute::string("name").required().requires_replace().describe(
                    "Owner name relative to the zone (`grafana`), `@` for the apex, or an absolute name ending in `.` inside the zone.",
                ),
                Attribute::string("type").required().requires_replace().describe("Record type: A, AAAA, CNAME, TXT, MX, SRV, CAA, NS or PTR."),
                Attribute::number("ttl").optional().computed().describe("Time to live in seconds; 300 when omitted."),
                Attribute::new("records", records_set.clone()).required().describe(
                    "Every record of the set, in zone-file form: `10.0.0.1`, `mail.example.com.`, `10 mail.example.com.` (MX), \
                     `0 5 5060 sip.example.com.` (SRV), `0 issue \"letsencrypt.org\"` (CAA), TXT as plain text (cut into \
                     255-byte strings for you). Spelling is normalised: case, trailing dots, IPv6 forms, quoting and order never \
                     show as changes.",
                ),
                Attribute::string("fqdn").computed().keep_on_update().describe("The absolute owner name, with its trailing dot."),
                Attribute::bool("adopt").optional().describe(
                    "Take over the record set if it already exists. Without it, creating a set that exists fails and names the \
                     records found. An adopted set is left in place on destroy unless `on_destroy = \"delete\"`.",
                ),
                Attribute::bool("adopted").computed().keep_on_update().describe(
                    "Whether the set existed before this resource took it over (by `adopt` or import).",
                ),
                Attribute::new("adopted_records", records_set).computed().keep_on_update().describe(
                    "The records the set held when it was adopted or imported; with `adopt`, known at plan time when the \
                     server can be reached, so the plan shows what will be replaced.",
                ),
                Attribute::string("on_destroy").optional().describe(
                    "What destroy does: `delete` the set, or `release` it (leave it; drop our external-dns claim). Defaults to \
                     `delete` for a set this resource created and `release` for an adopted or imported one.",
                ),
            ])
            .with_block(timeouts_block(&["create", "update", "delete"]))
            .describe(
                "One DNS record set (all records of a name and type) on an RFC 2136 server (TSIG), a PowerDNS API or \
                 Cloudflare. Changes are atomic where the server allows and conditional on what was last read, so a set \
                 changed by someone else meanwhile is reported, not overwritten.",
            ),
        )
    }

    fn validate(&self, config: &Value, diags: &mut Diagnostics) {
        config::validate(config, diags);
        ownership::validate(config, diags);
        timeouts::validate(config, &["create", "update", "delete"], diags);
        if let Err(diagnostic) = connection_from_attribute(config.get_attr("connection")) {
            diags.push(diagnostic);
        }
    }

    async fn modify_plan(&self, ctx: &Context, plan: &mut Plan, diags: &mut Diagnostics) {
        if plan.planned.is_null() {
            return;
        }
        let ttl = match plan.config.get_attr("ttl") {
            Some(Value::Unknown) => Value::Unknown,
            Some(Value::Number(n)) => Value::Number(n.clone()),
            _ => Value::number(config::DEFAULT_TTL),
        };
        plan.planned.set_attr("ttl", ttl);
        // Which server: a `dns` name that no block has is an error now, not at apply.
        let server = match self.server(&plan.config) {
            Ok(server) => server,
            Err(diagnostic) => {
                diags.push(diagnostic);
                return;
            }
        };
        if !plan.is_create() {
            return;
        }
        match config::address(&plan.config) {
            Ok(Some(id)) => {
                plan.planned.set_attr("id", Value::String(config::record_id(&id)));
                plan.planned.set_attr("fqdn", Value::String(id.name.clone()));
            }
            Ok(None) => {}
            Err(diagnostic) => {
                diags.push(diagnostic);
                return;
            }
        }
        let adopt = ownership::adopt_requested(&plan.config);
        let (adopted, adopted_records) = match adopt {
            Some(false) => (Value::Bool(false), Value::Null),
            None => (Value::Unknown, Value::Unknown),
            Some(true) => {
                // Show what will be replaced, when the server answers quickly.
                let found = match (server, config::address(&plan.config)) {
                    (Some(server), Ok(Some(id))) => {
                        within(ctx, PLAN_READ_TIMEOUT, "Reading the record set to adopt", async {
                            server.backend.read(&id).await.doing(String::new)
                        })
                        .await
                        .ok()
                    }
                    _ => None,
                };
                match found {
                    Some(Some(live)) => (Value::Bool(true), string_set(&live.records)),
                    Some(None) => (Value::Bool(false), Value::Null),
                    None => (Value::Unknown, Value::Unknown),
                }
            }
        };
        plan.planned.set_attr("adopted", adopted);
        plan.planned.set_attr("adopted_records", adopted_records);
    }

    async fn create(&self, ctx: &Context, planned: &Value, _config: &Value, diags: &mut Diagnostics) -> Option<Value> {
        let result = async {
            let id = address_of(planned)?;
            let (_, desired) = config::desired(planned)?
                .ok_or_else(|| Diagnostic::error("Records not known", "records must be known at apply."))?;
            let server = self.server_for_apply(planned)?;
            let adopt = ownership::adopt_requested(planned) == Some(true);
            let timeout = timeouts::timeout(planned, "create", DEFAULT_TIMEOUT);
            within(ctx, timeout, &format!("Could not create {}", describe(&id)), async {
                let backend = server.backend.as_ref();
                let live = backend.read(&id).await.doing(|| format!("Could not read {}", describe(&id)))?;
                let claim = ownership::claim(backend, &id, server.owner_id.as_deref()).await?;
                ownership::creating(&id, backend, live.as_ref(), &claim, adopt, planned).map_err(Failure::Refused)?;
                let stored = write_checked(backend, &id, live.as_ref(), &desired, "create").await?;
                ownership::stake(backend, &id, &claim).await?;
                Ok((live, stored))
            })
            .await
            .map(|(live, stored)| (id, live, stored))
        }
        .await;
        let (id, live, stored) = match result {
            Ok(done) => done,
            Err(diagnostic) => {
                diags.push(diagnostic);
                return None;
            }
        };
        let mut state = record_state(planned.clone(), &id, &stored);
        state.set_attr("adopted", Value::Bool(live.is_some()));
        state.set_attr("adopted_records", live.map_or(Value::Null, |l| string_set(&l.records)));
        Some(state)
    }

    async fn read(&self, ctx: &Context, state: &Value, diags: &mut Diagnostics) -> Option<Value> {
        let result = async {
            let id = address_of(state)?;
            let server = self.server_for_apply(state)?;
            let live = within(ctx, READ_TIMEOUT, &format!("Could not read {}", describe(&id)), async {
                server.backend.read(&id).await.doing(|| format!("Could not read {}", describe(&id)))
            })
            .await?;
            Ok::<_, Diagnostic>((id, live))
        }
        .await;
        match result {
            Ok((id, Some(live))) => Some(record_state(state.clone(), &id, &live)),
            Ok((id, None)) => {
                tracing::info!(rrset = %id, "record set is gone; removing it from state");
                None
            }
            // Only an answer that the set does not exist removes it; anything else keeps it.
            Err(diagnostic) => {
                diags.push(diagnostic);
                Some(state.clone())
            }
        }
    }

    async fn update(
        &self,
        ctx: &Context,
        prior: &Value,
        planned: &Value,
        _config: &Value,
        diags: &mut Diagnostics,
    ) -> Option<Value> {
        let result = async {
            let id = address_of(planned)?;
            let (_, desired) = config::desired(planned)?
                .ok_or_else(|| Diagnostic::error("Records not known", "records must be known at apply."))?;
            let expected = held(prior, &id)?;
            let server = self.server_for_apply(planned)?;
            let timeout = timeouts::timeout(planned, "update", DEFAULT_TIMEOUT);
            within(ctx, timeout, &format!("Could not update {}", describe(&id)), async {
                let backend = server.backend.as_ref();
                let claim = ownership::claim(backend, &id, server.owner_id.as_deref()).await?;
                ownership::updating(&id, &claim).map_err(Failure::Refused)?;
                let stored = write_checked(backend, &id, Some(&expected), &desired, "update").await?;
                ownership::stake(backend, &id, &claim).await?;
                Ok(stored)
            })
            .await
            .map(|stored| (id, stored))
        }
        .await;
        match result {
            Ok((id, stored)) => Some(record_state(planned.clone(), &id, &stored)),
            Err(diagnostic) => {
                diags.push(diagnostic);
                None
            }
        }
    }

    async fn delete(&self, ctx: &Context, prior: &Value, diags: &mut Diagnostics) {
        let result = async {
            let id = address_of(prior)?;
            let expected = held(prior, &id)?;
            let server = self.server_for_apply(prior)?;
            let timeout = timeouts::timeout(prior, "delete", DEFAULT_TIMEOUT);
            let on_destroy = ownership::on_destroy(prior);
            within(ctx, timeout, &format!("Could not delete {}", describe(&id)), async {
                let backend = server.backend.as_ref();
                let claim = ownership::claim(backend, &id, server.owner_id.as_deref()).await?;
                if on_destroy == OnDestroy::Release {
                    tracing::info!(rrset = %id, "releasing the adopted record set: it stays on the server");
                    return ownership::unstake(backend, &id, &claim).await;
                }
                ownership::updating(&id, &claim).map_err(Failure::Refused)?;
                let doing = || format!("Could not delete {}", describe(&id));
                match backend.read(&id).await.doing(doing)? {
                    None => {}
                    Some(_) => backend.delete(&id, &expected).await.doing(doing)?,
                }
                ownership::unstake(backend, &id, &claim).await
            })
            .await
        }
        .await;
        if let Err(diagnostic) = result {
            diags.push(diagnostic);
        }
    }

    async fn import(&self, ctx: &Context, import: &str, diags: &mut Diagnostics) -> Option<Value> {
        let result = async {
            let (dns, address) = match import.split_once(':') {
                Some((dns, rest)) => (Some(dns), rest),
                None => (None, import),
            };
            let parts: Vec<&str> = address.split('/').collect();
            let [zone, name, rtype] = parts.as_slice() else {
                return Err(Diagnostic::error(
                    "Invalid import id",
                    format!("Import by `<zone>/<name>/<type>` or `<dns block>:<zone>/<name>/<type>`, e.g. `home.example.com/grafana/A`; not {import:?}."),
                ));
            };
            let mut state = Value::null_object(&self.schema().implied_type());
            state.set_attr("zone", Value::from(*zone));
            state.set_attr("name", Value::from(*name));
            state.set_attr("type", Value::from(rtype.to_ascii_uppercase().as_str()));
            // The block is recorded by name, so a configuration naming it plans no change.
            match dns.map(str::to_string).or_else(|| self.platform.implied_dns_name()) {
                Some(dns) => state.set_attr("dns", Value::String(dns)),
                None => {
                    return Err(Diagnostic::error(
                        "Which DNS server?",
                        format!(
                            "Import with `<dns block>:{address}` when the provider has several `dns` blocks. Import \
                             reads through a provider `dns` block; a record's own `connection` is not known to it."
                        ),
                    ))
                }
            }
            let id = address_of(&state)?;
            let server = self.server_for_apply(&state)?;
            let live = within(ctx, READ_TIMEOUT, &format!("Could not import {}", describe(&id)), async {
                server.backend.read(&id).await.doing(|| format!("Could not read {}", describe(&id)))
            })
            .await?;
            let Some(live) = live else {
                return Err(Diagnostic::error(
                    "Cannot import a record set that does not exist",
                    format!("{} has no {}.", server.backend.describe(), describe(&id)),
                ));
            };
            // Imported means adopted: destroy leaves it in place unless on_destroy says delete.
            state.set_attr("adopted", Value::Bool(true));
            state.set_attr("adopted_records", string_set(&live.records));
            Ok(record_state(state, &id, &live))
        }
        .await;
        result.map_err(|d| diags.push(d)).ok()
    }
}

#[cfg(test)]
mod tests;
