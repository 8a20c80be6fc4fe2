//! Cloudflare's v4 API: `GET /zones?name=` finds a zone's id (once per zone and client),
//! `GET /zones/{id}/dns_records?name=&type=` lists a set page by page, and a write is
//! single-record calls: `POST`, `PUT` (update in place) and `DELETE` on
//! `/zones/{id}/dns_records[/{record id}]`.
//!
//! Cloudflare has no RRset object: a set is the records of one name and type, each with its
//! own id and TTL, and there are no transactions. A write therefore reads the live records,
//! checks them against what the caller expected, and plans the fewest calls from there to
//! the desired set ([`plan`]): records already right stay, a surplus record is turned into a
//! missing one in place, the rest is created or deleted. Each call is retried on its own
//! when the failure is transient (a create only after checking that the failed attempt did
//! not land); a call that fails for good after others succeeded ends the write with
//! [`DnsError::Partial`], naming what was done and what was not.
//!
//! Formats: names travel without their trailing dot (`content` of CNAME, NS, PTR and the MX
//! exchange; the `target` of SRV's `data`) and are read back absolute; MX puts its
//! preference in `priority`; SRV and CAA use the `data` object (`priority, weight, port,
//! target` and `flags, tag, value`); TXT is written as quoted 255-byte strings and read
//! quoted or not ([`rdata::canonical`] accepts both). Records are written DNS-only
//! (`proxied` left at Cloudflare's default, false): a proxied record answers with
//! Cloudflare's addresses, not with the set's values.
//!
//! TTL: written and read as Cloudflare holds it, with no translation. `1` is Cloudflare's
//! "automatic" and reads back as `1`, so a set written with TTL 1 reads back equal. Should
//! the records of one set carry different TTLs (only possible out of band), the set's TTL is
//! the lowest, which is what resolvers use (RFC 2181 §5.2), and the next write gives every
//! record the desired TTL.
//!
//! The API token is a [`SecretString`], sent only as the bearer token: never logged, never in
//! messages or `Debug` output. Nothing here knows Terraform.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};
use tokio::sync::OnceCell;

use crate::clients::deadline::retry;
use super::rdata::{self, Caa, RecordType};
use super::{json_body, Backend, DnsError, Rrset, RrsetId};
use crate::clients::error_chain;

/// The API's address unless configured otherwise.
pub const DEFAULT_BASE_URL: &str = "https://api.cloudflare.com/client/v4";
/// Records asked for per page (the documented default, and the most older accounts allow).
const PER_PAGE: u64 = 100;
/// Pages followed before giving up on a set (100 000 records at 100 a page).
const MAX_PAGES: u64 = 1000;
/// Error codes Cloudflare gives for a token that is missing, malformed, invalid or not
/// allowed: 6003/6111 (bad Authorization header), 9106 (no credentials), 9109 (invalid
/// access token), 10000 (authentication error), 10001 (unable to authenticate request).
const CREDENTIAL_CODES: [i64; 6] = [6003, 6111, 9106, 9109, 10000, 10001];
/// Error codes for an object id the API cannot route (a zone id that does not exist).
const NO_ROUTE_CODES: [i64; 3] = [7000, 7003, 1001];
/// "Record does not exist."
const RECORD_GONE: i64 = 81044;

/// One Cloudflare account's API, reached with one API token.
pub struct Cloudflare {
    base_url: String,
    api_token: SecretString,
    client: reqwest::Client,
    /// Zone name (absolute) → zone id, looked up once per zone; a failed lookup is not kept.
    zone_ids: Mutex<HashMap<String, Arc<OnceCell<String>>>>,
}

impl std::fmt::Debug for Cloudflare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cloudflare").field("base_url", &self.base_url).finish_non_exhaustive()
    }
}

/// A record as listed: its id, its value in canonical form and its TTL.
#[derive(Debug, Clone, PartialEq, Eq)]
struct LiveRecord {
    id: String,
    value: String,
    ttl: u32,
}

/// One call of a write's plan.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Create { value: String },
    /// `PUT` of record `record_id`, holding `from`, to hold `to` (the same value when only the
    /// TTL changes).
    Update { record_id: String, from: String, to: String },
    Delete { record_id: String, value: String },
}

