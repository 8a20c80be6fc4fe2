//! A fault-injecting HTTPS proxy in front of the test cluster's kube-apiserver.
//!
//! It serves TLS with its own certificate (a throwaway CA from rcgen), forwards every request
//! to the API server with the headers it came with (so the caller's credentials are the
//! ones the API server judges), and on a schedule answers instead: 429 with `Retry-After`,
//! 500 or 503 with a Kubernetes `Status` body, a connection dropped (before or after the
//! API server handled the request), or a delayed answer. Rules can also answer chosen
//! requests with a fixed status (a 403 with the API server's own wording, say). It counts
//! what it injected and records every exchange, so tests can check what the client did.
//!
//! HTTP/1.1 only (no ALPN `h2`): one request per connection at a time, so dropping a
//! connection fails exactly one request.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::background::Background;
use super::control_plane::Cluster;

/// What the proxy does to a request picked by the schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Fault {
    /// 429 TooManyRequests with `Retry-After: <seconds>`.
    TooManyRequests { retry_after_secs: u64 },
    /// 500 InternalError.
    InternalError,
    /// 503 ServiceUnavailable.
    Unavailable,
    /// Drops the connection without answering, before forwarding.
    ResetBefore,
    /// Forwards, then drops the connection instead of passing the answer on.
    ResetAfter,
    /// Forwards and answers, late.
    Delay(Duration),
}

impl Fault {
    /// Whether a well-behaved client has to send the request again.
    pub fn needs_retry(&self) -> bool {
        !matches!(self, Fault::Delay(_))
    }
}

/// Every `every`-th request (counting all requests) gets the next fault of `faults`, in turn.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub every: u64,
    pub faults: Vec<Fault>,
}

impl Schedule {
    /// No scheduled faults (rules only).
    pub fn none() -> Schedule {
        Schedule { every: 0, faults: Vec::new() }
    }

    fn pick(&self, n: u64) -> Option<Fault> {
        if self.every == 0 || self.faults.is_empty() || n % self.every != self.every - 1 {
            return None;
        }
        Some(self.faults[((n / self.every) as usize) % self.faults.len()])
    }
}

/// Answers requests whose method is `method` and whose path ends with `path_suffix` with
/// `status` and `body` (JSON), without forwarding them.
#[derive(Debug, Clone)]
pub struct Rule {
    pub method: String,
    pub path_suffix: String,
    pub status: u16,
    pub body: String,
}

/// One request as the proxy saw it, and what became of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    pub method: String,
    /// Path and query.
    pub path: String,
    /// The status the client got; 0 when the connection was dropped.
    pub status: u16,
    /// Whether the proxy made this answer up (schedule or rule).
    pub injected: bool,
}

#[derive(Default)]
struct State {
    requests: AtomicU64,
    injected: Mutex<BTreeMap<String, u64>>,
    exchanges: Mutex<Vec<Exchange>>,
}

impl State {
    fn count(&self, what: String) {
        *self.injected.lock().unwrap().entry(what).or_default() += 1;
    }
    fn record(&self, method: &str, path: &str, status: u16, injected: bool) {
        self.exchanges.lock().unwrap().push(Exchange { method: method.into(), path: path.into(), status, injected });
    }
}

struct Config {
    upstream: String,
    client: reqwest::Client,
    schedule: Schedule,
    rules: Vec<Rule>,
    state: Arc<State>,
}

pub struct FaultProxy {
    url: String,
    ca_pem: String,
    state: Arc<State>,
    _server: Background,
}

impl FaultProxy {
    /// Starts a proxy in front of `cluster`'s API server (its own runtime on a thread).
    pub fn start(cluster: &Cluster, schedule: Schedule, rules: Vec<Rule>) -> FaultProxy {
        let (ca_pem, server_config) = server_tls("tf-acc-fault-proxy").expect("proxy TLS material");
        let client = upstream_client(cluster.ca_pem()).expect("upstream client");
        let state = Arc::new(State::default());
        let config = Arc::new(Config { upstream: cluster.server().to_string(), client, schedule, rules, state: state.clone() });
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        listener.set_nonblocking(true).expect("nonblocking listener");
        let addr = listener.local_addr().expect("proxy address");
        let server =
            Background::start("fault-proxy", 2, move |stopped| serve(listener, server_config, config, stopped));
        FaultProxy { url: format!("https://{addr}"), ca_pem, state, _server: server }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// A kubeconfig for the proxy: its CA, and `token` as the user's bearer token.
    pub fn kubeconfig(&self, token: &str) -> String {
        self.kubeconfig_trusting(token, &self.ca_pem)
    }

    /// A kubeconfig for the proxy that trusts `ca_pem` (not necessarily the proxy's CA).
    pub fn kubeconfig_trusting(&self, token: &str, ca_pem: &str) -> String {
        use base64::Engine as _;
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: proxy\n  cluster:\n    server: {}\n    certificate-authority-data: {}\nusers:\n- name: proxy-user\n  user:\n    token: {token}\ncontexts:\n- name: proxy\n  context:\n    cluster: proxy\n    user: proxy-user\ncurrent-context: proxy\n",
            self.url,
            base64::engine::general_purpose::STANDARD.encode(ca_pem),
        )
    }

