//! A stand-in for Cloudflare's v4 DNS API, which the tests cannot reach (no account, no
//! network from the test machines). It exists only for that reason: everything it answers
//! imitates the documented API, and tests that use it say "standin" in their names so that
//! nobody mistakes them for tests against Cloudflare.
//!
//! [`CloudflareStandIn::start`] serves HTTP/1.1 on `127.0.0.1:<free port>` from a background
//! thread until dropped, under [`CloudflareStandIn::base_url`] (`http://127.0.0.1:<port>/client/v4`).
//! It holds zones and records in memory and implements:
//!
//! - `GET /zones?name=&status=&page=&per_page=` (20 a page by default, at most 50);
//! - `GET /zones/{zone_id}`;
//! - `GET /zones/{zone_id}/dns_records?name=&type=&content=&page=&per_page=` (exact,
//!   case-insensitive name match; 100 a page by default, at most the stand-in's page limit,
//!   100 unless started with [`CloudflareStandIn::start_with_max_per_page`]; a larger
//!   `per_page` is clamped and `result_info.per_page` says so);
//! - `POST /zones/{zone_id}/dns_records`, `GET`/`PUT`/`PATCH`/`DELETE
//!   /zones/{zone_id}/dns_records/{record_id}`.
//!
//! Answers have Cloudflare's envelope: `success`, `errors` (`[{code, message}]`, sometimes
//! with an `error_chain`), `messages`, `result`, and `result_info {page, per_page, count,
//! total_count, total_pages}` on lists. Records carry `id` (32 hex digits), `zone_id`,
//! `zone_name`, `name` (absolute, lower-case, no trailing dot), `type`, `content`,
//! `proxiable`, `proxied`, `ttl` (1 is "automatic"), `locked`, `meta`, `comment`, `tags`,
//! `created_on`, `modified_on`, and as Cloudflare does: MX `priority` beside `content` (the
//! exchange); SRV `data {priority, weight, port, target}` with `content` "weight port target"
//! and `priority`; CAA `data {flags, tag, value}` with `content` `flags tag "value"`. Names in
//! requests may be relative (`www`, `@`) and lose a trailing dot, as with Cloudflare; TXT
//! content is stored as given (quoted or not).
//!
//! Failures, with the codes Cloudflare is seen to use: no `Authorization` header → 400
//! code 9106; a malformed one → 400 code 6003 with error_chain 6111; a wrong bearer token →
//! 403 code 10000 "Authentication error" (Cloudflare answers 403 for this code, not 401);
//! an unknown zone id → 404 codes 7003 and 7000; an unknown record id → 404 code 81044
//! "Record does not exist."; A content that is not IPv4 → 400 code 9005; an identical record
//! → 400 code 81057; a CNAME beside other records (or records beside a CNAME) → 400 code
//! 81053. The stand-in's own picks, where the real code is not known here: 9006 (AAAA),
//! 9007 (CNAME/NS/PTR/MX names), 9000 (record name), 9021 (TTL not 1 or 60..=86400), 9100
//! (TXT over 2048 characters or empty), 9101 (MX priority, SRV/CAA `data`), 9004 (type),
//! 9207 (body not JSON), 7001 (method), 10002 (injected 500).
//!
//! Fault injection: [`CloudflareStandIn::fail_next`] (any request), [`CloudflareStandIn::fail_next_of`]
//! (one method) answer the next n requests with a status instead of handling them — 429 with
//! code 971 and `Retry-After: 1`, 502/503/504 with the HTML page Cloudflare's edge sends,
//! other statuses with a JSON envelope; [`CloudflareStandIn::fail_next_after_applying`] handles
//! the request first (the change is made) and then answers the failure, as a reply lost in
//! transit would look. Every request is logged ([`CloudflareStandIn::requests`]) with its
//! answer's status; [`StandInRequest::route`] names it with ids replaced, so tests can assert
//! exactly which calls a client made.
//!
//! Out-of-band changes (someone else editing the zone): [`CloudflareStandIn::put_record`],
//! [`CloudflareStandIn::put_record_json`], [`CloudflareStandIn::delete_records`],
//! [`CloudflareStandIn::remove_zone`]; they are not logged as requests.

use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, Mutex, MutexGuard};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};

use super::background::Background;

/// The path under which the API lives, as on `api.cloudflare.com`.
pub const STANDIN_API_PREFIX: &str = "/client/v4";
/// Records a page unless asked otherwise, and the page limit unless started with another.
pub const STANDIN_DEFAULT_PER_PAGE: usize = 100;
const ZONES_DEFAULT_PER_PAGE: usize = 20;
const ZONES_MAX_PER_PAGE: usize = 50;
const TXT_MAX_CHARS: usize = 2048;