impl Step {
    /// What the step did (`done`: "created 10.0.0.3") or would do ("delete 10.0.0.1"), for
    /// a [`DnsError::Partial`] message.
    fn describe(&self, ttl: u32, done: bool) -> String {
        let verb = |past: &str, present: &str| if done { past.to_string() } else { present.to_string() };
        match self {
            Step::Create { value } => format!("{} {value}", verb("created", "create")),
            Step::Update { from, to, .. } if from == to => format!("set the TTL of {to} to {ttl}"),
            Step::Update { from, to, .. } => format!("{} {from} to {to}", verb("updated", "update")),
            Step::Delete { value, .. } => format!("{} {value}", verb("deleted", "delete")),
        }
    }
}

/// The fewest calls that turn `live` into `desired`: records with a desired value and TTL
/// stay; a record with a desired value but another TTL is updated in place; surplus records
/// are updated in place into missing values (in sorted order, pairwise); missing values left
/// over are created, surplus records left over deleted. Creates come first, then updates,
/// then deletes, so that mid-way the name never answers fewer of the desired values than
/// before. A value held twice (two spellings of one canonical value) keeps one record.
fn plan(live: &[LiveRecord], desired: &Rrset) -> Vec<Step> {
    let wanted: BTreeSet<&str> = desired.records.iter().map(String::as_str).collect();
    let mut live: Vec<&LiveRecord> = live.iter().collect();
    live.sort_by(|a, b| (&a.value, &a.id).cmp(&(&b.value, &b.id)));

    let mut covered: BTreeSet<&str> = BTreeSet::new();
    let mut claimed = vec![false; live.len()];
    // Exact matches first, so that a right record is kept rather than a wrong-TTL twin.
    for (i, record) in live.iter().enumerate() {
        if record.ttl == desired.ttl && wanted.contains(record.value.as_str()) && covered.insert(&record.value) {
            claimed[i] = true;
        }
    }
    let mut updates = Vec::new();
    for (i, record) in live.iter().enumerate() {
        if !claimed[i] && wanted.contains(record.value.as_str()) && covered.insert(&record.value) {
            claimed[i] = true;
            updates.push(Step::Update { record_id: record.id.clone(), from: record.value.clone(), to: record.value.clone() });
        }
    }
    let surplus: Vec<&LiveRecord> = live.iter().zip(&claimed).filter(|(_, c)| !**c).map(|(r, _)| *r).collect();
    let missing: Vec<&str> = wanted.iter().copied().filter(|v| !covered.contains(v)).collect();

    let pairs = surplus.len().min(missing.len());
    for (record, value) in surplus.iter().zip(&missing) {
        updates.push(Step::Update { record_id: record.id.clone(), from: record.value.clone(), to: value.to_string() });
    }
    let mut steps: Vec<Step> = missing[pairs..].iter().map(|v| Step::Create { value: v.to_string() }).collect();
    steps.extend(updates);
    steps.extend(surplus[pairs..].iter().map(|r| Step::Delete { record_id: r.id.clone(), value: r.value.clone() }));
    steps
}

/// The set the live records make up, `None` when there are none.
fn to_rrset(live: &[LiveRecord]) -> Option<Rrset> {
    let ttl = live.iter().map(|r| r.ttl).min()?;
    Some(Rrset::new(ttl, live.iter().map(|r| r.value.clone()).collect()))
}

/// A name as Cloudflare writes it: without the trailing dot (the root stays `.`).
fn bare(name: &str) -> &str {
    if name == "." {
        name
    } else {
        name.strip_suffix('.').unwrap_or(name)
    }
}

/// The JSON body that creates (or, with `PUT`, overwrites a record into) `value`.
fn record_body(id: &RrsetId, value: &str, ttl: u32) -> Result<Value, String> {
    let mut body = json!({ "type": id.rtype.as_str(), "name": bare(&id.name), "ttl": ttl });
    match id.rtype {
        RecordType::A | RecordType::Aaaa => body["content"] = json!(value),
        RecordType::Cname | RecordType::Ns | RecordType::Ptr => body["content"] = json!(bare(value)),
        RecordType::Txt => body["content"] = json!(rdata::txt_presentation(value)),
        RecordType::Mx => {
            let (numbers, exchange) = rdata::split_numbers(RecordType::Mx, value);
            let [preference] = numbers[..] else { return Err(format!("{value:?} is not an MX value")) };
            body["content"] = json!(bare(exchange));
            body["priority"] = json!(preference);
        }
        RecordType::Srv => {
            let (numbers, target) = rdata::split_numbers(RecordType::Srv, value);
            let [priority, weight, port] = numbers[..] else { return Err(format!("{value:?} is not an SRV value")) };
            body["data"] = json!({ "priority": priority, "weight": weight, "port": port, "target": bare(target) });
        }
        RecordType::Caa => {
            let caa = Caa::parse(value)?;
            body["data"] = json!({ "flags": caa.flags, "tag": caa.tag, "value": caa.value });
        }
    }
    Ok(body)
}

