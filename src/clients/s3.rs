//! S3 buckets seen from outside: whether given credentials can list a bucket's prefix, and
//! which keys lie under it. The backup resources use it to refuse a wrong key, a missing
//! bucket or an untrusted certificate before anything is written to the cluster, where
//! Velero would only mark its location `Unavailable` later. Knows nothing of Terraform or
//! Velero.
//!
//! Requests are ListObjectsV2 GETs signed with AWS Signature V4 by `rusty-s3`, a sans-IO
//! crate: it builds presigned URLs and parses listings, reqwest sends them. A presigned URL
//! carries a signature, so errors never quote a request URL (reqwest's are stripped of
//! it): they name the endpoint and bucket. The secret key stays in a [`SecretString`] and
//! is handed to the signer only.
//!
//! Failures are typed by what the user must fix ([`S3Error`]) and quote the `Code` and
//! `Message` of S3's error document. Refused or broken connections, timeouts, 429 and 5xx
//! (`SlowDown`, `InternalError`) are retried with backoff until the current deadline by
//! [`retry`], shared with the DNS clients, which also reports the last failure when the
//! deadline cuts an attempt short, rather than a bare "timed out".

use std::error::Error as StdError;
use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use rusty_s3::actions::{ListObjectsV2, S3Action};
use rusty_s3::{Bucket, Credentials, UrlStyle};
use secrecy::{ExposeSecret, SecretString};

use crate::clients::deadline::{retry, Interrupted, Retryable};
use crate::clients::error_chain;

/// Keys per ListObjectsV2 page in [`list`]: S3's default and maximum.
pub const PAGE_SIZE: usize = 1000;
/// How long a presigned request stays valid: one attempt, with room for clock skew.
const SIGNATURE_TTL: Duration = Duration::from_secs(300);
/// One attempt's limit, so that a silent server leaves time for the next attempt.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// A body that is not an S3 error document is quoted up to this many characters.
const QUOTE_LIMIT: usize = 300;

/// Where the bucket is and how to talk to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Location {
    /// `https://minio.lan:9000` or `http://...`; a path (`https://host/s3`) is kept.
    pub endpoint: String,
    pub region: String,
    pub bucket: String,
    /// The "directory" in the bucket (Velero's `prefix`), without or with slashes around it.
    pub prefix: Option<String>,
    /// `https://endpoint/bucket/` (MinIO, most self-hosted servers) rather than
    /// `https://bucket.endpoint/`.
    pub path_style: bool,
    pub insecure_skip_tls_verify: bool,
    /// CA certificates (PEM) trusted besides the system's.
    pub ca_pem: Option<String>,
}

/// A static access key; the secret is never logged or shown by `Debug`.
#[derive(Debug, Clone)]
pub struct S3Credentials {
    pub access_key: String,
    pub secret_key: SecretString,
}

/// Why the bucket could not be listed. `code` and `message` are S3's own (`<Code>`,
/// `<Message>` of its error document).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum S3Error {
    /// The location is unusable as given (endpoint URL, bucket name, CA PEM); nothing was sent.
    #[error("invalid S3 location: {message}")]
    Invalid { message: String },
    /// No HTTP answer: refused, reset, timed out, name not resolved (retried).
    #[error("cannot reach S3 endpoint {endpoint}: {message}")]
    Unreachable { endpoint: String, message: String },
    /// The TLS handshake failed: untrusted or mismatched certificate, or not TLS at all.
    #[error("TLS with S3 endpoint {endpoint} failed: {message}")]
    Tls { endpoint: String, message: String },
    /// The server does not accept the keys (`InvalidAccessKeyId`, `SignatureDoesNotMatch`).
    #[error("S3 endpoint {endpoint} refused the credentials: {code}: {message} (check the access key and the secret key)")]
    Credentials { endpoint: String, code: String, message: String },
    #[error("S3 endpoint {endpoint} has no bucket {bucket:?}: NoSuchBucket: {message}")]
    NoSuchBucket { endpoint: String, bucket: String, message: String },
    /// The keys are valid but may not list this bucket (or prefix).
    #[error("S3 endpoint {endpoint} denied listing bucket {bucket:?}: AccessDenied: {message} (the keys are valid but lack permission to list it)")]
    AccessDenied { endpoint: String, bucket: String, message: String },
    /// HTTP 429 or 5xx, such as `SlowDown` or `InternalError` (retried).
    #[error("S3 endpoint {endpoint} is busy: HTTP {status}{}: {message}", code_text(.code))]
    Busy { endpoint: String, status: u16, code: String, message: String },
    /// An answer that is not S3's: not HTTP, or not a listing where one was due.
    #[error("S3 endpoint {endpoint} did not answer as S3 does: {message}")]
    Protocol { endpoint: String, message: String },
    /// Any other S3 error, such as a wrong region (`AuthorizationHeaderMalformed`,
    /// `PermanentRedirect`) or `RequestTimeTooSkewed`.
    #[error("S3 endpoint {endpoint} answered HTTP {status}{}: {message}", code_text(.code))]
    Other { endpoint: String, status: u16, code: String, message: String },
    /// The deadline passed or the caller asked to stop.
    #[error("{0}")]
    Interrupted(#[from] Interrupted),
}