/// One request the stand-in answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StandInRequest {
    pub method: String,
    /// The path under the API prefix, e.g. `/zones/<id>/dns_records`.
    pub path: String,
    /// The raw query string ('' when none).
    pub query: String,
    /// The status answered.
    pub status: u16,
}

impl StandInRequest {
    /// Method and path with the zone and record ids replaced, e.g.
    /// `PUT /zones/{zone}/dns_records/{record}` or `GET /zones`.
    pub fn route(&self) -> String {
        let mut segments: Vec<&str> = self.path.trim_matches('/').split('/').collect();
        if segments.first() == Some(&"zones") {
            if segments.len() > 1 {
                segments[1] = "{zone}";
            }
            if segments.len() > 3 {
                segments[3] = "{record}";
            }
        }
        format!("{} /{}", self.method, segments.join("/"))
    }

    /// A query parameter, decoded.
    pub fn param(&self, key: &str) -> Option<String> {
        parse_query(&self.query).remove(key)
    }

    /// Whether the request changes something (anything but `GET`).
    pub fn is_change(&self) -> bool {
        self.method != "GET"
    }
}

impl fmt::Display for StandInRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let query = if self.query.is_empty() { String::new() } else { format!("?{}", self.query) };
        write!(f, "{} {}{query} -> {}", self.method, self.path, self.status)
    }
}

#[derive(Debug, Clone)]
struct Fault {
    method: Option<String>,
    status: u16,
    remaining: usize,
    after_applying: bool,
}

#[derive(Debug, Clone)]
struct Record {
    id: String,
    name: String,
    rtype: String,
    content: String,
    priority: Option<u64>,
    data: Option<Value>,
    ttl: u64,
    proxied: bool,
    comment: Value,
    tags: Value,
    created_on: String,
    modified_on: String,
}

#[derive(Debug)]
struct Zone {
    id: String,
    name: String,
    created_on: String,
    records: Vec<Record>,
}

#[derive(Debug)]
struct State {
    token: String,
    max_per_page: usize,
    zones: Vec<Zone>,
    faults: Vec<Fault>,
    log: Vec<StandInRequest>,
}

/// A failure answer: status and `(code, message)` errors.
struct ApiError {
    status: u16,
    errors: Vec<Value>,
}

impl ApiError {
    fn new(status: u16, code: i64, message: impl Into<String>) -> ApiError {
        ApiError { status, errors: vec![json!({ "code": code, "message": message.into() })] }
    }

    fn bad_request(code: i64, message: impl Into<String>) -> ApiError {
        ApiError::new(400, code, message)
    }

    fn no_route(path: &str) -> ApiError {
        ApiError {
            status: 404,
            errors: vec![
                json!({ "code": 7003, "message": format!("Could not route to {path}, perhaps your object identifier is invalid?") }),
                json!({ "code": 7000, "message": "No route for that URI" }),
            ],
        }
    }

    fn record_gone() -> ApiError {
        ApiError::new(404, 81044, "Record does not exist.")
    }
}

/// What a handled request answers.
struct Answer {
    status: u16,
    body: String,
    content_type: &'static str,
    retry_after: Option<u64>,
}

impl Answer {
    fn ok(result: Value) -> Answer {
        Answer::json(200, json!({ "success": true, "errors": [], "messages": [], "result": result }))
    }

    fn list(items: Vec<Value>, page: usize, per_page: usize, total: usize) -> Answer {
        let total_pages = total.div_ceil(per_page).max(1);
        let count = items.len();
        Answer::json(
            200,
            json!({
                "success": true, "errors": [], "messages": [], "result": items,
                "result_info": { "page": page, "per_page": per_page, "count": count, "total_count": total, "total_pages": total_pages },
            }),
        )
    }

    fn error(error: ApiError) -> Answer {
        Answer::json(error.status, json!({ "success": false, "errors": error.errors, "messages": [], "result": null }))
    }

    fn json(status: u16, body: Value) -> Answer {
        Answer { status, body: body.to_string(), content_type: "application/json", retry_after: None }
    }