    /// Faults injected so far, by kind (`429`, `500`, `503`, `reset-before`, `reset-after`,
    /// `delay`, `rule <status>`).
    pub fn injected(&self) -> BTreeMap<String, u64> {
        self.state.injected.lock().unwrap().clone()
    }

    /// Injected faults a client must have retried to succeed.
    pub fn injected_needing_retry(&self) -> u64 {
        self.injected().iter().filter(|(k, _)| *k != "delay" && !k.starts_with("rule")).map(|(_, n)| n).sum()
    }

    pub fn requests(&self) -> u64 {
        self.state.requests.load(Ordering::Relaxed)
    }

    pub fn exchanges(&self) -> Vec<Exchange> {
        self.state.exchanges.lock().unwrap().clone()
    }

    /// Forgets the exchanges and counters so far (the schedule continues).
    pub fn clear(&self) {
        self.state.exchanges.lock().unwrap().clear();
        self.state.injected.lock().unwrap().clear();
    }
}

async fn serve(
    listener: std::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
    config: Arc<Config>,
    mut stopped: tokio::sync::oneshot::Receiver<()>,
) {
    let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    loop {
        let (tcp, _) = tokio::select! {
            _ = &mut stopped => return,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(_) => continue,
            },
        };
        // A dropped connection is a reset (RST), not a polite close.
        let _ = socket_linger_zero(&tcp);
        let acceptor = acceptor.clone();
        let config = config.clone();
        tokio::spawn(async move {
            let Ok(stream) = acceptor.accept(tcp).await else { return };
            let service = hyper::service::service_fn(move |request| handle(config.clone(), request));
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        });
    }
}

/// Deprecated in tokio because a non-zero linger blocks the thread on drop; zero does not
/// block (the kernel sends RST at once), which is exactly the point here.
#[allow(deprecated)]
fn socket_linger_zero(tcp: &tokio::net::TcpStream) -> std::io::Result<()> {
    tcp.set_linger(Some(Duration::ZERO))
}

/// The error that makes hyper drop the connection.
#[derive(Debug)]
struct Dropped;
impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by the fault proxy")
    }
}
impl std::error::Error for Dropped {}