/// The canonical value of a listed record of type `rtype`.
fn record_value(rtype: RecordType, record: &Value) -> Result<String, String> {
    let content = record.get("content").and_then(Value::as_str);
    let data = record.get("data").filter(|d| d.is_object());
    let number = |from: &Value, key: &str| {
        from.get(key).and_then(Value::as_u64).ok_or_else(|| format!("no numeric {key:?} in {from}"))
    };
    let text = match (rtype, data) {
        (RecordType::Mx, _) => {
            let exchange = content.ok_or("an MX record without content")?;
            format!("{} {exchange}", number(record, "priority")?)
        }
        (RecordType::Srv, Some(data)) => {
            let target = data.get("target").and_then(Value::as_str).ok_or("SRV data without a target")?;
            let (priority, weight, port) = (number(data, "priority")?, number(data, "weight")?, number(data, "port")?);
            format!("{priority} {weight} {port} {target}")
        }
        // Without `data`, Cloudflare's SRV content is "weight port target", priority apart.
        (RecordType::Srv, None) => format!("{} {}", number(record, "priority")?, content.ok_or("an SRV record without content")?),
        (RecordType::Caa, Some(data)) => {
            let tag = data.get("tag").and_then(Value::as_str).ok_or("CAA data without a tag")?;
            let value = data.get("value").and_then(Value::as_str).ok_or("CAA data without a value")?;
            format!("{} {tag} {}", number(data, "flags")?, rdata::quote(value))
        }
        _ => content.ok_or_else(|| format!("a {rtype} record without content"))?.to_string(),
    };
    rdata::canonical(rtype, &text)
}

/// The `{"code": N, "message": "..."}` entries of an answer's `errors`, with their nested
/// `error_chain`, as "code N: message" texts, and every code.
fn api_errors(body: &Value) -> (Vec<i64>, Vec<String>) {
    fn walk(errors: &Value, codes: &mut Vec<i64>, texts: &mut Vec<String>) {
        for error in errors.as_array().into_iter().flatten() {
            let code = error.get("code").and_then(Value::as_i64);
            let message = error.get("message").and_then(Value::as_str).unwrap_or("(no message)");
            match code {
                Some(code) => {
                    codes.push(code);
                    texts.push(format!("code {code}: {message}"));
                }
                None => texts.push(message.to_string()),
            }
            if let Some(chain) = error.get("error_chain") {
                walk(chain, codes, texts);
            }
        }
    }
    let (mut codes, mut texts) = (Vec::new(), Vec::new());
    if let Some(errors) = body.get("errors") {
        walk(errors, &mut codes, &mut texts);
    }
    (codes, texts)
}

/// A failed answer as a [`DnsError`] quoting Cloudflare's codes and messages, and its codes.
/// 429 and 5xx are transient; 401/403 and the credential codes are the token's fault; a
/// zone id the API cannot route, or any other 404 but "record does not exist", means the
/// zone is gone; anything else is a refusal.
fn classify(server: &str, zone: &str, status: u16, body: &str) -> (Vec<i64>, DnsError) {
    let parsed = serde_json::from_str::<Value>(body).ok();
    let (codes, texts) = parsed.as_ref().map(api_errors).unwrap_or_default();
    let detail = if texts.is_empty() {
        let excerpt: String = body.trim().chars().take(300).collect();
        if excerpt.is_empty() {
            "(empty answer)".to_string()
        } else {
            excerpt
        }
    } else {
        texts.join("; ")
    };
    let message = format!("HTTP {status}: {detail}");
    let server = server.to_string();
    let error = if status == 429 || status >= 500 {
        DnsError::Busy { server, what: message }
    } else if status == 401 || status == 403 || codes.iter().any(|c| CREDENTIAL_CODES.contains(c)) {
        DnsError::Credentials {
            server,
            message: format!("{message} (check api_token: it needs Zone Read and DNS Edit permission on the zone)"),
        }
    } else if codes.iter().any(|c| NO_ROUTE_CODES.contains(c)) || (status == 404 && !codes.contains(&RECORD_GONE)) {
        DnsError::ZoneNotServed { server, zone: zone.to_string(), message }
    } else {
        DnsError::Refused { server, message }
    };
    (codes, error)
}

/// A failed call: the error and Cloudflare's codes, so that callers can tell "record does
/// not exist" from other refusals.
struct Failure {
    codes: Vec<i64>,
    error: DnsError,
}