    /// The answer of an injected failure, shaped as Cloudflare shapes that status.
    fn injected(status: u16) -> Answer {
        match status {
            429 => Answer {
                retry_after: Some(1),
                ..Answer::error(ApiError::new(429, 971, "Please wait and consider throttling your request speed"))
            },
            502..=504 | 520..=527 => Answer {
                status,
                body: format!(
                    "<html>\r\n<head><title>{status} Bad Gateway</title></head>\r\n<body>\r\n<center><h1>{status} Bad Gateway</h1></center>\r\n<hr><center>cloudflare</center>\r\n</body>\r\n</html>\r\n"
                ),
                content_type: "text/html",
                retry_after: None,
            },
            401 | 403 => Answer::error(ApiError::new(status, 10000, "Authentication error")),
            500..=599 => Answer::error(ApiError::new(status, 10002, "Internal server error")),
            _ => Answer::error(ApiError::new(status, 10002, format!("injected failure (HTTP {status})"))),
        }
    }
}

/// The stand-in server; stops when dropped.
pub struct CloudflareStandIn {
    base_url: String,
    token: String,
    state: Arc<Mutex<State>>,
    _server: Background,
}

impl fmt::Debug for CloudflareStandIn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CloudflareStandIn").field("base_url", &self.base_url).finish_non_exhaustive()
    }
}

impl CloudflareStandIn {
    /// Starts a stand-in that accepts the bearer token `token`, with Cloudflare's page limit
    /// of 100 records.
    #[track_caller]
    pub fn start(token: &str) -> CloudflareStandIn {
        CloudflareStandIn::start_with_max_per_page(token, STANDIN_DEFAULT_PER_PAGE)
    }

    /// Starts a stand-in that gives at most `max_per_page` records a page, whatever
    /// `per_page` asks, so that tests reach pagination with few records.
    #[track_caller]
    pub fn start_with_max_per_page(token: &str, max_per_page: usize) -> CloudflareStandIn {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port for the Cloudflare stand-in");
        listener.set_nonblocking(true).expect("non-blocking listener");
        let port = listener.local_addr().expect("local address").port();
        let state = Arc::new(Mutex::new(State {
            token: token.to_string(),
            max_per_page: max_per_page.max(1),
            zones: Vec::new(),
            faults: Vec::new(),
            log: Vec::new(),
        }));
        let served = state.clone();
        let server = Background::start("cloudflare-standin", 0, move |stopped| serve(listener, served, stopped));
        CloudflareStandIn {
            base_url: format!("http://127.0.0.1:{port}{STANDIN_API_PREFIX}"),
            token: token.to_string(),
            state,
            _server: server,
        }
    }