fn code_text(code: &str) -> String {
    if code.is_empty() {
        String::new()
    } else {
        format!(" {code}")
    }
}

impl S3Error {
    /// Whether trying again may help: no answer, or the server was busy.
    pub fn is_transient(&self) -> bool {
        matches!(self, S3Error::Unreachable { .. } | S3Error::Busy { .. })
    }

    /// The same error with `note` (why retrying stopped) added to its message.
    fn noting(self, note: &str) -> S3Error {
        match self {
            S3Error::Unreachable { endpoint, message } => {
                S3Error::Unreachable { endpoint, message: format!("{message}; {note}") }
            }
            S3Error::Busy { endpoint, status, code, message } => {
                S3Error::Busy { endpoint, status, code, message: format!("{message}; {note}") }
            }
            other => other,
        }
    }
}

/// Lists at most one key under the location's prefix with these credentials: `Ok(())` when
/// the bucket is readable (an empty prefix is fine).
pub async fn check_access(location: &S3Location, credentials: &S3Credentials) -> Result<(), S3Error> {
    let target = Target::new(location, credentials)?;
    let prefix = target.key_prefix("");
    retry("S3 request", || target.page(&prefix, 1, None)).await.map(|_| ())
}

/// Every key (all pages) under the location's prefix followed by `prefix`, as full keys of
/// the bucket: with `prefix: Some("cluster-a")`, `list(.., "backups/")` lists
/// `cluster-a/backups/...`.
pub async fn list(location: &S3Location, credentials: &S3Credentials, prefix: &str) -> Result<Vec<String>, S3Error> {
    list_in_pages(location, credentials, prefix, PAGE_SIZE).await
}

/// [`list`] asking for at most `page_size` keys per request.
pub async fn list_in_pages(
    location: &S3Location,
    credentials: &S3Credentials,
    prefix: &str,
    page_size: usize,
) -> Result<Vec<String>, S3Error> {
    let target = Target::new(location, credentials)?;
    let prefix = target.key_prefix(prefix);
    let mut keys = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = retry("S3 request", || target.page(&prefix, page_size.clamp(1, PAGE_SIZE), token.as_deref())).await?;
        keys.extend(page.keys);
        match page.next {
            None => return Ok(keys),
            // A server that hands back the token it was given would have us loop forever.
            Some(next) if token.as_ref() == Some(&next) => {
                return Err(target.protocol(format!("the listing repeats its continuation token {next:?}")))
            }
            Some(next) => token = Some(next),
        }
    }
}

/// One page of a listing.
#[derive(Debug)]
struct Page {
    keys: Vec<String>,
    /// The continuation token of the next page, if any.
    next: Option<String>,
}

/// A location ready to be asked: its bucket URL, signing keys and HTTP client.
struct Target {
    /// The endpoint as given, for messages.
    endpoint: String,
    bucket: Bucket,
    credentials: Credentials,
    /// The location's prefix as a key prefix (`cluster-a/`), empty for the whole bucket.
    prefix: String,
    path_style: bool,
    client: reqwest::Client,
}