impl From<Failure> for DnsError {
    fn from(failure: Failure) -> DnsError {
        failure.error
    }
}

impl From<DnsError> for Failure {
    fn from(error: DnsError) -> Failure {
        Failure { codes: Vec::new(), error }
    }
}

impl Cloudflare {
    /// `base_url` is the API's base (default [`DEFAULT_BASE_URL`]); `api_token` an API token
    /// with Zone Read and DNS Edit permission on the zones.
    pub fn new(base_url: Option<&str>, api_token: SecretString) -> Result<Cloudflare, String> {
        let base_url = base_url.map(str::trim).filter(|u| !u.is_empty()).unwrap_or(DEFAULT_BASE_URL);
        if !(base_url.starts_with("https://") || base_url.starts_with("http://")) {
            return Err(format!("the Cloudflare base URL {base_url:?} is not an http(s):// URL"));
        }
        if api_token.expose_secret().trim().is_empty() {
            return Err("the Cloudflare API token is empty".to_string());
        }
        let client = crate::clients::http::client()?;
        Ok(Cloudflare {
            base_url: base_url.trim_end_matches('/').to_string(),
            api_token,
            client,
            zone_ids: Mutex::default(),
        })
    }

    fn records_url(&self, zone_id: &str) -> String {
        format!("{}/zones/{zone_id}/dns_records", self.base_url)
    }

    /// Sends a request and returns the answer's JSON when Cloudflare reports success.
    async fn send(&self, request: reqwest::RequestBuilder, zone: &str) -> Result<Value, Failure> {
        let server = &self.base_url;
        let response = request
            .bearer_auth(self.api_token.expose_secret())
            .header("Accept", "application/json")
            .send()
            .await
            .map_err(|e| DnsError::Unreachable { server: server.clone(), message: error_chain(&e) })?;
        let status = response.status().as_u16();
        if !(200..300).contains(&status) {
            let body = response.text().await.unwrap_or_default();
            let (codes, error) = classify(server, zone, status, &body);
            return Err(Failure { codes, error });
        }
        let body = json_body(response, server).await?;
        if body.get("success").and_then(Value::as_bool) == Some(false) {
            let (codes, error) = classify(server, zone, status, &body.to_string());
            return Err(Failure { codes, error });
        }
        Ok(body)
    }

    /// Sends a JSON body with `method` to `url`.
    async fn send_json(&self, method: reqwest::Method, url: String, body: &Value, zone: &str) -> Result<Value, Failure> {
        let request = self.client.request(method, url).header("Content-Type", "application/json").body(body.to_string());
        self.zone_scoped(zone, self.send(request, zone).await)
    }

    /// Forgets a cached zone id that the API no longer routes (the zone was deleted and
    /// perhaps added again under a new id), so that the next operation looks it up anew.
    fn zone_scoped<T>(&self, zone: &str, result: Result<T, Failure>) -> Result<T, Failure> {
        if let Err(Failure { error: DnsError::ZoneNotServed { .. }, .. }) = &result {
            self.zone_ids.lock().unwrap_or_else(|p| p.into_inner()).remove(zone);
        }
        result
    }

    /// The zone's id, looked up once per zone (concurrent first uses share one lookup).
    async fn zone_id(&self, zone: &str) -> Result<String, DnsError> {
        let cell = self.zone_ids.lock().unwrap_or_else(|p| p.into_inner()).entry(zone.to_string()).or_default().clone();
        cell.get_or_try_init(|| self.lookup_zone(zone)).await.cloned()
    }

    async fn lookup_zone(&self, zone: &str) -> Result<String, DnsError> {
        let name = bare(zone);
        let request = self.client.get(format!("{}/zones", self.base_url)).query(&[("name", name), ("per_page", "50")]);
        let body = self.send(request, zone).await?;
        let zones = body.get("result").and_then(Value::as_array).ok_or_else(|| DnsError::Protocol {
            server: self.base_url.clone(),
            message: format!("GET /zones?name={name}: no result list"),
        })?;
        let named: Vec<&Value> =
            zones.iter().filter(|z| z.get("name").and_then(Value::as_str).is_some_and(|n| n.eq_ignore_ascii_case(name))).collect();
        // One name can be held by several accounts' zones; an active one is the one served.
        let chosen = named.iter().find(|z| z.get("status").and_then(Value::as_str) == Some("active")).or(named.first());
        chosen.and_then(|z| z.get("id").and_then(Value::as_str)).map(str::to_string).ok_or_else(|| DnsError::ZoneNotServed {
            server: self.base_url.clone(),
            zone: zone.to_string(),
            message: format!("no zone named {name} is visible to this API token (GET /zones?name={name} found none)"),
        })
    }