    /// The API base to give a client, `http://127.0.0.1:<port>/client/v4`.
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    /// The bearer token the stand-in accepts.
    pub fn token(&self) -> &str {
        &self.token
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds an active zone (`acc.test` or `acc.test.`) and returns its id; an existing zone
    /// of that name keeps its id.
    pub fn add_zone(&self, name: &str) -> String {
        let name = bare_name(name);
        let mut state = self.state();
        if let Some(zone) = state.zones.iter().find(|z| z.name == name) {
            return zone.id.clone();
        }
        let id = new_id();
        state.zones.push(Zone { id: id.clone(), name, created_on: now(), records: Vec::new() });
        id
    }

    /// The id of the zone `name`, if the stand-in holds it.
    pub fn zone_id(&self, name: &str) -> Option<String> {
        let name = bare_name(name);
        self.state().zones.iter().find(|z| z.name == name).map(|z| z.id.clone())
    }

    /// Removes a zone and its records (as deleting it in the dashboard would); its id then
    /// answers 404 codes 7003/7000. Whether it was there.
    pub fn remove_zone(&self, name: &str) -> bool {
        let name = bare_name(name);
        let mut state = self.state();
        let before = state.zones.len();
        state.zones.retain(|z| z.name != name);
        state.zones.len() != before
    }

    /// The records the stand-in holds for `name` (relative like `www` or `@`, or absolute
    /// with or without the trailing dot) and `rtype` in zone `zone`, as the API shows them,
    /// in creation order. Panics when the zone is unknown.
    #[track_caller]
    pub fn records(&self, zone: &str, name: &str, rtype: &str) -> Vec<Value> {
        let state = self.state();
        let zone = &state.zones[zone_index(&state, zone)];
        let fqdn = absolute_in(&zone.name, name);
        zone.records
            .iter()
            .filter(|r| r.name == fqdn && r.rtype.eq_ignore_ascii_case(rtype))
            .map(|r| record_json(zone, r))
            .collect()
    }

    /// Every record of the zone, as the API shows them.
    #[track_caller]
    pub fn all_records(&self, zone: &str) -> Vec<Value> {
        let state = self.state();
        let zone = &state.zones[zone_index(&state, zone)];
        zone.records.iter().map(|r| record_json(zone, r)).collect()
    }

    /// Adds a record out of band from its zone-file value: `10.0.0.1`, `10 mail.acc.test`
    /// (MX), `10 5 5060 sip.acc.test` (SRV), `0 issue "letsencrypt.org"` (CAA), TXT content
    /// as given (quoted or not). Checked as a `POST` would be; panics when refused. Returns
    /// the record's id.
    #[track_caller]
    pub fn put_record(&self, zone: &str, name: &str, rtype: &str, value: &str, ttl: u64) -> String {
        let mut body = json!({ "type": rtype.to_ascii_uppercase(), "name": name, "ttl": ttl });
        let fields: Vec<&str> = value.split_whitespace().collect();
        match rtype.to_ascii_uppercase().as_str() {
            "MX" => {
                body["priority"] = json!(fields.first().and_then(|p| p.parse::<u64>().ok()));
                body["content"] = json!(fields.get(1).copied().unwrap_or_default());
            }
            "SRV" => {
                let number = |i: usize| fields.get(i).and_then(|n| n.parse::<u64>().ok());
                body["data"] = json!({ "priority": number(0), "weight": number(1), "port": number(2), "target": fields.get(3) });
            }
            "CAA" => {
                let mut parts = value.trim().splitn(3, char::is_whitespace);
                let flags = parts.next().and_then(|f| f.parse::<u64>().ok());
                let tag = parts.next().unwrap_or_default();
                let raw = parts.next().unwrap_or_default().trim();
                let unquoted = raw.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(raw);
                body["data"] = json!({ "flags": flags, "tag": tag, "value": unquoted });
            }
            _ => body["content"] = json!(value),
        }
        self.put_record_json(zone, body)
    }

    /// Adds a record out of band from a `POST /dns_records` body (`type`, `name`, `content`,
    /// `ttl`, `priority`, `data`, `proxied`, `comment`, `tags`). Panics when refused; returns
    /// the record's id.
    #[track_caller]
    pub fn put_record_json(&self, zone: &str, body: Value) -> String {
        let mut state = self.state();
        let index = zone_index(&state, zone);
        match create(&mut state.zones[index], &body) {
            Ok(record) => record["id"].as_str().unwrap_or_default().to_string(),
            Err(e) => panic!("the Cloudflare stand-in refused {body}: {}", Value::Array(e.errors)),
        }
    }

    /// Deletes out of band every record of `name` and `rtype` in `zone`; how many there were.
    #[track_caller]
    pub fn delete_records(&self, zone: &str, name: &str, rtype: &str) -> usize {
        let mut state = self.state();
        let index = zone_index(&state, zone);
        let zone = &mut state.zones[index];
        let fqdn = absolute_in(&zone.name, name);
        let before = zone.records.len();
        zone.records.retain(|r| !(r.name == fqdn && r.rtype.eq_ignore_ascii_case(rtype)));
        before - zone.records.len()
    }

    /// The next `n` requests, whatever they are, answer `status` without being handled.
    pub fn fail_next(&self, n: usize, status: u16) {
        self.state().faults.push(Fault { method: None, status, remaining: n, after_applying: false });
    }

    /// The next `n` requests with `method` (`"DELETE"`, say) answer `status` without being
    /// handled; other requests are served.
    pub fn fail_next_of(&self, method: &str, n: usize, status: u16) {
        let method = Some(method.to_ascii_uppercase());
        self.state().faults.push(Fault { method, status, remaining: n, after_applying: false });
    }

    /// The next `n` requests with `method` are handled (the change is made), then answer
    /// `status`: an answer lost on its way back.
    pub fn fail_next_after_applying(&self, method: &str, n: usize, status: u16) {
        let method = Some(method.to_ascii_uppercase());
        self.state().faults.push(Fault { method, status, remaining: n, after_applying: true });
    }

    /// Drops every pending injected failure.
    pub fn clear_faults(&self) {
        self.state().faults.clear();
    }

    /// Every request answered so far, oldest first.
    pub fn requests(&self) -> Vec<StandInRequest> {
        self.state().log.clone()
    }

    /// [`StandInRequest::route`] of every request so far, oldest first.
    pub fn routes(&self) -> Vec<String> {
        self.state().log.iter().map(StandInRequest::route).collect()
    }

    /// Forgets the requests logged so far.
    pub fn clear_requests(&self) {
        self.state().log.clear();
    }
}

async fn serve(listener: std::net::TcpListener, state: Arc<Mutex<State>>, mut stopped: tokio::sync::oneshot::Receiver<()>) {
    let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
    loop {
        let (tcp, _) = tokio::select! {
            _ = &mut stopped => return,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(_) => continue,
            },
        };
        let state = state.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| handle(state.clone(), request));
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tcp), service).await;
        });
    }
}