impl Target {
    fn new(location: &S3Location, credentials: &S3Credentials) -> Result<Target, S3Error> {
        Ok(Target {
            endpoint: location.endpoint.trim_end_matches('/').to_string(),
            bucket: bucket(location)?,
            credentials: Credentials::new(&credentials.access_key, credentials.secret_key.expose_secret()),
            prefix: location_prefix(location.prefix.as_deref()),
            path_style: location.path_style,
            client: http_client(location)?,
        })
    }

    /// The location's prefix followed by `prefix`.
    fn key_prefix(&self, prefix: &str) -> String {
        format!("{}{}", self.prefix, prefix.trim_start_matches('/'))
    }

    /// The signed ListObjectsV2 URL of one page.
    fn list_url(&self, prefix: &str, max_keys: usize, token: Option<&str>) -> Url {
        let mut action = ListObjectsV2::new(&self.bucket, Some(&self.credentials));
        // Plain keys (XML-escaped): under `encoding-type=url` S3 and SeaweedFS write a space
        // as `+`, which rusty-s3 decodes as percent-encoding only (`a b` came back `a+b`).
        action.query_mut().remove("encoding-type");
        if !prefix.is_empty() {
            action.with_prefix(prefix);
        }
        action.with_max_keys(max_keys);
        if let Some(token) = token {
            action.with_continuation_token(token);
        }
        action.sign(SIGNATURE_TTL)
    }

    async fn page(&self, prefix: &str, max_keys: usize, token: Option<&str>) -> Result<Page, S3Error> {
        let url = self.list_url(prefix, max_keys, token);
        tracing::debug!(endpoint = %self.endpoint, bucket = self.bucket.name(), prefix, "S3 ListObjectsV2");
        let response = self.client.get(url).send().await.map_err(|e| self.transport(e))?;
        let status = response.status().as_u16();
        let body = response.text().await.map_err(|e| self.transport(e))?;
        if !(200..300).contains(&status) {
            return Err(refusal(&self.endpoint, self.bucket.name(), status, &body));
        }
        let listing = ListObjectsV2::parse_response(&body)
            .map_err(|e| self.protocol(format!("HTTP {status} without a ListObjectsV2 result ({e}): {}", quote(&body))))?;
        Ok(Page {
            keys: listing.contents.into_iter().map(|c| c.key).collect(),
            next: listing.next_continuation_token.filter(|t| !t.is_empty()),
        })
    }

    /// A request that got no HTTP answer.
    fn transport(&self, error: reqwest::Error) -> S3Error {
        // The URL is presigned: never quote it.
        let error = error.without_url();
        let endpoint = self.endpoint.clone();
        if let Some(tls) = find_cause::<rustls::Error>(&error) {
            return S3Error::Tls { endpoint, message: tls_message(tls) };
        }
        if find_cause::<hyper::Error>(&error).is_some_and(hyper::Error::is_parse) {
            let message = format!("{} (is the endpoint's scheme, http or https, right?)", error_chain(&error));
            return S3Error::Protocol { endpoint, message };
        }
        let mut message = error_chain(&error);
        if !self.path_style && message.contains("dns error") {
            message.push_str(&format!(
                " (virtual-hosted style asks for the host {:?}; most self-hosted servers need path style)",
                self.bucket.base_url().host_str().unwrap_or_default()
            ));
        }
        S3Error::Unreachable { endpoint, message }
    }

    fn protocol(&self, message: String) -> S3Error {
        S3Error::Protocol { endpoint: self.endpoint.clone(), message }
    }
}