    /// The zone's id and the set's live records, every page of them.
    async fn live(&self, id: &RrsetId) -> Result<(String, Vec<LiveRecord>), DnsError> {
        let zone_id = self.zone_id(&id.zone).await?;
        let name = bare(&id.name);
        let mut records = Vec::new();
        let mut page = 1;
        loop {
            let query = [
                ("name", name.to_string()),
                ("type", id.rtype.as_str().to_string()),
                ("per_page", PER_PAGE.to_string()),
                ("page", page.to_string()),
            ];
            let request = self.client.get(self.records_url(&zone_id)).query(&query);
            let body = self.zone_scoped(&id.zone, self.send(request, &id.zone).await)?;
            let protocol = |message: String| DnsError::Protocol { server: self.base_url.clone(), message };
            let listed = body.get("result").and_then(Value::as_array).ok_or_else(|| protocol(format!("listing {id}: no result list")))?;
            for record in listed {
                // The filter is the server's; a record of another name or type is not ours.
                let of_name = record.get("name").and_then(Value::as_str).is_some_and(|n| bare(n).eq_ignore_ascii_case(name));
                if !of_name || record.get("type").and_then(Value::as_str) != Some(id.rtype.as_str()) {
                    continue;
                }
                let record_id = record.get("id").and_then(Value::as_str).ok_or_else(|| protocol(format!("a record of {id} without id")))?;
                let value = record_value(id.rtype, record).map_err(|m| protocol(format!("record {record_id} of {id}: {m}")))?;
                let ttl = record.get("ttl").and_then(Value::as_u64).ok_or_else(|| protocol(format!("record {record_id} of {id} has no ttl")))?;
                records.push(LiveRecord { id: record_id.to_string(), value, ttl: u32::try_from(ttl).unwrap_or(u32::MAX) });
            }
            let total_pages = body.pointer("/result_info/total_pages").and_then(Value::as_u64).unwrap_or(1);
            if listed.is_empty() || page >= total_pages {
                break;
            }
            if page >= MAX_PAGES {
                return Err(protocol(format!("{id} has more than {MAX_PAGES} pages of records")));
            }
            page += 1;
        }
        Ok((zone_id, records))
    }

    /// The live records, after checking that they are the set the caller expected.
    async fn live_as_expected(&self, id: &RrsetId, expected: Option<&Rrset>) -> Result<(String, Vec<LiveRecord>), DnsError> {
        let (zone_id, live) = retry(&format!("read {id}"), || self.live(id)).await?;
        let found = to_rrset(&live);
        let same = match (&found, expected) {
            (None, None) => true,
            (Some(found), Some(expected)) => found.same_records(expected),
            _ => false,
        };
        if !same {
            let found = found.map_or_else(|| "no records".to_string(), |s| s.to_string());
            return Err(DnsError::Changed { server: self.base_url.clone(), id: id.to_string(), found });
        }
        Ok((zone_id, live))
    }

    /// Runs the plan's steps in order; a failure after some succeeded is a
    /// [`DnsError::Partial`] naming both, a failure of the first step is itself.
    async fn apply(&self, id: &RrsetId, zone_id: &str, steps: &[Step], ttl: u32) -> Result<(), DnsError> {
        let mut done = Vec::new();
        for (i, step) in steps.iter().enumerate() {
            if let Err(error) = self.step(id, zone_id, step, ttl).await {
                if done.is_empty() {
                    return Err(error);
                }
                let mut not_done = vec![format!("{} ({error})", step.describe(ttl, false))];
                not_done.extend(steps[i + 1..].iter().map(|s| s.describe(ttl, false)));
                return Err(DnsError::Partial {
                    server: self.base_url.clone(),
                    message: format!("{id}: {}; not done: {}", done.join(", "), not_done.join(", ")),
                });
            }
            done.push(step.describe(ttl, true));
        }
        Ok(())
    }