async fn handle(state: Arc<Mutex<State>>, request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let method = request.method().to_string();
    let full_path = request.uri().path().to_string();
    let query = request.uri().query().unwrap_or_default().to_string();
    let authorization = request.headers().get(http::header::AUTHORIZATION).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let body = request.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();

    let answer = {
        let mut state = state.lock().unwrap_or_else(|p| p.into_inner());
        let fault = take_fault(&mut state, &method);
        let answer = match fault {
            Some(fault) if !fault.after_applying => Answer::injected(fault.status),
            _ => {
                let handled = answer(&mut state, &method, &full_path, &query, authorization.as_deref(), &body);
                match fault {
                    Some(fault) => Answer::injected(fault.status),
                    None => handled,
                }
            }
        };
        let path = full_path.strip_prefix(STANDIN_API_PREFIX).unwrap_or(&full_path).to_string();
        state.log.push(StandInRequest { method, path, query, status: answer.status });
        answer
    };

    let mut response = Response::new(Full::new(Bytes::from(answer.body)));
    *response.status_mut() = hyper::StatusCode::from_u16(answer.status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static(answer.content_type));
    if let Some(seconds) = answer.retry_after {
        response.headers_mut().insert(http::header::RETRY_AFTER, http::HeaderValue::from(seconds));
    }
    Ok(response)
}

/// The pending fault that applies to a request with `method`, counted down.
fn take_fault(state: &mut State, method: &str) -> Option<Fault> {
    let fault = state.faults.iter_mut().find(|f| f.remaining > 0 && f.method.as_deref().is_none_or(|m| m == method))?;
    fault.remaining -= 1;
    let taken = fault.clone();
    state.faults.retain(|f| f.remaining > 0);
    Some(taken)
}

/// Checks the credentials, then routes.
fn answer(state: &mut State, method: &str, path: &str, query: &str, authorization: Option<&str>, body: &[u8]) -> Answer {
    let Some(authorization) = authorization else {
        return Answer::error(ApiError::bad_request(9106, "Missing X-Auth-Key, X-Auth-Email or Authorization headers"));
    };
    let token = authorization.strip_prefix("Bearer ").filter(|t| !t.is_empty() && !t.contains(char::is_whitespace));
    let Some(token) = token else {
        return Answer::error(ApiError {
            status: 400,
            errors: vec![json!({ "code": 6003, "message": "Invalid request headers",
                                 "error_chain": [{ "code": 6111, "message": "Invalid format for Authorization header" }] })],
        });
    };
    if token != state.token {
        return Answer::error(ApiError::new(403, 10000, "Authentication error"));
    }
    let Some(api_path) = path.strip_prefix(STANDIN_API_PREFIX) else {
        return Answer::error(ApiError::new(404, 7000, "No route for that URI"));
    };
    let params = parse_query(query);
    let segments: Vec<&str> = api_path.trim_matches('/').split('/').filter(|s| !s.is_empty()).collect();
    let result = match (method, segments.as_slice()) {
        ("GET", ["zones"]) => Ok(list_zones(state, &params)),
        ("GET", ["zones", zone_id]) => zone_mut(state, zone_id, api_path).map(|z| Answer::ok(zone_json(z))),
        ("GET", ["zones", zone_id, "dns_records"]) => {
            let max = state.max_per_page;
            zone_mut(state, zone_id, api_path).map(|z| list_records(z, &params, max))
        }
        ("POST", ["zones", zone_id, "dns_records"]) => {
            let zone = zone_mut(state, zone_id, api_path);
            zone.and_then(|z| parse_body(body).and_then(|b| create(z, &b))).map(Answer::ok)
        }
        (_, ["zones", zone_id, "dns_records", record_id]) => {
            zone_mut(state, zone_id, api_path).and_then(|z| record_call(z, method, record_id, body))
        }
        (_, ["zones"] | ["zones", _] | ["zones", _, "dns_records"]) => Err(ApiError::new(405, 7001, "Method not allowed for this route")),
        _ => Err(ApiError::new(404, 7000, "No route for that URI")),
    };
    result.unwrap_or_else(Answer::error)
}