/// The bucket's base URL: `endpoint/bucket/` (path style) or `bucket.endpoint/`.
fn bucket(location: &S3Location) -> Result<Bucket, S3Error> {
    let invalid = |message: String| S3Error::Invalid { message };
    let mut endpoint = Url::parse(location.endpoint.trim())
        .map_err(|e| invalid(format!("endpoint {:?} is not a URL: {e}", location.endpoint)))?;
    if !matches!(endpoint.scheme(), "http" | "https") || endpoint.host_str().is_none() {
        return Err(invalid(format!("endpoint {:?} is not an http:// or https:// URL", location.endpoint)));
    }
    if endpoint.query().is_some() || endpoint.fragment().is_some() {
        return Err(invalid(format!("endpoint {:?} may not have a query or fragment", location.endpoint)));
    }
    let host = endpoint.host_str().unwrap_or_default();
    let is_ip = host.starts_with('[') || host.parse::<std::net::IpAddr>().is_ok();
    if is_ip && !location.path_style {
        return Err(invalid(format!(
            "endpoint {:?} is an IP address: virtual-hosted style needs a host name, use path style",
            location.endpoint
        )));
    }
    // The bucket is joined onto the endpoint's path, which must end with a slash to be kept.
    if !endpoint.path().ends_with('/') {
        let path = format!("{}/", endpoint.path());
        endpoint.set_path(&path);
    }
    let name = &location.bucket;
    let valid_name = (1..=255).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
    if !valid_name {
        return Err(invalid(format!("bucket name {name:?}: only letters, digits, '-', '.' and '_' are allowed")));
    }
    let style = if location.path_style { UrlStyle::Path } else { UrlStyle::VirtualHost };
    Bucket::new(endpoint, style, name.clone(), location.region.clone())
        .map_err(|e| invalid(format!("endpoint {:?} with bucket {name:?}: {e}", location.endpoint)))
}

/// Velero's prefix as a key prefix: `/cluster-a/` and `cluster-a` become `cluster-a/`.
fn location_prefix(prefix: Option<&str>) -> String {
    match prefix.map(|p| p.trim_matches('/')) {
        None | Some("") => String::new(),
        Some(p) => format!("{p}/"),
    }
}

/// An HTTP client trusting the system's CAs and `ca_pem` (or, when told, any certificate);
/// it never follows redirects, which S3 uses to name another region's endpoint.
fn http_client(location: &S3Location) -> Result<reqwest::Client, S3Error> {
    let invalid = |message: String| S3Error::Invalid { message };
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(e.to_string()))?;
    let tls = if location.insecure_skip_tls_verify {
        builder.dangerous().with_custom_certificate_verifier(Arc::new(AnyCertificate(provider))).with_no_client_auth()
    } else {
        let mut roots = rustls::RootCertStore::empty();
        // A broken system certificate must not make every request fail.
        roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        if let Some(pem) = location.ca_pem.as_deref() {
            let certs = rustls_pemfile::certs(&mut pem.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| invalid(format!("the CA certificate is not PEM: {e}")))?;
            if certs.is_empty() {
                return Err(invalid("the CA certificate holds no PEM CERTIFICATE block".to_string()));
            }
            for cert in certs {
                roots.add(cert).map_err(|e| invalid(format!("the CA certificate is unusable: {e}")))?;
            }
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .timeout(ATTEMPT_TIMEOUT)
        .connect_timeout(CONNECT_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| invalid(error_chain(&e)))
}

/// `insecure_skip_tls_verify`: any certificate for any name, but the handshake's
/// signatures are still checked (the connection is encrypted, not authenticated).
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The first cause of type `T` in `error`'s chain. An `io::Error`'s `source` skips the error
/// it wraps (tokio-rustls wraps rustls's handshake errors so): step into it instead.
fn find_cause<'a, T: StdError + 'static>(error: &'a (dyn StdError + 'static)) -> Option<&'a T> {
    let mut cause = Some(error);
    while let Some(e) = cause {
        if let Some(found) = e.downcast_ref::<T>() {
            return Some(found);
        }
        cause = match e.downcast_ref::<std::io::Error>().and_then(std::io::Error::get_ref) {
            Some(inner) => Some(inner as &(dyn StdError + 'static)),
            None => e.source(),
        };
    }
    None
}

/// A handshake failure, with what to do about it.
fn tls_message(error: &rustls::Error) -> String {
    match error {
        rustls::Error::InvalidCertificate(_) => format!(
            "the server's certificate is not accepted: {error} (give the CA that signed it as ca_pem, \
             or set insecure_skip_tls_verify)"
        ),
        rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. } => {
            format!("{error} (does the endpoint speak HTTPS? an http:// endpoint may be meant)")
        }
        _ => error.to_string(),
    }
}