    /// One call of a plan, retried while the failure is transient.
    async fn step(&self, id: &RrsetId, zone_id: &str, step: &Step, ttl: u32) -> Result<(), DnsError> {
        let refused = |message: String| DnsError::Refused { server: self.base_url.clone(), message };
        match step {
            Step::Create { value } => {
                let body = record_body(id, value, ttl).map_err(refused)?;
                let mut first = true;
                retry(&format!("create {id} {value}"), || {
                    let retry = !std::mem::take(&mut first);
                    let body = &body;
                    async move {
                        // A create that failed in transit may have landed: creating it again
                        // would make a duplicate (or fail with "record already exists").
                        if retry && self.live(id).await?.1.iter().any(|r| &r.value == value && r.ttl == ttl) {
                            return Ok(());
                        }
                        self.send_json(reqwest::Method::POST, self.records_url(zone_id), body, &id.zone).await.map(|_| ()).map_err(DnsError::from)
                    }
                })
                .await
            }
            Step::Update { record_id, from, to } => {
                let body = record_body(id, to, ttl).map_err(refused)?;
                let url = format!("{}/{record_id}", self.records_url(zone_id));
                retry(&format!("update {id} {from} to {to}"), || async {
                    match self.send_json(reqwest::Method::PUT, url.clone(), &body, &id.zone).await {
                        Ok(_) => Ok(()),
                        Err(failure) if failure.codes.contains(&RECORD_GONE) => Err(DnsError::Changed {
                            server: self.base_url.clone(),
                            id: id.to_string(),
                            found: format!("the record holding {from} deleted meanwhile ({})", failure.error),
                        }),
                        Err(failure) => Err(failure.error),
                    }
                })
                .await
            }
            Step::Delete { record_id, value } => {
                let url = format!("{}/{record_id}", self.records_url(zone_id));
                retry(&format!("delete {id} {value}"), || async {
                    let request = self.client.delete(url.clone());
                    match self.zone_scoped(&id.zone, self.send(request, &id.zone).await) {
                        Ok(_) => Ok(()),
                        // Gone already (an earlier attempt landed, or someone else deleted it).
                        Err(failure) if failure.codes.contains(&RECORD_GONE) => Ok(()),
                        Err(failure) => Err(failure.error),
                    }
                })
                .await
            }
        }
    }
}

#[async_trait]
impl Backend for Cloudflare {
    fn describe(&self) -> String {
        format!("Cloudflare API {}", self.base_url)
    }

    async fn read(&self, id: &RrsetId) -> Result<Option<Rrset>, DnsError> {
        let (_, live) = retry(&format!("read {id}"), || self.live(id)).await?;
        Ok(to_rrset(&live))
    }

    async fn write(&self, id: &RrsetId, expected: Option<&Rrset>, desired: &Rrset) -> Result<(), DnsError> {
        let (zone_id, live) = self.live_as_expected(id, expected).await?;
        let steps = plan(&live, desired);
        self.apply(id, &zone_id, &steps, desired.ttl).await
    }