fn record_call(zone: &mut Zone, method: &str, record_id: &str, body: &[u8]) -> Result<Answer, ApiError> {
    let index = zone.records.iter().position(|r| r.id == record_id).ok_or_else(ApiError::record_gone)?;
    match method {
        "GET" => Ok(Answer::ok(record_json(zone, &zone.records[index]))),
        "DELETE" => {
            zone.records.remove(index);
            Ok(Answer::ok(json!({ "id": record_id })))
        }
        "PUT" => {
            let body = parse_body(body)?;
            update(zone, index, &body).map(Answer::ok)
        }
        "PATCH" => {
            let patch = parse_body(body)?;
            let Some(patch) = patch.as_object() else { return Err(ApiError::bad_request(9207, "Request body is invalid.")) };
            let mut merged = record_json(zone, &zone.records[index]);
            for (key, value) in patch {
                merged[key] = value.clone();
            }
            update(zone, index, &merged).map(Answer::ok)
        }
        _ => Err(ApiError::new(405, 7001, "Method not allowed for this route")),
    }
}

fn zone_mut<'a>(state: &'a mut State, zone_id: &str, path: &str) -> Result<&'a mut Zone, ApiError> {
    state.zones.iter_mut().find(|z| z.id == zone_id).ok_or_else(|| ApiError::no_route(path))
}

/// Where the zone `name` is in the state; panics when the stand-in does not hold it.
#[track_caller]
fn zone_index(state: &State, name: &str) -> usize {
    let name = bare_name(name);
    state.zones.iter().position(|z| z.name == name).unwrap_or_else(|| panic!("the Cloudflare stand-in holds no zone {name:?}"))
}

fn parse_body(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice::<Value>(body)
        .ok()
        .filter(Value::is_object)
        .ok_or_else(|| ApiError::bad_request(9207, "Request body is invalid."))
}

/// `page` and `per_page` of a list request: (page from 1, page size clamped to `max`).
fn paging(params: &HashMap<String, String>, default: usize, max: usize) -> (usize, usize) {
    let page = params.get("page").and_then(|p| p.parse::<usize>().ok()).unwrap_or(1).max(1);
    let per_page = params.get("per_page").and_then(|p| p.parse::<usize>().ok()).unwrap_or(default).clamp(1, max);
    (page, per_page)
}

fn page_of(items: Vec<Value>, page: usize, per_page: usize) -> Answer {
    let total = items.len();
    let shown = items.into_iter().skip((page - 1) * per_page).take(per_page).collect();
    Answer::list(shown, page, per_page, total)
}

fn list_zones(state: &State, params: &HashMap<String, String>) -> Answer {
    let (page, per_page) = paging(params, ZONES_DEFAULT_PER_PAGE, ZONES_MAX_PER_PAGE);
    let name = params.get("name").map(|n| bare_name(n));
    let zones: Vec<Value> = state
        .zones
        .iter()
        .filter(|z| name.as_ref().is_none_or(|n| *n == z.name))
        .filter(|_| params.get("status").is_none_or(|s| s == "active"))
        .map(zone_json)
        .collect();
    page_of(zones, page, per_page)
}

fn list_records(zone: &Zone, params: &HashMap<String, String>, max_per_page: usize) -> Answer {
    let (page, per_page) = paging(params, STANDIN_DEFAULT_PER_PAGE, max_per_page);
    let name = params.get("name").map(|n| bare_name(n));
    let rtype = params.get("type");
    let content = params.get("content");
    let records: Vec<Value> = zone
        .records
        .iter()
        .filter(|r| name.as_ref().is_none_or(|n| *n == r.name))
        .filter(|r| rtype.is_none_or(|t| t.eq_ignore_ascii_case(&r.rtype)))
        .filter(|r| content.is_none_or(|c| *c == r.content))
        .map(|r| record_json(zone, r))
        .collect();
    page_of(records, page, per_page)
}

fn zone_json(zone: &Zone) -> Value {
    json!({
        "id": zone.id, "name": zone.name, "status": "active", "paused": false, "type": "full",
        "development_mode": 0, "name_servers": ["ada.ns.cloudflare.com", "bob.ns.cloudflare.com"],
        "created_on": zone.created_on, "modified_on": zone.created_on, "activated_on": zone.created_on,
        "account": { "id": "0123456789abcdef0123456789abcdef", "name": "stand-in account" },
        "permissions": ["#dns_records:edit", "#dns_records:read", "#zone:read"],
    })
}