async fn handle(config: Arc<Config>, request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Dropped> {
    let n = config.state.requests.fetch_add(1, Ordering::Relaxed);
    let method = request.method().to_string();
    let path = request.uri().path_and_query().map(|p| p.to_string()).unwrap_or_default();
    let state = &config.state;

    let plain_path = request.uri().path().to_string();
    if let Some(rule) = config.rules.iter().find(|r| r.method == method && plain_path.ends_with(&r.path_suffix)) {
        state.count(format!("rule {}", rule.status));
        state.record(&method, &path, rule.status, true);
        return Ok(json_response(rule.status, rule.body.clone(), None));
    }
    let fault = config.schedule.pick(n);
    match fault {
        Some(Fault::TooManyRequests { retry_after_secs }) => {
            state.count("429".into());
            state.record(&method, &path, 429, true);
            let body = status_body(429, "TooManyRequests", "the server has received too many requests and has asked us to try again later", Some(retry_after_secs));
            return Ok(json_response(429, body, Some(retry_after_secs)));
        }
        Some(Fault::InternalError) => {
            state.count("500".into());
            state.record(&method, &path, 500, true);
            return Ok(json_response(500, status_body(500, "InternalError", "an error on the server (\"injected\") has prevented the request from succeeding", None), None));
        }
        Some(Fault::Unavailable) => {
            state.count("503".into());
            state.record(&method, &path, 503, true);
            return Ok(json_response(503, status_body(503, "ServiceUnavailable", "the server is currently unable to handle the request", None), None));
        }
        Some(Fault::ResetBefore) => {
            state.count("reset-before".into());
            state.record(&method, &path, 0, true);
            return Err(Dropped);
        }
        _ => {}
    }
    let forwarded = forward(&config, request).await;
    let response = match forwarded {
        Ok(response) => response,
        Err(e) => {
            state.record(&method, &path, 502, false);
            return Ok(json_response(502, status_body(502, "BadGateway", &format!("fault proxy: upstream failed: {e}"), None), None));
        }
    };
    match fault {
        Some(Fault::ResetAfter) => {
            state.count("reset-after".into());
            state.record(&method, &path, 0, true);
            Err(Dropped)
        }
        Some(Fault::Delay(delay)) => {
            state.count("delay".into());
            tokio::time::sleep(delay).await;
            state.record(&method, &path, response.status().as_u16(), false);
            Ok(response)
        }
        _ => {
            state.record(&method, &path, response.status().as_u16(), false);
            Ok(response)
        }
    }
}

async fn forward(config: &Config, request: Request<Incoming>) -> Result<Response<Full<Bytes>>, String> {
    let (parts, body) = request.into_parts();
    let body = body.collect().await.map_err(|e| format!("reading the request: {e}"))?.to_bytes();
    let path = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let mut upstream = config.client.request(parts.method.clone(), format!("{}{path}", config.upstream));
    for (name, value) in &parts.headers {
        if !is_hop_by_hop(name.as_str()) && name != http::header::HOST {
            upstream = upstream.header(name, value);
        }
    }
    let answer = upstream.body(body).send().await.map_err(|e| format!("{e:?}"))?;
    let status = answer.status();
    let headers = answer.headers().clone();
    let bytes = answer.bytes().await.map_err(|e| format!("reading the answer: {e}"))?;
    let mut response = Response::new(Full::new(bytes));
    *response.status_mut() = status;
    for (name, value) in &headers {
        if !is_hop_by_hop(name.as_str()) && name != http::header::CONTENT_LENGTH {
            response.headers_mut().append(name, value.clone());
        }
    }
    Ok(response)
}

fn is_hop_by_hop(name: &str) -> bool {
    matches!(
        name.to_ascii_lowercase().as_str(),
        "connection" | "keep-alive" | "proxy-connection" | "te" | "trailer" | "transfer-encoding" | "upgrade"
    )
}

/// A Kubernetes `Status` document, as the API server writes them.
pub fn status_body(code: u16, reason: &str, message: &str, retry_after: Option<u64>) -> String {
    let mut status = serde_json::json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code,
    });
    if let Some(seconds) = retry_after {
        status["details"] = serde_json::json!({ "retryAfterSeconds": seconds });
    }
    status.to_string()
}

/// The API server's 403 for `user` doing `verb` on the namespaced object `resource/name`.
pub fn forbidden_body(user: &str, verb: &str, resource: &str, namespace: &str, name: &str) -> String {
    serde_json::json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": format!("{resource} \"{name}\" is forbidden: User \"{user}\" cannot {verb} resource \"{resource}\" in API group \"\" in the namespace \"{namespace}\""),
        "reason": "Forbidden",
        "details": { "name": name, "kind": resource },
        "code": 403,
    })
    .to_string()
}

fn json_response(code: u16, body: String, retry_after: Option<u64>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = hyper::StatusCode::from_u16(code).expect("valid status");
    response.headers_mut().insert(http::header::CONTENT_TYPE, "application/json".parse().unwrap());
    if let Some(seconds) = retry_after {
        response.headers_mut().insert(http::header::RETRY_AFTER, seconds.to_string().parse().unwrap());
    }
    response
}

/// A throwaway CA and a serving certificate for 127.0.0.1 and localhost signed by it, both
/// named after `name`: (CA PEM, server config).
pub(super) fn server_tls(name: &str) -> Result<(String, Arc<rustls::ServerConfig>), String> {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SanType};
    let e = |e: rcgen::Error| e.to_string();
    let ca_key = KeyPair::generate().map_err(e)?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(e)?;
    ca_params.distinguished_name.push(DnType::CommonName, format!("{name}-ca"));
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).map_err(e)?;
    let issuer = Issuer::new(ca_params, &ca_key);
    let key = KeyPair::generate().map_err(e)?;
    let mut params = CertificateParams::new(vec!["localhost".to_string()]).map_err(e)?;
    params.subject_alt_names.push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
    params.distinguished_name.push(DnType::CommonName, name);
    let cert = params.signed_by(&key, &issuer).map_err(e)?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(cert.der().to_vec())],
            PrivateKeyDer::try_from(key.serialize_der()).map_err(|e| e.to_string())?,
        )
        .map_err(|e| e.to_string())?;
    Ok((ca_cert.pem(), Arc::new(config)))
}

/// An HTTPS client trusting the cluster's CA (HTTP/1.1).
fn upstream_client(ca_pem: &str) -> Result<reqwest::Client, String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut ca_pem.as_bytes()) {
        roots.add(cert.map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .pool_max_idle_per_host(32)
        .timeout(Duration::from_secs(120))
        .build()
        .map_err(|e| e.to_string())
}