    async fn delete(&self, id: &RrsetId, expected: &Rrset) -> Result<(), DnsError> {
        let (zone_id, live) = self.live_as_expected(id, Some(expected)).await?;
        let steps: Vec<Step> = live.iter().map(|r| Step::Delete { record_id: r.id.clone(), value: r.value.clone() }).collect();
        self.apply(id, &zone_id, &steps, expected.ttl).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live(id: &str, value: &str, ttl: u32) -> LiveRecord {
        LiveRecord { id: id.to_string(), value: value.to_string(), ttl }
    }

    fn set(ttl: u32, values: &[&str]) -> Rrset {
        Rrset::new(ttl, values.iter().map(|v| v.to_string()).collect())
    }

    fn update(record_id: &str, from: &str, to: &str) -> Step {
        Step::Update { record_id: record_id.into(), from: from.into(), to: to.into() }
    }

    #[test]
    fn plan_keeps_what_is_right_and_updates_in_place() {
        let records = [live("r1", "10.0.0.1", 300), live("r2", "10.0.0.2", 300), live("r3", "10.0.0.3", 300)];
        // One value shared: the other two records become the two new values in place.
        let steps = plan(&records, &set(300, &["10.0.0.3", "10.0.0.4", "10.0.0.5"]));
        assert_eq!(steps, vec![update("r1", "10.0.0.1", "10.0.0.4"), update("r2", "10.0.0.2", "10.0.0.5")]);
        assert_eq!(plan(&records, &set(300, &["10.0.0.1", "10.0.0.2", "10.0.0.3"])), vec![]);
        // More wanted than live: creates first; fewer: deletes last.
        let grow = plan(&records[..1], &set(300, &["10.0.0.7", "10.0.0.8"]));
        assert_eq!(grow, vec![Step::Create { value: "10.0.0.8".into() }, update("r1", "10.0.0.1", "10.0.0.7")]);
        let shrink = plan(&records, &set(300, &["10.0.0.9"]));
        assert_eq!(
            shrink,
            vec![
                update("r1", "10.0.0.1", "10.0.0.9"),
                Step::Delete { record_id: "r2".into(), value: "10.0.0.2".into() },
                Step::Delete { record_id: "r3".into(), value: "10.0.0.3".into() },
            ]
        );
        assert_eq!(plan(&[], &set(60, &["a."])), vec![Step::Create { value: "a.".into() }]);
    }

    #[test]
    fn plan_changes_a_ttl_in_place_and_prefers_the_right_twin() {
        let records = [live("r1", "10.0.0.1", 300), live("r2", "10.0.0.2", 60)];
        assert_eq!(plan(&records, &set(300, &["10.0.0.1", "10.0.0.2"])), vec![update("r2", "10.0.0.2", "10.0.0.2")]);
        // Two records with one canonical value (say TXT quoted and not): the one with the
        // right TTL stays, its twin goes.
        let twins = [live("a", "x", 60), live("b", "x", 300)];
        assert_eq!(plan(&twins, &set(300, &["x"])), vec![Step::Delete { record_id: "a".into(), value: "x".into() }]);
        assert_eq!(update("r", "x", "x").describe(120, true), "set the TTL of x to 120");
        assert_eq!(update("r", "x", "y").describe(120, false), "update x to y");
        assert_eq!(update("r", "x", "y").describe(120, true), "updated x to y");
    }

    #[test]
    fn sets_take_the_lowest_ttl_and_keep_cloudflares_automatic() {
        assert_eq!(to_rrset(&[]), None);
        let auto = to_rrset(&[live("a", "10.0.0.2", 1), live("b", "10.0.0.1", 1)]).unwrap();
        assert_eq!(auto, set(1, &["10.0.0.1", "10.0.0.2"]));
        assert_eq!(to_rrset(&[live("a", "x", 600), live("b", "y", 120)]).unwrap().ttl, 120);
    }

    #[test]
    fn bodies_use_content_priority_and_data_as_cloudflare_does() {
        let id = |t| RrsetId::new("acc.test", "www", t).unwrap();
        assert_eq!(
            record_body(&id(RecordType::A), "10.0.0.1", 1).unwrap(),
            json!({ "type": "A", "name": "www.acc.test", "ttl": 1, "content": "10.0.0.1" })
        );
        assert_eq!(record_body(&id(RecordType::Cname), "ingress.acc.test.", 300).unwrap()["content"], "ingress.acc.test");
        let mx = record_body(&id(RecordType::Mx), "10 mail.acc.test.", 300).unwrap();
        assert_eq!((mx["content"].as_str(), mx["priority"].as_u64()), (Some("mail.acc.test"), Some(10)));
        let srv = record_body(&id(RecordType::Srv), "10 5 5060 sip.acc.test.", 300).unwrap();
        assert_eq!(srv["data"], json!({ "priority": 10, "weight": 5, "port": 5060, "target": "sip.acc.test" }));
        assert!(srv.get("content").is_none());
        let caa = record_body(&id(RecordType::Caa), "0 issue \"letsencrypt.org\"", 300).unwrap();
        assert_eq!(caa["data"], json!({ "flags": 0, "tag": "issue", "value": "letsencrypt.org" }));
        let long = "y".repeat(300);
        let txt = record_body(&id(RecordType::Txt), &long, 300).unwrap();
        assert_eq!(txt["content"], format!("\"{}\" \"{}\"", "y".repeat(255), "y".repeat(45)));
        assert!(record_body(&id(RecordType::Mx), "mail.acc.test.", 300).is_err());
        let apex = RrsetId::new("acc.test", "@", RecordType::Ns).unwrap();
        assert_eq!(record_body(&apex, "ns.acc.test.", 300).unwrap()["name"], "acc.test");
    }

    #[test]
    fn listed_records_read_back_canonical() {
        let value = |t, record: Value| record_value(t, &record).unwrap();
        assert_eq!(value(RecordType::Cname, json!({ "content": "Ingress.acc.test" })), "ingress.acc.test.");
        assert_eq!(value(RecordType::Aaaa, json!({ "content": "2001:DB8:0::1" })), "2001:db8::1");
        assert_eq!(value(RecordType::Mx, json!({ "content": "mail.acc.test", "priority": 10 })), "10 mail.acc.test.");
        let srv = json!({ "content": "5 5060 sip.acc.test", "priority": 10,
                          "data": { "priority": 10, "weight": 5, "port": 5060, "target": "sip.acc.test" } });
        assert_eq!(value(RecordType::Srv, srv), "10 5 5060 sip.acc.test.");
        assert_eq!(value(RecordType::Srv, json!({ "content": "5 5060 sip.acc.test", "priority": 10 })), "10 5 5060 sip.acc.test.");
        let caa = json!({ "content": "0 issue \"letsencrypt.org\"", "data": { "flags": 0, "tag": "issue", "value": "letsencrypt.org" } });
        assert_eq!(value(RecordType::Caa, caa), "0 issue \"letsencrypt.org\"");
        assert_eq!(value(RecordType::Caa, json!({ "content": "128 iodef \"mailto:a@b.c\"" })), "128 iodef \"mailto:a@b.c\"");
        // TXT quoted (in one or several strings) or not is one text.
        assert_eq!(value(RecordType::Txt, json!({ "content": "v=spf1 -all" })), "v=spf1 -all");
        assert_eq!(value(RecordType::Txt, json!({ "content": "\"v=spf1 \" \"-all\"" })), "v=spf1 -all");
        assert!(record_value(RecordType::Mx, &json!({ "content": "mail.acc.test" })).is_err());
        assert!(record_value(RecordType::A, &json!({ "content": "nope" })).is_err());
    }

    #[test]
    fn failures_quote_cloudflares_codes_and_map_to_kinds() {
        let server = "https://api.test/client/v4";
        let kind = |status, body: &str| classify(server, "acc.test.", status, body);

        let (codes, auth) = kind(403, r#"{"success":false,"errors":[{"code":10000,"message":"Authentication error"}],"messages":[],"result":null}"#);
        assert_eq!(codes, vec![10000]);
        assert!(matches!(auth, DnsError::Credentials { .. }), "{auth:?}");
        assert!(auth.to_string().contains("HTTP 403: code 10000: Authentication error"), "{auth}");
        let (codes, header) = kind(
            400,
            r#"{"success":false,"errors":[{"code":6003,"message":"Invalid request headers","error_chain":[{"code":6111,"message":"Invalid format for Authorization header"}]}]}"#,
        );
        assert_eq!(codes, vec![6003, 6111]);
        assert!(matches!(header, DnsError::Credentials { .. }));
        assert!(header.to_string().contains("code 6003: Invalid request headers; code 6111: Invalid format for Authorization header"));

        let (_, busy) = kind(429, r#"{"success":false,"errors":[{"code":971,"message":"Please wait and consider throttling your request speed"}]}"#);
        assert!(busy.is_transient() && busy.to_string().contains("code 971"), "{busy}");
        let (_, edge) = kind(502, "<html><body>502 Bad Gateway</body></html>");
        assert!(edge.is_transient() && edge.to_string().contains("502 Bad Gateway"), "{edge}");

        let (_, zone) = kind(404, r#"{"success":false,"errors":[{"code":7003,"message":"Could not route to /zones/x/dns_records, perhaps your object identifier is invalid?"},{"code":7000,"message":"No route for that URI"}]}"#);
        assert!(matches!(zone, DnsError::ZoneNotServed { .. }), "{zone:?}");
        let (codes, gone) = kind(404, r#"{"success":false,"errors":[{"code":81044,"message":"Record does not exist."}]}"#);
        assert_eq!(codes, vec![RECORD_GONE]);
        assert!(matches!(gone, DnsError::Refused { .. }), "{gone:?}");
        let (_, invalid) = kind(400, r#"{"success":false,"errors":[{"code":9005,"message":"Content for A record must be a valid IPv4 address."}]}"#);
        assert!(matches!(invalid, DnsError::Refused { .. }));
        assert!(invalid.to_string().contains("HTTP 400: code 9005: Content for A record must be a valid IPv4 address."), "{invalid}");
        let (_, empty) = kind(400, "");
        assert!(empty.to_string().contains("HTTP 400: (empty answer)"), "{empty}");
    }

    #[test]
    fn the_token_stays_out_of_debug_output() {
        let token = "cf-token-0123456789abcdef";
        let client = Cloudflare::new(None, SecretString::from(token)).unwrap();
        let debug = format!("{client:?}");
        assert!(!debug.contains(token), "{debug}");
        assert!(debug.contains(DEFAULT_BASE_URL), "{debug}");
        assert_eq!(client.describe(), format!("Cloudflare API {DEFAULT_BASE_URL}"));
        let custom = Cloudflare::new(Some("http://127.0.0.1:9/client/v4/"), SecretString::from(token)).unwrap();
        assert_eq!(custom.base_url, "http://127.0.0.1:9/client/v4");
        assert!(Cloudflare::new(Some("api.cloudflare.com"), SecretString::from(token)).unwrap_err().contains("http"));
        assert!(Cloudflare::new(None, SecretString::from(" ")).unwrap_err().contains("empty"));
    }
}