fn record_json(zone: &Zone, record: &Record) -> Value {
    let proxiable = matches!(record.rtype.as_str(), "A" | "AAAA" | "CNAME");
    let mut value = json!({
        "id": record.id, "zone_id": zone.id, "zone_name": zone.name, "name": record.name, "type": record.rtype,
        "content": record.content, "proxiable": proxiable, "proxied": record.proxied, "ttl": record.ttl,
        "locked": false, "settings": {}, "meta": { "auto_added": false, "managed_by_apps": false, "managed_by_argo_tunnel": false },
        "comment": record.comment, "tags": record.tags, "created_on": record.created_on, "modified_on": record.modified_on,
    });
    if let Some(priority) = record.priority {
        value["priority"] = json!(priority);
    }
    if let Some(data) = &record.data {
        value["data"] = data.clone();
    }
    value
}

/// `POST /dns_records`: checks `body` and adds the record.
fn create(zone: &mut Zone, body: &Value) -> Result<Value, ApiError> {
    let stamp = now();
    let record = checked_record(zone, body, None, new_id(), stamp.clone(), stamp)?;
    let json = record_json(zone, &record);
    zone.records.push(record);
    Ok(json)
}

/// `PUT`: the record at `index` becomes `body` (id and creation time kept).
fn update(zone: &mut Zone, index: usize, body: &Value) -> Result<Value, ApiError> {
    let old = &zone.records[index];
    let record = checked_record(zone, body, Some(index), old.id.clone(), old.created_on.clone(), now())?;
    let json = record_json(zone, &record);
    zone.records[index] = record;
    Ok(json)
}