/// The error of a non-2xx answer, from S3's error document when there is one.
fn refusal(endpoint: &str, bucket: &str, status: u16, body: &str) -> S3Error {
    let document = ErrorDocument::parse(body);
    let code = document.code.unwrap_or_default();
    let message = document.message.filter(|m| !m.is_empty()).unwrap_or_else(|| {
        let quoted = quote(body);
        if quoted.is_empty() {
            http::StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).unwrap_or("no body").to_string()
        } else {
            quoted
        }
    });
    let endpoint = endpoint.to_string();
    match code.as_str() {
        "InvalidAccessKeyId" | "SignatureDoesNotMatch" | "InvalidToken" | "ExpiredToken" => {
            S3Error::Credentials { endpoint, code, message }
        }
        "NoSuchBucket" => S3Error::NoSuchBucket { endpoint, bucket: bucket.to_string(), message },
        "AccessDenied" => S3Error::AccessDenied { endpoint, bucket: bucket.to_string(), message },
        "SlowDown" => S3Error::Busy { endpoint, status, code, message },
        _ if status == 429 || status >= 500 => S3Error::Busy { endpoint, status, code, message },
        _ => S3Error::Other { endpoint, status, code, message },
    }
}

/// `body`'s start on one line, for quoting an answer that is not an S3 error document.
fn quote(body: &str) -> String {
    let line = body.split_whitespace().collect::<Vec<_>>().join(" ");
    match line.char_indices().nth(QUOTE_LIMIT) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line,
    }
}

/// What an S3 `<Error>` document says.
#[derive(Debug, Default, PartialEq, Eq)]
struct ErrorDocument {
    code: Option<String>,
    message: Option<String>,
}

impl ErrorDocument {
    /// The `<Code>` and `<Message>` of the `<Error>` element in `body`; empty when there is none.
    fn parse(body: &str) -> ErrorDocument {
        let Some(error) = element(body, "Error") else { return ErrorDocument::default() };
        let text = |tag| element(error, tag).map(|t| unescape(t.trim()));
        ErrorDocument { code: text("Code"), message: text("Message") }
    }
}

/// The content of the first `<tag>…</tag>` (or `<tag attr="…">…</tag>`) in `xml`.
fn element<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let mut rest = xml;
    loop {
        let start = rest.find(&format!("<{tag}"))?;
        let after = &rest[start + tag.len() + 1..];
        match after.chars().next() {
            Some('>') | Some(' ') | Some('\t') | Some('\r') | Some('\n') => {
                let content = &after[after.find('>')? + 1..];
                return content.find(&format!("</{tag}>")).map(|end| &content[..end]);
            }
            // `<ErrorCode>` when looking for `<Error>`: keep looking.
            _ => rest = after,
        }
    }
}