/// A record from a request body, checked as Cloudflare checks it; `replacing` is the index of
/// the record a `PUT` overwrites (ignored when looking for duplicates and conflicts).
fn checked_record(
    zone: &Zone,
    body: &Value,
    replacing: Option<usize>,
    id: String,
    created_on: String,
    modified_on: String,
) -> Result<Record, ApiError> {
    let rtype = body.get("type").and_then(Value::as_str).map(str::to_ascii_uppercase).unwrap_or_default();
    if !["A", "AAAA", "CNAME", "TXT", "MX", "SRV", "CAA", "NS", "PTR"].contains(&rtype.as_str()) {
        return Err(ApiError::bad_request(9004, format!("DNS record type {rtype:?} is invalid or not supported.")));
    }
    let raw_name = body.get("name").and_then(Value::as_str).unwrap_or_default();
    if raw_name.trim().is_empty() || !valid_hostname(&bare_name(raw_name), true) {
        return Err(ApiError::bad_request(9000, "DNS name is invalid."));
    }
    let name = absolute_in(&zone.name, raw_name);
    if !valid_hostname(&name, true) {
        return Err(ApiError::bad_request(9000, "DNS name is invalid."));
    }
    let ttl = match body.get("ttl") {
        None | Some(Value::Null) => 1,
        Some(ttl) => ttl.as_u64().filter(|t| *t == 1 || (60..=86400).contains(t)).ok_or_else(|| {
            ApiError::bad_request(9021, "Invalid TTL. Must be between 60 and 86400 seconds, or 1 for Automatic.")
        })?,
    };
    let proxied = body.get("proxied").and_then(Value::as_bool).unwrap_or(false);
    let content = body.get("content").and_then(Value::as_str).map(str::trim).unwrap_or_default();
    let target = |text: &str, code: i64| -> Result<String, ApiError> {
        let bare = if text == "." { ".".to_string() } else { text.strip_suffix('.').unwrap_or(text).to_string() };
        if bare == "." || valid_hostname(&bare.to_ascii_lowercase(), false) {
            Ok(bare)
        } else {
            Err(ApiError::bad_request(code, format!("Content for {rtype} record is invalid.")))
        }
    };
    let u16_field = |from: &Value, key: &str, what: &str| -> Result<u64, ApiError> {
        from.get(key)
            .and_then(Value::as_u64)
            .filter(|n| *n <= 65535)
            .ok_or_else(|| ApiError::bad_request(9101, format!("{what} must be a number from 0 to 65535.")))
    };

    let (content, priority, data) = match rtype.as_str() {
        "A" => {
            let address = content
                .parse::<Ipv4Addr>()
                .map_err(|_| ApiError::bad_request(9005, "Content for A record must be a valid IPv4 address."))?;
            (address.to_string(), None, None)
        }
        "AAAA" => {
            content
                .parse::<Ipv6Addr>()
                .map_err(|_| ApiError::bad_request(9006, "Content for AAAA record must be a valid IPv6 address."))?;
            (content.to_string(), None, None)
        }
        "CNAME" | "NS" | "PTR" => (target(content, 9007)?, None, None),
        "TXT" => {
            if content.is_empty() || content.chars().count() > TXT_MAX_CHARS {
                return Err(ApiError::bad_request(
                    9100,
                    format!("Content for TXT record is invalid: it must hold 1 to {TXT_MAX_CHARS} characters."),
                ));
            }
            (content.to_string(), None, None)
        }
        "MX" => {
            let priority = u16_field(body, "priority", "MX priority")?;
            (target(content, 9007)?, Some(priority), None)
        }
        "SRV" => {
            let data = body.get("data").filter(|d| d.is_object()).ok_or_else(|| {
                ApiError::bad_request(9101, "SRV records need a data object with priority, weight, port and target.")
            })?;
            let (priority, weight, port) =
                (u16_field(data, "priority", "SRV priority")?, u16_field(data, "weight", "SRV weight")?, u16_field(data, "port", "SRV port")?);
            let target = target(data.get("target").and_then(Value::as_str).unwrap_or_default(), 9101)?;
            let data = json!({ "priority": priority, "weight": weight, "port": port, "target": target });
            (format!("{weight} {port} {target}"), Some(priority), Some(data))
        }
        "CAA" => {
            let data = body.get("data").filter(|d| d.is_object()).ok_or_else(|| {
                ApiError::bad_request(9101, "CAA records need a data object with flags, tag and value.")
            })?;
            let flags = data
                .get("flags")
                .and_then(Value::as_u64)
                .filter(|f| *f <= 255)
                .ok_or_else(|| ApiError::bad_request(9101, "CAA flags must be a number from 0 to 255."))?;
            let tag = data.get("tag").and_then(Value::as_str).unwrap_or_default().to_ascii_lowercase();
            if !["issue", "issuewild", "iodef"].contains(&tag.as_str()) {
                return Err(ApiError::bad_request(9101, "CAA tag must be issue, issuewild or iodef."));
            }
            let value = data.get("value").and_then(Value::as_str).unwrap_or_default();
            if value.is_empty() {
                return Err(ApiError::bad_request(9101, "CAA value may not be empty."));
            }
            let content = format!("{flags} {tag} \"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""));
            (content, None, Some(json!({ "flags": flags, "tag": tag, "value": value })))
        }
        _ => unreachable!("types checked above"),
    };

    let others = zone.records.iter().enumerate().filter(|(i, r)| Some(*i) != replacing && r.name == name).map(|(_, r)| r);
    for other in others {
        if rtype == "CNAME" || other.rtype == "CNAME" {
            return Err(ApiError::bad_request(81053, "An A, AAAA, or CNAME record with that host already exists."));
        }
        if other.rtype == rtype && other.content == content && other.priority == priority {
            return Err(ApiError::bad_request(81057, "The record already exists."));
        }
    }

    Ok(Record {
        id,
        name,
        rtype,
        content,
        priority,
        data,
        ttl,
        proxied,
        comment: body.get("comment").cloned().unwrap_or(Value::Null),
        tags: body.get("tags").cloned().filter(Value::is_array).unwrap_or_else(|| json!([])),
        created_on,
        modified_on,
    })
}

/// A name lower-cased without its trailing dot.
fn bare_name(name: &str) -> String {
    let name = name.trim();
    name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
}

/// `name` made absolute in `zone` (both without trailing dot), as Cloudflare expands record
/// names: `@` is the apex; a name ending in the zone's name is absolute already; any other
/// is relative to the zone.
fn absolute_in(zone: &str, name: &str) -> String {
    let name = bare_name(name);
    if name == "@" || name.is_empty() {
        zone.to_string()
    } else if name == zone || name.ends_with(&format!(".{zone}")) {
        name
    } else {
        format!("{name}.{zone}")
    }
}

/// Letters, digits, `-`, `_` and (for record names) `*`, in labels of 1 to 63 characters,
/// 253 at most.
fn valid_hostname(name: &str, wildcard: bool) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || (wildcard && c == '*'))
        })
}

/// Cloudflare's ids: 32 lower-case hex digits.
fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Now, as Cloudflare writes times (`2024-05-01T12:34:56.123456Z`).
fn now() -> String {
    let format = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");
    time::OffsetDateTime::now_utc().format(&format).unwrap_or_default()
}

/// `a=1&b=x%2Ey` as a map, decoded.
fn parse_query(query: &str) -> HashMap<String, String> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(key), percent_decode(value))
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(byte) => {
                        out.push(byte);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