/// XML text with its entity and character references resolved.
fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let resolved = rest.find(';').and_then(|semi| {
            let name = &rest[1..semi];
            let c = match name {
                "lt" => Some('<'),
                "gt" => Some('>'),
                "amp" => Some('&'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                _ => match name.strip_prefix("#x").or_else(|| name.strip_prefix("#X")) {
                    Some(hex) => u32::from_str_radix(hex, 16).ok().and_then(char::from_u32),
                    None => name.strip_prefix('#').and_then(|d| d.parse().ok()).and_then(char::from_u32),
                },
            };
            c.map(|c| (c, semi))
        });
        match resolved {
            Some((c, semi)) => {
                out.push(c);
                rest = &rest[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

impl Retryable for S3Error {
    fn is_transient(&self) -> bool {
        S3Error::is_transient(self)
    }

    fn interrupted(&self) -> Option<Interrupted> {
        match self {
            S3Error::Interrupted(i) => Some(*i),
            _ => None,
        }
    }

    fn noting(self, note: &str) -> S3Error {
        S3Error::noting(self, note)
    }
}

#[cfg(test)]
mod tests {
    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::clients::deadline::Deadline;

    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

    fn location(endpoint: &str, path_style: bool) -> S3Location {
        S3Location {
            endpoint: endpoint.to_string(),
            region: "eu-west-1".to_string(),
            bucket: "velero".to_string(),
            prefix: Some("/cluster-a/".to_string()),
            path_style,
            insecure_skip_tls_verify: false,
            ca_pem: None,
        }
    }

    fn credentials() -> S3Credentials {
        S3Credentials { access_key: "AKIDEXAMPLE".to_string(), secret_key: SecretString::from(SECRET) }
    }

    fn base_url(endpoint: &str, path_style: bool) -> Result<String, S3Error> {
        bucket(&location(endpoint, path_style)).map(|b| b.base_url().to_string())
    }

    #[test]
    fn bucket_urls_in_both_styles() {
        assert_eq!(base_url("https://minio.lan:9000", true).unwrap(), "https://minio.lan:9000/velero/");
        assert_eq!(base_url("https://minio.lan:9000/", true).unwrap(), "https://minio.lan:9000/velero/");
        // A path on the endpoint is kept, with or without its trailing slash.
        assert_eq!(base_url("https://gw.lan/s3", true).unwrap(), "https://gw.lan/s3/velero/");
        assert_eq!(base_url("http://127.0.0.1:8333", true).unwrap(), "http://127.0.0.1:8333/velero/");
        assert_eq!(
            base_url("https://s3.eu-west-1.amazonaws.com", false).unwrap(),
            "https://velero.s3.eu-west-1.amazonaws.com/"
        );
        assert_eq!(base_url("http://minio.lan:9000", false).unwrap(), "http://velero.minio.lan:9000/");
    }

    #[test]
    fn unusable_locations_are_refused_before_any_request() {
        let refused = |endpoint: &str, path_style: bool| match base_url(endpoint, path_style) {
            Err(S3Error::Invalid { message }) => message,
            other => panic!("{endpoint}: {other:?}"),
        };
        assert!(refused("http://127.0.0.1:8333", false).contains("use path style"));
        assert!(refused("http://[::1]:8333", false).contains("IP address"));
        assert!(refused("minio.lan:9000", true).contains("http:// or https://"));
        assert!(refused("ftp://minio.lan", true).contains("http:// or https://"));
        assert!(refused("https://minio.lan/?x=1", true).contains("query"));
        let mut bad_bucket = location("https://minio.lan", true);
        for name in ["", "a/b", "a?b", "bücket"] {
            bad_bucket.bucket = name.to_string();
            assert!(matches!(bucket(&bad_bucket), Err(S3Error::Invalid { .. })), "{name:?}");
        }
        let mut bad_ca = location("https://minio.lan", true);
        bad_ca.ca_pem = Some("not a certificate".to_string());
        assert!(matches!(http_client(&bad_ca), Err(S3Error::Invalid { message }) if message.contains("no PEM")));
    }

    #[test]
    fn prefixes_are_joined_as_key_prefixes() {
        assert_eq!(location_prefix(None), "");
        assert_eq!(location_prefix(Some("")), "");
        assert_eq!(location_prefix(Some("/")), "");
        assert_eq!(location_prefix(Some("/cluster-a/")), "cluster-a/");
        assert_eq!(location_prefix(Some("a/b")), "a/b/");
        let target = Target::new(&location("https://minio.lan", true), &credentials()).unwrap();
        assert_eq!(target.key_prefix(""), "cluster-a/");
        assert_eq!(target.key_prefix("backups/"), "cluster-a/backups/");
        assert_eq!(target.key_prefix("/backups/"), "cluster-a/backups/");
    }

    #[test]
    fn list_urls_are_signed_without_the_secret() {
        let target = Target::new(&location("https://minio.lan:9000", true), &credentials()).unwrap();
        let url = target.list_url("cluster-a/", 1, Some("token/1"));
        assert_eq!(url.host_str(), Some("minio.lan"));
        assert_eq!(url.path(), "/velero/");
        let query: std::collections::HashMap<String, String> = url.query_pairs().into_owned().collect();
        assert_eq!(query["list-type"], "2");
        assert_eq!(query["prefix"], "cluster-a/");
        assert_eq!(query["max-keys"], "1");
        assert_eq!(query["continuation-token"], "token/1");
        assert!(!query.contains_key("encoding-type"), "keys come back as they are");
        assert_eq!(query["X-Amz-Algorithm"], "AWS4-HMAC-SHA256");
        assert!(query["X-Amz-Credential"].starts_with("AKIDEXAMPLE/"), "{}", query["X-Amz-Credential"]);
        assert!(query["X-Amz-Credential"].ends_with("/eu-west-1/s3/aws4_request"));
        assert_eq!(query["X-Amz-Signature"].len(), 64);
        assert!(!url.as_str().contains(SECRET) && !url.as_str().contains("wJalrXUtnFEMI"), "{url}");

        let virtual_host = Target::new(&location("https://s3.eu-west-1.amazonaws.com", false), &credentials()).unwrap();
        let url = virtual_host.list_url("", 1000, None);
        assert_eq!(url.host_str(), Some("velero.s3.eu-west-1.amazonaws.com"));
        assert_eq!(url.path(), "/");
        assert!(!url.query_pairs().any(|(k, _)| k == "prefix" || k == "continuation-token"));
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let debug = format!("{:?}", credentials());
        assert!(debug.contains("AKIDEXAMPLE") && !debug.contains(SECRET), "{debug}");
    }

    #[test]
    fn error_documents_are_read_from_aws_minio_and_seaweedfs() {
        let aws = r#"<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match the signature you provided. Check your key and signing method.</Message><AWSAccessKeyId>AKIDEXAMPLE</AWSAccessKeyId><StringToSign>AWS4-HMAC-SHA256
20240101T000000Z</StringToSign><RequestId>4442587FB7D0A2F9</RequestId></Error>"#;
        let doc = ErrorDocument::parse(aws);
        assert_eq!(doc.code.as_deref(), Some("SignatureDoesNotMatch"));
        assert!(doc.message.unwrap().starts_with("The request signature we calculated"));

        let minio = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error>\n  <Code>NoSuchBucket</Code>\n  <Message>The specified bucket does not exist</Message>\n  <BucketName>velero</BucketName>\n  <Resource>/velero/</Resource>\n</Error>";
        let doc = ErrorDocument::parse(minio);
        assert_eq!(doc, ErrorDocument { code: Some("NoSuchBucket".into()), message: Some("The specified bucket does not exist".into()) });

        let escaped = r#"<Error xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Code>InvalidArgument</Code><Message>max-keys &lt; 0 &amp; &quot;x&quot; &#39;y&#39; &#x41;</Message></Error>"#;
        assert_eq!(ErrorDocument::parse(escaped).message.as_deref(), Some("max-keys < 0 & \"x\" 'y' A"));
        assert_eq!(unescape("a & b &bogus; &"), "a & b &bogus; &");

        // `<ErrorCode>` is not `<Error>`; HTML and empty bodies have no document.
        assert_eq!(ErrorDocument::parse("<ErrorCode>x</ErrorCode>"), ErrorDocument::default());
        assert_eq!(ErrorDocument::parse("<html><body>502 Bad Gateway</body></html>"), ErrorDocument::default());
        assert_eq!(ErrorDocument::parse(""), ErrorDocument::default());
    }

    #[test]
    fn answers_are_classified_by_their_code_and_status() {
        let doc = |code: &str, message: &str| format!("<Error><Code>{code}</Code><Message>{message}</Message></Error>");
        let e = |status, body: &str| refusal("https://minio.lan", "velero", status, body);

        let wrong_key = e(403, &doc("InvalidAccessKeyId", "The access key ID you provided does not exist."));
        assert_eq!(
            wrong_key.to_string(),
            "S3 endpoint https://minio.lan refused the credentials: InvalidAccessKeyId: The access key ID you \
             provided does not exist. (check the access key and the secret key)"
        );
        assert!(matches!(e(403, &doc("SignatureDoesNotMatch", "x")), S3Error::Credentials { code, .. } if code == "SignatureDoesNotMatch"));
        assert_eq!(
            e(404, &doc("NoSuchBucket", "The specified bucket does not exist")).to_string(),
            "S3 endpoint https://minio.lan has no bucket \"velero\": NoSuchBucket: The specified bucket does not exist"
        );
        assert!(matches!(e(403, &doc("AccessDenied", "Access Denied.")), S3Error::AccessDenied { .. }));

        let slow = e(503, &doc("SlowDown", "Please reduce your request rate."));
        assert!(slow.is_transient());
        assert_eq!(slow.to_string(), "S3 endpoint https://minio.lan is busy: HTTP 503 SlowDown: Please reduce your request rate.");
        let gateway = e(502, "<html><body>\n  502 Bad Gateway\n</body></html>");
        assert!(gateway.is_transient());
        assert_eq!(gateway.to_string(), "S3 endpoint https://minio.lan is busy: HTTP 502: <html><body> 502 Bad Gateway </body></html>");
        assert_eq!(e(500, "").to_string(), "S3 endpoint https://minio.lan is busy: HTTP 500: Internal Server Error");

        let region = e(301, &doc("PermanentRedirect", "The bucket you are attempting to access must be addressed using the specified endpoint."));
        assert!(matches!(&region, S3Error::Other { status: 301, code, .. } if code == "PermanentRedirect"));
        assert!(!region.is_transient());
        assert!(quote(&"x".repeat(1000)).ends_with('…'));
    }

    #[tokio::test(start_paused = true)]
    async fn transient_failures_are_retried_until_the_deadline() {
        use std::sync::atomic::{AtomicU32, Ordering};
        let calls = AtomicU32::new(0);
        let deadline = Deadline::after(Duration::from_secs(3), CancellationToken::new());
        let result: Result<(), S3Error> = deadline
            .run(retry("S3 request", || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(S3Error::Unreachable { endpoint: "http://s".into(), message: "connection refused".into() })
            }))
            .await;
        let message = result.unwrap_err().to_string();
        assert!(calls.load(Ordering::SeqCst) > 2, "{message}");
        assert!(message.starts_with("cannot reach S3 endpoint http://s: connection refused; gave up after "), "{message}");
        assert!(message.ends_with("the next would outlast the 3s timeout"), "{message}");
        assert_eq!(deadline.retries(), u64::from(calls.load(Ordering::SeqCst)) - 1);

        let calls = AtomicU32::new(0);
        let result: Result<(), S3Error> = deadline
            .run(retry("S3 request", || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(S3Error::Credentials { endpoint: "s".into(), code: "SignatureDoesNotMatch".into(), message: "m".into() })
            }))
            .await;
        assert!(matches!(result, Err(S3Error::Credentials { .. })));
        assert_eq!(calls.load(Ordering::SeqCst), 1, "permanent failures are not retried");
    }

    #[tokio::test(start_paused = true)]
    async fn cancellation_stops_the_retries_at_once() {
        let token = CancellationToken::new();
        let deadline = Deadline::after(Duration::from_secs(600), token.clone());
        let result: Result<(), S3Error> = deadline
            .run(retry("S3 request", || {
                token.cancel();
                async { Err(S3Error::Unreachable { endpoint: "s".into(), message: "reset".into() }) }
            }))
            .await;
        assert_eq!(result, Err(S3Error::Interrupted(Interrupted::Cancelled)));
    }

    #[tokio::test(start_paused = true)]
    async fn an_attempt_cut_by_the_deadline_reports_the_failure_before_it() {
        let deadline = Deadline::after(Duration::from_secs(3), CancellationToken::new());
        let mut calls = 0;
        let result: Result<(), S3Error> = deadline
            .run(retry("S3 request", || {
                calls += 1;
                let first = calls == 1;
                async move {
                    if first {
                        Err(S3Error::Busy { endpoint: "s".into(), status: 503, code: "SlowDown".into(), message: "m".into() })
                    } else {
                        std::future::pending().await
                    }
                }
            }))
            .await;
        let error = result.unwrap_err();
        assert!(matches!(&error, S3Error::Busy { .. }), "{error:?}");
        assert!(error.to_string().ends_with("gave up after 2 attempts in 3s: the 3s timeout passed"), "{error}");
    }
}
